/*
 * libFuzzer target for the proxy's request path: one downstream connection
 * driven from an in-memory socket, through detection, HTTP/1 (h1.c, pool.c,
 * rewrite.c), HTTP/2 (h2side.c) or opaque TCP (tcp.c), to an upstream the
 * fuzzer plays itself.
 *
 * Every input gets a fresh proxy (proxy_setup: explicit mode, inbound,
 * --inbound-forward to a loopback TCP listener this process owns, every
 * timeout an hour so that no timer depends on wall-clock time) and a
 * socketpair whose one end is handed to conn_new as an accepted inbound
 * connection. The upstream must be TCP: pool.c connects with sock_connect
 * and there is no seam for another kind of socket, so the listener is
 * bound once per process on 127.0.0.1:0 and the fuzzer accepts from it.
 *
 * Input layout: byte 0 = flags, byte 1 = chunking, then the client bytes,
 * then for each upstream connection in accept order a separator FZ_SEP and
 * the bytes that upstream sends back (a connection without a segment sends
 * nothing). Within the bytes of a peer, FZ_NEXT splits parts: a part
 * after the first one waits until the peer received new bytes, as a server
 * answers a request, or a client sends a body after a 100 Continue.
 *   0x01  small socket buffers (client socketpair, upstream receive
 *         window): partial writes and back-pressure
 *   0x02  the client half-closes (SHUT_WR) after its last byte
 *   0x04  an upstream half-closes after its last byte (close-delimited
 *         bodies, servers that hang up)
 *   0x08  the client reads nothing until the end (a stalled reader)
 *   0x10  upstreams end with RST instead of FIN
 *   0x20  graceful shutdown (proxy_shutdown) once the client's first part
 *         is out: drains of h1, h2 (GOAWAY) and the pool
 *   0x40  the upstream refuses connections (--inbound-forward names a
 *         bound socket that does not listen)
 *   chunking: bits 0-2 client write size, bits 3-5 upstream write size
 *   (fz_chunks[]), bits 6-7 loop iterations per step (1, 2, 4, 8).
 * Each step writes one chunk of the client bytes and one of each
 * upstream's bytes, accepts new upstream connections, reads (and keeps)
 * what the proxy sent, and runs the loop without waiting. When everything
 * is written and nothing moves, the client end closes, then the upstream
 * ends, and the loop runs until the connection is gone.
 *
 * Invariants (abort() on violation, with a line on stderr):
 *  - the connection ends once both peers have closed: px->nconns and the
 *    pool's idle and busy counts return to 0 within a bounded number of
 *    loop iterations;
 *  - after proxy_teardown, core/mem holds exactly the bytes and blocks it
 *    held before proxy_setup, and the process has the same open fds;
 *  - when the connection can only have spoken HTTP/1 (fz_h1_only: its
 *    first bytes detect as HTTP/1 and no upstream could switch protocols),
 *    what each upstream received is a sequence of requests that core/http1
 *    parses strictly, bodies framed as their heads say (a truncated tail is
 *    allowed: exchanges may be cut short). A proxy that forwards what its
 *    own parser refuses is a request-smuggling bug.
 *
 * FUZZ_PROXY_TRACE=1 in the environment prints what each peer received and
 * the proxy's debug log (handy when writing seeds).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/http1.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sock.h"
#include "proxy/conn.h"
#include "proxy/detect.h"
#include "proxy/pool.h"
#include "proxy/proxy_main.h"

#define FZ_SEP "\n~~~\n"
#define FZ_SEP_LEN (sizeof(FZ_SEP) - 1)
#define FZ_NEXT "\n~+~\n"
#define FZ_NEXT_LEN (sizeof(FZ_NEXT) - 1)
#define FZ_MAX_UP 16             /* upstream connections with a segment */
#define FZ_CAP (256 * 1024)      /* bytes kept of what a peer receives */
#define FZ_MAX_STEPS 4096
#define FZ_QUIET_STEPS 3         /* steps without movement before ending */
#define FZ_END_ITERS 512         /* loop iterations allowed to wind down */
#define FZ_FDS 512               /* fds compared before/after an input */
#define FZ_SMALLBUF 4096

#define FZ_F_SMALLBUF  0x01
#define FZ_F_CLI_SHUTW 0x02
#define FZ_F_UP_SHUTW  0x04
#define FZ_F_CLI_STALL 0x08
#define FZ_F_UP_RST    0x10
#define FZ_F_DRAIN     0x20
#define FZ_F_REFUSE    0x40

#define FZ_FAIL(...) do { \
	fprintf(stderr, "fuzz_proxy: " __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

static const size_t fz_chunks[8] = { 0, 1, 2, 5, 13, 64, 300, 1500 };

struct fz_peer {
	int fd;
	const uint8_t *p;            /* bytes to send */
	size_t len, off;
	size_t pend;                 /* end of the part being sent */
	int wait;                    /* the next part waits for bytes */
	size_t mark;                 /* nrx when the wait began */
	int shut;                    /* SHUT_WR done */
	size_t nrx;                  /* bytes received (all) */
	size_t ncap;                 /* of them kept in cap */
	char *cap;                   /* FZ_CAP bytes (fz_caps) */
};

struct fz {
	struct proxy px;
	uint8_t flags;
	size_t cchunk, uchunk;
	int iters;
	struct fz_peer cli;
	struct fz_peer up[FZ_MAX_UP];
	int nup;
	const uint8_t *seg[FZ_MAX_UP];
	size_t seglen[FZ_MAX_UP];
	int nseg;
	unsigned stmask;             /* 1 << conn state, every state seen */
};

/* listeners: normal, small receive buffer; then a socket that is bound
 * but does not listen (connections to it are refused) */
static int fz_lfd[3] = { -1, -1, -1 };
static char fz_fwd[3][SOCK_ADDR_STRLEN];
static struct fz fz_g;
static struct pollfd fz_pfd[FZ_FDS];
/* what the peers received; static, so that core/mem's accounting only
 * sees the proxy */
static char fz_caps[FZ_MAX_UP + 1][FZ_CAP];

static int fz_listen(int small, int refuse, char *addr, size_t addrlen)
{
	struct sock_addr a;
	char err[128];
	int fd, v = FZ_SMALLBUF;

	if (sock_addr_parse("127.0.0.1:0", &a, err, sizeof(err)) < 0)
		FZ_FAIL("parse: %s", err);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		FZ_FAIL("socket: %s", strerror(errno));
	/* set before listen so that accepted sockets inherit it (and the
	 * window scale is chosen for it) */
	if (small && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		FZ_FAIL("SO_RCVBUF: %s", strerror(errno));
	if (bind(fd, &a.sa, a.len) < 0 || (!refuse && listen(fd, 128) < 0))
		FZ_FAIL("listen 127.0.0.1:0: %s", strerror(errno));
	if (sock_local_addr(fd, &a) < 0 ||
	    sock_addr_format(&a, addr, addrlen) < 0)
		FZ_FAIL("listener address");
	return fd;
}

/* FUZZ_PROXY_TRACE=1: what each peer received, on stderr (seed work). */
static int fz_trace;

static void fz_dump_peer(const char *what, int i, const struct fz_peer *pr)
{
	fprintf(stderr, "---- %s %d: %zu bytes received, %zu of %zu sent "
	        "----\n", what, i, pr->nrx, pr->off, pr->len);
	fwrite(pr->cap, 1, pr->ncap > 2048 ? 2048 : pr->ncap, stderr);
	fputc('\n', stderr);
}

static void fz_dump(const struct fz *f)
{
	int i;

	fprintf(stderr, "==== states seen 0x%x, %d upstream(s)\n", f->stmask,
	        f->nup);
	fz_dump_peer("client", 0, &f->cli);
	for (i = 0; i < f->nup; i++)
		fz_dump_peer("upstream", i, &f->up[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t i;

	(void)argc;
	(void)argv;
	fz_trace = getenv("FUZZ_PROXY_TRACE") != NULL;
	fz_lfd[0] = fz_listen(0, 0, fz_fwd[0], sizeof(fz_fwd[0]));
	fz_lfd[1] = fz_listen(1, 0, fz_fwd[1], sizeof(fz_fwd[1]));
	fz_lfd[2] = fz_listen(0, 1, fz_fwd[2], sizeof(fz_fwd[2]));
	/* debug lines are formatted (their arguments are exercised) and
	 * dropped */
	log_set_fd(fz_trace ? 2 : -1);
	fz_g.cli.cap = fz_caps[FZ_MAX_UP];
	for (i = 0; i < FZ_MAX_UP; i++)
		fz_g.up[i].cap = fz_caps[i];
	return 0;
}

/* Open fds below FZ_FDS (one poll call). */
static int fz_count_fds(void)
{
	int i, n = 0;

	for (i = 0; i < FZ_FDS; i++) {
		fz_pfd[i].fd = i;
		fz_pfd[i].events = 0;
		fz_pfd[i].revents = 0;
	}
	if (poll(fz_pfd, FZ_FDS, 0) < 0)
		FZ_FAIL("poll: %s", strerror(errno));
	for (i = 0; i < FZ_FDS; i++)
		if (!(fz_pfd[i].revents & POLLNVAL))
			n++;
	return n;
}

/* Splits the input after the two header bytes. */
static void fz_split(struct fz *f, const uint8_t *p, size_t n)
{
	const uint8_t *sep = memmem(p, n, FZ_SEP, FZ_SEP_LEN);

	f->cli.p = p;
	f->cli.len = sep ? (size_t)(sep - p) : n;
	f->nseg = 0;
	while (sep && f->nseg < FZ_MAX_UP) {
		const uint8_t *s = sep + FZ_SEP_LEN;
		size_t left = n - (size_t)(s - p);

		sep = memmem(s, left, FZ_SEP, FZ_SEP_LEN);
		f->seg[f->nseg] = s;
		f->seglen[f->nseg] = sep ? (size_t)(sep - s) : left;
		f->nseg++;
	}
}

/* Reads what the proxy sent to <pr>. Returns 1 when bytes came. */
static int fz_drain(struct fz_peer *pr)
{
	char tmp[16384];
	ssize_t r;
	int got = 0;
	size_t k;

	if (pr->fd < 0)
		return 0;
	while ((r = recv(pr->fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0) {
		k = (size_t)r;
		if (k > FZ_CAP - pr->ncap)
			k = FZ_CAP - pr->ncap;
		memcpy(pr->cap + pr->ncap, tmp, k);
		pr->ncap += k;
		pr->nrx += (size_t)r;
		got = 1;
	}
	return got;
}

/* Where the part of <pr>'s bytes that starts at pr->off ends. */
static size_t fz_part_end(const struct fz_peer *pr)
{
	const uint8_t *nx = memmem(pr->p + pr->off, pr->len - pr->off,
	                           FZ_NEXT, FZ_NEXT_LEN);

	return nx ? (size_t)(nx - pr->p) : pr->len;
}

/* Sends the next chunk of <pr>'s bytes. Returns 1 when something went. */
static int fz_feed(struct fz_peer *pr, size_t chunk, int shut)
{
	size_t n;
	ssize_t w;

	if (pr->fd < 0)
		return 0;
	if (pr->off == pr->pend && pr->pend < pr->len) {
		/* a part is out: the next one answers new bytes */
		if (!pr->wait) {
			pr->wait = 1;
			pr->mark = pr->nrx;
		}
		if (pr->nrx == pr->mark)
			return 0;
		pr->wait = 0;
		pr->off += FZ_NEXT_LEN;
		pr->pend = fz_part_end(pr);
	}
	n = pr->pend - pr->off;
	if (n == 0 && pr->off == pr->len) {
		if (shut && !pr->shut) {
			pr->shut = 1;
			(void)shutdown(pr->fd, SHUT_WR);
			return 1;
		}
		return 0;
	}
	if (chunk && n > chunk)
		n = chunk;
	w = send(pr->fd, pr->p + pr->off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w <= 0)
		return 0;
	pr->off += (size_t)w;
	return 1;
}

static void fz_close_peer(struct fz_peer *pr, int rst)
{
	struct linger lg = { 1, 0 };

	if (pr->fd < 0)
		return;
	if (rst)
		(void)setsockopt(pr->fd, SOL_SOCKET, SO_LINGER, &lg,
		                 sizeof(lg));
	close(pr->fd);
	pr->fd = -1;
}

/* Accepts the upstream connections the proxy opened. 1 when any came. */
static int fz_accept(struct fz *f, int lfd, int final)
{
	int fd, got = 0, v = FZ_SMALLBUF;
	struct fz_peer *pr;

	while ((fd = accept4(lfd, NULL, NULL,
	                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		got = 1;
		if (final || f->nup >= FZ_MAX_UP) {
			close(fd);
			continue;
		}
		/* without it Nagle holds a small write back until the
		 * proxy's delayed ACK (40 ms): bytes would seem lost */
		(void)sock_set_nodelay(fd);
		if (f->flags & FZ_F_SMALLBUF)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v,
			                 sizeof(v));
		pr = &f->up[f->nup];
		pr->fd = fd;
		pr->p = f->nup < f->nseg ? f->seg[f->nup] : NULL;
		pr->len = f->nup < f->nseg ? f->seglen[f->nup] : 0;
		pr->off = pr->nrx = pr->ncap = 0;
		pr->wait = pr->shut = 0;
		pr->pend = pr->p ? fz_part_end(pr) : 0;
		f->nup++;
	}
	return got;
}

static void fz_run(struct fz *f, int iters)
{
	struct proxy *px = &f->px;
	int i;

	for (i = 0; i < iters; i++) {
		ev_run(px->loop.ev, EVRUN_NOWAIT);
		if (px->conns)
			f->stmask |= 1u << px->conns->st;
	}
}

/*
 * What an upstream received from an HTTP/1-only connection: whole
 * requests (a truncated tail allowed) that parse strictly.
 */
static void fz_check_requests(const char *p, size_t n, int idx)
{
	static struct http1_header hdrs[2048];
	struct http1_limits lim = { .max_head = 1u << 20, .max_line = 1u << 20,
	                            .max_headers = 2048 };
	struct http1_chunked ch;
	struct http1_head h;
	size_t used, off, span, nreq = 0;
	int r;

	while (n > 0) {
		http1_head_init(&h, hdrs, 2048);
		r = http1_parse_request(p, n, &lim, &h);
		if (r == 0)
			return;
		if (r < 0)
			FZ_FAIL("upstream %d, request %zu: the proxy forwarded "
			        "a head its parser refuses: %s", idx, nreq,
			        http1_strerror(r));
		p += r;
		n -= (size_t)r;
		nreq++;
		switch (http1_request_body(&h)) {
		case HTTP1_BODY_NONE:
			break;
		case HTTP1_BODY_LENGTH:
			if (n < h.content_length)
				return;
			p += h.content_length;
			n -= (size_t)h.content_length;
			break;
		case HTTP1_BODY_CHUNKED:
			http1_chunked_init(&ch, &lim);
			for (;;) {
				r = http1_chunked_feed(&ch, p, n, &used, &off,
				                       &span);
				if (r < 0)
					FZ_FAIL("upstream %d, request %zu: "
					        "bad chunked body forwarded: %s",
					        idx, nreq, http1_strerror(r));
				p += used;
				n -= used;
				if (r == HTTP1_CHUNKED_DONE)
					break;
				if (r == HTTP1_CHUNKED_MORE)
					return;
			}
			break;
		default:
			FZ_FAIL("upstream %d, request %zu: request body "
			        "framing %d", idx, nreq,
			        (int)http1_request_body(&h));
		}
	}
}

/*
 * 1 when the connection can only have spoken HTTP/1 to its upstreams: its
 * first bytes are judged HTTP/1 (detection sees at most the first part,
 * later parts wait for the proxy's answer) and no upstream can have
 * switched protocols (a 101 somewhere in its bytes). The states sampled
 * between loop iterations are not enough: a connection may pass through
 * a state and close within one iteration.
 */
static int fz_h1_only(const struct fz *f)
{
	const uint8_t *nx = memmem(f->cli.p, f->cli.len, FZ_NEXT, FZ_NEXT_LEN);
	size_t n = nx ? (size_t)(nx - f->cli.p) : f->cli.len;
	int i;

	if (f->stmask & ((1u << CONN_ST_TCP) | (1u << CONN_ST_H2)))
		return 0;
	if (detect_protocol((const char *)f->cli.p,
	                    n > DETECT_MAX_BYTES ? DETECT_MAX_BYTES : n,
	                    NULL) != DETECT_HTTP1)
		return 0;
	for (i = 0; i < f->nseg; i++)
		if (memmem(f->seg[i], f->seglen[i], "101", 3))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f = &fz_g;
	struct proxy *px = &f->px;
	struct mem_stats m0, m1;
	int sv[2], small, k, lfd, fds0, i, step, quiet, v = FZ_SMALLBUF;
	uint32_t idle, busy;
	size_t first;
	char err[256];
	char *argv[] = {
		"proxy", "--mode", "explicit", "--inbound-forward", NULL,
		"--detect-timeout", "1h", "--header-timeout", "1h",
		"--keepalive-timeout", "1h", "--idle-timeout", "1h",
		"--connect-timeout", "1h", "--pool-idle-timeout", "1h",
		"--write-stall-timeout", "0", "--log-level", "debug",
	};

	if (size < 2)
		return 0;
	f->flags = data[0];
	f->cchunk = fz_chunks[data[1] & 7];
	f->uchunk = fz_chunks[(data[1] >> 3) & 7];
	f->iters = 1 << (data[1] >> 6);
	fz_split(f, data + 2, size - 2);
	f->nup = 0;
	f->stmask = 0;
	f->cli.off = f->cli.nrx = f->cli.ncap = 0;
	f->cli.wait = f->cli.shut = 0;
	f->cli.pend = fz_part_end(&f->cli);
	first = f->cli.pend;
	for (i = 0; i < FZ_MAX_UP; i++)
		f->up[i].fd = -1;
	small = (f->flags & FZ_F_SMALLBUF) != 0;
	k = (f->flags & FZ_F_REFUSE) ? 2 : small;
	lfd = fz_lfd[k];
	argv[4] = fz_fwd[k];

	fds0 = fz_count_fds();
	mem_get_stats(&m0);
	if (proxy_setup(px, (int)(sizeof(argv) / sizeof(argv[0])), argv, err,
	                sizeof(err)) < 0)
		FZ_FAIL("proxy_setup: %s", err);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	               sv) < 0)
		FZ_FAIL("socketpair: %s", strerror(errno));
	if (small) {
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	f->cli.fd = sv[0];
	/* the proxy owns sv[1] from here on (closed on failure too) */
	conn_new(px, sv[1], NULL, ROUTE_INBOUND, 0);
	fz_run(f, 1);

	/* the exchange: everything written, then until nothing moves */
	quiet = 0;
	for (step = 0; step < FZ_MAX_STEPS && quiet < FZ_QUIET_STEPS; step++) {
		int moved = 0;

		moved |= fz_feed(&f->cli, f->cchunk,
		                 f->flags & FZ_F_CLI_SHUTW);
		moved |= fz_accept(f, lfd, 0);
		for (i = 0; i < f->nup; i++) {
			moved |= fz_drain(&f->up[i]);
			moved |= fz_feed(&f->up[i], f->uchunk,
			                 f->flags & FZ_F_UP_SHUTW);
		}
		if (!(f->flags & FZ_F_CLI_STALL))
			moved |= fz_drain(&f->cli);
		fz_run(f, f->iters);
		if ((f->flags & FZ_F_DRAIN) && !px->draining &&
		    f->cli.off >= first) {
			proxy_shutdown(px, "fuzz");
			moved = 1;
		}
		/* a write the proxy does not take (back-pressure) is no
		 * movement: the exchange is stuck until a peer closes */
		quiet = moved ? 0 : quiet + 1;
		if (px->nconns == 0)
			break;
	}

	/* both peers go away; the connection must follow */
	(void)fz_drain(&f->cli);
	fz_close_peer(&f->cli, 0);
	fz_run(f, 2);
	for (i = 0; i < f->nup; i++) {
		(void)fz_drain(&f->up[i]);
		fz_close_peer(&f->up[i], f->flags & FZ_F_UP_RST);
	}
	quiet = 0;
	for (step = 0; step < FZ_END_ITERS && quiet < 2; step++) {
		int moved = fz_accept(f, lfd, 1);

		fz_run(f, 1);
		pool_counts(px->pool, &idle, &busy);
		if (!moved && px->nconns == 0 && idle == 0 && busy == 0)
			quiet++;
		else
			quiet = 0;
	}
	pool_counts(px->pool, &idle, &busy);
	if (px->nconns || idle || busy)
		FZ_FAIL("connection not gone after both peers closed: "
		        "nconns %u, upstream idle %u busy %u, states 0x%x",
		        px->nconns, idle, busy, f->stmask);

	/* only HTTP/1 spoken: the upstreams got clean requests */
	if (fz_h1_only(f))
		for (i = 0; i < f->nup; i++)
			if (f->up[i].ncap == f->up[i].nrx)
				fz_check_requests(f->up[i].cap, f->up[i].ncap,
				                  i);

	if (fz_trace)
		fz_dump(f);
	proxy_teardown(px);
	mem_get_stats(&m1);
	if (m1.bytes != m0.bytes || m1.blocks != m0.blocks)
		FZ_FAIL("core/mem leak: %llu bytes in %llu blocks before the "
		        "input, %llu in %llu after (states 0x%x)",
		        (unsigned long long)m0.bytes,
		        (unsigned long long)m0.blocks,
		        (unsigned long long)m1.bytes,
		        (unsigned long long)m1.blocks, f->stmask);
	if (fz_count_fds() != fds0)
		FZ_FAIL("fd leak: %d open before the input, %d after", fds0,
		        fz_count_fds());
	return 0;
}
