/*
 * sock: address parsing/formatting and thin, errno-preserving wrappers
 * around the socket calls meshd makes.
 *
 * IMPLEMENTATION NOTES
 * Syscalls get the address length from the family, not from sock_addr.len,
 * so a struct filled by hand (family and port only) still works.
 * The netfilter constants come from the kernel ABI and are spelled out here
 * because musl has no <linux/netfilter*.h>.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"

/* <linux/netfilter_ipv4.h>: getsockopt(SOL_IP, SO_ORIGINAL_DST) */
#define SOCK_SO_ORIGINAL_DST 80
/* <linux/netfilter_ipv6/ip6_tables.h>: getsockopt(SOL_IPV6, ...) */
#define SOCK_IP6T_SO_ORIGINAL_DST 80
/* <linux/in.h>, Linux 4.2+: defer the port choice of bind() to connect() */
#define SOCK_IP_BIND_ADDRESS_NO_PORT 24

/* Bytes of the sockaddr for <a>'s family; 0 when not an IP family. */
static socklen_t sock_addr_size(const struct sock_addr *a)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		return sizeof(a->sin);
	case AF_INET6:
		return sizeof(a->sin6);
	default:
		return 0;
	}
}

static int sock_parse_fail(struct sock_addr *out, char *err, size_t errlen,
                           const char *why)
{
	memset(out, 0, sizeof(*out));
	if (errlen)
		snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* Decimal 0..65535, no sign, no leading zero, no spaces. */
static const char *sock_parse_port(const char *p, size_t n, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return "missing port after ':'";
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return "port is not a decimal number";
	}
	if (n > 1 && p[0] == '0')
		return "port has a leading zero";
	if (n > 5)
		return "port out of range (0-65535)";
	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	if (v > 65535)
		return "port out of range (0-65535)";
	*port = (uint16_t)v;
	return NULL;
}

int sock_addr_parse(const char *s, struct sock_addr *out,
                    char *err, size_t errlen)
{
	return sock_addr_parsen(s, strlen(s), out, err, errlen);
}

int sock_addr_parsen(const char *s, size_t n, struct sock_addr *out,
                     char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN];
	const char *h, *colon, *why;
	size_t hlen, i, ncolon = 0;
	uint16_t port = 0;
	int dotted = 1;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return sock_parse_fail(out, err, errlen, "empty address");
	if (memchr(s, '\0', n))
		return sock_parse_fail(out, err, errlen,
		                       "address contains a NUL byte");

	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb)
			return sock_parse_fail(out, err, errlen,
			                       "missing ']' after IPv6 address");
		h = s + 1;
		hlen = (size_t)(rb - h);
		if (rb + 1 == s + n)
			return sock_parse_fail(out, err, errlen,
			                       "missing port (expected [ipv6]:port)");
		if (rb[1] != ':')
			return sock_parse_fail(out, err, errlen,
			                       "expected ':' after ']'");
		colon = rb + 1;
		if (hlen == 0)
			return sock_parse_fail(out, err, errlen,
			                       "empty IPv6 address in []");
		if (memchr(h, '%', hlen))
			return sock_parse_fail(out, err, errlen,
			                       "IPv6 zone ids are not supported");
		if (hlen >= sizeof(host))
			return sock_parse_fail(out, err, errlen,
			                       "IPv6 address too long");
		memcpy(host, h, hlen);
		host[hlen] = '\0';
		why = sock_parse_port(colon + 1, (size_t)(s + n - colon - 1),
		                      &port);
		if (why)
			return sock_parse_fail(out, err, errlen, why);
		if (inet_pton(AF_INET6, host, &out->sin6.sin6_addr) != 1)
			return sock_parse_fail(out, err, errlen,
			                       "not a valid IPv6 address");
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = htons(port);
		out->len = sizeof(out->sin6);
		return 0;
	}

	colon = NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == ':') {
			colon = s + i;
			ncolon++;
		}
	}
	if (ncolon > 1)
		return sock_parse_fail(out, err, errlen,
		                       "too many ':' (IPv6 addresses need "
		                       "brackets, as in [::1]:80)");
	if (!colon)
		return sock_parse_fail(out, err, errlen,
		                       "missing port (expected ip:port)");
	h = s;
	hlen = (size_t)(colon - s);
	if (hlen == 0)
		return sock_parse_fail(out, err, errlen,
		                       "missing IP address before ':'");
	for (i = 0; i < hlen; i++) {
		if (h[i] != '.' && (h[i] < '0' || h[i] > '9'))
			dotted = 0;
	}
	if (!dotted)
		return sock_parse_fail(out, err, errlen,
		                       "not an IP address (host names are "
		                       "not resolved here)");
	if (hlen >= sizeof(host))
		return sock_parse_fail(out, err, errlen,
		                       "not a valid IPv4 address");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	why = sock_parse_port(colon + 1, (size_t)(s + n - colon - 1), &port);
	if (why)
		return sock_parse_fail(out, err, errlen, why);
	/* inet_pton(AF_INET) takes exactly four decimal parts, each 0-255,
	 * without leading zeros, in both glibc and musl. */
	if (inet_pton(AF_INET, host, &out->sin.sin_addr) != 1)
		return sock_parse_fail(out, err, errlen,
		                       "not a valid IPv4 address");
	out->sin.sin_family = AF_INET;
	out->sin.sin_port = htons(port);
	out->len = sizeof(out->sin);
	return 0;
}

int sock_addr_format(const struct sock_addr *a, char *buf, size_t buflen)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (buflen)
		buf[0] = '\0';
	switch (a->sa.sa_family) {
	case AF_INET:
		if (!inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof(ip)))
			return -EAFNOSUPPORT;
		n = snprintf(buf, buflen, "%s:%u", ip,
		             (unsigned)ntohs(a->sin.sin_port));
		break;
	case AF_INET6:
		if (!inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof(ip)))
			return -EAFNOSUPPORT;
		n = snprintf(buf, buflen, "[%s]:%u", ip,
		             (unsigned)ntohs(a->sin6.sin6_port));
		break;
	default:
		return -EAFNOSUPPORT;
	}
	if (n < 0 || (size_t)n >= buflen) {
		if (buflen)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return n;
}

/* Comparison key: the address as 16 bytes of IPv6 (IPv4 v4-mapped). */
static int sock_addr_key(const struct sock_addr *a, unsigned char key[16],
                         uint16_t *port, uint32_t *scope)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a->sin.sin_addr, 4);
		*port = ntohs(a->sin.sin_port);
		*scope = 0;
		return 1;
	case AF_INET6:
		memcpy(key, &a->sin6.sin6_addr, 16);
		*port = ntohs(a->sin6.sin6_port);
		*scope = a->sin6.sin6_scope_id;
		return 1;
	default:
		return 0;
	}
}

int sock_addr_compare(const struct sock_addr *a, const struct sock_addr *b)
{
	unsigned char ka[16], kb[16];
	uint16_t pa = 0, pb = 0;
	uint32_t sa = 0, sb = 0;
	int ipa, ipb, c;

	ipa = sock_addr_key(a, ka, &pa, &sa);
	ipb = sock_addr_key(b, kb, &pb, &sb);
	if (!ipa || !ipb) {
		if (ipa != ipb)
			return ipa - ipb;
		return (int)a->sa.sa_family - (int)b->sa.sa_family;
	}
	c = memcmp(ka, kb, 16);
	if (c)
		return c;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return 0;
}

uint16_t sock_addr_port(const struct sock_addr *a)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		return ntohs(a->sin.sin_port);
	case AF_INET6:
		return ntohs(a->sin6.sin6_port);
	default:
		return 0;
	}
}

void sock_addr_set_port(struct sock_addr *a, uint16_t port)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		a->sin.sin_port = htons(port);
		break;
	case AF_INET6:
		a->sin6.sin6_port = htons(port);
		break;
	default:
		break;
	}
}

int sock_addr_unmap(struct sock_addr *a)
{
	struct sockaddr_in sin;

	if (a->sa.sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr))
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = a->sin6.sin6_port;
	memcpy(&sin.sin_addr, a->sin6.sin6_addr.s6_addr + 12, 4);
	memset(a, 0, sizeof(*a));
	a->sin = sin;
	a->len = sizeof(a->sin);
	return 1;
}

/* Closes <fd> keeping errno, writes "listen <addr>: [<step>: ]<reason>". */
static int sock_listen_fail(int fd, const char *text, const char *step,
                            char *err, size_t errlen)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	if (errlen)
		snprintf(err, errlen, "listen %s: %s%s%s", text,
		         step ? step : "", step ? ": " : "", strerror(e));
	return -e;
}

static int sock_setopt_int(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value));
}

int sock_listen(const struct sock_addr *addr, int backlog, unsigned flags,
                char *err, size_t errlen)
{
	char text[SOCK_ADDR_STRLEN];
	socklen_t len = sock_addr_size(addr);
	int fd;

	if (!len || sock_addr_format(addr, text, sizeof(text)) < 0) {
		if (errlen)
			snprintf(err, errlen,
			         "listen: not an IPv4 or IPv6 address");
		return -EAFNOSUPPORT;
	}
	if (backlog <= 0)
		backlog = SOMAXCONN;

	fd = socket(addr->sa.sa_family,
	            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return sock_listen_fail(fd, text, "socket", err, errlen);
	if (sock_setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
		return sock_listen_fail(fd, text, "SO_REUSEADDR", err, errlen);
	if ((flags & SOCK_F_REUSEPORT) &&
	    sock_setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0)
		return sock_listen_fail(fd, text, "SO_REUSEPORT", err, errlen);
	if (addr->sa.sa_family == AF_INET6 &&
	    sock_setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	                    (flags & SOCK_F_V6ONLY) ? 1 : 0) < 0)
		return sock_listen_fail(fd, text, "IPV6_V6ONLY", err, errlen);
	if (bind(fd, &addr->sa, len) < 0)
		return sock_listen_fail(fd, text, NULL, err, errlen);
	if (listen(fd, backlog) < 0)
		return sock_listen_fail(fd, text, NULL, err, errlen);
	return fd;
}

int sock_accept(int lfd, struct sock_addr *peer)
{
	struct sock_addr tmp;
	socklen_t len;
	int fd;

	do {
		memset(&tmp, 0, sizeof(tmp));
		len = sizeof(tmp.sin6);
		fd = accept4(lfd, &tmp.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	if (peer) {
		tmp.len = len < sizeof(tmp.sin6) ? len : sizeof(tmp.sin6);
		sock_addr_unmap(&tmp);
		*peer = tmp;
	}
	return fd;
}

int sock_connect(const struct sock_addr *dst, const struct sock_addr *src)
{
	socklen_t len = sock_addr_size(dst);
	int fd, e;

	if (!len)
		return -EAFNOSUPPORT;
	if (src && src->sa.sa_family != dst->sa.sa_family)
		return -EINVAL;
	fd = socket(dst->sa.sa_family,
	            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	if (src) {
		/* Best effort: without it the port is picked at bind time. */
		if (sock_addr_port(src) == 0)
			(void)sock_setopt_int(fd, IPPROTO_IP,
			                      SOCK_IP_BIND_ADDRESS_NO_PORT, 1);
		if (bind(fd, &src->sa, len) < 0)
			goto fail;
	}
	if (connect(fd, &dst->sa, len) == 0 || errno == EINPROGRESS ||
	    errno == EINTR) /* EINTR: the connect goes on asynchronously */
		return fd;
fail:
	e = errno;
	close(fd);
	return -e;
}

int sock_connect_result(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return -soerr;
}

static int sock_name(int fd, struct sock_addr *out, int peer)
{
	struct sock_addr tmp;
	socklen_t len = sizeof(tmp.sin6);
	int rc;

	memset(&tmp, 0, sizeof(tmp));
	rc = peer ? getpeername(fd, &tmp.sa, &len)
	          : getsockname(fd, &tmp.sa, &len);
	if (rc < 0)
		return -errno;
	tmp.len = len < sizeof(tmp.sin6) ? len : sizeof(tmp.sin6);
	sock_addr_unmap(&tmp);
	*out = tmp;
	return 0;
}

int sock_local_addr(int fd, struct sock_addr *out)
{
	return sock_name(fd, out, 0);
}

int sock_peer_addr(int fd, struct sock_addr *out)
{
	return sock_name(fd, out, 1);
}

int sock_original_dst(int fd, struct sock_addr *out)
{
	struct sock_addr local, orig;
	socklen_t len;
	int rc;

	rc = sock_local_addr(fd, &local); /* unmapped: tells v4 from v6 */
	if (rc < 0)
		return rc;
	memset(&orig, 0, sizeof(orig));
	if (local.sa.sa_family == AF_INET) {
		/* Also right on a dual-stack IPv6 socket carrying IPv4: the
		 * kernel hands SOL_IP options of IPv6 TCP sockets to IPv4. */
		len = sizeof(orig.sin);
		rc = getsockopt(fd, IPPROTO_IP, SOCK_SO_ORIGINAL_DST,
		                &orig.sin, &len);
	} else if (local.sa.sa_family == AF_INET6) {
		len = sizeof(orig.sin6);
		rc = getsockopt(fd, IPPROTO_IPV6, SOCK_IP6T_SO_ORIGINAL_DST,
		                &orig.sin6, &len);
	} else {
		return -EAFNOSUPPORT;
	}
	if (rc < 0) {
		/* ENOENT: no conntrack entry. ENOPROTOOPT: no conntrack for
		 * this family at all. Either way nothing was redirected. */
		if (errno == ENOENT || errno == ENOPROTOOPT)
			return -ENOENT;
		return -errno;
	}
	if (orig.sa.sa_family != local.sa.sa_family || !sock_addr_size(&orig))
		return -EPROTO;
	orig.len = sock_addr_size(&orig);
	if (sock_addr_compare(&orig, &local) == 0)
		return -ENOENT;
	*out = orig;
	return 0;
}

int sock_set_nodelay(int fd)
{
	if (sock_setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1) < 0)
		return -errno;
	return 0;
}

int sock_set_keepalive(int fd, int idle_s, int intvl_s, int cnt)
{
	if (sock_setopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) < 0)
		return -errno;
	if (idle_s > 0 && sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE,
	                                  idle_s) < 0)
		return -errno;
	if (intvl_s > 0 && sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL,
	                                   intvl_s) < 0)
		return -errno;
	if (cnt > 0 && sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, cnt) < 0)
		return -errno;
	return 0;
}

int sock_set_linger0(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return -errno;
	return 0;
}

int sock_shutdown_write(int fd)
{
	if (shutdown(fd, SHUT_WR) < 0)
		return -errno;
	return 0;
}
