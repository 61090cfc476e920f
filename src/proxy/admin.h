/*
 * admin: the proxy's admin HTTP/1.1 server (--admin-addr, default
 * 0.0.0.0:4191), parsed with the same strict core/http1 parser.
 *
 *   GET  /metrics                   Prometheus text: the registry, then
 *                                   process_* metrics
 *   GET  /ready                     200 "ready" once every readiness gate
 *                                   is open (listeners today; identity
 *                                   later), 503 before and while draining
 *   GET  /live                      200 "live"
 *   GET  /log-level                 the current level spec
 *   PUT  /log-level                 body = new spec (log_set_spec); 400
 *                                   with the reason when invalid
 *        (/proxy-log-level is accepted too: Linkerd's path)
 *   POST /shutdown                  with --enable-shutdown and from a
 *                                   loopback peer only: starts the graceful
 *                                   shutdown (202); 403 from elsewhere,
 *                                   404 when disabled
 *   anything else                   404 (405 for a known path with another
 *                                   method)
 *
 * Limits: ADMIN_MAX_CONNS connections, 16 KiB heads, 4 KiB bodies
 * (Content-Length only), a 10 s head timeout and 60 s keep-alive.
 */
#ifndef MESHD_PROXY_ADMIN_H
#define MESHD_PROXY_ADMIN_H

#include "core/sock.h"

struct proxy;
struct admin;

#define ADMIN_MAX_CONNS 64

/* Creates the admin server state of <px> (the listener is listener.c's).
 * NULL when memory is short. */
struct admin *admin_new(struct proxy *px);

/* Closes every admin connection and frees <a>. Accepts NULL. */
void admin_free(struct admin *a);

/* Takes over an accepted admin socket. */
void admin_accept(struct admin *a, int fd, const struct sock_addr *peer);

#endif
