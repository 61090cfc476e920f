/*
 * h2: meshd's HTTP/2 connection core (server and client) over nghttp2.
 *
 * The object is I/O-less, in the manner of BearSSL's engines: the owner
 * feeds it the bytes it received (h2_feed), pulls the bytes it must send
 * into its own bounded output buffer (h2_output), and asks what it wants
 * next (h2_want_read, h2_want_write, h2_is_closed). It never touches a
 * socket, a timer or TLS, so the same object serves a plaintext socket, a
 * BearSSL engine or a test that wires two of them together in memory.
 *
 * Every protective limit is enforced here, by meshd, not left to nghttp2's
 * defaults (see struct h2_limits and docs/h2.md): concurrent streams,
 * windows, decoded header bytes and field count (HPACK bomb), CONTINUATION
 * count, floods of empty frames / PING / SETTINGS / WINDOW_UPDATE / PRIORITY
 * / RST_STREAM, premature resets (Rapid Reset), resets the peer provokes
 * (MadeYouReset), the outbound frame queue, per-stream and per-connection
 * send queues, and every byte nghttp2 allocates (a per-connection cap).
 * A limit crossed at stream level resets that stream; a flood or any
 * connection-level violation ends the connection with GOAWAY carrying the
 * right error code, and h2_close_reason() names the cause.
 *
 * The owner's loop, in short:
 *
 *	on readable and h2_want_read(c):  n = read(...);
 *	                                  if (h2_feed(c, p, n) < 0) stop reading
 *	on writable or after any call:    h2_output(c, &out); write out...
 *	when h2_is_closed(c) and out empty: close the socket, h2_free(c)
 *
 * Streams are named by their HTTP/2 stream id (int32_t, > 0). An id that is
 * unknown or already closed is refused with -ENOENT, so a stale id is an
 * error, never a use-after-free. Each stream carries one owner pointer
 * (h2_stream_set_user), handed back in every stream callback.
 *
 * Stream life cycle as the owner sees it:
 *  - server: on_head (request) -> on_data* -> on_trailers? -> on_end; the
 *    owner answers with h2_submit_response, h2_stream_write*,
 *    h2_stream_end. A request the peer sends badly (malformed per RFC 9113
 *    §8.1.1, too many or too large headers) never reaches the owner: h2
 *    answers it itself (RST_STREAM(PROTOCOL_ERROR), or 431 for an oversized
 *    header section) and keeps serving the other streams.
 *  - client: h2_submit_request -> on_head (1xx heads, then the final one) ->
 *    on_data* -> on_trailers? -> on_end.
 *  - both: on_stream_close is called exactly once for every stream the owner
 *    knows of (server: after its on_head; client: after h2_submit_request
 *    returned its id), whatever the reason, including the owner's own
 *    h2_stream_reset and the death of the connection. After it returns the
 *    id is dead. It is the only place where the owner may free the state it
 *    hung on the stream.
 *
 * Flow control is end to end: nghttp2 does not update windows by itself.
 * Bytes handed to on_data stay charged to the stream and connection windows
 * until the owner calls h2_consume() for them (typically once it has
 * forwarded them), so a slow consumer stalls its peer instead of growing
 * memory. Bytes still unconsumed when a stream closes are released by h2.
 *
 * Re-entrancy: from inside any callback the owner MAY call the submit and
 * stream functions, h2_consume, h2_goaway, h2_ping, h2_abort and the
 * getters; it
 * MUST NOT call h2_feed, h2_output (both return -EBUSY then) or h2_free.
 * Callbacks run only inside h2_feed, h2_output and the calls that can end
 * the connection (h2_goaway, h2_abort, h2_consume when it fails); never
 * from h2_free.
 *
 * Return conventions: 0 on success, -errno on failure; byte functions
 * return the byte count (>= 0) or -errno. Nothing here prints or logs.
 * Not thread-safe: one connection belongs to one loop.
 */
#ifndef MESHD_CORE_H2_H
#define MESHD_CORE_H2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/str.h"

struct h2_conn;

enum h2_role {
	H2_SERVER = 0,  /* accepts streams (inbound side, controller) */
	H2_CLIENT = 1,  /* opens streams (outbound pool connections) */
};

/* HTTP/2 error codes (RFC 9113 §7). */
#define H2_NO_ERROR            0x0u
#define H2_PROTOCOL_ERROR      0x1u
#define H2_INTERNAL_ERROR      0x2u
#define H2_FLOW_CONTROL_ERROR  0x3u
#define H2_SETTINGS_TIMEOUT    0x4u
#define H2_STREAM_CLOSED       0x5u
#define H2_FRAME_SIZE_ERROR    0x6u
#define H2_REFUSED_STREAM      0x7u
#define H2_CANCEL              0x8u
#define H2_COMPRESSION_ERROR   0x9u
#define H2_CONNECT_ERROR       0xau
#define H2_ENHANCE_YOUR_CALM   0xbu
#define H2_INADEQUATE_SECURITY 0xcu
#define H2_HTTP_1_1_REQUIRED   0xdu

/* Returned by on_head/on_data/on_trailers to have h2 reset the stream with
 * RST_STREAM(INTERNAL_ERROR) (or with the code of an h2_stream_reset the
 * callback already made). */
#define H2_CB_RESET (-1)

/* One header field. Names are lowercase (h2 refuses requests with uppercase
 * names). Borrowed: valid only for the duration of the callback that passes
 * it; copy what must outlive it. */
struct h2_header {
	struct str name;
	struct str value;
};

/*
 * A complete, validated header section that opens a message.
 * Request (server role): <method> is always set. Ordinary requests have
 * <scheme> and <path> (origin or asterisk form) and usually <authority>;
 * CONNECT has <authority> only (<scheme>, <path> empty). <protocol> is set
 * only for extended CONNECT, which meshd does not enable, so it is empty.
 * Response (client role): <status> is 100..599; 1xx heads may precede the
 * final one. <fields> are the regular (non-pseudo) fields in arrival order.
 * All slices are borrowed for the duration of the callback.
 */
struct h2_head {
	struct str method;
	struct str scheme;
	struct str authority;
	struct str path;
	struct str protocol;
	int status;                     /* 0 for requests */
	const struct h2_header *fields;
	size_t nfields;
};

/* What h2_submit_request sends. <authority> may be empty (then omitted);
 * for CONNECT, <scheme> and <path> MUST be empty. <fields> MUST NOT contain
 * pseudo-headers or connection-specific fields (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade); names MUST be lowercase. */
struct h2_request {
	struct str method;
	struct str scheme;
	struct str authority;
	struct str path;
	const struct h2_header *fields;
	size_t nfields;
};

/*
 * Owner callbacks. <ctx> is the pointer given to h2_new. <id> is the stream
 * id and <su> the stream's owner pointer (NULL until set). Every member may
 * be NULL (then the event is ignored; on_data bytes are then consumed by h2
 * at once).
 */
struct h2_callbacks {
	/* A header section that opens a request (server) or a response
	 * (client, possibly 1xx) is complete and valid. <end_stream>: the peer
	 * sends no body. Return 0, or H2_CB_RESET. */
	int (*on_head)(void *ctx, int32_t id, void *su,
	               const struct h2_head *head, int end_stream);
	/* <n> body bytes (n > 0), borrowed from the buffer given to h2_feed.
	 * They count against the windows until h2_consume(). Return 0, or
	 * H2_CB_RESET. */
	int (*on_data)(void *ctx, int32_t id, void *su, const char *p,
	               size_t n);
	/* A trailer section (always followed by on_end). Return 0, or
	 * H2_CB_RESET. */
	int (*on_trailers)(void *ctx, int32_t id, void *su,
	                   const struct h2_header *fields, size_t n);
	/* The peer ended its side of the stream (END_STREAM received), after
	 * the on_head/on_data/on_trailers of that frame. */
	void (*on_end)(void *ctx, int32_t id, void *su);
	/* The stream is gone. <reset> is 1 when it ended by RST_STREAM (sent or
	 * received) or by the connection's end rather than by both sides
	 * finishing; <code> is the RST_STREAM / GOAWAY error code (REFUSED_STREAM
	 * for a stream a GOAWAY left unprocessed: safe to retry elsewhere).
	 * reset = 1 with NO_ERROR after on_end means the peer, having answered
	 * in full, stopped our body (RFC 9113 §8.1): the answer is complete. */
	void (*on_stream_close)(void *ctx, int32_t id, void *su, int reset,
	                        uint32_t code);
	/* Room was freed in the stream's send queue after an h2_stream_write
	 * accepted less than offered (or accepted nothing). */
	void (*on_writable)(void *ctx, int32_t id, void *su);
	/* The peer sent GOAWAY. Streams above <last_id> that we opened will
	 * close with REFUSED_STREAM; no new stream can be submitted. */
	void (*on_goaway)(void *ctx, int32_t last_id, uint32_t code);
	/* Called once, when the connection can carry no more streams: a fatal
	 * error or limit violation (GOAWAY may still be being flushed), or the
	 * orderly end (both sides done). <reason> is h2_close_reason(). Every
	 * stream the owner knew has had on_stream_close before this. */
	void (*on_close)(void *ctx, const char *reason);
	/* Monotonic milliseconds, used by the flood windows and the premature
	 * reset rule. NULL: CLOCK_MONOTONIC_COARSE. Tests pass a fake clock. */
	uint64_t (*now_ms)(void *ctx);
};

/*
 * Limits. Fill with h2_limits_default() and change what you need; each
 * default is explained in docs/h2.md. A counter "per window" is a sliding
 * window of <window_ms>; a per-window limit of 0 disables that counter (not
 * recommended). Other fields out of range are clamped by h2_new.
 */
struct h2_limits {
	/* Advertised in our SETTINGS */
	uint32_t max_concurrent_streams;   /* 100 */
	uint32_t initial_window_size;      /* per stream: 65535 */
	uint32_t conn_window_size;         /* connection: 1 MiB */
	uint32_t max_frame_size;           /* 16384 */
	uint32_t max_header_list_size;     /* decoded bytes per block: 16 KiB */
	uint32_t header_table_size;        /* HPACK decoder table: 4096 */
	/* Local only */
	uint32_t max_header_fields;        /* fields per block: 100 */
	uint32_t max_deflate_table_size;   /* HPACK encoder table: 4096 */
	uint32_t max_continuations;        /* per header block: 8 */
	uint32_t max_settings_entries;     /* per SETTINGS frame: 32 */
	uint32_t stream_send_buffer;       /* per-stream send queue: 64 KiB */
	uint32_t conn_send_buffer;         /* all send queues: 2 MiB */
	size_t mem_max;                    /* nghttp2 + h2 heap: 4 MiB */
	uint32_t max_outbound_frames;      /* queued non-DATA frames: 10000 */
	uint32_t max_outbound_ack;         /* queued SETTINGS/PING ACKs: 1000 */
	uint32_t outbound_hwm;             /* stop reading above: 64 frames */
	/* Rapid Reset: nghttp2's token bucket for received RST_STREAM... */
	uint32_t reset_burst;              /* 1000 */
	uint32_t reset_rate;               /* 33 per second */
	/* ...and Envoy's ratio rule: GOAWAY when more than half of at least
	 * <premature_min_streams> peer-opened streams were reset by the peer
	 * before a response and within <premature_ms> of opening. */
	uint32_t premature_min_streams;    /* 500 */
	uint32_t premature_ms;             /* 1000 */
	/* Flood counters per window */
	uint32_t window_ms;                /* 10000 */
	uint32_t max_empty_frames;         /* consecutive: 1 */
	uint32_t max_empty_window;         /* per window: 100 */
	uint32_t max_ping;                 /* unearned PINGs: 100 */
	uint32_t max_settings;             /* SETTINGS frames: 100 */
	uint32_t max_window_update;        /* unearned WINDOW_UPDATEs: 1000 */
	uint32_t max_priority;             /* unearned PRIORITY frames: 100 */
	uint32_t max_rst_recv;             /* RST_STREAM received: 1000 */
	uint32_t max_rst_sent;             /* RSTs the peer provoked: 100 */
	uint32_t max_header_overflows;     /* oversized header blocks: 10 */
	uint32_t max_glitches;             /* all anomalies together: 1000 */
};

/*
 * Counters and state for metrics, logs and the owner's timers. A snapshot,
 * filled by h2_get_stats.
 */
struct h2_stats {
	uint32_t open_streams;      /* streams h2 tracks now */
	uint64_t streams_total;     /* streams opened over the connection */
	uint64_t last_activity_ms;  /* last stream opened or closed (now_ms) */
	size_t mem_used;            /* bytes charged against mem_max now */
	size_t mem_peak;            /* highest mem_used seen */
	size_t sendq_used;          /* send-queue bytes reserved now */
	size_t sendq_peak;          /* highest sendq_used seen */
	uint64_t glitches;          /* protocol anomalies seen (HAProxy term) */
	uint64_t rst_sent;          /* RST_STREAM we sent */
	uint64_t rst_recv;          /* RST_STREAM we received */
	uint64_t premature_resets;  /* peer resets before any response */
	uint64_t header_overflows;  /* header blocks over a limit */
	int settings_received;      /* the peer's first SETTINGS arrived */
	int settings_acked;         /* the peer acknowledged our SETTINGS */
	int goaway_sent;            /* a GOAWAY went (or is going) out */
	int goaway_received;
	uint32_t close_code;        /* GOAWAY code we sent, if any */
};

/* Fills <lim> with meshd's safe defaults (documented in docs/h2.md). */
void h2_limits_default(struct h2_limits *lim);

/*
 * Creates a connection. <lim> NULL means the defaults; it is copied and
 * sanitised (values out of the protocol's range are clamped). <cb> is
 * copied; <ctx> is handed to every callback. The connection queues its
 * SETTINGS (and, for a client, the preface) at once: call h2_output.
 * Returns NULL on allocation failure or invalid arguments, with a message
 * in <err> (which may be NULL). Free with h2_free.
 */
struct h2_conn *h2_new(enum h2_role role, const struct h2_limits *lim,
                       const struct h2_callbacks *cb, void *ctx,
                       char *err, size_t errlen);

/* Releases everything. No callback runs; streams still open are simply
 * forgotten (the owner releases its own per-stream state). NULL is a
 * no-op. MUST NOT be called from a callback. */
void h2_free(struct h2_conn *c);

/*
 * Processes <n> received bytes. Returns <n> (everything is always consumed
 * or deliberately ignored), or a negative errno when the connection failed
 * (now or before): -EPROTO for a protocol error or limit violation,
 * -ENOMEM when the memory cap was reached, -EPIPE when it was already
 * closed, -EBUSY when called from a callback (a contract breach, refused
 * rather than corrupting state). On failure the owner stops reading,
 * flushes h2_output until h2_want_write() is 0, and closes. h2_feed
 * processes its input even when h2_want_read() is 0 (the hard caps then
 * apply); honouring h2_want_read is what keeps a well-behaved connection
 * under them.
 */
ssize_t h2_feed(struct h2_conn *c, const char *p, size_t n);

/*
 * Appends bytes to send to <out>, never more than buf_room(out). A frame
 * that does not fit is kept and continued on the next call, so <out> may
 * be drained and h2_output called again in any pattern. For throughput
 * <out> should hold at least 16 KiB + 9 (a full DATA frame); smaller
 * buffers work but send smaller DATA frames. Returns the bytes appended
 * (0: nothing to send or no room), or -EBUSY from a callback. May run
 * on_writable, on_stream_close and on_close.
 */
ssize_t h2_output(struct h2_conn *c, struct buf *out);

/* 1 when the owner should read from the peer: the session expects input
 * and output is not backed up (no frame waiting for room in <out> and
 * fewer than outbound_hwm control frames queued). */
int h2_want_read(const struct h2_conn *c);
/* 1 when h2_output has something to append. */
int h2_want_write(const struct h2_conn *c);
/* 1 when the connection is finished and everything it had to send has been
 * handed to h2_output: the owner closes the transport once its own buffer
 * is flushed. */
int h2_is_closed(const struct h2_conn *c);

/*
 * Client: opens a stream with <req>. With <end_stream> 0 the body follows
 * through h2_stream_write / h2_stream_end. <user> becomes the stream's
 * owner pointer. Returns the new stream id (> 0), or -EAGAIN when the
 * peer's MAX_CONCURRENT_STREAMS (or ours) is reached, -EPIPE after a GOAWAY
 * either way or on a failed connection, -EINVAL on a bad request or role,
 * -ENOMEM.
 */
int32_t h2_submit_request(struct h2_conn *c, const struct h2_request *req,
                          int end_stream, void *user);

/* Client: how many more requests h2_submit_request would accept now. */
uint32_t h2_can_submit(const struct h2_conn *c);

/*
 * Server: answers stream <id> with <status> (100..599) and <fields> (same
 * rules as struct h2_request's). A 1xx status sends an informational head
 * and leaves the stream ready for the final one. With <end_stream> 0 the
 * body follows through h2_stream_write / h2_stream_end. Returns 0, -ENOENT
 * (no such stream), -EALREADY (a final response was already submitted),
 * -EINVAL, -EPIPE (connection failed), -ENOMEM.
 */
int h2_submit_response(struct h2_conn *c, int32_t id, int status,
                       const struct h2_header *fields, size_t nfields,
                       int end_stream);

/*
 * Queues body bytes on stream <id>: copies up to <n> bytes into the
 * stream's bounded send queue and returns how many were accepted (0 when
 * the queue, or the connection's send budget, is full: on_writable follows
 * when room frees up). -ENOENT (no such stream), -EINVAL (no head submitted
 * yet, or submitted with end_stream), -EPIPE (already ended or failed).
 */
ssize_t h2_stream_write(struct h2_conn *c, int32_t id, const void *p,
                        size_t n);

/* Bytes that h2_stream_write would accept on <id> now (0 if none or no
 * such stream). */
size_t h2_stream_room(const struct h2_conn *c, int32_t id);
/* Bytes queued on <id> and not yet handed to h2_output. */
size_t h2_stream_queued(const struct h2_conn *c, int32_t id);

/*
 * Ends our side of stream <id> after the queued body, with trailer
 * <fields> (copied; NULL/0 for none). Returns 0, -ENOENT, -EINVAL (no head
 * submitted yet, or submitted with end_stream), -EPIPE (already ended),
 * -ENOMEM.
 */
int h2_stream_end(struct h2_conn *c, int32_t id,
                  const struct h2_header *fields, size_t nfields);

/* Resets stream <id> with <code> (e.g. H2_CANCEL). Queued body bytes are
 * dropped. Further callbacks for the stream are suppressed except the final
 * on_stream_close. Returns 0 or -ENOENT. */
int h2_stream_reset(struct h2_conn *c, int32_t id, uint32_t code);

/* Releases <n> received bytes of stream <id> back to the windows (WINDOW_
 * UPDATE is sent when worth it). Consuming more than was delivered is
 * clamped; an id already closed is accepted and ignored. Returns 0, or
 * -EPIPE on a failed connection. */
int h2_consume(struct h2_conn *c, int32_t id, size_t n);

/* The stream's owner pointer. Set returns 0 or -ENOENT; get returns NULL
 * for an unknown id. */
int h2_stream_set_user(struct h2_conn *c, int32_t id, void *user);
void *h2_stream_get_user(const struct h2_conn *c, int32_t id);

/*
 * Starts shutting the connection down with GOAWAY(NO_ERROR).
 * graceful = 1, server: GOAWAY with last-stream-id 2^31-1 and a PING; when
 * the PING's ACK returns (one round trip, so requests in flight have
 * arrived), the final GOAWAY with the real last id. Streams up to it run to
 * completion; later ones are refused. If the peer never answers the PING,
 * the owner's shutdown timer calls h2_goaway(c, 0).
 * graceful = 1, client: GOAWAY(0); open streams run to completion, no new
 * request is accepted.
 * graceful = 0: GOAWAY with the last processed id; the connection ends as
 * soon as it is sent, open streams are closed (on_stream_close, reset=1,
 * code CANCEL).
 * Returns 0, or -EPIPE if the connection already failed or closed.
 */
int h2_goaway(struct h2_conn *c, int graceful);

/*
 * Keepalive: queues a PING (not an ACK) with h2's keepalive opaque, for
 * the owner's keepalive timer (gRPC / Linkerd style: a PING every
 * interval, the connection ended when its ACK is late). The frame goes out
 * through h2_output as usual. At most one is outstanding: its ACK (same
 * opaque) clears it; ACKs of other opaques (graceful shutdown's, a peer's
 * stray ones) do not. Our PINGs and their ACKs never count against the
 * peer-PING flood limit. Callable inside or outside callbacks. Returns 0,
 * -EALREADY when one is still unanswered (nothing is sent), -EPIPE on a
 * failed or closed connection, -ENOMEM.
 */
int h2_ping(struct h2_conn *c);

/* 1 when a keepalive PING from h2_ping is unanswered, with the time it was
 * submitted (the connection's clock: callbacks.now_ms, or
 * CLOCK_MONOTONIC_COARSE milliseconds) in *<sent_ms> (may be NULL); 0
 * otherwise. The owner decides what "too late" means. */
int h2_ping_outstanding(const struct h2_conn *c, uint64_t *sent_ms);

/* Ends the connection at once with GOAWAY(<code>); <reason> MUST be a
 * static string (kept as h2_close_reason). Open streams are closed (reset,
 * <code>), then on_close runs. No-op on a connection already failed. This
 * is also what the owner calls when the transport died (EOF, read or write
 * error, TLS alert, timeout): every stream it knows is reported closed. */
void h2_abort(struct h2_conn *c, uint32_t code, const char *reason);

/* Why the connection ended, a stable snake_case token for logs and metric
 * labels (e.g. "rapid_reset", "ping_flood", "memory", "peer_goaway",
 * "done"; full list in docs/h2.md), or NULL while it is alive. */
const char *h2_close_reason(const struct h2_conn *c);

/* Number of protocol anomalies seen on the connection. */
uint64_t h2_glitches(const struct h2_conn *c);

void h2_get_stats(const struct h2_conn *c, struct h2_stats *st);

/* The HTTP/2 name of <code> ("PROTOCOL_ERROR"...), "UNKNOWN" otherwise. */
const char *h2_code_str(uint32_t code);

#endif
