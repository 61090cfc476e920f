#include <errno.h>
#include <limits.h>
#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "core/sock.h"
#include "proxy/proxy_main.h"
#include "proxy/pxmetrics.h"

#define S(lit) STR_LIT(lit)

static struct sock_addr addr(const char *s)
{
	struct sock_addr a;
	char err[64];

	(void)sock_addr_parse(s, &a, err, sizeof(err));
	return a;
}

/* Renders <r> and tells whether the exposition holds line <line>. */
static int has_line(struct metrics_registry *r, const char *line)
{
	struct buf b;
	const char *t;
	int found = 0;

	buf_init(&b, 1 << 20);
	if (metrics_render(r, &b) == 0 && (t = buf_cstr(&b)) != NULL) {
		const char *p = strstr(t, line);
		size_t n = strlen(line);

		while (p && !found) {
			found = (p == t || p[-1] == '\n') && p[n] == '\n';
			p = strstr(p + 1, line);
		}
		if (!found)
			printf("#   missing: %s\n", line);
	}
	buf_free(&b);
	return found;
}

TEST(tcp_bundles_cached_and_counted)
{
	static const struct metrics_label wl[] = { { "namespace", "ns" },
	                                           { "pod", "p" } };
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("10.0.0.1:80"), b = addr("10.0.0.2:80");
	struct pxm_tcp *t1, *t2, *t3;
	char err[128];

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, wl, 2, err, sizeof(err)) == 0);
	t1 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &a);
	t2 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &a);
	t3 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_SRC, &a);
	REQUIRE(t1 && t3);
	CHECK(t1 == t2);
	CHECK(t1 != t3);
	CHECK(pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &b) != t1);
	pxmetrics_tcp_open(t1);
	pxmetrics_tcp_open(t1);
	pxmetrics_tcp_close(t1, 1, 0);
	metrics_counter_add(t1->rd, 100);
	CHECK(has_line(r, "tcp_open_total{namespace=\"ns\",pod=\"p\","
	               "direction=\"outbound\",peer=\"dst\",target_addr="
	               "\"10.0.0.1:80\",tls=\"no_identity\",no_tls_reason="
	               "\"not_provided_by_service_discovery\"} 2"));
	CHECK(has_line(r, "tcp_open_connections{namespace=\"ns\",pod=\"p\","
	               "direction=\"outbound\",peer=\"dst\",target_addr="
	               "\"10.0.0.1:80\",tls=\"no_identity\",no_tls_reason="
	               "\"not_provided_by_service_discovery\"} 1"));
	CHECK(has_line(r, "tcp_close_total{namespace=\"ns\",pod=\"p\","
	               "direction=\"outbound\",peer=\"dst\",target_addr="
	               "\"10.0.0.1:80\",tls=\"no_identity\",no_tls_reason="
	               "\"not_provided_by_service_discovery\",classification="
	               "\"failure\",errno=\"\"} 1"));
	CHECK(has_line(r, "tcp_read_bytes_total{namespace=\"ns\",pod=\"p\","
	               "direction=\"outbound\",peer=\"dst\",target_addr="
	               "\"10.0.0.1:80\",tls=\"no_identity\",no_tls_reason="
	               "\"not_provided_by_service_discovery\"} 100"));
	pxmetrics_destroy(&pm);
	metrics_registry_free(r);
}

TEST(http_requests_responses_latency)
{
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("10.0.0.1:8080");
	struct pxm_http *h, *h2, *none;
	char err[128];

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, NULL, 0, err, sizeof(err)) == 0);
	h = pxmetrics_http(&pm, NULL, PXM_OUTBOUND, STR_LIT("web:8080"), &a);
	REQUIRE(h != NULL);
	/* the hint is returned without a lookup when it matches */
	CHECK(pxmetrics_http(&pm, h, PXM_OUTBOUND, STR_LIT("web:8080"), &a) == h);
	h2 = pxmetrics_http(&pm, h, PXM_OUTBOUND, STR_LIT("api:8080"), &a);
	CHECK(h2 != h);
	CHECK(pxmetrics_http(&pm, NULL, PXM_OUTBOUND, STR_LIT("web:8080"),
	                     &a) == h);
	none = pxmetrics_http(&pm, NULL, PXM_OUTBOUND, STR_LIT("web:8080"),
	                      NULL);
	CHECK(none != h);
	pxmetrics_request(h);
	pxmetrics_request(h);
	pxmetrics_request(h);
	pxmetrics_latency(h, 200, 3);
	pxmetrics_response(h, 200, -1, pxmetrics_is_failure(200, -1, 0));
	pxmetrics_latency(h, 200, 7);
	pxmetrics_response(h, 200, -1, pxmetrics_is_failure(200, -1, 0));
	pxmetrics_latency(h, 200, 12);
	pxmetrics_response(h, 200, 14, pxmetrics_is_failure(200, 14, 0));
	pxmetrics_request(none);
	pxmetrics_response(none, 503, -1, pxmetrics_is_failure(503, -1, 0));
	CHECK(has_line(r, "request_total{direction=\"outbound\",authority="
	               "\"web:8080\",target_addr=\"10.0.0.1:8080\",tls="
	               "\"no_identity\",no_tls_reason=\"not_provided_by_service"
	               "_discovery\"} 3"));
	CHECK(has_line(r, "response_total{direction=\"outbound\",authority="
	               "\"web:8080\",target_addr=\"10.0.0.1:8080\",tls="
	               "\"no_identity\",no_tls_reason=\"not_provided_by_service"
	               "_discovery\",status_code=\"200\",classification="
	               "\"success\"} 2"));
	CHECK(has_line(r, "response_total{direction=\"outbound\",authority="
	               "\"web:8080\",target_addr=\"10.0.0.1:8080\",tls="
	               "\"no_identity\",no_tls_reason=\"not_provided_by_service"
	               "_discovery\",status_code=\"200\",classification="
	               "\"failure\",grpc_status=\"14\"} 1"));
	CHECK(has_line(r, "response_total{direction=\"outbound\",authority="
	               "\"web:8080\",target_addr=\"\",tls=\"no_identity\","
	               "no_tls_reason=\"not_provided_by_service_discovery\","
	               "status_code=\"503\",classification=\"failure\"} 1"));
	CHECK(has_line(r, "response_latency_ms_bucket{direction=\"outbound\","
	               "authority=\"web:8080\",target_addr=\"10.0.0.1:8080\","
	               "tls=\"no_identity\",no_tls_reason=\"not_provided_by_"
	               "service_discovery\",status_code=\"200\",le=\"5\"} 1"));
	CHECK(has_line(r, "response_latency_ms_count{direction=\"outbound\","
	               "authority=\"web:8080\",target_addr=\"10.0.0.1:8080\","
	               "tls=\"no_identity\",no_tls_reason=\"not_provided_by_"
	               "service_discovery\",status_code=\"200\"} 3"));
	pxmetrics_destroy(&pm);
	metrics_registry_free(r);
}

TEST(inbound_authority_dropped_unless_asked)
{
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("127.0.0.1:8080");
	struct pxm_http *h1, *h2;
	char err[128];

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, NULL, 0, err, sizeof(err)) == 0);
	/* any authority maps to one series: no cardinality from clients */
	h1 = pxmetrics_http(&pm, NULL, PXM_INBOUND, STR_LIT("a"), &a);
	h2 = pxmetrics_http(&pm, NULL, PXM_INBOUND, STR_LIT("b"), &a);
	CHECK(h1 == h2);
	pxmetrics_request(h1);
	CHECK(has_line(r, "request_total{direction=\"inbound\",target_addr="
	               "\"127.0.0.1:8080\",tls=\"no_identity\",no_tls_reason="
	               "\"no_tls_from_remote\"} 1"));
	pxmetrics_destroy(&pm);
	metrics_registry_free(r);
}

TEST(failure_classification)
{
	CHECK(!pxmetrics_is_failure(200, -1, 0));
	CHECK(!pxmetrics_is_failure(404, -1, 0));
	CHECK(pxmetrics_is_failure(500, -1, 0));
	CHECK(pxmetrics_is_failure(503, -1, 0));
	CHECK(pxmetrics_is_failure(200, -1, 1));
	CHECK(!pxmetrics_is_failure(200, 0, 0));
	CHECK(pxmetrics_is_failure(200, 14, 0));
	CHECK(pxmetrics_is_failure(200, 5, 0));
	CHECK(!pxmetrics_is_failure(500, 0, 0)); /* gRPC status wins */
}

TEST(workload_labels_parse)
{
	struct metrics_label l[4];
	char store[128], err[128];

	CHECK(proxy_parse_labels("", l, 4, store, sizeof(store), err,
	                         sizeof(err)) == 0);
	REQUIRE(proxy_parse_labels("namespace=default, pod=web-1,deployment=web",
	                           l, 4, store, sizeof(store), err,
	                           sizeof(err)) == 3);
	CHECK_STR(l[0].key, "namespace");
	CHECK_STR(l[0].value, "default");
	CHECK_STR(l[1].key, "pod");
	CHECK_STR(l[1].value, "web-1");
	CHECK_STR(l[2].value, "web");
	CHECK(proxy_parse_labels("a=1,a=2", l, 4, store, sizeof(store), err,
	                         sizeof(err)) < 0);
	CHECK(proxy_parse_labels("=1", l, 4, store, sizeof(store), err,
	                         sizeof(err)) < 0);
	CHECK(proxy_parse_labels("1a=x", l, 4, store, sizeof(store), err,
	                         sizeof(err)) < 0);
	CHECK(proxy_parse_labels("a", l, 4, store, sizeof(store), err,
	                         sizeof(err)) < 0);
	CHECK(proxy_parse_labels("a=1,b=2,c=3,d=4,e=5", l, 4, store,
	                         sizeof(store), err, sizeof(err)) < 0);
	CHECK(proxy_parse_labels("a=1", l, 4, store, 3, err, sizeof(err)) < 0);
}

/* Number of lines of the exposition that start with <prefix>. */
static int count_lines(struct metrics_registry *r, const char *prefix)
{
	struct buf b;
	const char *t, *p;
	int n = 0;

	buf_init(&b, 1 << 20);
	if (metrics_render(r, &b) == 0 && (t = buf_cstr(&b)) != NULL)
		for (p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
			n += strncmp(p, prefix, strlen(prefix)) == 0;
	buf_free(&b);
	return n;
}

TEST(tcp_close_errno_labels)
{
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("10.0.0.1:80"), b = addr("10.0.0.2:80");
	struct pxm_tcp *t, *u;
	char err[128];
	uint64_t now;

#define TCL(peer, addr_, rest) "tcp_close_total{direction=\"inbound\"," \
	"peer=\"" peer "\",target_addr=\"" addr_ "\",tls=\"no_identity\"," \
	"no_tls_reason=\"no_tls_from_remote\"," rest

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, NULL, 0, err, sizeof(err)) == 0);
	CHECK_STR(pxmetrics_errno_label(0), "");
	CHECK_STR(pxmetrics_errno_label(ECONNRESET), "ECONNRESET");
	CHECK_STR(pxmetrics_errno_label(-ECONNREFUSED), "ECONNREFUSED");
	CHECK_STR(pxmetrics_errno_label(ETIMEDOUT), "ETIMEDOUT");
	CHECK_STR(pxmetrics_errno_label(EPIPE), "EPIPE");
	CHECK_STR(pxmetrics_errno_label(EINVAL), "OTHER");
	CHECK_STR(pxmetrics_errno_label(INT_MIN), "OTHER");
	t = pxmetrics_tcp(&pm, PXM_INBOUND, PXM_SRC, &a);
	REQUIRE(t != NULL);
	/* no series with an errno name before a close needs one */
	CHECK(count_lines(r, "tcp_close_total{") == 2);
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 0, 0);
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 0, ECONNRESET);  /* a success has no errno */
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 1, 0);           /* e.g. a protocol error */
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 1, ECONNRESET);
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 1, -ECONNRESET);
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 1, EINVAL);
	pxmetrics_tcp_open(t);
	pxmetrics_tcp_close(t, 1, ENOTSOCK);    /* the same "OTHER" series */
	CHECK(has_line(r, TCL("src", "10.0.0.1:80",
	               "classification=\"success\",errno=\"\"} 2")));
	CHECK(has_line(r, TCL("src", "10.0.0.1:80",
	               "classification=\"failure\",errno=\"\"} 1")));
	CHECK(has_line(r, TCL("src", "10.0.0.1:80",
	               "classification=\"failure\",errno=\"ECONNRESET\"} 2")));
	CHECK(has_line(r, TCL("src", "10.0.0.1:80",
	               "classification=\"failure\",errno=\"OTHER\"} 2")));
	CHECK(count_lines(r, "tcp_close_total{") == 4);
	CHECK(count_lines(r, "tcp_open_connections{") == 1);
	CHECK(has_line(r, "tcp_open_connections{direction=\"inbound\","
	               "peer=\"src\",target_addr=\"10.0.0.1:80\",tls="
	               "\"no_identity\",no_tls_reason=\"no_tls_from_remote\"}"
	               " 0"));
	/* a failed connect: a close without an open */
	u = pxmetrics_tcp(&pm, PXM_INBOUND, PXM_DST, &b);
	REQUIRE(u != NULL);
	pxmetrics_tcp_connect_fail(u, -ECONNREFUSED);
	pxmetrics_tcp_connect_fail(u, ETIMEDOUT);
	pxmetrics_tcp_connect_fail(u, ETIMEDOUT);
	CHECK(has_line(r, "tcp_close_total{direction=\"inbound\",peer=\"dst\","
	               "target_addr=\"10.0.0.2:80\",tls=\"no_identity\","
	               "no_tls_reason=\"loopback\",classification="
	               "\"failure\",errno=\"ECONNREFUSED\"} 1"));
	CHECK(has_line(r, "tcp_close_total{direction=\"inbound\",peer=\"dst\","
	               "target_addr=\"10.0.0.2:80\",tls=\"no_identity\","
	               "no_tls_reason=\"loopback\",classification="
	               "\"failure\",errno=\"ETIMEDOUT\"} 2"));
	CHECK(metrics_gauge_value(u->open_conns) == 0);
	CHECK(metrics_counter_value(u->open_total) == 0);
	CHECK(u->nopen == 0);
	/* errno series go with their bundle */
	pxmetrics_retain(&pm, NULL, 1000);     /* sweeps driven by hand */
	for (now = 1; now <= 4000; now += 250)
		pxmetrics_sweep(&pm, now, 1);
	CHECK(pm.ntcp == 0);
	CHECK(count_lines(r, "tcp_close_total{") == 0);
	/* a dead bundle makes no series */
	pxmetrics_tcp_connect_fail(u, EPIPE);
	pxmetrics_tcp_close(t, 1, EPIPE);
	CHECK(count_lines(r, "tcp_close_total{") == 0);
#undef TCL
	pxmetrics_destroy(&pm);
	metrics_registry_free(r);
}

TEST(retain_idle_removes_idle_bundles_and_series)
{
	static const struct pxm_kv set[] = { { STR_INIT("service"),
	                                       STR_INIT("web") } };
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("10.0.0.1:80"), b = addr("10.0.0.2:80");
	struct pxm_http *h1, *h2, *h3;
	struct pxm_tcp *t1, *t2, *t3;
	char err[128];
	uint64_t now = 1000;

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, NULL, 0, err, sizeof(err)) == 0);
	pxmetrics_retain(&pm, NULL, 1000);     /* sweeps driven by hand */
	CHECK(pxmetrics_sweep(&pm, now, 1) == 0);
	h1 = pxmetrics_http_dst(&pm, NULL, PXM_OUTBOUND, S("web:80"), &a,
	                        set, 1, NULL, 0);
	h2 = pxmetrics_http(&pm, NULL, PXM_OUTBOUND, S("web:80"), &b);
	REQUIRE(h1 && h2 && h1 != h2);
	pxmetrics_request(h1);
	pxmetrics_latency(h1, 200, 3);
	pxmetrics_response(h1, 200, -1, 0);
	pxmetrics_request(h2);
	pxmetrics_response(h2, 503, -1, 1);
	t1 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &a);
	t2 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &b);
	REQUIRE(t1 && t2);
	pxmetrics_tcp_open(t1);
	pxmetrics_tcp_open(t2);
	pxmetrics_tcp_close(t2, 0, 0);         /* t1 keeps a connection */
	CHECK(count_lines(r, "request_total{") == 2);
	CHECK(count_lines(r, "tcp_open_total{") == 2);
	/* h2 keeps being used, h1 not; a sweep every 250 ms */
	for (now += 250; now <= 2250; now += 250) {
		pxmetrics_sweep(&pm, now, 0);
		pxmetrics_request(h2);
	}
	/* (whether h1 is gone by now depends on where the hash seed put it
	 * in the sweep's order: not checked) */
	for (; now <= 4000; now += 250) {
		pxmetrics_sweep(&pm, now, 0);
		pxmetrics_request(h2);
	}
	CHECK(pm.removed == 2);                 /* h1 and t2, not t1 */
	CHECK(count_lines(r, "request_total{") == 1);
	CHECK(count_lines(r, "request_total{direction=\"outbound\","
	                  "authority=\"web:80\",target_addr=\"10.0.0.2:80\","
	                  "tls=\"no_identity\",no_tls_reason="
	                  "\"not_provided_by_service_discovery\"} ") == 1);
	CHECK(count_lines(r, "response_latency_ms_count{") == 0);
	CHECK(count_lines(r, "response_total{") == 1);
	CHECK(count_lines(r, "tcp_open_total{") == 1);
	CHECK(count_lines(r, "tcp_open_connections{") == 1);
	/* a pointer still held is safe: updates are no-ops, never a hint */
	pxmetrics_request(h1);
	pxmetrics_latency(h1, 200, 3);
	pxmetrics_response(h1, 200, -1, 0);
	pxmetrics_tcp_open(t2);
	pxmetrics_tcp_close(t2, 1, 0);
	CHECK(count_lines(r, "request_total{") == 1);
	h3 = pxmetrics_http_dst(&pm, h1, PXM_OUTBOUND, S("web:80"), &a,
	                        set, 1, NULL, 0);
	REQUIRE(h3 != NULL);
	CHECK(h3 != h1);                        /* h1 waits a retain time */
	pxmetrics_request(h3);
	CHECK(has_line(r, "request_total{direction=\"outbound\","
	               "authority=\"web:80\",target_addr=\"10.0.0.1:80\","
	               "tls=\"no_identity\",no_tls_reason="
	               "\"not_provided_by_service_discovery\","
	               "dst_service=\"web\"} 1"));
	/* the open connection's bundle stays while it is open */
	pxmetrics_tcp_close(t1, 0, 0);
	for (now += 250; now <= 8000; now += 250)
		pxmetrics_sweep(&pm, now, 0);
	CHECK(count_lines(r, "tcp_open_total{") == 0);
	CHECK(count_lines(r, "request_total{") == 0);
	CHECK(pm.ntcp == 0 && pm.nhttp == 0);
	/* after another retain time a dead bundle is reused */
	t3 = pxmetrics_tcp(&pm, PXM_OUTBOUND, PXM_DST, &b);
	CHECK(t3 == t2);
	pxmetrics_tcp_open(t3);
	CHECK(count_lines(r, "tcp_open_total{") == 1);
	pxmetrics_tcp_close(t3, 0, 0);
	pxmetrics_destroy(&pm);                 /* ASan: nothing leaks */
	metrics_registry_free(r);
}

TEST(retain_zero_keeps_everything)
{
	struct metrics_registry *r = metrics_registry_new();
	struct pxmetrics pm;
	struct sock_addr a = addr("10.0.0.1:80");
	char err[128];
	uint64_t now;

	REQUIRE(r != NULL);
	REQUIRE(pxmetrics_init(&pm, r, NULL, 0, err, sizeof(err)) == 0);
	pxmetrics_request(pxmetrics_http(&pm, NULL, PXM_OUTBOUND, S("x:1"),
	                                 &a));
	for (now = 1; now < 100000; now += 5000)
		CHECK(pxmetrics_sweep(&pm, now, 1) == 0);
	CHECK(count_lines(r, "request_total{") == 1);
	pxmetrics_destroy(&pm);
	metrics_registry_free(r);
}
