/*
 * net: addresses and non-blocking TCP sockets for abc-app.
 *
 * Contracts:
 *  - Addresses are "HOST:PORT", "[V6]:PORT" or ":PORT" (every interface);
 *    URLs are "http://HOST[:PORT][/]". HOST is an IP literal or a name,
 *    resolved once, here, with getaddrinfo (blocking: call at start only).
 *  - Every socket returned is non-blocking and close-on-exec, with
 *    TCP_NODELAY set on connected ones. The caller owns and closes it.
 *  - Failures return -1 (or -errno where stated) with a one-line reason in
 *    <err> when the function takes one.
 */
#ifndef ABC_NET_H
#define ABC_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_TEXT_MAX 128

struct net_addr {
	struct sockaddr_storage ss;   /* ro */
	socklen_t len;                /* ro */
	char text[NET_TEXT_MAX];      /* ro: "host:port" as written */
};

/* Parses "HOST:PORT"; ":PORT" means every IPv4 interface. */
int net_parse_addr(const char *s, struct net_addr *a, char *err,
                   size_t errlen);

/* Parses "http://HOST[:PORT][/]" (port 80 by default); a->text becomes the
 * authority, fit for a Host or :authority header. */
int net_parse_url(const char *url, struct net_addr *a, char *err,
                  size_t errlen);

/* A listening socket bound to <a> (SO_REUSEADDR); the fd or -1. */
int net_listen(const struct net_addr *a, char *err, size_t errlen);

/* Starts connecting to <a>: the fd (connection possibly still in
 * progress: wait for writability, then net_connect_result) or -errno. */
int net_connect(const struct net_addr *a);

/* 0 once a connection started by net_connect is up, else -errno. */
int net_connect_result(int fd);

/* Accepts one connection: the fd, or -errno (-EAGAIN when none is
 * waiting). */
int net_accept(int lfd);

/* "ip:port" of the peer of <fd> into <buf> ("?" when unknown). */
const char *net_peer_str(int fd, char *buf, size_t len);

#endif
