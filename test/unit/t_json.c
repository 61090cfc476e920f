/*
 * Unit tests for core/json: RFC 8259 examples, JSONTestSuite-style accept
 * (y_) and reject (n_) cases, token links, error positions, walking
 * helpers, strict conversions, the writer and writer -> parser round trips.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/util.h"

#define T_NTOK 512

static struct json_tok t_toks[T_NTOK];

/* Parses the C string <s> into the shared token array. */
static int t_parse(struct json_doc *d, const char *s, struct json_err *e)
{
	json_doc_init(d, t_toks, T_NTOK);
	return json_parse(d, s, strlen(s), e);
}

TEST(rfc8259_examples)
{
	static const char img[] =
		"{\n"
		"  \"Image\": {\n"
		"    \"Width\":  800,\n"
		"    \"Height\": 600,\n"
		"    \"Title\":  \"View from 15th Floor\",\n"
		"    \"Thumbnail\": {\n"
		"      \"Url\":    \"http://www.example.com/image/481989943\",\n"
		"      \"Height\": 125,\n"
		"      \"Width\":  100\n"
		"    },\n"
		"    \"Animated\" : false,\n"
		"    \"IDs\": [116, 943, 234, 38793]\n"
		"  }\n"
		"}";
	static const char geo[] =
		"[\n"
		"  {\n"
		"    \"precision\": \"zip\",\n"
		"    \"Latitude\":  37.7668,\n"
		"    \"Longitude\": -122.3959,\n"
		"    \"Address\":   \"\",\n"
		"    \"City\":      \"SAN FRANCISCO\",\n"
		"    \"State\":     \"CA\",\n"
		"    \"Zip\":       \"94107\",\n"
		"    \"Country\":   \"US\"\n"
		"  },\n"
		"  {\n"
		"    \"precision\": \"zip\",\n"
		"    \"Latitude\":  37.371991,\n"
		"    \"Longitude\": -122.026020,\n"
		"    \"Address\":   \"\",\n"
		"    \"City\":      \"SUNNYVALE\",\n"
		"    \"State\":     \"CA\",\n"
		"    \"Zip\":       \"94085\",\n"
		"    \"Country\":   \"US\"\n"
		"  }\n"
		"]";
	struct json_doc d;
	int image, ids, e, n = 0;
	int64_t v, sum = 0;
	double lat;
	char title[64];
	int b = 1;

	REQUIRE(t_parse(&d, img, NULL) > 0);
	image = json_obj_get(&d, 0, "Image");
	CHECK(json_type(&d, image) == JSON_OBJECT);
	CHECK(json_to_i64(&d, json_obj_get(&d, image, "Width"), &v) == 0 &&
	      v == 800);
	CHECK(json_str_unescape(&d, json_obj_get(&d, image, "Title"), title,
	                        sizeof(title)) == 20);
	CHECK_STR(title, "View from 15th Floor");
	CHECK(json_to_bool(&d, json_obj_get(&d, image, "Animated"), &b) == 0 &&
	      b == 0);
	CHECK(json_to_i64(&d, json_obj_get(&d, json_obj_get(&d, image,
	                  "Thumbnail"), "Height"), &v) == 0 && v == 125);
	ids = json_obj_get(&d, image, "IDs");
	JSON_ARR_FOREACH(&d, ids, e) {
		CHECK(json_to_i64(&d, e, &v) == 0);
		sum += v;
		n++;
	}
	CHECK(n == 4 && sum == 116 + 943 + 234 + 38793);

	REQUIRE(t_parse(&d, geo, NULL) > 0);
	CHECK(d.toks[0].size == 2);
	e = json_next(&d, json_first(&d, 0));
	CHECK(json_to_double(&d, json_obj_get(&d, e, "Latitude"), &lat) == 0 &&
	      fabs(lat - 37.371991) < 1e-9);
	CHECK(json_str_eq(&d, json_obj_get(&d, e, "City"), "SUNNYVALE"));
	CHECK(json_to_i64(&d, json_obj_get(&d, e, "Latitude"), &v) == -1);

	CHECK(t_parse(&d, "\"Hello world!\"", NULL) == 1);
	CHECK(json_str_eq(&d, 0, "Hello world!"));
	CHECK(t_parse(&d, "42", NULL) == 1 && json_to_i64(&d, 0, &v) == 0 &&
	      v == 42);
	CHECK(t_parse(&d, " true ", NULL) == 1 && d.toks[0].type == JSON_TRUE);
}

TEST(accepts_valid_documents)
{
	static const char *const ok[] = {
		"[]", "{}", "[[]]", "[{}]", "null", "false", " [1] ", "\t\r\n0\n",
		"-0", "0.0", "-0.0e-0", "1E+2", "1e-2", "123456789012345678901",
		"1.5E308", "[1,2,3]", "{\"a\":1,\"b\":[true,false,null]}",
		"\"\"", "\"\\u0000\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"\\ud834\\udd1e\"", "\"\\uD834\\uDD1E\"", "\"\xf0\x9d\x84\x9e\"",
		"\"\xe2\x82\xac\"", "\"\xc2\xa9\"", "\"\xef\xbf\xbf\"",
		"\"\xf4\x8f\xbf\xbf\"", "\"\x7f\"", "{\"a\":1,\"a\":2}",
		"[\"\\u2028\\u2029\"]", "{\"\":\"\"}", "[ 1 , 2 ]",
	};
	struct json_doc d;
	struct json_err e;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		int rc = t_parse(&d, ok[i], &e);

		if (rc <= 0)
			printf("#   refused %s: %s\n", ok[i],
			       e.reason ? e.reason : "?");
		CHECK(rc > 0);
	}
}

TEST(rejects_invalid_documents)
{
	static const struct { const char *s; int code; } bad[] = {
		{ "", JSON_E_EOF },
		{ " ", JSON_E_EOF },
		{ "[1,]", JSON_E_SYNTAX },
		{ "{\"a\":1,}", JSON_E_SYNTAX },
		{ "[,1]", JSON_E_SYNTAX },
		{ "[1 2]", JSON_E_SYNTAX },
		{ "{\"a\" 1}", JSON_E_SYNTAX },
		{ "{a:1}", JSON_E_SYNTAX },
		{ "{'a':1}", JSON_E_SYNTAX },
		{ "{\"a\":1", JSON_E_EOF },
		{ "[", JSON_E_EOF },
		{ "[1}", JSON_E_SYNTAX },
		{ "{]", JSON_E_SYNTAX },
		{ "01", JSON_E_NUMBER },
		{ "-01", JSON_E_NUMBER },
		{ "+1", JSON_E_SYNTAX },
		{ "1.", JSON_E_NUMBER },
		{ ".5", JSON_E_SYNTAX },
		{ "1e", JSON_E_NUMBER },
		{ "1e+", JSON_E_NUMBER },
		{ "-", JSON_E_NUMBER },
		{ "0x10", JSON_E_TRAILING },
		{ "NaN", JSON_E_SYNTAX },
		{ "Infinity", JSON_E_SYNTAX },
		{ "tru", JSON_E_EOF },
		{ "nul", JSON_E_EOF },
		{ "True", JSON_E_SYNTAX },
		{ "truex", JSON_E_TRAILING },
		{ "[1] [2]", JSON_E_TRAILING },
		{ "1 /* c */", JSON_E_TRAILING },
		{ "// c\n1", JSON_E_SYNTAX },
		{ "\"abc", JSON_E_EOF },
		{ "\"a\tb\"", JSON_E_STRING },
		{ "\"a\nb\"", JSON_E_STRING },
		{ "\"\\x41\"", JSON_E_STRING },
		{ "\"\\'\"", JSON_E_STRING },
		{ "\"\\u12\"", JSON_E_STRING },
		{ "\"\\u12", JSON_E_EOF },
		{ "\"\\uZZZZ\"", JSON_E_STRING },
		{ "\"\\ud800\"", JSON_E_STRING },
		{ "\"\\udc00\"", JSON_E_STRING },
		{ "\"\\ud800\\u0041\"", JSON_E_STRING },
		{ "\"\\ud800\\ud800\"", JSON_E_STRING },
		{ "\"\xc0\xaf\"", JSON_E_UTF8 },           /* overlong '/' */
		{ "\"\xe0\x80\xaf\"", JSON_E_UTF8 },       /* overlong */
		{ "\"\xf0\x80\x80\xaf\"", JSON_E_UTF8 },   /* overlong */
		{ "\"\xed\xa0\x80\"", JSON_E_UTF8 },       /* encoded surrogate */
		{ "\"\xf4\x90\x80\x80\"", JSON_E_UTF8 },   /* > U+10FFFF */
		{ "\"\xff\"", JSON_E_UTF8 },
		{ "\"\x80\"", JSON_E_UTF8 },               /* lone continuation */
		{ "\"\xe2\x82\"", JSON_E_UTF8 },           /* truncated */
		{ "\xef\xbb\xbf{}", JSON_E_SYNTAX },       /* BOM */
		{ "[\xe9]", JSON_E_UTF8 },
		{ "\x01", JSON_E_SYNTAX },
		{ "[1,\n2,\n]", JSON_E_SYNTAX },
	};
	struct json_doc d;
	struct json_err e;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = t_parse(&d, bad[i].s, &e);

		if (rc != -bad[i].code)
			printf("#   case %zu: rc %d, want %d\n", i, rc,
			       -bad[i].code);
		CHECK(rc == -bad[i].code);
		CHECK(d.ntoks == 0);
		CHECK(e.reason != NULL && e.offset <= strlen(bad[i].s));
	}
	/* Embedded NUL: "[1]\0" is not one value. */
	json_doc_init(&d, t_toks, T_NTOK);
	CHECK(json_parse(&d, "[1]\0", 4, &e) == -JSON_E_TRAILING);
	CHECK(json_parse(&d, "\"a\0b\"", 5, &e) == -JSON_E_STRING);
}

TEST(error_position_line_and_column)
{
	struct json_doc d;
	struct json_err e;
	char msg[128];

	CHECK(t_parse(&d, "{\n  \"a\": 1,\n  \"b\": 01\n}", &e) ==
	      -JSON_E_NUMBER);
	CHECK(e.line == 3 && e.col == 8 && e.offset == 19);
	CHECK(json_err_format(&e, "reg.json", msg, sizeof(msg)) == 0);
	CHECK_STR(msg, "reg.json:3:8: leading zero in number");
	CHECK(json_err_format(&e, NULL, msg, sizeof(msg)) == 0);
	CHECK_STR(msg, "3:8: leading zero in number");
	CHECK(json_err_format(&e, "x", msg, 5) == -1);
	CHECK(t_parse(&d, "[1,\n]", &e) == -JSON_E_SYNTAX);
	CHECK(e.line == 2 && e.col == 1);
	CHECK(t_parse(&d, "[1", &e) == -JSON_E_EOF && e.offset == 2 &&
	      e.col == 3);
	CHECK(strcmp(json_strerror(JSON_E_DEPTH), "nesting too deep") == 0);
	CHECK(strcmp(json_strerror(-JSON_E_UTF8), "invalid UTF-8") == 0);
	CHECK(strcmp(json_strerror(999), "unknown error") == 0);
}

TEST(token_links_parent_next_size)
{
	static const char s[] = "{\"a\":[1,{\"b\":null}],\"c\":\"x\",\"d\":{}}";
	struct json_doc d;
	const struct json_tok *t;

	/* 0 obj, 1 "a", 2 arr, 3 1, 4 obj, 5 "b", 6 null, 7 "c", 8 "x",
	 * 9 "d", 10 {} */
	REQUIRE(t_parse(&d, s, NULL) == 11);
	t = d.toks;
	CHECK(t[0].type == JSON_OBJECT && t[0].size == 3 && t[0].parent == -1);
	CHECK(t[0].start == 0 && t[0].end == sizeof(s) - 1);
	CHECK(t[1].parent == 0 && t[1].next == 7 && (t[1].flags & JSON_TF_KEY));
	CHECK(t[2].parent == 1 && t[2].next == -1 && t[2].size == 2);
	CHECK(t[3].parent == 2 && t[3].next == 4);
	CHECK(t[4].parent == 2 && t[4].next == -1 && t[4].size == 1);
	CHECK(t[5].parent == 4 && t[6].parent == 5 && t[6].type == JSON_NULL);
	CHECK(t[7].next == 9 && t[9].next == -1 && t[10].size == 0);
	CHECK(t[8].type == JSON_STRING && t[8].end - t[8].start == 1 &&
	      s[t[8].start] == 'x');
	CHECK(t[2].start == 5 && s[t[2].end - 1] == ']');
	CHECK(json_first(&d, 10) == -1 && json_first(&d, 3) == -1);
	CHECK(json_first(&d, 99) == -1 && json_next(&d, 99) == -1);
	CHECK(json_type(&d, -1) == JSON_NONE);
}

TEST(object_lookup_and_duplicates)
{
	struct json_doc d;
	int64_t v;
	int k;

	REQUIRE(t_parse(&d, "{\"a\":1,\"b\":2,\"a\":3}", NULL) > 0);
	CHECK(json_to_i64(&d, json_obj_get(&d, 0, "a"), &v) == 0 && v == 3);
	CHECK(json_obj_get(&d, 0, "z") == -1);
	CHECK(json_obj_get(&d, 2, "a") == -1);  /* not an object */
	k = json_obj_dup_key(&d, 0);
	CHECK(k == 5 && json_str_eq(&d, k, "a"));

	/* Escaped and plain spellings of the same name are duplicates. */
	REQUIRE(t_parse(&d, "{\"ab\":1,\"\\u0061b\":2}", NULL) > 0);
	CHECK(json_obj_dup_key(&d, 0) == 3);
	REQUIRE(t_parse(&d, "{\"\\u0061b\":1,\"a\\u0062\":2}", NULL) > 0);
	CHECK(json_obj_dup_key(&d, 0) == 3);
	REQUIRE(t_parse(&d, "{\"a\":1,\"A\":2,\"\\u0061\\u0062\":3}", NULL) > 0);
	CHECK(json_obj_dup_key(&d, 0) == -1);
	CHECK(json_obj_get(&d, 0, "ab") == 6);
	/* Keys holding NUL are matched by length. */
	REQUIRE(t_parse(&d, "{\"a\\u0000b\":7}", NULL) > 0);
	CHECK(json_obj_get_n(&d, 0, "a\0b", 3) == 2);
	CHECK(json_obj_get(&d, 0, "a") == -1);
}

TEST(string_unescape_and_compare)
{
	struct json_doc d;
	char out[32];
	int i;

	REQUIRE(t_parse(&d, "[\"a\\\"b\\\\c\\/d\\n\", \"\\ud834\\udd1e\\u00e9\","
	                    " \"x\\u0000y\", \"plain\"]", NULL) == 5);
	CHECK(json_str_unescape(&d, 1, out, sizeof(out)) == 8);
	CHECK_STR(out, "a\"b\\c/d\n");
	CHECK(json_str_eq(&d, 1, "a\"b\\c/d\n"));
	CHECK(!json_str_eq(&d, 1, "a\"b\\c/d"));
	CHECK(!json_str_eq(&d, 1, "a\"b\\c/d\nX"));
	CHECK(json_str_unescape(&d, 2, out, sizeof(out)) == 6);
	CHECK(memcmp(out, "\xf0\x9d\x84\x9e\xc3\xa9", 7) == 0);
	CHECK(json_str_unescape(&d, 2, NULL, 0) == 6);
	CHECK(json_str_unescape(&d, 2, out, 6) == -1);   /* no room for NUL */
	CHECK(json_str_unescape(&d, 2, out, 7) == 6);
	CHECK(json_str_unescape(&d, 3, out, sizeof(out)) == 3);
	CHECK(memcmp(out, "x\0y", 3) == 0);
	CHECK(json_str_cstr(&d, 3, out, sizeof(out)) == -1);
	CHECK(json_str_cstr(&d, 4, out, sizeof(out)) == 0);
	CHECK_STR(out, "plain");
	CHECK(json_str_cstr(&d, 4, out, 5) == -1);
	CHECK(json_str_unescape(&d, 0, out, sizeof(out)) == -1); /* array */
	i = json_str_eq(&d, 0, "");
	CHECK(i == 0);
	CHECK((d.toks[4].flags & JSON_TF_ESC) == 0);
	CHECK((d.toks[1].flags & JSON_TF_ESC) != 0);
}

TEST(strict_number_conversions)
{
	struct json_doc d;
	int64_t i;
	uint64_t u;
	double x;
	int b;

	REQUIRE(t_parse(&d, "[9223372036854775807, -9223372036854775808,"
	                    " 9223372036854775808, 18446744073709551615,"
	                    " 18446744073709551616, -1, 1.0, 1e2, 2.5e-3,"
	                    " 1e400, 1e-400, \"1\", true, null, -0]",
	                    NULL) == 16);
	CHECK(json_to_i64(&d, 1, &i) == 0 && i == INT64_MAX);
	CHECK(json_to_i64(&d, 2, &i) == 0 && i == INT64_MIN);
	CHECK(json_to_i64(&d, 3, &i) == -1);
	CHECK(json_to_u64(&d, 3, &u) == 0 && u == 9223372036854775808ULL);
	CHECK(json_to_u64(&d, 4, &u) == 0 && u == UINT64_MAX);
	CHECK(json_to_u64(&d, 5, &u) == -1);
	CHECK(json_to_u64(&d, 6, &u) == -1);
	CHECK(json_to_i64(&d, 6, &i) == 0 && i == -1);
	i = 77;
	CHECK(json_to_i64(&d, 7, &i) == -1 && i == 77);  /* 1.0 */
	CHECK(json_to_i64(&d, 8, &i) == -1);             /* 1e2 */
	CHECK(json_to_double(&d, 8, &x) == 0 && x == 100.0);
	CHECK(json_to_double(&d, 9, &x) == 0 && fabs(x - 0.0025) < 1e-15);
	CHECK(json_to_double(&d, 10, &x) == -1);         /* overflow */
	CHECK(json_to_double(&d, 11, &x) == 0 && x == 0.0);
	CHECK(json_to_double(&d, 12, &x) == -1);         /* a string */
	CHECK(json_to_i64(&d, 12, &i) == -1);
	CHECK(json_to_bool(&d, 13, &b) == 0 && b == 1);
	CHECK(json_to_bool(&d, 14, &b) == -1);
	CHECK(json_to_i64(&d, 15, &i) == 0 && i == 0);
	CHECK(json_to_u64(&d, 15, &u) == -1);
}

TEST(depth_and_token_limits)
{
	char s[2 * (JSON_MAX_DEPTH + 1) + 1];
	struct json_tok few[3];
	struct json_doc d;
	struct json_err e;
	int n;

	memset(s, '[', JSON_MAX_DEPTH);
	memset(s + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	s[2 * JSON_MAX_DEPTH] = '\0';
	CHECK(t_parse(&d, s, &e) == JSON_MAX_DEPTH);
	memset(s, '[', JSON_MAX_DEPTH + 1);
	memset(s + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	s[2 * JSON_MAX_DEPTH + 2] = '\0';
	CHECK(t_parse(&d, s, &e) == -JSON_E_DEPTH);
	CHECK(e.offset == JSON_MAX_DEPTH);

	json_doc_init(&d, t_toks, T_NTOK);
	d.max_depth = 2;
	CHECK(json_parse(&d, "[[1]]", 5, NULL) == 3);
	CHECK(json_parse(&d, "[{\"a\":[]}]", 10, NULL) == -JSON_E_DEPTH);

	json_doc_init(&d, few, ARRAY_SIZE(few));
	CHECK(json_parse(&d, "[1,2]", 5, NULL) == 3);
	n = json_parse(&d, "[1,2,3]", 7, &e);
	CHECK(n == -JSON_E_NOTOKENS && e.offset == 5 && d.ntoks == 0);
	CHECK(json_parse(&d, "{\"a\":1}", 7, NULL) == 3);
	CHECK(json_parse(&d, "{\"a\":1,\"b\":2}", 13, NULL) ==
	      -JSON_E_NOTOKENS);
	json_doc_init(&d, NULL, 0);
	CHECK(json_parse(&d, "1", 1, NULL) == -JSON_E_NOTOKENS);
	CHECK(json_parse(&d, NULL, 1, &e) == -JSON_E_INVAL);
}

TEST(writer_builds_documents)
{
	struct json_w w;
	struct buf b;

	buf_init(&b, 4096);
	json_w_init(&w, &b);
	CHECK(json_w_obj_open(&w) == 0);
	CHECK(json_w_key(&w, "name") == 0);
	CHECK(json_w_str(&w, "web") == 0);
	CHECK(json_w_key(&w, "ports") == 0);
	CHECK(json_w_arr_open(&w) == 0);
	CHECK(json_w_i64(&w, 8080) == 0);
	CHECK(json_w_i64(&w, INT64_MIN) == 0);
	CHECK(json_w_u64(&w, UINT64_MAX) == 0);
	CHECK(json_w_arr_close(&w) == 0);
	CHECK(json_w_key(&w, "w") == 0);
	CHECK(json_w_double(&w, 0.1) == 0);
	CHECK(json_w_key(&w, "ok") == 0);
	CHECK(json_w_bool(&w, 1) == 0);
	CHECK(json_w_key(&w, "no") == 0);
	CHECK(json_w_null(&w) == 0);
	CHECK(json_w_key(&w, "e") == 0);
	CHECK(json_w_obj_open(&w) == 0);
	CHECK(json_w_obj_close(&w) == 0);
	CHECK(json_w_key(&w, "n") == 0);
	CHECK(json_w_num_raw(&w, "-1.5e3", 6) == 0);
	CHECK(json_w_finish(&w) == -1);          /* still open */
	CHECK(json_w_obj_close(&w) == 0);
	CHECK(json_w_finish(&w) == 0);
	CHECK_STR(buf_cstr(&b), "{\"name\":\"web\",\"ports\":[8080,"
	          "-9223372036854775808,18446744073709551615],\"w\":0.1,"
	          "\"ok\":true,\"no\":null,\"e\":{},\"n\":-1.5e3}");
	CHECK(json_w_null(&w) == -1);            /* one top-level value */
	CHECK(w.failed);
	buf_free(&b);
}

TEST(writer_escapes_strings)
{
	struct json_w w;
	struct buf b;

	buf_init(&b, 4096);
	json_w_init(&w, &b);
	CHECK(json_w_str_n(&w, "q\"b\\\n\t\r\b\f\x01\x1f\x7f/\0", 14) == 0);
	CHECK_STR(buf_cstr(&b),
	          "\"q\\\"b\\\\\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/\\u0000\"");
	buf_reset(&b);
	json_w_init(&w, &b);
	/* valid multibyte kept; bad bytes -> U+FFFD each */
	CHECK(json_w_str(&w, "\xc3\xa9\xff" "a\xc0\xaf\xed\xa0\x80"
	                     "\xf0\x9d\x84\x9e\xe2\x82") == 0);
	CHECK_STR(buf_cstr(&b), "\"\xc3\xa9\\ufffda\\ufffd\\ufffd\\ufffd"
	          "\\ufffd\\ufffd\xf0\x9d\x84\x9e\\ufffd\\ufffd\"");
	buf_free(&b);
}

TEST(writer_refuses_misuse_and_limits)
{
	struct json_w w;
	struct buf b;
	char store[16];

	buf_init(&b, 1024);
	json_w_init(&w, &b);
	CHECK(json_w_obj_open(&w) == 0);
	CHECK(json_w_str(&w, "value without key") == -1);
	CHECK(json_w_obj_close(&w) == -1);       /* sticky */
	json_w_init(&w, &b);
	CHECK(json_w_key(&w, "k") == -1);        /* key at top level */
	json_w_init(&w, &b);
	CHECK(json_w_arr_open(&w) == 0 && json_w_key(&w, "k") == -1);
	json_w_init(&w, &b);
	CHECK(json_w_arr_open(&w) == 0 && json_w_obj_close(&w) == -1);
	json_w_init(&w, &b);
	CHECK(json_w_obj_open(&w) == 0 && json_w_key(&w, "k") == 0 &&
	      json_w_obj_close(&w) == -1);       /* dangling key */
	json_w_init(&w, &b);
	CHECK(json_w_double(&w, NAN) == -1);
	json_w_init(&w, &b);
	CHECK(json_w_double(&w, INFINITY) == -1);
	json_w_init(&w, &b);
	CHECK(json_w_num_raw(&w, "01", 2) == -1);
	json_w_init(&w, &b);
	CHECK(json_w_num_raw(&w, "1 ", 2) == -1);
	json_w_init(&w, &b);
	CHECK(json_w_arr_close(&w) == -1);
	buf_free(&b);

	buf_init_fixed(&b, store, sizeof(store));
	json_w_init(&w, &b);
	CHECK(json_w_arr_open(&w) == 0);
	CHECK(json_w_str(&w, "0123456789") == 0); /* 13 bytes so far */
	CHECK(json_w_str(&w, "abc") == -1);       /* limit */
	CHECK(json_w_arr_close(&w) == -1);
	CHECK(json_w_finish(&w) == -1);

	/* Depth bound matches the parser's. */
	buf_init(&b, 1024);
	json_w_init(&w, &b);
	{
		int k, rc = 0;

		for (k = 0; k < JSON_MAX_DEPTH; k++)
			rc |= json_w_arr_open(&w);
		CHECK(rc == 0);
		CHECK(json_w_arr_open(&w) == -1);
	}
	buf_free(&b);
}

TEST(writer_parser_round_trip)
{
	static const char s[] =
		"{\"kind\":\"EndpointSlice\",\"endpoints\":[{\"addresses\":"
		"[\"10.0.0.1\"],\"conditions\":{\"ready\":true}}],"
		"\"ports\":[{\"port\":8080,\"name\":\"h\\u00e9\\n\"}],"
		"\"w\":-0.25,\"z\":null}";
	struct json_doc d, d2;
	struct json_tok toks2[64];
	struct json_w w;
	struct buf b;
	double x;
	int i, n;

	n = t_parse(&d, s, NULL);
	REQUIRE(n > 0);
	buf_init(&b, 4096);
	json_w_init(&w, &b);
	CHECK(json_w_value(&w, &d, 0) == 0 && json_w_finish(&w) == 0);
	CHECK(buf_len(&b) == sizeof(s) - 1 &&
	      memcmp(buf_data(&b), s, sizeof(s) - 1) == 0);

	/* Rebuild through the typed writer calls and compare structure. */
	buf_reset(&b);
	json_w_init(&w, &b);
	CHECK(json_w_obj_open(&w) == 0);
	CHECK(json_w_key(&w, "name") == 0);
	CHECK(json_w_str(&w, "h\xc3\xa9\n\"") == 0);
	CHECK(json_w_key(&w, "w") == 0);
	CHECK(json_w_double(&w, -0.25) == 0);
	CHECK(json_w_key(&w, "copy") == 0);
	CHECK(json_w_value(&w, &d, json_obj_get(&d, 0, "endpoints")) == 0);
	CHECK(json_w_obj_close(&w) == 0 && json_w_finish(&w) == 0);
	json_doc_init(&d2, toks2, ARRAY_SIZE(toks2));
	REQUIRE(json_parse(&d2, buf_data(&b), buf_len(&b), NULL) > 0);
	CHECK(json_str_eq(&d2, json_obj_get(&d2, 0, "name"), "h\xc3\xa9\n\""));
	CHECK(json_to_double(&d2, json_obj_get(&d2, 0, "w"), &x) == 0 &&
	      x == -0.25);
	i = json_obj_get(&d2, json_first(&d2, json_obj_get(&d2, 0, "copy")),
	                 "conditions");
	CHECK(json_to_bool(&d2, json_obj_get(&d2, i, "ready"), &n) == 0 &&
	      n == 1);
	buf_free(&b);
}

TEST(writer_doubles_read_back_exactly)
{
	static const double v[] = { 0.0, -0.0, 1.0, 0.1, 1.0 / 3, 1e300,
	                            -2.2250738585072014e-308, 5e-324,
	                            123456789.125, 1e21 };
	struct json_tok toks[2];
	struct json_doc d;
	struct json_w w;
	struct buf b;
	size_t i;
	double x;

	buf_init(&b, 256);
	for (i = 0; i < ARRAY_SIZE(v); i++) {
		buf_reset(&b);
		json_w_init(&w, &b);
		CHECK(json_w_double(&w, v[i]) == 0);
		json_doc_init(&d, toks, 2);
		CHECK(json_parse(&d, buf_data(&b), buf_len(&b), NULL) == 1);
		CHECK(json_to_double(&d, 0, &x) == 0 && x == v[i]);
	}
	buf_free(&b);
}

TEST(writer_oom_is_an_error)
{
	struct json_w w;
	struct buf b;

	buf_init(&b, 4096);
	json_w_init(&w, &b);
	mem_fail_after(1);
	CHECK(json_w_arr_open(&w) == -1);
	mem_fail_reset();
	CHECK(w.failed && json_w_finish(&w) == -1);
	buf_free(&b);
}
