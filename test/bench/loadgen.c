/*
 * loadgen: an open-loop, constant-rate HTTP load generator for meshd's
 * benchmarks (HTTP/1.1 keep-alive, or h2c with prior knowledge).
 *
 * wrk and h2load are closed-loop: a client waits for each response before
 * it sends the next request, so a proxy that stalls simply receives fewer
 * requests and its stall never shows in the latency figures ("coordinated
 * omission"). loadgen instead fixes every request's intended send time in
 * advance (t0 + i/R) and measures latency from that intended time to the
 * last byte of the response. When no connection or stream is free at the
 * intended time the request waits in a local queue, and its latency keeps
 * counting. A stall therefore shows up as latency, never as a lower rate.
 *
 * Usage (see loadgen_usage below for every flag):
 *   loadgen --url http://127.0.0.1:8080/1k --rate 1000 --connections 16
 *   loadgen --url http://127.0.0.1:8081/1k --h2 --streams 10 --rate 1000
 *   loadgen --url http://127.0.0.1:8080/1k --closed --connections 16
 *   loadgen --self-test
 *
 * Contracts:
 *  - Output: a plain-text summary on stdout, or with --json exactly one line
 *    holding one JSON object (field list in lg_report_json). Diagnostics go
 *    to stderr.
 *  - Exit status: 0 when the run finished with at least one completed
 *    request and no error of any kind; 1 when it finished with errors
 *    (connect, status >= 500, timeout, protocol) or completed nothing, or
 *    could not set up; 2 on a usage error.
 *  - Only requests whose intended send time lies in the measurement window
 *    [t0 + warmup, t0 + warmup + duration) are counted (closed mode: those
 *    that complete inside the window). Connect errors are counted whenever
 *    they happen, warm-up included.
 *  - Responses are checked, not just counted: HTTP/1.1 framing by
 *    Content-Length, chunked coding or connection close (a response cut
 *    short is a protocol error); h2 by nghttp2's HTTP messaging checks
 *    (a Content-Length that disagrees with the DATA resets the stream).
 *  - The URL host must be an IP literal: loadgen never resolves names.
 *
 * This program is not part of the meshd binary; it lives in test/bench and
 * may use stdio. Symbols carry the prefix lg_ (the histogram lg_hist_, the
 * HTTP/1 response parser lg_h1p_). Heap memory comes from core/mem and
 * core/buf, as in meshd, and libev and nghttp2 are pointed at the same
 * allocator.
 *
 * IMPLEMENTATION NOTES
 *  - One thread, one libev loop. Connections live in one array allocated at
 *    start and never freed during the run, so closing a connection inside a
 *    callback cannot leave a dangling pointer: "closed" is a state.
 *  - The schedule is driven by a timerfd (nanosecond resolution, timer slack
 *    set to 1 us) rather than an ev_timer, whose epoll timeout has only
 *    millisecond granularity. The queue of due-but-unsent requests needs no
 *    storage: request i's intended time is t0 + i * 1e9 / R, so the queue is
 *    the index range [next_disp, next_gen), plus a small ring for h2
 *    requests refused by a GOAWAY (REFUSED_STREAM, safe to send again).
 *  - Event handlers only record what happened; an ev_prepare hook (run once
 *    per loop iteration before the loop blocks) hands queued requests to
 *    free connections round-robin and flushes all pending writes. nghttp2
 *    callbacks therefore never re-enter nghttp2.
 *  - Completion time is read once per recv() batch, right after the data
 *    arrives, so parsing cost is not billed to the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/mem.h"

#define LG_NS 1000000000ull
#define LG_READ_CHUNK 16384
#define LG_IN_LIMIT (64 * 1024)     /* a response head must fit in here */
#define LG_OUT_LIMIT (1024 * 1024)
#define LG_OUT_PUMP (64 * 1024)     /* stop pulling h2 frames past this */
#define LG_LINE_MAX 8192            /* longest HTTP/1 head line accepted */
#define LG_MAX_CONNS 100000
#define LG_MAX_STREAMS 1000

/* ------------------------------------------------------------------ */
/* Clock                                                                */
/* ------------------------------------------------------------------ */

static uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LG_NS + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Histogram: HDR-style log-linear buckets over nanoseconds.           */
/* Values below 256 ns are exact; above, each power of two is cut into */
/* 128 equal buckets, so a bucket is at most 1/128 (0.78 %) of its     */
/* lowest value wide and the midpoint reported is within 0.4 %. Fixed  */
/* memory: 4608 counters (36 KiB) cover 1 ns .. 2^42 ns (73 minutes);  */
/* larger values land in the last bucket (max stays exact).            */
/* ------------------------------------------------------------------ */

#define LG_HIST_SUB_BITS 8
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_HALF (LG_HIST_SUB / 2)
#define LG_HIST_SHIFTS 34
#define LG_HIST_BUCKETS (LG_HIST_SUB + LG_HIST_SHIFTS * LG_HIST_HALF)

struct lg_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t b[LG_HIST_BUCKETS];
};

static unsigned lg_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < LG_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - (LG_HIST_SUB_BITS - 1);
	if (shift > LG_HIST_SHIFTS)
		return LG_HIST_BUCKETS - 1;
	return LG_HIST_SUB + (shift - 1) * LG_HIST_HALF +
	       (unsigned)((v >> shift) - LG_HIST_HALF);
}

/* Lowest value of bucket <i> and its width. */
static uint64_t lg_hist_low(unsigned i, uint64_t *width)
{
	unsigned k, shift;

	if (i < LG_HIST_SUB) {
		*width = 1;
		return i;
	}
	k = i - LG_HIST_SUB;
	shift = k / LG_HIST_HALF + 1;
	*width = 1ull << shift;
	return (uint64_t)(k % LG_HIST_HALF + LG_HIST_HALF) << shift;
}

static void lg_hist_init(struct lg_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static void lg_hist_record(struct lg_hist *h, uint64_t v)
{
	h->b[lg_hist_index(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* The value at percentile <p> (0 < p <= 100): the midpoint of the bucket
 * holding the ceil(p% * count)-th smallest value, clamped to [min, max].
 * 0 for an empty histogram. */
static uint64_t lg_hist_pct(const struct lg_hist *h, double p)
{
	uint64_t rank, seen = 0, low, width, v;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			break;
	}
	if (i == LG_HIST_BUCKETS)
		return h->max;
	low = lg_hist_low(i, &width);
	v = low + width / 2;
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

/* ------------------------------------------------------------------ */
/* HTTP/1.1 response parser: resumable, allocation-free, push API.     */
/* ------------------------------------------------------------------ */

enum lg_h1p_st {
	LG_H1P_STATUS,      /* expecting the status line */
	LG_H1P_HEADER,      /* header lines until the empty line */
	LG_H1P_BODY_CL,     /* <left> body bytes to go */
	LG_H1P_CHUNK_SIZE,  /* chunk-size line */
	LG_H1P_CHUNK_DATA,  /* <left> chunk bytes to go */
	LG_H1P_CHUNK_END,   /* the CRLF after chunk data */
	LG_H1P_TRAILER,     /* trailer lines until the empty line */
	LG_H1P_BODY_EOF,    /* body delimited by connection close */
	LG_H1P_DONE,        /* one complete response parsed */
	LG_H1P_ERROR,       /* sticky; <err> says why */
};

struct lg_h1p {
	enum lg_h1p_st st;
	int status;
	int http10;       /* HTTP/1.0 response */
	int chunked;
	int has_cl;
	int close;        /* "Connection: close", or body until close */
	int keepalive;    /* "Connection: keep-alive" (matters for 1.0) */
	uint64_t cl;
	uint64_t left;
	uint64_t body;    /* body bytes seen (payload, not chunk framing) */
	const char *err;
};

static void lg_h1p_init(struct lg_h1p *p)
{
	memset(p, 0, sizeof(*p));
	p->st = LG_H1P_STATUS;
}

static long lg_h1p_fail(struct lg_h1p *p, const char *why)
{
	p->st = LG_H1P_ERROR;
	p->err = why;
	return -1;
}

/* Case-insensitive: does the comma-separated list <v>[0..n) contain the
 * token <tok>? */
static int lg_h1p_has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/* Is the last coding of the list <v>[0..n) "chunked"? */
static int lg_h1p_last_chunked(const char *v, size_t n)
{
	size_t e = n, s;

	while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
		e--;
	s = e;
	while (s > 0 && v[s - 1] != ',')
		s--;
	while (s < e && (v[s] == ' ' || v[s] == '\t'))
		s++;
	return e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0;
}

static long lg_h1p_status(struct lg_h1p *p, const char *l, size_t n)
{
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 ||
	    (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
	    l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' ||
	    l[11] < '0' || l[11] > '9' || (n > 12 && l[12] != ' '))
		return lg_h1p_fail(p, "bad status line");
	p->http10 = l[7] == '0';
	p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	p->st = LG_H1P_HEADER;
	return 0;
}

/* The empty line closing the head: decide how the body is delimited. */
static long lg_h1p_head_done(struct lg_h1p *p)
{
	if (p->status == 101)
		return lg_h1p_fail(p, "unexpected 101 Switching Protocols");
	if (p->status < 200) {
		/* interim response: the final one follows */
		lg_h1p_init(p);
		return 0;
	}
	if (p->status == 204 || p->status == 304) {
		p->st = LG_H1P_DONE;
	} else if (p->chunked) {
		p->st = LG_H1P_CHUNK_SIZE;
	} else if (p->has_cl) {
		p->left = p->cl;
		p->st = p->cl ? LG_H1P_BODY_CL : LG_H1P_DONE;
	} else {
		p->close = 1;
		p->st = LG_H1P_BODY_EOF;
	}
	return 0;
}

static long lg_h1p_header(struct lg_h1p *p, const char *l, size_t n)
{
	const char *colon, *v;
	size_t nl, vl, i;
	uint64_t cl = 0;

	if (n == 0)
		return lg_h1p_head_done(p);
	if (l[0] == ' ' || l[0] == '\t')
		return lg_h1p_fail(p, "obsolete header line folding");
	colon = memchr(l, ':', n);
	if (!colon || colon == l)
		return lg_h1p_fail(p, "header line without a name");
	nl = (size_t)(colon - l);
	for (i = 0; i < nl; i++)
		if (l[i] <= ' ' || l[i] >= 127)
			return lg_h1p_fail(p, "bad header name");
	v = colon + 1;
	vl = n - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
		if (vl == 0 || vl > 18)
			return lg_h1p_fail(p, "bad Content-Length");
		for (i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return lg_h1p_fail(p, "bad Content-Length");
			cl = cl * 10 + (uint64_t)(v[i] - '0');
		}
		if (p->has_cl && p->cl != cl)
			return lg_h1p_fail(p, "conflicting Content-Length");
		p->has_cl = 1;
		p->cl = cl;
	} else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
		/* a coding other than chunked last: body runs until close */
		if (lg_h1p_last_chunked(v, vl))
			p->chunked = 1;
		else
			p->close = 1;
	} else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
		if (lg_h1p_has_token(v, vl, "close"))
			p->close = 1;
		if (lg_h1p_has_token(v, vl, "keep-alive"))
			p->keepalive = 1;
	}
	return 0;
}

static long lg_h1p_chunk_size(struct lg_h1p *p, const char *l, size_t n)
{
	uint64_t sz = 0;
	size_t i;
	int d;

	for (i = 0; i < n; i++) {
		char ch = l[i];

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			break;
		if (sz >> 56)
			return lg_h1p_fail(p, "chunk size too large");
		sz = sz * 16 + (uint64_t)d;
	}
	if (i == 0)
		return lg_h1p_fail(p, "bad chunk size");
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i < n && l[i] != ';')
		return lg_h1p_fail(p, "bad chunk size");
	if (sz == 0) {
		p->st = LG_H1P_TRAILER;
	} else {
		p->left = sz;
		p->st = LG_H1P_CHUNK_DATA;
	}
	return 0;
}

/*
 * Feeds <n> bytes of a response stream. Returns the number of bytes used
 * (0 .. n), or -1 on a framing error (p->err says which; the state is then
 * sticky). Stops right after a complete response (p->st == LG_H1P_DONE), so
 * bytes of a following response are left to the caller. A line that is not
 * complete yet is not consumed: the caller MUST keep the unused bytes and
 * push them again, followed by new ones.
 */
static long lg_h1p_push(struct lg_h1p *p, const char *d, size_t n)
{
	size_t off = 0, take, ll;
	const char *nl;
	long rc;

	while (off < n && p->st != LG_H1P_DONE) {
		switch (p->st) {
		case LG_H1P_BODY_CL:
		case LG_H1P_CHUNK_DATA:
			take = n - off;
			if (take > p->left)
				take = (size_t)p->left;
			p->left -= take;
			p->body += take;
			off += take;
			if (p->left == 0 && p->st == LG_H1P_BODY_CL)
				p->st = LG_H1P_DONE;
			else if (p->left == 0)
				p->st = LG_H1P_CHUNK_END;
			continue;
		case LG_H1P_BODY_EOF:
			p->body += n - off;
			off = n;
			continue;
		case LG_H1P_ERROR:
			return -1;
		default:
			break;
		}
		nl = memchr(d + off, '\n', n - off);
		if (!nl) {
			if (n - off > LG_LINE_MAX)
				return lg_h1p_fail(p, "line too long");
			break;
		}
		ll = (size_t)(nl - (d + off));
		if (ll > LG_LINE_MAX)
			return lg_h1p_fail(p, "line too long");
		if (ll && d[off + ll - 1] == '\r')
			ll--;
		switch (p->st) {
		case LG_H1P_STATUS:
			rc = lg_h1p_status(p, d + off, ll);
			break;
		case LG_H1P_HEADER:
			rc = lg_h1p_header(p, d + off, ll);
			break;
		case LG_H1P_CHUNK_SIZE:
			rc = lg_h1p_chunk_size(p, d + off, ll);
			break;
		case LG_H1P_CHUNK_END:
			rc = ll ? lg_h1p_fail(p, "no CRLF after chunk data") : 0;
			p->st = rc ? p->st : LG_H1P_CHUNK_SIZE;
			break;
		case LG_H1P_TRAILER:
			rc = 0;
			if (ll == 0)
				p->st = LG_H1P_DONE;
			break;
		default:
			rc = lg_h1p_fail(p, "parser state");
			break;
		}
		if (rc < 0)
			return -1;
		off = (size_t)(nl - d) + 1;
	}
	return (long)off;
}

/* The peer closed the stream. Returns 0 when that completes the response
 * (a body delimited by close), -1 when the response is cut short. */
static int lg_h1p_eof(struct lg_h1p *p)
{
	if (p->st == LG_H1P_BODY_EOF || p->st == LG_H1P_DONE) {
		p->st = LG_H1P_DONE;
		return 0;
	}
	if (p->st != LG_H1P_ERROR)
		p->err = "connection closed before the response was complete";
	p->st = LG_H1P_ERROR;
	return -1;
}

/* After LG_H1P_DONE: must the connection be closed? */
static int lg_h1p_must_close(const struct lg_h1p *p)
{
	return p->close || (p->http10 && !p->keepalive);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

struct lg_cfg {
	const char *url;
	char authority[300];      /* Host header / :authority */
	char path[2048];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	double rate;              /* req/s over all connections; 0: closed */
	uint32_t conns;
	uint32_t streams;         /* h2 only; 1 for HTTP/1.1 */
	double duration;          /* seconds measured */
	double warmup;            /* seconds before the window, not counted */
	uint64_t timeout_ms;
	int cpu;                  /* -1: not pinned */
	int h2;
	int closed;
	int json;
	int streams_set;
};

/* ------------------------------------------------------------------ */
/* Run state                                                            */
/* ------------------------------------------------------------------ */

enum lg_conn_st {
	LG_CONN_IDLE,        /* no socket, nothing scheduled */
	LG_CONN_BACKOFF,     /* waiting before the next connect attempt */
	LG_CONN_CONNECTING,  /* non-blocking connect in progress */
	LG_CONN_READY,       /* connected; may carry requests */
};

static const char *lg_conn_st_str(enum lg_conn_st st)
{
	switch (st) {
	case LG_CONN_IDLE: return "idle";
	case LG_CONN_BACKOFF: return "backoff";
	case LG_CONN_CONNECTING: return "connecting";
	case LG_CONN_READY: return "ready";
	}
	return "?";
}

/* One request in flight (HTTP/1: one per connection; h2: one per stream). */
struct lg_req {
	uint64_t intended;      /* ns; closed mode: when it was sent */
	uint64_t sent;          /* ns */
	int32_t stream_id;      /* h2 */
	int status;             /* h2: from :status */
	int in_use;
	int abandoned;          /* timed out: the outcome is ignored */
	struct lg_req *next_free;
};

struct lg_conn {
	struct lg *lg;
	uint32_t idx;
	int fd;
	enum lg_conn_st st;
	ev_io io;
	ev_timer timer;             /* backoff, and connect timeout */
	struct buf in;
	struct buf out;
	uint32_t failures;          /* consecutive connect failures */
	int settled;                /* connected or failed once (start gate) */
	int dirty;                  /* on the flush list */
	struct lg_conn *dirty_next;
	/* HTTP/1.1 */
	struct lg_h1p h1p;
	struct lg_req h1req;        /* in_use: a request is in flight */
	/* h2 */
	nghttp2_session *h2;
	struct lg_req *slots;       /* <streams> entries */
	struct lg_req *free_slots;
	uint32_t active;            /* streams open (abandoned ones included) */
	int goaway;                 /* no new streams on this connection */
};

enum lg_phase {
	LG_PH_CONNECT,   /* opening connections before t0 */
	LG_PH_RUN,       /* schedule running */
	LG_PH_DRAIN,     /* open loop: schedule over, waiting for answers */
	LG_PH_DONE,
};

struct lg_stats {
	uint64_t scheduled;       /* open loop: intended in the window */
	uint64_t sent;
	uint64_t completed;       /* whole responses, any status */
	uint64_t ok_2xx;
	uint64_t non_2xx;
	uint64_t e_connect;
	uint64_t e_5xx;
	uint64_t e_timeout;
	uint64_t e_protocol;
	uint64_t all_completed;   /* warm-up and window: for CPU per request */
	uint64_t win_done;        /* responses (of any request) completed
	                           * inside the window: the achieved rate */
	struct lg_hist lat;       /* from the intended send time */
	struct lg_hist svc;       /* from the actual send time */
};

struct lg {
	struct lg_cfg cfg;
	struct ev_loop *loop;
	struct lg_conn *conns;
	char h1req[2600];
	size_t h1req_len;
	nghttp2_session_callbacks *h2cbs;
	nghttp2_nv nva[6];
	size_t nvlen;
	enum lg_phase phase;
	uint64_t t0, win_start, win_end, timeout_ns;
	uint64_t now_rx;          /* h2: arrival time of the batch in mem_recv */
	double period_ns;         /* 1e9 / rate */
	uint64_t n_total;         /* open loop: requests in warm-up + window */
	uint64_t first_measured;  /* open loop: index of the first counted */
	uint64_t next_gen;        /* requests generated (due) so far */
	uint64_t next_disp;       /* requests handed to connections so far */
	uint64_t *retry;          /* ring of intended times to send again */
	uint32_t retry_cap, retry_head, retry_len;
	uint32_t rr;              /* round-robin cursor */
	uint32_t settled;
	int want_dispatch;
	int tfd;
	ev_io sched_io;
	ev_timer start_timer, end_timer, sweep_timer, drain_timer;
	ev_prepare prep;
	ev_signal sigint, sigterm;
	struct lg_conn *dirty;
	struct lg_stats st;
	int printed_err[4];
};

enum { LG_E_CONNECT, LG_E_5XX, LG_E_TIMEOUT, LG_E_PROTOCOL };

static void lg_conn_connect(struct lg_conn *c);
static void lg_conn_close(struct lg_conn *c, int err_kind, uint64_t now);
static void lg_finish(struct lg *lg);

/* First error of each kind goes to stderr, so a failing run says why. */
static void lg_note_err(struct lg *lg, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void lg_note_err(struct lg *lg, int kind, const char *fmt, ...)
{
	va_list ap;

	if (lg->printed_err[kind])
		return;
	lg->printed_err[kind] = 1;
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (further errors of this kind not shown)\n", stderr);
}

static uint64_t lg_intended(const struct lg *lg, uint64_t i)
{
	return lg->t0 + (uint64_t)((double)i * lg->period_ns);
}

/* Open loop: is a request with this intended time inside the
 * measurement window (and so counted)? */
static int lg_open_measured(const struct lg *lg, uint64_t intended)
{
	return intended >= lg->win_start && intended < lg->win_end;
}

/* Counts one request-level error of <kind> if the request is measured. */
static void lg_req_error(struct lg *lg, const struct lg_req *r, int kind,
                         uint64_t now)
{
	int measured = lg->cfg.closed ?
		(lg->phase == LG_PH_RUN && now >= lg->win_start &&
		 now < lg->win_end) :
		lg_open_measured(lg, r->intended);

	if (!measured)
		return;
	if (kind == LG_E_TIMEOUT)
		lg->st.e_timeout++;
	else
		lg->st.e_protocol++;
}

static void lg_req_done(struct lg *lg, const struct lg_req *r, int status,
                        uint64_t now)
{
	int measured;

	lg->st.all_completed++;
	if (lg->phase != LG_PH_CONNECT && now >= lg->win_start &&
	    now < lg->win_end)
		lg->st.win_done++;
	if (lg->cfg.closed)
		measured = lg->phase == LG_PH_RUN && now >= lg->win_start &&
		           now < lg->win_end;
	else
		measured = lg_open_measured(lg, r->intended);
	if (!measured)
		return;
	lg->st.completed++;
	lg_hist_record(&lg->st.lat, now - r->intended);
	lg_hist_record(&lg->st.svc, now - r->sent);
	if (status >= 200 && status <= 299) {
		lg->st.ok_2xx++;
	} else {
		lg->st.non_2xx++;
		if (status >= 500) {
			lg->st.e_5xx++;
			lg_note_err(lg, LG_E_5XX, "status %d", status);
		}
	}
}

static void lg_mark_dirty(struct lg_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	c->dirty_next = c->lg->dirty;
	c->lg->dirty = c;
}

static void lg_conn_want(struct lg_conn *c, int events)
{
	if ((c->io.events & (EV_READ | EV_WRITE)) == events &&
	    ev_is_active(&c->io))
		return;
	ev_io_stop(c->lg->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->lg->loop, &c->io);
}

/* Free request capacity of a connection right now. */
static uint32_t lg_conn_room(const struct lg_conn *c)
{
	uint32_t cap;

	if (c->st != LG_CONN_READY)
		return 0;
	if (!c->h2)
		return c->h1req.in_use ? 0 : 1;
	if (c->goaway)
		return 0;
	cap = nghttp2_session_get_remote_settings(c->h2,
		NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (cap > c->lg->cfg.streams)
		cap = c->lg->cfg.streams;
	return c->active < cap ? cap - c->active : 0;
}

/* Requests started but not finished (abandoned ones do not count). */
static uint64_t lg_outstanding(const struct lg *lg)
{
	uint64_t n = 0;
	uint32_t i, k;

	for (i = 0; i < lg->cfg.conns; i++) {
		const struct lg_conn *c = &lg->conns[i];

		if (c->h1req.in_use)
			n++;
		if (c->slots)
			for (k = 0; k < lg->cfg.streams; k++)
				if (c->slots[k].in_use && !c->slots[k].abandoned)
					n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* nghttp2 glue                                                         */
/* ------------------------------------------------------------------ */

static void *lg_ng_malloc(size_t size, void *ud)
{
	(void)ud;
	return mem_alloc(size);
}

static void lg_ng_free(void *ptr, void *ud)
{
	(void)ud;
	mem_free(ptr);
}

static void *lg_ng_calloc(size_t n, size_t size, void *ud)
{
	(void)ud;
	return mem_calloc(n, size);
}

static void *lg_ng_realloc(void *ptr, size_t size, void *ud)
{
	(void)ud;
	return mem_realloc(ptr, size);
}

static nghttp2_mem lg_ng_mem = {
	NULL, lg_ng_malloc, lg_ng_free, lg_ng_calloc, lg_ng_realloc
};

static void *lg_ev_realloc(void *ptr, long size)
{
	if (size <= 0) {
		mem_free(ptr);
		return NULL;
	}
	return mem_realloc(ptr, (size_t)size);
}

static int lg_h2_on_header(nghttp2_session *s, const nghttp2_frame *f,
                           const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen,
                           uint8_t flags, void *ud)
{
	struct lg_req *r;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 ||
	    memcmp(name, ":status", 7) != 0)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!r || valuelen != 3 || value[0] < '1' || value[0] > '5' ||
	    value[1] < '0' || value[1] > '9' || value[2] < '0' ||
	    value[2] > '9')
		return 0;
	r->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 +
	            (value[2] - '0');
	return 0;
}

static int lg_h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f,
                               void *ud)
{
	struct lg_conn *c = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY)
		c->goaway = 1;
	return 0;
}

static void lg_retry_push(struct lg *lg, uint64_t intended)
{
	if (lg->retry_len == lg->retry_cap) {
		lg->st.e_protocol += lg_open_measured(lg, intended);
		return;
	}
	lg->retry[(lg->retry_head + lg->retry_len) % lg->retry_cap] = intended;
	lg->retry_len++;
}

static int lg_h2_on_stream_close(nghttp2_session *s, int32_t stream_id,
                                 uint32_t error_code, void *ud)
{
	struct lg_conn *c = ud;
	struct lg *lg = c->lg;
	struct lg_req *r = nghttp2_session_get_stream_user_data(s, stream_id);
	uint64_t now;

	if (!r)
		return 0;
	now = lg->now_rx ? lg->now_rx : lg_now_ns();
	if (r->abandoned) {
		/* already counted as a timeout */
	} else if (error_code == NGHTTP2_NO_ERROR && r->status) {
		lg_req_done(lg, r, r->status, now);
	} else if (error_code == NGHTTP2_REFUSED_STREAM && !lg->cfg.closed) {
		/* never processed by the server: send it again */
		lg_retry_push(lg, r->intended);
	} else if (error_code != NGHTTP2_REFUSED_STREAM) {
		lg_req_error(lg, r, LG_E_PROTOCOL, now);
		lg_note_err(lg, LG_E_PROTOCOL, "h2 stream %d closed: %s",
		            stream_id, nghttp2_http2_strerror(error_code));
	}
	r->in_use = 0;
	r->next_free = c->free_slots;
	c->free_slots = r;
	c->active--;
	lg->want_dispatch = 1;
	return 0;
}

static int lg_h2_setup_callbacks(struct lg *lg)
{
	if (nghttp2_session_callbacks_new(&lg->h2cbs) != 0)
		return -1;
	nghttp2_session_callbacks_set_on_header_callback(lg->h2cbs,
		lg_h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(lg->h2cbs,
		lg_h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(lg->h2cbs,
		lg_h2_on_stream_close);
	return 0;
}

static int lg_h2_start(struct lg_conn *c)
{
	nghttp2_settings_entry iv[2] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 24 },
	};
	uint32_t k;

	if (nghttp2_session_client_new3(&c->h2, c->lg->h2cbs, c, NULL,
	                                &lg_ng_mem) != 0) {
		c->h2 = NULL;
		return -1;
	}
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
	                                          1 << 30) != 0)
		return -1;
	c->goaway = 0;
	c->active = 0;
	c->free_slots = NULL;
	for (k = 0; k < c->lg->cfg.streams; k++) {
		c->slots[k].in_use = 0;
		c->slots[k].next_free = c->free_slots;
		c->free_slots = &c->slots[k];
	}
	lg_mark_dirty(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static void lg_conn_schedule(struct lg_conn *c, double after)
{
	c->st = LG_CONN_BACKOFF;
	ev_timer_stop(c->lg->loop, &c->timer);
	ev_timer_set(&c->timer, after, 0.);
	ev_timer_start(c->lg->loop, &c->timer);
}

/*
 * Closes the socket of <c> and, unless the run is over, plans a new
 * connection. Requests in flight on it fail with <err_kind> (-1: a clean
 * close with nothing in flight, or one the caller already accounted for).
 */
static void lg_conn_close(struct lg_conn *c, int err_kind, uint64_t now)
{
	struct lg *lg = c->lg;
	uint32_t k;

	ev_io_stop(lg->loop, &c->io);
	ev_timer_stop(lg->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->h1req.in_use) {
		if (err_kind >= 0)
			lg_req_error(lg, &c->h1req, err_kind, now);
		c->h1req.in_use = 0;
	}
	if (c->h2) {
		nghttp2_session_del(c->h2);
		c->h2 = NULL;
	}
	if (c->slots) {
		for (k = 0; k < lg->cfg.streams; k++) {
			struct lg_req *r = &c->slots[k];

			if (r->in_use && !r->abandoned && err_kind >= 0)
				lg_req_error(lg, r, err_kind, now);
			r->in_use = 0;
		}
	}
	c->active = 0;
	c->free_slots = NULL;
	buf_reset(&c->in);
	buf_reset(&c->out);
	lg->want_dispatch = 1;
	if (lg->phase == LG_PH_DONE) {
		c->st = LG_CONN_IDLE;
		return;
	}
	if (err_kind == LG_E_CONNECT) {
		double back = 0.05 * (double)(1u << (c->failures < 5 ?
		                                     c->failures : 5));

		c->failures++;
		lg_conn_schedule(c, back > 1.0 ? 1.0 : back);
	} else {
		lg_conn_schedule(c, 0.);
	}
}

static void lg_conn_settle(struct lg_conn *c)
{
	struct lg *lg = c->lg;

	if (c->settled)
		return;
	c->settled = 1;
	if (++lg->settled == lg->cfg.conns && lg->phase == LG_PH_CONNECT)
		ev_feed_event(lg->loop, &lg->start_timer, EV_TIMER);
}

static void lg_conn_connect_failed(struct lg_conn *c, int err)
{
	struct lg *lg = c->lg;

	lg->st.e_connect++;
	lg_note_err(lg, LG_E_CONNECT, "connection %u (%s): connect: %s",
	            c->idx, lg_conn_st_str(c->st), strerror(err));
	lg_conn_settle(c);
	lg_conn_close(c, LG_E_CONNECT, lg_now_ns());
}

static void lg_conn_connected(struct lg_conn *c)
{
	int one = 1;

	ev_timer_stop(c->lg->loop, &c->timer);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = LG_CONN_READY;
	c->failures = 0;
	lg_conn_settle(c);
	if (c->lg->cfg.h2 && lg_h2_start(c) < 0) {
		lg_note_err(c->lg, LG_E_PROTOCOL, "h2 session setup failed");
		c->lg->st.e_protocol++;
		lg_conn_close(c, -1, lg_now_ns());
		return;
	}
	lg_conn_want(c, EV_READ);
	c->lg->want_dispatch = 1;
}

/* Writes out what is queued (pulling h2 frames first). Returns 0, or -1
 * when the connection failed and was closed. */
static int lg_conn_flush(struct lg_conn *c)
{
	const uint8_t *data;
	nghttp2_ssize n;
	ssize_t w;

	for (;;) {
		while (c->h2 && buf_len(&c->out) < LG_OUT_PUMP) {
			n = nghttp2_session_mem_send2(c->h2, &data);
			if (n < 0) {
				lg_note_err(c->lg, LG_E_PROTOCOL, "h2 send: %s",
				            nghttp2_strerror((int)n));
				lg_conn_close(c, LG_E_PROTOCOL, lg_now_ns());
				return -1;
			}
			if (n == 0)
				break;
			if (buf_append(&c->out, data, (size_t)n) < 0) {
				lg_conn_close(c, LG_E_PROTOCOL, lg_now_ns());
				return -1;
			}
		}
		if (buf_len(&c->out) == 0)
			break;
		w = send(c->fd, buf_data(&c->out), buf_len(&c->out),
		         MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				lg_conn_want(c, EV_READ | EV_WRITE);
				return 0;
			}
			lg_note_err(c->lg, LG_E_PROTOCOL, "send: %s",
			            strerror(errno));
			lg_conn_close(c, LG_E_PROTOCOL, lg_now_ns());
			return -1;
		}
		buf_consume(&c->out, (size_t)w);
	}
	lg_conn_want(c, EV_READ);
	return 0;
}

/* HTTP/1.1: parses what arrived at <now>; returns -1 if <c> was closed. */
static int lg_h1_input(struct lg_conn *c, uint64_t now)
{
	struct lg *lg = c->lg;
	long used;

	while (buf_len(&c->in) > 0) {
		if (!c->h1req.in_use) {
			lg_note_err(lg, LG_E_PROTOCOL,
			            "connection %u: bytes with no request "
			            "outstanding", c->idx);
			lg->st.e_protocol++;
			lg_conn_close(c, -1, now);
			return -1;
		}
		used = lg_h1p_push(&c->h1p, buf_data(&c->in), buf_len(&c->in));
		if (used < 0) {
			lg_note_err(lg, LG_E_PROTOCOL, "connection %u: %s",
			            c->idx, c->h1p.err);
			lg_conn_close(c, LG_E_PROTOCOL, now);
			return -1;
		}
		buf_consume(&c->in, (size_t)used);
		if (c->h1p.st != LG_H1P_DONE)
			break;
		c->h1req.in_use = 0;
		lg_req_done(lg, &c->h1req, c->h1p.status, now);
		lg->want_dispatch = 1;
		if (lg_h1p_must_close(&c->h1p)) {
			lg_conn_close(c, -1, now);
			return -1;
		}
	}
	return 0;
}

static void lg_conn_eof(struct lg_conn *c, uint64_t now)
{
	struct lg *lg = c->lg;

	if (c->h1req.in_use && !c->h2) {
		if (lg_h1p_eof(&c->h1p) == 0) {
			c->h1req.in_use = 0;
			lg_req_done(lg, &c->h1req, c->h1p.status, now);
		} else {
			lg_note_err(lg, LG_E_PROTOCOL, "connection %u: %s",
			            c->idx, c->h1p.err);
		}
	} else if (c->h2 && c->active && !c->goaway) {
		lg_note_err(lg, LG_E_PROTOCOL,
		            "connection %u: h2 peer closed with streams open",
		            c->idx);
	}
	lg_conn_close(c, LG_E_PROTOCOL, now);
}

static void lg_conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lg_conn *c = w->data;
	struct lg *lg = c->lg;
	uint64_t now;
	nghttp2_ssize used;
	ssize_t n;
	size_t room;
	char *dst;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	if (c->st == LG_CONN_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			lg_conn_connect_failed(c, err);
			return;
		}
		lg_conn_connected(c);
		return;
	}
	if (revents & EV_WRITE) {
		if (lg_conn_flush(c) < 0)
			return;
	}
	if (!(revents & EV_READ))
		return;
	room = buf_room(&c->in);
	if (room > LG_READ_CHUNK)
		room = LG_READ_CHUNK;
	dst = room ? buf_reserve(&c->in, room) : NULL;
	if (!dst) {
		lg_note_err(lg, LG_E_PROTOCOL, "connection %u: response head "
		            "larger than %d bytes", c->idx, LG_IN_LIMIT);
		lg_conn_close(c, LG_E_PROTOCOL, lg_now_ns());
		return;
	}
	n = recv(c->fd, dst, room, 0);
	now = lg_now_ns();
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		lg_note_err(lg, LG_E_PROTOCOL, "connection %u: recv: %s",
		            c->idx, strerror(errno));
		lg_conn_close(c, LG_E_PROTOCOL, now);
		return;
	}
	if (n == 0) {
		if (!c->h2 && !c->h1req.in_use) {
			lg_conn_close(c, -1, now);   /* idle keep-alive close */
			return;
		}
		if (c->h2 && c->active == 0) {
			lg_conn_close(c, -1, now);
			return;
		}
		lg_conn_eof(c, now);
		return;
	}
	buf_produce(&c->in, (size_t)n);
	if (!c->h2) {
		lg_h1_input(c, now);
		return;
	}
	lg->now_rx = now;
	used = nghttp2_session_mem_recv2(c->h2,
		(const uint8_t *)buf_data(&c->in), buf_len(&c->in));
	lg->now_rx = 0;
	buf_reset(&c->in);
	if (used < 0) {
		lg_note_err(lg, LG_E_PROTOCOL, "connection %u: h2: %s", c->idx,
		            nghttp2_strerror((int)used));
		lg_conn_close(c, LG_E_PROTOCOL, now);
		return;
	}
	lg_mark_dirty(c);   /* WINDOW_UPDATE, SETTINGS ACK, PING ACK ... */
	if (c->goaway && c->active == 0) {
		lg_conn_close(c, -1, now);
		return;
	}
	if (!nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2))
		lg_conn_close(c, c->active ? LG_E_PROTOCOL : -1, now);
}

static void lg_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->st == LG_CONN_CONNECTING)
		lg_conn_connect_failed(c, ETIMEDOUT);
	else if (c->st == LG_CONN_BACKOFF)
		lg_conn_connect(c);
}

static void lg_conn_connect(struct lg_conn *c)
{
	struct lg *lg = c->lg;
	int fd;
	double tmo;

	if (lg->phase == LG_PH_DONE)
		return;
	fd = socket(lg->cfg.addr.ss_family,
	            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->st = LG_CONN_CONNECTING;
	if (fd < 0) {
		lg_conn_connect_failed(c, errno);
		return;
	}
	c->fd = fd;
	if (connect(fd, (struct sockaddr *)&lg->cfg.addr, lg->cfg.addrlen) < 0 &&
	    errno != EINPROGRESS) {
		lg_conn_connect_failed(c, errno);
		return;
	}
	tmo = (double)lg->cfg.timeout_ms / 1000.0;
	ev_timer_stop(lg->loop, &c->timer);
	ev_timer_set(&c->timer, tmo, 0.);
	ev_timer_start(lg->loop, &c->timer);
	lg_conn_want(c, EV_WRITE);
}

/* Hands one request to <c>. Returns 0, or -1 if <c> cannot take it; <c>
 * then has no room left (closed, or no new h2 streams), so callers may
 * simply try another connection. */
static int lg_conn_send(struct lg_conn *c, uint64_t intended, uint64_t now)
{
	struct lg *lg = c->lg;
	struct lg_req *r;
	int32_t id;

	if (!c->h2) {
		if (buf_append(&c->out, lg->h1req, lg->h1req_len) < 0) {
			lg_conn_close(c, -1, now);
			return -1;
		}
		r = &c->h1req;
		lg_h1p_init(&c->h1p);
	} else {
		r = c->free_slots;
		if (!r) {
			c->goaway = 1;
			return -1;
		}
		id = nghttp2_submit_request2(c->h2, NULL, lg->nva, lg->nvlen,
		                             NULL, r);
		if (id < 0) {
			/* stream ids exhausted and the like: start afresh */
			c->goaway = 1;
			return -1;
		}
		c->free_slots = r->next_free;
		c->active++;
		r->stream_id = id;
		r->status = 0;
		r->abandoned = 0;
	}
	r->intended = intended;
	r->sent = now;
	r->in_use = 1;
	lg_mark_dirty(c);
	return 0;
}

/* Next connection with room, round-robin; NULL if none. */
static struct lg_conn *lg_pick(struct lg *lg)
{
	uint32_t k, i;

	for (k = 0; k < lg->cfg.conns; k++) {
		i = (lg->rr + k) % lg->cfg.conns;
		if (lg_conn_room(&lg->conns[i])) {
			lg->rr = (i + 1) % lg->cfg.conns;
			return &lg->conns[i];
		}
	}
	return NULL;
}

/* Open loop: sends queued requests while connections have room; drops
 * (as timeouts) those that waited past the timeout. */
static void lg_dispatch_open(struct lg *lg, uint64_t now)
{
	struct lg_conn *c;
	uint64_t intended;
	int from_retry;

	for (;;) {
		if (lg->retry_len) {
			intended = lg->retry[lg->retry_head];
			from_retry = 1;
		} else if (lg->next_disp < lg->next_gen) {
			intended = lg_intended(lg, lg->next_disp);
			from_retry = 0;
		} else {
			return;
		}
		if (now - intended <= lg->timeout_ns || now < intended) {
			c = lg_pick(lg);
			if (!c)
				return;
			if (lg_conn_send(c, intended, now) < 0)
				continue;   /* that one is out; try another */
			if (lg_open_measured(lg, intended))
				lg->st.sent++;
		} else if (lg_open_measured(lg, intended)) {
			lg->st.e_timeout++;
			lg_note_err(lg, LG_E_TIMEOUT, "request waited over the "
			            "timeout in the local queue");
		}
		if (from_retry) {
			lg->retry_head = (lg->retry_head + 1) % lg->retry_cap;
			lg->retry_len--;
		} else {
			lg->next_disp++;
		}
	}
}

/* Closed loop: every connection keeps as many requests in flight as it
 * may. */
static void lg_dispatch_closed(struct lg *lg, uint64_t now)
{
	uint32_t i, room;

	if (lg->phase != LG_PH_RUN)
		return;
	for (i = 0; i < lg->cfg.conns; i++) {
		struct lg_conn *c = &lg->conns[i];

		room = lg_conn_room(c);
		while (room--) {
			if (lg_conn_send(c, now, now) < 0)
				break;
			if (now >= lg->win_start)
				lg->st.sent++;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Schedule and run phases                                             */
/* ------------------------------------------------------------------ */

static void lg_arm(struct lg *lg, uint64_t at)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(at / LG_NS);
	its.it_value.tv_nsec = (long)(at % LG_NS);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	timerfd_settime(lg->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void lg_sched_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lg *lg = w->data;
	uint64_t exp, now = lg_now_ns();

	(void)loop;
	(void)revents;
	if (read(lg->tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		return;
	while (lg->next_gen < lg->n_total &&
	       lg_intended(lg, lg->next_gen) <= now) {
		if (lg->next_gen >= lg->first_measured)
			lg->st.scheduled++;
		lg->next_gen++;
	}
	if (lg->next_gen < lg->n_total)
		lg_arm(lg, lg_intended(lg, lg->next_gen));
	lg->want_dispatch = 1;
}

/* Times out requests in flight and in the queue. */
static void lg_sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg *lg = w->data;
	uint64_t now = lg_now_ns();
	uint32_t i, k;

	(void)loop;
	(void)revents;
	for (i = 0; i < lg->cfg.conns; i++) {
		struct lg_conn *c = &lg->conns[i];

		if (!c->h2 && c->h1req.in_use &&
		    now - c->h1req.intended > lg->timeout_ns) {
			lg_req_error(lg, &c->h1req, LG_E_TIMEOUT, now);
			lg_note_err(lg, LG_E_TIMEOUT, "no complete response "
			            "within %llu ms",
			            (unsigned long long)lg->cfg.timeout_ms);
			c->h1req.in_use = 0;
			lg_conn_close(c, -1, now);   /* HTTP/1 cannot cancel */
			continue;
		}
		if (!c->h2)
			continue;
		for (k = 0; k < lg->cfg.streams; k++) {
			struct lg_req *r = &c->slots[k];

			if (!r->in_use || r->abandoned ||
			    now - r->intended <= lg->timeout_ns)
				continue;
			lg_req_error(lg, r, LG_E_TIMEOUT, now);
			lg_note_err(lg, LG_E_TIMEOUT, "no complete response "
			            "within %llu ms",
			            (unsigned long long)lg->cfg.timeout_ms);
			r->abandoned = 1;
			nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE,
			                          r->stream_id, NGHTTP2_CANCEL);
			lg_mark_dirty(c);
		}
	}
	if (!lg->cfg.closed)
		lg->want_dispatch = 1;   /* drops queued requests past due */
}

static void lg_finish(struct lg *lg)
{
	uint32_t i;

	if (lg->phase == LG_PH_DONE)
		return;
	lg->phase = LG_PH_DONE;
	for (i = 0; i < lg->cfg.conns; i++)
		lg_conn_close(&lg->conns[i], -1, lg_now_ns());
	ev_break(lg->loop, EVBREAK_ALL);
}

static void lg_end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg *lg = w->data;

	(void)loop;
	(void)revents;
	if (lg->cfg.closed) {
		lg_finish(lg);
		return;
	}
	lg->phase = LG_PH_DRAIN;
	lg->want_dispatch = 1;
	/* the oldest possible outstanding request expires by then */
	ev_timer_set(&lg->drain_timer,
	             (double)lg->timeout_ns / 1e9 + 0.2, 0.);
	ev_timer_start(lg->loop, &lg->drain_timer);
}

/* Drain deadline: whatever is still open timed out. */
static void lg_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg *lg = w->data;
	uint32_t i, k;

	(void)loop;
	(void)revents;
	for (i = 0; i < lg->cfg.conns; i++) {
		struct lg_conn *c = &lg->conns[i];

		if (c->h1req.in_use) {
			lg_req_error(lg, &c->h1req, LG_E_TIMEOUT, lg->win_end);
			c->h1req.in_use = 0;
		}
		for (k = 0; c->slots && k < lg->cfg.streams; k++) {
			struct lg_req *r = &c->slots[k];

			if (r->in_use && !r->abandoned) {
				lg_req_error(lg, r, LG_E_TIMEOUT, lg->win_end);
				r->abandoned = 1;
			}
		}
	}
	for (; lg->retry_len; lg->retry_len--) {
		lg->st.e_timeout += lg_open_measured(lg,
			lg->retry[lg->retry_head]);
		lg->retry_head = (lg->retry_head + 1) % lg->retry_cap;
	}
	for (; lg->next_disp < lg->next_gen; lg->next_disp++)
		lg->st.e_timeout += lg_open_measured(lg,
			lg_intended(lg, lg->next_disp));
	lg_finish(lg);
}

static void lg_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg *lg = w->data;
	double run = lg->cfg.warmup + lg->cfg.duration;

	(void)loop;
	(void)revents;
	if (lg->phase != LG_PH_CONNECT)
		return;
	ev_timer_stop(lg->loop, &lg->start_timer);
	lg->phase = LG_PH_RUN;
	ev_now_update(lg->loop);
	lg->t0 = lg_now_ns();
	lg->win_start = lg->t0 + (uint64_t)(lg->cfg.warmup * 1e9);
	lg->win_end = lg->t0 + (uint64_t)(run * 1e9);
	ev_timer_set(&lg->end_timer, run, 0.);
	ev_timer_start(lg->loop, &lg->end_timer);
	if (!lg->cfg.closed) {
		lg->period_ns = 1e9 / lg->cfg.rate;
		lg->n_total = (uint64_t)ceil(run * lg->cfg.rate - 1e-9);
		lg->first_measured =
			(uint64_t)ceil(lg->cfg.warmup * lg->cfg.rate - 1e-9);
		/* guard the float edges: index i counts iff its time does */
		while (lg->first_measured > 0 &&
		       lg_intended(lg, lg->first_measured - 1) >= lg->win_start)
			lg->first_measured--;
		while (lg->first_measured < lg->n_total &&
		       lg_intended(lg, lg->first_measured) < lg->win_start)
			lg->first_measured++;
		while (lg->n_total > 0 &&
		       lg_intended(lg, lg->n_total - 1) >= lg->win_end)
			lg->n_total--;
		lg_arm(lg, lg->t0);
	}
	lg->want_dispatch = 1;
}

static void lg_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct lg *lg = w->data;
	struct lg_conn *c;
	uint64_t now;

	(void)loop;
	(void)revents;
	if (lg->phase == LG_PH_DONE)
		return;
	if (lg->want_dispatch && lg->phase != LG_PH_CONNECT) {
		lg->want_dispatch = 0;
		now = lg_now_ns();
		if (lg->cfg.closed)
			lg_dispatch_closed(lg, now);
		else
			lg_dispatch_open(lg, now);
	}
	while ((c = lg->dirty)) {
		lg->dirty = c->dirty_next;
		c->dirty = 0;
		if (c->st == LG_CONN_READY)
			lg_conn_flush(c);
	}
	if (lg->phase == LG_PH_DRAIN && lg->retry_len == 0 &&
	    lg->next_gen == lg->n_total && lg->next_disp == lg->next_gen &&
	    lg_outstanding(lg) == 0)
		lg_finish(lg);
}

static void lg_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct lg *lg = w->data;

	(void)loop;
	(void)revents;
	fprintf(stderr, "loadgen: interrupted, reporting what was measured\n");
	if (lg->phase == LG_PH_RUN || lg->phase == LG_PH_DRAIN) {
		uint64_t now = lg_now_ns();

		if (now < lg->win_end)
			lg->win_end = now;
	}
	lg_finish(lg);
}

/* ------------------------------------------------------------------ */
/* Report                                                               */
/* ------------------------------------------------------------------ */

/* Responses completed inside the window per second of window: what the
 * server actually delivered (below the target rate when it cannot keep
 * up, whatever the latency of the last few responses). */
static double lg_achieved(const struct lg *lg)
{
	if (lg->win_end <= lg->win_start)
		return 0;
	return (double)lg->st.win_done /
	       ((double)(lg->win_end - lg->win_start) / 1e9);
}

static uint64_t lg_errors(const struct lg *lg)
{
	return lg->st.e_connect + lg->st.e_5xx + lg->st.e_timeout +
	       lg->st.e_protocol;
}

static void lg_cpu(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static unsigned long long lg_us(uint64_t ns)
{
	return (unsigned long long)((ns + 500) / 1000);
}

static void lg_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void lg_json_hist(const char *name, const struct lg_hist *h)
{
	printf(",\"%s\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
	       "\"p999\":%llu,\"max\":%llu,\"min\":%llu,\"mean\":%.1f}",
	       name, lg_us(lg_hist_pct(h, 50)), lg_us(lg_hist_pct(h, 90)),
	       lg_us(lg_hist_pct(h, 99)), lg_us(lg_hist_pct(h, 99.9)),
	       lg_us(h->max), lg_us(h->count ? h->min : 0),
	       h->count ? h->sum / (double)h->count / 1000.0 : 0.0);
}

/*
 * One line, one object. Fields: tool, mode (open|closed), proto (h1|h2),
 * url, target_rps (0 in closed mode), connections, streams, duration_s,
 * warmup_s, timeout_ms, scheduled, sent, completed, ok_2xx, non_2xx,
 * errors {connect, status_5xx, timeout, protocol}, errors_total,
 * achieved_rps (responses completed inside the window per second),
 * all_completed (warm-up included), latency_us (from the intended send
 * time) and service_us (from the actual send time) {p50, p90, p99, p999,
 * max, min, mean}, cpu_user_s, cpu_sys_s (loadgen's own CPU time).
 */
static void lg_report_json(const struct lg *lg)
{
	const struct lg_cfg *cfg = &lg->cfg;
	double cu, cs;

	lg_cpu(&cu, &cs);
	printf("{\"tool\":\"loadgen\",\"mode\":\"%s\",\"proto\":\"%s\",\"url\":",
	       cfg->closed ? "closed" : "open", cfg->h2 ? "h2" : "h1");
	lg_json_str(cfg->url);
	printf(",\"target_rps\":%.1f,\"connections\":%u,\"streams\":%u,"
	       "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"timeout_ms\":%llu,"
	       "\"scheduled\":%llu,\"sent\":%llu,\"completed\":%llu,"
	       "\"ok_2xx\":%llu,\"non_2xx\":%llu,\"errors\":{\"connect\":%llu,"
	       "\"status_5xx\":%llu,\"timeout\":%llu,\"protocol\":%llu},"
	       "\"errors_total\":%llu,\"achieved_rps\":%.1f,"
	       "\"all_completed\":%llu",
	       cfg->closed ? 0.0 : cfg->rate, cfg->conns, cfg->streams,
	       cfg->duration, cfg->warmup,
	       (unsigned long long)cfg->timeout_ms,
	       (unsigned long long)lg->st.scheduled,
	       (unsigned long long)lg->st.sent,
	       (unsigned long long)lg->st.completed,
	       (unsigned long long)lg->st.ok_2xx,
	       (unsigned long long)lg->st.non_2xx,
	       (unsigned long long)lg->st.e_connect,
	       (unsigned long long)lg->st.e_5xx,
	       (unsigned long long)lg->st.e_timeout,
	       (unsigned long long)lg->st.e_protocol,
	       (unsigned long long)lg_errors(lg), lg_achieved(lg),
	       (unsigned long long)lg->st.all_completed);
	lg_json_hist("latency_us", &lg->st.lat);
	lg_json_hist("service_us", &lg->st.svc);
	printf(",\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f}\n", cu, cs);
}

static void lg_text_hist(const char *label, const struct lg_hist *h)
{
	printf("  %s p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
	       label, lg_us(lg_hist_pct(h, 50)), lg_us(lg_hist_pct(h, 90)),
	       lg_us(lg_hist_pct(h, 99)), lg_us(lg_hist_pct(h, 99.9)),
	       lg_us(h->max));
}

static void lg_report_text(const struct lg *lg)
{
	const struct lg_cfg *cfg = &lg->cfg;
	double cu, cs;

	lg_cpu(&cu, &cs);
	if (cfg->closed)
		printf("loadgen: %s closed loop, %u connections x %u in flight, "
		       "%.1f s (+%.1f s warm-up), %s\n",
		       cfg->h2 ? "h2c" : "HTTP/1.1", cfg->conns, cfg->streams,
		       cfg->duration, cfg->warmup, cfg->url);
	else if (cfg->h2)
		printf("loadgen: h2c open loop, %.1f req/s over %u connections "
		       "(up to %u streams each), %.1f s (+%.1f s warm-up), %s\n",
		       cfg->rate, cfg->conns, cfg->streams, cfg->duration,
		       cfg->warmup, cfg->url);
	else
		printf("loadgen: HTTP/1.1 open loop, %.1f req/s over %u "
		       "connections, %.1f s (+%.1f s warm-up), %s\n", cfg->rate,
		       cfg->conns, cfg->duration, cfg->warmup, cfg->url);
	printf("  requests: scheduled %llu, sent %llu, completed %llu "
	       "(2xx %llu, non-2xx %llu)\n",
	       (unsigned long long)lg->st.scheduled,
	       (unsigned long long)lg->st.sent,
	       (unsigned long long)lg->st.completed,
	       (unsigned long long)lg->st.ok_2xx,
	       (unsigned long long)lg->st.non_2xx);
	printf("  errors:   %llu (connect %llu, status>=500 %llu, timeout %llu,"
	       " protocol %llu)\n", (unsigned long long)lg_errors(lg),
	       (unsigned long long)lg->st.e_connect,
	       (unsigned long long)lg->st.e_5xx,
	       (unsigned long long)lg->st.e_timeout,
	       (unsigned long long)lg->st.e_protocol);
	if (cfg->closed)
		printf("  rate:     %.1f req/s\n", lg_achieved(lg));
	else
		printf("  rate:     target %.1f req/s, achieved %.1f req/s\n",
		       cfg->rate, lg_achieved(lg));
	printf("  latency in us, from the %s send time:\n",
	       cfg->closed ? "actual" : "intended");
	lg_text_hist("         ", &lg->st.lat);
	if (!cfg->closed) {
		printf("  service time in us, from the actual send time:\n");
		lg_text_hist("         ", &lg->st.svc);
	}
	printf("  loadgen cpu: user %.2f s, sys %.2f s\n", cu, cs);
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */
/* ------------------------------------------------------------------ */

static void loadgen_usage(FILE *f)
{
	fputs(
"usage: loadgen --url http://IP:PORT/PATH (--rate R | --closed) [flags]\n"
"       loadgen --self-test\n"
"  --url URL          target; the host must be an IP literal ([::1] for v6)\n"
"  --authority A      Host / :authority to send (default: the --url's)\n"
"  --rate R           open loop: R requests/s in total, sent at fixed\n"
"                     intended times; latency counts from those times\n"
"  --closed           closed loop (like wrk): each connection keeps one\n"
"                     request (h2: --streams) in flight; reports req/s\n"
"  --connections C    connections (default 10)\n"
"  --h2               HTTP/2 cleartext with prior knowledge (h2c)\n"
"  --streams M        h2: at most M concurrent streams per connection\n"
"                     (default 10)\n"
"  --duration S       measured seconds (default 10; fractions allowed)\n"
"  --warmup S         seconds run before measuring (default 1)\n"
"  --timeout MS       a request not answered MS ms after its intended\n"
"                     time is a timeout error; also the connect timeout\n"
"                     (default 5000)\n"
"  --cpu N            pin loadgen to CPU N\n"
"  --json             print one JSON object on one line instead of text\n"
"exit status: 0 no errors, 1 errors or nothing completed, 2 usage\n", f);
}

static int lg_bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	loadgen_usage(stderr);
	return -1;
}

static int lg_parse_double(const char *s, double *out, double lo, double hi)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int lg_parse_u64(const char *s, uint64_t *out, uint64_t lo,
                        uint64_t hi)
{
	uint64_t v = 0;
	const char *p = s;

	if (!s || !*s)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int lg_parse_url(struct lg_cfg *cfg, const char *url)
{
	const char *a, *slash, *hs, *he, *ps = NULL;
	char host[64];
	size_t alen, hl;
	uint64_t port = 80;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&cfg->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cfg->addr;

	if (strncasecmp(url, "http://", 7) != 0)
		return lg_bad("--url must start with http:// (got %s)", url);
	a = url + 7;
	slash = strchr(a, '/');
	alen = slash ? (size_t)(slash - a) : strlen(a);
	if (alen == 0 || alen >= sizeof(cfg->authority))
		return lg_bad("bad --url authority: %s", url);
	memcpy(cfg->authority, a, alen);
	cfg->authority[alen] = '\0';
	if (strlen(slash ? slash : "/") >= sizeof(cfg->path))
		return lg_bad("--url path too long: %s", url);
	snprintf(cfg->path, sizeof(cfg->path), "%s", slash ? slash : "/");
	if (strpbrk(cfg->path, " \r\n\t"))
		return lg_bad("--url path holds whitespace: %s", url);
	if (cfg->authority[0] == '[') {
		hs = cfg->authority + 1;
		he = strchr(hs, ']');
		if (!he)
			return lg_bad("bad IPv6 literal in --url %s", url);
		if (he[1] == ':')
			ps = he + 2;
		else if (he[1])
			return lg_bad("bad --url authority: %s", url);
	} else {
		hs = cfg->authority;
		he = strrchr(hs, ':');
		if (he)
			ps = he + 1;
		else
			he = hs + strlen(hs);
	}
	if (ps && lg_parse_u64(ps, &port, 1, 65535) < 0)
		return lg_bad("bad port in --url %s", url);
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(host))
		return lg_bad("bad host in --url %s", url);
	memcpy(host, hs, hl);
	host[hl] = '\0';
	memset(&cfg->addr, 0, sizeof(cfg->addr));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		cfg->addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		cfg->addrlen = sizeof(*s6);
	} else {
		return lg_bad("--url host must be an IP literal (no DNS): %s",
		              url);
	}
	return 0;
}

/* Returns 0 to run, 1 for --help / --self-test handled by the caller via
 * <mode>, -1 on a usage error (already reported). */
static int lg_parse_args(struct lg_cfg *cfg, int argc, char **argv,
                         int *self_test)
{
	int i;
	uint64_t u;
	const char *authority = NULL;

	memset(cfg, 0, sizeof(*cfg));
	cfg->conns = 10;
	cfg->streams = 10;
	cfg->duration = 10;
	cfg->warmup = 1;
	cfg->timeout_ms = 5000;
	cfg->cpu = -1;
	*self_test = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, *eq;
		char name[32];
		size_t nl;

		if (strncmp(a, "--", 2) != 0)
			return lg_bad("unexpected argument %s", a);
		a += 2;
		eq = strchr(a, '=');
		nl = eq ? (size_t)(eq - a) : strlen(a);
		if (nl >= sizeof(name))
			return lg_bad("unknown flag --%s", a);
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (!strcmp(name, "help")) {
			loadgen_usage(stdout);
			return 1;
		}
		if (!strcmp(name, "self-test")) {
			*self_test = 1;
			continue;
		}
		if (!strcmp(name, "h2") || !strcmp(name, "json") ||
		    !strcmp(name, "closed")) {
			if (eq)
				return lg_bad("--%s takes no value", name);
			if (!strcmp(name, "h2"))
				cfg->h2 = 1;
			else if (!strcmp(name, "json"))
				cfg->json = 1;
			else
				cfg->closed = 1;
			continue;
		}
		if (eq)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			return lg_bad("--%s needs a value", name);
		if (!strcmp(name, "url")) {
			cfg->url = v;
		} else if (!strcmp(name, "authority")) {
			authority = v;
		} else if (!strcmp(name, "rate")) {
			if (lg_parse_double(v, &cfg->rate, 0.001, 1e7) < 0)
				return lg_bad("bad --rate %s", v);
		} else if (!strcmp(name, "connections")) {
			if (lg_parse_u64(v, &u, 1, LG_MAX_CONNS) < 0)
				return lg_bad("bad --connections %s", v);
			cfg->conns = (uint32_t)u;
		} else if (!strcmp(name, "streams")) {
			if (lg_parse_u64(v, &u, 1, LG_MAX_STREAMS) < 0)
				return lg_bad("bad --streams %s", v);
			cfg->streams = (uint32_t)u;
			cfg->streams_set = 1;
		} else if (!strcmp(name, "duration")) {
			if (lg_parse_double(v, &cfg->duration, 0.001, 1e6) < 0)
				return lg_bad("bad --duration %s", v);
		} else if (!strcmp(name, "warmup")) {
			if (lg_parse_double(v, &cfg->warmup, 0, 1e6) < 0)
				return lg_bad("bad --warmup %s", v);
		} else if (!strcmp(name, "timeout")) {
			if (lg_parse_u64(v, &cfg->timeout_ms, 1, 3600000) < 0)
				return lg_bad("bad --timeout %s (ms)", v);
		} else if (!strcmp(name, "cpu")) {
			if (lg_parse_u64(v, &u, 0, CPU_SETSIZE - 1) < 0)
				return lg_bad("bad --cpu %s", v);
			cfg->cpu = (int)u;
		} else {
			return lg_bad("unknown flag --%s", name);
		}
	}
	if (*self_test)
		return 0;
	if (!cfg->url)
		return lg_bad("%s", "--url is required");
	if (lg_parse_url(cfg, cfg->url) < 0)
		return -1;
	if (authority) {
		/* a sidecar's outbound listener routes by the authority, not
		 * by the address it was reached at */
		if (authority[0] == '\0' ||
		    strlen(authority) >= sizeof(cfg->authority) ||
		    strpbrk(authority, " \r\n\t/"))
			return lg_bad("bad --authority %s", authority);
		snprintf(cfg->authority, sizeof(cfg->authority), "%s",
		         authority);
	}
	if (cfg->closed && cfg->rate > 0)
		return lg_bad("%s", "--rate and --closed exclude each other");
	if (!cfg->closed && cfg->rate <= 0)
		return lg_bad("%s", "--rate R (or --closed) is required");
	if (!cfg->h2) {
		if (cfg->streams_set && cfg->streams != 1)
			return lg_bad("%s", "--streams needs --h2 "
			              "(HTTP/1.1 has one request in flight)");
		cfg->streams = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Self test (histogram precision, HTTP/1 framing)                     */
/* ------------------------------------------------------------------ */

static int lg_st_fail;
static int lg_st_checks;

#define LG_CHECK(cond) do {                                                \
	lg_st_checks++;                                                     \
	if (!(cond)) {                                                      \
		lg_st_fail++;                                               \
		fprintf(stderr, "self-test: %s:%d: %s\n", __FILE__,        \
		        __LINE__, #cond);                                   \
	}                                                                   \
} while (0)

/* Feeds <resp> in pieces of <step> bytes the way the connection does
 * (unused bytes kept and pushed again). Returns bytes of <resp> used by
 * the first complete response, or -1 on error / incomplete. */
static long lg_st_feed(struct lg_h1p *p, const char *resp, size_t len,
                       size_t step, int eof)
{
	size_t off = 0, avail = 0;
	long r;

	lg_h1p_init(p);
	while (p->st != LG_H1P_DONE) {
		if (avail < len)
			avail = avail + step > len ? len : avail + step;
		else if (eof)
			return lg_h1p_eof(p) == 0 ? (long)off : -1;
		else
			return -1;
		r = lg_h1p_push(p, resp + off, avail - off);
		if (r < 0)
			return -1;
		off += (size_t)r;
	}
	return (long)off;
}

static void lg_st_ok(const char *resp, int status, uint64_t body, int close,
                     int eof)
{
	size_t len = strlen(resp), step;
	struct lg_h1p p;
	long r;

	for (step = 1; step <= len; step++) {
		r = lg_st_feed(&p, resp, len, step, eof);
		LG_CHECK(r == (long)len || (eof && r >= 0));
		LG_CHECK(p.status == status);
		LG_CHECK(p.body == body);
		LG_CHECK(lg_h1p_must_close(&p) == close);
		if (r < 0 || p.status != status || p.body != body) {
			fprintf(stderr, "  response %.40s... step %zu\n", resp,
			        step);
			return;
		}
	}
}

static void lg_st_bad(const char *resp, int eof)
{
	size_t len = strlen(resp), step;
	struct lg_h1p p;

	for (step = 1; step <= len; step++)
		LG_CHECK(lg_st_feed(&p, resp, len, step, eof) < 0);
}

static int lg_self_test(void)
{
	static struct lg_hist h;
	struct lg_h1p p;
	uint64_t v, low, width, x = 88172645463325252ull;
	unsigned i, prev = 0;
	const char *two;
	long r;

	/* histogram: every value lies in its bucket; buckets are ordered and
	 * at most 1/128 of their value wide */
	for (i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = x >> (x % 40 + 20);
		low = lg_hist_low(lg_hist_index(v), &width);
		if (v < (1ull << 42)) {
			LG_CHECK(low <= v && v < low + width);
			LG_CHECK(v < LG_HIST_SUB || width * 128 <= low);
		}
	}
	/* powers of two start a bucket */
	for (v = 1; v < (1ull << 41); v = v * 2 + 1) {
		LG_CHECK(lg_hist_index(v) >= prev);
		prev = lg_hist_index(v);
		LG_CHECK(lg_hist_index(v + 1) == prev + 1);
	}
	LG_CHECK(lg_hist_index(~0ull) == LG_HIST_BUCKETS - 1);
	lg_hist_init(&h);
	for (v = 1; v <= 1000000; v++)
		lg_hist_record(&h, v * 1000);   /* 1 us .. 1 s uniform */
	LG_CHECK(fabs((double)lg_hist_pct(&h, 50) / 500e6 - 1) < 0.005);
	LG_CHECK(fabs((double)lg_hist_pct(&h, 99) / 990e6 - 1) < 0.005);
	LG_CHECK(fabs((double)lg_hist_pct(&h, 99.9) / 999e6 - 1) < 0.005);
	LG_CHECK(lg_hist_pct(&h, 100) == 1000000000ull);
	LG_CHECK(h.min == 1000);
	lg_hist_init(&h);
	lg_hist_record(&h, 123456789);
	LG_CHECK(lg_hist_pct(&h, 50) == 123456789);   /* clamped to min/max */
	lg_hist_record(&h, 5);
	LG_CHECK(lg_hist_pct(&h, 50) == 5);
	LG_CHECK(fabs((double)lg_hist_pct(&h, 51) / 123456789 - 1) < 0.004);
	lg_hist_init(&h);
	LG_CHECK(lg_hist_pct(&h, 50) == 0);

	/* HTTP/1.1 framing, fed in every piece size */
	lg_st_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 5,
	         0, 0);
	lg_st_ok("HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked"
	         "\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n"
	         "\r\n", 200, 11, 0, 0);
	lg_st_ok("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\n\n"
	         "A\nabcdefghij\n0\n\n", 200, 10, 0, 0);
	lg_st_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
	         "Content-Length: 2\r\n\r\nok", 201, 2, 0, 0);
	lg_st_ok("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 204,
	         0, 0, 0);
	lg_st_ok("HTTP/1.1 503 Busy\r\nConnection: close\r\n"
	         "content-length: 3\r\n\r\nbad", 503, 3, 1, 0);
	lg_st_ok("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, 1, 1,
	         0);
	lg_st_ok("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	         "Content-Length: 1\r\n\r\nx", 200, 1, 0, 0);
	lg_st_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, 0, 0,
	         0);
	lg_st_ok("HTTP/1.1 200 OK\r\n\r\nuntil close", 200, 11, 1, 1);
	lg_st_ok("HTTP/1.1 200\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
	         "\r\nabc", 200, 3, 0, 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell", 1);
	lg_st_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	          "5\r\nhello\r\n", 1);
	lg_st_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	          "zz\r\n", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	          "3\r\nabcX\r\n", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	          "Content-Length: 4\r\n\r\nabcd", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999"
	          "\r\n\r\n", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", 0);
	lg_st_bad("HTTP/2.0 200 OK\r\n\r\n", 0);
	lg_st_bad("HTTP/1.1 20 OK\r\n\r\n", 0);
	lg_st_bad("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0);
	lg_st_bad("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0);
	lg_st_bad("garbage\r\n", 0);
	/* two responses back to back: the first stops at its end */
	two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 404 No"
	      "\r\nContent-Length: 0\r\n\r\n";
	lg_h1p_init(&p);
	r = lg_h1p_push(&p, two, strlen(two));
	LG_CHECK(r == 40 && p.st == LG_H1P_DONE && p.body == 2);
	lg_h1p_init(&p);
	LG_CHECK(lg_h1p_push(&p, two + r, strlen(two) - (size_t)r) ==
	         (long)(strlen(two) - (size_t)r));
	LG_CHECK(p.st == LG_H1P_DONE && p.status == 404);
	/* an unterminated line longer than the limit is refused */
	{
		static char big[LG_LINE_MAX + 64];

		memset(big, 'a', sizeof(big) - 1);
		memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
		lg_h1p_init(&p);
		LG_CHECK(lg_h1p_push(&p, big, sizeof(big) - 1) < 0);
	}

	printf("loadgen self-test: %d checks, %d failed\n", lg_st_checks,
	       lg_st_fail);
	return lg_st_fail ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Main                                                                 */
/* ------------------------------------------------------------------ */

static int lg_setup(struct lg *lg)
{
	struct lg_cfg *cfg = &lg->cfg;
	struct rlimit rl;
	uint32_t i;
	int n;

	if (cfg->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cfg->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			fprintf(stderr, "loadgen: --cpu %d: %s\n", cfg->cpu,
			        strerror(errno));
			return -1;
		}
	}
	/* the schedule timer should fire on time, not up to 50 us late */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)cfg->conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)cfg->conns + 64) {
			fprintf(stderr, "loadgen: %u connections need more "
			        "file descriptors (limit %llu)\n", cfg->conns,
			        (unsigned long long)rl.rlim_cur);
			return -1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	lg_hist_init(&lg->st.lat);
	lg_hist_init(&lg->st.svc);
	n = snprintf(lg->h1req, sizeof(lg->h1req),
	             "GET %s HTTP/1.1\r\nHost: %s\r\n"
	             "User-Agent: meshd-loadgen\r\nAccept: */*\r\n\r\n",
	             cfg->path, cfg->authority);
	if (n < 0 || (size_t)n >= sizeof(lg->h1req))
		return -1;
	lg->h1req_len = (size_t)n;
#define LG_NV(i, n, v) do {                                                  \
	lg->nva[i].name = (uint8_t *)(n);                                   \
	lg->nva[i].namelen = strlen(n);                                     \
	lg->nva[i].value = (uint8_t *)(v);                                  \
	lg->nva[i].valuelen = strlen(v);                                    \
	lg->nva[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME |                   \
	                   NGHTTP2_NV_FLAG_NO_COPY_VALUE;                   \
} while (0)
	LG_NV(0, ":method", "GET");
	LG_NV(1, ":scheme", "http");
	LG_NV(2, ":authority", cfg->authority);
	LG_NV(3, ":path", cfg->path);
	LG_NV(4, "user-agent", "meshd-loadgen");
	LG_NV(5, "accept", "*/*");
#undef LG_NV
	lg->nvlen = 6;
	if (cfg->h2 && lg_h2_setup_callbacks(lg) < 0)
		return -1;
	lg->timeout_ns = cfg->timeout_ms * 1000000ull;
	lg->retry_cap = cfg->conns * cfg->streams + 16;
	lg->retry = mem_calloc(lg->retry_cap, sizeof(*lg->retry));
	lg->conns = mem_calloc(cfg->conns, sizeof(*lg->conns));
	if (!lg->retry || !lg->conns)
		return -1;
	ev_set_allocator(lg_ev_realloc);
	lg->loop = ev_loop_new(EVFLAG_AUTO);
	if (!lg->loop)
		return -1;
	lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (lg->tfd < 0) {
		fprintf(stderr, "loadgen: timerfd: %s\n", strerror(errno));
		return -1;
	}
	ev_io_init(&lg->sched_io, lg_sched_cb, lg->tfd, EV_READ);
	lg->sched_io.data = lg;
	ev_io_start(lg->loop, &lg->sched_io);
	ev_prepare_init(&lg->prep, lg_prepare_cb);
	lg->prep.data = lg;
	ev_prepare_start(lg->loop, &lg->prep);
	/* connections get this long to open before the schedule starts */
	ev_timer_init(&lg->start_timer, lg_start_cb,
	              cfg->timeout_ms < 2000 ? (double)cfg->timeout_ms / 1e3 :
	                                       2., 0.);
	lg->start_timer.data = lg;
	ev_timer_init(&lg->end_timer, lg_end_cb, 1., 0.);
	lg->end_timer.data = lg;
	ev_timer_init(&lg->drain_timer, lg_drain_cb, 1., 0.);
	lg->drain_timer.data = lg;
	{
		double sweep = (double)cfg->timeout_ms / 1e4;

		sweep = sweep < 0.001 ? 0.001 : sweep > 0.1 ? 0.1 : sweep;
		ev_timer_init(&lg->sweep_timer, lg_sweep_cb, sweep, sweep);
		lg->sweep_timer.data = lg;
	}
	ev_signal_init(&lg->sigint, lg_signal_cb, SIGINT);
	lg->sigint.data = lg;
	ev_signal_init(&lg->sigterm, lg_signal_cb, SIGTERM);
	lg->sigterm.data = lg;
	ev_signal_start(lg->loop, &lg->sigint);
	ev_signal_start(lg->loop, &lg->sigterm);
	for (i = 0; i < cfg->conns; i++) {
		struct lg_conn *c = &lg->conns[i];

		c->lg = lg;
		c->idx = i;
		c->fd = -1;
		buf_init(&c->in, LG_IN_LIMIT);
		buf_init(&c->out, LG_OUT_LIMIT);
		ev_init(&c->io, lg_conn_io_cb);
		c->io.data = c;
		ev_init(&c->timer, lg_conn_timer_cb);
		c->timer.data = c;
		if (cfg->h2) {
			c->slots = mem_calloc(cfg->streams, sizeof(*c->slots));
			if (!c->slots)
				return -1;
		}
	}
	return 0;
}

static void lg_teardown(struct lg *lg)
{
	uint32_t i;

	if (lg->conns) {
		for (i = 0; i < lg->cfg.conns; i++) {
			buf_free(&lg->conns[i].in);
			buf_free(&lg->conns[i].out);
			MEM_FREE(&lg->conns[i].slots);
		}
	}
	MEM_FREE(&lg->conns);
	MEM_FREE(&lg->retry);
	if (lg->h2cbs)
		nghttp2_session_callbacks_del(lg->h2cbs);
	if (lg->tfd > 0)
		close(lg->tfd);
	if (lg->loop)
		ev_loop_destroy(lg->loop);
}

int main(int argc, char **argv)
{
	static struct lg lg;
	int rc, self_test;
	uint32_t i;

	rc = lg_parse_args(&lg.cfg, argc, argv, &self_test);
	if (rc < 0)
		return 2;
	if (rc > 0)
		return 0;
	if (self_test)
		return lg_self_test();
	lg.tfd = -1;
	if (lg_setup(&lg) < 0) {
		fprintf(stderr, "loadgen: setup failed\n");
		lg_teardown(&lg);
		return 1;
	}
	lg.phase = LG_PH_CONNECT;
	ev_timer_start(lg.loop, &lg.start_timer);
	ev_timer_start(lg.loop, &lg.sweep_timer);
	for (i = 0; i < lg.cfg.conns; i++)
		lg_conn_connect(&lg.conns[i]);
	ev_run(lg.loop, 0);
	if (lg.cfg.json)
		lg_report_json(&lg);
	else
		lg_report_text(&lg);
	rc = lg.st.completed > 0 && lg_errors(&lg) == 0 ? 0 : 1;
	lg_teardown(&lg);
	return rc;
}
