/* simd.h: distance kernels for float32, uint8 and int8 vectors, with one
 * implementation per instruction set picked once at start by CPU detection.
 * Not an index or a metric policy: callers decide what a distance means. */
#ifndef VT_SIMD_SIMD_H
#define VT_SIMD_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Instruction-set levels, each a superset of the one before. */
enum vt_simd_level {
	VT_SIMD_SCALAR = 0,     /* portable C, the reference */
	VT_SIMD_AVX2 = 1,       /* AVX2 + FMA */
	VT_SIMD_AVX512 = 2,     /* AVX-512 F + BW + VL + DQ */
	VT_SIMD_AVX512VNNI = 3, /* AVX-512 + VNNI */
	VT_SIMD_LEVELS = 4,
};

/* The kernel table. Every pointer is non-NULL in every table. Inputs may
 * have any alignment; n may be any value >= 0 (n == 0 gives 0). The
 * pointers must not be NULL when n > 0. All kernels are thread-safe.
 *
 * float32 (results within a stated tolerance of the scalar reference:
 * relative 1e-5 of the sum of absolute products, see tests/unit/test_simd.c):
 *   l2sq_f32  sum (a_i - b_i)^2
 *   dot_f32   sum a_i * b_i
 *   cos_f32   dot / (|a| |b|), 0 when either norm is 0
 *   *_x4      the same kernel of q against four vectors at once (sharing
 *             the loads of q), results in out[0..3]
 *
 * uint8 (exact, integer arithmetic, n <= VT_SIMD_U8_MAX_DIM so the sums
 * cannot overflow):
 *   l2sq_u8   sum (a_i - b_i)^2
 *   dot_u8    sum a_i * b_i
 *
 * int8 (exact, n <= VT_SIMD_U8_MAX_DIM):
 *   l2sq_i8, dot_i8 as above on signed values; cos_i8 as cos_f32.
 *   l2sq_i8 is unsigned like l2sq_u8: (-128 - 127)^2 * 65535 does not fit
 *   an int32_t. |dot_i8| <= 128^2 * 65535 < 2^31 does. */
typedef struct vt_simd_ops {
	int level;
	const char *name; /* "scalar", "avx2", "avx512", "avx512vnni" */

	float (*l2sq_f32)(const float *a, const float *b, size_t n);
	float (*dot_f32)(const float *a, const float *b, size_t n);
	float (*cos_f32)(const float *a, const float *b, size_t n);
	void (*l2sq_f32_x4)(const float *q, const float *b0, const float *b1,
			    const float *b2, const float *b3, size_t n,
			    float out[4]);
	void (*dot_f32_x4)(const float *q, const float *b0, const float *b1,
			   const float *b2, const float *b3, size_t n,
			   float out[4]);

	uint32_t (*l2sq_u8)(const uint8_t *a, const uint8_t *b, size_t n);
	uint32_t (*dot_u8)(const uint8_t *a, const uint8_t *b, size_t n);
	void (*l2sq_u8_x4)(const uint8_t *q, const uint8_t *b0,
			   const uint8_t *b1, const uint8_t *b2,
			   const uint8_t *b3, size_t n, uint32_t out[4]);
	void (*dot_u8_x4)(const uint8_t *q, const uint8_t *b0,
			  const uint8_t *b1, const uint8_t *b2,
			  const uint8_t *b3, size_t n, uint32_t out[4]);

	uint32_t (*l2sq_i8)(const int8_t *a, const int8_t *b, size_t n);
	int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t n);
	float (*cos_i8)(const int8_t *a, const int8_t *b, size_t n);
} vt_simd_ops;

/* 255^2 * 65535 < 2^32: the largest n for which the u8/i8 sums are exact. */
#define VT_SIMD_U8_MAX_DIM 65535

/* The highest level this CPU supports. */
VT_API int vt_simd_detect(void);

/* The table in use: the highest supported level, capped by the environment
 * variable VT_SIMD ("scalar", "avx2", "avx512", "avx512vnni") when set.
 * Chosen once, on the first call, and never changes; thread-safe. Never
 * NULL. An unknown VT_SIMD value is ignored with a warning in the log. */
VT_API const vt_simd_ops *vt_simd(void);

/* The table of one level, or NULL when the CPU does not support it (tests
 * use this to run every variant against the scalar reference). */
VT_API const vt_simd_ops *vt_simd_get(int level);

/* "scalar", "avx2", ... or "?" */
VT_API const char *vt_simd_level_name(int level);

/* Parses a level name; returns -1 if unknown. */
VT_API int vt_simd_level_parse(const char *name);

#endif
