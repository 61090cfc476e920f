/*
 * h2: connection life cycle, input and output, streams and the submit API.
 * The contract is in h2.h; limits and the failure path are in h2_limits.c,
 * the nghttp2 callbacks in h2_cb.c.
 *
 * IMPLEMENTATION NOTES
 * Memory. nghttp2 allocates through an nghttp2_mem whose hooks charge a
 * per-connection counter (mem_size() gives the size back on free); h2's
 * own structures go through the same counter. Past lim.mem_max the hook
 * returns NULL, nghttp2 reports NGHTTP2_ERR_NOMEM and the connection ends
 * with GOAWAY(ENHANCE_YOUR_CALM), written by h2 itself without allocating.
 * Send queues are counted apart (lim.conn_send_buffer) because the owner
 * controls them and gets backpressure (short writes) instead of a failure.
 *
 * Body bytes are copied once, by h2_stream_write, into the stream's ring.
 * DATA frames are sent with NGHTTP2_DATA_FLAG_NO_COPY: the read callback
 * only decides a length, and the send_data callback writes the 9-byte frame
 * header and the bytes straight from the ring into the owner's output
 * buffer. Everything else (HEADERS, control frames) comes out of
 * nghttp2_session_mem_send2 as chunks that are appended to the output
 * buffer; a chunk that does not fit is kept (its memory stays valid until
 * the next mem_send2 call, which we do not make before it is drained).
 *
 * Streams are named by id. A stream's struct is nghttp2's
 * stream_user_data; a client stream whose HEADERS has not left yet is not
 * in nghttp2's map, so it is found on the live list instead (rare, short).
 *
 * Re-entrancy and deferred notification: public entry points that can run
 * callbacks bump c->depth; when the outermost one returns, h2_settle tells
 * the owner about the end of the connection (on_stream_close for each
 * stream it still knows, then on_close). Doing it there rather than deep
 * inside nghttp2's stack means the owner's reactions never interleave with
 * nghttp2's processing of a frame.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/h2_int.h"
#include "core/mem.h"

#define H2_RING_MIN 4096u
#define H2_DATA_MIN 1024u  /* smallest DATA frame cut to fit <out> */
#define H2_OUT_ROUNDS 4    /* send / on_writable rounds per h2_output */

/* ---- memory ---------------------------------------------------------- */

static void *h2_mem_malloc(size_t n, void *ud)
{
	struct h2_conn *c = ud;
	void *p;

	if (n > c->lim.mem_max - c->mem_used) {
		c->mem_over = 1;
		return NULL;
	}
	p = mem_alloc(n ? n : 1);
	if (!p) {
		c->mem_oom = 1;
		return NULL;
	}
	c->mem_used += mem_size(p);
	if (c->mem_used > c->mem_peak)
		c->mem_peak = c->mem_used;
	return p;
}

static void h2_mem_free(void *p, void *ud)
{
	struct h2_conn *c = ud;

	if (!p)
		return;
	c->mem_used -= mem_size(p);
	mem_free(p);
}

static void *h2_mem_calloc(size_t nmemb, size_t size, void *ud)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = h2_mem_malloc(nmemb * size, ud);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

static void *h2_mem_realloc(void *p, size_t n, void *ud)
{
	struct h2_conn *c = ud;
	size_t old;
	void *np;

	if (!p)
		return h2_mem_malloc(n, ud);
	if (n == 0) {
		h2_mem_free(p, ud);
		return NULL;
	}
	old = mem_size(p);
	if (n > old && n - old > c->lim.mem_max - c->mem_used) {
		c->mem_over = 1;
		return NULL;
	}
	np = mem_realloc(p, n);
	if (!np) {
		c->mem_oom = 1;
		return NULL;
	}
	c->mem_used = c->mem_used - old + n;
	if (c->mem_used > c->mem_peak)
		c->mem_peak = c->mem_used;
	return np;
}

/* Allocates <n> bytes charged to <c> (NULL past the cap). */
/*
 * Submit scratch, shared by every connection of the process: a submit
 * fills it and hands it to nghttp2, which copies the fields before
 * returning, and nothing runs in between (meshd has one loop per process),
 * so one array serves all. Only the pages a submit touches become
 * resident.
 */
nghttp2_nv h2_nv_scratch[H2_NV_MAX];

void *h2_alloc(struct h2_conn *c, size_t n)
{
	return h2_mem_malloc(n, c);
}

void h2_dealloc(struct h2_conn *c, void *p)
{
	h2_mem_free(p, c);
}

/* ---- time, re-entrancy, end of connection ------------------------------ */

static uint64_t h2_clock(struct h2_conn *c)
{
	struct timespec ts;

	if (c->cb.now_ms)
		return c->cb.now_ms(c->ctx);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* nghttp2 has nothing more to do: the GOAWAY exchange is over. */
static int h2_ng_done(const struct h2_conn *c)
{
	return !nghttp2_session_want_read(c->ng) &&
	       !nghttp2_session_want_write(c->ng);
}

static void h2_enter(struct h2_conn *c)
{
	c->depth++;
}

/* Tells the owner, once, that the connection can carry no more streams. */
static void h2_settle(struct h2_conn *c)
{
	struct h2_stream *s, *next;
	uint32_t code;

	if (c->close_notified || (!c->failed && !h2_ng_done(c)))
		return;
	c->close_notified = 1;
	code = c->failed ? c->fail_code : H2_CANCEL;
	for (s = c->streams; s; s = next) {
		next = s->next;
		if ((s->flags & (H2S_F_KNOWN | H2S_F_DEAD)) != H2S_F_KNOWN)
			continue;
		s->flags |= H2S_F_DEAD;
		if (c->cb.on_stream_close)
			c->cb.on_stream_close(c->ctx, s->id, s->user, 1, code);
	}
	if (c->cb.on_close)
		c->cb.on_close(c->ctx, h2_close_reason(c));
}

static void h2_leave(struct h2_conn *c)
{
	if (--c->depth == 0)
		h2_settle(c);
}

/* After a call into nghttp2: a refused allocation ends the connection even
 * where nghttp2 treats it as recoverable. */
static void h2_check_mem(struct h2_conn *c)
{
	if (!c->failed && (c->mem_over || c->mem_oom))
		h2_fail(c, c->mem_over ? H2_ENHANCE_YOUR_CALM :
		        H2_INTERNAL_ERROR, "memory");
}

/* ---- streams ----------------------------------------------------------- */

/* A new stream struct on the live list (NULL past the memory cap). */
struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id)
{
	struct h2_stream *s = h2_alloc(c, sizeof(*s));

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->opened_ms = c->now;
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	c->nstreams++;
	c->streams_total++;
	c->last_activity = c->now;
	return s;
}

static void h2_ring_release(struct h2_conn *c, struct h2_stream *s)
{
	if (!s->q)
		return;
	c->sendq_used -= s->qcap;
	MEM_FREE(&s->q);
	s->qcap = 0;
	s->qhead = 0;
	c->space_freed = 1;
}

/* Unlinks and frees <s> with its ring and trailers. */
void h2_stream_free(struct h2_conn *c, struct h2_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	c->nstreams--;
	h2_ring_release(c, s);
	h2_dealloc(c, s->trailers);
	h2_dealloc(c, s);
}

/* The live stream <id>, or NULL (unknown, closed, or already reported
 * closed to the owner). */
struct h2_stream *h2_stream_find(const struct h2_conn *c, int32_t id)
{
	struct h2_stream *s;

	if (id <= 0)
		return NULL;
	s = nghttp2_session_get_stream_user_data(c->ng, id);
	if (!s && c->role == H2_CLIENT) {
		for (s = c->streams; s; s = s->next)
			if (s->id == id && (s->flags & H2S_F_PENDING))
				break;
	}
	if (s && (s->flags & H2S_F_DEAD))
		return NULL;
	return s;
}

/*
 * <s> is finished: its unconsumed bytes go back to the connection window,
 * the owner hears of it (if it knew it and was not told yet), and it is
 * freed.
 */
void h2_stream_closed(struct h2_conn *c, struct h2_stream *s, int reset,
                      uint32_t code)
{
	if (s->unconsumed && !c->failed)
		nghttp2_session_consume_connection(c->ng, s->unconsumed);
	s->unconsumed = 0;
	if ((s->flags & (H2S_F_KNOWN | H2S_F_DEAD)) == H2S_F_KNOWN) {
		s->flags |= H2S_F_DEAD;
		if (c->cb.on_stream_close)
			c->cb.on_stream_close(c->ctx, s->id, s->user, reset,
			                      code);
	}
	c->last_activity = c->now;
	h2_stream_free(c, s);
}

/* Room h2_stream_write could use on <s> now, and the ring capacity that
 * needs (in *<cap>). */
static size_t h2_ring_room(const struct h2_conn *c, const struct h2_stream *s,
                           size_t want, uint32_t *cap)
{
	size_t need, budget;
	uint32_t nc = s->qcap ? s->qcap : H2_RING_MIN;

	if (want > c->lim.stream_send_buffer - s->qlen)
		want = c->lim.stream_send_buffer - s->qlen;
	need = s->qlen + want;
	while (nc < need)
		nc *= 2;
	/* shrink the growth until the connection budget allows it */
	budget = c->lim.conn_send_buffer - c->sendq_used + s->qcap;
	while (nc > s->qcap && nc > budget)
		nc /= 2;
	if (nc < H2_RING_MIN || nc < s->qcap || nc > budget) {
		*cap = s->qcap;
		return s->qcap - s->qlen < want ? s->qcap - s->qlen : want;
	}
	*cap = nc;
	return nc - s->qlen < want ? nc - s->qlen : want;
}

/* Grows <s>'s ring to <cap> bytes, unwrapping its content. */
static int h2_ring_grow(struct h2_conn *c, struct h2_stream *s, uint32_t cap)
{
	char *nq;
	uint32_t first;

	if (cap <= s->qcap)
		return 0;
	nq = mem_alloc(cap);
	if (!nq)
		return -1;
	if (s->qlen) {
		first = s->qcap - s->qhead;
		if (first > s->qlen)
			first = s->qlen;
		memcpy(nq, s->q + s->qhead, first);
		memcpy(nq + first, s->q, s->qlen - first);
	}
	c->sendq_used += cap - s->qcap;
	if (c->sendq_used > c->sendq_peak)
		c->sendq_peak = c->sendq_used;
	mem_free(s->q);
	s->q = nq;
	s->qcap = cap;
	s->qhead = 0;
	return 0;
}

/* ---- DATA: read and send callbacks ------------------------------------- */

/*
 * nghttp2 asks how much DATA to send on a stream. We answer with a length
 * only (NO_COPY); the bytes leave in h2_send_data_cb. Nothing queued:
 * defer (h2_stream_write / h2_stream_end resume us), or finish the stream.
 */
nghttp2_ssize h2_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = src->ptr;
	struct h2_trailers *t;
	size_t n, room;

	(void)buf;
	if (s->flags & H2S_F_LOCAL_RST) {
		s->flags |= H2S_F_DEFERRED;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (s->qlen == 0) {
		if (!(s->flags & H2S_F_EOF)) {
			s->flags |= H2S_F_DEFERRED;
			return NGHTTP2_ERR_DEFERRED;
		}
		s->flags |= H2S_F_EOF_DONE;
		t = s->trailers;
		if (t) {
			/* no empty DATA frame before trailers */
			s->trailers = NULL;
			nghttp2_submit_trailer(ng, id, t->nv, t->n);
			h2_dealloc(c, t);
			s->flags |= H2S_F_DEFERRED;
			return NGHTTP2_ERR_DEFERRED;
		}
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	n = len < s->qlen ? len : s->qlen;
	room = c->out ? buf_room(c->out) : 0;
	if (room < 9 + n) {
		/* cut the frame to fit, but not into slivers unless <out> is
		 * empty and simply small */
		if (room <= 9 || (room <= 9 + H2_DATA_MIN &&
		                  buf_len(c->out) > 0))
			return NGHTTP2_ERR_PAUSE;
		n = room - 9;
	}
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n == s->qlen && (s->flags & H2S_F_EOF)) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		s->flags |= H2S_F_EOF_DONE;
		t = s->trailers;
		if (t) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			s->trailers = NULL;
			nghttp2_submit_trailer(ng, id, t->nv, t->n);
			h2_dealloc(c, t);
		}
	}
	return (nghttp2_ssize)n;
}

/* Writes one DATA frame (header, body from the ring, padding) into the
 * owner's buffer, or asks nghttp2 to come back when there is room. */
int h2_send_data_cb(nghttp2_session *ng, nghttp2_frame *fr,
                    const uint8_t *framehd, size_t len,
                    nghttp2_data_source *src, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = src->ptr;
	size_t pad = fr->data.padlen, total = 9 + len + pad, first;
	char *dst;

	(void)ng;
	if (len > s->qlen)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (!c->out || buf_room(c->out) < total)
		return NGHTTP2_ERR_WOULDBLOCK;
	dst = buf_reserve(c->out, total);
	if (!dst)
		return NGHTTP2_ERR_WOULDBLOCK;
	memcpy(dst, framehd, 9);
	dst += 9;
	if (pad) {
		*dst++ = (char)(pad - 1);
	}
	first = s->qcap - s->qhead;
	if (first > len)
		first = len;
	memcpy(dst, s->q + s->qhead, first);
	memcpy(dst + first, s->q, len - first);
	if (pad > 1)
		memset(dst + len, 0, pad - 1);
	buf_produce(c->out, total);
	s->qhead = (uint32_t)((s->qhead + len) & (s->qcap - 1));
	s->qlen -= (uint32_t)len;
	if (s->qlen == 0) {
		s->qhead = 0;
		/* idle rings go back to the budget when big, when another
		 * stream is waiting for budget, or when nothing more will be
		 * written (a long-lived stream that only receives, like a
		 * gRPC server stream's request side, would hold it for hours) */
		if (s->qcap > H2_RING_MIN * 4 || c->sendq_starved ||
		    (s->flags & H2S_F_EOF))
			h2_ring_release(c, s);
	}
	if (s->flags & H2S_F_WANT_WR)
		c->space_freed = 1;
	return 0;
}

/* ---- creation and destruction ------------------------------------------ */

static int h2_setup(struct h2_conn *c, char *err, size_t errlen)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[8];
	size_t niv = 0;
	int rv;

	if (nghttp2_session_callbacks_new(&cbs) != 0 ||
	    nghttp2_option_new(&opt) != 0) {
		rv = -1;
		goto out;
	}
	h2_cb_install(cbs);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(opt,
	        c->lim.max_concurrent_streams);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt,
	        c->lim.max_deflate_table_size);
	nghttp2_option_set_max_outbound_ack(opt, c->lim.max_outbound_ack);
	nghttp2_option_set_max_settings(opt, c->lim.max_settings_entries);
	nghttp2_option_set_stream_reset_rate_limit(opt, c->lim.reset_burst,
	                                           c->lim.reset_rate);
	nghttp2_option_set_max_continuations(opt, c->lim.max_continuations);
	nghttp2_option_set_no_closed_streams(opt, 1);
	if (c->role == H2_SERVER)
		rv = nghttp2_session_server_new3(&c->ng, cbs, c, opt,
		                                 &c->ngmem);
	else
		rv = nghttp2_session_client_new3(&c->ng, cbs, c, opt,
		                                 &c->ngmem);
	if (rv != 0)
		goto out;
	iv[niv++] = (nghttp2_settings_entry){
		NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		c->lim.max_concurrent_streams };
	iv[niv++] = (nghttp2_settings_entry){
		NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
		c->lim.initial_window_size };
	iv[niv++] = (nghttp2_settings_entry){
		NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		c->lim.max_header_list_size };
	iv[niv++] = (nghttp2_settings_entry){
		NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 };
	if (c->lim.header_table_size != 4096)
		iv[niv++] = (nghttp2_settings_entry){
			NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
			c->lim.header_table_size };
	if (c->lim.max_frame_size != 16384)
		iv[niv++] = (nghttp2_settings_entry){
			NGHTTP2_SETTINGS_MAX_FRAME_SIZE,
			c->lim.max_frame_size };
	if (c->role == H2_CLIENT)
		iv[niv++] = (nghttp2_settings_entry){
			NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
	rv = nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, niv);
	if (rv == 0 && c->lim.conn_window_size > 65535)
		rv = nghttp2_session_set_local_window_size(c->ng,
		        NGHTTP2_FLAG_NONE, 0, (int32_t)c->lim.conn_window_size);
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0 && err && errlen)
		snprintf(err, errlen, "h2: session setup: %s",
		         rv == -1 ? "out of memory" : nghttp2_strerror(rv));
	return rv ? -1 : 0;
}

struct h2_conn *h2_new(enum h2_role role, const struct h2_limits *lim,
                       const struct h2_callbacks *cb, void *ctx,
                       char *err, size_t errlen)
{
	struct h2_conn *c;

	if (role != H2_SERVER && role != H2_CLIENT) {
		if (err && errlen)
			snprintf(err, errlen, "h2: bad role");
		return NULL;
	}
	c = mem_calloc(1, sizeof(*c));
	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "h2: out of memory");
		return NULL;
	}
	c->role = role;
	if (lim)
		c->lim = *lim;
	else
		h2_limits_default(&c->lim);
	h2_limits_sanitize(&c->lim);
	if (cb)
		c->cb = *cb;
	c->ctx = ctx;
	c->ngmem = (nghttp2_mem){ c, h2_mem_malloc, h2_mem_free,
	                          h2_mem_calloc, h2_mem_realloc };
	c->now = h2_clock(c);
	c->last_activity = c->now;
	c->r_empty.start = c->r_ping.start = c->r_settings.start = c->now;
	c->r_wu.start = c->r_prio.start = c->r_rst_recv.start = c->now;
	c->r_rst_sent.start = c->r_hdr_over.start = c->now;
	c->r_glitch.start = c->now;
	c->sc_preface = role == H2_SERVER ? NGHTTP2_CLIENT_MAGIC_LEN : 0;
	c->hb_cap = c->lim.max_header_fields;
	c->nv_cap = c->hb_cap + 8;
	c->nv = h2_nv_scratch;
	if (h2_setup(c, err, errlen) != 0) {
		h2_free(c);
		return NULL;
	}
	return c;
}

void h2_free(struct h2_conn *c)
{
	if (!c)
		return;
	h2_hb_release(c);
	/* nghttp2 frees through our hooks, which need <c> alive */
	if (c->ng)
		nghttp2_session_del(c->ng);
	c->ng = NULL;
	while (c->streams)
		h2_stream_free(c, c->streams);
	mem_free(c);
}

/* ---- input and output -------------------------------------------------- */

ssize_t h2_feed(struct h2_conn *c, const char *p, size_t n)
{
	nghttp2_ssize r;
	ssize_t ret = (ssize_t)n;

	if (c->depth)
		return -EBUSY;  /* called from a callback: a contract breach */
	if (c->failed || c->close_notified)
		return -EPIPE;
	if (n == 0)
		return 0;
	h2_enter(c);
	c->now = h2_clock(c);
	/* once nghttp2 has given up on the peer it ignores input: so do we */
	if (nghttp2_session_want_read(c->ng) &&
	    h2_scan(c, (const uint8_t *)p, n) == 0) {
		r = nghttp2_session_mem_recv2(c->ng, (const uint8_t *)p, n);
		if (r < 0)
			h2_fail_ng(c, (int)r);
		h2_check_mem(c);
		if (!c->failed && nghttp2_session_get_outbound_queue_size(c->ng)
		    > c->lim.max_outbound_frames)
			h2_fail(c, H2_ENHANCE_YOUR_CALM, "outbound_queue");
	}
	if (c->failed)
		ret = h2_fail(c, 0, NULL);
	h2_leave(c);
	return ret;
}

/* Appends as much of <len> bytes at *<p> as fits; advances. 1 when all
 * went. */
static int h2_put(struct buf *out, const uint8_t **p, size_t *len)
{
	size_t k = buf_room(out);

	if (k > *len)
		k = *len;
	if (k && buf_append(out, *p, k) == 0) {
		*p += k;
		*len -= k;
	}
	return *len == 0;
}

/* One pass of nghttp2_session_mem_send2 until it has nothing more, <out>
 * is full, or the connection failed. */
static void h2_send_pass(struct h2_conn *c)
{
	const uint8_t *d;
	nghttp2_ssize len;

	while (!c->failed && buf_room(c->out) > 0) {
		len = nghttp2_session_mem_send2(c->ng, &d);
		if (len < 0) {
			h2_fail_ng(c, (int)len);
			break;
		}
		if (len == 0)
			break;
		c->pend = d;
		c->pend_len = (size_t)len;
		if (!h2_put(c->out, &c->pend, &c->pend_len))
			break;
	}
	h2_check_mem(c);
}

/* Calls on_writable for the streams whose short write now has room. */
static void h2_notify_writable(struct h2_conn *c)
{
	struct h2_stream *s, *next;

	c->sendq_starved = 0;  /* writers cut short again will say so */
	for (s = c->streams; s; s = next) {
		next = s->next;
		if (!(s->flags & H2S_F_WANT_WR) || (s->flags & H2S_F_DEAD))
			continue;
		if (h2_stream_room(c, s->id) == 0)
			continue;
		s->flags &= ~H2S_F_WANT_WR;
		if (c->cb.on_writable)
			c->cb.on_writable(c->ctx, s->id, s->user);
	}
}

ssize_t h2_output(struct h2_conn *c, struct buf *out)
{
	size_t start = buf_len(out);
	int round;

	if (c->depth)
		return -EBUSY;  /* called from a callback: a contract breach */
	h2_enter(c);
	c->now = h2_clock(c);
	c->out = out;
	for (round = 0; round < H2_OUT_ROUNDS; round++) {
		if (!h2_put(out, &c->pend, &c->pend_len))
			break;
		if (c->failed)
			break;
		h2_send_pass(c);
		if (c->failed || c->pend_len || !c->space_freed)
			break;
		c->space_freed = 0;
		h2_notify_writable(c);
	}
	if (c->failed && c->pend_len == 0) {
		const uint8_t *g = c->ga + c->ga_off;
		size_t glen = (size_t)(c->ga_len - c->ga_off);

		h2_put(out, &g, &glen);
		c->ga_off = (uint8_t)(c->ga_len - glen);
	}
	c->out = NULL;
	h2_leave(c);
	return (ssize_t)(buf_len(out) - start);
}

int h2_want_read(const struct h2_conn *c)
{
	if (c->failed || c->pend_len)
		return 0;
	if (!nghttp2_session_want_read(c->ng))
		return 0;
	return nghttp2_session_get_outbound_queue_size(c->ng) <
	       c->lim.outbound_hwm;
}

int h2_want_write(const struct h2_conn *c)
{
	if (c->pend_len)
		return 1;
	if (c->failed)
		return c->ga_off < c->ga_len;
	return nghttp2_session_want_write(c->ng);
}

int h2_is_closed(const struct h2_conn *c)
{
	if (c->pend_len)
		return 0;
	if (c->failed)
		return c->ga_off == c->ga_len;
	return h2_ng_done(c);
}

/* ---- submit API ---------------------------------------------------------- */

static void h2_nv_set(nghttp2_nv *nv, struct str n, struct str v)
{
	nv->name = (uint8_t *)(uintptr_t)n.p;
	nv->value = (uint8_t *)(uintptr_t)v.p;
	nv->namelen = n.len;
	nv->valuelen = v.len;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Appends <fields> to c->nv from index <at>; returns the new count or -1
 * when it would not fit or a name is a pseudo-header. */
static int h2_nv_fields(struct h2_conn *c, size_t at,
                        const struct h2_header *f, size_t n)
{
	size_t i;

	if (n > c->nv_cap - at || (n && !f))
		return -1;
	for (i = 0; i < n; i++) {
		if (f[i].name.len == 0 || f[i].name.p[0] == ':')
			return -1;
		h2_nv_set(&c->nv[at + i], f[i].name, f[i].value);
	}
	return (int)(at + n);
}

static int h2_ng_errno(struct h2_conn *c, int rv)
{
	if (rv == NGHTTP2_ERR_NOMEM) {
		h2_check_mem(c);
		return -ENOMEM;
	}
	if (rv == NGHTTP2_ERR_STREAM_CLOSED || rv == NGHTTP2_ERR_STREAM_CLOSING ||
	    rv == NGHTTP2_ERR_STREAM_SHUT_WR)
		return -EPIPE;
	return -EINVAL;
}

uint32_t h2_can_submit(const struct h2_conn *c)
{
	uint32_t cap;

	if (c->role != H2_CLIENT || c->failed || c->close_notified ||
	    c->goaway_recv || c->goaway_local)
		return 0;
	cap = nghttp2_session_get_remote_settings(c->ng,
	        NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (cap > c->lim.max_concurrent_streams)
		cap = c->lim.max_concurrent_streams;
	return cap > c->nstreams ? cap - c->nstreams : 0;
}

int32_t h2_submit_request(struct h2_conn *c, const struct h2_request *req,
                          int end_stream, void *user)
{
	nghttp2_data_provider2 prd;
	struct h2_stream *s;
	int connect, n = 0;
	int32_t id;

	if (c->role != H2_CLIENT || !req || req->method.len == 0)
		return -EINVAL;
	if (c->failed || c->close_notified || c->goaway_recv || c->goaway_local)
		return -EPIPE;
	if (h2_can_submit(c) == 0)
		return -EAGAIN;
	connect = str_eq_cstr(req->method, "CONNECT");
	if (connect ? (req->scheme.len || req->path.len ||
	               !req->authority.len) :
	              (!req->scheme.len || !req->path.len))
		return -EINVAL;
	h2_nv_set(&c->nv[n++], STR_LIT(":method"), req->method);
	if (!connect) {
		h2_nv_set(&c->nv[n++], STR_LIT(":scheme"), req->scheme);
		h2_nv_set(&c->nv[n++], STR_LIT(":path"), req->path);
	}
	if (req->authority.len)
		h2_nv_set(&c->nv[n++], STR_LIT(":authority"), req->authority);
	n = h2_nv_fields(c, (size_t)n, req->fields, req->nfields);
	if (n < 0)
		return -EINVAL;
	s = h2_stream_new(c, 0);
	if (!s) {
		h2_check_mem(c);
		return -ENOMEM;
	}
	prd.source.ptr = s;
	prd.read_callback = h2_read_cb;
	id = nghttp2_submit_request2(c->ng, NULL, c->nv, (size_t)n,
	                             end_stream ? NULL : &prd, s);
	if (id < 0) {
		h2_stream_free(c, s);
		return h2_ng_errno(c, id);
	}
	s->id = id;
	s->user = user;
	s->flags |= H2S_F_KNOWN | H2S_F_PENDING | H2S_F_HEAD_SENT |
	            (end_stream ? H2S_F_EOF | H2S_F_EOF_DONE : H2S_F_BODY);
	return id;
}

int h2_submit_response(struct h2_conn *c, int32_t id, int status,
                       const struct h2_header *fields, size_t nfields,
                       int end_stream)
{
	nghttp2_data_provider2 prd;
	struct h2_stream *s;
	char st[3];
	int n = 0, rv;

	if (c->role != H2_SERVER || status < 100 || status > 599 ||
	    status == 101)
		return -EINVAL;
	if (c->failed)
		return -EPIPE;
	s = h2_stream_find(c, id);
	if (!s || !(s->flags & H2S_F_KNOWN))
		return -ENOENT;
	if (s->flags & H2S_F_HEAD_SENT)
		return -EALREADY;
	if (s->flags & H2S_F_IGNORE)
		return -EPIPE;
	st[0] = (char)('0' + status / 100);
	st[1] = (char)('0' + status / 10 % 10);
	st[2] = (char)('0' + status % 10);
	h2_nv_set(&c->nv[n++], STR_LIT(":status"), str_make(st, 3));
	n = h2_nv_fields(c, (size_t)n, fields, nfields);
	if (n < 0)
		return -EINVAL;
	if (status < 200) {
		rv = nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE, id, NULL,
		                            c->nv, (size_t)n, NULL);
		return rv < 0 ? h2_ng_errno(c, rv) : 0;
	}
	prd.source.ptr = s;
	prd.read_callback = h2_read_cb;
	rv = nghttp2_submit_response2(c->ng, id, c->nv, (size_t)n,
	                              end_stream ? NULL : &prd);
	if (rv != 0)
		return h2_ng_errno(c, rv);
	s->flags |= H2S_F_HEAD_SENT |
	            (end_stream ? H2S_F_EOF | H2S_F_EOF_DONE : H2S_F_BODY);
	c->last_activity = c->now;
	return 0;
}

/* The stream a body operation may act on, or a negative errno. */
static struct h2_stream *h2_body_stream(const struct h2_conn *c, int32_t id,
                                        int *err)
{
	struct h2_stream *s;

	*err = 0;
	if (c->failed) {
		*err = -EPIPE;
		return NULL;
	}
	s = h2_stream_find(c, id);
	if (!s || !(s->flags & H2S_F_KNOWN))
		*err = -ENOENT;
	else if (!(s->flags & H2S_F_BODY))
		*err = (s->flags & H2S_F_EOF) ? -EPIPE : -EINVAL;
	else if (s->flags & (H2S_F_EOF | H2S_F_IGNORE))
		*err = -EPIPE;
	return *err ? NULL : s;
}

static void h2_resume(struct h2_conn *c, struct h2_stream *s)
{
	if (!(s->flags & H2S_F_DEFERRED))
		return;
	s->flags &= ~H2S_F_DEFERRED;
	nghttp2_session_resume_data(c->ng, s->id);
}

ssize_t h2_stream_write(struct h2_conn *c, int32_t id, const void *p,
                        size_t n)
{
	struct h2_stream *s;
	uint32_t cap, tail, first;
	size_t k;
	int err;

	s = h2_body_stream(c, id, &err);
	if (!s)
		return err;
	k = h2_ring_room(c, s, n, &cap);
	if (k && h2_ring_grow(c, s, cap) != 0)
		k = 0;
	if (k < n) {
		s->flags |= H2S_F_WANT_WR;
		if (k < c->lim.stream_send_buffer - s->qlen)
			c->sendq_starved = 1;  /* cut by the connection budget */
	}
	if (k == 0)
		return 0;
	tail = (s->qhead + s->qlen) & (s->qcap - 1);
	first = s->qcap - tail;
	if (first > k)
		first = (uint32_t)k;
	memcpy(s->q + tail, p, first);
	memcpy(s->q, (const char *)p + first, k - first);
	s->qlen += (uint32_t)k;
	h2_resume(c, s);
	return (ssize_t)k;
}

size_t h2_stream_room(const struct h2_conn *c, int32_t id)
{
	struct h2_stream *s;
	uint32_t cap;
	int err;

	s = h2_body_stream(c, id, &err);
	if (!s)
		return 0;
	return h2_ring_room(c, s, c->lim.stream_send_buffer, &cap);
}

size_t h2_stream_queued(const struct h2_conn *c, int32_t id)
{
	struct h2_stream *s = h2_stream_find(c, id);

	return s ? s->qlen : 0;
}

/* Copies <n> trailer fields into one block charged to <c>. */
static struct h2_trailers *h2_trailers_copy(struct h2_conn *c,
                                            const struct h2_header *f,
                                            size_t n)
{
	struct h2_trailers *t;
	size_t i, bytes = 0;
	char *p;

	if (n > c->nv_cap)
		return NULL;
	for (i = 0; i < n; i++) {
		if (f[i].name.len == 0 || f[i].name.p[0] == ':')
			return NULL;
		bytes += f[i].name.len + f[i].value.len;
	}
	t = h2_alloc(c, sizeof(*t) + n * sizeof(nghttp2_nv) + bytes);
	if (!t)
		return NULL;
	t->n = n;
	p = (char *)&t->nv[n];
	for (i = 0; i < n; i++) {
		memcpy(p, f[i].name.p, f[i].name.len);
		t->nv[i].name = (uint8_t *)p;
		t->nv[i].namelen = f[i].name.len;
		p += f[i].name.len;
		if (f[i].value.len)
			memcpy(p, f[i].value.p, f[i].value.len);
		t->nv[i].value = (uint8_t *)p;
		t->nv[i].valuelen = f[i].value.len;
		p += f[i].value.len;
		/* nghttp2 copies at submit time; the block is freed then */
		t->nv[i].flags = NGHTTP2_NV_FLAG_NONE;
	}
	return t;
}

int h2_stream_end(struct h2_conn *c, int32_t id,
                  const struct h2_header *fields, size_t nfields)
{
	struct h2_stream *s;
	struct h2_trailers *t = NULL;
	int err;

	s = h2_body_stream(c, id, &err);
	if (!s)
		return err;
	if (nfields) {
		if (!fields)
			return -EINVAL;
		t = h2_trailers_copy(c, fields, nfields);
		if (!t) {
			h2_check_mem(c);
			return c->mem_over || c->mem_oom ? -ENOMEM : -EINVAL;
		}
	}
	s->flags |= H2S_F_EOF;
	if (t && s->qlen == 0 && (s->flags & H2S_F_DEFERRED)) {
		/* nothing in flight: trailers go at once, no empty DATA */
		s->flags |= H2S_F_EOF_DONE;
		err = nghttp2_submit_trailer(c->ng, id, t->nv, t->n);
		h2_dealloc(c, t);
		return err ? h2_ng_errno(c, err) : 0;
	}
	s->trailers = t;
	h2_resume(c, s);
	return 0;
}

int h2_stream_reset(struct h2_conn *c, int32_t id, uint32_t code)
{
	struct h2_stream *s = h2_stream_find(c, id);

	if (!s || !(s->flags & H2S_F_KNOWN))
		return -ENOENT;
	if (c->failed || (s->flags & H2S_F_LOCAL_RST))
		return 0;
	s->flags |= H2S_F_LOCAL_RST | H2S_F_IGNORE;
	if (nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, code) ==
	    NGHTTP2_ERR_NOMEM)
		h2_check_mem(c);
	return 0;
}

int h2_consume(struct h2_conn *c, int32_t id, size_t n)
{
	struct h2_stream *s;

	if (c->failed)
		return -EPIPE;
	s = h2_stream_find(c, id);
	if (!s)
		return 0;
	if (n > s->unconsumed)
		n = s->unconsumed;
	if (n == 0)
		return 0;
	s->unconsumed -= n;
	if (nghttp2_session_consume(c->ng, id, n) == NGHTTP2_ERR_NOMEM) {
		h2_enter(c);
		h2_check_mem(c);
		h2_leave(c);
		return -EPIPE;
	}
	return 0;
}

int h2_stream_set_user(struct h2_conn *c, int32_t id, void *user)
{
	struct h2_stream *s = h2_stream_find(c, id);

	if (!s)
		return -ENOENT;
	s->user = user;
	return 0;
}

void *h2_stream_get_user(const struct h2_conn *c, int32_t id)
{
	struct h2_stream *s = h2_stream_find(c, id);

	return s ? s->user : NULL;
}

int h2_goaway(struct h2_conn *c, int graceful)
{
	if (c->failed || c->close_notified)
		return -EPIPE;
	h2_enter(c);
	c->goaway_local = 1;
	if (graceful && c->role == H2_SERVER) {
		if (!c->graceful && !c->goaway_sent) {
			nghttp2_submit_shutdown_notice(c->ng);
			nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE,
			                    h2_ga_opaque);
			c->graceful = 1;
		}
	} else if (graceful) {
		nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
		        nghttp2_session_get_last_proc_stream_id(c->ng),
		        H2_NO_ERROR, NULL, 0);
	} else {
		nghttp2_session_terminate_session(c->ng, H2_NO_ERROR);
	}
	h2_check_mem(c);
	h2_leave(c);
	return 0;
}

int h2_ping(struct h2_conn *c)
{
	int rc;

	if (c->failed || c->close_notified)
		return -EPIPE;
	if (c->ka_out)
		return -EALREADY;
	h2_enter(c);
	rc = nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, h2_ka_opaque);
	if (rc == 0) {
		c->ka_out = 1;
		c->ka_sent = h2_clock(c);
	}
	h2_check_mem(c);
	h2_leave(c);
	if (rc != 0)
		return -ENOMEM;
	return c->failed ? -EPIPE : 0;
}

int h2_ping_outstanding(const struct h2_conn *c, uint64_t *sent_ms)
{
	if (!c->ka_out)
		return 0;
	if (sent_ms)
		*sent_ms = c->ka_sent;
	return 1;
}

void h2_abort(struct h2_conn *c, uint32_t code, const char *reason)
{
	if (c->failed)
		return;
	h2_enter(c);
	h2_fail(c, code, reason ? reason : "aborted");
	h2_leave(c);
}

const char *h2_close_reason(const struct h2_conn *c)
{
	if (c->reason)
		return c->reason;
	if (!c->failed && !h2_ng_done(c))
		return NULL;
	if (c->goaway_local)
		return "local_goaway";
	if (c->goaway_recv)
		return "peer_goaway";
	return "done";
}

uint64_t h2_glitches(const struct h2_conn *c)
{
	return c->glitches;
}

void h2_get_stats(const struct h2_conn *c, struct h2_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->open_streams = c->nstreams;
	st->streams_total = c->streams_total;
	st->last_activity_ms = c->last_activity;
	st->mem_used = c->mem_used;
	st->mem_peak = c->mem_peak;
	st->sendq_used = c->sendq_used;
	st->sendq_peak = c->sendq_peak;
	st->glitches = c->glitches;
	st->rst_sent = c->rst_sent;
	st->rst_recv = c->rst_recv;
	st->premature_resets = c->premature;
	st->header_overflows = c->header_overflows;
	st->settings_received = c->settings_received;
	st->settings_acked = c->settings_acked;
	st->goaway_sent = c->goaway_sent;
	st->goaway_received = c->goaway_recv;
	st->close_code = c->close_code;
}
