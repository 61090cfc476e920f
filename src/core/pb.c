/*
 * pb: table-driven protobuf wire codec (contracts in core/pb.h).
 *
 * IMPLEMENTATION NOTES
 *  - The decoder is a recursive descent over length-delimited slices; each
 *    level is bounded by PB_DEPTH_MAX, which also bounds the stack. Every
 *    read checks the bytes left before touching them.
 *  - Repeated fields grow in the arena by doubling: the capacity of an
 *    array is implied by its count (0, then 4, 8, 16...), so the C structs
 *    need no capacity member. Growing copies the elements; nested arrays
 *    live in their own blocks, so the copy never breaks a pointer.
 *  - The encoder first validates and sizes the whole message, reserves the
 *    exact space in the buffer, then writes without further checks.
 *    Sub-message sizes are recomputed at each level (O(depth * size)),
 *    which is cheap at PB_DEPTH_MAX and avoids a size cache.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/pb.h"

/* --- arena --- */

#define PB_ALIGN _Alignof(max_align_t)

void pb_arena_init(struct pb_arena *a, void *storage, size_t size)
{
	a->base = storage;
	a->cap = storage ? size : 0;
	a->used = 0;
}

void *pb_arena_alloc(struct pb_arena *a, size_t n)
{
	size_t start;
	uintptr_t addr;
	void *p;

	if (!a || !a->base)
		return NULL;
	addr = (uintptr_t)(a->base + a->used);
	start = a->used + ((PB_ALIGN - addr % PB_ALIGN) % PB_ALIGN);
	if (start > a->cap || n > a->cap - start)
		return NULL;
	p = a->base + start;
	memset(p, 0, n);
	a->used = start + n;
	return p;
}

/* --- low level --- */

int pb_read_varint(const uint8_t *p, size_t n, uint64_t *v)
{
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < 10; i++) {
		if (i >= n)
			return 0;
		if (i == 9 && p[i] > 1)
			return PB_E_VARINT;
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return (int)i + 1;
		}
	}
	return PB_E_VARINT;
}

int pb_read_tag(const uint8_t *p, size_t n, uint32_t *num, uint32_t *wt)
{
	uint64_t t;
	int rc = pb_read_varint(p, n, &t);

	if (rc <= 0)
		return rc;
	if ((t & 7) > PB_WT_I32)
		return PB_E_WIRETYPE;
	if ((t >> 3) == 0 || (t >> 3) > PB_FIELD_MAX)
		return PB_E_FIELDNUM;
	*num = (uint32_t)(t >> 3);
	*wt = (uint32_t)(t & 7);
	return rc;
}

static ssize_t skip_value(const uint8_t *p, size_t n, uint32_t wt,
                          uint32_t num, int depth)
{
	uint64_t v;
	size_t off;
	int rc;

	switch (wt) {
	case PB_WT_VARINT:
		rc = pb_read_varint(p, n, &v);
		return rc == 0 ? PB_E_TRUNCATED : rc;
	case PB_WT_I64:
		return n < 8 ? PB_E_TRUNCATED : 8;
	case PB_WT_I32:
		return n < 4 ? PB_E_TRUNCATED : 4;
	case PB_WT_LEN:
		rc = pb_read_varint(p, n, &v);
		if (rc <= 0)
			return rc == 0 ? PB_E_TRUNCATED : rc;
		if (v > n - (size_t)rc)
			return PB_E_LENGTH;
		return rc + (ssize_t)v;
	case PB_WT_SGROUP:
		if (depth >= PB_DEPTH_MAX)
			return PB_E_DEPTH;
		off = 0;
		for (;;) {
			uint32_t fnum, fwt;
			ssize_t s;

			rc = pb_read_tag(p + off, n - off, &fnum, &fwt);
			if (rc <= 0)
				return rc == 0 ? PB_E_TRUNCATED : rc;
			off += (size_t)rc;
			if (fwt == PB_WT_EGROUP) {
				if (fnum != num)
					return PB_E_GROUP;
				return (ssize_t)off;
			}
			s = skip_value(p + off, n - off, fwt, fnum, depth + 1);
			if (s < 0)
				return s;
			off += (size_t)s;
		}
	case PB_WT_EGROUP:
		return PB_E_GROUP;
	default:
		return PB_E_WIRETYPE;
	}
}

ssize_t pb_skip_value(const uint8_t *p, size_t n, uint32_t wt, uint32_t num)
{
	return skip_value(p, n, wt, num, 0);
}

size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d++ = (uint8_t)v;
	return d;
}

static uint8_t *put_le(uint8_t *d, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		*d++ = (uint8_t)(v >> (8 * i));
	return d;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int pb_write_varint(struct buf *out, uint64_t v)
{
	uint8_t tmp[10];

	return buf_append(out, tmp, (size_t)(put_varint(tmp, v) - tmp)) ?
	       PB_E_NOSPACE : 0;
}

int pb_write_tag(struct buf *out, uint32_t num, uint32_t wt)
{
	return pb_write_varint(out, ((uint64_t)num << 3) | (wt & 7));
}

int pb_write_len(struct buf *out, uint32_t num, const void *p, size_t n)
{
	uint8_t tmp[20], *e;
	char *d;
	size_t hl;

	e = put_varint(tmp, ((uint64_t)num << 3) | PB_WT_LEN);
	e = put_varint(e, n);
	hl = (size_t)(e - tmp);
	if (n > SIZE_MAX - hl || !(d = buf_reserve(out, hl + n)))
		return PB_E_NOSPACE;
	memcpy(d, tmp, hl);
	if (n)
		memcpy(d + hl, p, n);
	buf_produce(out, hl + n);
	return 0;
}

int pb_write_fixed32(struct buf *out, uint32_t v)
{
	uint8_t tmp[4];

	put_le(tmp, v, 4);
	return buf_append(out, tmp, 4) ? PB_E_NOSPACE : 0;
}

int pb_write_fixed64(struct buf *out, uint64_t v)
{
	uint8_t tmp[8];

	put_le(tmp, v, 8);
	return buf_append(out, tmp, 8) ? PB_E_NOSPACE : 0;
}

const char *pb_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case PB_E_TRUNCATED: return "truncated input";
	case PB_E_VARINT: return "varint overflow";
	case PB_E_WIRETYPE: return "bad wire type";
	case PB_E_LENGTH: return "length past the end of the data";
	case PB_E_DEPTH: return "nesting too deep";
	case PB_E_FIELDNUM: return "bad field number";
	case PB_E_UTF8: return "string is not valid UTF-8";
	case PB_E_GROUP: return "unbalanced group";
	case PB_E_ARENA: return "decode arena full";
	case PB_E_NOSPACE: return "output buffer full";
	case PB_E_INVALID: return "invalid message";
	default: return "unknown error";
	}
}

/* --- field helpers --- */

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint8_t lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return 0;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (n - i <= k)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

/* Bytes one C element of field <f> takes. */
static size_t elem_size(const struct pb_field *f)
{
	switch (f->kind) {
	case PB_K_BOOL: return sizeof(bool);
	case PB_K_INT32: case PB_K_SINT32: case PB_K_ENUM:
	case PB_K_SFIXED32: return sizeof(int32_t);
	case PB_K_UINT32: case PB_K_FIXED32: return sizeof(uint32_t);
	case PB_K_INT64: case PB_K_SINT64: case PB_K_SFIXED64:
		return sizeof(int64_t);
	case PB_K_UINT64: case PB_K_FIXED64: return sizeof(uint64_t);
	case PB_K_FLOAT: return sizeof(float);
	case PB_K_DOUBLE: return sizeof(double);
	case PB_K_STRING: case PB_K_BYTES: return sizeof(struct str);
	case PB_K_MESSAGE: return f->sub ? f->sub->size : 0;
	default: return 0;
	}
}

/* The wire type a singular value of <kind> uses. */
static uint32_t kind_wt(uint8_t kind)
{
	switch (kind) {
	case PB_K_FIXED32: case PB_K_SFIXED32: case PB_K_FLOAT:
		return PB_WT_I32;
	case PB_K_FIXED64: case PB_K_SFIXED64: case PB_K_DOUBLE:
		return PB_WT_I64;
	case PB_K_STRING: case PB_K_BYTES: case PB_K_MESSAGE:
		return PB_WT_LEN;
	default:
		return PB_WT_VARINT;
	}
}

static int kind_numeric(uint8_t kind)
{
	return kind_wt(kind) != PB_WT_LEN;
}

/* Reads the wire value of a numeric field into a 64-bit raw form. */
static int read_raw(const uint8_t *p, size_t n, uint32_t wt, uint64_t *raw)
{
	int rc;

	switch (wt) {
	case PB_WT_VARINT:
		rc = pb_read_varint(p, n, raw);
		return rc == 0 ? PB_E_TRUNCATED : rc;
	case PB_WT_I32:
		if (n < 4)
			return PB_E_TRUNCATED;
		*raw = get_le(p, 4);
		return 4;
	case PB_WT_I64:
		if (n < 8)
			return PB_E_TRUNCATED;
		*raw = get_le(p, 8);
		return 8;
	}
	return PB_E_WIRETYPE;
}

/* Stores raw wire value <raw> as the C value of <kind> at <dst>. */
static void store_raw(void *dst, uint8_t kind, uint64_t raw)
{
	uint32_t u32 = (uint32_t)raw;

	switch (kind) {
	case PB_K_BOOL: *(bool *)dst = raw != 0; break;
	case PB_K_INT32: case PB_K_ENUM: case PB_K_SFIXED32:
		memcpy(dst, &u32, 4);
		break;
	case PB_K_UINT32: case PB_K_FIXED32: case PB_K_FLOAT:
		memcpy(dst, &u32, 4);
		break;
	case PB_K_SINT32: {
		int32_t v = pb_unzigzag32(u32);
		memcpy(dst, &v, 4);
		break;
	}
	case PB_K_SINT64: {
		int64_t v = pb_unzigzag64(raw);
		memcpy(dst, &v, 8);
		break;
	}
	default: /* 64-bit kinds */
		memcpy(dst, &raw, 8);
		break;
	}
}

/* The raw wire value of the C value at <src> (what store_raw inverts). */
static uint64_t load_raw(const void *src, uint8_t kind)
{
	uint32_t u32;
	int32_t i32;
	uint64_t u64;

	switch (kind) {
	case PB_K_BOOL:
		return *(const bool *)src ? 1 : 0;
	case PB_K_INT32: case PB_K_ENUM:
		memcpy(&i32, src, 4);
		return (uint64_t)(int64_t)i32;   /* sign-extended, 10 bytes */
	case PB_K_SINT32:
		memcpy(&i32, src, 4);
		return pb_zigzag32(i32);
	case PB_K_UINT32: case PB_K_FIXED32: case PB_K_SFIXED32:
	case PB_K_FLOAT:
		memcpy(&u32, src, 4);
		return u32;
	case PB_K_SINT64:
		memcpy(&u64, src, 8);
		return pb_zigzag64((int64_t)u64);
	default:
		memcpy(&u64, src, 8);
		return u64;
	}
}

/* --- decoding --- */

struct dec {
	const uint8_t *base;    /* the whole input, for error offsets */
	struct pb_arena *arena;
	char *err;
	size_t errlen;
};

static int dec_fail(struct dec *d, int code, const struct pb_msg_desc *m,
                    const struct pb_field *f, uint32_t num,
                    const uint8_t *at)
{
	if (d->err && d->errlen) {
		if (f)
			snprintf(d->err, d->errlen,
			         "%s.%s (%u): %s at offset %zu", m->name,
			         f->name, (unsigned)f->num, pb_strerror(code),
			         (size_t)(at - d->base));
		else if (num)
			snprintf(d->err, d->errlen,
			         "%s field %u: %s at offset %zu", m->name,
			         (unsigned)num, pb_strerror(code),
			         (size_t)(at - d->base));
		else
			snprintf(d->err, d->errlen, "%s: %s at offset %zu",
			         m->name, pb_strerror(code),
			         (size_t)(at - d->base));
	}
	return code;
}

static const struct pb_field *find_field(const struct pb_msg_desc *m,
                                         uint32_t num)
{
	size_t lo = 0, hi = m->nfields;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->fields[mid].num == num)
			return &m->fields[mid];
		if (m->fields[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Capacity implied by a count: 0, 4, 8, 16, ... */
static size_t rep_cap(size_t count)
{
	size_t c = 4;

	if (count == 0)
		return 0;
	while (c < count)
		c *= 2;
	return c;
}

/* Appends one zeroed element to repeated field <f> of <msg>. */
static void *rep_append(struct dec *d, void *msg, const struct pb_field *f)
{
	void **arr = (void **)((char *)msg + f->offset);
	size_t *count = (size_t *)((char *)msg + f->aux);
	size_t es = elem_size(f);

	if (*count == rep_cap(*count)) {
		size_t ncap = *count ? *count * 2 : 4;
		void *n;

		if (ncap > SIZE_MAX / es)
			return NULL;
		n = pb_arena_alloc(d->arena, ncap * es);
		if (!n)
			return NULL;
		if (*count)
			memcpy(n, *arr, *count * es);
		*arr = n;
	}
	return (char *)*arr + (*count)++ * es;
}

static int decode_msg(struct dec *d, const struct pb_msg_desc *m, void *msg,
                      const uint8_t *p, size_t n, int depth);

/* Where the value of singular/oneof field <f> goes; switches the oneof. */
static void *singular_slot(void *msg, const struct pb_field *f)
{
	char *slot = (char *)msg + f->offset;

	if (f->flags & PB_F_ONEOF) {
		uint32_t *which = (uint32_t *)((char *)msg + f->aux);

		if (*which != f->num) {
			memset(slot, 0, elem_size(f));
			*which = f->num;
		}
	} else if (f->flags & PB_F_HAS) {
		*(bool *)((char *)msg + f->aux) = true;
	}
	return slot;
}

/* Decodes one field value (tag already read) at <p>; returns bytes used. */
static ssize_t decode_field(struct dec *d, const struct pb_msg_desc *m,
                            void *msg, const struct pb_field *f, uint32_t wt,
                            const uint8_t *p, size_t n, int depth)
{
	int rep = f->flags & PB_F_REPEATED;
	uint32_t want = kind_wt(f->kind);
	uint64_t len, raw;
	size_t off;
	void *slot;
	int rc;

	if (rep && wt == PB_WT_LEN && kind_numeric(f->kind)) {
		/* packed */
		rc = pb_read_varint(p, n, &len);
		if (rc <= 0)
			return dec_fail(d, rc ? rc : PB_E_TRUNCATED, m, f, 0, p);
		if (len > n - (size_t)rc)
			return dec_fail(d, PB_E_LENGTH, m, f, 0, p);
		off = (size_t)rc;
		while (off < (size_t)rc + len) {
			int r = read_raw(p + off, (size_t)rc + len - off, want,
			                 &raw);

			if (r < 0)
				return dec_fail(d, r, m, f, 0, p + off);
			if (!(slot = rep_append(d, msg, f)))
				return dec_fail(d, PB_E_ARENA, m, f, 0, p + off);
			store_raw(slot, f->kind, raw);
			off += (size_t)r;
		}
		return (ssize_t)off;
	}
	if (wt != want)
		return dec_fail(d, PB_E_WIRETYPE, m, f, 0, p);
	if (want != PB_WT_LEN) {
		rc = read_raw(p, n, wt, &raw);
		if (rc < 0)
			return dec_fail(d, rc, m, f, 0, p);
		slot = rep ? rep_append(d, msg, f) : singular_slot(msg, f);
		if (!slot)
			return dec_fail(d, PB_E_ARENA, m, f, 0, p);
		store_raw(slot, f->kind, raw);
		return rc;
	}
	rc = pb_read_varint(p, n, &len);
	if (rc <= 0)
		return dec_fail(d, rc ? rc : PB_E_TRUNCATED, m, f, 0, p);
	if (len > n - (size_t)rc)
		return dec_fail(d, PB_E_LENGTH, m, f, 0, p);
	if (f->kind == PB_K_STRING && !utf8_valid(p + rc, (size_t)len))
		return dec_fail(d, PB_E_UTF8, m, f, 0, p);
	if (f->kind == PB_K_MESSAGE && depth + 1 >= PB_DEPTH_MAX)
		return dec_fail(d, PB_E_DEPTH, m, f, 0, p);
	slot = rep ? rep_append(d, msg, f) : singular_slot(msg, f);
	if (!slot)
		return dec_fail(d, PB_E_ARENA, m, f, 0, p);
	if (f->kind == PB_K_MESSAGE) {
		int r = decode_msg(d, f->sub, slot, p + rc, (size_t)len,
		                   depth + 1);

		if (r < 0)
			return r;
	} else {
		struct str *s = slot;

		s->p = len ? (const char *)p + rc : NULL;
		s->len = (size_t)len;
	}
	return rc + (ssize_t)len;
}

static int decode_msg(struct dec *d, const struct pb_msg_desc *m, void *msg,
                      const uint8_t *p, size_t n, int depth)
{
	size_t off = 0;

	while (off < n) {
		const struct pb_field *f;
		uint32_t num = 0, wt = 0;
		ssize_t s;
		int rc;

		rc = pb_read_tag(p + off, n - off, &num, &wt);
		if (rc <= 0)
			return dec_fail(d, rc ? rc : PB_E_TRUNCATED, m, NULL, 0,
			                p + off);
		if (wt == PB_WT_EGROUP)         /* no group is open here */
			return dec_fail(d, PB_E_GROUP, m, NULL, num, p + off);
		off += (size_t)rc;
		f = find_field(m, num);
		if (!f) {
			s = skip_value(p + off, n - off, wt, num, depth);
			if (s < 0)
				return dec_fail(d, (int)s, m, NULL, num, p + off);
		} else {
			s = decode_field(d, m, msg, f, wt, p + off, n - off,
			                 depth);
			if (s < 0)
				return (int)s;
		}
		off += (size_t)s;
	}
	return 0;
}

int pb_decode(const struct pb_msg_desc *m, void *msg, const void *p, size_t n,
              struct pb_arena *arena, char *err, size_t errlen)
{
	struct dec d = { p, arena, err, errlen };

	if (err && errlen)
		err[0] = '\0';
	if (!m || !msg || (!p && n))
		return PB_E_INVALID;
	memset(msg, 0, m->size);
	return decode_msg(&d, m, msg, p, n, 0);
}

/* --- encoding --- */

static size_t tag_size(uint32_t num)
{
	return pb_varint_size((uint64_t)num << 3);
}

/* Bytes of the value of a numeric kind (no tag). */
static size_t num_size(uint8_t kind, uint64_t raw)
{
	switch (kind_wt(kind)) {
	case PB_WT_I32: return 4;
	case PB_WT_I64: return 8;
	default: return pb_varint_size(raw);
	}
}

/* 1 when the singular field <f> of <msg> goes on the wire. */
static int present(const void *msg, const struct pb_field *f)
{
	const char *v = (const char *)msg + f->offset;

	if (f->flags & PB_F_ONEOF)
		return *(const uint32_t *)((const char *)msg + f->aux) == f->num;
	if (f->flags & PB_F_HAS)
		return *(const bool *)((const char *)msg + f->aux);
	if (f->kind == PB_K_MESSAGE)
		return 0;       /* a table error: messages need presence */
	if (f->kind == PB_K_STRING || f->kind == PB_K_BYTES)
		return ((const struct str *)v)->len != 0;
	return load_raw(v, f->kind) != 0;
}

static ssize_t msg_size(const struct pb_msg_desc *m, const void *msg,
                        int depth);

/* Size of the value (no tag) of one element at <v>; < 0 on error. */
static ssize_t value_size(const struct pb_field *f, const void *v, int depth)
{
	const struct str *s = v;
	ssize_t sub;

	switch (f->kind) {
	case PB_K_STRING:
		if (s->len && !s->p)
			return PB_E_INVALID;
		if (!utf8_valid((const uint8_t *)s->p, s->len))
			return PB_E_UTF8;
		return (ssize_t)(pb_varint_size(s->len) + s->len);
	case PB_K_BYTES:
		if (s->len && !s->p)
			return PB_E_INVALID;
		return (ssize_t)(pb_varint_size(s->len) + s->len);
	case PB_K_MESSAGE:
		if (!f->sub)
			return PB_E_INVALID;
		if (depth + 1 >= PB_DEPTH_MAX)
			return PB_E_DEPTH;
		sub = msg_size(f->sub, v, depth + 1);
		if (sub < 0)
			return sub;
		return (ssize_t)pb_varint_size((uint64_t)sub) + sub;
	default:
		return (ssize_t)num_size(f->kind, load_raw(v, f->kind));
	}
}

static ssize_t field_size(const void *msg, const struct pb_field *f,
                          int depth)
{
	size_t total = 0, i, count, es = elem_size(f);
	const char *arr;
	ssize_t v;

	if (!es)
		return PB_E_INVALID;
	if (!(f->flags & PB_F_REPEATED)) {
		if (!present(msg, f))
			return 0;
		v = value_size(f, (const char *)msg + f->offset, depth);
		return v < 0 ? v : (ssize_t)tag_size(f->num) + v;
	}
	count = *(const size_t *)((const char *)msg + f->aux);
	arr = *(const char *const *)((const char *)msg + f->offset);
	if (!count)
		return 0;
	if (!arr)
		return PB_E_INVALID;
	for (i = 0; i < count; i++) {
		v = value_size(f, arr + i * es, depth);
		if (v < 0)
			return v;
		total += (size_t)v;
		if (!(f->flags & PB_F_PACKED))
			total += tag_size(f->num);
	}
	if (f->flags & PB_F_PACKED)
		total += tag_size(f->num) + pb_varint_size(total);
	return total > (size_t)SSIZE_MAX / 2 ? PB_E_INVALID : (ssize_t)total;
}

static ssize_t msg_size(const struct pb_msg_desc *m, const void *msg,
                        int depth)
{
	size_t total = 0, i;

	for (i = 0; i < m->nfields; i++) {
		ssize_t s = field_size(msg, &m->fields[i], depth);

		if (s < 0)
			return s;
		total += (size_t)s;
		if (total > (size_t)SSIZE_MAX / 2)
			return PB_E_INVALID;
	}
	return (ssize_t)total;
}

ssize_t pb_encoded_size(const struct pb_msg_desc *m, const void *msg)
{
	if (!m || !msg)
		return PB_E_INVALID;
	return msg_size(m, msg, 0);
}

static uint8_t *put_msg(uint8_t *d, const struct pb_msg_desc *m,
                        const void *msg, int depth);

/* Writes one element's value (no tag). Sizes were validated. */
static uint8_t *put_value(uint8_t *d, const struct pb_field *f, const void *v,
                          int depth)
{
	const struct str *s = v;
	uint64_t raw;

	switch (f->kind) {
	case PB_K_STRING:
	case PB_K_BYTES:
		d = put_varint(d, s->len);
		if (s->len)
			memcpy(d, s->p, s->len);
		return d + s->len;
	case PB_K_MESSAGE:
		d = put_varint(d, (uint64_t)msg_size(f->sub, v, depth + 1));
		return put_msg(d, f->sub, v, depth + 1);
	default:
		raw = load_raw(v, f->kind);
		switch (kind_wt(f->kind)) {
		case PB_WT_I32: return put_le(d, raw, 4);
		case PB_WT_I64: return put_le(d, raw, 8);
		default: return put_varint(d, raw);
		}
	}
}

static uint8_t *put_msg(uint8_t *d, const struct pb_msg_desc *m,
                        const void *msg, int depth)
{
	size_t i, j;

	for (i = 0; i < m->nfields; i++) {
		const struct pb_field *f = &m->fields[i];
		uint32_t wt = kind_wt(f->kind);
		size_t count, es = elem_size(f);
		const char *arr;

		if (!(f->flags & PB_F_REPEATED)) {
			if (!present(msg, f))
				continue;
			d = put_varint(d, ((uint64_t)f->num << 3) | wt);
			d = put_value(d, f, (const char *)msg + f->offset,
			              depth);
			continue;
		}
		count = *(const size_t *)((const char *)msg + f->aux);
		arr = *(const char *const *)((const char *)msg + f->offset);
		if (!count)
			continue;
		if (f->flags & PB_F_PACKED) {
			size_t body = 0;

			for (j = 0; j < count; j++)
				body += num_size(f->kind,
				                 load_raw(arr + j * es, f->kind));
			d = put_varint(d, ((uint64_t)f->num << 3) | PB_WT_LEN);
			d = put_varint(d, body);
			for (j = 0; j < count; j++)
				d = put_value(d, f, arr + j * es, depth);
			continue;
		}
		for (j = 0; j < count; j++) {
			d = put_varint(d, ((uint64_t)f->num << 3) | wt);
			d = put_value(d, f, arr + j * es, depth);
		}
	}
	return d;
}

ssize_t pb_encode(const struct pb_msg_desc *m, const void *msg,
                  struct buf *out)
{
	ssize_t n = pb_encoded_size(m, msg);
	uint8_t *d, *e;

	if (n < 0)
		return n;
	if (n == 0)
		return 0;
	d = (uint8_t *)buf_reserve(out, (size_t)n);
	if (!d)
		return PB_E_NOSPACE;
	e = put_msg(d, m, msg, 0);
	if (e != d + n)         /* cannot happen: sizes and writes agree */
		return PB_E_INVALID;
	buf_produce(out, (size_t)n);
	return n;
}

/* --- equality --- */

static int value_equal(const struct pb_field *f, const void *a, const void *b)
{
	const struct str *sa = a, *sb = b;

	switch (f->kind) {
	case PB_K_STRING:
	case PB_K_BYTES:
		return sa->len == sb->len &&
		       (!sa->len || memcmp(sa->p, sb->p, sa->len) == 0);
	case PB_K_MESSAGE:
		return pb_equal(f->sub, a, b);
	default:
		return load_raw(a, f->kind) == load_raw(b, f->kind);
	}
}

int pb_equal(const struct pb_msg_desc *m, const void *a, const void *b)
{
	size_t i, j;

	for (i = 0; i < m->nfields; i++) {
		const struct pb_field *f = &m->fields[i];
		size_t es = elem_size(f), na, nb;
		const char *xa, *xb;

		if (!(f->flags & PB_F_REPEATED)) {
			int pa, pb;

			if (f->flags & (PB_F_ONEOF | PB_F_HAS)) {
				pa = present(a, f);
				pb = present(b, f);
				if (pa != pb)
					return 0;
				if (!pa)
					continue;
			}
			if (!value_equal(f, (const char *)a + f->offset,
			                 (const char *)b + f->offset))
				return 0;
			continue;
		}
		na = *(const size_t *)((const char *)a + f->aux);
		nb = *(const size_t *)((const char *)b + f->aux);
		if (na != nb)
			return 0;
		xa = *(const char *const *)((const char *)a + f->offset);
		xb = *(const char *const *)((const char *)b + f->offset);
		for (j = 0; j < na; j++)
			if (!value_equal(f, xa + j * es, xb + j * es))
				return 0;
	}
	return 1;
}
