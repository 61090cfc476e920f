/*
 * cadmin: the controller's admin HTTP server (see cadmin.h).
 *
 * IMPLEMENTATION NOTES
 * Connections are small heap objects with a fixed head buffer. The answer
 * is built whole in an output buffer (the exposition can be large; its
 * limit is CADMIN_OUT_LIMIT), written as the socket takes it, then the
 * connection closes. Freeing is deferred so no object dies inside its own
 * watcher callback.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "controller/cadmin.h"
#include "controller/cserver.h"
#include "core/buf.h"
#include "core/http1.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"

struct cadm_conn {
	struct cadmin *a;
	struct cadm_conn *prev, *next;
	int fd;
	ev_io io;
	struct loop_timer timer;
	struct loop_defer reap;
	struct buf out;
	size_t inlen;
	int dead;
	char in[CADMIN_HEAD_MAX];
};

struct cadmin {
	struct loop *loop;
	struct metrics_registry *reg;
	void (*sync)(void *arg);
	int (*ready)(void *arg);
	void *arg;
	int lfd;
	ev_io lio;
	struct sock_addr addr;
	struct cadm_conn *conns;
	unsigned n;
	struct metrics_series *m_ka_timeouts;
};

static void cadm_close(struct cadm_conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	ev_io_stop(c->a->loop->ev, &c->io);
	loop_timer_stop(c->a->loop, &c->timer);
	close(c->fd);
	c->fd = -1;
	loop_defer(c->a->loop, &c->reap);
}

static void cadm_reap(void *arg)
{
	struct cadm_conn *c = arg;
	struct cadmin *a = c->a;

	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->n--;
	buf_free(&c->out);
	mem_free(c);
}

static void cadm_respond(struct cadm_conn *c, int status, const char *reason,
                         const char *ctype, const char *body, size_t blen,
                         int head_only)
{
	if (buf_printf(&c->out, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n"
	               "content-length: %zu\r\nconnection: close\r\n\r\n",
	               status, reason, ctype, blen) < 0 ||
	    (!head_only && buf_append(&c->out, body, blen) < 0))
		cadm_close(c);
}

static void cadm_text(struct cadm_conn *c, int status, const char *reason,
                      const char *text)
{
	cadm_respond(c, status, reason, "text/plain; charset=utf-8", text,
	             strlen(text), 0);
}

static int cadm_path_is(const struct http1_head *h, const char *p)
{
	size_t n = strlen(p), len = h->path_len;
	const char *q = memchr(h->path, '?', h->path_len);

	if (q)
		len = (size_t)(q - h->path);
	return len == n && memcmp(h->path, p, n) == 0;
}

static void cadm_metrics(struct cadm_conn *c, int head_only)
{
	struct cadmin *a = c->a;
	struct buf body;
	uint64_t ka;

	if (a->sync)
		a->sync(a->arg);
	ka = cserver_keepalive_timeouts();
	if (ka > metrics_counter_value(a->m_ka_timeouts))
		metrics_counter_add(a->m_ka_timeouts, ka -
		                    metrics_counter_value(a->m_ka_timeouts));
	buf_init(&body, CADMIN_OUT_LIMIT / 2);
	if (metrics_render(a->reg, &body) < 0 ||
	    metrics_render_process(&body) < 0) {
		buf_free(&body);
		cadm_text(c, 500, "Internal Server Error",
		          "metrics exposition too large\n");
		return;
	}
	cadm_respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	             buf_data(&body), buf_len(&body), head_only);
	buf_free(&body);
}

static void cadm_route(struct cadm_conn *c, const struct http1_head *h)
{
	struct cadmin *a = c->a;
	int head = h->method_id == HTTP1_M_HEAD;

	if (h->method_id != HTTP1_M_GET && !head) {
		cadm_text(c, 405, "Method Not Allowed", "method not allowed\n");
		return;
	}
	if (cadm_path_is(h, "/metrics"))
		cadm_metrics(c, head);
	else if (cadm_path_is(h, "/live"))
		cadm_text(c, 200, "OK", "live\n");
	else if (cadm_path_is(h, "/ready"))
		if (!a->ready || a->ready(a->arg))
			cadm_text(c, 200, "OK", "ready\n");
		else
			cadm_text(c, 503, "Service Unavailable",
			          "not ready\n");
	else
		cadm_text(c, 404, "Not Found", "not found\n");
}

/* Writes what <out> holds; closes when all is written. */
static void cadm_write(struct cadm_conn *c)
{
	ssize_t w;

	while (buf_len(&c->out)) {
		w = write(c->fd, buf_data(&c->out), buf_len(&c->out));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			ev_io_stop(c->a->loop->ev, &c->io);
			ev_io_set(&c->io, c->fd, EV_WRITE);
			ev_io_start(c->a->loop->ev, &c->io);
			return;
		}
		if (w < 0)
			break;
		buf_consume(&c->out, (size_t)w);
	}
	cadm_close(c);
}

static void cadm_io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct cadm_conn *c = container_of(w, struct cadm_conn, io);
	struct http1_header hdrs[64];
	struct http1_limits lim;
	struct http1_head h;
	ssize_t n;
	int hl;

	(void)ev;
	if (c->dead)
		return;
	if (revents & EV_WRITE) {
		cadm_write(c);
		return;
	}
	n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		cadm_close(c);
		return;
	}
	c->inlen += (size_t)n;
	memset(&lim, 0, sizeof(lim));
	lim.max_head = CADMIN_HEAD_MAX;
	http1_head_init(&h, hdrs, ARRAY_SIZE(hdrs));
	hl = http1_parse_request(c->in, c->inlen, &lim, &h);
	if (hl == 0 && c->inlen < sizeof(c->in))
		return;   /* more of the head to come */
	if (hl <= 0)
		cadm_text(c, hl < 0 && http1_err_status(hl)
		          ? http1_err_status(hl) : 431, "Bad Request",
		          "bad request\n");
	else
		cadm_route(c, &h);
	if (!c->dead)
		cadm_write(c);
}

static void cadm_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct cadm_conn *c = container_of(t, struct cadm_conn, timer);

	(void)loop;
	cadm_close(c);
}

static void cadm_accept_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct cadmin *a = container_of(w, struct cadmin, lio);
	struct cadm_conn *c;
	int fd, i;

	(void)ev;
	(void)revents;
	for (i = 0; i < 16; i++) {
		fd = sock_accept(a->lfd, NULL);
		if (fd == -EAGAIN || fd == -EMFILE || fd == -ENFILE)
			return;
		if (fd < 0)
			continue;
		if (a->n >= CADMIN_MAX_CONNS ||
		    !(c = mem_calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->a = a;
		c->fd = fd;
		buf_init(&c->out, CADMIN_OUT_LIMIT);
		loop_timer_init(&c->timer, cadm_timer_cb);
		loop_defer_init(&c->reap, cadm_reap, c);
		ev_io_init(&c->io, cadm_io_cb, fd, EV_READ);
		ev_io_start(a->loop->ev, &c->io);
		loop_timer_arm(a->loop, &c->timer, CADMIN_TIMEOUT_MS);
		c->next = a->conns;
		if (a->conns)
			a->conns->prev = c;
		a->conns = c;
		a->n++;
	}
}

struct cadmin *cadmin_new(struct loop *loop, const struct sock_addr *addr,
                          struct metrics_registry *reg,
                          void (*sync)(void *arg), int (*ready)(void *arg),
                          void *arg, char *err, size_t errlen)
{
	struct cadmin *a = mem_calloc(1, sizeof(*a));
	struct metrics_family_opts o;
	struct metrics_family *f;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.type = METRICS_COUNTER;
	o.name = "destination_keepalive_timeouts_total";
	o.help = "Destination client connections closed because a keepalive "
	         "PING was not answered in time.";
	f = metrics_family_new(reg, &o, err, errlen);
	if (!f || !(a->m_ka_timeouts = metrics_series_get(f, NULL, 0))) {
		if (f)
			snprintf(err, errlen, "out of memory");
		mem_free(a);
		return NULL;
	}
	a->loop = loop;
	a->reg = reg;
	a->sync = sync;
	a->ready = ready;
	a->arg = arg;
	a->lfd = sock_listen(addr, 0, 0, err, errlen);
	if (a->lfd < 0) {
		metrics_series_put(a->m_ka_timeouts);
		mem_free(a);
		return NULL;
	}
	if (sock_local_addr(a->lfd, &a->addr) < 0)
		a->addr = *addr;
	ev_io_init(&a->lio, cadm_accept_cb, a->lfd, EV_READ);
	ev_io_start(loop->ev, &a->lio);
	return a;
}

const struct sock_addr *cadmin_addr(const struct cadmin *a)
{
	return &a->addr;
}

void cadmin_free(struct cadmin *a)
{
	struct cadm_conn *c;

	if (!a)
		return;
	ev_io_stop(a->loop->ev, &a->lio);
	close(a->lfd);
	while ((c = a->conns) != NULL) {
		if (!c->dead)
			cadm_close(c);
		loop_defer_cancel(a->loop, &c->reap);
		cadm_reap(c);
	}
	metrics_series_put(a->m_ka_timeouts);
	mem_free(a);
}
