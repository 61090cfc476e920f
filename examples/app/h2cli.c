/*
 * h2cli: gRPC client channel over h2c. See h2cli.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * A call is an HTTP/2 stream carrying one framed request message; it is
 * submitted to the session at once (nghttp2 holds it until the connection
 * is up and the peer's stream limit allows) and the session is flushed
 * from a loop_defer, never from the caller's stack. The call ends in
 * on_stream_close, or when its connection dies (h2cli_conn_close fails
 * every call still on it), and h2cli_call_end is the one place where
 * <done> runs and the call is freed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "h2cli.h"
#include "h2io.h"
#include "pb.h"

#define H2CLI_MAX_CALLS 1024
#define H2CLI_MSG_TEXT 256

#define H2CLI_NV(n, v, vlen) { (uint8_t *)(n), (uint8_t *)(v), \
	sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NO_COPY_NAME }

struct h2cli_conn;

struct h2cli_call {
	struct h2cli_conn *conn;
	struct h2cli_call *prev, *next; /* private: conn->calls */
	int32_t id;
	struct loop_timer tmr;      /* deadline */
	uint8_t *req;               /* framed request message */
	size_t reqlen;
	size_t reqoff;              /* bytes handed to nghttp2 */
	int http_status;            /* 0 until :status */
	int grpc_status;            /* -1 until grpc-status */
	int local_status;           /* -1, or an outcome decided here */
	char message[H2CLI_MSG_TEXT];
	struct buf in;              /* response bytes not yet a message */
	h2cli_msg_fn *on_msg;
	h2cli_done_fn *done;
	void *arg;
};

struct h2cli_conn {
	struct h2cli *h;
	struct h2cli_conn *prev, *next; /* private: h->conns */
	ev_io rio;                  /* private */
	ev_io wio;                  /* private */
	struct loop_defer reap;     /* private: frees the connection */
	struct loop_defer kick;     /* private: flushes, or reports a failed
	                             * connect */
	int fd;
	int connect_err;            /* -errno when connect failed at once */
	nghttp2_session *ng;
	struct buf out;
	struct h2cli_call *calls;
	unsigned connected : 1;
	unsigned goaway : 1;        /* no new calls on this connection */
	unsigned closing : 1;
};

struct h2cli {
	struct net_addr addr;
	struct h2cli_conn *cur;     /* where new calls go, or NULL */
	struct h2cli_conn *conns;   /* every open connection */
	unsigned ncalls;
	nghttp2_session_callbacks *cbs;
};

static void h2cli_call_end(struct h2cli_call *call, int status,
                           const char *message)
{
	struct h2cli_conn *conn = call->conn;

	loop_timer_stop(&abc.loop, &call->tmr);
	if (call->prev)
		call->prev->next = call->next;
	else
		conn->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	conn->h->ncalls--;
	call->done(call->arg, status, message);
	buf_free(&call->in);
	mem_free(call->req);
	mem_free(call);
}

/* Records an outcome decided on this side; the first one wins. */
static void h2cli_call_fail(struct h2cli_call *call, int status,
                            const char *message)
{
	if (call->local_status >= 0)
		return;
	call->local_status = status;
	/* a cut message is still a message */
	(void)str_copy_cstr(call->message, sizeof(call->message),
	                    str_from_cstr(message));
}

static void h2cli_conn_free(void *arg)
{
	struct h2cli_conn *conn = arg;

	nghttp2_session_del(conn->ng);
	buf_free(&conn->out);
	mem_free(conn);
}

/* Closes <conn> and fails its calls with UNAVAILABLE (unless they already
 * have an outcome). */
static void h2cli_conn_close(struct h2cli_conn *conn, const char *why)
{
	struct h2cli *h = conn->h;
	struct h2cli_call *call;
	char msg[NET_TEXT_MAX + H2CLI_MSG_TEXT];

	if (conn->closing)
		return;
	conn->closing = 1;
	ev_io_stop(abc.loop.ev, &conn->rio);
	ev_io_stop(abc.loop.ev, &conn->wio);
	loop_defer_cancel(&abc.loop, &conn->kick);
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
	if (h->cur == conn)
		h->cur = NULL;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		h->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	snprintf(msg, sizeof(msg), "%s: %s", h->addr.text, why);
	while ((call = conn->calls)) {
		h2cli_call_fail(call, PB_GRPC_UNAVAILABLE, msg);
		h2cli_call_end(call, call->local_status, call->message);
	}
	loop_defer(&abc.loop, &conn->reap);
}

static void h2cli_flush(struct h2cli_conn *conn)
{
	int rc;

	if (conn->closing || !conn->connected)
		return;
	rc = h2io_flush(conn->ng, &conn->out, conn->fd);
	if (rc < 0) {
		h2cli_conn_close(conn, "connection error");
		return;
	}
	if (h2io_done(conn->ng, &conn->out)) {
		h2cli_conn_close(conn, "connection closed");
		return;
	}
	if (rc && !ev_is_active(&conn->wio))
		ev_io_start(abc.loop.ev, &conn->wio);
	else if (!rc && ev_is_active(&conn->wio))
		ev_io_stop(abc.loop.ev, &conn->wio);
}

static void h2cli_kick(void *arg)
{
	struct h2cli_conn *conn = arg;
	char why[96];

	if (conn->connect_err) {
		snprintf(why, sizeof(why), "connect: %s",
		         strerror(-conn->connect_err));
		h2cli_conn_close(conn, why);
		return;
	}
	h2cli_flush(conn);
}

static void h2cli_read_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h2cli_conn *conn = container_of(w, struct h2cli_conn, rio);

	(void)ev;
	(void)revents;
	if (h2io_read(conn->ng, conn->fd) < 0) {
		h2cli_conn_close(conn, "connection lost");
		return;
	}
	h2cli_flush(conn);
}

static void h2cli_write_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h2cli_conn *conn = container_of(w, struct h2cli_conn, wio);
	char why[96];
	int rc;

	(void)revents;
	if (!conn->connected) {
		rc = net_connect_result(conn->fd);
		if (rc < 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(-rc));
			h2cli_conn_close(conn, why);
			return;
		}
		conn->connected = 1;
		ev_io_start(ev, &conn->rio);
	}
	h2cli_flush(conn);
}

static nghttp2_ssize h2cli_read_req(nghttp2_session *ng, int32_t id,
                                    uint8_t *out, size_t len,
                                    uint32_t *flags,
                                    nghttp2_data_source *src, void *user)
{
	struct h2cli_call *call = src->ptr;
	size_t n = MIN(len, call->reqlen - call->reqoff);

	(void)ng;
	(void)id;
	(void)user;
	memcpy(out, call->req + call->reqoff, n);
	call->reqoff += n;
	if (call->reqoff == call->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (nghttp2_ssize)n;
}

static int h2cli_on_header(nghttp2_session *ng, const nghttp2_frame *f,
                           const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen,
                           uint8_t flags, void *user)
{
	struct h2cli_call *call;
	struct str n = str_make((const char *)name, namelen);
	struct str v = str_make((const char *)value, valuelen);
	uint64_t u;

	(void)flags;
	(void)user;
	call = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!call)
		return 0;
	if (str_eq_cstr(n, ":status")) {
		if (str_to_u64(v, &u) == 0 && u < 1000)
			call->http_status = (int)u;
	} else if (str_eq_cstr(n, "grpc-status")) {
		call->grpc_status = str_to_u64(v, &u) == 0 && u < 100 ?
		                    (int)u : PB_GRPC_UNKNOWN;
	} else if (str_eq_cstr(n, "grpc-message")) {
		str_copy_cstr(call->message, sizeof(call->message), v);
	}
	return 0;
}

static int h2cli_on_data(nghttp2_session *ng, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *user)
{
	struct h2cli_call *call = nghttp2_session_get_stream_user_data(ng, id);
	const uint8_t *msg;
	size_t mlen;
	ssize_t n;
	int compressed;

	(void)flags;
	(void)user;
	if (!call || call->local_status >= 0)
		return 0;
	if (buf_append(&call->in, data, len) < 0)
		goto too_big;
	for (;;) {
		n = pb_grpc_next((const uint8_t *)buf_data(&call->in),
		                 buf_len(&call->in), H2CLI_MSG_MAX, &msg, &mlen,
		                 &compressed);
		if (n == 0)
			return 0;
		if (n < 0)
			goto too_big;
		if (compressed) {
			h2cli_call_fail(call, PB_GRPC_UNIMPLEMENTED,
			                "compressed reply");
			goto cancel;
		}
		if (call->on_msg(call->arg, msg, mlen) < 0) {
			h2cli_call_fail(call, PB_GRPC_INTERNAL,
			                "unexpected reply message");
			goto cancel;
		}
		buf_consume(&call->in, (size_t)n);
	}
too_big:
	h2cli_call_fail(call, PB_GRPC_RESOURCE_EXHAUSTED,
	                "reply message too large");
cancel:
	nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	return 0;
}

/* gRPC's mapping of an HTTP status without grpc-status. */
static int h2cli_http_to_grpc(int status)
{
	switch (status) {
	case 400:
		return PB_GRPC_INTERNAL;
	case 401:
		return 16;      /* UNAUTHENTICATED */
	case 403:
		return 7;       /* PERMISSION_DENIED */
	case 404:
		return PB_GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return PB_GRPC_UNAVAILABLE;
	default:
		return PB_GRPC_UNKNOWN;
	}
}

static int h2cli_on_stream_close(nghttp2_session *ng, int32_t id,
                                 uint32_t code, void *user)
{
	struct h2cli_call *call = nghttp2_session_get_stream_user_data(ng, id);
	char msg[H2CLI_MSG_TEXT];

	(void)user;
	if (!call)
		return 0;
	if (call->local_status < 0) {
		if (call->http_status && call->http_status != 200) {
			snprintf(msg, sizeof(msg), "HTTP status %d",
			         call->http_status);
			h2cli_call_fail(call,
			                h2cli_http_to_grpc(call->http_status),
			                msg);
		} else if (call->grpc_status >= 0 && buf_len(&call->in)) {
			h2cli_call_fail(call, PB_GRPC_INTERNAL,
			                "truncated reply message");
		} else if (call->grpc_status >= 0) {
			call->local_status = call->grpc_status;
		} else if (code != NGHTTP2_NO_ERROR) {
			snprintf(msg, sizeof(msg), "stream reset (%s)",
			         nghttp2_http2_strerror(code));
			h2cli_call_fail(call, PB_GRPC_UNAVAILABLE, msg);
		} else {
			h2cli_call_fail(call, PB_GRPC_INTERNAL,
			                "no grpc-status in the answer");
		}
	}
	h2cli_call_end(call, call->local_status, call->message);
	return 0;
}

static int h2cli_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f,
                               void *user)
{
	struct h2cli_conn *conn = user;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		conn->goaway = 1;
		if (conn->h->cur == conn)
			conn->h->cur = NULL;
	}
	return 0;
}

/* A new connection, connecting; NULL without memory. */
static struct h2cli_conn *h2cli_conn_open(struct h2cli *h)
{
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };
	struct h2cli_conn *conn = mem_calloc(1, sizeof(*conn));

	if (!conn)
		return NULL;
	if (nghttp2_session_client_new3(&conn->ng, h->cbs, conn, NULL,
	                                h2io_mem()) != 0 ||
	    nghttp2_submit_settings(conn->ng, NGHTTP2_FLAG_NONE, iv,
	                            ARRAY_SIZE(iv)) != 0) {
		nghttp2_session_del(conn->ng);
		mem_free(conn);
		return NULL;
	}
	conn->h = h;
	buf_init(&conn->out, H2IO_OUT_MAX);
	loop_defer_init(&conn->reap, h2cli_conn_free, conn);
	loop_defer_init(&conn->kick, h2cli_kick, conn);
	conn->next = h->conns;
	if (conn->next)
		conn->next->prev = conn;
	h->conns = conn;
	conn->fd = net_connect(&h->addr);
	if (conn->fd < 0) {
		conn->connect_err = conn->fd;
		conn->fd = -1;
		loop_defer(&abc.loop, &conn->kick);
		return conn;
	}
	ev_io_init(&conn->rio, h2cli_read_cb, conn->fd, EV_READ);
	ev_io_init(&conn->wio, h2cli_write_cb, conn->fd, EV_WRITE);
	ev_io_start(abc.loop.ev, &conn->wio);
	return conn;
}

static void h2cli_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct h2cli_call *call = container_of(t, struct h2cli_call, tmr);
	struct h2cli_conn *conn = call->conn;

	h2cli_call_fail(call, PB_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
	if (!conn->connected) {
		h2cli_conn_close(conn, "connect timed out");
		return;
	}
	nghttp2_submit_rst_stream(conn->ng, NGHTTP2_FLAG_NONE, call->id,
	                          NGHTTP2_CANCEL);
	loop_defer(loop, &conn->kick);
}

int h2cli_call(struct h2cli *h, const char *path, const uint8_t *msg,
               size_t len, uint64_t timeout_ms, h2cli_msg_fn *on_msg,
               h2cli_done_fn *done, void *arg)
{
	nghttp2_data_provider2 prd = { .read_callback = h2cli_read_req };
	struct h2cli_conn *conn = h->cur;
	struct h2cli_call *call;
	char timeout[24], ua[96];
	nghttp2_nv nva[8];

	if (h->ncalls >= H2CLI_MAX_CALLS || len > H2CLI_MSG_MAX)
		return -1;
	if (!conn) {
		conn = h2cli_conn_open(h);
		if (!conn)
			return -1;
		h->cur = conn;
	}
	call = mem_calloc(1, sizeof(*call));
	if (!call)
		return -1;
	call->req = mem_alloc(PB_GRPC_HDR + len);
	if (!call->req) {
		mem_free(call);
		return -1;
	}
	pb_grpc_prefix(call->req, (uint32_t)len);
	if (len)
		memcpy(call->req + PB_GRPC_HDR, msg, len);
	call->reqlen = PB_GRPC_HDR + len;
	call->conn = conn;
	call->grpc_status = -1;
	call->local_status = -1;
	call->on_msg = on_msg;
	call->done = done;
	call->arg = arg;
	buf_init(&call->in, H2CLI_MSG_MAX + PB_GRPC_HDR);
	loop_timer_init(&call->tmr, h2cli_timer_cb);

	snprintf(timeout, sizeof(timeout), "%llum",
	         (unsigned long long)MIN(timeout_ms, 99999999ull));
	snprintf(ua, sizeof(ua), "abc-app/%s", abc.name);
	nva[0] = (nghttp2_nv)H2CLI_NV(":method", "POST", 4);
	nva[1] = (nghttp2_nv)H2CLI_NV(":scheme", "http", 4);
	nva[2] = (nghttp2_nv)H2CLI_NV(":path", path, strlen(path));
	nva[3] = (nghttp2_nv)H2CLI_NV(":authority", h->addr.text,
	                              strlen(h->addr.text));
	nva[4] = (nghttp2_nv)H2CLI_NV("content-type", "application/grpc", 16);
	nva[5] = (nghttp2_nv)H2CLI_NV("te", "trailers", 8);
	nva[6] = (nghttp2_nv)H2CLI_NV("grpc-timeout", timeout, strlen(timeout));
	nva[7] = (nghttp2_nv)H2CLI_NV("user-agent", ua, strlen(ua));
	prd.source.ptr = call;
	call->id = nghttp2_submit_request2(conn->ng, NULL, nva, ARRAY_SIZE(nva),
	                                   &prd, call);
	if (call->id < 0) {
		mem_free(call->req);
		mem_free(call);
		return -1;
	}
	call->next = conn->calls;
	if (call->next)
		call->next->prev = call;
	conn->calls = call;
	h->ncalls++;
	loop_timer_arm(&abc.loop, &call->tmr, timeout_ms);
	loop_defer(&abc.loop, &conn->kick);
	return 0;
}

struct h2cli *h2cli_new(const struct net_addr *a)
{
	struct h2cli *h = mem_calloc(1, sizeof(*h));
	nghttp2_session_callbacks *cbs;

	if (!h)
		return NULL;
	if (nghttp2_session_callbacks_new(&h->cbs) != 0) {
		mem_free(h);
		return NULL;
	}
	h->addr = *a;
	cbs = h->cbs;
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2cli_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
		h2cli_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
		h2cli_on_stream_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
		h2cli_on_frame_recv);
	return h;
}

void h2cli_free(struct h2cli *h)
{
	struct h2cli_call *call;

	if (!h)
		return;
	while (h->conns) {
		/* CANCELLED rather than UNAVAILABLE: we are the ones leaving */
		for (call = h->conns->calls; call; call = call->next)
			h2cli_call_fail(call, PB_GRPC_CANCELLED, "shutting down");
		h2cli_conn_close(h->conns, "shutting down");
	}
	nghttp2_session_callbacks_del(h->cbs);
	mem_free(h);
}
