/*
 * libFuzzer target for core/prom: the text-format parser and the golden
 * metrics computed from what it reads.
 *
 * For every input it checks that
 *  - every slice of every sample lies inside the input;
 *  - samples come in increasing line order, and every label value
 *    unescapes and compares equal (prom_value_eq) to its unescaped form;
 *  - a bucket's le is a number, other samples carry NaN there;
 *  - a failed parse says "line N: ..." with the line it stopped at, and
 *    stays failed;
 *  - the same samples fed to a golden-metrics grouping keep every group's
 *    bounds strictly increasing, never more groups than the storage, and
 *    quantiles that are NaN or non-decreasing in q (p50 <= p95 <= p99);
 *  - parsing is deterministic (a second pass gives the same count).
 * Any violation abort()s.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc \
 *   test/fuzz/fuzz_prom.c src/core/prom.c src/core/str.c -o /tmp/fz
 * Run with a scratch corpus first so the seeds stay as they are:
 *   /tmp/fz -max_total_time=20 "$(mktemp -d)" test/fuzz/corpus/prom/
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_in(const char *base, size_t size, struct str s)
{
	if (s.len && (s.p < base || s.p + s.len > base + size))
		abort();
}

/* a <= b, allowing for rounding in the interpolation. */
static int fuzz_le(double a, double b)
{
	double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);

	return a <= b + 1e-9 * (m > 1 ? m : 1);
}

static void fuzz_group(const struct prom_group *grp, int prev_ok,
                       const struct prom_group *prev)
{
	struct prom_stats st;
	unsigned i;

	for (i = 1; i < grp->nbuckets; i++)
		if (!(grp->le[i - 1] < grp->le[i]))
			abort();
	prom_group_stats(grp, prev_ok ? prev : NULL, 1.5, &st);
	if (isnan(st.p50) || isnan(st.p95) || isnan(st.p99))
		return;
	if (!isfinite(st.p50) || !isfinite(st.p95) || !isfinite(st.p99))
		return;
	if (!fuzz_le(st.p50, st.p95) || !fuzz_le(st.p95, st.p99))
		abort();
}

static int fuzz_pass(const char *in, size_t size, int check)
{
	static const char *const by[] = { "direction", "authority" };
	struct prom_group groups[4];
	struct prom_golden g;
	struct prom_parser p;
	struct prom_sample s;
	unsigned long last = 0, line;
	char err[160], tmp[512];
	int rc, n = 0;
	unsigned i;
	ssize_t len;

	if (prom_golden_init(&g, by, 2, NULL, 0, groups, 4) < 0)
		abort();
	prom_init(&p, in, size);
	err[0] = '\0';
	while ((rc = prom_next(&p, &s, err, sizeof(err))) > 0) {
		n++;
		if (!check)
			continue;
		if (s.line <= last)
			abort();
		last = s.line;
		fuzz_in(in, size, s.name);
		fuzz_in(in, size, s.family);
		if (!s.name.len || s.nlabels > PROM_MAX_LABELS)
			abort();
		if ((s.kind == PROM_K_BUCKET) == isnan(s.le))
			abort();
		for (i = 0; i < s.nlabels; i++) {
			fuzz_in(in, size, s.labels[i].name);
			fuzz_in(in, size, s.labels[i].value);
			len = prom_unescape(s.labels[i].value, tmp, sizeof(tmp));
			if (len < 0) {
				if (s.labels[i].value.len < sizeof(tmp))
					abort(); /* valid escapes always fit */
				continue;
			}
			if (!prom_value_eq(s.labels[i].value,
			                   str_make(tmp, (size_t)len)))
				abort();
		}
		prom_golden_sample(&g, &s);
	}
	if (!check)
		return n;
	if (rc < 0) {
		if (sscanf(err, "line %lu: ", &line) != 1 || line != p.line ||
		    line < last)
			abort();
		if (prom_next(&p, &s, NULL, 0) != -1)
			abort();
	}
	if (g.n > g.cap)
		abort();
	for (i = 0; i < g.n; i++)
		fuzz_group(&g.groups[i], i > 0, &g.groups[i ? i - 1 : 0]);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int n = fuzz_pass((const char *)data, size, 1);

	if (fuzz_pass((const char *)data, size, 0) != n)
		abort();
	return 0;
}
