/* sm.h: the state machine behind a lib/repl group, as a small vtable: what
 * the raft adapter (fsm.c) calls to apply a committed command, take a
 * snapshot and install one. Not raft, not the adapter: no raft types here,
 * so a state machine (lib/pd's, pd_sm.h) implements it without linking
 * raft or lib/shard. The shard is the default (repl.h, vt_repl_opts).
 * docs/replication.md §2.1. */
#ifndef VT_REPL_SM_H
#define VT_REPL_SM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* What one applied command did, handed back to its proposer: a fixed-size
 * opaque box so the adapter's callbacks stay allocation-free. Each state
 * machine stores its own result type in `bytes` (with memcpy; it must fit,
 * checked with a static assertion) and offers a typed reader:
 * vt_repl_result_shard (repl.h), vt_pd_sm_result (pd/pd_sm.h). */
#define VT_REPL_RESULT_SIZE 64u
typedef union vt_repl_result {
	uint64_t align_; /* private: 8-byte alignment */
	unsigned char bytes[VT_REPL_RESULT_SIZE];
} vt_repl_result;

/* A snapshot sink: appends n bytes. Returns 0 or VT_ENOMEM. */
typedef int (*vt_repl_snap_write)(void *ud, const void *p, size_t n);

/* The operations. `sm` is the ops' own context (a vt_shard, a vt_pd_meta),
 * owned by whoever opened it. Every call comes from the raft loop thread,
 * one at a time. */
typedef struct vt_repl_sm_ops {
	const char *name; /* "shard", "pd": for logs */
	/* Applies the command at log index `index` (increasing, with gaps:
	 * barrier and configuration entries use indexes too). The contract
	 * every state machine keeps, and the adapter checks:
	 *   - index <= applied(): nothing happens, 0 (idempotent replay).
	 *   - a verdict (VT_EINVAL, VT_ELIMIT, VT_ENOENT, VT_EEXIST, VT_EBUSY,
	 *     VT_ECORRUPT, VT_EVERSION): the command is refused alike on
	 *     every replica, changes nothing but the applied index, which
	 *     must now be `index` (the adapter stops a replica whose index
	 *     did not move: it would diverge silently).
	 *   - VT_EOVERLOAD: nothing done; the adapter calls again.
	 *   - anything else (VT_EIO, VT_ENOSPC, VT_EREADONLY, VT_ENOMEM):
	 *     nothing done, index not consumed: the adapter stops the
	 *     replica (a committed entry cannot be skipped).
	 * `res` is zeroed by the caller and filled on 0 (and may be on a
	 * verdict); `err` gets the message on error. `cmd` is only read
	 * during the call. */
	int (*apply)(void *sm, uint64_t index, const void *cmd, size_t len,
		     vt_repl_result *res, vt_errmsg *err);
	/* The last index applied (or consumed by a verdict). */
	uint64_t (*applied)(void *sm);
	/* Writes the whole state through `write` (called any number of times)
	 * and sets *index to the applied index it covers. The state must be
	 * durable before returning: raft drops the log the snapshot covers.
	 * Errors: VT_ENOMEM (from `write` too), VT_EIO, with a message. */
	int (*snapshot)(void *sm, vt_repl_snap_write write, void *ud,
			uint64_t *index, vt_errmsg *err);
	/* Replaces the whole state with a snapshot of `len` bytes (read
	 * during the call only). Everything is checked first: on error the
	 * old state stays. VT_ECORRUPT, VT_EVERSION, VT_ELIMIT, VT_EINVAL: a
	 * bad snapshot; VT_EIO, VT_ENOMEM: a local failure. */
	int (*restore)(void *sm, const void *bytes, size_t len,
		       vt_errmsg *err);
} vt_repl_sm_ops;

/* 1 when `rc` is one of apply's verdicts above (the rule the adapter
 * applies to every state machine), else 0. */
VT_API int vt_repl_is_rejection(int rc);

#endif
