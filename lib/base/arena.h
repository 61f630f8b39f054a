/* arena.h: a bump allocator for memory that dies together (one request's
 * decoded message, its response, its scratch), with deferred clean-ups for
 * things owned elsewhere that must live as long. Not thread-safe: one
 * arena per request. */
#ifndef VT_BASE_ARENA_H
#define VT_BASE_ARENA_H

#include <stddef.h>

#include "error.h"

typedef struct vt_arena vt_arena; /* opaque */

/* Creates an arena whose allocations may total at most `max` bytes (0:
 * unlimited). NULL when out of memory. */
VT_API vt_arena *vt_arena_create(size_t max);

/* Runs the deferred clean-ups (last registered first) and frees every
 * allocation. NULL is a no-op. */
VT_API void vt_arena_destroy(vt_arena *a);

/* `n` bytes aligned to 16, valid until destroy; NULL when out of memory
 * or past the cap. Zeroed by vt_arena_calloc only. */
VT_API void *vt_arena_alloc(vt_arena *a, size_t n);
VT_API void *vt_arena_calloc(vt_arena *a, size_t count, size_t size);
VT_API char *vt_arena_strndup(vt_arena *a, const char *s, size_t n);

/* Calls fn(p) at destroy. VT_ENOMEM (and then calls fn(p) at once). */
VT_API int vt_arena_defer(vt_arena *a, void (*fn)(void *), void *p);

/* Bytes handed out so far. */
VT_API size_t vt_arena_used(const vt_arena *a);

#endif
