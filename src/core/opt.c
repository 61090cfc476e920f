/*
 * opt: flags from the command line and MESHD_* environment variables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/opt.h"
#include "core/str.h"

static int opt_bool_value(const char *s, int *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !*s) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* Stores <val> for <o>; <from> names the source for error messages. */
static int opt_store(const struct opt *o, const char *val, const char *from,
                     char *err, size_t errlen)
{
	switch (o->kind) {
	case OPT_BOOL:
		if (opt_bool_value(val, o->dst) == 0)
			return 0;
		snprintf(err, errlen, "%s: expected true or false, got \"%s\"", from, val);
		return -1;
	case OPT_STR:
		*(const char **)o->dst = val;
		return 0;
	case OPT_U64:
		if (str_to_u64(str_from_cstr(val), o->dst) == 0)
			return 0;
		snprintf(err, errlen, "%s: expected a whole number, got \"%s\"", from, val);
		return -1;
	case OPT_MS:
		if (str_to_duration_ms(str_from_cstr(val), o->dst) == 0)
			return 0;
		snprintf(err, errlen, "%s: expected a duration like 500ms, 10s or 1m, got \"%s\"",
		         from, val);
		return -1;
	}
	return -1;
}

static void opt_env_name(const char *name, char *out, size_t outlen)
{
	size_t i = 0;

	snprintf(out, outlen, "MESHD_");
	i = strlen(out);
	for (; *name && i + 1 < outlen; name++)
		out[i++] = *name == '-' ? '_' :
		           (*name >= 'a' && *name <= 'z') ? *name - 'a' + 'A' : *name;
	out[i] = '\0';
}

int opt_parse(const struct opt_cmd *cmd, int argc, char **argv,
              char *err, size_t errlen)
{
	char env[96], from[128];
	const char *val;
	size_t i, n;
	int a;

	for (i = 0; i < cmd->nopts; i++) {
		opt_env_name(cmd->opts[i].name, env, sizeof(env));
		val = getenv(env);
		if (val && opt_store(&cmd->opts[i], val, env, err, errlen) < 0)
			return -1;
	}
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq;
		const struct opt *o = NULL;

		if (strcmp(arg, "--") == 0)
			return a + 1;
		if (strncmp(arg, "--", 2) != 0) {
			if (arg[0] == '-' && arg[1] != '\0') {
				if (strcmp(arg, "-h") == 0) {
					opt_usage(cmd, 1);
					return 0;
				}
				snprintf(err, errlen, "unknown flag %s (flags are long: --name)", arg);
				return -1;
			}
			return a;
		}
		arg += 2;
		if (strcmp(arg, "help") == 0) {
			opt_usage(cmd, 1);
			return 0;
		}
		eq = strchr(arg, '=');
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < cmd->nopts; i++) {
			if (strlen(cmd->opts[i].name) == n &&
			    strncmp(cmd->opts[i].name, arg, n) == 0) {
				o = &cmd->opts[i];
				break;
			}
		}
		if (!o) {
			snprintf(err, errlen, "unknown flag --%.*s", (int)n, arg);
			return -1;
		}
		snprintf(from, sizeof(from), "--%s", o->name);
		if (o->kind == OPT_BOOL) {
			if (eq) {
				if (opt_store(o, eq + 1, from, err, errlen) < 0)
					return -1;
			} else {
				*(int *)o->dst = 1;
			}
			continue;
		}
		if (eq) {
			val = eq + 1;
		} else {
			if (a + 1 >= argc) {
				snprintf(err, errlen, "--%s needs a value (%s)", o->name,
				         o->metavar ? o->metavar : "VALUE");
				return -1;
			}
			val = argv[++a];
		}
		if (opt_store(o, val, from, err, errlen) < 0)
			return -1;
	}
	return argc;
}

/* Prints a duration default in the largest unit that shows it exactly, in
 * the syntax the flag accepts ("1h", "30s", "250ms"). */
static void opt_print_ms(int fd, uint64_t ms)
{
	static const struct { uint64_t ms; const char *unit; } units[] = {
		{ 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms && ms % units[i].ms == 0) {
			dprintf(fd, " (default %llu%s)",
			        (unsigned long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	}
	dprintf(fd, " (default %llums)", (unsigned long long)ms);
}

void opt_usage(const struct opt_cmd *cmd, int fd)
{
	char line[256], flag[64];
	size_t i;

	dprintf(fd, "usage: meshd %s%s%s%s\n%s\n", cmd->name,
	        cmd->nopts ? " [flags]" : "", cmd->args ? " " : "",
	        cmd->args ? cmd->args : "", cmd->summary);
	if (!cmd->nopts)
		return;
	dprintf(fd, "\nflags (each also read from MESHD_<FLAG>, e.g. --log-level from MESHD_LOG_LEVEL):\n");
	for (i = 0; i < cmd->nopts; i++) {
		const struct opt *o = &cmd->opts[i];

		if (o->kind == OPT_BOOL)
			snprintf(flag, sizeof(flag), "--%s", o->name);
		else
			snprintf(flag, sizeof(flag), "--%s %s", o->name,
			         o->metavar ? o->metavar : "VALUE");
		snprintf(line, sizeof(line), "  %-28s %s", flag, o->help);
		dprintf(fd, "%s", line);
		switch (o->kind) {
		case OPT_STR:
			if (*(const char **)o->dst && **(const char **)o->dst)
				dprintf(fd, " (default %s)", *(const char **)o->dst);
			break;
		case OPT_U64:
			dprintf(fd, " (default %llu)",
			        (unsigned long long)*(uint64_t *)o->dst);
			break;
		case OPT_MS:
			opt_print_ms(fd, *(uint64_t *)o->dst);
			break;
		case OPT_BOOL:
			break;
		}
		dprintf(fd, "\n");
	}
}

int opt_parse_or_usage(const struct opt_cmd *cmd, int argc, char **argv)
{
	char err[256];
	int rc = opt_parse(cmd, argc, argv, err, sizeof(err));

	if (rc == 0)
		return -2;
	if (rc < 0) {
		dprintf(2, "meshd %s: %s\n", cmd->name, err);
		opt_usage(cmd, 2);
		return -1;
	}
	return rc;
}

int opt_role_start(const struct opt_cmd *cmd, int argc, char **argv,
                   const char *const *log_level,
                   const char *const *log_format)
{
	char err[256];
	int rc = opt_parse_or_usage(cmd, argc, argv);

	if (rc < 0)
		return rc == -2 ? 0 : -1;
	if (rc < argc) {
		dprintf(2, "meshd %s: unexpected argument \"%s\"\n", cmd->name,
		        argv[rc]);
		return -1;
	}
	if (log_set_spec(*log_level, err, sizeof(err)) < 0) {
		dprintf(2, "meshd %s: --log-level: %s\n", cmd->name, err);
		return -1;
	}
	if (log_set_format(*log_format) < 0) {
		dprintf(2, "meshd %s: --log-format must be text or json\n",
		        cmd->name);
		return -1;
	}
	return 1;
}
