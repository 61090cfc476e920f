/*
 * abc: main of abc-app, meshd's sample application (see README.md).
 *
 *   abc-app a --listen ADDR [--b URL] [--c URL] [flags]
 *   abc-app b|c --listen ADDR [--grpc-listen ADDR] [--peer URL] [flags]
 *
 * --resolve HOST:PORT:ADDR (repeatable) lets URLs name services that no
 * resolver knows: the connection goes to ADDR, Host and :authority carry
 * the name (how `meshd demo` calls b.demo.svc.cluster.local in pods
 * without DNS).
 *
 * This file parses the command line, sets up the role's listeners and
 * traffic, prints the periodic summary, and shuts everything down cleanly
 * on SIGTERM, SIGINT or SIGHUP (exit status 0). Usage errors exit with 2,
 * start-up failures (a port in use, a bad URL) with 1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/str.h"
#include "core/util.h"
#include "abc.h"
#include "front.h"
#include "h1srv.h"
#include "h2srv.h"
#include "net.h"
#include "peer.h"

#define ABC_LINE_MAX 1024
#define ABC_NAME_MAX 64
#define ABC_RATE_MAX 10000u
#define ABC_LATENCY_MAX 600000u
#define ABC_REPORT_MAX 86400u
/* Pacer ticks: at most this often, at least once a second. */
#define ABC_TICK_MIN_MS 10
/* Calls a late tick may catch up with; older debt is forgiven. */
#define ABC_PACER_BURST 100

struct abc abc;

enum abc_flag_kind {
	ABC_STR,          /* const char * */
	ABC_U64,          /* uint64_t, decimal */
	ABC_FRACTION,     /* double in [0, 1] */
	ABC_BOOL,         /* int, no value */
	ABC_PIN,          /* repeatable: net_pin(value) */
};

struct abc_flag {
	const char *name;
	enum abc_flag_kind kind;
	void *dst;
	const char *roles;        /* roles that accept the flag */
	const char *help;
};

static struct {
	const char *listen;
	const char *grpc_listen;
	const char *b;
	const char *c;
	const char *peer;
	const char *name;
	uint64_t report_s;
	int help;
	struct loop_timer report;
} abc_cfg = { .report_s = 5 };

static const struct abc_flag abc_flags[] = {
	{ "listen", ABC_STR, &abc_cfg.listen, "abc",
	  "ADDR  HTTP/1.1 listener, e.g. 127.0.0.1:8080 or :8080 (required)" },
	{ "grpc-listen", ABC_STR, &abc_cfg.grpc_listen, "bc",
	  "ADDR  h2c listener: gRPC abc.Echo, and the HTTP endpoints" },
	{ "b", ABC_STR, &abc_cfg.b, "a", "URL  service B, http://HOST:PORT" },
	{ "c", ABC_STR, &abc_cfg.c, "a", "URL  service C, http://HOST:PORT" },
	{ "peer", ABC_STR, &abc_cfg.peer, "bc",
	  "URL  the other service's --grpc-listen, http://HOST:PORT" },
	{ "rate", ABC_U64, &abc.rate, "abc",
	  "N  calls per second to each target (default 5, 0: none)" },
	{ "fail-rate", ABC_FRACTION, &abc.fail_rate, "abc",
	  "P  fraction (0..1) of /hello and Say answered with failures" },
	{ "latency", ABC_U64, &abc.latency_ms, "abc",
	  "MS  delay before answering /, /hello, Say and Count" },
	{ "resolve", ABC_PIN, NULL, "abc",
	  "HOST:PORT:ADDR  connect to ADDR for HOST:PORT, sending the name "
	  "(as curl; repeatable)" },
	{ "name", ABC_STR, &abc_cfg.name, "abc",
	  "NAME  service name in answers (default: the role)" },
	{ "report", ABC_U64, &abc_cfg.report_s, "abc",
	  "SECONDS  period of the summary line (default 5, 0: none)" },
	{ "verbose", ABC_BOOL, &abc.verbose, "abc", "log every request" },
	{ "help", ABC_BOOL, &abc_cfg.help, "abc", "this text" },
};

void abc_log(const char *fmt, ...)
{
	char line[ABC_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t off;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + off, sizeof(line) - off, ".%03ldZ abc-app %s: ",
	             ts.tv_nsec / 1000000, abc.name ? abc.name : "-");
	off += n > 0 ? (size_t)n : 0;
	va_start(ap, fmt);
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	off = n < 0 ? off : MIN(off + (size_t)n, sizeof(line) - 2);
	line[off++] = '\n';
	/* one write per line, so lines of concurrent processes never mix */
	if (write(STDERR_FILENO, line, off) < 0)
		return;
}

uint64_t abc_random(void)
{
	abc.rng ^= abc.rng >> 12;
	abc.rng ^= abc.rng << 25;
	abc.rng ^= abc.rng >> 27;
	return abc.rng * 0x2545f4914f6cdd1dull;
}

int abc_chance(double p)
{
	if (p <= 0)
		return 0;
	return (double)(abc_random() >> 11) * 0x1.0p-53 < p;
}

struct abc_target *abc_target_add(const char *name)
{
	struct abc_target *t;

	if (abc.ntargets < ABC_MAX_TARGETS)
		abc.ntargets++;
	t = &abc.target[abc.ntargets - 1];
	memset(t, 0, sizeof(*t));
	t->name = name;
	return t;
}

void abc_target_count(struct abc_target *t, int ok, const char *why)
{
	uint64_t now;

	if (ok) {
		t->ok++;
		return;
	}
	t->fail++;
	if (abc.stopping)
		return;
	if (abc.verbose) {
		abc_log("%s: call failed: %s", t->name, why);
		return;
	}
	now = loop_now_ms(&abc.loop);
	if (t->logged_ms && now - t->logged_ms < ABC_FAIL_LOG_MS)
		return;
	t->logged_ms = now;
	abc_log("%s: call failed: %s", t->name, why);
}

static uint64_t abc_pacer_period(void)
{
	uint64_t ms = abc.rate ? 1000 / abc.rate : 1000;

	return MAX(MIN(ms, (uint64_t)1000), (uint64_t)ABC_TICK_MIN_MS);
}

static void abc_pacer_cb(struct loop *loop, struct loop_timer *t)
{
	struct abc_pacer *p = container_of(t, struct abc_pacer, tmr);
	uint64_t due;

	due = (loop_now_ms(loop) - p->start_ms) * abc.rate / 1000;
	if (due > p->fired + ABC_PACER_BURST)
		p->fired = due - ABC_PACER_BURST;
	while (p->fired < due && !abc.stopping) {
		p->fired++;
		p->fire();
	}
	if (!abc.stopping)
		loop_timer_arm(loop, t, abc_pacer_period());
}

void abc_pacer_start(struct abc_pacer *p, void (*fire)(void))
{
	loop_timer_init(&p->tmr, abc_pacer_cb);
	p->fire = fire;
	if (!abc.rate)
		return;
	p->start_ms = loop_now_ms(&abc.loop);
	p->fired = 0;
	loop_timer_arm(&abc.loop, &p->tmr, abc_pacer_period());
}

void abc_pacer_stop(struct abc_pacer *p)
{
	loop_timer_stop(&abc.loop, &p->tmr);
}

static void abc_report_cb(struct loop *loop, struct loop_timer *t)
{
	char sent[ABC_LINE_MAX / 2];
	size_t off = 0;
	unsigned i;
	int n;

	sent[0] = '\0';
	for (i = 0; i < abc.ntargets; i++) {
		struct abc_target *tg = &abc.target[i];

		n = snprintf(sent + off, sizeof(sent) - off,
		             "%s%s %llu ok %llu failed", i ? ", " : "sent: ",
		             tg->name,
		             (unsigned long long)(tg->ok - tg->last_ok),
		             (unsigned long long)(tg->fail - tg->last_fail));
		if (n < 0 || (size_t)n >= sizeof(sent) - off)
			break;
		off += (size_t)n;
		tg->last_ok = tg->ok;
		tg->last_fail = tg->fail;
	}
	abc_log("last %llus: %s%sserved %llu http/1.1, %llu h2, %llu grpc",
	        (unsigned long long)(abc.report_ms / 1000), sent,
	        off ? "; " : "",
	        (unsigned long long)(abc.served_h1 - abc.last_h1),
	        (unsigned long long)(abc.served_h2 - abc.last_h2),
	        (unsigned long long)(abc.served_grpc - abc.last_grpc));
	abc.last_h1 = abc.served_h1;
	abc.last_h2 = abc.served_h2;
	abc.last_grpc = abc.served_grpc;
	loop_timer_arm(loop, t, abc.report_ms);
}

static void abc_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: abc-app a|b|c --listen ADDR [flags]\n"
	        "  a: web front; calls B and C over HTTP/1.1\n"
	        "  b, c: gRPC services (abc.proto); call each other\n"
	        "flags:\n");
	for (i = 0; i < ARRAY_SIZE(abc_flags); i++)
		fprintf(f, "  --%-12s %s%s\n", abc_flags[i].name,
		        abc_flags[i].help,
		        !strcmp(abc_flags[i].roles, "a") ? " (a)" :
		        !strcmp(abc_flags[i].roles, "bc") ? " (b, c)" : "");
}

static int abc_set_flag(const struct abc_flag *f, const char *v, char *err,
                        size_t errlen)
{
	char *end;
	double d;

	switch (f->kind) {
	case ABC_STR:
		*(const char **)f->dst = v;
		return 0;
	case ABC_U64:
		if (str_to_u64(str_from_cstr(v), f->dst) < 0)
			break;
		return 0;
	case ABC_FRACTION:
		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !(d >= 0 && d <= 1))
			break;
		*(double *)f->dst = d;
		return 0;
	case ABC_BOOL:
		*(int *)f->dst = 1;
		return 0;
	case ABC_PIN:
		return net_pin(v, err, errlen);
	}
	snprintf(err, errlen, "bad value \"%s\" for --%s", v, f->name);
	return -1;
}

/* Parses argv[2..]; returns 0 or -1 with <err>. */
static int abc_parse(int argc, char **argv, char *err, size_t errlen)
{
	const struct abc_flag *f;
	const char *arg, *eq, *v;
	size_t i, nlen;
	int k;

	for (k = 2; k < argc; k++) {
		arg = argv[k];
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument \"%s\"", arg);
			return -1;
		}
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		f = NULL;
		for (i = 0; i < ARRAY_SIZE(abc_flags); i++)
			if (strlen(abc_flags[i].name) == nlen &&
			    !strncmp(abc_flags[i].name, arg, nlen))
				f = &abc_flags[i];
		if (!f || !strchr(f->roles, abc.role[0])) {
			snprintf(err, errlen, "unknown flag --%.*s for role %s",
			         (int)nlen, arg, abc.role);
			return -1;
		}
		if (f->kind == ABC_BOOL) {
			if (eq) {
				snprintf(err, errlen, "--%s takes no value",
				         f->name);
				return -1;
			}
			v = "";
		} else if (eq) {
			v = eq + 1;
		} else if (k + 1 < argc) {
			v = argv[++k];
		} else {
			snprintf(err, errlen, "--%s needs a value", f->name);
			return -1;
		}
		if (abc_set_flag(f, v, err, errlen) < 0)
			return -1;
	}
	if (abc_cfg.help)
		return 0;
	if (!abc_cfg.listen) {
		snprintf(err, errlen, "--listen is required");
		return -1;
	}
	if (abc.rate > ABC_RATE_MAX || abc.latency_ms > ABC_LATENCY_MAX ||
	    abc_cfg.report_s > ABC_REPORT_MAX) {
		snprintf(err, errlen, "--rate at most %u, --latency at most %u, "
		         "--report at most %u", ABC_RATE_MAX, ABC_LATENCY_MAX,
		         ABC_REPORT_MAX);
		return -1;
	}
	if (abc_cfg.name && (!*abc_cfg.name ||
	                     strlen(abc_cfg.name) > ABC_NAME_MAX ||
	                     strpbrk(abc_cfg.name, "\"\\ \t\r\n"))) {
		snprintf(err, errlen, "--name: 1..%d bytes, no spaces or quotes",
		         ABC_NAME_MAX);
		return -1;
	}
	return 0;
}

static void abc_seed(void)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	abc.rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static void abc_shutdown(void)
{
	abc.stopping = 1;
	loop_timer_stop(&abc.loop, &abc_cfg.report);
	h1srv_stop();
	h2srv_stop();
	front_shutdown();
	peer_shutdown();
}

static void abc_signal_cb(struct loop *loop, int signum, void *arg)
{
	(void)arg;
	if (abc.stopping)
		return;
	abc_log("%s: shutting down", strsignal(signum));
	abc_shutdown();
	loop_stop(loop);
}

/* Opens the listeners and starts the traffic of the role. */
static int abc_start(char *err, size_t errlen)
{
	struct net_addr a;

	if (net_parse_addr(abc_cfg.listen, &a, err, errlen) < 0 ||
	    h1srv_start(&a, err, errlen) < 0)
		return -1;
	if (abc_cfg.grpc_listen &&
	    (net_parse_addr(abc_cfg.grpc_listen, &a, err, errlen) < 0 ||
	     h2srv_start(&a, err, errlen) < 0))
		return -1;
	if (abc.role[0] == 'a')
		return front_init(abc_cfg.b, abc_cfg.c, err, errlen);
	if (abc_cfg.peer)
		return peer_init(abc_cfg.peer, err, errlen);
	return 0;
}

int main(int argc, char **argv)
{
	char err[256];
	int rc;

	if (argc < 2 || strlen(argv[1]) != 1 || !strchr("abc", argv[1][0])) {
		if (argc >= 2 && !strcmp(argv[1], "--help")) {
			abc_usage(stdout);
			return 0;
		}
		abc_usage(stderr);
		return 2;
	}
	abc.role = argv[1];
	abc.rate = 5;
	if (abc_parse(argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "abc-app %s: %s\n", abc.role, err);
		abc_usage(stderr);
		return 2;
	}
	if (abc_cfg.help) {
		abc_usage(stdout);
		return 0;
	}
	abc.name = abc_cfg.name ? abc_cfg.name : abc.role;
	abc.report_ms = abc_cfg.report_s * 1000;
	abc_seed();

	if (loop_init(&abc.loop, err, sizeof(err)) < 0) {
		abc_log("%s", err);
		return 1;
	}
	rc = loop_signals_watch(&abc.loop, abc_signal_cb, NULL);
	if (rc < 0 || abc_start(err, sizeof(err)) < 0) {
		abc_log("%s", rc < 0 ? strerror(-rc) : err);
		abc_shutdown();
		loop_destroy(&abc.loop);
		return 1;
	}
	abc_log("service %s: http/1.1 on %s%s%s, %llu calls/s to %s",
	        abc.role, abc_cfg.listen,
	        abc_cfg.grpc_listen ? ", h2c/gRPC on " : "",
	        abc_cfg.grpc_listen ? abc_cfg.grpc_listen : "",
	        (unsigned long long)abc.rate,
	        abc.role[0] == 'a' ? "b and c over http/1.1" :
	        abc_cfg.peer ? abc_cfg.peer : "nobody");
	loop_timer_init(&abc_cfg.report, abc_report_cb);
	if (abc.report_ms)
		loop_timer_arm(&abc.loop, &abc_cfg.report, abc.report_ms);

	loop_run(&abc.loop);
	loop_destroy(&abc.loop);
	return 0;
}
