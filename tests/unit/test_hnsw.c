/* test_hnsw.c: unit tests for lib/hnsw: recall against brute force for
 * every metric, update/delete/consolidate, filters, int8 with re-scoring,
 * floats in a mapped file, save/load and its corruption handling, growth,
 * bad input, and allocation failures on every path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "hnsw/hnsw.h"

/* ---- helpers -------------------------------------------------------------- */

/* Clustered data: `nc` Gaussian-ish blobs, so the graph has structure like
 * real embeddings rather than uniform noise. */
static float *make_data(uint32_t n, uint32_t dim, uint64_t seed, int integer)
{
	float *x = malloc((size_t)n * dim * sizeof *x);
	float centers[16][256];
	vt_rng r;
	/* The same centres for every seed: queries come from the data's own
	 * distribution (out-of-distribution queries are a different test). */
	vt_rng_seed(&r, 1000);
	for (int c = 0; c < 16; c++)
		for (uint32_t j = 0; j < dim && j < 256; j++)
			centers[c][j] = (float)(vt_rng_double(&r) * 2 - 1);
	vt_rng_seed(&r, seed);
	for (uint32_t i = 0; i < n; i++) {
		int c = (int)(vt_rng_next(&r) % 16);
		for (uint32_t j = 0; j < dim; j++) {
			double g = vt_rng_double(&r) + vt_rng_double(&r) + vt_rng_double(&r) - 1.5;
			float v = centers[c][j % 256] + (float)(g * 1.2);
			if (integer) {
				v = floorf((v + 2.0f) * 60.0f);
				v = v < 0 ? 0 : v > 255 ? 255 : v;
			}
			x[(size_t)i * dim + j] = v;
		}
	}
	return x;
}

static double ref_dist(int metric, const float *a, const float *b, uint32_t dim)
{
	double s = 0, na = 0, nb = 0;
	for (uint32_t j = 0; j < dim; j++) {
		if (metric == VT_METRIC_L2)
			s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
		else
			s += (double)a[j] * b[j];
		na += (double)a[j] * a[j];
		nb += (double)b[j] * b[j];
	}
	if (metric == VT_METRIC_L2)
		return s;
	if (metric == VT_METRIC_IP)
		return -s;
	return 1.0 - s / (sqrt(na) * sqrt(nb));
}

typedef int (*keep_fn)(uint64_t label, void *ctx);

/* True top-k labels (0..n-1 with keep()) by brute force in double. */
static void ref_topk(int metric, const float *data, uint32_t n, uint32_t dim,
		     const float *q, uint32_t k, keep_fn keep, void *ctx,
		     uint64_t *out)
{
	double *bd = malloc(k * sizeof *bd);
	uint32_t cnt = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (keep && !keep(i, ctx))
			continue;
		double d = ref_dist(metric, q, data + (size_t)i * dim, dim);
		if (cnt == k && d >= bd[k - 1])
			continue;
		uint32_t p = cnt < k ? cnt++ : k - 1;
		while (p > 0 && bd[p - 1] > d) {
			bd[p] = bd[p - 1];
			out[p] = out[p - 1];
			p--;
		}
		bd[p] = d;
		out[p] = i;
	}
	for (uint32_t i = cnt; i < k; i++)
		out[i] = UINT64_MAX;
	free(bd);
}

static vt_hnsw *build(const vt_hnsw_params *p, const float *data, uint32_t n)
{
	vt_hnsw *h;
	vt_errmsg e;
	assert_int_equal(vt_hnsw_create(p, &h, &e), 0);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(vt_hnsw_insert(h, i, data + (size_t)i * p->dim), 0);
	return h;
}

/* Mean recall@k of the index over `nq` queries against brute force. */
static double recall(vt_hnsw *h, int metric, const float *data, uint32_t n,
		     uint32_t dim, const float *queries, uint32_t nq,
		     const vt_hnsw_query *q, keep_fn keep, void *ctx)
{
	uint32_t k = q->k;
	vt_hnsw_hit *hits = malloc(k * sizeof *hits);
	uint64_t *truth = malloc(k * sizeof *truth);
	size_t found = 0, want = 0;
	for (uint32_t i = 0; i < nq; i++) {
		const float *qv = queries + (size_t)i * dim;
		size_t nh;
		assert_int_equal(vt_hnsw_search(h, qv, q, hits, &nh), 0);
		ref_topk(metric, data, n, dim, qv, k, keep, ctx, truth);
		for (uint32_t a = 0; a < k; a++) {
			if (truth[a] == UINT64_MAX)
				continue;
			want++;
			for (size_t b = 0; b < nh; b++)
				if (hits[b].label == truth[a]) {
					found++;
					break;
				}
		}
		for (size_t b = 1; b < nh; b++)
			assert_true(hits[b - 1].dist <= hits[b].dist);
		if (keep)
			for (size_t b = 0; b < nh; b++)
				assert_true(keep(hits[b].label, ctx));
	}
	free(hits);
	free(truth);
	return want ? (double)found / (double)want : 1.0;
}

#define N 3000
#define DIM 32
#define NQ 100

/* ---- tests ------------------------------------------------------------------ */

static void test_params_are_validated(void **state)
{
	(void)state;
	vt_hnsw_params p;
	vt_hnsw *h = NULL;
	vt_errmsg e;
	vt_hnsw_params_default(&p, 0, VT_METRIC_L2);
	assert_int_equal(vt_hnsw_create(&p, &h, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dimension"));
	vt_hnsw_params_default(&p, 8, 7);
	assert_int_equal(vt_hnsw_create(&p, &h, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "metric"));
	vt_hnsw_params_default(&p, 8, VT_METRIC_L2);
	p.m = 1;
	assert_int_equal(vt_hnsw_create(&p, &h, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "m 1"));
	vt_hnsw_params_default(&p, 8, VT_METRIC_L2);
	p.quant = VT_QUANT_INT8;
	p.quantile = 0.2f;
	assert_int_equal(vt_hnsw_create(&p, &h, &e), VT_EINVAL);
	assert_null(h);
	assert_string_equal(vt_metric_name(VT_METRIC_COSINE), "cosine");
	assert_int_equal(vt_metric_parse("dot"), VT_METRIC_IP);
	assert_int_equal(vt_metric_parse("euclid"), VT_METRIC_L2);
	assert_int_equal(vt_metric_parse("manhattan"), -1);
}

static void check_metric_recall(int metric)
{
	float *data = make_data(N, DIM, 1, 0);
	float *qs = make_data(NQ, DIM, 2, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, metric);
	p.initial_capacity = 16; /* force growth */
	vt_hnsw *h = build(&p, data, N);
	vt_hnsw_query q;
	vt_hnsw_query_default(&q, 10);
	q.ef = 64;
	double r = recall(h, metric, data, N, DIM, qs, NQ, &q, NULL, NULL);
	print_message("metric %d: recall %.3f\n", metric, r);
	assert_true(r >= 0.95);
	q.exact = 1;
	r = recall(h, metric, data, N, DIM, qs, NQ, &q, NULL, NULL);
	assert_true(r >= 0.999);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_int_equal(st.count, N);
	assert_true(st.capacity >= N);
	vt_hnsw_destroy(h);
	free(data);
	free(qs);
}

static void test_recall_l2(void **state)
{
	(void)state;
	check_metric_recall(VT_METRIC_L2);
}

static void test_recall_ip(void **state)
{
	(void)state;
	check_metric_recall(VT_METRIC_IP);
}

static void test_recall_cosine(void **state)
{
	(void)state;
	check_metric_recall(VT_METRIC_COSINE);
}

static void test_distances_have_stated_meaning(void **state)
{
	(void)state;
	float a[4] = {1, 0, 0, 0}, b[4] = {0, 2, 0, 0}, q[4] = {1, 1, 0, 0};
	vt_hnsw_hit hit[2];
	size_t n;
	vt_hnsw_query qq;
	vt_hnsw_query_default(&qq, 2);
	for (int metric = 0; metric < 3; metric++) {
		vt_hnsw_params p;
		vt_hnsw *h;
		vt_hnsw_params_default(&p, 4, metric);
		assert_int_equal(vt_hnsw_create(&p, &h, NULL), 0);
		assert_int_equal(vt_hnsw_insert(h, 10, a), 0);
		assert_int_equal(vt_hnsw_insert(h, 20, b), 0);
		assert_int_equal(vt_hnsw_search(h, q, &qq, hit, &n), 0);
		assert_int_equal(n, 2);
		if (metric == VT_METRIC_L2) { /* squared L2: 1 and 2 */
			assert_int_equal(hit[0].label, 10);
			assert_float_equal(hit[0].dist, 1.0f, 1e-6);
			assert_float_equal(hit[1].dist, 2.0f, 1e-6);
		} else if (metric == VT_METRIC_IP) { /* -dot: -2 and -1 */
			assert_int_equal(hit[0].label, 20);
			assert_float_equal(hit[0].dist, -2.0f, 1e-6);
			assert_float_equal(hit[1].dist, -1.0f, 1e-6);
		} else { /* 1 - cos: both 1 - 1/sqrt(2) */
			assert_float_equal(hit[0].dist, 1.0f - (float)M_SQRT1_2, 1e-5);
			assert_float_equal(hit[1].dist, 1.0f - (float)M_SQRT1_2, 1e-5);
			float got[4];
			assert_int_equal(vt_hnsw_get(h, 20, got), 0);
			assert_float_equal(got[1], 1.0f, 1e-6); /* normalised */
		}
		vt_hnsw_destroy(h);
	}
}

static void test_bad_input_is_refused(void **state)
{
	(void)state;
	vt_hnsw_params p;
	vt_hnsw *h;
	vt_hnsw_params_default(&p, 4, VT_METRIC_COSINE);
	assert_int_equal(vt_hnsw_create(&p, &h, NULL), 0);
	float zero[4] = {0}, nan4[4] = {1, NAN, 0, 0}, inf4[4] = {INFINITY, 0, 0, 0};
	float ok[4] = {1, 2, 3, 4};
	assert_int_equal(vt_hnsw_insert(h, 1, zero), VT_EINVAL);
	assert_int_equal(vt_hnsw_insert(h, 1, nan4), VT_EINVAL);
	assert_int_equal(vt_hnsw_insert(h, 1, inf4), VT_EINVAL);
	assert_int_equal(vt_hnsw_contains(h, 1), 0);
	assert_int_equal(vt_hnsw_insert(h, 1, ok), 0);
	vt_hnsw_query q;
	vt_hnsw_hit hit[1];
	size_t n;
	vt_hnsw_query_default(&q, 0);
	assert_int_equal(vt_hnsw_search(h, ok, &q, hit, &n), VT_EINVAL);
	q.k = VT_HNSW_MAX_K + 1;
	assert_int_equal(vt_hnsw_search(h, ok, &q, hit, &n), VT_EINVAL);
	vt_hnsw_query_default(&q, 1);
	assert_int_equal(vt_hnsw_search(h, nan4, &q, hit, &n), VT_EINVAL);
	assert_int_equal(vt_hnsw_search(h, zero, &q, hit, &n), VT_EINVAL);
	q.oversampling = 0.5f;
	assert_int_equal(vt_hnsw_search(h, ok, &q, hit, &n), VT_EINVAL);
	assert_int_equal(vt_hnsw_train(h, ok, 1), VT_ENOTSUP);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_int_equal(st.count, 1);
	vt_hnsw_destroy(h);
}

static void test_empty_index_returns_nothing(void **state)
{
	(void)state;
	vt_hnsw_params p;
	vt_hnsw *h;
	vt_hnsw_params_default(&p, 3, VT_METRIC_L2);
	assert_int_equal(vt_hnsw_create(&p, &h, NULL), 0);
	float v[3] = {1, 2, 3};
	vt_hnsw_query q;
	vt_hnsw_hit hit[5];
	size_t n = 99;
	vt_hnsw_query_default(&q, 5);
	assert_int_equal(vt_hnsw_search(h, v, &q, hit, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vt_hnsw_delete(h, 1), VT_ENOENT);
	assert_int_equal(vt_hnsw_get(h, 1, v), VT_ENOENT);
	/* k larger than the index: everything, sorted */
	for (int i = 0; i < 3; i++) {
		v[0] = (float)i;
		assert_int_equal(vt_hnsw_insert(h, (uint64_t)i, v), 0);
	}
	v[0] = 0;
	assert_int_equal(vt_hnsw_search(h, v, &q, hit, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(hit[0].label, 0);
	assert_int_equal(hit[2].label, 2);
	vt_hnsw_destroy(h);
}

static void test_update_replaces_vector(void **state)
{
	(void)state;
	float *data = make_data(N, DIM, 3, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
	vt_hnsw *h = build(&p, data, N);
	/* Move point 7 onto point 8's position plus a hair. */
	float v[DIM], got[DIM];
	memcpy(v, data + 8 * DIM, sizeof v);
	v[0] += 1e-3f;
	assert_int_equal(vt_hnsw_insert(h, 7, v), 0);
	assert_int_equal(vt_hnsw_get(h, 7, got), 0);
	assert_memory_equal(got, v, sizeof v);
	vt_hnsw_query q;
	vt_hnsw_hit hit[2];
	size_t n;
	vt_hnsw_query_default(&q, 2);
	assert_int_equal(vt_hnsw_search(h, v, &q, hit, &n), 0);
	assert_int_equal(hit[0].label, 7);
	assert_int_equal(hit[1].label, 8);
	/* The old position no longer finds label 7 at distance 0. */
	assert_int_equal(vt_hnsw_search(h, data + 7 * DIM, &q, hit, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (hit[i].label == 7)
			assert_true(hit[i].dist > 0);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_int_equal(st.count, N);
	assert_int_equal(st.tombstones, 1);
	vt_hnsw_destroy(h);
	free(data);
}

static int keep_not_deleted(uint64_t label, void *ctx)
{
	return !((const uint8_t *)ctx)[label];
}

static void test_delete_and_consolidate(void **state)
{
	(void)state;
	float *data = make_data(N, DIM, 4, 0);
	float *qs = make_data(NQ, DIM, 5, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
	vt_hnsw *h = build(&p, data, N);
	uint8_t *del = calloc(N, 1);
	vt_rng r;
	vt_rng_seed(&r, 6);
	uint32_t ndel = 0;
	for (uint32_t i = 0; i < N; i++)
		if (vt_rng_double(&r) < 0.3) {
			assert_int_equal(vt_hnsw_delete(h, i), 0);
			assert_int_equal(vt_hnsw_delete(h, i), VT_ENOENT);
			assert_int_equal(vt_hnsw_contains(h, i), 0);
			del[i] = 1;
			ndel++;
		}
	vt_hnsw_query q;
	vt_hnsw_query_default(&q, 10);
	q.ef = 64;
	/* recall() asserts no deleted label comes back (keep_not_deleted). */
	double r1 = recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, keep_not_deleted, del);
	assert_true(r1 >= 0.93);
	q.exact = 1;
	assert_true(recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, keep_not_deleted, del) >= 0.999);
	q.exact = 0;

	assert_int_equal(vt_hnsw_consolidate(h), (int)ndel);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(st.free_slots, ndel);
	assert_int_equal(st.count, N - ndel);
	double r2 = recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, keep_not_deleted, del);
	assert_true(r2 >= 0.93);

	/* Re-inserting reuses the freed slots instead of growing. */
	uint64_t cap = st.capacity;
	for (uint32_t i = 0; i < N; i++)
		if (del[i]) {
			assert_int_equal(vt_hnsw_insert(h, i, data + (size_t)i * DIM), 0);
			del[i] = 0;
		}
	vt_hnsw_stats_get(h, &st);
	assert_int_equal(st.capacity, cap);
	assert_int_equal(st.free_slots, 0);
	assert_int_equal(st.count, N);
	double r3 = recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, NULL, NULL);
	assert_true(r3 >= 0.95);
	/* Deleting everything leaves an empty, usable index. */
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(vt_hnsw_delete(h, i), 0);
	assert_int_equal(vt_hnsw_consolidate(h), N);
	vt_hnsw_hit hit[10];
	size_t n;
	assert_int_equal(vt_hnsw_search(h, qs, &q, hit, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vt_hnsw_insert(h, 1, data), 0);
	assert_int_equal(vt_hnsw_search(h, qs, &q, hit, &n), 0);
	assert_int_equal(n, 1);
	vt_hnsw_destroy(h);
	free(del);
	free(data);
	free(qs);
}

struct sel {
	uint32_t mod;
};

static int keep_mod(uint64_t label, void *ctx)
{
	const struct sel *s = ctx;
	return vt_mix64(label) % s->mod == 0;
}

static void test_filtered_search_recall(void **state)
{
	(void)state;
	float *data = make_data(N, DIM, 7, 0);
	float *qs = make_data(NQ, DIM, 8, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
	vt_hnsw *h = build(&p, data, N);
	uint32_t mods[] = {2, 10, 50};
	for (int i = 0; i < 3; i++) {
		struct sel s = {mods[i]};
		vt_hnsw_query q;
		vt_hnsw_query_default(&q, 10);
		q.ef = 64;
		q.filter = keep_mod;
		q.filter_ctx = &s;
		double r = recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, keep_mod, &s);
		print_message("filter 1/%u: recall %.3f\n", mods[i], r);
		assert_true(r >= 0.9);
		q.exact = 1;
		assert_true(recall(h, VT_METRIC_L2, data, N, DIM, qs, NQ, &q, keep_mod, &s) >= 0.999);
	}
	vt_hnsw_destroy(h);
	free(data);
	free(qs);
}

static void check_int8(int metric, int integer, const char *path)
{
	float *data = make_data(N, DIM, 9, integer);
	float *qs = make_data(NQ, DIM, 10, integer);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, metric);
	p.quant = VT_QUANT_INT8;
	p.train_size = 500;
	p.vectors_path = path;
	vt_hnsw *h = build(&p, data, N);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_true(st.trained);
	assert_true(st.bytes_codes >= (size_t)N * DIM);
	if (path) {
		assert_int_equal(st.bytes_vectors, 0);
		assert_true(st.bytes_vectors_mapped >= (size_t)N * DIM * 4);
		assert_int_equal(access(path, F_OK), 0);
	} else {
		assert_true(st.bytes_vectors >= (size_t)N * DIM * 4);
	}
	vt_hnsw_query q;
	vt_hnsw_query_default(&q, 10);
	q.ef = 64;
	double r = recall(h, metric, data, N, DIM, qs, NQ, &q, NULL, NULL);
	print_message("int8 metric %d integer %d: recall %.3f\n", metric, integer, r);
	assert_true(r >= 0.95);
	if (integer && metric == VT_METRIC_L2) {
		/* Integers spanning at most 256 values quantize losslessly:
		 * distances on codes are the exact float distances. */
		assert_float_equal(st.quant_hi - st.quant_lo, 255.0f, 0);
		q.rescore = 0;
		vt_hnsw_hit hit[10];
		size_t n;
		for (int i = 0; i < 10; i++) {
			const float *qv = qs + (size_t)i * DIM;
			assert_int_equal(vt_hnsw_search(h, qv, &q, hit, &n), 0);
			for (size_t j = 0; j < n; j++) {
				float v[DIM];
				assert_int_equal(vt_hnsw_get(h, hit[j].label, v), 0);
				assert_float_equal(hit[j].dist, ref_dist(metric, qv, v, DIM), 0.5);
			}
		}
	}
	vt_hnsw_destroy(h);
	free(data);
	free(qs);
}

static void test_int8_l2_lossless(void **state)
{
	(void)state;
	check_int8(VT_METRIC_L2, 1, NULL);
}

static void test_int8_l2_lossy(void **state)
{
	(void)state;
	check_int8(VT_METRIC_L2, 0, NULL);
}

static void test_int8_cosine(void **state)
{
	(void)state;
	check_int8(VT_METRIC_COSINE, 0, NULL);
}

static void test_int8_ip_mapped_floats(void **state)
{
	(void)state;
	char path[] = "/tmp/vt_test_hnsw_vecs_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	check_int8(VT_METRIC_IP, 0, path);
	unlink(path);
}

static void test_int8_explicit_train(void **state)
{
	(void)state;
	float *data = make_data(N, DIM, 11, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
	p.quant = VT_QUANT_INT8;
	p.train_size = 1000000; /* never trains by itself */
	vt_hnsw *h;
	assert_int_equal(vt_hnsw_create(&p, &h, NULL), 0);
	assert_int_equal(vt_hnsw_train(h, data, N), 0);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	assert_true(st.trained);
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(vt_hnsw_insert(h, i, data + (size_t)i * DIM), 0);
	vt_hnsw_query q;
	vt_hnsw_query_default(&q, 10);
	q.ef = 64;
	assert_true(recall(h, VT_METRIC_L2, data, N, DIM, data, NQ, &q, NULL, NULL) >= 0.95);
	/* Retraining on a sample re-encodes what is stored. */
	vt_hnsw_stats_get(h, &st);
	float lo = st.quant_lo;
	float *other = malloc(100 * DIM * sizeof *other);
	memcpy(other, data + 1000 * DIM, 100 * DIM * sizeof *other);
	assert_int_equal(vt_hnsw_train(h, other, 100), 0);
	vt_hnsw_stats_get(h, &st);
	assert_true(st.quant_lo >= lo); /* a sample spans no more than all */
	assert_true(recall(h, VT_METRIC_L2, data, N, DIM, data, NQ, &q, NULL, NULL) >= 0.95);
	vt_hnsw_destroy(h);
	free(other);
	free(data);
}

static int mem_sink(void *ud, const void *p, size_t n)
{
	return vt_buf_append(ud, p, n);
}

static void assert_same_results(vt_hnsw *a, vt_hnsw *b, const float *qs, uint32_t nq)
{
	vt_hnsw_query q;
	vt_hnsw_query_default(&q, 10);
	q.ef = 50;
	for (uint32_t i = 0; i < nq; i++) {
		vt_hnsw_hit ha[10], hb[10];
		size_t na, nb;
		assert_int_equal(vt_hnsw_search(a, qs + (size_t)i * DIM, &q, ha, &na), 0);
		assert_int_equal(vt_hnsw_search(b, qs + (size_t)i * DIM, &q, hb, &nb), 0);
		assert_int_equal(na, nb);
		for (size_t j = 0; j < na; j++) {
			assert_int_equal(ha[j].label, hb[j].label);
			assert_float_equal(ha[j].dist, hb[j].dist, 0);
		}
	}
}

static vt_hnsw *saved_index(vt_buf *out, int quant)
{
	float *data = make_data(800, DIM, 13, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, DIM, VT_METRIC_COSINE);
	p.quant = quant;
	p.train_size = 200;
	vt_hnsw *h = build(&p, data, 800);
	for (uint32_t i = 0; i < 800; i += 7)
		assert_int_equal(vt_hnsw_delete(h, i), 0);
	assert_true(vt_hnsw_consolidate(h) > 0);
	for (uint32_t i = 0; i < 800; i += 11)
		vt_hnsw_delete(h, i); /* leaves tombstones in the file */
	vt_buf_init(out, 1u << 30);
	vt_errmsg e;
	assert_int_equal(vt_hnsw_save(h, mem_sink, out, &e), 0);
	free(data);
	return h;
}

static void test_save_load_roundtrip(void **state)
{
	(void)state;
	float *qs = make_data(50, DIM, 14, 0);
	for (int quant = 0; quant < 2; quant++) {
		vt_buf b;
		vt_hnsw *h = saved_index(&b, quant);
		vt_hnsw *g;
		vt_errmsg e;
		assert_int_equal(vt_hnsw_load_mem(b.data, b.len, NULL, &g, &e), 0);
		assert_same_results(h, g, qs, 50);
		vt_hnsw_stats sa, sb;
		vt_hnsw_stats_get(h, &sa);
		vt_hnsw_stats_get(g, &sb);
		assert_int_equal(sa.count, sb.count);
		assert_int_equal(sa.tombstones, sb.tombstones);
		assert_int_equal(sa.free_slots, sb.free_slots);
		assert_int_equal(sa.trained, sb.trained);
		/* The loaded index keeps working: insert, delete, consolidate. */
		assert_int_equal(vt_hnsw_insert(g, 100000, qs), 0);
		assert_int_equal(vt_hnsw_delete(g, 100000), 0);
		assert_true(vt_hnsw_consolidate(g) >= 1);

		/* Through a file, atomically, and into a mapped vectors file. */
		char path[] = "/tmp/vt_test_hnsw_XXXXXX";
		int fd = mkstemp(path);
		close(fd);
		char vpath[64];
		snprintf(vpath, sizeof vpath, "%s.vec", path);
		assert_int_equal(vt_hnsw_save_file(h, path, &e), 0);
		vt_hnsw *f;
		assert_int_equal(vt_hnsw_load_file(path, vpath, &f, &e), 0);
		assert_same_results(h, f, qs, 50);
		vt_hnsw_destroy(f);
		unlink(path);
		unlink(vpath);
		assert_int_equal(vt_hnsw_load_file(path, NULL, &f, &e), VT_ENOENT);

		vt_hnsw_destroy(g);
		vt_hnsw_destroy(h);
		vt_buf_free(&b);
	}
	free(qs);
}

static void test_load_rejects_damage(void **state)
{
	(void)state;
	vt_buf b;
	vt_hnsw *h = saved_index(&b, VT_QUANT_INT8);
	vt_hnsw_destroy(h);
	vt_hnsw *g = NULL;
	vt_errmsg e;
	/* Every truncation (sampled densely at the start, where the header
	 * and small sections live). */
	for (size_t len = 0; len < b.len; len += len < 4096 ? 1 : 997) {
		int rc = vt_hnsw_load_mem(b.data, len, NULL, &g, &e);
		assert_int_equal(rc, VT_ECORRUPT);
		assert_null(g);
	}
	/* Every single-byte flip in the header and a sample elsewhere. */
	for (size_t off = 0; off < b.len; off += off < 512 ? 1 : 331) {
		b.data[off] ^= 0x5a;
		int rc = vt_hnsw_load_mem(b.data, b.len, NULL, &g, &e);
		b.data[off] ^= 0x5a;
		if (rc != VT_ECORRUPT && rc != VT_EVERSION)
			print_message("flip at %zu of %zu: rc %d\n", off, b.len, rc);
		assert_true(rc == VT_ECORRUPT || rc == VT_EVERSION);
		assert_null(g);
	}
	/* A foreign file says so. */
	assert_int_equal(vt_hnsw_load_mem("hello world, not an index at all"
					  "..................................."
					  "..................................."
					  "...................................",
					  140, NULL, &g, &e), VT_ECORRUPT);
	assert_non_null(strstr(e.msg, "not a Vectron index"));
	/* A future version says so (and the header checksum is right). */
	uint8_t hdr[136];
	memcpy(hdr, b.data, sizeof hdr);
	hdr[8] = 9;
	uint64_t sum = vt_hash64(hdr, 128, 0x5674686e7377ull);
	memcpy(hdr + 128, &sum, 8);
	memcpy(b.data, hdr, sizeof hdr);
	assert_int_equal(vt_hnsw_load_mem(b.data, b.len, NULL, &g, &e), VT_EVERSION);
	assert_non_null(strstr(e.msg, "version 9"));
	vt_buf_free(&b);
}

static void test_alloc_failures_leak_nothing(void **state)
{
	(void)state;
	float *data = make_data(300, DIM, 15, 0);
	vt_buf saved;
	{
		vt_hnsw_params p;
		vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
		p.quant = VT_QUANT_INT8;
		p.train_size = 100;
		vt_hnsw *h = build(&p, data, 300);
		vt_buf_init(&saved, 1u << 30);
		assert_int_equal(vt_hnsw_save(h, mem_sink, &saved, NULL), 0);
		vt_hnsw_destroy(h);
	}
	int64_t base = vt_alloc_bytes();
	/* Fail the n-th allocation of a whole workload, for every n until the
	 * workload succeeds; every failure must return an error and leave
	 * nothing allocated after destroy. */
	int done = 0;
	for (uint64_t nth = 1; !done && nth < 100000; nth++) {
		vt_hnsw_params p;
		vt_hnsw *h = NULL, *g = NULL;
		vt_hnsw_params_default(&p, DIM, VT_METRIC_L2);
		p.quant = VT_QUANT_INT8;
		p.train_size = 100;
		p.initial_capacity = 16;
		vt_alloc_fail_at(nth, 0);
		int rc = vt_hnsw_create(&p, &h, NULL);
		int failed = rc != 0;
		for (uint32_t i = 0; !failed && i < 300; i++) {
			rc = vt_hnsw_insert(h, i, data + (size_t)i * DIM);
			if (rc) {
				assert_int_equal(rc, VT_ENOMEM);
				failed = 1;
			}
		}
		if (!failed) {
			vt_hnsw_query q;
			vt_hnsw_hit hit[5];
			size_t n;
			vt_hnsw_query_default(&q, 5);
			rc = vt_hnsw_search(h, data, &q, hit, &n);
			failed = rc != 0;
		}
		if (!failed) {
			for (uint32_t i = 0; i < 300; i += 3)
				vt_hnsw_delete(h, i);
			rc = vt_hnsw_consolidate(h);
			failed = rc < 0;
		}
		if (!failed) {
			rc = vt_hnsw_load_mem(saved.data, saved.len, NULL, &g, NULL);
			failed = rc != 0;
			if (failed)
				assert_null(g);
		}
		vt_alloc_fail_at(0, 0);
		vt_hnsw_destroy(g);
		vt_hnsw_destroy(h);
		assert_int_equal(vt_alloc_bytes(), base);
		done = !failed;
	}
	assert_true(done);
	vt_buf_free(&saved);
	free(data);
}

static void test_memory_accounting(void **state)
{
	(void)state;
	float *data = make_data(2000, 64, 16, 0);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, 64, VT_METRIC_L2);
	p.quant = VT_QUANT_INT8;
	p.train_size = 100;
	int64_t before = vt_alloc_bytes();
	vt_hnsw *h = build(&p, data, 2000);
	vt_hnsw_stats st;
	vt_hnsw_stats_get(h, &st);
	size_t total = st.bytes_graph + st.bytes_vectors + st.bytes_codes + st.bytes_other;
	int64_t used = vt_alloc_bytes() - before;
	/* The index's own figures cover at least 90% of what it allocated
	 * (the rest: per-thread search state). */
	assert_true(st.bytes_graph >= st.capacity * 32 * 4);
	assert_true(st.bytes_vectors >= st.capacity * 64 * 4);
	assert_true(st.bytes_codes >= st.capacity * 64);
	assert_true((double)total >= 0.9 * (double)used);
	assert_true((double)total <= 1.1 * (double)used);
	vt_hnsw_destroy(h);
	free(data);
}


/* Consolidation must leave every live point reachable: one-hop repair
 * re-picks out-links, so a node whose in-links all came from deleted nodes
 * had none left (found by the shard crash test). Churn (updates, deletes,
 * consolidations) on a small-m index, then every live point must be found
 * by its own vector with a beam covering the whole index. */
static void test_consolidate_keeps_nodes_reachable(void **state)
{
	enum { RD = 16, RN = 400 };
	(void)state;
	float *v = malloc(sizeof(float) * RD * RN);
	int *live = calloc(RN, sizeof *live);
	vt_rng rng;
	vt_rng_seed(&rng, 99);
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, RD, VT_METRIC_L2);
	p.m = 8;
	p.ef_construction = 64;
	vt_hnsw *h;
	vt_errmsg e;
	assert_int_equal(vt_hnsw_create(&p, &h, &e), 0);
	int lost = 0, checks = 0;
	for (int round = 0; round < 60; round++) {
		for (int op = 0; op < 300; op++) {
			int id = (int)(vt_rng_next(&rng) % RN);
			if (live[id] && vt_rng_double(&rng) < 0.4) {
				assert_int_equal(vt_hnsw_delete(h, (uint64_t)id), 0);
				live[id] = 0;
				continue;
			}
			for (int j = 0; j < RD; j++)
				v[id * RD + j] = (float)vt_rng_double(&rng) * 2 - 1;
			assert_int_equal(vt_hnsw_insert(h, (uint64_t)id,
							v + id * RD),
					 0);
			live[id] = 1;
		}
		assert_true(vt_hnsw_consolidate(h) >= 0);
		for (int id = 0; id < RN; id++) {
			if (!live[id])
				continue;
			vt_hnsw_query q;
			vt_hnsw_query_default(&q, 1);
			q.ef = 2 * RN;
			vt_hnsw_hit hit;
			size_t n;
			assert_int_equal(vt_hnsw_search(h, v + id * RD, &q, &hit,
							&n),
					 0);
			checks++;
			lost += n != 1 || hit.label != (uint64_t)id;
		}
	}
	vt_hnsw_destroy(h);
	free(v);
	free(live);
	if (lost)
		fail_msg("%d of %d live points unreachable after consolidation",
			 lost, checks);
}

int main(void)
{
	vt_log_set_level(VT_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consolidate_keeps_nodes_reachable),
		cmocka_unit_test(test_params_are_validated),
		cmocka_unit_test(test_recall_l2),
		cmocka_unit_test(test_recall_ip),
		cmocka_unit_test(test_recall_cosine),
		cmocka_unit_test(test_distances_have_stated_meaning),
		cmocka_unit_test(test_bad_input_is_refused),
		cmocka_unit_test(test_empty_index_returns_nothing),
		cmocka_unit_test(test_update_replaces_vector),
		cmocka_unit_test(test_delete_and_consolidate),
		cmocka_unit_test(test_filtered_search_recall),
		cmocka_unit_test(test_int8_l2_lossless),
		cmocka_unit_test(test_int8_l2_lossy),
		cmocka_unit_test(test_int8_cosine),
		cmocka_unit_test(test_int8_ip_mapped_floats),
		cmocka_unit_test(test_int8_explicit_train),
		cmocka_unit_test(test_save_load_roundtrip),
		cmocka_unit_test(test_load_rejects_damage),
		cmocka_unit_test(test_alloc_failures_leak_nothing),
		cmocka_unit_test(test_memory_accounting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
