/* pool.h: a fixed set of worker threads for fork-join loops: run n tasks,
 * return when all are done. For CPU work that splits into independent
 * pieces (indexing a batch, scoring shards). Not a general executor: tasks
 * must not block on each other. Several loops (from several threads) may
 * run at once and share the workers; each caller also runs tasks of its own
 * loop, so a loop started from inside a task cannot deadlock. */
#ifndef VT_BASE_POOL_H
#define VT_BASE_POOL_H

#include <stddef.h>

#include "error.h"

typedef struct vt_pool vt_pool; /* opaque */

/* Runs task `i` of a loop; `ctx` is the loop's. */
typedef void (*vt_pool_fn)(void *ctx, size_t i);

/* Online CPUs (at least 1). */
VT_API unsigned vt_cpu_count(void);

/* Starts `workers` threads (0 is allowed: the caller runs every task).
 * VT_ENOMEM / VT_EINTERNAL if threads cannot start. The caller releases
 * *out with vt_pool_destroy. */
VT_API int vt_pool_create(unsigned workers, vt_pool **out);

/* As vt_pool_create, with the workers at scheduling priority `nice`
 * (setpriority; 0 = unchanged, 1..19 = lower) for background work that
 * must not take the CPU from acknowledging writes. A priority that cannot
 * be set is logged and ignored. */
VT_API int vt_pool_create_nice(unsigned workers, int nice, vt_pool **out);

/* Lowers the calling thread's scheduling priority to `nice` (as above). */
VT_API void vt_thread_nice(int nice);

/* Stops and joins the workers (NULL is a no-op). No loop may be running. */
VT_API void vt_pool_destroy(vt_pool *p);

/* Runs fn(ctx, i) for every i in [0, n) on the workers and the calling
 * thread, and returns when all have finished. Tasks are handed out one at
 * a time under a mutex: make each worth at least a few microseconds. */
VT_API void vt_pool_run(vt_pool *p, size_t n, vt_pool_fn fn, void *ctx);

/* Threads a loop runs on: workers + 1. */
VT_API unsigned vt_pool_width(const vt_pool *p);

#endif
