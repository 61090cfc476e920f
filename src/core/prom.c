/*
 * prom: Prometheus text format reader and golden metrics. See prom.h for
 * the contract and the accepted grammar.
 *
 * IMPLEMENTATION NOTES
 *  - The parser works line by line on the caller's buffer. A line is first
 *    checked as a whole (length, no CR, no NUL), then taken apart by a
 *    cursor that never reads past the line's end; every slice it returns
 *    points into the caller's buffer.
 *  - Numbers: the grammar is checked here, byte by byte, so that strtod
 *    (which would also take hex floats, "infinity", leading spaces and
 *    locale-dependent forms) only ever sees plain decimal text, copied into
 *    a bounded stack buffer to NUL-terminate it. An overflow to infinity is
 *    an error, as in Go's ParseFloat, which Prometheus uses.
 *  - The bucket order check keeps a copy of the previous bucket's label
 *    slices (they point into the input, which outlives the parser).
 *  - Nothing here depends on the locale (no <ctype.h>).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prom.h"

/* ---- small helpers -------------------------------------------------- */

static int prom_isblank(char c)
{
	return c == ' ' || c == '\t';
}

static int prom_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

static int prom_isalpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Length of the UTF-8 sequence starting at <s>[0] (of <n> bytes), or 0
 * when it is not valid UTF-8: overlong forms, surrogates and code points
 * above U+10FFFF are refused. */
static size_t prom_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	uint32_t cp;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* ---- errors --------------------------------------------------------- */

/* Marks <p> failed and writes "line N: <fmt...>" to <err>. Returns -1. */
__attribute__((format(printf, 4, 5)))
static int prom_fail(struct prom_parser *p, char *err, size_t errlen,
                     const char *fmt, ...)
{
	va_list ap;
	int n;

	p->failed = 1;
	if (!err || !errlen)
		return -1;
	n = snprintf(err, errlen, "line %lu: ", p->line);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- numbers -------------------------------------------------------- */

int prom_parse_value(struct str s, double *out)
{
	char tmp[PROM_NUM_MAX + 1];
	size_t i = 0, digits = 0;
	char *end;
	double v;

	if (s.len == 0 || s.len > PROM_NUM_MAX)
		return -1;
	if (str_eq_cstr(s, "NaN")) {
		*out = NAN;
		return 0;
	}
	if (str_eq_cstr(s, "Inf") || str_eq_cstr(s, "+Inf")) {
		*out = INFINITY;
		return 0;
	}
	if (str_eq_cstr(s, "-Inf")) {
		*out = -INFINITY;
		return 0;
	}
	if (s.p[i] == '+' || s.p[i] == '-')
		i++;
	while (i < s.len && prom_isdigit(s.p[i])) {
		i++;
		digits++;
	}
	if (i < s.len && s.p[i] == '.') {
		i++;
		while (i < s.len && prom_isdigit(s.p[i])) {
			i++;
			digits++;
		}
	}
	if (!digits)
		return -1;
	if (i < s.len && (s.p[i] == 'e' || s.p[i] == 'E')) {
		i++;
		if (i < s.len && (s.p[i] == '+' || s.p[i] == '-'))
			i++;
		if (i >= s.len || !prom_isdigit(s.p[i]))
			return -1;
		while (i < s.len && prom_isdigit(s.p[i]))
			i++;
	}
	if (i != s.len)
		return -1;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (end != tmp + s.len || isinf(v))
		return -1;
	*out = v;
	return 0;
}

/* An int64 timestamp: an optional '-' and decimal digits. */
static int prom_parse_ts(struct str s, int64_t *out)
{
	if (s.len > PROM_NUM_MAX)
		return -1;
	return str_to_i64(s, out);
}

/* ---- escapes -------------------------------------------------------- */

/* Checks an escaped text of HELP (<quote> 0: \\ and \n) or of a label
 * value (<quote> 1: also \"; a raw '"' is not allowed) and that it is
 * UTF-8. Returns NULL, or the reason it is not valid. */
static const char *prom_check_text(struct str s, int quote)
{
	size_t i = 0, n;

	while (i < s.len) {
		char c = s.p[i];

		if (c == '\\') {
			if (i + 1 >= s.len)
				return "backslash at the end of an escaped text";
			c = s.p[i + 1];
			if (c != '\\' && c != 'n' && !(quote && c == '"'))
				return "invalid escape sequence";
			i += 2;
			continue;
		}
		if (quote && c == '"')
			return "unescaped double quote";
		n = prom_utf8_len((const unsigned char *)s.p + i, s.len - i);
		if (!n)
			return "invalid UTF-8";
		i += n;
	}
	return NULL;
}

ssize_t prom_unescape(struct str raw, char *dst, size_t dstlen)
{
	size_t i, o = 0;

	for (i = 0; i < raw.len; i++) {
		char c = raw.p[i];

		if (c == '\\') {
			if (++i >= raw.len)
				return -1;
			c = raw.p[i];
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return -1;
		}
		if (o >= dstlen)
			return -1;
		dst[o++] = c;
	}
	return (ssize_t)o;
}

int prom_value_eq(struct str raw, struct str want)
{
	size_t i, o = 0;

	for (i = 0; i < raw.len; i++) {
		char c = raw.p[i];

		if (c == '\\') {
			if (++i >= raw.len)
				return 0;
			c = raw.p[i] == 'n' ? '\n' : raw.p[i];
		}
		if (o >= want.len || want.p[o] != c)
			return 0;
		o++;
	}
	return o == want.len;
}

/* ---- the line cursor ------------------------------------------------ */

struct prom_cur {
	const char *p;   /* next byte */
	const char *end; /* one past the line (its '\n' excluded) */
};

static void prom_skip_blanks(struct prom_cur *c)
{
	while (c->p < c->end && prom_isblank(*c->p))
		c->p++;
}

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); empty slice when none. */
static struct str prom_take_name(struct prom_cur *c, int colon)
{
	const char *s = c->p;

	if (c->p < c->end && (prom_isalpha_(*c->p) || (colon && *c->p == ':'))) {
		c->p++;
		while (c->p < c->end && (prom_isalpha_(*c->p) ||
		       prom_isdigit(*c->p) || (colon && *c->p == ':')))
			c->p++;
	}
	return str_make(s, (size_t)(c->p - s));
}

/* A run of non-blank bytes. */
static struct str prom_take_token(struct prom_cur *c)
{
	const char *s = c->p;

	while (c->p < c->end && !prom_isblank(*c->p))
		c->p++;
	return str_make(s, (size_t)(c->p - s));
}

/* ---- comments ------------------------------------------------------- */

static int prom_type_parse(struct str s, enum prom_type *out)
{
	static const char *const names[] = {
		[PROM_UNTYPED] = "untyped", [PROM_COUNTER] = "counter",
		[PROM_GAUGE] = "gauge", [PROM_HISTOGRAM] = "histogram",
		[PROM_SUMMARY] = "summary",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (str_eq_cstr(s, names[i])) {
			*out = (enum prom_type)i;
			return 0;
		}
	}
	return -1;
}

const char *prom_type_str(enum prom_type type)
{
	switch (type) {
	case PROM_COUNTER:
		return "counter";
	case PROM_GAUGE:
		return "gauge";
	case PROM_HISTOGRAM:
		return "histogram";
	case PROM_SUMMARY:
		return "summary";
	default:
		return "untyped";
	}
}

/* A line starting with '#'. */
static int prom_comment(struct prom_parser *p, struct prom_cur *c,
                        char *err, size_t errlen)
{
	struct str word, name, rest;
	const char *why;
	enum prom_type type;

	c->p++; /* '#' */
	if (c->p >= c->end || !prom_isblank(*c->p))
		return 0; /* "#foo": a plain comment */
	prom_skip_blanks(c);
	word = prom_take_token(c);
	if (!str_eq_cstr(word, "HELP") && !str_eq_cstr(word, "TYPE"))
		return 0;
	if (c->p >= c->end)
		return prom_fail(p, err, errlen, "%.4s without a metric name",
		                 word.p);
	prom_skip_blanks(c);
	name = prom_take_name(c, 1);
	if (!name.len || (c->p < c->end && !prom_isblank(*c->p)))
		return prom_fail(p, err, errlen, "%.4s: invalid metric name",
		                 word.p);
	if (word.p[0] == 'H') {
		if (c->p < c->end)
			c->p++; /* the one blank before the text */
		rest = str_make(c->p, (size_t)(c->end - c->p));
		why = prom_check_text(rest, 0);
		if (why)
			return prom_fail(p, err, errlen, "HELP text: %s", why);
		if (str_eq(name, p->help_name))
			return prom_fail(p, err, errlen, "second HELP for %.*s",
			                 (int)name.len, name.p);
		p->help_name = name;
		return 0;
	}
	prom_skip_blanks(c);
	word = prom_take_token(c);
	prom_skip_blanks(c);
	if (c->p != c->end || prom_type_parse(word, &type) < 0)
		return prom_fail(p, err, errlen, "TYPE: unknown metric type");
	if (str_eq(name, p->type_name))
		return prom_fail(p, err, errlen, "second TYPE for %.*s",
		                 (int)name.len, name.p);
	if (str_eq(name, p->last_family))
		return prom_fail(p, err, errlen, "TYPE for %.*s after its samples",
		                 (int)name.len, name.p);
	p->type_name = name;
	p->type = type;
	return 0;
}

/* ---- samples -------------------------------------------------------- */

/* Parses "{...}" at the cursor into <s>'s labels. */
static int prom_labels(struct prom_parser *p, struct prom_cur *c,
                       struct prom_sample *s, char *err, size_t errlen)
{
	struct prom_label *l;
	const char *why, *v;
	struct str name;
	unsigned i;

	c->p++; /* '{' */
	for (;;) {
		prom_skip_blanks(c);
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		name = prom_take_name(c, 0);
		if (!name.len)
			return prom_fail(p, err, errlen, "invalid label name");
		if (name.len >= 2 && name.p[0] == '_' && name.p[1] == '_')
			return prom_fail(p, err, errlen,
			                 "reserved label name %.*s",
			                 (int)name.len, name.p);
		for (i = 0; i < s->nlabels; i++)
			if (str_eq(s->labels[i].name, name))
				return prom_fail(p, err, errlen,
				                 "label %.*s repeated",
				                 (int)name.len, name.p);
		if (s->nlabels >= PROM_MAX_LABELS)
			return prom_fail(p, err, errlen, "more than %d labels",
			                 PROM_MAX_LABELS);
		prom_skip_blanks(c);
		if (c->p >= c->end || *c->p != '=')
			return prom_fail(p, err, errlen,
			                 "expected '=' after label %.*s",
			                 (int)name.len, name.p);
		c->p++;
		prom_skip_blanks(c);
		if (c->p >= c->end || *c->p != '"')
			return prom_fail(p, err, errlen,
			                 "label %.*s: value not quoted",
			                 (int)name.len, name.p);
		v = ++c->p;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			c->p++;
		}
		if (c->p >= c->end)
			return prom_fail(p, err, errlen,
			                 "label %.*s: unterminated value",
			                 (int)name.len, name.p);
		l = &s->labels[s->nlabels++];
		l->name = name;
		l->value = str_make(v, (size_t)(c->p - v));
		c->p++; /* closing '"' */
		why = prom_check_text(l->value, 1);
		if (why)
			return prom_fail(p, err, errlen, "label %.*s: %s",
			                 (int)name.len, name.p, why);
		prom_skip_blanks(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		return prom_fail(p, err, errlen, "expected ',' or '}' in labels");
	}
}

/* 1 when <name> is <fam> followed by <sfx>. */
static int prom_is_suffixed(struct str name, struct str fam, const char *sfx)
{
	size_t n = strlen(sfx);

	return name.len == fam.len + n && str_has_prefix(name, fam) &&
	       memcmp(name.p + fam.len, sfx, n) == 0;
}

/* Sets <s>'s family, type and kind from the last TYPE line. */
static int prom_classify(struct prom_parser *p, struct prom_sample *s,
                         char *err, size_t errlen)
{
	struct str t = p->type_name;

	s->family = s->name;
	s->type = PROM_UNTYPED;
	s->kind = PROM_K_VALUE;
	if (!t.len)
		return 0;
	if (p->type == PROM_HISTOGRAM || p->type == PROM_SUMMARY) {
		if (prom_is_suffixed(s->name, t, "_sum"))
			s->kind = PROM_K_SUM;
		else if (prom_is_suffixed(s->name, t, "_count"))
			s->kind = PROM_K_COUNT;
		else if (p->type == PROM_HISTOGRAM &&
		         prom_is_suffixed(s->name, t, "_bucket"))
			s->kind = PROM_K_BUCKET;
		else if (str_eq(s->name, t) && p->type == PROM_HISTOGRAM)
			return prom_fail(p, err, errlen,
			                 "histogram sample %.*s without "
			                 "_bucket, _sum or _count",
			                 (int)t.len, t.p);
		else if (!str_eq(s->name, t))
			return 0;
	} else if (!str_eq(s->name, t)) {
		return 0;
	}
	s->family = t;
	s->type = p->type;
	return 0;
}

/* 1 when <a> and <b> hold the same labels in the same order, "le" left
 * out of both. */
static int prom_same_series(const struct prom_label *a, unsigned na,
                            const struct prom_label *b, unsigned nb)
{
	unsigned i = 0, j = 0;

	for (;;) {
		while (i < na && str_eq_cstr(a[i].name, "le"))
			i++;
		while (j < nb && str_eq_cstr(b[j].name, "le"))
			j++;
		if (i == na || j == nb)
			return i == na && j == nb;
		if (!str_eq(a[i].name, b[j].name) ||
		    !str_eq(a[i].value, b[j].value))
			return 0;
		i++;
		j++;
	}
}

/* Type-specific checks of a complete sample. */
static int prom_check_sample(struct prom_parser *p, struct prom_sample *s,
                             char *err, size_t errlen)
{
	struct str v;
	double q;
	int counts = s->type == PROM_COUNTER || s->kind == PROM_K_BUCKET ||
	             s->kind == PROM_K_COUNT;

	if (counts && (isnan(s->value) || s->value < 0))
		return prom_fail(p, err, errlen, "%s %.*s: negative or NaN",
		                 s->type == PROM_COUNTER ? "counter" : "count",
		                 (int)s->name.len, s->name.p);
	if (s->type == PROM_SUMMARY && s->kind == PROM_K_VALUE) {
		if (!prom_label_get(s, "quantile", &v) ||
		    prom_parse_value(v, &q) < 0 || !(q >= 0 && q <= 1))
			return prom_fail(p, err, errlen,
			                 "summary sample without a valid quantile");
	}
	if (s->kind != PROM_K_BUCKET)
		return 0;
	if (!prom_label_get(s, "le", &v) || prom_parse_value(v, &s->le) < 0 ||
	    isnan(s->le))
		return prom_fail(p, err, errlen, "bucket without a valid le");
	return 0;
}

/* Checks a bucket against the previous one of the same series and
 * remembers it. */
static int prom_check_order(struct prom_parser *p, struct prom_sample *s,
                            char *err, size_t errlen)
{
	if (str_eq(s->name, p->last_bucket_name) &&
	    prom_same_series(s->labels, s->nlabels, p->last_labels,
	                     p->nlast)) {
		if (!(s->le > p->last_le))
			return prom_fail(p, err, errlen,
			                 "bucket le not increasing");
		if (s->value < p->last_count)
			return prom_fail(p, err, errlen,
			                 "bucket count decreasing");
	}
	p->last_bucket_name = s->name;
	memcpy(p->last_labels, s->labels, s->nlabels * sizeof(s->labels[0]));
	p->nlast = s->nlabels;
	p->last_le = s->le;
	p->last_count = s->value;
	return 0;
}

/* A sample line. */
static int prom_sample_line(struct prom_parser *p, struct prom_cur *c,
                            struct prom_sample *s, char *err, size_t errlen)
{
	const char *mark;
	struct str tok;

	memset(s, 0, sizeof(*s));
	s->line = p->line;
	s->le = NAN;
	s->name = prom_take_name(c, 1);
	if (!s->name.len)
		return prom_fail(p, err, errlen, "invalid metric name");
	mark = c->p;
	prom_skip_blanks(c);
	if (c->p < c->end && *c->p == '{') {
		if (prom_labels(p, c, s, err, errlen) < 0)
			return -1;
		mark = c->p;
		prom_skip_blanks(c);
	}
	if (c->p == mark)
		return prom_fail(p, err, errlen, "expected a blank before the value");
	if (c->p >= c->end)
		return prom_fail(p, err, errlen, "missing value");
	tok = prom_take_token(c);
	if (prom_parse_value(tok, &s->value) < 0)
		return prom_fail(p, err, errlen, "invalid value \"%.*s\"",
		                 (int)(tok.len > 32 ? 32 : tok.len), tok.p);
	prom_skip_blanks(c);
	if (c->p < c->end) {
		tok = prom_take_token(c);
		if (prom_parse_ts(tok, &s->ts_ms) < 0)
			return prom_fail(p, err, errlen, "invalid timestamp");
		s->has_ts = 1;
		prom_skip_blanks(c);
		if (c->p < c->end)
			return prom_fail(p, err, errlen,
			                 "unexpected text after the timestamp");
	}
	if (prom_classify(p, s, err, errlen) < 0)
		return -1;
	return prom_check_sample(p, s, err, errlen);
}

void prom_init(struct prom_parser *p, const char *data, size_t len)
{
	memset(p, 0, sizeof(*p));
	p->data = data;
	p->len = data ? len : 0;
	p->type = PROM_UNTYPED;
}

int prom_next(struct prom_parser *p, struct prom_sample *out,
              char *err, size_t errlen)
{
	struct prom_cur c;
	const char *nl;
	size_t len;

	if (p->failed)
		return prom_fail(p, err, errlen, "parse already failed");
	while (p->off < p->len) {
		p->line++;
		len = p->len - p->off;
		nl = memchr(p->data + p->off, '\n', len);
		if (!nl)
			return prom_fail(p, err, errlen,
			                 "no newline at the end of the input");
		c.p = p->data + p->off;
		c.end = nl;
		p->off = (size_t)(nl - p->data) + 1;
		if ((size_t)(c.end - c.p) > PROM_LINE_MAX)
			return prom_fail(p, err, errlen, "line too long");
		if (memchr(c.p, '\0', (size_t)(c.end - c.p)))
			return prom_fail(p, err, errlen, "NUL byte");
		if (memchr(c.p, '\r', (size_t)(c.end - c.p)))
			return prom_fail(p, err, errlen, "carriage return");
		if (c.p == c.end)
			continue;
		if (*c.p == '#') {
			if (prom_comment(p, &c, err, errlen) < 0)
				return -1;
			continue;
		}
		if (prom_sample_line(p, &c, out, err, errlen) < 0)
			return -1;
		p->last_family = out->family;
		if (out->kind != PROM_K_BUCKET)
			p->last_bucket_name = STR_NULL;
		else if (prom_check_order(p, out, err, errlen) < 0)
			return -1;
		return 1;
	}
	return 0;
}

int prom_label_get(const struct prom_sample *s, const char *name,
                   struct str *value)
{
	unsigned i;

	for (i = 0; i < s->nlabels; i++) {
		if (str_eq_cstr(s->labels[i].name, name)) {
			*value = s->labels[i].value;
			return 1;
		}
	}
	*value = STR_NULL;
	return 0;
}

/* ---- quantiles and rates -------------------------------------------- */

double prom_histogram_quantile(double q, const double *le, const double *cum,
                               size_t n)
{
	double obs = 0, rank, run = 0, before = 0, start = 0, count;
	size_t b, i;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	if (n < 2 || !(isinf(le[n - 1]) && le[n - 1] > 0))
		return NAN;
	/* counts made monotonic: each is the maximum so far */
	for (i = 0; i < n; i++)
		if (cum[i] > obs)
			obs = cum[i];
	if (!(obs > 0))
		return NAN;
	rank = q * obs;
	for (b = 0; b < n - 1; b++) {
		before = run;
		if (cum[b] > run)
			run = cum[b];
		if (run >= rank)
			break;
	}
	if (b == n - 1)
		return le[n - 2];
	if (b == 0 && le[0] <= 0)
		return le[0];
	count = run;
	if (b > 0) {
		start = le[b - 1];
		count -= before;
		rank -= before;
	}
	if (count <= 0)
		return NAN; /* q == 0 on an empty first bucket: 0/0 */
	return start + (le[b] - start) * (rank / count);
}

double prom_rate(double prev, double cur, double elapsed_s)
{
	if (!(elapsed_s > 0))
		return NAN;
	return (cur >= prev ? cur - prev : cur) / elapsed_s;
}

/* ---- golden metrics ------------------------------------------------- */

int prom_golden_init(struct prom_golden *g, const char *const *by, size_t nby,
                     const struct prom_match *match, size_t nmatch,
                     struct prom_group *groups, size_t cap)
{
	memset(g, 0, sizeof(*g));
	if (nby > PROM_GROUP_MAX_BY)
		return -1;
	g->by = by;
	g->nby = nby;
	g->match = match;
	g->nmatch = match ? nmatch : 0;
	g->groups = groups;
	g->cap = groups ? cap : 0;
	return 0;
}

/* Builds <s>'s group key into <key>; returns its length or -1. */
static ssize_t prom_golden_key(const struct prom_golden *g,
                               const struct prom_sample *s, char *key)
{
	size_t i, off = 0;
	struct str v;
	ssize_t n;

	for (i = 0; i < g->nby; i++) {
		prom_label_get(s, g->by[i], &v);
		n = prom_unescape(v, key + off, PROM_GROUP_KEY_MAX - off);
		if (n < 0 || off + (size_t)n >= PROM_GROUP_KEY_MAX)
			return -1;
		off += (size_t)n;
		key[off++] = '\0';
	}
	return (ssize_t)off;
}

static struct prom_group *prom_golden_get(struct prom_golden *g,
                                          const char *key, size_t len)
{
	struct prom_group *grp;
	size_t i;

	for (i = 0; i < g->n; i++) {
		grp = &g->groups[i];
		if (grp->key_len == len && memcmp(grp->key, key, len) == 0)
			return grp;
	}
	if (g->n >= g->cap)
		return NULL;
	grp = &g->groups[g->n++];
	memset(grp, 0, sizeof(*grp));
	memcpy(grp->key, key, len);
	grp->key_len = len;
	return grp;
}

/* Adds <count> to the bucket <le> of <grp>, inserting it in order. */
static int prom_group_bucket(struct prom_group *grp, double le, double count)
{
	unsigned i;

	for (i = 0; i < grp->nbuckets && grp->le[i] < le; i++)
		;
	if (i < grp->nbuckets && grp->le[i] == le) {
		grp->cum[i] += count;
		return 0;
	}
	if (grp->nbuckets >= PROM_GROUP_MAX_BUCKETS)
		return -1;
	memmove(&grp->le[i + 1], &grp->le[i],
	        (grp->nbuckets - i) * sizeof(grp->le[0]));
	memmove(&grp->cum[i + 1], &grp->cum[i],
	        (grp->nbuckets - i) * sizeof(grp->cum[0]));
	grp->le[i] = le;
	grp->cum[i] = count;
	grp->nbuckets++;
	return 0;
}

void prom_golden_sample(struct prom_golden *g, const struct prom_sample *s)
{
	char key[PROM_GROUP_KEY_MAX];
	struct prom_group *grp;
	enum { REQ, RSP, LAT } what;
	struct str v;
	ssize_t klen;
	size_t i;

	if (s->kind == PROM_K_VALUE &&
	    str_eq_cstr(s->family, PROM_GOLDEN_REQUESTS))
		what = REQ;
	else if (s->kind == PROM_K_VALUE &&
	         str_eq_cstr(s->family, PROM_GOLDEN_RESPONSES))
		what = RSP;
	else if (s->kind == PROM_K_BUCKET &&
	         str_eq_cstr(s->family, PROM_GOLDEN_LATENCY))
		what = LAT;
	else
		return;
	for (i = 0; i < g->nmatch; i++) {
		prom_label_get(s, g->match[i].name, &v);
		if (!prom_value_eq(v, str_from_cstr(g->match[i].value)))
			return;
	}
	klen = prom_golden_key(g, s, key);
	grp = klen < 0 ? NULL : prom_golden_get(g, key, (size_t)klen);
	if (!grp) {
		g->dropped++;
		return;
	}
	switch (what) {
	case REQ:
		grp->requests += s->value;
		break;
	case RSP:
		grp->responses += s->value;
		if (prom_label_get(s, "classification", &v) &&
		    prom_value_eq(v, STR_LIT("success")))
			grp->successes += s->value;
		break;
	case LAT:
		if (prom_group_bucket(grp, s->le, s->value) < 0)
			g->dropped++;
		break;
	}
}

int prom_golden_scrape(struct prom_golden *g, const char *text, size_t len,
                       char *err, size_t errlen)
{
	struct prom_parser p;
	struct prom_sample s;
	int rc;

	prom_init(&p, text, len);
	while ((rc = prom_next(&p, &s, err, errlen)) > 0)
		prom_golden_sample(g, &s);
	return rc < 0 ? -1 : 0;
}

struct str prom_group_label(const struct prom_group *grp, size_t i)
{
	size_t off = 0, n;

	while (off < grp->key_len) {
		n = strlen(grp->key + off);
		if (i-- == 0)
			return str_make(grp->key + off, n);
		off += n + 1;
	}
	return STR_NULL;
}

const struct prom_group *prom_golden_find(const struct prom_golden *g,
                                          const char *const *values,
                                          size_t n)
{
	char key[PROM_GROUP_KEY_MAX];
	size_t i, off = 0, l;

	if (n != g->nby)
		return NULL;
	for (i = 0; i < n; i++) {
		l = strlen(values[i]);
		if (off + l >= sizeof(key))
			return NULL;
		memcpy(key + off, values[i], l + 1);
		off += l + 1;
	}
	for (i = 0; i < g->n; i++)
		if (g->groups[i].key_len == off &&
		    memcmp(g->groups[i].key, key, off) == 0)
			return &g->groups[i];
	return NULL;
}

const struct prom_group *prom_golden_match(const struct prom_golden *g,
                                           const struct prom_group *like)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->groups[i].key_len == like->key_len &&
		    memcmp(g->groups[i].key, like->key, like->key_len) == 0)
			return &g->groups[i];
	return NULL;
}

/* Increase of a counter since <prev>; a decrease is a reset. */
static double prom_delta(double prev, double cur)
{
	return cur >= prev ? cur - prev : cur;
}

void prom_group_stats(const struct prom_group *cur,
                      const struct prom_group *prev, double elapsed_s,
                      struct prom_stats *out)
{
	double cum[PROM_GROUP_MAX_BUCKETS], before, below = 0, pv;
	unsigned i, j;
	int reset = 0;

	out->requests = cur->requests;
	out->responses = cur->responses;
	before = 0;
	for (i = 0; i < cur->nbuckets; i++)
		cum[i] = cur->cum[i];
	out->rps = NAN;
	if (prev) {
		out->requests = prom_delta(prev->requests, cur->requests);
		out->rps = prom_rate(prev->requests, cur->requests, elapsed_s);
		if (cur->responses >= prev->responses) {
			out->responses = cur->responses - prev->responses;
			before = prev->successes;
		}
		/* a bound the earlier scrape lacked takes the cumulative
		 * count of the earlier bound below it */
		for (i = 0, j = 0; i < cur->nbuckets && !reset; i++) {
			while (j < prev->nbuckets && prev->le[j] < cur->le[i])
				below = prev->cum[j++];
			pv = j < prev->nbuckets && prev->le[j] == cur->le[i] ?
			     prev->cum[j] : below;
			if (cur->cum[i] < pv)
				reset = 1;
			else
				cum[i] = cur->cum[i] - pv;
		}
		if (reset)
			for (i = 0; i < cur->nbuckets; i++)
				cum[i] = cur->cum[i];
	}
	out->success_rate = out->responses > 0 ?
		prom_delta(before, cur->successes) / out->responses : NAN;
	out->p50 = prom_histogram_quantile(0.50, cur->le, cum, cur->nbuckets);
	out->p95 = prom_histogram_quantile(0.95, cur->le, cum, cur->nbuckets);
	out->p99 = prom_histogram_quantile(0.99, cur->le, cum, cur->nbuckets);
}
