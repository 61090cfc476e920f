/*
 * Tests for proxy_setup / proxy_teardown (proxy_main.c): a proxy without
 * listeners for tests and fuzz targets. Setting up and tearing down leaves
 * core/mem where it was, bad flags are refused with a reason, and a start
 * that fails at any allocation releases what it had set up (regression: a
 * failure before the pool existed made proxy_stop dereference a NULL pool).
 */
#include <string.h>

#include "core/mem.h"
#include "harness.h"
#include "proxy/pool.h"
#include "proxy/proxy_main.h"

static struct proxy t_px;

static char *t_argv[] = {
	"proxy", "--mode", "explicit", "--inbound-forward", "127.0.0.1:9",
};

#define T_ARGC ((int)(sizeof(t_argv) / sizeof(t_argv[0])))

static int t_same_mem(const struct mem_stats *a)
{
	struct mem_stats b;

	mem_get_stats(&b);
	return a->bytes == b.bytes && a->blocks == b.blocks;
}

TEST(setup_then_teardown_leaves_nothing)
{
	struct mem_stats m0;
	uint32_t idle = 1, busy = 1;
	char err[256];

	mem_get_stats(&m0);
	REQUIRE(proxy_setup(&t_px, T_ARGC, t_argv, err, sizeof(err)) == 0);
	CHECK(t_px.nconns == 0);
	CHECK(t_px.listeners == NULL);
	CHECK(t_px.cfg.route.has_inbound_forward);
	REQUIRE(t_px.pool != NULL);
	pool_counts(t_px.pool, &idle, &busy);
	CHECK(idle == 0 && busy == 0);
	proxy_teardown(&t_px);
	CHECK(t_same_mem(&m0));
}

TEST(setup_refuses_bad_flags)
{
	char *bad_mode[] = { "proxy", "--mode", "sideways" };
	char *unknown[] = { "proxy", "--no-such-flag" };
	char *extra[] = { "proxy", "extra" };
	char *bad_fwd[] = { "proxy", "--inbound-forward", "127.0.0.1" };
	struct mem_stats m0;
	char err[256];

	mem_get_stats(&m0);
	err[0] = '\0';
	CHECK(proxy_setup(&t_px, 3, bad_mode, err, sizeof(err)) < 0);
	CHECK(strstr(err, "--mode") != NULL);
	err[0] = '\0';
	CHECK(proxy_setup(&t_px, 2, unknown, err, sizeof(err)) < 0);
	CHECK(err[0] != '\0');
	err[0] = '\0';
	CHECK(proxy_setup(&t_px, 2, extra, err, sizeof(err)) < 0);
	CHECK(strstr(err, "extra") != NULL);
	err[0] = '\0';
	CHECK(proxy_setup(&t_px, 3, bad_fwd, err, sizeof(err)) < 0);
	CHECK(strstr(err, "inbound-forward") != NULL);
	CHECK(t_same_mem(&m0));
}

TEST(setup_fails_cleanly_at_every_allocation)
{
	struct mem_stats m0;
	char err[256];
	uint64_t n;
	int rc = -1, failed = 0;

	mem_get_stats(&m0);
	for (n = 1; n < 1000 && rc < 0; n++) {
		mem_fail_after(n);
		rc = proxy_setup(&t_px, T_ARGC, t_argv, err, sizeof(err));
		mem_fail_reset();
		if (rc < 0) {
			failed++;
			CHECK(strstr(err, "out of memory") != NULL ||
			      err[0] != '\0');
		} else {
			proxy_teardown(&t_px);
		}
		CHECK(t_same_mem(&m0));
	}
	CHECK(rc == 0);      /* enough allocations let it start */
	CHECK(failed > 0);   /* and the first ones made it fail */
}
