/*
 * destination: the controller's Destination gRPC service (api/
 * destination.proto): Get streams the endpoint set of a service port,
 * GetProfile its route profile, both from the newest registry snapshot,
 * then every change.
 *
 * Bus: the role subscribes to DESTINATION_TOPIC ("registry"), whose
 * messages are struct registry snapshots (controller/registry.h). It never
 * calls the registry role: what it knows arrives on the bus.
 *
 * Contracts:
 *  - One struct destination per process; it owns its gRPC listener (a
 *    struct cserver), every stream and the snapshot references they hold.
 *  - A stream remembers the snapshot it last told its client in full
 *    (<base>) and, while a change is being told, the one it is telling
 *    (<target>), each with a reference. What goes out is always computed
 *    from those two, never queued: a client that reads slowly makes its
 *    stream wait (grpc_call_send -EAGAIN), and when it drains it is told the
 *    difference to the newest snapshot, skipping the ones in between.
 *  - Watching streams are indexed by (namespace, name, port): a snapshot
 *    costs one content comparison per watched key and work only for the
 *    streams whose key changed.
 *  - The pure functions at the end (endpoint order, diff, comparisons) use
 *    no state and no allocation; the unit tests drive them directly.
 */
#ifndef MESHD_CONTROLLER_DESTINATION_H
#define MESHD_CONTROLLER_DESTINATION_H

#include <stddef.h>
#include <stdint.h>

#include "controller/registry.h"
#include "core/bus.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/sock.h"

/* The bus topic carrying struct registry snapshots. */
#define DESTINATION_TOPIC "registry"

/* Most addresses in one Update.add (bigger sets are split). */
#define DESTINATION_CHUNK_ADDRS 1000
/* Soft cap on the encoded bytes of one Update.add. */
#define DESTINATION_CHUNK_BYTES (1u << 20)
/* Longest GetDestination.path accepted. */
#define DESTINATION_PATH_MAX 255

struct destination;

struct destination_cfg {
	struct sock_addr addr;         /* gRPC (h2c) listener */
	const char *cluster_domain;    /* "cluster.local"; MUST outlive */
	uint32_t max_streams;          /* Get + GetProfile streams at once */
	uint32_t max_conns;            /* client connections at once */
	uint32_t max_streams_per_conn; /* HTTP/2 MAX_CONCURRENT_STREAMS */
	uint64_t idle_timeout_ms;      /* close connections without a
	                                * stream after this (0: never) */
};

/*
 * Starts the role: listens on cfg->addr, subscribes to DESTINATION_TOPIC on
 * <bus>, registers its metrics in <reg>. Returns the role, or NULL with a
 * one-line reason in <err>. <loop>, <bus> and <reg> MUST outlive it.
 */
struct destination *destination_new(struct loop *loop, struct bus *bus,
                                    struct metrics_registry *reg,
                                    const struct destination_cfg *cfg,
                                    char *err, size_t errlen);

/* The address the listener is bound to (port 0 resolved). */
const struct sock_addr *destination_addr(const struct destination *d);

/*
 * Graceful stop: no new connection is accepted, every open stream ends
 * with UNAVAILABLE ("shutting down": clients go to another replica) and
 * every connection gets GOAWAY. <done>(arg) runs once no connection is
 * left (possibly from inside this call). Calling it again does nothing.
 */
void destination_drain(struct destination *d, void (*done)(void *arg),
                       void *arg);

/* Open client connections. */
unsigned destination_nconns(const struct destination *d);

/* Closes everything at once and frees the role. NULL is a no-op. */
void destination_free(struct destination *d);

/* ---- pure helpers (exported for the unit tests) ---- */

/*
 * The order endpoints of a service port are sorted in, and the order the
 * diff walks: IPv4 before IPv6, then the address bytes, then the port.
 * MUST agree with the order registry_parse sorts them in.
 */
int destination_ep_cmp(const struct registry_endpoint *a,
                       const struct registry_endpoint *b);

/*
 * 1 when <a> and <b> (same address, usually from two snapshots) announce
 * the same thing to a client: weight, workload name, namespace, service
 * account, labels (in order) and meshed; 0 otherwise. Compares contents,
 * never pointers.
 */
int destination_ep_same(const struct registry_endpoint *a,
                        const struct registry_endpoint *b);

/*
 * Diffs the endpoint lists of one service port in two snapshots, both
 * sorted by destination_ep_cmp, with a merge walk. Stores in <rm> the
 * indexes into <old> of the addresses gone from <nw> (room for <nold>), in
 * <add> the indexes into <nw> of the addresses that are new or whose
 * announcement changed (room for <nnew>); with <force> every address
 * present in <nw> counts as changed (the port's protocol changed, say).
 * Sets *<nrm> and *<nadd>. Equal addresses on one side (two workloads
 * sharing an IP) pair up in order.
 */
void destination_diff(const struct registry_endpoint *old, size_t nold,
                      const struct registry_endpoint *nw, size_t nnew,
                      int force, uint32_t *rm, size_t *nrm, uint32_t *add,
                      size_t *nadd);

/*
 * 1 when service ports <a> and <b> (each may be NULL: unknown) give a Get
 * stream the same view: both unknown, or the same protocol and endpoint
 * lists equal address by address with destination_ep_same.
 */
int destination_port_same(const struct registry_port *a,
                          const struct registry_port *b);

/*
 * 1 when the profiles of (<sa>, <pa>) and (<sb>, <pb>) are equal: routes,
 * service timeout, retry budget, and whether the port is opaque. A NULL
 * service is the empty profile; a NULL port is "not opaque".
 */
int destination_profile_same(const struct registry_service *sa,
                             const struct registry_port *pa,
                             const struct registry_service *sb,
                             const struct registry_port *pb);

#endif
