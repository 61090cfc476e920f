/*
 * h2side: HTTP/2 forwarding through core/h2 (I/O-less connections), both
 * the downstream server side (a conn whose detection saw the h2c preface)
 * and the upstream client side (multiplexed connections per target, held
 * by the pool target).
 *
 * A proxied stream (struct h2s) pairs a downstream stream with an upstream
 * stream. Heads are forwarded as they are (h2 already validated them;
 * inbound drops meshd-client-id), bodies and trailers stream through with
 * end-to-end flow control: bytes received on one side are released to its
 * window (h2_consume) only once the other side has handed them to the
 * socket, so a slow reader stalls its peer instead of growing memory. What
 * the other side's send queue cannot take at once waits in a per-stream
 * overflow buffer bounded by the stream window.
 *
 * Upstream connections: one per target, shared by all downstream streams
 * to it; when its concurrent-stream limit is reached another is opened
 * (at most H2SIDE_MAX_UP_CONNS per target), and a connection that received
 * GOAWAY takes no new streams.
 *
 * Errors: a stream whose upstream fails before the response head gets the
 * proxy's own answer (502/503/504 with meshd-proxy-error, or a gRPC
 * trailers-only 200 with grpc-status 14 or 4); after the head, the
 * downstream stream is reset. Metrics as for HTTP/1 (pxmetrics), with
 * grpc-status taken from trailers or a trailers-only head.
 */
#ifndef MESHD_PROXY_H2SIDE_H
#define MESHD_PROXY_H2SIDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proxy;
struct conn;
struct h2u;

#define H2SIDE_MAX_UP_CONNS 16

/* Sets up the object pools and the h2 limits. 0 or -1 (memory). */
int h2side_init(struct proxy *px);
/* Releases what h2side_init set up (after every conn closed). */
void h2side_fini(struct proxy *px);

/* Takes over a conn whose first bytes are the h2c preface. 0, or -1 when
 * the connection ended. */
int h2side_start(struct conn *c, const char *data, size_t len, int from_in);

/* Client endpoint events, timer events, release (conn_close) and drain
 * (shutdown) for a conn in CONN_ST_H2. */
void h2side_on_cli(struct conn *c, int revents);
void h2side_on_timeout(struct conn *c, int kind);
void h2side_release(struct conn *c);
void h2side_drain(struct conn *c);

/* Shutdown: the upstream connection takes no new streams and ends when
 * its streams are done. */
void h2side_up_drain(struct h2u *u);

/*
 * External upstream streams: a stream on the pooled HTTP/2 connection to a
 * target, driven by another module (h1h2.c: an HTTP/1 client's request
 * upgraded between proxies, DESIGN.md 4). h2side owns the connection; the
 * owner <o> owns the request and receives the response through <ops>.
 *
 * Contract: every callback gets the owner pointer. on_head (1xx heads
 * too), on_data, on_trailers and on_end run from the connection's input;
 * on_data bytes stay charged to the stream window until
 * h2side_x_consume. on_close runs exactly once when the stream is gone
 * for any reason other than h2side_x_close (reset by the peer, refused,
 * connection lost or never made: <code> then REFUSED_STREAM when the
 * request surely reached no application) or after both sides ended;
 * the handle is dead when it returns. Callbacks return 0, or -1 to have
 * the stream reset (no on_close follows then: the owner gave it up).
 * Callbacks may call h2side_x_* on their own handle except inside
 * on_close, and may open other streams.
 */
struct h2side_x;
struct h2_head;
struct h2_header;
struct h2_request;
struct sock_addr;

struct h2side_xops {
	int (*on_head)(void *o, const struct h2_head *head, int end_stream);
	int (*on_data)(void *o, const char *p, size_t n);
	int (*on_trailers)(void *o, const struct h2_header *f, size_t n);
	int (*on_end)(void *o);
	void (*on_close)(void *o, int reset, uint32_t code);
	void (*on_writable)(void *o);
};

/*
 * Opens a stream to (<dir>, <addr>) with <req> (end of request when
 * <end>). Returns the handle, or NULL with *<status> the status the proxy
 * should answer (502: no connection possible, 503: stream limits or
 * memory) and *<why> its meshd-proxy-error (a static string).
 */
struct h2side_x *h2side_x_open(struct proxy *px, int dir,
                               const struct sock_addr *addr,
                               const struct h2_request *req, int end,
                               const struct h2side_xops *ops, void *o,
                               int *status, const char **why);
/* Queues request body bytes: the count accepted (0: full, on_writable
 * follows), or -errno (the stream is failing; on_close follows). */
ssize_t h2side_x_write(struct h2side_x *x, const void *p, size_t n);
/* Ends the request, with trailers <f>[<n>] (may be NULL/0). 0 or -errno. */
int h2side_x_end(struct h2side_x *x, const struct h2_header *f, size_t n);
/* Releases <n> response bytes to the stream window. */
void h2side_x_consume(struct h2side_x *x, size_t n);
/* The owner lets go: the stream is reset unless both sides ended; no
 * callback runs for it any more. */
void h2side_x_close(struct h2side_x *x);

#endif
