/* payload.h: point payloads (one validated JSON object per point), the
 * Qdrant-style filter language over them, a payload index for declared
 * fields, and the planner that picks exact scan or in-graph filtering.
 * Not a store: payload bytes are kept by lib/store; this module parses,
 * checks, evaluates and indexes them. The rules are in docs/filters.md. */
#ifndef VT_PAYLOAD_PAYLOAD_H
#define VT_PAYLOAD_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

/* ---- payloads ------------------------------------------------------------- */

typedef struct vt_payload vt_payload; /* opaque, immutable once parsed */

/* Caps on one payload. Fill with vt_payload_limits_default. */
typedef struct vt_payload_limits {
	size_t max_bytes;  /* input size, default 65536 */
	uint32_t max_depth; /* nesting of objects/arrays, the top object is
			       depth 1; default 16 */
	uint32_t max_keys;  /* object keys in the whole payload, default 1024 */
} vt_payload_limits;

VT_API void vt_payload_limits_default(vt_payload_limits *lim);

/* Parses and validates `len` bytes of JSON (not retained). The input must
 * be one JSON object: strict JSON (no NaN/Infinity, no comments, no
 * trailing garbage), valid UTF-8, no "\u0000", no duplicate keys, integers
 * within int64, reals finite, and within `lim` (NULL = defaults). Errors:
 * VT_EINVAL (not JSON, not an object, duplicate key, ...) or VT_ELIMIT
 * (a cap), with a message in `err`; VT_ENOMEM. The caller owns *out and
 * releases it with vt_payload_free. A parsed payload is read-only and may
 * be read by many threads at once. */
VT_API int vt_payload_parse(const char *json, size_t len,
			    const vt_payload_limits *lim, vt_payload **out,
			    vt_errmsg *err);

/* An empty payload ({}), for points stored without one. */
VT_API int vt_payload_empty(vt_payload **out);

VT_API void vt_payload_free(vt_payload *p); /* NULL is a no-op */

/* A new payload: `base` with every top-level key of `patch` set to patch's
 * value (Qdrant's set_payload). Nested objects are replaced, not merged.
 * The caller owns *out. VT_ENOMEM. The result can exceed the caps `base`
 * and `patch` each met: check its dumped size. */
VT_API int vt_payload_merge(const vt_payload *base, const vt_payload *patch,
			    vt_payload **out);

/* Appends the canonical form to `out`: compact, keys sorted, reals with 17
 * significant digits (they re-read bit-exactly). Equal payloads give equal
 * bytes, so the bytes can be stored, hashed and compared. Errors:
 * VT_ELIMIT (the buffer's cap), VT_ENOMEM. */
VT_API int vt_payload_dump(const vt_payload *p, vt_buf *out);

/* ---- schemas: fields a collection declares indexed ------------------------ */

enum vt_payload_type {
	VT_PAYLOAD_KEYWORD = 1, /* strings: match value / any / except */
	VT_PAYLOAD_INTEGER = 2, /* int64: match and range */
	VT_PAYLOAD_FLOAT = 3,   /* numbers: range only */
	VT_PAYLOAD_BOOL = 4,    /* true/false: match value */
};

typedef struct vt_payload_field {
	const char *path; /* dotted path, "meta.color" */
	int type;         /* enum vt_payload_type */
} vt_payload_field;

/* The declared fields. Borrowed by the calls that take it, not retained. */
typedef struct vt_payload_schema {
	const vt_payload_field *fields;
	size_t n;
} vt_payload_schema;

/* "keyword", "integer", "float", "bool"; parse returns -1 if unknown. */
VT_API const char *vt_payload_type_name(int type);
VT_API int vt_payload_type_parse(const char *s);

/* ---- filters --------------------------------------------------------------- */

typedef struct vt_filter vt_filter; /* opaque, immutable once parsed */

#define VT_FILTER_MAX_BYTES (1u << 20) /* input size */
#define VT_FILTER_MAX_DEPTH 16u        /* nested must/should/must_not */
#define VT_FILTER_MAX_CONDS 4096u      /* conditions + nested filters */
#define VT_FILTER_MAX_VALUES 65536u    /* values in one any/except list */

/* Parses and compiles a filter (see docs/filters.md for the language):
 *   {"must":[C...], "should":[C...], "must_not":[C...]}
 * where each C is a nested filter ({} included: it matches all) or one of
 *   {"key":"k", "match":{"value": "s" | 1 | true}}
 *   {"key":"k", "match":{"any": ["a","b"] | [1,2]}}
 *   {"key":"k", "match":{"except": ["a","b"] | [1,2]}}
 *   {"key":"k", "range":{"gt"|"gte"|"lt"|"lte": number, ...}}
 *   {"is_empty":{"key":"k"}}   {"is_null":{"key":"k"}}
 * With a schema, a condition on a declared field must fit its type (a
 * keyword field takes no range, a float field no match, ...); conditions on
 * other fields are allowed and evaluated on payloads. Errors: VT_EINVAL or
 * VT_ELIMIT with a message naming the place, e.g.
 *   filter.must[1].range: unknown operator "gtx"
 * The caller owns *out (vt_filter_free). A filter may be evaluated by many
 * threads at once. */
VT_API int vt_filter_parse(const char *json, size_t len,
			   const vt_payload_schema *schema, vt_filter **out,
			   vt_errmsg *err);

VT_API void vt_filter_free(vt_filter *f); /* NULL is a no-op */

/* The JSON text the filter was parsed from (NUL-terminated, owned by the
 * filter): what a gateway forwards to the workers that evaluate it. */
VT_API const char *vt_filter_source(const vt_filter *f, size_t *len);

/* 1 if payload `p` passes `f`, else 0. A NULL payload behaves as {}. */
VT_API int vt_filter_match(const vt_filter *f, const vt_payload *p);

/* ---- payload index ------------------------------------------------------------ */

typedef struct vt_payload_index vt_payload_index; /* opaque */

/* Creates an index over the schema's fields (copied). Errors: VT_EINVAL
 * (bad type, empty or repeated path), VT_ENOMEM. */
VT_API int vt_payload_index_create(const vt_payload_schema *schema,
				   vt_payload_index **out, vt_errmsg *err);
VT_API void vt_payload_index_destroy(vt_payload_index *ix);

/* Adds `label` with payload `p` (NULL = {}). Every live point must be added,
 * even one without indexed fields: the index also knows the set of all
 * labels (must_not needs it). Adding a label that is present: VT_EEXIST,
 * nothing changes (remove it first, or use update). VT_ENOMEM leaves the
 * index as it was. */
VT_API int vt_payload_index_add(vt_payload_index *ix, uint64_t label,
				const vt_payload *p);

/* Removes `label`, whose payload is `old` exactly as it was added (the index
 * does not keep payloads; the shard has them). VT_ENOENT if absent. */
VT_API int vt_payload_index_remove(vt_payload_index *ix, uint64_t label,
				   const vt_payload *old);

/* remove(label, old) then add(label, p). On VT_ENOMEM the label may be
 * left removed; the caller should treat that as fatal for the index and
 * rebuild it. */
VT_API int vt_payload_index_update(vt_payload_index *ix, uint64_t label,
				   const vt_payload *old, const vt_payload *p);

/* Labels in the index. */
VT_API uint64_t vt_payload_index_count(const vt_payload_index *ix);

/* Writers (add/remove/update) need exclusive access; planning may run in
 * many threads while no writer runs. */

/* ---- planning --------------------------------------------------------------- */

enum vt_filter_strategy {
	VT_PLAN_EMPTY = 0, /* nothing can match: return no hits */
	VT_PLAN_SCAN = 1,  /* score plan.labels exactly (brute force); when
			      !exact, check each with the filter first */
	VT_PLAN_GRAPH = 2, /* HNSW search with vt_filter_hnsw_cb */
};

typedef struct vt_filter_plan_params {
	/* Scan when the (estimated) matches number at most this; 0 = auto:
	 * sqrt(graph_cost * total_points), at least 1000. */
	uint64_t scan_threshold;
	/* The distance computations an unfiltered HNSW query costs (about
	 * ef * links visited); default 2000. Used by the auto threshold. */
	double graph_cost;
} vt_filter_plan_params;

VT_API void vt_filter_plan_params_default(vt_filter_plan_params *pp);

typedef struct vt_filter_plan {
	int strategy;      /* enum vt_filter_strategy */
	int exact;         /* labels is exactly the matching set */
	int has_labels;    /* labels is valid (exact set or a superset) */
	uint64_t estimate; /* matches expected (an upper bound when known) */
	uint64_t scan_threshold; /* the threshold that was applied */
	uint64_t *labels;  /* sorted, unique; owned by the plan */
	size_t n_labels;
} vt_filter_plan;

/* Plans `f` over index `ix` (NULL: no index) for a collection of
 * `total_points` live points. Conditions on indexed fields are answered
 * from the index (exactly); the rest are evaluated per point. The result:
 * EMPTY when the index proves no match, SCAN when the matches (or the
 * candidate superset) are few (<= threshold), else GRAPH. A filter with no
 * indexed condition has no labels: it plans SCAN of every point when
 * total_points <= threshold, else GRAPH. `pp` NULL = defaults.
 * Release with vt_filter_plan_free. Errors: VT_ENOMEM. */
VT_API int vt_filter_plan_build(const vt_filter *f,
				const vt_payload_index *ix,
			  uint64_t total_points,
			  const vt_filter_plan_params *pp,
			  vt_filter_plan *out);

VT_API void vt_filter_plan_free(vt_filter_plan *plan);

/* 1 if `label` is in the plan's label set (binary search). Only meaningful
 * when has_labels. */
VT_API int vt_filter_plan_contains(const vt_filter_plan *plan,
				   uint64_t label);

/* Finds the payload of `label` for the filter callback: sets *out (NULL is
 * allowed and means {}) and returns 0, or returns nonzero when the label is
 * unknown (the point is then excluded). The payload must stay valid until
 * the search ends. Called from the searching thread. */
typedef int (*vt_payload_lookup_fn)(void *ctx, uint64_t label,
				    const vt_payload **out);

/* Context of vt_filter_hnsw_cb; caller-allocated, lives for the search. */
typedef struct vt_filter_hnsw_ctx {
	const vt_filter *filter;
	const vt_filter_plan *plan; /* NULL: evaluate every label */
	vt_payload_lookup_fn lookup;
	void *lookup_ctx;
} vt_filter_hnsw_ctx;

/* A vt_hnsw_filter_fn (pass &ctx as filter_ctx): with an exact plan, a
 * binary search in its labels; with a superset, membership and then the
 * filter on the payload; otherwise the filter on the looked-up payload. */
VT_API int vt_filter_hnsw_cb(uint64_t label, void *ctx);

/* Whether `label` with payload `p` passes, using the plan when it helps.
 * The same rule as the callback, for scans. */
VT_API int vt_filter_plan_check(const vt_filter_hnsw_ctx *c, uint64_t label,
				const vt_payload *p);

#endif
