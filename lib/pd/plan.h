/* plan.h: the reconciliation planner: a pure function from the metadata and
 * the PD leader's soft state (heartbeat times, what workers report about
 * their replicas) to a short list of actions, each with its reason. Not the
 * loop that runs it, not the log: the daemon turns command actions into PD
 * commands (vt_pd_action_encode) and sends ELECT to workers. */
#ifndef VT_PD_PLAN_H
#define VT_PD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "meta.h"

/* The last heartbeat of a worker (ms on the PD leader's monotonic clock). */
typedef struct vt_pd_beat {
	uint64_t worker;
	uint64_t last_ms;
} vt_pd_beat;

/* What a worker last said about its replica of a shard group. */
typedef struct vt_pd_report {
	uint64_t group;    /* vt_pd_shard.group */
	uint64_t worker;
	uint64_t term;     /* its Raft term */
	uint8_t leader;    /* it is the group's leader in that term */
	uint8_t caught_up; /* its log is within the leader's catch-up bound */
} vt_pd_report;

enum vt_pd_act_kind {
	VT_PD_ACT_ADD_REPLICA = 1,   /* log: add a non-voter on `worker` */
	VT_PD_ACT_PROMOTE = 2,       /* log: make `worker`'s replica a voter */
	VT_PD_ACT_REMOVE_REPLICA = 3,/* log: drop `worker`'s replica */
	VT_PD_ACT_SET_LEADER = 4,    /* log: leader hint = `worker`, `term` */
	VT_PD_ACT_ELECT = 5,         /* to the workers: make `worker` the
					group's leader (raft_transfer from a
					live leader, else let it campaign) */
	VT_PD_ACT_REMOVE_WORKER = 6, /* log: `worker` state = removed */
};

typedef struct vt_pd_action {
	int kind;                            /* enum vt_pd_act_kind */
	char collection[VT_PD_MAX_NAME + 1]; /* "" for REMOVE_WORKER */
	uint32_t shard;
	uint64_t group;
	uint64_t worker;
	uint8_t role;         /* ADD_REPLICA, PROMOTE: replica role */
	uint64_t term;        /* SET_LEADER */
	uint64_t shard_epoch; /* the epoch planned against: the command's
				 expect_epoch, so a stale plan is refused */
	char reason[384];     /* for logs, metrics and the admin endpoint */
} vt_pd_action;

typedef struct vt_pd_plan_in {
	const vt_pd_beat *beats;     /* any order; borrowed for the call */
	size_t n_beats;
	const vt_pd_report *reports; /* any order; borrowed for the call */
	size_t n_reports;
	uint64_t now_ms;
	uint64_t since_ms;  /* when this PD became leader: a worker without a
			       beat counts as seen then */
	uint64_t grace_ms;  /* unseen for longer than this = dead */
	uint32_t max_actions; /* rate limit per plan (0 = out_cap) */
	uint32_t max_moves;   /* rebalancing moves in flight (0 = 1) */
	uint64_t seed;        /* ties between equal candidates */
	int balance_leaders;  /* 4. (below) when nothing else is planned */
} vt_pd_plan_in;

/* Plans at most min(max_actions, out_cap) actions into out[] (the
 * caller's); *n_out gets the count. At most one action per shard per plan
 * (a replica change or a leader repair, not both: each moves the shard's
 * epoch); each carries the shard epoch it was planned against. In order of
 * priority:
 *   1. per shard: a replica in transit (a non-voter on a normal worker) is
 *      promoted once its worker reports it caught up, or removed if its
 *      worker died or drains; a shard with more voters than rf loses one
 *      (a voter on a dead or draining worker first, then one sharing a
 *      zone, then a non-leader, then the most loaded); a shard with fewer
 *      than rf voters on live, up workers gets a non-voter on the best
 *      worker (placement's rules); search replicas on dead or draining
 *      workers are removed. Otherwise the leader hint follows a live voter
 *      that reports leadership in a newer term (SET_LEADER), and a shard
 *      without a live hint nor any claim gets ELECT to a live voter when a
 *      majority of its voters is alive.
 *   2. a dead worker that hosts nothing is removed.
 *   3. only when 1 and 2 found nothing: rebalancing moves from the most to
 *      the least loaded live worker (by replicas / capacity), while fewer
 *      than max_moves are in flight, and only when the move makes the gap
 *      smaller without putting two replicas of a shard in one zone that
 *      were in two. A shard led from the heavy worker is not moved (the
 *      removal step spares leaders); when only such shards could move,
 *      the plan hands leadership over first (ELECT to another voter).
 *   4. with balance_leaders, only when 1 to 3 planned nothing: one ELECT
 *      that moves a shard's leadership from the worker leading the most
 *      shards to a good voter of that shard on a worker leading at least
 *      two fewer (writes and leader reads then spread over the workers).
 * Dead = no heartbeat for more than grace_ms (since since_ms if none).
 * Errors: VT_ENOMEM (nothing planned). */
VT_API int vt_pd_plan(const vt_pd_meta *m, const vt_pd_plan_in *in,
		      vt_pd_action *out, size_t out_cap, size_t *n_out,
		      vt_errmsg *err);

/* Appends the PD command for a log action to `out`. VT_EINVAL for ELECT
 * (not a log command); otherwise vt_pd_cmd_encode's errors. */
VT_API int vt_pd_action_encode(const vt_pd_action *a, vt_buf *out,
			       vt_errmsg *err);

/* "add_replica", "promote", "remove_replica", "set_leader", "elect",
 * "remove_worker", or "?". */
VT_API const char *vt_pd_act_name(int kind);

#endif
