/* prof_search.c: vt_prof_search, a small driver for profiling Vectron's
 * search alone (perf, callgrind): builds an index on a benchmark data set
 * once, saves it, and on later runs loads it and only runs queries. Not a
 * benchmark: vt_bench_hnsw is the one that compares with hnswlib.
 *
 *   vt_prof_search DATASET f32|int8 EF [QUERIES [OVERSAMPLING [REPS]]]
 *
 * The index file is $VT_BENCH_CACHE (or ./build/bench-cache)/prof-DATASET-
 * QUANT.vtx. Under callgrind, count only the queries with
 *   valgrind --tool=callgrind --collect-atstart=no \
 *            --toggle-collect=vt_hnsw_search build/release/bench/vt_prof_search ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "dataset.h"
#include "hnsw/hnsw.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s DATASET f32|int8 EF [QUERIES [OVERSAMPLING [REPS]]]\n",
			argv[0]);
		return 1;
	}
	const char *name = argv[1];
	int int8 = strcmp(argv[2], "int8") == 0;
	uint32_t ef = (uint32_t)atoi(argv[3]);
	size_t nq = argc > 4 ? (size_t)atol(argv[4]) : 0;
	float os = argc > 5 ? (float)atof(argv[5]) : 0.0f;
	int reps = argc > 6 ? atoi(argv[6]) : 1;
	const char *cache = getenv("VT_BENCH_CACHE");
	if (!cache)
		cache = "build/bench-cache";
	vt_errmsg err;
	vt_errmsg_clear(&err);
	vt_bench_data d;
	int rc = vt_bench_data_load(name, 0, nq, &d, &err);
	if (!rc)
		rc = vt_bench_gt_get(&d, cache, 2, &err);
	if (rc) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	char path[512];
	snprintf(path, sizeof path, "%s/prof-%s-%s.vtx", cache, name, argv[2]);
	vt_hnsw *h = NULL;
	if (vt_hnsw_load_file(path, NULL, &h, &err)) {
		vt_hnsw_params p;
		vt_hnsw_params_default(&p, d.dim,
				       d.dist == VT_BENCH_L2 ? VT_METRIC_L2 : VT_METRIC_COSINE);
		p.quant = int8 ? VT_QUANT_INT8 : VT_QUANT_NONE;
		p.initial_capacity = d.n;
		if ((rc = vt_hnsw_create(&p, &h, &err)))
			goto fail;
		fprintf(stderr, "building %s (%zu points)\n", path, d.n);
		for (size_t i = 0; i < d.n; i++)
			if ((rc = vt_hnsw_insert(h, i, d.base + i * d.dim)))
				goto fail;
		if ((rc = vt_hnsw_save_file(h, path, &err)))
			goto fail;
	}
	/* The queries run in chunks of 500, each timed alone in every
	 * repetition: on a shared machine the fastest of several short runs
	 * is the steadiest figure. */
	size_t hit = 0;
	enum { CHUNK = 500 };
	size_t nchunks = (d.nq + CHUNK - 1) / CHUNK;
	uint64_t *best = calloc(nchunks, sizeof *best);
	if (!best)
		return 1;
	for (int r = 0; r < reps; r++) {
		uint64_t c0 = vt_clock_thread_cpu_ns();
		for (size_t q = 0; q < d.nq; q++) {
			vt_hnsw_query qq;
			vt_hnsw_hit out[VT_BENCH_GT_K];
			size_t n;
			vt_hnsw_query_default(&qq, VT_BENCH_GT_K);
			qq.ef = ef;
			if (os > 0)
				qq.oversampling = os;
			if ((rc = vt_hnsw_search(h, d.queries + q * d.dim, &qq, out, &n)))
				goto fail;
			if (q % CHUNK == CHUNK - 1 || q == d.nq - 1) {
				uint64_t c1 = vt_clock_thread_cpu_ns();
				size_t j = q / CHUNK;
				if (!r || c1 - c0 < best[j])
					best[j] = c1 - c0;
			}
			if (!r)
				for (size_t i = 0; i < n; i++)
					for (size_t j = 0; j < VT_BENCH_GT_K; j++)
						hit += out[i].label ==
						       d.gt_ids[q * VT_BENCH_GT_K + j];
			if (q % CHUNK == CHUNK - 1)
				c0 = vt_clock_thread_cpu_ns();
		}
	}
	/* Each chunk's fastest repetition, summed: filters out the bursts in
	 * which a neighbour took the memory bus. */
	double s = 0;
	for (size_t j = 0; j < nchunks; j++)
		s += (double)best[j] / 1e9;
	free(best);
	printf("%s %s ef=%u os=%g: recall@10 %.4f, %.0f QPS (CPU, best of %d)\n", name,
	       argv[2], ef, (double)os, (double)hit / (double)(d.nq * VT_BENCH_GT_K),
	       (double)d.nq / s, reps);
	vt_hnsw_destroy(h);
	vt_bench_data_free(&d);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", vt_strerror(rc), err.msg);
	return 1;
}
