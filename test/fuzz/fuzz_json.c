/*
 * libFuzzer target for core/json: the parser, the walking helpers and the
 * writer.
 *
 * Any input is parsed. Invariants checked (abort() on violation):
 *  - an error reports an offset within the input and a line and column;
 *  - on success every token lies inside the input, links point to tokens
 *    of the right kind (parent before child, next after, sizes match the
 *    sibling chains, object members are key + value);
 *  - writing the tokens back out through the typed writer calls (strings
 *    decoded with json_str_unescape, numbers through json_w_num_raw) gives
 *    a document that parses to the same token structure, the same decoded
 *    strings and the same number texts;
 *  - json_w_value copies the root verbatim;
 *  - json_obj_get finds every key of small objects, and json_obj_dup_key
 *    agrees with a pairwise comparison of decoded keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)
#define NTOK 4096

static struct json_tok toks_a[NTOK], toks_b[NTOK];

/* Writes value <i> of <d> with the typed writer calls; returns the index
 * after its subtree. */
static int fz_write(struct json_w *w, const struct json_doc *d, int i,
                    char *tmp, size_t tmplen)
{
	const struct json_tok *t = &d->toks[i];
	ssize_t n;
	int k, j;

	switch (t->type) {
	case JSON_OBJECT:
		json_w_obj_open(w);
		j = i + 1;
		for (k = json_first(d, i); k >= 0; k = json_next(d, k)) {
			FZ_ASSERT(k == j);
			n = json_str_unescape(d, k, tmp, tmplen);
			FZ_ASSERT(n >= 0);
			json_w_key_n(w, tmp, (size_t)n);
			j = fz_write(w, d, k + 1, tmp, tmplen);
		}
		json_w_obj_close(w);
		return j;
	case JSON_ARRAY:
		json_w_arr_open(w);
		j = i + 1;
		for (k = json_first(d, i); k >= 0; k = json_next(d, k)) {
			FZ_ASSERT(k == j);
			j = fz_write(w, d, k, tmp, tmplen);
		}
		json_w_arr_close(w);
		return j;
	case JSON_STRING:
		n = json_str_unescape(d, i, tmp, tmplen);
		FZ_ASSERT(n >= 0 && json_str_unescape(d, i, NULL, 0) == n);
		FZ_ASSERT(json_str_eq_n(d, i, tmp, (size_t)n));
		json_w_str_n(w, tmp, (size_t)n);
		return i + 1;
	case JSON_NUMBER:
		json_w_num_raw(w, d->text + t->start, t->end - t->start);
		return i + 1;
	case JSON_TRUE:
	case JSON_FALSE:
		json_w_bool(w, t->type == JSON_TRUE);
		return i + 1;
	case JSON_NULL:
		json_w_null(w);
		return i + 1;
	}
	abort();
}

static void fz_check_links(const struct json_doc *d)
{
	uint32_t i;

	for (i = 0; i < d->ntoks; i++) {
		const struct json_tok *t = &d->toks[i];
		const struct json_tok *p;
		uint32_t n = 0;
		int k;

		FZ_ASSERT(t->type >= JSON_OBJECT && t->type <= JSON_NULL);
		FZ_ASSERT(t->start <= t->end && t->end <= d->len);
		if (t->type == JSON_STRING)
			FZ_ASSERT(t->start > 0 && t->end < d->len &&
			          d->text[t->start - 1] == '"' &&
			          d->text[t->end] == '"');
		if (i == 0) {
			FZ_ASSERT(t->parent == -1 && t->next == -1);
			continue;
		}
		FZ_ASSERT(t->parent >= 0 && (uint32_t)t->parent < i);
		FZ_ASSERT(t->next == -1 ||
		          ((uint32_t)t->next > i &&
		           (uint32_t)t->next < d->ntoks));
		p = &d->toks[t->parent];
		if (p->type == JSON_STRING) {  /* a member's value */
			FZ_ASSERT((p->flags & JSON_TF_KEY) &&
			          (uint32_t)t->parent == i - 1 &&
			          t->next == -1);
		} else {
			FZ_ASSERT(p->type == JSON_OBJECT ||
			          p->type == JSON_ARRAY);
			FZ_ASSERT(!!(t->flags & JSON_TF_KEY) ==
			          (p->type == JSON_OBJECT));
			FZ_ASSERT(t->start >= p->start && t->end <= p->end);
		}
		if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
			for (k = json_first(d, (int)i); k >= 0;
			     k = json_next(d, k)) {
				FZ_ASSERT(d->toks[k].parent == (int)i);
				n++;
			}
			FZ_ASSERT(n == t->size);
		} else {
			FZ_ASSERT(t->size == 0);
		}
	}
}

static void fz_check_objects(const struct json_doc *d)
{
	uint32_t i;

	for (i = 0; i < d->ntoks; i++) {
		int k, j, dup = -1, v;

		if (d->toks[i].type != JSON_OBJECT || d->toks[i].size > 64)
			continue;
		for (k = json_first(d, (int)i); k >= 0; k = json_next(d, k)) {
			char a[256], b[256];
			ssize_t na = json_str_unescape(d, k, a, sizeof(a));

			if (na < 0)
				continue;  /* too long for this check */
			v = json_obj_get_n(d, (int)i, a, (size_t)na);
			FZ_ASSERT(v > k || v == k + 1);
			FZ_ASSERT(json_str_eq_n(d, v - 1, a, (size_t)na));
			for (j = json_first(d, (int)i); j != k && dup < 0;
			     j = json_next(d, j)) {
				ssize_t nb = json_str_unescape(d, j, b,
				                               sizeof(b));

				if (nb == na && memcmp(a, b, (size_t)na) == 0)
					dup = k;
			}
		}
		if (dup >= 0)
			FZ_ASSERT(json_obj_dup_key(d, (int)i) >= 0);
		else if (json_obj_dup_key(d, (int)i) >= 0)
			/* only possible via keys too long to compare here */
			FZ_ASSERT(d->toks[json_obj_dup_key(d, (int)i)].end -
			          d->toks[json_obj_dup_key(d, (int)i)].start
			          >= 255);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc a, b;
	struct json_err err;
	struct json_w w;
	struct buf out;
	char *tmp;
	uint32_t i;
	int n, m;

	json_doc_init(&a, toks_a, NTOK);
	n = json_parse(&a, (const char *)data, size, &err);
	if (n < 0) {
		FZ_ASSERT(err.offset <= size && err.line >= 1 &&
		          err.col >= 1 && err.reason != NULL);
		FZ_ASSERT(a.ntoks == 0);
		return 0;
	}
	FZ_ASSERT((uint32_t)n == a.ntoks && n > 0);
	fz_check_links(&a);
	fz_check_objects(&a);
	for (i = 0; i < a.ntoks; i++) {
		int64_t iv;
		uint64_t uv;
		double dv;
		int bv;

		if (json_to_i64(&a, (int)i, &iv) == 0 ||
		    json_to_u64(&a, (int)i, &uv) == 0)
			FZ_ASSERT(a.toks[i].type == JSON_NUMBER &&
			          !(a.toks[i].flags & JSON_TF_FRAC));
		if (json_to_double(&a, (int)i, &dv) == 0)
			FZ_ASSERT(a.toks[i].type == JSON_NUMBER);
		if (json_to_bool(&a, (int)i, &bv) == 0)
			FZ_ASSERT(bv == (a.toks[i].type == JSON_TRUE));
	}

	tmp = mem_alloc(size + 1);
	if (!tmp)
		return 0;
	buf_init(&out, 8 * size + 64);
	json_w_init(&w, &out);
	FZ_ASSERT(fz_write(&w, &a, 0, tmp, size + 1) == n);
	FZ_ASSERT(json_w_finish(&w) == 0);

	json_doc_init(&b, toks_b, NTOK);
	m = json_parse(&b, buf_data(&out), buf_len(&out), NULL);
	FZ_ASSERT(m == n);
	for (i = 0; i < a.ntoks; i++) {
		const struct json_tok *ta = &a.toks[i], *tb = &b.toks[i];

		FZ_ASSERT(ta->type == tb->type && ta->size == tb->size &&
		          ta->parent == tb->parent && ta->next == tb->next);
		FZ_ASSERT((ta->flags & ~JSON_TF_ESC) ==
		          (tb->flags & ~JSON_TF_ESC));
		if (ta->type == JSON_NUMBER)
			FZ_ASSERT(ta->end - ta->start == tb->end - tb->start &&
			          memcmp(a.text + ta->start, b.text + tb->start,
			                 ta->end - ta->start) == 0);
		if (ta->type == JSON_STRING) {
			ssize_t l = json_str_unescape(&a, (int)i, tmp,
			                              size + 1);

			FZ_ASSERT(l >= 0 &&
			          json_str_eq_n(&b, (int)i, tmp, (size_t)l));
		}
	}

	/* Verbatim copy of the root. */
	buf_reset(&out);
	json_w_init(&w, &out);
	FZ_ASSERT(json_w_value(&w, &a, 0) == 0 && json_w_finish(&w) == 0);
	FZ_ASSERT(buf_len(&out) == a.toks[0].end - a.toks[0].start +
	          (a.toks[0].type == JSON_STRING ? 2 : 0));
	buf_free(&out);
	MEM_FREE(&tmp);
	return 0;
}
