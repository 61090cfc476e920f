#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/http1.h"
#include "proxy/rewrite.h"

static struct http1_header hdrs[64];

static int parse_req(const char *s, struct http1_head *h)
{
	http1_head_init(h, hdrs, 64);
	return http1_parse_request(s, strlen(s), NULL, h);
}

static int parse_resp(const char *s, struct http1_head *h)
{
	http1_head_init(h, hdrs, 64);
	return http1_parse_response(s, strlen(s), NULL, h);
}

/* Rewrites request <in> and compares with <want>. */
static int req_is(const char *in, unsigned flags, const char *host,
                  const char *want)
{
	struct http1_head h;
	struct buf b;
	int ok;

	if (parse_req(in, &h) <= 0)
		return 0;
	buf_init(&b, 4096);
	ok = rewrite_request(&b, &h, flags, host) == 0 &&
	     buf_cstr(&b) != NULL && strcmp(buf_cstr(&b), want) == 0;
	if (!ok)
		printf("#   got: %s\n", buf_cstr(&b) ? buf_cstr(&b) : "(null)");
	buf_free(&b);
	return ok;
}

static int resp_is(const char *in, unsigned flags, const char *want)
{
	struct http1_head h;
	struct buf b;
	int ok;

	if (parse_resp(in, &h) <= 0)
		return 0;
	buf_init(&b, 4096);
	ok = rewrite_response(&b, &h, flags) == 0 &&
	     buf_cstr(&b) != NULL && strcmp(buf_cstr(&b), want) == 0;
	if (!ok)
		printf("#   got: %s\n", buf_cstr(&b) ? buf_cstr(&b) : "(null)");
	buf_free(&b);
	return ok;
}

TEST(request_hop_by_hop_dropped)
{
	CHECK(req_is("GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, "
	             "X-Foo\r\nKeep-Alive: 5\r\nX-Foo: 1\r\nX-Bar: 2\r\n"
	             "Proxy-Connection: close\r\nTE: gzip\r\n\r\n", 0, NULL,
	             "GET /a?b HTTP/1.1\r\nHost: x\r\nX-Bar: 2\r\n\r\n"));
}

TEST(request_chunked_and_trailers)
{
	CHECK(req_is("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	             "chunked\r\nTE: trailers\r\nConnection: TE\r\n\r\n",
	             RW_CHUNKED | RW_TE_TRAILERS, NULL,
	             "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
	             "\r\nTE: trailers\r\nConnection: te\r\n\r\n"));
	/* Content-Length is end to end: kept */
	CHECK(req_is("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
	             0, NULL,
	             "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"));
}

TEST(request_client_identity_stripped_inbound_only)
{
	const char *in = "GET / HTTP/1.1\r\nHost: x\r\nmeshd-client-id: "
	                 "evil\r\nMeshd-Client-Id: evil2\r\n\r\n";

	CHECK(req_is(in, RW_INBOUND, NULL, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
	CHECK(req_is(in, 0, NULL, "GET / HTTP/1.1\r\nHost: x\r\n"
	             "meshd-client-id: evil\r\nMeshd-Client-Id: evil2\r\n\r\n"));
}

TEST(request_absolute_form_becomes_origin_form)
{
	CHECK(req_is("GET http://10.0.0.1:8080/p?q HTTP/1.1\r\nHost: other\r\n"
	             "Accept: */*\r\n\r\n", 0, NULL,
	             "GET /p?q HTTP/1.1\r\nAccept: */*\r\n"
	             "Host: 10.0.0.1:8080\r\n\r\n"));
	CHECK(req_is("GET http://10.0.0.1 HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
	             0, NULL, "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n"));
}

TEST(request_http10_gets_host_and_11)
{
	CHECK(req_is("GET / HTTP/1.0\r\n\r\n", 0, "10.0.0.1:80",
	             "GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n"));
	CHECK(req_is("GET / HTTP/1.0\r\nHost: h\r\n\r\n", 0, "10.0.0.1:80",
	             "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
}

TEST(request_upgrade_kept_when_asked)
{
	const char *in = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
	                 "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";

	CHECK(req_is(in, RW_UPGRADE, NULL, "GET /ws HTTP/1.1\r\nHost: x\r\n"
	             "Sec-WebSocket-Key: k\r\nUpgrade: websocket\r\n"
	             "Connection: upgrade\r\n\r\n"));
	CHECK(req_is(in, 0, NULL, "GET /ws HTTP/1.1\r\nHost: x\r\n"
	             "Sec-WebSocket-Key: k\r\n\r\n"));
}

TEST(response_framing_fields)
{
	const char *in = "HTTP/1.1 200 OK\r\nConnection: close, X-H\r\nX-H: 1\r\n"
	                 "Transfer-Encoding: chunked\r\nServer: s\r\n\r\n";

	CHECK(resp_is(in, RW_CHUNKED, "HTTP/1.1 200 OK\r\nServer: s\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n"));
	CHECK(resp_is(in, RW_CLOSE, "HTTP/1.1 200 OK\r\nServer: s\r\n"
	              "Connection: close\r\n\r\n"));
	CHECK(resp_is("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
	              RW_KEEPALIVE10, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	              "Connection: keep-alive\r\n\r\n"));
	CHECK(resp_is("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	              "Connection: Upgrade\r\nSec-WebSocket-Accept: a\r\n\r\n",
	              RW_UPGRADE, "HTTP/1.1 101 Switching Protocols\r\n"
	              "Sec-WebSocket-Accept: a\r\nUpgrade: websocket\r\n"
	              "Connection: upgrade\r\n\r\n"));
}

TEST(synthetic_responses)
{
	struct buf b;

	buf_init(&b, 4096);
	REQUIRE(rewrite_synth(&b, 502, "connect failed", -1, 0) == 0);
	CHECK_STR(buf_cstr(&b), "HTTP/1.1 502 Bad Gateway\r\n"
	          "meshd-proxy-error: connect failed\r\ncontent-length: 0\r\n\r\n");
	buf_reset(&b);
	REQUIRE(rewrite_synth(&b, 503, "no\r\nroute", -1, 1) == 0);
	CHECK_STR(buf_cstr(&b), "HTTP/1.1 503 Service Unavailable\r\n"
	          "meshd-proxy-error: no??route\r\ncontent-length: 0\r\n"
	          "connection: close\r\n\r\n");
	buf_reset(&b);
	REQUIRE(rewrite_synth(&b, 504, "timeout", rewrite_grpc_for_status(504),
	                      0) == 0);
	CHECK_STR(buf_cstr(&b), "HTTP/1.1 200 OK\r\ncontent-type: "
	          "application/grpc\r\ngrpc-status: 4\r\ngrpc-message: timeout"
	          "\r\nmeshd-proxy-error: timeout\r\ncontent-length: 0\r\n\r\n");
	CHECK(rewrite_grpc_for_status(502) == RW_GRPC_UNAVAILABLE);
	CHECK(rewrite_grpc_for_status(503) == RW_GRPC_UNAVAILABLE);
	buf_free(&b);
	/* a full buffer is refused without a partial write */
	buf_init(&b, 10);
	CHECK(rewrite_synth(&b, 502, "x", -1, 0) < 0);
	CHECK(buf_len(&b) == 0);
	buf_free(&b);
}

TEST(grpc_facts)
{
	struct http1_head h;

	REQUIRE(parse_req("POST /s/M HTTP/1.1\r\nHost: x\r\nContent-Type: "
	                  "application/grpc+proto\r\n\r\n", &h) > 0);
	CHECK(rewrite_is_grpc(&h));
	REQUIRE(parse_req("POST /s/M HTTP/1.1\r\nHost: x\r\nContent-Type: "
	                  "application/grpc\r\n\r\n", &h) > 0);
	CHECK(rewrite_is_grpc(&h));
	REQUIRE(parse_req("POST /s/M HTTP/1.1\r\nHost: x\r\nContent-Type: "
	                  "application/grpcx\r\n\r\n", &h) > 0);
	CHECK(!rewrite_is_grpc(&h));
	REQUIRE(parse_req("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &h) > 0);
	CHECK(!rewrite_is_grpc(&h));
	REQUIRE(parse_resp("HTTP/1.1 200 OK\r\ngrpc-status: 14\r\n\r\n", &h) > 0);
	CHECK(rewrite_grpc_status(&h) == 14);
	REQUIRE(parse_resp("HTTP/1.1 200 OK\r\ngrpc-status: 1x\r\n\r\n", &h) > 0);
	CHECK(rewrite_grpc_status(&h) == -1);
	REQUIRE(parse_resp("HTTP/1.1 200 OK\r\n\r\n", &h) > 0);
	CHECK(rewrite_grpc_status(&h) == -1);
}
