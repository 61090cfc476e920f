/*
 * metrics: registry, families, labelled series and their Prometheus text
 * exposition (format 0.0.4). See metrics.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * - A series is one allocation: the struct, the histogram bucket counts, the
 *   copied label pairs and their strings, and the label block already
 *   escaped for exposition ('k="v",k2="v2"', constant labels first). So a
 *   lookup allocates once (and OOM has a single failure point), updates
 *   touch one cache line, and rendering a series is a memcpy.
 * - Each family has its own chained hash table, a power of two that doubles
 *   while it holds more series than buckets, never beyond the power of two
 *   covering max_series: growth is bounded by the cardinality cap. A failed
 *   growth only leaves chains longer.
 * - Label values come from the network (authority, identities), so the hash
 *   is SipHash-1-3 keyed per registry from getrandom: collision floods need
 *   the key. Each pair is hashed alone and the pair hashes are added, so the
 *   order of the pairs does not matter.
 * - Families also own one allocation each (struct, name, escaped help,
 *   bounds, constant labels) plus their hash table.
 * - The process metrics read /proc with open/read into stack buffers and
 *   count /proc/self/fd with getdents64: no allocation, no stdio streams.
 *   Memory sizes come from statm (exact), falling back to stat.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* syscall(), getrandom() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/metrics.h"

const uint64_t metrics_latency_ms_bounds[METRICS_LATENCY_MS_NBOUNDS] = {
	1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
};

struct metrics_registry {
	struct metrics_family *head;   /* creation order */
	struct metrics_family *tail;
	uint64_t overflows;
	uint64_t k0, k1;               /* SipHash key */
};

struct metrics_family {
	struct metrics_registry *reg;
	struct metrics_family *next;
	enum metrics_type type;
	const char *name;
	size_t name_len;
	const char *help;              /* escaped, NULL when none */
	size_t help_len;
	uint64_t *bounds;
	uint32_t nbounds;
	uint32_t nconsts;
	struct metrics_label *consts;
	const char *const_text;        /* escaped constant label block */
	size_t const_len;
	uint32_t max_series;
	uint32_t nseries;
	struct metrics_series **tab;   /* hash buckets */
	uint32_t tab_size;             /* power of two */
	uint32_t tab_max;
	struct metrics_series *head;   /* creation order */
	struct metrics_series *tail;
};

#define METRICS_TAB_INIT 8u
#define METRICS_TAB_LIMIT (1u << 24)

/* Names metrics_render_process emits: families may not take them. */
static const char *const metrics_process_names[] = {
	"process_cpu_seconds_total",
	"process_resident_memory_bytes",
	"process_virtual_memory_bytes",
	"process_open_fds",
	"process_max_fds",
	"process_start_time_seconds",
};

static const char *const metrics_hist_suffixes[] = {
	"_bucket", "_sum", "_count",
};

const char *metrics_type_str(enum metrics_type type)
{
	switch (type) {
	case METRICS_COUNTER:
		return "counter";
	case METRICS_GAUGE:
		return "gauge";
	case METRICS_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

static void metrics_err(char *err, size_t errlen, const char *what,
                        const char *name)
{
	if (err && errlen)
		snprintf(err, errlen, "%s%s%s", what, name ? ": " : "",
		         name ? name : "");
}

/* --- names and UTF-8 ---------------------------------------------------- */

static int metrics_is_alpha_(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int metrics_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Checks [a-zA-Z_:][a-zA-Z0-9_:]*. Returns 1 when valid.
 */
int metrics_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (!p || !(metrics_is_alpha_(*p) || *p == ':'))
		return 0;
	for (p++; *p; p++)
		if (!(metrics_is_alpha_(*p) || metrics_is_digit(*p) ||
		      *p == ':'))
			return 0;
	return 1;
}

/*
 * Checks [a-zA-Z_][a-zA-Z0-9_]* and refuses the "__" prefix, which
 * Prometheus reserves. Returns 1 when valid.
 */
int metrics_label_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (!p || !metrics_is_alpha_(*p))
		return 0;
	if (p[0] == '_' && p[1] == '_')
		return 0;
	for (p++; *p; p++)
		if (!(metrics_is_alpha_(*p) || metrics_is_digit(*p)))
			return 0;
	return 1;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as
 * Prometheus checks label values. Returns 1 when valid. */
static int metrics_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	unsigned char lo, hi;

	while (i < n) {
		unsigned char c = s[i];

		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return 0;
		}
		if (n - i - 1 < need)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		i += need + 1;
	}
	return 1;
}

/* --- escaping ----------------------------------------------------------- */

ssize_t metrics_escape_label_value(const char *in, size_t inlen,
                                   char *out, size_t outlen)
{
	size_t i, o = 0;

	if (!out) {
		for (i = 0; i < inlen; i++)
			o += (in[i] == '\\' || in[i] == '"' ||
			      in[i] == '\n') ? 2 : 1;
		return o > (size_t)SSIZE_MAX ? -1 : (ssize_t)o;
	}
	for (i = 0; i < inlen; i++) {
		char c = in[i], e = 0;

		if (c == '\\')
			e = '\\';
		else if (c == '"')
			e = '"';
		else if (c == '\n')
			e = 'n';
		if (e) {
			if (outlen - o < 2)
				return -1;
			out[o++] = '\\';
			out[o++] = e;
		} else {
			if (outlen - o < 1)
				return -1;
			out[o++] = c;
		}
	}
	return o > (size_t)SSIZE_MAX ? -1 : (ssize_t)o;
}

ssize_t metrics_unescape_label_value(const char *in, size_t inlen,
                                     char *out, size_t outlen)
{
	size_t i, o = 0;
	char c;

	for (i = 0; i < inlen; i++) {
		c = in[i];
		if (c == '"' || c == '\n')
			return -1;
		if (c == '\\') {
			if (++i == inlen)
				return -1;
			switch (in[i]) {
			case '\\':
				c = '\\';
				break;
			case '"':
				c = '"';
				break;
			case 'n':
				c = '\n';
				break;
			default:
				return -1;
			}
		}
		if (o == outlen)
			return -1;
		out[o++] = c;
	}
	return o > (size_t)SSIZE_MAX ? -1 : (ssize_t)o;
}

/* HELP text escaping: only backslash and newline. Returns bytes written
 * (<out> sized by a NULL pass first). */
static size_t metrics_escape_help(const char *in, size_t inlen, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < inlen; i++) {
		if (in[i] == '\\' || in[i] == '\n') {
			if (out) {
				out[o] = '\\';
				out[o + 1] = in[i] == '\n' ? 'n' : '\\';
			}
			o += 2;
		} else {
			if (out)
				out[o] = in[i];
			o++;
		}
	}
	return o;
}

/* Length of the exposition of one pair: k="escaped v". */
static size_t metrics_pair_text_len(const char *k, const char *v)
{
	return strlen(k) + 3 +
	       (size_t)metrics_escape_label_value(v, strlen(v), NULL, 0);
}

/* Writes k="escaped v" to <out> (sized with metrics_pair_text_len) and
 * returns the bytes written. */
static size_t metrics_pair_text(const char *k, const char *v, char *out)
{
	size_t klen = strlen(k), vlen = strlen(v);
	ssize_t n;

	memcpy(out, k, klen);
	out[klen] = '=';
	out[klen + 1] = '"';
	n = metrics_escape_label_value(v, vlen, out + klen + 2, vlen * 2);
	out[klen + 2 + (size_t)n] = '"';
	return klen + 3 + (size_t)n;
}

/* --- SipHash-1-3, streaming --------------------------------------------- */

struct metrics_sip {
	uint64_t v0, v1, v2, v3;
	uint64_t m;                    /* pending bytes, little endian */
	unsigned mlen;
	uint64_t total;
};

#define METRICS_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static void metrics_sip_round(struct metrics_sip *s)
{
	s->v0 += s->v1;
	s->v1 = METRICS_ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = METRICS_ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = METRICS_ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = METRICS_ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = METRICS_ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = METRICS_ROTL(s->v2, 32);
}

static void metrics_sip_init(struct metrics_sip *s, uint64_t k0, uint64_t k1)
{
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
	s->m = 0;
	s->mlen = 0;
	s->total = 0;
}

static void metrics_sip_update(struct metrics_sip *s, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		s->m |= (uint64_t)b[i] << (8 * s->mlen);
		if (++s->mlen == 8) {
			s->v3 ^= s->m;
			metrics_sip_round(s);
			s->v0 ^= s->m;
			s->m = 0;
			s->mlen = 0;
		}
	}
	s->total += n;
}

static uint64_t metrics_sip_final(struct metrics_sip *s)
{
	uint64_t b = (s->total << 56) | s->m;

	s->v3 ^= b;
	metrics_sip_round(s);
	s->v0 ^= b;
	s->v2 ^= 0xff;
	metrics_sip_round(s);
	metrics_sip_round(s);
	metrics_sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* Order-independent hash of a label set (see IMPLEMENTATION NOTES). */
static uint64_t metrics_labels_hash(const struct metrics_registry *r,
                                    const struct metrics_label *l, size_t n)
{
	struct metrics_sip s;
	uint64_t h = n;
	size_t i;

	for (i = 0; i < n; i++) {
		metrics_sip_init(&s, r->k0, r->k1);
		/* keys hold no NUL, so key NUL value is unambiguous */
		metrics_sip_update(&s, l[i].key, strlen(l[i].key) + 1);
		metrics_sip_update(&s, l[i].value, strlen(l[i].value));
		h += metrics_sip_final(&s);
	}
	return h;
}

/* --- registry ----------------------------------------------------------- */

struct metrics_registry *metrics_registry_new(void)
{
	struct metrics_registry *r = mem_calloc(1, sizeof(*r));
	uint64_t key[2];
	struct timespec ts;

	if (!r)
		return NULL;
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		/* no entropy yet: a weaker key still spreads honest sets */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		key[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
		         (uint64_t)(uintptr_t)r;
		key[1] = ((uint64_t)getpid() << 17) ^ (uint64_t)(uintptr_t)&ts;
	}
	r->k0 = key[0];
	r->k1 = key[1];
	return r;
}

static void metrics_family_free(struct metrics_family *f)
{
	struct metrics_series *s, *next;

	for (s = f->head; s; s = next) {
		next = s->next;
		mem_free(s);
	}
	MEM_FREE(&f->tab);
	mem_free(f);
}

void metrics_registry_free(struct metrics_registry *r)
{
	struct metrics_family *f, *next;

	if (!r)
		return;
	for (f = r->head; f; f = next) {
		next = f->next;
		metrics_family_free(f);
	}
	mem_free(r);
}

uint64_t metrics_registry_overflows(const struct metrics_registry *r)
{
	return r ? r->overflows : 0;
}

/* --- families ----------------------------------------------------------- */

/* 1 when <a> equals <b> followed by <sfx>. */
static int metrics_is_suffixed(const char *a, const char *b, const char *sfx)
{
	size_t blen = strlen(b);

	return strncmp(a, b, blen) == 0 && strcmp(a + blen, sfx) == 0;
}

/* 1 when two families would expose a sample name in common. */
static int metrics_names_clash(const char *a, int ahist, const char *b,
                               int bhist)
{
	size_t i;

	if (strcmp(a, b) == 0)
		return 1;
	for (i = 0; i < sizeof(metrics_hist_suffixes) /
	                sizeof(metrics_hist_suffixes[0]); i++) {
		if (ahist && metrics_is_suffixed(b, a, metrics_hist_suffixes[i]))
			return 1;
		if (bhist && metrics_is_suffixed(a, b, metrics_hist_suffixes[i]))
			return 1;
	}
	return 0;
}

/* Checks a label set's keys for validity, repeats and clashes with <f>'s
 * constant labels (when <f> is not NULL). Returns 0 or -1. */
static int metrics_check_keys(const struct metrics_family *f,
                              const struct metrics_label *l, size_t n,
                              int hist)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (!metrics_label_name_valid(l[i].key))
			return -1;
		if (hist && strcmp(l[i].key, "le") == 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(l[i].key, l[j].key) == 0)
				return -1;
		for (j = 0; f && j < f->nconsts; j++)
			if (strcmp(l[i].key, f->consts[j].key) == 0)
				return -1;
	}
	return 0;
}

/* Checks label values: present, short enough, UTF-8. Returns 0 or -1. */
static int metrics_check_values(const struct metrics_label *l, size_t n)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		if (!l[i].value)
			return -1;
		len = strlen(l[i].value);
		if (len > METRICS_MAX_VALUE_LEN ||
		    !metrics_utf8_valid((const unsigned char *)l[i].value, len))
			return -1;
	}
	return 0;
}

/* Rounds <n> up to a multiple of 8 (alignment inside one allocation). */
static size_t metrics_align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Checks <o> against the registry; returns 0, or -1 with <err> set. */
static int metrics_family_check(struct metrics_registry *r,
                                const struct metrics_family_opts *o,
                                char *err, size_t errlen)
{
	const struct metrics_family *e;
	int hist = o->type == METRICS_HISTOGRAM;
	size_t i;

	if (o->type != METRICS_COUNTER && o->type != METRICS_GAUGE && !hist) {
		metrics_err(err, errlen, "unknown metric type", o->name);
		return -1;
	}
	if (!metrics_name_valid(o->name)) {
		metrics_err(err, errlen, "invalid metric name", o->name);
		return -1;
	}
	if (o->help && !metrics_utf8_valid((const unsigned char *)o->help,
	                                   strlen(o->help))) {
		metrics_err(err, errlen, "help text is not UTF-8", o->name);
		return -1;
	}
	for (i = 0; i < sizeof(metrics_process_names) /
	                sizeof(metrics_process_names[0]); i++) {
		if (metrics_names_clash(o->name, hist,
		                        metrics_process_names[i], 0)) {
			metrics_err(err, errlen, "name taken by process metrics",
			            o->name);
			return -1;
		}
	}
	for (e = r->head; e; e = e->next) {
		if (metrics_names_clash(o->name, hist, e->name,
		                        e->type == METRICS_HISTOGRAM)) {
			metrics_err(err, errlen, "metric name already used",
			            o->name);
			return -1;
		}
	}
	if (hist) {
		if (o->nbounds > METRICS_MAX_BOUNDS ||
		    (o->nbounds && !o->bounds)) {
			metrics_err(err, errlen, "bad histogram bounds", o->name);
			return -1;
		}
		for (i = 1; i < o->nbounds; i++) {
			if (o->bounds[i] <= o->bounds[i - 1]) {
				metrics_err(err, errlen, "histogram bounds not "
				            "strictly increasing", o->name);
				return -1;
			}
		}
	}
	if (o->nconst_labels > METRICS_MAX_LABELS ||
	    (o->nconst_labels && !o->const_labels) ||
	    metrics_check_keys(NULL, o->const_labels, o->nconst_labels,
	                       hist) < 0 ||
	    metrics_check_values(o->const_labels, o->nconst_labels) < 0) {
		metrics_err(err, errlen, "bad constant labels", o->name);
		return -1;
	}
	return 0;
}

/*
 * Creates a family (see metrics.h). Layout of the single allocation:
 * struct | bounds | const label pairs | name | help | const strings |
 * const label block.
 */
struct metrics_family *metrics_family_new(struct metrics_registry *r,
                                          const struct metrics_family_opts *o,
                                          char *err, size_t errlen)
{
	struct metrics_family *f;
	size_t name_len, help_raw, help_len = 0, const_len = 0, strs = 0;
	size_t off_bounds, off_consts, off_text, total, i, nb = 0, nc;
	char *base, *p;

	if (!r || !o) {
		metrics_err(err, errlen, "no registry or options", NULL);
		return NULL;
	}
	if (metrics_family_check(r, o, err, errlen) < 0)
		return NULL;
	if (o->type == METRICS_HISTOGRAM)
		nb = o->nbounds;
	nc = o->nconst_labels;
	name_len = strlen(o->name);
	help_raw = o->help ? strlen(o->help) : 0;
	if (help_raw)
		help_len = metrics_escape_help(o->help, help_raw, NULL);
	for (i = 0; i < nc; i++) {
		strs += strlen(o->const_labels[i].key) + 1 +
		        strlen(o->const_labels[i].value) + 1;
		const_len += (i ? 1 : 0) +
		             metrics_pair_text_len(o->const_labels[i].key,
		                                   o->const_labels[i].value);
	}
	off_bounds = metrics_align8(sizeof(*f));
	off_consts = off_bounds + nb * sizeof(uint64_t);
	off_text = off_consts + nc * sizeof(struct metrics_label);
	total = off_text + name_len + 1 + help_len + 1 + strs + const_len + 1;

	base = mem_calloc(1, total);
	if (!base) {
		metrics_err(err, errlen, "out of memory", o->name);
		return NULL;
	}
	f = (struct metrics_family *)base;
	f->tab = mem_calloc(METRICS_TAB_INIT, sizeof(*f->tab));
	if (!f->tab) {
		mem_free(base);
		metrics_err(err, errlen, "out of memory", o->name);
		return NULL;
	}
	f->tab_size = METRICS_TAB_INIT;
	f->max_series = o->max_series ? o->max_series :
	                METRICS_MAX_SERIES_DEFAULT;
	f->tab_max = METRICS_TAB_INIT;
	while (f->tab_max < f->max_series && f->tab_max < METRICS_TAB_LIMIT)
		f->tab_max *= 2;
	f->reg = r;
	f->type = o->type;
	f->nbounds = (uint32_t)nb;
	f->bounds = (uint64_t *)(base + off_bounds);
	if (nb)
		memcpy(f->bounds, o->bounds, nb * sizeof(uint64_t));
	f->nconsts = (uint32_t)nc;
	f->consts = (struct metrics_label *)(base + off_consts);

	p = base + off_text;
	memcpy(p, o->name, name_len);
	f->name = p;
	f->name_len = name_len;
	p += name_len + 1;
	if (help_len) {
		metrics_escape_help(o->help, help_raw, p);
		f->help = p;
		f->help_len = help_len;
	}
	p += help_len + 1;
	for (i = 0; i < nc; i++) {
		size_t kl = strlen(o->const_labels[i].key);
		size_t vl = strlen(o->const_labels[i].value);

		memcpy(p, o->const_labels[i].key, kl);
		f->consts[i].key = p;
		p += kl + 1;
		memcpy(p, o->const_labels[i].value, vl);
		f->consts[i].value = p;
		p += vl + 1;
	}
	f->const_text = p;
	for (i = 0; i < nc; i++) {
		if (i)
			*p++ = ',';
		p += metrics_pair_text(f->consts[i].key, f->consts[i].value, p);
	}
	f->const_len = const_len;

	if (r->tail)
		r->tail->next = f;
	else
		r->head = f;
	r->tail = f;
	return f;
}

uint32_t metrics_family_nseries(const struct metrics_family *f)
{
	return f ? f->nseries : 0;
}

/* --- series ------------------------------------------------------------- */

/* 1 when <s> has exactly the label set <l>[<n>], in any order. */
static int metrics_labels_equal(const struct metrics_series *s,
                                const struct metrics_label *l, size_t n)
{
	size_t i, j;

	if (s->nlabels != n)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(s->labels[i].key, l[i].key) != 0 ||
		    strcmp(s->labels[i].value, l[i].value) != 0)
			break;
	if (i == n)
		return 1;
	/* other order: each pair of <l> is in <s>, and <l>'s keys are
	 * distinct (as <s>'s are), so the sets are equal */
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(s->labels[j].key, l[i].key) == 0)
				break;
		if (j == n || strcmp(s->labels[j].value, l[i].value) != 0)
			return 0;
		for (j = 0; j < i; j++)
			if (strcmp(l[j].key, l[i].key) == 0)
				return 0;
	}
	return 1;
}

/* Doubles <f>'s hash table if it is loaded past one series per bucket and
 * below its bound. Failure to allocate leaves the table as it was. */
static void metrics_family_grow(struct metrics_family *f)
{
	struct metrics_series **nt, *s, *next;
	uint32_t nsize, i, b;

	if (f->nseries <= f->tab_size || f->tab_size >= f->tab_max)
		return;
	nsize = f->tab_size * 2;
	nt = mem_calloc(nsize, sizeof(*nt));
	if (!nt)
		return;
	for (i = 0; i < f->tab_size; i++) {
		for (s = f->tab[i]; s; s = next) {
			next = s->hnext;
			b = (uint32_t)(s->hash & (nsize - 1));
			s->hnext = nt[b];
			nt[b] = s;
		}
	}
	mem_free(f->tab);
	f->tab = nt;
	f->tab_size = nsize;
}

/*
 * Builds a new series for <l>[<n>] (already validated). Layout of the
 * single allocation: struct | bucket counts | label pairs | strings |
 * label block.
 */
static struct metrics_series *metrics_series_new(struct metrics_family *f,
                                                 const struct metrics_label *l,
                                                 size_t n, uint64_t hash)
{
	struct metrics_series *s;
	size_t nb = f->type == METRICS_HISTOGRAM ? f->nbounds + 1 : 0;
	size_t off_counts, off_labels, off_text, total, strs = 0, text;
	size_t i;
	char *base, *p;

	text = f->const_len;
	for (i = 0; i < n; i++) {
		strs += strlen(l[i].key) + 1 + strlen(l[i].value) + 1;
		text += (text ? 1 : 0) +
		        metrics_pair_text_len(l[i].key, l[i].value);
	}
	off_counts = metrics_align8(sizeof(*s));
	off_labels = off_counts + nb * sizeof(uint64_t);
	off_text = off_labels + n * sizeof(struct metrics_label);
	total = off_text + strs + text + 1;

	base = mem_calloc(1, total);
	if (!base)
		return NULL;
	s = (struct metrics_series *)base;
	/* NULL unless histogram: misuse crashes at once, corrupts nothing */
	s->counts = nb ? (uint64_t *)(base + off_counts) : NULL;
	s->bounds = f->bounds;
	s->nbounds = f->type == METRICS_HISTOGRAM ? f->nbounds : 0;
	s->fam = f;
	s->hash = hash;
	s->nlabels = (uint32_t)n;
	s->labels = (struct metrics_label *)(base + off_labels);

	p = base + off_text;
	for (i = 0; i < n; i++) {
		struct metrics_label *dst = (struct metrics_label *)s->labels;
		size_t kl = strlen(l[i].key), vl = strlen(l[i].value);

		memcpy(p, l[i].key, kl);
		dst[i].key = p;
		p += kl + 1;
		memcpy(p, l[i].value, vl);
		dst[i].value = p;
		p += vl + 1;
	}
	s->ltext = p;
	memcpy(p, f->const_text, f->const_len);
	p += f->const_len;
	for (i = 0; i < n; i++) {
		if (f->const_len || i)
			*p++ = ',';
		p += metrics_pair_text(l[i].key, l[i].value, p);
	}
	s->ltext_len = text;
	return s;
}

struct metrics_series *metrics_series_get(struct metrics_family *f,
                                          const struct metrics_label *labels,
                                          size_t nlabels)
{
	struct metrics_series *s;
	uint64_t hash;
	uint32_t b;
	size_t i;

	if (!f || nlabels > METRICS_MAX_LABELS || (nlabels && !labels))
		return NULL;
	for (i = 0; i < nlabels; i++)
		if (!labels[i].key || !labels[i].value)
			return NULL;
	hash = metrics_labels_hash(f->reg, labels, nlabels);
	b = (uint32_t)(hash & (f->tab_size - 1));
	for (s = f->tab[b]; s; s = s->hnext) {
		if (s->hash == hash && metrics_labels_equal(s, labels, nlabels)) {
			s->refs++;
			s->doomed = 0;
			return s;
		}
	}
	if (metrics_check_keys(f, labels, nlabels,
	                       f->type == METRICS_HISTOGRAM) < 0 ||
	    metrics_check_values(labels, nlabels) < 0)
		return NULL;
	if (f->nseries >= f->max_series) {
		f->reg->overflows++;
		return NULL;
	}
	s = metrics_series_new(f, labels, nlabels, hash);
	if (!s)
		return NULL;
	s->refs = 1;
	s->hnext = f->tab[b];
	f->tab[b] = s;
	s->prev = f->tail;
	if (f->tail)
		f->tail->next = s;
	else
		f->head = s;
	f->tail = s;
	f->nseries++;
	metrics_family_grow(f);
	return s;
}

void metrics_series_ref(struct metrics_series *s)
{
	if (s)
		s->refs++;
}

/* Unlinks <s> from its family and frees it. */
static void metrics_series_destroy(struct metrics_series *s)
{
	struct metrics_family *f = s->fam;
	struct metrics_series **pp;

	for (pp = &f->tab[s->hash & (f->tab_size - 1)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		f->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		f->tail = s->prev;
	f->nseries--;
	mem_free(s);
}

void metrics_series_put(struct metrics_series *s)
{
	if (!s || s->refs == 0)
		return;
	if (--s->refs == 0 && s->doomed)
		metrics_series_destroy(s);
}

void metrics_series_remove(struct metrics_series *s)
{
	if (!s)
		return;
	s->doomed = 1;
	metrics_series_put(s);
}

uint64_t metrics_histogram_count(const struct metrics_series *s)
{
	uint64_t n = 0;
	uint32_t i;

	if (!s->counts)
		return 0;
	for (i = 0; i <= s->nbounds; i++)
		n += s->counts[i];
	return n;
}

/* --- exposition --------------------------------------------------------- */

struct metrics_piece {
	const char *p;
	size_t n;
};

#define METRICS_PIECE(s) { s, sizeof(s) - 1 }

/* Appends the concatenation of <pc>[<n>] in one reservation. Returns 0 or
 * -1 (buffer unchanged). */
static int metrics_emit(struct buf *out, const struct metrics_piece *pc,
                        size_t n)
{
	size_t i, total = 0;
	char *dst;

	for (i = 0; i < n; i++)
		total += pc[i].n;
	dst = buf_reserve(out, total);
	if (!dst)
		return -1;
	for (i = 0; i < n; i++) {
		if (pc[i].n)
			memcpy(dst, pc[i].p, pc[i].n);
		dst += pc[i].n;
	}
	buf_produce(out, total);
	return 0;
}

/* Decimal of <v> into <dst> (at least 20 bytes); returns its length. */
static size_t metrics_fmt_u64(char *dst, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

/* Decimal of <v> into <dst> (at least 21 bytes); returns its length. */
static size_t metrics_fmt_i64(char *dst, int64_t v)
{
	if (v < 0) {
		dst[0] = '-';
		return 1 + metrics_fmt_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
	}
	return metrics_fmt_u64(dst, (uint64_t)v);
}

/* "# HELP name help\n# TYPE name type\n". */
static int metrics_emit_header(struct buf *out, const char *name,
                               size_t name_len, const char *help,
                               size_t help_len, const char *type)
{
	struct metrics_piece help_line[] = {
		METRICS_PIECE("# HELP "), { name, name_len },
		METRICS_PIECE(" "), { help, help_len }, METRICS_PIECE("\n"),
	};
	struct metrics_piece type_line[] = {
		METRICS_PIECE("# TYPE "), { name, name_len },
		METRICS_PIECE(" "), { type, strlen(type) }, METRICS_PIECE("\n"),
	};

	if (help_len && metrics_emit(out, help_line, 5) < 0)
		return -1;
	return metrics_emit(out, type_line, 5);
}

/* One sample line: name<sfx>{<ltext>[,<extra>]} <num>\n, braces left out
 * when there are no labels at all. */
static int metrics_emit_sample(struct buf *out, const struct metrics_family *f,
                               const char *sfx, const struct metrics_series *s,
                               const char *extra, size_t extra_len,
                               const char *num, size_t num_len)
{
	struct metrics_piece pc[10];
	size_t n = 0;

	pc[n++] = (struct metrics_piece){ f->name, f->name_len };
	pc[n++] = (struct metrics_piece){ sfx, strlen(sfx) };
	if (s->ltext_len || extra_len) {
		pc[n++] = (struct metrics_piece){ "{", 1 };
		pc[n++] = (struct metrics_piece){ s->ltext, s->ltext_len };
		if (s->ltext_len && extra_len)
			pc[n++] = (struct metrics_piece){ ",", 1 };
		pc[n++] = (struct metrics_piece){ extra, extra_len };
		pc[n++] = (struct metrics_piece){ "}", 1 };
	}
	pc[n++] = (struct metrics_piece){ " ", 1 };
	pc[n++] = (struct metrics_piece){ num, num_len };
	pc[n++] = (struct metrics_piece){ "\n", 1 };
	return metrics_emit(out, pc, n);
}

static int metrics_render_histogram(struct buf *out,
                                    const struct metrics_family *f,
                                    const struct metrics_series *s)
{
	char num[24], le[48];
	uint64_t cum = 0;
	size_t nl, ll;
	uint32_t i;

	for (i = 0; i <= s->nbounds; i++) {
		cum += s->counts[i];
		memcpy(le, "le=\"", 4);
		if (i < s->nbounds) {
			ll = 4 + metrics_fmt_u64(le + 4, s->bounds[i]);
		} else {
			memcpy(le + 4, "+Inf", 4);
			ll = 8;
		}
		le[ll++] = '"';
		nl = metrics_fmt_u64(num, cum);
		if (metrics_emit_sample(out, f, "_bucket", s, le, ll,
		                        num, nl) < 0)
			return -1;
	}
	nl = metrics_fmt_u64(num, s->v.sum);
	if (metrics_emit_sample(out, f, "_sum", s, NULL, 0, num, nl) < 0)
		return -1;
	nl = metrics_fmt_u64(num, cum);
	return metrics_emit_sample(out, f, "_count", s, NULL, 0, num, nl);
}

int metrics_render(const struct metrics_registry *r, struct buf *out)
{
	const struct metrics_family *f;
	const struct metrics_series *s;
	char num[24];
	size_t nl;

	if (!r)
		return 0;
	for (f = r->head; f; f = f->next) {
		if (!f->head)
			continue;
		if (metrics_emit_header(out, f->name, f->name_len, f->help,
		                        f->help_len,
		                        metrics_type_str(f->type)) < 0)
			return -1;
		for (s = f->head; s; s = s->next) {
			switch (f->type) {
			case METRICS_COUNTER:
				nl = metrics_fmt_u64(num, s->v.counter);
				break;
			case METRICS_GAUGE:
				nl = metrics_fmt_i64(num, s->v.gauge);
				break;
			default:
				if (metrics_render_histogram(out, f, s) < 0)
					return -1;
				continue;
			}
			if (metrics_emit_sample(out, f, "", s, NULL, 0,
			                        num, nl) < 0)
				return -1;
		}
	}
	return 0;
}

/* --- process metrics ---------------------------------------------------- */

/* Reads up to <size> - 1 bytes of <path> into <dst>, NUL-terminated.
 * Returns the length, or -1. */
static ssize_t metrics_read_file(const char *path, char *dst, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (len < size - 1) {
		n = read(fd, dst + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	dst[len] = '\0';
	return (ssize_t)len;
}

/* Parses a decimal at *<pp>, moving past it. Returns 0, or -1 when there
 * are no digits or the value overflows. */
static int metrics_parse_u64(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (!metrics_is_digit((unsigned char)*p))
		return -1;
	for (; metrics_is_digit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*pp = p;
	*out = v;
	return 0;
}

/* The fields of /proc/self/stat that we expose. */
struct metrics_proc_stat {
	uint64_t utime, stime;         /* clock ticks */
	uint64_t starttime;            /* clock ticks after boot */
	uint64_t vsize;                /* bytes */
	uint64_t rss;                  /* pages */
};

/* Parses /proc/self/stat. The command name may hold spaces and
 * parentheses, so fields are counted from the last ')'. Returns 0 or -1. */
static int metrics_read_stat(struct metrics_proc_stat *st)
{
	char text[2048];
	const char *p;
	ssize_t len;
	uint64_t v;
	int field;

	len = metrics_read_file("/proc/self/stat", text, sizeof(text));
	if (len <= 0)
		return -1;
	p = NULL;
	for (; len > 0; len--) {
		if (text[len - 1] == ')') {
			p = text + len;
			break;
		}
	}
	if (!p)
		return -1;
	/* p is right after ')': " S ppid ..." where S is field 3 */
	for (field = 2; field < 24; ) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		field++;
		if (field < 14 || (field > 15 && field < 22)) {
			while (*p && *p != ' ')
				p++;
			continue;
		}
		if (metrics_parse_u64(&p, &v) < 0)
			return -1;
		switch (field) {
		case 14:
			st->utime = v;
			break;
		case 15:
			st->stime = v;
			break;
		case 22:
			st->starttime = v;
			break;
		case 23:
			st->vsize = v;
			break;
		default:
			st->rss = v;
			break;
		}
	}
	return 0;
}

/* Virtual and resident size (pages) from /proc/self/statm, whose counts
 * are exact where /proc/self/stat's rss may lag on recent kernels.
 * Returns 0 or -1. */
static int metrics_read_statm(uint64_t *vsize, uint64_t *rss)
{
	char text[256];
	const char *p = text;

	if (metrics_read_file("/proc/self/statm", text, sizeof(text)) <= 0)
		return -1;
	if (metrics_parse_u64(&p, vsize) < 0 || *p++ != ' ' ||
	    metrics_parse_u64(&p, rss) < 0)
		return -1;
	return 0;
}

/* Boot time (seconds since the epoch), from the "btime" line of /proc/stat,
 * streamed through a small buffer (the "intr" line before it can be long).
 * Cached: it does not change. Returns 0 or -1. */
static int metrics_boot_time(uint64_t *out)
{
	static const char pat[] = "\nbtime ";
	static uint64_t cached;
	static int have;
	char chunk[1024];
	size_t m = 1, i;      /* as if the file began after a newline */
	uint64_t v = 0;
	int digits = 0, done = 0, fd;
	ssize_t n;

	if (have) {
		*out = cached;
		return 0;
	}
	fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (!done) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < (size_t)n && !done; i++) {
			char c = chunk[i];

			if (m == sizeof(pat) - 1) {
				if (metrics_is_digit((unsigned char)c) &&
				    v <= (UINT64_MAX - 9) / 10) {
					v = v * 10 + (uint64_t)(c - '0');
					digits = 1;
				} else {
					done = 1;
				}
			} else if (c == pat[m]) {
				m++;
			} else {
				m = c == '\n' ? 1 : 0;
			}
		}
	}
	close(fd);
	if (!digits)
		return -1;
	cached = v;
	have = 1;
	*out = v;
	return 0;
}

/* Linux's struct linux_dirent64; the kernel headers are not on musl's
 * include path. */
struct metrics_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Counts the open descriptors, not counting the one used to count.
 * Returns 0 or -1. */
static int metrics_count_fds(uint64_t *out)
{
	char dents[4096] __attribute__((aligned(8)));
	const struct metrics_dirent64 *d;
	uint64_t count = 0;
	long n, off;
	int fd;

	fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		n = syscall(SYS_getdents64, fd, dents, sizeof(dents));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		for (off = 0; off < n; off += d->d_reclen) {
			d = (const struct metrics_dirent64 *)(dents + off);
			if (d->d_reclen == 0)
				break;
			if (strcmp(d->d_name, ".") != 0 &&
			    strcmp(d->d_name, "..") != 0)
				count++;
		}
	}
	close(fd);
	*out = count ? count - 1 : 0;
	return 0;
}

/* <ticks>/<hz> as a decimal with up to 6 fraction digits, trailing zeros
 * dropped, plus <base> whole seconds. Returns its length (<dst> >= 32). */
static size_t metrics_fmt_ticks(char *dst, uint64_t base, uint64_t ticks,
                                uint64_t hz)
{
	uint64_t frac = (ticks % hz) * 1000000 / hz;
	size_t n = metrics_fmt_u64(dst, base + ticks / hz);
	int i;

	if (frac) {
		dst[n++] = '.';
		for (i = 5; i >= 0; i--) {
			dst[n + (size_t)i] = (char)('0' + frac % 10);
			frac /= 10;
		}
		n += 6;
		while (dst[n - 1] == '0')
			n--;
	}
	return n;
}

/* One un-labelled process metric: HELP, TYPE and the sample. */
static int metrics_emit_process(struct buf *out, const char *name,
                                const char *help, const char *type,
                                const char *num, size_t num_len)
{
	size_t name_len = strlen(name);
	struct metrics_piece line[] = {
		{ name, name_len }, METRICS_PIECE(" "), { num, num_len },
		METRICS_PIECE("\n"),
	};

	if (metrics_emit_header(out, name, name_len, help, strlen(help),
	                        type) < 0)
		return -1;
	return metrics_emit(out, line, 4);
}

int metrics_render_process(struct buf *out)
{
	struct metrics_proc_stat st;
	struct rlimit rl;
	uint64_t hz, page, btime, fds, vpages, rpages;
	char num[40];
	size_t nl;
	long v;
	int have_stat, have_mem;

	v = sysconf(_SC_CLK_TCK);
	hz = v > 0 ? (uint64_t)v : 100;
	v = sysconf(_SC_PAGESIZE);
	page = v > 0 ? (uint64_t)v : 4096;
	memset(&st, 0, sizeof(st));
	have_stat = metrics_read_stat(&st) == 0;
	have_mem = have_stat;
	if (metrics_read_statm(&vpages, &rpages) == 0) {
		st.vsize = vpages * page;
		st.rss = rpages;
		have_mem = 1;
	}

	if (have_stat) {
		nl = metrics_fmt_ticks(num, 0, st.utime + st.stime, hz);
		if (metrics_emit_process(out, "process_cpu_seconds_total",
		                         "Total user and system CPU time "
		                         "spent in seconds.", "counter",
		                         num, nl) < 0)
			return -1;
	}
	if (have_mem) {
		nl = metrics_fmt_u64(num, st.rss * page);
		if (metrics_emit_process(out, "process_resident_memory_bytes",
		                         "Resident memory size in bytes.",
		                         "gauge", num, nl) < 0)
			return -1;
		nl = metrics_fmt_u64(num, st.vsize);
		if (metrics_emit_process(out, "process_virtual_memory_bytes",
		                         "Virtual memory size in bytes.",
		                         "gauge", num, nl) < 0)
			return -1;
	}
	if (metrics_count_fds(&fds) == 0) {
		nl = metrics_fmt_u64(num, fds);
		if (metrics_emit_process(out, "process_open_fds",
		                         "Number of open file descriptors.",
		                         "gauge", num, nl) < 0)
			return -1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		nl = metrics_fmt_u64(num, (uint64_t)rl.rlim_cur);
		if (metrics_emit_process(out, "process_max_fds",
		                         "Maximum number of open file "
		                         "descriptors.", "gauge", num, nl) < 0)
			return -1;
	}
	if (have_stat && metrics_boot_time(&btime) == 0) {
		nl = metrics_fmt_ticks(num, btime, st.starttime, hz);
		if (metrics_emit_process(out, "process_start_time_seconds",
		                         "Start time of the process since the "
		                         "Unix epoch in seconds.", "gauge",
		                         num, nl) < 0)
			return -1;
	}
	return 0;
}
