/*
 * Unit tests for controller/registry: YAML and JSON giving the same
 * registry, defaults, every error class with its exact file:line:col,
 * selector resolution, endpoint order and de-duplication, authority
 * splitting, route matching, limits, allocation failures, reloading a
 * watched file on a real loop, and a 1,000-service / 10,000-workload file;
 * directory mode: fragments equal to one file, a change re-parsing only
 * its fragment (seen through inotify alone), fragments added and removed,
 * duplicates across files and broken fragments refused with the previous
 * registry kept, and 1,000 fragments (the assembly time is printed).
 *
 * The example files are read from examples/registry/ relative to the
 * current directory (the runner runs from the repository root).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "controller/registry.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/util.h"

static struct registry *t_reg_parse(const char *text, int fmt)
{
	struct registry *r = NULL;
	char err[256] = "";

	if (registry_parse(text, strlen(text), "t", fmt, &r, err,
	                   sizeof(err)) < 0) {
		printf("# unexpected error: %s\n", err);
		return NULL;
	}
	return r;
}

/* The error message for <text>, "" when it parsed. */
static const char *t_reg_err(const char *text, int fmt, char *err,
                             size_t errlen)
{
	struct registry *r = NULL;

	if (registry_parse(text, strlen(text), fmt == 'j' ? "t.json" :
	                   "t.yaml", fmt, &r, err, errlen) == 0) {
		registry_free(r);
		snprintf(err, errlen, "(parsed)");
	} else {
		CHECK(r == NULL);
	}
	return err;
}

static char *t_reg_read(const char *path, size_t *len)
{
	char *p = mem_alloc(1 << 16);
	ssize_t n;
	int fd = open(path, O_RDONLY);

	*len = 0;
	if (!p || fd < 0) {
		if (fd >= 0)
			close(fd);
		mem_free(p);
		return NULL;
	}
	n = read(fd, p, (1 << 16) - 1);
	close(fd);
	if (n < 0) {
		mem_free(p);
		return NULL;
	}
	p[n] = '\0';
	*len = (size_t)n;
	return p;
}

static int t_reg_labels_eq(const struct registry_label *a, size_t na,
                           const struct registry_label *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (strcmp(a[i].key, b[i].key) || strcmp(a[i].value, b[i].value))
			return 0;
	return 1;
}

static int t_reg_str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Deep equality of two registries (endpoint workloads by name). */
static int t_reg_equal(const struct registry *a, const struct registry *b)
{
	size_t i, j, k;

	if (a->nservices != b->nservices || a->nworkloads != b->nworkloads ||
	    a->nendpoints != b->nendpoints)
		return 0;
	for (i = 0; i < a->nworkloads; i++) {
		const struct registry_workload *x = &a->workloads[i];
		const struct registry_workload *y = &b->workloads[i];

		if (strcmp(x->name, y->name) || strcmp(x->ns, y->ns) ||
		    strcmp(x->service_account, y->service_account) ||
		    x->weight != y->weight || x->meshed != y->meshed ||
		    x->naddrs != y->naddrs ||
		    memcmp(x->addrs, y->addrs, x->naddrs * sizeof(*x->addrs)) ||
		    !t_reg_labels_eq(x->labels, x->nlabels, y->labels,
		                     y->nlabels))
			return 0;
	}
	for (i = 0; i < a->nservices; i++) {
		const struct registry_service *x = &a->services[i];
		const struct registry_service *y = &b->services[i];

		if (strcmp(x->name, y->name) || strcmp(x->ns, y->ns) ||
		    x->nports != y->nports || x->nroutes != y->nroutes ||
		    x->timeout_ms != y->timeout_ms ||
		    x->retry_ratio != y->retry_ratio ||
		    x->retry_min_per_second != y->retry_min_per_second ||
		    x->retry_ttl_ms != y->retry_ttl_ms ||
		    !t_reg_labels_eq(x->selector, x->nselector, y->selector,
		                     y->nselector))
			return 0;
		for (j = 0; j < x->nports; j++) {
			const struct registry_port *p = &x->ports[j];
			const struct registry_port *q = &y->ports[j];

			if (p->port != q->port ||
			    p->target_port != q->target_port ||
			    p->proto != q->proto || p->neps != q->neps)
				return 0;
			for (k = 0; k < p->neps; k++)
				if (memcmp(p->eps[k].ip, q->eps[k].ip, 16) ||
				    p->eps[k].iplen != q->eps[k].iplen ||
				    p->eps[k].port != q->eps[k].port ||
				    strcmp(p->eps[k].workload->name,
				           q->eps[k].workload->name))
					return 0;
		}
		for (j = 0; j < x->nroutes; j++) {
			const struct registry_route *p = &x->routes[j];
			const struct registry_route *q = &y->routes[j];

			if (strcmp(p->name, q->name) ||
			    !t_reg_str_eq(p->method, q->method) ||
			    p->path_kind != q->path_kind ||
			    !t_reg_str_eq(p->path, q->path) ||
			    p->retryable != q->retryable ||
			    p->timeout_ms != q->timeout_ms)
				return 0;
		}
	}
	return 1;
}

static const struct registry_service *t_reg_find(const struct registry *r,
                                                 const char *name,
                                                 const char *ns)
{
	return registry_find(r, str_from_cstr(name), str_from_cstr(ns));
}

/* "a.b.c.d" of an IPv4 endpoint, for readable checks. */
static const char *t_reg_ip(const struct registry_endpoint *e, char *out,
                            size_t outlen)
{
	if (e->iplen == 4)
		snprintf(out, outlen, "%u.%u.%u.%u:%u", e->ip[0], e->ip[1],
		         e->ip[2], e->ip[3], e->port);
	else
		snprintf(out, outlen, "v6[%02x%02x..%02x]:%u", e->ip[0],
		         e->ip[1], e->ip[15], e->port);
	return out;
}

TEST(demo_yaml_and_json_are_equal)
{
	struct registry *y = NULL, *j = NULL;
	const struct registry_service *b;
	const struct registry_port *p;
	char err[256] = "", ip[64];
	size_t ylen, jlen;
	char *yt = t_reg_read("examples/registry/demo.yaml", &ylen);
	char *jt = t_reg_read("examples/registry/demo.json", &jlen);

	REQUIRE(yt && jt);
	/* format chosen by name (.json) and by content ('{' first) */
	CHECK(registry_parse(yt, ylen, "demo.yaml", 0, &y, err,
	                     sizeof(err)) == 0);
	CHECK_STR(err, "");
	CHECK(registry_parse(jt, jlen, "demo", 0, &j, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
	REQUIRE(y && j);
	CHECK(t_reg_equal(y, j));
	CHECK(y->nservices == 3 && y->nworkloads == 4 && y->nendpoints == 4);
	CHECK_STR(y->services[0].name, "a");
	CHECK_STR(y->services[1].name, "b");
	CHECK_STR(y->services[2].name, "c");
	b = t_reg_find(y, "b", "demo");
	REQUIRE(b != NULL);
	CHECK(b->timeout_ms == 10000 && b->nroutes == 3);
	CHECK(b->retry_ratio > 0.199f && b->retry_ratio < 0.201f);
	CHECK(b->routes[0].retryable && b->routes[0].timeout_ms == 1000);
	CHECK(b->routes[1].timeout_ms == 500);
	CHECK(!b->routes[2].retryable);
	CHECK(b->routes[2].path_kind == REGISTRY_PATH_PREFIX);
	p = registry_service_port(b, 8080);
	REQUIRE(p != NULL);
	CHECK(p->proto == REGISTRY_PROTO_GRPC && p->neps == 2);
	REQUIRE(p->neps == 2);
	CHECK_STR(t_reg_ip(&p->eps[0], ip, sizeof(ip)), "10.0.0.21:8080");
	CHECK_STR(t_reg_ip(&p->eps[1], ip, sizeof(ip)), "10.0.0.22:8080");
	CHECK_STR(p->eps[1].workload->name, "b-2");
	CHECK(p->eps[1].workload->weight == 5000);
	CHECK_STR(p->eps[1].workload->service_account, "b");
	CHECK(registry_service_port(b, 8081) == NULL);
	CHECK(t_reg_find(y, "a", "demo")->ports[0].proto ==
	      REGISTRY_PROTO_HTTP);
	registry_free(y);
	registry_free(j);
	mem_free(yt);
	mem_free(jt);
}

TEST(inline_yaml_and_json_are_equal)
{
	static const char yaml[] =
		"services:\n"
		"- name: web\n"
		"  namespace: prod\n"
		"  ports:\n"
		"  - {port: 80, target_port: 8080}\n"
		"  - {port: 9000, protocol: opaque}\n"
		"  selector: {app: web, tier: front}\n"
		"  timeout: 2s\n"
		"  retry_budget: {ratio: 0.5, min_per_second: 3, ttl: 20s}\n"
		"  routes:\n"
		"  - {name: all}\n"
		"workloads:\n"
		"- name: web-1\n"
		"  namespace: prod\n"
		"  addresses: ['fd00::2', 10.1.0.1]\n"
		"  labels: {tier: front, app: web, x: \"\"}\n"
		"  meshed: false\n";
	static const char json[] =
		"{\"services\":[{\"name\":\"web\",\"namespace\":\"prod\","
		"\"ports\":[{\"port\":80,\"target_port\":8080},"
		"{\"port\":9000,\"protocol\":\"opaque\"}],"
		"\"selector\":{\"tier\":\"front\",\"app\":\"web\"},"
		"\"timeout\":\"2s\",\"retry_budget\":{\"ratio\":0.50,"
		"\"min_per_second\":3,\"ttl\":\"20s\"},"
		"\"routes\":[{\"name\":\"a\\u006cl\"}]}],"
		"\"workloads\":[{\"name\":\"web-1\",\"namespace\":\"prod\","
		"\"addresses\":[\"fd00::2\",\"10.1.0.1\"],\"labels\":"
		"{\"x\":\"\",\"app\":\"web\",\"tier\":\"front\"},"
		"\"meshed\":false}]}";
	struct registry *y = t_reg_parse(yaml, 'y');
	struct registry *j = t_reg_parse(json, 'j');
	const struct registry_port *p;

	REQUIRE(y && j);
	CHECK(t_reg_equal(y, j));
	REQUIRE(y->nservices == 1);
	CHECK(y->services[0].retry_ratio == 0.5f);
	CHECK(y->services[0].retry_ttl_ms == 20000);
	CHECK(y->workloads[0].meshed == 0);
	/* labels are stored sorted by key */
	CHECK_STR(y->workloads[0].labels[0].key, "app");
	CHECK_STR(y->workloads[0].labels[2].key, "x");
	CHECK_STR(y->workloads[0].labels[2].value, "");
	p = &y->services[0].ports[0];
	REQUIRE(p->neps == 2);
	/* IPv4 sorts before IPv6; the port is the target port */
	CHECK(p->eps[0].iplen == 4 && p->eps[0].port == 8080);
	CHECK(p->eps[1].iplen == 16 && p->eps[1].ip[0] == 0xfd &&
	      p->eps[1].ip[15] == 2);
	CHECK(y->services[0].ports[1].eps[0].port == 9000);
	CHECK(y->nendpoints == 4);
	registry_free(y);
	registry_free(j);
}

TEST(defaults)
{
	struct registry *r = t_reg_parse(
		"services: [{name: s, ports: [{port: 81}]}]\n"
		"workloads: [{name: w, addresses: [1.2.3.4]}]\n", 0);
	const struct registry_service *s;

	REQUIRE(r != NULL);
	s = t_reg_find(r, "s", "default");
	REQUIRE(s != NULL);
	CHECK(s->ports[0].target_port == 81);
	CHECK(s->ports[0].proto == REGISTRY_PROTO_HTTP);
	CHECK(s->timeout_ms == 0 && s->nroutes == 0 && s->nselector == 0);
	CHECK(s->retry_ratio == 0.2f && s->retry_min_per_second == 10 &&
	      s->retry_ttl_ms == 10000);
	CHECK(s->ports[0].neps == 0 && s->ports[0].eps == NULL);
	CHECK(s->line == 1);
	CHECK_STR(r->workloads[0].ns, "default");
	CHECK_STR(r->workloads[0].service_account, "default");
	CHECK(r->workloads[0].weight == REGISTRY_WEIGHT_DEFAULT);
	CHECK(r->workloads[0].meshed == 1 && r->workloads[0].nlabels == 0);
	CHECK(r->workloads[0].line == 2);
	CHECK(r->generation == 0 && r->nendpoints == 0);
	registry_free(r);

	/* an explicitly empty registry; null lists are empty lists */
	r = t_reg_parse("{}", 0);
	REQUIRE(r != NULL);
	CHECK(r->nservices == 0 && r->nworkloads == 0);
	CHECK(t_reg_find(r, "s", "default") == NULL);
	registry_free(r);
	r = t_reg_parse("services:\nworkloads: ~\n", 'y');
	REQUIRE(r != NULL);
	CHECK(r->nservices == 0 && r->nworkloads == 0);
	registry_free(r);
	r = t_reg_parse("{\"services\": null}", 'j');
	REQUIRE(r != NULL);
	registry_free(r);
}

struct t_reg_case {
	int fmt;
	const char *text;
	const char *err;
};

static const struct t_reg_case t_reg_cases[] = {
	/* syntax */
	{ 'y', "services: [\n", "t.yaml:2:1: did not find expected node "
	  "content while parsing a flow node" },
	{ 'j', "{\"services\": [}", "t.json:1:15: value expected (trailing "
	  "comma?)" },
	{ 'j', "", "t.json:1:1: value expected" },
	{ 'y', "", "t.yaml:1:1: empty registry file (write \"{}\" for an "
	  "empty registry)" },
	{ 'y', "# nothing\n", "t.yaml:1:1: empty registry file (write "
	  "\"{}\" for an empty registry)" },
	{ 'y', "{}\n---\n{}\n", "t.yaml:2:1: more than one YAML document" },
	{ 'y', "- a\n", "t.yaml:1:1: the top level must be a mapping with "
	  "\"services\" and \"workloads\"" },
	/* keys */
	{ 'y', "services: []\nworkload: []\n", "t.yaml:2:1: unknown key "
	  "\"workload\" in the top level (known: services, workloads)" },
	{ 'j', "{\"services\": [],\n \"servics\": 1}", "t.json:2:2: unknown "
	  "key \"servics\" in the top level (known: services, workloads)" },
	{ 'y', "services: []\nservices: []\n", "t.yaml:2:1: duplicate key "
	  "\"services\" in the top level" },
	{ 'j', "{\"workloads\":[{\"name\":\"w\",\"name\":\"v\"}]}",
	  "t.json:1:27: duplicate key \"name\" in workload" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1, proto: http}]\n",
	  "t.yaml:3:21: unknown key \"proto\" in port (known: port, "
	  "target_port, protocol)" },
	{ 'y', "services:\n- {[a]: 1}\n", "t.yaml:2:4: key: expected a "
	  "string" },
	/* names */
	{ 'y', "services:\n- name: Web\n  ports: [{port: 1}]\n",
	  "t.yaml:2:9: invalid service name \"Web\": must be a DNS label "
	  "(a-z, 0-9 and '-', at most 63 characters)" },
	{ 'y', "workloads:\n- {name: w-, addresses: [1.1.1.1]}\n",
	  "t.yaml:2:10: invalid workload name \"w-\": must be a DNS label "
	  "(a-z, 0-9 and '-', at most 63 characters)" },
	{ 'y', "workloads:\n- {name: w, namespace: a.b, addresses: "
	  "[1.1.1.1]}\n", "t.yaml:2:24: invalid namespace \"a.b\": must be "
	  "a DNS label (a-z, 0-9 and '-', at most 63 characters)" },
	{ 'y', "services:\n- name: "
	  "a123456789012345678901234567890123456789012345678901234567890123"
	  "\n  ports: [{port: 1}]\n", "t.yaml:2:9: invalid service name "
	  "\"a12345678901234567890123456789012345678901234567890123456789012"
	  "3\": must be a DNS label (a-z, 0-9 and '-', at most 63 "
	  "characters)" },
	{ 'y', "services:\n- name: "
	  "A123456789012345678901234567890123456789012345678901234567890123"
	  "456789\n  ports: [{port: 1}]\n", "t.yaml:2:9: invalid service "
	  "name \"A12345678901234567890123456789012345678901234567890123456789"
	  "01234567...\": must be a DNS label (a-z, 0-9 and '-', at most 63 "
	  "characters)" },
	{ 'j', "{\"services\":[{\"name\":7,\"ports\":[{\"port\":1}]}]}",
	  "t.json:1:22: service name: expected a string" },
	{ 'y', "services:\n- name: true\n  ports: [{port: 1}]\n",
	  "t.yaml:2:9: service name: expected a string" },
	{ 'j', "{\"services\":[{\"name\":\"a\\u0000\"}]}", "t.json:1:22: "
	  "string holds a NUL byte" },
	/* required */
	{ 'y', "services:\n- ports: [{port: 1}]\n", "t.yaml:2:3: service: "
	  "missing required key \"name\"" },
	{ 'y', "services:\n- name: s\n", "t.yaml:2:3: service \"s\": "
	  "missing required key \"ports\"" },
	{ 'y', "services:\n- name: s\n  ports: []\n", "t.yaml:3:10: "
	  "service \"s\": ports must hold at least one port" },
	{ 'y', "workloads:\n- name: w\n", "t.yaml:2:3: workload \"w\": "
	  "missing required key \"addresses\"" },
	{ 'y', "services: {}\n", "t.yaml:1:11: services: expected a "
	  "sequence" },
	{ 'y', "services:\n- 5\n", "t.yaml:2:3: service: expected a "
	  "mapping" },
	/* ports and protocol */
	{ 'y', "services:\n- name: s\n  ports: [{port: 0}]\n",
	  "t.yaml:3:18: port must be an integer between 1 and 65535" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 65536}]\n",
	  "t.yaml:3:18: port must be an integer between 1 and 65535" },
	{ 'y', "services:\n- name: s\n  ports: [{port: \"80\"}]\n",
	  "t.yaml:3:18: port must be an integer between 1 and 65535" },
	{ 'j', "{\"services\":[{\"name\":\"s\",\"ports\":[{\"port\":8.0}]}]}",
	  "t.json:1:43: port must be an integer between 1 and 65535" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1, target_port: "
	  "-1}]\n", "t.yaml:3:34: target_port must be an integer between 1 "
	  "and 65535" },
	{ 'y', "services:\n- name: s\n  ports:\n  - port: 80\n  - port: 81"
	  "\n  - port: 80\n", "t.yaml:6:5: duplicate port 80 in service "
	  "\"s\"" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1, protocol: HTTP}]"
	  "\n", "t.yaml:3:31: unknown protocol \"HTTP\" (http, grpc or "
	  "opaque)" },
	/* addresses */
	{ 'y', "workloads:\n- {name: w, addresses: [10.0.0.256]}\n",
	  "t.yaml:2:25: invalid IP address \"10.0.0.256\"" },
	{ 'y', "workloads:\n- {name: w, addresses: ['fe80::1%eth0']}\n",
	  "t.yaml:2:25: invalid IP address \"fe80::1%eth0\"" },
	{ 'y', "workloads:\n- {name: w, addresses: [web.local]}\n",
	  "t.yaml:2:25: invalid IP address \"web.local\"" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1, 2.2.2.2, "
	  "1.1.1.1]}\n", "t.yaml:2:43: duplicate address in workload \"w\"" },
	{ 'y', "workloads:\n- {name: w, addresses: []}\n", "t.yaml:2:24: "
	  "workload \"w\": addresses must hold at least one address" },
	/* durations, ratio, budget */
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], timeout: 10}\n",
	  "t.yaml:2:42: timeout: invalid duration \"10\" (one number and a "
	  "unit: 10s, 250ms, 1m)" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], timeout: 1.5s}\n",
	  "t.yaml:2:42: timeout: invalid duration \"1.5s\" (one number and a "
	  "unit: 10s, 250ms, 1m)" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], retry_budget: "
	  "{ratio: 1.5}}\n", "t.yaml:2:55: ratio must be a decimal number "
	  "between 0 and 1" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], retry_budget: "
	  "{ratio: 2e-1}}\n", "t.yaml:2:55: ratio must be a decimal number "
	  "between 0 and 1" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], retry_budget: "
	  "{ratio: '0.1'}}\n", "t.yaml:2:55: ratio must be a decimal number "
	  "between 0 and 1" },
	{ 'j', "{\"services\":[{\"name\":\"s\",\"ports\":[{\"port\":1}],"
	  "\"retry_budget\":{\"ratio\":-0.1}}]}", "t.json:1:71: ratio must be "
	  "a decimal number between 0 and 1" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], retry_budget: "
	  "{ttl: 0}}\n", "t.yaml:2:53: ttl must be between 1ms and 1h" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], retry_budget: "
	  "{min_per_second: 1000001}}\n", "t.yaml:2:64: min_per_second must "
	  "be an integer between 0 and 1000000" },
	/* weights, bools */
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], weight: 0}\n",
	  "t.yaml:2:43: weight must be an integer between 1 and 1000000" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], weight: "
	  "1000001}\n", "t.yaml:2:43: weight must be an integer between 1 "
	  "and 1000000" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], meshed: yes}"
	  "\n", "t.yaml:2:43: meshed must be true or false" },
	{ 'j', "{\"workloads\":[{\"name\":\"w\",\"addresses\":[\"1.1.1.1\"],"
	  "\"meshed\":\"true\"}]}", "t.json:1:60: meshed must be true or "
	  "false" },
	/* labels */
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], labels: "
	  "{-a: b}}\n", "t.yaml:2:44: invalid label key \"-a\" ([prefix/]"
	  "name, name at most 63 characters of A-Z a-z 0-9 - _ .)" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], labels: "
	  "{Example.COM/a: b}}\n", "t.yaml:2:44: invalid label key "
	  "\"Example.COM/a\" ([prefix/]name, name at most 63 characters of "
	  "A-Z a-z 0-9 - _ .)" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], labels: "
	  "{a: b c}}\n", "t.yaml:2:47: invalid label value \"b c\" (at most "
	  "63 characters of A-Z a-z 0-9 - _ ., alphanumeric at both ends)" },
	{ 'y', "workloads:\n- {name: w, addresses: [1.1.1.1], labels: "
	  "{a: b, c: d, a: e}}\n", "t.yaml:2:56: duplicate label key \"a\"" },
	{ 'y', "services:\n- {name: s, ports: [{port: 1}], selector: [a]}\n",
	  "t.yaml:2:43: selector: expected a mapping of labels" },
	/* routes */
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r, path_prefix: items}\n", "t.yaml:5:28: path_prefix "
	  "must start with '/' and hold visible ASCII without '?' or '#' (at "
	  "most 2048 bytes)" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r, path_exact: '/a?b'}\n", "t.yaml:5:27: path_exact "
	  "must start with '/' and hold visible ASCII without '?' or '#' (at "
	  "most 2048 bytes)" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r, path_exact: /a, path_prefix: /b}\n", "t.yaml:5:44: "
	  "path_prefix and path_exact are exclusive" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r, method: get}\n", "t.yaml:5:23: method must be an "
	  "upper-case HTTP token (GET, POST, ...)" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r}\n  - {name: q}\n  - {name: r, method: GET}\n",
	  "t.yaml:7:12: duplicate route name \"r\" in service \"s\"" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {method: GET}\n", "t.yaml:5:5: route: missing required key "
	  "\"name\"" },
	{ 'y', "services:\n- name: s\n  ports: [{port: 1}]\n  routes:\n"
	  "  - {name: r, retryable: 1}\n", "t.yaml:5:26: retryable must be "
	  "true or false" },
	/* uniqueness */
	{ 'y', "services:\n- {name: s, ports: [{port: 1}]}\n"
	  "- {name: s, namespace: x, ports: [{port: 1}]}\n"
	  "- {name: s, namespace: default, ports: [{port: 2}]}\n",
	  "t.yaml:4:10: duplicate service \"s\" in namespace \"default\" "
	  "(first at line 2)" },
	{ 'j', "{\"workloads\":[\n{\"name\":\"w\",\"addresses\":[\"::1\"]},\n"
	  "{\"name\":\"w\",\"addresses\":[\"::2\"]}]}", "t.json:3:9: "
	  "duplicate workload \"w\" in namespace \"default\" (first at line "
	  "2)" },
	/* YAML features refused */
	{ 'y', "services:\n- &s {name: s, ports: [{port: 1}]}\n- *s\n",
	  "t.yaml:3:3: YAML aliases are not supported" },
	{ 'y', "services: [{name: s, ports: [{port: 1}], selector: !!map {}}]\n",
	  "t.yaml:1:52: YAML tags are not supported" },
	{ 'y', "services:\n- name: !!int 5\n  ports: [{port: 1}]\n",
	  "t.yaml:2:9: YAML tags are not supported" },
};

TEST(error_messages_point_at_the_node)
{
	size_t i;
	char err[512];

	for (i = 0; i < ARRAY_SIZE(t_reg_cases); i++) {
		const struct t_reg_case *tc = &t_reg_cases[i];

		err[0] = '\0';
		t_reg_err(tc->text, tc->fmt, err, sizeof(err));
		if (strcmp(err, tc->err) != 0)
			printf("# case %zu: %s\n", i, tc->text);
		CHECK_STR(err, tc->err);
	}
}

TEST(error_leaves_out_null_and_short_err_buffer)
{
	struct registry *r = (struct registry *)1;
	char err[12];

	CHECK(registry_parse("x: 1", 4, "file.yaml", 'y', &r, err,
	                     sizeof(err)) == -1);
	CHECK(r == NULL);
	CHECK(strlen(err) == sizeof(err) - 1);  /* truncated, terminated */
	CHECK(registry_parse("x: 1", 4, "f", 'y', &r, NULL, 0) == -1);
}

TEST(selector_resolution)
{
	struct registry *r = t_reg_parse(
		"services:\n"
		"- {name: web, namespace: a, ports: [{port: 80}],\n"
		"   selector: {app: web, tier: front}}\n"
		"- {name: all, namespace: a, ports: [{port: 80}],\n"
		"   selector: {app: web}}\n"
		"- {name: none, namespace: a, ports: [{port: 80}]}\n"
		"- {name: nomatch, namespace: a, ports: [{port: 80}],\n"
		"   selector: {app: web, tier: back}}\n"
		"- {name: web, namespace: b, ports: [{port: 80}],\n"
		"   selector: {app: web}}\n"
		"workloads:\n"
		"- {name: w1, namespace: a, addresses: [10.0.0.1],\n"
		"   labels: {app: web, tier: front, v: '1'}}\n"
		"- {name: w2, namespace: a, addresses: [10.0.0.2],\n"
		"   labels: {app: web}}\n"
		"- {name: w3, namespace: b, addresses: [10.0.0.3],\n"
		"   labels: {app: web, tier: front}}\n"
		"- {name: w4, namespace: a, addresses: [10.0.0.4],\n"
		"   labels: {app: webx, tier: front}}\n"
		"- {name: w5, namespace: a, addresses: [10.0.0.5],\n"
		"   labels: {tier: front}}\n", 'y');
	const struct registry_service *s;
	char ip[64];

	REQUIRE(r != NULL);
	s = t_reg_find(r, "web", "a");
	REQUIRE(s && s->ports[0].neps == 1);
	CHECK_STR(t_reg_ip(&s->ports[0].eps[0], ip, sizeof(ip)),
	          "10.0.0.1:80");
	s = t_reg_find(r, "all", "a");
	REQUIRE(s && s->ports[0].neps == 2);
	CHECK_STR(s->ports[0].eps[0].workload->name, "w1");
	CHECK_STR(s->ports[0].eps[1].workload->name, "w2");
	s = t_reg_find(r, "none", "a");       /* empty selector: nothing */
	REQUIRE(s && s->ports[0].neps == 0);
	s = t_reg_find(r, "nomatch", "a");
	REQUIRE(s && s->ports[0].neps == 0);
	s = t_reg_find(r, "web", "b");        /* only its own namespace */
	REQUIRE(s && s->ports[0].neps == 1);
	CHECK_STR(s->ports[0].eps[0].workload->name, "w3");
	CHECK(r->nendpoints == 4);
	registry_free(r);
}

TEST(endpoints_sorted_and_deduplicated)
{
	struct registry *r = t_reg_parse(
		"services:\n"
		"- name: s\n"
		"  ports: [{port: 80, target_port: 8080}, {port: 81}]\n"
		"  selector: {app: s}\n"
		"workloads:\n"
		"- {name: w3, addresses: ['::1', 10.0.0.10, 10.0.0.9],\n"
		"   labels: {app: s}}\n"
		"- {name: w1, addresses: [10.0.0.9, 9.255.255.255],\n"
		"   labels: {app: s}}\n"
		"- {name: w2, addresses: ['::0.0.0.1', '::2', 10.0.0.2],\n"
		"   labels: {app: s}}\n", 'y');
	static const char *const want[] = {
		"9.255.255.255:8080", "10.0.0.2:8080", "10.0.0.9:8080",
		"10.0.0.10:8080",
	};
	const struct registry_port *p;
	char ip[64];
	size_t i;

	REQUIRE(r != NULL);
	p = &r->services[0].ports[0];
	REQUIRE(p->neps == 6);
	for (i = 0; i < ARRAY_SIZE(want); i++)
		CHECK_STR(t_reg_ip(&p->eps[i], ip, sizeof(ip)), want[i]);
	/* 10.0.0.9 twice: the first workload in the file keeps it */
	CHECK_STR(p->eps[2].workload->name, "w3");
	/* "::0.0.0.1" == ::1 (IPv6): one endpoint */
	CHECK(p->eps[4].iplen == 16 && p->eps[5].iplen == 16);
	CHECK(p->eps[4].ip[15] == 1 && p->eps[5].ip[15] == 2);
	CHECK(p->eps[4].ip[14] == 0 && p->eps[5].ip[0] == 0);
	CHECK_STR(p->eps[4].workload->name, "w3");
	p = &r->services[0].ports[1];
	REQUIRE(p->neps == 6);
	CHECK(p->eps[0].port == 81 && p->eps[5].port == 81);
	CHECK(r->nendpoints == 12);
	registry_free(r);
}

TEST(find_is_sorted_and_case_insensitive)
{
	struct registry *r = t_reg_parse(
		"services:\n"
		"- {name: z, namespace: a, ports: [{port: 1}]}\n"
		"- {name: b, namespace: b, ports: [{port: 1}]}\n"
		"- {name: a, namespace: b, ports: [{port: 1}]}\n"
		"- {name: ab, namespace: a, ports: [{port: 1}]}\n"
		"- {name: a, namespace: a, ports: [{port: 1}]}\n", 'y');
	static const char *const order[][2] = {
		{ "a", "a" }, { "a", "ab" }, { "a", "z" }, { "b", "a" },
		{ "b", "b" },
	};
	size_t i;

	REQUIRE(r && r->nservices == 5);
	for (i = 0; i < ARRAY_SIZE(order); i++) {
		CHECK_STR(r->services[i].ns, order[i][0]);
		CHECK_STR(r->services[i].name, order[i][1]);
		CHECK(t_reg_find(r, order[i][1], order[i][0]) ==
		      &r->services[i]);
	}
	CHECK(t_reg_find(r, "AB", "A") == &r->services[1]);
	CHECK(t_reg_find(r, "a", "c") == NULL);
	CHECK(t_reg_find(r, "", "a") == NULL);
	CHECK(t_reg_find(r, "abc", "a") == NULL);
	CHECK(registry_find(NULL, STR_LIT("a"), STR_LIT("a")) == NULL);
	registry_free(r);
}

TEST(authority_split)
{
	static const struct {
		const char *in;
		const char *cd;
		int rc;
		const char *name, *ns;
		unsigned port;
	} cases[] = {
		{ "web.prod", NULL, 0, "web", "prod", 80 },
		{ "web.prod:8080", NULL, 0, "web", "prod", 8080 },
		{ "web.prod.svc", NULL, 0, "web", "prod", 80 },
		{ "web.prod.svc.cluster.local", NULL, 0, "web", "prod", 80 },
		{ "Web.Prod.SVC.Cluster.Local.:9", NULL, 0, "Web", "Prod", 9 },
		{ "web.prod.:1", NULL, 0, "web", "prod", 1 },
		{ "web.prod.svc.example.org", "example.org", 0, "web", "prod",
		  80 },
		{ "web.prod.svc.example.org", "example.org.", 0, "web", "prod",
		  80 },
		{ "web.prod.svc.cluster.local", "example.org", -1, 0, 0, 0 },
		{ "web.prod.svc.cluster", NULL, -1, 0, 0, 0 },
		{ "web.prod.svc.cluster.local.x", NULL, -1, 0, 0, 0 },
		{ "web.prod.cluster.local", NULL, -1, 0, 0, 0 },
		{ "web", NULL, -1, 0, 0, 0 },
		{ "web:80", NULL, -1, 0, 0, 0 },
		{ "", NULL, -1, 0, 0, 0 },
		{ ".", NULL, -1, 0, 0, 0 },
		{ "web..svc", NULL, -1, 0, 0, 0 },
		{ ".web.prod", NULL, -1, 0, 0, 0 },
		{ "web.prod..", NULL, -1, 0, 0, 0 },
		{ "web.prod:", NULL, -1, 0, 0, 0 },
		{ "web.prod:0", NULL, -1, 0, 0, 0 },
		{ "web.prod:65536", NULL, -1, 0, 0, 0 },
		{ "web.prod:+80", NULL, -1, 0, 0, 0 },
		{ "web.prod:80:80", NULL, -1, 0, 0, 0 },
		{ "10.0.0.1", NULL, -1, 0, 0, 0 },
		{ "10.0.0.1:80", NULL, -1, 0, 0, 0 },
		{ "127.1", NULL, -1, 0, 0, 0 },
		{ "[::1]:80", NULL, -1, 0, 0, 0 },
		{ "::1", NULL, -1, 0, 0, 0 },
		{ "-web.prod", NULL, -1, 0, 0, 0 },
		{ "web_x.prod", NULL, -1, 0, 0, 0 },
		{ "1web.2prod", NULL, 0, "1web", "2prod", 80 },
		{ "a1234567890123456789012345678901234567890123456789012345678"
		  "90123.prod", NULL, -1, 0, 0, 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct str name = STR_NULL, ns = STR_NULL;
		uint16_t port = 0;
		int rc = registry_authority_split(str_from_cstr(cases[i].in),
		                                  cases[i].cd, &name, &ns,
		                                  &port);

		if (rc != cases[i].rc)
			printf("# case \"%s\"\n", cases[i].in);
		CHECK(rc == cases[i].rc);
		if (rc || cases[i].rc)
			continue;
		CHECK(str_eq_cstr(name, cases[i].name));
		CHECK(str_eq_cstr(ns, cases[i].ns));
		CHECK(port == cases[i].port);
	}
}

TEST(authority_split_then_find)
{
	struct registry *r = t_reg_parse(
		"services: [{name: web, namespace: prod, ports: [{port: 80}]}]"
		"\n", 'y');
	struct str name, ns;
	uint16_t port;

	REQUIRE(r != NULL);
	REQUIRE(registry_authority_split(STR_LIT("WEB.PROD.svc:80"), NULL,
	                                 &name, &ns, &port) == 0);
	CHECK(registry_find(r, name, ns) == &r->services[0]);
	CHECK(registry_service_port(registry_find(r, name, ns), port) ==
	      &r->services[0].ports[0]);
	registry_free(r);
}

TEST(route_matching)
{
	struct registry *r = t_reg_parse(
		"services:\n"
		"- name: s\n"
		"  ports: [{port: 80}]\n"
		"  timeout: 3s\n"
		"  routes:\n"
		"  - {name: get-exact, method: GET, path_exact: /items}\n"
		"  - {name: get-prefix, method: GET, path_prefix: /items}\n"
		"  - {name: post-any, method: POST}\n"
		"  - {name: prefix-any, path_prefix: /api/}\n"
		"  - {name: M-SEARCH, method: M-SEARCH, path_exact: /}\n", 'y');
	static const struct {
		const char *method, *path, *route;
	} cases[] = {
		{ "GET", "/items", "get-exact" },
		{ "GET", "/items?x=1", "get-exact" },
		{ "GET", "/items/", "get-prefix" },
		{ "GET", "/itemsx?a", "get-prefix" },
		{ "get", "/items", NULL },         /* methods are exact */
		{ "HEAD", "/items", NULL },
		{ "POST", "/items", "post-any" },
		{ "POST", "", "post-any" },
		{ "PUT", "/api/x", "prefix-any" },
		{ "PUT", "/api", NULL },
		{ "GET", "/Items", NULL },         /* paths are exact */
		{ "M-SEARCH", "/", "M-SEARCH" },
		{ "M-SEARCH", "/?q", "M-SEARCH" },
	};
	const struct registry_service *s;
	size_t i;

	REQUIRE(r != NULL);
	s = &r->services[0];
	REQUIRE(s->nroutes == 5);
	CHECK(s->routes[2].path_kind == REGISTRY_PATH_ANY &&
	      s->routes[2].path == NULL);
	CHECK(s->routes[3].method == NULL);
	CHECK(s->routes[0].timeout_ms == 0 && s->timeout_ms == 3000);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct registry_route *rt = registry_route_match(
			s, str_from_cstr(cases[i].method),
			str_from_cstr(cases[i].path));

		if (!t_reg_str_eq(rt ? rt->name : NULL, cases[i].route))
			printf("# case %s %s\n", cases[i].method,
			       cases[i].path);
		CHECK(t_reg_str_eq(rt ? rt->name : NULL, cases[i].route));
	}
	CHECK(registry_route_match(NULL, STR_LIT("GET"), STR_LIT("/")) ==
	      NULL);
	registry_free(r);
}

/* Appends a workload with <nlabels> labels and <naddrs> addresses. */
static void t_reg_gen_workload(struct buf *b, int nlabels, int naddrs)
{
	int i;

	buf_printf(b, "workloads:\n- name: w\n  labels:\n");
	for (i = 0; i < nlabels; i++)
		buf_printf(b, "    k%d: v\n", i);
	buf_printf(b, "  addresses:\n");
	for (i = 0; i < naddrs; i++)
		buf_printf(b, "  - 10.0.%d.%d\n", i / 256, i % 256);
}

static void t_reg_gen_service(struct buf *b, int nports, int nroutes)
{
	int i;

	buf_printf(b, "services:\n- name: s\n  ports:\n");
	for (i = 0; i < nports; i++)
		buf_printf(b, "  - port: %d\n", i + 1);
	buf_printf(b, "  routes:\n");
	for (i = 0; i < nroutes; i++)
		buf_printf(b, "  - name: r%d\n", i);
}

TEST(limits)
{
	struct registry *r;
	struct buf b;
	char err[256];

	buf_init(&b, 1 << 20);
	t_reg_gen_workload(&b, REGISTRY_MAX_LABELS, REGISTRY_MAX_ADDRS);
	r = t_reg_parse(buf_cstr(&b), 'y');
	CHECK(r && r->workloads[0].nlabels == REGISTRY_MAX_LABELS &&
	      r->workloads[0].naddrs == REGISTRY_MAX_ADDRS);
	registry_free(r);

	buf_reset(&b);
	t_reg_gen_workload(&b, REGISTRY_MAX_LABELS + 1, 1);
	CHECK_STR(t_reg_err(buf_cstr(&b), 'y', err, sizeof(err)),
	          "t.yaml:4:5: labels: more than 64 labels");
	buf_reset(&b);
	t_reg_gen_workload(&b, 1, REGISTRY_MAX_ADDRS + 1);
	CHECK_STR(t_reg_err(buf_cstr(&b), 'y', err, sizeof(err)),
	          "t.yaml:6:3: addresses: more than 16 entries");

	buf_reset(&b);
	t_reg_gen_service(&b, REGISTRY_MAX_PORTS, REGISTRY_MAX_ROUTES);
	r = t_reg_parse(buf_cstr(&b), 'y');
	CHECK(r && r->services[0].nports == REGISTRY_MAX_PORTS &&
	      r->services[0].nroutes == REGISTRY_MAX_ROUTES);
	registry_free(r);
	buf_reset(&b);
	t_reg_gen_service(&b, REGISTRY_MAX_PORTS + 1, 1);
	CHECK_STR(t_reg_err(buf_cstr(&b), 'y', err, sizeof(err)),
	          "t.yaml:4:3: ports: more than 64 entries");
	buf_reset(&b);
	t_reg_gen_service(&b, 1, REGISTRY_MAX_ROUTES + 1);
	CHECK_STR(t_reg_err(buf_cstr(&b), 'y', err, sizeof(err)),
	          "t.yaml:6:3: routes: more than 256 entries");
	buf_free(&b);

	/* the file size bound is checked before anything is read */
	CHECK(registry_parse("{}", (size_t)REGISTRY_MAX_FILE + 1, "big", 'j',
	                     &r, err, sizeof(err)) == -1);
	CHECK_STR(err, "big:1:1: file larger than 67108864 bytes");
}

TEST(allocation_failures_are_clean)
{
	static const char yaml[] =
		"services:\n"
		"- {name: s, ports: [{port: 80}, {port: 81}], selector: {a: b},"
		"\n   routes: [{name: r, method: GET, path_prefix: /}]}\n"
		"workloads:\n"
		"- {name: w, addresses: [1.1.1.1, '::1'], labels: {a: b}}\n";
	static const char json[] =
		"{\"services\":[{\"name\":\"s\",\"ports\":[{\"port\":80}],"
		"\"selector\":{\"ab\":\"b\"}}],\"workloads\":[{\"name\":\"w\","
		"\"addresses\":[\"1.1.1.1\"],\"labels\":{\"a\\u0062\":\"b\"}}]}";
	const char *texts[2] = { yaml, json };
	int t;

	for (t = 0; t < 2; t++) {
		uint64_t n;
		int ok = 0;

		for (n = 1; n < 100 && !ok; n++) {
			struct registry *r = NULL;
			char err[256] = "";
			int rc;

			mem_fail_after(n);
			rc = registry_parse(texts[t], strlen(texts[t]), "t", 0,
			                    &r, err, sizeof(err));
			mem_fail_reset();
			if (rc == 0) {
				ok = 1;
				CHECK(r->nendpoints >= 1);
				registry_free(r);
			} else {
				CHECK(r == NULL);
				CHECK_STR(err, "t:1:1: out of memory");
			}
		}
		CHECK(ok && n > 2);
	}
}

TEST(registry_is_a_refcounted_bus_message)
{
	struct registry *r = t_reg_parse("{}", 0);

	REQUIRE(r != NULL);
	CHECK((void *)&r->msg == (void *)r);
	bus_msg_ref(&r->msg);
	registry_free(r);        /* one reference left */
	CHECK(r->nservices == 0);
	bus_msg_unref(&r->msg);  /* frees it (ASan would report a leak) */
	registry_free(NULL);
}

/* ---- a watched file on a real loop ---- */

struct t_reg_w {
	struct loop loop;
	struct registry_watch w;
	struct loop_timer check, guard;
	struct registry *got;      /* last registry handed to the callback */
	int calls;
	int (*until)(struct t_reg_w *t);
	int timed_out;
	char path[128];
	int want_calls;            /* for t_reg_w_calls_n */
	uint64_t want_errors;      /* for t_reg_w_errors_n */
	double until_ms;           /* for t_reg_w_time */
	int oldfd;                 /* directory tests: the log's fd */
};

static void t_reg_w_cb(void *arg, struct registry *r)
{
	struct t_reg_w *t = arg;

	registry_free(t->got);
	t->got = r;                /* the callback's own reference */
	t->calls++;
}

static void t_reg_w_check(struct loop *loop, struct loop_timer *lt)
{
	struct t_reg_w *t = container_of(lt, struct t_reg_w, check);

	if (t->until(t)) {
		loop_timer_stop(loop, &t->guard);
		loop_stop(loop);
		return;
	}
	loop_timer_arm(loop, lt, 5);
}

static void t_reg_w_guard(struct loop *loop, struct loop_timer *lt)
{
	struct t_reg_w *t = container_of(lt, struct t_reg_w, guard);

	t->timed_out = 1;
	loop_timer_stop(loop, &t->check);
	loop_stop(loop);
}

/* Runs the loop until <until> holds (or 2 s pass: the test fails). */
static int t_reg_w_run(struct t_reg_w *t, int (*until)(struct t_reg_w *t))
{
	t->until = until;
	t->timed_out = 0;
	loop_now_update(&t->loop);
	loop_timer_arm(&t->loop, &t->check, 5);
	loop_timer_arm(&t->loop, &t->guard, 2000);
	loop_run(&t->loop);
	return !t->timed_out;
}

/* Replaces the file the way editors do: a new file renamed over it. */
static int t_reg_w_write(struct t_reg_w *t, const char *text)
{
	char tmp[160];
	int fd;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", t->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	if (n != (ssize_t)strlen(text))
		return -1;
	return rename(tmp, t->path);
}

static int t_reg_w_calls2(struct t_reg_w *t) { return t->calls == 2; }
static int t_reg_w_err1(struct t_reg_w *t) { return t->w.errors == 1; }
static int t_reg_w_calls3(struct t_reg_w *t) { return t->calls == 3; }
static int t_reg_w_err2(struct t_reg_w *t) { return t->w.errors == 2; }
static int t_reg_w_calls4(struct t_reg_w *t) { return t->calls == 4; }
static int t_reg_w_calls_n(struct t_reg_w *t)
{
	return t->calls >= t->want_calls;
}
static int t_reg_w_errors_n(struct t_reg_w *t)
{
	return t->w.errors >= t->want_errors;
}
static double t_reg_now_ms(void);
static int t_reg_w_time(struct t_reg_w *t)
{
	return t_reg_now_ms() >= t->until_ms;
}

/* Runs the loop for <ms> milliseconds. */
static void t_reg_w_idle(struct t_reg_w *t, double ms)
{
	t->until_ms = t_reg_now_ms() + ms;
	CHECK(t_reg_w_run(t, t_reg_w_time));
}

TEST(watch_reloads_keeps_the_last_good_and_recovers)
{
	static const char v1[] =
		"services: [{name: a, ports: [{port: 1}]}]\n";
	static const char v2[] =
		"services: [{name: a, ports: [{port: 1}]},\n"
		"           {name: b, ports: [{port: 1}]}]\n";
	static const char bad[] =
		"services: [{name: a, ports: [{port: 1}]},\n"
		"           {name: b, ports: [{port: 0}]}]\n";
	static const char v3[] =
		"services: [{name: c, ports: [{port: 1}]}]\n";
	struct t_reg_w *t = mem_calloc(1, sizeof(*t));
	char err[256] = "", want[256];
	int oldfd;

	REQUIRE(t != NULL);
	oldfd = log_set_fd(-1);    /* the warnings are expected */
	snprintf(t->path, sizeof(t->path), "/tmp/t_registry_%d.yaml",
	         (int)getpid());
	loop_timer_init(&t->check, t_reg_w_check);
	loop_timer_init(&t->guard, t_reg_w_guard);
	REQUIRE(loop_init(&t->loop, err, sizeof(err)) == 0);

	/* a missing or broken file fails the start */
	unlink(t->path);
	CHECK(registry_watch_start(&t->w, &t->loop, t->path, 100, t_reg_w_cb,
	                           t, err, sizeof(err)) == -1);
	CHECK(strstr(err, "No such file") != NULL);
	REQUIRE(t_reg_w_write(t, bad) == 0);
	CHECK(registry_watch_start(&t->w, &t->loop, t->path, 100, t_reg_w_cb,
	                           t, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s:2:37: port must be an integer "
	         "between 1 and 65535", t->path);
	CHECK_STR(err, want);

	REQUIRE(t_reg_w_write(t, v1) == 0);
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 100,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	REQUIRE(t->w.current != NULL);
	CHECK(t->w.current->generation == 1 && t->w.loads == 1);
	CHECK(t->w.current->nservices == 1 && t->calls == 0);
	t->calls = 1;              /* count the first load as call 1 */

	/* a good change */
	REQUIRE(t_reg_w_write(t, v2) == 0);
	CHECK(t_reg_w_run(t, t_reg_w_calls2));
	REQUIRE(t->got != NULL && t->got == t->w.current);
	CHECK(t->got->generation == 2 && t->got->nservices == 2);
	CHECK(t->w.loads == 2 && t->w.errors == 0);

	/* a broken change: counted, previous kept */
	REQUIRE(t_reg_w_write(t, bad) == 0);
	CHECK(t_reg_w_run(t, t_reg_w_err1));
	CHECK(t->calls == 2 && t->w.current == t->got);
	CHECK(t->w.current->generation == 2);
	CHECK_STR(t->w.last_error, want);

	/* the fix */
	REQUIRE(t_reg_w_write(t, v3) == 0);
	CHECK(t_reg_w_run(t, t_reg_w_calls3));
	REQUIRE(t->w.current != NULL);
	CHECK(t->w.current->generation == 3 && t->w.current->nservices == 1);
	CHECK_STR(t->w.current->services[0].name, "c");

	/* the file disappears (kept, counted) and comes back */
	REQUIRE(unlink(t->path) == 0);
	CHECK(t_reg_w_run(t, t_reg_w_err2));
	CHECK(t->w.current != NULL && t->w.current->generation == 3);
	CHECK(strstr(t->w.last_error, "file is gone") != NULL);
	REQUIRE(t_reg_w_write(t, v1) == 0);
	CHECK(t_reg_w_run(t, t_reg_w_calls4));
	CHECK(t->w.current->generation == 4 && t->w.errors == 2);

	registry_watch_stop(&t->w);
	CHECK(t->w.current == NULL);
	registry_watch_stop(&t->w);   /* twice is harmless */
	registry_free(t->got);
	loop_timer_stop(&t->loop, &t->check);
	loop_timer_stop(&t->loop, &t->guard);
	loop_destroy(&t->loop);
	unlink(t->path);
	log_set_fd(oldfd);
	mem_free(t);
}

/* ---- a big generated file ---- */

static double t_reg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

TEST(big_file_1000_services_10000_workloads)
{
	struct buf y, j;
	struct registry *ry = NULL, *rj = NULL;
	char err[256] = "";
	double t0, t1, t2;
	int i;

	buf_init(&y, 8 << 20);
	buf_init(&j, 8 << 20);
	buf_printf(&y, "services:\n");
	buf_printf(&j, "{\"services\":[");
	for (i = 0; i < 1000; i++) {
		buf_printf(&y, "- name: svc-%d\n  namespace: ns-%d\n"
		           "  ports: [{port: 8080, protocol: grpc}, "
		           "{port: 9090}]\n"
		           "  selector: {app: svc-%d, tier: backend}\n"
		           "  routes: [{name: get, method: GET, "
		           "path_prefix: /, retryable: true, timeout: 1s}]\n",
		           i, i % 10, i);
		buf_printf(&j, "%s{\"name\":\"svc-%d\",\"namespace\":\"ns-%d\","
		           "\"ports\":[{\"port\":8080,\"protocol\":\"grpc\"},"
		           "{\"port\":9090}],\"selector\":{\"app\":\"svc-%d\","
		           "\"tier\":\"backend\"},\"routes\":[{\"name\":\"get\","
		           "\"method\":\"GET\",\"path_prefix\":\"/\","
		           "\"retryable\":true,\"timeout\":\"1s\"}]}\n",
		           i ? "," : "", i, i % 10, i);
	}
	buf_printf(&y, "workloads:\n");
	buf_printf(&j, "],\"workloads\":[");
	for (i = 0; i < 10000; i++) {
		int s = i % 1000;

		buf_printf(&y, "- name: svc-%d-%d\n  namespace: ns-%d\n"
		           "  service_account: svc-%d\n"
		           "  addresses: [10.%d.%d.%d]\n"
		           "  labels: {app: svc-%d, tier: backend, "
		           "pod-template-hash: h%d}\n",
		           s, i / 1000, s % 10, s, i / 65536, (i / 256) % 256,
		           i % 256, s, i);
		buf_printf(&j, "%s{\"name\":\"svc-%d-%d\",\"namespace\":"
		           "\"ns-%d\",\"service_account\":\"svc-%d\","
		           "\"addresses\":[\"10.%d.%d.%d\"],\"labels\":{\"app\":"
		           "\"svc-%d\",\"tier\":\"backend\","
		           "\"pod-template-hash\":\"h%d\"}}\n",
		           i ? "," : "", s, i / 1000, s % 10, s, i / 65536,
		           (i / 256) % 256, i % 256, s, i);
	}
	buf_printf(&j, "]}");
	REQUIRE(buf_len(&y) > 1000000 && buf_len(&j) > 1000000);

	t0 = t_reg_now_ms();
	CHECK(registry_parse(buf_data(&y), buf_len(&y), "big.yaml", 0, &ry,
	                     err, sizeof(err)) == 0);
	t1 = t_reg_now_ms();
	CHECK(registry_parse(buf_data(&j), buf_len(&j), "big.json", 0, &rj,
	                     err, sizeof(err)) == 0);
	t2 = t_reg_now_ms();
	CHECK_STR(err, "");
	printf("# big registry (%zu bytes YAML, %zu bytes JSON): YAML %.1f ms,"
	       " JSON %.1f ms\n", buf_len(&y), buf_len(&j), t1 - t0, t2 - t1);
	REQUIRE(ry && rj);
	CHECK(ry->nservices == 1000 && ry->nworkloads == 10000);
	/* each service selects its 10 workloads on both ports */
	CHECK(ry->nendpoints == 20000);
	CHECK(ry->services[0].ports[0].neps == 10);
	CHECK(t_reg_equal(ry, rj));
	registry_free(ry);
	registry_free(rj);
	buf_free(&y);
	buf_free(&j);
}

/* ---- a watched directory of fragments ---- */

/* A fresh t_reg_w on a new directory /tmp/t_registry_dir_PID_<tag>. */
static struct t_reg_w *t_dir_new(const char *tag)
{
	struct t_reg_w *t = mem_calloc(1, sizeof(*t));
	char err[256];

	if (!t)
		return NULL;
	t->oldfd = log_set_fd(-1);    /* info lines, expected warnings */
	snprintf(t->path, sizeof(t->path), "/tmp/t_registry_dir_%d_%s",
	         (int)getpid(), tag);
	mkdir(t->path, 0700);
	loop_timer_init(&t->check, t_reg_w_check);
	loop_timer_init(&t->guard, t_reg_w_guard);
	if (loop_init(&t->loop, err, sizeof(err)) < 0) {
		log_set_fd(t->oldfd);
		mem_free(t);
		return NULL;
	}
	return t;
}

/* Writes fragment <name> as the recommended way: a hidden temporary file
 * in the same directory, renamed over it. */
static int t_dir_put(struct t_reg_w *t, const char *name, const char *text)
{
	char tmp[300], path[300];
	ssize_t n;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", t->path, name);
	snprintf(path, sizeof(path), "%s/%s", t->path, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	if (n != (ssize_t)strlen(text))
		return -1;
	return rename(tmp, path);
}

static int t_dir_rm(struct t_reg_w *t, const char *name)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/%s", t->path, name);
	return unlink(path);
}

/* Stops the watch and removes the directory with everything in it. */
static void t_dir_done(struct t_reg_w *t)
{
	struct dirent *de;
	DIR *d;

	registry_watch_stop(&t->w);
	registry_free(t->got);
	loop_timer_stop(&t->loop, &t->check);
	loop_timer_stop(&t->loop, &t->guard);
	loop_destroy(&t->loop);
	/* our own directory: files and empty subdirectories only */
	d = opendir(t->path);
	if (d) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				if (unlinkat(dirfd(d), de->d_name, 0) < 0)
					unlinkat(dirfd(d), de->d_name,
					         AT_REMOVEDIR);
		closedir(d);
	}
	CHECK(rmdir(t->path) == 0);
	log_set_fd(t->oldfd);
	mem_free(t);
}

static const char t_dir_a[] =
	"services:\n"
	"- {name: web, ports: [{port: 80, target_port: 8080}],\n"
	"   selector: {app: web}, routes: [{name: r, path_prefix: /}]}\n"
	"workloads:\n"
	"- {name: web-1, addresses: [10.0.0.1], labels: {app: web}}\n";
static const char t_dir_b[] =
	"{\"workloads\": [\n"
	" {\"name\": \"web-2\", \"addresses\": [\"10.0.0.2\"],\n"
	"  \"labels\": {\"app\": \"web\"}},\n"
	" {\"name\": \"api-1\", \"namespace\": \"prod\",\n"
	"  \"addresses\": [\"10.0.1.1\", \"10.0.0.1\"],\n"
	"  \"labels\": {\"app\": \"api\"}}]}\n";
static const char t_dir_c[] =
	"services:\n"
	"- name: api\n"
	"  namespace: prod\n"
	"  ports: [{port: 90, protocol: grpc}]\n"
	"  selector: {app: api}\n"
	"workloads:\n"
	"- {name: web-3, addresses: [10.0.0.1, 10.0.0.3], labels: {app: web}}"
	"\n";
/* the same as one file: a's, b's and c's entries in that order */
static const char t_dir_all[] =
	"services:\n"
	"- {name: web, ports: [{port: 80, target_port: 8080}],\n"
	"   selector: {app: web}, routes: [{name: r, path_prefix: /}]}\n"
	"- {name: api, namespace: prod, ports: [{port: 90, protocol: grpc}],\n"
	"   selector: {app: api}}\n"
	"workloads:\n"
	"- {name: web-1, addresses: [10.0.0.1], labels: {app: web}}\n"
	"- {name: web-2, addresses: [10.0.0.2], labels: {app: web}}\n"
	"- {name: api-1, namespace: prod, addresses: [10.0.1.1, 10.0.0.1],\n"
	"   labels: {app: api}}\n"
	"- {name: web-3, addresses: [10.0.0.1, 10.0.0.3], labels: {app: web}}"
	"\n";

/* A directory holding a.yaml, b.json, c.yml and files to ignore. */
static struct t_reg_w *t_dir_abc(const char *tag)
{
	struct t_reg_w *t = t_dir_new(tag);
	char sub[300];

	if (!t)
		return NULL;
	if (t_dir_put(t, "a.yaml", t_dir_a) < 0 ||
	    t_dir_put(t, "b.json", t_dir_b) < 0 ||
	    t_dir_put(t, "c.yml", t_dir_c) < 0 ||
	    /* ignored: hidden, backups, other suffixes, directories */
	    t_dir_put(t, ".hidden.yaml", "broken: [") < 0 ||
	    t_dir_put(t, "a.yaml~", "broken: [") < 0 ||
	    t_dir_put(t, "notes.txt", "broken: [") < 0 ||
	    t_dir_put(t, "a.yaml.swp", "broken: [") < 0) {
		t_dir_done(t);
		return NULL;
	}
	snprintf(sub, sizeof(sub), "%s/sub.yaml", t->path);
	mkdir(sub, 0700);
	return t;
}

TEST(dir_fragments_equal_one_file)
{
	struct t_reg_w *t = t_dir_abc("eq");
	struct registry *one = t_reg_parse(t_dir_all, 'y');
	const struct registry_service *web;
	char err[256] = "";

	REQUIRE(t != NULL && one != NULL);
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 60000,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
	CHECK(t->w.is_dir && t->w.nfragments == 3);
	CHECK(t->w.fragment_parses == 3 && t->w.loads == 1);
	REQUIRE(t->w.current != NULL);
	CHECK(t->w.current->generation == 1);
	CHECK(t_reg_equal(t->w.current, one));
	/* 10.0.0.1 is in web-1 (a.yaml) and web-3 (c.yml): a's keeps it */
	web = t_reg_find(t->w.current, "web", "default");
	REQUIRE(web != NULL && web->ports[0].neps == 3);
	CHECK_STR(web->ports[0].eps[0].workload->name, "web-1");
	CHECK(web->ports[0].eps[0].port == 8080);
	CHECK(web->nroutes == 1);
	registry_free(one);
	t_dir_done(t);
}

TEST(dir_change_reparses_only_that_fragment)
{
	struct t_reg_w *t = t_dir_abc("chg");
	const struct registry_service *web;
	char err[256] = "", path[300];
	struct timespec t0, t1;
	int fd;

	REQUIRE(t != NULL);
	/* the poll is an hour away: only inotify can see the changes */
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 3600000,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	REQUIRE(t->w.fragment_parses == 3);
	t->calls = 1;

	/* b.json rewritten (write + rename): only it is parsed again */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	REQUIRE(t_dir_put(t, "b.json", "{\"workloads\": [{\"name\": "
	                  "\"web-9\", \"addresses\": [\"10.0.0.9\"], "
	                  "\"labels\": {\"app\": \"web\"}}]}") == 0);
	t->want_calls = 2;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# write+rename seen and reloaded in %.2f ms\n",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	CHECK(t->w.fragment_parses == 4);
	REQUIRE(t->got != NULL && t->got == t->w.current);
	CHECK(t->got->generation == 2 && t->got->nworkloads == 3);
	web = t_reg_find(t->got, "web", "default");
	REQUIRE(web != NULL && web->ports[0].neps == 3);   /* .1 .3 .9 */
	CHECK(t_reg_find(t->got, "api", "prod")->ports[0].neps == 0);

	/* a new fragment: parsed alone */
	REQUIRE(t_dir_put(t, "d.yaml", "workloads:\n- {name: api-2, "
	                  "namespace: prod, addresses: [10.0.1.2], labels: "
	                  "{app: api}}\n") == 0);
	t->want_calls = 3;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t->w.fragment_parses == 5 && t->w.nfragments == 4);
	CHECK(t->w.current->generation == 3);
	CHECK(t_reg_find(t->w.current, "api", "prod")->ports[0].neps == 1);

	/* removed: nothing parsed, its entries gone */
	REQUIRE(t_dir_rm(t, "d.yaml") == 0);
	t->want_calls = 4;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t->w.fragment_parses == 5 && t->w.nfragments == 3);
	CHECK(t->w.current->generation == 4);
	CHECK(t_reg_find(t->w.current, "api", "prod")->ports[0].neps == 0);

	/* rewritten in place: seen when the writer closes it */
	snprintf(path, sizeof(path), "%s/c.yml", t->path);
	fd = open(path, O_WRONLY | O_TRUNC);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "services: []\n", 13) == 13);
	close(fd);
	t->want_calls = 5;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t->w.fragment_parses == 6);
	CHECK(t->w.current->nservices == 1 && t->w.current->nworkloads == 2);

	/* files that are not fragments change nothing */
	REQUIRE(t_dir_put(t, "notes.txt", "x") == 0);
	REQUIRE(t_dir_put(t, "b.json~", "x") == 0);
	t_reg_w_idle(t, 200);
	CHECK(t->calls == 5 && t->w.errors == 0 &&
	      t->w.fragment_parses == 6);
	t_dir_done(t);
}

TEST(dir_duplicates_across_files_refused)
{
	struct t_reg_w *t = t_dir_abc("dup");
	char err[256] = "", want[512];

	REQUIRE(t != NULL);
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 3600000,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	t->calls = 1;

	/* a workload of a.yaml again in e.yaml */
	REQUIRE(t_dir_put(t, "e.yaml", "workloads:\n"
	                  "- {name: x, addresses: [10.9.9.9]}\n"
	                  "- {name: web-1, addresses: [10.9.9.8]}\n") == 0);
	t->want_errors = 1;
	CHECK(t_reg_w_run(t, t_reg_w_errors_n));
	snprintf(want, sizeof(want), "%s/e.yaml:3:10: duplicate workload "
	         "\"web-1\" in namespace \"default\" (first at %s/a.yaml:5)",
	         t->path, t->path);
	CHECK_STR(t->w.last_error, want);
	CHECK(t->calls == 1 && t->w.current->generation == 1);
	CHECK(t->w.current->nworkloads == 4);

	/* a service of c.yml again in 0.yaml (sorted first: c's is the
	 * later one) */
	REQUIRE(t_dir_rm(t, "e.yaml") == 0);
	t->want_calls = 2;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	REQUIRE(t_dir_put(t, "0.yaml", "services:\n"
	                  "  - name: api\n    namespace: prod\n"
	                  "    ports: [{port: 1}]\n") == 0);
	t->want_errors = 2;
	CHECK(t_reg_w_run(t, t_reg_w_errors_n));
	snprintf(want, sizeof(want), "%s/c.yml:2:9: duplicate service "
	         "\"api\" in namespace \"prod\" (first at %s/0.yaml:2)",
	         t->path, t->path);
	CHECK_STR(t->w.last_error, want);
	CHECK(t->calls == 2 && t->w.current->generation == 2);
	CHECK(t->w.current->nservices == 2);

	/* the same name in another namespace is fine */
	REQUIRE(t_dir_put(t, "0.yaml", "services:\n"
	                  "  - name: api\n    namespace: test\n"
	                  "    ports: [{port: 1}]\n") == 0);
	t->want_calls = 3;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t->w.current->nservices == 3 && t->w.errors == 2);
	t_dir_done(t);
}

TEST(dir_broken_fragment_refused_then_fixed)
{
	struct t_reg_w *t = t_dir_abc("bad");
	char err[256] = "", want[512];
	uint64_t parses;

	REQUIRE(t != NULL);
	/* a broken fragment fails the start, with its position */
	REQUIRE(t_dir_put(t, "b.json", "{\"workloads\": [\n"
	                  " {\"name\": \"w\", \"addresses\": [\"1.2.3\"]}]}"
	                  "\n") == 0);
	CHECK(registry_watch_start(&t->w, &t->loop, t->path, 3600000,
	                           t_reg_w_cb, t, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s/b.json:2:30: invalid IP address "
	         "\"1.2.3\"", t->path);
	CHECK_STR(err, want);
	CHECK(t->w.priv_ == NULL && t->w.current == NULL);

	REQUIRE(t_dir_put(t, "b.json", t_dir_b) == 0);
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 100,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	t->calls = 1;
	REQUIRE(t_dir_put(t, "c.yml", "services:\n- name: api\n"
	                  "  ports: [{port: 99999}]\n") == 0);
	t->want_errors = 1;
	CHECK(t_reg_w_run(t, t_reg_w_errors_n));
	snprintf(want, sizeof(want), "%s/c.yml:3:18: port must be an "
	         "integer between 1 and 65535", t->path);
	CHECK_STR(t->w.last_error, want);
	CHECK(t->calls == 1 && t->w.current->generation == 1);
	CHECK(t->w.current->nservices == 2);
	/* the poll (100 ms) does not parse the broken version again */
	parses = t->w.fragment_parses;
	t_reg_w_idle(t, 350);
	CHECK(t->w.fragment_parses == parses && t->w.errors == 1);

	/* another fragment changes meanwhile: still refused, same error */
	REQUIRE(t_dir_put(t, "a.yaml", t_dir_a) == 0);
	t->want_errors = 2;
	CHECK(t_reg_w_run(t, t_reg_w_errors_n));
	CHECK_STR(t->w.last_error, want);
	CHECK(t->w.fragment_parses == parses + 1);

	/* fixed */
	REQUIRE(t_dir_put(t, "c.yml", t_dir_c) == 0);
	t->want_calls = 2;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t->w.current->generation == 2 && t->w.errors == 2);
	CHECK(t->w.current->nservices == 2);

	/* an emptied directory is refused too */
	REQUIRE(t_dir_rm(t, "a.yaml") == 0 && t_dir_rm(t, "b.json") == 0 &&
	        t_dir_rm(t, "c.yml") == 0);
	t->want_errors = 3;
	CHECK(t_reg_w_run(t, t_reg_w_errors_n));
	CHECK(strstr(t->w.last_error, "no registry file") != NULL);
	CHECK(t->w.current->generation == 2 && t->w.nfragments == 0);
	t_dir_done(t);
}

TEST(dir_1000_fragments_assemble_time)
{
	struct t_reg_w *t = t_dir_new("big");
	char err[256] = "", name[64];
	struct buf b;
	double t0, t1, t2;
	uint64_t first_ns;
	int i, j;

	REQUIRE(t != NULL);
	buf_init(&b, 1 << 16);
	for (i = 0; i < 1000; i++) {
		buf_reset(&b);
		buf_printf(&b, "services:\n- name: svc-%d\n  namespace: bench\n"
		           "  ports: [{port: 80, target_port: 8080}]\n"
		           "  selector: {app: svc-%d}\nworkloads:\n", i, i);
		for (j = 0; j < 10; j++)
			buf_printf(&b, "- {name: svc-%d-%d, namespace: bench, "
			           "addresses: [127.1.%d.%d], labels: "
			           "{app: svc-%d}, meshed: false}\n", i, j,
			           (i * 10 + j) / 250, (i * 10 + j) % 250 + 1,
			           i);
		snprintf(name, sizeof(name), "svc-%04d.yaml", i);
		REQUIRE(buf_append(&b, "", 1) == 0);
		REQUIRE(t_dir_put(t, name, buf_data(&b)) == 0);
	}
	t0 = t_reg_now_ms();
	REQUIRE(registry_watch_start(&t->w, &t->loop, t->path, 3600000,
	                             t_reg_w_cb, t, err, sizeof(err)) == 0);
	t1 = t_reg_now_ms();
	first_ns = t->w.last_assemble_ns;
	CHECK(t->w.current->nservices == 1000);
	CHECK(t->w.current->nworkloads == 10000);
	CHECK(t->w.current->nendpoints == 10000);
	CHECK(t->w.fragment_parses == 1000);
	t->calls = 1;

	/* a few changes of one fragment: the first reuses nothing yet, the
	 * later ones reuse the scratch and the previous registry's memory */
	printf("# 1,000 fragments (10,000 workloads): first load %.1f ms "
	       "(assembly %.2f ms); one fragment changed, reload after the "
	       "rename / assembly:", t1 - t0, (double)first_ns / 1e6);
	for (i = 0; i < 5; i++) {
		buf_reset(&b);
		buf_printf(&b, "services:\n- name: svc-500\n"
		           "  namespace: bench\n  ports: [{port: 80}]\n"
		           "  selector: {app: svc-500}\nworkloads:\n"
		           "- {name: n, namespace: bench, addresses: "
		           "[127.2.0.%d], labels: {app: svc-500}}\n", i + 1);
		REQUIRE(buf_append(&b, "", 1) == 0);
		t2 = t_reg_now_ms();
		REQUIRE(t_dir_put(t, "svc-0500.yaml", buf_data(&b)) == 0);
		t->want_calls = 2 + i;
		CHECK(t_reg_w_run(t, t_reg_w_calls_n));
		printf(" %.2f / %.2f ms", t_reg_now_ms() - t2,
		       (double)t->w.last_assemble_ns / 1e6);
		registry_free(t->got);   /* as a consumer would, at once */
		t->got = NULL;
	}
	printf("\n");
	CHECK(t->w.fragment_parses == 1005);
	CHECK(t->w.current->nendpoints == 9991);
	CHECK(t->w.current->generation == 6);
	buf_free(&b);
	t_dir_done(t);
}

TEST(dir_allocation_failures_are_clean)
{
	struct t_reg_w *t = t_dir_abc("oom");
	uint64_t n;
	int ok = 0;

	REQUIRE(t != NULL);
	for (n = 1; n < 400 && !ok; n++) {
		char err[256] = "";
		int rc;

		mem_fail_after(n);
		rc = registry_watch_start(&t->w, &t->loop, t->path, 3600000,
		                          t_reg_w_cb, t, err, sizeof(err));
		mem_fail_reset();
		if (rc == 0) {
			ok = 1;
			CHECK(t->w.current->nworkloads == 4);
		} else {
			CHECK(t->w.current == NULL && t->w.priv_ == NULL);
			CHECK(strstr(err, "out of memory") != NULL);
		}
	}
	CHECK(ok && n > 3);
	/* a change under failing allocations: refused or applied, never
	 * half done; then a clean change applies */
	for (n = 1; n < 60; n++) {
		REQUIRE(t_dir_put(t, "b.json", n % 2 ? t_dir_b :
		                  "{\"workloads\": []}") == 0);
		mem_fail_after(n);
		t_reg_w_idle(t, 3);
		mem_fail_reset();
	}
	REQUIRE(t_dir_put(t, "d.yaml", "workloads: [{name: z, addresses: "
	                  "[10.9.9.9]}]\n") == 0);
	t->want_calls = t->calls + 1;
	CHECK(t_reg_w_run(t, t_reg_w_calls_n));
	CHECK(t_reg_find(t->w.current, "web", "default") != NULL);
	CHECK(t->w.current->nworkloads == 5);   /* a, b (2), c, d */
	t_dir_done(t);
}
