/* coll.h: collections and the routing/merge layer. A database (vt_db) is a
 * directory of collections; a collection is a fixed number of shards
 * (lib/shard). Writes are split by a hash of the point id into per-shard
 * commands; searches fan out to every shard on a thread pool and the
 * shards' top-k are merged. Not an API: lib/rpc and services/ decode
 * requests into these calls. Not replicated: the cluster issue puts shards
 * on workers behind Raft and keeps this interface. See docs/collections.md. */
#ifndef VT_COLL_COLL_H
#define VT_COLL_COLL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "shard/shard.h"

typedef struct vt_db vt_db;     /* opaque: every collection of a data dir */
typedef struct vt_coll vt_coll; /* opaque, reference-counted */

#define VT_COLL_MAX_NAME 64u     /* [A-Za-z0-9_-], 1..64 bytes */
#define VT_COLL_MAX_SHARDS 256u
#define VT_COLL_MAX_POINTS 10000u /* points (or ids) per write request */
#define VT_COLL_MAX_K 10000u

/* A collection's parameters, fixed at creation. */
typedef struct vt_coll_config {
	char name[VT_COLL_MAX_NAME + 1];
	uint32_t shard_count;  /* 1..256; 0 = the database's default */
	vt_shard_config shard; /* dim, metric, HNSW, int8, index mode, fields */
	int rescore;           /* int8: default for searches, 1 */
	float oversampling;    /* int8 + rescore: default for searches, 2 */
	int routing;           /* enum vt_coll_routing; 0 at create = RANGE */
} vt_coll_config;

/* Which shard an id goes to (stored in the collection's config). */
enum vt_coll_routing {
	/* vt_hash64(id) % shard_count: collections created before the
	 * routing was recorded (their config has no "routing") */
	VT_COLL_ROUTE_MOD = 1,
	/* vt_hash_range(vt_hash64(id), shard_count): the cluster's key
	 * ranges (lib/pd), so a collection routes alike in `vectron serve`
	 * and in a cluster; every new collection */
	VT_COLL_ROUTE_RANGE = 2,
};

VT_API void vt_coll_config_default(vt_coll_config *c, const char *name,
				   uint32_t dim, int metric);

/* How a shard's part of a write is applied. The default (no writer) is
 * vt_shard_apply in the calling thread. `vectron serve` sets one that puts
 * each command through the shard's Raft group (services/vectron/raftw.c).
 * Every function may be called from any thread; `apply` from many at once
 * (on different or the same shard). */
typedef struct vt_coll_writer {
	void *ud;
	/* Shard `s`, open in directory `dir`, joins the database: make its
	 * write path and put its handle in *h. Errors abort the open. */
	int (*attach)(void *ud, vt_shard *s, const char *dir, void **h,
		      vt_errmsg *err);
	/* Applies a validated command to the shard behind `h`, as
	 * vt_shard_apply with index 0 would (same results and errors), and
	 * returns when it is applied or failed. */
	int (*apply)(void *ud, void *h, const void *cmd, size_t len,
		     vt_shard_result *res, vt_errmsg *err);
	/* Stops the write path of `h`; after it returns the shard is closed
	 * and its files may be removed. */
	void (*detach)(void *ud, void *h);
} vt_coll_writer;

/* The whole configuration (shard config included) as bytes: compact JSON
 * with a version, for the placement driver, which stores it opaquely and
 * hands it to the workers. Appends to `out` (vt_buf errors). */
VT_API int vt_coll_config_encode(const vt_coll_config *c, vt_buf *out,
				 vt_errmsg *err);
/* Decodes what vt_coll_config_encode wrote into *c and checks it (name,
 * ranges, vt_shard_config_check). VT_EINVAL naming the problem,
 * VT_EVERSION for a version this build does not read. */
VT_API int vt_coll_config_decode(const void *bytes, size_t len,
				 vt_coll_config *c, vt_errmsg *err);

typedef struct vt_db_opts {
	unsigned threads;         /* fan-out pool, default: online CPUs */
	uint32_t default_shards;  /* default: online CPUs */
	vt_shard_opts shard;      /* runtime options of every shard (its
				     `create` is ignored) */
	const vt_coll_writer *writer; /* NULL: apply directly; else it must
				     outlive the database */
} vt_db_opts;

VT_API void vt_db_opts_default(vt_db_opts *o);

/* Shards served by other processes: the cluster gateway's back end
 * (lib/gateway). The catalog and every shard operation are forwarded;
 * splitting writes, checking a request's shape, merging and paging stay
 * here, so a gateway answers exactly as `vectron serve` does. A shard is
 * named by its collection and index; the back end finds where it lives.
 * Every function may be called from any thread, many at once; each
 * returns 0 or a VT_E* code with the message in `err`. */
typedef struct vt_coll_remote {
	void *ud;
	/* The config is complete (defaults filled, checked). */
	int (*create)(void *ud, const vt_coll_config *cfg, vt_errmsg *err);
	int (*drop)(void *ud, const char *name, vt_errmsg *err);
	/* Every collection's name: an array of strings, each and the array
	 * vt_malloc'd (the caller frees them). */
	int (*list)(void *ud, char ***names, size_t *n, vt_errmsg *err);
	/* The collection's config; VT_ENOENT if there is none. Called on
	 * every request that names a collection: the back end caches. */
	int (*lookup)(void *ud, const char *name, vt_coll_config *cfg,
		      vt_errmsg *err);
	/* One shard's part of a write (a lib/shard command with `entries`
	 * points or ids), or only its check (validate_only). */
	int (*write)(void *ud, const char *coll, uint32_t shard,
		     const void *cmd, size_t len, uint32_t entries,
		     int validate_only, vt_shard_result *res, vt_errmsg *err);
	/* Reads, as their vt_shard_* namesakes; a filter travels as its
	 * source text (vt_filter_source). `linearizable`: through the shard
	 * leader after it confirmed its leadership. */
	int (*search)(void *ud, const char *coll, uint32_t shard,
		      const vt_shard_query *q, int linearizable,
		      vt_shard_results *out, vt_errmsg *err);
	int (*get)(void *ud, const char *coll, uint32_t shard,
		   const char *const *ids, const uint32_t *lens, size_t n,
		   int with_payload, int with_vector, vt_shard_results *out,
		   vt_errmsg *err);
	int (*scroll)(void *ud, const char *coll, uint32_t shard,
		      uint64_t from, uint32_t limit, const vt_filter *f,
		      int with_payload, int with_vector, vt_shard_results *out,
		      uint64_t *next, vt_errmsg *err);
	int (*count)(void *ud, const char *coll, uint32_t shard,
		     const vt_filter *f, uint64_t *out, vt_errmsg *err);
	int (*status)(void *ud, const char *coll, uint32_t shard,
		      vt_shard_status *out, vt_errmsg *err);
	/* Frees results the back end filled (also after an error). */
	void (*results_free)(void *ud, vt_shard_results *r);
	/* Optional, both or neither (NULL: one `search` per shard). A search
	 * asks search_groups which of the collection's n shards one call can
	 * serve together (those one worker answers for): group[s] in
	 * 0..*n_groups-1 for each shard; *n_groups = n means none. Then it
	 * runs one search_many per group in parallel, which answers
	 * out[i], rcs[i], errs[i] for shards[i] as `search` would. */
	int (*search_groups)(void *ud, const char *coll, uint32_t n,
			     int linearizable, uint32_t *group,
			     uint32_t *n_groups, vt_errmsg *err);
	void (*search_many)(void *ud, const char *coll, const uint32_t *shards,
			    size_t n, const vt_shard_query *q, int linearizable,
			    vt_shard_results *out, int *rcs, vt_errmsg *errs);
} vt_coll_remote;

/* A database whose collections live behind `r` (borrowed: it must outlive
 * the database): no directory, no shard here. `o` gives the fan-out pool
 * (threads: calls block on the network, so more than the CPUs) and the
 * default shard count; its shard options and writer are ignored. */
VT_API int vt_db_open_remote(const vt_coll_remote *r, const vt_db_opts *o,
			     vt_db **out, vt_errmsg *err);

/* Opens (creating if needed) the database in `dir` and every collection in
 * it (dir/collections/<name>/). Leftovers of an interrupted create or drop
 * are removed. Errors as vt_shard_open, with the collection named. The
 * caller releases *out with vt_db_close. */
VT_API int vt_db_open(const char *dir, const vt_db_opts *o, vt_db **out,
		      vt_errmsg *err);

/* Closes every collection. No request may be in flight (a collection a
 * request still references is closed when it releases it, but the pool is
 * gone by then). NULL is a no-op. */
VT_API void vt_db_close(vt_db *db);

/* Saves every shard's index snapshot (vt_shard_checkpoint), so the next
 * open replays nothing; for a clean shutdown. Returns the first error. */
VT_API int vt_db_checkpoint(vt_db *db, vt_errmsg *err);

/* Creates a collection (its directory appears atomically). Errors:
 * VT_EINVAL (bad name or config, the field named), VT_EEXIST, VT_ELIMIT,
 * disk errors. */
VT_API int vt_db_create(vt_db *db, const vt_coll_config *cfg, vt_errmsg *err);

/* Drops a collection: it disappears at once; its data is removed when the
 * last request using it ends (and on the next open after a crash).
 * VT_ENOENT if absent. */
VT_API int vt_db_drop(vt_db *db, const char *name, vt_errmsg *err);

/* Finds a collection and takes a reference (release with
 * vt_coll_release). VT_ENOENT if absent. */
VT_API int vt_db_get(vt_db *db, const char *name, vt_coll **out);
VT_API void vt_coll_release(vt_coll *c);

/* Every collection, sorted by name, each referenced: release each, then
 * vt_free the array. */
VT_API int vt_db_list(vt_db *db, vt_coll ***out, size_t *n);

/* Checks a collection name; VT_EINVAL with the reason. */
VT_API int vt_coll_name_check(const char *name, vt_errmsg *err);

VT_API const vt_coll_config *vt_coll_config_get(const vt_coll *c);
VT_API const vt_payload_schema *vt_coll_schema(const vt_coll *c);

typedef struct vt_coll_status {
	uint64_t points, indexed_points, index_lag;
	uint64_t memory_bytes, disk_bytes;
	int readonly;             /* some shard is read-only */
	uint32_t n_shards;
	vt_shard_status *shards;  /* n_shards entries, owned: vt_free */
} vt_coll_status;

VT_API int vt_coll_status_get(vt_coll *c, vt_coll_status *out);

/* ---- writes ------------------------------------------------------------------
 * A write is checked in full (every shard's part) before any shard applies
 * its part, so bad input changes nothing. Each shard's part is atomic and
 * durable when the call returns 0; across shards there is no atomicity: a
 * disk error or overload in one shard after others applied is reported as
 * that shard's error (the others' parts stay applied). */

typedef struct vt_coll_point {
	const char *id;
	size_t id_len;
	const float *vec;     /* dim floats */
	const char *payload;  /* JSON object text, NULL/0 = {} */
	size_t payload_len;
} vt_coll_point;

typedef struct vt_coll_write_result {
	uint32_t upserted, created, deleted, updated;
} vt_coll_write_result;

VT_API int vt_coll_upsert(vt_coll *c, const vt_coll_point *pts, size_t n,
			  vt_coll_write_result *res, vt_errmsg *err);
/* Deletes by ids (absent ids are not an error). */
VT_API int vt_coll_delete_ids(vt_coll *c, const char *const *ids,
			      const size_t *lens, size_t n,
			      vt_coll_write_result *res, vt_errmsg *err);
/* Deletes every point that passes the filter (JSON text). */
VT_API int vt_coll_delete_filter(vt_coll *c, const char *filter, size_t len,
				 vt_coll_write_result *res, vt_errmsg *err);
/* Sets (merge = 0: replaces; 1: merges top-level keys) the payload of
 * every id. VT_ENOENT, naming the id, if one does not exist (checked before
 * anything is written). */
VT_API int vt_coll_set_payload(vt_coll *c, const char *const *ids,
			       const size_t *lens, size_t n,
			       const char *payload, size_t len, int merge,
			       vt_coll_write_result *res, vt_errmsg *err);

/* ---- reads ----------------------------------------------------------------- */

/* Hits of a get, scroll or search; they point into per-shard results owned
 * here. Release with vt_coll_results_free. */
typedef struct vt_coll_results {
	vt_shard_hit *hits;
	size_t n;
	/* search with allow_partial: the shards left out, ascending (owned) */
	uint32_t *missing;
	uint32_t n_missing;
	void *priv_;
} vt_coll_results;

VT_API void vt_coll_results_free(vt_coll_results *r);

/* Points by id, in the order asked, absent ones skipped. */
VT_API int vt_coll_get(vt_coll *c, const char *const *ids,
		       const size_t *lens, size_t n, int with_payload,
		       int with_vector, vt_coll_results *out, vt_errmsg *err);

/* Parses a filter with the collection's schema (VT_EINVAL names the
 * place); *out NULL for an empty filter. Release with vt_filter_free. */
VT_API int vt_coll_filter_parse(vt_coll *c, const char *json, size_t len,
				vt_filter **out, vt_errmsg *err);

typedef struct vt_coll_query {
	const float *vec;
	uint32_t k;           /* 1..VT_COLL_MAX_K */
	uint32_t ef;          /* 0 = the collection's */
	const vt_filter *filter;
	int exact;
	int rescore;          /* -1 = the collection's default */
	float oversampling;   /* 0 = the collection's default */
	int with_payload, with_vector;
	int has_threshold;    /* keep scores at least as good as threshold */
	float threshold;
	int strong;           /* wait until the index holds every write
				 acknowledged before this search ... */
	uint32_t wait_ms;     /* ... for at most this long; also how long a
				 remote shard may take (retries included) */
	int allow_partial;    /* a failing shard is left out and named in
				 vt_coll_results.missing instead of failing
				 the search (unless every shard fails) */
} vt_coll_query;

VT_API void vt_coll_query_default(vt_coll_query *q, const float *vec,
				  uint32_t k);

/* Called (under a lock, from a pool thread) each time a shard answers,
 * with the merged top-k so far; for streaming search. */
typedef void (*vt_coll_partial_fn)(void *ud, const vt_shard_hit *hits,
				   size_t n, uint32_t shards_done,
				   uint32_t shards_total);

/* Searches every shard in parallel and merges: best first. `partial` may
 * be NULL. Errors: those of vt_shard_search (the first shard's error). */
VT_API int vt_coll_search(vt_coll *c, const vt_coll_query *q,
			  vt_coll_partial_fn partial, void *ud,
			  vt_coll_results *out, vt_errmsg *err);

/* Pages through points (shard by shard, label order). `cursor` is "" to
 * start or the previous *next_cursor; *next_cursor (>= 32 bytes) gets ""
 * when nothing is left. VT_EINVAL for a malformed cursor. */
VT_API int vt_coll_scroll(vt_coll *c, const vt_filter *f, uint32_t limit,
			  const char *cursor, int with_payload, int with_vector,
			  vt_coll_results *out, char *next_cursor,
			  vt_errmsg *err);

VT_API int vt_coll_count(vt_coll *c, const vt_filter *f, uint64_t *out,
			 vt_errmsg *err);

/* The score as the API defines it for the collection's metric (cosine:
 * similarity, dot: inner product, euclid: distance). */
VT_API const char *vt_coll_distance_name(int metric);
/* "cosine", "euclid", "dot" (also "l2", "ip", "euclidean"); -1 unknown */
VT_API int vt_coll_distance_parse(const char *s);

#endif
