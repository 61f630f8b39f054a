/* ref_hnswlib.h: a C interface to hnswlib (Debian's libhnswlib-dev headers,
 * compiled with -O3 -march=native), the reference the benchmark measures
 * Vectron against. Not part of the product: it exists only in bench/. */
#ifndef VT_BENCH_REF_HNSWLIB_H
#define VT_BENCH_REF_HNSWLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_bench_ref vt_bench_ref; /* opaque */

/* Byte counts of hnswlib's own structures, from their sizes (what the
 * allocator was asked for, plus glibc's 8-byte chunk header per small
 * block). */
typedef struct vt_bench_ref_mem {
	size_t level0;      /* data_level0_memory_: links, vectors, labels */
	size_t upper;       /* linkLists_ blocks of nodes above layer 0 */
	size_t locks;       /* per-node and update mutexes */
	size_t label_map;   /* unordered_map label -> internal id */
	size_t visited;     /* visited-list pool (one list per thread seen) */
	size_t other;       /* levels array, linkLists_ pointers */
	size_t total;
} vt_bench_ref_mem;

/* Creates an empty HierarchicalNSW for `max_elements` points with M, efC and
 * the level seed as given. `ip` selects InnerProductSpace (distance
 * 1 - a.b, for unit-length data), otherwise L2Space. Returns 0, or a
 * negative VT_E* code (VT_ENOMEM, VT_EINTERNAL) with *out NULL. */
int vt_bench_ref_create(uint32_t dim, int ip, size_t max_elements, uint32_t m,
			uint32_t ef_construction, uint64_t seed,
			vt_bench_ref **out);

/* hnswlib's addPoint: thread-safe for distinct labels. Returns 0 or a
 * negative VT_E* code (an exception inside hnswlib becomes VT_EINTERNAL,
 * or VT_ENOMEM for bad_alloc). */
int vt_bench_ref_add(vt_bench_ref *r, uint64_t label, const float *vec);

/* One query: setEf(ef) then searchKnn(q, k), results nearest first into
 * labels[k] and dists[k]; *n_out receives their count. Not thread-safe
 * (setEf changes shared state); the benchmark searches on one thread. */
int vt_bench_ref_search(vt_bench_ref *r, const float *q, uint32_t k,
			uint32_t ef, uint64_t *labels, float *dists,
			size_t *n_out);

/* Fills *m. `threads` is the number of threads that ever used the index at
 * once (each gets a visited list from the pool). */
void vt_bench_ref_mem_get(vt_bench_ref *r, int threads, vt_bench_ref_mem *m);

/* The hnswlib version string the headers correspond to (Debian's). */
const char *vt_bench_ref_version(void);

void vt_bench_ref_destroy(vt_bench_ref *r);

#ifdef __cplusplus
}
#endif

#endif
