/*
 * h2io: socket <-> nghttp2 session plumbing. See h2io.h.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/mem.h"
#include "h2io.h"

#define H2IO_READ (16 * 1024)
/* Produce-and-send rounds per call; then the write watcher takes over. */
#define H2IO_ROUNDS 8

int h2io_read(nghttp2_session *ng, int fd)
{
	uint8_t in[H2IO_READ];
	nghttp2_ssize rv;
	ssize_t n;

	n = read(fd, in, sizeof(in));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	rv = nghttp2_session_mem_recv2(ng, in, (size_t)n);
	return rv < 0 ? H2IO_PROTO : 1;
}

/* Sends <out>; 0 when it is empty, 1 when the socket is full, -1 on
 * error. */
static int h2io_send(struct buf *out, int fd)
{
	ssize_t n;

	while (buf_len(out)) {
		n = send(fd, buf_data(out), buf_len(out), MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		return -1;
	}
	return 0;
}

int h2io_flush(nghttp2_session *ng, struct buf *out, int fd)
{
	const uint8_t *data;
	nghttp2_ssize n;
	int round, rc;

	for (round = 0; round < H2IO_ROUNDS; round++) {
		while (buf_len(out) < H2IO_OUT_HIGH) {
			n = nghttp2_session_mem_send2(ng, &data);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if (buf_append(out, data, (size_t)n) < 0)
				return -1;
		}
		rc = h2io_send(out, fd);
		if (rc)
			return rc;
		if (!nghttp2_session_want_write(ng))
			return 0;
	}
	return 1;
}

int h2io_done(nghttp2_session *ng, const struct buf *out)
{
	return !buf_len(out) && !nghttp2_session_want_read(ng) &&
	       !nghttp2_session_want_write(ng);
}

static void *h2io_malloc(size_t size, void *ud)
{
	(void)ud;
	return mem_alloc(size);
}

static void h2io_free(void *ptr, void *ud)
{
	(void)ud;
	mem_free(ptr);
}

static void *h2io_calloc(size_t nmemb, size_t size, void *ud)
{
	(void)ud;
	return mem_calloc(nmemb, size);
}

static void *h2io_realloc(void *ptr, size_t size, void *ud)
{
	(void)ud;
	return mem_realloc(ptr, size);
}

nghttp2_mem *h2io_mem(void)
{
	static nghttp2_mem mem = {
		NULL, h2io_malloc, h2io_free, h2io_calloc, h2io_realloc
	};

	return &mem;
}
