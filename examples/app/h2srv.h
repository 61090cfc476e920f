/*
 * h2srv: abc-app's h2c server (the --grpc-listen port of B and C).
 *
 * HTTP/2 over cleartext with prior knowledge. Requests whose content-type
 * is application/grpc go to the abc.Echo service of abc.proto:
 *   Say    unary: echoes text and seq, adds served_by; --fail-rate makes a
 *          fraction fail with UNAVAILABLE (14);
 *   Count  server streaming: count replies n = 1..count, interval_ms
 *          apart (count <= 10000, interval_ms <= 10000, else
 *          INVALID_ARGUMENT).
 * --latency delays both. Errors are gRPC "trailers-only" answers: unknown
 * method UNIMPLEMENTED (12), compressed or undecodable message, or not
 * exactly one request message INTERNAL (13), request message over 1 MiB
 * RESOURCE_EXHAUSTED (8). Every other request is served by origin.h's
 * endpoints (/ok, /bytes/N, /echo, ...), so h2load and nghttp can use
 * this port too.
 *
 * Contracts: streaming bodies (/bytes, /echo, Count) run in constant memory
 * per stream; /echo returns flow-control credit only as it sends the data
 * back, so a fast uploader cannot make the server buffer more than one
 * stream window.
 */
#ifndef ABC_H2SRV_H
#define ABC_H2SRV_H

#include <stddef.h>

#include "net.h"

/* Listens on <a>. Returns 0, or -1 with a reason in <err>. */
int h2srv_start(const struct net_addr *a, char *err, size_t errlen);

/* Stops listening; sends GOAWAY on every connection and closes it. */
void h2srv_stop(void);

#endif
