/*
 * ep: socket endpoints with on-demand bounded buffers (see ep.h).
 *
 * IMPLEMENTATION NOTES
 * ep_sendv tries the socket first (one writev for head and body pieces) and
 * copies only the unwritten tail into <out>; while <out> is non-empty every
 * later piece is appended behind it, which keeps the byte order. The limit
 * check happens before anything is written, so a refused send has no side
 * effect.
 */
#include <errno.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "core/sock.h"
#include "core/util.h"
#include "proxy/ep.h"

char ep_scratch[EP_SCRATCH_SIZE];

#define EP_MAX_IOV 64

void ep_init(struct ep *ep, int fd,
             void (*cb)(struct ev_loop *, ev_io *, int), size_t in_limit,
             size_t out_limit)
{
	memset(ep, 0, sizeof(*ep));
	ep->fd = fd;
	ev_io_init(&ep->io, cb, fd < 0 ? 0 : fd, 0);
	buf_init(&ep->in, in_limit);
	buf_init(&ep->out, out_limit);
}

void ep_set_fd(struct ep *ep, int fd)
{
	ep->fd = fd;
	ev_io_set(&ep->io, fd, 0);
	ep->events = 0;
}

void ep_want(struct ev_loop *ev, struct ep *ep, int events)
{
	if (ep->fd < 0)
		return;
	if (events == ep->events && (events == 0) == !ev_is_active(&ep->io))
		return;
	if (ev_is_active(&ep->io))
		ev_io_stop(ev, &ep->io);
	ep->events = events;
	if (events) {
		/* same fd: what ev_io_modify does (written out: the macro
		 * trips -Wparentheses); unlike ev_io_set it does not force
		 * libev to re-register the fd (an epoll_ctl per change) */
		ep->io.events = (ep->io.events & EV__IOFDSET) | events;
		ev_io_start(ev, &ep->io);
	}
}

ssize_t ep_read(struct ep *ep, void *dst, size_t len)
{
	ssize_t n;

	if (ep->fd < 0)
		return -EBADF;
	/* recv, not read: a socket's own entry point skips the VFS layer
	 * (about 5 % of a proxy's CPU at saturation); read is the fallback
	 * for the rare endpoint that is not a socket */
	do
		n = (ep->flags & EP_F_NOTSOCK) ? read(ep->fd, dst, len)
		                               : recv(ep->fd, dst, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ENOTSOCK) {
		ep->flags |= EP_F_NOTSOCK;
		return ep_read(ep, dst, len);
	}
	if (n > 0) {
		ep->rx += (uint64_t)n;
		metrics_counter_add(ep->m_rd, (uint64_t)n);
		return n;
	}
	if (n == 0) {
		ep->flags |= EP_F_EOF;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	n = -errno;
	ep_fail(ep, errno);
	return n;
}

ssize_t ep_read_any(struct ep *ep, const char **data, size_t *len,
                    int *from_in)
{
	ssize_t n;
	size_t room;
	char *dst;

	if (buf_len(&ep->in) == 0) {
		n = ep_read(ep, ep_scratch, sizeof(ep_scratch));
		*data = ep_scratch;
		*len = n > 0 ? (size_t)n : 0;
		*from_in = 0;
		return n;
	}
	room = buf_room(&ep->in);
	if (room == 0)
		return -ENOBUFS;
	if (room > EP_SCRATCH_SIZE)
		room = EP_SCRATCH_SIZE;
	dst = buf_reserve(&ep->in, room);
	if (!dst)
		return -ENOBUFS;
	n = ep_read(ep, dst, room);
	if (n > 0)
		buf_produce(&ep->in, (size_t)n);
	*data = buf_data(&ep->in);
	*len = buf_len(&ep->in);
	*from_in = 1;
	return n;
}

static ssize_t ep_writev_raw(struct ep *ep, const struct iovec *iov, int n)
{
	ssize_t w;

	do {
		if (ep->flags & EP_F_NOTSOCK) {
			w = writev(ep->fd, iov, n);
		} else if (n == 1) {
			w = send(ep->fd, iov[0].iov_base, iov[0].iov_len,
			         MSG_NOSIGNAL);
		} else {
			struct msghdr mh;

			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = (struct iovec *)iov;
			mh.msg_iovlen = (size_t)n;
			w = sendmsg(ep->fd, &mh, MSG_NOSIGNAL);
		}
	} while (w < 0 && errno == EINTR);
	if (w < 0 && errno == ENOTSOCK) {
		ep->flags |= EP_F_NOTSOCK;
		return ep_writev_raw(ep, iov, n);
	}
	if (w >= 0) {
		ep->tx += (uint64_t)w;
		metrics_counter_add(ep->m_wr, (uint64_t)w);
		return w;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	w = -errno;
	ep_fail(ep, errno);
	return w;
}

int ep_sendv(struct ev_loop *ev, struct ep *ep, const struct iovec *iov,
             int n)
{
	size_t total = 0, skip;
	ssize_t w = 0;
	int i;

	if (ep->fd < 0 || (ep->flags & (EP_F_ERR | EP_F_SHUTW)))
		return -EPIPE;
	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	if (total > buf_room(&ep->out))
		return -ENOBUFS;
	if (buf_len(&ep->out) == 0 &&
	    !(ep->flags & (EP_F_CONNECTING | EP_F_CORK))) {
		w = ep_writev_raw(ep, iov, n > EP_MAX_IOV ? EP_MAX_IOV : n);
		if (w < 0)
			return (int)w;
		if ((size_t)w == total)
			return 0;
	}
	skip = (size_t)w;
	for (i = 0; i < n; i++) {
		const char *p = iov[i].iov_base;
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (buf_append(&ep->out, p + skip, l - skip) < 0) {
			ep->flags |= EP_F_ERR;
			return -ENOMEM;
		}
		skip = 0;
	}
	if (!(ep->flags & (EP_F_CONNECTING | EP_F_CORK)))
		ep_want_add(ev, ep, EV_WRITE);
	return 0;
}

ssize_t ep_flush(struct ev_loop *ev, struct ep *ep)
{
	struct iovec v;
	ssize_t w;

	if (ep->fd < 0)
		return -EBADF;
	ep->flags &= ~EP_F_CORK;
	while (buf_len(&ep->out)) {
		v.iov_base = buf_data(&ep->out);
		v.iov_len = buf_len(&ep->out);
		w = ep_writev_raw(ep, &v, 1);
		if (w < 0)
			return w;
		if (w == 0)
			break;
		buf_consume(&ep->out, (size_t)w);
	}
	if (buf_len(&ep->out)) {
		ep_want_add(ev, ep, EV_WRITE);
		return (ssize_t)buf_len(&ep->out);
	}
	buf_free(&ep->out);
	ep_want_del(ev, ep, EV_WRITE);
	if ((ep->flags & EP_F_WANT_SHUTW) && !(ep->flags & EP_F_SHUTW)) {
		int e;

		ep->flags |= EP_F_SHUTW;
		e = sock_shutdown_write(ep->fd);
		if (e < 0)
			ep_fail(ep, -e);
	}
	return 0;
}

int ep_shutdown_write(struct ev_loop *ev, struct ep *ep)
{
	ep->flags |= EP_F_WANT_SHUTW;
	if (ep->fd < 0 || (ep->flags & EP_F_CONNECTING))
		return 0;
	if (buf_len(&ep->out) == 0) {
		ssize_t r = ep_flush(ev, ep);

		return r < 0 ? (int)r : 0;
	}
	return 0;
}

int ep_keep_in(struct ep *ep, const char *data, size_t len, int from_in)
{
	if (from_in) {
		/* <data> is the tail of <in>: drop what precedes it */
		size_t before = buf_len(&ep->in) - len;

		ep_consume_in(ep, before);
		return 0;
	}
	if (len == 0)
		return 0;
	if (buf_append(&ep->in, data, len) < 0)
		return -ENOBUFS;
	return 0;
}

void ep_consume_in(struct ep *ep, size_t n)
{
	if (n > buf_len(&ep->in))
		n = buf_len(&ep->in);
	buf_consume(&ep->in, n);
	if (buf_len(&ep->in) == 0)
		buf_free(&ep->in);
}

void ep_close(struct ev_loop *ev, struct ep *ep, int reset)
{
	if (ep->fd >= 0) {
		if (ev_is_active(&ep->io))
			ev_io_stop(ev, &ep->io);
		if (reset)
			sock_set_linger0(ep->fd);
		close(ep->fd);
		ep->fd = -1;
	}
	ep->events = 0;
	buf_free(&ep->in);
	buf_free(&ep->out);
}

size_t ep_mem(const struct ep *ep)
{
	return (ep->in.fixed ? 0 : ep->in.size) +
	       (ep->out.fixed ? 0 : ep->out.size);
}
