/*
 * mem: heap wrappers with accounting, failure injection and a small cache of
 * freed blocks; object pools.
 *
 * IMPLEMENTATION NOTES
 * Each block carries a 16-byte header: the size the caller asked for (for
 * exact accounting and mem_size) and the block's size class. The header is
 * 16 bytes (not 8) to keep the payload aligned for any type.
 *
 * Size classes: requests up to MEM_CACHE_MAX bytes are rounded up to a size
 * class and, when freed, kept on a per-class free list instead of going back
 * to libc. Classes are 32 bytes, then four per power of two (40, 48, 56, 64,
 * 80, 96, ...), so rounding wastes at most a fifth of a block: with powers of
 * two nghttp2's 16 KiB + 10 output buffer took 32 KiB, a third of an idle
 * HTTP/2 connection's memory. musl's allocator returns memory to the kernel
 * eagerly (mmap/munmap on every cycle for blocks of a few KiB), which made a
 * proxy that allocates per stream spend most of its CPU in the kernel; the
 * cache turns that into a list pop. It is bounded: at most
 * MEM_CACHE_BYTES bytes wait on the lists in total, the rest is freed, so an
 * idle process keeps little. Larger requests go straight to libc.
 * meshd runs one event loop per process, so the state is plain globals.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define MEM_HDR 16
#define MEM_CLASS_MIN_SHIFT 5                 /* 32 bytes */
#define MEM_CLASS_MAX_SHIFT 16                /* 64 KiB */
#define MEM_CACHE_MAX ((size_t)1 << MEM_CLASS_MAX_SHIFT)
/* Sanitizer builds cache nothing: reusing blocks would hide use-after-free
 * from AddressSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_NO_CACHE 1
#endif
#endif
#ifdef MEM_NO_CACHE
#define MEM_CACHE_BYTES ((size_t)0)
#else
#define MEM_CACHE_BYTES ((size_t)768 << 10)   /* bound on cached bytes */
#endif
/* class 0 is 32 bytes; then 4 classes per doubling up to 64 KiB */
#define MEM_NCLASS (1 + 4 * (MEM_CLASS_MAX_SHIFT - MEM_CLASS_MIN_SHIFT))
#define MEM_NO_CLASS 0xffu

struct mem_hdr {
	size_t size;      /* bytes the caller asked for */
	uint32_t cls;     /* size class, or MEM_NO_CLASS */
};

/* A cached block's payload holds the link to the next one. */
struct mem_free_block {
	struct mem_free_block *next;
};

static struct mem_stats mem_stats_now;
static uint64_t mem_fail_countdown; /* 0: no injection */
static int mem_failing;
static struct mem_free_block *mem_cache[MEM_NCLASS];
static size_t mem_cached_bytes;

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

static struct mem_hdr *mem_hdr_of(const void *ptr)
{
	return (struct mem_hdr *)((unsigned char *)ptr - MEM_HDR);
}

/* The class of a request of <size> bytes, or MEM_NO_CLASS when too large. */
static uint32_t mem_class_of(size_t size)
{
	size_t s;
	uint32_t b;

	if (size > MEM_CACHE_MAX)
		return MEM_NO_CLASS;
	if (size <= ((size_t)1 << MEM_CLASS_MIN_SHIFT))
		return 0;
	s = size - 1;
	b = (uint32_t)(63 - __builtin_clzll((unsigned long long)s));
	/* s is in [2^b, 2^(b+1)): which quarter of that range */
	return 1 + 4 * (b - MEM_CLASS_MIN_SHIFT) +
	       (uint32_t)((s - ((size_t)1 << b)) >> (b - 2));
}

static size_t mem_class_size(uint32_t cls)
{
	uint32_t b;

	if (cls == 0)
		return (size_t)1 << MEM_CLASS_MIN_SHIFT;
	b = MEM_CLASS_MIN_SHIFT + (cls - 1) / 4;
	return ((size_t)1 << b) + (size_t)((cls - 1) % 4 + 1) * ((size_t)1 << (b - 2));
}

/* Gets raw storage for <size> payload bytes; fills the header. */
static void *mem_get(size_t size)
{
	uint32_t cls = mem_class_of(size);
	struct mem_hdr *h;

	if (cls != MEM_NO_CLASS && mem_cache[cls]) {
		struct mem_free_block *fb = mem_cache[cls];

		mem_cache[cls] = fb->next;
		mem_cached_bytes -= mem_class_size(cls);
		h = mem_hdr_of(fb);
	} else {
		h = malloc((cls == MEM_NO_CLASS ? size : mem_class_size(cls)) + MEM_HDR);
		if (!h)
			return NULL;
	}
	h->size = size;
	h->cls = cls;
	return (unsigned char *)h + MEM_HDR;
}

/* Returns a block's storage to the cache or to libc. */
static void mem_put(void *ptr)
{
	struct mem_hdr *h = mem_hdr_of(ptr);
	uint32_t cls = h->cls;

	if (cls != MEM_NO_CLASS &&
	    mem_cached_bytes + mem_class_size(cls) <= MEM_CACHE_BYTES) {
		struct mem_free_block *fb = ptr;

		fb->next = mem_cache[cls];
		mem_cache[cls] = fb;
		mem_cached_bytes += mem_class_size(cls);
		return;
	}
	free(h);
}

size_t mem_size(const void *ptr)
{
	return mem_hdr_of(ptr)->size;
}

void *mem_alloc(size_t size)
{
	void *p;

	if (size > SIZE_MAX - MEM_HDR || mem_inject()) {
		mem_stats_now.failures++;
		return NULL;
	}
	p = mem_get(size);
	if (!p) {
		mem_stats_now.failures++;
		return NULL;
	}
	mem_stats_now.bytes += size;
	mem_stats_now.blocks++;
	mem_stats_now.total_allocs++;
	return p;
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
	struct mem_hdr *h;
	size_t old;
	void *np;

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
	h = mem_hdr_of(ptr);
	old = h->size;
	/* still fits the block's class: nothing moves */
	if (h->cls != MEM_NO_CLASS && size <= mem_class_size(h->cls)) {
		h->size = size;
		mem_stats_now.bytes = mem_stats_now.bytes - old + size;
		return ptr;
	}
	if (h->cls == MEM_NO_CLASS && mem_class_of(size) == MEM_NO_CLASS) {
		h = realloc(h, size + MEM_HDR);
		if (!h) {
			mem_stats_now.failures++;
			return NULL;
		}
		h->size = size;
		mem_stats_now.bytes = mem_stats_now.bytes - old + size;
		mem_stats_now.total_allocs++;
		return (unsigned char *)h + MEM_HDR;
	}
	np = mem_get(size);
	if (!np) {
		mem_stats_now.failures++;
		return NULL;
	}
	memcpy(np, ptr, old < size ? old : size);
	mem_put(ptr);
	mem_stats_now.bytes = mem_stats_now.bytes - old + size;
	mem_stats_now.total_allocs++;
	return np;
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
	mem_stats_now.bytes -= mem_hdr_of(ptr)->size;
	mem_stats_now.blocks--;
	mem_put(ptr);
}

int mem_cache_enabled(void)
{
	return MEM_CACHE_BYTES > 0;
}

void mem_trim(void)
{
	uint32_t cls;

	for (cls = 0; cls < MEM_NCLASS; cls++) {
		while (mem_cache[cls]) {
			struct mem_free_block *fb = mem_cache[cls];

			mem_cache[cls] = fb->next;
			free(mem_hdr_of(fb));
		}
	}
	mem_cached_bytes = 0;
}

void mem_get_stats(struct mem_stats *out)
{
	*out = mem_stats_now;
	out->cached = mem_cached_bytes;
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
