/*
 * Unit tests for core/http1: smuggling and malformed-message vectors, valid
 * messages of every shape, incremental parsing, limits, the chunked codec,
 * body rules and head serialization.
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/http1.h"
#include "core/mem.h"

#define NHDR 128

static struct http1_header hdrs[NHDR];

static int preq(const char *s, size_t n, struct http1_head *h)
{
	http1_head_init(h, hdrs, NHDR);
	return http1_parse_request(s, n, NULL, h);
}

static int presp(const char *s, size_t n, struct http1_head *h)
{
	http1_head_init(h, hdrs, NHDR);
	return http1_parse_response(s, n, NULL, h);
}

/* Slice equality with a C string. */
static int eq(const char *p, size_t n, const char *s)
{
	return p && n == strlen(s) && memcmp(p, s, n) == 0;
}

/*
 * Parses every prefix of s[0, n) from an exact-size heap copy (so ASan sees
 * any read past the end) and checks each result is 0 or the whole input's
 * result; for a valid head, prefixes shorter than the head must give 0.
 * Returns the whole input's result.
 */
static int incremental(int is_req, const char *s, size_t n,
                       const struct http1_limits *lim, int *consistent)
{
	struct http1_head h;
	int full, rc;
	size_t k;
	char *copy;

	http1_head_init(&h, hdrs, NHDR);
	full = is_req ? http1_parse_request(s, n, lim, &h)
	              : http1_parse_response(s, n, lim, &h);
	*consistent = 1;
	for (k = 0; k < n; k++) {
		copy = mem_alloc(k ? k : 1);
		if (!copy) {
			*consistent = 0;
			return full;
		}
		memcpy(copy, s, k);
		http1_head_init(&h, hdrs, NHDR);
		rc = is_req ? http1_parse_request(copy, k, lim, &h)
		            : http1_parse_response(copy, k, lim, &h);
		mem_free(copy);
		if (rc != 0 && rc != full)
			*consistent = 0;
		if (full > 0 && (size_t)full > k && rc != 0)
			*consistent = 0;
	}
	return full;
}

struct vec {
	const char *name;
	const char *in;
	size_t len;     /* 0: strlen(in) */
	int want;
};

#define R "GET / HTTP/1.1\r\nHost: a\r\n"
#define P "POST / HTTP/1.1\r\nHost: a\r\n"

static const struct vec req_bad[] = {
	/* framing: CL.TE, TE.CL, duplicate and invalid lengths */
	{ "CL then TE", P "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_CL_TE },
	{ "TE then CL", P "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, HTTP1_E_CL_TE },
	{ "CL CL equal", P "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, HTTP1_E_CL_DUP },
	{ "CL CL differing", P "Content-Length: 0\r\nContent-Length: 31\r\n\r\n", 0, HTTP1_E_CL_DUP },
	{ "CL list 1, 2", P "Content-Length: 1, 2\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL list 5, 5", P "Content-Length: 5, 5\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL +5", P "Content-Length: +5\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL -1", P "Content-Length: -1\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL 0x5", P "Content-Length: 0x5\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL 1_0", P "Content-Length: 1_0\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL empty", P "Content-Length: \r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL 2^63", P "Content-Length: 9223372036854775808\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL 21 digits", P "Content-Length: 100000000000000000000\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	{ "CL inner space", P "Content-Length: 1 0\r\n\r\n", 0, HTTP1_E_CL_INVALID },
	/* Transfer-Encoding obfuscations */
	{ "TE dup", P "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", 0, HTTP1_E_TE_DUP },
	{ "TE dup chunked", P "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_TE_DUP },
	{ "TE chunked, identity", P "Transfer-Encoding: chunked, identity\r\n\r\n", 0, HTTP1_E_TE_INVALID },
	{ "TE xchunked", P "Transfer-Encoding: xchunked\r\n\r\n", 0, HTTP1_E_TE_INVALID },
	{ "TE gzip", P "Transfer-Encoding: gzip\r\n\r\n", 0, HTTP1_E_TE_INVALID },
	{ "TE chunked twice", P "Transfer-Encoding: chunked, chunked\r\n\r\n", 0, HTTP1_E_TE_INVALID },
	{ "TE gzip, chunked", P "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, HTTP1_E_TE_UNSUPPORTED },
	{ "TE chunked VT", P "Transfer-Encoding: chunked\x0b\r\n\r\n", 0, HTTP1_E_CTL },
	{ "TE chunked FF", P "Transfer-Encoding: chunked\x0c\r\n\r\n", 0, HTTP1_E_CTL },
	{ "TE ,chunked", P "Transfer-Encoding: ,chunked\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE chunked,", P "Transfer-Encoding: chunked,\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE nbsp", P "Transfer-Encoding: \xa0" "chunked\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE ff bytes", P "Transfer-Encoding: \xff" "chunked\xff\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE params", P "Transfer-Encoding: chunked;q=1\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE empty", P "Transfer-Encoding: \r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	{ "TE space colon", P "Transfer-Encoding : chunked\r\n\r\n", 0, HTTP1_E_SPACE_BEFORE_COLON },
	{ "TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_TE_HTTP10 },
	{ "TE folded", P "Transfer-Encoding:\r\n chunked\r\n\r\n", 0, HTTP1_E_TE_SYNTAX },
	/* field syntax */
	{ "obs-fold", R "X-A: a\r\n b\r\n\r\n", 0, HTTP1_E_OBS_FOLD },
	{ "obs-fold tab", R "X-A: a\r\n\tb\r\n\r\n", 0, HTTP1_E_OBS_FOLD },
	{ "ws first line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, HTTP1_E_OBS_FOLD },
	{ "bare LF field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0, HTTP1_E_BARE_LF },
	{ "bare LF end", R "\n", 0, HTTP1_E_BARE_LF },
	{ "bare LF line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 0, HTTP1_E_BARE_LF },
	{ "bare CR value", R "X-A: a\rb\r\n\r\n", 0, HTTP1_E_BARE_CR },
	{ "bare CR end", R "\rX", 0, HTTP1_E_BARE_CR },
	{ "bare CR line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 0, HTTP1_E_BARE_CR },
	{ "NUL in value", R "X-A: a\0b\r\n\r\n", sizeof(R "X-A: a\0b\r\n\r\n") - 1, HTTP1_E_CTL },
	{ "SOH in value", R "X-A: a\x01" "b\r\n\r\n", 0, HTTP1_E_CTL },
	{ "DEL in value", R "X-A: a\x7f\r\n\r\n", 0, HTTP1_E_CTL },
	{ "NUL in name", R "X\0A: b\r\n\r\n", sizeof(R "X\0A: b\r\n\r\n") - 1, HTTP1_E_HEADER_NAME },
	{ "space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, HTTP1_E_SPACE_BEFORE_COLON },
	{ "tab before colon", R "Content-Length\t: 5\r\n\r\n", 0, HTTP1_E_SPACE_BEFORE_COLON },
	{ "empty name", R ": x\r\n\r\n", 0, HTTP1_E_EMPTY_NAME },
	{ "no colon", R "X-A\r\n\r\n", 0, HTTP1_E_NO_COLON },
	{ "name with @", R "X@A: b\r\n\r\n", 0, HTTP1_E_HEADER_NAME },
	{ "name with 0x85", R "\x85X: b\r\n\r\n", 0, HTTP1_E_HEADER_NAME },
	{ "name with (", R "X(: b\r\n\r\n", 0, HTTP1_E_HEADER_NAME },
	/* Host */
	{ "no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 0, HTTP1_E_HOST_MISSING },
	{ "two Host", R "Host: b\r\n\r\n", 0, HTTP1_E_HOST_DUP },
	{ "two Host equal", R "Host: a\r\n\r\n", 0, HTTP1_E_HOST_DUP },
	{ "Host userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0, HTTP1_E_HOST_INVALID },
	{ "Host space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, HTTP1_E_HOST_INVALID },
	{ "Host slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, HTTP1_E_HOST_INVALID },
	{ "Host bad port", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 0, HTTP1_E_HOST_INVALID },
	{ "Host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 0, HTTP1_E_HOST_INVALID },
	/* request line */
	{ "CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 0, HTTP1_E_CONNECT },
	{ "CONNECT no port", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "target with space", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_REQUEST_LINE },
	{ "HTTP/0.9", "GET /\r\n", 0, HTTP1_E_HTTP09 },
	{ "double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_REQUEST_LINE },
	{ "tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_REQUEST_LINE },
	{ "trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 0, HTTP1_E_REQUEST_LINE },
	{ "leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_REQUEST_LINE },
	{ "LF between parts", "GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_BARE_LF },
	{ "HTTP/1.32", "GET / HTTP/1.32\r\nHost: a\r\n\r\n", 0, HTTP1_E_VERSION },
	{ "HTTP/CRCR1.1", "GET / HTTP/\r\r1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_VERSION },
	{ "lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_VERSION },
	{ "HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, HTTP1_E_VERSION_UNSUPPORTED },
	{ "HTTP/2.0 GET", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, HTTP1_E_VERSION_UNSUPPORTED },
	{ "h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, HTTP1_E_H2_PREFACE },
	{ "method separator", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_METHOD },
	{ "method obs-text", "G\xc9T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_METHOD },
	{ "GET !", "GET ! HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "target #", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "target NUL", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", sizeof("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n") - 1, HTTP1_E_TARGET },
	{ "target obs-text", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "asterisk GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "absolute userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "absolute ftp", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	{ "absolute no host", "GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP1_E_TARGET },
	/* connection options and upgrade */
	{ "Connection syntax", R "Connection: close keep-alive\r\n\r\n", 0, HTTP1_E_CONNECTION },
	{ "Connection many", R "Connection: a,b,c,d,e,f,g,h,i\r\n\r\n", 0, HTTP1_E_CONNECTION },
	{ "Connection: content-length", P "Connection: Content-Length\r\nContent-Length: 5\r\n\r\nGET /", 0, HTTP1_E_CONNECTION },
	{ "Connection: host", R "Connection: close, host\r\n\r\n", 0, HTTP1_E_CONNECTION },
	{ "Upgrade syntax", R "Upgrade: /x\r\n\r\n", 0, HTTP1_E_UPGRADE },
};

static const struct vec resp_bad[] = {
	{ "resp CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_CL_TE },
	{ "resp CL dup", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 0, HTTP1_E_CL_DUP },
	{ "resp TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, HTTP1_E_TE_INVALID },
	{ "204 chunked", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_FRAMING_FORBIDDEN },
	{ "100 with CL", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", 0, HTTP1_E_FRAMING_FORBIDDEN },
	{ "101 no Upgrade", "HTTP/1.1 101 Switching\r\nConnection: upgrade\r\n\r\n", 0, HTTP1_E_UPGRADE },
	{ "status 2 digits", "HTTP/1.1 20 OK\r\n\r\n", 0, HTTP1_E_STATUS },
	{ "status 4 digits", "HTTP/1.1 2000 OK\r\n\r\n", 0, HTTP1_E_STATUS },
	{ "status 600", "HTTP/1.1 600 X\r\n\r\n", 0, HTTP1_E_STATUS },
	{ "status 099", "HTTP/1.1 099 X\r\n\r\n", 0, HTTP1_E_STATUS },
	{ "HTTP/2 200", "HTTP/2 200\r\n\r\n", 0, HTTP1_E_VERSION },
	{ "HTTP/2.0 200", "HTTP/2.0 200 OK\r\n\r\n", 0, HTTP1_E_VERSION_UNSUPPORTED },
	{ "ICY", "ICY 200 OK\r\n\r\n", 0, HTTP1_E_STATUS_LINE },
	{ "status bare LF", "HTTP/1.1 200 OK\n\r\n", 0, HTTP1_E_BARE_LF },
	{ "reason CTL", "HTTP/1.1 200 O\x01K\r\n\r\n", 0, HTTP1_E_STATUS_LINE },
	{ "resp obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, HTTP1_E_OBS_FOLD },
	{ "resp Connection: CL", "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\n", 0, HTTP1_E_CONNECTION },
	{ "resp TE 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP1_E_TE_HTTP10 },
};

static void run_vectors(int is_req, const struct vec *v, size_t n)
{
	size_t i, len;
	int rc, consistent;

	for (i = 0; i < n; i++) {
		len = v[i].len ? v[i].len : strlen(v[i].in);
		rc = incremental(is_req, v[i].in, len, NULL, &consistent);
		if (rc != v[i].want || !consistent) {
			printf("#   vector \"%s\": got %d (%s), want %d (%s)%s\n",
			       v[i].name, rc, http1_strerror(rc), v[i].want,
			       http1_strerror(v[i].want),
			       consistent ? "" : ", prefixes inconsistent");
			CHECK(rc == v[i].want && consistent);
		}
	}
}

TEST(request_smuggling_and_malformed_vectors)
{
	CHECK(sizeof(req_bad) / sizeof(req_bad[0]) >= 30);
	run_vectors(1, req_bad, sizeof(req_bad) / sizeof(req_bad[0]));
}

TEST(response_malformed_vectors)
{
	run_vectors(0, resp_bad, sizeof(resp_bad) / sizeof(resp_bad[0]));
}

TEST(error_strings_and_statuses)
{
	int e;

	for (e = -1; e >= HTTP1_E_MIN; e--) {
		CHECK(strcmp(http1_strerror(e), "unknown error") != 0);
		CHECK(http1_err_status(e) == 0 || http1_err_status(e) >= 400);
	}
	CHECK_STR(http1_strerror(1), "unknown error");
	CHECK_STR(http1_strerror(HTTP1_E_MIN - 1), "unknown error");
	CHECK(http1_err_status(HTTP1_E_HEAD_TOO_LARGE) == 431);
	CHECK(http1_err_status(HTTP1_E_LINE_TOO_LONG) == 414);
	CHECK(http1_err_status(HTTP1_E_VERSION_UNSUPPORTED) == 505);
	CHECK(http1_err_status(HTTP1_E_TE_UNSUPPORTED) == 501);
	CHECK(http1_err_status(HTTP1_E_CL_TE) == 400);
	CHECK(http1_err_status(HTTP1_E_H2_PREFACE) == 0);
}

TEST(simple_get_keep_alive)
{
	static const char s[] =
		"GET /index.html?q=1 HTTP/1.1\r\n"
		"Host: example.com:8080\r\n"
		"User-Agent:  curl/8 \t\r\n"
		"Accept: */*\r\n"
		"X-Empty:\r\n"
		"\r\n";
	struct http1_head h;
	int rc = preq(s, sizeof(s) - 1, &h);

	REQUIRE(rc == (int)sizeof(s) - 1);
	CHECK(h.head_len == sizeof(s) - 1);
	CHECK(eq(h.method, h.method_len, "GET"));
	CHECK(h.method_id == HTTP1_M_GET);
	CHECK(eq(h.target, h.target_len, "/index.html?q=1"));
	CHECK(eq(h.path, h.path_len, "/index.html?q=1"));
	CHECK(h.target_form == HTTP1_T_ORIGIN);
	CHECK(eq(h.authority, h.authority_len, "example.com:8080"));
	CHECK(h.version == 11);
	CHECK(h.host_count == 1);
	REQUIRE(h.nheaders == 4);
	CHECK(eq(h.headers[1].name, h.headers[1].name_len, "User-Agent"));
	CHECK(eq(h.headers[1].value, h.headers[1].value_len, "curl/8"));
	CHECK(eq(h.headers[3].name, h.headers[3].name_len, "X-Empty"));
	CHECK(h.headers[3].value_len == 0);
	CHECK(h.flags & HTTP1_F_KEEP_ALIVE);
	CHECK(!(h.flags & (HTTP1_F_CONTENT_LENGTH | HTTP1_F_CHUNKED)));
	CHECK(http1_request_body(&h) == HTTP1_BODY_NONE);
	/* every slice points into the input */
	CHECK(h.method == s && h.target > s && h.target < s + sizeof(s));
}

TEST(connection_close_and_options)
{
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n"
		"Connection: close, X-Hop\r\nConnection: ,TE,\r\n"
		"X-Hop: 1\r\nTE: trailers;q=1, deflate\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(s, sizeof(s) - 1, &h) > 0);
	CHECK(!(h.flags & HTTP1_F_KEEP_ALIVE));
	CHECK(h.flags & HTTP1_F_CONN_CLOSE);
	CHECK(h.flags & HTTP1_F_CONN_TE);
	CHECK(h.flags & HTTP1_F_TE_TRAILERS);
	REQUIRE(h.nconn_opts == 1);
	CHECK(eq(h.conn_opts[0].p, h.conn_opts[0].len, "X-Hop"));
	CHECK(http1_is_hop_by_hop(&h, "x-hop", 5));
	CHECK(http1_is_hop_by_hop(&h, "Transfer-Encoding", 17));
	CHECK(http1_is_hop_by_hop(&h, "KEEP-ALIVE", 10));
	CHECK(!http1_is_hop_by_hop(&h, "Host", 4));
	/* even when a (hand-built) head lists them */
	h.conn_opts[0].p = "content-length";
	h.conn_opts[0].len = 14;
	CHECK(!http1_is_hop_by_hop(&h, "Content-Length", 14));
	CHECK(!http1_is_hop_by_hop(NULL, "x-hop", 5));
}

TEST(http10_defaults)
{
	static const char a[] = "GET / HTTP/1.0\r\n\r\n";
	static const char b[] = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n"
		"Expect: 100-continue\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(a, sizeof(a) - 1, &h) == (int)sizeof(a) - 1);
	CHECK(h.version == 10);
	CHECK(!(h.flags & HTTP1_F_KEEP_ALIVE));
	CHECK(h.authority == NULL && h.host_count == 0);
	REQUIRE(preq(b, sizeof(b) - 1, &h) > 0);
	CHECK(h.flags & HTTP1_F_KEEP_ALIVE);
	/* 1.0 servers ignore Expect (RFC 9110 10.1.1) */
	CHECK(!(h.flags & (HTTP1_F_EXPECT_CONTINUE | HTTP1_F_EXPECT_OTHER)));
}

TEST(pipelined_requests)
{
	static const char s[] =
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
		"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
		"GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http1_head h;
	size_t off = 0;
	int rc;

	rc = preq(s, sizeof(s) - 1, &h);
	REQUIRE(rc > 0);
	CHECK(eq(h.target, h.target_len, "/a"));
	CHECK(http1_request_body(&h) == HTTP1_BODY_LENGTH);
	CHECK(h.content_length == 5);
	off = (size_t)rc + h.content_length;
	rc = preq(s + off, sizeof(s) - 1 - off, &h);
	REQUIRE(rc > 0);
	CHECK(eq(h.target, h.target_len, "/b"));
	off += (size_t)rc;
	rc = preq(s + off, sizeof(s) - 1 - off, &h);
	REQUIRE(rc > 0);
	CHECK(eq(h.target, h.target_len, "/c"));
	CHECK(off + (size_t)rc == sizeof(s) - 1);
}

TEST(content_length_rules)
{
	struct http1_head h;
	static const char ows[] = P "Content-Length: \t 42 \t\r\n\r\n";
	static const char zeros[] = P "Content-Length: 007\r\n\r\n";
	static const char max[] = P "Content-Length: 9223372036854775807\r\n\r\n";
	static const char zero[] = P "content-LENGTH: 0\r\n\r\n";

	/* " 5": surrounding SP/HTAB is OWS and not part of the value */
	REQUIRE(preq(ows, sizeof(ows) - 1, &h) > 0);
	CHECK(h.content_length == 42);
	REQUIRE(preq(zeros, sizeof(zeros) - 1, &h) > 0);
	CHECK(h.content_length == 7);
	REQUIRE(preq(max, sizeof(max) - 1, &h) > 0);
	CHECK(h.content_length == (uint64_t)INT64_MAX);
	REQUIRE(preq(zero, sizeof(zero) - 1, &h) > 0);
	CHECK((h.flags & HTTP1_F_CONTENT_LENGTH) && h.content_length == 0);
	CHECK(http1_request_body(&h) == HTTP1_BODY_LENGTH);
}

TEST(chunked_request)
{
	static const char s[] = P "Transfer-Encoding: Chunked\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(s, sizeof(s) - 1, &h) > 0);
	CHECK(h.flags & HTTP1_F_CHUNKED);
	CHECK(http1_request_body(&h) == HTTP1_BODY_CHUNKED);
}

TEST(absolute_form_and_host)
{
	static const char a[] = "GET http://Example.com:8080/p?q HTTP/1.1\r\n"
		"Host: other\r\n\r\n";
	static const char b[] = "GET HTTPS://example.com HTTP/1.1\r\n"
		"Host: EXAMPLE.com\r\n\r\n";
	static const char c[] = "GET http://[::1]:80?x HTTP/1.0\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(a, sizeof(a) - 1, &h) > 0);
	CHECK(h.target_form == HTTP1_T_ABSOLUTE);
	CHECK(eq(h.authority, h.authority_len, "Example.com:8080"));
	CHECK(eq(h.path, h.path_len, "/p?q"));
	CHECK(h.flags & HTTP1_F_HOST_MISMATCH);
	REQUIRE(preq(b, sizeof(b) - 1, &h) > 0);
	CHECK(eq(h.authority, h.authority_len, "example.com"));
	CHECK(h.path_len == 0);
	CHECK(!(h.flags & HTTP1_F_HOST_MISMATCH));
	REQUIRE(preq(c, sizeof(c) - 1, &h) > 0);
	CHECK(eq(h.authority, h.authority_len, "[::1]:80"));
	CHECK(eq(h.path, h.path_len, "?x"));
}

TEST(options_asterisk_and_methods)
{
	static const char a[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char b[] = "PURGE /x HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n";
	static const char c[] = "get / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(a, sizeof(a) - 1, &h) > 0);
	CHECK(h.method_id == HTTP1_M_OPTIONS);
	CHECK(h.target_form == HTTP1_T_ASTERISK);
	CHECK(eq(h.path, h.path_len, "*"));
	REQUIRE(preq(b, sizeof(b) - 1, &h) > 0);
	CHECK(h.method_id == HTTP1_M_OTHER);
	CHECK(eq(h.authority, h.authority_len, "[2001:db8::1]:443"));
	REQUIRE(preq(c, sizeof(c) - 1, &h) > 0);
	CHECK(h.method_id == HTTP1_M_OTHER); /* methods are case-sensitive */
}

TEST(connect_reported_with_head)
{
	static const char s[] = "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n";
	struct http1_head h;

	CHECK(preq(s, sizeof(s) - 1, &h) == HTTP1_E_CONNECT);
	CHECK(h.method_id == HTTP1_M_CONNECT);
	CHECK(h.target_form == HTTP1_T_AUTHORITY);
	CHECK(eq(h.authority, h.authority_len, "db:5432"));
	CHECK(h.head_len == sizeof(s) - 1);
}

TEST(expect_upgrade_flags)
{
	static const char a[] = "PUT /u HTTP/1.1\r\nHost: a\r\n"
		"Expect: 100-Continue\r\nContent-Length: 10\r\n\r\n";
	static const char b[] = "GET /ws HTTP/1.1\r\nHost: a\r\n"
		"Connection: Upgrade\r\nUpgrade: websocket, h2c/1\r\n\r\n";
	static const char c[] = "GET /ws HTTP/1.1\r\nHost: a\r\n"
		"Upgrade: h2c\r\nExpect: something\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(a, sizeof(a) - 1, &h) > 0);
	CHECK(h.flags & HTTP1_F_EXPECT_CONTINUE);
	CHECK(!(h.flags & HTTP1_F_EXPECT_OTHER));
	REQUIRE(preq(b, sizeof(b) - 1, &h) > 0);
	CHECK(h.flags & HTTP1_F_UPGRADE);
	CHECK(eq(h.upgrade, h.upgrade_len, "websocket"));
	REQUIRE(preq(c, sizeof(c) - 1, &h) > 0);
	CHECK(!(h.flags & HTTP1_F_UPGRADE)); /* not listed in Connection */
	CHECK(eq(h.upgrade, h.upgrade_len, "h2c"));
	CHECK(h.flags & HTTP1_F_EXPECT_OTHER);
}

TEST(obs_text_in_values_is_kept)
{
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n";
	struct http1_head h;

	REQUIRE(preq(s, sizeof(s) - 1, &h) > 0);
	CHECK(eq(h.headers[1].value, h.headers[1].value_len, "caf\xc3\xa9"));
}

TEST(responses_and_body_rules)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	static const char eof[] = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
	static const char ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char nc[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
	static const char nm[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
	static const char nr[] = "HTTP/1.1 200\r\n\r\n";
	static const char ten[] = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
	static const char tka[] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
		"Content-Length: 1\r\n\r\n";
	static const char cl[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
		"Content-Length: 1\r\n\r\n";
	struct http1_head h;

	REQUIRE(presp(ok, sizeof(ok) - 1, &h) == (int)sizeof(ok) - 4);
	CHECK(h.status == 200 && eq(h.reason, h.reason_len, "OK"));
	CHECK(http1_response_body(HTTP1_M_GET, &h) == HTTP1_BODY_LENGTH);
	CHECK(http1_response_body(HTTP1_M_HEAD, &h) == HTTP1_BODY_NONE);
	CHECK(http1_response_persistent(HTTP1_M_GET, &h));
	REQUIRE(presp(eof, sizeof(eof) - 1, &h) > 0);
	CHECK(http1_response_body(HTTP1_M_GET, &h) == HTTP1_BODY_CLOSE);
	CHECK(!http1_response_persistent(HTTP1_M_GET, &h));
	CHECK(http1_response_body(HTTP1_M_HEAD, &h) == HTTP1_BODY_NONE);
	CHECK(http1_response_persistent(HTTP1_M_HEAD, &h));
	CHECK(http1_response_body(HTTP1_M_CONNECT, &h) == HTTP1_BODY_TUNNEL);
	REQUIRE(presp(ch, sizeof(ch) - 1, &h) > 0);
	CHECK(http1_response_body(HTTP1_M_POST, &h) == HTTP1_BODY_CHUNKED);
	REQUIRE(presp(nc, sizeof(nc) - 1, &h) > 0);
	CHECK(http1_response_body(HTTP1_M_GET, &h) == HTTP1_BODY_NONE);
	REQUIRE(presp(nm, sizeof(nm) - 1, &h) > 0);
	CHECK(http1_response_body(HTTP1_M_GET, &h) == HTTP1_BODY_NONE);
	CHECK(h.content_length == 99);
	REQUIRE(presp(nr, sizeof(nr) - 1, &h) > 0);
	CHECK(h.status == 200 && h.reason_len == 0);
	REQUIRE(presp(ten, sizeof(ten) - 1, &h) > 0);
	CHECK(h.version == 10 && !(h.flags & HTTP1_F_KEEP_ALIVE));
	CHECK(!http1_response_persistent(HTTP1_M_GET, &h));
	REQUIRE(presp(tka, sizeof(tka) - 1, &h) > 0);
	CHECK(http1_response_persistent(HTTP1_M_GET, &h));
	REQUIRE(presp(cl, sizeof(cl) - 1, &h) > 0);
	CHECK(!http1_response_persistent(HTTP1_M_GET, &h));
	CHECK_STR(http1_body_str(HTTP1_BODY_CLOSE), "until-close");
}

TEST(interim_and_switching_responses)
{
	static const char s[] = "HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const char up[] = "HTTP/1.1 101 Switching Protocols\r\n"
		"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
	struct http1_head h;
	int rc;

	rc = presp(s, sizeof(s) - 1, &h);
	REQUIRE(rc > 0);
	CHECK(h.status == 100);
	CHECK(http1_response_body(HTTP1_M_POST, &h) == HTTP1_BODY_NONE);
	rc = presp(s + rc, sizeof(s) - 1 - (size_t)rc, &h);
	REQUIRE(rc > 0);
	CHECK(h.status == 200);
	REQUIRE(presp(up, sizeof(up) - 1, &h) > 0);
	CHECK(h.flags & HTTP1_F_UPGRADE);
	CHECK(http1_response_body(HTTP1_M_GET, &h) == HTTP1_BODY_TUNNEL);
	CHECK(!http1_response_persistent(HTTP1_M_GET, &h));
}

TEST(byte_by_byte_equals_one_shot)
{
	static const char *const valid[] = {
		"GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\nTRAILING",
		"POST http://h:1/ HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n",
	};
	size_t i, k, n;
	struct http1_head one, inc;
	struct http1_header h2[NHDR];
	int rc, rc2, consistent;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		n = strlen(valid[i]);
		rc = incremental(1, valid[i], n, NULL, &consistent);
		CHECK(rc > 0 && consistent);
		/* feeding the buffer as it grows gives the same head */
		http1_head_init(&one, h2, NHDR);
		REQUIRE(http1_parse_request(valid[i], n, NULL, &one) == rc);
		for (k = 0; k <= n; k++) {
			http1_head_init(&inc, hdrs, NHDR);
			rc2 = http1_parse_request(valid[i], k, NULL, &inc);
			if (rc2 > 0)
				break;
			CHECK(rc2 == 0);
		}
		CHECK(k == (size_t)rc);
		CHECK(inc.nheaders == one.nheaders);
		CHECK(inc.flags == one.flags);
		CHECK(inc.target == one.target && inc.target_len == one.target_len);
	}
	rc = incremental(0, "HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n", 32,
	                 NULL, &consistent);
	CHECK(rc == 32 && consistent);
}

TEST(limits_head_size)
{
	struct http1_limits lim = { .max_head = 64 };
	char s[200];
	struct http1_head h;
	size_t n;
	int consistent;

	/* a head of exactly 64 bytes passes, one more byte does not */
	memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
	memset(s + 28, 'v', 32);
	memcpy(s + 60, "\r\n\r\n", 4);
	n = 64;
	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(s, n, &lim, &h) == 64);
	CHECK(incremental(1, s, n, &lim, &consistent) == 64 && consistent);
	memcpy(s + 28, "vv", 2);
	memset(s + 28, 'v', 33);
	memcpy(s + 61, "\r\n\r\n", 4);
	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(s, 65, &lim, &h) == HTTP1_E_HEAD_TOO_LARGE);
	CHECK(incremental(1, s, 65, &lim, &consistent)
	      == HTTP1_E_HEAD_TOO_LARGE && consistent);
	/* incomplete, but already max_head long */
	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(s, 64, &lim, &h) == HTTP1_E_HEAD_TOO_LARGE);
	CHECK(http1_parse_request(s, 63, &lim, &h) == 0);
}

TEST(limits_default_head_64k)
{
	size_t n = HTTP1_DEF_MAX_HEAD + 100, i;
	char *s = mem_alloc(n);
	struct http1_head h;

	REQUIRE(s);
	memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\n", 25);
	for (i = 25; i + 100 <= n; i += 100) {
		memcpy(s + i, "X-Pad: ", 7);
		memset(s + i + 7, 'p', 91);
		memcpy(s + i + 98, "\r\n", 2);
	}
	memset(s + i, 'q', n - i);
	http1_head_init(&h, hdrs, NHDR);
	/* 655 fields: too many fields comes first */
	CHECK(http1_parse_request(s, n, NULL, &h) == HTTP1_E_TOO_MANY_HEADERS);
	{
		struct http1_limits lim = { .max_headers = 1000 };
		struct http1_header *big = mem_calloc(1000, sizeof(*big));

		REQUIRE(big);
		http1_head_init(&h, big, 1000);
		CHECK(http1_parse_request(s, n, &lim, &h)
		      == HTTP1_E_HEAD_TOO_LARGE);
		mem_free(big);
	}
	mem_free(s);
}

TEST(limits_header_count_and_line)
{
	static const char three[] = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n";
	struct http1_limits lim = { .max_headers = 2 };
	struct http1_limits line = { .max_line = 20 };
	struct http1_header small[3];
	struct http1_head h;

	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(three, sizeof(three) - 1, &lim, &h)
	      == HTTP1_E_TOO_MANY_HEADERS);
	lim.max_headers = 3;
	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(three, sizeof(three) - 1, &lim, &h) > 0);
	/* the caller's array caps too */
	http1_head_init(&h, small, 2);
	CHECK(http1_parse_request(three, sizeof(three) - 1, NULL, &h)
	      == HTTP1_E_TOO_MANY_HEADERS);
	http1_head_init(&h, NULL, 0);
	CHECK(http1_parse_request("GET / HTTP/1.0\r\n\r\n", 18, NULL, &h) == 18);
	/* request line: 20 bytes incl. CRLF pass, 21 do not */
	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request("GET /234 HTTP/1.0\r\n\r\n", 21, &line, &h)
	      == 21); /* line is 19 bytes */
	CHECK(http1_parse_request("GET /2345 HTTP/1.0\r\n\r\n", 22, &line, &h)
	      == 22);
	CHECK(http1_parse_request("GET /23456 HTTP/1.0\r\n\r\n", 23, &line, &h)
	      == HTTP1_E_LINE_TOO_LONG);
	/* refused before the line ends */
	CHECK(http1_parse_request("GET /234567890123456789", 23, &line, &h)
	      == HTTP1_E_LINE_TOO_LONG);
	CHECK(http1_parse_request("GET /23456789012345", 19, &line, &h) == 0);
	CHECK(http1_err_status(HTTP1_E_LINE_TOO_LONG) == 414);
}

TEST(head_end_scanner)
{
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
	size_t k;
	int rc, found = 0;

	CHECK(http1_head_end(s, sizeof(s) - 1, 0) == 27);
	/* fed in growing pieces, scanning only new bytes */
	for (k = 1; k <= sizeof(s) - 1; k++) {
		rc = http1_head_end(s, k, k - 1);
		if (rc > 0) {
			found = rc;
			break;
		}
		CHECK(rc == 0);
	}
	CHECK(found == 27 && k == 27);
	CHECK(http1_head_end("GET /\n", 6, 0) == HTTP1_E_BARE_LF);
	CHECK(http1_head_end("\n", 1, 0) == HTTP1_E_BARE_LF);
	CHECK(http1_head_end("GET / HTTP/1.1\r\n", 16, 0) == 0);
}

TEST(parse_fields_block)
{
	static const char blk[] = "X-Sum: 12\r\nY:\r\n";
	struct http1_header f[4];

	CHECK(http1_parse_fields(blk, sizeof(blk) - 1, f, 4) == 2);
	CHECK(eq(f[0].value, f[0].value_len, "12"));
	CHECK(http1_parse_fields(blk, sizeof(blk) - 1, f, 1)
	      == HTTP1_E_TOO_MANY_HEADERS);
	CHECK(http1_parse_fields(blk, sizeof(blk) - 1, NULL, 0) == 2);
	CHECK(http1_parse_fields("", 0, f, 4) == 0);
	CHECK(http1_parse_fields("X: 1", 4, f, 4) == HTTP1_E_TRUNCATED);
	CHECK(http1_parse_fields("X: 1\r\n\r\n", 8, f, 4) == HTTP1_E_HEADER_NAME);
	CHECK(http1_parse_fields(" X: 1\r\n", 7, f, 4) == HTTP1_E_OBS_FOLD);
}

/* ---- chunked ---- */

struct dec_out {
	int rc;
	size_t consumed;  /* up to and including DONE */
	char data[512];
	size_t ndata;
	char trl[512];
	size_t ntrl;
};

/* Feeds in[0, n) in pieces of <step> bytes (0: all at once), each piece in
 * an exact-size heap copy, until DONE or an error. */
static void decode(const char *in, size_t n, size_t step,
                   const struct http1_limits *lim, struct dec_out *o)
{
	struct http1_chunked d;
	size_t pos = 0, end, c, off, span;
	char *piece;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	http1_chunked_init(&d, lim);
	while (pos < n) {
		end = step ? (pos + step < n ? pos + step : n) : n;
		piece = mem_alloc(end - pos);
		if (!piece)
			break;
		memcpy(piece, in + pos, end - pos);
		rc = http1_chunked_feed(&d, piece, end - pos, &c, &off, &span);
		if (rc == HTTP1_CHUNKED_DATA && o->ndata + span <= sizeof(o->data)) {
			memcpy(o->data + o->ndata, piece + off, span);
			o->ndata += span;
		} else if (rc == HTTP1_CHUNKED_TRAILER
		           && o->ntrl + span <= sizeof(o->trl)) {
			memcpy(o->trl + o->ntrl, piece + off, span);
			o->ntrl += span;
		}
		mem_free(piece);
		if (rc < 0)
			break;
		pos += c;
		if (rc == HTTP1_CHUNKED_DONE)
			break;
	}
	o->rc = rc;
	o->consumed = pos;
}

/* Trailer bytes of <a> and <b> agree: equal on success; on an error one
 * is a prefix of the other (a span may be handed out before the bytes that
 * prove the error arrive). */
static int trl_agree(const struct dec_out *a, const struct dec_out *b)
{
	size_t n = a->ntrl < b->ntrl ? a->ntrl : b->ntrl;

	if (a->rc >= 0 && a->ntrl != b->ntrl)
		return 0;
	return !memcmp(a->trl, b->trl, n);
}

/* Decodes at once, byte by byte and in 3-byte pieces; all must agree. */
static int decode_all(const char *in, size_t n, struct dec_out *o)
{
	struct dec_out b, t;

	decode(in, n, 0, NULL, o);
	decode(in, n, 1, NULL, &b);
	decode(in, n, 3, NULL, &t);
	return o->rc == b.rc && o->rc == t.rc
	       && o->ndata == b.ndata && o->ndata == t.ndata
	       && !memcmp(o->data, b.data, o->ndata)
	       && !memcmp(o->data, t.data, o->ndata)
	       && trl_agree(o, &b) && trl_agree(o, &t)
	       && (o->rc < 0 || (o->consumed == b.consumed
	                         && o->consumed == t.consumed));
}

TEST(chunked_basic)
{
	static const char s[] = "5\r\nhello\r\n0\r\n\r\nNEXT";
	struct dec_out o;

	REQUIRE(decode_all(s, sizeof(s) - 1, &o));
	CHECK(o.rc == HTTP1_CHUNKED_DONE);
	CHECK(o.ndata == 5 && !memcmp(o.data, "hello", 5));
	CHECK(o.consumed == sizeof(s) - 1 - 4);
	CHECK(o.ntrl == 0);
}

TEST(chunked_extensions_hex_and_trailers)
{
	static const char s[] =
		"3;a=b\r\nabc\r\n"
		"4;x;y=\"q \\\" s\";z=t\r\ndefg\r\n"
		"A\r\n0123456789\r\n"
		"0005\r\nvwxyz\r\n"
		"0;last\r\nX-Sum: 1\r\nY:  2 \r\n\r\n";
	struct dec_out o;
	struct http1_header f[4];

	REQUIRE(decode_all(s, sizeof(s) - 1, &o));
	CHECK(o.rc == HTTP1_CHUNKED_DONE);
	CHECK(o.consumed == sizeof(s) - 1);
	CHECK(o.ndata == 22 && !memcmp(o.data, "abcdefg0123456789vwxyz", 22));
	CHECK(o.ntrl == 18 && !memcmp(o.trl, "X-Sum: 1\r\nY:  2 \r\n", 18));
	CHECK(http1_parse_fields(o.trl, o.ntrl, f, 4) == 2);
	CHECK(eq(f[1].value, f[1].value_len, "2"));
}

struct cvec {
	const char *name;
	const char *in;
	int want;
};

static const struct cvec chunk_bad[] = {
	{ "17 hex digits", "fffffffffffffffff\r\n", HTTP1_E_CHUNK_SIZE_OVERFLOW },
	{ "17 digits zeros", "00000000000000001\r\n", HTTP1_E_CHUNK_SIZE_OVERFLOW },
	{ "-1", "-1\r\n", HTTP1_E_CHUNK_SIZE },
	{ "+5", "+5\r\nhello\r\n", HTTP1_E_CHUNK_SIZE },
	{ "-0", "-0\r\n\r\n", HTTP1_E_CHUNK_SIZE },
	{ "0x5", "0x5\r\nhello\r\n", HTTP1_E_CHUNK_SIZE },
	{ "5_", "5_\r\nhello\r\n", HTTP1_E_CHUNK_SIZE },
	{ "leading space", " 5\r\nhello\r\n", HTTP1_E_CHUNK_SIZE },
	{ "trailing space", "5 \r\nhello\r\n", HTTP1_E_CHUNK_SIZE },
	{ "1 ; ext (BWS refused)", "1 ; ext\r\na\r\n", HTTP1_E_CHUNK_SIZE },
	{ "1; ext", "1; ext\r\na\r\n", HTTP1_E_CHUNK_EXT },
	{ "empty size", "\r\n", HTTP1_E_CHUNK_SIZE },
	{ "longest prefix", "1these-bytes\r\n", HTTP1_E_CHUNK_SIZE },
	{ "empty ext", "1;\r\na\r\n0\r\n\r\n", HTTP1_E_CHUNK_EXT },
	{ "ext bad value", "1;a=\r\na\r\n", HTTP1_E_CHUNK_EXT },
	{ "ext CR in quote", "1;a=\"x\ry\"\r\na\r\n", HTTP1_E_CHUNK_EXT },
	{ "ext LF in quote", "1;a=\"x\ny\"\r\na\r\n", HTTP1_E_CHUNK_EXT },
	{ "ext after quote", "1;a=\"x\"y\r\na\r\n", HTTP1_E_CHUNK_EXT },
	{ "ext bare LF", "1;a\na\r\n", HTTP1_E_BARE_LF },
	{ "size bare LF", "3\nabc\r\n", HTTP1_E_BARE_LF },
	{ "size bare CR", "3\rabc\r\n", HTTP1_E_BARE_CR },
	{ "data too long", "3\r\nabcd\r\n0\r\n\r\n", HTTP1_E_CHUNK_DATA_END },
	{ "no CRLF after data", "3\r\nabc0\r\n\r\n", HTTP1_E_CHUNK_DATA_END },
	{ "bare LF after data", "3\r\nabc\n0\r\n\r\n", HTTP1_E_CHUNK_DATA_END },
	{ "CR only after data", "3\r\nabc\r0\r\n\r\n", HTTP1_E_CHUNK_DATA_END },
	{ "extra CRLF before last", "3\r\nabc\r\n\r\n0\r\n\r\n", HTTP1_E_CHUNK_SIZE },
	{ "trailer CL", "0\r\nContent-Length: 5\r\n\r\n", HTTP1_E_TRAILER_FORBIDDEN },
	{ "trailer TE", "0\r\ntransfer-encoding: chunked\r\n\r\n", HTTP1_E_TRAILER_FORBIDDEN },
	{ "trailer Host", "0\r\nHOST: x\r\n\r\n", HTTP1_E_TRAILER_FORBIDDEN },
	{ "trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", HTTP1_E_OBS_FOLD },
	{ "trailer space colon", "0\r\nX : a\r\n\r\n", HTTP1_E_SPACE_BEFORE_COLON },
	{ "trailer empty name", "0\r\n: a\r\n\r\n", HTTP1_E_EMPTY_NAME },
	{ "trailer no colon", "0\r\nXa\r\n\r\n", HTTP1_E_NO_COLON },
	{ "trailer bad name", "0\r\nX@: a\r\n\r\n", HTTP1_E_HEADER_NAME },
	{ "trailer NUL", "0\r\nX: a\x01\r\n\r\n", HTTP1_E_CTL },
	{ "trailer bare LF", "0\r\nX: a\n\r\n", HTTP1_E_BARE_LF },
	{ "trailer bare CR", "0\r\nX: a\rb\r\n\r\n", HTTP1_E_BARE_CR },
	{ "final bare LF", "0\r\n\n", HTTP1_E_BARE_LF },
	{ "final bare CR", "0\r\n\rX", HTTP1_E_BARE_CR },
};

TEST(chunked_malformed_vectors)
{
	size_t i;
	struct dec_out o;
	int same;

	for (i = 0; i < sizeof(chunk_bad) / sizeof(chunk_bad[0]); i++) {
		same = decode_all(chunk_bad[i].in, strlen(chunk_bad[i].in), &o);
		if (o.rc != chunk_bad[i].want || !same) {
			printf("#   chunk vector \"%s\": got %d (%s), want %d%s\n",
			       chunk_bad[i].name, o.rc, http1_strerror(o.rc),
			       chunk_bad[i].want, same ? "" : ", splits differ");
			CHECK(o.rc == chunk_bad[i].want && same);
		}
	}
}

TEST(chunked_limits)
{
	struct http1_limits lim = { .max_chunk_ext = 8, .max_trailer = 16,
	                            .max_headers = 2 };
	struct dec_out o;

	decode("1;abcdefg\r\na\r\n0\r\n\r\n", 20, 1, &lim, &o);
	CHECK(o.rc == HTTP1_CHUNKED_DONE); /* ";abcdefg" is 8 bytes */
	decode("1;abcdefgh\r\na\r\n", 15, 1, &lim, &o);
	CHECK(o.rc == HTTP1_E_CHUNK_EXT_TOO_LONG);
	/* 16 bytes of trailer section, final CRLF included */
	decode("0\r\nA: 1\r\nB: 223\r\n\r\n", 19, 0, &lim, &o);
	CHECK(o.rc == HTTP1_CHUNKED_DONE);
	decode("0\r\nA: 1\r\nB: 2234\r\n\r\n", 20, 1, &lim, &o);
	CHECK(o.rc == HTTP1_E_TRAILER_TOO_LARGE);
	decode("0\r\nA:\r\nB:\r\nC:\r\n\r\n", 18, 1, &lim, &o);
	CHECK(o.rc == HTTP1_E_TOO_MANY_HEADERS);
	/* 16 hex digits is the longest size accepted */
	decode("ffffffffffffffff\r\nabc", 21, 0, NULL, &o);
	CHECK(o.rc == HTTP1_CHUNKED_DATA && o.ndata == 3);
}

TEST(chunked_sticky_and_done)
{
	struct http1_chunked d;
	size_t c, off, span;

	http1_chunked_init(&d, NULL);
	CHECK(http1_chunked_feed(&d, "0\r\n\r\nGET", 8, &c, &off, &span)
	      == HTTP1_CHUNKED_DONE);
	CHECK(c == 5);
	CHECK(http1_chunked_feed(&d, "GET", 3, &c, &off, &span)
	      == HTTP1_CHUNKED_DONE);
	CHECK(c == 0);
	http1_chunked_init(&d, NULL);
	CHECK(http1_chunked_feed(&d, "z", 1, &c, &off, &span)
	      == HTTP1_E_CHUNK_SIZE);
	CHECK(http1_chunked_feed(&d, "0\r\n\r\n", 5, &c, &off, &span)
	      == HTTP1_E_CHUNK_SIZE);
	CHECK(c == 0);
	http1_chunked_init(&d, NULL);
	CHECK(http1_chunked_feed(&d, "", 0, &c, &off, &span)
	      == HTTP1_CHUNKED_MORE);
	CHECK(http1_chunked_feed(&d, "4\r\nab", 5, &c, &off, &span)
	      == HTTP1_CHUNKED_DATA);
	CHECK(c == 5 && off == 3 && span == 2);
	CHECK(http1_chunked_feed(&d, "cd", 2, &c, &off, &span)
	      == HTTP1_CHUNKED_DATA);
	CHECK(c == 2 && off == 0 && span == 2);
	CHECK(http1_chunked_feed(&d, "\r", 1, &c, &off, &span)
	      == HTTP1_CHUNKED_MORE);
	CHECK(c == 1);
}

TEST(chunk_encoder_roundtrip)
{
	char line[HTTP1_CHUNK_LINE_MAX], store[8];
	struct buf b, small;
	struct dec_out o;
	static const char body[] = "The quick brown fox jumps over the lazy dog";
	size_t i, n;

	CHECK(http1_chunk_line(line, 1) == 3 && !memcmp(line, "1\r\n", 3));
	CHECK(http1_chunk_line(line, 0xabc) == 5 && !memcmp(line, "abc\r\n", 5));
	CHECK(http1_chunk_line(line, UINT64_MAX) == 18
	      && !memcmp(line, "ffffffffffffffff\r\n", 18));
	buf_init(&b, 4096);
	for (i = 0; i < sizeof(body) - 1; i += n) {
		n = (i % 7) + 1;
		if (i + n > sizeof(body) - 1)
			n = sizeof(body) - 1 - i;
		REQUIRE(http1_chunk_append(&b, body + i, n) == 0);
	}
	n = buf_len(&b);
	CHECK(http1_chunk_append(&b, "x", 0) == 0 && buf_len(&b) == n);
	REQUIRE(http1_chunk_append_last(&b, "X-T: 1\r\n", 8) == 0);
	CHECK(http1_chunk_append_last(&b, "X-T: 1", 6) == -1);
	CHECK(http1_chunk_append_last(&b, "X-T: 1\r\nEvil\r\n", 14) == -1);
	CHECK(buf_len(&b) == n + 13);
	REQUIRE(decode_all(buf_data(&b), buf_len(&b), &o));
	CHECK(o.rc == HTTP1_CHUNKED_DONE && o.consumed == buf_len(&b));
	CHECK(o.ndata == sizeof(body) - 1 && !memcmp(o.data, body, o.ndata));
	CHECK(o.ntrl == 8);
	buf_free(&b);
	/* no room: nothing written */
	buf_init_fixed(&small, store, sizeof(store));
	CHECK(http1_chunk_append(&small, "abcd", 4) == -1);
	CHECK(buf_len(&small) == 0);
	CHECK(http1_chunk_append(&small, "abc", 3) == 0); /* 3+3+2 = 8 */
	CHECK(http1_chunk_append_last(&small, NULL, 0) == -1);
	CHECK(buf_len(&small) == 8);
}

/* ---- serialization ---- */

TEST(write_request_with_filter_and_extras)
{
	static const char s[] = "GET /p HTTP/1.1\r\nHost: svc\r\n"
		"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
		"meshd-client-id: forged\r\nAccept: */*\r\n\r\n";
	static const char *const skip[] = { "MESHD-CLIENT-ID" };
	struct http1_header extra[1] = {
		{ "meshd-client-id", "web.ns.serviceaccount", 15, 21 },
	};
	struct http1_skip sk;
	struct http1_head h, h2;
	struct http1_header f2[16];
	struct buf b;
	const char *out;

	REQUIRE(preq(s, sizeof(s) - 1, &h) > 0);
	sk.names = skip;
	sk.nnames = 1;
	sk.hop = &h;
	buf_init(&b, 1024);
	REQUIRE(http1_write_request(&b, &h, http1_skip_filter, &sk, extra, 1) == 0);
	out = buf_cstr(&b);
	REQUIRE(out);
	CHECK_STR(out, "GET /p HTTP/1.1\r\nHost: svc\r\nAccept: */*\r\n"
	          "meshd-client-id: web.ns.serviceaccount\r\n\r\n");
	http1_head_init(&h2, f2, 16);
	CHECK(http1_parse_request(buf_data(&b), buf_len(&b), NULL, &h2)
	      == (int)buf_len(&b));
	CHECK(h2.nheaders == 3);
	buf_free(&b);
}

TEST(write_rejects_injection_and_keeps_buffer)
{
	static const char s[] = "GET http://svc/x?y HTTP/1.1\r\nHost: svc\r\n\r\n";
	struct http1_header bad_val = { "X-A", "v\r\nEvil: 1", 3, 10 };
	struct http1_header bad_name = { "X A", "v", 3, 1 };
	struct http1_header empty = { "", "v", 0, 1 };
	struct http1_head h, copy;
	struct buf b;
	char store[40];

	REQUIRE(preq(s, sizeof(s) - 1, &h) > 0);
	buf_init(&b, 1024);
	REQUIRE(buf_append(&b, "keep", 4) == 0);
	CHECK(http1_write_request(&b, &h, NULL, NULL, &bad_val, 1) == -1);
	CHECK(http1_write_request(&b, &h, NULL, NULL, &bad_name, 1) == -1);
	CHECK(http1_write_request(&b, &h, NULL, NULL, &empty, 1) == -1);
	CHECK(buf_len(&b) == 4);
	/* rewrite absolute-form to origin-form on a copy */
	copy = h;
	copy.target = h.path;
	copy.target_len = h.path_len;
	REQUIRE(http1_write_request(&b, &copy, NULL, NULL, NULL, 0) == 0);
	CHECK_STR(buf_cstr(&b), "keepGET /x?y HTTP/1.1\r\nHost: svc\r\n\r\n");
	copy.target = "/a b";
	copy.target_len = 4;
	CHECK(http1_write_request(&b, &copy, NULL, NULL, NULL, 0) == -1);
	copy = h;
	copy.version = 20;
	CHECK(http1_write_request(&b, &copy, NULL, NULL, NULL, 0) == -1);
	buf_free(&b);
	/* a fixed buffer too small: -1, unchanged */
	buf_init_fixed(&b, store, sizeof(store));
	CHECK(http1_write_request(&b, &h, NULL, NULL, NULL, 0) == -1);
	CHECK(buf_len(&b) == 0);
}

TEST(write_response)
{
	static const char s[] = "HTTP/1.0 404 Not Found\r\nServer: x\r\n"
		"Content-Length: 0\r\n\r\n";
	struct http1_header extra = { "meshd-proxy-error", "no endpoints", 17, 12 };
	struct http1_head h, bad;
	struct buf b;

	REQUIRE(presp(s, sizeof(s) - 1, &h) > 0);
	h.version = 11;
	buf_init(&b, 256);
	REQUIRE(http1_write_response(&b, &h, NULL, NULL, &extra, 1) == 0);
	CHECK_STR(buf_cstr(&b), "HTTP/1.1 404 Not Found\r\nServer: x\r\n"
	          "Content-Length: 0\r\nmeshd-proxy-error: no endpoints\r\n\r\n");
	bad = h;
	bad.status = 1000;
	CHECK(http1_write_response(&b, &bad, NULL, NULL, NULL, 0) == -1);
	bad = h;
	bad.reason = "a\nb";
	bad.reason_len = 3;
	CHECK(http1_write_response(&b, &bad, NULL, NULL, NULL, 0) == -1);
	buf_free(&b);
}

TEST(name_is)
{
	CHECK(http1_name_is("Content-Length", 14, "content-length"));
	CHECK(!http1_name_is("Content-Lengt", 13, "content-length"));
	CHECK(!http1_name_is("Content-Lengtx", 14, "content-length"));
}

/* The word-at-a-time scanners must agree with the byte rules whatever the
 * position of a byte inside a long value or target. */
TEST(long_runs_every_byte_at_every_position)
{
	static const unsigned char vbad[] = { 0x00, 0x01, 0x08, 0x0b, 0x1f, 0x7f };
	static const unsigned char vgood[] = { '\t', ' ', '!', '~', 0x80, 0xff };
	static const unsigned char tbad[] = { 0x00, 0x09, 0x1f, '#', 0x7f, 0x80, 0xff };
	char s[128];
	struct http1_head h;
	size_t pos, i, n;
	int rc;

	for (pos = 0; pos < 40; pos++) {
		for (i = 0; i < sizeof(vbad) + sizeof(vgood); i++) {
			int good = i >= sizeof(vbad);
			unsigned char c = good ? vgood[i - sizeof(vbad)] : vbad[i];

			n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\nX: v");
			memset(s + n, 'v', 40);
			s[n + pos] = (char)c;
			memcpy(s + n + 40, "v\r\n\r\n", 5);
			n += 45;
			rc = preq(s, n, &h);
			if (good ? rc != (int)n : rc != HTTP1_E_CTL) {
				printf("#   value byte 0x%02x at %zu: %d\n", c, pos, rc);
				CHECK(0);
			}
		}
		for (i = 0; i < sizeof(tbad); i++) {
			n = 5;
			memcpy(s, "GET /", 5);
			memset(s + n, 'p', 40);
			s[n + pos] = (char)tbad[i];
			memcpy(s + n + 40, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
			n += 62;
			rc = preq(s, n, &h);
			/* HTAB ends the target like a bad byte; NUL/DEL/#/8bit are
			 * invalid target bytes */
			if (rc != HTTP1_E_TARGET) {
				printf("#   target byte 0x%02x at %zu: %d\n", tbad[i],
				       pos, rc);
				CHECK(0);
			}
		}
		/* a CR or LF inside a long value */
		n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\nX: v");
		memset(s + n, 'v', 40);
		s[n + pos] = '\n';
		memcpy(s + n + 40, "v\r\n\r\n", 5);
		CHECK(preq(s, n + 45, &h) == HTTP1_E_BARE_LF);
		s[n + pos] = '\r';
		CHECK(preq(s, n + 45, &h) == HTTP1_E_BARE_CR);
	}
}

TEST(write_synthetic_response_from_scratch)
{
	struct http1_header hd[1] = { { "Content-Length", "0", 14, 1 } };
	struct http1_header empty = { "X-Empty", NULL, 7, 0 };
	struct http1_head h;
	struct buf b;

	/* the proxy's own 503: a head built by hand, no reason phrase */
	http1_head_init(&h, hd, 1);
	h.nheaders = 1;
	h.version = 11;
	h.status = 503;
	buf_init(&b, 256);
	REQUIRE(http1_write_response(&b, &h, NULL, NULL, &empty, 1) == 0);
	CHECK_STR(buf_cstr(&b), "HTTP/1.1 503 \r\nContent-Length: 0\r\n"
	          "X-Empty: \r\n\r\n");
	buf_free(&b);
}

TEST(null_empty_inputs)
{
	struct http1_head h;
	struct http1_chunked d;
	size_t c, off, span;

	http1_head_init(&h, hdrs, NHDR);
	CHECK(http1_parse_request(NULL, 0, NULL, &h) == 0);
	CHECK(http1_parse_response(NULL, 0, NULL, &h) == 0);
	CHECK(http1_head_end(NULL, 0, 0) == 0);
	CHECK(http1_parse_fields(NULL, 0, NULL, 0) == 0);
	http1_chunked_init(&d, NULL);
	CHECK(http1_chunked_feed(&d, NULL, 0, &c, &off, &span)
	      == HTTP1_CHUNKED_MORE && c == 0);
}
