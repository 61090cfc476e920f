/*
 * demo: `meshd demo`. See demo.h for the contract.
 *
 * What it builds (all names carry "meshd-demo-<pid>-", so two demos never
 * collide and a dead demo's leftovers are recognisable):
 *
 *   node namespace "...-node" with a bridge br0
 *     |-- pod controller 10.213.0.10  meshd controller (not meshed)
 *     |-- pod a   10.213.0.11  abc-app a  (HTTP/1.1 calls to b and c)
 *     |-- pod b   10.213.0.12  abc-app b  (gRPC calls to c; serves a and c)
 *     |-- pod b2  10.213.0.14  abc-app b  (B's second replica, --name b2)
 *     `-- pod c   10.213.0.13  abc-app c  (gRPC calls to b; serves a, b)
 *
 * The controller (uid 2103) serves the Destination API on :8086 from a
 * registry file the demo writes into its scratch directory: services a, b
 * and c in namespace "demo", one workload per pod, route profiles for b
 * and c. Each app pod gets `meshd init` (its redirect rules), `meshd proxy
 * --mode transparent --destination-addr 10.213.0.10:8086` as uid 2102,
 * then its app as --app-uid. The apps call each other by name
 * ("b.demo.svc.cluster.local:8080"): a pod has no DNS, so each app pins
 * the name to the first replica's address (abc-app --resolve); the proxy
 * captures the connection anyway, resolves the authority with the
 * controller and balances over b and b2. Every --interval the demo fetches
 * each proxy's admin /metrics from inside the pod, computes the golden
 * metrics of the window with core/prom, and prints one table: a row per
 * outbound service (with the share of each endpoint that answered) and per
 * inbound port, and how many proxies are connected to the controller.
 *
 * IMPLEMENTATION NOTES
 *  - No shell anywhere: `ip` runs by fork + execvp with argv arrays; meshd
 *    (init, proxy, controller) and the app run by fexecve on descriptors
 *    opened at start (/proc/self/exe and --app), so the uids they run as
 *    need no access to the directories holding the binaries. The scratch
 *    directory is 0711 and the registry in it 0644, so that the controller
 *    (uid 2103) can read the registry and nobody else can list the logs.
 *  - SIGINT, SIGTERM, SIGHUP and SIGCHLD are blocked for the whole run and
 *    taken synchronously with sigtimedwait: the main loop sleeps in it, and
 *    setup polls it between steps, so a Ctrl-C at any moment leads to the
 *    same cleanup. Children get the original mask and default dispositions
 *    back before exec, their own process group (a terminal's Ctrl-C reaches
 *    the demo only, which then ends them in order: apps, then proxies) and
 *    PR_SET_PDEATHSIG, so a demo killed with SIGKILL takes them along.
 *  - Fetching /metrics: a forked child enters the pod's namespace with
 *    setns, makes one blocking HTTP/1.1 request to 127.0.0.1:4191 and
 *    copies the raw answer into a pipe; the demo parses it with core/http1
 *    (Content-Length, chunked or until close). The demo itself never
 *    leaves the namespace it started in.
 *  - Every wait is bounded: helper commands 30 s, fetches 5 s, readiness
 *    20 s, the end of a child 5 s after SIGTERM (then SIGKILL).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cli/demo.h"
#include "core/buf.h"
#include "core/http1.h"
#include "core/mem.h"
#include "core/opt.h"
#include "core/prom.h"
#include "core/str.h"

#define DEMO_NPODS 4
#define DEMO_PROXY_UID 2102
#define DEMO_CTL_UID 2103
#define DEMO_NET "10.213.0."
#define DEMO_NET6 "fd00:213:0::"
#define DEMO_CTL_HOST 10          /* the controller's address in DEMO_NET */
#define DEMO_HTTP_PORT 8080
#define DEMO_GRPC_PORT 8081
#define DEMO_ADMIN_PORT 4191
#define DEMO_DST_PORT 8086        /* the controller's Destination API */
#define DEMO_CTL_ADMIN_PORT 9996  /* the controller's /ready, /metrics */
#define DEMO_DOMAIN "demo.svc.cluster.local"
#define DEMO_PREFIX "meshd-demo-"
#define DEMO_GROUPS 32
#define DEMO_MAX_EPS 8            /* endpoints listed per outbound row */
#define DEMO_FETCH_MAX (8u << 20)
#define DEMO_CMD_TIMEOUT_MS 30000
#define DEMO_FETCH_TIMEOUT_S 5
#define DEMO_READY_TIMEOUT_MS 20000
#define DEMO_STOP_GRACE_MS 5000
#define DEMO_OUT_MAX 4096

/* The three ways a scrape is grouped (see demo_by). */
enum demo_view {
	DEMO_V_EDGE,     /* direction, authority: a row per outbound service */
	DEMO_V_PORT,     /* direction, target_addr: a row per inbound port */
	DEMO_V_EP,       /* direction, authority, target_addr: the endpoints */
	DEMO_NVIEWS
};

struct demo_pod {
	const char *name;                /* "a", "b", "b2", "c", "controller" */
	const char *svc;                 /* its service and app role */
	unsigned host;                   /* last byte of its addresses */
	char ns[64];                     /* namespace name */
	char ip[INET_ADDRSTRLEN];
	char ip6[INET6_ADDRSTRLEN];
	char proxy_log[128];             /* the controller's log, for it */
	char app_log[128];
	int ns_made;                     /* ours to delete */
	pid_t proxy;                     /* 0 when not running; for the
	                                  * controller pod, the controller */
	pid_t app;
	/* two scrapes' worth of each view */
	struct prom_group *groups[2][DEMO_NVIEWS];
	struct prom_golden golden[2][DEMO_NVIEWS];
	double connected[2];             /* destination_connected, or NaN */
	double at[2];                    /* scrape times, seconds */
	int have[2];
	int cur;                         /* index of the latest scrape */
};

struct demo {
	struct demo_pod pods[DEMO_NPODS];
	struct demo_pod ctl;             /* the controller's pod */
	char registry[128];              /* the registry file */
	char node[64];
	int node_made;
	char dir[64];                    /* scratch directory for the logs */
	int exe_fd;                      /* meshd itself */
	int app_fd;                      /* abc-app */
	char **env;                      /* children's environment */
	sigset_t sigs;                   /* the signals taken synchronously */
	sigset_t oldmask;
	int stop;                        /* a stop signal arrived */
	int stop_sig;
	pid_t me;
	double t0;
	/* flags */
	const char *app;
	uint64_t interval_ms;
	uint64_t duration_ms;
	uint64_t rate;
	uint64_t app_uid;
	int keep_logs;
};

/* ---- small helpers ---------------------------------------------------- */

static double demo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2)))
static void demo_err(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "meshd demo: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	dprintf(2, "%s\n", line);
}

/* Takes pending stop signals without waiting; returns d->stop. Reaping
 * happens elsewhere: SIGCHLD only wakes the caller up. */
static int demo_poll_signals(struct demo *d, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	siginfo_t si;
	int sig;

	for (;;) {
		sig = sigtimedwait(&d->sigs, &si, &ts);
		if (sig < 0)
			return d->stop;
		if (sig != SIGCHLD && !d->stop) {
			d->stop = 1;
			d->stop_sig = sig;
		}
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
		if (d->stop)
			return d->stop;
	}
}

/* Prints the last lines of <path> to stderr, indented. */
static void demo_tail(const char *path, int lines)
{
	char buf[4096];
	ssize_t n;
	off_t size;
	int fd, seen = 0;
	size_t i, start;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	start = 0;
	for (i = (size_t)n; i > 0; i--) {
		if (buf[i - 1] == '\n' && i != (size_t)n && ++seen >= lines) {
			start = i;
			break;
		}
	}
	dprintf(2, "  | %s", buf + start);
	if (buf[n - 1] != '\n')
		dprintf(2, "\n");
}

/* Looks <name> up in $PATH (or the usual system directories). */
static int demo_have_tool(const char *name)
{
	const char *path = getenv("PATH");
	struct str rest, dir;
	char full[512];

	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	rest = str_from_cstr(path);
	while (str_next_token(&rest, ':', &dir)) {
		if (!dir.len)
			continue;
		if (snprintf(full, sizeof(full), "%.*s/%s", (int)dir.len, dir.p,
		             name) >= (int)sizeof(full))
			continue;
		if (access(full, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* ---- children --------------------------------------------------------- */

struct demo_child {
	const char *ns;       /* enter this namespace, or NULL */
	int uid;              /* switch to this uid (and gid), or -1 */
	int exec_fd;          /* fexecve this, or -1: execvp argv[0] */
	char *const *argv;
	int out_fd;           /* stdout and stderr, or -1: /dev/null */
	int daemon;           /* long-lived: dies with the demo */
};

/* In a fresh child: enters the namespace named <ns>. */
static int demo_enter_ns(const char *ns)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

/* Child side of demo_spawn; never returns. */
__attribute__((noreturn))
static void demo_child_exec(struct demo *d, const struct demo_child *c)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
	setpgid(0, 0);
	if (null >= 0)
		dup2(null, 0);
	if (c->out_fd >= 0) {
		dup2(c->out_fd, 1);
		dup2(c->out_fd, 2);
	} else if (null >= 0) {
		dup2(null, 1);
		dup2(null, 2);
	}
	if (c->ns && demo_enter_ns(c->ns) < 0) {
		dprintf(2, "meshd demo: cannot enter namespace %s: %s\n", c->ns,
		        strerror(errno));
		_exit(126);
	}
	if (c->uid >= 0) {
		gid_t g = (gid_t)c->uid;
		uid_t u = (uid_t)c->uid;

		if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 ||
		    setresuid(u, u, u) < 0) {
			dprintf(2, "meshd demo: cannot switch to uid %d: %s\n",
			        c->uid, strerror(errno));
			_exit(126);
		}
	}
	/* after the uid switch, which clears it */
	if (c->daemon) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != d->me)
			_exit(126);
	}
	if (c->exec_fd >= 0)
		fexecve(c->exec_fd, c->argv, d->env);
	else
		execvpe(c->argv[0], c->argv, d->env);
	dprintf(2, "meshd demo: cannot run %s: %s\n", c->argv[0], strerror(errno));
	_exit(127);
}

/* Starts a child as described by <c>. Returns its PID, or -1. */
static pid_t demo_spawn(struct demo *d, const struct demo_child *c)
{
	pid_t pid = fork();

	if (pid == 0)
		demo_child_exec(d, c);
	if (pid > 0)
		setpgid(pid, pid); /* also from here: no race with a signal */
	return pid;
}

/* Waits up to <ms> for <pid> to exit. Returns its wait status, or -1 when
 * it is still running. */
static int demo_wait(pid_t pid, int ms)
{
	double end = demo_now() + ms / 1000.0;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return 0; /* not ours any more: nothing to wait for */
		if (demo_now() >= end)
			return -1;
		usleep(10000);
	}
}

/*
 * Runs a short command to its end (at most DEMO_CMD_TIMEOUT_MS, then it is
 * killed) and collects its output in <out>. Returns its exit status, or -1
 * when it could not run or was killed.
 */
static int demo_run(struct demo *d, const struct demo_child *tmpl,
                    char *out, size_t outlen)
{
	struct demo_child c = *tmpl;
	double end = demo_now() + DEMO_CMD_TIMEOUT_MS / 1000.0;
	size_t len = 0;
	struct pollfd pfd;
	int fds[2], status;
	ssize_t n;
	pid_t pid;
	char junk[512];

	if (outlen)
		out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	c.out_fd = fds[1];
	pid = demo_spawn(d, &c);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (demo_now() < end) {
		int keep = outlen && len + 1 < outlen;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		/* past the room in <out>, output is drained and dropped */
		n = keep ? read(fds[0], out + len, outlen - 1 - len) :
		           read(fds[0], junk, sizeof(junk));
		if (n <= 0)
			break;
		if (keep)
			len += (size_t)n;
	}
	close(fds[0]);
	if (outlen)
		out[len] = '\0';
	status = demo_wait(pid, demo_now() < end ? DEMO_CMD_TIMEOUT_MS : 0);
	if (status < 0) {
		kill(pid, SIGKILL);
		demo_wait(pid, 1000);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `ip ARGS...` (NULL-terminated); on failure prints the command and
 * its output and returns -1. */
static int demo_ip(struct demo *d, ...)
{
	char *argv[24], out[DEMO_OUT_MAX], line[512];
	struct demo_child c = { NULL, -1, -1, argv, -1, 0 };
	size_t n = 0, off = 0, i;
	va_list ap;
	int rc;

	argv[n++] = "ip";
	va_start(ap, d);
	while (n < 23 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	rc = demo_run(d, &c, out, sizeof(out));
	if (rc == 0)
		return 0;
	for (i = 0; i < n && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
		                        i ? " " : "", argv[i]);
	demo_err("`%s` failed%s%s", line, out[0] ? ": " : "",
	         out[0] ? out : "");
	return -1;
}

/* ---- the scratch directory -------------------------------------------- */

static int demo_make_dir(struct demo *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/meshd-demo-%d.XXXXXX", (int)d->me);
	if (!mkdtemp(d->dir)) {
		demo_err("cannot create a scratch directory in /tmp: %s",
		         strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	/* the controller's uid reaches the registry; nobody lists the dir */
	if (chmod(d->dir, 0711) < 0) {
		demo_err("chmod %s: %s", d->dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The files a demo creates in its scratch directory, and nothing else:
 * the only names a cleanup ever unlinks there. */
static const char *const demo_log_names[] = {
	"a.proxy.log", "a.app.log", "b.proxy.log", "b.app.log",
	"b2.proxy.log", "b2.app.log", "c.proxy.log", "c.app.log",
	"controller.log", "registry.yaml",
};

/* Removes the scratch directories "/tmp/meshd-demo-<pid>.XXXXXX" of demos
 * that died (SIGKILL) before removing them: their known log files, then
 * the directory (left alone if anything else is in it). */
static void demo_clean_old_dirs(struct demo *d)
{
	DIR *dir = opendir("/tmp");
	struct dirent *e;
	char path[512];
	const char *p;
	size_t i;
	long pid;
	char *end;

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		if (strncmp(e->d_name, DEMO_PREFIX, strlen(DEMO_PREFIX)) != 0)
			continue;
		p = e->d_name + strlen(DEMO_PREFIX);
		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno || end == p || *end != '.' || strlen(end) != 7 ||
		    pid <= 0)
			continue;
		if (pid != (long)d->me && (kill((pid_t)pid, 0) == 0 ||
		                           errno == EPERM))
			continue;
		for (i = 0; i < sizeof(demo_log_names) / sizeof(demo_log_names[0]);
		     i++) {
			if (snprintf(path, sizeof(path), "/tmp/%s/%s", e->d_name,
			             demo_log_names[i]) < (int)sizeof(path))
				unlink(path);
		}
		if (snprintf(path, sizeof(path), "/tmp/%s", e->d_name) <
		    (int)sizeof(path))
			rmdir(path);
	}
	closedir(dir);
}

/* --keep-logs: renames the scratch directory out of the way of
 * demo_clean_old_dirs ("meshd-demo-logs-<pid>.XXXXXX") and prints it. */
static void demo_keep_dir(struct demo *d)
{
	char kept[96];
	const char *suffix = strrchr(d->dir, '.');

	if (!suffix || snprintf(kept, sizeof(kept), "/tmp/" DEMO_PREFIX
	                        "logs-%d%s", (int)d->me, suffix) >=
	    (int)sizeof(kept) || rename(d->dir, kept) < 0) {
		dprintf(1, "logs kept in %s\n", d->dir);
		return;
	}
	dprintf(1, "logs kept in %s\n", kept);
}

static void demo_remove_dir(struct demo *d)
{
	int i;

	if (!d->dir[0])
		return;
	for (i = 0; i < DEMO_NPODS; i++) {
		unlink(d->pods[i].proxy_log);
		unlink(d->pods[i].app_log);
	}
	unlink(d->ctl.proxy_log);
	unlink(d->registry);
	rmdir(d->dir);
	d->dir[0] = '\0';
}

/* Opens <path> for a child's output (O_APPEND, created 0600). */
static int demo_open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* ---- namespaces -------------------------------------------------------- */

/* Deletes the namespaces of demos that died without cleaning up: names
 * "meshd-demo-<pid>-..." whose <pid> no longer exists (or is ours: called
 * before the demo creates anything). Never kills. */
static void demo_clean_leftovers(struct demo *d)
{
	DIR *dir = opendir("/var/run/netns");
	struct dirent *e;
	char name[256];
	const char *p;
	long pid;
	char *end;

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		if (strncmp(e->d_name, DEMO_PREFIX, strlen(DEMO_PREFIX)) != 0)
			continue;
		p = e->d_name + strlen(DEMO_PREFIX);
		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno || end == p || *end != '-' || pid <= 0)
			continue;
		/* our own PID: an earlier demo's, reused (we made nothing yet) */
		if (pid != (long)d->me && (kill((pid_t)pid, 0) == 0 ||
		                           errno == EPERM))
			continue;
		if (snprintf(name, sizeof(name), "%s", e->d_name) >=
		    (int)sizeof(name))
			continue;
		if (demo_ip(d, "netns", "del", name, NULL) == 0)
			dprintf(1, "deleted namespace %s left by an earlier demo\n",
			        name);
	}
	closedir(dir);
}

static int demo_make_node(struct demo *d)
{
	snprintf(d->node, sizeof(d->node), DEMO_PREFIX "%d-node", (int)d->me);
	if (demo_ip(d, "netns", "add", d->node, NULL) < 0)
		return -1;
	d->node_made = 1;
	if (demo_ip(d, "-n", d->node, "link", "set", "lo", "up", NULL) < 0 ||
	    demo_ip(d, "-n", d->node, "link", "add", "br0", "type", "bridge",
	            "stp_state", "0", "forward_delay", "0", NULL) < 0 ||
	    demo_ip(d, "-n", d->node, "link", "set", "br0", "up", NULL) < 0)
		return -1;
	return 0;
}

static int demo_make_pod(struct demo *d, struct demo_pod *p)
{
	char port[16], a4[32], a6[64];

	snprintf(port, sizeof(port), "v-%s", p->name);
	snprintf(a4, sizeof(a4), "%s/24", p->ip);
	snprintf(a6, sizeof(a6), "%s/64", p->ip6);
	if (demo_ip(d, "netns", "add", p->ns, NULL) < 0)
		return -1;
	p->ns_made = 1;
	if (demo_ip(d, "-n", p->ns, "link", "set", "lo", "up", NULL) < 0 ||
	    demo_ip(d, "-n", d->node, "link", "add", port, "type", "veth",
	            "peer", "name", "eth0", "netns", p->ns, NULL) < 0 ||
	    demo_ip(d, "-n", d->node, "link", "set", port, "master", "br0",
	            "up", NULL) < 0 ||
	    demo_ip(d, "-n", p->ns, "addr", "add", a4, "dev", "eth0", NULL) < 0 ||
	    demo_ip(d, "-n", p->ns, "-6", "addr", "add", a6, "dev", "eth0",
	            "nodad", NULL) < 0 ||
	    demo_ip(d, "-n", p->ns, "link", "set", "eth0", "up", NULL) < 0)
		return -1;
	return 0;
}

/* ---- fetching from an admin port -------------------------------------- */

/* Child side of demo_fetch: one request, raw answer to <fd>. */
__attribute__((noreturn))
static void demo_fetch_child(struct demo *d, const char *ns, int port,
                             const char *path, int fd)
{
	struct sockaddr_in sa;
	struct timeval tv = { DEMO_FETCH_TIMEOUT_S - 1, 0 };
	char req[256], buf[16384];
	ssize_t n, w, off;
	int s, len;

	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
	alarm(DEMO_FETCH_TIMEOUT_S);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (demo_enter_ns(ns) < 0)
		_exit(2);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		_exit(2);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(3);
	len = snprintf(req, sizeof(req),
	               "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	               "User-Agent: meshd-demo\r\nConnection: close\r\n\r\n",
	               path, port);
	if (write(s, req, (size_t)len) != len)
		_exit(3);
	while ((n = read(s, buf, sizeof(buf))) > 0) {
		for (off = 0; off < n; off += w) {
			w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				_exit(4);
		}
	}
	_exit(n < 0 ? 3 : 0);
}

/* Decodes the body of the answer in <raw> into <body>. Returns the HTTP
 * status, or -1 with a reason in <err>. */
static int demo_parse_answer(const char *raw, size_t len, struct buf *body,
                             char *err, size_t errlen)
{
	struct http1_header hs[64];
	struct http1_head h;
	struct http1_chunked ch;
	size_t pos, used, off, span;
	int rc;

	http1_head_init(&h, hs, 64);
	rc = http1_parse_response(raw, len, NULL, &h);
	if (rc <= 0) {
		snprintf(err, errlen, "bad answer: %s",
		         rc ? http1_strerror(rc) : "truncated head");
		return -1;
	}
	pos = (size_t)rc;
	switch (http1_response_body(HTTP1_M_GET, &h)) {
	case HTTP1_BODY_NONE:
		return h.status;
	case HTTP1_BODY_LENGTH:
		if (h.content_length > len - pos) {
			snprintf(err, errlen, "truncated body");
			return -1;
		}
		if (buf_append(body, raw + pos, (size_t)h.content_length) < 0)
			goto big;
		return h.status;
	case HTTP1_BODY_CLOSE:
		if (buf_append(body, raw + pos, len - pos) < 0)
			goto big;
		return h.status;
	case HTTP1_BODY_CHUNKED:
		http1_chunked_init(&ch, NULL);
		for (;;) {
			rc = http1_chunked_feed(&ch, raw + pos, len - pos, &used,
			                        &off, &span);
			if (rc == HTTP1_CHUNKED_DATA &&
			    buf_append(body, raw + pos + off, span) < 0)
				goto big;
			pos += used;
			if (rc == HTTP1_CHUNKED_DONE)
				return h.status;
			if (rc < 0 || (rc == HTTP1_CHUNKED_MORE && pos >= len)) {
				snprintf(err, errlen, "bad chunked body");
				return -1;
			}
		}
	default:
		snprintf(err, errlen, "unexpected framing");
		return -1;
	}
big:
	snprintf(err, errlen, "body larger than %u bytes", DEMO_FETCH_MAX);
	return -1;
}

/*
 * GET <path> from 127.0.0.1:<port> (an admin port) inside the pod <p>.
 * Stores the body in <body> (reset first) and returns the status, or -1
 * with a reason in <err>.
 */
static int demo_fetch(struct demo *d, struct demo_pod *p, int port,
                      const char *path, struct buf *body, char *err,
                      size_t errlen)
{
	struct buf raw;
	struct pollfd pfd;
	double end = demo_now() + DEMO_FETCH_TIMEOUT_S + 1;
	int fds[2], status, rc = -1;
	ssize_t n;
	pid_t pid;

	buf_reset(body);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		demo_fetch_child(d, p->ns, port, path, fds[1]);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	buf_init(&raw, DEMO_FETCH_MAX + 64 * 1024);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		char *dst;

		if (demo_now() >= end)
			break;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		dst = buf_reserve(&raw, 65536);
		if (!dst)
			break;
		n = read(fds[0], dst, 65536);
		if (n <= 0)
			break;
		buf_produce(&raw, (size_t)n);
	}
	close(fds[0]);
	status = demo_wait(pid, 1000);
	if (status < 0) {
		kill(pid, SIGKILL);
		demo_wait(pid, 1000);
		snprintf(err, errlen, "no answer within %ds", DEMO_FETCH_TIMEOUT_S);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "%s",
		         WIFEXITED(status) && WEXITSTATUS(status) == 3 ?
		         "cannot connect to the admin port" : "fetch failed");
	} else {
		rc = demo_parse_answer(buf_data(&raw), buf_len(&raw), body,
		                       err, errlen);
	}
	buf_free(&raw);
	return rc;
}

/* ---- processes ----------------------------------------------------------- */

/* The first pod of service <svc> (the address an app pins its name to). */
static struct demo_pod *demo_first_pod(struct demo *d, const char *svc)
{
	int i;

	for (i = 0; i < DEMO_NPODS; i++)
		if (!strcmp(d->pods[i].svc, svc))
			return &d->pods[i];
	return &d->pods[0];
}

/* Appends to <b> the registry entry of service <svc>: HTTP on
 * DEMO_HTTP_PORT, and for b and c gRPC on DEMO_GRPC_PORT with its route
 * profile. */
static void demo_registry_service(struct buf *b, const char *svc)
{
	buf_printf(b,
	           "  - name: %s\n"
	           "    namespace: demo\n"
	           "    selector: {app: %s}\n"
	           "    ports:\n"
	           "      - {port: %d, protocol: http}\n", svc, svc,
	           DEMO_HTTP_PORT);
	if (!strcmp(svc, "a"))
		return;
	buf_printf(b,
	           "      - {port: %d, protocol: grpc}\n"
	           "    routes:\n"
	           "      - name: echo          # abc.Echo Say and Count\n"
	           "        path_prefix: /abc.Echo/\n"
	           "        retryable: true\n"
	           "        timeout: 1s\n"
	           "      - name: hello         # A's calls\n"
	           "        method: GET\n"
	           "        path_prefix: /hello\n"
	           "        retryable: true\n", DEMO_GRPC_PORT);
}

/* Writes the registry file (docs/registry.md) the controller serves:
 * services a, b and c of namespace "demo", one workload per pod. */
static int demo_write_registry(struct demo *d)
{
	static const char *const svcs[] = { "a", "b", "c" };
	struct buf b;
	size_t i, off;
	ssize_t n;
	int fd, rc = -1;

	buf_init(&b, 64 * 1024);
	buf_printf(&b, "# written by meshd demo for its controller "
	           "(docs/registry.md)\nservices:\n");
	for (i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++)
		demo_registry_service(&b, svcs[i]);
	buf_printf(&b, "workloads:\n");
	for (i = 0; i < DEMO_NPODS; i++)
		buf_printf(&b,
		           "  - name: %s\n"
		           "    namespace: demo\n"
		           "    service_account: %s\n"
		           "    addresses: [%s]\n"
		           "    labels: {app: %s}\n", d->pods[i].name,
		           d->pods[i].svc, d->pods[i].ip, d->pods[i].svc);
	fd = open(d->registry, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0)
		goto out;
	for (off = 0; off < buf_len(&b); off += (size_t)n) {
		n = write(fd, buf_data(&b) + off, buf_len(&b) - off);
		if (n <= 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		demo_err("cannot write %s: %s", d->registry, strerror(errno));
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return rc;
}

/* Starts <argv> in pod <p> as <uid>, output to <log>; the PID goes to
 * <*pid>. */
static int demo_start(struct demo *d, struct demo_pod *p, int uid,
                      int exec_fd, char **argv, const char *log, pid_t *pid)
{
	struct demo_child c = { p->ns, uid, exec_fd, argv, -1, 1 };

	c.out_fd = demo_open_log(log);
	if (c.out_fd < 0) {
		demo_err("cannot create %s: %s", log, strerror(errno));
		return -1;
	}
	*pid = demo_spawn(d, &c);
	close(c.out_fd);
	if (*pid < 0) {
		*pid = 0;
		demo_err("fork: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int demo_start_controller(struct demo *d)
{
	char dst[32], admin[32];
	char *argv[] = { "meshd", "controller", "--registry", d->registry,
	                 "--destination-addr", dst, "--admin-addr", admin,
	                 NULL };

	snprintf(dst, sizeof(dst), "0.0.0.0:%d", DEMO_DST_PORT);
	snprintf(admin, sizeof(admin), "0.0.0.0:%d", DEMO_CTL_ADMIN_PORT);
	return demo_start(d, &d->ctl, DEMO_CTL_UID, d->exe_fd, argv,
	                  d->ctl.proxy_log, &d->ctl.proxy);
}

static int demo_start_proxy(struct demo *d, struct demo_pod *p)
{
	char labels[96], dst[32];
	char *argv[] = { "meshd", "proxy", "--mode", "transparent",
	                 "--destination-addr", dst,
	                 "--workload-labels", labels, NULL };

	snprintf(labels, sizeof(labels), "namespace=demo,deployment=%s,pod=%s",
	         p->svc, p->name);
	snprintf(dst, sizeof(dst), "%s:%d", d->ctl.ip, DEMO_DST_PORT);
	return demo_start(d, p, DEMO_PROXY_UID, d->exe_fd, argv, p->proxy_log,
	                  &p->proxy);
}

/* Adds to <argv> at <*n> the URL of service <svc> on <port> by name and
 * its pin to the first replica (--resolve), in <url> and <pin>. */
static void demo_app_target(struct demo *d, char **argv, int *n,
                            const char *flag, const char *svc, int port,
                            char *url, char *pin, size_t len)
{
	snprintf(url, len, "http://%s." DEMO_DOMAIN ":%d", svc, port);
	snprintf(pin, len, "%s." DEMO_DOMAIN ":%d:%s", svc, port,
	         demo_first_pod(d, svc)->ip);
	argv[(*n)++] = (char *)flag;
	argv[(*n)++] = url;
	argv[(*n)++] = "--resolve";
	argv[(*n)++] = pin;
}

static int demo_start_app(struct demo *d, struct demo_pod *p)
{
	char listen[16], grpc[16], rate[24], u1[96], u2[96], r1[96], r2[96];
	char *argv[24];
	int n = 0;

	snprintf(listen, sizeof(listen), ":%d", DEMO_HTTP_PORT);
	snprintf(grpc, sizeof(grpc), ":%d", DEMO_GRPC_PORT);
	snprintf(rate, sizeof(rate), "%llu", (unsigned long long)d->rate);
	argv[n++] = "abc-app";
	argv[n++] = (char *)p->svc;
	argv[n++] = "--listen";
	argv[n++] = listen;
	if (!strcmp(p->svc, "a")) {
		demo_app_target(d, argv, &n, "--b", "b", DEMO_HTTP_PORT, u1, r1,
		                sizeof(u1));
		demo_app_target(d, argv, &n, "--c", "c", DEMO_HTTP_PORT, u2, r2,
		                sizeof(u2));
	} else {
		argv[n++] = "--grpc-listen";
		argv[n++] = grpc;
		demo_app_target(d, argv, &n, "--peer",
		                !strcmp(p->svc, "b") ? "c" : "b",
		                DEMO_GRPC_PORT, u1, r1, sizeof(u1));
	}
	if (strcmp(p->name, p->svc) != 0) {
		argv[n++] = "--name";
		argv[n++] = (char *)p->name;
	}
	argv[n++] = "--rate";
	argv[n++] = rate;
	argv[n++] = "--report";
	argv[n++] = "0";
	argv[n] = NULL;
	return demo_start(d, p, (int)d->app_uid, d->app_fd, argv, p->app_log,
	                  &p->app);
}

/* Reaps <*pid> when it has ended: reports it with the end of <log> and
 * returns -1. */
static int demo_check_one(pid_t *pid, const char *what, const char *log)
{
	int status;

	if (!*pid || waitpid(*pid, &status, WNOHANG) != *pid)
		return 0;
	*pid = 0;
	if (WIFEXITED(status))
		demo_err("%s exited with status %d; the end of its log:", what,
		         WEXITSTATUS(status));
	else
		demo_err("%s was killed by signal %d; the end of its log:",
		         what, WTERMSIG(status));
	demo_tail(log, 10);
	return -1;
}

/* Checks that every started process still runs; reports and returns -1
 * when one has ended (it is reaped). */
static int demo_check_children(struct demo *d)
{
	struct demo_pod *p;
	char what[64];
	int i;

	if (demo_check_one(&d->ctl.proxy, "the controller",
	                   d->ctl.proxy_log) < 0)
		return -1;
	for (i = 0; i < DEMO_NPODS; i++) {
		p = &d->pods[i];
		snprintf(what, sizeof(what), "the proxy of pod %s", p->name);
		if (demo_check_one(&p->proxy, what, p->proxy_log) < 0)
			return -1;
		snprintf(what, sizeof(what), "the app of pod %s", p->name);
		if (demo_check_one(&p->app, what, p->app_log) < 0)
			return -1;
	}
	return 0;
}

/* Ends the processes the demo started: SIGTERM, then SIGKILL after
 * DEMO_STOP_GRACE_MS. Apps first, so that the proxies see them go, and
 * the controller last, so that no proxy loses it while it still works. */
static int demo_stop_children(struct demo *d)
{
	pid_t *list[DEMO_NPODS * 2 + 1], r;
	double end;
	int i, n = 0, stopped = 0, alive, status, phase, first;

	for (i = 0; i < DEMO_NPODS; i++)
		if (d->pods[i].app)
			list[n++] = &d->pods[i].app;
	for (i = 0; i < DEMO_NPODS; i++)
		if (d->pods[i].proxy)
			list[n++] = &d->pods[i].proxy;
	if (d->ctl.proxy)
		list[n++] = &d->ctl.proxy;
	/* phase 0: apps and proxies; phase 1: the controller */
	for (phase = 0, first = 0; phase < 2; phase++) {
		int last = phase == 0 && d->ctl.proxy ? n - 1 : n;

		for (i = first; i < last; i++)
			kill(*list[i], SIGTERM);
		end = demo_now() + DEMO_STOP_GRACE_MS / 1000.0;
		do {
			alive = 0;
			for (i = first; i < last; i++) {
				if (!*list[i])
					continue;
				r = waitpid(*list[i], &status, WNOHANG);
				if (r == *list[i] || (r < 0 && errno == ECHILD)) {
					*list[i] = 0;
					stopped++;
				} else {
					alive++;
				}
			}
			if (alive)
				usleep(20000);
		} while (alive && demo_now() < end);
		for (i = first; i < last; i++) {
			if (!*list[i])
				continue;
			kill(*list[i], SIGKILL);
			demo_wait(*list[i], 1000);
			*list[i] = 0;
			stopped++;
		}
		first = last;
	}
	return stopped;
}

/* Undoes everything: processes, namespaces, the scratch directory. */
static void demo_cleanup(struct demo *d)
{
	int i, procs, nss = 0;

	procs = demo_stop_children(d);
	for (i = 0; i <= DEMO_NPODS; i++) {
		struct demo_pod *p = i < DEMO_NPODS ? &d->pods[i] : &d->ctl;

		if (p->ns_made && demo_ip(d, "netns", "del", p->ns, NULL) == 0)
			nss++;
		p->ns_made = 0;
	}
	if (d->node_made && demo_ip(d, "netns", "del", d->node, NULL) == 0)
		nss++;
	d->node_made = 0;
	if (d->keep_logs && d->dir[0])
		demo_keep_dir(d);
	else
		demo_remove_dir(d);
	dprintf(1, "cleaned up: %d processes stopped, %d namespaces deleted\n",
	        procs, nss);
}

/* ---- setup --------------------------------------------------------------- */

static int demo_init_pod(struct demo *d, struct demo_pod *p)
{
	char *argv[] = { "meshd", "init", "--netns", p->ns, NULL };
	struct demo_child c = { NULL, -1, d->exe_fd, argv, -1, 0 };
	char out[DEMO_OUT_MAX];
	int rc;

	rc = demo_run(d, &c, out, sizeof(out));
	if (rc != 0) {
		demo_err("`meshd init --netns %s` failed (status %d)%s%s", p->ns,
		         rc, out[0] ? ": " : "", out);
		return -1;
	}
	return 0;
}

/* Waits until the admin server on <port> in pod <p> answers /ready with
 * 200; <what> and <log> name the process and its log in an error. */
static int demo_wait_ready(struct demo *d, struct demo_pod *p, int port,
                           const char *what, const char *log)
{
	double end = demo_now() + DEMO_READY_TIMEOUT_MS / 1000.0;
	char err[256] = "";
	struct buf body;
	int rc = -1;

	buf_init(&body, 4096);
	while (demo_now() < end) {
		if (demo_poll_signals(d, 0) || demo_check_children(d) < 0)
			break;
		rc = demo_fetch(d, p, port, "/ready", &body, err, sizeof(err));
		if (rc == 200)
			break;
		if (rc > 0)
			snprintf(err, sizeof(err), "/ready answered %d", rc);
		usleep(100000);
	}
	buf_free(&body);
	if (rc == 200)
		return 0;
	if (!d->stop && p->proxy) {
		demo_err("%s is not ready after %ds (%s); the end of its log:",
		         what, DEMO_READY_TIMEOUT_MS / 1000, err);
		demo_tail(log, 10);
	}
	return -1;
}

/* Names and addresses of pod <p> (host byte <host>). */
static void demo_name_pod(struct demo *d, struct demo_pod *p, unsigned host)
{
	p->host = host;
	snprintf(p->ns, sizeof(p->ns), DEMO_PREFIX "%d-%s", (int)d->me,
	         p->name);
	snprintf(p->ip, sizeof(p->ip), DEMO_NET "%u", host);
	snprintf(p->ip6, sizeof(p->ip6), DEMO_NET6 "%u", host);
	snprintf(p->proxy_log, sizeof(p->proxy_log), "%s/%s.proxy.log", d->dir,
	         p->name);
	snprintf(p->app_log, sizeof(p->app_log), "%s/%s.app.log", d->dir,
	         p->name);
}

static int demo_setup(struct demo *d)
{
	/* a, b, b2, c: c keeps the address it had before b2 came */
	static const unsigned hosts[DEMO_NPODS] = { 11, 12, 14, 13 };
	char what[64];
	int i;

	demo_clean_leftovers(d);
	demo_clean_old_dirs(d);
	if (demo_make_dir(d) < 0)
		return -1;
	for (i = 0; i < DEMO_NPODS; i++)
		demo_name_pod(d, &d->pods[i], hosts[i]);
	demo_name_pod(d, &d->ctl, DEMO_CTL_HOST);
	snprintf(d->ctl.proxy_log, sizeof(d->ctl.proxy_log), "%s/controller.log",
	         d->dir);
	d->ctl.app_log[0] = '\0';
	snprintf(d->registry, sizeof(d->registry), "%s/registry.yaml", d->dir);
	dprintf(1, "meshd demo: creating the controller's pod and pods a, b, b2 "
	        "and c (network namespaces " DEMO_PREFIX "%d-*)\n", (int)d->me);
	if (demo_make_node(d) < 0 || demo_make_pod(d, &d->ctl) < 0)
		return -1;
	for (i = 0; i < DEMO_NPODS && !demo_poll_signals(d, 0); i++)
		if (demo_make_pod(d, &d->pods[i]) < 0)
			return -1;
	for (i = 0; i < DEMO_NPODS && !demo_poll_signals(d, 0); i++)
		if (demo_init_pod(d, &d->pods[i]) < 0)
			return -1;
	if (d->stop || demo_write_registry(d) < 0 ||
	    demo_start_controller(d) < 0 ||
	    demo_wait_ready(d, &d->ctl, DEMO_CTL_ADMIN_PORT, "the controller",
	                    d->ctl.proxy_log) < 0)
		return -1;
	for (i = 0; i < DEMO_NPODS && !demo_poll_signals(d, 0); i++)
		if (demo_start_proxy(d, &d->pods[i]) < 0)
			return -1;
	for (i = 0; i < DEMO_NPODS && !demo_poll_signals(d, 0); i++) {
		snprintf(what, sizeof(what), "the proxy of pod %s",
		         d->pods[i].name);
		if (demo_wait_ready(d, &d->pods[i], DEMO_ADMIN_PORT, what,
		                    d->pods[i].proxy_log) < 0)
			return -1;
	}
	/* servers first: c, b2 and b before a */
	for (i = DEMO_NPODS - 1; i >= 0 && !demo_poll_signals(d, 0); i--)
		if (demo_start_app(d, &d->pods[i]) < 0)
			return -1;
	return d->stop ? -1 : 0;
}

/* ---- golden metrics --------------------------------------------------- */

/* The group-by labels of each view (enum demo_view). */
static const char *const demo_by_edge[] = { "direction", "authority" };
static const char *const demo_by_port[] = { "direction", "target_addr" };
static const char *const demo_by_ep[] = {
	"direction", "authority", "target_addr",
};
static const char *const *const demo_by[DEMO_NVIEWS] = {
	demo_by_edge, demo_by_port, demo_by_ep,
};
static const size_t demo_nby[DEMO_NVIEWS] = { 2, 2, 3 };

/* Reads the scrape <text>[<len>] of <p> into slot <slot>: every view, and
 * destination_connected (NaN when absent). Returns 0, or -1 with <err>. */
static int demo_read_scrape(struct demo_pod *p, int slot, const char *text,
                            size_t len, char *err, size_t errlen)
{
	struct prom_parser pp;
	struct prom_sample smp;
	int v, rc;

	p->connected[slot] = NAN;
	prom_init(&pp, text, len);
	while ((rc = prom_next(&pp, &smp, err, errlen)) > 0) {
		if (str_eq_cstr(smp.family, "destination_connected")) {
			p->connected[slot] = smp.value;
			continue;
		}
		for (v = 0; v < DEMO_NVIEWS; v++)
			prom_golden_sample(&p->golden[slot][v], &smp);
	}
	return rc;
}

/* Scrapes every proxy into the next slot of its pod. */
static void demo_scrape(struct demo *d)
{
	struct buf body;
	char err[256];
	int i, v, rc, slot;

	buf_init(&body, DEMO_FETCH_MAX);
	for (i = 0; i < DEMO_NPODS; i++) {
		struct demo_pod *p = &d->pods[i];

		slot = p->have[p->cur] ? !p->cur : p->cur;
		for (v = 0; v < DEMO_NVIEWS; v++)
			prom_golden_init(&p->golden[slot][v], demo_by[v],
			                 demo_nby[v], NULL, 0, p->groups[slot][v],
			                 DEMO_GROUPS);
		p->have[slot] = 0;
		rc = demo_fetch(d, p, DEMO_ADMIN_PORT, "/metrics", &body, err,
		                sizeof(err));
		if (rc != 200) {
			if (rc > 0)
				snprintf(err, sizeof(err), "/metrics answered %d", rc);
			demo_err("pod %s: %s", p->name, err);
			continue;
		}
		if (demo_read_scrape(p, slot, buf_data(&body), buf_len(&body),
		                     err, sizeof(err)) < 0) {
			demo_err("pod %s: malformed /metrics: %s", p->name, err);
			continue;
		}
		p->at[slot] = demo_now();
		p->have[slot] = 1;
		p->cur = slot;
	}
	buf_free(&body);
}

/* The pod whose address is the host part of "<ip>:<port>", or NULL; the
 * port goes to <*port>. */
static struct demo_pod *demo_pod_of(struct demo *d, struct str addr, int *port)
{
	ssize_t colon = str_rfind_char(addr, ':');
	struct str host;
	uint64_t v = 0;
	int i;

	*port = 0;
	if (colon < 0)
		return NULL;
	host = str_sub(addr, 0, (size_t)colon);
	if (str_to_u64(str_sub(addr, (size_t)colon + 1, addr.len), &v) == 0 &&
	    v <= 65535)
		*port = (int)v;
	for (i = 0; i < DEMO_NPODS; i++)
		if (str_eq_cstr(host, d->pods[i].ip))
			return &d->pods[i];
	return NULL;
}

/* The short name of the destination <addr> (an authority or a target
 * address, "host:port") into <out>: the pod whose address it is, else the
 * first label of a name ("b" for "b.demo.svc.cluster.local:8080"), else
 * the host as it is (cut). Its port goes to <*port> (0 when none). */
static void demo_dest_name(struct demo *d, struct str addr, char *out,
                           size_t len, int *port)
{
	struct demo_pod *pod = demo_pod_of(d, addr, port);
	ssize_t colon, dot;
	struct str host = addr;

	if (pod) {
		snprintf(out, len, "%s", pod->name);
		return;
	}
	colon = str_rfind_char(addr, ':');
	if (colon >= 0 && addr.p[addr.len - 1] != ']')
		host = str_sub(addr, 0, (size_t)colon);
	dot = str_find_char(host, '.');
	if (dot > 0 && !(host.p[0] >= '0' && host.p[0] <= '9'))
		host = str_sub(host, 0, (size_t)dot);
	if (!host.len)
		host = str_from_cstr("?");
	snprintf(out, len, "%.*s", (int)(host.len > 24 ? 24 : host.len),
	         host.p);
}

static void demo_fmt_ms(char *out, size_t len, double v)
{
	if (isnan(v) || isinf(v))
		snprintf(out, len, "-");
	else if (v < 10)
		snprintf(out, len, "%.2fms", v);
	else
		snprintf(out, len, "%.0fms", v);
}

/* Orders groups by direction (outbound first), then their second label
 * (authority or target address). */
static int demo_group_cmp(const void *a, const void *b)
{
	const struct prom_group *x = *(const struct prom_group *const *)a;
	const struct prom_group *y = *(const struct prom_group *const *)b;
	int ox = str_eq_cstr(prom_group_label(x, 0), "outbound");
	int oy = str_eq_cstr(prom_group_label(y, 0), "outbound");
	struct str tx = prom_group_label(x, 1), ty = prom_group_label(y, 1);
	size_t n = tx.len < ty.len ? tx.len : ty.len;
	int c;

	if (ox != oy)
		return oy - ox;
	c = n ? memcmp(tx.p, ty.p, n) : 0;
	return c ? c : (tx.len > ty.len) - (tx.len < ty.len);
}

/* The figures of group <g> of view <v> of <p> over the last window (a
 * series born after the previous scrape started from zero within it), or
 * its lifetime figures when there is no previous scrape. */
static void demo_stats(const struct demo_pod *p, int v,
                       const struct prom_group *g, struct prom_stats *st)
{
	static const struct prom_group zero;
	const struct prom_golden *prev = p->have[!p->cur] ?
	                                 &p->golden[!p->cur][v] : NULL;
	const struct prom_group *pg = prev ? prom_golden_match(prev, g) : NULL;

	if (prev && !pg)
		pg = &zero;
	prom_group_stats(g, pg, pg ? p->at[p->cur] - p->at[!p->cur] : 0, st);
}

struct demo_ep {
	char name[32];
	double requests;
};

static int demo_ep_cmp(const void *a, const void *b)
{
	return strcmp(((const struct demo_ep *)a)->name,
	              ((const struct demo_ep *)b)->name);
}

/* The endpoints that got requests of the outbound row <row> (view
 * DEMO_V_EDGE) of <p> in the window, each with its share of them, into
 * <out>: "b 51% b2 49%". */
static void demo_endpoints(struct demo *d, const struct demo_pod *p,
                           const struct prom_group *row, char *out,
                           size_t len)
{
	const struct prom_golden *cur = &p->golden[p->cur][DEMO_V_EP];
	struct str auth = prom_group_label(row, 1);
	struct demo_ep eps[DEMO_MAX_EPS];
	const struct prom_group *g;
	struct prom_stats st;
	size_t i, n = 0, off = 0;
	double total = 0;
	int port, w;

	out[0] = '\0';
	for (i = 0; i < cur->n && n < DEMO_MAX_EPS; i++) {
		g = &cur->groups[i];
		if (!str_eq_cstr(prom_group_label(g, 0), "outbound") ||
		    !str_eq(prom_group_label(g, 1), auth))
			continue;
		demo_stats(p, DEMO_V_EP, g, &st);
		if (!(st.requests > 0))
			continue;
		demo_dest_name(d, prom_group_label(g, 2), eps[n].name,
		               sizeof(eps[n].name), &port);
		eps[n].requests = st.requests;
		total += st.requests;
		n++;
	}
	qsort(eps, n, sizeof(eps[0]), demo_ep_cmp);
	for (i = 0; i < n; i++) {
		w = snprintf(out + off, len - off, "%s%s %.0f%%", i ? " " : "",
		             eps[i].name, eps[i].requests * 100 / total);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
}

/* One row per outbound service and per inbound port of one pod, outbound
 * first. */
static void demo_rows(struct demo *d, struct demo_pod *p, struct buf *out)
{
	const struct prom_group *g, *order[DEMO_GROUPS];
	const struct prom_golden *gold;
	struct prom_stats st;
	char edge[64], dest[32], sr[16], rps[16], p50[16], p95[16], p99[16];
	char eps[160];
	const char *proto;
	int pass, view, port;
	size_t i, n;

	for (pass = 0; pass < 2; pass++) {
		view = pass == 0 ? DEMO_V_EDGE : DEMO_V_PORT;
		gold = &p->golden[p->cur][view];
		for (i = 0, n = 0; i < gold->n; i++)
			if (str_eq_cstr(prom_group_label(&gold->groups[i], 0),
			                "outbound") == (pass == 0))
				order[n++] = &gold->groups[i];
		qsort(order, n, sizeof(order[0]), demo_group_cmp);
		for (i = 0; i < n; i++) {
			g = order[i];
			demo_stats(p, view, g, &st);
			demo_dest_name(d, prom_group_label(g, 1), dest,
			               sizeof(dest), &port);
			proto = port == DEMO_GRPC_PORT ? "grpc" :
			        port == DEMO_HTTP_PORT ? "http/1.1" : "-";
			eps[0] = '\0';
			if (pass == 0) {
				snprintf(edge, sizeof(edge), "%s -> %s", p->name,
				         dest);
				demo_endpoints(d, p, g, eps, sizeof(eps));
			} else {
				snprintf(edge, sizeof(edge), "* -> %s", p->name);
			}
			if (isnan(st.success_rate))
				snprintf(sr, sizeof(sr), "-");
			else
				snprintf(sr, sizeof(sr), "%.2f%%",
				         st.success_rate * 100);
			if (isnan(st.rps))
				snprintf(rps, sizeof(rps), "-");
			else
				snprintf(rps, sizeof(rps), "%.1f", st.rps);
			demo_fmt_ms(p50, sizeof(p50), st.p50);
			demo_fmt_ms(p95, sizeof(p95), st.p95);
			demo_fmt_ms(p99, sizeof(p99), st.p99);
			buf_printf(out, "%-4s %-9s %-10s %-9s %8s %7s %8s %8s %8s"
			           "%s%s\n", p->name,
			           pass == 0 ? "outbound" : "inbound", edge, proto,
			           sr, rps, p50, p95, p99, eps[0] ? "  " : "", eps);
		}
	}
}

static void demo_table(struct demo *d)
{
	struct buf out;
	int i, up = 0;

	for (i = 0; i < DEMO_NPODS; i++)
		if (d->pods[i].have[d->pods[i].cur] &&
		    d->pods[i].connected[d->pods[i].cur] == 1)
			up++;
	buf_init(&out, 64 * 1024);
	buf_printf(&out, "\n--- t=%.0fs: each proxy's golden metrics over the "
	           "last %.1fs ---\n", demo_now() - d->t0,
	           (double)d->interval_ms / 1000);
	buf_printf(&out, "controller %s:%d: %d of %d proxies connected\n",
	           d->ctl.ip, DEMO_DST_PORT, up, DEMO_NPODS);
	buf_printf(&out, "%-4s %-9s %-10s %-9s %8s %7s %8s %8s %8s  %s\n",
	           "POD", "DIRECTION", "EDGE", "PROTOCOL", "SUCCESS", "RPS",
	           "P50", "P95", "P99", "ENDPOINTS");
	for (i = 0; i < DEMO_NPODS; i++) {
		if (!d->pods[i].have[d->pods[i].cur]) {
			buf_printf(&out, "%-4s (no metrics)\n", d->pods[i].name);
			continue;
		}
		demo_rows(d, &d->pods[i], &out);
	}
	if (write(1, buf_data(&out), buf_len(&out)) < 0)
		d->stop = 1; /* nobody reads us any more */
	buf_free(&out);
}

/* ---- main ------------------------------------------------------------- */

/* The app binary: --app, else next to meshd (../build/examples/abc-app
 * from the directory of the binary, or examples/abc-app beside it). */
static int demo_open_app(struct demo *d, char *path, size_t len)
{
	char self[512], *slash;
	ssize_t n;
	int i, fd;
	static const char *const rel[] = {
		"/../build/examples/abc-app", "/examples/abc-app",
	};

	if (d->app && *d->app) {
		snprintf(path, len, "%s", d->app);
		return open(path, O_PATH | O_CLOEXEC);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	for (i = 0; i < 2; i++) {
		if (snprintf(path, len, "%s%s", self, rel[i]) >= (int)len)
			continue;
		fd = open(path, O_PATH | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	if (snprintf(path, len, "%s%s", self, rel[0]) >= (int)len)
		errno = ENAMETOOLONG;
	return -1;
}

/* The children's environment: ours without MESHD_* (they configure the
 * demo, and would otherwise leak into the proxies' and init's flags). */
static char **demo_env(void)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = mem_calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (n = 0; environ[n]; n++)
		if (strncmp(environ[n], "MESHD_", 6) != 0)
			env[k++] = environ[n];
	env[k] = NULL;
	return env;
}

static int demo_alloc_groups(struct demo *d)
{
	int i, k, v;

	for (i = 0; i < DEMO_NPODS; i++)
		for (k = 0; k < 2; k++)
			for (v = 0; v < DEMO_NVIEWS; v++) {
				d->pods[i].groups[k][v] =
					mem_calloc(DEMO_GROUPS,
					           sizeof(struct prom_group));
				if (!d->pods[i].groups[k][v])
					return -1;
			}
	return 0;
}

static void demo_free(struct demo *d)
{
	int i, k, v;

	for (i = 0; i < DEMO_NPODS; i++)
		for (k = 0; k < 2; k++)
			for (v = 0; v < DEMO_NVIEWS; v++)
				MEM_FREE(&d->pods[i].groups[k][v]);
	MEM_FREE(&d->env);
	if (d->exe_fd >= 0)
		close(d->exe_fd);
	if (d->app_fd >= 0)
		close(d->app_fd);
}

int demo_main(int argc, char **argv)
{
	static struct demo demo;
	struct demo *d = &demo;
	const struct opt opts[] = {
		{ "app", OPT_STR, &d->app, "PATH",
		  "abc-app binary (default: build/examples/abc-app beside meshd)" },
		{ "interval", OPT_MS, &d->interval_ms, "DURATION",
		  "time between two tables" },
		{ "duration", OPT_MS, &d->duration_ms, "DURATION",
		  "stop after this long (0: run until Ctrl-C)" },
		{ "rate", OPT_U64, &d->rate, "N",
		  "calls per second from each app to each of its targets" },
		{ "app-uid", OPT_U64, &d->app_uid, "UID",
		  "user id the apps run as (never the proxy's 2102)" },
		{ "keep-logs", OPT_BOOL, &d->keep_logs, NULL,
		  "keep the logs and the registry file (their directory is "
		  "printed)" },
	};
	const struct opt_cmd cmd = {
		"demo", NULL,
		"Run the A/B/C sample app in network-namespace pods, meshed, with "
		"meshd controller and two replicas of B, and show each proxy's "
		"golden metrics.",
		opts, sizeof(opts) / sizeof(opts[0]),
	};
	char app_path[512];
	double next, end;
	int rc, i, status = 0;

	memset(d, 0, sizeof(*d));
	d->exe_fd = d->app_fd = -1;
	d->interval_ms = 5000;
	d->rate = 10;
	d->app_uid = 1000;
	d->pods[0].name = d->pods[0].svc = "a";
	d->pods[1].name = d->pods[1].svc = "b";
	d->pods[2].name = "b2";
	d->pods[2].svc = "b";
	d->pods[3].name = d->pods[3].svc = "c";
	d->ctl.name = d->ctl.svc = "controller";
	rc = opt_parse_or_usage(&cmd, argc, argv);
	if (rc < 0)
		return rc == -2 ? 0 : 2;
	if (rc < argc) {
		dprintf(2, "meshd demo: unexpected argument \"%s\"\n", argv[rc]);
		opt_usage(&cmd, 2);
		return 2;
	}
	if (d->interval_ms < 500 || d->app_uid == DEMO_PROXY_UID ||
	    d->app_uid == 0 || d->app_uid > 65534 || d->rate > 1000) {
		demo_err("--interval must be at least 500ms, --rate at most 1000, "
		         "--app-uid neither 0 nor %d", DEMO_PROXY_UID);
		return 2;
	}
	if (geteuid() != 0) {
		demo_err("must run as root: it creates network namespaces, veth "
		         "pairs and redirect rules (try: sudo meshd demo)");
		return 1;
	}
	if (!demo_have_tool("ip")) {
		demo_err("`ip` not found in PATH (install iproute2)");
		return 1;
	}
	if (!demo_have_tool("iptables") && !demo_have_tool("iptables-nft")) {
		demo_err("`iptables` not found in PATH (install iptables): meshd "
		         "init needs it for the redirect rules");
		return 1;
	}
	d->exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	d->app_fd = demo_open_app(d, app_path, sizeof(app_path));
	if (d->exe_fd < 0) {
		demo_err("cannot open /proc/self/exe: %s", strerror(errno));
		demo_free(d);
		return 1;
	}
	if (d->app_fd < 0) {
		demo_err("the sample app %s cannot be opened: %s (build it with "
		         "`make -C examples`, or give --app or MESHD_APP)",
		         app_path, strerror(errno));
		demo_free(d);
		return 1;
	}
	d->env = demo_env();
	if (!d->env || demo_alloc_groups(d) < 0) {
		demo_err("out of memory");
		demo_free(d);
		return 1;
	}
	d->me = getpid();
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGINT);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGHUP);
	sigaddset(&d->sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &d->sigs, &d->oldmask);
	signal(SIGPIPE, SIG_IGN);

	d->t0 = demo_now();
	if (demo_setup(d) < 0) {
		if (d->stop)
			dprintf(1, "meshd demo: interrupted during setup\n");
		status = d->stop ? 0 : 1;
		goto out;
	}
	dprintf(1, "meshd demo: pods running, meshed (meshd proxy as uid %d, "
	        "apps as uid %llu), the apps calling each other by name:\n",
	        DEMO_PROXY_UID, (unsigned long long)d->app_uid);
	dprintf(1, "  controller  %-12s meshd controller as uid %d, not meshed: "
	        "Destination API on :%d\n", d->ctl.ip, DEMO_CTL_UID,
	        DEMO_DST_PORT);
	for (i = 0; i < DEMO_NPODS; i++) {
		struct demo_pod *p = &d->pods[i];
		char app[32];

		snprintf(app, sizeof(app), "%s%s%s", p->svc,
		         strcmp(p->name, p->svc) ? " --name " : "",
		         strcmp(p->name, p->svc) ? p->name : "");
		dprintf(1, "  pod %-7s %-12s abc-app %-12s %s\n", p->name, p->ip,
		        app, !strcmp(p->svc, "a") ?
		        "HTTP/1.1 to {b,c}." DEMO_DOMAIN ":8080" :
		        !strcmp(p->svc, "b") ?
		        "gRPC to c." DEMO_DOMAIN ":8081" :
		        "gRPC to b." DEMO_DOMAIN ":8081");
	}
	dprintf(1, "%s\n", d->duration_ms ? "" : "Press Ctrl-C to stop.");
	demo_scrape(d);
	d->t0 = demo_now();
	next = d->t0 + (double)d->interval_ms / 1000;
	end = d->duration_ms ? d->t0 + (double)d->duration_ms / 1000 : 0;
	while (!d->stop) {
		double now = demo_now(), wake = next;

		if (end && end < wake)
			wake = end;
		if (now < wake) {
			demo_poll_signals(d, (int)((wake - now) * 1000) + 1);
			if (demo_check_children(d) < 0) {
				status = 1;
				break;
			}
			continue;
		}
		if (now >= next) {
			demo_scrape(d);
			demo_table(d);
			next += (double)d->interval_ms / 1000;
			if (next < now)
				next = now + (double)d->interval_ms / 1000;
		}
		if (end && demo_now() >= end)
			break;
	}
	if (d->stop)
		dprintf(1, "\nmeshd demo: %s, stopping\n", strsignal(d->stop_sig));
out:
	demo_cleanup(d);
	sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
	demo_free(d);
	return status;
}
