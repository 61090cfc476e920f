/*
 * admin: the admin HTTP server (see admin.h).
 *
 * IMPLEMENTATION NOTES
 * Admin traffic is rare and small, so connections are plain heap objects
 * with an input buffer; a response is built whole in the connection's
 * output buffer (the metrics exposition can be large: its limit is
 * ADMIN_OUT_LIMIT) and the connection reads the next request only once the
 * response is written.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/http1.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "proxy/admin.h"
#include "proxy/ep.h"
#include "proxy/proxy_main.h"

#define ADMIN_HEAD_MAX 16384
#define ADMIN_BODY_MAX 4096
#define ADMIN_OUT_LIMIT (32u << 20)
#define ADMIN_HEAD_TIMEOUT_MS 10000
#define ADMIN_IDLE_TIMEOUT_MS 60000

struct adm_conn {
	struct admin *a;
	struct ep ep;
	struct sock_addr peer;
	struct loop_timer timer;
	struct loop_defer reap;
	int closing;         /* close once the output is written */
	int dead;
	struct adm_conn *next, *prev;
};

struct admin {
	struct proxy *px;
	struct adm_conn *conns;
	unsigned n;
};

static void adm_io_cb(struct ev_loop *ev, ev_io *w, int revents);
static void adm_timer_cb(struct loop *loop, struct loop_timer *t);
static void adm_reap(void *arg);

struct admin *admin_new(struct proxy *px)
{
	struct admin *a = mem_calloc(1, sizeof(*a));

	if (a)
		a->px = px;
	return a;
}

static void adm_close(struct adm_conn *ac)
{
	struct proxy *px = ac->a->px;

	if (ac->dead)
		return;
	ac->dead = 1;
	loop_timer_stop(&px->loop, &ac->timer);
	ep_close(px->loop.ev, &ac->ep, 0);
	loop_defer(&px->loop, &ac->reap);
}

static void adm_reap(void *arg)
{
	struct adm_conn *ac = arg;
	struct admin *a = ac->a;

	if (ac->prev)
		ac->prev->next = ac->next;
	else
		a->conns = ac->next;
	if (ac->next)
		ac->next->prev = ac->prev;
	a->n--;
	mem_free(ac);
}

void admin_free(struct admin *a)
{
	struct adm_conn *ac;

	if (!a)
		return;
	while ((ac = a->conns) != NULL) {
		struct proxy *px = a->px;

		if (!ac->dead) {
			loop_timer_stop(&px->loop, &ac->timer);
			ep_close(px->loop.ev, &ac->ep, 0);
		} else {
			loop_defer_cancel(&px->loop, &ac->reap);
		}
		a->conns = ac->next;
		mem_free(ac);
	}
	mem_free(a);
}

void admin_accept(struct admin *a, int fd, const struct sock_addr *peer)
{
	struct proxy *px = a->px;
	struct adm_conn *ac;

	if (a->n >= ADMIN_MAX_CONNS || !(ac = mem_calloc(1, sizeof(*ac)))) {
		close(fd);
		return;
	}
	ac->a = a;
	ac->peer = *peer;
	ep_init(&ac->ep, fd, adm_io_cb, ADMIN_HEAD_MAX + ADMIN_BODY_MAX,
	        ADMIN_OUT_LIMIT);
	loop_timer_init(&ac->timer, adm_timer_cb);
	loop_defer_init(&ac->reap, adm_reap, ac);
	ac->next = a->conns;
	if (a->conns)
		a->conns->prev = ac;
	a->conns = ac;
	a->n++;
	ep_want(px->loop.ev, &ac->ep, EV_READ);
	loop_timer_arm(&px->loop, &ac->timer, ADMIN_IDLE_TIMEOUT_MS);
}

static int adm_is_loopback(const struct sock_addr *a)
{
	if (a->sa.sa_family == AF_INET)
		return (ntohl(a->sin.sin_addr.s_addr) >> 24) == 127;
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr);
	return 0;
}

/* Queues a complete response with a text body. */
static void adm_respond(struct adm_conn *ac, int status, const char *reason,
                        const char *ctype, const char *body, size_t blen)
{
	struct ev_loop *ev = ac->a->px->loop.ev;
	struct buf *out = &ac->ep.out;
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	             "content-type: %s\r\ncontent-length: %zu\r\n%s\r\n",
	             status, reason, ctype, blen,
	             ac->closing ? "connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    buf_append(out, head, (size_t)n) < 0 ||
	    buf_append(out, body, blen) < 0) {
		adm_close(ac);
		return;
	}
	/* write now: the answer to /shutdown must leave before the loop
	 * stops; the EV_WRITE event then finishes the exchange */
	if (ep_flush(ev, &ac->ep) < 0) {
		adm_close(ac);
		return;
	}
	ep_want_add(ev, &ac->ep, EV_WRITE);
}

static void adm_text(struct adm_conn *ac, int status, const char *reason,
                     const char *text)
{
	adm_respond(ac, status, reason, "text/plain; charset=utf-8", text,
	            strlen(text));
}

static void adm_metrics(struct adm_conn *ac)
{
	struct proxy *px = ac->a->px;
	struct buf body;

	buf_init(&body, ADMIN_OUT_LIMIT / 2);
	if (metrics_render(px->reg, &body) < 0 ||
	    (px->cfg.route.svcs &&
	     svc_table_render(px->cfg.route.svcs, &body) < 0) ||
	    metrics_render_process(&body) < 0) {
		buf_free(&body);
		adm_text(ac, 500, "Internal Server Error",
		         "metrics exposition too large\n");
		return;
	}
	adm_respond(ac, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	            buf_data(&body), buf_len(&body));
	buf_free(&body);
}

static int adm_path_is(const struct http1_head *h, const char *p)
{
	size_t n = strlen(p), len = h->path_len;
	const char *q = memchr(h->path, '?', h->path_len);

	if (q)
		len = (size_t)(q - h->path);
	return len == n && memcmp(h->path, p, n) == 0;
}

static void adm_route(struct adm_conn *ac, const struct http1_head *h,
                      const char *body, size_t blen)
{
	struct proxy *px = ac->a->px;
	int get = h->method_id == HTTP1_M_GET || h->method_id == HTTP1_M_HEAD;
	char spec[LOG_SPEC_MAX + 1], err[256];
	size_t n;

	if (adm_path_is(h, "/metrics")) {
		if (!get)
			goto method;
		adm_metrics(ac);
	} else if (adm_path_is(h, "/ready")) {
		if (!get)
			goto method;
		if (proxy_ready(px))
			adm_text(ac, 200, "OK", "ready\n");
		else
			adm_text(ac, 503, "Service Unavailable",
			         px->draining ? "shutting down\n"
			                      : "not ready\n");
	} else if (adm_path_is(h, "/live")) {
		if (!get)
			goto method;
		adm_text(ac, 200, "OK", "live\n");
	} else if (adm_path_is(h, "/log-level") ||
	           adm_path_is(h, "/proxy-log-level")) {
		if (get) {
			if (log_get_spec(spec, sizeof(spec) - 1) < 0)
				spec[0] = '\0';
			n = strlen(spec);
			spec[n] = '\n';
			adm_respond(ac, 200, "OK", "text/plain; charset=utf-8",
			            spec, n + 1);
		} else if (h->method_id == HTTP1_M_PUT) {
			struct str s = str_trim_ows(str_make(body, blen));

			while (s.len && (s.p[s.len - 1] == '\n' ||
			                 s.p[s.len - 1] == '\r'))
				s.len--;
			if (log_set_spec_str(s, err, sizeof(err)) < 0) {
				n = strlen(err);
				if (n + 1 < sizeof(err)) {
					err[n++] = '\n';
					err[n] = '\0';
				}
				adm_text(ac, 400, "Bad Request", err);
				return;
			}
			LOG_INFO("proxy", "log level set to %.*s",
			         (int)s.len, s.p ? s.p : "");
			adm_text(ac, 200, "OK", "ok\n");
		} else {
			goto method;
		}
	} else if (adm_path_is(h, "/shutdown")) {
		if (!px->cfg.enable_shutdown) {
			adm_text(ac, 404, "Not Found", "not found\n");
		} else if (h->method_id != HTTP1_M_POST) {
			goto method;
		} else if (!adm_is_loopback(&ac->peer)) {
			adm_text(ac, 403, "Forbidden",
			         "shutdown is allowed from localhost only\n");
		} else {
			adm_text(ac, 202, "Accepted", "shutdown\n");
			proxy_shutdown(px, "admin /shutdown");
		}
	} else {
		adm_text(ac, 404, "Not Found", "not found\n");
	}
	return;
method:
	adm_text(ac, 405, "Method Not Allowed", "method not allowed\n");
}

/* Serves the complete request at the head of ep.in, if there is one.
 * Returns 1 when one was served. */
static int adm_serve(struct adm_conn *ac)
{
	struct http1_header hdrs[64];
	struct http1_head h;
	const char *data = buf_data(&ac->ep.in);
	size_t len = buf_len(&ac->ep.in), blen = 0;
	struct http1_limits lim;
	int hl;

	if (len == 0)
		return 0;
	memset(&lim, 0, sizeof(lim));
	lim.max_head = ADMIN_HEAD_MAX;
	http1_head_init(&h, hdrs, ARRAY_SIZE(hdrs));
	hl = http1_parse_request(data, len, &lim, &h);
	if (hl == 0)
		return 0;
	if (hl < 0) {
		ac->closing = 1;
		adm_text(ac, http1_err_status(hl) ? http1_err_status(hl) : 400,
		         "Bad Request", "bad request\n");
		return 1;
	}
	if (h.flags & HTTP1_F_CHUNKED) {
		ac->closing = 1;
		adm_text(ac, 411, "Length Required", "length required\n");
		return 1;
	}
	if (h.flags & HTTP1_F_CONTENT_LENGTH) {
		if (h.content_length > ADMIN_BODY_MAX) {
			ac->closing = 1;
			adm_text(ac, 413, "Content Too Large", "too large\n");
			return 1;
		}
		blen = (size_t)h.content_length;
		if (len < (size_t)hl + blen)
			return 0;
	}
	if (!(h.flags & HTTP1_F_KEEP_ALIVE) || ac->a->px->draining)
		ac->closing = 1;
	adm_route(ac, &h, data + hl, blen);
	if (!ac->dead)
		ep_consume_in(&ac->ep, (size_t)hl + blen);
	return 1;
}

static void adm_io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
	struct adm_conn *ac = container_of(w, struct adm_conn, ep.io);
	struct proxy *px = ac->a->px;
	size_t room;
	char *dst;
	ssize_t n;

	if (ac->dead)
		return;
	if (revents & EV_WRITE) {
		n = ep_flush(ev, &ac->ep);
		if (n < 0) {
			adm_close(ac);
			return;
		}
		if (n > 0)
			return;
		if (ac->closing) {
			adm_close(ac);
			return;
		}
		loop_timer_arm(&px->loop, &ac->timer, ADMIN_IDLE_TIMEOUT_MS);
		if (adm_serve(ac))
			return;  /* a pipelined request; wait for the write */
		ep_want(ev, &ac->ep, EV_READ);
		return;
	}
	if (!(revents & EV_READ) || ep_out_pending(&ac->ep))
		return;
	room = buf_room(&ac->ep.in);
	if (room == 0) {
		ac->closing = 1;
		adm_text(ac, 431, "Request Header Fields Too Large",
		         "request too large\n");
		ep_want(ev, &ac->ep, EV_WRITE);
		return;
	}
	if (room > 4096)
		room = 4096;
	dst = buf_reserve(&ac->ep.in, room);
	if (!dst) {
		adm_close(ac);
		return;
	}
	n = ep_read(&ac->ep, dst, room);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		adm_close(ac);
		return;
	}
	buf_produce(&ac->ep.in, (size_t)n);
	if (buf_len(&ac->ep.in) == (size_t)n)
		loop_timer_arm(&px->loop, &ac->timer, ADMIN_HEAD_TIMEOUT_MS);
	if (adm_serve(ac) && !ac->dead)
		ep_want(ev, &ac->ep, EV_WRITE);
}

static void adm_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct adm_conn *ac = container_of(t, struct adm_conn, timer);

	(void)loop;
	adm_close(ac);
}
