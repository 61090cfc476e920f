/*
 * opt: command-line flags shared by every subcommand.
 *
 * A subcommand describes its flags in a table of struct opt. opt_parse reads,
 * for each flag, first the environment variable MESHD_<FLAG> (upper case, '-'
 * as '_') and then the command line, so that Kubernetes and systemd can
 * configure any flag. Flags are long only: "--name value" or "--name=value";
 * booleans take no value ("--name"; "MESHD_NAME=1|true|0|false"). "--help"
 * prints the usage. Anything unknown is an error.
 *
 * Values are checked when parsed: OPT_U64 strict decimal, OPT_MS a duration
 * ("250ms", "10s", "1m": str_to_duration_ms), OPT_STR kept as a pointer into argv or environ
 * (never copied: argv and environ outlive every subcommand).
 */
#ifndef MESHD_CORE_OPT_H
#define MESHD_CORE_OPT_H

#include <stddef.h>
#include <stdint.h>

enum opt_kind {
	OPT_BOOL, /* int *: set to 1 (or 0 from the environment) */
	OPT_STR,  /* const char **: the value */
	OPT_U64,  /* uint64_t *: decimal */
	OPT_MS,   /* uint64_t *: a duration in milliseconds */
};

struct opt {
	const char *name;   /* flag without the leading "--" */
	enum opt_kind kind;
	void *dst;          /* where the value goes; its default is whatever is there */
	const char *metavar; /* placeholder in usage, e.g. "ADDR" (not for OPT_BOOL) */
	const char *help;   /* one line */
};

struct opt_cmd {
	const char *name;     /* "proxy" */
	const char *args;     /* positional arguments in usage, e.g. "[FILE...]", or NULL */
	const char *summary;  /* one line */
	const struct opt *opts;
	size_t nopts;
};

/*
 * Parses argv[1..argc) of <cmd> (argv[0] is the subcommand name).
 * Returns the index of the first positional argument (>= 1) on success;
 * 0 if --help was given (usage already printed to stdout); -1 on a bad flag
 * or value, with a one-line message in <err>.
 */
int opt_parse(const struct opt_cmd *cmd, int argc, char **argv,
              char *err, size_t errlen);

/* Prints "usage: meshd <cmd> ..." and the flag table to <fd>. */
void opt_usage(const struct opt_cmd *cmd, int fd);

/*
 * The usual preamble of a subcommand: parses, and on error prints
 * "meshd <cmd>: <err>" and the usage to stderr. Returns the index of the
 * first positional argument, or -2 when the caller must exit with status 0
 * (help shown) and -1 when it must exit with status 2.
 */
int opt_parse_or_usage(const struct opt_cmd *cmd, int argc, char **argv);

/*
 * The preamble of a long-running role (`meshd proxy`, `meshd controller`):
 * opt_parse_or_usage, no positional argument allowed, then the log level
 * spec and format that parsing left in *<log_level> and *<log_format>
 * applied (core/log). Returns 1 to go on, 0 when the caller must exit with
 * status 0 (help shown), -1 when it must exit with status 2 (a one-line
 * "meshd <cmd>: ..." error is on stderr).
 */
int opt_role_start(const struct opt_cmd *cmd, int argc, char **argv,
                   const char *const *log_level,
                   const char *const *log_format);

#endif
