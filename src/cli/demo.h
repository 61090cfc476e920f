/*
 * demo: `meshd demo`, the A/B/C sample application (B in two replicas) in
 * network-namespace pods, each meshed (meshd init + meshd proxy as uid
 * 2102, discovering services through `meshd controller`, which runs as uid
 * 2103 in a pod of its own and serves a registry file the demo writes),
 * with each proxy's golden metrics and the endpoints that answered printed
 * as a table until Ctrl-C or --duration.
 *
 * Contracts:
 *  - Needs root, `ip` and iptables; says so clearly when they are missing.
 *  - On every way out (end of --duration, SIGINT, SIGTERM, SIGHUP, a setup
 *    failure, a proxy, app or the controller dying) it ends exactly the
 *    processes it started and deletes exactly the namespaces it created
 *    (and its scratch directory: logs, registry). Children die with it
 *    even if it is killed (PR_SET_PDEATHSIG); the namespaces of a
 *    demo that was killed are deleted by the next demo (their names carry
 *    the dead demo's PID).
 *  - Exit status: 0 after a normal end, 1 on a failure, 2 on bad usage.
 */
#ifndef MESHD_CLI_DEMO_H
#define MESHD_CLI_DEMO_H

/* Entry point of `meshd demo`; argv[0] is "demo". */
int demo_main(int argc, char **argv);

#endif
