/*
 * balance: request-level load balancing for one destination service: power
 * of two choices (P2C) over peak-EWMA cost, with consecutive-failure
 * accrual (circuit breaking), as Linkerd's outbound balancer does.
 *
 * The module is pure: no I/O, no clock, no logging. Every call that depends
 * on time takes <now_ns> (a monotonic clock in nanoseconds); the balancer
 * keeps the latest time it was given and treats an earlier one as that
 * latest one, so time never runs backwards inside it.
 *
 * Endpoint storage and handles. The balancer owns its endpoint slots (an
 * array grown with mem_realloc, so slots move: never keep a pointer into
 * it). A successful balance_pick hands out a struct balance_handle (slot
 * index + slot generation + pick time + probe flag) by value. The caller
 * keeps it with the request and gives it back exactly once to balance_done.
 * When balance_update drops an endpoint that still has requests in flight,
 * its slot stays allocated ("draining": never picked again, its address
 * still readable through the handle) until the last of those requests is
 * done; then the slot is freed and its generation bumped, so any stale
 * handle is recognised (-ESTALE) instead of touching a reused slot.
 *
 * Contracts:
 *  - Each handle from a successful balance_pick MUST be passed to
 *    balance_done exactly once (also when the request failed before it was
 *    sent: report success = 0 then, or cancel it with latency 0 and
 *    success = 1 if it must not count as a failure). A handle MUST NOT be
 *    used after balance_done or balance_destroy.
 *  - balance_update keeps all state (EWMA, in-flight count, failure
 *    accrual) of endpoints whose address is in the new list; weights are
 *    taken from the new list. Addresses compare with sock_addr_compare; a
 *    duplicate address in one list keeps its first occurrence.
 *  - At most BALANCE_MAX_EP endpoints per list, and at most
 *    BALANCE_MAX_SLOTS slots including draining ones.
 *  - Functions return 0 or a negative errno value, as documented on each.
 *  - Not thread-safe: one balancer belongs to one worker loop.
 */
#ifndef MESHD_PROXY_BALANCE_H
#define MESHD_PROXY_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"

/* Endpoints in one balance_update list. */
#define BALANCE_MAX_EP 4096
/* Slots in use at once: live endpoints plus removed ones still draining. */
#define BALANCE_MAX_SLOTS (2 * BALANCE_MAX_EP)

/* Weight of an endpoint with no weight of its own (Linkerd's
 * WeightedAddr default): cost is divided by weight / BALANCE_WEIGHT_UNIT. */
#define BALANCE_WEIGHT_UNIT 10000u

/* Defaults (Linkerd): peak-EWMA default_rtt 30 ms, decay 10 s; consecutive
 * failure accrual 7 failures, penalty 1 s doubling to 1 min, jitter 0.5. */
#define BALANCE_DEF_RTT_NS        (30ull * 1000000ull)
#define BALANCE_DEF_DECAY_NS      (10ull * 1000000000ull)
#define BALANCE_DEF_MAX_FAILURES  7u
#define BALANCE_DEF_MIN_PENALTY_NS (1ull * 1000000000ull)
#define BALANCE_DEF_MAX_PENALTY_NS (60ull * 1000000000ull)
#define BALANCE_DEF_JITTER        0.5

struct balance_cfg {
	uint64_t default_rtt_ns;   /* EWMA of an endpoint never measured */
	uint64_t decay_ns;         /* EWMA time constant (tau); > 0 */
	uint32_t max_failures;     /* consecutive failures that eject; 0 =
	                            * failure accrual off */
	uint64_t min_penalty_ns;   /* first ejection */
	uint64_t max_penalty_ns;   /* doubling stops here */
	double jitter;             /* ejection lasts base .. base*(1+jitter),
	                            * never above max_penalty; 0..100 */
	int round_robin;           /* 1: take ready endpoints in turn instead
	                            * of P2C (a baseline for comparisons) */
};

/* One entry of a balance_update list. */
struct balance_key {
	struct sock_addr addr;
	uint32_t weight;           /* 10000 = 1.0; 0 is treated as 1 */
};

/* Failure-accrual state of an endpoint (Linkerd: "ready" = CLOSED or a
 * PROBING endpoint whose probe is not out yet; "pending" = the rest). */
enum balance_st {
	BALANCE_ST_CLOSED = 0,     /* healthy, picked normally */
	BALANCE_ST_EJECTED,        /* breaker open: not picked until
	                            * eject_until */
	BALANCE_ST_PROBING,        /* penalty over: one request may go */
};

/* What a pick hands out; keep it by value with the request. */
struct balance_handle {
	uint32_t idx;              /* private: slot */
	uint32_t gen;              /* private: slot generation */
	uint64_t start_ns;         /* ro: time of the pick */
	int probe;                 /* ro: 1 when this request is the probe */
};

/* Per-endpoint state, owned by the balancer (inside struct balance). */
struct balance_ep {
	struct sock_addr addr;     /* ro */
	uint32_t weight;           /* ro: >= 1 */
	uint32_t gen;              /* private */
	uint8_t used;              /* private: slot holds an endpoint */
	uint8_t live;              /* private: in the current list (else
	                            * draining) */
	uint8_t st;                /* ro: enum balance_st */
	uint8_t probe_out;         /* private: probe request in flight */
	uint32_t pending;          /* ro: requests in flight */
	uint32_t failures;         /* ro: consecutive failures */
	uint32_t backoff_iter;     /* private: ejections since last success */
	uint32_t ready_pos;        /* private: index in ready[], or
	                            * BALANCE_NONE */
	double ewma_ns;            /* private: peak-EWMA at ewma_at */
	uint64_t ewma_at;          /* private */
	uint64_t start_sum;        /* private: sum of pending picks' times,
	                            * modulo 2^64 */
	uint64_t eject_until;      /* ro: while EJECTED */
};

#define BALANCE_NONE UINT32_MAX

/* Counters since balance_init, plus current gauges. */
struct balance_stats {
	uint64_t picks;            /* successful picks */
	uint64_t unavailable;      /* picks answered -EAGAIN */
	uint64_t ejections;        /* CLOSED -> EJECTED */
	uint64_t reejections;      /* failed probe -> EJECTED again */
	uint64_t probes;           /* probe requests handed out */
	uint64_t recoveries;       /* successful probe -> CLOSED */
	uint32_t endpoints;        /* gauge: endpoints in the current list */
	uint32_t ready;            /* gauge: of those, pickable (as of the
	                            * last pick or update) */
	uint32_t ejected;          /* gauge: EJECTED, or PROBING with the
	                            * probe out */
	uint32_t draining;         /* gauge: removed, requests in flight */
};

struct balance {
	struct balance_cfg cfg;    /* ro: set at init */
	struct balance_ep *ep;     /* private: nslots slots */
	uint32_t nslots;           /* private */
	uint32_t nlive;            /* private: endpoints in current list */
	uint32_t *ready;           /* private: slots pickable now */
	uint32_t nready;           /* private */
	uint32_t ready_cap;        /* private: entries allocated */
	uint32_t ndrain;           /* private */
	uint64_t next_wake;        /* private: earliest eject_until, or
	                            * UINT64_MAX */
	uint64_t now;              /* private: latest time seen */
	uint64_t rng;              /* private: xorshift64* state, != 0 */
	uint32_t rr;               /* private: round-robin position */
	struct balance_stats st;   /* private: counters */
};

/* Fills <cfg> with the Linkerd defaults above. */
void balance_cfg_default(struct balance_cfg *cfg);

/*
 * Sets up an empty balancer. <cfg> NULL means the defaults; it is copied
 * (a decay of 0 becomes the default, a jitter outside 0..100 is clamped).
 * <seed> seeds the P2C random generator: the same seed and the same calls
 * give the same picks. Allocates nothing; cannot fail.
 */
void balance_init(struct balance *b, const struct balance_cfg *cfg,
                  uint64_t seed);

/*
 * Replaces the endpoint set with <keys>[0..<n>). Kept endpoints keep their
 * state; new ones start with the default RTT measured at <now_ns> and a
 * closed breaker; dropped ones with requests in flight go draining, the
 * others are freed. An endpoint re-added while draining is revived with
 * its state. Returns 0; -E2BIG when <n> > BALANCE_MAX_EP; -ENOSPC when the
 * new endpoints find no free slot (too many draining); -ENOMEM. On error
 * nothing changed.
 */
int balance_update(struct balance *b, const struct balance_key *keys,
                   size_t n, uint64_t now_ns);

/*
 * Chooses an endpoint for one request and counts it in flight: P2C over
 * the ready endpoints, lower cost wins (cost in balance_cost). Stores the
 * handle in <out>. Returns 0; -ENOENT when the set is empty; -EAGAIN when
 * no endpoint is ready (all ejected, or probing with the probe out): the
 * caller fails fast (503).
 */
int balance_pick(struct balance *b, uint64_t now_ns,
                 struct balance_handle *out);

/*
 * balance_pick for a retry: the endpoints of <avoid>[<navoid>] (handles
 * already given back: the endpoints tried before) are left out while
 * another endpoint is ready, so a retry does not go back to an endpoint
 * that just failed.
 */
int balance_pick_other(struct balance *b, uint64_t now_ns,
                       const struct balance_handle *avoid, size_t navoid,
                       struct balance_handle *out);

/*
 * Ends the request of handle <h>: in-flight count down, <latency_ns> fed
 * to the peak-EWMA (when <success> or not: a slow failure is still slow),
 * and the outcome to failure accrual (<success> 0 = failure as the caller
 * classifies it: 5xx, connect error, gRPC UNAVAILABLE ...).
 * <success> BALANCE_CANCELLED: the client gave the request up while the
 * endpoint was doing fine; it says nothing about the endpoint (no latency
 * sample, no accrual; a probe it carried is simply sent again). Frees the slot
 * of a draining endpoint whose last request this was. Returns 0, or
 * -ESTALE for a handle this balancer does not know (already freed slot).
 */
#define BALANCE_CANCELLED (-1)
int balance_done(struct balance *b, const struct balance_handle *h,
                 uint64_t now_ns, uint64_t latency_ns, int success);

/* Frees the slots. Outstanding handles become invalid (their requests
 * MUST NOT call balance_done afterwards). <b> may be re-initialised. */
void balance_destroy(struct balance *b);

/* Revives the endpoints whose ejection ended by <now_ns> and returns how
 * many endpoints a pick could choose now. */
uint32_t balance_ready_now(struct balance *b, uint64_t now_ns);

/* The endpoint behind <h> (also while draining), or NULL for a stale
 * handle. The pointer is valid until the next balance_update or
 * balance_done on <b>. */
const struct balance_ep *balance_ep_of(const struct balance *b,
                                       const struct balance_handle *h);

/* The address behind <h>, or NULL; same lifetime as balance_ep_of. */
const struct sock_addr *balance_addr(const struct balance *b,
                                     const struct balance_handle *h);

/* The live endpoint with address <addr>, or NULL; same lifetime. For
 * metrics and tests. */
const struct balance_ep *balance_find(const struct balance *b,
                                      const struct sock_addr *addr);

/*
 * Cost of <e> at <now_ns> as P2C compares it: max(decayed EWMA, mean age
 * of its pending requests) * (pending + 1) / (weight / 10000), in ns.
 */
double balance_cost(const struct balance *b, const struct balance_ep *e,
                    uint64_t now_ns);

/* Peak-EWMA of <e> at <now_ns> (decayed since its last sample), in ns. */
double balance_ewma(const struct balance *b, const struct balance_ep *e,
                    uint64_t now_ns);

/* Copies counters and current gauges into <out>. */
void balance_get_stats(const struct balance *b, struct balance_stats *out);

/* "closed", "ejected", "probing" */
const char *balance_st_str(enum balance_st st);

#endif
