/*
 * pxmetrics: proxy metric families and handle caches (see pxmetrics.h).
 *
 * IMPLEMENTATION NOTES
 * Two chained hash tables (TCP bundles, HTTP bundles) keyed with a seeded
 * FNV-1a over the key bytes, so a client choosing authorities cannot aim
 * at one chain. Each bundle holds one reference on each of its series,
 * dropped when the sweep removes it (metrics_series_remove: the series goes
 * at once) or at pxmetrics_destroy (the registry itself is freed by the
 * owner afterwards).
 *
 * Retention. Uses stamp a bundle with pm->stamp, the time of the last
 * sweep (one load and one store on the hot path, no clock read): a use
 * between two sweeps is at most <gap> after its stamp, so a bundle whose
 * stamp is retain + gap old has been idle for at least retain. Removed
 * bundles become dead and wait on a grave list (FIFO, stamped with their
 * death) to be reused once a retain time has passed again: their memory
 * stays a bundle while pxmetrics lives, so a pointer still kept by a
 * connection is never dangling (see pxmetrics.h). An HTTP bundle's strings
 * (authority, dst_* labels) are in one block sized to them, freed at death.
 *
 * tcp_close_total. The two errno="" series of a TCP bundle are made with
 * it; the ones with an errno name only when a close first needs them (a
 * lookup then, on a failure path), one slot per name, so a bundle never
 * exposes more than PXM_NERRNO + 2 close series.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/mem.h"
#include "core/util.h"
#include "proxy/pxmetrics.h"

#define PXM_TAB_SIZE 1024u

static const char *const pxm_dir_str[2] = { "inbound", "outbound" };
static const char *const pxm_peer_str[2] = { "src", "dst" };

/* The errno names kept as label values; every other errno is "OTHER"
 * (slot PXM_NERRNO - 1). Socket errors that end connections. */
static const struct {
	int err;
	const char *name;
} pxm_errnos[PXM_NERRNO - 1] = {
	{ ECONNRESET, "ECONNRESET" },
	{ ECONNREFUSED, "ECONNREFUSED" },
	{ ECONNABORTED, "ECONNABORTED" },
	{ ETIMEDOUT, "ETIMEDOUT" },
	{ EPIPE, "EPIPE" },
	{ EHOSTUNREACH, "EHOSTUNREACH" },
	{ EHOSTDOWN, "EHOSTDOWN" },
	{ ENETUNREACH, "ENETUNREACH" },
	{ ENETDOWN, "ENETDOWN" },
	{ EADDRNOTAVAIL, "EADDRNOTAVAIL" },
};

/* The slot of errno <err> (not 0, sign ignored) in pxm_errnos, or
 * PXM_NERRNO - 1 for "OTHER". */
static unsigned pxm_errno_slot(int err)
{
	long long e = err < 0 ? -(long long)err : err;
	unsigned i;

	for (i = 0; i < PXM_NERRNO - 1; i++)
		if (pxm_errnos[i].err == e)
			return i;
	return PXM_NERRNO - 1;
}

const char *pxmetrics_errno_label(int err)
{
	unsigned i;

	if (!err)
		return "";
	i = pxm_errno_slot(err);
	return i < PXM_NERRNO - 1 ? pxm_errnos[i].name : "OTHER";
}

const char *pxmetrics_no_tls_reason(enum pxm_dir dir, enum pxm_peer peer)
{
	if (dir == PXM_INBOUND)
		return peer == PXM_SRC ? "no_tls_from_remote" : "loopback";
	return peer == PXM_SRC ? "loopback"
	                       : "not_provided_by_service_discovery";
}

static uint64_t pxm_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct metrics_family *pxm_fam(struct metrics_registry *reg,
                                      enum metrics_type type,
                                      const char *name, const char *help,
                                      const struct metrics_label *wl,
                                      size_t nwl, char *err, size_t errlen)
{
	struct metrics_family_opts o;

	memset(&o, 0, sizeof(o));
	o.type = type;
	o.name = name;
	o.help = help;
	o.const_labels = wl;
	o.nconst_labels = nwl;
	if (type == METRICS_HISTOGRAM) {
		o.bounds = metrics_latency_ms_bounds;
		o.nbounds = METRICS_LATENCY_MS_NBOUNDS;
	}
	o.max_series = PXM_MAX_ENTRIES;
	return metrics_family_new(reg, &o, err, errlen);
}

int pxmetrics_init(struct pxmetrics *pm, struct metrics_registry *reg,
                   const struct metrics_label *wl, size_t nwl,
                   char *err, size_t errlen)
{
	struct timespec ts;

	memset(pm, 0, sizeof(*pm));
	pm->reg = reg;
	if (getrandom(&pm->seed, sizeof(pm->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(pm->seed)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		pm->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
	}
	pm->seed ^= 0xcbf29ce484222325ULL;
	pm->tcp_tab = mem_calloc(PXM_TAB_SIZE, sizeof(*pm->tcp_tab));
	pm->http_tab = mem_calloc(PXM_TAB_SIZE, sizeof(*pm->http_tab));
	if (!pm->tcp_tab || !pm->http_tab) {
		snprintf(err, errlen, "out of memory");
		pxmetrics_destroy(pm);
		return -1;
	}
	pm->f_req = pxm_fam(reg, METRICS_COUNTER, "request_total",
	                    "Total count of HTTP requests.", wl, nwl, err,
	                    errlen);
	if (!pm->f_req)
		return -1;
	pm->f_resp = pxm_fam(reg, METRICS_COUNTER, "response_total",
	                     "Total count of HTTP responses.", wl, nwl, err,
	                     errlen);
	if (!pm->f_resp)
		return -1;
	pm->f_lat = pxm_fam(reg, METRICS_HISTOGRAM, "response_latency_ms",
	                    "Elapsed times between a request's headers being "
	                    "received and its response's headers being "
	                    "received.", wl, nwl, err, errlen);
	if (!pm->f_lat)
		return -1;
	pm->f_open = pxm_fam(reg, METRICS_COUNTER, "tcp_open_total",
	                     "Total count of opened connections.", wl, nwl,
	                     err, errlen);
	if (!pm->f_open)
		return -1;
	pm->f_close = pxm_fam(reg, METRICS_COUNTER, "tcp_close_total",
	                      "Total count of closed connections.", wl, nwl,
	                      err, errlen);
	if (!pm->f_close)
		return -1;
	pm->f_conns = pxm_fam(reg, METRICS_GAUGE, "tcp_open_connections",
	                      "Number of currently-open connections.", wl, nwl,
	                      err, errlen);
	if (!pm->f_conns)
		return -1;
	pm->f_rd = pxm_fam(reg, METRICS_COUNTER, "tcp_read_bytes_total",
	                   "Total count of bytes read from peers.", wl, nwl,
	                   err, errlen);
	if (!pm->f_rd)
		return -1;
	pm->f_wr = pxm_fam(reg, METRICS_COUNTER, "tcp_write_bytes_total",
	                   "Total count of bytes written to peers.", wl, nwl,
	                   err, errlen);
	if (!pm->f_wr)
		return -1;
	return 0;
}

void pxmetrics_destroy(struct pxmetrics *pm)
{
	unsigned i, j;

	for (i = 0; pm->tcp_tab && i < PXM_TAB_SIZE; i++) {
		struct pxm_tcp *t, *n;

		for (t = pm->tcp_tab[i]; t; t = n) {
			n = t->hnext;
			metrics_series_put(t->open_total);
			metrics_series_put(t->close_ok);
			metrics_series_put(t->close_fail);
			for (j = 0; j < PXM_NERRNO; j++)
				metrics_series_put(t->close_err[j]);
			metrics_series_put(t->open_conns);
			metrics_series_put(t->rd);
			metrics_series_put(t->wr);
			mem_free(t);
		}
	}
	while (pm->grave_tcp) {
		struct pxm_tcp *t = pm->grave_tcp;

		pm->grave_tcp = t->hnext;
		mem_free(t);
	}
	while (pm->grave_http) {
		struct pxm_http *h = pm->grave_http;

		pm->grave_http = h->hnext;
		mem_free(h);
	}
	pm->grave_tcp_tail = NULL;
	pm->grave_http_tail = NULL;
	if (pm->loop)
		loop_timer_stop(pm->loop, &pm->sweep_timer);
	pm->loop = NULL;
	for (i = 0; pm->http_tab && i < PXM_TAB_SIZE; i++) {
		struct pxm_http *h, *n;

		for (h = pm->http_tab[i]; h; h = n) {
			n = h->hnext;
			metrics_series_put(h->req);
			for (j = 0; j < h->nresp; j++)
				metrics_series_put(h->resp[j].total);
			for (j = 0; j < h->nlat; j++)
				metrics_series_put(h->lat[j].hist);
			mem_free(h->blk);
			mem_free(h);
		}
	}
	MEM_FREE(&pm->tcp_tab);
	MEM_FREE(&pm->http_tab);
	pm->ntcp = pm->nhttp = 0;
}

static uint64_t pxm_addr_hash(uint64_t h, const struct sock_addr *a)
{
	h = pxm_hash(h, &a->sa.sa_family, sizeof(a->sa.sa_family));
	if (a->sa.sa_family == AF_INET) {
		h = pxm_hash(h, &a->sin.sin_addr, sizeof(a->sin.sin_addr));
		return pxm_hash(h, &a->sin.sin_port, sizeof(a->sin.sin_port));
	}
	if (a->sa.sa_family == AF_INET6) {
		h = pxm_hash(h, &a->sin6.sin6_addr, sizeof(a->sin6.sin6_addr));
		return pxm_hash(h, &a->sin6.sin6_port,
		                sizeof(a->sin6.sin6_port));
	}
	return h;
}

/* A dead bundle that has waited a retain time since its death, taken off
 * the grave list, or NULL. */
#define PXM_GRAVE_TAKE(pm, head, tail) __extension__ ({                   \
	__typeof__(pm->head) g_ = pm->head;                              \
	if (g_ && pm->stamp - g_->used >= pm->retain_ms + pm->gap) {     \
		pm->head = g_->hnext;                                    \
		if (!pm->head)                                           \
			pm->tail = NULL;                                 \
	} else {                                                         \
		g_ = NULL;                                               \
	}                                                                \
	g_; })

static struct pxm_tcp *pxm_tcp_new(struct pxmetrics *pm)
{
	struct pxm_tcp *t = PXM_GRAVE_TAKE(pm, grave_tcp, grave_tcp_tail);

	if (!t)
		return mem_calloc(1, sizeof(*t));
	memset(t, 0, sizeof(*t));
	return t;
}

static struct pxm_http *pxm_http_new(struct pxmetrics *pm)
{
	struct pxm_http *h = PXM_GRAVE_TAKE(pm, grave_http, grave_http_tail);

	if (!h)
		return mem_calloc(1, sizeof(*h));
	memset(h, 0, sizeof(*h));
	return h;
}

/* Fills <l>[0..4] with <t>'s labels (<ts>: room for the target text). */
static void pxm_tcp_labels(const struct pxm_tcp *t, struct metrics_label *l,
                           char ts[SOCK_ADDR_STRLEN])
{
	if (sock_addr_format(&t->target, ts, SOCK_ADDR_STRLEN) < 0)
		ts[0] = '\0';
	l[0] = (struct metrics_label){ "direction", pxm_dir_str[t->dir] };
	l[1] = (struct metrics_label){ "peer", pxm_peer_str[t->peer] };
	l[2] = (struct metrics_label){ "target_addr", ts };
	l[3] = (struct metrics_label){ "tls", "no_identity" };
	l[4] = (struct metrics_label){
		"no_tls_reason",
		pxmetrics_no_tls_reason((enum pxm_dir)t->dir,
		                        (enum pxm_peer)t->peer) };
}

struct pxm_tcp *pxmetrics_tcp(struct pxmetrics *pm, enum pxm_dir dir,
                              enum pxm_peer peer,
                              const struct sock_addr *target)
{
	struct metrics_label l[7];
	char ts[SOCK_ADDR_STRLEN];
	struct pxm_tcp *t;
	uint64_t h;
	unsigned slot;

	if (!pm->tcp_tab)
		return NULL;
	h = pm->seed ^ ((uint64_t)dir << 1 | peer);
	h = pxm_addr_hash(pxm_hash(h, "t", 1), target);
	slot = (unsigned)(h % PXM_TAB_SIZE);
	for (t = pm->tcp_tab[slot]; t; t = t->hnext)
		if (t->hash == h && t->dir == dir && t->peer == peer &&
		    sock_addr_compare(&t->target, target) == 0) {
			t->used = pm->stamp;
			return t;
		}
	if (pm->ntcp >= PXM_MAX_ENTRIES)
		return NULL;
	t = pxm_tcp_new(pm);
	if (!t)
		return NULL;
	t->pm = pm;
	t->used = pm->stamp;
	t->hash = h;
	t->dir = (uint8_t)dir;
	t->peer = (uint8_t)peer;
	t->target = *target;
	pxm_tcp_labels(t, l, ts);
	t->open_total = metrics_series_get(pm->f_open, l, 5);
	t->open_conns = metrics_series_get(pm->f_conns, l, 5);
	t->rd = metrics_series_get(pm->f_rd, l, 5);
	t->wr = metrics_series_get(pm->f_wr, l, 5);
	l[5] = (struct metrics_label){ "classification", "success" };
	l[6] = (struct metrics_label){ "errno", "" };
	t->close_ok = metrics_series_get(pm->f_close, l, 7);
	l[5].value = "failure";
	t->close_fail = metrics_series_get(pm->f_close, l, 7);
	t->hnext = pm->tcp_tab[slot];
	pm->tcp_tab[slot] = t;
	pm->ntcp++;
	return t;
}

void pxmetrics_tcp_open(struct pxm_tcp *t)
{
	if (!t)
		return;
	t->nopen++;
	t->used = t->pm->stamp;
	metrics_counter_inc(t->open_total);
	metrics_gauge_inc(t->open_conns);
}

/* The tcp_close_total series of a failure by <err> (0: errno ""), made
 * on first use; NULL for a dead bundle or past the family's cap. */
static struct metrics_series *pxm_close_fail(struct pxm_tcp *t, int err)
{
	struct metrics_label l[7];
	char ts[SOCK_ADDR_STRLEN];
	unsigned i;

	if (!err)
		return t->close_fail;
	i = pxm_errno_slot(err);
	if (!t->close_err[i] && !t->dead) {
		pxm_tcp_labels(t, l, ts);
		l[5] = (struct metrics_label){ "classification", "failure" };
		l[6] = (struct metrics_label){ "errno",
		                               pxmetrics_errno_label(err) };
		t->close_err[i] = metrics_series_get(t->pm->f_close, l, 7);
	}
	return t->close_err[i];
}

void pxmetrics_tcp_close(struct pxm_tcp *t, int fail, int err)
{
	if (!t)
		return;
	if (t->nopen)
		t->nopen--;
	t->used = t->pm->stamp;
	metrics_counter_inc(fail ? pxm_close_fail(t, err) : t->close_ok);
	metrics_gauge_dec(t->open_conns);
}

void pxmetrics_tcp_connect_fail(struct pxm_tcp *t, int err)
{
	if (!t)
		return;
	t->used = t->pm->stamp;
	metrics_counter_inc(pxm_close_fail(t, err));
}

static int pxm_http_match(const struct pxm_http *h, enum pxm_dir dir,
                          struct str auth, const struct sock_addr *target)
{
	if (h->dead || h->dir != dir || h->auth_len != auth.len ||
	    (auth.len && memcmp(h->auth, auth.p, auth.len) != 0))
		return 0;
	if (!target)
		return !h->has_target;
	return h->has_target && sock_addr_compare(&h->target, target) == 0;
}

static void pxm_http_labels(const struct pxm_http *h, struct metrics_label *l,
                            size_t *n)
{
	size_t i = 0;

	l[i++] = (struct metrics_label){ "direction", pxm_dir_str[h->dir] };
	if (h->dir == PXM_OUTBOUND || h->pm->inbound_authority)
		l[i++] = (struct metrics_label){ "authority",
		                                 h->auth ? h->auth : "" };
	l[i++] = (struct metrics_label){ "target_addr", h->target_s };
	l[i++] = (struct metrics_label){ "tls", "no_identity" };
	l[i++] = (struct metrics_label){
		"no_tls_reason",
		pxmetrics_no_tls_reason((enum pxm_dir)h->dir,
		                        h->dir == PXM_INBOUND ? PXM_SRC
		                                              : PXM_DST) };
	for (size_t k = 0; k < h->ndst; k++)
		l[i++] = h->dst[k];
	*n = i;
}

/* Copies "dst_"-prefixed labels from <kv> into <h>'s store (allocated on
 * first use); stops at the count or byte limit. */
static void pxm_dst_add(struct pxm_http *h, char *store, size_t *used,
                        size_t cap, const struct pxm_kv *kv, size_t n)
{
	size_t i, k, need;
	char *name, *val;

	for (i = 0; i < n && h->ndst < PXM_MAX_DST_LABELS; i++) {
		need = 4 + kv[i].key.len + 1 + kv[i].value.len + 1;
		if (!kv[i].key.len || *used + need > cap ||
		    memchr(kv[i].value.p, 0, kv[i].value.len))
			continue;
		name = store + *used;
		memcpy(name, "dst_", 4);
		for (k = 0; k < kv[i].key.len; k++) {
			char ch = kv[i].key.p[k];

			name[4 + k] = (ch >= 'a' && ch <= 'z') ||
			              (ch >= 'A' && ch <= 'Z') ||
			              (ch >= '0' && ch <= '9') ? ch : '_';
		}
		name[4 + k] = '\0';
		val = name + 4 + k + 1;
		memcpy(val, kv[i].value.p, kv[i].value.len);
		val[kv[i].value.len] = '\0';
		for (k = 0; k < h->ndst; k++)
			if (!strcmp(h->dst[k].key, name))
				break;
		if (k < h->ndst)
			continue;  /* an endpoint label does not repeat a set's */
		*used += need;
		h->dst[h->ndst++] = (struct metrics_label){ name, val };
	}
}

/* Bytes the "dst_"-prefixed copies of <kv> take (before the caps). */
static size_t pxm_dst_need(const struct pxm_kv *kv, size_t n)
{
	size_t i, b = 0;

	for (i = 0; i < n; i++)
		b += 4 + kv[i].key.len + 1 + kv[i].value.len + 1;
	return b;
}

/* Gives <h> its authority and dst_* labels, in one block sized to them
 * (none when both are empty). 0, or -1 when memory is short. */
static int pxm_http_strings(struct pxm_http *h, struct str authority,
                            const struct pxm_kv *set, size_t nset,
                            const struct pxm_kv *ep, size_t nep)
{
	size_t lab = nset + nep ? PXM_MAX_DST_LABELS * sizeof(*h->dst) : 0;
	size_t store = pxm_dst_need(set, nset) + pxm_dst_need(ep, nep);
	size_t used = 0;
	char *p;

	if (store > PXM_DST_STORE)
		store = PXM_DST_STORE;
	if (!authority.len && !lab)
		return 0;
	if (nset + nep) {
		/* only the labels that fit the cap get an array slot */
		size_t k = nset + nep < PXM_MAX_DST_LABELS ? nset + nep
		                                           : PXM_MAX_DST_LABELS;

		lab = k * sizeof(*h->dst);
	}
	h->blk = mem_alloc(lab + store + authority.len + 1);
	if (!h->blk)
		return -1;
	h->dst = lab ? (struct metrics_label *)(void *)h->blk : NULL;
	p = h->blk + lab;
	if (lab) {
		pxm_dst_add(h, p, &used, store, set, nset);
		pxm_dst_add(h, p, &used, store, ep, nep);
	}
	h->auth = p + store;
	if (authority.len)
		memcpy(h->auth, authority.p, authority.len);
	h->auth[authority.len] = '\0';
	h->auth_len = authority.len;
	return 0;
}

struct pxm_http *pxmetrics_http_dst(struct pxmetrics *pm,
                                    struct pxm_http *hint, enum pxm_dir dir,
                                    struct str authority,
                                    const struct sock_addr *target,
                                    const struct pxm_kv *set, size_t nset,
                                    const struct pxm_kv *ep, size_t nep)
{
	struct metrics_label l[8 + PXM_MAX_DST_LABELS];
	struct pxm_http *h;
	uint64_t hv;
	unsigned slot;
	size_t n;

	if (hint && pxm_http_match(hint, dir, authority, target)) {
		hint->used = pm->stamp;
		return hint;
	}
	if (!pm->http_tab)
		return NULL;
	if (dir == PXM_INBOUND && !pm->inbound_authority)
		authority = STR_NULL;
	if (authority.len >= PXM_AUTH_MAX ||
	    memchr(authority.p ? authority.p : "", 0, authority.len))
		authority = STR_NULL;
	hv = pxm_hash(pm->seed ^ dir, "h", 1);
	hv = pxm_hash(hv, authority.p ? authority.p : "", authority.len);
	if (target)
		hv = pxm_addr_hash(hv, target);
	slot = (unsigned)(hv % PXM_TAB_SIZE);
	for (h = pm->http_tab[slot]; h; h = h->hnext)
		if (h->hash == hv && pxm_http_match(h, dir, authority, target)) {
			h->used = pm->stamp;
			return h;
		}
	if (pm->nhttp >= PXM_MAX_ENTRIES)
		return NULL;
	h = pxm_http_new(pm);
	if (!h)
		return NULL;
	h->pm = pm;
	h->used = pm->stamp;
	h->hash = hv;
	h->dir = (uint8_t)dir;
	if (pxm_http_strings(h, authority, set, nset, ep, nep) < 0) {
		mem_free(h);
		return NULL;
	}
	if (target) {
		h->has_target = 1;
		h->target = *target;
		if (sock_addr_format(target, h->target_s,
		                     sizeof(h->target_s)) < 0)
			h->target_s[0] = '\0';
	}
	pxm_http_labels(h, l, &n);
	h->req = metrics_series_get(pm->f_req, l, n);
	if (!h->req && (authority.len || h->ndst)) {
		/* e.g. not UTF-8: count it without the authority and labels */
		mem_free(h->blk);
		mem_free(h);
		return pxmetrics_http_dst(pm, NULL, dir, STR_NULL, target,
		                          NULL, 0, NULL, 0);
	}
	h->hnext = pm->http_tab[slot];
	pm->http_tab[slot] = h;
	pm->nhttp++;
	return h;
}

struct pxm_http *pxmetrics_http(struct pxmetrics *pm, struct pxm_http *hint,
                                enum pxm_dir dir, struct str authority,
                                const struct sock_addr *target)
{
	return pxmetrics_http_dst(pm, hint, dir, authority, target, NULL, 0,
	                          NULL, 0);
}

void pxmetrics_latency(struct pxm_http *h, int status, uint64_t ms)
{
	struct metrics_label l[9 + PXM_MAX_DST_LABELS];
	char st[8];
	unsigned i;
	size_t n;

	if (!h || h->dead)
		return;
	h->used = h->pm->stamp;
	for (i = 0; i < h->nlat; i++)
		if (h->lat[i].status == status) {
			metrics_histogram_observe(h->lat[i].hist, ms);
			return;
		}
	pxm_http_labels(h, l, &n);
	snprintf(st, sizeof(st), "%d", status);
	l[n++] = (struct metrics_label){ "status_code", st };
	if (h->nlat < PXM_RESP_CACHE) {
		h->lat[h->nlat].status = status;
		h->lat[h->nlat].hist = metrics_series_get(h->pm->f_lat, l, n);
		metrics_histogram_observe(h->lat[h->nlat].hist, ms);
		h->nlat++;
	} else {
		/* rare: more statuses than cached slots; pay one lookup */
		struct metrics_series *s = metrics_series_get(h->pm->f_lat, l, n);

		metrics_histogram_observe(s, ms);
		metrics_series_put(s);
	}
}

void pxmetrics_response(struct pxm_http *h, int status, int grpc, int fail)
{
	struct metrics_label l[11 + PXM_MAX_DST_LABELS];
	char st[8], gs[12];
	struct metrics_series *s;
	unsigned i;
	size_t n;

	if (!h || h->dead)
		return;
	h->used = h->pm->stamp;
	for (i = 0; i < h->nresp; i++)
		if (h->resp[i].status == status && h->resp[i].grpc == grpc &&
		    h->resp[i].fail == fail) {
			metrics_counter_inc(h->resp[i].total);
			return;
		}
	pxm_http_labels(h, l, &n);
	snprintf(st, sizeof(st), "%d", status);
	l[n++] = (struct metrics_label){ "status_code", st };
	l[n++] = (struct metrics_label){ "classification",
	                                 fail ? "failure" : "success" };
	if (grpc >= 0) {
		snprintf(gs, sizeof(gs), "%d", grpc);
		l[n++] = (struct metrics_label){ "grpc_status", gs };
	}
	s = metrics_series_get(h->pm->f_resp, l, n);
	metrics_counter_inc(s);
	if (h->nresp < PXM_RESP_CACHE) {
		h->resp[h->nresp].status = status;
		h->resp[h->nresp].grpc = grpc;
		h->resp[h->nresp].fail = fail;
		h->resp[h->nresp].total = s;
		h->nresp++;
	} else {
		metrics_series_put(s);
	}
}

int pxmetrics_is_failure(int status, int grpc, int error)
{
	if (error)
		return 1;
	if (grpc >= 0)
		return grpc != 0;
	return status >= 500;
}

/* --- retention --- */

/* Removes <t>'s series and moves it to the grave list. */
static void pxm_tcp_bury(struct pxmetrics *pm, struct pxm_tcp *t)
{
	unsigned j;

	metrics_series_remove(t->open_total);
	metrics_series_remove(t->close_ok);
	metrics_series_remove(t->close_fail);
	for (j = 0; j < PXM_NERRNO; j++) {
		metrics_series_remove(t->close_err[j]);
		t->close_err[j] = NULL;
	}
	metrics_series_remove(t->open_conns);
	metrics_series_remove(t->rd);
	metrics_series_remove(t->wr);
	t->open_total = t->close_ok = t->close_fail = NULL;
	t->open_conns = t->rd = t->wr = NULL;
	t->dead = 1;
	t->used = pm->stamp;
	t->hnext = NULL;
	if (pm->grave_tcp_tail)
		pm->grave_tcp_tail->hnext = t;
	else
		pm->grave_tcp = t;
	pm->grave_tcp_tail = t;
	pm->ntcp--;
	pm->removed++;
}

static void pxm_http_bury(struct pxmetrics *pm, struct pxm_http *h)
{
	unsigned j;

	metrics_series_remove(h->req);
	h->req = NULL;
	for (j = 0; j < h->nresp; j++) {
		metrics_series_remove(h->resp[j].total);
		h->resp[j].total = NULL;
	}
	for (j = 0; j < h->nlat; j++) {
		metrics_series_remove(h->lat[j].hist);
		h->lat[j].hist = NULL;
	}
	MEM_FREE(&h->blk);
	h->auth = NULL;
	h->dst = NULL;
	h->ndst = 0;
	h->auth_len = 0;
	h->dead = 1;
	h->used = pm->stamp;
	h->hnext = NULL;
	if (pm->grave_http_tail)
		pm->grave_http_tail->hnext = h;
	else
		pm->grave_http = h;
	pm->grave_http_tail = h;
	pm->nhttp--;
	pm->removed++;
}

unsigned pxmetrics_sweep(struct pxmetrics *pm, uint64_t now_ms, int all)
{
	unsigned i, n, removed = pm->removed;
	uint64_t idle;

	uint64_t prev = pm->stamp;

	if (prev && now_ms > prev && now_ms - prev > pm->gap)
		pm->gap = now_ms - prev;
	if (now_ms > prev)
		pm->stamp = now_ms;
	/* the first sweep only starts the clock: uses before it were not
	 * stamped with a time */
	if (!prev || !pm->retain_ms || !pm->tcp_tab || !pm->http_tab)
		return 0;
	idle = pm->retain_ms + pm->gap;
	n = all ? PXM_TAB_SIZE : PXM_SWEEP_SLOTS;
	for (i = 0; i < n; i++) {
		unsigned slot = (pm->cursor + i) % PXM_TAB_SIZE;
		struct pxm_tcp **tp = &pm->tcp_tab[slot], *t;
		struct pxm_http **hp = &pm->http_tab[slot], *h;

		while ((t = *tp)) {
			if (!t->nopen && pm->stamp - t->used >= idle) {
				*tp = t->hnext;
				pxm_tcp_bury(pm, t);
			} else {
				tp = &t->hnext;
			}
		}
		while ((h = *hp)) {
			if (pm->stamp - h->used >= idle) {
				*hp = h->hnext;
				pxm_http_bury(pm, h);
			} else {
				hp = &h->hnext;
			}
		}
	}
	pm->cursor = (pm->cursor + n) % PXM_TAB_SIZE;
	return pm->removed - removed;
}

static uint64_t pxm_sweep_period(const struct pxmetrics *pm)
{
	uint64_t p = pm->retain_ms / 4;

	return p && p < PXM_SWEEP_MS ? p : PXM_SWEEP_MS;
}

static void pxm_sweep_cb(struct loop *loop, struct loop_timer *t)
{
	struct pxmetrics *pm = container_of(t, struct pxmetrics, sweep_timer);

	pxmetrics_sweep(pm, loop_now_ms(loop), 0);
	loop_timer_arm(loop, t, pxm_sweep_period(pm));
}

void pxmetrics_retain(struct pxmetrics *pm, struct loop *loop,
                      uint64_t retain_ms)
{
	if (pm->loop)
		loop_timer_stop(pm->loop, &pm->sweep_timer);
	pm->loop = NULL;
	pm->retain_ms = retain_ms;
	if (!loop || !retain_ms)
		return;
	pm->loop = loop;
	pm->stamp = loop_now_ms(loop);
	loop_timer_init(&pm->sweep_timer, pxm_sweep_cb);
	loop_timer_arm(loop, &pm->sweep_timer, pxm_sweep_period(pm));
}
