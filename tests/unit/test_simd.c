/* test_simd.c: every kernel of every level this CPU supports, checked
 * against the scalar reference; plus detection, level names and VT_SIMD.
 * Not a benchmark: speed is measured in bench/.
 *
 * Integer kernels must equal the reference exactly, and so must cos_i8
 * (its sums are exact and every level finishes them with the same code).
 * Float kernels may differ from the reference (which sums in double) only
 * by rounding:
 *   l2sq, dot:  |got - ref| <= 1e-5 * sum_i |term_i| + 1e-6
 * where term_i is (a_i - b_i)^2 or a_i * b_i: "relative 1e-5 of the sum of
 * absolute products" in simd.h, which bounds the error of any summation
 * order in float for these n. For cos, the dot's error divided by |a||b|
 * plus the norms' relative error:
 *   cos:        |got - ref| <= 1e-5 * (sum_i |a_i b_i| / (|a||b|)
 *                                      + 2 |ref|) + 1e-6
 * Inputs sit at the very end of exactly sized allocations, at aligned and
 * deliberately unaligned addresses, so ASan catches any read past the end
 * (the masked loads that may touch those bytes do not fault). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "simd/simd.h"

#define NMAX_SWEEP 1100

/* The sizes every kernel is run at: all of 0..1100, then a few big ones. */
static const size_t big_sizes[] = {1536, 4096, 65535};

/* Byte offsets of the first input and of the others from a 64-byte
 * aligned base: element-aligned but not vector-aligned, and for floats
 * also not even 4-byte aligned (the header allows any alignment). */
struct offs {
	size_t a, b;
};
static const struct offs f32_offs[] = {
	{0, 0}, {4, 12}, {8, 4}, {12, 8}, {1, 2}, {3, 1},
};
static const struct offs u8_offs[] = {
	{0, 0}, {1, 3}, {2, 1}, {3, 2},
};

#define COUNT(x) (sizeof(x) / sizeof((x)[0]))

/* ---- buffers ---- */

/* One input: `n` elements ending exactly at the end of an allocation that
 * starts 64-byte aligned, `off` bytes before the data. */
struct input {
	void *base;
	unsigned char *p;
};

static void input_make(struct input *in, size_t off, const void *src,
		       size_t bytes)
{
	void *base = NULL;
	assert_int_equal(posix_memalign(&base, 64, off + bytes + 1), 0);
	in->base = base;
	/* +1 above, then shift by one, keeps the end exact even for n = 0. */
	in->p = (unsigned char *)base + 1 + off;
	if (bytes)
		memcpy(in->p, src, bytes);
}

static void input_free(struct input *in)
{
	free(in->base);
	in->base = NULL;
}

/* ---- tolerances ---- */

static void assert_close(double got, double ref, double tol, const char *what,
			 int level, size_t n, size_t k)
{
	if (fabs(got - ref) <= tol && !isnan(got))
		return;
	fail_msg("%s at level %s, n=%zu, case %zu: got %.9g, reference %.9g, "
		 "tolerance %.3g",
		 what, vt_simd_level_name(level), n, k, got, ref, tol);
}

static double tol_sum(double abs_sum)
{
	return 1e-5 * abs_sum + 1e-6;
}

static double tol_cos(const float *a, const float *b, size_t n, double ref)
{
	double s = 0, aa = 0, bb = 0;
	for (size_t i = 0; i < n; i++) {
		s += fabs((double)a[i] * b[i]);
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	double r = aa > 0 && bb > 0 ? s / sqrt(aa * bb) : 0;
	return 1e-5 * (r + 2 * fabs(ref)) + 1e-6;
}

/* ---- float32 ---- */

static void fill_f32(vt_rng *r, float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(2.0 * vt_rng_double(r) - 1.0) * scale;
}

/* Checks every float kernel of `ops` on q against b[0..3] (host copies
 * qh, bh for the tolerances), against the scalar reference. */
static void check_f32(const vt_simd_ops *ops, const float *q,
		      const float *const b[4], const float *qh,
		      const float *const bh[4], size_t n, size_t k)
{
	const vt_simd_ops *ref = vt_simd_get(VT_SIMD_SCALAR);
	float x4[4];
	double sl2[4], sdot[4], rl2[4], rdot[4];

	for (int j = 0; j < 4; j++) {
		sl2[j] = sdot[j] = 0;
		for (size_t i = 0; i < n; i++) {
			double d = (double)qh[i] - bh[j][i];
			sl2[j] += d * d;
			sdot[j] += fabs((double)qh[i] * bh[j][i]);
		}
		rl2[j] = ref->l2sq_f32(q, b[j], n);
		rdot[j] = ref->dot_f32(q, b[j], n);
		assert_close(ops->l2sq_f32(q, b[j], n), rl2[j],
			     tol_sum(sl2[j]), "l2sq_f32", ops->level, n, k);
		assert_close(ops->dot_f32(q, b[j], n), rdot[j],
			     tol_sum(sdot[j]), "dot_f32", ops->level, n, k);
	}
	double rcos = ref->cos_f32(q, b[0], n);
	assert_close(ops->cos_f32(q, b[0], n), rcos,
		     tol_cos(qh, bh[0], n, rcos), "cos_f32", ops->level, n, k);

	ops->l2sq_f32_x4(q, b[0], b[1], b[2], b[3], n, x4);
	for (int j = 0; j < 4; j++)
		assert_close(x4[j], rl2[j], tol_sum(sl2[j]), "l2sq_f32_x4",
			     ops->level, n, k);
	ops->dot_f32_x4(q, b[0], b[1], b[2], b[3], n, x4);
	for (int j = 0; j < 4; j++)
		assert_close(x4[j], rdot[j], tol_sum(sdot[j]), "dot_f32_x4",
			     ops->level, n, k);
}

static void run_f32(vt_rng *r, size_t n, const struct offs *o, float scale,
		    size_t k)
{
	float *qh = malloc((n + 1) * sizeof(float));
	float *bh[4];
	struct input qi, bi[4];
	const float *b[4];

	assert_non_null(qh);
	fill_f32(r, qh, n, scale);
	input_make(&qi, o->a, qh, n * sizeof(float));
	for (int j = 0; j < 4; j++) {
		bh[j] = malloc((n + 1) * sizeof(float));
		assert_non_null(bh[j]);
		fill_f32(r, bh[j], n, scale);
		/* Four different offsets of the same misalignment class. */
		input_make(&bi[j], (o->b + 4 * (size_t)j) % 16, bh[j],
			   n * sizeof(float));
		b[j] = (const float *)bi[j].p;
	}
	/* Near-duplicates too, where l2 is a sum of cancellations. */
	if (n && (k & 1))
		for (size_t i = 0; i < n; i++) {
			float v = qh[i] * (1.0f + 1e-3f * (float)(i % 7));
			bh[3][i] = v;
			memcpy((float *)b[3] + i, &v, sizeof v);
		}
	for (int level = 0; level < VT_SIMD_LEVELS; level++) {
		const vt_simd_ops *ops = vt_simd_get(level);
		if (ops)
			check_f32(ops, (const float *)qi.p, b, qh,
				  (const float *const *)bh, n, k);
	}
	input_free(&qi);
	for (int j = 0; j < 4; j++) {
		input_free(&bi[j]);
		free(bh[j]);
	}
	free(qh);
}

static void test_f32_sweep(void **state)
{
	(void)state;
	static const float scales[] = {1.0f, 1e3f, 1e-3f};
	vt_rng r;
	vt_rng_seed(&r, 42);
	size_t k = 0;

	for (size_t n = 0; n <= NMAX_SWEEP; n++)
		for (size_t o = 0; o < COUNT(f32_offs); o++, k++)
			run_f32(&r, n, &f32_offs[o], scales[k % 3], k);
	for (size_t s = 0; s < COUNT(big_sizes); s++)
		for (size_t o = 0; o < 2; o++, k++)
			run_f32(&r, big_sizes[s], &u8_offs[o], 1.0f, k);
}

/* ---- uint8 and int8 ---- */

/* Pattern for the integer inputs: random, or one constant (the extremes). */
struct pat {
	int random;
	int value;
};

static void fill_bytes(vt_rng *r, unsigned char *x, size_t n, struct pat p)
{
	for (size_t i = 0; i < n; i++)
		x[i] = p.random ? (unsigned char)vt_rng_next(r)
				: (unsigned char)p.value;
}

static void check_u8(const vt_simd_ops *ops, const uint8_t *q,
		     const uint8_t *const b[4], size_t n, size_t k)
{
	const vt_simd_ops *ref = vt_simd_get(VT_SIMD_SCALAR);
	uint32_t x4[4], rl2[4], rdot[4];

	for (int j = 0; j < 4; j++) {
		rl2[j] = ref->l2sq_u8(q, b[j], n);
		rdot[j] = ref->dot_u8(q, b[j], n);
		uint32_t l2 = ops->l2sq_u8(q, b[j], n);
		uint32_t dot = ops->dot_u8(q, b[j], n);
		if (l2 != rl2[j] || dot != rdot[j])
			fail_msg("u8 at level %s, n=%zu, case %zu: l2 %u (ref "
				 "%u), dot %u (ref %u)",
				 ops->name, n, k, l2, rl2[j], dot, rdot[j]);
	}
	ops->l2sq_u8_x4(q, b[0], b[1], b[2], b[3], n, x4);
	for (int j = 0; j < 4; j++)
		if (x4[j] != rl2[j])
			fail_msg("l2sq_u8_x4[%d] at level %s, n=%zu, case %zu: "
				 "%u, ref %u",
				 j, ops->name, n, k, x4[j], rl2[j]);
	ops->dot_u8_x4(q, b[0], b[1], b[2], b[3], n, x4);
	for (int j = 0; j < 4; j++)
		if (x4[j] != rdot[j])
			fail_msg("dot_u8_x4[%d] at level %s, n=%zu, case %zu: "
				 "%u, ref %u",
				 j, ops->name, n, k, x4[j], rdot[j]);
}

static void check_i8(const vt_simd_ops *ops, const int8_t *a,
		     const int8_t *b, size_t n, size_t k)
{
	const vt_simd_ops *ref = vt_simd_get(VT_SIMD_SCALAR);
	uint32_t l2 = ops->l2sq_i8(a, b, n), rl2 = ref->l2sq_i8(a, b, n);
	int32_t dot = ops->dot_i8(a, b, n), rdot = ref->dot_i8(a, b, n);
	float c = ops->cos_i8(a, b, n), rc = ref->cos_i8(a, b, n);

	if (l2 != rl2 || dot != rdot || memcmp(&c, &rc, sizeof c) != 0)
		fail_msg("i8 at level %s, n=%zu, case %zu: l2 %u (ref %u), "
			 "dot %d (ref %d), cos %.9g (ref %.9g)",
			 ops->name, n, k, l2, rl2, dot, rdot, c, rc);
}

/* Runs the u8 and i8 kernels of every level on one set of inputs; the
 * same bytes serve as uint8 and, reinterpreted, as int8. */
static void run_int(vt_rng *r, size_t n, const struct offs *o,
		    struct pat pq, const struct pat pb[4], size_t k)
{
	unsigned char *h = malloc(n + 1);
	struct input qi, bi[4];
	const uint8_t *b[4];

	assert_non_null(h);
	fill_bytes(r, h, n, pq);
	input_make(&qi, o->a, h, n);
	for (int j = 0; j < 4; j++) {
		fill_bytes(r, h, n, pb[j]);
		input_make(&bi[j], (o->b + (size_t)j) % 4, h, n);
		b[j] = bi[j].p;
	}
	for (int level = 0; level < VT_SIMD_LEVELS; level++) {
		const vt_simd_ops *ops = vt_simd_get(level);
		if (!ops)
			continue;
		check_u8(ops, qi.p, b, n, k);
		for (int j = 0; j < 4; j++)
			check_i8(ops, (const int8_t *)qi.p,
				 (const int8_t *)b[j], n, k);
	}
	input_free(&qi);
	for (int j = 0; j < 4; j++)
		input_free(&bi[j]);
	free(h);
}

static void test_int_sweep(void **state)
{
	(void)state;
	static const struct pat rnd[4] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
	vt_rng r;
	vt_rng_seed(&r, 7);
	size_t k = 0;

	for (size_t n = 0; n <= NMAX_SWEEP; n++)
		for (size_t o = 0; o < COUNT(u8_offs); o++, k++)
			run_int(&r, n, &u8_offs[o], rnd[0], rnd, k);
	for (size_t s = 0; s < COUNT(big_sizes); s++)
		for (size_t o = 0; o < 2; o++, k++)
			run_int(&r, big_sizes[s], &u8_offs[o], rnd[0], rnd, k);
}

/* The largest sums the header allows: 255^2 * 65535 is just under 2^32,
 * so a kernel that sums in signed 32-bit lanes the C way, or loses a
 * carry, shows here. Bytes 0x80/0x7f are -128/127 as int8. */
static void test_int_extremes(void **state)
{
	(void)state;
	static const size_t sizes[] = {4096, 65535, 65534, 65503};
	static const struct pat p0 = {0, 0}, p255 = {0, 255};
	static const struct pat pm128 = {0, 0x80}, p127 = {0, 0x7f};
	const struct pat mix[4] = {p0, p255, p0, p255};
	const struct pat mixs[4] = {pm128, p127, pm128, p127};
	vt_rng r;
	vt_rng_seed(&r, 1);
	size_t k = 0;

	for (size_t s = 0; s < COUNT(sizes); s++)
		for (size_t o = 0; o < 2; o++) {
			run_int(&r, sizes[s], &u8_offs[o], p255, mix, k++);
			run_int(&r, sizes[s], &u8_offs[o], p0, mix, k++);
			run_int(&r, sizes[s], &u8_offs[o], pm128, mixs, k++);
			run_int(&r, sizes[s], &u8_offs[o], p127, mixs, k++);
		}

	/* And the reference itself against closed forms at the limit. */
	size_t n = VT_SIMD_U8_MAX_DIM;
	uint8_t *a = malloc(n), *z = calloc(n, 1);
	int8_t *lo = malloc(n), *hi = malloc(n);
	assert_non_null(a);
	assert_non_null(z);
	assert_non_null(lo);
	assert_non_null(hi);
	memset(a, 255, n);
	memset(lo, -128, n);
	memset(hi, 127, n);
	for (int level = 0; level < VT_SIMD_LEVELS; level++) {
		const vt_simd_ops *ops = vt_simd_get(level);
		if (!ops)
			continue;
		assert_int_equal(ops->l2sq_u8(a, z, n), 65025u * 65535u);
		assert_int_equal(ops->dot_u8(a, a, n), 65025u * 65535u);
		assert_int_equal(ops->l2sq_i8(lo, hi, n), 65025u * 65535u);
		assert_int_equal(ops->dot_i8(lo, lo, n), 16384 * 65535);
		assert_int_equal(ops->dot_i8(lo, hi, n), -16256 * 65535);
		assert_true(ops->cos_i8(lo, hi, n) == -1.0f);
		assert_true(ops->cos_i8(hi, hi, n) == 1.0f);
	}
	free(a);
	free(z);
	free(lo);
	free(hi);
}

/* ---- small cases with known answers ---- */

static void test_known_values(void **state)
{
	(void)state;
	const float a[3] = {1, 2, 3}, b[3] = {4, 6, 8}, zero[40] = {0};
	const uint8_t ua[3] = {1, 2, 250}, ub[3] = {4, 0, 10};
	const int8_t ia[3] = {1, -2, 127}, ib[3] = {-128, 0, 10};
	const int8_t izero[40] = {0};
	float big[40], out[4];

	for (int i = 0; i < 40; i++)
		big[i] = (float)(i + 1);
	for (int level = 0; level < VT_SIMD_LEVELS; level++) {
		const vt_simd_ops *o = vt_simd_get(level);
		if (!o)
			continue;
		assert_int_equal(o->level, level);
		assert_string_equal(o->name, vt_simd_level_name(level));
		assert_true(o->l2sq_f32(a, b, 3) == 50.0f);
		assert_true(o->dot_f32(a, b, 3) == 40.0f);
		assert_true(fabsf(o->cos_f32(a, b, 3) -
				  (float)(40 / sqrt(14.0 * 116.0))) < 1e-6f);
		assert_int_equal(o->l2sq_u8(ua, ub, 3), 9 + 4 + 240 * 240);
		assert_int_equal(o->dot_u8(ua, ub, 3), 4 + 0 + 2500);
		assert_int_equal(o->l2sq_i8(ia, ib, 3), 129 * 129 + 4 + 117 * 117);
		assert_int_equal(o->dot_i8(ia, ib, 3), -128 + 0 + 1270);

		/* cos of a zero vector is 0, not NaN, whichever side. */
		assert_true(o->cos_f32(zero, big, 40) == 0.0f);
		assert_true(o->cos_f32(big, zero, 40) == 0.0f);
		assert_true(o->cos_f32(zero, zero, 40) == 0.0f);
		assert_true(o->cos_i8(izero, ib, 3) == 0.0f);
		assert_true(o->cos_i8(izero, izero, 40) == 0.0f);
		/* Rounding never pushes a self-similarity above 1. */
		assert_true(o->cos_f32(big, big, 40) <= 1.0f);
		assert_true(o->cos_f32(big, big, 40) > 0.99999f);

		/* n == 0 gives 0 and reads nothing, so NULL is fine. */
		assert_true(o->l2sq_f32(NULL, NULL, 0) == 0.0f);
		assert_true(o->dot_f32(NULL, NULL, 0) == 0.0f);
		assert_true(o->cos_f32(NULL, NULL, 0) == 0.0f);
		assert_int_equal(o->l2sq_u8(NULL, NULL, 0), 0);
		assert_int_equal(o->dot_i8(NULL, NULL, 0), 0);
		assert_true(o->cos_i8(NULL, NULL, 0) == 0.0f);
		o->dot_f32_x4(NULL, NULL, NULL, NULL, NULL, 0, out);
		assert_true(out[0] == 0 && out[1] == 0 && out[2] == 0 &&
			    out[3] == 0);
	}
}

/* ---- levels, names, detection ---- */

static void test_level_names(void **state)
{
	(void)state;
	static const char *names[] = {"scalar", "avx2", "avx512",
				      "avx512vnni"};
	for (int i = 0; i < VT_SIMD_LEVELS; i++) {
		assert_string_equal(vt_simd_level_name(i), names[i]);
		assert_int_equal(vt_simd_level_parse(names[i]), i);
	}
	assert_int_equal(vt_simd_level_parse("AVX512"), VT_SIMD_AVX512);
	assert_int_equal(vt_simd_level_parse("avx"), -1);
	assert_int_equal(vt_simd_level_parse("avx512 "), -1);
	assert_int_equal(vt_simd_level_parse(""), -1);
	assert_int_equal(vt_simd_level_parse(NULL), -1);
	assert_string_equal(vt_simd_level_name(-1), "?");
	assert_string_equal(vt_simd_level_name(VT_SIMD_LEVELS), "?");
}

static void test_detect_and_get(void **state)
{
	(void)state;
	int d = vt_simd_detect();
	assert_in_range(d, VT_SIMD_SCALAR, VT_SIMD_LEVELS - 1);
	assert_int_equal(vt_simd_detect(), d);
	print_message("[ info     ] CPU level: %s\n", vt_simd_level_name(d));
	assert_null(vt_simd_get(-1));
	assert_null(vt_simd_get(VT_SIMD_LEVELS));
	for (int i = 0; i < VT_SIMD_LEVELS; i++) {
		const vt_simd_ops *o = vt_simd_get(i);
		if (i > d) {
			assert_null(o);
			continue;
		}
		assert_non_null(o);
		assert_int_equal(o->level, i);
		/* Every pointer set: a missing one would crash a caller. */
		assert_non_null(o->l2sq_f32);
		assert_non_null(o->dot_f32);
		assert_non_null(o->cos_f32);
		assert_non_null(o->l2sq_f32_x4);
		assert_non_null(o->dot_f32_x4);
		assert_non_null(o->l2sq_u8);
		assert_non_null(o->dot_u8);
		assert_non_null(o->l2sq_u8_x4);
		assert_non_null(o->dot_u8_x4);
		assert_non_null(o->l2sq_i8);
		assert_non_null(o->dot_i8);
		assert_non_null(o->cos_i8);
	}
}

/* ---- VT_SIMD and the one-time choice, each in a fresh child process,
 * because the choice is made once per process ---- */

static int warnings;

static void count_warnings(void *ud, int level, const char *module,
			   const char *line)
{
	(void)ud;
	(void)line;
	if (level == VT_LOG_WARN && strcmp(module, "simd") == 0)
		warnings++;
}

#define THREADS 8
static pthread_barrier_t barrier;

static void *race(void *arg)
{
	pthread_barrier_wait(&barrier);
	*(const vt_simd_ops **)arg = vt_simd();
	return NULL;
}

/* In a child: set VT_SIMD (NULL unsets it), let THREADS threads make the
 * first call at once, and exit with level | warned << 4, or 0xff if the
 * threads disagreed or the table was inconsistent. */
static int child_choice(const char *env)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const vt_simd_ops *got[THREADS];
		pthread_t t[THREADS];

		if (env)
			setenv("VT_SIMD", env, 1);
		else
			unsetenv("VT_SIMD");
		vt_log_set_handler(count_warnings, NULL);
		pthread_barrier_init(&barrier, NULL, THREADS);
		for (int i = 0; i < THREADS; i++)
			pthread_create(&t[i], NULL, race, &got[i]);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 1; i < THREADS; i++)
			if (got[i] != got[0])
				_exit(0xff);
		if (vt_simd() != got[0] || got[0] != vt_simd_get(got[0]->level))
			_exit(0xff);
		_exit(got[0]->level | (warnings ? 1 : 0) << 4);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

static void test_env_cap(void **state)
{
	(void)state;
	int d = vt_simd_detect();

	assert_int_equal(child_choice(NULL), d);
	assert_int_equal(child_choice(""), d);
	assert_int_equal(child_choice("scalar"), VT_SIMD_SCALAR);
	assert_int_equal(child_choice("avx2"), min_int(d, VT_SIMD_AVX2));
	assert_int_equal(child_choice("Avx2"), min_int(d, VT_SIMD_AVX2));
	assert_int_equal(child_choice("avx512"), min_int(d, VT_SIMD_AVX512));
	assert_int_equal(child_choice("avx512vnni"), d);
	/* Unknown: ignored, with a warning. */
	assert_int_equal(child_choice("sse4"), d | 1 << 4);
}

static void test_choice_in_this_process(void **state)
{
	(void)state;
	const char *env = getenv("VT_SIMD");
	int want = vt_simd_detect();
	int cap = env ? vt_simd_level_parse(env) : -1;

	if (cap >= 0)
		want = min_int(want, cap);
	const vt_simd_ops *o = vt_simd();
	assert_non_null(o);
	assert_int_equal(o->level, want);
	assert_ptr_equal(vt_simd(), o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_detect_and_get),
		cmocka_unit_test(test_env_cap),
		cmocka_unit_test(test_choice_in_this_process),
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_f32_sweep),
		cmocka_unit_test(test_int_sweep),
		cmocka_unit_test(test_int_extremes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
