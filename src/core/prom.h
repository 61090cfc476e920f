/*
 * prom: a strict, allocation-free reader of the Prometheus text exposition
 * format (0.0.4), and the golden metrics (success rate, requests per
 * second, latency quantiles) computed from what it reads.
 *
 * Parser. prom_init points a parser at a whole scrape held by the caller;
 * each prom_next call returns the next sample, with its name, family, type
 * and labels as slices into that buffer (nothing is copied, nothing is
 * allocated), so the buffer MUST outlive every sample taken from it.
 * Comment lines (# HELP, # TYPE and plain comments) and empty lines are
 * checked and consumed, never returned.
 *
 * Accepted grammar (the subset meshd and most exporters emit):
 *  - Lines end with "\n"; the last line too (a missing final newline means
 *    a truncated scrape and is an error). No "\r", no NUL anywhere.
 *  - "# HELP <name> <text>": <text> is UTF-8 with the escapes \\ and \n
 *    only; at most one HELP per family in a row.
 *  - "# TYPE <name> <type>": counter, gauge, histogram, summary or
 *    untyped; at most one TYPE per family, before its samples.
 *  - Any other line starting with '#' is a comment.
 *  - A sample: <name>[{<label>="<value>",...}] <value>[ <timestamp>], with
 *    blanks (spaces, tabs) between tokens and around label tokens, and an
 *    optional trailing comma in the label set. Label values are UTF-8 with
 *    the escapes \\, \" and \n only; label names are not repeated and do
 *    not start with "__".
 *  - Values: [+-]?digits[.digits][(e|E)[+-]?digits] (or starting with the
 *    dot), NaN, Inf, +Inf, -Inf; at most PROM_NUM_MAX bytes. Timestamps:
 *    an optional '-' and decimal digits (int64 milliseconds).
 *  - Typed families are checked: a histogram's samples are
 *    <name>_bucket (with an "le" label holding a value), <name>_sum and
 *    <name>_count; a summary's are <name> (with "quantile"), <name>_sum and
 *    <name>_count; a counter's or a histogram's counts are never negative
 *    or NaN. Consecutive buckets of one series have increasing "le" and
 *    non-decreasing counts.
 *  A line breaking any rule stops the parse: prom_next returns -1 and
 *  every later call too, with "line N: reason" in the caller's err.
 *
 * Golden metrics. struct prom_golden adds up, per group (the values of
 * chosen labels, e.g. direction and authority), the samples of
 * request_total, response_total (all, and those with
 * classification="success") and the buckets of response_latency_ms, as
 * "sum by (...)" would. Groups live in caller storage (no allocation).
 * prom_group_stats turns one scrape's group (lifetime figures), or the
 * difference between two scrapes' groups (window figures), into success
 * rate, requests per second and p50/p95/p99 with Prometheus'
 * histogram_quantile semantics (prom_histogram_quantile).
 */
#ifndef MESHD_CORE_PROM_H
#define MESHD_CORE_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"

#define PROM_MAX_LABELS 32    /* label pairs of one sample */
#define PROM_NUM_MAX 64       /* bytes of one value or timestamp */
#define PROM_LINE_MAX (1u << 20) /* bytes of one line */

enum prom_type {
	PROM_UNTYPED,
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
	PROM_SUMMARY,
};

/* What a sample is within its family. */
enum prom_kind {
	PROM_K_VALUE,   /* the family's own name (counter, gauge, untyped,
	                 * summary quantile) */
	PROM_K_BUCKET,  /* histogram <name>_bucket; le is set */
	PROM_K_SUM,     /* histogram or summary <name>_sum */
	PROM_K_COUNT,   /* histogram or summary <name>_count */
};

/* One label pair; <value> is as written, escapes included (see
 * prom_unescape and prom_value_eq). */
struct prom_label {
	struct str name;
	struct str value;
};

struct prom_sample {
	struct str name;       /* ro: the sample name as written */
	struct str family;     /* ro: the family (name without _bucket...) */
	enum prom_type type;   /* ro: from the family's TYPE line */
	enum prom_kind kind;   /* ro */
	struct prom_label labels[PROM_MAX_LABELS]; /* ro: in written order */
	unsigned nlabels;      /* ro */
	double value;          /* ro */
	double le;             /* ro: bucket upper bound (PROM_K_BUCKET) */
	int has_ts;            /* ro: a timestamp was given */
	int64_t ts_ms;         /* ro: the timestamp */
	unsigned long line;    /* ro: 1-based line number */
};

struct prom_parser {
	const char *data;      /* private: the whole scrape */
	size_t len;            /* private */
	size_t off;            /* private: start of the next line */
	unsigned long line;    /* ro: lines consumed so far */
	int failed;            /* ro: sticky error */
	struct str type_name;  /* private: family of the last TYPE line */
	enum prom_type type;   /* private */
	struct str help_name;  /* private: family of the last HELP line */
	struct str last_family; /* private: family of the last sample */
	/* private: the last bucket, to check a series' bucket order */
	struct str last_bucket_name;
	struct prom_label last_labels[PROM_MAX_LABELS];
	unsigned nlast;
	double last_le;
	double last_count;
};

/* Starts parsing <data>[<len>] (owned by the caller, not copied). */
void prom_init(struct prom_parser *p, const char *data, size_t len);

/*
 * Reads the next sample into <out>. Returns 1 when a sample was stored, 0
 * at the end of the input, -1 on a malformed line, with "line N: reason"
 * in <err> (when not NULL); the error is sticky. <out>'s slices point into
 * the parser's input.
 */
int prom_next(struct prom_parser *p, struct prom_sample *out,
              char *err, size_t errlen);

/* "counter", "gauge", "histogram", "summary" or "untyped". */
const char *prom_type_str(enum prom_type type);

/*
 * Finds label <name> in <s> and stores its escaped value in <*value>.
 * Returns 1 when found, 0 when not (then <*value> is STR_NULL).
 */
int prom_label_get(const struct prom_sample *s, const char *name,
                   struct str *value);

/* 1 when the escaped label value <raw> unescapes to exactly <want>. */
int prom_value_eq(struct str raw, struct str want);

/*
 * Unescapes the label value <raw> (as returned by the parser, so already
 * valid) into <dst> without a NUL. Returns the length, or -1 when it does
 * not fit in <dstlen> or <raw> holds an invalid escape.
 */
ssize_t prom_unescape(struct str raw, char *dst, size_t dstlen);

/*
 * Parses a sample value or "le" as the parser does. Returns 0, or -1 (then
 * <*out> is untouched).
 */
int prom_parse_value(struct str s, double *out);

/*
 * histogram_quantile(<q>, ...) over <n> buckets given as upper bounds
 * <le> and cumulative counts <cum>, with Prometheus' semantics: buckets are
 * taken in increasing <le> order (the caller MUST pass them sorted), the
 * last MUST be +Inf (else NaN), counts are made monotonic first, fewer than
 * 2 buckets or no observation give NaN, q < 0 gives -Inf and q > 1 +Inf;
 * a rank in the +Inf bucket gives the largest finite bound; otherwise the
 * value is interpolated linearly inside the bucket holding the rank
 * (starting at 0 for the first bucket, unless its bound is <= 0).
 */
double prom_histogram_quantile(double q, const double *le, const double *cum,
                               size_t n);

/*
 * Per-second increase of a counter between two scrapes <elapsed_s>
 * seconds apart; a counter that went down was reset, and its new value is
 * the increase (as Prometheus' rate()). NaN when <elapsed_s> <= 0.
 */
double prom_rate(double prev, double cur, double elapsed_s);

/* ---- golden metrics ------------------------------------------------- */

#define PROM_GOLDEN_REQUESTS "request_total"
#define PROM_GOLDEN_RESPONSES "response_total"
#define PROM_GOLDEN_LATENCY "response_latency_ms"

#define PROM_GROUP_MAX_BY 8          /* group-by labels */
#define PROM_GROUP_KEY_MAX 256       /* bytes of a group's label values */
#define PROM_GROUP_MAX_BUCKETS 64    /* distinct "le" bounds of a group */

/* A label constraint: samples count only when label <name> (absent =
 * empty) equals <value>. */
struct prom_match {
	const char *name;
	const char *value;
};

/* One group: the sums over every sample whose by-labels hold its values. */
struct prom_group {
	char key[PROM_GROUP_KEY_MAX]; /* ro: the by-label values, unescaped,
	                               * each followed by a NUL */
	size_t key_len;               /* ro: bytes of key, NULs included */
	double requests;              /* ro: sum of request_total */
	double responses;             /* ro: sum of response_total */
	double successes;             /* ro: ... classification="success" */
	double le[PROM_GROUP_MAX_BUCKETS];  /* ro: sorted bounds, +Inf last */
	double cum[PROM_GROUP_MAX_BUCKETS]; /* ro: cumulative counts */
	unsigned nbuckets;            /* ro */
};

struct prom_golden {
	const char *const *by;        /* ro: group-by label names */
	size_t nby;                   /* ro */
	const struct prom_match *match; /* ro: constraints, may be NULL */
	size_t nmatch;                /* ro */
	struct prom_group *groups;    /* ro: caller storage */
	size_t cap;                   /* ro: groups available */
	size_t n;                     /* ro: groups in use */
	size_t dropped;               /* ro: samples lost: no room for their
	                               * group, key or bucket */
};

/*
 * Prepares <g> to group by the <nby> (<= PROM_GROUP_MAX_BY) label names
 * <by> (the array and strings are borrowed and MUST outlive <g>), counting
 * only samples that satisfy every constraint of <match>[<nmatch>], into
 * <groups>[<cap>] (caller storage). Returns 0, or -1 when nby is too large.
 */
int prom_golden_init(struct prom_golden *g, const char *const *by, size_t nby,
                     const struct prom_match *match, size_t nmatch,
                     struct prom_group *groups, size_t cap);

/* Adds one parsed sample to its group (ignored unless it is one of the
 * golden families). */
void prom_golden_sample(struct prom_golden *g, const struct prom_sample *s);

/*
 * Parses the whole scrape <text>[<len>] and adds every sample. Returns 0,
 * or -1 with "line N: reason" in <err> when the scrape is malformed (the
 * groups then hold what came before the bad line).
 */
int prom_golden_scrape(struct prom_golden *g, const char *text, size_t len,
                       char *err, size_t errlen);

/* The value of by-label <i> of <grp> (STR_NULL when out of range). */
struct str prom_group_label(const struct prom_group *grp, size_t i);

/* The group of <g> whose by-label values are <values>[<n>] (C strings;
 * n == g->nby), or NULL. */
const struct prom_group *prom_golden_find(const struct prom_golden *g,
                                          const char *const *values,
                                          size_t n);

/* The group of <g> with the same key as <like> (from another scrape), or
 * NULL. */
const struct prom_group *prom_golden_match(const struct prom_golden *g,
                                           const struct prom_group *like);

struct prom_stats {
	double requests;      /* requests in the window (or lifetime) */
	double responses;     /* responses in the window */
	double success_rate;  /* successes / responses; NaN without any */
	double rps;           /* requests per second; NaN without <prev> */
	double p50, p95, p99; /* latency quantiles (ms); NaN without any */
};

/*
 * The golden metrics of <cur>. With <prev> (the same group in an earlier
 * scrape, <elapsed_s> seconds before) they cover the window between the
 * scrapes: counter and bucket increases, a reset counted as a restart from
 * zero; without it, the lifetime totals, and rps is NaN.
 */
void prom_group_stats(const struct prom_group *cur,
                      const struct prom_group *prev, double elapsed_s,
                      struct prom_stats *out);

#endif
