/*
 * abc: process-wide state of abc-app, meshd's sample application.
 *
 * abc-app is services A, B and C in one binary, the role chosen by argv[1]:
 * A is a web front that calls B and C over HTTP/1.1; B and C call each
 * other over gRPC (abc.proto). Every role is also a test origin for the
 * proxy's end-to-end tests and benchmarks (see README.md).
 *
 * Contracts:
 *  - One process runs one role on one event loop, so the state below is a
 *    single global, written only from the loop's thread.
 *  - Connections never free themselves inside their own callbacks: they
 *    queue a loop_defer (rule 5 of the style guide).
 *  - abc_log writes one line to stderr per call; abc_debug only with
 *    --verbose.
 */
#ifndef ABC_ABC_H
#define ABC_ABC_H

#include <stdint.h>

#include "core/loop.h"

#define ABC_MAX_TARGETS 2

/* Outgoing calls towards one target ("b", "c" for A; "say", "count" for B
 * and C), counted for /stats and the periodic summary. */
struct abc_target {
	const char *name;   /* ro */
	uint64_t ok;        /* rw: calls that succeeded */
	uint64_t fail;      /* rw: calls that failed */
	uint64_t last_ok;   /* private: value at the previous summary */
	uint64_t last_fail; /* private: value at the previous summary */
	uint64_t logged_ms; /* private: when a failure was last logged */
};

/* Calls fire() abc.rate times a second, evenly (a few per tick at high
 * rates). Embed it; abc_pacer_stop before freeing it. */
struct abc_pacer {
	struct loop_timer tmr;      /* private */
	uint64_t start_ms;          /* private */
	uint64_t fired;             /* private */
	void (*fire)(void);         /* ro */
};

struct abc {
	struct loop loop;         /* the event loop */
	const char *role;         /* ro: "a", "b" or "c" */
	const char *name;         /* ro: service name in answers */
	double fail_rate;         /* ro: fraction of /hello and Say that fail */
	uint64_t latency_ms;      /* rw: added before /, /hello, Say and Count
	                           * (--latency, POST /admin/latency) */
	uint64_t rate;            /* ro: outgoing calls per second per target */
	uint64_t report_ms;       /* ro: summary period, 0 for none */
	int verbose;              /* ro: log every request */
	int stopping;             /* rw: shutdown has begun */
	uint64_t served_h1;       /* rw: HTTP/1.1 requests served */
	uint64_t served_h2;       /* rw: plain HTTP/2 requests served */
	uint64_t served_grpc;     /* rw: gRPC calls served */
	uint64_t last_h1, last_h2, last_grpc; /* private: for the summary */
	struct abc_target target[ABC_MAX_TARGETS]; /* rw: outgoing calls */
	unsigned ntargets;        /* ro */
	uint64_t rng;             /* private: xorshift state */
};

extern struct abc abc;

/* Writes "<time> abc-app <name>: <message>" and a newline to stderr. */
void abc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define abc_debug(...) do { if (abc.verbose) abc_log(__VA_ARGS__); } while (0)

/* A pseudo-random 64-bit number (xorshift64*, seeded at start). */
uint64_t abc_random(void);

/* 1 with probability <p> (0 <= p <= 1), else 0. */
int abc_chance(double p);

/* Registers an outgoing-call counter and returns it (never NULL: the roles
 * register at most ABC_MAX_TARGETS, at start). */
struct abc_target *abc_target_add(const char *name);

/* Counts one call to <t>. A failure is logged with <why>, at most once per
 * ABC_FAIL_LOG_MS per target (every one with --verbose): an outage makes
 * a line now and then, not one per call; the summary has the counts. */
#define ABC_FAIL_LOG_MS 10000
void abc_target_count(struct abc_target *t, int ok, const char *why);

/* Starts <p> (no-op when abc.rate is 0). */
void abc_pacer_start(struct abc_pacer *p, void (*fire)(void));
void abc_pacer_stop(struct abc_pacer *p);

#endif
