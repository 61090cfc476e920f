/*
 * http: HTTP/1.1 message heads and chunked bodies, for abc-app's server
 * and client sides.
 *
 * A deliberately small parser (the proxy has its own strict one), yet safe
 * on any input: it never allocates, never reads outside the bytes it is
 * given, and refuses what it does not understand rather than guessing.
 *
 * Contracts:
 *  - http_parse_request/http_parse_response look at the bytes at the start
 *    of a buffer. They return the length of the complete head (request or
 *    status line, header lines, empty line) when there is one, 0 when more
 *    bytes are needed, and -1 when the bytes can never become a valid head.
 *    The caller bounds how many bytes it is willing to wait for.
 *  - On success every struct str in <m> points into the caller's buffer and
 *    stays valid as long as those bytes do.
 *  - Refused: bare CR, NUL and other control bytes, obsolete line folding,
 *    white space before a header colon, versions other than HTTP/1.0 and
 *    HTTP/1.1, more than HTTP_MAX_HEADERS headers, a malformed or
 *    conflicting Content-Length, any Transfer-Encoding but "chunked", and
 *    Transfer-Encoding together with Content-Length (request smuggling).
 *    Line ends may be CRLF or a bare LF.
 *  - The chunked decoder is resumable: feed it bytes as they come.
 */
#ifndef ABC_HTTP_H
#define ABC_HTTP_H

#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"

#define HTTP_MAX_HEADERS 64

struct http_header {
	struct str name;
	struct str value;
};

struct http_msg {
	struct str method;        /* request: the method */
	struct str target;        /* request: the request-target */
	int status;               /* response: 100..999 */
	int minor;                /* HTTP/1.<minor>: 0 or 1 */
	size_t nhdr;
	struct http_header hdr[HTTP_MAX_HEADERS];
	uint64_t content_length;  /* valid when has_length */
	int has_length;           /* a Content-Length header was present */
	int chunked;              /* Transfer-Encoding: chunked */
	int keep_alive;           /* the connection may carry another message */
	int expect_continue;      /* Expect: 100-continue */
};

ssize_t http_parse_request(const char *p, size_t len, struct http_msg *m);
ssize_t http_parse_response(const char *p, size_t len, struct http_msg *m);

/* The value of the first header named <name> (any case), or STR_NULL. */
struct str http_header_get(const struct http_msg *m, const char *name);

/* Decoder state of a chunked body. Zero it (or http_chunked_init) first. */
struct http_chunked {
	int state;                /* private */
	uint64_t left;            /* private: bytes left in the current chunk */
	unsigned ndigits;         /* private: size digits seen */
	size_t linelen;           /* private: extension or trailer bytes */
};

void http_chunked_init(struct http_chunked *c);

/*
 * Consumes framing bytes from <in> and at most one run of payload.
 * Returns the bytes consumed (0 only when <len> is 0 or the body is already
 * complete), or -1 on a malformed body. Payload among the consumed bytes is
 * reported through <*data>/<*datalen> (<*datalen> is 0 when there is none);
 * it points into <in>. Never consumes past the end of the body, so bytes of
 * a pipelined next message stay with the caller.
 */
ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
                          const char **data, size_t *datalen);

/* 1 once the last chunk and the trailer section have been consumed. */
int http_chunked_done(const struct http_chunked *c);

/* The reason phrase of <status> ("OK", "Not Found", ...; "" if unknown). */
const char *http_reason(int status);

#endif
