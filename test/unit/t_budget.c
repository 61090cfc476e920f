/*
 * Unit tests for proxy/budget: the retry budget's floor, ratio, sliding
 * window and reconfiguration, on a simulated clock.
 */
#include <errno.h>
#include <stdio.h>

#include "harness.h"
#include "proxy/budget.h"

#define MS 1000000ull
#define SEC 1000000000ull

TEST(floor_without_traffic)
{
	struct budget b;
	uint64_t t = 3 * SEC;
	int i, ok = 0;

	CHECK(budget_init(&b, 0.2f, 10, 10000) == 0);
	CHECK(budget_available(&b, t) == 100);
	/* min_per_s * ttl = 10/s * 10 s = 100 retries, then no more. */
	for (i = 0; i < 150; i++)
		ok += budget_try_withdraw(&b, t);
	CHECK(ok == 100);
	CHECK(b.allowed == 100 && b.refused == 50);
	CHECK(budget_available(&b, t) == 0);
	/* Still refused just before the first bucket leaves the window,
	 * allowed again once it has (window = 10 buckets of 1 s). */
	CHECK(budget_try_withdraw(&b, t + 7 * SEC + 999 * MS) == 0);
	CHECK(budget_try_withdraw(&b, t + 8 * SEC) == 0);
	CHECK(budget_available(&b, 13 * SEC) == 100);
	CHECK(budget_try_withdraw(&b, 13 * SEC) == 1);
}

TEST(ratio_is_exact)
{
	struct budget b;
	int i;

	CHECK(budget_init(&b, 0.2f, 0, 10000) == 0);
	CHECK(budget_try_withdraw(&b, 0) == 0); /* no floor, no deposits */
	for (i = 0; i < 4; i++)
		budget_deposit(&b, 0);
	CHECK(budget_try_withdraw(&b, 0) == 0); /* 0.8 of a retry */
	budget_deposit(&b, 0);
	CHECK(budget_try_withdraw(&b, 0) == 1); /* 20 % of 5 = 1 */
	CHECK(budget_try_withdraw(&b, 0) == 0);
	for (i = 0; i < 5; i++)
		budget_deposit(&b, 0);
	CHECK(budget_available(&b, 0) == 1);
}

TEST(steady_100_rps_allows_20_percent_plus_10_per_s)
{
	struct budget b;
	uint64_t t, allowed = 0, reqs = 0;
	int worst_ok = 1;

	budget_init(&b, BUDGET_DEF_RATIO, BUDGET_DEF_MIN_PER_S,
	            BUDGET_DEF_TTL_MS);
	/* 100 req/s for 60 s; every request fails and wants a retry. */
	for (t = 0; t < 60 * SEC; t += 10 * MS) {
		int ok;

		budget_deposit(&b, t);
		ok = budget_try_withdraw(&b, t);
		if (t >= 20 * SEC) {
			reqs++;
			allowed += (uint64_t)ok;
		}
		/* Invariant: retries in the window never exceed the budget. */
		worst_ok &= b.wd_sum * 10 <= b.dep_sum * 2 + 1000;
	}
	printf("# %llu of %llu retries allowed (%.1f/s)\n",
	       (unsigned long long)allowed, (unsigned long long)reqs,
	       (double)allowed / 40.0);
	CHECK(worst_ok);
	CHECK(reqs == 4000);
	/* Expected 20 % of 100/s + 10/s = 30/s over 40 s = 1200; the
	 * window holds 9 to 10 buckets, so allow -10 %. */
	CHECK(allowed >= 1080 && allowed <= 1200);
}

TEST(window_slides_old_deposits_expire)
{
	struct budget b;
	int i, ok = 0;

	budget_init(&b, 0.2f, 10, 10000);
	for (i = 0; i < 1000; i++)
		budget_deposit(&b, 500 * MS);
	CHECK(budget_available(&b, 500 * MS) == 300);
	for (i = 0; i < 400; i++)
		ok += budget_try_withdraw(&b, 5 * SEC);
	CHECK(ok == 300);
	/* The deposits (bucket 0) leave at 10 s, the withdrawals (bucket 5)
	 * at 15 s: in between, the floor is used up. */
	CHECK(budget_available(&b, 9 * SEC + 999 * MS) == 0);
	CHECK(budget_available(&b, 10 * SEC) == 0);
	CHECK(budget_try_withdraw(&b, 14 * SEC) == 0);
	CHECK(budget_available(&b, 15 * SEC) == 100);
	/* A jump far ahead empties every bucket. */
	CHECK(budget_available(&b, 1000 * SEC) == 100);
	CHECK(b.dep_sum == 0 && b.wd_sum == 0);
	/* Time going backwards is treated as "now". */
	CHECK(budget_try_withdraw(&b, 0) == 1);
	CHECK(b.wd_sum == 1);
}

TEST(reconfigure_keeps_counts)
{
	struct budget b;
	int i;

	budget_init(&b, 0.2f, 10, 10000);
	for (i = 0; i < 1000; i++)
		budget_deposit(&b, 2 * SEC);
	for (i = 0; i < 300; i++)
		CHECK(budget_try_withdraw(&b, 3 * SEC) == 1);
	CHECK(budget_available(&b, 4 * SEC) == 0);
	/* Same ttl, larger ratio: 500 + 100 - 300. */
	CHECK(budget_reconfigure(&b, 0.5f, 10, 10000) == 0);
	CHECK(budget_available(&b, 4 * SEC) == 300);
	/* Longer ttl: counts kept, floor 10/s * 20 s. */
	CHECK(budget_reconfigure(&b, 0.5f, 10, 20000) == 0);
	CHECK(b.dep_sum == 1000 && b.wd_sum == 300);
	CHECK(budget_available(&b, 4 * SEC) == 400);
	/* ... and they now last the new ttl (bucket of 2 s from 2 s). */
	CHECK(budget_available(&b, 21 * SEC) == 400);
	CHECK(budget_available(&b, 22 * SEC) == 200);
	budget_init(&b, 0.2f, 10, 10000);
	for (i = 0; i < 1000; i++)
		budget_deposit(&b, 2 * SEC);
	/* Shorter ttl: counts older than the new window are dropped. */
	budget_available(&b, 5 * SEC);
	CHECK(budget_reconfigure(&b, 0.2f, 10, 2000) == 0);
	CHECK(b.dep_sum == 0);
	CHECK(budget_available(&b, 5 * SEC) == 20);
	/* Invalid values change nothing. */
	CHECK(budget_reconfigure(&b, -1.0f, 10, 10000) == -EINVAL);
	CHECK(budget_reconfigure(&b, 0.2f, 10, 500) == -EINVAL);
	CHECK(budget_reconfigure(&b, 0.2f, 10, 61000) == -EINVAL);
	CHECK(b.ttl_ms == 2000 && b.min_per_s == 10);
}

TEST(init_rejects_bad_values_with_defaults)
{
	struct budget b;

	CHECK(budget_init(&b, 2000.0f, 1, 10000) == -EINVAL);
	CHECK(b.ratio_ppm == 200000 && b.min_per_s == 10 && b.ttl_ms == 10000);
	CHECK(budget_init(&b, 0.2f, 1, 0) == -EINVAL);
	CHECK(b.ttl_ms == 10000);
	CHECK(budget_available(&b, 0) == 100);
	CHECK(budget_init(&b, 1000.0f, 0, 60000) == 0);
	budget_deposit(&b, 0);
	CHECK(budget_available(&b, 0) == 1000);
}
