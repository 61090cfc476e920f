/*
 * str: string slices and strict conversions.
 *
 * A struct str is a borrowed view of <len> bytes at <p>; it owns nothing and
 * is passed by value. The bytes need not be NUL-terminated and may contain
 * NUL. Everything here works in place: no function allocates.
 *
 * Contracts:
 *  - A slice with p == NULL is valid only with len == 0 (the "null" slice,
 *    STR_NULL). Every function accepts it and treats it as empty, except
 *    str_next_token, which treats it as "no more tokens".
 *  - Predicates (str_eq, str_has_prefix, ...) return 1 or 0.
 *  - Conversions return 0 on success and -1 on any error; on error they leave
 *    *out untouched. They are strict: no sign unless stated, no leading or
 *    trailing spaces (trim first with str_trim_ows if the grammar allows
 *    them), no empty input, overflow is an error. Case rules are ASCII only
 *    and independent of the locale.
 *  - Durations (str_to_duration_ms / _us) follow Linkerd's proxy settings:
 *    one unsigned integer immediately followed by one unit, "us", "ms", "s",
 *    "m", "h" or "d" ("10s", "100ms", "1m"). A bare number is ambiguous and
 *    refused, except "0", which means zero whatever the unit. No fractions,
 *    no compound forms ("1m30s").
 *  - Sizes (str_to_size): a bare number is bytes; suffixes are binary
 *    ("Ki"/"KiB" = 1024, "Mi"/"MiB", "Gi"/"GiB", "Ti"/"TiB", as in
 *    Kubernetes quantities and IEC units) or decimal ("k"/"kB"/"KB" = 1000,
 *    "M"/"MB", "G"/"GB", "T"/"TB"); "B" alone means bytes. Suffixes are
 *    case-sensitive.
 */
#ifndef MESHD_CORE_STR_H
#define MESHD_CORE_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct str {
	const char *p;  /* ro: first byte, NULL only when len == 0 */
	size_t len;     /* ro: bytes */
};

/* A slice of a string literal, without its NUL. <s> MUST be a literal. */
#define STR_LIT(s) ((struct str){ "" s, sizeof(s) - 1 })
#define STR_NULL ((struct str){ NULL, 0 })
/* The same as an initializer, for static tables. */
#define STR_INIT(s) { "" s, sizeof(s) - 1 }

/* A slice of <len> bytes at <p>. */
static inline struct str str_make(const char *p, size_t len)
{
	struct str s = { p, len };

	return s;
}

/* A slice of the C string <s> (without its NUL); NULL gives STR_NULL. */
static inline struct str str_from_cstr(const char *s)
{
	return s ? str_make(s, strlen(s)) : STR_NULL;
}

/* 1 when <s> has no bytes. */
static inline int str_empty(struct str s) { return s.len == 0; }

/* The slice of <s> from <off>, at most <len> bytes; both are clamped to <s>,
 * so the result is always inside <s>. */
struct str str_sub(struct str s, size_t off, size_t len);

/* Byte-wise equality. */
int str_eq(struct str a, struct str b);
/* Equality with the C string <c> (compared without its NUL). */
int str_eq_cstr(struct str a, const char *c);
/* Equality ignoring ASCII case ('A'..'Z' == 'a'..'z'; other bytes exact). */
int str_ieq(struct str a, struct str b);
int str_ieq_cstr(struct str a, const char *c);

/* 1 when <s> starts (ends) with <fix>. The empty slice is a prefix and a
 * suffix of everything. */
int str_has_prefix(struct str s, struct str fix);
int str_has_suffix(struct str s, struct str fix);
/* str_has_prefix ignoring ASCII case. */
int str_ihas_prefix(struct str s, struct str fix);

/* <s> without leading and trailing spaces and horizontal tabs (HTTP's OWS). */
struct str str_trim_ows(struct str s);

/* Index of the first (last) byte equal to <c>, or -1 when there is none. */
ssize_t str_find_char(struct str s, char c);
ssize_t str_rfind_char(struct str s, char c);

/*
 * Splits <*rest> at the first <sep>: stores the bytes before it in <*tok> and
 * leaves the bytes after it in <*rest>. Returns 1 when a token was stored, 0
 * when <*rest> is exhausted (then <*tok> is STR_NULL).
 *
 * The split is exact: n separators give n + 1 tokens, empty ones included
 * ("a,,b" -> "a" "" "b"; "a," -> "a" ""; "" -> ""). After the last token
 * <*rest> becomes STR_NULL, which is how exhaustion is told apart from an
 * empty remainder. Tokens point into the original bytes.
 */
int str_next_token(struct str *rest, char sep, struct str *tok);

/*
 * Writes <s> lower-cased (ASCII only) to <dst> and points <*out> at it.
 * Needs dstlen >= s.len; writes no NUL. Returns 0, or -1 (nothing written)
 * when <dst> is too small. <dst> may equal s.p (in-place) but must not
 * otherwise overlap it.
 */
int str_to_lower(struct str s, char *dst, size_t dstlen, struct str *out);

/*
 * Copies <s> into <dst> as a C string. Returns 0 when all of <s> fits with
 * its NUL. Returns -1 when it does not fit, or when <s> holds a NUL byte (the
 * C string could not represent it); <dst> then holds the prefix that fits
 * (or the bytes before the NUL), NUL-terminated when dstlen > 0.
 */
int str_copy_cstr(char *dst, size_t dstlen, struct str s);

/* Decimal digits only, at least one; leading zeros allowed. */
int str_to_u64(struct str s, uint64_t *out);
/* Hex digits only (either case, no "0x"), at least one. For chunk sizes. */
int str_to_u64_hex(struct str s, uint64_t *out);
/* An optional '-' then decimal digits; INT64_MIN..INT64_MAX. No '+'. */
int str_to_i64(struct str s, int64_t *out);

/* A duration (see the header comment) in milliseconds; "500us" and other
 * sub-millisecond amounts round up, so a non-zero duration never reads as
 * zero. */
int str_to_duration_ms(struct str s, uint64_t *out);
/* The same in microseconds. */
int str_to_duration_us(struct str s, uint64_t *out);

/* A size in bytes (see the header comment). */
int str_to_size(struct str s, uint64_t *out);

#endif
