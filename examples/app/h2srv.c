/*
 * h2srv: h2c server of abc-app, gRPC abc.Echo and plain HTTP/2.
 * See h2srv.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * nghttp2 does the protocol; this file decides answers. A stream's answer
 * is always one of two data sources (h2srv_read_data):
 *   H2K_BUF    bytes queued in <rbody> until <rfinal>; the source returns
 *              NGHTTP2_ERR_DEFERRED when it runs dry early, and whoever
 *              queues more calls h2srv_resume. Fixed answers, /echo, Say
 *              and Count use it.
 *   H2K_BYTES  /bytes/N, generated as nghttp2 asks.
 * gRPC answers end with trailers submitted from the data source when it
 * reaches the end (nghttp2 allows that there).
 *
 * Flow control is manual (no_auto_window_update): DATA is acknowledged
 * with nghttp2_session_consume as soon as it is used, except /echo's,
 * which is acknowledged only when sent back. So an uploader can never make
 * a stream hold more than its window (H2SRV_WINDOW).
 *
 * Only h2srv_read_cb, h2srv_write_cb and the timers drive the session
 * (h2srv_flush); nghttp2 callbacks only submit and record.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "h2io.h"
#include "h2srv.h"
#include "origin.h"
#include "pb.h"

#define H2SRV_MAX_CONNS 10000
#define H2SRV_MAX_STREAMS 128
#define H2SRV_WINDOW (256 * 1024)
#define H2SRV_CONN_WINDOW (1024 * 1024)
/* Largest gRPC request message accepted. */
#define H2SRV_GRPC_MAX (1024 * 1024)
#define H2SRV_ECHO_MAX (H2SRV_WINDOW + 16 * 1024)
#define H2SRV_COUNT_MAX 10000u
#define H2SRV_INTERVAL_MAX 10000u
#define H2SRV_IDLE_MS 120000
#define H2SRV_ACCEPT_BUDGET 64

#define H2SRV_NV(n, v, vlen) { (uint8_t *)(n), (uint8_t *)(v), \
	sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NO_COPY_NAME }

enum h2srv_kind {
	H2K_BUF,          /* <rbody> until <rfinal> */
	H2K_BYTES,        /* generated /bytes output */
};

enum h2srv_rpc {
	H2R_NONE,
	H2R_SAY,
	H2R_COUNT,
};

/* What the stream's timer does when it fires. */
enum h2srv_wait {
	H2W_ORIGIN,       /* answer c->resp (delay, --latency) */
	H2W_GRPC,         /* answer the RPC (--latency) */
	H2W_COUNT,        /* next Count reply */
};

struct h2srv_conn;

struct h2srv_stream {
	struct h2srv_conn *c;
	struct h2srv_stream *prev, *next; /* private: c->streams */
	int32_t id;
	struct loop_timer tmr;
	enum h2srv_wait wait;
	char method[16];
	char path[256];
	unsigned path_too_long : 1;
	unsigned grpc : 1;          /* content-type application/grpc... */
	unsigned grpc_proto : 1;    /* ... and its protobuf flavour */
	unsigned echo : 1;          /* the request body is the answer */
	unsigned overflow : 1;      /* request body went past <body>'s limit */
	unsigned rfinal : 1;        /* nothing more will go into <rbody> */
	unsigned deferred : 1;      /* the data source is waiting */
	unsigned trailers : 1;      /* gRPC: end with grpc-status 0 */
	enum h2srv_kind kind;
	struct buf body;            /* gRPC request bytes */
	struct buf rbody;           /* answer bytes not yet sent */
	size_t unconsumed;          /* /echo bytes not yet acknowledged */
	uint64_t gen_off;           /* H2K_BYTES: produced so far */
	enum h2srv_rpc rpc;
	struct pb_say_request say;  /* slices into <body> */
	struct pb_count_request count;
	uint32_t count_next;        /* next Count reply number */
	struct origin_resp resp;
};

struct h2srv_conn {
	ev_io rio;                  /* private */
	ev_io wio;                  /* private */
	struct loop_timer idle;     /* private */
	struct loop_defer reap;     /* private: frees the connection */
	struct h2srv_conn *prev, *next; /* private: h2srv.conns */
	int fd;
	nghttp2_session *ng;
	struct buf out;
	struct h2srv_stream *streams;
	unsigned nstreams;
	unsigned closing : 1;
	char peer[64];              /* only with --verbose */
};

static struct {
	ev_io accept;
	int fd;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	struct h2srv_conn *conns;
	unsigned nconns;
} h2srv = { .fd = -1 };

static void h2srv_flush(struct h2srv_conn *c);

static void h2srv_stream_free(struct h2srv_stream *s)
{
	struct h2srv_conn *c = s->c;

	loop_timer_stop(&abc.loop, &s->tmr);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	c->nstreams--;
	buf_free(&s->body);
	buf_free(&s->rbody);
	mem_free(s);
}

static void h2srv_free(void *arg)
{
	struct h2srv_conn *c = arg;

	while (c->streams)
		h2srv_stream_free(c->streams);
	nghttp2_session_del(c->ng);
	buf_free(&c->out);
	mem_free(c);
}

static void h2srv_close(struct h2srv_conn *c)
{
	struct h2srv_stream *s;

	if (c->closing)
		return;
	c->closing = 1;
	ev_io_stop(abc.loop.ev, &c->rio);
	ev_io_stop(abc.loop.ev, &c->wio);
	loop_timer_stop(&abc.loop, &c->idle);
	for (s = c->streams; s; s = s->next)
		loop_timer_stop(&abc.loop, &s->tmr);
	close(c->fd);
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		h2srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h2srv.nconns--;
	loop_defer(&abc.loop, &c->reap);
}

static void h2srv_resume(struct h2srv_stream *s)
{
	if (!s->deferred)
		return;
	s->deferred = 0;
	nghttp2_session_resume_data(s->c->ng, s->id);
}

static void h2srv_reset(struct h2srv_stream *s, uint32_t code)
{
	nghttp2_submit_rst_stream(s->c->ng, NGHTTP2_FLAG_NONE, s->id, code);
}

static nghttp2_ssize h2srv_read_data(nghttp2_session *ng, int32_t id,
                                     uint8_t *out, size_t len,
                                     uint32_t *flags,
                                     nghttp2_data_source *src, void *user)
{
	struct h2srv_stream *s = src->ptr;
	nghttp2_nv trailer[] = { H2SRV_NV("grpc-status", "0", 1) };
	size_t n;

	(void)user;
	if (s->kind == H2K_BYTES) {
		n = (size_t)MIN((uint64_t)len, s->resp.nbytes - s->gen_off);
		origin_fill((char *)out, s->gen_off, n);
		s->gen_off += n;
		if (s->gen_off == s->resp.nbytes)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (nghttp2_ssize)n;
	}
	n = MIN(len, buf_len(&s->rbody));
	if (n) {
		memcpy(out, buf_data(&s->rbody), n);
		buf_consume(&s->rbody, n);
	}
	if (s->echo && n) {
		nghttp2_session_consume(ng, id, n);
		s->unconsumed -= n;
	}
	if (!buf_len(&s->rbody) && s->rfinal) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (s->trailers) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(ng, id, trailer, 1) < 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
	} else if (!n) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (nghttp2_ssize)n;
}

/* Submits the answer's head; the body comes from the data source when
 * <with_body>. <clen> < 0: no content-length. */
static void h2srv_submit(struct h2srv_stream *s, int status,
                         const char *ctype, int64_t clen, int with_body)
{
	nghttp2_data_provider2 prd = {
		.source = { .ptr = s }, .read_callback = h2srv_read_data
	};
	nghttp2_nv nva[3];
	char st[8], cl[24];
	size_t n = 0;

	snprintf(st, sizeof(st), "%d", status);
	nva[n++] = (nghttp2_nv)H2SRV_NV(":status", st, strlen(st));
	if (ctype)
		nva[n++] = (nghttp2_nv)H2SRV_NV("content-type", ctype,
		                                 strlen(ctype));
	if (clen >= 0) {
		snprintf(cl, sizeof(cl), "%lld", (long long)clen);
		nva[n++] = (nghttp2_nv)H2SRV_NV("content-length", cl,
		                                 strlen(cl));
	}
	if (nghttp2_submit_response2(s->c->ng, s->id, nva, n,
	                             with_body ? &prd : NULL) < 0)
		h2srv_reset(s, NGHTTP2_INTERNAL_ERROR);
	abc_debug("%s h2 %s %s -> %d", s->c->peer, s->method, s->path, status);
}

/* Answers with s->resp (ORIGIN_FIXED). */
static void h2srv_answer(struct h2srv_stream *s)
{
	const struct origin_resp *r = &s->resp;
	int bodyless = origin_status_bodyless(r->status);

	s->kind = H2K_BUF;
	s->rfinal = 1;
	if (!bodyless && !r->head && buf_append(&s->rbody, r->body, r->len) < 0) {
		h2srv_reset(s, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	h2srv_submit(s, r->status, bodyless ? NULL : r->ctype,
	             bodyless ? -1 : (int64_t)r->len, !bodyless && !r->head);
}

/* A gRPC "trailers-only" answer: the status in the only HEADERS frame. */
static void h2srv_grpc_error(struct h2srv_stream *s, int status,
                             const char *msg)
{
	char code[8], enc[256];
	nghttp2_nv nva[4];

	snprintf(code, sizeof(code), "%d", status);
	pb_grpc_message_encode(msg, enc, sizeof(enc));
	nva[0] = (nghttp2_nv)H2SRV_NV(":status", "200", 3);
	nva[1] = (nghttp2_nv)H2SRV_NV("content-type", "application/grpc", 16);
	nva[2] = (nghttp2_nv)H2SRV_NV("grpc-status", code, strlen(code));
	nva[3] = (nghttp2_nv)H2SRV_NV("grpc-message", enc, strlen(enc));
	if (nghttp2_submit_response2(s->c->ng, s->id, nva, 4, NULL) < 0)
		h2srv_reset(s, NGHTTP2_INTERNAL_ERROR);
	abc_debug("%s grpc %s -> %s (%s)", s->c->peer, s->path,
	          pb_grpc_status_str(status), msg);
}

/* Appends one framed message, encoded by <enc> into at most <cap>
 * bytes, to <rbody>. Returns 0 or -1. */
static int h2srv_put_msg(struct h2srv_stream *s, size_t cap,
                         ssize_t (*enc)(const void *m, uint8_t *out,
                                        size_t cap),
                         const void *m)
{
	uint8_t *p = (uint8_t *)buf_reserve(&s->rbody, PB_GRPC_HDR + cap);
	ssize_t n;

	if (!p)
		return -1;
	n = enc(m, p + PB_GRPC_HDR, cap);
	if (n < 0)
		return -1;
	pb_grpc_prefix(p, (uint32_t)n);
	buf_produce(&s->rbody, PB_GRPC_HDR + (size_t)n);
	return 0;
}

static ssize_t h2srv_enc_say(const void *m, uint8_t *out, size_t cap)
{
	return pb_say_reply_encode(m, out, cap);
}

static ssize_t h2srv_enc_count(const void *m, uint8_t *out, size_t cap)
{
	return pb_count_reply_encode(m, out, cap);
}

/* Queues Count replies: all at once, or one per interval. */
static void h2srv_count_tick(struct h2srv_stream *s)
{
	struct pb_count_reply r = { 0, str_from_cstr(abc.name) };

	for (;;) {
		if (s->count_next > s->count.count) {
			s->rfinal = 1;
			break;
		}
		r.n = s->count_next++;
		if (h2srv_put_msg(s, PB_ENCODED_MAX(r.served_by.len),
		                  h2srv_enc_count, &r) < 0) {
			h2srv_reset(s, NGHTTP2_INTERNAL_ERROR);
			return;
		}
		if (s->count.interval_ms && s->count_next <= s->count.count) {
			s->wait = H2W_COUNT;
			loop_timer_arm(&abc.loop, &s->tmr, s->count.interval_ms);
			break;
		}
	}
	h2srv_resume(s);
}

/* Answers a decoded Say or Count request. */
static void h2srv_grpc_answer(struct h2srv_stream *s)
{
	struct pb_say_reply r;

	s->kind = H2K_BUF;
	s->trailers = 1;
	if (s->rpc == H2R_SAY) {
		if (abc_chance(abc.fail_rate)) {
			h2srv_grpc_error(s, PB_GRPC_UNAVAILABLE,
			                 "injected failure");
			return;
		}
		r.text = s->say.text;
		r.seq = s->say.seq;
		r.served_by = str_from_cstr(abc.name);
		if (h2srv_put_msg(s, PB_ENCODED_MAX(r.text.len +
		                                    r.served_by.len),
		                  h2srv_enc_say, &r) < 0) {
			h2srv_grpc_error(s, PB_GRPC_INTERNAL,
			                 "cannot encode the reply");
			return;
		}
		s->rfinal = 1;
		h2srv_submit(s, 200, "application/grpc", -1, 1);
		return;
	}
	s->count_next = 1;
	h2srv_submit(s, 200, "application/grpc", -1, 1);
	h2srv_count_tick(s);
}

/* The gRPC request is complete: check it and answer (or wait). */
static void h2srv_grpc(struct h2srv_stream *s)
{
	const uint8_t *msg;
	size_t mlen;
	ssize_t n;
	int compressed;

	if (strcmp(s->method, "POST") != 0) {
		h2srv_grpc_error(s, PB_GRPC_UNIMPLEMENTED, "use POST");
		return;
	}
	if (!strcmp(s->path, "/abc.Echo/Say")) {
		s->rpc = H2R_SAY;
	} else if (!strcmp(s->path, "/abc.Echo/Count")) {
		s->rpc = H2R_COUNT;
	} else {
		char why[300];

		snprintf(why, sizeof(why), "unknown method %s", s->path);
		h2srv_grpc_error(s, PB_GRPC_UNIMPLEMENTED, why);
		return;
	}
	if (!s->grpc_proto) {
		h2srv_grpc_error(s, PB_GRPC_UNIMPLEMENTED,
		                 "only application/grpc+proto is served");
		return;
	}
	if (s->overflow) {
		h2srv_grpc_error(s, PB_GRPC_RESOURCE_EXHAUSTED,
		                 "request message larger than 1 MiB");
		return;
	}
	n = pb_grpc_next((const uint8_t *)buf_data(&s->body), buf_len(&s->body),
	                 H2SRV_GRPC_MAX, &msg, &mlen, &compressed);
	if (n <= 0 || (size_t)n != buf_len(&s->body)) {
		h2srv_grpc_error(s, PB_GRPC_INTERNAL,
		                 "expected exactly one request message");
		return;
	}
	if (compressed) {
		h2srv_grpc_error(s, PB_GRPC_UNIMPLEMENTED,
		                 "compressed messages are not supported");
		return;
	}
	if (s->rpc == H2R_SAY && pb_say_request_decode(msg, mlen, &s->say) < 0) {
		h2srv_grpc_error(s, PB_GRPC_INTERNAL,
		                 "cannot decode abc.SayRequest");
		return;
	}
	if (s->rpc == H2R_COUNT) {
		if (pb_count_request_decode(msg, mlen, &s->count) < 0) {
			h2srv_grpc_error(s, PB_GRPC_INTERNAL,
			                 "cannot decode abc.CountRequest");
			return;
		}
		if (s->count.count > H2SRV_COUNT_MAX ||
		    s->count.interval_ms > H2SRV_INTERVAL_MAX) {
			h2srv_grpc_error(s, PB_GRPC_INVALID_ARGUMENT,
			                 "count and interval_ms must be at most "
			                 "10000");
			return;
		}
	}
	if (abc.latency_ms) {
		s->wait = H2W_GRPC;
		loop_timer_arm(&abc.loop, &s->tmr, abc.latency_ms);
		return;
	}
	h2srv_grpc_answer(s);
}

/* The request head is complete. */
static void h2srv_request(struct h2srv_stream *s)
{
	struct origin_resp *r = &s->resp;

	if (s->grpc) {
		abc.served_grpc++;
		return;                 /* answered once the body is in */
	}
	abc.served_h2++;
	if (s->path_too_long) {
		origin_fixed(r, 414, "text/plain", "path too long\n");
		h2srv_answer(s);
		return;
	}
	origin_route(str_from_cstr(s->method), str_from_cstr(s->path), r);
	switch (r->kind) {
	case ORIGIN_FRONT:
		origin_fixed(r, 404, "text/plain", "not served over h2\n");
		/* fall through */
	case ORIGIN_FIXED:
		if (r->delay_ms) {
			s->wait = H2W_ORIGIN;
			loop_timer_arm(&abc.loop, &s->tmr, r->delay_ms);
		} else {
			h2srv_answer(s);
		}
		return;
	case ORIGIN_BYTES:
		s->kind = H2K_BYTES;
		h2srv_submit(s, 200, r->ctype, (int64_t)r->nbytes,
		             !r->head && r->nbytes);
		return;
	case ORIGIN_ECHO:
		s->kind = H2K_BUF;
		s->echo = 1;
		buf_init(&s->rbody, H2SRV_ECHO_MAX);
		h2srv_submit(s, 200, r->ctype, -1, 1);
		return;
	}
}

/* The request body is complete (END_STREAM). */
static void h2srv_request_end(struct h2srv_stream *s)
{
	if (s->echo) {
		s->rfinal = 1;
		h2srv_resume(s);
	} else if (s->grpc) {
		h2srv_grpc(s);
	}
}

static void h2srv_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct h2srv_stream *s = container_of(t, struct h2srv_stream, tmr);
	struct h2srv_conn *c = s->c;

	(void)loop;
	switch (s->wait) {
	case H2W_ORIGIN:
		h2srv_answer(s);
		break;
	case H2W_GRPC:
		h2srv_grpc_answer(s);
		break;
	case H2W_COUNT:
		h2srv_count_tick(s);
		break;
	}
	h2srv_flush(c);
}

static int h2srv_on_begin_headers(nghttp2_session *ng,
                                  const nghttp2_frame *f, void *user)
{
	struct h2srv_conn *c = user;
	struct h2srv_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	/* SETTINGS bound this once acknowledged; this bounds it before */
	if (c->nstreams >= 2 * H2SRV_MAX_STREAMS)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s = mem_calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->c = c;
	s->id = f->hd.stream_id;
	loop_timer_init(&s->tmr, h2srv_timer_cb);
	buf_init(&s->body, H2SRV_GRPC_MAX + PB_GRPC_HDR);
	/* a Say reply echoes up to H2SRV_GRPC_MAX bytes of text; 10000
	 * Count replies take less */
	buf_init(&s->rbody, H2SRV_GRPC_MAX + 1024);
	s->next = c->streams;
	if (s->next)
		s->next->prev = s;
	c->streams = s;
	c->nstreams++;
	nghttp2_session_set_stream_user_data(ng, s->id, s);
	return 0;
}

/* Copies a header value into <dst>; 0, or -1 when it does not fit. */
static int h2srv_copy(char *dst, size_t cap, const uint8_t *v, size_t len)
{
	if (len >= cap)
		return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

static int h2srv_on_header(nghttp2_session *ng, const nghttp2_frame *f,
                           const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen,
                           uint8_t flags, void *user)
{
	struct h2srv_stream *s;
	struct str n = str_make((const char *)name, namelen);
	struct str v = str_make((const char *)value, valuelen);

	(void)flags;
	(void)user;
	s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!s || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (str_eq_cstr(n, ":method")) {
		if (h2srv_copy(s->method, sizeof(s->method), value, valuelen) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (str_eq_cstr(n, ":path")) {
		if (h2srv_copy(s->path, sizeof(s->path), value, valuelen) < 0)
			s->path_too_long = 1;
	} else if (str_eq_cstr(n, "content-type")) {
		s->grpc = str_has_prefix(v, STR_LIT("application/grpc"));
		s->grpc_proto = str_eq_cstr(v, "application/grpc") ||
		                str_has_prefix(v, STR_LIT("application/grpc;")) ||
		                str_has_prefix(v, STR_LIT("application/grpc+proto"));
	}
	return 0;
}

static int h2srv_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f,
                               void *user)
{
	struct h2srv_stream *s;

	(void)user;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!s)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST)
		h2srv_request(s);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		h2srv_request_end(s);
	return 0;
}

static int h2srv_on_data(nghttp2_session *ng, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *user)
{
	struct h2srv_stream *s = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	(void)user;
	if (!s) {
		if (nghttp2_session_consume(ng, id, len) < 0)
			nghttp2_session_consume_connection(ng, len);
		return 0;
	}
	if (s->echo) {
		s->unconsumed += len;
		if (buf_append(&s->rbody, data, len) < 0) {
			/* more than the window we gave: cannot happen with a
			 * conforming peer */
			h2srv_reset(s, NGHTTP2_FLOW_CONTROL_ERROR);
			return 0;
		}
		h2srv_resume(s);
		return 0;
	}
	nghttp2_session_consume(ng, id, len);
	if (s->grpc && !s->overflow && buf_append(&s->body, data, len) < 0)
		s->overflow = 1;
	return 0;
}

static int h2srv_on_stream_close(nghttp2_session *ng, int32_t id,
                                 uint32_t code, void *user)
{
	struct h2srv_stream *s = nghttp2_session_get_stream_user_data(ng, id);

	(void)code;
	(void)user;
	if (!s)
		return 0;
	/* the connection window still counts what the stream never used */
	if (s->unconsumed)
		nghttp2_session_consume_connection(ng, s->unconsumed);
	h2srv_stream_free(s);
	return 0;
}

static void h2srv_flush(struct h2srv_conn *c)
{
	int rc;

	if (c->closing)
		return;
	rc = h2io_flush(c->ng, &c->out, c->fd);
	if (rc < 0 || h2io_done(c->ng, &c->out)) {
		h2srv_close(c);
		return;
	}
	if (rc && !ev_is_active(&c->wio))
		ev_io_start(abc.loop.ev, &c->wio);
	else if (!rc && ev_is_active(&c->wio))
		ev_io_stop(abc.loop.ev, &c->wio);
}

static void h2srv_read_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h2srv_conn *c = container_of(w, struct h2srv_conn, rio);
	int rc;

	(void)ev;
	(void)revents;
	rc = h2io_read(c->ng, c->fd);
	if (rc == H2IO_PROTO) {
		/* best effort: say why before going */
		abc_debug("%s h2: protocol error, closing", c->peer);
		nghttp2_session_terminate_session(c->ng, NGHTTP2_PROTOCOL_ERROR);
		h2io_flush(c->ng, &c->out, c->fd);
	}
	if (rc < 0) {
		abc_debug("%s h2: connection closed", c->peer);
		h2srv_close(c);
		return;
	}
	if (rc)
		loop_timer_arm(&abc.loop, &c->idle, H2SRV_IDLE_MS);
	h2srv_flush(c);
}

static void h2srv_write_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	(void)ev;
	(void)revents;
	h2srv_flush(container_of(w, struct h2srv_conn, wio));
}

static void h2srv_idle_cb(struct loop *loop, struct loop_timer *t)
{
	struct h2srv_conn *c = container_of(t, struct h2srv_conn, idle);

	if (c->nstreams) {
		loop_timer_arm(loop, t, H2SRV_IDLE_MS);
		return;
	}
	nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
	h2srv_flush(c);
}

/* Sets up the session of a new connection and queues the server
 * preface. Returns 0 or -1. */
static int h2srv_session(struct h2srv_conn *c)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2SRV_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2SRV_WINDOW },
	};

	if (nghttp2_session_server_new3(&c->ng, h2srv.cbs, c, h2srv.opt,
	                                h2io_mem()) != 0)
		return -1;
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv,
	                            ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
	                                          H2SRV_CONN_WINDOW) != 0)
		return -1;
	return 0;
}

static void h2srv_accept_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h2srv_conn *c;
	int fd, i;

	(void)w;
	(void)revents;
	for (i = 0; i < H2SRV_ACCEPT_BUDGET; i++) {
		fd = net_accept(h2srv.fd);
		if (fd < 0)
			return;
		if (h2srv.nconns >= H2SRV_MAX_CONNS ||
		    !(c = mem_calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		if (h2srv_session(c) < 0) {
			nghttp2_session_del(c->ng);
			mem_free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		buf_init(&c->out, H2IO_OUT_MAX);
		ev_io_init(&c->rio, h2srv_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, h2srv_write_cb, fd, EV_WRITE);
		loop_timer_init(&c->idle, h2srv_idle_cb);
		loop_defer_init(&c->reap, h2srv_free, c);
		if (abc.verbose)
			net_peer_str(fd, c->peer, sizeof(c->peer));
		c->next = h2srv.conns;
		if (c->next)
			c->next->prev = c;
		h2srv.conns = c;
		h2srv.nconns++;
		ev_io_start(ev, &c->rio);
		loop_timer_arm(&abc.loop, &c->idle, H2SRV_IDLE_MS);
		h2srv_flush(c);
	}
}

int h2srv_start(const struct net_addr *a, char *err, size_t errlen)
{
	nghttp2_session_callbacks *cbs;

	if (nghttp2_session_callbacks_new(&h2srv.cbs) != 0 ||
	    nghttp2_option_new(&h2srv.opt) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cbs = h2srv.cbs;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
		h2srv_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2srv_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
		h2srv_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
		h2srv_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
		h2srv_on_stream_close);
	nghttp2_option_set_no_auto_window_update(h2srv.opt, 1);

	h2srv.fd = net_listen(a, err, errlen);
	if (h2srv.fd < 0)
		return -1;
	ev_io_init(&h2srv.accept, h2srv_accept_cb, h2srv.fd, EV_READ);
	ev_io_start(abc.loop.ev, &h2srv.accept);
	return 0;
}

void h2srv_stop(void)
{
	struct h2srv_conn *c;

	if (h2srv.fd >= 0) {
		ev_io_stop(abc.loop.ev, &h2srv.accept);
		close(h2srv.fd);
		h2srv.fd = -1;
	}
	while ((c = h2srv.conns)) {
		/* best effort: tell the client, then go */
		nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
		h2io_flush(c->ng, &c->out, c->fd);
		h2srv_close(c);
	}
	nghttp2_session_callbacks_del(h2srv.cbs);
	h2srv.cbs = NULL;
	nghttp2_option_del(h2srv.opt);
	h2srv.opt = NULL;
}
