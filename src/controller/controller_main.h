/*
 * controller_main: `meshd controller`, the control plane. Parses the flags,
 * owns the process-wide state (struct controller: loop, bus, metrics, the
 * roles that run) and runs the loop until a graceful shutdown completes.
 *
 * Roles are modules that talk only through the bus (core/bus.h):
 *  - "registry": the file source. Watches --registry and publishes every
 *    registry that parses as a struct registry on topic "registry"
 *    (CONTROLLER_TOPIC_REGISTRY; the registry is itself a bus_msg).
 *  - "destination": the Destination gRPC service (controller/
 *    destination.h), subscribed to that topic.
 * --roles picks a subset (default: all), so roles can be split across
 * deployments.
 *
 * Contracts:
 *  - One struct controller per process, created by controller_main.
 *    Single-threaded: everything runs on its loop.
 *  - controller_shutdown may be called any number of times; the first call
 *    starts the drain (roles stop serving, connections get GOAWAY), the
 *    loop stops when they are done or after --shutdown-grace.
 *  - /ready answers 200 once a registry snapshot is on the bus and no
 *    shutdown is under way.
 */
#ifndef MESHD_CONTROLLER_CONTROLLER_MAIN_H
#define MESHD_CONTROLLER_CONTROLLER_MAIN_H

#include <stddef.h>
#include <stdint.h>

#include "controller/registry.h"
#include "core/bus.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/sock.h"

#define CONTROLLER_TOPIC_REGISTRY "registry"

/* Roles (bits of controller_cfg.roles). */
#define CONTROLLER_ROLE_REGISTRY    0x1u  /* file registry source */
#define CONTROLLER_ROLE_DESTINATION 0x2u  /* Destination gRPC service */
#define CONTROLLER_ROLES_ALL        0x3u

struct destination;
struct cadmin;

struct controller_cfg {
	const char *roles_s;            /* flag strings (argv/environ) */
	const char *registry_s;
	const char *destination_addr_s;
	const char *admin_addr_s;
	const char *cluster_domain;
	const char *log_level_s;
	const char *log_format_s;
	uint64_t registry_interval_ms;
	uint64_t max_streams;
	uint64_t max_conns;
	uint64_t max_streams_per_conn;
	uint64_t idle_timeout_ms;
	uint64_t shutdown_grace_ms;

	unsigned roles;                 /* CONTROLLER_ROLE_* */
	struct sock_addr destination_addr;
	struct sock_addr admin_addr;
};

struct controller {
	struct controller_cfg cfg;
	struct loop loop;
	struct bus bus;
	struct metrics_registry *reg;
	struct registry_watch watch;    /* registry role */
	int watching;
	uint64_t published_gen;         /* generation last published */
	struct destination *dst;        /* destination role, or NULL */
	struct cadmin *admin;
	int draining;
	struct loop_timer grace;
	int exit_code;
	/* registry role metrics */
	struct metrics_series *m_services;
	struct metrics_series *m_workloads;
	struct metrics_series *m_endpoints;
	struct metrics_series *m_reloads;
	struct metrics_series *m_errors;
	struct metrics_series *m_generation;
};

/* The subcommand. Exit status 0 (clean shutdown), 1 (start-up failure),
 * 2 (bad usage). */
int controller_main(int argc, char **argv);

/* Starts the graceful shutdown; <why> goes to the log. */
void controller_shutdown(struct controller *c, const char *why);

/*
 * Parses a --roles value ("registry,destination"; spaces around names
 * allowed) into CONTROLLER_ROLE_* bits. Returns 0, or -1 with a one-line
 * message in <err> (unknown or empty role name, empty list).
 */
int controller_parse_roles(const char *spec, unsigned *roles, char *err,
                           size_t errlen);

#endif
