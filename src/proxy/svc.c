/*
 * svc: per-service routing state (see svc.h).
 *
 * IMPLEMENTATION NOTES
 * The table hashes svc objects by their dst_target pointer: dst_lookup
 * already turns the authority into its one target, so a second string
 * hash here would only repeat that work. Each svc keeps one reference on
 * its target (taken from dst_lookup's new reference); leases keep the svc
 * alive through a count, and the sweep frees idle svc objects with no
 * lease out.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/mem.h"
#include "proxy/pxmetrics.h"
#include "proxy/svc.h"

#define SVC_SWEEP_MS 5000u
#define SVC_IDLE_MS_DEFAULT 60000u

#define SVC_QUEUE_TICK_MS 20u

struct svc {
	struct svc_table *st;
	struct svc_wait *qhead, *qtail;  /* queued requests, FIFO */
	uint32_t qlen;
	struct dst_target *t;        /* one reference */
	uint64_t version;            /* of t, built into bal; 0: never */
	struct balance bal;
	struct budget budget;
	uint32_t leases;
	uint64_t last_use_ms;
	struct svc *hnext;
	struct svc *prev, *next;
};

const char *svc_res_str(enum svc_res r)
{
	switch (r) {
	case SVC_PICKED: return "picked";
	case SVC_PENDING: return "pending";
	case SVC_UNKNOWN: return "unknown";
	case SVC_FAILED: return "failed";
	case SVC_NO_ENDPOINTS: return "no endpoints";
	case SVC_UNAVAILABLE: return "unavailable";
	case SVC_ERROR: return "error";
	}
	return "?";
}

static uint64_t svc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t svc_hash(const struct svc_table *st,
                         const struct dst_target *t)
{
	uint64_t v = (uint64_t)(uintptr_t)t;

	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (uint32_t)v & (st->hsize - 1);
}

static void svc_free(struct svc *s)
{
	struct svc_table *st = s->st;
	struct svc **pp = &st->htab[svc_hash(st, s->t)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		st->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	balance_destroy(&s->bal);
	dst_target_unref(s->t);
	st->stats.svcs--;
	mem_free(s);
}

static void svc_sweep_cb(struct loop *loop, struct loop_timer *tm)
{
	struct svc_table *st = (struct svc_table *)((char *)tm -
	                        offsetof(struct svc_table, sweep));
	uint64_t now = loop_now_ms(loop);
	struct svc *s, *n;

	for (s = st->all; s; s = n) {
		n = s->next;
		if (s->leases == 0 && s->qlen == 0 &&
		    now - s->last_use_ms >= st->idle_ms)
			svc_free(s);
	}
	if (st->all)
		loop_timer_arm(loop, &st->sweep, SVC_SWEEP_MS);
}

static void svc_queue_cb(struct loop *loop, struct loop_timer *tm);

int svc_table_init(struct svc_table *st, struct loop *loop, struct dst *dst,
                   uint64_t idle_ms)
{
	memset(st, 0, sizeof(*st));
	st->loop = loop;
	st->dst = dst;
	st->idle_ms = idle_ms ? idle_ms : SVC_IDLE_MS_DEFAULT;
	st->hsize = 256;
	st->htab = mem_calloc(st->hsize, sizeof(*st->htab));
	if (!st->htab)
		return -ENOMEM;
	st->seed = svc_now_ns() | 1;
	balance_cfg_default(&st->bcfg);
	loop_timer_init(&st->sweep, svc_sweep_cb);
	loop_timer_init(&st->qtimer, svc_queue_cb);
	return 0;
}

void svc_table_set_balancer(struct svc_table *st,
                            const struct balance_cfg *cfg)
{
	st->bcfg = *cfg;
}

void svc_table_fini(struct svc_table *st)
{
	if (!st->htab)
		return;
	loop_timer_stop(st->loop, &st->sweep);
	loop_timer_stop(st->loop, &st->qtimer);
	while (st->all) {
		while (st->all->qhead)
			svc_wait_cancel(st->all->qhead);
		svc_free(st->all);
	}
	MEM_FREE(st->htab);
}

/* Doubles the hash table when it averages two svc per bucket; a failed
 * growth only makes chains longer. */
static void svc_grow(struct svc_table *st)
{
	struct svc **nt, *s;
	uint32_t old = st->hsize;

	if (st->stats.svcs < 2ull * st->hsize || st->hsize >= (1u << 20))
		return;
	nt = mem_calloc(2 * (size_t)old, sizeof(*nt));
	if (!nt)
		return;
	st->hsize = 2 * old;
	MEM_FREE(st->htab);
	st->htab = nt;
	for (s = st->all; s; s = s->next) {
		uint32_t h = svc_hash(st, s->t);

		s->hnext = st->htab[h];
		st->htab[h] = s;
	}
}

/* The svc of <t>, made on first use; consumes the caller's reference on
 * <t> either way. NULL when out of memory. */
static struct svc *svc_of(struct svc_table *st, struct dst_target *t)
{
	uint32_t h = svc_hash(st, t);
	struct svc *s;

	for (s = st->htab[h]; s; s = s->hnext)
		if (s->t == t) {
			dst_target_unref(t);
			return s;
		}
	s = mem_calloc(1, sizeof(*s));
	if (!s) {
		dst_target_unref(t);
		return NULL;
	}
	s->st = st;
	s->t = t;
	st->seed = st->seed * 6364136223846793005ull + 1442695040888963407ull;
	balance_init(&s->bal, &st->bcfg, st->seed);
	(void)budget_init(&s->budget, 0.2f, 10, 10000);
	s->hnext = st->htab[h];
	st->htab[h] = s;
	s->next = st->all;
	if (st->all)
		st->all->prev = s;
	st->all = s;
	st->stats.svcs++;
	if (!loop_timer_armed(&st->sweep))
		loop_timer_arm(st->loop, &st->sweep, SVC_SWEEP_MS);
	svc_grow(st);
	return s;
}

/* Brings the balancer (and budget) up to the target's version. */
static int svc_sync(struct svc *s, uint64_t now_ns)
{
	struct dst_target *t = s->t;
	struct balance_key *keys;
	size_t i, n = t->nep;
	int rc;

	if (s->version == t->version)
		return 0;
	if (n > BALANCE_MAX_EP)
		n = BALANCE_MAX_EP;
	keys = mem_alloc((n ? n : 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		keys[i].addr = t->ep[i].addr;
		keys[i].weight = t->ep[i].weight;
	}
	rc = balance_update(&s->bal, keys, n, now_ns);
	mem_free(keys);
	if (rc < 0)
		return rc;
	if (t->profile && t->profile->budget.present)
		(void)budget_reconfigure(&s->budget, t->profile->budget.ratio,
		                         t->profile->budget.min_per_s,
		                         t->profile->budget.ttl_ms);
	s->version = t->version;
	s->st->stats.rebuilds++;
	return 0;
}

/* The endpoint at <a> in the target's current set, or NULL. */
static const struct dst_endpoint *svc_ep(const struct dst_target *t,
                                         const struct sock_addr *a)
{
	size_t lo = 0, hi = t->nep;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = sock_addr_compare(&t->ep[mid].addr, a);

		if (c == 0)
			return &t->ep[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static enum dst_hint svc_hint(const struct dst_target *t,
                              const struct sock_addr *a)
{
	const struct dst_endpoint *e = svc_ep(t, a);

	return e ? e->hint : DST_HINT_NONE;
}

void svc_lease_labels(const struct svc_lease *lease,
                      const struct dst_label **set, size_t *nset,
                      const struct dst_label **ep, size_t *nep)
{
	const struct dst_endpoint *e;

	*set = *ep = NULL;
	*nset = *nep = 0;
	if (!lease->svc)
		return;
	*set = lease->svc->t->set_labels;
	*nset = lease->svc->t->nset_labels;
	e = svc_ep(lease->svc->t, &lease->addr);
	if (e) {
		*ep = e->labels;
		*nep = e->nlabels;
	}
}

static void svc_dst_done(void *arg, struct dst_target *t, enum dst_result r)
{
	struct svc_wait *w = arg;

	(void)t;
	(void)r;
	if (!w->armed)
		return;
	w->armed = 0;
	w->cb(w->arg);
}

/* Parks <w> in <s>'s queue; 0, or -1 when the queue is full. */
static int svc_enqueue(struct svc *s, struct svc_wait *w, svc_wait_fn cb,
                       void *arg)
{
	struct svc_table *st = s->st;

	if (s->qlen >= SVC_QUEUE_MAX || w->queued_once)
		return -1;
	w->queued_once = 1;
	w->cb = cb;
	w->arg = arg;
	w->svc = s;
	w->deadline_ms = loop_now_ms(st->loop) + SVC_FAILFAST_MS;
	w->next = NULL;
	w->prev = s->qtail;
	if (s->qtail)
		s->qtail->next = w;
	else
		s->qhead = w;
	s->qtail = w;
	s->qlen++;
	st->queued++;
	st->stats.queued_total++;
	w->armed = 1;
	if (!loop_timer_armed(&st->qtimer))
		loop_timer_arm(st->loop, &st->qtimer, SVC_QUEUE_TICK_MS);
	return 0;
}

static void svc_dequeue(struct svc_wait *w)
{
	struct svc *s = w->svc;

	if (w->prev)
		w->prev->next = w->next;
	else
		s->qhead = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		s->qtail = w->prev;
	s->qlen--;
	s->st->queued--;
	w->svc = NULL;
	w->prev = w->next = NULL;
}

void svc_wait_cancel(struct svc_wait *w)
{
	if (!w->armed)
		return;
	w->armed = 0;
	if (w->svc)
		svc_dequeue(w);
	else
		dst_wait_cancel(&w->dw);
}

/* 1 when a pick in <s> could succeed now (an endpoint is ready). */
static int svc_can_pick(struct svc *s, uint64_t now_ns)
{
	if (svc_sync(s, now_ns) < 0 || s->t->nep == 0)
		return 0;
	return balance_ready_now(&s->bal, now_ns) > 0;
}

/*
 * The queue tick: a service with an endpoint ready again releases its
 * whole queue (each request picks for itself); requests past the
 * fail-fast time are released too (they then get 503).
 */
static void svc_queue_cb(struct loop *loop, struct loop_timer *tm)
{
	struct svc_table *st = (struct svc_table *)((char *)tm -
	                        offsetof(struct svc_table, qtimer));
	uint64_t now = loop_now_ms(loop), now_ns = svc_now_ns();
	struct svc *s;

	for (s = st->all; s; s = s->next) {
		int ready;

		if (!s->qlen)
			continue;
		ready = svc_can_pick(s, now_ns);
		/* a callback may cancel other waiters: restart from the
		 * head after each one */
		while (s->qhead && (ready || s->qhead->deadline_ms <= now)) {
			struct svc_wait *w = s->qhead;

			if (!ready)
				st->stats.queue_failfast++;
			svc_dequeue(w);
			w->armed = 0;
			w->cb(w->arg);
		}
	}
	if (st->queued)
		loop_timer_arm(loop, &st->qtimer, SVC_QUEUE_TICK_MS);
}

enum svc_res svc_pick(struct svc_table *st, struct str authority,
                      struct svc_lease *lease, struct svc_wait *w,
                      svc_wait_fn cb, void *arg)
{
	struct dst_target *t;
	struct svc *s;
	uint64_t now_ns;
	int rc;

	memset(lease, 0, sizeof(*lease));
	t = dst_lookup(st->dst, authority);
	if (!t)
		return SVC_ERROR;
	switch (t->state) {
	case DST_PENDING:
		if (t->failed) {
			dst_target_unref(t);
			st->stats.failed++;
			return SVC_FAILED;
		}
		if (!w) {
			dst_target_unref(t);
			return SVC_PENDING;
		}
		w->cb = cb;
		w->arg = arg;
		w->svc = NULL;
		rc = dst_wait(t, &w->dw, svc_dst_done, w);
		dst_target_unref(t);
		if (rc == 0) {
			w->armed = 1;
			st->stats.pending++;
			return SVC_PENDING;
		}
		if (rc == -ETIMEDOUT) {
			st->stats.failed++;
			return SVC_FAILED;
		}
		return SVC_ERROR;
	case DST_UNKNOWN:
		dst_target_unref(t);
		st->stats.unknown++;
		return SVC_UNKNOWN;
	case DST_RESOLVED:
		break;
	}
	s = svc_of(st, t);
	if (!s)
		return SVC_ERROR;
	s->last_use_ms = loop_now_ms(st->loop);
	now_ns = svc_now_ns();
	if (svc_sync(s, now_ns) < 0)
		return SVC_ERROR;
	rc = s->t->nep ? balance_pick(&s->bal, now_ns, &lease->h) : -ENOENT;
	if (rc < 0 && w && svc_enqueue(s, w, cb, arg) == 0)
		return SVC_PENDING;
	if (rc == -EAGAIN) {
		st->stats.unavailable++;
		return SVC_UNAVAILABLE;
	}
	if (rc < 0) {
		st->stats.no_endpoints++;
		return SVC_NO_ENDPOINTS;
	}
	lease->svc = s;
	lease->addr = *balance_addr(&s->bal, &lease->h);
	lease->hint = svc_hint(s->t, &lease->addr);
	lease->t0_ns = now_ns;
	s->leases++;
	budget_deposit(&s->budget, now_ns);
	st->stats.picks++;
	return SVC_PICKED;
}

void svc_release(struct svc_lease *lease, int success)
{
	struct svc *s = lease->svc;
	uint64_t now_ns;

	if (!s)
		return;
	now_ns = svc_now_ns();
	(void)balance_done(&s->bal, &lease->h, now_ns,
	                   now_ns > lease->t0_ns ? now_ns - lease->t0_ns : 0,
	                   success);
	s->leases--;
	s->last_use_ms = loop_now_ms(s->st->loop);
	lease->svc = NULL;
}

struct budget *svc_lease_budget(struct svc_lease *lease)
{
	return lease->svc ? &lease->svc->budget : NULL;
}

const struct dst_profile *svc_lease_profile(const struct svc_lease *lease)
{
	return lease->svc ? lease->svc->t->profile : NULL;
}

/* Returns the lease's pick with <success> and picks another one. */
static enum svc_res svc_repick(struct svc_lease *lease, int success,
                               uint64_t now_ns);

enum svc_res svc_retry(struct svc_lease *lease, int success, int *refused)
{
	struct svc *s = lease->svc;
	uint64_t now_ns;

	*refused = 0;
	if (!s)
		return SVC_NO_ENDPOINTS;
	now_ns = svc_now_ns();
	if (!budget_try_withdraw(&s->budget, now_ns)) {
		s->st->stats.retries_refused++;
		*refused = 1;
		return SVC_UNAVAILABLE;
	}
	s->st->stats.retries++;
	return svc_repick(lease, success, now_ns);
}

enum svc_res svc_failover(struct svc_lease *lease)
{
	if (!lease->svc)
		return SVC_NO_ENDPOINTS;
	lease->svc->st->stats.failovers++;
	return svc_repick(lease, 0, svc_now_ns());
}

static enum svc_res svc_repick(struct svc_lease *lease, int success,
                               uint64_t now_ns)
{
	struct svc *s = lease->svc;
	struct balance_handle tried[3];
	uint8_t ntried = lease->ntried;
	int rc;

	memcpy(tried, lease->tried, sizeof(tried));
	if (ntried < 3)
		tried[ntried++] = lease->h;
	else
		tried[2] = lease->h;
	/* keep the svc alive across the release */
	s->leases++;
	svc_release(lease, success);
	s->leases--;
	if (svc_sync(s, now_ns) < 0 || s->t->nep == 0)
		return SVC_NO_ENDPOINTS;
	rc = balance_pick_other(&s->bal, now_ns, tried, ntried, &lease->h);
	if (rc < 0)
		return rc == -EAGAIN ? SVC_UNAVAILABLE : SVC_NO_ENDPOINTS;
	lease->svc = s;
	lease->addr = *balance_addr(&s->bal, &lease->h);
	lease->hint = svc_hint(s->t, &lease->addr);
	lease->t0_ns = now_ns;
	memcpy(lease->tried, tried, sizeof(tried));
	lease->ntried = ntried;
	s->leases++;
	s->st->stats.picks++;
	return SVC_PICKED;
}

const struct dst_route *svc_route(const struct svc_lease *lease,
                                  struct str method, struct str path,
                                  uint32_t *timeout_ms, int *retryable)
{
	const struct dst_route *r;
	const char *q;

	*timeout_ms = 0;
	*retryable = 0;
	if (!lease->svc || !lease->svc->t->profile)
		return NULL;
	q = path.len ? memchr(path.p, '?', path.len) : NULL;
	if (q)
		path.len = (size_t)(q - path.p);
	r = dst_profile_route(lease->svc->t->profile, method, path);
	if (r) {
		*timeout_ms = r->timeout_ms;
		*retryable = r->retryable;
	}
	return r;
}

void svc_count_timeout(struct svc_lease *lease)
{
	if (lease->svc)
		lease->svc->st->stats.timeouts++;
}

/* One metric without labels. */
static int svc_metric(struct buf *out, const char *name, const char *type,
                      const char *help, uint64_t v)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
	                  name, help, name, type, name,
	                  (unsigned long long)v);
}

int svc_table_render(const struct svc_table *st, struct buf *out)
{
	const struct dst_stats *d = &st->dst->stats;
	const struct svc_stats *s = &st->stats;
	int rc = 0;

	rc |= svc_metric(out, "destination_connected", "gauge",
	                 "1 while the connection to the controller's "
	                 "Destination service is up.",
	                 st->dst->conn == DST_CONN_UP);
	rc |= svc_metric(out, "destination_connects_total", "counter",
	                 "Connections made to the Destination service.",
	                 d->connects);
	rc |= svc_metric(out, "destination_connect_failures_total", "counter",
	                 "Connection attempts to the Destination service "
	                 "that failed.", d->connect_failures);
	rc |= svc_metric(out, "destination_disconnects_total", "counter",
	                 "Established Destination connections lost.",
	                 d->disconnects);
	rc |= svc_metric(out, "destination_keepalive_timeouts_total",
	                 "counter", "Controller connections dropped because "
	                 "an HTTP/2 keepalive PING went unanswered.",
	                 d->keepalive_timeouts);
	rc |= svc_metric(out, "destination_updates_total", "counter",
	                 "Endpoint and profile updates received.", d->updates);
	rc |= svc_metric(out, "destination_targets", "gauge",
	                 "Names being watched.", d->targets);
	rc |= svc_metric(out, "destination_resolve_failures_total", "counter",
	                 "Names not resolved within the resolution timeout.",
	                 d->resolve_failures);
	rc |= svc_metric(out, "outbound_balancer_services", "gauge",
	                 "Services with a load balancer.", s->svcs);
	rc |= svc_metric(out, "outbound_balancer_picks_total", "counter",
	                 "Endpoints chosen by the load balancers.", s->picks);
	rc |= svc_metric(out, "outbound_balancer_unavailable_total", "counter",
	                 "Requests failed fast: every endpoint ejected.",
	                 s->unavailable);
	rc |= svc_metric(out, "outbound_balancer_queued_total", "counter",
	                 "Requests that waited in a service's queue for an "
	                 "endpoint.", s->queued_total);
	rc |= svc_metric(out, "outbound_balancer_queue_failfast_total",
	                 "counter", "Queued requests released without an "
	                 "endpoint (503).", s->queue_failfast);
	rc |= svc_metric(out, "outbound_balancer_no_endpoints_total",
	                 "counter", "Requests to a service without "
	                 "endpoints.", s->no_endpoints);
	rc |= svc_metric(out, "outbound_http_retry_requests_total", "counter",
	                 "Retries sent (allowed by the retry budget).",
	                 s->retries);
	rc |= svc_metric(out, "outbound_balancer_failovers_total", "counter",
	                 "Requests sent to another endpoint because theirs "
	                 "never reached an application (connection refused).",
	                 s->failovers);
	rc |= svc_metric(out, "outbound_http_retry_limit_exceeded_total",
	                 "counter", "Retries the retry budget refused.",
	                 s->retries_refused);
	rc |= svc_metric(out, "outbound_http_route_timeouts_total", "counter",
	                 "Requests that hit their route's timeout (504).",
	                 s->timeouts);
	return rc ? -1 : 0;
}

struct pxm_http *svc_lease_metrics(const struct svc_lease *lease,
                                   struct pxmetrics *pm,
                                   struct pxm_http *hint, int dir,
                                   struct str authority)
{
	struct pxm_kv set[PXM_MAX_DST_LABELS], ep[PXM_MAX_DST_LABELS];
	const struct dst_label *sl, *el;
	size_t ns, ne, i;

	svc_lease_labels(lease, &sl, &ns, &el, &ne);
	ns = ns < PXM_MAX_DST_LABELS ? ns : PXM_MAX_DST_LABELS;
	ne = ne < PXM_MAX_DST_LABELS ? ne : PXM_MAX_DST_LABELS;
	for (i = 0; i < ns; i++)
		set[i] = (struct pxm_kv){ sl[i].key, sl[i].value };
	for (i = 0; i < ne; i++)
		ep[i] = (struct pxm_kv){ el[i].key, el[i].value };
	return pxmetrics_http_dst(pm, hint, (enum pxm_dir)dir, authority,
	                          &lease->addr, set, ns, ep, ne);
}
