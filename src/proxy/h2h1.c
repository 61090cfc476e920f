/*
 * h2h1: the inbound HTTP/1-over-HTTP/2 exchange (see h2h1.h).
 *
 * IMPLEMENTATION NOTES
 * Request side. Body bytes go straight to the upstream socket (chunk
 * framing around them with writev) while its output buffer is empty and
 * the connect is done; otherwise they wait in <hold>, unconsumed, so the
 * client's stream window bounds <hold>. Each time the output buffer
 * drains, <hold> goes out in pieces of at most H2H1_PIECE bytes (one
 * chunk each) and those bytes are reported consumed. The end of the
 * request (last chunk with the trailers kept in <trl>) follows <hold>.
 *
 * Response side. The head is parsed strictly (core/http1) once
 * http1_head_end finds its end; the body is decoded as it arrives and
 * handed to ops->data. What ops->data refuses is kept in <rhold> (at most
 * one read) and the rest of the input in the upstream's <in> buffer; the
 * socket is not read until <rhold> drained (h2h1_resume). Chunked trailer
 * bytes collect in <rtrl> (bounded by the chunked decoder's trailer limit)
 * and become h2 trailers at the end.
 *
 * Every ops call may release the exchange: its callers check <owner>
 * afterwards and return at once when it is gone. The upstream connection
 * and its buffers may be gone too then; buffers of the exchange itself
 * stay until the deferred free.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/h2h1.h"
#include "proxy/pool.h"
#include "proxy/proxy_main.h"

#define H2H1_MAX_HEADERS 1024
#define H2H1_MAX_FIELDS 256
/* Request body bytes sent per chunk when <hold> drains. */
#define H2H1_PIECE (16 * 1024)
/* Request bytes waiting: the client's window bounds them (2 windows
 * and a frame, as h2side's overflow). */
#define H2H1_HOLD_MAX (2 * 65535 + 16384)
#define H2H1_TRL_MAX (16 * 1024)

enum { H2H1_R_HEAD = 0, H2H1_R_BODY, H2H1_R_DONE };

struct h2h1 {
	struct proxy *px;
	struct mem_pool *mp;
	struct h1up *up;             /* NULL once given back or closed */
	const struct h2h1_ops *ops;
	void *owner;                 /* NULL once released */
	uint8_t head_method;         /* the request is HEAD */
	uint8_t chunked;             /* request body goes chunked */
	uint8_t nobody;              /* request has no body at all */
	uint8_t req_end;             /* the client ended the request */
	uint8_t req_done;            /* all of the request was written */
	uint8_t rst;                 /* H2H1_R_* */
	uint8_t kind;                /* enum http1_body of the response */
	uint8_t keep;                /* the response allows reuse */
	uint8_t paused;              /* ops->data refused: wait for resume */
	uint8_t final;               /* a final head went down */
	size_t rscan;                /* response head bytes already scanned */
	uint64_t remain;             /* HTTP1_BODY_LENGTH */
	struct http1_chunked ch;     /* HTTP1_BODY_CHUNKED */
	struct buf hold;             /* request body not sent yet */
	struct buf trl;              /* request trailer lines */
	struct buf rhold;            /* response body refused by ops->data */
	struct buf rtrl;             /* response trailer section */
	struct loop_defer reap;
};

static struct http1_header h2h1_hdrs[H2H1_MAX_HEADERS];
static struct h2_header h2h1_fields[H2H1_MAX_FIELDS + 1];
static char h2h1_names[EP_HSCRATCH_SIZE];
static char h2h1_hstore[EP_HSCRATCH_SIZE];

static const char h2h1_crlf[] = "\r\n";

/* ---- pure helpers ---- */

int h2h1_orig_proto(struct str v, int *absolute)
{
	struct str rest;
	int ver;

	v = str_trim_ows(v);
	if (v.len < 8)
		return -1;
	if (!memcmp(v.p, "HTTP/1.1", 8))
		ver = 11;
	else if (!memcmp(v.p, "HTTP/1.0", 8))
		ver = 10;
	else
		return -1;
	*absolute = 0;
	rest = str_trim_ows(str_sub(v, 8, v.len - 8));
	if (rest.len == 0)
		return ver;
	if (rest.p[0] != ';')
		return -1;
	rest = str_trim_ows(str_sub(rest, 1, rest.len - 1));
	if (!str_eq_cstr(rest, "absolute-form"))
		return -1;
	*absolute = 1;
	return ver;
}

int h2h1_req_field_dropped(struct str name)
{
	static const char *const drop[] = {
		"host", "cookie", "connection", "keep-alive",
		"proxy-connection", "transfer-encoding", "upgrade", H2H1_HDR,
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(drop); i++)
		if (str_ieq_cstr(name, drop[i]))
			return 1;
	return 0;
}

static int h2h1_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int h2h1_token(struct str s)
{
	size_t i;

	if (s.len == 0)
		return 0;
	for (i = 0; i < s.len; i++)
		if (!h2h1_tchar((unsigned char)s.p[i]))
			return 0;
	return 1;
}

/* Visible ASCII only (a request target, an authority). */
static int h2h1_visible(struct str s)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] <= 0x20 ||
		    (unsigned char)s.p[i] >= 0x7f)
			return 0;
	return 1;
}

/* A field value: no CR, LF, NUL (obs-text is let through as h2 does). */
static int h2h1_value_ok(struct str s)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if (s.p[i] == '\r' || s.p[i] == '\n' || s.p[i] == '\0')
			return 0;
	return 1;
}

static int h2h1_put(struct buf *b, const char *p, size_t n)
{
	return n ? buf_append(b, p, n) : 0;
}

static int h2h1_put_field(struct buf *b, struct str name, struct str value)
{
	if (h2h1_put(b, name.p, name.len) < 0 || buf_append(b, ": ", 2) < 0 ||
	    h2h1_put(b, value.p, value.len) < 0 ||
	    buf_append(b, h2h1_crlf, 2) < 0)
		return -1;
	return 0;
}

int h2h1_write_head(struct buf *out, const struct h2h1_req *rq)
{
	size_t start = buf_len(out), i;
	struct str auth = rq->authority, path = rq->path;
	int cookies = 0, first = 1;

	if (!h2h1_token(rq->method) || !h2h1_visible(auth) ||
	    !h2h1_visible(path))
		goto bad;
	if (path.len == 0)
		path = STR_LIT("/");
	if (h2h1_put(out, rq->method.p, rq->method.len) < 0 ||
	    buf_append(out, " ", 1) < 0)
		goto bad;
	if ((rq->flags & H2H1_F_ABSOLUTE) && auth.len && path.p[0] == '/' &&
	    (buf_append(out, "http://", 7) < 0 ||
	     h2h1_put(out, auth.p, auth.len) < 0))
		goto bad;
	if (h2h1_put(out, path.p, path.len) < 0 ||
	    buf_append(out, " HTTP/1.1\r\n", 11) < 0 ||
	    h2h1_put_field(out, STR_LIT("Host"), auth) < 0)
		goto bad;
	for (i = 0; i < rq->nfields; i++) {
		const struct h2_header *h = &rq->fields[i];

		if (!h2h1_token(h->name) || !h2h1_value_ok(h->value))
			goto bad;
		if (str_ieq_cstr(h->name, "cookie"))
			cookies++;
		if (h2h1_req_field_dropped(h->name))
			continue;
		if (h2h1_put_field(out, h->name, h->value) < 0)
			goto bad;
	}
	if (cookies) {
		/* RFC 9113 8.2.3: the crumbs become one field again */
		if (buf_append(out, "cookie: ", 8) < 0)
			goto bad;
		for (i = 0; i < rq->nfields; i++) {
			const struct h2_header *h = &rq->fields[i];

			if (!str_ieq_cstr(h->name, "cookie"))
				continue;
			if (!first && buf_append(out, "; ", 2) < 0)
				goto bad;
			first = 0;
			if (h2h1_put(out, h->value.p, h->value.len) < 0)
				goto bad;
		}
		if (buf_append(out, h2h1_crlf, 2) < 0)
			goto bad;
	}
	if ((rq->flags & H2H1_F_CHUNKED) &&
	    buf_append(out, "transfer-encoding: chunked\r\n", 28) < 0)
		goto bad;
	if (buf_append(out, h2h1_crlf, 2) < 0)
		goto bad;
	return 0;
bad:
	out->tail = out->head + start;
	return -1;
}

ssize_t h2h1_resp_fields(const struct http1_header *in, size_t nin,
                         const struct http1_head *hop, int mark,
                         struct h2_header *f, size_t cap, char *names,
                         size_t ncap)
{
	size_t n = 0, used = 0, i, j;

	for (i = 0; i < nin; i++) {
		const struct http1_header *h = &in[i];

		if (http1_is_hop_by_hop(hop, h->name, h->name_len) ||
		    http1_name_is(h->name, h->name_len, H2H1_HDR))
			continue;
		if (n >= cap || h->name_len > ncap - used)
			return -1;
		for (j = 0; j < h->name_len; j++) {
			char ch = h->name[j];

			names[used + j] = (ch >= 'A' && ch <= 'Z')
			                  ? (char)(ch - 'A' + 'a') : ch;
		}
		f[n].name = str_make(names + used, h->name_len);
		f[n].value = str_make(h->value, h->value_len);
		used += h->name_len;
		n++;
	}
	if (mark) {
		if (n >= cap)
			return -1;
		f[n].name = STR_LIT(H2H1_HDR);
		f[n].value = STR_LIT(H2H1_PROTO_11);
		n++;
	}
	return (ssize_t)n;
}

/* ---- the exchange ---- */

static void h2h1_io(void *owner, int revents);
static void h2h1_failed(void *owner, int err);
static void h2h1_update(struct h2h1 *hx);

static const struct h1up_ops h2h1_up_ops = {
	.io = h2h1_io,
	.failed = h2h1_failed,
};

size_t h2h1_size(void)
{
	return sizeof(struct h2h1);
}

static struct ev_loop *h2h1_ev(const struct h2h1 *hx)
{
	return hx->px->loop.ev;
}

static void h2h1_reap(void *arg)
{
	struct h2h1 *hx = arg;

	buf_free(&hx->hold);
	buf_free(&hx->trl);
	buf_free(&hx->rhold);
	buf_free(&hx->rtrl);
	mem_pool_put(hx->mp, hx);
}

static int h2h1_connecting(const struct h2h1 *hx)
{
	return hx->up && (hx->up->ep.flags & EP_F_CONNECTING);
}

/* Gives the upstream connection back (<reuse>) or closes it. */
static void h2h1_up_put(struct h2h1 *hx, int reuse)
{
	struct h1up *up = hx->up;

	if (!up)
		return;
	hx->up = NULL;
	pool_h1_put(up, reuse);
}

/* The exchange failed: upstream closed, the owner told. */
static void h2h1_fail(struct h2h1 *hx, int status, const char *reason)
{
	LOG_DEBUG("proxy", "h2h1 exchange failed: %s", reason);
	h2h1_up_put(hx, 0);
	hx->rst = H2H1_R_DONE;
	if (hx->owner)
		hx->ops->fail(hx->owner, status, reason);
}

struct h2h1 *h2h1_open(struct proxy *px, struct mem_pool *mp,
                       struct pool_target *t, const struct h2h1_req *rq,
                       const struct h2h1_ops *ops, void *owner, int *err)
{
	struct h2h1 *hx;
	struct buf hb;
	int e = 0;

	buf_init_fixed(&hb, h2h1_hstore, sizeof(h2h1_hstore));
	if (h2h1_write_head(&hb, rq) < 0) {
		*err = -EINVAL;
		return NULL;
	}
	hx = mem_pool_zget(mp);
	if (!hx) {
		*err = -ENOBUFS;
		return NULL;
	}
	hx->px = px;
	hx->mp = mp;
	hx->ops = ops;
	hx->owner = owner;
	hx->head_method = str_eq_cstr(rq->method, "HEAD");
	hx->chunked = (rq->flags & H2H1_F_CHUNKED) != 0;
	hx->nobody = (rq->flags & H2H1_F_NOBODY) != 0;
	buf_init(&hx->hold, rq->hold_max ? rq->hold_max : H2H1_HOLD_MAX);
	buf_init(&hx->trl, H2H1_TRL_MAX);
	/* one read, or what of the upstream's input buffer was left */
	buf_init(&hx->rhold, MAX((size_t)EP_SCRATCH_SIZE, px->cfg.in_limit));
	buf_init(&hx->rtrl, px->cfg.h1lim.max_trailer ?
	                    px->cfg.h1lim.max_trailer + 2 :
	                    HTTP1_DEF_MAX_TRAILER + 2);
	loop_defer_init(&hx->reap, h2h1_reap, hx);
	hx->up = pool_h1_get_owner(t, &h2h1_up_ops, hx, &e);
	if (!hx->up) {
		mem_pool_put(mp, hx);
		*err = e ? e : -ENOBUFS;
		return NULL;
	}
	if (ep_send(h2h1_ev(hx), &hx->up->ep, buf_data(&hb),
	            buf_len(&hb)) < 0) {
		h2h1_up_put(hx, 0);
		mem_pool_put(mp, hx);
		*err = -ENOBUFS;
		return NULL;
	}
	if (hx->nobody)
		hx->req_end = hx->req_done = 1;
	h2h1_update(hx);
	return hx;
}

/* Writes the last chunk and the kept trailers (chunked) and marks the
 * request written. 0 or -errno. */
static int h2h1_req_finish(struct h2h1 *hx)
{
	struct iovec v[3];
	int n = 0;

	if (hx->chunked) {
		v[n].iov_base = (void *)"0\r\n";
		v[n++].iov_len = 3;
		if (buf_len(&hx->trl)) {
			v[n].iov_base = buf_data(&hx->trl);
			v[n++].iov_len = buf_len(&hx->trl);
		}
		v[n].iov_base = (void *)h2h1_crlf;
		v[n++].iov_len = 2;
		if (ep_sendv(h2h1_ev(hx), &hx->up->ep, v, n) < 0)
			return -EIO;
	}
	buf_free(&hx->trl);
	hx->req_done = 1;
	return 0;
}

/* Sends <p>[<n>] (one chunk when chunked). 0 or -errno. */
static int h2h1_req_send(struct h2h1 *hx, const char *p, size_t n)
{
	char line[HTTP1_CHUNK_LINE_MAX];
	struct iovec v[3];
	int k = 0;

	if (hx->chunked) {
		v[k].iov_base = line;
		v[k++].iov_len = http1_chunk_line(line, n);
	}
	v[k].iov_base = (void *)p;
	v[k++].iov_len = n;
	if (hx->chunked) {
		v[k].iov_base = (void *)h2h1_crlf;
		v[k++].iov_len = 2;
	}
	return ep_sendv(h2h1_ev(hx), &hx->up->ep, v, k) < 0 ? -EIO : 0;
}

/* 1 when request bytes may go to the socket now. */
static int h2h1_req_can_send(const struct h2h1 *hx)
{
	return hx->up && !h2h1_connecting(hx) &&
	       !ep_out_pending(&hx->up->ep);
}

/* Moves what waits of the request to the socket while it takes it.
 * 0, or -1 when the exchange failed (the owner was told). */
static int h2h1_req_push(struct h2h1 *hx)
{
	size_t n;

	while (hx->owner && !hx->req_done && h2h1_req_can_send(hx)) {
		n = buf_len(&hx->hold);
		if (n == 0) {
			if (!hx->req_end)
				return 0;
			if (h2h1_req_finish(hx) < 0)
				goto fail;
			return 0;
		}
		if (n > H2H1_PIECE)
			n = H2H1_PIECE;
		if (h2h1_req_send(hx, buf_data(&hx->hold), n) < 0)
			goto fail;
		buf_consume(&hx->hold, n);
		if (buf_len(&hx->hold) == 0)
			buf_free(&hx->hold);
		hx->ops->consumed(hx->owner, n);
	}
	return 0;
fail:
	h2h1_fail(hx, 502, "upstream write failed");
	return -1;
}

int h2h1_req_data(struct h2h1 *hx, const char *p, size_t n)
{
	if (!hx->owner || n == 0)
		return 0;
	if (hx->req_end || hx->nobody)
		return -1;   /* h2 framing forbids it; be safe */
	if (!hx->up) {
		/* the response is over (or failed): nothing takes it */
		hx->ops->consumed(hx->owner, n);
		return 0;
	}
	if (buf_len(&hx->hold) == 0 && h2h1_req_can_send(hx)) {
		if (h2h1_req_send(hx, p, n) < 0) {
			h2h1_fail(hx, 502, "upstream write failed");
			return 0;
		}
		hx->ops->consumed(hx->owner, n);
		return 0;
	}
	return buf_append(&hx->hold, p, n) < 0 ? -1 : 0;
}

int h2h1_req_end(struct h2h1 *hx, const struct h2_header *f, size_t n)
{
	size_t i;

	if (!hx->owner || hx->req_end)
		return 0;
	hx->req_end = 1;
	for (i = 0; hx->chunked && i < n; i++) {
		if (!h2h1_token(f[i].name) || !h2h1_value_ok(f[i].value) ||
		    h2h1_req_field_dropped(f[i].name) ||
		    str_ieq_cstr(f[i].name, "content-length") ||
		    str_ieq_cstr(f[i].name, "te") ||
		    str_ieq_cstr(f[i].name, "trailer"))
			continue;
		if (h2h1_put_field(&hx->trl, f[i].name, f[i].value) < 0)
			return -1;
	}
	if (!hx->up)
		return 0;
	if (h2h1_req_push(hx) < 0)
		return 0;
	h2h1_update(hx);
	return 0;
}

/* ---- response side ---- */

/* Ends the exchange after a complete response: the upstream back to the
 * pool when everything is clean, then the owner told. */
static void h2h1_finish(struct h2h1 *hx, int extra)
{
	struct http1_header th[64];
	struct h2_header f[64];
	ssize_t nf = 0;
	int n;

	hx->rst = H2H1_R_DONE;
	if (buf_len(&hx->rtrl)) {
		n = http1_parse_fields(buf_data(&hx->rtrl), buf_len(&hx->rtrl),
		                       th, ARRAY_SIZE(th));
		if (n < 0) {
			h2h1_fail(hx, 502, "invalid response trailers");
			return;
		}
		nf = h2h1_resp_fields(th, (size_t)n, NULL, 0, f, ARRAY_SIZE(f),
		                      h2h1_names, sizeof(h2h1_names));
		if (nf < 0) {
			h2h1_fail(hx, 502, "too many response trailers");
			return;
		}
	}
	h2h1_up_put(hx, hx->keep && !extra && hx->req_done);
	if (hx->owner)
		hx->ops->end(hx->owner, f, (size_t)nf);
}

/* Hands body bytes to the owner; keeps what it refuses. 0, or -1 when
 * the exchange is over (failed or released). */
static int h2h1_deliver(struct h2h1 *hx, const char *p, size_t n)
{
	ssize_t w;

	if (n == 0)
		return 0;
	if (hx->paused) {
		if (buf_append(&hx->rhold, p, n) < 0) {
			h2h1_fail(hx, 502, "response buffer full");
			return -1;
		}
		return 0;
	}
	w = hx->ops->data(hx->owner, p, n);
	if (!hx->owner)
		return -1;
	if (w < 0) {
		h2h1_fail(hx, 502, "client stream failed");
		return -1;
	}
	if ((size_t)w < n) {
		hx->paused = 1;
		if (buf_append(&hx->rhold, p + w, n - (size_t)w) < 0) {
			h2h1_fail(hx, 502, "response buffer full");
			return -1;
		}
	}
	return 0;
}

/* The final or interim response head in <data>[<hl>]. Returns 1 when the
 * response is complete with it, 0 to go on, -1 when the exchange is
 * over (failed or released). */
static int h2h1_resp_head(struct h2h1 *hx, const char *data, size_t hl)
{
	struct proxy *px = hx->px;
	struct http1_head h;
	enum http1_method m = hx->head_method ? HTTP1_M_HEAD : HTTP1_M_GET;
	ssize_t nf;
	size_t cap = px->cfg.max_headers;
	int r, end;

	if (cap == 0 || cap > H2H1_MAX_HEADERS)
		cap = H2H1_MAX_HEADERS;
	http1_head_init(&h, h2h1_hdrs, cap);
	r = http1_parse_response(data, hl, &px->cfg.h1lim, &h);
	if (r < 0) {
		h2h1_fail(hx, 502, http1_strerror(r));
		return -1;
	}
	hx->rscan = 0;
	if (h.status == 101) {
		h2h1_fail(hx, 502, "unexpected 101 response");
		return -1;
	}
	nf = h2h1_resp_fields(h.headers, h.nheaders, &h, 1, h2h1_fields,
	                      H2H1_MAX_FIELDS, h2h1_names, sizeof(h2h1_names));
	if (nf < 0) {
		h2h1_fail(hx, 502, "response head too large");
		return -1;
	}
	if (h.status < 200) {
		if (hx->ops->head(hx->owner, h.status, h2h1_fields,
		                  (size_t)nf, 0) < 0 || !hx->owner) {
			if (hx->owner)
				h2h1_fail(hx, 502, "interim response refused");
			return -1;
		}
		return 0;
	}
	hx->kind = (uint8_t)http1_response_body(m, &h);
	hx->keep = (uint8_t)http1_response_persistent(m, &h);
	hx->remain = h.content_length;
	if (hx->kind == HTTP1_BODY_CHUNKED)
		http1_chunked_init(&hx->ch, &px->cfg.h1lim);
	end = hx->kind == HTTP1_BODY_NONE ||
	      (hx->kind == HTTP1_BODY_LENGTH && hx->remain == 0);
	hx->final = 1;
	if (hx->ops->head(hx->owner, h.status, h2h1_fields, (size_t)nf,
	                  end) < 0 || !hx->owner) {
		if (hx->owner)
			h2h1_fail(hx, 502, "response head refused");
		return -1;
	}
	hx->rst = H2H1_R_BODY;
	return end;
}

/*
 * Runs the response state machine over <data>[<len>]; *<used> receives
 * the bytes consumed. Returns 1 when the response is complete, 0 when
 * more input is needed (or the owner paused), -1 when the exchange is
 * over.
 */
static int h2h1_resp_run(struct h2h1 *hx, const char *data, size_t len,
                         size_t *used)
{
	size_t u = 0, consumed, off, span, n, hl;
	int r;

	for (;;) {
		if (hx->rst == H2H1_R_HEAD) {
			r = http1_head_end(data + u, len - u, hx->rscan);
			if (r < 0) {
				h2h1_fail(hx, 502, http1_strerror(r));
				return -1;
			}
			if (r == 0) {
				hx->rscan = len - u;
				if (len - u >= hx->px->cfg.max_head) {
					h2h1_fail(hx, 502,
					          "response head too large");
					return -1;
				}
				break;
			}
			hl = (size_t)r;
			r = h2h1_resp_head(hx, data + u, hl);
			if (r < 0)
				return -1;
			u += hl;
			if (r == 1) {
				*used = u;
				return 1;
			}
			continue;
		}
		if (hx->paused)
			break;
		switch (hx->kind) {
		case HTTP1_BODY_LENGTH:
			if (hx->remain == 0) {
				*used = u;
				return 1;
			}
			n = len - u;
			if (n > hx->remain)
				n = (size_t)hx->remain;
			if (n == 0)
				goto more;
			hx->remain -= n;
			if (h2h1_deliver(hx, data + u, n) < 0)
				return -1;
			u += n;
			continue;
		case HTTP1_BODY_CLOSE:
			if (len - u == 0)
				goto more;
			n = len - u;
			if (h2h1_deliver(hx, data + u, n) < 0)
				return -1;
			u += n;
			continue;
		case HTTP1_BODY_CHUNKED:
			if (len - u == 0)
				goto more;
			r = http1_chunked_feed(&hx->ch, data + u, len - u,
			                       &consumed, &off, &span);
			if (r < 0) {
				h2h1_fail(hx, 502, http1_strerror(r));
				return -1;
			}
			if (r == HTTP1_CHUNKED_DATA &&
			    h2h1_deliver(hx, data + u + off, span) < 0)
				return -1;
			if (r == HTTP1_CHUNKED_TRAILER &&
			    buf_append(&hx->rtrl, data + u + off, span) < 0) {
				h2h1_fail(hx, 502, "response trailers too large");
				return -1;
			}
			u += consumed;
			if (r == HTTP1_CHUNKED_DONE) {
				*used = u;
				return 1;
			}
			continue;
		default:
			*used = u;
			return 1;
		}
	}
more:
	*used = u;
	return 0;
}

/* Response input <data>[<len>] (<from_in>: it is the upstream's <in>). */
static void h2h1_resp_input(struct h2h1 *hx, const char *data, size_t len,
                            int from_in)
{
	struct ep *ep = &hx->up->ep;
	size_t used = 0;
	int r = h2h1_resp_run(hx, data, len, &used);

	if (r < 0 || !hx->owner || !hx->up)
		return;
	if (from_in)
		ep_consume_in(ep, used);
	if (r == 1) {
		if (hx->paused) {
			/* complete, but the owner holds the tail back: keep
			 * what follows, end once <rhold> drained */
			hx->rst = H2H1_R_BODY;
			hx->kind = HTTP1_BODY_LENGTH;
			hx->remain = 0;
			if (!from_in && used < len)
				(void)ep_keep_in(ep, data + used, len - used, 0);
			return;
		}
		h2h1_finish(hx, from_in ? buf_len(&ep->in) != 0 : used < len);
		return;
	}
	if (!from_in && used < len &&
	    ep_keep_in(ep, data + used, len - used, 0) < 0)
		h2h1_fail(hx, 502, "response head too large");
}

static void h2h1_read(struct h2h1 *hx)
{
	struct ep *ep = &hx->up->ep;
	const char *data;
	size_t len;
	int from_in;
	ssize_t n = ep_read_any(ep, &data, &len, &from_in);

	if (n == -EAGAIN)
		return;
	if (n == -ENOBUFS) {
		h2h1_fail(hx, 502, "response head too large");
		return;
	}
	if (n < 0) {
		h2h1_fail(hx, 502, "upstream connection failed");
		return;
	}
	if (n == 0) {
		if (hx->rst == H2H1_R_BODY && hx->kind == HTTP1_BODY_CLOSE) {
			/* the close delimits the body */
			hx->keep = 0;
			h2h1_finish(hx, 0);
		} else if (hx->rst == H2H1_R_HEAD) {
			h2h1_fail(hx, 502, "upstream closed the connection");
		} else {
			h2h1_fail(hx, 502,
			          "upstream closed during the response");
		}
		return;
	}
	h2h1_resp_input(hx, data, len, from_in);
}

static void h2h1_update(struct h2h1 *hx)
{
	struct ep *ep;
	int ev;

	if (!hx->owner || !hx->up || h2h1_connecting(hx))
		return;
	ep = &hx->up->ep;
	ev = ep->events & EV_WRITE;
	if (hx->rst != H2H1_R_DONE && !hx->paused)
		ev |= EV_READ;
	ep_want(h2h1_ev(hx), ep, ev);
}

static void h2h1_io(void *owner, int revents)
{
	struct h2h1 *hx = owner;
	ssize_t r;

	if (!hx->owner || !hx->up)
		return;
	if (revents & EV_WRITE) {
		r = ep_flush(h2h1_ev(hx), &hx->up->ep);
		if (r < 0) {
			h2h1_fail(hx, 502, "upstream write failed");
			return;
		}
		if (r == 0 && h2h1_req_push(hx) < 0)
			return;
	}
	if ((revents & EV_READ) && hx->owner && hx->up && !hx->paused &&
	    hx->rst != H2H1_R_DONE)
		h2h1_read(hx);
	h2h1_update(hx);
}

static void h2h1_failed(void *owner, int err)
{
	struct h2h1 *hx = owner;

	hx->up = NULL;   /* pool.c closed it */
	if (err == -ETIMEDOUT)
		h2h1_fail(hx, 504, "connect timed out");
	else
		h2h1_fail(hx, 502, "connect failed");
}

void h2h1_resume(struct h2h1 *hx)
{
	ssize_t w;

	if (!hx->owner || !hx->paused)
		return;
	if (buf_len(&hx->rhold)) {
		w = hx->ops->data(hx->owner, buf_data(&hx->rhold),
		                  buf_len(&hx->rhold));
		if (!hx->owner)
			return;
		if (w < 0) {
			h2h1_fail(hx, 502, "client stream failed");
			return;
		}
		buf_consume(&hx->rhold, (size_t)w);
		if (buf_len(&hx->rhold))
			return;
	}
	buf_free(&hx->rhold);
	hx->paused = 0;
	if (!hx->up)
		return;
	/* what waits in the upstream's input buffer, then the socket */
	h2h1_resp_input(hx, buf_data(&hx->up->ep.in),
	                buf_len(&hx->up->ep.in), 1);
	h2h1_update(hx);
}

void h2h1_release(struct h2h1 *hx)
{
	if (!hx || !hx->owner)
		return;
	hx->owner = NULL;
	h2h1_up_put(hx, 0);
	loop_defer(&hx->px->loop, &hx->reap);
}
