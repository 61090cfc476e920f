/*
 * Unit tests for core/sock: address parsing and formatting, and real
 * sockets over loopback (127.0.0.1, 127.0.0.2 and ::1; the IPv6 tests skip
 * with a diagnostic when ::1 is not configured). A real SO_ORIGINAL_DST
 * redirect needs network namespaces and lives in the e2e tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "core/sock.h"
#include "core/util.h"

/* Waits up to <ms> for <events> on <fd>; returns revents (0 on timeout). */
static short t_sock_wait(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	if (poll(&p, 1, ms) != 1)
		return 0;
	return p.revents;
}

static struct sock_addr t_sock_addr(const char *s)
{
	struct sock_addr a;
	char err[128];

	if (sock_addr_parse(s, &a, err, sizeof(err)) != 0)
		printf("#   cannot parse %s: %s\n", s, err);
	return a;
}

/* Listens on <text> (port 0 allowed) and returns the fd; stores the bound
 * address in <bound>. */
static int t_sock_listen(const char *text, unsigned flags,
                         struct sock_addr *bound)
{
	struct sock_addr a = t_sock_addr(text);
	char err[128];
	int fd = sock_listen(&a, 16, flags, err, sizeof(err));

	if (fd < 0) {
		printf("#   %s\n", err);
		return fd;
	}
	if (sock_local_addr(fd, bound) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int t_sock_is_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	return fl >= 0 && fdfl >= 0 && (fl & O_NONBLOCK) &&
	       (fdfl & FD_CLOEXEC);
}

/* 1 when ::1 can be bound here; prints the skip diagnostic otherwise. */
static int t_sock_have_v6(const char *test)
{
	struct sock_addr a = t_sock_addr("[::1]:0");
	char err[128];
	int fd = sock_listen(&a, 1, 0, err, sizeof(err));

	if (fd < 0) {
		printf("# skip %s: ::1 not configured (%s)\n", test, err);
		return 0;
	}
	close(fd);
	return 1;
}

TEST(parse_format_round_trips)
{
	static const struct {
		const char *in, *out;
		int family;
		unsigned port;
	} cases[] = {
		{ "1.2.3.4:80", "1.2.3.4:80", AF_INET, 80 },
		{ "0.0.0.0:4143", "0.0.0.0:4143", AF_INET, 4143 },
		{ "127.0.0.1:0", "127.0.0.1:0", AF_INET, 0 },
		{ "255.255.255.255:65535", "255.255.255.255:65535", AF_INET,
		  65535 },
		{ "[::1]:8080", "[::1]:8080", AF_INET6, 8080 },
		{ "[::]:4143", "[::]:4143", AF_INET6, 4143 },
		{ "[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443", AF_INET6,
		  443 },
		{ "[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]:80", AF_INET6, 80 },
		{ "[fe80::1]:1", "[fe80::1]:1", AF_INET6, 1 },
	};
	struct sock_addr a, b;
	char err[128], buf[SOCK_ADDR_STRLEN];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		err[0] = '\0';
		CHECK(sock_addr_parse(cases[i].in, &a, err, sizeof(err)) == 0);
		CHECK_STR(err, "");
		CHECK(a.sa.sa_family == cases[i].family);
		CHECK(a.len == (cases[i].family == AF_INET ? sizeof(a.sin)
		                                           : sizeof(a.sin6)));
		CHECK(sock_addr_port(&a) == cases[i].port);
		CHECK(sock_addr_format(&a, buf, sizeof(buf)) ==
		      (int)strlen(cases[i].out));
		CHECK_STR(buf, cases[i].out);
		CHECK(sock_addr_parse(buf, &b, err, sizeof(err)) == 0);
		CHECK(sock_addr_compare(&a, &b) == 0);
		CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	}
	/* Length-delimited input: only the first n bytes count. */
	CHECK(sock_addr_parsen("10.0.0.1:8080trailing", 13, &a, err,
	                       sizeof(err)) == 0);
	CHECK(sock_addr_format(&a, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "10.0.0.1:8080");
}

TEST(parse_rejects_with_reason)
{
	static const struct {
		const char *in, *why;
	} cases[] = {
		{ "", "empty address" },
		{ "1.2.3.4", "missing port" },
		{ "1.2.3.4:", "missing port after ':'" },
		{ "1.2.3.4:65536", "port out of range" },
		{ "1.2.3.4:99999", "port out of range" },
		{ "1.2.3.4:123456", "port out of range" },
		{ "1.2.3.4:-1", "port is not a decimal number" },
		{ "1.2.3.4:+80", "port is not a decimal number" },
		{ "1.2.3.4: 80", "port is not a decimal number" },
		{ "1.2.3.4:80 ", "port is not a decimal number" },
		{ "1.2.3.4:0x50", "port is not a decimal number" },
		{ "1.2.3.4:080", "port has a leading zero" },
		{ "256.1.1.1:1", "not a valid IPv4 address" },
		{ "1.2.3:80", "not a valid IPv4 address" },
		{ "1.2.3.4.5:80", "not a valid IPv4 address" },
		{ "01.2.3.4:80", "not a valid IPv4 address" },
		{ "1..3.4:80", "not a valid IPv4 address" },
		{ "1.2.3.4.:80", "not a valid IPv4 address" },
		{ "1111111111111111111111111111111111111111111111111:80",
		  "not a valid IPv4 address" },
		{ ":80", "missing IP address before ':'" },
		{ "::1:80", "IPv6 addresses need brackets" },
		{ "1.2.3.4:80:90", "too many ':'" },
		{ "localhost:80", "host names are not resolved" },
		{ "example.com:443", "host names are not resolved" },
		{ " 1.2.3.4:80", "host names are not resolved" },
		{ "[::1]", "missing port" },
		{ "[::1]:", "missing port after ':'" },
		{ "[::1]80", "expected ':' after ']'" },
		{ "[::1:80", "missing ']'" },
		{ "[]:80", "empty IPv6 address" },
		{ "[1.2.3.4]:80", "not a valid IPv6 address" },
		{ "[::g]:80", "not a valid IPv6 address" },
		{ "[1:2:3:4:5:6:7:8:9]:80", "not a valid IPv6 address" },
		{ "[fe80::1%eth0]:80", "zone ids are not supported" },
		{ "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:1",
		  "IPv6 address too long" },
		{ "[::1]:65536", "port out of range" },
	};
	struct sock_addr a;
	char err[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&a, 0xa5, sizeof(a));
		err[0] = '\0';
		CHECK(sock_addr_parse(cases[i].in, &a, err, sizeof(err)) ==
		      -EINVAL);
		if (!strstr(err, cases[i].why)) {
			CHECK(strstr(err, cases[i].why) != NULL);
			printf("#   input \"%s\": got \"%s\", want \"%s\"\n",
			       cases[i].in, err, cases[i].why);
		}
		/* Never a half-filled address. */
		CHECK(a.sa.sa_family == AF_UNSPEC && a.len == 0);
	}
	/* An embedded NUL is junk, not an end of string. */
	CHECK(sock_addr_parsen("1.2.3.4\0:80", 11, &a, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "NUL") != NULL);
	/* Small or absent error buffers are respected. */
	memset(err, 'x', sizeof(err));
	CHECK(sock_addr_parse("bad", &a, err, 6) == -EINVAL);
	CHECK(strlen(err) == 5 && err[6] == 'x');
	CHECK(sock_addr_parse("bad", &a, NULL, 0) == -EINVAL);
}

TEST(format_limits)
{
	struct sock_addr a;
	char buf[SOCK_ADDR_STRLEN], small[11];

	a = t_sock_addr("1.2.3.4:80");
	CHECK(sock_addr_format(&a, small, 11) == 10); /* exactly fits */
	CHECK_STR(small, "1.2.3.4:80");
	CHECK(sock_addr_format(&a, small, 10) == -ENOSPC);
	CHECK_STR(small, "");
	CHECK(sock_addr_format(&a, NULL, 0) == -ENOSPC);
	/* The longest forms fit SOCK_ADDR_STRLEN. */
	a = t_sock_addr("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535");
	CHECK(sock_addr_format(&a, buf, sizeof(buf)) > 0);
	a = t_sock_addr("[1111:2222:3333:4444:5555:6666:7777:8888]:65535");
	CHECK(sock_addr_format(&a, buf, sizeof(buf)) ==
	      (int)strlen("[1111:2222:3333:4444:5555:6666:7777:8888]:65535"));
	memset(&a, 0, sizeof(a));
	snprintf(buf, sizeof(buf), "junk");
	CHECK(sock_addr_format(&a, buf, sizeof(buf)) == -EAFNOSUPPORT);
	CHECK_STR(buf, "");
}

TEST(compare_order_unmap_and_ports)
{
	struct sock_addr v4, mapped, zero, a, b;

	v4 = t_sock_addr("1.2.3.4:80");
	mapped = t_sock_addr("[::ffff:1.2.3.4]:80");
	memset(&zero, 0, sizeof(zero));
	CHECK(sock_addr_compare(&v4, &mapped) == 0);
	CHECK(sock_addr_compare(&mapped, &v4) == 0);
	a = t_sock_addr("1.2.3.4:81");
	CHECK(sock_addr_compare(&v4, &a) < 0 && sock_addr_compare(&a, &v4) > 0);
	b = t_sock_addr("1.2.3.5:1");
	CHECK(sock_addr_compare(&a, &b) < 0);
	b = t_sock_addr("[2001:db8::1]:1");
	CHECK(sock_addr_compare(&a, &b) < 0);  /* ::ffff:... < 2001:... */
	b = t_sock_addr("[::1]:9");
	CHECK(sock_addr_compare(&b, &v4) < 0);
	CHECK(sock_addr_compare(&zero, &b) < 0 &&
	      sock_addr_compare(&b, &zero) > 0);
	CHECK(sock_addr_compare(&zero, &zero) == 0);
	b.sin6.sin6_scope_id = 2;
	a = t_sock_addr("[::1]:9");
	CHECK(sock_addr_compare(&a, &b) < 0);

	CHECK(sock_addr_unmap(&mapped) == 1);
	CHECK(mapped.sa.sa_family == AF_INET && mapped.len == sizeof(mapped.sin));
	CHECK(memcmp(&mapped, &v4, sizeof(v4)) == 0);
	CHECK(sock_addr_unmap(&v4) == 0);
	CHECK(sock_addr_unmap(&a) == 0 && a.sa.sa_family == AF_INET6);

	sock_addr_set_port(&v4, 4143);
	CHECK(sock_addr_port(&v4) == 4143 && ntohs(v4.sin.sin_port) == 4143);
	sock_addr_set_port(&a, 65535);
	CHECK(sock_addr_port(&a) == 65535);
	sock_addr_set_port(&zero, 1);
	CHECK(sock_addr_port(&zero) == 0);
}

/* Connects <cfd>'s way to listener <lfd> and returns the accepted fd,
 * checking the address bookkeeping on both ends. */
static int t_sock_pair(int lfd, const struct sock_addr *laddr,
                       const struct sock_addr *src, int *cfd_out)
{
	struct sock_addr peer, cl_local, cl_peer, sv_local;
	int cfd, sfd;

	*cfd_out = -1;
	cfd = sock_connect(laddr, src);
	CHECK(cfd >= 0);
	if (cfd < 0)
		return -1;
	*cfd_out = cfd;
	CHECK(t_sock_is_nonblock_cloexec(cfd));
	CHECK(t_sock_wait(cfd, POLLOUT, 2000) & POLLOUT);
	CHECK(sock_connect_result(cfd) == 0);
	CHECK(t_sock_wait(lfd, POLLIN, 2000) & POLLIN);
	memset(&peer, 0xa5, sizeof(peer));
	sfd = sock_accept(lfd, &peer);
	CHECK(sfd >= 0);
	if (sfd < 0)
		return -1;
	CHECK(t_sock_is_nonblock_cloexec(sfd));
	CHECK(sock_local_addr(cfd, &cl_local) == 0);
	CHECK(sock_peer_addr(cfd, &cl_peer) == 0);
	CHECK(sock_local_addr(sfd, &sv_local) == 0);
	CHECK(sock_addr_compare(&peer, &cl_local) == 0);
	CHECK(peer.len == cl_local.len);
	CHECK(sock_addr_compare(&cl_peer, &sv_local) == 0);
	CHECK(sock_addr_port(&sv_local) == sock_addr_port(laddr));
	return sfd;
}

static void t_sock_exchange(int cfd, int sfd)
{
	char buf[8];

	CHECK(write(cfd, "ping", 4) == 4);
	CHECK(t_sock_wait(sfd, POLLIN, 2000) & POLLIN);
	CHECK(read(sfd, buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0);
}

TEST(listen_connect_accept_v4)
{
	struct sock_addr laddr;
	int lfd, cfd, sfd;

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	CHECK(t_sock_is_nonblock_cloexec(lfd));
	CHECK(laddr.sa.sa_family == AF_INET && sock_addr_port(&laddr) != 0);
	CHECK(sock_accept(lfd, NULL) == -EAGAIN); /* nobody yet */
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	if (sfd >= 0 && cfd >= 0)
		t_sock_exchange(cfd, sfd);
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
}

TEST(listen_connect_accept_v6)
{
	struct sock_addr laddr;
	int lfd, cfd, sfd;

	if (!t_sock_have_v6("listen_connect_accept_v6"))
		return;
	lfd = t_sock_listen("[::1]:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	CHECK(laddr.sa.sa_family == AF_INET6 && sock_addr_port(&laddr) != 0);
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	if (sfd >= 0 && cfd >= 0)
		t_sock_exchange(cfd, sfd);
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
}

/* Waits for a refused connect; accepts an immediate refusal too. */
static int t_sock_refused(const struct sock_addr *dst)
{
	int fd = sock_connect(dst, NULL), rc;

	if (fd == -ECONNREFUSED)
		return 1;
	if (fd < 0)
		return 0;
	CHECK(t_sock_wait(fd, POLLOUT, 2000) != 0);
	rc = sock_connect_result(fd);
	close(fd);
	if (rc != -ECONNREFUSED)
		printf("#   connect result %d, want %d\n", rc, -ECONNREFUSED);
	return rc == -ECONNREFUSED;
}

TEST(dual_stack_listener_unmaps_and_v6only_refuses)
{
	struct sock_addr laddr, dst, peer, local;
	int lfd, cfd, sfd;

	if (!t_sock_have_v6("dual_stack_listener_unmaps_and_v6only_refuses"))
		return;
	lfd = t_sock_listen("[::]:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	dst = t_sock_addr("127.0.0.1:0");
	sock_addr_set_port(&dst, sock_addr_port(&laddr));
	cfd = sock_connect(&dst, NULL);
	REQUIRE(cfd >= 0);
	CHECK(t_sock_wait(cfd, POLLOUT, 2000) & POLLOUT);
	CHECK(sock_connect_result(cfd) == 0);
	CHECK(t_sock_wait(lfd, POLLIN, 2000) & POLLIN);
	sfd = sock_accept(lfd, &peer);
	CHECK(sfd >= 0);
	/* The kernel says ::ffff:127.0.0.1; callers see 127.0.0.1. */
	CHECK(peer.sa.sa_family == AF_INET && peer.len == sizeof(peer.sin));
	CHECK(peer.sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(sock_local_addr(sfd, &local) == 0);
	CHECK(local.sa.sa_family == AF_INET);
	CHECK(sock_addr_compare(&local, &dst) == 0);
	/* And SO_ORIGINAL_DST goes the IPv4 way on this IPv6 socket. */
	CHECK(sock_original_dst(sfd, &peer) == -ENOENT);
	if (sfd >= 0)
		close(sfd);
	close(cfd);
	close(lfd);

	lfd = t_sock_listen("[::]:0", SOCK_F_V6ONLY, &laddr);
	REQUIRE(lfd >= 0);
	sock_addr_set_port(&dst, sock_addr_port(&laddr));
	CHECK(t_sock_refused(&dst));
	close(lfd);
}

TEST(connect_to_closed_port_is_refused)
{
	struct sock_addr a;
	socklen_t len = sizeof(a.sin);
	int hold;

	/* A bound socket that does not listen holds the port (no race with
	 * other processes) and answers SYNs with RST. */
	a = t_sock_addr("127.0.0.1:0");
	hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(hold >= 0);
	CHECK(bind(hold, &a.sa, sizeof(a.sin)) == 0);
	CHECK(getsockname(hold, &a.sa, &len) == 0);
	CHECK(t_sock_refused(&a));
	close(hold);
}

TEST(address_in_use_error_names_the_address)
{
	struct sock_addr laddr;
	char err[128], want[128], text[SOCK_ADDR_STRLEN];
	int lfd, fd;

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	REQUIRE(sock_addr_format(&laddr, text, sizeof(text)) > 0);
	err[0] = '\0';
	fd = sock_listen(&laddr, 16, 0, err, sizeof(err));
	CHECK(fd == -EADDRINUSE);
	snprintf(want, sizeof(want), "listen %s: %s", text,
	         strerror(EADDRINUSE));
	CHECK_STR(err, want);
	if (fd >= 0)
		close(fd);
	/* Even with REUSEPORT on the second one: the first did not opt in. */
	fd = sock_listen(&laddr, 16, SOCK_F_REUSEPORT, err, sizeof(err));
	CHECK(fd == -EADDRINUSE);
	if (fd >= 0)
		close(fd);
	close(lfd);

	memset(&laddr, 0, sizeof(laddr));
	CHECK(sock_listen(&laddr, 16, 0, err, sizeof(err)) == -EAFNOSUPPORT);
	CHECK(strstr(err, "not an IPv4 or IPv6 address") != NULL);
}

TEST(reuseport_lets_two_listeners_share_a_port)
{
	struct sock_addr laddr, second;
	char err[128];
	int l1, l2, l3, cfd, sfd = -1;

	l1 = t_sock_listen("127.0.0.1:0", SOCK_F_REUSEPORT, &laddr);
	REQUIRE(l1 >= 0);
	l2 = sock_listen(&laddr, 16, SOCK_F_REUSEPORT, err, sizeof(err));
	CHECK(l2 >= 0);
	if (l2 < 0)
		printf("#   %s\n", err);
	CHECK(sock_local_addr(l2, &second) == 0);
	CHECK(sock_addr_compare(&laddr, &second) == 0);
	/* Without the flag a third one is refused. */
	l3 = sock_listen(&laddr, 16, 0, err, sizeof(err));
	CHECK(l3 == -EADDRINUSE);
	/* A connection lands on one of them. */
	cfd = sock_connect(&laddr, NULL);
	CHECK(cfd >= 0);
	CHECK(t_sock_wait(cfd, POLLOUT, 2000) & POLLOUT);
	CHECK(sock_connect_result(cfd) == 0);
	{
		struct pollfd p[2] = { { .fd = l1, .events = POLLIN },
		                       { .fd = l2, .events = POLLIN } };

		CHECK(poll(p, 2, 2000) == 1);
		sfd = sock_accept((p[0].revents & POLLIN) ? l1 : l2, NULL);
		CHECK(sfd >= 0);
	}
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	if (l3 >= 0)
		close(l3);
	if (l2 >= 0)
		close(l2);
	close(l1);
}

TEST(connect_binds_source_address)
{
	struct sock_addr laddr, src, peer, v6;
	int lfd, cfd, sfd;

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	src = t_sock_addr("127.0.0.2:0");
	sfd = t_sock_pair(lfd, &laddr, &src, &cfd);
	CHECK(sfd >= 0);
	if (sfd >= 0) {
		CHECK(sock_peer_addr(sfd, &peer) == 0);
		sock_addr_set_port(&peer, 0);
		CHECK(sock_addr_compare(&peer, &src) == 0);
		close(sfd);
	}
	if (cfd >= 0)
		close(cfd);
	/* Source and destination families must agree. */
	v6 = t_sock_addr("[::1]:0");
	CHECK(sock_connect(&laddr, &v6) == -EINVAL);
	memset(&v6, 0, sizeof(v6));
	CHECK(sock_connect(&v6, NULL) == -EAFNOSUPPORT);
	close(lfd);
}

TEST(original_dst_without_redirect_is_an_error)
{
	struct sock_addr laddr, out, sentinel;
	int lfd, cfd, sfd, p[2];

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	REQUIRE(sfd >= 0);
	memset(&out, 0x5a, sizeof(out));
	sentinel = out;
	CHECK(sock_original_dst(sfd, &out) == -ENOENT);
	CHECK(memcmp(&out, &sentinel, sizeof(out)) == 0); /* untouched */
	CHECK(sock_original_dst(lfd, &out) == -ENOENT);
	REQUIRE(pipe(p) == 0);
	CHECK(sock_original_dst(p[0], &out) == -ENOTSOCK);
	CHECK(memcmp(&out, &sentinel, sizeof(out)) == 0);
	close(p[0]);
	close(p[1]);
	close(sfd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
}

static int t_sock_getopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len) < 0)
		return -1;
	return v;
}

TEST(socket_options_take_effect)
{
	struct sock_addr laddr;
	int lfd, cfd, sfd, idle0, intvl0, cnt0, p[2];

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	REQUIRE(sfd >= 0);

	CHECK(t_sock_getopt(sfd, IPPROTO_TCP, TCP_NODELAY) == 0);
	CHECK(sock_set_nodelay(sfd) == 0);
	CHECK(t_sock_getopt(sfd, IPPROTO_TCP, TCP_NODELAY) != 0);

	/* <= 0 keeps the system defaults. */
	idle0 = t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE);
	intvl0 = t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPINTVL);
	cnt0 = t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPCNT);
	CHECK(sock_set_keepalive(cfd, 0, -1, 0) == 0);
	CHECK(t_sock_getopt(cfd, SOL_SOCKET, SO_KEEPALIVE) == 1);
	CHECK(t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE) == idle0);
	CHECK(t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPINTVL) == intvl0);
	CHECK(t_sock_getopt(cfd, IPPROTO_TCP, TCP_KEEPCNT) == cnt0);
	CHECK(sock_set_keepalive(sfd, 31, 7, 3) == 0);
	CHECK(t_sock_getopt(sfd, SOL_SOCKET, SO_KEEPALIVE) == 1);
	CHECK(t_sock_getopt(sfd, IPPROTO_TCP, TCP_KEEPIDLE) == 31);
	CHECK(t_sock_getopt(sfd, IPPROTO_TCP, TCP_KEEPINTVL) == 7);
	CHECK(t_sock_getopt(sfd, IPPROTO_TCP, TCP_KEEPCNT) == 3);

	/* Errors come back as -errno. */
	REQUIRE(pipe(p) == 0);
	CHECK(sock_set_nodelay(p[0]) == -ENOTSOCK);
	CHECK(sock_set_keepalive(p[0], 1, 1, 1) == -ENOTSOCK);
	CHECK(sock_set_linger0(p[0]) == -ENOTSOCK);
	CHECK(sock_shutdown_write(p[0]) == -ENOTSOCK);
	CHECK(sock_connect_result(p[0]) == -ENOTSOCK);
	CHECK(sock_local_addr(p[0], &laddr) == -ENOTSOCK);
	CHECK(sock_accept(p[0], NULL) == -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	CHECK(sock_set_nodelay(-1) == -EBADF);
	CHECK(sock_accept(sfd, NULL) == -EINVAL); /* not listening */
	{
		int unconnected = socket(AF_INET, SOCK_STREAM, 0);

		CHECK(sock_shutdown_write(unconnected) == -ENOTCONN);
		if (unconnected >= 0)
			close(unconnected);
	}

	close(sfd);
	close(cfd);
	close(lfd);
}

TEST(linger0_close_resets_the_peer)
{
	struct sock_addr laddr;
	char buf[8];
	int lfd, cfd, sfd;
	ssize_t n;

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	REQUIRE(sfd >= 0 && cfd >= 0);
	CHECK(sock_set_linger0(cfd) == 0);
	close(cfd);
	CHECK(t_sock_wait(sfd, POLLIN, 2000) != 0);
	n = read(sfd, buf, sizeof(buf));
	CHECK(n < 0 && errno == ECONNRESET); /* RST, not a clean EOF (0) */
	close(sfd);
	close(lfd);
}

TEST(shutdown_write_half_closes)
{
	struct sock_addr laddr;
	char buf[8];
	int lfd, cfd, sfd;

	lfd = t_sock_listen("127.0.0.1:0", 0, &laddr);
	REQUIRE(lfd >= 0);
	sfd = t_sock_pair(lfd, &laddr, NULL, &cfd);
	REQUIRE(sfd >= 0 && cfd >= 0);
	CHECK(sock_shutdown_write(cfd) == 0);
	CHECK(t_sock_wait(sfd, POLLIN, 2000) & POLLIN);
	CHECK(read(sfd, buf, sizeof(buf)) == 0); /* EOF */
	CHECK(write(sfd, "pong", 4) == 4);       /* other way still open */
	CHECK(t_sock_wait(cfd, POLLIN, 2000) & POLLIN);
	CHECK(read(cfd, buf, sizeof(buf)) == 4 && memcmp(buf, "pong", 4) == 0);
	close(sfd);
	close(cfd);
	close(lfd);
}
