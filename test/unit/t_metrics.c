/*
 * Unit tests of core/metrics: values, bucket semantics, exact exposition
 * text, escaping, name validation, the series cap, reference counting and
 * removal, buffer limits, allocation failures, the process metrics, and a
 * check of the whole exposition by promtool (which build.sh installs).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/metrics.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t t_metrics_blocks(void)
{
	struct mem_stats st;

	mem_get_stats(&st);
	return st.blocks;
}

static struct metrics_family *t_metrics_family(struct metrics_registry *r,
                                               enum metrics_type type,
                                               const char *name,
                                               const char *help)
{
	struct metrics_family_opts o = { .type = type, .name = name,
	                                 .help = help };

	if (type == METRICS_HISTOGRAM) {
		o.bounds = metrics_latency_ms_bounds;
		o.nbounds = METRICS_LATENCY_MS_NBOUNDS;
	}
	return metrics_family_new(r, &o, NULL, 0);
}

/* Renders <r> into a fresh buf; returns it NUL-terminated or NULL. */
static const char *t_metrics_render(struct metrics_registry *r,
                                    struct buf *b)
{
	buf_init(b, 1 << 20);
	if (metrics_render(r, b) < 0)
		return NULL;
	return buf_cstr(b);
}

TEST(counter_and_gauge_values)
{
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *c, *g;
	struct metrics_series *cs, *gs;

	REQUIRE(r != NULL);
	c = t_metrics_family(r, METRICS_COUNTER, "request_total", "Requests.");
	g = t_metrics_family(r, METRICS_GAUGE, "tcp_open_connections", "Open.");
	REQUIRE(c != NULL && g != NULL);
	cs = metrics_series_get(c, NULL, 0);
	gs = metrics_series_get(g, NULL, 0);
	REQUIRE(cs != NULL && gs != NULL);
	CHECK(metrics_counter_value(cs) == 0);
	metrics_counter_inc(cs);
	metrics_counter_inc(cs);
	metrics_counter_add(cs, 40);
	CHECK(metrics_counter_value(cs) == 42);
	metrics_counter_add(cs, UINT64_MAX - 42);
	CHECK(metrics_counter_value(cs) == UINT64_MAX);

	metrics_gauge_inc(gs);
	metrics_gauge_dec(gs);
	metrics_gauge_dec(gs);
	CHECK(metrics_gauge_value(gs) == -1);
	metrics_gauge_add(gs, -9);
	CHECK(metrics_gauge_value(gs) == -10);
	metrics_gauge_set(gs, INT64_MIN);
	metrics_gauge_dec(gs); /* wraps, no UB */
	CHECK(metrics_gauge_value(gs) == INT64_MAX);
	metrics_gauge_set(gs, 7);
	CHECK(metrics_gauge_value(gs) == 7);

	/* a refused series costs the caller nothing */
	metrics_counter_inc(NULL);
	metrics_counter_add(NULL, 3);
	metrics_gauge_set(NULL, 1);
	metrics_gauge_add(NULL, 1);
	metrics_histogram_observe(NULL, 1);
	metrics_series_put(NULL);
	metrics_series_remove(NULL);
	metrics_series_ref(NULL);
	CHECK(metrics_counter_value(cs) == UINT64_MAX);
	CHECK(metrics_registry_overflows(NULL) == 0);
	CHECK(metrics_family_nseries(NULL) == 0);
	CHECK(metrics_render(NULL, NULL) == 0);
	/* histogram readers on another type read nothing */
	CHECK(metrics_histogram_count(cs) == 0);
	CHECK(metrics_histogram_bucket(cs, 0) == 0);
	metrics_registry_free(r);
	metrics_registry_free(NULL);
}

TEST(histogram_le_is_inclusive)
{
	static const uint64_t bounds[] = { 1, 5, 10 };
	struct metrics_family_opts o = {
		.type = METRICS_HISTOGRAM, .name = "h", .help = "H.",
		.bounds = bounds, .nbounds = 3,
	};
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	struct metrics_series *s;

	REQUIRE(r != NULL);
	f = metrics_family_new(r, &o, NULL, 0);
	REQUIRE(f != NULL);
	s = metrics_series_get(f, NULL, 0);
	REQUIRE(s != NULL);
	metrics_histogram_observe(s, 0);
	metrics_histogram_observe(s, 1);   /* == bound: bucket le=1 */
	metrics_histogram_observe(s, 2);
	metrics_histogram_observe(s, 5);
	metrics_histogram_observe(s, 6);
	metrics_histogram_observe(s, 10);
	metrics_histogram_observe(s, 11);  /* +Inf */
	metrics_histogram_observe(s, UINT64_MAX - 35);
	CHECK(metrics_histogram_bucket(s, 0) == 2);
	CHECK(metrics_histogram_bucket(s, 1) == 2);
	CHECK(metrics_histogram_bucket(s, 2) == 2);
	CHECK(metrics_histogram_bucket(s, 3) == 2);
	CHECK(metrics_histogram_bucket(s, 4) == 0); /* out of range */
	CHECK(metrics_histogram_count(s) == 8);
	CHECK(metrics_histogram_sum(s) == UINT64_MAX);
	metrics_registry_free(r);
}

TEST(latency_bounds_each_value_lands_in_its_bucket)
{
	static const uint64_t want[] = {
		1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
		1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000,
		50000,
	};
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	struct metrics_series *s;
	uint32_t i;

	REQUIRE(r != NULL);
	CHECK(METRICS_LATENCY_MS_NBOUNDS == NELEM(want));
	CHECK(memcmp(metrics_latency_ms_bounds, want, sizeof(want)) == 0);
	f = t_metrics_family(r, METRICS_HISTOGRAM, "response_latency_ms",
	                     "Latency.");
	REQUIRE(f != NULL);
	s = metrics_series_get(f, NULL, 0);
	REQUIRE(s != NULL);
	for (i = 0; i < METRICS_LATENCY_MS_NBOUNDS; i++)
		metrics_histogram_observe(s, want[i]);      /* bucket i */
	for (i = 0; i < METRICS_LATENCY_MS_NBOUNDS; i++)
		metrics_histogram_observe(s, want[i] + 1);  /* bucket i+1 */
	CHECK(metrics_histogram_bucket(s, 0) == 1);
	for (i = 1; i < METRICS_LATENCY_MS_NBOUNDS; i++)
		CHECK(metrics_histogram_bucket(s, i) == 2);
	CHECK(metrics_histogram_bucket(s, METRICS_LATENCY_MS_NBOUNDS) == 1);
	CHECK(metrics_histogram_count(s) == 2 * METRICS_LATENCY_MS_NBOUNDS);
	metrics_registry_free(r);
}

/* The small registry whose exposition is compared byte for byte. */
static struct metrics_registry *t_metrics_small(void)
{
	static const uint64_t bounds[] = { 1, 10, 100 };
	static const struct metrics_label pod[] = { { "pod", "web-0" } };
	struct metrics_family_opts req = {
		.type = METRICS_COUNTER, .name = "request_total",
		.help = "Total requests.",
	};
	struct metrics_family_opts unused = {
		.type = METRICS_COUNTER, .name = "unused_total", .help = "U.",
	};
	struct metrics_family_opts open = {
		.type = METRICS_GAUGE, .name = "tcp_open_connections",
		.help = "Open\\ conns\nnow", .const_labels = pod,
		.nconst_labels = 1,
	};
	struct metrics_family_opts lat = {
		.type = METRICS_HISTOGRAM, .name = "response_latency_ms",
		.help = "Latency.", .bounds = bounds, .nbounds = 3,
	};
	struct metrics_label in[] = {
		{ "direction", "inbound" }, { "authority", "a\"b\\c\nd" },
	};
	struct metrics_label out[] = {
		{ "direction", "outbound" }, { "authority", "x" },
	};
	struct metrics_label dir[] = { { "direction", "outbound" } };
	struct metrics_label code[] = { { "status_code", "200" } };
	struct metrics_family *f1, *f2, *f3, *f4;
	struct metrics_series *s;
	struct metrics_registry *r = metrics_registry_new();

	if (!r)
		return NULL;
	f1 = metrics_family_new(r, &req, NULL, 0);
	f2 = metrics_family_new(r, &unused, NULL, 0);
	f3 = metrics_family_new(r, &open, NULL, 0);
	f4 = metrics_family_new(r, &lat, NULL, 0);
	if (!f1 || !f2 || !f3 || !f4) {
		metrics_registry_free(r);
		return NULL;
	}
	s = metrics_series_get(f1, in, 2);
	metrics_counter_add(s, 3);
	metrics_series_put(s);
	s = metrics_series_get(f1, out, 2);
	metrics_series_put(s);
	s = metrics_series_get(f3, NULL, 0);
	metrics_gauge_set(s, -2);
	metrics_series_put(s);
	s = metrics_series_get(f3, dir, 1);
	metrics_gauge_set(s, 5);
	metrics_series_put(s);
	s = metrics_series_get(f4, NULL, 0);
	metrics_histogram_observe(s, 1);
	metrics_histogram_observe(s, 10);
	metrics_histogram_observe(s, 11);
	metrics_histogram_observe(s, 1000);
	metrics_series_put(s);
	s = metrics_series_get(f4, code, 1);
	metrics_series_put(s);
	return r;
}

static const char t_metrics_small_text[] =
	"# HELP request_total Total requests.\n"
	"# TYPE request_total counter\n"
	"request_total{direction=\"inbound\",authority=\"a\\\"b\\\\c\\nd\"} 3\n"
	"request_total{direction=\"outbound\",authority=\"x\"} 0\n"
	"# HELP tcp_open_connections Open\\\\ conns\\nnow\n"
	"# TYPE tcp_open_connections gauge\n"
	"tcp_open_connections{pod=\"web-0\"} -2\n"
	"tcp_open_connections{pod=\"web-0\",direction=\"outbound\"} 5\n"
	"# HELP response_latency_ms Latency.\n"
	"# TYPE response_latency_ms histogram\n"
	"response_latency_ms_bucket{le=\"1\"} 1\n"
	"response_latency_ms_bucket{le=\"10\"} 2\n"
	"response_latency_ms_bucket{le=\"100\"} 3\n"
	"response_latency_ms_bucket{le=\"+Inf\"} 4\n"
	"response_latency_ms_sum 1022\n"
	"response_latency_ms_count 4\n"
	"response_latency_ms_bucket{status_code=\"200\",le=\"1\"} 0\n"
	"response_latency_ms_bucket{status_code=\"200\",le=\"10\"} 0\n"
	"response_latency_ms_bucket{status_code=\"200\",le=\"100\"} 0\n"
	"response_latency_ms_bucket{status_code=\"200\",le=\"+Inf\"} 0\n"
	"response_latency_ms_sum{status_code=\"200\"} 0\n"
	"response_latency_ms_count{status_code=\"200\"} 0\n";

TEST(render_small_registry_exactly)
{
	struct metrics_registry *r = t_metrics_small();
	struct buf b;

	REQUIRE(r != NULL);
	CHECK_STR(t_metrics_render(r, &b), t_metrics_small_text);
	buf_free(&b);
	metrics_registry_free(r);
}

TEST(render_empty_registry_and_no_help)
{
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	struct buf b;

	REQUIRE(r != NULL);
	CHECK_STR(t_metrics_render(r, &b), "");
	buf_free(&b);
	f = t_metrics_family(r, METRICS_GAUGE, "g", NULL);
	REQUIRE(f != NULL);
	metrics_series_put(metrics_series_get(f, NULL, 0));
	CHECK_STR(t_metrics_render(r, &b), "# TYPE g gauge\ng 0\n");
	buf_free(&b);
	metrics_registry_free(r);
}

TEST(label_order_does_not_make_a_new_series)
{
	struct metrics_label ab[] = { { "a", "1" }, { "b", "2" } };
	struct metrics_label ba[] = { { "b", "2" }, { "a", "1" } };
	struct metrics_label ba2[] = { { "b", "1" }, { "a", "2" } };
	struct metrics_label aa[] = { { "a", "1" }, { "a", "1" } };
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_series *s1, *s2, *s3;
	struct metrics_family *f;
	struct buf b;

	REQUIRE(r != NULL);
	f = t_metrics_family(r, METRICS_COUNTER, "x_total", "X.");
	REQUIRE(f != NULL);
	s1 = metrics_series_get(f, ab, 2);
	s2 = metrics_series_get(f, ba, 2);
	REQUIRE(s1 != NULL);
	CHECK(s1 == s2);
	s3 = metrics_series_get(f, ba2, 2);   /* values swapped: new */
	REQUIRE(s3 != NULL);
	CHECK(s3 != s1);
	CHECK(metrics_series_get(f, aa, 2) == NULL); /* repeated key */
	CHECK(metrics_family_nseries(f) == 2);
	metrics_counter_inc(s2);
	CHECK_STR(t_metrics_render(r, &b),
	          "# HELP x_total X.\n# TYPE x_total counter\n"
	          "x_total{a=\"1\",b=\"2\"} 1\nx_total{b=\"1\",a=\"2\"} 0\n");
	buf_free(&b);
	metrics_registry_free(r);
}

TEST(many_series_keep_handles_and_order)
{
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_series **h;
	struct metrics_family *f;
	struct metrics_label l;
	char val[16], line[64];
	const char *text, *p;
	struct buf b;
	int i, ok = 1;

	REQUIRE(r != NULL);
	f = t_metrics_family(r, METRICS_COUNTER, "c_total", "C.");
	h = mem_calloc(3000, sizeof(*h));
	REQUIRE(f != NULL && h != NULL);
	l.key = "id";
	l.value = val;
	for (i = 0; i < 3000; i++) {
		snprintf(val, sizeof(val), "%d", i);
		h[i] = metrics_series_get(f, &l, 1);
		if (!h[i])
			ok = 0;
		metrics_counter_add(h[i], (uint64_t)i);
	}
	CHECK(ok);
	for (i = 0; i < 3000; i++) {
		snprintf(val, sizeof(val), "%d", i);
		if (metrics_series_get(f, &l, 1) != h[i])
			ok = 0;
		metrics_series_put(h[i]);
		metrics_series_put(h[i]);
	}
	CHECK(ok);
	CHECK(metrics_family_nseries(f) == 3000);
	text = t_metrics_render(r, &b);
	REQUIRE(text != NULL);
	p = strstr(text, "c_total{");
	for (i = 0; i < 3000 && p; i++) {
		snprintf(line, sizeof(line), "c_total{id=\"%d\"} %d\n", i, i);
		if (strncmp(p, line, strlen(line)) != 0)
			break;
		p += strlen(line);
	}
	CHECK(i == 3000);
	CHECK(p && *p == '\0');
	buf_free(&b);
	MEM_FREE(&h);
	metrics_registry_free(r);
}

TEST(escape_edge_cases)
{
	char out[64];
	ssize_t n;

	n = metrics_escape_label_value("", 0, out, sizeof(out));
	CHECK(n == 0);
	n = metrics_escape_label_value("a\"b", 3, out, sizeof(out));
	CHECK(n == 4 && memcmp(out, "a\\\"b", 4) == 0);
	n = metrics_escape_label_value("\\", 1, out, sizeof(out));
	CHECK(n == 2 && memcmp(out, "\\\\", 2) == 0);
	n = metrics_escape_label_value("x\ny", 3, out, sizeof(out));
	CHECK(n == 4 && memcmp(out, "x\\ny", 4) == 0);
	n = metrics_escape_label_value("\\n", 2, out, sizeof(out));
	CHECK(n == 3 && memcmp(out, "\\\\n", 3) == 0);
	/* UTF-8, tab, CR and NUL pass through untouched */
	n = metrics_escape_label_value("h\xc3\xa9\xe2\x82\xac\t\r\0z", 10,
	                               out, sizeof(out));
	CHECK(n == 10 && memcmp(out, "h\xc3\xa9\xe2\x82\xac\t\r\0z", 10) == 0);
	/* sizes: query, exact fit, one short (also inside an escape) */
	CHECK(metrics_escape_label_value("a\"\n", 3, NULL, 0) == 5);
	CHECK(metrics_escape_label_value("a\"\n", 3, out, 5) == 5);
	CHECK(metrics_escape_label_value("a\"\n", 3, out, 4) == -1);
	CHECK(metrics_escape_label_value("a\"", 2, out, 2) == -1);
	CHECK(metrics_escape_label_value("ab", 2, out, 1) == -1);
	CHECK(metrics_escape_label_value("", 0, out, 0) == 0);
}

TEST(unescape_is_the_inverse_and_strict)
{
	static const char *const cases[] = {
		"", "plain", "\"", "\\", "\n", "\\n", "\"\"\\\\\n\n",
		"caf\xc3\xa9 \xf0\x9f\x98\x80",
	};
	char esc[64], back[64];
	ssize_t n, m;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		n = metrics_escape_label_value(cases[i], strlen(cases[i]),
		                               esc, sizeof(esc));
		REQUIRE(n >= 0);
		m = metrics_unescape_label_value(esc, (size_t)n, back,
		                                 sizeof(back));
		CHECK(m == (ssize_t)strlen(cases[i]));
		CHECK(m >= 0 && memcmp(back, cases[i], (size_t)m) == 0);
	}
	CHECK(metrics_unescape_label_value("a\\", 2, back, 8) == -1);
	CHECK(metrics_unescape_label_value("\\t", 2, back, 8) == -1);
	CHECK(metrics_unescape_label_value("a\"", 2, back, 8) == -1);
	CHECK(metrics_unescape_label_value("a\n", 2, back, 8) == -1);
	CHECK(metrics_unescape_label_value("abc", 3, back, 2) == -1);
	CHECK(metrics_unescape_label_value("\\\\x", 3, back, 2) == 2);
}

TEST(metric_and_label_name_validation)
{
	CHECK(metrics_name_valid("request_total"));
	CHECK(metrics_name_valid("_x"));
	CHECK(metrics_name_valid(":ns:rule:rate5m"));
	CHECK(metrics_name_valid("A9_:"));
	CHECK(!metrics_name_valid(""));
	CHECK(!metrics_name_valid(NULL));
	CHECK(!metrics_name_valid("9lives"));
	CHECK(!metrics_name_valid("a-b"));
	CHECK(!metrics_name_valid("a b"));
	CHECK(!metrics_name_valid("caf\xc3\xa9"));

	CHECK(metrics_label_name_valid("dst_namespace"));
	CHECK(metrics_label_name_valid("_x9"));
	CHECK(metrics_label_name_valid("le"));
	CHECK(!metrics_label_name_valid(""));
	CHECK(!metrics_label_name_valid(NULL));
	CHECK(!metrics_label_name_valid("a:b"));
	CHECK(!metrics_label_name_valid("0a"));
	CHECK(!metrics_label_name_valid("__name__"));
	CHECK(!metrics_label_name_valid("a.b"));
}

TEST(family_creation_rejects_bad_input)
{
	static const uint64_t flat[] = { 1, 5, 5 };
	static const uint64_t down[] = { 5, 1 };
	static const struct metrics_label badkey[] = { { "a-b", "x" } };
	static const struct metrics_label dupkey[] = {
		{ "a", "x" }, { "a", "y" },
	};
	static const struct metrics_label badval[] = { { "a", "\xff" } };
	static const struct metrics_label le[] = { { "le", "1" } };
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family_opts o;
	char err[128];

	REQUIRE(r != NULL);
	memset(&o, 0, sizeof(o));
	o.type = METRICS_COUNTER;
	o.name = "9bad";
	err[0] = '\0';
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) == NULL);
	CHECK_STR(err, "invalid metric name: 9bad");
	o.name = NULL;
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) == NULL);
	o.name = "ok_total";
	o.type = (enum metrics_type)7;
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) == NULL);
	o.type = METRICS_COUNTER;
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) != NULL);
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) == NULL);
	CHECK_STR(err, "metric name already used: ok_total");
	CHECK(metrics_family_new(NULL, &o, err, sizeof(err)) == NULL);

	/* a histogram's sample names count as taken */
	o.type = METRICS_HISTOGRAM;
	o.name = "lat";
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);
	o.type = METRICS_GAUGE;
	o.name = "lat_count";
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.name = "lat_bucket";
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.name = "lat_sum";
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.name = "lat_other";
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);
	o.name = "ok";   /* ok_total is not one of ok's sample names */
	o.type = METRICS_HISTOGRAM;
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);
	o.name = "ok_total_x";
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);
	o.name = "lat_other";
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.type = METRICS_GAUGE;
	o.name = "process_open_fds";
	CHECK(metrics_family_new(r, &o, err, sizeof(err)) == NULL);
	CHECK_STR(err, "name taken by process metrics: process_open_fds");

	/* bounds */
	o.type = METRICS_HISTOGRAM;
	o.name = "h1";
	o.bounds = flat;
	o.nbounds = NELEM(flat);
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.bounds = down;
	o.nbounds = NELEM(down);
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.bounds = NULL;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.nbounds = METRICS_MAX_BOUNDS + 1;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.nbounds = 0;           /* only +Inf: allowed */
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);

	/* constant labels and help */
	o.type = METRICS_GAUGE;
	o.name = "g1";
	o.const_labels = badkey;
	o.nconst_labels = 1;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.const_labels = dupkey;
	o.nconst_labels = 2;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.const_labels = badval;
	o.nconst_labels = 1;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.const_labels = le;
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL); /* gauge: fine */
	o.name = "h2";
	o.type = METRICS_HISTOGRAM;
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL); /* reserved */
	o.const_labels = NULL;
	o.nconst_labels = 0;
	o.help = "bad \xc0\xaf";
	CHECK(metrics_family_new(r, &o, NULL, 0) == NULL);
	o.help = "caf\xc3\xa9";
	CHECK(metrics_family_new(r, &o, NULL, 0) != NULL);
	metrics_registry_free(r);
}

TEST(series_lookup_rejects_bad_labels)
{
	static const struct metrics_label pod[] = { { "pod", "p" } };
	struct metrics_family_opts o = {
		.type = METRICS_HISTOGRAM, .name = "h", .help = "H.",
		.const_labels = pod, .nconst_labels = 1,
	};
	struct metrics_label l[METRICS_MAX_LABELS + 1];
	char keys[METRICS_MAX_LABELS + 1][8];
	char *big;
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	size_t i;

	REQUIRE(r != NULL);
	f = metrics_family_new(r, &o, NULL, 0);
	REQUIRE(f != NULL);
	l[0].key = "a-b";
	l[0].value = "x";
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].key = "le";
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].key = "pod";       /* clashes with the constant label */
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].key = "__x";
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].key = NULL;
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].key = "a";
	l[0].value = NULL;
	CHECK(metrics_series_get(f, l, 1) == NULL);
	CHECK(metrics_series_get(f, NULL, 1) == NULL);
	CHECK(metrics_series_get(NULL, NULL, 0) == NULL);
	/* values must be UTF-8 (Prometheus refuses the scrape otherwise) */
	l[0].value = "\xff";
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].value = "\xed\xa0\x80";    /* surrogate */
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].value = "\xf4\x90\x80\x80"; /* past U+10FFFF */
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].value = "\xe2\x82";        /* truncated */
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].value = "\xc1\xbf";        /* overlong */
	CHECK(metrics_series_get(f, l, 1) == NULL);
	l[0].value = "\xf4\x8f\xbf\xbf\xe2\x82\xac";
	CHECK(metrics_series_get(f, l, 1) != NULL);
	/* value length */
	big = mem_alloc(METRICS_MAX_VALUE_LEN + 2);
	REQUIRE(big != NULL);
	memset(big, '"', METRICS_MAX_VALUE_LEN + 1);
	big[METRICS_MAX_VALUE_LEN + 1] = '\0';
	l[0].value = big;
	CHECK(metrics_series_get(f, l, 1) == NULL);
	big[METRICS_MAX_VALUE_LEN] = '\0';
	CHECK(metrics_series_get(f, l, 1) != NULL);
	MEM_FREE(&big);
	/* label count */
	for (i = 0; i < NELEM(l); i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		l[i].key = keys[i];
		l[i].value = "v";
	}
	CHECK(metrics_series_get(f, l, METRICS_MAX_LABELS + 1) == NULL);
	CHECK(metrics_series_get(f, l, METRICS_MAX_LABELS) != NULL);
	CHECK(metrics_family_nseries(f) == 3);
	CHECK(metrics_registry_overflows(r) == 0);
	metrics_registry_free(r);
}

TEST(series_cap_refuses_and_counts)
{
	struct metrics_family_opts o = {
		.type = METRICS_COUNTER, .name = "c_total", .help = "C.",
		.max_series = 3,
	};
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_series *s[3], *again;
	struct metrics_family *f;
	struct metrics_label l = { "id", NULL };
	static const char *const ids[] = { "0", "1", "2", "3", "4" };
	int i;

	REQUIRE(r != NULL);
	f = metrics_family_new(r, &o, NULL, 0);
	REQUIRE(f != NULL);
	for (i = 0; i < 3; i++) {
		l.value = ids[i];
		s[i] = metrics_series_get(f, &l, 1);
		CHECK(s[i] != NULL);
	}
	l.value = ids[3];
	CHECK(metrics_series_get(f, &l, 1) == NULL);
	l.value = ids[4];
	CHECK(metrics_series_get(f, &l, 1) == NULL);
	CHECK(metrics_registry_overflows(r) == 2);
	/* existing series are still found at the cap */
	l.value = ids[1];
	again = metrics_series_get(f, &l, 1);
	CHECK(again == s[1]);
	metrics_series_put(again);
	CHECK(metrics_registry_overflows(r) == 2);
	/* removing one makes room */
	metrics_series_remove(s[0]);
	CHECK(metrics_family_nseries(f) == 2);
	l.value = ids[3];
	CHECK(metrics_series_get(f, &l, 1) != NULL);
	CHECK(metrics_registry_overflows(r) == 2);
	metrics_registry_free(r);
}

TEST(default_cap_is_ten_thousand)
{
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	struct metrics_label l = { "id", NULL };
	char val[16];
	int i, ok = 1;

	REQUIRE(r != NULL);
	f = t_metrics_family(r, METRICS_GAUGE, "g", "G.");
	REQUIRE(f != NULL);
	l.value = val;
	for (i = 0; i < (int)METRICS_MAX_SERIES_DEFAULT; i++) {
		snprintf(val, sizeof(val), "%d", i);
		if (!metrics_series_get(f, &l, 1))
			ok = 0;
	}
	CHECK(ok);
	snprintf(val, sizeof(val), "x");
	CHECK(metrics_series_get(f, &l, 1) == NULL);
	CHECK(metrics_registry_overflows(r) == 1);
	metrics_registry_free(r);
}

TEST(removal_waits_for_the_last_reference)
{
	struct metrics_label a = { "dst", "a" }, b = { "dst", "b" };
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_series *s1, *s2, *s3, *sb;
	struct metrics_family *f;
	uint64_t blocks;
	struct buf buf;

	REQUIRE(r != NULL);
	f = t_metrics_family(r, METRICS_COUNTER, "c_total", "C.");
	REQUIRE(f != NULL);
	blocks = t_metrics_blocks();
	s1 = metrics_series_get(f, &a, 1);     /* refs 1 */
	s2 = metrics_series_get(f, &a, 1);     /* refs 2 */
	REQUIRE(s1 != NULL && s1 == s2);
	metrics_series_ref(s1);                /* refs 3 */
	sb = metrics_series_get(f, &b, 1);
	REQUIRE(sb != NULL);
	metrics_counter_add(s1, 5);

	metrics_series_remove(s1);             /* refs 2, marked */
	CHECK(metrics_family_nseries(f) == 2);
	metrics_counter_inc(s2);               /* still valid */
	metrics_series_put(s2);                /* refs 1 */
	CHECK(metrics_family_nseries(f) == 2);
	CHECK_STR(t_metrics_render(r, &buf),
	          "# HELP c_total C.\n# TYPE c_total counter\n"
	          "c_total{dst=\"a\"} 6\nc_total{dst=\"b\"} 0\n");
	buf_free(&buf);
	metrics_series_put(s1);                /* last: gone */
	CHECK(metrics_family_nseries(f) == 1);
	CHECK_STR(t_metrics_render(r, &buf),
	          "# HELP c_total C.\n# TYPE c_total counter\n"
	          "c_total{dst=\"b\"} 0\n");
	buf_free(&buf);

	/* a lookup while removal is pending cancels it */
	s1 = metrics_series_get(f, &a, 1);
	REQUIRE(s1 != NULL);
	CHECK(metrics_counter_value(s1) == 0); /* a fresh series */
	s2 = metrics_series_get(f, &a, 1);
	metrics_series_remove(s1);
	s3 = metrics_series_get(f, &a, 1);
	CHECK(s3 == s1);
	metrics_series_put(s2);
	metrics_series_put(s3);
	CHECK(metrics_family_nseries(f) == 2); /* kept: removal cancelled */

	/* an unreferenced series is removed by get + remove */
	s1 = metrics_series_get(f, &a, 1);
	metrics_series_remove(s1);
	metrics_series_remove(sb);
	CHECK(metrics_family_nseries(f) == 0);
	CHECK(t_metrics_blocks() == blocks);
	CHECK_STR(t_metrics_render(r, &buf), "");
	buf_free(&buf);
	/* the family still works, and head/tail were kept right */
	s1 = metrics_series_get(f, &b, 1);
	s2 = metrics_series_get(f, &a, 1);
	metrics_series_remove(s1);
	s3 = metrics_series_get(f, &b, 1);
	CHECK(s2 != NULL && s3 != NULL);
	CHECK_STR(t_metrics_render(r, &buf),
	          "# HELP c_total C.\n# TYPE c_total counter\n"
	          "c_total{dst=\"a\"} 0\nc_total{dst=\"b\"} 0\n");
	buf_free(&buf);
	metrics_registry_free(r);
}

TEST(render_fails_cleanly_when_the_buffer_is_too_small)
{
	struct metrics_registry *r = t_metrics_small();
	size_t len = sizeof(t_metrics_small_text) - 1, lim;
	char store[sizeof(t_metrics_small_text)];
	struct buf b;
	int bad = 0;

	REQUIRE(r != NULL);
	for (lim = 0; lim < len; lim++) {
		buf_init(&b, lim);
		if (metrics_render(r, &b) != -1 || buf_len(&b) > lim)
			bad++;
		buf_free(&b);
	}
	CHECK(bad == 0);
	buf_init(&b, len);           /* exactly enough */
	CHECK(metrics_render(r, &b) == 0);
	CHECK(buf_len(&b) == len);
	CHECK(memcmp(buf_data(&b), t_metrics_small_text, len) == 0);
	buf_free(&b);
	buf_init_fixed(&b, store, 100);
	CHECK(metrics_render(r, &b) == -1);
	buf_init_fixed(&b, store, 10);
	CHECK(metrics_render_process(&b) == -1);
	metrics_registry_free(r);
}

TEST(series_creation_survives_oom)
{
	struct metrics_label l[] = { { "a", "1" }, { "b", "2" } };
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *f;
	struct metrics_series *s;
	uint64_t blocks;

	REQUIRE(r != NULL);
	f = t_metrics_family(r, METRICS_HISTOGRAM, "h", "H.");
	REQUIRE(f != NULL);
	blocks = t_metrics_blocks();
	mem_fail_after(1);
	s = metrics_series_get(f, l, 2);
	mem_fail_reset();
	CHECK(s == NULL);
	CHECK(t_metrics_blocks() == blocks);
	CHECK(metrics_family_nseries(f) == 0);
	CHECK(metrics_registry_overflows(r) == 0);
	s = metrics_series_get(f, l, 2);
	CHECK(s != NULL);
	CHECK(metrics_family_nseries(f) == 1);
	/* an existing series is found without allocating */
	mem_fail_after(1);
	CHECK(metrics_series_get(f, l, 2) == s);
	mem_fail_reset();
	metrics_registry_free(r);

	blocks = t_metrics_blocks();
	mem_fail_after(1);
	CHECK(metrics_registry_new() == NULL);
	mem_fail_reset();
	CHECK(t_metrics_blocks() == blocks);
}

/* Builds, fills, renders and frees a registry under allocation failure
 * <n>; returns 1 when no allocation failed. */
static int t_metrics_torture_once(uint64_t n, int *bad)
{
	struct metrics_label l = { "id", NULL };
	struct metrics_registry *r;
	struct metrics_family *f[3];
	struct metrics_series *s;
	struct mem_stats st0, st1;
	char val[16];
	struct buf b;
	int i, k;

	mem_get_stats(&st0);
	mem_fail_after(n);
	r = metrics_registry_new();
	if (r) {
		f[0] = t_metrics_family(r, METRICS_COUNTER, "c_total", "C.");
		f[1] = t_metrics_family(r, METRICS_GAUGE, "g", "G.");
		f[2] = t_metrics_family(r, METRICS_HISTOGRAM, "h", "H.");
		l.value = val;
		for (i = 0; i < 40; i++) {
			snprintf(val, sizeof(val), "%d", i);
			for (k = 0; k < 3; k++) {
				s = metrics_series_get(f[k], &l, 1);
				metrics_series_put(s);
			}
		}
		mem_fail_reset();
		/* whatever failed, the registry is consistent */
		for (k = 0; k < 3; k++) {
			if (!f[k])
				continue;
			for (i = 0; i < 40; i++) {
				snprintf(val, sizeof(val), "%d", i);
				s = metrics_series_get(f[k], &l, 1);
				if (!s)
					(*bad)++;
				metrics_series_remove(s);
			}
			if (metrics_family_nseries(f[k]) != 0)
				(*bad)++;
		}
		mem_fail_after(n);
		buf_init(&b, 1 << 16);
		(void)metrics_render(r, &b);
		buf_free(&b);
	}
	mem_fail_reset();
	metrics_registry_free(r);
	mem_get_stats(&st1);
	if (st1.blocks != st0.blocks || st1.bytes != st0.bytes)
		(*bad)++;
	return st1.failures == st0.failures;
}

TEST(allocation_failure_torture)
{
	uint64_t n;
	int bad = 0;

	for (n = 1; n < 10000; n++)
		if (t_metrics_torture_once(n, &bad))
			break;
	CHECK(n > 20 && n < 10000);  /* every allocation point was hit */
	CHECK(bad == 0);
}

/* Open descriptors counted by probing each number (independent of
 * /proc/self/fd). */
static double t_metrics_probe_fds(void)
{
	struct rlimit rl;
	int fd, max, n = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	max = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
	for (fd = 0; fd < max; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* Value of the un-labelled sample <name> in <text>, or -1. */
static double t_metrics_sample(const char *text, const char *name)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%s ", name);
	p = strstr(text, pat);
	if (!p)
		return -1;
	return strtod(p + strlen(pat), NULL);
}

TEST(process_metrics)
{
	static const char *const types[] = {
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE process_resident_memory_bytes gauge\n",
		"# TYPE process_virtual_memory_bytes gauge\n",
		"# TYPE process_open_fds gauge\n",
		"# TYPE process_max_fds gauge\n",
		"# TYPE process_start_time_seconds gauge\n",
	};
	struct rlimit rl;
	const char *text;
	double fds, fds2, start, rss, vsz, cpu;
	struct buf b;
	size_t i;
	int fd;

	buf_init(&b, 1 << 16);
	REQUIRE(metrics_render_process(&b) == 0);
	text = buf_cstr(&b);
	REQUIRE(text != NULL);
	for (i = 0; i < NELEM(types); i++)
		CHECK(strstr(text, types[i]) != NULL);
	CHECK(strncmp(text, "# HELP process_cpu_seconds_total ", 33) == 0);
	cpu = t_metrics_sample(text, "process_cpu_seconds_total");
	rss = t_metrics_sample(text, "process_resident_memory_bytes");
	vsz = t_metrics_sample(text, "process_virtual_memory_bytes");
	start = t_metrics_sample(text, "process_start_time_seconds");
	fds = t_metrics_sample(text, "process_open_fds");
	CHECK(cpu >= 0 && cpu < 3600);
	CHECK(rss > 0 && rss <= vsz);
	CHECK(start > (double)time(NULL) - 600 &&
	      start <= (double)time(NULL) + 1);
	CHECK(fds == t_metrics_probe_fds());
	REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK(t_metrics_sample(text, "process_max_fds") ==
	      (double)rl.rlim_cur);
	buf_free(&b);

	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	buf_init(&b, 1 << 16);
	CHECK(metrics_render_process(&b) == 0);
	text = buf_cstr(&b);
	fds2 = text ? t_metrics_sample(text, "process_open_fds") : -1;
	CHECK(fds2 == fds + 1);
	close(fd);
	buf_free(&b);
}

#define T_PROMTOOL "/usr/bin/promtool"
#define T_LINT_OK "response_latency_ms metric names should not contain " \
	"abbreviated units"

/*
 * Runs promtool check metrics on <text>; returns its exit status (or -1)
 * and leaves its output in <out>.
 */
static int t_metrics_promtool(const char *text, size_t len, char *out,
                              size_t outlen)
{
	char path[] = "/tmp/t_metrics_promtool.XXXXXX", cmd[128];
	void (*old)(int);
	FILE *p;
	ssize_t n;
	int fd, st;

	out[0] = '\0';
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), T_PROMTOOL " check metrics >%s 2>&1", path);
	old = signal(SIGPIPE, SIG_IGN);
	p = popen(cmd, "w");
	if (!p) {
		signal(SIGPIPE, old);
		close(fd);
		unlink(path);
		return -1;
	}
	fwrite(text, 1, len, p);
	st = pclose(p);
	signal(SIGPIPE, old);
	n = read(fd, out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* 1 when every non-empty line of <out> is the accepted lint. */
static int t_metrics_only_unit_lint(const char *out)
{
	const char *p = out, *nl;
	size_t len;
	int seen = 0;

	while (*p) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len) {
			if (len != strlen(T_LINT_OK) ||
			    strncmp(p, T_LINT_OK, len) != 0)
				return 0;
			seen = 1;
		}
		p += len + (nl ? 1 : 0);
	}
	return seen;
}

TEST(promtool_accepts_the_exposition)
{
	struct metrics_label req[] = {
		{ "direction", "inbound" },
		{ "authority", "we\"ird\\svc\nname.caf\xc3\xa9:80" },
		{ "tls", "true" },
	};
	struct metrics_label lat[] = {
		{ "direction", "outbound" }, { "status_code", "200" },
	};
	struct metrics_registry *r = metrics_registry_new();
	struct metrics_family *fr, *fl, *fg;
	struct metrics_series *s;
	char out[4096];
	struct buf b;
	int rc, i;

	if (access(T_PROMTOOL, X_OK) != 0) {
		printf("# " T_PROMTOOL " is required for this test "
		       "(build.sh installs it)\n");
		CHECK(!"promtool missing");
		metrics_registry_free(r);
		return;
	}
	REQUIRE(r != NULL);
	fr = t_metrics_family(r, METRICS_COUNTER, "request_total",
	                      "Total requests \\ \"seen\"\nby the proxy.");
	fl = t_metrics_family(r, METRICS_HISTOGRAM, "response_latency_ms",
	                      "Response latency in milliseconds.");
	fg = t_metrics_family(r, METRICS_GAUGE, "tcp_open_connections",
	                      "Open connections.");
	REQUIRE(fr && fl && fg);
	s = metrics_series_get(fr, req, NELEM(req));
	metrics_counter_add(s, 12);
	s = metrics_series_get(fl, lat, NELEM(lat));
	for (i = 0; i < 100; i++)
		metrics_histogram_observe(s, (uint64_t)i * 613);
	s = metrics_series_get(fl, lat, 1);
	metrics_histogram_observe(s, 3);
	s = metrics_series_get(fg, NULL, 0);
	metrics_gauge_set(s, -3);

	buf_init(&b, 1 << 20);
	REQUIRE(metrics_render(r, &b) == 0);
	REQUIRE(metrics_render_process(&b) == 0);
	rc = t_metrics_promtool(buf_data(&b), buf_len(&b), out, sizeof(out));
	if (rc != 0 && !(rc == 3 && t_metrics_only_unit_lint(out))) {
		CHECK(!"promtool check metrics failed");
		printf("# promtool exit %d:\n%s\n", rc, out);
	}

	/* the check can fail: a broken line is a parse error (exit 1) */
	CHECK(buf_append_str(&b, "request_total{a=\"x} 1\n") == 0);
	rc = t_metrics_promtool(buf_data(&b), buf_len(&b), out, sizeof(out));
	CHECK(rc == 1);
	buf_free(&b);
	metrics_registry_free(r);
}
