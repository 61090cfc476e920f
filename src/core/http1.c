/*
 * http1: strict HTTP/1.1 head parser, chunked codec, body rules and head
 * writer. See http1.h for the contracts and docs/http1.md for the rules.
 *
 * IMPLEMENTATION NOTES
 * - Byte classes come from one 256-entry table (http1_ctype); hot loops are
 *   "while (p < end && (ctype[*p] & CLASS)) p++", with no calls per byte.
 * - Head parsers re-scan from the start on every call (they keep no state).
 *   They look at most at min(len, max_head) bytes; the start line at most
 *   at max_line bytes. Running out of bytes inside those windows is
 *   "incomplete" (H1_MORE); running into a window's limit is the matching
 *   "too large" error. Checks happen in byte order, which is what makes a
 *   prefix of an input return 0 or the whole input's result.
 * - Field semantics (Content-Length, Transfer-Encoding, Host, ...) are
 *   applied as soon as each field line is complete, so smuggling attempts
 *   are refused before the rest of the head arrives. Checks that need the
 *   whole head (Host missing, 1xx/204 framing, CONNECT) run at the end.
 * - The chunked decoder is a per-byte state machine for the size lines and
 *   trailers (short) and hands out chunk data as zero-copy spans.
 */
#include <limits.h>
#include <string.h>

#include "core/buf.h"
#include "core/http1.h"

/* Byte classes. */
#define C_TCHAR  0x01 /* token character (RFC 9110 5.6.2) */
#define C_VALUE  0x02 /* field-value byte: HTAB, SP, VCHAR, obs-text */
#define C_TARGET 0x04 /* request-target byte: VCHAR except '#' */
#define C_HEX    0x08 /* HEXDIG */
#define C_DIGIT  0x10 /* DIGIT */
#define C_HOST   0x20 /* authority: unreserved, sub-delims, % : [ ] */
#define C_QDTEXT 0x40 /* quoted-string text (no '"', no '\') */
#define C_OWS    0x80 /* SP, HTAB */

static const unsigned char http1_ctype[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x00 */
	0x00, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x08 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x10 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x18 */
	0xc2, 0x67, 0x06, 0x43, 0x67, 0x67, 0x67, 0x67,  /* 0x20 */
	0x66, 0x66, 0x67, 0x67, 0x66, 0x67, 0x67, 0x46,  /* 0x28 */
	0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,  /* 0x30 */
	0x7f, 0x7f, 0x66, 0x66, 0x46, 0x66, 0x46, 0x46,  /* 0x38 */
	0x46, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x67,  /* 0x40 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,  /* 0x48 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,  /* 0x50 */
	0x67, 0x67, 0x67, 0x66, 0x06, 0x66, 0x47, 0x67,  /* 0x58 */
	0x47, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x67,  /* 0x60 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,  /* 0x68 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,  /* 0x70 */
	0x67, 0x67, 0x67, 0x46, 0x47, 0x46, 0x67, 0x00,  /* 0x78 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0x80 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0x88 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0x90 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0x98 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xa0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xa8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xb0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xb8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xc0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xc8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xd0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xd8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xe0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xe8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xf0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,  /* 0xf8 */
};

#define IS(c, cls) (http1_ctype[(unsigned char)(c)] & (cls))

/*
 * Word-at-a-time scanning (8 bytes per step) for the long runs: field
 * values and request targets. SWAR_LT(x, n) is non-zero when some byte of
 * x is below n (n <= 128; bytes >= 0x80 never count); SWAR_EQ(x, c) when
 * some byte equals c. A flagged word falls back to the byte loop, so these
 * only need to be exact about "all bytes are plain", never about which.
 */
#define SWAR_ONES  0x0101010101010101ULL
#define SWAR_HIGHS 0x8080808080808080ULL
#define SWAR_LT(x, n) (((x) - SWAR_ONES * (n)) & ~(x) & SWAR_HIGHS)
#define SWAR_EQ(x, c) SWAR_LT((x) ^ (SWAR_ONES * (c)), 1)

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/* Skips field-value bytes (HTAB, SP, VCHAR, obs-text). */
static inline const unsigned char *scan_value(const unsigned char *p,
                                              const unsigned char *end)
{
	uint64_t x;

	while (end - p >= 8) {
		x = load64(p);
		if (SWAR_LT(x, 0x20) || SWAR_EQ(x, 0x7f))
			break;
		p += 8;
	}
	while (p < end && IS(*p, C_VALUE))
		p++;
	return p;
}

/* Skips request-target bytes (VCHAR but '#'). */
static inline const unsigned char *scan_target(const unsigned char *p,
                                               const unsigned char *end)
{
	uint64_t x;

	while (end - p >= 8) {
		x = load64(p);
		if ((x & SWAR_HIGHS) || SWAR_LT(x, 0x21) || SWAR_EQ(x, 0x7f)
		    || SWAR_EQ(x, '#'))
			break;
		p += 8;
	}
	while (p < end && IS(*p, C_TARGET))
		p++;
	return p;
}

/* Skips token bytes; unrolled because names are short. */
static inline const unsigned char *scan_token(const unsigned char *p,
                                              const unsigned char *end)
{
	while (end - p >= 4) {
		if (!IS(p[0], C_TCHAR))
			return p;
		if (!IS(p[1], C_TCHAR))
			return p + 1;
		if (!IS(p[2], C_TCHAR))
			return p + 2;
		if (!IS(p[3], C_TCHAR))
			return p + 3;
		p += 4;
	}
	while (p < end && IS(*p, C_TCHAR))
		p++;
	return p;
}

/* Internal "need more bytes"; never returned to callers as such. */
#define H1_MORE 1

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Case-insensitive equality of s[0, n) with the lowercase literal <lit> of
 * length n. */
static inline int ieq(const unsigned char *s, const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lc(s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

#define IEQ(s, n, lit) ((n) == sizeof(lit) - 1 && \
	ieq((const unsigned char *)(s), lit, sizeof(lit) - 1))

static int ieq2(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* errors and limits                                                   */

static const char *const http1_errstr[] = {
	"no error",
	"head too large",
	"start line too long",
	"too many header fields",
	"bare LF (line feed without carriage return)",
	"bare CR (carriage return without line feed)",
	"control character in field value",
	"malformed request line",
	"invalid method",
	"invalid request target",
	"malformed HTTP version",
	"HTTP version not supported",
	"HTTP/2 connection preface",
	"HTTP/0.9 request line",
	"malformed status line",
	"invalid status code",
	"obsolete line folding or leading whitespace",
	"empty field name",
	"invalid character in field name",
	"whitespace between field name and colon",
	"field line without colon",
	"invalid Content-Length",
	"duplicate Content-Length",
	"both Content-Length and Transfer-Encoding",
	"malformed Transfer-Encoding",
	"Transfer-Encoding does not end in exactly one chunked",
	"unsupported transfer coding",
	"duplicate Transfer-Encoding",
	"Transfer-Encoding in an HTTP/1.0 message",
	"missing Host",
	"duplicate Host",
	"invalid Host or authority",
	"malformed, forbidden or too many Connection options",
	"malformed Upgrade",
	"Transfer-Encoding or Content-Length in a 1xx/204 response",
	"CONNECT method refused",
	"invalid chunk size",
	"chunk size longer than 16 hex digits",
	"malformed chunk extension",
	"chunk extensions too long",
	"chunk data not followed by CRLF",
	"trailer section too large",
	"forbidden field in trailer section",
	"field block ends inside a line",
};

const char *http1_strerror(int err)
{
	if (err > 0 || err < HTTP1_E_MIN)
		return "unknown error";
	return http1_errstr[-err];
}

int http1_err_status(int err)
{
	switch (err) {
	case HTTP1_E_HEAD_TOO_LARGE:
	case HTTP1_E_TOO_MANY_HEADERS:
		return 431;
	case HTTP1_E_LINE_TOO_LONG:
		return 414;
	case HTTP1_E_VERSION_UNSUPPORTED:
		return 505;
	case HTTP1_E_TE_UNSUPPORTED:
	case HTTP1_E_CONNECT:
		return 501;
	case HTTP1_E_H2_PREFACE:
		return 0;
	default:
		return 400;
	}
}

static void limits_resolve(const struct http1_limits *in,
                           struct http1_limits *out)
{
	static const struct http1_limits zero;

	if (!in)
		in = &zero;
	out->max_head = in->max_head ? in->max_head : HTTP1_DEF_MAX_HEAD;
	out->max_line = in->max_line ? in->max_line : HTTP1_DEF_MAX_LINE;
	out->max_headers = in->max_headers ? in->max_headers
	                                   : HTTP1_DEF_MAX_HEADERS;
	out->max_chunk_ext = in->max_chunk_ext ? in->max_chunk_ext
	                                       : HTTP1_DEF_MAX_CHUNK_EXT;
	out->max_trailer = in->max_trailer ? in->max_trailer
	                                   : HTTP1_DEF_MAX_TRAILER;
	if (out->max_head > INT_MAX)
		out->max_head = INT_MAX;
}

void http1_head_init(struct http1_head *h, struct http1_header *headers,
                     size_t cap)
{
	memset(h, 0, sizeof(*h));
	h->headers = headers;
	h->headers_cap = cap;
}

/* ------------------------------------------------------------------ */
/* shared field syntax                                                 */

/*
 * Scans the field line at *pp (whose first byte is neither CR nor LF nor
 * whitespace; the caller checked). On success stores the slices in <f>,
 * moves *pp past the CRLF and returns 0. Returns H1_MORE or an error.
 */
static inline int field_line(const unsigned char **pp,
                             const unsigned char *end,
                             struct http1_header *f)
{
	const unsigned char *p = *pp, *n = p, *v, *ve;

	p = scan_token(p, end);
	if (p == end)
		return H1_MORE;
	if (*p != ':') {
		if (p == n)
			return HTTP1_E_HEADER_NAME;
		if (*p == ' ' || *p == '\t')
			return HTTP1_E_SPACE_BEFORE_COLON;
		if (*p == '\r' || *p == '\n')
			return HTTP1_E_NO_COLON;
		return HTTP1_E_HEADER_NAME;
	}
	if (p == n)
		return HTTP1_E_EMPTY_NAME;
	f->name = (const char *)n;
	f->name_len = (size_t)(p - n);
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	v = p;
	p = scan_value(p, end);
	if (p == end)
		return H1_MORE;
	if (*p != '\r')
		return *p == '\n' ? HTTP1_E_BARE_LF : HTTP1_E_CTL;
	if (p + 1 == end)
		return H1_MORE;
	if (p[1] != '\n')
		return HTTP1_E_BARE_CR;
	ve = p;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	f->value = (const char *)v;
	f->value_len = (size_t)(ve - v);
	*pp = p + 2;
	return 0;
}

/* Checks the first byte of a line that is not the empty line. */
static inline int line_start(unsigned char c)
{
	if (c == '\n')
		return HTTP1_E_BARE_LF;
	if (c == ' ' || c == '\t')
		return HTTP1_E_OBS_FOLD;
	return 0;
}

/*
 * Scans field lines in buf[0, len) that must hold only complete lines.
 * Stores at most <cap> fields in <hdrs> (NULL: count only, no cap).
 */
static int fields_scan(const unsigned char *p, const unsigned char *end,
                       struct http1_header *hdrs, size_t cap)
{
	struct http1_header f;
	size_t n = 0;
	int rc;

	while (p < end) {
		rc = line_start(*p);
		if (rc)
			return rc;
		if (hdrs && n == cap)
			return HTTP1_E_TOO_MANY_HEADERS;
		if (*p == '\r')
			return HTTP1_E_HEADER_NAME;
		rc = field_line(&p, end, &f);
		if (rc == H1_MORE)
			return HTTP1_E_TRUNCATED;
		if (rc)
			return rc;
		if (hdrs)
			hdrs[n] = f;
		n++;
		if (n > INT_MAX)
			return HTTP1_E_TOO_MANY_HEADERS;
	}
	return (int)n;
}

int http1_parse_fields(const char *buf, size_t len,
                       struct http1_header *hdrs, size_t cap)
{
	if (len == 0)
		return 0;
	return fields_scan((const unsigned char *)buf,
	                   (const unsigned char *)buf + len, hdrs, cap);
}

/*
 * authority = host [ ":" port ], no userinfo. host is an IP-literal in
 * brackets or a reg-name/IPv4 (unreserved, sub-delims, pct-encoded). The
 * port, when present, is 1 to 5 digits up to 65535; <need_port> makes it
 * mandatory (CONNECT).
 */
static int authority_valid(const unsigned char *p, size_t n, int need_port)
{
	size_t i = 0, j, digits;
	unsigned long port = 0;

	if (n == 0)
		return 0;
	if (p[0] == '[') {
		for (i = 1; i < n && p[i] != ']'; i++)
			if (!IS(p[i], C_HEX) && p[i] != ':' && p[i] != '.')
				return 0;
		if (i == n || i < 3)
			return 0;
		i++;
	} else {
		for (; i < n && p[i] != ':'; i++) {
			if (!IS(p[i], C_HOST) || p[i] == '[' || p[i] == ']')
				return 0;
			if (p[i] == '%' && (i + 2 >= n || !IS(p[i + 1], C_HEX)
			                    || !IS(p[i + 2], C_HEX)))
				return 0;
		}
		if (i == 0)
			return 0;
	}
	if (i == n)
		return !need_port;
	if (p[i] != ':')
		return 0;
	digits = n - i - 1;
	if (digits == 0 || digits > 5)
		return 0;
	for (j = i + 1; j < n; j++) {
		if (!IS(p[j], C_DIGIT))
			return 0;
		port = port * 10 + (unsigned long)(p[j] - '0');
	}
	return port <= 65535;
}

/* ------------------------------------------------------------------ */
/* head parser                                                         */

struct h1p {
	const unsigned char *buf;
	const unsigned char *end;   /* buf + min(len, max_head) */
	int at_limit;               /* end is the max_head limit */
	struct http1_limits lim;
	struct http1_head *h;
	size_t maxh;                /* fields accepted */
	int is_req;
	int seen_te;
	const char *host;
	size_t host_len;
};

static void h1p_begin(struct h1p *ps, const char *buf, size_t len,
                      const struct http1_limits *lim, struct http1_head *h,
                      int is_req)
{
	struct http1_header *hdrs = h->headers;
	size_t cap = h->headers_cap;

	memset(ps, 0, sizeof(*ps));
	limits_resolve(lim, &ps->lim);
	memset(h, 0, sizeof(*h));
	h->headers = hdrs;
	h->headers_cap = cap;
	ps->buf = (const unsigned char *)buf;
	if (len >= ps->lim.max_head) {
		len = ps->lim.max_head;
		ps->at_limit = 1;
	}
	ps->end = len ? ps->buf + len : ps->buf;
	ps->h = h;
	ps->maxh = ps->lim.max_headers < cap ? ps->lim.max_headers : cap;
	if (!hdrs)
		ps->maxh = 0;
	ps->is_req = is_req;
}

static int h1p_result(const struct h1p *ps, int rc)
{
	if (rc == H1_MORE)
		return ps->at_limit ? HTTP1_E_HEAD_TOO_LARGE : 0;
	return rc;
}

/* Window for the start line: returns its end and whether reaching it
 * means "line too long". */
static const unsigned char *line_window(const struct h1p *ps, int *limited)
{
	size_t room = (size_t)(ps->end - ps->buf);

	if (ps->lim.max_line <= room) {
		*limited = 1;
		return ps->buf + ps->lim.max_line;
	}
	*limited = 0;
	return ps->end;
}

/*
 * "HTTP/" DIGIT "." DIGIT at *pp, followed by CRLF (requests) or SP
 * (responses, <sp_next>). On success *pp points after the version, *ver
 * holds major * 10 + minor. <first_err> is returned when the first byte
 * does not start a version at all.
 */
static int parse_version(const unsigned char **pp, const unsigned char *lend,
                         int *ver, int first_err)
{
	static const char lit[] = "HTTP/";
	const unsigned char *p = *pp;
	size_t i;

	for (i = 0; i < 8; i++) {
		if (p + i == lend)
			return H1_MORE;
		if (i < 5) {
			if (p[i] != (unsigned char)lit[i])
				return (i == 0 && lc(p[0]) != 'h') ? first_err
				                                   : HTTP1_E_VERSION;
		} else if (i == 6) {
			if (p[i] != '.')
				return HTTP1_E_VERSION;
		} else if (!IS(p[i], C_DIGIT)) {
			return HTTP1_E_VERSION;
		}
	}
	*ver = (p[5] - '0') * 10 + (p[7] - '0');
	*pp = p + 8;
	return 0;
}

static enum http1_method method_id(const unsigned char *m, size_t n)
{
#define M(lit, id) if (n == sizeof(lit) - 1 && !memcmp(m, lit, n)) return id
	switch (n) {
	case 3:
		M("GET", HTTP1_M_GET);
		M("PUT", HTTP1_M_PUT);
		break;
	case 4:
		M("HEAD", HTTP1_M_HEAD);
		M("POST", HTTP1_M_POST);
		break;
	case 5:
		M("TRACE", HTTP1_M_TRACE);
		M("PATCH", HTTP1_M_PATCH);
		break;
	case 6:
		M("DELETE", HTTP1_M_DELETE);
		break;
	case 7:
		M("CONNECT", HTTP1_M_CONNECT);
		M("OPTIONS", HTTP1_M_OPTIONS);
		break;
	}
#undef M
	return HTTP1_M_OTHER;
}

/* Classifies and checks the request target of h. */
static int parse_target(struct http1_head *h)
{
	const unsigned char *t = (const unsigned char *)h->target, *a;
	size_t n = h->target_len, i;

	if (h->method_id == HTTP1_M_CONNECT) {
		if (!authority_valid(t, n, 1))
			return HTTP1_E_TARGET;
		h->target_form = HTTP1_T_AUTHORITY;
		h->authority = h->target;
		h->authority_len = n;
		h->path = h->target + n;
		return 0;
	}
	if (t[0] == '/') {
		h->target_form = HTTP1_T_ORIGIN;
		h->path = h->target;
		h->path_len = n;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (h->method_id != HTTP1_M_OPTIONS)
			return HTTP1_E_TARGET;
		h->target_form = HTTP1_T_ASTERISK;
		h->path = h->target;
		h->path_len = 1;
		return 0;
	}
	/* absolute-form: only the http and https schemes are proxied */
	if (n > 7 && ieq(t, "http://", 7))
		i = 7;
	else if (n > 8 && ieq(t, "https://", 8))
		i = 8;
	else
		return HTTP1_E_TARGET;
	a = t + i;
	while (i < n && t[i] != '/' && t[i] != '?')
		i++;
	if (!authority_valid(a, (size_t)(t + i - a), 0))
		return HTTP1_E_TARGET;
	h->target_form = HTTP1_T_ABSOLUTE;
	h->authority = (const char *)a;
	h->authority_len = (size_t)(t + i - a);
	h->path = h->target + i;
	h->path_len = n - i;
	return 0;
}

static int parse_request_line(struct h1p *ps, const unsigned char **pp)
{
	struct http1_head *h = ps->h;
	const unsigned char *p = ps->buf, *lend, *t;
	int limited, rc, ver;

#define LINE_MORE() return limited ? HTTP1_E_LINE_TOO_LONG : H1_MORE
	lend = line_window(ps, &limited);

	p = scan_token(p, lend);
	if (p == lend)
		LINE_MORE();
	if (p == ps->buf || *p != ' ') {
		/* empty line, whitespace, "GET\r\n": not a request line;
		 * any other byte: not a token */
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			return HTTP1_E_REQUEST_LINE;
		return HTTP1_E_METHOD;
	}
	h->method = (const char *)ps->buf;
	h->method_len = (size_t)(p - ps->buf);
	p++;

	t = p;
	p = scan_target(p, lend);
	if (p == lend)
		LINE_MORE();
	if (p == t)
		return HTTP1_E_REQUEST_LINE;
	if (*p == '\r')
		return HTTP1_E_HTTP09;
	if (*p == '\n')
		return HTTP1_E_BARE_LF;
	if (*p != ' ')
		return HTTP1_E_TARGET;
	h->target = (const char *)t;
	h->target_len = (size_t)(p - t);
	p++;

	rc = parse_version(&p, lend, &ver, HTTP1_E_REQUEST_LINE);
	if (rc == H1_MORE)
		LINE_MORE();
	if (rc)
		return rc;
	if (p == lend)
		LINE_MORE();
	if (*p != '\r') {
		if (*p == ' ')
			return HTTP1_E_REQUEST_LINE;
		return *p == '\n' ? HTTP1_E_BARE_LF : HTTP1_E_VERSION;
	}
	if (p + 1 == lend)
		LINE_MORE();
	if (p[1] != '\n')
		return HTTP1_E_BARE_CR;
	p += 2;
#undef LINE_MORE

	if (ver != 10 && ver != 11) {
		if (ver == 20 && h->method_len == 3 && !memcmp(h->method, "PRI", 3)
		    && h->target_len == 1 && h->target[0] == '*')
			return HTTP1_E_H2_PREFACE;
		return HTTP1_E_VERSION_UNSUPPORTED;
	}
	h->version = ver;
	h->method_id = method_id((const unsigned char *)h->method,
	                         h->method_len);
	rc = parse_target(h);
	if (rc)
		return rc;
	*pp = p;
	return 0;
}

static int parse_status_line(struct h1p *ps, const unsigned char **pp)
{
	struct http1_head *h = ps->h;
	const unsigned char *p = ps->buf, *lend, *r;
	int limited, rc, ver, i;

#define LINE_MORE() return limited ? HTTP1_E_LINE_TOO_LONG : H1_MORE
	lend = line_window(ps, &limited);

	rc = parse_version(&p, lend, &ver, HTTP1_E_STATUS_LINE);
	if (rc == H1_MORE)
		LINE_MORE();
	if (rc)
		return rc;
	if (p == lend)
		LINE_MORE();
	if (*p != ' ') {
		if (*p == '\n')
			return HTTP1_E_BARE_LF;
		return *p == '\r' ? HTTP1_E_STATUS_LINE : HTTP1_E_VERSION;
	}
	if (ver != 10 && ver != 11)
		return HTTP1_E_VERSION_UNSUPPORTED;
	h->version = ver;
	p++;
	for (i = 0; i < 3; i++, p++) {
		if (p == lend)
			LINE_MORE();
		if (!IS(*p, C_DIGIT))
			return HTTP1_E_STATUS;
		h->status = h->status * 10 + (*p - '0');
	}
	if (p == lend)
		LINE_MORE();
	if (*p == ' ') {
		p++;
	} else if (*p != '\r') {
		if (*p == '\n')
			return HTTP1_E_BARE_LF;
		return IS(*p, C_DIGIT) ? HTTP1_E_STATUS : HTTP1_E_STATUS_LINE;
	}
	if (h->status < 100 || h->status > 599)
		return HTTP1_E_STATUS;
	r = p;
	p = scan_value(p, lend);
	if (p == lend)
		LINE_MORE();
	if (*p != '\r')
		return *p == '\n' ? HTTP1_E_BARE_LF : HTTP1_E_STATUS_LINE;
	if (p + 1 == lend)
		LINE_MORE();
	if (p[1] != '\n')
		return HTTP1_E_BARE_CR;
#undef LINE_MORE
	h->reason = (const char *)r;
	h->reason_len = (size_t)(p - r);
	*pp = p + 2;
	return 0;
}

static int field_content_length(struct h1p *ps, const struct http1_header *f)
{
	const unsigned char *p = (const unsigned char *)f->value;
	uint64_t v = 0, d;
	size_t i;

	if (ps->h->flags & HTTP1_F_CONTENT_LENGTH)
		return HTTP1_E_CL_DUP;
	if (f->value_len == 0)
		return HTTP1_E_CL_INVALID;
	for (i = 0; i < f->value_len; i++) {
		if (!IS(p[i], C_DIGIT))
			return HTTP1_E_CL_INVALID;
		d = (uint64_t)(p[i] - '0');
		if (v > ((uint64_t)HTTP1_MAX_CONTENT_LENGTH - d) / 10)
			return HTTP1_E_CL_INVALID;
		v = v * 10 + d;
	}
	if (ps->seen_te)
		return HTTP1_E_CL_TE;
	ps->h->flags |= HTTP1_F_CONTENT_LENGTH;
	ps->h->content_length = v;
	return 0;
}

/* Only a Transfer-Encoding of exactly "chunked" is accepted. */
static int field_transfer_encoding(struct h1p *ps,
                                   const struct http1_header *f)
{
	const unsigned char *p = (const unsigned char *)f->value, *t;
	const unsigned char *e = p + f->value_len;
	unsigned count = 0, nchunked = 0, last = 0;

	if (ps->seen_te)
		return HTTP1_E_TE_DUP;
	ps->seen_te = 1;
	if (ps->h->version == 10)
		return HTTP1_E_TE_HTTP10;
	if (ps->h->flags & HTTP1_F_CONTENT_LENGTH)
		return HTTP1_E_CL_TE;
	for (;;) {
		t = p;
		while (p < e && IS(*p, C_TCHAR))
			p++;
		if (p == t)
			return HTTP1_E_TE_SYNTAX;
		last = IEQ(t, (size_t)(p - t), "chunked");
		nchunked += last;
		count++;
		while (p < e && IS(*p, C_OWS))
			p++;
		if (p == e)
			break;
		if (*p != ',')
			return HTTP1_E_TE_SYNTAX;
		p++;
		while (p < e && IS(*p, C_OWS))
			p++;
	}
	if (count == 1 && last) {
		ps->h->flags |= HTTP1_F_CHUNKED;
		return 0;
	}
	if (last && nchunked == 1)
		return HTTP1_E_TE_UNSUPPORTED;
	return HTTP1_E_TE_INVALID;
}

static int field_connection(struct h1p *ps, const struct http1_header *f)
{
	const unsigned char *p = (const unsigned char *)f->value, *t;
	const unsigned char *e = p + f->value_len;
	struct http1_head *h = ps->h;
	size_t n;

	for (;;) {
		/* empty list elements are allowed (RFC 9110 5.6.1.2) */
		while (p < e && (IS(*p, C_OWS) || *p == ','))
			p++;
		if (p == e)
			return 0;
		t = p;
		while (p < e && IS(*p, C_TCHAR))
			p++;
		if (p == t)
			return HTTP1_E_CONNECTION;
		n = (size_t)(p - t);
		while (p < e && IS(*p, C_OWS))
			p++;
		if (p < e && *p != ',')
			return HTTP1_E_CONNECTION;
		if (IEQ(t, n, "close")) {
			h->flags |= HTTP1_F_CONN_CLOSE;
		} else if (IEQ(t, n, "keep-alive")) {
			h->flags |= HTTP1_F_CONN_KEEP_ALIVE;
		} else if (IEQ(t, n, "upgrade")) {
			h->flags |= HTTP1_F_CONN_UPGRADE;
		} else if (IEQ(t, n, "te")) {
			h->flags |= HTTP1_F_CONN_TE;
		} else if (IEQ(t, n, "host") || IEQ(t, n, "content-length")) {
			/* would make a proxy drop routing or framing:
			 * "Connection: content-length" smuggles the body */
			return HTTP1_E_CONNECTION;
		} else {
			if (h->nconn_opts == HTTP1_CONN_MAX_OPTIONS)
				return HTTP1_E_CONNECTION;
			h->conn_opts[h->nconn_opts].p = (const char *)t;
			h->conn_opts[h->nconn_opts].len = n;
			h->nconn_opts++;
		}
	}
}

/* Upgrade = 1#protocol, protocol = token [ "/" token ] */
static int field_upgrade(struct h1p *ps, const struct http1_header *f)
{
	const unsigned char *p = (const unsigned char *)f->value, *t;
	const unsigned char *e = p + f->value_len;
	int first = 1;

	for (;;) {
		t = p;
		while (p < e && IS(*p, C_TCHAR))
			p++;
		if (p == t)
			return HTTP1_E_UPGRADE;
		if (p < e && *p == '/') {
			const unsigned char *v = ++p;

			while (p < e && IS(*p, C_TCHAR))
				p++;
			if (p == v)
				return HTTP1_E_UPGRADE;
		}
		if (first && !ps->h->upgrade) {
			ps->h->upgrade = (const char *)t;
			ps->h->upgrade_len = (size_t)(p - t);
		}
		first = 0;
		while (p < e && IS(*p, C_OWS))
			p++;
		if (p == e)
			return 0;
		if (*p != ',')
			return HTTP1_E_UPGRADE;
		p++;
		while (p < e && IS(*p, C_OWS))
			p++;
	}
}

/* TE is advisory: only look for "trailers" among its elements. */
static void field_te(struct h1p *ps, const struct http1_header *f)
{
	const unsigned char *p = (const unsigned char *)f->value, *t;
	const unsigned char *e = p + f->value_len;

	while (p < e) {
		while (p < e && (IS(*p, C_OWS) || *p == ','))
			p++;
		t = p;
		while (p < e && IS(*p, C_TCHAR))
			p++;
		if (IEQ(t, (size_t)(p - t), "trailers"))
			ps->h->flags |= HTTP1_F_TE_TRAILERS;
		while (p < e && *p != ',')
			p++;
	}
}

static int field_host(struct h1p *ps, const struct http1_header *f)
{
	if (++ps->h->host_count > 1)
		return HTTP1_E_HOST_DUP;
	if (f->value_len && !authority_valid((const unsigned char *)f->value,
	                                     f->value_len, 0))
		return HTTP1_E_HOST_INVALID;
	ps->host = f->value;
	ps->host_len = f->value_len;
	return 0;
}

/* Applies what a field means for framing and routing. */
static inline int field_semantics(struct h1p *ps,
                                  const struct http1_header *f)
{
	const char *n = f->name;

	switch (f->name_len) {
	case 2:
		if (ps->is_req && IEQ(n, 2, "te"))
			field_te(ps, f);
		return 0;
	case 4:
		if (ps->is_req && IEQ(n, 4, "host"))
			return field_host(ps, f);
		return 0;
	case 6:
		if (ps->is_req && IEQ(n, 6, "expect"))
			ps->h->flags |= IEQ(f->value, f->value_len, "100-continue")
			                ? HTTP1_F_EXPECT_CONTINUE
			                : HTTP1_F_EXPECT_OTHER;
		return 0;
	case 7:
		if (IEQ(n, 7, "upgrade"))
			return field_upgrade(ps, f);
		return 0;
	case 10:
		if (IEQ(n, 10, "connection"))
			return field_connection(ps, f);
		return 0;
	case 14:
		if (IEQ(n, 14, "content-length"))
			return field_content_length(ps, f);
		return 0;
	case 17:
		if (IEQ(n, 17, "transfer-encoding"))
			return field_transfer_encoding(ps, f);
		return 0;
	}
	return 0;
}

static int parse_fields(struct h1p *ps, const unsigned char **pp)
{
	struct http1_head *h = ps->h;
	const unsigned char *p = *pp, *end = ps->end;
	struct http1_header *f;
	int rc;

	for (;;) {
		if (p == end)
			return H1_MORE;
		if (*p == '\r') {
			if (p + 1 == end)
				return H1_MORE;
			if (p[1] != '\n')
				return HTTP1_E_BARE_CR;
			*pp = p + 2;
			return 0;
		}
		rc = line_start(*p);
		if (rc)
			return rc;
		if (h->nheaders == ps->maxh)
			return HTTP1_E_TOO_MANY_HEADERS;
		f = &h->headers[h->nheaders];
		rc = field_line(&p, end, f);
		if (rc)
			return rc;
		h->nheaders++;
		rc = field_semantics(ps, f);
		if (rc)
			return rc;
	}
}

static void set_keep_alive(struct http1_head *h)
{
	if (h->flags & HTTP1_F_CONN_CLOSE)
		return;
	if (h->version == 11 || (h->flags & HTTP1_F_CONN_KEEP_ALIVE))
		h->flags |= HTTP1_F_KEEP_ALIVE;
}

static int finish_request(struct h1p *ps)
{
	struct http1_head *h = ps->h;

	if (h->version == 11 && h->host_count == 0)
		return HTTP1_E_HOST_MISSING;
	if (h->target_form == HTTP1_T_ABSOLUTE
	    || h->target_form == HTTP1_T_AUTHORITY) {
		if (h->host_count && !ieq2(h->authority, h->authority_len,
		                           ps->host, ps->host_len))
			h->flags |= HTTP1_F_HOST_MISMATCH;
	} else if (h->host_count) {
		h->authority = ps->host;
		h->authority_len = ps->host_len;
	}
	set_keep_alive(h);
	if (h->version == 11 && h->upgrade && (h->flags & HTTP1_F_CONN_UPGRADE))
		h->flags |= HTTP1_F_UPGRADE;
	if (h->version == 10)
		h->flags &= ~(unsigned)(HTTP1_F_EXPECT_CONTINUE
		                        | HTTP1_F_EXPECT_OTHER);
	if (h->method_id == HTTP1_M_CONNECT)
		return HTTP1_E_CONNECT;
	return (int)h->head_len;
}

static int finish_response(struct h1p *ps)
{
	struct http1_head *h = ps->h;

	if ((h->status < 200 || h->status == 204)
	    && ((h->flags & HTTP1_F_CHUNKED) || ps->seen_te
	        || ((h->flags & HTTP1_F_CONTENT_LENGTH) && h->content_length)))
		return HTTP1_E_FRAMING_FORBIDDEN;
	if (h->status == 101 && !h->upgrade)
		return HTTP1_E_UPGRADE;
	set_keep_alive(h);
	if (h->version == 11 && h->upgrade && (h->flags & HTTP1_F_CONN_UPGRADE))
		h->flags |= HTTP1_F_UPGRADE;
	return (int)h->head_len;
}

int http1_parse_request(const char *buf, size_t len,
                        const struct http1_limits *lim, struct http1_head *h)
{
	struct h1p ps;
	const unsigned char *p;
	int rc;

	h1p_begin(&ps, buf, len, lim, h, 1);
	if (len == 0)
		return 0;
	rc = parse_request_line(&ps, &p);
	if (rc)
		return h1p_result(&ps, rc);
	rc = parse_fields(&ps, &p);
	if (rc)
		return h1p_result(&ps, rc);
	h->head_len = (size_t)(p - ps.buf);
	return finish_request(&ps);
}

int http1_parse_response(const char *buf, size_t len,
                         const struct http1_limits *lim, struct http1_head *h)
{
	struct h1p ps;
	const unsigned char *p;
	int rc;

	h1p_begin(&ps, buf, len, lim, h, 0);
	if (len == 0)
		return 0;
	rc = parse_status_line(&ps, &p);
	if (rc)
		return h1p_result(&ps, rc);
	rc = parse_fields(&ps, &p);
	if (rc)
		return h1p_result(&ps, rc);
	h->head_len = (size_t)(p - ps.buf);
	return finish_response(&ps);
}

int http1_head_end(const char *buf, size_t len, size_t from)
{
	const char *lf;
	size_t i;

	if (len > INT_MAX)
		len = INT_MAX;
	i = from;
	while (i < len) {
		lf = memchr(buf + i, '\n', len - i);
		if (!lf)
			return 0;
		i = (size_t)(lf - buf);
		if (i == 0 || buf[i - 1] != '\r')
			return HTTP1_E_BARE_LF;
		if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return (int)(i + 1);
		i++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* body rules                                                          */

const char *http1_body_str(enum http1_body b)
{
	switch (b) {
	case HTTP1_BODY_NONE: return "none";
	case HTTP1_BODY_LENGTH: return "content-length";
	case HTTP1_BODY_CHUNKED: return "chunked";
	case HTTP1_BODY_CLOSE: return "until-close";
	case HTTP1_BODY_TUNNEL: return "tunnel";
	}
	return "?";
}

enum http1_body http1_request_body(const struct http1_head *req)
{
	if (req->flags & HTTP1_F_CHUNKED)
		return HTTP1_BODY_CHUNKED;
	if (req->flags & HTTP1_F_CONTENT_LENGTH)
		return HTTP1_BODY_LENGTH;
	return HTTP1_BODY_NONE;
}

enum http1_body http1_response_body(enum http1_method method,
                                    const struct http1_head *resp)
{
	int s = resp->status;

	if (s == 101)
		return HTTP1_BODY_TUNNEL;
	if (s < 200 || s == 204 || s == 304 || method == HTTP1_M_HEAD)
		return HTTP1_BODY_NONE;
	if (method == HTTP1_M_CONNECT && s < 300)
		return HTTP1_BODY_TUNNEL;
	if (resp->flags & HTTP1_F_CHUNKED)
		return HTTP1_BODY_CHUNKED;
	if (resp->flags & HTTP1_F_CONTENT_LENGTH)
		return HTTP1_BODY_LENGTH;
	return HTTP1_BODY_CLOSE;
}

int http1_response_persistent(enum http1_method method,
                              const struct http1_head *resp)
{
	enum http1_body b = http1_response_body(method, resp);

	if (b == HTTP1_BODY_CLOSE || b == HTTP1_BODY_TUNNEL)
		return 0;
	return (resp->flags & HTTP1_F_KEEP_ALIVE) != 0;
}

/* ------------------------------------------------------------------ */
/* chunked decoder                                                     */

enum {
	CH_SIZE = 0,   /* chunk-size digits */
	CH_EXT_NAME0,  /* after ';' */
	CH_EXT_NAME,
	CH_EXT_VAL0,   /* after '=' */
	CH_EXT_TOKEN,
	CH_EXT_QUOTED,
	CH_EXT_QPAIR,  /* after '\' in a quoted string */
	CH_EXT_QEND,   /* after the closing '"' */
	CH_SIZE_LF,    /* after the CR of a size line */
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TR_START,   /* start of a trailer line */
	CH_TR_NAME,
	CH_TR_VALUE,
	CH_TR_LF,
	CH_FINAL_LF,   /* after the CR of the empty line */
	CH_DONE,
};

void http1_chunked_init(struct http1_chunked *d, const struct http1_limits *lim)
{
	struct http1_limits l;

	limits_resolve(lim, &l);
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE;
	d->max_ext = l.max_chunk_ext;
	d->max_trailer = l.max_trailer;
	d->max_fields = l.max_headers;
}

static inline unsigned hexval(unsigned char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(lc(c) - 'a' + 10);
}

/* Fields that change framing, routing or the connection: never accepted
 * from a trailer section (RFC 9110 6.5.1). */
static int trailer_forbidden(const struct http1_chunked *d)
{
	static const char *const names[] = {
		"content-length", "transfer-encoding", "host", "connection",
		"keep-alive", "te", "trailer", "upgrade", "proxy-connection",
		"expect", "content-type", "content-encoding", "content-range",
		"authorization", "proxy-authorization", "set-cookie", "cookie",
	};
	size_t i;

	if (d->name_len > sizeof(d->name))
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == d->name_len
		    && !memcmp(names[i], d->name, d->name_len))
			return 1;
	return 0;
}

static int ch_fail(struct http1_chunked *d, int err)
{
	d->err = err;
	return err;
}

int http1_chunked_feed(struct http1_chunked *d, const char *in, size_t inlen,
                       size_t *consumed, size_t *off, size_t *span)
{
	const unsigned char *b = (const unsigned char *)in, *p = b;
	const unsigned char *e = inlen ? b + inlen : b, *ts = NULL, *q;
	unsigned char c;
	size_t n;

	*consumed = 0;
	*off = 0;
	*span = 0;
	if (d->err)
		return d->err;
	if (d->state == CH_DONE)
		return HTTP1_CHUNKED_DONE;

#define FAIL(x) return ch_fail(d, (x))
#define EXT_BYTE() do { if (++d->ext_len > d->max_ext) \
	FAIL(HTTP1_E_CHUNK_EXT_TOO_LONG); } while (0)
#define TR_BYTES(k) do { d->trailer_len += (k); \
	if (d->trailer_len > d->max_trailer) \
		FAIL(HTTP1_E_TRAILER_TOO_LARGE); } while (0)

	while (p < e) {
		c = *p;
		switch (d->state) {
		case CH_SIZE:
			if (IS(c, C_HEX)) {
				if (d->ndigits == 16)
					FAIL(HTTP1_E_CHUNK_SIZE_OVERFLOW);
				d->size = d->size << 4 | hexval(c);
				d->ndigits++;
				break;
			}
			if (d->ndigits == 0)
				FAIL(HTTP1_E_CHUNK_SIZE);
			if (c == ';') {
				EXT_BYTE();
				d->state = CH_EXT_NAME0;
			} else if (c == '\r') {
				d->state = CH_SIZE_LF;
			} else if (c == '\n') {
				FAIL(HTTP1_E_BARE_LF);
			} else {
				FAIL(HTTP1_E_CHUNK_SIZE);
			}
			break;
		case CH_EXT_NAME0:
		case CH_EXT_VAL0:
			EXT_BYTE();
			if (IS(c, C_TCHAR))
				d->state = d->state == CH_EXT_NAME0 ? CH_EXT_NAME
				                                    : CH_EXT_TOKEN;
			else if (c == '"' && d->state == CH_EXT_VAL0)
				d->state = CH_EXT_QUOTED;
			else
				FAIL(HTTP1_E_CHUNK_EXT);
			break;
		case CH_EXT_NAME:
		case CH_EXT_TOKEN:
		case CH_EXT_QEND:
			if (c == '\r') {
				d->state = CH_SIZE_LF;
				break;
			}
			if (c == '\n')
				FAIL(HTTP1_E_BARE_LF);
			EXT_BYTE();
			if (c == ';')
				d->state = CH_EXT_NAME0;
			else if (c == '=' && d->state == CH_EXT_NAME)
				d->state = CH_EXT_VAL0;
			else if (!IS(c, C_TCHAR) || d->state == CH_EXT_QEND)
				FAIL(HTTP1_E_CHUNK_EXT);
			break;
		case CH_EXT_QUOTED:
			EXT_BYTE();
			if (c == '"')
				d->state = CH_EXT_QEND;
			else if (c == '\\')
				d->state = CH_EXT_QPAIR;
			else if (!IS(c, C_QDTEXT))
				FAIL(HTTP1_E_CHUNK_EXT);
			break;
		case CH_EXT_QPAIR:
			EXT_BYTE();
			if (!IS(c, C_VALUE))
				FAIL(HTTP1_E_CHUNK_EXT);
			d->state = CH_EXT_QUOTED;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				FAIL(HTTP1_E_BARE_CR);
			d->remaining = d->size;
			d->state = d->size ? CH_DATA : CH_TR_START;
			d->size = 0;
			d->ndigits = 0;
			d->ext_len = 0;
			break;
		case CH_DATA:
			n = (size_t)(e - p);
			if ((uint64_t)n > d->remaining)
				n = (size_t)d->remaining;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			*off = (size_t)(p - b);
			*span = n;
			*consumed = (size_t)(p - b) + n;
			return HTTP1_CHUNKED_DATA;
		case CH_DATA_CR:
			if (c != '\r')
				FAIL(HTTP1_E_CHUNK_DATA_END);
			d->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				FAIL(HTTP1_E_CHUNK_DATA_END);
			d->state = CH_SIZE;
			break;
		case CH_TR_START:
			if (c == '\r') {
				if (ts)
					goto trailer_span;
				TR_BYTES(1);
				d->state = CH_FINAL_LF;
				break;
			}
			if (c == '\n')
				FAIL(HTTP1_E_BARE_LF);
			if (c == ' ' || c == '\t')
				FAIL(HTTP1_E_OBS_FOLD);
			if (c == ':')
				FAIL(HTTP1_E_EMPTY_NAME);
			if (!IS(c, C_TCHAR))
				FAIL(HTTP1_E_HEADER_NAME);
			if (d->ntrailers == d->max_fields)
				FAIL(HTTP1_E_TOO_MANY_HEADERS);
			if (!ts)
				ts = p;
			TR_BYTES(1);
			d->name[0] = (char)lc(c);
			d->name_len = 1;
			d->state = CH_TR_NAME;
			break;
		case CH_TR_NAME:
			if (!ts)
				ts = p;
			TR_BYTES(1);
			if (IS(c, C_TCHAR)) {
				if (d->name_len < sizeof(d->name))
					d->name[d->name_len] = (char)lc(c);
				if (d->name_len <= sizeof(d->name))
					d->name_len++;
			} else if (c == ':') {
				if (trailer_forbidden(d))
					FAIL(HTTP1_E_TRAILER_FORBIDDEN);
				d->state = CH_TR_VALUE;
			} else if (c == ' ' || c == '\t') {
				FAIL(HTTP1_E_SPACE_BEFORE_COLON);
			} else if (c == '\r' || c == '\n') {
				FAIL(HTTP1_E_NO_COLON);
			} else {
				FAIL(HTTP1_E_HEADER_NAME);
			}
			break;
		case CH_TR_VALUE:
			if (!ts)
				ts = p;
			q = p;
			p = scan_value(p, e);
			TR_BYTES((size_t)(p - q));
			if (p == e)
				continue;
			TR_BYTES(1);
			if (*p == '\r')
				d->state = CH_TR_LF;
			else if (*p == '\n')
				FAIL(HTTP1_E_BARE_LF);
			else
				FAIL(HTTP1_E_CTL);
			break;
		case CH_TR_LF:
			if (!ts)
				ts = p;
			TR_BYTES(1);
			if (c != '\n')
				FAIL(HTTP1_E_BARE_CR);
			d->ntrailers++;
			d->state = CH_TR_START;
			break;
		case CH_FINAL_LF:
			if (c != '\n')
				FAIL(HTTP1_E_BARE_CR);
			TR_BYTES(1);
			d->state = CH_DONE;
			*consumed = (size_t)(p + 1 - b);
			return HTTP1_CHUNKED_DONE;
		default:
			FAIL(HTTP1_E_CHUNK_SIZE);
		}
		p++;
	}
	if (!ts) {
		*consumed = inlen;
		return HTTP1_CHUNKED_MORE;
	}
trailer_span:
	*off = (size_t)(ts - b);
	*span = (size_t)(p - ts);
	*consumed = (size_t)(p - b);
	return HTTP1_CHUNKED_TRAILER;
#undef FAIL
#undef EXT_BYTE
#undef TR_BYTES
}

/* ------------------------------------------------------------------ */
/* chunked encoder                                                     */

size_t http1_chunk_line(char *out, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 0;
	int shift = 60;

	while (shift > 0 && ((n >> shift) & 0xf) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		out[len++] = hex[(n >> shift) & 0xf];
	out[len++] = '\r';
	out[len++] = '\n';
	return len;
}

int http1_chunk_append(struct buf *b, const void *data, size_t n)
{
	char line[HTTP1_CHUNK_LINE_MAX], *dst;
	size_t ll;

	if (n == 0)
		return 0;
	ll = http1_chunk_line(line, n);
	if (n > SIZE_MAX - ll - 2)
		return -1;
	dst = buf_reserve(b, ll + n + 2);
	if (!dst)
		return -1;
	memcpy(dst, line, ll);
	memcpy(dst + ll, data, n);
	memcpy(dst + ll + n, "\r\n", 2);
	buf_produce(b, ll + n + 2);
	return 0;
}

int http1_chunk_append_last(struct buf *b, const char *trailers, size_t len)
{
	char *dst;

	if (len && fields_scan((const unsigned char *)trailers,
	                       (const unsigned char *)trailers + len,
	                       NULL, 0) < 0)
		return -1;
	if (len > SIZE_MAX - 5)
		return -1;
	dst = buf_reserve(b, len + 5);
	if (!dst)
		return -1;
	memcpy(dst, "0\r\n", 3);
	if (len)
		memcpy(dst + 3, trailers, len);
	memcpy(dst + 3 + len, "\r\n", 2);
	buf_produce(b, len + 5);
	return 0;
}

/* ------------------------------------------------------------------ */
/* serialization                                                       */

int http1_name_is(const char *name, size_t len, const char *lower)
{
	size_t n = strlen(lower);

	return n == len && ieq((const unsigned char *)name, lower, n);
}

int http1_is_hop_by_hop(const struct http1_head *h, const char *name,
                        size_t len)
{
	size_t i;

	switch (len) {
	case 2:
		if (IEQ(name, len, "te"))
			return 1;
		break;
	case 7:
		if (IEQ(name, len, "upgrade"))
			return 1;
		break;
	case 10:
		if (IEQ(name, len, "connection") || IEQ(name, len, "keep-alive"))
			return 1;
		break;
	case 16:
		if (IEQ(name, len, "proxy-connection"))
			return 1;
		break;
	case 17:
		if (IEQ(name, len, "transfer-encoding"))
			return 1;
		break;
	}
	if (!h || IEQ(name, len, "host") || IEQ(name, len, "content-length"))
		return 0;
	for (i = 0; i < h->nconn_opts && i < HTTP1_CONN_MAX_OPTIONS; i++)
		if (ieq2(name, len, h->conn_opts[i].p, h->conn_opts[i].len))
			return 1;
	return 0;
}

int http1_skip_filter(void *arg, const struct http1_header *hdr)
{
	const struct http1_skip *s = arg;
	size_t i;

	for (i = 0; i < s->nnames; i++)
		if (ieq2(hdr->name, hdr->name_len, s->names[i],
		         strlen(s->names[i])))
			return 0;
	if (s->hop && http1_is_hop_by_hop(s->hop, hdr->name, hdr->name_len))
		return 0;
	return 1;
}

static int all_class(const char *s, size_t n, unsigned char cls)
{
	const unsigned char *p = (const unsigned char *)s, *e;

	if (n == 0)
		return 1;
	e = p + n;
	while (p < e && IS(*p, cls))
		p++;
	return p == e;
}

static int field_valid(const struct http1_header *f)
{
	return f->name_len > 0 && all_class(f->name, f->name_len, C_TCHAR)
	       && all_class(f->value, f->value_len, C_VALUE);
}

/* Bounded writer over storage reserved in a buf. */
struct h1w {
	char *p;
	size_t left;
	int bad;
};

static void w_put(struct h1w *w, const void *s, size_t n)
{
	if (n == 0)
		return;
	if (w->bad || n > w->left) {
		w->bad = 1;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
	w->left -= n;
}

static size_t size_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Size of the kept and extra fields plus the final CRLF, or SIZE_MAX if a
 * field is invalid. */
static size_t fields_size(const struct http1_head *h, http1_filter_fn filter,
                          void *arg, const struct http1_header *extra,
                          size_t nextra)
{
	size_t i, total = 2;

	for (i = 0; i < h->nheaders; i++) {
		const struct http1_header *f = &h->headers[i];

		if (filter && !filter(arg, f))
			continue;
		if (!field_valid(f))
			return SIZE_MAX;
		total = size_add(total, size_add(f->name_len,
		                                 size_add(f->value_len, 4)));
	}
	for (i = 0; i < nextra; i++) {
		if (!field_valid(&extra[i]))
			return SIZE_MAX;
		total = size_add(total, size_add(extra[i].name_len,
		                                 size_add(extra[i].value_len, 4)));
	}
	return total;
}

static void fields_write(struct h1w *w, const struct http1_head *h,
                         http1_filter_fn filter, void *arg,
                         const struct http1_header *extra, size_t nextra)
{
	size_t i;

	for (i = 0; i < h->nheaders; i++) {
		const struct http1_header *f = &h->headers[i];

		if (filter && !filter(arg, f))
			continue;
		w_put(w, f->name, f->name_len);
		w_put(w, ": ", 2);
		w_put(w, f->value, f->value_len);
		w_put(w, "\r\n", 2);
	}
	for (i = 0; i < nextra; i++) {
		w_put(w, extra[i].name, extra[i].name_len);
		w_put(w, ": ", 2);
		w_put(w, extra[i].value, extra[i].value_len);
		w_put(w, "\r\n", 2);
	}
	w_put(w, "\r\n", 2);
}

/* A piece of a start line. */
struct h1_piece {
	const char *p;
	size_t n;
};

/*
 * Writes the start line <line>[0, nline), the fields and the final CRLF:
 * sizes everything first, reserves once, and commits only on an exact fit,
 * so a failure leaves <b> as it was.
 */
static int write_head(struct buf *b, const struct h1_piece *line,
                      size_t nline, const struct http1_head *h,
                      http1_filter_fn filter, void *arg,
                      const struct http1_header *extra, size_t nextra)
{
	size_t size = fields_size(h, filter, arg, extra, nextra), i;
	struct h1w w;
	char *dst;

	for (i = 0; i < nline; i++)
		size = size_add(size, line[i].n);
	if (size == SIZE_MAX)
		return -1;
	dst = buf_reserve(b, size);
	if (!dst)
		return -1;
	w.p = dst;
	w.left = size;
	w.bad = 0;
	for (i = 0; i < nline; i++)
		w_put(&w, line[i].p, line[i].n);
	fields_write(&w, h, filter, arg, extra, nextra);
	if (w.bad || w.left)
		return -1;
	buf_produce(b, size);
	return 0;
}

int http1_write_request(struct buf *b, const struct http1_head *h,
                        http1_filter_fn filter, void *arg,
                        const struct http1_header *extra, size_t nextra)
{
	struct h1_piece line[4];

	if (h->version != 10 && h->version != 11)
		return -1;
	if (!h->method_len || !all_class(h->method, h->method_len, C_TCHAR))
		return -1;
	if (!h->target_len || !all_class(h->target, h->target_len, C_TARGET))
		return -1;
	line[0].p = h->method;
	line[0].n = h->method_len;
	line[1].p = " ";
	line[1].n = 1;
	line[2].p = h->target;
	line[2].n = h->target_len;
	line[3].p = h->version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
	line[3].n = 11;
	return write_head(b, line, 4, h, filter, arg, extra, nextra);
}

int http1_write_response(struct buf *b, const struct http1_head *h,
                         http1_filter_fn filter, void *arg,
                         const struct http1_header *extra, size_t nextra)
{
	struct h1_piece line[3];
	char status[13];

	if (h->version != 10 && h->version != 11)
		return -1;
	if (h->status < 100 || h->status > 599)
		return -1;
	if (h->reason_len && !all_class(h->reason, h->reason_len, C_VALUE))
		return -1;
	memcpy(status, h->version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
	status[9] = (char)('0' + h->status / 100);
	status[10] = (char)('0' + h->status / 10 % 10);
	status[11] = (char)('0' + h->status % 10);
	status[12] = ' ';
	line[0].p = status;
	line[0].n = sizeof(status);
	line[1].p = h->reason;
	line[1].n = h->reason_len;
	line[2].p = "\r\n";
	line[2].n = 2;
	return write_head(b, line, 3, h, filter, arg, extra, nextra);
}
