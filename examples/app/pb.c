/*
 * pb: protobuf messages of abc.proto and gRPC framing. See pb.h.
 *
 * IMPLEMENTATION NOTES
 * Decoding walks the fields with pb_next, which validates and consumes one
 * field of any wire type (skipping whole groups) and hands it over; each
 * message decoder keeps the fields it knows and lets the rest go. So
 * "skip unknown fields" is the default path, not a special case.
 */
#include <string.h>

#include "core/util.h"
#include "pb.h"

enum pb_wire {
	PB_WT_VARINT = 0,
	PB_WT_I64 = 1,
	PB_WT_LEN = 2,
	PB_WT_SGROUP = 3,
	PB_WT_EGROUP = 4,
	PB_WT_I32 = 5,
};

#define PB_FIELD_MAX ((1u << 29) - 1)
/* Nesting of unknown groups we are willing to skip. */
#define PB_GROUP_DEPTH 32

/* One decoded field; <u> holds varint and fixed values, <bytes> LEN data. */
struct pb_field {
	uint32_t num;
	enum pb_wire wire;
	uint64_t u;
	struct str bytes;
};

/* An encoder over the caller's array; <err> sticks once it overflows. */
struct pb_writer {
	uint8_t *p;
	size_t cap;
	size_t len;
	int err;
};

static int pb_get_varint(const uint8_t *p, size_t len, size_t *off,
                         uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i = *off;
	uint8_t b;

	for (;;) {
		if (i >= len)
			return -1;
		b = p[i++];
		/* the tenth byte may only carry bit 63 */
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
	}
	*off = i;
	*out = v;
	return 0;
}

static int pb_get_fixed(const uint8_t *p, size_t len, size_t *off,
                        unsigned nbytes, uint64_t *out)
{
	uint64_t v = 0;
	unsigned i;

	if (len - *off < nbytes)
		return -1;
	for (i = 0; i < nbytes; i++)
		v |= (uint64_t)p[*off + i] << (8 * i);
	*off += nbytes;
	*out = v;
	return 0;
}

static int pb_get_key(const uint8_t *p, size_t len, size_t *off,
                      uint32_t *num, enum pb_wire *wire)
{
	uint64_t key;

	if (pb_get_varint(p, len, off, &key) < 0)
		return -1;
	if ((key >> 3) == 0 || (key >> 3) > PB_FIELD_MAX || (key & 7) > 5)
		return -1;
	*num = (uint32_t)(key >> 3);
	*wire = (enum pb_wire)(key & 7);
	return 0;
}

/* Reads the value of a non-group field of wire type <f->wire>. */
static int pb_get_value(const uint8_t *p, size_t len, size_t *off,
                        struct pb_field *f)
{
	uint64_t n;

	switch (f->wire) {
	case PB_WT_VARINT:
		return pb_get_varint(p, len, off, &f->u);
	case PB_WT_I64:
		return pb_get_fixed(p, len, off, 8, &f->u);
	case PB_WT_I32:
		return pb_get_fixed(p, len, off, 4, &f->u);
	case PB_WT_LEN:
		if (pb_get_varint(p, len, off, &n) < 0 || n > len - *off)
			return -1;
		f->bytes = str_make((const char *)p + *off, (size_t)n);
		f->u = n;
		*off += (size_t)n;
		return 0;
	default:
		return -1;
	}
}

/* Skips the rest of the group opened by field <num>, nested groups too. */
static int pb_skip_group(const uint8_t *p, size_t len, size_t *off,
                         uint32_t num)
{
	uint32_t open[PB_GROUP_DEPTH];
	unsigned depth = 0;
	struct pb_field f;

	open[depth++] = num;
	while (depth) {
		if (pb_get_key(p, len, off, &f.num, &f.wire) < 0)
			return -1;
		if (f.wire == PB_WT_SGROUP) {
			if (depth == PB_GROUP_DEPTH)
				return -1;
			open[depth++] = f.num;
		} else if (f.wire == PB_WT_EGROUP) {
			if (open[depth - 1] != f.num)
				return -1;
			depth--;
		} else if (pb_get_value(p, len, off, &f) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The next field: 1 when one was read into <f>, 0 at the end of the
 * message, -1 on malformed input. Groups are consumed whole. */
static int pb_next(const uint8_t *p, size_t len, size_t *off,
                   struct pb_field *f)
{
	if (*off == len)
		return 0;
	memset(f, 0, sizeof(*f));
	if (pb_get_key(p, len, off, &f->num, &f->wire) < 0)
		return -1;
	if (f->wire == PB_WT_SGROUP)
		return pb_skip_group(p, len, off, f->num) < 0 ? -1 : 1;
	if (f->wire == PB_WT_EGROUP)
		return -1;
	return pb_get_value(p, len, off, f) < 0 ? -1 : 1;
}

/* int64 fields travel as the two's complement bits of the value. */
static int64_t pb_to_i64(uint64_t u)
{
	if (u <= (uint64_t)INT64_MAX)
		return (int64_t)u;
	return -(int64_t)(~u) - 1;
}

/* A string field: kept only when it is valid UTF-8. */
static int pb_take_string(const struct pb_field *f, struct str *out)
{
	if (!pb_utf8_valid(f->bytes))
		return -1;
	*out = f->bytes;
	return 0;
}

int pb_say_request_decode(const uint8_t *p, size_t len,
                          struct pb_say_request *m)
{
	struct pb_field f;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = pb_next(p, len, &off, &f)) > 0) {
		if (f.num == 1 && f.wire == PB_WT_LEN) {
			if (pb_take_string(&f, &m->text) < 0)
				return -1;
		} else if (f.num == 2 && f.wire == PB_WT_VARINT) {
			m->seq = pb_to_i64(f.u);
		}
	}
	return rc;
}

int pb_say_reply_decode(const uint8_t *p, size_t len, struct pb_say_reply *m)
{
	struct pb_field f;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = pb_next(p, len, &off, &f)) > 0) {
		if (f.num == 1 && f.wire == PB_WT_LEN) {
			if (pb_take_string(&f, &m->text) < 0)
				return -1;
		} else if (f.num == 2 && f.wire == PB_WT_VARINT) {
			m->seq = pb_to_i64(f.u);
		} else if (f.num == 3 && f.wire == PB_WT_LEN) {
			if (pb_take_string(&f, &m->served_by) < 0)
				return -1;
		}
	}
	return rc;
}

int pb_count_request_decode(const uint8_t *p, size_t len,
                            struct pb_count_request *m)
{
	struct pb_field f;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = pb_next(p, len, &off, &f)) > 0) {
		if (f.num == 1 && f.wire == PB_WT_VARINT)
			m->count = (uint32_t)f.u;
		else if (f.num == 2 && f.wire == PB_WT_VARINT)
			m->interval_ms = (uint32_t)f.u;
	}
	return rc;
}

int pb_count_reply_decode(const uint8_t *p, size_t len,
                          struct pb_count_reply *m)
{
	struct pb_field f;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = pb_next(p, len, &off, &f)) > 0) {
		if (f.num == 1 && f.wire == PB_WT_VARINT) {
			m->n = (uint32_t)f.u;
		} else if (f.num == 2 && f.wire == PB_WT_LEN) {
			if (pb_take_string(&f, &m->served_by) < 0)
				return -1;
		}
	}
	return rc;
}

static void pb_writer_init(struct pb_writer *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->len = 0;
	w->err = 0;
}

static void pb_put_raw(struct pb_writer *w, uint64_t v)
{
	uint8_t b;

	do {
		b = v & 0x7f;
		v >>= 7;
		if (v)
			b |= 0x80;
		if (w->len == w->cap) {
			w->err = 1;
			return;
		}
		w->p[w->len++] = b;
	} while (v);
}

static void pb_put_varint(struct pb_writer *w, uint32_t num, uint64_t v)
{
	if (!v)
		return;
	pb_put_raw(w, (uint64_t)num << 3 | PB_WT_VARINT);
	pb_put_raw(w, v);
}

static void pb_put_string(struct pb_writer *w, uint32_t num, struct str s)
{
	if (!s.len)
		return;
	pb_put_raw(w, (uint64_t)num << 3 | PB_WT_LEN);
	pb_put_raw(w, s.len);
	if (w->err || w->cap - w->len < s.len) {
		w->err = 1;
		return;
	}
	memcpy(w->p + w->len, s.p, s.len);
	w->len += s.len;
}

static ssize_t pb_writer_end(const struct pb_writer *w)
{
	return w->err ? -1 : (ssize_t)w->len;
}

ssize_t pb_say_request_encode(const struct pb_say_request *m,
                              uint8_t *out, size_t cap)
{
	struct pb_writer w;

	pb_writer_init(&w, out, cap);
	pb_put_string(&w, 1, m->text);
	pb_put_varint(&w, 2, (uint64_t)m->seq);
	return pb_writer_end(&w);
}

ssize_t pb_say_reply_encode(const struct pb_say_reply *m,
                            uint8_t *out, size_t cap)
{
	struct pb_writer w;

	pb_writer_init(&w, out, cap);
	pb_put_string(&w, 1, m->text);
	pb_put_varint(&w, 2, (uint64_t)m->seq);
	pb_put_string(&w, 3, m->served_by);
	return pb_writer_end(&w);
}

ssize_t pb_count_request_encode(const struct pb_count_request *m,
                                uint8_t *out, size_t cap)
{
	struct pb_writer w;

	pb_writer_init(&w, out, cap);
	pb_put_varint(&w, 1, m->count);
	pb_put_varint(&w, 2, m->interval_ms);
	return pb_writer_end(&w);
}

ssize_t pb_count_reply_encode(const struct pb_count_reply *m,
                              uint8_t *out, size_t cap)
{
	struct pb_writer w;

	pb_writer_init(&w, out, cap);
	pb_put_varint(&w, 1, m->n);
	pb_put_string(&w, 2, m->served_by);
	return pb_writer_end(&w);
}

int pb_utf8_valid(struct str s)
{
	const unsigned char *p = (const unsigned char *)s.p;
	size_t i = 0, n, k;
	uint32_t cp, min;

	while (i < s.len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (s.len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

void pb_grpc_prefix(uint8_t *hdr, uint32_t len)
{
	hdr[0] = 0;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

ssize_t pb_grpc_next(const uint8_t *p, size_t len, size_t max,
                     const uint8_t **msg, size_t *msglen, int *compressed)
{
	uint32_t n;

	if (len < PB_GRPC_HDR)
		return 0;
	if (p[0] > 1)
		return -1;
	n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 8 | p[4];
	if (n > max)
		return -1;
	if (len - PB_GRPC_HDR < n)
		return 0;
	*msg = p + PB_GRPC_HDR;
	*msglen = n;
	*compressed = p[0];
	return (ssize_t)(PB_GRPC_HDR + (size_t)n);
}

const char *pb_grpc_status_str(int status)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
		"PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (status < 0 || (size_t)status >= ARRAY_SIZE(names))
		return "INVALID";
	return names[status];
}

size_t pb_grpc_message_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char c;

	if (!cap)
		return 0;
	for (; *in; in++) {
		c = (unsigned char)*in;
		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (cap - o < 2)
				break;
			out[o++] = (char)c;
		} else {
			if (cap - o < 4)
				break;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}
