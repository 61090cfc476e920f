/*
 * pb: a compact, table-driven protobuf (proto3) wire codec.
 *
 * A message type is described by a static table (struct pb_msg_desc) that
 * maps each field number to a member of a plain C struct: its kind, its
 * offset, flags (repeated, presence, oneof, packed) and, for message
 * fields, the sub-message's table. The tables for meshd's API are written
 * by hand in core/api_pb.c; nothing is generated.
 *
 * C representation of a field (per kind, see enum pb_kind):
 *  - bool: bool; int32/sint32/sfixed32/enum: int32_t; uint32/fixed32:
 *    uint32_t; int64/sint64/sfixed64: int64_t; uint64/fixed64: uint64_t;
 *    float: float; double: double; string and bytes: struct str; message:
 *    the sub-message's struct, embedded by value.
 *  - repeated (PB_F_REPEATED): a pointer to the first element and a size_t
 *    count (member <aux>). Maps are repeated entry messages {key=1,value=2}.
 *  - singular message fields carry presence: a bool member <aux> (PB_F_HAS).
 *  - oneof members (PB_F_ONEOF) share a uint32_t "case" member <aux> that
 *    holds the field number of the member that is set (0: none). Members
 *    are separate struct members, not a union: only the one named by the
 *    case is meaningful.
 *
 * Decoding allocates nothing from the heap:
 *  - strings and bytes are slices INTO the input buffer, which MUST outlive
 *    the decoded message;
 *  - repeated fields and maps are carved from a caller-provided arena
 *    (struct pb_arena, fixed storage with a hard size). An array that
 *    outgrows its block is copied to a block twice as large, so the arena
 *    needs up to about twice the final element bytes; running out of arena
 *    is an error (PB_E_ARENA), never a reallocation. The decoded message
 *    points into the arena: keep it until the message is dropped, then reset
 *    it (pb_arena_reset) for the next one.
 *   (Fixed arrays inside the structs were rejected: they would make every
 *   message as large as its worst case and put arbitrary caps on each list.)
 *  - Unknown fields (any wire type, groups included) are skipped.
 *  - Semantics follow protobuf: the last value of a singular scalar wins, a
 *    singular message seen twice is merged, a oneof member replaces the
 *    other members, repeated scalars are accepted packed and unpacked,
 *    int32 fields take the low 32 bits of the varint, bool is any non-zero
 *    varint, string fields must be valid UTF-8. Map entries are kept in
 *    wire order, duplicates included; protobuf's rule is that the last one
 *    wins (api_pb_label_get implements it).
 *  - Stricter than protobuf's runtimes (all rejected with an error, where
 *    Python's C++ runtime accepts): a known field with the wrong wire type
 *    (protobuf would keep it as an unknown field), field number 0, an
 *    end-group tag without its start, a 10-byte varint whose last byte is
 *    above 1 (protobuf silently drops the high bits).
 *  - Errors: truncated input, varint over 10 bytes, over-long lengths,
 *    nesting deeper than PB_DEPTH_MAX (messages and unknown groups
 *    together), invalid UTF-8, arena exhaustion. A failed decode leaves the
 *    message in an unspecified but safe state (every slice and array points
 *    into the input or the arena); do not use it.
 *
 * Encoding writes the canonical form: fields in table order (ascending
 * field number), proto3 defaults (0, false, empty) omitted unless the field
 * has presence (message fields with their has flag, oneof members), repeated
 * numeric fields flagged PB_F_PACKED packed. Floats are compared bitwise
 * against 0 (so -0.0 is sent, like protobuf). The encoder validates before
 * writing anything, so on error the buffer is unchanged.
 *
 * Return conventions: 0 or a byte count on success, a negative PB_E_* code
 * on error; pb_strerror names it. Nothing here prints.
 */
#ifndef MESHD_CORE_PB_H
#define MESHD_CORE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/str.h"

/* Wire types. */
#define PB_WT_VARINT 0
#define PB_WT_I64    1
#define PB_WT_LEN    2
#define PB_WT_SGROUP 3
#define PB_WT_EGROUP 4
#define PB_WT_I32    5

/* Largest field number protobuf allows. */
#define PB_FIELD_MAX 536870911u
/* Nesting limit for decoding and encoding (sub-messages and groups). */
#define PB_DEPTH_MAX 32

/* Error codes (all negative). */
#define PB_E_TRUNCATED (-1)  /* input ends inside a tag or value */
#define PB_E_VARINT    (-2)  /* varint longer than 10 bytes or above 2^64 */
#define PB_E_WIRETYPE  (-3)  /* wire type 6/7, or wrong for a known field */
#define PB_E_LENGTH    (-4)  /* a length runs past the enclosing data */
#define PB_E_DEPTH     (-5)  /* nesting deeper than PB_DEPTH_MAX */
#define PB_E_FIELDNUM  (-6)  /* field number 0 or above PB_FIELD_MAX */
#define PB_E_UTF8      (-7)  /* string field not valid UTF-8 */
#define PB_E_GROUP     (-8)  /* unbalanced start/end-group */
#define PB_E_ARENA     (-9)  /* the decode arena is full */
#define PB_E_NOSPACE   (-10) /* the output buffer's limit is reached */
#define PB_E_INVALID   (-11) /* bad argument or message (NULL array...) */

enum pb_kind {
	PB_K_BOOL = 1,
	PB_K_INT32,
	PB_K_UINT32,
	PB_K_SINT32,
	PB_K_ENUM,      /* int32_t; proto3 enums are open */
	PB_K_INT64,
	PB_K_UINT64,
	PB_K_SINT64,
	PB_K_FIXED32,
	PB_K_SFIXED32,
	PB_K_FLOAT,
	PB_K_FIXED64,
	PB_K_SFIXED64,
	PB_K_DOUBLE,
	PB_K_STRING,    /* struct str, UTF-8 */
	PB_K_BYTES,     /* struct str */
	PB_K_MESSAGE,   /* embedded struct described by <sub> */
};

/* Field flags. */
#define PB_F_REPEATED 0x01u /* pointer at <offset>, size_t count at <aux> */
#define PB_F_HAS      0x02u /* bool presence flag at <aux> */
#define PB_F_ONEOF    0x04u /* uint32_t case at <aux> holds the number */
#define PB_F_PACKED   0x08u /* repeated numeric field: encode packed */

struct pb_msg_desc;

struct pb_field {
	uint32_t num;                   /* field number */
	uint8_t kind;                   /* enum pb_kind */
	uint8_t flags;                  /* PB_F_* */
	uint32_t offset;                /* member (value or array pointer) */
	uint32_t aux;                   /* count / has / case member */
	const struct pb_msg_desc *sub;  /* PB_K_MESSAGE only */
	const char *name;               /* proto field name, for errors */
};

/* A message type. <fields> MUST be sorted by strictly ascending number. */
struct pb_msg_desc {
	const char *name;               /* full proto name */
	size_t size;                    /* sizeof the C struct */
	size_t nfields;
	const struct pb_field *fields;
};

/* Table-writing helpers: <T> the C struct, <m> the member. */
#define PB_FIELD(T, m, num, kind) \
	{ num, kind, 0, offsetof(T, m), 0, NULL, #m }
#define PB_MSG(T, m, has, num, sub) \
	{ num, PB_K_MESSAGE, PB_F_HAS, offsetof(T, m), offsetof(T, has), \
	  sub, #m }
#define PB_REP(T, m, count, num, kind, sub) \
	{ num, kind, PB_F_REPEATED, offsetof(T, m), offsetof(T, count), \
	  sub, #m }
#define PB_PACKED(T, m, count, num, kind) \
	{ num, kind, PB_F_REPEATED | PB_F_PACKED, offsetof(T, m), \
	  offsetof(T, count), NULL, #m }
#define PB_ONEOF(T, m, which, num, kind, sub) \
	{ num, kind, PB_F_ONEOF, offsetof(T, m), offsetof(T, which), sub, #m }

/* A bump allocator over caller storage, with a hard size. */
struct pb_arena {
	char *base;   /* private */
	size_t cap;   /* ro: bytes of storage */
	size_t used;  /* ro: bytes handed out (alignment included) */
};

/* Uses <size> bytes at <storage> (owned by the caller, never freed here). */
void pb_arena_init(struct pb_arena *a, void *storage, size_t size);
/* Forgets everything handed out; messages decoded with it become invalid. */
static inline void pb_arena_reset(struct pb_arena *a) { a->used = 0; }
/* <n> zeroed bytes aligned for any type, or NULL when the arena is full. */
void *pb_arena_alloc(struct pb_arena *a, size_t n);

/*
 * Decodes <n> bytes at <p> as message <d> into <msg> (a struct of
 * d->size bytes, zeroed first). Slices point into <p>; arrays come from
 * <arena> (may be NULL when the message has no repeated field present).
 * Returns 0, or a PB_E_* code with a description in <err> (may be NULL)
 * naming the field and the offset.
 */
int pb_decode(const struct pb_msg_desc *d, void *msg, const void *p, size_t n,
              struct pb_arena *arena, char *err, size_t errlen);

/*
 * Computes the encoded size of <msg> and validates it (UTF-8 of strings,
 * arrays non-NULL when their count is not 0, depth). Returns the size
 * (>= 0) or a PB_E_* code.
 */
ssize_t pb_encoded_size(const struct pb_msg_desc *d, const void *msg);

/*
 * Appends the encoding of <msg> to <out>. Returns the bytes appended, or a
 * PB_E_* code (PB_E_NOSPACE when <out>'s limit is reached) with <out>
 * unchanged.
 */
ssize_t pb_encode(const struct pb_msg_desc *d, const void *msg,
                  struct buf *out);

/* 1 when <a> and <b> hold the same message: presence, oneof cases, arrays
 * element by element, floats bit for bit; 0 otherwise. Members that the
 * encoding would not carry (an inactive oneof member, an absent message)
 * are ignored. */
int pb_equal(const struct pb_msg_desc *d, const void *a, const void *b);

/* A static name for a PB_E_* code ("truncated input", ...). */
const char *pb_strerror(int code);

/* --- low-level wire API --- */

/*
 * Reads a varint from <n> bytes at <p> into <*v>. Returns the bytes used
 * (1..10), 0 when the input ends first (truncated; more may come), or
 * PB_E_VARINT when it is longer than 10 bytes or above 2^64-1.
 */
int pb_read_varint(const uint8_t *p, size_t n, uint64_t *v);

/*
 * Reads a tag: <*num> the field number, <*wt> the wire type. Returns the
 * bytes used, 0 when truncated, PB_E_VARINT, PB_E_FIELDNUM or
 * PB_E_WIRETYPE (6 or 7).
 */
int pb_read_tag(const uint8_t *p, size_t n, uint32_t *num, uint32_t *wt);

/*
 * Skips the value of a field with wire type <wt> (the tag already read) in
 * <n> bytes at <p>; a group (PB_WT_SGROUP) is skipped up to its end tag
 * for field <num>, nesting at most PB_DEPTH_MAX. Returns the bytes
 * skipped (>= 0), or a PB_E_* code (PB_E_TRUNCATED, PB_E_LENGTH, ...).
 */
ssize_t pb_skip_value(const uint8_t *p, size_t n, uint32_t wt, uint32_t num);

/* Bytes the varint encoding of <v> takes (1..10). */
size_t pb_varint_size(uint64_t v);

/* Appenders: each returns 0, or PB_E_NOSPACE with <out> unchanged. */
int pb_write_varint(struct buf *out, uint64_t v);
int pb_write_tag(struct buf *out, uint32_t num, uint32_t wt);
/* Tag, length and <n> bytes of a length-delimited field. */
int pb_write_len(struct buf *out, uint32_t num, const void *p, size_t n);
int pb_write_fixed32(struct buf *out, uint32_t v);
int pb_write_fixed64(struct buf *out, uint64_t v);

static inline uint64_t pb_zigzag64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t pb_unzigzag64(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline uint32_t pb_zigzag32(int32_t v)
{
	return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static inline int32_t pb_unzigzag32(uint32_t v)
{
	return (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
}

#endif
