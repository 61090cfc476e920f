/*
 * proxy_main: `meshd proxy` flags, start-up, run and graceful shutdown
 * (see proxy_main.h and docs/proxy.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/opt.h"
#include "core/util.h"
#include "proxy/admin.h"
#include "proxy/conn.h"
#include "proxy/h2side.h"
#include "proxy/listener.h"
#include "proxy/pool.h"
#include "proxy/proxy_main.h"

/* Process-wide: signal callbacks and the admin server reach it here. */
static struct proxy proxy_g;

static void proxy_cfg_defaults(struct proxy_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->outbound_addr_s = "127.0.0.1:4140";
	c->inbound_addr_s = "0.0.0.0:4143";
	c->admin_addr_s = "0.0.0.0:4191";
	c->mode_s = "transparent";
	c->inbound_forward_s = "";
	c->destination_addr_s = "";
	c->balancer_s = "p2c";
	c->tcp_route_s = "";
	c->opaque_ports_s = ROUTE_DEFAULT_OPAQUE;
	c->workload_labels_s = "";
	c->log_level_s = "info";
	c->log_format_s = "text";
	c->detect_timeout_ms = 10000;
	c->connect_timeout_ms = 1000;
	c->idle_timeout_ms = 3600000;
	c->keepalive_timeout_ms = 60000;
	c->header_timeout_ms = 10000;
	c->response_timeout_ms = 0;
	c->pool_idle_timeout_ms = 3000;
	c->stall_timeout_ms = 10000;
	c->shutdown_grace_ms = 30000;
	c->max_conns = 10000;
	c->max_head = HTTP1_DEF_MAX_HEAD;
	c->max_headers = HTTP1_DEF_MAX_HEADERS;
	c->pool_max_idle = 64;
	c->max_conn_mem = 4u << 20;
}

int proxy_parse_labels(const char *spec, struct metrics_label *out,
                       size_t cap, char *store, size_t storelen,
                       char *err, size_t errlen)
{
	struct str rest = str_trim_ows(str_from_cstr(spec)), item, k, v;
	size_t n = 0, used = 0, i;
	ssize_t eq;

	if (rest.len == 0)
		return 0;
	while (str_next_token(&rest, ',', &item)) {
		item = str_trim_ows(item);
		eq = str_find_char(item, '=');
		if (eq <= 0) {
			snprintf(err, errlen, "workload label \"%.*s\": want "
			         "key=value", (int)(item.len > 64 ? 64 : item.len),
			         item.p ? item.p : "");
			return -1;
		}
		k = str_trim_ows(str_sub(item, 0, (size_t)eq));
		v = str_trim_ows(str_sub(item, (size_t)eq + 1, item.len));
		if (n >= cap) {
			snprintf(err, errlen, "more than %zu workload labels", cap);
			return -1;
		}
		if (k.len + v.len + 2 > storelen - used) {
			snprintf(err, errlen, "workload labels too long");
			return -1;
		}
		memcpy(store + used, k.p, k.len);
		store[used + k.len] = '\0';
		out[n].key = store + used;
		used += k.len + 1;
		if (v.len)
			memcpy(store + used, v.p, v.len);
		store[used + v.len] = '\0';
		out[n].value = store + used;
		used += v.len + 1;
		if (!metrics_label_name_valid(out[n].key)) {
			snprintf(err, errlen, "invalid workload label name "
			         "\"%s\"", out[n].key);
			return -1;
		}
		for (i = 0; i < n; i++)
			if (strcmp(out[i].key, out[n].key) == 0) {
				snprintf(err, errlen, "workload label \"%s\" "
				         "given twice", out[n].key);
				return -1;
			}
		n++;
	}
	return (int)n;
}

static int proxy_addr(const char *what, const char *s, struct sock_addr *a,
                      char *err, size_t errlen)
{
	char e[128];

	if (sock_addr_parse(s, a, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "--%s \"%s\": %s", what, s, e);
		return -1;
	}
	return 0;
}

/* Checks the flags and derives the rest of the configuration. */
static int proxy_configure(struct proxy_cfg *c, char *err, size_t errlen)
{
	int n;

	if (proxy_addr("outbound-addr", c->outbound_addr_s, &c->outbound_addr,
	               err, errlen) < 0 ||
	    proxy_addr("inbound-addr", c->inbound_addr_s, &c->inbound_addr,
	               err, errlen) < 0 ||
	    proxy_addr("admin-addr", c->admin_addr_s, &c->admin_addr, err,
	               errlen) < 0)
		return -1;
	route_cfg_init(&c->route);
	if (!strcmp(c->mode_s, "transparent")) {
		c->route.transparent = 1;
	} else if (strcmp(c->mode_s, "explicit") != 0) {
		snprintf(err, errlen, "--mode must be transparent or explicit");
		return -1;
	}
	if (c->inbound_forward_s[0]) {
		if (proxy_addr("inbound-forward", c->inbound_forward_s,
		               &c->route.inbound_forward, err, errlen) < 0)
			return -1;
		if (sock_addr_port(&c->route.inbound_forward) == 0) {
			snprintf(err, errlen, "--inbound-forward needs a port");
			return -1;
		}
		c->route.has_inbound_forward = 1;
	}
	c->route.inbound_loopback = c->inbound_connect_loopback;
	c->has_destination = 0;
	if (c->destination_addr_s[0]) {
		if (proxy_addr("destination-addr", c->destination_addr_s,
		               &c->destination_addr, err, errlen) < 0)
			return -1;
		if (sock_addr_port(&c->destination_addr) == 0) {
			snprintf(err, errlen, "--destination-addr needs a port");
			return -1;
		}
		c->has_destination = 1;
	}
	if (strcmp(c->balancer_s, "p2c") != 0 &&
	    strcmp(c->balancer_s, "round-robin") != 0) {
		snprintf(err, errlen, "--balancer must be p2c or round-robin");
		return -1;
	}
	if (route_parse_tcp_routes(&c->route, c->tcp_route_s, err,
	                           errlen) < 0)
		return -1;
	if (route_parse_ports(&c->route, c->opaque_ports_s, err, errlen) < 0)
		return -1;
	n = proxy_parse_labels(c->workload_labels_s, c->wl, ARRAY_SIZE(c->wl),
	                       c->wl_store, sizeof(c->wl_store), err, errlen);
	if (n < 0)
		return -1;
	c->nwl = (size_t)n;
	if (c->max_head < 1024 || c->max_head > (1u << 20)) {
		snprintf(err, errlen, "--max-head-size must be 1024..1048576");
		return -1;
	}
	if (c->max_headers < 8 || c->max_headers > 1000) {
		snprintf(err, errlen, "--max-headers must be 8..1000");
		return -1;
	}
	if (c->max_conns < 1 || c->max_conns > 1000000) {
		snprintf(err, errlen, "--max-connections must be 1..1000000");
		return -1;
	}
	if (c->connect_timeout_ms == 0 || c->detect_timeout_ms == 0) {
		snprintf(err, errlen, "connect and detect timeouts must not "
		         "be 0");
		return -1;
	}
	memset(&c->h1lim, 0, sizeof(c->h1lim));
	c->h1lim.max_head = c->max_head;
	c->h1lim.max_headers = c->max_headers;
	c->h1lim.max_line = c->max_head < HTTP1_DEF_MAX_LINE
	                    ? c->max_head : HTTP1_DEF_MAX_LINE;
	/* an input buffer holds a partial head or one read of pipelined
	 * requests; an output buffer holds what one read produced: a head,
	 * a read's worth of body and chunk framing */
	c->in_limit = c->max_head > EP_SCRATCH_SIZE ? c->max_head
	                                            : EP_SCRATCH_SIZE;
	c->out_limit = c->max_head + 8192 + EP_SCRATCH_SIZE + 4096;
	if (c->max_conn_mem < 2 * (c->in_limit + c->out_limit)) {
		snprintf(err, errlen, "--max-conn-memory must be at least %zu "
		         "bytes with --max-head-size %llu",
		         2 * (c->in_limit + c->out_limit),
		         (unsigned long long)c->max_head);
		return -1;
	}
	return 0;
}

void proxy_conn_gone(struct proxy *px)
{
	if (px->draining) {
		if (px->nconns == 0)
			loop_stop(&px->loop);
		return;
	}
	if (px->nconns < px->cfg.max_conns)
		listener_resume(px);
}

static void proxy_drain_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct proxy *px = container_of(t, struct proxy, drain_timer);
	struct conn *c;

	LOG_INFO("proxy", "shutdown grace period over: closing %u "
	         "connection(s)", px->nconns);
	for (c = px->conns; c; c = c->next)
		conn_close(c, 0, 0);
	loop_stop(loop);
}

void proxy_shutdown(struct proxy *px, const char *why)
{
	struct conn *c;

	if (px->draining)
		return;
	px->draining = 1;
	LOG_INFO("proxy", "shutting down (%s): draining %u connection(s), "
	         "grace %llums", why, px->nconns,
	         (unsigned long long)px->cfg.shutdown_grace_ms);
	listener_close_proxy(px);
	pool_close_idle(px->pool);
	for (c = px->conns; c; c = c->next)
		conn_drain(c);
	if (px->nconns == 0) {
		loop_stop(&px->loop);
		return;
	}
	loop_timer_init(&px->drain_timer, proxy_drain_timer_cb);
	loop_timer_arm(&px->loop, &px->drain_timer,
	               px->cfg.shutdown_grace_ms);
}

static void proxy_signal_cb(struct loop *loop, int signum, void *arg)
{
	struct proxy *px = arg;

	(void)loop;
	proxy_shutdown(px, signum == SIGTERM ? "SIGTERM"
	                   : signum == SIGINT ? "SIGINT" : "SIGHUP");
}

/* --metrics-retain-idle: Linkerd's default, 10 minutes. */
static uint64_t proxy_metrics_retain_ms = 600000;

static const struct opt_cmd *proxy_cmd(struct proxy_cfg *c)
{
	static struct opt opts[40];
	static struct opt_cmd cmd;
	size_t n = 0;

#define PX_OPT(nm, kind, dst, mv, help) \
	opts[n++] = (struct opt){ nm, kind, dst, mv, help }
	PX_OPT("outbound-addr", OPT_STR, &c->outbound_addr_s, "ADDR",
	       "outbound listener (app -> world)");
	PX_OPT("inbound-addr", OPT_STR, &c->inbound_addr_s, "ADDR",
	       "inbound listener (world -> app)");
	PX_OPT("admin-addr", OPT_STR, &c->admin_addr_s, "ADDR",
	       "admin server: /metrics /ready /live /log-level /shutdown");
	PX_OPT("mode", OPT_STR, &c->mode_s, "MODE",
	       "transparent (SO_ORIGINAL_DST) or explicit");
	PX_OPT("destination-addr", OPT_STR, &c->destination_addr_s, "ADDR",
	       "the controller's Destination service (gRPC, h2c); names "
	       "are resolved there and balanced (empty: no discovery)");
	PX_OPT("balancer", OPT_STR, &c->balancer_s, "KIND",
	       "p2c (peak-EWMA, failure accrual) or round-robin (no "
	       "failure accrual: a baseline)");
	PX_OPT("inbound-forward", OPT_STR, &c->inbound_forward_s, "ADDR",
	       "explicit inbound: the application's address");
	PX_OPT("inbound-connect-loopback", OPT_BOOL,
	       &c->inbound_connect_loopback, NULL,
	       "transparent inbound: connect to 127.0.0.1:PORT instead of "
	       "the original destination");
	PX_OPT("tcp-route", OPT_STR, &c->tcp_route_s, "LPORT=ADDR,...",
	       "explicit outbound opaque TCP routes (one listener each)");
	PX_OPT("opaque-ports", OPT_STR, &c->opaque_ports_s, "PORTS",
	       "ports that skip protocol detection (P, P-Q, comma list)");
	PX_OPT("detect-timeout", OPT_MS, &c->detect_timeout_ms, "DUR",
	       "protocol detection timeout, then opaque");
	PX_OPT("connect-timeout", OPT_MS, &c->connect_timeout_ms, "DUR",
	       "upstream connect timeout");
	PX_OPT("idle-timeout", OPT_MS, &c->idle_timeout_ms, "DUR",
	       "close opaque streams and exchanges idle this long");
	PX_OPT("keepalive-timeout", OPT_MS, &c->keepalive_timeout_ms, "DUR",
	       "close idle HTTP/1 client connections after this");
	PX_OPT("header-timeout", OPT_MS, &c->header_timeout_ms, "DUR",
	       "a request head must arrive within this (408)");
	PX_OPT("response-timeout", OPT_MS, &c->response_timeout_ms, "DUR",
	       "response head deadline (504); 0 = none");
	PX_OPT("pool-idle-timeout", OPT_MS, &c->pool_idle_timeout_ms, "DUR",
	       "close idle upstream HTTP/1 connections after this");
	PX_OPT("write-stall-timeout", OPT_MS, &c->stall_timeout_ms, "DUR",
	       "reset an HTTP/2 stream whose output made no progress this "
	       "long (0 = never)");
	PX_OPT("pool-max-idle", OPT_U64, &c->pool_max_idle, "N",
	       "idle upstream HTTP/1 connections kept per target");
	PX_OPT("shutdown-grace", OPT_MS, &c->shutdown_grace_ms, "DUR",
	       "how long in-flight work may finish after SIGTERM");
	PX_OPT("metrics-retain-idle", OPT_MS, &proxy_metrics_retain_ms, "DUR",
	       "drop HTTP/TCP metric series idle this long (0: keep)");
	PX_OPT("enable-shutdown", OPT_BOOL, &c->enable_shutdown, NULL,
	       "allow POST /shutdown on the admin server (localhost only)");
	PX_OPT("log-level", OPT_STR, &c->log_level_s, "SPEC",
	       "log level spec, e.g. info,proxy=debug");
	PX_OPT("log-format", OPT_STR, &c->log_format_s, "FMT",
	       "text or json");
	PX_OPT("workload-labels", OPT_STR, &c->workload_labels_s, "K=V,...",
	       "constant labels on every metric (namespace, pod, ...)");
	PX_OPT("inbound-authority-labels", OPT_BOOL,
	       &c->inbound_authority_labels, NULL,
	       "label inbound HTTP metrics with the authority (cardinality)");
	PX_OPT("max-connections", OPT_U64, &c->max_conns, "N",
	       "downstream connections at once");
	PX_OPT("max-head-size", OPT_U64, &c->max_head, "BYTES",
	       "HTTP/1 head limit (431 / 502 beyond)");
	PX_OPT("max-headers", OPT_U64, &c->max_headers, "N",
	       "header fields per HTTP/1 head");
	PX_OPT("max-conn-memory", OPT_U64, &c->max_conn_mem, "BYTES",
	       "memory cap per connection (HTTP/2 state; checked against "
	       "the HTTP/1 buffers)");
#undef PX_OPT
	cmd.name = "proxy";
	cmd.args = NULL;
	cmd.summary = "Run the sidecar proxy (data plane).";
	cmd.opts = opts;
	cmd.nopts = n;
	return &cmd;
}

static int proxy_listen(struct proxy *px, enum listener_kind k,
                        const struct sock_addr *a, char *err, size_t errlen)
{
	struct listener *l = listener_add(px, k, a, err, errlen);

	if (!l)
		return -1;
	if (k != LISTENER_ADMIN && px->cfg.route.nself < ROUTE_MAX_SELF)
		px->cfg.route.self[px->cfg.route.nself++] = l->addr;
	return 0;
}

/*
 * IPv6 companion of an IPv4 listener, as Linkerd's injector gives the proxy
 * both families: 127.0.0.1:P also listens on [::1]:P (where ip6tables'
 * OUTPUT REDIRECT sends local traffic) and 0.0.0.0:P on [::]:P (v6 only,
 * for PREROUTING). Best effort: a host without IPv6, or the port taken on
 * the IPv6 side, only costs a debug line.
 */
static void proxy_listen_v6(struct proxy *px, enum listener_kind k,
                            const struct sock_addr *a)
{
	struct sock_addr v6;
	struct listener *l;
	char err[160], e2[8];
	uint32_t ip;

	if (a->sa.sa_family != AF_INET)
		return;
	ip = ntohl(a->sin.sin_addr.s_addr);
	if (ip == INADDR_LOOPBACK)
		(void)sock_addr_parse("[::1]:0", &v6, e2, sizeof(e2));
	else if (ip == INADDR_ANY)
		(void)sock_addr_parse("[::]:0", &v6, e2, sizeof(e2));
	else
		return;
	sock_addr_set_port(&v6, sock_addr_port(a));
	l = listener_add_flags(px, k, &v6, SOCK_F_V6ONLY, err, sizeof(err));
	if (!l) {
		LOG_DEBUG("proxy", "no IPv6 %s listener: %s",
		          listener_kind_str(k), err);
		return;
	}
	if (px->cfg.route.nself < ROUTE_MAX_SELF)
		px->cfg.route.self[px->cfg.route.nself++] = l->addr;
}

/* What a proxy runs on before it has listeners: the loop, metrics, pools
 * and HTTP/2 state. On failure proxy_stop releases what was set up. */
static int proxy_start_state(struct proxy *px, char *err, size_t errlen)
{
	struct proxy_cfg *c = &px->cfg;

	if (loop_init(&px->loop, err, errlen) < 0)
		return -1;
	px->reg = metrics_registry_new();
	if (!px->reg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pxmetrics_init(&px->pm, px->reg, c->wl, c->nwl, err, errlen) < 0)
		return -1;
	px->pm.inbound_authority = c->inbound_authority_labels;
	pxmetrics_retain(&px->pm, &px->loop, proxy_metrics_retain_ms);
	mem_pool_init(&px->conn_pool, "conn", sizeof(struct conn),
	              (uint32_t)c->max_conns, 256);
	mem_pool_init(&px->up_pool, "h1up", sizeof(struct h1up), 0, 256);
	px->pool = pool_new(px);
	px->admin = admin_new(px);
	if (!px->pool || !px->admin || h2side_init(px) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (c->has_destination) {
		if (dst_init(&px->dst, &px->loop, &c->destination_addr,
		             NULL) < 0 ||
		    svc_table_init(&px->svcs, &px->loop, &px->dst, 0) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (!strcmp(c->balancer_s, "round-robin")) {
			struct balance_cfg bc;

			balance_cfg_default(&bc);
			bc.round_robin = 1;
			bc.max_failures = 0;
			svc_table_set_balancer(&px->svcs, &bc);
		}
		c->route.svcs = &px->svcs;
	}
	return 0;
}

static int proxy_start(struct proxy *px, char *err, size_t errlen)
{
	struct proxy_cfg *c = &px->cfg;
	char a1[SOCK_ADDR_STRLEN], a2[SOCK_ADDR_STRLEN], a3[SOCK_ADDR_STRLEN];
	char v1[SOCK_ADDR_STRLEN], v2[SOCK_ADDR_STRLEN];
	struct sock_addr ta;
	struct listener *l;
	size_t i;

	if (proxy_start_state(px, err, errlen) < 0)
		return -1;
	px->gates = PROXY_GATE_LISTENERS;
	if (proxy_listen(px, LISTENER_OUTBOUND, &c->outbound_addr, err,
	                 errlen) < 0 ||
	    proxy_listen(px, LISTENER_INBOUND, &c->inbound_addr, err,
	                 errlen) < 0)
		return -1;
	proxy_listen_v6(px, LISTENER_OUTBOUND, &c->outbound_addr);
	proxy_listen_v6(px, LISTENER_INBOUND, &c->inbound_addr);
	for (i = 0; i < c->route.ntcp; i++) {
		ta = c->outbound_addr;
		sock_addr_set_port(&ta, c->route.tcp[i].lport);
		if (proxy_listen(px, LISTENER_TCP_ROUTE, &ta, err, errlen) < 0)
			return -1;
	}
	if (proxy_listen(px, LISTENER_ADMIN, &c->admin_addr, err, errlen) < 0)
		return -1;
	if (loop_signals_watch(&px->loop, proxy_signal_cb, px) < 0) {
		snprintf(err, errlen, "cannot watch signals");
		return -1;
	}
	px->gates &= ~PROXY_GATE_LISTENERS;
	/* the list is newest first: the flag's address is the last of its
	 * kind, an IPv6 companion an earlier one */
	a1[0] = a2[0] = a3[0] = v1[0] = v2[0] = '\0';
	for (l = px->listeners; l; l = l->next) {
		char *dst = l->kind == LISTENER_OUTBOUND ? a1 :
		            l->kind == LISTENER_INBOUND ? a2 :
		            l->kind == LISTENER_ADMIN ? a3 : NULL;

		if (!dst)
			continue;
		if (dst[0] && l->kind == LISTENER_OUTBOUND)
			memcpy(v1, a1, sizeof(v1));
		else if (dst[0] && l->kind == LISTENER_INBOUND)
			memcpy(v2, a2, sizeof(v2));
		sock_addr_format(&l->addr, dst, SOCK_ADDR_STRLEN);
	}
	LOG_INFO("proxy", "listening: outbound=%s inbound=%s admin=%s "
	         "mode=%s tcp-routes=%zu pid=%d%s%s%s%s", a1, a2, a3, c->mode_s,
	         c->route.ntcp, (int)getpid(), v1[0] ? " outbound6=" : "", v1,
	         v2[0] ? " inbound6=" : "", v2);
	return 0;
}

static void proxy_stop(struct proxy *px)
{
	struct conn *c;

	for (c = px->conns; c; c = c->next)
		conn_close(c, 0, 0);
	listener_free_all(px);
	if (px->pool)  /* NULL when the start failed early */
		pool_close_idle(px->pool);
	h2side_fini(px);
	loop_defer_run(&px->loop);
	loop_defer_run(&px->loop);
	/* after the connections: their leases point into the svc objects */
	px->cfg.route.svcs = NULL;
	svc_table_fini(&px->svcs);
	dst_fini(&px->dst);
	admin_free(px->admin);
	px->admin = NULL;
	loop_defer_run(&px->loop);
	pool_free(px->pool);
	px->pool = NULL;
	pxmetrics_destroy(&px->pm);
	metrics_registry_free(px->reg);
	px->reg = NULL;
	mem_pool_destroy(&px->conn_pool);
	mem_pool_destroy(&px->up_pool);
	loop_destroy(&px->loop);
}

int proxy_main(int argc, char **argv)
{
	struct proxy *px = &proxy_g;
	char err[256];
	int rc;

	memset(px, 0, sizeof(*px));
	proxy_cfg_defaults(&px->cfg);
	rc = opt_role_start(proxy_cmd(&px->cfg), argc, argv,
	                    &px->cfg.log_level_s, &px->cfg.log_format_s);
	if (rc <= 0)
		return rc == 0 ? 0 : 2;
	if (proxy_configure(&px->cfg, err, sizeof(err)) < 0) {
		dprintf(2, "meshd proxy: %s\n", err);
		return 2;
	}
	if (proxy_start(px, err, sizeof(err)) < 0) {
		LOG_ERROR("proxy", "cannot start: %s", err);
		proxy_stop(px);
		return 1;
	}
	loop_run(&px->loop);
	LOG_INFO("proxy", "stopped");
	proxy_stop(px);
	return px->exit_code;
}

int proxy_setup(struct proxy *px, int argc, char **argv, char *err,
                size_t errlen)
{
	char e[256];
	int rc;

	memset(px, 0, sizeof(*px));
	proxy_cfg_defaults(&px->cfg);
	rc = opt_parse(proxy_cmd(&px->cfg), argc, argv, err, errlen);
	if (rc <= 0) {
		if (rc == 0)
			snprintf(err, errlen, "--help given");
		return -1;
	}
	if (rc < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"", argv[rc]);
		return -1;
	}
	if (log_set_spec(px->cfg.log_level_s, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "--log-level: %s", e);
		return -1;
	}
	if (log_set_format(px->cfg.log_format_s) < 0) {
		snprintf(err, errlen, "--log-format must be text or json");
		return -1;
	}
	if (proxy_configure(&px->cfg, err, errlen) < 0)
		return -1;
	if (proxy_start_state(px, err, errlen) < 0) {
		proxy_stop(px);
		return -1;
	}
	return 0;
}

void proxy_teardown(struct proxy *px)
{
	proxy_stop(px);
}
