/*
 * h2side: HTTP/2 forwarding (see h2side.h).
 *
 * IMPLEMENTATION NOTES
 * Output. Each connection (downstream struct h2d, upstream struct h2u) has
 * a deferred "flush" item. Callbacks never pull output themselves (core/h2
 * forbids h2_output inside callbacks, and batching is cheaper): they mark
 * the connections they touched dirty, and the flush, run from the loop
 * after the current callbacks, pulls h2_output into a shared scratch
 * buffer and writes it (the remainder waits in the endpoint's out buffer;
 * pulling stops while it is non-empty: that is the write-side
 * back-pressure h2_want_read also honours).
 *
 * Flow control. For each direction of a stream, <fwd> counts bytes the
 * destination's send queue accepted and <consumed> the bytes released to
 * the source's window. After a flush of the destination, what left its
 * queue (fwd - h2_stream_queued) is released on the source. Bytes the
 * queue refused wait in <ovf> until on_writable, bounded because the source
 * cannot send past the window that is not released yet.
 *
 * Lifetime. A struct h2s lives until both of its streams have closed
 * (did == 0 && uid == 0). h2_free runs no callbacks, so h2side_release and
 * h2u_destroy detach the streams they still hold by hand.
 *
 * Requests before their answer. Until a response head is accepted, a
 * stream owns a struct h2s_req: one allocation holding a copy of the
 * request head (bounded by the max header list size), the pending route
 * lookup (route_wait), the route timer and a copy of the request body
 * (bounded per stream and per connection). With it a request waits for
 * its name to be resolved (DATA stays unconsumed in req.ovf meanwhile, so
 * flow control pauses the client at its window) and is sent again on
 * another upstream stream (a retry: req.fwd restarts at 0 and the copy
 * is queued again; req.consumed stays, so no byte is released twice).
 * An abandoned upstream stream loses its owner pointer before it is
 * reset, so nothing of its response can reach the client. The record
 * goes once a response head went down (or the proxy answered), and
 * always with the downstream stream, so rq != NULL implies d != NULL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/h2.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/util.h"
#include "proxy/conn.h"
#include "proxy/h2h1.h"
#include "proxy/h2side.h"
#include "proxy/pool.h"
#include "proxy/rewrite.h"

#define H2S_F_GRPC      0x01
#define H2S_F_HEAD_SENT 0x02
#define H2S_F_SYNTH     0x04
#define H2S_F_FAILED    0x08
#define H2S_F_COUNTED   0x10
#define H2S_F_ROUTING   0x20     /* the route lookup is pending */
#define H2S_F_ORIG      0x1000   /* inbound meshd-orig-proto: HTTP/1 up */
#define H2S_F_ORIG_ABS  0x2000   /* ... and the client used absolute-form */
#define H2S_F_EXT       0x40     /* an external stream (h2side_x_open) */
#define H2S_F_XREQ_END  0x80     /* external: the request was ended */
#define H2S_F_XRESP_END 0x100    /* external: the response ended */

/* Attempts per request, the first included (Linkerd's limit). */
#define H2S_MAX_ATTEMPTS 3
/* Request body kept for retries: on retryable routes (Linkerd's bound),
 * and otherwise for the free retry of a stream the upstream refused. */
#define H2SIDE_REPLAY_MAX (64 * 1024)
#define H2SIDE_REPLAY_SMALL (8 * 1024)
/* All body copies of one client connection together. */
#define H2SIDE_REPLAY_CONN (1024 * 1024)

#define H2SIDE_MAX_FIELDS 256
/* Bytes a client connection may feed per wakeup: one full frame. An
 * expensive frame (an HPACK bomb's CONTINUATION costs a full decode) then
 * holds the loop for one frame, and other connections run in between. */
#define H2SIDE_READ_BUDGET (16384 + 9)
#define H2SIDE_OUT_SIZE (4 * (16384 + 9))

struct h2side {
	struct mem_pool d_pool, u_pool, s_pool;
	struct mem_pool x_pool;      /* struct h2h1 (h2h1.c) */
	struct h2_limits lim;        /* downstream (server role) */
	struct h2_limits lim_up;     /* upstream (client role) */
	size_t ovf_limit;
};

struct h2dir {
	uint64_t rcvd;           /* received from the source */
	uint64_t fwd;            /* accepted by the destination's queue */
	uint64_t consumed;       /* released on the source */
	struct buf ovf;          /* refused by the destination's queue */
	struct buf trl;          /* trailers kept while ovf drains */
	uint32_t ntrl;
	uint8_t ended;           /* the source ended its side */
	uint8_t end_sent;        /* the destination side was ended */
};

struct h2d {
	struct conn *c;
	struct h2_conn *h2;
	struct h2s *streams;
	uint32_t nstreams;
	int failed;              /* h2_feed failed: read no more */
	int tmode;               /* timer: H2D_T_* */
	size_t copied;           /* bytes in the streams' body copies */
	struct loop_defer flush;
};

struct h2u {
	struct proxy *px;
	struct pool_target *t;   /* NULL once detached */
	struct h2u *tnext, *tprev;
	struct pxm_tcp *m;
	struct ep ep;
	struct h2_conn *h2;
	struct h2s *streams;
	uint32_t nstreams;
	int opened, dead, goaway, failed;
	struct loop_timer timer;
	struct loop_defer flush;
	struct loop_defer reap;
};

struct h2s {
	struct h2d *d;
	int32_t did;
	struct h2u *u;
	int32_t uid;
	struct h2s *dnext, *dprev;
	struct h2s *unext, *uprev;
	struct h2dir req, resp;
	uint64_t t0;
	uint64_t prog;           /* ms: last response progress downstream */
	int status;
	int grpc;
	unsigned flags;
	struct pxm_http *m;
	struct svc_lease lease;  /* the balancer's endpoint, or empty */
	struct h2s_req *rq;      /* until the answer: see h2s_req */
	struct h2h1 *hx;         /* H2S_F_ORIG: the HTTP/1 exchange upstream,
	                          * until the response ended or failed */
	/* external streams (H2S_F_EXT): no downstream; the owner and its
	 * callbacks, xo NULL once the owner gave the stream up */
	const struct h2side_xops *xops;
	void *xo;
};

/*
 * What a request needs until its answer is chosen, in one allocation:
 * this struct, <nf> fields, then the bytes every slice points to.
 */
struct h2s_req {
	struct h2s *s;
	struct h2d *d;
	struct route_wait rw;    /* the pending lookup; q.authority = auth */
	struct loop_timer tmr;   /* route timeout, until the response head */
	struct sock_addr addr;   /* the endpoint when there is no lease */
	struct buf body;         /* every body byte received, while replay */
	size_t body_max;
	struct str method, scheme, authority, path;
	struct str auth;         /* what was routed (:authority or host) */
	uint32_t nf;
	uint8_t attempts;        /* upstream streams opened */
	uint8_t refused;         /* the free retry of a refusal was used */
	uint8_t retryable;       /* the profile's route is retryable */
	uint8_t replay;          /* body holds the whole body so far */
	uint8_t route_tmo;       /* tmr is the route's timeout (else
	                          * --response-timeout's) */
	struct h2_header f[];
};

/* h2d.tmode: what the conn timer is armed for */
#define H2D_T_NONE 0
#define H2D_T_SETTINGS 1   /* the client's SETTINGS must arrive */
#define H2D_T_KEEPALIVE 2  /* no streams: close when idle too long */
#define H2D_T_STALL 3      /* streams: look for stalled output */

static char h2side_obuf[H2SIDE_OUT_SIZE];

static const struct h2_callbacks h2d_cbs;
static const struct h2_callbacks h2u_cbs;
static void h2d_flush(void *arg);
static void h2u_flush(void *arg);
static void h2u_reap(void *arg);
static void h2u_io_cb(struct ev_loop *ev, ev_io *w, int revents);
static void h2u_timer_cb(struct loop *loop, struct loop_timer *t);
static int h2s_retry(struct h2s *s, int refused, int status);

static struct h2side *h2side_of(const struct proxy *px)
{
	return px->h2side;
}

int h2side_init(struct proxy *px)
{
	struct h2side *hs = mem_calloc(1, sizeof(*hs));

	if (!hs)
		return -1;
	mem_pool_init(&hs->d_pool, "h2d", sizeof(struct h2d), 0, 64);
	mem_pool_init(&hs->u_pool, "h2u", sizeof(struct h2u), 0, 64);
	mem_pool_init(&hs->s_pool, "h2s", sizeof(struct h2s), 0, 256);
	mem_pool_init(&hs->x_pool, "h2h1", h2h1_size(), 0, 64);
	h2_limits_default(&hs->lim);
	if (px->cfg.max_conn_mem)
		hs->lim.mem_max = px->cfg.max_conn_mem;
	hs->ovf_limit = 2 * (size_t)hs->lim.initial_window_size + 16384;
	/* A connection between proxies carries many clients' streams: one
	 * client that stops reading must not use up the connection's send
	 * budget and stall the others. What a stalled stream can hold is
	 * bounded by its window anyway, so the budget covers every stream's
	 * queue (the stall timeout then frees them). */
	hs->lim.conn_send_buffer = (uint32_t)MIN(
		(uint64_t)hs->lim.max_concurrent_streams *
		hs->lim.stream_send_buffer, 0x7fffffffu);
	/* An oversized header block costs a full HPACK decode and nghttp2's
	 * validation of every decoded value (an HPACK bomb: ~250 ms of CPU
	 * per block): GOAWAY at the second one (limit 1; 0 would disable
	 * the rule) instead of core/h2's default eleventh. */
	if (hs->lim.max_header_overflows > 1)
		hs->lim.max_header_overflows = 1;
	/* An upstream connection is shared by every client's streams to the
	 * target: its connection window must never be the one that closes,
	 * or one stalled stream (a client that stops reading) would stall
	 * them all. Stream windows (and the stall timeout) bound each
	 * stream instead. */
	hs->lim_up = hs->lim;
	hs->lim_up.conn_window_size = (uint32_t)MIN(
		(uint64_t)hs->lim.max_concurrent_streams *
		hs->lim.initial_window_size * 2, 0x7fffffffu);
	px->h2side = hs;
	return 0;
}

void h2side_fini(struct proxy *px)
{
	struct h2side *hs = px->h2side;

	if (!hs)
		return;
	mem_pool_destroy(&hs->d_pool);
	mem_pool_destroy(&hs->u_pool);
	mem_pool_destroy(&hs->s_pool);
	mem_pool_destroy(&hs->x_pool);
	mem_free(hs);
	px->h2side = NULL;
}

/* ---- helpers ---- */

static void h2d_dirty(struct h2d *d)
{
	if (d)
		loop_defer(&d->c->px->loop, &d->flush);
}

static void h2u_dirty(struct h2u *u)
{
	if (u && !u->dead)
		loop_defer(&u->px->loop, &u->flush);
}

/* Pulls output of <h2> into <ep> while it takes it. 0 or -errno. */
static int h2side_pump(struct ev_loop *ev, struct h2_conn *h2, struct ep *ep)
{
	struct buf tmp;
	ssize_t n;
	int rc;

	buf_init_fixed(&tmp, h2side_obuf, sizeof(h2side_obuf));
	while (!ep_out_pending(ep) && !(ep->flags & EP_F_CONNECTING) &&
	       ep->fd >= 0) {
		n = h2_output(h2, &tmp);
		if (n <= 0)
			break;
		rc = ep_send(ev, ep, buf_data(&tmp), buf_len(&tmp));
		buf_reset(&tmp);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void h2dir_free(struct h2dir *dir)
{
	buf_free(&dir->ovf);
	buf_free(&dir->trl);
}

static void h2s_body_drop(struct h2s_req *rq)
{
	rq->d->copied -= buf_len(&rq->body);
	buf_free(&rq->body);
	rq->replay = 0;
}

/* Forgets the request record of <s> (no retry, no timeout from now on):
 * cancels its lookup and timer. */
static void h2s_req_free(struct h2s *s)
{
	struct h2s_req *rq = s->rq;

	if (!rq)
		return;
	route_cancel(&rq->rw);
	loop_timer_stop(&rq->d->c->px->loop, &rq->tmr);
	h2s_body_drop(rq);
	MEM_FREE(&s->rq);
}

/* Keeps <p>[<n>] (request body received) for a replay, while the whole
 * body fits in the stream's and the connection's bounds. */
static void h2s_body_keep(struct h2s *s, const char *p, size_t n)
{
	struct h2s_req *rq = s->rq;

	if (!rq || !rq->replay)
		return;
	if (buf_len(&rq->body) + n > rq->body_max ||
	    rq->d->copied + n > H2SIDE_REPLAY_CONN ||
	    buf_append(&rq->body, p, n) < 0) {
		h2s_body_drop(rq);
		return;
	}
	rq->d->copied += n;
}

/* Nobody upstream will take the request any more: what the client sent
 * and is still charged to its window is released, what waits is
 * dropped. */
static void h2s_req_discard(struct h2s *s)
{
	if (s->d && s->did && s->req.rcvd > s->req.consumed)
		h2_consume(s->d->h2, s->did,
		           (size_t)(s->req.rcvd - s->req.consumed));
	s->req.consumed = s->req.rcvd;
	buf_free(&s->req.ovf);
	buf_free(&s->req.trl);
	s->req.ntrl = 0;
}

static void h2s_free(struct h2s *s, struct proxy *px)
{
	if (s->hx) {
		h2h1_release(s->hx);
		s->hx = NULL;
	}
	h2s_req_free(s);
	/* still leased: the stream ended without a response (the client
	 * gave up before any answer): no verdict on the endpoint */
	svc_release(&s->lease, SVC_CANCELLED);
	h2dir_free(&s->req);
	h2dir_free(&s->resp);
	mem_pool_put(&h2side_of(px)->s_pool, s);
}

static void h2s_unlink_d(struct h2s *s)
{
	struct h2d *d = s->d;

	if (!d)
		return;
	if (s->dprev)
		s->dprev->dnext = s->dnext;
	else
		d->streams = s->dnext;
	if (s->dnext)
		s->dnext->dprev = s->dprev;
	s->dnext = s->dprev = NULL;
	d->nstreams--;
}

static void h2s_unlink_u(struct h2s *s)
{
	struct h2u *u = s->u;

	if (!u)
		return;
	if (s->uprev)
		s->uprev->unext = s->unext;
	else
		u->streams = s->unext;
	if (s->unext)
		s->unext->uprev = s->uprev;
	s->unext = s->uprev = NULL;
	u->nstreams--;
	if (u->nstreams == 0 && !u->dead)
		loop_timer_arm(&u->px->loop, &u->timer,
		               u->px->cfg.keepalive_timeout_ms);
}

/* Copies header fields <f>[<n>] for later (trailers kept while the
 * overflow drains). */
static int h2dir_save_trailers(struct h2dir *dir, const struct h2_header *f,
                               size_t n)
{
	size_t i;
	uint32_t l[2];

	buf_init(&dir->trl, 64 * 1024);
	for (i = 0; i < n; i++) {
		l[0] = (uint32_t)f[i].name.len;
		l[1] = (uint32_t)f[i].value.len;
		if (buf_append(&dir->trl, l, sizeof(l)) < 0 ||
		    buf_append(&dir->trl, f[i].name.p, f[i].name.len) < 0 ||
		    buf_append(&dir->trl, f[i].value.p, f[i].value.len) < 0)
			return -1;
	}
	dir->ntrl = (uint32_t)n;
	return 0;
}

/* Ends the destination stream, with the kept trailers if any. */
static int h2dir_end(struct h2dir *dir, struct h2_conn *dst, int32_t id)
{
	struct h2_header f[H2SIDE_MAX_FIELDS];
	const char *p = buf_data(&dir->trl);
	size_t n = 0, i;
	uint32_t l[2];
	int rc;

	for (i = 0; i < dir->ntrl && n < H2SIDE_MAX_FIELDS; i++) {
		memcpy(l, p, sizeof(l));
		p += sizeof(l);
		f[n].name = str_make(p, l[0]);
		p += l[0];
		f[n].value = str_make(p, l[1]);
		p += l[1];
		n++;
	}
	rc = h2_stream_end(dst, id, n ? f : NULL, n);
	dir->end_sent = 1;
	buf_free(&dir->trl);
	dir->ntrl = 0;
	return rc;
}

/* Forwards <p>[<n>] to the destination stream. 0 or -1. */
static int h2dir_fwd(struct h2dir *dir, size_t limit, struct h2_conn *dst,
                     int32_t id, const char *p, size_t n)
{
	ssize_t w = 0;

	if (buf_len(&dir->ovf) == 0) {
		w = h2_stream_write(dst, id, p, n);
		if (w < 0)
			return -1;
		dir->fwd += (uint64_t)w;
		if ((size_t)w == n)
			return 0;
	}
	if (dir->ovf.limit == 0)
		buf_init(&dir->ovf, limit);
	return buf_append(&dir->ovf, p + w, n - (size_t)w) < 0 ? -1 : 0;
}

/* Moves overflow into the destination's queue; ends the stream when the
 * source has ended and everything went. 0 or -1. */
static int h2dir_push(struct h2dir *dir, struct h2_conn *dst, int32_t id)
{
	ssize_t w;

	if (buf_len(&dir->ovf)) {
		w = h2_stream_write(dst, id, buf_data(&dir->ovf),
		                    buf_len(&dir->ovf));
		if (w < 0)
			return -1;
		dir->fwd += (uint64_t)w;
		buf_consume(&dir->ovf, (size_t)w);
		if (buf_len(&dir->ovf))
			return 0;
		buf_free(&dir->ovf);
	}
	if (dir->ended && !dir->end_sent)
		return h2dir_end(dir, dst, id) < 0 ? -1 : 0;
	return 0;
}

/* Releases on the source what left the destination's queue. Returns 1
 * when something was released. */
static int h2dir_account(struct h2dir *dir, struct h2_conn *dst,
                         int32_t dst_id, struct h2_conn *src,
                         int32_t src_id)
{
	uint64_t sent = dir->fwd - h2_stream_queued(dst, dst_id);

	if (sent <= dir->consumed)
		return 0;
	h2_consume(src, src_id, (size_t)(sent - dir->consumed));
	dir->consumed = sent;
	return 1;
}

static int h2side_grpc_status(const struct h2_header *f, size_t n)
{
	size_t i, j;
	int v;

	for (i = 0; i < n; i++) {
		if (!str_eq_cstr(f[i].name, "grpc-status"))
			continue;
		if (f[i].value.len == 0 || f[i].value.len > 2)
			return -1;
		for (v = 0, j = 0; j < f[i].value.len; j++) {
			char ch = f[i].value.p[j];

			if (ch < '0' || ch > '9')
				return -1;
			v = v * 10 + (ch - '0');
		}
		return v;
	}
	return -1;
}

/* Counts the response of <s> once (at the end of its downstream stream). */
static void h2s_count(struct h2s *s, int error)
{
	/* failure accrual counts what the endpoint did: 5xx, a gRPC status
	 * other than OK (the metrics' classification), broken streams */
	/* a reset by the client (error without H2S_F_FAILED) is no
	 * verdict on an endpoint that answered well so far: a closed-loop
	 * client that stops with streams in flight must not eject it */
	if (s->flags & H2S_F_HEAD_SENT)
		svc_release(&s->lease, pxmetrics_is_failure(
			s->status, s->grpc,
			(s->flags & H2S_F_FAILED) || s->status >= 500) ? 0 :
			error ? SVC_CANCELLED : 1);
	if (!(s->flags & H2S_F_COUNTED) || !(s->flags & H2S_F_HEAD_SENT))
		return;
	s->flags &= ~H2S_F_COUNTED;
	pxmetrics_response(s->m, s->status, s->grpc,
	                   pxmetrics_is_failure(s->status, s->grpc,
	                                        error ||
	                                        (s->flags & H2S_F_FAILED)));
}

/* The proxy's own answer on the downstream stream of <s>. */
static void h2s_synth(struct h2s *s, int status, const char *reason)
{
	struct h2_header f[4];
	struct h2d *d = s->d;
	char gs[8];
	size_t n = 0;
	int st = status;

	if (s->hx) {
		/* the HTTP/1 upstream (if any) is closed, never reused */
		h2h1_release(s->hx);
		s->hx = NULL;
	}
	if (!d || !s->did)
		return;
	s->flags |= H2S_F_FAILED;
	s->flags &= ~H2S_F_ROUTING;
	h2s_req_free(s);
	if (!s->u)
		h2s_req_discard(s);
	if (s->flags & H2S_F_HEAD_SENT) {
		h2_stream_reset(d->h2, s->did, H2_INTERNAL_ERROR);
		h2d_dirty(d);
		return;
	}
	if (s->flags & H2S_F_GRPC) {
		s->grpc = rewrite_grpc_for_status(status);
		snprintf(gs, sizeof(gs), "%d", s->grpc);
		st = 200;
		f[n++] = (struct h2_header){ STR_LIT("content-type"),
		                             STR_LIT("application/grpc") };
		f[n++] = (struct h2_header){ STR_LIT("grpc-status"),
		                             str_from_cstr(gs) };
		f[n++] = (struct h2_header){ STR_LIT("grpc-message"),
		                             str_from_cstr(reason) };
	} else {
		f[n++] = (struct h2_header){ STR_LIT("content-length"),
		                             STR_LIT("0") };
	}
	f[n++] = (struct h2_header){ STR_LIT(RW_HDR_PROXY_ERROR),
	                             str_from_cstr(reason) };
	LOG_DEBUG("proxy", "conn %llu: h2 stream %d answered %d: %s",
	          (unsigned long long)d->c->id, (int)s->did, status, reason);
	if (h2_submit_response(d->h2, s->did, st, f, n, 1) < 0) {
		h2_stream_reset(d->h2, s->did, H2_INTERNAL_ERROR);
	} else {
		s->status = st;
		s->flags |= H2S_F_HEAD_SENT | H2S_F_SYNTH;
		s->resp.ended = s->resp.end_sent = 1;
		pxmetrics_latency(s->m, st,
		                  loop_now_ms(&d->c->px->loop) - s->t0);
	}
	h2d_dirty(d);
}

/* ---- upstream connections ---- */

static void h2u_detach_target(struct h2u *u)
{
	struct pool_target *t = u->t;

	if (!t)
		return;
	if (u->tprev)
		u->tprev->tnext = u->tnext;
	else
		t->h2 = u->tnext;
	if (u->tnext)
		u->tnext->tprev = u->tprev;
	u->tnext = u->tprev = NULL;
	u->t = NULL;
	pool_target_maybe_free(t);
}

/* Fails every stream still bound to <u> (its connection is gone). */
static void h2u_fail_streams(struct h2u *u, int status, const char *why)
{
	struct h2s *s;

	while ((s = u->streams) != NULL) {
		struct proxy *px = u->px;

		h2s_unlink_u(s);
		s->u = NULL;
		s->uid = 0;
		if (s->flags & H2S_F_EXT) {
			/* a connection never made carried nothing */
			if (s->xo)
				s->xops->on_close(s->xo, 1, u->opened
				                  ? H2_INTERNAL_ERROR
				                  : H2_REFUSED_STREAM);
			h2s_free(s, px);
		} else if (!s->d || !s->did)
			h2s_free(s, px);
		else if (!h2s_retry(s, 0, 502))
			h2s_synth(s, status, why);
	}
}

/* Closes <u> now (no callbacks) and frees it later. */
static void h2u_destroy(struct h2u *u, int fail)
{
	struct proxy *px = u->px;

	if (u->dead == 2)
		return;
	u->dead = 2;
	h2u_detach_target(u);
	h2u_fail_streams(u, 502, "upstream connection closed");
	loop_timer_stop(&px->loop, &u->timer);
	loop_defer_cancel(&px->loop, &u->flush);
	ep_close(px->loop.ev, &u->ep, fail);
	if (u->opened)
		pxmetrics_tcp_close(u->m, fail, u->ep.err);
	u->opened = 0;
	h2_free(u->h2);
	u->h2 = NULL;
	loop_defer(&px->loop, &u->reap);
}

static void h2u_reap(void *arg)
{
	struct h2u *u = arg;

	mem_pool_put(&h2side_of(u->px)->u_pool, u);
}

/* A new connection to <t>, connecting. NULL with *err set: -ENOBUFS (no
 * memory) or the connect's own error (refused at once). */
static struct h2u *h2u_new(struct proxy *px, struct pool_target *t, int *err)
{
	struct h2side *hs = h2side_of(px);
	struct h2u *u = mem_pool_zget(&hs->u_pool);
	char msg[128];
	int e;

	*err = -ENOBUFS;
	if (!u)
		return NULL;
	u->px = px;
	u->m = t->m;
	ep_init(&u->ep, -1, h2u_io_cb, px->cfg.in_limit,
	        px->cfg.out_limit + H2SIDE_OUT_SIZE);
	loop_timer_init(&u->timer, h2u_timer_cb);
	loop_defer_init(&u->flush, h2u_flush, u);
	loop_defer_init(&u->reap, h2u_reap, u);
	u->h2 = h2_new(H2_CLIENT, &hs->lim_up, &h2u_cbs, u, msg, sizeof(msg));
	if (!u->h2) {
		mem_pool_put(&hs->u_pool, u);
		return NULL;
	}
	e = pool_tcp_connect(px, &u->ep, &t->addr);
	if (e < 0) {
		/* refused at once (local address, unreachable): counted as
		 * a failed connect like the ones that fail later */
		pxmetrics_tcp_connect_fail(t->m, e);
		h2_free(u->h2);
		mem_pool_put(&hs->u_pool, u);
		*err = e;
		return NULL;
	}
	if (t->m) {
		u->ep.m_rd = t->m->rd;
		u->ep.m_wr = t->m->wr;
	}
	u->t = t;
	u->tnext = t->h2;
	if (t->h2)
		t->h2->tprev = u;
	t->h2 = u;
	ep_want(px->loop.ev, &u->ep, EV_WRITE);
	loop_timer_arm(&px->loop, &u->timer, px->cfg.connect_timeout_ms);
	return u;
}

/* An upstream connection to <t> that takes a new stream now, or NULL
 * with *err: -EAGAIN (every connection allowed is full), -ENOBUFS, or the
 * error of a connect refused at once. */
static struct h2u *h2u_pick(struct proxy *px, struct pool_target *t,
                            int *err)
{
	struct h2u *u;
	unsigned n = 0;

	for (u = t->h2; u; u = u->tnext, n++)
		if (!u->dead && !u->goaway && h2_can_submit(u->h2) > 0)
			return u;
	*err = -EAGAIN;
	if (n >= H2SIDE_MAX_UP_CONNS)
		return NULL;
	return h2u_new(px, t, err);
}

/* A connection to <a> that takes a new stream now, or NULL with the
 * status and meshd-proxy-error the proxy answers: 503 when a limit or
 * memory refused it, 502 when the connect was refused at once. */
static struct h2u *h2u_get(struct proxy *px, int dir,
                           const struct sock_addr *a, int *status,
                           const char **why)
{
	struct pool_target *t = pool_target_get(px->pool, dir, a);
	struct h2u *u;
	int err = -ENOBUFS;

	u = t ? h2u_pick(px, t, &err) : NULL;
	if (u)
		return u;
	if (t)
		pool_target_maybe_free(t);
	*status = 503;
	if (err == -EAGAIN) {
		*why = "upstream stream limit";
	} else if (err == -ENOBUFS) {
		*why = "out of memory";
	} else {
		*status = 502;
		*why = "connect failed";
	}
	return NULL;
}

static void h2u_update(struct h2u *u)
{
	int ev;

	if (u->dead || (u->ep.flags & EP_F_CONNECTING))
		return;
	ev = u->ep.events & EV_WRITE;
	if (!u->failed && h2_want_read(u->h2) && !(u->ep.flags & EP_F_EOF))
		ev |= EV_READ;
	ep_want(u->px->loop.ev, &u->ep, ev);
}

static void h2u_flush(void *arg)
{
	struct h2u *u = arg;
	struct h2s *s;

	if (u->dead == 2)
		return;
	if (h2side_pump(u->px->loop.ev, u->h2, &u->ep) < 0) {
		h2u_destroy(u, 1);
		return;
	}
	/* request bytes that left the queue open the downstream windows */
	for (s = u->streams; s; s = s->unext)
		if (s->d && s->did && s->uid &&
		    h2dir_account(&s->req, u->h2, s->uid, s->d->h2, s->did))
			h2d_dirty(s->d);
	if (h2_is_closed(u->h2) && !ep_out_pending(&u->ep)) {
		h2u_destroy(u, u->failed);
		return;
	}
	h2u_update(u);
}

static void h2u_connected(struct h2u *u)
{
	struct proxy *px = u->px;
	int e = sock_connect_result(u->ep.fd);

	u->ep.flags &= ~EP_F_CONNECTING;
	loop_timer_stop(&px->loop, &u->timer);
	if (e < 0) {
		LOG_DEBUG("proxy", "h2 upstream connect failed: %s",
		          strerror(-e));
		ep_fail(&u->ep, -e);
		pxmetrics_tcp_connect_fail(u->m, e);
		h2u_detach_target(u);
		h2u_fail_streams(u, 502, "connect failed");
		h2u_destroy(u, 1);
		return;
	}
	(void)sock_set_nodelay(u->ep.fd);
	u->opened = 1;
	pxmetrics_tcp_open(u->m);
	h2u_flush(u);
}

static void h2u_io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h2u *u = container_of(w, struct h2u, ep.io);
	ssize_t n;

	if (u->dead == 2)
		return;
	if (u->ep.flags & EP_F_CONNECTING) {
		h2u_connected(u);
		return;
	}
	if (revents & EV_WRITE) {
		if (ep_flush(ev, &u->ep) < 0) {
			h2u_destroy(u, 1);
			return;
		}
	}
	if ((revents & EV_READ) && !u->failed) {
		n = ep_read(&u->ep, ep_scratch, EP_SCRATCH_SIZE);
		if (n == 0 || (n < 0 && n != -EAGAIN)) {
			/* the server went away: every stream fails */
			h2_abort(u->h2, H2_NO_ERROR, "peer_closed");
			u->failed = 1;
			h2u_destroy(u, n < 0);
			return;
		}
		if (n > 0 && h2_feed(u->h2, ep_scratch, (size_t)n) < 0)
			u->failed = 1;
	}
	h2u_flush(u);
}

static void h2u_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct h2u *u = container_of(t, struct h2u, timer);

	(void)loop;
	if (u->dead == 2)
		return;
	if (u->ep.flags & EP_F_CONNECTING) {
		ep_fail(&u->ep, ETIMEDOUT);
		pxmetrics_tcp_connect_fail(u->m, ETIMEDOUT);
		h2u_detach_target(u);
		h2u_fail_streams(u, 504, "connect timed out");
		h2u_destroy(u, 1);
		return;
	}
	if (u->nstreams == 0) {
		/* idle: say goodbye, close once GOAWAY is out */
		h2u_detach_target(u);
		u->goaway = 1;
		if (h2_goaway(u->h2, 0) < 0 || h2_is_closed(u->h2)) {
			h2u_destroy(u, 0);
			return;
		}
		h2u_dirty(u);
	}
}

void h2side_up_drain(struct h2u *u)
{
	struct h2u *next;

	for (; u; u = next) {
		next = u->tnext;
		h2u_detach_target(u);
		u->goaway = 1;
		if (u->nstreams == 0 || (u->ep.flags & EP_F_CONNECTING)) {
			h2u_destroy(u, 0);
			continue;
		}
		h2_goaway(u->h2, 1);
		h2u_dirty(u);
	}
}

/* ---- requests: upstream streams, retries, route timeouts ---- */

/* Binds <s> to the new upstream stream <uid> of <u>. */
static void h2s_link_u(struct h2s *s, struct h2u *u, int32_t uid)
{
	struct proxy *px = u->px;

	loop_timer_stop(&px->loop, &u->timer);
	if (u->ep.flags & EP_F_CONNECTING)
		loop_timer_arm(&px->loop, &u->timer, px->cfg.connect_timeout_ms);
	s->u = u;
	s->uid = uid;
	s->unext = u->streams;
	if (u->streams)
		u->streams->uprev = s;
	u->streams = s;
	u->nstreams++;
	h2u_dirty(u);
}

/* Detaches <s> from its upstream stream and resets that: the stream
 * loses its owner first, so nothing of its response reaches the client
 * and its close frees nothing. */
static void h2s_abandon_up(struct h2s *s)
{
	struct h2u *u = s->u;

	if (!u || !s->uid)
		return;
	(void)h2_stream_set_user(u->h2, s->uid, NULL);
	(void)h2_stream_reset(u->h2, s->uid, H2_CANCEL);
	h2s_unlink_u(s);
	s->u = NULL;
	s->uid = 0;
	h2u_dirty(u);
}

/* The route timeout: no response head in time. */
static void h2s_tmo_cb(struct loop *loop, struct loop_timer *t)
{
	struct h2s_req *rq = container_of(t, struct h2s_req, tmr);
	struct h2s *s = rq->s;
	struct h2d *d = rq->d;

	(void)loop;
	if (!s->did || (s->flags & H2S_F_HEAD_SENT))
		return;
	h2s_abandon_up(s);
	if (rq->route_tmo)
		svc_count_timeout(&s->lease);
	svc_release(&s->lease, 0);
	/* frees rq, and with it <t> (no longer armed) */
	h2s_synth(s, 504, rq->route_tmo ? "route timeout"
	                                : "response timed out");
	h2d_dirty(d);
}

static struct str h2s_copy(char **p, struct str v)
{
	struct str r = str_make(*p, v.len);

	if (v.len)
		memcpy(*p, v.p, v.len);
	*p += v.len;
	return r;
}

/*
 * Gives <s> its request record: copies of <head>'s pseudo-fields, of the
 * routed authority <auth> and of the <n> fields <f> to forward, in one
 * allocation bounded by the max header list size. Returns 0, -E2BIG
 * (larger than the bound) or -ENOMEM.
 */
static int h2s_req_new(struct h2d *d, struct h2s *s,
                       const struct h2_head *head, struct str auth,
                       const struct h2_header *f, size_t n)
{
	struct h2s_req *rq;
	size_t bytes, i;
	char *p;

	bytes = head->method.len + head->scheme.len + head->authority.len +
	        head->path.len;
	for (i = 0; i < n; i++)
		bytes += f[i].name.len + f[i].value.len;
	if (bytes > h2side_of(d->c->px)->lim.max_header_list_size)
		return -E2BIG;
	bytes += auth.len;
	rq = mem_alloc(sizeof(*rq) + n * sizeof(*f) + bytes);
	if (!rq)
		return -ENOMEM;
	memset(rq, 0, sizeof(*rq));
	rq->s = s;
	rq->d = d;
	loop_timer_init(&rq->tmr, h2s_tmo_cb);
	buf_init(&rq->body, H2SIDE_REPLAY_MAX);
	rq->body_max = H2SIDE_REPLAY_MAX;
	rq->replay = 1;
	p = (char *)&rq->f[n];
	rq->method = h2s_copy(&p, head->method);
	rq->scheme = h2s_copy(&p, head->scheme);
	rq->authority = h2s_copy(&p, head->authority);
	rq->path = h2s_copy(&p, head->path);
	rq->auth = h2s_copy(&p, auth);
	for (i = 0; i < n; i++) {
		rq->f[i].name = h2s_copy(&p, f[i].name);
		rq->f[i].value = h2s_copy(&p, f[i].value);
	}
	rq->nf = (uint32_t)n;
	s->rq = rq;
	return 0;
}

/* ---- requests forwarded as HTTP/1 (inbound meshd-orig-proto) ---- */

/* h2h1's calls for the exchange of <owner> (a struct h2s): the response
 * goes down the stream as an upstream h2 stream's would. */
static int h2s_h1_head(void *owner, int status, const struct h2_header *f,
                       size_t n, int end)
{
	struct h2s *s = owner;
	struct h2d *d = s->d;
	int rc;

	if (!d || !s->did)
		return -1;
	if (status < 200) {
		(void)h2_submit_response(d->h2, s->did, status, f, n, 0);
		h2d_dirty(d);
		return 0;
	}
	h2s_req_free(s);
	s->status = status;
	s->grpc = h2side_grpc_status(f, n);
	pxmetrics_latency(s->m, status, loop_now_ms(&d->c->px->loop) - s->t0);
	rc = h2_submit_response(d->h2, s->did, status, f, n, end);
	h2d_dirty(d);
	if (rc < 0)
		return -1;
	s->flags |= H2S_F_HEAD_SENT;
	s->prog = loop_now_ms(&d->c->px->loop);
	if (end)
		s->resp.ended = s->resp.end_sent = 1;
	return 0;
}

static ssize_t h2s_h1_data(void *owner, const char *p, size_t n)
{
	struct h2s *s = owner;
	ssize_t w;

	if (!s->d || !s->did)
		return -1;
	w = h2_stream_write(s->d->h2, s->did, p, n);
	if (w < 0)
		return -1;
	if (w > 0) {
		s->prog = loop_now_ms(&s->d->c->px->loop);
		h2d_dirty(s->d);
	}
	return w;
}

static void h2s_h1_end(void *owner, const struct h2_header *f, size_t n)
{
	struct h2s *s = owner;
	int g;

	/* done with the exchange; the request's rest is not wanted */
	h2h1_release(s->hx);
	s->hx = NULL;
	h2s_req_discard(s);
	if (!s->d || !s->did)
		return;
	g = h2side_grpc_status(f, n);
	if (g >= 0)
		s->grpc = g;
	s->resp.ended = 1;
	if (!s->resp.end_sent) {
		(void)h2_stream_end(s->d->h2, s->did, n ? f : NULL, n);
		s->resp.end_sent = 1;
	}
	h2d_dirty(s->d);
}

static void h2s_h1_fail(void *owner, int status, const char *reason)
{
	/* releases the exchange; a reset once the head went down */
	h2s_synth(owner, status, reason);
}

static void h2s_h1_consumed(void *owner, size_t n)
{
	struct h2s *s = owner;

	s->req.consumed += n;
	if (s->d && s->did) {
		(void)h2_consume(s->d->h2, s->did, n);
		h2d_dirty(s->d);
	}
}

static const struct h2h1_ops h2s_h1_ops = {
	.head = h2s_h1_head,
	.data = h2s_h1_data,
	.end = h2s_h1_end,
	.fail = h2s_h1_fail,
	.consumed = h2s_h1_consumed,
};

/*
 * Forwards the request of <s> (H2S_F_ORIG) to its endpoint as HTTP/1.1
 * (h2h1.c) instead of opening an upstream stream: the stored head, what
 * waited in req.ovf, the end when the client ended. No retries: the
 * body copy goes. Returns 0, or -1 when the proxy answered the client.
 */
static int h2s_h1_open(struct h2s *s)
{
	struct h2d *d = s->d;
	struct proxy *px = d->c->px;
	struct h2side *hs = h2side_of(px);
	struct h2s_req *rq = s->rq;
	const struct sock_addr *a = s->lease.svc ? &s->lease.addr : &rq->addr;
	struct h2_header tf[H2SIDE_MAX_FIELDS];
	struct pool_target *t;
	struct h2h1_req hr;
	struct h2h1 *hx;
	struct buf ovf;
	const char *p;
	uint32_t l[2];
	size_t i, ntf = 0;
	int err = 0, cl = 0;

	h2s_body_drop(rq);
	memset(&hr, 0, sizeof(hr));
	hr.method = rq->method;
	hr.authority = rq->auth;
	hr.path = rq->path;
	hr.fields = rq->f;
	hr.nfields = rq->nf;
	hr.hold_max = hs->ovf_limit;
	if (s->flags & H2S_F_ORIG_ABS)
		hr.flags |= H2H1_F_ABSOLUTE;
	for (i = 0; i < rq->nf; i++)
		if (str_eq_cstr(rq->f[i].name, "content-length"))
			cl = 1;
	if (s->req.ended && s->req.rcvd == 0 && !s->req.ntrl)
		hr.flags |= H2H1_F_NOBODY;
	else if (!cl)
		hr.flags |= H2H1_F_CHUNKED;
	t = pool_target_get(px->pool, d->c->dir, a);
	hx = t ? h2h1_open(px, &hs->x_pool, t, &hr, &h2s_h1_ops, s, &err)
	       : NULL;
	if (!hx) {
		if (t)
			pool_target_maybe_free(t);
		if (!t || err == -ENOBUFS)
			h2s_synth(s, 503, "out of memory");
		else if (err == -EINVAL)
			h2s_synth(s, 400, "request cannot be sent as HTTP/1");
		else
			h2s_synth(s, 502, "connect failed");
		return -1;
	}
	rq->attempts++;
	s->hx = hx;
	/* what arrived while the route was looked up */
	ovf = s->req.ovf;
	memset(&s->req.ovf, 0, sizeof(s->req.ovf));
	if (buf_len(&ovf) && h2h1_req_data(hx, buf_data(&ovf),
	                                   buf_len(&ovf)) < 0 && s->hx)
		h2s_synth(s, 502, "request body buffer full");
	buf_free(&ovf);
	if (s->hx && s->req.ended) {
		p = buf_data(&s->req.trl);
		for (i = 0; i < s->req.ntrl && ntf < H2SIDE_MAX_FIELDS; i++) {
			memcpy(l, p, sizeof(l));
			p += sizeof(l);
			tf[ntf].name = str_make(p, l[0]);
			p += l[0];
			tf[ntf].value = str_make(p, l[1]);
			p += l[1];
			ntf++;
		}
		if (h2h1_req_end(s->hx, ntf ? tf : NULL, ntf) < 0 && s->hx)
			h2s_synth(s, 502, "request trailers too large");
		buf_free(&s->req.trl);
		s->req.ntrl = 0;
	}
	h2d_dirty(d);
	return 0;
}

/*
 * Opens an upstream stream for <s> to its endpoint (the lease's, else
 * the routed address), submits the stored head and queues what of the
 * request waits in req.ovf, and the end when the client ended. Returns 0,
 * or -1 when the proxy answered the client instead.
 */
static int h2s_up_open(struct h2s *s)
{
	struct h2d *d = s->d;
	struct proxy *px = d->c->px;
	struct h2s_req *rq = s->rq;
	const struct sock_addr *a = s->lease.svc ? &s->lease.addr : &rq->addr;
	struct h2_request hr;
	struct h2u *u;
	const char *why;
	int32_t uid;
	int end, st;

	if (s->flags & H2S_F_ORIG)
		return h2s_h1_open(s);
	u = h2u_get(px, d->c->dir, a, &st, &why);
	if (!u) {
		h2s_synth(s, st, why);
		return -1;
	}
	hr.method = rq->method;
	hr.scheme = rq->scheme;
	hr.authority = rq->authority;
	hr.path = rq->path;
	hr.fields = rq->f;
	hr.nfields = rq->nf;
	end = s->req.ended && !buf_len(&s->req.ovf) && !s->req.ntrl;
	uid = h2_submit_request(u->h2, &hr, end, s);
	if (uid <= 0) {
		h2s_synth(s, uid == -EAGAIN ? 503 : 502,
		          "cannot open the upstream stream");
		return -1;
	}
	rq->attempts++;
	h2s_link_u(s, u, uid);
	s->req.end_sent = (uint8_t)end;
	if (!end && h2dir_push(&s->req, u->h2, uid) < 0)
		h2_stream_reset(u->h2, uid, H2_INTERNAL_ERROR);
	return 0;
}

/*
 * Applies the service profile to the request of <s>: whether its route
 * is retryable (which bounds the body copy) and its timeout, which a
 * "meshd-timeout" field may shorten (never lengthen); the timeout counts
 * from the request's arrival and ends with the response head.
 */
static void h2s_policy(struct h2s *s)
{
	struct h2s_req *rq = s->rq;
	struct loop *loop = &rq->d->c->px->loop;
	uint64_t resp = rq->d->c->px->cfg.response_timeout_ms;
	uint32_t tmo = 0, i;
	uint64_t v, now;
	int retryable = 0;

	if (s->lease.svc) {
		(void)svc_route(&s->lease, rq->method, rq->path, &tmo,
		                &retryable);
		for (i = 0; i < rq->nf; i++)
			if (str_eq_cstr(rq->f[i].name, "meshd-timeout") &&
			    str_to_duration_ms(rq->f[i].value, &v) == 0 &&
			    v > 0 && (!tmo || v < tmo))
				tmo = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	}
	rq->retryable = retryable != 0;
	if (!retryable) {
		rq->body_max = H2SIDE_REPLAY_SMALL;
		if (buf_len(&rq->body) > rq->body_max)
			h2s_body_drop(rq);
	}
	/* --response-timeout bounds every request; a shorter route timeout
	 * wins and is counted as one */
	rq->route_tmo = tmo != 0;
	if (resp && (!tmo || resp < tmo)) {
		tmo = resp > UINT32_MAX ? UINT32_MAX : (uint32_t)resp;
		rq->route_tmo = 0;
	}
	if (tmo) {
		now = loop_now_ms(loop);
		loop_timer_arm(loop, &rq->tmr,
		               s->t0 + tmo > now ? s->t0 + tmo - now : 0);
	}
}

/*
 * Goes on with the request of <s> once routed by <res>, whose lease <s>
 * takes over: metrics, the profile's policy, the upstream stream (or the
 * proxy's answer).
 */
static void h2s_begin(struct h2s *s, struct route_result *res)
{
	struct conn *c = s->d->c;
	struct proxy *px = c->px;

	s->flags &= ~H2S_F_ROUTING;
	s->lease = res->lease;
	memset(&res->lease, 0, sizeof(res->lease));
	if (s->lease.svc) {
		/* a balanced request: its series carry dst_* labels */
		s->m = svc_lease_metrics(&s->lease, &px->pm, NULL, c->dir,
		                         s->rq->auth);
	} else {
		s->m = pxmetrics_http(&px->pm, NULL, (enum pxm_dir)c->dir,
		                      s->rq->auth,
		                      res->status ? NULL : &res->ep[0].addr);
	}
	pxmetrics_request(s->m);
	s->flags |= H2S_F_COUNTED;
	if (res->status) {
		h2s_synth(s, res->status, res->reason);
		return;
	}
	s->rq->addr = res->ep[0].addr;
	h2s_policy(s);
	(void)h2s_up_open(s);
}

/* A pending lookup answered (from the loop). */
static void h2s_route_done(void *arg, struct route_result *res)
{
	struct h2s *s = arg;
	struct h2d *d = s->d;

	if (!(s->flags & H2S_F_ROUTING) || !d || !s->did || !s->rq) {
		svc_release(&res->lease, 1);
		return;
	}
	h2s_begin(s, res);
	h2d_dirty(d);
}

/*
 * Sends the request of <s> again, when its answer so far is a failure (a
 * 5xx or failed gRPC head, a broken, reset or refused upstream stream)
 * and nothing of it went to the client. <refused> 1: the upstream
 * refused the stream unprocessed (REFUSED_STREAM, or above the last id
 * of a GOAWAY), which is retried once without a retryable route or the
 * budget; any other retry needs a retryable route and the service's
 * retry budget. Always: the body is whole in the copy (no trailers) and
 * fewer than H2S_MAX_ATTEMPTS were made. The current upstream stream, if
 * any, is abandoned (counted with <status> as a failure on its endpoint's
 * series). Returns 1 when the request went on (sent again, or
 * answered by the proxy meanwhile), 0 when the caller goes on with the
 * failure it has.
 */
static int h2s_retry(struct h2s *s, int refused, int status)
{
	struct h2s_req *rq = s->rq;
	struct proxy *px;
	int no;

	if (!rq || !s->d || !s->did || !rq->replay ||
	    (s->flags & (H2S_F_HEAD_SENT | H2S_F_ROUTING)) ||
	    rq->attempts >= H2S_MAX_ATTEMPTS)
		return 0;
	px = rq->d->c->px;
	if (refused && !rq->refused) {
		rq->refused = 1;
		/* another endpoint of the service when there is one (a
		 * failover: outside the budget, the refusing endpoint left
		 * out), else the same endpoint on another connection */
		if (s->lease.svc)
			(void)svc_failover(&s->lease);
	} else if (!rq->retryable || !s->lease.svc ||
	           svc_retry(&s->lease, 0, &no) != SVC_PICKED) {
		return 0;
	}
	LOG_DEBUG("proxy", "conn %llu: h2 stream %d: attempt %u%s",
	          (unsigned long long)rq->d->c->id, (int)s->did,
	          (unsigned)rq->attempts + 1, refused ? " (refused)" : "");
	if ((s->flags & H2S_F_COUNTED) && s->lease.svc) {
		/* per-endpoint series count attempts: the abandoned one ends
		 * as a failure, the next one counts where it goes */
		pxmetrics_response(s->m, status, -1, 1);
		s->m = svc_lease_metrics(&s->lease, &px->pm, NULL,
		                         rq->d->c->dir, rq->auth);
		pxmetrics_request(s->m);
	}
	h2s_abandon_up(s);
	/* the new stream gets the body from its start; what the client's
	 * window got back already stays given (req.consumed) */
	s->req.fwd = 0;
	s->req.end_sent = 0;
	buf_free(&s->req.ovf);
	if (buf_len(&rq->body)) {
		buf_init(&s->req.ovf, h2side_of(px)->ovf_limit);
		if (buf_append(&s->req.ovf, buf_data(&rq->body),
		               buf_len(&rq->body)) < 0) {
			h2s_synth(s, 502, "out of memory");
			return 1;
		}
	}
	(void)h2s_up_open(s);
	return 1;
}

/* 1 when the response head <head> of a request says it failed: a 5xx,
 * or a gRPC trailers-only answer with a grpc-status other than OK. */
static int h2s_head_failed(const struct h2s *s, const struct h2_head *head,
                           int end_stream)
{
	int g;

	if (head->status >= 500)
		return 1;
	if (!(s->flags & H2S_F_GRPC) || !end_stream)
		return 0;
	g = h2side_grpc_status(head->fields, head->nfields);
	return g > 0;
}

/* ---- upstream callbacks (client role) ---- */

/* An external stream's owner returned <r>: -1 gives the stream up (it is
 * reset, the owner hears no more of it). */
static int h2x_ret(struct h2s *s, int r)
{
	if (r < 0) {
		s->xo = NULL;
		return H2_CB_RESET;
	}
	return 0;
}

#define H2X(s) ((s) && ((s)->flags & H2S_F_EXT))

static int h2u_on_head(void *ctx, int32_t id, void *su,
                       const struct h2_head *head, int end_stream)
{
	struct h2s *s = su;
	struct h2d *d;
	int rc;

	(void)ctx;
	(void)id;
	if (H2X(s))
		return s->xo ? h2x_ret(s, s->xops->on_head(s->xo, head,
		                                           end_stream))
		             : H2_CB_RESET;
	if (!s || !s->d || !s->did)
		return H2_CB_RESET;
	d = s->d;
	if (head->status < 200) {
		if (head->status != 101)
			(void)h2_submit_response(d->h2, s->did, head->status,
			                         head->fields, head->nfields, 0);
		h2d_dirty(d);
		return 0;
	}
	if (s->flags & H2S_F_HEAD_SENT)
		return H2_CB_RESET;
	if (h2s_head_failed(s, head, end_stream) &&
	    h2s_retry(s, 0, head->status ? head->status : 502))
		return H2_CB_RESET;   /* this stream was abandoned */
	h2s_req_free(s);
	s->status = head->status;
	s->grpc = h2side_grpc_status(head->fields, head->nfields);
	pxmetrics_latency(s->m, head->status,
	                  loop_now_ms(&d->c->px->loop) - s->t0);
	rc = h2_submit_response(d->h2, s->did, head->status, head->fields,
	                        head->nfields, end_stream);
	h2d_dirty(d);
	if (rc < 0)
		return H2_CB_RESET;
	s->flags |= H2S_F_HEAD_SENT;
	if (end_stream)
		s->resp.ended = s->resp.end_sent = 1;
	return 0;
}

static int h2u_on_data(void *ctx, int32_t id, void *su, const char *p,
                       size_t n)
{
	struct h2u *u = ctx;
	struct h2s *s = su;

	(void)id;
	if (H2X(s))
		return s->xo ? h2x_ret(s, s->xops->on_data(s->xo, p, n))
		             : H2_CB_RESET;
	if (!s || !s->d || !s->did)
		return H2_CB_RESET;
	if (h2dir_fwd(&s->resp, h2side_of(u->px)->ovf_limit, s->d->h2, s->did,
	              p, n) < 0)
		return H2_CB_RESET;
	h2d_dirty(s->d);
	return 0;
}

static int h2u_on_trailers(void *ctx, int32_t id, void *su,
                           const struct h2_header *f, size_t n)
{
	struct h2s *s = su;
	int g;

	(void)ctx;
	(void)id;
	if (H2X(s))
		return s->xo ? h2x_ret(s, s->xops->on_trailers(s->xo, f, n))
		             : H2_CB_RESET;
	if (!s || !s->d || !s->did)
		return H2_CB_RESET;
	g = h2side_grpc_status(f, n);
	if (g >= 0)
		s->grpc = g;
	s->resp.ended = 1;
	if (buf_len(&s->resp.ovf) == 0) {
		h2_stream_end(s->d->h2, s->did, f, n);
		s->resp.end_sent = 1;
	} else if (h2dir_save_trailers(&s->resp, f, n) < 0) {
		return H2_CB_RESET;
	}
	h2d_dirty(s->d);
	return 0;
}

static void h2u_on_end(void *ctx, int32_t id, void *su)
{
	struct h2u *u = ctx;
	struct h2s *s = su;

	if (H2X(s)) {
		s->flags |= H2S_F_XRESP_END;
		if (s->xo && s->xops->on_end(s->xo) < 0) {
			s->xo = NULL;
			(void)h2_stream_reset(u->h2, id, H2_CANCEL);
			h2u_dirty(u);
		}
		return;
	}
	if (!s || !s->d || !s->did)
		return;
	s->resp.ended = 1;
	if (!s->resp.end_sent && buf_len(&s->resp.ovf) == 0)
		h2dir_end(&s->resp, s->d->h2, s->did);
	h2d_dirty(s->d);
}

static void h2u_on_stream_close(void *ctx, int32_t id, void *su, int reset,
                                uint32_t code)
{
	struct h2u *u = ctx;
	struct h2s *s = su;

	(void)id;
	if (!s)
		return;
	h2s_unlink_u(s);
	s->u = NULL;
	s->uid = 0;
	if (H2X(s)) {
		if (s->xo)
			s->xops->on_close(s->xo, reset, code);
		h2s_free(s, u->px);
		return;
	}
	if (s->d && s->did) {
		if (reset && !(s->flags & H2S_F_HEAD_SENT) &&
		    h2s_retry(s, code == H2_REFUSED_STREAM, 502)) {
			h2d_dirty(s->d);
			return;
		}
		if (reset) {
			s->flags |= H2S_F_FAILED;
			if (!(s->flags & H2S_F_HEAD_SENT))
				h2s_synth(s, code == H2_REFUSED_STREAM ? 503
				                                       : 502,
				          "upstream reset the stream");
			else
				h2_stream_reset(s->d->h2, s->did,
				                code == H2_CANCEL
				                        ? H2_CANCEL
				                        : H2_INTERNAL_ERROR);
		}
		h2d_dirty(s->d);
	} else {
		h2s_free(s, u->px);
	}
}

static void h2u_on_writable(void *ctx, int32_t id, void *su)
{
	struct h2u *u = ctx;
	struct h2s *s = su;

	(void)id;
	if (!s || !s->uid)
		return;
	if (H2X(s)) {
		if (s->xo)
			s->xops->on_writable(s->xo);
		return;
	}
	if (h2dir_push(&s->req, u->h2, s->uid) < 0)
		h2_stream_reset(u->h2, s->uid, H2_INTERNAL_ERROR);
}

static void h2u_on_goaway(void *ctx, int32_t last_id, uint32_t code)
{
	struct h2u *u = ctx;

	(void)last_id;
	(void)code;
	u->goaway = 1;
	h2u_detach_target(u);
}

static void h2u_on_close(void *ctx, const char *reason)
{
	struct h2u *u = ctx;

	LOG_DEBUG("proxy", "h2 upstream connection ended: %s",
	          reason ? reason : "?");
	u->goaway = 1;
	h2u_detach_target(u);
	h2u_dirty(u);
}

static const struct h2_callbacks h2u_cbs = {
	.on_head = h2u_on_head,
	.on_data = h2u_on_data,
	.on_trailers = h2u_on_trailers,
	.on_end = h2u_on_end,
	.on_stream_close = h2u_on_stream_close,
	.on_writable = h2u_on_writable,
	.on_goaway = h2u_on_goaway,
	.on_close = h2u_on_close,
};

/* ---- downstream callbacks (server role) ---- */

/*
 * Routes a new request: keeps its head in the stream's request record,
 * then goes on at once (h2s_begin) or when the pending lookup of its name
 * answers (h2s_route_done).
 */
static void h2d_route(struct h2d *d, struct h2s *s,
                      const struct h2_head *head, int end_stream)
{
	struct conn *c = d->c;
	struct proxy *px = c->px;
	struct h2_header f[H2SIDE_MAX_FIELDS];
	struct route_query q;
	struct route_result res;
	struct str auth = head->authority;
	size_t i, n = 0;
	int rc, orig = 0, abs = 0;

	for (i = 0; i < head->nfields; i++) {
		const struct h2_header *h = &head->fields[i];

		if (auth.len == 0 && str_eq_cstr(h->name, "host"))
			auth = h->value;
		if (str_eq_cstr(h->name, "content-type") &&
		    h->value.len >= 16 &&
		    !memcmp(h->value.p, "application/grpc", 16))
			s->flags |= H2S_F_GRPC;
		if (c->dir == ROUTE_INBOUND &&
		    str_eq_cstr(h->name, RW_HDR_CLIENT_ID))
			continue;
		if (c->dir == ROUTE_INBOUND && str_eq_cstr(h->name, H2H1_HDR)) {
			/* an HTTP/1 request upgraded by the client's proxy:
			 * it goes to the application as HTTP/1.1 */
			orig = orig ? -1 : h2h1_orig_proto(h->value, &abs);
			continue;
		}
		if (n < H2SIDE_MAX_FIELDS)
			f[n++] = *h;
	}
	if (end_stream)
		s->req.ended = 1;
	if (orig < 0) {
		s->m = pxmetrics_http(&px->pm, NULL, (enum pxm_dir)c->dir,
		                      auth, NULL);
		pxmetrics_request(s->m);
		s->flags |= H2S_F_COUNTED;
		h2s_synth(s, 400, "invalid " H2H1_HDR);
		return;
	}
	if (orig)
		s->flags |= H2S_F_ORIG | (abs ? H2S_F_ORIG_ABS : 0);
	rc = h2s_req_new(d, s, head, auth, f, n);
	if (rc < 0) {
		s->m = pxmetrics_http(&px->pm, NULL, (enum pxm_dir)c->dir,
		                      auth, NULL);
		pxmetrics_request(s->m);
		s->flags |= H2S_F_COUNTED;
		h2s_synth(s, rc == -E2BIG ? 431 : 503, rc == -E2BIG ?
		          "request head too large to forward" :
		          "out of memory");
		return;
	}
	memset(&q, 0, sizeof(q));
	q.dir = (enum route_dir)c->dir;
	q.http = 1;
	q.orig_dst = (c->flags & CONN_F_HAS_ORIG) ? &c->orig : NULL;
	q.local = &c->local;
	q.authority = s->rq->auth;   /* stays valid while the lookup waits */
	if (route_resolve(&px->cfg.route, &q, &res, &s->rq->rw,
	                  h2s_route_done, s) == ROUTE_PENDING) {
		LOG_DEBUG("proxy", "conn %llu: h2 stream %d: waiting for the "
		          "name to be resolved", (unsigned long long)c->id,
		          (int)s->did);
		s->flags |= H2S_F_ROUTING;
		return;
	}
	h2s_begin(s, &res);
}

static int h2d_on_head(void *ctx, int32_t id, void *su,
                       const struct h2_head *head, int end_stream)
{
	struct h2d *d = ctx;
	struct proxy *px = d->c->px;
	struct h2s *s;

	(void)su;
	if (head->status || px->draining)
		return H2_CB_RESET;
	s = mem_pool_zget(&h2side_of(px)->s_pool);
	if (!s)
		return H2_CB_RESET;
	s->d = d;
	s->did = id;
	s->grpc = -1;
	s->t0 = loop_now_ms(&px->loop);
	s->prog = s->t0;
	if (h2_stream_set_user(d->h2, id, s) < 0) {
		mem_pool_put(&h2side_of(px)->s_pool, s);
		return H2_CB_RESET;
	}
	s->dnext = d->streams;
	if (d->streams)
		d->streams->dprev = s;
	d->streams = s;
	d->nstreams++;
	if (head->method.len == 7 && !memcmp(head->method.p, "CONNECT", 7)) {
		s->m = pxmetrics_http(&px->pm, NULL, (enum pxm_dir)d->c->dir,
		                      head->authority, NULL);
		pxmetrics_request(s->m);
		s->flags |= H2S_F_COUNTED;
		h2s_synth(s, 501, "CONNECT is not supported");
		return 0;
	}
	h2d_route(d, s, head, end_stream);
	return 0;
}

static int h2d_on_data(void *ctx, int32_t id, void *su, const char *p,
                       size_t n)
{
	struct h2d *d = ctx;
	struct h2s *s = su;

	if (!s) {
		h2_consume(d->h2, id, n);
		return 0;
	}
	s->req.rcvd += n;
	h2s_body_keep(s, p, n);
	if (s->flags & H2S_F_ROUTING) {
		/* kept unconsumed: the client's stream window bounds it */
		if (s->req.ovf.limit == 0)
			buf_init(&s->req.ovf, h2side_of(d->c->px)->ovf_limit);
		return buf_append(&s->req.ovf, p, n) < 0 ? H2_CB_RESET : 0;
	}
	if (s->hx)
		/* consumed as the HTTP/1 upstream takes it (h2s_h1_consumed) */
		return h2h1_req_data(s->hx, p, n) < 0 ? H2_CB_RESET : 0;
	if (!s->u || !s->uid) {
		/* nobody upstream (answered by the proxy): discard */
		h2_consume(d->h2, id, n);
		s->req.consumed += n;
		return 0;
	}
	if (h2dir_fwd(&s->req, h2side_of(d->c->px)->ovf_limit, s->u->h2,
	              s->uid, p, n) < 0)
		return H2_CB_RESET;
	h2u_dirty(s->u);
	return 0;
}

static int h2d_on_trailers(void *ctx, int32_t id, void *su,
                           const struct h2_header *f, size_t n)
{
	struct h2s *s = su;

	(void)ctx;
	(void)id;
	if (!s)
		return 0;
	s->req.ended = 1;
	/* request trailers are not kept for a replay */
	if (s->rq)
		h2s_body_drop(s->rq);
	if (s->flags & H2S_F_ROUTING)
		return h2dir_save_trailers(&s->req, f, n) < 0 ? H2_CB_RESET : 0;
	if (s->hx)
		return h2h1_req_end(s->hx, f, n) < 0 ? H2_CB_RESET : 0;
	if (!s->u || !s->uid)
		return 0;
	if (buf_len(&s->req.ovf) == 0) {
		h2_stream_end(s->u->h2, s->uid, f, n);
		s->req.end_sent = 1;
	} else if (h2dir_save_trailers(&s->req, f, n) < 0) {
		return H2_CB_RESET;
	}
	h2u_dirty(s->u);
	return 0;
}

static void h2d_on_end(void *ctx, int32_t id, void *su)
{
	struct h2s *s = su;

	(void)ctx;
	(void)id;
	if (!s)
		return;
	s->req.ended = 1;
	if (s->hx) {
		if (h2h1_req_end(s->hx, NULL, 0) < 0 && s->hx)
			h2s_synth(s, 502, "request end failed");
		return;
	}
	if (!s->u || !s->uid)
		return;
	if (!s->req.end_sent && buf_len(&s->req.ovf) == 0)
		h2dir_end(&s->req, s->u->h2, s->uid);
	h2u_dirty(s->u);
}

static void h2d_on_stream_close(void *ctx, int32_t id, void *su, int reset,
                                uint32_t code)
{
	struct h2d *d = ctx;
	struct h2s *s = su;

	(void)id;
	(void)code;
	if (!s)
		return;
	h2s_count(s, reset);
	h2s_req_free(s);
	h2s_unlink_d(s);
	s->d = NULL;
	s->did = 0;
	if (s->hx) {
		/* the client went first: the HTTP/1 upstream is closed */
		h2h1_release(s->hx);
		s->hx = NULL;
	}
	if (s->u && s->uid) {
		if (reset || !s->req.end_sent) {
			h2_stream_reset(s->u->h2, s->uid, H2_CANCEL);
			h2u_dirty(s->u);
		}
	} else {
		h2s_free(s, d->c->px);
	}
}

static void h2d_on_writable(void *ctx, int32_t id, void *su)
{
	struct h2d *d = ctx;
	struct h2s *s = su;

	(void)id;
	if (!s || !s->did)
		return;
	if (s->hx) {
		h2h1_resume(s->hx);
		return;
	}
	if (h2dir_push(&s->resp, d->h2, s->did) < 0)
		h2_stream_reset(d->h2, s->did, H2_INTERNAL_ERROR);
}

static void h2d_on_close(void *ctx, const char *reason)
{
	struct h2d *d = ctx;

	LOG_DEBUG("proxy", "conn %llu: h2 connection ended: %s",
	          (unsigned long long)d->c->id, reason ? reason : "?");
	h2d_dirty(d);
}

static const struct h2_callbacks h2d_cbs = {
	.on_head = h2d_on_head,
	.on_data = h2d_on_data,
	.on_trailers = h2d_on_trailers,
	.on_end = h2d_on_end,
	.on_stream_close = h2d_on_stream_close,
	.on_writable = h2d_on_writable,
	.on_close = h2d_on_close,
};

/* ---- downstream connection ---- */

static void h2d_update(struct conn *c)
{
	struct h2d *d = c->h2;
	struct proxy *px = c->px;
	int ev = c->cli.events & EV_WRITE;

	if (!d->failed && h2_want_read(d->h2) && !ep_out_pending(&c->cli) &&
	    !(c->cli.flags & EP_F_EOF))
		ev |= EV_READ;
	ep_want(px->loop.ev, &c->cli, ev);
	if (d->tmode == H2D_T_SETTINGS)
		return;
	if (d->nstreams == 0 && d->tmode != H2D_T_KEEPALIVE) {
		d->tmode = H2D_T_KEEPALIVE;
		conn_timeout(c, CONN_T_KEEPALIVE, px->cfg.keepalive_timeout_ms);
	} else if (d->nstreams && d->tmode != H2D_T_STALL) {
		d->tmode = H2D_T_STALL;
		conn_timeout(c, CONN_T_IDLE, px->cfg.stall_timeout_ms);
	}
}

/* Resets the streams whose response output has been stuck (the client
 * does not open its window, or does not read) for the stall timeout. */
static void h2d_stall_check(struct conn *c)
{
	struct h2d *d = c->h2;
	uint64_t now = loop_now_ms(&c->px->loop);
	uint64_t lim = c->px->cfg.stall_timeout_ms;
	struct h2s *s;

	for (s = d->streams; s; s = s->dnext) {
		if (!s->did || now - s->prog < lim)
			continue;
		if (!h2_stream_queued(d->h2, s->did) &&
		    !buf_len(&s->resp.ovf) && !ep_out_pending(&c->cli)) {
			s->prog = now;  /* nothing waiting: not stalled */
			continue;
		}
		LOG_DEBUG("proxy", "conn %llu: h2 stream %d: output stalled, "
		          "reset", (unsigned long long)c->id, (int)s->did);
		s->flags |= H2S_F_FAILED;
		h2_stream_reset(d->h2, s->did, H2_CANCEL);
	}
	h2d_dirty(d);
}

static void h2d_flush(void *arg)
{
	struct h2d *d = arg;
	struct conn *c = d->c;
	struct h2s *s;

	if (c->st != CONN_ST_H2)
		return;
	if (h2side_pump(c->px->loop.ev, d->h2, &c->cli) < 0) {
		conn_close(c, 1, 0);
		return;
	}
	/* response bytes that left the queue open the upstream windows */
	for (s = d->streams; s; s = s->dnext)
		if (s->u && s->uid && s->did &&
		    h2dir_account(&s->resp, d->h2, s->did, s->u->h2, s->uid)) {
			s->prog = loop_now_ms(&c->px->loop);
			h2u_dirty(s->u);
		}
	if (h2_is_closed(d->h2) && !ep_out_pending(&c->cli)) {
		LOG_DEBUG("proxy", "conn %llu: h2 connection done (%s)",
		          (unsigned long long)c->id,
		          h2_close_reason(d->h2) ? h2_close_reason(d->h2)
		                                 : "no more streams");
		conn_close(c, d->failed, 0);
		return;
	}
	h2d_update(c);
}

int h2side_start(struct conn *c, const char *data, size_t len, int from_in)
{
	struct proxy *px = c->px;
	struct h2side *hs = h2side_of(px);
	struct h2d *d = mem_pool_zget(&hs->d_pool);
	char err[128];

	c->st = CONN_ST_H2;
	if (!d) {
		conn_close(c, 1, 0);
		return -1;
	}
	d->c = c;
	d->tmode = H2D_T_SETTINGS;
	loop_defer_init(&d->flush, h2d_flush, d);
	d->h2 = h2_new(H2_SERVER, &hs->lim, &h2d_cbs, d, err, sizeof(err));
	if (!d->h2) {
		mem_pool_put(&hs->d_pool, d);
		c->st = CONN_ST_DETECT;
		conn_close(c, 1, 0);
		return -1;
	}
	c->h2 = d;
	if (len && h2_feed(d->h2, data, len) < 0)
		d->failed = 1;
	if (from_in)
		ep_consume_in(&c->cli, buf_len(&c->cli.in));
	conn_timeout(c, CONN_T_HEADER, px->cfg.header_timeout_ms);
	h2d_flush(d);
	return conn_closed(c) ? -1 : 0;
}

void h2side_on_cli(struct conn *c, int revents)
{
	struct h2d *d = c->h2;
	ssize_t n;

	if (revents & EV_WRITE) {
		if (ep_flush(c->px->loop.ev, &c->cli) < 0) {
			conn_close(c, 1, 0);
			return;
		}
	}
	if ((revents & EV_READ) && !d->failed) {
		n = ep_read(&c->cli, ep_scratch, H2SIDE_READ_BUDGET);
		if (n == -EAGAIN) {
			/* spurious */
		} else if (n <= 0) {
			LOG_DEBUG("proxy", "conn %llu: h2 client %s with %u "
			          "stream(s) open", (unsigned long long)c->id,
			          n == 0 ? "closed" : "failed", d->nstreams);
			conn_close(c, n < 0 || d->nstreams, 0);
			return;
		} else if (h2_feed(d->h2, ep_scratch, (size_t)n) < 0) {
			d->failed = 1;
		} else if (h2_close_reason(d->h2)) {
			struct h2_stats st;

			/* we said GOAWAY for a violation: what the peer still
			 * sends would only cost decoding (HPACK must be decoded
			 * even for refused streams); read no more */
			h2_get_stats(d->h2, &st);
			if (st.goaway_sent && st.close_code != H2_NO_ERROR)
				d->failed = 1;
		}
	}
	h2d_flush(d);
}

void h2side_on_timeout(struct conn *c, int kind)
{
	struct h2d *d = c->h2;
	struct h2_stats st;

	d->tmode = H2D_T_NONE;
	if (kind == CONN_T_HEADER) {
		h2_get_stats(d->h2, &st);
		if (!st.settings_received) {
			conn_close(c, 1, 0);
			return;
		}
		h2d_update(c);
		return;
	}
	if (kind == CONN_T_IDLE) {
		if (c->px->cfg.stall_timeout_ms)
			h2d_stall_check(c);
		h2d_update(c);
		return;
	}
	if (kind == CONN_T_KEEPALIVE && d->nstreams == 0) {
		if (h2_goaway(d->h2, 0) < 0) {
			conn_close(c, 0, 0);
			return;
		}
		h2d_flush(d);
	}
}

void h2side_drain(struct conn *c)
{
	struct h2d *d = c->h2;

	if (!d)
		return;
	if (h2_goaway(d->h2, d->nstreams ? 1 : 0) < 0) {
		conn_close(c, 0, 0);
		return;
	}
	h2d_dirty(d);
}

void h2side_release(struct conn *c)
{
	struct h2d *d = c->h2;
	struct proxy *px = c->px;
	struct h2s *s;

	if (!d)
		return;
	loop_defer_cancel(&px->loop, &d->flush);
	while ((s = d->streams) != NULL) {
		h2s_count(s, 1);
		h2s_req_free(s);
		h2s_unlink_d(s);
		s->d = NULL;
		s->did = 0;
		if (s->hx) {
			h2h1_release(s->hx);
			s->hx = NULL;
		}
		if (s->u && s->uid) {
			h2_stream_reset(s->u->h2, s->uid, H2_CANCEL);
			h2u_dirty(s->u);
		} else {
			h2s_free(s, px);
		}
	}
	h2_free(d->h2);
	c->h2 = NULL;
	mem_pool_put(&h2side_of(px)->d_pool, d);
}

/* ---- external upstream streams (h2side.h) ---- */

static struct h2s *h2x_s(struct h2side_x *x)
{
	return (struct h2s *)(void *)x;
}

struct h2side_x *h2side_x_open(struct proxy *px, int dir,
                               const struct sock_addr *addr,
                               const struct h2_request *req, int end,
                               const struct h2side_xops *ops, void *o,
                               int *status, const char **why)
{
	struct h2u *u;
	struct h2s *s;
	int32_t uid;

	u = h2u_get(px, dir, addr, status, why);
	if (!u)
		return NULL;
	s = mem_pool_zget(&h2side_of(px)->s_pool);
	if (!s) {
		*status = 503;
		*why = "out of memory";
		return NULL;
	}
	s->flags = H2S_F_EXT;
	s->xops = ops;
	s->xo = o;
	s->grpc = -1;
	uid = h2_submit_request(u->h2, req, end, s);
	if (uid <= 0) {
		mem_pool_put(&h2side_of(px)->s_pool, s);
		*status = uid == -EAGAIN ? 503 : 502;
		*why = "cannot open the upstream stream";
		return NULL;
	}
	if (end)
		s->flags |= H2S_F_XREQ_END;
	h2s_link_u(s, u, uid);
	return (struct h2side_x *)(void *)s;
}

ssize_t h2side_x_write(struct h2side_x *x, const void *p, size_t n)
{
	struct h2s *s = h2x_s(x);
	ssize_t r;

	if (!s->u || !s->uid)
		return -EPIPE;
	r = h2_stream_write(s->u->h2, s->uid, p, n);
	h2u_dirty(s->u);
	return r;
}

int h2side_x_end(struct h2side_x *x, const struct h2_header *f, size_t n)
{
	struct h2s *s = h2x_s(x);
	int r;

	if (!s->u || !s->uid)
		return -EPIPE;
	r = h2_stream_end(s->u->h2, s->uid, f, n);
	if (r == 0)
		s->flags |= H2S_F_XREQ_END;
	h2u_dirty(s->u);
	return r;
}

void h2side_x_consume(struct h2side_x *x, size_t n)
{
	struct h2s *s = h2x_s(x);

	if (!s->u || !s->uid || n == 0)
		return;
	(void)h2_consume(s->u->h2, s->uid, n);
	h2u_dirty(s->u);
}

void h2side_x_close(struct h2side_x *x)
{
	struct h2s *s = h2x_s(x);
	struct h2u *u = s->u;
	struct proxy *px;

	if (!u) {
		/* cannot happen: a stream without connection was closed */
		return;
	}
	px = u->px;
	if (s->uid) {
		(void)h2_stream_set_user(u->h2, s->uid, NULL);
		if ((s->flags & (H2S_F_XREQ_END | H2S_F_XRESP_END)) !=
		    (H2S_F_XREQ_END | H2S_F_XRESP_END))
			(void)h2_stream_reset(u->h2, s->uid, H2_CANCEL);
	}
	h2s_unlink_u(s);
	s->u = NULL;
	s->uid = 0;
	h2u_dirty(u);
	h2s_free(s, px);
}
