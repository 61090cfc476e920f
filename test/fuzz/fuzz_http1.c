/*
 * libFuzzer target for core/http1: request and response head parsers, the
 * head-end scanner, head serialization and the chunked decoder/encoder.
 *
 * Input layout: byte 0 and 1 pick a split position, byte 2 picks the limits
 * (defaults or small ones that the fuzzer can reach); the rest is the
 * message. Invariants checked (abort() on violation):
 *  - returned lengths are within the input and the limits; every slice of a
 *    parsed head lies inside the head;
 *  - parsing a prefix gives 0 or the whole input's result, and 0 while the
 *    prefix is shorter than a valid head;
 *  - http1_head_end agrees with the parser on where a valid head ends;
 *  - a parsed head written back out parses to the same facts;
 *  - the chunked decoder gives the same result, body bytes and trailer
 *    bytes fed at once, byte by byte, and split at the chosen position;
 *    re-encoding a decoded body decodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/http1.h"
#include "core/mem.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)
#define NHDR 64

static int inside(const char *p, size_t n, const char *lo, size_t len)
{
	if (n == 0)
		return p == NULL || (p >= lo && p <= lo + len);
	return p >= lo && p + n <= lo + len;
}

static void check_head(const struct http1_head *h, const char *in, size_t rc,
                       int is_req)
{
	size_t i;

	FZ_ASSERT(h->head_len == rc);
	FZ_ASSERT(h->nheaders <= h->headers_cap);
	FZ_ASSERT(h->version == 10 || h->version == 11);
	for (i = 0; i < h->nheaders; i++) {
		FZ_ASSERT(h->headers[i].name_len > 0);
		FZ_ASSERT(inside(h->headers[i].name, h->headers[i].name_len,
		                 in, rc));
		FZ_ASSERT(inside(h->headers[i].value, h->headers[i].value_len,
		                 in, rc));
	}
	for (i = 0; i < h->nconn_opts; i++)
		FZ_ASSERT(inside(h->conn_opts[i].p, h->conn_opts[i].len, in, rc));
	FZ_ASSERT(inside(h->upgrade, h->upgrade_len, in, rc));
	if (is_req) {
		FZ_ASSERT(h->method_len > 0 && h->target_len > 0);
		FZ_ASSERT(inside(h->method, h->method_len, in, rc));
		FZ_ASSERT(inside(h->target, h->target_len, in, rc));
		FZ_ASSERT(inside(h->path, h->path_len, h->target,
		                 h->target_len));
		FZ_ASSERT(inside(h->authority, h->authority_len, in, rc));
		FZ_ASSERT(h->host_count <= 1);
		FZ_ASSERT(h->version == 10 || h->host_count == 1);
	} else {
		FZ_ASSERT(h->status >= 100 && h->status <= 599);
		FZ_ASSERT(inside(h->reason, h->reason_len, in, rc));
	}
	FZ_ASSERT(!((h->flags & HTTP1_F_CHUNKED)
	            && (h->flags & HTTP1_F_CONTENT_LENGTH)));
}

static int parse(int is_req, const char *in, size_t n,
                 const struct http1_limits *lim, struct http1_head *h,
                 struct http1_header *hdrs)
{
	http1_head_init(h, hdrs, NHDR);
	return is_req ? http1_parse_request(in, n, lim, h)
	              : http1_parse_response(in, n, lim, h);
}

static void fuzz_head(int is_req, const char *in, size_t n, size_t split,
                      const struct http1_limits *lim)
{
	struct http1_header hdrs[NHDR], hdrs2[NHDR];
	struct http1_head h, h2;
	struct http1_limits lim2;
	struct http1_skip sk;
	enum http1_body body;
	struct buf b;
	char *copy;
	int rc, rc2, end;
	size_t max_head = lim->max_head ? lim->max_head : HTTP1_DEF_MAX_HEAD;

	rc = parse(is_req, in, n, lim, &h, hdrs);
	FZ_ASSERT(rc <= 0 || (size_t)rc <= n);
	FZ_ASSERT(rc <= 0 || (size_t)rc <= max_head);
	FZ_ASSERT(rc >= HTTP1_E_MIN);
	FZ_ASSERT(rc != 0 || n < max_head);
	FZ_ASSERT(http1_strerror(rc) != NULL);
	FZ_ASSERT(rc >= 0 || http1_err_status(rc) == 0
	          || http1_err_status(rc) >= 400);
	if (rc > 0)
		check_head(&h, in, (size_t)rc, is_req);
	if (rc == HTTP1_E_CONNECT)
		check_head(&h, in, h.head_len, is_req);

	/* a prefix in an exact-size copy: 0 or the same result */
	copy = mem_alloc(split ? split : 1);
	if (!copy)
		return;
	memcpy(copy, in, split);
	rc2 = parse(is_req, copy, split, lim, &h2, hdrs2);
	FZ_ASSERT(rc2 == 0 || rc2 == rc);
	if (rc > 0 && split < (size_t)rc)
		FZ_ASSERT(rc2 == 0);
	if (rc > 0 && split >= (size_t)rc) {
		FZ_ASSERT(rc2 == rc && h2.nheaders == h.nheaders
		          && h2.flags == h.flags);
	}
	/* the cheap scanner, also fed in two steps */
	end = http1_head_end(copy, split, 0);
	mem_free(copy);
	if (end == 0)
		end = http1_head_end(in, n, split);
	if (rc > 0)
		FZ_ASSERT(end == rc);
	if (end <= 0)
		FZ_ASSERT(rc <= 0);

	if (rc <= 0)
		return;
	/* write it back and parse again: same facts */
	buf_init(&b, 2 * n + 64);
	if (is_req)
		rc2 = http1_write_request(&b, &h, NULL, NULL, NULL, 0);
	else
		rc2 = http1_write_response(&b, &h, NULL, NULL, NULL, 0);
	FZ_ASSERT(rc2 == 0);
	lim2 = *lim;
	lim2.max_head = buf_len(&b) + 1;
	rc2 = parse(is_req, buf_data(&b), buf_len(&b), &lim2, &h2, hdrs2);
	FZ_ASSERT(rc2 == (int)buf_len(&b));
	FZ_ASSERT(h2.nheaders == h.nheaders && h2.flags == h.flags);
	FZ_ASSERT(h2.version == h.version && h2.status == h.status);
	FZ_ASSERT(h2.content_length == h.content_length);
	FZ_ASSERT(h2.method_id == h.method_id && h2.target_len == h.target_len);

	/* again without hop-by-hop fields: still a valid head, minus those */
	buf_reset(&b);
	sk.names = NULL;
	sk.nnames = 0;
	sk.hop = &h;
	if (is_req)
		rc2 = http1_write_request(&b, &h, http1_skip_filter, &sk, NULL, 0);
	else
		rc2 = http1_write_response(&b, &h, http1_skip_filter, &sk, NULL, 0);
	FZ_ASSERT(rc2 == 0);
	rc2 = parse(is_req, buf_data(&b), buf_len(&b), &lim2, &h2, hdrs2);
	if (!is_req && h.status == 101) {
		FZ_ASSERT(rc2 == HTTP1_E_UPGRADE);
	} else {
		FZ_ASSERT(rc2 == (int)buf_len(&b));
		FZ_ASSERT(h2.nconn_opts == 0 && !h2.upgrade);
		FZ_ASSERT(!(h2.flags & (HTTP1_F_CHUNKED | HTTP1_F_CONN_CLOSE
		                        | HTTP1_F_TE_TRAILERS)));
		FZ_ASSERT(h2.content_length == h.content_length);
	}
	buf_free(&b);

	/* body rules never contradict the parsed framing */
	body = is_req ? http1_request_body(&h)
	              : http1_response_body((enum http1_method)(split % 10), &h);
	FZ_ASSERT(strcmp(http1_body_str(body), "?") != 0);
	if (body == HTTP1_BODY_CHUNKED)
		FZ_ASSERT(h.flags & HTTP1_F_CHUNKED);
	if (body == HTTP1_BODY_LENGTH)
		FZ_ASSERT(h.flags & HTTP1_F_CONTENT_LENGTH);
	if (!is_req && http1_response_persistent((enum http1_method)(split % 10),
	                                         &h))
		FZ_ASSERT(h.flags & HTTP1_F_KEEP_ALIVE);
}

struct dec {
	int rc;
	size_t consumed;
	char *data;
	size_t ndata;
	char *trl;
	size_t ntrl;
};

/* Feeds in[0, n) in pieces: [0, split) then the rest in <step>-byte
 * pieces (0: all at once), each piece in an exact-size heap copy. */
static void decode(const char *in, size_t n, size_t split, size_t step,
                   const struct http1_limits *lim, struct dec *o)
{
	struct http1_chunked d;
	size_t pos = 0, end, c, off, span, plen;
	char *piece;
	int rc = HTTP1_CHUNKED_MORE;

	o->ndata = o->ntrl = 0;
	http1_chunked_init(&d, lim);
	while (pos < n) {
		if (pos < split)
			end = split;
		else if (step)
			end = pos + step < n ? pos + step : n;
		else
			end = n;
		plen = end - pos;
		piece = mem_alloc(plen);
		if (!piece)
			abort();
		memcpy(piece, in + pos, plen);
		rc = http1_chunked_feed(&d, piece, plen, &c, &off, &span);
		if (rc >= 0) {
			FZ_ASSERT(c <= plen);
			FZ_ASSERT(off <= c && span <= c - off);
		}
		if (rc == HTTP1_CHUNKED_DATA) {
			FZ_ASSERT(span > 0 && off + span == c);
			memcpy(o->data + o->ndata, piece + off, span);
			o->ndata += span;
		} else if (rc == HTTP1_CHUNKED_TRAILER) {
			FZ_ASSERT(span > 0 && off + span == c);
			memcpy(o->trl + o->ntrl, piece + off, span);
			o->ntrl += span;
		} else if (rc == HTTP1_CHUNKED_MORE) {
			FZ_ASSERT(c == plen);
		}
		mem_free(piece);
		if (rc < 0 || rc == HTTP1_CHUNKED_DONE) {
			if (rc == HTTP1_CHUNKED_DONE)
				pos += c;
			break;
		}
		pos += c;
	}
	o->rc = rc;
	o->consumed = pos;
	FZ_ASSERT(o->ndata + o->ntrl <= n);
	/* DONE and errors are sticky and consume nothing */
	if (rc < 0 || rc == HTTP1_CHUNKED_DONE) {
		FZ_ASSERT(http1_chunked_feed(&d, "0\r\n\r\n", 5, &c, &off,
		                             &span) == rc);
		FZ_ASSERT(c == 0);
	}
}

static void same(const struct dec *a, const struct dec *b)
{
	size_t m = a->ntrl < b->ntrl ? a->ntrl : b->ntrl;

	FZ_ASSERT(a->rc == b->rc);
	FZ_ASSERT(a->ndata == b->ndata && !memcmp(a->data, b->data, a->ndata));
	/* on an error, trailer spans handed out before it may differ in
	 * length, never in content */
	FZ_ASSERT(!memcmp(a->trl, b->trl, m));
	if (a->rc >= 0) {
		FZ_ASSERT(a->ntrl == b->ntrl);
		FZ_ASSERT(a->consumed == b->consumed);
	}
}

static void fuzz_chunked(const char *in, size_t n, size_t split,
                         const struct http1_limits *lim)
{
	struct dec one, byte, two, re;
	char *mem = mem_alloc(8 * (n + 1));
	struct buf b;

	if (!mem)
		return;
	one.data = mem;
	one.trl = mem + (n + 1);
	byte.data = mem + 2 * (n + 1);
	byte.trl = mem + 3 * (n + 1);
	two.data = mem + 4 * (n + 1);
	two.trl = mem + 5 * (n + 1);
	re.data = mem + 6 * (n + 1);
	re.trl = mem + 7 * (n + 1);

	decode(in, n, 0, 0, lim, &one);
	decode(in, n, 0, 1, lim, &byte);
	decode(in, n, split, 0, lim, &two);
	same(&one, &byte);
	same(&one, &two);

	if (one.rc == HTTP1_CHUNKED_DONE) {
		/* re-encode in two chunks and decode again */
		buf_init(&b, 2 * n + 128);
		FZ_ASSERT(http1_chunk_append(&b, one.data, one.ndata / 2) == 0);
		FZ_ASSERT(http1_chunk_append(&b, one.data + one.ndata / 2,
		                             one.ndata - one.ndata / 2) == 0);
		FZ_ASSERT(http1_chunk_append_last(&b, one.trl, one.ntrl) == 0);
		FZ_ASSERT(http1_parse_fields(one.trl, one.ntrl, NULL, 0) >= 0);
		decode(buf_data(&b), buf_len(&b), 0, 0, NULL, &re);
		FZ_ASSERT(re.rc == HTTP1_CHUNKED_DONE);
		FZ_ASSERT(re.consumed == buf_len(&b));
		FZ_ASSERT(re.ndata == one.ndata
		          && !memcmp(re.data, one.data, one.ndata));
		FZ_ASSERT(re.ntrl == one.ntrl
		          && !memcmp(re.trl, one.trl, one.ntrl));
		buf_free(&b);
	}
	mem_free(mem);
}

/* The input as a field block: a count within the cap, slices inside. */
static void fuzz_fields(const char *in, size_t n)
{
	struct http1_header f[8];
	int rc, i;

	rc = http1_parse_fields(in, n, f, 8);
	FZ_ASSERT(rc <= 8 && rc >= HTTP1_E_MIN);
	for (i = 0; i < rc; i++) {
		FZ_ASSERT(inside(f[i].name, f[i].name_len, in, n));
		FZ_ASSERT(inside(f[i].value, f[i].value_len, in, n));
	}
	if (rc >= 0)
		FZ_ASSERT(http1_parse_fields(in, n, NULL, 0) == rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http1_limits small = {
		.max_head = 256, .max_line = 64, .max_headers = 8,
		.max_chunk_ext = 16, .max_trailer = 64,
	};
	static const struct http1_limits deflt;
	const struct http1_limits *lim;
	const char *in;
	size_t n, split;

	if (size < 3)
		return 0;
	in = (const char *)data + 3;
	n = size - 3;
	split = ((size_t)data[0] | (size_t)data[1] << 8) % (n + 1);
	lim = (data[2] & 1) ? &small : &deflt;

	fuzz_fields(in, n);
	fuzz_head(1, in, n, split, lim);
	fuzz_head(0, in, n, split, lim);
	fuzz_chunked(in, n, split, lim);
	return 0;
}
