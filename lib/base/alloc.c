/* alloc.c: counted allocation with failure injection.
 * Each block carries a 16-byte header holding its size, so vt_free can keep
 * the byte counter exact without asking the C library. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HDR 16u
#define HUGE_SIZE (2u << 20)

static _Atomic int64_t g_bytes;
static _Atomic uint64_t g_calls;
static _Atomic uint64_t g_fail_at; /* absolute call number, 0 = off */
static _Atomic int g_fail_sticky;
static vt_alloc_hooks g_hooks = {malloc, realloc, free};

static int should_fail(void)
{
	uint64_t n = atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed) + 1;
	uint64_t at = atomic_load_explicit(&g_fail_at, memory_order_relaxed);
	if (at == 0)
		return 0;
	if (n == at)
		return 1;
	return n > at && atomic_load_explicit(&g_fail_sticky, memory_order_relaxed);
}

void vt_alloc_fail_at(uint64_t n, int sticky)
{
	atomic_store(&g_fail_sticky, sticky);
	atomic_store(&g_fail_at, n ? atomic_load(&g_calls) + n : 0);
}

uint64_t vt_alloc_calls(void)
{
	return atomic_load(&g_calls);
}

int64_t vt_alloc_bytes(void)
{
	return atomic_load_explicit(&g_bytes, memory_order_relaxed);
}

void vt_alloc_set_hooks(const vt_alloc_hooks *hooks)
{
	if (hooks)
		g_hooks = *hooks;
	else
		g_hooks = (vt_alloc_hooks){malloc, realloc, free};
}

void *vt_malloc(size_t size)
{
	if (should_fail() || size > SIZE_MAX - HDR)
		return NULL;
	unsigned char *p = g_hooks.malloc_fn(size + HDR);
	if (!p)
		return NULL;
	memcpy(p, &size, sizeof size);
	atomic_fetch_add_explicit(&g_bytes, (int64_t)size, memory_order_relaxed);
	return p + HDR;
}

void *vt_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	void *p = vt_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *vt_realloc(void *ptr, size_t size)
{
	if (!ptr)
		return vt_malloc(size);
	if (should_fail() || size > SIZE_MAX - HDR)
		return NULL;
	unsigned char *base = (unsigned char *)ptr - HDR;
	size_t old;
	memcpy(&old, base, sizeof old);
	unsigned char *p = g_hooks.realloc_fn(base, size + HDR);
	if (!p)
		return NULL;
	memcpy(p, &size, sizeof size);
	atomic_fetch_add_explicit(&g_bytes, (int64_t)size - (int64_t)old,
				  memory_order_relaxed);
	return p + HDR;
}

void vt_free(void *ptr)
{
	if (!ptr)
		return;
	unsigned char *base = (unsigned char *)ptr - HDR;
	size_t old;
	memcpy(&old, base, sizeof old);
	atomic_fetch_sub_explicit(&g_bytes, (int64_t)old, memory_order_relaxed);
	g_hooks.free_fn(base);
}

char *vt_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = vt_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* Aligned blocks: [padding][raw pointer][size][aligned data...]; the two
 * words just below the returned pointer let vt_free_aligned undo it. */
void *vt_malloc_aligned(size_t align, size_t size)
{
	if (align < 16 || (align & (align - 1)))
		return NULL;
	if (size >= HUGE_SIZE && align < HUGE_SIZE)
		align = HUGE_SIZE;
	if (should_fail() || size > SIZE_MAX - align - HDR)
		return NULL;
	size_t total = size + align + HDR;
	unsigned char *raw = g_hooks.malloc_fn(total);
	if (!raw)
		return NULL;
	uintptr_t a = ((uintptr_t)raw + HDR + align - 1) & ~(uintptr_t)(align - 1);
	unsigned char *p = (unsigned char *)a;
	memcpy(p - 16, &raw, sizeof raw);
	memcpy(p - 8, &size, sizeof size);
#ifdef MADV_HUGEPAGE
	if (size >= HUGE_SIZE)
		madvise(p, size & ~(size_t)(HUGE_SIZE - 1), MADV_HUGEPAGE);
#endif
	memset(p, 0, size);
	atomic_fetch_add_explicit(&g_bytes, (int64_t)size, memory_order_relaxed);
	return p;
}

void vt_free_aligned(void *ptr)
{
	if (!ptr)
		return;
	unsigned char *p = ptr;
	unsigned char *raw;
	size_t size;
	memcpy(&raw, p - 16, sizeof raw);
	memcpy(&size, p - 8, sizeof size);
	atomic_fetch_sub_explicit(&g_bytes, (int64_t)size, memory_order_relaxed);
	g_hooks.free_fn(raw);
}
