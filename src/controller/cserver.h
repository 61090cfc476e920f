/*
 * cserver: the controller's gRPC server transport: a listening socket, the
 * accepted connections, and the byte I/O that drives one core/grpc server
 * (and its core/h2 connection) per connection, with back-pressure both
 * ways. Plaintext h2c today; the accept step (cserver_accept_cb) is the one
 * place where TLS will be stacked.
 *
 * Contracts:
 *  - The methods given to cserver_new are served on every connection; their
 *    callbacks receive as <ctx> the struct cserver_conn the call arrived on
 *    (cserver_conn_ctx gives the role's context back). The array MUST
 *    outlive the server.
 *  - Output produced inside the method callbacks is flushed by cserver
 *    after them. Output produced anywhere else (a timer, a bus delivery)
 *    MUST be followed by cserver_conn_kick(conn), which flushes after the
 *    current callbacks (batched: one write per connection per iteration).
 *  - A connection is freed only from deferred work, never inside a callback
 *    of its own; every call's on_done has run before (core/grpc's
 *    contract).
 *  - Limits: max_conns connections at once (the next ones are closed at
 *    accept), h2 limits (MAX_CONCURRENT_STREAMS = max_streams_per_conn),
 *    a connection must send its HTTP/2 preface and SETTINGS within
 *    CSERVER_HANDSHAKE_MS, and a connection without any stream for
 *    idle_timeout_ms is ended with GOAWAY.
 *  - Keepalive (Linkerd's control-plane settings): every connection sends
 *    an HTTP/2 PING (h2_ping) every keepalive interval; one whose ACK has
 *    not come back within the keepalive timeout ends the connection (log
 *    at info, counted in cserver_stats and cserver_keepalive_timeouts).
 *    This finds dead peers of long-lived streams (half-open TCP after a
 *    partition, a client that stopped reading) in interval + timeout.
 *    The values are process-wide (cserver_set_keepalive, before
 *    cserver_new); interval 0 disables it. TCP keepalive stays as a
 *    second line (probes after CSERVER_KEEPALIVE_S of silence, every
 *    CSERVER_KEEPALIVE_S, two unanswered ones end the connection).
 */
#ifndef MESHD_CONTROLLER_CSERVER_H
#define MESHD_CONTROLLER_CSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/grpc.h"
#include "core/loop.h"
#include "core/sock.h"

#define CSERVER_HANDSHAKE_MS 10000
#define CSERVER_KEEPALIVE_S 10
/* HTTP/2 PING keepalive defaults (Linkerd: 10 s interval, 3 s timeout). */
#define CSERVER_KA_INTERVAL_MS 10000u
#define CSERVER_KA_TIMEOUT_MS 3000u
/* Bytes read per wake-up and pulled from h2 per write. */
#define CSERVER_IO_CHUNK 16384

struct cserver;
struct cserver_conn;

struct cserver_cfg {
	uint32_t max_conns;
	uint32_t max_streams_per_conn;
	uint64_t idle_timeout_ms;      /* 0: never */
	size_t max_msg;                /* gRPC message cap both ways */
	size_t arena_size;             /* per-call request decode arena */
};

struct cserver_stats {
	uint64_t accepted;             /* connections accepted */
	uint64_t refused;              /* closed at accept (limit) */
	uint32_t open;                 /* connections now */
	uint64_t keepalive_timeouts;   /* closed: PING ACK not in time */
};

/*
 * Sets the PING keepalive of the servers created afterwards (process-wide,
 * the controller's --keepalive-interval / --keepalive-timeout): a PING every
 * <interval_ms> (0: none), the connection closed when its ACK is <timeout_ms>
 * late (0 is taken as 1). Defaults: CSERVER_KA_INTERVAL_MS,
 * CSERVER_KA_TIMEOUT_MS.
 */
void cserver_set_keepalive(uint64_t interval_ms, uint64_t timeout_ms);

/* Connections closed for an unanswered keepalive PING since the process
 * started, all servers together (for the metrics exposition). */
uint64_t cserver_keepalive_timeouts(void);

/*
 * Listens on <addr> and serves <methods>[<n>] on every connection. <ctx> is
 * the role's context (cserver_conn_ctx). Returns the server or NULL with
 * "listen ADDR: reason" (or "out of memory") in <err>.
 */
struct cserver *cserver_new(struct loop *loop, const struct sock_addr *addr,
                            const struct cserver_cfg *cfg,
                            const struct grpc_method *methods, size_t n,
                            void *ctx, char *err, size_t errlen);

/* The bound address (port 0 resolved). */
const struct sock_addr *cserver_addr(const struct cserver *s);

/* The role context given to cserver_new. */
void *cserver_conn_ctx(const struct cserver_conn *c);

/* Asks for the connection's pending output to be written after the
 * current callbacks. */
void cserver_conn_kick(struct cserver_conn *c);

/*
 * Stops accepting and sends every connection a graceful GOAWAY; open calls
 * run on (the role ends them). <done>(arg) runs once the last connection
 * is gone: from deferred work, or at once when none is open.
 */
void cserver_drain(struct cserver *s, void (*done)(void *arg), void *arg);

void cserver_get_stats(const struct cserver *s, struct cserver_stats *st);

/* Closes the listener and every connection at once (calls get on_done with
 * CANCELLED) and frees the server. NULL is a no-op. Not from a callback. */
void cserver_free(struct cserver *s);

#endif
