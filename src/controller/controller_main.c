/*
 * controller_main: `meshd controller` flags, start-up, the registry source
 * role, run and graceful shutdown (see controller_main.h and
 * docs/controller.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "controller/cadmin.h"
#include "controller/controller_main.h"
#include "controller/cserver.h"
#include "controller/destination.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/opt.h"
#include "core/str.h"
#include "core/util.h"

#define CTL_MOD "controller"
#define CTL_BUS_TOPICS 64
#define CTL_BUS_SUBS 64

/* Process-wide: the signal callbacks reach it here. */
static struct controller controller_g;

/* --keepalive-interval / --keepalive-timeout: HTTP/2 PING keepalive of the
 * gRPC connections (process-wide cserver settings, see cserver.h). */
static uint64_t ctl_ka_interval_ms;
static uint64_t ctl_ka_timeout_ms;

static const struct {
	const char *name;
	unsigned bit;
} ctl_roles[] = {
	{ "registry", CONTROLLER_ROLE_REGISTRY },
	{ "destination", CONTROLLER_ROLE_DESTINATION },
};

static void ctl_cfg_defaults(struct controller_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->roles_s = "registry,destination";
	c->registry_s = "";
	c->destination_addr_s = "0.0.0.0:8086";
	c->admin_addr_s = "0.0.0.0:9996";
	c->cluster_domain = "cluster.local";
	c->log_level_s = "info";
	c->log_format_s = "text";
	c->registry_interval_ms = 250;
	c->max_streams = 100000;
	c->max_conns = 10000;
	c->max_streams_per_conn = 1000;
	c->idle_timeout_ms = 600000;
	c->shutdown_grace_ms = 5000;
	ctl_ka_interval_ms = CSERVER_KA_INTERVAL_MS;
	ctl_ka_timeout_ms = CSERVER_KA_TIMEOUT_MS;
}

int controller_parse_roles(const char *spec, unsigned *roles, char *err,
                           size_t errlen)
{
	struct str rest = str_from_cstr(spec), item;
	unsigned r = 0;
	size_t i;

	if (str_empty(str_trim_ows(rest))) {
		snprintf(err, errlen, "--roles is empty");
		return -1;
	}
	while (str_next_token(&rest, ',', &item)) {
		item = str_trim_ows(item);
		for (i = 0; i < ARRAY_SIZE(ctl_roles); i++)
			if (str_eq_cstr(item, ctl_roles[i].name))
				break;
		if (i == ARRAY_SIZE(ctl_roles)) {
			snprintf(err, errlen, "--roles: unknown role \"%.*s\" "
			         "(known: registry, destination)",
			         (int)(item.len > 64 ? 64 : item.len),
			         item.p ? item.p : "");
			return -1;
		}
		r |= ctl_roles[i].bit;
	}
	*roles = r;
	return 0;
}

static int ctl_addr(const char *what, const char *s, struct sock_addr *a,
                    char *err, size_t errlen)
{
	char e[128];

	if (sock_addr_parse(s, a, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "--%s \"%s\": %s", what, s, e);
		return -1;
	}
	return 0;
}

/* 1 when <s> is a DNS name of labels [a-z0-9-], each 1..63 bytes. */
static int ctl_domain_ok(const char *s)
{
	size_t n = 0, i;

	if (!*s || strlen(s) > 200)
		return 0;
	for (i = 0; s[i]; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (n == 0)
				return 0;
			n = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-') || ++n > 63)
			return 0;
	}
	return n > 0;
}

/* Checks the flags and derives the rest of the configuration. */
static int ctl_configure(struct controller_cfg *c, char *err, size_t errlen)
{
	if (controller_parse_roles(c->roles_s, &c->roles, err, errlen) < 0)
		return -1;
	if (ctl_addr("destination-addr", c->destination_addr_s,
	             &c->destination_addr, err, errlen) < 0 ||
	    ctl_addr("admin-addr", c->admin_addr_s, &c->admin_addr, err,
	             errlen) < 0)
		return -1;
	if ((c->roles & CONTROLLER_ROLE_REGISTRY) && !c->registry_s[0]) {
		snprintf(err, errlen, "the registry role needs --registry "
		         "FILE");
		return -1;
	}
	if (!ctl_domain_ok(c->cluster_domain)) {
		snprintf(err, errlen, "--cluster-domain \"%.64s\": want a "
		         "lower-case DNS name", c->cluster_domain);
		return -1;
	}
	if (c->registry_interval_ms == 0 ||
	    c->registry_interval_ms > 3600000) {
		snprintf(err, errlen, "--registry-interval must be 1ms..1h");
		return -1;
	}
	if (c->max_streams < 1 || c->max_streams > 10000000) {
		snprintf(err, errlen, "--max-streams must be 1..10000000");
		return -1;
	}
	if (c->max_conns < 1 || c->max_conns > 1000000) {
		snprintf(err, errlen, "--max-connections must be 1..1000000");
		return -1;
	}
	if (c->max_streams_per_conn < 1 || c->max_streams_per_conn > 100000) {
		snprintf(err, errlen, "--max-streams-per-connection must be "
		         "1..100000");
		return -1;
	}
	if (ctl_ka_interval_ms > 3600000) {
		snprintf(err, errlen, "--keepalive-interval must be 0..1h");
		return -1;
	}
	if (ctl_ka_timeout_ms < 1 || ctl_ka_timeout_ms > 3600000) {
		snprintf(err, errlen, "--keepalive-timeout must be 1ms..1h");
		return -1;
	}
	cserver_set_keepalive(ctl_ka_interval_ms, ctl_ka_timeout_ms);
	return 0;
}

static const struct opt_cmd *ctl_cmd(struct controller_cfg *c)
{
	static struct opt opts[20];
	static struct opt_cmd cmd;
	size_t n = 0;

#define CTL_OPT(nm, kind, dst, mv, help) \
	opts[n++] = (struct opt){ nm, kind, dst, mv, help }
	CTL_OPT("roles", OPT_STR, &c->roles_s, "LIST",
	        "roles to run: registry (file source), destination");
	CTL_OPT("registry", OPT_STR, &c->registry_s, "FILE",
	        "registry file (YAML or JSON), or a directory of *.yaml, "
	        "*.yml, *.json fragment files; reloaded on change");
	CTL_OPT("registry-interval", OPT_MS, &c->registry_interval_ms, "DUR",
	        "how often the registry file is checked for changes");
	CTL_OPT("destination-addr", OPT_STR, &c->destination_addr_s, "ADDR",
	        "Destination gRPC listener (h2c)");
	CTL_OPT("admin-addr", OPT_STR, &c->admin_addr_s, "ADDR",
	        "admin server: /metrics /ready /live");
	CTL_OPT("cluster-domain", OPT_STR, &c->cluster_domain, "DOMAIN",
	        "cluster DNS domain (names and identities)");
	CTL_OPT("max-streams", OPT_U64, &c->max_streams, "N",
	        "Destination streams at once (RESOURCE_EXHAUSTED beyond)");
	CTL_OPT("max-connections", OPT_U64, &c->max_conns, "N",
	        "Destination client connections at once");
	CTL_OPT("max-streams-per-connection", OPT_U64,
	        &c->max_streams_per_conn, "N",
	        "HTTP/2 concurrent streams per client connection");
	CTL_OPT("idle-timeout", OPT_MS, &c->idle_timeout_ms, "DUR",
	        "close client connections without a stream after this "
	        "(0 = never)");
	CTL_OPT("keepalive-interval", OPT_MS, &ctl_ka_interval_ms, "DUR",
	        "send an HTTP/2 PING on each client connection this often "
	        "(0 = never)");
	CTL_OPT("keepalive-timeout", OPT_MS, &ctl_ka_timeout_ms, "DUR",
	        "close a client connection whose PING is not answered "
	        "within this");
	CTL_OPT("shutdown-grace", OPT_MS, &c->shutdown_grace_ms, "DUR",
	        "how long connections may take to close after SIGTERM");
	CTL_OPT("log-level", OPT_STR, &c->log_level_s, "SPEC",
	        "log level spec, e.g. info,controller=debug");
	CTL_OPT("log-format", OPT_STR, &c->log_format_s, "FMT",
	        "text or json");
#undef CTL_OPT
	cmd.name = "controller";
	cmd.args = NULL;
	cmd.summary = "Run the control plane (registry source, Destination "
	              "service).";
	cmd.opts = opts;
	cmd.nopts = n;
	return &cmd;
}

/* ---- registry role: file -> bus ---- */

static void ctl_publish(struct controller *c, struct registry *r)
{
	int rc;

	if (r->generation == c->published_gen)
		return;
	rc = bus_publish(&c->bus, CONTROLLER_TOPIC_REGISTRY, &r->msg);
	if (rc < 0) {
		LOG_ERROR(CTL_MOD, "cannot publish registry generation %llu: "
		          "%s", (unsigned long long)r->generation,
		          strerror(-rc));
		return;
	}
	c->published_gen = r->generation;
	metrics_gauge_set(c->m_services, (int64_t)r->nservices);
	metrics_gauge_set(c->m_workloads, (int64_t)r->nworkloads);
	metrics_gauge_set(c->m_endpoints, (int64_t)r->nendpoints);
	metrics_gauge_set(c->m_generation, (int64_t)r->generation);
	LOG_DEBUG(CTL_MOD, "registry %s: published generation %llu, %zu "
	         "services, %zu workloads, %zu endpoints", c->watch.path,
	         (unsigned long long)r->generation, r->nservices,
	         r->nworkloads, r->nendpoints);
}

static void ctl_registry_cb(void *arg, struct registry *r)
{
	struct controller *c = arg;

	ctl_publish(c, r);
	registry_free(r);   /* the bus holds its own reference */
}

/* Counters kept by the registry watch, copied before each exposition. */
static void ctl_metrics_sync(void *arg)
{
	struct controller *c = arg;

	if (c->watching) {
		if (c->m_reloads &&
		    c->watch.loads > metrics_counter_value(c->m_reloads))
			metrics_counter_add(c->m_reloads, c->watch.loads -
			                    metrics_counter_value(c->m_reloads));
		if (c->m_errors &&
		    c->watch.errors > metrics_counter_value(c->m_errors))
			metrics_counter_add(c->m_errors, c->watch.errors -
			                    metrics_counter_value(c->m_errors));
	}
	if (c->dst)
		(void)destination_nconns(c->dst);
}

static int ctl_ready(void *arg)
{
	struct controller *c = arg;

	return !c->draining &&
	       bus_peek(&c->bus, CONTROLLER_TOPIC_REGISTRY) != NULL;
}

static int ctl_metrics_init(struct controller *c, char *err, size_t errlen)
{
	static const struct {
		const char *name, *help;
		enum metrics_type type;
	} defs[] = {
		{ "registry_services", "Services in the current registry.",
		  METRICS_GAUGE },
		{ "registry_workloads", "Workloads in the current registry.",
		  METRICS_GAUGE },
		{ "registry_endpoints", "Endpoints (address, port) over all "
		  "service ports of the current registry.", METRICS_GAUGE },
		{ "registry_reloads_total", "Registry files loaded and "
		  "accepted.", METRICS_COUNTER },
		{ "registry_errors_total", "Registry reloads refused (the "
		  "previous registry stays).", METRICS_COUNTER },
		{ "registry_generation", "Generation of the current registry.",
		  METRICS_GAUGE },
	};
	struct metrics_series **dst[] = {
		&c->m_services, &c->m_workloads, &c->m_endpoints,
		&c->m_reloads, &c->m_errors, &c->m_generation,
	};
	struct metrics_family_opts o;
	struct metrics_family *f;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(defs); i++) {
		memset(&o, 0, sizeof(o));
		o.type = defs[i].type;
		o.name = defs[i].name;
		o.help = defs[i].help;
		f = metrics_family_new(c->reg, &o, err, errlen);
		if (!f)
			return -1;
		*dst[i] = metrics_series_get(f, NULL, 0);
	}
	return 0;
}

/* ---- run and shutdown ---- */

static void ctl_drained(void *arg)
{
	struct controller *c = arg;

	LOG_INFO(CTL_MOD, "drained");
	loop_stop(&c->loop);
}

static void ctl_grace_cb(struct loop *loop, struct loop_timer *t)
{
	struct controller *c = container_of(t, struct controller, grace);

	LOG_INFO(CTL_MOD, "shutdown grace period over: closing %u "
	         "connection(s)", c->dst ? destination_nconns(c->dst) : 0);
	loop_stop(loop);
}

void controller_shutdown(struct controller *c, const char *why)
{
	if (c->draining)
		return;
	c->draining = 1;
	LOG_INFO(CTL_MOD, "shutting down (%s): draining %u connection(s), "
	         "grace %llums", why, c->dst ? destination_nconns(c->dst) : 0,
	         (unsigned long long)c->cfg.shutdown_grace_ms);
	if (c->watching) {
		registry_watch_stop(&c->watch);
		c->watching = 0;
	}
	loop_timer_init(&c->grace, ctl_grace_cb);
	loop_timer_arm(&c->loop, &c->grace, c->cfg.shutdown_grace_ms);
	if (c->dst)
		destination_drain(c->dst, ctl_drained, c);
	else
		loop_stop(&c->loop);
}

static void ctl_signal_cb(struct loop *loop, int signum, void *arg)
{
	(void)loop;
	controller_shutdown(arg, signum == SIGTERM ? "SIGTERM"
	                         : signum == SIGINT ? "SIGINT" : "SIGHUP");
}

static int ctl_start(struct controller *c, char *err, size_t errlen)
{
	struct controller_cfg *cfg = &c->cfg;
	struct destination_cfg dc;
	char a1[SOCK_ADDR_STRLEN] = "-", a2[SOCK_ADDR_STRLEN];
	int rc;

	if (loop_init(&c->loop, err, errlen) < 0)
		return -1;
	rc = bus_init(&c->bus, &c->loop, CTL_BUS_TOPICS, CTL_BUS_SUBS);
	c->reg = metrics_registry_new();
	if (rc < 0 || !c->reg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ctl_metrics_init(c, err, errlen) < 0)
		return -1;
	/* subscribers first: the first snapshot then reaches them through
	 * the topic's state like every later one */
	if (cfg->roles & CONTROLLER_ROLE_DESTINATION) {
		memset(&dc, 0, sizeof(dc));
		dc.addr = cfg->destination_addr;
		dc.cluster_domain = cfg->cluster_domain;
		dc.max_streams = (uint32_t)cfg->max_streams;
		dc.max_conns = (uint32_t)cfg->max_conns;
		dc.max_streams_per_conn = (uint32_t)cfg->max_streams_per_conn;
		dc.idle_timeout_ms = cfg->idle_timeout_ms;
		c->dst = destination_new(&c->loop, &c->bus, c->reg, &dc, err,
		                         errlen);
		if (!c->dst)
			return -1;
		sock_addr_format(destination_addr(c->dst), a1, sizeof(a1));
	}
	if (cfg->roles & CONTROLLER_ROLE_REGISTRY) {
		if (registry_watch_start(&c->watch, &c->loop, cfg->registry_s,
		                         (unsigned)cfg->registry_interval_ms,
		                         ctl_registry_cb, c, err, errlen) < 0)
			return -1;
		c->watching = 1;
		if (c->watch.current)
			ctl_publish(c, c->watch.current);
	}
	c->admin = cadmin_new(&c->loop, &cfg->admin_addr, c->reg,
	                      ctl_metrics_sync, ctl_ready, c, err, errlen);
	if (!c->admin)
		return -1;
	if (loop_signals_watch(&c->loop, ctl_signal_cb, c) < 0) {
		snprintf(err, errlen, "cannot watch signals");
		return -1;
	}
	sock_addr_format(cadmin_addr(c->admin), a2, sizeof(a2));
	LOG_INFO(CTL_MOD, "listening: destination=%s admin=%s roles=%s "
	         "cluster-domain=%s pid=%d", a1, a2, cfg->roles_s,
	         cfg->cluster_domain, (int)getpid());
	return 0;
}

static void ctl_stop(struct controller *c)
{
	destination_free(c->dst);
	c->dst = NULL;
	if (c->watching) {
		registry_watch_stop(&c->watch);
		c->watching = 0;
	}
	cadmin_free(c->admin);
	c->admin = NULL;
	loop_timer_stop(&c->loop, &c->grace);
	loop_defer_run(&c->loop);
	bus_destroy(&c->bus);
	loop_defer_run(&c->loop);
	metrics_registry_free(c->reg);
	c->reg = NULL;
	loop_destroy(&c->loop);
}

int controller_main(int argc, char **argv)
{
	struct controller *c = &controller_g;
	char err[512];
	int rc;

	memset(c, 0, sizeof(*c));
	ctl_cfg_defaults(&c->cfg);
	rc = opt_role_start(ctl_cmd(&c->cfg), argc, argv,
	                    &c->cfg.log_level_s, &c->cfg.log_format_s);
	if (rc <= 0)
		return rc == 0 ? 0 : 2;
	if (ctl_configure(&c->cfg, err, sizeof(err)) < 0) {
		dprintf(2, "meshd controller: %s\n", err);
		return 2;
	}
	if (ctl_start(c, err, sizeof(err)) < 0) {
		LOG_ERROR(CTL_MOD, "cannot start: %s", err);
		ctl_stop(c);
		return 1;
	}
	loop_run(&c->loop);
	LOG_INFO(CTL_MOD, "stopped");
	ctl_stop(c);
	return c->exit_code;
}
