/*
 * libFuzzer target for core/grpc.
 *
 * Input layout: byte 0 picks the chunk size for the deframer (1..256),
 * byte 1 the maximum message size (small, so that the limit is reachable,
 * or the default); the rest is the stream. Invariants (abort() on
 * violation):
 *  - the deframer gives the same messages, the same final error and the
 *    same end-of-stream verdict whether the stream comes at once or in
 *    chunks; no message is above the maximum; bytes consumed never exceed
 *    what was offered;
 *  - the stream, taken as a grpc-message value, percent-decodes without
 *    error, and percent-encoding any bytes then decoding gives them back;
 *  - taken as a grpc-timeout, a value that parses formats back to a value
 *    that parses to no less;
 *  - the header checks accept or refuse without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/grpc.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)

/* Runs the stream through a deframer in <step>-byte chunks; appends each
 * message as (4-byte length, bytes) to <log>. Returns the final status:
 * the sticky error, or -1 for a truncated end, or 0. */
static int run(const uint8_t *p, size_t n, size_t step, size_t max,
               struct buf *log)
{
	struct grpc_deframer df;
	int rc = 0;

	grpc_deframer_init(&df, max);
	while (n > 0) {
		size_t chunk = n < step ? n : step;
		const uint8_t *q = p;

		p += chunk;
		n -= chunk;
		while (chunk > 0) {
			ssize_t c = grpc_deframer_push(&df, q, chunk);
			struct str m;

			if (c < 0) {
				FZ_ASSERT(df.err != GRPC_OK && df.err_text);
				rc = (int)df.err;
				goto out;
			}
			FZ_ASSERT((size_t)c <= chunk);
			q += c;
			chunk -= (size_t)c;
			if (grpc_deframer_msg(&df, &m)) {
				uint32_t l = (uint32_t)m.len;

				FZ_ASSERT(m.len <= df.max_msg);
				FZ_ASSERT(buf_append(log, &l, 4) == 0);
				FZ_ASSERT(buf_append(log, m.p, m.len) == 0);
				grpc_deframer_next(&df);
			} else {
				FZ_ASSERT(c > 0 || chunk == 0);
			}
		}
	}
	if (grpc_deframer_finish(&df) < 0)
		rc = -1;
out:
	grpc_deframer_free(&df);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b, enc, dec;
	struct str s;
	size_t step, max;
	uint64_t ns, ns2;
	enum grpc_status code;
	char out[16];
	int ra, rb, n;

	if (size < 2)
		return 0;
	step = (size_t)data[0] + 1;
	max = data[1] & 0x80 ? 0 : (size_t)(data[1] & 0x7f);
	data += 2;
	size -= 2;

	buf_init(&a, 2 * size + 4096);
	buf_init(&b, 2 * size + 4096);
	ra = run(data, size, size ? size : 1, max, &a);
	rb = run(data, size, step, max, &b);
	FZ_ASSERT(ra == rb);
	FZ_ASSERT(buf_len(&a) == buf_len(&b));
	FZ_ASSERT(!buf_len(&a) ||
	          memcmp(buf_data(&a), buf_data(&b), buf_len(&a)) == 0);
	buf_free(&a);
	buf_free(&b);

	s = str_make((const char *)data, size);
	buf_init(&dec, size + 1);
	FZ_ASSERT(grpc_message_decode(&dec, s) == 0);
	FZ_ASSERT(buf_len(&dec) <= size);
	buf_free(&dec);
	buf_init(&enc, 3 * size + 1);
	buf_init(&dec, size + 1);
	FZ_ASSERT(grpc_message_encode(&enc, s) == 0);
	FZ_ASSERT(grpc_message_decode(&dec, str_make(buf_data(&enc),
	                                             buf_len(&enc))) == 0);
	FZ_ASSERT(buf_len(&dec) == size);
	FZ_ASSERT(!size || memcmp(buf_data(&dec), data, size) == 0);
	buf_free(&enc);
	buf_free(&dec);

	if (grpc_timeout_parse(s, &ns) == 0) {
		n = grpc_timeout_format(ns, out, sizeof(out));
		FZ_ASSERT(n >= 2 && n <= 9);
		FZ_ASSERT(grpc_timeout_parse(str_make(out, (size_t)n),
		                             &ns2) == 0);
		FZ_ASSERT(ns2 >= ns);
	}
	if (grpc_status_parse(s, &code) == 0)
		FZ_ASSERT((int)code >= 0 && (int)code <= GRPC_STATUS_MAX);
	(void)grpc_content_type_ok(s);
	return 0;
}
