/*
 * dst: the proxy's destination client.
 *
 * Keeps, per authority the proxy was asked about, what the controller's
 * Destination service (api/destination.proto) streams: the endpoint set
 * (Get) and the route profile (GetProfile). Linkerd's proxy behaviour:
 *  - resolve on first use: dst_lookup creates the target and opens its two
 *    streams (GetDestination.path = the authority) on the one h2c
 *    connection to the controller that all targets share;
 *  - callers that find a target PENDING park a struct dst_wait (embedded
 *    in their own object, as route_wait); it is called once, from the loop,
 *    when the target resolves, turns out UNKNOWN, or fails (no answer
 *    within the resolution timeout: the request gets 503 or its fallback);
 *  - consumers hold targets with dst_target_ref/unref; a target nobody
 *    holds for the idle timeout is dropped and its streams cancelled;
 *  - while the controller is away every target keeps its last known state
 *    (marked stale); the client reconnects with exponential backoff and
 *    jitter and re-issues both streams of every live target. The first
 *    Update{add} on a (re)opened Get stream is the full set and replaces
 *    the endpoints; later adds and removes are deltas. A stream the server
 *    ends is reopened with backoff too;
 *  - keepalive, as Linkerd's proxy does on its control-plane connection:
 *    an HTTP/2 PING every keepalive interval (10 s); one not answered
 *    within the keepalive timeout (3 s) means the controller is
 *    unreachable (say a half-open TCP connection after a partition): the
 *    connection is dropped and the reconnect path above takes over;
 *  - everything is bounded: targets, endpoints per target, label bytes,
 *    routes, message size, decode memory.
 *
 * Contracts:
 *  - Single-threaded, one struct loop; every function MUST be called from
 *    the loop's thread. struct dst MUST NOT move after dst_init.
 *  - Target fields marked ro are read by consumers, never written. The
 *    endpoint array, the set labels and the profile are REPLACED on every
 *    change (t->version increases): pointers into them are valid until the
 *    caller returns to the loop; consumers that cache derived state keep
 *    the version they built it from and rebuild when it differs.
 *  - Endpoints are sorted by address (sock_addr_compare) without
 *    duplicates. Strings (struct str) are NUL-terminated in target-owned
 *    storage; their len excludes the NUL.
 *  - Nothing here logs; counters are in struct dst_stats.
 */
#ifndef MESHD_PROXY_DST_H
#define MESHD_PROXY_DST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/str.h"

struct grpc_client;
struct dst;
struct dst_target;
struct dst_call;
struct dst_wait;

/* Defaults (struct dst_cfg). */
#define DST_IDLE_MS_DEFAULT 60000u
#define DST_RESOLVE_MS_DEFAULT 3000u
#define DST_CONNECT_MS_DEFAULT 1000u
#define DST_BACKOFF_MIN_DEFAULT 100u
#define DST_BACKOFF_MAX_DEFAULT 10000u
#define DST_KA_INTERVAL_DEFAULT 10000u  /* Linkerd's control-plane PINGs */
#define DST_KA_TIMEOUT_DEFAULT 3000u
#define DST_MAX_TARGETS_DEFAULT 10000u
#define DST_MAX_ENDPOINTS_DEFAULT 10000u
#define DST_MAX_LABELS_DEFAULT 32u         /* per endpoint / set */
#define DST_MAX_LABEL_BYTES_DEFAULT 4096u  /* per endpoint / set */
#define DST_MAX_ROUTES_DEFAULT 256u
#define DST_MAX_STRING 1024u    /* identity, route path/method/name, fqn */
#define DST_MAX_AUTHORITY 512u

enum dst_state {
	DST_PENDING = 0,   /* no answer yet */
	DST_RESOLVED,      /* the name exists: endpoints (possibly none) */
	DST_UNKNOWN,       /* NoEndpoints{exists=false}: not a known name */
};

/* "pending", "resolved", "unknown". */
const char *dst_st_str(enum dst_state st);

enum dst_hint {
	DST_HINT_NONE = 0, /* unknown: speak what the client spoke */
	DST_HINT_H2,       /* meshed peer accepting HTTP/2 */
	DST_HINT_OPAQUE,   /* opaque transport */
};

/* One entry of a label map (map entries deduplicated, last wins). */
struct dst_label {
	struct str key;
	struct str value;
};

struct dst_endpoint {
	struct sock_addr addr;     /* ro: from ip bytes + port, unmapped */
	uint32_t weight;           /* ro: 0 on the wire reads as 10000 */
	enum dst_hint hint;        /* ro */
	struct str identity;       /* ro: TLS identity name, "" when none */
	struct dst_label *labels;  /* ro: pod, deployment, ... */
	size_t nlabels;            /* ro */
	char *blk;                 /* private: holds identity and labels */
};

enum dst_path_kind {
	DST_PATH_ANY = 0,
	DST_PATH_EXACT,
	DST_PATH_PREFIX,
};

struct dst_route {
	struct str method;         /* ro: upper case; "" matches any */
	enum dst_path_kind kind;   /* ro */
	struct str path;           /* ro: for EXACT and PREFIX */
	int retryable;             /* ro */
	uint32_t timeout_ms;       /* ro: 0 = none */
	struct str name;           /* ro: the "route" metrics label, or "" */
};

struct dst_retry_budget {
	int present;               /* ro: the profile carried one */
	float ratio;               /* ro: retries per request */
	uint32_t min_per_s;        /* ro: retries per second always allowed */
	uint32_t ttl_ms;           /* ro: accounting window */
};

struct dst_profile {
	struct dst_route *routes;  /* ro: in order; first match wins */
	size_t nroutes;            /* ro */
	struct dst_retry_budget budget; /* ro */
	int opaque;                /* ro: treat the port as opaque TCP */
	struct str fqn;            /* ro: fully qualified name, or "" */
	int has_endpoint;          /* ro: the target is one "ip:port" */
	struct dst_endpoint endpoint; /* ro: when has_endpoint */
	char *blk;                 /* private */
};

/* One of the two streams of a target (private). */
struct dst_slot {
	int kind;                  /* DST_SLOT_*: index in dst_target.slot */
	struct dst_call *call;     /* the open call, or NULL */
	struct loop_timer retry;   /* reopen after backoff */
	uint32_t attempt;          /* consecutive failures, for backoff */
	int snap;                  /* the next add is the full set */
	int queued;                /* on dst.startq, waiting for a stream */
	struct dst_slot *qprev, *qnext;
};

#define DST_SLOT_GET 0
#define DST_SLOT_PROFILE 1

struct dst_target {
	struct str authority;      /* ro: NUL-terminated copy */
	enum dst_state state;      /* ro */
	int stale;                 /* ro: the data may be out of date (the
	                            * controller or the stream is away) */
	int failed;                /* ro: still PENDING after the resolution
	                            * timeout: fail fast until it resolves */
	uint64_t version;          /* ro: bumped on every change */
	struct dst_endpoint *ep;   /* ro: sorted by address */
	size_t nep;                /* ro */
	struct dst_label *set_labels; /* ro: labels common to the set */
	size_t nset_labels;        /* ro */
	struct dst_profile *profile; /* ro: NULL until one arrived */

	/* private */
	struct dst *d;
	char *set_blk;
	uint32_t refs;
	uint32_t nwaiters;
	uint32_t hash;
	struct dst_target *hnext;             /* hash chain */
	struct dst_target *prev, *next;       /* all targets */
	struct dst_target *iprev, *inext;     /* idle list (LRU) */
	int idle;
	struct dst_wait *waiters;
	struct loop_timer resolve_timer;
	struct loop_timer idle_timer;
	struct dst_slot slot[2];              /* DST_SLOT_* */
};

/* What a waiter learns. */
enum dst_result {
	DST_R_RESOLVED = 0,  /* state RESOLVED */
	DST_R_UNKNOWN,       /* state UNKNOWN */
	DST_R_FAILED,        /* no answer in time (controller unreachable) */
};

/* Called once, from the loop, with the target (valid during the call;
 * the waiter's owner holds its own reference if it keeps it). */
typedef void (*dst_wait_fn)(void *arg, struct dst_target *t,
                            enum dst_result res);

/* A parked caller, embedded in its object. Cancel before it dies. */
struct dst_wait {
	dst_wait_fn cb;            /* private */
	void *arg;                 /* private */
	struct dst_target *t;      /* private */
	struct dst_wait *prev, *next; /* private */
	enum dst_result res;       /* private */
	int queued;                /* private: on dst.notifyq */
	int armed;                 /* ro: 1 while a callback is due */
};

struct dst_cfg {
	uint32_t idle_ms;            /* unreferenced target lifetime: 60 s */
	uint32_t resolve_timeout_ms; /* waiters fail after: 3 s */
	uint32_t connect_timeout_ms; /* TCP connect: 1 s */
	uint32_t backoff_min_ms;     /* reconnect/reopen backoff: 100 ms */
	uint32_t backoff_max_ms;     /* ... up to 10 s, with jitter */
	uint32_t keepalive_interval_ms; /* HTTP/2 PING every: 10 s; 0: none */
	uint32_t keepalive_timeout_ms;  /* its ACK due within: 3 s */
	uint32_t max_targets;        /* authorities: 10000 */
	uint32_t max_endpoints;      /* per target: 10000 */
	uint32_t max_labels;         /* per endpoint and per set: 32 */
	uint32_t max_label_bytes;    /* per endpoint and per set: 4096 */
	uint32_t max_routes;         /* per profile: 256 */
	size_t max_msg;              /* largest message: 4 MiB */
	size_t call_arena;           /* the gRPC client's one decode
	                              * arena (shared by the calls): 8 KiB */
	size_t max_decode;           /* scratch decode arena cap: 16 MiB */
	const char *context_token;   /* GetDestination.context_token; copied */
	uint32_t jitter_seed;        /* 0: from the clock */
};

/* Counters for metrics (all monotonic except targets). */
struct dst_stats {
	uint64_t connects;           /* connections established */
	uint64_t connect_failures;   /* connect refused/timed out */
	uint64_t disconnects;        /* established connections lost */
	uint64_t updates;            /* messages received (both streams) */
	uint64_t targets;            /* gauge: live targets */
	uint64_t lookups;            /* dst_lookup calls */
	uint64_t resolve_failures;   /* targets that hit the resolve timeout */
	uint64_t lookup_refused;     /* dst_lookup NULL: limit or memory */
	uint64_t stream_restarts;    /* streams reopened after an end */
	uint64_t limited;            /* entries dropped by a limit */
	uint64_t bad_messages;       /* messages that did not decode */
	uint64_t keepalive_timeouts; /* connections dropped: PING unanswered */
};

enum dst_conn_st {
	DST_CONN_DOWN = 0,  /* no connection (backoff timer may be armed) */
	DST_CONN_CONNECTING,
	DST_CONN_UP,
};

/* "down", "connecting", "up". */
const char *dst_conn_st_str(enum dst_conn_st st);

struct dst {
	struct dst_stats stats;      /* ro */
	enum dst_conn_st conn;       /* ro */

	/* private */
	struct loop *loop;
	struct dst_cfg cfg;
	char *token;
	struct sock_addr ctl;
	char ctl_name[SOCK_ADDR_STRLEN];
	int fd;
	ev_io io;
	int io_events;
	struct grpc_client *cl;
	int h2_failed;
	int closing;                 /* tearing the connection down */
	struct buf out;
	struct loop_defer flush;
	struct loop_defer notify;
	struct loop_defer kick;
	struct loop_timer reconnect;
	struct loop_timer conn_timer;
	struct loop_timer ka_timer;  /* keepalive PING while UP */
	uint64_t ka_sent;            /* loop time of the last PING, or 0 */
	uint32_t attempt;            /* reconnect backoff step */
	uint32_t rng;
	struct dst_target **htab;
	uint32_t hsize;
	struct dst_target *all;
	struct dst_target *idle_head, *idle_tail;
	struct dst_wait *notifyq;
	struct dst_slot *startq, *startq_tail;
	struct dst_call *calls;      /* live call wrappers */
	void *scratch;               /* decode arena storage */
	size_t scratch_size;
	int dead;                    /* dst_fini ran */
};

/* Fills <cfg> with the defaults above. */
void dst_cfg_default(struct dst_cfg *cfg);

/*
 * Sets up <d> for the controller at <controller> (Destination gRPC, h2c)
 * with <cfg> (NULL: defaults; copied, context_token included). Connects
 * lazily, on the first lookup. Returns 0 or -ENOMEM.
 */
int dst_init(struct dst *d, struct loop *loop,
             const struct sock_addr *controller, const struct dst_cfg *cfg);

/*
 * Drops every target (waiters still armed are disarmed without a call),
 * closes the connection and frees everything. Consumers SHOULD have
 * released their references; pointers they kept dangle afterwards.
 * Accepts a zeroed or finished struct.
 */
void dst_fini(struct dst *d);

/*
 * The target for <authority> ("name.ns.svc.cluster.local:80"), created on
 * first use (its Get and GetProfile start at once; a new target is
 * PENDING). Returns a NEW REFERENCE the caller releases with
 * dst_target_unref, or NULL when the authority is empty or longer than
 * DST_MAX_AUTHORITY, when max_targets live targets are all in use (an
 * idle one is evicted first), or on memory shortage. Never calls back.
 */
struct dst_target *dst_lookup(struct dst *d, struct str authority);

/* Takes one more reference on <t>. */
void dst_target_ref(struct dst_target *t);

/* Releases a reference; at zero (and no waiter) the idle timeout starts.
 * NULL is a no-op. */
void dst_target_unref(struct dst_target *t);

/*
 * Parks <w> until <t> leaves PENDING. Returns 0 when armed: <cb>(<arg>,
 * t, res) follows once, from the loop, unless dst_wait_cancel(<w>) runs
 * first; while armed <w> keeps <t> alive. Returns -EALREADY when <t> is
 * not PENDING (read its state now), -ETIMEDOUT when <t> already failed its
 * resolution timeout (fail fast), -EBUSY when <w> is armed already.
 */
int dst_wait(struct dst_target *t, struct dst_wait *w, dst_wait_fn cb,
             void *arg);

/* Disarms <w>; no-op when not armed (also on a zeroed struct). */
void dst_wait_cancel(struct dst_wait *w);

/*
 * The first route of <p> matching <method> and <path> (path without the
 * query is the caller's business), or NULL (also for p == NULL).
 */
const struct dst_route *dst_profile_route(const struct dst_profile *p,
                                          struct str method, struct str path);

/* Live targets (the stats gauge). */
static inline uint64_t dst_ntargets(const struct dst *d)
{
	return d->stats.targets;
}

#endif
