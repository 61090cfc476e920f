/*
 * Unit tests for core/grpc: framing and the streaming deframer, status
 * codes, grpc-timeout, grpc-message, and the header/trailer sets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "core/api_pb.h"
#include "core/buf.h"
#include "core/grpc.h"
#include "core/mem.h"
#include "core/pb.h"

#define S(lit) STR_LIT(lit)
#define HDR(n, v) { STR_INIT(n), STR_INIT(v) }

TEST(status_names_and_mappings)
{
	enum grpc_status c = GRPC_OK;

	CHECK_STR(grpc_status_str(GRPC_OK), "OK");
	CHECK_STR(grpc_status_str(GRPC_UNAVAILABLE), "UNAVAILABLE");
	CHECK_STR(grpc_status_str(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
	CHECK_STR(grpc_status_str(17), "UNKNOWN");
	CHECK_STR(grpc_status_str(-1), "UNKNOWN");
	CHECK(grpc_status_from_http(404) == GRPC_UNIMPLEMENTED);
	CHECK(grpc_status_from_http(503) == GRPC_UNAVAILABLE);
	CHECK(grpc_status_from_http(429) == GRPC_UNAVAILABLE);
	CHECK(grpc_status_from_http(401) == GRPC_UNAUTHENTICATED);
	CHECK(grpc_status_from_http(400) == GRPC_INTERNAL);
	CHECK(grpc_status_from_http(500) == GRPC_UNKNOWN);
	CHECK(grpc_status_parse(S("14"), &c) == 0 && c == GRPC_UNAVAILABLE);
	CHECK(grpc_status_parse(S("99"), &c) == 0 && c == GRPC_UNKNOWN);
	CHECK(grpc_status_parse(S("1x"), &c) == -1);
	CHECK(grpc_status_parse(S(""), &c) == -1);
	CHECK(grpc_status_parse(S("-1"), &c) == -1);
}

/* Three messages (one empty) framed back to back. */
static size_t three_frames(struct buf *b)
{
	buf_init(b, 1 << 16);
	CHECK(grpc_frame_write(b, "hello", 5) == 0);
	CHECK(grpc_frame_write(b, "", 0) == 0);
	CHECK(grpc_frame_write(b, "0123456789abcdef0123", 20) == 0);
	return buf_len(b);
}

/* Feeds <p> in chunks of <step> and collects the messages into <out>
 * separated by '|'. Returns the messages count, -1 on error. */
static int deframe(const char *p, size_t n, size_t step, struct buf *out)
{
	struct grpc_deframer df;
	int count = 0;

	grpc_deframer_init(&df, 100);
	while (n > 0) {
		size_t chunk = n < step ? n : step;
		const char *q = p;

		p += chunk;
		n -= chunk;
		while (chunk > 0) {
			ssize_t c = grpc_deframer_push(&df, q, chunk);
			struct str m;

			if (c < 0) {
				grpc_deframer_free(&df);
				return -1;
			}
			q += c;
			chunk -= (size_t)c;
			if (grpc_deframer_msg(&df, &m)) {
				/* pending: nothing more is taken */
				CHECK(chunk == 0 ||
				      grpc_deframer_push(&df, q, chunk) == 0);
				buf_append(out, m.p, m.len);
				buf_append(out, "|", 1);
				grpc_deframer_next(&df);
				count++;
			}
		}
	}
	CHECK(grpc_deframer_finish(&df) == 0);
	CHECK(df.messages == (uint64_t)count);
	grpc_deframer_free(&df);
	return count;
}

TEST(deframer_resumes_at_any_byte)
{
	struct buf in, out;
	size_t n = three_frames(&in), step;

	CHECK(n == 10 + 5 + 25);
	CHECK(memcmp(buf_data(&in), "\0\0\0\0\5hello\0\0\0\0\0", 15) == 0);
	for (step = 1; step <= n; step++) {
		buf_init(&out, 1024);
		CHECK(deframe(buf_data(&in), n, step, &out) == 3);
		CHECK(buf_len(&out) == 28 &&
		      memcmp(buf_data(&out), "hello||0123456789abcdef0123|",
		             28) == 0);
		buf_free(&out);
	}
	buf_free(&in);
}

TEST(deframer_holds_no_buffer_between_messages)
{
	struct grpc_deframer df;
	struct mem_stats m0, m1;
	struct buf in;
	struct str m;
	size_t n = three_frames(&in);
	const char *p = buf_data(&in);
	ssize_t c;

	mem_get_stats(&m0);
	grpc_deframer_init(&df, 0);
	c = grpc_deframer_push(&df, p, n);
	CHECK(c == 10 && grpc_deframer_msg(&df, &m) && m.len == 5);
	mem_get_stats(&m1);
	CHECK(m1.blocks == m0.blocks + 1 && m1.bytes >= m0.bytes + 5);
	grpc_deframer_next(&df);
	mem_get_stats(&m1);
	CHECK(m1.bytes == m0.bytes && m1.blocks == m0.blocks);
	/* a message cut in two: the buffer exists only while it is due */
	c = grpc_deframer_push(&df, p + 10, 5);    /* the empty message */
	CHECK(c == 5 && grpc_deframer_msg(&df, &m) && m.len == 0);
	grpc_deframer_next(&df);
	CHECK(grpc_deframer_push(&df, p + 15, 12) == 12);
	mem_get_stats(&m1);
	CHECK(m1.blocks == m0.blocks + 1 && m1.bytes >= m0.bytes + 20);
	CHECK(grpc_deframer_push(&df, p + 27, n - 27) == (ssize_t)(n - 27));
	CHECK(grpc_deframer_msg(&df, &m) && m.len == 20 &&
	      memcmp(m.p, "0123456789abcdef0123", 20) == 0);
	grpc_deframer_next(&df);
	mem_get_stats(&m1);
	CHECK(m1.bytes == m0.bytes && m1.blocks == m0.blocks);
	CHECK(grpc_deframer_finish(&df) == 0 && df.messages == 3);
	grpc_deframer_free(&df);
	buf_free(&in);
}

TEST(deframer_errors_are_sticky)
{
	const char comp[] = { 1, 0, 0, 0, 1, 'x' };
	const char flag2[] = { 2, 0, 0, 0, 0 };
	const char big[] = { 0, 0, 0, 0, 11 };
	const char ok10[] = { 0, 0, 0, 0, 10 };
	struct grpc_deframer df;

	grpc_deframer_init(&df, 10);
	CHECK(grpc_deframer_push(&df, comp, 3) == 3);   /* prefix incomplete */
	CHECK(grpc_deframer_push(&df, comp + 3, 3) == -1);
	CHECK(df.err == GRPC_UNIMPLEMENTED);
	CHECK(strstr(df.err_text, "compressed") != NULL);
	CHECK(grpc_deframer_push(&df, ok10, 5) == -1);  /* sticky */
	CHECK(grpc_deframer_finish(&df) == -1);
	grpc_deframer_free(&df);

	grpc_deframer_init(&df, 10);
	CHECK(grpc_deframer_push(&df, flag2, 5) == -1);
	CHECK(df.err == GRPC_INTERNAL);
	grpc_deframer_free(&df);

	grpc_deframer_init(&df, 10);
	CHECK(grpc_deframer_push(&df, big, 5) == -1);
	CHECK(df.err == GRPC_RESOURCE_EXHAUSTED);
	grpc_deframer_free(&df);

	grpc_deframer_init(&df, 10);
	CHECK(grpc_deframer_push(&df, ok10, 5) == 5);
	CHECK(grpc_deframer_push(&df, "abc", 3) == 3);
	CHECK(grpc_deframer_finish(&df) == -1);         /* truncated */
	CHECK(df.err == GRPC_INTERNAL);
	grpc_deframer_free(&df);

	grpc_deframer_init(&df, 0);
	CHECK(df.max_msg == GRPC_MAX_MSG_DEFAULT);
	CHECK(grpc_deframer_finish(&df) == 0);          /* nothing seen */
	grpc_deframer_free(&df);
}

TEST(frame_pb_round_trip_and_limit)
{
	struct api_pb_get_destination g, back;
	struct grpc_deframer df;
	struct pb_arena ar;
	struct buf out;
	struct str m;
	char arena[256];
	ssize_t n;

	memset(&g, 0, sizeof(g));
	g.path = S("web.ns.svc.cluster.local:80");
	buf_init(&out, 1024);
	CHECK(buf_append(&out, "z", 1) == 0);
	CHECK(grpc_frame_pb(&out, &api_pb_get_destination_desc, &g, 10) ==
	      PB_E_NOSPACE);
	CHECK(buf_len(&out) == 1);
	n = grpc_frame_pb(&out, &api_pb_get_destination_desc, &g, 1000);
	CHECK(n == 2 + 27);
	CHECK(buf_len(&out) == 1 + 5 + (size_t)n);
	grpc_deframer_init(&df, 100);
	CHECK(grpc_deframer_push(&df, buf_data(&out) + 1, buf_len(&out) - 1)
	      == (ssize_t)buf_len(&out) - 1);
	REQUIRE(grpc_deframer_msg(&df, &m) == 1);
	pb_arena_init(&ar, arena, sizeof(arena));
	CHECK(pb_decode(&api_pb_get_destination_desc, &back, m.p, m.len, &ar,
	                NULL, 0) == 0);
	CHECK(pb_equal(&api_pb_get_destination_desc, &g, &back));
	grpc_deframer_free(&df);
	/* an empty message is a bare prefix */
	memset(&g, 0, sizeof(g));
	buf_reset(&out);
	CHECK(grpc_frame_pb(&out, &api_pb_get_destination_desc, &g, 10) == 0);
	CHECK(buf_len(&out) == 5);
	buf_free(&out);
}

TEST(timeout_parse)
{
	uint64_t ns = 7;

	CHECK(grpc_timeout_parse(S("1S"), &ns) == 0 && ns == 1000000000u);
	CHECK(grpc_timeout_parse(S("250m"), &ns) == 0 && ns == 250000000u);
	CHECK(grpc_timeout_parse(S("3u"), &ns) == 0 && ns == 3000);
	CHECK(grpc_timeout_parse(S("0n"), &ns) == 0 && ns == 0);
	CHECK(grpc_timeout_parse(S("2M"), &ns) == 0 && ns == 120000000000u);
	CHECK(grpc_timeout_parse(S("99999999M"), &ns) == 0 &&
	      ns == 99999999ull * 60 * 1000000000ull);
	/* 99999999 hours is past 2^64 ns: capped */
	CHECK(grpc_timeout_parse(S("99999999H"), &ns) == 0 &&
	      ns == UINT64_MAX);
	ns = 7;
	CHECK(grpc_timeout_parse(S(""), &ns) == -1);
	CHECK(grpc_timeout_parse(S("S"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("5"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("123456789S"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("1s"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("1.5S"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("-1S"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("1 S"), &ns) == -1);
	CHECK(grpc_timeout_parse(S("1SS"), &ns) == -1);
	CHECK(ns == 7);
}

TEST(timeout_format_rounds_up_and_parses_back)
{
	static const uint64_t vals[] = {
		0, 1, 99999999, 100000000, 1000000000, 1500000000,
		100000000001ull, 3600ull * 1000000000, UINT64_MAX,
	};
	char out[16];
	uint64_t ns;
	size_t i;

	CHECK(grpc_timeout_format(0, out, sizeof(out)) == 2);
	CHECK_STR(out, "0n");
	CHECK(grpc_timeout_format(1500000000, out, sizeof(out)) > 0);
	CHECK_STR(out, "1500000u");
	CHECK(grpc_timeout_format(100000000001ull, out, sizeof(out)) > 0);
	CHECK_STR(out, "100001m");
	CHECK(grpc_timeout_format(1, out, 9) == -1);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		int n = grpc_timeout_format(vals[i], out, sizeof(out));

		CHECK(n >= 2 && n <= 9);
		CHECK(grpc_timeout_parse(str_make(out, (size_t)n), &ns) == 0);
		CHECK(ns >= vals[i]);                 /* never shorter */
		/* and longer by less than one unit, which is at most 1e-5
		 * of the value (the finer unit overflowed 8 digits) */
		CHECK(vals[i] == UINT64_MAX ||
		      ns - vals[i] <= vals[i] / 100000 + 1);
	}
}

TEST(message_percent_encoding)
{
	struct buf b;

	buf_init(&b, 64);
	CHECK(grpc_message_encode(&b, S("hello world")) == 0);
	CHECK(buf_len(&b) == 11);
	buf_reset(&b);
	CHECK(grpc_message_encode(&b, S("a%b\n\xc3\xa9~")) == 0);
	CHECK_STR(buf_cstr(&b), "a%25b%0A%C3%A9~");
	buf_reset(&b);
	CHECK(grpc_message_decode(&b, S("a%25b%0a%C3%A9~")) == 0);
	CHECK_STR(buf_cstr(&b), "a%b\n\xc3\xa9~");
	buf_reset(&b);
	/* malformed escapes pass through verbatim */
	CHECK(grpc_message_decode(&b, S("%zz%4%")) == 0);
	CHECK_STR(buf_cstr(&b), "%zz%4%");
	buf_free(&b);
	buf_init(&b, 4);
	CHECK(grpc_message_encode(&b, S("\xff\xff")) == -1);
	CHECK(buf_len(&b) == 0);
	/* decoding needs room for the result only, not for the input */
	CHECK(grpc_message_decode(&b, S("%FF%FF%41%42")) == 0);
	CHECK(buf_len(&b) == 4 && memcmp(buf_data(&b), "\xff\xff" "AB", 4) == 0);
	CHECK(grpc_message_decode(&b, S("%41")) == -1);
	CHECK(buf_len(&b) == 4);
	buf_free(&b);
}

TEST(trailers_and_trailers_only)
{
	static char big[600 * 2];
	struct grpc_trailers t;
	struct buf dec;
	enum grpc_status c;
	size_t i;

	grpc_trailers_init(&t, GRPC_NOT_FOUND, S("no such name: \"x\"\n"), 0);
	REQUIRE(t.n == 2);
	CHECK(str_eq(t.f[0].name, S("grpc-status")));
	CHECK(str_eq(t.f[0].value, S("5")));
	CHECK(str_eq(t.f[1].value, S("no such name: \"x\"%0A")));
	buf_init(&dec, 1024);
	CHECK(grpc_status_from_fields(t.f, t.n, &c, &dec) == 0);
	CHECK(c == GRPC_NOT_FOUND);
	CHECK_STR(buf_cstr(&dec), "no such name: \"x\"\n");
	grpc_trailers_init(&t, GRPC_OK, STR_NULL, 1);
	REQUIRE(t.n == 3);
	CHECK(str_eq(t.f[0].name, S("content-type")));
	CHECK(str_eq(t.f[2].value, S("0")));
	/* a long UTF-8 message is cut between characters */
	for (i = 0; i < 600; i++) {
		big[2 * i] = '\xc3';
		big[2 * i + 1] = '\xa9';
	}
	grpc_trailers_init(&t, GRPC_INTERNAL, str_make(big, sizeof(big)), 0);
	CHECK(t.f[1].value.len == 510);
	buf_reset(&dec);
	CHECK(grpc_message_decode(&dec, t.f[1].value) == 0);
	CHECK(buf_len(&dec) == 170);
	buf_free(&dec);
}

TEST(status_from_fields_missing_or_bad)
{
	const struct h2_header none[] = { HDR("grpc-message", "x%20y") };
	const struct h2_header bad[] = { HDR("grpc-status", "abc") };
	enum grpc_status c = GRPC_OK;
	struct buf m;

	buf_init(&m, 64);
	CHECK(grpc_status_from_fields(none, 1, &c, &m) == 0);
	CHECK(c == GRPC_UNKNOWN);
	CHECK_STR(buf_cstr(&m), "missing grpc-status: x y");
	c = GRPC_OK;
	CHECK(grpc_status_from_fields(bad, 1, &c, NULL) == 0);
	CHECK(c == GRPC_UNKNOWN);
	buf_free(&m);
}

static struct h2_head req_head(const struct h2_header *f, size_t n)
{
	struct h2_head h;

	memset(&h, 0, sizeof(h));
	h.method = S("POST");
	h.scheme = S("http");
	h.authority = S("meshd-dst:8086");
	h.path = S("/meshd.destination.v1.Destination/Get");
	h.fields = f;
	h.nfields = n;
	return h;
}

TEST(server_request_check)
{
	const struct h2_header good[] = {
		HDR("content-type", "application/grpc"), HDR("te", "trailers"),
		HDR("grpc-timeout", "250m"), HDR("user-agent", "grpc-python"),
	};
	const struct h2_header plus[] = {
		HDR("content-type", "Application/GRPC+proto; charset=utf-8"),
		HDR("te", "gzip, trailers"), HDR("grpc-encoding", "identity"),
	};
	const struct h2_header json[] = {
		HDR("content-type", "application/grpc+json"),
		HDR("te", "trailers") };
	const struct h2_header note[] = {
		HDR("content-type", "application/grpc") };
	const struct h2_header gz[] = {
		HDR("content-type", "application/grpc"), HDR("te", "trailers"),
		HDR("grpc-encoding", "gzip") };
	const struct h2_header badto[] = {
		HDR("content-type", "application/grpc"), HDR("te", "trailers"),
		HDR("grpc-timeout", "1x") };
	static const char *const bad_paths[] = {
		"/", "/svc", "/svc/", "//m", "/a/b/c", "/a/b?x=1", "a/b",
	};
	struct grpc_request r;
	struct h2_head h;
	const char *why;
	size_t i;

	h = req_head(good, 4);
	CHECK(grpc_request_check(&h, &r, &why) == 0);
	CHECK(str_eq(r.service, S("meshd.destination.v1.Destination")));
	CHECK(str_eq(r.method, S("Get")));
	CHECK(r.has_timeout && r.timeout_ns == 250000000u);
	CHECK(str_eq(r.user_agent, S("grpc-python")));
	h = req_head(plus, 3);
	CHECK(grpc_request_check(&h, &r, &why) == 0 && !r.has_timeout);
	h = req_head(json, 2);
	CHECK(grpc_request_check(&h, &r, &why) == 415 && why);
	h = req_head(note, 1);
	CHECK(grpc_request_check(&h, &r, &why) == -GRPC_INTERNAL);
	h = req_head(gz, 3);
	CHECK(grpc_request_check(&h, &r, &why) == -GRPC_UNIMPLEMENTED);
	h = req_head(badto, 3);
	CHECK(grpc_request_check(&h, &r, &why) == -GRPC_INTERNAL);
	h = req_head(good, 4);
	h.method = S("GET");
	CHECK(grpc_request_check(&h, &r, &why) == 405);
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		h = req_head(good, 4);
		h.path = str_from_cstr(bad_paths[i]);
		CHECK(grpc_request_check(&h, &r, &why) == -GRPC_UNIMPLEMENTED);
	}
}

TEST(client_headers_and_response_check)
{
	const struct h2_header ok[] = {
		HDR("content-type", "application/grpc") };
	const struct h2_header html[] = { HDR("content-type", "text/html") };
	const struct h2_header tonly[] = { HDR("grpc-status", "12") };
	struct grpc_client_headers ch;
	struct h2_head h;
	const struct h2_header *rh;
	const char *why;
	uint64_t ns;
	size_t n;

	grpc_client_headers_init(&ch, 0);
	CHECK(ch.n == 4);
	CHECK(str_eq(ch.f[1].name, S("te")) &&
	      str_eq(ch.f[1].value, S("trailers")));
	grpc_client_headers_init(&ch, 1000000000u);
	REQUIRE(ch.n == 5);
	CHECK(str_eq(ch.f[4].name, S("grpc-timeout")));
	CHECK(grpc_timeout_parse(ch.f[4].value, &ns) == 0 &&
	      ns == 1000000000u);
	rh = grpc_response_headers(&n);
	CHECK(n == 2 && grpc_content_type_ok(rh[0].value));
	memset(&h, 0, sizeof(h));
	h.status = 200;
	h.fields = ok;
	h.nfields = 1;
	CHECK(grpc_response_check(&h, &why) == GRPC_OK);
	h.fields = html;
	CHECK(grpc_response_check(&h, &why) == GRPC_UNKNOWN && why);
	h.fields = tonly;
	CHECK(grpc_response_check(&h, &why) == GRPC_OK);
	h.status = 503;
	CHECK(grpc_response_check(&h, &why) == GRPC_UNAVAILABLE);
	h.status = 404;
	CHECK(grpc_response_check(&h, &why) == GRPC_UNIMPLEMENTED);
}

/* --- server and client over two in-memory h2 connections --- */

struct pair {
	struct grpc_server *srv;
	struct grpc_client *cl;
	struct buf sout, cout;
};

static int pair_xfer(struct h2_conn *from, struct buf *out, struct h2_conn *to)
{
	int moved = h2_output(from, out) > 0;

	if (buf_len(out) && h2_want_read(to)) {
		h2_feed(to, buf_data(out), buf_len(out));
		buf_consume(out, buf_len(out));
		moved = 1;
	}
	return moved;
}

static void pump(struct pair *p)
{
	int i;

	for (i = 0; i < 100000; i++)
		if (!(pair_xfer(grpc_client_h2(p->cl), &p->cout,
		                grpc_server_h2(p->srv)) |
		      pair_xfer(grpc_server_h2(p->srv), &p->sout,
		                grpc_client_h2(p->cl))))
			break;
}

/* What the test server does with a Get. */
struct srv_state {
	int mode;                  /* see on_get */
	int requests, done, writable;
	enum grpc_status done_st;
	struct grpc_call *held;
	char path[64];
	size_t big;
};

static struct api_pb_update upd_no_endpoints(int exists)
{
	struct api_pb_update u;

	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_NO_ENDPOINTS;
	u.no_endpoints.exists = exists;
	return u;
}

static void on_get(void *ctx, struct grpc_call *call, const void *req)
{
	const struct api_pb_get_destination *g = req;
	struct srv_state *st = ctx;
	struct api_pb_update u = upd_no_endpoints(1);

	st->requests++;
	str_copy_cstr(st->path, sizeof(st->path), g->path);
	switch (st->mode) {
	case 0:         /* three updates, then OK */
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) == 0);
		u = upd_no_endpoints(0);
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) == 0);
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) == 0);
		CHECK(grpc_call_finish(call, GRPC_OK, NULL) == 0);
		CHECK(grpc_call_finish(call, GRPC_OK, NULL) == -EALREADY);
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) == -EPIPE);
		break;
	case 1:         /* an error with a message, nothing sent */
		CHECK(grpc_call_finish(call, GRPC_NOT_FOUND,
		                       "unknown name: caf\xc3\xa9\n") == 0);
		break;
	case 2:         /* hold the stream open */
		st->held = call;
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) == 0);
		break;
	case 3: {       /* a message larger than the stream window */
		static char ctx_token[200000];
		struct api_pb_update big;
		struct api_pb_label l;

		memset(ctx_token, 'q', sizeof(ctx_token));
		memset(&big, 0, sizeof(big));
		l.key = S("k");
		l.value = str_make(ctx_token, st->big);
		big.update = API_PB_UPDATE_ADD;
		big.add.metric_labels = &l;
		big.add.n_metric_labels = 1;
		CHECK(grpc_call_send(call, &api_pb_update_desc, &big) == 0);
		CHECK(grpc_call_send(call, &api_pb_update_desc, &u) ==
		      -EAGAIN);
		CHECK(grpc_call_finish(call, GRPC_OK, "done") == 0);
		break;
	}
	}
}

static void on_get_writable(void *ctx, struct grpc_call *call)
{
	(void)call;
	((struct srv_state *)ctx)->writable++;
}

static void on_get_done(void *ctx, struct grpc_call *call, enum grpc_status s)
{
	struct srv_state *st = ctx;

	(void)call;
	st->done++;
	st->done_st = s;
	if (st->held == call)
		st->held = NULL;
}

static const struct grpc_method methods[] = {
	{ API_PB_DESTINATION_GET, &api_pb_get_destination_desc, on_get,
	  on_get_writable, on_get_done },
};

struct cl_state {
	int messages, statuses;
	enum grpc_status st;
	char msg[600];
	int last_exists;
	size_t last_label_len;
	struct grpc_ccall *cancel_after_first;
};

static void cl_msg(void *ctx, struct grpc_ccall *call, const void *msg)
{
	const struct api_pb_update *u = msg;
	struct cl_state *cs = ctx;

	cs->messages++;
	cs->last_exists = u->update == API_PB_UPDATE_NO_ENDPOINTS &&
	                  u->no_endpoints.exists;
	if (u->update == API_PB_UPDATE_ADD && u->add.n_metric_labels)
		cs->last_label_len = u->add.metric_labels[0].value.len;
	if (cs->cancel_after_first == call)
		CHECK(grpc_ccall_cancel(call, GRPC_CANCELLED) == 0);
}

static void cl_status(void *ctx, struct grpc_ccall *call, enum grpc_status st,
                      const char *msg)
{
	struct cl_state *cs = ctx;

	(void)call;
	cs->statuses++;
	cs->st = st;
	snprintf(cs->msg, sizeof(cs->msg), "%s", msg);
}

static const struct grpc_ccall_cb ccb = { cl_msg, cl_status };

static int pair_init(struct pair *p, struct srv_state *ss, size_t max_msg)
{
	char err[128];

	memset(p, 0, sizeof(*p));
	p->srv = grpc_server_new(methods, 1, NULL, max_msg, 0, ss, err,
	                         sizeof(err));
	p->cl = grpc_client_new(NULL, max_msg, 0, err, sizeof(err));
	buf_init(&p->sout, 32 * 1024);
	buf_init(&p->cout, 32 * 1024);
	return p->srv && p->cl ? 0 : -1;
}

static void pair_fini(struct pair *p)
{
	grpc_client_free(p->cl);
	grpc_server_free(p->srv);
	buf_free(&p->sout);
	buf_free(&p->cout);
}

static struct grpc_ccall *get(struct pair *p, struct cl_state *cs,
                              const char *path, const char *name)
{
	struct api_pb_get_destination g;
	int rc = 1;
	struct grpc_ccall *c;

	memset(&g, 0, sizeof(g));
	g.path = str_from_cstr(name);
	c = grpc_client_call(p->cl, S("dst.meshd:8086"), path,
	                     &api_pb_get_destination_desc, &g,
	                     &api_pb_update_desc, 2000000000u, &ccb, cs, &rc);
	CHECK(c != NULL && rc == 0);
	return c;
}

TEST(call_server_streaming_ok)
{
	struct srv_state ss = { 0 };
	struct cl_state cs = { 0 };
	struct pair p;

	REQUIRE(pair_init(&p, &ss, 0) == 0);
	get(&p, &cs, API_PB_DESTINATION_GET, "web.ns.svc.cluster.local:80");
	pump(&p);
	CHECK(ss.requests == 1);
	CHECK_STR(ss.path, "web.ns.svc.cluster.local:80");
	CHECK(cs.messages == 3 && !cs.last_exists);
	CHECK(cs.statuses == 1 && cs.st == GRPC_OK);
	CHECK(ss.done == 1 && ss.done_st == GRPC_OK);
	pair_fini(&p);
}

TEST(call_error_status_and_unknown_method)
{
	struct srv_state ss = { 1, 0, 0, 0, 0, NULL, "", 0 };
	struct cl_state cs = { 0 };
	struct pair p;

	REQUIRE(pair_init(&p, &ss, 0) == 0);
	get(&p, &cs, API_PB_DESTINATION_GET, "nope:1");
	pump(&p);
	CHECK(cs.statuses == 1 && cs.st == GRPC_NOT_FOUND);
	CHECK_STR(cs.msg, "unknown name: caf\xc3\xa9\n");
	CHECK(cs.messages == 0);
	CHECK(ss.done == 1 && ss.done_st == GRPC_NOT_FOUND);
	get(&p, &cs, "/meshd.destination.v1.Destination/Nope", "x:1");
	pump(&p);
	CHECK(cs.statuses == 2 && cs.st == GRPC_UNIMPLEMENTED);
	CHECK(ss.requests == 1);
	pair_fini(&p);
}

TEST(call_cancel_reaches_the_server)
{
	struct srv_state ss = { 2, 0, 0, 0, 0, NULL, "", 0 };
	struct cl_state cs = { 0 };
	struct pair p;
	struct grpc_ccall *c;

	REQUIRE(pair_init(&p, &ss, 0) == 0);
	c = get(&p, &cs, API_PB_DESTINATION_GET, "a:1");
	cs.cancel_after_first = c;
	pump(&p);
	CHECK(cs.messages == 1 && cs.last_exists);
	CHECK(cs.statuses == 1 && cs.st == GRPC_CANCELLED);
	CHECK(ss.done == 1 && ss.done_st == GRPC_CANCELLED);
	CHECK(ss.held == NULL);
	/* a call left open is released by the free functions */
	get(&p, &cs, API_PB_DESTINATION_GET, "b:1");
	cs.cancel_after_first = NULL;
	pump(&p);
	CHECK(ss.held != NULL && cs.statuses == 1);
	pair_fini(&p);                     /* ASan: nothing leaks */
}

TEST(call_large_message_flow_control_and_limit)
{
	struct srv_state ss = { 3, 0, 0, 0, 0, NULL, "", 150000 };
	struct cl_state cs = { 0 };
	struct pair p;

	REQUIRE(pair_init(&p, &ss, 1 << 20) == 0);
	get(&p, &cs, API_PB_DESTINATION_GET, "a:1");
	pump(&p);
	CHECK(cs.messages == 1 && cs.last_label_len == 150000);
	CHECK(cs.statuses == 1 && cs.st == GRPC_OK);
	CHECK_STR(cs.msg, "done");
	CHECK(ss.writable == 0);           /* finished: no on_writable */
	pair_fini(&p);
	/* the client's limit is below the message: RESOURCE_EXHAUSTED */
	memset(&cs, 0, sizeof(cs));
	ss.done = 0;
	REQUIRE(pair_init(&p, &ss, 1 << 20) == 0);
	grpc_client_free(p.cl);
	p.cl = grpc_client_new(NULL, 1000, 0, NULL, 0);
	REQUIRE(p.cl != NULL);
	get(&p, &cs, API_PB_DESTINATION_GET, "a:1");
	pump(&p);
	CHECK(cs.messages == 0);
	CHECK(cs.statuses == 1 && cs.st == GRPC_RESOURCE_EXHAUSTED);
	CHECK(ss.done == 1 && ss.done_st == GRPC_CANCELLED);
	pair_fini(&p);
}

/* Calls at rest hold no decode arena: with a 64 KiB client arena, eight
 * open calls that each received a message cost far less than 64 KiB each
 * (before, every call kept an arena of its own). */
TEST(client_calls_at_rest_share_one_decode_block)
{
	struct srv_state ss = { 2, 0, 0, 0, 0, NULL, "", 0 };
	struct cl_state cs = { 0 };
	struct mem_stats m0, m1;
	struct pair p;
	char err[128];
	int i;

	memset(&p, 0, sizeof(p));
	p.srv = grpc_server_new(methods, 1, NULL, 0, 1024, &ss, err,
	                        sizeof(err));
	p.cl = grpc_client_new(NULL, 0, 64 * 1024, err, sizeof(err));
	REQUIRE(p.srv && p.cl);
	buf_init(&p.sout, 32 * 1024);
	buf_init(&p.cout, 32 * 1024);
	get(&p, &cs, API_PB_DESTINATION_GET, "warm:1");
	pump(&p);
	REQUIRE(cs.messages == 1);
	mem_get_stats(&m0);
	for (i = 0; i < 8; i++)
		get(&p, &cs, API_PB_DESTINATION_GET, "a:1");
	pump(&p);
	CHECK(cs.messages == 9 && cs.last_exists && cs.statuses == 0);
	CHECK(ss.requests == 9);
	mem_get_stats(&m1);
	CHECK((m1.bytes - m0.bytes) / 8 < 24 * 1024);
	pair_fini(&p);                     /* ASan: nothing leaks */
}
