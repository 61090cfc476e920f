/*
 * h1srv: abc-app's HTTP/1.1 server (the --listen port of every role).
 *
 * It serves the endpoints of origin.h with keep-alive, pipelining (one
 * request at a time, in order), chunked bodies both ways, and
 * 100-continue. Streaming answers (/bytes, /echo) run in constant memory:
 * output is produced only while the send buffer is below a high-water
 * mark, and reading stops while the input buffer is full.
 *
 * Contracts:
 *  - Malformed requests get 400 and the connection is closed; a head
 *    larger than H1SRV_HEAD_MAX gets 431 and the same.
 *  - A connection idle for H1SRV_IDLE_MS (no bytes either way, no answer
 *    pending) is closed.
 */
#ifndef ABC_H1SRV_H
#define ABC_H1SRV_H

#include <stddef.h>

#include "net.h"

#define H1SRV_HEAD_MAX (16 * 1024)
#define H1SRV_IDLE_MS 60000

/* Listens on <a>. Returns 0, or -1 with a reason in <err>. */
int h1srv_start(const struct net_addr *a, char *err, size_t errlen);

/* Stops listening and closes every connection. */
void h1srv_stop(void);

#endif
