/*
 * init: the `meshd init` subcommand.
 *
 * Installs (or with --uninstall removes) the NAT redirection that sends a
 * pod's or a host's TCP traffic through the proxy, in the current network
 * namespace or in the one named by --netns. Runs once and exits: 0 done,
 * 1 failed at run time (tool missing, not privileged, a tool refused the
 * rules), 2 bad usage (unknown flag or backend, bad port list or CIDR).
 *
 * IMPLEMENTATION NOTES
 *  - Every change is one atomic transaction per tool run: iptables-restore
 *    --noflush (one per address family) or `nft -f -`. Before writing,
 *    meshd reads the current ruleset (iptables-save with no -t, which unlike
 *    "-t nat" never instantiates a legacy table) to learn whether its jumps
 *    already exist: install adds them only when absent, uninstall deletes
 *    exactly the ones it finds.
 *  - If IPv6 fails after IPv4 succeeded on a namespace that held no meshd
 *    rules, the IPv4 rules are removed again so that a failed run leaves
 *    nothing half-installed.
 *  - --dry-run still reads (never writes); when it cannot read (no tool, no
 *    privilege) it says so and assumes nothing is installed, so the rules
 *    can be previewed anywhere.
 *  - "auto" counts the rules each iptables flavour holds (every table, both
 *    families) and picks the one holding more, iptables-nft on a tie, as
 *    Linkerd's proxy-init and Kubernetes' iptables-wrapper do: mixing
 *    flavours in one namespace gives confusing, order-dependent results.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/opt.h"
#include "init/init.h"

#define INIT_TOOL_TIMEOUT_MS 30000
#define INIT_DUMP_MAX (64u << 20)   /* a save dump of a busy host */
#define INIT_RULES_MAX (1u << 20)
#define INIT_STDERR_MAX 8192

struct init_ctx {
	struct init_conf conf;
	enum init_backend backend;
	const char *netns;     /* NULL: the current namespace */
	int dry_run;
	int uninstall;
	int host;
	unsigned changed;      /* bit (1 << backend): written or removed there
	                        * (in a dry run: would be) */
};

/* ---- tools --------------------------------------------------------- */

/* Returns 1 when a tool's stderr says it lacked privilege. */
static int init_denied(const char *msg)
{
	return strstr(msg, "Permission denied") ||
	       strstr(msg, "Operation not permitted") ||
	       strstr(msg, "you must be root");
}

/* Copies line <no> (1-based) of <text> into <out>; returns 0 if found. */
static int init_nth_line(const char *text, long no, char *out, size_t outlen)
{
	long i;

	for (i = 1; i < no && text; i++) {
		text = strchr(text, '\n');
		if (text)
			text++;
	}
	if (!text || !*text)
		return -1;
	snprintf(out, outlen, "%.*s", (int)strcspn(text, "\n"), text);
	return 0;
}

/*
 * Runs <argv> feeding <in> (may be NULL) and capturing stdout into <out>
 * (may be NULL). Returns 0 when the tool exited 0; otherwise -1 with a
 * message in <err> that names the tool and, when the tool's complaint is
 * about privilege, the fix. *<missing> (may be NULL) is set when the tool
 * is not installed.
 */
static int init_tool(const char *const argv[], const char *in,
                     struct buf *out, int *missing, char *err, size_t errlen)
{
	struct buf eb;
	const char *msg, *pkg = strcmp(argv[0], "nft") ? "iptables" : "nftables";
	char line[256];
	size_t mlen;
	long no;
	int rc;

	if (missing)
		*missing = 0;
	buf_init(&eb, INIT_STDERR_MAX);
	rc = init_exec(argv, in, in ? strlen(in) : 0, out, &eb,
	               INIT_TOOL_TIMEOUT_MS);
	msg = buf_cstr(&eb);
	if (!msg)
		msg = "";
	while (*msg == '\n' || *msg == ' ')
		msg++;
	mlen = strlen(msg);
	while (mlen && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' '))
		mlen--;
	if (rc == 0) {
		buf_free(&eb);
		return 0;
	}
	if (rc == -ENOENT) {
		if (missing)
			*missing = 1;
		snprintf(err, errlen, "%s not found: install %s", argv[0], pkg);
	} else if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "%s did not finish within %d s%s", argv[0],
		         INIT_TOOL_TIMEOUT_MS / 1000, strcmp(pkg, "iptables") ? "" :
		         " (is another program holding the xtables lock?)");
	} else if (rc == -E2BIG) {
		snprintf(err, errlen, "%s printed more than %u MiB", argv[0],
		         INIT_DUMP_MAX >> 20);
	} else if (rc < 0) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(-rc));
	} else if (init_denied(msg)) {
		snprintf(err, errlen, "meshd init needs NET_ADMIN (run as root): "
		         "%s: %.*s", argv[0], (int)strcspn(msg, "\n"), msg);
	} else {
		/* iptables-restore names the input line it choked on */
		const char *l = strstr(msg, "line ");

		snprintf(err, errlen, "%s failed (exit status %d): %.*s", argv[0],
		         rc, (int)mlen, msg);
		if (in && l && (no = strtol(l + 5, NULL, 10)) > 0 &&
		    init_nth_line(in, no, line, sizeof(line)) == 0) {
			size_t used = strlen(err);

			snprintf(err + used, errlen - used, " (line %ld: \"%s\")",
			         no, line);
		}
	}
	buf_free(&eb);
	return -1;
}

/* Prints "# would run: <argv...>" and <text> (dry run). */
static void init_show(const char *const argv[], const char *text)
{
	size_t i;

	dprintf(1, "# would run:");
	for (i = 0; argv[i]; i++)
		dprintf(1, " %s", argv[i]);
	dprintf(1, "%s\n%s", text ? " <<EOF" : "", text ? text : "");
	if (text)
		dprintf(1, "EOF\n");
}

/*
 * Reads the ruleset with <argv> into <dump>. In a dry run a failure is
 * reported as a comment and the dump left empty. Returns 0, or -1 with
 * <err> set (real runs only).
 */
static int init_read(struct init_ctx *x, const char *const argv[],
                     struct buf *dump, char *err, size_t errlen)
{
	if (init_tool(argv, NULL, dump, NULL, err, errlen) == 0)
		return 0;
	if (!x->dry_run)
		return -1;
	dprintf(1, "# cannot read the current rules (%s); assuming none are "
	        "installed\n", err);
	buf_reset(dump);
	return 0;
}

/* ---- iptables ------------------------------------------------------ */

/* Reads the meshd state of one iptables flavour and family. */
static int init_ipt_read(struct init_ctx *x, enum init_backend b, int family,
                         struct init_ipt_state *st, char *err, size_t errlen)
{
	const char *argv[] = { init_ipt_tool(b, family, 0), NULL };
	struct buf dump;
	const char *text;

	buf_init(&dump, INIT_DUMP_MAX);
	if (init_read(x, argv, &dump, err, errlen) < 0) {
		buf_free(&dump);
		return -1;
	}
	text = buf_cstr(&dump);
	init_ipt_state_parse(text ? text : "", st);
	buf_free(&dump);
	return 0;
}

/* Feeds <rules> to the restore tool of <b>/<family> (or shows it). */
static int init_ipt_apply(struct init_ctx *x, enum init_backend b, int family,
                          const char *rules, char *err, size_t errlen)
{
	const char *argv[INIT_ARGV_MAX];

	init_ipt_restore_argv(b, family, argv);
	if (x->dry_run)
		init_show(argv, rules);
	else if (init_tool(argv, rules, NULL, NULL, err, errlen) < 0)
		return -1;
	x->changed |= 1u << b;
	return 0;
}

/* Removes meshd's chains and jumps from one flavour and family. */
static int init_ipt_remove(struct init_ctx *x, enum init_backend b, int family,
                           char *err, size_t errlen)
{
	struct init_ipt_state st;
	struct buf rules;
	int rc = 0;

	if (init_ipt_read(x, b, family, &st, err, errlen) < 0)
		return -1;
	buf_init(&rules, INIT_RULES_MAX);
	if (init_ipt_render_uninstall(&st, &rules) < 0 || !buf_cstr(&rules)) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	} else if (buf_len(&rules)) {
		rc = init_ipt_apply(x, b, family, buf_cstr(&rules), err, errlen);
	}
	buf_free(&rules);
	return rc;
}

/* Installs <x>'s policy for one flavour and family. *<had> tells whether
 * meshd objects were there before. */
static int init_ipt_install(struct init_ctx *x, enum init_backend b,
                            int family, int *had, char *err, size_t errlen)
{
	struct init_ipt_state st;
	struct buf rules;
	int rc;

	if (init_ipt_read(x, b, family, &st, err, errlen) < 0)
		return -1;
	*had = st.in_chain || st.out_chain || st.in_jumps || st.out_jumps;
	buf_init(&rules, INIT_RULES_MAX);
	if (init_ipt_render(&x->conf, family, &st, &rules) < 0 ||
	    !buf_cstr(&rules)) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	} else {
		rc = init_ipt_apply(x, b, family, buf_cstr(&rules), err, errlen);
	}
	buf_free(&rules);
	return rc;
}

/* Appends <hint> to <err> when it fits. */
static void init_hint(char *err, size_t errlen, const char *hint)
{
	size_t used = strlen(err);

	snprintf(err + used, errlen - used, "%s", hint);
}

/* Installs or removes (x->uninstall) the policy of iptables flavour <b>,
 * IPv4 then IPv6, as one unit: see the IMPLEMENTATION NOTES. */
static int init_ipt_run(struct init_ctx *x, enum init_backend b,
                        char *err, size_t errlen)
{
	int had4 = 1, had6;

	if (x->uninstall) {
		if (init_ipt_remove(x, b, 4, err, errlen) < 0)
			return -1;
		if (x->conf.ipv6 && init_ipt_remove(x, b, 6, err, errlen) < 0) {
			init_hint(err, errlen, " (IPv4 is done; on a host without "
			          "IPv6 use --ipv6=false)");
			return -1;
		}
		return 0;
	}
	if (init_ipt_install(x, b, 4, &had4, err, errlen) < 0)
		return -1;
	if (x->conf.ipv6 && init_ipt_install(x, b, 6, &had6, err, errlen) < 0) {
		char ignored[256];
		int denied = strstr(err, "NET_ADMIN") || strstr(err, "not found");

		if (!had4 && !x->dry_run &&
		    init_ipt_remove(x, b, 4, ignored, sizeof(ignored)) == 0)
			init_hint(err, errlen, " (the IPv4 rules were removed again)");
		if (!denied)
			init_hint(err, errlen, "; on a host without IPv6 use "
			          "--ipv6=false");
		return -1;
	}
	return 0;
}

/* Counts the rules of one iptables flavour (both families); *<avail> is
 * cleared when its tools are not installed. */
static int init_ipt_count(struct init_ctx *x, enum init_backend b,
                          int *count, int *avail, char *err, size_t errlen)
{
	struct init_ipt_state st;
	struct buf dump;
	const char *text;
	int family, missing;

	*count = 0;
	*avail = 1;
	for (family = 4; family <= (x->conf.ipv6 ? 6 : 4); family += 2) {
		const char *argv[] = { init_ipt_tool(b, family, 0), NULL };

		buf_init(&dump, INIT_DUMP_MAX);
		if (init_tool(argv, NULL, &dump, &missing, err, errlen) < 0) {
			buf_free(&dump);
			if (!missing)
				return -1;
			if (family == 4) {
				*avail = 0;
				return 0;
			}
			continue;
		}
		text = buf_cstr(&dump);
		init_ipt_state_parse(text ? text : "", &st);
		*count += st.rules;
		buf_free(&dump);
	}
	return 0;
}

/* Picks the iptables flavour that already holds rules (auto). */
static int init_auto_pick(struct init_ctx *x, enum init_backend *out,
                          char *err, size_t errlen)
{
	int nft_n, leg_n, nft_ok, leg_ok;

	if (init_ipt_count(x, INIT_BACKEND_IPT_NFT, &nft_n, &nft_ok, err, errlen) < 0 ||
	    init_ipt_count(x, INIT_BACKEND_IPT_LEGACY, &leg_n, &leg_ok, err, errlen) < 0) {
		if (!x->dry_run)
			return -1;
		dprintf(1, "# cannot read the current rules (%s); assuming "
		        "iptables-nft\n", err);
		*out = INIT_BACKEND_IPT_NFT;
		return 0;
	}
	if (leg_ok && (leg_n > nft_n || !nft_ok))
		*out = INIT_BACKEND_IPT_LEGACY;
	else
		*out = INIT_BACKEND_IPT_NFT;
	dprintf(1, "%smeshd init: backend auto: iptables-legacy holds %d rules, "
	        "iptables-nft %d: using %s\n", x->dry_run ? "# " : "",
	        leg_ok ? leg_n : 0, nft_ok ? nft_n : 0, init_backend_str(*out));
	return 0;
}

/* ---- nft ----------------------------------------------------------- */

/* Installs (replaces) or removes `table inet meshd`, in one transaction. */
static int init_nft_run(struct init_ctx *x, char *err, size_t errlen)
{
	static const char *const apply[] = { "nft", "-f", "-", NULL };
	static const char *const list[] = { "nft", "list", "tables", NULL };
	struct buf b;
	const char *text;
	int rc = 0;

	if (x->uninstall) {
		buf_init(&b, INIT_DUMP_MAX);
		if (init_read(x, list, &b, err, errlen) < 0) {
			buf_free(&b);
			return -1;
		}
		text = buf_cstr(&b);
		if (text && init_nft_has_table(text)) {
			if (x->dry_run)
				init_show(apply, init_nft_uninstall_text());
			else
				rc = init_tool(apply, init_nft_uninstall_text(),
				               NULL, NULL, err, errlen);
			if (rc == 0)
				x->changed |= 1u << INIT_BACKEND_NFT;
		}
		buf_free(&b);
		return rc;
	}
	buf_init(&b, INIT_RULES_MAX);
	if (init_nft_render(&x->conf, &b) < 0 || !(text = buf_cstr(&b))) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	} else {
		if (x->dry_run)
			init_show(apply, text);
		else
			rc = init_tool(apply, text, NULL, NULL, err, errlen);
		if (rc == 0)
			x->changed |= 1u << INIT_BACKEND_NFT;
	}
	buf_free(&b);
	return rc;
}

/* ---- uninstall with auto: every backend that holds meshd objects ---- */

/* Removes meshd's rules from every installed backend (--backend auto). */
static int init_uninstall_all(struct init_ctx *x, char *err, size_t errlen)
{
	static const enum init_backend ipt[] = {
		INIT_BACKEND_IPT_NFT, INIT_BACKEND_IPT_LEGACY,
	};
	static const char *const probe[] = { "nft", "--version", NULL };
	char probe_err[256];
	int missing;
	size_t i;

	for (i = 0; i < sizeof(ipt) / sizeof(ipt[0]); i++) {
		const char *argv[] = { init_ipt_tool(ipt[i], 4, 0), "--version",
		                       NULL };

		/* a flavour that is not installed holds nothing */
		if (init_tool(argv, NULL, NULL, &missing, probe_err,
		              sizeof(probe_err)) < 0 && missing)
			continue;
		if (init_ipt_run(x, ipt[i], err, errlen) < 0)
			return -1;
	}
	if (init_tool(probe, NULL, NULL, &missing, probe_err,
	              sizeof(probe_err)) < 0 && missing)
		return 0;
	return init_nft_run(x, err, errlen);
}

/* ---- namespace ----------------------------------------------------- */

/* Enters the network namespace <name> (/var/run/netns/<name>) or <path>. */
static int init_netns_enter(const char *name, char *err, size_t errlen)
{
	char path[512];
	int fd, e;

	if (strchr(name, '/')) {
		snprintf(path, sizeof(path), "%s", name);
	} else if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		snprintf(err, errlen, "bad network namespace name \"%s\"", name);
		return -1;
	} else {
		snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "network namespace \"%s\" not found "
			         "(no %s; list them with: ip netns list)", name, path);
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen, "meshd init needs NET_ADMIN (run as "
			         "root): cannot open %s: %s", path, strerror(e));
		else
			snprintf(err, errlen, "cannot open network namespace %s: %s",
			         path, strerror(e));
		return -1;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		e = errno;
		close(fd);
		if (e == EPERM)
			snprintf(err, errlen, "meshd init needs NET_ADMIN (run as "
			         "root): cannot enter network namespace %s", path);
		else if (e == EINVAL)
			snprintf(err, errlen, "%s is not a network namespace", path);
		else
			snprintf(err, errlen, "cannot enter network namespace %s: %s",
			         path, strerror(e));
		return -1;
	}
	close(fd);
	return 0;
}

/* ---- flags --------------------------------------------------------- */

static int init_port_flag(const char *flag, uint64_t v, uint16_t *out)
{
	if (v < 1 || v > 65535) {
		dprintf(2, "meshd init: --%s: expected a port 1-65535, got %llu\n",
		        flag, (unsigned long long)v);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

static int init_list_flag(const char *flag, const char *val,
                          struct init_ports *ports, struct init_cidrs *nets)
{
	char err[512];

	if (!val)
		return 0;
	if ((ports ? init_ports_parse(ports, val, err, sizeof(err)) :
	     init_cidrs_parse(nets, val, err, sizeof(err))) == 0)
		return 0;
	dprintf(2, "meshd init: --%s: %s\n", flag, err);
	return -1;
}

static void init_summary(const struct init_ctx *x, enum init_backend b)
{
	const char *fam = x->conf.ipv6 ? "IPv4 and IPv6" : "IPv4";
	const char *where = x->netns ? x->netns : "the current namespace";
	char names[128] = "";
	size_t used = 0;
	int i;

	for (i = INIT_BACKEND_IPT_NFT; i <= INIT_BACKEND_NFT; i++) {
		if (!(x->changed & (1u << i)))
			continue;
		snprintf(names + used, sizeof(names) - used, "%s%s",
		         used ? ", " : "", init_backend_str((enum init_backend)i));
		used = strlen(names);
	}
	if (x->uninstall && !x->changed) {
		dprintf(1, "%smeshd init: no redirect rules of meshd in %s (%s): "
		        "nothing to remove\n", x->dry_run ? "# " : "", where,
		        init_backend_str(b));
	} else if (x->dry_run) {
		/* the rules shown above say it all */
	} else if (x->uninstall) {
		dprintf(1, "meshd init: removed the redirect rules (%s; %s) "
		        "from %s\n", names, fam, where);
	} else {
		dprintf(1, "meshd init: redirect rules installed with %s (%s) in "
		        "%s: inbound TCP -> :%u, outbound TCP -> :%u, uid %u "
		        "exempt%s\n", init_backend_str(b), fam, where,
		        x->conf.inbound_port, x->conf.outbound_port,
		        (unsigned)x->conf.proxy_uid,
		        x->host ? ", host mode (only --inbound-ports captured)" : "");
	}
	if (x->dry_run)
		dprintf(1, "# dry run: nothing was changed\n");
}

/* Prints <err> to stderr under the command's name (once: the privilege
 * message already starts with "meshd init"). */
static void init_fail(const char *err)
{
	dprintf(2, "%s%s\n", strncmp(err, "meshd init", 10) ? "meshd init: " : "",
	        err);
}

/*
 * The `meshd init` entry point. Returns the process exit status: 0 done,
 * 1 run-time failure (message on stderr), 2 bad usage.
 */
int init_main(int argc, char **argv)
{
	const char *backend = "iptables-nft", *netns = NULL;
	const char *in_ports = NULL, *skip_in = NULL, *skip_out = NULL;
	const char *skip_nets = NULL;
	uint64_t inbound = 4143, outbound = 4140, admin = 4191, control = 4190;
	uint64_t uid = 2102;
	int ipv6 = 1, host = 0, dry_run = 0, uninstall = 0, rc;
	const struct opt opts[] = {
		{ "backend", OPT_STR, &backend, "NAME",
		  "auto, iptables-nft, iptables-legacy or nft" },
		{ "netns", OPT_STR, &netns, "NAME|PATH",
		  "network namespace: a name in /var/run/netns or a path" },
		{ "inbound-port", OPT_U64, &inbound, "PORT",
		  "proxy inbound listener" },
		{ "outbound-port", OPT_U64, &outbound, "PORT",
		  "proxy outbound listener" },
		{ "admin-port", OPT_U64, &admin, "PORT",
		  "proxy admin port, never redirected" },
		{ "control-port", OPT_U64, &control, "PORT",
		  "proxy control (tap) port, never redirected" },
		{ "proxy-uid", OPT_U64, &uid, "UID",
		  "user id of the proxy, whose traffic is never redirected" },
		{ "inbound-ports", OPT_STR, &in_ports, "LIST",
		  "capture only these inbound ports, e.g. 80,443,8000-8100 "
		  "(required with --host; default all)" },
		{ "skip-inbound-ports", OPT_STR, &skip_in, "LIST",
		  "inbound ports never redirected" },
		{ "skip-outbound-ports", OPT_STR, &skip_out, "LIST",
		  "outbound ports never redirected" },
		{ "skip-subnets", OPT_STR, &skip_nets, "CIDRS",
		  "peers never redirected (source inbound, destination outbound)" },
		{ "ipv6", OPT_BOOL, &ipv6, NULL,
		  "also IPv6 (default true; --ipv6=false to skip)" },
		{ "host", OPT_BOOL, &host, NULL,
		  "host (VM) mode: capture inbound only on --inbound-ports" },
		{ "dry-run", OPT_BOOL, &dry_run, NULL,
		  "print the rules and commands, change nothing" },
		{ "uninstall", OPT_BOOL, &uninstall, NULL,
		  "remove the rules meshd installed" },
	};
	const struct opt_cmd cmd = {
		"init", NULL,
		"Install the traffic redirection to the proxy (iptables-nft, "
		"iptables-legacy or nft) in a pod's network namespace or on a host.",
		opts, sizeof(opts) / sizeof(opts[0]),
	};
	struct init_ctx x;
	enum init_backend b;
	char err[4096];

	rc = opt_parse_or_usage(&cmd, argc, argv);
	if (rc < 0)
		return rc == -2 ? 0 : 2;
	if (rc < argc) {
		dprintf(2, "meshd init: unexpected argument \"%s\"\n", argv[rc]);
		opt_usage(&cmd, 2);
		return 2;
	}
	memset(&x, 0, sizeof(x));
	init_conf_default(&x.conf);
	if (init_backend_parse(backend, &x.backend) < 0) {
		dprintf(2, "meshd init: unknown backend \"%s\" (expected auto, "
		        "iptables-nft, iptables-legacy or nft)\n", backend);
		return 2;
	}
	if (init_port_flag("inbound-port", inbound, &x.conf.inbound_port) < 0 ||
	    init_port_flag("outbound-port", outbound, &x.conf.outbound_port) < 0 ||
	    init_port_flag("admin-port", admin, &x.conf.admin_port) < 0 ||
	    init_port_flag("control-port", control, &x.conf.control_port) < 0)
		return 2;
	if (uid >= 0xffffffffu) {
		dprintf(2, "meshd init: --proxy-uid: %llu is not a user id\n",
		        (unsigned long long)uid);
		return 2;
	}
	x.conf.proxy_uid = (uint32_t)uid;
	x.conf.ipv6 = ipv6;
	if (init_list_flag("inbound-ports", in_ports, &x.conf.inbound, NULL) < 0 ||
	    init_list_flag("skip-inbound-ports", skip_in, &x.conf.skip_in, NULL) < 0 ||
	    init_list_flag("skip-outbound-ports", skip_out, &x.conf.skip_out, NULL) < 0 ||
	    init_list_flag("skip-subnets", skip_nets, NULL, &x.conf.skip_nets) < 0)
		return 2;
	if (host && !uninstall && !x.conf.inbound.n) {
		dprintf(2, "meshd init: --host needs --inbound-ports: on a host "
		        "only the listed ports are captured, so that the host's "
		        "own services (ssh...) are never redirected by accident\n");
		return 2;
	}
	if (init_ports_has(&x.conf.inbound, x.conf.admin_port) ||
	    init_ports_has(&x.conf.inbound, x.conf.control_port)) {
		dprintf(2, "meshd init: --inbound-ports must not include the "
		        "proxy's admin (%u) or control (%u) port\n",
		        x.conf.admin_port, x.conf.control_port);
		return 2;
	}
	x.netns = netns;
	x.dry_run = dry_run;
	x.uninstall = uninstall;
	x.host = host;

	if (netns && init_netns_enter(netns, err, sizeof(err)) < 0) {
		init_fail(err);
		return 1;
	}
	b = x.backend;
	if (b == INIT_BACKEND_AUTO && uninstall) {
		rc = init_uninstall_all(&x, err, sizeof(err));
	} else {
		if (b == INIT_BACKEND_AUTO &&
		    init_auto_pick(&x, &b, err, sizeof(err)) < 0) {
			init_fail(err);
			return 1;
		}
		rc = b == INIT_BACKEND_NFT ? init_nft_run(&x, err, sizeof(err)) :
		     init_ipt_run(&x, b, err, sizeof(err));
	}
	if (rc < 0) {
		init_fail(err);
		return 1;
	}
	init_summary(&x, b);
	return 0;
}
