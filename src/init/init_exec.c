/*
 * init_exec: runs the firewall tools for `meshd init`.
 *
 * fork + execvp with an argv array (never a shell, so nothing the operator
 * typed is ever interpreted), the rule text written to the child's stdin,
 * stdout and stderr captured, everything multiplexed with poll() so that a
 * tool writing a large dump while we are still writing its input cannot
 * deadlock us, and a deadline after which the child is killed.
 *
 * "Not installed" is told apart from "failed" through a close-on-exec pipe:
 * the child writes execvp's errno into it; a successful exec closes it
 * empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init/init.h"

static long long init_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void init_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child: wire the pipes to 0, 1, 2 and exec. Never returns. */
static void init_child(const char *const argv[], int in, int out, int errfd,
                       int report)
{
	int e;

	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) {
		e = errno;
		(void)!write(report, &e, sizeof(e));
		_exit(127);
	}
	if (in > 2)
		close(in);
	if (out > 2 && out != in)
		close(out);
	if (errfd > 2 && errfd != in && errfd != out)
		close(errfd);
	execvp(argv[0], (char *const *)argv);
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

/* Reads what is available on *<fd> into <b> (dropped when <b> is NULL);
 * closes *<fd> at EOF. When <b> fills up (one byte is kept free for a NUL),
 * sets *<overflow>, keeps what fits if <truncate>, and drops the rest (the
 * child must still be drained). */
static void init_drain(int *fd, struct buf *b, int truncate, int *overflow)
{
	char tmp[4096];
	ssize_t n = read(*fd, tmp, sizeof(tmp));

	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			init_close(fd);
		return;
	}
	if (n == 0) {
		init_close(fd);
		return;
	}
	if (!b || *overflow)
		return;
	if (buf_room(b) <= (size_t)n || buf_append(b, tmp, (size_t)n) < 0) {
		/* keep one byte free so that buf_cstr still works */
		if (truncate && buf_room(b) > 1)
			(void)buf_append(b, tmp, buf_room(b) - 1);
		*overflow = 1;
	}
}

int init_exec(const char *const argv[], const char *in, size_t inlen,
              struct buf *out, struct buf *errout, int timeout_ms)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int prep[2] = { -1, -1 };
	int rc = 0, status, e = 0, out_over = 0, err_over = 0;
	long long deadline = init_now_ms() + timeout_ms;
	size_t off = 0;
	ssize_t n;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
	    pipe2(perr, O_CLOEXEC) < 0 || pipe2(prep, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		init_child(argv, pin[0], pout[1], perr[1], prep[1]);
	init_close(&pin[0]);
	init_close(&pout[1]);
	init_close(&perr[1]);
	init_close(&prep[1]);
	do
		n = read(prep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		/* exec failed: reap the child, report why */
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		rc = -e;
		goto out;
	}
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (!in || inlen == 0)
		init_close(&pin[1]);
	while (pin[1] >= 0 || pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd pfd[3];
		int np = 0, left = (int)(deadline - init_now_ms());

		if (left <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			rc = -ETIMEDOUT;
			goto out;
		}
		if (pin[1] >= 0)
			pfd[np++] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
		if (pout[0] >= 0)
			pfd[np++] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
		if (perr[0] >= 0)
			pfd[np++] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
		if (poll(pfd, (nfds_t)np, left) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			goto out;
		}
		while (np--) {
			if (!pfd[np].revents)
				continue;
			if (pfd[np].fd == pin[1]) {
				n = write(pin[1], in + off, inlen - off);
				if (n > 0)
					off += (size_t)n;
				if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
				    off == inlen)
					init_close(&pin[1]); /* EOF, or EPIPE */
			} else if (pfd[np].fd == pout[0]) {
				init_drain(&pout[0], out, 0, &out_over);
			} else {
				init_drain(&perr[0], errout, 1, &err_over);
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			goto out;
		}
	}
	if (out_over)
		rc = -E2BIG;
	else if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else
		rc = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
	init_close(&pin[0]);
	init_close(&pin[1]);
	init_close(&pout[0]);
	init_close(&pout[1]);
	init_close(&perr[0]);
	init_close(&perr[1]);
	init_close(&prep[0]);
	init_close(&prep[1]);
	return rc;
}
