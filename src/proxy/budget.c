/*
 * budget: the retry budget as a ring of time buckets. Contracts in
 * budget.h; how it matches Linkerd in docs/balancing.md.
 *
 * IMPLEMENTATION NOTES
 * - Bucket i holds the counts of epoch e with e % BUDGET_BUCKETS == i,
 *   for the BUDGET_BUCKETS epochs up to b->epoch. Advancing the clock
 *   clears the buckets of the epochs skipped over (at most all of them),
 *   so every call is O(BUDGET_BUCKETS) = O(1).
 * - The test is done in integers, in millionths of a retry:
 *   (wd + 1) * 1e6 <= dep * ratio_ppm + min_per_s * ttl_ms * 1000,
 *   so 20 % of 5 deposits is exactly one retry, not 0.99999.
 */
#include <errno.h>
#include <string.h>

#include "proxy/budget.h"

static int budget_valid(float ratio, uint64_t ttl_ms)
{
	return ratio >= 0.0f && ratio <= BUDGET_MAX_RATIO &&
	       ttl_ms >= BUDGET_MIN_TTL_MS && ttl_ms <= BUDGET_MAX_TTL_MS;
}

static void budget_params(struct budget *b, float ratio, uint32_t min_per_s,
                          uint64_t ttl_ms)
{
	b->ratio_ppm = (uint64_t)((double)ratio * 1e6 + 0.5);
	b->min_per_s = min_per_s;
	b->ttl_ms = ttl_ms;
	b->bucket_ns = ttl_ms * 1000000u / BUDGET_BUCKETS;
}

int budget_init(struct budget *b, float ratio, uint32_t min_per_s,
                uint64_t ttl_ms)
{
	int rc = 0;

	memset(b, 0, sizeof(*b));
	if (!budget_valid(ratio, ttl_ms)) {
		ratio = BUDGET_DEF_RATIO;
		min_per_s = BUDGET_DEF_MIN_PER_S;
		ttl_ms = BUDGET_DEF_TTL_MS;
		rc = -EINVAL;
	}
	budget_params(b, ratio, min_per_s, ttl_ms);
	return rc;
}

/* Moves the window to <now_ns>, expiring buckets that fell out of it. */
static void budget_advance(struct budget *b, uint64_t now_ns)
{
	uint64_t e, n;

	if (now_ns > b->now)
		b->now = now_ns;
	e = b->now / b->bucket_ns;
	if (e <= b->epoch)
		return;
	n = e - b->epoch;
	if (n > BUDGET_BUCKETS)
		n = BUDGET_BUCKETS;
	while (n--) {
		unsigned i = (unsigned)((e - n) % BUDGET_BUCKETS);

		b->dep_sum -= b->dep[i];
		b->wd_sum -= b->wd[i];
		b->dep[i] = 0;
		b->wd[i] = 0;
	}
	b->epoch = e;
}

void budget_deposit(struct budget *b, uint64_t now_ns)
{
	budget_advance(b, now_ns);
	b->dep[b->epoch % BUDGET_BUCKETS]++;
	b->dep_sum++;
}

/* Allowance in millionths of a retry. */
static uint64_t budget_allowance(const struct budget *b)
{
	return b->dep_sum * b->ratio_ppm +
	       (uint64_t)b->min_per_s * b->ttl_ms * 1000u;
}

int budget_try_withdraw(struct budget *b, uint64_t now_ns)
{
	budget_advance(b, now_ns);
	if ((b->wd_sum + 1) * 1000000u > budget_allowance(b)) {
		b->refused++;
		return 0;
	}
	b->wd[b->epoch % BUDGET_BUCKETS]++;
	b->wd_sum++;
	b->allowed++;
	return 1;
}

uint64_t budget_available(struct budget *b, uint64_t now_ns)
{
	uint64_t cap;

	budget_advance(b, now_ns);
	cap = budget_allowance(b) / 1000000u;
	return cap > b->wd_sum ? cap - b->wd_sum : 0;
}

int budget_reconfigure(struct budget *b, float ratio, uint32_t min_per_s,
                       uint64_t ttl_ms)
{
	uint64_t dep[BUDGET_BUCKETS], wd[BUDGET_BUCKETS];
	uint64_t old_epoch, old_w, k;

	if (!budget_valid(ratio, ttl_ms))
		return -EINVAL;
	if (ttl_ms == b->ttl_ms) {
		budget_params(b, ratio, min_per_s, ttl_ms);
		return 0;
	}
	budget_advance(b, b->now);
	memcpy(dep, b->dep, sizeof(dep));
	memcpy(wd, b->wd, sizeof(wd));
	old_epoch = b->epoch;
	old_w = b->bucket_ns;
	memset(b->dep, 0, sizeof(b->dep));
	memset(b->wd, 0, sizeof(b->wd));
	b->dep_sum = 0;
	b->wd_sum = 0;
	budget_params(b, ratio, min_per_s, ttl_ms);
	b->epoch = b->now / b->bucket_ns;
	for (k = 0; k < BUDGET_BUCKETS && k <= old_epoch; k++) {
		unsigned oi = (unsigned)((old_epoch - k) % BUDGET_BUCKETS);
		uint64_t ne = (old_epoch - k) * old_w / b->bucket_ns;
		unsigned ni;

		if (ne + BUDGET_BUCKETS <= b->epoch)
			continue; /* older than the new window */
		ni = (unsigned)(ne % BUDGET_BUCKETS);
		b->dep[ni] += dep[oi];
		b->wd[ni] += wd[oi];
		b->dep_sum += dep[oi];
		b->wd_sum += wd[oi];
	}
	return 0;
}
