/*
 * Unit tests for proxy/dst: the destination client against an in-process
 * fake controller (core/grpc's server on a real loopback TCP listener, in
 * the same struct loop). The fake records every call it receives; tests
 * answer them with grpc_call_send / grpc_call_finish and run the loop
 * until a condition holds, with a time bound (timeouts in the configs are
 * a few tens of milliseconds, so every test stays well under a second).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "core/api_pb.h"
#include "core/grpc.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/sock.h"
#include "core/util.h"
#include "proxy/dst.h"

#define S(lit) STR_LIT(lit)

static double t_dst_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --- the fake controller --- */

#define FK_CALLS 32

struct fk;

struct fk_conn {
	struct fk *f;
	int fd;
	ev_io io;
	int events;
	struct grpc_server *s;
	struct buf out;
	int mute;                   /* stopped reading and writing */
	struct fk_conn *next;
};

struct fk_call {
	struct grpc_call *call;     /* NULL when over */
	struct fk_conn *conn;
	int kind;                   /* DST_SLOT_* */
	char path[128];
	char token[64];
};

struct fk {
	struct loop *loop;
	int lfd;
	ev_io lio;
	struct sock_addr addr;
	struct fk_conn *conns;
	struct fk_call calls[FK_CALLS];
	int requests[2];            /* per kind */
	int done;                   /* calls over */
	int accepted;
};

static void fk_conn_flush(struct fk_conn *c);

static int fk_slot(struct fk *f)
{
	int i;

	for (i = 0; i < FK_CALLS; i++)
		if (!f->calls[i].call)
			return i;
	return -1;
}

static void fk_on_request(struct fk *f, struct grpc_call *call,
                          const struct api_pb_get_destination *g, int kind)
{
	int i = fk_slot(f);

	f->requests[kind]++;
	if (i < 0) {
		grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "fake full");
		return;
	}
	memset(&f->calls[i], 0, sizeof(f->calls[i]));
	f->calls[i].call = call;
	f->calls[i].kind = kind;
	f->calls[i].conn = NULL;
	str_copy_cstr(f->calls[i].path, sizeof(f->calls[i].path), g->path);
	str_copy_cstr(f->calls[i].token, sizeof(f->calls[i].token),
	              g->context_token);
	grpc_call_set_user(call, &f->calls[i]);
}

static void fk_get(void *ctx, struct grpc_call *call, const void *req)
{
	fk_on_request(ctx, call, req, DST_SLOT_GET);
}

static void fk_profile(void *ctx, struct grpc_call *call, const void *req)
{
	fk_on_request(ctx, call, req, DST_SLOT_PROFILE);
}

static void fk_done(void *ctx, struct grpc_call *call, enum grpc_status st)
{
	struct fk *f = ctx;
	struct fk_call *c = grpc_call_user(call);

	(void)st;
	f->done++;
	if (c)
		c->call = NULL;
}

static const struct grpc_method fk_methods[] = {
	{ API_PB_DESTINATION_GET, &api_pb_get_destination_desc, fk_get, NULL,
	  fk_done },
	{ API_PB_DESTINATION_GET_PROFILE, &api_pb_get_destination_desc,
	  fk_profile, NULL, fk_done },
};

static void fk_conn_close(struct fk_conn *c)
{
	struct fk *f = c->f;
	struct fk_conn **pp;
	int i;

	for (i = 0; i < FK_CALLS; i++)    /* grpc_server_free calls nothing */
		if (f->calls[i].call && f->calls[i].conn == c)
			f->calls[i].call = NULL;
	for (pp = &f->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_io_stop(f->loop->ev, &c->io);
	close(c->fd);
	grpc_server_free(c->s);
	buf_free(&c->out);
	mem_free(c);
}

static void fk_conn_io(struct ev_loop *ev, ev_io *w, int revents)
{
	struct fk_conn *c = container_of(w, struct fk_conn, io);
	char b[16384];
	ssize_t n;
	int i;

	(void)ev;
	if (c->mute)
		return;
	if (revents & EV_READ) {
		n = read(c->fd, b, sizeof(b));
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			fk_conn_close(c);
			return;
		}
		if (n > 0)
			h2_feed(grpc_server_h2(c->s), b, (size_t)n);
		/* new calls belong to this connection */
		for (i = 0; i < FK_CALLS; i++)
			if (c->f->calls[i].call && !c->f->calls[i].conn)
				c->f->calls[i].conn = c;
	}
	fk_conn_flush(c);
}

static void fk_conn_flush(struct fk_conn *c)
{
	struct h2_conn *h2 = grpc_server_h2(c->s);
	int ev = EV_READ;
	ssize_t n;

	if (c->mute)
		return;
	for (;;) {
		if (buf_len(&c->out)) {
			n = write(c->fd, buf_data(&c->out), buf_len(&c->out));
			if (n <= 0)
				break;
			buf_consume(&c->out, (size_t)n);
			if (buf_len(&c->out))
				break;
			buf_reset(&c->out);
		}
		if (h2_output(h2, &c->out) <= 0)
			break;
	}
	if (buf_len(&c->out))
		ev |= EV_WRITE;
	if (ev != c->events) {
		ev_io_stop(c->f->loop->ev, &c->io);
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(c->f->loop->ev, &c->io);
		c->events = ev;
	}
}

static void fk_accept(struct ev_loop *ev, ev_io *w, int revents)
{
	struct fk *f = container_of(w, struct fk, lio);
	struct fk_conn *c;
	char err[128];
	int fd;

	(void)ev;
	(void)revents;
	while ((fd = sock_accept(f->lfd, NULL)) >= 0) {
		c = mem_calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->f = f;
		c->fd = fd;
		c->s = grpc_server_new(fk_methods, ARRAY_SIZE(fk_methods),
		                       NULL, 0, 0, f, err, sizeof(err));
		buf_init(&c->out, 64 * 1024);
		ev_io_init(&c->io, fk_conn_io, fd, EV_READ);
		ev_io_start(f->loop->ev, &c->io);
		c->events = EV_READ;
		c->next = f->conns;
		f->conns = c;
		f->accepted++;
		fk_conn_flush(c);
	}
}

/* Listens on <addr> (port 0: any; the bound address is kept). */
static int fk_listen(struct fk *f)
{
	char err[128];

	f->lfd = sock_listen(&f->addr, 16, 0, err, sizeof(err));
	if (f->lfd < 0) {
		printf("#   %s\n", err);
		return -1;
	}
	sock_local_addr(f->lfd, &f->addr);
	ev_io_init(&f->lio, fk_accept, f->lfd, EV_READ);
	ev_io_start(f->loop->ev, &f->lio);
	return 0;
}

static int fk_start(struct fk *f, struct loop *loop)
{
	char err[128];

	memset(f, 0, sizeof(*f));
	f->loop = loop;
	if (sock_addr_parse("127.0.0.1:0", &f->addr, err, sizeof(err)) < 0)
		return -1;
	return fk_listen(f);
}

/* The controller goes away: every connection and the listener close. */
static void fk_stop(struct fk *f)
{
	while (f->conns)
		fk_conn_close(f->conns);
	if (f->lfd >= 0) {
		ev_io_stop(f->loop->ev, &f->lio);
		close(f->lfd);
		f->lfd = -1;
	}
}

/* Every open connection goes silent, socket still open (a half-open
 * connection after a partition, a hung controller): nothing is read any
 * more, nothing answered. Its calls are forgotten. New connections work. */
static void fk_mute(struct fk *f)
{
	struct fk_conn *c;
	int i;

	for (c = f->conns; c; c = c->next) {
		c->mute = 1;
		ev_io_stop(f->loop->ev, &c->io);
		for (i = 0; i < FK_CALLS; i++)
			if (f->calls[i].call && f->calls[i].conn == c)
				f->calls[i].call = NULL;
	}
}

/* The live call of <kind> for <path>, or NULL. */
static struct fk_call *fk_find(struct fk *f, int kind, const char *path)
{
	int i;

	for (i = 0; i < FK_CALLS; i++)
		if (f->calls[i].call && f->calls[i].kind == kind &&
		    !strcmp(f->calls[i].path, path))
			return &f->calls[i];
	return NULL;
}

static void fk_flush_all(struct fk *f)
{
	struct fk_conn *c;

	for (c = f->conns; c; c = c->next)
		fk_conn_flush(c);
}

static int fk_send(struct fk *f, struct fk_call *c,
                   const struct pb_msg_desc *d, const void *msg)
{
	int rc;

	if (!c || !c->call)
		return -1;
	rc = grpc_call_send(c->call, d, msg);
	fk_flush_all(f);
	return rc;
}

/* --- loop driving --- */

static void t_dst_tick(struct ev_loop *ev, ev_timer *w, int revents)
{
	(void)ev;
	(void)w;
	(void)revents;
}

/* Runs <loop> until <cond> holds (re-evaluated after every iteration) or
 * <ms> passed. Returns the final value of <cond>. */
#define RUN_UNTIL(loop, ms, cond) ({                                        \
	double until_ = t_dst_ms() + (ms);                                  \
	ev_timer tick_;                                                     \
	ev_timer_init(&tick_, t_dst_tick, 0.001, 0.001);                    \
	ev_timer_start((loop)->ev, &tick_);                                 \
	while (!(cond) && t_dst_ms() < until_)                              \
		ev_run((loop)->ev, EVRUN_ONCE);                             \
	ev_timer_stop((loop)->ev, &tick_);                                  \
	(cond);                                                             \
})

/* Runs <loop> for <ms> regardless. */
static void run_for(struct loop *loop, double ms)
{
	RUN_UNTIL(loop, ms, 0);
}

/* --- message builders --- */

struct ab {                     /* storage for one WeightedAddr */
	uint8_t ip[16];
	struct api_pb_label labels[4];
};

static void mk_wa(struct api_pb_weighted_addr *wa, struct ab *st,
                  uint8_t last, uint32_t port, uint32_t weight)
{
	memset(wa, 0, sizeof(*wa));
	st->ip[0] = 10;
	st->ip[1] = 0;
	st->ip[2] = 0;
	st->ip[3] = last;
	wa->has_addr = 1;
	wa->addr.ip = str_make((const char *)st->ip, 4);
	wa->addr.port = port;
	wa->weight = weight;
}

static struct api_pb_update upd_add(struct api_pb_weighted_addr *wa,
                                    size_t n)
{
	struct api_pb_update u;

	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_ADD;
	u.add.addrs = wa;
	u.add.n_addrs = n;
	return u;
}

static struct sock_addr t_addr(const char *s)
{
	struct sock_addr a;
	char err[64];

	sock_addr_parse(s, &a, err, sizeof(err));
	return a;
}

static int ep_is(const struct dst_target *t, size_t i, const char *s)
{
	struct sock_addr a = t_addr(s);

	return i < t->nep && sock_addr_compare(&t->ep[i].addr, &a) == 0;
}

/* --- fixture --- */

struct fx {
	struct loop loop;
	struct fk f;
	struct dst d;
	struct dst_cfg cfg;
};

static void fx_cfg(struct dst_cfg *cfg)
{
	dst_cfg_default(cfg);
	cfg->idle_ms = 1000;
	cfg->resolve_timeout_ms = 300;
	cfg->connect_timeout_ms = 200;
	cfg->backoff_min_ms = 5;
	cfg->backoff_max_ms = 20;
	cfg->context_token = "{\"ns\":\"web\"}";
	cfg->jitter_seed = 7;
}

static int fx_init(struct fx *x, const struct dst_cfg *cfg)
{
	char err[128];

	memset(x, 0, sizeof(*x));
	if (loop_init(&x->loop, err, sizeof(err)) < 0)
		return -1;
	if (fk_start(&x->f, &x->loop) < 0)
		return -1;
	if (cfg)
		x->cfg = *cfg;
	else
		fx_cfg(&x->cfg);
	return dst_init(&x->d, &x->loop, &x->f.addr, &x->cfg);
}

static void fx_fini(struct fx *x)
{
	dst_fini(&x->d);
	fk_stop(&x->f);
	loop_destroy(&x->loop);
}

/* Waiter bookkeeping. */
struct wt {
	struct dst_wait w;
	int calls;
	enum dst_result res;
	struct dst_target *t;
};

static void wt_cb(void *arg, struct dst_target *t, enum dst_result res)
{
	struct wt *w = arg;

	w->calls++;
	w->res = res;
	w->t = t;
}

/* Looks <auth> up and waits for both calls at the fake. */
static struct dst_target *fx_open(struct fx *x, const char *auth,
                                  struct fk_call **get, struct fk_call **pf)
{
	struct dst_target *t = dst_lookup(&x->d, str_from_cstr(auth));

	if (!t)
		return NULL;
	RUN_UNTIL(&x->loop, 500, fk_find(&x->f, DST_SLOT_GET, auth) &&
	          fk_find(&x->f, DST_SLOT_PROFILE, auth));
	*get = fk_find(&x->f, DST_SLOT_GET, auth);
	if (pf)
		*pf = fk_find(&x->f, DST_SLOT_PROFILE, auth);
	return t;
}

/* --- tests --- */

TEST(first_resolution_wakes_waiter)
{
	struct api_pb_weighted_addr wa[2];
	struct api_pb_label setl[1];
	struct api_pb_update u;
	struct ab st[2];
	struct fk_call *g, *p;
	struct dst_target *t;
	struct wt w;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	memset(&w, 0, sizeof(w));
	t = dst_lookup(&x.d, S("web.ns.svc.cluster.local:80"));
	REQUIRE(t != NULL);
	CHECK(t->state == DST_PENDING);
	CHECK_STR(dst_st_str(t->state), "pending");
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == 0);
	CHECK(w.w.armed && w.calls == 0);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == -EBUSY);
	CHECK(x.d.stats.lookups == 1 && x.d.stats.targets == 1);

	RUN_UNTIL(&x.loop, 500,
	          fk_find(&x.f, DST_SLOT_GET, "web.ns.svc.cluster.local:80") &&
	          fk_find(&x.f, DST_SLOT_PROFILE,
	                  "web.ns.svc.cluster.local:80"));
	g = fk_find(&x.f, DST_SLOT_GET, "web.ns.svc.cluster.local:80");
	p = fk_find(&x.f, DST_SLOT_PROFILE, "web.ns.svc.cluster.local:80");
	REQUIRE(g && p);
	CHECK_STR(g->token, "{\"ns\":\"web\"}");
	CHECK(x.d.conn == DST_CONN_UP && x.d.stats.connects == 1);
	CHECK(w.calls == 0);

	mk_wa(&wa[0], &st[0], 2, 8080, 5);
	st[0].labels[0].key = S("pod");
	st[0].labels[0].value = S("web-2");
	st[0].labels[1].key = S("pod");          /* duplicate: last wins */
	st[0].labels[1].value = S("web-2b");
	wa[0].metric_labels = st[0].labels;
	wa[0].n_metric_labels = 2;
	wa[0].has_tls_identity = 1;
	wa[0].tls_identity.strategy = API_PB_TLS_IDENTITY_DNS_LIKE;
	wa[0].tls_identity.dns_like_identity.name = S("web.ns.sa.id");
	wa[0].has_protocol_hint = 1;
	wa[0].protocol_hint.protocol = API_PB_PROTOCOL_HINT_H2;
	mk_wa(&wa[1], &st[1], 1, 8080, 0);
	u = upd_add(wa, 2);
	setl[0].key = S("service");
	setl[0].value = S("web");
	u.add.metric_labels = setl;
	u.add.n_metric_labels = 1;
	CHECK(fk_send(&x.f, g, &api_pb_update_desc, &u) == 0);
	CHECK(RUN_UNTIL(&x.loop, 500, w.calls == 1));
	CHECK(w.res == DST_R_RESOLVED && w.t == t && !w.w.armed);
	CHECK(t->state == DST_RESOLVED && !t->stale && !t->failed);
	REQUIRE(t->nep == 2);
	CHECK(ep_is(t, 0, "10.0.0.1:8080") && ep_is(t, 1, "10.0.0.2:8080"));
	CHECK(t->ep[0].weight == API_PB_WEIGHT_DEFAULT);
	CHECK(t->ep[0].hint == DST_HINT_NONE && t->ep[0].identity.len == 0);
	CHECK(t->ep[1].weight == 5 && t->ep[1].hint == DST_HINT_H2);
	CHECK_STR(t->ep[1].identity.p, "web.ns.sa.id");
	REQUIRE(t->ep[1].nlabels == 1);
	CHECK_STR(t->ep[1].labels[0].key.p, "pod");
	CHECK_STR(t->ep[1].labels[0].value.p, "web-2b");
	REQUIRE(t->nset_labels == 1);
	CHECK_STR(t->set_labels[0].value.p, "web");
	CHECK(t->version > 0);
	CHECK(t->profile == NULL);
	CHECK(x.d.stats.updates == 1);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == -EALREADY);
	/* a second lookup finds the same target */
	CHECK(dst_lookup(&x.d, S("web.ns.svc.cluster.local:80")) == t);
	CHECK(x.d.stats.targets == 1);
	dst_target_unref(t);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(adds_and_removes_are_deltas)
{
	struct api_pb_weighted_addr wa[2];
	struct api_pb_tcp_address rm[2];
	struct api_pb_update u;
	struct ab st[2];
	struct fk_call *g;
	struct dst_target *t;
	uint64_t v;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	t = fx_open(&x, "a.ns:80", &g, NULL);
	REQUIRE(t && g);
	mk_wa(&wa[0], &st[0], 1, 80, 1);
	mk_wa(&wa[1], &st[1], 2, 80, 2);
	u = upd_add(wa, 2);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 2));
	v = t->version;
	/* add 10.0.0.3 and update 10.0.0.2's weight */
	mk_wa(&wa[0], &st[0], 3, 80, 3);
	mk_wa(&wa[1], &st[1], 2, 80, 20);
	u = upd_add(wa, 2);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 3));
	CHECK(t->version > v);
	CHECK(ep_is(t, 0, "10.0.0.1:80") && t->ep[0].weight == 1);
	CHECK(ep_is(t, 1, "10.0.0.2:80") && t->ep[1].weight == 20);
	CHECK(ep_is(t, 2, "10.0.0.3:80") && t->ep[2].weight == 3);
	/* remove 10.0.0.1 and an address never added */
	memset(rm, 0, sizeof(rm));
	rm[0].ip = S("\x0a\x00\x00\x01");
	rm[0].port = 80;
	rm[1].ip = S("\x0a\x00\x00\x09");
	rm[1].port = 80;
	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_REMOVE;
	u.remove.addrs = rm;
	u.remove.n_addrs = 2;
	v = t->version;
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->version > v));
	CHECK(t->nep == 2);
	CHECK(ep_is(t, 0, "10.0.0.2:80") && ep_is(t, 1, "10.0.0.3:80"));
	CHECK(t->state == DST_RESOLVED);
	/* an empty add keeps the set labels and the endpoints */
	u = upd_add(NULL, 0);
	v = t->version;
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->version > v));
	CHECK(t->nep == 2);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(no_endpoints_unknown_and_empty)
{
	struct api_pb_update u;
	struct fk_call *g;
	struct dst_target *t;
	struct wt w;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	memset(&w, 0, sizeof(w));
	t = fx_open(&x, "nope.ns:80", &g, NULL);
	REQUIRE(t && g);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == 0);
	memset(&u, 0, sizeof(u));
	u.update = API_PB_UPDATE_NO_ENDPOINTS;
	u.no_endpoints.exists = 0;
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, w.calls == 1));
	CHECK(w.res == DST_R_UNKNOWN);
	CHECK(t->state == DST_UNKNOWN && t->nep == 0);
	CHECK_STR(dst_st_str(t->state), "unknown");
	u.no_endpoints.exists = 1;
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->state == DST_RESOLVED));
	CHECK(t->nep == 0);
	CHECK(w.calls == 1);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(profile_arrives_later)
{
	struct api_pb_destination_profile pf;
	struct api_pb_route r[3];
	struct api_pb_label rl[2];
	struct api_pb_weighted_addr wa[1];
	struct api_pb_update u;
	struct ab st[1];
	struct fk_call *g, *p;
	struct dst_target *t;
	const struct dst_route *m;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	t = fx_open(&x, "books.ns:7000", &g, &p);
	REQUIRE(t && g && p);
	mk_wa(&wa[0], &st[0], 7, 7000, 0);
	u = upd_add(wa, 1);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->state == DST_RESOLVED));
	CHECK(t->profile == NULL);

	memset(&pf, 0, sizeof(pf));
	memset(r, 0, sizeof(r));
	r[0].has_condition = 1;
	r[0].condition.method = S("GET");
	r[0].condition.has_path = 1;
	r[0].condition.path.kind = API_PB_PATH_MATCH_EXACT;
	r[0].condition.path.exact = S("/books");
	r[0].is_retryable = 1;
	r[0].has_timeout = 1;
	r[0].timeout.seconds = 1;
	r[0].timeout.nanos = 500000001;
	rl[0].key = S("route");
	rl[0].value = S("list-books");
	r[0].metrics_labels = &rl[0];
	r[0].n_metrics_labels = 1;
	r[1].has_condition = 1;
	r[1].condition.has_path = 1;
	r[1].condition.path.kind = API_PB_PATH_MATCH_PREFIX;
	r[1].condition.path.prefix = S("/books/");
	rl[1].key = S("route");
	rl[1].value = S("one-book");
	r[1].metrics_labels = &rl[1];
	r[1].n_metrics_labels = 1;
	pf.routes = r;
	pf.n_routes = 2;
	pf.has_retry_budget = 1;
	pf.retry_budget.retry_ratio = 0.2f;
	pf.retry_budget.min_retries_per_second = 10;
	pf.retry_budget.has_ttl = 1;
	pf.retry_budget.ttl.seconds = 10;
	pf.fully_qualified_name = S("books.ns.svc.cluster.local");
	pf.has_endpoint = 1;
	mk_wa(&pf.endpoint, &st[0], 9, 7001, 3);
	CHECK(fk_send(&x.f, p, &api_pb_destination_profile_desc, &pf) == 0);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->profile != NULL));
	REQUIRE(t->profile->nroutes == 2);
	CHECK_STR(t->profile->routes[0].method.p, "GET");
	CHECK(t->profile->routes[0].kind == DST_PATH_EXACT);
	CHECK_STR(t->profile->routes[0].path.p, "/books");
	CHECK(t->profile->routes[0].retryable);
	CHECK(t->profile->routes[0].timeout_ms == 1501);
	CHECK_STR(t->profile->routes[0].name.p, "list-books");
	CHECK(t->profile->routes[1].kind == DST_PATH_PREFIX);
	CHECK(!t->profile->routes[1].retryable);
	CHECK(t->profile->routes[1].timeout_ms == 0);
	CHECK(t->profile->budget.present);
	CHECK(t->profile->budget.ratio > 0.19f &&
	      t->profile->budget.ratio < 0.21f);
	CHECK(t->profile->budget.min_per_s == 10);
	CHECK(t->profile->budget.ttl_ms == 10000);
	CHECK_STR(t->profile->fqn.p, "books.ns.svc.cluster.local");
	CHECK(!t->profile->opaque);
	CHECK(t->profile->has_endpoint &&
	      sock_addr_port(&t->profile->endpoint.addr) == 7001 &&
	      t->profile->endpoint.weight == 3);
	m = dst_profile_route(t->profile, S("GET"), S("/books"));
	CHECK(m && m == &t->profile->routes[0]);
	m = dst_profile_route(t->profile, S("POST"), S("/books"));
	CHECK(m == NULL);
	m = dst_profile_route(t->profile, S("POST"), S("/books/7"));
	CHECK(m && m == &t->profile->routes[1]);
	CHECK(dst_profile_route(NULL, S("GET"), S("/")) == NULL);
	/* a new profile replaces the old one */
	pf.n_routes = 0;
	pf.opaque_protocol = 1;
	pf.has_endpoint = 0;
	pf.has_retry_budget = 0;
	fk_send(&x.f, p, &api_pb_destination_profile_desc, &pf);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->profile->opaque));
	CHECK(t->profile->nroutes == 0 && !t->profile->budget.present);
	CHECK(!t->profile->has_endpoint);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(controller_restart_keeps_state_then_snapshot_replaces)
{
	struct api_pb_weighted_addr wa[2];
	struct api_pb_update u;
	struct ab st[2];
	struct fk_call *g, *p;
	struct dst_target *t;
	struct wt w;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	memset(&w, 0, sizeof(w));
	t = fx_open(&x, "web.ns:80", &g, &p);
	REQUIRE(t && g && p);
	mk_wa(&wa[0], &st[0], 1, 80, 0);
	mk_wa(&wa[1], &st[1], 2, 80, 0);
	u = upd_add(wa, 2);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 2));
	CHECK(!t->stale);

	/* the controller goes away */
	fk_stop(&x.f);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->stale));
	CHECK(x.d.stats.disconnects == 1);
	CHECK(t->state == DST_RESOLVED && t->nep == 2);   /* kept */
	run_for(&x.loop, 40);            /* reconnects fail meanwhile */
	CHECK(x.d.stats.connect_failures >= 1);
	CHECK(t->nep == 2 && t->stale);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == -EALREADY);

	/* it comes back on the same port */
	REQUIRE(fk_listen(&x.f) == 0);
	REQUIRE(RUN_UNTIL(&x.loop, 500, fk_find(&x.f, DST_SLOT_GET,
	                                        "web.ns:80") &&
	                  fk_find(&x.f, DST_SLOT_PROFILE, "web.ns:80")));
	CHECK(x.d.stats.connects == 2);
	CHECK(t->stale && t->nep == 2);
	g = fk_find(&x.f, DST_SLOT_GET, "web.ns:80");
	/* the first add is the full set: 10.0.0.1 and .2 are gone */
	mk_wa(&wa[0], &st[0], 3, 80, 0);
	u = upd_add(wa, 1);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, !t->stale));
	CHECK(t->nep == 1 && ep_is(t, 0, "10.0.0.3:80"));
	/* and the next one is a delta again */
	mk_wa(&wa[0], &st[0], 4, 80, 0);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 2));
	CHECK(ep_is(t, 0, "10.0.0.3:80") && ep_is(t, 1, "10.0.0.4:80"));
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(stream_ended_by_server_is_reopened)
{
	struct api_pb_weighted_addr wa[2];
	struct api_pb_update u;
	struct ab st[2];
	struct fk_call *g;
	struct dst_target *t;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	t = fx_open(&x, "s.ns:80", &g, NULL);
	REQUIRE(t && g);
	mk_wa(&wa[0], &st[0], 1, 80, 0);
	mk_wa(&wa[1], &st[1], 2, 80, 0);
	u = upd_add(wa, 2);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 2));
	grpc_call_finish(g->call, GRPC_UNAVAILABLE, "going");
	fk_flush_all(&x.f);
	REQUIRE(RUN_UNTIL(&x.loop, 500, x.f.requests[DST_SLOT_GET] == 2 &&
	                  fk_find(&x.f, DST_SLOT_GET, "s.ns:80")));
	CHECK(x.d.stats.stream_restarts == 1);
	CHECK(t->stale && t->nep == 2);
	CHECK(x.d.stats.connects == 1);
	g = fk_find(&x.f, DST_SLOT_GET, "s.ns:80");
	u = upd_add(wa + 1, 1);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, !t->stale));
	CHECK(t->nep == 1 && ep_is(t, 0, "10.0.0.2:80"));
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(unreachable_controller_fails_waiter_after_timeout)
{
	struct dst_cfg cfg;
	struct dst_target *t;
	struct sock_addr dead;
	struct wt w, w2;
	struct fx x;
	double t0;

	fx_cfg(&cfg);
	cfg.resolve_timeout_ms = 60;
	REQUIRE(fx_init(&x, &cfg) == 0);
	/* nothing listens there any more */
	dead = x.f.addr;
	fk_stop(&x.f);
	dst_fini(&x.d);
	REQUIRE(dst_init(&x.d, &x.loop, &dead, &cfg) == 0);
	memset(&w, 0, sizeof(w));
	memset(&w2, 0, sizeof(w2));
	t0 = t_dst_ms();
	t = dst_lookup(&x.d, S("web.ns:80"));
	REQUIRE(t != NULL);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == 0);
	CHECK(w.calls == 0);
	REQUIRE(RUN_UNTIL(&x.loop, 500, w.calls == 1));
	CHECK(w.res == DST_R_FAILED);
	CHECK(t_dst_ms() - t0 >= 55);
	CHECK(t->state == DST_PENDING && t->failed);
	CHECK(x.d.stats.resolve_failures == 1);
	CHECK(x.d.stats.connect_failures >= 1 && x.d.stats.connects == 0);
	/* later requests fail fast */
	CHECK(dst_wait(t, &w2.w, wt_cb, &w2) == -ETIMEDOUT);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(wait_cancel_suppresses_callback)
{
	struct api_pb_update u;
	struct fk_call *g;
	struct dst_target *t;
	struct wt w;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	memset(&w, 0, sizeof(w));
	t = fx_open(&x, "c.ns:80", &g, NULL);
	REQUIRE(t && g);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == 0);
	dst_wait_cancel(&w.w);
	CHECK(!w.w.armed);
	dst_wait_cancel(&w.w);           /* twice is harmless */
	u = upd_add(NULL, 0);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->state == DST_RESOLVED));
	run_for(&x.loop, 5);
	CHECK(w.calls == 0);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(idle_target_is_dropped)
{
	struct dst_cfg cfg;
	struct fk_call *g;
	struct dst_target *t, *t2;
	struct fx x;

	fx_cfg(&cfg);
	cfg.idle_ms = 30;
	REQUIRE(fx_init(&x, &cfg) == 0);
	t = fx_open(&x, "i.ns:80", &g, NULL);
	REQUIRE(t && g);
	dst_target_unref(t);
	run_for(&x.loop, 10);
	/* used again before the timeout: the same target, kept */
	t2 = dst_lookup(&x.d, S("i.ns:80"));
	CHECK(t2 == t);
	run_for(&x.loop, 40);
	CHECK(x.d.stats.targets == 1);
	dst_target_unref(t2);
	REQUIRE(RUN_UNTIL(&x.loop, 500, x.d.stats.targets == 0));
	/* its two streams were cancelled at the controller */
	CHECK(RUN_UNTIL(&x.loop, 500, x.f.done == 2));
	CHECK(!fk_find(&x.f, DST_SLOT_GET, "i.ns:80"));
	/* the connection stays for the next lookup */
	CHECK(x.d.conn == DST_CONN_UP);
	t = fx_open(&x, "i.ns:80", &g, NULL);
	CHECK(t && g && x.d.stats.connects == 1);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(limits_targets_endpoints_labels)
{
	struct api_pb_weighted_addr wa[4];
	struct api_pb_update u;
	struct ab st[4];
	struct fk_call *g;
	struct dst_target *a, *b, *c;
	struct dst_cfg cfg;
	char longname[DST_MAX_AUTHORITY + 2];
	struct fx x;
	int i;

	fx_cfg(&cfg);
	cfg.max_targets = 2;
	cfg.max_endpoints = 2;
	cfg.max_labels = 2;
	REQUIRE(fx_init(&x, &cfg) == 0);
	a = fx_open(&x, "a.ns:80", &g, NULL);
	REQUIRE(a && g);
	for (i = 0; i < 4; i++) {
		mk_wa(&wa[i], &st[i], (uint8_t)(4 - i), 80, 0);
		st[i].labels[0].key = S("a");
		st[i].labels[0].value = S("1");
		st[i].labels[1].key = S("b");
		st[i].labels[1].value = S("2");
		st[i].labels[2].key = S("c");
		st[i].labels[2].value = S("3");
		wa[i].metric_labels = st[i].labels;
		wa[i].n_metric_labels = 3;
	}
	/* an invalid address is skipped */
	wa[3].addr.ip = str_make((const char *)st[3].ip, 3);
	u = upd_add(wa, 4);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, a->state == DST_RESOLVED));
	CHECK(a->nep == 2);
	CHECK(ep_is(a, 0, "10.0.0.2:80") && ep_is(a, 1, "10.0.0.3:80"));
	CHECK(a->ep[0].nlabels == 2);
	CHECK(x.d.stats.limited >= 3);

	b = dst_lookup(&x.d, S("b.ns:80"));
	REQUIRE(b != NULL);
	CHECK(dst_lookup(&x.d, S("c.ns:80")) == NULL);   /* both in use */
	CHECK(x.d.stats.lookup_refused == 1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(dst_lookup(&x.d, str_from_cstr(longname)) == NULL);
	CHECK(dst_lookup(&x.d, S("")) == NULL);
	/* an idle target makes room */
	dst_target_unref(a);
	c = dst_lookup(&x.d, S("c.ns:80"));
	CHECK(c != NULL && str_eq_cstr(c->authority, "c.ns:80")); /* a may be reused */
	CHECK(x.d.stats.targets == 2);
	dst_target_unref(b);
	dst_target_unref(c);
	fx_fini(&x);
}

/* Update with field 1 as raw bytes: lets the fake send a broken add. */
struct raw_update {
	struct str add;
};

static const struct pb_field raw_update_fields[] = {
	PB_FIELD(struct raw_update, add, 1, PB_K_BYTES),
};

static const struct pb_msg_desc raw_update_desc = {
	"raw", sizeof(struct raw_update), 1, raw_update_fields
};

TEST(bad_message_reopens_stream)
{
	struct api_pb_weighted_addr wa[1];
	struct api_pb_update u;
	struct raw_update ru;
	struct ab st[1];
	struct fk_call *g;
	struct dst_target *t;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	t = fx_open(&x, "b.ns:80", &g, NULL);
	REQUIRE(t && g);
	ru.add = S("\x0a\x7f\x01");         /* length runs past the end */
	CHECK(fk_send(&x.f, g, &raw_update_desc, &ru) == 0);
	REQUIRE(RUN_UNTIL(&x.loop, 500, x.d.stats.bad_messages == 1 &&
	                  x.f.requests[DST_SLOT_GET] == 2 &&
	                  fk_find(&x.f, DST_SLOT_GET, "b.ns:80")));
	CHECK(t->state == DST_PENDING);
	g = fk_find(&x.f, DST_SLOT_GET, "b.ns:80");
	mk_wa(&wa[0], &st[0], 5, 80, 0);
	u = upd_add(wa, 1);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->state == DST_RESOLVED));
	CHECK(t->nep == 1);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(oversized_message_and_allocation_failure)
{
	struct api_pb_weighted_addr wa[8];
	struct api_pb_update u;
	struct ab st[8];
	struct dst_cfg cfg;
	struct fk_call *g;
	struct dst_target *t;
	struct fx x;
	int i;

	fx_cfg(&cfg);
	cfg.max_msg = 64;
	REQUIRE(fx_init(&x, &cfg) == 0);
	t = fx_open(&x, "m.ns:80", &g, NULL);
	REQUIRE(t && g);
	for (i = 0; i < 8; i++)
		mk_wa(&wa[i], &st[i], (uint8_t)(i + 1), 80, 7);
	u = upd_add(wa, 8);              /* about 100 bytes: too large */
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, x.f.requests[DST_SLOT_GET] == 2 &&
	                  fk_find(&x.f, DST_SLOT_GET, "m.ns:80")));
	CHECK(t->state == DST_PENDING && t->nep == 0);
	CHECK(x.d.stats.stream_restarts >= 1);
	g = fk_find(&x.f, DST_SLOT_GET, "m.ns:80");
	u = upd_add(wa, 2);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->nep == 2));
	/* no memory for a new target: refused, nothing half-made */
	mem_fail_after(1);
	CHECK(dst_lookup(&x.d, S("n.ns:80")) == NULL);
	mem_fail_reset();
	CHECK(x.d.stats.lookup_refused == 1 && x.d.stats.targets == 1);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(fini_with_live_targets_and_waiters)
{
	struct dst_target *t;
	struct fk_call *g;
	struct wt w;
	struct fx x;

	REQUIRE(fx_init(&x, NULL) == 0);
	memset(&w, 0, sizeof(w));
	t = fx_open(&x, "f.ns:80", &g, NULL);
	REQUIRE(t && g);
	CHECK(dst_wait(t, &w.w, wt_cb, &w) == 0);
	fx_fini(&x);                     /* must not leak or call back */
	CHECK(!w.w.armed && w.calls == 0);
	CHECK_STR(dst_conn_st_str(DST_CONN_UP), "up");
}

TEST(keepalive_finds_a_silent_controller_and_reconnects)
{
	struct api_pb_weighted_addr wa[1];
	struct api_pb_update u;
	struct ab st[1];
	struct dst_cfg cfg;
	struct fk_call *g;
	struct dst_target *t;
	struct fx x;
	double t0, took;

	fx_cfg(&cfg);
	cfg.keepalive_interval_ms = 30;
	cfg.keepalive_timeout_ms = 20;
	REQUIRE(fx_init(&x, &cfg) == 0);
	t = fx_open(&x, "k.ns:80", &g, NULL);
	REQUIRE(t && g);
	mk_wa(&wa[0], &st[0], 9, 80, 0);
	u = upd_add(wa, 1);
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, t->state == DST_RESOLVED));
	/* a controller that answers keeps the connection through many
	 * keepalive rounds */
	run_for(&x.loop, 150);
	CHECK(x.d.conn == DST_CONN_UP);
	CHECK(x.d.stats.connects == 1 && x.d.stats.disconnects == 0);
	CHECK(x.d.stats.keepalive_timeouts == 0);
	CHECK(!t->stale);
	/* it goes silent (TCP still up): dropped within interval + timeout,
	 * the target stays, stale, and the client reconnects */
	fk_mute(&x.f);
	t0 = t_dst_ms();
	REQUIRE(RUN_UNTIL(&x.loop, 1000, x.d.stats.keepalive_timeouts == 1));
	took = t_dst_ms() - t0;
	CHECK(took <= 30 + 20 + 100);
	if (took > 150)
		printf("#   keepalive timeout after %.0f ms\n", took);
	CHECK(x.d.stats.disconnects == 1);
	CHECK(t->state == DST_RESOLVED && t->stale && t->nep == 1);
	REQUIRE(RUN_UNTIL(&x.loop, 500, x.d.stats.connects == 2 &&
	                  fk_find(&x.f, DST_SLOT_GET, "k.ns:80")));
	CHECK(x.f.accepted == 2);
	g = fk_find(&x.f, DST_SLOT_GET, "k.ns:80");
	fk_send(&x.f, g, &api_pb_update_desc, &u);
	REQUIRE(RUN_UNTIL(&x.loop, 500, !t->stale));
	CHECK(t->nep == 1 && ep_is(t, 0, "10.0.0.9:80"));
	CHECK(x.d.stats.keepalive_timeouts == 1);
	dst_target_unref(t);
	fx_fini(&x);
}

TEST(keepalive_disabled_sends_no_ping)
{
	struct dst_cfg cfg;
	struct fk_call *g;
	struct dst_target *t;
	struct fx x;

	fx_cfg(&cfg);
	cfg.keepalive_interval_ms = 0;
	cfg.keepalive_timeout_ms = 5;
	REQUIRE(fx_init(&x, &cfg) == 0);
	t = fx_open(&x, "z.ns:80", &g, NULL);
	REQUIRE(t && g);
	fk_mute(&x.f);
	run_for(&x.loop, 60);
	CHECK(x.d.conn == DST_CONN_UP && x.d.stats.keepalive_timeouts == 0);
	dst_target_unref(t);
	fx_fini(&x);
}
