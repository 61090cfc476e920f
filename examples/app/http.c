/*
 * http: HTTP/1.1 heads and chunked bodies. See http.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * A head is parsed in one pass over the bytes buffered so far; when its
 * end is not there yet the next call starts again from the beginning. Heads
 * are a few hundred bytes and capped by the caller, so re-scanning is
 * cheaper than keeping parser state.
 */
#include <string.h>

#include "core/util.h"
#include "http.h"

/* Leading empty lines tolerated before a request line (RFC 9112 2.2). */
#define HTTP_MAX_LEADING_EMPTY 4
/* Bytes of chunk extensions per size line, and of the whole trailer. */
#define HTTP_CHUNK_EXT_MAX 1024
#define HTTP_TRAILER_MAX 8192

enum http_chunked_st {
	HTTP_CH_SIZE,          /* hex digits of a chunk size */
	HTTP_CH_EXT,           /* chunk extensions, up to the end of line */
	HTTP_CH_SIZE_LF,       /* LF after the size line's CR */
	HTTP_CH_DATA,          /* chunk payload */
	HTTP_CH_DATA_CR,       /* CR (or LF) after the payload */
	HTTP_CH_DATA_LF,       /* LF after the payload's CR */
	HTTP_CH_TRAILER,       /* start of a trailer line or the final empty line */
	HTTP_CH_TRAILER_LINE,  /* inside a trailer line */
	HTTP_CH_TRAILER_LF,    /* LF of the final empty line */
	HTTP_CH_DONE,          /* body complete */
};

static int http_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int http_is_token(struct str s)
{
	size_t i;

	if (!s.len)
		return 0;
	for (i = 0; i < s.len; i++)
		if (!http_is_tchar((unsigned char)s.p[i]))
			return 0;
	return 1;
}

/*
 * The line starting at <off>: returns the offset just past its LF and
 * stores the line, without its CR LF, in <*line>. Returns 0 when the LF has
 * not arrived, -1 on a control byte (tab excepted) or a CR not followed by
 * LF.
 */
static ssize_t http_line(const char *p, size_t len, size_t off,
                         struct str *line)
{
	size_t i, end;
	unsigned char ch;

	for (i = off; i < len; i++) {
		ch = (unsigned char)p[i];
		if (ch == '\n') {
			end = i;
			if (end > off && p[end - 1] == '\r')
				end--;
			*line = str_make(p + off, end - off);
			return (ssize_t)(i + 1);
		}
		if (ch == '\r') {
			if (i + 1 < len && p[i + 1] != '\n')
				return -1;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -1;
	}
	return 0;
}

/* "HTTP/1.0" or "HTTP/1.1": stores the minor version; -1 otherwise. */
static int http_version(struct str s, int *minor)
{
	if (s.len != 8 || memcmp(s.p, "HTTP/1.", 7) != 0)
		return -1;
	if (s.p[7] != '0' && s.p[7] != '1')
		return -1;
	*minor = s.p[7] - '0';
	return 0;
}

static int http_request_line(struct str line, struct http_msg *m)
{
	ssize_t sp1 = str_find_char(line, ' ');
	ssize_t sp2 = str_rfind_char(line, ' ');
	size_t i;

	if (sp1 <= 0 || sp2 <= sp1 + 1)
		return -1;
	m->method = str_make(line.p, (size_t)sp1);
	m->target = str_make(line.p + sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (!http_is_token(m->method))
		return -1;
	for (i = 0; i < m->target.len; i++)
		if ((unsigned char)m->target.p[i] <= 0x20)
			return -1;
	return http_version(str_sub(line, (size_t)sp2 + 1, line.len), &m->minor);
}

static int http_status_line(struct str line, struct http_msg *m)
{
	const char *d;

	/* "HTTP/1.1 200" with or without " reason" */
	if (line.len < 12 || (line.len > 12 && line.p[12] != ' ') ||
	    line.p[8] != ' ')
		return -1;
	if (http_version(str_make(line.p, 8), &m->minor) < 0)
		return -1;
	d = line.p + 9;
	if (d[0] < '1' || d[0] > '9' || d[1] < '0' || d[1] > '9' ||
	    d[2] < '0' || d[2] > '9')
		return -1;
	m->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	return 0;
}

/* Fills the framing and connection fields from the headers. */
static int http_derive(struct http_msg *m)
{
	struct str rest, tok;
	uint64_t n;
	int close = 0, keep = 0;
	size_t i;

	for (i = 0; i < m->nhdr; i++) {
		struct str name = m->hdr[i].name, v = m->hdr[i].value;

		if (str_ieq_cstr(name, "content-length")) {
			if (str_to_u64(v, &n) < 0)
				return -1;
			if (m->has_length && n != m->content_length)
				return -1;
			m->content_length = n;
			m->has_length = 1;
		} else if (str_ieq_cstr(name, "transfer-encoding")) {
			if (m->chunked || !str_ieq_cstr(v, "chunked"))
				return -1;
			m->chunked = 1;
		} else if (str_ieq_cstr(name, "connection")) {
			rest = v;
			while (str_next_token(&rest, ',', &tok)) {
				tok = str_trim_ows(tok);
				if (str_ieq_cstr(tok, "close"))
					close = 1;
				else if (str_ieq_cstr(tok, "keep-alive"))
					keep = 1;
			}
		} else if (str_ieq_cstr(name, "expect")) {
			m->expect_continue = str_ieq_cstr(v, "100-continue");
		}
	}
	if (m->chunked && (m->has_length || m->minor == 0))
		return -1;
	m->keep_alive = m->minor ? !close : keep && !close;
	return 0;
}

static ssize_t http_parse(const char *p, size_t len, struct http_msg *m,
                          int request)
{
	struct str line, name, value;
	size_t off = 0, empty = 0;
	ssize_t n, colon;

	memset(m, 0, sizeof(*m));
	for (;;) {
		n = http_line(p, len, off, &line);
		if (n <= 0)
			return n;
		off = (size_t)n;
		if (line.len || !request)
			break;
		if (++empty > HTTP_MAX_LEADING_EMPTY)
			return -1;
	}
	if ((request ? http_request_line(line, m) : http_status_line(line, m)) < 0)
		return -1;

	for (;;) {
		n = http_line(p, len, off, &line);
		if (n <= 0)
			return n;
		off = (size_t)n;
		if (!line.len)
			break;
		if (line.p[0] == ' ' || line.p[0] == '\t')
			return -1;              /* obsolete line folding */
		if (m->nhdr == HTTP_MAX_HEADERS)
			return -1;
		colon = str_find_char(line, ':');
		if (colon <= 0)
			return -1;
		name = str_make(line.p, (size_t)colon);
		if (!http_is_token(name))
			return -1;              /* also white space before ':' */
		value = str_trim_ows(str_sub(line, (size_t)colon + 1, line.len));
		m->hdr[m->nhdr].name = name;
		m->hdr[m->nhdr].value = value;
		m->nhdr++;
	}
	if (http_derive(m) < 0)
		return -1;
	return (ssize_t)off;
}

ssize_t http_parse_request(const char *p, size_t len, struct http_msg *m)
{
	return http_parse(p, len, m, 1);
}

ssize_t http_parse_response(const char *p, size_t len, struct http_msg *m)
{
	return http_parse(p, len, m, 0);
}

struct str http_header_get(const struct http_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nhdr; i++)
		if (str_ieq_cstr(m->hdr[i].name, name))
			return m->hdr[i].value;
	return STR_NULL;
}

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = HTTP_CH_SIZE;
}

static int http_hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The size line is complete: payload follows, or the trailer section. */
static void http_chunked_size_end(struct http_chunked *c)
{
	c->state = c->left ? HTTP_CH_DATA : HTTP_CH_TRAILER;
	c->ndigits = 0;
	c->linelen = 0;
}

static int http_is_ctl(unsigned char ch)
{
	return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
                          const char **data, size_t *datalen)
{
	unsigned char ch;
	size_t i = 0, n;
	int v;

	*data = NULL;
	*datalen = 0;
	while (i < len) {
		ch = (unsigned char)in[i];
		switch (c->state) {
		case HTTP_CH_SIZE:
			v = http_hexval(ch);
			if (v >= 0) {
				/* 15 digits: sizes stay below 2^60 */
				if (c->ndigits == 15)
					return -1;
				c->left = c->left << 4 | (uint64_t)v;
				c->ndigits++;
			} else if (!c->ndigits) {
				return -1;
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = HTTP_CH_EXT;
			} else if (ch == '\r') {
				c->state = HTTP_CH_SIZE_LF;
			} else if (ch == '\n') {
				http_chunked_size_end(c);
			} else {
				return -1;
			}
			i++;
			break;
		case HTTP_CH_EXT:
			if (ch == '\r')
				c->state = HTTP_CH_SIZE_LF;
			else if (ch == '\n')
				http_chunked_size_end(c);
			else if (http_is_ctl(ch) ||
			         ++c->linelen > HTTP_CHUNK_EXT_MAX)
				return -1;
			i++;
			break;
		case HTTP_CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			http_chunked_size_end(c);
			i++;
			break;
		case HTTP_CH_DATA:
			n = len - i;
			if (n > c->left)
				n = (size_t)c->left;
			*data = in + i;
			*datalen = n;
			c->left -= n;
			if (!c->left)
				c->state = HTTP_CH_DATA_CR;
			return (ssize_t)(i + n);
		case HTTP_CH_DATA_CR:
		case HTTP_CH_DATA_LF:
			if (ch == '\r' && c->state == HTTP_CH_DATA_CR)
				c->state = HTTP_CH_DATA_LF;
			else if (ch == '\n')
				c->state = HTTP_CH_SIZE;
			else
				return -1;
			i++;
			break;
		case HTTP_CH_TRAILER:
			if (ch == '\r') {
				c->state = HTTP_CH_TRAILER_LF;
			} else if (ch == '\n') {
				c->state = HTTP_CH_DONE;
				return (ssize_t)(i + 1);
			} else {
				c->state = HTTP_CH_TRAILER_LINE;
				continue;
			}
			i++;
			break;
		case HTTP_CH_TRAILER_LINE:
			if (++c->linelen > HTTP_TRAILER_MAX)
				return -1;
			if (ch == '\n')
				c->state = HTTP_CH_TRAILER;
			else if (ch != '\r' && http_is_ctl(ch))
				return -1;
			i++;
			break;
		case HTTP_CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			c->state = HTTP_CH_DONE;
			return (ssize_t)(i + 1);
		default:
			return (ssize_t)i;
		}
	}
	return (ssize_t)i;
}

int http_chunked_done(const struct http_chunked *c)
{
	return c->state == HTTP_CH_DONE;
}

const char *http_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} tab[] = {
		{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" },
		{ 202, "Accepted" }, { 204, "No Content" },
		{ 206, "Partial Content" }, { 301, "Moved Permanently" },
		{ 302, "Found" }, { 304, "Not Modified" },
		{ 307, "Temporary Redirect" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 409, "Conflict" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tab); i++)
		if (tab[i].status == status)
			return tab[i].reason;
	return "";
}
