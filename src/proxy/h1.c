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

#include "core/log.h"
#include "core/util.h"
#include "proxy/conn.h"
#include "proxy/h1.h"
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
 *    answer: the same target on a fresh connection, once.
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
	x->rscan = 0;
	x->flags &= (uint16_t)~(H1X_F_UP_DIRTY | H1X_F_UP_KEEP);
	LOG_DEBUG("proxy", "conn %llu: retry %u",
	          (unsigned long long)c->id, (unsigned)x->attempts);
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
	if (x->up && h1_batch_send(c, &x->up->ep, &bt) < 0 &&
	    h1_up_write_failed(c) < 0)
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
		if (h1_batch_full(&bt) && x->up &&
		    h1_batch_send(c, &x->up->ep, &bt) < 0 &&
		    h1_up_write_failed(c) < 0)
			return -1;
	}
	if (bt.n && x->up && h1_batch_send(c, &x->up->ep, &bt) < 0 &&
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
		conn_close(c, 1, 0);
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
			h1_abort(c, "client closed during the request body");
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
		return h1_abort(c, "client write failed");
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
			return h1_abort(c, "client write failed");
	}
	if (bt.n && h1_batch_send(c, &c->cli, &bt) < 0)
		return h1_abort(c, "client write failed");
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
			ce |= (x->up && !h1_up_connecting(x) &&
			       !ep_out_pending(&x->up->ep)) ? EV_READ : 0;
		else if (buf_len(&c->cli.in) < c->cli.in.limit / 2)
			/* while a response is awaited the client stays
			 * watched (no interest change per request, early
			 * EOF); what it pipelines waits in cli.in, bounded */
			ce |= EV_READ;
	}
	ep_want(ev, &c->cli, ce);
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
			conn_close(c, 1, 0);
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
