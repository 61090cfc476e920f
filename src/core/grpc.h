/*
 * grpc: the gRPC-over-HTTP/2 protocol layer, independent of the transport.
 *
 * What a gRPC server or client needs on top of an HTTP/2 stream
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 *  - message framing: each message is a 5-byte prefix (compressed flag,
 *    32-bit big-endian length) and the bytes; grpc_frame_* write it and
 *    struct grpc_deframer reads it from a byte stream cut anywhere;
 *  - status codes (enum grpc_status) with their canonical names, and the
 *    mapping of HTTP statuses to gRPC codes;
 *  - grpc-timeout parsing and formatting (units n u m S M H);
 *  - grpc-message percent-encoding and decoding;
 *  - the header and trailer sets: request checks for a server, request
 *    headers for a client, response headers, trailers and Trailers-Only
 *    responses, and reading the status a server sent.
 * Header fields use struct h2_header (core/h2.h: name/value slices) so they
 * go straight to h2_submit_* and come straight from its callbacks. Up to
 * grpc_status_from_h2 nothing calls into h2 (that part serves any
 * transport); the server and client at the end of this file drive a
 * struct h2_conn.
 *
 * Compression: meshd speaks identity only. A message with the compressed
 * flag set is refused with UNIMPLEMENTED, a request naming another
 * grpc-encoding as well, and responses advertise
 * grpc-accept-encoding: identity.
 *
 * Nothing here allocates except the deframer's message buffer, which has a
 * hard limit (the maximum message size). Errors come back as a gRPC status
 * plus a static or caller-buffer text; nothing prints.
 */
#ifndef MESHD_CORE_GRPC_H
#define MESHD_CORE_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/h2.h"
#include "core/pb.h"
#include "core/str.h"

/* Status codes (the numbers are the protocol's). */
enum grpc_status {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};
#define GRPC_STATUS_MAX 16

/* Defaults. */
#define GRPC_PREFIX_LEN 5
#define GRPC_MAX_MSG_DEFAULT (4u * 1024 * 1024)  /* as grpc's receive cap */
#define GRPC_TIMEOUT_MAX_DIGITS 8
/* Largest grpc-message we send (bytes after percent-encoding). */
#define GRPC_MESSAGE_MAX 512

/* "OK", "CANCELLED", ... ; "UNKNOWN" for codes out of range. */
const char *grpc_status_str(int code);

/* The gRPC code a client reports for a non-200 HTTP <status> without
 * grpc-status (PROTOCOL-HTTP2.md, "HTTP to gRPC Status Code Mapping"). */
enum grpc_status grpc_status_from_http(int status);

/*
 * grpc-status value: decimal digits only. Returns 0 and the code (codes
 * above GRPC_STATUS_MAX become GRPC_UNKNOWN, as the spec asks), or -1 when
 * <v> is not a number.
 */
int grpc_status_parse(struct str v, enum grpc_status *code);

/* --- framing --- */

/* Writes the 5-byte prefix of an uncompressed message of <len> bytes. */
void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len);

/* Appends prefix and <n> bytes to <out>. Returns 0, or -1 when <n> does not
 * fit 32 bits or <out>'s limit (buffer unchanged). */
int grpc_frame_write(struct buf *out, const void *msg, size_t n);

/* Appends prefix and the protobuf encoding of <msg> (type <d>) to <out>,
 * refusing messages above <max_msg> bytes. Returns the message bytes
 * (without prefix), or a PB_E_* code (PB_E_NOSPACE for either limit) with
 * <out> unchanged. */
ssize_t grpc_frame_pb(struct buf *out, const struct pb_msg_desc *d,
                      const void *msg, size_t max_msg);

/*
 * A streaming deframer. Feed it the DATA bytes of one direction of a
 * stream in any cuts; it yields one complete message at a time.
 *
 *	grpc_deframer_init(&df, max_msg);
 *	on data: while (n > 0) {
 *	                 c = grpc_deframer_push(&df, p, n);
 *	                 if (c < 0) fail with grpc_deframer_status(&df, ...)
 *	                 p += c; n -= c;
 *	                 if (grpc_deframer_msg(&df, &m)) { use m; grpc_deframer_next(&df); }
 *	           }
 *	on end of stream: grpc_deframer_finish(&df) (truncated message?)
 *	grpc_deframer_free(&df);
 *
 * push stops right after a message completes, so at most one message is
 * pending; while one is pending push consumes nothing (returns 0). Errors
 * are sticky: every later push returns -1. The message buffer is made at
 * the size of each message when its prefix arrives and released by
 * grpc_deframer_next: between messages a deframer holds no memory.
 */
struct grpc_deframer {
	uint8_t hdr[GRPC_PREFIX_LEN];  /* private: prefix bytes seen */
	size_t hdr_got;                /* private */
	uint32_t need;                 /* private: body bytes still due */
	size_t max_msg;                /* ro */
	int ready;                     /* ro: a message is pending */
	enum grpc_status err;          /* ro: GRPC_OK or the sticky error */
	const char *err_text;          /* ro: static text of the error */
	uint64_t messages;             /* ro: messages delivered */
	struct buf body;               /* private: limit max_msg */
};

/* <max_msg> is the largest message accepted (0: GRPC_MAX_MSG_DEFAULT). */
void grpc_deframer_init(struct grpc_deframer *df, size_t max_msg);
void grpc_deframer_free(struct grpc_deframer *df);

/* Consumes up to <n> bytes. Returns the bytes consumed (0 while a message
 * is pending), or -1 on a framing error: compressed flag (UNIMPLEMENTED),
 * flag other than 0/1 (INTERNAL), message above max_msg
 * (RESOURCE_EXHAUSTED), or no memory (RESOURCE_EXHAUSTED). */
ssize_t grpc_deframer_push(struct grpc_deframer *df, const void *p, size_t n);

/* 1 with the pending message in <*msg> (valid until grpc_deframer_next),
 * 0 when none is pending. */
int grpc_deframer_msg(const struct grpc_deframer *df, struct str *msg);

/* Drops the pending message. */
void grpc_deframer_next(struct grpc_deframer *df);

/* At the end of the stream: 0 when it ended on a message boundary with
 * nothing pending unread, -1 otherwise (a truncated message is INTERNAL;
 * the error is recorded as for push). */
int grpc_deframer_finish(struct grpc_deframer *df);

/* --- grpc-timeout --- */

/* Parses a grpc-timeout value ("1S", "250m", at most 8 digits and one
 * unit of H M S m u n) into nanoseconds; values past 2^64-1 ns (about 584
 * years) are capped there. Returns 0, or -1 when malformed (a malformed
 * timeout is treated by the caller as a bad request). */
int grpc_timeout_parse(struct str v, uint64_t *ns);

/* Formats <ns> as a grpc-timeout value into <out> (NUL-terminated): the
 * finest unit whose value fits 8 digits, rounded up so that the deadline is
 * never shortened; 0 gives "0n". Returns the length, or -1 when <outlen> is
 * below 10. */
int grpc_timeout_format(uint64_t ns, char *out, size_t outlen);

/* --- grpc-message --- */

/* Appends <msg> percent-encoded (bytes outside 0x20-0x7e and '%' become
 * %XX) to <out>, whole or not at all: returns 0 or -1. */
int grpc_message_encode(struct buf *out, struct str msg);

/* Appends the percent-decoding of <v> to <out>. Malformed escapes are
 * kept verbatim (the spec forbids failing on them). Returns 0, or -1 when
 * <out>'s limit is reached (buffer unchanged). */
int grpc_message_decode(struct buf *out, struct str v);

/* --- headers and trailers --- */

#define GRPC_CONTENT_TYPE "application/grpc"

/* 1 when <v> is a gRPC content-type meshd serves: "application/grpc" or
 * "application/grpc+proto", optionally with ";parameters" (type and
 * subtype compared case-insensitively). "+json" and others: 0. */
int grpc_content_type_ok(struct str v);

/* What a server learns from a request head. Slices borrow the head. */
struct grpc_request {
	struct str service;        /* "meshd.destination.v1.Destination" */
	struct str method;         /* "Get" */
	uint64_t timeout_ns;       /* 0: no grpc-timeout */
	int has_timeout;
	struct str user_agent;
};

/*
 * Checks a request head for a gRPC server: POST, path "/service/method",
 * a gRPC content-type, te: trailers, grpc-encoding identity or absent,
 * grpc-timeout well formed. Returns 0 and fills <req>; or the HTTP status
 * to answer with when the request is not gRPC at all (405 method, 415
 * content-type), or -(gRPC status) to answer with as Trailers-Only
 * (UNIMPLEMENTED for a compressed encoding, INTERNAL for a bad timeout,
 * te or path), with a static reason in <*why>.
 */
int grpc_request_check(const struct h2_head *head, struct grpc_request *req,
                       const char **why);

/*
 * Header fields a client sends with h2_submit_request (method POST, scheme,
 * authority and path "/service/method" go in struct h2_request):
 * content-type, te, user-agent, grpc-accept-encoding and, when
 * <timeout_ns> > 0, grpc-timeout. <set> owns the storage; its fields stay
 * valid as long as it does.
 */
struct grpc_client_headers {
	char timeout[16];          /* private */
	struct h2_header f[5];     /* ro */
	size_t n;                  /* ro */
};
void grpc_client_headers_init(struct grpc_client_headers *set,
                              uint64_t timeout_ns);

/* Response header fields (with :status 200): content-type and
 * grpc-accept-encoding. Static storage. Sets <*n>. */
const struct h2_header *grpc_response_headers(size_t *n);

/*
 * Trailers ending a response: grpc-status and, when <message> is not
 * empty, grpc-message (percent-encoded, cut to GRPC_MESSAGE_MAX bytes at
 * an escape boundary). With <trailers_only> 1 the set starts with the
 * response header fields, for a Trailers-Only response (a HEADERS frame
 * with :status 200 and END_STREAM, when nothing else was sent).
 */
struct grpc_trailers {
	char status[12];                  /* private */
	char message[GRPC_MESSAGE_MAX];   /* private */
	struct h2_header f[5];            /* ro */
	size_t n;                         /* ro */
};
void grpc_trailers_init(struct grpc_trailers *t, enum grpc_status code,
                        struct str message, int trailers_only);

/*
 * The status a client reports from the fields that end a response: the
 * trailers, or the head of a Trailers-Only response. Sets <*code> (missing
 * or malformed grpc-status: UNKNOWN, with a reason appended) and appends
 * the decoded grpc-message to <msg> (may be NULL). Returns 0, or -1 when
 * <msg> overflowed (the code is still set).
 */
int grpc_status_from_fields(const struct h2_header *f, size_t n,
                            enum grpc_status *code, struct buf *msg);

/*
 * Checks a response head for a client. Returns GRPC_OK when the response
 * is a gRPC response (status 200, gRPC content-type) whose messages follow;
 * otherwise the code to report (from the HTTP status, or UNKNOWN for a
 * missing/foreign content-type), with a static reason in <*why>. A
 * Trailers-Only head passes (the caller reads its status with
 * grpc_status_from_fields when the stream ends there).
 */
enum grpc_status grpc_response_check(const struct h2_head *head,
                                     const char **why);

/* The gRPC status a client reports for a stream reset with HTTP/2 error
 * <code> (PROTOCOL-HTTP2.md, "Errors"). */
enum grpc_status grpc_status_from_h2(uint32_t code);

/* ------------------------------------------------------------------------
 * Server and client over core/h2.
 *
 * Both wrap one struct h2_conn (made here, with these callbacks) and leave
 * the I/O to the owner: feed received bytes with h2_feed(grpc_*_h2(x)) and
 * send what h2_output gives, exactly as h2.h describes. Only unary and
 * server-streaming calls exist (one request message per call), which is
 * what api/destination.proto uses. All the entry points below MAY be called from
 * inside the callbacks they trigger, as h2 allows.
 * ------------------------------------------------------------------------ */

struct grpc_server;
struct grpc_call;      /* one call on a server connection */

/*
 * A method the server serves. <path> is "/package.Service/Method". The
 * request message is decoded with <req> (allocation-free, into memory the
 * call owns) and handed to on_request once; it and its slices stay valid
 * until on_done. The handler answers with grpc_call_send (any number of
 * times) and grpc_call_finish (once), now or later.
 */
struct grpc_method {
	const char *path;
	const struct pb_msg_desc *req;
	void (*on_request)(void *ctx, struct grpc_call *call, const void *req);
	/* Room again after grpc_call_send returned -EAGAIN. May be NULL. */
	void (*on_writable)(void *ctx, struct grpc_call *call);
	/* The call is over: <st> is the status the handler finished with,
	 * or CANCELLED when the client reset the stream or the connection
	 * died first. Called once for every call that reached on_request;
	 * <call> is freed when it returns. May be NULL. */
	void (*on_done)(void *ctx, struct grpc_call *call, enum grpc_status st);
};

/*
 * A server connection serving <n> <methods> (the array MUST outlive it).
 * <lim>: h2 limits (NULL: defaults). <max_msg>: largest message received
 * or sent (0: GRPC_MAX_MSG_DEFAULT). <arena_size>: per-call arena for the
 * decoded request (0: 16 KiB). <ctx> goes to every method callback.
 * Requests that are not gRPC get 405/415, malformed ones and unknown
 * methods a Trailers-Only status, without reaching a handler. Returns NULL
 * with a message in <err> on failure. Free with grpc_server_free (no
 * callback runs then).
 */
struct grpc_server *grpc_server_new(const struct grpc_method *methods,
                                    size_t n, const struct h2_limits *lim,
                                    size_t max_msg, size_t arena_size,
                                    void *ctx, char *err, size_t errlen);
struct h2_conn *grpc_server_h2(const struct grpc_server *s);
void grpc_server_free(struct grpc_server *s);

/*
 * Sends one response message (the response head goes first, once).
 * Returns 0 when the message was taken whole; -EAGAIN when an earlier one
 * is still queued (wait for on_writable; nothing was taken); -EMSGSIZE
 * above max_msg; -EINVAL for a message that does not encode; -EPIPE when
 * the call is finished or its stream gone; -ENOMEM.
 */
int grpc_call_send(struct grpc_call *call, const struct pb_msg_desc *d,
                   const void *msg);

/*
 * Ends the call with status <st> and <message> (may be NULL; sent as
 * grpc-message). With nothing sent yet this is a Trailers-Only response.
 * Queued messages go out first. Returns 0, -EALREADY when already
 * finished, or an h2 error. The call stays valid until on_done.
 */
int grpc_call_finish(struct grpc_call *call, enum grpc_status st,
                     const char *message);

/* The grpc-timeout the client sent, in ns (0: none). Enforcing it is the
 * owner's job (a timer that finishes the call with DEADLINE_EXCEEDED). */
uint64_t grpc_call_timeout_ns(const struct grpc_call *call);
const struct grpc_method *grpc_call_method(const struct grpc_call *call);
void grpc_call_set_user(struct grpc_call *call, void *user);
void *grpc_call_user(const struct grpc_call *call);

struct grpc_client;
struct grpc_ccall;     /* one call on a client connection */

struct grpc_ccall_cb {
	/* One response message decoded with the call's response type;
	 * <msg> and its slices are valid during the callback only. */
	void (*on_message)(void *ctx, struct grpc_ccall *call, const void *msg);
	/* The call is over, exactly once: the status the server sent, or
	 * the one the client derived (HTTP status, reset code, decoding
	 * error, grpc_ccall_cancel). <message> is the decoded grpc-message,
	 * NUL-terminated, possibly "". <call> is freed when it returns. */
	void (*on_status)(void *ctx, struct grpc_ccall *call,
	                  enum grpc_status st, const char *message);
};

/* A client connection; parameters as for grpc_server_new, except that
 * <arena_size> sizes the client's one decode block: response messages are
 * decoded into it one at a time (made on the first message, kept with the
 * client), so a call at rest holds no arena, no message buffer and, once
 * its request is sent, no request buffer. */
struct grpc_client *grpc_client_new(const struct h2_limits *lim,
                                    size_t max_msg, size_t arena_size,
                                    char *err, size_t errlen);
struct h2_conn *grpc_client_h2(const struct grpc_client *c);
void grpc_client_free(struct grpc_client *c);

/*
 * Starts a call of <path> ("/package.Service/Method") at <authority> with
 * request <req> (type <req_d>, encoded at once; the caller keeps nothing
 * alive) and responses of type <resp_d>. <timeout_ns> > 0 sends
 * grpc-timeout. <cb> (copied) and <ctx> receive the results. Returns the
 * call, or NULL with <*rc> set: -EAGAIN (stream limit), -EPIPE (connection
 * gone or going away), -EMSGSIZE, -EINVAL, -ENOMEM.
 */
struct grpc_ccall *grpc_client_call(struct grpc_client *c,
                                    struct str authority, const char *path,
                                    const struct pb_msg_desc *req_d,
                                    const void *req,
                                    const struct pb_msg_desc *resp_d,
                                    uint64_t timeout_ns,
                                    const struct grpc_ccall_cb *cb,
                                    void *ctx, int *rc);

/* Cancels the call: resets its stream; on_status follows with <st> (e.g.
 * CANCELLED, or DEADLINE_EXCEEDED from the owner's timer). Returns 0 or
 * -EALREADY when the call already has its final status. */
int grpc_ccall_cancel(struct grpc_ccall *call, enum grpc_status st);

#endif
