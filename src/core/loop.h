/*
 * loop: meshd's thin layer over one libev loop per process.
 *
 * What it adds to libev:
 *  - deferred work (struct loop_defer), so that no object is ever freed
 *    inside its own callback: a callback marks its object closing and queues
 *    the free; the free runs from an ev_prepare watcher once the current
 *    batch of callbacks has returned and before the loop sleeps again;
 *  - one-shot per-object timeouts with ev_timer_again semantics
 *    (struct loop_timer), cheap to re-arm on every bit of activity;
 *  - signal watchers (struct loop_signal) and a helper for the shutdown
 *    signals SIGTERM, SIGINT and SIGHUP;
 *  - a monotonic millisecond clock cached per loop iteration.
 *
 * Contracts:
 *  - Nothing here allocates. Watchers and defer items are embedded in the
 *    caller's objects and MUST stay at a fixed address while armed/queued.
 *  - A struct loop MUST NOT be copied or moved after loop_init.
 *  - libev reaches only through loop->ev, passed explicitly: nothing relies
 *    on EV_MULTIPLICITY being on or off.
 *  - Single-threaded: every function MUST be called from the thread that
 *    runs the loop.
 *  - Stopping a timer or signal watcher, or cancelling a defer item, that is
 *    not armed is a no-op, also on a zeroed struct, so destructors can run
 *    on half-initialized objects.
 */
#ifndef MESHD_CORE_LOOP_H
#define MESHD_CORE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct loop;

/*
 * Deferred work item, embedded in the object it works on. Set <fn> and
 * <arg> with loop_defer_init; the other fields belong to the loop.
 */
struct loop_defer {
	void (*fn)(void *arg);      /* rw: while not queued */
	void *arg;                  /* rw: while not queued */
	struct loop_defer *next;    /* private: queue link */
	int queued;                 /* ro: 1 from loop_defer until fn is called */
};

/*
 * A single drain runs at most LOOP_DEFER_ROUNDS rounds. A round runs every
 * item that was queued when the round began; work queued by a round runs in
 * the next round of the same drain. So an item that re-queues itself runs at
 * most LOOP_DEFER_ROUNDS times per loop iteration; what is still queued after
 * the last round waits for the next iteration, and the loop polls without
 * sleeping meanwhile, so I/O and timers keep running and nothing starves.
 */
#define LOOP_DEFER_ROUNDS 8

/* One-shot timeout. Recover the owner with container_of(t, ...). */
struct loop_timer {
	ev_timer w;                 /* private */
	struct loop *loop;          /* private: set by loop_timer_arm */
	void (*cb)(struct loop *loop, struct loop_timer *t); /* ro */
};

/* Signal watcher. */
struct loop_signal {
	ev_signal w;                /* private */
	struct loop *loop;          /* private: set by loop_signal_start */
	void (*cb)(struct loop *loop, int signum, void *arg); /* ro */
	void *arg;                  /* ro */
};

/* Number of shutdown signals loop_signals_watch covers. */
#define LOOP_NSIGS 3

struct loop {
	struct ev_loop *ev;         /* ro: the libev loop, for ev_io users */
	ev_prepare prepare;         /* private: drains deferred work */
	ev_idle idle;               /* private: no sleeping while work waits */
	struct loop_defer *defer_head; /* private: queued, not yet draining */
	struct loop_defer *defer_last; /* private: last of that queue */
	struct loop_defer *run_head;   /* private: rest of the running round */
	int draining;               /* private: a drain is on the stack */
	ev_tstamp now_stamp;        /* private: ev_now() behind now_ms */
	int64_t now_off;            /* private: ms from ev_now() to monotonic */
	int now_synced;             /* private: now_off is set */
	uint64_t now_ms;            /* private: cached loop_now_ms() */
	struct loop_signal sigs[LOOP_NSIGS]; /* private: loop_signals_watch */
};

/*
 * Creates the event loop, with the epoll backend when the kernel and libev
 * offer it (any backend libev picks otherwise), and ignores SIGPIPE
 * process-wide so that writes to a closed peer fail with EPIPE instead of
 * killing the process.
 * Returns 0, or -1 with a reason in <err>. On failure <loop> needs no
 * loop_destroy (calling it is harmless).
 */
int loop_init(struct loop *loop, char *err, size_t errlen);

/*
 * Runs the deferred work still queued (one bounded drain; what remains after
 * it is dropped without being called), stops the watchers this module owns
 * and frees the libev loop. Watchers started by callers MUST be stopped
 * before. Accepts a zeroed or already destroyed loop.
 */
void loop_destroy(struct loop *loop);

/*
 * Runs the loop until loop_stop is called or no watcher is active any more
 * (queued deferred work counts as active), then drains deferred work once
 * more so that frees queued during the last iteration are not lost.
 */
void loop_run(struct loop *loop);

/* Makes loop_run return after the current iteration. */
void loop_stop(struct loop *loop);

/* Sets the function a defer item calls. <d> MUST NOT be queued. */
void loop_defer_init(struct loop_defer *d, void (*fn)(void *arg), void *arg);

/*
 * Queues <d> to run after the callbacks of the current iteration. Queuing an
 * item that is already queued does nothing (it runs once). When <fn> runs,
 * <d> is already unlinked and marked not queued, so <fn> may free the
 * memory holding <d> or queue <d> again.
 */
void loop_defer(struct loop *loop, struct loop_defer *d);

/*
 * Unqueues <d> without running it (O(queue length); meant for destructors
 * that run before the deferred work did). No-op when <d> is not queued.
 */
void loop_defer_cancel(struct loop *loop, struct loop_defer *d);

/*
 * Drains the queue now (one bounded drain, see LOOP_DEFER_ROUNDS). The
 * prepare watcher calls this every iteration; shutdown paths and tests may
 * call it directly. Returns the number of items run; 0 when called from
 * inside a drain (drains do not nest).
 */
unsigned loop_defer_run(struct loop *loop);

/* Sets the timer's callback. <t> MUST NOT be armed. */
void loop_timer_init(struct loop_timer *t,
                     void (*cb)(struct loop *loop, struct loop_timer *t));

/*
 * (Re)arms <t> to fire once, <ms> milliseconds after the loop's cached time
 * (the start of the current iteration; see loop_now_update). Re-arming an
 * armed timer moves its deadline: this is cheap (ev_timer_again) and meant
 * to be called on every bit of activity. <ms> == 0 fires on the next
 * iteration. The callback runs with <t> already stopped; it may re-arm it.
 */
void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t ms);

/* Disarms <t>. No-op when it is not armed. */
void loop_timer_stop(struct loop *loop, struct loop_timer *t);

/* 1 when <t> is armed. */
static inline int loop_timer_armed(const struct loop_timer *t)
{
	return ev_is_active(&t->w);
}

/*
 * The loop's time in milliseconds on the CLOCK_MONOTONIC scale: ev_now()
 * (when the current iteration began, the base loop_timer_arm counts from)
 * corrected for wall-clock steps. It never goes back, and calls made while
 * ev_now() is unchanged return the same value.
 */
uint64_t loop_now_ms(struct loop *loop);

/* Refreshes the loop's cached time (ev_now_update) and loop_now_ms; for use
 * after long blocking work, before arming timers. */
void loop_now_update(struct loop *loop);

/* Sets up <s> to call <cb>(loop, signum, arg) when <signum> arrives. */
void loop_signal_init(struct loop_signal *s, int signum,
                      void (*cb)(struct loop *loop, int signum, void *arg),
                      void *arg);

/*
 * Starts watching. The callback runs from the loop, never from the signal
 * handler, so it may do anything. A signal can be watched by one loop at a
 * time. Returns 0, or -EINVAL for a signal number out of range.
 */
int loop_signal_start(struct loop *loop, struct loop_signal *s);

/* Stops watching; the signal's disposition returns to the default when no
 * watcher of it remains. No-op when not started. */
void loop_signal_stop(struct loop *loop, struct loop_signal *s);

/*
 * Calls <cb>(loop, signum, arg) on SIGTERM, SIGINT and SIGHUP, using the
 * watchers embedded in <loop>; loop_destroy stops them. Calling it again
 * replaces the callback. Returns 0 or -errno.
 */
int loop_signals_watch(struct loop *loop,
                       void (*cb)(struct loop *loop, int signum, void *arg),
                       void *arg);

#endif
