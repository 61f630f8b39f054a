/* simd_avx2.c: the kernels for AVX2 + FMA, compiled with -mavx2 -mfma.
 * Not callable on other CPUs: reach it only through the table simd.c hands
 * out after detection. */
#include <immintrin.h>

#include "simd_int.h"

/* ---- helpers ---- */

static inline float hsum_ps(__m256 v)
{
	__m128 x = _mm_add_ps(_mm256_castps256_ps128(v),
			      _mm256_extractf128_ps(v, 1));
	x = _mm_add_ps(x, _mm_movehl_ps(x, x));
	x = _mm_add_ss(x, _mm_movehdup_ps(x));
	return _mm_cvtss_f32(x);
}

/* Lane sums are taken modulo 2^32 (vpaddd wraps, unlike C's signed +): the
 * true total fits 32 bits for every n the header allows, so the wrapped
 * result is exact even when a partial sum passes 2^31. */
static inline uint32_t hsum_epi32(__m256i v)
{
	__m128i x = _mm_add_epi32(_mm256_castsi256_si128(v),
				  _mm256_extracti128_si256(v, 1));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
	return (uint32_t)_mm_cvtsi128_si32(x);
}

/* Four sums at once, out[k] = sum of lanes of v[k]. */
static inline void hsum4_ps(__m256 v0, __m256 v1, __m256 v2, __m256 v3,
			    float out[4])
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1),
				  _mm256_hadd_ps(v2, v3));
	_mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h),
				      _mm256_extractf128_ps(h, 1)));
}

/* The first r (< 8) lanes set. vmaskmovps does not fault on masked-off
 * lanes, so the tail may be loaded without reading past the end. */
static inline __m256i tail_mask(size_t r)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r),
				  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i ld_u8(const uint8_t *p)
{
	return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256i ld_i8(const int8_t *p)
{
	return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

/* ---- float32 ---- */

static float l2sq_f32(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	size_t i = 0;

	/* Four chains hide the FMA latency (4 cycles, 2 per cycle). */
	for (; i + 32 <= n; i += 32) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i),
					  _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
					  _mm256_loadu_ps(b + i + 8));
		__m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
					  _mm256_loadu_ps(b + i + 16));
		__m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
					  _mm256_loadu_ps(b + i + 24));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
		s2 = _mm256_fmadd_ps(d2, d2, s2);
		s3 = _mm256_fmadd_ps(d3, d3, s3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i),
					 _mm256_loadu_ps(b + i));
		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		__m256i m = tail_mask(n - i);
		__m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
					 _mm256_maskload_ps(b + i, m));
		s1 = _mm256_fmadd_ps(d, d, s1);
	}
	return hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1),
				     _mm256_add_ps(s2, s3)));
}

static float dot_f32(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
				     _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
				     _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
				     _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
				     _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
				     _mm256_loadu_ps(b + i), s0);
	if (i < n) {
		__m256i m = tail_mask(n - i);
		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
				     _mm256_maskload_ps(b + i, m), s1);
	}
	return hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1),
				     _mm256_add_ps(s2, s3)));
}

static float cos_f32(const float *a, const float *b, size_t n)
{
	/* One pass for the three sums, two chains each. */
	__m256 ab0 = _mm256_setzero_ps(), aa0 = _mm256_setzero_ps();
	__m256 bb0 = _mm256_setzero_ps(), ab1 = _mm256_setzero_ps();
	__m256 aa1 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256 x0 = _mm256_loadu_ps(a + i), y0 = _mm256_loadu_ps(b + i);
		__m256 x1 = _mm256_loadu_ps(a + i + 8);
		__m256 y1 = _mm256_loadu_ps(b + i + 8);
		ab0 = _mm256_fmadd_ps(x0, y0, ab0);
		aa0 = _mm256_fmadd_ps(x0, x0, aa0);
		bb0 = _mm256_fmadd_ps(y0, y0, bb0);
		ab1 = _mm256_fmadd_ps(x1, y1, ab1);
		aa1 = _mm256_fmadd_ps(x1, x1, aa1);
		bb1 = _mm256_fmadd_ps(y1, y1, bb1);
	}
	for (; i < n; i += 8) {
		/* Full lanes and the masked tail share this body. */
		__m256i m = tail_mask(n - i < 8 ? n - i : 8);
		__m256 x = _mm256_maskload_ps(a + i, m);
		__m256 y = _mm256_maskload_ps(b + i, m);
		ab0 = _mm256_fmadd_ps(x, y, ab0);
		aa0 = _mm256_fmadd_ps(x, x, aa0);
		bb0 = _mm256_fmadd_ps(y, y, bb0);
	}
	return vt__cos_finish(hsum_ps(_mm256_add_ps(ab0, ab1)),
			      hsum_ps(_mm256_add_ps(aa0, aa1)),
			      hsum_ps(_mm256_add_ps(bb0, bb1)));
}

static inline __m256 l2_acc(__m256 acc, __m256 q, __m256 x)
{
	__m256 d = _mm256_sub_ps(q, x);
	return _mm256_fmadd_ps(d, d, acc);
}

static void l2sq_f32_x4(const float *q, const float *b0, const float *b1,
			const float *b2, const float *b3, size_t n, float out[4])
{
	/* One load of q serves four vectors. Four sums are only four FMA
	 * chains, so the loop is unrolled twice into eight. */
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	__m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
	__m256 t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256 x = _mm256_loadu_ps(q + i);
		__m256 y = _mm256_loadu_ps(q + i + 8);
		s0 = l2_acc(s0, x, _mm256_loadu_ps(b0 + i));
		s1 = l2_acc(s1, x, _mm256_loadu_ps(b1 + i));
		s2 = l2_acc(s2, x, _mm256_loadu_ps(b2 + i));
		s3 = l2_acc(s3, x, _mm256_loadu_ps(b3 + i));
		t0 = l2_acc(t0, y, _mm256_loadu_ps(b0 + i + 8));
		t1 = l2_acc(t1, y, _mm256_loadu_ps(b1 + i + 8));
		t2 = l2_acc(t2, y, _mm256_loadu_ps(b2 + i + 8));
		t3 = l2_acc(t3, y, _mm256_loadu_ps(b3 + i + 8));
	}
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(q + i);
		s0 = l2_acc(s0, x, _mm256_loadu_ps(b0 + i));
		s1 = l2_acc(s1, x, _mm256_loadu_ps(b1 + i));
		s2 = l2_acc(s2, x, _mm256_loadu_ps(b2 + i));
		s3 = l2_acc(s3, x, _mm256_loadu_ps(b3 + i));
	}
	if (i < n) {
		__m256i m = tail_mask(n - i);
		__m256 x = _mm256_maskload_ps(q + i, m);
		s0 = l2_acc(s0, x, _mm256_maskload_ps(b0 + i, m));
		s1 = l2_acc(s1, x, _mm256_maskload_ps(b1 + i, m));
		s2 = l2_acc(s2, x, _mm256_maskload_ps(b2 + i, m));
		s3 = l2_acc(s3, x, _mm256_maskload_ps(b3 + i, m));
	}
	hsum4_ps(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1),
		 _mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3), out);
}

static void dot_f32_x4(const float *q, const float *b0, const float *b1,
		       const float *b2, const float *b3, size_t n, float out[4])
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	__m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
	__m256 t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256 x = _mm256_loadu_ps(q + i);
		__m256 y = _mm256_loadu_ps(q + i + 8);
		s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + i), s0);
		s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + i), s1);
		s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + i), s2);
		s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + i), s3);
		t0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b0 + i + 8), t0);
		t1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b1 + i + 8), t1);
		t2 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b2 + i + 8), t2);
		t3 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b3 + i + 8), t3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(q + i);
		s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + i), s0);
		s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + i), s1);
		s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + i), s2);
		s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + i), s3);
	}
	if (i < n) {
		__m256i m = tail_mask(n - i);
		__m256 x = _mm256_maskload_ps(q + i, m);
		s0 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b0 + i, m), s0);
		s1 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b1 + i, m), s1);
		s2 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b2 + i, m), s2);
		s3 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b3 + i, m), s3);
	}
	hsum4_ps(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1),
		 _mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3), out);
}

/* ---- uint8 ----
 * Widen to 16 bits, then vpmaddwd: each 32-bit lane gets the sum of two
 * products of at most 255^2, far from overflow, and the accumulation runs
 * in 32-bit lanes. The tails (< 16 bytes) are scalar: 16 bytes is the
 * widening step and there is no byte-granular masked load before
 * AVX-512BW. */

static inline __m256i l2_u8_acc(__m256i acc, __m256i x, __m256i y)
{
	__m256i d = _mm256_sub_epi16(x, y);
	return _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
}

static inline __m256i dot_acc(__m256i acc, __m256i x, __m256i y)
{
	return _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
}

/* Tails (< 16 elements) in C, wrapping like the lanes do. */
static inline uint32_t l2_tail(int x, int y)
{
	return (uint32_t)((x - y) * (x - y));
}

static inline uint32_t dot_tail(int x, int y)
{
	return (uint32_t)(x * y);
}

/* One sum over a pair of rows: T element type, LD widening load, ACC the
 * step, TAIL the scalar step. Two chains, 32 elements an iteration. */
#define VT__K256_PAIR(NAME, T, LD, ACC, TAIL)                                  \
	static uint32_t NAME(const T *a, const T *b, size_t n)                 \
	{                                                                      \
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;                  \
		size_t i = 0;                                                  \
		for (; i + 32 <= n; i += 32) {                                 \
			s0 = ACC(s0, LD(a + i), LD(b + i));                    \
			s1 = ACC(s1, LD(a + i + 16), LD(b + i + 16));          \
		}                                                              \
		if (i + 16 <= n) {                                             \
			s0 = ACC(s0, LD(a + i), LD(b + i));                    \
			i += 16;                                               \
		}                                                              \
		uint32_t s = hsum_epi32(_mm256_add_epi32(s0, s1));             \
		for (; i < n; i++)                                             \
			s += TAIL(a[i], b[i]);                                 \
		return s;                                                      \
	}

/* One query row against four, sharing each query load. */
#define VT__K256_X4(NAME, ACC, TAIL)                                           \
	static void NAME(const uint8_t *q, const uint8_t *b0,                  \
			 const uint8_t *b1, const uint8_t *b2,                 \
			 const uint8_t *b3, size_t n, uint32_t out[4])         \
	{                                                                      \
		__m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0; \
		size_t i = 0;                                                  \
		for (; i + 16 <= n; i += 16) {                                 \
			__m256i x = ld_u8(q + i);                              \
			s0 = ACC(s0, x, ld_u8(b0 + i));                        \
			s1 = ACC(s1, x, ld_u8(b1 + i));                        \
			s2 = ACC(s2, x, ld_u8(b2 + i));                        \
			s3 = ACC(s3, x, ld_u8(b3 + i));                        \
		}                                                              \
		out[0] = hsum_epi32(s0);                                       \
		out[1] = hsum_epi32(s1);                                       \
		out[2] = hsum_epi32(s2);                                       \
		out[3] = hsum_epi32(s3);                                       \
		for (; i < n; i++) {                                           \
			out[0] += TAIL(q[i], b0[i]);                           \
			out[1] += TAIL(q[i], b1[i]);                           \
			out[2] += TAIL(q[i], b2[i]);                           \
			out[3] += TAIL(q[i], b3[i]);                           \
		}                                                              \
	}

VT__K256_PAIR(l2sq_u8, uint8_t, ld_u8, l2_u8_acc, l2_tail)
VT__K256_PAIR(dot_u8, uint8_t, ld_u8, dot_acc, dot_tail)
VT__K256_PAIR(l2sq_i8, int8_t, ld_i8, l2_u8_acc, l2_tail)
VT__K256_PAIR(dot_i8_u, int8_t, ld_i8, dot_acc, dot_tail)
VT__K256_X4(l2sq_u8_x4, l2_u8_acc, l2_tail)
VT__K256_X4(dot_u8_x4, dot_acc, dot_tail)

/* Wrapping sums give the two's-complement total: exact in int32. */
static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	return (int32_t)dot_i8_u(a, b, n);
}

static float cos_i8(const int8_t *a, const int8_t *b, size_t n)
{
	__m256i ab = _mm256_setzero_si256(), aa = _mm256_setzero_si256();
	__m256i bb = _mm256_setzero_si256();
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256i x = ld_i8(a + i), y = ld_i8(b + i);
		ab = dot_acc(ab, x, y);
		aa = dot_acc(aa, x, x);
		bb = dot_acc(bb, y, y);
	}
	int32_t sab = (int32_t)hsum_epi32(ab);
	uint32_t saa = hsum_epi32(aa), sbb = hsum_epi32(bb);
	for (; i < n; i++) {
		sab += (int)a[i] * (int)b[i];
		saa += (uint32_t)((int)a[i] * (int)a[i]);
		sbb += (uint32_t)((int)b[i] * (int)b[i]);
	}
	return vt__cos_finish(sab, saa, sbb);
}

const vt_simd_ops vt__simd_avx2 = {
	.level = VT_SIMD_AVX2,
	.name = "avx2",
	.l2sq_f32 = l2sq_f32,
	.dot_f32 = dot_f32,
	.cos_f32 = cos_f32,
	.l2sq_f32_x4 = l2sq_f32_x4,
	.dot_f32_x4 = dot_f32_x4,
	.l2sq_u8 = l2sq_u8,
	.dot_u8 = dot_u8,
	.l2sq_u8_x4 = l2sq_u8_x4,
	.dot_u8_x4 = dot_u8_x4,
	.l2sq_i8 = l2sq_i8,
	.dot_i8 = dot_i8,
	.cos_i8 = cos_i8,
};
