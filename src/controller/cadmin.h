/*
 * cadmin: the controller's admin HTTP server: GET /metrics (Prometheus
 * text: the registry's families and process_*), /ready and /live. It
 * registers destination_keepalive_timeouts_total itself (the process-wide
 * cserver_keepalive_timeouts count, copied at each scrape).
 *
 * Contracts:
 *  - One request per connection, answered with "connection: close": the
 *    admin port is scraped, not browsed. A request head is at most
 *    CADMIN_HEAD_MAX bytes and must arrive within CADMIN_TIMEOUT_MS, which
 *    also bounds the time to write the answer; at most CADMIN_MAX_CONNS
 *    connections are open (more are closed at accept).
 *  - <sync>(arg) runs before each /metrics rendering (to refresh values
 *    read from elsewhere); <ready>(arg) decides /ready (1: 200, else 503).
 */
#ifndef MESHD_CONTROLLER_CADMIN_H
#define MESHD_CONTROLLER_CADMIN_H

#include <stddef.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/sock.h"

#define CADMIN_HEAD_MAX 8192
#define CADMIN_TIMEOUT_MS 10000
#define CADMIN_MAX_CONNS 64
#define CADMIN_OUT_LIMIT (16u << 20)

struct cadmin;

struct cadmin *cadmin_new(struct loop *loop, const struct sock_addr *addr,
                          struct metrics_registry *reg,
                          void (*sync)(void *arg), int (*ready)(void *arg),
                          void *arg, char *err, size_t errlen);

/* The bound address (port 0 resolved). */
const struct sock_addr *cadmin_addr(const struct cadmin *a);

/* Closes the listener and every connection. NULL is a no-op. */
void cadmin_free(struct cadmin *a);

#endif
