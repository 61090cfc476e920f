/*
 * mem: the only place meshd allocates from the C heap.
 *
 * Every allocation in meshd goes through these wrappers so that tests can
 * make the Nth allocation fail (mem_fail_after) and so that the process can
 * report how many bytes and blocks it holds (mem_stats). Freed blocks of up
 * to 64 KiB are cached per size class (bounded), because musl's allocator
 * hands small blocks back to the kernel on every cycle. Runtime objects that
 * come and go with connections or streams use a mem_pool: fixed-size slots, a
 * free list, and a hard cap on the number of live objects.
 *
 * Contracts:
 *  - mem_alloc/mem_calloc/mem_realloc/mem_strdup return NULL on failure
 *    (real or injected); callers MUST test the result. Nothing here aborts.
 *  - mem_free(NULL) is a no-op. mem_realloc(p, 0) frees p and returns NULL.
 *  - Sizes are tracked with a small header, so mem_free must only be given
 *    pointers that came from this module.
 */
#ifndef MESHD_CORE_MEM_H
#define MESHD_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

void *mem_alloc(size_t size);
void *mem_calloc(size_t nmemb, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *ptr);

/* Frees *<pp> and sets it to NULL in one step, so no reachable pointer
 * dangles. */
#define MEM_FREE(pp) do { mem_free(*(pp)); *(pp) = NULL; } while (0)

/* The size requested when <ptr> (non-NULL, from this module) was allocated.
 * Lets per-owner accounting (e.g. nghttp2's allocator hooks, which free
 * without a size) charge and refund exact amounts. */
size_t mem_size(const void *ptr);

struct mem_stats {
	uint64_t bytes;        /* bytes currently held by callers */
	uint64_t blocks;       /* blocks currently held */
	uint64_t total_allocs; /* allocations ever made (successful) */
	uint64_t failures;     /* allocations refused (real or injected) */
	uint64_t cached;       /* freed bytes kept for reuse (bounded) */
};

void mem_get_stats(struct mem_stats *out);

/* Returns every cached free block to libc (e.g. before measuring, or when
 * the process goes idle). */
void mem_trim(void);
/* 0 in sanitizer builds, which cache nothing (reuse would hide
 * use-after-free from AddressSanitizer). */
int mem_cache_enabled(void);

/* Failure injection for tests: the <n>th allocation from now (1-based) and
 * every later one fail until mem_fail_reset(). <n> == 0 disables injection. */
void mem_fail_after(uint64_t n);
void mem_fail_reset(void);

/*
 * A pool of fixed-size objects. Freed slots are kept on a free list (up to
 * <keep> of them) and reused; at most <max_live> objects exist at once, after
 * which mem_pool_get returns NULL. Objects are NOT zeroed by mem_pool_get;
 * use mem_pool_zget for that.
 */
struct mem_pool {
	const char *name;   /* ro: for diagnostics */
	size_t obj_size;    /* ro */
	uint32_t max_live;  /* ro: hard cap, 0 = unlimited */
	uint32_t keep;      /* ro: free slots kept for reuse */
	uint32_t live;      /* ro: objects handed out */
	uint32_t nfree;     /* private: length of free list */
	void *free_list;    /* private */
};

void mem_pool_init(struct mem_pool *pool, const char *name, size_t obj_size,
                   uint32_t max_live, uint32_t keep);
void *mem_pool_get(struct mem_pool *pool);
void *mem_pool_zget(struct mem_pool *pool);
void mem_pool_put(struct mem_pool *pool, void *obj);
/* Releases the free list. Objects still live are the caller's leak. */
void mem_pool_destroy(struct mem_pool *pool);

#endif
