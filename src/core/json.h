/*
 * json: a strict, allocation-free RFC 8259 parser and a bounded writer.
 *
 * Parser (jsmn style). The caller provides the text and an array of tokens;
 * json_parse fills the tokens in document order, one per value and one per
 * object key, and never allocates. Walking is O(1) per step: every token
 * records its parent and its next sibling.
 *
 *   Token layout. A container's first child follows it (index + 1). In an
 *   array the children are the elements; in an object they are the keys,
 *   and each key's value immediately follows the key (key + 1). next links
 *   elements of an array and keys of an object; a value inside an object has
 *   next == -1 (go through its key). parent of a key or an array element is
 *   the container; parent of an object member's value is its key; the root
 *   has parent -1. size is the number of elements (array) or members
 *   (object); 0 for scalars.
 *
 *   Byte ranges. [start, end) covers the whole value for containers,
 *   numbers and literals ("{...}", "-1.5e3", "true"), and the raw contents
 *   between the quotes for strings, escapes still escaped.
 *
 * Contracts:
 *  - Strict RFC 8259: any single value at the top level, surrounded by
 *    optional whitespace (space, tab, CR, LF). Refused: trailing commas,
 *    comments, leading zeros, '+' signs, "1." / ".5", NaN/Infinity, single
 *    quotes, unknown escapes, unescaped control characters (< 0x20) in
 *    strings, invalid UTF-8 anywhere (overlong forms, encoded surrogates,
 *    > U+10FFFF, truncated sequences), lone or mismatched \u surrogates, a
 *    byte order mark, anything after the value. Duplicate keys are allowed
 *    by the grammar; json_obj_dup_key detects them.
 *  - Limits: nesting depth <= doc->max_depth (default and maximum
 *    JSON_MAX_DEPTH), tokens <= the array's capacity, text < 4 GiB.
 *  - Errors carry a code, the byte offset where parsing stopped, a 1-based
 *    line and a 1-based byte column, and a static reason string, so callers
 *    can print "file:line:col: reason".
 *  - Tokens point into the caller's text, which MUST outlive the doc.
 *
 * Writer. struct json_w appends JSON to a struct buf, tracks nesting (up to
 * JSON_MAX_DEPTH) and places commas and colons itself. Every call returns 0
 * or -1; errors (buffer limit or out-of-order calls) are sticky: after the
 * first -1 every call fails and the buffer holds an unspecified partial
 * document that the caller MUST discard.
 */
#ifndef MESHD_CORE_JSON_H
#define MESHD_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define JSON_MAX_DEPTH 64

enum json_type {
	JSON_NONE = 0,
	JSON_OBJECT,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

/* Token flag bits. */
#define JSON_TF_ESC  0x01   /* string: holds at least one backslash escape */
#define JSON_TF_KEY  0x02   /* string: is an object key */
#define JSON_TF_FRAC 0x04   /* number: has a fraction or an exponent */

struct json_tok {
	uint32_t start;     /* ro: first byte (see "Byte ranges") */
	uint32_t end;       /* ro: one past the last byte */
	int32_t parent;     /* ro: parent token, -1 for the root */
	int32_t next;       /* ro: next sibling, -1 for none */
	uint32_t size;      /* ro: members or elements, 0 for scalars */
	uint8_t type;       /* ro: enum json_type */
	uint8_t flags;      /* ro: JSON_TF_* */
};

enum json_errc {
	JSON_OK = 0,
	JSON_E_SYNTAX,      /* unexpected byte */
	JSON_E_EOF,         /* input ended inside a value */
	JSON_E_TRAILING,    /* bytes after the top-level value */
	JSON_E_NUMBER,      /* malformed number */
	JSON_E_STRING,      /* bad escape, surrogate or control character */
	JSON_E_UTF8,        /* invalid UTF-8 */
	JSON_E_DEPTH,       /* nesting deeper than max_depth */
	JSON_E_NOTOKENS,    /* more tokens than the array holds */
	JSON_E_TOOBIG,      /* text of 4 GiB or more */
	JSON_E_INVAL,       /* bad arguments */
};

struct json_err {
	int code;           /* enum json_errc */
	size_t offset;      /* byte offset where parsing stopped */
	unsigned line;      /* 1-based */
	unsigned col;       /* 1-based, in bytes */
	const char *reason; /* static text */
};

struct json_doc {
	const char *text;        /* ro: the input, set by json_parse */
	size_t len;              /* ro */
	struct json_tok *toks;   /* ro: the caller's array */
	uint32_t cap;            /* ro: its capacity */
	uint32_t ntoks;          /* ro: tokens filled by the last parse */
	unsigned max_depth;      /* rw: 1..JSON_MAX_DEPTH, set by init */
};

/* Points <doc> at the caller's token array of <cap> entries; max_depth is
 * set to JSON_MAX_DEPTH (lower it before parsing if wanted). */
void json_doc_init(struct json_doc *doc, struct json_tok *toks, uint32_t cap);

/*
 * Parses <len> bytes at <text> into doc's tokens. Returns the number of
 * tokens (> 0; the root is token 0), or -code (enum json_errc) with <err>
 * filled when <err> is non-NULL. On error doc->ntoks is 0.
 */
int json_parse(struct json_doc *doc, const char *text, size_t len,
               struct json_err *err);

/* Static text for an error code. */
const char *json_strerror(int code);

/* Writes "<name>:<line>:<col>: <reason>" (or without "<name>:" when <name>
 * is NULL) into <out>. Returns 0, or -1 when truncated. */
int json_err_format(const struct json_err *err, const char *name,
                    char *out, size_t outlen);

/* The token at <i>, or NULL when <i> is out of range. */
static inline const struct json_tok *json_tok(const struct json_doc *doc,
                                              int i)
{
	return i >= 0 && (uint32_t)i < doc->ntoks ? &doc->toks[i] : NULL;
}

/* Type of token <i>, JSON_NONE when out of range. */
static inline int json_type(const struct json_doc *doc, int i)
{
	const struct json_tok *t = json_tok(doc, i);

	return t ? t->type : JSON_NONE;
}

/* First element of array <i> or first key of object <i>; -1 when empty or
 * not a container. */
int json_first(const struct json_doc *doc, int i);

/* Next sibling of <i> (see "Token layout"), -1 at the end. */
static inline int json_next(const struct json_doc *doc, int i)
{
	const struct json_tok *t = json_tok(doc, i);

	return t ? t->next : -1;
}

/* Iterates the keys <k> and values <v> of object <obj>. */
#define JSON_OBJ_FOREACH(doc, obj, k, v)                                     \
	for ((k) = json_first((doc), (obj)), (v) = (k) < 0 ? -1 : (k) + 1;   \
	     (k) >= 0;                                                       \
	     (k) = json_next((doc), (k)), (v) = (k) < 0 ? -1 : (k) + 1)

/* Iterates the elements <e> of array <arr>. */
#define JSON_ARR_FOREACH(doc, arr, e)                                        \
	for ((e) = json_first((doc), (arr)); (e) >= 0;                       \
	     (e) = json_next((doc), (e)))

/*
 * Value of member <key> (<keylen> bytes; may hold any byte) of object
 * <obj>. When the key appears more than once the LAST one wins, as in Go's
 * encoding/json and hence the Kubernetes API server, so meshd reads what
 * the cluster acted on. Returns the value's index, or -1 when <obj> is not
 * an object or has no such key.
 */
int json_obj_get_n(const struct json_doc *doc, int obj, const char *key,
                   size_t keylen);
/* The same with a C string key. */
int json_obj_get(const struct json_doc *doc, int obj, const char *key);

/* Index of the first key of object <obj> whose name an earlier key already
 * had, or -1 when all keys differ (or <obj> is not an object). Compares
 * decoded names; O(members^2). */
int json_obj_dup_key(const struct json_doc *doc, int obj);

/* 1 when string token <i> decodes to exactly the <n> bytes at <s>, else 0
 * (also when <i> is not a string). No copy when the token has no escapes. */
int json_str_eq_n(const struct json_doc *doc, int i, const char *s, size_t n);
int json_str_eq(const struct json_doc *doc, int i, const char *s);

/*
 * Decodes string token <i> into <out> and NUL-terminates it. Returns the
 * decoded length (without the NUL; the bytes may include NUL when the text
 * had \u0000), or -1 when <i> is not a string or <outlen> < length + 1
 * (<out> then holds an unspecified prefix). <out> == NULL with <outlen> == 0
 * only measures: it returns the decoded length.
 */
ssize_t json_str_unescape(const struct json_doc *doc, int i, char *out,
                          size_t outlen);

/* json_str_unescape for C strings: also -1 when the value holds a NUL. */
int json_str_cstr(const struct json_doc *doc, int i, char *out, size_t outlen);

/*
 * Strict conversions; 0 on success, -1 (with *<out> untouched) otherwise.
 * i64/u64: integer numbers only (no fraction or exponent, no '-' for u64),
 * in range. double: any number whose value is finite (underflow gives 0 or
 * a subnormal; numbers longer than 511 bytes are refused); the C locale's
 * '.' is assumed. bool: the literals true and false only.
 */
int json_to_i64(const struct json_doc *doc, int i, int64_t *out);
int json_to_u64(const struct json_doc *doc, int i, uint64_t *out);
int json_to_double(const struct json_doc *doc, int i, double *out);
int json_to_bool(const struct json_doc *doc, int i, int *out);

/* ---- writer ---- */

struct json_w {
	struct buf *b;                    /* ro */
	unsigned depth;                   /* private */
	int failed;                       /* ro: sticky, 1 after an error */
	int done;                         /* private: top-level value written */
	uint8_t st[JSON_MAX_DEPTH];       /* private: per level JSON_W_* */
};

/* Starts writing one document at the end of <b>. */
void json_w_init(struct json_w *w, struct buf *b);

/* Containers. Keys are required (and only allowed) inside objects. */
int json_w_obj_open(struct json_w *w);
int json_w_obj_close(struct json_w *w);
int json_w_arr_open(struct json_w *w);
int json_w_arr_close(struct json_w *w);
int json_w_key(struct json_w *w, const char *key);
int json_w_key_n(struct json_w *w, const char *key, size_t n);

/*
 * Scalars. Strings are escaped: '"', '\\' and control characters (the short
 * forms \b \f \n \r \t, else \u00XX); each byte that is not part of a valid
 * UTF-8 sequence becomes \ufffd, so the output is always valid JSON.
 * json_w_double refuses NaN and infinities (-1) and writes the shortest
 * "%.17g" form that reads back the same. json_w_num_raw writes <p> as it
 * is after checking it is a strict JSON number.
 */
int json_w_str(struct json_w *w, const char *s);
int json_w_str_n(struct json_w *w, const char *s, size_t n);
int json_w_i64(struct json_w *w, int64_t v);
int json_w_u64(struct json_w *w, uint64_t v);
int json_w_double(struct json_w *w, double v);
int json_w_num_raw(struct json_w *w, const char *p, size_t n);
int json_w_bool(struct json_w *w, int v);
int json_w_null(struct json_w *w);

/* Copies the parsed value <i> of <doc> (with its subtree) verbatim. */
int json_w_value(struct json_w *w, const struct json_doc *doc, int i);

/* 0 when exactly one complete top-level value was written without error,
 * else -1. */
int json_w_finish(const struct json_w *w);

#endif
