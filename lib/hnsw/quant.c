/* quant.c: the int8 scalar quantizer: one global range for every
 * dimension, so code distances are integer kernels (research/hnsw-speed.md
 * §3). Not the traversal: hnsw.c decides when codes are used. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/alloc.h"
#include "base/hash.h"
#include "hnsw_int.h"

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

int vt__quant_train(const float *rows, size_t n, size_t stride, uint32_t dim,
		    float quantile, float *lo, float *scale)
{
	float mn = INFINITY, mx = -INFINITY;
	int integral = 1;
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++) {
			float v = rows[i * stride + j];
			mn = v < mn ? v : mn;
			mx = v > mx ? v : mx;
			integral &= v == floorf(v);
		}
	/* Integer data spanning at most 256 values (pixels, counts) gets a
	 * unit step: codes are then exact and int8 search loses nothing. */
	if (n > 0 && integral && mx - mn <= 255.0f) {
		*lo = mn;
		*scale = 1.0f;
		return 0;
	}
	if (n == 0) {
		mn = 0;
		mx = 1;
	}
	if (quantile < 1.0f && n > 0) {
		/* A random sample of values is enough to place the tails and
		 * keeps training O(sample) for big inputs. */
		size_t total = n * dim, ns = total < 262144 ? total : 262144;
		float *s = vt_malloc(ns * sizeof *s);
		if (!s)
			return VT_ENOMEM;
		vt_rng r;
		vt_rng_seed(&r, 0x9b1d);
		for (size_t i = 0; i < ns; i++) {
			size_t k = ns == total ? i : vt_rng_next(&r) % total;
			s[i] = rows[(k / dim) * stride + k % dim];
		}
		qsort(s, ns, sizeof *s, cmp_float);
		double tail = (1.0 - quantile) / 2.0;
		size_t a = (size_t)(tail * (double)(ns - 1));
		size_t b = (size_t)((1.0 - tail) * (double)(ns - 1));
		mn = s[a];
		mx = s[b];
		vt_free(s);
	}
	*lo = mn;
	*scale = mx > mn ? (mx - mn) / 255.0f : 1.0f;
	return 0;
}

uint32_t vt__quant_encode(const float *x, uint32_t dim, size_t cstride,
			  float lo, float scale, uint8_t *out, int *exact)
{
	float inv = 1.0f / scale;
	uint32_t sum = 0, j = 0;
	int diff = 0;
#if defined(__SSE2__)
	/* Every query is encoded (784 values for Fashion-MNIST) and the scalar
	 * loop was ~5% of an int8 query; gcc does not vectorise it (the clamp
	 * stays branches unless -ffinite-math-only). SSE2 is the x86-64
	 * baseline, so this needs no dispatch. Same operations, same order, so
	 * the codes are the scalar loop's bit for bit: maxps/minps equal the
	 * comparisons on finite inputs, cvttps2dq is C's truncation. */
	const __m128 vlo = _mm_set1_ps(lo), vinv = _mm_set1_ps(inv);
	const __m128 vscale = _mm_set1_ps(scale), zero = _mm_setzero_ps();
	const __m128 top = _mm_set1_ps(255.0f), half = _mm_set1_ps(0.5f);
	__m128i acc = _mm_setzero_si128();
	__m128 bad = _mm_setzero_ps();
	for (; j + 4 <= dim; j += 4) {
		__m128 xv = _mm_loadu_ps(x + j);
		__m128 c = _mm_mul_ps(_mm_sub_ps(xv, vlo), vinv);
		c = _mm_min_ps(_mm_max_ps(c, zero), top);
		__m128i v = _mm_cvttps_epi32(_mm_add_ps(c, half));
		acc = _mm_add_epi32(acc, v);
		__m128i b = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
		int32_t four = _mm_cvtsi128_si32(b);
		memcpy(out + j, &four, 4);
		__m128 back = _mm_add_ps(vlo, _mm_mul_ps(_mm_cvtepi32_ps(v), vscale));
		bad = _mm_or_ps(bad, _mm_cmpneq_ps(back, xv));
	}
	uint32_t lanes[4];
	_mm_storeu_si128((__m128i *)lanes, acc);
	sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
	diff = _mm_movemask_ps(bad) != 0;
#endif
	for (; j < dim; j++) {
		/* clamp, then round half up: branch-free and inlined, unlike
		 * nearbyintf; exact for the integer data that maps 1:1 */
		float c = (x[j] - lo) * inv;
		c = c < 0.0f ? 0.0f : c > 255.0f ? 255.0f : c;
		out[j] = (uint8_t)(c + 0.5f);
		sum += out[j];
		diff |= lo + (float)out[j] * scale != x[j];
	}
	memset(out + dim, 0, cstride - dim);
	if (exact)
		*exact = !diff;
	return sum;
}
