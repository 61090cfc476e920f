/*
 * cserver: the controller's gRPC server transport (see cserver.h).
 *
 * IMPLEMENTATION NOTES
 * Each connection has a deferred "flush" item. Nothing pulls h2 output
 * from inside h2 callbacks (core/h2 forbids it): the read path, the timers
 * and cserver_conn_kick queue the flush, which pulls h2_output into a
 * shared scratch buffer and writes it. What the socket does not take waits
 * in the connection's <out> buffer; while it is not empty nothing more is
 * pulled from h2 and nothing is read (write-side back-pressure: h2's
 * bounded send queues then fill, and grpc_call_send returns -EAGAIN to the
 * role).
 *
 * Timer modes: HANDSHAKE until the peer's SETTINGS arrived, IDLE while no
 * stream is open (armed when the last one closes), BUSY (disarmed) while
 * streams are open, CLOSING after an idle GOAWAY (the peer has that long
 * to answer the GOAWAY's PING and go).
 *
 * The keepalive timer <ka> runs beside it in every mode: it fires when the
 * next PING is due (interval after the last one went) or when the one out
 * must have been answered (timeout after it went). Times are the loop's;
 * h2 only says whether the PING is still unanswered.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "controller/cserver.h"
#include "core/buf.h"
#include "core/h2.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"

#define CS_OUT_LIMIT (2 * (CSERVER_IO_CHUNK + 16384))
#define CS_ACCEPT_PAUSE_MS 100
#define CS_CLOSING_MS 10000

enum cs_tmode {
	CS_T_HANDSHAKE = 0,
	CS_T_IDLE,
	CS_T_BUSY,
	CS_T_CLOSING,
};

struct cserver_conn {
	struct cserver *s;
	struct cserver_conn *prev, *next;
	int fd;
	int events;               /* ev_io interest now */
	ev_io io;
	struct grpc_server *gs;
	struct h2_conn *h2;       /* grpc_server_h2(gs) */
	struct buf out;           /* pulled from h2, not yet written */
	struct loop_defer flush;
	struct loop_defer reap;
	struct loop_timer timer;
	enum cs_tmode tmode;
	struct loop_timer ka;     /* keepalive PING */
	uint64_t ka_sent;         /* loop time the last PING went, or 0 */
	char peer[SOCK_ADDR_STRLEN];
	unsigned failed : 1;      /* h2_feed failed: read no more */
	unsigned dead : 1;        /* closed, waiting for reap */
};

struct cserver {
	struct loop *loop;
	struct cserver_cfg cfg;
	struct h2_limits lim;
	const struct grpc_method *methods;
	size_t nmethods;
	void *ctx;
	int lfd;
	ev_io lio;
	struct loop_timer pause;   /* accept paused (out of fds) */
	struct sock_addr addr;
	struct cserver_conn *conns;
	struct cserver_stats st;
	uint64_t ka_interval, ka_timeout;   /* ms; interval 0: off */
	int draining;
	void (*drained)(void *arg);
	void *drained_arg;
	struct loop_defer drained_defer;
};

/* Shared I/O scratch: used inside one callback at a time only. */
static char cs_rbuf[CSERVER_IO_CHUNK];
static char cs_obuf[CSERVER_IO_CHUNK + 16384];

/* Process-wide keepalive settings and count (cserver_set_keepalive). */
static uint64_t cs_ka_interval = CSERVER_KA_INTERVAL_MS;
static uint64_t cs_ka_timeout = CSERVER_KA_TIMEOUT_MS;
static uint64_t cs_ka_timeouts;

static void cs_flush_cb(void *arg);
static void cs_reap_cb(void *arg);
static void cs_io_cb(struct ev_loop *ev, ev_io *w, int revents);
static void cs_timer_cb(struct loop *loop, struct loop_timer *t);

static void cs_want(struct cserver_conn *c, int events)
{
	struct ev_loop *ev = c->s->loop->ev;

	if (c->events == events)
		return;
	if (c->events)
		ev_io_stop(ev, &c->io);
	c->events = events;
	if (events) {
		ev_io_set(&c->io, c->fd, events);
		ev_io_start(ev, &c->io);
	}
}

/* Ends the connection now: every call still open gets on_done
 * (CANCELLED) through h2_abort, the memory goes in deferred work. */
static void cs_close(struct cserver_conn *c, const char *why)
{
	struct cserver *s = c->s;

	if (c->dead)
		return;
	c->dead = 1;
	LOG_DEBUG("controller.grpc", "connection %s closed: %s", c->peer,
	          why);
	cs_want(c, 0);
	loop_timer_stop(s->loop, &c->timer);
	loop_timer_stop(s->loop, &c->ka);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	h2_abort(c->h2, H2_NO_ERROR, "closed");
	loop_defer(s->loop, &c->reap);
}

static void cs_reap_cb(void *arg)
{
	struct cserver_conn *c = arg;
	struct cserver *s = c->s;

	loop_defer_cancel(s->loop, &c->flush);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->st.open--;
	grpc_server_free(c->gs);
	buf_free(&c->out);
	mem_free(c);
	if (s->draining && s->st.open == 0 && s->drained) {
		void (*fn)(void *) = s->drained;

		s->drained = NULL;
		fn(s->drained_arg);
	}
}

/* Writes <p>[<n>] to the socket; what it does not take goes to <out>.
 * 0 or -errno. */
static int cs_write(struct cserver_conn *c, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0 && buf_len(&c->out) == 0) {
		w = write(c->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	if (n > 0 && buf_append(&c->out, p, n) < 0)
		return -ENOBUFS;
	return 0;
}

/* Writes what <out> holds. 0 or -errno. */
static int cs_write_pending(struct cserver_conn *c)
{
	ssize_t w;

	while (buf_len(&c->out)) {
		w = write(c->fd, buf_data(&c->out), buf_len(&c->out));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		if (w < 0)
			return -errno;
		buf_consume(&c->out, (size_t)w);
	}
	buf_free(&c->out);   /* an idle connection holds no buffer */
	buf_init(&c->out, CS_OUT_LIMIT);
	return 0;
}

static void cs_update_timer(struct cserver_conn *c)
{
	struct cserver *s = c->s;
	struct h2_stats st;

	if (c->tmode == CS_T_CLOSING)
		return;
	h2_get_stats(c->h2, &st);
	if (!st.settings_received)
		return;   /* the handshake timer runs */
	if (st.open_streams) {
		if (c->tmode != CS_T_BUSY) {
			c->tmode = CS_T_BUSY;
			loop_timer_stop(s->loop, &c->timer);
		}
	} else if (c->tmode != CS_T_IDLE) {
		c->tmode = CS_T_IDLE;
		if (s->cfg.idle_timeout_ms)
			loop_timer_arm(s->loop, &c->timer,
			               s->cfg.idle_timeout_ms);
		else
			loop_timer_stop(s->loop, &c->timer);
	}
}

static void cs_flush_cb(void *arg)
{
	struct cserver_conn *c = arg;
	struct buf tmp;
	ssize_t n;
	int ev = 0, rc;

	if (c->dead)
		return;
	if ((rc = cs_write_pending(c)) < 0) {
		cs_close(c, strerror(-rc));
		return;
	}
	buf_init_fixed(&tmp, cs_obuf, sizeof(cs_obuf));
	while (buf_len(&c->out) == 0) {
		n = h2_output(c->h2, &tmp);
		if (n <= 0)
			break;
		rc = cs_write(c, buf_data(&tmp), buf_len(&tmp));
		buf_reset(&tmp);
		if (rc < 0) {
			cs_close(c, strerror(-rc));
			return;
		}
	}
	if (c->dead)
		return;   /* h2_output ran callbacks that closed it */
	if (h2_is_closed(c->h2) && buf_len(&c->out) == 0) {
		const char *r = h2_close_reason(c->h2);

		cs_close(c, r ? r : "done");
		return;
	}
	if (buf_len(&c->out))
		ev |= EV_WRITE;
	else if (!c->failed && h2_want_read(c->h2))
		ev |= EV_READ;
	cs_want(c, ev);
	cs_update_timer(c);
}

void cserver_conn_kick(struct cserver_conn *c)
{
	if (c && !c->dead)
		loop_defer(c->s->loop, &c->flush);
}

void *cserver_conn_ctx(const struct cserver_conn *c)
{
	return c->s->ctx;
}

static void cs_io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct cserver_conn *c = container_of(w, struct cserver_conn, io);
	ssize_t n;
	int rc;

	(void)ev;
	if (c->dead)
		return;
	if (revents & EV_WRITE) {
		if ((rc = cs_write_pending(c)) < 0) {
			cs_close(c, strerror(-rc));
			return;
		}
	}
	if ((revents & EV_READ) && !c->failed) {
		n = read(c->fd, cs_rbuf, sizeof(cs_rbuf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* spurious */
		} else if (n <= 0) {
			cs_close(c, n == 0 ? "peer closed" : strerror(errno));
			return;
		} else if (h2_feed(c->h2, cs_rbuf, (size_t)n) < 0) {
			const char *r = h2_close_reason(c->h2);

			LOG_DEBUG("controller.grpc", "connection %s: HTTP/2 "
			          "error: %s", c->peer, r ? r : "?");
			c->failed = 1;
		}
	}
	cs_flush_cb(c);
}

static void cs_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct cserver_conn *c = container_of(t, struct cserver_conn, timer);

	switch (c->tmode) {
	case CS_T_HANDSHAKE:
		cs_close(c, "no HTTP/2 handshake in time");
		return;
	case CS_T_IDLE:
		c->tmode = CS_T_CLOSING;
		if (h2_goaway(c->h2, 1) < 0) {
			cs_close(c, "idle");
			return;
		}
		loop_timer_arm(loop, &c->timer, CS_CLOSING_MS);
		cserver_conn_kick(c);
		return;
	case CS_T_CLOSING:
		cs_close(c, "idle, GOAWAY not answered");
		return;
	case CS_T_BUSY:
		return;
	}
}

static void cs_ka_cb(struct loop *loop, struct loop_timer *t)
{
	struct cserver_conn *c = container_of(t, struct cserver_conn, ka);
	struct cserver *s = c->s;
	uint64_t now = loop_now_ms(loop);
	int rc;

	if (c->dead)
		return;
	if (c->ka_sent && h2_ping_outstanding(c->h2, NULL)) {
		if (now - c->ka_sent >= s->ka_timeout) {
			LOG_INFO("controller.grpc", "connection %s closed: "
			         "keepalive PING not answered in %llums",
			         c->peer, (unsigned long long)s->ka_timeout);
			s->st.keepalive_timeouts++;
			cs_ka_timeouts++;
			cs_close(c, "keepalive timeout");
			return;
		}
		loop_timer_arm(loop, &c->ka, c->ka_sent + s->ka_timeout - now);
		return;
	}
	if (c->ka_sent && now - c->ka_sent < s->ka_interval) {
		loop_timer_arm(loop, &c->ka, c->ka_sent + s->ka_interval - now);
		return;
	}
	rc = h2_ping(c->h2);
	if (rc < 0)
		return;   /* the connection is ending: its own path closes it */
	c->ka_sent = now ? now : 1;
	loop_timer_arm(loop, &c->ka, s->ka_timeout < s->ka_interval ?
	               s->ka_timeout : s->ka_interval);
	cserver_conn_kick(c);
}

/* The one place a new connection is set up: TLS will be stacked here. */
static void cs_accept_one(struct cserver *s, int fd,
                          const struct sock_addr *peer)
{
	struct cserver_conn *c;
	char err[128];

	if (s->st.open >= s->cfg.max_conns || s->draining) {
		s->st.refused++;
		close(fd);
		return;
	}
	c = mem_calloc(1, sizeof(*c));
	if (!c) {
		s->st.refused++;
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	sock_addr_format(peer, c->peer, sizeof(c->peer));
	c->gs = grpc_server_new(s->methods, s->nmethods, &s->lim,
	                        s->cfg.max_msg, s->cfg.arena_size, c, err,
	                        sizeof(err));
	if (!c->gs) {
		LOG_WARN("controller.grpc", "connection %s refused: %s",
		         c->peer, err);
		mem_free(c);
		s->st.refused++;
		close(fd);
		return;
	}
	c->h2 = grpc_server_h2(c->gs);
	(void)sock_set_nodelay(fd);
	(void)sock_set_keepalive(fd, CSERVER_KEEPALIVE_S, CSERVER_KEEPALIVE_S,
	                         2);
	buf_init(&c->out, CS_OUT_LIMIT);
	ev_io_init(&c->io, cs_io_cb, fd, 0);
	loop_defer_init(&c->flush, cs_flush_cb, c);
	loop_defer_init(&c->reap, cs_reap_cb, c);
	loop_timer_init(&c->timer, cs_timer_cb);
	loop_timer_init(&c->ka, cs_ka_cb);
	c->tmode = CS_T_HANDSHAKE;
	loop_timer_arm(s->loop, &c->timer, CSERVER_HANDSHAKE_MS);
	if (s->ka_interval)
		loop_timer_arm(s->loop, &c->ka, s->ka_interval);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.open++;
	s->st.accepted++;
	LOG_DEBUG("controller.grpc", "connection from %s", c->peer);
	cs_flush_cb(c);   /* our SETTINGS; starts reading */
}

static void cs_pause_cb(struct loop *loop, struct loop_timer *t)
{
	struct cserver *s = container_of(t, struct cserver, pause);

	if (s->lfd >= 0 && !s->draining)
		ev_io_start(loop->ev, &s->lio);
}

static void cs_accept_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct cserver *s = container_of(w, struct cserver, lio);
	struct sock_addr peer;
	int fd, i;

	(void)revents;
	for (i = 0; i < 64; i++) {
		fd = sock_accept(s->lfd, &peer);
		if (fd == -EAGAIN)
			return;
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
		    fd == -ENOMEM) {
			LOG_WARN("controller.grpc", "accept: %s; pausing",
			         strerror(-fd));
			ev_io_stop(ev, &s->lio);
			loop_timer_arm(s->loop, &s->pause, CS_ACCEPT_PAUSE_MS);
			return;
		}
		if (fd < 0)
			continue;
		cs_accept_one(s, fd, &peer);
	}
}

struct cserver *cserver_new(struct loop *loop, const struct sock_addr *addr,
                            const struct cserver_cfg *cfg,
                            const struct grpc_method *methods, size_t n,
                            void *ctx, char *err, size_t errlen)
{
	struct cserver *s = mem_calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->cfg = *cfg;
	s->methods = methods;
	s->nmethods = n;
	s->ctx = ctx;
	s->ka_interval = cs_ka_interval;
	s->ka_timeout = cs_ka_timeout;
	h2_limits_default(&s->lim);
	if (cfg->max_streams_per_conn)
		s->lim.max_concurrent_streams = cfg->max_streams_per_conn;
	/* room for the nghttp2 state of that many streams */
	if (s->lim.max_concurrent_streams > 100)
		s->lim.mem_max += (size_t)(s->lim.max_concurrent_streams - 100)
		                  * 2048;
	s->lfd = sock_listen(addr, 0, 0, err, errlen);
	if (s->lfd < 0) {
		mem_free(s);
		return NULL;
	}
	if (sock_local_addr(s->lfd, &s->addr) < 0)
		s->addr = *addr;
	loop_timer_init(&s->pause, cs_pause_cb);
	ev_io_init(&s->lio, cs_accept_cb, s->lfd, EV_READ);
	ev_io_start(loop->ev, &s->lio);
	return s;
}

void cserver_set_keepalive(uint64_t interval_ms, uint64_t timeout_ms)
{
	cs_ka_interval = interval_ms;
	cs_ka_timeout = timeout_ms ? timeout_ms : 1;
}

uint64_t cserver_keepalive_timeouts(void)
{
	return cs_ka_timeouts;
}

const struct sock_addr *cserver_addr(const struct cserver *s)
{
	return &s->addr;
}

static void cs_drained_cb(void *arg)
{
	struct cserver *s = arg;
	void (*fn)(void *) = s->drained;

	s->drained = NULL;
	if (fn)
		fn(s->drained_arg);
}

static void cs_close_listener(struct cserver *s)
{
	if (s->lfd < 0)
		return;
	ev_io_stop(s->loop->ev, &s->lio);
	loop_timer_stop(s->loop, &s->pause);
	close(s->lfd);
	s->lfd = -1;
}

void cserver_drain(struct cserver *s, void (*done)(void *arg), void *arg)
{
	struct cserver_conn *c;

	if (s->draining)
		return;
	s->draining = 1;
	s->drained = done;
	s->drained_arg = arg;
	cs_close_listener(s);
	for (c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (h2_goaway(c->h2, 1) < 0)
			cs_close(c, "shutting down");
		else
			cserver_conn_kick(c);
	}
	if (s->st.open == 0) {
		loop_defer_init(&s->drained_defer, cs_drained_cb, s);
		loop_defer(s->loop, &s->drained_defer);
	}
}

void cserver_get_stats(const struct cserver *s, struct cserver_stats *st)
{
	*st = s->st;
}

void cserver_free(struct cserver *s)
{
	struct cserver_conn *c;

	if (!s)
		return;
	cs_close_listener(s);
	s->drained = NULL;
	for (c = s->conns; c; c = c->next)
		cs_close(c, "server stopped");
	while ((c = s->conns) != NULL) {
		loop_defer_cancel(s->loop, &c->reap);
		cs_reap_cb(c);
	}
	loop_defer_cancel(s->loop, &s->drained_defer);
	mem_free(s);
}
