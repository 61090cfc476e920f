/*
 * mem: heap wrappers with accounting and failure injection, and object pools.
 *
 * IMPLEMENTATION NOTES
 * Each block carries a 16-byte header holding its size, so mem_free and
 * mem_realloc can keep the byte count exact without asking libc. The header
 * is 16 bytes (not 8) to keep the payload aligned for any type.
 * meshd runs one event loop per process, so the counters are plain globals.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define MEM_HDR 16

static struct mem_stats mem_stats_now;
static uint64_t mem_fail_countdown; /* 0: no injection */
static int mem_failing;

/* Returns 1 when this allocation must fail because of injection. */
static int mem_inject(void)
{
	if (mem_failing)
		return 1;
	if (mem_fail_countdown == 0)
		return 0;
	if (--mem_fail_countdown == 0) {
		mem_failing = 1;
		return 1;
	}
	return 0;
}

static void *mem_account(unsigned char *raw, size_t size)
{
	if (!raw) {
		mem_stats_now.failures++;
		return NULL;
	}
	memcpy(raw, &size, sizeof(size));
	mem_stats_now.bytes += size;
	mem_stats_now.blocks++;
	mem_stats_now.total_allocs++;
	return raw + MEM_HDR;
}

static size_t mem_size_of(const void *ptr)
{
	size_t size;

	memcpy(&size, (const unsigned char *)ptr - MEM_HDR, sizeof(size));
	return size;
}

size_t mem_size(const void *ptr)
{
	return mem_size_of(ptr);
}

void *mem_alloc(size_t size)
{
	if (size > SIZE_MAX - MEM_HDR || mem_inject()) {
		mem_stats_now.failures++;
		return NULL;
	}
	return mem_account(malloc(size + MEM_HDR), size);
}

void *mem_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > (SIZE_MAX - MEM_HDR) / size) {
		mem_stats_now.failures++;
		return NULL;
	}
	p = mem_alloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void *mem_realloc(void *ptr, size_t size)
{
	unsigned char *raw;
	size_t old;

	if (!ptr)
		return mem_alloc(size);
	if (size == 0) {
		mem_free(ptr);
		return NULL;
	}
	if (size > SIZE_MAX - MEM_HDR || mem_inject()) {
		mem_stats_now.failures++;
		return NULL;
	}
	old = mem_size_of(ptr);
	raw = realloc((unsigned char *)ptr - MEM_HDR, size + MEM_HDR);
	if (!raw) {
		mem_stats_now.failures++;
		return NULL;
	}
	memcpy(raw, &size, sizeof(size));
	mem_stats_now.bytes = mem_stats_now.bytes - old + size;
	mem_stats_now.total_allocs++;
	return raw + MEM_HDR;
}

char *mem_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = mem_alloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *mem_strdup(const char *s)
{
	return mem_strndup(s, strlen(s));
}

void mem_free(void *ptr)
{
	if (!ptr)
		return;
	mem_stats_now.bytes -= mem_size_of(ptr);
	mem_stats_now.blocks--;
	free((unsigned char *)ptr - MEM_HDR);
}

void mem_get_stats(struct mem_stats *out)
{
	*out = mem_stats_now;
}

void mem_fail_after(uint64_t n)
{
	mem_fail_countdown = n;
	mem_failing = 0;
}

void mem_fail_reset(void)
{
	mem_fail_countdown = 0;
	mem_failing = 0;
}

/* A free slot's first bytes hold the link to the next free slot. */
struct mem_pool_slot {
	struct mem_pool_slot *next;
};

void mem_pool_init(struct mem_pool *pool, const char *name, size_t obj_size,
                   uint32_t max_live, uint32_t keep)
{
	pool->name = name;
	pool->obj_size = obj_size < sizeof(struct mem_pool_slot) ?
	                 sizeof(struct mem_pool_slot) : obj_size;
	pool->max_live = max_live;
	pool->keep = keep;
	pool->live = 0;
	pool->nfree = 0;
	pool->free_list = NULL;
}

void *mem_pool_get(struct mem_pool *pool)
{
	struct mem_pool_slot *slot;

	if (pool->max_live && pool->live >= pool->max_live)
		return NULL;
	slot = pool->free_list;
	if (slot) {
		pool->free_list = slot->next;
		pool->nfree--;
	} else {
		slot = mem_alloc(pool->obj_size);
		if (!slot)
			return NULL;
	}
	pool->live++;
	return slot;
}

void *mem_pool_zget(struct mem_pool *pool)
{
	void *obj = mem_pool_get(pool);

	if (obj)
		memset(obj, 0, pool->obj_size);
	return obj;
}

void mem_pool_put(struct mem_pool *pool, void *obj)
{
	struct mem_pool_slot *slot = obj;

	if (!obj)
		return;
	pool->live--;
	if (pool->nfree >= pool->keep) {
		mem_free(obj);
		return;
	}
	slot->next = pool->free_list;
	pool->free_list = slot;
	pool->nfree++;
}

void mem_pool_destroy(struct mem_pool *pool)
{
	struct mem_pool_slot *slot, *next;

	for (slot = pool->free_list; slot; slot = next) {
		next = slot->next;
		mem_free(slot);
	}
	pool->free_list = NULL;
	pool->nfree = 0;
}
