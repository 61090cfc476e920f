/*
 * origin: plain HTTP endpoints of every role. See origin.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "abc.h"
#include "origin.h"

#define ORIGIN_TEXT "text/plain; charset=utf-8"
#define ORIGIN_JSON "application/json"

/* 64 bytes, so that a line of /bytes output is one pattern. */
static const char origin_pattern[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.\n";
#define ORIGIN_PATTERN_LEN 64
#define ORIGIN_BLOCK 8192

void origin_fixed(struct origin_resp *r, int status, const char *ctype,
                  const char *fmt, ...)
{
	va_list ap;
	int n;

	r->kind = ORIGIN_FIXED;
	r->status = status;
	r->ctype = ctype;
	va_start(ap, fmt);
	n = vsnprintf(r->body, sizeof(r->body), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	r->len = (size_t)n < sizeof(r->body) ? (size_t)n : sizeof(r->body) - 1;
}

int origin_status_bodyless(int status)
{
	return status < 200 || status == 204 || status == 304;
}

void origin_fill(char *dst, uint64_t off, size_t n)
{
	/* the pattern repeated, plus one spare copy so that any offset can
	 * start a full block */
	static char block[ORIGIN_BLOCK + ORIGIN_PATTERN_LEN];
	static int ready;
	size_t k = (size_t)(off % ORIGIN_PATTERN_LEN), m, i;

	if (!ready) {
		for (i = 0; i < sizeof(block); i += ORIGIN_PATTERN_LEN)
			memcpy(block + i, origin_pattern, ORIGIN_PATTERN_LEN);
		ready = 1;
	}
	while (n) {
		m = MIN(n, (size_t)ORIGIN_BLOCK);
		memcpy(dst, block + k, m);
		dst += m;
		n -= m;
		/* ORIGIN_BLOCK is a multiple of the pattern: k stays valid */
	}
}

/* The counters as JSON, for /stats. */
static void origin_stats(struct origin_resp *r)
{
	char sent[ORIGIN_BODY_MAX / 2];
	size_t off = 0;
	unsigned i;
	int n;

	sent[0] = '\0';
	for (i = 0; i < abc.ntargets; i++) {
		n = snprintf(sent + off, sizeof(sent) - off,
		             "%s\"%s\":{\"ok\":%llu,\"fail\":%llu}",
		             i ? "," : "", abc.target[i].name,
		             (unsigned long long)abc.target[i].ok,
		             (unsigned long long)abc.target[i].fail);
		if (n < 0 || (size_t)n >= sizeof(sent) - off)
			break;
		off += (size_t)n;
	}
	origin_fixed(r, 200, ORIGIN_JSON,
	             "{\"service\":\"%s\",\"role\":\"%s\","
	             "\"served\":{\"http1\":%llu,\"h2\":%llu,\"grpc\":%llu},"
	             "\"sent\":{%s}}\n",
	             abc.name, abc.role, (unsigned long long)abc.served_h1,
	             (unsigned long long)abc.served_h2,
	             (unsigned long long)abc.served_grpc, sent);
}

/* The number after <prefix> in <path>, or -1 when absent or malformed. */
static int origin_number(struct str path, const char *prefix, uint64_t *out)
{
	struct str pfx = str_from_cstr(prefix);

	if (!str_has_prefix(path, pfx))
		return -1;
	return str_to_u64(str_sub(path, pfx.len, path.len), out);
}

/* 1 when the query string <q> holds "<name>=1". */
static int origin_query_flag(struct str q, const char *name)
{
	struct str tok, key = str_from_cstr(name);

	while (str_next_token(&q, '&', &tok)) {
		if (tok.len == key.len + 2 && str_has_prefix(tok, key) &&
		    tok.p[key.len] == '=' && tok.p[key.len + 1] == '1')
			return 1;
	}
	return 0;
}

/* The number in "<name>=N" of the query string <q>: 0 and *<out> set, or
 * -1 when absent or malformed. */
static int origin_query_u64(struct str q, const char *name, uint64_t *out)
{
	struct str tok, key = str_from_cstr(name);

	while (str_next_token(&q, '&', &tok)) {
		if (tok.len > key.len + 1 && str_has_prefix(tok, key) &&
		    tok.p[key.len] == '=')
			return str_to_u64(str_sub(tok, key.len + 1, tok.len),
			                  out);
	}
	return -1;
}

/* POST /admin/latency?ms=N: the run-time form of --latency, so that a test
 * can make one endpoint slow and then fast again without restarting it. */
static void origin_admin_latency(int post, struct str query,
                                 struct origin_resp *r)
{
	uint64_t ms;

	if (!post) {
		origin_fixed(r, 405, ORIGIN_TEXT, "use POST\n");
		return;
	}
	if (origin_query_u64(query, "ms", &ms) < 0 || ms > ORIGIN_DELAY_MAX) {
		origin_fixed(r, 400, ORIGIN_TEXT,
		             "want ?ms=N with N at most %u\n", ORIGIN_DELAY_MAX);
		return;
	}
	if (ms != abc.latency_ms)
		abc_log("latency %llu ms (was %llu ms)",
		        (unsigned long long)ms,
		        (unsigned long long)abc.latency_ms);
	abc.latency_ms = ms;
	origin_fixed(r, 200, ORIGIN_TEXT, "latency %llu ms\n",
	             (unsigned long long)ms);
}

void origin_route(struct str method, struct str target, struct origin_resp *r)
{
	int get = str_eq_cstr(method, "GET") || str_eq_cstr(method, "HEAD");
	int post = str_eq_cstr(method, "POST") || str_eq_cstr(method, "PUT");
	struct str path = target, query = STR_NULL;
	ssize_t q;
	uint64_t n;

	memset(r, 0, sizeof(*r));
	r->head = str_eq_cstr(method, "HEAD");

	/* absolute-form, as sent to proxies: keep the path */
	if (str_has_prefix(path, STR_LIT("http://"))) {
		struct str rest = str_sub(path, 7, path.len);
		ssize_t slash = str_find_char(rest, '/');

		path = slash < 0 ? STR_LIT("/") :
		       str_sub(rest, (size_t)slash, rest.len);
	}
	q = str_find_char(path, '?');
	if (q >= 0) {
		query = str_sub(path, (size_t)q + 1, path.len);
		path = str_sub(path, 0, (size_t)q);
	}

	if (origin_number(path, "/status/", &n) == 0) {
		if (n < 200 || n > 599) {
			origin_fixed(r, 400, ORIGIN_TEXT,
			             "status must be 200..599\n");
			return;
		}
		origin_fixed(r, (int)n, ORIGIN_TEXT, "status %d\n", (int)n);
		return;
	}
	if (origin_number(path, "/delay/", &n) == 0) {
		if (n > ORIGIN_DELAY_MAX) {
			origin_fixed(r, 400, ORIGIN_TEXT,
			             "delay must be at most %u ms\n",
			             ORIGIN_DELAY_MAX);
			return;
		}
		origin_fixed(r, 200, ORIGIN_TEXT, "delayed %llu ms\n",
		             (unsigned long long)n);
		r->delay_ms = n;
		return;
	}
	if (str_eq_cstr(path, "/admin/latency")) {
		origin_admin_latency(post, query, r);
		return;
	}
	if (str_eq_cstr(path, "/echo")) {
		if (!post) {
			origin_fixed(r, 405, ORIGIN_TEXT, "use POST or PUT\n");
			return;
		}
		r->kind = ORIGIN_ECHO;
		r->status = 200;
		r->ctype = "application/octet-stream";
		return;
	}
	if (!get) {
		origin_fixed(r, 405, ORIGIN_TEXT, "use GET or HEAD\n");
		return;
	}
	if (origin_number(path, "/bytes/", &n) == 0) {
		if (n > ORIGIN_BYTES_MAX) {
			origin_fixed(r, 400, ORIGIN_TEXT, "too many bytes\n");
			return;
		}
		r->kind = ORIGIN_BYTES;
		r->status = 200;
		r->ctype = "application/octet-stream";
		r->nbytes = n;
		r->chunked = origin_query_flag(query, "chunked");
		return;
	}
	if (str_eq_cstr(path, "/ok") || str_eq_cstr(path, "/healthz")) {
		origin_fixed(r, 200, ORIGIN_TEXT, "ok\n");
	} else if (str_eq_cstr(path, "/hello")) {
		if (abc_chance(abc.fail_rate))
			origin_fixed(r, 503, ORIGIN_TEXT,
			             "%s: injected failure\n", abc.name);
		else
			origin_fixed(r, 200, ORIGIN_TEXT, "hello from %s\n",
			             abc.name);
		r->delay_ms = abc.latency_ms;
	} else if (str_eq_cstr(path, "/stats")) {
		origin_stats(r);
	} else if (str_eq_cstr(path, "/") && !strcmp(abc.role, "a")) {
		r->kind = ORIGIN_FRONT;
		r->delay_ms = abc.latency_ms;
	} else if (str_eq_cstr(path, "/")) {
		origin_fixed(r, 200, ORIGIN_TEXT,
		             "%s: abc-app service %s\n"
		             "try /hello /stats /ok /status/503 /delay/100 "
		             "/bytes/1000 POST /echo\n",
		             abc.name, abc.role);
		r->delay_ms = abc.latency_ms;
	} else {
		origin_fixed(r, 404, ORIGIN_TEXT, "not found\n");
	}
}
