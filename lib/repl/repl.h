/* repl.h: one shard replica behind a canonical raft (0.15) group: the
 * raft_fsm adapter over lib/shard, batched proposals (group commit) and the
 * leadership barrier that 0.15 needs (upstream issue 220). Not a transport,
 * not a process of many groups, not the raft_io: the caller owns the
 * struct raft and its I/O (raft_uv, or raft_fixture in tests).
 * Design and remaining risk: docs/replication.md. */
#ifndef VT_REPL_REPL_H
#define VT_REPL_REPL_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "base/error.h"
#include "shard/shard.h"

typedef struct vt_repl vt_repl; /* opaque */

/* Result of one proposed command, given to its own callback exactly once:
 *   0            applied; *res counts what it did (res->index = log index)
 *   VT_EINVAL, VT_ELIMIT, VT_ENOENT, VT_ECORRUPT, VT_EVERSION
 *                rejected by the shard on every replica alike; the log
 *                index is consumed (shard contract, docs/shard.md §3)
 *   VT_EBUSY     not the leader, or the leader's barrier is not committed
 *                yet (vt_repl_ready): nothing entered the log; retry
 *                against vt_repl_leader
 *   VT_ECANCELED leadership was lost after the command entered the log:
 *                the outcome is unknown (it may still commit)
 *   VT_ESHUTDOWN the group closed first; outcome unknown
 *   VT_EIO, VT_ENOSPC, VT_EREADONLY, VT_ENOMEM  local failure
 * `res` is NULL unless status is 0; `msg` is a NUL-terminated message
 * (empty on success), both valid during the call only. */
typedef void (*vt_repl_cb)(void *ud, int status, const vt_shard_result *res,
			   const char *msg);

typedef struct vt_repl_opts {
	const char *dir;          /* the shard's directory (must stay valid) */
	vt_shard_opts shard;      /* how to open it (create config etc.) */
	uint32_t batch_max;       /* commands per raft entry batch, default 64 */
	/* A shard the caller already opened and owns (it must outlive the
	 * vt_repl; `dir` and `shard` are then unused for opening). Such a
	 * group must be the shard's only replica: its snapshots carry only
	 * the applied index (the store is the state, made durable by
	 * VT_STORE_SYNC_FULL), and a snapshot from elsewhere is refused
	 * (RAFT_CORRUPT). This is `vectron serve`'s one-voter group. */
	vt_shard *borrow;
	/* Shard index = raft index + index_base: a shard that held writes
	 * before its raft log existed (applied A at bootstrap) gets base A,
	 * so raft's first entries are not taken as already applied. */
	uint64_t index_base;
} vt_repl_opts;

VT_API void vt_repl_opts_default(vt_repl_opts *o, const char *dir);

/* Opens the shard and prepares the raft_fsm (vt_repl_fsm) to hand to
 * raft_init / raft_fixture_grow. Then call vt_repl_attach with the raft
 * instance before it starts. Errors: those of vt_shard_open, VT_ENOMEM.
 * Release with vt_repl_close after the raft instance is closed. */
VT_API int vt_repl_open(const vt_repl_opts *o, vt_repl **out,
			vt_errmsg *err);

VT_API struct raft_fsm *vt_repl_fsm(vt_repl *r);

/* Binds the raft instance that drives this FSM (the apply index is read
 * from it: 0.15's apply callback does not pass one). */
VT_API void vt_repl_attach(vt_repl *r, struct raft *raft);

/* Fails every queued or in-flight proposal with VT_ESHUTDOWN and closes the
 * shard. The raft instance must be closed already (NULL is a no-op). */
VT_API void vt_repl_close(vt_repl *r);

/* The open shard, for reads. Valid until the next raft event that may
 * restore a snapshot (restore closes and reopens it): do not keep it
 * across loop iterations. */
VT_API vt_shard *vt_repl_shard(vt_repl *r);

/* Drives leadership: call on every loop iteration or from a timer of a few
 * ms (0.15 has no state-change callback). When this node has become leader
 * of a new term it submits a barrier (raft_barrier); proposals whose leader
 * term has ended are failed with VT_ECANCELED. Cheap when nothing changed. */
VT_API void vt_repl_tick(vt_repl *r);

/* Nonzero when this node is leader AND a barrier of its current term is
 * applied: only then may it accept writes or serve linearizable reads
 * (upstream issue 220; the Raft paper §5.4.2 / Figure 8). */
VT_API int vt_repl_ready(vt_repl *r);

/* Queues the command (copied) for the next batch. Fails at once (callback
 * not called) with VT_EBUSY when not vt_repl_ready, VT_ENOMEM. A full
 * batch is submitted at once; else vt_repl_flush submits it. */
VT_API int vt_repl_propose(vt_repl *r, const void *cmd, size_t len,
			   vt_repl_cb cb, void *ud);

/* Submits the queued commands as one raft_apply of several entries (one
 * log append, one replication round, one fsync on each replica for all of
 * them). Each command's callback gets its own result when it is applied on
 * this node. On a submit error every queued callback gets it. */
VT_API void vt_repl_flush(vt_repl *r);

typedef struct vt_repl_stats {
	uint64_t applied;      /* commands handed to the shard */
	uint64_t rejected;     /* of which the shard rejected (index used) */
	uint64_t batches;      /* raft_apply calls */
	uint64_t snapshots;    /* snapshots taken */
	uint64_t restores;     /* snapshots installed */
	uint64_t barriers;     /* barriers committed */
	uint64_t ready_term;   /* term whose barrier is applied, 0 none */
} vt_repl_stats;

VT_API void vt_repl_stats_get(vt_repl *r, vt_repl_stats *out);

#endif
