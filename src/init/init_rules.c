/*
 * init_rules: the pure half of `meshd init`.
 *
 * Parses the operator's port lists and CIDRs, reads iptables-save dumps and
 * renders the text handed to iptables-restore and nft. Nothing here does
 * I/O or keeps state, so the unit tests pin the exact text of each backend.
 *
 * IMPLEMENTATION NOTES
 *  - The iptables policy is one chain per direction (MESHD_INBOUND from
 *    PREROUTING, MESHD_OUTPUT from OUTPUT) in table nat. Restoring with
 *    --noflush, a ":CHAIN - [0:0]" line creates the chain or flushes it, so
 *    re-running refills the chains in place; the jumps are written only when
 *    the dump shows them absent. That is what makes install idempotent.
 *  - The nft policy is one `table inet meshd`. "table X / delete table X /
 *    table X { ... }" in one `nft -f` transaction creates-then-replaces the
 *    table atomically whether or not it existed (nft 1.0.6 has no
 *    `destroy`). Each closing brace sits on its own line (nft rejects
 *    "rule }").
 *  - Rule order per chain follows Linkerd's proxy-init: ignored ports,
 *    skipped subnets, then the REDIRECT; outbound first skips the proxy's
 *    uid and loopback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "init/init.h"

void init_conf_default(struct init_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->inbound_port = 4143;
	c->outbound_port = 4140;
	c->admin_port = 4191;
	c->control_port = 4190;
	c->proxy_uid = 2102;
	c->ipv6 = 1;
}

/* ---- port lists ---------------------------------------------------- */

int init_ports_add(struct init_ports *p, uint16_t lo, uint16_t hi)
{
	struct init_port_range tmp[INIT_PORTS_MAX + 1];
	size_t n = 0, i, j;

	/* insert in order of lo, then merge overlapping neighbours */
	for (i = 0; i < p->n && p->r[i].lo <= lo; i++)
		tmp[n++] = p->r[i];
	tmp[n].lo = lo;
	tmp[n++].hi = hi;
	for (; i < p->n; i++)
		tmp[n++] = p->r[i];
	for (i = 1, j = 0; i < n; i++) {
		if (tmp[i].lo <= tmp[j].hi) {
			if (tmp[i].hi > tmp[j].hi)
				tmp[j].hi = tmp[i].hi;
		} else {
			tmp[++j] = tmp[i];
		}
	}
	n = j + 1;
	if (n > INIT_PORTS_MAX)
		return -1;
	memcpy(p->r, tmp, n * sizeof(tmp[0]));
	p->n = n;
	return 0;
}

int init_ports_has(const struct init_ports *p, uint16_t port)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (port >= p->r[i].lo && port <= p->r[i].hi)
			return 1;
	return 0;
}

/* Strict decimal port 1..65535 from [s, s+n). */
static int init_port_num(const char *s, size_t n, uint16_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Trims spaces and tabs around [*s, *s+*n). */
static void init_trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Returns 1 when <s> holds nothing but spaces and tabs. */
static int init_blank(const char *s)
{
	return s[strspn(s, " \t")] == '\0';
}

int init_ports_parse(struct init_ports *p, const char *s,
                     char *err, size_t errlen)
{
	struct init_ports tmp = *p;
	const char *item = s;

	if (init_blank(s))
		return 0;
	for (;;) {
		const char *comma = strchr(item, ',');
		size_t n = comma ? (size_t)(comma - item) : strlen(item);
		const char *it = item, *dash;
		uint16_t lo, hi;

		init_trim(&it, &n);
		if (n == 0) {
			snprintf(err, errlen, "bad port list \"%s\": empty item", s);
			return -1;
		}
		dash = memchr(it, '-', n);
		if (dash) {
			size_t ln = (size_t)(dash - it), hn = n - ln - 1;
			const char *h = dash + 1;

			init_trim(&it, &ln);
			init_trim(&h, &hn);
			if (init_port_num(it, ln, &lo) < 0 ||
			    init_port_num(h, hn, &hi) < 0 || lo > hi) {
				snprintf(err, errlen, "bad port list \"%s\": \"%.*s\" "
				         "is not a port range LOW-HIGH within 1-65535",
				         s, (int)n, it);
				return -1;
			}
		} else {
			if (init_port_num(it, n, &lo) < 0) {
				snprintf(err, errlen, "bad port list \"%s\": \"%.*s\" "
				         "is not a port (1-65535)", s, (int)n, it);
				return -1;
			}
			hi = lo;
		}
		if (init_ports_add(&tmp, lo, hi) < 0) {
			snprintf(err, errlen, "bad port list \"%s\": more than %d "
			         "separate ports or ranges", s, INIT_PORTS_MAX);
			return -1;
		}
		if (!comma)
			break;
		item = comma + 1;
	}
	*p = tmp;
	return 0;
}

/* ---- CIDR lists ---------------------------------------------------- */

int init_cidr_str(const struct init_cidr *c, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a)))
		return -1;
	n = snprintf(out, outlen, "%s/%u", a, c->prefix);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Parses one trimmed item "ADDR[/PREFIX]" into <c>. */
static int init_cidr_parse1(const char *it, size_t n, struct init_cidr *c)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash = memchr(it, '/', n);
	size_t an = slash ? (size_t)(slash - it) : n, i, bits;
	unsigned max, prefix = 0;

	if (an == 0 || an >= sizeof(a))
		return -1;
	memcpy(a, it, an);
	a[an] = '\0';
	memset(c, 0, sizeof(*c));
	if (memchr(a, ':', an)) {
		if (inet_pton(AF_INET6, a, c->addr) != 1)
			return -1;
		c->family = 6;
		max = 128;
	} else {
		if (inet_pton(AF_INET, a, c->addr) != 1)
			return -1;
		c->family = 4;
		max = 32;
	}
	if (slash) {
		size_t pn = n - an - 1;
		const char *ps = slash + 1;

		if (pn == 0 || pn > 3)
			return -1;
		for (i = 0; i < pn; i++) {
			if (ps[i] < '0' || ps[i] > '9')
				return -1;
			prefix = prefix * 10 + (unsigned)(ps[i] - '0');
		}
		if (prefix > max)
			return -1;
	} else {
		prefix = max;
	}
	c->prefix = prefix;
	/* clear the host bits */
	for (bits = 0, i = 0; i < max / 8; i++, bits += 8) {
		if (bits >= prefix)
			c->addr[i] = 0;
		else if (bits + 8 > prefix)
			c->addr[i] &= (unsigned char)(0xff << (8 - (prefix - bits)));
	}
	return 0;
}

int init_cidrs_parse(struct init_cidrs *c, const char *s,
                     char *err, size_t errlen)
{
	struct init_cidrs tmp = *c;
	const char *item = s;
	size_t i;

	if (init_blank(s))
		return 0;
	for (;;) {
		const char *comma = strchr(item, ',');
		size_t n = comma ? (size_t)(comma - item) : strlen(item);
		const char *it = item;
		struct init_cidr one;

		init_trim(&it, &n);
		if (n == 0) {
			snprintf(err, errlen, "bad CIDR list \"%s\": empty item", s);
			return -1;
		}
		if (init_cidr_parse1(it, n, &one) < 0) {
			snprintf(err, errlen, "bad CIDR \"%.*s\": expected an IPv4 "
			         "or IPv6 address with an optional /PREFIX "
			         "(e.g. 10.0.0.0/8, fd00::/8)", (int)n, it);
			return -1;
		}
		for (i = 0; i < tmp.n; i++)
			if (tmp.c[i].family == one.family &&
			    tmp.c[i].prefix == one.prefix &&
			    memcmp(tmp.c[i].addr, one.addr, 16) == 0)
				break;
		if (i == tmp.n) {
			if (tmp.n == INIT_CIDRS_MAX) {
				snprintf(err, errlen, "bad CIDR list: more than %d "
				         "entries", INIT_CIDRS_MAX);
				return -1;
			}
			tmp.c[tmp.n++] = one;
		}
		if (!comma)
			break;
		item = comma + 1;
	}
	*c = tmp;
	return 0;
}

/* ---- backends ------------------------------------------------------ */

static const char *const init_backend_names[] = {
	[INIT_BACKEND_AUTO] = "auto",
	[INIT_BACKEND_IPT_NFT] = "iptables-nft",
	[INIT_BACKEND_IPT_LEGACY] = "iptables-legacy",
	[INIT_BACKEND_NFT] = "nft",
};

int init_backend_parse(const char *s, enum init_backend *out)
{
	size_t i;

	for (i = 0; i < sizeof(init_backend_names) / sizeof(init_backend_names[0]); i++) {
		if (strcmp(s, init_backend_names[i]) == 0) {
			*out = (enum init_backend)i;
			return 0;
		}
	}
	return -1;
}

const char *init_backend_str(enum init_backend b)
{
	if ((size_t)b < sizeof(init_backend_names) / sizeof(init_backend_names[0]))
		return init_backend_names[b];
	return "?";
}

/* ---- iptables ------------------------------------------------------ */

const char *init_ipt_tool(enum init_backend b, int family, int restore)
{
	static const char *const names[2][2][2] = {
		/* [legacy][v6][restore] */
		{ { "iptables-nft-save", "iptables-nft-restore" },
		  { "ip6tables-nft-save", "ip6tables-nft-restore" } },
		{ { "iptables-legacy-save", "iptables-legacy-restore" },
		  { "ip6tables-legacy-save", "ip6tables-legacy-restore" } },
	};

	return names[b == INIT_BACKEND_IPT_LEGACY][family == 6][restore != 0];
}

void init_ipt_restore_argv(enum init_backend b, int family,
                           const char *argv[INIT_ARGV_MAX])
{
	size_t n = 0;

	argv[n++] = init_ipt_tool(b, family, 1);
	argv[n++] = "--noflush";
	if (b == INIT_BACKEND_IPT_LEGACY) {
		/* legacy takes the xtables lock; nft needs none (and ignores -w) */
		argv[n++] = "--wait";
		argv[n++] = INIT_LEGACY_WAIT;
	}
	argv[n] = NULL;
}

/* Compares line [s, s+n) with the C string <lit>. */
static int init_line_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int init_line_starts(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n >= l && memcmp(s, lit, l) == 0;
}

void init_ipt_state_parse(const char *text, struct init_ipt_state *st)
{
	int in_nat = 0;

	memset(st, 0, sizeof(*st));
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		while (n && (text[n - 1] == ' ' || text[n - 1] == '\r'))
			n--;
		if (n && text[0] == '*')
			in_nat = init_line_is(text, n, "*nat");
		else if (init_line_starts(text, n, "-A "))
			st->rules++;
		if (in_nat) {
			if (init_line_starts(text, n, ":" INIT_CHAIN_IN " "))
				st->in_chain = 1;
			else if (init_line_starts(text, n, ":" INIT_CHAIN_OUT " "))
				st->out_chain = 1;
			else if (init_line_is(text, n, "-A PREROUTING -j " INIT_CHAIN_IN))
				st->in_jumps++;
			else if (init_line_is(text, n, "-A OUTPUT -j " INIT_CHAIN_OUT))
				st->out_jumps++;
		}
		if (!nl)
			break;
		text = nl + 1;
	}
}

/* Appends one multiport rule per chunk of at most INIT_MULTIPORT_MAX
 * ports: "-A <chain> -p tcp -m multiport --dports <chunk> <target>". */
static int init_ipt_multiport(struct buf *o, const char *chain,
                              const struct init_ports *p, const char *target)
{
	size_t i = 0;

	while (i < p->n) {
		int used = 0;
		const char *sep = "";

		if (buf_printf(o, "-A %s -p tcp -m multiport --dports ", chain) < 0)
			return -1;
		for (; i < p->n; i++) {
			int cost = p->r[i].lo == p->r[i].hi ? 1 : 2;

			if (used + cost > INIT_MULTIPORT_MAX)
				break;
			used += cost;
			if ((p->r[i].lo == p->r[i].hi ?
			     buf_printf(o, "%s%u", sep, p->r[i].lo) :
			     buf_printf(o, "%s%u:%u", sep, p->r[i].lo, p->r[i].hi)) < 0)
				return -1;
			sep = ",";
		}
		if (buf_printf(o, " %s\n", target) < 0)
			return -1;
	}
	return 0;
}

/* Appends "-A <chain> <flag> <cidr> -j RETURN" for each CIDR of <family>. */
static int init_ipt_nets(struct buf *o, const char *chain, const char *flag,
                         const struct init_cidrs *nets, int family)
{
	char s[INET6_ADDRSTRLEN + 8];
	size_t i;

	for (i = 0; i < nets->n; i++) {
		if (nets->c[i].family != family)
			continue;
		if (init_cidr_str(&nets->c[i], s, sizeof(s)) < 0 ||
		    buf_printf(o, "-A %s %s %s -j RETURN\n", chain, flag, s) < 0)
			return -1;
	}
	return 0;
}

/* The inbound ports never redirected: the proxy's admin and control ports
 * and the operator's skip list. */
static int init_ignore_in(const struct init_conf *c, struct init_ports *out)
{
	*out = c->skip_in;
	if (init_ports_add(out, c->control_port, c->control_port) < 0 ||
	    init_ports_add(out, c->admin_port, c->admin_port) < 0)
		return -1;
	return 0;
}

int init_ipt_render(const struct init_conf *c, int family,
                    const struct init_ipt_state *st, struct buf *o)
{
	struct init_ports ignore;
	char target[64];

	if (init_ignore_in(c, &ignore) < 0)
		return -1;
	if (buf_printf(o, "*nat\n:%s - [0:0]\n:%s - [0:0]\n",
	               INIT_CHAIN_IN, INIT_CHAIN_OUT) < 0)
		return -1;
	/* inbound */
	if (init_ipt_multiport(o, INIT_CHAIN_IN, &ignore, "-j RETURN") < 0 ||
	    init_ipt_nets(o, INIT_CHAIN_IN, "-s", &c->skip_nets, family) < 0)
		return -1;
	snprintf(target, sizeof(target), "-j REDIRECT --to-ports %u",
	         c->inbound_port);
	if (c->inbound.n) {
		if (init_ipt_multiport(o, INIT_CHAIN_IN, &c->inbound, target) < 0)
			return -1;
	} else if (buf_printf(o, "-A %s -p tcp %s\n", INIT_CHAIN_IN, target) < 0) {
		return -1;
	}
	/* outbound */
	if (buf_printf(o, "-A %s -m owner --uid-owner %u -j RETURN\n"
	               "-A %s -o lo -j RETURN\n",
	               INIT_CHAIN_OUT, (unsigned)c->proxy_uid, INIT_CHAIN_OUT) < 0 ||
	    init_ipt_multiport(o, INIT_CHAIN_OUT, &c->skip_out, "-j RETURN") < 0 ||
	    init_ipt_nets(o, INIT_CHAIN_OUT, "-d", &c->skip_nets, family) < 0 ||
	    buf_printf(o, "-A %s -p tcp -j REDIRECT --to-ports %u\n",
	               INIT_CHAIN_OUT, c->outbound_port) < 0)
		return -1;
	/* jumps, only when absent */
	if (!st->in_jumps &&
	    buf_printf(o, "-A PREROUTING -j %s\n", INIT_CHAIN_IN) < 0)
		return -1;
	if (!st->out_jumps &&
	    buf_printf(o, "-A OUTPUT -j %s\n", INIT_CHAIN_OUT) < 0)
		return -1;
	return buf_append_str(o, "COMMIT\n");
}

int init_ipt_render_uninstall(const struct init_ipt_state *st, struct buf *o)
{
	int i;

	if (!st->in_chain && !st->out_chain && !st->in_jumps && !st->out_jumps)
		return 0;
	if (buf_append_str(o, "*nat\n") < 0)
		return -1;
	for (i = 0; i < st->in_jumps; i++)
		if (buf_printf(o, "-D PREROUTING -j %s\n", INIT_CHAIN_IN) < 0)
			return -1;
	for (i = 0; i < st->out_jumps; i++)
		if (buf_printf(o, "-D OUTPUT -j %s\n", INIT_CHAIN_OUT) < 0)
			return -1;
	if (st->in_chain &&
	    buf_printf(o, "-F %s\n-X %s\n", INIT_CHAIN_IN, INIT_CHAIN_IN) < 0)
		return -1;
	if (st->out_chain &&
	    buf_printf(o, "-F %s\n-X %s\n", INIT_CHAIN_OUT, INIT_CHAIN_OUT) < 0)
		return -1;
	return buf_append_str(o, "COMMIT\n");
}

/* ---- nft ----------------------------------------------------------- */

/* Appends "{ 25, 8000-8100 }". */
static int init_nft_ports(struct buf *o, const struct init_ports *p)
{
	size_t i;

	if (buf_append_str(o, "{ ") < 0)
		return -1;
	for (i = 0; i < p->n; i++) {
		if ((p->r[i].lo == p->r[i].hi ?
		     buf_printf(o, "%s%u", i ? ", " : "", p->r[i].lo) :
		     buf_printf(o, "%s%u-%u", i ? ", " : "", p->r[i].lo, p->r[i].hi)) < 0)
			return -1;
	}
	return buf_append_str(o, " }");
}

/* Appends "\t\t<sel> { a, b } return\n" for the CIDRs of <family>, if any;
 * <sel> is e.g. "ip saddr". */
static int init_nft_nets(struct buf *o, const char *sel,
                         const struct init_cidrs *nets, int family)
{
	char s[INET6_ADDRSTRLEN + 8];
	const char *sep = "";
	size_t i;
	int any = 0;

	for (i = 0; i < nets->n; i++) {
		if (nets->c[i].family != family)
			continue;
		if (!any && buf_printf(o, "\t\t%s { ", sel) < 0)
			return -1;
		any = 1;
		if (init_cidr_str(&nets->c[i], s, sizeof(s)) < 0 ||
		    buf_printf(o, "%s%s", sep, s) < 0)
			return -1;
		sep = ", ";
	}
	if (any && buf_append_str(o, " } return\n") < 0)
		return -1;
	return 0;
}

int init_nft_render(const struct init_conf *c, struct buf *o)
{
	struct init_ports ignore;
	const char *v4only = c->ipv6 ? "" : "\t\tmeta nfproto ipv6 return\n";

	if (init_ignore_in(c, &ignore) < 0)
		return -1;
	if (buf_printf(o, "table inet %s\ndelete table inet %s\n"
	               "table inet %s {\n"
	               "\tchain prerouting {\n"
	               "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
	               "%s\t\ttcp dport ",
	               INIT_NFT_TABLE, INIT_NFT_TABLE, INIT_NFT_TABLE, v4only) < 0 ||
	    init_nft_ports(o, &ignore) < 0 ||
	    buf_append_str(o, " return\n") < 0 ||
	    init_nft_nets(o, "ip saddr", &c->skip_nets, 4) < 0 ||
	    (c->ipv6 && init_nft_nets(o, "ip6 saddr", &c->skip_nets, 6) < 0))
		return -1;
	if (c->inbound.n) {
		if (buf_append_str(o, "\t\ttcp dport ") < 0 ||
		    init_nft_ports(o, &c->inbound) < 0 ||
		    buf_printf(o, " redirect to :%u\n", c->inbound_port) < 0)
			return -1;
	} else if (buf_printf(o, "\t\tmeta l4proto tcp redirect to :%u\n",
	                      c->inbound_port) < 0) {
		return -1;
	}
	if (buf_printf(o, "\t}\n"
	               "\tchain output {\n"
	               "\t\ttype nat hook output priority -100; policy accept;\n"
	               "%s\t\tmeta skuid %u return\n"
	               "\t\toifname \"lo\" return\n",
	               v4only, (unsigned)c->proxy_uid) < 0)
		return -1;
	if (c->skip_out.n &&
	    (buf_append_str(o, "\t\ttcp dport ") < 0 ||
	     init_nft_ports(o, &c->skip_out) < 0 ||
	     buf_append_str(o, " return\n") < 0))
		return -1;
	if (init_nft_nets(o, "ip daddr", &c->skip_nets, 4) < 0 ||
	    (c->ipv6 && init_nft_nets(o, "ip6 daddr", &c->skip_nets, 6) < 0))
		return -1;
	return buf_printf(o, "\t\tmeta l4proto tcp redirect to :%u\n\t}\n}\n",
	                  c->outbound_port);
}

const char *init_nft_uninstall_text(void)
{
	return "delete table inet " INIT_NFT_TABLE "\n";
}

int init_nft_has_table(const char *text)
{
	static const char want[] = "table inet " INIT_NFT_TABLE;

	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		while (n && (text[n - 1] == ' ' || text[n - 1] == '\r' ||
		             text[n - 1] == '{'))
			n--;
		if (init_line_is(text, n, want))
			return 1;
		if (!nl)
			break;
		text = nl + 1;
	}
	return 0;
}
