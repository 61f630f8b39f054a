/* hnsw_int.h: the index's private layout, shared by hnsw.c (graph and
 * search), quant.c (int8 codes) and hnsw_io.c (file format). Nothing here is
 * part of the public API. */
#ifndef VT_HNSW_INT_H
#define VT_HNSW_INT_H

#include <pthread.h>
#include <stdint.h>

#include "hnsw.h"
#include "simd/simd.h"

#define VT__NONE 0xffffffffu       /* empty link slot / no node */
#define VT__MAX_NODES 0x7ffffffeu  /* ids keep their top bit free (pool) */
#define VT__MAX_LEVEL 31
#define VT__STRIPES 1024           /* link-list lock stripes */

/* Label map slots (see vt_hnsw.map). */
#define VT__MAP_EMPTY 0u
#define VT__MAP_GONE 1u  /* removed; keeps probe chains intact */
#define VT__MAP_BASE 2u  /* slot value = id + VT__MAP_BASE */

/* Node flags (one byte per slot, accessed atomically). */
#define VT__F_DELETED 1u /* tombstone: routes, never returned */
#define VT__F_FREE 2u    /* consolidated: unreachable, awaiting reuse */
#define VT__F_PENDING 4u /* reserved, row not yet written */

/* Distance mode of one traversal: on float32 vectors or on int8 codes. */
enum { VT__MODE_F32 = 0, VT__MODE_U8 = 1 };

/* Layout, chosen so the search loop touches as few cache lines as
 * possible (research/hnsw-speed.md §1-2): level-0 links are one flat,
 * 64-byte aligned array of m0 ids per node (m0 = 32 -> two lines), kept
 * apart from the vectors; vectors and codes are flat arrays whose rows are
 * padded to 64 bytes, so no vector straddles a needless extra line. A list
 * shorter than its capacity ends at the first VT__NONE. */
struct vt_hnsw {
	vt_hnsw_params p; /* vectors_path points at vpath below */
	uint32_t m, m0;
	double level_mult;
	const vt_simd_ops *ops;

	/* Lock order: grow (rw) -> gate (rw) -> map -> entry -> stripe.
	 * grow: shared by insert/delete/search/save, exclusive for growth,
	 * training and consolidation (anything that moves or rewrites arrays).
	 * gate: shared by insert/delete, exclusive by save, so a save sees a
	 * still index while searches go on. */
	pthread_rwlock_t grow;
	pthread_rwlock_t gate;
	pthread_mutex_t map_lock;
	pthread_mutex_t entry_lock;
	pthread_mutex_t stripes[VT__STRIPES];

	uint32_t cap;      /* slots allocated */
	uint32_t n_slots;  /* slots ever handed out (high-water mark) */
	uint32_t *links0;  /* cap * m0 */
	uint32_t **upper;  /* cap; upper[i]: levels[i] * m ids, or NULL */
	uint8_t *levels;   /* cap */
	uint8_t *flags;    /* cap, VT__F_* */
	uint64_t *labels;  /* cap */
	float *vecs;       /* cap * vstride floats (RAM or mapped file) */
	size_t vstride;    /* floats per row: dim rounded up to 16 */
	uint8_t *codes;    /* cap * cstride, int8 mode only */
	size_t cstride;    /* bytes per row: dim rounded up to 64 */
	uint32_t *csum;    /* cap: sum of a row's codes (inner-product fixup) */

	/* Floats in a file: written with pwrite, read through a shared
	 * read-only mapping so pages become resident only when read. */
	char *vpath;
	int vfd;
	size_t vmap_len;

	uint64_t ep;       /* atomic: top level << 32 | entry node; the two
			      are read together, see load_ep() */
	uint64_t level_ctr; /* under map_lock: draws of the level generator */

	/* label -> slot, open addressing with linear probing, under map_lock
	 * (and `grow` shared, since probes read labels[]). A slot holds
	 * id + VT__MAP_BASE, VT__MAP_EMPTY or VT__MAP_GONE; the label itself
	 * is labels[id], so a slot costs 4 bytes instead of 16. */
	uint32_t *map;
	uint32_t map_cap;  /* power of two */
	uint32_t map_used; /* live entries */
	uint32_t map_dead; /* removed entries still holding probe chains */
	uint32_t *free_ids; /* consolidated slots to reuse, under map_lock */
	uint32_t n_free, free_cap;

	uint64_t n_live;   /* atomic */
	uint64_t n_tomb;   /* atomic */

	/* int8 quantizer: code = round((x - q_lo) / q_scale), clamped */
	int trained;       /* atomic */
	float q_lo, q_scale;
	int codes_inexact; /* atomic: some stored row does not decode back to
			      its floats (see vt_hnsw_search's re-scoring) */
	uint64_t upper_bytes; /* atomic: bytes in upper-layer lists */

	pthread_mutex_t pool_lock;
	struct vt__searcher *pool;
};

/* quant.c */

/* Chooses the code range from n rows of dim floats (row stride `stride`
 * floats): [min, max], or the central `quantile` of the values. Writes
 * *lo and *scale (> 0). Returns 0 or VT_ENOMEM. */
int vt__quant_train(const float *rows, size_t n, size_t stride, uint32_t dim,
		    float quantile, float *lo, float *scale);

/* Encodes dim floats into codes (rest of the padded row zeroed) and
 * returns the sum of the codes. *exact (when exact is not NULL) is set to 1
 * if every float equals lo + code * scale, i.e. decoding gives x back. */
uint32_t vt__quant_encode(const float *x, uint32_t dim, size_t cstride,
			  float lo, float scale, uint8_t *out, int *exact);

/* hnsw.c internals used by hnsw_io.c */

int vt__hnsw_alloc(const vt_hnsw_params *p, uint32_t cap, vt_hnsw **out,
		   vt_errmsg *err);
int vt__hnsw_validate_params(const vt_hnsw_params *p, vt_errmsg *err);
int vt__hnsw_map_put(vt_hnsw *h, uint64_t label, uint32_t id);
int vt__hnsw_encode_all(vt_hnsw *h);
int vt__hnsw_write_vec(vt_hnsw *h, uint32_t id, const float *v);

static inline uint32_t *vt__links(const vt_hnsw *h, uint32_t id, int level)
{
	if (level == 0)
		return h->links0 + (size_t)id * h->m0;
	return h->upper[id] + (size_t)(level - 1) * h->m;
}

static inline const float *vt__vec(const vt_hnsw *h, uint32_t id)
{
	return h->vecs + (size_t)id * h->vstride;
}

#endif
