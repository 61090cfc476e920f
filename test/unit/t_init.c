/*
 * Unit tests of `meshd init`'s pure half (src/init/init_rules.c): port-list
 * and CIDR parsing, reading iptables-save dumps, and the exact rule text of
 * each backend; plus init_exec's contract (stdin/stdout plumbing, missing
 * tool, exit status, deadline) with stock tools.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "init/init.h"

/* The configuration whose exact text the render tests pin. */
static void t_init_conf(struct init_conf *c)
{
	char err[256];

	init_conf_default(c);
	CHECK(init_ports_parse(&c->skip_in, "8000-8100,25", err, sizeof(err)) == 0);
	CHECK(init_ports_parse(&c->skip_out, "443", err, sizeof(err)) == 0);
	CHECK(init_cidrs_parse(&c->skip_nets, "10.0.0.0/8, fd00::/8",
	                       err, sizeof(err)) == 0);
}

TEST(ports_parse_valid)
{
	struct init_ports p = { 0 };
	char err[256];

	CHECK(init_ports_parse(&p, "25,443,8000-8100", err, sizeof(err)) == 0);
	REQUIRE(p.n == 3);
	CHECK(p.r[0].lo == 25 && p.r[0].hi == 25);
	CHECK(p.r[1].lo == 443 && p.r[1].hi == 443);
	CHECK(p.r[2].lo == 8000 && p.r[2].hi == 8100);

	memset(&p, 0, sizeof(p));
	CHECK(init_ports_parse(&p, " 443 , 25 ,1-1, 65535", err, sizeof(err)) == 0);
	REQUIRE(p.n == 4);
	CHECK(p.r[0].lo == 1 && p.r[1].lo == 25 && p.r[2].lo == 443 &&
	      p.r[3].lo == 65535 && p.r[3].hi == 65535);

	/* overlaps merge, adjacent ranges stay apart */
	memset(&p, 0, sizeof(p));
	CHECK(init_ports_parse(&p, "8050,8000-8100,8090-8200,4190,4191",
	                       err, sizeof(err)) == 0);
	REQUIRE(p.n == 3);
	CHECK(p.r[0].lo == 4190 && p.r[0].hi == 4190);
	CHECK(p.r[1].lo == 4191 && p.r[1].hi == 4191);
	CHECK(p.r[2].lo == 8000 && p.r[2].hi == 8200);
	CHECK(init_ports_has(&p, 8200) && init_ports_has(&p, 4191));
	CHECK(!init_ports_has(&p, 8201) && !init_ports_has(&p, 4192));

	/* the empty list, and adding to an existing list */
	CHECK(init_ports_parse(&p, "", err, sizeof(err)) == 0);
	CHECK(init_ports_parse(&p, "  ", err, sizeof(err)) == 0);
	CHECK(p.n == 3);
	CHECK(init_ports_parse(&p, "22", err, sizeof(err)) == 0);
	CHECK(p.n == 4 && p.r[0].lo == 22);
}

TEST(ports_parse_invalid)
{
	static const char *const bad[] = {
		"0", "65536", "99999999", "a", "25,", ",25", "25,,443", "10-5",
		"1-2-3", "25 443", "-5", "5-", "+5", "0x10", "8000-", "1-65536",
		"80;443", "٣",
	};
	struct init_ports p = { 0 };
	char err[256];
	size_t i;

	CHECK(init_ports_parse(&p, "80", err, sizeof(err)) == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(init_ports_parse(&p, bad[i], err, sizeof(err)) == -1);
		CHECK(strstr(err, "bad port list") != NULL);
		CHECK(p.n == 1 && p.r[0].lo == 80); /* unchanged */
	}
	CHECK(init_ports_parse(&p, "10-5", err, sizeof(err)) == -1);
	CHECK(strstr(err, "\"10-5\"") != NULL);
}

TEST(ports_list_is_bounded)
{
	struct init_ports p = { 0 };
	char err[256];
	int i;

	for (i = 0; i < INIT_PORTS_MAX; i++)
		CHECK(init_ports_add(&p, (uint16_t)(100 + 2 * i),
		                     (uint16_t)(100 + 2 * i)) == 0);
	CHECK(p.n == INIT_PORTS_MAX);
	CHECK(init_ports_add(&p, 5, 5) == -1);
	CHECK(p.n == INIT_PORTS_MAX && p.r[0].lo == 100);
	/* a range swallowing everything still fits */
	CHECK(init_ports_parse(&p, "1-60000", err, sizeof(err)) == 0);
	CHECK(p.n == 1 && p.r[0].lo == 1 && p.r[0].hi == 60000);
}

TEST(cidrs_parse_valid)
{
	struct init_cidrs c = { 0 };
	char err[256], s[64];

	CHECK(init_cidrs_parse(&c, "10.0.0.0/8,192.0.2.7, fd00::1/8 ,::/0,"
	                       "10.1.2.3/8,2001:db8::5", err, sizeof(err)) == 0);
	REQUIRE(c.n == 5); /* 10.1.2.3/8 is 10.0.0.0/8 again */
	CHECK(init_cidr_str(&c.c[0], s, sizeof(s)) == 0);
	CHECK_STR(s, "10.0.0.0/8");
	CHECK(c.c[0].family == 4);
	CHECK(init_cidr_str(&c.c[1], s, sizeof(s)) == 0);
	CHECK_STR(s, "192.0.2.7/32");
	CHECK(init_cidr_str(&c.c[2], s, sizeof(s)) == 0);
	CHECK_STR(s, "fd00::/8");
	CHECK(c.c[2].family == 6);
	CHECK(init_cidr_str(&c.c[3], s, sizeof(s)) == 0);
	CHECK_STR(s, "::/0");
	CHECK(init_cidr_str(&c.c[4], s, sizeof(s)) == 0);
	CHECK_STR(s, "2001:db8::5/128");
	CHECK(init_cidr_str(&c.c[4], s, 8) == -1); /* too small */

	memset(&c, 0, sizeof(c));
	CHECK(init_cidrs_parse(&c, "172.16.5.4/12,10.200.0.3/31", err,
	                       sizeof(err)) == 0);
	REQUIRE(c.n == 2);
	CHECK(init_cidr_str(&c.c[0], s, sizeof(s)) == 0);
	CHECK_STR(s, "172.16.0.0/12");
	CHECK(init_cidr_str(&c.c[1], s, sizeof(s)) == 0);
	CHECK_STR(s, "10.200.0.2/31");
	CHECK(init_cidrs_parse(&c, "", err, sizeof(err)) == 0);
	CHECK(c.n == 2);
}

TEST(cidrs_parse_invalid)
{
	static const char *const bad[] = {
		"10.0.0.0/33", "fd00::/129", "10.0.0/8", "abc", "10.0.0.0/",
		"/8", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/8,", ",10.0.0.0/8",
		"256.0.0.0/8", "fd00:::/8", "10.0.0.0/0x8", "10.0.0.0 /8",
		"10.0.0.0/1000", "1.2.3.4.5",
	};
	struct init_cidrs c = { 0 };
	char err[256];
	size_t i;

	CHECK(init_cidrs_parse(&c, "10.0.0.0/8", err, sizeof(err)) == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(init_cidrs_parse(&c, bad[i], err, sizeof(err)) == -1);
		CHECK(strstr(err, "CIDR") != NULL);
		CHECK(c.n == 1); /* unchanged */
	}
}

TEST(backend_names)
{
	enum init_backend b;

	CHECK(init_backend_parse("auto", &b) == 0 && b == INIT_BACKEND_AUTO);
	CHECK(init_backend_parse("iptables-nft", &b) == 0 && b == INIT_BACKEND_IPT_NFT);
	CHECK(init_backend_parse("iptables-legacy", &b) == 0 &&
	      b == INIT_BACKEND_IPT_LEGACY);
	CHECK(init_backend_parse("nft", &b) == 0 && b == INIT_BACKEND_NFT);
	CHECK(init_backend_parse("iptables", &b) == -1);
	CHECK(init_backend_parse("NFT", &b) == -1);
	CHECK(init_backend_parse("", &b) == -1);
	CHECK_STR(init_backend_str(INIT_BACKEND_IPT_LEGACY), "iptables-legacy");
}

TEST(ipt_state_parse)
{
	static const char dump[] =
		"# Generated by iptables-save v1.8.9 on Sun Nov 29 14:11:12 2026\n"
		"*filter\n"
		":INPUT ACCEPT [0:0]\n"
		"-A INPUT -p udp --dport 53 -j ACCEPT\n"
		"-A PREROUTING -j MESHD_INBOUND\n" /* not in nat: not ours */
		"COMMIT\n"
		"*nat\n"
		":PREROUTING ACCEPT [12:720]\n"
		":OUTPUT ACCEPT [0:0]\n"
		":MESHD_INBOUND - [0:0]\n"
		":MESHD_OUTPUT - [0:0]\n"
		":MESHD_INBOUNDX - [0:0]\n"
		"-A PREROUTING -j MESHD_INBOUND\n"
		"-A PREROUTING -i eth0 -j MESHD_INBOUND\n"
		"-A OUTPUT -p udp --dport 5353 -j RETURN\n"
		"-A OUTPUT -j MESHD_OUTPUT\n"
		"-A OUTPUT -j MESHD_OUTPUT\n"
		"-A MESHD_INBOUND -p tcp -j REDIRECT --to-ports 4143\n"
		"COMMIT\n";
	struct init_ipt_state st;

	init_ipt_state_parse(dump, &st);
	CHECK(st.in_chain == 1 && st.out_chain == 1);
	CHECK(st.in_jumps == 1);
	CHECK(st.out_jumps == 2);
	CHECK(st.rules == 8);

	init_ipt_state_parse("", &st);
	CHECK(!st.in_chain && !st.out_chain && !st.in_jumps && !st.out_jumps &&
	      !st.rules);
	init_ipt_state_parse("*nat\n:MESHD_OUTPUT - [0:0]", &st); /* no final \n */
	CHECK(st.out_chain == 1 && !st.in_chain);
}

TEST(ipt_render_v4_exact)
{
	static const char want[] =
		"*nat\n"
		":MESHD_INBOUND - [0:0]\n"
		":MESHD_OUTPUT - [0:0]\n"
		"-A MESHD_INBOUND -p tcp -m multiport --dports 25,4190,4191,8000:8100 -j RETURN\n"
		"-A MESHD_INBOUND -s 10.0.0.0/8 -j RETURN\n"
		"-A MESHD_INBOUND -p tcp -j REDIRECT --to-ports 4143\n"
		"-A MESHD_OUTPUT -m owner --uid-owner 2102 -j RETURN\n"
		"-A MESHD_OUTPUT -o lo -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -m multiport --dports 443 -j RETURN\n"
		"-A MESHD_OUTPUT -d 10.0.0.0/8 -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n"
		"-A PREROUTING -j MESHD_INBOUND\n"
		"-A OUTPUT -j MESHD_OUTPUT\n"
		"COMMIT\n";
	struct init_ipt_state st = { 0 };
	struct init_conf c;
	struct buf b;

	t_init_conf(&c);
	buf_init(&b, 1 << 16);
	CHECK(init_ipt_render(&c, 4, &st, &b) == 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

TEST(ipt_render_v6_jumps_present)
{
	/* chains exist and the jumps too: refill the chains, add no jump */
	static const char want[] =
		"*nat\n"
		":MESHD_INBOUND - [0:0]\n"
		":MESHD_OUTPUT - [0:0]\n"
		"-A MESHD_INBOUND -p tcp -m multiport --dports 25,4190,4191,8000:8100 -j RETURN\n"
		"-A MESHD_INBOUND -s fd00::/8 -j RETURN\n"
		"-A MESHD_INBOUND -p tcp -j REDIRECT --to-ports 4143\n"
		"-A MESHD_OUTPUT -m owner --uid-owner 2102 -j RETURN\n"
		"-A MESHD_OUTPUT -o lo -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -m multiport --dports 443 -j RETURN\n"
		"-A MESHD_OUTPUT -d fd00::/8 -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n"
		"COMMIT\n";
	struct init_ipt_state st = { 1, 1, 1, 1, 4 };
	struct init_conf c;
	struct buf b;

	t_init_conf(&c);
	buf_init(&b, 1 << 16);
	CHECK(init_ipt_render(&c, 6, &st, &b) == 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

TEST(ipt_render_host_mode_and_chunks)
{
	static const char want[] =
		"*nat\n"
		":MESHD_INBOUND - [0:0]\n"
		":MESHD_OUTPUT - [0:0]\n"
		"-A MESHD_INBOUND -p tcp -m multiport --dports 4190,4191 -j RETURN\n"
		"-A MESHD_INBOUND -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports 5143\n"
		"-A MESHD_OUTPUT -m owner --uid-owner 999 -j RETURN\n"
		"-A MESHD_OUTPUT -o lo -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -m multiport --dports 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29 -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -m multiport --dports 31,33,35,37,39,41,43,45,47,49,51,53,55,57:58 -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -m multiport --dports 60:61 -j RETURN\n"
		"-A MESHD_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n"
		"-A PREROUTING -j MESHD_INBOUND\n"
		"-A OUTPUT -j MESHD_OUTPUT\n"
		"COMMIT\n";
	struct init_ipt_state st = { 0 };
	struct init_conf c;
	struct buf b;
	char err[256];
	int i;

	init_conf_default(&c);
	c.inbound_port = 5143;
	c.proxy_uid = 999;
	CHECK(init_ports_parse(&c.inbound, "443,80", err, sizeof(err)) == 0);
	for (i = 1; i <= 55; i += 2) /* 28 single ports ... */
		CHECK(init_ports_add(&c.skip_out, (uint16_t)i, (uint16_t)i) == 0);
	/* ... then a range that does not fit the 15th slot, and another */
	CHECK(init_ports_parse(&c.skip_out, "57-58,60-61", err, sizeof(err)) == 0);
	buf_init(&b, 1 << 16);
	CHECK(init_ipt_render(&c, 4, &st, &b) == 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

TEST(ipt_tools_and_restore_argv)
{
	const char *argv[INIT_ARGV_MAX];

	CHECK_STR(init_ipt_tool(INIT_BACKEND_IPT_NFT, 4, 0), "iptables-nft-save");
	CHECK_STR(init_ipt_tool(INIT_BACKEND_IPT_NFT, 6, 1), "ip6tables-nft-restore");
	CHECK_STR(init_ipt_tool(INIT_BACKEND_IPT_LEGACY, 6, 0), "ip6tables-legacy-save");
	init_ipt_restore_argv(INIT_BACKEND_IPT_NFT, 6, argv);
	CHECK_STR(argv[0], "ip6tables-nft-restore");
	CHECK_STR(argv[1], "--noflush");
	CHECK(argv[2] == NULL);
	init_ipt_restore_argv(INIT_BACKEND_IPT_LEGACY, 4, argv);
	CHECK_STR(argv[0], "iptables-legacy-restore");
	CHECK_STR(argv[1], "--noflush");
	CHECK_STR(argv[2], "--wait");
	CHECK_STR(argv[3], "10");
	CHECK(argv[4] == NULL);
}

TEST(ipt_render_uninstall)
{
	struct init_ipt_state st = { 1, 1, 1, 2, 9 };
	struct buf b;

	buf_init(&b, 1 << 16);
	CHECK(init_ipt_render_uninstall(&st, &b) == 0);
	CHECK_STR(buf_cstr(&b),
	          "*nat\n"
	          "-D PREROUTING -j MESHD_INBOUND\n"
	          "-D OUTPUT -j MESHD_OUTPUT\n"
	          "-D OUTPUT -j MESHD_OUTPUT\n"
	          "-F MESHD_INBOUND\n-X MESHD_INBOUND\n"
	          "-F MESHD_OUTPUT\n-X MESHD_OUTPUT\n"
	          "COMMIT\n");
	buf_reset(&b);
	memset(&st, 0, sizeof(st));
	st.rules = 7; /* foreign rules only: nothing to do */
	CHECK(init_ipt_render_uninstall(&st, &b) == 0);
	CHECK(buf_len(&b) == 0);
	st.out_chain = 1; /* a chain left without its jump */
	CHECK(init_ipt_render_uninstall(&st, &b) == 0);
	CHECK_STR(buf_cstr(&b), "*nat\n-F MESHD_OUTPUT\n-X MESHD_OUTPUT\nCOMMIT\n");
	buf_free(&b);
}

TEST(ipt_render_buffer_full)
{
	struct init_ipt_state st = { 0 };
	struct init_conf c;
	struct buf b;

	t_init_conf(&c);
	buf_init(&b, 64);
	CHECK(init_ipt_render(&c, 4, &st, &b) == -1);
	buf_free(&b);
}

TEST(nft_render_exact)
{
	static const char want[] =
		"table inet meshd\n"
		"delete table inet meshd\n"
		"table inet meshd {\n"
		"\tchain prerouting {\n"
		"\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		"\t\ttcp dport { 25, 4190, 4191, 8000-8100 } return\n"
		"\t\tip saddr { 10.0.0.0/8 } return\n"
		"\t\tip6 saddr { fd00::/8 } return\n"
		"\t\tmeta l4proto tcp redirect to :4143\n"
		"\t}\n"
		"\tchain output {\n"
		"\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tmeta skuid 2102 return\n"
		"\t\toifname \"lo\" return\n"
		"\t\ttcp dport { 443 } return\n"
		"\t\tip daddr { 10.0.0.0/8 } return\n"
		"\t\tip6 daddr { fd00::/8 } return\n"
		"\t\tmeta l4proto tcp redirect to :4140\n"
		"\t}\n"
		"}\n";
	struct init_conf c;
	struct buf b;

	t_init_conf(&c);
	buf_init(&b, 1 << 16);
	CHECK(init_nft_render(&c, &b) == 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

TEST(nft_render_host_v4_only)
{
	static const char want[] =
		"table inet meshd\n"
		"delete table inet meshd\n"
		"table inet meshd {\n"
		"\tchain prerouting {\n"
		"\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		"\t\tmeta nfproto ipv6 return\n"
		"\t\ttcp dport { 4190, 4191 } return\n"
		"\t\tip saddr { 192.0.2.0/24, 198.51.100.7/32 } return\n"
		"\t\ttcp dport { 80, 8000-8100 } redirect to :4143\n"
		"\t}\n"
		"\tchain output {\n"
		"\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tmeta nfproto ipv6 return\n"
		"\t\tmeta skuid 2102 return\n"
		"\t\toifname \"lo\" return\n"
		"\t\tip daddr { 192.0.2.0/24, 198.51.100.7/32 } return\n"
		"\t\tmeta l4proto tcp redirect to :4140\n"
		"\t}\n"
		"}\n";
	struct init_conf c;
	struct buf b;
	char err[256];

	init_conf_default(&c);
	c.ipv6 = 0;
	CHECK(init_ports_parse(&c.inbound, "8000-8100,80", err, sizeof(err)) == 0);
	CHECK(init_cidrs_parse(&c.skip_nets, "192.0.2.0/24,fd00::/8,198.51.100.7",
	                       err, sizeof(err)) == 0);
	buf_init(&b, 1 << 16);
	CHECK(init_nft_render(&c, &b) == 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

TEST(nft_tables_listing)
{
	CHECK(init_nft_has_table("table ip nat\ntable inet meshd\n"));
	CHECK(init_nft_has_table("table inet meshd"));
	CHECK(init_nft_has_table("table inet meshd {\n}\n"));
	CHECK(!init_nft_has_table("table ip nat\ntable ip6 nat\n"));
	CHECK(!init_nft_has_table("table ip meshd\ntable inet meshd2\n"));
	CHECK(!init_nft_has_table(""));
	CHECK_STR(init_nft_uninstall_text(), "delete table inet meshd\n");
}

TEST(exec_feeds_stdin_and_captures_stdout)
{
	static const char *const cat[] = { "cat", NULL };
	struct buf in, out, err;
	size_t i;

	buf_init(&in, 1 << 20);
	for (i = 0; i < 300000 / 10; i++) /* more than a pipe holds */
		CHECK(buf_append(&in, "0123456789", 10) == 0);
	buf_init(&out, 1 << 20);
	buf_init(&err, 1024);
	CHECK(init_exec(cat, buf_data(&in), buf_len(&in), &out, &err, 10000) == 0);
	CHECK(buf_len(&out) == buf_len(&in));
	CHECK(memcmp(buf_data(&out), buf_data(&in), buf_len(&in)) == 0);
	CHECK(buf_len(&err) == 0);
	/* an output larger than the caller's limit is an error, not a hang */
	buf_free(&out);
	buf_init(&out, 1000);
	CHECK(init_exec(cat, buf_data(&in), buf_len(&in), &out, NULL, 10000) ==
	      -E2BIG);
	buf_free(&in);
	buf_free(&out);
	buf_free(&err);
}

TEST(exec_status_missing_and_deadline)
{
	static const char *const missing[] = { "meshd-no-such-tool-t-init", NULL };
	static const char *const fails[] = { "false", NULL };
	static const char *const ls[] = { "ls", "/meshd-no-such-dir-t-init", NULL };
	static const char *const slow[] = { "sleep", "5", NULL };
	struct buf err;

	CHECK(init_exec(missing, NULL, 0, NULL, NULL, 5000) == -ENOENT);
	CHECK(init_exec(fails, NULL, 0, NULL, NULL, 5000) == 1);
	buf_init(&err, 16);
	CHECK(init_exec(ls, NULL, 0, NULL, &err, 5000) > 0);
	/* stderr kept, truncated below the limit so that it is a C string */
	CHECK(buf_len(&err) == 15);
	CHECK(buf_cstr(&err) != NULL);
	buf_free(&err);
	CHECK(init_exec(slow, NULL, 0, NULL, NULL, 200) == -ETIMEDOUT);
}
