/*
 * registry: the file registry (services, workloads, route profiles) read
 * from YAML or JSON, from one file or a directory of fragments. See
 * registry.h for the format and the contracts and docs/registry.md for the
 * user's view.
 *
 * IMPLEMENTATION NOTES
 *  - One schema walk for both formats. YAML events from libyaml's parser
 *    are turned into a compact node array (struct rg_ynode, laid out like
 *    core/json's tokens; libyaml's own document loader is about five times
 *    slower), JSON is parsed into core/json's tokens; the walk sees either
 *    only through the rg_* node interface below (an int handle: an index
 *    into one of the two arrays), so both formats give the same registry
 *    and the same messages.
 *  - YAML aliases and explicit tags are refused where they appear (no
 *    "billion laughs" expansion is possible); anchors are ignored.
 *  - Positions: libyaml marks (0-based, printed +1); for JSON the byte
 *    offset of a token is turned into line:col by a cursor that moves
 *    forward in document order (the walk is in document order, so computing
 *    every entry's line stays linear).
 *  - Memory: everything the registry holds is bump-allocated from its own
 *    list of big mem_alloc blocks (struct rg_arena), the struct registry
 *    itself included; the bus_msg destructor frees the list. Scratch data
 *    (decoded JSON strings, sort arrays) lives in a second arena freed when
 *    the parse ends.
 *  - Two stages. A file is parsed into a fragment (struct rg_frag: its
 *    services and workloads, validated, in file order, immutable and
 *    reference counted). Fragments are then assembled into a registry
 *    (rg_assemble): (ns, name) uniqueness over all of them, services
 *    sorted, every selector resolved. registry_parse is one fragment
 *    assembled; a directory is one fragment per file, and a change
 *    re-parses only the files whose stat changed and assembles again. A
 *    registry copies the service structs (its ports get their endpoints)
 *    and the workload structs (one array in union order; shared as is
 *    when there is one fragment) and points into the fragments for
 *    everything else, holding a reference on each.
 *  - Endpoint resolution does not compare every service with every
 *    workload, and assembling does not sort the workloads: a hash table
 *    maps each (ns, label key, label value) to the chain of workloads
 *    carrying it, built in one pass; a service looks up each selector
 *    label, walks the shortest chain and checks the remaining labels with
 *    a merge walk over the (key-sorted) label arrays. Workload uniqueness
 *    is a hash set too; only the services are sorted.
 *  - A directory watch reuses memory between assemblies: its scratch
 *    arena settles on one block, and the biggest block of the registry it
 *    built last comes back (rg_spare) when that registry is freed. Fresh
 *    memory costs a page fault per page and its release an munmap with a
 *    TLB shootdown: on the VMs measured that was most of an assembly.
 *  - Directory changes: inotify on the directory (IN_CLOSE_WRITE,
 *    IN_MOVED_TO/FROM, IN_DELETE, IN_ATTRIB), read to the end on each
 *    wake-up so that a burst is one rescan; a rescan is one readdir plus
 *    one fstatat per fragment. The poll timer rescans too (file systems
 *    without inotify, writers that never close).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "controller/registry.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/util.h"

#define RG_LOG_MODULE "controller.registry"

#define RG_BLOCK_MIN (64u << 10)
#define RG_BLOCK_MAX (4u << 20)
#define RG_ALIGN 16u

#define RG_ROUTE_NAME_MAX 256
#define RG_PATH_MAX 2048
#define RG_METHOD_MAX 32
#define RG_RETRY_MIN_MAX 1000000u
#define RG_TTL_MAX_MS (3600u * 1000u)

/* ---- arena ---- */

struct rg_block {
	struct rg_block *next;
	size_t used;
	size_t cap;
	size_t pad_;                   /* keeps data 16-byte aligned */
	unsigned char data[];
};

struct rg_arena {
	struct rg_block *head;
	size_t next_cap;
};

static void rg_blocks_free(struct rg_block *b)
{
	while (b) {
		struct rg_block *next = b->next;

		mem_free(b);
		b = next;
	}
}

/* <size> bytes, 16-byte aligned, not zeroed; NULL when out of memory. Large
 * requests get a block of their own behind the current one, so the room
 * left in the current block is not wasted. */
static void *rg_alloc(struct rg_arena *a, size_t size)
{
	struct rg_block *b = a->head;
	size_t need = (size + RG_ALIGN - 1) & ~(size_t)(RG_ALIGN - 1);
	void *p;

	if (need < size || need > SIZE_MAX - sizeof(*b))
		return NULL;
	if (need == 0)
		need = RG_ALIGN;
	if (b && b->cap - b->used >= need) {
		p = b->data + b->used;
		b->used += need;
		return p;
	}
	if (!a->next_cap)
		a->next_cap = RG_BLOCK_MIN;
	if (b && need > a->next_cap / 4) {
		struct rg_block *big = mem_alloc(sizeof(*big) + need);

		if (!big)
			return NULL;
		big->cap = big->used = need;
		big->next = b->next;
		b->next = big;
		return big->data;
	}
	b = mem_alloc(sizeof(*b) + MAX(need, a->next_cap));
	if (!b)
		return NULL;
	b->cap = MAX(need, a->next_cap);
	b->used = need;
	b->next = a->head;
	a->head = b;
	if (a->next_cap < RG_BLOCK_MAX)
		a->next_cap *= 2;
	return b->data;
}

/* Empties <a> for reuse, keeping one block as big as all it held, so
 * that a scratch arena used again and again (the directory watch's
 * assembly) settles on one block: no page faults, no munmap per use. */
static void rg_arena_recycle(struct rg_arena *a)
{
	struct rg_block *b;
	size_t total = 0;

	for (b = a->head; b; b = b->next)
		total += b->used;
	if (a->head && !a->head->next && a->head->cap >= total) {
		a->head->used = 0;
		return;
	}
	rg_blocks_free(a->head);
	a->head = NULL;
	a->next_cap = RG_BLOCK_MIN;
	total = (total + RG_BLOCK_MIN - 1) & ~(size_t)(RG_BLOCK_MIN - 1);
	if (!total || total > SIZE_MAX - sizeof(*b))
		return;
	b = mem_alloc(sizeof(*b) + total);
	if (!b)
		return;
	b->cap = total;
	b->used = 0;
	b->next = NULL;
	a->head = b;
}

/* Zeroed array of <n> objects of <size> bytes; NULL on overflow or OOM. */
static void *rg_calloc(struct rg_arena *a, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = rg_alloc(a, n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

/* ---- fragments ---- */

/* Where an entry's name is, for messages (1-based). */
struct rg_pos {
	uint32_t line, col;
};

/*
 * One parsed file: its services and workloads in file order, validated but
 * not resolved (ports have no endpoints) and not checked for (ns, name)
 * uniqueness; both happen when fragments are assembled into a registry.
 * Immutable once rg_frag_parse returns it; reference counted (registries
 * built from it hold a reference, so their strings, labels, routes and
 * addresses can point into it). Lives in its own block list, like a
 * registry.
 */
struct rg_frag {
	unsigned refs;
	const char *path;                 /* for messages */
	struct registry_service *services;
	size_t nservices;
	struct registry_workload *workloads;
	size_t nworkloads;
	struct rg_pos *spos, *wpos;       /* the name of each entry */
	struct rg_block *blocks;
};

static struct rg_frag *rg_frag_ref(struct rg_frag *f)
{
	f->refs++;
	return f;
}

static void rg_frag_unref(struct rg_frag *f)
{
	if (f && --f->refs == 0)
		rg_blocks_free(f->blocks);   /* f lives in one of them */
}

/* The fragments a registry shares (in its own arena). */
struct rg_parts {
	size_t n;
	int recycle;            /* built by a directory watch */
	struct rg_frag *f[];
};

/*
 * The biggest block of the last registry a directory watch built and that
 * was freed, kept for the next assembly: a watch builds registries of about
 * the same size again and again, and reusing the memory saves the page
 * faults of a fresh block and the munmap of the old one (on a VM, most of
 * an assembly's cost). Only while a directory watch runs (rg_recycle_users
 * > 0); the process is single-threaded, as bus_msg references are.
 */
static struct rg_block *rg_spare;
static unsigned rg_recycle_users;

#define RG_SPARE_MIN (256u << 10)

/* Frees the block list <b>, keeping its biggest block as the spare when
 * <recycle> and it beats the current one. */
static void rg_blocks_release(struct rg_block *b, int recycle)
{
	struct rg_block *keep = NULL, *x;

	if (recycle && rg_recycle_users)
		for (x = b; x; x = x->next)
			if (x->cap >= RG_SPARE_MIN &&
			    (!keep || x->cap > keep->cap))
				keep = x;
	if (keep && rg_spare && rg_spare->cap >= keep->cap)
		keep = NULL;
	while (b) {
		x = b->next;
		if (b == keep) {
			mem_free(rg_spare);
			rg_spare = b;
			b->next = NULL;
		} else {
			mem_free(b);
		}
		b = x;
	}
}

/* ---- parse context and the node interface ---- */

enum rg_kind {
	RG_NONE = 0,
	RG_MAP,
	RG_SEQ,
	RG_SCALAR,
};

/* Scalar flavours: what the text was written as. */
enum rg_sty {
	RG_S_STR = 1,     /* quoted (YAML) or a JSON string */
	RG_S_PLAIN,       /* YAML plain scalar: a string or a number */
	RG_S_NUM,         /* JSON number */
	RG_S_TRUE,
	RG_S_FALSE,
	RG_S_NULL,
};

struct rg_ctx {
	const char *file;
	int json;
	/* YAML */
	struct rg_ynode *yn;          /* nodes in document order, root 0 */
	size_t nyn, capyn;
	/* JSON */
	struct json_doc *jdoc;
	const char *text;
	size_t len;
	size_t cur_off;               /* line:col cursor */
	unsigned cur_line, cur_col;
	/* output */
	struct rg_arena out;
	struct rg_arena tmp;
	struct rg_frag *f;            /* parsing: the fragment */
	struct registry *r;           /* assembling: the registry */
	char *err;
	size_t errlen;
	int failed;
};

/*
 * A YAML node. A collection's first child follows it; children are linked
 * by <next>; a mapping's children alternate key, value.
 */
struct rg_ynode {
	uint8_t kind;              /* enum rg_kind */
	uint8_t plain;             /* scalar: plain style (not quoted) */
	uint32_t line, col;        /* 1-based */
	uint32_t count;            /* items, or pairs of a mapping */
	int32_t next;              /* next sibling, -1 */
	int32_t last;              /* building: last child, -1 */
	const char *s;             /* scalar text, NUL-terminated (scratch) */
	size_t len;
};

#define RG_YAML_DEPTH 64

static struct rg_ynode *rg_ynode(struct rg_ctx *c, int n)
{
	return n >= 0 && (size_t)n < c->nyn ? &c->yn[n] : NULL;
}

static int rg_kind(struct rg_ctx *c, int n)
{
	if (c->json) {
		switch (json_type(c->jdoc, n)) {
		case JSON_OBJECT: return RG_MAP;
		case JSON_ARRAY: return RG_SEQ;
		case JSON_NONE: return RG_NONE;
		default: return RG_SCALAR;
		}
	} else {
		struct rg_ynode *y = rg_ynode(c, n);

		return y ? y->kind : RG_NONE;
	}
}

/* Line and column (1-based) of byte <off> of the JSON text. */
static void rg_json_pos(struct rg_ctx *c, size_t off, unsigned *line,
                        unsigned *col)
{
	if (off > c->len)
		off = c->len;
	if (off < c->cur_off) {
		c->cur_off = 0;
		c->cur_line = 1;
		c->cur_col = 1;
	}
	while (c->cur_off < off) {
		if (c->text[c->cur_off++] == '\n') {
			c->cur_line++;
			c->cur_col = 1;
		} else {
			c->cur_col++;
		}
	}
	*line = c->cur_line;
	*col = c->cur_col;
}

/* Position of node <n> (a string: its opening quote). */
static void rg_pos(struct rg_ctx *c, int n, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	if (c->json) {
		const struct json_tok *t = json_tok(c->jdoc, n);
		size_t off;

		if (!t)
			return;
		off = t->start;
		if (t->type == JSON_STRING && off > 0)
			off--;
		rg_json_pos(c, off, line, col);
	} else {
		struct rg_ynode *y = rg_ynode(c, n);

		if (!y)
			return;
		*line = y->line;
		*col = y->col;
	}
}

static unsigned rg_line(struct rg_ctx *c, int n)
{
	unsigned line, col;

	rg_pos(c, n, &line, &col);
	return line;
}

/* Records the first error, "FILE:LINE:COL: message"; returns -1. */
static int rg_fail_at(struct rg_ctx *c, unsigned line, unsigned col,
                      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int rg_fail_at(struct rg_ctx *c, unsigned line, unsigned col,
                      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return -1;
	c->failed = 1;
	if (!c->err || !c->errlen)
		return -1;
	n = snprintf(c->err, c->errlen, "%s:%u:%u: ", c->file, line, col);
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

#define rg_fail(c, n, ...) __extension__ ({                                  \
	unsigned rg_l_, rg_c_;                                              \
	rg_pos((c), (n), &rg_l_, &rg_c_);                                   \
	rg_fail_at((c), rg_l_, rg_c_, __VA_ARGS__);                         \
})

static int rg_oom(struct rg_ctx *c)
{
	if (!c->failed && c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s:1:1: out of memory", c->file);
	c->failed = 1;
	return -1;
}

/* Printable, bounded rendering of user text for messages. */
struct rg_q {
	char s[72];
};

static const char *rg_quote(struct rg_q *q, struct str s)
{
	size_t i, o = 0;

	for (i = 0; i < s.len && o < sizeof(q->s) - 4; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		q->s[o++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch
		                                                   : '?';
	}
	if (i < s.len) {
		q->s[o++] = '.';
		q->s[o++] = '.';
		q->s[o++] = '.';
	}
	q->s[o] = '\0';
	return q->s;
}

/* Number of items (sequence) or pairs (mapping) of <n>. */
static size_t rg_count(struct rg_ctx *c, int n)
{
	if (c->json) {
		const struct json_tok *t = json_tok(c->jdoc, n);

		return t ? t->size : 0;
	} else {
		struct rg_ynode *y = rg_ynode(c, n);

		return y ? y->count : 0;
	}
}

/* Iterator over a mapping's pairs or a sequence's items. */
struct rg_it {
	int node;
	int cur;        /* current key or element, -1 at the end */
};

static void rg_it_init(struct rg_ctx *c, int n, struct rg_it *it)
{
	it->node = n;
	if (c->json)
		it->cur = json_first(c->jdoc, n);
	else
		it->cur = rg_count(c, n) ? n + 1 : -1;
}

/* Next pair (mapping: <*k>, <*v>) or item (sequence: <*v>, <*k> = -1).
 * Returns 1, or 0 at the end. */
static int rg_it_next(struct rg_ctx *c, struct rg_it *it, int *k, int *v)
{
	if (c->json) {
		if (it->cur < 0)
			return 0;
		if (json_type(c->jdoc, it->node) == JSON_OBJECT) {
			*k = it->cur;
			*v = it->cur + 1;
		} else {
			*k = -1;
			*v = it->cur;
		}
		it->cur = json_next(c->jdoc, it->cur);
		return 1;
	} else {
		struct rg_ynode *y = rg_ynode(c, it->node);

		if (!y || it->cur < 0)
			return 0;
		if (y->kind == RG_MAP) {
			*k = it->cur;
			*v = c->yn[it->cur].next;
			it->cur = c->yn[*v].next;
		} else {
			*k = -1;
			*v = it->cur;
			it->cur = c->yn[it->cur].next;
		}
		return 1;
	}
}

/* YAML 1.2 core schema words for a plain scalar. */
static int rg_yaml_plain_sty(struct str s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *const trues[] = { "true", "True", "TRUE" };
	static const char *const falses[] = { "false", "False", "FALSE" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(nulls); i++)
		if (str_eq_cstr(s, nulls[i]))
			return RG_S_NULL;
	for (i = 0; i < ARRAY_SIZE(trues); i++)
		if (str_eq_cstr(s, trues[i]))
			return RG_S_TRUE;
	for (i = 0; i < ARRAY_SIZE(falses); i++)
		if (str_eq_cstr(s, falses[i]))
			return RG_S_FALSE;
	return RG_S_PLAIN;
}

/*
 * The text and flavour of scalar <n>. The text is valid until the parse
 * ends (JSON strings with escapes are decoded into the scratch arena).
 * Returns 0, or -1 (error recorded) when <n> is not a scalar or the string
 * holds a NUL byte.
 */
static int rg_scalar(struct rg_ctx *c, int n, int *sty, struct str *s)
{
	if (c->json) {
		const struct json_tok *t = json_tok(c->jdoc, n);

		if (!t)
			return rg_fail(c, n, "expected a value");
		switch (t->type) {
		case JSON_STRING:
			*sty = RG_S_STR;
			if (t->flags & JSON_TF_ESC) {
				ssize_t len = json_str_unescape(c->jdoc, n,
				                                NULL, 0);
				char *p;

				if (len < 0)
					return rg_fail(c, n, "bad string");
				p = rg_alloc(&c->tmp, (size_t)len + 1);
				if (!p)
					return rg_oom(c);
				if (json_str_unescape(c->jdoc, n, p,
				                      (size_t)len + 1) != len)
					return rg_fail(c, n, "bad string");
				*s = str_make(p, (size_t)len);
			} else {
				*s = str_make(c->text + t->start,
				              t->end - t->start);
			}
			break;
		case JSON_NUMBER:
			*sty = RG_S_NUM;
			*s = str_make(c->text + t->start, t->end - t->start);
			break;
		case JSON_TRUE:
		case JSON_FALSE:
		case JSON_NULL:
			*sty = t->type == JSON_TRUE ? RG_S_TRUE :
			       t->type == JSON_FALSE ? RG_S_FALSE : RG_S_NULL;
			*s = str_make(c->text + t->start, t->end - t->start);
			break;
		default:
			return rg_fail(c, n, "expected a scalar, not a %s",
			               t->type == JSON_OBJECT ? "mapping"
			                                      : "sequence");
		}
	} else {
		struct rg_ynode *y = rg_ynode(c, n);

		if (!y || y->kind != RG_SCALAR)
			return rg_fail(c, n, "expected a scalar, not a %s",
			               y && y->kind == RG_MAP ?
			               "mapping" : "sequence");
		*s = str_make(y->s, y->len);
		*sty = y->plain ? rg_yaml_plain_sty(*s) : RG_S_STR;
	}
	if (s->len && memchr(s->p, '\0', s->len))
		return rg_fail(c, n, "string holds a NUL byte");
	return 0;
}

static int rg_is_null(struct rg_ctx *c, int n)
{
	int sty;
	struct str s;

	if (rg_kind(c, n) != RG_SCALAR)
		return 0;
	if (c->json)
		return json_type(c->jdoc, n) == JSON_NULL;
	return rg_scalar(c, n, &sty, &s) == 0 && sty == RG_S_NULL;
}

/* A string value: a quoted string, a JSON string or a YAML plain scalar
 * that is not null or a boolean. */
static int rg_get_str(struct rg_ctx *c, int n, const char *what,
                      struct str *out)
{
	int sty;

	if (rg_kind(c, n) != RG_SCALAR)
		return rg_fail(c, n, "%s: expected a string", what);
	if (rg_scalar(c, n, &sty, out) < 0)
		return -1;
	if (sty != RG_S_STR && sty != RG_S_PLAIN)
		return rg_fail(c, n, "%s: expected a string", what);
	return 0;
}

/* An unsigned integer in [lo, hi] written as a number (not quoted). */
static int rg_get_uint(struct rg_ctx *c, int n, const char *what,
                       uint64_t lo, uint64_t hi, uint64_t *out)
{
	struct str s;
	int sty;
	uint64_t v;

	if (rg_kind(c, n) != RG_SCALAR)
		goto bad;
	if (rg_scalar(c, n, &sty, &s) < 0)
		return -1;
	if ((sty != RG_S_PLAIN && sty != RG_S_NUM) || str_to_u64(s, &v) < 0 ||
	    v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	return rg_fail(c, n, "%s must be an integer between %llu and %llu",
	               what, (unsigned long long)lo, (unsigned long long)hi);
}

static int rg_get_bool(struct rg_ctx *c, int n, const char *what, int *out)
{
	struct str s;
	int sty;

	if (rg_kind(c, n) != RG_SCALAR)
		return rg_fail(c, n, "%s must be true or false", what);
	if (rg_scalar(c, n, &sty, &s) < 0)
		return -1;
	if (sty != RG_S_TRUE && sty != RG_S_FALSE)
		return rg_fail(c, n, "%s must be true or false", what);
	*out = sty == RG_S_TRUE;
	return 0;
}

static int rg_get_duration(struct rg_ctx *c, int n, const char *what,
                           uint64_t *out)
{
	struct str s;
	struct rg_q q;
	int sty;

	if (rg_kind(c, n) != RG_SCALAR)
		return rg_fail(c, n, "%s: expected a duration", what);
	if (rg_scalar(c, n, &sty, &s) < 0)
		return -1;
	if ((sty != RG_S_STR && sty != RG_S_PLAIN && sty != RG_S_NUM) ||
	    str_to_duration_ms(s, out) < 0)
		return rg_fail(c, n, "%s: invalid duration \"%s\" "
		               "(one number and a unit: 10s, 250ms, 1m)",
		               what, rg_quote(&q, s));
	return 0;
}

/*
 * A ratio 0..1 as decimal text ("0.2", "1", "1.0", ".5"); no exponent.
 * Parsed by hand so that no locale and no binary rounding of the text is
 * involved beyond the final float.
 */
static int rg_get_ratio(struct rg_ctx *c, int n, const char *what,
                        float *out)
{
	struct str s;
	int sty, one = 0, digits = 0;
	uint64_t frac = 0, scale = 1;
	size_t i = 0;

	if (rg_kind(c, n) != RG_SCALAR)
		goto bad;
	if (rg_scalar(c, n, &sty, &s) < 0)
		return -1;
	if (sty != RG_S_PLAIN && sty != RG_S_NUM)
		goto bad;
	while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9') {
		if (s.p[i] != '0')
			one = one ? 2 : 1;     /* 2: > 1 */
		if (one && s.p[i] != '1')
			goto bad;
		digits++;
		i++;
	}
	if (one > 1)
		goto bad;
	if (i < s.len) {
		if (s.p[i++] != '.')
			goto bad;
		if (i == s.len && !digits)
			goto bad;
		for (; i < s.len; i++) {
			if (s.p[i] < '0' || s.p[i] > '9')
				goto bad;
			if (one && s.p[i] != '0')
				goto bad;
			if (scale < 1000000000u) {
				frac = frac * 10 + (uint64_t)(s.p[i] - '0');
				scale *= 10;
			}
			digits++;
		}
	}
	if (!digits)
		goto bad;
	*out = one ? 1.0f : (float)((double)frac / (double)scale);
	return 0;
bad:
	return rg_fail(c, n, "%s must be a decimal number between 0 and 1",
	               what);
}

/* NUL-terminated copy of <s> in the registry. */
static const char *rg_strdup(struct rg_ctx *c, struct str s)
{
	char *p = rg_alloc(&c->out, s.len + 1);

	if (!p) {
		rg_oom(c);
		return NULL;
	}
	if (s.len)
		memcpy(p, s.p, s.len);
	p[s.len] = '\0';
	return p;
}

/* RFC 1123 label, lower case: [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63. */
static int rg_dns_label(struct str s, int icase)
{
	size_t i;

	if (s.len == 0 || s.len > 63)
		return 0;
	for (i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		if (icase && ch >= 'A' && ch <= 'Z')
			continue;
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			continue;
		if (ch == '-' && i > 0 && i + 1 < s.len)
			continue;
		return 0;
	}
	return 1;
}

/* A DNS-label value: string, validated, copied. */
static int rg_get_label_name(struct rg_ctx *c, int n, const char *what,
                             const char **out)
{
	struct str s;
	struct rg_q q;

	if (rg_get_str(c, n, what, &s) < 0)
		return -1;
	if (!rg_dns_label(s, 0))
		return rg_fail(c, n, "invalid %s \"%s\": must be a DNS label "
		               "(a-z, 0-9 and '-', at most 63 characters)",
		               what, rg_quote(&q, s));
	*out = rg_strdup(c, s);
	return *out ? 0 : -1;
}

/* Kubernetes label name part: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?,
 * at most 63 characters. */
static int rg_k8s_name(struct str s)
{
	size_t i;

	if (s.len == 0 || s.len > 63)
		return 0;
	for (i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];
		int alnum = (ch >= 'a' && ch <= 'z') ||
		            (ch >= 'A' && ch <= 'Z') ||
		            (ch >= '0' && ch <= '9');

		if (alnum)
			continue;
		if ((ch == '-' || ch == '_' || ch == '.') && i > 0 &&
		    i + 1 < s.len)
			continue;
		return 0;
	}
	return 1;
}

/* DNS subdomain (lower-case RFC 1123 labels joined by dots), <= 253. */
static int rg_dns_subdomain(struct str s)
{
	struct str rest = s, tok;

	if (s.len == 0 || s.len > 253)
		return 0;
	while (str_next_token(&rest, '.', &tok))
		if (!rg_dns_label(tok, 0))
			return 0;
	return 1;
}

static int rg_label_key_ok(struct str k)
{
	ssize_t slash = str_find_char(k, '/');

	if (slash < 0)
		return rg_k8s_name(k);
	return rg_dns_subdomain(str_sub(k, 0, (size_t)slash)) &&
	       rg_k8s_name(str_sub(k, (size_t)slash + 1, k.len));
}

static int rg_label_value_ok(struct str v)
{
	return v.len == 0 || rg_k8s_name(v);
}

/* One label while a label map is read: the key node for messages. */
struct rg_tlabel {
	struct str key, value;
	int knode;
};

/*
 * A label map (workload labels or a service selector): at most
 * REGISTRY_MAX_LABELS entries, Kubernetes key and value syntax, no
 * duplicate key. Stored sorted by key.
 */
static int rg_labels(struct rg_ctx *c, int n, const char *what,
                     struct registry_label **out, size_t *nout)
{
	struct rg_tlabel tl[REGISTRY_MAX_LABELS];
	struct registry_label *lab;
	struct rg_it it;
	struct rg_q q;
	size_t cnt = 0, i, j;
	int k, v;

	*out = NULL;
	*nout = 0;
	if (rg_is_null(c, n))
		return 0;
	if (rg_kind(c, n) != RG_MAP)
		return rg_fail(c, n, "%s: expected a mapping of labels", what);
	if (rg_count(c, n) > REGISTRY_MAX_LABELS)
		return rg_fail(c, n, "%s: more than %d labels", what,
		               REGISTRY_MAX_LABELS);
	rg_it_init(c, n, &it);
	while (rg_it_next(c, &it, &k, &v)) {
		struct rg_tlabel t;

		if (rg_get_str(c, k, "label key", &t.key) < 0)
			return -1;
		if (!rg_label_key_ok(t.key))
			return rg_fail(c, k, "invalid label key \"%s\" "
			               "([prefix/]name, name at most 63 "
			               "characters of A-Z a-z 0-9 - _ .)",
			               rg_quote(&q, t.key));
		if (rg_get_str(c, v, "label value", &t.value) < 0)
			return -1;
		if (!rg_label_value_ok(t.value))
			return rg_fail(c, v, "invalid label value \"%s\" "
			               "(at most 63 characters of A-Z a-z "
			               "0-9 - _ ., alphanumeric at both ends)",
			               rg_quote(&q, t.value));
		t.knode = k;
		/* insertion sort by key, catching duplicates (n <= 64) */
		for (i = cnt; i > 0; i--) {
			struct str a = tl[i - 1].key;
			size_t m = MIN(a.len, t.key.len);
			int d = memcmp(a.p, t.key.p, m);

			if (d == 0 && a.len == t.key.len)
				return rg_fail(c, k, "duplicate label key "
				               "\"%s\"", rg_quote(&q, t.key));
			if (d < 0 || (d == 0 && a.len < t.key.len))
				break;
		}
		for (j = cnt; j > i; j--)
			tl[j] = tl[j - 1];
		tl[i] = t;
		cnt++;
	}
	if (!cnt)
		return 0;
	lab = rg_calloc(&c->out, cnt, sizeof(*lab));
	if (!lab)
		return rg_oom(c);
	for (i = 0; i < cnt; i++) {
		lab[i].key = rg_strdup(c, tl[i].key);
		lab[i].value = rg_strdup(c, tl[i].value);
		if (!lab[i].key || !lab[i].value)
			return -1;
	}
	*out = lab;
	*nout = cnt;
	return 0;
}

/*
 * Walks mapping <n> of keys <keys>: stores each value node in <vals>
 * (-1 for absent keys). Unknown and repeated keys are errors.
 */
static int rg_fields(struct rg_ctx *c, int n, const char *what,
                     const char *const *keys, size_t nkeys, int *vals)
{
	struct rg_it it;
	struct rg_q q;
	size_t i;
	int k, v;

	for (i = 0; i < nkeys; i++)
		vals[i] = -1;
	if (rg_kind(c, n) != RG_MAP)
		return rg_fail(c, n, "%s: expected a mapping", what);
	rg_it_init(c, n, &it);
	while (rg_it_next(c, &it, &k, &v)) {
		struct str key;
		char list[160];
		size_t o = 0;

		if (rg_get_str(c, k, "key", &key) < 0)
			return -1;
		for (i = 0; i < nkeys; i++)
			if (str_eq_cstr(key, keys[i]))
				break;
		if (i < nkeys) {
			if (vals[i] >= 0)
				return rg_fail(c, k, "duplicate key \"%s\" "
				               "in %s", keys[i], what);
			vals[i] = v;
			continue;
		}
		list[0] = '\0';
		for (i = 0; i < nkeys && o < sizeof(list); i++) {
			int m = snprintf(list + o, sizeof(list) - o, "%s%s",
			                 i ? ", " : "", keys[i]);

			if (m < 0)
				break;
			o += (size_t)m;
		}
		return rg_fail(c, k, "unknown key \"%s\" in %s (known: %s)",
		               rg_quote(&q, key), what, list);
	}
	return 0;
}

/* Sequence <n> (or null: empty) with at most <max> items; count in *cnt. */
static int rg_seq(struct rg_ctx *c, int n, const char *what, size_t max,
                  size_t *cnt)
{
	*cnt = 0;
	if (n < 0 || rg_is_null(c, n))
		return 0;
	if (rg_kind(c, n) != RG_SEQ)
		return rg_fail(c, n, "%s: expected a sequence", what);
	*cnt = rg_count(c, n);
	if (*cnt > max)
		return rg_fail(c, n, "%s: more than %zu entries", what, max);
	return 0;
}

/* ---- services ---- */

enum { PF_PORT, PF_TARGET, PF_PROTO, PF_N };
static const char *const rg_port_keys[] = {
	"port", "target_port", "protocol"
};

static int rg_port(struct rg_ctx *c, int n, struct registry_port *p)
{
	int f[PF_N];
	uint64_t v;
	struct str s;
	struct rg_q q;

	if (rg_fields(c, n, "port", rg_port_keys, PF_N, f) < 0)
		return -1;
	if (f[PF_PORT] < 0)
		return rg_fail(c, n, "port: missing required key \"port\"");
	if (rg_get_uint(c, f[PF_PORT], "port", 1, 65535, &v) < 0)
		return -1;
	p->port = (uint16_t)v;
	p->target_port = p->port;
	if (f[PF_TARGET] >= 0) {
		if (rg_get_uint(c, f[PF_TARGET], "target_port", 1, 65535,
		                &v) < 0)
			return -1;
		p->target_port = (uint16_t)v;
	}
	p->proto = REGISTRY_PROTO_HTTP;
	if (f[PF_PROTO] >= 0) {
		if (rg_get_str(c, f[PF_PROTO], "protocol", &s) < 0)
			return -1;
		if (str_eq_cstr(s, "http"))
			p->proto = REGISTRY_PROTO_HTTP;
		else if (str_eq_cstr(s, "grpc"))
			p->proto = REGISTRY_PROTO_GRPC;
		else if (str_eq_cstr(s, "opaque"))
			p->proto = REGISTRY_PROTO_OPAQUE;
		else
			return rg_fail(c, f[PF_PROTO], "unknown protocol "
			               "\"%s\" (http, grpc or opaque)",
			               rg_quote(&q, s));
	}
	return 0;
}

enum { BF_RATIO, BF_MIN, BF_TTL, BF_N };
static const char *const rg_budget_keys[] = {
	"ratio", "min_per_second", "ttl"
};

static int rg_budget(struct rg_ctx *c, int n, struct registry_service *s)
{
	int f[BF_N];
	uint64_t v;

	if (rg_fields(c, n, "retry_budget", rg_budget_keys, BF_N, f) < 0)
		return -1;
	if (f[BF_RATIO] >= 0 &&
	    rg_get_ratio(c, f[BF_RATIO], "ratio", &s->retry_ratio) < 0)
		return -1;
	if (f[BF_MIN] >= 0) {
		if (rg_get_uint(c, f[BF_MIN], "min_per_second", 0,
		                RG_RETRY_MIN_MAX, &v) < 0)
			return -1;
		s->retry_min_per_second = (uint32_t)v;
	}
	if (f[BF_TTL] >= 0) {
		if (rg_get_duration(c, f[BF_TTL], "ttl", &v) < 0)
			return -1;
		if (v == 0 || v > RG_TTL_MAX_MS)
			return rg_fail(c, f[BF_TTL], "ttl must be between "
			               "1ms and 1h");
		s->retry_ttl_ms = v;
	}
	return 0;
}

enum { RF_NAME, RF_METHOD, RF_PREFIX, RF_EXACT, RF_RETRY, RF_TIMEOUT, RF_N };
static const char *const rg_route_keys[] = {
	"name", "method", "path_prefix", "path_exact", "retryable", "timeout"
};

/* RFC 9110 tchar without lower-case letters. */
static int rg_method_ok(struct str m)
{
	size_t i;

	if (m.len == 0 || m.len > RG_METHOD_MAX)
		return 0;
	for (i = 0; i < m.len; i++) {
		unsigned char ch = (unsigned char)m.p[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    (ch && strchr("!#$%&'*+-.^_`|~", ch)))
			continue;
		return 0;
	}
	return 1;
}

/* '/' then visible ASCII without '?' and '#' (a path, not a query). */
static int rg_path_ok(struct str p)
{
	size_t i;

	if (p.len == 0 || p.len > RG_PATH_MAX || p.p[0] != '/')
		return 0;
	for (i = 0; i < p.len; i++) {
		unsigned char ch = (unsigned char)p.p[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#')
			return 0;
	}
	return 1;
}

static int rg_route(struct rg_ctx *c, int n, struct registry_route *rt,
                    int *name_node)
{
	int f[RF_N];
	struct str s;
	size_t i;
	int pk;

	if (rg_fields(c, n, "route", rg_route_keys, RF_N, f) < 0)
		return -1;
	if (f[RF_NAME] < 0)
		return rg_fail(c, n, "route: missing required key \"name\"");
	if (rg_get_str(c, f[RF_NAME], "route name", &s) < 0)
		return -1;
	if (s.len == 0 || s.len > RG_ROUTE_NAME_MAX)
		return rg_fail(c, f[RF_NAME], "route name must have 1 to %d "
		               "characters", RG_ROUTE_NAME_MAX);
	for (i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] < 0x20 ||
		    (unsigned char)s.p[i] >= 0x7f)
			return rg_fail(c, f[RF_NAME], "route name must be "
			               "printable ASCII");
	*name_node = f[RF_NAME];
	if (!(rt->name = rg_strdup(c, s)))
		return -1;
	if (f[RF_METHOD] >= 0) {
		if (rg_get_str(c, f[RF_METHOD], "method", &s) < 0)
			return -1;
		if (!rg_method_ok(s))
			return rg_fail(c, f[RF_METHOD], "method must be an "
			               "upper-case HTTP token (GET, POST, ...)");
		if (!(rt->method = rg_strdup(c, s)))
			return -1;
	}
	if (f[RF_PREFIX] >= 0 && f[RF_EXACT] >= 0)
		/* node ids and token indexes both grow in file order */
		return rg_fail(c, MAX(f[RF_EXACT], f[RF_PREFIX]),
		               "path_prefix and path_exact are exclusive");
	rt->path_kind = REGISTRY_PATH_ANY;
	pk = f[RF_PREFIX] >= 0 ? RF_PREFIX : f[RF_EXACT] >= 0 ? RF_EXACT : -1;
	if (pk >= 0) {
		if (rg_get_str(c, f[pk], rg_route_keys[pk], &s) < 0)
			return -1;
		if (!rg_path_ok(s))
			return rg_fail(c, f[pk], "%s must start with '/' and "
			               "hold visible ASCII without '?' or '#' "
			               "(at most %d bytes)", rg_route_keys[pk],
			               RG_PATH_MAX);
		rt->path_kind = pk == RF_PREFIX ? REGISTRY_PATH_PREFIX
		                                : REGISTRY_PATH_EXACT;
		if (!(rt->path = rg_strdup(c, s)))
			return -1;
	}
	if (f[RF_RETRY] >= 0 &&
	    rg_get_bool(c, f[RF_RETRY], "retryable", &rt->retryable) < 0)
		return -1;
	if (f[RF_TIMEOUT] >= 0 &&
	    rg_get_duration(c, f[RF_TIMEOUT], "timeout", &rt->timeout_ms) < 0)
		return -1;
	return 0;
}

enum {
	SF_NAME, SF_NS, SF_PORTS, SF_SELECTOR, SF_TIMEOUT, SF_BUDGET,
	SF_ROUTES, SF_N
};
static const char *const rg_service_keys[] = {
	"name", "namespace", "ports", "selector", "timeout", "retry_budget",
	"routes"
};

/* Reads one service entry; <*name_pos> gets its name's position. */
static int rg_service(struct rg_ctx *c, int n, struct registry_service *s,
                      struct rg_pos *name_pos)
{
	unsigned nl, nc;
	int f[SF_N], k, v;
	struct rg_it it;
	size_t cnt, i, j;
	int *rnames;

	if (rg_fields(c, n, "service", rg_service_keys, SF_N, f) < 0)
		return -1;
	s->line = rg_line(c, n);
	if (f[SF_NAME] < 0)
		return rg_fail(c, n, "service: missing required key \"name\"");
	if (rg_get_label_name(c, f[SF_NAME], "service name", &s->name) < 0)
		return -1;
	/* after the entry's line: the JSON line cursor only moves forward */
	rg_pos(c, f[SF_NAME], &nl, &nc);
	name_pos->line = nl;
	name_pos->col = nc;
	s->ns = "default";
	if (f[SF_NS] >= 0 &&
	    rg_get_label_name(c, f[SF_NS], "namespace", &s->ns) < 0)
		return -1;

	if (f[SF_PORTS] < 0)
		return rg_fail(c, n, "service \"%s\": missing required key "
		               "\"ports\"", s->name);
	if (rg_seq(c, f[SF_PORTS], "ports", REGISTRY_MAX_PORTS, &cnt) < 0)
		return -1;
	if (cnt == 0)
		return rg_fail(c, f[SF_PORTS], "service \"%s\": ports must "
		               "hold at least one port", s->name);
	s->ports = rg_calloc(&c->out, cnt, sizeof(*s->ports));
	if (!s->ports)
		return rg_oom(c);
	rg_it_init(c, f[SF_PORTS], &it);
	while (rg_it_next(c, &it, &k, &v)) {
		struct registry_port *p = &s->ports[s->nports];

		if (rg_port(c, v, p) < 0)
			return -1;
		for (i = 0; i < s->nports; i++)
			if (s->ports[i].port == p->port)
				return rg_fail(c, v, "duplicate port %u in "
				               "service \"%s\"",
				               (unsigned)p->port, s->name);
		s->nports++;
	}

	if (f[SF_SELECTOR] >= 0 &&
	    rg_labels(c, f[SF_SELECTOR], "selector", &s->selector,
	              &s->nselector) < 0)
		return -1;
	if (f[SF_TIMEOUT] >= 0 &&
	    rg_get_duration(c, f[SF_TIMEOUT], "timeout", &s->timeout_ms) < 0)
		return -1;
	s->retry_ratio = 0.2f;
	s->retry_min_per_second = 10;
	s->retry_ttl_ms = 10000;
	if (f[SF_BUDGET] >= 0 && !rg_is_null(c, f[SF_BUDGET]) &&
	    rg_budget(c, f[SF_BUDGET], s) < 0)
		return -1;

	if (rg_seq(c, f[SF_ROUTES], "routes", REGISTRY_MAX_ROUTES, &cnt) < 0)
		return -1;
	if (!cnt)
		return 0;
	s->routes = rg_calloc(&c->out, cnt, sizeof(*s->routes));
	rnames = rg_calloc(&c->tmp, cnt, sizeof(*rnames));
	if (!s->routes || !rnames)
		return rg_oom(c);
	rg_it_init(c, f[SF_ROUTES], &it);
	while (rg_it_next(c, &it, &k, &v)) {
		struct registry_route *rt = &s->routes[s->nroutes];

		if (rg_route(c, v, rt, &rnames[s->nroutes]) < 0)
			return -1;
		for (j = 0; j < s->nroutes; j++) {
			struct rg_q q;

			if (strcmp(s->routes[j].name, rt->name) == 0)
				return rg_fail(c, rnames[s->nroutes],
				               "duplicate route name \"%s\" in "
				               "service \"%s\"",
				               rg_quote(&q, str_from_cstr(
				                       rt->name)), s->name);
		}
		s->nroutes++;
	}
	return 0;
}

/* ---- workloads ---- */

enum {
	WF_NAME, WF_NS, WF_SA, WF_ADDRS, WF_LABELS, WF_WEIGHT, WF_MESHED, WF_N
};
static const char *const rg_workload_keys[] = {
	"name", "namespace", "service_account", "addresses", "labels",
	"weight", "meshed"
};

static int rg_addr(struct rg_ctx *c, int n, struct registry_addr *a)
{
	char buf[64];
	struct str s;
	struct rg_q q;

	if (rg_get_str(c, n, "address", &s) < 0)
		return -1;
	if (str_copy_cstr(buf, sizeof(buf), s) == 0) {
		if (inet_pton(AF_INET, buf, a->ip) == 1) {
			a->iplen = 4;
			return 0;
		}
		if (inet_pton(AF_INET6, buf, a->ip) == 1) {
			a->iplen = 16;
			return 0;
		}
	}
	return rg_fail(c, n, "invalid IP address \"%s\"", rg_quote(&q, s));
}

static int rg_workload(struct rg_ctx *c, int n, struct registry_workload *w,
                       struct rg_pos *name_pos)
{
	unsigned nl, nc;
	int f[WF_N], k, v;
	struct rg_it it;
	size_t cnt, i;
	uint64_t u;

	if (rg_fields(c, n, "workload", rg_workload_keys, WF_N, f) < 0)
		return -1;
	w->line = rg_line(c, n);
	if (f[WF_NAME] < 0)
		return rg_fail(c, n, "workload: missing required key "
		               "\"name\"");
	if (rg_get_label_name(c, f[WF_NAME], "workload name", &w->name) < 0)
		return -1;
	rg_pos(c, f[WF_NAME], &nl, &nc);
	name_pos->line = nl;
	name_pos->col = nc;
	w->ns = "default";
	if (f[WF_NS] >= 0 &&
	    rg_get_label_name(c, f[WF_NS], "namespace", &w->ns) < 0)
		return -1;
	w->service_account = "default";
	if (f[WF_SA] >= 0 &&
	    rg_get_label_name(c, f[WF_SA], "service_account",
	                      &w->service_account) < 0)
		return -1;
	if (f[WF_ADDRS] < 0)
		return rg_fail(c, n, "workload \"%s\": missing required key "
		               "\"addresses\"", w->name);
	if (rg_seq(c, f[WF_ADDRS], "addresses", REGISTRY_MAX_ADDRS, &cnt) < 0)
		return -1;
	if (cnt == 0)
		return rg_fail(c, f[WF_ADDRS], "workload \"%s\": addresses "
		               "must hold at least one address", w->name);
	w->addrs = rg_calloc(&c->out, cnt, sizeof(*w->addrs));
	if (!w->addrs)
		return rg_oom(c);
	rg_it_init(c, f[WF_ADDRS], &it);
	while (rg_it_next(c, &it, &k, &v)) {
		struct registry_addr *a = &w->addrs[w->naddrs];

		if (rg_addr(c, v, a) < 0)
			return -1;
		for (i = 0; i < w->naddrs; i++)
			if (w->addrs[i].iplen == a->iplen &&
			    memcmp(w->addrs[i].ip, a->ip, a->iplen) == 0)
				return rg_fail(c, v, "duplicate address in "
				               "workload \"%s\"", w->name);
		w->naddrs++;
	}
	if (f[WF_LABELS] >= 0 &&
	    rg_labels(c, f[WF_LABELS], "labels", &w->labels, &w->nlabels) < 0)
		return -1;
	w->weight = REGISTRY_WEIGHT_DEFAULT;
	if (f[WF_WEIGHT] >= 0) {
		if (rg_get_uint(c, f[WF_WEIGHT], "weight", 1,
		                REGISTRY_WEIGHT_MAX, &u) < 0)
			return -1;
		w->weight = (uint32_t)u;
	}
	w->meshed = 1;
	if (f[WF_MESHED] >= 0 &&
	    rg_get_bool(c, f[WF_MESHED], "meshed", &w->meshed) < 0)
		return -1;
	return 0;
}

/* ---- the document (one fragment) ---- */

static int rg_document(struct rg_ctx *c, int root)
{
	static const char *const keys[] = { "services", "workloads" };
	struct rg_frag *fr = c->f;
	int f[2], k, v;
	struct rg_it it;
	size_t ns, nw, i;

	if (rg_kind(c, root) != RG_MAP)
		return rg_fail(c, root, "the top level must be a mapping "
		               "with \"services\" and \"workloads\"");
	if (rg_fields(c, root, "the top level", keys, 2, f) < 0)
		return -1;
	if (rg_seq(c, f[0], "services", REGISTRY_MAX_SERVICES, &ns) < 0 ||
	    rg_seq(c, f[1], "workloads", REGISTRY_MAX_WORKLOADS, &nw) < 0)
		return -1;
	fr->services = rg_calloc(&c->out, ns ? ns : 1, sizeof(*fr->services));
	fr->spos = rg_calloc(&c->out, ns ? ns : 1, sizeof(*fr->spos));
	fr->workloads = rg_calloc(&c->out, nw ? nw : 1,
	                          sizeof(*fr->workloads));
	fr->wpos = rg_calloc(&c->out, nw ? nw : 1, sizeof(*fr->wpos));
	if (!fr->services || !fr->spos || !fr->workloads || !fr->wpos)
		return rg_oom(c);
	if (ns) {
		rg_it_init(c, f[0], &it);
		for (i = 0; rg_it_next(c, &it, &k, &v); i++)
			if (rg_service(c, v, &fr->services[i], &fr->spos[i])
			    < 0)
				return -1;
	}
	if (nw) {
		rg_it_init(c, f[1], &it);
		for (i = 0; rg_it_next(c, &it, &k, &v); i++)
			if (rg_workload(c, v, &fr->workloads[i],
			                &fr->wpos[i]) < 0)
				return -1;
	}
	fr->nservices = ns;
	fr->nworkloads = nw;
	return 0;
}

/* ---- assembling: uniqueness, sorting, endpoints ---- */

/* An entry (service or workload) of the union, for uniqueness checks. */
struct rg_ref {
	const char *ns;
	const char *name;
	uint32_t idx;          /* in union order */
	uint32_t frag;         /* index of its fragment */
	uint32_t line;         /* the entry's first line */
	struct rg_pos pos;     /* its name */
	const struct registry_service *s;   /* services only */
};

static int rg_ref_cmp(const void *a, const void *b)
{
	const struct rg_ref *x = a, *y = b;
	int d = strcmp(x->ns, y->ns);

	if (!d)
		d = strcmp(x->name, y->name);
	if (!d)
		d = x->idx < y->idx ? -1 : x->idx > y->idx;
	return d;
}

/* Reports <second> as a duplicate of <first> (earlier in the union):
 * "FILE:LINE:COL: duplicate ... (first at line N)" within one file,
 * "(first at OTHER:N)" across files. Returns -1. */
static int rg_dup(struct rg_ctx *c, struct rg_frag *const *frags,
                  const struct rg_ref *first, const struct rg_ref *second,
                  const char *what)
{
	c->file = frags[second->frag]->path;
	if (first->frag == second->frag)
		return rg_fail_at(c, second->pos.line, second->pos.col,
		                  "duplicate %s \"%s\" in namespace \"%s\" "
		                  "(first at line %u)", what, second->name,
		                  second->ns, (unsigned)first->line);
	return rg_fail_at(c, second->pos.line, second->pos.col,
	                  "duplicate %s \"%s\" in namespace \"%s\" (first at "
	                  "%s:%u)", what, second->name, second->ns,
	                  frags[first->frag]->path, (unsigned)first->line);
}

/* FNV-1a over NUL-terminated strings, each followed by a 0xff byte. */
static uint32_t rg_hash(uint32_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	h ^= 0xffu;
	return h * 16777619u;
}

#define RG_HASH_SEED 2166136261u

/* Smallest power of two >= 2 * <n> (at least 16). */
static size_t rg_hash_size(size_t n)
{
	size_t sz = 16;

	while (sz < 2 * n)
		sz *= 2;
	return sz;
}

/* Fails on the first workload whose (ns, name) an earlier one has: a hash
 * set over the union, linear in the number of workloads. <wfrag>, <wpos>:
 * each workload's fragment and name position. */
static int rg_unique_workloads(struct rg_ctx *c, struct rg_frag *const *frags,
                               const uint32_t *wfrag,
                               const struct rg_pos *wpos)
{
	struct registry *r = c->r;
	size_t sz = rg_hash_size(r->nworkloads), mask = sz - 1, i;
	uint32_t *tab = rg_calloc(&c->tmp, sz, sizeof(*tab));

	if (!tab)
		return rg_oom(c);
	for (i = 0; i < r->nworkloads; i++) {
		const struct registry_workload *w = &r->workloads[i];
		size_t slot = rg_hash(rg_hash(RG_HASH_SEED, w->ns), w->name) &
		              mask;

		for (; tab[slot]; slot = (slot + 1) & mask) {
			size_t oi = tab[slot] - 1;
			const struct registry_workload *o = &r->workloads[oi];
			struct rg_ref a, b;

			if (strcmp(o->name, w->name) || strcmp(o->ns, w->ns))
				continue;
			memset(&a, 0, sizeof(a));
			memset(&b, 0, sizeof(b));
			a.frag = wfrag[oi];
			a.line = o->line;
			b.frag = wfrag[i];
			b.ns = w->ns;
			b.name = w->name;
			b.pos = wpos[i];
			return rg_dup(c, frags, &a, &b, "workload");
		}
		tab[slot] = (uint32_t)i + 1;
	}
	return 0;
}

/*
 * The selector index: one slot per distinct (ns, label key, label value)
 * of the workloads, holding the chain of label entries (hence workloads)
 * that carry it. Built in one pass (no sort), so that assembling stays
 * linear in the size of the union.
 */
struct rg_lslot {
	const char *ns;
	const char *key;
	const char *value;
	uint32_t hash;
	uint32_t count;
	uint32_t head, tail;   /* label entries */
};

struct rg_lindex {
	uint32_t *tab;         /* slot index + 1, 0: empty */
	size_t mask;
	struct rg_lslot *slots;   /* dense, <nslots> used */
	uint32_t nslots;
	uint32_t *next;        /* per label entry: the next, UINT32_MAX */
	uint32_t *widx;        /* per label entry: its workload */
};

static uint32_t rg_lhash(const char *ns, const struct registry_label *l)
{
	return rg_hash(rg_hash(rg_hash(RG_HASH_SEED, ns), l->key), l->value);
}

/* The table position of (ns, l): holding its slot, or empty (0). */
static uint32_t *rg_lindex_find(struct rg_lindex *ix, const char *ns,
                                const struct registry_label *l, uint32_t h)
{
	size_t i = h & ix->mask;

	for (;; i = (i + 1) & ix->mask) {
		const struct rg_lslot *s;

		if (!ix->tab[i])
			return &ix->tab[i];
		s = &ix->slots[ix->tab[i] - 1];
		if (s->hash == h && strcmp(s->value, l->value) == 0 &&
		    strcmp(s->key, l->key) == 0 && strcmp(s->ns, ns) == 0)
			return &ix->tab[i];
	}
}

static int rg_lindex_build(struct rg_ctx *c, struct rg_lindex *ix)
{
	struct registry *r = c->r;
	size_t nix = 0, w, j;
	uint32_t e = 0;

	for (w = 0; w < r->nworkloads; w++)
		nix += r->workloads[w].nlabels;
	if (nix >= UINT32_MAX / 2)
		return rg_oom(c);
	ix->mask = rg_hash_size(nix) - 1;
	ix->nslots = 0;
	ix->tab = rg_calloc(&c->tmp, ix->mask + 1, sizeof(*ix->tab));
	/* not zeroed: only the slots in use are touched */
	ix->slots = rg_alloc(&c->tmp, (nix ? nix : 1) * sizeof(*ix->slots));
	ix->next = rg_alloc(&c->tmp, (nix ? nix : 1) * sizeof(*ix->next));
	ix->widx = rg_alloc(&c->tmp, (nix ? nix : 1) * sizeof(*ix->widx));
	if (!ix->tab || !ix->slots || !ix->next || !ix->widx)
		return rg_oom(c);
	for (w = 0; w < r->nworkloads; w++) {
		const struct registry_workload *wl = &r->workloads[w];

		for (j = 0; j < wl->nlabels; j++, e++) {
			const struct registry_label *l = &wl->labels[j];
			uint32_t h = rg_lhash(wl->ns, l);
			uint32_t *pos = rg_lindex_find(ix, wl->ns, l, h);
			struct rg_lslot *s;

			ix->widx[e] = (uint32_t)w;
			ix->next[e] = UINT32_MAX;
			if (!*pos) {
				s = &ix->slots[ix->nslots++];
				*pos = ix->nslots;
				s->ns = wl->ns;
				s->key = l->key;
				s->value = l->value;
				s->hash = h;
				s->count = 0;
				s->head = e;
			} else {
				s = &ix->slots[*pos - 1];
				ix->next[s->tail] = e;
			}
			s->tail = e;
			s->count++;
		}
	}
	return 0;
}

/* 1 when the key-sorted <have> includes every label of key-sorted <want>. */
static int rg_labels_include(const struct registry_label *have, size_t nh,
                             const struct registry_label *want, size_t nw)
{
	size_t i = 0, j = 0;

	while (j < nw) {
		int d;

		if (i == nh)
			return 0;
		d = strcmp(have[i].key, want[j].key);
		if (d < 0) {
			i++;
			continue;
		}
		if (d > 0 || strcmp(have[i].value, want[j].value))
			return 0;
		i++;
		j++;
	}
	return 1;
}

/* A candidate endpoint address with the workload's union index. */
struct rg_cand {
	struct registry_addr a;
	uint32_t widx;
};

static int rg_cand_cmp(const void *x_, const void *y_)
{
	const struct rg_cand *x = x_, *y = y_;
	int d;

	if (x->a.iplen != y->a.iplen)
		return x->a.iplen < y->a.iplen ? -1 : 1;
	d = memcmp(x->a.ip, y->a.ip, x->a.iplen);
	if (!d)
		d = x->widx < y->widx ? -1 : x->widx > y->widx;
	return d;
}

/*
 * Gives every port of every service of c->r its endpoints. A service looks
 * up each selector label in the index, walks the shortest chain and checks
 * the remaining labels with a merge walk. <spos>, <sfile>: each (sorted)
 * service's name position and file, for the endpoint limit's message.
 */
static int rg_resolve(struct rg_ctx *c, const struct rg_pos *spos,
                      const char *const *sfile)
{
	struct registry *r = c->r;
	struct rg_lindex ix;
	struct rg_cand *cand = NULL;
	size_t i, j, capc = 0;
	int rc = -1;

	if (rg_lindex_build(c, &ix) < 0)
		return -1;
	for (i = 0; i < r->nservices; i++) {
		struct registry_service *s = &r->services[i];
		const struct rg_lslot *best = NULL;
		size_t ncand = 0, nuniq, p;
		uint32_t e;

		if (!s->nselector)
			continue;
		for (j = 0; j < s->nselector; j++) {
			const uint32_t *pos = rg_lindex_find(
				&ix, s->ns, &s->selector[j],
				rg_lhash(s->ns, &s->selector[j]));

			if (!*pos) {
				best = NULL;   /* no workload has this label */
				break;
			}
			if (!best || ix.slots[*pos - 1].count < best->count)
				best = &ix.slots[*pos - 1];
		}
		for (e = best ? best->head : UINT32_MAX;
		     e != UINT32_MAX; e = ix.next[e]) {
			const struct registry_workload *wl =
				&r->workloads[ix.widx[e]];
			size_t a;

			if (!rg_labels_include(wl->labels, wl->nlabels,
			                       s->selector, s->nselector))
				continue;
			if (ncand + wl->naddrs > capc) {
				size_t nc = MAX(capc * 2, ncand + wl->naddrs);
				struct rg_cand *t;

				nc = MAX(nc, (size_t)64);
				t = mem_realloc(cand, nc * sizeof(*cand));
				if (!t) {
					rg_oom(c);
					goto out;
				}
				cand = t;
				capc = nc;
			}
			for (a = 0; a < wl->naddrs; a++) {
				cand[ncand].a = wl->addrs[a];
				cand[ncand].widx = ix.widx[e];
				ncand++;
			}
		}
		if (!ncand)
			continue;
		qsort(cand, ncand, sizeof(*cand), rg_cand_cmp);
		nuniq = 1;
		for (j = 1; j < ncand; j++) {
			if (cand[j].a.iplen == cand[nuniq - 1].a.iplen &&
			    memcmp(cand[j].a.ip, cand[nuniq - 1].a.ip,
			           cand[j].a.iplen) == 0)
				continue;  /* same address: first workload */
			cand[nuniq++] = cand[j];
		}
		if (nuniq * s->nports > REGISTRY_MAX_ENDPOINTS -
		    MIN(r->nendpoints, (size_t)REGISTRY_MAX_ENDPOINTS)) {
			c->file = sfile[i];
			rg_fail_at(c, spos[i].line, spos[i].col, "too many "
			           "endpoints: more than %d over all service "
			           "ports", REGISTRY_MAX_ENDPOINTS);
			goto out;
		}
		for (p = 0; p < s->nports; p++) {
			struct registry_port *pt = &s->ports[p];

			pt->eps = rg_calloc(&c->out, nuniq, sizeof(*pt->eps));
			if (!pt->eps) {
				rg_oom(c);
				goto out;
			}
			for (j = 0; j < nuniq; j++) {
				struct registry_endpoint *ep = &pt->eps[j];

				memcpy(ep->ip, cand[j].a.ip, 16);
				ep->iplen = cand[j].a.iplen;
				ep->port = pt->target_port;
				ep->workload = &r->workloads[cand[j].widx];
			}
			pt->neps = nuniq;
			r->nendpoints += nuniq;
		}
	}
	rc = 0;
out:
	mem_free(cand);
	return rc;
}

static int rg_yaml_error(struct rg_ctx *c, yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return rg_oom(c);
	if (p->context)
		return rg_fail_at(c, (unsigned)p->problem_mark.line + 1,
		                  (unsigned)p->problem_mark.column + 1,
		                  "%s %s", p->problem ? p->problem :
		                  "YAML error", p->context);
	return rg_fail_at(c, (unsigned)p->problem_mark.line + 1,
	                  (unsigned)p->problem_mark.column + 1, "%s",
	                  p->problem ? p->problem : "YAML error");
}

/* Appends a node for event <e> under the open collection <parent> (-1 for
 * the root). Returns its index, or -1 (error recorded). */
static int rg_yaml_add(struct rg_ctx *c, const yaml_event_t *e, int kind,
                       int parent)
{
	struct rg_ynode *y;
	int n;

	if (c->nyn == c->capyn) {
		/* a first guess that real files rarely outgrow */
		size_t cap = c->capyn ? c->capyn * 2 : c->len / 8 + 64;
		struct rg_ynode *t;

		if (cap > INT32_MAX)
			return rg_fail_at(c, (unsigned)e->start_mark.line + 1,
			                  (unsigned)e->start_mark.column + 1,
			                  "too many YAML nodes");
		t = mem_realloc(c->yn, cap * sizeof(*t));
		if (!t)
			return rg_oom(c);
		c->yn = t;
		c->capyn = cap;
	}
	n = (int)c->nyn++;
	y = &c->yn[n];
	memset(y, 0, sizeof(*y));
	y->kind = (uint8_t)kind;
	y->line = (unsigned)e->start_mark.line + 1;
	y->col = (unsigned)e->start_mark.column + 1;
	y->next = -1;
	y->last = -1;
	if (parent >= 0) {
		struct rg_ynode *p = &c->yn[parent];

		if (p->last >= 0)
			c->yn[p->last].next = n;
		p->last = n;
		p->count++;
	}
	return n;
}

/*
 * Turns the event stream into c->yn. Refuses aliases, explicit tags, more
 * than one document, an empty stream and nesting deeper than
 * RG_YAML_DEPTH.
 */
static int rg_yaml_build(struct rg_ctx *c, yaml_parser_t *p)
{
	int stack[RG_YAML_DEPTH];
	int depth = 0, docs = 0, done = 0, rc = -1;
	yaml_event_t e;

	while (!done) {
		const char *tag = NULL;
		int n, parent = depth ? stack[depth - 1] : -1;
		unsigned line, col;

		if (!yaml_parser_parse(p, &e))
			return rg_yaml_error(c, p);
		line = (unsigned)e.start_mark.line + 1;
		col = (unsigned)e.start_mark.column + 1;
		switch (e.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++) {
				rg_fail_at(c, line, col, "more than one YAML "
				           "document");
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			rg_fail_at(c, line, col, "YAML aliases are not "
			           "supported");
			goto out;
		case YAML_SCALAR_EVENT:
			tag = (const char *)e.data.scalar.tag;
			if (tag)
				break;
			n = rg_yaml_add(c, &e, RG_SCALAR, parent);
			if (n < 0)
				goto out;
			c->yn[n].plain = e.data.scalar.style ==
			                 YAML_PLAIN_SCALAR_STYLE;
			c->yn[n].len = e.data.scalar.length;
			c->yn[n].s = rg_alloc(&c->tmp, e.data.scalar.length + 1);
			if (!c->yn[n].s) {
				rg_oom(c);
				goto out;
			}
			memcpy((char *)c->yn[n].s, e.data.scalar.value,
			       e.data.scalar.length);
			((char *)c->yn[n].s)[e.data.scalar.length] = '\0';
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			tag = (const char *)(e.type == YAML_SEQUENCE_START_EVENT
			      ? e.data.sequence_start.tag
			      : e.data.mapping_start.tag);
			if (tag)
				break;
			if (depth == RG_YAML_DEPTH) {
				rg_fail_at(c, line, col, "nesting deeper than "
				           "%d levels", RG_YAML_DEPTH);
				goto out;
			}
			n = rg_yaml_add(c, &e, e.type ==
			                YAML_SEQUENCE_START_EVENT ? RG_SEQ :
			                RG_MAP, parent);
			if (n < 0)
				goto out;
			stack[depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth) {
				struct rg_ynode *y = &c->yn[stack[--depth]];

				if (y->kind == RG_MAP)
					y->count /= 2;
			}
			break;
		default:
			break;
		}
		if (tag) {
			rg_fail_at(c, line, col, "YAML tags are not supported");
			goto out;
		}
		yaml_event_delete(&e);
	}
	if (!c->nyn)
		return rg_fail_at(c, 1, 1, "empty registry file (write \"{}\" "
		                  "for an empty registry)");
	return 0;
out:
	yaml_event_delete(&e);
	return rc;
}

static int rg_parse_yaml(struct rg_ctx *c, const char *text, size_t len)
{
	yaml_parser_t p;
	int rc;

	if (!yaml_parser_initialize(&p))
		return rg_oom(c);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	rc = rg_yaml_build(c, &p);
	yaml_parser_delete(&p);
	if (rc == 0)
		rc = rg_document(c, 0);
	MEM_FREE(&c->yn);
	c->nyn = c->capyn = 0;
	return rc;
}

static int rg_parse_json(struct rg_ctx *c, const char *text, size_t len)
{
	struct json_doc doc;
	struct json_err je;
	struct json_tok *toks;
	size_t cap = len / 8 + 64;
	int n, rc;

	for (;;) {
		toks = mem_alloc(cap * sizeof(*toks));
		if (!toks)
			return rg_oom(c);
		json_doc_init(&doc, toks, (uint32_t)cap);
		n = json_parse(&doc, text, len, &je);
		if (n != -JSON_E_NOTOKENS || cap >= len / 2 + 2)
			break;
		MEM_FREE(&toks);
		cap = len / 2 + 2;
	}
	if (n < 0) {
		rg_fail_at(c, je.line, je.col, "%s", je.reason);
		mem_free(toks);
		return -1;
	}
	c->jdoc = &doc;
	rc = rg_document(c, 0);
	c->jdoc = NULL;
	mem_free(toks);
	return rc;
}

static void registry_destroy(struct bus_msg *m)
{
	struct registry *r = container_of(m, struct registry, msg);
	struct rg_parts *parts = r->parts_;
	struct rg_block *blocks = r->blocks_;
	size_t i;

	/* r and parts live in the blocks: read both before freeing */
	for (i = 0; parts && i < parts->n; i++)
		rg_frag_unref(parts->f[i]);
	rg_blocks_release(blocks, parts && parts->recycle);
}

/* 1 when <file> ends in ".json" or the first non-blank byte is '{'. */
static int rg_is_json(const char *text, size_t len, const char *file)
{
	struct str f = str_from_cstr(file);
	size_t i;

	if (str_has_suffix(f, STR_LIT(".json")))
		return 1;
	for (i = 0; i < len; i++) {
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' ||
		    text[i] == '\n')
			continue;
		return text[i] == '{';
	}
	return 0;
}

/* First block size for an arena expected to hold about <need> bytes:
 * small files (a directory's fragments) must not each take a 64 KiB
 * block, nor leave half of a power of two unused (1,000 of them stay in
 * memory). */
static size_t rg_arena_guess(size_t need)
{
	need = (need + 512 + 255) & ~(size_t)255;
	return MAX(MIN(need, (size_t)RG_BLOCK_MIN), (size_t)1024);
}

/*
 * Parses one file into a fragment (see struct rg_frag): the schema is
 * checked, nothing is resolved. <file> is used in messages and kept (a
 * copy) as the fragment's path. Returns 0 with one reference in *<out>, or
 * -1 with "FILE:LINE:COL: message" in <err>.
 */
static int rg_frag_parse(const char *text, size_t len, const char *file,
                         int format, struct rg_frag **out, char *err,
                         size_t errlen)
{
	struct rg_ctx c;
	char *path;
	int rc;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (!text)
		text = "";
	c.file = file ? file : "-";
	c.err = err;
	c.errlen = errlen;
	c.text = text;
	c.len = len;
	c.cur_line = c.cur_col = 1;
	if (err && errlen)
		err[0] = '\0';
	if (len > REGISTRY_MAX_FILE)
		return rg_fail_at(&c, 1, 1, "file larger than %u bytes",
		                  REGISTRY_MAX_FILE);
	c.json = format == 'j' ||
	         (format != 'y' && rg_is_json(text, len, c.file));
	/* what a fragment keeps, measured: about 1.05 x its JSON text,
	 * 1.8 x its YAML text (YAML spends fewer bytes per value) */
	c.out.next_cap = rg_arena_guess(c.json ? len + len / 8 : 2 * len);
	c.tmp.next_cap = rg_arena_guess(len);
	c.f = rg_calloc(&c.out, 1, sizeof(*c.f));
	path = c.f ? (char *)rg_strdup(&c, str_from_cstr(c.file)) : NULL;
	if (!c.f || !path) {
		rg_blocks_free(c.out.head);
		return rg_oom(&c);
	}
	c.f->path = path;
	rc = c.json ? rg_parse_json(&c, text, len)
	            : rg_parse_yaml(&c, text, len);
	rg_blocks_free(c.tmp.head);
	if (rc < 0 || c.failed) {
		rg_blocks_free(c.out.head);
		return -1;
	}
	c.f->refs = 1;
	c.f->blocks = c.out.head;
	*out = c.f;
	return 0;
}

/*
 * Builds a registry from the union of <nf> fragments, in that order (the
 * union order of workloads and the tie-break of duplicate addresses):
 * checks (ns, name) uniqueness over all of them, sorts the services,
 * resolves every selector. The registry gets its own copies of the
 * service and workload structs and of the ports (with endpoints) and
 * shares everything else with the fragments, on which it takes a
 * reference. <name> names the whole in limit and out-of-memory messages.
 * Returns 0 with one reference in *<out>, or -1 with a message in <err>.
 */
static int rg_assemble(struct rg_frag *const *frags, size_t nf,
                       const char *name, struct rg_arena *scratch,
                       size_t *size_hint, struct registry **out, char *err,
                       size_t errlen)
{
	struct rg_ctx c;
	struct registry *r = NULL;
	struct rg_parts *parts;
	struct rg_ref *refs = NULL;
	struct rg_pos *wpos, *spos;
	const char **sfile;
	uint32_t *wfrag;
	size_t ns = 0, nw = 0, i, j, k;
	int rc = -1;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.file = name ? name : "-";
	c.err = err;
	c.errlen = errlen;
	if (scratch)
		c.tmp = *scratch;
	if (err && errlen)
		err[0] = '\0';
	for (i = 0; i < nf; i++) {
		ns += frags[i]->nservices;
		nw += frags[i]->nworkloads;
	}
	if (ns > REGISTRY_MAX_SERVICES || nw > REGISTRY_MAX_WORKLOADS) {
		rg_fail_at(&c, 1, 1, "more than %d services or %d workloads "
		           "over all files", REGISTRY_MAX_SERVICES,
		           REGISTRY_MAX_WORKLOADS);
		goto out;
	}
	if (size_hint && *size_hint) {
		/* one block for all (the spare when big enough) */
		if (rg_spare && rg_spare->cap >= *size_hint) {
			c.out.head = rg_spare;
			rg_spare = NULL;
			c.out.head->used = 0;
			c.out.next_cap = RG_BLOCK_MIN;
		} else {
			c.out.next_cap = *size_hint + *size_hint / 8;
		}
	}
	c.r = r = rg_calloc(&c.out, 1, sizeof(*r));
	parts = rg_alloc(&c.out, sizeof(*parts) + nf * sizeof(parts->f[0]));
	if (r) {
		/* one fragment (registry_parse): its array is the union */
		r->workloads = nf == 1 ? frags[0]->workloads :
		               rg_alloc(&c.out, (nw ? nw : 1) *
		                        sizeof(*r->workloads));
		r->services = rg_alloc(&c.out, (ns ? ns : 1) *
		                       sizeof(*r->services));
	}
	wfrag = rg_alloc(&c.tmp, (nw ? nw : 1) * sizeof(*wfrag));
	wpos = rg_alloc(&c.tmp, (nw ? nw : 1) * sizeof(*wpos));
	refs = rg_alloc(&c.tmp, (ns ? ns : 1) * sizeof(*refs));
	spos = rg_alloc(&c.tmp, (ns ? ns : 1) * sizeof(*spos));
	sfile = rg_alloc(&c.tmp, (ns ? ns : 1) * sizeof(*sfile));
	if (!r || !parts || !r->workloads || !r->services || !wfrag ||
	    !wpos || !refs || !spos || !sfile) {
		rg_oom(&c);
		goto out;
	}
	/* workloads: a flat copy, in union order */
	for (i = 0, k = 0; i < nf; i++) {
		const struct rg_frag *f = frags[i];

		if (f->nworkloads && r->workloads != f->workloads)
			memcpy(&r->workloads[k], f->workloads,
			       f->nworkloads * sizeof(*r->workloads));
		for (j = 0; j < f->nworkloads; j++, k++) {
			wfrag[k] = (uint32_t)i;
			wpos[k] = f->wpos[j];
		}
	}
	r->nworkloads = nw;
	if (rg_unique_workloads(&c, frags, wfrag, wpos) < 0)
		goto out;
	/* services: sorted by (ns, name, union index) */
	for (i = 0, k = 0; i < nf; i++) {
		const struct rg_frag *f = frags[i];

		for (j = 0; j < f->nservices; j++, k++) {
			refs[k].ns = f->services[j].ns;
			refs[k].name = f->services[j].name;
			refs[k].idx = (uint32_t)k;
			refs[k].frag = (uint32_t)i;
			refs[k].line = f->services[j].line;
			refs[k].pos = f->spos[j];
			refs[k].s = &f->services[j];
		}
	}
	qsort(refs, ns, sizeof(*refs), rg_ref_cmp);
	for (i = 1; i < ns; i++)
		if (strcmp(refs[i].ns, refs[i - 1].ns) == 0 &&
		    strcmp(refs[i].name, refs[i - 1].name) == 0) {
			rg_dup(&c, frags, &refs[i - 1], &refs[i], "service");
			goto out;
		}
	for (i = 0; i < ns; i++) {
		struct registry_service *s = &r->services[i];

		*s = *refs[i].s;
		s->ports = rg_alloc(&c.out, s->nports * sizeof(*s->ports));
		if (!s->ports) {
			rg_oom(&c);
			goto out;
		}
		memcpy(s->ports, refs[i].s->ports,
		       s->nports * sizeof(*s->ports));
		spos[i] = refs[i].pos;
		sfile[i] = frags[refs[i].frag]->path;
	}
	r->nservices = ns;
	if (rg_resolve(&c, spos, sfile) < 0)
		goto out;
	parts->n = nf;
	for (i = 0; i < nf; i++)
		parts->f[i] = rg_frag_ref(frags[i]);
	parts->recycle = size_hint != NULL;
	r->parts_ = parts;
	if (size_hint) {
		struct rg_block *b;

		*size_hint = 0;
		for (b = c.out.head; b; b = b->next)
			*size_hint += b->used;
	}
	rc = 0;
out:
	if (scratch) {
		rg_arena_recycle(&c.tmp);
		*scratch = c.tmp;
	} else {
		rg_blocks_free(c.tmp.head);
	}
	if (rc < 0 || c.failed) {
		rg_blocks_release(c.out.head, size_hint != NULL);
		return -1;
	}
	bus_msg_init(&r->msg, registry_destroy);
	r->blocks_ = c.out.head;
	*out = r;
	return 0;
}

int registry_parse(const char *text, size_t len, const char *file,
                   int format, struct registry **out, char *err,
                   size_t errlen)
{
	struct rg_frag *f;
	int rc;

	*out = NULL;
	if (rg_frag_parse(text, len, file, format, &f, err, errlen) < 0)
		return -1;
	rc = rg_assemble(&f, 1, f->path, NULL, NULL, out, err, errlen);
	rg_frag_unref(f);
	return rc;
}

void registry_free(struct registry *r)
{
	if (r)
		bus_msg_unref(&r->msg);
}

/* Compares the query <q> (ASCII case folded) with lower-case <s>. */
static int rg_cmp_ci(struct str q, const char *s)
{
	size_t i;

	for (i = 0; i < q.len; i++) {
		unsigned char a = (unsigned char)q.p[i];
		unsigned char b = (unsigned char)s[i];

		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a + ('a' - 'A'));
		if (!b)
			return 1;
		if (a != b)
			return a < b ? -1 : 1;
	}
	return s[i] ? -1 : 0;
}

const struct registry_service *registry_find(const struct registry *r,
                                             struct str name, struct str ns)
{
	size_t lo = 0, hi;

	if (!r)
		return NULL;
	hi = r->nservices;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct registry_service *s = &r->services[mid];
		int d = rg_cmp_ci(ns, s->ns);

		if (!d)
			d = rg_cmp_ci(name, s->name);
		if (!d)
			return s;
		if (d > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct registry_port *registry_service_port(
	const struct registry_service *s, uint16_t port)
{
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < s->nports; i++)
		if (s->ports[i].port == port)
			return &s->ports[i];
	return NULL;
}

int registry_authority_split(struct str authority, const char *cluster_domain,
                             struct str *name, struct str *ns,
                             uint16_t *port)
{
	struct str host = authority, rest, lab, cd;
	struct str labs[3];
	size_t nl = 0, i;
	ssize_t colon;
	uint64_t p = 80;
	int numeric = 1;

	if (!authority.len || authority.p[0] == '[')
		return -1;
	colon = str_rfind_char(authority, ':');
	if (colon >= 0) {
		if (str_to_u64(str_sub(authority, (size_t)colon + 1,
		                       authority.len), &p) < 0 ||
		    p == 0 || p > 65535)
			return -1;
		host = str_sub(authority, 0, (size_t)colon);
	}
	if (host.len && host.p[host.len - 1] == '.')
		host.len--;
	if (!host.len)
		return -1;
	/* labels 1..3 kept; the rest must be the cluster domain */
	rest = host;
	while (nl < 3 && str_next_token(&rest, '.', &lab)) {
		if (!rg_dns_label(lab, 1))
			return -1;
		for (i = 0; i < lab.len; i++)
			if (lab.p[i] < '0' || lab.p[i] > '9')
				numeric = 0;
		labs[nl++] = lab;
	}
	if (nl < 2 || numeric)
		return -1;
	if (nl == 3 && !str_ieq_cstr(labs[2], "svc"))
		return -1;
	if (rest.p) {
		cd = str_from_cstr(cluster_domain ? cluster_domain
		                                  : "cluster.local");
		if (cd.len && cd.p[cd.len - 1] == '.')
			cd.len--;
		if (!cd.len || !str_ieq(rest, cd))
			return -1;
		while (str_next_token(&rest, '.', &lab))
			if (!rg_dns_label(lab, 1))
				return -1;
	}
	*name = labs[0];
	*ns = labs[1];
	*port = (uint16_t)p;
	return 0;
}

const struct registry_route *registry_route_match(
	const struct registry_service *s, struct str method, struct str path)
{
	ssize_t q;
	size_t i;

	if (!s)
		return NULL;
	q = str_find_char(path, '?');
	if (q >= 0)
		path.len = (size_t)q;
	for (i = 0; i < s->nroutes; i++) {
		const struct registry_route *rt = &s->routes[i];

		if (rt->method && !str_eq_cstr(method, rt->method))
			continue;
		switch (rt->path_kind) {
		case REGISTRY_PATH_EXACT:
			if (!str_eq_cstr(path, rt->path))
				continue;
			break;
		case REGISTRY_PATH_PREFIX:
			if (!str_has_prefix(path, str_from_cstr(rt->path)))
				continue;
			break;
		default:
			break;
		}
		return rt;
	}
	return NULL;
}

/* ---- watching ---- */

/* One directory entry taken as a fragment, as last read. */
struct rg_dent {
	char *name;                /* mem_strdup */
	struct stat st;            /* what was read (zeroed: retry) */
	struct rg_frag *frag;      /* a reference, or NULL when it failed */
	char *err;                 /* why it failed (mem_strdup), or NULL */
};

struct rg_watch {
	ev_stat st;                /* file */
	ev_timer poll;
	ev_io io;                  /* directory: the inotify descriptor */
	int ifd, wd;               /* -1: none */
	struct registry_watch *w;
	struct stat seen;          /* file: what the current state was read
	                            * from */
	int present;               /* the file (directory) existed at the
	                            * last look */
	struct rg_dent *ents;      /* directory: sorted by name */
	size_t nents;
	struct rg_arena scratch;   /* directory: reused by each assembly */
	size_t out_hint;           /* directory: bytes the last registry took */
};

/*
 * Reads <name> relative to <dirfd> (AT_FDCWD or a directory; <path> names
 * it in messages), at most REGISTRY_MAX_FILE bytes. Returns 0 with the
 * text in *<out> (mem_alloc, the caller frees) and its length, the fstat
 * of what was read in *<st>; or -1 with a message in <err>.
 */
static int rg_read_file(int dirfd, const char *name, const char *path,
                        struct stat *st, char **out, size_t *outlen,
                        char *err, size_t errlen)
{
	size_t cap, len = 0;
	char *buf, *t;
	ssize_t n;
	int fd;

	*out = NULL;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	cap = st->st_size > 0 && (uint64_t)st->st_size < REGISTRY_MAX_FILE ?
	      (size_t)st->st_size + 1 : 4096;
	buf = mem_alloc(cap);
	if (!buf)
		goto oom;
	for (;;) {
		if (len == cap) {
			if (cap > REGISTRY_MAX_FILE) {
				snprintf(err, errlen, "%s: file larger than "
				         "%u bytes", path, REGISTRY_MAX_FILE);
				goto fail;
			}
			cap = MIN(cap * 2, (size_t)REGISTRY_MAX_FILE + 1);
			t = mem_realloc(buf, cap);
			if (!t)
				goto oom;
			buf = t;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	mem_free(buf);
	close(fd);
	return -1;
}

/*
 * Reads <path> and parses it. Returns 0 with a registry in *<out>, or -1
 * with a message in <err>.
 */
static int rg_load_file(const char *path, struct stat *st,
                        struct registry **out, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	if (rg_read_file(AT_FDCWD, path, path, st, &buf, &len, err,
	                 errlen) < 0)
		return -1;
	rc = registry_parse(buf, len, path, 0, out, err, errlen);
	mem_free(buf);
	return rc;
}

static int rg_stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static uint64_t rg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void rg_watch_error(struct registry_watch *w, const char *msg)
{
	w->errors++;
	snprintf(w->last_error, sizeof(w->last_error), "%s", msg);
	LOG_WARN(RG_LOG_MODULE, "registry reload refused, keeping "
	         "generation %llu: %s",
	         (unsigned long long)(w->current ? w->current->generation : 0),
	         msg);
}

/* Makes <r> (the caller's reference) current and hands it to the
 * callback. <parsed>: fragments parsed for it (directory mode). */
static void rg_watch_publish(struct registry_watch *w, struct registry *r,
                             unsigned parsed)
{
	r->generation = ++w->loads;
	registry_free(w->current);
	w->current = r;
	if (w->is_dir)
		LOG_INFO(RG_LOG_MODULE, "registry %s generation %llu: %zu "
		         "services, %zu workloads, %zu endpoints (%zu files, "
		         "%u parsed, union %.2f ms)", w->path,
		         (unsigned long long)r->generation, r->nservices,
		         r->nworkloads, r->nendpoints, w->nfragments, parsed,
		         (double)w->last_assemble_ns / 1e6);
	else
		LOG_INFO(RG_LOG_MODULE, "registry %s generation %llu: %zu "
		         "services, %zu workloads, %zu endpoints", w->path,
		         (unsigned long long)r->generation, r->nservices,
		         r->nworkloads, r->nendpoints);
	if (w->cb && r->generation > 1) {
		bus_msg_ref(&r->msg);
		w->cb(w->arg, r);
	}
}

/* Looks at the file; reloads when it differs from what was read last. */
static void rg_watch_check(struct rg_watch *p)
{
	struct registry_watch *w = p->w;
	struct registry *r;
	struct stat st;
	char err[256];

	if (stat(w->path, &st) < 0) {
		if (p->present) {
			char msg[256];

			p->present = 0;
			snprintf(msg, sizeof(msg), "%.200s: file is gone",
			         w->path);
			rg_watch_error(w, msg);
		}
		return;
	}
	if (p->present && rg_stat_same(&st, &p->seen))
		return;
	p->present = 1;
	if (rg_load_file(w->path, &st, &r, err, sizeof(err)) < 0) {
		/* remember the failed version: no retry until it changes */
		p->seen = st;
		rg_watch_error(w, err);
		return;
	}
	p->seen = st;
	rg_watch_publish(w, r, 0);
}

/* ---- watching a directory ---- */

/* inotify events that may change the fragments. Not IN_CREATE nor
 * IN_MODIFY: a file being written is taken when it is closed (or renamed
 * in, the recommended way). */
#define RG_IN_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |     \
                    IN_DELETE | IN_ATTRIB | IN_DELETE_SELF |           \
                    IN_MOVE_SELF | IN_ONLYDIR)

/* 1 when directory entry <name> is a fragment by its name: not hidden
 * (which also leaves out ".#x" locks and ".x.swp" swap files) and ending
 * in .yaml, .yml or .json (which leaves out "x~" backups and "x.tmp"). */
static int rg_is_fragment_name(const char *name)
{
	struct str s = str_from_cstr(name);

	if (!s.len || name[0] == '.')
		return 0;
	return str_has_suffix(s, STR_LIT(".yaml")) ||
	       str_has_suffix(s, STR_LIT(".yml")) ||
	       str_has_suffix(s, STR_LIT(".json"));
}

/* Releases what entries <e>[0..n) hold (not the array). */
static void rg_dents_clear(struct rg_dent *e, size_t n)
{
	size_t i;

	for (i = 0; e && i < n; i++) {
		MEM_FREE(&e[i].name);
		MEM_FREE(&e[i].err);
		rg_frag_unref(e[i].frag);
		e[i].frag = NULL;
	}
}

static void rg_dents_free(struct rg_dent *e, size_t n)
{
	rg_dents_clear(e, n);
	mem_free(e);
}

static int rg_strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads and parses fragment <e> (its name set) of directory <dfd>. A
 * failure is kept in e->err; one that is not about the text (I/O, memory)
 * leaves e->st zeroed so that the next look retries. */
static void rg_dent_load(struct rg_watch *p, int dfd, struct rg_dent *e)
{
	struct registry_watch *w = p->w;
	char path[1400], msg[256];
	char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", w->path, e->name);
	memset(&e->st, 0, sizeof(e->st));
	if (rg_read_file(dfd, e->name, path, &e->st, &buf, &len, msg,
	                 sizeof(msg)) < 0) {
		memset(&e->st, 0, sizeof(e->st));
		e->err = mem_strdup(msg);
		return;
	}
	w->fragment_parses++;
	if (rg_frag_parse(buf, len, path, 0, &e->frag, msg, sizeof(msg)) < 0)
		e->err = mem_strdup(msg);
	mem_free(buf);
}

/*
 * Reads the directory: stats every fragment, reuses the entries of
 * p->ents whose stat is unchanged and reads the others. Returns 1 when
 * anything changed (p->ents replaced), 0 when nothing did, -1 with <err>
 * when the directory cannot be read or memory runs out (p->ents kept).
 */
static int rg_dir_scan(struct rg_watch *p, char *err, size_t errlen)
{
	struct registry_watch *w = p->w;
	struct rg_dent *ne = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0, capn = 0, nne = 0, oi = 0, i;
	int changed = 0, rc = -1, dfd;
	DIR *d;

	d = opendir(w->path);
	if (!d) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		return -1;
	}
	dfd = dirfd(d);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!rg_is_fragment_name(de->d_name))
			continue;
		if (nn == capn) {
			size_t nc = capn ? capn * 2 : 64;
			char **t = mem_realloc(names, nc * sizeof(*names));

			if (!t)
				goto oom;
			names = t;
			capn = nc;
		}
		if (!(names[nn] = mem_strdup(de->d_name)))
			goto oom;
		nn++;
	}
	if (errno) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto out;
	}
	if (nn)
		qsort(names, nn, sizeof(*names), rg_strp_cmp);
	ne = mem_calloc(nn ? nn : 1, sizeof(*ne));
	if (!ne)
		goto oom;
	for (i = 0; i < nn; i++) {
		struct rg_dent *o = NULL, *e;
		struct stat st;

		if (fstatat(dfd, names[i], &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;     /* gone since readdir, or not a file */
		while (oi < p->nents &&
		       strcmp(p->ents[oi].name, names[i]) < 0) {
			oi++;         /* removed */
			changed = 1;
		}
		if (oi < p->nents && strcmp(p->ents[oi].name, names[i]) == 0)
			o = &p->ents[oi++];
		e = &ne[nne++];
		e->name = names[i];
		names[i] = NULL;
		if (o && rg_stat_same(&st, &o->st)) {
			e->st = o->st;
			e->frag = o->frag ? rg_frag_ref(o->frag) : NULL;
			if (o->err && !(e->err = mem_strdup(o->err)))
				goto oom;
			continue;
		}
		changed = 1;
		rg_dent_load(p, dfd, e);
	}
	if (oi < p->nents)
		changed = 1;
	if (changed) {
		rg_dents_free(p->ents, p->nents);
		p->ents = ne;
		p->nents = nne;
		ne = NULL;
	}
	w->nfragments = p->nents;
	rc = changed;
	goto out;
oom:
	snprintf(err, errlen, "%s: out of memory", w->path);
out:
	rg_dents_free(ne, nne);
	for (i = 0; i < nn; i++)
		mem_free(names[i]);
	mem_free(names);
	closedir(d);
	return rc;
}

/* The registry of the fragments in p->ents: 0 with it in *<out>, or -1
 * with <err> (a fragment that failed, a duplicate, no fragment). */
static int rg_dir_build(struct rg_watch *p, struct registry **out,
                        char *err, size_t errlen)
{
	struct registry_watch *w = p->w;
	struct rg_frag **frags;
	uint64_t t0;
	size_t i;
	int rc;

	*out = NULL;
	if (!p->nents) {
		snprintf(err, errlen, "%s: no registry file (*.yaml, *.yml, "
		         "*.json) in the directory (add one holding \"{}\" for "
		         "an empty registry)", w->path);
		return -1;
	}
	for (i = 0; i < p->nents; i++) {
		if (p->ents[i].frag)
			continue;
		if (p->ents[i].err)
			snprintf(err, errlen, "%s", p->ents[i].err);
		else
			snprintf(err, errlen, "%s/%s: out of memory",
			         w->path, p->ents[i].name);
		return -1;
	}
	frags = mem_alloc(p->nents * sizeof(*frags));
	if (!frags) {
		snprintf(err, errlen, "%s: out of memory", w->path);
		return -1;
	}
	for (i = 0; i < p->nents; i++)
		frags[i] = p->ents[i].frag;
	t0 = rg_now_ns();
	rc = rg_assemble(frags, p->nents, w->path, &p->scratch,
	                 &p->out_hint, out, err, errlen);
	w->last_assemble_ns = rg_now_ns() - t0;
	mem_free(frags);
	return rc;
}

/* After p->ents changed: builds and publishes the union, or counts the
 * error. <parses>: w->fragment_parses before the change. */
static void rg_dir_apply(struct rg_watch *p, uint64_t parses)
{
	struct registry_watch *w = p->w;
	struct registry *r;
	char err[256];

	if (rg_dir_build(p, &r, err, sizeof(err)) < 0) {
		rg_watch_error(w, err);
		return;
	}
	rg_watch_publish(w, r, (unsigned)(w->fragment_parses - parses));
}

/* Looks at the whole directory; reloads when a fragment changed. */
static void rg_dir_check(struct rg_watch *p)
{
	struct registry_watch *w = p->w;
	uint64_t parses = w->fragment_parses;
	char err[256];
	int rc;

	rc = rg_dir_scan(p, err, sizeof(err));
	if (rc < 0) {
		if (p->present)
			rg_watch_error(w, err);
		p->present = 0;
		return;
	}
	if (!p->present)
		rc = 1;           /* back: whatever it holds is news */
	p->present = 1;
	if (rc > 0)
		rg_dir_apply(p, parses);
}

/* Index of the entry named <name> in p->ents, or where it would go
 * (*<found> says which). */
static size_t rg_dent_find(const struct rg_watch *p, const char *name,
                           int *found)
{
	size_t lo = 0, hi = p->nents;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(p->ents[mid].name, name);

		if (!d) {
			*found = 1;
			return mid;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#define RG_IN_NAMES 32   /* names inotify gave, looked at one by one */

/*
 * The inotify fast path: looks at fragments <names> only (stat, and
 * reading those that changed), adding, replacing and dropping entries of
 * p->ents in place. Returns 1 when one changed, 0 when none did, -1 when
 * a full rescan must decide (directory unreadable, out of memory).
 */
static int rg_dir_update(struct rg_watch *p, char (*names)[256], size_t nn)
{
	struct registry_watch *w = p->w;
	int dfd, changed = 0, found;
	size_t k, i;

	dfd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	for (k = 0; k < nn; k++) {
		struct stat st;
		struct rg_dent *e;
		int ok = fstatat(dfd, names[k], &st, 0) == 0 &&
		         S_ISREG(st.st_mode);

		i = rg_dent_find(p, names[k], &found);
		if (!ok) {
			if (!found)
				continue;
			rg_dents_clear(&p->ents[i], 1);
			memmove(&p->ents[i], &p->ents[i + 1],
			        (p->nents - i - 1) * sizeof(*p->ents));
			p->nents--;
			changed = 1;
			continue;
		}
		if (found && rg_stat_same(&st, &p->ents[i].st))
			continue;
		if (found) {
			e = &p->ents[i];
			rg_frag_unref(e->frag);
			e->frag = NULL;
			MEM_FREE(&e->err);
		} else {
			struct rg_dent *t = mem_realloc(
				p->ents, (p->nents + 1) * sizeof(*t));
			char *name = mem_strdup(names[k]);

			if (t)
				p->ents = t;
			if (!t || !name) {
				mem_free(name);
				close(dfd);
				return -1;
			}
			memmove(&p->ents[i + 1], &p->ents[i],
			        (p->nents - i) * sizeof(*p->ents));
			p->nents++;
			e = &p->ents[i];
			memset(e, 0, sizeof(*e));
			e->name = name;
		}
		rg_dent_load(p, dfd, e);
		changed = 1;
	}
	/* fragments a read error (not their text) left failed: again */
	for (i = 0; i < p->nents; i++) {
		struct rg_dent *e = &p->ents[i];

		if (e->frag || e->st.st_ino)
			continue;
		MEM_FREE(&e->err);
		rg_dent_load(p, dfd, e);
		changed = 1;
	}
	close(dfd);
	w->nfragments = p->nents;
	return changed;
}

/* (Re)arms the inotify watch on the directory; -1 when there is none. */
static void rg_dir_inotify(struct rg_watch *p)
{
	if (p->ifd < 0 || p->wd >= 0)
		return;
	p->wd = inotify_add_watch(p->ifd, p->w->path, RG_IN_MASK);
}

static void rg_watch_io_cb(struct ev_loop *ev, ev_io *io, int revents)
{
	struct rg_watch *p = container_of(io, struct rg_watch, io);
	char buf[4096] __attribute__((aligned(8)));
	char names[RG_IN_NAMES][256];
	size_t nn = 0, k;
	int full = 0, rc;
	ssize_t n;

	(void)revents;
	for (;;) {
		size_t off = 0;

		n = read(p->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;        /* EAGAIN: drained */
		while (off + sizeof(struct inotify_event) <= (size_t)n) {
			const struct inotify_event *e =
				(const struct inotify_event *)(void *)
				(buf + off);

			off += sizeof(*e) + e->len;
			if (e->mask & (IN_IGNORED | IN_MOVE_SELF)) {
				/* the path no longer names the watched
				 * directory: re-armed by the poll */
				if (p->wd >= 0 && (e->mask & IN_MOVE_SELF))
					inotify_rm_watch(p->ifd, p->wd);
				p->wd = -1;
				full = 1;
			} else if (e->mask & (IN_Q_OVERFLOW |
			                      IN_DELETE_SELF)) {
				full = 1;
			} else if (!e->len || full) {
				continue;
			} else if (strncmp(e->name, "..", 2) == 0) {
				/* a Kubernetes ConfigMap mount swapping
				 * its ..data link: every name may change */
				full = 1;
			} else if (rg_is_fragment_name(e->name)) {
				for (k = 0; k < nn; k++)
					if (strcmp(names[k], e->name) == 0)
						break;
				if (k < nn)
					continue;
				if (nn == RG_IN_NAMES ||
				    str_copy_cstr(names[nn], sizeof(names[0]),
				                  str_from_cstr(e->name)) < 0)
					full = 1;
				else
					nn++;
			}
		}
	}
	(void)ev;
	if (full || (nn && !p->present)) {
		rg_dir_check(p);
	} else if (nn) {
		uint64_t parses = p->w->fragment_parses;

		rc = rg_dir_update(p, names, nn);
		if (rc < 0)
			rg_dir_check(p);
		else if (rc > 0)
			rg_dir_apply(p, parses);
	}
}

static void rg_watch_stat_cb(struct ev_loop *ev, ev_stat *st, int revents)
{
	(void)ev;
	(void)revents;
	rg_watch_check(container_of(st, struct rg_watch, st));
}

static void rg_watch_poll_cb(struct ev_loop *ev, ev_timer *t, int revents)
{
	struct rg_watch *p = container_of(t, struct rg_watch, poll);

	(void)ev;
	(void)revents;
	if (p->w->is_dir) {
		if (p->wd < 0)
			rg_dir_inotify(p);
		rg_dir_check(p);
	} else {
		rg_watch_check(p);
	}
}

static void rg_watch_free(struct rg_watch *p)
{
	if (!p)
		return;
	if (p->ifd >= 0)
		close(p->ifd);
	rg_dents_free(p->ents, p->nents);
	rg_blocks_free(p->scratch.head);
	if (p->w->is_dir && rg_recycle_users && !--rg_recycle_users)
		MEM_FREE(&rg_spare);
	mem_free(p);
}

int registry_watch_start(struct registry_watch *w, struct loop *loop,
                         const char *path, unsigned interval_ms,
                         registry_cb cb, void *arg, char *err, size_t errlen)
{
	struct rg_watch *p;
	struct registry *r;
	struct stat st;
	double iv = interval_ms ? interval_ms / 1000.0 : 5.0;
	size_t len;

	memset(w, 0, sizeof(*w));
	if (str_copy_cstr(w->path, sizeof(w->path), str_from_cstr(path)) < 0) {
		snprintf(err, errlen, "registry path too long");
		return -1;
	}
	p = mem_calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->w = w;
	p->ifd = p->wd = -1;
	w->is_dir = stat(w->path, &st) == 0 && S_ISDIR(st.st_mode);
	if (w->is_dir) {
		rg_recycle_users++;    /* dropped by rg_watch_free */
		len = strlen(w->path);
		while (len > 1 && w->path[len - 1] == '/')
			w->path[--len] = '\0';
		p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		rg_dir_inotify(p);   /* before the scan: no change missed */
		if (rg_dir_scan(p, err, errlen) < 0 ||
		    rg_dir_build(p, &r, err, errlen) < 0) {
			rg_watch_free(p);
			memset(w, 0, sizeof(*w));
			return -1;
		}
	} else if (rg_load_file(w->path, &st, &r, err, errlen) < 0) {
		rg_watch_free(p);
		return -1;
	}
	w->loop = loop;
	w->cb = cb;
	w->arg = arg;
	w->priv_ = p;
	p->seen = st;
	p->present = 1;
	rg_watch_publish(w, r, (unsigned)w->fragment_parses);
	if (w->is_dir) {
		if (p->ifd >= 0) {
			ev_io_init(&p->io, rg_watch_io_cb, p->ifd, EV_READ);
			ev_io_start(loop->ev, &p->io);
		}
	} else {
		ev_stat_init(&p->st, rg_watch_stat_cb, w->path, iv);
		ev_stat_start(loop->ev, &p->st);
	}
	ev_timer_init(&p->poll, rg_watch_poll_cb, iv, iv);
	ev_timer_start(loop->ev, &p->poll);
	return 0;
}

void registry_watch_stop(struct registry_watch *w)
{
	struct rg_watch *p = w->priv_;

	if (p) {
		if (w->is_dir) {
			if (p->ifd >= 0)
				ev_io_stop(w->loop->ev, &p->io);
		} else {
			ev_stat_stop(w->loop->ev, &p->st);
		}
		ev_timer_stop(w->loop->ev, &p->poll);
		rg_watch_free(p);
		w->priv_ = NULL;
	}
	registry_free(w->current);
	w->current = NULL;
}
