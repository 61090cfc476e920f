/*
 * grpc: gRPC protocol layer over any HTTP/2 stream (contracts in
 * core/grpc.h; the wire rules are grpc's doc/PROTOCOL-HTTP2.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/grpc.h"
#include "core/mem.h"

static const char *const status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

const char *grpc_status_str(int code)
{
	if (code < 0 || code > GRPC_STATUS_MAX)
		return "UNKNOWN";
	return status_names[code];
}

enum grpc_status grpc_status_from_http(int status)
{
	switch (status) {
	case 200: return GRPC_OK;
	case 400: return GRPC_INTERNAL;
	case 401: return GRPC_UNAUTHENTICATED;
	case 403: return GRPC_PERMISSION_DENIED;
	case 404: return GRPC_UNIMPLEMENTED;
	case 429: case 502: case 503: case 504: return GRPC_UNAVAILABLE;
	default: return GRPC_UNKNOWN;
	}
}

int grpc_status_parse(struct str v, enum grpc_status *code)
{
	uint64_t n;

	if (str_to_u64(v, &n) < 0)
		return -1;
	*code = n > GRPC_STATUS_MAX ? GRPC_UNKNOWN : (enum grpc_status)n;
	return 0;
}

/* --- framing --- */

void grpc_frame_prefix(uint8_t out[GRPC_PREFIX_LEN], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int grpc_frame_write(struct buf *out, const void *msg, size_t n)
{
	char *d;

	if (n > UINT32_MAX || !(d = buf_reserve(out, GRPC_PREFIX_LEN + n)))
		return -1;
	grpc_frame_prefix((uint8_t *)d, (uint32_t)n);
	if (n)
		memcpy(d + GRPC_PREFIX_LEN, msg, n);
	buf_produce(out, GRPC_PREFIX_LEN + n);
	return 0;
}

ssize_t grpc_frame_pb(struct buf *out, const struct pb_msg_desc *d,
                      const void *msg, size_t max_msg)
{
	ssize_t n = pb_encoded_size(d, msg);
	struct buf body;
	char *p;

	if (n < 0)
		return n;
	if ((size_t)n > max_msg || (size_t)n > UINT32_MAX)
		return PB_E_NOSPACE;
	p = buf_reserve(out, GRPC_PREFIX_LEN + (size_t)n);
	if (!p)
		return PB_E_NOSPACE;
	/* encode in place, inside the space just reserved */
	buf_init_fixed(&body, p + GRPC_PREFIX_LEN, (size_t)n);
	if (n && pb_encode(d, msg, &body) != n)
		return PB_E_INVALID;
	grpc_frame_prefix((uint8_t *)p, (uint32_t)n);
	buf_produce(out, GRPC_PREFIX_LEN + (size_t)n);
	return n;
}

void grpc_deframer_init(struct grpc_deframer *df, size_t max_msg)
{
	memset(df, 0, sizeof(*df));
	df->max_msg = max_msg ? max_msg : GRPC_MAX_MSG_DEFAULT;
	buf_init(&df->body, df->max_msg);
}

void grpc_deframer_free(struct grpc_deframer *df)
{
	buf_free(&df->body);
}

static ssize_t deframer_fail(struct grpc_deframer *df, enum grpc_status st,
                             const char *text)
{
	df->err = st;
	df->err_text = text;
	df->ready = 0;
	return -1;
}

ssize_t grpc_deframer_push(struct grpc_deframer *df, const void *p, size_t n)
{
	const uint8_t *in = p;
	size_t off = 0;

	if (df->err)
		return -1;
	if (df->ready)
		return 0;
	while (off < n) {
		size_t take;

		if (df->hdr_got < GRPC_PREFIX_LEN) {
			take = GRPC_PREFIX_LEN - df->hdr_got;
			if (take > n - off)
				take = n - off;
			memcpy(df->hdr + df->hdr_got, in + off, take);
			df->hdr_got += take;
			off += take;
			if (df->hdr_got < GRPC_PREFIX_LEN)
				break;
			if (df->hdr[0] == 1)
				return deframer_fail(df, GRPC_UNIMPLEMENTED,
				        "compressed messages are not supported");
			if (df->hdr[0] != 0)
				return deframer_fail(df, GRPC_INTERNAL,
				        "invalid message compression flag");
			df->need = (uint32_t)df->hdr[1] << 24 |
			           (uint32_t)df->hdr[2] << 16 |
			           (uint32_t)df->hdr[3] << 8 | df->hdr[4];
			if (df->need > df->max_msg)
				return deframer_fail(df, GRPC_RESOURCE_EXHAUSTED,
				        "message larger than the maximum");
			buf_reset(&df->body);
			/* one block of the message's size, not doublings */
			if (df->need && !buf_reserve(&df->body, df->need))
				return deframer_fail(df, GRPC_RESOURCE_EXHAUSTED,
				                     "out of memory");
		} else {
			take = df->need;
			if (take > n - off)
				take = n - off;
			if (buf_append(&df->body, in + off, take) < 0)
				return deframer_fail(df, GRPC_RESOURCE_EXHAUSTED,
				                     "out of memory");
			df->need -= (uint32_t)take;
			off += take;
		}
		if (df->need == 0) {
			df->ready = 1;
			df->messages++;
			break;
		}
	}
	return (ssize_t)off;
}

int grpc_deframer_msg(const struct grpc_deframer *df, struct str *msg)
{
	if (!df->ready)
		return 0;
	*msg = buf_len(&df->body) ? str_make(buf_data(&df->body),
	                                     buf_len(&df->body)) : STR_NULL;
	return 1;
}

void grpc_deframer_next(struct grpc_deframer *df)
{
	if (!df->ready)
		return;
	df->ready = 0;
	df->hdr_got = 0;
	/* nothing is kept between messages: an idle stream holds no buffer */
	buf_free(&df->body);
}

int grpc_deframer_finish(struct grpc_deframer *df)
{
	if (df->err)
		return -1;
	if (df->ready || df->hdr_got == 0)
		return 0;
	deframer_fail(df, GRPC_INTERNAL, "stream ended inside a message");
	return -1;
}

/* --- grpc-timeout --- */

static const struct {
	char unit;
	uint64_t ns;
} timeout_units[] = {   /* finest first */
	{ 'n', 1 }, { 'u', 1000 }, { 'm', 1000000 }, { 'S', 1000000000 },
	{ 'M', 60ull * 1000000000 }, { 'H', 3600ull * 1000000000 },
};

int grpc_timeout_parse(struct str v, uint64_t *ns)
{
	uint64_t n = 0;
	size_t i;

	if (v.len < 2 || v.len > GRPC_TIMEOUT_MAX_DIGITS + 1)
		return -1;
	for (i = 0; i < v.len - 1; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	for (i = 0; i < sizeof(timeout_units) / sizeof(timeout_units[0]); i++) {
		if (timeout_units[i].unit == v.p[v.len - 1]) {
			/* 99999999 H fits: 3.6e20 does not, so cap */
			if (n > UINT64_MAX / timeout_units[i].ns)
				*ns = UINT64_MAX;
			else
				*ns = n * timeout_units[i].ns;
			return 0;
		}
	}
	return -1;
}

int grpc_timeout_format(uint64_t ns, char *out, size_t outlen)
{
	size_t i;

	if (outlen < 10)
		return -1;
	for (i = 0; i < sizeof(timeout_units) / sizeof(timeout_units[0]); i++) {
		uint64_t u = timeout_units[i].ns;
		uint64_t v = ns / u + (ns % u != 0);

		if (v <= 99999999u)
			return snprintf(out, outlen, "%llu%c",
			                (unsigned long long)v,
			                timeout_units[i].unit);
	}
	/* unreachable: UINT64_MAX ns is about 5.1e6 hours */
	return snprintf(out, outlen, "99999999H");
}

/* --- grpc-message --- */

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c > 0x7e || c == '%';
}

static const char hexdig[] = "0123456789ABCDEF";

/* Encodes as much of <s> as fits <cap> bytes at <dst> without splitting an
 * escape or a UTF-8 sequence. Returns the bytes written. */
static size_t message_encode_into(char *dst, size_t cap, struct str s)
{
	size_t i, o = 0, last_ok = 0;

	for (i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		size_t w = needs_escape(c) ? 3 : 1;

		if ((c & 0xc0) != 0x80)
			last_ok = o;        /* a character starts here */
		if (cap - o < w)
			return last_ok;
		if (w == 3) {
			dst[o++] = '%';
			dst[o++] = hexdig[c >> 4];
			dst[o++] = hexdig[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	return o;
}

int grpc_message_encode(struct buf *out, struct str msg)
{
	size_t i, need = 0;
	char *d;

	for (i = 0; i < msg.len; i++)
		need += needs_escape((unsigned char)msg.p[i]) ? 3 : 1;
	if (!need)
		return 0;
	if (!(d = buf_reserve(out, need)))
		return -1;
	message_encode_into(d, need, msg);
	buf_produce(out, need);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the escape at <v>[<i>] (3 for a valid %XX, else 1), and its
 * byte in <*c>. */
static size_t unescape_at(struct str v, size_t i, char *c)
{
	int hi, lo;

	if (v.p[i] == '%' && i + 2 < v.len &&
	    (hi = hexval(v.p[i + 1])) >= 0 && (lo = hexval(v.p[i + 2])) >= 0) {
		*c = (char)(hi << 4 | lo);
		return 3;
	}
	*c = v.p[i];
	return 1;
}

int grpc_message_decode(struct buf *out, struct str v)
{
	size_t i, o = 0;
	char *d, c;

	for (i = 0; i < v.len; o++)
		i += unescape_at(v, i, &c);
	if (!o)
		return 0;
	if (!(d = buf_reserve(out, o)))
		return -1;
	for (i = 0, o = 0; i < v.len; o++) {
		i += unescape_at(v, i, &c);
		d[o] = c;
	}
	buf_produce(out, o);
	return 0;
}

/* --- headers --- */

int grpc_content_type_ok(struct str v)
{
	ssize_t semi = str_find_char(v, ';');

	if (semi >= 0)
		v = str_sub(v, 0, (size_t)semi);
	v = str_trim_ows(v);
	return str_ieq_cstr(v, "application/grpc") ||
	       str_ieq_cstr(v, "application/grpc+proto");
}

static const struct h2_header *find_field(const struct h2_header *f,
                                          size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (str_eq_cstr(f[i].name, name))
			return &f[i];
	return NULL;
}

/* 1 when the comma-separated list <v> holds <tok> (case-insensitive). */
static int list_has(struct str v, const char *tok)
{
	struct str rest = v, t;

	while (str_next_token(&rest, ',', &t))
		if (str_ieq_cstr(str_trim_ows(t), tok))
			return 1;
	return 0;
}

int grpc_request_check(const struct h2_head *head, struct grpc_request *req,
                       const char **why)
{
	const struct h2_header *h;
	struct str path = head->path, svc;
	ssize_t slash;

	memset(req, 0, sizeof(*req));
	*why = NULL;
	if (!str_eq_cstr(head->method, "POST")) {
		*why = "gRPC requires POST";
		return 405;
	}
	h = find_field(head->fields, head->nfields, "content-type");
	if (!h || !grpc_content_type_ok(h->value)) {
		*why = "not a gRPC (protobuf) content-type";
		return 415;
	}
	h = find_field(head->fields, head->nfields, "te");
	if (!h || !list_has(h->value, "trailers")) {
		*why = "missing te: trailers";
		return -GRPC_INTERNAL;
	}
	h = find_field(head->fields, head->nfields, "grpc-encoding");
	if (h && !str_ieq_cstr(str_trim_ows(h->value), "identity")) {
		*why = "only identity grpc-encoding is supported";
		return -GRPC_UNIMPLEMENTED;
	}
	h = find_field(head->fields, head->nfields, "grpc-timeout");
	if (h) {
		if (grpc_timeout_parse(h->value, &req->timeout_ns) < 0) {
			*why = "malformed grpc-timeout";
			return -GRPC_INTERNAL;
		}
		req->has_timeout = 1;
	}
	h = find_field(head->fields, head->nfields, "user-agent");
	if (h)
		req->user_agent = h->value;
	/* "/service/method", both non-empty, no query */
	if (path.len < 4 || path.p[0] != '/')
		goto bad_path;
	path = str_sub(path, 1, path.len - 1);
	slash = str_find_char(path, '/');
	if (slash <= 0 || (size_t)slash + 1 >= path.len ||
	    str_find_char(path, '?') >= 0)
		goto bad_path;
	svc = str_sub(path, 0, (size_t)slash);
	req->method = str_sub(path, (size_t)slash + 1, path.len);
	if (str_find_char(req->method, '/') >= 0)
		goto bad_path;
	req->service = svc;
	return 0;
bad_path:
	*why = "malformed method path";
	return -GRPC_UNIMPLEMENTED;
}

#define HDR(n, v) { STR_INIT(n), STR_INIT(v) }

void grpc_client_headers_init(struct grpc_client_headers *set,
                              uint64_t timeout_ns)
{
	static const struct h2_header fixed[] = {
		HDR("content-type", GRPC_CONTENT_TYPE),
		HDR("te", "trailers"),
		HDR("user-agent", "meshd-grpc"),
		HDR("grpc-accept-encoding", "identity"),
	};
	int n;

	memcpy(set->f, fixed, sizeof(fixed));
	set->n = 4;
	if (timeout_ns) {
		n = grpc_timeout_format(timeout_ns, set->timeout,
		                        sizeof(set->timeout));
		set->f[4].name = STR_LIT("grpc-timeout");
		set->f[4].value = str_make(set->timeout, (size_t)n);
		set->n = 5;
	}
}

static const struct h2_header response_fields[] = {
	HDR("content-type", GRPC_CONTENT_TYPE),
	HDR("grpc-accept-encoding", "identity"),
};

const struct h2_header *grpc_response_headers(size_t *n)
{
	*n = 2;
	return response_fields;
}

void grpc_trailers_init(struct grpc_trailers *t, enum grpc_status code,
                        struct str message, int trailers_only)
{
	size_t n = 0, mlen;
	int sl;

	if (trailers_only) {
		t->f[n++] = response_fields[0];
		t->f[n++] = response_fields[1];
	}
	sl = snprintf(t->status, sizeof(t->status), "%d", (int)code);
	t->f[n].name = STR_LIT("grpc-status");
	t->f[n++].value = str_make(t->status, (size_t)sl);
	mlen = message_encode_into(t->message, sizeof(t->message), message);
	if (mlen) {
		t->f[n].name = STR_LIT("grpc-message");
		t->f[n++].value = str_make(t->message, mlen);
	}
	t->n = n;
}

int grpc_status_from_fields(const struct h2_header *f, size_t n,
                            enum grpc_status *code, struct buf *msg)
{
	const struct h2_header *st = find_field(f, n, "grpc-status");
	const struct h2_header *m = find_field(f, n, "grpc-message");
	int rc = 0;

	if (!st || grpc_status_parse(st->value, code) < 0) {
		*code = GRPC_UNKNOWN;
		if (msg && buf_append_str(msg, st ? "malformed grpc-status"
		                                  : "missing grpc-status") < 0)
			rc = -1;
		if (msg && m && buf_append_str(msg, ": ") < 0)
			rc = -1;
	}
	if (msg && m && grpc_message_decode(msg, m->value) < 0)
		rc = -1;
	return rc;
}

enum grpc_status grpc_response_check(const struct h2_head *head,
                                     const char **why)
{
	const struct h2_header *ct;

	*why = NULL;
	if (head->status != 200) {
		*why = "HTTP status is not 200";
		return head->status >= 100 && head->status < 200 ?
		       GRPC_INTERNAL : grpc_status_from_http(head->status);
	}
	if (find_field(head->fields, head->nfields, "grpc-status"))
		return GRPC_OK;         /* Trailers-Only */
	ct = find_field(head->fields, head->nfields, "content-type");
	if (!ct || !grpc_content_type_ok(ct->value)) {
		*why = "not a gRPC content-type";
		return GRPC_UNKNOWN;
	}
	return GRPC_OK;
}

enum grpc_status grpc_status_from_h2(uint32_t code)
{
	switch (code) {
	case H2_REFUSED_STREAM: return GRPC_UNAVAILABLE;
	case H2_CANCEL: return GRPC_CANCELLED;
	case H2_ENHANCE_YOUR_CALM: return GRPC_RESOURCE_EXHAUSTED;
	case H2_INADEQUATE_SECURITY: return GRPC_PERMISSION_DENIED;
	default: return GRPC_INTERNAL;
	}
}

/* ------------------------------------------------------------------------
 * Server and client over core/h2.
 *
 * Both sides keep at most one framed message waiting for room in h2's
 * bounded per-stream send queue (<out>); it is flushed from on_writable,
 * and what waited behind it (the end of the stream, the handler's next
 * message) follows once it is gone.
 * ------------------------------------------------------------------------ */

#define GRPC_ARENA_DEFAULT (16u * 1024)

/* Memory for a decoded message: the struct and its arena, in one block. */
struct grpc_decode_mem {
	void *msg;
	struct pb_arena arena;
	char *block;
};

static int decode_mem_init(struct grpc_decode_mem *dm,
                           const struct pb_msg_desc *d, size_t arena_size)
{
	size_t head = (d->size + 15) & ~(size_t)15;

	dm->block = mem_alloc(head + arena_size);
	if (!dm->block)
		return -ENOMEM;
	dm->msg = dm->block;
	pb_arena_init(&dm->arena, dm->block + head, arena_size);
	return 0;
}

/* Writes as much of <out> as the stream takes. 0, or <0 from h2. */
static int flush_out(struct h2_conn *h2, int32_t id, struct buf *out)
{
	while (buf_len(out)) {
		ssize_t w = h2_stream_write(h2, id, buf_data(out),
		                            buf_len(out));

		if (w < 0)
			return (int)w;
		if (w == 0)
			break;
		buf_consume(out, (size_t)w);
	}
	if (!buf_len(out))
		buf_free(out);      /* sent: an idle call keeps no buffer */
	return 0;
}

struct grpc_server {
	struct h2_conn *h2;
	const struct grpc_method *methods;
	size_t nmethods;
	size_t max_msg;
	size_t arena_size;
	void *ctx;
	struct grpc_call *calls;    /* live calls, for grpc_server_free */
};

struct grpc_call {
	struct grpc_server *srv;
	struct grpc_call *prev, *next;
	int32_t id;
	const struct grpc_method *m;
	uint64_t timeout_ns;
	struct grpc_deframer df;
	struct grpc_decode_mem req;
	struct buf out;             /* framed bytes waiting for the stream */
	struct grpc_trailers tr;    /* trailers waiting behind <out> */
	enum grpc_status final;
	void *user;
	unsigned got_request : 1;
	unsigned delivered : 1;     /* on_request ran: on_done is owed */
	unsigned head_sent : 1;
	unsigned finished : 1;      /* grpc_call_finish ran */
	unsigned end_pending : 1;   /* trailers wait for <out> to drain */
};

/* Answers a request that no handler sees, with a Trailers-Only status. */
static void srv_refuse(struct grpc_server *s, int32_t id,
                       enum grpc_status st, const char *why)
{
	struct grpc_trailers t;

	grpc_trailers_init(&t, st, str_from_cstr(why), 1);
	if (h2_submit_response(s->h2, id, 200, t.f, t.n, 1) < 0)
		h2_stream_reset(s->h2, id, H2_INTERNAL_ERROR);
}

static void call_free(struct grpc_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		call->srv->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	grpc_deframer_free(&call->df);
	buf_free(&call->out);
	mem_free(call->req.block);
	mem_free(call);
}

static int srv_on_head(void *ctx, int32_t id, void *su,
                       const struct h2_head *head, int end_stream)
{
	struct grpc_server *s = ctx;
	const struct grpc_method *m = NULL;
	struct grpc_request rq;
	struct grpc_call *call;
	const char *why;
	size_t i;
	int rc;

	(void)su;
	rc = grpc_request_check(head, &rq, &why);
	if (rc > 0) {
		if (h2_submit_response(s->h2, id, rc, NULL, 0, 1) < 0)
			return H2_CB_RESET;
		return 0;
	}
	if (rc < 0) {
		srv_refuse(s, id, (enum grpc_status)-rc, why);
		return 0;
	}
	for (i = 0; i < s->nmethods && !m; i++)
		if (str_eq_cstr(head->path, s->methods[i].path))
			m = &s->methods[i];
	if (!m) {
		srv_refuse(s, id, GRPC_UNIMPLEMENTED, "unknown method");
		return 0;
	}
	call = mem_calloc(1, sizeof(*call));
	if (!call || decode_mem_init(&call->req, m->req, s->arena_size) < 0) {
		mem_free(call);
		srv_refuse(s, id, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return 0;
	}
	call->srv = s;
	call->next = s->calls;
	if (s->calls)
		s->calls->prev = call;
	s->calls = call;
	call->id = id;
	call->m = m;
	call->timeout_ns = rq.has_timeout ? rq.timeout_ns : 0;
	grpc_deframer_init(&call->df, s->max_msg);
	buf_init(&call->out, s->max_msg + GRPC_PREFIX_LEN);
	if (h2_stream_set_user(s->h2, id, call) < 0) {
		call_free(call);
		return H2_CB_RESET;
	}
	if (end_stream)
		grpc_call_finish(call, GRPC_INTERNAL,
		                 "missing request message");
	return 0;
}

static int srv_on_data(void *ctx, int32_t id, void *su, const char *p,
                       size_t n)
{
	struct grpc_server *s = ctx;
	struct grpc_call *call = su;
	size_t off = 0;

	h2_consume(s->h2, id, n);    /* the deframer copies what it keeps */
	if (!call || call->finished)
		return 0;
	if (call->got_request) {
		/* unary / server-streaming: the request's bytes stay where
		 * they are until on_done, so nothing more is read */
		grpc_call_finish(call, GRPC_INTERNAL,
		                 "more than one request message");
		return 0;
	}
	while (off < n && !call->got_request) {
		ssize_t c = grpc_deframer_push(&call->df, p + off, n - off);
		char err[160];
		struct str msg;

		if (c < 0) {
			grpc_call_finish(call, call->df.err, call->df.err_text);
			return 0;
		}
		off += (size_t)c;
		if (!grpc_deframer_msg(&call->df, &msg))
			continue;
		if (pb_decode(call->m->req, call->req.msg, msg.p, msg.len,
		              &call->req.arena, err, sizeof(err)) < 0) {
			grpc_call_finish(call, GRPC_INTERNAL, err);
			return 0;
		}
		call->got_request = 1;
	}
	if (call->got_request && off < n) {
		grpc_call_finish(call, GRPC_INTERNAL,
		                 "more than one request message");
		return 0;
	}
	if (call->got_request && !call->delivered) {
		call->delivered = 1;
		call->m->on_request(s->ctx, call, call->req.msg);
	}
	return 0;
}

static void srv_on_end(void *ctx, int32_t id, void *su)
{
	struct grpc_call *call = su;

	(void)ctx;
	(void)id;
	if (!call || call->finished || call->got_request)
		return;
	if (grpc_deframer_finish(&call->df) < 0)
		grpc_call_finish(call, call->df.err, call->df.err_text);
	else
		grpc_call_finish(call, GRPC_INTERNAL,
		                 "missing request message");
}

static void srv_on_stream_close(void *ctx, int32_t id, void *su, int reset,
                                uint32_t code)
{
	struct grpc_server *s = ctx;
	struct grpc_call *call = su;

	(void)id;
	(void)reset;
	(void)code;
	if (!call)
		return;
	if (!call->finished || call->end_pending)
		call->final = GRPC_CANCELLED;   /* did not get to its end */
	call->finished = 1;
	if (call->delivered && call->m->on_done)
		call->m->on_done(s->ctx, call, call->final);
	call_free(call);
}

static void srv_on_writable(void *ctx, int32_t id, void *su)
{
	struct grpc_server *s = ctx;
	struct grpc_call *call = su;

	if (!call)
		return;
	if (flush_out(s->h2, id, &call->out) < 0 || buf_len(&call->out))
		return;
	if (call->end_pending) {
		call->end_pending = 0;
		if (h2_stream_end(s->h2, id, call->tr.f, call->tr.n) < 0)
			h2_stream_reset(s->h2, id, H2_INTERNAL_ERROR);
		return;
	}
	if (!call->finished && call->delivered && call->m->on_writable)
		call->m->on_writable(s->ctx, call);
}

static const struct h2_callbacks srv_cbs = {
	.on_head = srv_on_head,
	.on_data = srv_on_data,
	.on_end = srv_on_end,
	.on_stream_close = srv_on_stream_close,
	.on_writable = srv_on_writable,
};

struct grpc_server *grpc_server_new(const struct grpc_method *methods,
                                    size_t n, const struct h2_limits *lim,
                                    size_t max_msg, size_t arena_size,
                                    void *ctx, char *err, size_t errlen)
{
	struct grpc_server *s = mem_calloc(1, sizeof(*s));

	if (!s) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->methods = methods;
	s->nmethods = n;
	s->max_msg = max_msg ? max_msg : GRPC_MAX_MSG_DEFAULT;
	s->arena_size = arena_size ? arena_size : GRPC_ARENA_DEFAULT;
	s->ctx = ctx;
	s->h2 = h2_new(H2_SERVER, lim, &srv_cbs, s, err, errlen);
	if (!s->h2) {
		mem_free(s);
		return NULL;
	}
	return s;
}

struct h2_conn *grpc_server_h2(const struct grpc_server *s)
{
	return s->h2;
}

/* Calls whose streams h2 still tracks are lost with it (h2_free runs no
 * callback), so they are found through their ids first. */
/* h2_free runs no callback: the calls still open are released here. */
void grpc_server_free(struct grpc_server *s)
{
	if (!s)
		return;
	while (s->calls)
		call_free(s->calls);
	h2_free(s->h2);
	mem_free(s);
}

static int call_send_head(struct grpc_call *call)
{
	size_t n;
	const struct h2_header *f = grpc_response_headers(&n);
	int rc;

	if (call->head_sent)
		return 0;
	rc = h2_submit_response(call->srv->h2, call->id, 200, f, n, 0);
	if (rc < 0)
		return rc;
	call->head_sent = 1;
	return 0;
}

int grpc_call_send(struct grpc_call *call, const struct pb_msg_desc *d,
                   const void *msg)
{
	ssize_t r;
	int rc;

	if (call->finished)
		return -EPIPE;
	if (buf_len(&call->out))
		return -EAGAIN;
	r = pb_encoded_size(d, msg);
	if (r < 0)
		return -EINVAL;
	if ((size_t)r > call->srv->max_msg)
		return -EMSGSIZE;
	if ((rc = call_send_head(call)) < 0)
		return rc;
	r = grpc_frame_pb(&call->out, d, msg, call->srv->max_msg);
	if (r < 0)
		return r == PB_E_NOSPACE ? -ENOMEM : -EINVAL;
	return flush_out(call->srv->h2, call->id, &call->out);
}

int grpc_call_finish(struct grpc_call *call, enum grpc_status st,
                     const char *message)
{
	struct h2_conn *h2 = call->srv->h2;
	int rc;

	if (call->finished)
		return -EALREADY;
	call->finished = 1;
	call->final = st;
	if (!call->head_sent) {
		grpc_trailers_init(&call->tr, st, str_from_cstr(message), 1);
		call->head_sent = 1;
		rc = h2_submit_response(h2, call->id, 200, call->tr.f,
		                        call->tr.n, 1);
	} else {
		grpc_trailers_init(&call->tr, st, str_from_cstr(message), 0);
		if (buf_len(&call->out)) {
			call->end_pending = 1;
			return 0;
		}
		rc = h2_stream_end(h2, call->id, call->tr.f, call->tr.n);
	}
	if (rc < 0)
		h2_stream_reset(h2, call->id, H2_INTERNAL_ERROR);
	return rc;
}

uint64_t grpc_call_timeout_ns(const struct grpc_call *call)
{
	return call->timeout_ns;
}

const struct grpc_method *grpc_call_method(const struct grpc_call *call)
{
	return call->m;
}

void grpc_call_set_user(struct grpc_call *call, void *user)
{
	call->user = user;
}

void *grpc_call_user(const struct grpc_call *call)
{
	return call->user;
}

/* --- client --- */

struct grpc_client {
	struct h2_conn *h2;
	size_t max_msg;
	size_t arena_size;
	struct grpc_ccall *calls;   /* live calls, for grpc_client_free */
	char *dec;                  /* shared decode block, made on first use */
	size_t dec_size;
	int dec_busy;               /* a callback is using <dec> */
};

struct grpc_ccall {
	struct grpc_client *cl;
	struct grpc_ccall *prev, *next;
	int32_t id;
	struct grpc_ccall_cb cb;
	void *ctx;
	const struct pb_msg_desc *resp_d;
	struct grpc_deframer df;
	struct buf out;             /* the request, until the stream takes it */
	struct buf msg;             /* the status message */
	enum grpc_status st;
	unsigned has_status : 1;    /* <st> and <msg> are final */
	unsigned end_pending : 1;   /* end our side once <out> drained */
};

static void ccall_set_status(struct grpc_ccall *call, enum grpc_status st,
                             const char *text)
{
	if (call->has_status)
		return;
	call->has_status = 1;
	call->st = st;
	buf_reset(&call->msg);
	if (text)
		buf_append_str(&call->msg, text);
}

static void ccall_free(struct grpc_ccall *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else if (call->cl->calls == call)
		call->cl->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	grpc_deframer_free(&call->df);
	buf_free(&call->out);
	buf_free(&call->msg);
	mem_free(call);
}

/* Ends the call locally: status now, stream reset (close reports it). */
static void ccall_fail(struct grpc_ccall *call, enum grpc_status st,
                       const char *text)
{
	ccall_set_status(call, st, text);
	h2_stream_reset(call->cl->h2, call->id, H2_CANCEL);
}

static int cl_on_head(void *ctx, int32_t id, void *su,
                      const struct h2_head *head, int end_stream)
{
	struct grpc_ccall *call = su;
	enum grpc_status st;
	const char *why;

	(void)ctx;
	(void)id;
	if (!call || (head->status >= 100 && head->status < 200))
		return 0;
	st = grpc_response_check(head, &why);
	if (st != GRPC_OK) {
		ccall_fail(call, st, why);
		return 0;
	}
	if (end_stream) {           /* Trailers-Only */
		call->has_status = 1;
		grpc_status_from_fields(head->fields, head->nfields, &call->st,
		                        &call->msg);
	}
	return 0;
}

/*
 * Decodes <msg> for <call> and hands it to on_message. The decoded message
 * lives in the client's one decode block (the callback's copy is valid
 * during the callback only), so calls at rest hold no arena; a block made
 * for the occasion serves a delivery nested in another's callback.
 * Returns 0, or -1 with the decoding error in <err> ("" when memory is
 * short).
 */
static int cl_deliver(struct grpc_client *cl, struct grpc_ccall *call,
                      struct str msg, char *err, size_t errlen)
{
	size_t head = (call->resp_d->size + 15) & ~(size_t)15;
	size_t need = head + cl->arena_size;
	struct pb_arena arena;
	char *blk = NULL;
	int own = 0, rc;

	err[0] = '\0';
	if (!cl->dec_busy && cl->dec_size < need) {
		MEM_FREE(&cl->dec);
		cl->dec_size = 0;
		if (!(cl->dec = mem_alloc(need)))
			return -1;
		cl->dec_size = need;
	}
	if (!cl->dec_busy) {
		blk = cl->dec;
		cl->dec_busy = 1;
	} else {
		if (!(blk = mem_alloc(need)))
			return -1;
		own = 1;
	}
	pb_arena_init(&arena, blk + head, need - head);
	rc = pb_decode(call->resp_d, blk, msg.p, msg.len, &arena, err,
	               errlen) < 0 ? -1 : 0;
	if (rc == 0 && !err[0] && call->cb.on_message)
		call->cb.on_message(call->ctx, call, blk);
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "cannot decode the response");
	if (own)
		mem_free(blk);
	else
		cl->dec_busy = 0;
	return rc;
}

static int cl_on_data(void *ctx, int32_t id, void *su, const char *p,
                      size_t n)
{
	struct grpc_client *cl = ctx;
	struct grpc_ccall *call = su;
	size_t off = 0;

	h2_consume(cl->h2, id, n);
	if (!call || call->has_status)
		return 0;
	while (off < n) {
		ssize_t c = grpc_deframer_push(&call->df, p + off, n - off);
		char err[160];
		struct str msg;

		if (c < 0) {
			ccall_fail(call, call->df.err, call->df.err_text);
			return 0;
		}
		off += (size_t)c;
		if (!grpc_deframer_msg(&call->df, &msg))
			continue;
		if (cl_deliver(cl, call, msg, err, sizeof(err)) < 0) {
			ccall_fail(call, err[0] ? GRPC_INTERNAL :
			           GRPC_RESOURCE_EXHAUSTED,
			           err[0] ? err : "out of memory");
			return 0;
		}
		grpc_deframer_next(&call->df);
		if (call->has_status)   /* cancelled from the callback */
			return 0;
	}
	return 0;
}

static int cl_on_trailers(void *ctx, int32_t id, void *su,
                          const struct h2_header *f, size_t n)
{
	struct grpc_ccall *call = su;

	(void)ctx;
	(void)id;
	if (!call || call->has_status)
		return 0;
	if (grpc_deframer_finish(&call->df) < 0) {
		ccall_set_status(call, call->df.err, call->df.err_text);
		return 0;
	}
	call->has_status = 1;
	grpc_status_from_fields(f, n, &call->st, &call->msg);
	return 0;
}

static void cl_on_end(void *ctx, int32_t id, void *su)
{
	struct grpc_ccall *call = su;

	(void)ctx;
	(void)id;
	if (call && !call->has_status)
		ccall_set_status(call, GRPC_INTERNAL,
		                 "stream ended without trailers");
}

static void cl_on_stream_close(void *ctx, int32_t id, void *su, int reset,
                               uint32_t code)
{
	struct grpc_ccall *call = su;

	(void)ctx;
	(void)id;
	if (!call)
		return;
	if (!call->has_status)
		ccall_set_status(call, reset ? grpc_status_from_h2(code) :
		                 GRPC_INTERNAL, reset ? "stream reset" :
		                 "stream closed without status");
	if (call->cb.on_status)
		call->cb.on_status(call->ctx, call, call->st,
		                   buf_cstr(&call->msg) ? buf_cstr(&call->msg)
		                                        : "");
	ccall_free(call);
}

static void cl_on_writable(void *ctx, int32_t id, void *su)
{
	struct grpc_client *cl = ctx;
	struct grpc_ccall *call = su;

	if (!call || flush_out(cl->h2, id, &call->out) < 0 ||
	    buf_len(&call->out) || !call->end_pending)
		return;
	call->end_pending = 0;
	if (h2_stream_end(cl->h2, id, NULL, 0) < 0)
		ccall_fail(call, GRPC_INTERNAL, "cannot end the request");
}

static const struct h2_callbacks cl_cbs = {
	.on_head = cl_on_head,
	.on_data = cl_on_data,
	.on_trailers = cl_on_trailers,
	.on_end = cl_on_end,
	.on_stream_close = cl_on_stream_close,
	.on_writable = cl_on_writable,
};

struct grpc_client *grpc_client_new(const struct h2_limits *lim,
                                    size_t max_msg, size_t arena_size,
                                    char *err, size_t errlen)
{
	struct grpc_client *c = mem_calloc(1, sizeof(*c));

	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->max_msg = max_msg ? max_msg : GRPC_MAX_MSG_DEFAULT;
	c->arena_size = arena_size ? arena_size : GRPC_ARENA_DEFAULT;
	c->h2 = h2_new(H2_CLIENT, lim, &cl_cbs, c, err, errlen);
	if (!c->h2) {
		mem_free(c);
		return NULL;
	}
	return c;
}

struct h2_conn *grpc_client_h2(const struct grpc_client *c)
{
	return c->h2;
}

void grpc_client_free(struct grpc_client *c)
{
	if (!c)
		return;
	while (c->calls)
		ccall_free(c->calls);
	h2_free(c->h2);
	mem_free(c->dec);
	mem_free(c);
}

struct grpc_ccall *grpc_client_call(struct grpc_client *c,
                                    struct str authority, const char *path,
                                    const struct pb_msg_desc *req_d,
                                    const void *req,
                                    const struct pb_msg_desc *resp_d,
                                    uint64_t timeout_ns,
                                    const struct grpc_ccall_cb *cb,
                                    void *ctx, int *rc)
{
	struct grpc_client_headers hs;
	struct h2_request rq;
	struct grpc_ccall *call;
	ssize_t r;
	int32_t id;

	r = pb_encoded_size(req_d, req);
	if (r < 0 || (size_t)r > c->max_msg) {
		*rc = r < 0 ? -EINVAL : -EMSGSIZE;
		return NULL;
	}
	call = mem_calloc(1, sizeof(*call));
	if (!call) {
		*rc = -ENOMEM;
		return NULL;
	}
	call->cl = c;
	call->cb = *cb;
	call->ctx = ctx;
	call->resp_d = resp_d;
	grpc_deframer_init(&call->df, c->max_msg);
	buf_init(&call->out, c->max_msg + GRPC_PREFIX_LEN);
	buf_init(&call->msg, GRPC_MESSAGE_MAX + 64);
	if (grpc_frame_pb(&call->out, req_d, req, c->max_msg) < 0) {
		ccall_free(call);
		*rc = -ENOMEM;
		return NULL;
	}
	grpc_client_headers_init(&hs, timeout_ns);
	rq.method = STR_LIT("POST");
	rq.scheme = STR_LIT("http");
	rq.authority = authority;
	rq.path = str_from_cstr(path);
	rq.fields = hs.f;
	rq.nfields = hs.n;
	id = h2_submit_request(c->h2, &rq, 0, call);
	if (id < 0) {
		ccall_free(call);
		*rc = id;
		return NULL;
	}
	call->id = id;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	call->end_pending = 1;
	/* the stream exists now: failures are reported by on_status */
	if (flush_out(c->h2, id, &call->out) < 0)
		ccall_fail(call, GRPC_INTERNAL, "cannot send the request");
	else if (!buf_len(&call->out)) {
		call->end_pending = 0;
		if (h2_stream_end(c->h2, id, NULL, 0) < 0)
			ccall_fail(call, GRPC_INTERNAL,
			           "cannot end the request");
	}
	*rc = 0;
	return call;
}

int grpc_ccall_cancel(struct grpc_ccall *call, enum grpc_status st)
{
	if (call->has_status)
		return -EALREADY;
	ccall_fail(call, st, "cancelled by the client");
	return 0;
}
