/*
 * h2io: moves bytes between a socket and an nghttp2 session (h2srv and
 * h2cli share it).
 *
 * Contracts:
 *  - Never call these from inside an nghttp2 callback: they drive the
 *    session (mem_recv2 / mem_send2), which is not reentrant.
 *  - <out> is the connection's bounded send buffer; frames are moved into
 *    it only while it holds less than H2IO_OUT_HIGH bytes, so it never
 *    grows past H2IO_OUT_HIGH plus one frame.
 */
#ifndef ABC_H2IO_H
#define ABC_H2IO_H

#include <nghttp2/nghttp2.h>

#include "core/buf.h"

#define H2IO_OUT_HIGH (64 * 1024)
/* Large enough for H2IO_OUT_HIGH plus the biggest frame nghttp2 emits. */
#define H2IO_OUT_MAX (H2IO_OUT_HIGH + 32 * 1024)

/*
 * Reads what <fd> has (one read) and feeds it to <ng>.
 * Returns 1 when bytes were processed, 0 when there was nothing to read,
 * -1 on EOF or a socket error, H2IO_PROTO on a protocol error (the
 * connection must go; a GOAWAY may still be flushed).
 */
#define H2IO_PROTO (-2)
int h2io_read(nghttp2_session *ng, int fd);

/*
 * Serializes pending frames into <out> and sends them, for a bounded
 * number of rounds. Returns 1 when bytes remain to be sent or produced
 * (keep EV_WRITE on), 0 when everything went out, -1 on a socket or
 * session error (the connection must go).
 */
int h2io_flush(nghttp2_session *ng, struct buf *out, int fd);

/* Allocator for nghttp2_session_*_new3, so that nghttp2's memory goes
 * through core/mem like the rest of abc-app's. */
nghttp2_mem *h2io_mem(void);

/* 1 when the session has nothing more to do (no reads, no writes wanted)
 * and <out> is empty: the connection can be closed. */
int h2io_done(nghttp2_session *ng, const struct buf *out);

#endif
