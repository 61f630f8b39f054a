/* pdsvc.h: the pure parts of the placement driver daemon (`vectron pd`):
 * the worker address pair as lib/pd stores it, the leader's soft state
 * (heartbeat times, replica reports, pending Elect orders), the ring of
 * recent reconciliation actions, and the cluster.proto messages built from
 * a vt_pd_meta. No I/O, no Raft, no clock of its own: the daemon
 * (services/vectron/pd.c) passes times in and serialises access. */
#ifndef VT_PDSVC_PDSVC_H
#define VT_PDSVC_PDSVC_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/error.h"
#include "pd/meta.h"
#include "pd/plan.h"
#include "vectron/internal/v1/cluster.pb-c.h"

#define VT_PDSVC_PROTO_VERSION 1u

/* ---- worker addresses ------------------------------------------------------
 * lib/pd keeps one address string per worker (printable, no spaces, at most
 * VT_PD_MAX_ADDR bytes); the daemon stores "addr,raft_addr" there. ',' is
 * printable, so lib/pd accepts it, and never occurs in host:port. */

/* Writes "addr,raft_addr" into out[cap]. VT_EINVAL (message names the
 * field) when either is empty, holds ',' or a non-printable byte or space;
 * VT_ELIMIT when the pair exceeds VT_PD_MAX_ADDR bytes. */
VT_API int vt_pdsvc_addr_join(const char *addr, const char *raft_addr,
			      char *out, size_t cap, vt_errmsg *err);

/* Splits a stored address: *addr and *raft_addr (arena copies) get the
 * parts; a string without ',' (written by another tool) is both. VT_ENOMEM. */
VT_API int vt_pdsvc_addr_split(const char *stored, vt_arena *a, char **addr,
			       char **raft_addr);

/* ---- the PD group's members -------------------------------------------------
 * The `peers` setting: "id=grpc_host:port/raft_host:port,..." listing every
 * PD node, the one parsing it included. */
#define VT_PDSVC_MAX_PEERS 15

typedef struct vt_pdsvc_peer {
	uint64_t id;    /* its Raft id, > 0 */
	char grpc[256]; /* host:port of its PlacementDriver service */
	char raft[256]; /* host:port of its Raft transport */
} vt_pdsvc_peer;

/* Parses `s` into out[cap]; *n gets the count. VT_EINVAL with the reason
 * (an entry not of that form, an address not host:port, an id twice, no
 * entry for `self`), VT_ELIMIT beyond cap entries. */
VT_API int vt_pdsvc_peers_parse(const char *s, uint64_t self,
				vt_pdsvc_peer *out, size_t cap, size_t *n,
				vt_errmsg *err);

/* "host:port" -> host (into host[cap]) and port 0..65535; -1 if malformed
 * (no ':', empty host, a port that is not a number in range). */
VT_API int vt_pdsvc_hostport(const char *s, char *host, size_t cap,
			     int *port);

/* ---- soft state ------------------------------------------------------------
 * What the PD leader heard from workers since it became leader. Never in the
 * log; dropped when leadership is lost. Not thread-safe. */
typedef struct vt_pdsvc_soft vt_pdsvc_soft; /* opaque */

#define VT_PDSVC_MAX_REPORTS 65536u /* per worker; more are ignored */

/* An empty soft state; free with vt_pdsvc_soft_free. VT_ENOMEM. */
VT_API int vt_pdsvc_soft_new(vt_pdsvc_soft **out);
VT_API void vt_pdsvc_soft_free(vt_pdsvc_soft *s); /* NULL is a no-op */
/* Forgets everything (leadership lost or newly won). */
VT_API void vt_pdsvc_soft_clear(vt_pdsvc_soft *s);

/* Records a heartbeat of `worker` at now_ms with its reports (copied; their
 * `worker` field is overwritten with `worker`), replacing what it reported
 * before. VT_ENOMEM leaves the previous state. */
VT_API int vt_pdsvc_soft_beat(vt_pdsvc_soft *s, uint64_t worker,
			      uint64_t now_ms, const vt_pd_report *reps,
			      size_t n);

/* 1 and *last_ms when `worker` was heard from, else 0. */
VT_API int vt_pdsvc_soft_last(const vt_pdsvc_soft *s, uint64_t worker,
			      uint64_t *last_ms);

/* The planner's inputs; valid until the next change of `s`. */
VT_API const vt_pd_beat *vt_pdsvc_soft_beats(const vt_pdsvc_soft *s,
					     size_t *n);
VT_API const vt_pd_report *vt_pdsvc_soft_reports(const vt_pdsvc_soft *s,
						 size_t *n);

/* Queues "make raft_id leader of group" for `worker`'s next heartbeat
 * answer; a second order for the same (worker, group) replaces the first.
 * VT_ENOMEM. */
VT_API int vt_pdsvc_soft_elect(vt_pdsvc_soft *s, uint64_t worker,
			       uint64_t group, uint64_t raft_id);
/* 1 if exactly that order waits for `worker`, else 0. */
VT_API int vt_pdsvc_soft_elect_has(const vt_pdsvc_soft *s, uint64_t worker,
				   uint64_t group, uint64_t raft_id);
/* Orders pending for `worker`. */
VT_API size_t vt_pdsvc_soft_elect_pending(const vt_pdsvc_soft *s,
					  uint64_t worker);
/* Moves `worker`'s orders into Elect messages allocated in `a` (*out gets
 * the array, *n the count) and forgets them. VT_ENOMEM (orders kept). */
VT_API int vt_pdsvc_soft_take_elect(vt_pdsvc_soft *s, uint64_t worker,
				    vt_arena *a,
				    Vectron__Internal__V1__Elect ***out,
				    size_t *n);

/* ---- recent actions --------------------------------------------------------
 * The last VT_PDSVC_RING actions of the reconciliation loop, for Status. */
#define VT_PDSVC_RING 100u

typedef struct vt_pdsvc_act_rec {
	char kind[24];                       /* vt_pd_act_name */
	char collection[VT_PD_MAX_NAME + 1];
	uint32_t shard;
	uint64_t worker;
	char reason[384];
	uint64_t at_ms;                      /* unix ms */
	char outcome[256];                   /* "ok" or the error */
} vt_pdsvc_act_rec;

typedef struct vt_pdsvc_ring {
	vt_pdsvc_act_rec recs[VT_PDSVC_RING];
	uint32_t next; /* where the next record goes */
	uint32_t n;    /* records held, <= VT_PDSVC_RING */
} vt_pdsvc_ring;   /* zero-initialised = empty */

/* Records `a` taken at at_ms with its outcome (copied, truncated). */
VT_API void vt_pdsvc_ring_push(vt_pdsvc_ring *r, const vt_pd_action *a,
			       uint64_t at_ms, const char *outcome);
/* The i-th record, oldest first (i < r->n). */
VT_API const vt_pdsvc_act_rec *vt_pdsvc_ring_get(const vt_pdsvc_ring *r,
						 uint32_t i);
/* Status's list (newest last) in `a`. VT_ENOMEM. */
VT_API int vt_pdsvc_ring_msgs(const vt_pdsvc_ring *r, vt_arena *a,
			      Vectron__Internal__V1__PlanAction ***out,
			      size_t *n);

/* ---- messages from the metadata -------------------------------------------
 * Each builds into `a`: everything the message points to is copied there
 * (nothing borrows `m`, so it may be sent after `m` changed); destroy `a`
 * after sending. Call with `m` held still (on the host thread). Errors:
 * VT_ENOMEM. */

/* A collection's route: shards, key ranges, epochs, leader hints, replicas
 * (raft id, worker, its two addresses, role). */
VT_API int vt_pdsvc_route(const vt_pd_meta *m, const vt_pd_collection *c,
			  vt_arena *a,
			  Vectron__Internal__V1__CollectionRoute **out);

/* A worker as ListWorkers shows it: `s` (may be NULL: never heard) gives
 * last_beat_ms_ago and alive (heard within grace_ms of now_ms). */
VT_API int vt_pdsvc_worker_info(const vt_pd_meta *m, const vt_pd_worker *w,
				const vt_pdsvc_soft *s, uint64_t now_ms,
				uint64_t grace_ms, vt_arena *a,
				Vectron__Internal__V1__WorkerInfo **out);

/* Every replica `worker` hosts, as the Assignments of its heartbeat answer.
 * bootstrap is set for raft ids 1..rf: CREATE_COLLECTION numbers a shard's
 * replicas from 1 in placement order, voters first (lib/pd apply.c), so
 * those are exactly the first voters; later replicas get ids above
 * (next_raft_id never goes back). */
VT_API int vt_pdsvc_assignments(const vt_pd_meta *m, uint64_t worker,
				vt_arena *a,
				Vectron__Internal__V1__Assignment ***out,
				size_t *n);

/* ---- metrics ----------------------------------------------------------------
 * What a Prometheus scrape of the PD shows (docs/pd.md, "Metrics"). */
#define VT_PDSVC_ACT_KINDS 7 /* enum vt_pd_act_kind is 1..6 */

enum vt_pdsvc_outcome { VT_PDSVC_OK, VT_PDSVC_STALE, VT_PDSVC_FAILED,
			VT_PDSVC_OUTCOMES };

/* Counters since the process started; the daemon keeps them under its
 * lock. Zero-initialised = nothing yet. */
typedef struct vt_pdsvc_counters {
	uint64_t passes;                 /* reconciliation passes that planned */
	uint64_t actions[VT_PDSVC_ACT_KINDS][VT_PDSVC_OUTCOMES];
} vt_pdsvc_counters;

/* The outcome class of a recorded outcome text ("ok...", "stale plan...",
 * anything else failed). */
VT_API int vt_pdsvc_outcome_of(const char *outcome);

/* The state a scrape shows, read from the metadata and the soft state. */
typedef struct vt_pdsvc_gauges {
	int leader;
	uint64_t term, applied, epoch;
	uint32_t workers[3];             /* by enum vt_pd_state */
	uint32_t workers_alive;          /* heard from within the grace (leader) */
	uint32_t collections, shards;
	uint32_t shards_leaderless;      /* no leader hint */
	uint32_t shards_under_replicated;/* fewer voters than the rf */
	uint32_t replicas;
} vt_pdsvc_gauges;

/* Fills the metadata's part of *g (workers by state, collections, shards,
 * replicas, leaderless and under-replicated shards) and, with `soft` (NULL
 * on a follower), the workers heard from at most grace_ms before now_ms.
 * Leaves leader, term, applied and epoch to the caller. */
VT_API void vt_pdsvc_gauges_of(const vt_pd_meta *m, const vt_pdsvc_soft *soft,
			       uint64_t now_ms, uint64_t grace_ms,
			       vt_pdsvc_gauges *g);

/* Appends the Prometheus text (vectron_pd_*) of `g` and `c` to `out`.
 * vt_buf errors. */
VT_API int vt_pdsvc_metrics(const vt_pdsvc_gauges *g,
			    const vt_pdsvc_counters *c, vt_buf *out);

#endif
