#include <math.h>
#include <string.h>

#include "harness.h"
#include "core/prom.h"

#define T(s) s, sizeof(s) - 1

/* 1 when <a> and <b> are equal within 1e-9 (both NaN counts as equal). */
static int near(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	if (isinf(a) || isinf(b))
		return a == b;
	return (a > b ? a - b : b - a) < 1e-9;
}

static const char scrape1[] =
	"# HELP request_total Total count of HTTP requests.\n"
	"# TYPE request_total counter\n"
	"request_total{direction=\"inbound\",authority=\"b:8080\"} 7\n"
	"request_total{direction=\"outbound\",authority=\"c:8081\"} 3 1700000000000\n"
	"\n"
	"# just a comment\n"
	"# TYPE tcp_open_connections gauge\n"
	"tcp_open_connections{direction=\"inbound\"} -2\n"
	"# HELP response_latency_ms Elapsed times between a request's headers\\n"
	"being received and its response stream completing \\\\ ms\n"
	"# TYPE response_latency_ms histogram\n"
	"response_latency_ms_bucket{direction=\"inbound\",le=\"1\"} 1\n"
	"response_latency_ms_bucket{direction=\"inbound\",le=\"10\"} 4\n"
	"response_latency_ms_bucket{direction=\"inbound\",le=\"+Inf\"} 5\n"
	"response_latency_ms_sum{direction=\"inbound\"} 123\n"
	"response_latency_ms_count{direction=\"inbound\"} 5\n"
	"up 1\n";

TEST(parse_typical_scrape)
{
	struct prom_parser p;
	struct prom_sample s;
	struct str v;
	char err[128] = "";

	prom_init(&p, T(scrape1));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(str_eq_cstr(s.name, "request_total"));
	CHECK(str_eq_cstr(s.family, "request_total"));
	CHECK(s.type == PROM_COUNTER && s.kind == PROM_K_VALUE);
	CHECK(s.line == 3);
	CHECK(s.nlabels == 2);
	CHECK(str_eq_cstr(s.labels[0].name, "direction"));
	CHECK(str_eq_cstr(s.labels[0].value, "inbound"));
	CHECK(prom_label_get(&s, "authority", &v) && str_eq_cstr(v, "b:8080"));
	CHECK(!prom_label_get(&s, "nope", &v) && v.len == 0);
	CHECK(s.value == 7 && !s.has_ts);

	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.line == 4 && s.value == 3);
	CHECK(s.has_ts && s.ts_ms == 1700000000000LL);

	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.line == 8);
	CHECK(s.type == PROM_GAUGE && s.value == -2);

	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.line == 11);
	CHECK(s.type == PROM_HISTOGRAM && s.kind == PROM_K_BUCKET);
	CHECK(str_eq_cstr(s.family, "response_latency_ms"));
	CHECK(s.le == 1 && s.value == 1);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.le == 10 && s.value == 4);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(isinf(s.le) && s.le > 0 && s.value == 5);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.kind == PROM_K_SUM && s.value == 123);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.kind == PROM_K_COUNT && s.value == 5);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(str_eq_cstr(s.name, "up") && s.type == PROM_UNTYPED);
	CHECK(s.nlabels == 0 && s.line == 16);
	CHECK(prom_next(&p, &s, err, sizeof(err)) == 0);
	CHECK(prom_next(&p, &s, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
}

TEST(blanks_trailing_comma_and_empty_labels)
{
	static const char in[] =
		"a{} 1\n"
		"b { x = \"1\" , y=\"2\", } 2\n"
		"c\t3\t-5\n";
	struct prom_parser p;
	struct prom_sample s;
	char err[128] = "";

	prom_init(&p, T(in));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.nlabels == 0 && s.value == 1);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.nlabels == 2 && str_eq_cstr(s.labels[1].name, "y"));
	CHECK(str_eq_cstr(s.labels[0].value, "1"));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.value == 3 && s.has_ts && s.ts_ms == -5);
	CHECK(prom_next(&p, &s, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
}

TEST(label_value_escapes)
{
	static const char in[] =
		"m{path=\"a\\\\b\\\"c\\nd\",u=\"\xc3\xa9t\xc3\xa9\"} 1\n";
	struct prom_parser p;
	struct prom_sample s;
	char out[32], err[128] = "";
	ssize_t n;

	prom_init(&p, T(in));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(str_eq_cstr(s.labels[0].value, "a\\\\b\\\"c\\nd"));
	n = prom_unescape(s.labels[0].value, out, sizeof(out));
	REQUIRE(n == 7);
	CHECK(memcmp(out, "a\\b\"c\nd", 7) == 0);
	CHECK(prom_value_eq(s.labels[0].value, str_make("a\\b\"c\nd", 7)));
	CHECK(!prom_value_eq(s.labels[0].value, str_make("a\\b\"c\nd!", 8)));
	CHECK(!prom_value_eq(s.labels[0].value, str_make("a\\b\"c\n", 6)));
	CHECK(!prom_value_eq(s.labels[0].value, STR_LIT("a\\\\b")));
	CHECK(prom_unescape(s.labels[0].value, out, 6) == -1);
	CHECK(prom_value_eq(s.labels[1].value, STR_LIT("\xc3\xa9t\xc3\xa9")));
	CHECK(prom_unescape(STR_LIT("x\\"), out, sizeof(out)) == -1);
	CHECK(prom_unescape(STR_LIT("\\t"), out, sizeof(out)) == -1);
	CHECK(prom_unescape(STR_NULL, out, sizeof(out)) == 0);
}

TEST(values)
{
	double v = 42;

	CHECK(prom_parse_value(STR_LIT("1"), &v) == 0 && v == 1);
	CHECK(prom_parse_value(STR_LIT("-1.5e3"), &v) == 0 && v == -1500);
	CHECK(prom_parse_value(STR_LIT(".5"), &v) == 0 && v == 0.5);
	CHECK(prom_parse_value(STR_LIT("5."), &v) == 0 && v == 5);
	CHECK(prom_parse_value(STR_LIT("+2E-1"), &v) == 0 && near(v, 0.2));
	CHECK(prom_parse_value(STR_LIT("1e-400"), &v) == 0 && v == 0);
	CHECK(prom_parse_value(STR_LIT("+Inf"), &v) == 0 && isinf(v) && v > 0);
	CHECK(prom_parse_value(STR_LIT("Inf"), &v) == 0 && isinf(v) && v > 0);
	CHECK(prom_parse_value(STR_LIT("-Inf"), &v) == 0 && isinf(v) && v < 0);
	CHECK(prom_parse_value(STR_LIT("NaN"), &v) == 0 && isnan(v));
	v = 42;
	CHECK(prom_parse_value(STR_LIT(""), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("1e"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("e1"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("."), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("inf"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("nan"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("infinity"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("0x10"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("1_0"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("--1"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT("1e999"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT(" 1"), &v) == -1);
	CHECK(prom_parse_value(STR_LIT(
		"1.000000000000000000000000000000000000000000000000000000000000000"),
		&v) == -1); /* longer than PROM_NUM_MAX */
	CHECK(v == 42);
}

/* Each malformed input must fail at its line with a reason containing the
 * given text; the error is sticky. */
TEST(malformed_lines_rejected_with_line_numbers)
{
	static const struct {
		const char *in;
		const char *err;
	} cases[] = {
		{ "foo 1", "line 1: no newline" },
		{ "ok 1\nfoo{a=\"b} 1\n", "line 2: label a: unterminated" },
		{ "foo{a=\"\\q\"} 1\n", "line 1: label a: invalid escape" },
		{ "foo{a=\"x\\\"} 1\n", "line 1: label a: unterminated" },
		{ "foo{a=\"b\",a=\"c\"} 1\n", "line 1: label a repeated" },
		{ "foo{__x=\"b\"} 1\n", "line 1: reserved label name __x" },
		{ "foo{a=\"b\"c=\"d\"} 1\n", "line 1: expected ',' or '}'" },
		{ "foo{a:b=\"1\"} 1\n", "line 1: expected '='" },
		{ "foo{a=b} 1\n", "line 1: label a: value not quoted" },
		{ "foo{1a=\"b\"} 1\n", "line 1: invalid label name" },
		{ "foo{a=\"\xff\"} 1\n", "line 1: label a: invalid UTF-8" },
		{ "foo{a=\"\xed\xa0\x80\"} 1\n", "line 1: label a: invalid UTF-8" },
		{ "foo{a=\"\xc0\xaf\"} 1\n", "line 1: label a: invalid UTF-8" },
		{ "foo 1x\n", "line 1: invalid value \"1x\"" },
		{ "foo 0x10\n", "line 1: invalid value" },
		{ "foo 1e999\n", "line 1: invalid value" },
		{ "foo\n", "line 1: expected a blank" },
		{ "foo \n", "line 1: missing value" },
		{ "foo{a=\"b\"}1\n", "line 1: expected a blank" },
		{ "1foo 1\n", "line 1: invalid metric name" },
		{ " foo 1\n", "line 1: invalid metric name" },
		{ "foo 1 2 3\n", "line 1: unexpected text after the timestamp" },
		{ "foo 1 1.5\n", "line 1: invalid timestamp" },
		{ "a 1\nb 2\r\n", "line 2: carriage return" },
		{ "a 1\n\nb\0 2\n", "line 3: NUL byte" },
		{ "# TYPE foo bar\n", "line 1: TYPE: unknown metric type" },
		{ "# TYPE foo\n", "line 1: TYPE: unknown metric type" },
		{ "# TYPE foo counter x\n", "line 1: TYPE: unknown metric type" },
		{ "# TYPE 9foo counter\n", "line 1: TYPE: invalid metric name" },
		{ "# HELP\n", "line 1: HELP without a metric name" },
		{ "# HELP foo a\\tb\n", "line 1: HELP text: invalid escape" },
		{ "# HELP foo \xe2\x82\n", "line 1: HELP text: invalid UTF-8" },
		{ "# HELP foo a\n# HELP foo b\n", "line 2: second HELP for foo" },
		{ "# TYPE foo counter\n# TYPE foo gauge\n",
		  "line 2: second TYPE for foo" },
		{ "foo 1\n# TYPE foo counter\n",
		  "line 2: TYPE for foo after its samples" },
		{ "# TYPE foo counter\nfoo -1\n", "line 2: counter foo: negative" },
		{ "# TYPE foo counter\nfoo NaN\n", "line 2: counter foo: negative" },
		{ "# TYPE h histogram\nh 1\n",
		  "line 2: histogram sample h without _bucket" },
		{ "# TYPE h histogram\nh_bucket 1\n",
		  "line 2: bucket without a valid le" },
		{ "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
		  "line 2: bucket without a valid le" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n",
		  "line 2: count h_bucket: negative" },
		{ "# TYPE h histogram\nh_count -3\n", "line 2: count h_count" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
		  "h_bucket{le=\"0.5\"} 3\n", "line 3: bucket le not increasing" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
		  "h_bucket{le=\"1\"} 3\n", "line 3: bucket le not increasing" },
		{ "# TYPE h histogram\nh_bucket{a=\"x\",le=\"1\"} 5\n"
		  "h_bucket{a=\"x\",le=\"2\"} 4\n", "line 3: bucket count decreasing" },
		{ "# TYPE s summary\ns 1\n", "line 2: summary sample without" },
		{ "# TYPE s summary\ns{quantile=\"2\"} 1\n",
		  "line 2: summary sample without" },
	};
	struct prom_parser p;
	struct prom_sample s;
	char err[128];
	size_t i, len;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* inputs with a NUL: the length runs to the final "\n" */
		len = strlen(cases[i].in);
		if (strstr(cases[i].err, "NUL"))
			len = strlen(cases[i].in) + 1 + strlen(cases[i].in +
			      strlen(cases[i].in) + 1);
		prom_init(&p, cases[i].in, len);
		err[0] = '\0';
		while ((rc = prom_next(&p, &s, err, sizeof(err))) > 0)
			;
		CHECK(rc == -1);
		if (rc != -1 || !strstr(err, cases[i].err))
			printf("#   case %zu: got \"%s\", want \"%s\"\n",
			       i, err, cases[i].err);
		CHECK(strstr(err, cases[i].err) != NULL);
		CHECK(p.failed);
		CHECK(prom_next(&p, &s, err, sizeof(err)) == -1);
		CHECK(prom_next(&p, &s, NULL, 0) == -1);
	}
}

TEST(bucket_order_is_per_series)
{
	static const char in[] =
		"# TYPE h histogram\n"
		"h_bucket{a=\"x\",le=\"1\"} 5\n"
		"h_bucket{a=\"x\",le=\"+Inf\"} 9\n"
		"h_bucket{a=\"y\",le=\"1\"} 1\n"
		"h_bucket{a=\"y\",le=\"+Inf\"} 1\n"
		"h_sum{a=\"y\"} 0.5\n"
		"h_count{a=\"y\"} 1\n"
		"h_bucket{a=\"y\",le=\"1\"} 0\n"; /* a new run after _count */
	struct prom_parser p;
	struct prom_sample s;
	char err[128] = "";
	int rc, n = 0;

	prom_init(&p, T(in));
	while ((rc = prom_next(&p, &s, err, sizeof(err))) > 0)
		n++;
	CHECK(rc == 0);
	CHECK(n == 7);
	CHECK_STR(err, "");
}

TEST(type_words_and_plain_comments)
{
	static const char in[] =
		"#no blank: comment\n"
		"#  HELPER is not HELP\n"
		"# TYPE x untyped\n"
		"x 1\n"
		"# TYPE s summary\n"
		"s{quantile=\"0.5\"} 3\n"
		"s_sum 4\n"
		"s_count 2\n";
	struct prom_parser p;
	struct prom_sample s;
	char err[128] = "";

	prom_init(&p, T(in));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.type == PROM_UNTYPED && s.line == 4);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.type == PROM_SUMMARY && s.kind == PROM_K_VALUE);
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.kind == PROM_K_SUM && str_eq_cstr(s.family, "s"));
	REQUIRE(prom_next(&p, &s, err, sizeof(err)) == 1);
	CHECK(s.kind == PROM_K_COUNT);
	CHECK(prom_next(&p, &s, err, sizeof(err)) == 0);
	CHECK_STR(prom_type_str(PROM_HISTOGRAM), "histogram");
	CHECK_STR(prom_type_str(PROM_SUMMARY), "summary");
	CHECK_STR(prom_type_str((enum prom_type)99), "untyped");
	prom_init(&p, NULL, 5);
	CHECK(prom_next(&p, &s, err, sizeof(err)) == 0);
}

TEST(quantile_exact_values)
{
	static const double le[] = { 1, 2, 4, INFINITY };
	static const double c1[] = { 10, 20, 30, 40 };
	static const double c2[] = { 10, 20, 30, 50 };
	static const double mono[] = { 10, 5, 30, 40 };
	static const double le0[] = { 0, 1, INFINITY };
	static const double c0[] = { 5, 10, 10 };
	static const double zero[] = { 0, 0, 0, 0 };
	static const double noinf[] = { 1, 2, 4, 8 };

	CHECK(near(prom_histogram_quantile(0.5, le, c1, 4), 2));
	CHECK(near(prom_histogram_quantile(0.25, le, c1, 4), 1));
	CHECK(near(prom_histogram_quantile(0.6, le, c1, 4), 2.8));
	CHECK(near(prom_histogram_quantile(0.1, le, c1, 4), 0.4));
	CHECK(near(prom_histogram_quantile(0.75, le, c1, 4), 4));
	CHECK(near(prom_histogram_quantile(0.99, le, c1, 4), 4)); /* +Inf */
	CHECK(near(prom_histogram_quantile(1, le, c1, 4), 4));
	CHECK(near(prom_histogram_quantile(0.5, le, c2, 4), 3));
	CHECK(near(prom_histogram_quantile(0.7, le, c2, 4), 4));
	CHECK(near(prom_histogram_quantile(0.5, le, mono, 4), 3));
	CHECK(near(prom_histogram_quantile(0.2, le0, c0, 3), 0));
	CHECK(near(prom_histogram_quantile(0.8, le0, c0, 3), 0.6));
	CHECK(isnan(prom_histogram_quantile(0.5, le, zero, 4)));
	CHECK(isnan(prom_histogram_quantile(0.5, noinf, c1, 4)));
	CHECK(isnan(prom_histogram_quantile(0.5, le + 3, c1 + 3, 1)));
	CHECK(isnan(prom_histogram_quantile(NAN, le, c1, 4)));
	CHECK(isnan(prom_histogram_quantile(0, le, (const double[]){ 0, 1, 1, 1 }, 4)));
	CHECK(near(prom_histogram_quantile(0, le, c1, 4), 0));
	CHECK(prom_histogram_quantile(-0.1, le, c1, 4) == -INFINITY);
	CHECK(prom_histogram_quantile(1.1, le, c1, 4) == INFINITY);
}

/* meshd's latency buckets: 100 requests, 60 at <= 1 ms, 30 in (5, 10],
 * 9 in (40, 50], 1 in (1000, 2000]. */
TEST(quantile_latency_buckets)
{
	static const double le[] = { 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100,
	                             1000, 2000, INFINITY };
	static const double cum[] = { 60, 60, 60, 60, 60, 90, 90, 90, 90, 99,
	                              99, 99, 100, 100 };

	/* p50: rank 50 in [0, 1] holding 60: 50/60 */
	CHECK(near(prom_histogram_quantile(0.5, le, cum, 14), 50.0 / 60));
	/* p95: rank 95 in (40, 50] holding 9 after 90: 40 + 10 * 5/9 */
	CHECK(near(prom_histogram_quantile(0.95, le, cum, 14), 40 + 50.0 / 9));
	/* p99: rank 99 reaches the (40, 50] bucket exactly: 50 */
	CHECK(near(prom_histogram_quantile(0.99, le, cum, 14), 50));
	/* p99.5: rank 99.5 in (1000, 2000]: 1000 + 1000 * 0.5 */
	CHECK(near(prom_histogram_quantile(0.995, le, cum, 14), 1500));
	/* p75: rank 75 in (5, 10]: 5 + 5 * 15/30 */
	CHECK(near(prom_histogram_quantile(0.75, le, cum, 14), 7.5));
}

TEST(rate)
{
	CHECK(near(prom_rate(100, 150, 10), 5));
	CHECK(near(prom_rate(100, 30, 10), 3)); /* reset: restarted at 0 */
	CHECK(near(prom_rate(7, 7, 5), 0));
	CHECK(isnan(prom_rate(1, 2, 0)));
	CHECK(isnan(prom_rate(1, 2, -1)));
}

static const char golden1[] =
	"# TYPE request_total counter\n"
	"request_total{direction=\"inbound\",authority=\"b:8080\",tls=\"no_identity\"} 10\n"
	"request_total{direction=\"inbound\",authority=\"b:8080\",tls=\"true\"} 10\n"
	"request_total{direction=\"outbound\",authority=\"c:8081\"} 4\n"
	"# TYPE response_total counter\n"
	"response_total{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\",classification=\"success\"} 15\n"
	"response_total{direction=\"inbound\",authority=\"b:8080\",status_code=\"500\",classification=\"failure\"} 5\n"
	"response_total{direction=\"outbound\",authority=\"c:8081\",status_code=\"200\",classification=\"success\"} 4\n"
	"# TYPE response_latency_ms histogram\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\",le=\"1\"} 5\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\",le=\"10\"} 15\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\",le=\"+Inf\"} 15\n"
	"response_latency_ms_sum{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\"} 80\n"
	"response_latency_ms_count{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\"} 15\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"500\",le=\"1\"} 5\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"500\",le=\"10\"} 5\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",status_code=\"500\",le=\"+Inf\"} 5\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"1\"} 0\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"10\"} 4\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"+Inf\"} 4\n"
	"tcp_open_total{direction=\"inbound\"} 3\n";

static const char golden2[] =
	"# TYPE request_total counter\n"
	"request_total{direction=\"inbound\",authority=\"b:8080\",tls=\"no_identity\"} 30\n"
	"request_total{direction=\"inbound\",authority=\"b:8080\",tls=\"true\"} 30\n"
	"request_total{direction=\"outbound\",authority=\"c:8081\"} 2\n"
	"# TYPE response_total counter\n"
	"response_total{direction=\"inbound\",authority=\"b:8080\",status_code=\"200\",classification=\"success\"} 55\n"
	"response_total{direction=\"inbound\",authority=\"b:8080\",status_code=\"500\",classification=\"failure\"} 5\n"
	"response_total{direction=\"outbound\",authority=\"c:8081\",status_code=\"200\",classification=\"success\"} 2\n"
	"# TYPE response_latency_ms histogram\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",le=\"1\"} 10\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",le=\"10\"} 30\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",le=\"100\"} 60\n"
	"response_latency_ms_bucket{direction=\"inbound\",authority=\"b:8080\",le=\"+Inf\"} 60\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"1\"} 1\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"10\"} 2\n"
	"response_latency_ms_bucket{direction=\"outbound\",authority=\"c:8081\",le=\"+Inf\"} 2\n";

static const char *const by_dir_auth[] = { "direction", "authority" };

TEST(golden_single_scrape)
{
	static const char *const in[] = { "inbound", "b:8080" };
	static const char *const out[] = { "outbound", "c:8081" };
	struct prom_group groups[4];
	const struct prom_group *gi, *go;
	struct prom_golden g;
	struct prom_stats st;
	char err[128] = "";

	REQUIRE(prom_golden_init(&g, by_dir_auth, 2, NULL, 0, groups, 4) == 0);
	REQUIRE(prom_golden_scrape(&g, T(golden1), err, sizeof(err)) == 0);
	CHECK(g.n == 2 && g.dropped == 0);
	gi = prom_golden_find(&g, in, 2);
	go = prom_golden_find(&g, out, 2);
	REQUIRE(gi && go);
	CHECK(str_eq_cstr(prom_group_label(gi, 0), "inbound"));
	CHECK(str_eq_cstr(prom_group_label(gi, 1), "b:8080"));
	CHECK(prom_group_label(gi, 2).len == 0);
	CHECK(gi->requests == 20 && gi->responses == 20 && gi->successes == 15);
	/* two status series summed per le: 10, 20, 20 */
	REQUIRE(gi->nbuckets == 3);
	CHECK(gi->cum[0] == 10 && gi->cum[1] == 20 && gi->cum[2] == 20);
	prom_group_stats(gi, NULL, 0, &st);
	CHECK(near(st.success_rate, 0.75));
	CHECK(isnan(st.rps));
	CHECK(st.requests == 20);
	CHECK(near(st.p50, 1));        /* rank 10 = all of le 1 */
	CHECK(near(st.p95, 1 + 9 * 0.9)); /* rank 19 in (1, 10]: 9/10 */
	CHECK(near(st.p99, 1 + 9 * 0.98));
	prom_group_stats(go, NULL, 0, &st);
	CHECK(near(st.success_rate, 1));
	CHECK(near(st.p50, 1 + 9 * 0.5));
	CHECK(prom_golden_match(&g, gi) == gi);
}

TEST(golden_window_between_scrapes)
{
	static const char *const in[] = { "inbound", "b:8080" };
	static const char *const out[] = { "outbound", "c:8081" };
	struct prom_group g1s[4], g2s[4];
	struct prom_golden g1, g2;
	const struct prom_group *cur, *prev;
	struct prom_stats st;
	char err[128] = "";

	REQUIRE(prom_golden_init(&g1, by_dir_auth, 2, NULL, 0, g1s, 4) == 0);
	REQUIRE(prom_golden_init(&g2, by_dir_auth, 2, NULL, 0, g2s, 4) == 0);
	REQUIRE(prom_golden_scrape(&g1, T(golden1), err, sizeof(err)) == 0);
	REQUIRE(prom_golden_scrape(&g2, T(golden2), err, sizeof(err)) == 0);
	cur = prom_golden_find(&g2, in, 2);
	REQUIRE(cur);
	prev = prom_golden_match(&g1, cur);
	REQUIRE(prev);
	prom_group_stats(cur, prev, 10, &st);
	CHECK(near(st.requests, 40));
	CHECK(near(st.rps, 4));
	CHECK(near(st.responses, 40));
	CHECK(near(st.success_rate, 1)); /* 40 more successes, 0 failures */
	/* window buckets: le 1: 0, le 10: 10, le 100: 40 (absent before),
	 * +Inf: 40 -> p50 rank 20 in (10, 100]: 10 + 90 * 10/30 */
	CHECK(near(st.p50, 40));
	CHECK(near(st.p99, 10 + 90 * (39.6 - 10) / 30));
	/* outbound went down: a restart, the new values are the window */
	cur = prom_golden_find(&g2, out, 2);
	prev = prom_golden_find(&g1, out, 2);
	REQUIRE(cur && prev);
	prom_group_stats(cur, prev, 2, &st);
	CHECK(near(st.requests, 2));
	CHECK(near(st.rps, 1));
	CHECK(near(st.success_rate, 1));
	CHECK(near(st.p50, 1)); /* rank 1 reaches le 1 exactly */
}

TEST(golden_match_and_capacity)
{
	static const struct prom_match inb[] = { { "direction", "inbound" } };
	static const char *const by_auth[] = { "authority" };
	static const char *const by_missing[] = { "dst_deployment" };
	static const char *const empty[] = { "" };
	const char *nine[PROM_GROUP_MAX_BY + 1];
	struct prom_group groups[2];
	struct prom_golden g;
	char err[128] = "";

	REQUIRE(prom_golden_init(&g, by_auth, 1, inb, 1, groups, 2) == 0);
	REQUIRE(prom_golden_scrape(&g, T(golden1), err, sizeof(err)) == 0);
	CHECK(g.n == 1 && g.dropped == 0);
	CHECK(groups[0].requests == 20);
	/* one group slot for two groups: the second's samples are dropped */
	REQUIRE(prom_golden_init(&g, by_dir_auth, 2, NULL, 0, groups, 1) == 0);
	REQUIRE(prom_golden_scrape(&g, T(golden1), err, sizeof(err)) == 0);
	CHECK(g.n == 1 && g.dropped == 5);
	/* an absent label groups as the empty value */
	REQUIRE(prom_golden_init(&g, by_missing, 1, NULL, 0, groups, 2) == 0);
	REQUIRE(prom_golden_scrape(&g, T(golden1), err, sizeof(err)) == 0);
	CHECK(g.n == 1 && prom_golden_find(&g, empty, 1) == &groups[0]);
	CHECK(groups[0].requests == 24);
	CHECK(prom_golden_find(&g, by_dir_auth, 2) == NULL);
	memset(nine, 0, sizeof(nine));
	CHECK(prom_golden_init(&g, nine, PROM_GROUP_MAX_BY + 1, NULL, 0,
	                       groups, 2) == -1);
	/* a malformed scrape is reported with its line */
	REQUIRE(prom_golden_init(&g, by_auth, 1, NULL, 0, groups, 2) == 0);
	CHECK(prom_golden_scrape(&g, T("request_total{authority=\"a\"} 1\n"
	                              "request_total{authority=\"a} 1\n"),
	                         err, sizeof(err)) == -1);
	CHECK(strncmp(err, "line 2: ", 8) == 0);
	CHECK(g.n == 1 && groups[0].requests == 1);
}
