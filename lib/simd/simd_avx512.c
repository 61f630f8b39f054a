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

static inline __mmask32 mask32(size_t r)
{
	return (__mmask32)((1u << r) - 1u); /* r < 32 */
}

/* Lane sums modulo 2^32 (vpaddd wraps; _mm512_reduce_add_epi32 is avoided
 * because it adds in C signed ints): the true total fits 32 bits for every
 * n the header allows, so the wrapped result is exact. */
static inline uint32_t hsum_epi32(__m512i v)
{
	__m256i y = _mm256_add_epi32(_mm512_castsi512_si256(v),
				     _mm512_extracti64x4_epi64(v, 1));
	__m128i x = _mm_add_epi32(_mm256_castsi256_si128(y),
				  _mm256_extracti128_si256(y, 1));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
	return (uint32_t)_mm_cvtsi128_si32(x);
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

static inline __m512i ld_u8(const uint8_t *p)
{
	return _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512i ldm_u8(__mmask32 m, const uint8_t *p)
{
	return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

static inline __m512i ld_i8(const int8_t *p)
{
	return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512i ldm_i8(__mmask32 m, const int8_t *p)
{
	return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, p));
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

/* ---- uint8 ----
 * Widen 32 bytes to 32 words (vpmovzxbw), subtract for l2, vpmaddwd into
 * 32-bit lanes. A masked load zero-fills the tail of both inputs, so the
 * missing elements add 0 to both l2 and dot. */

static inline __m512i l2_acc_i(__m512i acc, __m512i x, __m512i y)
{
	__m512i d = _mm512_sub_epi16(x, y);
	return _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
}

static inline __m512i dot_acc_i(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
}

static uint32_t l2sq_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = l2_acc_i(s0, ld_u8(a + i), ld_u8(b + i));
		s1 = l2_acc_i(s1, ld_u8(a + i + 32), ld_u8(b + i + 32));
	}
	if (i + 32 <= n) {
		s0 = l2_acc_i(s0, ld_u8(a + i), ld_u8(b + i));
		i += 32;
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = l2_acc_i(s1, ldm_u8(m, a + i), ldm_u8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(s0, s1));
}

static uint32_t dot_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = dot_acc_i(s0, ld_u8(a + i), ld_u8(b + i));
		s1 = dot_acc_i(s1, ld_u8(a + i + 32), ld_u8(b + i + 32));
	}
	if (i + 32 <= n) {
		s0 = dot_acc_i(s0, ld_u8(a + i), ld_u8(b + i));
		i += 32;
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = dot_acc_i(s1, ldm_u8(m, a + i), ldm_u8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(s0, s1));
}

static void l2sq_u8_x4(const uint8_t *q, const uint8_t *b0,
		       const uint8_t *b1, const uint8_t *b2,
		       const uint8_t *b3, size_t n, uint32_t out[4])
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512i x = ld_u8(q + i);
		s0 = l2_acc_i(s0, x, ld_u8(b0 + i));
		s1 = l2_acc_i(s1, x, ld_u8(b1 + i));
		s2 = l2_acc_i(s2, x, ld_u8(b2 + i));
		s3 = l2_acc_i(s3, x, ld_u8(b3 + i));
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		__m512i x = ldm_u8(m, q + i);
		s0 = l2_acc_i(s0, x, ldm_u8(m, b0 + i));
		s1 = l2_acc_i(s1, x, ldm_u8(m, b1 + i));
		s2 = l2_acc_i(s2, x, ldm_u8(m, b2 + i));
		s3 = l2_acc_i(s3, x, ldm_u8(m, b3 + i));
	}
	out[0] = hsum_epi32(s0);
	out[1] = hsum_epi32(s1);
	out[2] = hsum_epi32(s2);
	out[3] = hsum_epi32(s3);
}

static void dot_u8_x4(const uint8_t *q, const uint8_t *b0, const uint8_t *b1,
		      const uint8_t *b2, const uint8_t *b3, size_t n,
		      uint32_t out[4])
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512i x = ld_u8(q + i);
		s0 = dot_acc_i(s0, x, ld_u8(b0 + i));
		s1 = dot_acc_i(s1, x, ld_u8(b1 + i));
		s2 = dot_acc_i(s2, x, ld_u8(b2 + i));
		s3 = dot_acc_i(s3, x, ld_u8(b3 + i));
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		__m512i x = ldm_u8(m, q + i);
		s0 = dot_acc_i(s0, x, ldm_u8(m, b0 + i));
		s1 = dot_acc_i(s1, x, ldm_u8(m, b1 + i));
		s2 = dot_acc_i(s2, x, ldm_u8(m, b2 + i));
		s3 = dot_acc_i(s3, x, ldm_u8(m, b3 + i));
	}
	out[0] = hsum_epi32(s0);
	out[1] = hsum_epi32(s1);
	out[2] = hsum_epi32(s2);
	out[3] = hsum_epi32(s3);
}

/* ---- int8: the same scheme with sign extension ---- */

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = l2_acc_i(s0, ld_i8(a + i), ld_i8(b + i));
		s1 = l2_acc_i(s1, ld_i8(a + i + 32), ld_i8(b + i + 32));
	}
	if (i + 32 <= n) {
		s0 = l2_acc_i(s0, ld_i8(a + i), ld_i8(b + i));
		i += 32;
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = l2_acc_i(s1, ldm_i8(m, a + i), ldm_i8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(s0, s1));
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = dot_acc_i(s0, ld_i8(a + i), ld_i8(b + i));
		s1 = dot_acc_i(s1, ld_i8(a + i + 32), ld_i8(b + i + 32));
	}
	if (i + 32 <= n) {
		s0 = dot_acc_i(s0, ld_i8(a + i), ld_i8(b + i));
		i += 32;
	}
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = dot_acc_i(s1, ldm_i8(m, a + i), ldm_i8(m, b + i));
	}
	return (int32_t)hsum_epi32(_mm512_add_epi32(s0, s1));
}

static float cos_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i ab = _mm512_setzero_si512(), aa = _mm512_setzero_si512();
	__m512i bb = _mm512_setzero_si512();
	size_t i = 0;

	for (; i < n; i += 32) {
		__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u;
		__m512i x = ldm_i8(m, a + i), y = ldm_i8(m, b + i);
		ab = dot_acc_i(ab, x, y);
		aa = dot_acc_i(aa, x, x);
		bb = dot_acc_i(bb, y, y);
	}
	return vt__cos_finish((int32_t)hsum_epi32(ab), hsum_epi32(aa),
			      hsum_epi32(bb));
}

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
