/*
 * svc: the proxy's per-service routing state for names the controller
 * resolves: the destination client's target (proxy/dst.h) joined with a
 * load balancer (proxy/balance.h) and a retry budget (proxy/budget.h).
 *
 * One struct svc exists per resolved authority the proxy routes requests
 * to. It keeps a reference on its dst_target and rebuilds the balancer's
 * endpoint list lazily, when the target's version changed since the last
 * pick, so a burst of controller updates costs one rebuild. A pick lends
 * the caller one endpoint (struct svc_lease) that MUST be returned once
 * with svc_release, carrying the outcome that feeds peak-EWMA and failure
 * accrual.
 *
 * Contracts:
 *  - Single-threaded, on the proxy's loop. struct svc_table MUST NOT move
 *    after svc_table_init.
 *  - A lease holds a reference on its svc: the svc (and the endpoint's
 *    address in the lease) stays valid until svc_release, even when the
 *    controller removed the endpoint or the svc went idle meanwhile.
 *  - An svc no request has used for <idle_ms> and with no lease out is
 *    freed by a periodic sweep; its dst_target reference goes with it,
 *    so the destination client can idle the target out in turn.
 *  - Nothing here logs or allocates per request (the balancer rebuild
 *    allocates on a version change only).
 */
#ifndef MESHD_PROXY_SVC_H
#define MESHD_PROXY_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/sock.h"
#include "core/str.h"
#include "proxy/balance.h"
#include "proxy/budget.h"
#include "proxy/dst.h"

struct svc;

/* svc_pick results */
enum svc_res {
	SVC_PICKED = 0,      /* <lease> holds an endpoint */
	SVC_PENDING,         /* parked: <w> is armed (the name is being
	                      * resolved, or no endpoint is available and
	                      * the request waits in the service's queue) */
	SVC_UNKNOWN,         /* the controller does not know the name */
	SVC_FAILED,          /* no answer within the resolution timeout */
	SVC_NO_ENDPOINTS,    /* known, but no endpoint now */
	SVC_UNAVAILABLE,     /* every endpoint is ejected and the queue
	                      * is full or was waited on already */
	SVC_ERROR,           /* out of memory or a limit */
};

/* "picked", "pending", ... */
const char *svc_res_str(enum svc_res r);

/*
 * A request parked by svc_pick: either waiting for its name's first
 * resolution (inside the destination client) or in its service's queue
 * (no endpoint available now). Embedded in the caller's object; cancel it
 * with svc_wait_cancel before that object goes away.
 */
typedef void (*svc_wait_fn)(void *arg);

struct svc_wait {
	struct dst_wait dw;          /* private */
	svc_wait_fn cb;              /* private */
	void *arg;                   /* private */
	struct svc *svc;             /* private: queued here */
	struct svc_wait *prev, *next; /* private */
	uint64_t deadline_ms;        /* private */
	int queued_once;             /* rw: 1 once this request waited in a
	                              * queue (it does not queue again); the
	                              * caller zeroes it for a new request */
	int armed;                   /* ro: 1 while a callback is due */
};

/* The queue in front of a service's balancer (Linkerd's: capacity 100,
 * fail-fast after 3 s). */
#define SVC_QUEUE_MAX 100
#define SVC_FAILFAST_MS 3000

struct svc_lease {
	struct svc *svc;             /* NULL: nothing leased */
	struct balance_handle h;     /* private */
	struct sock_addr addr;       /* ro: the chosen endpoint */
	enum dst_hint hint;          /* ro */
	uint64_t t0_ns;              /* ro: when it was picked */
	struct balance_handle tried[3]; /* private: earlier picks of this
	                                 * request, left out of retries */
	uint8_t ntried;              /* private */
};

struct svc_stats {
	uint64_t svcs;               /* gauge: live svc objects */
	uint64_t picks;
	uint64_t retries;            /* repicks the budget allowed */
	uint64_t retries_refused;    /* retries the budget refused */
	uint64_t failovers;          /* requests moved off an endpoint that
	                              * never got them */
	uint64_t timeouts;           /* route timeouts that fired */
	uint64_t pending;            /* picks that had to wait */
	uint64_t unknown, failed, no_endpoints, unavailable;
	uint64_t queued_total;       /* requests that waited in a queue */
	uint64_t queue_failfast;     /* ... and left it without an endpoint */
	uint64_t rebuilds;           /* balancer lists rebuilt */
};

struct svc_table {
	struct loop *loop;           /* ro */
	struct dst *dst;             /* ro */
	struct svc_stats stats;      /* ro */
	uint64_t idle_ms;            /* ro */
	struct balance_cfg bcfg;     /* ro: every new balancer's */
	/* private */
	struct svc **htab;
	uint32_t hsize;
	struct svc *all;
	struct loop_timer sweep;
	struct loop_timer qtimer;    /* queued requests: re-try, fail fast */
	uint32_t queued;             /* requests in all queues */
	uint64_t seed;
};

/*
 * Sets up <st> over the destination client <dst> (which MUST outlive
 * it). <idle_ms>: an unused svc is freed after this long (0: 60 s).
 * Returns 0 or -ENOMEM.
 */
int svc_table_init(struct svc_table *st, struct loop *loop, struct dst *dst,
                   uint64_t idle_ms);

/* Sets the balancer configuration of services created from now on. */
void svc_table_set_balancer(struct svc_table *st,
                            const struct balance_cfg *cfg);

/* Frees every svc; leases still out dangle (call after the connections
 * are gone). Accepts a zeroed struct. */
void svc_table_fini(struct svc_table *st);

/*
 * Picks an endpoint of <authority> for one request. SVC_PICKED fills
 * <lease>; SVC_PENDING arms <w> (embedded in the caller's object):
 * <cb>(<arg>) follows once from the loop unless svc_wait_cancel(<w>) runs
 * first, and the caller then calls svc_pick again with the same <w>. A
 * request finding no endpoint available waits in the service's queue (at
 * most SVC_QUEUE_MAX, SVC_FAILFAST_MS) until one is, once per request. Every other result leaves <lease> empty. <w> may be NULL:
 * nothing waits then.
 */
enum svc_res svc_pick(struct svc_table *st, struct str authority,
                      struct svc_lease *lease, struct svc_wait *w,
                      svc_wait_fn cb, void *arg);

/* Disarms <w>; no-op when not armed (also on a zeroed struct). */
void svc_wait_cancel(struct svc_wait *w);

/*
 * Returns a lease with the outcome: <success> 0 for a connection failure
 * or a 5xx (failure accrual), 1 otherwise; the latency is the time since
 * the pick. SVC_CANCELLED: the client gave up a request the endpoint was
 * serving well (neither, see balance_done). No-op on an empty lease;
 * empties it.
 */
#define SVC_CANCELLED BALANCE_CANCELLED
void svc_release(struct svc_lease *lease, int success);

/* The retry budget of the lease's service (NULL for an empty lease). */
struct budget *svc_lease_budget(struct svc_lease *lease);

/*
 * A retry: asks the service's budget for one retry (counted either way)
 * and, when allowed, returns the current endpoint with <success> and
 * picks again in the same service, without a new lookup (so another
 * endpoint may serve it). Returns SVC_PICKED with <lease> updated;
 * SVC_UNAVAILABLE when the budget refused (the lease is kept, untouched:
 * the caller goes on with the response it has); SVC_NO_ENDPOINTS or
 * SVC_UNAVAILABLE with the lease returned and empty when nothing can be
 * picked (*<refused> says which: 1 = the budget refused).
 */
enum svc_res svc_retry(struct svc_lease *lease, int success, int *refused);

/*
 * A failover: the request never reached an application (the endpoint
 * refused the connection, or its proxy could not reach its application),
 * so it goes to another endpoint whatever its route says and outside the
 * retry budget. Returns the current endpoint as a failure and picks
 * another (leaving it out while another is ready). SVC_PICKED with
 * <lease> updated, or another result with the lease returned and empty.
 */
enum svc_res svc_failover(struct svc_lease *lease);

/*
 * What the service's profile says of a request: the first route matching
 * <method> and <path> (without its query) gives *<timeout_ms> (0: none)
 * and *<retryable>; no profile or no route: 0 and 0. Returns the route
 * or NULL.
 */
const struct dst_route *svc_route(const struct svc_lease *lease,
                                  struct str method, struct str path,
                                  uint32_t *timeout_ms, int *retryable);

/*
 * The labels of the lease's service (<set>: namespace, service, ...) and
 * of its endpoint (<ep>: pod, serviceaccount, ...), as discovery sent
 * them; valid until the caller returns to the loop. Empty lease or an
 * endpoint gone: zero counts.
 */
void svc_lease_labels(const struct svc_lease *lease,
                      const struct dst_label **set, size_t *nset,
                      const struct dst_label **ep, size_t *nep);

/*
 * The metrics bundle of a balanced request (pxmetrics_http_dst): its
 * series carry the dst_* labels of the lease's service and endpoint.
 */
struct pxmetrics;
struct pxm_http;
struct pxm_http *svc_lease_metrics(const struct svc_lease *lease,
                                   struct pxmetrics *pm,
                                   struct pxm_http *hint, int dir,
                                   struct str authority);

/* Counts a route timeout that fired on the lease's service. */
void svc_count_timeout(struct svc_lease *lease);

/*
 * Appends the discovery metrics in Prometheus text: the controller
 * connection, resolved names, balancer picks and outcomes, retries and
 * route timeouts. Returns 0, or -1 when <out> hit its limit.
 */
struct buf;
int svc_table_render(const struct svc_table *st, struct buf *out);

/* The table's counters, for the proxy's metrics. */
static inline const struct svc_stats *svc_table_stats(
	const struct svc_table *st)
{
	return &st->stats;
}

/* The profile of the lease's service, or NULL. */
const struct dst_profile *svc_lease_profile(const struct svc_lease *lease);

#endif
