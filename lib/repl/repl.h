/* repl.h: one replica behind a canonical raft (0.15) group: the raft_fsm
 * adapter over a state machine (sm.h; a lib/shard shard by default, the
 * placement driver's metadata with pd/pd_sm.h), batched proposals (group
 * commit), the
 * leadership barrier that 0.15 needs (upstream issue 220), linearizable
 * reads, lag, "not leader" answers, membership changes, leadership
 * transfer, deleting a removed replica and raft tuning. Not a transport,
 * not a process of many groups, not the raft_io: the caller owns the
 * struct raft and its I/O (raft_uv, or raft_fixture in tests).
 * Design and remaining risk: docs/replication.md. */
#ifndef VT_REPL_REPL_H
#define VT_REPL_REPL_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "base/error.h"
#include "repl/sm.h"
#include "shard/shard.h"

typedef struct vt_repl vt_repl; /* opaque */

/* Result of one proposed command, given to its own callback exactly once:
 *   0            applied; *res counts what it did (res->index = log index)
 *   VT_EINVAL, VT_ELIMIT, VT_ENOENT, VT_ECORRUPT, VT_EVERSION
 *                rejected by the shard on every replica alike; the log
 *                index is consumed (shard contract, docs/shard.md §3;
 *                other state machines: sm.h, vt_repl_result_cb)
 *   VT_EBUSY     not the leader, or the leader's barrier is not committed
 *                yet (vt_repl_ready): nothing entered the log; retry
 *                at the leader (vt_repl_busy_msg / vt_repl_leader)
 *   VT_ECANCELED leadership was lost after the command entered the log:
 *                the outcome is unknown (it may still commit)
 *   VT_ESHUTDOWN the group closed first; outcome unknown
 *   VT_EIO, VT_ENOSPC, VT_EREADONLY, VT_ENOMEM  local failure
 * `res` is NULL unless status is 0; `msg` is a NUL-terminated message
 * (empty on success), both valid during the call only. */
typedef void (*vt_repl_cb)(void *ud, int status, const vt_shard_result *res,
			   const char *msg);

/* The same, for any state machine; rejections are its verdicts (sm.h,
 * the PD's include VT_EEXIST and VT_EBUSY). `res` is the state machine's
 * opaque result (read it with vt_repl_result_shard, vt_pd_sm_result),
 * set whenever the command reached the state machine: status 0 or a
 * verdict (its index consumed). It is NULL otherwise (VT_EBUSY "not the
 * leader", VT_ECANCELED, VT_ESHUTDOWN, local failures), which tells a
 * PD's VT_EBUSY verdict (a stale expect_epoch) from "not the leader". */
typedef void (*vt_repl_result_cb)(void *ud, int status,
				  const vt_repl_result *res, const char *msg);

/* Copies a shard group's result out of the box. */
VT_API void vt_repl_result_shard(const vt_repl_result *res,
				 vt_shard_result *out);

typedef struct vt_repl_opts {
	const char *dir;          /* the shard's directory (copied); with
				     sm_ops: only a name for logs */
	uint32_t batch_max;       /* commands per raft entry batch, default 64 */
	/* ...and bytes: a batch is submitted once it holds this much, default
	 * 8 MiB. Replicas apply a batch on their loop thread, where they can
	 * neither receive nor store the next one: tens of MiB per batch made
	 * rounds of ~1 s with 788 KiB commands (vt_bench_repl_procs). */
	uint32_t batch_bytes;
	/* Another state machine (sm.h): its ops (static, never freed) and
	 * context, which the caller owns and must keep until vt_repl_close
	 * returns. NULL (the default): the shard below. */
	const vt_repl_sm_ops *sm_ops;
	void *sm;
	/* ---- shard-only options (sm_ops NULL) ---- */
	vt_shard_opts shard;      /* how to open it (create config etc.) */
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

/* Opens the shard (or takes o->sm) and prepares the raft_fsm (vt_repl_fsm) to hand to
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
 * across loop iterations. NULL when the group runs another state machine
 * (vt_repl_opts.sm_ops). */
VT_API vt_shard *vt_repl_shard(vt_repl *r);

/* The state machine's context: o->sm, or the shard's (opaque) one. Read
 * it on the loop thread only, between raft events. */
VT_API void *vt_repl_sm(vt_repl *r);

/* Drives leadership: call on every loop iteration or from a timer of a few
 * ms (0.15 has no state-change callback). When this node has become leader
 * of a new term it submits a barrier (raft_barrier); proposals whose leader
 * term has ended are failed with VT_ECANCELED. It also issues the barrier
 * of waiting linearizable reads, samples the leader contact time
 * (vt_repl_lag) and settles a finished transfer. Cheap when nothing
 * changed. */
VT_API void vt_repl_tick(vt_repl *r);

/* Nonzero when this node is leader AND a barrier of its current term is
 * applied AND no leadership transfer is pending: only then may it accept
 * writes, reads or changes (upstream issue 220; Raft paper §5.4.2 /
 * Figure 8). */
VT_API int vt_repl_ready(vt_repl *r);

/* Queues the command (copied) for the next batch. Fails at once (callback
 * not called) with VT_EBUSY when not vt_repl_ready (vt_repl_busy_msg then
 * says why and names the leader), VT_ENOMEM. A full
 * batch is submitted at once; else vt_repl_flush submits it. */
VT_API int vt_repl_submit(vt_repl *r, const void *cmd, size_t len,
			  vt_repl_result_cb cb, void *ud);

/* vt_repl_submit for a shard group, with the shard's result type.
 * VT_EINVAL at once on a group of another state machine. */
VT_API int vt_repl_propose(vt_repl *r, const void *cmd, size_t len,
			   vt_repl_cb cb, void *ud);

/* Submits the queued commands as one raft_apply of several entries (one
 * log append, one replication round, one fsync on each replica for all of
 * them). Each command's callback gets its own result when it is applied on
 * this node. On a submit error every queued callback gets it. Then issues
 * the barrier of waiting reads (after the commands, vt_repl_read). */
VT_API void vt_repl_flush(vt_repl *r);

/* Not a ready leader (proposal, read or change refused with VT_EBUSY):
 * writes into `err` why, naming the leader when one is known, e.g.
 * "repl: not the leader: server 2 at 10.0.0.2:7001 leads term 4", or
 * "repl: no leader known (election under way): retry". Returns VT_EBUSY,
 * or 0 (message empty) when this node is a ready leader. The caller turns
 * it into its "not leader" answer; vt_repl_leader gives the raw id. */
VT_API int vt_repl_busy_msg(vt_repl *r, vt_errmsg *err);

/* The leader this node knows of (itself when it leads). *address is
 * raft's string: valid until the next raft event, copy it to keep it.
 * Returns 0, or VT_ENOENT with *id = 0 and *address = NULL when no
 * leader is known (election under way, or cut off). Local knowledge: a
 * cut-off node may name a deposed leader until its election timeout. */
VT_API int vt_repl_leader(vt_repl *r, raft_id *id, const char **address);

/* ---- linearizable reads ----------------------------------------------------
 * A read waits until leadership is confirmed through the log after it was
 * queued: one raft_barrier, issued by vt_repl_tick or vt_repl_flush (after
 * the queued proposals, so the barrier follows them), is shared by every
 * read queued before it; reads queued while one is in flight wait for the
 * next. When the barrier is applied, every command before it is applied
 * too, and an entry of this leader's term is on a majority: the shard may
 * then be read and is at least as new as any write acknowledged before the
 * read was queued (Raft paper §6.4, through the log instead of a
 * heartbeat round). At most one read barrier is in flight per group. */

/* status:
 *   0             leadership confirmed: read vt_repl_shard() now, in the
 *                 callback (later, a new leader may have taken writes)
 *   VT_EBUSY      this node stopped being a ready leader before the read's
 *                 barrier was issued: nothing was tried; retry at the
 *                 leader (vt_repl_busy_msg names it)
 *   VT_ECANCELED  the barrier was issued but failed, or was applied after
 *                 this node had lost the term it was issued in: leadership
 *                 could not be confirmed (a deposed leader never serves)
 *   VT_ESHUTDOWN  the group closed first
 * `msg` is valid during the call only. */
typedef void (*vt_repl_read_cb)(void *ud, int status, const char *msg);

#define VT_REPL_READS_MAX 65536 /* reads waiting per group */

/* Queues a linearizable read. Fails at once (callback not called) with
 * VT_EBUSY when not vt_repl_ready, VT_EOVERLOAD when VT_REPL_READS_MAX
 * reads wait already, VT_ENOMEM. Else `cb` runs exactly once. */
VT_API int vt_repl_read(vt_repl *r, vt_repl_read_cb cb, void *ud);

/* ---- eventual reads: how far behind is this replica -----------------------*/

typedef struct vt_repl_lag_info {
	int state;               /* raft_state(): RAFT_FOLLOWER, _CANDIDATE,
				  * _LEADER, _UNAVAILABLE (halted) */
	int role;                /* own role in the configuration it knows:
				  * RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE; -1
				  * not in it (new, or removed) */
	int ready;               /* vt_repl_ready */
	raft_term term;
	raft_id leader_id;       /* 0 when none known */
	raft_index last_index;   /* last entry in the local log */
	raft_index commit_index; /* highest index known committed HERE: what
				  * the leader last told this node, capped at
				  * its log; the group may be further on */
	raft_index last_applied; /* raft's; the shard holds everything up to
				  * it (its own index is this + index_base,
				  * minus trailing barriers/config entries) */
	uint64_t shard_applied;  /* the state machine's applied index (the
				  * shard's, or the PD metadata's) */
	/* Milliseconds since this node last heard from a leader (raft time:
	 * io->time()), or -1 when unknown. Taken from the public field
	 * election_timer_start, which 0.15 resets on every AppendEntries or
	 * InstallSnapshot from the leader, but also when it grants a vote or
	 * converts to follower; vt_repl_tick samples it while a leader is
	 * known and keeps the newest, so the figure keeps growing while the
	 * node is a candidate. Limits: it is only as fresh as the last tick;
	 * -1 until a leader was seen once; 0 on a leader (whether it still
	 * leads a majority is vt_repl_read's question, not this one's). */
	int64_t since_leader_ms;
} vt_repl_lag_info;

/* Fills *out from local state only (no I/O). Any replica, any role.
 * VT_EINVAL if no raft instance is attached. */
VT_API int vt_repl_lag(vt_repl *r, vt_repl_lag_info *out);

/* ---- group lifecycle --------------------------------------------------------
 * Each call runs on the leader and must find it ready (VT_EBUSY and a
 * message naming the leader otherwise). 0.15 allows one configuration
 * change at a time: a second one while one is pending fails at once with
 * VT_EOVERLOAD ("retry later"). The callback runs exactly once, unless
 * the call failed at once:
 *   0             done (the new configuration is committed; for transfer:
 *                 the target leads)
 *   VT_ECANCELED  leadership was lost: the change may still commit under
 *                 the next leader; read the configuration there
 *   VT_ETIMEDOUT  a promotion's catch-up rounds failed (the server stays a
 *                 standby/spare), or the transfer did not happen within
 *                 the election timeout (`msg` names the leader now)
 *   VT_ENOENT, VT_EEXIST, VT_EINVAL  refused by raft (id unknown, already
 *                 there, bad role), checked first but racing changes
 *   VT_ESHUTDOWN  the group closed first
 * `msg` is valid during the call only. */
typedef void (*vt_repl_change_cb)(void *ud, int status, const char *msg);

/* Adds server `id` at `address` (copied) with `role` RAFT_VOTER (catch-up
 * rounds first, then it votes) or RAFT_STANDBY (the seeds' search-only
 * replica: receives the log and applies it, never votes nor counts for a
 * quorum). Two raft changes: raft_add (as RAFT_SPARE), then raft_assign;
 * if the second fails the server stays a spare (the message says so) and
 * vt_repl_promote or vt_repl_remove finish the job. The new server's node
 * must run with an empty log (not bootstrapped). Errors at once: VT_EBUSY,
 * VT_EOVERLOAD, VT_EINVAL (id 0, no address, other role), VT_EEXIST (id
 * already a member), VT_ENOMEM. */
VT_API int vt_repl_add(vt_repl *r, raft_id id, const char *address, int role,
		       vt_repl_change_cb cb, void *ud, vt_errmsg *err);

/* Promotes a standby (or spare) to voter; the leader catches it up first
 * (max_catch_up_rounds). Errors at once: VT_EBUSY, VT_EOVERLOAD, VT_ENOENT
 * (not a member), VT_EEXIST (already a voter). */
VT_API int vt_repl_promote(vt_repl *r, raft_id id, vt_repl_change_cb cb,
			   void *ud, vt_errmsg *err);

/* Removes server `id` from the group. The leader cannot remove itself:
 * transfer first (VT_EINVAL). The removed node is not told: stop it, then
 * vt_repl_destroy its directory. Until then it cannot disturb the group
 * (it gets no entries; its vote requests are refused while the others
 * hear a leader, and with pre-vote (vt_repl_tune) it does not even raise
 * its term). Errors at once: VT_EBUSY, VT_EOVERLOAD, VT_ENOENT, VT_EINVAL. */
VT_API int vt_repl_remove(vt_repl *r, raft_id id, vt_repl_change_cb cb,
			  void *ud, vt_errmsg *err);

/* Hands leadership to voter `id` (0: raft picks a voter) with raft_transfer
 * (TimeoutNow, Raft thesis §3.10). Until the callback, vt_repl_ready is
 * false here, so proposals and reads get VT_EBUSY. Errors at once:
 * VT_EBUSY, VT_EOVERLOAD (a transfer is pending), VT_ENOENT (not a
 * member, or id 0 and no other voter), VT_EINVAL (itself, not a voter). */
VT_API int vt_repl_transfer(vt_repl *r, raft_id id, vt_repl_change_cb cb,
			    void *ud, vt_errmsg *err);

/* Deletes a removed replica's files: the directory `dir` (the vt_repl's
 * shard directory) and what it may hold: `store/` (the shard's LMDB),
 * `index.snap`, `index.snap.new`, `raft/` (the raft_uv log, as
 * `vectron serve` lays it out) and `raft-index-base`; then `dir` itself.
 * Refuses (VT_EINVAL, nothing deleted) a path that is not a directory, is
 * a symlink, has no `store/data.mdb`, or holds any other entry: it does
 * not look like a replica directory. The replica must be closed (raft
 * closed, vt_repl_close) first. VT_EIO etc. if a delete fails half-way
 * (run it again). */
VT_API int vt_repl_destroy(const char *dir, vt_errmsg *err);

/* ---- tuning -----------------------------------------------------------------*/

typedef struct vt_repl_tuning {
	unsigned election_timeout_ms;  /* 1000; followers wait 1x..2x this */
	unsigned heartbeat_timeout_ms; /* 100; must be < election timeout */
	/* Entries since the last snapshot before the next one: 16384 (raft's
	 * 1024 caused 60-110 ms stalls at every snapshot, research §3.1).
	 * raft 0.15 keeps every entry since the last snapshot in memory, up
	 * to threshold + trailing: at E bytes an entry that is up to
	 * (threshold + trailing) * E bytes (~1.2 GB at 64 KB entries): lower
	 * it for large entries and small memory. */
	unsigned snapshot_threshold;
	/* Entries kept after a snapshot so a briefly absent follower catches
	 * up from the log, not by InstallSnapshot (a whole shard): 2048
	 * (the host's default too, lib/repl/host.c). */
	unsigned snapshot_trailing;
	int pre_vote;                  /* 1: a node cut off, or removed,
					* does not raise the term (§9.6) */
} vt_repl_tuning;

VT_API void vt_repl_tuning_default(vt_repl_tuning *t);

/* Applies `t` to `raft` (any time; before raft_start normally). VT_EINVAL
 * with a message if a timeout is 0, heartbeat >= election, or the
 * threshold is 0. */
VT_API int vt_repl_tune(struct raft *raft, const vt_repl_tuning *t,
			vt_errmsg *err);

typedef struct vt_repl_stats {
	uint64_t applied;      /* commands handed to the state machine */
	uint64_t rejected;     /* of which it rejected (index used) */
	uint64_t batches;      /* raft_apply calls */
	uint64_t snapshots;    /* snapshots taken */
	uint64_t restores;     /* snapshots installed */
	uint64_t barriers;     /* barriers committed */
	uint64_t ready_term;   /* term whose barrier is applied, 0 none */
	uint64_t reads;        /* linearizable reads confirmed (status 0) */
	uint64_t read_barriers; /* barriers issued for reads */
} vt_repl_stats;

VT_API void vt_repl_stats_get(vt_repl *r, vt_repl_stats *out);

/* "leader", "candidate", "follower" or "unavailable" (halted) for a
 * raft_state() value: the words the logs and status reports use. Static. */
VT_API const char *vt_repl_state_name(int state);

#endif
