/* demo.c: `vectron demo`: loads Fashion-MNIST (Debian's
 * dataset-fashion-mnist), builds an index on N threads with a progress bar,
 * computes exact answers with the index's brute-force search, and prints
 * recall@10 and queries per second over a sweep of ef. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/progress.h"
#include "dataset.h"
#include "demo.h"
#include "hnsw/hnsw.h"
#include "simd/simd.h"

struct opts {
	const char *dataset;
	size_t n, nq;
	int threads;
	int quant;
	uint32_t m, efc;
};

struct build {
	vt_hnsw *h;
	const vt_bench_data *d;
	size_t next, done;
	int rc;
	pthread_mutex_t mu;
};

static void *build_worker(void *arg)
{
	struct build *b = arg;
	for (;;) {
		size_t i = __atomic_fetch_add(&b->next, 64, __ATOMIC_RELAXED);
		if (i >= b->d->n)
			return NULL;
		size_t end = i + 64 < b->d->n ? i + 64 : b->d->n;
		for (; i < end; i++) {
			int rc = vt_hnsw_insert(b->h, i, b->d->base + i * b->d->dim);
			if (rc) {
				__atomic_store_n(&b->rc, rc, __ATOMIC_RELAXED);
				return NULL;
			}
		}
		__atomic_fetch_add(&b->done, 64, __ATOMIC_RELAXED);
	}
}

static int usage(FILE *f, int rc)
{
	fprintf(f,
		"usage: vectron demo [options]\n"
		"  --dataset NAME   fmnist (L2) or fmnist-cos (cosine)   [fmnist]\n"
		"  --points N       base vectors to index (max 60000)     [60000]\n"
		"  --queries N      queries to run (max 10000)            [1000]\n"
		"  --threads N      build threads                         [2]\n"
		"  --int8           int8 traversal + float re-scoring     [off]\n"
		"  --m N            links per node                        [16]\n"
		"  --ef-construction N                                    [200]\n");
	return rc;
}

int vt_cli_demo(int argc, char **argv)
{
	struct opts o = {"fmnist", 60000, 1000, 2, VT_QUANT_NONE, 16, 200};
	static const struct option lo[] = {
		{"dataset", required_argument, 0, 'd'},
		{"points", required_argument, 0, 'n'},
		{"queries", required_argument, 0, 'q'},
		{"threads", required_argument, 0, 't'},
		{"int8", no_argument, 0, 'i'},
		{"m", required_argument, 0, 'm'},
		{"ef-construction", required_argument, 0, 'e'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o.dataset = optarg; break;
		case 'n': o.n = strtoul(optarg, NULL, 10); break;
		case 'q': o.nq = strtoul(optarg, NULL, 10); break;
		case 't': o.threads = atoi(optarg); break;
		case 'i': o.quant = VT_QUANT_INT8; break;
		case 'm': o.m = (uint32_t)atoi(optarg); break;
		case 'e': o.efc = (uint32_t)atoi(optarg); break;
		case 'h': return usage(stdout, 0);
		default: return usage(stderr, 2);
		}
	}
	if (strcmp(o.dataset, "fmnist") && strcmp(o.dataset, "fmnist-cos")) {
		fprintf(stderr, "vectron demo: --dataset must be fmnist or fmnist-cos\n");
		return 2;
	}
	if (o.n < 100 || o.n > 60000 || o.nq < 1 || o.nq > 10000 ||
	    o.threads < 1 || o.threads > 64) {
		fprintf(stderr, "vectron demo: --points 100..60000, --queries 1..10000, --threads 1..64\n");
		return 2;
	}

	vt_errmsg err;
	vt_bench_data d;
	printf("vectron demo: loading %s (%zu points, %zu queries) from %s\n",
	       o.dataset, o.n, o.nq, VT_BENCH_FMNIST_DIR);
	if (vt_bench_data_load(o.dataset, o.n, o.nq, &d, &err)) {
		fprintf(stderr, "vectron demo: %s\n(install Debian's dataset-fashion-mnist: make deps)\n", err.msg);
		return 1;
	}
	int metric = d.dist == VT_BENCH_L2 ? VT_METRIC_L2 : VT_METRIC_COSINE;
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, d.dim, metric);
	p.m = o.m;
	p.ef_construction = o.efc;
	p.quant = o.quant;
	p.initial_capacity = d.n;
	vt_hnsw *h;
	if (vt_hnsw_create(&p, &h, &err)) {
		fprintf(stderr, "vectron demo: %s\n", err.msg);
		vt_bench_data_free(&d);
		return 1;
	}
	printf("index: dim %u, metric %s, M %u, ef_construction %u, %s, SIMD %s\n",
	       d.dim, vt_metric_name(metric), p.m, p.ef_construction,
	       o.quant ? "int8 + re-score" : "float32", vt_simd()->name);

	struct build b = {h, &d, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
	pthread_t th[64];
	vt_progress pr;
	vt_progress_start(&pr, stdout, "building", d.n);
	uint64_t t0 = vt_clock_mono_ns();
	for (int i = 0; i < o.threads; i++)
		pthread_create(&th[i], NULL, build_worker, &b);
	while (__atomic_load_n(&b.done, __ATOMIC_RELAXED) < d.n &&
	       !__atomic_load_n(&b.rc, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&b.next, __ATOMIC_RELAXED) < d.n + 64 * (size_t)o.threads) {
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
		size_t done = __atomic_load_n(&b.done, __ATOMIC_RELAXED);
		vt_progress_update(&pr, done < d.n ? done : d.n);
		if (__atomic_load_n(&b.next, __ATOMIC_RELAXED) >= d.n)
			break;
	}
	for (int i = 0; i < o.threads; i++)
		pthread_join(th[i], NULL);
	double secs = (double)(vt_clock_mono_ns() - t0) / 1e9;
	vt_progress_done(&pr, d.n);
	if (b.rc) {
		fprintf(stderr, "vectron demo: insert failed: %s\n", vt_strerror(b.rc));
		goto out;
	}
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	printf("built %zu points in %.1f s on %d threads (%.0f points/s); index memory %.1f MiB "
	       "(graph %.1f, vectors %.1f, codes %.1f)\n",
	       d.n, secs, o.threads, (double)d.n / secs,
	       (double)(st.bytes_graph + st.bytes_vectors + st.bytes_codes + st.bytes_other) / 1048576.0,
	       (double)st.bytes_graph / 1048576.0, (double)st.bytes_vectors / 1048576.0,
	       (double)st.bytes_codes / 1048576.0);

	/* Exact answers from the index's own brute force (float32). */
	uint64_t *truth = vt_malloc(d.nq * 10 * sizeof *truth);
	vt_hnsw_query q;
	vt_hnsw_hit hits[10];
	size_t nh;
	vt_hnsw_query_default(&q, 10);
	q.exact = 1;
	vt_progress_start(&pr, stdout, "exact answers", d.nq);
	for (size_t i = 0; i < d.nq; i++) {
		vt_hnsw_search(h, d.queries + i * d.dim, &q, hits, &nh);
		for (size_t j = 0; j < 10; j++)
			truth[i * 10 + j] = j < nh ? hits[j].label : UINT64_MAX;
		vt_progress_update(&pr, i + 1);
	}
	vt_progress_done(&pr, d.nq);

	printf("\n%6s  %9s  %10s  %9s\n", "ef", "recall@10", "QPS (1 thr)", "latency");
	static const uint32_t efs[] = {10, 16, 24, 32, 48, 64, 128};
	q.exact = 0;
	for (size_t e = 0; e < sizeof efs / sizeof *efs; e++) {
		q.ef = efs[e];
		size_t found = 0;
		uint64_t c0 = vt_clock_thread_cpu_ns();
		for (size_t i = 0; i < d.nq; i++) {
			vt_hnsw_search(h, d.queries + i * d.dim, &q, hits, &nh);
			for (size_t j = 0; j < nh; j++)
				for (size_t t = 0; t < 10; t++)
					if (hits[j].label == truth[i * 10 + t]) {
						found++;
						break;
					}
		}
		double cs = (double)(vt_clock_thread_cpu_ns() - c0) / 1e9;
		printf("%6u  %9.4f  %10.0f  %7.1f us\n", efs[e],
		       (double)found / (double)(d.nq * 10), (double)d.nq / cs,
		       cs * 1e6 / (double)d.nq);
	}
	printf("\nQPS is per thread from CPU time. For the comparison with hnswlib: make bench\n");
	vt_free(truth);
out:
	vt_hnsw_destroy(h);
	vt_bench_data_free(&d);
	return b.rc ? 1 : 0;
}
