/*
 * h1: request-level HTTP/1.1 forwarding (see h1.h).
 *
 * IMPLEMENTATION NOTES
 * Output batches. What one read produces for the other side (a rewritten
 * head, the body bytes behind it, chunk framing) is collected as iovecs in
 * a struct h1_batch and written with one writev: heads live in the shared
 * head buffer (h1_hbuf, appended to within a batch so several heads, e.g. a
 * 100 Continue and the final response, can share one batch), body bytes are
 * pointers into the read buffer, chunk-size lines live in the batch. The
 * batch is sent before the read buffer can change; what the kernel refuses
 * is copied into the endpoint's output buffer (ep_sendv).
 *
 * Back-pressure (h1_update): the client is read while a request head is
 * awaited with no exchange running, or while a request body is being sent
 * and the upstream has nothing pending; the upstream is read while a
 * response is awaited and the client has nothing pending.
 *
 * Framing. Chunked bodies are decoded (strictly, core/http1) and encoded
 * again, so chunk extensions and odd size spellings never cross the proxy;
 * trailers cross as validated field lines. A chunked or close-delimited
 * response to an HTTP/1.0 client goes out raw and the connection closes.
 */
#include <errno.h>
#include <string.h>

#include "core/h2.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "proxy/conn.h"
#include "proxy/h1.h"
#include "proxy/h2side.h"
#include "proxy/pool.h"
#include "proxy/rewrite.h"
#include "proxy/tcp.h"

#define H1_MAX_HEADERS 1024
#define H1_IOV 48
#define H1_LINES (H1_IOV / 3 + 1)

static struct http1_header h1_hdrs[H1_MAX_HEADERS];
static char h1_hstore[EP_HSCRATCH_SIZE];
static struct buf h1_hbuf;

struct h1_batch {
	struct iovec iov[H1_IOV];
	int n;
	int nl;
	char lines[H1_LINES][HTTP1_CHUNK_LINE_MAX];
};

static const char h1_crlf[] = "\r\n";
static const char h1_last[] = "0\r\n";

static void h1_update(struct conn *c);
static int h1_input(struct conn *c, const char *data, size_t len,
                    int from_in);
static int h1_synth(struct conn *c, int status, const char *reason);
static void h1_hx_close(struct h1x *x);
static void h1_hx_drop(struct h1x *x);
static int h1_hx_send(struct conn *c, struct h1_batch *b);
static int h1_hx_resend(struct conn *c, const struct sock_addr *to);
static int h1_hx_begin(struct conn *c, const struct http1_head *h,
                       const struct sock_addr *addr);

static inline struct ev_loop *h1_ev(const struct conn *c)
{
	return c->px->loop.ev;
}

/* The shared head buffer, emptied. Only valid until the batch is sent. */
static struct buf *h1_hb(void)
{
	if (!h1_hbuf.data)
		buf_init_fixed(&h1_hbuf, h1_hstore, sizeof(h1_hstore));
	buf_reset(&h1_hbuf);
	return &h1_hbuf;
}

static void h1_batch_init(struct h1_batch *b)
{
	b->n = 0;
	b->nl = 0;
}

/* Room for a chunk (size line, data, CRLF) and the trailer pieces. */
static int h1_batch_full(const struct h1_batch *b)
{
	return b->n > H1_IOV - 5 || b->nl >= H1_LINES - 1;
}

static void h1_batch_add(struct h1_batch *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	b->iov[b->n].iov_base = (void *)p;
	b->iov[b->n].iov_len = n;
	b->n++;
}

/* Sends and empties <b>. Returns 0 or -errno. */
/* Keeps a copy of request bytes going upstream while the request may be
 * retried; past the bound it is not retryable any more. */
static void h1_replay_keep(struct h1x *x, const struct h1_batch *b)
{
	size_t i;

	for (i = 0; i < (size_t)b->n; i++)
		if (buf_append(&x->replay, b->iov[i].iov_base,
		               b->iov[i].iov_len) < 0) {
			x->flags &= (uint16_t)~H1X_F_REPLAY;
			buf_free(&x->replay);
			return;
		}
}

static int h1_batch_send(struct conn *c, struct ep *ep, struct h1_batch *b)
{
	int rc = 0;

	if (b->n && (c->h1.flags & H1X_F_REPLAY) && c->h1.up &&
	    ep == &c->h1.up->ep)
		h1_replay_keep(&c->h1, b);
	if (b->n)
		rc = ep_sendv(h1_ev(c), ep, b->iov, b->n);
	h1_batch_init(b);
	return rc;
}

static void h1_body_init(struct h1body *b, enum http1_body kind,
                         uint64_t len, int out, const struct http1_limits *l)
{
	memset(b, 0, sizeof(*b));
	b->kind = (uint8_t)kind;
	b->out = (uint8_t)out;
	b->remain = len;
	if (kind == HTTP1_BODY_CHUNKED)
		http1_chunked_init(&b->ch, l);
	if (kind == HTTP1_BODY_NONE ||
	    (kind == HTTP1_BODY_LENGTH && len == 0))
		b->done = 1;
}

/*
 * Moves body bytes of <b> from <data>[<len>] into <bt> until the body ends,
 * the input is used up or the batch is full. Returns the bytes consumed,
 * or an HTTP1_E_* code for a framing error.
 */
static ssize_t h1_body(struct h1body *b, const char *data, size_t len,
                       struct h1_batch *bt)
{
	size_t used = 0, consumed, off, span, n;
	int r;

	if (b->done)
		return 0;
	switch (b->kind) {
	case HTTP1_BODY_LENGTH:
		n = len < b->remain ? len : (size_t)b->remain;
		h1_batch_add(bt, data, n);
		b->remain -= n;
		if (b->remain == 0)
			b->done = 1;
		return (ssize_t)n;
	case HTTP1_BODY_CLOSE:
	case HTTP1_BODY_TUNNEL:
		h1_batch_add(bt, data, len);
		return (ssize_t)len;
	case HTTP1_BODY_CHUNKED:
		break;
	default:
		b->done = 1;
		return 0;
	}
	while (used < len && !h1_batch_full(bt)) {
		r = http1_chunked_feed(&b->ch, data + used, len - used,
		                       &consumed, &off, &span);
		if (r < 0)
			return r;
		switch (r) {
		case HTTP1_CHUNKED_DATA:
			if (b->out == H1_OUT_CHUNKED) {
				char *line = bt->lines[bt->nl++];

				h1_batch_add(bt, line,
				             http1_chunk_line(line, span));
				h1_batch_add(bt, data + used + off, span);
				h1_batch_add(bt, h1_crlf, 2);
			} else {
				h1_batch_add(bt, data + used + off, span);
			}
			break;
		case HTTP1_CHUNKED_TRAILER:
			if (b->out == H1_OUT_CHUNKED) {
				if (!b->last_sent) {
					h1_batch_add(bt, h1_last, 3);
					b->last_sent = 1;
				}
				h1_batch_add(bt, data + used + off, span);
			} else if (b->trl &&
			           buf_append(b->trl, data + used + off,
			                      span) < 0) {
				return HTTP1_E_TRAILER_TOO_LARGE;
			}
			break;
		case HTTP1_CHUNKED_DONE:
			if (b->out == H1_OUT_CHUNKED) {
				if (!b->last_sent)
					h1_batch_add(bt, h1_last, 3);
				b->last_sent = 1;
				h1_batch_add(bt, h1_crlf, 2);
			}
			b->done = 1;
			return (ssize_t)(used + consumed);
		default:
			break;
		}
		used += consumed;
	}
	return (ssize_t)used;
}

/* Sends <b> to the exchange's upstream, whichever its kind, and empties
 * it. 0 or -errno. */
static int h1_up_send(struct conn *c, struct h1_batch *b)
{
	if (c->h1.hx)
		return h1_hx_send(c, b);
	if (c->h1.up)
		return h1_batch_send(c, &c->h1.up->ep, b);
	h1_batch_init(b);
	return 0;
}

/* ---- exchange end ---- */

static void h1_x_reset(struct conn *c)
{
	struct h1x *x = &c->h1;

	x->rst = H1R_HEAD;
	x->sst = H1S_NONE;
	x->flags = 0;
	x->status = 0;
	x->grpc = -1;
	x->scan = 0;
	x->rscan = 0;
	x->m = NULL;
	x->up = NULL;
	buf_free(&x->replay);
	x->attempts = 0;
	h1_hx_close(x);
}

/* Counts the response once. */
static void h1_count_response(struct conn *c, int status, int grpc,
                              int error)
{
	struct h1x *x = &c->h1;

	/* failure accrual counts what the endpoint did: 5xx, broken
	 * connections, timeouts */
	svc_release(&x->lease, !(error || status >= 500));
	if (!(x->flags & H1X_F_COUNTED))
		return;
	x->flags &= (uint16_t)~H1X_F_COUNTED;
	pxmetrics_response(x->m, status, grpc,
	                   pxmetrics_is_failure(status, grpc, error));
}

void h1_release(struct conn *c)
{
	struct h1x *x = &c->h1;

	route_cancel(&x->rw);
	if (x->up) {
		pool_h1_put(x->up, 0);
		x->up = NULL;
	}
	h1_hx_close(x);
	loop_defer_cancel(&c->px->loop, &c->flush);
	c->cli.flags &= ~EP_F_CORK;
	/* a response begun but never finished is a failed one */
	if (x->flags & H1X_F_HEAD_SENT)
		h1_count_response(c, x->status, x->grpc, 1);
	x->flags &= (uint16_t)~H1X_F_COUNTED;
	/* ended before any response: the client went, not the endpoint */
	svc_release(&x->lease, 1);
	buf_free(&x->replay);
}

/* The exchange cannot finish: the client connection goes. */
static int h1_abort(struct conn *c, const char *why)
{
	LOG_DEBUG("proxy", "conn %llu: exchange aborted: %s",
	          (unsigned long long)c->id, why);
	conn_close(c, 1, 0);
	return -1;
}

/*
 * The client went: its socket failed, or it closed in the middle of its
 * request body. The exchange cannot finish, and that says nothing of the
 * endpoint serving it: its lease goes back as cancelled (no verdict for
 * failure accrual) before the connection closes. The response, when one
 * was begun, is still counted as failed.
 */
static int h1_client_gone(struct conn *c, const char *why)
{
	svc_release(&c->h1.lease, SVC_CANCELLED);
	return h1_abort(c, why);
}

/* Ends the current exchange after its response went out. */
static int h1_end(struct conn *c)
{
	struct h1x *x = &c->h1;
	struct h1up *up = x->up;
	int reuse;

	h1_count_response(c, x->status, x->grpc,
	                  (x->flags & H1X_F_FAILED) != 0);
	if (up) {
		reuse = (x->flags & H1X_F_UP_KEEP) &&
		        !(x->flags & H1X_F_UP_DIRTY) && x->rst == H1R_DONE;
		x->up = NULL;
		pool_h1_put(up, reuse);
	}
	h1_hx_close(x);
	/* a client that half-closed still gets its pipelined requests */
	if ((x->flags & H1X_F_CLOSE) || x->rst != H1R_DONE ||
	    !(x->flags & H1X_F_KEEPALIVE) || c->px->draining ||
	    ((c->cli.flags & EP_F_EOF) && !buf_len(&c->cli.in)))
		return conn_linger(c);
	x->m_hint = x->m;
	h1_x_reset(c);
	conn_timeout(c, CONN_T_KEEPALIVE, c->px->cfg.keepalive_timeout_ms);
	if (buf_len(&c->cli.in))
		loop_defer(&c->px->loop, &c->kick);
	return 0;
}

/* ---- the proxy's own answers ---- */

/* Answers a request that never became an exchange, then closes. */
static int h1_reject(struct conn *c, int status, const char *reason)
{
	struct buf *hb = h1_hb();

	LOG_DEBUG("proxy", "conn %llu: refused with %d: %s",
	          (unsigned long long)c->id, status, reason);
	if (status == 0 || rewrite_synth(hb, status, reason, -1, 1) < 0 ||
	    ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0) {
		conn_close(c, 1, 0);
		return -1;
	}
	c->flags |= CONN_F_FAILED;
	return conn_linger(c);
}

/* Answers the current exchange with the proxy's own response. */
static int h1_synth(struct conn *c, int status, const char *reason)
{
	struct h1x *x = &c->h1;
	struct buf *hb = h1_hb();
	int grpc = (x->flags & H1X_F_GRPC) ? rewrite_grpc_for_status(status)
	                                   : -1;
	int close;

	if (x->flags & H1X_F_HEAD_SENT)
		return h1_abort(c, reason);
	LOG_DEBUG("proxy", "conn %llu: answered %d: %s",
	          (unsigned long long)c->id, status, reason);
	if (x->up) {
		pool_h1_put(x->up, 0);
		x->up = NULL;
	}
	h1_hx_close(x);
	close = x->rst != H1R_DONE || !(x->flags & H1X_F_KEEPALIVE) ||
	        c->px->draining;
	if (rewrite_synth(hb, status, reason, grpc, close) < 0 ||
	    ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0)
		return h1_abort(c, "cannot send the error response");
	x->status = (int16_t)(grpc >= 0 ? 200 : status);
	x->grpc = (int16_t)grpc;
	x->flags |= H1X_F_SYNTH | H1X_F_FAILED | H1X_F_HEAD_SENT;
	if (x->flags & H1X_F_COUNTED)
		pxmetrics_latency(x->m, x->status,
		                  loop_now_ms(&c->px->loop) - x->t0);
	x->sst = H1S_DONE;
	if (close)
		x->flags |= H1X_F_CLOSE;
	return h1_end(c);
}

/* ---- request side ---- */

/* Writing the request up failed: the proxy answers 502 (and goes on with
 * pipelined input when the connection survives). */
#define H1_MAX_ATTEMPTS 3
#define H1_RETRY_ROUTE 0   /* h1_retry modes */
#define H1_RETRY_STALE 1
#define H1_RETRY_UNSENT 2
#define H1_RETRY_REFUSED 3
static int h1_retry(struct conn *c, int mode, int status);

/* The upstream broke before any answer: a stale keep-alive connection or,
 * failing that, a retryable route. */
static int h1_retry_any(struct conn *c)
{
	return h1_retry(c, H1_RETRY_STALE, 502) ||
	       h1_retry(c, H1_RETRY_ROUTE, 502);
}

static int h1_up_write_failed(struct conn *c)
{
	c->h1.flags |= H1X_F_UP_DIRTY;
	if (c->h1.sst == H1S_WAIT && c->h1.rscan == 0 &&
	    h1_retry_any(c))
		return 0;
	return h1_synth(c, 502, "upstream write failed");
}

/*
 * Sends the request again when it may be: the copy of it is whole
 * (H1X_F_REPLAY), it was sent completely, nothing of a response went to
 * the client and fewer than H1_MAX_ATTEMPTS were made; then by <mode>:
 *  - H1_RETRY_ROUTE: its route is retryable and the budget allows it:
 *    another pick of its service;
 *  - H1_RETRY_UNSENT: a balanced request that never reached an
 *    application (connection refused, or the endpoint's proxy could not
 *    connect to its application): another endpoint, outside the budget;
 *  - H1_RETRY_STALE: a reused keep-alive connection closed before any
 *    answer: the same target on a fresh connection, once;
 *  - H1_RETRY_REFUSED: the HTTP/2 stream of an upgraded request was
 *    refused unprocessed (REFUSED_STREAM, GOAWAY, connection never
 *    made): another endpoint when there is one, else the same, once,
 *    outside the budget.
 * The current upstream is dropped (its response never reaches the
 * client); the per-endpoint series count the abandoned attempt with
 * <status> as a failure. Returns 1 when sent again (the exchange goes on), 0 when the
 * caller must go on with the failure it has.
 */
static int h1_retry(struct conn *c, int mode, int status)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct pool_target *t;
	struct sock_addr same;
	int refused, err = 0;

	if (!(x->flags & H1X_F_REPLAY) || x->rst != H1R_DONE ||
	    (x->flags & H1X_F_HEAD_SENT) || x->sst != H1S_WAIT ||
	    x->attempts + 1 >= H1_MAX_ATTEMPTS)
		return 0;
	if (mode == H1_RETRY_STALE) {
		/* the request never reached a server: the same target again,
		 * on a fresh connection, once, outside any budget */
		if (!x->up || x->up->nreq == 0 || x->attempts)
			return 0;
		same = x->up->t->addr;
		pool_target_close_idle(x->up->t);
	} else if (mode == H1_RETRY_REFUSED) {
		if (!x->hreq || x->attempts)
			return 0;
		if (x->lease.svc && svc_failover(&x->lease) == SVC_PICKED &&
		    x->lease.hint == DST_HINT_H2)
			same = x->lease.addr;
		else
			same = x->haddr;
	} else if ((x->flags & H1X_F_STALE_OK) || !x->lease.svc) {
		return 0;
	} else if (mode == H1_RETRY_UNSENT) {
		if (svc_failover(&x->lease) != SVC_PICKED)
			return 0;
		same = x->lease.addr;
	} else if (!(x->flags & H1X_F_RETRYABLE) ||
	           svc_retry(&x->lease, 0, &refused) != SVC_PICKED) {
		return 0;
	} else {
		same = x->lease.addr;
	}
	/* an upgraded request is kept in its HTTP/2 form: it goes again
	 * only to a meshed endpoint */
	if (x->hreq && x->lease.svc && mode != H1_RETRY_REFUSED &&
	    x->lease.hint != DST_HINT_H2)
		return 0;
	x->attempts++;
	if (x->flags & H1X_F_COUNTED) {
		/* per-endpoint series count attempts: the abandoned one ends
		 * here as a failure, the next one counts where it goes */
		struct str auth = pxmetrics_http_authority(x->m);

		pxmetrics_response(x->m, status, -1, 1);
		x->m = x->lease.svc ?
		       svc_lease_metrics(&x->lease, &px->pm, NULL, c->dir,
		                         auth) :
		       pxmetrics_http(&px->pm, x->m, (enum pxm_dir)c->dir,
		                      auth, &same);
		pxmetrics_request(x->m);
	}
	if (x->up) {
		pool_h1_put(x->up, 0);
		x->up = NULL;
	}
	h1_hx_drop(x);
	x->rscan = 0;
	x->flags &= (uint16_t)~(H1X_F_UP_DIRTY | H1X_F_UP_KEEP);
	LOG_DEBUG("proxy", "conn %llu: retry %u",
	          (unsigned long long)c->id, (unsigned)x->attempts);
	if (x->hreq)
		return h1_hx_resend(c, &same);
	t = pool_target_get(px->pool, c->dir, &same);
	if (t)
		x->up = pool_h1_get(t, c, &err);
	if (!x->up) {
		if (t)
			pool_target_maybe_free(t);
		return 0;
	}
	if (ep_send(h1_ev(c), &x->up->ep, buf_data(&x->replay),
	            buf_len(&x->replay)) < 0) {
		x->flags |= H1X_F_UP_DIRTY;
		return 0;
	}
	return 1;
}

static int h1_up_connecting(const struct h1x *x)
{
	return x->up && (x->up->ep.flags & EP_F_CONNECTING);
}

/* The value of header <name> in <h>, or an empty slice. */
static struct str h1_header(const struct http1_head *h, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < h->nheaders; i++)
		if (h->headers[i].name_len == n &&
		    !strncasecmp(h->headers[i].name, name, n))
			return str_make(h->headers[i].value,
			                h->headers[i].value_len);
	return STR_NULL;
}

/*
 * Applies the service profile to the request <h> (its head, rewritten,
 * is <headlen> bytes): arms the copy kept for retries when its route is
 * retryable and its body can be kept, and returns the response timeout in
 * ms (0: none): the shortest of --response-timeout, the route's timeout
 * and a "meshd-timeout" header's (which can only shorten it).
 */
static uint64_t h1_route_policy(struct conn *c, const struct http1_head *h,
                                size_t headlen)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	uint64_t tmo = px->cfg.response_timeout_ms, v;
	uint32_t route_ms = 0;
	int retryable = 0;
	struct str hv;

	if (!x->lease.svc)
		goto stale;
	(void)svc_route(&x->lease, str_make(h->method, h->method_len),
	                str_make(h->path, h->path_len), &route_ms,
	                &retryable);
	hv = h1_header(h, "meshd-timeout");
	if (hv.len && str_to_duration_ms(hv, &v) == 0 && v > 0 &&
	    (!route_ms || v < route_ms))
		route_ms = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	if (route_ms && (!tmo || route_ms < tmo)) {
		tmo = route_ms;
		x->flags |= H1X_F_ROUTE_TMO;
	}
	if (retryable)
		x->flags |= H1X_F_RETRYABLE;
	/* every balanced request keeps its copy (64 KiB at most): one that
	 * never reached an application moves to another endpoint whatever
	 * its route says (h1_retry, H1_RETRY_UNSENT) */
	if (!(x->flags & H1X_F_UPGRADE) &&
	    (x->req.kind == HTTP1_BODY_NONE || x->req.kind ==
	     HTTP1_BODY_CHUNKED || (x->req.kind == HTTP1_BODY_LENGTH &&
	     x->req.remain <= H1_REPLAY_BODY_MAX))) {
		buf_init(&x->replay, headlen + H1_REPLAY_BODY_MAX + 1024);
		x->flags |= H1X_F_REPLAY;
	}
stale:
	/* A reused keep-alive connection may have been closed by the server
	 * just before this request went out: an idempotent request without a
	 * body is then sent again on a fresh connection (h1_retry_stale). Its
	 * head is the only copy needed. */
	if (!(x->flags & H1X_F_REPLAY) && x->up && x->up->nreq > 0 &&
	    x->req.kind == HTTP1_BODY_NONE && !(x->flags & H1X_F_UPGRADE) &&
	    (x->method == HTTP1_M_GET || x->method == HTTP1_M_HEAD ||
	     x->method == HTTP1_M_OPTIONS || x->method == HTTP1_M_TRACE ||
	     x->method == HTTP1_M_PUT || x->method == HTTP1_M_DELETE)) {
		buf_init(&x->replay, headlen);
		x->flags |= H1X_F_REPLAY | H1X_F_STALE_OK;
	}
	return tmo;
}

/*
 * Starts the exchange for the parsed request <h> once routed: metrics,
 * upstream, rewritten head into <bt>. Returns 0, or -1 when the
 * connection ended.
 */
static int h1_begin_routed(struct conn *c, const struct http1_head *h,
                           const struct route_result *res,
                           struct h1_batch *bt)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	const struct sock_addr *addr = res->status ? NULL : &res->ep[0].addr;
	struct str auth = str_make(h->authority, h->authority_len);
	char host[SOCK_ADDR_STRLEN];
	struct pool_target *t;
	struct buf *hb;
	unsigned rw = 0;
	uint64_t tmo;
	int err = 0;

	x->lease = res->lease;
	if (x->lease.svc)
		x->m = svc_lease_metrics(&x->lease, &px->pm, x->m_hint,
		                         c->dir, auth);
	else
		x->m = pxmetrics_http(&px->pm, x->m_hint, (enum pxm_dir)c->dir,
		                      auth, addr);
	pxmetrics_request(x->m);
	x->flags |= H1X_F_COUNTED;
	x->sst = H1S_WAIT;
	if (res->status)
		return h1_synth(c, res->status, res->reason);
	if (!(x->flags & H1X_F_UPGRADE) &&
	    (x->lease.svc ? x->lease.hint == DST_HINT_H2
	                  : res->ep[0].hint == ROUTE_HINT_H2))
		return h1_hx_begin(c, h, x->lease.svc ? &x->lease.addr : addr);
	t = pool_target_get(px->pool, c->dir, addr);
	if (!t)
		return h1_synth(c, 503, "out of memory");
	x->up = pool_h1_get(t, c, &err);
	if (!x->up) {
		pool_target_maybe_free(t);
		return h1_synth(c, 502, err == -ENOBUFS ? "too many upstream "
		                "connections" : "connect failed");
	}
	if (c->dir == ROUTE_INBOUND)
		rw |= RW_INBOUND;
	if (x->req.kind == HTTP1_BODY_CHUNKED)
		rw |= RW_CHUNKED;
	if (x->flags & H1X_F_UPGRADE)
		rw |= RW_UPGRADE;
	if (h->flags & HTTP1_F_TE_TRAILERS)
		rw |= RW_TE_TRAILERS;
	host[0] = '\0';
	if (!h->host_count && sock_addr_format(addr, host, sizeof(host)) < 0)
		host[0] = '\0';
	hb = h1_hb();
	if (rewrite_request(hb, h, rw, host) < 0)
		return h1_synth(c, 431, "request head too large to forward");
	h1_batch_add(bt, buf_data(hb), buf_len(hb));
	x->rst = x->req.done ? H1R_DONE : H1R_BODY;
	tmo = h1_route_policy(c, h, buf_len(hb));
	if (tmo)
		conn_timeout(c, CONN_T_RESPONSE, tmo);
	else
		conn_timeout(c, CONN_T_IDLE, px->cfg.idle_timeout_ms);
	return 0;
}

static void h1_route_done(void *arg, struct route_result *res);

/*
 * Handles a complete request head of <hl> bytes at <data>. Sets *<used> to
 * the bytes consumed (0 while a route lookup is pending: the head stays in
 * the input). Returns 0, or -1 when the connection ended.
 */
static int h1_head(struct conn *c, const char *data, size_t hl,
                   struct h1_batch *bt, size_t *used)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct http1_head h;
	struct route_query q;
	struct route_result res;
	int r;

	http1_head_init(&h, h1_hdrs, px->cfg.max_headers);
	r = http1_parse_request(data, hl, &px->cfg.h1lim, &h);
	if (r == HTTP1_E_CONNECT)
		return h1_reject(c, http1_err_status(r), "CONNECT is not "
		                 "supported");
	if (r < 0)
		return h1_reject(c, http1_err_status(r), http1_strerror(r));
	x->flags = 0;
	x->scan = 0;
	x->method = (uint8_t)h.method_id;
	x->version = (uint8_t)h.version;
	x->t0 = loop_now_ms(&px->loop);
	x->nreq++;
	if (h.flags & HTTP1_F_KEEP_ALIVE)
		x->flags |= H1X_F_KEEPALIVE;
	/* h2c upgrades are not offered upstream (the Upgrade is dropped) */
	if ((h.flags & HTTP1_F_UPGRADE) &&
	    !(h.upgrade_len == 3 && !strncasecmp(h.upgrade, "h2c", 3)))
		x->flags |= H1X_F_UPGRADE;
	if (rewrite_is_grpc(&h))
		x->flags |= H1X_F_GRPC;
	h1_body_init(&x->req, http1_request_body(&h), h.content_length,
	             http1_request_body(&h) == HTTP1_BODY_CHUNKED
	                     ? H1_OUT_CHUNKED : H1_OUT_ASIS, &px->cfg.h1lim);

	memset(&q, 0, sizeof(q));
	q.dir = (enum route_dir)c->dir;
	q.http = 1;
	q.orig_dst = (c->flags & CONN_F_HAS_ORIG) ? &c->orig : NULL;
	q.local = &c->local;
	q.authority = str_make(h.authority, h.authority_len);
	if (route_resolve(&px->cfg.route, &q, &res, &x->rw, h1_route_done,
	                  c) == ROUTE_PENDING) {
		x->flags |= H1X_F_ROUTING;
		*used = 0;
		return 0;
	}
	*used = (size_t)r;
	return h1_begin_routed(c, &h, &res, bt);
}

/* A pending lookup answered: parse the kept head again and go on. */
static void h1_route_done(void *arg, struct route_result *res)
{
	struct conn *c = arg;
	struct h1x *x = &c->h1;
	struct h1_batch bt;
	struct http1_head h;
	const char *data = buf_data(&c->cli.in);
	int r;

	if (conn_closed(c) || !(x->flags & H1X_F_ROUTING)) {
		svc_release(&res->lease, 1);
		return;
	}
	x->flags &= (uint16_t)~H1X_F_ROUTING;
	http1_head_init(&h, h1_hdrs, c->px->cfg.max_headers);
	r = http1_parse_request(data, buf_len(&c->cli.in), &c->px->cfg.h1lim,
	                        &h);
	if (r <= 0) {
		svc_release(&res->lease, 1);
		conn_close(c, 1, 0);
		return;
	}
	h1_batch_init(&bt);
	if (h1_begin_routed(c, &h, res, &bt) < 0)
		return;
	if (h1_up_send(c, &bt) < 0 && h1_up_write_failed(c) < 0)
		return;
	ep_consume_in(&c->cli, (size_t)r);
	if (h1_input(c, buf_data(&c->cli.in), buf_len(&c->cli.in), 1) == 0)
		h1_update(c);
}

/*
 * Consumes client bytes <data>[<len>]: request heads, request bodies.
 * Keeps what cannot be used now (a partial head, pipelined requests) in
 * cli.in. Returns 0, or -1 when the connection ended.
 */
static int h1_input(struct conn *c, const char *data, size_t len,
                    int from_in)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct h1_batch bt;
	ssize_t n;
	size_t used = 0;
	int hl;

	h1_batch_init(&bt);
	while (len > 0) {
		if (x->rst == H1R_HEAD) {
			if (x->sst != H1S_NONE || (x->flags & H1X_F_ROUTING))
				break;  /* pipelined: waits for the exchange */
			hl = http1_head_end(data, len, x->scan < len ? x->scan
			                                              : 0);
			if (hl < 0)
				return h1_reject(c, http1_err_status(hl),
				                 http1_strerror(hl));
			if (hl == 0) {
				x->scan = len;
				if (c->cli.flags & EP_F_EOF) {
					/* a partial head and no more to come */
					conn_close(c, 1, 0);
					return -1;
				}
				if (len >= px->cfg.max_head)
					return h1_reject(c, 431, "request head "
					                 "too large");
				if (!(x->flags & H1X_F_HEAD_TMO)) {
					x->flags |= H1X_F_HEAD_TMO;
					conn_timeout(c, CONN_T_HEADER,
					             px->cfg.header_timeout_ms);
				}
				break;
			}
			if (h1_head(c, data, (size_t)hl, &bt, &used) < 0)
				return -1;
			if (used == 0)
				break;
			data += used;
			len -= used;
			continue;
		}
		if (x->rst != H1R_BODY)
			break;
		n = h1_body(&x->req, data, len, &bt);
		if (n < 0) {
			/* the bad bytes never reach the upstream; the body
			 * is unfinished, so this closes */
			x->flags |= H1X_F_UP_DIRTY;
			h1_batch_init(&bt);
			h1_synth(c, http1_err_status((int)n) ?
			         http1_err_status((int)n) : 400,
			         http1_strerror((int)n));
			return -1;
		}
		data += n;
		len -= (size_t)n;
		if (x->req.done)
			x->rst = H1R_DONE;
		if (h1_batch_full(&bt) && h1_up_send(c, &bt) < 0 &&
		    h1_up_write_failed(c) < 0)
			return -1;
	}
	if ((bt.n || x->hx) && h1_up_send(c, &bt) < 0 &&
	    h1_up_write_failed(c) < 0)
		return -1;
	if (ep_keep_in(&c->cli, data, len, from_in) < 0)
		return h1_reject(c, 431, "pipelined input too large");
	return 0;
}

static void h1_cli_read(struct conn *c)
{
	struct h1x *x = &c->h1;
	const char *data;
	size_t len;
	int from_in;
	ssize_t n = ep_read_any(&c->cli, &data, &len, &from_in);

	if (n == -EAGAIN)
		return;
	if (n == -ENOBUFS) {
		if (x->sst == H1S_NONE)
			h1_reject(c, 431, "request head too large");
		return;
	}
	if (n < 0) {
		h1_client_gone(c, "client read failed");
		return;
	}
	if (n == 0) {
		if (x->rst == H1R_HEAD && x->sst == H1S_NONE &&
		    !(x->flags & H1X_F_ROUTING)) {
			/* pipelined requests read before the end still get
			 * their answers (a partial head closes, h1_input) */
			if (len)
				h1_input(c, data, len, from_in);
			else
				conn_close(c, 0, 0);
		} else if (x->rst == H1R_BODY)
			h1_client_gone(c, "client closed during the request body");
		return;
	}
	conn_touch(c);
	h1_input(c, data, len, from_in);
}

void h1_kick(void *arg)
{
	struct conn *c = arg;
	struct h1x *x = &c->h1;

	if (c->st != CONN_ST_H1 || x->sst != H1S_NONE ||
	    x->rst != H1R_HEAD || !buf_len(&c->cli.in))
		return;
	if (h1_input(c, buf_data(&c->cli.in), buf_len(&c->cli.in), 1) == 0)
		h1_update(c);
}

/* ---- response side ---- */

/*
 * 1 when the 5xx <h> is a meshd proxy's own answer saying it could not
 * connect to its application (its "meshd-proxy-error: connect failed"):
 * the request reached no application, so it may go elsewhere.
 */
static int h1_unsent_answer(const struct http1_head *h)
{
	size_t i;

	if (h->status != 502)
		return 0;
	for (i = 0; i < h->nheaders; i++)
		if (h->headers[i].name_len == 17 &&
		    !strncasecmp(h->headers[i].name, "meshd-proxy-error", 17))
			return h->headers[i].value_len == 14 &&
			       !memcmp(h->headers[i].value, "connect failed", 14);
	return 0;
}

/* The upstream's response cannot be used: 502 (or abort), never reused. */
static int h1_resp_fail(struct conn *c, const char *reason)
{
	c->h1.flags |= H1X_F_UP_DIRTY;
	h1_synth(c, 502, reason);
	return -1;
}

/*
 * A 101 answered an Upgrade: the head and the bytes behind it are in <bt>
 * (sent here), then both connections become one opaque tunnel.
 */
static int h1_upgrade(struct conn *c, struct h1_batch *bt, int from_in)
{
	struct h1x *x = &c->h1;
	struct h1up *up = x->up;

	if (h1_batch_send(c, &c->cli, bt) < 0)
		return h1_client_gone(c, "client write failed");
	if (from_in)
		ep_consume_in(&up->ep, buf_len(&up->ep.in));
	h1_count_response(c, 101, -1, 0);
	x->up = NULL;
	pool_h1_detach(up, &c->srv, conn_srv_cb, &c->m_dst);
	LOG_DEBUG("proxy", "conn %llu: upgraded to a tunnel",
	          (unsigned long long)c->id);
	return tcp_tunnel(c);
}

/*
 * Handles a complete response head of <hl> bytes at <data>. Returns 2 for
 * a 101 to an Upgrade (its head is in h1_hbuf; the caller tunnels), 0 to
 * go on, -1 when the exchange ended (the proxy answered or the connection
 * closed).
 */
static int h1_resp_head(struct conn *c, const char *data, size_t hl,
                        struct h1_batch *bt)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct http1_head h;
	struct buf *hb = &h1_hbuf;
	enum http1_body kind;
	unsigned rw = 0;
	int r, out;

	http1_head_init(&h, h1_hdrs, px->cfg.max_headers);
	r = http1_parse_response(data, hl, &px->cfg.h1lim, &h);
	if (r < 0)
		return h1_resp_fail(c, http1_strerror(r));
	x->rscan = 0;
	if (h.status == 101) {
		if (!(x->flags & H1X_F_UPGRADE) || x->rst != H1R_DONE)
			return h1_resp_fail(c, "unexpected 101 response");
		if (rewrite_response(hb, &h, RW_UPGRADE) < 0)
			return h1_resp_fail(c, "response head too large");
		x->status = 101;
		x->flags |= H1X_F_HEAD_SENT;
		pxmetrics_latency(x->m, 101, loop_now_ms(&px->loop) - x->t0);
		return 2;
	}
	if (h.status < 200) {
		size_t before = buf_len(hb);

		/* interim: forwarded to HTTP/1.1 clients only */
		if (x->version == 11) {
			if (rewrite_response(hb, &h, 0) < 0)
				return h1_resp_fail(c, "response head too "
				                    "large");
			h1_batch_add(bt, buf_data(hb) + before,
			             buf_len(hb) - before);
		}
		return 0;
	}
	if (h.status >= 500 &&
	    (h1_retry(c, h1_unsent_answer(&h) ? H1_RETRY_UNSENT
	                                       : H1_RETRY_ROUTE, h.status)))
		return -1;  /* the old response is dropped with its upstream */
	x->status = (int16_t)h.status;
	x->grpc = (int16_t)rewrite_grpc_status(&h);
	pxmetrics_latency(x->m, h.status, loop_now_ms(&px->loop) - x->t0);
	kind = http1_response_body((enum http1_method)x->method, &h);
	if (http1_response_persistent((enum http1_method)x->method, &h))
		x->flags |= H1X_F_UP_KEEP;
	out = H1_OUT_ASIS;
	if (kind == HTTP1_BODY_CHUNKED) {
		if (x->version == 11) {
			out = H1_OUT_CHUNKED;
			rw |= RW_CHUNKED;
		} else {
			out = H1_OUT_RAW;
			x->flags |= H1X_F_CLOSE;
		}
	} else if (kind == HTTP1_BODY_CLOSE || kind == HTTP1_BODY_TUNNEL) {
		out = H1_OUT_RAW;
		kind = HTTP1_BODY_CLOSE;
		x->flags |= H1X_F_CLOSE;
	}
	if (!(x->flags & H1X_F_KEEPALIVE) || x->rst != H1R_DONE ||
	    px->draining)
		x->flags |= H1X_F_CLOSE;
	if (x->flags & H1X_F_CLOSE)
		rw |= RW_CLOSE;
	else if (x->version == 10)
		rw |= RW_KEEPALIVE10;
	h1_body_init(&x->resp, kind, h.content_length, out, &px->cfg.h1lim);
	{
		size_t before = buf_len(hb);

		if (rewrite_response(hb, &h, rw) < 0)
			return h1_resp_fail(c, "response head too large");
		h1_batch_add(bt, buf_data(hb) + before, buf_len(hb) - before);
	}
	x->flags |= H1X_F_HEAD_SENT;
	x->sst = x->resp.done ? H1S_DONE : H1S_BODY;
	conn_timeout(c, CONN_T_IDLE, px->cfg.idle_timeout_ms);
	return 0;
}

/* Consumes upstream bytes <data>[<len>]. Returns 0 or -1 (ended/moved). */
static int h1_resp_input(struct conn *c, const char *data, size_t len,
                         int from_in)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct h1up *up = x->up;
	struct h1_batch bt;
	ssize_t n;
	int hl, r;

	h1_batch_init(&bt);
	buf_reset(h1_hb());
	while (len > 0) {
		if (x->sst == H1S_WAIT) {
			hl = http1_head_end(data, len, x->rscan < len ? x->rscan
			                                               : 0);
			if (hl < 0)
				return h1_resp_fail(c, http1_strerror(hl));
			if (hl == 0) {
				x->rscan = len;
				if (len >= px->cfg.max_head)
					return h1_resp_fail(c, "response head "
					                    "too large");
				break;
			}
			r = h1_resp_head(c, data, (size_t)hl, &bt);
			if (r < 0)
				return -1;
			data += hl;
			len -= (size_t)hl;
			if (r == 2) {
				/* 101: the head went into h1_hbuf; the rest
				 * is tunnel data */
				struct buf *hb = &h1_hbuf;

				h1_batch_init(&bt);
				h1_batch_add(&bt, buf_data(hb), buf_len(hb));
				h1_batch_add(&bt, data, len);
				h1_upgrade(c, &bt, from_in);
				return -1;
			}
			continue;
		}
		if (x->sst != H1S_BODY) {
			/* bytes past the response: never reuse this one */
			x->flags |= H1X_F_UP_DIRTY;
			len = 0;
			break;
		}
		n = h1_body(&x->resp, data, len, &bt);
		if (n < 0) {
			x->flags |= H1X_F_UP_DIRTY;
			return h1_abort(c, http1_strerror((int)n));
		}
		data += n;
		len -= (size_t)n;
		if (x->resp.done)
			x->sst = H1S_DONE;
		if (h1_batch_full(&bt) &&
		    h1_batch_send(c, &c->cli, &bt) < 0)
			return h1_client_gone(c, "client write failed");
	}
	if (bt.n && h1_batch_send(c, &c->cli, &bt) < 0)
		return h1_client_gone(c, "client write failed");
	if (ep_keep_in(&up->ep, data, len, from_in) < 0)
		return h1_resp_fail(c, "response head too large");
	if (x->sst == H1S_DONE)
		return h1_end(c);
	return 0;
}

static void h1_up_read(struct conn *c)
{
	struct h1x *x = &c->h1;
	struct h1up *up = x->up;
	const char *data;
	size_t len;
	int from_in;
	ssize_t n = ep_read_any(&up->ep, &data, &len, &from_in);

	if (n == -EAGAIN)
		return;
	if (n == -ENOBUFS) {
		x->flags |= H1X_F_UP_DIRTY;
		h1_synth(c, 502, "response head too large");
		return;
	}
	if (n < 0) {
		x->flags |= H1X_F_UP_DIRTY;
		if (x->sst == H1S_WAIT && x->rscan == 0 &&
		    h1_retry_any(c))
			return;
		if (x->sst == H1S_WAIT)
			h1_synth(c, 502, "upstream connection failed");
		else
			h1_abort(c, "upstream connection failed");
		return;
	}
	if (n == 0) {
		x->flags |= H1X_F_UP_DIRTY;
		if (x->sst == H1S_WAIT && x->rscan == 0 &&
		    h1_retry_any(c))
			return;
		if (x->sst == H1S_WAIT) {
			h1_synth(c, 502, "upstream closed the connection");
		} else if (x->sst == H1S_BODY &&
		           x->resp.kind == HTTP1_BODY_CLOSE) {
			/* the close delimits the body */
			x->resp.done = 1;
			x->sst = H1S_DONE;
			h1_end(c);
		} else {
			h1_abort(c, "upstream closed during the response");
		}
		return;
	}
	conn_touch(c);
	h1_resp_input(c, data, len, from_in);
}

void h1_up_io(struct conn *c, int revents)
{
	struct h1x *x = &c->h1;
	ssize_t r;

	if (!x->up || c->st != CONN_ST_H1)
		return;
	if (revents & EV_WRITE) {
		r = ep_flush(h1_ev(c), &x->up->ep);
		if (r < 0) {
			x->flags |= H1X_F_UP_DIRTY;
			if (x->sst == H1S_WAIT && x->rscan == 0 &&
			    h1_retry_any(c))
				return;
			if (x->sst == H1S_WAIT)
				h1_synth(c, 502, "upstream write failed");
			else
				h1_abort(c, "upstream write failed");
			return;
		}
		if (r == 0)
			conn_touch(c);
	}
	if ((revents & EV_READ) && x->up)
		h1_up_read(c);
	if (!conn_closed(c) && c->st == CONN_ST_H1)
		h1_update(c);
}

void h1_up_failed(struct conn *c, int err)
{
	struct h1x *x = &c->h1;

	if (c->st != CONN_ST_H1)
		return;
	x->up = NULL;  /* pool.c closed it */
	/* a connection that could not be made carried nothing */
	if (h1_retry(c, H1_RETRY_UNSENT, err == -ETIMEDOUT ? 504 : 502))
		return;
	if (err == -ETIMEDOUT)
		h1_synth(c, 504, "connect timed out");
	else
		h1_synth(c, 502, "connect failed");
}


/* ---- HTTP/1 over HTTP/2 (meshd-orig-proto, DESIGN.md 4) ----
 *
 * A request to an endpoint that discovery marks meshed (the H2 hint) rides
 * a stream of the pooled HTTP/2 connection to that endpoint's proxy
 * (h2side_x_*), marked "meshd-orig-proto: HTTP/1.x"; that proxy turns it
 * back into HTTP/1.1 for its application. The exchange's state machine is
 * the same as with an HTTP/1 upstream: the head is submitted at once, the
 * body goes decoded (chunk framing stays on this side; the trailer
 * section of a chunked request becomes the stream's trailers) through
 * h1_hx_send, and the response comes back through
 * the callbacks below and is framed for the client (content-length kept,
 * else chunked, else close-delimited for HTTP/1.0). Flow control: body
 * bytes the stream's queue refuses wait in x->hovf and the client is not
 * read meanwhile; response bytes are released to the stream window once
 * the client's socket took them (h1_update). Retries and failover reuse
 * h1_retry with the head kept in x->hreq and the body in x->replay.
 */

#define H1_ORIG_PROTO "meshd-orig-proto"

struct h1_h2req {
	struct h2_request r;
	struct h2_header f[];
};

static const struct h2side_xops h1_hx_ops;

/* Response pieces arrive in callbacks of the shared upstream connection:
 * they are queued (corked) and written once per loop round by h1_flush. */
static void h1_hx_cork(struct conn *c)
{
	if (c->cli.flags & EP_F_CORK)
		return;
	c->cli.flags |= EP_F_CORK;
	loop_defer(&c->px->loop, &c->flush);
}

void h1_flush(void *arg)
{
	struct conn *c = arg;

	if (conn_closed(c) || c->st != CONN_ST_H1 ||
	    !(c->cli.flags & EP_F_CORK))
		return;
	if (ep_flush(h1_ev(c), &c->cli) < 0) {
		h1_client_gone(c, "client write failed");
		return;
	}
	h1_update(c);
}

/* Gives up the stream (not the kept request: a retry may follow). */
static void h1_hx_drop(struct h1x *x)
{
	if (x->hx) {
		h2side_x_close(x->hx);
		x->hx = NULL;
	}
	buf_free(&x->hovf);
	x->hpend = 0;
	x->hend = 0;
}

static void h1_hx_close(struct h1x *x)
{
	h1_hx_drop(x);
	MEM_FREE(&x->hreq);
	buf_free(&x->htrl);
}

static struct str h1_hx_copy(char **p, const char *v, size_t n, int lower)
{
	struct str r = str_make(*p, n);
	size_t i;

	for (i = 0; i < n; i++)
		(*p)[i] = lower && v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] + 32)
		                                             : v[i];
	*p += n;
	return r;
}

/*
 * The HTTP/2 form of request <h> in one allocation (x->hreq): pseudo
 * fields, the fields that are not hop-by-hop nor Host, lowercased, and
 * meshd-orig-proto. <host> stands in for a missing authority. 0, -E2BIG
 * (over the header limits) or -ENOMEM.
 */
static int h1_hx_req_new(struct conn *c, const struct http1_head *h,
                         const char *host)
{
	struct h1x *x = &c->h1;
	const char *auth = h->authority ? h->authority : host;
	size_t alen = h->authority ? h->authority_len : strlen(host);
	const char *path = h->path_len ? h->path : "/";
	size_t plen = h->path_len ? h->path_len : 1;
	static const char *const protos[2][2] = {
		{ "HTTP/1.1", "HTTP/1.1; absolute-form" },
		{ "HTTP/1.0", "HTTP/1.0; absolute-form" },
	};
	const char *proto = protos[x->version == 10]
	                          [h->target_form == HTTP1_T_ABSOLUTE];
	size_t i, nf = 0, bytes, plen2 = strlen(proto);
	struct h1_h2req *q;
	char *p;

	bytes = h->method_len + alen + plen + sizeof(H1_ORIG_PROTO) + plen2 +
	        sizeof("trailers");
	for (i = 0; i < h->nheaders; i++)
		bytes += h->headers[i].name_len + h->headers[i].value_len;
	if (bytes > c->px->cfg.max_head + 256)
		return -E2BIG;
	q = mem_alloc(sizeof(*q) + (h->nheaders + 2) * sizeof(q->f[0]) +
	              bytes);
	if (!q)
		return -ENOMEM;
	p = (char *)&q->f[h->nheaders + 2];
	q->r.method = h1_hx_copy(&p, h->method, h->method_len, 0);
	q->r.scheme = str_make("http", 4);
	q->r.authority = h1_hx_copy(&p, auth, alen, 0);
	q->r.path = h1_hx_copy(&p, path, plen, 0);
	for (i = 0; i < h->nheaders; i++) {
		const struct http1_header *f = &h->headers[i];

		if (http1_is_hop_by_hop(h, f->name, f->name_len) ||
		    http1_name_is(f->name, f->name_len, "host") ||
		    http1_name_is(f->name, f->name_len, H1_ORIG_PROTO))
			continue;
		q->f[nf].name = h1_hx_copy(&p, f->name, f->name_len, 1);
		q->f[nf].value = h1_hx_copy(&p, f->value, f->value_len, 0);
		nf++;
	}
	if (h->flags & HTTP1_F_TE_TRAILERS) {
		q->f[nf].name = str_make("te", 2);
		q->f[nf].value = h1_hx_copy(&p, "trailers", 8, 0);
		nf++;
	}
	q->f[nf].name = h1_hx_copy(&p, H1_ORIG_PROTO,
	                           sizeof(H1_ORIG_PROTO) - 1, 0);
	q->f[nf].value = h1_hx_copy(&p, proto, plen2, 0);
	nf++;
	q->r.fields = q->f;
	q->r.nfields = nf;
	x->hreq = q;
	return 0;
}

/* Opens the stream for the kept head to <to>, with end of request when
 * <end>. 0, or the status to answer with *<why> its meshd-proxy-error. */
static int h1_hx_open(struct conn *c, const struct sock_addr *to, int end,
                      const char **why)
{
	struct h1x *x = &c->h1;
	int st = 502;

	x->hx = h2side_x_open(c->px, c->dir, to, &x->hreq->r, end,
	                      &h1_hx_ops, c, &st, why);
	if (!x->hx)
		return st;
	x->haddr = *to;
	x->hend = (uint8_t)end;
	x->hpend = 0;
	buf_free(&x->hovf);
	return 0;
}

/*
 * Ends the stream with the request's trailer section (x->htrl, validated
 * by the chunked decoder: no framing, routing or connection fields) as
 * HTTP/2 trailers, names lowercased in place. 0 or -errno.
 */
static int h1_hx_end_trailers(struct h1x *x)
{
	char *blk = buf_data(&x->htrl);
	size_t len = buf_len(&x->htrl), i, j;
	struct http1_header *hf;
	struct h2_header *f;
	int n, rc;

	n = http1_parse_fields(blk, len, NULL, 0);
	if (n <= 0)
		return n == 0 ? h2side_x_end(x->hx, NULL, 0) : -EPROTO;
	hf = mem_alloc((size_t)n * (sizeof(*hf) + sizeof(*f)));
	if (!hf)
		return -ENOMEM;
	f = (struct h2_header *)(void *)(hf + n);
	rc = http1_parse_fields(blk, len, hf, (size_t)n);
	if (rc == n) {
		for (i = 0; i < (size_t)n; i++) {
			char *name = (char *)(uintptr_t)hf[i].name;

			for (j = 0; j < hf[i].name_len; j++)
				if (name[j] >= 'A' && name[j] <= 'Z')
					name[j] = (char)(name[j] + 32);
			f[i].name = str_make(name, hf[i].name_len);
			f[i].value = str_make(hf[i].value, hf[i].value_len);
		}
		rc = h2side_x_end(x->hx, f, (size_t)n);
	} else {
		rc = -EPROTO;
	}
	mem_free(hf);
	return rc;
}

/* Ends the stream's request side once the whole body went. */
static int h1_hx_maybe_end(struct conn *c)
{
	struct h1x *x = &c->h1;

	if (!x->hx || x->hend || x->rst != H1R_DONE || buf_len(&x->hovf))
		return 0;
	x->hend = 1;
	if (buf_len(&x->htrl))
		return h1_hx_end_trailers(x) < 0 ? -EPIPE : 0;
	return h2side_x_end(x->hx, NULL, 0) < 0 ? -EPIPE : 0;
}

/* Queues body bytes on the stream; what it refuses waits in hovf. */
static int h1_hx_write(struct conn *c, const char *p, size_t n)
{
	struct h1x *x = &c->h1;
	ssize_t r = 0;

	if (n == 0)
		return 0;
	if (!buf_len(&x->hovf)) {
		r = h2side_x_write(x->hx, p, n);
		if (r < 0)
			return (int)r;
	}
	if ((size_t)r < n) {
		if (x->hovf.limit == 0)
			buf_init(&x->hovf, c->px->cfg.in_limit +
			         EP_SCRATCH_SIZE);
		if (buf_append(&x->hovf, p + r, n - (size_t)r) < 0)
			return -ENOBUFS;
	}
	return 0;
}

static int h1_hx_send(struct conn *c, struct h1_batch *b)
{
	struct h1x *x = &c->h1;
	int i, rc = 0;

	if (x->flags & H1X_F_REPLAY)
		h1_replay_keep(x, b);
	for (i = 0; i < b->n && rc == 0; i++)
		rc = h1_hx_write(c, b->iov[i].iov_base, b->iov[i].iov_len);
	h1_batch_init(b);
	if (rc == 0)
		rc = h1_hx_maybe_end(c);
	return rc;
}

/* A retry: the kept head and body again, on a new stream to <to>.
 * Returns 1 when sent, 0 when not possible. */
static int h1_hx_resend(struct conn *c, const struct sock_addr *to)
{
	struct h1x *x = &c->h1;
	size_t n = buf_len(&x->replay);
	const char *why;

	if (h1_hx_open(c, to, n == 0 && !buf_len(&x->htrl), &why) != 0)
		return 0;
	if ((n && h1_hx_write(c, buf_data(&x->replay), n) < 0) ||
	    h1_hx_maybe_end(c) < 0) {
		x->flags |= H1X_F_UP_DIRTY;
		return 0;
	}
	return 1;
}

/* Starts the upgraded exchange for request <h> to <addr> (the caller has
 * counted it). Returns 0, or -1 when the connection ended. */
static int h1_hx_begin(struct conn *c, const struct http1_head *h,
                       const struct sock_addr *addr)
{
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	char host[SOCK_ADDR_STRLEN];
	const char *why;
	uint64_t tmo;
	int rc;

	host[0] = '\0';
	if (!h->authority && sock_addr_format(addr, host, sizeof(host)) < 0)
		host[0] = '\0';
	rc = h1_hx_req_new(c, h, host);
	if (rc < 0)
		return h1_synth(c, rc == -E2BIG ? 431 : 503, rc == -E2BIG ?
		                "request head too large to forward" :
		                "out of memory");
	/* the body crosses decoded: HTTP/2 frames it; a chunked body's
	 * trailer section is kept for the stream's end */
	x->req.out = H1_OUT_RAW;
	if (x->req.kind == HTTP1_BODY_CHUNKED) {
		buf_free(&x->htrl);
		buf_init(&x->htrl, px->cfg.h1lim.max_trailer ?
		         px->cfg.h1lim.max_trailer : HTTP1_DEF_MAX_TRAILER);
		x->req.trl = &x->htrl;
	}
	x->rst = x->req.done ? H1R_DONE : H1R_BODY;
	rc = h1_hx_open(c, addr, x->req.done, &why);
	if (rc)
		return h1_synth(c, rc, why);
	tmo = h1_route_policy(c, h, 0);
	if (tmo)
		conn_timeout(c, CONN_T_RESPONSE, tmo);
	else
		conn_timeout(c, CONN_T_IDLE, px->cfg.idle_timeout_ms);
	return 0;
}

#define H1_HX_NAME_IS(s, lit) \
	((s).len == sizeof(lit) - 1 && !memcmp((s).p, lit, sizeof(lit) - 1))

static struct str h1_hx_field(const struct h2_header *f, size_t n,
                              const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < n; i++)
		if (f[i].name.len == len && !memcmp(f[i].name.p, name, len))
			return f[i].value;
	return STR_NULL;
}

/* "HTTP/1.1 <status> <reason>\r\n" into <hb>. 0 or -1 (no room). */
static int h1_hx_status_line(struct buf *hb, int status)
{
	const char *reason = rewrite_reason(status);
	size_t rl = strlen(reason);
	char *p = buf_reserve(hb, 9 + 4 + rl + 2);

	if (!p || status < 100 || status > 999)
		return -1;
	memcpy(p, "HTTP/1.1 ", 9);
	p[9] = (char)('0' + status / 100);
	p[10] = (char)('0' + status / 10 % 10);
	p[11] = (char)('0' + status % 10);
	p[12] = ' ';
	memcpy(p + 13, reason, rl);
	memcpy(p + 13 + rl, "\r\n", 2);
	buf_produce(hb, 13 + rl + 2);
	return 0;
}

/* Appends "name: value" lines for <f>[<n>] to <hb>, leaving out
 * meshd-orig-proto and what HTTP/1 frames itself. */
static int h1_hx_fields(struct buf *hb, const struct h2_header *f, size_t n,
                        int skip_length)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (H1_HX_NAME_IS(f[i].name, H1_ORIG_PROTO) ||
		    (skip_length && H1_HX_NAME_IS(f[i].name, "content-length")))
			continue;
		if (buf_append(hb, f[i].name.p, f[i].name.len) < 0 ||
		    buf_append(hb, ": ", 2) < 0 ||
		    buf_append(hb, f[i].value.p, f[i].value.len) < 0 ||
		    buf_append(hb, "\r\n", 2) < 0)
			return -1;
	}
	return 0;
}

/* A grpc-status value (one or two digits), or -1. */
static int h1_hx_grpc(struct str v)
{
	uint64_t g;

	if (v.len == 0 || v.len > 2 || str_to_u64(v, &g) < 0)
		return -1;
	return (int)g;
}

static int h1_hx_on_head(void *o, const struct h2_head *hd, int end)
{
	struct conn *c = o;
	struct proxy *px = c->px;
	struct h1x *x = &c->h1;
	struct buf *hb = h1_hb();
	struct str cl, err, gs;
	uint64_t len = 0;
	size_t i;
	int nobody, out = H1_OUT_ASIS, kind = HTTP1_BODY_LENGTH;

	if (hd->status == 101) {
		h1_resp_fail(c, "unexpected 101 response");
		return 0;
	}
	h1_hx_cork(c);
	if (hd->status < 200) {
		/* interim: forwarded to HTTP/1.1 clients only */
		if (x->version == 11 &&
		    (h1_hx_status_line(hb, hd->status) < 0 ||
		     h1_hx_fields(hb, hd->fields, hd->nfields, 0) < 0 ||
		     buf_append(hb, "\r\n", 2) < 0 ||
		     ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0))
			h1_client_gone(c, "client write failed");
		return 0;
	}
	if (x->flags & H1X_F_HEAD_SENT) {
		h1_abort(c, "a second response head");
		return 0;
	}
	err = cl = gs = STR_NULL;
	for (i = 0; i < hd->nfields; i++) {
		const struct h2_header *f = &hd->fields[i];

		if (H1_HX_NAME_IS(f->name, "content-length"))
			cl = f->value;
		else if (H1_HX_NAME_IS(f->name, "grpc-status"))
			gs = f->value;
		else if (H1_HX_NAME_IS(f->name, RW_HDR_PROXY_ERROR))
			err = f->value;
	}
	if (hd->status >= 500 &&
	    h1_retry(c, hd->status == 502 && str_eq_cstr(err, "connect failed")
	                ? H1_RETRY_UNSENT : H1_RETRY_ROUTE, hd->status))
		return 0;  /* this stream was given up */
	x->status = (int16_t)hd->status;
	x->grpc = (int16_t)h1_hx_grpc(gs);
	pxmetrics_latency(x->m, hd->status, loop_now_ms(&px->loop) - x->t0);
	nobody = x->method == HTTP1_M_HEAD || hd->status == 204 ||
	         hd->status == 304;
	if (nobody) {
		kind = HTTP1_BODY_NONE;
	} else if (cl.len && str_to_u64(cl, &len) == 0) {
		kind = HTTP1_BODY_LENGTH;
	} else if (end) {
		kind = HTTP1_BODY_LENGTH;   /* "content-length: 0" below */
		cl = STR_NULL;
	} else if (x->version == 11) {
		kind = HTTP1_BODY_CHUNKED;
		out = H1_OUT_CHUNKED;
	} else {
		kind = HTTP1_BODY_CLOSE;
		out = H1_OUT_RAW;
		x->flags |= H1X_F_CLOSE;
	}
	if (!(x->flags & H1X_F_KEEPALIVE) || x->rst != H1R_DONE ||
	    px->draining)
		x->flags |= H1X_F_CLOSE;
	if (h1_hx_status_line(hb, hd->status) < 0 ||
	    h1_hx_fields(hb, hd->fields, hd->nfields,
	                 kind != HTTP1_BODY_NONE && !cl.len) < 0 ||
	    (kind == HTTP1_BODY_LENGTH && !cl.len &&
	     buf_append_str(hb, "content-length: 0\r\n") < 0) ||
	    (out == H1_OUT_CHUNKED &&
	     buf_append_str(hb, "transfer-encoding: chunked\r\n") < 0) ||
	    ((x->flags & H1X_F_CLOSE) &&
	     buf_append_str(hb, "connection: close\r\n") < 0) ||
	    (!(x->flags & H1X_F_CLOSE) && x->version == 10 &&
	     buf_append_str(hb, "connection: keep-alive\r\n") < 0) ||
	    buf_append(hb, "\r\n", 2) < 0) {
		h1_resp_fail(c, "response head too large");
		return 0;
	}
	h1_body_init(&x->resp, (enum http1_body)kind, len, out,
	             &px->cfg.h1lim);
	x->resp.done = 0;
	x->flags |= H1X_F_HEAD_SENT;
	x->sst = H1S_BODY;
	conn_timeout(c, CONN_T_IDLE, px->cfg.idle_timeout_ms);
	if (ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0)
		h1_client_gone(c, "client write failed");
	return 0;
}

static int h1_hx_on_data(void *o, const char *p, size_t n)
{
	struct conn *c = o;
	struct h1x *x = &c->h1;
	struct h1_batch bt;
	int rc = 0;

	x->hpend += (uint32_t)n;
	h1_hx_cork(c);
	if (x->sst == H1S_BODY && x->resp.kind != HTTP1_BODY_NONE) {
		h1_batch_init(&bt);
		if (x->resp.out == H1_OUT_CHUNKED) {
			char *line = bt.lines[bt.nl++];

			h1_batch_add(&bt, line, http1_chunk_line(line, n));
			h1_batch_add(&bt, p, n);
			h1_batch_add(&bt, h1_crlf, 2);
		} else {
			h1_batch_add(&bt, p, n);
		}
		rc = h1_batch_send(c, &c->cli, &bt);
	}
	if (rc < 0) {
		h1_client_gone(c, "client write failed");
		return 0;
	}
	conn_touch(c);
	if (!ep_out_pending(&c->cli)) {
		h2side_x_consume(x->hx, x->hpend);
		x->hpend = 0;
	}
	return 0;
}

static int h1_hx_on_trailers(void *o, const struct h2_header *f, size_t n)
{
	struct conn *c = o;
	struct h1x *x = &c->h1;
	struct buf *hb = h1_hb();
	int g = h1_hx_grpc(h1_hx_field(f, n, "grpc-status"));

	if (g >= 0)
		x->grpc = (int16_t)g;
	if (x->sst != H1S_BODY || x->resp.out != H1_OUT_CHUNKED)
		return 0;  /* no way to carry them: dropped */
	h1_hx_cork(c);
	x->resp.last_sent = 1;
	if (buf_append(hb, h1_last, 3) < 0 ||
	    h1_hx_fields(hb, f, n, 0) < 0 ||
	    ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0)
		h1_client_gone(c, "client write failed");
	return 0;
}

static int h1_hx_on_end(void *o)
{
	struct conn *c = o;
	struct h1x *x = &c->h1;
	struct buf *hb = h1_hb();

	if (x->sst != H1S_BODY) {
		h1_synth(c, 502, "upstream response without a final head");
		return 0;
	}
	h1_hx_cork(c);
	if (x->resp.out == H1_OUT_CHUNKED &&
	    ((!x->resp.last_sent && buf_append(hb, h1_last, 3) < 0) ||
	     buf_append(hb, h1_crlf, 2) < 0 ||
	     ep_send(h1_ev(c), &c->cli, buf_data(hb), buf_len(hb)) < 0)) {
		h1_client_gone(c, "client write failed");
		return 0;
	}
	x->resp.done = 1;
	x->sst = H1S_DONE;
	h1_end(c);
	return 0;
}

static void h1_hx_on_close(void *o, int reset, uint32_t code)
{
	struct conn *c = o;
	struct h1x *x = &c->h1;

	(void)reset;
	x->hx = NULL;  /* gone with this call */
	x->flags |= H1X_F_UP_DIRTY;
	if (!(x->flags & H1X_F_HEAD_SENT)) {
		if (x->sst == H1S_WAIT &&
		    ((code == H2_REFUSED_STREAM &&
		      h1_retry(c, H1_RETRY_REFUSED, 503)) ||
		     h1_retry(c, H1_RETRY_ROUTE, 502)))
			return;
		h1_synth(c, code == H2_REFUSED_STREAM ? 503 : 502,
		         "upstream reset the stream");
		return;
	}
	if (x->sst != H1S_DONE)
		h1_abort(c, "upstream reset the stream");
}

static void h1_hx_on_writable(void *o)
{
	struct conn *c = o;
	struct h1x *x = &c->h1;
	ssize_t r;

	if (buf_len(&x->hovf)) {
		r = h2side_x_write(x->hx, buf_data(&x->hovf),
		                   buf_len(&x->hovf));
		if (r > 0)
			buf_consume(&x->hovf, (size_t)r);
		if (!buf_len(&x->hovf))
			buf_free(&x->hovf);
	}
	if (h1_hx_maybe_end(c) < 0) {
		h1_synth(c, 502, "upstream write failed");
		return;
	}
	h1_update(c);
}

static const struct h2side_xops h1_hx_ops = {
	.on_head = h1_hx_on_head,
	.on_data = h1_hx_on_data,
	.on_trailers = h1_hx_on_trailers,
	.on_end = h1_hx_on_end,
	.on_close = h1_hx_on_close,
	.on_writable = h1_hx_on_writable,
};

/* ---- events ---- */

static void h1_update(struct conn *c)
{
	struct h1x *x = &c->h1;
	struct ev_loop *ev = h1_ev(c);
	int ce = c->cli.events & EV_WRITE, ue;

	if (c->st != CONN_ST_H1)
		return;
	if (!(c->cli.flags & EP_F_EOF) && !(x->flags & H1X_F_ROUTING)) {
		if (x->rst == H1R_HEAD && x->sst == H1S_NONE)
			ce |= EV_READ;
		else if (x->rst == H1R_BODY)
			ce |= ((x->up && !h1_up_connecting(x) &&
			        !ep_out_pending(&x->up->ep)) ||
			       (x->hx && !buf_len(&x->hovf))) ? EV_READ : 0;
		else if (buf_len(&c->cli.in) < c->cli.in.limit / 2)
			/* while a response is awaited the client stays
			 * watched (no interest change per request, early
			 * EOF); what it pipelines waits in cli.in, bounded */
			ce |= EV_READ;
	}
	ep_want(ev, &c->cli, ce);
	if (x->hx && x->hpend && !ep_out_pending(&c->cli)) {
		/* the client took what the stream delivered: more may come */
		h2side_x_consume(x->hx, x->hpend);
		x->hpend = 0;
	}
	if (x->up && !h1_up_connecting(x)) {
		ue = x->up->ep.events & EV_WRITE;
		if ((x->sst == H1S_WAIT || x->sst == H1S_BODY) &&
		    !ep_out_pending(&c->cli))
			ue |= EV_READ;
		ep_want(ev, &x->up->ep, ue);
	}
}

int h1_start(struct conn *c, const char *data, size_t len, int from_in)
{
	c->st = CONN_ST_H1;
	h1_x_reset(c);
	c->h1.nreq = 0;
	c->h1.m_hint = NULL;
	conn_timeout(c, CONN_T_KEEPALIVE, c->px->cfg.keepalive_timeout_ms);
	if (h1_input(c, data, len, from_in) < 0)
		return -1;
	h1_update(c);
	return 0;
}

void h1_on_cli(struct conn *c, int revents)
{
	ssize_t r;

	if (revents & EV_WRITE) {
		r = ep_flush(h1_ev(c), &c->cli);
		if (r < 0) {
			h1_client_gone(c, "client write failed");
			return;
		}
		if (r == 0)
			conn_touch(c);
	}
	if (revents & EV_READ)
		h1_cli_read(c);
	if (!conn_closed(c))
		h1_update(c);
}

void h1_on_timeout(struct conn *c, int kind)
{
	struct h1x *x = &c->h1;

	switch (kind) {
	case CONN_T_HEADER:
		h1_reject(c, 408, "request head timed out");
		return;
	case CONN_T_KEEPALIVE:
		conn_close(c, 0, 0);
		return;
	case CONN_T_RESPONSE:
		x->flags |= H1X_F_UP_DIRTY;
		if (x->flags & H1X_F_ROUTE_TMO) {
			svc_count_timeout(&x->lease);
			h1_synth(c, 504, "route timeout");
		} else {
			h1_synth(c, 504, "response timed out");
		}
		return;
	default:
		x->flags |= H1X_F_UP_DIRTY;
		if (x->sst == H1S_NONE)
			conn_close(c, 0, 0);
		else
			h1_synth(c, 504, "idle timeout");
		return;
	}
}

void h1_drain(struct conn *c)
{
	struct h1x *x = &c->h1;

	if (x->sst == H1S_NONE && !(x->flags & H1X_F_ROUTING)) {
		conn_close(c, 0, 0);
		return;
	}
	x->flags |= H1X_F_CLOSE;
}
