/* plan.h: the decisions of `vectron worker` as pure functions: which
 * replicas to attach or destroy for an assignment list, the one next
 * membership change of a group it leads, the shard-epoch and protocol
 * version checks, and the "not the leader" messages of the internal
 * protocol (proto/vectron/internal/v1/cluster.proto). No I/O, no raft
 * calls: services/vectron/worker.c feeds them and acts. docs/worker.md. */
#ifndef VT_WORKER_PLAN_H
#define VT_WORKER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define VT_WORKER_PROTOCOL 1u

/* ---- reconciliation diff ---------------------------------------------- */

/* Compares the groups hosted here with the groups assigned. Writes into
 * attach[] the indexes (into `assigned`) of groups to attach, and into
 * destroy[] the indexes (into `hosted`) of groups no longer assigned;
 * each array must hold as many entries as its input. Duplicates in
 * `assigned` are attached once. Group ids 0 are ignored. O(n*m): a worker
 * hosts hundreds of replicas at most. */
void vt_worker_diff(const uint64_t *hosted, size_t n_hosted,
		    const uint64_t *assigned, size_t n_assigned,
		    size_t *attach, size_t *n_attach /* out */,
		    size_t *destroy, size_t *n_destroy /* out */);

/* ---- membership ------------------------------------------------------- */

/* A member of the group's current raft configuration. */
typedef struct vt_worker_member {
	uint64_t id;
	int role;              /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
} vt_worker_member;

/* A replica the PD wants in the group (Assignment.peers). */
typedef struct vt_worker_want {
	uint64_t id;           /* raft id */
	int voter;             /* 1 VOTER, 0 NONVOTER */
	const char *raft_addr; /* borrowed */
} vt_worker_want;

enum vt_worker_change_kind {
	VT_WORKER_NONE = 0,
	VT_WORKER_ADD,         /* id at addr, as RAFT_STANDBY (a wanted voter
				  is promoted on a later round, once it
				  receives the log) */
	VT_WORKER_PROMOTE,     /* standby/spare -> voter */
	VT_WORKER_REMOVE,      /* not wanted, or wanted as a non-voter while
				  a voter (raft 0.15 through lib/repl has no
				  demotion: removed, then added back as a
				  standby on a later round) */
	VT_WORKER_TRANSFER,    /* the leader itself must go: hand over to
				  id (0: raft picks) first */
};

typedef struct vt_worker_change {
	int kind;              /* enum vt_worker_change_kind */
	uint64_t id;
	const char *addr;      /* ADD: borrowed from the want list */
	const char *why;       /* static text for the log */
} vt_worker_change;

/* The ONE next membership change the leader `self` of a group should make
 * to move configuration `conf` towards `want` (one change at a time is
 * what raft 0.15 allows). Order: add missing replicas, promote wanted
 * voters, then remove (or demote) the unwanted, so the group grows before
 * it shrinks; a member that is a spare (a half-done add) wanted as a
 * non-voter is removed and added again. The leader never removes itself:
 * when it must go (unwanted, or wanted as a non-voter) it transfers to a
 * wanted voter of `conf` first, and waits while there is none. An empty
 * `want` changes nothing (the PD never asks for an empty group). Returns
 * the kind (VT_WORKER_NONE: nothing to do). */
int vt_worker_next_change(const vt_worker_member *conf, size_t n_conf,
			  uint64_t self, const vt_worker_want *want,
			  size_t n_want, vt_worker_change *out /* out */);

/* ---- request checks and messages -------------------------------------- */

/* 0 when `version` is the protocol's; else VT_EVERSION with
 * "protocol version N, this node speaks 1" in err. */
int vt_worker_version_check(uint32_t version, vt_errmsg *err);

/* 0 when a request of shard epoch `req` may be served by a replica at
 * epoch `replica` (newer requests are served: the next heartbeat catches
 * up); else VT_EBUSY with "stale shard epoch: request N, replica M". */
int vt_worker_epoch_check(uint64_t req, uint64_t replica, vt_errmsg *err);

/* Writes "not the leader; leader: <addr>" (or "...; leader: unknown" when
 * addr is NULL or empty) into err; returns VT_EBUSY. */
int vt_worker_not_leader(const char *addr, vt_errmsg *err);

/* Reads a "not the leader; leader: host:port" message (a PD's or a
 * worker's): 1 and the address in addr[cap] when it names one, 0 when it
 * says "unknown", -1 when it is another message. */
int vt_worker_leader_parse(const char *msg, char *addr, size_t cap);

#endif
