/*
 * h2cli: a gRPC client channel over h2c (prior knowledge) to one server,
 * for B's and C's calls to each other.
 *
 * Calls share one connection, opened on demand; after a GOAWAY (or a
 * failure) the next call opens a new one while the old one finishes its
 * streams.
 *
 * Contracts:
 *  - h2cli_call queues the call; nothing is sent and no callback runs
 *    before the current callback returns to the loop.
 *  - <on_msg> runs once per response message (the bytes are valid during
 *    the call only); returning -1 fails the call with INTERNAL and cancels
 *    the stream. <done> runs exactly once per accepted call, with the
 *    gRPC status (grpc-status from the server; or UNAVAILABLE for a lost
 *    connection or refused stream, DEADLINE_EXCEEDED after <timeout_ms>,
 *    INTERNAL for a malformed answer, the usual mapping of an HTTP
 *    status) and a message ("" when none).
 *  - Callbacks run from inside nghttp2: they MUST NOT call h2cli_free. They
 *    may call h2cli_call.
 */
#ifndef ABC_H2CLI_H
#define ABC_H2CLI_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* Largest response message accepted. */
#define H2CLI_MSG_MAX (1024 * 1024)

typedef int h2cli_msg_fn(void *arg, const uint8_t *msg, size_t len);
typedef void h2cli_done_fn(void *arg, int status, const char *message);

struct h2cli;

/* A channel to <a>; NULL when memory is short. */
struct h2cli *h2cli_new(const struct net_addr *a);

/*
 * Calls <path> ("/pkg.Service/Method") with the serialized request
 * <msg> (copied). Returns 0, or -1 when it cannot even be queued (no
 * memory, too many calls in flight): then no callback runs.
 */
int h2cli_call(struct h2cli *h, const char *path, const uint8_t *msg,
               size_t len, uint64_t timeout_ms, h2cli_msg_fn *on_msg,
               h2cli_done_fn *done, void *arg);

/* Fails the calls in flight (CANCELLED; their <done> runs now), closes
 * the connections and frees <h>. Accepts NULL. */
void h2cli_free(struct h2cli *h);

#endif
