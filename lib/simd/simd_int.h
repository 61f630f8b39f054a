/* simd_int.h: what the files of lib/simd share: the per-ISA tables, the
 * AVX-512 float kernels the VNNI table reuses, and small scalar helpers.
 * Not part of the public API: include "simd/simd.h" from outside. */
#ifndef VT_SIMD_SIMD_INT_H
#define VT_SIMD_SIMD_INT_H

#include <math.h>
#include <string.h>

#include "simd.h"

/* One table per ISA, each defined in its own file. Only simd.c hands them
 * out, and only after detection says the CPU can run them. */
extern const vt_simd_ops vt__simd_scalar;
extern const vt_simd_ops vt__simd_avx2;
extern const vt_simd_ops vt__simd_avx512;
extern const vt_simd_ops vt__simd_avx512vnni;

/* The AVX-512 float kernels, which VNNI adds nothing to. */
float vt__avx512_l2sq_f32(const float *a, const float *b, size_t n);
float vt__avx512_dot_f32(const float *a, const float *b, size_t n);
float vt__avx512_cos_f32(const float *a, const float *b, size_t n);
void vt__avx512_l2sq_f32_x4(const float *q, const float *b0, const float *b1,
			    const float *b2, const float *b3, size_t n,
			    float out[4]);
void vt__avx512_dot_f32_x4(const float *q, const float *b0, const float *b1,
			   const float *b2, const float *b3, size_t n,
			   float out[4]);

/* Everything below is static inline on purpose: each file gets its own copy
 * compiled with its own flags, so no AVX-512 code can end up being the one
 * copy the baseline files link against. */

/* Float loads through memcpy, so scalar code stays defined even for a float
 * pointer that is not 4-byte aligned; it compiles to a plain movss. */
static inline float vt__ldf(const float *p)
{
	float x;
	memcpy(&x, p, sizeof x);
	return x;
}

/* The end of every cosine: double, so |a|^2 |b|^2 cannot overflow a float,
 * and clamped, so rounding never yields a "similarity" above 1 or a
 * negative cosine distance. */
static inline float vt__cos_finish(double dot, double na, double nb)
{
	if (na <= 0.0 || nb <= 0.0)
		return 0.0f;
	double c = dot / sqrt(na * nb);
	if (c > 1.0)
		c = 1.0;
	else if (c < -1.0)
		c = -1.0;
	return (float)c;
}

#endif
