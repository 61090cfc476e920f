/*
 * proxy_main: `meshd proxy`, the sidecar data plane. Parses the flags, owns
 * the process-wide proxy state (struct proxy: loop, configuration, metrics,
 * pools, listeners, the list of live connections) and runs the loop until a
 * graceful shutdown completes.
 *
 * Contracts:
 *  - One struct proxy per process, created by proxy_main; every proxy
 *    object keeps a pointer to it. Single-threaded: all of it is touched
 *    from the loop only.
 *  - proxy_shutdown may be called any number of times (SIGTERM, POST
 *    /shutdown); the first call starts the drain, later calls do nothing.
 *  - Readiness is a set of gates (PROXY_GATE_*) that must all be open for
 *    /ready to answer 200; this issue has the listener gate only, the
 *    identity gate of a later issue is a new bit.
 */
#ifndef MESHD_PROXY_PROXY_MAIN_H
#define MESHD_PROXY_PROXY_MAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/http1.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/sock.h"
#include "proxy/pxmetrics.h"
#include "proxy/route.h"

struct conn;
struct listener;
struct pool;
struct admin;
struct h2side;

/* Readiness gates: bit set = still closed. */
#define PROXY_GATE_LISTENERS 0x1u

struct proxy_cfg {
	const char *outbound_addr_s;   /* flag strings (argv/environ) */
	const char *inbound_addr_s;
	const char *admin_addr_s;
	const char *mode_s;
	const char *inbound_forward_s;
	const char *tcp_route_s;
	const char *opaque_ports_s;
	const char *workload_labels_s;
	const char *log_level_s;
	const char *log_format_s;
	const char *destination_addr_s;
	const char *balancer_s;
	int inbound_connect_loopback;
	int enable_shutdown;
	int inbound_authority_labels;

	struct sock_addr outbound_addr;
	struct sock_addr inbound_addr;
	struct sock_addr admin_addr;
	struct sock_addr destination_addr;
	int has_destination;           /* --destination-addr given */

	uint64_t detect_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms;      /* opaque streams and HTTP exchanges */
	uint64_t keepalive_timeout_ms; /* idle HTTP/1 client connections */
	uint64_t header_timeout_ms;    /* a request head must complete */
	uint64_t response_timeout_ms;  /* response head; 0 = none */
	uint64_t pool_idle_timeout_ms; /* idle upstream HTTP/1 connections */
	uint64_t stall_timeout_ms;     /* h2 stream output stuck this long */
	uint64_t shutdown_grace_ms;
	uint64_t max_conns;            /* downstream connections */
	uint64_t max_head;             /* request/response head bytes */
	uint64_t max_headers;          /* field lines per head */
	uint64_t pool_max_idle;        /* idle upstream conns per target */
	uint64_t max_conn_mem;         /* buffer bytes per connection */

	struct http1_limits h1lim;     /* derived */
	size_t in_limit, out_limit;    /* derived per-endpoint buffer caps */
	struct route_cfg route;
	struct metrics_label wl[PXM_MAX_WORKLOAD_LABELS];
	size_t nwl;
	char wl_store[1024];           /* storage of the wl strings */
};

/* Process-wide counters that are not Prometheus metrics. */
struct proxy_stats {
	uint64_t accepted;
	uint64_t refused_max_conns;
};

struct proxy {
	struct loop loop;
	struct proxy_cfg cfg;
	struct metrics_registry *reg;
	struct pxmetrics pm;
	struct mem_pool conn_pool;     /* struct conn */
	struct mem_pool up_pool;       /* struct h1up */
	struct pool *pool;             /* upstream targets */
	struct listener *listeners;    /* list */
	struct admin *admin;
	struct h2side *h2side;         /* h2side.c's pools and limits */
	struct dst dst;                /* destination client (with
	                                * --destination-addr) */
	struct svc_table svcs;         /* per-service balancers */
	struct conn *conns;            /* all live downstream conns */
	uint32_t nconns;
	struct proxy_stats stats;
	unsigned gates;                /* PROXY_GATE_* still closed */
	int draining;
	uint64_t drain_deadline_ms;
	struct loop_timer drain_timer;
	int exit_code;
};

/* `meshd proxy` entry point (argv[0] = "proxy"). Exit status per main.c. */
int proxy_main(int argc, char **argv);

/*
 * A proxy without listeners, for tests and fuzz targets: sets up <px> (any
 * content; it is zeroed first) as `meshd proxy <argv>` would (defaults,
 * flags and their MESHD_* variables, log level and format, the derived
 * configuration, the loop, metrics, pools and HTTP/2 state) but binds
 * nothing and watches no signal. argv[0] is the subcommand name. The
 * caller brings connections (conn_new on sockets it owns) and runs
 * px->loop itself. Returns 0, or -1 with a reason in <err> and nothing
 * left to release.
 */
int proxy_setup(struct proxy *px, int argc, char **argv, char *err,
                size_t errlen);

/* Releases everything proxy_setup set up; connections still alive are
 * closed. <px> MUST NOT be used afterwards (until proxy_setup again). */
void proxy_teardown(struct proxy *px);

/* Starts the graceful shutdown (idempotent). */
void proxy_shutdown(struct proxy *px, const char *why);

/* 1 when every readiness gate is open. */
static inline int proxy_ready(const struct proxy *px)
{
	return px->gates == 0 && !px->draining;
}

/* Called by conn.c when a connection is gone: lets a drain finish and a
 * paused listener accept again. */
void proxy_conn_gone(struct proxy *px);

/*
 * Parses "k=v[,k=v...]" (label names as Prometheus wants them, values
 * without ',' or '=') into <out>[<cap>], copying strings into <store>.
 * Returns the number of labels, or -1 with a reason in <err>.
 */
int proxy_parse_labels(const char *spec, struct metrics_label *out,
                       size_t cap, char *store, size_t storelen,
                       char *err, size_t errlen);

#endif
