/*
 * loop: libev glue (deferred work, timeouts, signals, cached clock).
 *
 * IMPLEMENTATION NOTES
 * Deferred work. The queue is a singly linked FIFO (defer_head/defer_last).
 * A drain detaches the whole queue as one round (run_head) and runs it item
 * by item; work queued meanwhile goes to the fresh queue and forms the next
 * round, up to LOOP_DEFER_ROUNDS rounds. loop_defer_cancel searches both the
 * queue and the rest of the running round, so an object destroyed by an
 * earlier item of the same round is never touched again.
 *
 * Two watchers carry the queue, both active only while it is non-empty:
 *  - the ev_prepare watcher drains it: libev runs prepare watchers after all
 *    callbacks of an iteration and before it computes how long to sleep;
 *  - the ev_idle watcher has an empty callback. While an idle watcher is
 *    active libev polls with a zero timeout, so work left by the round bound,
 *    or queued from another module's prepare watcher that ran after ours,
 *    waits at most one non-sleeping iteration instead of the next event.
 * Both are stopped as soon as a drain empties the queue, so an idle process
 * sleeps, and an empty queue does not keep loop_run from returning.
 *
 * Clock. ev_now() is the time libev took when the iteration began, and
 * libev schedules timers from it, so loop_now_ms derives from it too:
 * deadlines computed from loop_now_ms agree with when timers fire. But
 * ev_now() is wall-clock based and jumps when the system clock is stepped
 * (libev's timers run on its own monotonic clock and do not care). So
 * loop_now_ms adds an offset that puts ev_now() on the CLOCK_MONOTONIC scale,
 * checks it against CLOCK_MONOTONIC once per iteration, and takes a new
 * offset when they disagree: when ev_now() claims a time later than now, or
 * more than LOOP_CLOCK_STEP_MS earlier (libev's own jump threshold is 1 s).
 * An iteration whose callbacks ran that long also triggers a resync, which
 * only moves the clock forward by that lag, and later iterations correct it.
 * Steps below the threshold go unnoticed, the result is clamped so it never
 * goes back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "core/util.h"

#define LOOP_CLOCK_STEP_MS 1000

static const int loop_shutdown_signals[LOOP_NSIGS] = {
	SIGTERM, SIGINT, SIGHUP
};

static void loop_prepare_cb(struct ev_loop *ev, ev_prepare *w, int revents)
{
	struct loop *loop = container_of(w, struct loop, prepare);

	(void)ev;
	(void)revents;
	loop_defer_run(loop);
}

static void loop_idle_cb(struct ev_loop *ev, ev_idle *w, int revents)
{
	/* Its being active is the point: see IMPLEMENTATION NOTES. */
	(void)ev;
	(void)w;
	(void)revents;
}

int loop_init(struct loop *loop, char *err, size_t errlen)
{
	struct sigaction sa;
	unsigned int flags = EVFLAG_NOENV;
	int e = 0;

	memset(loop, 0, sizeof(*loop));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0) {
		e = errno;
		snprintf(err, errlen, "ignore SIGPIPE: %s", strerror(e));
		return -1;
	}

	if (ev_supported_backends() & EVBACKEND_EPOLL) {
		errno = 0;
		loop->ev = ev_loop_new(flags | EVBACKEND_EPOLL);
		e = errno;
	}
	if (!loop->ev)
		loop->ev = ev_loop_new(flags | EVFLAG_AUTO);
	if (!loop->ev) {
		if (!e)
			e = errno;
		snprintf(err, errlen, "cannot create the event loop: %s",
		         e ? strerror(e) : "no usable backend");
		return -1;
	}

	ev_prepare_init(&loop->prepare, loop_prepare_cb);
	ev_idle_init(&loop->idle, loop_idle_cb);
	return 0;
}

void loop_destroy(struct loop *loop)
{
	struct loop_defer *d;
	size_t i;

	if (!loop->ev)
		return;
	loop_defer_run(loop);
	while ((d = loop->defer_head)) {
		loop->defer_head = d->next;
		d->next = NULL;
		d->queued = 0;
	}
	loop->defer_last = NULL;
	for (i = 0; i < ARRAY_SIZE(loop->sigs); i++)
		loop_signal_stop(loop, &loop->sigs[i]);
	ev_prepare_stop(loop->ev, &loop->prepare);
	ev_idle_stop(loop->ev, &loop->idle);
	ev_loop_destroy(loop->ev);
	loop->ev = NULL;
}

void loop_run(struct loop *loop)
{
	ev_run(loop->ev, 0);
	loop_defer_run(loop);
}

void loop_stop(struct loop *loop)
{
	ev_break(loop->ev, EVBREAK_ALL);
}

void loop_defer_init(struct loop_defer *d, void (*fn)(void *arg), void *arg)
{
	d->fn = fn;
	d->arg = arg;
	d->next = NULL;
	d->queued = 0;
}

void loop_defer(struct loop *loop, struct loop_defer *d)
{
	if (d->queued)
		return;
	d->queued = 1;
	d->next = NULL;
	if (loop->defer_last)
		loop->defer_last->next = d;
	else
		loop->defer_head = d;
	loop->defer_last = d;
	if (!ev_is_active(&loop->prepare))
		ev_prepare_start(loop->ev, &loop->prepare);
	if (!ev_is_active(&loop->idle))
		ev_idle_start(loop->ev, &loop->idle);
}

/* Unlinks <d> from the list at *<head>; returns the new last element when
 * <d> was the last one, via *<last> (pass NULL to skip that). 1 if found. */
static int loop_defer_unlink(struct loop_defer **head, struct loop_defer **last,
                             struct loop_defer *d)
{
	struct loop_defer **pp, *prev = NULL;

	for (pp = head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != d)
			continue;
		*pp = d->next;
		if (last && *last == d)
			*last = prev;
		return 1;
	}
	return 0;
}

void loop_defer_cancel(struct loop *loop, struct loop_defer *d)
{
	if (!d->queued)
		return;
	if (!loop_defer_unlink(&loop->defer_head, &loop->defer_last, d))
		loop_defer_unlink(&loop->run_head, NULL, d);
	d->next = NULL;
	d->queued = 0;
}

unsigned loop_defer_run(struct loop *loop)
{
	struct loop_defer *d;
	unsigned ran = 0;
	int round;

	if (loop->draining)
		return 0;
	loop->draining = 1;
	for (round = 0; round < LOOP_DEFER_ROUNDS && loop->defer_head; round++) {
		loop->run_head = loop->defer_head;
		loop->defer_head = loop->defer_last = NULL;
		while ((d = loop->run_head)) {
			loop->run_head = d->next;
			d->next = NULL;
			d->queued = 0;
			ran++;
			d->fn(d->arg);
		}
	}
	loop->draining = 0;
	if (!loop->defer_head && loop->ev) {
		ev_prepare_stop(loop->ev, &loop->prepare);
		ev_idle_stop(loop->ev, &loop->idle);
	}
	return ran;
}

static void loop_timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct loop_timer *t = container_of(w, struct loop_timer, w);

	(void)revents;
	/* ev_timer_again timers repeat; ours are one-shot. */
	ev_timer_stop(ev, w);
	t->cb(t->loop, t);
}

void loop_timer_init(struct loop_timer *t,
                     void (*cb)(struct loop *loop, struct loop_timer *t))
{
	ev_init(&t->w, loop_timer_cb);
	t->w.repeat = 0.;
	t->loop = NULL;
	t->cb = cb;
}

void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t ms)
{
	t->loop = loop;
	/* repeat == 0 would make ev_timer_again stop the timer. */
	t->w.repeat = ms ? (ev_tstamp)ms / 1000. : 1e-6;
	ev_timer_again(loop->ev, &t->w);
}

void loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
	if (ev_is_active(&t->w) || ev_is_pending(&t->w))
		ev_timer_stop(loop->ev, &t->w);
}

static int64_t loop_mono_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Maps ev_now() onto the CLOCK_MONOTONIC scale; see IMPLEMENTATION NOTES.
 * <resync> forces a new offset (right after ev_now_update). */
static void loop_clock_sample(struct loop *loop, int resync)
{
	ev_tstamp stamp = ev_now(loop->ev);
	int64_t ev_ms = (int64_t)(stamp * 1000.);
	int64_t mono = loop_mono_ms();
	int64_t v = ev_ms + loop->now_off;

	/* 1 ms of slack: both sides are truncated to whole ms. */
	if (resync || !loop->now_synced || v > mono + 1 ||
	    v + LOOP_CLOCK_STEP_MS < mono) {
		loop->now_off = mono - ev_ms;
		loop->now_synced = 1;
		v = mono;
	}
	loop->now_stamp = stamp;
	if (v > (int64_t)loop->now_ms)
		loop->now_ms = (uint64_t)v;
}

uint64_t loop_now_ms(struct loop *loop)
{
	if (!loop->now_synced || ev_now(loop->ev) != loop->now_stamp)
		loop_clock_sample(loop, 0);
	return loop->now_ms;
}

void loop_now_update(struct loop *loop)
{
	ev_now_update(loop->ev);
	loop_clock_sample(loop, 1);
}

static void loop_signal_cb(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct loop_signal *s = container_of(w, struct loop_signal, w);

	(void)ev;
	(void)revents;
	s->cb(s->loop, w->signum, s->arg);
}

void loop_signal_init(struct loop_signal *s, int signum,
                      void (*cb)(struct loop *loop, int signum, void *arg),
                      void *arg)
{
	ev_signal_init(&s->w, loop_signal_cb, signum);
	s->loop = NULL;
	s->cb = cb;
	s->arg = arg;
}

int loop_signal_start(struct loop *loop, struct loop_signal *s)
{
	if (s->w.signum <= 0 || s->w.signum >= NSIG)
		return -EINVAL;
	s->loop = loop;
	ev_signal_start(loop->ev, &s->w);
	return 0;
}

void loop_signal_stop(struct loop *loop, struct loop_signal *s)
{
	if (ev_is_active(&s->w) || ev_is_pending(&s->w))
		ev_signal_stop(loop->ev, &s->w);
}

int loop_signals_watch(struct loop *loop,
                       void (*cb)(struct loop *loop, int signum, void *arg),
                       void *arg)
{
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(loop->sigs); i++) {
		loop_signal_stop(loop, &loop->sigs[i]);
		loop_signal_init(&loop->sigs[i], loop_shutdown_signals[i],
		                 cb, arg);
		rc = loop_signal_start(loop, &loop->sigs[i]);
		if (rc < 0) {
			while (i-- > 0)
				loop_signal_stop(loop, &loop->sigs[i]);
			return rc;
		}
	}
	return 0;
}
