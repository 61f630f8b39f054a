/* simd_kern512.h: the 512-bit integer kernels, written once and included
 * by simd_avx512.c and simd_avx512vnni.c, which differ only in how a
 * step accumulates. Not a public header and not a standalone unit.
 *
 * The including file defines, before the #include:
 *   static inline __m512i l2_acc(__m512i acc, __m512i x, __m512i y);
 *   static inline __m512i dot_acc(__m512i acc, __m512i x, __m512i y);
 * taking 32 widened (16-bit) elements each, and gets the static kernels
 * l2sq_u8, dot_u8, l2sq_u8_x4, dot_u8_x4, l2sq_i8, dot_i8 and cos_i8
 * (dot_u8 and dot_u8_x4 only without VT__K512_OWN_DOT_U8).
 *
 * Scheme: widen 32 bytes to 32 words (vpmovzxbw / vpmovsxbw), accumulate
 * pairs into 32-bit lanes. A masked load zero-fills the tail of both
 * inputs, so missing elements add 0 to l2 and to dot. Four chains per
 * sum, because with vpdpwssd the accumulator is an input of the
 * multiply-add itself and each chain carries its full latency. */
#ifndef VT_SIMD_KERN512_H
#define VT_SIMD_KERN512_H

#include <immintrin.h>

#include "simd_int.h"

static inline __mmask32 mask32(size_t r)
{
	return (__mmask32)((1u << r) - 1u); /* r < 32 */
}

/* Lane sums modulo 2^32: exact, because the true total fits 32 bits for
 * every n the header allows (_mm512_reduce_add_epi32 adds in int and
 * overflows at n = 65535). */
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

/* One sum over a pair of rows: T element type, LD/LDM widening loads,
 * ACC the step. Returns the 32-bit lane total. */
#define VT__K512_PAIR(NAME, T, LD, LDM, ACC)                                   \
	static uint32_t NAME(const T *a, const T *b, size_t n)                 \
	{                                                                      \
		__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0; \
		size_t i = 0;                                                  \
		for (; i + 128 <= n; i += 128) {                               \
			s0 = ACC(s0, LD(a + i), LD(b + i));                    \
			s1 = ACC(s1, LD(a + i + 32), LD(b + i + 32));          \
			s2 = ACC(s2, LD(a + i + 64), LD(b + i + 64));          \
			s3 = ACC(s3, LD(a + i + 96), LD(b + i + 96));          \
		}                                                              \
		for (; i + 32 <= n; i += 32)                                   \
			s0 = ACC(s0, LD(a + i), LD(b + i));                    \
		if (i < n) {                                                   \
			__mmask32 m = mask32(n - i);                           \
			s1 = ACC(s1, LDM(m, a + i), LDM(m, b + i));            \
		}                                                              \
		return hsum_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1),   \
						   _mm512_add_epi32(s2, s3))); \
	}

/* One query row against four: each query load serves four sums, and two
 * steps per iteration give eight independent chains. */
#define VT__K512_X4(NAME, ACC)                                                 \
	static void NAME(const uint8_t *q, const uint8_t *b0,                  \
			 const uint8_t *b1, const uint8_t *b2,                 \
			 const uint8_t *b3, size_t n, uint32_t out[4])         \
	{                                                                      \
		__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0; \
		__m512i t0 = s0, t1 = s0, t2 = s0, t3 = s0;                    \
		size_t i = 0;                                                  \
		for (; i + 64 <= n; i += 64) {                                 \
			__m512i x = ld_u8(q + i), y = ld_u8(q + i + 32);       \
			s0 = ACC(s0, x, ld_u8(b0 + i));                        \
			s1 = ACC(s1, x, ld_u8(b1 + i));                        \
			s2 = ACC(s2, x, ld_u8(b2 + i));                        \
			s3 = ACC(s3, x, ld_u8(b3 + i));                        \
			t0 = ACC(t0, y, ld_u8(b0 + i + 32));                   \
			t1 = ACC(t1, y, ld_u8(b1 + i + 32));                   \
			t2 = ACC(t2, y, ld_u8(b2 + i + 32));                   \
			t3 = ACC(t3, y, ld_u8(b3 + i + 32));                   \
		}                                                              \
		for (; i < n; i += 32) {                                       \
			__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u; \
			__m512i x = ldm_u8(m, q + i);                          \
			s0 = ACC(s0, x, ldm_u8(m, b0 + i));                    \
			s1 = ACC(s1, x, ldm_u8(m, b1 + i));                    \
			s2 = ACC(s2, x, ldm_u8(m, b2 + i));                    \
			s3 = ACC(s3, x, ldm_u8(m, b3 + i));                    \
		}                                                              \
		out[0] = hsum_epi32(_mm512_add_epi32(s0, t0));                 \
		out[1] = hsum_epi32(_mm512_add_epi32(s1, t1));                 \
		out[2] = hsum_epi32(_mm512_add_epi32(s2, t2));                 \
		out[3] = hsum_epi32(_mm512_add_epi32(s3, t3));                 \
	}

VT__K512_PAIR(l2sq_u8, uint8_t, ld_u8, ldm_u8, l2_acc)
VT__K512_PAIR(l2sq_i8, int8_t, ld_i8, ldm_i8, l2_acc)
VT__K512_PAIR(dot_i8_u, int8_t, ld_i8, ldm_i8, dot_acc)
VT__K512_X4(l2sq_u8_x4, l2_acc)
/* An including file with a better unsigned dot product (VNNI's vpdpbusd
 * on bytes) defines VT__K512_OWN_DOT_U8 and its own dot_u8, dot_u8_x4. */
#ifndef VT__K512_OWN_DOT_U8
VT__K512_PAIR(dot_u8, uint8_t, ld_u8, ldm_u8, dot_acc)
VT__K512_X4(dot_u8_x4, dot_acc)
#endif

/* Wrapping lane sums give the two's-complement total: exact in int32. */
static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	return (int32_t)dot_i8_u(a, b, n);
}

static float cos_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i ab = _mm512_setzero_si512(), aa = ab, bb = ab;
	for (size_t i = 0; i < n; i += 32) {
		__mmask32 m = n - i < 32 ? mask32(n - i) : (__mmask32)~0u;
		__m512i x = ldm_i8(m, a + i), y = ldm_i8(m, b + i);
		ab = dot_acc(ab, x, y);
		aa = dot_acc(aa, x, x);
		bb = dot_acc(bb, y, y);
	}
	return vt__cos_finish((int32_t)hsum_epi32(ab), hsum_epi32(aa),
			      hsum_epi32(bb));
}

#endif
