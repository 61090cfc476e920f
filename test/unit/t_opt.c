#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "core/opt.h"

static int t_opt_bool;
static const char *t_opt_addr;
static uint64_t t_opt_n, t_opt_ms;

static const struct opt t_opt_opts[] = {
	{ "verbose", OPT_BOOL, &t_opt_bool, NULL, "talk more" },
	{ "listen-addr", OPT_STR, &t_opt_addr, "ADDR", "where to listen" },
	{ "count", OPT_U64, &t_opt_n, "N", "how many" },
	{ "timeout", OPT_MS, &t_opt_ms, "DURATION", "how long" },
};
static const struct opt_cmd t_opt_cmd = { "t", "[FILE]", "test", t_opt_opts, 4 };

static void t_opt_reset(void)
{
	t_opt_bool = 0;
	t_opt_addr = "def";
	t_opt_n = 7;
	t_opt_ms = 0;
	unsetenv("MESHD_LISTEN_ADDR");
	unsetenv("MESHD_COUNT");
	unsetenv("MESHD_VERBOSE");
}

TEST(flags_both_forms_and_positional)
{
	char *argv[] = { "t", "--verbose", "--listen-addr", "1.2.3.4:5", "--count=42",
	                 "--timeout", "2s", "file", NULL };
	char err[128];

	t_opt_reset();
	CHECK(opt_parse(&t_opt_cmd, 8, argv, err, sizeof(err)) == 7);
	CHECK(t_opt_bool == 1);
	CHECK_STR(t_opt_addr, "1.2.3.4:5");
	CHECK(t_opt_n == 42);
	CHECK(t_opt_ms == 2000);
}

TEST(environment_then_flags)
{
	char *argv[] = { "t", "--count", "3", NULL };
	char err[128];

	t_opt_reset();
	setenv("MESHD_LISTEN_ADDR", "0.0.0.0:1", 1);
	setenv("MESHD_COUNT", "9", 1);
	setenv("MESHD_VERBOSE", "true", 1);
	CHECK(opt_parse(&t_opt_cmd, 3, argv, err, sizeof(err)) == 3);
	CHECK_STR(t_opt_addr, "0.0.0.0:1");
	CHECK(t_opt_n == 3); /* the flag wins over the environment */
	CHECK(t_opt_bool == 1);
	t_opt_reset();
}

TEST(bad_values_and_unknown_flags)
{
	char *a1[] = { "t", "--count", "12x", NULL };
	char *a2[] = { "t", "--nope", NULL };
	char *a3[] = { "t", "--count", NULL };
	char *a4[] = { "t", "--timeout", "10", NULL };
	char *a5[] = { "t", "--count", "99999999999999999999", NULL };
	char *a6[] = { "t", "-v", NULL };
	char err[128];

	t_opt_reset();
	CHECK(opt_parse(&t_opt_cmd, 3, a1, err, sizeof(err)) == -1);
	CHECK(strstr(err, "--count") != NULL);
	CHECK(opt_parse(&t_opt_cmd, 2, a2, err, sizeof(err)) == -1);
	CHECK_STR(err, "unknown flag --nope");
	CHECK(opt_parse(&t_opt_cmd, 2, a3, err, sizeof(err)) == -1);
	CHECK(opt_parse(&t_opt_cmd, 3, a4, err, sizeof(err)) == -1); /* unit required */
	CHECK(opt_parse(&t_opt_cmd, 3, a5, err, sizeof(err)) == -1); /* overflow */
	CHECK(opt_parse(&t_opt_cmd, 2, a6, err, sizeof(err)) == -1);
	setenv("MESHD_COUNT", "x", 1);
	CHECK(opt_parse(&t_opt_cmd, 1, a2, err, sizeof(err)) == -1);
	CHECK(strstr(err, "MESHD_COUNT") != NULL);
	t_opt_reset();
}
