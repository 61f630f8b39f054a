/* dataset.h: benchmark data sets (Fashion-MNIST from Debian's package, its
 * unit-length cosine variant, a synthetic clustered set) and their exact
 * top-k ground truth, cached on disk outside the repo. Not a general data
 * loader: it knows these three sets and nothing else. */
#ifndef VT_BENCH_DATASET_H
#define VT_BENCH_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Neighbours kept per query in the ground truth. */
#define VT_BENCH_GT_K 10u

/* Where Debian's dataset-fashion-mnist installs the IDX files. */
#define VT_BENCH_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* The distance a data set is searched with. */
enum vt_bench_dist {
	VT_BENCH_L2 = 0,  /* squared Euclidean */
	VT_BENCH_COS = 1, /* 1 - a.b on unit-length vectors (cosine = IP) */
};

typedef struct vt_bench_data {
	char name[32];     /* "fmnist", "fmnist-cos", "synth" */
	int dist;          /* enum vt_bench_dist */
	uint32_t dim;
	size_t n;          /* base vectors */
	size_t nq;         /* queries */
	float *base;       /* n * dim, vt_malloc_aligned (64 B) */
	float *queries;    /* nq * dim, vt_malloc_aligned (64 B) */
	uint64_t checksum; /* XXH3 over dim, n, nq, base and queries */

	/* Filled by vt_bench_gt_get. */
	uint32_t *gt_ids;  /* nq * VT_BENCH_GT_K, nearest first */
	double *gt_dist;   /* nq * VT_BENCH_GT_K, exact (double) distances */
	uint32_t gt_ties;  /* queries whose k-th and (k+1)-th exact distances
			      are equal: id-overlap recall is ambiguous there */
	uint32_t gt_rescans; /* queries the float screen could not certify,
				re-done by a full double-precision scan */
	int gt_from_cache; /* 1 if loaded from the cache, 0 if computed */
} vt_bench_data;

/* Loads data set `name` ("fmnist", "fmnist-cos" or "synth"). `n_base` and
 * `n_queries` cap the sizes (0 = the full set: 60,000/10,000 for the
 * Fashion-MNIST sets, 200,000/10,000 for synth); the first rows are kept.
 * Fashion-MNIST comes from VT_BENCH_FMNIST_DIR (gzip'd IDX, header
 * validated; VT_EIO/VT_ECORRUPT with a message on a missing or bad file).
 * The caller releases *d with vt_bench_data_free, also on error. */
int vt_bench_data_load(const char *name, size_t n_base, size_t n_queries,
		       vt_bench_data *d, vt_errmsg *err);

/* Fills d->gt_* with the exact top-VT_BENCH_GT_K of every query. Looks for
 * a cache file in `cache_dir` (created if missing) named after the data set,
 * its sizes and checksum; a file whose header or checksum does not match is
 * ignored and rewritten. Otherwise computes the truth on `threads` threads:
 * a float screen keeps the best 32 candidates per query, which are ranked
 * again in double precision; a query whose 32nd float distance is not
 * provably beyond its 10th exact one is redone by a full double scan. */
int vt_bench_gt_get(vt_bench_data *d, const char *cache_dir, int threads,
		    vt_errmsg *err);

/* Re-checks the ground truth of `samples` queries spread over the set
 * against a full double-precision scan (a cached file could come from an
 * older, buggy build). VT_ECORRUPT with a message on a mismatch. */
int vt_bench_gt_verify(const vt_bench_data *d, size_t samples, vt_errmsg *err);

/* The exact (double precision) distance between query `qi` and base `id`. */
double vt_bench_exact_dist(const vt_bench_data *d, size_t qi, size_t id);

/* Releases everything *d holds and zeroes it. */
void vt_bench_data_free(vt_bench_data *d);

#endif
