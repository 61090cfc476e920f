/*
 * tcp: opaque forwarding (see tcp.h).
 *
 * IMPLEMENTATION NOTES
 * tcp_update recomputes both endpoints' interest from the state after every
 * event, instead of toggling watchers at each step: a side is read when it
 * has not ended and the other side is connected with nothing pending; a
 * side is written while it has pending bytes (ep handles that). One read
 * per readable event keeps the loop fair between connections.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "proxy/conn.h"
#include "proxy/pool.h"
#include "proxy/tcp.h"

static struct ep *tcp_other(struct conn *c, struct ep *ep)
{
	return ep == &c->cli ? &c->srv : &c->cli;
}

/* Closes when both directions are finished. Returns -1 when it did. */
static int tcp_check_done(struct conn *c)
{
	int cli_done = (c->cli.flags & EP_F_EOF) &&
	               (c->srv.flags & EP_F_SHUTW);
	int srv_done = (c->srv.flags & EP_F_EOF) &&
	               (c->cli.flags & EP_F_SHUTW);

	if (cli_done && srv_done) {
		conn_close(c, 0, 0);
		return -1;
	}
	return 0;
}

static void tcp_update(struct conn *c)
{
	struct ev_loop *ev = c->px->loop.ev;
	int srv_up = c->srv.fd >= 0 && !(c->srv.flags & EP_F_CONNECTING);
	int ce = c->cli.events & EV_WRITE, se = c->srv.events & EV_WRITE;

	if (srv_up && !(c->cli.flags & EP_F_EOF) && !ep_out_pending(&c->srv))
		ce |= EV_READ;
	if (srv_up && !(c->srv.flags & EP_F_EOF) && !ep_out_pending(&c->cli))
		se |= EV_READ;
	ep_want(ev, &c->cli, ce);
	if (srv_up)
		ep_want(ev, &c->srv, se);
}

/* A side failed: reset the other so the failure propagates. */
static void tcp_fail(struct conn *c, struct ep *bad)
{
	(void)bad;
	LOG_DEBUG("proxy", "conn %llu: opaque stream failed",
	          (unsigned long long)c->id);
	conn_close(c, 1, 1);
}

/* Forwards one read from <from> to its peer. Returns -1 when closed. */
static int tcp_pump(struct conn *c, struct ep *from)
{
	struct ev_loop *ev = c->px->loop.ev;
	struct ep *to = tcp_other(c, from);
	ssize_t n;

	if ((from->flags & EP_F_EOF) || ep_out_pending(to))
		return 0;
	n = ep_read(from, ep_scratch, EP_SCRATCH_SIZE);
	if (n == -EAGAIN)
		return 0;
	if (n < 0) {
		tcp_fail(c, from);
		return -1;
	}
	if (n == 0) {
		if (ep_shutdown_write(ev, to) < 0) {
			tcp_fail(c, to);
			return -1;
		}
		return tcp_check_done(c);
	}
	conn_touch(c);
	if (ep_send(ev, to, ep_scratch, (size_t)n) < 0) {
		tcp_fail(c, to);
		return -1;
	}
	return 0;
}

/* The connect to c->srv_addr failed with <e> (-errno): counted on the
 * target's dst bundle, as no connection was opened there. */
static void tcp_connect_failed(struct conn *c, int e)
{
	ep_fail(&c->srv, -e);
	pxmetrics_tcp_connect_fail(pxmetrics_tcp(&c->px->pm,
	                                         (enum pxm_dir)c->dir, PXM_DST,
	                                         &c->srv_addr), e);
}

static int tcp_connected(struct conn *c)
{
	struct proxy *px = c->px;
	int e = sock_connect_result(c->srv.fd);

	c->srv.flags &= ~EP_F_CONNECTING;
	if (e < 0) {
		LOG_DEBUG("proxy", "conn %llu: opaque connect failed: %s",
		          (unsigned long long)c->id, strerror(-e));
		tcp_connect_failed(c, e);
		conn_close(c, 1, 1);
		return -1;
	}
	(void)sock_set_nodelay(c->srv.fd);
	c->m_dst = pxmetrics_tcp(&px->pm, (enum pxm_dir)c->dir, PXM_DST,
	                         &c->srv_addr);
	pxmetrics_tcp_open(c->m_dst);
	if (c->m_dst) {
		c->srv.m_rd = c->m_dst->rd;
		c->srv.m_wr = c->m_dst->wr;
	}
	conn_timeout(c, CONN_T_IDLE, px->cfg.idle_timeout_ms);
	if (ep_flush(px->loop.ev, &c->srv) < 0) {
		tcp_fail(c, &c->srv);
		return -1;
	}
	return 0;
}

void tcp_on_io(struct conn *c, struct ep *ep, int revents)
{
	struct ev_loop *ev = c->px->loop.ev;
	struct ep *other = tcp_other(c, ep);
	int had_pending;

	if (ep == &c->srv && (ep->flags & EP_F_CONNECTING)) {
		if (tcp_connected(c) < 0)
			return;
		tcp_update(c);
		return;
	}
	if (revents & EV_WRITE) {
		had_pending = ep_out_pending(ep) != 0;
		if (ep_flush(ev, ep) < 0) {
			tcp_fail(c, ep);
			return;
		}
		if (had_pending)
			conn_touch(c);
		if (tcp_check_done(c) < 0)
			return;
	}
	if (revents & EV_READ) {
		if (tcp_pump(c, ep) < 0)
			return;
	}
	(void)other;
	tcp_update(c);
}

int tcp_start(struct conn *c, const char *data, size_t len, int from_in)
{
	struct proxy *px = c->px;
	struct route_query q;
	struct route_result res;
	int e;

	c->st = CONN_ST_TCP;
	memset(&q, 0, sizeof(q));
	q.dir = (enum route_dir)c->dir;
	q.http = 0;
	q.orig_dst = (c->flags & CONN_F_HAS_ORIG) ? &c->orig : NULL;
	q.local = &c->local;
	(void)route_resolve(&px->cfg.route, &q, &res, NULL, NULL, NULL);
	if (res.status != 0 || res.n == 0) {
		LOG_DEBUG("proxy", "conn %llu: opaque stream: %s",
		          (unsigned long long)c->id, res.reason);
		conn_close(c, 1, 1);
		return -1;
	}
	c->srv_addr = res.ep[0].addr;
	e = pool_tcp_connect(px, &c->srv, &c->srv_addr);
	if (e < 0) {
		LOG_DEBUG("proxy", "conn %llu: opaque connect: %s",
		          (unsigned long long)c->id, strerror(-e));
		tcp_connect_failed(c, e);
		conn_close(c, 1, 1);
		return -1;
	}
	/* the first bytes wait in srv.out until the connect completes */
	if (len && ep_send(px->loop.ev, &c->srv, data, len) < 0) {
		conn_close(c, 1, 1);
		return -1;
	}
	if (from_in)
		ep_consume_in(&c->cli, buf_len(&c->cli.in));
	if (c->cli.flags & EP_F_EOF)
		ep_shutdown_write(px->loop.ev, &c->srv);
	ep_want(px->loop.ev, &c->cli, 0);
	ep_want(px->loop.ev, &c->srv, EV_WRITE);
	conn_timeout(c, CONN_T_CONNECT, px->cfg.connect_timeout_ms);
	return 0;
}

int tcp_tunnel(struct conn *c)
{
	struct ev_loop *ev = c->px->loop.ev;
	size_t n;

	c->st = CONN_ST_TCP;
	conn_timeout(c, CONN_T_IDLE, c->px->cfg.idle_timeout_ms);
	/* bytes that arrived behind the heads belong to the tunnel */
	n = buf_len(&c->cli.in);
	if (n) {
		if (ep_send(ev, &c->srv, buf_data(&c->cli.in), n) < 0) {
			conn_close(c, 1, 1);
			return -1;
		}
		ep_consume_in(&c->cli, n);
	}
	n = buf_len(&c->srv.in);
	if (n) {
		if (ep_send(ev, &c->cli, buf_data(&c->srv.in), n) < 0) {
			conn_close(c, 1, 1);
			return -1;
		}
		ep_consume_in(&c->srv, n);
	}
	if ((c->cli.flags & EP_F_EOF) && ep_shutdown_write(ev, &c->srv) < 0) {
		conn_close(c, 1, 1);
		return -1;
	}
	if ((c->srv.flags & EP_F_EOF) && ep_shutdown_write(ev, &c->cli) < 0) {
		conn_close(c, 1, 1);
		return -1;
	}
	if (tcp_check_done(c) < 0)
		return -1;
	tcp_update(c);
	return 0;
}

void tcp_on_timeout(struct conn *c, int kind)
{
	LOG_DEBUG("proxy", "conn %llu: opaque stream %s",
	          (unsigned long long)c->id,
	          kind == CONN_T_CONNECT ? "connect timed out" : "idle");
	if (kind == CONN_T_CONNECT && !c->m_dst)
		tcp_connect_failed(c, -ETIMEDOUT);
	conn_close(c, kind == CONN_T_CONNECT, kind == CONN_T_CONNECT);
}

void tcp_release(struct conn *c)
{
	int fail = (c->flags & CONN_F_FAILED) != 0;

	if (c->m_dst) {
		pxmetrics_tcp_close(c->m_dst, fail, c->srv.err);
		c->m_dst = NULL;
	}
	ep_close(c->px->loop.ev, &c->srv, fail);
}
