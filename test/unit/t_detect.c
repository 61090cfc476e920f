/*
 * Unit tests for proxy/detect: each outcome (HTTP/1, HTTP/2 preface, TLS
 * with SNI/ALPN extraction, opaque, need-more), partial inputs, the 1 KiB
 * limit, malformed ClientHellos, and stability when bytes are appended.
 */
#include <string.h>

#include "harness.h"
#include "core/mem.h"
#include "proxy/detect.h"

/* A ClientHello sent by "openssl s_client -servername
 * web.ns.serviceaccount.identity.meshd.cluster.local
 * -alpn meshd.h2,h2,http/1.1" (OpenSSL 3, TLS 1.3 offer), 383 bytes. */
static const unsigned char openssl_hello[] = {
	0x16, 0x03, 0x01, 0x01, 0x7a, 0x01, 0x00, 0x01, 0x76, 0x03, 0x03, 0x22,
	0xfe, 0xdc, 0x74, 0xea, 0xf2, 0xc0, 0x64, 0x4d, 0x44, 0x6c, 0x77, 0xda,
	0x0b, 0x79, 0x8f, 0xb9, 0x2a, 0xa2, 0x7a, 0x63, 0x99, 0x3d, 0xaa, 0xd6,
	0x1a, 0xba, 0x89, 0xb7, 0xf1, 0x85, 0xc6, 0x20, 0xfa, 0xa5, 0xce, 0x62,
	0x1f, 0x4d, 0xd0, 0xdc, 0x5e, 0x51, 0x40, 0x0f, 0x28, 0x1e, 0x11, 0x83,
	0x27, 0x57, 0xe6, 0x5e, 0x5b, 0xde, 0x41, 0x2a, 0x3a, 0x7b, 0xbb, 0xa3,
	0xe4, 0x9e, 0xc4, 0x0f, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xef,
	0x00, 0x00, 0x00, 0x37, 0x00, 0x35, 0x00, 0x00, 0x32, 0x77, 0x65, 0x62,
	0x2e, 0x6e, 0x73, 0x2e, 0x73, 0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x61,
	0x63, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x2e, 0x69, 0x64, 0x65, 0x6e, 0x74,
	0x69, 0x74, 0x79, 0x2e, 0x6d, 0x65, 0x73, 0x68, 0x64, 0x2e, 0x63, 0x6c,
	0x75, 0x73, 0x74, 0x65, 0x72, 0x2e, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x00,
	0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00,
	0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01,
	0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00,
	0x00, 0x00, 0x10, 0x00, 0x17, 0x00, 0x15, 0x08, 0x6d, 0x65, 0x73, 0x68,
	0x64, 0x2e, 0x68, 0x32, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70,
	0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
	0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
	0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
	0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03,
	0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b,
	0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00,
	0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
	0x1d, 0x00, 0x20, 0xbb, 0x0a, 0x5e, 0x85, 0x05, 0xae, 0xdc, 0x9f, 0x3f,
	0x93, 0xc0, 0x49, 0x01, 0x0a, 0x0e, 0x7b, 0x00, 0x94, 0x6f, 0xc0, 0x58,
	0xd7, 0x3e, 0xb5, 0x60, 0x67, 0x64, 0xe9, 0x5c, 0x49, 0xee, 0x66,
};

/* detect_protocol on an exact-size heap copy, so ASan sees over-reads. */
static enum detect_result det(const void *p, size_t n, struct detect_info *info)
{
	char *copy = mem_alloc(n ? n : 1);
	enum detect_result r;

	if (!copy)
		return (enum detect_result)-1;
	memcpy(copy, p, n);
	r = detect_protocol(copy, n, info);
	/* slices must not outlive the copy in these tests: check then drop */
	if (info && info->sni)
		CHECK(info->sni >= copy && info->sni + info->sni_len <= copy + n);
	mem_free(copy);
	return r;
}

/* Every strict prefix gives NEED_MORE or <want>, the whole gives <want>,
 * and appending bytes keeps <want>. */
static int stable(const void *p, size_t n, enum detect_result want)
{
	char *more;
	size_t k;
	int ok = 1;

	for (k = 0; k < n; k++) {
		enum detect_result r = det(p, k, NULL);

		if (r != DETECT_NEED_MORE && r != want)
			ok = 0;
	}
	if (det(p, n, NULL) != want)
		return 0;
	more = mem_alloc(n + 2000);
	if (!more)
		return 0;
	memcpy(more, p, n);
	memset(more + n, 'x', 1000);
	memset(more + n + 1000, 0, 1000);
	if (want != DETECT_NEED_MORE) {
		if (detect_protocol(more, n + 1, NULL) != want
		    || detect_protocol(more, n + 1000, NULL) != want
		    || detect_protocol(more, n + 2000, NULL) != want)
			ok = 0;
	}
	mem_free(more);
	return ok;
}

TEST(empty_needs_more)
{
	struct detect_info info;

	CHECK(detect_protocol("", 0, &info) == DETECT_NEED_MORE);
	CHECK(detect_protocol(NULL, 0, NULL) == DETECT_NEED_MORE);
	CHECK(info.hello == DETECT_HELLO_PARTIAL && info.sni == NULL);
}

TEST(h2_preface)
{
	static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const char frames[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
		"\x00\x00\x00\x04\x00\x00\x00\x00\x00";
	size_t k;

	CHECK(det(pre, 24, NULL) == DETECT_H2);
	for (k = 1; k < 24; k++)
		CHECK(det(pre, k, NULL) == DETECT_NEED_MORE);
	CHECK(stable(pre, 24, DETECT_H2));
	CHECK(det(frames, sizeof(frames) - 1, NULL) == DETECT_H2);
	/* contradicted late: not h2, and not a plausible HTTP/1 line */
	CHECK(det("PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n", 24, NULL) == DETECT_OPAQUE);
	/* "PRI * HTTP/1.1" is an (odd) HTTP/1 request line */
	CHECK(det("PRI * HTTP/1.1\r\n", 16, NULL) == DETECT_HTTP1);
}

TEST(http1_request_lines)
{
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /api/v1/x?y=z HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\n",
		"get http://a:80/ HTTP/1.1\r\n",
		"M-SEARCH * HTTP/1.1\r\n",
		"CONNECT a:443 HTTP/1.1\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(det(ok[i], strlen(ok[i]), NULL) == DETECT_HTTP1);
		CHECK(stable(ok[i], strlen(ok[i]), DETECT_HTTP1));
	}
	/* plausible so far: wait */
	CHECK(det("GET", 3, NULL) == DETECT_NEED_MORE);
	CHECK(det("GET /index.html", 15, NULL) == DETECT_NEED_MORE);
	CHECK(det("GET / HTTP/1.1", 14, NULL) == DETECT_NEED_MORE);
	CHECK(det("GET / HTTP/1.1\r", 15, NULL) == DETECT_NEED_MORE);
}

TEST(opaque_inputs)
{
	static const struct { const char *in; size_t n; } bad[] = {
		{ "\x00\x01\x02", 3 },
		{ "*1\r\n$4\r\nPING\r\n", 14 },        /* redis */
		{ "PING\r\n", 6 },
		{ "get key\r\n", 9 },                 /* memcached */
		{ "SSH-2.0-OpenSSH_9.2\r\n", 21 },
		{ "GET /\r\n", 7 },                   /* HTTP/0.9 */
		{ "GET / HTTP/2.0\r\n", 16 },
		{ "GET / HTTP/1.1\n", 15 },           /* bare LF */
		{ "GET / HTTP/1.1\rX", 16 },
		{ "GET  / HTTP/1.1\r\n", 17 },
		{ "GET /#x HTTP/1.1\r\n", 18 },
		{ "GET / HTTP/1.1 \r\n", 17 },
		{ "GET / http/1.1\r\n", 16 },
		{ " GET / HTTP/1.1\r\n", 17 },
		{ "\r\nGET / HTTP/1.1\r\n", 18 },
		{ "GET / HTTP/1.x\r\n", 16 },
		{ "G\xc3T / HTTP/1.1\r\n", 16 },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (det(bad[i].in, bad[i].n, NULL) != DETECT_OPAQUE
		    || !stable(bad[i].in, bad[i].n, DETECT_OPAQUE)) {
			printf("#   input %zu not opaque or unstable\n", i);
			CHECK(0);
		}
	}
}

TEST(http1_limit_1k)
{
	char *s = mem_alloc(2048);
	size_t i;

	REQUIRE(s);
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', 2043);
	CHECK(det(s, 1023, NULL) == DETECT_NEED_MORE);
	CHECK(det(s, 1024, NULL) == DETECT_OPAQUE);
	CHECK(det(s, 2048, NULL) == DETECT_OPAQUE);
	/* a request line of exactly 1024 bytes (CRLF included) still counts */
	i = 1024 - 11;
	memcpy(s + i, " HTTP/1.1\r\n", 11);
	CHECK(det(s, 1024, NULL) == DETECT_HTTP1);
	CHECK(det(s, 2048, NULL) == DETECT_HTTP1);
	CHECK(stable(s, 1024, DETECT_HTTP1));
	/* one byte longer: the LF falls outside the window */
	memset(s + 5, 'a', 2043);
	memcpy(s + i + 1, " HTTP/1.1\r\n", 11);
	CHECK(det(s, 1025, NULL) == DETECT_OPAQUE);
	CHECK(det(s, 1024, NULL) == DETECT_OPAQUE);
	CHECK(det(s, 1023, NULL) == DETECT_NEED_MORE);
	mem_free(s);
}

TEST(tls_openssl_client_hello)
{
	struct detect_info info;
	size_t k, n = sizeof(openssl_hello);
	const char *buf = (const char *)openssl_hello;

	REQUIRE(detect_protocol(buf, n, &info) == DETECT_TLS);
	CHECK(info.hello == DETECT_HELLO_OK);
	CHECK(info.tls_version == 0x0303);
	REQUIRE(info.sni);
	CHECK(info.sni_len == 50 && !memcmp(info.sni,
	      "web.ns.serviceaccount.identity.meshd.cluster.local", 50));
	REQUIRE(info.nalpn == 3);
	CHECK(info.alpn[0].len == 8 && !memcmp(info.alpn[0].p, "meshd.h2", 8));
	CHECK(info.alpn[1].len == 2 && !memcmp(info.alpn[1].p, "h2", 2));
	CHECK(info.alpn[2].len == 8 && !memcmp(info.alpn[2].p, "http/1.1", 8));
	CHECK(!info.alpn_truncated);
	CHECK(detect_alpn_offered(&info, "h2"));
	CHECK(!detect_alpn_offered(&info, "h3"));
	CHECK(det(buf, n, &info) == DETECT_TLS && info.hello == DETECT_HELLO_OK);
	/* prefixes: need more until the record header and type are in, then
	 * TLS with the details still partial */
	for (k = 1; k < 6; k++)
		CHECK(det(buf, k, NULL) == DETECT_NEED_MORE);
	for (k = 6; k < n; k++) {
		if (det(buf, k, &info) != DETECT_TLS
		    || info.hello != DETECT_HELLO_PARTIAL || info.sni) {
			CHECK(0);
			break;
		}
	}
	CHECK(stable(buf, n, DETECT_TLS));
	CHECK(stable(buf, 6, DETECT_TLS));
}

TEST(tls_record_header_checks)
{
	CHECK(det("\x16", 1, NULL) == DETECT_NEED_MORE);
	CHECK(det("\x16\x02", 2, NULL) == DETECT_OPAQUE);
	CHECK(det("\x16\x03\x05", 3, NULL) == DETECT_OPAQUE);
	CHECK(det("\x16\x03\x04\x00", 4, NULL) == DETECT_NEED_MORE);
	CHECK(det("\x16\x03\x01\x00\x00\x01", 6, NULL) == DETECT_OPAQUE);
	CHECK(det("\x16\x03\x01\x40\x01\x01", 6, NULL) == DETECT_OPAQUE);
	CHECK(det("\x16\x03\x01\x40\x00\x01", 6, NULL) == DETECT_TLS);
	CHECK(det("\x16\x03\x03\x00\x10\x02", 6, NULL) == DETECT_OPAQUE);
	CHECK(det("\x16\x03\x00\x00\x10\x01", 6, NULL) == DETECT_TLS);
	{
		struct detect_info info;

		CHECK(detect_protocol("\x16\x03\x01\x00\x02\x01\x00", 7, &info)
		      == DETECT_TLS);
		CHECK(info.hello == DETECT_HELLO_FRAGMENTED);
		CHECK(detect_protocol("\x16\x03\x01\x00\x10\x01\x00", 7, &info)
		      == DETECT_TLS);
		CHECK(info.hello == DETECT_HELLO_PARTIAL);
	}
	CHECK(stable("\x16\x03\x05", 3, DETECT_OPAQUE));
	/* an alert record is not a ClientHello */
	CHECK(det("\x15\x03\x03\x00\x02\x02\x28", 7, NULL) == DETECT_OPAQUE);
}

/* ---- hand-built ClientHellos ---- */

struct hb {
	unsigned char b[4096];
	size_t n;
};

static void put(struct hb *h, const void *p, size_t n)
{
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void put8(struct hb *h, unsigned v)
{
	h->b[h->n++] = (unsigned char)v;
}

static void put16(struct hb *h, unsigned v)
{
	put8(h, v >> 8);
	put8(h, v & 0xff);
}

static void ext_sni(struct hb *e, const char *name)
{
	size_t n = strlen(name);

	put16(e, 0);
	put16(e, (unsigned)n + 5);
	put16(e, (unsigned)n + 3);
	put8(e, 0);
	put16(e, (unsigned)n);
	put(e, name, n);
}

static void ext_alpn(struct hb *e, const char *const *protos, size_t np)
{
	size_t i, total = 0;

	for (i = 0; i < np; i++)
		total += 1 + strlen(protos[i]);
	put16(e, 16);
	put16(e, (unsigned)total + 2);
	put16(e, (unsigned)total);
	for (i = 0; i < np; i++) {
		put8(e, (unsigned)strlen(protos[i]));
		put(e, protos[i], strlen(protos[i]));
	}
}

/* Record + ClientHello around the extension block <e> (NULL: none).
 * <rec_short> makes the record that many bytes shorter than needed. */
static void hello(struct hb *out, const struct hb *e, size_t rec_short)
{
	struct hb body = { .n = 0 };
	size_t hs;

	put16(&body, 0x0303);
	memset(body.b + body.n, 0x11, 32);
	body.n += 32;
	put8(&body, 0);              /* session id */
	put16(&body, 2);
	put16(&body, 0xc02b);        /* one cipher suite */
	put8(&body, 1);
	put8(&body, 0);              /* null compression */
	if (e) {
		put16(&body, (unsigned)e->n);
		put(&body, e->b, e->n);
	}
	hs = body.n + 4;
	out->n = 0;
	put8(out, 0x16);
	put16(out, 0x0301);
	put16(out, (unsigned)(hs - rec_short));
	put8(out, 1);
	put8(out, (unsigned)(body.n >> 16));
	put16(out, (unsigned)(body.n & 0xffff));
	put(out, body.b, body.n);
}

/* Runs detection on an exact-size copy (for ASan), then on <h> itself so
 * the slices in <info> stay valid for the caller. */
static enum detect_hello hello_of(const struct hb *h, struct detect_info *info)
{
	struct detect_info tmp;
	enum detect_hello first;

	if (det(h->b, h->n, &tmp) != DETECT_TLS)
		return (enum detect_hello)-1;
	first = tmp.hello;
	if (detect_protocol((const char *)h->b, h->n, info) != DETECT_TLS
	    || info->hello != first)
		return (enum detect_hello)-1;
	return info->hello;
}

TEST(tls_built_hellos)
{
	static const char *const many[] = {
		"a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
	};
	struct detect_info info;
	struct hb e, h;

	hello(&h, NULL, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_OK);
	CHECK(info.sni == NULL && info.nalpn == 0);

	e.n = 0;
	ext_alpn(&e, many, 10);
	ext_sni(&e, "svc.example");
	hello(&h, &e, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_OK);
	CHECK(info.nalpn == DETECT_ALPN_MAX && info.alpn_truncated);
	CHECK(info.sni_len == 11 && !memcmp(info.sni, "svc.example", 11));
	CHECK(stable(h.b, h.n, DETECT_TLS));

	/* the record is shorter than the handshake: fragmented */
	hello(&h, &e, 1);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_FRAGMENTED);
	CHECK(info.sni == NULL);
}

TEST(tls_malformed_hellos)
{
	static const char *const h2[] = { "h2" };
	struct detect_info info;
	struct hb e, h;

	/* two SNI extensions */
	e.n = 0;
	ext_sni(&e, "a.example");
	ext_sni(&e, "b.example");
	hello(&h, &e, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);
	CHECK(info.sni == NULL && info.nalpn == 0);

	/* SNI with a NUL byte */
	e.n = 0;
	ext_alpn(&e, h2, 1);
	ext_sni(&e, "a.example");
	e.b[e.n - 3] = 0;
	hello(&h, &e, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);
	CHECK(info.nalpn == 0);

	/* an extension length running past the block */
	e.n = 0;
	ext_sni(&e, "a.example");
	e.b[3] = 0x7f;
	hello(&h, &e, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);

	/* an empty ALPN protocol name */
	e.n = 0;
	put16(&e, 16);
	put16(&e, 5);
	put16(&e, 3);
	put8(&e, 0);
	put8(&e, 1);
	put8(&e, 'x');
	hello(&h, &e, 0);
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);

	/* bytes after the extension block */
	e.n = 0;
	ext_sni(&e, "a.example");
	hello(&h, &e, 0);
	h.b[8] += 1;             /* handshake length + 1 */
	h.b[4] += 1;             /* record length + 1 */
	h.b[h.n++] = 0;
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);

	/* a truncated cipher-suite list: the hello is malformed, the result
	 * stays TLS */
	hello(&h, NULL, 0);
	h.b[9 + 2 + 32 + 1 + 1] = 0x41;
	CHECK(hello_of(&h, &info) == DETECT_HELLO_MALFORMED);
	CHECK(stable(h.b, h.n, DETECT_TLS));
}

TEST(result_strings)
{
	CHECK_STR(detect_result_str(DETECT_NEED_MORE), "need-more");
	CHECK_STR(detect_result_str(DETECT_HTTP1), "http1");
	CHECK_STR(detect_result_str(DETECT_H2), "h2");
	CHECK_STR(detect_result_str(DETECT_TLS), "tls");
	CHECK_STR(detect_result_str(DETECT_OPAQUE), "opaque");
}
