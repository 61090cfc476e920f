/*
 * buf: bounded byte buffers. See buf.h for the contract.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

#define BUF_MIN_ALLOC 256

void buf_init(struct buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
}

void buf_init_fixed(struct buf *b, void *storage, size_t size)
{
	memset(b, 0, sizeof(*b));
	b->data = storage;
	b->size = size;
	b->limit = size;
	b->fixed = 1;
}

void buf_free(struct buf *b)
{
	if (!b->fixed) {
		MEM_FREE(&b->data);
		b->size = 0;
	}
	b->head = b->tail = 0;
}

char *buf_reserve(struct buf *b, size_t n)
{
	size_t len = buf_len(b), want, nsize;
	char *nd;

	if (n > b->limit || len > b->limit - n)
		return NULL;
	if (b->size - b->tail >= n)
		return b->data + b->tail;
	want = len + n;
	if (b->size >= want) {
		/* enough storage: slide the content to the front */
		memmove(b->data, b->data + b->head, len);
		b->head = 0;
		b->tail = len;
		return b->data + b->tail;
	}
	if (b->fixed)
		return NULL;
	nsize = b->size ? b->size : BUF_MIN_ALLOC;
	while (nsize < want)
		nsize = nsize > b->limit / 2 ? b->limit : nsize * 2;
	if (nsize > b->limit)
		nsize = b->limit;
	if (b->head) {
		memmove(b->data, b->data + b->head, len);
		b->head = 0;
		b->tail = len;
	}
	nd = mem_realloc(b->data, nsize);
	if (!nd)
		return NULL;
	b->data = nd;
	b->size = nsize;
	return b->data + b->tail;
}

void buf_produce(struct buf *b, size_t n)
{
	b->tail += n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0)
		return 0;
	dst = buf_reserve(b, n);
	if (!dst)
		return -1;
	memcpy(dst, p, n);
	b->tail += n;
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char *dst;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(b->data ? buf_tail(b) : NULL,
	              b->data ? buf_tail_room(b) : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if (b->data && (size_t)n < buf_tail_room(b)) {
		b->tail += n;
		return 0;
	}
	/* +1: vsnprintf always writes a NUL */
	dst = buf_reserve(b, (size_t)n + 1);
	if (!dst)
		return -1;
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	b->tail += n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *buf_cstr(struct buf *b)
{
	char *dst = buf_reserve(b, 1);

	if (!dst)
		return NULL;
	*dst = '\0';
	return buf_data(b);
}
