/*
 * ep: one socket endpoint of the proxy (a downstream client connection, an
 * upstream server connection) with its libev watcher, its on-demand bounded
 * buffers and its byte counters.
 *
 * Buffers and back-pressure. Reads go into one shared per-process scratch
 * buffer (ep_scratch, EP_SCRATCH_SIZE bytes) and are forwarded from there at
 * once. Only what cannot be handled now is copied into the endpoint's own
 * buffers, which are allocated on demand and released as soon as they are
 * empty, so an idle connection holds no buffer at all:
 *  - <in>: bytes read but not consumed yet (a partial HTTP head, pipelined
 *    requests waiting for the current exchange to end);
 *  - <out>: bytes accepted for sending that the kernel did not take yet.
 * The rule that bounds memory: a side is read only while its peer's <out> is
 * empty (ep_out_pending() == 0). So <out> holds at most what one read
 * produced (plus a head), and a slow reader stops the proxy from reading the
 * other side instead of making it buffer.
 *
 * Contracts:
 *  - The scratch buffers are valid only inside the current callback: data
 *    read into them MUST be forwarded or copied before returning to the
 *    loop, and nothing may read into them while their content is still in
 *    use (reads happen only at the top of I/O callbacks).
 *  - ep_send never blocks and never drops bytes: what the kernel does not
 *    take goes to <out> (bounded by out.limit); the caller then waits for
 *    the endpoint to drain before producing more.
 *  - Functions return 0 or a positive byte count on success and -errno on
 *    failure (-ENOBUFS when a buffer limit would be passed).
 *  - ep_close is idempotent and releases the fd, the watcher and both
 *    buffers; the struct itself belongs to its owner. It keeps <flags> and
 *    <err>, so the owner can still report why the endpoint ended.
 *  - <err> is the errno of the first socket error (read, write, shutdown,
 *    or a connect result the owner reports with ep_fail); later errors do
 *    not replace it. Failures that are not the socket's (a buffer limit,
 *    memory) set EP_F_ERR where they make the endpoint unusable but leave
 *    <err> alone.
 */
#ifndef MESHD_PROXY_EP_H
#define MESHD_PROXY_EP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <ev.h>

#include "core/buf.h"
#include "core/metrics.h"

/* Bytes of the shared read buffer: the most one read brings in. */
#define EP_SCRATCH_SIZE 65536
/* Bytes of the shared head buffer (a serialized head and small framing). */
#define EP_HSCRATCH_SIZE (65536 + 8192)

extern char ep_scratch[EP_SCRATCH_SIZE];

/* ep.flags */
#define EP_F_EOF        0x01 /* read side saw end of stream */
#define EP_F_SHUTW      0x02 /* we sent FIN (shutdown write) */
#define EP_F_ERR        0x04 /* a socket error happened: unusable */
#define EP_F_CONNECTING 0x08 /* non-blocking connect in progress */
#define EP_F_WANT_SHUTW 0x10 /* send FIN once <out> is drained */
#define EP_F_NOTSOCK    0x20 /* not a socket: read/writev, not recv/send */
#define EP_F_CORK       0x40 /* ep_sendv only queues into <out>; the owner
                              * calls ep_flush (which clears it) later, so
                              * pieces produced apart leave in one write */

struct ep {
	int fd;                      /* ro: -1 when closed */
	int events;                  /* ro: EV_READ|EV_WRITE interest */
	unsigned flags;              /* rw: EP_F_* */
	int err;                     /* ro: first socket errno, 0 none */
	ev_io io;                    /* private: started while events != 0 */
	struct buf in;               /* rw: see the header comment */
	struct buf out;              /* private: through ep_send/ep_flush */
	uint64_t rx;                 /* ro: bytes read */
	uint64_t tx;                 /* ro: bytes written */
	struct metrics_series *m_rd; /* rw: tcp_read_bytes_total or NULL */
	struct metrics_series *m_wr; /* rw: tcp_write_bytes_total or NULL */
};

/*
 * Sets up <ep> around <fd> (may be -1 for "none yet") with watcher callback
 * <cb> and buffer limits <in_limit>/<out_limit>. No watcher is started.
 */
void ep_init(struct ep *ep, int fd,
             void (*cb)(struct ev_loop *, ev_io *, int), size_t in_limit,
             size_t out_limit);

/* Attaches <fd> to an endpoint initialized with fd -1. */
void ep_set_fd(struct ep *ep, int fd);

/*
 * Marks <ep> failed (EP_F_ERR) by socket error <err> (an errno, positive;
 * e.g. a failed connect's result). Only the first error is kept in
 * ep->err; <err> 0 just sets the flag.
 */
static inline void ep_fail(struct ep *ep, int err)
{
	ep->flags |= EP_F_ERR;
	if (!ep->err && err > 0)
		ep->err = err;
}

/* Sets the watcher interest to <events> (0, EV_READ, EV_WRITE or both);
 * cheap when nothing changes. */
void ep_want(struct ev_loop *ev, struct ep *ep, int events);

/* Adds <events> to / removes them from the interest. */
static inline void ep_want_add(struct ev_loop *ev, struct ep *ep, int events)
{
	ep_want(ev, ep, ep->events | events);
}

static inline void ep_want_del(struct ev_loop *ev, struct ep *ep, int events)
{
	ep_want(ev, ep, ep->events & ~events);
}

/*
 * Reads at most <len> bytes into <dst>. Returns the count (> 0), 0 at end
 * of stream (EP_F_EOF set), -EAGAIN when nothing is there, or -errno
 * (EP_F_ERR set). Counts bytes into rx and m_rd.
 */
ssize_t ep_read(struct ep *ep, void *dst, size_t len);

/*
 * Reads into the shared scratch buffer, or, when <in> already holds bytes,
 * appends to <in> (so a partial head keeps growing in place, at most up to
 * in.limit). Sets *<data> and *<len> to all unconsumed bytes (scratch or <in>)
 * and *<from_in> to 1 when they live in <in>. Return as ep_read; -ENOBUFS
 * when <in> is full.
 */
ssize_t ep_read_any(struct ep *ep, const char **data, size_t *len,
                    int *from_in);

/* Bytes accepted for sending but not written yet. */
static inline size_t ep_out_pending(const struct ep *ep)
{
	return buf_len(&ep->out);
}

/*
 * Writes the <n> pieces of <iov>: straight to the socket when nothing is
 * pending, the rest (or everything, while something is pending or the
 * connect is in progress) into <out>, and asks for EV_WRITE then. Returns
 * 0, -ENOBUFS when <out> would pass its limit (nothing queued then), or
 * -errno from the socket (EP_F_ERR set).
 */
int ep_sendv(struct ev_loop *ev, struct ep *ep, const struct iovec *iov,
             int n);

static inline int ep_send(struct ev_loop *ev, struct ep *ep, const void *p,
                          size_t len)
{
	struct iovec v = { (void *)p, len };

	return ep_sendv(ev, ep, &v, 1);
}

/*
 * Writes what <out> holds. Returns the bytes still pending (0: drained, the
 * buffer is released and EV_WRITE dropped; a FIN asked with EP_F_WANT_SHUTW
 * is sent then), or -errno. Call it when the endpoint is writable.
 */
ssize_t ep_flush(struct ev_loop *ev, struct ep *ep);

/* Sends FIN now when <out> is empty, else once it drains. 0 or -errno. */
int ep_shutdown_write(struct ev_loop *ev, struct ep *ep);

/* Keeps <len> bytes at <data> in <in> (copying them unless they already are
 * its whole content). 0, or -ENOBUFS past in.limit. */
int ep_keep_in(struct ep *ep, const char *data, size_t len, int from_in);

/* Drops <n> consumed bytes from the head of <in>, releasing it when empty. */
void ep_consume_in(struct ep *ep, size_t n);

/* Stops the watcher, closes the fd, frees both buffers. Idempotent. With
 * <reset> the close sends RST instead of FIN (SO_LINGER 0). */
void ep_close(struct ev_loop *ev, struct ep *ep, int reset);

/* Heap bytes the endpoint's buffers hold now. */
size_t ep_mem(const struct ep *ep);

#endif
