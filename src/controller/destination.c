/*
 * destination: the Destination gRPC service (see destination.h).
 *
 * IMPLEMENTATION NOTES
 * State. d->current is the newest registry snapshot (one reference). Each
 * stream (struct dst_stream) is a Get or a GetProfile call. A stream whose
 * path names a registry service ("name.ns[.svc.<domain>][:port]") hangs on
 * the watch entry of its (name, ns, port) key (struct dst_watch, a chained
 * hash table); other paths (an IP literal, another domain) can never
 * resolve: they are told "unknown" once and then only wait for their end.
 *
 * Telling a Get stream. A stream holds <base>, the snapshot its client
 * knows in full, and while a change is on its way <target> and a plan:
 * the messages that take the client from base to target (no_endpoints, or
 * removes then adds, each split into chunks of DESTINATION_CHUNK_ADDRS).
 * The plan is a pair of index lists into the two snapshots' endpoint
 * arrays plus offsets of what was sent, so a send refused with -EAGAIN is
 * simply retried from on_writable; when the plan is done, base = target,
 * and if the current snapshot moved on meanwhile the next plan goes from
 * there: a slow client skips the snapshots in between. Messages are built
 * in a scratch block owned by the role, reused for every message.
 *
 * A new snapshot (bus delivery) walks the watch entries: one content
 * comparison of the key's old and new view (destination_port_same,
 * destination_profile_same) decides whether its streams must be told
 * anything. Streams of unchanged keys only move their <base> reference to
 * the new snapshot, so old snapshots are freed as soon as no slow stream
 * still needs them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/cserver.h"
#include "controller/destination.h"
#include "core/api_pb.h"
#include "core/grpc.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"

#define DST_MOD "controller.destination"
#define DST_ARENA 512          /* GetDestination has no repeated field */
#define DST_MAX_MSG (4u << 20)

enum dst_plan_kind {
	DST_P_NONE = 0,     /* nothing to tell */
	DST_P_NOEPS,        /* one no_endpoints{exists} */
	DST_P_EPS,          /* removes, then adds */
};

struct dst_plan {
	enum dst_plan_kind kind;
	int exists;                       /* DST_P_NOEPS */
	int sent;                         /* DST_P_NOEPS went out */
	int add_all;                      /* add = every target endpoint */
	const struct registry_service *tsvc;
	const struct registry_port *bport, *tport;
	uint32_t *rm, *add;               /* heap, NULL when empty/add_all */
	size_t nrm, nadd, rm_off, add_off;
};

struct dst_watch;

struct dst_stream {
	struct destination *d;
	struct cserver_conn *conn;
	struct grpc_call *call;
	struct dst_watch *w;              /* NULL: the path never resolves */
	struct dst_stream *wprev, *wnext; /* in w's list of its kind */
	struct dst_stream *aprev, *anext; /* every stream */
	int profile;                      /* GetProfile, else Get */
	int told;                         /* the client knows <base> */
	int blocked;                      /* waiting for on_writable */
	int finished;                     /* grpc_call_finish was called */
	struct registry *base;            /* ref, or NULL */
	struct registry *target;          /* ref while a plan runs */
	struct dst_plan plan;
	struct loop_timer deadline;
	char path[DESTINATION_PATH_MAX + 1];
};

struct dst_watch {
	struct dst_watch *hnext;
	uint64_t hash;
	struct str name, ns;              /* into <key> */
	uint16_t port;
	struct dst_stream *gets;
	struct dst_stream *profiles;
	char key[];                       /* "name\0ns\0" */
};

enum dst_method { DST_M_GET = 0, DST_M_PROFILE, DST_M_N };

struct destination {
	struct loop *loop;
	struct bus *bus;
	struct bus_sub *sub;
	struct destination_cfg cfg;
	struct cserver *srv;
	struct registry *current;         /* ref */
	struct dst_watch **buckets;
	uint32_t nbuckets;                /* power of two */
	uint32_t nwatch;
	uint64_t hseed;
	struct dst_stream *streams;       /* all */
	uint32_t nstreams;
	int draining;
	char *scratch;                    /* message building */
	size_t scratch_cap;
	/* metrics */
	struct metrics_family *f_handled;
	struct metrics_series *m_streams[DST_M_N];
	struct metrics_series *m_started[DST_M_N];
	struct metrics_series *m_updates[DST_M_N];
	struct metrics_series *m_conns;
	struct metrics_series *m_snapshots;
};

static const char *const dst_method_names[DST_M_N] = { "Get", "GetProfile" };

/* ------------------------------------------------------------------ */
/* pure helpers                                                        */
/* ------------------------------------------------------------------ */

int destination_ep_cmp(const struct registry_endpoint *a,
                       const struct registry_endpoint *b)
{
	int c;

	if (a->iplen != b->iplen)
		return a->iplen < b->iplen ? -1 : 1;
	c = memcmp(a->ip, b->ip, a->iplen <= 16 ? a->iplen : 16);
	if (c)
		return c < 0 ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

static int dst_cstr_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int destination_ep_same(const struct registry_endpoint *a,
                        const struct registry_endpoint *b)
{
	const struct registry_workload *x = a->workload, *y = b->workload;
	size_t i;

	if (x == y)
		return 1;
	if (!x || !y)
		return 0;
	if (x->weight != y->weight || !x->meshed != !y->meshed ||
	    x->nlabels != y->nlabels || !dst_cstr_eq(x->name, y->name) ||
	    !dst_cstr_eq(x->ns, y->ns) ||
	    !dst_cstr_eq(x->service_account, y->service_account))
		return 0;
	for (i = 0; i < x->nlabels; i++)
		if (!dst_cstr_eq(x->labels[i].key, y->labels[i].key) ||
		    !dst_cstr_eq(x->labels[i].value, y->labels[i].value))
			return 0;
	return 1;
}

void destination_diff(const struct registry_endpoint *old, size_t nold,
                      const struct registry_endpoint *nw, size_t nnew,
                      int force, uint32_t *rm, size_t *nrm, uint32_t *add,
                      size_t *nadd)
{
	size_t i = 0, j = 0, r = 0, a = 0;
	int c;

	while (i < nold || j < nnew) {
		if (i == nold)
			c = 1;
		else if (j == nnew)
			c = -1;
		else
			c = destination_ep_cmp(&old[i], &nw[j]);
		if (c < 0) {
			rm[r++] = (uint32_t)i++;
		} else if (c > 0) {
			add[a++] = (uint32_t)j++;
		} else {
			if (force || !destination_ep_same(&old[i], &nw[j]))
				add[a++] = (uint32_t)j;
			i++;
			j++;
		}
	}
	*nrm = r;
	*nadd = a;
}

int destination_port_same(const struct registry_port *a,
                          const struct registry_port *b)
{
	size_t i;

	if (!a || !b)
		return a == b;
	if (a == b)
		return 1;
	if (a->proto != b->proto || a->neps != b->neps)
		return 0;
	for (i = 0; i < a->neps; i++)
		if (destination_ep_cmp(&a->eps[i], &b->eps[i]) != 0 ||
		    !destination_ep_same(&a->eps[i], &b->eps[i]))
			return 0;
	return 1;
}

static int dst_route_same(const struct registry_route *a,
                          const struct registry_route *b)
{
	return dst_cstr_eq(a->name, b->name) &&
	       dst_cstr_eq(a->method, b->method) &&
	       a->path_kind == b->path_kind &&
	       dst_cstr_eq(a->path, b->path) &&
	       !a->retryable == !b->retryable &&
	       a->timeout_ms == b->timeout_ms;
}

int destination_profile_same(const struct registry_service *sa,
                             const struct registry_port *pa,
                             const struct registry_service *sb,
                             const struct registry_port *pb)
{
	int oa = pa && pa->proto == REGISTRY_PROTO_OPAQUE;
	int ob = pb && pb->proto == REGISTRY_PROTO_OPAQUE;
	size_t i;

	if (!sa || !sb)
		return sa == sb && oa == ob;
	if (oa != ob || sa->nroutes != sb->nroutes ||
	    sa->timeout_ms != sb->timeout_ms ||
	    memcmp(&sa->retry_ratio, &sb->retry_ratio,
	           sizeof(sa->retry_ratio)) != 0 ||
	    sa->retry_min_per_second != sb->retry_min_per_second ||
	    sa->retry_ttl_ms != sb->retry_ttl_ms ||
	    !dst_cstr_eq(sa->name, sb->name) || !dst_cstr_eq(sa->ns, sb->ns))
		return 0;
	for (i = 0; i < sa->nroutes; i++)
		if (!dst_route_same(&sa->routes[i], &sb->routes[i]))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* watch index                                                         */
/* ------------------------------------------------------------------ */

static uint64_t dst_hash(const struct destination *d, struct str name,
                         struct str ns, uint16_t port)
{
	uint64_t h = 14695981039346656037ull ^ d->hseed;
	size_t i;

	for (i = 0; i < name.len; i++)
		h = (h ^ (unsigned char)name.p[i]) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (i = 0; i < ns.len; i++)
		h = (h ^ (unsigned char)ns.p[i]) * 1099511628211ull;
	h = (h ^ port) * 1099511628211ull;
	return h ^ (h >> 29);
}

static struct dst_watch *dst_watch_find(struct destination *d,
                                        struct str name, struct str ns,
                                        uint16_t port, uint64_t h)
{
	struct dst_watch *w;

	if (!d->nbuckets)
		return NULL;
	for (w = d->buckets[h & (d->nbuckets - 1)]; w; w = w->hnext)
		if (w->hash == h && w->port == port && str_eq(w->name, name) &&
		    str_eq(w->ns, ns))
			return w;
	return NULL;
}

static int dst_watch_grow(struct destination *d)
{
	uint32_t n = d->nbuckets ? d->nbuckets * 2 : 64, i;
	struct dst_watch **b = mem_calloc(n, sizeof(*b)), *w, *next;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < d->nbuckets; i++)
		for (w = d->buckets[i]; w; w = next) {
			next = w->hnext;
			w->hnext = b[w->hash & (n - 1)];
			b[w->hash & (n - 1)] = w;
		}
	mem_free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
	return 0;
}

/* The watch entry of (<name>, <ns>, <port>), created when missing; NULL
 * when memory is short. */
static struct dst_watch *dst_watch_get(struct destination *d,
                                       struct str name, struct str ns,
                                       uint16_t port)
{
	uint64_t h = dst_hash(d, name, ns, port);
	struct dst_watch *w = dst_watch_find(d, name, ns, port, h);

	if (w)
		return w;
	if (d->nwatch >= d->nbuckets && dst_watch_grow(d) < 0)
		return NULL;
	w = mem_calloc(1, sizeof(*w) + name.len + ns.len + 2);
	if (!w)
		return NULL;
	memcpy(w->key, name.p, name.len);
	memcpy(w->key + name.len + 1, ns.p, ns.len);
	w->name = str_make(w->key, name.len);
	w->ns = str_make(w->key + name.len + 1, ns.len);
	w->port = port;
	w->hash = h;
	w->hnext = d->buckets[h & (d->nbuckets - 1)];
	d->buckets[h & (d->nbuckets - 1)] = w;
	d->nwatch++;
	return w;
}

static void dst_watch_put(struct destination *d, struct dst_watch *w)
{
	struct dst_watch **pp;

	if (w->gets || w->profiles)
		return;
	for (pp = &d->buckets[w->hash & (d->nbuckets - 1)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == w) {
			*pp = w->hnext;
			break;
		}
	d->nwatch--;
	mem_free(w);
}

/* The service and port a watch names in <r> (either may be NULL). */
static const struct registry_port *dst_view(const struct registry *r,
                                            const struct dst_watch *w,
                                            const struct registry_service **s)
{
	*s = NULL;
	if (!r || !w)
		return NULL;
	*s = registry_find(r, w->name, w->ns);
	return *s ? registry_service_port(*s, w->port) : NULL;
}

/* ------------------------------------------------------------------ */
/* message building                                                    */
/* ------------------------------------------------------------------ */

/* Makes the scratch block at least <n> bytes; its content is lost. */
static void *dst_scratch(struct destination *d, size_t n)
{
	if (n > d->scratch_cap) {
		size_t cap = d->scratch_cap ? d->scratch_cap : 4096;

		while (cap < n)
			cap *= 2;
		mem_free(d->scratch);
		d->scratch = mem_alloc(cap);
		d->scratch_cap = d->scratch ? cap : 0;
		if (!d->scratch)
			return NULL;
	}
	return d->scratch;
}

struct dst_bump {
	char *p;
	size_t used, cap;
};

static void *dst_bump(struct dst_bump *b, size_t n)
{
	void *r;

	n = (n + 15) & ~(size_t)15;
	if (n > b->cap - b->used)
		return NULL;   /* sized beforehand: cannot happen */
	r = b->p + b->used;
	b->used += n;
	return r;
}

static size_t dst_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static struct str dst_s(const char *s)
{
	return str_from_cstr(s ? s : "");
}

/* Bytes of the identity name of workload <wl>, NUL excluded. */
static size_t dst_identity_len(const struct destination *d,
                               const struct registry_workload *wl)
{
	return dst_len(wl->service_account) + dst_len(wl->ns) +
	       sizeof(".serviceaccount.identity.meshd.") +
	       strlen(d->cfg.cluster_domain) + 1;
}

/* Scratch bytes endpoint <ep> takes in an add, and a bound on its encoded
 * size in <*wire>. */
static size_t dst_ep_need(const struct destination *d,
                          const struct registry_endpoint *ep, size_t *wire)
{
	const struct registry_workload *wl = ep->workload;
	size_t n = (wl->nlabels + 2) * sizeof(struct api_pb_label) + 16;
	size_t w = 64 + dst_len(wl->name) + dst_len(wl->service_account);
	size_t i;

	for (i = 0; i < wl->nlabels; i++)
		w += 12 + dst_len(wl->labels[i].key) +
		     dst_len(wl->labels[i].value);
	if (wl->meshed) {
		n += dst_identity_len(d, wl) + 16;
		w += dst_identity_len(d, wl) + 8;
	}
	*wire = w;
	return n + sizeof(struct api_pb_weighted_addr) + 16;
}

static void dst_fill_addr(struct destination *d, struct dst_bump *b,
                          const struct registry_port *port,
                          const struct registry_endpoint *ep,
                          struct api_pb_weighted_addr *wa)
{
	const struct registry_workload *wl = ep->workload;
	struct api_pb_label *l;
	size_t i, n = 0;

	memset(wa, 0, sizeof(*wa));
	wa->has_addr = 1;
	wa->addr.ip = str_make((const char *)ep->ip, ep->iplen);
	wa->addr.port = ep->port;
	wa->weight = wl->weight;
	l = dst_bump(b, (wl->nlabels + 2) * sizeof(*l));
	/* workload labels first: protobuf maps keep the last value, so pod
	 * and serviceaccount cannot be overridden by a label */
	for (i = 0; i < wl->nlabels; i++) {
		l[n].key = dst_s(wl->labels[i].key);
		l[n++].value = dst_s(wl->labels[i].value);
	}
	l[n].key = STR_LIT("pod");
	l[n++].value = dst_s(wl->name);
	l[n].key = STR_LIT("serviceaccount");
	l[n++].value = dst_s(wl->service_account);
	wa->metric_labels = l;
	wa->n_metric_labels = n;
	if (wl->meshed) {
		size_t cap = dst_identity_len(d, wl);
		char *id = dst_bump(b, cap);
		int k = snprintf(id, cap, "%s.%s.serviceaccount.identity."
		                 "meshd.%s", wl->service_account
		                 ? wl->service_account : "",
		                 wl->ns ? wl->ns : "", d->cfg.cluster_domain);

		wa->has_tls_identity = 1;
		wa->tls_identity.strategy = API_PB_TLS_IDENTITY_DNS_LIKE;
		wa->tls_identity.dns_like_identity.name =
			str_make(id, k > 0 && (size_t)k < cap ? (size_t)k : 0);
	}
	if (port->proto == REGISTRY_PROTO_OPAQUE) {
		wa->has_protocol_hint = 1;
		wa->protocol_hint.protocol = API_PB_PROTOCOL_HINT_OPAQUE;
	} else if (wl->meshed) {
		wa->has_protocol_hint = 1;
		wa->protocol_hint.protocol = API_PB_PROTOCOL_HINT_H2;
	}
}

static int dst_send(struct dst_stream *st, const struct pb_msg_desc *desc,
                    const void *msg)
{
	int rc = grpc_call_send(st->call, desc, msg);

	if (rc == 0) {
		metrics_counter_inc(st->d->m_updates[st->profile]);
		cserver_conn_kick(st->conn);
	}
	return rc;
}

/* Sends the next add chunk of the plan. 0 (sent), -EAGAIN or -errno. */
static int dst_send_add(struct dst_stream *st)
{
	struct destination *d = st->d;
	struct dst_plan *p = &st->plan;
	const struct registry_port *tp = p->tport;
	struct api_pb_update u;
	struct api_pb_label set[2];
	struct api_pb_weighted_addr *wa;
	struct dst_bump b;
	size_t k, need = 0, wire = 0, w, i;
	int rc;

	for (k = 0; p->add_off + k < p->nadd &&
	            k < DESTINATION_CHUNK_ADDRS; k++) {
		size_t idx = p->add_all ? p->add_off + k
		                        : p->add[p->add_off + k];

		need += dst_ep_need(d, &tp->eps[idx], &w);
		if (k > 0 && wire + w > DESTINATION_CHUNK_BYTES)
			break;
		wire += w;
	}
	b.p = dst_scratch(d, need + k * sizeof(*wa) + 64);
	if (!b.p)
		return -ENOMEM;
	b.cap = d->scratch_cap;
	b.used = 0;
	wa = dst_bump(&b, k * sizeof(*wa));
	for (i = 0; i < k; i++) {
		size_t idx = p->add_all ? p->add_off + i
		                        : p->add[p->add_off + i];

		dst_fill_addr(d, &b, tp, &tp->eps[idx], &wa[i]);
	}
	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_ADD;
	u.add.addrs = wa;
	u.add.n_addrs = k;
	set[0].key = STR_LIT("namespace");
	set[0].value = dst_s(p->tsvc->ns);
	set[1].key = STR_LIT("service");
	set[1].value = dst_s(p->tsvc->name);
	u.add.metric_labels = set;
	u.add.n_metric_labels = 2;
	rc = dst_send(st, &api_pb_update_desc, &u);
	if (rc == 0)
		p->add_off += k;
	return rc;
}

/* Sends the next remove chunk of the plan. */
static int dst_send_rm(struct dst_stream *st)
{
	struct destination *d = st->d;
	struct dst_plan *p = &st->plan;
	struct api_pb_tcp_address *ta;
	struct api_pb_update u;
	size_t k = p->nrm - p->rm_off, i;
	int rc;

	if (k > DESTINATION_CHUNK_ADDRS)
		k = DESTINATION_CHUNK_ADDRS;
	ta = dst_scratch(d, k * sizeof(*ta) + 16);
	if (!ta)
		return -ENOMEM;
	for (i = 0; i < k; i++) {
		const struct registry_endpoint *ep =
			&p->bport->eps[p->rm[p->rm_off + i]];

		ta[i].ip = str_make((const char *)ep->ip, ep->iplen);
		ta[i].port = ep->port;
	}
	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_REMOVE;
	u.remove.addrs = ta;
	u.remove.n_addrs = k;
	rc = dst_send(st, &api_pb_update_desc, &u);
	if (rc == 0)
		p->rm_off += k;
	return rc;
}

static int dst_send_noeps(struct dst_stream *st, int exists)
{
	struct api_pb_update u;

	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_NO_ENDPOINTS;
	u.no_endpoints.exists = exists;
	return dst_send(st, &api_pb_update_desc, &u);
}

static void dst_duration(uint64_t ms, struct api_pb_duration *out)
{
	out->seconds = (int64_t)(ms / 1000);
	out->nanos = (int32_t)((ms % 1000) * 1000000);
}

/* Sends the profile of <svc> (NULL: the empty profile) at <port>. */
static int dst_send_profile(struct dst_stream *st,
                            const struct registry_service *svc,
                            const struct registry_port *port)
{
	struct destination *d = st->d;
	struct api_pb_destination_profile pr;
	struct api_pb_route *rt = NULL;
	struct api_pb_label *lb = NULL;
	size_t i, nr = svc ? svc->nroutes : 0, fl = 0;
	char *fqn = NULL, *mem;

	memset(&pr, 0, sizeof(pr));
	if (svc) {
		fl = dst_len(svc->name) + dst_len(svc->ns) +
		     strlen(d->cfg.cluster_domain) + 8;
		mem = dst_scratch(d, nr * (sizeof(*rt) + sizeof(*lb)) + fl +
		                  64);
		if (!mem)
			return -ENOMEM;
		rt = (struct api_pb_route *)(void *)mem;
		lb = (struct api_pb_label *)(void *)(rt + nr);
		fqn = (char *)(lb + nr);
		snprintf(fqn, fl, "%s.%s.svc.%s", svc->name ? svc->name : "",
		         svc->ns ? svc->ns : "", d->cfg.cluster_domain);
		pr.fully_qualified_name = str_from_cstr(fqn);
		for (i = 0; i < nr; i++) {
			const struct registry_route *r = &svc->routes[i];
			uint64_t t = r->timeout_ms ? r->timeout_ms
			                           : svc->timeout_ms;

			memset(&rt[i], 0, sizeof(rt[i]));
			if (r->method || r->path_kind != REGISTRY_PATH_ANY)
				rt[i].has_condition = 1;
			rt[i].condition.method = dst_s(r->method);
			if (r->path_kind == REGISTRY_PATH_EXACT) {
				rt[i].condition.has_path = 1;
				rt[i].condition.path.kind =
					API_PB_PATH_MATCH_EXACT;
				rt[i].condition.path.exact = dst_s(r->path);
			} else if (r->path_kind == REGISTRY_PATH_PREFIX) {
				rt[i].condition.has_path = 1;
				rt[i].condition.path.kind =
					API_PB_PATH_MATCH_PREFIX;
				rt[i].condition.path.prefix = dst_s(r->path);
			}
			lb[i].key = STR_LIT("route");
			lb[i].value = dst_s(r->name);
			rt[i].metrics_labels = &lb[i];
			rt[i].n_metrics_labels = 1;
			rt[i].is_retryable = r->retryable != 0;
			if (t) {
				rt[i].has_timeout = 1;
				dst_duration(t, &rt[i].timeout);
			}
		}
		pr.routes = rt;
		pr.n_routes = nr;
		pr.has_retry_budget = 1;
		pr.retry_budget.retry_ratio = svc->retry_ratio;
		pr.retry_budget.min_retries_per_second =
			svc->retry_min_per_second;
		pr.retry_budget.has_ttl = 1;
		dst_duration(svc->retry_ttl_ms, &pr.retry_budget.ttl);
	}
	pr.opaque_protocol = port && port->proto == REGISTRY_PROTO_OPAQUE;
	return dst_send(st, &api_pb_destination_profile_desc, &pr);
}

/* ------------------------------------------------------------------ */
/* streams                                                             */
/* ------------------------------------------------------------------ */

static void dst_plan_clear(struct dst_plan *p)
{
	MEM_FREE(&p->rm);
	MEM_FREE(&p->add);
	memset(p, 0, sizeof(*p));
}

static void dst_finish(struct dst_stream *st, enum grpc_status code,
                       const char *msg)
{
	if (st->finished)
		return;
	st->finished = 1;
	loop_timer_stop(st->d->loop, &st->deadline);
	grpc_call_finish(st->call, code, msg);
	cserver_conn_kick(st->conn);
}

/*
 * Plans what takes a Get stream's client from what it knows (<base>, or
 * nothing yet) to <target>. 0 or -ENOMEM.
 */
static int dst_plan_begin(struct dst_stream *st)
{
	struct dst_plan *p = &st->plan;
	const struct registry_service *bs, *ts;
	const struct registry_port *bp = NULL, *tp;
	int first = !st->told;

	dst_plan_clear(p);
	if (!first)
		bp = dst_view(st->base, st->w, &bs);
	tp = dst_view(st->target, st->w, &ts);
	p->tsvc = ts;
	p->bport = bp;
	p->tport = tp;
	if (!tp) {
		if (first || bp) {
			p->kind = DST_P_NOEPS;
			p->exists = 0;
		}
		return 0;
	}
	if (tp->neps == 0) {
		if (first || !bp || bp->neps) {
			p->kind = DST_P_NOEPS;
			p->exists = 1;
		}
		return 0;
	}
	p->kind = DST_P_EPS;
	if (first || !bp || bp->neps == 0) {
		p->add_all = 1;
		p->nadd = tp->neps;
		return 0;
	}
	p->rm = bp->neps ? mem_alloc(bp->neps * sizeof(*p->rm)) : NULL;
	p->add = mem_alloc(tp->neps * sizeof(*p->add));
	if ((bp->neps && !p->rm) || !p->add) {
		dst_plan_clear(p);
		return -ENOMEM;
	}
	destination_diff(bp->eps, bp->neps, tp->eps, tp->neps,
	                 bp->proto != tp->proto, p->rm, &p->nrm, p->add,
	                 &p->nadd);
	if (p->nrm == 0 && p->nadd == 0)
		p->kind = DST_P_NONE;
	return 0;
}

/* Sends what the plan still holds. 0 when done, -EAGAIN or -errno. */
static int dst_plan_run(struct dst_stream *st)
{
	struct dst_plan *p = &st->plan;
	int rc;

	switch (p->kind) {
	case DST_P_NONE:
		return 0;
	case DST_P_NOEPS:
		if (!p->sent) {
			rc = dst_send_noeps(st, p->exists);
			if (rc < 0)
				return rc;
			p->sent = 1;
		}
		return 0;
	case DST_P_EPS:
		while (p->rm_off < p->nrm)
			if ((rc = dst_send_rm(st)) < 0)
				return rc;
		while (p->add_off < p->nadd)
			if ((rc = dst_send_add(st)) < 0)
				return rc;
		return 0;
	}
	return 0;
}

static void dst_set_base(struct dst_stream *st, struct registry *r)
{
	if (st->base == r)
		return;
	bus_msg_ref(r ? &r->msg : NULL);
	if (st->base)
		bus_msg_unref(&st->base->msg);
	st->base = r;
}

static void dst_fail(struct dst_stream *st, int rc)
{
	LOG_WARN(DST_MOD, "%s %s: cannot send: %s",
	         dst_method_names[st->profile], st->path, strerror(-rc));
	dst_finish(st, rc == -ENOMEM ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL,
	           "cannot encode the update");
}

/* Brings a Get stream's client up to the current snapshot, as far as its
 * connection takes. */
static void dst_get_pump(struct dst_stream *st)
{
	struct destination *d = st->d;
	int rc;

	for (;;) {
		if (st->finished || st->blocked)
			return;
		if (!st->target) {
			if (!st->w) {
				if (st->told)
					return;
			} else if (!d->current ||
			           (st->told && st->base == d->current)) {
				return;
			}
			if (st->w) {
				st->target = d->current;
				bus_msg_ref(&st->target->msg);
			}
			if (dst_plan_begin(st) < 0) {
				dst_fail(st, -ENOMEM);
				return;
			}
		}
		rc = dst_plan_run(st);
		if (rc == -EAGAIN) {
			st->blocked = 1;
			return;
		}
		if (rc < 0) {
			dst_fail(st, rc);
			return;
		}
		dst_plan_clear(&st->plan);
		dst_set_base(st, st->target);
		if (st->target)
			bus_msg_unref(&st->target->msg);
		st->target = NULL;
		st->told = 1;
	}
}

static void dst_profile_pump(struct dst_stream *st)
{
	struct destination *d = st->d;
	const struct registry_service *bs, *ts;
	const struct registry_port *bp, *tp;
	int rc;

	if (st->finished || st->blocked)
		return;
	if (!st->w) {
		if (st->told)
			return;
		ts = NULL;
		tp = NULL;
	} else {
		if (!d->current || (st->told && st->base == d->current))
			return;
		tp = dst_view(d->current, st->w, &ts);
		if (st->told) {
			bp = dst_view(st->base, st->w, &bs);
			if (destination_profile_same(bs, bp, ts, tp)) {
				dst_set_base(st, d->current);
				return;
			}
		}
	}
	rc = dst_send_profile(st, ts, tp);
	if (rc == -EAGAIN) {
		st->blocked = 1;
		return;
	}
	if (rc < 0) {
		dst_fail(st, rc);
		return;
	}
	st->told = 1;
	if (st->w)
		dst_set_base(st, d->current);
}

static void dst_pump(struct dst_stream *st)
{
	if (st->profile)
		dst_profile_pump(st);
	else
		dst_get_pump(st);
}

static void dst_deadline_cb(struct loop *loop, struct loop_timer *t)
{
	struct dst_stream *st = container_of(t, struct dst_stream, deadline);

	(void)loop;
	dst_finish(st, GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static struct dst_stream **dst_wlist(struct dst_stream *st)
{
	return st->profile ? &st->w->profiles : &st->w->gets;
}

static void dst_stream_free(struct dst_stream *st)
{
	struct destination *d = st->d;

	loop_timer_stop(d->loop, &st->deadline);
	if (st->w) {
		if (st->wprev)
			st->wprev->wnext = st->wnext;
		else
			*dst_wlist(st) = st->wnext;
		if (st->wnext)
			st->wnext->wprev = st->wprev;
		dst_watch_put(d, st->w);
	}
	if (st->aprev)
		st->aprev->anext = st->anext;
	else
		d->streams = st->anext;
	if (st->anext)
		st->anext->aprev = st->aprev;
	d->nstreams--;
	metrics_gauge_dec(d->m_streams[st->profile]);
	dst_plan_clear(&st->plan);
	dst_set_base(st, NULL);
	if (st->target)
		bus_msg_unref(&st->target->msg);
	mem_free(st);
}

static void dst_on_request(void *ctx, struct grpc_call *call,
                           const void *req, int profile)
{
	struct cserver_conn *conn = ctx;
	struct destination *d = cserver_conn_ctx(conn);
	const struct api_pb_get_destination *g = req;
	struct dst_stream *st;
	struct str path, name, ns;
	uint16_t port;
	uint64_t tmo;

	metrics_counter_inc(d->m_started[profile]);
	if (d->draining) {
		grpc_call_finish(call, GRPC_UNAVAILABLE, "shutting down");
		return;
	}
	if (g->path.len == 0 || g->path.len > DESTINATION_PATH_MAX) {
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT,
		                 g->path.len ? "path too long"
		                             : "path is empty");
		return;
	}
	if (d->nstreams >= d->cfg.max_streams) {
		LOG_DEBUG(DST_MOD, "stream refused: %u streams open",
		          d->nstreams);
		grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED,
		                 "too many streams");
		return;
	}
	st = mem_calloc(1, sizeof(*st));
	if (!st) {
		grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED,
		                 "out of memory");
		return;
	}
	st->d = d;
	st->conn = conn;
	st->call = call;
	st->profile = profile;
	loop_timer_init(&st->deadline, dst_deadline_cb);
	(void)str_to_lower(g->path, st->path, sizeof(st->path) - 1, &path);
	st->path[path.len] = '\0';
	if (registry_authority_split(path, d->cfg.cluster_domain, &name, &ns,
	                             &port) == 0) {
		st->w = dst_watch_get(d, name, ns, port);
		if (!st->w) {
			mem_free(st);
			grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED,
			                 "out of memory");
			return;
		}
		st->wnext = *dst_wlist(st);
		if (st->wnext)
			st->wnext->wprev = st;
		*dst_wlist(st) = st;
	}
	st->anext = d->streams;
	if (d->streams)
		d->streams->aprev = st;
	d->streams = st;
	d->nstreams++;
	metrics_gauge_inc(d->m_streams[profile]);
	grpc_call_set_user(call, st);
	LOG_DEBUG(DST_MOD, "%s %s: %s", dst_method_names[profile], st->path,
	          st->w ? "watching" : "not a registry name");
	tmo = grpc_call_timeout_ns(call);
	if (tmo) {
		uint64_t ms = tmo / 1000000 + (tmo % 1000000 != 0);

		loop_timer_arm(d->loop, &st->deadline, ms);
	}
	dst_pump(st);
}

static void dst_on_get(void *ctx, struct grpc_call *call, const void *req)
{
	dst_on_request(ctx, call, req, 0);
}

static void dst_on_profile(void *ctx, struct grpc_call *call,
                           const void *req)
{
	dst_on_request(ctx, call, req, 1);
}

static void dst_on_writable(void *ctx, struct grpc_call *call)
{
	struct dst_stream *st = grpc_call_user(call);

	(void)ctx;
	if (!st)
		return;
	st->blocked = 0;
	dst_pump(st);
}

static void dst_on_done(void *ctx, struct grpc_call *call,
                        enum grpc_status code)
{
	struct destination *d = cserver_conn_ctx(ctx);
	struct dst_stream *st = grpc_call_user(call);
	const struct grpc_method *m = grpc_call_method(call);
	struct metrics_series *s;
	struct metrics_label l[3];
	int profile = m && strcmp(m->path, API_PB_DESTINATION_GET) != 0;

	l[0].key = "grpc_service";
	l[0].value = API_PB_DESTINATION_SERVICE;
	l[1].key = "grpc_method";
	l[1].value = dst_method_names[profile];
	l[2].key = "grpc_code";
	l[2].value = grpc_status_str(code);
	s = metrics_series_get(d->f_handled, l, 3);
	metrics_counter_inc(s);
	metrics_series_put(s);
	if (st)
		dst_stream_free(st);
}

static const struct grpc_method dst_methods[] = {
	{ API_PB_DESTINATION_GET, &api_pb_get_destination_desc, dst_on_get,
	  dst_on_writable, dst_on_done },
	{ API_PB_DESTINATION_GET_PROFILE, &api_pb_get_destination_desc,
	  dst_on_profile, dst_on_writable, dst_on_done },
};

/* ------------------------------------------------------------------ */
/* snapshots                                                           */
/* ------------------------------------------------------------------ */

/* Tells the streams of every key whose view changed from <old> to <nw>;
 * the others only move to <nw>. */
static void dst_apply(struct destination *d, struct registry *old,
                      struct registry *nw)
{
	const struct registry_service *os, *ns;
	const struct registry_port *op, *np;
	struct dst_stream *st, *next;
	struct dst_watch *w;
	uint32_t i;
	unsigned changed = 0, touched = 0;
	int gch, pch;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (i = 0; i < d->nbuckets; i++)
		for (w = d->buckets[i]; w; w = w->hnext) {
			op = dst_view(old, w, &os);
			np = dst_view(nw, w, &ns);
			gch = !old || (w->gets && !destination_port_same(op, np));
			pch = !old || (w->profiles &&
			      !destination_profile_same(os, op, ns, np));
			changed += gch || pch;
			for (st = w->gets; st; st = next) {
				next = st->wnext;
				if (!gch && st->told && !st->target &&
				    st->base == old)
					dst_set_base(st, nw);
				else if (!st->blocked && ++touched)
					dst_get_pump(st);
			}
			for (st = w->profiles; st; st = next) {
				next = st->wnext;
				if (!pch && st->told && st->base == old)
					dst_set_base(st, nw);
				else if (!st->blocked && ++touched)
					dst_profile_pump(st);
			}
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	LOG_DEBUG(DST_MOD, "registry generation %llu: %u of %u watched "
	          "keys changed, %u streams told in %lldus",
	          (unsigned long long)nw->generation, changed, d->nwatch,
	          touched, (long long)((t1.tv_sec - t0.tv_sec) * 1000000 +
	                               (t1.tv_nsec - t0.tv_nsec) / 1000));
}

static void dst_bus_cb(struct bus_sub *sub, const char *topic,
                       struct bus_msg *msg, void *arg)
{
	struct destination *d = arg;
	struct registry *nw, *old = d->current;

	(void)sub;
	(void)topic;
	if (!msg) {
		LOG_WARN(DST_MOD, "registry topic removed: serving the last "
		         "snapshot");
		return;
	}
	nw = container_of(msg, struct registry, msg);
	if (nw == old)
		return;
	bus_msg_ref(msg);
	d->current = nw;
	metrics_counter_inc(d->m_snapshots);
	dst_apply(d, old, nw);
	if (old)
		bus_msg_unref(&old->msg);
}

/* ------------------------------------------------------------------ */
/* role                                                                */
/* ------------------------------------------------------------------ */

static int dst_metrics(struct destination *d, struct metrics_registry *reg,
                       char *err, size_t errlen)
{
	struct metrics_family_opts o;
	struct metrics_family *f_streams, *f_started, *f_updates, *f_conns,
	                      *f_snap;
	struct metrics_label l[2];
	int i;

	memset(&o, 0, sizeof(o));
	o.type = METRICS_GAUGE;
	o.name = "destination_streams";
	o.help = "Open Destination streams (Get, GetProfile).";
	f_streams = metrics_family_new(reg, &o, err, errlen);
	o.type = METRICS_COUNTER;
	o.name = "destination_updates_total";
	o.help = "Messages sent on Destination streams.";
	f_updates = metrics_family_new(reg, &o, err, errlen);
	o.name = "grpc_server_started_total";
	o.help = "gRPC calls started on the server.";
	f_started = metrics_family_new(reg, &o, err, errlen);
	o.name = "grpc_server_handled_total";
	o.help = "gRPC calls completed on the server, by status code.";
	d->f_handled = metrics_family_new(reg, &o, err, errlen);
	o.type = METRICS_GAUGE;
	o.name = "destination_connections";
	o.help = "Open client connections of the Destination service.";
	f_conns = metrics_family_new(reg, &o, err, errlen);
	o.type = METRICS_COUNTER;
	o.name = "destination_snapshots_total";
	o.help = "Registry snapshots the Destination service applied.";
	f_snap = metrics_family_new(reg, &o, err, errlen);
	if (!f_streams || !f_updates || !f_started || !d->f_handled ||
	    !f_conns || !f_snap)
		return -1;
	for (i = 0; i < DST_M_N; i++) {
		l[0].key = "method";
		l[0].value = dst_method_names[i];
		d->m_streams[i] = metrics_series_get(f_streams, l, 1);
		d->m_updates[i] = metrics_series_get(f_updates, l, 1);
		l[0].key = "grpc_service";
		l[0].value = API_PB_DESTINATION_SERVICE;
		l[1].key = "grpc_method";
		l[1].value = dst_method_names[i];
		d->m_started[i] = metrics_series_get(f_started, l, 2);
	}
	d->m_conns = metrics_series_get(f_conns, NULL, 0);
	d->m_snapshots = metrics_series_get(f_snap, NULL, 0);
	return 0;
}

struct destination *destination_new(struct loop *loop, struct bus *bus,
                                    struct metrics_registry *reg,
                                    const struct destination_cfg *cfg,
                                    char *err, size_t errlen)
{
	struct destination *d = mem_calloc(1, sizeof(*d));
	struct cserver_cfg cc;
	int rc;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->bus = bus;
	d->cfg = *cfg;
	d->hseed = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15ull ^
	           loop_now_ms(loop);
	if (dst_metrics(d, reg, err, errlen) < 0) {
		mem_free(d);
		return NULL;
	}
	memset(&cc, 0, sizeof(cc));
	cc.max_conns = cfg->max_conns;
	cc.max_streams_per_conn = cfg->max_streams_per_conn;
	cc.idle_timeout_ms = cfg->idle_timeout_ms;
	cc.max_msg = DST_MAX_MSG;
	cc.arena_size = DST_ARENA;
	d->srv = cserver_new(loop, &cfg->addr, &cc, dst_methods,
	                     ARRAY_SIZE(dst_methods), d, err, errlen);
	if (!d->srv) {
		mem_free(d);
		return NULL;
	}
	rc = bus_subscribe(bus, DESTINATION_TOPIC, BUS_EXACT, dst_bus_cb, d,
	                   &d->sub);
	if (rc < 0) {
		snprintf(err, errlen, "bus subscribe: %s", strerror(-rc));
		cserver_free(d->srv);
		mem_free(d);
		return NULL;
	}
	return d;
}

const struct sock_addr *destination_addr(const struct destination *d)
{
	return cserver_addr(d->srv);
}

unsigned destination_nconns(const struct destination *d)
{
	struct cserver_stats s;

	cserver_get_stats(d->srv, &s);
	metrics_gauge_set(d->m_conns, s.open);
	return s.open;
}

void destination_drain(struct destination *d, void (*done)(void *arg),
                       void *arg)
{
	struct dst_stream *st;

	if (d->draining)
		return;
	d->draining = 1;
	for (st = d->streams; st; st = st->anext)
		dst_finish(st, GRPC_UNAVAILABLE, "shutting down");
	cserver_drain(d->srv, done, arg);
}

void destination_free(struct destination *d)
{
	uint32_t i;
	struct dst_watch *w, *next;

	if (!d)
		return;
	cserver_free(d->srv);   /* every call's on_done runs */
	bus_unsubscribe(d->sub);
	for (i = 0; i < d->nbuckets; i++)
		for (w = d->buckets[i]; w; w = next) {
			next = w->hnext;
			mem_free(w);
		}
	mem_free(d->buckets);
	if (d->current)
		bus_msg_unref(&d->current->msg);
	mem_free(d->scratch);
	mem_free(d);
}
