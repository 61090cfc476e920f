/*
 * meshd: one binary, many roles. The subcommand is argv[1], or argv[0]'s
 * base name when meshd is called through a symlink named after a role
 * ("proxy" -> meshd proxy), busybox style.
 *
 * Each role has exactly one entry point, <role>_main(argc, argv), receiving
 * argv with the subcommand name at argv[0]. Exit status: 0 success, 1
 * failure at run time, 2 bad usage.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/opt.h"
#include "core/version.h"
#include "cli/demo.h"
#include "controller/controller_main.h"
#include "init/init.h"
#include "proxy/proxy_main.h"

struct main_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int main_version(int argc, char **argv);

/* Only subcommands that exist are listed: nothing here is a placeholder. */
static const struct main_cmd main_cmds[] = {
	{ "version", main_version, "print the versions of meshd and of every linked library" },
	{ "init", init_main, "install the traffic redirection rules in a pod's network namespace or on a host" },
	{ "proxy", proxy_main, "run the sidecar proxy (data plane)" },
	{ "controller", controller_main, "run the control plane (registry source, Destination gRPC service)" },
	{ "demo", demo_main, "run the A/B/C sample app in network-namespace pods, meshed, and show golden metrics" },
};

static void main_usage(int fd)
{
	size_t i;

	dprintf(fd, "usage: meshd <command> [flags]\n\n"
	            "meshd is a service mesh: sidecar proxy, control plane and CLI in one binary.\n\n"
	            "commands:\n");
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		dprintf(fd, "  %-12s %s\n", main_cmds[i].name, main_cmds[i].summary);
	dprintf(fd, "\n'meshd <command> --help' describes a command and its flags.\n");
}

static const struct main_cmd *main_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (strcmp(main_cmds[i].name, name) == 0)
			return &main_cmds[i];
	return NULL;
}

static int main_version(int argc, char **argv)
{
	static const struct opt_cmd cmd = {
		"version", NULL, "Print the versions of meshd and of every linked library.", NULL, 0,
	};
	int rc = opt_parse_or_usage(&cmd, argc, argv);

	if (rc < 0)
		return rc == -2 ? 0 : 2;
	if (rc < argc) {
		dprintf(2, "meshd version: unexpected argument \"%s\"\n", argv[rc]);
		opt_usage(&cmd, 2);
		return 2;
	}
	version_print(1);
	return 0;
}

int main(int argc, char **argv)
{
	const struct main_cmd *cmd;
	const char *base = strrchr(argv[0], '/');

	base = base ? base + 1 : argv[0];
	if (strcmp(base, "meshd") != 0 && (cmd = main_find(base)) != NULL)
		return cmd->fn(argc, argv);
	if (argc < 2) {
		main_usage(2);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		main_usage(1);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		version_print(1);
		return 0;
	}
	cmd = main_find(argv[1]);
	if (!cmd) {
		dprintf(2, "meshd: unknown command \"%s\"\n", argv[1]);
		main_usage(2);
		return 2;
	}
	return cmd->fn(argc - 1, argv + 1);
}
