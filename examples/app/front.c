/*
 * front: role A, traffic to B and C and the combined front page.
 * See front.h for the contract.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "front.h"
#include "h1cli.h"

#define FRONT_TIMEOUT_MS 2000
#define FRONT_NPARTS 2
/* Bytes of each answer quoted in the page, once escaped. */
#define FRONT_QUOTE_MAX 400

struct front_part {
	struct front_page *page;
	int status;                 /* 0: no answer */
	size_t len;
	char body[H1CLI_BODY_MAX];
};

struct front_page {
	front_page_fn *done;        /* NULL once cancelled */
	void *arg;
	unsigned pending;           /* requests still running */
	struct loop_defer kick;     /* completes a page that asked nobody */
	struct front_part part[FRONT_NPARTS];
};

static const char *const front_names[FRONT_NPARTS] = { "b", "c" };

static struct {
	struct h1cli_upstream up[FRONT_NPARTS];
	int configured[FRONT_NPARTS];
	struct abc_target *target[FRONT_NPARTS];
	struct abc_pacer pacer;
} front;

/* Counts an answer from upstream <i>. */
static void front_count(unsigned i, int status, const char *body, size_t len)
{
	char why[H1CLI_BODY_MAX + 64];

	if (status)
		snprintf(why, sizeof(why), "GET /hello: %d", status);
	else
		snprintf(why, sizeof(why), "GET /hello: %.*s", (int)len, body);
	abc_target_count(front.target[i], status >= 200 && status < 300, why);
}

static void front_traffic_done(void *arg, int status, const char *body,
                               size_t len)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	front_count(i, status, body, len);
}

static void front_fire(void)
{
	uintptr_t i;

	for (i = 0; i < FRONT_NPARTS; i++) {
		if (!front.configured[i])
			continue;
		if (h1cli_get(&front.up[i], "/hello", FRONT_TIMEOUT_MS,
		              front_traffic_done, (void *)i) < 0)
			abc_target_count(front.target[i], 0,
			                 "too many requests in flight");
	}
}

/* Writes <s> as the inside of a JSON string (no trailing newline), cut at
 * <cap> - 1 bytes on a whole escape. Returns the length. */
static size_t front_json(char *out, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;
	unsigned char c;

	while (len && s[len - 1] == '\n')
		len--;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (cap - o < 2)
				break;
			out[o++] = (char)c;
		} else if (c == '"' || c == '\\') {
			if (cap - o < 3)
				break;
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			if (cap - o < 7)
				break;
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		}
	}
	out[o] = '\0';
	return o;
}

static void front_page_finish(struct front_page *p)
{
	char quoted[FRONT_NPARTS][FRONT_QUOTE_MAX];
	struct origin_resp r;
	int ok = 1;
	unsigned i;

	if (p->done) {
		memset(&r, 0, sizeof(r));
		for (i = 0; i < FRONT_NPARTS; i++) {
			front_json(quoted[i], sizeof(quoted[i]),
			           p->part[i].body, p->part[i].len);
			if (p->part[i].status < 200 || p->part[i].status > 299)
				ok = 0;
		}
		origin_fixed(&r, ok ? 200 : 502, "application/json",
		             "{\"service\":\"%s\","
		             "\"b\":{\"status\":%d,\"body\":\"%s\"},"
		             "\"c\":{\"status\":%d,\"body\":\"%s\"}}\n",
		             abc.name, p->part[0].status, quoted[0],
		             p->part[1].status, quoted[1]);
		p->done(p->arg, &r);
	}
	mem_free(p);
}

static void front_page_kick(void *arg)
{
	front_page_finish(arg);
}

static void front_part_done(void *arg, int status, const char *body,
                            size_t len)
{
	struct front_part *part = arg;
	struct front_page *p = part->page;
	unsigned i = (unsigned)(part - p->part);

	front_count(i, status, body, len);
	part->status = status;
	part->len = MIN(len, sizeof(part->body));
	memcpy(part->body, body, part->len);
	if (--p->pending == 0)
		front_page_finish(p);
}

/* Records a part that got no request. */
static void front_part_skip(struct front_part *part, const char *why)
{
	part->status = 0;
	part->len = (size_t)snprintf(part->body, sizeof(part->body), "%s", why);
}

struct front_page *front_page_start(front_page_fn *done, void *arg)
{
	struct front_page *p = mem_calloc(1, sizeof(*p));
	unsigned i;

	if (!p)
		return NULL;
	p->done = done;
	p->arg = arg;
	loop_defer_init(&p->kick, front_page_kick, p);
	for (i = 0; i < FRONT_NPARTS; i++) {
		p->part[i].page = p;
		if (!front.configured[i])
			front_part_skip(&p->part[i], "not configured");
		else if (h1cli_get(&front.up[i], "/hello", FRONT_TIMEOUT_MS,
		                   front_part_done, &p->part[i]) < 0)
			front_part_skip(&p->part[i],
			                "too many requests in flight");
		else
			p->pending++;
	}
	if (!p->pending)
		loop_defer(&abc.loop, &p->kick);
	return p;
}

void front_page_cancel(struct front_page *p)
{
	p->done = NULL;
	if (!p->pending) {
		loop_defer_cancel(&abc.loop, &p->kick);
		mem_free(p);
	}
}

int front_init(const char *b_url, const char *c_url, char *err,
               size_t errlen)
{
	const char *urls[FRONT_NPARTS] = { b_url, c_url };
	struct net_addr a;
	unsigned i;
	int any = 0;

	for (i = 0; i < FRONT_NPARTS; i++) {
		if (!urls[i])
			continue;
		if (net_parse_url(urls[i], &a, err, errlen) < 0)
			return -1;
		h1cli_init(&front.up[i], &a);
		front.configured[i] = 1;
		front.target[i] = abc_target_add(front_names[i]);
		any = 1;
	}
	if (any)
		abc_pacer_start(&front.pacer, front_fire);
	return 0;
}

void front_shutdown(void)
{
	unsigned i;

	abc_pacer_stop(&front.pacer);
	for (i = 0; i < FRONT_NPARTS; i++)
		if (front.configured[i])
			h1cli_close(&front.up[i]);
}
