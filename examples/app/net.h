/*
 * net: addresses and non-blocking TCP sockets for abc-app.
 *
 * Contracts:
 *  - Addresses are "HOST:PORT", "[V6]:PORT" or ":PORT" (every interface);
 *    URLs are "http://HOST[:PORT][/]". HOST is an IP literal or a name,
 *    resolved once, here: first against the pins (net_pin, --resolve),
 *    then with getaddrinfo (blocking: call at start only).
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

#define NET_PIN_MAX 16

/*
 * Pins the name HOST with port PORT to the IP literal ADDR, as curl's
 * --resolve: <spec> is "HOST:PORT:ADDR" (ADDR an IPv4 literal, or IPv6
 * with or without brackets). Every later net_parse_addr and net_parse_url
 * of HOST:PORT (HOST compared case-insensitively) connects to ADDR:PORT
 * while a->text keeps the name, so that Host and :authority carry it:
 * how a client without DNS calls a meshed service by name. A second pin of
 * the same HOST:PORT replaces the first. Returns 0, or -1 with <err> (bad
 * spec, more than NET_PIN_MAX pins).
 */
int net_pin(const char *spec, char *err, size_t errlen);

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
