/*
 * pxmetrics: the proxy's metric families (Linkerd's names and labels,
 * DESIGN.md section 5) and a cache of series handles so that the hot path
 * does no label hashing.
 *
 * Families (each also carries the workload's constant labels):
 *   request_total          counter   direction, authority, target_addr, tls,
 *                                    no_tls_reason
 *   response_total         counter   ... + status_code, classification,
 *                                    grpc_status (only when the response
 *                                    carried one)
 *   response_latency_ms    histogram ... + status_code (time from request
 *                                    head received to response head
 *                                    received, milliseconds)
 *   tcp_open_total, tcp_close_total (+ classification, errno),
 *   tcp_open_connections, tcp_read_bytes_total, tcp_write_bytes_total
 *                                    direction, peer, target_addr, tls,
 *                                    no_tls_reason
 *
 * tcp_close_total's errno label is Linkerd's: "" for a clean close and for
 * a failure without a socket error (protocol error, a timeout the proxy
 * decided), else the symbolic name of the socket error that ended the
 * connection. Only the PXM_NERRNO - 1 names of pxmetrics_errno_label are
 * used; any other errno is "OTHER", so the label set per bundle is bounded
 * (at most PXM_NERRNO + 2 close series). A connect that failed counts in
 * tcp_close_total (failure, its errno) without counting in tcp_open_total:
 * close may exceed open by the failed connects.
 *
 * Handles. pxmetrics_tcp() and pxmetrics_http() return a bundle for one
 * label set, created on first use and cached (bounded by PXM_MAX_ENTRIES;
 * past it they return NULL and the updates become no-ops, as the metrics
 * registry does past its series cap). Callers keep the bundle pointer (per
 * connection) and reuse it: the update functions are a few integer
 * operations. Response series are cached inside the HTTP bundle per
 * (status, grpc status, classification).
 *
 * Retention (Linkerd's "retain idle"). With pxmetrics_retain, a bundle not
 * used (looked up or updated) for the retain time is removed with its
 * series, so endpoint churn does not grow memory and /metrics forever. A
 * TCP bundle with a connection open (tcp_open without its close) is never
 * removed. A removed bundle's memory is not returned to the heap: it stays
 * a dead bundle (series NULL, updates no-ops, never matched as a hint) and
 * is reused for a new bundle only after another retain time, so a pointer
 * a connection still holds never dangles; only a holder that kept a bundle
 * for twice the retain time without a single update could then count into
 * the new bundle's series.
 *
 * Label values that are not valid (e.g. an authority that is not UTF-8) make
 * the lookup fail: the request is still served, just not counted under that
 * authority (the bundle is looked up again with an empty authority).
 */
#ifndef MESHD_PROXY_PXMETRICS_H
#define MESHD_PROXY_PXMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/sock.h"
#include "core/str.h"

#define PXM_MAX_ENTRIES 10000u
#define PXM_RESP_CACHE 6
#define PXM_AUTH_MAX 256       /* authority bytes kept in a cache key */
#define PXM_MAX_WORKLOAD_LABELS 16
#define PXM_MAX_DST_LABELS 8   /* dst_* labels per HTTP bundle */
#define PXM_DST_STORE 512      /* bytes of their names and values */

/* errno label values: the known names and "OTHER" (the last slot) */
#define PXM_NERRNO 11

enum pxm_dir { PXM_INBOUND = 0, PXM_OUTBOUND = 1 };
enum pxm_peer { PXM_SRC = 0, PXM_DST = 1 };

struct pxmetrics;

struct pxm_tcp {
	struct metrics_series *open_total;    /* ro */
	struct metrics_series *close_ok;      /* ro: success, errno "" */
	struct metrics_series *close_fail;    /* ro: failure, errno "" */
	/* private: the failure series with an errno name, one per slot of
	 * pxmetrics_errno_label, made on first use (NULL until then) */
	struct metrics_series *close_err[PXM_NERRNO];
	struct metrics_series *open_conns;    /* ro */
	struct metrics_series *rd;            /* ro: tcp_read_bytes_total */
	struct metrics_series *wr;            /* ro: tcp_write_bytes_total */
	struct pxm_tcp *hnext;                /* private */
	struct pxmetrics *pm;                 /* private */
	uint64_t hash;                        /* private */
	uint64_t used;                        /* private: retention stamp */
	uint32_t nopen;                       /* private: open connections */
	uint8_t dir, peer;                    /* private */
	uint8_t dead;                         /* private: removed */
	struct sock_addr target;              /* private */
};

struct pxm_resp {
	int status;                           /* private: key */
	int grpc;                             /* private: key, -1 none */
	int fail;                             /* private: key */
	struct metrics_series *total;         /* private */
};

struct pxm_lat {
	int status;
	struct metrics_series *hist;
};

struct pxm_http {
	struct metrics_series *req;           /* ro: request_total */
	struct pxm_resp resp[PXM_RESP_CACHE]; /* private */
	unsigned nresp;                       /* private */
	struct pxm_lat lat[PXM_RESP_CACHE];   /* private */
	unsigned nlat;                        /* private */
	struct pxm_http *hnext;               /* private */
	struct pxmetrics *pm;                 /* private */
	uint64_t hash;                        /* private */
	uint64_t used;                        /* private: retention stamp */
	uint8_t dir;                          /* private */
	uint8_t dead;                         /* private: removed */
	int has_target;                       /* private */
	struct sock_addr target;              /* private */
	size_t auth_len;                      /* private */
	char *auth;                           /* private: in <blk>, NUL-term. */
	char target_s[SOCK_ADDR_STRLEN];      /* private */
	struct metrics_label *dst;            /* private: dst_* labels, in blk */
	size_t ndst;                          /* private */
	char *blk;                            /* private: auth + dst labels */
};

/* A destination label as discovery gives it (key without the "dst_"). */
struct pxm_kv {
	struct str key;
	struct str value;
};

struct pxmetrics {
	struct metrics_registry *reg;         /* ro */
	struct metrics_family *f_req, *f_resp, *f_lat;
	struct metrics_family *f_open, *f_close, *f_conns, *f_rd, *f_wr;
	int inbound_authority;                /* rw: label inbound authority */
	uint64_t seed;                        /* private */
	struct pxm_tcp **tcp_tab;             /* private: PXM_TAB_SIZE chains */
	struct pxm_http **http_tab;           /* private */
	unsigned ntcp, nhttp;                 /* private */
	uint64_t retain_ms;                   /* ro: 0 keeps bundles forever */
	uint64_t stamp;                       /* private: time of last sweep */
	uint64_t gap;                         /* private: last sweep interval */
	unsigned cursor;                      /* private: next slot swept */
	unsigned removed;                     /* ro: bundles removed, total */
	struct pxm_http *grave_http, *grave_http_tail; /* private: dead */
	struct pxm_tcp *grave_tcp, *grave_tcp_tail;    /* private */
	struct loop *loop;                    /* private: sweep timer's */
	struct loop_timer sweep_timer;        /* private */
};

/*
 * Creates the families in <reg> with the constant labels <wl>[<nwl>] (the
 * workload's labels). Returns 0, or -1 with a reason in <err>.
 */
int pxmetrics_init(struct pxmetrics *pm, struct metrics_registry *reg,
                   const struct metrics_label *wl, size_t nwl,
                   char *err, size_t errlen);

/* Frees the caches (the series belong to the registry) and stops the
 * sweep timer. */
void pxmetrics_destroy(struct pxmetrics *pm);

/* Sweep period and slots of each table looked at per sweep: every bundle
 * is looked at once every PXM_SWEEP_MS * PXM_TAB_SIZE / PXM_SWEEP_SLOTS. */
#define PXM_SWEEP_MS 15000u
#define PXM_SWEEP_SLOTS 256u

/*
 * Removes bundles idle for <retain_ms> or more (0: never; the default of
 * pxmetrics_init) and, with <loop> not NULL, arms a timer on it that calls
 * pxmetrics_sweep every PXM_SWEEP_MS (or retain/4 when shorter). A bundle
 * goes between retain and retain + one full pass after its last use.
 */
void pxmetrics_retain(struct pxmetrics *pm, struct loop *loop,
                      uint64_t retain_ms);

/* One bounded sweep step at time <now_ms> (monotonic): looks at the next
 * PXM_SWEEP_SLOTS slots of each table (all of them with <all>). Returns
 * the number of bundles removed. The timer calls it; tests may too. */
unsigned pxmetrics_sweep(struct pxmetrics *pm, uint64_t now_ms, int all);

/* The TCP bundle of (<dir>, <peer>, <target>), or NULL (see above). */
struct pxm_tcp *pxmetrics_tcp(struct pxmetrics *pm, enum pxm_dir dir,
                              enum pxm_peer peer,
                              const struct sock_addr *target);

/* Counts a connection opened. */
void pxmetrics_tcp_open(struct pxm_tcp *t);

/*
 * Counts a connection that pxmetrics_tcp_open counted closed: with <fail>
 * 0 as classification="success",errno=""; with <fail> 1 as a failure
 * whose errno label is the name of <err> (an errno, positive or negative;
 * 0 when no socket error caused it: errno=""). <err> is ignored for a
 * success.
 */
void pxmetrics_tcp_close(struct pxm_tcp *t, int fail, int err);

/*
 * Counts a connect to the bundle's target that failed with <err> (as
 * above; ETIMEDOUT for the proxy's connect timeout): tcp_close_total
 * {classification="failure",errno=...} += 1, nothing else (the connection
 * was never opened).
 */
void pxmetrics_tcp_connect_fail(struct pxm_tcp *t, int err);

/*
 * The errno label value of <err> (sign ignored): "" for 0, the symbolic
 * name of a known socket error (ECONNRESET, ECONNREFUSED, ECONNABORTED,
 * ETIMEDOUT, EPIPE, EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN,
 * EADDRNOTAVAIL), "OTHER" for anything else. A static string.
 */
const char *pxmetrics_errno_label(int err);

/*
 * The HTTP bundle of (<dir>, <authority>, <target>), <target> NULL when no
 * route was found. <hint> may be a bundle kept from an earlier request of
 * the same connection: when it matches it is returned without any lookup.
 */
struct pxm_http *pxmetrics_http(struct pxmetrics *pm, struct pxm_http *hint,
                                enum pxm_dir dir, struct str authority,
                                const struct sock_addr *target);

/*
 * pxmetrics_http for a request a balancer sent to a discovered endpoint:
 * a bundle made here also carries "dst_<key>" labels from <set> (the
 * service's: namespace, service) and <ep> (the endpoint's: pod,
 * serviceaccount, its workload's labels), at most PXM_MAX_DST_LABELS,
 * names made valid (other bytes become '_'). The labels of a bundle are
 * those of its first request.
 */
struct pxm_http *pxmetrics_http_dst(struct pxmetrics *pm,
                                    struct pxm_http *hint, enum pxm_dir dir,
                                    struct str authority,
                                    const struct sock_addr *target,
                                    const struct pxm_kv *set, size_t nset,
                                    const struct pxm_kv *ep, size_t nep);

/* The authority label value of bundle <h> (empty for NULL or none). */
static inline struct str pxmetrics_http_authority(const struct pxm_http *h)
{
	return h && h->auth ? str_make(h->auth, h->auth_len) : STR_NULL;
}

/* request_total += 1. */
static inline void pxmetrics_request(struct pxm_http *h)
{
	if (h) {
		metrics_counter_inc(h->req);
		h->used = h->pm->stamp;
	}
}

/* Observes <ms> in response_latency_ms{status_code=<status>}. */
void pxmetrics_latency(struct pxm_http *h, int status, uint64_t ms);

/* response_total{status_code, classification, grpc_status} += 1;
 * <grpc> < 0 means the response carried no grpc-status. */
void pxmetrics_response(struct pxm_http *h, int status, int grpc, int fail);

/*
 * Classification rule (Linkerd's): failure when the exchange failed
 * (<error> != 0: reset, truncated, proxy error), when <grpc> >= 0 and not
 * 0 (OK), or, for a non-gRPC response, when <status> is 5xx. Returns 1 for
 * failure.
 */
int pxmetrics_is_failure(int status, int grpc, int error);

/* The no_tls_reason label of a (direction, peer) pair. */
const char *pxmetrics_no_tls_reason(enum pxm_dir dir, enum pxm_peer peer);

#endif
