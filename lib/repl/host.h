/* host.h: many Raft groups in one process, on one thread of their own:
 * shards, and other state machines (sm.h) such as the PD's metadata.
 *
 * A host owns a libuv loop on a private thread, the mux transport (one port
 * for every group, transport.h) and the groups attached to it. Each group is
 * a raft_uv instance whose log lives in <shard dir>/raft and whose state
 * machine is lib/repl's adapter (repl.h). Other threads never touch raft:
 * they hand an operation to the host thread and wait for its result, so a
 * request thread blocked on a commit never holds the loop, and a shard's
 * apply (indexing included) never runs on a server's network loop.
 * docs/replication.md §7. */
#ifndef VT_REPL_HOST_H
#define VT_REPL_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "base/error.h"
#include "repl/repl.h"
#include "shard/shard.h"

typedef struct vt_repl_host vt_repl_host;   /* opaque */
typedef struct vt_repl_hgroup vt_repl_hgroup; /* one group; opaque */

typedef struct vt_repl_host_opts {
	const char *bind;         /* "a.b.c.d:port"; port 0: ephemeral.
				     Default "127.0.0.1:0" */
	unsigned tick_ms;         /* leadership/flush timer, default 10 */
	vt_repl_tuning tune;      /* timeouts, snapshots, pre-vote: repl.h
				     defaults (pre-vote is turned off for
				     one-voter groups, which need no vote) */
	/* How long a leader waits for an InstallSnapshot answer before it
	 * tries again, default 10000 ms (raft's own is 30 s: a follower that
	 * restarts while a snapshot to it fails would wait that long). Must
	 * exceed the time to send a whole shard. */
	unsigned install_snapshot_ms;
	/* raft_uv's log segment size; 0 = its default (8 MiB). Segments are
	 * preallocated (a few per group), so bigger ones cost disk per group;
	 * with large entries a segment fills every batch or two and raft_uv
	 * keeps preparing new files (research §1.3). */
	size_t segment_bytes;
	unsigned wait_ready_ms;   /* how long a write waits for its group to
				     have a ready leader here, default 5000 */
} vt_repl_host_opts;

VT_API void vt_repl_host_opts_default(vt_repl_host_opts *o);

/* Opens the transport and starts the host thread. `o` is copied (bind
 * too). The process must ignore SIGPIPE (transport.h). On success the
 * caller owns *out: vt_repl_host_close, then vt_repl_host_free.
 * Errors: those of vt_repl_mux_open, VT_ENOMEM, VT_EIO (thread). */
VT_API int vt_repl_host_open(const vt_repl_host_opts *o, vt_repl_host **out,
			     vt_errmsg *err);

/* The address peers dial; valid until vt_repl_host_free. */
VT_API const char *vt_repl_host_address(const vt_repl_host *h);

/* A member of a group's first configuration. */
typedef struct vt_repl_peer {
	raft_id id;
	const char *address;      /* the peer's host address */
	int voter;                /* 0: non-voting (RAFT_STANDBY) */
} vt_repl_peer;

typedef struct vt_repl_group_spec {
	uint64_t group_id;        /* the same on every replica; unique per host */
	raft_id self;             /* this replica's raft id (default 1) */
	const char *dir;          /* the shard's directory (log in dir/raft) */
	/* The first configuration, bootstrapped when the log is new. NULL:
	 * this replica alone, a one-voter group. A replica meant to join a
	 * running group later passes none and `join` = 1. */
	const vt_repl_peer *peers;
	size_t n_peers;
	int join;                 /* 1: never bootstrap; wait to be added */
	/* A shard the caller opened and owns (must outlive the group): only
	 * for one-voter groups (repl.h, vt_repl_opts.borrow). The first time
	 * such a shard gets a log, its entries are numbered after the
	 * commands it already holds (<dir>/raft-index-base). NULL: the group
	 * opens the shard in `dir` with `shard_opts` and owns it. */
	vt_shard *borrow;
	const vt_shard_opts *shard_opts;
	/* Another state machine instead of a shard (sm.h; the PD's:
	 * vt_pd_sm_ops() with a vt_pd_meta): static ops and a context the
	 * caller owns; it must outlive the group (vt_repl_host_detach, or the
	 * host's close) and be touched only on the host thread
	 * (vt_repl_host_call / _read, vt_repl_sm) while the group is open.
	 * `dir` then holds only the raft log (dir/raft); `borrow` and
	 * `shard_opts` must be NULL. Write with vt_repl_host_submit. */
	const vt_repl_sm_ops *sm_ops;
	void *sm;
} vt_repl_group_spec;

/* Opens (and on first start bootstraps) a group; any thread but the host's.
 * On success *out is valid until vt_repl_host_detach (or the host's free).
 * Errors: VT_ESHUTDOWN (host closing), VT_EIO (raft log: message in err),
 * VT_EINVAL (spec), those of vt_repl_open. */
VT_API int vt_repl_host_attach(vt_repl_host *h, const vt_repl_group_spec *s,
			       vt_repl_hgroup **out, vt_errmsg *err);

/* Puts one command through the group's log and waits until this replica
 * applied it: then *res is the shard's result, as vt_shard_apply's. A
 * rejected command consumed its index and returns the shard's error.
 * VT_EBUSY: this replica is not the leader (err names the leader when
 * known) or none was ready within wait_ready_ms; nothing was written.
 * VT_ECANCELED: leadership was lost with the command in flight: it may or
 * may not commit (retry idempotently). VT_ESHUTDOWN: group closing. Any
 * thread but the host's; many at once. */
VT_API int vt_repl_host_apply(vt_repl_host *h, vt_repl_hgroup *g,
			      const void *cmd, size_t len,
			      vt_shard_result *res, vt_errmsg *err);

/* vt_repl_host_apply for any state machine: on 0, *res holds its result
 * (read it with its reader, e.g. vt_pd_sm_result); a rejection returns
 * the state machine's verdict and fills *res too (for the PD: a nonzero
 * index), while *res stays zeroed when the command never reached it
 * (VT_EBUSY "not the leader", VT_ECANCELED, ...): that tells the PD's
 * VT_EBUSY verdict (stale expect_epoch) from "not the leader".
 * vt_repl_host_apply is this plus the shard's result type (set on 0
 * only), and refuses (VT_EINVAL) a group of another state machine. */
VT_API int vt_repl_host_submit(vt_repl_host *h, vt_repl_hgroup *g,
			       const void *cmd, size_t len,
			       vt_repl_result *res, vt_errmsg *err);

/* Runs fn(r, ud) on the host thread with the group's adapter and waits
 * for it: the way to read a group's state (vt_repl_shard(r) and
 * vt_repl_sm(r) may be read only inside fn). Returns fn's result, or VT_ESHUTDOWN. */
VT_API int vt_repl_host_call(vt_repl_host *h, vt_repl_hgroup *g,
			     int (*fn)(vt_repl *r, struct raft *raft,
				       void *ud),
			     void *ud);

/* Runs fn(r, raft, ud) on the host thread once this replica confirmed
 * through the log that it leads (vt_repl_read: one barrier shared by the
 * reads queued together), so what fn reads is linearizable. Errors: those
 * of vt_repl_read's callback (VT_EBUSY with the leader named in err,
 * VT_ECANCELED, VT_ESHUTDOWN), or fn's. Any thread but the host's. */
VT_API int vt_repl_host_read(vt_repl_host *h, vt_repl_hgroup *g,
			     int (*fn)(vt_repl *r, struct raft *raft,
				       void *ud),
			     void *ud, vt_errmsg *err);

/* Borrows the shard of a shard group for reads from any thread without a
 * trip through the host thread (vt_shard_search, _get, _scroll, _count,
 * _status_get and _schema are thread-safe): until vt_repl_host_shard_put,
 * a snapshot install cannot swap the shard under the reader. The reads
 * see what this replica has applied (not linearizable: vt_repl_host_read
 * is). NULL for a group of another state machine or after a failed
 * reopen (then no put). The group must stay attached until the put: the
 * caller counts its readers before a detach or destroy. Keep it short: a
 * snapshot install waits for it on the host thread. */
VT_API vt_shard *vt_repl_host_shard_get(vt_repl_hgroup *g);
VT_API void vt_repl_host_shard_put(vt_repl_hgroup *g);

enum vt_repl_change_kind {
	VT_REPL_CHANGE_ADD = 1,   /* id, address, role (RAFT_VOTER/STANDBY) */
	VT_REPL_CHANGE_PROMOTE,   /* id: standby -> voter */
	VT_REPL_CHANGE_REMOVE,    /* id (not the leader itself) */
	VT_REPL_CHANGE_TRANSFER   /* id (0: raft picks) */
};

/* One membership change of the group, on its leader, and waits for it to
 * commit (repl.h, "group lifecycle": one change at a time, VT_EOVERLOAD
 * while another is pending; VT_EBUSY naming the leader on a follower).
 * `address` is copied. Any thread but the host's. */
VT_API int vt_repl_host_change(vt_repl_host *h, vt_repl_hgroup *g, int kind,
			       raft_id id, const char *address, int role,
			       vt_errmsg *err);

/* Detaches the group (vt_repl_host_detach), then deletes the replica's
 * files (vt_repl_destroy on its shard directory): for a replica removed
 * from its group. The shard must be the group's own (not borrowed); a
 * group of another state machine is refused (VT_EINVAL, still attached). */
VT_API int vt_repl_host_destroy(vt_repl_host *h, vt_repl_hgroup *g,
				vt_errmsg *err);

/* Cuts (drop = 1) or restores (0) all traffic between this process and
 * the process at `peer_address`, both ways: the transport's drop rule
 * (transport.h, vt_repl_mux_drop_peer), for partition tests. */
VT_API int vt_repl_host_drop_peer(vt_repl_host *h, const char *peer_address,
				  int drop);

/* Closes the group and waits until raft let go of it; its shard (borrowed
 * or not) is closed by its owner afterwards. Any thread but the host's. */
VT_API void vt_repl_host_detach(vt_repl_host *h, vt_repl_hgroup *g);

/* Stops: fails queued writes (VT_ESHUTDOWN), closes every group and the
 * transport, and joins the host thread. Call once no thread uses the host
 * (other than detaches, which then return at once). */
VT_API void vt_repl_host_close(vt_repl_host *h);

/* Frees a closed host (and every group, detached or not). */
VT_API void vt_repl_host_free(vt_repl_host *h);

#endif
