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

#endif
