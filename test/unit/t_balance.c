/*
 * Unit tests for proxy/balance: peak-EWMA arithmetic, P2C behaviour on a
 * simulated clock, failure accrual, endpoint-set updates and handles.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "core/mem.h"
#include "core/sock.h"
#include "proxy/balance.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* Endpoint i is 10.0.0.1:(8000 + i). */
static void key_set(struct balance_key *k, unsigned i, uint32_t weight)
{
	char s[32];

	snprintf(s, sizeof(s), "10.0.0.1:%u", 8000 + i);
	memset(k, 0, sizeof(*k));
	sock_addr_parse(s, &k->addr, NULL, 0);
	k->weight = weight;
}

static int ep_index(const struct balance *b, const struct balance_handle *h)
{
	const struct sock_addr *a = balance_addr(b, h);

	return a ? (int)sock_addr_port(a) - 8000 : -1;
}

static const struct balance_ep *find_ep(const struct balance *b, unsigned i)
{
	struct balance_key k;

	key_set(&k, i, 0);
	return balance_find(b, &k.addr);
}

static int near(double a, double b, double rel)
{
	double d = a > b ? a - b : b - a;

	return d <= rel * (b > 0 ? b : -b);
}

/* Sets up <b> with endpoints 0..n-1 of weight 10000 (the default). */
static void setup(struct balance *b, const struct balance_cfg *cfg,
                  unsigned n, uint64_t seed, uint64_t now)
{
	struct balance_key k[64];
	unsigned i;

	balance_init(b, cfg, seed);
	for (i = 0; i < n; i++)
		key_set(&k[i], i, BALANCE_WEIGHT_UNIT);
	balance_update(b, k, n, now);
}

/*
 * Discrete-event simulation: one request every <gap> ns from <t0> to
 * <t1>; endpoint i answers after lat[i] ns. Picks made at or after
 * <from> are counted in cnt[]. Returns the number counted. All requests
 * are completed (in time order) before it returns.
 */
struct sim_req {
	struct balance_handle h;
	uint64_t end;
};
static struct sim_req sim_q[8192];
static unsigned sim_n;

static void sim_complete_until(struct balance *b, uint64_t t)
{
	for (;;) {
		unsigned i, best = sim_n;

		for (i = 0; i < sim_n; i++)
			if (sim_q[i].end <= t &&
			    (best == sim_n || sim_q[i].end < sim_q[best].end))
				best = i;
		if (best == sim_n)
			return;
		CHECK(balance_done(b, &sim_q[best].h, sim_q[best].end,
		                   sim_q[best].end - sim_q[best].h.start_ns,
		                   1) == 0);
		sim_q[best] = sim_q[--sim_n];
	}
}

static unsigned long sim_run(struct balance *b, const uint64_t *lat,
                             uint64_t t0, uint64_t t1, uint64_t gap,
                             uint64_t from, unsigned long *cnt)
{
	unsigned long total = 0;
	uint64_t t;

	for (t = t0; t < t1; t += gap) {
		struct balance_handle h;
		int i;

		sim_complete_until(b, t);
		if (balance_pick(b, t, &h) != 0 || sim_n == 8192) {
			CHECK(0);
			return total;
		}
		i = ep_index(b, &h);
		sim_q[sim_n].h = h;
		sim_q[sim_n].end = t + lat[i];
		sim_n++;
		if (t >= from) {
			cnt[i]++;
			total++;
		}
	}
	sim_complete_until(b, UINT64_MAX);
	return total;
}

TEST(peak_ewma_arithmetic)
{
	struct balance b;
	struct balance_handle h;
	const struct balance_ep *e;
	uint64_t t = 5 * SEC;

	setup(&b, NULL, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	/* A new endpoint starts at default_rtt, decaying with tau = 10 s. */
	CHECK(near(balance_ewma(&b, e, t), 30.0 * MS, 1e-12));
	CHECK(near(balance_ewma(&b, e, t + 10 * SEC),
	           30.0 * MS * 0.36787944117144233, 1e-12));
	CHECK(near(balance_ewma(&b, e, t + 1 * SEC),
	           30.0 * MS * 0.90483741803595957, 1e-12));
	/* A sample above the current value: the estimate jumps to it. */
	REQUIRE(balance_pick(&b, t, &h) == 0);
	CHECK(balance_done(&b, &h, t, 100 * MS, 1) == 0);
	CHECK(near(balance_ewma(&b, e, t), 100.0 * MS, 1e-12));
	/* Below: blend by the time since the last sample,
	 * 100 * e^-0.1 + 10 * (1 - e^-0.1) ms. */
	t += SEC;
	REQUIRE(balance_pick(&b, t, &h) == 0);
	CHECK(balance_done(&b, &h, t, 10 * MS, 1) == 0);
	CHECK(near(balance_ewma(&b, e, t), 91.435367623236363 * MS, 1e-12));
	/* Long silence decays towards 0, far below the default. */
	CHECK(balance_ewma(&b, e, t + 100 * SEC) < 0.01 * MS);
	balance_destroy(&b);
}

TEST(cost_counts_pending_age_and_weight)
{
	struct balance b;
	struct balance_handle h1, h2;
	struct balance_key k[2];
	const struct balance_ep *e;
	uint64_t t = SEC;

	setup(&b, NULL, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	CHECK(near(balance_cost(&b, e, t), 30.0 * MS, 1e-12));
	REQUIRE(balance_pick(&b, t, &h1) == 0);
	CHECK(e->pending == 1);
	CHECK(near(balance_cost(&b, e, t), 60.0 * MS, 1e-12));
	/* The request is 100 ms old, longer than the EWMA: its age
	 * is the latency estimate (2 x 100 ms). */
	CHECK(near(balance_cost(&b, e, t + 100 * MS), 200.0 * MS, 1e-12));
	/* Mean age of pending requests: 300 ms and 100 ms -> 200 ms x 3. */
	REQUIRE(balance_pick(&b, t + 200 * MS, &h2) == 0);
	CHECK(near(balance_cost(&b, e, t + 300 * MS), 600.0 * MS, 1e-12));
	CHECK(balance_done(&b, &h1, t + 300 * MS, 300 * MS, 1) == 0);
	CHECK(balance_done(&b, &h2, t + 300 * MS, 100 * MS, 1) == 0);
	CHECK(e->pending == 0);
	CHECK(near(balance_cost(&b, e, t + 300 * MS), 300.0 * MS, 1e-12));
	/* Weight 20000 halves the cost, 0 counts as 1 (10000x). */
	key_set(&k[0], 0, 20000);
	key_set(&k[1], 1, 0);
	REQUIRE(balance_update(&b, k, 2, t + 300 * MS) == 0);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	CHECK(near(balance_cost(&b, e, t + 300 * MS), 150.0 * MS, 1e-12));
	e = find_ep(&b, 1);
	REQUIRE(e != NULL);
	CHECK(e->weight == 1);
	CHECK(near(balance_cost(&b, e, t + 300 * MS), 300000.0 * MS, 1e-12));
	balance_destroy(&b);
}

TEST(p2c_avoids_100x_slower_endpoint)
{
	struct balance b;
	uint64_t lat[10];
	unsigned long cnt[10] = { 0 }, total, rr_slow;
	unsigned i;

	for (i = 0; i < 10; i++)
		lat[i] = 10 * MS;
	lat[3] = 1000 * MS;
	setup(&b, NULL, 10, 42, 0);
	/* 1000 req/s for 70 s; measure after a 10 s warm-up. */
	total = sim_run(&b, lat, 0, 70 * SEC, MS, 10 * SEC, cnt);
	REQUIRE(total == 60000);
	printf("# slow endpoint got %lu of %lu requests (%.3f %%)\n",
	       cnt[3], total, 100.0 * (double)cnt[3] / (double)total);
	CHECK(cnt[3] * 50 < total); /* under 2 % */
	CHECK(cnt[3] > 0);          /* but still probed now and then */
	for (i = 0; i < 10; i++)
		if (i != 3) /* the rest share evenly: 11.1 % each */
			CHECK(cnt[i] * 100 > total * 9 &&
			      cnt[i] * 100 < total * 14);
	/* Round-robin over the same set would give it every 10th. */
	for (rr_slow = 0, i = 0; i < total; i++)
		rr_slow += (i % 10) == 3;
	CHECK(rr_slow * 10 == total);
	CHECK(cnt[3] * 5 < rr_slow);
	balance_destroy(&b);
}

TEST(new_endpoint_neither_flooded_nor_starved)
{
	struct balance b;
	struct balance_key k[10];
	uint64_t lat[10];
	unsigned long cnt[10] = { 0 }, total;
	unsigned i;

	for (i = 0; i < 10; i++) {
		lat[i] = 10 * MS;
		key_set(&k[i], i, BALANCE_WEIGHT_UNIT);
	}
	setup(&b, NULL, 9, 7, 0);
	memset(cnt, 0, sizeof(cnt));
	sim_run(&b, lat, 0, 20 * SEC, MS, 20 * SEC, cnt);
	REQUIRE(balance_update(&b, k, 10, 20 * SEC) == 0);
	/* First second after it joined: some traffic, far from all. */
	total = sim_run(&b, lat, 20 * SEC, 21 * SEC, MS, 20 * SEC, cnt);
	printf("# new endpoint: %lu of %lu in its first second\n", cnt[9],
	       total);
	CHECK(cnt[9] * 100 > total * 1);
	CHECK(cnt[9] * 100 < total * 30);
	/* Once measured it converges to its fair share (1/10). */
	memset(cnt, 0, sizeof(cnt));
	total = sim_run(&b, lat, 21 * SEC, 60 * SEC, MS, 40 * SEC, cnt);
	CHECK(cnt[9] * 100 > total * 7 && cnt[9] * 100 < total * 13);
	balance_destroy(&b);
}

TEST(weights_bias_selection)
{
	struct balance b;
	struct balance_key k[4];
	uint64_t lat[4] = { 10 * MS, 10 * MS, 10 * MS, 10 * MS };
	unsigned long cnt[4] = { 0 }, total;
	unsigned i;

	balance_init(&b, NULL, 3);
	for (i = 0; i < 4; i++)
		key_set(&k[i], i, BALANCE_WEIGHT_UNIT);
	k[0].weight = 4 * BALANCE_WEIGHT_UNIT;
	k[3].weight = BALANCE_WEIGHT_UNIT / 4;
	REQUIRE(balance_update(&b, k, 4, 0) == 0);
	total = sim_run(&b, lat, 0, 30 * SEC, MS / 2, 5 * SEC, cnt);
	printf("# weights 4/1/1/0.25: %lu %lu %lu %lu\n", cnt[0], cnt[1],
	       cnt[2], cnt[3]);
	CHECK(cnt[0] * 100 > total * 35);         /* > fair 25 % */
	CHECK(cnt[3] * 100 < total * 15);         /* < fair 25 % */
	CHECK(cnt[0] > 2 * cnt[1] && cnt[0] > 2 * cnt[2]);
	CHECK(cnt[3] < cnt[1] && cnt[3] < cnt[2]);
	balance_destroy(&b);
}

TEST(deterministic_with_fixed_seed)
{
	struct balance a, b, c;
	int same_ab = 1, same_ac = 1, i;

	setup(&a, NULL, 10, 99, 0);
	setup(&b, NULL, 10, 99, 0);
	setup(&c, NULL, 10, 100, 0);
	for (i = 0; i < 200; i++) {
		struct balance_handle ha, hb, hc;

		REQUIRE(balance_pick(&a, (uint64_t)i * MS, &ha) == 0);
		REQUIRE(balance_pick(&b, (uint64_t)i * MS, &hb) == 0);
		REQUIRE(balance_pick(&c, (uint64_t)i * MS, &hc) == 0);
		same_ab &= ep_index(&a, &ha) == ep_index(&b, &hb);
		same_ac &= ep_index(&a, &ha) == ep_index(&c, &hc);
		/* Complete every other request, with varying latency. */
		if (i % 2) {
			uint64_t t = (uint64_t)i * MS, lat = (uint64_t)i * 100;

			balance_done(&a, &ha, t, lat, 1);
			balance_done(&b, &hb, t, lat, 1);
			balance_done(&c, &hc, t, lat, 1);
		}
	}
	CHECK(same_ab);
	CHECK(!same_ac);
	balance_destroy(&a);
	balance_destroy(&b);
	balance_destroy(&c);
}

static struct balance_cfg cfg_nojitter(void)
{
	struct balance_cfg c;

	balance_cfg_default(&c);
	c.jitter = 0.0;
	return c;
}

/* Picks on a one-endpoint balancer and completes with <ok>. */
static int one_request(struct balance *b, uint64_t t, int ok)
{
	struct balance_handle h;
	int rc = balance_pick(b, t, &h);

	if (rc)
		return rc;
	return balance_done(b, &h, t, MS, ok);
}

TEST(ejects_after_7_consecutive_failures)
{
	struct balance_cfg c = cfg_nojitter();
	struct balance b;
	struct balance_stats st;
	const struct balance_ep *e;
	struct balance_handle h;
	uint64_t t = SEC;
	int i;

	setup(&b, &c, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	/* 6 failures, a success, 6 failures: never 7 in a row. */
	for (i = 0; i < 6; i++)
		CHECK(one_request(&b, t, 0) == 0);
	CHECK(one_request(&b, t, 1) == 0);
	for (i = 0; i < 6; i++)
		CHECK(one_request(&b, t, 0) == 0);
	CHECK(e->st == BALANCE_ST_CLOSED && e->failures == 6);
	/* The 7th consecutive failure ejects. */
	CHECK(one_request(&b, t, 0) == 0);
	CHECK(e->st == BALANCE_ST_EJECTED);
	CHECK(e->eject_until == t + SEC);
	CHECK(balance_pick(&b, t, &h) == -EAGAIN);
	CHECK(balance_pick(&b, t + SEC - 1, &h) == -EAGAIN);
	balance_get_stats(&b, &st);
	CHECK(st.ejections == 1 && st.unavailable == 2);
	CHECK(st.endpoints == 1 && st.ready == 0 && st.ejected == 1);
	balance_destroy(&b);
}

TEST(cancelled_requests_are_no_verdict)
{
	struct balance_cfg c = cfg_nojitter();
	struct balance b;
	const struct balance_ep *e;
	struct balance_handle p, h;
	uint64_t t = SEC;
	int i;

	setup(&b, &c, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	/* a client that gives up 20 requests in a row ejects nothing and
	 * does not reset the failure count either */
	for (i = 0; i < 6; i++)
		CHECK(one_request(&b, t, 0) == 0);
	for (i = 0; i < 20; i++)
		CHECK(one_request(&b, t, BALANCE_CANCELLED) == 0);
	CHECK(e->st == BALANCE_ST_CLOSED && e->failures == 6);
	CHECK(e->pending == 0);
	CHECK(one_request(&b, t, 0) == 0);
	CHECK(e->st == BALANCE_ST_EJECTED);
	/* a cancelled probe decides nothing: the next request probes */
	t += SEC;
	REQUIRE(balance_pick(&b, t, &p) == 0);
	CHECK(p.probe == 1);
	CHECK(balance_pick(&b, t, &h) == -EAGAIN);
	CHECK(balance_done(&b, &p, t, MS, BALANCE_CANCELLED) == 0);
	CHECK(e->st == BALANCE_ST_PROBING);
	REQUIRE(balance_pick(&b, t, &p) == 0);
	CHECK(p.probe == 1);
	CHECK(balance_done(&b, &p, t, MS, 1) == 0);
	CHECK(e->st == BALANCE_ST_CLOSED && e->failures == 0);
	balance_destroy(&b);
}

TEST(single_probe_then_doubling_then_reset)
{
	struct balance_cfg c = cfg_nojitter();
	struct balance b;
	struct balance_stats st;
	const struct balance_ep *e;
	struct balance_handle p, h;
	uint64_t t = SEC, pen = SEC;
	uint64_t expect[] = { 2, 4, 8, 16, 32, 60, 60 };
	unsigned i;

	setup(&b, &c, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	for (i = 0; i < 7; i++)
		one_request(&b, t, 0);
	REQUIRE(e->st == BALANCE_ST_EJECTED);
	for (i = 0; i < 7; i++) {
		/* Penalty over: exactly one request goes, as the probe. */
		t += pen;
		REQUIRE(balance_pick(&b, t, &p) == 0);
		CHECK(p.probe == 1);
		CHECK(e->st == BALANCE_ST_PROBING);
		CHECK(balance_pick(&b, t, &h) == -EAGAIN);
		CHECK(balance_pick(&b, t + 100 * SEC, &h) == -EAGAIN);
		/* The probe fails: ejected again for twice as long (max 60 s),
		 * from the time the probe failed. */
		t += 100 * SEC;
		CHECK(balance_done(&b, &p, t, MS, 0) == 0);
		CHECK(e->st == BALANCE_ST_EJECTED);
		pen = expect[i] * SEC;
		CHECK(e->eject_until == t + pen);
		CHECK(balance_pick(&b, t + pen - 1, &h) == -EAGAIN);
	}
	/* A successful probe closes the breaker and resets the back-off. */
	t += pen;
	REQUIRE(balance_pick(&b, t, &p) == 0);
	CHECK(p.probe == 1);
	CHECK(balance_done(&b, &p, t, MS, 1) == 0);
	CHECK(e->st == BALANCE_ST_CLOSED && e->failures == 0);
	REQUIRE(balance_pick(&b, t, &p) == 0);
	REQUIRE(balance_pick(&b, t, &h) == 0); /* no longer one at a time */
	CHECK(p.probe == 0 && h.probe == 0);
	CHECK(balance_done(&b, &p, t, MS, 1) == 0);
	CHECK(balance_done(&b, &h, t, MS, 1) == 0);
	for (i = 0; i < 7; i++)
		one_request(&b, t, 0);
	CHECK(e->st == BALANCE_ST_EJECTED);
	CHECK(e->eject_until == t + SEC); /* back to the first penalty */
	balance_get_stats(&b, &st);
	CHECK(st.ejections == 2 && st.reejections == 7);
	CHECK(st.probes == 8 && st.recoveries == 1);
	balance_destroy(&b);
}

TEST(late_outcomes_do_not_decide_the_probe)
{
	struct balance_cfg c = cfg_nojitter();
	struct balance b;
	struct balance_handle h[10], p;
	const struct balance_ep *e;
	uint64_t t = SEC;
	int i;

	setup(&b, &c, 1, 1, t);
	e = find_ep(&b, 0);
	REQUIRE(e != NULL);
	for (i = 0; i < 10; i++)
		REQUIRE(balance_pick(&b, t, &h[i]) == 0);
	for (i = 0; i < 7; i++)
		CHECK(balance_done(&b, &h[i], t, MS, 0) == 0);
	CHECK(e->st == BALANCE_ST_EJECTED);
	/* Requests sent before the ejection come back while probing. */
	t += SEC;
	REQUIRE(balance_pick(&b, t, &p) == 0);
	CHECK(p.probe == 1);
	CHECK(balance_done(&b, &h[7], t, MS, 1) == 0);
	CHECK(balance_done(&b, &h[8], t, MS, 0) == 0);
	CHECK(e->st == BALANCE_ST_PROBING && e->probe_out);
	CHECK(balance_done(&b, &p, t, MS, 1) == 0);
	CHECK(e->st == BALANCE_ST_CLOSED);
	CHECK(balance_done(&b, &h[9], t, MS, 1) == 0);
	CHECK(e->pending == 0);
	balance_destroy(&b);
}

TEST(ejected_endpoint_gets_no_traffic_and_jitter_bounds)
{
	struct balance b;
	struct balance_handle h;
	const struct balance_ep *e0;
	uint64_t t = SEC;
	int i, all_other = 1;

	setup(&b, NULL, 3, 5, t); /* default jitter 0.5 */
	e0 = find_ep(&b, 0);
	REQUIRE(e0 != NULL);
	/* Fail every request to endpoint 0 until it is ejected. */
	for (i = 0; i < 1000 && e0->st == BALANCE_ST_CLOSED; i++) {
		REQUIRE(balance_pick(&b, t, &h) == 0);
		balance_done(&b, &h, t, MS, ep_index(&b, &h) != 0);
	}
	REQUIRE(e0->st == BALANCE_ST_EJECTED);
	CHECK(e0->eject_until >= t + SEC);
	CHECK(e0->eject_until <= t + SEC + SEC / 2);
	for (i = 0; i < 300; i++) {
		REQUIRE(balance_pick(&b, t + SEC - 1, &h) == 0);
		all_other &= ep_index(&b, &h) != 0;
		balance_done(&b, &h, t + SEC - 1, MS, 1);
	}
	CHECK(all_other);
	balance_destroy(&b);
}

TEST(update_keeps_state_of_kept_endpoints)
{
	struct balance_cfg c = cfg_nojitter();
	struct balance b;
	struct balance_key k[3];
	struct balance_handle h;
	const struct balance_ep *e;
	uint64_t t = SEC;
	double ewma1;
	int i;

	setup(&b, &c, 3, 1, t);
	/* Give endpoint 1 a measured EWMA, then endpoint 2 three failures
	 * and one request in flight. */
	for (i = 0; i < 200 && find_ep(&b, 1)->ewma_ns != 500.0 * MS; i++) {
		REQUIRE(balance_pick(&b, t, &h) == 0);
		balance_done(&b, &h, t, ep_index(&b, &h) == 1 ? 500 * MS : MS,
		             1);
	}
	for (i = 0; i < 200; i++) {
		int x;

		REQUIRE(balance_pick(&b, t, &h) == 0);
		x = ep_index(&b, &h);
		if (x == 2 && find_ep(&b, 2)->failures == 3)
			break; /* keep this one in flight */
		balance_done(&b, &h, t, x == 1 ? 500 * MS : MS, x != 2);
	}
	e = find_ep(&b, 1);
	REQUIRE(e != NULL);
	ewma1 = balance_ewma(&b, e, t);
	CHECK(ewma1 == 500.0 * MS);
	e = find_ep(&b, 2);
	REQUIRE(e != NULL && e->failures == 3 && e->pending == 1);
	/* New list: 2 (new weight), 1, 7 (new); 0 is dropped. */
	key_set(&k[0], 2, 30000);
	key_set(&k[1], 1, BALANCE_WEIGHT_UNIT);
	key_set(&k[2], 7, BALANCE_WEIGHT_UNIT);
	REQUIRE(balance_update(&b, k, 3, t) == 0);
	CHECK(find_ep(&b, 0) == NULL);
	e = find_ep(&b, 1);
	REQUIRE(e != NULL);
	CHECK(balance_ewma(&b, e, t) == ewma1);
	e = find_ep(&b, 2);
	REQUIRE(e != NULL);
	CHECK(e->failures == 3 && e->pending == 1 && e->weight == 30000);
	e = find_ep(&b, 7);
	REQUIRE(e != NULL);
	CHECK(balance_ewma(&b, e, t) == 30.0 * MS && e->pending == 0);
	/* Four more failures on 2 eject it: the count carried over. */
	for (i = 0; i < 500 && find_ep(&b, 2)->st == BALANCE_ST_CLOSED; i++) {
		REQUIRE(balance_pick(&b, t, &h) == 0);
		balance_done(&b, &h, t, MS, ep_index(&b, &h) != 2);
	}
	CHECK(find_ep(&b, 2)->st == BALANCE_ST_EJECTED);
	CHECK(b.st.ejections == 1);
	balance_destroy(&b);
}

TEST(removed_endpoint_handle_stays_valid)
{
	struct balance b;
	struct balance_key k[2];
	struct balance_handle h, h2;
	struct balance_stats st;
	double ewma;
	int i;

	setup(&b, NULL, 1, 1, SEC);
	REQUIRE(balance_pick(&b, SEC, &h) == 0);
	REQUIRE(balance_pick(&b, SEC, &h2) == 0);
	CHECK(balance_done(&b, &h2, SEC, 200 * MS, 1) == 0);
	ewma = balance_ewma(&b, balance_ep_of(&b, &h), SEC);
	/* Replace endpoint 0 by 1 while a request to 0 is in flight. */
	key_set(&k[0], 1, BALANCE_WEIGHT_UNIT);
	REQUIRE(balance_update(&b, k, 1, SEC) == 0);
	CHECK(find_ep(&b, 0) == NULL);
	CHECK(ep_index(&b, &h) == 0);           /* address still readable */
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == 1 && st.draining == 1);
	for (i = 0; i < 50; i++) {              /* never picked again */
		REQUIRE(balance_pick(&b, SEC, &h2) == 0);
		CHECK(ep_index(&b, &h2) == 1);
		CHECK(balance_done(&b, &h2, SEC, MS, 1) == 0);
	}
	/* Re-added while draining: revived with its state. */
	key_set(&k[1], 0, BALANCE_WEIGHT_UNIT);
	REQUIRE(balance_update(&b, k, 2, SEC) == 0);
	REQUIRE(find_ep(&b, 0) != NULL);
	CHECK(find_ep(&b, 0)->pending == 1);
	CHECK(balance_ewma(&b, find_ep(&b, 0), SEC) == ewma);
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == 2 && st.draining == 0);
	/* Removed again; its last request ends: the slot is freed. */
	REQUIRE(balance_update(&b, k, 1, 2 * SEC) == 0);
	CHECK(balance_done(&b, &h, 2 * SEC, SEC, 0) == 0);
	balance_get_stats(&b, &st);
	CHECK(st.draining == 0 && st.ejections == 0);
	CHECK(balance_addr(&b, &h) == NULL);
	CHECK(balance_done(&b, &h, 2 * SEC, SEC, 1) == -ESTALE);
	/* The freed slot is reused by a new endpoint: the old handle still
	 * does not reach it (generation). */
	key_set(&k[1], 5, BALANCE_WEIGHT_UNIT);
	REQUIRE(balance_update(&b, k, 2, 2 * SEC) == 0);
	CHECK(h.idx < b.nslots && b.ep[h.idx].used);
	CHECK(balance_addr(&b, &h) == NULL);
	CHECK(balance_done(&b, &h, 2 * SEC, SEC, 1) == -ESTALE);
	CHECK(find_ep(&b, 5)->pending == 0);
	balance_destroy(&b);
}

TEST(update_errors_empty_and_duplicates)
{
	struct balance b;
	struct balance_key k[3];
	struct balance_handle h;
	struct balance_stats st;

	balance_init(&b, NULL, 1);
	CHECK(balance_pick(&b, 0, &h) == -ENOENT);
	CHECK(balance_update(&b, k, BALANCE_MAX_EP + 1, 0) == -E2BIG);
	key_set(&k[0], 0, 100);
	key_set(&k[1], 1, BALANCE_WEIGHT_UNIT);
	key_set(&k[2], 0, 300); /* duplicate: the first wins */
	REQUIRE(balance_update(&b, k, 3, 0) == 0);
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == 2 && st.ready == 2);
	CHECK(find_ep(&b, 0)->weight == 100);
	/* Allocation failure: -ENOMEM and the old set stays. */
	key_set(&k[2], 2, BALANCE_WEIGHT_UNIT);
	mem_fail_after(1);
	CHECK(balance_update(&b, k, 3, 0) == -ENOMEM);
	mem_fail_reset();
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == 2 && find_ep(&b, 2) == NULL);
	/* Empty list: everything goes. */
	REQUIRE(balance_update(&b, NULL, 0, 0) == 0);
	CHECK(balance_pick(&b, 0, &h) == -ENOENT);
	balance_destroy(&b);
	balance_destroy(&b); /* idempotent */
}

TEST(slot_bound_with_draining_endpoints)
{
	static struct balance_key k[BALANCE_MAX_EP];
	struct balance b;
	struct balance_stats st;
	struct balance_handle h;
	unsigned i, round;

	balance_init(&b, NULL, 11);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < BALANCE_MAX_EP; i++) {
			memset(&k[i], 0, sizeof(k[i]));
			k[i].addr.sin.sin_family = AF_INET;
			k[i].addr.sin.sin_addr.s_addr = htonl(0x0a000000u |
			                                      round << 16 | i);
			k[i].addr.sin.sin_port = htons(80);
			k[i].addr.len = sizeof(k[i].addr.sin);
			k[i].weight = BALANCE_WEIGHT_UNIT;
		}
		if (round == 2)
			break;
		REQUIRE(balance_update(&b, k, BALANCE_MAX_EP, 0) == 0);
		/* Leave a request in flight on every endpoint: P2C prefers the
		 * idle ones, so enough picks reach them all. */
		for (i = 0; i < 8 * BALANCE_MAX_EP; i++)
			REQUIRE(balance_pick(&b, 0, &h) == 0);
	}
	balance_get_stats(&b, &st);
	REQUIRE(st.draining == BALANCE_MAX_EP);
	/* 4096 draining + 4096 live: no room for 4096 more. */
	CHECK(balance_update(&b, k, BALANCE_MAX_EP, 0) == -ENOSPC);
	CHECK(balance_update(&b, k, 1, 0) == -ENOSPC);
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == BALANCE_MAX_EP);
	/* An empty list: the live set goes draining too. */
	CHECK(balance_update(&b, NULL, 0, 0) == 0);
	balance_get_stats(&b, &st);
	CHECK(st.endpoints == 0 && st.draining == 2 * BALANCE_MAX_EP);
	balance_destroy(&b);
}

TEST(state_names)
{
	CHECK_STR(balance_st_str(BALANCE_ST_CLOSED), "closed");
	CHECK_STR(balance_st_str(BALANCE_ST_EJECTED), "ejected");
	CHECK_STR(balance_st_str(BALANCE_ST_PROBING), "probing");
}

/* The round-robin baseline takes every ready endpoint in turn. */
TEST(round_robin_takes_turns)
{
	struct balance b;
	struct balance_cfg cfg;
	struct balance_key k[4];
	struct balance_handle h;
	unsigned seen[4] = { 0 };
	char err[64];
	int i, j;

	balance_cfg_default(&cfg);
	cfg.round_robin = 1;
	balance_init(&b, &cfg, 1);
	for (i = 0; i < 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.0.%d:80", i + 1);
		REQUIRE(sock_addr_parse(a, &k[i].addr, err, sizeof(err)) == 0);
		k[i].weight = 10000;
	}
	REQUIRE(balance_update(&b, k, 4, 1000) == 0);
	for (i = 0; i < 400; i++) {
		REQUIRE(balance_pick(&b, 1000 + (uint64_t)i, &h) == 0);
		for (j = 0; j < 4; j++)
			if (!sock_addr_compare(balance_addr(&b, &h), &k[j].addr))
				seen[j]++;
		CHECK(balance_done(&b, &h, 2000 + (uint64_t)i,
		                   j == 0 ? 1000000000ull : 1000, 1) == 0);
	}
	for (j = 0; j < 4; j++)
		CHECK(seen[j] == 100);
	balance_destroy(&b);
}

/* A retry's pick leaves out the endpoint that just failed while another
 * one is ready; with one endpoint it still gets it. */
TEST(pick_other_avoids_the_failed_endpoint)
{
	struct balance b;
	struct balance_key k[3];
	struct balance_cfg cfg;
	struct balance_handle h, r;
	char err[64];
	int i;

	/* no failure accrual: every endpoint stays ready */
	balance_cfg_default(&cfg);
	cfg.max_failures = 0;
	balance_init(&b, &cfg, 7);
	for (i = 0; i < 3; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.1.%d:80", i + 1);
		REQUIRE(sock_addr_parse(a, &k[i].addr, err, sizeof(err)) == 0);
		k[i].weight = 10000;
	}
	REQUIRE(balance_update(&b, k, 3, 1000) == 0);
	for (i = 0; i < 300; i++) {
		REQUIRE(balance_pick(&b, 2000, &h) == 0);
		CHECK(balance_done(&b, &h, 3000, 1000, 0) == 0);
		REQUIRE(balance_pick_other(&b, 3000, &h, 1, &r) == 0);
		CHECK(r.idx != h.idx);
		CHECK(balance_done(&b, &r, 4000, 1000, 1) == 0);
		if (r.idx == h.idx)
			break;
	}
	balance_destroy(&b);
	balance_init(&b, NULL, 7);
	REQUIRE(balance_update(&b, k, 1, 1000) == 0);
	REQUIRE(balance_pick(&b, 2000, &h) == 0);
	CHECK(balance_done(&b, &h, 3000, 1000, 1) == 0);
	REQUIRE(balance_pick_other(&b, 3000, &h, 1, &r) == 0);
	CHECK(r.idx == h.idx);
	CHECK(balance_done(&b, &r, 4000, 1000, 1) == 0);
	balance_destroy(&b);
}
