#include <string.h>
#include "harness.h"
#include "core/mem.h"

TEST(alloc_free_accounting)
{
	struct mem_stats before, during, after;
	char *p;

	mem_get_stats(&before);
	p = mem_alloc(100);
	REQUIRE(p != NULL);
	mem_get_stats(&during);
	CHECK(during.bytes == before.bytes + 100);
	CHECK(during.blocks == before.blocks + 1);
	p = mem_realloc(p, 300);
	REQUIRE(p != NULL);
	mem_get_stats(&during);
	CHECK(during.bytes == before.bytes + 300);
	CHECK(mem_size(p) == 300);
	mem_free(p);
	mem_get_stats(&after);
	CHECK(after.bytes == before.bytes);
	CHECK(after.blocks == before.blocks);
}

TEST(injected_failure_hits_nth)
{
	void *a, *b, *c;

	mem_fail_after(2);
	a = mem_alloc(8);
	b = mem_alloc(8);
	c = mem_calloc(2, 8);
	mem_fail_reset();
	CHECK(a != NULL);
	CHECK(b == NULL);
	CHECK(c == NULL); /* stays failing after the Nth */
	mem_free(a);
	a = mem_alloc(8);
	CHECK(a != NULL);
	mem_free(a);
}

TEST(calloc_overflow_refused)
{
	CHECK(mem_calloc((size_t)-1 / 2, 4) == NULL);
	CHECK(mem_alloc((size_t)-1) == NULL);
}

TEST(strdup_and_strndup)
{
	char *s = mem_strdup("hello");
	char *t = mem_strndup("hello", 3);

	CHECK_STR(s, "hello");
	CHECK_STR(t, "hel");
	mem_free(s);
	mem_free(t);
}

TEST(pool_cap_and_reuse)
{
	struct mem_pool pool;
	void *a, *b, *c;

	mem_pool_init(&pool, "test", 64, 2, 1);
	a = mem_pool_get(&pool);
	b = mem_pool_zget(&pool);
	c = mem_pool_get(&pool);
	CHECK(a && b);
	CHECK(c == NULL); /* cap of 2 live objects */
	CHECK(pool.live == 2);
	mem_pool_put(&pool, a);
	c = mem_pool_get(&pool);
	CHECK(c == a); /* the kept slot is reused */
	mem_pool_put(&pool, b);
	mem_pool_put(&pool, c);
	CHECK(pool.live == 0);
	CHECK(pool.nfree == 1); /* keep = 1: the second was returned to the heap */
	mem_pool_destroy(&pool);
	CHECK(pool.nfree == 0);
}

TEST(cache_reuses_freed_blocks_within_bound)
{
	struct mem_stats st;
	void *a, *b, *big[40];
	int i;

	mem_trim();
	if (!mem_cache_enabled()) {
		printf("# sanitizer build: the cache is off by design\n");
		return;
	}
	a = mem_alloc(3000);
	REQUIRE(a != NULL);
	mem_free(a);
	mem_get_stats(&st);
	CHECK(st.cached == 3072); /* 3000 rounds up to the 3 KiB class */
	b = mem_alloc(3072);      /* same class: the cached block comes back */
	CHECK(b == a);
	mem_get_stats(&st);
	CHECK(st.cached == 0);
	b = mem_realloc(b, 3050); /* still fits its class: does not move */
	CHECK(b == a);
	CHECK(mem_size(b) == 3050);
	b = mem_realloc(b, 3073); /* the next class (3584): moves */
	CHECK(mem_size(b) == 3073);
	mem_free(b);
	/* 40 blocks of 64 KiB: only what fits the cache bound is kept */
	for (i = 0; i < 40; i++)
		big[i] = mem_alloc(65536);
	for (i = 0; i < 40; i++)
		mem_free(big[i]);
	mem_get_stats(&st);
	CHECK(st.cached > 0 && st.cached <= (768u << 10));
	mem_trim();
	mem_get_stats(&st);
	CHECK(st.cached == 0);
}

TEST(realloc_across_classes_and_large_blocks)
{
	char *p = mem_alloc(10);
	size_t i;

	REQUIRE(p != NULL);
	memcpy(p, "0123456789", 10);
	p = mem_realloc(p, 100000); /* class -> large */
	REQUIRE(p != NULL);
	CHECK(memcmp(p, "0123456789", 10) == 0);
	for (i = 10; i < 100000; i++)
		p[i] = (char)i;
	p = mem_realloc(p, 200000); /* large -> large */
	REQUIRE(p != NULL);
	CHECK(p[99999] == (char)99999);
	p = mem_realloc(p, 50); /* large -> class */
	REQUIRE(p != NULL);
	CHECK(memcmp(p, "0123456789", 10) == 0);
	mem_free(p);
}

/* Every size up to the cache limit lands in a class that holds it and
 * wastes at most a fifth of the block (the 16 KiB + 10 of nghttp2's output
 * buffer must not take 32 KiB). */
TEST(size_classes_hold_the_size_with_bounded_waste)
{
	struct mem_stats st0, st;
	size_t size, prev = 0;
	void *p;

	mem_trim();
	if (!mem_cache_enabled()) {
		printf("# sanitizer build: the cache is off by design\n");
		return;
	}
	for (size = 1; size <= 65536; size += (size < 4096 ? 1 : 7)) {
		size_t block;

		mem_get_stats(&st0);
		p = mem_alloc(size);
		REQUIRE(p != NULL);
		mem_free(p);
		mem_get_stats(&st);
		block = st.cached - st0.cached;
		mem_trim();
		if (block < size || block < prev ||
		    (size > 32 && block * 4 > size * 5 + 32)) {
			CHECK(0 && "bad class");
			printf("# size %zu -> block %zu (previous %zu)\n", size,
			       block, prev);
			return;
		}
		prev = block;
	}
	mem_get_stats(&st0);
	p = mem_alloc(16384 + 10);
	mem_free(p);
	mem_get_stats(&st);
	CHECK(st.cached - st0.cached == 20480);
	mem_trim();
}
