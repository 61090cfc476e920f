/*
 * pool: upstream connections per target address.
 *
 * A target is (direction, address). It keeps its idle HTTP/1 keep-alive
 * connections (LIFO, so the warmest is reused first; at most
 * cfg.pool_max_idle, each closed after cfg.pool_idle_timeout_ms or when the
 * server closes or sends anything unasked) and, for HTTP/2, the one
 * multiplexed connection (h2side.c) that all streams to that target share.
 * A target lives while it holds any connection.
 *
 * An HTTP/1 upstream (struct h1up) is bound to one exchange at a time: an
 * owner pointer and its struct h1up_ops. While bound, its socket events
 * go to ops->io(owner, revents) and a connect failure or timeout to
 * ops->failed(owner, -errno), after which the connection is closed and
 * unbound. h1.c's exchanges bind through pool_h1_get (ops = h1_up_io /
 * h1_up_failed on a struct conn); other owners (h2h1.c) through
 * pool_h1_get_owner.
 *
 * Contracts:
 *  - h1up objects come from px->up_pool and are freed through loop_defer,
 *    never inside their callbacks.
 *  - pool_h1_put with reuse = 0, or any error, closes the connection.
 *  - When mTLS arrives, the connect step (pool_h1_get, h2 connect) is where
 *    the TLS client endpoint is stacked; the rest does not change.
 */
#ifndef MESHD_PROXY_POOL_H
#define MESHD_PROXY_POOL_H

#include <stdint.h>

#include "core/loop.h"
#include "core/sock.h"
#include "proxy/ep.h"
#include "proxy/pxmetrics.h"

struct proxy;
struct conn;
struct pool;
struct pool_target;
struct h2u;

enum h1up_st { H1UP_CONNECTING = 0, H1UP_BUSY, H1UP_IDLE, H1UP_CLOSED };

/* What a bound owner is told. Both may unbind the connection (put it) or
 * release the owner; pool.c touches nothing of either afterwards. */
struct h1up_ops {
	/* socket events while bound and connected */
	void (*io)(void *owner, int revents);
	/* the connect failed or timed out (-errno); the connection is
	 * already closed and unbound */
	void (*failed)(void *owner, int err);
};

struct h1up {
	struct ep ep;                 /* rw: by the bound exchange */
	struct pool_target *t;        /* ro */
	struct h1up *next, *prev;     /* private: target's idle list */
	void *owner;                  /* ro: bound exchange or NULL */
	const struct h1up_ops *ops;   /* ro: with <owner> */
	enum h1up_st st;              /* ro */
	int opened;                   /* private: counted in tcp_open_total */
	uint64_t nreq;                /* ro: exchanges served */
	struct loop_timer timer;      /* private */
	struct loop_defer reap;       /* private */
};

struct pool_target {
	struct sock_addr addr;        /* ro */
	uint8_t dir;                  /* ro */
	struct pxm_tcp *m;            /* ro: peer="dst" metrics */
	struct pool *pool;            /* ro */
	struct h1up *idle;            /* private */
	uint32_t nidle;               /* ro */
	uint32_t nbusy;               /* ro: bound or connecting h1 */
	uint32_t nclosing;            /* private: closed h1, free pending */
	struct h2u *h2;               /* rw: h2side.c's shared connection */
	struct pool_target *hnext;    /* private */
};

/* Creates the pool of <px>. NULL when memory is short. */
struct pool *pool_new(struct proxy *px);
/* Closes every connection and frees the pool (shutdown end). */
void pool_free(struct pool *p);

/* Closes every idle connection (drain start); busy ones stay. */
void pool_close_idle(struct pool *p);

/* The target of (<dir>, <addr>), created on demand; NULL when memory is
 * short. */
struct pool_target *pool_target_get(struct pool *p, int dir,
                                    const struct sock_addr *addr);

/* Frees <t> when it holds nothing any more. */
void pool_target_maybe_free(struct pool_target *t);

/* Closes the idle HTTP/1 connections of <t> (one of them proved stale:
 * its peers are suspect too). <t> stays (the caller holds it busy). */
void pool_target_close_idle(struct pool_target *t);

/*
 * An upstream HTTP/1 connection to <t> bound to <cx>: an idle one, or a new
 * one whose connect is in progress (bytes sent meanwhile queue in its
 * output buffer). Returns NULL with -errno in *<err> when the connect fails
 * at once or nothing is left (pool cap, memory).
 */
struct h1up *pool_h1_get(struct pool_target *t, struct conn *cx, int *err);

/* Same for any owner: <u>'s events go to <ops> with <owner>. */
struct h1up *pool_h1_get_owner(struct pool_target *t,
                               const struct h1up_ops *ops, void *owner,
                               int *err);

/* Unbinds <u>: back to the idle list when <reuse> (and allowed), else
 * closed. */
void pool_h1_put(struct h1up *u, int reuse);

/*
 * Unbinds <u> and hands its socket and buffers to <dst> (an upgraded
 * tunnel), whose watcher callback becomes <cb>. <u> is freed; the
 * connection stays open and counted in the target's metrics by its new
 * owner (*<m> receives the metrics bundle to close it with).
 */
void pool_h1_detach(struct h1up *u, struct ep *dst,
                    void (*cb)(struct ev_loop *, ev_io *, int),
                    struct pxm_tcp **m);

/* Opens a TCP connection for an opaque stream: sets up <ep> around a
 * connecting socket to <addr>. Returns 0 or -errno. */
int pool_tcp_connect(struct proxy *px, struct ep *ep,
                     const struct sock_addr *addr);

/* Number of idle and busy HTTP/1 upstream connections (tests, admin). */
void pool_counts(const struct pool *p, uint32_t *idle, uint32_t *busy);

#endif
