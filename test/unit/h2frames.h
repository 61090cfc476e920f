/*
 * h2frames: a tiny raw HTTP/2 frame builder and parser for tests.
 *
 * Builders append wire bytes to a struct buf (the test sizes its limit);
 * HPACK helpers emit the plain (non-Huffman) representations of RFC 7541
 * so tests can build exactly the header blocks an attacker would. The
 * parser walks a server's output and records what a peer would see
 * (GOAWAY, RST_STREAM codes, decoded :status per stream), decoding header
 * blocks with nghttp2's own public HPACK inflater.
 *
 * Header only, test code only: every function is static inline.
 */
#ifndef MESHD_TEST_H2FRAMES_H
#define MESHD_TEST_H2FRAMES_H

#include <stdint.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"

enum {
	H2F_DATA = 0, H2F_HEADERS = 1, H2F_PRIORITY = 2, H2F_RST = 3,
	H2F_SETTINGS = 4, H2F_PUSH = 5, H2F_PING = 6, H2F_GOAWAY = 7,
	H2F_WU = 8, H2F_CONT = 9,
};
#define H2F_END_STREAM 0x1
#define H2F_ACK 0x1
#define H2F_END_HEADERS 0x4
#define H2F_PADDED 0x8
#define H2F_PRIO 0x20

static inline void h2f_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	                 (uint8_t)(v >> 8), (uint8_t)v };

	buf_append(b, x, 4);
}

static inline void h2f_hdr(struct buf *b, uint32_t len, uint8_t type, uint8_t flags,
                    uint32_t sid)
{
	uint8_t x[5] = { (uint8_t)(len >> 16), (uint8_t)(len >> 8),
	                 (uint8_t)len, type, flags };

	buf_append(b, x, 5);
	h2f_u32(b, sid & 0x7fffffffu);
}

static inline void h2f_frame(struct buf *b, uint8_t type, uint8_t flags,
                      uint32_t sid, const void *p, size_t len)
{
	h2f_hdr(b, (uint32_t)len, type, flags, sid);
	if (len)
		buf_append(b, p, len);
}

static inline void h2f_preface(struct buf *b)
{
	buf_append(b, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
}

/* SETTINGS with <n> (id, value) pairs from <kv> (2n entries). */
static inline void h2f_settings(struct buf *b, const uint32_t *kv, size_t n)
{
	size_t i;

	h2f_hdr(b, (uint32_t)(6 * n), H2F_SETTINGS, 0, 0);
	for (i = 0; i < n; i++) {
		uint8_t id[2] = { (uint8_t)(kv[2 * i] >> 8),
		                  (uint8_t)kv[2 * i] };

		buf_append(b, id, 2);
		h2f_u32(b, kv[2 * i + 1]);
	}
}

static inline void h2f_settings_ack(struct buf *b)
{
	h2f_hdr(b, 0, H2F_SETTINGS, H2F_ACK, 0);
}

/* The usual client start: magic, empty SETTINGS, ACK of the server's. */
static inline void h2f_client_start(struct buf *b)
{
	h2f_preface(b);
	h2f_settings(b, NULL, 0);
	h2f_settings_ack(b);
}

static inline void h2f_rst(struct buf *b, uint32_t sid, uint32_t code)
{
	h2f_hdr(b, 4, H2F_RST, 0, sid);
	h2f_u32(b, code);
}

static inline void h2f_ping(struct buf *b, int ack, uint64_t opaque)
{
	h2f_hdr(b, 8, H2F_PING, ack ? H2F_ACK : 0, 0);
	h2f_u32(b, (uint32_t)(opaque >> 32));
	h2f_u32(b, (uint32_t)opaque);
}

static inline void h2f_wu(struct buf *b, uint32_t sid, uint32_t inc)
{
	h2f_hdr(b, 4, H2F_WU, 0, sid);
	h2f_u32(b, inc);
}

static inline void h2f_priority(struct buf *b, uint32_t sid, uint32_t dep,
                         uint8_t weight)
{
	h2f_hdr(b, 5, H2F_PRIORITY, 0, sid);
	h2f_u32(b, dep);
	buf_append(b, &weight, 1);
}

static inline void h2f_goaway(struct buf *b, uint32_t last, uint32_t code)
{
	h2f_hdr(b, 8, H2F_GOAWAY, 0, 0);
	h2f_u32(b, last);
	h2f_u32(b, code);
}

/* ---- HPACK (RFC 7541, no Huffman) ---------------------------------------- */

/* An integer with an <nbits>-bit prefix; <first> holds the flag bits. */
static inline void h2f_hp_int(struct buf *b, uint8_t first, int nbits, uint32_t v)
{
	uint32_t max = (1u << nbits) - 1;
	uint8_t c;

	if (v < max) {
		c = (uint8_t)(first | v);
		buf_append(b, &c, 1);
		return;
	}
	c = (uint8_t)(first | max);
	buf_append(b, &c, 1);
	v -= max;
	while (v >= 128) {
		c = (uint8_t)(0x80 | (v & 0x7f));
		buf_append(b, &c, 1);
		v >>= 7;
	}
	c = (uint8_t)v;
	buf_append(b, &c, 1);
}

static inline void h2f_hp_str(struct buf *b, const char *s, size_t len)
{
	h2f_hp_int(b, 0, 7, (uint32_t)len);
	buf_append(b, s, len);
}

/* Indexed field (static 1..61, dynamic 62..). */
static inline void h2f_hp_indexed(struct buf *b, uint32_t idx)
{
	h2f_hp_int(b, 0x80, 7, idx);
}

/* Literal with a new name; <incr>: with incremental indexing. */
static inline void h2f_hp_lit(struct buf *b, int incr, const char *n, size_t nlen,
                       const char *v, size_t vlen)
{
	uint8_t c = incr ? 0x40 : 0x00;

	buf_append(b, &c, 1);
	h2f_hp_str(b, n, nlen);
	h2f_hp_str(b, v, vlen);
}

/* Literal without indexing, name from the table at <idx>. */
static inline void h2f_hp_lit_idx(struct buf *b, uint32_t idx, const char *v,
                           size_t vlen)
{
	h2f_hp_int(b, 0x00, 4, idx);
	h2f_hp_str(b, v, vlen);
}

#define H2F_LIT(b, n, v) h2f_hp_lit((b), 0, n, strlen(n), v, strlen(v))

/* :method GET|POST, :scheme http, :path <path>, :authority example.com */
static inline void h2f_req_block(struct buf *b, int post, const char *path)
{
	h2f_hp_indexed(b, post ? 3 : 2);
	h2f_hp_indexed(b, 6);
	h2f_hp_lit_idx(b, 4, path, strlen(path));
	h2f_hp_lit_idx(b, 1, "example.com", 11);
}

/* HEADERS on <sid> with block <blk>; <flags> as given. */
static inline void h2f_headers(struct buf *b, uint32_t sid, uint8_t flags,
                        const struct buf *blk)
{
	h2f_frame(b, H2F_HEADERS, flags, sid, blk ? buf_data(blk) : NULL,
	          blk ? buf_len(blk) : 0);
}

/* A complete GET on <sid> (END_STREAM unless <open>). */
static inline void h2f_get(struct buf *b, uint32_t sid, int open)
{
	struct buf blk;

	buf_init(&blk, 4096);
	h2f_req_block(&blk, 0, "/");
	h2f_headers(b, sid, (uint8_t)(H2F_END_HEADERS |
	            (open ? 0 : H2F_END_STREAM)), &blk);
	buf_free(&blk);
}

/* ---- parser ----------------------------------------------------------- */

struct h2f_seen {
	int frames;
	int settings, settings_ack, ping_ack, data, headers, wu;
	int goaway;                /* GOAWAY frames seen */
	uint32_t goaway_code;      /* code of the last one */
	uint32_t goaway_last;      /* last-stream-id of the last one */
	int rst;                   /* RST_STREAM frames */
	int rst_code[16];          /* by error code (0..15) */
	uint32_t rst_last_sid;
	int nstatus;               /* heads decoded */
	int status_of[64];         /* :status of stream id (odd ids < 128) */
	int truncated;             /* ended mid-frame */
};

/* Walks a server's output <p>,<n> (no magic) and fills <st>; decodes
 * header blocks to find :status. Returns 0, -1 on an HPACK error. */
static inline int h2f_parse(struct h2f_seen *st, const uint8_t *p, size_t n)
{
	nghttp2_hd_inflater *inf = NULL;
	size_t i = 0;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if (nghttp2_hd_inflate_new(&inf) != 0)
		return -1;
	while (i + 9 <= n) {
		uint32_t len = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		               p[i + 2];
		uint8_t type = p[i + 3], flags = p[i + 4];
		uint32_t sid = ((uint32_t)p[i + 5] << 24 | (uint32_t)p[i + 6] << 16 |
		                (uint32_t)p[i + 7] << 8 | p[i + 8]) & 0x7fffffffu;
		const uint8_t *pl = p + i + 9;

		if (i + 9 + len > n) {
			st->truncated = 1;
			break;
		}
		st->frames++;
		switch (type) {
		case H2F_SETTINGS:
			if (flags & H2F_ACK)
				st->settings_ack++;
			else
				st->settings++;
			break;
		case H2F_PING:
			if (flags & H2F_ACK)
				st->ping_ack++;
			break;
		case H2F_DATA:
			st->data++;
			break;
		case H2F_WU:
			st->wu++;
			break;
		case H2F_GOAWAY:
			st->goaway++;
			st->goaway_last = ((uint32_t)pl[0] << 24 |
			                   (uint32_t)pl[1] << 16 |
			                   (uint32_t)pl[2] << 8 | pl[3]) &
			                  0x7fffffffu;
			st->goaway_code = (uint32_t)pl[4] << 24 |
			                  (uint32_t)pl[5] << 16 |
			                  (uint32_t)pl[6] << 8 | pl[7];
			break;
		case H2F_RST: {
			uint32_t code = (uint32_t)pl[0] << 24 |
			                (uint32_t)pl[1] << 16 |
			                (uint32_t)pl[2] << 8 | pl[3];

			st->rst++;
			st->rst_last_sid = sid;
			if (code < 16)
				st->rst_code[code]++;
			break;
		}
		case H2F_HEADERS:
		case H2F_CONT: {
			/* the server never pads nor sends priority: the whole
			 * payload is the block fragment */
			const uint8_t *in = pl;
			size_t left = len;
			int final = !!(flags & H2F_END_HEADERS);

			if (type == H2F_HEADERS)
				st->headers++;
			for (;;) {
				nghttp2_nv nv;
				int fl = 0;
				nghttp2_ssize r = nghttp2_hd_inflate_hd3(inf, &nv,
				        &fl, in, left, final);

				if (r < 0) {
					rc = -1;
					goto out;
				}
				in += r;
				left -= (size_t)r;
				if ((fl & NGHTTP2_HD_INFLATE_EMIT) &&
				    nv.namelen == 7 &&
				    memcmp(nv.name, ":status", 7) == 0) {
					int s = 0;
					size_t k;

					for (k = 0; k < nv.valuelen; k++)
						s = s * 10 + (nv.value[k] - '0');
					st->nstatus++;
					if (sid < 128 && (sid & 1))
						st->status_of[sid / 2] = s;
				}
				if (fl & NGHTTP2_HD_INFLATE_FINAL) {
					nghttp2_hd_inflate_end_headers(inf);
					break;
				}
				if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && left == 0)
					break;
			}
			break;
		}
		default:
			break;
		}
		i += 9 + len;
	}
	if (i < n)
		st->truncated = 1;
out:
	nghttp2_hd_inflate_del(inf);
	return rc;
}

#endif
