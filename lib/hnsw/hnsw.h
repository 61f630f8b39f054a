/* hnsw.h: the vector index: a Hierarchical Navigable Small World graph
 * (Malkov & Yashunin, TPAMI 2018) over float32 vectors, with optional int8
 * scalar quantization and exact float re-scoring, brute-force search, and a
 * versioned, checksummed file format. Not a store: it keeps vectors and
 * 64-bit labels only; ids, payloads and durability belong to lib/shard. */
#ifndef VT_HNSW_HNSW_H
#define VT_HNSW_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct vt_hnsw vt_hnsw; /* opaque */

/* Distance metrics. Every distance this module returns is "lower is
 * better":
 *   VT_METRIC_L2      squared Euclidean distance, sum (a_i - b_i)^2
 *   VT_METRIC_IP      negated inner product, -sum a_i b_i
 *   VT_METRIC_COSINE  1 - cos(a, b); vectors are normalised to unit length
 *                     on insert and on query (a zero vector is rejected) */
enum vt_metric {
	VT_METRIC_L2 = 0,
	VT_METRIC_IP = 1,
	VT_METRIC_COSINE = 2,
};

enum vt_quant {
	VT_QUANT_NONE = 0, /* traverse on float32 */
	VT_QUANT_INT8 = 1, /* traverse on 8-bit codes, re-score on float32 */
};

#define VT_HNSW_MAX_DIM 65535u
#define VT_HNSW_MAX_M 128u
#define VT_HNSW_MAX_K 100000u

/* Creation parameters. Fill with vt_hnsw_params_default, then override. */
typedef struct vt_hnsw_params {
	uint32_t dim;             /* 1..VT_HNSW_MAX_DIM, required */
	int metric;               /* enum vt_metric, default L2 */
	uint32_t m;               /* links per node on upper layers, 2..128,
				     default 16; layer 0 keeps 2*m */
	uint32_t ef_construction; /* candidate list while inserting, default 200 */
	uint32_t ef_search;       /* default ef when a query passes ef = 0: 64 */
	uint64_t seed;            /* level generator seed, default 42 */
	int quant;                /* enum vt_quant, default NONE */
	uint32_t train_size;      /* int8: points the quantizer trains on; it
				     trains by itself when this many are
				     inserted, default 4096 */
	float quantile;           /* int8: range kept when training, in
				     (0.5, 1]; 1 keeps min..max (default) */
	const char *vectors_path; /* NULL (default): float vectors in RAM;
				     else a file the index creates (or
				     truncates) and maps: floats stay on disk,
				     codes and graph in RAM */
	size_t initial_capacity;  /* nodes to allocate up front, default 1024;
				     the index grows by itself */
} vt_hnsw_params;

VT_API void vt_hnsw_params_default(vt_hnsw_params *p, uint32_t dim, int metric);

/* Creates an empty index. On error returns VT_EINVAL (with a message
 * naming the bad parameter in `err`), VT_ENOMEM or VT_EIO (vectors_path).
 * The caller owns *out and releases it with vt_hnsw_destroy. */
VT_API int vt_hnsw_create(const vt_hnsw_params *p, vt_hnsw **out,
			  vt_errmsg *err);

/* Releases the index and everything it holds (NULL is a no-op). No other
 * call may be in flight. */
VT_API void vt_hnsw_destroy(vt_hnsw *h);

/* Inserts `vec` (dim floats, copied) under `label`. If the label exists its
 * vector is replaced (the old node becomes a tombstone). Thread-safe with
 * concurrent inserts, deletes and searches. Errors: VT_EINVAL for a NaN or
 * infinite component or a zero vector under cosine, VT_ENOMEM, VT_ELIMIT
 * past 2^32 - 2 nodes. The index is unchanged on error. */
VT_API int vt_hnsw_insert(vt_hnsw *h, uint64_t label, const float *vec);

/* Deletes `label`: it never appears in results again. The node stays in
 * the graph as a routing tombstone until vt_hnsw_consolidate repairs its
 * neighbours and frees its slot. VT_ENOENT if the label is absent.
 * Thread-safe as insert. */
VT_API int vt_hnsw_delete(vt_hnsw *h, uint64_t label);

/* 1 if `label` is present (not deleted), 0 otherwise. Thread-safe. */
VT_API int vt_hnsw_contains(vt_hnsw *h, uint64_t label);

/* Copies the stored vector of `label` into out[dim] (unit length under
 * cosine). VT_ENOENT if absent. Thread-safe. */
VT_API int vt_hnsw_get(vt_hnsw *h, uint64_t label, float *out);

/* Filter callback: nonzero keeps `label` in the results. Called from the
 * searching thread, possibly many times per query; it must be cheap and
 * thread-safe. Excluded nodes are still traversed, so recall holds up. */
typedef int (*vt_hnsw_filter_fn)(uint64_t label, void *ctx);

typedef struct vt_hnsw_query {
	uint32_t k;            /* results wanted, 1..VT_HNSW_MAX_K */
	uint32_t ef;           /* candidate list size; 0 = params.ef_search;
				  raised to k when smaller */
	vt_hnsw_filter_fn filter; /* NULL = no filter */
	void *filter_ctx;
	int exact;             /* nonzero: brute force over every live point
				  (float32, exact); ef is ignored */
	int rescore;           /* int8 only: nonzero (default) re-scores the
				  best candidates on float32 vectors; zero
				  returns distances computed on codes */
	float oversampling;    /* int8 + rescore: re-score ceil(k * this)
				  candidates, >= 1, default 2 */
} vt_hnsw_query;

/* Sets defaults: k as given, ef 0, no filter, rescore on, oversampling 2. */
VT_API void vt_hnsw_query_default(vt_hnsw_query *q, uint32_t k);

typedef struct vt_hnsw_hit {
	uint64_t label;
	float dist; /* see enum vt_metric */
} vt_hnsw_hit;

/* Finds up to q->k nearest live points to `query` (dim floats), sorted by
 * increasing distance, into out[0..*n_out). `out` must have room for q->k
 * hits. Fewer than k come back only when fewer live points (passing the
 * filter) exist or the filter starves the traversal. Thread-safe with
 * everything but destroy. Errors: VT_EINVAL (bad k, NaN in the query),
 * VT_ENOMEM. */
VT_API int vt_hnsw_search(vt_hnsw *h, const float *query,
			  const vt_hnsw_query *q, vt_hnsw_hit *out,
			  size_t *n_out);

/* Trains the int8 quantizer on n vectors (row-major, dim floats each) and
 * re-encodes every stored point. Without an explicit call the index trains
 * on its first train_size points. VT_ENOTSUP if the index is not int8.
 * Takes the index exclusively while it runs. */
VT_API int vt_hnsw_train(vt_hnsw *h, const float *vecs, size_t n);

/* Repairs the links that point at tombstones (each affected node re-picks
 * its neighbours from its own and the tombstone's, with the construction
 * heuristic), then frees the tombstones' slots for reuse. Takes the index
 * exclusively while it runs. Returns the number of slots freed (>= 0) or
 * an error. */
VT_API int vt_hnsw_consolidate(vt_hnsw *h);

typedef struct vt_hnsw_stats {
	uint64_t count;         /* live points */
	uint64_t tombstones;    /* deleted, not yet consolidated */
	uint64_t free_slots;    /* consolidated slots awaiting reuse */
	uint64_t capacity;      /* nodes allocated */
	uint32_t max_level;
	uint32_t dim;
	int metric, quant;
	int trained;            /* int8: the quantizer is trained */
	float quant_lo, quant_hi; /* int8: the trained range */
	size_t bytes_graph;     /* adjacency lists, all layers */
	size_t bytes_vectors;   /* float32 vectors held in RAM (0 when mapped) */
	size_t bytes_vectors_mapped; /* float32 vectors in the mapped file */
	size_t bytes_codes;     /* int8 codes */
	size_t bytes_other;     /* labels, label map, levels, flags */
} vt_hnsw_stats;

/* Fills *st. Thread-safe. */
VT_API void vt_hnsw_stats_get(vt_hnsw *h, vt_hnsw_stats *st);

/* The parameters the index was created with (vectors_path is NULL in the
 * copy). */
VT_API void vt_hnsw_params_get(vt_hnsw *h, vt_hnsw_params *out);

/* Serialization. A sink receives the bytes in order; it returns 0 or a
 * negative VT_E* code, which aborts the save. */
typedef int (*vt_hnsw_write_fn)(void *ud, const void *p, size_t n);

/* Writes the whole index (format in docs/hnsw-format.md). Searches may run
 * meanwhile; inserts and deletes wait until it finishes. */
VT_API int vt_hnsw_save(vt_hnsw *h, vt_hnsw_write_fn write, void *ud,
			vt_errmsg *err);

/* Saves to `path` atomically: writes path.tmp, fsyncs it, renames it over
 * path and fsyncs the directory. */
VT_API int vt_hnsw_save_file(vt_hnsw *h, const char *path, vt_errmsg *err);

/* Loads an index from `len` bytes at `p` (not retained). Every field and
 * link is validated: a truncated, corrupted or foreign input returns
 * VT_ECORRUPT or VT_EVERSION with a message, never crashes. `vectors_path`
 * as in vt_hnsw_params (NULL: floats in RAM). */
VT_API int vt_hnsw_load_mem(const void *p, size_t len,
			    const char *vectors_path, vt_hnsw **out,
			    vt_errmsg *err);

/* Loads from a file (mapped read-only while loading). */
VT_API int vt_hnsw_load_file(const char *path, const char *vectors_path,
			     vt_hnsw **out, vt_errmsg *err);

/* Name of a metric ("l2", "ip", "cosine") and its parser (-1 if unknown). */
VT_API const char *vt_metric_name(int metric);
VT_API int vt_metric_parse(const char *s);

#endif
