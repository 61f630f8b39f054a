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

static inline __m512i l2_acc(__m512i acc, __m512i x, __m512i y)
{
	__m512i d = _mm512_sub_epi16(x, y);
	return _mm512_dpwssd_epi32(acc, d, d);
}

static inline __m512i dot_acc(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_dpwssd_epi32(acc, x, y);
}

#include "simd_kern512.h"

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
