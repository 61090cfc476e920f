/*
 * rewrite: the pure parts of HTTP/1 forwarding: which fields cross the
 * proxy, how heads are rewritten, the proxy's own responses, gRPC facts.
 *
 * Request heads going up:
 *  - always HTTP/1.1, origin form: an absolute-form target becomes its
 *    path and its authority becomes the Host (RFC 9112 3.2.2);
 *  - hop-by-hop fields dropped (Connection and what it lists, Keep-Alive,
 *    Proxy-Connection, TE, Transfer-Encoding, Upgrade), then re-added as
 *    the proxy frames the message: "transfer-encoding: chunked" for a
 *    chunked body, "te: trailers" when the client offered it, and
 *    "upgrade" + "connection: upgrade" for an upgrade;
 *  - inbound: meshd-client-id from the client is dropped (the proxy sets it
 *    from the verified peer identity once mTLS exists);
 *  - a request without Host (HTTP/1.0) gets one: the target address.
 * Response heads going down: HTTP/1.1, hop-by-hop fields dropped, framing
 * fields re-added ("transfer-encoding: chunked", "connection: close",
 * "connection: keep-alive" for an HTTP/1.0 client that asked for it,
 * "upgrade" + "connection: upgrade" for a 101).
 *
 * Contracts: pure, no allocation; output goes to a caller's struct buf and
 * fails (-1, buf unchanged) when it does not fit or a field would be
 * invalid.
 */
#ifndef MESHD_PROXY_REWRITE_H
#define MESHD_PROXY_REWRITE_H

#include <stddef.h>

#include "core/http1.h"

struct buf;

/* rewrite_request flags */
#define RW_INBOUND     0x01 /* strip client-supplied mesh identity */
#define RW_CHUNKED     0x02 /* body goes chunked */
#define RW_UPGRADE     0x04 /* keep the Upgrade offer */
#define RW_TE_TRAILERS 0x08 /* add te: trailers */

/* rewrite_response flags */
#define RW_CLOSE       0x10 /* connection: close */
#define RW_KEEPALIVE10 0x20 /* connection: keep-alive (HTTP/1.0 client) */

/* Names of the meshd headers. */
#define RW_HDR_CLIENT_ID "meshd-client-id"
#define RW_HDR_PROXY_ERROR "meshd-proxy-error"

/*
 * Writes the upstream request head for <req> (a parsed request) to <out>.
 * <host> is the Host to add when <req> has none (may be NULL).
 */
int rewrite_request(struct buf *out, const struct http1_head *req,
                    unsigned flags, const char *host);

/* Writes the downstream response head for <resp> to <out>. */
int rewrite_response(struct buf *out, const struct http1_head *resp,
                     unsigned flags);

/*
 * Writes the proxy's own response: <status> with meshd-proxy-error:
 * <reason>, content-length 0 and, with <close>, connection: close. With
 * <grpc> >= 0 it is a gRPC trailers-only response instead: 200,
 * content-type application/grpc, grpc-status <grpc>, grpc-message
 * <reason> (and still meshd-proxy-error). <reason> must be printable
 * ASCII; other bytes are replaced by '?'.
 */
int rewrite_synth(struct buf *out, int status, const char *reason, int grpc,
                  int close);

/* The reason phrase of <status> ("Bad Gateway"); "" when unknown. */
const char *rewrite_reason(int status);

/* 1 when the head's content-type is application/grpc (with or without
 * a +suffix or parameters). */
int rewrite_is_grpc(const struct http1_head *h);

/* The grpc-status field of <h> as a number 0..99, or -1 when absent or
 * malformed. */
int rewrite_grpc_status(const struct http1_head *h);

/* gRPC status codes the proxy answers with (Linkerd's mapping). */
#define RW_GRPC_UNAVAILABLE 14
#define RW_GRPC_DEADLINE 4

/* The gRPC status for a synthesized HTTP status: 504 -> DEADLINE_EXCEEDED,
 * everything else -> UNAVAILABLE. */
int rewrite_grpc_for_status(int status);

#endif
