/*
 * front: role A. It drives steady HTTP/1.1 traffic to B and C (GET /hello
 * on each, --rate times a second, over keep-alive connections) and builds
 * its own front page from their answers.
 *
 * Contracts:
 *  - front_page_start asks B and C for /hello and later calls <done> once,
 *    from the loop (never from inside front_page_start), with an
 *    ORIGIN_FIXED answer: 200 and JSON when both answered 2xx, 502 and the
 *    same JSON otherwise. <done> may free the caller.
 *  - After front_page_cancel, <done> is never called; the page frees
 *    itself when its requests end.
 */
#ifndef ABC_FRONT_H
#define ABC_FRONT_H

#include <stddef.h>

#include "origin.h"

struct front_page;

typedef void front_page_fn(void *arg, const struct origin_resp *r);

/* Parses the URLs of B and C (either may be NULL: not configured), and
 * starts the traffic when abc.rate > 0. Returns 0, or -1 with <err>. */
int front_init(const char *b_url, const char *c_url, char *err,
               size_t errlen);

/* Starts a page; NULL when memory is short. */
struct front_page *front_page_start(front_page_fn *done, void *arg);

void front_page_cancel(struct front_page *p);

/* Stops the traffic and fails every request in flight. */
void front_shutdown(void);

#endif
