/*
 * json: strict RFC 8259 parser into caller tokens, walking helpers and a
 * bounded writer. See json.h for the contracts.
 *
 * IMPLEMENTATION NOTES
 *  - The parser is one loop over a small state machine with an explicit
 *    stack of open containers (on the C stack, JSON_MAX_DEPTH frames), so
 *    hostile nesting cannot overflow the C stack. Each frame remembers the
 *    container's token and its last child, which is how next-sibling links
 *    are set in O(1) as children appear.
 *  - Strings are validated once at parse time (escapes, surrogate pairs,
 *    UTF-8, control characters); later decoding trusts that but still never
 *    reads past the token's range.
 *  - Nothing here touches the locale except strtod/snprintf for doubles,
 *    which assume the C locale that meshd never changes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/str.h"

/* ---- UTF-8 ---- */

static inline int json_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Length (1..4) of the valid UTF-8 sequence at <s> (<n> bytes available),
 * or 0 when it is invalid: stray continuation bytes, overlong forms,
 * encoded surrogates, code points past U+10FFFF, truncation. */
static size_t json_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0)
		return n >= 2 && json_cont(s[1]) ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || !json_cont(s[1]) || !json_cont(s[2]))
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0;
		if (c == 0xED && s[1] >= 0xA0)
			return 0;
		return 3;
	}
	if (c < 0xF5) {
		if (n < 4 || !json_cont(s[1]) || !json_cont(s[2]) ||
		    !json_cont(s[3]))
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;
		if (c == 0xF4 && s[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

static size_t json_utf8_put(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

static int json_hex4(const unsigned char *s, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* -1 when one of the first (up to 4) of the <n> bytes at <s> is not a hex
 * digit, so a bad escape is told apart from a truncated one. */
static int json_hex_avail(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 4; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
			return -1;
	return 0;
}

/* ---- parser ---- */

struct json_frame {
	int32_t tok;    /* the open container */
	int32_t last;   /* its last child (key or element), -1 for none */
};

struct json_p {
	struct json_doc *doc;
	const unsigned char *s;
	size_t len;
	size_t pos;
	unsigned depth;
	int code;
	const char *reason;
	struct json_frame stack[JSON_MAX_DEPTH];
};

static int json_fail(struct json_p *p, int code, const char *reason)
{
	p->code = code;
	p->reason = reason;
	return -1;
}

static void json_skip_ws(struct json_p *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Appends a token starting at p->pos and links it into the open container.
 * <key>: the token is an object key. Returns its index or -1. */
static int32_t json_new(struct json_p *p, int type, int key)
{
	struct json_doc *doc = p->doc;
	struct json_tok *t;
	int32_t i;

	if (doc->ntoks >= doc->cap)
		return json_fail(p, JSON_E_NOTOKENS, "too many tokens");
	i = (int32_t)doc->ntoks++;
	t = &doc->toks[i];
	t->start = (uint32_t)p->pos;
	t->end = (uint32_t)p->pos;
	t->parent = -1;
	t->next = -1;
	t->size = 0;
	t->type = (uint8_t)type;
	t->flags = key ? JSON_TF_KEY : 0;
	if (p->depth > 0) {
		struct json_frame *f = &p->stack[p->depth - 1];
		struct json_tok *c = &doc->toks[f->tok];

		if (c->type == JSON_OBJECT && !key) {
			t->parent = f->last;   /* a member's value */
		} else {
			t->parent = f->tok;
			if (f->last >= 0)
				doc->toks[f->last].next = i;
			f->last = i;
			c->size++;
		}
	}
	return i;
}

/* String at p->pos (the opening quote). */
static int json_string(struct json_p *p, int key)
{
	const unsigned char *s = p->s;
	int32_t i = json_new(p, JSON_STRING, key);
	uint8_t flags = 0;

	if (i < 0)
		return -1;
	p->pos++;
	p->doc->toks[i].start = (uint32_t)p->pos;
	for (;;) {
		unsigned char c;
		uint32_t cp, lo;
		size_t n;

		if (p->pos >= p->len)
			return json_fail(p, JSON_E_EOF, "unterminated string");
		c = s[p->pos];
		if (c == '"')
			break;
		if (c < 0x20)
			return json_fail(p, JSON_E_STRING,
			                 "control character in string");
		if (c >= 0x80) {
			n = json_utf8_seq(s + p->pos, p->len - p->pos);
			if (n == 0)
				return json_fail(p, JSON_E_UTF8, "invalid UTF-8");
			p->pos += n;
			continue;
		}
		if (c != '\\') {
			p->pos++;
			continue;
		}
		flags |= JSON_TF_ESC;
		if (p->pos + 1 >= p->len)
			return json_fail(p, JSON_E_EOF, "unterminated string");
		c = s[p->pos + 1];
		if (c != 'u') {
			if (!strchr("\"\\/bfnrt", c) || c == '\0')
				return json_fail(p, JSON_E_STRING,
				                 "invalid escape");
			p->pos += 2;
			continue;
		}
		if (json_hex_avail(s + p->pos + 2, p->len - p->pos - 2) < 0)
			return json_fail(p, JSON_E_STRING, "invalid \\u escape");
		if (p->len - p->pos < 6)
			return json_fail(p, JSON_E_EOF, "truncated \\u escape");
		json_hex4(s + p->pos + 2, &cp);
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return json_fail(p, JSON_E_STRING, "lone low surrogate");
		if (cp < 0xD800 || cp > 0xDBFF) {
			p->pos += 6;
			continue;
		}
		if (p->len - p->pos < 12 || s[p->pos + 6] != '\\' ||
		    s[p->pos + 7] != 'u' || json_hex4(s + p->pos + 8, &lo) < 0 ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return json_fail(p, JSON_E_STRING,
			                 "high surrogate without low surrogate");
		p->pos += 12;
	}
	p->doc->toks[i].end = (uint32_t)p->pos;
	p->doc->toks[i].flags |= flags;
	p->pos++;
	return 0;
}

/* Scans a strict number at <s>[<pos>..<len>); returns the position after it
 * or 0 with *<reason> set (a number is never empty). *<frac> tells whether
 * it has a fraction or exponent. */
static size_t json_num_scan(const unsigned char *s, size_t len, size_t pos,
                            int *frac, const char **reason)
{
	*frac = 0;
	if (pos < len && s[pos] == '-')
		pos++;
	if (pos >= len || s[pos] < '0' || s[pos] > '9') {
		*reason = "malformed number";
		return 0;
	}
	if (s[pos] == '0') {
		pos++;
		if (pos < len && s[pos] >= '0' && s[pos] <= '9') {
			*reason = "leading zero in number";
			return 0;
		}
	} else {
		while (pos < len && s[pos] >= '0' && s[pos] <= '9')
			pos++;
	}
	if (pos < len && s[pos] == '.') {
		*frac = 1;
		pos++;
		if (pos >= len || s[pos] < '0' || s[pos] > '9') {
			*reason = "digit expected after '.'";
			return 0;
		}
		while (pos < len && s[pos] >= '0' && s[pos] <= '9')
			pos++;
	}
	if (pos < len && (s[pos] == 'e' || s[pos] == 'E')) {
		*frac = 1;
		pos++;
		if (pos < len && (s[pos] == '+' || s[pos] == '-'))
			pos++;
		if (pos >= len || s[pos] < '0' || s[pos] > '9') {
			*reason = "digit expected in exponent";
			return 0;
		}
		while (pos < len && s[pos] >= '0' && s[pos] <= '9')
			pos++;
	}
	return pos;
}

static int json_number(struct json_p *p)
{
	const char *reason = NULL;
	int frac;
	size_t end = json_num_scan(p->s, p->len, p->pos, &frac, &reason);
	int32_t i;

	if (end == 0)
		return json_fail(p, JSON_E_NUMBER, reason);
	i = json_new(p, JSON_NUMBER, 0);
	if (i < 0)
		return -1;
	p->doc->toks[i].end = (uint32_t)end;
	if (frac)
		p->doc->toks[i].flags |= JSON_TF_FRAC;
	p->pos = end;
	return 0;
}

static int json_literal(struct json_p *p, const char *lit, int type)
{
	size_t n = strlen(lit), i;
	int32_t t;

	for (i = 0; i < n; i++) {
		if (p->pos + i >= p->len)
			return json_fail(p, JSON_E_EOF, "truncated literal");
		if (p->s[p->pos + i] != (unsigned char)lit[i])
			return json_fail(p, JSON_E_SYNTAX, "invalid literal");
	}
	t = json_new(p, type, 0);
	if (t < 0)
		return -1;
	p->doc->toks[t].end = (uint32_t)(p->pos + n);
	p->pos += n;
	return 0;
}

enum json_pst { JSON_S_VALUE, JSON_S_KEY, JSON_S_COLON, JSON_S_AFTER };

/* Closes the innermost container at p->pos if <c> matches it. */
static int json_close(struct json_p *p, unsigned char c)
{
	struct json_frame *f = &p->stack[p->depth - 1];
	struct json_tok *t = &p->doc->toks[f->tok];

	if ((c == '}') != (t->type == JSON_OBJECT))
		return json_fail(p, JSON_E_SYNTAX, "mismatched bracket");
	t->end = (uint32_t)(p->pos + 1);
	p->pos++;
	p->depth--;
	return 0;
}

/* One value at p->pos (after whitespace). Opens containers; sets *<st>. */
static int json_value(struct json_p *p, enum json_pst *st)
{
	unsigned char c;
	int32_t i;

	if (p->pos >= p->len)
		return json_fail(p, JSON_E_EOF, "value expected");
	c = p->s[p->pos];
	*st = JSON_S_AFTER;
	switch (c) {
	case '{':
	case '[':
		if (p->depth >= p->doc->max_depth)
			return json_fail(p, JSON_E_DEPTH, "nesting too deep");
		i = json_new(p, c == '{' ? JSON_OBJECT : JSON_ARRAY, 0);
		if (i < 0)
			return -1;
		p->stack[p->depth].tok = i;
		p->stack[p->depth].last = -1;
		p->depth++;
		p->pos++;
		json_skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == (c == '{' ? '}' : ']'))
			return json_close(p, p->s[p->pos]);
		*st = c == '{' ? JSON_S_KEY : JSON_S_VALUE;
		return 0;
	case '"':
		return json_string(p, 0);
	case 't':
		return json_literal(p, "true", JSON_TRUE);
	case 'f':
		return json_literal(p, "false", JSON_FALSE);
	case 'n':
		return json_literal(p, "null", JSON_NULL);
	case ']':
	case '}':
		return json_fail(p, JSON_E_SYNTAX,
		                 "value expected (trailing comma?)");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return json_number(p);
		if (c >= 0x80 && json_utf8_seq(p->s + p->pos,
		                               p->len - p->pos) == 0)
			return json_fail(p, JSON_E_UTF8, "invalid UTF-8");
		return json_fail(p, JSON_E_SYNTAX, "value expected");
	}
}

static int json_run(struct json_p *p)
{
	enum json_pst st = JSON_S_VALUE;
	unsigned char c;

	if (p->len >= 3 && p->s[0] == 0xEF && p->s[1] == 0xBB &&
	    p->s[2] == 0xBF)
		return json_fail(p, JSON_E_SYNTAX, "byte order mark");
	for (;;) {
		json_skip_ws(p);
		switch (st) {
		case JSON_S_VALUE:
			if (json_value(p, &st) < 0)
				return -1;
			break;
		case JSON_S_KEY:
			if (p->pos >= p->len)
				return json_fail(p, JSON_E_EOF, "key expected");
			if (p->s[p->pos] != '"')
				return json_fail(p, JSON_E_SYNTAX,
				                 p->s[p->pos] == '}' ?
				                 "trailing comma" :
				                 "string key expected");
			if (json_string(p, 1) < 0)
				return -1;
			st = JSON_S_COLON;
			break;
		case JSON_S_COLON:
			if (p->pos >= p->len)
				return json_fail(p, JSON_E_EOF, "':' expected");
			if (p->s[p->pos] != ':')
				return json_fail(p, JSON_E_SYNTAX,
				                 "':' expected");
			p->pos++;
			st = JSON_S_VALUE;
			break;
		case JSON_S_AFTER:
			if (p->depth == 0) {
				if (p->pos < p->len)
					return json_fail(p, JSON_E_TRAILING,
					         "data after the top-level value");
				return 0;
			}
			if (p->pos >= p->len)
				return json_fail(p, JSON_E_EOF,
				                 "unterminated container");
			c = p->s[p->pos];
			if (c == ',') {
				p->pos++;
				st = p->doc->toks[p->stack[p->depth - 1].tok]
				             .type == JSON_OBJECT ?
				     JSON_S_KEY : JSON_S_VALUE;
			} else if (c == '}' || c == ']') {
				if (json_close(p, c) < 0)
					return -1;
			} else {
				return json_fail(p, JSON_E_SYNTAX,
				                 "',' or closing bracket expected");
			}
			break;
		}
	}
}

void json_doc_init(struct json_doc *doc, struct json_tok *toks, uint32_t cap)
{
	memset(doc, 0, sizeof(*doc));
	doc->toks = toks;
	doc->cap = cap > INT32_MAX ? INT32_MAX : cap;
	doc->max_depth = JSON_MAX_DEPTH;
}

int json_parse(struct json_doc *doc, const char *text, size_t len,
               struct json_err *err)
{
	struct json_p p;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.doc = doc;
	p.s = (const unsigned char *)text;
	p.len = len;
	if (!doc || (!text && len) || (!doc->toks && doc->cap)) {
		json_fail(&p, JSON_E_INVAL, "invalid arguments");
	} else {
		doc->text = text;
		doc->len = len;
		doc->ntoks = 0;
		if (doc->max_depth == 0 || doc->max_depth > JSON_MAX_DEPTH)
			doc->max_depth = JSON_MAX_DEPTH;
		if (len >= UINT32_MAX)
			json_fail(&p, JSON_E_TOOBIG, "document too large");
		else if (json_run(&p) == 0)
			return (int)doc->ntoks;
		doc->ntoks = 0;
	}
	if (err) {
		size_t nl = 0;
		unsigned line = 1;

		if (p.pos > len)
			p.pos = len;
		for (i = 0; i < p.pos && text; i++) {
			if (text[i] == '\n') {
				line++;
				nl = i + 1;
			}
		}
		err->code = p.code;
		err->offset = p.pos;
		err->line = line;
		err->col = (unsigned)(p.pos - nl + 1);
		err->reason = p.reason;
	}
	return -p.code;
}

const char *json_strerror(int code)
{
	static const char *const msg[] = {
		[JSON_OK] = "no error",
		[JSON_E_SYNTAX] = "syntax error",
		[JSON_E_EOF] = "unexpected end of input",
		[JSON_E_TRAILING] = "data after the value",
		[JSON_E_NUMBER] = "malformed number",
		[JSON_E_STRING] = "malformed string",
		[JSON_E_UTF8] = "invalid UTF-8",
		[JSON_E_DEPTH] = "nesting too deep",
		[JSON_E_NOTOKENS] = "too many tokens",
		[JSON_E_TOOBIG] = "document too large",
		[JSON_E_INVAL] = "invalid arguments",
	};

	if (code < 0)
		code = -code;
	if ((size_t)code >= sizeof(msg) / sizeof(msg[0]) || !msg[code])
		return "unknown error";
	return msg[code];
}

int json_err_format(const struct json_err *err, const char *name,
                    char *out, size_t outlen)
{
	const char *reason = err->reason ? err->reason
	                                 : json_strerror(err->code);
	int n;

	if (name)
		n = snprintf(out, outlen, "%s:%u:%u: %s", name, err->line,
		             err->col, reason);
	else
		n = snprintf(out, outlen, "%u:%u: %s", err->line, err->col,
		             reason);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ---- walking ---- */

int json_first(const struct json_doc *doc, int i)
{
	const struct json_tok *t = json_tok(doc, i);

	if (!t || (t->type != JSON_OBJECT && t->type != JSON_ARRAY) ||
	    t->size == 0)
		return -1;
	return i + 1;
}

/* Streaming decoder of a validated string token: one byte at a time. */
struct json_dec {
	const unsigned char *p;
	size_t n;
	size_t pos;
	unsigned char u[4];
	unsigned ulen;
	unsigned upos;
};

static void json_dec_init(struct json_dec *d, const struct json_doc *doc,
                          const struct json_tok *t)
{
	d->p = (const unsigned char *)doc->text + t->start;
	d->n = t->end - t->start;
	d->pos = 0;
	d->ulen = d->upos = 0;
}

/* Next decoded byte, or -1 at the end. */
static int json_dec_byte(struct json_dec *d)
{
	uint32_t cp, lo;
	unsigned char c;

	if (d->upos < d->ulen)
		return d->u[d->upos++];
	if (d->pos >= d->n)
		return -1;
	c = d->p[d->pos];
	if (c != '\\' || d->pos + 1 >= d->n) {
		d->pos++;
		return c;
	}
	c = d->p[d->pos + 1];
	d->pos += 2;
	switch (c) {
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'u': break;
	default: return c;  /* " \ / */
	}
	if (d->n - d->pos < 4 || json_hex4(d->p + d->pos, &cp) < 0) {
		d->pos = d->n;   /* never happens on parser output */
		return -1;
	}
	d->pos += 4;
	if (cp >= 0xD800 && cp <= 0xDBFF && d->n - d->pos >= 6 &&
	    d->p[d->pos] == '\\' && d->p[d->pos + 1] == 'u' &&
	    json_hex4(d->p + d->pos + 2, &lo) == 0 &&
	    lo >= 0xDC00 && lo <= 0xDFFF) {
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		d->pos += 6;
	}
	d->ulen = (unsigned)json_utf8_put(cp, d->u);
	d->upos = 1;
	return d->u[0];
}

static int json_is_str(const struct json_doc *doc, int i)
{
	return json_type(doc, i) == JSON_STRING;
}

int json_str_eq_n(const struct json_doc *doc, int i, const char *s, size_t n)
{
	const struct json_tok *t;
	struct json_dec d;
	size_t k;
	int c;

	if (!json_is_str(doc, i))
		return 0;
	t = &doc->toks[i];
	if (!(t->flags & JSON_TF_ESC))
		return t->end - t->start == n &&
		       (n == 0 || memcmp(doc->text + t->start, s, n) == 0);
	json_dec_init(&d, doc, t);
	for (k = 0; k < n; k++) {
		c = json_dec_byte(&d);
		if (c < 0 || c != (unsigned char)s[k])
			return 0;
	}
	return json_dec_byte(&d) < 0;
}

int json_str_eq(const struct json_doc *doc, int i, const char *s)
{
	return json_str_eq_n(doc, i, s, strlen(s));
}

/* 1 when string tokens <a> and <b> decode to the same bytes. */
static int json_str_same(const struct json_doc *doc, int a, int b)
{
	const struct json_tok *ta = &doc->toks[a], *tb = &doc->toks[b];
	struct json_dec da, db;
	int ca, cb;

	if (!(ta->flags & JSON_TF_ESC))
		return json_str_eq_n(doc, b, doc->text + ta->start,
		                     ta->end - ta->start);
	if (!(tb->flags & JSON_TF_ESC))
		return json_str_eq_n(doc, a, doc->text + tb->start,
		                     tb->end - tb->start);
	json_dec_init(&da, doc, ta);
	json_dec_init(&db, doc, tb);
	do {
		ca = json_dec_byte(&da);
		cb = json_dec_byte(&db);
		if (ca != cb)
			return 0;
	} while (ca >= 0);
	return 1;
}

int json_obj_get_n(const struct json_doc *doc, int obj, const char *key,
                   size_t keylen)
{
	int k, v, found = -1;

	if (json_type(doc, obj) != JSON_OBJECT)
		return -1;
	JSON_OBJ_FOREACH(doc, obj, k, v) {
		if (json_str_eq_n(doc, k, key, keylen))
			found = v;
	}
	return found;
}

int json_obj_get(const struct json_doc *doc, int obj, const char *key)
{
	return json_obj_get_n(doc, obj, key, strlen(key));
}

int json_obj_dup_key(const struct json_doc *doc, int obj)
{
	int k, j;

	if (json_type(doc, obj) != JSON_OBJECT)
		return -1;
	for (k = json_first(doc, obj); k >= 0; k = json_next(doc, k))
		for (j = json_first(doc, obj); j != k; j = json_next(doc, j))
			if (json_str_same(doc, j, k))
				return k;
	return -1;
}

ssize_t json_str_unescape(const struct json_doc *doc, int i, char *out,
                          size_t outlen)
{
	const struct json_tok *t;
	struct json_dec d;
	size_t n = 0;
	int c;

	if (!json_is_str(doc, i) || (!out && outlen))
		return -1;
	t = &doc->toks[i];
	if (!out) {
		json_dec_init(&d, doc, t);
		while (json_dec_byte(&d) >= 0)
			n++;
		return (ssize_t)n;
	}
	if (!(t->flags & JSON_TF_ESC)) {
		n = t->end - t->start;
		if (n >= outlen)
			return -1;
		memcpy(out, doc->text + t->start, n);
		out[n] = '\0';
		return (ssize_t)n;
	}
	json_dec_init(&d, doc, t);
	while ((c = json_dec_byte(&d)) >= 0) {
		if (n + 1 >= outlen)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return (ssize_t)n;
}

int json_str_cstr(const struct json_doc *doc, int i, char *out, size_t outlen)
{
	ssize_t n = json_str_unescape(doc, i, out, outlen);

	if (n < 0 || memchr(out, '\0', (size_t)n))
		return -1;
	return 0;
}

static struct str json_num_slice(const struct json_doc *doc, int i,
                                 int want_int)
{
	const struct json_tok *t = json_tok(doc, i);

	if (!t || t->type != JSON_NUMBER ||
	    (want_int && (t->flags & JSON_TF_FRAC)))
		return STR_NULL;
	return str_make(doc->text + t->start, t->end - t->start);
}

int json_to_i64(const struct json_doc *doc, int i, int64_t *out)
{
	return str_to_i64(json_num_slice(doc, i, 1), out);
}

int json_to_u64(const struct json_doc *doc, int i, uint64_t *out)
{
	return str_to_u64(json_num_slice(doc, i, 1), out);
}

int json_to_double(const struct json_doc *doc, int i, double *out)
{
	struct str s = json_num_slice(doc, i, 0);
	char tmp[512], *end;
	double v;

	if (s.len == 0 || s.len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (end != tmp + s.len || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int json_to_bool(const struct json_doc *doc, int i, int *out)
{
	int t = json_type(doc, i);

	if (t != JSON_TRUE && t != JSON_FALSE)
		return -1;
	*out = t == JSON_TRUE;
	return 0;
}

/* ---- writer ---- */

#define JSON_W_OBJ 0x01   /* level is an object */
#define JSON_W_ANY 0x02   /* level has a member or element */
#define JSON_W_VAL 0x04   /* object: a key was written, value expected */

void json_w_init(struct json_w *w, struct buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

static int json_w_fail(struct json_w *w)
{
	w->failed = 1;
	return -1;
}

static int json_w_put(struct json_w *w, const void *p, size_t n)
{
	if (buf_append(w->b, p, n) < 0)
		return json_w_fail(w);
	return 0;
}

/* Before any value: checks the position and writes a separating comma. */
static int json_w_pre(struct json_w *w)
{
	uint8_t *st;

	if (w->failed)
		return -1;
	if (w->depth == 0)
		return w->done ? json_w_fail(w) : 0;
	st = &w->st[w->depth - 1];
	if (*st & JSON_W_OBJ) {
		if (!(*st & JSON_W_VAL))
			return json_w_fail(w);
		*st &= (uint8_t)~JSON_W_VAL;
		return 0;
	}
	if ((*st & JSON_W_ANY) && json_w_put(w, ",", 1) < 0)
		return -1;
	*st |= JSON_W_ANY;
	return 0;
}

static int json_w_post(struct json_w *w)
{
	if (w->depth == 0)
		w->done = 1;
	return 0;
}

static int json_w_open(struct json_w *w, int obj)
{
	if (json_w_pre(w) < 0)
		return -1;
	if (w->depth >= JSON_MAX_DEPTH)
		return json_w_fail(w);
	if (json_w_put(w, obj ? "{" : "[", 1) < 0)
		return -1;
	w->st[w->depth++] = obj ? JSON_W_OBJ : 0;
	return 0;
}

static int json_w_close(struct json_w *w, int obj)
{
	uint8_t st;

	if (w->failed)
		return -1;
	if (w->depth == 0)
		return json_w_fail(w);
	st = w->st[w->depth - 1];
	if (!!(st & JSON_W_OBJ) != obj || (st & JSON_W_VAL))
		return json_w_fail(w);
	if (json_w_put(w, obj ? "}" : "]", 1) < 0)
		return -1;
	w->depth--;
	return json_w_post(w);
}

int json_w_obj_open(struct json_w *w) { return json_w_open(w, 1); }
int json_w_obj_close(struct json_w *w) { return json_w_close(w, 1); }
int json_w_arr_open(struct json_w *w) { return json_w_open(w, 0); }
int json_w_arr_close(struct json_w *w) { return json_w_close(w, 0); }

/* Writes <s> as a quoted, escaped string. */
static int json_w_quoted(struct json_w *w, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run = 0;
	char esc[8];

	if (!s && n)
		return json_w_fail(w);
	if (json_w_put(w, "\"", 1) < 0)
		return -1;
	while (i < n) {
		unsigned char c = u[i];
		const char *rep = NULL;
		size_t replen = 2, l;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80) {
			l = json_utf8_seq(u + i, n - i);
			if (l > 0) {
				i += l;
				continue;
			}
			rep = "\\ufffd";
			replen = 6;
		} else {
			switch (c) {
			case '"': rep = "\\\""; break;
			case '\\': rep = "\\\\"; break;
			case '\b': rep = "\\b"; break;
			case '\f': rep = "\\f"; break;
			case '\n': rep = "\\n"; break;
			case '\r': rep = "\\r"; break;
			case '\t': rep = "\\t"; break;
			default:
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xF];
				rep = esc;
				replen = 6;
				break;
			}
		}
		if (i > run && json_w_put(w, s + run, i - run) < 0)
			return -1;
		if (json_w_put(w, rep, replen) < 0)
			return -1;
		i++;
		run = i;
	}
	if (i > run && json_w_put(w, s + run, i - run) < 0)
		return -1;
	return json_w_put(w, "\"", 1);
}

int json_w_key_n(struct json_w *w, const char *key, size_t n)
{
	uint8_t *st;

	if (w->failed)
		return -1;
	if (w->depth == 0)
		return json_w_fail(w);
	st = &w->st[w->depth - 1];
	if (!(*st & JSON_W_OBJ) || (*st & JSON_W_VAL))
		return json_w_fail(w);
	if ((*st & JSON_W_ANY) && json_w_put(w, ",", 1) < 0)
		return -1;
	if (json_w_quoted(w, key, n) < 0 || json_w_put(w, ":", 1) < 0)
		return -1;
	*st |= JSON_W_ANY | JSON_W_VAL;
	return 0;
}

int json_w_key(struct json_w *w, const char *key)
{
	return key ? json_w_key_n(w, key, strlen(key)) : json_w_fail(w);
}

int json_w_str_n(struct json_w *w, const char *s, size_t n)
{
	if (json_w_pre(w) < 0 || json_w_quoted(w, s, n) < 0)
		return -1;
	return json_w_post(w);
}

int json_w_str(struct json_w *w, const char *s)
{
	return s ? json_w_str_n(w, s, strlen(s)) : json_w_fail(w);
}

static int json_w_scalar(struct json_w *w, const char *p, size_t n)
{
	if (json_w_pre(w) < 0 || json_w_put(w, p, n) < 0)
		return -1;
	return json_w_post(w);
}

int json_w_i64(struct json_w *w, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

	return json_w_scalar(w, tmp, (size_t)n);
}

int json_w_u64(struct json_w *w, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

	return json_w_scalar(w, tmp, (size_t)n);
}

int json_w_double(struct json_w *w, double v)
{
	char tmp[40];
	int n;

	if (w->failed)
		return -1;
	if (!isfinite(v))
		return json_w_fail(w);
	n = snprintf(tmp, sizeof(tmp), "%.15g", v);
	if (strtod(tmp, NULL) != v)
		n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	return json_w_scalar(w, tmp, (size_t)n);
}

int json_w_num_raw(struct json_w *w, const char *p, size_t n)
{
	const char *reason;
	int frac;

	if (w->failed)
		return -1;
	if (!p || n == 0 ||
	    json_num_scan((const unsigned char *)p, n, 0, &frac, &reason) != n)
		return json_w_fail(w);
	return json_w_scalar(w, p, n);
}

int json_w_bool(struct json_w *w, int v)
{
	return v ? json_w_scalar(w, "true", 4) : json_w_scalar(w, "false", 5);
}

int json_w_null(struct json_w *w)
{
	return json_w_scalar(w, "null", 4);
}

int json_w_value(struct json_w *w, const struct json_doc *doc, int i)
{
	const struct json_tok *t = json_tok(doc, i);

	if (w->failed)
		return -1;
	if (!t)
		return json_w_fail(w);
	if (t->type == JSON_STRING)
		return json_w_scalar(w, doc->text + t->start - 1,
		                     t->end - t->start + 2);
	return json_w_scalar(w, doc->text + t->start, t->end - t->start);
}

int json_w_finish(const struct json_w *w)
{
	return !w->failed && w->depth == 0 && w->done ? 0 : -1;
}
