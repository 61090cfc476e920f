/*
 * h1: request-level HTTP/1.1 forwarding, downstream server side plus the
 * exchange logic that drives an upstream HTTP/1 connection from pool.c.
 *
 * One exchange at a time per downstream connection (pipelined requests
 * wait, unread or in the input buffer, until the current response ends).
 * An exchange:
 *   request head parsed (core/http1, strict) ─► route ─► upstream from the
 *   pool ─► rewritten head + body streamed up (chunked re-encoded, never
 *   copied unless the upstream cannot take it now) ─► response head parsed
 *   ─► rewritten head + body streamed down ─► metrics ─► upstream back to
 *   the pool (or closed) ─► next request or close.
 * 1xx interim responses are forwarded; a 101 to an Upgrade request turns
 * the connection into an opaque tunnel (tcp.c). CONNECT is refused with
 * 501 (core/http1's status for it). Errors the proxy makes up carry meshd-proxy-error (gRPC requests get
 * a trailers-only 200 with grpc-status instead).
 *
 * Upstream kinds. An exchange has one of two upstreams: an HTTP/1
 * connection from the pool (h1x.up, events through h1_up_*()), or, for a
 * meshed endpoint (the H2 hint), a stream of the pooled HTTP/2 connection
 * to its proxy (h1x.hx, DESIGN.md 4, meshd-orig-proto; h1.c's section
 * "HTTP/1 over HTTP/2"). Both sit behind the same points: send head, send
 * body bytes (h1_up_send), receive head, receive body.
 */
#ifndef MESHD_PROXY_H1_H
#define MESHD_PROXY_H1_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/http1.h"
#include "proxy/pxmetrics.h"
#include "proxy/route.h"

struct conn;
struct h1up;
struct h2side_x;
struct h1_h2req;

/* Body framing progress of one direction. */
struct h1body {
	uint8_t kind;                /* enum http1_body of the input */
	uint8_t out;                 /* H1_OUT_*: framing written */
	uint8_t done;                /* whole body consumed */
	uint8_t last_sent;           /* "0\r\n" written (chunked out) */
	uint64_t remain;             /* HTTP1_BODY_LENGTH */
	struct http1_chunked ch;     /* HTTP1_BODY_CHUNKED */
	struct buf *trl;             /* H1_OUT_RAW: where the trailer section
	                              * goes (NULL: dropped) */
};

#define H1_OUT_ASIS    0  /* bytes as they come (content-length) */
#define H1_OUT_CHUNKED 1  /* re-encoded chunks + trailers */
#define H1_OUT_RAW     2  /* decoded data only, delimited by close */

/* Exchange states. */
enum h1_rst { H1R_HEAD = 0, H1R_BODY, H1R_DONE };
enum h1_sst { H1S_NONE = 0, H1S_WAIT, H1S_BODY, H1S_DONE };

/* h1x.flags */
#define H1X_F_KEEPALIVE  0x0001 /* client wants the connection kept */
#define H1X_F_UPGRADE    0x0002 /* request asked to upgrade */
#define H1X_F_GRPC       0x0004 /* request content-type is gRPC */
#define H1X_F_HEAD_SENT  0x0008 /* a final response head went down */
#define H1X_F_CLOSE      0x0010 /* close the client after the response */
#define H1X_F_SYNTH      0x0020 /* the response is the proxy's own */
#define H1X_F_FAILED     0x0040 /* exchange failed (classification) */
#define H1X_F_COUNTED    0x0080 /* request_total counted */
#define H1X_F_ROUTING    0x0100 /* waiting for a pending route lookup */
#define H1X_F_UP_DIRTY   0x0200 /* upstream must not be reused */
#define H1X_F_HEAD_TMO   0x0400 /* header timer armed for this head */
#define H1X_F_UP_KEEP    0x0800 /* response allows upstream reuse */
#define H1X_F_REPLAY     0x1000 /* retryable: <replay> holds the request */
#define H1X_F_ROUTE_TMO  0x2000 /* the response timer is a route timeout */
#define H1X_F_STALE_OK   0x4000 /* <replay> may only serve a stale-connection
                                 * retry (not a retryable route) */
#define H1X_F_RETRYABLE  0x8000 /* the profile's route is retryable */

/* Most request bytes (head excluded) kept for a retry (Linkerd's). */
#define H1_REPLAY_BODY_MAX (64 * 1024)

struct h1x {
	uint8_t rst;                 /* enum h1_rst */
	uint8_t sst;                 /* enum h1_sst */
	uint16_t flags;              /* H1X_F_* */
	uint8_t method;              /* enum http1_method */
	uint8_t version;             /* client's: 10 or 11 */
	int16_t status;              /* final response status */
	int16_t grpc;                /* grpc-status seen, -1 none */
	size_t scan;                 /* request head bytes already scanned */
	size_t rscan;                /* response head bytes already scanned */
	uint64_t t0;                 /* ms: request head received */
	uint64_t nreq;               /* requests on this connection */
	struct h1body req, resp;
	struct h1up *up;             /* bound upstream, or NULL */
	struct pxm_http *m;          /* metrics of this exchange */
	struct pxm_http *m_hint;     /* last bundle, reused when it matches */
	struct route_wait rw;
	struct svc_lease lease;      /* the balancer's endpoint, or empty */
	struct buf replay;           /* with H1X_F_REPLAY: the request as
	                              * sent upstream (head + body; with hx:
	                              * the body only) */
	uint8_t attempts;            /* retries made for this request */
	/* HTTP/1 over HTTP/2 (meshd-orig-proto): the request rides a stream
	 * of the pooled h2 connection to a meshed endpoint instead of <up> */
	uint8_t hend;                /* the stream's request side was ended */
	uint32_t hpend;              /* response bytes not released yet */
	struct h2side_x *hx;         /* the stream, or NULL */
	struct h1_h2req *hreq;       /* its head as submitted (for retries) */
	struct buf hovf;             /* body bytes its queue refused */
	struct buf htrl;             /* the request's trailer section (field
	                              * lines), sent when the stream ends */
	struct sock_addr haddr;      /* the endpoint it went to */
};

/*
 * Takes over a conn whose detection said HTTP/1 with the first bytes at
 * <data>[<len>] (<from_in>: they are cli.in's content). Returns 0, or -1
 * when the connection ended.
 */
int h1_start(struct conn *c, const char *data, size_t len, int from_in);

/* Client endpoint events in CONN_ST_H1. */
void h1_on_cli(struct conn *c, int revents);

/* Timer events in CONN_ST_H1. */
void h1_on_timeout(struct conn *c, int kind);

/* Releases the exchange (upstream closed, not reused); from conn_close. */
void h1_release(struct conn *c);

/* Shutdown: close now when idle, else after the current response. */
void h1_drain(struct conn *c);

/* Runs pipelined input kept in cli.in (deferred work). */
void h1_kick(void *arg);

/* Sends the client output corked while an upgraded response was being
 * produced (deferred work: once per loop round, so the head and body of
 * a response, or several responses, leave in one write). */
void h1_flush(void *arg);

/* ---- called by pool.c for the bound upstream (the upstream seam) ---- */

/* The upstream connect failed or timed out (<err> = -errno). */
void h1_up_failed(struct conn *c, int err);
/* Upstream socket events while bound and connected. */
void h1_up_io(struct conn *c, int revents);

#endif
