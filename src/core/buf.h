/*
 * buf: a byte buffer with a hard limit.
 *
 * Bytes live in data[head, tail). A buffer either owns heap storage that
 * grows on demand (doubling) up to <limit> bytes, or wraps fixed storage the
 * caller owns (buf_init_fixed), which never grows and is never freed here.
 * Every operation that would go past the limit fails with -1 and leaves the
 * buffer unchanged: a full buffer is the caller's signal to stop reading or to
 * refuse the input, never a reason to grow further.
 *
 * A zeroed struct buf is an empty buffer with limit 0 (every write fails).
 */
#ifndef MESHD_CORE_BUF_H
#define MESHD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;    /* private: storage, NULL until first write */
	size_t size;   /* private: bytes of storage */
	size_t limit;  /* ro: hard cap on storage */
	size_t head;   /* private: first byte of content */
	size_t tail;   /* private: one past the last byte of content */
	int fixed;     /* private: storage belongs to the caller */
};

/* Heap-backed buffer that may grow up to <limit> bytes. */
void buf_init(struct buf *b, size_t limit);
/* Buffer over caller storage of <size> bytes; it never grows. */
void buf_init_fixed(struct buf *b, void *storage, size_t size);
/* Releases heap storage (not fixed storage) and empties the buffer. */
void buf_free(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
/* The content; never NULL (an empty, unallocated buffer gives "", which
 * MUST NOT be written), so callers may pass it on with a length of 0. */
static inline char *buf_data(const struct buf *b)
{
	return b->data ? b->data + b->head : (char *)"";
}
/* Bytes that can still be added before the hard limit. */
static inline size_t buf_room(const struct buf *b) { return b->limit - buf_len(b); }
static inline void buf_reset(struct buf *b) { b->head = b->tail = 0; }

/* Makes <n> contiguous bytes writable at the tail and returns a pointer to
 * them, or NULL if that would exceed the limit or memory is short. Commit what
 * was written with buf_produce. */
char *buf_reserve(struct buf *b, size_t n);
/* Writable bytes at the tail without moving or growing anything. */
static inline size_t buf_tail_room(const struct buf *b) { return b->size - b->tail; }
static inline char *buf_tail(const struct buf *b) { return b->data + b->tail; }
/* Commits <n> bytes written at the tail (n <= buf_tail_room). */
void buf_produce(struct buf *b, size_t n);
/* Drops <n> bytes from the head (n <= buf_len). */
void buf_consume(struct buf *b, size_t n);

/* Appends; returns 0, or -1 with the buffer unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* NUL-terminates the content without counting the NUL; returns the content
 * as a C string, or NULL when there is no room for the NUL. */
const char *buf_cstr(struct buf *b);

#endif
