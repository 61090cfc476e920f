/*
 * t_h2h1: the pure translation helpers of the inbound HTTP/1-over-HTTP/2
 * downgrade (meshd-orig-proto value, request head, response fields).
 */
#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/http1.h"
#include "proxy/h2h1.h"

#define F(n, v) { STR_LIT(n), STR_LIT(v) }

static int proto(const char *v, int *abs)
{
	*abs = -1;
	return h2h1_orig_proto(str_from_cstr(v), abs);
}

TEST(h2h1_orig_proto_values)
{
	int abs;

	CHECK(proto("HTTP/1.1", &abs) == 11 && abs == 0);
	CHECK(proto("HTTP/1.0", &abs) == 10 && abs == 0);
	CHECK(proto(" HTTP/1.1 ", &abs) == 11 && abs == 0);
	CHECK(proto("HTTP/1.1; absolute-form", &abs) == 11 && abs == 1);
	CHECK(proto("HTTP/1.0 ;absolute-form", &abs) == 10 && abs == 1);
	CHECK(proto("HTTP/1.1 ; absolute-form ", &abs) == 11 && abs == 1);
	CHECK(proto("", &abs) == -1);
	CHECK(proto("HTTP/2", &abs) == -1);
	CHECK(proto("HTTP/2.0", &abs) == -1);
	CHECK(proto("http/1.1", &abs) == -1);
	CHECK(proto("HTTP/1.1x", &abs) == -1);
	CHECK(proto("HTTP/1.1;", &abs) == -1);
	CHECK(proto("HTTP/1.1; relative", &abs) == -1);
	CHECK(proto("HTTP/1.1; absolute-form; x", &abs) == -1);
	CHECK(proto("HTTP/1.1, HTTP/1.0", &abs) == -1);
}

TEST(h2h1_dropped_fields)
{
	CHECK(h2h1_req_field_dropped(STR_LIT("host")));
	CHECK(h2h1_req_field_dropped(STR_LIT("cookie")));
	CHECK(h2h1_req_field_dropped(STR_LIT("connection")));
	CHECK(h2h1_req_field_dropped(STR_LIT("Keep-Alive")));
	CHECK(h2h1_req_field_dropped(STR_LIT("proxy-connection")));
	CHECK(h2h1_req_field_dropped(STR_LIT("transfer-encoding")));
	CHECK(h2h1_req_field_dropped(STR_LIT("upgrade")));
	CHECK(h2h1_req_field_dropped(STR_LIT("meshd-orig-proto")));
	CHECK(!h2h1_req_field_dropped(STR_LIT("te")));
	CHECK(!h2h1_req_field_dropped(STR_LIT("content-length")));
	CHECK(!h2h1_req_field_dropped(STR_LIT("x-host")));
}

/* Writes the head of <rq> and compares it with <want>. */
static int head_is(const struct h2h1_req *rq, const char *want)
{
	struct buf b;
	int ok;

	buf_init(&b, 4096);
	ok = h2h1_write_head(&b, rq) == 0 && buf_len(&b) == strlen(want) &&
	     memcmp(buf_data(&b), want, buf_len(&b)) == 0;
	if (!ok)
		printf("#   got: \"%.*s\"\n", (int)buf_len(&b), buf_data(&b));
	buf_free(&b);
	return ok;
}

TEST(h2h1_head_origin_form)
{
	static const struct h2_header f[] = {
		F("accept", "*/*"), F("cookie", "a=1"), F("host", "other"),
		F("meshd-orig-proto", "HTTP/1.1"), F("cookie", "b=2"),
		F("te", "trailers"), F("content-length", "3"),
	};
	struct h2h1_req rq = {
		STR_LIT("POST"), STR_LIT("svc.ns:8080"), STR_LIT("/a?b=c"),
		f, 7, 0, 0,
	};

	CHECK(head_is(&rq, "POST /a?b=c HTTP/1.1\r\n"
	                   "Host: svc.ns:8080\r\n"
	                   "accept: */*\r\n"
	                   "te: trailers\r\n"
	                   "content-length: 3\r\n"
	                   "cookie: a=1; b=2\r\n\r\n"));
}

TEST(h2h1_head_absolute_chunked)
{
	static const struct h2_header f[] = { F("x-a", "1") };
	struct h2h1_req rq = {
		STR_LIT("GET"), STR_LIT("web:80"), STR_LIT("/p"),
		f, 1, H2H1_F_ABSOLUTE | H2H1_F_CHUNKED, 0,
	};

	CHECK(head_is(&rq, "GET http://web:80/p HTTP/1.1\r\nHost: web:80\r\n"
	                   "x-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"));
	/* no authority: an empty Host (RFC 9112 3.2), origin form */
	rq.authority = STR_NULL;
	rq.path = STR_NULL;
	rq.nfields = 0;
	rq.flags = H2H1_F_ABSOLUTE;
	CHECK(head_is(&rq, "GET / HTTP/1.1\r\nHost: \r\n\r\n"));
	/* OPTIONS * stays in asterisk form */
	rq.method = STR_LIT("OPTIONS");
	rq.authority = STR_LIT("a");
	rq.path = STR_LIT("*");
	CHECK(head_is(&rq, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
}

TEST(h2h1_head_refuses_injection)
{
	struct h2_header f[1] = { F("x-a", "1\r\nx-evil: 1") };
	struct h2h1_req rq = {
		STR_LIT("GET"), STR_LIT("web"), STR_LIT("/"), f, 1, 0, 0,
	};
	struct buf b;

	buf_init(&b, 4096);
	buf_append(&b, "keep", 4);
	CHECK(h2h1_write_head(&b, &rq) == -1);
	CHECK(buf_len(&b) == 4);          /* unchanged */
	f[0] = (struct h2_header)F("x a", "1");
	CHECK(h2h1_write_head(&b, &rq) == -1);
	f[0] = (struct h2_header)F("x-a", "1");
	rq.path = STR_LIT("/a b");
	CHECK(h2h1_write_head(&b, &rq) == -1);
	rq.path = STR_LIT("/");
	rq.method = STR_LIT("G T");
	CHECK(h2h1_write_head(&b, &rq) == -1);
	rq.method = STR_LIT("GET");
	rq.authority = STR_LIT("we\nb");
	CHECK(h2h1_write_head(&b, &rq) == -1);
	CHECK(buf_len(&b) == 4);
	buf_free(&b);
	/* no room: -1, nothing written */
	buf_init(&b, 16);
	rq.authority = STR_LIT("web");
	CHECK(h2h1_write_head(&b, &rq) == -1);
	CHECK(buf_len(&b) == 0);
	buf_free(&b);
}

TEST(h2h1_response_fields)
{
	static struct http1_header hd[16];
	static const char resp[] =
		"HTTP/1.1 200 OK\r\n"
		"Content-Type: text/plain\r\n"
		"Connection: keep-alive, X-Hop\r\n"
		"Keep-Alive: timeout=5\r\n"
		"X-Hop: gone\r\n"
		"Transfer-Encoding: chunked\r\n"
		"Meshd-Orig-Proto: HTTP/1.0\r\n"
		"Set-Cookie: a=1\r\n\r\n";
	struct http1_head h;
	struct h2_header f[8];
	char names[256];
	ssize_t n;

	http1_head_init(&h, hd, 16);
	REQUIRE(http1_parse_response(resp, sizeof(resp) - 1, NULL, &h) > 0);
	n = h2h1_resp_fields(h.headers, h.nheaders, &h, 1, f, 8, names,
	                     sizeof(names));
	REQUIRE(n == 3);
	CHECK(str_eq_cstr(f[0].name, "content-type"));
	CHECK(str_eq_cstr(f[0].value, "text/plain"));
	CHECK(str_eq_cstr(f[1].name, "set-cookie"));
	CHECK(str_eq_cstr(f[1].value, "a=1"));
	CHECK(str_eq_cstr(f[2].name, "meshd-orig-proto"));
	CHECK(str_eq_cstr(f[2].value, "HTTP/1.1"));
	/* no mark, fixed hop-by-hop list only (trailers) */
	n = h2h1_resp_fields(h.headers, h.nheaders, NULL, 0, f, 8, names,
	                     sizeof(names));
	CHECK(n == 3);   /* x-hop stays: no Connection to name it */
	/* too small: -1 */
	CHECK(h2h1_resp_fields(h.headers, h.nheaders, &h, 1, f, 2, names,
	                       sizeof(names)) == -1);
	CHECK(h2h1_resp_fields(h.headers, h.nheaders, &h, 1, f, 8, names,
	                       8) == -1);
}
