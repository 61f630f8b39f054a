/* simd_avx512vnni.c: the integer kernels for AVX-512 + VNNI, compiled with
 * -mavx512vnni; the float kernels are the AVX-512 ones, VNNI adds nothing
 * to them. Not callable on other CPUs: reach it only through simd.c.
 *
 * vpdpwssd (16-bit x 16-bit, pairs summed into 32-bit lanes, wrapping)
 * fuses the vpmaddwd + vpaddd of the AVX-512 file. vpdpbusd would take
 * bytes directly but multiplies unsigned by *signed* bytes, which fits
 * neither u8 x u8 nor a difference in -255..255; docs/simd.md has more. */
#include <immintrin.h>

#include "simd_int.h"

static inline __mmask32 mask32(size_t r)
{
	return (__mmask32)((1u << r) - 1u); /* r < 32 */
}

/* Lane sums modulo 2^32, as in simd_avx512.c: exact because the true total
 * fits 32 bits for every n the header allows. */
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

static inline __m512i l2_acc(__m512i acc, __m512i x, __m512i y)
{
	__m512i d = _mm512_sub_epi16(x, y);
	return _mm512_dpwssd_epi32(acc, d, d);
}

static inline __m512i dot_acc(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_dpwssd_epi32(acc, x, y);
}

/* The accumulator is now an input of the multiply-add itself, so its chain
 * carries the full vpdpwssd latency: four chains, 128 bytes a step. */
static uint32_t l2sq_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 128 <= n; i += 128) {
		s0 = l2_acc(s0, ld_u8(a + i), ld_u8(b + i));
		s1 = l2_acc(s1, ld_u8(a + i + 32), ld_u8(b + i + 32));
		s2 = l2_acc(s2, ld_u8(a + i + 64), ld_u8(b + i + 64));
		s3 = l2_acc(s3, ld_u8(a + i + 96), ld_u8(b + i + 96));
	}
	for (; i + 32 <= n; i += 32)
		s0 = l2_acc(s0, ld_u8(a + i), ld_u8(b + i));
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = l2_acc(s1, ldm_u8(m, a + i), ldm_u8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1),
					   _mm512_add_epi32(s2, s3)));
}

static uint32_t dot_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 128 <= n; i += 128) {
		s0 = dot_acc(s0, ld_u8(a + i), ld_u8(b + i));
		s1 = dot_acc(s1, ld_u8(a + i + 32), ld_u8(b + i + 32));
		s2 = dot_acc(s2, ld_u8(a + i + 64), ld_u8(b + i + 64));
		s3 = dot_acc(s3, ld_u8(a + i + 96), ld_u8(b + i + 96));
	}
	for (; i + 32 <= n; i += 32)
		s0 = dot_acc(s0, ld_u8(a + i), ld_u8(b + i));
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = dot_acc(s1, ldm_u8(m, a + i), ldm_u8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1),
					   _mm512_add_epi32(s2, s3)));
}

static void l2sq_u8_x4(const uint8_t *q, const uint8_t *b0,
		       const uint8_t *b1, const uint8_t *b2,
		       const uint8_t *b3, size_t n, uint32_t out[4])
{
	/* Four sums are four vpdpwssd chains: unrolled twice into eight. */
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	__m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
	__m512i t2 = _mm512_setzero_si512(), t3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		__m512i x = ld_u8(q + i), y = ld_u8(q + i + 32);
		s0 = l2_acc(s0, x, ld_u8(b0 + i));
		s1 = l2_acc(s1, x, ld_u8(b1 + i));
		s2 = l2_acc(s2, x, ld_u8(b2 + i));
		s3 = l2_acc(s3, x, ld_u8(b3 + i));
		t0 = l2_acc(t0, y, ld_u8(b0 + i + 32));
		t1 = l2_acc(t1, y, ld_u8(b1 + i + 32));
		t2 = l2_acc(t2, y, ld_u8(b2 + i + 32));
		t3 = l2_acc(t3, y, ld_u8(b3 + i + 32));
	}
	for (; i < n; i += 32) {
		__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u;
		__m512i x = ldm_u8(m, q + i);
		s0 = l2_acc(s0, x, ldm_u8(m, b0 + i));
		s1 = l2_acc(s1, x, ldm_u8(m, b1 + i));
		s2 = l2_acc(s2, x, ldm_u8(m, b2 + i));
		s3 = l2_acc(s3, x, ldm_u8(m, b3 + i));
	}
	out[0] = hsum_epi32(_mm512_add_epi32(s0, t0));
	out[1] = hsum_epi32(_mm512_add_epi32(s1, t1));
	out[2] = hsum_epi32(_mm512_add_epi32(s2, t2));
	out[3] = hsum_epi32(_mm512_add_epi32(s3, t3));
}

static void dot_u8_x4(const uint8_t *q, const uint8_t *b0, const uint8_t *b1,
		      const uint8_t *b2, const uint8_t *b3, size_t n,
		      uint32_t out[4])
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	__m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
	__m512i t2 = _mm512_setzero_si512(), t3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		__m512i x = ld_u8(q + i), y = ld_u8(q + i + 32);
		s0 = dot_acc(s0, x, ld_u8(b0 + i));
		s1 = dot_acc(s1, x, ld_u8(b1 + i));
		s2 = dot_acc(s2, x, ld_u8(b2 + i));
		s3 = dot_acc(s3, x, ld_u8(b3 + i));
		t0 = dot_acc(t0, y, ld_u8(b0 + i + 32));
		t1 = dot_acc(t1, y, ld_u8(b1 + i + 32));
		t2 = dot_acc(t2, y, ld_u8(b2 + i + 32));
		t3 = dot_acc(t3, y, ld_u8(b3 + i + 32));
	}
	for (; i < n; i += 32) {
		__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u;
		__m512i x = ldm_u8(m, q + i);
		s0 = dot_acc(s0, x, ldm_u8(m, b0 + i));
		s1 = dot_acc(s1, x, ldm_u8(m, b1 + i));
		s2 = dot_acc(s2, x, ldm_u8(m, b2 + i));
		s3 = dot_acc(s3, x, ldm_u8(m, b3 + i));
	}
	out[0] = hsum_epi32(_mm512_add_epi32(s0, t0));
	out[1] = hsum_epi32(_mm512_add_epi32(s1, t1));
	out[2] = hsum_epi32(_mm512_add_epi32(s2, t2));
	out[3] = hsum_epi32(_mm512_add_epi32(s3, t3));
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 128 <= n; i += 128) {
		s0 = l2_acc(s0, ld_i8(a + i), ld_i8(b + i));
		s1 = l2_acc(s1, ld_i8(a + i + 32), ld_i8(b + i + 32));
		s2 = l2_acc(s2, ld_i8(a + i + 64), ld_i8(b + i + 64));
		s3 = l2_acc(s3, ld_i8(a + i + 96), ld_i8(b + i + 96));
	}
	for (; i + 32 <= n; i += 32)
		s0 = l2_acc(s0, ld_i8(a + i), ld_i8(b + i));
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = l2_acc(s1, ldm_i8(m, a + i), ldm_i8(m, b + i));
	}
	return hsum_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1),
					   _mm512_add_epi32(s2, s3)));
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
	__m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 128 <= n; i += 128) {
		s0 = dot_acc(s0, ld_i8(a + i), ld_i8(b + i));
		s1 = dot_acc(s1, ld_i8(a + i + 32), ld_i8(b + i + 32));
		s2 = dot_acc(s2, ld_i8(a + i + 64), ld_i8(b + i + 64));
		s3 = dot_acc(s3, ld_i8(a + i + 96), ld_i8(b + i + 96));
	}
	for (; i + 32 <= n; i += 32)
		s0 = dot_acc(s0, ld_i8(a + i), ld_i8(b + i));
	if (i < n) {
		__mmask32 m = mask32(n - i);
		s1 = dot_acc(s1, ldm_i8(m, a + i), ldm_i8(m, b + i));
	}
	return (int32_t)hsum_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1),
						    _mm512_add_epi32(s2, s3)));
}

static float cos_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i ab = _mm512_setzero_si512(), aa = _mm512_setzero_si512();
	__m512i bb = _mm512_setzero_si512();
	size_t i = 0;

	for (; i < n; i += 32) {
		__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u;
		__m512i x = ldm_i8(m, a + i), y = ldm_i8(m, b + i);
		ab = dot_acc(ab, x, y);
		aa = dot_acc(aa, x, x);
		bb = dot_acc(bb, y, y);
	}
	return vt__cos_finish((int32_t)hsum_epi32(ab), hsum_epi32(aa),
			      hsum_epi32(bb));
}

const vt_simd_ops vt__simd_avx512vnni = {
	.level = VT_SIMD_AVX512VNNI,
	.name = "avx512vnni",
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
