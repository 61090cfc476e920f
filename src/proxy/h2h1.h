/*
 * h2h1: the inbound half of HTTP/1-over-HTTP/2 (meshd-orig-proto).
 *
 * A request stream that arrived on the inbound listener marked with
 * meshd-orig-proto (the outbound proxy upgraded an HTTP/1 request to ride
 * the h2 connection between proxies) is forwarded to the application as
 * HTTP/1.1 over a pooled HTTP/1 connection, and the HTTP/1 response is
 * handed back as an h2 response (docs/proxy.md, "HTTP/1 over HTTP/2
 * between proxies"). This module drives that one HTTP/1 exchange; the h2
 * stream stays with its owner (h2side.c), which is told what to send
 * through struct h2h1_ops.
 *
 * Wire translation:
 *  - request: "METHOD path HTTP/1.1" (absolute-form with "; absolute-form":
 *    "METHOD http://authority/path HTTP/1.1"), "Host: <:authority>" first,
 *    then the fields (cookie crumbs joined into one field, host and
 *    connection-specific fields and meshd-orig-proto dropped); the body
 *    as is with content-length, else chunked (h2 trailers become chunked
 *    trailers), none when the stream ended with the head;
 *  - response: status and fields minus hop-by-hop ones (connection,
 *    keep-alive, proxy-connection, te, transfer-encoding, upgrade and those
 *    Connection names), names lowercased, plus "meshd-orig-proto:
 *    HTTP/1.1"; body decoded (length, chunked, close-delimited; none for
 *    HEAD, 1xx, 204, 304); chunked trailers as h2 trailers; 1xx forwarded
 *    as interim heads; a 101 is refused (502).
 *
 * Contracts:
 *  - Flow control: request body bytes are reported back (ops->consumed)
 *    only once the upstream socket or its bounded output buffer took them,
 *    so the owner releases the client's window at the application's pace.
 *    Body bytes not taken yet wait in a buffer the client's window bounds.
 *  - Response bytes ops->data does not accept wait (one read at most) and
 *    the upstream socket is not read until h2h1_resume.
 *  - Every ops call may release the exchange (h2h1_release); h2h1 touches
 *    nothing of it afterwards. Objects come from the caller's mem pool and
 *    are freed through loop_defer, never inside a callback.
 *  - The upstream connection goes back to the pool only after an exchange
 *    that ended cleanly (request fully written, response complete, the
 *    response allowing keep-alive, nothing unasked after it); any failure,
 *    release or early end closes it.
 */
#ifndef MESHD_PROXY_H2H1_H
#define MESHD_PROXY_H2H1_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/h2.h"
#include "core/http1.h"
#include "core/mem.h"
#include "core/str.h"

struct proxy;
struct pool_target;
struct h2h1;

/* The field that marks an upgraded request, and its values. */
#define H2H1_HDR "meshd-orig-proto"
#define H2H1_PROTO_11 "HTTP/1.1"

/* h2h1_req.flags */
#define H2H1_F_ABSOLUTE 0x01  /* the original client used absolute-form */
#define H2H1_F_CHUNKED  0x02  /* the body goes chunked */
#define H2H1_F_NOBODY   0x04  /* the stream ended with its head */

/* The request to forward; every slice is borrowed for the call. */
struct h2h1_req {
	struct str method;
	struct str authority;        /* :authority, else the host field */
	struct str path;
	const struct h2_header *fields;
	size_t nfields;
	unsigned flags;              /* H2H1_F_* */
	size_t hold_max;             /* request bytes kept unsent at most
	                              * (the client's window bounds them) */
};

/* What the owner of the h2 stream does for the exchange. <owner> is the
 * pointer given to h2h1_open. Borrowed slices are valid for the call. */
struct h2h1_ops {
	/* A response head: final (status >= 200) or interim (1xx). <end>:
	 * the response has no body. 0, or -1 to give up (the owner then
	 * releases the exchange). */
	int (*head)(void *owner, int status, const struct h2_header *f,
	            size_t n, int end);
	/* Response body bytes: returns how many were accepted (fewer than
	 * <n>: call h2h1_resume once there is room) or -1. */
	ssize_t (*data)(void *owner, const char *p, size_t n);
	/* The response ended, with trailer fields <f>[<n>] (n may be 0). The
	 * upstream connection is already back in the pool or closed. */
	void (*end)(void *owner, const struct h2_header *f, size_t n);
	/* The exchange failed: <status> (502, 504) is what to answer when no
	 * final head went down yet (otherwise the stream is to be reset).
	 * The upstream connection is already closed. */
	void (*fail)(void *owner, int status, const char *reason);
	/* <n> more request body bytes were taken by the upstream. */
	void (*consumed)(void *owner, size_t n);
};

/* ---- pure translation helpers ---- */

/*
 * Parses a meshd-orig-proto value: "HTTP/1.1" or "HTTP/1.0", optionally
 * followed by "; absolute-form" (OWS around ';'). Returns 11 or 10 and sets
 * *<absolute>, or -1 for anything else.
 */
int h2h1_orig_proto(struct str v, int *absolute);

/* 1 when the request field <name> does not cross to the application
 * (host, cookie: handled apart; connection-specific fields; the mark). */
int h2h1_req_field_dropped(struct str name);

/*
 * Appends the HTTP/1.1 request head for <rq> to <out> (see the header
 * comment). Everything is validated (method token, target and authority
 * without spaces or controls, field names tokens, values without CR, LF,
 * NUL). Returns 0, or -1 with <out> unchanged (invalid, or no room).
 */
int h2h1_write_head(struct buf *out, const struct h2h1_req *rq);

/*
 * Translates HTTP/1 response fields <in>[<nin>] into h2 fields <f>[<cap>]:
 * drops hop-by-hop fields (those of <hop> when given, else the fixed list)
 * and any meshd-orig-proto, copies names lowercased into <names>[<ncap>]
 * (values stay slices of the input) and, with <mark>, appends
 * "meshd-orig-proto: HTTP/1.1". Returns the field count or -1 (no room).
 */
ssize_t h2h1_resp_fields(const struct http1_header *in, size_t nin,
                         const struct http1_head *hop, int mark,
                         struct h2_header *f, size_t cap, char *names,
                         size_t ncap);

/* ---- the exchange ---- */

/* Bytes of a struct h2h1 (for the owner's mem pool). */
size_t h2h1_size(void);

/*
 * Starts forwarding <rq> to <t> (an HTTP/1 connection from the pool) for
 * <owner>, the exchange coming from <mp>. The head is written at once
 * (queued while the connect is in progress). Returns the exchange, or
 * NULL with *<err>: -EINVAL (the head cannot be written in HTTP/1),
 * -ENOBUFS (memory, pool cap) or the connect's -errno.
 */
struct h2h1 *h2h1_open(struct proxy *px, struct mem_pool *mp,
                       struct pool_target *t, const struct h2h1_req *rq,
                       const struct h2h1_ops *ops, void *owner, int *err);

/* Request body bytes from the client (borrowed). 0, or -1 when they can
 * be neither sent nor kept (the owner resets the stream). */
int h2h1_req_data(struct h2h1 *hx, const char *p, size_t n);

/* The client ended the request, with trailer fields <f>[<n>] (kept as
 * chunked trailers; dropped when the body is not chunked). Later calls
 * are ignored. 0 or -1. */
int h2h1_req_end(struct h2h1 *hx, const struct h2_header *f, size_t n);

/* There is room for response bytes again (the stream's on_writable). */
void h2h1_resume(struct h2h1 *hx);

/* The owner lets go (stream closed or reset, proxy's own answer): the
 * upstream connection is closed unless it was already given back; the
 * object is freed later. No ops call follows. */
void h2h1_release(struct h2h1 *hx);

#endif
