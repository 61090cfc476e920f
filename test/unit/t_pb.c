/*
 * Unit tests for core/pb and core/api_pb.
 *
 * Correctness against the reference runtime: test/unit/pb_vectors.h holds
 * encodings made by Python's protobuf (gen_pb_vectors.py) and the builders
 * below hold the values they stand for. We check that
 *  - every ok vector decodes to the builder's value and every bad one is
 *    refused;
 *  - the builder's value encodes to bytes that decode back to it, and for
 *    the "good" vectors (Python's deterministic, canonical output) to the
 *    very same bytes. Byte equality is a bonus, not the criterion: two
 *    correct encoders may order map entries differently, so the criterion
 *    is decoding both ways. The other way (Python decoding meshd's bytes)
 *    runs in test/e2e/pb_python.sh: with MESHD_PB_DUMP=<file> set, the
 *    vector test writes meshd's encodings there as "name type hex" lines.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pb_vectors.h"
#include "core/api_pb.h"
#include "core/buf.h"
#include "core/pb.h"

static char arena_mem[256 * 1024];

#define S(lit) STR_LIT(lit)
#define B(arr) str_make((const char *)(arr), sizeof(arr))

static const uint8_t ip4_10_0_0_1[] = { 10, 0, 0, 1 };
static const uint8_t ip4_1_2_3_4[] = { 1, 2, 3, 4 };
static const uint8_t ip4_192_168_1_20[] = { 192, 168, 1, 20 };
static const uint8_t ip6_fd_1[] = { 0xfd, 0, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 1 };

/* --- the values of the vectors (keep in step with gen_pb_vectors.py) --- */

static void b_get_destination(void *m)
{
	struct api_pb_get_destination *g = m;

	g->scheme = S("k8s");
	g->path = S("web.emojivoto.svc.cluster.local:8080");
	g->context_token = S("{\"ns\":\"emojivoto\",\"pod\":\"vote-bot-1\"}");
}

static void b_get_destination_empty(void *m)
{
	(void)m;
}

static void b_get_destination_long(void *m)
{
	static char xs[300];
	struct api_pb_get_destination *g = m;

	memset(xs, 'x', sizeof(xs));
	g->scheme = S("registry");
	g->path = S("\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "de-\xe2\x98\x83.ns:80");
	g->context_token = str_make(xs, sizeof(xs));
}

static void b_update_add(void *m)
{
	static struct api_pb_label l0[] = {
		{ STR_INIT("pod"), STR_INIT("web-1") },
		{ STR_INIT("zone"), STR_INIT("a") },
	};
	static struct api_pb_label set_l[] = {
		{ STR_INIT("namespace"), STR_INIT("emojivoto") },
		{ STR_INIT("service"), STR_INIT("web") },
	};
	static struct api_pb_weighted_addr a[2];
	struct api_pb_update *u = m;

	memset(a, 0, sizeof(a));
	a[0].has_addr = true;
	a[0].addr.ip = B(ip4_10_0_0_1);
	a[0].addr.port = 8080;
	a[0].weight = 10000;
	a[0].metric_labels = l0;
	a[0].n_metric_labels = 2;
	a[0].has_tls_identity = true;
	a[0].tls_identity.strategy = API_PB_TLS_IDENTITY_DNS_LIKE;
	a[0].tls_identity.dns_like_identity.name =
		S("web.emojivoto.serviceaccount.identity.meshd.cluster.local");
	a[0].has_protocol_hint = true;
	a[0].protocol_hint.protocol = API_PB_PROTOCOL_HINT_H2;
	a[1].has_addr = true;
	a[1].addr.ip = B(ip6_fd_1);
	a[1].addr.port = 65535;
	a[1].has_protocol_hint = true;
	a[1].protocol_hint.protocol = API_PB_PROTOCOL_HINT_OPAQUE;
	u->update = API_PB_UPDATE_ADD;
	u->add.addrs = a;
	u->add.n_addrs = 2;
	u->add.metric_labels = set_l;
	u->add.n_metric_labels = 2;
}

static void b_update_remove(void *m)
{
	static struct api_pb_tcp_address a[3];
	struct api_pb_update *u = m;

	memset(a, 0, sizeof(a));
	a[0].ip = B(ip4_10_0_0_1);
	a[0].port = 8080;
	a[1].ip = B(ip6_fd_1);
	a[1].port = 1;
	u->update = API_PB_UPDATE_REMOVE;
	u->remove.addrs = a;
	u->remove.n_addrs = 3;
}

static void b_update_no_endpoints(void *m)
{
	((struct api_pb_update *)m)->update = API_PB_UPDATE_NO_ENDPOINTS;
}

static void b_update_no_endpoints_exists(void *m)
{
	struct api_pb_update *u = m;

	u->update = API_PB_UPDATE_NO_ENDPOINTS;
	u->no_endpoints.exists = true;
}

static void b_update_add_empty(void *m)
{
	((struct api_pb_update *)m)->update = API_PB_UPDATE_ADD;
}

static void b_profile_routes(void *m)
{
	static struct api_pb_label l0[] = {
		{ STR_INIT("route"), STR_INIT("api") },
	};
	static struct api_pb_label l1[] = {
		{ STR_INIT("kind"), STR_INIT("probe") },
		{ STR_INIT("route"), STR_INIT("health") },
	};
	static struct api_pb_route r[2];
	struct api_pb_destination_profile *p = m;

	memset(r, 0, sizeof(r));
	r[0].has_condition = true;
	r[0].condition.has_path = true;
	r[0].condition.path.kind = API_PB_PATH_MATCH_PREFIX;
	r[0].condition.path.prefix = S("/api/");
	r[0].condition.method = S("GET");
	r[0].metrics_labels = l0;
	r[0].n_metrics_labels = 1;
	r[0].is_retryable = true;
	r[0].has_timeout = true;
	r[0].timeout.seconds = 1;
	r[0].timeout.nanos = 500000000;
	r[1].has_condition = true;
	r[1].condition.has_path = true;
	r[1].condition.path.kind = API_PB_PATH_MATCH_EXACT;
	r[1].condition.path.exact = S("/healthz");
	r[1].metrics_labels = l1;
	r[1].n_metrics_labels = 2;
	p->fully_qualified_name = S("web.emojivoto.svc.cluster.local");
	p->routes = r;
	p->n_routes = 2;
	p->has_retry_budget = true;
	p->retry_budget.retry_ratio = 0.2f;
	p->retry_budget.min_retries_per_second = 10;
	p->retry_budget.has_ttl = true;
	p->retry_budget.ttl.seconds = 10;
}

static void b_profile_endpoint(void *m)
{
	static struct api_pb_label l[] = {
		{ STR_INIT("pod"), STR_INIT("db-0") },
	};
	struct api_pb_destination_profile *p = m;
	struct api_pb_weighted_addr *a = &p->endpoint;

	p->opaque_protocol = true;
	p->has_endpoint = true;
	a->has_addr = true;
	a->addr.ip = B(ip4_192_168_1_20);
	a->addr.port = 3306;
	a->weight = 4294967295u;
	a->metric_labels = l;
	a->n_metric_labels = 1;
	a->has_tls_identity = true;
	a->tls_identity.strategy = API_PB_TLS_IDENTITY_DNS_LIKE;
	a->tls_identity.dns_like_identity.name =
		S("db.data.serviceaccount.identity.meshd.cluster.local");
	a->has_protocol_hint = true;
	a->protocol_hint.protocol = API_PB_PROTOCOL_HINT_OPAQUE;
}

static void b_profile_edge_values(void *m)
{
	static struct api_pb_route r[1];
	struct api_pb_destination_profile *p = m;

	memset(r, 0, sizeof(r));
	r[0].has_condition = true;
	r[0].condition.has_path = true;
	r[0].condition.path.kind = API_PB_PATH_MATCH_EXACT;
	r[0].has_timeout = true;
	r[0].timeout.seconds = -5;
	r[0].timeout.nanos = -1;
	p->routes = r;
	p->n_routes = 1;
	p->has_retry_budget = true;
	p->retry_budget.retry_ratio = -0.0f;
	p->retry_budget.has_ttl = true;
	p->retry_budget.ttl.seconds = INT64_MIN;
	p->retry_budget.ttl.nanos = INT32_MIN;
}

static void b_raw_unknown_fields(void *m)
{
	struct api_pb_get_destination *g = m;

	g->scheme = S("k8s");
	g->path = S("a:1");
}

static void b_raw_last_wins(void *m)
{
	struct api_pb_get_destination *g = m;

	g->scheme = S("k8s");
	g->path = S("las");
}

static void b_raw_merge_submessage(void *m)
{
	struct api_pb_weighted_addr *a = m;

	a->has_addr = true;
	a->addr.ip = B(ip4_1_2_3_4);
	a->addr.port = 80;
	a->weight = 7;
}

static void b_raw_oneof_switch(void *m)
{
	b_update_no_endpoints_exists(m);
}

static void b_raw_varint_forms(void *m)
{
	struct api_pb_route *r = m;

	r->is_retryable = true;
	r->has_timeout = true;
	r->timeout.nanos = -1;
}

static void b_raw_map_forms(void *m)
{
	/* wire order, duplicates kept; protobuf's view: last wins */
	static struct api_pb_label l[] = {
		{ STR_INIT("k"), STR_INIT("1") },
		{ STR_INIT("k"), STR_INIT("2") },
		{ STR_NULL, STR_INIT("v") },
		{ STR_INIT("n"), STR_NULL },
	};
	struct api_pb_weighted_addr_set *s = m;

	s->metric_labels = l;
	s->n_metric_labels = 4;
}

struct builder {
	const char *name;
	void (*fn)(void *msg);
};

#define BLD(n) { #n, b_##n }
static const struct builder builders[] = {
	BLD(get_destination), BLD(get_destination_empty),
	BLD(get_destination_long), BLD(update_add), BLD(update_remove),
	BLD(update_no_endpoints), BLD(update_no_endpoints_exists),
	BLD(update_add_empty), BLD(profile_routes), BLD(profile_endpoint),
	BLD(profile_edge_values), BLD(raw_unknown_fields), BLD(raw_last_wins),
	BLD(raw_merge_submessage), BLD(raw_oneof_switch),
	BLD(raw_varint_forms), BLD(raw_map_forms),
};

static const struct pb_msg_desc *desc_of(const char *type)
{
	static const struct {
		const char *name;
		const struct pb_msg_desc *d;
	} t[] = {
		{ "GetDestination", &api_pb_get_destination_desc },
		{ "Update", &api_pb_update_desc },
		{ "DestinationProfile", &api_pb_destination_profile_desc },
		{ "WeightedAddr", &api_pb_weighted_addr_desc },
		{ "WeightedAddrSet", &api_pb_weighted_addr_set_desc },
		{ "Route", &api_pb_route_desc },
		{ "RetryBudget", &api_pb_retry_budget_desc },
		{ "NoEndpoints", &api_pb_no_endpoints_desc },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, type) == 0)
			return t[i].d;
	return NULL;
}

static const struct builder *builder_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(builders) / sizeof(builders[0]); i++)
		if (strcmp(builders[i].name, name) == 0)
			return &builders[i];
	return NULL;
}

/* Big enough for any API struct. */
union any_msg {
	struct api_pb_get_destination g;
	struct api_pb_update u;
	struct api_pb_destination_profile p;
	struct api_pb_weighted_addr_set s;
	struct api_pb_route r;
	struct api_pb_retry_budget b;
	char pad[1024];
};

TEST(vectors_cover_every_builder)
{
	size_t i, nok = 0;

	for (i = 0; i < sizeof(pb_vectors) / sizeof(pb_vectors[0]); i++) {
		const struct pb_vector *v = &pb_vectors[i];

		CHECK(desc_of(v->type) != NULL);
		if (v->ok) {
			nok++;
			if (!builder_of(v->name))
				printf("# no builder for %s\n", v->name);
			CHECK(builder_of(v->name) != NULL);
		}
	}
	CHECK(nok == sizeof(builders) / sizeof(builders[0]));
}

TEST(vectors_decode_like_python)
{
	struct pb_arena ar;
	size_t i;

	for (i = 0; i < sizeof(pb_vectors) / sizeof(pb_vectors[0]); i++) {
		const struct pb_vector *v = &pb_vectors[i];
		const struct pb_msg_desc *d = desc_of(v->type);
		const struct builder *b = builder_of(v->name);
		union any_msg got, want;
		char err[200];
		int rc;

		REQUIRE(d != NULL && d->size <= sizeof(got));
		pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
		rc = pb_decode(d, &got, v->bytes, v->len, &ar, err, sizeof(err));
		if (!v->ok) {
			if (rc == 0)
				printf("# %s: decoded, Python refuses it\n",
				       v->name);
			CHECK(rc < 0);
			CHECK(err[0] != '\0');
			continue;
		}
		if (rc != 0)
			printf("# %s: %s\n", v->name, err);
		CHECK(rc == 0);
		REQUIRE(b != NULL);
		memset(&want, 0, sizeof(want));
		b->fn(&want);
		if (!pb_equal(d, &got, &want))
			printf("# %s: decoded value differs\n", v->name);
		CHECK(pb_equal(d, &got, &want));
	}
}

TEST(vectors_encode_like_python)
{
	const char *dump = getenv("MESHD_PB_DUMP");
	FILE *df = dump ? fopen(dump, "w") : NULL;
	struct pb_arena ar;
	size_t i, j;

	CHECK(!dump || df);
	for (i = 0; i < sizeof(pb_vectors) / sizeof(pb_vectors[0]); i++) {
		const struct pb_vector *v = &pb_vectors[i];
		const struct pb_msg_desc *d = desc_of(v->type);
		const struct builder *b = builder_of(v->name);
		union any_msg val, back;
		struct buf out;
		ssize_t n;

		if (!v->ok || !b || !d)
			continue;
		memset(&val, 0, sizeof(val));
		b->fn(&val);
		buf_init(&out, 4096);
		n = pb_encode(d, &val, &out);
		CHECK(n >= 0 && (size_t)n == buf_len(&out));
		CHECK(pb_encoded_size(d, &val) == n);
		pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
		CHECK(pb_decode(d, &back, buf_data(&out), buf_len(&out), &ar,
		                NULL, 0) == 0);
		CHECK(pb_equal(d, &back, &val));
		/* Python's deterministic output is canonical, so is ours */
		if (strncmp(v->name, "raw_", 4) != 0) {
			int same = buf_len(&out) == v->len &&
			           (!v->len || memcmp(buf_data(&out), v->bytes,
			                              v->len) == 0);

			if (!same)
				printf("# %s: bytes differ from Python's\n",
				       v->name);
			CHECK(same);
		}
		if (df) {
			fprintf(df, "%s %s ", v->name, v->type);
			for (j = 0; j < buf_len(&out); j++)
				fprintf(df, "%02x",
				        (unsigned char)buf_data(&out)[j]);
			fputc('\n', df);
		}
		buf_free(&out);
	}
	if (df)
		fclose(df);
}

TEST(map_last_entry_wins)
{
	struct api_pb_weighted_addr_set s;
	struct str v;

	memset(&s, 0, sizeof(s));
	b_raw_map_forms(&s);
	CHECK(api_pb_label_get(s.metric_labels, s.n_metric_labels, S("k"),
	                       &v) == 1);
	CHECK(str_eq(v, S("2")));
	CHECK(api_pb_label_get(s.metric_labels, s.n_metric_labels, S(""),
	                       &v) == 1);
	CHECK(str_eq(v, S("v")));
	CHECK(api_pb_label_get(s.metric_labels, s.n_metric_labels, S("zz"),
	                       &v) == 0);
}

/* --- low-level wire API --- */

TEST(varint_round_trip_and_limits)
{
	static const uint64_t vals[] = {
		0, 1, 127, 128, 300, 16383, 16384, 0xffffffffu,
		(uint64_t)1 << 35, (uint64_t)1 << 63, UINT64_MAX,
	};
	static const size_t sizes[] = { 1, 1, 1, 2, 2, 2, 3, 5, 6, 10, 10 };
	uint8_t big[12];
	struct buf b;
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		buf_init(&b, 16);
		CHECK(pb_write_varint(&b, vals[i]) == 0);
		CHECK(buf_len(&b) == sizes[i]);
		CHECK(pb_varint_size(vals[i]) == sizes[i]);
		v = 1;
		CHECK(pb_read_varint((const uint8_t *)buf_data(&b),
		                     buf_len(&b), &v) == (int)sizes[i]);
		CHECK(v == vals[i]);
		/* every proper prefix is "need more" */
		CHECK(pb_read_varint((const uint8_t *)buf_data(&b),
		                     buf_len(&b) - 1, &v) == 0);
		buf_free(&b);
	}
	memset(big, 0xff, sizeof(big));
	CHECK(pb_read_varint(big, 12, &v) == PB_E_VARINT);   /* 11+ bytes */
	big[9] = 0x02;                                       /* > 2^64-1 */
	CHECK(pb_read_varint(big, 12, &v) == PB_E_VARINT);
	big[9] = 0x01;
	CHECK(pb_read_varint(big, 12, &v) == 10 && v == UINT64_MAX);
	big[0] = 0x80;
	big[1] = 0x00;                        /* non-minimal zero is valid */
	CHECK(pb_read_varint(big, 2, &v) == 2 && v == 0);
}

TEST(tag_read_write)
{
	uint8_t t0[] = { 0x00 }, t6[] = { 0x0e }, t7[] = { 0x0f };
	uint8_t tmax[] = { 0xfa, 0xff, 0xff, 0xff, 0x0f };
	uint8_t tover[] = { 0x80, 0x80, 0x80, 0x80, 0x10 };
	uint32_t num, wt;
	struct buf b;

	CHECK(pb_read_tag(t0, 1, &num, &wt) == PB_E_FIELDNUM);
	CHECK(pb_read_tag(t6, 1, &num, &wt) == PB_E_WIRETYPE);
	CHECK(pb_read_tag(t7, 1, &num, &wt) == PB_E_WIRETYPE);
	CHECK(pb_read_tag(tmax, 5, &num, &wt) == 5);
	CHECK(num == PB_FIELD_MAX && wt == PB_WT_LEN);
	CHECK(pb_read_tag(tover, 5, &num, &wt) == PB_E_FIELDNUM);
	buf_init(&b, 8);
	CHECK(pb_write_tag(&b, PB_FIELD_MAX, PB_WT_LEN) == 0);
	CHECK(buf_len(&b) == 5 && memcmp(buf_data(&b), tmax, 5) == 0);
	CHECK(pb_write_tag(&b, 2048, PB_WT_VARINT) == 0);
	CHECK(pb_write_tag(&b, 2048, PB_WT_VARINT) == PB_E_NOSPACE);
	CHECK(buf_len(&b) == 8);
	buf_free(&b);
}

TEST(write_helpers_respect_limit)
{
	struct buf b;

	buf_init(&b, 9);
	CHECK(pb_write_len(&b, 2, "abcdef", 6) == 0);
	CHECK(buf_len(&b) == 8 && memcmp(buf_data(&b), "\x12\x06" "abcdef",
	                                 8) == 0);
	CHECK(pb_write_len(&b, 2, "", 0) == PB_E_NOSPACE);
	CHECK(buf_len(&b) == 8);
	CHECK(pb_write_fixed32(&b, 1) == PB_E_NOSPACE);
	buf_reset(&b);
	CHECK(pb_write_fixed32(&b, 0x01020304) == 0);
	CHECK(memcmp(buf_data(&b), "\x04\x03\x02\x01", 4) == 0);
	CHECK(pb_write_fixed64(&b, 1) == PB_E_NOSPACE);
	buf_free(&b);
	CHECK(pb_zigzag32(-1) == 1 && pb_zigzag32(1) == 2);
	CHECK(pb_zigzag32(INT32_MIN) == 0xffffffffu);
	CHECK(pb_unzigzag32(0xffffffffu) == INT32_MIN);
	CHECK(pb_zigzag64(INT64_MIN) == UINT64_MAX);
	CHECK(pb_unzigzag64(UINT64_MAX) == INT64_MIN);
	CHECK(pb_unzigzag64(3) == -2);
}

TEST(skip_value_kinds)
{
	const uint8_t grp[] = { 0x08, 0x01, 0x1b, 0x1c, 0x14, 0xff };
	const uint8_t len[] = { 0x03, 'a', 'b', 'c' };

	CHECK(pb_skip_value(grp, sizeof(grp), PB_WT_SGROUP, 2) == 5);
	CHECK(pb_skip_value(grp, 4, PB_WT_SGROUP, 2) == PB_E_TRUNCATED);
	CHECK(pb_skip_value(grp, sizeof(grp), PB_WT_SGROUP, 3) ==
	      PB_E_GROUP);
	CHECK(pb_skip_value(len, 4, PB_WT_LEN, 1) == 4);
	CHECK(pb_skip_value(len, 3, PB_WT_LEN, 1) == PB_E_LENGTH);
	CHECK(pb_skip_value(len, 4, PB_WT_I64, 1) == PB_E_TRUNCATED);
	CHECK(pb_skip_value(len, 4, PB_WT_I32, 1) == 4);
	CHECK(pb_skip_value(len, 4, PB_WT_EGROUP, 1) == PB_E_GROUP);
	CHECK(pb_skip_value(len, 4, 6, 1) == PB_E_WIRETYPE);
}

/* --- every scalar kind, through a test-only table --- */

struct allk {
	bool b;
	int32_t i32;
	uint32_t u32;
	int32_t s32;
	int32_t e;
	int64_t i64;
	uint64_t u64;
	int64_t s64;
	uint32_t f32;
	int32_t sf32;
	float fl;
	uint64_t f64;
	int64_t sf64;
	double db;
	struct str s;
	struct str by;
	int32_t *pi;
	size_t n_pi;
	int64_t *ps;
	size_t n_ps;
	uint32_t *pf;
	size_t n_pf;
	struct str *rs;
	size_t n_rs;
	double *pd;
	size_t n_pd;
};

static const struct pb_field allk_fields[] = {
	PB_FIELD(struct allk, b, 1, PB_K_BOOL),
	PB_FIELD(struct allk, i32, 2, PB_K_INT32),
	PB_FIELD(struct allk, u32, 3, PB_K_UINT32),
	PB_FIELD(struct allk, s32, 4, PB_K_SINT32),
	PB_FIELD(struct allk, e, 5, PB_K_ENUM),
	PB_FIELD(struct allk, i64, 6, PB_K_INT64),
	PB_FIELD(struct allk, u64, 7, PB_K_UINT64),
	PB_FIELD(struct allk, s64, 8, PB_K_SINT64),
	PB_FIELD(struct allk, f32, 9, PB_K_FIXED32),
	PB_FIELD(struct allk, sf32, 10, PB_K_SFIXED32),
	PB_FIELD(struct allk, fl, 11, PB_K_FLOAT),
	PB_FIELD(struct allk, f64, 12, PB_K_FIXED64),
	PB_FIELD(struct allk, sf64, 13, PB_K_SFIXED64),
	PB_FIELD(struct allk, db, 14, PB_K_DOUBLE),
	PB_FIELD(struct allk, s, 15, PB_K_STRING),
	PB_FIELD(struct allk, by, 16, PB_K_BYTES),
	PB_PACKED(struct allk, pi, n_pi, 17, PB_K_INT32),
	PB_PACKED(struct allk, ps, n_ps, 18, PB_K_SINT64),
	PB_PACKED(struct allk, pf, n_pf, 19, PB_K_FIXED32),
	PB_REP(struct allk, rs, n_rs, 20, PB_K_STRING, NULL),
	PB_REP(struct allk, pd, n_pd, 21, PB_K_DOUBLE, NULL),
};
static const struct pb_msg_desc allk_desc = {
	"test.AllKinds", sizeof(struct allk),
	sizeof(allk_fields) / sizeof(allk_fields[0]), allk_fields };

TEST(all_kinds_round_trip)
{
	static int32_t pi[] = { 1, -1, 300, INT32_MIN };
	static int64_t ps[] = { 0, -1, INT64_MIN, INT64_MAX };
	static uint32_t pf[] = { 7, 0xffffffffu };
	static struct str rs[] = { STR_INIT("a"), STR_INIT(""), STR_INIT("c") };
	static double pd[] = { 1.5, -0.0 };
	struct allk a, b;
	struct pb_arena ar;
	struct buf out;
	ssize_t n;

	memset(&a, 0, sizeof(a));
	a.b = true;
	a.i32 = -2;
	a.u32 = 0xffffffffu;
	a.s32 = INT32_MIN;
	a.e = -7;
	a.i64 = INT64_MIN;
	a.u64 = UINT64_MAX;
	a.s64 = -3;
	a.f32 = 0xdeadbeefu;
	a.sf32 = -1;
	a.fl = -0.0f;
	a.f64 = 1;
	a.sf64 = INT64_MIN;
	a.db = NAN;
	a.s = S("h\xc3\xa9llo");
	a.by = str_make("\x00\xff", 2);
	a.pi = pi;
	a.n_pi = 4;
	a.ps = ps;
	a.n_ps = 4;
	a.pf = pf;
	a.n_pf = 2;
	a.rs = rs;
	a.n_rs = 3;
	a.pd = pd;
	a.n_pd = 2;
	buf_init(&out, 1024);
	n = pb_encode(&allk_desc, &a, &out);
	REQUIRE(n > 0);
	pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
	CHECK(pb_decode(&allk_desc, &b, buf_data(&out), buf_len(&out), &ar,
	                NULL, 0) == 0);
	CHECK(pb_equal(&allk_desc, &a, &b));
	CHECK(isnan(b.db) && signbit(b.fl));
	CHECK(b.n_rs == 3 && b.rs[1].len == 0);
	/* a zero message is empty on the wire */
	memset(&b, 0, sizeof(b));
	CHECK(pb_encoded_size(&allk_desc, &b) == 0);
	buf_free(&out);
}

TEST(known_encodings)
{
	/* int32 -1 takes 10 bytes; sint32 -1 one; packed int32 [1,2,300] */
	static int32_t pi[] = { 1, 2, 300 };
	struct allk a;
	struct buf out;

	memset(&a, 0, sizeof(a));
	a.i32 = -1;
	a.s32 = -1;
	a.pi = pi;
	a.n_pi = 3;
	buf_init(&out, 64);
	CHECK(pb_encode(&allk_desc, &a, &out) == 11 + 2 + 7);
	CHECK(memcmp(buf_data(&out),
	             "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
	             "\x20\x01"
	             "\x8a\x01\x04\x01\x02\xac\x02", 20) == 0);
	buf_free(&out);
}

TEST(packed_and_unpacked_both_accepted)
{
	/* field 17 unpacked 5, packed [6,7], unpacked 8; field 19 unpacked */
	const uint8_t in[] = { 0x88, 0x01, 0x05, 0x8a, 0x01, 0x02, 0x06, 0x07,
	                       0x88, 0x01, 0x08,
	                       0x9d, 0x01, 0x01, 0x00, 0x00, 0x00 };
	const uint8_t bad_packed[] = { 0x9a, 0x01, 0x03, 0x01, 0x00, 0x00 };
	struct pb_arena ar;
	struct allk a;

	pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
	REQUIRE(pb_decode(&allk_desc, &a, in, sizeof(in), &ar, NULL, 0) == 0);
	CHECK(a.n_pi == 4 && a.pi[0] == 5 && a.pi[1] == 6 && a.pi[2] == 7 &&
	      a.pi[3] == 8);
	CHECK(a.n_pf == 1 && a.pf[0] == 1);
	/* packed fixed32 of 3 bytes: truncated element */
	CHECK(pb_decode(&allk_desc, &a, bad_packed, sizeof(bad_packed), &ar,
	                NULL, 0) == PB_E_TRUNCATED);
}

TEST(strict_errors_name_the_field)
{
	const uint8_t wrong_wt[] = { 0x15, 0, 0, 0, 0 };   /* path as i32 */
	const uint8_t field0[] = { 0x00, 0x01 };
	const uint8_t stray_end[] = { 0x0c };
	const uint8_t wt6[] = { 0x0e };
	char err[200];

	struct api_pb_get_destination g;

	CHECK(pb_decode(&api_pb_get_destination_desc, &g, wrong_wt,
	                sizeof(wrong_wt), NULL, err, sizeof(err)) ==
	      PB_E_WIRETYPE);
	CHECK(strstr(err, "GetDestination.path (2)") != NULL);
	CHECK(pb_decode(&api_pb_get_destination_desc, &g, field0,
	                sizeof(field0), NULL, err, sizeof(err)) ==
	      PB_E_FIELDNUM);
	CHECK(pb_decode(&api_pb_get_destination_desc, &g, stray_end,
	                sizeof(stray_end), NULL, err, sizeof(err)) ==
	      PB_E_GROUP);
	CHECK(pb_decode(&api_pb_get_destination_desc, &g, wt6, sizeof(wt6),
	                NULL, err, sizeof(err)) == PB_E_WIRETYPE);
	CHECK(strstr(err, "offset 0") != NULL);
}

/* A recursive test type, for the depth limit. */
struct node {
	struct node *kids;
	size_t n_kids;
	int32_t v;
};
extern const struct pb_msg_desc node_desc;
static const struct pb_field node_fields[] = {
	PB_REP(struct node, kids, n_kids, 1, PB_K_MESSAGE, &node_desc),
	PB_FIELD(struct node, v, 2, PB_K_INT32),
};
const struct pb_msg_desc node_desc = { "test.Node", sizeof(struct node), 2,
                                       node_fields };

/* <depth> nested nodes: 0a LEN (0a LEN (... 10 01)). */
static size_t nest(uint8_t *out, int depth)
{
	uint8_t tmp[256];
	size_t n;

	if (depth == 0) {
		out[0] = 0x10;
		out[1] = 0x01;
		return 2;
	}
	n = nest(tmp, depth - 1);
	out[0] = 0x0a;
	out[1] = (uint8_t)n;
	memcpy(out + 2, tmp, n);
	return n + 2;
}

TEST(depth_limit_messages_and_groups)
{
	uint8_t in[256];
	struct pb_arena ar;
	struct node root, *p;
	struct buf out;
	size_t n;
	int i;

	n = nest(in, PB_DEPTH_MAX - 1);
	pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
	REQUIRE(pb_decode(&node_desc, &root, in, n, &ar, NULL, 0) == 0);
	for (p = &root, i = 0; p->n_kids == 1; p = p->kids, i++)
		;
	CHECK(i == PB_DEPTH_MAX - 1 && p->v == 1);
	buf_init(&out, 256);
	CHECK(pb_encode(&node_desc, &root, &out) == (ssize_t)n);
	CHECK(memcmp(buf_data(&out), in, n) == 0);
	buf_free(&out);
	n = nest(in, PB_DEPTH_MAX);
	CHECK(pb_decode(&node_desc, &root, in, n, &ar, NULL, 0) ==
	      PB_E_DEPTH);
	/* unknown groups nested too deep */
	for (i = 0; i < 40; i++)
		in[i] = 0x1b;                   /* start group 3 */
	for (i = 40; i < 80; i++)
		in[i] = 0x1c;                   /* end group 3 */
	CHECK(pb_decode(&node_desc, &root, in, 80, &ar, NULL, 0) ==
	      PB_E_DEPTH);
	CHECK(pb_decode(&node_desc, &root, in + 30, 20, &ar, NULL, 0) == 0);
}

TEST(arena_limits_and_growth)
{
	static uint8_t in[3000];
	char small[64];
	struct pb_arena ar;
	struct node root;
	size_t i, n = 0;

	for (i = 0; i < 1000; i++) {            /* 1000 empty kids */
		in[n++] = 0x0a;
		in[n++] = 0x00;
	}
	pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
	REQUIRE(pb_decode(&node_desc, &root, in, n, &ar, NULL, 0) == 0);
	CHECK(root.n_kids == 1000);
	/* doubling: at most about twice the final array */
	CHECK(ar.used <= 2 * 1024 * sizeof(struct node) + 64);
	pb_arena_init(&ar, small, sizeof(small));
	CHECK(pb_decode(&node_desc, &root, in, n, &ar, NULL, 0) ==
	      PB_E_ARENA);
	CHECK(pb_decode(&node_desc, &root, in, n, NULL, NULL, 0) ==
	      PB_E_ARENA);
	CHECK(pb_arena_alloc(&ar, sizeof(small) + 1) == NULL);
	pb_arena_reset(&ar);
	CHECK(ar.used == 0);
}

TEST(encode_refuses_bad_values_without_writing)
{
	struct api_pb_get_destination g;
	struct api_pb_addr_set s;
	struct buf out;

	buf_init(&out, 64);
	CHECK(buf_append(&out, "x", 1) == 0);
	memset(&g, 0, sizeof(g));
	g.path = str_make("\xc0\x80", 2);          /* overlong NUL */
	CHECK(pb_encode(&api_pb_get_destination_desc, &g, &out) == PB_E_UTF8);
	g.path = str_make(NULL, 3);
	CHECK(pb_encode(&api_pb_get_destination_desc, &g, &out) ==
	      PB_E_INVALID);
	memset(&s, 0, sizeof(s));
	s.n_addrs = 2;                             /* NULL array */
	CHECK(pb_encode(&api_pb_addr_set_desc, &s, &out) == PB_E_INVALID);
	g.path = str_make("0123456789012345678901234567890123456789"
	                  "0123456789012345678901234567890123456789", 80);
	CHECK(pb_encode(&api_pb_get_destination_desc, &g, &out) ==
	      PB_E_NOSPACE);
	CHECK(buf_len(&out) == 1);
	buf_free(&out);
}

TEST(prefixes_never_crash_and_mostly_fail)
{
	size_t i, k, fails = 0, total = 0;
	struct pb_arena ar;
	union any_msg m;

	for (i = 0; i < sizeof(pb_vectors) / sizeof(pb_vectors[0]); i++) {
		const struct pb_vector *v = &pb_vectors[i];
		const struct pb_msg_desc *d = desc_of(v->type);

		if (!v->ok)
			continue;
		for (k = 0; k < v->len; k++) {
			int rc;

			pb_arena_init(&ar, arena_mem, sizeof(arena_mem));
			rc = pb_decode(d, &m, v->bytes, k, &ar, NULL, 0);
			CHECK(rc == 0 || (rc < 0 && rc >= PB_E_INVALID));
			fails += rc < 0;
			total++;
		}
	}
	/* a cut inside a field fails; only cuts between fields succeed */
	CHECK(fails * 10 > total * 8);
	CHECK(strcmp(pb_strerror(PB_E_ARENA), "decode arena full") == 0);
}
