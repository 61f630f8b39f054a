/* alloc.h: every allocation of Vectron goes through here, so the process can
 * report its memory and tests can make the n-th allocation fail. Not a pool
 * or an arena: it forwards to the C allocator (or to installed hooks). */
#ifndef VT_BASE_ALLOC_H
#define VT_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* malloc/calloc/realloc/free with the usual contracts: NULL on failure
 * (or when failure injection fires), vt_free(NULL) is a no-op. Memory from
 * these must be released with vt_free, never free(). */
VT_API void *vt_malloc(size_t size);
VT_API void *vt_calloc(size_t n, size_t size);
VT_API void *vt_realloc(void *p, size_t size);
VT_API void vt_free(void *p);

/* Returns a copy of `s` the caller frees with vt_free, or NULL. */
VT_API char *vt_strdup(const char *s);

/* Returns `size` bytes aligned to `align` (a power of two >= 16), zeroed,
 * or NULL. Large blocks (>= 2 MiB) are aligned to 2 MiB and advised for
 * transparent huge pages. Release with vt_free_aligned(p). */
VT_API void *vt_malloc_aligned(size_t align, size_t size);
VT_API void vt_free_aligned(void *p);

/* Bytes currently allocated through this module (all threads). */
VT_API int64_t vt_alloc_bytes(void);

/* Failure injection for tests: the n-th allocation from now (n >= 1) fails,
 * and so does every later one if `sticky`. n = 0 disables injection.
 * Counting is process-wide and thread-safe. */
VT_API void vt_alloc_fail_at(uint64_t n, int sticky);

/* Number of allocation calls so far (for tests that sweep every failure
 * point of an operation). */
VT_API uint64_t vt_alloc_calls(void);

/* Replaces the underlying allocator; NULL restores libc's. The hooks must be
 * installed before the first allocation, or after the last free. */
typedef struct vt_alloc_hooks {
	void *(*malloc_fn)(size_t);
	void *(*realloc_fn)(void *, size_t);
	void (*free_fn)(void *);
} vt_alloc_hooks;
VT_API void vt_alloc_set_hooks(const vt_alloc_hooks *hooks);

#endif
