/* simd_avx512.c: the kernels for AVX-512 F + BW + VL + DQ, compiled with
 * those flags. Not callable on other CPUs: reach it only through the table
 * simd.c hands out after detection. Tails use masked loads, which do not
 * fault on masked-off bytes, so no kernel reads past the end of an input. */
#include <immintrin.h>

#include "simd_int.h"

/* ---- helpers ---- */

static inline __mmask16 mask16(size_t r)
{
	return (__mmask16)((1u << r) - 1u); /* r < 16 */
}

static inline __m256 fold_ps(__m512 v)
{
	return _mm256_add_ps(_mm512_castps512_ps256(v),
			     _mm512_extractf32x8_ps(v, 1));
}

/* Four sums at once, out[k] = sum of lanes of v[k]. */
static inline void hsum4_ps(__m512 v0, __m512 v1, __m512 v2, __m512 v3,
			    float out[4])
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(fold_ps(v0), fold_ps(v1)),
				  _mm256_hadd_ps(fold_ps(v2), fold_ps(v3)));
	_mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h),
				      _mm256_extractf128_ps(h, 1)));
}

/* ---- float32 (the VNNI table points at these too) ---- */

float vt__avx512_l2sq_f32(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	size_t i = 0;

	/* Four chains hide the FMA latency. */
	for (; i + 64 <= n; i += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i),
					  _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
					  _mm512_loadu_ps(b + i + 16));
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32),
					  _mm512_loadu_ps(b + i + 32));
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48),
					  _mm512_loadu_ps(b + i + 48));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i),
					 _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		__mmask16 m = mask16(n - i);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
					 _mm512_maskz_loadu_ps(m, b + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
						  _mm512_add_ps(s2, s3)));
}

float vt__avx512_dot_f32(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
				     _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
				     _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32),
				     _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48),
				     _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
				     _mm512_loadu_ps(b + i), s0);
	if (i < n) {
		__mmask16 m = mask16(n - i);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
				     _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
						  _mm512_add_ps(s2, s3)));
}

float vt__avx512_cos_f32(const float *a, const float *b, size_t n)
{
	/* One pass for the three sums, two chains each. */
	__m512 ab0 = _mm512_setzero_ps(), aa0 = _mm512_setzero_ps();
	__m512 bb0 = _mm512_setzero_ps(), ab1 = _mm512_setzero_ps();
	__m512 aa1 = _mm512_setzero_ps(), bb1 = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512 x0 = _mm512_loadu_ps(a + i), y0 = _mm512_loadu_ps(b + i);
		__m512 x1 = _mm512_loadu_ps(a + i + 16);
		__m512 y1 = _mm512_loadu_ps(b + i + 16);
		ab0 = _mm512_fmadd_ps(x0, y0, ab0);
		aa0 = _mm512_fmadd_ps(x0, x0, aa0);
		bb0 = _mm512_fmadd_ps(y0, y0, bb0);
		ab1 = _mm512_fmadd_ps(x1, y1, ab1);
		aa1 = _mm512_fmadd_ps(x1, x1, aa1);
		bb1 = _mm512_fmadd_ps(y1, y1, bb1);
	}
	for (; i < n; i += 16) {
		/* Full lanes and the masked tail share this body. */
		__mmask16 m = n - i < 16 ? mask16(n - i) : (__mmask16)0xffff;
		__m512 x = _mm512_maskz_loadu_ps(m, a + i);
		__m512 y = _mm512_maskz_loadu_ps(m, b + i);
		ab0 = _mm512_fmadd_ps(x, y, ab0);
		aa0 = _mm512_fmadd_ps(x, x, aa0);
		bb0 = _mm512_fmadd_ps(y, y, bb0);
	}
	return vt__cos_finish(_mm512_reduce_add_ps(_mm512_add_ps(ab0, ab1)),
			      _mm512_reduce_add_ps(_mm512_add_ps(aa0, aa1)),
			      _mm512_reduce_add_ps(_mm512_add_ps(bb0, bb1)));
}

static inline __m512 l2_acc(__m512 acc, __m512 q, __m512 x)
{
	__m512 d = _mm512_sub_ps(q, x);
	return _mm512_fmadd_ps(d, d, acc);
}

void vt__avx512_l2sq_f32_x4(const float *q, const float *b0, const float *b1,
			    const float *b2, const float *b3, size_t n,
			    float out[4])
{
	/* One load of q serves four vectors. Four sums are only four FMA
	 * chains, so the loop is unrolled twice into eight. */
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	__m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
	__m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512 x = _mm512_loadu_ps(q + i);
		__m512 y = _mm512_loadu_ps(q + i + 16);
		s0 = l2_acc(s0, x, _mm512_loadu_ps(b0 + i));
		s1 = l2_acc(s1, x, _mm512_loadu_ps(b1 + i));
		s2 = l2_acc(s2, x, _mm512_loadu_ps(b2 + i));
		s3 = l2_acc(s3, x, _mm512_loadu_ps(b3 + i));
		t0 = l2_acc(t0, y, _mm512_loadu_ps(b0 + i + 16));
		t1 = l2_acc(t1, y, _mm512_loadu_ps(b1 + i + 16));
		t2 = l2_acc(t2, y, _mm512_loadu_ps(b2 + i + 16));
		t3 = l2_acc(t3, y, _mm512_loadu_ps(b3 + i + 16));
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i < 16 ? mask16(n - i) : (__mmask16)0xffff;
		__m512 x = _mm512_maskz_loadu_ps(m, q + i);
		s0 = l2_acc(s0, x, _mm512_maskz_loadu_ps(m, b0 + i));
		s1 = l2_acc(s1, x, _mm512_maskz_loadu_ps(m, b1 + i));
		s2 = l2_acc(s2, x, _mm512_maskz_loadu_ps(m, b2 + i));
		s3 = l2_acc(s3, x, _mm512_maskz_loadu_ps(m, b3 + i));
	}
	hsum4_ps(_mm512_add_ps(s0, t0), _mm512_add_ps(s1, t1),
		 _mm512_add_ps(s2, t2), _mm512_add_ps(s3, t3), out);
}

void vt__avx512_dot_f32_x4(const float *q, const float *b0, const float *b1,
			   const float *b2, const float *b3, size_t n,
			   float out[4])
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	__m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
	__m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
	__m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512 x = _mm512_loadu_ps(q + i);
		__m512 y = _mm512_loadu_ps(q + i + 16);
		s0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b0 + i), s0);
		s1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b1 + i), s1);
		s2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b2 + i), s2);
		s3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b3 + i), s3);
		t0 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b0 + i + 16), t0);
		t1 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b1 + i + 16), t1);
		t2 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b2 + i + 16), t2);
		t3 = _mm512_fmadd_ps(y, _mm512_loadu_ps(b3 + i + 16), t3);
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i < 16 ? mask16(n - i) : (__mmask16)0xffff;
		__m512 x = _mm512_maskz_loadu_ps(m, q + i);
		s0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b0 + i), s0);
		s1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b1 + i), s1);
		s2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b2 + i), s2);
		s3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b3 + i), s3);
	}
	hsum4_ps(_mm512_add_ps(s0, t0), _mm512_add_ps(s1, t1),
		 _mm512_add_ps(s2, t2), _mm512_add_ps(s3, t3), out);
}

/* ---- integers: simd_kern512.h, with vpmaddwd + vpaddd as the step ---- */

static inline __m512i l2_acc_i(__m512i acc, __m512i x, __m512i y)
{
	__m512i d = _mm512_sub_epi16(x, y);
	return _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
}

static inline __m512i dot_acc_i(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
}

#define l2_acc l2_acc_i
#define dot_acc dot_acc_i
#include "simd_kern512.h"
#undef l2_acc
#undef dot_acc

const vt_simd_ops vt__simd_avx512 = {
	.level = VT_SIMD_AVX512,
	.name = "avx512",
	.l2sq_f32 = vt__avx512_l2sq_f32,
	.dot_f32 = vt__avx512_dot_f32,
	.cos_f32 = vt__avx512_cos_f32,
	.l2sq_f32_x4 = vt__avx512_l2sq_f32_x4,
	.dot_f32_x4 = vt__avx512_dot_f32_x4,
	.l2sq_u8 = l2sq_u8,
	.dot_u8 = dot_u8,
	.l2sq_u8_x4 = l2sq_u8_x4,
	.dot_u8_x4 = dot_u8_x4,
	.l2sq_i8 = l2sq_i8,
	.dot_i8 = dot_i8,
	.cos_i8 = cos_i8,
};
