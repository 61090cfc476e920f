/*
 * libFuzzer target for proxy/detect.
 *
 * Invariants checked (abort() on violation):
 *  - no crash or out-of-bounds read (inputs live in exact-size heap copies);
 *  - SNI and ALPN slices lie inside the input; details only with DETECT_TLS;
 *  - the result does not depend on whether details are requested;
 *  - a decided result (not DETECT_NEED_MORE) is stable: prefixes give
 *    DETECT_NEED_MORE or the same result, and the input followed by more
 *    bytes gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "proxy/detect.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)

static int inside(const char *p, size_t n, const char *lo, size_t len)
{
	return p >= lo && n <= len && p - lo <= (ptrdiff_t)(len - n);
}

static enum detect_result run(const uint8_t *data, size_t n, size_t extra,
                              uint8_t fill)
{
	struct detect_info info;
	enum detect_result r, r2;
	size_t i;
	char *copy = mem_alloc(n + extra ? n + extra : 1);

	if (!copy)
		abort();
	memcpy(copy, data, n);
	memset(copy + n, fill, extra);
	r = detect_protocol(copy, n + extra, &info);
	FZ_ASSERT(r >= DETECT_NEED_MORE && r <= DETECT_OPAQUE);
	r2 = detect_protocol(copy, n + extra, NULL);
	FZ_ASSERT(r == r2);
	FZ_ASSERT(info.nalpn <= DETECT_ALPN_MAX);
	if (r != DETECT_TLS) {
		FZ_ASSERT(info.hello == DETECT_HELLO_PARTIAL);
		FZ_ASSERT(info.sni == NULL && info.nalpn == 0);
	}
	if (info.hello != DETECT_HELLO_OK)
		FZ_ASSERT(info.sni == NULL && info.nalpn == 0);
	if (info.sni) {
		FZ_ASSERT(info.sni_len > 0 && info.sni_len <= 255);
		FZ_ASSERT(inside(info.sni, info.sni_len, copy, n + extra));
		FZ_ASSERT(memchr(info.sni, 0, info.sni_len) == NULL);
	}
	for (i = 0; i < info.nalpn; i++) {
		FZ_ASSERT(info.alpn[i].len > 0);
		FZ_ASSERT(inside(info.alpn[i].p, info.alpn[i].len, copy,
		                 n + extra));
	}
	mem_free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum detect_result r, p;
	size_t cut[4], i;

	r = run(data, size, 0, 0);
	if (r == DETECT_NEED_MORE)
		return 0;
	/* prefixes: NEED_MORE or the same decision */
	cut[0] = size / 2;
	cut[1] = size ? size - 1 : 0;
	cut[2] = size ? data[0] % size : 0;
	cut[3] = size > 6 ? 6 : size;
	for (i = 0; i < 4; i++) {
		p = run(data, cut[i], 0, 0);
		FZ_ASSERT(p == DETECT_NEED_MORE || p == r);
	}
	/* more bytes do not change a decision */
	FZ_ASSERT(run(data, size, 1, '\n') == r);
	FZ_ASSERT(run(data, size, 1, '\r') == r);
	FZ_ASSERT(run(data, size, 1100, size ? data[size - 1] : 0) == r);
	return 0;
}
