#include <errno.h>
#include <string.h>

#include "harness.h"
#include "core/sock.h"
#include "proxy/route.h"

static struct sock_addr addr(const char *s)
{
	struct sock_addr a;
	char err[64];

	memset(&a, 0, sizeof(a));
	(void)sock_addr_parse(s, &a, err, sizeof(err));
	return a;
}

static int addr_is(const struct sock_addr *a, const char *s)
{
	char buf[SOCK_ADDR_STRLEN];

	return sock_addr_format(a, buf, sizeof(buf)) > 0 && !strcmp(buf, s);
}

TEST(tcp_routes_parse)
{
	struct route_cfg rc;
	char err[128];

	route_cfg_init(&rc);
	CHECK(route_parse_tcp_routes(&rc, "", err, sizeof(err)) == 0);
	CHECK(rc.ntcp == 0);
	REQUIRE(route_parse_tcp_routes(&rc, "4000=127.0.0.1:5000, 4001=[::1]:6000",
	                               err, sizeof(err)) == 0);
	REQUIRE(rc.ntcp == 2);
	CHECK(rc.tcp[0].lport == 4000);
	CHECK(addr_is(&rc.tcp[0].target, "127.0.0.1:5000"));
	CHECK(addr_is(&rc.tcp[1].target, "[::1]:6000"));
	CHECK(route_tcp_target(&rc, 4001) == &rc.tcp[1].target);
	CHECK(route_tcp_target(&rc, 4002) == NULL);
	/* appends, refuses a port twice */
	CHECK(route_parse_tcp_routes(&rc, "4000=127.0.0.1:1", err,
	                             sizeof(err)) < 0);
	CHECK(strstr(err, "twice") != NULL);
}

TEST(tcp_routes_refuse_garbage)
{
	static const char *const bad[] = {
		"4000", "=127.0.0.1:1", "0=127.0.0.1:1", "65536=127.0.0.1:1",
		"04000=127.0.0.1:1", "4000=localhost:80", "4000=127.0.0.1",
		"4000=127.0.0.1:0", "4000=1.2.3.4:80,", "x=1.2.3.4:80",
	};
	struct route_cfg rc;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		route_cfg_init(&rc);
		err[0] = '\0';
		CHECK(route_parse_tcp_routes(&rc, bad[i], err, sizeof(err)) < 0);
		CHECK(err[0] != '\0');
	}
}

TEST(opaque_ports)
{
	struct route_cfg rc;
	char err[128];

	route_cfg_init(&rc);
	/* Linkerd's defaults */
	CHECK(route_is_opaque(&rc, 25));
	CHECK(route_is_opaque(&rc, 3306));
	CHECK(route_is_opaque(&rc, 11211));
	CHECK(!route_is_opaque(&rc, 80));
	CHECK(!route_is_opaque(&rc, 8080));
	REQUIRE(route_parse_ports(&rc, "80, 8000-8002", err, sizeof(err)) == 0);
	CHECK(route_is_opaque(&rc, 80));
	CHECK(route_is_opaque(&rc, 8001));
	CHECK(route_is_opaque(&rc, 8002));
	CHECK(!route_is_opaque(&rc, 8003));
	CHECK(!route_is_opaque(&rc, 25));  /* replaced, not merged */
	/* a bad list leaves the old one */
	CHECK(route_parse_ports(&rc, "80,9-8", err, sizeof(err)) < 0);
	CHECK(route_parse_ports(&rc, "70000", err, sizeof(err)) < 0);
	CHECK(route_parse_ports(&rc, "a", err, sizeof(err)) < 0);
	CHECK(route_is_opaque(&rc, 8001));
	CHECK(route_parse_ports(&rc, "", err, sizeof(err)) == 0);
	CHECK(!route_is_opaque(&rc, 80));
	CHECK(route_parse_ports(&rc, "65535", err, sizeof(err)) == 0);
	CHECK(route_is_opaque(&rc, 65535));
}

TEST(authority_to_address)
{
	struct sock_addr a;

	REQUIRE(route_authority_addr(STR_LIT("10.1.2.3:8080"), 80, &a) == 0);
	CHECK(addr_is(&a, "10.1.2.3:8080"));
	REQUIRE(route_authority_addr(STR_LIT("10.1.2.3"), 80, &a) == 0);
	CHECK(addr_is(&a, "10.1.2.3:80"));
	REQUIRE(route_authority_addr(STR_LIT("[::1]:9"), 80, &a) == 0);
	CHECK(addr_is(&a, "[::1]:9"));
	REQUIRE(route_authority_addr(STR_LIT("[fe80::1]"), 80, &a) == 0);
	CHECK(addr_is(&a, "[fe80::1]:80"));
	/* names are discovery's job */
	CHECK(route_authority_addr(STR_LIT("web.ns.svc.cluster.local:80"), 80,
	                           &a) == -ENOENT);
	CHECK(route_authority_addr(STR_LIT("localhost"), 80, &a) == -ENOENT);
	CHECK(route_authority_addr(STR_LIT("1.2.3.4.example"), 80, &a) ==
	      -ENOENT);
	/* malformed */
	CHECK(route_authority_addr(STR_LIT(""), 80, &a) == -EINVAL);
	CHECK(route_authority_addr(STR_LIT("1.2.3.4:0"), 80, &a) == -EINVAL);
	CHECK(route_authority_addr(STR_LIT("1.2.3.4:99999"), 80, &a) ==
	      -EINVAL);
	CHECK(route_authority_addr(STR_LIT("999.1.1.1"), 80, &a) == -EINVAL);
	CHECK(route_authority_addr(STR_LIT("::1"), 80, &a) == -EINVAL);
	CHECK(route_authority_addr(STR_LIT("[::1"), 80, &a) == -EINVAL);
	CHECK(route_authority_addr(STR_LIT("[::1]x"), 80, &a) == -EINVAL);
}

TEST(resolve_explicit_outbound)
{
	struct route_cfg rc;
	struct route_query q;
	struct route_result res;
	struct route_wait w;
	struct sock_addr local = addr("127.0.0.1:4140");
	char err[64];

	route_cfg_init(&rc);
	rc.self[rc.nself++] = local;
	REQUIRE(route_parse_tcp_routes(&rc, "5432=10.0.0.9:5432", err,
	                               sizeof(err)) == 0);
	memset(&q, 0, sizeof(q));
	q.dir = ROUTE_OUTBOUND;
	q.http = 1;
	q.local = &local;
	q.authority = STR_LIT("10.0.0.7:8080");
	CHECK(route_resolve(&rc, &q, &res, &w, NULL, NULL) == ROUTE_DONE);
	CHECK(res.status == 0 && res.n == 1);
	CHECK(addr_is(&res.ep[0].addr, "10.0.0.7:8080"));
	CHECK(res.ep[0].hint == ROUTE_HINT_NONE);

	q.authority = STR_LIT("web.default.svc.cluster.local:8080");
	CHECK(route_resolve(&rc, &q, &res, &w, NULL, NULL) == ROUTE_DONE);
	CHECK(res.status == 503 && res.n == 0 && res.reason != NULL);

	q.authority = STR_NULL;
	route_resolve(&rc, &q, &res, &w, NULL, NULL);
	CHECK(res.status == 503);

	/* the proxy itself is a loop */
	q.authority = STR_LIT("127.0.0.1:4140");
	route_resolve(&rc, &q, &res, &w, NULL, NULL);
	CHECK(res.status == 503 && strstr(res.reason, "loop"));

	/* TCP: by the explicit route of the local port */
	q.http = 0;
	q.authority = STR_NULL;
	local = addr("127.0.0.1:5432");
	route_resolve(&rc, &q, &res, &w, NULL, NULL);
	CHECK(res.status == 0 && addr_is(&res.ep[0].addr, "10.0.0.9:5432"));
	CHECK(res.ep[0].hint == ROUTE_HINT_OPAQUE);
	local = addr("127.0.0.1:5433");
	route_resolve(&rc, &q, &res, &w, NULL, NULL);
	CHECK(res.status == 503);
}

TEST(resolve_inbound_and_transparent)
{
	struct route_cfg rc;
	struct route_query q;
	struct route_result res;
	struct sock_addr local = addr("10.0.0.5:4143");
	struct sock_addr orig = addr("10.0.0.5:8080");

	route_cfg_init(&rc);
	rc.self[rc.nself++] = addr("0.0.0.0:4143");
	memset(&q, 0, sizeof(q));
	q.dir = ROUTE_INBOUND;
	q.http = 1;
	q.local = &local;
	/* explicit mode without a forward address: nothing to go to */
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 503);
	rc.has_inbound_forward = 1;
	rc.inbound_forward = addr("127.0.0.1:8080");
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 0 && addr_is(&res.ep[0].addr, "127.0.0.1:8080"));

	/* transparent: the original destination, or loopback:port */
	rc.has_inbound_forward = 0;
	rc.transparent = 1;
	q.orig_dst = &orig;
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 0 && addr_is(&res.ep[0].addr, "10.0.0.5:8080"));
	rc.inbound_loopback = 1;
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 0 && addr_is(&res.ep[0].addr, "127.0.0.1:8080"));

	/* a redirect to our own wildcard listener's port is a loop */
	rc.inbound_loopback = 0;
	orig = addr("10.0.0.5:4143");
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 503);

	/* transparent outbound: the original destination, even for HTTP
	 * with a name in the authority */
	q.dir = ROUTE_OUTBOUND;
	orig = addr("10.9.9.9:80");
	q.authority = STR_LIT("web:80");
	route_resolve(&rc, &q, &res, NULL, NULL, NULL);
	CHECK(res.status == 0 && addr_is(&res.ep[0].addr, "10.9.9.9:80"));
}
