/*
 * pb: the wire formats of abc.proto, written by hand: protobuf encoding of
 * its four messages and gRPC's length-prefixed message framing.
 *
 * Contracts:
 *  - Nothing here allocates. Encoders write into the caller's array and
 *    return the bytes written, or -1 when it is too small. Decoders read
 *    the caller's bytes; decoded strings are slices into them.
 *  - Decoding is bounds-checked against <len> and never trusts a length
 *    prefix; it follows protobuf's rules: unknown fields (and known ones
 *    of an unexpected wire type) are skipped, groups included; the last
 *    occurrence of a scalar wins; a uint32 field keeps the low 32 bits of
 *    its varint. Decoders return 0, or -1 on malformed input: truncated
 *    data, a varint longer than 10 bytes, field number 0, an unbalanced
 *    group, wire types 6 and 7, or a string field that is not UTF-8.
 *  - Encoders omit fields holding their default value (proto3).
 */
#ifndef ABC_PB_H
#define ABC_PB_H

#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"

/* abc.SayRequest: text = 1, seq = 2 */
struct pb_say_request {
	struct str text;
	int64_t seq;
};

/* abc.SayReply: text = 1, seq = 2, served_by = 3 */
struct pb_say_reply {
	struct str text;
	int64_t seq;
	struct str served_by;
};

/* abc.CountRequest: count = 1, interval_ms = 2 */
struct pb_count_request {
	uint32_t count;
	uint32_t interval_ms;
};

/* abc.CountReply: n = 1, served_by = 2 */
struct pb_count_reply {
	uint32_t n;
	struct str served_by;
};

int pb_say_request_decode(const uint8_t *p, size_t len,
                          struct pb_say_request *m);
int pb_say_reply_decode(const uint8_t *p, size_t len, struct pb_say_reply *m);
int pb_count_request_decode(const uint8_t *p, size_t len,
                            struct pb_count_request *m);
int pb_count_reply_decode(const uint8_t *p, size_t len,
                          struct pb_count_reply *m);

ssize_t pb_say_request_encode(const struct pb_say_request *m,
                              uint8_t *out, size_t cap);
ssize_t pb_say_reply_encode(const struct pb_say_reply *m,
                            uint8_t *out, size_t cap);
ssize_t pb_count_request_encode(const struct pb_count_request *m,
                                uint8_t *out, size_t cap);
ssize_t pb_count_reply_encode(const struct pb_count_reply *m,
                              uint8_t *out, size_t cap);

/* Upper bound of the encoded size of a message whose string fields hold
 * <strbytes> bytes in all. */
#define PB_ENCODED_MAX(strbytes) ((size_t)(strbytes) + 48)

/* 1 when <s> is well-formed UTF-8 (no overlong forms, no surrogates). */
int pb_utf8_valid(struct str s);

/*
 * gRPC message framing: a 1-byte compressed flag, a 4-byte big-endian
 * length, then the message.
 */
#define PB_GRPC_HDR 5

/* Writes the 5-byte prefix of an uncompressed message of <len> bytes. */
void pb_grpc_prefix(uint8_t *hdr, uint32_t len);

/*
 * Looks for one framed message at the start of <p>. Returns the bytes it
 * spans (prefix included) and sets <*msg>, <*msglen>, <*compressed>;
 * returns 0 when more bytes are needed and -1 when the flag byte is
 * neither 0 nor 1 or the message would be longer than <max>.
 */
ssize_t pb_grpc_next(const uint8_t *p, size_t len, size_t max,
                     const uint8_t **msg, size_t *msglen, int *compressed);

/* gRPC status codes used by abc-app. */
enum pb_grpc_status {
	PB_GRPC_OK = 0,
	PB_GRPC_CANCELLED = 1,
	PB_GRPC_UNKNOWN = 2,
	PB_GRPC_INVALID_ARGUMENT = 3,
	PB_GRPC_DEADLINE_EXCEEDED = 4,
	PB_GRPC_RESOURCE_EXHAUSTED = 8,
	PB_GRPC_UNIMPLEMENTED = 12,
	PB_GRPC_INTERNAL = 13,
	PB_GRPC_UNAVAILABLE = 14,
};

/* The canonical name of <status> ("OK", "UNAVAILABLE", ...). */
const char *pb_grpc_status_str(int status);

/*
 * Percent-encodes <in> for a grpc-message header (bytes outside
 * 0x20..0x7e, and '%', become %XX) into <out>, NUL-terminated and cut at
 * whole escapes when <cap> is short. Returns the length written.
 */
size_t pb_grpc_message_encode(const char *in, char *out, size_t cap);

#endif
