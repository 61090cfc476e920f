/*
 * str: string slices and strict conversions. See str.h for the contract.
 *
 * Nothing here touches the locale (no <ctype.h>): case folding and digit
 * classes are plain ASCII, so results never depend on the environment.
 */
#include <stdint.h>
#include <string.h>

#include "core/str.h"

static inline unsigned char str_lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static inline int str_isdigit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Value of a hex digit, or -1. */
static inline int str_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

struct str str_sub(struct str s, size_t off, size_t len)
{
	if (off > s.len)
		off = s.len;
	if (len > s.len - off)
		len = s.len - off;
	return str_make(s.p ? s.p + off : NULL, len);
}

int str_eq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int str_eq_cstr(struct str a, const char *c)
{
	return str_eq(a, str_from_cstr(c));
}

/* ASCII case-insensitive comparison of <n> bytes. */
static int str_ieq_n(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (str_lc((unsigned char)a[i]) != str_lc((unsigned char)b[i]))
			return 0;
	}
	return 1;
}

int str_ieq(struct str a, struct str b)
{
	return a.len == b.len && str_ieq_n(a.p, b.p, a.len);
}

int str_ieq_cstr(struct str a, const char *c)
{
	return str_ieq(a, str_from_cstr(c));
}

int str_has_prefix(struct str s, struct str fix)
{
	return fix.len <= s.len &&
	       (fix.len == 0 || memcmp(s.p, fix.p, fix.len) == 0);
}

int str_has_suffix(struct str s, struct str fix)
{
	return fix.len <= s.len &&
	       (fix.len == 0 ||
	        memcmp(s.p + s.len - fix.len, fix.p, fix.len) == 0);
}

int str_ihas_prefix(struct str s, struct str fix)
{
	return fix.len <= s.len && str_ieq_n(s.p, fix.p, fix.len);
}

struct str str_trim_ows(struct str s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

ssize_t str_find_char(struct str s, char c)
{
	const char *hit;

	if (s.len == 0)
		return -1;
	hit = memchr(s.p, c, s.len);
	return hit ? (ssize_t)(hit - s.p) : -1;
}

ssize_t str_rfind_char(struct str s, char c)
{
	size_t i = s.len;

	while (i > 0) {
		i--;
		if (s.p[i] == c)
			return (ssize_t)i;
	}
	return -1;
}

int str_next_token(struct str *rest, char sep, struct str *tok)
{
	ssize_t at;

	if (!rest->p) {
		*tok = STR_NULL;
		return 0;
	}
	at = str_find_char(*rest, sep);
	if (at < 0) {
		*tok = *rest;
		*rest = STR_NULL;
		return 1;
	}
	*tok = str_make(rest->p, (size_t)at);
	*rest = str_make(rest->p + at + 1, rest->len - (size_t)at - 1);
	return 1;
}

int str_to_lower(struct str s, char *dst, size_t dstlen, struct str *out)
{
	size_t i;

	if (s.len > dstlen)
		return -1;
	for (i = 0; i < s.len; i++)
		dst[i] = (char)str_lc((unsigned char)s.p[i]);
	*out = str_make(s.len ? dst : NULL, s.len);
	return 0;
}

int str_copy_cstr(char *dst, size_t dstlen, struct str s)
{
	const char *nul = s.len ? memchr(s.p, '\0', s.len) : NULL;
	size_t n = nul ? (size_t)(nul - s.p) : s.len;
	int rc = nul ? -1 : 0;

	if (dstlen == 0)
		return -1;
	if (n >= dstlen) {
		n = dstlen - 1;
		rc = -1;
	}
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	return rc;
}

int str_to_u64(struct str s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s.len == 0)
		return -1;
	for (i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		unsigned d;

		if (!str_isdigit(c))
			return -1;
		d = c - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int str_to_u64_hex(struct str s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s.len == 0)
		return -1;
	for (i = 0; i < s.len; i++) {
		int d = str_hexval((unsigned char)s.p[i]);

		if (d < 0 || v > (UINT64_MAX >> 4))
			return -1;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return 0;
}

int str_to_i64(struct str s, int64_t *out)
{
	uint64_t mag;
	int neg = s.len > 0 && s.p[0] == '-';

	if (neg)
		s = str_sub(s, 1, s.len);
	if (str_to_u64(s, &mag) < 0)
		return -1;
	if (neg) {
		/* |INT64_MIN| = INT64_MAX + 1 */
		if (mag > (uint64_t)INT64_MAX + 1)
			return -1;
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
		                                       : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)INT64_MAX)
			return -1;
		*out = (int64_t)mag;
	}
	return 0;
}

/* Splits <s> into its leading digits (at least one) and the rest. */
static int str_split_number(struct str s, uint64_t *num, struct str *unit)
{
	size_t n = 0;

	while (n < s.len && str_isdigit((unsigned char)s.p[n]))
		n++;
	if (n == 0 || str_to_u64(str_sub(s, 0, n), num) < 0)
		return -1;
	*unit = str_sub(s, n, s.len);
	return 0;
}

struct str_unit {
	struct str name;
	uint64_t mult;
};

/* Microseconds per duration unit. */
static const struct str_unit str_dur_units[] = {
	{ STR_INIT("us"), 1 },
	{ STR_INIT("ms"), 1000 },
	{ STR_INIT("s"), 1000ULL * 1000 },
	{ STR_INIT("m"), 60ULL * 1000 * 1000 },
	{ STR_INIT("h"), 3600ULL * 1000 * 1000 },
	{ STR_INIT("d"), 86400ULL * 1000 * 1000 },
};

/* Bytes per size suffix. */
static const struct str_unit str_size_units[] = {
	{ STR_INIT(""), 1 },
	{ STR_INIT("B"), 1 },
	{ STR_INIT("k"), 1000ULL },
	{ STR_INIT("kB"), 1000ULL },
	{ STR_INIT("KB"), 1000ULL },
	{ STR_INIT("M"), 1000ULL * 1000 },
	{ STR_INIT("MB"), 1000ULL * 1000 },
	{ STR_INIT("G"), 1000ULL * 1000 * 1000 },
	{ STR_INIT("GB"), 1000ULL * 1000 * 1000 },
	{ STR_INIT("T"), 1000ULL * 1000 * 1000 * 1000 },
	{ STR_INIT("TB"), 1000ULL * 1000 * 1000 * 1000 },
	{ STR_INIT("Ki"), 1ULL << 10 },
	{ STR_INIT("KiB"), 1ULL << 10 },
	{ STR_INIT("Mi"), 1ULL << 20 },
	{ STR_INIT("MiB"), 1ULL << 20 },
	{ STR_INIT("Gi"), 1ULL << 30 },
	{ STR_INIT("GiB"), 1ULL << 30 },
	{ STR_INIT("Ti"), 1ULL << 40 },
	{ STR_INIT("TiB"), 1ULL << 40 },
};

/* Multiplier of <unit> in <tab>, or 0 when it is unknown. */
static uint64_t str_unit_mult(const struct str_unit *tab, size_t n,
                              struct str unit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (str_eq(tab[i].name, unit))
			return tab[i].mult;
	}
	return 0;
}

/* Parses a duration into its number and its unit's microseconds. */
static int str_duration_parts(struct str s, uint64_t *num, uint64_t *mult)
{
	struct str unit;

	if (str_split_number(s, num, &unit) < 0)
		return -1;
	if (unit.len == 0) {
		/* only "0" may omit the unit */
		if (*num != 0)
			return -1;
		*mult = 1;
		return 0;
	}
	*mult = str_unit_mult(str_dur_units,
	                      sizeof(str_dur_units) / sizeof(str_dur_units[0]),
	                      unit);
	return *mult ? 0 : -1;
}

int str_to_duration_us(struct str s, uint64_t *out)
{
	uint64_t num, mult;

	if (str_duration_parts(s, &num, &mult) < 0)
		return -1;
	if (num > UINT64_MAX / mult)
		return -1;
	*out = num * mult;
	return 0;
}

int str_to_duration_ms(struct str s, uint64_t *out)
{
	uint64_t num, mult;

	if (str_duration_parts(s, &num, &mult) < 0)
		return -1;
	if (mult < 1000) {
		/* microseconds: round up to whole milliseconds */
		*out = num / 1000 + (num % 1000 != 0);
		return 0;
	}
	mult /= 1000;
	if (num > UINT64_MAX / mult)
		return -1;
	*out = num * mult;
	return 0;
}

int str_to_size(struct str s, uint64_t *out)
{
	uint64_t num, mult;
	struct str unit;

	if (str_split_number(s, &num, &unit) < 0)
		return -1;
	mult = str_unit_mult(str_size_units,
	                     sizeof(str_size_units) / sizeof(str_size_units[0]),
	                     unit);
	if (mult == 0 || num > UINT64_MAX / mult)
		return -1;
	*out = num * mult;
	return 0;
}
