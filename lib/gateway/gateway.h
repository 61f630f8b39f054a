/* gateway.h: the cluster back end of the public API. It implements
 * lib/coll's remote interface (vt_coll_remote) over the placement driver
 * (catalog and routing) and the workers (shard reads and writes), so that
 * lib/api and lib/coll answer through a gateway exactly as in `vectron
 * serve`: the same validation, splitting, fan-out and merge.
 *
 * Routing (collection -> shards -> replicas, leader hints, epochs) comes
 * from the PD, is cached per collection and refreshed when it expires, when
 * a worker says the request's shard epoch is stale (then retried once),
 * or when a shard is not where the routing said; concurrent refreshes of
 * one collection share one PD call (singleflight). Writes and
 * linearizable reads go to the shard leader and follow "not the leader"
 * answers; other reads go to the leader while it answers, else to any
 * replica (search-only replicas first when asked). A worker that keeps
 * failing is skipped for a while (lib/rpc's breaker). docs/gateway.md. */
#ifndef VT_GATEWAY_GATEWAY_H
#define VT_GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/error.h"
#include "coll/coll.h"

typedef struct vt_gw vt_gw; /* opaque */

typedef struct vt_gw_opts {
	const char *pd;            /* comma list of PD gRPC addresses
				      (host:port), required; copied */
	uint32_t rf;               /* voters per shard of a new collection, 1 */
	uint32_t search_replicas;  /* extra non-voters per shard on
				      search-only workers, 0 */
	uint32_t rpc_timeout_ms;   /* one call to a worker or the PD, 10000 */
	uint32_t retry_ms;         /* how long an operation keeps retrying
				      while leaders change or a worker is
				      down, 15000 */
	uint32_t routing_ttl_ms;   /* a cached routing is re-read after, 30000 */
	uint32_t create_wait_ms;   /* a create waits this long for every
				      shard to have a leader, 10000 */
	int prefer_search_only;    /* eventual reads: non-voting replicas
				      first, 0 */
	/* A worker in this process (`vectron serve`): shard calls to
	 * `local_addr` run `local_call` on the calling thread instead of
	 * crossing a connection. `method` is the Worker method's name
	 * ("ShardSearch"), `req` the request; returns the gRPC status with
	 * *reply (decoded, freed with vt_grpc_msg_free) on OK, else the
	 * message in msg[cap]. NULL: every call goes over gRPC. */
	const char *local_addr;    /* copied */
	int (*local_call)(void *ud, const char *method,
			  const ProtobufCMessage *req,
			  const ProtobufCMessageDescriptor *reply_desc,
			  ProtobufCMessage **reply, char *msg, size_t cap);
	void *local_ud;
	/* Called (any thread) after this gateway changed the metadata (a
	 * create or drop committed) and while a create waits for leaders:
	 * a worker in the same process can heartbeat at once instead of at
	 * its next period. NULL: nothing to tell. */
	void (*changed)(void *ud);
	void *changed_ud;
} vt_gw_opts;

VT_API void vt_gw_opts_default(vt_gw_opts *o);

/* Starts the back end (a client thread; nothing is contacted yet).
 * VT_EINVAL (no PD address), VT_ENOMEM, VT_EIO. */
VT_API int vt_gw_open(const vt_gw_opts *o, vt_gw **out, vt_errmsg *err);

/* The interface for vt_db_open_remote; valid until vt_gw_close. */
VT_API const vt_coll_remote *vt_gw_remote(vt_gw *g);

/* Counters, for /metrics and tests. */
typedef struct vt_gw_stats {
	uint64_t routing_fetches;   /* GetRouting calls to the PD */
	uint64_t stale_retries;     /* "stale shard epoch" answers retried */
	uint64_t leader_redirects;  /* "not the leader" answers followed */
	uint64_t replica_failovers; /* reads sent to another replica */
	uint64_t multi_shard_calls; /* ShardSearchMany calls answered */
} vt_gw_stats;

VT_API void vt_gw_stats_get(vt_gw *g, vt_gw_stats *out);

/* Calls a PlacementDriver method ("ListWorkers") on the PD leader,
 * following "not the leader" answers and trying every address until
 * retry_ms is spent: for tools (the `vectron cluster` command). Returns
 * the gRPC status: 0 with *reply (free with vt_grpc_msg_free), or the
 * status with the message in msg. */
VT_API int vt_gw_pd_call(vt_gw *g, const char *method,
			 const ProtobufCMessage *req,
			 const ProtobufCMessageDescriptor *reply_desc,
			 ProtobufCMessage **reply, char *msg, size_t cap);

/* Drops every cached routing (tests: the next call refreshes). */
VT_API void vt_gw_forget_routing(vt_gw *g);

/* Stops the client thread and frees. No call may be in flight. */
VT_API void vt_gw_close(vt_gw *g);

#endif
