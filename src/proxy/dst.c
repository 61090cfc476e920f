/*
 * dst: the proxy's destination client (contracts in dst.h).
 *
 * IMPLEMENTATION NOTES
 * Connection. One h2c connection (core/grpc client over core/h2) carries
 * every stream. The connection is driven like h2side's: gRPC/h2 callbacks
 * never pull output (h2 forbids it) and never tear anything down; they
 * queue the <flush> defer item, which pulls h2_output into <out>, writes
 * it, and closes the connection once h2 is finished. <out> non-empty stops
 * the pulling (write back-pressure); reading stops while h2_want_read() is
 * 0. Teardown (dst_conn_down) runs only from loop context: it aborts the
 * h2 session (every open call gets its on_status), frees the client, marks
 * every target stale and arms the reconnect timer.
 *
 * Calls. Each open stream has a small wrapper (struct dst_call) that is the
 * gRPC callback context. A target that dies detaches its wrappers
 * (call->t = NULL) and cancels them; the wrapper is freed by on_status,
 * which the client always delivers (or by the teardown, which sweeps the
 * wrappers left on d->calls after grpc_client_free).
 *
 * Decoding. The client decodes each message with shallow tables defined
 * here: Update's oneof members and DestinationProfile's routes and
 * endpoint are read as bytes, so the client's decode arena (one per
 * connection, shared by the calls: a call at rest holds no decoding memory)
 * stays small. The inner messages are decoded here into one scratch
 * arena per struct dst that grows (doubling) up to cfg.max_decode, and are
 * copied into target-owned blocks: nothing keeps pointing into a message.
 *
 * Streams that cannot start because the connection's stream limit is
 * reached wait on <startq>; the <kick> defer item starts them whenever a
 * call ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/api_pb.h"
#include "core/grpc.h"
#include "core/h2.h"
#include "core/mem.h"
#include "core/pb.h"
#include "core/util.h"
#include "proxy/dst.h"

#define DST_OUT_LIMIT (64u * 1024)
#define DST_READ_CHUNK (16u * 1024)
#define DST_SCRATCH_MIN (64u * 1024)
#define DST_HASH_MIN 64u
#define DST_LABELS_HARD 64u     /* cap on cfg.max_labels */
#define DST_LABELS_SCAN 256u    /* map entries looked at per map */

/* The wrapper of one open call. */
struct dst_call {
	struct dst *d;
	struct dst_target *t;        /* NULL once detached */
	int kind;                    /* DST_SLOT_* */
	struct grpc_ccall *cc;
	struct dst_call *prev, *next;
	int starting;                /* inside grpc_client_call */
	int ended;                   /* on_status came while starting */
};

static char dst_rbuf[DST_READ_CHUNK];

/* --- shallow message tables --- */

struct dst_pb_update {
	uint32_t update;
	struct str add;
	struct str remove;
	struct str no_endpoints;
};

static const struct pb_field dst_pb_update_fields[] = {
	PB_ONEOF(struct dst_pb_update, add, update, 1, PB_K_BYTES, NULL),
	PB_ONEOF(struct dst_pb_update, remove, update, 2, PB_K_BYTES, NULL),
	PB_ONEOF(struct dst_pb_update, no_endpoints, update, 3, PB_K_BYTES,
	         NULL),
};

static const struct pb_msg_desc dst_pb_update_desc = {
	"meshd.destination.v1.Update(shallow)", sizeof(struct dst_pb_update),
	ARRAY_SIZE(dst_pb_update_fields), dst_pb_update_fields
};

struct dst_pb_profile {
	struct str *routes;
	size_t n_routes;
	struct api_pb_retry_budget retry_budget;
	bool has_retry_budget;
	bool opaque_protocol;
	struct str fqn;
	uint32_t has_endpoint;       /* oneof case: 6 when present */
	struct str endpoint;
};

static const struct pb_field dst_pb_profile_fields[] = {
	PB_REP(struct dst_pb_profile, routes, n_routes, 1, PB_K_BYTES, NULL),
	PB_MSG(struct dst_pb_profile, retry_budget, has_retry_budget, 2,
	       &api_pb_retry_budget_desc),
	PB_FIELD(struct dst_pb_profile, opaque_protocol, 4, PB_K_BOOL),
	PB_FIELD(struct dst_pb_profile, fqn, 5, PB_K_STRING),
	PB_ONEOF(struct dst_pb_profile, endpoint, has_endpoint, 6, PB_K_BYTES,
	         NULL),
};

static const struct pb_msg_desc dst_pb_profile_desc = {
	"meshd.destination.v1.DestinationProfile(shallow)",
	sizeof(struct dst_pb_profile), ARRAY_SIZE(dst_pb_profile_fields),
	dst_pb_profile_fields
};

/* --- small helpers --- */

const char *dst_st_str(enum dst_state st)
{
	switch (st) {
	case DST_PENDING: return "pending";
	case DST_RESOLVED: return "resolved";
	case DST_UNKNOWN: return "unknown";
	}
	return "?";
}

const char *dst_conn_st_str(enum dst_conn_st st)
{
	switch (st) {
	case DST_CONN_DOWN: return "down";
	case DST_CONN_CONNECTING: return "connecting";
	case DST_CONN_UP: return "up";
	}
	return "?";
}

void dst_cfg_default(struct dst_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle_ms = DST_IDLE_MS_DEFAULT;
	cfg->resolve_timeout_ms = DST_RESOLVE_MS_DEFAULT;
	cfg->connect_timeout_ms = DST_CONNECT_MS_DEFAULT;
	cfg->backoff_min_ms = DST_BACKOFF_MIN_DEFAULT;
	cfg->backoff_max_ms = DST_BACKOFF_MAX_DEFAULT;
	cfg->keepalive_interval_ms = DST_KA_INTERVAL_DEFAULT;
	cfg->keepalive_timeout_ms = DST_KA_TIMEOUT_DEFAULT;
	cfg->max_targets = DST_MAX_TARGETS_DEFAULT;
	cfg->max_endpoints = DST_MAX_ENDPOINTS_DEFAULT;
	cfg->max_labels = DST_MAX_LABELS_DEFAULT;
	cfg->max_label_bytes = DST_MAX_LABEL_BYTES_DEFAULT;
	cfg->max_routes = DST_MAX_ROUTES_DEFAULT;
	cfg->max_msg = GRPC_MAX_MSG_DEFAULT;
	cfg->call_arena = 8u * 1024;
	cfg->max_decode = 16u * 1024 * 1024;
	cfg->context_token = "";
}

static uint32_t dst_rand(struct dst *d)
{
	uint32_t x = d->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	d->rng = x ? x : 0x9e3779b9u;
	return d->rng;
}

/* Exponential backoff with jitter: step <attempt> waits between half and
 * all of min * 2^attempt, never below min nor above max. */
static uint64_t dst_backoff(struct dst *d, uint32_t attempt)
{
	uint64_t base = d->cfg.backoff_min_ms, v;

	while (attempt-- > 0 && base < d->cfg.backoff_max_ms)
		base *= 2;
	if (base > d->cfg.backoff_max_ms)
		base = d->cfg.backoff_max_ms;
	v = base / 2 + dst_rand(d) % (base / 2 + 1);
	if (v < d->cfg.backoff_min_ms)
		v = d->cfg.backoff_min_ms;
	return v;
}

static uint32_t dst_hash(struct str s)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 16777619u;
	}
	return h;
}

/* Copies <s> with a NUL into <*pp> and returns the slice of the copy. */
static struct str dst_put(char **pp, struct str s)
{
	struct str r = str_make(*pp, s.len);

	if (s.len)
		memcpy(*pp, s.p, s.len);
	(*pp)[s.len] = '\0';
	*pp += s.len + 1;
	return r;
}

static int dst_scratch(struct dst *d, struct pb_arena *a, size_t want);
static size_t dst_scratch_grow(struct dst *d, size_t cur);

/* Decodes <in> as <desc> into <msg>, arrays in <a>. 0 or PB_E_*. */
static int dst_decode(struct pb_arena *a, const struct pb_msg_desc *desc,
                      void *msg, struct str in)
{
	return pb_decode(desc, msg, in.p, in.len, a, NULL, 0);
}

/*
 * Decodes <in> as <desc> into <msg> with the scratch arena, growing it
 * (doubling, up to cfg.max_decode) while the arena is what runs out.
 * Returns 0, a PB_E_* code, or -ENOMEM.
 */
static int dst_decode_grow(struct dst *d, const struct pb_msg_desc *desc,
                           void *msg, struct str in)
{
	struct pb_arena a;
	size_t want = 0;
	int r;

	for (;;) {
		if (dst_scratch(d, &a, want ? want : DST_SCRATCH_MIN) < 0)
			return -ENOMEM;
		r = dst_decode(&a, desc, msg, in);
		if (r != PB_E_ARENA)
			return r;
		want = dst_scratch_grow(d, a.cap);
		if (!want)
			return r;
	}
}

/* (Re)initialises <a> over the scratch storage, at least <want> bytes. */
static int dst_scratch(struct dst *d, struct pb_arena *a, size_t want)
{
	void *p;

	if (want > d->cfg.max_decode)
		return -1;
	if (!d->scratch || d->scratch_size < want) {
		p = mem_alloc(want);
		if (!p)
			return -1;
		mem_free(d->scratch);
		d->scratch = p;
		d->scratch_size = want;
	}
	pb_arena_init(a, d->scratch, d->scratch_size);
	return 0;
}

/* Size of the next scratch attempt after PB_E_ARENA with <cur>, or 0. */
static size_t dst_scratch_grow(struct dst *d, size_t cur)
{
	size_t n = cur ? cur * 2 : DST_SCRATCH_MIN;

	if (n > d->cfg.max_decode)
		n = cur < d->cfg.max_decode ? d->cfg.max_decode : 0;
	return n;
}

/* --- labels and endpoints --- */

/* Index of the labels to keep: unique keys (last wins), within the count
 * and byte budgets; sets <*bytes> to the string bytes (with NULs). Returns
 * the count written to <keep>. */
static size_t dst_labels_pick(struct dst *d, const struct api_pb_label *l,
                              size_t n, size_t *keep, size_t *bytes)
{
	size_t i, j, k = 0, b = 0, sz;

	*bytes = 0;
	if (n > DST_LABELS_SCAN) {      /* keeps the dedup scan bounded */
		d->stats.limited += n - DST_LABELS_SCAN;
		n = DST_LABELS_SCAN;
	}
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++)
			if (str_eq(l[i].key, l[j].key))
				break;
		if (j < n)
			continue;            /* a later duplicate wins */
		sz = l[i].key.len + l[i].value.len + 2;
		if (k >= d->cfg.max_labels ||
		    b + sz > d->cfg.max_label_bytes) {
			d->stats.limited++;
			continue;
		}
		keep[k++] = i;
		b += sz;
	}
	*bytes = b;
	return k;
}

/* Copies the picked labels into <*pp> (arrays first, aligned). */
static void dst_labels_copy(const struct api_pb_label *l, const size_t *keep,
                            size_t k, struct dst_label *out, char **pp)
{
	size_t i;

	for (i = 0; i < k; i++) {
		out[i].key = dst_put(pp, l[keep[i]].key);
		out[i].value = dst_put(pp, l[keep[i]].value);
	}
}

/* An address from TcpAddress. 0, or -1 when invalid. */
static int dst_addr(const struct api_pb_tcp_address *ta, struct sock_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ta->port == 0 || ta->port > 65535)
		return -1;
	if (ta->ip.len == 4) {
		a->sin.sin_family = AF_INET;
		memcpy(&a->sin.sin_addr, ta->ip.p, 4);
		a->len = sizeof(a->sin);
	} else if (ta->ip.len == 16) {
		a->sin6.sin6_family = AF_INET6;
		memcpy(&a->sin6.sin6_addr, ta->ip.p, 16);
		a->len = sizeof(a->sin6);
	} else {
		return -1;
	}
	sock_addr_set_port(a, (uint16_t)ta->port);
	sock_addr_unmap(a);
	return 0;
}

static void dst_ep_free(struct dst_endpoint *e)
{
	MEM_FREE(&e->blk);
	e->labels = NULL;
	e->nlabels = 0;
}

/* Builds <e> from <wa>. 0, -1 for an entry to skip, -ENOMEM. */
static int dst_ep_make(struct dst *d, const struct api_pb_weighted_addr *wa,
                       struct dst_endpoint *e)
{
	size_t keep[DST_LABELS_HARD], k, lb, sz;
	struct str id = STR_NULL;
	char *p;

	memset(e, 0, sizeof(*e));
	if (!wa->has_addr || dst_addr(&wa->addr, &e->addr) < 0)
		return -1;
	if (wa->has_tls_identity &&
	    wa->tls_identity.strategy == API_PB_TLS_IDENTITY_DNS_LIKE)
		id = wa->tls_identity.dns_like_identity.name;
	if (id.len > DST_MAX_STRING || memchr(id.p ? id.p : "", 0, id.len)) {
		/* an identity we cannot keep: never talk to it unverified */
		d->stats.limited++;
		return -1;
	}
	k = dst_labels_pick(d, wa->metric_labels, wa->n_metric_labels, keep,
	                    &lb);
	sz = k * sizeof(struct dst_label) + lb + id.len + 1;
	e->blk = mem_alloc(sz);
	if (!e->blk)
		return -ENOMEM;
	e->labels = (struct dst_label *)(void *)e->blk;
	e->nlabels = k;
	p = e->blk + k * sizeof(struct dst_label);
	dst_labels_copy(wa->metric_labels, keep, k, e->labels, &p);
	e->identity = dst_put(&p, id);
	e->weight = wa->weight ? wa->weight : API_PB_WEIGHT_DEFAULT;
	if (wa->has_protocol_hint) {
		if (wa->protocol_hint.protocol == API_PB_PROTOCOL_HINT_H2)
			e->hint = DST_HINT_H2;
		else if (wa->protocol_hint.protocol ==
		         API_PB_PROTOCOL_HINT_OPAQUE)
			e->hint = DST_HINT_OPAQUE;
	}
	return 0;
}

/* Sort key: address, then arrival (so that the last duplicate wins). */
struct dst_sort {
	struct dst_endpoint e;
	size_t seq;
};

static int dst_sort_cmp(const void *a, const void *b)
{
	const struct dst_sort *x = a, *y = b;
	int c = sock_addr_compare(&x->e.addr, &y->e.addr);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int dst_addr_cmp(const void *a, const void *b)
{
	return sock_addr_compare(a, b);
}

static void dst_eps_free(struct dst_endpoint *ep, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst_ep_free(&ep[i]);
}

/* Replaces the set labels of <t> with <l>. 0 or -ENOMEM. */
static int dst_set_labels(struct dst *d, struct dst_target *t,
                          const struct api_pb_label *l, size_t n)
{
	size_t keep[DST_LABELS_HARD], k, lb;
	char *blk, *p;

	k = dst_labels_pick(d, l, n, keep, &lb);
	blk = NULL;
	if (k) {
		blk = mem_alloc(k * sizeof(struct dst_label) + lb);
		if (!blk)
			return -ENOMEM;
		p = blk + k * sizeof(struct dst_label);
		dst_labels_copy(l, keep, k, (struct dst_label *)(void *)blk,
		                &p);
	}
	mem_free(t->set_blk);
	t->set_blk = blk;
	t->set_labels = (struct dst_label *)(void *)blk;
	t->nset_labels = k;
	return 0;
}

/*
 * Applies an add: <snap> replaces the set, otherwise entries are merged
 * (an address already known is replaced). 0 or -ENOMEM (set unchanged).
 */
static int dst_apply_add(struct dst *d, struct dst_target *t,
                         const struct api_pb_weighted_addr_set *as, int snap)
{
	struct dst_sort *s;
	struct dst_endpoint *out;
	size_t i, n = 0, m, a, b, cap;
	int rc;

	s = mem_calloc(as->n_addrs ? as->n_addrs : 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (i = 0; i < as->n_addrs; i++) {
		rc = dst_ep_make(d, &as->addrs[i], &s[n].e);
		if (rc == -ENOMEM)
			goto oom;
		if (rc < 0)
			continue;        /* invalid address or identity */
		s[n].seq = i;
		n++;
	}
	qsort(s, n, sizeof(*s), dst_sort_cmp);
	/* keep the last of equal addresses */
	for (i = 0, m = 0; i < n; i++) {
		if (i + 1 < n &&
		    !sock_addr_compare(&s[i].e.addr, &s[i + 1].e.addr)) {
			dst_ep_free(&s[i].e);
			continue;
		}
		s[m++] = s[i];
	}
	n = m;
	cap = (snap ? 0 : t->nep) + n;
	out = mem_calloc(cap ? cap : 1, sizeof(*out));
	if (!out)
		goto oom;
	m = a = b = 0;
	if (!snap) {
		while (a < t->nep || b < n) {
			int c = a >= t->nep ? 1 : b >= n ? -1 :
			        sock_addr_compare(&t->ep[a].addr, &s[b].e.addr);

			if (c < 0) {
				out[m++] = t->ep[a++];
			} else {
				if (c == 0)
					dst_ep_free(&t->ep[a++]);
				out[m++] = s[b++].e;
			}
		}
	} else {
		dst_eps_free(t->ep, t->nep);
		for (b = 0; b < n; b++)
			out[m++] = s[b].e;
	}
	if (m > d->cfg.max_endpoints) {
		d->stats.limited += m - d->cfg.max_endpoints;
		dst_eps_free(out + d->cfg.max_endpoints,
		             m - d->cfg.max_endpoints);
		m = d->cfg.max_endpoints;
	}
	mem_free(t->ep);
	t->ep = out;
	t->nep = m;
	mem_free(s);
	if (snap || as->n_metric_labels)
		(void)dst_set_labels(d, t, as->metric_labels,
		                     as->n_metric_labels);
	return 0;
oom:
	for (i = 0; i < n; i++)
		dst_ep_free(&s[i].e);
	mem_free(s);
	return -ENOMEM;
}

/* Applies a remove. 0 or -ENOMEM. */
static int dst_apply_remove(struct dst_target *t,
                            const struct api_pb_addr_set *rs)
{
	struct sock_addr *r;
	size_t i, n = 0, m = 0;

	if (!rs->n_addrs || !t->nep)
		return 0;
	r = mem_calloc(rs->n_addrs, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (i = 0; i < rs->n_addrs; i++)
		if (dst_addr(&rs->addrs[i], &r[n]) == 0)
			n++;
	qsort(r, n, sizeof(*r), dst_addr_cmp);
	for (i = 0; i < t->nep; i++) {
		if (n && bsearch(&t->ep[i].addr, r, n, sizeof(*r),
		                 dst_addr_cmp)) {
			dst_ep_free(&t->ep[i]);
			continue;
		}
		t->ep[m++] = t->ep[i];
	}
	t->nep = m;
	mem_free(r);
	return 0;
}

static void dst_clear_set(struct dst_target *t)
{
	dst_eps_free(t->ep, t->nep);
	MEM_FREE(&t->ep);
	t->nep = 0;
	MEM_FREE(&t->set_blk);
	t->set_labels = NULL;
	t->nset_labels = 0;
}

/* --- profile --- */

static void dst_profile_free(struct dst_profile *p)
{
	if (!p)
		return;
	dst_ep_free(&p->endpoint);
	mem_free(p->blk);
	mem_free(p);
}

static uint32_t dst_dur_ms(const struct api_pb_duration *du)
{
	uint64_t ms;

	if (du->seconds < 0 || (du->seconds == 0 && du->nanos <= 0))
		return 0;
	if ((uint64_t)du->seconds > UINT32_MAX / 1000u)
		return UINT32_MAX;
	ms = (uint64_t)du->seconds * 1000u;
	if (du->nanos > 0)
		ms += ((uint64_t)du->nanos + 999999u) / 1000000u;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* 1 when <s> is keepable (bounded, no NUL). */
static int dst_str_ok(struct str s)
{
	return s.len <= DST_MAX_STRING && !memchr(s.p ? s.p : "", 0, s.len);
}

/* The strings route <r> keeps. Returns 1 when they are keepable. */
static int dst_route_strs(const struct api_pb_route *r, struct str *path,
                          struct str *method, struct str *name)
{
	const struct api_pb_request_match *m = &r->condition;

	*path = STR_NULL;
	*method = r->has_condition ? m->method : STR_NULL;
	if (r->has_condition && m->has_path)
		*path = m->path.kind == API_PB_PATH_MATCH_EXACT ? m->path.exact
		                                                : m->path.prefix;
	if (!api_pb_label_get(r->metrics_labels, r->n_metrics_labels,
	                      STR_LIT("route"), name))
		*name = STR_NULL;
	return dst_str_ok(*path) && dst_str_ok(*method) && dst_str_ok(*name);
}

/* Decodes the first <n> routes of <raw> into the scratch arena. Returns
 * the array (NULL when n == 0) and 0 in <*rc>, or NULL and PB_E_* /
 * -ENOMEM. */
static struct api_pb_route *dst_routes_decode(struct dst *d,
                                              const struct dst_pb_profile *raw,
                                              size_t n, int *rc)
{
	struct api_pb_route *rt;
	struct pb_arena a;
	size_t i, want = 0;
	int r;

	*rc = 0;
	if (!n)
		return NULL;
	for (;;) {
		if (dst_scratch(d, &a, want ? want : DST_SCRATCH_MIN) < 0) {
			*rc = -ENOMEM;
			return NULL;
		}
		rt = pb_arena_alloc(&a, n * sizeof(*rt));
		r = rt ? 0 : PB_E_ARENA;
		for (i = 0; r == 0 && i < n; i++)
			r = dst_decode(&a, &api_pb_route_desc, &rt[i],
			               raw->routes[i]);
		if (r != PB_E_ARENA)
			break;
		want = dst_scratch_grow(d, a.cap);
		if (!want)
			break;
	}
	*rc = r;
	return r < 0 ? NULL : rt;
}

/* Builds a profile from <raw>. Returns it, or NULL with <*rc> -EINVAL (a
 * message that does not decode) or -ENOMEM. */
static struct dst_profile *dst_profile_make(struct dst *d,
                                            const struct dst_pb_profile *raw,
                                            int *rc)
{
	struct api_pb_weighted_addr wa;
	struct api_pb_route *rt;
	struct dst_profile *pf;
	struct str path, method, name;
	size_t i, n, k, bytes;
	char *p;
	int r;

	n = raw->n_routes;
	if (n > d->cfg.max_routes) {
		d->stats.limited += n - d->cfg.max_routes;
		n = d->cfg.max_routes;
	}
	rt = dst_routes_decode(d, raw, n, &r);
	if (r < 0 || !dst_str_ok(raw->fqn)) {
		*rc = r == -ENOMEM ? -ENOMEM : -EINVAL;
		return NULL;
	}
	/* routes that carry an unkeepable string are dropped */
	bytes = raw->fqn.len + 1;
	for (i = k = 0; i < n; i++) {
		if (!dst_route_strs(&rt[i], &path, &method, &name)) {
			d->stats.limited++;
			continue;
		}
		bytes += path.len + method.len + name.len + 3;
		k++;
	}
	pf = mem_calloc(1, sizeof(*pf));
	if (pf)
		pf->blk = mem_alloc(k * sizeof(struct dst_route) + bytes);
	if (!pf || !pf->blk) {
		mem_free(pf);
		*rc = -ENOMEM;
		return NULL;
	}
	pf->routes = (struct dst_route *)(void *)pf->blk;
	p = pf->blk + k * sizeof(struct dst_route);
	for (i = k = 0; i < n; i++) {
		struct dst_route *o = &pf->routes[k];

		if (!dst_route_strs(&rt[i], &path, &method, &name))
			continue;
		memset(o, 0, sizeof(*o));
		o->kind = DST_PATH_ANY;
		if (rt[i].has_condition && rt[i].condition.has_path) {
			if (rt[i].condition.path.kind == API_PB_PATH_MATCH_EXACT)
				o->kind = DST_PATH_EXACT;
			else if (rt[i].condition.path.kind ==
			         API_PB_PATH_MATCH_PREFIX)
				o->kind = DST_PATH_PREFIX;
		}
		o->path = dst_put(&p, o->kind == DST_PATH_ANY ? STR_NULL
		                                              : path);
		o->method = dst_put(&p, method);
		o->name = dst_put(&p, name);
		o->retryable = rt[i].is_retryable;
		o->timeout_ms = rt[i].has_timeout ?
		                dst_dur_ms(&rt[i].timeout) : 0;
		k++;
	}
	pf->nroutes = k;
	pf->fqn = dst_put(&p, raw->fqn);
	pf->opaque = raw->opaque_protocol;
	if (raw->has_retry_budget) {
		pf->budget.present = 1;
		pf->budget.ratio = raw->retry_budget.retry_ratio;
		pf->budget.min_per_s = raw->retry_budget.min_retries_per_second;
		pf->budget.ttl_ms = raw->retry_budget.has_ttl ?
		                    dst_dur_ms(&raw->retry_budget.ttl) : 0;
	}
	/* the scratch arena is reused: the routes are copied already */
	if (raw->has_endpoint &&
	    dst_decode_grow(d, &api_pb_weighted_addr_desc, &wa,
	                    raw->endpoint) == 0 &&
	    dst_ep_make(d, &wa, &pf->endpoint) == 0)
		pf->has_endpoint = 1;
	*rc = 0;
	return pf;
}

const struct dst_route *dst_profile_route(const struct dst_profile *p,
                                          struct str method, struct str path)
{
	size_t i;

	if (!p)
		return NULL;
	for (i = 0; i < p->nroutes; i++) {
		const struct dst_route *r = &p->routes[i];

		if (r->method.len && !str_eq(r->method, method))
			continue;
		if (r->kind == DST_PATH_EXACT && !str_eq(r->path, path))
			continue;
		if (r->kind == DST_PATH_PREFIX &&
		    !str_has_prefix(path, r->path))
			continue;
		return r;
	}
	return NULL;
}

/* --- waiters --- */

/* Moves every waiter of <t> to the notify queue with <res>. */
static void dst_wake(struct dst *d, struct dst_target *t, enum dst_result res)
{
	struct dst_wait *w;

	while ((w = t->waiters)) {
		t->waiters = w->next;
		if (w->next)
			w->next->prev = NULL;
		w->res = res;
		w->queued = 1;
		w->prev = NULL;
		w->next = d->notifyq;
		if (d->notifyq)
			d->notifyq->prev = w;
		d->notifyq = w;
	}
	if (d->notifyq)
		loop_defer(d->loop, &d->notify);
}

static void dst_target_maybe_idle(struct dst_target *t);

static void dst_notify_run(void *arg)
{
	struct dst *d = arg;
	struct dst_wait *w;
	struct dst_target *t;

	while ((w = d->notifyq)) {
		d->notifyq = w->next;
		if (w->next)
			w->next->prev = NULL;
		w->next = w->prev = NULL;
		w->queued = 0;
		w->armed = 0;
		t = w->t;
		w->t = NULL;
		t->nwaiters--;
		t->refs++;               /* alive during the callback */
		w->cb(w->arg, t, w->res);
		dst_target_unref(t);
	}
}

int dst_wait(struct dst_target *t, struct dst_wait *w, dst_wait_fn cb,
             void *arg)
{
	if (w->armed)
		return -EBUSY;
	if (t->state != DST_PENDING)
		return -EALREADY;
	if (t->failed)
		return -ETIMEDOUT;
	w->cb = cb;
	w->arg = arg;
	w->t = t;
	w->queued = 0;
	w->armed = 1;
	w->prev = NULL;
	w->next = t->waiters;
	if (t->waiters)
		t->waiters->prev = w;
	t->waiters = w;
	t->nwaiters++;
	return 0;
}

void dst_wait_cancel(struct dst_wait *w)
{
	struct dst_target *t;

	if (!w || !w->armed)
		return;
	t = w->t;
	if (w->prev)
		w->prev->next = w->next;
	else if (w->queued)
		t->d->notifyq = w->next;
	else
		t->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->armed = 0;
	w->queued = 0;
	w->t = NULL;
	t->nwaiters--;
	dst_target_maybe_idle(t);
}

/* --- targets: state changes --- */

static void dst_changed(struct dst_target *t)
{
	t->version++;
}

/* <t> left PENDING (or not): wake waiters, stop the resolution timer. */
static void dst_settle(struct dst *d, struct dst_target *t)
{
	if (t->state == DST_PENDING)
		return;
	t->failed = 0;
	loop_timer_stop(d->loop, &t->resolve_timer);
	dst_wake(d, t, t->state == DST_RESOLVED ? DST_R_RESOLVED
	                                        : DST_R_UNKNOWN);
}

static void dst_on_update(struct dst *d, struct dst_target *t,
                          struct dst_slot *s, const struct dst_pb_update *u)
{
	union {
		struct api_pb_weighted_addr_set add;
		struct api_pb_addr_set rm;
		struct api_pb_no_endpoints ne;
	} m;
	const struct pb_msg_desc *desc;
	struct str in;
	int r;

	switch (u->update) {
	case API_PB_UPDATE_ADD:
		desc = &api_pb_weighted_addr_set_desc;
		in = u->add;
		break;
	case API_PB_UPDATE_REMOVE:
		desc = &api_pb_addr_set_desc;
		in = u->remove;
		break;
	case API_PB_UPDATE_NO_ENDPOINTS:
		desc = &api_pb_no_endpoints_desc;
		in = u->no_endpoints;
		break;
	default:
		return;                  /* a newer kind: ignore */
	}
	r = dst_decode_grow(d, desc, &m, in);
	if (r < 0) {
		/* the stream is out of sync now: reopen it (full set) */
		d->stats.bad_messages++;
		if (s->call && s->call->cc)
			grpc_ccall_cancel(s->call->cc, GRPC_INTERNAL);
		return;
	}
	switch (u->update) {
	case API_PB_UPDATE_ADD:
		if (dst_apply_add(d, t, &m.add, s->snap) < 0) {
			if (s->call && s->call->cc)
				grpc_ccall_cancel(s->call->cc,
				                  GRPC_RESOURCE_EXHAUSTED);
			return;
		}
		s->snap = 0;
		t->stale = 0;
		t->state = DST_RESOLVED;
		break;
	case API_PB_UPDATE_REMOVE:
		/* a remove before the first add of a stream is a delta on
		 * what we kept; the next add still replaces the set */
		if (dst_apply_remove(t, &m.rm) < 0) {
			if (s->call && s->call->cc)
				grpc_ccall_cancel(s->call->cc,
				                  GRPC_RESOURCE_EXHAUSTED);
			return;
		}
		break;
	case API_PB_UPDATE_NO_ENDPOINTS:
		dst_clear_set(t);
		s->snap = 0;
		t->stale = 0;
		t->state = m.ne.exists ? DST_RESOLVED : DST_UNKNOWN;
		break;
	}
	dst_changed(t);
	dst_settle(d, t);
}

static void dst_on_profile(struct dst *d, struct dst_target *t,
                           struct dst_slot *s, const struct dst_pb_profile *raw)
{
	struct dst_profile *pf;
	int rc = 0;

	pf = dst_profile_make(d, raw, &rc);
	if (!pf) {
		if (rc == -EINVAL)
			d->stats.bad_messages++;
		if (s->call && s->call->cc)
			grpc_ccall_cancel(s->call->cc, rc == -ENOMEM ?
			                  GRPC_RESOURCE_EXHAUSTED :
			                  GRPC_INTERNAL);
		return;
	}
	s->snap = 0;
	dst_profile_free(t->profile);
	t->profile = pf;
	dst_changed(t);
}

/* --- calls --- */

static void dst_dirty(struct dst *d)
{
	if (d->cl)
		loop_defer(d->loop, &d->flush);
}

static void dst_call_unlink(struct dst *d, struct dst_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		d->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void dst_slot_arm_retry(struct dst *d, struct dst_slot *s)
{
	uint64_t ms = dst_backoff(d, s->attempt);

	if (s->attempt < 32)
		s->attempt++;
	loop_timer_arm(d->loop, &s->retry, ms);
}

static void dst_cc_message(void *ctx, struct grpc_ccall *cc, const void *msg)
{
	struct dst_call *c = ctx;
	struct dst *d = c->d;
	struct dst_target *t = c->t;
	struct dst_slot *s;

	(void)cc;
	if (!t)
		return;
	s = &t->slot[c->kind];
	d->stats.updates++;
	d->attempt = 0;              /* the controller answers: fresh start */
	s->attempt = 0;
	if (c->kind == DST_SLOT_GET)
		dst_on_update(d, t, s, msg);
	else
		dst_on_profile(d, t, s, msg);
}

static void dst_cc_status(void *ctx, struct grpc_ccall *cc,
                          enum grpc_status st, const char *message)
{
	struct dst_call *c = ctx;
	struct dst *d = c->d;
	struct dst_target *t = c->t;
	struct dst_slot *s;

	(void)cc;
	(void)st;
	(void)message;
	if (c->starting) {           /* dst_slot_start cleans up */
		c->ended = 1;
		return;
	}
	dst_call_unlink(d, c);
	s = t ? &t->slot[c->kind] : NULL;
	mem_free(c);
	if (!t)
		return;
	s->call = NULL;
	s->snap = 1;
	if (s->kind == DST_SLOT_GET && t->state != DST_PENDING && !t->stale) {
		t->stale = 1;
		dst_changed(t);
	}
	if (d->closing || d->dead)
		return;                  /* the reconnect reopens it */
	d->stats.stream_restarts++;
	dst_slot_arm_retry(d, s);
	loop_defer(d->loop, &d->kick);
}

static const struct grpc_ccall_cb dst_ccb = { dst_cc_message,
                                              dst_cc_status };

static void dst_conn_down_later(struct dst *d);

static void dst_startq_del(struct dst *d, struct dst_slot *s)
{
	if (!s->queued)
		return;
	if (s->qprev)
		s->qprev->qnext = s->qnext;
	else
		d->startq = s->qnext;
	if (s->qnext)
		s->qnext->qprev = s->qprev;
	else
		d->startq_tail = s->qprev;
	s->qprev = s->qnext = NULL;
	s->queued = 0;
}

static void dst_startq_add(struct dst *d, struct dst_slot *s)
{
	if (s->queued)
		return;
	s->queued = 1;
	s->qnext = NULL;
	s->qprev = d->startq_tail;
	if (d->startq_tail)
		d->startq_tail->qnext = s;
	else
		d->startq = s;
	d->startq_tail = s;
}

/* The target that holds slot <s>. */
static struct dst_target *dst_slot_owner(struct dst_slot *s)
{
	return container_of(s - s->kind, struct dst_target, slot[0]);
}

/* Opens the stream of slot <kind> of <t> when the connection is up. */
static void dst_slot_start(struct dst *d, struct dst_target *t, int kind)
{
	struct dst_slot *s = &t->slot[kind];
	struct api_pb_get_destination g;
	struct dst_call *c;
	int rc = 0;

	if (d->conn != DST_CONN_UP || s->call || d->closing)
		return;
	loop_timer_stop(d->loop, &s->retry);
	dst_startq_del(d, s);
	if (h2_can_submit(grpc_client_h2(d->cl)) == 0) {
		dst_startq_add(d, s);
		return;
	}
	c = mem_calloc(1, sizeof(*c));
	if (!c) {
		dst_slot_arm_retry(d, s);
		return;
	}
	c->d = d;
	c->t = t;
	c->kind = kind;
	memset(&g, 0, sizeof(g));
	g.path = t->authority;
	g.context_token = str_from_cstr(d->token);
	c->next = d->calls;
	if (d->calls)
		d->calls->prev = c;
	d->calls = c;
	s->call = c;
	s->snap = 1;
	c->starting = 1;
	c->cc = grpc_client_call(d->cl, str_from_cstr(d->ctl_name),
	                         kind == DST_SLOT_GET ? API_PB_DESTINATION_GET
	                                   : API_PB_DESTINATION_GET_PROFILE,
	                         &api_pb_get_destination_desc, &g,
	                         kind == DST_SLOT_GET ? &dst_pb_update_desc
	                                              : &dst_pb_profile_desc,
	                         0, &dst_ccb, c, &rc);
	c->starting = 0;
	if (!c->cc || c->ended) {
		/* refused, or ended at once (the session failed inside) */
		s->call = NULL;
		dst_call_unlink(d, c);
		mem_free(c);
		if (rc == 0)
			dst_conn_down_later(d);
		else if (rc == -EAGAIN)
			dst_startq_add(d, s);
		else if (rc == -EPIPE)
			dst_conn_down_later(d);
		else
			dst_slot_arm_retry(d, s);
		return;
	}
	dst_dirty(d);
}

static void dst_kick_run(void *arg)
{
	struct dst *d = arg;
	struct dst_slot *s;

	while ((s = d->startq) && d->conn == DST_CONN_UP && d->cl &&
	       h2_can_submit(grpc_client_h2(d->cl)) > 0) {
		dst_startq_del(d, s);
		dst_slot_start(d, dst_slot_owner(s), s->kind);
		if (s->queued)
			break;
	}
}

static void dst_slot_retry_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst_slot *s = container_of(tm, struct dst_slot, retry);
	struct dst_target *t = dst_slot_owner(s);

	(void)loop;
	dst_slot_start(t->d, t, s->kind);
}

/* Detaches and cancels the call of slot <s> (the wrapper lives on until
 * its on_status). */
static void dst_slot_stop(struct dst *d, struct dst_slot *s)
{
	struct dst_call *c = s->call;

	loop_timer_stop(d->loop, &s->retry);
	dst_startq_del(d, s);
	s->call = NULL;
	if (!c)
		return;
	c->t = NULL;
	if (c->cc && d->cl) {
		grpc_ccall_cancel(c->cc, GRPC_CANCELLED);
		dst_dirty(d);
	}
}

/* --- targets: life cycle --- */

static void dst_idle_del(struct dst *d, struct dst_target *t)
{
	if (!t->idle)
		return;
	if (t->iprev)
		t->iprev->inext = t->inext;
	else
		d->idle_head = t->inext;
	if (t->inext)
		t->inext->iprev = t->iprev;
	else
		d->idle_tail = t->iprev;
	t->iprev = t->inext = NULL;
	t->idle = 0;
	loop_timer_stop(d->loop, &t->idle_timer);
}

static void dst_target_destroy(struct dst *d, struct dst_target *t)
{
	struct dst_target **pp;
	struct dst_wait *w;

	dst_idle_del(d, t);
	dst_slot_stop(d, &t->slot[0]);
	dst_slot_stop(d, &t->slot[1]);
	loop_timer_stop(d->loop, &t->resolve_timer);
	while ((w = t->waiters)) {       /* only from dst_fini */
		t->waiters = w->next;
		w->next = w->prev = NULL;
		w->armed = 0;
		w->t = NULL;
	}
	for (pp = &d->htab[t->hash & (d->hsize - 1)]; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	if (t->prev)
		t->prev->next = t->next;
	else
		d->all = t->next;
	if (t->next)
		t->next->prev = t->prev;
	dst_clear_set(t);
	dst_profile_free(t->profile);
	mem_free((char *)t->authority.p);
	mem_free(t);
	d->stats.targets--;
}

static void dst_idle_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst_target *t = container_of(tm, struct dst_target, idle_timer);

	(void)loop;
	dst_target_destroy(t->d, t);
}

static void dst_target_maybe_idle(struct dst_target *t)
{
	struct dst *d = t->d;

	if (t->refs || t->nwaiters || t->idle || d->dead)
		return;
	t->idle = 1;
	t->inext = NULL;
	t->iprev = d->idle_tail;
	if (d->idle_tail)
		d->idle_tail->inext = t;
	else
		d->idle_head = t;
	d->idle_tail = t;
	loop_timer_arm(d->loop, &t->idle_timer, d->cfg.idle_ms);
}

void dst_target_ref(struct dst_target *t)
{
	t->refs++;
	dst_idle_del(t->d, t);
}

void dst_target_unref(struct dst_target *t)
{
	if (!t)
		return;
	if (t->refs)
		t->refs--;
	dst_target_maybe_idle(t);
}

static void dst_resolve_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst_target *t = container_of(tm, struct dst_target,
	                                    resolve_timer);

	(void)loop;
	if (t->state != DST_PENDING)
		return;
	t->failed = 1;
	t->d->stats.resolve_failures++;
	dst_changed(t);
	dst_wake(t->d, t, DST_R_FAILED);
}

static int dst_hash_grow(struct dst *d)
{
	uint32_t n = d->hsize ? d->hsize * 2 : DST_HASH_MIN, i;
	struct dst_target **nt, *t, *next;

	nt = mem_calloc(n, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	for (i = 0; i < d->hsize; i++)
		for (t = d->htab[i]; t; t = next) {
			next = t->hnext;
			t->hnext = nt[t->hash & (n - 1)];
			nt[t->hash & (n - 1)] = t;
		}
	mem_free(d->htab);
	d->htab = nt;
	d->hsize = n;
	return 0;
}

static void dst_connect(struct dst *d);

struct dst_target *dst_lookup(struct dst *d, struct str authority)
{
	struct dst_target *t;
	uint32_t h;
	char *copy;

	d->stats.lookups++;
	if (!authority.len || authority.len > DST_MAX_AUTHORITY || d->dead) {
		d->stats.lookup_refused++;
		return NULL;
	}
	h = dst_hash(authority);
	if (d->hsize)
		for (t = d->htab[h & (d->hsize - 1)]; t; t = t->hnext)
			if (t->hash == h && str_eq(t->authority, authority)) {
				dst_target_ref(t);
				return t;
			}
	if (d->stats.targets >= d->cfg.max_targets) {
		if (!d->idle_head) {
			d->stats.lookup_refused++;
			return NULL;
		}
		dst_target_destroy(d, d->idle_head);
	}
	if ((d->stats.targets + 1 > d->hsize && dst_hash_grow(d) < 0) ||
	    !(t = mem_calloc(1, sizeof(*t)))) {
		d->stats.lookup_refused++;
		return NULL;
	}
	copy = mem_strndup(authority.p, authority.len);
	if (!copy) {
		mem_free(t);
		d->stats.lookup_refused++;
		return NULL;
	}
	t->authority = str_make(copy, authority.len);
	t->d = d;
	t->hash = h;
	t->refs = 1;
	loop_timer_init(&t->resolve_timer, dst_resolve_cb);
	loop_timer_init(&t->idle_timer, dst_idle_cb);
	loop_timer_init(&t->slot[0].retry, dst_slot_retry_cb);
	loop_timer_init(&t->slot[1].retry, dst_slot_retry_cb);
	t->slot[0].snap = t->slot[1].snap = 1;
	t->slot[0].kind = DST_SLOT_GET;
	t->slot[1].kind = DST_SLOT_PROFILE;
	t->hnext = d->htab[h & (d->hsize - 1)];
	d->htab[h & (d->hsize - 1)] = t;
	t->next = d->all;
	if (d->all)
		d->all->prev = t;
	d->all = t;
	d->stats.targets++;
	loop_timer_arm(d->loop, &t->resolve_timer, d->cfg.resolve_timeout_ms);
	if (d->conn == DST_CONN_UP) {
		dst_slot_start(d, t, DST_SLOT_GET);
		dst_slot_start(d, t, DST_SLOT_PROFILE);
	} else if (d->conn == DST_CONN_DOWN &&
	           !loop_timer_armed(&d->reconnect)) {
		dst_connect(d);
	}
	return t;
}

/* --- connection --- */

static void dst_io_set(struct dst *d, int events)
{
	if (d->fd < 0 || events == d->io_events)
		return;
	ev_io_stop(d->loop->ev, &d->io);
	ev_io_set(&d->io, d->fd, events);
	if (events)
		ev_io_start(d->loop->ev, &d->io);
	d->io_events = events;
}

/* Closes the transport and the session; every target turns stale. Loop
 * context only (never from a gRPC/h2 callback). */
static void dst_conn_down(struct dst *d)
{
	struct dst_target *t;
	struct dst_call *c;
	int was_up = d->cl != NULL;

	if (d->conn == DST_CONN_DOWN)
		return;
	d->closing = 1;
	loop_timer_stop(d->loop, &d->conn_timer);
	loop_timer_stop(d->loop, &d->ka_timer);
	d->ka_sent = 0;
	loop_defer_cancel(d->loop, &d->flush);
	dst_io_set(d, 0);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	d->io_events = 0;
	if (d->cl) {
		h2_abort(grpc_client_h2(d->cl), H2_NO_ERROR, "peer_closed");
		grpc_client_free(d->cl);
		d->cl = NULL;
	}
	/* wrappers the session freed without on_status */
	while ((c = d->calls)) {
		dst_call_unlink(d, c);
		if (c->t)
			c->t->slot[c->kind].call = NULL;
		mem_free(c);
	}
	buf_reset(&d->out);
	d->h2_failed = 0;
	d->conn = DST_CONN_DOWN;
	d->closing = 0;
	if (was_up)
		d->stats.disconnects++;
	for (t = d->all; t; t = t->next) {
		int k;

		for (k = 0; k < 2; k++) {
			loop_timer_stop(d->loop, &t->slot[k].retry);
			dst_startq_del(d, &t->slot[k]);
			t->slot[k].call = NULL;
			t->slot[k].snap = 1;
		}
		if (t->state != DST_PENDING && !t->stale) {
			t->stale = 1;
			dst_changed(t);
		}
	}
	if (d->all && !d->dead)
		loop_timer_arm(d->loop, &d->reconnect,
		               dst_backoff(d, d->attempt < 32 ? d->attempt++
		                                              : d->attempt));
}

/* From a callback: the connection must go (h2 refused a new stream). */
static void dst_conn_down_later(struct dst *d)
{
	d->h2_failed = 1;
	dst_dirty(d);
}

/* Pulls h2 output and writes it; closes when h2 is done. */
static void dst_flush_run(void *arg)
{
	struct dst *d = arg;
	struct h2_conn *h2;
	ssize_t n;
	int ev = 0;

	if (!d->cl || d->conn != DST_CONN_UP)
		return;
	h2 = grpc_client_h2(d->cl);
	for (;;) {
		if (buf_len(&d->out)) {
			n = send(d->fd, buf_data(&d->out), buf_len(&d->out),
			         MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				dst_conn_down(d);
				return;
			}
			buf_consume(&d->out, (size_t)n);
			if (buf_len(&d->out))
				break;
			buf_reset(&d->out);
		}
		n = h2_output(h2, &d->out);
		if (n <= 0)
			break;
	}
	if (!buf_len(&d->out) && (h2_is_closed(h2) || d->h2_failed)) {
		dst_conn_down(d);
		return;
	}
	if (buf_len(&d->out))
		ev |= EV_WRITE;
	if (!d->h2_failed && h2_want_read(h2))
		ev |= EV_READ;
	dst_io_set(d, ev);
	if (d->startq)
		loop_defer(d->loop, &d->kick);
}

/* Keepalive: fires when the next PING is due (interval after the last one
 * went) or when the one out must have been answered (timeout after it
 * went). Loop time; h2 only tells whether the PING is unanswered. */
static void dst_ka_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst *d = container_of(tm, struct dst, ka_timer);
	uint64_t now = loop_now_ms(loop), iv = d->cfg.keepalive_interval_ms;
	uint64_t to = d->cfg.keepalive_timeout_ms;
	struct h2_conn *h2;

	if (d->conn != DST_CONN_UP || !d->cl)
		return;
	h2 = grpc_client_h2(d->cl);
	if (d->ka_sent && h2_ping_outstanding(h2, NULL)) {
		if (now - d->ka_sent >= to) {
			d->stats.keepalive_timeouts++;
			dst_conn_down(d);
			return;
		}
		loop_timer_arm(loop, &d->ka_timer, d->ka_sent + to - now);
		return;
	}
	if (d->ka_sent && now - d->ka_sent < iv) {
		loop_timer_arm(loop, &d->ka_timer, d->ka_sent + iv - now);
		return;
	}
	if (h2_ping(h2) < 0)
		return;   /* the connection is ending: the flush path closes */
	d->ka_sent = now ? now : 1;
	loop_timer_arm(loop, &d->ka_timer, to < iv ? to : iv);
	dst_dirty(d);
}

static void dst_connected(struct dst *d)
{
	struct h2_limits lim;
	struct dst_target *t;
	char err[128];
	int e = sock_connect_result(d->fd);

	loop_timer_stop(d->loop, &d->conn_timer);
	if (e < 0)
		goto fail;
	h2_limits_default(&lim);
	/* two streams per target, all on this connection */
	if (lim.max_concurrent_streams < 2 * d->cfg.max_targets + 2)
		lim.max_concurrent_streams = 2 * d->cfg.max_targets + 2;
	if (lim.mem_max < (size_t)d->cfg.max_targets * 2 * 2048)
		lim.mem_max = (size_t)d->cfg.max_targets * 2 * 2048;
	d->cl = grpc_client_new(&lim, d->cfg.max_msg, d->cfg.call_arena, err,
	                        sizeof(err));
	if (!d->cl)
		goto fail;
	(void)sock_set_nodelay(d->fd);
	d->conn = DST_CONN_UP;
	d->stats.connects++;
	d->ka_sent = 0;
	if (d->cfg.keepalive_interval_ms)
		loop_timer_arm(d->loop, &d->ka_timer,
		               d->cfg.keepalive_interval_ms);
	for (t = d->all; t; t = t->next) {
		dst_slot_start(d, t, DST_SLOT_GET);
		dst_slot_start(d, t, DST_SLOT_PROFILE);
	}
	dst_flush_run(d);
	return;
fail:
	d->stats.connect_failures++;
	dst_conn_down(d);
}

static void dst_io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct dst *d = container_of(w, struct dst, io);
	ssize_t n;

	(void)ev;
	if (d->conn == DST_CONN_CONNECTING) {
		dst_connected(d);
		return;
	}
	if (revents & EV_READ) {
		n = read(d->fd, dst_rbuf, sizeof(dst_rbuf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			dst_conn_down(d);
			return;
		}
		if (n > 0 && h2_feed(grpc_client_h2(d->cl), dst_rbuf,
		                     (size_t)n) < 0)
			d->h2_failed = 1;
	}
	dst_flush_run(d);
}

static void dst_conn_timer_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst *d = container_of(tm, struct dst, conn_timer);

	(void)loop;
	if (d->conn == DST_CONN_CONNECTING) {
		d->stats.connect_failures++;
		dst_conn_down(d);
	}
}

/* Starts a connection attempt (or schedules the next one). */
static void dst_connect(struct dst *d)
{
	int fd;

	if (d->conn != DST_CONN_DOWN || d->dead)
		return;
	fd = sock_connect(&d->ctl, NULL);
	if (fd < 0) {
		d->stats.connect_failures++;
		loop_timer_arm(d->loop, &d->reconnect,
		               dst_backoff(d, d->attempt < 32 ? d->attempt++
		                                              : d->attempt));
		return;
	}
	d->fd = fd;
	d->conn = DST_CONN_CONNECTING;
	d->io_events = 0;
	dst_io_set(d, EV_WRITE);
	loop_timer_arm(d->loop, &d->conn_timer, d->cfg.connect_timeout_ms);
}

static void dst_reconnect_cb(struct loop *loop, struct loop_timer *tm)
{
	struct dst *d = container_of(tm, struct dst, reconnect);

	(void)loop;
	if (d->all)
		dst_connect(d);
}

/* --- setup --- */

int dst_init(struct dst *d, struct loop *loop,
             const struct sock_addr *controller, const struct dst_cfg *cfg)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->loop = loop;
	if (cfg)
		d->cfg = *cfg;
	else
		dst_cfg_default(&d->cfg);
	if (!d->cfg.max_targets)
		d->cfg.max_targets = DST_MAX_TARGETS_DEFAULT;
	if (!d->cfg.backoff_min_ms)
		d->cfg.backoff_min_ms = 1;
	if (d->cfg.backoff_max_ms < d->cfg.backoff_min_ms)
		d->cfg.backoff_max_ms = d->cfg.backoff_min_ms;
	if (!d->cfg.max_decode)
		d->cfg.max_decode = DST_SCRATCH_MIN;
	if (d->cfg.max_labels > DST_LABELS_HARD)
		d->cfg.max_labels = DST_LABELS_HARD;
	d->token = mem_strdup(d->cfg.context_token ? d->cfg.context_token
	                                           : "");
	if (!d->token)
		return -ENOMEM;
	d->cfg.context_token = d->token;
	d->ctl = *controller;
	if (sock_addr_format(controller, d->ctl_name, sizeof(d->ctl_name)) < 0)
		d->ctl_name[0] = '\0';
	d->rng = d->cfg.jitter_seed ? d->cfg.jitter_seed :
	         (uint32_t)(loop_now_ms(loop) * 2654435761u) | 1u;
	buf_init(&d->out, DST_OUT_LIMIT);
	ev_io_init(&d->io, dst_io_cb, 0, 0);
	loop_defer_init(&d->flush, dst_flush_run, d);
	loop_defer_init(&d->notify, dst_notify_run, d);
	loop_defer_init(&d->kick, dst_kick_run, d);
	loop_timer_init(&d->reconnect, dst_reconnect_cb);
	loop_timer_init(&d->conn_timer, dst_conn_timer_cb);
	loop_timer_init(&d->ka_timer, dst_ka_cb);
	if (!d->cfg.keepalive_timeout_ms)
		d->cfg.keepalive_timeout_ms = 1;
	return 0;
}

void dst_fini(struct dst *d)
{
	struct dst_wait *w;

	if (!d->loop)
		return;
	d->dead = 1;
	while ((w = d->notifyq)) {       /* disarmed without a call */
		d->notifyq = w->next;
		w->next = w->prev = NULL;
		w->armed = w->queued = 0;
		w->t = NULL;
	}
	while (d->all)
		dst_target_destroy(d, d->all);
	dst_conn_down(d);
	loop_timer_stop(d->loop, &d->reconnect);
	loop_timer_stop(d->loop, &d->conn_timer);
	loop_timer_stop(d->loop, &d->ka_timer);
	loop_defer_cancel(d->loop, &d->flush);
	loop_defer_cancel(d->loop, &d->notify);
	loop_defer_cancel(d->loop, &d->kick);
	buf_free(&d->out);
	MEM_FREE(&d->htab);
	MEM_FREE(&d->scratch);
	MEM_FREE(&d->token);
	d->loop = NULL;
}
