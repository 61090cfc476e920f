/*
 * tcp: opaque byte forwarding between a conn's client and server endpoints:
 * opaque ports, TCP routes, undetected protocols (TLS passes through
 * untouched), detection timeouts, and upgraded HTTP/1 connections.
 *
 * Per direction: read from one side into the shared scratch buffer only
 * while the other side has nothing pending, write at once, keep what the
 * kernel refuses (back-pressure: that side stops being read until it
 * drains). End of stream on one side is passed on as a FIN (half-close)
 * once the other side's pending bytes are written; the stream ends when
 * both directions have ended, or at the first error (the other side then
 * gets a RST so that the failure is not mistaken for a clean end). No bytes
 * moving in either direction for cfg.idle_timeout_ms closes both.
 */
#ifndef MESHD_PROXY_TCP_H
#define MESHD_PROXY_TCP_H

#include <stddef.h>

struct conn;
struct ep;

/*
 * Routes and connects an opaque stream for <c>, whose first client bytes
 * are <data>[<len>] (<from_in>: cli.in's content; may be empty). On any
 * failure the connection is closed. Returns 0 or -1 (closed).
 */
int tcp_start(struct conn *c, const char *data, size_t len, int from_in);

/*
 * Turns <c> into a tunnel between its client and <c>->srv, which already
 * holds a connected upstream (an HTTP/1 upgrade). Pending input in either
 * endpoint's <in> is forwarded first. Returns 0 or -1 (closed).
 */
int tcp_tunnel(struct conn *c);

/* Endpoint events in CONN_ST_TCP (<ep> is &c->cli or &c->srv). */
void tcp_on_io(struct conn *c, struct ep *ep, int revents);

/* Timer events in CONN_ST_TCP. */
void tcp_on_timeout(struct conn *c, int kind);

/* Releases the server side (from conn_close). */
void tcp_release(struct conn *c);

#endif
