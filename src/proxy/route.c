/*
 * route: routing decisions and route configuration parsing (see route.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy/route.h"

void route_cfg_init(struct route_cfg *rc)
{
	char err[8];

	memset(rc, 0, sizeof(*rc));
	(void)route_parse_ports(rc, ROUTE_DEFAULT_OPAQUE, err, sizeof(err));
}

static void route_fail(struct route_result *res, int status,
                       const char *reason)
{
	res->status = status;
	res->reason = reason;
	res->n = 0;
}

static void route_one(struct route_result *res, const struct sock_addr *a,
                      enum route_hint hint)
{
	res->status = 0;
	res->reason = NULL;
	res->n = 1;
	res->ep[0].addr = *a;
	res->ep[0].hint = hint;
}

int route_is_self(const struct route_cfg *rc, const struct sock_addr *a,
                  const struct sock_addr *local)
{
	size_t i;

	for (i = 0; i < rc->nself; i++) {
		const struct sock_addr *s = &rc->self[i];
		int wild;

		if (sock_addr_compare(s, a) == 0)
			return 1;
		if (sock_addr_port(s) != sock_addr_port(a))
			continue;
		/* a wildcard listener also answers on loopback and on the
		 * address the connection arrived at */
		wild = (s->sa.sa_family == AF_INET &&
		        s->sin.sin_addr.s_addr == htonl(INADDR_ANY)) ||
		       (s->sa.sa_family == AF_INET6 &&
		        IN6_IS_ADDR_UNSPECIFIED(&s->sin6.sin6_addr));
		if (!wild)
			continue;
		if ((a->sa.sa_family == AF_INET &&
		     (ntohl(a->sin.sin_addr.s_addr) >> 24) == 127) ||
		    (a->sa.sa_family == AF_INET6 &&
		     IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr)))
			return 1;
		if (local) {
			struct sock_addr l = *local;

			sock_addr_set_port(&l, sock_addr_port(a));
			if (sock_addr_compare(&l, a) == 0)
				return 1;
		}
	}
	return 0;
}

static int route_inbound(const struct route_cfg *rc,
                         const struct route_query *q,
                         struct route_result *res)
{
	struct sock_addr a;

	if (rc->has_inbound_forward) {
		route_one(res, &rc->inbound_forward, ROUTE_HINT_NONE);
		return ROUTE_DONE;
	}
	if (!rc->transparent || !q->orig_dst) {
		route_fail(res, 503, "no inbound route");
		return ROUTE_DONE;
	}
	a = *q->orig_dst;
	if (rc->inbound_loopback) {
		char err[8];
		uint16_t port = sock_addr_port(&a);

		if (a.sa.sa_family == AF_INET6)
			(void)sock_addr_parse("[::1]:0", &a, err, sizeof(err));
		else
			(void)sock_addr_parse("127.0.0.1:0", &a, err, sizeof(err));
		sock_addr_set_port(&a, port);
	}
	route_one(res, &a, ROUTE_HINT_NONE);
	return ROUTE_DONE;
}

static void route_svc_done(void *arg);

/*
 * Outbound HTTP to a name, with a destination service: asks the service's
 * balancer. Returns ROUTE_DONE with <res> filled, ROUTE_PENDING with <w>
 * armed, or -1 when the name is not the controller's (unknown, or no
 * answer in time): the caller then falls back to the static sources.
 */
static int route_svc(const struct route_cfg *rc, const struct route_query *q,
                     struct route_result *res, struct route_wait *w,
                     const char **why)
{
	enum svc_res r;

	r = svc_pick(rc->svcs, q->authority, &res->lease, w ? &w->sw : NULL,
	             w ? route_svc_done : NULL, w);
	switch (r) {
	case SVC_PICKED:
		route_one(res, &res->lease.addr,
		          res->lease.hint == DST_HINT_H2 ? ROUTE_HINT_H2 :
		          res->lease.hint == DST_HINT_OPAQUE ? ROUTE_HINT_OPAQUE :
		          ROUTE_HINT_NONE);
		return ROUTE_DONE;
	case SVC_PENDING:
		if (!w) {
			route_fail(res, 503, "the service's name is being "
			           "resolved");
			return ROUTE_DONE;
		}
		if (q->authority.len > sizeof(w->auth)) {
			svc_wait_cancel(&w->sw);
			route_fail(res, 503, "authority too long to resolve");
			return ROUTE_DONE;
		}
		w->armed = 1;
		w->rc = rc;
		w->q = *q;
		if (q->authority.p != w->auth)
			memcpy(w->auth, q->authority.p, q->authority.len);
		w->q.authority = str_make(w->auth, q->authority.len);
		return ROUTE_PENDING;
	case SVC_UNKNOWN:
		*why = "no route: the destination service does not know "
		       "this name";
		return -1;
	case SVC_FAILED:
		*why = "no route: the destination service did not answer";
		return -1;
	case SVC_NO_ENDPOINTS:
		route_fail(res, 503, "the service has no endpoints");
		return ROUTE_DONE;
	case SVC_UNAVAILABLE:
		route_fail(res, 503, "every endpoint of the service is "
		           "failing (circuit breaker open)");
		return ROUTE_DONE;
	case SVC_ERROR:
		break;
	}
	route_fail(res, 503, "out of memory");
	return ROUTE_DONE;
}

static int route_resolve_in(const struct route_cfg *rc,
                            const struct route_query *q,
                            struct route_result *res, struct route_wait *w);

int route_resolve(const struct route_cfg *rc, const struct route_query *q,
                  struct route_result *res, struct route_wait *w,
                  route_done_fn cb, void *arg)
{
	if (w) {
		w->armed = 0;
		w->cb = cb;
		w->arg = arg;
		w->sw.queued_once = 0;
	}
	return route_resolve_in(rc, q, res, w);
}

/* route_resolve for a new request or, from route_svc_done, for one that
 * waited already (<w> keeps what it waited for). */
static int route_resolve_in(const struct route_cfg *rc,
                            const struct route_query *q,
                            struct route_result *res, struct route_wait *w)
{
	const char *why = NULL;
	struct sock_addr a;
	int rc2;

	memset(&res->lease, 0, sizeof(res->lease));
	/* a name goes to the destination service first, also in transparent
	 * mode: the original destination is only the fallback */
	if (q->dir == ROUTE_OUTBOUND && q->http && rc->svcs &&
	    q->authority.len &&
	    route_authority_addr(q->authority, 80, &a) == -ENOENT) {
		rc2 = route_svc(rc, q, res, w, &why);
		if (rc2 == ROUTE_PENDING)
			return ROUTE_PENDING;
		if (rc2 == ROUTE_DONE)
			goto done;
	}
	if (q->dir == ROUTE_INBOUND) {
		route_inbound(rc, q, res);
	} else if (rc->transparent && q->orig_dst) {
		route_one(res, q->orig_dst, ROUTE_HINT_NONE);
	} else if (!q->http) {
		const struct sock_addr *t = q->local ?
			route_tcp_target(rc, sock_addr_port(q->local)) : NULL;

		if (t)
			route_one(res, t, ROUTE_HINT_OPAQUE);
		else
			route_fail(res, 503, "no route for this TCP port");
	} else if (q->authority.len == 0) {
		route_fail(res, 503, "no authority in the request");
	} else {
		rc2 = route_authority_addr(q->authority, 80, &a);
		if (rc2 == -ENOENT)
			route_fail(res, 503, why ? why : "no route: name "
			           "resolution needs the destination service");
		else if (rc2 < 0)
			route_fail(res, 503, "invalid authority");
		else
			route_one(res, &a, ROUTE_HINT_NONE);
	}
done:
	if (res->status == 0 && route_is_self(rc, &res->ep[0].addr, q->local)) {
		svc_release(&res->lease, 1);
		route_fail(res, 503, "routing loop: the target is this proxy");
	}
	return ROUTE_DONE;
}

/* A parked lookup may go on (the name resolved, an endpoint of the
 * service became available, or the wait is over): resolve again, now
 * without waiting, and hand the result to the waiting caller. */
static void route_svc_done(void *arg)
{
	struct route_wait *w = arg;
	struct route_result res;
	struct route_query q;

	if (!w->armed)
		return;
	w->armed = 0;
	q = w->q;
	/* may park again: resolved now, but no endpoint yet (the queue) */
	if (route_resolve_in(w->rc, &q, &res, w) == ROUTE_PENDING)
		return;
	w->cb(w->arg, &res);
}

void route_cancel(struct route_wait *w)
{
	if (!w)
		return;
	if (w->armed)
		svc_wait_cancel(&w->sw);
	w->armed = 0;
}

const struct sock_addr *route_tcp_target(const struct route_cfg *rc,
                                         uint16_t lport)
{
	size_t i;

	for (i = 0; i < rc->ntcp; i++)
		if (rc->tcp[i].lport == lport)
			return &rc->tcp[i].target;
	return NULL;
}

static int route_port(struct str s, uint16_t *out)
{
	uint64_t v;

	if (s.len == 0 || s.len > 5 || (s.len > 1 && s.p[0] == '0') ||
	    str_to_u64(s, &v) < 0 || v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int route_parse_tcp_routes(struct route_cfg *rc, const char *spec,
                           char *err, size_t errlen)
{
	struct str rest = str_from_cstr(spec), item, lp, addr;
	struct sock_addr a;
	char aerr[64];
	uint16_t port;
	ssize_t eq;

	if (rest.len == 0)
		return 0;
	while (str_next_token(&rest, ',', &item)) {
		item = str_trim_ows(item);
		eq = str_find_char(item, '=');
		if (eq < 0) {
			snprintf(err, errlen, "tcp route \"%.*s\": want "
			         "LPORT=ADDR", (int)(item.len > 64 ? 64 : item.len),
			         item.p ? item.p : "");
			return -1;
		}
		lp = str_trim_ows(str_sub(item, 0, (size_t)eq));
		addr = str_trim_ows(str_sub(item, (size_t)eq + 1, item.len));
		if (route_port(lp, &port) < 0) {
			snprintf(err, errlen, "tcp route: bad local port "
			         "\"%.*s\"", (int)(lp.len > 16 ? 16 : lp.len),
			         lp.p ? lp.p : "");
			return -1;
		}
		if (sock_addr_parsen(addr.p ? addr.p : "", addr.len, &a, aerr,
		                     sizeof(aerr)) < 0 ||
		    sock_addr_port(&a) == 0) {
			snprintf(err, errlen, "tcp route %u: bad address "
			         "\"%.*s\" (want IP:PORT)", port,
			         (int)(addr.len > 64 ? 64 : addr.len),
			         addr.p ? addr.p : "");
			return -1;
		}
		if (route_tcp_target(rc, port)) {
			snprintf(err, errlen, "tcp route: local port %u given "
			         "twice", port);
			return -1;
		}
		if (rc->ntcp >= ROUTE_TCP_MAX) {
			snprintf(err, errlen, "tcp route: more than %d routes",
			         ROUTE_TCP_MAX);
			return -1;
		}
		rc->tcp[rc->ntcp].lport = port;
		rc->tcp[rc->ntcp].target = a;
		rc->ntcp++;
	}
	return 0;
}

int route_parse_ports(struct route_cfg *rc, const char *spec,
                      char *err, size_t errlen)
{
	uint8_t map[sizeof(rc->opaque)];
	struct str rest = str_from_cstr(spec), item;
	uint16_t lo, hi;
	ssize_t dash;
	unsigned p;

	memset(map, 0, sizeof(map));
	rest = str_trim_ows(rest);
	if (rest.len == 0) {
		memset(rc->opaque, 0, sizeof(rc->opaque));
		return 0;
	}
	while (str_next_token(&rest, ',', &item)) {
		item = str_trim_ows(item);
		dash = str_find_char(item, '-');
		if (dash < 0) {
			if (route_port(item, &lo) < 0)
				goto bad;
			hi = lo;
		} else if (route_port(str_trim_ows(str_sub(item, 0,
		                                           (size_t)dash)),
		                      &lo) < 0 ||
		           route_port(str_trim_ows(str_sub(item,
		                                           (size_t)dash + 1,
		                                           item.len)),
		                      &hi) < 0 || hi < lo) {
			goto bad;
		}
		for (p = lo; p <= hi; p++)
			map[p >> 3] |= (uint8_t)(1u << (p & 7));
	}
	memcpy(rc->opaque, map, sizeof(map));
	return 0;
bad:
	snprintf(err, errlen, "bad port or range \"%.*s\" (want 1-65535, "
	         "P or P-Q)", (int)(item.len > 32 ? 32 : item.len),
	         item.p ? item.p : "");
	return -1;
}

int route_authority_addr(struct str authority, uint16_t defport,
                         struct sock_addr *out)
{
	char tmp[80], err[64];
	size_t n = authority.len;
	const char *p = authority.p;
	ssize_t colon;
	size_t i;
	int has_port;

	if (n == 0 || n > 64)
		return n ? -ENOENT : -EINVAL;
	if (p[0] == '[') {
		const char *rb = memchr(p, ']', n);

		if (!rb)
			return -EINVAL;
		has_port = (size_t)(rb - p) + 1 < n;
		if (has_port && rb[1] != ':')
			return -EINVAL;
	} else {
		colon = str_rfind_char(authority, ':');
		if (colon >= 0 && str_find_char(authority, ':') != colon)
			return -EINVAL;  /* bare IPv6 without brackets */
		has_port = colon >= 0;
		/* a host name has a letter (or '_', '-') outside the port */
		for (i = 0; i < (has_port ? (size_t)colon : n); i++) {
			char c = p[i];

			if (!((c >= '0' && c <= '9') || c == '.'))
				return -ENOENT;
		}
	}
	if (has_port) {
		if (sock_addr_parsen(p, n, out, err, sizeof(err)) < 0)
			return -EINVAL;
		if (sock_addr_port(out) == 0)
			return -EINVAL;
		return 0;
	}
	if (n + 7 > sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, p, n);
	snprintf(tmp + n, sizeof(tmp) - n, ":%u", defport);
	if (sock_addr_parse(tmp, out, err, sizeof(err)) < 0)
		return -EINVAL;
	return 0;
}
