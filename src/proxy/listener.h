/*
 * listener: the proxy's listening sockets (outbound, inbound, one per
 * explicit TCP route, admin) and the accept loop.
 *
 * Accepting is bounded: at most LISTENER_ACCEPT_BURST connections per
 * wakeup (fairness), and never more than cfg.max_conns downstream
 * connections alive: at the cap every proxy listener stops watching its
 * socket (the kernel's backlog holds new clients) until a connection ends.
 * The admin listener is not subject to the cap (operators and probes must
 * still get in) but admits at most ADMIN_MAX_CONNS of its own.
 */
#ifndef MESHD_PROXY_LISTENER_H
#define MESHD_PROXY_LISTENER_H

#include <ev.h>

#include "core/sock.h"

struct proxy;

#define LISTENER_ACCEPT_BURST 64

enum listener_kind {
	LISTENER_OUTBOUND = 0,
	LISTENER_INBOUND,
	LISTENER_TCP_ROUTE,   /* explicit outbound opaque TCP route */
	LISTENER_ADMIN,
};

struct listener {
	struct proxy *px;            /* ro */
	enum listener_kind kind;     /* ro */
	struct sock_addr addr;       /* ro: bound address (port resolved) */
	int fd;                      /* ro */
	ev_io io;                    /* private */
	int paused;                  /* ro */
	struct listener *next;       /* private: px->listeners */
};

/* "outbound", "inbound", "tcp-route", "admin". */
const char *listener_kind_str(enum listener_kind k);

/*
 * Binds and starts a listener of <kind> on <addr> and links it into
 * px->listeners. Returns it, or NULL with a reason in <err>.
 */
struct listener *listener_add(struct proxy *px, enum listener_kind kind,
                              const struct sock_addr *addr, char *err,
                              size_t errlen);
/* The same with sock_listen flags (SOCK_F_V6ONLY...). */
struct listener *listener_add_flags(struct proxy *px, enum listener_kind kind,
                                    const struct sock_addr *addr,
                                    unsigned flags, char *err, size_t errlen);

/* Stops watching the proxy listeners (not admin) / watches them again. */
void listener_pause(struct proxy *px);
void listener_resume(struct proxy *px);

/* Closes the proxy listeners (drain start); admin stays. */
void listener_close_proxy(struct proxy *px);

/* Closes and frees every listener. */
void listener_free_all(struct proxy *px);

#endif
