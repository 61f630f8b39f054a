/* shard.h: the shard state machine: a persistent store (lib/store) plus an
 * HNSW index (lib/hnsw) plus a payload index (lib/payload), kept
 * consistent. Writes arrive as encoded commands (cmd.h) with a log index
 * and are applied exactly once; searches read the index; snapshots and
 * restores move the whole shard. Not a server and not Raft: lib/repl puts
 * apply() behind a log, the API layer validates requests and fans out.
 * On-disk layout and crash contract: docs/shard.md. */
#ifndef VT_SHARD_SHARD_H
#define VT_SHARD_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "hnsw/hnsw.h"
#include "payload/payload.h"
#include "shard/cmd.h"

typedef struct vt_shard vt_shard; /* opaque */

#define VT_SHARD_MAX_FIELDS 32u /* indexed payload fields */
#define VT_SHARD_MAX_PATH 128u  /* bytes of a field path, NUL included */

enum vt_index_mode {
	VT_INDEX_SYNC = 0,  /* apply returns once the index has the write */
	VT_INDEX_ASYNC = 1, /* apply returns once the write is stored; an
			       indexing thread catches up */
};

typedef struct vt_shard_field {
	char path[VT_SHARD_MAX_PATH]; /* dotted path */
	int type;                     /* enum vt_payload_type */
} vt_shard_field;

/* The collection's parameters, fixed when the shard is created and stored
 * in it. Fill with vt_shard_config_default, then override. */
typedef struct vt_shard_config {
	uint32_t dim;             /* 1..65535, required */
	int metric;               /* enum vt_metric, default L2 */
	uint32_t m;               /* HNSW links, default 16 */
	uint32_t ef_construction; /* default 200 */
	uint32_t ef_search;       /* default ef of a search, 64 */
	int quant;                /* enum vt_quant, default NONE */
	int index_mode;           /* enum vt_index_mode, default SYNC */
	uint32_t n_fields;        /* indexed payload fields */
	vt_shard_field fields[VT_SHARD_MAX_FIELDS];
} vt_shard_config;

VT_API void vt_shard_config_default(vt_shard_config *c, uint32_t dim,
				    int metric);

/* Checks a configuration; VT_EINVAL names the bad field. */
VT_API int vt_shard_config_check(const vt_shard_config *c, vt_errmsg *err);

/* Runtime options (not stored). Fill with vt_shard_opts_default. */
typedef struct vt_shard_opts {
	const vt_shard_config *create; /* NULL: open an existing shard only
					  (VT_ENOENT if missing); else create
					  it when missing. An existing shard
					  keeps its stored config; a create
					  config with another dim or metric
					  is refused (VT_EINVAL) */
	int store_sync;           /* enum vt_store_sync, default SYNC_FULL */
	size_t map_max;           /* store size limit, default 64 GiB */
	vt_cmd_limits limits;     /* command caps, cmd.h defaults */
	uint64_t queue_max;       /* async: index entries waiting, default
				     100000; a write that would pass it waits */
	uint32_t queue_wait_ms;   /* ...this long, then fails VT_EOVERLOAD;
				     default 1000 */
	unsigned index_threads;   /* threads that insert into the index,
				     default: online CPUs */
	int index_nice;           /* async mode: scheduling priority (nice)
				     of the indexing threads, default 10, so
				     acknowledging writes keeps the CPU; 0 =
				     the writer's priority */
	uint64_t snapshot_entries; /* index snapshot after this many index
				      changes since the last, default 20000;
				      0 = only vt_shard_checkpoint */
	double consolidate_ratio; /* before a snapshot, repair the graph when
				     tombstones pass this share of points,
				     default 0.1 */
	int background;           /* nonzero (default): a maintenance thread
				     indexes (async) and snapshots; zero:
				     only explicit calls do (tests) */
	const char *name;         /* for logs, default the directory */
} vt_shard_opts;

VT_API void vt_shard_opts_default(vt_shard_opts *o);

/* Opens the shard in directory `dir` (created if missing and o->create):
 * opens the store, loads the index snapshot, replays the index WAL, checks
 * the index against the store and rebuilds it (with a progress log) when it
 * is missing, damaged or disagrees. Errors: VT_EINVAL (bad option or config,
 * named in `err`), VT_ENOENT, VT_EVERSION, VT_ECORRUPT (the store itself),
 * VT_EIO, VT_ENOMEM. The caller releases *out with vt_shard_close. */
VT_API int vt_shard_open(const char *dir, const vt_shard_opts *o,
			 vt_shard **out, vt_errmsg *err);

/* Waits for the indexing thread to finish what is queued, stops the
 * background thread and closes (NULL is a no-op). No call may be in flight.
 * It does not snapshot the index: call vt_shard_checkpoint first for a
 * faster next open. */
VT_API void vt_shard_close(vt_shard *s);

/* The stored configuration. */
VT_API const vt_shard_config *vt_shard_config_get(const vt_shard *s);

/* ---- writes ----------------------------------------------------------------*/

typedef struct vt_shard_result {
	int noop;          /* the index was already applied: nothing done */
	uint64_t index;    /* the index this command was applied at */
	uint32_t upserted; /* points written (new + replaced) */
	uint32_t created;  /* of which new */
	uint32_t deleted;  /* points removed */
	uint32_t missing;  /* ids a delete did not find */
	uint32_t updated;  /* payloads set */
} vt_shard_result;

/* Applies the encoded command `cmd` at log index `index` (0: the next one,
 * applied + 1). Commands apply in index order, one at a time (calls are
 * serialised). The contract, in order:
 *   - index <= the applied index: nothing happens, res->noop = 1, 0.
 *   - a command that fails decoding or checks (wrong dimension, NaN, bad
 *     JSON, unknown filter field, missing id for set_payload, ...) changes
 *     no point, still advances the applied index (so every replica rejects
 *     it the same way) and returns VT_EINVAL / VT_ELIMIT / VT_ENOENT /
 *     VT_ECORRUPT / VT_EVERSION with the entry and field named in `err`.
 *   - async mode with the queue full for queue_wait_ms: VT_EOVERLOAD,
 *     nothing applied, the applied index unchanged: retry later.
 *   - a disk error: VT_ENOSPC / VT_EIO, nothing applied; the shard is then
 *     read-only (VT_EREADONLY) until vt_shard_clear_readonly.
 *   - 0: the write is on disk (acknowledge it); in sync mode the index
 *     has it too.
 * `res` may be NULL. */
VT_API int vt_shard_apply(vt_shard *s, uint64_t index, const void *cmd,
			  size_t len, vt_shard_result *res, vt_errmsg *err);

/* Checks a command as apply would, without applying it (for the edge,
 * before a command enters a log). Same errors as apply's checks. */
VT_API int vt_shard_validate(vt_shard *s, const void *cmd, size_t len,
			     vt_errmsg *err);

/* Async mode: waits (queue_wait_ms at most) until the index queue has
 * room for `n` more entries, as apply would; VT_EOVERLOAD if it has not.
 * Sync mode: 0 at once. For a caller that must check overload before a
 * command enters a log (a committed entry cannot be refused). */
VT_API int vt_shard_wait_room(vt_shard *s, uint64_t n);

/* Waits until the index covers command `index` or `timeout_ms` passes:
 * 0 or VT_ETIMEDOUT. */
VT_API int vt_shard_wait_indexed(vt_shard *s, uint64_t index,
				 uint32_t timeout_ms);

/* ---- reads -----------------------------------------------------------------*/

typedef struct vt_shard_query {
	const float *vec;     /* dim floats */
	uint32_t k;           /* 1..VT_HNSW_MAX_K */
	uint32_t ef;          /* 0 = the collection's ef_search */
	int exact;            /* brute force over every matching point */
	int rescore;          /* int8 collections: re-score on float32
				 (default 1) */
	float oversampling;   /* int8 + rescore, default 2 */
	const vt_filter *filter; /* NULL = none; parse it with the schema
				    from vt_shard_schema */
	int with_payload;     /* default 1 */
	int with_vector;      /* default 0 */
	uint64_t min_index;   /* read-your-writes: wait until the index
				 covers this command index ... */
	uint32_t wait_ms;     /* ... for at most this long, then
				 VT_ETIMEDOUT (default 1000) */
} vt_shard_query;

VT_API void vt_shard_query_default(vt_shard_query *q, const float *vec,
				   uint32_t k);

typedef struct vt_shard_hit {
	const char *id;      /* not NUL-terminated */
	uint32_t id_len;
	uint64_t label;
	float dist;          /* lower is better, as lib/hnsw */
	float score;         /* the API's score: cosine similarity, inner
				product, or Euclidean distance (not squared) */
	const char *payload; /* canonical JSON, NULL unless asked */
	uint32_t payload_len;
	const float *vec;    /* the stored vector, NULL unless asked */
} vt_shard_hit;

/* Results of a search or a get: hits in order (best first for a search);
 * everything they point to is owned by the results. */
typedef struct vt_shard_results {
	vt_shard_hit *hits;
	size_t n;
	int strategy;        /* search: enum vt_filter_strategy used */
	void *priv_;         /* private storage */
} vt_shard_results;

/* Finds the k nearest points that pass the filter. Points deleted from the
 * store never appear, even while the index lags. Thread-safe; many
 * searches run at once. Errors: VT_EINVAL (bad k, wrong-size or non-finite
 * vector), VT_ETIMEDOUT (min_index not reached), VT_ENOMEM. Release *out
 * with vt_shard_results_free (also after an error). */
VT_API int vt_shard_search(vt_shard *s, const vt_shard_query *q,
			   vt_shard_results *out, vt_errmsg *err);

/* Looks up points by id, in the order given; absent ids are skipped. */
VT_API int vt_shard_get(vt_shard *s, const char *const *ids,
			const uint32_t *id_lens, size_t n, int with_payload,
			int with_vector, vt_shard_results *out,
			vt_errmsg *err);

/* Lists points in label order from label `from` (0: the start) that pass
 * `filter` (NULL: all), at most `limit` (1..100000). *next gets the label to
 * resume from, 0 when nothing is left. Labels are stable, so a cursor
 * survives writes: new points come after it, deleted ones are skipped. */
VT_API int vt_shard_scroll(vt_shard *s, uint64_t from, uint32_t limit,
			   const vt_filter *filter, int with_payload,
			   int with_vector, vt_shard_results *out,
			   uint64_t *next, vt_errmsg *err);

/* Counts the points that pass `filter` (NULL: all), exactly, from the store
 * (and the payload index when it answers the filter). */
VT_API int vt_shard_count(vt_shard *s, const vt_filter *filter,
			  uint64_t *out, vt_errmsg *err);

VT_API void vt_shard_results_free(vt_shard_results *r);

/* The schema of the indexed fields, for vt_filter_parse. Valid while the
 * shard is open. */
VT_API const vt_payload_schema *vt_shard_schema(const vt_shard *s);

/* Converts an index distance to the API score for `metric`. */
VT_API float vt_shard_score(int metric, float dist);

/* ---- status ----------------------------------------------------------------*/

typedef struct vt_shard_status {
	uint64_t applied;      /* last applied command index */
	uint64_t indexed;      /* last command index the index covers */
	uint64_t lag;          /* index changes waiting (async) */
	uint64_t points;       /* points in the store */
	uint64_t index_points; /* live points in the index */
	uint64_t snapshot_index; /* command index of the last index snapshot */
	uint64_t wal_entries;  /* index WAL entries kept */
	uint64_t bytes_store;  /* store file on disk */
	uint64_t bytes_index;  /* index memory (graph, vectors, codes) */
	uint64_t bytes_snapshot; /* index snapshot file */
	int readonly;          /* a disk error stopped writes */
	int index_mode;
} vt_shard_status;

VT_API int vt_shard_status_get(vt_shard *s, vt_shard_status *out);

/* The applied and indexed command indexes, cheaply (no store access). */
VT_API void vt_shard_progress(vt_shard *s, uint64_t *applied,
			      uint64_t *indexed);

/* ---- maintenance -----------------------------------------------------------*/

/* Waits for the index to catch up, repairs tombstones when due, saves an
 * index snapshot (aside, fsynced, renamed) and trims the index WAL it
 * covers. The background thread does this by itself every
 * snapshot_entries changes. Searches go on meanwhile; writes that touch the
 * index wait. */
VT_API int vt_shard_checkpoint(vt_shard *s, vt_errmsg *err);

/* After the operator freed space or fixed the disk: accept writes again
 * (see vt_store_clear_readonly). */
VT_API int vt_shard_clear_readonly(vt_shard *s, size_t new_map_max,
				   vt_errmsg *err);

/* ---- snapshot / restore ----------------------------------------------------*/

/* Sink and source for snapshot streams: as lib/store's. */
typedef int (*vt_shard_write_fn)(void *ud, const void *p, size_t n);
typedef int (*vt_shard_read_fn)(void *ud, void *buf, size_t cap, size_t *n);

/* Streams a consistent copy of the whole shard (the index snapshot, then
 * the store whose WAL continues from it), in framed, checksummed chunks;
 * format in docs/shard.md. Takes an index snapshot first if there is none.
 * Index snapshots wait for the whole stream; applies wait while the store
 * part is copied (so the copy's applied index is exact); searches go on.
 * *index_out (may be NULL) gets the applied index the copy holds. */
VT_API int vt_shard_snapshot(vt_shard *s, vt_shard_write_fn write, void *ud,
			     uint64_t *index_out, vt_errmsg *err);

/* Replaces the shard in `dir` (closed, or absent) with a streamed copy.
 * Checks the whole stream before anything is replaced; a crash at any
 * moment leaves the old shard or the new one (an index snapshot that does
 * not belong to the store is detected and rebuilt on open). Errors:
 * VT_ECORRUPT / VT_EVERSION (bad stream, old shard kept), VT_EIO,
 * VT_ENOSPC, or the reader's error. */
VT_API int vt_shard_restore(const char *dir, vt_shard_read_fn read, void *ud,
			    vt_errmsg *err);

#endif
