/*
 * bus: the controller's internal publish/subscribe, on the libev loop.
 *
 * Sources (Kubernetes watches, the file registry) publish immutable,
 * reference-counted snapshots on named topics ("registry.services",
 * "endpoints/web.default:8080"); roles subscribe to a topic or to every
 * topic under a prefix. A topic is a state: it keeps its latest message, so
 * a new subscriber first receives the current snapshot.
 *
 * Contracts:
 *  - Messages. struct bus_msg is embedded at the start of the publisher's
 *    payload struct (bus_msg_init) or allocated with room for a payload
 *    (bus_msg_new). A message starts with one reference, owned by its
 *    creator. Once published it MUST NOT be modified by anyone. The
 *    destructor runs when the last reference goes; it MUST NOT call into
 *    the bus.
 *  - Delivery is deferred: callbacks never run inside bus_publish or
 *    bus_subscribe, only from the loop's deferred work (loop_defer).
 *  - Coalescing: each subscriber has at most one pending delivery per
 *    topic. A publish before that delivery ran replaces the pending message
 *    (the older one is released when nobody holds it), so a slow subscriber
 *    sees only the newest state, never makes a publisher wait and never
 *    makes memory grow past one pending message per (subscriber, topic).
 *  - Order: a subscriber gets its deliveries in the order they became
 *    pending; a coalesced delivery keeps its place.
 *  - Removal: publishing NULL removes a topic's state; subscribers that
 *    match it receive a delivery with msg == NULL ("gone"). They MUST
 *    accept "gone" for a topic they never saw (it may replace a pending
 *    delivery of a message they did not get yet).
 *  - A callback may publish, subscribe and unsubscribe (itself or others).
 *    After bus_unsubscribe returns, its pending deliveries are dropped and
 *    its callback is never called again. The bus does not touch a
 *    subscription after its callback returns, so a callback may free what
 *    it likes. It MUST NOT call bus_destroy.
 *  - Bounded: at most max_topics topics (a topic exists while it has a
 *    message, an exact subscriber or a pending delivery) and max_subs
 *    subscriptions. Every failure (limit, allocation) is returned as
 *    -ENOSPC / -ENOMEM / -EINVAL with nothing changed; nothing aborts.
 *  - Single-threaded, like the loop.
 */
#ifndef MESHD_CORE_BUS_H
#define MESHD_CORE_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

/* Longest topic name or prefix, in bytes. */
#define BUS_TOPIC_MAX 255

struct bus_msg {
	uint32_t refs;                          /* private */
	size_t size;                            /* ro: bus_msg_new payload */
	void (*destroy)(struct bus_msg *m);     /* private */
	void (*fini)(struct bus_msg *m);        /* private: bus_msg_new */
};

struct bus;
struct bus_sub;

/*
 * Delivery callback. <topic> is valid during the call only. <msg> is the
 * newest message of that topic when the delivery was queued, or NULL when
 * the topic is gone; the bus holds a reference for the duration of the
 * call: take one with bus_msg_ref to keep it longer.
 */
typedef void (*bus_cb)(struct bus_sub *sub, const char *topic,
                       struct bus_msg *msg, void *arg);

/* Subscription flags. */
#define BUS_EXACT  0x0   /* the topic named */
#define BUS_PREFIX 0x1   /* every topic whose name starts with the string */

struct bus_stats {
	uint64_t published;   /* state changes: messages and removals */
	uint64_t delivered;   /* callbacks made */
	uint64_t coalesced;   /* pending messages replaced by newer ones */
	uint64_t dropped;     /* pending deliveries cancelled by unsubscribe */
	uint32_t topics;      /* topics now */
	uint32_t subs;        /* subscriptions now */
	uint32_t pending;     /* deliveries waiting now */
};

struct bus_topic;
struct bus_link {
	struct bus_link *prev, *next;           /* private */
};

struct bus {
	struct loop *loop;            /* ro */
	uint32_t max_topics;          /* ro */
	uint32_t max_subs;            /* ro */
	struct bus_topic **buckets;   /* private: topic hash table */
	uint32_t nbuckets;            /* private: power of two */
	struct bus_link prefix_subs;  /* private */
	struct bus_link queue;        /* private: pending deliveries, FIFO */
	struct loop_defer defer;      /* private */
	uint64_t seq;                 /* private: pending order */
	uint64_t mark;                /* private: publish generation */
	int destroying;               /* private: bus_destroy running */
	struct bus_stats stats;       /* ro: see bus_get_stats */
};

/*
 * Sets <m> up with one reference (the caller's) and <destroy>, which the
 * last bus_msg_unref calls to free the enclosing object. <m> MUST be the
 * first member of that object only if <destroy> relies on it.
 */
void bus_msg_init(struct bus_msg *m, void (*destroy)(struct bus_msg *m));

/*
 * Allocates a message with <size> zeroed payload bytes (aligned for any
 * type, see bus_msg_data) and one reference. <fini>, when non-NULL, runs
 * before the memory is freed (to release what the payload points to).
 * Returns NULL on allocation failure.
 */
struct bus_msg *bus_msg_new(size_t size, void (*fini)(struct bus_msg *m));

/* The payload of a bus_msg_new message. */
void *bus_msg_data(struct bus_msg *m);

/* Takes a reference; returns <m>. NULL is accepted and returned. */
struct bus_msg *bus_msg_ref(struct bus_msg *m);
/* Drops a reference; the last one destroys the message. NULL is a no-op. */
void bus_msg_unref(struct bus_msg *m);

/*
 * Sets up a bus on <loop> with room for <max_topics> topics and <max_subs>
 * subscriptions (both >= 1). Returns 0, -EINVAL or -ENOMEM (then nothing
 * needs freeing; bus_destroy is harmless).
 */
int bus_init(struct bus *bus, struct loop *loop, uint32_t max_topics,
             uint32_t max_subs);

/*
 * Drops pending deliveries without calling them, frees every subscription
 * (pointers to them become invalid) and topic, and releases the messages
 * the bus held. Accepts a zeroed or destroyed bus. Not from a callback.
 */
void bus_destroy(struct bus *bus);

/*
 * Makes <msg> the state of <topic> and queues a delivery to every matching
 * subscriber (coalescing with a pending one). <msg> == NULL removes the
 * topic's state and delivers "gone"; removing a topic without state does
 * nothing. The bus takes its own references: the caller keeps (and later
 * drops) its own. Returns 0, -EINVAL (bad name), -ENOSPC (topic limit) or
 * -ENOMEM; on error nothing changed and nothing was queued.
 */
int bus_publish(struct bus *bus, const char *topic, struct bus_msg *msg);

/*
 * Subscribes <cb>(sub, topic, msg, <arg>) to <topic> (BUS_EXACT) or to
 * every topic starting with <topic> (BUS_PREFIX; "" matches all). The
 * current state of each matching topic is queued for delivery at once
 * (prefix: in no particular order). On success stores the subscription in
 * *<out> (owned by the bus until bus_unsubscribe) and returns 0; otherwise
 * -EINVAL, -ENOSPC (subscription or, for an exact topic that does not exist
 * yet, topic limit) or -ENOMEM, with nothing changed.
 */
int bus_subscribe(struct bus *bus, const char *topic, unsigned flags,
                  bus_cb cb, void *arg, struct bus_sub **out);

/* Ends <sub>: drops its pending deliveries and frees it. NULL is a no-op.
 * Safe from any callback, including <sub>'s own. */
void bus_unsubscribe(struct bus_sub *sub);

/* The latest message of <topic> (no reference taken), or NULL. */
struct bus_msg *bus_peek(const struct bus *bus, const char *topic);

/* Copies the counters. */
void bus_get_stats(const struct bus *bus, struct bus_stats *out);

#endif
