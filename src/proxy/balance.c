/*
 * balance: P2C over peak-EWMA cost with consecutive-failure accrual. The
 * contracts are in balance.h; the algorithms and their Linkerd/Finagle
 * origins in docs/balancing.md.
 *
 * IMPLEMENTATION NOTES
 * - Slots: b->ep[0..nslots) are "used" (an endpoint, live or draining) or
 *   free. Used slots always hold distinct addresses. A slot's generation is
 *   bumped when it is freed, which invalidates every handle to it.
 * - ready[]: the live slots that may be picked now (CLOSED, or PROBING with
 *   no probe out), dense, each slot knowing its position (ready_pos) for
 *   O(1) swap-removal. P2C draws from it, so a pick is O(1) and ejected
 *   endpoints cost nothing per request. EJECTED endpoints come back when
 *   the clock passes b->next_wake (the earliest eject_until): only then is
 *   the slot array scanned.
 * - Mean age of pending requests: each pick adds its time to start_sum
 *   and balance_done subtracts it, modulo 2^64; pending * now - start_sum
 *   is then the exact sum of ages (no overflow below 584 years of summed
 *   age) because the balancer's clock never runs backwards.
 * - No libm: the module has its own exp(-x) (the unit-test runner and the
 *   static binary do not link -lm).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "proxy/balance.h"

#define BALANCE_LN2 0.69314718055994530942
#define BALANCE_DUP_KEY (UINT32_MAX - 1) /* slot_of[]: a repeated address */

/* e^-x for x >= 0 (1 for x <= 0 or NaN), relative error ~1e-15:
 * e^-x = 2^-k * e^-r with r in [0, ln 2), e^-r by its Taylor series. */
static double balance_exp_neg(double x)
{
	double r, sum, term, scale;
	uint64_t bits;
	int k, i;

	if (!(x > 0.0))
		return 1.0;
	if (x > 700.0)
		return 0.0;
	k = (int)(x / BALANCE_LN2);
	r = x - (double)k * BALANCE_LN2;
	if (r < 0.0) {
		k--;
		r += BALANCE_LN2;
	}
	sum = 1.0;
	term = 1.0;
	for (i = 1; i <= 20; i++) {
		term *= -r / i;
		sum += term;
	}
	bits = (uint64_t)(1023 - k) << 52; /* 2^-k, k <= 1010: normal */
	memcpy(&scale, &bits, sizeof(scale));
	return sum * scale;
}

/* xorshift64* (Vigna): small, fast, good enough for P2C and jitter. */
static uint64_t balance_rand(struct balance *b)
{
	uint64_t x = b->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n), n >= 1 (multiply-shift on the high bits). */
static uint32_t balance_rand_below(struct balance *b, uint32_t n)
{
	return (uint32_t)(((balance_rand(b) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static double balance_rand01(struct balance *b)
{
	return (double)(balance_rand(b) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t balance_clock(struct balance *b, uint64_t now_ns)
{
	if (now_ns > b->now)
		b->now = now_ns;
	return b->now;
}

void balance_cfg_default(struct balance_cfg *cfg)
{
	cfg->default_rtt_ns = BALANCE_DEF_RTT_NS;
	cfg->decay_ns = BALANCE_DEF_DECAY_NS;
	cfg->max_failures = BALANCE_DEF_MAX_FAILURES;
	cfg->min_penalty_ns = BALANCE_DEF_MIN_PENALTY_NS;
	cfg->max_penalty_ns = BALANCE_DEF_MAX_PENALTY_NS;
	cfg->jitter = BALANCE_DEF_JITTER;
}

void balance_init(struct balance *b, const struct balance_cfg *cfg,
                  uint64_t seed)
{
	memset(b, 0, sizeof(*b));
	if (cfg)
		b->cfg = *cfg;
	else
		balance_cfg_default(&b->cfg);
	if (b->cfg.decay_ns == 0)
		b->cfg.decay_ns = BALANCE_DEF_DECAY_NS;
	if (!(b->cfg.jitter >= 0.0))
		b->cfg.jitter = 0.0;
	if (b->cfg.jitter > 100.0)
		b->cfg.jitter = 100.0;
	if (b->cfg.max_penalty_ns < b->cfg.min_penalty_ns)
		b->cfg.max_penalty_ns = b->cfg.min_penalty_ns;
	/* splitmix64 of the seed: nearby seeds give unrelated streams, and
	 * the state is never 0 (xorshift's fixed point). */
	seed += 0x9E3779B97F4A7C15ull;
	seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9ull;
	seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EBull;
	seed ^= seed >> 31;
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
	b->next_wake = UINT64_MAX;
}

static void balance_ready_add(struct balance *b, uint32_t s)
{
	struct balance_ep *e = &b->ep[s];

	if (e->ready_pos != BALANCE_NONE)
		return;
	e->ready_pos = b->nready;
	b->ready[b->nready++] = s;
}

static void balance_ready_del(struct balance *b, uint32_t s)
{
	struct balance_ep *e = &b->ep[s];
	uint32_t last;

	if (e->ready_pos == BALANCE_NONE)
		return;
	last = b->ready[--b->nready];
	b->ready[e->ready_pos] = last;
	b->ep[last].ready_pos = e->ready_pos;
	e->ready_pos = BALANCE_NONE;
}

static void balance_slot_free(struct balance *b, uint32_t s)
{
	struct balance_ep *e = &b->ep[s];
	uint32_t gen = e->gen + 1;

	balance_ready_del(b, s);
	memset(e, 0, sizeof(*e));
	e->gen = gen;
	e->ready_pos = BALANCE_NONE;
}

double balance_ewma(const struct balance *b, const struct balance_ep *e,
                    uint64_t now_ns)
{
	uint64_t dt = now_ns > e->ewma_at ? now_ns - e->ewma_at : 0;
	double x = (double)dt / (double)b->cfg.decay_ns;

	return e->ewma_ns * balance_exp_neg(x);
}

double balance_cost(const struct balance *b, const struct balance_ep *e,
                    uint64_t now_ns)
{
	double rtt = balance_ewma(b, e, now_ns);

	if (now_ns < b->now)
		now_ns = b->now;
	if (e->pending) {
		uint64_t ages = (uint64_t)e->pending * now_ns - e->start_sum;
		double mean = (double)ages / (double)e->pending;

		if (mean > rtt)
			rtt = mean;
	}
	return rtt * (double)(e->pending + 1) * (double)BALANCE_WEIGHT_UNIT /
	       (double)e->weight;
}

/* Peak-EWMA sample: jump up to a higher sample, else blend by the time
 * since the last sample (Finagle's PeakEwma, tower's RttEstimate). */
static void balance_observe(struct balance *b, struct balance_ep *e,
                            uint64_t now, double sample)
{
	uint64_t dt = now > e->ewma_at ? now - e->ewma_at : 0;
	double w = balance_exp_neg((double)dt / (double)b->cfg.decay_ns);
	double cur = e->ewma_ns * w;

	if (sample > cur)
		e->ewma_ns = sample;
	else
		e->ewma_ns = cur + sample * (1.0 - w);
	e->ewma_at = now;
}

/* Opens the breaker of <e> for the current penalty: min_penalty doubled
 * per ejection since the last success, capped, plus jitter. */
static void balance_eject(struct balance *b, uint32_t s, uint64_t now)
{
	struct balance_ep *e = &b->ep[s];
	const struct balance_cfg *c = &b->cfg;
	uint64_t base = c->min_penalty_ns, dur, room;
	uint32_t i;

	for (i = 0; i < e->backoff_iter && base < c->max_penalty_ns; i++)
		base = base > c->max_penalty_ns / 2 ? c->max_penalty_ns
		                                    : base * 2;
	if (base > c->max_penalty_ns)
		base = c->max_penalty_ns;
	dur = base;
	if (c->jitter > 0.0) {
		double j = (double)base * c->jitter * balance_rand01(b);

		room = c->max_penalty_ns - base;
		dur += j >= (double)room ? room : (uint64_t)j;
	}
	if (e->backoff_iter < 64)
		e->backoff_iter++;
	e->st = BALANCE_ST_EJECTED;
	e->failures = 0;
	e->eject_until = now + dur;
	if (e->eject_until < now)
		e->eject_until = UINT64_MAX;
	balance_ready_del(b, s);
	if (e->live && e->eject_until < b->next_wake)
		b->next_wake = e->eject_until;
}

/* Moves endpoints whose penalty is over to PROBING; only when the clock
 * passed the earliest eject_until. */
static void balance_wake(struct balance *b, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint32_t s;

	if (now < b->next_wake)
		return;
	for (s = 0; s < b->nslots; s++) {
		struct balance_ep *e = &b->ep[s];

		if (!e->used || !e->live || e->st != BALANCE_ST_EJECTED)
			continue;
		if (e->eject_until <= now) {
			e->st = BALANCE_ST_PROBING;
			e->probe_out = 0;
			balance_ready_add(b, s);
		} else if (e->eject_until < next) {
			next = e->eject_until;
		}
	}
	b->next_wake = next;
}

struct balance_sortkey {
	const struct sock_addr *addr;
	uint32_t i;
};

static int balance_sortkey_cmp(const void *pa, const void *pb)
{
	const struct balance_sortkey *a = pa, *b = pb;
	int c = sock_addr_compare(a->addr, b->addr);

	if (c)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Index (into keys) of the first occurrence of <addr> in the sorted
 * <sk>[0..n), or BALANCE_NONE. */
static uint32_t balance_lookup(const struct balance_sortkey *sk, size_t n,
                               const struct sock_addr *addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sock_addr_compare(sk[mid].addr, addr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && sock_addr_compare(sk[lo].addr, addr) == 0)
		return sk[lo].i;
	return BALANCE_NONE;
}

static int balance_pickable(const struct balance_ep *e)
{
	return e->st == BALANCE_ST_CLOSED ||
	       (e->st == BALANCE_ST_PROBING && !e->probe_out);
}

int balance_update(struct balance *b, const struct balance_key *keys,
                   size_t n, uint64_t now_ns)
{
	struct balance_sortkey *sk = NULL;
	uint32_t *slot_of = NULL;
	uint32_t used = 0, freeable = 0, need = 0, after, s, cursor;
	size_t i;
	int rc = -ENOMEM;

	if (n > BALANCE_MAX_EP)
		return -E2BIG;
	now_ns = balance_clock(b, now_ns);
	if (n) {
		sk = mem_alloc(n * sizeof(*sk));
		slot_of = mem_alloc(n * sizeof(*slot_of));
		if (!sk || !slot_of)
			goto out;
		for (i = 0; i < n; i++) {
			sk[i].addr = &keys[i].addr;
			sk[i].i = (uint32_t)i;
			slot_of[i] = BALANCE_NONE;
		}
		qsort(sk, n, sizeof(*sk), balance_sortkey_cmp);
		for (i = 1; i < n; i++)
			if (sock_addr_compare(sk[i - 1].addr, sk[i].addr) == 0)
				slot_of[sk[i].i] = BALANCE_DUP_KEY;
	}

	/* Dry run: match slots to keys, count what the new set needs. */
	for (s = 0; s < b->nslots; s++) {
		struct balance_ep *e = &b->ep[s];
		uint32_t k;

		if (!e->used)
			continue;
		used++;
		k = balance_lookup(sk, n, &e->addr);
		if (k != BALANCE_NONE)
			slot_of[k] = s;
		else if (e->pending == 0)
			freeable++;
	}
	for (i = 0; i < n; i++)
		if (slot_of[i] == BALANCE_NONE)
			need++;
	after = used - freeable + need;
	if (after > BALANCE_MAX_SLOTS) {
		rc = -ENOSPC;
		goto out;
	}
	if (after > b->nslots) {
		struct balance_ep *ne = mem_realloc(b->ep,
		                                    after * sizeof(*ne));

		if (!ne)
			goto out;
		for (s = b->nslots; s < after; s++) {
			memset(&ne[s], 0, sizeof(ne[s]));
			ne[s].ready_pos = BALANCE_NONE;
		}
		b->ep = ne;
		b->nslots = after;
	}
	if (n > b->ready_cap) {
		uint32_t *nr = mem_realloc(b->ready, n * sizeof(*nr));

		if (!nr)
			goto out;
		b->ready = nr;
		b->ready_cap = (uint32_t)n;
	}

	/* Commit: nothing below fails. */
	for (s = 0; s < b->nslots; s++) {
		struct balance_ep *e = &b->ep[s];
		uint32_t k;

		if (!e->used)
			continue;
		k = balance_lookup(sk, n, &e->addr);
		if (k == BALANCE_NONE) {
			if (e->live && e->pending)
				b->ndrain++;
			e->live = 0;
			if (e->pending == 0)
				balance_slot_free(b, s);
			continue;
		}
		if (!e->live) {
			e->live = 1;
			b->ndrain--;
		}
		e->weight = keys[k].weight ? keys[k].weight : 1;
	}
	cursor = 0;
	b->nlive = 0;
	b->nready = 0;
	for (s = 0; s < b->nslots; s++)
		b->ep[s].ready_pos = BALANCE_NONE;
	for (i = 0; i < n; i++) {
		struct balance_ep *e;

		if (slot_of[i] == BALANCE_DUP_KEY)
			continue;
		if (slot_of[i] == BALANCE_NONE) {
			uint32_t gen;

			while (b->ep[cursor].used)
				cursor++;
			slot_of[i] = cursor;
			e = &b->ep[cursor];
			gen = e->gen;
			memset(e, 0, sizeof(*e));
			e->gen = gen;
			e->addr = keys[i].addr;
			e->weight = keys[i].weight ? keys[i].weight : 1;
			e->used = 1;
			e->live = 1;
			e->st = BALANCE_ST_CLOSED;
			e->ewma_ns = (double)b->cfg.default_rtt_ns;
			e->ewma_at = now_ns;
		}
		e = &b->ep[slot_of[i]];
		e->ready_pos = BALANCE_NONE;
		b->nlive++;
		if (balance_pickable(e))
			balance_ready_add(b, slot_of[i]);
	}
	b->next_wake = 0; /* rescan: revived endpoints may be EJECTED */
	rc = 0;
out:
	MEM_FREE(&sk);
	MEM_FREE(&slot_of);
	return rc;
}

/* Picks among the ready slots, leaving out the slots of <avoid>[<navoid>]
 * while another one is ready. */
static int balance_pick_avoid(struct balance *b, uint64_t now_ns,
                              const struct balance_handle *avoid,
                              size_t navoid, struct balance_handle *out);

uint32_t balance_ready_now(struct balance *b, uint64_t now_ns)
{
	now_ns = balance_clock(b, now_ns);
	balance_wake(b, now_ns);
	return b->nready;
}

int balance_pick(struct balance *b, uint64_t now_ns,
                 struct balance_handle *out)
{
	return balance_pick_avoid(b, now_ns, NULL, 0, out);
}

int balance_pick_other(struct balance *b, uint64_t now_ns,
                       const struct balance_handle *avoid, size_t navoid,
                       struct balance_handle *out)
{
	return balance_pick_avoid(b, now_ns, avoid, navoid, out);
}

static int balance_avoided(const struct balance *b, uint32_t s,
                           const struct balance_handle *avoid, size_t navoid)
{
	size_t i;

	for (i = 0; i < navoid; i++)
		if (avoid[i].idx == s && avoid[i].gen == b->ep[s].gen)
			return 1;
	return 0;
}

/* A random ready slot not avoided (and not <other>), or UINT32_MAX. A few
 * draws, then a scan from a random start: O(1) in the usual case. */
static uint32_t balance_draw(struct balance *b,
                             const struct balance_handle *avoid,
                             size_t navoid, uint32_t other)
{
	uint32_t i, k, s;

	for (k = 0; k < 4; k++) {
		s = b->ready[balance_rand_below(b, b->nready)];
		if (s != other && !balance_avoided(b, s, avoid, navoid))
			return s;
	}
	k = balance_rand_below(b, b->nready);
	for (i = 0; i < b->nready; i++) {
		s = b->ready[(k + i) % b->nready];
		if (s != other && !balance_avoided(b, s, avoid, navoid))
			return s;
	}
	return UINT32_MAX;
}

static int balance_pick_avoid(struct balance *b, uint64_t now_ns,
                              const struct balance_handle *avoid,
                              size_t navoid, struct balance_handle *out)
{
	struct balance_ep *e;
	uint32_t s;

	now_ns = balance_clock(b, now_ns);
	if (b->nlive == 0)
		return -ENOENT;
	balance_wake(b, now_ns);
	if (b->nready == 0) {
		b->st.unavailable++;
		return -EAGAIN;
	}
	if (b->nready == 1) {
		s = b->ready[0];
	} else if (b->cfg.round_robin) {
		uint32_t n = b->nready;

		do
			s = b->ready[b->rr++ % b->nready];
		while (--n && balance_avoided(b, s, avoid, navoid));
	} else if (navoid) {
		uint32_t sx = balance_draw(b, avoid, navoid, UINT32_MAX);
		uint32_t sy = sx == UINT32_MAX ? UINT32_MAX :
		              balance_draw(b, avoid, navoid, sx);

		if (sx == UINT32_MAX)  /* every ready one was tried: any */
			return balance_pick_avoid(b, now_ns, NULL, 0, out);
		if (sy == UINT32_MAX)
			s = sx;
		else
			s = balance_cost(b, &b->ep[sy], now_ns) <
			    balance_cost(b, &b->ep[sx], now_ns) ? sy : sx;
	} else {
		uint32_t x = balance_rand_below(b, b->nready);
		uint32_t y = balance_rand_below(b, b->nready - 1);
		uint32_t sx, sy;

		if (y >= x)
			y++;
		sx = b->ready[x];
		sy = b->ready[y];
		s = balance_cost(b, &b->ep[sy], now_ns) <
		    balance_cost(b, &b->ep[sx], now_ns) ? sy : sx;
	}
	e = &b->ep[s];
	e->pending++;
	e->start_sum += now_ns;
	out->idx = s;
	out->gen = e->gen;
	out->start_ns = now_ns;
	out->probe = 0;
	if (e->st == BALANCE_ST_PROBING) {
		e->probe_out = 1;
		out->probe = 1;
		balance_ready_del(b, s);
		b->st.probes++;
	}
	b->st.picks++;
	return 0;
}

static struct balance_ep *balance_slot(const struct balance *b,
                                       const struct balance_handle *h)
{
	struct balance_ep *e;

	if (!h || h->idx >= b->nslots)
		return NULL;
	e = &b->ep[h->idx];
	if (!e->used || e->gen != h->gen)
		return NULL;
	return e;
}

int balance_done(struct balance *b, const struct balance_handle *h,
                 uint64_t now_ns, uint64_t latency_ns, int success)
{
	struct balance_ep *e = balance_slot(b, h);
	uint32_t s;

	if (!e || e->pending == 0)
		return -ESTALE;
	s = h->idx;
	now_ns = balance_clock(b, now_ns);
	e->pending--;
	e->start_sum -= h->start_ns;
	if (success == BALANCE_CANCELLED) {
		/* no verdict: a probe goes out again with a later request */
		if (h->probe && e->st == BALANCE_ST_PROBING && e->probe_out) {
			e->probe_out = 0;
			if (e->live)
				balance_ready_add(b, s);
		}
		goto out;
	}
	balance_observe(b, e, now_ns, (double)latency_ns);

	if (h->probe && e->st == BALANCE_ST_PROBING && e->probe_out) {
		e->probe_out = 0;
		if (success) {
			e->st = BALANCE_ST_CLOSED;
			e->failures = 0;
			e->backoff_iter = 0;
			b->st.recoveries++;
			if (e->live)
				balance_ready_add(b, s);
		} else {
			b->st.reejections++;
			balance_eject(b, s, now_ns);
		}
	} else if (e->st == BALANCE_ST_CLOSED) {
		/* Outcomes of requests sent before an ejection say nothing
		 * about the probe: only CLOSED endpoints accrue. */
		if (success) {
			e->failures = 0;
		} else if (b->cfg.max_failures &&
		           ++e->failures >= b->cfg.max_failures) {
			b->st.ejections++;
			balance_eject(b, s, now_ns);
		}
	}
out:
	if (!e->live && e->pending == 0) {
		b->ndrain--;
		balance_slot_free(b, s);
	}
	return 0;
}

void balance_destroy(struct balance *b)
{
	MEM_FREE(&b->ep);
	MEM_FREE(&b->ready);
	b->nslots = 0;
	b->nlive = 0;
	b->nready = 0;
	b->ready_cap = 0;
	b->ndrain = 0;
}

const struct balance_ep *balance_ep_of(const struct balance *b,
                                       const struct balance_handle *h)
{
	return balance_slot(b, h);
}

const struct sock_addr *balance_addr(const struct balance *b,
                                     const struct balance_handle *h)
{
	const struct balance_ep *e = balance_slot(b, h);

	return e ? &e->addr : NULL;
}

const struct balance_ep *balance_find(const struct balance *b,
                                      const struct sock_addr *addr)
{
	uint32_t s;

	for (s = 0; s < b->nslots; s++)
		if (b->ep[s].used && b->ep[s].live &&
		    sock_addr_compare(&b->ep[s].addr, addr) == 0)
			return &b->ep[s];
	return NULL;
}

void balance_get_stats(const struct balance *b, struct balance_stats *out)
{
	*out = b->st;
	out->endpoints = b->nlive;
	out->ready = b->nready;
	out->ejected = b->nlive - b->nready;
	out->draining = b->ndrain;
}

const char *balance_st_str(enum balance_st st)
{
	switch (st) {
	case BALANCE_ST_CLOSED:
		return "closed";
	case BALANCE_ST_EJECTED:
		return "ejected";
	case BALANCE_ST_PROBING:
		return "probing";
	}
	return "?";
}
