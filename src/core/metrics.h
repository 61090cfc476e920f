/*
 * metrics: counters, gauges and histograms with labels, exposed in the
 * Prometheus text format 0.0.4.
 *
 * Model. A registry holds families; a family is a name, a help text, a type,
 * optional constant labels and (histograms) fixed bucket upper bounds. A
 * series is a family plus one label set. Code creates its families at
 * startup, looks a series up once (per connection, route, endpoint...) with
 * metrics_series_get, keeps the handle, and updates the value through the
 * inline accessors below: one integer operation, no hashing, no allocation.
 *
 * Contracts:
 *  - Not thread-safe: one registry belongs to one event loop (meshd runs one
 *    loop per process).
 *  - The update accessors accept a NULL handle and then do nothing, so a
 *    series refused by the cardinality cap (or by OOM) costs the caller no
 *    special case. A handle MUST only be used with the accessors of its
 *    family's type.
 *  - Handles are reference counted. metrics_series_get takes a reference;
 *    metrics_series_put drops it and the series stays (it keeps its value and
 *    is still exposed); metrics_series_remove drops it and asks for removal,
 *    which happens when the last reference is dropped. A handle is valid
 *    until its holder drops its reference, and at the latest until
 *    metrics_registry_free, which frees everything at once: the registry
 *    MUST outlive every handle that is still used.
 *  - Label sets are arrays of {key, value} C strings, copied on creation. A
 *    label set names the same series whatever the order of its pairs; the
 *    order of the first lookup is the order of exposition.
 *  - Each family holds at most max_series series (cardinality protection);
 *    a lookup that would create one more returns NULL and increments the
 *    registry's overflow counter (metrics_registry_overflows).
 *  - Exposition order is stable: families in creation order, series in
 *    creation order. Families without any series are not exposed.
 */
#ifndef MESHD_CORE_METRICS_H
#define MESHD_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* Default cap on the number of series of one family. */
#define METRICS_MAX_SERIES_DEFAULT 10000u
/* Hard limits on what one family or lookup may carry. */
#define METRICS_MAX_LABELS 32        /* per label set, and constant labels */
#define METRICS_MAX_BOUNDS 128       /* histogram bucket bounds */
#define METRICS_MAX_VALUE_LEN 1024   /* bytes of one label value */

/* The latency buckets of DESIGN.md section 5 (milliseconds), for
 * response_latency_ms and friends. */
#define METRICS_LATENCY_MS_NBOUNDS 25
extern const uint64_t metrics_latency_ms_bounds[METRICS_LATENCY_MS_NBOUNDS];

enum metrics_type {
	METRICS_COUNTER,    /* uint64, only goes up */
	METRICS_GAUGE,      /* int64, goes up and down */
	METRICS_HISTOGRAM,  /* uint64 observations into fixed buckets */
};

/* Returns "counter", "gauge", "histogram" (or "untyped" for junk). */
const char *metrics_type_str(enum metrics_type type);

struct metrics_label {
	const char *key;
	const char *value;
};

struct metrics_registry;
struct metrics_family;

/*
 * One series. The hot fields come first and are touched only through the
 * inline accessors; everything else is private to metrics.c.
 */
struct metrics_series {
	union {
		uint64_t counter;
		int64_t gauge;
		uint64_t sum;          /* histogram: sum of observations */
	} v;                           /* rw: through the accessors */
	uint64_t *counts;              /* private: histogram, nbounds + 1 per-
	                                * bucket (not cumulative) counts; the
	                                * last one is +Inf */
	const uint64_t *bounds;        /* private: the family's bounds */
	uint32_t nbounds;              /* private */
	uint32_t refs;                 /* private: references held */
	struct metrics_family *fam;    /* private */
	struct metrics_series *hnext;  /* private: hash chain */
	struct metrics_series *prev;   /* private: creation-order list */
	struct metrics_series *next;   /* private */
	uint64_t hash;                 /* private: hash of the label set */
	const struct metrics_label *labels; /* private: copies, nlabels */
	uint32_t nlabels;              /* private */
	uint32_t doomed;               /* private: remove on last put */
	const char *ltext;             /* private: rendered 'k="v",...' */
	size_t ltext_len;              /* private */
};

/* Options of metrics_family_new. Zeroed fields take their defaults. */
struct metrics_family_opts {
	enum metrics_type type;
	const char *name;              /* MUST match [a-zA-Z_:][a-zA-Z0-9_:]* */
	const char *help;              /* UTF-8; NULL or "" means no HELP line */
	const uint64_t *bounds;        /* histogram: strictly increasing upper
	                                * bounds (inclusive), +Inf implied */
	size_t nbounds;
	const struct metrics_label *const_labels; /* on every series, first */
	size_t nconst_labels;
	uint32_t max_series;           /* 0: METRICS_MAX_SERIES_DEFAULT */
};

/*
 * Creates an empty registry. Returns NULL when memory is short. The hash
 * key protecting lookups from collision floods is drawn from getrandom.
 */
struct metrics_registry *metrics_registry_new(void);

/*
 * Frees <r>, its families and all their series, referenced or not: every
 * handle becomes invalid. Accepts NULL.
 */
void metrics_registry_free(struct metrics_registry *r);

/* Lookups refused because a family was at its max_series cap (0 for
 * NULL). */
uint64_t metrics_registry_overflows(const struct metrics_registry *r);

/*
 * Creates a family in <r> as described by <o> (copied: nothing in <o> needs
 * to outlive the call). Returns the family, owned by <r>, or NULL with a
 * reason in <err> (if not NULL) when a name is invalid, the name is taken
 * (also through a histogram's _bucket/_sum/_count names, or by
 * metrics_render_process), bounds are not strictly increasing, a constant
 * label is invalid or repeated, or memory is short.
 */
struct metrics_family *metrics_family_new(struct metrics_registry *r,
                                          const struct metrics_family_opts *o,
                                          char *err, size_t errlen);

/* Number of series currently exposed by <f> (0 for NULL). */
uint32_t metrics_family_nseries(const struct metrics_family *f);

/*
 * Finds the series of <f> with the label set <labels>[<nlabels>], creating
 * it (value 0) on first use, and takes a reference on it. Returns a stable
 * pointer until the reference is dropped, or NULL when: the family is at
 * its cap (the registry's overflow counter increments), a key is invalid,
 * repeated or clashes with a constant label ("le" is reserved in
 * histograms), a value is not UTF-8 or longer than METRICS_MAX_VALUE_LEN,
 * there are more than METRICS_MAX_LABELS pairs, or memory is short.
 * Costs one keyed hash of the label set; never call it per request when a
 * handle can be kept.
 */
struct metrics_series *metrics_series_get(struct metrics_family *f,
                                          const struct metrics_label *labels,
                                          size_t nlabels);

/* Takes one more reference on <s> (for a second holder). Accepts NULL. */
void metrics_series_ref(struct metrics_series *s);

/*
 * Drops a reference. The series stays in the family, with its value, even
 * unreferenced, unless removal was asked (metrics_series_remove) and this
 * was the last reference. Accepts NULL.
 */
void metrics_series_put(struct metrics_series *s);

/*
 * Drops the caller's reference and asks for the series to go away: it is
 * unlinked and freed when no reference is left (at once if this was the
 * last), and exposed until then. A later metrics_series_get of the same
 * label set while it still lives cancels the request. Accepts NULL.
 */
void metrics_series_remove(struct metrics_series *s);

/*
 * Appends the exposition of every family of <r> (nothing for NULL) to
 * <out>. Returns 0, or -1 when <out> hit its limit or memory was short;
 * <out> then holds a partial exposition that the caller MUST discard
 * (buf_reset).
 */
int metrics_render(const struct metrics_registry *r, struct buf *out);

/*
 * Appends process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, read now from /proc (Linux). A metric whose
 * source cannot be read is left out. Returns 0, or -1 when <out> hit its
 * limit (partial output, as metrics_render).
 */
int metrics_render_process(struct buf *out);

/*
 * Escapes <in>[<inlen>] as a label value of the text format: backslash,
 * double quote and newline become \\, \" and \n; every other byte passes
 * unchanged. Writes to <out> (no NUL) and returns the escaped length, or -1
 * when it does not fit in <outlen>. With <out> NULL, returns the length
 * needed.
 */
ssize_t metrics_escape_label_value(const char *in, size_t inlen,
                                   char *out, size_t outlen);

/*
 * Inverse of metrics_escape_label_value. Returns the unescaped length, or -1
 * when <in> is not a valid escaped value (a backslash not followed by \, "
 * or n; a raw double quote or newline) or does not fit in <outlen>.
 */
ssize_t metrics_unescape_label_value(const char *in, size_t inlen,
                                     char *out, size_t outlen);

/* 1 when <name> is a valid metric name, else 0. */
int metrics_name_valid(const char *name);
/* 1 when <name> is a valid label name not reserved ("__" prefix), else 0. */
int metrics_label_name_valid(const char *name);

/* Hot path accessors. Each MUST be used on a series of the named type. */

static inline void metrics_counter_inc(struct metrics_series *s)
{
	if (s)
		s->v.counter++;
}

static inline void metrics_counter_add(struct metrics_series *s, uint64_t n)
{
	if (s)
		s->v.counter += n;
}

static inline void metrics_gauge_set(struct metrics_series *s, int64_t v)
{
	if (s)
		s->v.gauge = v;
}

/* Adds <d> (may be negative); wraps like unsigned arithmetic, never UB. */
static inline void metrics_gauge_add(struct metrics_series *s, int64_t d)
{
	if (s)
		s->v.gauge = (int64_t)((uint64_t)s->v.gauge + (uint64_t)d);
}

static inline void metrics_gauge_inc(struct metrics_series *s)
{
	metrics_gauge_add(s, 1);
}

static inline void metrics_gauge_dec(struct metrics_series *s)
{
	metrics_gauge_add(s, -1);
}

/* Counts <v> in the first bucket whose bound is >= <v> (le is inclusive),
 * or in +Inf; adds it to the sum. A binary search over the bounds. */
static inline void metrics_histogram_observe(struct metrics_series *s,
                                             uint64_t v)
{
	uint32_t lo = 0, hi, mid;

	if (!s)
		return;
	hi = s->nbounds;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (v <= s->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	s->counts[lo]++;
	s->v.sum += v;
}

/* Readers, mostly for tests and the admin API. <s> MUST NOT be NULL. */
static inline uint64_t metrics_counter_value(const struct metrics_series *s)
{
	return s->v.counter;
}

static inline int64_t metrics_gauge_value(const struct metrics_series *s)
{
	return s->v.gauge;
}

static inline uint64_t metrics_histogram_sum(const struct metrics_series *s)
{
	return s->v.sum;
}

/* Non-cumulative count of bucket <i> (0..nbounds, nbounds being +Inf);
 * 0 out of range or for other types. */
static inline uint64_t metrics_histogram_bucket(const struct metrics_series *s,
                                                uint32_t i)
{
	return s->counts && i <= s->nbounds ? s->counts[i] : 0;
}

/* Number of observations (sum of all buckets); 0 for other types. */
uint64_t metrics_histogram_count(const struct metrics_series *s);

#endif
