/*
 * libFuzzer target for core/h2: a server connection (or, by flag, a client
 * connection facing a hostile upstream) fed the fuzz input, with an owner
 * that answers requests, consumes or hoards body bytes, writes bodies with
 * backpressure and sends trailers, as the proxy would.
 *
 * Input layout: byte 0 = flags, byte 1 = a parameter, the rest = peer
 * bytes.
 *   0x01  prepend a valid client preface, SETTINGS and SETTINGS ACK
 *   0x02  answer every request (body of param * 97 bytes)
 *   0x04  consume received bytes at once (else only every other chunk)
 *   0x08  small limits (64 KiB memory cap, 4 KiB send queues, low flood
 *         thresholds) so that the cap paths are reachable
 *   0x10  feed in slices of (param % 64 + 1) bytes, draining output after
 *         each; otherwise feed at once
 *   0x20  answers end with trailers
 *   0x40  client role: two requests are submitted first and the input is
 *         what the "server" sends back
 *   0x80  never drain output while feeding (an attacker that never reads)
 *   param bit 7: graceful GOAWAY halfway through the input
 *
 * Invariants (abort() on violation): the per-connection memory counter
 * never passes its cap, nor the send queues theirs; a closed connection
 * wants neither to read nor to write; once on_close ran, every stream the
 * owner knew was reported closed exactly once; and after h2_free the heap
 * is back to where it was (ASan/LSan catch the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/h2.h"
#include "core/mem.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)
#define FZ_SLOTS 256

struct fz_st {
	int32_t id;       /* 0: free */
	size_t left;      /* body bytes still to write */
	int end_pending;
};

struct fz {
	struct h2_conn *c;
	struct h2_limits lim;
	uint8_t flags, param;
	uint64_t now;
	unsigned ndata;
	int known, closed, close_calls;
	struct fz_st st[FZ_SLOTS];
};

static struct fz_st *fz_slot(struct fz *f)
{
	int i;

	for (i = 0; i < FZ_SLOTS; i++)
		if (f->st[i].id == 0)
			return &f->st[i];
	return NULL;
}

static void fz_write(struct fz *f, struct fz_st *s)
{
	static const char pad[1024];
	static const struct h2_header tr[] = {
		{ STR_LIT("grpc-status"), STR_LIT("0") },
	};
	ssize_t w;

	while (s->left) {
		w = h2_stream_write(f->c, s->id, pad,
		                    s->left < sizeof(pad) ? s->left : sizeof(pad));
		if (w <= 0)
			return;
		s->left -= (size_t)w;
	}
	if (s->end_pending) {
		s->end_pending = 0;
		h2_stream_end(f->c, s->id, (f->flags & 0x20) ? tr : NULL,
		              (f->flags & 0x20) ? 1 : 0);
	}
}

static int fz_head(void *ctx, int32_t id, void *su, const struct h2_head *h,
                   int end)
{
	struct fz *f = ctx;
	struct fz_st *s = su;
	static const struct h2_header ct[] = {
		{ STR_LIT("content-type"), STR_LIT("text/plain") },
	};
	size_t body = (size_t)f->param * 97;

	(void)end;
	FZ_ASSERT(h->nfields == 0 || h->fields);
	if (h->status == 0) {           /* a request: server role */
		FZ_ASSERT(h->method.len > 0);
		s = fz_slot(f);
		f->known++;
		if (!s)
			return H2_CB_RESET;
		s->id = id;
		h2_stream_set_user(f->c, id, s);
		if (!(f->flags & 0x02))
			return 0;
		if ((id & 6) == 2)
			h2_submit_response(f->c, id, 103, NULL, 0, 0);
		if (h2_submit_response(f->c, id, 200, ct, 1, body == 0 &&
		                       !(f->flags & 0x20)) == 0 &&
		    (body || (f->flags & 0x20))) {
			s->left = body;
			s->end_pending = 1;
			fz_write(f, s);
		}
	}
	return 0;
}

static int fz_data(void *ctx, int32_t id, void *su, const char *p, size_t n)
{
	struct fz *f = ctx;

	(void)su;
	FZ_ASSERT(n > 0 && p);
	if ((f->flags & 0x04) || (f->ndata++ & 1))
		h2_consume(f->c, id, n);
	if ((f->param & 0x3f) == 0x3f && (f->ndata % 7) == 0)
		return H2_CB_RESET;
	return 0;
}

static int fz_trailers(void *ctx, int32_t id, void *su,
                       const struct h2_header *t, size_t n)
{
	(void)ctx;
	(void)id;
	(void)su;
	FZ_ASSERT(n == 0 || t);
	return 0;
}

static void fz_end(void *ctx, int32_t id, void *su)
{
	(void)ctx;
	(void)id;
	(void)su;
}

static void fz_stream_close(void *ctx, int32_t id, void *su, int reset,
                            uint32_t code)
{
	struct fz *f = ctx;
	struct fz_st *s = su;

	(void)reset;
	(void)code;
	f->closed++;
	FZ_ASSERT(f->closed <= f->known);
	if (s) {
		FZ_ASSERT(s->id == id);
		s->id = 0;
		s->left = 0;
		s->end_pending = 0;
	}
}

static void fz_writable(void *ctx, int32_t id, void *su)
{
	struct fz *f = ctx;
	struct fz_st *s = su;

	if (s && s->id == id)
		fz_write(f, s);
}

static void fz_goaway(void *ctx, int32_t last, uint32_t code)
{
	(void)ctx;
	(void)last;
	(void)code;
}

static void fz_close(void *ctx, const char *reason)
{
	struct fz *f = ctx;

	FZ_ASSERT(reason != NULL);
	f->close_calls++;
	FZ_ASSERT(f->close_calls == 1);
	FZ_ASSERT(f->closed == f->known);
}

static uint64_t fz_now(void *ctx)
{
	return ((struct fz *)ctx)->now;
}

static const struct h2_callbacks fz_cbs = {
	fz_head, fz_data, fz_trailers, fz_end, fz_stream_close, fz_writable,
	fz_goaway, fz_close, fz_now,
};

static void fz_check(struct fz *f)
{
	struct h2_stats st;

	h2_get_stats(f->c, &st);
	FZ_ASSERT(st.mem_used <= f->lim.mem_max);
	FZ_ASSERT(st.mem_peak <= f->lim.mem_max);
	FZ_ASSERT(st.sendq_used <= f->lim.conn_send_buffer);
	if (h2_is_closed(f->c))
		FZ_ASSERT(!h2_want_read(f->c) && !h2_want_write(f->c));
}

static void fz_drain(struct fz *f, struct buf *out)
{
	int i;

	for (i = 0; i < 64; i++) {
		buf_reset(out);
		if (h2_output(f->c, out) <= 0)
			break;
	}
	fz_check(f);
}

static void fz_client_requests(struct fz *f)
{
	static const struct h2_header te[] = {
		{ STR_LIT("te"), STR_LIT("trailers") },
	};
	struct h2_request rq = { STR_LIT("POST"), STR_LIT("https"),
	                         STR_LIT("upstream:443"), STR_LIT("/a"),
	                         te, 1 };
	struct fz_st *s;
	int32_t id;
	int i;

	for (i = 0; i < 2; i++) {
		s = fz_slot(f);
		id = h2_submit_request(f->c, &rq, i, s);
		FZ_ASSERT(id > 0);
		f->known++;
		s->id = id;
		if (i == 0) {
			s->left = (size_t)f->param * 97;
			s->end_pending = 1;
			fz_write(f, s);
		}
		rq.method = STR_LIT("GET");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t start[] = NGHTTP2_CLIENT_MAGIC
		"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
		"\x00\x00\x00\x04\x01\x00\x00\x00\x00";
	static struct fz f;
	struct mem_stats m0, m1;
	struct buf out;
	size_t off = 0, n, half, slice;
	int client;

	if (size < 2)
		return 0;
	mem_get_stats(&m0);
	memset(&f, 0, sizeof(f));
	f.flags = data[0];
	f.param = data[1];
	f.now = 1000;
	data += 2;
	size -= 2;
	client = !!(f.flags & 0x40);
	h2_limits_default(&f.lim);
	if (f.flags & 0x08) {
		f.lim.mem_max = 64u << 10;
		f.lim.stream_send_buffer = 4096;
		f.lim.conn_send_buffer = 16384;
		f.lim.max_concurrent_streams = 8;
		f.lim.max_header_list_size = 2048;
		f.lim.max_header_fields = 16;
		f.lim.max_outbound_frames = 100;
		f.lim.outbound_hwm = 8;
		f.lim.max_ping = 5;
		f.lim.max_settings = 5;
		f.lim.max_rst_sent = 5;
		f.lim.max_glitches = 20;
		f.lim.premature_min_streams = 4;
	}
	buf_init(&out, (f.flags & 0x08) ? 64 : 16384 + 9);
	f.c = h2_new(client ? H2_CLIENT : H2_SERVER, &f.lim, &fz_cbs, &f,
	             NULL, 0);
	FZ_ASSERT(f.c != NULL);
	if (client)
		fz_client_requests(&f);
	if (!client && (f.flags & 0x01))
		h2_feed(f.c, (const char *)start, sizeof(start) - 1);
	fz_drain(&f, &out);
	half = size / 2;
	slice = (f.flags & 0x10) ? (size_t)(f.param % 64) + 1 : size;
	while (off < size) {
		n = size - off < slice ? size - off : slice;
		if ((f.param & 0x80) && off <= half && off + n > half)
			h2_goaway(f.c, 1);
		if (h2_feed(f.c, (const char *)data + off, n) < 0)
			break;
		off += n;
		f.now += 3;
		fz_check(&f);
		if (!(f.flags & 0x80))
			fz_drain(&f, &out);
	}
	fz_drain(&f, &out);
	if (h2_is_closed(f.c))
		FZ_ASSERT(f.close_calls == 1);
	h2_free(f.c);
	buf_free(&out);
	mem_get_stats(&m1);
	FZ_ASSERT(m1.bytes == m0.bytes);
	FZ_ASSERT(m1.blocks == m0.blocks);
	return 0;
}
