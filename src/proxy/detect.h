/*
 * detect: protocol detection over the first bytes of a new connection.
 *
 * The proxy reads once (up to DETECT_MAX_BYTES, with a timeout) and asks
 * detect_protocol() what the client speaks:
 *  - DETECT_H2: the full 24-byte HTTP/2 preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
 *  - DETECT_TLS: a TLS handshake record (0x16 0x03 0x00..0x04, non-zero
 *    length) carrying a ClientHello (handshake type 1). When the whole
 *    ClientHello is in the buffer (in the first record), its SNI host name
 *    and ALPN protocol list are returned too;
 *  - DETECT_HTTP1: a syntactically plausible HTTP/1 request line: token
 *    method, SP, target (visible ASCII but '#'), SP, "HTTP/1." DIGIT, CRLF;
 *  - DETECT_OPAQUE: anything else, or a plausible HTTP/1 prefix that has no
 *    line end within DETECT_MAX_BYTES;
 *  - DETECT_NEED_MORE: the bytes so far are a prefix of one of the above
 *    but too short to decide. The caller reads more, or treats a timeout
 *    or EOF as opaque.
 *
 * Contracts:
 *  - Pure function; allocates nothing; reads only buf[0, len). Slices in
 *    struct detect_info point into <buf>.
 *  - Decisions are stable: once a result other than DETECT_NEED_MORE is
 *    returned for some bytes, the same bytes followed by anything give the
 *    same result. Only the first DETECT_MAX_BYTES bytes are ever judged.
 *  - TLS details are best effort and never change the result: a ClientHello
 *    split across records, cut by the buffer, or malformed still gives
 *    DETECT_TLS (the TLS engine will judge it), with the details unset.
 */
#ifndef MESHD_PROXY_DETECT_H
#define MESHD_PROXY_DETECT_H

#include <stddef.h>
#include <stdint.h>

#define DETECT_MAX_BYTES 1024
#define DETECT_ALPN_MAX 8      /* ALPN protocols kept from a ClientHello */

enum detect_result {
	DETECT_NEED_MORE = 0,
	DETECT_HTTP1,
	DETECT_H2,
	DETECT_TLS,
	DETECT_OPAQUE,
};

/* TLS ClientHello facts (all zero/NULL unless the result is DETECT_TLS). */
enum detect_hello {
	DETECT_HELLO_PARTIAL = 0, /* not (yet) entirely in the buffer */
	DETECT_HELLO_OK,          /* parsed; sni/alpn set when offered */
	DETECT_HELLO_MALFORMED,   /* complete but malformed: no details */
	DETECT_HELLO_FRAGMENTED,  /* spans several records: not parsed */
};

struct detect_info {
	enum detect_hello hello;  /* ro */
	uint16_t tls_version;     /* ro: ClientHello legacy_version */
	const char *sni;          /* ro: server_name host_name, or NULL */
	size_t sni_len;
	size_t nalpn;             /* ro: entries in alpn[] */
	int alpn_truncated;       /* ro: more than DETECT_ALPN_MAX offered */
	struct {
		const char *p;
		size_t len;
	} alpn[DETECT_ALPN_MAX];  /* ro: protocols in client preference order */
};

/*
 * Classifies buf[0, len) (see the top of this file). <info> may be NULL;
 * when given it is always reset, then filled for DETECT_TLS.
 */
enum detect_result detect_protocol(const char *buf, size_t len,
                                   struct detect_info *info);

/* "need-more", "http1", "h2", "tls", "opaque". */
const char *detect_result_str(enum detect_result r);

/* 1 when the ClientHello offered the ALPN protocol <proto>. */
int detect_alpn_offered(const struct detect_info *info, const char *proto);

#endif
