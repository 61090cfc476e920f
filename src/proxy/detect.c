/*
 * detect: classify the first bytes of a connection. See detect.h.
 *
 * IMPLEMENTATION NOTES
 * - Order: a first byte of 0x16 can only be TLS (it is not a token byte);
 *   then the HTTP/2 preface; then the HTTP/1 request line. "PRI * HTTP/"
 *   is a prefix of both the preface and a plausible HTTP/1 line; the
 *   preface wins until it is contradicted.
 * - Every decision depends only on bytes already seen, and the HTTP/1 scan
 *   never looks past DETECT_MAX_BYTES, which is what keeps results stable
 *   when more bytes arrive.
 * - The ClientHello reader is a bounds-checked cursor (struct rd): every
 *   read checks the remaining length first and marks the cursor bad
 *   instead of reading past the end.
 */
#include <string.h>

#include "proxy/detect.h"

static const char detect_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof(detect_preface) - 1)

#define TLS_HANDSHAKE 0x16
#define TLS_CLIENT_HELLO 0x01
#define TLS_MAX_RECORD 16384
#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_ALPN 16

const char *detect_result_str(enum detect_result r)
{
	switch (r) {
	case DETECT_NEED_MORE: return "need-more";
	case DETECT_HTTP1: return "http1";
	case DETECT_H2: return "h2";
	case DETECT_TLS: return "tls";
	case DETECT_OPAQUE: return "opaque";
	}
	return "?";
}

/* ------------------------------------------------------------------ */
/* TLS ClientHello                                                     */

struct rd {
	const unsigned char *p;
	size_t left;
	int bad;
};

static unsigned rd_u8(struct rd *r)
{
	if (r->bad || r->left < 1) {
		r->bad = 1;
		return 0;
	}
	r->left--;
	return *r->p++;
}

static unsigned rd_u16(struct rd *r)
{
	unsigned hi = rd_u8(r);

	return hi << 8 | rd_u8(r);
}

/* Returns a pointer to the next <n> bytes and skips them, or NULL. */
static const unsigned char *rd_take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

/* Sub-reader over the next <n> bytes of <r>. */
static struct rd rd_sub(struct rd *r, size_t n)
{
	struct rd s;

	s.p = rd_take(r, n);
	s.left = s.p ? n : 0;
	s.bad = s.p == NULL;
	return s;
}

/* server_name extension: one host_name (RFC 6066 3). */
static int parse_sni(struct rd *ext, struct detect_info *info)
{
	struct rd list = rd_sub(ext, rd_u16(ext));
	const unsigned char *name;
	unsigned type;
	size_t n, i;

	if (ext->bad || ext->left || list.left == 0)
		return -1;
	while (list.left) {
		type = rd_u8(&list);
		n = rd_u16(&list);
		name = rd_take(&list, n);
		if (list.bad || n == 0)
			return -1;
		if (type != 0)
			continue;
		if (info->sni || n > 255)
			return -1;
		for (i = 0; i < n; i++)
			if (name[i] <= 0x20 || name[i] >= 0x7f)
				return -1;
		info->sni = (const char *)name;
		info->sni_len = n;
	}
	return 0;
}

/* application_layer_protocol_negotiation (RFC 7301 3.1). */
static int parse_alpn(struct rd *ext, struct detect_info *info)
{
	struct rd list = rd_sub(ext, rd_u16(ext));
	const unsigned char *name;
	size_t n;

	if (ext->bad || ext->left || list.left < 2)
		return -1;
	while (list.left) {
		n = rd_u8(&list);
		name = rd_take(&list, n);
		if (list.bad || n == 0)
			return -1;
		if (info->nalpn == DETECT_ALPN_MAX) {
			info->alpn_truncated = 1;
			continue;
		}
		info->alpn[info->nalpn].p = (const char *)name;
		info->alpn[info->nalpn].len = n;
		info->nalpn++;
	}
	return 0;
}

/* ClientHello body (after the 4-byte handshake header). */
static int parse_hello(struct rd *r, struct detect_info *info)
{
	struct rd exts, ext;
	unsigned type, n, seen_sni = 0, seen_alpn = 0;

	info->tls_version = (uint16_t)rd_u16(r);
	rd_take(r, 32);                   /* random */
	n = rd_u8(r);                     /* legacy_session_id */
	if (n > 32)
		return -1;
	rd_take(r, n);
	n = rd_u16(r);                    /* cipher_suites */
	if (n < 2 || n % 2)
		return -1;
	rd_take(r, n);
	n = rd_u8(r);                     /* legacy_compression_methods */
	if (n < 1)
		return -1;
	rd_take(r, n);
	if (r->bad)
		return -1;
	if (r->left == 0)
		return 0;                 /* no extensions */
	exts = rd_sub(r, rd_u16(r));
	if (r->bad || r->left)
		return -1;
	while (exts.left) {
		type = rd_u16(&exts);
		ext = rd_sub(&exts, rd_u16(&exts));
		if (exts.bad)
			return -1;
		if (type == TLS_EXT_SERVER_NAME) {
			if (seen_sni++ || parse_sni(&ext, info))
				return -1;
		} else if (type == TLS_EXT_ALPN) {
			if (seen_alpn++ || parse_alpn(&ext, info))
				return -1;
		}
	}
	return 0;
}

static enum detect_result detect_tls(const unsigned char *b, size_t len,
                                     struct detect_info *info)
{
	size_t rec_len, hs_len;
	struct rd r;

	/* record header: 0x16, 0x03, 0x00..0x04, length; then type 1 */
	if (len < 2)
		return DETECT_NEED_MORE;
	if (b[1] != 0x03)
		return DETECT_OPAQUE;
	if (len < 3)
		return DETECT_NEED_MORE;
	if (b[2] > 0x04)
		return DETECT_OPAQUE;
	if (len < 5)
		return DETECT_NEED_MORE;
	rec_len = (size_t)b[3] << 8 | b[4];
	if (rec_len == 0 || rec_len > TLS_MAX_RECORD)
		return DETECT_OPAQUE;
	if (len < 6)
		return DETECT_NEED_MORE;
	if (b[5] != TLS_CLIENT_HELLO)
		return DETECT_OPAQUE;
	if (!info)
		return DETECT_TLS;

	/* best-effort details */
	if (rec_len < 4) {
		info->hello = DETECT_HELLO_FRAGMENTED;
		return DETECT_TLS;
	}
	if (len < 9)
		return DETECT_TLS;
	hs_len = (size_t)b[6] << 16 | (size_t)b[7] << 8 | b[8];
	if (hs_len + 4 > rec_len) {
		info->hello = DETECT_HELLO_FRAGMENTED;
		return DETECT_TLS;
	}
	if (len < 9 + hs_len)
		return DETECT_TLS;
	r.p = b + 9;
	r.left = hs_len;
	r.bad = 0;
	if (parse_hello(&r, info) || r.bad) {
		memset(info, 0, sizeof(*info));
		info->hello = DETECT_HELLO_MALFORMED;
		return DETECT_TLS;
	}
	info->hello = DETECT_HELLO_OK;
	return DETECT_TLS;
}

/* ------------------------------------------------------------------ */
/* HTTP/1 request line                                                 */

static inline int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '.': case '^': case '_':
	case '`': case '|': case '~':
		return 1;
	}
	return 0;
}

static inline int is_target(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

/* method SP target SP "HTTP/1." DIGIT CRLF, judged on at most
 * DETECT_MAX_BYTES bytes. */
static enum detect_result detect_http1(const unsigned char *b, size_t len)
{
	static const char ver[] = "HTTP/1.";
	size_t n = len < DETECT_MAX_BYTES ? len : DETECT_MAX_BYTES;
	size_t i = 0, start, k;
	int ok;

	while (i < n && is_tchar(b[i]))
		i++;
	if (i == n)
		goto more;
	if (i == 0 || b[i] != ' ')
		return DETECT_OPAQUE;
	start = ++i;
	while (i < n && is_target(b[i]))
		i++;
	if (i == n)
		goto more;
	if (i == start || b[i] != ' ')
		return DETECT_OPAQUE;
	i++;
	for (k = 0; k < sizeof(ver) - 1 + 3; k++, i++) {
		if (i == n)
			goto more;
		if (k < sizeof(ver) - 1)
			ok = b[i] == (unsigned char)ver[k];
		else if (k == sizeof(ver) - 1)
			ok = b[i] >= '0' && b[i] <= '9';
		else if (k == sizeof(ver))
			ok = b[i] == '\r';
		else
			ok = b[i] == '\n';
		if (!ok)
			return DETECT_OPAQUE;
	}
	return DETECT_HTTP1;
more:
	return len >= DETECT_MAX_BYTES ? DETECT_OPAQUE : DETECT_NEED_MORE;
}

enum detect_result detect_protocol(const char *buf, size_t len,
                                   struct detect_info *info)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t n;

	if (info)
		memset(info, 0, sizeof(*info));
	if (len == 0)
		return DETECT_NEED_MORE;
	if (b[0] == TLS_HANDSHAKE)
		return detect_tls(b, len, info);
	n = len < PREFACE_LEN ? len : PREFACE_LEN;
	if (memcmp(b, detect_preface, n) == 0)
		return len >= PREFACE_LEN ? DETECT_H2 : DETECT_NEED_MORE;
	return detect_http1(b, len);
}

int detect_alpn_offered(const struct detect_info *info, const char *proto)
{
	size_t i, n = strlen(proto);

	for (i = 0; i < info->nalpn; i++)
		if (info->alpn[i].len == n && !memcmp(info->alpn[i].p, proto, n))
			return 1;
	return 0;
}
