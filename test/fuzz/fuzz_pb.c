/*
 * libFuzzer target for core/pb with the tables of core/api_pb.
 *
 * The input is decoded as every message type of api/destination.proto in
 * turn (the three the API carries at top level first). Invariants checked
 * (abort() on violation):
 *  - decoding either fails with a PB_E_* code and an error text, or
 *    succeeds with every slice inside the input and every array inside the
 *    arena (checked through the re-encoding, which ASan watches);
 *  - a decoded message re-encodes; the encoding's size matches
 *    pb_encoded_size; it decodes again to an equal message (pb_equal); and
 *    encoding that second message gives the same bytes (the canonical form
 *    is a fixed point).
 * The arena is small enough that PB_E_ARENA is reachable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_pb.h"
#include "core/buf.h"
#include "core/pb.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)

static const struct pb_msg_desc *const types[] = {
	&api_pb_get_destination_desc,
	&api_pb_update_desc,
	&api_pb_destination_profile_desc,
	&api_pb_weighted_addr_set_desc,
	&api_pb_weighted_addr_desc,
	&api_pb_addr_set_desc,
	&api_pb_route_desc,
	&api_pb_retry_budget_desc,
	&api_pb_request_match_desc,
	&api_pb_protocol_hint_desc,
	&api_pb_tls_identity_desc,
};

static _Alignas(16) char arena1[32 * 1024];
static _Alignas(16) char arena2[32 * 1024];
static _Alignas(16) char msg1[1024];
static _Alignas(16) char msg2[1024];

static void one(const struct pb_msg_desc *d, const uint8_t *data, size_t size)
{
	struct pb_arena a1, a2;
	struct buf e1, e2;
	char err[256];
	ssize_t n1, n2;
	int rc;

	FZ_ASSERT(d->size <= sizeof(msg1));
	pb_arena_init(&a1, arena1, sizeof(arena1));
	rc = pb_decode(d, msg1, data, size, &a1, err, sizeof(err));
	if (rc < 0) {
		FZ_ASSERT(rc >= PB_E_INVALID && err[0] != '\0');
		return;
	}
	FZ_ASSERT(rc == 0 && a1.used <= a1.cap);
	/* re-encoding grows an input at most 2x (an int32 sent in 5 bytes
	 * comes back in 10), so this limit is never the reason to fail */
	buf_init(&e1, 4 * size + 64);
	n1 = pb_encode(d, msg1, &e1);
	FZ_ASSERT(n1 >= 0 && (size_t)n1 == buf_len(&e1));
	FZ_ASSERT(pb_encoded_size(d, msg1) == n1);
	pb_arena_init(&a2, arena2, sizeof(arena2));
	rc = pb_decode(d, msg2, buf_data(&e1), buf_len(&e1), &a2, err,
	               sizeof(err));
	FZ_ASSERT(rc == 0);
	FZ_ASSERT(pb_equal(d, msg1, msg2));
	FZ_ASSERT(pb_equal(d, msg2, msg1));
	buf_init(&e2, 4 * size + 64);
	n2 = pb_encode(d, msg2, &e2);
	FZ_ASSERT(n2 == n1);
	FZ_ASSERT(memcmp(buf_data(&e1), buf_data(&e2), (size_t)n1) == 0);
	buf_free(&e1);
	buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		one(types[i], data, size);
	return 0;
}
