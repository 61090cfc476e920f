/*
 * peer: the gRPC traffic of roles B and C towards each other: abc.Echo/Say
 * --rate times a second, and a server-streaming abc.Echo/Count (5 replies,
 * 10 ms apart) every PEER_COUNT_MS. Every answer is checked (Say: same
 * seq and text; Count: replies 1..5 in order, then status OK) and counted
 * under the targets "say" and "count".
 */
#ifndef ABC_PEER_H
#define ABC_PEER_H

#include <stddef.h>

#define PEER_COUNT_MS 3000

/* Parses <url> (the peer's --grpc-listen as http://HOST:PORT) and starts
 * the traffic when abc.rate > 0. Returns 0, or -1 with <err>. */
int peer_init(const char *url, char *err, size_t errlen);

/* Stops the traffic; calls in flight end as CANCELLED. */
void peer_shutdown(void);

#endif
