/*
 * util: a handful of macros every module needs. Header only.
 *
 * Contracts:
 *  - container_of(ptr, type, member) recovers the struct that embeds
 *    <member> from a pointer to that member (libev watchers embedded in
 *    connection objects, intrusive list links). <ptr> MUST point into a
 *    <type>; the compiler checks that *<ptr> has the member's type.
 *  - ARRAY_SIZE(a) is the element count of a true array; handing it a
 *    pointer is a compile error, not a silent sizeof(pointer).
 *  - MIN/MAX evaluate their arguments twice (they are spelled exactly as in
 *    glibc's and musl's <sys/param.h>, so including both is harmless).
 *    Never pass expressions with side effects.
 *  - likely(x)/unlikely(x) are branch hints and yield 0 or 1.
 *
 * These names carry no module prefix on purpose: they are the spellings
 * every C programmer (and the Linux kernel) already reads without a lookup.
 */
#ifndef MESHD_CORE_UTIL_H
#define MESHD_CORE_UTIL_H

#include <stddef.h>

#define container_of(ptr, type, member) __extension__ ({                 \
	const __typeof__(((type *)0)->member) *container_of_p_ = (ptr);     \
	(type *)(void *)((char *)container_of_p_ - offsetof(type, member)); \
})

/* 0 when <e> is false; a compile error (negative array size) when true. */
#define UTIL_BUILD_BUG_ON_ZERO(e) (0 * sizeof(char[1 - 2 * !!(e)]))

/* Arrays decay to a pointer to their first element; pointers already are
 * one, which is what this detects. */
#define UTIL_IS_ARRAY(a)                                                    \
	(!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])))

#define ARRAY_SIZE(a)                                                       \
	(sizeof(a) / sizeof((a)[0]) + UTIL_BUILD_BUG_ON_ZERO(!UTIL_IS_ARRAY(a)))

#ifndef MIN
#define MIN(a,b) (((a)<(b))?(a):(b))
#endif
#ifndef MAX
#define MAX(a,b) (((a)>(b))?(a):(b))
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
