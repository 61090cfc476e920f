/*
 * http1: strict, allocation-free HTTP/1.1 message parsing (RFC 9112).
 *
 * What is here:
 *  - head parsers for requests and responses that fill a struct http1_head
 *    with slices into the caller's buffer and with the framing facts the
 *    proxy needs (content length, chunked, keep-alive, upgrade, expect,
 *    host, connection options);
 *  - a resumable chunked-body decoder and a chunk encoder;
 *  - the message-body rules of RFC 9112 section 6.3 (which framing applies);
 *  - head serialization into a struct buf, with a header filter and extra
 *    headers, for the proxy's rewrites.
 *
 * Contracts:
 *  - Nothing here allocates. Every pointer in a parsed struct http1_head
 *    points into the buffer given to the parser; the caller MUST keep that
 *    buffer unchanged while it uses the head.
 *  - Parsers are strict: anything RFC 9112 lets a recipient reject, and
 *    anything known to cause request smuggling, is refused with a distinct
 *    negative HTTP1_E_* code (http1_strerror names it, http1_err_status
 *    suggests the status to answer). The proxy answers and closes; it never
 *    tries to repair a message. docs/http1.md lists the rules and why.
 *  - Head parsers are pure functions of (buf, len, limits): they keep no
 *    state between calls, so after a short read the caller calls again with
 *    the longer buffer. Bytes are judged left to right, so an error is
 *    reported as soon as the bytes that prove it have arrived, and a prefix
 *    of an input returns either 0 or the same result as the whole input.
 *    To keep slow clients from costing quadratic time, callers SHOULD use
 *    http1_head_end() on each new read and parse only once it finds the
 *    end of the head (or the buffer reaches lim->max_head).
 *  - The chunked decoder keeps its state in a caller-owned struct and may be
 *    fed any split of the input, down to one byte at a time, with the same
 *    result. Errors are sticky.
 */
#ifndef MESHD_CORE_HTTP1_H
#define MESHD_CORE_HTTP1_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* Error codes. All negative; 0 and positive values are never errors. */
enum http1_err {
	HTTP1_E_HEAD_TOO_LARGE = -1,    /* head longer than max_head */
	HTTP1_E_LINE_TOO_LONG = -2,     /* request/status line > max_line */
	HTTP1_E_TOO_MANY_HEADERS = -3,  /* more fields than max_headers */
	HTTP1_E_BARE_LF = -4,           /* LF not preceded by CR */
	HTTP1_E_BARE_CR = -5,           /* CR not followed by LF */
	HTTP1_E_CTL = -6,               /* NUL or control byte in a value */
	HTTP1_E_REQUEST_LINE = -7,      /* malformed request line */
	HTTP1_E_METHOD = -8,            /* method is not a token */
	HTTP1_E_TARGET = -9,            /* invalid request target */
	HTTP1_E_VERSION = -10,          /* malformed HTTP-version */
	HTTP1_E_VERSION_UNSUPPORTED = -11, /* well formed, not 1.0 or 1.1 */
	HTTP1_E_H2_PREFACE = -12,       /* "PRI * HTTP/2.0": an HTTP/2 client */
	HTTP1_E_HTTP09 = -13,           /* request line without a version */
	HTTP1_E_STATUS_LINE = -14,      /* malformed status line */
	HTTP1_E_STATUS = -15,           /* status code outside 100..599 */
	HTTP1_E_OBS_FOLD = -16,         /* field line starts with SP/HTAB */
	HTTP1_E_EMPTY_NAME = -17,       /* field line starts with ':' */
	HTTP1_E_HEADER_NAME = -18,      /* byte not allowed in a field name */
	HTTP1_E_SPACE_BEFORE_COLON = -19, /* "Name : value" */
	HTTP1_E_NO_COLON = -20,         /* field line without ':' */
	HTTP1_E_CL_INVALID = -21,       /* Content-Length not 1*DIGIT or too big */
	HTTP1_E_CL_DUP = -22,           /* Content-Length given twice */
	HTTP1_E_CL_TE = -23,            /* Content-Length and Transfer-Encoding */
	HTTP1_E_TE_SYNTAX = -24,        /* Transfer-Encoding not a token list */
	HTTP1_E_TE_INVALID = -25,       /* chunked missing, not final, repeated */
	HTTP1_E_TE_UNSUPPORTED = -26,   /* codings before chunked (gzip, ...) */
	HTTP1_E_TE_DUP = -27,           /* Transfer-Encoding given twice */
	HTTP1_E_TE_HTTP10 = -28,        /* Transfer-Encoding in HTTP/1.0 */
	HTTP1_E_HOST_MISSING = -29,     /* HTTP/1.1 request without Host */
	HTTP1_E_HOST_DUP = -30,         /* more than one Host */
	HTTP1_E_HOST_INVALID = -31,     /* Host or target authority malformed */
	HTTP1_E_CONNECTION = -32,       /* bad Connection: malformed, too many
	                                 * options, or names Host/Content-Length */
	HTTP1_E_UPGRADE = -33,          /* malformed Upgrade */
	HTTP1_E_FRAMING_FORBIDDEN = -34, /* TE or CL != 0 in a 1xx/204 response */
	HTTP1_E_CONNECT = -35,          /* CONNECT request (valid, but refused) */
	HTTP1_E_CHUNK_SIZE = -36,       /* chunk size not 1*HEXDIG then ; or CRLF */
	HTTP1_E_CHUNK_SIZE_OVERFLOW = -37, /* more than 16 hex digits */
	HTTP1_E_CHUNK_EXT = -38,        /* malformed chunk extension */
	HTTP1_E_CHUNK_EXT_TOO_LONG = -39, /* extensions longer than max_chunk_ext */
	HTTP1_E_CHUNK_DATA_END = -40,   /* chunk data not followed by CRLF */
	HTTP1_E_TRAILER_TOO_LARGE = -41, /* trailer section > max_trailer */
	HTTP1_E_TRAILER_FORBIDDEN = -42, /* framing/routing field in trailers */
	HTTP1_E_TRUNCATED = -43,        /* field block ends inside a line */
};
#define HTTP1_E_MIN HTTP1_E_TRUNCATED

/* Text for an HTTP1_E_* code (never NULL; "unknown error" for others). */
const char *http1_strerror(int err);
/* Status a server should answer a request refused with <err>: 400, 414,
 * 431, 501 or 505; 0 for HTTP1_E_H2_PREFACE (not an HTTP/1 peer: close).
 * Response errors are the upstream's fault: the proxy answers 502. */
int http1_err_status(int err);

/* Hard limits. Zero fields take the default. */
struct http1_limits {
	size_t max_head;       /* start line + fields + CRLF; default 64 KiB */
	size_t max_line;       /* start line incl. CRLF; default 8 KiB */
	size_t max_headers;    /* field lines per head or trailer; default 100 */
	size_t max_chunk_ext;  /* chunk-ext bytes per chunk line; default 4 KiB */
	size_t max_trailer;    /* trailer section bytes; default 16 KiB */
};
#define HTTP1_DEF_MAX_HEAD     65536
#define HTTP1_DEF_MAX_LINE     8192
#define HTTP1_DEF_MAX_HEADERS  100
#define HTTP1_DEF_MAX_CHUNK_EXT 4096
#define HTTP1_DEF_MAX_TRAILER  16384
/* Content-Length values above this are refused (fits off_t and int64_t). */
#define HTTP1_MAX_CONTENT_LENGTH INT64_MAX
/* Other Connection options (beyond close/keep-alive/upgrade/te) kept. */
#define HTTP1_CONN_MAX_OPTIONS 8

struct http1_header {
	const char *name;   /* token, case preserved */
	const char *value;  /* leading and trailing SP/HTAB removed */
	size_t name_len;
	size_t value_len;
};

enum http1_method {
	HTTP1_M_OTHER = 0,  /* any other token (methods are case-sensitive) */
	HTTP1_M_GET,
	HTTP1_M_HEAD,
	HTTP1_M_POST,
	HTTP1_M_PUT,
	HTTP1_M_DELETE,
	HTTP1_M_CONNECT,
	HTTP1_M_OPTIONS,
	HTTP1_M_TRACE,
	HTTP1_M_PATCH,
};

enum http1_target_form {
	HTTP1_T_ORIGIN = 0, /* "/path?query" */
	HTTP1_T_ABSOLUTE,   /* "http://authority/path?query" */
	HTTP1_T_AUTHORITY,  /* "host:port" (CONNECT only) */
	HTTP1_T_ASTERISK,   /* "*" (OPTIONS only) */
};

/* http1_head.flags */
#define HTTP1_F_CONTENT_LENGTH  0x0001 /* Content-Length present (value in content_length) */
#define HTTP1_F_CHUNKED         0x0002 /* Transfer-Encoding: chunked */
#define HTTP1_F_KEEP_ALIVE      0x0004 /* connection persists after this message (per version and Connection) */
#define HTTP1_F_UPGRADE         0x0008 /* Upgrade present and listed in Connection (1.1 only) */
#define HTTP1_F_EXPECT_CONTINUE 0x0010 /* Expect: 100-continue (1.1 requests) */
#define HTTP1_F_EXPECT_OTHER    0x0020 /* Expect with another value (answer 417) */
#define HTTP1_F_TE_TRAILERS     0x0040 /* TE lists "trailers" */
#define HTTP1_F_HOST_MISMATCH   0x0080 /* absolute-form authority differs from Host */
#define HTTP1_F_CONN_CLOSE      0x0100 /* Connection: close */
#define HTTP1_F_CONN_KEEP_ALIVE 0x0200 /* Connection: keep-alive */
#define HTTP1_F_CONN_UPGRADE    0x0400 /* Connection: upgrade */
#define HTTP1_F_CONN_TE         0x0800 /* Connection: te */

struct http1_head {
	/* set by the caller (http1_head_init), never changed by a parser */
	struct http1_header *headers; /* rw: caller's array */
	size_t headers_cap;           /* rw: entries in <headers> */

	/* ro: filled by a parser; every pointer is into the parsed buffer */
	size_t nheaders;
	size_t head_len;              /* bytes of the head incl. final CRLF */
	int version;                  /* 10 (HTTP/1.0) or 11 (HTTP/1.1) */
	unsigned flags;               /* HTTP1_F_* */
	uint64_t content_length;      /* valid with HTTP1_F_CONTENT_LENGTH */
	unsigned host_count;          /* Host field lines seen (<= 1 on success) */

	/* requests */
	enum http1_method method_id;
	enum http1_target_form target_form;
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	/* Path and query: the whole target in origin form, the part after the
	 * authority in absolute form (empty means "/"), "*" in asterisk form,
	 * empty in authority form. */
	const char *path;
	size_t path_len;
	/* Where the request goes: the absolute-form or authority-form authority
	 * if any (it wins over Host, RFC 9112 3.2.2), else the Host value.
	 * NULL when neither exists (HTTP/1.0 without Host). */
	const char *authority;
	size_t authority_len;

	/* responses */
	int status;
	const char *reason;
	size_t reason_len;

	/* Upgrade: the first protocol offered/chosen ("websocket", "h2c"),
	 * set whenever an Upgrade field is present (see HTTP1_F_UPGRADE). */
	const char *upgrade;
	size_t upgrade_len;

	/* Connection options other than close/keep-alive/upgrade/te: the
	 * names of further hop-by-hop fields (http1_is_hop_by_hop). */
	size_t nconn_opts;
	struct {
		const char *p;
		size_t len;
	} conn_opts[HTTP1_CONN_MAX_OPTIONS];
};

/* Prepares <h> to receive up to <cap> fields into <headers>. */
void http1_head_init(struct http1_head *h, struct http1_header *headers,
                     size_t cap);

/*
 * Parses a request head at the start of buf[0, len).
 * Returns the head length (> 0; the body or the next request starts
 * there), 0 when the head is not complete yet (read more), or an
 * HTTP1_E_* code. A buffer of max_head bytes or more that holds no
 * complete head gives HTTP1_E_HEAD_TOO_LARGE. <lim> may be NULL (defaults).
 * At most min(lim->max_headers, h->headers_cap) fields are accepted.
 * A complete, valid CONNECT request fills <h> and returns HTTP1_E_CONNECT.
 * <h> is meaningful only after a return > 0 (or HTTP1_E_CONNECT).
 */
int http1_parse_request(const char *buf, size_t len,
                        const struct http1_limits *lim, struct http1_head *h);

/* Same for a response head ("HTTP/1.1 200 OK\r\n..."). */
int http1_parse_response(const char *buf, size_t len,
                         const struct http1_limits *lim, struct http1_head *h);

/*
 * Cheap completeness check for a head arriving in pieces: looks for the
 * CRLF CRLF that ends a head in buf[0, len), examining only line feeds at
 * or after <from> (pass the length given to the previous call, 0 the first
 * time). Returns the head length (> 0), 0 if the end is not there yet, or
 * HTTP1_E_BARE_LF. It validates nothing else: parse the head afterwards.
 * Scans at most INT_MAX bytes.
 */
int http1_head_end(const char *buf, size_t len, size_t from);

/*
 * Parses a complete field block buf[0, len): zero or more field lines,
 * each ending in CRLF, with nothing after them (a trailer section as
 * reported by the chunked decoder, without its final CRLF). Fields go to
 * hdrs[0, cap); with <hdrs> NULL they are only validated and counted.
 * Returns the number of fields or an HTTP1_E_* code.
 */
int http1_parse_fields(const char *buf, size_t len,
                       struct http1_header *hdrs, size_t cap);

/* ---- message body framing (RFC 9112 6.3) ---- */

enum http1_body {
	HTTP1_BODY_NONE = 0,   /* no body */
	HTTP1_BODY_LENGTH,     /* exactly content_length bytes (may be 0) */
	HTTP1_BODY_CHUNKED,    /* chunked: use struct http1_chunked */
	HTTP1_BODY_CLOSE,      /* until the server closes (responses only) */
	HTTP1_BODY_TUNNEL,     /* no HTTP body; the connection becomes a byte
	                        * tunnel (2xx to CONNECT, 101) */
};
const char *http1_body_str(enum http1_body b);

/* Framing of the body of a successfully parsed request. */
enum http1_body http1_request_body(const struct http1_head *req);
/* Framing of the body of a response <resp> to a request with <method>:
 * none for HEAD, 1xx (but 101: tunnel), 204 and 304; tunnel for 2xx to
 * CONNECT; else chunked, length, or until close. */
enum http1_body http1_response_body(enum http1_method method,
                                    const struct http1_head *resp);
/* 1 when the connection may carry another exchange after <resp>: the
 * response allows keep-alive and its body does not end with the close. */
int http1_response_persistent(enum http1_method method,
                              const struct http1_head *resp);

/* ---- chunked transfer coding ---- */

/* Decoder state. Fields are private; init before use. */
struct http1_chunked {
	int state;
	int err;              /* sticky error, 0 if none */
	uint64_t remaining;   /* data bytes left in the current chunk */
	uint64_t size;        /* chunk size being read */
	unsigned ndigits;
	size_t ext_len;       /* chunk-ext bytes on the current line */
	size_t trailer_len;   /* trailer section bytes so far */
	size_t ntrailers;
	size_t name_len;      /* current trailer field name length */
	char name[24];        /* its first bytes, lowercased */
	size_t max_ext;
	size_t max_trailer;
	size_t max_fields;
};

/* Return values of http1_chunked_feed (errors are HTTP1_E_*). */
#define HTTP1_CHUNKED_MORE    0 /* all input consumed; feed more */
#define HTTP1_CHUNKED_DATA    1 /* body bytes at in + *off, *span long */
#define HTTP1_CHUNKED_TRAILER 2 /* trailer-section bytes at in + *off */
#define HTTP1_CHUNKED_DONE    3 /* last chunk and trailers read */

void http1_chunked_init(struct http1_chunked *d, const struct http1_limits *lim);

/*
 * Decodes chunked framing from in[0, inlen). Sets *consumed to the bytes
 * used (the caller drops them and feeds the rest next time) and returns:
 *  - HTTP1_CHUNKED_DATA: in[*off, *off + *span) are body bytes, the end of
 *    the consumed bytes (so they can be forwarded without copying);
 *  - HTTP1_CHUNKED_TRAILER: in[*off, *off + *span) are bytes of validated
 *    trailer field lines (each ending in CRLF once complete; a span may end
 *    inside a line). Their concatenation is a block for http1_parse_fields.
 *  - HTTP1_CHUNKED_MORE: everything consumed, nothing to report;
 *  - HTTP1_CHUNKED_DONE: the message is complete; bytes after *consumed
 *    belong to the next message. Later calls return DONE, consuming 0.
 *  - an HTTP1_E_* code; later calls return it again, consuming 0.
 * Any split of the input yields the same concatenated spans and result.
 */
int http1_chunked_feed(struct http1_chunked *d, const char *in, size_t inlen,
                       size_t *consumed, size_t *off, size_t *span);

/* Longest chunk-size line http1_chunk_line writes: 16 hex digits + CRLF. */
#define HTTP1_CHUNK_LINE_MAX 18
/* Writes the size line for a chunk of <n> bytes (lowercase hex, CRLF) to
 * <out> (HTTP1_CHUNK_LINE_MAX bytes); returns its length. Then send the
 * data and "\r\n". Never call it with n == 0: that is the last chunk. */
size_t http1_chunk_line(char *out, uint64_t n);
/* Appends one chunk (size line, data, CRLF) to <b>; nothing when n == 0.
 * Returns 0, or -1 with <b> unchanged when it does not fit. */
int http1_chunk_append(struct buf *b, const void *data, size_t n);
/* Appends the last chunk: "0\r\n", the trailer block (complete field
 * lines as http1_parse_fields accepts; may be empty), "\r\n". Returns 0,
 * or -1 with <b> unchanged (no room, or an invalid trailer block). */
int http1_chunk_append_last(struct buf *b, const char *trailers, size_t len);

/* ---- serialization ---- */

/* Field filter: returns 1 to keep <hdr>, 0 to drop it. It MUST give the
 * same answer for the same field within one write (it is called twice). */
typedef int (*http1_filter_fn)(void *arg, const struct http1_header *hdr);

/* A ready-made filter (arg: struct http1_skip *). */
struct http1_skip {
	const char *const *names;      /* field names to drop (any case) */
	size_t nnames;
	const struct http1_head *hop;  /* if set: also drop its hop-by-hop fields */
};
int http1_skip_filter(void *arg, const struct http1_header *hdr);

/* 1 when <name> is a hop-by-hop field of <h>: Connection, Keep-Alive,
 * Proxy-Connection, TE, Transfer-Encoding, Upgrade, or an option listed
 * in h's Connection field. Host and Content-Length never are (the parser
 * refuses a Connection field naming them). <h> may be NULL (fixed list
 * only). */
int http1_is_hop_by_hop(const struct http1_head *h, const char *name,
                        size_t len);

/*
 * Appends the request head <h> to <b>: "<method> <target> HTTP/1.x",
 * the fields of <h> that <filter> keeps (all when <filter> is NULL), then
 * <extra>[0, nextra), then the empty line. The caller may edit a copy of a
 * parsed head (method, target, version, headers) before writing it.
 * Everything written is validated first (tokens, no CR/LF/NUL in values),
 * so a header injection cannot pass. Returns 0, or -1 with <b> unchanged
 * (invalid field, no room).
 */
int http1_write_request(struct buf *b, const struct http1_head *h,
                        http1_filter_fn filter, void *arg,
                        const struct http1_header *extra, size_t nextra);
/* Same for a response: "HTTP/1.x <status> <reason>". */
int http1_write_response(struct buf *b, const struct http1_head *h,
                         http1_filter_fn filter, void *arg,
                         const struct http1_header *extra, size_t nextra);

/* Case-insensitive comparison of a field name with a lowercase literal. */
int http1_name_is(const char *name, size_t len, const char *lower);

#endif
