/*
 * libFuzzer target for core/metrics: label value escaping and the
 * exposition of a hostile label value.
 *
 * For every input it checks that
 *  - the escaped form has no raw newline and no unescaped double quote,
 *    its length matches the size query, and it does not fit one byte short;
 *  - unescaping gives the input back, byte for byte;
 *  - a one-series histogram registry whose label value (and help text) is
 *    the input up to its first NUL renders with exactly the expected number
 *    of lines, and carries the escaped value verbatim; the series exists iff
 *    the value is UTF-8 (checked here by an independent decoder) and not too
 *    long;
 *  - nothing leaks (mem block count).
 * Any violation abort()s.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc \
 *   test/fuzz/fuzz_metrics_escape.c src/core/metrics.c src/core/buf.c \
 *   src/core/mem.c -o /tmp/fz
 * Run with a scratch corpus first so the seeds stay as they are:
 *   /tmp/fz -max_total_time=20 "$(mktemp -d)" test/fuzz/corpus/metrics_escape/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* UTF-8 check by decoding, unlike metrics.c's byte-range table. */
static int fuzz_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
	uint32_t cp;

	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000))
			return 0;
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Aborts unless <esc>[<n>] is well formed: no raw newline, every quote
 * and backslash escaped. */
static void fuzz_check_escaped(const char *esc, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (esc[i] == '\n' || esc[i] == '"')
			abort();
		if (esc[i] == '\\') {
			if (++i == n)
				abort();
			if (esc[i] != '\\' && esc[i] != '"' && esc[i] != 'n')
				abort();
		}
	}
}

static void fuzz_render(const char *value, const char *esc, size_t esc_len)
{
	static const uint64_t bounds[] = { 1, 10 };
	struct metrics_family_opts o = {
		.type = METRICS_HISTOGRAM, .name = "fz", .bounds = bounds,
		.nbounds = 2,
	};
	size_t vlen = strlen(value), i, lines = 0, want;
	struct metrics_label l = { "v", value };
	struct metrics_registry *r;
	struct metrics_family *f;
	struct metrics_series *s;
	int ok, help_ok;
	const char *text;
	struct buf b;
	char *pat;

	help_ok = fuzz_utf8_ok((const unsigned char *)value, vlen);
	ok = help_ok && vlen <= METRICS_MAX_VALUE_LEN;
	o.help = help_ok ? value : "fixed help";
	r = metrics_registry_new();
	if (!r)
		abort();
	f = metrics_family_new(r, &o, NULL, 0);
	if (!f)
		abort();
	s = metrics_series_get(f, &l, 1);
	if ((s != NULL) != ok)
		abort();
	metrics_histogram_observe(s, vlen);

	buf_init(&b, 1 << 22);
	if (metrics_render(r, &b) != 0)
		abort();
	for (i = 0; i < buf_len(&b); i++)
		if (buf_data(&b)[i] == '\n')
			lines++;
	/* HELP (unless empty), TYPE, 3 buckets, _sum, _count */
	want = s ? (o.help[0] ? 1 : 0) + 1 + 3 + 2 : 0;
	if (lines != want)
		abort();
	if (s) {
		/* esc starts with the escaped value (value is a prefix of
		 * the input, and escaping is bytewise) */
		pat = mem_alloc(esc_len + 32);
		if (!pat)
			abort();
		want = metrics_escape_label_value(value, vlen, NULL, 0);
		if (want > esc_len)
			abort();
		memcpy(pat, "{v=\"", 4);
		memcpy(pat + 4, esc, want);
		memcpy(pat + 4 + want, "\",le=\"1\"} ", 10);
		pat[14 + want] = '\0';
		text = buf_cstr(&b);
		if (!text || !strstr(text, pat))
			abort();
		mem_free(pat);
	}
	buf_free(&b);
	metrics_series_put(s);
	metrics_registry_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct mem_stats st0, st1;
	char *esc, *back, *value;
	ssize_t n, m;

	mem_get_stats(&st0);
	esc = mem_alloc(2 * size + 1);
	back = mem_alloc(size + 1);
	if (!esc || !back)
		abort();
	n = metrics_escape_label_value(in, size, esc, 2 * size);
	if (n < 0 || n != metrics_escape_label_value(in, size, NULL, 0))
		abort();
	if (n > 0 && metrics_escape_label_value(in, size, esc + 1,
	                                        (size_t)n - 1) != -1)
		abort();
	n = metrics_escape_label_value(in, size, esc, 2 * size);
	fuzz_check_escaped(esc, (size_t)n);
	m = metrics_unescape_label_value(esc, (size_t)n, back, size);
	if (m != (ssize_t)size || memcmp(back, in, size) != 0)
		abort();

	value = mem_strndup(in, size);
	if (!value)
		abort();
	fuzz_render(value, esc, (size_t)n);

	mem_free(value);
	mem_free(back);
	mem_free(esc);
	mem_get_stats(&st1);
	if (st1.blocks != st0.blocks || st1.bytes != st0.bytes)
		abort();
	return 0;
}
