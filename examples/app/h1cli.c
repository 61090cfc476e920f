/*
 * h1cli: HTTP/1.1 GET client of role A. See h1cli.h for the contract.
 *
 * IMPLEMENTATION NOTES
 * A connection is in exactly one of the upstream's two lists: <busy>
 * (connecting, sending, reading an answer) or <idle> (open, waiting for
 * the next request, read watcher on so that a close by the server is
 * noticed). Completion goes through h1cli_finish, which puts the
 * connection back on <idle> or closes it before calling <done>, so that
 * <done> may start the next request at once, even on the same connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "h1cli.h"
#include "http.h"

#define H1CLI_IN_MAX (32 * 1024)
#define H1CLI_OUT_MAX 1024
#define H1CLI_PATH_MAX 201
#define H1CLI_STEP (16 * 1024)

enum h1cli_st {
	H1C_CONNECTING,   /* connect in progress */
	H1C_SENDING,      /* request being written */
	H1C_HEAD,         /* waiting for the answer's head */
	H1C_BODY,         /* reading the answer's body */
	H1C_IDLE,         /* on the idle list */
};

static const char *h1cli_st_str(enum h1cli_st st)
{
	switch (st) {
	case H1C_CONNECTING:
		return "CONNECTING";
	case H1C_SENDING:
		return "SENDING";
	case H1C_HEAD:
		return "HEAD";
	case H1C_BODY:
		return "BODY";
	case H1C_IDLE:
		return "IDLE";
	}
	return "?";
}

enum h1cli_framing {
	H1F_LENGTH,       /* Content-Length (or no body) */
	H1F_CHUNKED,      /* chunked */
	H1F_CLOSE,        /* until the server closes */
};

struct h1cli_conn {
	ev_io rio;                  /* private */
	ev_io wio;                  /* private */
	struct loop_timer tmr;      /* private: request deadline */
	struct loop_defer reap;     /* private: frees the connection */
	struct loop_defer kick;     /* private: reports a failed connect */
	struct h1cli_upstream *u;
	struct h1cli_conn *prev, *next; /* private: u->busy or u->idle */
	int fd;
	int connect_err;            /* -errno when connect failed at once */
	enum h1cli_st st;
	unsigned closing : 1;
	unsigned reused : 1;        /* served an earlier request */
	unsigned got_bytes : 1;     /* some of the answer arrived */
	unsigned keep_alive : 1;
	struct buf in;
	struct buf out;
	int status;
	enum h1cli_framing framing;
	uint64_t left;              /* H1F_LENGTH: body bytes to come */
	struct http_chunked ch;     /* H1F_CHUNKED: decoder */
	size_t blen;
	char body[H1CLI_BODY_MAX];  /* start of the answer's body */
	char path[H1CLI_PATH_MAX];
	uint64_t timeout_ms;
	h1cli_done_fn *done;
	void *arg;
};

static void h1cli_begin(struct h1cli_conn *c, const char *path,
                        uint64_t timeout_ms, h1cli_done_fn *done, void *arg);

static void h1cli_link(struct h1cli_conn **head, struct h1cli_conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (c->next)
		c->next->prev = c;
	*head = c;
}

static void h1cli_unlink(struct h1cli_conn **head, struct h1cli_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Takes <c> off its list, keeping the counts right. */
static void h1cli_detach(struct h1cli_conn *c)
{
	struct h1cli_upstream *u = c->u;

	if (c->st == H1C_IDLE) {
		h1cli_unlink(&u->idle, c);
		u->nidle--;
	} else {
		h1cli_unlink(&u->busy, c);
		u->nbusy--;
	}
}

static void h1cli_free(void *arg)
{
	struct h1cli_conn *c = arg;

	buf_free(&c->in);
	buf_free(&c->out);
	mem_free(c);
}

static void h1cli_close_conn(struct h1cli_conn *c)
{
	struct ev_loop *ev = abc.loop.ev;

	if (c->closing)
		return;
	c->closing = 1;
	ev_io_stop(ev, &c->rio);
	ev_io_stop(ev, &c->wio);
	loop_timer_stop(&abc.loop, &c->tmr);
	loop_defer_cancel(&abc.loop, &c->kick);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	h1cli_detach(c);
	loop_defer(&abc.loop, &c->reap);
}

/* Ends the request on <c>: the connection goes idle or away, then <done>
 * learns the outcome. */
static void h1cli_finish(struct h1cli_conn *c, int status, const char *body,
                         size_t len)
{
	struct h1cli_upstream *u = c->u;
	h1cli_done_fn *done = c->done;
	void *arg = c->arg;
	char copy[H1CLI_BODY_MAX];

	len = MIN(len, sizeof(copy));
	if (len)
		memcpy(copy, body, len);
	c->done = NULL;
	loop_timer_stop(&abc.loop, &c->tmr);
	if (status && c->keep_alive && !buf_len(&c->in) &&
	    u->nidle < H1CLI_MAX_IDLE && !abc.stopping) {
		h1cli_detach(c);
		c->st = H1C_IDLE;
		h1cli_link(&u->idle, c);
		u->nidle++;
		ev_io_stop(abc.loop.ev, &c->wio);
		if (!ev_is_active(&c->rio))
			ev_io_start(abc.loop.ev, &c->rio);
	} else {
		h1cli_close_conn(c);
	}
	if (done)
		done(arg, status, copy, len);
}

/* A new connection on the busy list, connecting; NULL without memory. */
static struct h1cli_conn *h1cli_open(struct h1cli_upstream *u);

/* Fails the request on <c>, or retries it once on a fresh connection when
 * <c> was reused and nothing came back (the server dropped it while idle). */
static void h1cli_fail(struct h1cli_conn *c, int may_retry, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

static void h1cli_fail(struct h1cli_conn *c, int may_retry, const char *fmt,
                       ...)
{
	char why[H1CLI_BODY_MAX], path[H1CLI_PATH_MAX];
	struct h1cli_conn *n;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	len = len < 0 ? 0 : MIN(len, (int)sizeof(why) - 1);
	if (may_retry && c->reused && !c->got_bytes && !abc.stopping) {
		n = h1cli_open(c->u);
		if (n) {
			memcpy(path, c->path, sizeof(path));
			h1cli_begin(n, path, c->timeout_ms, c->done, c->arg);
			c->done = NULL;
			h1cli_close_conn(c);
			return;
		}
	}
	c->keep_alive = 0;
	h1cli_finish(c, 0, why, (size_t)len);
}

static void h1cli_capture(struct h1cli_conn *c, const char *p, size_t len)
{
	size_t n = MIN(len, sizeof(c->body) - c->blen);

	if (!n)
		return;
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
}

static void h1cli_complete(struct h1cli_conn *c)
{
	h1cli_finish(c, c->status, c->body, c->blen);
}

/* Parses what has arrived of the answer. */
static void h1cli_parse(struct h1cli_conn *c)
{
	struct http_msg m;
	const char *data;
	size_t n;
	ssize_t used;

	while (!c->closing && c->done) {
		if (c->st == H1C_HEAD) {
			used = http_parse_response(buf_data(&c->in),
			                           buf_len(&c->in), &m);
			if (used == 0 && !buf_room(&c->in)) {
				h1cli_fail(c, 0, "answer head too large");
				return;
			}
			if (used == 0)
				return;
			if (used < 0) {
				h1cli_fail(c, 0, "malformed answer");
				return;
			}
			buf_consume(&c->in, (size_t)used);
			if (m.status < 200)
				continue;       /* interim answer */
			c->status = m.status;
			c->keep_alive = m.keep_alive;
			c->st = H1C_BODY;
			if (m.status == 204 || m.status == 304) {
				c->framing = H1F_LENGTH;
				c->left = 0;
			} else if (m.chunked) {
				c->framing = H1F_CHUNKED;
				http_chunked_init(&c->ch);
			} else if (m.has_length) {
				c->framing = H1F_LENGTH;
				c->left = m.content_length;
			} else {
				c->framing = H1F_CLOSE;
				c->keep_alive = 0;
			}
			continue;
		}
		if (c->st != H1C_BODY)
			return;
		if (c->framing == H1F_LENGTH) {
			n = (size_t)MIN((uint64_t)buf_len(&c->in), c->left);
			h1cli_capture(c, buf_data(&c->in), n);
			buf_consume(&c->in, n);
			c->left -= n;
			if (!c->left)
				h1cli_complete(c);
			return;
		}
		if (c->framing == H1F_CLOSE) {
			h1cli_capture(c, buf_data(&c->in), buf_len(&c->in));
			buf_reset(&c->in);
			return;
		}
		used = http_chunked_feed(&c->ch, buf_data(&c->in),
		                         buf_len(&c->in), &data, &n);
		if (used < 0) {
			h1cli_fail(c, 0, "malformed chunked body");
			return;
		}
		h1cli_capture(c, data, n);
		buf_consume(&c->in, (size_t)used);
		if (http_chunked_done(&c->ch)) {
			h1cli_complete(c);
			return;
		}
		if (!used)
			return;
	}
}

static void h1cli_read_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1cli_conn *c = container_of(w, struct h1cli_conn, rio);
	size_t room = MIN(buf_room(&c->in), (size_t)H1CLI_STEP);
	ssize_t n;
	char *p;

	(void)ev;
	(void)revents;
	p = buf_reserve(&c->in, room);
	if (!p) {
		if (c->st == H1C_IDLE)
			h1cli_close_conn(c);
		else
			h1cli_fail(c, 0, "out of memory");
		return;
	}
	n = read(c->fd, p, room);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (c->st == H1C_IDLE) {
		/* closed by the server, or bytes nobody asked for */
		h1cli_close_conn(c);
		return;
	}
	if (n < 0) {
		h1cli_fail(c, 1, "read: %s", strerror(errno));
		return;
	}
	if (n == 0) {
		if (c->st == H1C_BODY && c->framing == H1F_CLOSE)
			h1cli_complete(c);
		else
			h1cli_fail(c, 1, "connection closed by %s",
			           c->u->addr.text);
		return;
	}
	c->got_bytes = 1;
	buf_produce(&c->in, (size_t)n);
	h1cli_parse(c);
}

static void h1cli_write_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1cli_conn *c = container_of(w, struct h1cli_conn, wio);
	ssize_t n;
	int rc;

	(void)revents;
	if (c->st == H1C_CONNECTING) {
		rc = net_connect_result(c->fd);
		if (rc < 0) {
			h1cli_fail(c, 0, "connect to %s: %s", c->u->addr.text,
			           strerror(-rc));
			return;
		}
		c->st = H1C_SENDING;
	}
	while (buf_len(&c->out)) {
		n = send(c->fd, buf_data(&c->out), buf_len(&c->out),
		         MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		h1cli_fail(c, 1, "send: %s", strerror(errno));
		return;
	}
	ev_io_stop(ev, &c->wio);
	c->st = H1C_HEAD;
	if (!ev_is_active(&c->rio))
		ev_io_start(ev, &c->rio);
	if (buf_len(&c->in))
		h1cli_parse(c);         /* the answer overtook the request */
}

static void h1cli_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct h1cli_conn *c = container_of(t, struct h1cli_conn, tmr);

	(void)loop;
	h1cli_fail(c, 0, "timeout after %llu ms in state %s",
	           (unsigned long long)c->timeout_ms, h1cli_st_str(c->st));
}

static void h1cli_kick(void *arg)
{
	struct h1cli_conn *c = arg;

	h1cli_fail(c, 0, "connect to %s: %s", c->u->addr.text,
	           strerror(-c->connect_err));
}

static struct h1cli_conn *h1cli_open(struct h1cli_upstream *u)
{
	struct h1cli_conn *c = mem_calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->u = u;
	buf_init(&c->in, H1CLI_IN_MAX);
	buf_init(&c->out, H1CLI_OUT_MAX);
	loop_timer_init(&c->tmr, h1cli_timer_cb);
	loop_defer_init(&c->reap, h1cli_free, c);
	loop_defer_init(&c->kick, h1cli_kick, c);
	c->st = H1C_CONNECTING;
	h1cli_link(&u->busy, c);
	u->nbusy++;
	c->fd = net_connect(&u->addr);
	if (c->fd < 0) {
		c->connect_err = c->fd;
		c->fd = -1;
		loop_defer(&abc.loop, &c->kick);
		return c;
	}
	ev_io_init(&c->rio, h1cli_read_cb, c->fd, EV_READ);
	ev_io_init(&c->wio, h1cli_write_cb, c->fd, EV_WRITE);
	return c;
}

/* Queues the request on <c> (connecting or just taken off the idle
 * list). */
static void h1cli_begin(struct h1cli_conn *c, const char *path,
                        uint64_t timeout_ms, h1cli_done_fn *done, void *arg)
{
	c->done = done;
	c->arg = arg;
	c->timeout_ms = timeout_ms;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->status = 0;
	c->blen = 0;
	c->got_bytes = 0;
	c->keep_alive = 0;
	buf_reset(&c->in);
	buf_reset(&c->out);
	loop_timer_arm(&abc.loop, &c->tmr, timeout_ms);
	if (buf_printf(&c->out, "GET %s HTTP/1.1\r\nHost: %s\r\n"
	               "User-Agent: abc-app/%s\r\n\r\n", c->path,
	               c->u->addr.text, abc.name) < 0) {
		/* cannot happen with bounded paths; fail via the timer */
		loop_timer_arm(&abc.loop, &c->tmr, 0);
		return;
	}
	if (c->fd < 0)
		return;                 /* h1cli_kick reports it */
	if (c->st != H1C_CONNECTING)
		c->st = H1C_SENDING;
	ev_io_start(abc.loop.ev, &c->wio);
}

void h1cli_init(struct h1cli_upstream *u, const struct net_addr *a)
{
	memset(u, 0, sizeof(*u));
	u->addr = *a;
}

int h1cli_get(struct h1cli_upstream *u, const char *path,
              uint64_t timeout_ms, h1cli_done_fn *done, void *arg)
{
	struct h1cli_conn *c;

	if (abc.stopping || u->nbusy >= H1CLI_MAX_BUSY ||
	    strlen(path) >= H1CLI_PATH_MAX)
		return -1;
	c = u->idle;
	if (c) {
		h1cli_detach(c);
		c->st = H1C_SENDING;
		h1cli_link(&u->busy, c);
		u->nbusy++;
		c->reused = 1;
	} else {
		c = h1cli_open(u);
		if (!c)
			return -1;
	}
	h1cli_begin(c, path, timeout_ms, done, arg);
	return 0;
}

void h1cli_close(struct h1cli_upstream *u)
{
	while (u->busy) {
		struct h1cli_conn *c = u->busy;

		c->keep_alive = 0;
		if (c->done)
			h1cli_finish(c, 0, "shutting down", 13);
		else
			h1cli_close_conn(c);
	}
	while (u->idle)
		h1cli_close_conn(u->idle);
}
