/* shard_int.h: the shard's internals, shared by shard.c (open, apply,
 * status), config.c, shard_index.c (index upkeep: replay, rebuild,
 * background indexing, snapshots), shard_search.c and shard_snap.c.
 * Not part of the API.
 *
 * Locks, always taken in this order (a thread holding a later one never
 * takes an earlier one):
 *   ckpt_mu    one checkpoint or shard snapshot at a time (so the index
 *              WAL is not trimmed under a snapshot)
 *   apply_mu   one apply (or clear_readonly) at a time
 *   idx_mu     held while the HNSW index changes (a run of WAL entries)
 *              and while it is saved, so `indexed` matches what is saved
 *   gate       read: any store transaction; write: clear_readonly, which
 *              reopens the store and needs none open
 *   pix_lock   the payload index (write: apply; read: planning)
 *   mu         the counters below; cv announces every change
 * A store transaction is never held while waiting on mu's cv. */
#ifndef VT_SHARD_SHARD_INT_H
#define VT_SHARD_SHARD_INT_H

#include <pthread.h>

#include "base/pool.h"
#include "hnsw/hnsw.h"
#include "shard.h"
#include "store/store.h"

#define VT_SHARD_UUID_BYTES 16

struct vt_shard {
	char *dir;
	char *store_dir;  /* dir/store */
	char *snap_path;  /* dir/index.snap */
	char *name;       /* for logs */
	vt_shard_opts opts;
	vt_shard_config cfg;
	vt_payload_field schema_fields[VT_SHARD_MAX_FIELDS];
	vt_payload_schema schema;
	uint8_t uuid[VT_SHARD_UUID_BYTES]; /* the store's identity */

	vt_store *st;
	vt_hnsw *h;
	vt_payload_index *pix; /* NULL when no field is indexed */
	vt_pool *pool;         /* index_threads - 1 workers */

	pthread_mutex_t apply_mu, ckpt_mu, idx_mu, mu;
	pthread_rwlock_t pix_lock, gate;
	pthread_cond_t cv;
	/* guarded by mu */
	uint64_t applied;        /* last applied command index */
	uint64_t indexed;        /* the index reflects every command <= this */
	uint64_t pending;        /* WAL entries not yet in the index */
	uint64_t snap_index;     /* command index of index.snap (0: none) */
	uint64_t since_snap;     /* index changes since that snapshot */
	uint64_t snap_bytes;
	int index_failed;        /* the last indexing run failed: retry */
	int stop;
	int thread_started;
	pthread_t thread;
};

/* config.c: the configuration as stored (JSON in the store's meta). */
int vt__shard_config_encode(const vt_shard_config *c, char **out,
			    size_t *len);
int vt__shard_config_decode(const char *p, size_t len, vt_shard_config *c,
			    vt_errmsg *err);

/* shard_index.c */
/* Brings the index up to date with the store at open: load the snapshot,
 * replay the WAL, check, else rebuild. Also fills the payload index. */
int vt__shard_index_open(vt_shard *s, vt_errmsg *err);
/* Indexes the WAL entries of commands in (indexed, target]; takes idx_mu. */
int vt__shard_index_upto(vt_shard *s, uint64_t target);
/* Starts / stops the maintenance thread. */
int vt__shard_thread_start(vt_shard *s);
void vt__shard_thread_stop(vt_shard *s);
/* Checkpoint with ckpt_mu already held. */
int vt__shard_checkpoint_locked(vt_shard *s, vt_errmsg *err);
/* The index parameters for the shard's config. */
void vt__shard_hnsw_params(const vt_shard *s, vt_hnsw_params *p);

/* Index snapshot file header (docs/shard.md). */
#define VT_SNAPFILE_MAGIC "VTSHIDX1"
#define VT_SNAPFILE_VERSION 1u
#define VT_SNAPFILE_HDR 64u
typedef struct vt__snap_hdr {
	uint64_t index;  /* command index the snapshot covers */
	uint64_t points; /* live points in it */
	uint8_t uuid[VT_SHARD_UUID_BYTES];
} vt__snap_hdr;
void vt__snap_hdr_encode(const vt__snap_hdr *h, uint8_t out[VT_SNAPFILE_HDR]);
int vt__snap_hdr_decode(const uint8_t *p, size_t len, vt__snap_hdr *h,
			vt_errmsg *err);

/* Store transactions go through the gate (see the lock order above). */
static inline int vt__rd_begin(vt_shard *s, vt_store_txn **tx)
{
	pthread_rwlock_rdlock(&s->gate);
	int rc = vt_store_txn_begin_read(s->st, tx);
	if (rc)
		pthread_rwlock_unlock(&s->gate);
	return rc;
}

static inline void vt__rd_end(vt_shard *s, vt_store_txn *tx)
{
	vt_store_txn_abort(tx);
	pthread_rwlock_unlock(&s->gate);
}

/* Parses a stored point's payload ({} when it has none). Stored payloads
 * were checked on the way in, so they are read without the request caps;
 * one that does not parse is VT_ECORRUPT (`err` may be NULL); VT_ENOMEM
 * stays VT_ENOMEM. The caller owns *out. */
int vt__shard_payload_of(const vt_store_point *p, vt_payload **out,
			 vt_errmsg *err);

/* Checks a vector for the shard: every component finite and, under
 * cosine, a norm the index can scale by 1/|v| in float (a tinier one would
 * store infinities). Writes "<what>[i]: not a finite number" or "<what>:
 * zero (or too close to zero ...)" to err; VT_EINVAL. `what` names the
 * field ("points[3].vector", "vector"). */
int vt__shard_check_vector(const vt_shard *s, const float *v,
			   const char *what, vt_errmsg *err);

/* Small helpers. */
char *vt__path_join(const char *dir, const char *name);
void vt__shard_signal(vt_shard *s);

#endif
