/*
 * route: where a connection or a request goes.
 *
 * A lookup takes what the proxy knows about a connection or request (its
 * direction, the original destination from SO_ORIGINAL_DST, the listener,
 * the HTTP authority) and answers with a set of endpoints, each with a
 * protocol hint, or with the synthetic error to answer (503 and a reason).
 *
 * Today's sources are static: transparent capture (the original
 * destination), the explicit inbound forward address, the explicit TCP route
 * table, and IP-literal authorities. The destination client of a later issue
 * answers names asynchronously; the API is built for that already:
 * route_resolve may return ROUTE_PENDING and deliver the result later through
 * the callback, and callers handle both (h1.c keeps the request head in its
 * input buffer meanwhile). The result carries several endpoints with hints
 * (H2: the peer is a meshed proxy speaking HTTP/2; OPAQUE: opaque transport)
 * so that load balancing and the HTTP/1-over-h2 upstream slide in as new
 * consumers of the same result.
 *
 * Contracts:
 *  - Pure functions of the configuration and the query (no I/O, no
 *    allocation) except where a later source makes the lookup asynchronous.
 *  - Parsers take C strings, return 0 or -1 with a one-line reason in <err>.
 */
#ifndef MESHD_PROXY_ROUTE_H
#define MESHD_PROXY_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"
#include "core/str.h"
#include "proxy/svc.h"

#define ROUTE_TCP_MAX 64        /* explicit TCP routes */
#define ROUTE_MAX_EP 8          /* endpoints in one result */
#define ROUTE_MAX_SELF 72       /* own listener addresses (loop check) */
#define ROUTE_AUTH_MAX 264      /* authority bytes a pending lookup keeps
                                 * (a 253-byte name and a port) */

enum route_dir { ROUTE_INBOUND = 0, ROUTE_OUTBOUND = 1 };

enum route_hint {
	ROUTE_HINT_NONE = 0,    /* unknown: speak what the client spoke */
	ROUTE_HINT_H2,          /* meshed peer: HTTP/2 (orig-proto upgrade) */
	ROUTE_HINT_OPAQUE,      /* opaque transport */
};

struct route_tcp {
	uint16_t lport;              /* local port of the explicit listener */
	struct sock_addr target;
};

struct route_cfg {
	int transparent;             /* use SO_ORIGINAL_DST when present */
	int has_inbound_forward;
	struct sock_addr inbound_forward; /* explicit inbound: the app */
	int inbound_loopback;        /* inbound to 127.0.0.1:<orig port> */
	struct route_tcp tcp[ROUTE_TCP_MAX];
	size_t ntcp;
	uint8_t opaque[65536 / 8];   /* bitmap of opaque ports */
	struct sock_addr self[ROUTE_MAX_SELF]; /* own listeners */
	size_t nself;
	/* names the controller resolves (NULL: no destination service) */
	struct svc_table *svcs;
};

struct route_query {
	enum route_dir dir;
	int http;                        /* 1: an HTTP request; 0: a TCP stream */
	const struct sock_addr *orig_dst; /* SO_ORIGINAL_DST, or NULL */
	const struct sock_addr *local;   /* the accepted socket's local address */
	struct str authority;            /* HTTP: :authority / Host; may be empty */
};

struct route_endpoint {
	struct sock_addr addr;
	enum route_hint hint;
};

struct route_result {
	int status;          /* 0: endpoints found; else the HTTP status to
	                      * answer (503) */
	const char *reason;  /* static text for meshd-proxy-error when
	                      * status != 0 */
	size_t n;            /* endpoints */
	struct route_endpoint ep[ROUTE_MAX_EP];
	/* set when a balancer chose ep[0]: the caller owns it from here and
	 * MUST give it back with svc_release once the exchange is over */
	struct svc_lease lease;
};

#define ROUTE_DONE 0
#define ROUTE_PENDING 1

/* Called once with the result of a lookup that returned ROUTE_PENDING;
 * the callee owns res->lease (svc_release it if it does not go on). */
typedef void (*route_done_fn)(void *arg, struct route_result *res);

/*
 * A pending lookup, embedded in the caller's object. Cancel it with
 * route_cancel before that object goes away.
 */
struct route_wait {
	route_done_fn cb;    /* private */
	void *arg;           /* private */
	int armed;           /* ro: 1 while a result is due */
	const struct route_cfg *rc;   /* private */
	struct route_query q;         /* private: what is being resolved;
	                               * its address pointers MUST stay valid
	                               * while armed (they point into the
	                               * connection); the authority is copied
	                               * into <auth>: the caller's bytes may
	                               * move (h1 parses a head in the shared
	                               * read buffer, then keeps it in cli.in) */
	char auth[ROUTE_AUTH_MAX];    /* private */
	struct svc_wait sw;           /* private */
};

/* Sets a configuration to "nothing routed, Linkerd's default opaque
 * ports". */
void route_cfg_init(struct route_cfg *rc);

/*
 * Looks up <q>. Returns ROUTE_DONE with <res> filled (endpoints, or a
 * status and reason), or ROUTE_PENDING: <w> is armed and <cb>(<arg>, res)
 * will be called once from the loop, unless route_cancel(<w>) runs first.
 */
int route_resolve(const struct route_cfg *rc, const struct route_query *q,
                  struct route_result *res, struct route_wait *w,
                  route_done_fn cb, void *arg);

/* Forgets a pending lookup; no-op when <w> is not armed. */
void route_cancel(struct route_wait *w);

/* The target of explicit TCP route for local port <lport>, or NULL. */
const struct sock_addr *route_tcp_target(const struct route_cfg *rc,
                                         uint16_t lport);

/* 1 when <port> skips protocol detection. */
static inline int route_is_opaque(const struct route_cfg *rc, uint16_t port)
{
	return (rc->opaque[port >> 3] >> (port & 7)) & 1;
}

/* 1 when <a> is one of the proxy's own listeners (a routing loop). */
int route_is_self(const struct route_cfg *rc, const struct sock_addr *a,
                  const struct sock_addr *local);

/*
 * Parses "LPORT=ADDR[,LPORT=ADDR...]" (ADDR an IP literal with port) and
 * appends to rc->tcp. Empty input adds nothing.
 */
int route_parse_tcp_routes(struct route_cfg *rc, const char *spec,
                           char *err, size_t errlen);

/* Parses "P[,P|P-Q...]" into rc->opaque (replacing it). "" clears it. */
int route_parse_ports(struct route_cfg *rc, const char *spec,
                      char *err, size_t errlen);

/*
 * Turns an HTTP authority into an address: "1.2.3.4", "1.2.3.4:8080",
 * "[::1]", "[::1]:8080" (no port: <defport>). Returns 0, -ENOENT when the
 * authority is a host name (not an IP literal: discovery's job), -EINVAL
 * when it is malformed.
 */
int route_authority_addr(struct str authority, uint16_t defport,
                         struct sock_addr *out);

/* Linkerd's default opaque ports. */
#define ROUTE_DEFAULT_OPAQUE "25,587,3306,4444,5432,6379,9300,11211"

#endif
