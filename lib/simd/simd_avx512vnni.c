/* simd_avx512vnni.c: the integer kernels for AVX-512 + VNNI, compiled with
 * -mavx512vnni; the float kernels are the AVX-512 ones, VNNI adds nothing
 * to them. Not callable on other CPUs: reach it only through simd.c.
 *
 * vpdpwssd (16-bit x 16-bit, pairs summed into 32-bit lanes, wrapping)
 * fuses the vpmaddwd + vpaddd of the AVX-512 file. vpdpbusd takes bytes
 * directly but multiplies unsigned by *signed* bytes: the unsigned dot
 * products use it with a sign flip and a correction (below); the squared
 * differences (-255..255) do not fit it and stay on vpdpwssd. docs/simd.md
 * has more. */
#include <immintrin.h>

#include "simd_int.h"

static inline __m512i l2_acc(__m512i acc, __m512i x, __m512i y)
{
	__m512i d = _mm512_sub_epi16(x, y);
	return _mm512_dpwssd_epi32(acc, d, d);
}

static inline __m512i dot_acc(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_dpwssd_epi32(acc, x, y);
}

#define VT__K512_OWN_DOT_U8
#include "simd_kern512.h"

/* ---- dot_u8 on bytes, with vpdpbusd ----
 * vpdpbusd multiplies unsigned bytes by signed ones. Flipping the top bit
 * of one side makes it signed, q - 128, and the lost term comes back from
 * the other side's byte sum:
 *     sum q.b = sum b.(q - 128) + 128 sum b
 * Both sums run on vpdpbusd (the byte sum against a vector of ones), 64
 * bytes a step, with no widening: two multiply-adds per 64 bytes of a row
 * instead of two widening loads and two vpdpwssd per 32. Lanes wrap; the
 * true total is below 2^32 for every n the header allows, so the wrapped
 * sum is exact (|sum b.(q - 128)| <= 255 * 128 * 65535 < 2^31). */

static inline __mmask64 mask64(size_t r)
{
	return r >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << r) - 1);
}

/* Four lane totals at once: out[k] = sum of the lanes of v[k], mod 2^32. */
static inline void hsum4_epi32(__m512i v0, __m512i v1, __m512i v2, __m512i v3,
			       uint32_t out[4])
{
	__m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v0),
				     _mm512_extracti64x4_epi64(v0, 1));
	__m256i b = _mm256_add_epi32(_mm512_castsi512_si256(v1),
				     _mm512_extracti64x4_epi64(v1, 1));
	__m256i c = _mm256_add_epi32(_mm512_castsi512_si256(v2),
				     _mm512_extracti64x4_epi64(v2, 1));
	__m256i d = _mm256_add_epi32(_mm512_castsi512_si256(v3),
				     _mm512_extracti64x4_epi64(v3, 1));
	__m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b),
				      _mm256_hadd_epi32(c, d));
	_mm_storeu_si128((__m128i *)out,
			 _mm_add_epi32(_mm256_castsi256_si128(h),
				       _mm256_extracti128_si256(h, 1)));
}

static uint32_t dot_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	const __m512i ones = _mm512_set1_epi8(1);
	__m512i s0 = _mm512_setzero_si512(), s1 = s0, t0 = s0, t1 = s0;
	size_t i = 0;
	for (; i + 128 <= n; i += 128) {
		__m512i x0 = _mm512_loadu_si512(a + i);
		__m512i x1 = _mm512_loadu_si512(a + i + 64);
		__m512i y0 = _mm512_loadu_si512(b + i);
		__m512i y1 = _mm512_loadu_si512(b + i + 64);
		s0 = _mm512_dpbusd_epi32(s0, y0, _mm512_xor_si512(x0, flip));
		s1 = _mm512_dpbusd_epi32(s1, y1, _mm512_xor_si512(x1, flip));
		t0 = _mm512_dpbusd_epi32(t0, y0, ones);
		t1 = _mm512_dpbusd_epi32(t1, y1, ones);
	}
	for (; i < n; i += 64) {
		__mmask64 m = mask64(n - i);
		/* masked-off bytes of b are 0, so whatever x holds there adds 0 */
		__m512i x = _mm512_maskz_loadu_epi8(m, a + i);
		__m512i y = _mm512_maskz_loadu_epi8(m, b + i);
		s0 = _mm512_dpbusd_epi32(s0, y, _mm512_xor_si512(x, flip));
		t0 = _mm512_dpbusd_epi32(t0, y, ones);
	}
	uint32_t s = hsum_epi32(_mm512_add_epi32(s0, s1));
	uint32_t t = hsum_epi32(_mm512_add_epi32(t0, t1));
	return s + 128u * t;
}

static void dot_u8_x4(const uint8_t *q, const uint8_t *b0, const uint8_t *b1,
		      const uint8_t *b2, const uint8_t *b3, size_t n,
		      uint32_t out[4])
{
	const __m512i flip = _mm512_set1_epi8((char)0x80);
	const __m512i ones = _mm512_set1_epi8(1);
	__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
	__m512i t0 = s0, t1 = s0, t2 = s0, t3 = s0;
	size_t i = 0;
#define VT__DOT4_STEP(LD)                                                      \
	do {                                                                   \
		__m512i x = _mm512_xor_si512(LD(q + i), flip);                \
		__m512i y0 = LD(b0 + i), y1 = LD(b1 + i);                      \
		__m512i y2 = LD(b2 + i), y3 = LD(b3 + i);                      \
		s0 = _mm512_dpbusd_epi32(s0, y0, x);                           \
		s1 = _mm512_dpbusd_epi32(s1, y1, x);                           \
		s2 = _mm512_dpbusd_epi32(s2, y2, x);                           \
		s3 = _mm512_dpbusd_epi32(s3, y3, x);                           \
		t0 = _mm512_dpbusd_epi32(t0, y0, ones);                        \
		t1 = _mm512_dpbusd_epi32(t1, y1, ones);                        \
		t2 = _mm512_dpbusd_epi32(t2, y2, ones);                        \
		t3 = _mm512_dpbusd_epi32(t3, y3, ones);                        \
	} while (0)
#define VT__LD(p) _mm512_loadu_si512(p)
#define VT__LDM(p) _mm512_maskz_loadu_epi8(m, p)
	for (; i + 64 <= n; i += 64)
		VT__DOT4_STEP(VT__LD);
	if (i < n) {
		__mmask64 m = mask64(n - i);
		VT__DOT4_STEP(VT__LDM);
	}
#undef VT__LDM
#undef VT__LD
#undef VT__DOT4_STEP
	uint32_t s[4], t[4];
	hsum4_epi32(s0, s1, s2, s3, s);
	hsum4_epi32(t0, t1, t2, t3, t);
	for (int k = 0; k < 4; k++)
		out[k] = s[k] + 128u * t[k];
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
