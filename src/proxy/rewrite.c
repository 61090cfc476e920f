/*
 * rewrite: HTTP/1 head rewriting and the proxy's own responses (see
 * rewrite.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/util.h"
#include "proxy/rewrite.h"

struct rw_filter {
	const struct http1_head *h;
	unsigned flags;
	int drop_host;
};

static int rw_req_keep(void *arg, const struct http1_header *f)
{
	const struct rw_filter *rf = arg;

	if (http1_is_hop_by_hop(rf->h, f->name, f->name_len))
		return 0;
	if ((rf->flags & RW_INBOUND) &&
	    http1_name_is(f->name, f->name_len, RW_HDR_CLIENT_ID))
		return 0;
	if (rf->drop_host && http1_name_is(f->name, f->name_len, "host"))
		return 0;
	return 1;
}

static int rw_resp_keep(void *arg, const struct http1_header *f)
{
	const struct rw_filter *rf = arg;

	return !http1_is_hop_by_hop(rf->h, f->name, f->name_len);
}

/* The value of the first field <lname> of <h>, or NULL. */
static const struct http1_header *rw_field(const struct http1_head *h,
                                           const char *lname)
{
	size_t i;

	for (i = 0; i < h->nheaders; i++)
		if (http1_name_is(h->headers[i].name, h->headers[i].name_len,
		                  lname))
			return &h->headers[i];
	return NULL;
}

#define RW_HDR(n, v) ((struct http1_header){ n, v, sizeof(n) - 1, \
                                             strlen(v) })

int rewrite_request(struct buf *out, const struct http1_head *req,
                    unsigned flags, const char *host)
{
	struct http1_header extra[6];
	struct rw_filter rf = { req, flags, 0 };
	const struct http1_header *up;
	struct http1_head h = *req;
	size_t n = 0;

	h.version = 11;
	if (req->target_form == HTTP1_T_ABSOLUTE) {
		h.target = req->path_len ? req->path : "/";
		h.target_len = req->path_len ? req->path_len : 1;
		rf.drop_host = 1;
		extra[n++] = (struct http1_header){ "Host", req->authority, 4,
		                                    req->authority_len };
	} else if (!req->host_count && host) {
		extra[n++] = RW_HDR("Host", host);
	}
	if (flags & RW_CHUNKED)
		extra[n++] = RW_HDR("Transfer-Encoding", "chunked");
	if (flags & RW_UPGRADE) {
		up = rw_field(req, "upgrade");
		if (up)
			extra[n++] = (struct http1_header){
				"Upgrade", up->value, 7, up->value_len };
	}
	if ((flags & RW_TE_TRAILERS) && !(flags & RW_UPGRADE)) {
		extra[n++] = RW_HDR("TE", "trailers");
		extra[n++] = RW_HDR("Connection", "te");
	} else if (flags & RW_UPGRADE) {
		extra[n++] = RW_HDR("Connection", "upgrade");
	}
	return http1_write_request(out, &h, rw_req_keep, &rf, extra, n);
}

int rewrite_response(struct buf *out, const struct http1_head *resp,
                     unsigned flags)
{
	struct http1_header extra[4];
	struct rw_filter rf = { resp, flags, 0 };
	const struct http1_header *up;
	struct http1_head h = *resp;
	size_t n = 0;

	h.version = 11;
	if (flags & RW_UPGRADE) {
		up = rw_field(resp, "upgrade");
		if (up)
			extra[n++] = (struct http1_header){
				"Upgrade", up->value, 7, up->value_len };
		extra[n++] = RW_HDR("Connection", "upgrade");
	} else if (flags & RW_CLOSE) {
		extra[n++] = RW_HDR("Connection", "close");
	} else if (flags & RW_KEEPALIVE10) {
		extra[n++] = RW_HDR("Connection", "keep-alive");
	}
	if (flags & RW_CHUNKED)
		extra[n++] = RW_HDR("Transfer-Encoding", "chunked");
	return http1_write_response(out, &h, rw_resp_keep, &rf, extra, n);
}

const char *rewrite_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "";
}

int rewrite_synth(struct buf *out, int status, const char *reason, int grpc,
                  int close)
{
	char why[256];
	size_t i;
	int rc;

	for (i = 0; reason[i] && i < sizeof(why) - 1; i++)
		why[i] = (reason[i] >= 0x20 && reason[i] < 0x7f) ? reason[i]
		                                                 : '?';
	why[i] = '\0';
	if (grpc >= 0)
		rc = buf_printf(out, "HTTP/1.1 200 OK\r\n"
		                "content-type: application/grpc\r\n"
		                "grpc-status: %d\r\ngrpc-message: %s\r\n"
		                RW_HDR_PROXY_ERROR ": %s\r\n"
		                "content-length: 0\r\n%s\r\n", grpc, why, why,
		                close ? "connection: close\r\n" : "");
	else
		rc = buf_printf(out, "HTTP/1.1 %d %s\r\n"
		                RW_HDR_PROXY_ERROR ": %s\r\n"
		                "content-length: 0\r\n%s\r\n", status,
		                rewrite_reason(status), why,
		                close ? "connection: close\r\n" : "");
	return rc < 0 ? -1 : 0;  /* buf_printf leaves <out> unchanged */
}

int rewrite_is_grpc(const struct http1_head *h)
{
	const struct http1_header *f = rw_field(h, "content-type");
	static const char g[] = "application/grpc";
	size_t n = sizeof(g) - 1;

	if (!f || f->value_len < n || strncasecmp(f->value, g, n) != 0)
		return 0;
	return f->value_len == n || f->value[n] == '+' || f->value[n] == ';';
}

int rewrite_grpc_status(const struct http1_head *h)
{
	const struct http1_header *f = rw_field(h, "grpc-status");
	int v = 0;
	size_t i;

	if (!f || f->value_len == 0 || f->value_len > 2)
		return -1;
	for (i = 0; i < f->value_len; i++) {
		if (f->value[i] < '0' || f->value[i] > '9')
			return -1;
		v = v * 10 + (f->value[i] - '0');
	}
	return v;
}

int rewrite_grpc_for_status(int status)
{
	return status == 504 ? RW_GRPC_DEADLINE : RW_GRPC_UNAVAILABLE;
}
