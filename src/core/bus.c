/*
 * bus: publish/subscribe of reference-counted snapshots on the loop.
 * See bus.h for the contracts.
 *
 * IMPLEMENTATION NOTES
 *  - A pending delivery (struct bus_pend) is the only per-message state: it
 *    sits on three lists at once, the bus FIFO (delivery order), its
 *    subscription's list (so unsubscribe drops them in O(own pendings)) and
 *    its topic's list (so a publish finds the pendings to coalesce in
 *    O(pendings of the topic)). Each holds one message reference.
 *  - bus_publish works in two passes: first it allocates everything it will
 *    need (new topic, one pending per matching subscriber that has none),
 *    then it commits. An allocation failure therefore changes nothing.
 *    Which subscribers already have a pending is found by stamping them
 *    with a per-publish generation (bus->mark).
 *  - Delivery pops a pending from the FIFO and from its subscription
 *    before the callback (p->sub = NULL marks it in flight) but keeps it on
 *    the topic's list, which keeps the topic and its name alive during the
 *    call whatever the callback unsubscribes. After the callback only the
 *    pending, the message and the topic are touched, never the
 *    subscription, which the callback may have freed.
 *  - Each drain delivers only what was queued when it started (sequence
 *    numbers, robust against removals); deliveries queued by callbacks run
 *    in the next loop_defer round, so a publish loop between callbacks
 *    cannot starve the loop.
 *  - Message destructors run only after the bus state is consistent.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/bus.h"
#include "core/mem.h"
#include "core/util.h"

struct bus_topic {
	struct bus_topic *hnext;    /* hash chain */
	struct bus_link subs;       /* exact subscriptions (bus_sub.link) */
	struct bus_link pends;      /* pendings for it (bus_pend.tlink) */
	struct bus_msg *latest;     /* state, NULL when none */
	uint32_t hash;
	size_t len;
	char name[];
};

struct bus_sub {
	struct bus *bus;
	struct bus_link link;       /* topic->subs or bus->prefix_subs */
	struct bus_link pends;      /* its pendings (bus_pend.slink) */
	struct bus_topic *topic;    /* BUS_EXACT: the topic it keeps alive */
	bus_cb cb;
	void *arg;
	uint64_t mark;              /* == bus->mark: has a pending (publish) */
	unsigned flags;
	size_t len;
	char pattern[];             /* BUS_PREFIX: the prefix */
};

struct bus_pend {
	struct bus_link qlink;      /* bus->queue */
	struct bus_link slink;      /* sub->pends */
	struct bus_link tlink;      /* topic->pends */
	struct bus_sub *sub;        /* NULL while in flight */
	struct bus_topic *topic;
	struct bus_msg *msg;        /* owned reference, NULL: gone */
	uint64_t seq;
	struct bus_pend *tmp;       /* publish/subscribe: new, not yet linked */
};

/* ---- lists ---- */

static void bus_list_init(struct bus_link *h)
{
	h->prev = h->next = h;
}

static int bus_list_empty(const struct bus_link *h)
{
	return h->next == h;
}

static void bus_list_add_tail(struct bus_link *h, struct bus_link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void bus_list_del(struct bus_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

/* ---- messages ---- */

#define BUS_MSG_HDR ((sizeof(struct bus_msg) + _Alignof(max_align_t) - 1) & \
                     ~(_Alignof(max_align_t) - 1))

void bus_msg_init(struct bus_msg *m, void (*destroy)(struct bus_msg *m))
{
	m->refs = 1;
	m->size = 0;
	m->destroy = destroy;
	m->fini = NULL;
}

static void bus_msg_free(struct bus_msg *m)
{
	if (m->fini)
		m->fini(m);
	mem_free(m);
}

struct bus_msg *bus_msg_new(size_t size, void (*fini)(struct bus_msg *m))
{
	struct bus_msg *m;

	if (size > SIZE_MAX - BUS_MSG_HDR)
		return NULL;
	m = mem_calloc(1, BUS_MSG_HDR + size);
	if (!m)
		return NULL;
	bus_msg_init(m, bus_msg_free);
	m->size = size;
	m->fini = fini;
	return m;
}

void *bus_msg_data(struct bus_msg *m)
{
	return (char *)m + BUS_MSG_HDR;
}

struct bus_msg *bus_msg_ref(struct bus_msg *m)
{
	if (m)
		m->refs++;
	return m;
}

void bus_msg_unref(struct bus_msg *m)
{
	if (!m || --m->refs > 0)
		return;
	if (m->destroy)
		m->destroy(m);
}

/* ---- topics ---- */

static uint32_t bus_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct bus_topic *bus_topic_find(const struct bus *bus,
                                        const char *name, size_t len,
                                        uint32_t hash)
{
	struct bus_topic *t;

	if (!bus->buckets)
		return NULL;
	for (t = bus->buckets[hash & (bus->nbuckets - 1)]; t; t = t->hnext)
		if (t->hash == hash && t->len == len &&
		    memcmp(t->name, name, len) == 0)
			return t;
	return NULL;
}

/* A new topic, not yet in the table. */
static struct bus_topic *bus_topic_new(const char *name, size_t len,
                                       uint32_t hash)
{
	struct bus_topic *t = mem_alloc(sizeof(*t) + len + 1);

	if (!t)
		return NULL;
	t->hnext = NULL;
	bus_list_init(&t->subs);
	bus_list_init(&t->pends);
	t->latest = NULL;
	t->hash = hash;
	t->len = len;
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	return t;
}

static void bus_topic_insert(struct bus *bus, struct bus_topic *t)
{
	struct bus_topic **head = &bus->buckets[t->hash & (bus->nbuckets - 1)];

	t->hnext = *head;
	*head = t;
	bus->stats.topics++;
}

/* Frees <t> once nothing refers to it: no state, no exact subscriber, no
 * pending delivery. */
static void bus_topic_maybe_free(struct bus *bus, struct bus_topic *t)
{
	struct bus_topic **pp;

	if (bus->destroying || t->latest || !bus_list_empty(&t->subs) ||
	    !bus_list_empty(&t->pends))
		return;
	for (pp = &bus->buckets[t->hash & (bus->nbuckets - 1)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	}
	bus->stats.topics--;
	mem_free(t);
}

/* 1 when <sub> wants <t>. */
static int bus_sub_match(const struct bus_sub *sub, const struct bus_topic *t)
{
	if (!(sub->flags & BUS_PREFIX))
		return sub->topic == t;
	return t->len >= sub->len && memcmp(t->name, sub->pattern,
	                                    sub->len) == 0;
}

static int bus_name_ok(const char *name, size_t *len)
{
	if (!name)
		return 0;
	*len = strnlen(name, BUS_TOPIC_MAX + 1);
	return *len <= BUS_TOPIC_MAX;
}

/* ---- pendings ---- */

static void bus_deliver(void *arg);

/* Links a new pending of <msg> (a reference is taken) for <sub> on <t>. */
static void bus_pend_queue(struct bus *bus, struct bus_pend *p,
                           struct bus_sub *sub, struct bus_topic *t,
                           struct bus_msg *msg)
{
	p->sub = sub;
	p->topic = t;
	p->msg = bus_msg_ref(msg);
	p->seq = ++bus->seq;
	p->tmp = NULL;
	bus_list_add_tail(&bus->queue, &p->qlink);
	bus_list_add_tail(&sub->pends, &p->slink);
	bus_list_add_tail(&t->pends, &p->tlink);
	bus->stats.pending++;
	loop_defer(bus->loop, &bus->defer);
}

/* Frees a chain of unlinked pendings (built through ->tmp). */
static void bus_pend_free_chain(struct bus_pend *p)
{
	struct bus_pend *n;

	for (; p; p = n) {
		n = p->tmp;
		mem_free(p);
	}
}

/* Allocates <n> unlinked pendings chained through ->tmp, or NULL. */
static struct bus_pend *bus_pend_alloc_chain(size_t n, int *err)
{
	struct bus_pend *head = NULL, *p;

	*err = 0;
	while (n--) {
		p = mem_alloc(sizeof(*p));
		if (!p) {
			bus_pend_free_chain(head);
			*err = -ENOMEM;
			return NULL;
		}
		p->tmp = head;
		head = p;
	}
	return head;
}

static struct bus_pend *bus_pend_take(struct bus_pend **chain)
{
	struct bus_pend *p = *chain;

	*chain = p->tmp;
	return p;
}

/* ---- delivery ---- */

static void bus_deliver(void *arg)
{
	struct bus *bus = arg;
	uint64_t last = bus->seq;

	while (!bus_list_empty(&bus->queue)) {
		struct bus_pend *p = container_of(bus->queue.next,
		                                  struct bus_pend, qlink);
		struct bus_sub *sub = p->sub;
		struct bus_topic *t = p->topic;
		struct bus_msg *msg = p->msg;

		if (p->seq > last) {
			/* queued by a callback of this drain: next round */
			loop_defer(bus->loop, &bus->defer);
			break;
		}
		bus_list_del(&p->qlink);
		bus_list_del(&p->slink);
		p->sub = NULL;
		p->msg = NULL;
		bus->stats.pending--;
		bus->stats.delivered++;
		sub->cb(sub, t->name, msg, sub->arg);
		bus_list_del(&p->tlink);
		mem_free(p);
		bus_topic_maybe_free(bus, t);
		bus_msg_unref(msg);
	}
}

/* ---- public ---- */

int bus_init(struct bus *bus, struct loop *loop, uint32_t max_topics,
             uint32_t max_subs)
{
	uint32_t n = 16;

	memset(bus, 0, sizeof(*bus));
	bus_list_init(&bus->prefix_subs);
	bus_list_init(&bus->queue);
	if (!loop || max_topics == 0 || max_subs == 0)
		return -EINVAL;
	while (n < max_topics && n < (1u << 20))
		n <<= 1;
	bus->buckets = mem_calloc(n, sizeof(*bus->buckets));
	if (!bus->buckets)
		return -ENOMEM;
	bus->nbuckets = n;
	bus->loop = loop;
	bus->max_topics = max_topics;
	bus->max_subs = max_subs;
	loop_defer_init(&bus->defer, bus_deliver, bus);
	return 0;
}

/* Drops all pendings of <sub> (not in flight ones: those are off its
 * list). Message references are appended to nothing: released at once,
 * which is safe since destructors do not call the bus. */
static void bus_sub_drop_pends(struct bus *bus, struct bus_sub *sub)
{
	while (!bus_list_empty(&sub->pends)) {
		struct bus_pend *p = container_of(sub->pends.next,
		                                  struct bus_pend, slink);
		struct bus_topic *t = p->topic;
		struct bus_msg *msg = p->msg;

		bus_list_del(&p->slink);
		bus_list_del(&p->qlink);
		bus_list_del(&p->tlink);
		mem_free(p);
		bus->stats.pending--;
		bus->stats.dropped++;
		bus_topic_maybe_free(bus, t);
		bus_msg_unref(msg);
	}
}

void bus_unsubscribe(struct bus_sub *sub)
{
	struct bus *bus;
	struct bus_topic *t;

	if (!sub)
		return;
	bus = sub->bus;
	t = sub->topic;
	bus_list_del(&sub->link);
	sub->topic = NULL;
	bus_sub_drop_pends(bus, sub);
	bus->stats.subs--;
	mem_free(sub);
	if (t)
		bus_topic_maybe_free(bus, t);
}

void bus_destroy(struct bus *bus)
{
	uint32_t i;

	if (!bus->buckets) {
		memset(bus, 0, sizeof(*bus));
		return;
	}
	loop_defer_cancel(bus->loop, &bus->defer);
	/* Topics stay put while subscriptions go (see bus_topic_maybe_free),
	 * then go all at once. */
	bus->destroying = 1;
	while (!bus_list_empty(&bus->prefix_subs))
		bus_unsubscribe(container_of(bus->prefix_subs.next,
		                             struct bus_sub, link));
	for (i = 0; i < bus->nbuckets; i++) {
		struct bus_topic *t;

		for (t = bus->buckets[i]; t; t = t->hnext)
			while (!bus_list_empty(&t->subs))
				bus_unsubscribe(container_of(t->subs.next,
				                struct bus_sub, link));
	}
	for (i = 0; i < bus->nbuckets; i++) {
		struct bus_topic *t;

		while ((t = bus->buckets[i])) {
			bus->buckets[i] = t->hnext;
			bus_msg_unref(t->latest);
			mem_free(t);
		}
	}
	MEM_FREE(&bus->buckets);
	memset(bus, 0, sizeof(*bus));
}

int bus_publish(struct bus *bus, const char *topic, struct bus_msg *msg)
{
	struct bus_pend *chain, *p;
	struct bus_topic *t, *fresh = NULL;
	struct bus_link *l;
	struct bus_msg *old;
	uint32_t hash;
	size_t len, need = 0;
	int err;

	if (!bus->buckets || !bus_name_ok(topic, &len))
		return -EINVAL;
	hash = bus_hash(topic, len);
	t = bus_topic_find(bus, topic, len, hash);
	if (!t) {
		if (!msg)
			return 0;
		if (bus->stats.topics >= bus->max_topics)
			return -ENOSPC;
		t = fresh = bus_topic_new(topic, len, hash);
		if (!t)
			return -ENOMEM;
	} else if (!msg && !t->latest) {
		return 0;
	}

	/* Pass 1: who has a pending to coalesce, how many new ones. */
	bus->mark++;
	for (l = t->pends.next; l != &t->pends; l = l->next) {
		p = container_of(l, struct bus_pend, tlink);
		if (p->sub)
			p->sub->mark = bus->mark;
	}
	for (l = t->subs.next; l != &t->subs; l = l->next)
		if (container_of(l, struct bus_sub, link)->mark != bus->mark)
			need++;
	for (l = bus->prefix_subs.next; l != &bus->prefix_subs; l = l->next) {
		struct bus_sub *s = container_of(l, struct bus_sub, link);

		if (s->mark != bus->mark && bus_sub_match(s, t))
			need++;
	}
	chain = bus_pend_alloc_chain(need, &err);
	if (err) {
		mem_free(fresh);
		return err;
	}

	/* Pass 2: commit. Old messages are released at the end. */
	if (fresh)
		bus_topic_insert(bus, fresh);
	old = t->latest;
	t->latest = bus_msg_ref(msg);
	bus->stats.published++;
	for (l = t->pends.next; l != &t->pends; l = l->next) {
		struct bus_msg *prev;

		p = container_of(l, struct bus_pend, tlink);
		if (!p->sub)
			continue;
		prev = p->msg;
		p->msg = bus_msg_ref(msg);
		bus->stats.coalesced++;
		bus_msg_unref(prev);
	}
	for (l = t->subs.next; l != &t->subs; l = l->next) {
		struct bus_sub *s = container_of(l, struct bus_sub, link);

		if (s->mark != bus->mark)
			bus_pend_queue(bus, bus_pend_take(&chain), s, t, msg);
	}
	for (l = bus->prefix_subs.next; l != &bus->prefix_subs; l = l->next) {
		struct bus_sub *s = container_of(l, struct bus_sub, link);

		if (s->mark != bus->mark && bus_sub_match(s, t))
			bus_pend_queue(bus, bus_pend_take(&chain), s, t, msg);
	}
	if (!msg)
		bus_topic_maybe_free(bus, t);
	bus_msg_unref(old);
	return 0;
}

int bus_subscribe(struct bus *bus, const char *topic, unsigned flags,
                  bus_cb cb, void *arg, struct bus_sub **out)
{
	struct bus_topic *t = NULL, *fresh = NULL;
	struct bus_pend *chain = NULL;
	struct bus_sub *sub;
	size_t len, need = 0;
	uint32_t hash, i;
	int err;

	if (!bus->buckets || !cb || !out || (flags & ~BUS_PREFIX) ||
	    !bus_name_ok(topic, &len))
		return -EINVAL;
	if (bus->stats.subs >= bus->max_subs)
		return -ENOSPC;
	if (!(flags & BUS_PREFIX)) {
		hash = bus_hash(topic, len);
		t = bus_topic_find(bus, topic, len, hash);
		if (!t) {
			if (bus->stats.topics >= bus->max_topics)
				return -ENOSPC;
			t = fresh = bus_topic_new(topic, len, hash);
			if (!t)
				return -ENOMEM;
		}
		need = t->latest ? 1 : 0;
	} else {
		for (i = 0; i < bus->nbuckets; i++) {
			struct bus_topic *x;

			for (x = bus->buckets[i]; x; x = x->hnext)
				if (x->latest && x->len >= len &&
				    memcmp(x->name, topic, len) == 0)
					need++;
		}
	}
	sub = mem_alloc(sizeof(*sub) + len + 1);
	if (!sub) {
		mem_free(fresh);
		return -ENOMEM;
	}
	chain = bus_pend_alloc_chain(need, &err);
	if (err) {
		mem_free(sub);
		mem_free(fresh);
		return err;
	}

	sub->bus = bus;
	bus_list_init(&sub->pends);
	sub->topic = t;
	sub->cb = cb;
	sub->arg = arg;
	sub->mark = 0;
	sub->flags = flags;
	sub->len = len;
	memcpy(sub->pattern, topic, len);
	sub->pattern[len] = '\0';
	bus->stats.subs++;
	if (t) {
		if (fresh)
			bus_topic_insert(bus, fresh);
		bus_list_add_tail(&t->subs, &sub->link);
		if (t->latest)
			bus_pend_queue(bus, bus_pend_take(&chain), sub, t,
			               t->latest);
	} else {
		bus_list_add_tail(&bus->prefix_subs, &sub->link);
		for (i = 0; i < bus->nbuckets; i++) {
			struct bus_topic *x;

			for (x = bus->buckets[i]; x; x = x->hnext)
				if (bus_sub_match(sub, x) && x->latest)
					bus_pend_queue(bus,
					               bus_pend_take(&chain),
					               sub, x, x->latest);
		}
	}
	*out = sub;
	return 0;
}

struct bus_msg *bus_peek(const struct bus *bus, const char *topic)
{
	struct bus_topic *t;
	size_t len;

	if (!bus_name_ok(topic, &len))
		return NULL;
	t = bus_topic_find(bus, topic, len, bus_hash(topic, len));
	return t ? t->latest : NULL;
}

void bus_get_stats(const struct bus *bus, struct bus_stats *out)
{
	*out = bus->stats;
}
