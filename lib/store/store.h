/* store.h: the shard's persistent store: one LMDB environment per shard
 * holding points (string id -> label, float32 vector, payload), the
 * collection's parameters, the last applied command index and the index
 * WAL, with snapshot/restore for Raft. Not an index and not a state
 * machine: lib/hnsw searches, lib/shard decides what to write. The on-disk
 * layout and the durability contract are in docs/store.md. */
#ifndef VT_STORE_STORE_H
#define VT_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct vt_store vt_store;         /* opaque, one per shard */
typedef struct vt_store_txn vt_store_txn; /* opaque, one per transaction */
typedef struct vt_store_iter vt_store_iter; /* opaque point iterator */
typedef struct vt_store_wal_iter vt_store_wal_iter; /* opaque WAL iterator */

#define VT_STORE_FORMAT 1u           /* on-disk format version in "meta" */
#define VT_STORE_MAX_ID 256u         /* bytes of a point id (1..256) */
#define VT_STORE_MAX_DIM 65535u      /* as VT_HNSW_MAX_DIM */
#define VT_STORE_MAX_META_KEY 64u    /* bytes of a caller meta key */

/* When a commit is on disk (research/raft-storage.md §5.2).
 *   SYNC_FULL  LMDB's default: data and meta page fsynced per commit, so an
 *              acknowledged write survives kill -9 and power loss. Default
 *              while the shard is the durability point.
 *   SYNC_META  MDB_NOMETASYNC: one fdatasync per commit; after an OS crash
 *              the last commit may be undone (never torn). Only for when the
 *              Raft log is the durability point and snapshot() syncs. */
enum vt_store_sync {
	VT_STORE_SYNC_FULL = 0,
	VT_STORE_SYNC_META = 1,
};

/* Open options. Fill with vt_store_opts_default, then override. */
typedef struct vt_store_opts {
	uint32_t dim;            /* vector dimension. Required (1..65535) to
				    create a store; 0 when opening an existing
				    one takes the stored dim, nonzero must
				    match it (VT_EINVAL otherwise) */
	int sync;                /* enum vt_store_sync, default SYNC_FULL */
	size_t map_initial;      /* initial map size in bytes, default 64 MiB */
	size_t map_max;          /* the map doubles on demand up to this,
				    default 64 GiB; past it writes fail with
				    VT_ENOSPC (the shard quota) */
	uint32_t max_readers;    /* concurrent read transactions, default 126 */
	size_t max_payload;      /* bytes of one payload, default 1 MiB */
	int create;              /* nonzero (default): create dir and store if
				    missing; zero: VT_ENOENT if missing */
	uint32_t new_dim;        /* with dim 0: the dimension to create the
				    store with if it is new (files without a
				    format record: a first open that a crash
				    interrupted), unchecked otherwise; 0 none */
} vt_store_opts;

VT_API void vt_store_opts_default(vt_store_opts *o);

/* Opens (or creates) the store in directory `dir` (files data.mdb and
 * lock.mdb). One vt_store per directory per process. Errors: VT_EINVAL
 * (bad option, dim mismatch, with the field named in `err`), VT_ENOENT,
 * VT_EVERSION (stored format is not VT_STORE_FORMAT), VT_ECORRUPT,
 * VT_EIO, VT_ENOMEM. The caller releases *out with vt_store_close. */
VT_API int vt_store_open(const char *dir, const vt_store_opts *o,
			 vt_store **out, vt_errmsg *err);

/* Closes the store (NULL is a no-op). No transaction may be open. */
VT_API void vt_store_close(vt_store *st);

/* The collection's vector dimension. */
VT_API uint32_t vt_store_dim(const vt_store *st);

/* ---- transactions ---------------------------------------------------------
 * One write transaction at a time per store (a second writer blocks until
 * the first ends); any number of read transactions run beside it and never
 * block it, each seeing the state of the last commit when it began.
 * Growing the map waits for every open transaction to end, and waiting
 * growth holds new ones back; so a thread that holds a transaction must
 * not begin another one (read or write), nor call vt_store_stats_get,
 * vt_store_snapshot or vt_store_clear_readonly, until it ends. */

/* Begins a write transaction. VT_EREADONLY (with the reason and the
 * operator's remedy in the store's message, see vt_store_readonly) when the
 * store went read-only after a disk error. */
VT_API int vt_store_txn_begin(vt_store *st, vt_store_txn **out);

/* Begins a read transaction (MVCC snapshot). Works in read-only mode. It
 * must end on the thread that began it. */
VT_API int vt_store_txn_begin_read(vt_store *st, vt_store_txn **out);

/* Commits a write transaction (ends a read one) and frees `tx`. When this
 * returns 0 on a write transaction with SYNC_FULL, the data is on disk: that
 * is the moment to acknowledge. On error the transaction is rolled back
 * (nothing of it is visible) and `tx` is freed. A disk error (ENOSPC, EIO)
 * or the map reaching map_max makes the store read-only: VT_ENOSPC or VT_EIO
 * now, VT_EREADONLY for every later write. */
VT_API int vt_store_txn_commit(vt_store_txn *tx);

/* Rolls back (or ends a read transaction) and frees `tx`. NULL is a no-op. */
VT_API void vt_store_txn_abort(vt_store_txn *tx);

/* Messages. vt_store_errmsg: the last failed write-side call on the store
 * (txn_begin, txn_commit, clear_readonly); only the writing thread should
 * read it. vt_store_txn_errmsg: the last failed call on that transaction
 * (any put/get/iterator). Both stay valid until the next such call. */
VT_API const char *vt_store_errmsg(const vt_store *st);
VT_API const char *vt_store_txn_errmsg(const vt_store_txn *tx);

/* ---- points ---------------------------------------------------------------
 * A point: a string id (1..VT_STORE_MAX_ID bytes, any bytes), a 64-bit
 * label the store assigns (sequential, never reused, kept on update), dim
 * float32 values and a payload (opaque bytes, JSON text by convention,
 * 0..max_payload bytes). A write refused with VT_EINVAL (bad input),
 * VT_ENOENT or VT_ERANGE changed nothing and the transaction
 * goes on; after any other error it is unusable: abort it. */

/* Inserts or replaces the point `id`. A new id gets the next label; an
 * existing one keeps its label and has its vector and payload replaced.
 * *label_out and *was_update (both may be NULL) say which. Errors:
 * VT_EINVAL (empty or long id, NULL vector, NaN/Inf component, payload over
 * the cap; the field is named in the message), VT_ENOSPC, VT_EIO,
 * VT_ENOMEM, VT_ECORRUPT. */
VT_API int vt_store_put(vt_store_txn *tx, const void *id, size_t id_len,
			const float *vec, uint32_t dim, const void *payload,
			size_t payload_len, uint64_t *label_out,
			int *was_update);

/* Deletes the point `id`; *label_out (may be NULL) gets its label.
 * VT_ENOENT if absent. */
VT_API int vt_store_del(vt_store_txn *tx, const void *id, size_t id_len,
			uint64_t *label_out);

/* Replaces the payload of point `id`, keeping its vector and label.
 * VT_ENOENT if absent. */
VT_API int vt_store_set_payload(vt_store_txn *tx, const void *id,
				size_t id_len, const void *payload,
				size_t payload_len, uint64_t *label_out);

/* A point as read. Zero-copy: the pointers point into the memory map (or,
 * for a vector LMDB stored at an address not aligned for floats, into a
 * copy owned by the transaction). In a read transaction they stay valid
 * until it ends; in a write transaction, until its next write. Never
 * write through them. */
typedef struct vt_store_point {
	uint64_t label;
	const char *id;        /* not NUL-terminated */
	size_t id_len;
	const float *vec;      /* dim floats, 4-byte aligned */
	uint32_t dim;
	const void *payload;   /* NULL when payload_len is 0 */
	size_t payload_len;
} vt_store_point;

/* Look-ups. VT_ENOENT if absent; VT_ECORRUPT with a message naming the
 * label if the stored record is damaged (never a crash). */
VT_API int vt_store_get_by_id(vt_store_txn *tx, const void *id, size_t id_len,
			      vt_store_point *out);
VT_API int vt_store_get_by_label(vt_store_txn *tx, uint64_t label,
				 vt_store_point *out);

/* Iterates points in label order from the first label >= `from` (0 for
 * all): for rebuilding the index and for scroll with a cursor (resume at
 * the last label + 1). The iterator lives inside `tx` and must be freed
 * before it ends. */
VT_API int vt_store_iter_open(vt_store_txn *tx, uint64_t from,
			      vt_store_iter **out);
/* Fills *p with the next point: 0, VT_ENOENT at the end, VT_ECORRUPT. */
VT_API int vt_store_iter_next(vt_store_iter *it, vt_store_point *p);
VT_API void vt_store_iter_close(vt_store_iter *it);

/* ---- applied index, meta ---------------------------------------------------*/

/* Records the last applied command index in this transaction, so data and
 * index commit together. It never goes backwards: VT_ERANGE if `index` is
 * below the stored one. */
VT_API int vt_store_set_applied(vt_store_txn *tx, uint64_t index);
/* The applied index as this transaction sees it (0 for a new store). */
VT_API int vt_store_get_applied(vt_store_txn *tx, uint64_t *out);

/* Caller metadata (e.g. the collection's parameters, as an opaque blob)
 * under a key of 1..VT_STORE_MAX_META_KEY bytes, kept apart from the
 * store's own keys. get: zero-copy like points, VT_ENOENT if absent. */
VT_API int vt_store_meta_put(vt_store_txn *tx, const char *key,
			     const void *val, size_t len);
VT_API int vt_store_meta_get(vt_store_txn *tx, const char *key,
			     const void **val, size_t *len);

/* ---- index WAL ---------------------------------------------------------------
 * What the index must redo after a restart: one entry per index change,
 * keyed by (command index, sequence within the command). */
enum vt_store_wal_op {
	VT_STORE_WAL_UPSERT = 1,
	VT_STORE_WAL_DELETE = 2,
};

/* Appends (index, op, label) with the next sequence number of `index`.
 * Indexes must not decrease: VT_ERANGE if `index` is below the last one. */
VT_API int vt_store_wal_append(vt_store_txn *tx, uint64_t index, int op,
			       uint64_t label);

typedef struct vt_store_wal_entry {
	uint64_t index;
	uint32_t seq;
	int op;          /* enum vt_store_wal_op */
	uint64_t label;
} vt_store_wal_entry;

/* Iterates WAL entries with index >= `from`, in order. Same lifetime rules
 * as the point iterator. next: 0, VT_ENOENT at the end, VT_ECORRUPT. */
VT_API int vt_store_wal_iter_open(vt_store_txn *tx, uint64_t from,
				  vt_store_wal_iter **out);
VT_API int vt_store_wal_iter_next(vt_store_wal_iter *it,
				  vt_store_wal_entry *e);
VT_API void vt_store_wal_iter_close(vt_store_wal_iter *it);

/* Deletes every WAL entry with index <= `upto` (after the index has been
 * saved up to there). *removed (may be NULL) gets the count. */
VT_API int vt_store_wal_trim(vt_store_txn *tx, uint64_t upto,
			     uint64_t *removed);

/* ---- counts and stats ------------------------------------------------------ */

/* Number of points and WAL entries as `tx` sees them. */
VT_API int vt_store_count(vt_store_txn *tx, uint64_t *points, uint64_t *wal);

typedef struct vt_store_stats {
	uint64_t file_bytes;  /* size of data.mdb on disk (allocated blocks) */
	uint64_t map_bytes;   /* current map size */
	uint64_t map_max;     /* growth limit */
	uint64_t used_pages;  /* highest page in use + 1 */
	uint32_t page_size;
	uint64_t next_label;
	int readonly;         /* nonzero after a disk error */
} vt_store_stats;

VT_API int vt_store_stats_get(vt_store *st, vt_store_stats *out);

/* ---- read-only mode ---------------------------------------------------------*/

/* Nonzero when a disk error (or the map reaching map_max) made the store
 * read-only; vt_store_errmsg then says why and what to do. */
VT_API int vt_store_readonly(const vt_store *st);

/* For the operator, after freeing space or fixing the disk: reopens the
 * environment (map_max raised to `new_map_max` when nonzero) and accepts
 * writes again. No transaction may be open. Errors as vt_store_open; the
 * store stays read-only if it fails. */
VT_API int vt_store_clear_readonly(vt_store *st, size_t new_map_max,
				   vt_errmsg *err);

/* Test hook: the next `n`-th write commit from now fails as if the disk
 * returned `err_no` (ENOSPC, EIO) before anything reached disk. n = 0
 * disables it. */
VT_API void vt_store_inject_fault(vt_store *st, uint32_t n, int err_no);
/* Test hook: the `n`-th write operation from now (put, del, ...) fails as
 * if LMDB, writing dirty pages out early, got `err_no` from the disk. */
VT_API void vt_store_inject_op_fault(vt_store *st, uint32_t n, int err_no);

/* ---- snapshot / restore for Raft ------------------------------------------- */

/* Receives the snapshot bytes in order, in chunks of up to 1 MiB; returns 0
 * or a negative VT_E* code that aborts the snapshot. */
typedef int (*vt_store_write_fn)(void *ud, const void *p, size_t n);

/* Supplies restore bytes: copies up to `cap` bytes into `buf` and sets *n;
 * *n = 0 means the end. Returns 0 or a negative VT_E* code. */
typedef int (*vt_store_read_fn)(void *ud, void *buf, size_t cap, size_t *n);

/* Syncs the store, then streams a consistent, compacted copy of it (an LMDB
 * file as of one moment; writes may go on meanwhile). The copy is staged in
 * a temporary file in the store's directory, so it needs free space about
 * the size of the live data. */
VT_API int vt_store_snapshot(vt_store *st, vt_store_write_fn write, void *ud,
			     vt_errmsg *err);

/* Replaces the store in `dir` with the streamed copy: writes dir/restore.tmp,
 * fsyncs it, checks that it opens and carries a supported format version,
 * then renames it over dir/data.mdb and fsyncs the directory, so a crash
 * leaves either the old store or the new one. The store must be closed.
 * Errors: VT_ECORRUPT / VT_EVERSION (bad stream; the old store is kept),
 * VT_EIO, VT_ENOSPC, or the reader's error. */
VT_API int vt_store_restore(const char *dir, vt_store_read_fn read, void *ud,
			    vt_errmsg *err);

#endif
