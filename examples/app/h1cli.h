/*
 * h1cli: a small HTTP/1.1 client for role A: GET requests to one upstream
 * over keep-alive connections (one request per connection at a time, up
 * to H1CLI_MAX_BUSY at once, H1CLI_MAX_IDLE kept open between requests).
 *
 * Contracts:
 *  - <done> is called exactly once per accepted request, always from the
 *    loop, never from inside h1cli_get. <status> is the HTTP status, or 0
 *    when there was no valid answer (then <body> says why). <body> holds
 *    at most H1CLI_BODY_MAX bytes of the answer and is valid only during
 *    the call.
 *  - A request that fails on a reused connection before any byte of the
 *    answer came back (the server closed it while idle) is retried once on
 *    a fresh connection: GET is idempotent.
 */
#ifndef ABC_H1CLI_H
#define ABC_H1CLI_H

#include <stdint.h>

#include "net.h"

#define H1CLI_BODY_MAX 256
#define H1CLI_MAX_BUSY 256
#define H1CLI_MAX_IDLE 16

typedef void h1cli_done_fn(void *arg, int status, const char *body,
                           size_t len);

struct h1cli_conn;

struct h1cli_upstream {
	struct net_addr addr;        /* ro: where, and the Host header */
	struct h1cli_conn *idle;     /* private: open, unused connections */
	struct h1cli_conn *busy;     /* private: connections with a request */
	unsigned nidle;              /* private */
	unsigned nbusy;              /* private */
};

/* Prepares <u> for the upstream at <a>. */
void h1cli_init(struct h1cli_upstream *u, const struct net_addr *a);

/*
 * Sends GET <path> (at most 200 bytes) and calls <done>(<arg>, ...) with
 * the answer, or with status 0 after <timeout_ms>. Returns 0, or -1 when
 * too many requests are in flight (then <done> is never called).
 */
int h1cli_get(struct h1cli_upstream *u, const char *path,
              uint64_t timeout_ms, h1cli_done_fn *done, void *arg);

/* Fails the requests in flight (their <done> runs now) and closes every
 * connection. */
void h1cli_close(struct h1cli_upstream *u);

#endif
