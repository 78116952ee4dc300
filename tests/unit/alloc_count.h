/*
 * Counting allocator for engine unit tests: alloc_count counts malloc-family
 * calls while alloc_armed is set. The test binary's malloc family forwards to
 * glibc's; under AddressSanitizer, which owns malloc, its allocation hook
 * counts instead. Call count_init() once before counting. Include in one
 * translation unit per test program (it defines malloc).
 */
#ifndef SL_TEST_ALLOC_COUNT_H
#define SL_TEST_ALLOC_COUNT_H

#include <stddef.h>

static volatile int alloc_armed;
static volatile long alloc_count;

#if defined(__SANITIZE_ADDRESS__)
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
        (void)p, (void)n;
        if (alloc_armed)
                alloc_count++;
}

static void on_free(const volatile void *p)
{
        (void)p;
}

static void count_init(void)
{
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_realloc(p, n);
}

void free(void *p)
{
        __libc_free(p);
}

int posix_memalign(void **p, size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        *p = __libc_memalign(align, n);
        return *p ? 0 : 12 /* ENOMEM */;
}

void *aligned_alloc(size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_memalign(align, n);
}

static void count_init(void)
{
}
#endif

#endif
