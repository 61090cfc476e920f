/*
 * pool: upstream connections per target (see pool.h).
 *
 * IMPLEMENTATION NOTES
 * Targets sit in a chained hash table keyed by (direction, address); the
 * number of targets is bounded by the connections that keep them alive
 * (a target without connections is freed at once). Idle connections watch
 * for EV_READ: a server closing an idle keep-alive connection, or sending
 * unasked bytes, gets the connection closed before anyone reuses it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/conn.h"
#include "proxy/h1.h"
#include "proxy/h2side.h"
#include "proxy/pool.h"

#define POOL_TAB_SIZE 256u

struct pool {
	struct proxy *px;
	struct pool_target *tab[POOL_TAB_SIZE];
	uint32_t ntargets;
	uint32_t nidle, nbusy;
};

static void pool_up_cb(struct ev_loop *ev, ev_io *w, int revents);
static void pool_up_timer_cb(struct loop *loop, struct loop_timer *t);
static void pool_up_reap(void *arg);

struct pool *pool_new(struct proxy *px)
{
	struct pool *p = mem_calloc(1, sizeof(*p));

	if (p)
		p->px = px;
	return p;
}

static unsigned pool_slot(int dir, const struct sock_addr *a)
{
	uint32_t h = (uint32_t)dir * 0x9e3779b1u;
	const unsigned char *b;
	size_t n, i;

	if (a->sa.sa_family == AF_INET) {
		b = (const unsigned char *)&a->sin.sin_addr;
		n = sizeof(a->sin.sin_addr);
	} else {
		b = (const unsigned char *)&a->sin6.sin6_addr;
		n = sizeof(a->sin6.sin6_addr);
	}
	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	h ^= sock_addr_port(a);
	h *= 0x85ebca6bu;
	return (h >> 16) % POOL_TAB_SIZE;
}

struct pool_target *pool_target_get(struct pool *p, int dir,
                                    const struct sock_addr *addr)
{
	unsigned slot = pool_slot(dir, addr);
	struct pool_target *t;

	for (t = p->tab[slot]; t; t = t->hnext)
		if (t->dir == dir && sock_addr_compare(&t->addr, addr) == 0)
			return t;
	t = mem_calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->addr = *addr;
	t->dir = (uint8_t)dir;
	t->pool = p;
	t->m = pxmetrics_tcp(&p->px->pm, (enum pxm_dir)dir, PXM_DST, addr);
	t->hnext = p->tab[slot];
	p->tab[slot] = t;
	p->ntargets++;
	return t;
}

void pool_target_maybe_free(struct pool_target *t)
{
	struct pool *p = t->pool;
	struct pool_target **pp;

	if (t->nidle || t->nbusy || t->nclosing || t->h2)
		return;
	for (pp = &p->tab[pool_slot(t->dir, &t->addr)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			p->ntargets--;
			mem_free(t);
			return;
		}
	}
}

int pool_tcp_connect(struct proxy *px, struct ep *ep,
                     const struct sock_addr *addr)
{
	int fd = sock_connect(addr, NULL);

	(void)px;
	if (fd < 0)
		return fd;
	ep_set_fd(ep, fd);
	ep->flags |= EP_F_CONNECTING;
	return 0;
}

static void pool_idle_unlink(struct h1up *u)
{
	struct pool_target *t = u->t;

	if (u->prev)
		u->prev->next = u->next;
	else
		t->idle = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	t->nidle--;
	t->pool->nidle--;
}

/* Closes <u> and queues its free. */
static void pool_up_close(struct h1up *u, int fail)
{
	struct pool_target *t = u->t;
	struct proxy *px = t->pool->px;

	if (u->st == H1UP_CLOSED)
		return;
	if (u->st == H1UP_IDLE) {
		pool_idle_unlink(u);
	} else {
		t->nbusy--;
		t->pool->nbusy--;
	}
	u->st = H1UP_CLOSED;
	u->owner = NULL;
	u->ops = NULL;
	t->nclosing++;  /* <t> outlives the deferred free of <u> */
	loop_timer_stop(&px->loop, &u->timer);
	ep_close(px->loop.ev, &u->ep, 0);
	if (u->opened)
		pxmetrics_tcp_close(t->m, fail, u->ep.err);
	u->opened = 0;
	loop_defer(&px->loop, &u->reap);
}

static void pool_up_reap(void *arg)
{
	struct h1up *u = arg;
	struct pool_target *t = u->t;
	struct proxy *px = t->pool->px;

	mem_pool_put(&px->up_pool, u);
	t->nclosing--;
	pool_target_maybe_free(t);
}

/* h1.c's exchanges: the owner is the struct conn */
static void pool_h1_io(void *owner, int revents)
{
	h1_up_io(owner, revents);
}

static void pool_h1_failed(void *owner, int err)
{
	h1_up_failed(owner, err);
}

static const struct h1up_ops pool_h1_ops = {
	.io = pool_h1_io,
	.failed = pool_h1_failed,
};

struct h1up *pool_h1_get(struct pool_target *t, struct conn *cx, int *err)
{
	return pool_h1_get_owner(t, &pool_h1_ops, cx, err);
}

struct h1up *pool_h1_get_owner(struct pool_target *t,
                               const struct h1up_ops *ops, void *owner,
                               int *err)
{
	struct proxy *px = t->pool->px;
	struct h1up *u = t->idle;
	int e;

	if (u) {
		pool_idle_unlink(u);
		loop_timer_stop(&px->loop, &u->timer);
		u->st = H1UP_BUSY;
		u->owner = owner;
		u->ops = ops;
		t->nbusy++;
		t->pool->nbusy++;
		/* EV_READ stays on: events now go to the exchange */
		return u;
	}
	u = mem_pool_zget(&px->up_pool);
	if (!u) {
		*err = -ENOBUFS;
		return NULL;
	}
	u->t = t;
	ep_init(&u->ep, -1, pool_up_cb, px->cfg.in_limit, px->cfg.out_limit);
	loop_timer_init(&u->timer, pool_up_timer_cb);
	loop_defer_init(&u->reap, pool_up_reap, u);
	e = pool_tcp_connect(px, &u->ep, &t->addr);
	if (e < 0) {
		pxmetrics_tcp_connect_fail(t->m, e);
		mem_pool_put(&px->up_pool, u);
		*err = e;
		return NULL;
	}
	u->st = H1UP_CONNECTING;
	u->owner = owner;
	u->ops = ops;
	t->nbusy++;
	t->pool->nbusy++;
	if (t->m) {
		u->ep.m_rd = t->m->rd;
		u->ep.m_wr = t->m->wr;
	}
	ep_want(px->loop.ev, &u->ep, EV_WRITE);
	loop_timer_arm(&px->loop, &u->timer, px->cfg.connect_timeout_ms);
	return u;
}

void pool_h1_put(struct h1up *u, int reuse)
{
	struct pool_target *t = u->t;
	struct pool *p = t->pool;
	struct proxy *px = p->px;

	if (u->st == H1UP_CLOSED)
		return;
	if (!reuse || u->st != H1UP_BUSY || px->draining ||
	    t->nidle >= px->cfg.pool_max_idle || ep_out_pending(&u->ep) ||
	    buf_len(&u->ep.in) || (u->ep.flags & (EP_F_EOF | EP_F_ERR))) {
		pool_up_close(u, !reuse);
		return;
	}
	u->owner = NULL;
	u->ops = NULL;
	u->nreq++;
	u->st = H1UP_IDLE;
	t->nbusy--;
	p->nbusy--;
	u->next = t->idle;
	u->prev = NULL;
	if (t->idle)
		t->idle->prev = u;
	t->idle = u;
	t->nidle++;
	p->nidle++;
	ep_want(px->loop.ev, &u->ep, EV_READ);
	loop_timer_arm(&px->loop, &u->timer, px->cfg.pool_idle_timeout_ms);
}

void pool_h1_detach(struct h1up *u, struct ep *dst,
                    void (*cb)(struct ev_loop *, ev_io *, int),
                    struct pxm_tcp **m)
{
	struct pool_target *t = u->t;
	struct proxy *px = t->pool->px;

	ep_want(px->loop.ev, &u->ep, 0);
	*dst = u->ep;
	ev_io_init(&dst->io, cb, dst->fd, 0);
	dst->events = 0;
	*m = u->opened ? t->m : NULL;
	/* the socket and buffers now belong to <dst> */
	u->ep.fd = -1;
	memset(&u->ep.in, 0, sizeof(u->ep.in));
	memset(&u->ep.out, 0, sizeof(u->ep.out));
	u->opened = 0;
	pool_up_close(u, 0);
}

static void pool_up_connected(struct h1up *u)
{
	struct pool_target *t = u->t;
	struct proxy *px = t->pool->px;
	int e = sock_connect_result(u->ep.fd);

	u->ep.flags &= ~EP_F_CONNECTING;
	loop_timer_stop(&px->loop, &u->timer);
	if (e < 0) {
		const struct h1up_ops *ops = u->ops;
		void *owner = u->owner;

		LOG_DEBUG("proxy", "upstream connect failed: %s", strerror(-e));
		ep_fail(&u->ep, -e);
		pxmetrics_tcp_connect_fail(t->m, e);
		pool_up_close(u, 1);
		if (owner)
			ops->failed(owner, e);
		return;
	}
	(void)sock_set_nodelay(u->ep.fd);
	u->st = H1UP_BUSY;
	u->opened = 1;
	pxmetrics_tcp_open(t->m);
	if (u->owner)
		u->ops->io(u->owner, EV_WRITE);
}

static void pool_up_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct h1up *u = container_of(w, struct h1up, ep.io);

	(void)ev;
	switch (u->st) {
	case H1UP_CONNECTING:
		pool_up_connected(u);
		return;
	case H1UP_BUSY:
		if (u->owner)
			u->ops->io(u->owner, revents);
		return;
	case H1UP_IDLE:
		/* EOF or unasked bytes: either way the connection is done */
		pool_up_close(u, 0);
		return;
	case H1UP_CLOSED:
		return;
	}
}

static void pool_up_timer_cb(struct loop *loop, struct loop_timer *tm)
{
	struct h1up *u = container_of(tm, struct h1up, timer);
	const struct h1up_ops *ops = u->ops;
	void *owner = u->owner;

	(void)loop;
	if (u->st == H1UP_CONNECTING) {
		ep_fail(&u->ep, ETIMEDOUT);
		pxmetrics_tcp_connect_fail(u->t->m, ETIMEDOUT);
		pool_up_close(u, 1);
		if (owner)
			ops->failed(owner, -ETIMEDOUT);
	} else if (u->st == H1UP_IDLE) {
		pool_up_close(u, 0);
	}
}

void pool_target_close_idle(struct pool_target *t)
{
	while (t->idle)
		pool_up_close(t->idle, 0);
}

void pool_close_idle(struct pool *p)
{
	unsigned i;

	for (i = 0; i < POOL_TAB_SIZE; i++) {
		struct pool_target *t, *tn;

		for (t = p->tab[i]; t; t = tn) {
			tn = t->hnext;
			while (t->idle)
				pool_up_close(t->idle, 0);
			if (t->h2)
				h2side_up_drain(t->h2);
		}
	}
}

void pool_free(struct pool *p)
{
	unsigned i;

	if (!p)
		return;
	for (i = 0; i < POOL_TAB_SIZE; i++) {
		struct pool_target *t;

		while ((t = p->tab[i]) != NULL) {
			p->tab[i] = t->hnext;
			mem_free(t);
		}
	}
	mem_free(p);
}

void pool_counts(const struct pool *p, uint32_t *idle, uint32_t *busy)
{
	*idle = p->nidle;
	*busy = p->nbusy;
}
