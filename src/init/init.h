/*
 * init: `meshd init`, the traffic-redirect helper (Linkerd's proxy-init).
 *
 * It installs NAT REDIRECT rules in a network namespace (a pod's, or a VM
 * host's with --host) so that inbound TCP reaches the proxy's inbound
 * listener (4143) and outbound TCP the outbound listener (4140), except the
 * proxy's own traffic (uid 2102), loopback output, the proxy's admin and
 * control ports and whatever the operator skips. Three backends write the
 * same policy: iptables-nft, iptables-legacy (through the *-restore tools,
 * one atomic transaction per address family) and native nft (one
 * `table inet meshd`, through `nft -f -`).
 *
 * The module is split in three:
 *  - init_rules.c: pure functions (parsing of port lists and CIDRs, reading
 *    a *-save dump, rendering the rule text). No I/O, no globals: the unit
 *    tests check their exact output.
 *  - init_exec.c: running a tool with fork/execvp and argv arrays (no
 *    shell), feeding stdin and capturing stdout and stderr, with a deadline.
 *  - init.c: the subcommand (flags, netns, backend choice, apply).
 *
 * Contracts shared by every function here: 0 on success, negative on
 * failure; error text goes to a caller-provided <err>/<errlen> buffer.
 */
#ifndef MESHD_INIT_INIT_H
#define MESHD_INIT_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Own chains (iptables) and table (nft). Everything meshd adds is named so. */
#define INIT_CHAIN_IN  "MESHD_INBOUND"
#define INIT_CHAIN_OUT "MESHD_OUTPUT"
#define INIT_NFT_TABLE "meshd"

/* iptables' multiport match takes at most 15 ports; a range counts twice. */
#define INIT_MULTIPORT_MAX 15

/* Seconds the legacy restore waits for the xtables lock. */
#define INIT_LEGACY_WAIT "10"
/* Room for the longest tool command line meshd builds, NULL included. */
#define INIT_ARGV_MAX 6

#define INIT_PORTS_MAX 64
#define INIT_CIDRS_MAX 64

struct init_port_range {
	uint16_t lo;  /* 1..65535 */
	uint16_t hi;  /* lo..65535 */
};

/* A port list, kept sorted by lo with overlapping ranges merged (adjacent
 * ranges stay apart: nft accepts them and the text stays readable). */
struct init_ports {
	size_t n;
	struct init_port_range r[INIT_PORTS_MAX];
};

struct init_cidr {
	int family;              /* 4 or 6 */
	unsigned char addr[16];  /* network address, host bits cleared */
	unsigned prefix;         /* 0..32 or 0..128 */
};

/* A CIDR list, in the order given, duplicates removed. */
struct init_cidrs {
	size_t n;
	struct init_cidr c[INIT_CIDRS_MAX];
};

enum init_backend {
	INIT_BACKEND_AUTO,
	INIT_BACKEND_IPT_NFT,
	INIT_BACKEND_IPT_LEGACY,
	INIT_BACKEND_NFT,
};

/* What to install. Rendering reads it only. */
struct init_conf {
	uint16_t inbound_port;        /* proxy inbound listener (4143) */
	uint16_t outbound_port;       /* proxy outbound listener (4140) */
	uint16_t admin_port;          /* never redirected inbound (4191) */
	uint16_t control_port;        /* never redirected inbound (4190) */
	uint32_t proxy_uid;           /* its output is never redirected (2102) */
	struct init_ports inbound;    /* n == 0: every port; else only these */
	struct init_ports skip_in;    /* inbound destination ports left alone */
	struct init_ports skip_out;   /* outbound destination ports left alone */
	struct init_cidrs skip_nets;  /* peers (source inbound, destination
	                               * outbound) left alone */
	int ipv6;                     /* also IPv6 (ip6tables, or inet in nft) */
};

/* What an iptables *-save dump says about meshd's objects in table nat. */
struct init_ipt_state {
	int in_chain;   /* MESHD_INBOUND exists */
	int out_chain;  /* MESHD_OUTPUT exists */
	int in_jumps;   /* "-A PREROUTING -j MESHD_INBOUND" lines */
	int out_jumps;  /* "-A OUTPUT -j MESHD_OUTPUT" lines */
	int rules;      /* "-A" lines in every table: who holds rules (auto) */
};

/* Sets <c> to Linkerd's defaults: 4143, 4140, 4191, 4190, uid 2102, IPv6
 * on, empty lists. */
void init_conf_default(struct init_conf *c);

/*
 * Parses a port list "25,443,8000-8100" (spaces around items allowed, the
 * empty string is the empty list) and adds it to <p>, keeping <p> sorted and
 * merged. Ports are 1..65535 and a range's low end is at most its high end.
 * Returns 0, or -1 with <p> unchanged and a message in <err>.
 */
int init_ports_parse(struct init_ports *p, const char *s,
                     char *err, size_t errlen);

/* Adds [lo, hi] to <p> (sorted, merged). Returns 0, or -1 when full. */
int init_ports_add(struct init_ports *p, uint16_t lo, uint16_t hi);

/* Returns 1 when <port> is in <p>, else 0. */
int init_ports_has(const struct init_ports *p, uint16_t port);

/*
 * Parses a CIDR list "10.0.0.0/8,fd00::/8,192.0.2.7" (an address alone is a
 * /32 or /128; host bits are cleared, as Go's net.ParseCIDR does) and adds
 * it to <c>. Returns 0, or -1 with <c> unchanged and a message in <err>.
 */
int init_cidrs_parse(struct init_cidrs *c, const char *s,
                     char *err, size_t errlen);

/* Writes "10.0.0.0/8" or "fd00::/8" into <out>. Returns 0, or -1 when
 * <outlen> is too small. */
int init_cidr_str(const struct init_cidr *c, char *out, size_t outlen);

/* Backend names: "auto", "iptables-nft", "iptables-legacy", "nft".
 * init_backend_parse returns 0, or -1 for an unknown name. */
int init_backend_parse(const char *s, enum init_backend *out);
const char *init_backend_str(enum init_backend b);

/* The tool of iptables flavour <b> (INIT_BACKEND_IPT_NFT or _LEGACY) for
 * <family> (4 or 6): its *-save (<restore> 0) or *-restore. */
const char *init_ipt_tool(enum init_backend b, int family, int restore);

/* Fills <argv> (NULL-terminated) with the restore command of <b>/<family>:
 * "<tool> --noflush", plus "--wait 10" for the legacy flavour, which takes
 * the xtables lock. */
void init_ipt_restore_argv(enum init_backend b, int family,
                           const char *argv[INIT_ARGV_MAX]);

/*
 * Reads an iptables-save / ip6tables-save dump (every table, or one) into
 * <st>. Lines it does not know are ignored; it never fails.
 */
void init_ipt_state_parse(const char *text, struct init_ipt_state *st);

/*
 * Renders the iptables-restore input (for `*-restore --noflush`) that
 * installs <c> for <family> (4 or 6): declares (and so creates or flushes)
 * the own chains, fills them, and adds the jumps from PREROUTING and OUTPUT
 * only where <st> says they are absent. Appends to <out>.
 * Returns 0, or -1 when <out> is full.
 */
int init_ipt_render(const struct init_conf *c, int family,
                    const struct init_ipt_state *st, struct buf *out);

/*
 * Renders the iptables-restore input that removes what <st> shows meshd
 * installed: each jump, then each own chain (flushed, then deleted).
 * Appends nothing when nothing is installed. Returns 0, or -1 when <out> is
 * full.
 */
int init_ipt_render_uninstall(const struct init_ipt_state *st,
                              struct buf *out);

/*
 * Renders the `nft -f -` input that replaces `table inet meshd` with the
 * rules for <c> in one transaction (declare, delete, define: atomic and
 * idempotent). Appends to <out>. Returns 0, or -1 when <out> is full.
 */
int init_nft_render(const struct init_conf *c, struct buf *out);

/* The `nft -f -` input that deletes `table inet meshd`. */
const char *init_nft_uninstall_text(void);

/* Returns 1 when `nft list tables` output <text> holds table inet meshd. */
int init_nft_has_table(const char *text);

/*
 * Runs argv[0] (found through PATH) with <argv>, no shell. <in> (may be
 * NULL) is written to its stdin; its stdout goes to <out> (or is discarded
 * when <out> is NULL) and its stderr to <errout> (truncated to what fits;
 * either buffer always keeps one byte free, so buf_cstr works on it).
 * Gives up and kills the child after <timeout_ms>.
 * Returns the exit status (0..255) of the tool, -ENOENT when it is not
 * installed, -ETIMEDOUT, -E2BIG when stdout overflowed <out>, or another
 * -errno. Ignores SIGPIPE in this process (a tool may exit before reading
 * all its input).
 */
int init_exec(const char *const argv[], const char *in, size_t inlen,
              struct buf *out, struct buf *errout, int timeout_ms);

/* `meshd init`: exit status 0 ok, 1 runtime failure, 2 bad usage. */
int init_main(int argc, char **argv);

#endif
