/* meta.h: the placement driver's cluster metadata (workers, collections,
 * shards with their key ranges, replica sets, leader hints and epochs) and
 * the deterministic state machine that changes it: vt_pd_apply of encoded
 * commands (cmd.h) at Raft log indexes, snapshot and restore.
 * Not the Raft group, not liveness (heartbeats are soft state, plan.h), no
 * I/O. The model and its rules: docs/cluster-metadata.md. */
#ifndef VT_PD_META_H
#define VT_PD_META_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

/* Limits. Commands and snapshots beyond them are refused (VT_ELIMIT). */
#define VT_PD_MAX_WORKERS 4096u      /* registered workers, removed included */
#define VT_PD_MAX_COLLECTIONS 4096u  /* live collections */
#define VT_PD_MAX_SHARDS 4096u       /* shards of one collection */
#define VT_PD_MAX_TOTAL_SHARDS 65536u /* shards of all collections */
#define VT_PD_MAX_RF 7u              /* voters wanted per shard */
#define VT_PD_MAX_REPLICAS 15u       /* voters + non-voters of one shard */
#define VT_PD_MAX_NAME 128u          /* bytes of a collection name */
#define VT_PD_MAX_ADDR 255u          /* bytes of a worker address */
#define VT_PD_MAX_ZONE 64u           /* bytes of a zone or rack label */
#define VT_PD_MAX_CONFIG 65536u      /* bytes of a collection's config blob */

enum vt_pd_role {               /* what a worker may host */
	VT_PD_ROLE_NORMAL = 0,      /* voters and non-voters */
	VT_PD_ROLE_SEARCH_ONLY = 1, /* non-voting replicas only, serves reads */
};

enum vt_pd_state {          /* a worker's administrative state */
	VT_PD_UP = 0,           /* may receive new replicas */
	VT_PD_DRAINING = 1,     /* replicas are moved off; gets no new ones */
	VT_PD_REMOVED = 2,      /* terminal: hosts nothing, id never reused */
};

enum vt_pd_replica_role {
	VT_PD_VOTER = 0,
	VT_PD_NONVOTER = 1, /* a Raft learner: search-only copy, or a replica
			       still catching up before promotion */
};

/* A registered worker. Labels are NUL-terminated. */
typedef struct vt_pd_worker {
	uint64_t id;                      /* > 0, chosen by the worker */
	char addr[VT_PD_MAX_ADDR + 1];    /* host:port, printable, no spaces */
	char zone[VT_PD_MAX_ZONE + 1];    /* may be empty */
	char rack[VT_PD_MAX_ZONE + 1];    /* may be empty */
	uint64_t capacity;                /* relative weight, >= 1 */
	uint8_t role;                     /* enum vt_pd_role */
	uint8_t state;                    /* enum vt_pd_state */
} vt_pd_worker;

typedef struct vt_pd_replica {
	uint64_t worker;  /* worker id */
	uint64_t raft_id; /* id inside the shard's Raft group, >= 1, never
			     reused within the shard */
	uint8_t role;     /* enum vt_pd_replica_role */
} vt_pd_replica;

/* One shard: the ids whose vt_hash64(id, len, 0) lies in [key_lo, key_hi]
 * (inclusive; the shards of a collection split 0..UINT64_MAX evenly). */
typedef struct vt_pd_shard {
	uint32_t index;       /* 0..shard_count-1 */
	uint64_t group;       /* cluster-wide Raft group id, never reused */
	uint64_t key_lo, key_hi;
	uint64_t epoch;       /* the assignments epoch of its last change */
	uint64_t leader;      /* leader hint: a worker id, 0 = unknown */
	uint64_t leader_term; /* Raft term of that hint; older hints refused */
	uint64_t next_raft_id;
	uint32_t n_replicas;
	vt_pd_replica replicas[VT_PD_MAX_REPLICAS]; /* in raft_id order */
} vt_pd_shard;

typedef struct vt_pd_collection {
	char name[VT_PD_MAX_NAME + 1]; /* [A-Za-z0-9_.-], 1..128 bytes */
	const uint8_t *config;         /* opaque to the PD; NULL if empty */
	uint32_t config_len;
	uint32_t shard_count;
	uint32_t rf;                   /* voters wanted per shard */
	uint64_t epoch;                /* the epoch of its last change */
	const vt_pd_shard *shards;     /* shard_count, by index */
} vt_pd_collection;

typedef struct vt_pd_meta vt_pd_meta; /* opaque */

/* An empty metadata (no workers, epoch 0, applied 0). Free with
 * vt_pd_meta_free. VT_ENOMEM. */
VT_API int vt_pd_meta_new(vt_pd_meta **out);
VT_API void vt_pd_meta_free(vt_pd_meta *m); /* NULL is a no-op */

/* ---- reading ---------------------------------------------------------------
 * Every pointer returned below belongs to the metadata and stays valid until
 * the next vt_pd_apply or vt_pd_restore on it. Not thread-safe against
 * those: the caller serialises (the daemon reads on its loop thread). */
VT_API uint64_t vt_pd_meta_applied(const vt_pd_meta *m); /* last index */
VT_API uint64_t vt_pd_meta_epoch(const vt_pd_meta *m);   /* assignments */
VT_API uint32_t vt_pd_meta_worker_count(const vt_pd_meta *m);
/* Workers in id order; i < vt_pd_meta_worker_count. */
VT_API const vt_pd_worker *vt_pd_meta_worker(const vt_pd_meta *m, uint32_t i);
/* NULL if no worker has that id. */
VT_API const vt_pd_worker *vt_pd_meta_find_worker(const vt_pd_meta *m,
						  uint64_t id);
VT_API uint32_t vt_pd_meta_collection_count(const vt_pd_meta *m);
/* Collections in name order (bytewise). */
VT_API const vt_pd_collection *vt_pd_meta_collection(const vt_pd_meta *m,
						     uint32_t i);
/* NULL if absent. `name` need not be NUL-terminated. */
VT_API const vt_pd_collection *
vt_pd_meta_find_collection(const vt_pd_meta *m, const char *name,
			   size_t len);
/* Replicas (any role) the worker hosts across all collections. */
VT_API uint32_t vt_pd_meta_hosted(const vt_pd_meta *m, uint64_t worker);

/* The shard of a collection that owns the hash `key` (vt_hash64 of the
 * point id with seed 0). */
VT_API uint32_t vt_pd_shard_of_key(uint32_t shard_count, uint64_t key);

/* ---- applying --------------------------------------------------------------
 * What one vt_pd_apply did. */
typedef struct vt_pd_result {
	int noop;             /* index already applied: nothing done */
	uint64_t index;       /* the index the command was applied at */
	int type;             /* enum vt_pd_cmd_type (0 if undecodable) */
	uint64_t epoch;       /* assignments epoch after the command */
	uint64_t raft_id;     /* ADD_REPLICA: the new replica's raft id */
} vt_pd_result;

/* Applies the encoded command (cmd.h) at log index `index` (0 = applied+1;
 * Raft indexes may skip, so any index above the applied one is accepted).
 * Contract, in order:
 *   - index <= applied: nothing happens, res->noop = 1, returns 0.
 *   - a command that fails decoding or checks changes nothing but the
 *     applied index (every replica rejects it alike) and returns VT_EINVAL,
 *     VT_ELIMIT, VT_ENOENT, VT_EEXIST, VT_EBUSY (an expected shard epoch
 *     that moved on, a worker that still hosts replicas), VT_ECORRUPT or
 *     VT_EVERSION with the field named in `err`.
 *   - VT_ENOMEM: nothing changed, not even the applied index (a local
 *     failure, not a verdict: retry or stop the node).
 *   - otherwise the whole change is made, the assignments epoch goes up by
 *     one and every shard it touched takes the new epoch; returns 0. A
 *     command that changes nothing (a worker re-registering as it was, a
 *     state, role or leader hint it already has) succeeds without an epoch.
 * `res` and `err` may be NULL; `cmd` is only read during the call. */
VT_API int vt_pd_apply(vt_pd_meta *m, uint64_t index, const void *cmd,
		       size_t len, vt_pd_result *res, vt_errmsg *err);

/* ---- snapshot --------------------------------------------------------------
 * Appends the whole metadata (applied index included) to `out`, ending with
 * an XXH3 checksum of what precedes it. Errors: those of vt_buf (VT_ELIMIT
 * if out's cap is too small, VT_ENOMEM); `out` may then hold a prefix. */
VT_API int vt_pd_snapshot(const vt_pd_meta *m, vt_buf *out);

/* Replaces the contents of `m` with a snapshot. Everything is checked
 * (checksum, framing, limits, sort order, references) before `m` changes:
 * on error `m` is untouched. Errors: VT_ECORRUPT, VT_EVERSION, VT_ELIMIT,
 * VT_ENOMEM, message in `err`. `bytes` is only read during the call. */
VT_API int vt_pd_restore(vt_pd_meta *m, const void *bytes, size_t len,
			 vt_errmsg *err);

/* Names for logs: "normal"/"search_only", "up"/"draining"/"removed",
 * "voter"/"nonvoter"; "?" otherwise. */
VT_API const char *vt_pd_role_name(int role);
VT_API const char *vt_pd_state_name(int state);
VT_API const char *vt_pd_replica_role_name(int role);

#endif
