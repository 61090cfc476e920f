/*
 * sock: TCP socket addresses and the socket calls the proxy needs (listen,
 * accept, non-blocking connect, SO_ORIGINAL_DST, per-socket options).
 *
 * Contracts:
 *  - Every fd this module creates is non-blocking and close-on-exec, and the
 *    caller owns it (closes it).
 *  - Functions return 0 / an fd on success and -errno on failure; errno
 *    itself is not meant to be read afterwards. Nothing here prints.
 *  - Addresses are IP literals with a port. This module never resolves
 *    names: "localhost:80" is an error, not 127.0.0.1.
 *  - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d). A dual-stack listener
 *    reports IPv4 clients in that form; sock_accept, sock_local_addr,
 *    sock_peer_addr and sock_original_dst turn them into plain AF_INET
 *    addresses, so callers see one form per endpoint (metrics labels,
 *    policy networks). sock_addr_parse keeps "[::ffff:1.2.3.4]:80" as
 *    AF_INET6 (a caller may mean an IPv6 socket), and sock_addr_compare
 *    treats it as equal to "1.2.3.4:80".
 */
#ifndef MESHD_CORE_SOCK_H
#define MESHD_CORE_SOCK_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 socket address. A zeroed struct is "no address"
 * (family AF_UNSPEC, len 0). */
struct sock_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	};                          /* rw */
	socklen_t len;              /* rw: bytes of the union in use */
};

/* Longest text sock_addr_format writes, NUL included:
 * "[" + 45 (INET6_ADDRSTRLEN - 1) + "]:" + 5 + NUL. */
#define SOCK_ADDR_STRLEN 54

/* sock_listen flags */
#define SOCK_F_REUSEPORT 0x1u   /* SO_REUSEPORT: several listeners, one port */
#define SOCK_F_V6ONLY    0x2u   /* IPv6 listener refuses IPv4 (default: both) */

/*
 * Parses "a.b.c.d:port" or "[ipv6]:port" (the brackets are required; no zone
 * ids) with port 0..65535 in decimal, without leading zeros, signs or
 * spaces; port 0 means "any" and only makes sense for listen and bind.
 * sock_addr_parse takes a NUL-terminated string, sock_addr_parsen <n> bytes
 * (which must not contain a NUL).
 * Returns 0, or -EINVAL with a reason in <err> (the input is not echoed:
 * the caller knows it and decides whether to show it). On error <out> is
 * zeroed.
 */
int sock_addr_parse(const char *s, struct sock_addr *out,
                    char *err, size_t errlen);
int sock_addr_parsen(const char *s, size_t n, struct sock_addr *out,
                     char *err, size_t errlen);

/*
 * Writes "1.2.3.4:80" or "[::1]:80" and a NUL into <buf>. Returns the length
 * written (without the NUL), -ENOSPC when <buflen> is too small (buflen >=
 * SOCK_ADDR_STRLEN always suffices) or -EAFNOSUPPORT for anything but
 * AF_INET/AF_INET6; on error <buf> holds "" when <buflen> > 0.
 */
int sock_addr_format(const struct sock_addr *a, char *buf, size_t buflen);

/*
 * Total order over addresses: by IP (IPv4 ordered as its v4-mapped IPv6
 * form, so 1.2.3.4 and ::ffff:1.2.3.4 compare equal), then port, then IPv6
 * scope id. Addresses of other families sort first, among themselves by
 * family only. Returns <0, 0 or >0.
 */
int sock_addr_compare(const struct sock_addr *a, const struct sock_addr *b);

/* Port in host byte order; 0 for other families. */
uint16_t sock_addr_port(const struct sock_addr *a);
/* Sets the port (host byte order); no-op for other families. */
void sock_addr_set_port(struct sock_addr *a, uint16_t port);

/* Turns a v4-mapped AF_INET6 address into AF_INET (same port). Returns 1
 * when it did, 0 when <a> was left alone. */
int sock_addr_unmap(struct sock_addr *a);

/*
 * Creates a listening TCP socket bound to <addr>: SO_REUSEADDR always,
 * SO_REUSEPORT with SOCK_F_REUSEPORT; an IPv6 listener is dual-stack
 * (IPV6_V6ONLY off, whatever the sysctl says) unless SOCK_F_V6ONLY.
 * <backlog> <= 0 means SOMAXCONN.
 * Returns the fd, or -errno with "listen <addr>: <reason>" in <err>
 * (e.g. "listen 0.0.0.0:4143: Address already in use").
 */
int sock_listen(const struct sock_addr *addr, int backlog, unsigned flags,
                char *err, size_t errlen);

/*
 * Accepts one connection (accept4, non-blocking, close-on-exec) and stores
 * the client's address in <peer> when not NULL, v4-mapped form unmapped.
 * Returns the fd or -errno: -EAGAIN when none is waiting; -ECONNABORTED and
 * other per-connection errors mean "try the next one"; -EMFILE/-ENFILE mean
 * the process is out of fds. EINTR is retried here.
 */
int sock_accept(int lfd, struct sock_addr *peer);

/*
 * Starts a non-blocking TCP connect to <dst>, first binding to <src> when
 * not NULL (port 0 there lets the kernel pick the port at connect time,
 * IP_BIND_ADDRESS_NO_PORT). A connection in progress is success: wait for
 * the fd to be writable, then ask sock_connect_result.
 * Returns the fd or -errno (-EINVAL when <src>'s family differs from
 * <dst>'s; an immediate failure such as -ECONNREFUSED or -ENETUNREACH).
 */
int sock_connect(const struct sock_addr *dst, const struct sock_addr *src);

/*
 * Outcome of a non-blocking connect, read once the fd became writable
 * (SO_ERROR, which the read also clears). Returns 0 when connected, or
 * -errno (-ECONNREFUSED, -ETIMEDOUT, ...). Called before the connect
 * finished, it returns 0 although nothing is connected yet.
 */
int sock_connect_result(int fd);

/*
 * For an accepted socket <fd>: where the client meant to connect before an
 * iptables/nft REDIRECT or DNAT sent it to us. SO_ORIGINAL_DST for IPv4
 * connections (also on a dual-stack IPv6 socket carrying one) and
 * IP6T_SO_ORIGINAL_DST for IPv6. (On a socket we connected, conntrack would
 * answer with our own peer address: not meaningful, do not ask.)
 * Returns 0 with <out> set, or -errno with <out> untouched: -ENOENT when no
 * redirect happened (no conntrack entry, conntrack not loaded, or the
 * original destination is the socket's own address).
 */
int sock_original_dst(int fd, struct sock_addr *out);

/* getsockname / getpeername, v4-mapped form unmapped. 0 or -errno. */
int sock_local_addr(int fd, struct sock_addr *out);
int sock_peer_addr(int fd, struct sock_addr *out);

/* TCP_NODELAY on. 0 or -errno. */
int sock_set_nodelay(int fd);

/*
 * SO_KEEPALIVE on, probing after <idle_s> seconds of silence, every
 * <intvl_s> seconds, giving up after <cnt> unanswered probes. A value <= 0
 * keeps the system default for that parameter. 0 or -errno.
 */
int sock_set_keepalive(int fd, int idle_s, int intvl_s, int cnt);

/* SO_LINGER {on, 0}: close() then resets the connection (RST) instead of
 * a graceful FIN. 0 or -errno. */
int sock_set_linger0(int fd);

/* Sends FIN (shutdown SHUT_WR); reading stays possible. 0 or -errno. */
int sock_shutdown_write(int fd);

#endif
