/*
 * t_destination: the pure parts of the Destination service: endpoint
 * order, the merge-walk diff, and the view comparisons that decide which
 * streams a new registry snapshot must tell.
 */
#include <string.h>

#include "harness.h"
#include "controller/destination.h"
#include "controller/registry.h"
#include "core/mem.h"

static struct registry_label t_lab_v1[] = { { "app", "web" },
                                            { "version", "v1" } };
static struct registry_label t_lab_v2[] = { { "app", "web" },
                                            { "version", "v2" } };

static void t_wl(struct registry_workload *w, const char *name,
                 struct registry_label *l, uint32_t weight)
{
	memset(w, 0, sizeof(*w));
	w->name = name;
	w->ns = "default";
	w->service_account = "web";
	w->labels = l;
	w->nlabels = 2;
	w->weight = weight;
	w->meshed = 1;
}

static void t_ep4(struct registry_endpoint *e, uint8_t last, uint16_t port,
                  const struct registry_workload *w)
{
	memset(e, 0, sizeof(*e));
	e->ip[0] = 10;
	e->ip[3] = last;
	e->iplen = 4;
	e->port = port;
	e->workload = w;
}

TEST(ep_cmp_orders_v4_before_v6_then_bytes_then_port)
{
	struct registry_workload w;
	struct registry_endpoint a, b;

	t_wl(&w, "a", t_lab_v1, 1);
	t_ep4(&a, 1, 80, &w);
	t_ep4(&b, 2, 80, &w);
	CHECK(destination_ep_cmp(&a, &b) < 0);
	CHECK(destination_ep_cmp(&b, &a) > 0);
	b = a;
	CHECK(destination_ep_cmp(&a, &b) == 0);
	b.port = 81;
	CHECK(destination_ep_cmp(&a, &b) < 0);
	memset(b.ip, 0, sizeof(b.ip));   /* "::" sorts after any IPv4 */
	b.iplen = 16;
	CHECK(destination_ep_cmp(&a, &b) < 0);
}

TEST(ep_same_compares_contents_not_pointers)
{
	struct registry_workload w1, w2;
	struct registry_endpoint a, b;
	struct registry_label l[2] = { { "app", "web" }, { "version", "v1" } };

	t_wl(&w1, "web-1", t_lab_v1, 10000);
	t_wl(&w2, "web-1", l, 10000);   /* equal, other memory */
	t_ep4(&a, 1, 80, &w1);
	t_ep4(&b, 1, 80, &w2);
	CHECK(destination_ep_same(&a, &b));
	w2.weight = 5;
	CHECK(!destination_ep_same(&a, &b));
	w2.weight = 10000;
	w2.labels = t_lab_v2;
	CHECK(!destination_ep_same(&a, &b));
	w2.labels = l;
	w2.meshed = 0;
	CHECK(!destination_ep_same(&a, &b));
	w2.meshed = 1;
	w2.service_account = "other";
	CHECK(!destination_ep_same(&a, &b));
	w2.service_account = "web";
	w2.name = "web-9";
	CHECK(!destination_ep_same(&a, &b));
}

TEST(diff_adds_removes_and_changes)
{
	struct registry_workload w, wchg;
	struct registry_endpoint o[4], n[4];
	uint32_t rm[4], add[4];
	size_t nrm = 99, nadd = 99;

	t_wl(&w, "w", t_lab_v1, 10000);
	t_wl(&wchg, "w", t_lab_v1, 20);
	/* old: .1 .2 .3 .5   new: .2 .3(weight changed) .4 .5 */
	t_ep4(&o[0], 1, 80, &w);
	t_ep4(&o[1], 2, 80, &w);
	t_ep4(&o[2], 3, 80, &w);
	t_ep4(&o[3], 5, 80, &w);
	t_ep4(&n[0], 2, 80, &w);
	t_ep4(&n[1], 3, 80, &wchg);
	t_ep4(&n[2], 4, 80, &w);
	t_ep4(&n[3], 5, 80, &w);
	destination_diff(o, 4, n, 4, 0, rm, &nrm, add, &nadd);
	REQUIRE(nrm == 1);
	CHECK(rm[0] == 0);
	REQUIRE(nadd == 2);
	CHECK(add[0] == 1 && add[1] == 2);
	/* force: every address still present is re-sent */
	destination_diff(o, 4, n, 4, 1, rm, &nrm, add, &nadd);
	CHECK(nrm == 1);
	CHECK(nadd == 4);
}

TEST(diff_edges_empty_and_disjoint)
{
	struct registry_workload w;
	struct registry_endpoint o[2], n[2];
	uint32_t rm[2], add[2];
	size_t nrm, nadd;

	t_wl(&w, "w", t_lab_v1, 1);
	t_ep4(&o[0], 1, 80, &w);
	t_ep4(&o[1], 2, 80, &w);
	t_ep4(&n[0], 3, 80, &w);
	t_ep4(&n[1], 4, 80, &w);
	destination_diff(o, 2, n, 0, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == 2 && nadd == 0);
	destination_diff(o, 0, n, 2, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == 0 && nadd == 2);
	destination_diff(o, 2, n, 2, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == 2 && nadd == 2);
	CHECK(rm[0] == 0 && rm[1] == 1 && add[0] == 0 && add[1] == 1);
	destination_diff(o, 2, o, 2, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == 0 && nadd == 0);
	destination_diff(NULL, 0, NULL, 0, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == 0 && nadd == 0);
}

TEST(diff_large_sets_match_brute_force)
{
	enum { N = 3000 };
	struct registry_workload w[3];
	struct registry_endpoint *o = mem_calloc(N, sizeof(*o));
	struct registry_endpoint *n = mem_calloc(N, sizeof(*n));
	uint32_t *rm = mem_calloc(N, sizeof(*rm));
	uint32_t *add = mem_calloc(N, sizeof(*add));
	size_t no = 0, nn = 0, nrm, nadd, i, want_rm = 0, want_add = 0;
	uint32_t x = 12345;

	REQUIRE(o && n && rm && add);
	t_wl(&w[0], "a", t_lab_v1, 1);
	t_wl(&w[1], "a", t_lab_v1, 2);
	t_wl(&w[2], "a", t_lab_v1, 1);   /* same contents as w[0] */
	for (i = 0; i < N; i++) {
		int in_old, in_new;

		x = x * 1103515245u + 12345u;
		in_old = (x >> 8) % 3 != 0;
		in_new = (x >> 12) % 3 != 0;
		if (in_old) {
			o[no].ip[0] = 10;
			o[no].ip[2] = (uint8_t)(i >> 8);
			o[no].ip[3] = (uint8_t)i;
			o[no].iplen = 4;
			o[no].port = 80;
			o[no++].workload = &w[0];
		}
		if (in_new) {
			n[nn] = o[no ? no - 1 : 0];
			n[nn].ip[0] = 10;
			n[nn].ip[2] = (uint8_t)(i >> 8);
			n[nn].ip[3] = (uint8_t)i;
			n[nn].iplen = 4;
			n[nn].port = 80;
			n[nn].workload = ((x >> 16) & 1) ? &w[1] : &w[2];
			nn++;
		}
		want_rm += in_old && !in_new;
		want_add += in_new && (!in_old || ((x >> 16) & 1));
	}
	destination_diff(o, no, n, nn, 0, rm, &nrm, add, &nadd);
	CHECK(nrm == want_rm);
	CHECK(nadd == want_add);
	for (i = 1; i < nrm; i++)
		CHECK(rm[i] > rm[i - 1]);
	for (i = 1; i < nadd; i++)
		CHECK(add[i] > add[i - 1]);
	mem_free(o);
	mem_free(n);
	mem_free(rm);
	mem_free(add);
}

static const char t_reg_a[] =
	"services:\n"
	"  - name: web\n"
	"    ports: [{port: 8080, target_port: 80}, {port: 9, protocol: opaque}]\n"
	"    selector: {app: web}\n"
	"    routes:\n"
	"      - {name: r1, path_prefix: /a, retryable: true}\n"
	"workloads:\n"
	"  - {name: w1, addresses: [10.0.0.3, \"fd00::1\"], labels: {app: web}}\n"
	"  - {name: w2, addresses: [10.0.0.1], labels: {app: web}}\n";

/* w2 moves, w3 appears, w1 changes weight; route r1 loses retryable */
static const char t_reg_b[] =
	"services:\n"
	"  - name: web\n"
	"    ports: [{port: 8080, target_port: 80}, {port: 9, protocol: opaque}]\n"
	"    selector: {app: web}\n"
	"    routes:\n"
	"      - {name: r1, path_prefix: /a}\n"
	"workloads:\n"
	"  - {name: w1, addresses: [10.0.0.3, \"fd00::1\"], labels: {app: web},"
	" weight: 7}\n"
	"  - {name: w2, addresses: [10.0.0.2], labels: {app: web}}\n"
	"  - {name: w3, addresses: [10.0.0.9], labels: {app: web}}\n";

TEST(registry_snapshots_diff_and_compare)
{
	struct registry *a = NULL, *b = NULL, *a2 = NULL;
	const struct registry_service *sa, *sb, *sa2;
	const struct registry_port *pa, *pb, *pa2;
	uint32_t rm[8], add[8];
	size_t nrm, nadd, i;
	char err[256];

	REQUIRE(registry_parse(t_reg_a, sizeof(t_reg_a) - 1, "a.yaml", 'y',
	                       &a, err, sizeof(err)) == 0);
	REQUIRE(registry_parse(t_reg_b, sizeof(t_reg_b) - 1, "b.yaml", 'y',
	                       &b, err, sizeof(err)) == 0);
	REQUIRE(registry_parse(t_reg_a, sizeof(t_reg_a) - 1, "a.yaml", 'y',
	                       &a2, err, sizeof(err)) == 0);
	sa = registry_find(a, STR_LIT("web"), STR_LIT("default"));
	sb = registry_find(b, STR_LIT("web"), STR_LIT("default"));
	sa2 = registry_find(a2, STR_LIT("web"), STR_LIT("default"));
	REQUIRE(sa && sb && sa2);
	pa = registry_service_port(sa, 8080);
	pb = registry_service_port(sb, 8080);
	pa2 = registry_service_port(sa2, 8080);
	REQUIRE(pa && pb && pa2);
	/* the registry's order is the diff's order */
	for (i = 1; i < pb->neps; i++)
		CHECK(destination_ep_cmp(&pb->eps[i - 1], &pb->eps[i]) < 0);
	REQUIRE(pa->neps == 3 && pb->neps == 4);
	destination_diff(pa->eps, pa->neps, pb->eps, pb->neps, 0, rm, &nrm,
	                 add, &nadd);
	REQUIRE(nrm == 1);
	CHECK(pa->eps[rm[0]].ip[3] == 1);         /* 10.0.0.1 gone */
	REQUIRE(nadd == 4);                       /* .2 .3(w) .9 fd00::1(w) */
	CHECK(pb->eps[add[0]].ip[3] == 2);
	CHECK(pb->eps[add[3]].iplen == 16);
	/* equal files parse to equal views; changed ones do not */
	CHECK(destination_port_same(pa, pa2));
	CHECK(!destination_port_same(pa, pb));
	CHECK(!destination_port_same(pa, NULL));
	CHECK(destination_port_same(NULL, NULL));
	CHECK(!destination_port_same(pa, registry_service_port(sa, 9)));
	CHECK(destination_profile_same(sa, pa, sa2, pa2));
	CHECK(!destination_profile_same(sa, pa, sb, pb));
	CHECK(!destination_profile_same(sa, pa, sa2,
	                                registry_service_port(sa2, 9)));
	CHECK(!destination_profile_same(sa, pa, NULL, NULL));
	CHECK(destination_profile_same(NULL, NULL, NULL, NULL));
	registry_free(a);
	registry_free(b);
	registry_free(a2);
}
