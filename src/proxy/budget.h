/*
 * budget: Linkerd's retry budget (ServiceProfile retryBudget; tower's and
 * Finagle's RetryBudget): retries may add at most <ratio> of the original
 * requests, plus a floor of <min_per_s> retries per second, measured over a
 * sliding window of <ttl>.
 *
 * Every original request deposits one unit (budget_deposit); every retry
 * asks budget_try_withdraw, which allows and records it only when
 *     withdrawals_in_window + 1 <= ratio * deposits_in_window
 *                                   + min_per_s * ttl_seconds
 * The window is a ring of BUDGET_BUCKETS buckets of ttl / BUDGET_BUCKETS
 * each: the current bucket and the BUDGET_BUCKETS - 1 before it, so it
 * holds between 0.9 ttl and 1.0 ttl of history (as tower's 10 slots).
 *
 * Contracts:
 *  - Pure: no I/O, no clock; <now_ns> is a monotonic time in ns. A time
 *    earlier than one already seen is treated as that one.
 *  - O(1) per call, no allocation at all: the struct is the whole state.
 *  - Not thread-safe (one per service per worker loop).
 */
#ifndef MESHD_PROXY_BUDGET_H
#define MESHD_PROXY_BUDGET_H

#include <stdint.h>

#define BUDGET_BUCKETS 10

/* Linkerd's defaults (controller profile_translator defaultRetryBudget). */
#define BUDGET_DEF_RATIO     0.2f
#define BUDGET_DEF_MIN_PER_S 10u
#define BUDGET_DEF_TTL_MS    10000u

/* Accepted ranges (tower's): ratio 0..1000, ttl 1 s .. 60 s. */
#define BUDGET_MAX_RATIO  1000.0f
#define BUDGET_MIN_TTL_MS 1000u
#define BUDGET_MAX_TTL_MS 60000u

struct budget {
	uint64_t ratio_ppm;        /* ro: ratio in millionths */
	uint32_t min_per_s;        /* ro */
	uint64_t ttl_ms;           /* ro */
	uint64_t bucket_ns;        /* private: ttl / BUDGET_BUCKETS */
	uint64_t epoch;            /* private: now / bucket_ns of the current
	                            * bucket */
	uint64_t now;              /* private: latest time seen */
	uint64_t dep[BUDGET_BUCKETS]; /* private: deposits per bucket */
	uint64_t wd[BUDGET_BUCKETS];  /* private: withdrawals per bucket */
	uint64_t dep_sum;          /* private: sum of dep[] */
	uint64_t wd_sum;           /* private: sum of wd[] */
	uint64_t allowed;          /* ro: retries allowed since init */
	uint64_t refused;          /* ro: retries refused since init */
};

/*
 * Sets up an empty budget. Returns 0, or -EINVAL when <ratio> is not in
 * 0..BUDGET_MAX_RATIO or <ttl_ms> not in BUDGET_MIN_TTL_MS..MAX: the budget
 * is then set up with the defaults instead (always usable).
 */
int budget_init(struct budget *b, float ratio, uint32_t min_per_s,
                uint64_t ttl_ms);

/* Records one original request at <now_ns>. */
void budget_deposit(struct budget *b, uint64_t now_ns);

/* Returns 1 when a retry at <now_ns> fits the budget (and records it as a
 * withdrawal), 0 when it does not (counted in b->refused). */
int budget_try_withdraw(struct budget *b, uint64_t now_ns);

/* Retries that budget_try_withdraw would allow right now (for metrics and
 * tests); does not record anything. */
uint64_t budget_available(struct budget *b, uint64_t now_ns);

/*
 * Changes the parameters keeping the recorded counts: with the same ttl
 * nothing moves; with another ttl each old bucket's counts go to the new
 * bucket that holds that old bucket's start time, and counts older than
 * the new window are dropped. Returns 0, or -EINVAL (nothing changed) for
 * out-of-range values as in budget_init.
 */
int budget_reconfigure(struct budget *b, float ratio, uint32_t min_per_s,
                       uint64_t ttl_ms);

#endif
