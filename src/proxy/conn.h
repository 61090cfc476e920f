/*
 * conn: a downstream (accepted) connection and its life cycle.
 *
 *   accept ─► DETECT ─┬─► H1  (h1.c: request-level HTTP/1.1 forwarding)
 *        │            ├─► H2  (h2side.c: HTTP/2 streams)
 *        │            └─► TCP (tcp.c: opaque bytes; also after a 101)
 *        └──(opaque port / TCP route listener)──► TCP
 *   any state ─► LINGER (answered, FIN sent, draining unread input) ─► CLOSED
 *
 * A conn owns its client endpoint <cli> and, for opaque streams and
 * upgraded tunnels, the server endpoint <srv>. HTTP/1 upstream connections
 * are separate pooled objects (pool.c) bound to the conn for one exchange.
 *
 * Timeouts: one timer per conn, armed for the nearest deadline of the
 * current state (detect, header, keep-alive, idle, response, connect,
 * linger). Activity-based deadlines (idle) move with conn_touch, which only
 * stores a time: the timer re-arms itself lazily when it fires early.
 *
 * Contracts:
 *  - Objects come from px->conn_pool; conn_close never frees: it closes the
 *    sockets, releases what the conn holds, marks it CLOSED and queues the
 *    free (loop_defer), so a conn is never freed inside its own callbacks.
 *    Code that calls something which may close the conn MUST check
 *    conn_closed() before touching it again.
 *  - Every function that can end the connection returns -1 when it did.
 */
#ifndef MESHD_PROXY_CONN_H
#define MESHD_PROXY_CONN_H

#include <stdint.h>

#include "core/loop.h"
#include "core/sock.h"
#include "proxy/ep.h"
#include "proxy/h1.h"
#include "proxy/proxy_main.h"
#include "proxy/pxmetrics.h"

enum conn_st {
	CONN_ST_DETECT = 0,
	CONN_ST_H1,
	CONN_ST_H2,
	CONN_ST_TCP,
	CONN_ST_LINGER,
	CONN_ST_CLOSED,
};

enum conn_tmo {
	CONN_T_NONE = 0,
	CONN_T_DETECT,     /* protocol detection */
	CONN_T_HEADER,     /* a request head must complete */
	CONN_T_KEEPALIVE,  /* idle HTTP/1 connection between requests */
	CONN_T_IDLE,       /* no bytes moved (activity based) */
	CONN_T_RESPONSE,   /* response head due */
	CONN_T_CONNECT,    /* opaque upstream connect */
	CONN_T_LINGER,     /* lingering close */
};

/* conn.flags */
#define CONN_F_TCP_ROUTE  0x01 /* accepted on an explicit TCP route listener */
#define CONN_F_HAS_ORIG   0x02 /* <orig> holds SO_ORIGINAL_DST */
#define CONN_F_FAILED     0x04 /* closes as a failure (tcp_close_total) */

struct h2d;

struct conn {
	struct ep cli;                /* rw: downstream endpoint */
	struct ep srv;                /* rw: opaque/tunnel upstream (fd -1) */
	struct proxy *px;             /* ro */
	struct conn *next, *prev;     /* private: px->conns */
	enum conn_st st;              /* ro: through the state modules */
	uint8_t dir;                  /* ro: enum route_dir (== pxm_dir) */
	unsigned flags;               /* rw: CONN_F_* */
	uint64_t id;                  /* ro: for logs */
	struct sock_addr peer;        /* ro: client address */
	struct sock_addr local;       /* ro: address it arrived at */
	struct sock_addr orig;        /* ro: with CONN_F_HAS_ORIG */
	struct sock_addr srv_addr;    /* ro: opaque upstream address */
	struct pxm_tcp *m_src;        /* ro: peer="src" TCP metrics */
	struct pxm_tcp *m_dst;        /* rw: peer="dst" (opaque upstream) */
	struct loop_timer timer;      /* private */
	enum conn_tmo tkind;          /* private */
	uint64_t tms;                 /* private: length of an idle window */
	uint64_t deadline;            /* private: 0 = none */
	uint64_t tfire;               /* private: when the timer fires */
	struct loop_defer reap;       /* private */
	struct loop_defer kick;       /* private: h1 pipelined input */
	struct loop_defer flush;      /* private: h1 corked client output */
	struct h1x h1;                /* rw: h1.c, valid in CONN_ST_H1 */
	struct h2d *h2;               /* rw: h2side.c, valid in CONN_ST_H2 */
};

/*
 * Takes over an accepted socket <fd> from listener kind <dir>/<tcp_route>
 * with client address <peer>. Returns the conn or NULL (fd closed) when the
 * pool is exhausted or memory is short.
 */
struct conn *conn_new(struct proxy *px, int fd, const struct sock_addr *peer,
                      int dir, int tcp_route);

/* Ends the connection (see the contracts). <fail> counts it as a failure.
 * With <reset> the client sees RST instead of FIN. Idempotent. */
void conn_close(struct conn *c, int fail, int reset);

static inline int conn_closed(const struct conn *c)
{
	return c->st == CONN_ST_CLOSED;
}

/*
 * After a final answer: send what is pending, FIN the client, discard what
 * it still sends for a short while (so it reads the answer instead of a
 * RST), then close. Returns -1 (the conn is no longer usable for traffic).
 */
int conn_linger(struct conn *c);

/* Arms the timeout of <kind> for <ms> ms from now; <ms> == 0 disarms. */
void conn_timeout(struct conn *c, enum conn_tmo kind, uint64_t ms);

/* Moves an idle deadline forward (cheap: a store). */
void conn_touch(struct conn *c);

/* Starts the graceful end of a connection during shutdown. */
void conn_drain(struct conn *c);

/* The original destination when known, else the local address. */
static inline const struct sock_addr *conn_target_addr(const struct conn *c)
{
	return (c->flags & CONN_F_HAS_ORIG) ? &c->orig : &c->local;
}

/* The watcher callbacks, for modules that (re)initialize endpoints. */
void conn_cli_cb(struct ev_loop *ev, ev_io *w, int revents);
void conn_srv_cb(struct ev_loop *ev, ev_io *w, int revents);

#endif
