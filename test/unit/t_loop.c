/*
 * Unit tests for core/loop: deferred work ordering and bounds, one-shot
 * timers, signals, stopping. Timers are kept short (each test well under
 * 50 ms of sleeping); a guard timer stops any loop that would otherwise hang.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/util.h"

static double t_loop_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Guard: stops a loop that failed to stop by itself; the test then fails. */
struct t_loop_guard {
	struct loop_timer t;
	int fired;
};

static void t_loop_guard_cb(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_guard *g = container_of(t, struct t_loop_guard, t);

	g->fired = 1;
	loop_stop(loop);
}

static void t_loop_guard_arm(struct loop *loop, struct t_loop_guard *g,
                             uint64_t ms)
{
	memset(g, 0, sizeof(*g));
	loop_timer_init(&g->t, t_loop_guard_cb);
	loop_timer_arm(loop, &g->t, ms);
}

TEST(init_uses_epoll_and_ignores_sigpipe)
{
	struct loop loop;
	struct sigaction old;
	char err[128] = "";

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	CHECK(loop.ev != NULL);
	CHECK(ev_backend(loop.ev) == EVBACKEND_EPOLL);
	CHECK(sigaction(SIGPIPE, NULL, &old) == 0);
	CHECK(old.sa_handler == SIG_IGN);
	loop_destroy(&loop);
	CHECK(loop.ev == NULL);
	loop_destroy(&loop); /* twice is harmless */
}

TEST(zeroed_objects_tolerated)
{
	struct loop loop, zloop;
	struct loop_timer t;
	struct loop_defer d;
	struct loop_signal s;
	char err[128];

	memset(&zloop, 0, sizeof(zloop));
	loop_destroy(&zloop);
	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&t, 0, sizeof(t));
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	loop_timer_stop(&loop, &t);
	loop_defer_cancel(&loop, &d);
	loop_signal_stop(&loop, &s);
	CHECK(loop_signal_start(&loop, &s) == -EINVAL); /* signum 0 */
	CHECK(!loop_timer_armed(&t));
	loop_destroy(&loop);
}

/* An object that queues its own free from its own timer callback. */
struct t_loop_obj {
	struct loop_timer t;
	struct loop_defer d;
	int in_cb;
	int *freed_outside_cb;
	ev_tstamp *cb_now;
	ev_tstamp *free_now;
};

static void t_loop_obj_free(void *arg)
{
	struct t_loop_obj *o = arg;
	struct loop *loop = o->t.loop;

	*o->freed_outside_cb = !o->in_cb;
	*o->free_now = ev_now(loop->ev);
	mem_free(o);
	loop_stop(loop);
}

static void t_loop_obj_timer(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_obj *o = container_of(t, struct t_loop_obj, t);

	o->in_cb = 1;
	*o->cb_now = ev_now(loop->ev);
	loop_defer(loop, &o->d);
	loop_defer(loop, &o->d);
	/* Still ours: the free must not have run yet. */
	CHECK(o->d.queued);
	o->in_cb = 0;
}

TEST(deferred_free_runs_after_callback_same_iteration)
{
	struct loop loop;
	struct t_loop_guard g;
	struct t_loop_obj *o;
	struct mem_stats before, after;
	int freed_outside_cb = -1;
	ev_tstamp free_now = 0., cb_now = 1.;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	mem_get_stats(&before);
	o = mem_calloc(1, sizeof(*o));
	REQUIRE(o != NULL);
	o->freed_outside_cb = &freed_outside_cb;
	o->cb_now = &cb_now;
	o->free_now = &free_now;
	loop_defer_init(&o->d, t_loop_obj_free, o);
	loop_timer_init(&o->t, t_loop_obj_timer);
	loop_timer_arm(&loop, &o->t, 1);
	t_loop_guard_arm(&loop, &g, 500);
	loop_run(&loop);
	CHECK(!g.fired);
	CHECK(freed_outside_cb == 1);
	/* Same ev_now() (libev re-reads the clock after every poll): the free
	 * ran before the loop polled again. */
	CHECK(free_now == cb_now);
	mem_get_stats(&after);
	CHECK(after.blocks == before.blocks);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

static int t_loop_count;

static void t_loop_count_fn(void *arg)
{
	(void)arg;
	t_loop_count++;
}

TEST(double_queue_runs_once)
{
	struct loop loop;
	struct loop_defer d;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	t_loop_count = 0;
	loop_defer_init(&d, t_loop_count_fn, NULL);
	loop_defer(&loop, &d);
	loop_defer(&loop, &d);
	CHECK(d.queued == 1);
	CHECK(loop_defer_run(&loop) == 1);
	CHECK(t_loop_count == 1);
	CHECK(d.queued == 0);
	CHECK(loop_defer_run(&loop) == 0);
	/* Through the loop: two queue calls, one run, and loop_run returns
	 * because an empty queue keeps nothing active. */
	loop_defer(&loop, &d);
	loop_defer(&loop, &d);
	loop_run(&loop);
	CHECK(t_loop_count == 2);
	loop_destroy(&loop);
}

struct t_loop_requeue {
	struct loop *loop;
	struct loop_defer d;
	unsigned runs;
	int stop;
};

static void t_loop_requeue_fn(void *arg)
{
	struct t_loop_requeue *r = arg;

	r->runs++;
	if (!r->stop)
		loop_defer(r->loop, &r->d);
}

TEST(requeue_is_bounded_per_drain)
{
	struct loop loop;
	struct t_loop_requeue r;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&r, 0, sizeof(r));
	r.loop = &loop;
	loop_defer_init(&r.d, t_loop_requeue_fn, &r);
	loop_defer(&loop, &r.d);
	CHECK(loop_defer_run(&loop) == LOOP_DEFER_ROUNDS);
	CHECK(r.runs == LOOP_DEFER_ROUNDS);
	CHECK(r.d.queued == 1);
	CHECK(loop_defer_run(&loop) == LOOP_DEFER_ROUNDS);
	loop_defer_cancel(&loop, &r.d);
	CHECK(r.d.queued == 0);
	CHECK(loop_defer_run(&loop) == 0);
	CHECK(r.runs == 2 * LOOP_DEFER_ROUNDS);
	loop_destroy(&loop);
}

struct t_loop_chain {
	struct loop *loop;
	struct loop_defer a, b, c;
	char order[8];
	int n;
};

static void t_loop_chain_a(void *arg)
{
	struct t_loop_chain *ch = arg;

	ch->order[ch->n++] = 'a';
	loop_defer(ch->loop, &ch->c); /* next round of the same drain */
	loop_defer_cancel(ch->loop, &ch->b); /* later in this round */
}

static void t_loop_chain_b(void *arg)
{
	struct t_loop_chain *ch = arg;

	ch->order[ch->n++] = 'b';
}

static void t_loop_chain_c(void *arg)
{
	struct t_loop_chain *ch = arg;

	ch->order[ch->n++] = 'c';
}

TEST(queued_while_draining_runs_same_drain_and_cancel_works)
{
	struct loop loop;
	struct t_loop_chain ch;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&ch, 0, sizeof(ch));
	ch.loop = &loop;
	loop_defer_init(&ch.a, t_loop_chain_a, &ch);
	loop_defer_init(&ch.b, t_loop_chain_b, &ch);
	loop_defer_init(&ch.c, t_loop_chain_c, &ch);
	loop_defer(&loop, &ch.a);
	loop_defer(&loop, &ch.b);
	CHECK(loop_defer_run(&loop) == 2);
	CHECK_STR(ch.order, "ac");
	CHECK(!ch.b.queued);

	/* Cancel from the middle and from the end of the queue. */
	memset(ch.order, 0, sizeof(ch.order));
	ch.n = 0;
	loop_defer_init(&ch.a, t_loop_chain_b, &ch);
	loop_defer(&loop, &ch.a);
	loop_defer(&loop, &ch.b);
	loop_defer(&loop, &ch.c);
	loop_defer_cancel(&loop, &ch.c);
	loop_defer_cancel(&loop, &ch.b);
	loop_defer(&loop, &ch.c); /* the tail pointer must still be right */
	CHECK(loop_defer_run(&loop) == 2);
	CHECK_STR(ch.order, "bc");
	loop_destroy(&loop);
}

struct t_loop_starve {
	struct loop_timer t;
	struct t_loop_requeue *r;
	int fired;
};

static void t_loop_starve_cb(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_starve *s = container_of(t, struct t_loop_starve, t);

	s->fired = 1;
	s->r->stop = 1;
	loop_stop(loop);
}

TEST(requeueing_item_does_not_starve_timers)
{
	struct loop loop;
	struct t_loop_requeue r;
	struct t_loop_starve s;
	struct t_loop_guard g;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	r.loop = &loop;
	s.r = &r;
	loop_defer_init(&r.d, t_loop_requeue_fn, &r);
	loop_timer_init(&s.t, t_loop_starve_cb);
	loop_timer_arm(&loop, &s.t, 3);
	t_loop_guard_arm(&loop, &g, 500);
	loop_defer(&loop, &r.d);
	loop_run(&loop);
	CHECK(s.fired);
	CHECK(!g.fired);
	CHECK(r.runs > LOOP_DEFER_ROUNDS); /* ran across several iterations */
	CHECK(!r.d.queued); /* the final drain in loop_run ran it once more */
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

/* Re-queues itself until it ran <limit> times, then stops the loop. */
struct t_loop_leftover {
	struct loop *loop;
	struct loop_defer d;
	unsigned runs, limit;
};

static void t_loop_leftover_fn(void *arg)
{
	struct t_loop_leftover *l = arg;

	if (++l->runs < l->limit)
		loop_defer(l->loop, &l->d);
	else
		loop_stop(l->loop);
}

TEST(leftover_work_does_not_wait_for_an_event)
{
	struct loop loop;
	struct t_loop_leftover l;
	struct t_loop_guard g;
	double start, took;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&l, 0, sizeof(l));
	l.loop = &loop;
	l.limit = 3 * LOOP_DEFER_ROUNDS + 1;
	loop_defer_init(&l.d, t_loop_leftover_fn, &l);
	t_loop_guard_arm(&loop, &g, 400); /* the only other watcher */
	loop_defer(&loop, &l.d);
	start = t_loop_mono_ms();
	loop_run(&loop);
	took = t_loop_mono_ms() - start;
	CHECK(!g.fired); /* the loop never slept until the guard */
	CHECK(l.runs == l.limit);
	CHECK(took < 200.);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

struct t_loop_order;

struct t_loop_tick {
	struct loop_timer t;
	struct t_loop_order *o;
	int idx;
};

struct t_loop_order {
	struct t_loop_tick tick[3];
	double at[3];
	int order[3];
	int n;
	double start;
};

static void t_loop_order_cb(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_tick *tk = container_of(t, struct t_loop_tick, t);
	struct t_loop_order *o = tk->o;

	REQUIRE(o->n < 3);
	o->at[tk->idx] = t_loop_mono_ms() - o->start;
	o->order[o->n++] = tk->idx;
	if (o->n == 3)
		loop_stop(loop);
}

TEST(timers_fire_in_order_on_time)
{
	static const uint64_t ms[3] = { 15, 4, 9 };
	struct loop loop;
	struct t_loop_order o;
	struct t_loop_guard g;
	char err[128];
	int i;

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&o, 0, sizeof(o));
	t_loop_guard_arm(&loop, &g, 500);
	loop_now_update(&loop);
	o.start = t_loop_mono_ms();
	for (i = 0; i < 3; i++) {
		o.tick[i].o = &o;
		o.tick[i].idx = i;
		loop_timer_init(&o.tick[i].t, t_loop_order_cb);
		loop_timer_arm(&loop, &o.tick[i].t, ms[i]);
		CHECK(loop_timer_armed(&o.tick[i].t));
	}
	loop_run(&loop);
	CHECK(!g.fired);
	REQUIRE(o.n == 3);
	CHECK(o.order[0] == 1 && o.order[1] == 2 && o.order[2] == 0);
	for (i = 0; i < 3; i++) {
		CHECK(!loop_timer_armed(&o.tick[i].t)); /* one-shot */
		/* Never early (1 ms slack for clock sampling); the upper bound
		 * only catches unit mistakes, it must not fail on a busy host. */
		CHECK(o.at[i] >= (double)ms[i] - 1.);
		CHECK(o.at[i] <= (double)ms[i] + 300.);
		if (o.at[i] < (double)ms[i] - 1. || o.at[i] > (double)ms[i] + 300.)
			printf("#   timer %d: %.2f ms for %llu\n", i, o.at[i],
			       (unsigned long long)ms[i]);
	}
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

/*
 * Re-arming. Armed at t0: a at 30 ms, b at 5, c at 8, d at 10, e at 3,
 * z at 0. When b fires it pulls a in to b+5, pushes c out to b+20 and
 * stops d. e re-arms itself for 3 ms twice. Only the order of a and c
 * matters for "both moved": unmoved, or with only one of them moved, c
 * fires first. Checks are relative to when b really ran, so that a slow
 * machine delays everything without failing the test.
 */
struct t_loop_rearm {
	struct loop_timer a, b, c, d, e, z;
	double start, b_at, a_at, c_at, e_at[3], e_base[3];
	int a_n, b_n, c_n, d_n, e_n, z_n;
	char order[8];
	int n;
};

static void t_loop_rearm_note(struct loop *loop, struct t_loop_rearm *r,
                              char ev)
{
	if (r->n < (int)sizeof(r->order) - 1)
		r->order[r->n++] = ev;
	if (r->c_n && r->a_n && r->e_n >= 3)
		loop_stop(loop);
}

static void t_loop_rearm_a(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, a);

	r->a_n++;
	r->a_at = t_loop_mono_ms() - r->start;
	t_loop_rearm_note(loop, r, 'a');
}

/* Pull a in, push c out, cancel d. */
static void t_loop_rearm_b(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, b);

	r->b_n++;
	loop_now_update(loop);
	r->b_at = t_loop_mono_ms() - r->start;
	loop_timer_arm(loop, &r->a, 5);
	loop_timer_arm(loop, &r->c, 20);
	loop_timer_stop(loop, &r->d);
	CHECK(!loop_timer_armed(&r->d));
}

static void t_loop_rearm_c(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, c);

	r->c_n++;
	r->c_at = t_loop_mono_ms() - r->start;
	t_loop_rearm_note(loop, r, 'c');
}

static void t_loop_rearm_d(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, d);

	r->d_n++;
	t_loop_rearm_note(loop, r, 'd');
}

/* Re-arms itself from its own callback: three runs in all. */
static void t_loop_rearm_e(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, e);

	CHECK(!loop_timer_armed(t)); /* one-shot: stopped before the call */
	if (r->e_n < 3) {
		r->e_at[r->e_n] = t_loop_mono_ms() - r->start;
		/* The base the re-arm counts from: the iteration's start. */
		r->e_base[r->e_n] = (double)loop_now_ms(loop) - r->start;
		CHECK(r->e_base[r->e_n] <= r->e_at[r->e_n] + 1.);
	}
	if (++r->e_n < 3)
		loop_timer_arm(loop, t, 3);
	t_loop_rearm_note(loop, r, 'e');
}

static void t_loop_rearm_z(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_rearm *r = container_of(t, struct t_loop_rearm, z);

	r->z_n++;
	t_loop_rearm_note(loop, r, 'z');
}

TEST(timer_rearm_moves_deadline_and_is_one_shot)
{
	struct loop loop;
	struct t_loop_rearm r;
	struct t_loop_guard g;
	char err[128];
	int i;

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&r, 0, sizeof(r));
	loop_timer_init(&r.a, t_loop_rearm_a);
	loop_timer_init(&r.b, t_loop_rearm_b);
	loop_timer_init(&r.c, t_loop_rearm_c);
	loop_timer_init(&r.d, t_loop_rearm_d);
	loop_timer_init(&r.e, t_loop_rearm_e);
	loop_timer_init(&r.z, t_loop_rearm_z);
	t_loop_guard_arm(&loop, &g, 500);
	loop_now_update(&loop);
	r.start = t_loop_mono_ms();
	loop_timer_arm(&loop, &r.a, 30);
	loop_timer_arm(&loop, &r.b, 5);
	loop_timer_arm(&loop, &r.c, 8);
	loop_timer_arm(&loop, &r.d, 10);
	loop_timer_arm(&loop, &r.e, 3);
	loop_timer_arm(&loop, &r.z, 0);
	loop_run(&loop);
	CHECK(!g.fired);
	/* Each fired exactly once (e three times), d never, and none is left
	 * armed although ev_timer_again armed them as repeating timers. */
	CHECK(r.a_n == 1 && r.b_n == 1 && r.c_n == 1 && r.e_n == 3);
	CHECK(r.d_n == 0 && r.z_n == 1);
	CHECK(r.order[0] == 'z');
	CHECK(strchr(r.order, 'a') && strchr(r.order, 'c') &&
	      strchr(r.order, 'a') < strchr(r.order, 'c'));
	CHECK(!loop_timer_armed(&r.a) && !loop_timer_armed(&r.b));
	CHECK(!loop_timer_armed(&r.c) && !loop_timer_armed(&r.d));
	CHECK(!loop_timer_armed(&r.e) && !loop_timer_armed(&r.z));
	CHECK(r.b_at >= 5. - 1.);
	CHECK(r.a_at >= r.b_at + 5. - 1.);
	CHECK(r.c_at >= r.b_at + 20. - 1.);
	CHECK(r.e_at[0] >= 3. - 1.);
	for (i = 1; i < 3; i++)
		CHECK(r.e_at[i] >= r.e_base[i - 1] + 3. - 1.);
	if (!(r.a_at >= r.b_at + 4.) || !(r.c_at >= r.b_at + 19.))
		printf("#   order %s: b at %.2f, a at %.2f, c at %.2f ms\n",
		       r.order, r.b_at, r.a_at, r.c_at);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

struct t_loop_sig {
	struct loop_timer t;
	int raise_signum;
	int got;
	void *got_arg;
	int calls;
};

static void t_loop_sig_raise(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_sig *s = container_of(t, struct t_loop_sig, t);

	(void)loop;
	raise(s->raise_signum);
}

static void t_loop_sig_cb(struct loop *loop, int signum, void *arg)
{
	struct t_loop_sig *s = arg;

	s->got = signum;
	s->got_arg = arg;
	s->calls++;
	loop_stop(loop);
}

TEST(signal_watcher_sees_raised_sigusr1)
{
	struct loop loop;
	struct loop_signal ls;
	struct t_loop_sig s;
	struct t_loop_guard g;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&s, 0, sizeof(s));
	s.raise_signum = SIGUSR1;
	loop_signal_init(&ls, SIGUSR1, t_loop_sig_cb, &s);
	CHECK(loop_signal_start(&loop, &ls) == 0);
	loop_timer_init(&s.t, t_loop_sig_raise);
	loop_timer_arm(&loop, &s.t, 1);
	t_loop_guard_arm(&loop, &g, 500);
	loop_run(&loop);
	CHECK(!g.fired);
	CHECK(s.got == SIGUSR1);
	CHECK(s.got_arg == &s);
	CHECK(s.calls == 1);
	loop_signal_stop(&loop, &ls);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

TEST(shutdown_signals_sighup_and_restore)
{
	struct loop loop;
	struct t_loop_sig s;
	struct t_loop_guard g;
	struct sigaction old;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&s, 0, sizeof(s));
	s.raise_signum = SIGHUP;
	CHECK(loop_signals_watch(&loop, t_loop_sig_cb, &s) == 0);
	loop_timer_init(&s.t, t_loop_sig_raise);
	loop_timer_arm(&loop, &s.t, 1);
	t_loop_guard_arm(&loop, &g, 500);
	loop_run(&loop);
	CHECK(!g.fired);
	CHECK(s.got == SIGHUP);
	CHECK(s.calls == 1);

	/* Watching again replaces the callback's argument; SIGTERM too. */
	memset(&s, 0, sizeof(s));
	s.raise_signum = SIGTERM;
	CHECK(loop_signals_watch(&loop, t_loop_sig_cb, &s) == 0);
	loop_timer_init(&s.t, t_loop_sig_raise);
	loop_timer_arm(&loop, &s.t, 1);
	loop_run(&loop);
	CHECK(!g.fired);
	CHECK(s.got == SIGTERM && s.got_arg == &s);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
	/* Nobody watches any more: default disposition again. */
	CHECK(sigaction(SIGHUP, NULL, &old) == 0);
	CHECK(old.sa_handler == SIG_DFL);
	CHECK(sigaction(SIGTERM, NULL, &old) == 0);
	CHECK(old.sa_handler == SIG_DFL);
}

struct t_loop_stopper {
	struct loop_timer t;
	struct loop_defer d;
	int deferred_ran;
};

static void t_loop_stopper_defer(void *arg)
{
	struct t_loop_stopper *s = arg;

	s->deferred_ran = 1;
}

static void t_loop_stopper_cb(struct loop *loop, struct loop_timer *t)
{
	struct t_loop_stopper *s = container_of(t, struct t_loop_stopper, t);

	loop_defer(loop, &s->d);
	loop_stop(loop);
}

TEST(stop_returns_and_drains_deferred_work)
{
	struct loop loop;
	struct t_loop_stopper s;
	struct t_loop_guard g;
	double start, took;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	memset(&s, 0, sizeof(s));
	loop_defer_init(&s.d, t_loop_stopper_defer, &s);
	loop_timer_init(&s.t, t_loop_stopper_cb);
	loop_timer_arm(&loop, &s.t, 2);
	t_loop_guard_arm(&loop, &g, 1000); /* still armed when run returns */
	start = t_loop_mono_ms();
	loop_run(&loop);
	took = t_loop_mono_ms() - start;
	CHECK(!g.fired);
	CHECK(loop_timer_armed(&g.t));
	CHECK(took < 500.);
	CHECK(s.deferred_ran);
	CHECK(!s.d.queued);
	loop_timer_stop(&loop, &g.t);
	loop_destroy(&loop);
}

TEST(destroy_runs_then_drops_leftover_work)
{
	struct loop loop;
	struct loop_defer d;
	struct t_loop_requeue r;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	t_loop_count = 0;
	loop_defer_init(&d, t_loop_count_fn, NULL);
	loop_defer(&loop, &d);
	memset(&r, 0, sizeof(r));
	r.loop = &loop;
	loop_defer_init(&r.d, t_loop_requeue_fn, &r);
	loop_defer(&loop, &r.d);
	loop_destroy(&loop);
	CHECK(t_loop_count == 1);
	CHECK(r.runs == LOOP_DEFER_ROUNDS);
	CHECK(!r.d.queued && r.d.next == NULL);
}

TEST(now_ms_is_cached_per_iteration_and_monotonic)
{
	struct loop loop;
	struct timespec ts = { 0, 3 * 1000 * 1000 };
	uint64_t a, b, c;
	char err[128];

	REQUIRE(loop_init(&loop, err, sizeof(err)) == 0);
	a = loop_now_ms(&loop);
	nanosleep(&ts, NULL);
	b = loop_now_ms(&loop);
	CHECK(a == b); /* ev_now() did not move: same iteration */
	loop_now_update(&loop);
	c = loop_now_ms(&loop);
	CHECK(c >= a + 3);
	CHECK(c < a + 1000);
	loop_destroy(&loop);
}
