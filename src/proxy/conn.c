/*
 * conn: downstream connection life cycle, protocol detection and timers
 * (see conn.h).
 *
 * IMPLEMENTATION NOTES
 * Detection reads into the shared scratch buffer; bytes that do not decide
 * the protocol yet are kept in cli.in and later reads append to them, up to
 * DETECT_MAX_BYTES judged. Linkerd reads once; meshd keeps reading while
 * the bytes are a prefix of something (a client typing slowly still gets
 * HTTP), bounded by the same detect timeout, whose expiry means opaque.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/conn.h"
#include "proxy/detect.h"
#include "proxy/h2side.h"
#include "proxy/tcp.h"

#define CONN_LINGER_MS 1000

static uint64_t conn_next_id;

static void conn_timer_cb(struct loop *loop, struct loop_timer *t);
static void conn_reap(void *arg);

struct conn *conn_new(struct proxy *px, int fd, const struct sock_addr *peer,
                      int dir, int tcp_route)
{
	struct conn *c = mem_pool_zget(&px->conn_pool);

	if (!c) {
		close(fd);
		return NULL;
	}
	c->px = px;
	c->id = ++conn_next_id;
	c->dir = (uint8_t)dir;
	c->st = CONN_ST_DETECT;
	if (peer)
		c->peer = *peer;
	ep_init(&c->cli, fd, conn_cli_cb, px->cfg.in_limit, px->cfg.out_limit);
	ep_init(&c->srv, -1, conn_srv_cb, px->cfg.in_limit, px->cfg.out_limit);
	loop_timer_init(&c->timer, conn_timer_cb);
	loop_defer_init(&c->reap, conn_reap, c);
	loop_defer_init(&c->kick, h1_kick, c);
	loop_defer_init(&c->flush, h1_flush, c);
	c->h1.grpc = -1;
	if (tcp_route)
		c->flags |= CONN_F_TCP_ROUTE;
	(void)sock_local_addr(fd, &c->local);
	if (px->cfg.route.transparent && !tcp_route &&
	    sock_original_dst(fd, &c->orig) == 0 &&
	    sock_addr_compare(&c->orig, &c->local) != 0)
		c->flags |= CONN_F_HAS_ORIG;
	(void)sock_set_nodelay(fd);

	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	px->nconns++;
	px->stats.accepted++;

	c->m_src = pxmetrics_tcp(&px->pm, (enum pxm_dir)dir, PXM_SRC,
	                         conn_target_addr(c));
	pxmetrics_tcp_open(c->m_src);
	if (c->m_src) {
		c->cli.m_rd = c->m_src->rd;
		c->cli.m_wr = c->m_src->wr;
	}
	LOG_DEBUG("proxy", "conn %llu: accepted %s", (unsigned long long)c->id,
	          dir == ROUTE_INBOUND ? "inbound" : "outbound");

	if (tcp_route ||
	    route_is_opaque(&px->cfg.route,
	                    sock_addr_port(conn_target_addr(c)))) {
		tcp_start(c, NULL, 0, 0);
		return c;
	}
	ep_want(px->loop.ev, &c->cli, EV_READ);
	conn_timeout(c, CONN_T_DETECT, px->cfg.detect_timeout_ms);
	return c;
}

/* Hands the connection to the module of the detected protocol. */
static void conn_dispatch(struct conn *c, enum detect_result r,
                          const char *data, size_t len, int from_in)
{
	LOG_DEBUG("proxy", "conn %llu: detected %s", (unsigned long long)c->id,
	          detect_result_str(r));
	conn_timeout(c, CONN_T_NONE, 0);
	switch (r) {
	case DETECT_HTTP1:
		h1_start(c, data, len, from_in);
		return;
	case DETECT_H2:
		h2side_start(c, data, len, from_in);
		return;
	default:
		tcp_start(c, data, len, from_in);
		return;
	}
}

static void conn_detect_read(struct conn *c)
{
	const char *data;
	size_t len;
	int from_in;
	ssize_t n = ep_read_any(&c->cli, &data, &len, &from_in);
	enum detect_result r;

	if (n == -EAGAIN)
		return;
	if (n < 0 && n != -ENOBUFS) {
		conn_close(c, 1, 0);
		return;
	}
	if (n == 0 && len == 0) {
		/* closed before sending anything */
		conn_close(c, 0, 0);
		return;
	}
	r = detect_protocol(data, len > DETECT_MAX_BYTES ? DETECT_MAX_BYTES
	                                               : len, NULL);
	if (r == DETECT_NEED_MORE) {
		if (n == 0 || len >= DETECT_MAX_BYTES || n == -ENOBUFS) {
			conn_dispatch(c, DETECT_OPAQUE, data, len, from_in);
			return;
		}
		if (ep_keep_in(&c->cli, data, len, from_in) < 0)
			conn_close(c, 1, 0);
		return;
	}
	conn_dispatch(c, r, data, len, from_in);
}

void conn_cli_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, cli.io);
	char sink[4096];
	ssize_t n;

	(void)ev;
	switch (c->st) {
	case CONN_ST_DETECT:
		conn_detect_read(c);
		return;
	case CONN_ST_H1:
		h1_on_cli(c, revents);
		return;
	case CONN_ST_H2:
		h2side_on_cli(c, revents);
		return;
	case CONN_ST_TCP:
		tcp_on_io(c, &c->cli, revents);
		return;
	case CONN_ST_LINGER:
		if (revents & EV_WRITE) {
			n = ep_flush(c->px->loop.ev, &c->cli);
			if (n < 0) {
				conn_close(c, c->flags & CONN_F_FAILED, 0);
				return;
			}
			if (n == 0 && !(c->cli.flags & EP_F_SHUTW))
				ep_shutdown_write(c->px->loop.ev, &c->cli);
		}
		if (revents & EV_READ) {
			n = ep_read(&c->cli, sink, sizeof(sink));
			if (n == 0 || (n < 0 && n != -EAGAIN)) {
				conn_close(c, c->flags & CONN_F_FAILED, 0);
				return;
			}
		}
		return;
	case CONN_ST_CLOSED:
		return;
	}
}

void conn_srv_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, srv.io);

	(void)ev;
	if (c->st == CONN_ST_TCP)
		tcp_on_io(c, &c->srv, revents);
}

int conn_linger(struct conn *c)
{
	struct ev_loop *ev = c->px->loop.ev;
	ssize_t n;

	if (conn_closed(c))
		return -1;
	if (c->st == CONN_ST_H1)
		h1_release(c);
	c->st = CONN_ST_LINGER;
	ep_consume_in(&c->cli, buf_len(&c->cli.in));
	n = ep_flush(ev, &c->cli);
	if (n < 0) {
		conn_close(c, 1, 0);
		return -1;
	}
	if (ep_shutdown_write(ev, &c->cli) < 0) {
		conn_close(c, 1, 0);
		return -1;
	}
	if (c->cli.flags & EP_F_EOF) {
		if (n == 0) {
			conn_close(c, c->flags & CONN_F_FAILED, 0);
			return -1;
		}
		ep_want(ev, &c->cli, EV_WRITE);
	} else {
		ep_want(ev, &c->cli, EV_READ | (n ? EV_WRITE : 0));
	}
	conn_timeout(c, CONN_T_LINGER, CONN_LINGER_MS);
	return -1;
}

void conn_close(struct conn *c, int fail, int reset)
{
	struct proxy *px = c->px;
	struct ev_loop *ev = px->loop.ev;

	if (conn_closed(c))
		return;
	if (fail)
		c->flags |= CONN_F_FAILED;
	switch (c->st) {
	case CONN_ST_H1:
		h1_release(c);
		break;
	case CONN_ST_H2:
		h2side_release(c);
		break;
	case CONN_ST_TCP:
		tcp_release(c);
		break;
	default:
		break;
	}
	c->st = CONN_ST_CLOSED;
	loop_timer_stop(&px->loop, &c->timer);
	loop_defer_cancel(&px->loop, &c->kick);
	loop_defer_cancel(&px->loop, &c->flush);
	ep_close(ev, &c->cli, reset);
	ep_close(ev, &c->srv, 0);
	/* errno: what the client's socket failed with, if it did */
	pxmetrics_tcp_close(c->m_src, (c->flags & CONN_F_FAILED) != 0,
	                    c->cli.err);
	LOG_DEBUG("proxy", "conn %llu: closed%s", (unsigned long long)c->id,
	          (c->flags & CONN_F_FAILED) ? " (failure)" : "");
	loop_defer(&px->loop, &c->reap);
}

static void conn_reap(void *arg)
{
	struct conn *c = arg;
	struct proxy *px = c->px;

	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->nconns--;
	mem_pool_put(&px->conn_pool, c);
	proxy_conn_gone(px);
}

void conn_timeout(struct conn *c, enum conn_tmo kind, uint64_t ms)
{
	struct loop *loop = &c->px->loop;
	uint64_t now = loop_now_ms(loop);

	c->tkind = kind;
	c->tms = ms;
	if (kind == CONN_T_NONE || ms == 0) {
		c->tkind = CONN_T_NONE;
		c->deadline = 0;
		return;  /* a running timer finds no deadline and stops */
	}
	c->deadline = now + ms;
	if (!loop_timer_armed(&c->timer) || c->tfire > c->deadline) {
		loop_timer_arm(loop, &c->timer, ms);
		c->tfire = c->deadline;
	}
}

void conn_touch(struct conn *c)
{
	if (c->tkind == CONN_T_IDLE)
		c->deadline = loop_now_ms(&c->px->loop) + c->tms;
}

static void conn_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);
	uint64_t now = loop_now_ms(loop);
	enum conn_tmo kind = c->tkind;

	if (c->deadline == 0 || conn_closed(c))
		return;
	if (now < c->deadline) {
		loop_timer_arm(loop, &c->timer, c->deadline - now);
		c->tfire = c->deadline;
		return;
	}
	c->tkind = CONN_T_NONE;
	c->deadline = 0;
	switch (c->st) {
	case CONN_ST_DETECT:
		LOG_DEBUG("proxy", "conn %llu: detection timed out: opaque",
		          (unsigned long long)c->id);
		conn_dispatch(c, DETECT_OPAQUE, buf_data(&c->cli.in),
		              buf_len(&c->cli.in), 1);
		return;
	case CONN_ST_H1:
		h1_on_timeout(c, kind);
		return;
	case CONN_ST_H2:
		h2side_on_timeout(c, kind);
		return;
	case CONN_ST_TCP:
		tcp_on_timeout(c, kind);
		return;
	case CONN_ST_LINGER:
		conn_close(c, c->flags & CONN_F_FAILED, 0);
		return;
	case CONN_ST_CLOSED:
		return;
	}
}

void conn_drain(struct conn *c)
{
	switch (c->st) {
	case CONN_ST_DETECT:
		conn_close(c, 0, 0);
		return;
	case CONN_ST_H1:
		h1_drain(c);
		return;
	case CONN_ST_H2:
		h2side_drain(c);
		return;
	default:
		/* opaque streams and lingering closes run until the grace
		 * period ends */
		return;
	}
}
