/* worker_int.h: what the files of `vectron worker` share (worker.c: settings,
 * replicas, reconciliation, lifecycle; worker_pd.c: the PD client and the
 * beat thread; worker_api.c: the internal API). Private to the daemon. */
#ifndef VT_VECTRON_WORKER_INT_H
#define VT_VECTRON_WORKER_INT_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/pool.h"
#include "coll/coll.h"
#include "payload/payload.h"
#include "repl/host.h"
#include "reqpool.h"
#include "store/store.h"
#include "rpc/grpc.h"
#include "settings.h"
#include "vectron/internal/v1/cluster.pb-c.h"
#include "worker/meta.h"
#include "worker/plan.h"
#include "worker.h"

#define MOD "worker"
#define PD_SVC "/vectron.internal.v1.PlacementDriver/"
#define WORKER_SVC "/vectron.internal.v1.Worker/"
#define MAX_PD 16            /* PD addresses: configured + redirects */
#define MAX_ELECT 256
#define PD_TIMEOUT_MS 3000
#define QUEUE_MAX 100000     /* async index queue (vt_shard_opts) */
#define QUEUE_WAIT_MS 1000

/* ---- settings ------------------------------------------------------------ */

typedef struct wcfg {
	long long worker_id;
	char data_dir[1024];
	char listen[256];
	char raft_listen[256];
	char advertise[256];
	char raft_advertise[256];
	char pd[1024];
	char zone[64];
	char rack[64];
	int capacity;
	char role[32];
	int heartbeat_ms;
	int threads;
	char log_level[16];
	int election_ms;
	int shutdown_grace_ms;
} wcfg;

/* ---- state --------------------------------------------------------------- */

/* A replica the PD wants in a group (Assignment.peers), copied. */
typedef struct wpeer {
	uint64_t raft_id, worker;
	int voter;
	char addr[128], raft_addr[128];
} wpeer;

/* One hosted replica. Created by an attach (reconciler, or the reopen at
 * start), freed by the reconciler's destroy or at exit; the table is the
 * worker's `reps` list. Fields without a note are fixed at attach. */
struct replica {
	struct replica *next;
	uint64_t group, raft_id, epoch; /* epoch: under w->mu */
	char collection[65];
	uint32_t shard;
	int voter;
	vt_repl_hgroup *g;
	wpeer *peers;                   /* the PD's wanted peers (w->mu) */
	size_t n_peers;
	int refs, gone;                 /* w->mu */
	/* Eventual reads are served once this replica holds real data: a
	 * first voter (its empty start is the truth), a replica that has
	 * applied commands, or one reported caught up since. A joiner that
	 * never received the log would answer empty. */
	atomic_int readable;
	/* no longer assigned (the reconciler's, no lock): since when, since
	 * when without a leader, and whether the group goes on (-1 unknown) */
	uint64_t unassigned_ms, leaderless_ms;
	int group_alive;
};

/* One PD call: made on the caller's stack by pd_call (worker_pd.c),
 * started on the loop, finished (done = 1 under pdmu) by its callback. */
struct pdcall {
	struct pdcall *next;
	int slot;
	const char *path;
	const uint8_t *req;
	size_t req_len;
	const ProtobufCMessageDescriptor *desc;
	int done, status;
	char msg[VT_ERRMSG_SIZE];
	ProtobufCMessage *reply;
};

/* The daemon. Owned by vt_cli_worker; the threads get a pointer and are
 * joined before it is freed. Locks: mu (replica table, answers, epoch,
 * registered), pdmu (the PD call queue and addresses); never both. */
typedef struct worker {
	wcfg cfg;
	uint64_t id;
	int search_only;
	char addr[300];               /* advertised gRPC address */
	uv_loop_t *loop;
	vt_repl_host *host;
	vt_grpc_server *grpc;
	vt_reqpool *pool;
	uv_signal_t sigterm, sigint;
	atomic_int stopping;
	vt_shard_opts sopts;

	pthread_mutex_t mu;           /* replicas, answers, registered */
	pthread_cond_t cv;            /* answers, kicks, stop */
	pthread_cond_t refs_cv;       /* a gone replica's last reference */
	struct replica *reps;
	int registered;
	int kicked;                   /* heartbeat now (vt_worker_role_kick) */
	uint64_t epoch;               /* last assignments epoch received */
	uint64_t answer_seq;          /* heartbeat answers received */
	Vectron__Internal__V1__HeartbeatResponse *full_new; /* untaken */
	Vectron__Internal__V1__Elect elect[MAX_ELECT];
	size_t n_elect;

	/* PD client: slots are touched by the loop only, addresses are
	 * appended under pdmu and never change. */
	pthread_mutex_t pdmu;
	/* one PD request (pd_request: its retries and address walk) at a
	 * time: the beat thread's and the reconciler's */
	pthread_mutex_t pdreq;
	pthread_cond_t pdcv;
	uv_async_t pd_async;
	struct pdcall *pd_head, *pd_tail;
	int pd_stopped;
	char pd_addr[MAX_PD][128];
	int n_pd;
	atomic_int pd_cur;              /* the address that answered last:
					   beat and reconciler threads */
	vt_grpc_client *pd_cli[MAX_PD];

	atomic_uint_fast64_t requests; /* internal API calls, for qps */
	pthread_t beat_thr, rec_thr;
	int beat_started, rec_started;
	int handles;                  /* pd_async and the signals exist */
	/* A role of `vectron serve` (worker.h): the host and the loop are
	 * the process's, signals are not ours, sopts came with the role. */
	int embedded;
	atomic_int removed;           /* the PD removed this worker: exit 1 */
} worker;

/* ---- shared by worker.c, worker_pd.c, worker_api.c ------------------------ */

/* worker.c: the replica table. A reference keeps a replica in the table
 * (destroy waits for it); put every one taken. */
struct replica *vt__wrep_get(worker *w, uint64_t group); /* NULL: not here */
void vt__wrep_put(worker *w, struct replica *r);
/* Every replica, referenced; the array is vt_malloc'd (NULL: no memory). */
struct replica **vt__wrep_all(worker *w, size_t *n /* out */);
void vt__wrep_put_all(worker *w, struct replica **v, size_t n);

typedef struct vt__wrep_stats_t {
	struct replica *rep; /* whose figures (set by vt__wrep_stats) */
	const char *state;
	uint64_t term, applied, points, leader_id;
	int leader, caught_up;
} vt__wrep_stats_t;

/* Whether the PD still has `group` as shard `shard` of `collection`: 1
 * (the group goes on without this replica: a move), 0 (the collection was
 * dropped or re-created: the group is going entirely), -1 (no answer).
 * A PD call; the reconciler's. */
int vt__worker_group_alive(worker *w, const char *collection, uint32_t shard,
			   uint64_t group);

/* The replica's Raft and shard figures (a host call). */
int vt__wrep_stats(worker *w, struct replica *r, vt__wrep_stats_t *st);
/* "not the leader; leader: <its worker's gRPC address>" into err (the
 * leader known to the replica, mapped through the PD's peers); VT_EBUSY. */
int vt__wrep_not_leader(worker *w, struct replica *r, vt_errmsg *err);

/* Sleeps up to ms with w->mu held; a stop or a broadcast wakes it. */
void vt__worker_nap(worker *w, unsigned ms);
void vt__worker_sleep_ms(unsigned ms);
/* "host:port" -> host[cap], *port. VT_EINVAL. */
int vt__worker_split_addr(const char *a, char *host, size_t cap, int *port);

/* worker_pd.c: the PD client (calls start on the loop, in pd_async) and
 * the beat thread (register, heartbeat, hand answers to the reconciler). */
void vt__worker_pd_async(uv_async_t *a);
void vt__worker_pd_finish(worker *w, struct pdcall *c, int status,
			  const char *msg);
void *vt__worker_beat(void *w);

/* worker_api.c: the Worker gRPC service on w->loop, listening on
 * cfg.listen; sets w->grpc and w->addr. */
int vt__worker_api_start(worker *w, vt_errmsg *err);

#endif
