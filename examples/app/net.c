/*
 * net: addresses and non-blocking sockets. See net.h for the contract.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net.h"

#define NET_BACKLOG 1024

/* --resolve pins, set at start (see net_pin). */
struct net_pin {
	char host[NET_TEXT_MAX];
	char port[6];
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct net_pin net_pins[NET_PIN_MAX];
static unsigned net_npins;

/* The pin of <host>:<port>, or NULL. */
static struct net_pin *net_pin_find(const char *host, const char *port)
{
	unsigned i;

	for (i = 0; i < net_npins; i++)
		if (!strcasecmp(net_pins[i].host, host) &&
		    !strcmp(net_pins[i].port, port))
			return &net_pins[i];
	return NULL;
}

int net_pin(const char *spec, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2, *ip;
	struct net_pin pin, *slot;
	struct sockaddr_in *in = (struct sockaddr_in *)&pin.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&pin.ss;
	char addr[INET6_ADDRSTRLEN];
	size_t hl, pl, al;
	unsigned long port;

	memset(&pin, 0, sizeof(pin));
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2)
		goto bad;
	hl = (size_t)(c1 - spec);
	pl = (size_t)(c2 - c1 - 1);
	ip = c2 + 1;
	al = strlen(ip);
	if (al >= 2 && ip[0] == '[' && ip[al - 1] == ']') {
		ip++;
		al -= 2;
	}
	if (!hl || hl >= sizeof(pin.host) || spec[0] == '[' || !pl ||
	    pl >= sizeof(pin.port) || strspn(c1 + 1, "0123456789") != pl ||
	    !al || al >= sizeof(addr))
		goto bad;
	memcpy(pin.host, spec, hl);
	memcpy(pin.port, c1 + 1, pl);
	port = strtoul(pin.port, NULL, 10);
	if (port == 0 || port > 65535)
		goto bad;
	memcpy(addr, ip, al);
	addr[al] = '\0';
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		pin.len = sizeof(*in);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		pin.len = sizeof(*in6);
	} else {
		goto bad;
	}
	slot = net_pin_find(pin.host, pin.port);
	if (!slot) {
		if (net_npins == NET_PIN_MAX) {
			snprintf(err, errlen, "at most %d --resolve pins",
			         NET_PIN_MAX);
			return -1;
		}
		slot = &net_pins[net_npins++];
	}
	*slot = pin;
	return 0;
bad:
	snprintf(err, errlen, "bad --resolve \"%s\" (want HOST:PORT:ADDR, "
	         "ADDR an IP literal)", spec);
	return -1;
}

/* Resolves <host> (NULL: any) and <port> into <a>: a pin when there is
 * one, else getaddrinfo. */
static int net_resolve(const char *host, const char *port, struct net_addr *a,
                       char *err, size_t errlen)
{
	const struct net_pin *pin = host ? net_pin_find(host, port) : NULL;
	struct addrinfo hints, *res = NULL;
	int rc;

	if (pin) {
		memcpy(&a->ss, &pin->ss, sizeof(a->ss));
		a->len = pin->len;
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (host ? 0 : AI_PASSIVE);
	if (!host)
		hints.ai_family = AF_INET;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", host ? host : "*",
		         gai_strerror(rc));
		return -1;
	}
	if (res->ai_addrlen > sizeof(a->ss)) {
		freeaddrinfo(res);
		snprintf(err, errlen, "%s: address too long", host);
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Splits "host:port", "[v6]:port" or ":port" held in <buf> (modified in
 * place) into <*host> (NULL when empty) and <*port>. */
static int net_split(char *buf, char **host, char **port, const char *defport)
{
	char *colon;

	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || (close[1] != ':' && close[1] != '\0'))
			return -1;
		*close = '\0';
		*host = buf + 1;
		*port = close[1] ? close + 2 : (char *)defport;
	} else {
		colon = strrchr(buf, ':');
		if (colon && strchr(buf, ':') != colon)
			return -1;      /* bare IPv6 needs brackets */
		if (colon) {
			*colon = '\0';
			*port = colon + 1;
		} else {
			*port = (char *)defport;
		}
		*host = buf[0] ? buf : NULL;
	}
	if (!*port || !**port || strspn(*port, "0123456789") != strlen(*port) ||
	    strlen(*port) > 5)
		return -1;
	return 0;
}

int net_parse_addr(const char *s, struct net_addr *a, char *err,
                   size_t errlen)
{
	char buf[NET_TEXT_MAX], *host, *port;

	memset(a, 0, sizeof(*a));
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);
	if (net_split(buf, &host, &port, NULL) < 0) {
		snprintf(err, errlen, "bad address \"%s\" (want HOST:PORT)", s);
		return -1;
	}
	if (net_resolve(host, port, a, err, errlen) < 0)
		return -1;
	snprintf(a->text, sizeof(a->text), "%s", s);
	return 0;
}

int net_parse_url(const char *url, struct net_addr *a, char *err,
                  size_t errlen)
{
	static const char scheme[] = "http://";
	char buf[NET_TEXT_MAX], *host, *port;
	const char *auth = url + sizeof(scheme) - 1;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
		snprintf(err, errlen, "bad URL \"%s\" (want http://HOST:PORT)",
		         url);
		return -1;
	}
	n = strcspn(auth, "/");
	if (auth[n] && strcmp(auth + n, "/") != 0) {
		snprintf(err, errlen, "URL \"%s\": no path allowed", url);
		return -1;
	}
	if (!n || n >= sizeof(buf)) {
		snprintf(err, errlen, "URL \"%s\": bad authority", url);
		return -1;
	}
	memcpy(buf, auth, n);
	buf[n] = '\0';
	snprintf(a->text, sizeof(a->text), "%s", buf);
	if (net_split(buf, &host, &port, "80") < 0 || !host) {
		snprintf(err, errlen, "URL \"%s\": bad authority", url);
		return -1;
	}
	return net_resolve(host, port, a, err, errlen);
}

int net_listen(const struct net_addr *a, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, NET_BACKLOG) < 0) {
		snprintf(err, errlen, "listen on %s: %s", a->text,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void net_nodelay(int fd)
{
	int one = 1;

	/* best effort: a socket without it still works */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_connect(const struct net_addr *a)
{
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return -errno;
	net_nodelay(fd);
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int net_connect_result(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return -errno;
	return -e;
}

int net_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	net_nodelay(fd);
	return fd;
}

const char *net_peer_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	const void *src;
	unsigned port;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto unknown;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		src = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)&ss;

		src = &in6->sin6_addr;
		port = ntohs(in6->sin6_port);
	} else {
		goto unknown;
	}
	if (!inet_ntop(ss.ss_family, src, ip, sizeof(ip)))
		goto unknown;
	snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	         ip, port);
	return buf;
unknown:
	snprintf(buf, len, "?");
	return buf;
}
