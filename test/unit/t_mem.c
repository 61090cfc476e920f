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
