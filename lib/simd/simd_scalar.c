/* simd_scalar.c: the portable kernels, the reference every ISA is tested
 * against and the table used when the CPU has no AVX2. Not tuned for speed.
 *
 * Float sums accumulate in double: the loop is bound by the latency of one
 * add chain either way, and a reference that is itself accurate keeps the
 * test tolerance about the SIMD kernels alone. Integer sums use 64 bits and
 * are exact for every n the header allows. */
#include "simd_int.h"

static float l2sq_f32(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)vt__ldf(a + i) - (double)vt__ldf(b + i);
		s += d * d;
	}
	return (float)s;
}

static float dot_f32(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)vt__ldf(a + i) * (double)vt__ldf(b + i);
	return (float)s;
}

static float cos_f32(const float *a, const float *b, size_t n)
{
	double ab = 0.0, aa = 0.0, bb = 0.0;
	for (size_t i = 0; i < n; i++) {
		double x = vt__ldf(a + i), y = vt__ldf(b + i);
		ab += x * y;
		aa += x * x;
		bb += y * y;
	}
	return vt__cos_finish(ab, aa, bb);
}

static void l2sq_f32_x4(const float *q, const float *b0, const float *b1,
			const float *b2, const float *b3, size_t n, float out[4])
{
	out[0] = l2sq_f32(q, b0, n);
	out[1] = l2sq_f32(q, b1, n);
	out[2] = l2sq_f32(q, b2, n);
	out[3] = l2sq_f32(q, b3, n);
}

static void dot_f32_x4(const float *q, const float *b0, const float *b1,
		       const float *b2, const float *b3, size_t n, float out[4])
{
	out[0] = dot_f32(q, b0, n);
	out[1] = dot_f32(q, b1, n);
	out[2] = dot_f32(q, b2, n);
	out[3] = dot_f32(q, b3, n);
}

static uint32_t l2sq_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++) {
		int d = (int)a[i] - (int)b[i];
		s += (uint64_t)(d * d);
	}
	return (uint32_t)s;
}

static uint32_t dot_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (uint64_t)a[i] * b[i];
	return (uint32_t)s;
}

static void l2sq_u8_x4(const uint8_t *q, const uint8_t *b0,
		       const uint8_t *b1, const uint8_t *b2,
		       const uint8_t *b3, size_t n, uint32_t out[4])
{
	out[0] = l2sq_u8(q, b0, n);
	out[1] = l2sq_u8(q, b1, n);
	out[2] = l2sq_u8(q, b2, n);
	out[3] = l2sq_u8(q, b3, n);
}

static void dot_u8_x4(const uint8_t *q, const uint8_t *b0, const uint8_t *b1,
		      const uint8_t *b2, const uint8_t *b3, size_t n,
		      uint32_t out[4])
{
	out[0] = dot_u8(q, b0, n);
	out[1] = dot_u8(q, b1, n);
	out[2] = dot_u8(q, b2, n);
	out[3] = dot_u8(q, b3, n);
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++) {
		int d = (int)a[i] - (int)b[i];
		s += (uint64_t)(d * d);
	}
	return (uint32_t)s;
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	int64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (int)a[i] * (int)b[i];
	return (int32_t)s;
}

static float cos_i8(const int8_t *a, const int8_t *b, size_t n)
{
	int64_t ab = 0, aa = 0, bb = 0;
	for (size_t i = 0; i < n; i++) {
		ab += (int)a[i] * (int)b[i];
		aa += (int)a[i] * (int)a[i];
		bb += (int)b[i] * (int)b[i];
	}
	return vt__cos_finish((double)ab, (double)aa, (double)bb);
}

const vt_simd_ops vt__simd_scalar = {
	.level = VT_SIMD_SCALAR,
	.name = "scalar",
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
