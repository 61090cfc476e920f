/*
 * h1srv: HTTP/1.1 server of abc-app. See h1srv.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * A connection holds at most one request in progress. Its life is:
 *   H1S_HEAD  waiting for a complete request head in <in>;
 *   H1S_BUSY  a request is in progress: its body is being read (dropped or
 *             echoed) and its answer produced; both must finish (body_done
 *             and resp_done) before the next head is parsed, which is what
 *             makes pipelining safe.
 * h1srv_process is the one place that makes progress; every event (bytes
 * read, socket writable, timer, front page ready) calls it. It alternates
 * sending with producing (parse, move body bytes, generate output up to
 * H1SRV_OUT_HIGH) until neither moves, or for H1SRV_ROUNDS rounds at most
 * (then <again> keeps the write watcher on, so the work resumes on the
 * next iteration without starving other connections). Then it sets the
 * watchers: read while <in> has room and input is still wanted; write
 * while output is queued or work is left.
 * A connection that is done answering shuts down its sending side and
 * lingers, dropping input, until the client closes (see h1srv_linger).
 * A connection that must go (error, EOF, end of lingering) is closed at
 * once but freed from a loop_defer, so that no callback below us on the
 * stack sees freed memory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "front.h"
#include "h1srv.h"
#include "http.h"
#include "origin.h"

#define H1SRV_IN_MAX (64 * 1024)
#define H1SRV_OUT_MAX (512 * 1024)
/* Produce body bytes only while less than this is queued. */
#define H1SRV_OUT_HIGH (128 * 1024)
/* Bytes moved per step of a streamed body (read, generated). */
#define H1SRV_STEP (16 * 1024)
#define H1SRV_MAX_CONNS 10000
/* How long a closing connection keeps draining what the client sends. */
#define H1SRV_LINGER_MS 2000
#define H1SRV_ACCEPT_BUDGET 64
/* Rounds of send-then-produce per event. */
#define H1SRV_ROUNDS 8

/* Values of <clen> for h1srv_put_head besides a length. */
#define H1SRV_CHUNKED (-1)
#define H1SRV_NOLEN (-2)

enum h1srv_st {
	H1S_HEAD,         /* waiting for a request head */
	H1S_BUSY,         /* a request is in progress */
};

static const char *h1srv_st_str(enum h1srv_st st)
{
	switch (st) {
	case H1S_HEAD:
		return "HEAD";
	case H1S_BUSY:
		return "BUSY";
	}
	return "?";
}

enum h1srv_body {
	H1B_NONE,         /* no request body */
	H1B_LENGTH,       /* Content-Length bytes */
	H1B_CHUNKED,      /* chunked */
};

struct h1srv_conn {
	ev_io rio;                  /* private */
	ev_io wio;                  /* private */
	struct loop_timer idle;     /* private: H1SRV_IDLE_MS without traffic */
	struct loop_timer wait;     /* private: delayed answers */
	struct loop_defer reap;     /* private: frees the connection */
	struct h1srv_conn *prev, *next; /* private: h1srv.conns */
	int fd;
	enum h1srv_st st;
	struct buf in;              /* bytes read, not yet parsed */
	struct buf out;             /* bytes to send */
	unsigned closing : 1;       /* closed, waiting to be freed */
	unsigned eof : 1;           /* the peer sent FIN */
	unsigned close_after : 1;   /* no further request on this connection */
	unsigned lingering : 1;     /* answered and shut down; draining input */
	/* the request in progress */
	unsigned keep_alive : 1;
	unsigned minor : 1;         /* HTTP/1.<minor> */
	unsigned body_done : 1;     /* request body consumed */
	unsigned resp_done : 1;     /* whole answer queued in <out> */
	unsigned echo : 1;          /* request body is the answer's body */
	unsigned gen : 1;           /* answer body is generated (/bytes) */
	unsigned resp_chunked : 1;  /* answer body uses chunked coding */
	unsigned echo_head : 1;     /* echo: answer head not queued yet */
	unsigned need_more : 1;     /* <in> holds no complete head */
	unsigned again : 1;         /* work left after the per-event budget */
	enum h1srv_body body;
	uint64_t body_left;         /* H1B_LENGTH: bytes still to read */
	struct http_chunked ch;     /* H1B_CHUNKED: decoder */
	uint64_t gen_off;           /* generated so far */
	int64_t echo_clen;          /* echo: Content-Length or H1SRV_CHUNKED */
	struct front_page *front;   /* A's page being built, or NULL */
	char what[80];              /* "GET /path", for logs */
	char peer[64];              /* "ip:port", only with --verbose */
	struct origin_resp resp;
};

static struct {
	ev_io accept;
	int fd;
	struct h1srv_conn *conns;
	unsigned nconns;
} h1srv = { .fd = -1 };

static void h1srv_process(struct h1srv_conn *c);

static void h1srv_free(void *arg)
{
	struct h1srv_conn *c = arg;

	buf_free(&c->in);
	buf_free(&c->out);
	mem_free(c);
}

static void h1srv_close(struct h1srv_conn *c)
{
	struct ev_loop *ev = abc.loop.ev;

	if (c->closing)
		return;
	c->closing = 1;
	ev_io_stop(ev, &c->rio);
	ev_io_stop(ev, &c->wio);
	loop_timer_stop(&abc.loop, &c->idle);
	loop_timer_stop(&abc.loop, &c->wait);
	if (c->front) {
		front_page_cancel(c->front);
		c->front = NULL;
	}
	close(c->fd);
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		h1srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h1srv.nconns--;
	loop_defer(&abc.loop, &c->reap);
}

/* Appends a response head. <clen>: body length, H1SRV_CHUNKED or
 * H1SRV_NOLEN. Returns 0, or -1 when <out> is full. */
static int h1srv_put_head(struct h1srv_conn *c, int status, const char *ctype,
                          int64_t clen)
{
	if (buf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status,
	               http_reason(status)) < 0)
		return -1;
	if (ctype && buf_printf(&c->out, "Content-Type: %s\r\n", ctype) < 0)
		return -1;
	if (clen >= 0 && buf_printf(&c->out, "Content-Length: %lld\r\n",
	                            (long long)clen) < 0)
		return -1;
	if (clen == H1SRV_CHUNKED &&
	    buf_append_str(&c->out, "Transfer-Encoding: chunked\r\n") < 0)
		return -1;
	if (!c->keep_alive &&
	    buf_append_str(&c->out, "Connection: close\r\n") < 0)
		return -1;
	if (c->keep_alive && !c->minor &&
	    buf_append_str(&c->out, "Connection: keep-alive\r\n") < 0)
		return -1;
	if (buf_append(&c->out, "\r\n", 2) < 0)
		return -1;
	abc_debug("%s http/1.1 %s -> %d", c->peer, c->what, status);
	return 0;
}

/* Answers the request with c->resp (an ORIGIN_FIXED answer). */
static void h1srv_answer(struct h1srv_conn *c)
{
	const struct origin_resp *r = &c->resp;
	int bodyless = origin_status_bodyless(r->status);

	if (h1srv_put_head(c, r->status, bodyless ? NULL : r->ctype,
	                   bodyless ? H1SRV_NOLEN : (int64_t)r->len) < 0 ||
	    (!bodyless && !r->head && buf_append(&c->out, r->body, r->len) < 0)) {
		h1srv_close(c);
		return;
	}
	c->resp_done = 1;
}

/* Refuses what cannot be parsed, and stops reading the connection. */
static void h1srv_refuse(struct h1srv_conn *c, int status, const char *body)
{
	c->st = H1S_HEAD;
	c->keep_alive = 0;
	c->close_after = 1;
	snprintf(c->what, sizeof(c->what), "(malformed)");
	origin_fixed(&c->resp, status, "text/plain", "%s\n", body);
	h1srv_answer(c);
}

static void h1srv_front_done(void *arg, const struct origin_resp *r)
{
	struct h1srv_conn *c = arg;
	int head = c->resp.head;

	c->front = NULL;
	memcpy(&c->resp, r, sizeof(*r));
	c->resp.head = head;
	h1srv_answer(c);
	h1srv_process(c);
}

static void h1srv_front(struct h1srv_conn *c)
{
	c->front = front_page_start(h1srv_front_done, c);
	if (!c->front) {
		origin_fixed(&c->resp, 503, "text/plain", "out of memory\n");
		h1srv_answer(c);
	}
}

static void h1srv_wait_cb(struct loop *loop, struct loop_timer *t)
{
	struct h1srv_conn *c = container_of(t, struct h1srv_conn, wait);

	(void)loop;
	if (c->resp.kind == ORIGIN_FRONT)
		h1srv_front(c);
	else
		h1srv_answer(c);
	h1srv_process(c);
}

/* Starts the answer of the request just parsed into c->resp. */
static void h1srv_respond(struct h1srv_conn *c, const struct http_msg *m)
{
	struct origin_resp *r = &c->resp;
	int64_t clen;

	switch (r->kind) {
	case ORIGIN_FIXED:
	case ORIGIN_FRONT:
		if (r->delay_ms)
			loop_timer_arm(&abc.loop, &c->wait, r->delay_ms);
		else if (r->kind == ORIGIN_FRONT)
			h1srv_front(c);
		else
			h1srv_answer(c);
		return;
	case ORIGIN_BYTES:
		c->resp_chunked = r->chunked && c->minor;
		clen = c->resp_chunked ? H1SRV_CHUNKED : (int64_t)r->nbytes;
		if (h1srv_put_head(c, 200, r->ctype, clen) < 0) {
			h1srv_close(c);
			return;
		}
		c->gen = !r->head;
		c->resp_done = r->head;
		return;
	case ORIGIN_ECHO:
		if (m->expect_continue && c->body != H1B_NONE &&
		    buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") < 0) {
			h1srv_close(c);
			return;
		}
		/* the head waits for the first body bytes, so that a body
		 * malformed from the start still gets a 400 */
		c->resp_chunked = c->body == H1B_CHUNKED;
		c->echo_clen = c->resp_chunked ? H1SRV_CHUNKED :
		       (int64_t)(c->body == H1B_LENGTH ? m->content_length : 0);
		c->echo = 1;
		c->echo_head = 1;
		return;
	}
}

/* Parses the next request head, if complete. Returns 1 when a request
 * started, 0 when more bytes are needed or the connection is done. */
static int h1srv_start_request(struct h1srv_conn *c)
{
	struct http_msg m;
	ssize_t n;

	n = http_parse_request(buf_data(&c->in), buf_len(&c->in), &m);
	c->need_more = n == 0;
	if (n == 0 && buf_len(&c->in) >= H1SRV_HEAD_MAX) {
		h1srv_refuse(c, 431, "request head too large");
		return 0;
	}
	if (n == 0)
		return 0;
	if (n < 0) {
		h1srv_refuse(c, 400, "bad request");
		return 0;
	}
	abc.served_h1++;
	snprintf(c->what, sizeof(c->what), "%.*s %.*s", (int)MIN(m.method.len, 16),
	         m.method.p, (int)MIN(m.target.len, 60), m.target.p);
	origin_route(m.method, m.target, &c->resp);

	c->st = H1S_BUSY;
	c->keep_alive = m.keep_alive;
	c->minor = m.minor;
	c->body_done = c->resp_done = c->echo = c->gen = 0;
	c->resp_chunked = c->echo_head = 0;
	c->gen_off = 0;
	c->body = H1B_NONE;
	if (m.chunked) {
		c->body = H1B_CHUNKED;
		http_chunked_init(&c->ch);
	} else if (m.has_length && m.content_length) {
		c->body = H1B_LENGTH;
		c->body_left = m.content_length;
	}
	if (c->body != H1B_NONE && m.expect_continue &&
	    c->resp.kind != ORIGIN_ECHO) {
		/* Answering without "100 Continue": the client will not
		 * send the body, so neither side can reuse the connection. */
		c->body = H1B_NONE;
		c->keep_alive = 0;
	}
	c->body_done = c->body == H1B_NONE;
	if (!c->keep_alive)
		c->close_after = 1;
	h1srv_respond(c, &m);
	buf_consume(&c->in, (size_t)n);
	return !c->closing;
}

/* Appends <len> echoed bytes to the answer, as a chunk if need be. */
static int h1srv_echo(struct h1srv_conn *c, const char *p, size_t len)
{
	if (c->echo_head) {
		if (h1srv_put_head(c, 200, c->resp.ctype, c->echo_clen) < 0)
			return -1;
		c->echo_head = 0;
	}
	if (!len)
		return 0;
	if (c->resp_chunked && buf_printf(&c->out, "%zx\r\n", len) < 0)
		return -1;
	if (buf_append(&c->out, p, len) < 0)
		return -1;
	if (c->resp_chunked && buf_append(&c->out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* A chunked request body turned out malformed. */
static void h1srv_bad_body(struct h1srv_conn *c)
{
	abc_debug("%s http/1.1 %s: bad chunked body", c->peer, c->what);
	if (c->echo && c->echo_head) {
		/* nothing of the answer is out yet */
		h1srv_refuse(c, 400, "bad chunked body");
	} else if (c->echo) {
		h1srv_close(c);         /* a cut answer tells the client */
	} else {
		/* the answer stands; the connection cannot be reused */
		c->body_done = 1;
		c->close_after = 1;
	}
}

/* Moves request body bytes out of <in>: echoed or dropped. */
static void h1srv_body(struct h1srv_conn *c)
{
	const char *data;
	size_t len, n;
	ssize_t used;

	while (!c->body_done && buf_len(&c->in)) {
		if (c->echo && buf_len(&c->out) >= H1SRV_OUT_HIGH)
			return;
		len = MIN(buf_len(&c->in), (size_t)H1SRV_STEP);
		if (c->body == H1B_LENGTH) {
			n = (size_t)MIN((uint64_t)len, c->body_left);
			if (c->echo && h1srv_echo(c, buf_data(&c->in), n) < 0)
				goto fail;
			buf_consume(&c->in, n);
			c->body_left -= n;
			c->body_done = !c->body_left;
		} else {
			used = http_chunked_feed(&c->ch, buf_data(&c->in), len,
			                         &data, &n);
			if (used < 0) {
				h1srv_bad_body(c);
				return;
			}
			if (c->echo && h1srv_echo(c, data, n) < 0)
				goto fail;
			buf_consume(&c->in, (size_t)used);
			c->body_done = http_chunked_done(&c->ch);
		}
	}
	if (c->body_done && c->echo && !c->resp_done) {
		if (h1srv_echo(c, NULL, 0) < 0)
			goto fail;
		if (c->resp_chunked &&
		    buf_append_str(&c->out, "0\r\n\r\n") < 0)
			goto fail;
		c->resp_done = 1;
	}
	return;
fail:
	h1srv_close(c);
}

/* Generates /bytes output while little is queued. */
static void h1srv_generate(struct h1srv_conn *c)
{
	const struct origin_resp *r = &c->resp;
	size_t n;
	char *p;

	while (!c->resp_done && buf_len(&c->out) < H1SRV_OUT_HIGH) {
		n = (size_t)MIN(r->nbytes - c->gen_off, (uint64_t)H1SRV_STEP);
		if (!n) {
			if (c->resp_chunked &&
			    buf_append_str(&c->out, "0\r\n\r\n") < 0)
				goto fail;
			c->resp_done = 1;
			break;
		}
		if (c->resp_chunked && buf_printf(&c->out, "%zx\r\n", n) < 0)
			goto fail;
		p = buf_reserve(&c->out, n);
		if (!p)
			goto fail;
		origin_fill(p, c->gen_off, n);
		buf_produce(&c->out, n);
		if (c->resp_chunked && buf_append(&c->out, "\r\n", 2) < 0)
			goto fail;
		c->gen_off += n;
	}
	return;
fail:
	h1srv_close(c);
}

/*
 * The last answer is out: stop sending, but keep reading (and dropping)
 * until the client closes or H1SRV_LINGER_MS pass. Closing at once could
 * make the kernel answer unread input with a reset that destroys the
 * answer before the client reads it (a 400 after a half-sent request).
 */
static void h1srv_linger(struct h1srv_conn *c)
{
	c->lingering = 1;
	ev_io_stop(abc.loop.ev, &c->wio);
	loop_timer_stop(&abc.loop, &c->wait);
	if (c->eof || shutdown(c->fd, SHUT_WR) < 0) {
		h1srv_close(c);
		return;
	}
	if (!ev_is_active(&c->rio))
		ev_io_start(abc.loop.ev, &c->rio);
	loop_timer_arm(&abc.loop, &c->idle, H1SRV_LINGER_MS);
}

/* Sends what is queued. Returns 0, or -1 when the connection closed or
 * is lingering (nothing more to do with it). */
static int h1srv_send(struct h1srv_conn *c)
{
	ssize_t n;

	while (buf_len(&c->out)) {
		n = send(c->fd, buf_data(&c->out), buf_len(&c->out),
		         MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			loop_timer_arm(&abc.loop, &c->idle, H1SRV_IDLE_MS);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		h1srv_close(c);
		return -1;
	}
	if (!buf_len(&c->out) && c->close_after && c->st == H1S_HEAD) {
		h1srv_linger(c);
		return -1;
	}
	return 0;
}

static void h1srv_watch(struct h1srv_conn *c)
{
	struct ev_loop *ev = abc.loop.ev;
	int want_read, want_write;

	/* input is wanted for the next request, or the current body */
	want_read = !c->eof && buf_room(&c->in) &&
	            (!c->close_after || (c->st == H1S_BUSY && !c->body_done));
	want_write = buf_len(&c->out) || c->again;
	if (want_read && !ev_is_active(&c->rio))
		ev_io_start(ev, &c->rio);
	else if (!want_read && ev_is_active(&c->rio))
		ev_io_stop(ev, &c->rio);
	if (want_write && !ev_is_active(&c->wio))
		ev_io_start(ev, &c->wio);
	else if (!want_write && ev_is_active(&c->wio))
		ev_io_stop(ev, &c->wio);
}

/* One round of work: parse, move body bytes, generate. */
static void h1srv_advance(struct h1srv_conn *c)
{
	while (!c->closing) {
		if (c->st == H1S_HEAD) {
			/* a pipelining client must read its answers first */
			if (c->close_after || buf_len(&c->out) >= H1SRV_OUT_HIGH)
				return;
			if (!h1srv_start_request(c))
				return;
		}
		h1srv_body(c);
		if (!c->closing && c->gen)
			h1srv_generate(c);
		if (c->closing || !c->body_done || !c->resp_done)
			return;
		c->st = H1S_HEAD;
	}
}

static void h1srv_process(struct h1srv_conn *c)
{
	unsigned rounds = 0;
	size_t in, out;
	enum h1srv_st st;

	if (c->closing || c->lingering)
		return;
	c->again = 0;
	for (;;) {
		if (h1srv_send(c) < 0)
			return;
		if (buf_len(&c->out) >= H1SRV_OUT_HIGH)
			break;                  /* the socket is full */
		in = buf_len(&c->in);
		out = buf_len(&c->out);
		st = c->st;
		h1srv_advance(c);
		if (c->closing)
			return;
		if (in == buf_len(&c->in) && out == buf_len(&c->out) &&
		    st == c->st)
			break;                  /* nothing more to do now */
		if (++rounds == H1SRV_ROUNDS) {
			/* budget spent: come back on the next iteration */
			c->again = 1;
			break;
		}
	}
	if (c->eof && c->st == H1S_BUSY && !c->body_done) {
		h1srv_close(c);         /* the request was cut short */
		return;
	}
	if (c->eof && c->st == H1S_HEAD && c->need_more) {
		c->close_after = 1;
		if (h1srv_send(c) < 0)
			return;
	}
	h1srv_watch(c);
}

/* Reads and drops input of a lingering connection. */
static void h1srv_drain(struct h1srv_conn *c)
{
	char sink[H1SRV_STEP];
	ssize_t n = read(c->fd, sink, sizeof(sink));

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
		h1srv_close(c);
}

static void h1srv_read_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1srv_conn *c = container_of(w, struct h1srv_conn, rio);
	size_t room = MIN(buf_room(&c->in), (size_t)H1SRV_STEP);
	ssize_t n;
	char *p;

	(void)ev;
	(void)revents;
	if (c->lingering) {
		h1srv_drain(c);
		return;
	}
	p = buf_reserve(&c->in, room);
	if (!p) {
		h1srv_close(c);
		return;
	}
	n = read(c->fd, p, room);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		h1srv_close(c);
		return;
	}
	if (n == 0) {
		c->eof = 1;
		if (c->st == H1S_HEAD && !buf_len(&c->in) &&
		    !buf_len(&c->out)) {
			h1srv_close(c);
			return;
		}
	} else {
		buf_produce(&c->in, (size_t)n);
		loop_timer_arm(&abc.loop, &c->idle, H1SRV_IDLE_MS);
	}
	h1srv_process(c);
}

static void h1srv_write_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1srv_conn *c = container_of(w, struct h1srv_conn, wio);

	(void)ev;
	(void)revents;
	h1srv_process(c);
}

static void h1srv_idle_cb(struct loop *loop, struct loop_timer *t)
{
	struct h1srv_conn *c = container_of(t, struct h1srv_conn, idle);

	/* an answer we are still waiting for is not idleness */
	if (!c->lingering && (loop_timer_armed(&c->wait) || c->front)) {
		loop_timer_arm(loop, &c->idle, H1SRV_IDLE_MS);
		return;
	}
	abc_debug("%s http/1.1: idle in state %s, closing", c->peer,
	          h1srv_st_str(c->st));
	h1srv_close(c);
}

static void h1srv_accept_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1srv_conn *c;
	int fd, i;

	(void)w;
	(void)revents;
	for (i = 0; i < H1SRV_ACCEPT_BUDGET; i++) {
		fd = net_accept(h1srv.fd);
		if (fd < 0)
			return;
		if (h1srv.nconns >= H1SRV_MAX_CONNS ||
		    !(c = mem_calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		buf_init(&c->in, H1SRV_IN_MAX);
		buf_init(&c->out, H1SRV_OUT_MAX);
		ev_io_init(&c->rio, h1srv_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, h1srv_write_cb, fd, EV_WRITE);
		loop_timer_init(&c->idle, h1srv_idle_cb);
		loop_timer_init(&c->wait, h1srv_wait_cb);
		loop_defer_init(&c->reap, h1srv_free, c);
		if (abc.verbose)
			net_peer_str(fd, c->peer, sizeof(c->peer));
		c->next = h1srv.conns;
		if (c->next)
			c->next->prev = c;
		h1srv.conns = c;
		h1srv.nconns++;
		ev_io_start(ev, &c->rio);
		loop_timer_arm(&abc.loop, &c->idle, H1SRV_IDLE_MS);
	}
}

int h1srv_start(const struct net_addr *a, char *err, size_t errlen)
{
	h1srv.fd = net_listen(a, err, errlen);
	if (h1srv.fd < 0)
		return -1;
	ev_io_init(&h1srv.accept, h1srv_accept_cb, h1srv.fd, EV_READ);
	ev_io_start(abc.loop.ev, &h1srv.accept);
	return 0;
}

void h1srv_stop(void)
{
	if (h1srv.fd >= 0) {
		ev_io_stop(abc.loop.ev, &h1srv.accept);
		close(h1srv.fd);
		h1srv.fd = -1;
	}
	while (h1srv.conns)
		h1srv_close(h1srv.conns);
}
