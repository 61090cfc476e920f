/*
 * registry: the file registry, meshd's source of services, workloads and
 * route profiles on hosts without Kubernetes (and for the demo).
 *
 * A registry file is YAML (libyaml) or JSON (core/json; chosen by a ".json"
 * suffix or a first non-blank byte '{'):
 *
 *   services:
 *     - name: web                  # DNS label, required
 *       namespace: default         # DNS label, default "default"
 *       ports:                     # at least one
 *         - port: 8080             # the service port clients dial
 *           target_port: 80        # the workloads' port (default: port)
 *           protocol: http         # http | grpc | opaque (default http)
 *       selector: {app: web}       # workloads of the same namespace whose
 *                                  # labels include all of these
 *       timeout: 10s               # default route timeout (0: none)
 *       retry_budget: {ratio: 0.2, min_per_second: 10, ttl: 10s}
 *       routes:                    # first match wins
 *         - name: get-items        # required, unique in the service
 *           method: GET            # optional
 *           path_prefix: /items    # or path_exact: /items; neither = all
 *           retryable: true
 *           timeout: 1s            # overrides the service timeout
 *   workloads:
 *     - name: web-1                # required
 *       namespace: default
 *       service_account: web       # default "default"
 *       addresses: [10.0.0.1, "fd00::1"]   # IP literals, at least one
 *       labels: {app: web, version: v1}
 *       weight: 10000              # default 10000
 *       meshed: true               # has a meshd proxy (default true):
 *                                  # endpoints get an identity and the H2
 *                                  # protocol hint
 *
 * Durations use core/str's grammar ("10s", "250ms"). Unknown keys are
 * errors (a typo must not silently change routing). Limits: REGISTRY_MAX_*.
 *
 * Contracts:
 *  - A struct registry is immutable once registry_parse returns it; it owns
 *    all its memory (its own block list, plus references on the parsed
 *    files it shares strings and arrays with, all released by its last
 *    registry_free) and no pointer into the input text survives. It
 *    embeds a struct bus_msg so that it can be published as a bus
 *    snapshot as is: its reference count is the bus_msg's, registry_free
 *    is its destructor (bus_msg_unref frees it). Single-threaded, as
 *    bus_msg references are.
 *  - Errors are one line "FILE:LINE:COL: message" (LINE, COL from 1) in
 *    <err>; the caller's previous registry is untouched.
 *  - Endpoints are resolved at parse time: each service port has the list
 *    of (workload address, target port) pairs, sorted by address, so that
 *    two snapshots can be diffed with a merge walk.
 */
#ifndef MESHD_CONTROLLER_REGISTRY_H
#define MESHD_CONTROLLER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/loop.h"
#include "core/str.h"

#define REGISTRY_MAX_FILE (64u << 20)   /* bytes of one registry file */
#define REGISTRY_MAX_SERVICES 100000
#define REGISTRY_MAX_WORKLOADS 1000000
#define REGISTRY_MAX_PORTS 64           /* per service */
#define REGISTRY_MAX_ROUTES 256         /* per service */
#define REGISTRY_MAX_LABELS 64          /* per selector / workload */
#define REGISTRY_MAX_ADDRS 16           /* per workload */
#define REGISTRY_WEIGHT_DEFAULT 10000u
/* Added by the implementation (see docs/registry.md): */
#define REGISTRY_MAX_ENDPOINTS 4000000  /* over all service ports */
#define REGISTRY_WEIGHT_MAX 1000000u

enum registry_proto {
	REGISTRY_PROTO_HTTP = 0,   /* HTTP/1.1 or HTTP/2: detected */
	REGISTRY_PROTO_GRPC,       /* HTTP/2 (gRPC) */
	REGISTRY_PROTO_OPAQUE,     /* opaque TCP, no detection */
};

struct registry_label {
	const char *key;           /* NUL-terminated, owned by the registry */
	const char *value;
};

/* An IP address (added: the workload's addresses as written). */
struct registry_addr {
	uint8_t ip[16];            /* network order; IPv4 in the first 4 */
	uint8_t iplen;             /* 4 or 16 */
};

struct registry_workload {
	const char *name;
	const char *ns;
	const char *service_account;
	struct registry_label *labels;   /* sorted by key (strcmp) */
	size_t nlabels;
	uint32_t weight;
	int meshed;
	/* the first line of this workload's entry, for messages */
	uint32_t line;
	/* added: the addresses in file order, no duplicates, >= 1 */
	struct registry_addr *addrs;
	size_t naddrs;
};

/* One endpoint of a service port: an address of a selected workload. */
struct registry_endpoint {
	uint8_t ip[16];            /* network order; IPv4 in the first 4 */
	uint8_t iplen;             /* 4 or 16 */
	uint16_t port;             /* the target port */
	const struct registry_workload *workload;
};

enum registry_path_kind {
	REGISTRY_PATH_ANY = 0,
	REGISTRY_PATH_EXACT,
	REGISTRY_PATH_PREFIX,
};

struct registry_route {
	const char *name;
	const char *method;        /* NULL: any method */
	enum registry_path_kind path_kind;
	const char *path;          /* NULL with REGISTRY_PATH_ANY */
	int retryable;
	uint64_t timeout_ms;       /* 0: the service's timeout */
};

struct registry_port {
	uint16_t port;
	uint16_t target_port;
	enum registry_proto proto;
	struct registry_endpoint *eps;   /* sorted by (ip, port) */
	size_t neps;
};

struct registry_service {
	const char *name;
	const char *ns;
	struct registry_port *ports;
	size_t nports;
	struct registry_label *selector; /* sorted by key (strcmp) */
	size_t nselector;
	struct registry_route *routes;
	size_t nroutes;
	uint64_t timeout_ms;             /* 0: none */
	float retry_ratio;               /* default 0.2 */
	uint32_t retry_min_per_second;   /* default 10 */
	uint64_t retry_ttl_ms;           /* default 10000 */
	uint32_t line;
};

struct registry {
	struct bus_msg msg;              /* first: the registry is a snapshot */
	struct registry_service *services;   /* sorted by (ns, name) */
	size_t nservices;
	struct registry_workload *workloads; /* in file order */
	size_t nworkloads;
	size_t nendpoints;               /* over all service ports */
	uint64_t generation;             /* set by the loader: 1, 2, ... */
	void *blocks_;                   /* private: owned memory */
	void *parts_;                    /* private: the parsed files it
	                                  * shares (references held) */
};

/*
 * Parses <len> bytes of <text> named <file> (used in messages only).
 * <format>: 'y' YAML, 'j' JSON, 0 to choose (see above). On success
 * stores a new registry with one reference in *<out> and returns 0; on
 * error returns -1 with "FILE:LINE:COL: message" in <err>
 * (-ENOMEM as -1 with "out of memory" too).
 */
int registry_parse(const char *text, size_t len, const char *file,
                   int format, struct registry **out, char *err,
                   size_t errlen);

/* Drops the caller's reference (bus_msg_unref). NULL is a no-op. */
void registry_free(struct registry *r);

/* The service <name> in namespace <ns>, or NULL. O(log n). ASCII
 * case-insensitive (names are stored lower case), so the slices of
 * registry_authority_split can be passed as they are. */
const struct registry_service *registry_find(const struct registry *r,
                                             struct str name, struct str ns);

/* The port <port> of <s>, or NULL. */
const struct registry_port *registry_service_port(
	const struct registry_service *s, uint16_t port);

/*
 * Splits an authority into service name, namespace and port. Accepted:
 * "name.ns", "name.ns.svc", "name.ns.svc.<cluster_domain>", each with an
 * optional ":port" (default 80), case-insensitive, a trailing dot allowed.
 * Returns 0, or -1 when <authority> is not of that form (an IP literal,
 * one label, another domain). <name> and <ns> point into <authority> (case
 * as given). <cluster_domain> NULL means "cluster.local". Labels that are
 * all digits are refused (inet_aton forms such as "127.1").
 */
int registry_authority_split(struct str authority, const char *cluster_domain,
                             struct str *name, struct str *ns,
                             uint16_t *port);

/*
 * The first route of <s> matching <method> and <path> (the path without
 * its query), or NULL.
 */
const struct registry_route *registry_route_match(
	const struct registry_service *s, struct str method, struct str path);

/*
 * A watched registry: a file or a directory of fragments.
 *
 * File: registry_watch_start loads <path> at once (returning -1 with <err>
 * when that fails), then re-reads it whenever its size, mtime or inode
 * change (ev_stat, polled every <interval_ms>, also catching editors that
 * replace the file) and calls <cb> with each new registry that parsed (the
 * callback gets its own reference). A file that fails to parse is logged
 * with its file:line message, counted, and the previous registry stays
 * current.
 *
 * Directory (when <path> names one at the start): every regular file
 * directly in it (symbolic links followed, no recursion) whose name ends
 * in ".yaml", ".yml" or ".json" and does not start with '.' is a fragment
 * in the file format above (each may hold services and/or workloads; JSON
 * for ".json" or a leading '{', else YAML). The registry is the union of the fragments,
 * taken in byte order of their names (the "file order" of workloads and
 * of the tie-break between workloads sharing an address). A service or
 * workload (ns, name) twice, in one fragment or in two, is an error naming
 * both places ("B:LINE:COL: duplicate ... (first at A:LINE)"). A change
 * re-parses only the fragments whose (device, inode, size, mtime, ctime)
 * changed or that appeared; the others are reused as parsed, then the
 * union is assembled and every selector resolved again (see
 * docs/registry.md for the costs). A reload is refused as a whole, the
 * previous registry kept, while any fragment fails to parse (its message
 * is the error), when the union holds a duplicate, and when the directory
 * holds no fragment or cannot be read. Changes are noticed through inotify
 * on the directory (an entry renamed in or out, removed, written and
 * closed, or its attributes changed): only the files it names are stat'ed
 * and, when changed, read. The poll timer (and events naming no file)
 * list the directory and stat every fragment: keep directories to
 * thousands of files. A broken fragment is not read again until its stat
 * changes.
 *
 * Added details: <cb> is NOT called for the first load (read w->current
 * after registry_watch_start). <w> MUST stay at a fixed address while
 * watched (the ev_stat watcher points at w->path). Besides ev_stat (which
 * compares times in whole seconds), a poll timer of <interval_ms> (0: 5 s)
 * compares size, inode and nanosecond times, so a same-size rewrite within
 * one second is still seen. A vanished file counts one error and keeps the
 * current registry; its return is loaded like any change.
 * registry_watch_stop stops watching and drops w->current (NULL after);
 * it accepts a zeroed or stopped watch.
 */
typedef void (*registry_cb)(void *arg, struct registry *r);

struct registry_watch {
	struct loop *loop;               /* ro */
	char path[1024];                 /* ro */
	registry_cb cb;                  /* private */
	void *arg;                       /* private */
	struct registry *current;        /* ro: the current registry */
	uint64_t loads;                  /* ro: registries accepted */
	uint64_t errors;                 /* ro: reloads refused */
	char last_error[256];            /* ro: "" or the last message */
	void *priv_;                     /* private: the ev_stat watcher */
	/* directory mode (all 0 for a file) */
	int is_dir;                      /* ro: <path> is a directory */
	size_t nfragments;               /* ro: fragment files last seen */
	uint64_t fragment_parses;        /* ro: fragment files parsed, ever */
	uint64_t last_assemble_ns;       /* ro: how long the last union and
	                                  * resolution took (monotonic) */
};

int registry_watch_start(struct registry_watch *w, struct loop *loop,
                         const char *path, unsigned interval_ms,
                         registry_cb cb, void *arg, char *err, size_t errlen);
void registry_watch_stop(struct registry_watch *w);

#endif
