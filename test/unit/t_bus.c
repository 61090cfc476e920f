/*
 * Unit tests for core/bus: deferred delivery, ordering, coalescing, state
 * topics and late subscribers, prefix subscriptions, removal, unsubscribe
 * from callbacks, limits, reference counts and allocation failures at
 * every allocation point. Deliveries are driven with loop_defer_run, so no
 * test sleeps.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "core/bus.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/util.h"

/* A message type embedding struct bus_msg, counting its destructions. */
struct t_msg {
	struct bus_msg m;
	int value;
	int *freed;
};

static void t_msg_destroy(struct bus_msg *m)
{
	struct t_msg *t = container_of(m, struct t_msg, m);

	if (t->freed)
		(*t->freed)++;
	mem_free(t);
}

static struct bus_msg *t_msg(int value, int *freed)
{
	struct t_msg *t = mem_alloc(sizeof(*t));

	if (!t)
		return NULL;
	bus_msg_init(&t->m, t_msg_destroy);
	t->value = value;
	t->freed = freed;
	return &t->m;
}

static int t_val(struct bus_msg *m)
{
	return m ? container_of(m, struct t_msg, m)->value : -1;
}

/* Publishes a fresh message and drops the creator's reference. */
static int t_pub(struct bus *bus, const char *topic, int value, int *freed)
{
	struct bus_msg *m = t_msg(value, freed);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = bus_publish(bus, topic, m);
	bus_msg_unref(m);
	return rc;
}

/* Records deliveries. */
#define T_MAX 64
struct t_rec {
	int n;
	char topic[T_MAX][64];
	int value[T_MAX];
	struct bus_sub *unsub[4];   /* unsubscribed by the next delivery */
	struct bus_msg *keep;       /* reference taken on delivery */
};

static void t_rec_cb(struct bus_sub *sub, const char *topic,
                     struct bus_msg *msg, void *arg)
{
	struct t_rec *r = arg;
	size_t i;

	(void)sub;
	if (r->n < T_MAX) {
		snprintf(r->topic[r->n], sizeof(r->topic[0]), "%s", topic);
		r->value[r->n] = t_val(msg);
	}
	r->n++;
	for (i = 0; i < ARRAY_SIZE(r->unsub); i++) {
		bus_unsubscribe(r->unsub[i]);
		r->unsub[i] = NULL;
	}
	if (msg && !r->keep)
		r->keep = bus_msg_ref(msg);
}

struct t_env {
	struct loop loop;
	struct bus bus;
	struct mem_stats start;
};

static int t_env_init(struct t_env *e, uint32_t topics, uint32_t subs)
{
	char err[128];

	mem_get_stats(&e->start);
	if (loop_init(&e->loop, err, sizeof(err)) < 0)
		return -1;
	return bus_init(&e->bus, &e->loop, topics, subs);
}

/* Destroys the bus and loop; 1 when every block was given back. */
static int t_env_fini(struct t_env *e)
{
	struct mem_stats now;

	bus_destroy(&e->bus);
	loop_destroy(&e->loop);
	mem_get_stats(&now);
	return now.blocks == e->start.blocks && now.bytes == e->start.bytes;
}

TEST(delivery_is_deferred)
{
	struct t_env e;
	struct t_rec r = { 0 };
	struct bus_sub *s;
	struct bus_stats st;
	int freed = 0;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "registry.services", BUS_EXACT,
	                    t_rec_cb, &r, &s) == 0);
	CHECK(t_pub(&e.bus, "registry.services", 7, &freed) == 0);
	CHECK(r.n == 0);                      /* not from publish's stack */
	CHECK(freed == 0);
	CHECK(loop_defer_run(&e.loop) >= 1);
	REQUIRE(r.n == 1);
	CHECK_STR(r.topic[0], "registry.services");
	CHECK(r.value[0] == 7);
	CHECK(bus_peek(&e.bus, "registry.services") == r.keep);
	bus_get_stats(&e.bus, &st);
	CHECK(st.published == 1 && st.delivered == 1 && st.coalesced == 0);
	CHECK(st.topics == 1 && st.subs == 1 && st.pending == 0);
	bus_msg_unref(r.keep);
	CHECK(freed == 0);                    /* the topic still holds it */
	CHECK(t_env_fini(&e));
	CHECK(freed == 1);
}

TEST(ordering_across_topics)
{
	struct t_env e;
	struct t_rec r = { 0 };
	struct bus_sub *s;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "", BUS_PREFIX, t_rec_cb, &r, &s) == 0);
	CHECK(t_pub(&e.bus, "t1", 1, NULL) == 0);
	CHECK(t_pub(&e.bus, "t2", 2, NULL) == 0);
	CHECK(t_pub(&e.bus, "t3", 3, NULL) == 0);
	loop_defer_run(&e.loop);
	REQUIRE(r.n == 3);
	CHECK_STR(r.topic[0], "t1");
	CHECK_STR(r.topic[1], "t2");
	CHECK_STR(r.topic[2], "t3");
	/* Order of becoming pending; a coalesced one keeps its place. */
	CHECK(t_pub(&e.bus, "t3", 30, NULL) == 0);
	CHECK(t_pub(&e.bus, "t1", 10, NULL) == 0);
	CHECK(t_pub(&e.bus, "t3", 31, NULL) == 0);
	loop_defer_run(&e.loop);
	REQUIRE(r.n == 5);
	CHECK_STR(r.topic[3], "t3");
	CHECK(r.value[3] == 31);
	CHECK_STR(r.topic[4], "t1");
	CHECK(r.value[4] == 10);
	bus_msg_unref(r.keep);
	CHECK(t_env_fini(&e));
}

/* Publishes 1000 snapshots from inside a delivery callback. */
struct t_storm {
	struct bus *bus;
	int freed;
	uint64_t max_growth;
	int rc;
};

static void t_storm_cb(struct bus_sub *sub, const char *topic,
                       struct bus_msg *msg, void *arg)
{
	struct t_storm *st = arg;
	struct mem_stats before, now;
	int i;

	(void)sub; (void)topic; (void)msg;
	mem_get_stats(&before);
	for (i = 0; i < 1000; i++) {
		st->rc |= t_pub(st->bus, "endpoints/web.default:8080", i,
		                &st->freed);
		mem_get_stats(&now);
		if (now.blocks - before.blocks > st->max_growth)
			st->max_growth = now.blocks - before.blocks;
	}
}

TEST(coalescing_keeps_only_the_newest)
{
	struct t_env e;
	struct t_rec r = { 0 };
	struct t_storm storm = { 0 };
	struct bus_sub *s1, *s2;
	struct bus_stats st;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	storm.bus = &e.bus;
	CHECK(bus_subscribe(&e.bus, "trigger", BUS_EXACT, t_storm_cb, &storm,
	                    &s1) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/web.default:8080", BUS_EXACT,
	                    t_rec_cb, &r, &s2) == 0);
	CHECK(t_pub(&e.bus, "trigger", 0, NULL) == 0);
	loop_defer_run(&e.loop);
	CHECK(storm.rc == 0);
	REQUIRE(r.n == 1);
	CHECK(r.value[0] == 999);
	/* one message alive at a time: at most topic + msg + pending, and
	 * the new message before the old one is released */
	CHECK(storm.max_growth <= 4);
	CHECK(storm.freed == 999);           /* all but the current one */
	bus_get_stats(&e.bus, &st);
	CHECK(st.published == 1001);
	CHECK(st.coalesced == 999);
	CHECK(st.delivered == 2);
	bus_msg_unref(r.keep);
	CHECK(t_env_fini(&e));
	CHECK(storm.freed == 1000);
}

TEST(late_subscriber_gets_current_snapshot)
{
	struct t_env e;
	struct t_rec r = { 0 }, p = { 0 };
	struct bus_sub *s, *ps;
	int freed = 0;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(t_pub(&e.bus, "registry.services", 1, &freed) == 0);
	CHECK(t_pub(&e.bus, "registry.services", 2, &freed) == 0);
	CHECK(t_pub(&e.bus, "endpoints/a", 3, &freed) == 0);
	CHECK(t_pub(&e.bus, "endpoints/b", 4, &freed) == 0);
	CHECK(t_pub(&e.bus, "policy/x", 5, &freed) == 0);
	CHECK(freed == 1);                    /* nobody held snapshot 1 */
	loop_defer_run(&e.loop);              /* nobody to deliver to */
	CHECK(bus_subscribe(&e.bus, "registry.services", BUS_EXACT,
	                    t_rec_cb, &r, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/", BUS_PREFIX,
	                    t_rec_cb, &p, &ps) == 0);
	CHECK(r.n == 0 && p.n == 0);          /* never from subscribe */
	loop_defer_run(&e.loop);
	REQUIRE(r.n == 1);
	CHECK(r.value[0] == 2);
	REQUIRE(p.n == 2);
	CHECK(p.value[0] + p.value[1] == 7);  /* a and b, any order */
	CHECK(strncmp(p.topic[0], "endpoints/", 10) == 0);
	/* Exact subscriber to a topic with no state yet: nothing until a
	 * publish, then that. */
	bus_msg_unref(r.keep);
	memset(&r, 0, sizeof(r));
	CHECK(bus_subscribe(&e.bus, "endpoints/c", BUS_EXACT, t_rec_cb, &r,
	                    &s) == 0);
	loop_defer_run(&e.loop);
	CHECK(r.n == 0);
	CHECK(t_pub(&e.bus, "endpoints/c", 6, &freed) == 0);
	loop_defer_run(&e.loop);
	CHECK(r.n == 1 && r.value[0] == 6);
	CHECK(p.n == 3 && p.value[2] == 6);
	bus_msg_unref(p.keep);
	bus_msg_unref(r.keep);
	CHECK(t_env_fini(&e));
	CHECK(freed == 6);
}

TEST(prefix_matching)
{
	struct t_env e;
	struct t_rec all = { 0 }, ep = { 0 }, web = { 0 };
	struct bus_sub *s;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "", BUS_PREFIX, t_rec_cb, &all, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/", BUS_PREFIX, t_rec_cb, &ep,
	                    &s) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/web.", BUS_PREFIX, t_rec_cb,
	                    &web, &s) == 0);
	CHECK(t_pub(&e.bus, "endpoints/web.default:8080", 1, NULL) == 0);
	CHECK(t_pub(&e.bus, "endpoints/api.shop:80", 2, NULL) == 0);
	CHECK(t_pub(&e.bus, "endpoints", 3, NULL) == 0);
	CHECK(t_pub(&e.bus, "profiles/web.default:8080", 4, NULL) == 0);
	loop_defer_run(&e.loop);
	CHECK(all.n == 4);
	CHECK(ep.n == 2 && ep.value[0] == 1 && ep.value[1] == 2);
	CHECK(web.n == 1 && web.value[0] == 1);
	bus_msg_unref(all.keep);
	bus_msg_unref(ep.keep);
	bus_msg_unref(web.keep);
	CHECK(t_env_fini(&e));
}

TEST(topic_removal_is_delivered)
{
	struct t_env e;
	struct t_rec r = { 0 }, p = { 0 }, late = { 0 };
	struct bus_sub *s, *ps;
	struct bus_stats st;
	int freed = 0;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/a", BUS_EXACT, t_rec_cb, &r,
	                    &s) == 0);
	CHECK(bus_subscribe(&e.bus, "endpoints/", BUS_PREFIX, t_rec_cb, &p,
	                    &ps) == 0);
	CHECK(t_pub(&e.bus, "endpoints/a", 1, &freed) == 0);
	CHECK(t_pub(&e.bus, "endpoints/b", 2, &freed) == 0);
	loop_defer_run(&e.loop);
	bus_msg_unref(r.keep);
	bus_msg_unref(p.keep);
	r.keep = p.keep = NULL;
	CHECK(bus_publish(&e.bus, "endpoints/a", NULL) == 0);
	CHECK(bus_publish(&e.bus, "endpoints/b", NULL) == 0);
	CHECK(freed == 2);                    /* nobody holds them now */
	CHECK(bus_peek(&e.bus, "endpoints/a") == NULL);
	loop_defer_run(&e.loop);
	REQUIRE(r.n == 2);
	CHECK(r.value[1] == -1);              /* gone */
	REQUIRE(p.n == 4);
	CHECK(p.value[2] == -1 && p.value[3] == -1);
	bus_get_stats(&e.bus, &st);
	CHECK(st.topics == 1);                /* a stays: it has a subscriber */
	/* Removing what does not exist is a no-op. */
	CHECK(bus_publish(&e.bus, "endpoints/b", NULL) == 0);
	CHECK(bus_publish(&e.bus, "nothing", NULL) == 0);
	CHECK(bus_publish(&e.bus, "endpoints/a", NULL) == 0);
	bus_get_stats(&e.bus, &st);
	CHECK(st.published == 4 && st.pending == 0);
	/* A late subscriber to a removed topic gets nothing. */
	CHECK(bus_subscribe(&e.bus, "endpoints/", BUS_PREFIX, t_rec_cb, &late,
	                    &ps) == 0);
	loop_defer_run(&e.loop);
	CHECK(late.n == 0);
	/* A pending message replaced by removal arrives as "gone". */
	CHECK(t_pub(&e.bus, "endpoints/c", 3, &freed) == 0);
	CHECK(bus_publish(&e.bus, "endpoints/c", NULL) == 0);
	loop_defer_run(&e.loop);
	CHECK(late.n == 1 && late.value[0] == -1);
	CHECK(freed == 3);
	bus_unsubscribe(s);
	bus_get_stats(&e.bus, &st);
	CHECK(st.topics == 0);
	CHECK(t_env_fini(&e));
}

/* A subscriber that unsubscribes itself and frees its own memory. */
struct t_self {
	struct bus_sub *sub;
	int *calls;
};

static void t_self_cb(struct bus_sub *sub, const char *topic,
                      struct bus_msg *msg, void *arg)
{
	struct t_self *me = arg;

	(void)topic; (void)msg;
	(*me->calls)++;
	bus_unsubscribe(sub);
	mem_free(me);
}

TEST(unsubscribe_from_callbacks)
{
	struct t_env e;
	struct t_rec a = { 0 }, b = { 0 }, c = { 0 };
	struct bus_sub *sa, *sb, *sc;
	struct t_self *me;
	struct bus_stats st;
	int calls = 0, freed = 0;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "x", BUS_EXACT, t_rec_cb, &a, &sa) == 0);
	CHECK(bus_subscribe(&e.bus, "x", BUS_EXACT, t_rec_cb, &b, &sb) == 0);
	CHECK(bus_subscribe(&e.bus, "", BUS_PREFIX, t_rec_cb, &c, &sc) == 0);
	me = mem_alloc(sizeof(*me));
	REQUIRE(me != NULL);
	me->calls = &calls;
	CHECK(bus_subscribe(&e.bus, "x", BUS_EXACT, t_self_cb, me,
	                    &me->sub) == 0);
	/* a's delivery removes itself, b and c: both had one pending. */
	a.unsub[0] = sa;
	a.unsub[1] = sb;
	a.unsub[2] = sc;
	CHECK(t_pub(&e.bus, "x", 1, &freed) == 0);
	loop_defer_run(&e.loop);
	CHECK(a.n == 1 && b.n == 0 && c.n == 0);
	CHECK(calls == 1);                    /* self-unsubscriber ran once */
	bus_get_stats(&e.bus, &st);
	CHECK(st.subs == 0 && st.dropped == 2 && st.delivered == 2);
	CHECK(st.topics == 1);                /* x keeps its state */
	CHECK(t_pub(&e.bus, "x", 2, &freed) == 0);
	loop_defer_run(&e.loop);
	CHECK(a.n == 1 && calls == 1);
	bus_msg_unref(a.keep);
	CHECK(freed == 1);

	/* Unsubscribing before the delivery ran drops it. */
	memset(&b, 0, sizeof(b));
	CHECK(bus_subscribe(&e.bus, "x", BUS_EXACT, t_rec_cb, &b, &sb) == 0);
	CHECK(t_pub(&e.bus, "x", 3, &freed) == 0);
	bus_unsubscribe(sb);
	CHECK(freed == 2);                    /* 2 went with the pending */
	loop_defer_run(&e.loop);
	CHECK(b.n == 0);
	bus_unsubscribe(NULL);
	CHECK(t_env_fini(&e));
	CHECK(freed == 3);
}

/* Republishes from inside its own delivery: runs in a later round. */
struct t_echo {
	struct bus *bus;
	int n;
	int last;
};

static void t_echo_cb(struct bus_sub *sub, const char *topic,
                      struct bus_msg *msg, void *arg)
{
	struct t_echo *ec = arg;

	(void)sub;
	ec->n++;
	ec->last = t_val(msg);
	if (ec->last < 3)
		t_pub(ec->bus, topic, ec->last + 1, NULL);
}

TEST(publish_from_callback_runs_later)
{
	struct t_env e;
	struct t_echo ec = { 0 };
	struct bus_sub *s;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	ec.bus = &e.bus;
	CHECK(bus_subscribe(&e.bus, "echo", BUS_EXACT, t_echo_cb, &ec,
	                    &s) == 0);
	CHECK(t_pub(&e.bus, "echo", 0, NULL) == 0);
	CHECK(loop_defer_run(&e.loop) == 4);  /* one delivery per round */
	CHECK(ec.n == 4 && ec.last == 3);
	CHECK(t_env_fini(&e));
}

TEST(limits_and_bad_arguments)
{
	struct t_env e;
	struct t_rec r = { 0 };
	struct bus_sub *s;
	struct bus_stats st;
	char longname[BUS_TOPIC_MAX + 2];
	struct bus b2;

	REQUIRE(t_env_init(&e, 2, 2) == 0);
	CHECK(t_pub(&e.bus, "a", 1, NULL) == 0);
	CHECK(t_pub(&e.bus, "b", 2, NULL) == 0);
	CHECK(t_pub(&e.bus, "c", 3, NULL) == -ENOSPC);
	CHECK(t_pub(&e.bus, "a", 4, NULL) == 0);       /* existing: fine */
	CHECK(bus_subscribe(&e.bus, "c", BUS_EXACT, t_rec_cb, &r, &s) ==
	      -ENOSPC);                                 /* would add a topic */
	CHECK(bus_subscribe(&e.bus, "a", BUS_EXACT, t_rec_cb, &r, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "", BUS_PREFIX, t_rec_cb, &r, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "b", BUS_EXACT, t_rec_cb, &r, &s) ==
	      -ENOSPC);                                 /* subscription cap */
	CHECK(bus_publish(&e.bus, "b", NULL) == 0);    /* frees a slot */
	loop_defer_run(&e.loop);
	CHECK(t_pub(&e.bus, "c", 5, NULL) == 0);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(t_pub(&e.bus, longname, 1, NULL) == -EINVAL);
	longname[BUS_TOPIC_MAX] = '\0';
	CHECK(bus_publish(&e.bus, longname, NULL) == 0);
	CHECK(bus_publish(&e.bus, NULL, NULL) == -EINVAL);
	CHECK(bus_subscribe(&e.bus, "a", 0x10, t_rec_cb, &r, &s) == -EINVAL);
	CHECK(bus_subscribe(&e.bus, "a", BUS_EXACT, NULL, &r, &s) == -EINVAL);
	bus_get_stats(&e.bus, &st);
	CHECK(st.topics == 2 && st.subs == 2);
	loop_defer_run(&e.loop);
	bus_msg_unref(r.keep);
	CHECK(t_env_fini(&e));

	CHECK(bus_init(&b2, NULL, 1, 1) == -EINVAL);
	bus_destroy(&b2);
	memset(&b2, 0, sizeof(b2));
	bus_destroy(&b2);                              /* zeroed: harmless */
}

TEST(message_refcounts_and_payloads)
{
	struct bus_msg *m;
	struct mem_stats a, b;
	int *p;

	mem_get_stats(&a);
	m = bus_msg_new(3 * sizeof(int), NULL);
	REQUIRE(m != NULL);
	CHECK(m->size == 3 * sizeof(int));
	p = bus_msg_data(m);
	CHECK(((uintptr_t)p % _Alignof(max_align_t)) == 0);
	CHECK(p[0] == 0 && p[2] == 0);       /* zeroed */
	p[2] = 42;
	CHECK(bus_msg_ref(m) == m);
	bus_msg_unref(m);
	CHECK(((int *)bus_msg_data(m))[2] == 42);
	bus_msg_unref(m);
	mem_get_stats(&b);
	CHECK(a.blocks == b.blocks && a.bytes == b.bytes);
	CHECK(bus_msg_ref(NULL) == NULL);
	bus_msg_unref(NULL);
	CHECK(bus_msg_new(SIZE_MAX, NULL) == NULL);
}

TEST(destroy_drops_pending_without_calling)
{
	struct t_env e;
	struct t_rec r = { 0 };
	struct bus_sub *s;
	int freed = 0;

	REQUIRE(t_env_init(&e, 16, 16) == 0);
	CHECK(bus_subscribe(&e.bus, "", BUS_PREFIX, t_rec_cb, &r, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "a", BUS_EXACT, t_rec_cb, &r, &s) == 0);
	CHECK(bus_subscribe(&e.bus, "z", BUS_EXACT, t_rec_cb, &r, &s) == 0);
	CHECK(t_pub(&e.bus, "a", 1, &freed) == 0);
	CHECK(t_pub(&e.bus, "b", 2, &freed) == 0);
	bus_destroy(&e.bus);
	CHECK(freed == 2);
	loop_defer_run(&e.loop);
	CHECK(r.n == 0);
	CHECK(t_env_fini(&e));
}

/* One scenario touching every allocation point; run with the nth
 * allocation failing for every n until it passes without a failure. */
static int t_oom_scenario(int *freed, int *failures)
{
	struct t_env e;
	struct t_rec r1 = { 0 }, r2 = { 0 };
	struct bus_sub *s1 = NULL, *s2 = NULL, *s3 = NULL;
	struct bus_stats st;
	int rc, ok = 1;

	mem_get_stats(&e.start);
	{
		char err[128];

		if (loop_init(&e.loop, err, sizeof(err)) < 0)
			return 0;
	}
	rc = bus_init(&e.bus, &e.loop, 8, 8);
	if (rc < 0) {
		ok &= rc == -ENOMEM;
		(*failures)++;
		goto out;
	}
#define T_STEP(call, undo) do {                                             \
		bus_get_stats(&e.bus, &st);                                 \
		rc = (call);                                                \
		if (rc < 0) {                                               \
			struct bus_stats st2;                               \
			bus_get_stats(&e.bus, &st2);                        \
			ok &= rc == -ENOMEM;                                \
			ok &= memcmp(&st, &st2, sizeof(st)) == 0;           \
			(*failures)++;                                      \
		} else {                                                    \
			undo;                                               \
		}                                                           \
	} while (0)
	T_STEP(t_pub(&e.bus, "endpoints/a", 1, freed), (void)0);
	T_STEP(bus_subscribe(&e.bus, "endpoints/a", BUS_EXACT, t_rec_cb, &r1,
	                     &s1), (void)0);
	T_STEP(bus_subscribe(&e.bus, "endpoints/new", BUS_EXACT, t_rec_cb,
	                     &r1, &s2), (void)0);
	T_STEP(bus_subscribe(&e.bus, "endpoints/", BUS_PREFIX, t_rec_cb, &r2,
	                     &s3), (void)0);
	T_STEP(t_pub(&e.bus, "endpoints/a", 2, freed), (void)0);
	T_STEP(t_pub(&e.bus, "endpoints/b", 3, freed), (void)0);
	T_STEP(t_pub(&e.bus, "endpoints/new", 4, freed), (void)0);
	loop_defer_run(&e.loop);
	T_STEP(t_pub(&e.bus, "endpoints/a", 5, freed), (void)0);
	bus_unsubscribe(s3);
	T_STEP(bus_publish(&e.bus, "endpoints/b", NULL), (void)0);
	loop_defer_run(&e.loop);
#undef T_STEP
out:
	bus_msg_unref(r1.keep);
	bus_msg_unref(r2.keep);
	mem_fail_reset();
	return ok && t_env_fini(&e);
}

TEST(allocation_failures_change_nothing)
{
	int n, freed, failures, created = 0;

	for (n = 1; n < 200; n++) {
		freed = 0;
		failures = 0;
		mem_fail_after((uint64_t)n);
		CHECK(t_oom_scenario(&freed, &failures));
		if (failures == 0)
			break;
	}
	CHECK(n > 5 && n < 200);              /* reached the clean run */
	freed = failures = 0;
	CHECK(t_oom_scenario(&freed, &failures) && failures == 0);
	created = 5;                          /* messages of the scenario */
	CHECK(freed == created);
}
