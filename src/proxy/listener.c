/*
 * listener: listening sockets and the accept loop (see listener.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proxy/admin.h"
#include "proxy/conn.h"
#include "proxy/listener.h"

const char *listener_kind_str(enum listener_kind k)
{
	switch (k) {
	case LISTENER_OUTBOUND: return "outbound";
	case LISTENER_INBOUND: return "inbound";
	case LISTENER_TCP_ROUTE: return "tcp-route";
	case LISTENER_ADMIN: return "admin";
	}
	return "?";
}

static void listener_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct listener *l = container_of(w, struct listener, io);
	struct proxy *px = l->px;
	struct sock_addr peer;
	int i, fd;

	(void)ev;
	(void)revents;
	for (i = 0; i < LISTENER_ACCEPT_BURST; i++) {
		if (l->kind != LISTENER_ADMIN && px->nconns >= px->cfg.max_conns) {
			px->stats.refused_max_conns++;
			listener_pause(px);
			return;
		}
		fd = sock_accept(l->fd, &peer);
		if (fd == -EAGAIN)
			return;
		if (fd == -EMFILE || fd == -ENFILE) {
			LOG_WARN("proxy", "accept on %s listener: out of file "
			         "descriptors", listener_kind_str(l->kind));
			if (l->kind != LISTENER_ADMIN)
				listener_pause(px);
			return;
		}
		if (fd < 0)
			continue;
		switch (l->kind) {
		case LISTENER_ADMIN:
			admin_accept(px->admin, fd, &peer);
			break;
		case LISTENER_OUTBOUND:
			conn_new(px, fd, &peer, ROUTE_OUTBOUND, 0);
			break;
		case LISTENER_INBOUND:
			conn_new(px, fd, &peer, ROUTE_INBOUND, 0);
			break;
		case LISTENER_TCP_ROUTE:
			conn_new(px, fd, &peer, ROUTE_OUTBOUND, 1);
			break;
		}
	}
}

struct listener *listener_add(struct proxy *px, enum listener_kind kind,
                              const struct sock_addr *addr, char *err,
                              size_t errlen)
{
	return listener_add_flags(px, kind, addr, 0, err, errlen);
}

struct listener *listener_add_flags(struct proxy *px, enum listener_kind kind,
                                    const struct sock_addr *addr,
                                    unsigned flags, char *err, size_t errlen)
{
	struct listener *l;
	int fd = sock_listen(addr, 0, flags, err, errlen);

	if (fd < 0)
		return NULL;
	l = mem_calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->px = px;
	l->kind = kind;
	l->fd = fd;
	if (sock_local_addr(fd, &l->addr) < 0)
		l->addr = *addr;
	ev_io_init(&l->io, listener_cb, fd, EV_READ);
	ev_io_start(px->loop.ev, &l->io);
	l->next = px->listeners;
	px->listeners = l;
	return l;
}

void listener_pause(struct proxy *px)
{
	struct listener *l;

	for (l = px->listeners; l; l = l->next) {
		if (l->kind == LISTENER_ADMIN || l->paused || l->fd < 0)
			continue;
		ev_io_stop(px->loop.ev, &l->io);
		l->paused = 1;
	}
}

void listener_resume(struct proxy *px)
{
	struct listener *l;

	if (px->draining)
		return;
	for (l = px->listeners; l; l = l->next) {
		if (!l->paused || l->fd < 0)
			continue;
		ev_io_start(px->loop.ev, &l->io);
		l->paused = 0;
	}
}

void listener_close_proxy(struct proxy *px)
{
	struct listener *l;

	for (l = px->listeners; l; l = l->next) {
		if (l->kind == LISTENER_ADMIN || l->fd < 0)
			continue;
		ev_io_stop(px->loop.ev, &l->io);
		close(l->fd);
		l->fd = -1;
	}
}

void listener_free_all(struct proxy *px)
{
	struct listener *l;

	while ((l = px->listeners) != NULL) {
		px->listeners = l->next;
		if (l->fd >= 0) {
			ev_io_stop(px->loop.ev, &l->io);
			close(l->fd);
		}
		mem_free(l);
	}
}
