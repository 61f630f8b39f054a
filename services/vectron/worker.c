/* worker.c: `vectron worker` (worker.h). Threads, and why:
 *   - the loop thread (libuv): the Worker gRPC server, the PD client and
 *     signals. It never blocks: host calls wait for the Raft thread.
 *   - the request workers (reqpool.c): one internal API request each;
 *     they wait on the host (apply, reads), then reply on the loop.
 *   - the beat thread: registers, then heartbeats every heartbeat_ms with
 *     a report per replica; its PD calls run on the loop and it waits.
 *   - the reconciler: acts on the latest assignment list (attach,
 *     destroy, one membership change per group it leads per round),
 *     apart from the beat so a slow attach or a promotion waiting for a
 *     catch-up never delays a heartbeat.
 *   - the host thread (lib/repl/host.h): every Raft group.
 * Decisions are lib/worker/plan.h's; replica meta files lib/worker/meta.h.
 * docs/worker.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_timedjoin_np */
#endif
#include "worker.h"

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

#define S(n, e, d, h) VT_SET_S(wcfg, n, e, d, h)
#define I(n, e, k, d, lo, hi, h) VT_SET_N(wcfg, n, e, k, d, lo, hi, h)

static const vt_setting table[] = {
	I(worker_id, "VECTRON_WORKER_ID", VT_SET_LONG, "0", 0,
	  (1ll << 62), "this worker's id; 0: a random one chosen on first "
	  "start and kept in <data_dir>/worker-id"),
	S(data_dir, "VECTRON_WORKER_DATA_DIR", "./data-worker",
	  "directory of the replicas (groups/<group id>/) and the worker id"),
	S(listen, "VECTRON_WORKER_LISTEN", "127.0.0.1:7200",
	  "internal gRPC address (host:port) the gateway and PD reach; "
	  "port 0 picks a free one"),
	S(raft_listen, "VECTRON_WORKER_RAFT_LISTEN", "127.0.0.1:7300",
	  "Raft transport address of every replica hosted here"),
	S(advertise, "VECTRON_WORKER_ADVERTISE", "",
	  "gRPC address given to the PD (host:port) when listen is 0.0.0.0 "
	  "or behind NAT; empty: listen with its bound port"),
	S(raft_advertise, "VECTRON_WORKER_RAFT_ADVERTISE", "",
	  "Raft address given to the PD; empty: raft_listen as bound"),
	S(pd, "VECTRON_WORKER_PD", "127.0.0.1:7100",
	  "placement driver gRPC addresses, comma-separated"),
	S(zone, "VECTRON_WORKER_ZONE", "", "failure zone, for placement"),
	S(rack, "VECTRON_WORKER_RACK", "", "rack, for placement"),
	I(capacity, "VECTRON_WORKER_CAPACITY", VT_SET_INT, "1", 1, 1000000,
	  "relative weight for placement"),
	S(role, "VECTRON_WORKER_ROLE", "normal",
	  "normal, or search_only (non-voting replicas, refuses writes)"),
	I(heartbeat_ms, "VECTRON_WORKER_HEARTBEAT_MS", VT_SET_INT, "500", 50,
	  60000, "heartbeat interval to the PD"),
	I(threads, "VECTRON_WORKER_THREADS", VT_SET_INT, "0", 0, 1024,
	  "request threads; 0 = CPUs"),
	S(log_level, "VECTRON_WORKER_LOG_LEVEL", "info",
	  "debug, info, warn, error"),
	I(election_ms, "VECTRON_WORKER_ELECTION_MS", VT_SET_INT, "1000", 50,
	  60000, "Raft election timeout of the replicas (heartbeat: a "
	  "tenth)"),
	I(shutdown_grace_ms, "VECTRON_WORKER_SHUTDOWN_GRACE_MS", VT_SET_INT,
	  "5000", 0, 600000, "on SIGTERM, how long requests in flight may "
	  "finish"),
};

static const vt_settings settings = {
	"worker",
	"Hosts shard replicas for a cluster: registers with the placement "
	"driver,\nheartbeats, and serves vectron.internal.v1.Worker.",
	"VECTRON_WORKER_CONFIG", table, sizeof table / sizeof table[0]};

/* ---- state --------------------------------------------------------------- */

typedef struct wpeer {
	uint64_t raft_id, worker;
	int voter;
	char addr[128], raft_addr[128];
} wpeer;

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
};

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
	pthread_cond_t cv;
	struct replica *reps;
	int registered;
	uint64_t epoch;               /* last assignments epoch received */
	uint64_t answer_seq;          /* heartbeat answers received */
	Vectron__Internal__V1__HeartbeatResponse *full_new; /* untaken */
	Vectron__Internal__V1__Elect elect[MAX_ELECT];
	size_t n_elect;

	/* PD client: slots are touched by the loop only, addresses are
	 * appended under pdmu and never change. */
	pthread_mutex_t pdmu;
	pthread_cond_t pdcv;
	uv_async_t pd_async;
	struct pdcall *pd_head, *pd_tail;
	int pd_stopped;
	char pd_addr[MAX_PD][128];
	int n_pd, pd_cur;
	vt_grpc_client *pd_cli[MAX_PD];

	atomic_uint_fast64_t requests; /* internal API calls, for qps */
	pthread_t beat_thr, rec_thr;
	int beat_started, rec_started;
	int handles;                  /* pd_async and the signals exist */
} worker;

/* ---- small helpers ------------------------------------------------------- */

static int split_addr(const char *a, char *host, size_t cap, int *port)
{
	const char *c = strrchr(a, ':');
	if (!c || c == a || (size_t)(c - a) >= cap)
		return VT_EINVAL;
	char *end;
	long p = strtol(c + 1, &end, 10);
	if (*end || p < 0 || p > 65535 || end == c + 1)
		return VT_EINVAL;
	memcpy(host, a, (size_t)(c - a));
	host[c - a] = '\0';
	*port = (int)p;
	return 0;
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Sleeps up to `ms` (w->mu held), waking early on stop or a signal. */
static void nap_locked(worker *w, unsigned ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	if (!atomic_load(&w->stopping))
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void group_dir(const worker *w, uint64_t group, const char *leaf,
		      char *out, size_t cap)
{
	snprintf(out, cap, "%s/groups/%" PRIu64 "%s%s", w->cfg.data_dir,
		 group, leaf ? "/" : "", leaf ? leaf : "");
}

static int mkdir_p(const char *p)
{
	return mkdir(p, 0755) && errno != EEXIST ? vt_err_from_errno(errno)
						 : 0;
}

/* The worker id: the setting, or <data_dir>/worker-id, or a new random
 * one written there (so a restart keeps its identity and its replicas). */
static int worker_id_load(worker *w, vt_errmsg *err)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/worker-id", w->cfg.data_dir);
	if (w->cfg.worker_id) {
		w->id = (uint64_t)w->cfg.worker_id;
		return 0;
	}
	FILE *f = fopen(path, "r");
	if (f) {
		unsigned long long id = 0;
		int ok = fscanf(f, "%llu", &id) == 1 && id;
		fclose(f);
		if (!ok)
			return vt_errmsg_set(err, VT_ECORRUPT, "%s: not a "
					     "worker id", path);
		w->id = id;
		return 0;
	}
	uint64_t id = 0;
	while (!id) {
		if (getrandom(&id, sizeof id, 0) != sizeof id)
			return vt_errmsg_set(err, VT_EIO, "getrandom failed");
		id &= (1ull << 62) - 1;
	}
	char text[32];
	int n = snprintf(text, sizeof text, "%" PRIu64 "\n", id);
	vt_afile af;
	int rc = vt_afile_open(&af, path, err);
	if (rc)
		return rc;
	if ((rc = vt_afile_write(&af, text, (size_t)n))) {
		vt_afile_abort(&af);
		return vt_errmsg_set(err, rc, "%s: %s", path, vt_strerror(rc));
	}
	if ((rc = vt_afile_commit(&af, err)))
		return rc;
	w->id = id;
	VT_LOG(VT_LOG_INFO, MOD, "new worker id %" PRIu64 " (kept in %s)",
	       id, path);
	return 0;
}

/* ---- the replica table --------------------------------------------------- */

/* A reference to the replica of `group`, or NULL (not hosted, or going). */
static struct replica *rep_get(worker *w, uint64_t group)
{
	pthread_mutex_lock(&w->mu);
	struct replica *r = w->reps;
	while (r && (r->group != group || r->gone))
		r = r->next;
	if (r)
		r->refs++;
	pthread_mutex_unlock(&w->mu);
	return r;
}

static void rep_put(worker *w, struct replica *r)
{
	pthread_mutex_lock(&w->mu);
	if (!--r->refs)
		pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Every hosted replica, referenced: the caller puts each and frees the
 * array. */
static struct replica **rep_all(worker *w, size_t *n)
{
	pthread_mutex_lock(&w->mu);
	size_t k = 0;
	for (struct replica *r = w->reps; r; r = r->next)
		k += !r->gone;
	struct replica **v = vt_calloc(k ? k : 1, sizeof *v);
	*n = 0;
	for (struct replica *r = w->reps; v && r; r = r->next)
		if (!r->gone) {
			r->refs++;
			v[(*n)++] = r;
		}
	pthread_mutex_unlock(&w->mu);
	return v;
}

static void rep_put_all(worker *w, struct replica **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rep_put(w, v[i]);
	vt_free(v);
}

/* Takes the replica out of the table once nobody uses it. */
static void rep_unlink(worker *w, struct replica *r)
{
	pthread_mutex_lock(&w->mu);
	r->gone = 1;
	while (r->refs)
		pthread_cond_wait(&w->cv, &w->mu);
	for (struct replica **p = &w->reps; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	pthread_mutex_unlock(&w->mu);
}

static void rep_free(struct replica *r)
{
	vt_free(r->peers);
	vt_free(r);
}

/* ---- replica state (on the host thread) ---------------------------------- */

typedef struct rstats {
	const char *state;
	uint64_t term, applied, points, leader_id;
	int leader, caught_up;
} rstats;

static int stats_fn(vt_repl *r, struct raft *raft, void *ud)
{
	rstats *st = ud;
	vt_repl_lag_info lag;
	int rc = vt_repl_lag(r, &lag);
	if (rc)
		return rc;
	st->state = vt_repl_state_name(lag.state);
	st->term = lag.term;
	st->leader = lag.state == RAFT_LEADER;
	st->leader_id = lag.leader_id;
	st->applied = lag.shard_applied;
	st->caught_up = lag.leader_id && lag.last_applied >= lag.commit_index;
	vt_shard *s = vt_repl_shard(r);
	vt_shard_status ss = {0};
	if (s && !vt_shard_status_get(s, &ss))
		st->points = ss.points;
	(void)raft;
	return 0;
}

static int rep_stats(worker *w, struct replica *r, rstats *st)
{
	memset(st, 0, sizeof *st);
	st->state = "?";
	return vt_repl_host_call(w->host, r->g, stats_fn, st);
}

/* The leader's gRPC address for a "not the leader" answer, from the PD's
 * peer list (raft ids are the group's; the list maps them to workers). */
static int not_leader(worker *w, struct replica *r, vt_errmsg *err)
{
	rstats st;
	const char *addr = NULL;
	char buf[128];
	if (!rep_stats(w, r, &st) && st.leader_id && st.leader_id != r->raft_id) {
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < r->n_peers; i++)
			if (r->peers[i].raft_id == st.leader_id &&
			    r->peers[i].addr[0]) {
				snprintf(buf, sizeof buf, "%s",
					 r->peers[i].addr);
				addr = buf;
			}
		pthread_mutex_unlock(&w->mu);
	}
	return vt_worker_not_leader(addr, err);
}

/* ---- attach / reopen / destroy ------------------------------------------- */

static int attach_meta(worker *w, const vt_worker_meta *m, vt_errmsg *err)
{
	vt_coll_config cc;
	int rc = vt_coll_config_decode(m->config, m->config_len, &cc, err);
	if (rc)
		return vt_errmsg_prefix(err, rc, "group %" PRIu64 " config",
					m->group);
	char dir[1200];
	group_dir(w, m->group, "shard", dir, sizeof dir);
	if ((rc = mkdir_p(dir)))
		return vt_errmsg_set(err, rc, "%s: %s", dir, vt_strerror(rc));
	vt_repl_peer peers[VT_WORKER_META_PEERS];
	for (size_t i = 0; i < m->n_peers; i++)
		peers[i] = (vt_repl_peer){m->peers[i].id, m->peers[i].addr, 1};
	vt_shard_opts so = w->sopts;
	so.create = &cc.shard;
	so.name = NULL;
	vt_repl_group_spec spec = {.group_id = m->group, .self = m->raft_id,
				   .dir = dir,
				   .peers = m->join ? NULL : peers,
				   .n_peers = m->join ? 0 : m->n_peers,
				   .join = m->join, .shard_opts = &so};
	struct replica *r = vt_calloc(1, sizeof *r);
	if (!r)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	if ((rc = vt_repl_host_attach(w->host, &spec, &r->g, err))) {
		vt_free(r);
		return rc;
	}
	r->group = m->group;
	r->raft_id = m->raft_id;
	r->epoch = m->epoch;
	r->shard = m->shard;
	r->voter = m->voter;
	snprintf(r->collection, sizeof r->collection, "%s", m->collection);
	pthread_mutex_lock(&w->mu);
	r->next = w->reps;
	w->reps = r;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* Deletes what a removal left half-done: a group directory without its
 * meta file (the meta goes first, so a crash never resurrects it). */
static void remove_leftover(worker *w, uint64_t group)
{
	char shard[1200], gdir[1200];
	group_dir(w, group, "shard", shard, sizeof shard);
	group_dir(w, group, NULL, gdir, sizeof gdir);
	vt_errmsg err = {{0}};
	struct stat st;
	if (!stat(shard, &st) && vt_repl_destroy(shard, &err))
		VT_LOG(VT_LOG_WARN, MOD, "group %" PRIu64 ": leftover of a "
		       "removal not deleted: %s", group, err.msg);
	if (rmdir(gdir) && errno != ENOENT)
		VT_LOG(VT_LOG_WARN, MOD, "%s: leftover of a removal: %s", gdir,
		       strerror(errno));
	else
		VT_LOG(VT_LOG_INFO, MOD, "group %" PRIu64 ": deleted the "
		       "leftover of an interrupted removal", group);
}

/* At start: every replica with a meta file, so a restarted worker serves
 * before the PD answers. A replica that fails to open is logged and
 * skipped (the PD will see it missing and repair the group). */
static void reopen_all(worker *w)
{
	char gdir[1100];
	snprintf(gdir, sizeof gdir, "%s/groups", w->cfg.data_dir);
	DIR *d = opendir(gdir);
	if (!d)
		return;
	struct dirent *e;
	uint64_t groups[4096];
	size_t n = 0;
	while ((e = readdir(d)) && n < 4096) {
		char *end;
		unsigned long long g = strtoull(e->d_name, &end, 10);
		if (g && !*end)
			groups[n++] = g;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		char path[1200];
		group_dir(w, groups[i], "replica.json", path, sizeof path);
		vt_worker_meta m;
		vt_errmsg err = {{0}};
		int rc = vt_worker_meta_read(path, &m, &err);
		if (rc == VT_ENOENT) {
			remove_leftover(w, groups[i]);
			continue;
		}
		if (!rc)
			rc = attach_meta(w, &m, &err);
		if (rc)
			VT_LOG(VT_LOG_ERROR, MOD, "group %" PRIu64 ": not "
			       "reopened: %s", groups[i], err.msg);
		else
			VT_LOG(VT_LOG_INFO, MOD, "reopened %s shard %u (group "
			       "%" PRIu64 ", raft id %" PRIu64 ", epoch %"
			       PRIu64 ")", m.collection, m.shard, m.group,
			       m.raft_id, m.epoch);
		vt_worker_meta_free(&m);
	}
}

static void meta_of(const Vectron__Internal__V1__Assignment *a,
		    vt_worker_meta *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->collection, sizeof m->collection, "%s",
		 a->collection ? a->collection : "");
	m->shard = a->shard;
	m->group = a->group;
	m->epoch = a->epoch;
	m->raft_id = a->raft_id;
	m->voter = a->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER;
	m->join = !a->bootstrap;
	for (size_t i = 0; !m->join && i < a->n_peers &&
			   m->n_peers < VT_WORKER_META_PEERS; i++) {
		const Vectron__Internal__V1__Peer *p = a->peers[i];
		if (p->raft_id && p->raft_id <= a->rf && p->raft_addr &&
		    p->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER) {
			m->peers[m->n_peers].id = p->raft_id;
			snprintf(m->peers[m->n_peers].addr, VT_WORKER_META_ADDR,
				 "%s", p->raft_addr);
			m->n_peers++;
		}
	}
	m->config = (char *)a->config.data;
	m->config_len = a->config.len;
}

/* A new replica: its meta file first (a crash then reopens it), then the
 * group. */
static int attach_new(worker *w, const Vectron__Internal__V1__Assignment *a,
		      vt_errmsg *err)
{
	vt_worker_meta m;
	meta_of(a, &m);
	if (!m.join && !m.n_peers)
		return vt_errmsg_set(err, VT_EINVAL, "bootstrap without "
				     "voters among its peers (rf %u)", a->rf);
	char gdir[1200], path[1200];
	group_dir(w, a->group, NULL, gdir, sizeof gdir);
	group_dir(w, a->group, "replica.json", path, sizeof path);
	int rc = mkdir_p(gdir);
	if (rc)
		return vt_errmsg_set(err, rc, "%s: %s", gdir, vt_strerror(rc));
	if ((rc = vt_worker_meta_write(path, &m, err)))
		return rc;
	if ((rc = attach_meta(w, &m, err))) {
		unlink(path); /* level-triggered: the next round tries again */
		return rc;
	}
	return 0;
}

static void destroy_replica(worker *w, struct replica *r, const char *why)
{
	rep_unlink(w, r);
	char path[1200], gdir[1200];
	group_dir(w, r->group, "replica.json", path, sizeof path);
	group_dir(w, r->group, NULL, gdir, sizeof gdir);
	if (unlink(path) && errno != ENOENT)
		VT_LOG(VT_LOG_WARN, MOD, "%s: %s", path, strerror(errno));
	vt_fsync_dir(gdir);
	vt_errmsg err = {{0}};
	if (vt_repl_host_destroy(w->host, r->g, &err))
		VT_LOG(VT_LOG_ERROR, MOD, "group %" PRIu64 ": files not "
		       "deleted: %s (the next start retries)", r->group,
		       err.msg);
	else if (rmdir(gdir))
		VT_LOG(VT_LOG_WARN, MOD, "%s: %s", gdir, strerror(errno));
	VT_LOG(VT_LOG_INFO, MOD, "removed %s shard %u (group %" PRIu64
	       ", raft id %" PRIu64 ") and its data: %s", r->collection,
	       r->shard, r->group, r->raft_id, why);
	rep_free(r);
}

/* ---- the PD client -------------------------------------------------------- */

struct pd_done_ud {
	struct worker *w;
	struct pdcall *c;
};

static void pd_on_msg(void *ud, ProtobufCMessage *msg, const uint8_t *raw,
		      size_t len)
{
	(void)raw;
	(void)len;
	struct pdcall *c = ((struct pd_done_ud *)ud)->c;
	if (c->reply)
		vt_grpc_msg_free(c->reply);
	c->reply = msg;
}

static void pd_finish(worker *w, struct pdcall *c, int status,
		      const char *msg)
{
	pthread_mutex_lock(&w->pdmu);
	c->status = status;
	snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
	c->done = 1;
	pthread_cond_broadcast(&w->pdcv);
	pthread_mutex_unlock(&w->pdmu);
}

static void pd_on_done(void *ud, int status, const char *message)
{
	struct pd_done_ud *d = ud;
	pd_finish(d->w, d->c, status, message);
	vt_free(d);
}

/* Loop thread: starts the queued calls. */
static void pd_on_async(uv_async_t *a)
{
	worker *w = a->data;
	pthread_mutex_lock(&w->pdmu);
	struct pdcall *c = w->pd_head;
	w->pd_head = w->pd_tail = NULL;
	pthread_mutex_unlock(&w->pdmu);
	while (c) {
		struct pdcall *next = c->next;
		int rc = 0;
		if (!w->pd_cli[c->slot]) {
			char host[128];
			int port;
			rc = split_addr(w->pd_addr[c->slot], host, sizeof host,
					&port);
			if (!rc)
				rc = vt_grpc_client_new(w->loop, host, port,
							NULL,
							&w->pd_cli[c->slot]);
		}
		struct pd_done_ud *d = rc ? NULL : vt_malloc(sizeof *d);
		if (!rc && !d)
			rc = VT_ENOMEM;
		if (!rc) {
			*d = (struct pd_done_ud){w, c};
			vt_grpc_call_opts o = {.timeout_ms = PD_TIMEOUT_MS};
			rc = vt_grpc_client_call(w->pd_cli[c->slot], c->path,
						 NULL, c->req, c->req_len,
						 c->desc, &o, pd_on_msg,
						 pd_on_done, d, NULL);
			if (rc)
				vt_free(d);
		}
		if (rc)
			pd_finish(w, c, VT_GRPC_UNAVAILABLE, vt_strerror(rc));
		c = next;
	}
}

/* One call to PD address `slot`, from a thread other than the loop.
 * Returns the gRPC status; on OK *reply is the decoded answer (the caller
 * frees it with vt_grpc_msg_free); `msg` gets the status message. */
static int pd_call(worker *w, int slot, const char *method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc,
		   ProtobufCMessage **reply, char *msg, size_t cap)
{
	char path[128];
	snprintf(path, sizeof path, PD_SVC "%s", method);
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = vt_malloc(len ? len : 1);
	if (!buf) {
		snprintf(msg, cap, "out of memory");
		return VT_GRPC_RESOURCE_EXHAUSTED;
	}
	protobuf_c_message_pack(req, buf);
	struct pdcall c = {.slot = slot, .path = path, .req = buf,
			   .req_len = len, .desc = desc};
	pthread_mutex_lock(&w->pdmu);
	if (w->pd_stopped) {
		pthread_mutex_unlock(&w->pdmu);
		vt_free(buf);
		snprintf(msg, cap, "shutting down");
		return VT_GRPC_CANCELLED;
	}
	if (w->pd_tail)
		w->pd_tail->next = &c;
	else
		w->pd_head = &c;
	w->pd_tail = &c;
	uv_async_send(&w->pd_async);
	while (!c.done)
		pthread_cond_wait(&w->pdcv, &w->pdmu);
	pthread_mutex_unlock(&w->pdmu);
	vt_free(buf);
	snprintf(msg, cap, "%s", c.msg);
	if (c.status == VT_GRPC_OK && !c.reply) {
		snprintf(msg, cap, "empty answer");
		return VT_GRPC_INTERNAL;
	}
	if (c.status != VT_GRPC_OK) {
		vt_grpc_msg_free(c.reply);
		c.reply = NULL;
	}
	*reply = c.reply;
	return c.status;
}

/* The slot of PD address `a`, added when new (a leader named by a
 * follower that is not in the configured list); -1 when full. */
static int pd_slot(worker *w, const char *a)
{
	pthread_mutex_lock(&w->pdmu);
	int s = -1;
	for (int i = 0; i < w->n_pd; i++)
		if (!strcmp(w->pd_addr[i], a))
			s = i;
	if (s < 0 && w->n_pd < MAX_PD && strlen(a) < 128) {
		snprintf(w->pd_addr[w->n_pd], 128, "%s", a);
		s = w->n_pd++;
	}
	pthread_mutex_unlock(&w->pdmu);
	return s;
}

/* Calls the PD leader: the address that answered last, following a
 * follower's "not the leader; leader: X" once per hop, then probing the
 * other addresses. Returns the gRPC status of the last try; `why` gets a
 * line per failed address. */
static int pd_request(worker *w, const char *method,
		      const ProtobufCMessage *req,
		      const ProtobufCMessageDescriptor *desc,
		      ProtobufCMessage **reply, char *why, size_t cap)
{
	int slot = w->pd_cur, st = VT_GRPC_UNAVAILABLE;
	size_t used = 0;
	why[0] = '\0';
	for (int tries = 0; tries < 2 * w->n_pd + 1; tries++) {
		if (atomic_load(&w->stopping))
			return VT_GRPC_CANCELLED;
		char msg[VT_ERRMSG_SIZE], leader[128];
		st = pd_call(w, slot, method, req, desc, reply, msg,
			     sizeof msg);
		if (st == VT_GRPC_OK) {
			w->pd_cur = slot;
			return st;
		}
		if (used < cap)
			used += (size_t)snprintf(why + used, cap - used,
						 "%s%s: %s %s", used ? "; " : "",
						 w->pd_addr[slot],
						 vt_grpc_status_name(st), msg);
		int next = -1;
		if (st == VT_GRPC_FAILED_PRECONDITION &&
		    vt_worker_leader_parse(msg, leader, sizeof leader) == 1)
			next = pd_slot(w, leader);
		if (next < 0 || next == slot)
			next = (slot + 1) % w->n_pd;
		slot = next;
		if (st == VT_GRPC_FAILED_PRECONDITION &&
		    !strstr(msg, "not the leader"))
			return st; /* refused by the leader itself */
	}
	return st;
}

/* ---- register and heartbeat (the beat thread) ----------------------------- */

static int do_register(worker *w, char *why, size_t cap)
{
	Vectron__Internal__V1__WorkerInfo wi =
		VECTRON__INTERNAL__V1__WORKER_INFO__INIT;
	wi.has_id = wi.has_capacity = wi.has_role = 1;
	wi.id = w->id;
	wi.addr = w->addr;
	wi.raft_addr = w->cfg.raft_advertise[0]
			       ? w->cfg.raft_advertise
			       : (char *)vt_repl_host_address(w->host);
	wi.zone = w->cfg.zone;
	wi.rack = w->cfg.rack;
	wi.capacity = (uint64_t)w->cfg.capacity;
	wi.role = w->search_only ? VECTRON__INTERNAL__V1__WORKER_ROLE__SEARCH_ONLY
				 : VECTRON__INTERNAL__V1__WORKER_ROLE__NORMAL;
	Vectron__Internal__V1__RegisterWorkerRequest req =
		VECTRON__INTERNAL__V1__REGISTER_WORKER_REQUEST__INIT;
	req.has_version = 1;
	req.version = VT_WORKER_PROTOCOL;
	req.worker = &wi;
	ProtobufCMessage *reply = NULL;
	int st = pd_request(w, "RegisterWorker", &req.base,
			    &vectron__internal__v1__register_worker_response__descriptor,
			    &reply, why, cap);
	if (st != VT_GRPC_OK)
		return st;
	Vectron__Internal__V1__RegisterWorkerResponse *rr = (void *)reply;
	VT_LOG(VT_LOG_INFO, MOD, "registered with the PD at %s as worker %"
	       PRIu64 " (assignments epoch %" PRIu64 ")",
	       w->pd_addr[w->pd_cur], w->id, rr->epoch);
	vt_grpc_msg_free(reply);
	pthread_mutex_lock(&w->mu);
	w->registered = 1;
	pthread_mutex_unlock(&w->mu);
	return st;
}

/* Hands an answer to the reconciler: a full list replaces any untaken
 * one (level-triggered: only the newest matters); elects queue up. */
static void beat_answer(worker *w, Vectron__Internal__V1__HeartbeatResponse *a)
{
	pthread_mutex_lock(&w->mu);
	if (!a->registered) {
		w->registered = 0;
		pthread_mutex_unlock(&w->mu);
		VT_LOG(VT_LOG_WARN, MOD, "the PD does not know this worker "
		       "(restarted or removed it): registering again");
		vt_grpc_msg_free(&a->base);
		return;
	}
	w->epoch = a->epoch;
	for (size_t i = 0; i < a->n_elect && w->n_elect < MAX_ELECT; i++)
		w->elect[w->n_elect++] = *a->elect[i];
	w->answer_seq++;
	if (!a->unchanged) {
		if (w->full_new)
			vt_grpc_msg_free(&w->full_new->base);
		w->full_new = a;
		a = NULL;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (a)
		vt_grpc_msg_free(&a->base);
}

static int do_heartbeat(worker *w, char *why, size_t cap)
{
	static uint64_t last_ns, last_requests; /* the beat thread's */
	size_t n;
	struct replica **v = rep_all(w, &n);
	if (!v)
		return VT_GRPC_RESOURCE_EXHAUSTED;
	Vectron__Internal__V1__ReplicaReport *rep = vt_calloc(n + 1,
							      sizeof *rep);
	Vectron__Internal__V1__ReplicaReport **rp = vt_calloc(n + 1,
							      sizeof *rp);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!rep || !rp)
		goto out;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		rstats s;
		if (rep_stats(w, v[i], &s))
			continue;
		Vectron__Internal__V1__ReplicaReport x =
			VECTRON__INTERNAL__V1__REPLICA_REPORT__INIT;
		x.has_group = x.has_term = x.has_leader = x.has_caught_up = 1;
		x.has_applied = x.has_points = 1;
		x.group = v[i]->group;
		x.term = s.term;
		x.leader = s.leader;
		x.caught_up = s.caught_up;
		x.applied = s.applied;
		x.points = s.points;
		rep[k] = x;
		rp[k] = &rep[k];
		k++;
	}
	Vectron__Internal__V1__HeartbeatRequest req =
		VECTRON__INTERNAL__V1__HEARTBEAT_REQUEST__INIT;
	req.has_version = req.has_worker = req.has_known_epoch = 1;
	req.version = VT_WORKER_PROTOCOL;
	req.worker = w->id;
	pthread_mutex_lock(&w->mu);
	req.known_epoch = w->epoch;
	pthread_mutex_unlock(&w->mu);
	double load[1];
	if (getloadavg(load, 1) == 1) {
		req.has_load = 1;
		req.load = load[0];
	}
	uint64_t now = vt_clock_mono_ns(), nreq = atomic_load(&w->requests);
	if (last_ns && now > last_ns) {
		req.has_qps = 1;
		req.qps = (double)(nreq - last_requests) * 1e9 /
			  (double)(now - last_ns);
	}
	last_ns = now;
	last_requests = nreq;
	req.n_replicas = k;
	req.replicas = rp;
	ProtobufCMessage *reply = NULL;
	st = pd_request(w, "Heartbeat", &req.base,
			&vectron__internal__v1__heartbeat_response__descriptor,
			&reply, why, cap);
	if (st == VT_GRPC_OK)
		beat_answer(w, (void *)reply);
out:
	vt_free(rep);
	vt_free(rp);
	rep_put_all(w, v, n);
	return st;
}

static void *beat_main(void *arg)
{
	worker *w = arg;
	unsigned backoff = 200;
	char why[1024], last[1024] = "";
	uint64_t last_log = 0;
	while (!atomic_load(&w->stopping)) {
		pthread_mutex_lock(&w->mu);
		int reg = w->registered;
		pthread_mutex_unlock(&w->mu);
		int st = reg ? do_heartbeat(w, why, sizeof why)
			     : do_register(w, why, sizeof why);
		if (atomic_load(&w->stopping))
			break;
		unsigned wait = (unsigned)w->cfg.heartbeat_ms;
		if (st != VT_GRPC_OK) {
			/* Say why, but not every round of a long outage. */
			uint64_t now = vt_clock_mono_ns();
			if (strcmp(why, last) || now - last_log > 10000000000ull) {
				VT_LOG(VT_LOG_WARN, MOD, "%s failed (retrying "
				       "in %u ms): %s", reg ? "heartbeat"
				       : "registration", backoff, why);
				snprintf(last, sizeof last, "%s", why);
				last_log = now;
			}
			wait = backoff;
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		} else {
			backoff = 200;
			last[0] = '\0';
			/* Just registered (beat at once), or the PD forgot
			 * this worker (register again at once). */
			pthread_mutex_lock(&w->mu);
			if (!reg || !w->registered)
				wait = 0;
			pthread_mutex_unlock(&w->mu);
		}
		pthread_mutex_lock(&w->mu);
		if (wait)
			nap_locked(w, wait);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* ---- reconciliation (the reconciler thread) ------------------------------- */

struct confcopy {
	int leader;
	raft_id self;
	vt_worker_member m[64];
	size_t n;
};

static int conf_fn(vt_repl *r, struct raft *raft, void *ud)
{
	struct confcopy *c = ud;
	c->leader = raft_state(raft) == RAFT_LEADER && vt_repl_ready(r);
	c->self = raft->id;
	c->n = 0;
	for (unsigned i = 0; c->leader && i < raft->configuration.n &&
			     c->n < 64; i++)
		c->m[c->n++] = (vt_worker_member){
			raft->configuration.servers[i].id,
			raft->configuration.servers[i].role};
	return 0;
}

static const char *kind_name(int k)
{
	static const char *const n[] = {"none", "add", "promote", "remove",
					"transfer"};
	return k >= 0 && k <= VT_WORKER_TRANSFER ? n[k] : "?";
}

/* One membership change of a group this worker leads, if one is due. */
static void membership_step(worker *w, struct replica *r)
{
	struct confcopy c;
	if (vt_repl_host_call(w->host, r->g, conf_fn, &c) || !c.leader)
		return;
	pthread_mutex_lock(&w->mu);
	size_t nw = r->n_peers;
	vt_worker_want *want = vt_calloc(nw + 1, sizeof *want);
	wpeer *copy = vt_calloc(nw + 1, sizeof *copy);
	if (want && copy) {
		memcpy(copy, r->peers, nw * sizeof *copy);
		for (size_t i = 0; i < nw; i++)
			want[i] = (vt_worker_want){copy[i].raft_id,
						   copy[i].voter,
						   copy[i].raft_addr};
	}
	pthread_mutex_unlock(&w->mu);
	vt_worker_change ch;
	if (want && copy &&
	    vt_worker_next_change(c.m, c.n, c.self, want, nw, &ch)) {
		static const int kinds[] = {0, VT_REPL_CHANGE_ADD,
					    VT_REPL_CHANGE_PROMOTE,
					    VT_REPL_CHANGE_REMOVE,
					    VT_REPL_CHANGE_TRANSFER};
		vt_errmsg err = {{0}};
		VT_LOG(VT_LOG_INFO, MOD, "group %" PRIu64 ": %s raft id %"
		       PRIu64 "%s%s: %s", r->group, kind_name(ch.kind), ch.id,
		       ch.addr ? " at " : "", ch.addr ? ch.addr : "", ch.why);
		int rc = vt_repl_host_change(w->host, r->g, kinds[ch.kind],
					     ch.id, ch.addr, RAFT_STANDBY,
					     &err);
		if (rc)
			VT_LOG(rc == VT_EOVERLOAD ? VT_LOG_DEBUG : VT_LOG_WARN,
			       MOD, "group %" PRIu64 ": %s raft id %" PRIu64
			       " failed (next round retries): %s", r->group,
			       kind_name(ch.kind), ch.id, err.msg);
		else
			VT_LOG(VT_LOG_INFO, MOD, "group %" PRIu64 ": %s raft "
			       "id %" PRIu64 " done", r->group,
			       kind_name(ch.kind), ch.id);
	}
	vt_free(want);
	vt_free(copy);
}

/* The PD's wanted peers and epoch, kept on the replica; its meta file is
 * rewritten when the epoch moves, so a restart checks requests against
 * the newest epoch it knew. */
static void replica_update(worker *w, struct replica *r,
			   const Vectron__Internal__V1__Assignment *a)
{
	wpeer *p = vt_calloc(a->n_peers + 1, sizeof *p);
	if (!p)
		return;
	for (size_t i = 0; i < a->n_peers; i++) {
		const Vectron__Internal__V1__Peer *x = a->peers[i];
		p[i].raft_id = x->raft_id;
		p[i].worker = x->worker;
		p[i].voter = x->role ==
			     VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER;
		snprintf(p[i].addr, sizeof p[i].addr, "%s",
			 x->addr ? x->addr : "");
		snprintf(p[i].raft_addr, sizeof p[i].raft_addr, "%s",
			 x->raft_addr ? x->raft_addr : "");
	}
	int voter = a->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER;
	pthread_mutex_lock(&w->mu);
	int moved = a->epoch > r->epoch || voter != r->voter;
	if (a->epoch > r->epoch)
		r->epoch = a->epoch;
	vt_free(r->peers);
	r->peers = p;
	r->n_peers = a->n_peers;
	r->voter = voter;
	uint64_t epoch = r->epoch;
	pthread_mutex_unlock(&w->mu);
	if (moved) {
		char path[1200];
		group_dir(w, r->group, "replica.json", path, sizeof path);
		vt_worker_meta m;
		vt_errmsg err = {{0}};
		if (!vt_worker_meta_read(path, &m, &err)) {
			m.epoch = epoch;
			m.voter = voter;
			if (vt_worker_meta_write(path, &m, &err))
				VT_LOG(VT_LOG_WARN, MOD, "%s", err.msg);
			vt_worker_meta_free(&m);
		}
	}
}

static void reconcile(worker *w, Vectron__Internal__V1__HeartbeatResponse *cur)
{
	size_t na = cur->n_assignments;
	/* attach what is missing, update what is hosted */
	for (size_t i = 0; i < na && !atomic_load(&w->stopping); i++) {
		const Vectron__Internal__V1__Assignment *a =
			cur->assignments[i];
		if (!a->group || !a->raft_id)
			continue;
		struct replica *r = rep_get(w, a->group);
		if (!r) {
			vt_errmsg err = {{0}};
			if (attach_new(w, a, &err)) {
				VT_LOG(VT_LOG_ERROR, MOD, "group %" PRIu64 " (%s "
				       "shard %u): attach failed (next round "
				       "retries): %s", a->group, a->collection,
				       a->shard, err.msg);
				continue;
			}
			VT_LOG(VT_LOG_INFO, MOD, "attached %s shard %u (group %"
			       PRIu64 ", raft id %" PRIu64 ", %s, %s)",
			       a->collection, a->shard, a->group, a->raft_id,
			       a->role ? "non-voter" : "voter",
			       a->bootstrap ? "bootstrap" : "joins");
			if (!(r = rep_get(w, a->group)))
				continue;
		}
		replica_update(w, r, a);
		rep_put(w, r);
	}
	/* destroy what is no longer assigned */
	size_t n;
	struct replica **v = rep_all(w, &n);
	if (!v)
		return;
	uint64_t *hosted = vt_calloc(n + 1, sizeof *hosted);
	uint64_t *assigned = vt_calloc(na + 1, sizeof *assigned);
	size_t *att = vt_calloc(na + 1, sizeof *att);
	size_t *des = vt_calloc(n + 1, sizeof *des);
	size_t n_att = 0, n_des = 0;
	if (hosted && assigned && att && des) {
		for (size_t i = 0; i < n; i++)
			hosted[i] = v[i]->group;
		for (size_t i = 0; i < na; i++)
			assigned[i] = cur->assignments[i]->group;
		vt_worker_diff(hosted, n, assigned, na, att, &n_att, des,
			       &n_des);
	}
	struct replica **gone = vt_calloc(n_des + 1, sizeof *gone);
	for (size_t i = 0; gone && i < n_des; i++)
		gone[i] = v[des[i]];
	rep_put_all(w, v, n);
	char why[128];
	snprintf(why, sizeof why, "no longer assigned to this worker "
		 "(assignments epoch %" PRIu64 ")", cur->epoch);
	for (size_t i = 0; gone && i < n_des; i++)
		destroy_replica(w, gone[i], why);
	vt_free(gone);
	vt_free(hosted);
	vt_free(assigned);
	vt_free(att);
	vt_free(des);
}

static void elect(worker *w, const Vectron__Internal__V1__Elect *e)
{
	struct replica *r = rep_get(w, e->group);
	if (!r)
		return;
	struct confcopy c;
	if (!vt_repl_host_call(w->host, r->g, conf_fn, &c) && c.leader &&
	    e->raft_id && e->raft_id != c.self) {
		vt_errmsg err = {{0}};
		int rc = vt_repl_host_change(w->host, r->g,
					     VT_REPL_CHANGE_TRANSFER,
					     e->raft_id, NULL, 0, &err);
		VT_LOG(rc ? VT_LOG_WARN : VT_LOG_INFO, MOD, "group %" PRIu64
		       ": leadership to raft id %" PRIu64 " (the PD asked): %s",
		       e->group, e->raft_id, rc ? err.msg : "done");
	}
	rep_put(w, r);
}

static void *rec_main(void *arg)
{
	worker *w = arg;
	Vectron__Internal__V1__HeartbeatResponse *cur = NULL;
	uint64_t seen = 0;
	Vectron__Internal__V1__Elect el[MAX_ELECT];
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!atomic_load(&w->stopping) && w->answer_seq == seen)
			pthread_cond_wait(&w->cv, &w->mu);
		seen = w->answer_seq;
		Vectron__Internal__V1__HeartbeatResponse *nw = w->full_new;
		w->full_new = NULL;
		size_t ne = w->n_elect;
		memcpy(el, w->elect, ne * sizeof *el);
		w->n_elect = 0;
		pthread_mutex_unlock(&w->mu);
		if (atomic_load(&w->stopping)) {
			if (nw)
				vt_grpc_msg_free(&nw->base);
			break;
		}
		if (nw) {
			if (cur)
				vt_grpc_msg_free(&cur->base);
			cur = nw;
		}
		if (cur)
			reconcile(w, cur);
		for (size_t i = 0; i < ne; i++)
			elect(w, &el[i]);
		/* one membership change per group this worker leads */
		size_t n;
		struct replica **v = rep_all(w, &n);
		for (size_t i = 0; v && i < n && !atomic_load(&w->stopping);
		     i++)
			membership_step(w, v[i]);
		if (v)
			rep_put_all(w, v, n);
	}
	if (cur)
		vt_grpc_msg_free(&cur->base);
	return NULL;
}

/* ---- the internal API ---------------------------------------------------- */

enum method { M_WRITE, M_SEARCH, M_GET, M_SCROLL, M_COUNT, M_STATUS,
	      M_WSTATUS, M_N };

struct route {
	worker *w;
	int method;
};

struct job {
	vt_reqpool_job work;     /* first: the pool casts back */
	worker *w;
	vt_grpc_call *call;
	int method;
	int status;              /* gRPC */
	vt_errmsg err;
	uint8_t *reply;
	size_t reply_len;
};

/* A gRPC status for a VT_E* code, keeping the message. */
static int fail(int rc)
{
	return vt_grpc_status_from_err(rc);
}

/* Common checks: protocol version, a shard reference, the replica here,
 * its epoch. On OK *out holds a reference (rep_put). */
static int prologue(worker *w, int has_version, uint32_t version,
		    const Vectron__Internal__V1__ShardRef *ref,
		    struct replica **out, vt_errmsg *err)
{
	*out = NULL;
	if (vt_worker_version_check(has_version ? version : 0, err))
		return VT_GRPC_FAILED_PRECONDITION;
	if (!ref || !ref->has_group) {
		vt_errmsg_set(err, VT_EINVAL, "shard: the group is missing");
		return VT_GRPC_INVALID_ARGUMENT;
	}
	struct replica *r = rep_get(w, ref->group);
	if (!r) {
		vt_errmsg_set(err, VT_ENOENT, "shard group %" PRIu64
			      " not hosted here", ref->group);
		return VT_GRPC_NOT_FOUND;
	}
	pthread_mutex_lock(&w->mu);
	uint64_t epoch = r->epoch;
	pthread_mutex_unlock(&w->mu);
	if (vt_worker_epoch_check(ref->epoch, epoch, err)) {
		rep_put(w, r);
		return VT_GRPC_FAILED_PRECONDITION;
	}
	*out = r;
	return VT_GRPC_OK;
}

static int pack(struct job *j, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	j->reply = vt_malloc(n ? n : 1);
	if (!j->reply) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		return VT_GRPC_RESOURCE_EXHAUSTED;
	}
	j->reply_len = protobuf_c_message_pack(m, j->reply);
	return VT_GRPC_OK;
}

/* ShardWrite's host-thread parts. */
struct wr {
	const void *cmd;
	size_t len;
	uint64_t entries;
	vt_errmsg err;
};

static int validate_fn(vt_repl *r, struct raft *raft, void *ud)
{
	(void)raft;
	struct wr *x = ud;
	vt_shard *s = vt_repl_shard(r);
	return s ? vt_shard_validate(s, x->cmd, x->len, &x->err)
		 : VT_ESHUTDOWN;
}

/* Room in the async index queue, without blocking the host thread
 * (vt_shard_wait_room would wait there): the caller polls. */
static int room_fn(vt_repl *r, struct raft *raft, void *ud)
{
	(void)raft;
	struct wr *x = ud;
	vt_shard *s = vt_repl_shard(r);
	vt_shard_status ss;
	if (!s || vt_shard_status_get(s, &ss))
		return VT_ESHUTDOWN;
	return ss.index_mode == VT_INDEX_SYNC ||
	       ss.lag + x->entries <= QUEUE_MAX ? 0 : VT_EOVERLOAD;
}

static int h_write(struct job *j)
{
	worker *w = j->w;
	const Vectron__Internal__V1__ShardWriteRequest *q =
		(const void *)vt_grpc_call_request(j->call);
	if (vt_worker_version_check(q->has_version ? q->version : 0, &j->err))
		return VT_GRPC_FAILED_PRECONDITION;
	if (w->search_only) {
		vt_errmsg_set(&j->err, VT_EBUSY, "search-only worker");
		return VT_GRPC_FAILED_PRECONDITION;
	}
	struct replica *r;
	int st = prologue(w, q->has_version, q->version, q->shard, &r,
			  &j->err);
	if (st)
		return st;
	struct wr x = {q->cmd.data, q->cmd.len,
		       q->has_entries ? q->entries : 0, {{0}}};
	if (!q->has_cmd || !q->cmd.len) {
		vt_errmsg_set(&j->err, VT_EINVAL, "cmd: missing");
		st = VT_GRPC_INVALID_ARGUMENT;
		goto out;
	}
	Vectron__Internal__V1__ShardWriteResponse resp =
		VECTRON__INTERNAL__V1__SHARD_WRITE_RESPONSE__INIT;
	if (q->validate_only) {
		int rc = vt_repl_host_call(w->host, r->g, validate_fn, &x);
		if (rc) {
			vt_errmsg_set(&j->err, rc, "%s", x.err.msg[0]
				      ? x.err.msg : vt_strerror(rc));
			st = fail(rc);
		} else {
			st = pack(j, &resp.base);
		}
		goto out;
	}
	uint64_t until = vt_clock_mono_ns() + QUEUE_WAIT_MS * 1000000ull;
	int rc;
	while ((rc = vt_repl_host_call(w->host, r->g, room_fn, &x)) ==
		       VT_EOVERLOAD &&
	       vt_clock_mono_ns() < until)
		sleep_ms(5);
	if (rc) {
		vt_errmsg_set(&j->err, rc, rc == VT_EOVERLOAD
			      ? "the shard's index queue is full: retry "
				"later" : "%s", vt_strerror(rc));
		st = fail(rc);
		goto out;
	}
	vt_shard_result res;
	rc = vt_repl_host_apply(w->host, r->g, x.cmd, x.len, &res, &j->err);
	if (rc == VT_EBUSY) {
		not_leader(w, r, &j->err);
		st = VT_GRPC_FAILED_PRECONDITION;
	} else if (rc) {
		st = fail(rc);
	} else {
		resp.has_upserted = resp.has_created = resp.has_deleted =
			resp.has_updated = 1;
		resp.upserted = res.upserted;
		resp.created = res.created;
		resp.deleted = res.deleted;
		resp.updated = res.updated;
		st = pack(j, &resp.base);
	}
out:
	rep_put(w, r);
	return st;
}

/* The reads: one struct for every kind, filled on the host thread. The
 * results own their memory, so they are converted after the call. */
struct rd {
	int method;
	const void *q;
	const char *filter;      /* JSON text or NULL */
	int linearizable;
	uint64_t need;           /* linearizable: the index to cover */
	int not_indexed;         /* the index did not cover `need` yet */
	uint32_t dim;
	vt_shard_results res;
	uint64_t next, count, applied;
	vt_shard_status ss;
	int state;
	uint64_t term;
	vt_errmsg err;
};

static int read_fn(vt_repl *r, struct raft *raft, void *ud)
{
	struct rd *x = ud;
	vt_shard *s = vt_repl_shard(r);
	if (!s)
		return vt_errmsg_set(&x->err, VT_ESHUTDOWN, "shard closing");
	uint64_t applied, indexed;
	vt_shard_progress(s, &applied, &indexed);
	x->applied = applied;
	x->dim = vt_shard_config_get(s)->dim;
	if (x->linearizable && !x->need)
		x->need = applied;
	/* A linearizable read waits for the index outside this thread. */
	x->not_indexed = x->need && indexed < x->need;
	if (x->not_indexed)
		return 0;
	vt_filter *f = NULL;
	int rc = 0;
	if (x->filter && *x->filter &&
	    (rc = vt_filter_parse(x->filter, strlen(x->filter),
				  vt_shard_schema(s), &f, &x->err)))
		return rc;
	switch (x->method) {
	case M_SEARCH: {
		const Vectron__Internal__V1__ShardSearchRequest *q = x->q;
		vt_shard_query sq;
		vt_shard_query_default(&sq, q->vector, q->k);
		if (q->n_vector != x->dim) {
			rc = vt_errmsg_set(&x->err, VT_EINVAL, "vector: %zu "
					   "values, the collection has %u",
					   q->n_vector, x->dim);
			break;
		}
		if (q->has_ef)
			sq.ef = q->ef;
		if (q->has_exact)
			sq.exact = q->exact;
		if (q->has_rescore)
			sq.rescore = q->rescore;
		if (q->has_oversampling)
			sq.oversampling = q->oversampling;
		sq.filter = f;
		sq.with_payload = q->has_with_payload ? q->with_payload : 0;
		sq.with_vector = q->has_with_vector ? q->with_vector : 0;
		rc = vt_shard_search(s, &sq, &x->res, &x->err);
		break;
	}
	case M_GET: {
		const Vectron__Internal__V1__ShardGetRequest *q = x->q;
		const char **ids = vt_calloc(q->n_ids + 1, sizeof *ids);
		uint32_t *lens = vt_calloc(q->n_ids + 1, sizeof *lens);
		if (!ids || !lens) {
			rc = vt_errmsg_set(&x->err, VT_ENOMEM, "out of memory");
		} else {
			for (size_t i = 0; i < q->n_ids; i++) {
				ids[i] = (const char *)q->ids[i].data;
				lens[i] = (uint32_t)q->ids[i].len;
			}
			rc = vt_shard_get(s, ids, lens, q->n_ids,
					  q->with_payload, q->with_vector,
					  &x->res, &x->err);
		}
		vt_free(ids);
		vt_free(lens);
		break;
	}
	case M_SCROLL: {
		const Vectron__Internal__V1__ShardScrollRequest *q = x->q;
		rc = vt_shard_scroll(s, q->from, q->has_limit ? q->limit : 100,
				     f, q->with_payload, q->with_vector,
				     &x->res, &x->next, &x->err);
		break;
	}
	case M_COUNT:
		rc = vt_shard_count(s, f, &x->count, &x->err);
		break;
	case M_STATUS:
		rc = vt_shard_status_get(s, &x->ss);
		x->state = raft_state(raft);
		x->term = raft->current_term;
		break;
	}
	vt_filter_free(f);
	return rc;
}

/* Runs a read: linearizable ones on the leader after it confirmed its
 * leadership, and once the index covers what was applied then. */
static int run_read(worker *w, struct replica *r, struct rd *x,
		    uint32_t wait_ms, vt_errmsg *err)
{
	int rc = x->linearizable
			 ? vt_repl_host_read(w->host, r->g, read_fn, x, err)
			 : vt_repl_host_call(w->host, r->g, read_fn, x);
	if (rc == VT_EBUSY && x->linearizable)
		return not_leader(w, r, err);
	uint64_t until = vt_clock_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	while (!rc && x->not_indexed) {
		if (vt_clock_mono_ns() >= until)
			return vt_errmsg_set(err, VT_ETIMEDOUT, "the index did "
					     "not reach command %" PRIu64
					     " within %u ms", x->need,
					     wait_ms);
		sleep_ms(2);
		rc = vt_repl_host_call(w->host, r->g, read_fn, x);
	}
	if (rc && !err->msg[0])
		vt_errmsg_set(err, rc, "%s", x->err.msg[0] ? x->err.msg
							   : vt_strerror(rc));
	return rc;
}

static int hits_reply(struct job *j, struct rd *x, int method)
{
	size_t n = x->res.n;
	Vectron__Internal__V1__Hit *h = vt_calloc(n + 1, sizeof *h);
	Vectron__Internal__V1__Hit **hp = vt_calloc(n + 1, sizeof *hp);
	char **pl = vt_calloc(n + 1, sizeof *pl);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!h || !hp || !pl) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const vt_shard_hit *s = &x->res.hits[i];
		Vectron__Internal__V1__Hit y = VECTRON__INTERNAL__V1__HIT__INIT;
		y.has_id = y.has_label = y.has_dist = y.has_score = 1;
		y.id.data = (uint8_t *)s->id;
		y.id.len = s->id_len;
		y.label = s->label;
		y.dist = s->dist;
		y.score = s->score;
		if (s->payload) {
			pl[i] = vt_malloc(s->payload_len + 1);
			if (!pl[i]) {
				vt_errmsg_set(&j->err, VT_ENOMEM, "out of "
					      "memory");
				goto out;
			}
			memcpy(pl[i], s->payload, s->payload_len);
			pl[i][s->payload_len] = '\0';
			y.payload = pl[i];
		}
		if (s->vec) {
			y.n_vector = x->dim;
			y.vector = (float *)s->vec;
		}
		h[i] = y;
		hp[i] = &h[i];
	}
	if (method == M_SEARCH) {
		Vectron__Internal__V1__ShardSearchResponse m =
			VECTRON__INTERNAL__V1__SHARD_SEARCH_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		m.has_applied = 1;
		m.applied = x->applied;
		st = pack(j, &m.base);
	} else if (method == M_GET) {
		Vectron__Internal__V1__ShardGetResponse m =
			VECTRON__INTERNAL__V1__SHARD_GET_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		st = pack(j, &m.base);
	} else {
		Vectron__Internal__V1__ShardScrollResponse m =
			VECTRON__INTERNAL__V1__SHARD_SCROLL_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		m.has_next = 1;
		m.next = x->next;
		st = pack(j, &m.base);
	}
out:
	for (size_t i = 0; pl && i < n; i++)
		vt_free(pl[i]);
	vt_free(pl);
	vt_free(h);
	vt_free(hp);
	return st;
}

static int h_read(struct job *j)
{
	worker *w = j->w;
	const ProtobufCMessage *m = vt_grpc_call_request(j->call);
	struct rd x;
	memset(&x, 0, sizeof x);
	x.method = j->method;
	x.q = m;
	int has_version = 0;
	uint32_t version = 0, wait_ms = 1000;
	const Vectron__Internal__V1__ShardRef *ref = NULL;
#define COMMON(T)                                                            \
	do {                                                                 \
		const T *q = (const T *)m;                                   \
		has_version = q->has_version;                                \
		version = q->version;                                        \
		ref = q->shard;                                              \
	} while (0)
	switch (j->method) {
	case M_SEARCH: {
		COMMON(Vectron__Internal__V1__ShardSearchRequest);
		const Vectron__Internal__V1__ShardSearchRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		if (q->has_wait_ms)
			wait_ms = q->wait_ms;
		break;
	}
	case M_GET: {
		COMMON(Vectron__Internal__V1__ShardGetRequest);
		x.linearizable = ((const Vectron__Internal__V1__ShardGetRequest *)
					  m)->linearizable;
		break;
	}
	case M_SCROLL: {
		COMMON(Vectron__Internal__V1__ShardScrollRequest);
		const Vectron__Internal__V1__ShardScrollRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		break;
	}
	case M_COUNT: {
		COMMON(Vectron__Internal__V1__ShardCountRequest);
		const Vectron__Internal__V1__ShardCountRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		break;
	}
	case M_STATUS:
		COMMON(Vectron__Internal__V1__ShardStatusRequest);
		break;
	}
#undef COMMON
	struct replica *r;
	int st = prologue(w, has_version, version, ref, &r, &j->err);
	if (st)
		return st;
	int rc = run_read(w, r, &x, wait_ms, &j->err);
	rep_put(w, r);
	if (rc) {
		st = vt_grpc_status_from_err(rc);
		if (rc == VT_EBUSY && strstr(j->err.msg, "not the leader"))
			st = VT_GRPC_FAILED_PRECONDITION;
		vt_shard_results_free(&x.res);
		return st;
	}
	switch (j->method) {
	case M_SEARCH:
	case M_GET:
	case M_SCROLL:
		st = hits_reply(j, &x, j->method);
		break;
	case M_COUNT: {
		Vectron__Internal__V1__ShardCountResponse c =
			VECTRON__INTERNAL__V1__SHARD_COUNT_RESPONSE__INIT;
		c.has_count = 1;
		c.count = x.count;
		st = pack(j, &c.base);
		break;
	}
	case M_STATUS: {
		Vectron__Internal__V1__ShardStatusResponse s =
			VECTRON__INTERNAL__V1__SHARD_STATUS_RESPONSE__INIT;
		s.has_applied = s.has_indexed = s.has_lag = s.has_points = 1;
		s.has_index_points = s.has_bytes_store = s.has_bytes_index = 1;
		s.has_bytes_snapshot = s.has_readonly = s.has_leader = 1;
		s.has_term = 1;
		s.applied = x.ss.applied;
		s.indexed = x.ss.indexed;
		s.lag = x.ss.lag;
		s.points = x.ss.points;
		s.index_points = x.ss.index_points;
		s.bytes_store = x.ss.bytes_store;
		s.bytes_index = x.ss.bytes_index;
		s.bytes_snapshot = x.ss.bytes_snapshot;
		s.readonly = x.ss.readonly;
		s.leader = x.state == RAFT_LEADER;
		s.term = x.term;
		st = pack(j, &s.base);
		break;
	}
	}
	vt_shard_results_free(&x.res);
	return st;
}

static int h_wstatus(struct job *j)
{
	worker *w = j->w;
	const Vectron__Internal__V1__WorkerStatusRequest *q =
		(const void *)vt_grpc_call_request(j->call);
	if (vt_worker_version_check(q->has_version ? q->version : 0, &j->err))
		return VT_GRPC_FAILED_PRECONDITION;
	size_t n;
	struct replica **v = rep_all(w, &n);
	Vectron__Internal__V1__ReplicaInfo *ri = vt_calloc(n + 1, sizeof *ri);
	Vectron__Internal__V1__ReplicaInfo **rp = vt_calloc(n + 1, sizeof *rp);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!v || !ri || !rp) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct replica *r = v[i];
		rstats s;
		rep_stats(w, r, &s);
		Vectron__Internal__V1__ReplicaInfo x =
			VECTRON__INTERNAL__V1__REPLICA_INFO__INIT;
		x.collection = r->collection;
		x.has_shard = x.has_group = x.has_epoch = x.has_raft_id = 1;
		x.has_role = x.has_term = x.has_applied = x.has_points = 1;
		x.shard = r->shard;
		x.group = r->group;
		pthread_mutex_lock(&w->mu);
		x.epoch = r->epoch;
		x.role = r->voter ? VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER
				  : VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER;
		pthread_mutex_unlock(&w->mu);
		x.raft_id = r->raft_id;
		x.state = (char *)s.state;
		x.term = s.term;
		x.applied = s.applied;
		x.points = s.points;
		ri[i] = x;
		rp[i] = &ri[i];
	}
	Vectron__Internal__V1__WorkerStatusResponse resp =
		VECTRON__INTERNAL__V1__WORKER_STATUS_RESPONSE__INIT;
	resp.has_id = resp.has_registered = resp.has_epoch = 1;
	resp.id = w->id;
	pthread_mutex_lock(&w->mu);
	resp.registered = w->registered;
	resp.epoch = w->epoch;
	pthread_mutex_unlock(&w->mu);
	resp.n_replicas = n;
	resp.replicas = rp;
	st = pack(j, &resp.base);
out:
	if (v)
		rep_put_all(w, v, n);
	vt_free(ri);
	vt_free(rp);
	return st;
}

static void job_work(vt_reqpool_job *p)
{
	struct job *j = (struct job *)p;
	switch (j->method) {
	case M_WRITE:
		j->status = h_write(j);
		break;
	case M_WSTATUS:
		j->status = h_wstatus(j);
		break;
	default:
		j->status = h_read(j);
	}
	if (j->status && !j->err.msg[0])
		vt_errmsg_set(&j->err, VT_EINTERNAL, "%s",
			      vt_grpc_status_name(j->status));
}

static void job_done(vt_reqpool_job *p)
{
	struct job *j = (struct job *)p;
	if (j->status)
		vt_grpc_call_finish(j->call, j->status, j->err.msg);
	else
		vt_grpc_call_reply_bytes(j->call, j->reply, j->reply_len);
	vt_free(j->reply);
	vt_free(j);
}

static void on_call(vt_grpc_call *call, void *ud)
{
	const struct route *rt = ud;
	atomic_fetch_add(&rt->w->requests, 1);
	struct job *j = vt_calloc(1, sizeof *j);
	if (!j) {
		vt_grpc_call_finish(call, VT_GRPC_RESOURCE_EXHAUSTED,
				    "out of memory");
		return;
	}
	j->w = rt->w;
	j->call = call;
	j->method = rt->method;
	j->work.work = job_work;
	j->work.done = job_done;
	if (vt_reqpool_submit(rt->w->pool, &j->work)) {
		vt_free(j);
		vt_grpc_call_finish(call, VT_GRPC_UNAVAILABLE, "shutting down");
	}
}

/* ---- lifecycle ------------------------------------------------------------ */

static struct route routes[M_N];

static void grpc_closed(void *ud)
{
	worker *w = ud;
	w->grpc = NULL;
	VT_LOG(VT_LOG_INFO, MOD, "gRPC server stopped");
}

/* Loop thread: stop heartbeating and reconciling, close the PD clients
 * (their calls end CANCELLED, which wakes the beat thread) and the
 * server; uv_run then returns and the rest closes in vt_cli_worker. */
static void begin_stop(worker *w)
{
	if (atomic_exchange(&w->stopping, 1))
		return;
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_lock(&w->pdmu);
	w->pd_stopped = 1;
	struct pdcall *c = w->pd_head;
	w->pd_head = w->pd_tail = NULL;
	pthread_mutex_unlock(&w->pdmu);
	for (; c; c = c->next)
		pd_finish(w, c, VT_GRPC_CANCELLED, "shutting down");
	for (int i = 0; i < MAX_PD; i++)
		if (w->pd_cli[i]) {
			vt_grpc_client_close(w->pd_cli[i]);
			w->pd_cli[i] = NULL;
		}
	if (w->handles) {
		uv_close((uv_handle_t *)&w->pd_async, NULL);
		uv_close((uv_handle_t *)&w->sigterm, NULL);
		uv_close((uv_handle_t *)&w->sigint, NULL);
	}
	if (w->grpc)
		vt_grpc_server_close(w->grpc,
				     (uint64_t)w->cfg.shutdown_grace_ms,
				     grpc_closed, w);
}

static void on_signal(uv_signal_t *h, int sig)
{
	worker *w = h->data;
	VT_LOG(VT_LOG_INFO, MOD, "%s: stopping (replicas are detached, their "
	       "data kept)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	begin_stop(w);
}

static int start_server(worker *w, vt_errmsg *err)
{
	static const struct {
		const char *name;
		const ProtobufCMessageDescriptor *in;
	} m[M_N] = {
		{"ShardWrite", &vectron__internal__v1__shard_write_request__descriptor},
		{"ShardSearch", &vectron__internal__v1__shard_search_request__descriptor},
		{"ShardGet", &vectron__internal__v1__shard_get_request__descriptor},
		{"ShardScroll", &vectron__internal__v1__shard_scroll_request__descriptor},
		{"ShardCount", &vectron__internal__v1__shard_count_request__descriptor},
		{"ShardStatus", &vectron__internal__v1__shard_status_request__descriptor},
		{"WorkerStatus", &vectron__internal__v1__worker_status_request__descriptor},
	};
	int rc = vt_grpc_server_new(w->loop, NULL, &w->grpc);
	if (rc)
		return vt_errmsg_set(err, rc, "gRPC: %s", vt_strerror(rc));
	for (int i = 0; i < M_N; i++) {
		char path[128];
		snprintf(path, sizeof path, WORKER_SVC "%s", m[i].name);
		routes[i] = (struct route){w, i};
		vt_grpc_method gm = {path, VT_GRPC_UNARY, m[i].in, on_call,
				     &routes[i]};
		if ((rc = vt_grpc_server_add_method(w->grpc, &gm)))
			return vt_errmsg_set(err, rc, "gRPC method %s",
					     m[i].name);
	}
	char host[256];
	int port;
	if (split_addr(w->cfg.listen, host, sizeof host, &port))
		return vt_errmsg_set(err, VT_EINVAL, "listen: \"%s\" is not "
				     "host:port", w->cfg.listen);
	if ((rc = vt_grpc_server_listen(w->grpc, host, port, err)))
		return vt_errmsg_prefix(err, rc, "gRPC on %s", w->cfg.listen);
	if (w->cfg.advertise[0])
		snprintf(w->addr, sizeof w->addr, "%s", w->cfg.advertise);
	else
		snprintf(w->addr, sizeof w->addr, "%s:%d", host,
			 vt_grpc_server_port(w->grpc));
	return 0;
}

static int parse_pd(worker *w, vt_errmsg *err)
{
	char list[1024];
	snprintf(list, sizeof list, "%s", w->cfg.pd);
	char *save = NULL;
	for (char *t = strtok_r(list, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		char host[128];
		int port;
		if (split_addr(t, host, sizeof host, &port) || w->n_pd == MAX_PD)
			return vt_errmsg_set(err, VT_EINVAL, "pd: \"%s\" is "
					     "not host:port (or more than %d)",
					     t, MAX_PD);
		snprintf(w->pd_addr[w->n_pd++], 128, "%s", t);
	}
	if (!w->n_pd)
		return vt_errmsg_set(err, VT_EINVAL, "pd: no address");
	return 0;
}

static int start(worker *w, vt_errmsg *err)
{
	int rc;
	if (strcmp(w->cfg.role, "normal") && strcmp(w->cfg.role, "search_only"))
		return vt_errmsg_set(err, VT_EINVAL, "role: \"%s\": normal or "
				     "search_only", w->cfg.role);
	w->search_only = !strcmp(w->cfg.role, "search_only");
	if ((rc = parse_pd(w, err)))
		return rc;
	char gdir[1100];
	snprintf(gdir, sizeof gdir, "%s/groups", w->cfg.data_dir);
	if ((rc = mkdir_p(w->cfg.data_dir)) || (rc = mkdir_p(gdir)))
		return vt_errmsg_set(err, rc, "%s: %s", w->cfg.data_dir,
				     vt_strerror(rc));
	if ((rc = worker_id_load(w, err)))
		return rc;
	vt_repl_host_opts ho;
	vt_repl_host_opts_default(&ho);
	ho.bind = w->cfg.raft_listen;
	ho.tune.election_timeout_ms = (unsigned)w->cfg.election_ms;
	ho.tune.heartbeat_timeout_ms = (unsigned)w->cfg.election_ms / 10;
	if (!ho.tune.heartbeat_timeout_ms)
		ho.tune.heartbeat_timeout_ms = 1;
	if ((rc = vt_repl_host_open(&ho, &w->host, err)))
		return vt_errmsg_prefix(err, rc, "raft on %s",
					w->cfg.raft_listen);
	vt_shard_opts_default(&w->sopts);
	/* The raft log is durable and replayed: the store need not fsync
	 * each commit (docs/shard.md §4, "What replication changes"). */
	w->sopts.store_sync = VT_STORE_SYNC_META;
	w->sopts.queue_max = QUEUE_MAX;
	w->sopts.queue_wait_ms = QUEUE_WAIT_MS;
	reopen_all(w);
	unsigned threads = w->cfg.threads ? (unsigned)w->cfg.threads
					  : vt_cpu_count();
	if ((rc = vt_reqpool_create(w->loop, threads, 0, 0, &w->pool)))
		return vt_errmsg_set(err, rc, "request workers: %s",
				     vt_strerror(rc));
	if ((rc = start_server(w, err)))
		return rc;
	uv_async_init(w->loop, &w->pd_async, pd_on_async);
	w->pd_async.data = w;
	uv_signal_init(w->loop, &w->sigterm);
	uv_signal_init(w->loop, &w->sigint);
	w->sigterm.data = w->sigint.data = w;
	uv_signal_start(&w->sigterm, on_signal, SIGTERM);
	uv_signal_start(&w->sigint, on_signal, SIGINT);
	w->handles = 1;
	if (pthread_create(&w->beat_thr, NULL, beat_main, w))
		return vt_errmsg_set(err, VT_EIO, "beat thread");
	w->beat_started = 1;
	if (pthread_create(&w->rec_thr, NULL, rec_main, w))
		return vt_errmsg_set(err, VT_EIO, "reconciler thread");
	w->rec_started = 1;
	/* One line tests and scripts can wait for, with the real ports. */
	printf("vectron worker %" PRIu64 ": gRPC on %s, raft on %s, data in "
	       "%s\n", w->id, w->addr, vt_repl_host_address(w->host),
	       w->cfg.data_dir);
	fflush(stdout);
	return 0;
}

int vt_cli_worker(int argc, char **argv)
{
	worker *w = vt_calloc(1, sizeof *w);
	if (!w)
		return 1;
	int r = vt_settings_load(&settings, &w->cfg, argc, argv);
	if (r) {
		vt_free(w);
		return r > 0 ? 0 : 2;
	}
	int lvl = vt_log_level_parse(w->cfg.log_level);
	if (lvl < 0) {
		fprintf(stderr, "vectron worker: log_level: unknown \"%s\"\n",
			w->cfg.log_level);
		vt_free(w);
		return 2;
	}
	vt_log_set_level(lvl);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->pdmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->pdcv, NULL);
	w->loop = uv_default_loop();
	vt_errmsg err = {{0}};
	int rc = start(w, &err);
	if (rc) {
		fprintf(stderr, "vectron worker: %s\n", err.msg);
		begin_stop(w);
	}
	uv_run(w->loop, UV_RUN_DEFAULT);
	atomic_store(&w->stopping, 1);
	if (w->beat_started)
		pthread_join(w->beat_thr, NULL);
	/* The reconciler may wait for a membership change that cannot
	 * commit (peers gone): give it a while, then close the host, which
	 * fails what it waits for. */
	int rec_joined = !w->rec_started;
	if (!rec_joined) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		rec_joined = !pthread_timedjoin_np(w->rec_thr, NULL, &ts);
	}
	vt_reqpool_destroy(w->pool); /* runs the loop until requests end */
	if (!rec_joined) {
		VT_LOG(VT_LOG_WARN, MOD, "the reconciler is still waiting for "
		       "a group: closing the Raft host under it");
		vt_repl_host_close(w->host);
		pthread_join(w->rec_thr, NULL);
	}
	/* Detach every replica: their data stays for the next start. */
	for (struct replica *x = w->reps, *nx; x; x = nx) {
		nx = x->next;
		vt_repl_host_detach(w->host, x->g);
		rep_free(x);
	}
	w->reps = NULL;
	if (w->host) {
		vt_repl_host_close(w->host);
		vt_repl_host_free(w->host);
	}
	if (w->full_new)
		vt_grpc_msg_free(&w->full_new->base);
	uv_run(w->loop, UV_RUN_DEFAULT); /* client and handle closes */
	uv_loop_close(w->loop);
	VT_LOG(VT_LOG_INFO, MOD, "stopped");
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->pdmu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->pdcv);
	vt_free(w);
	return rc ? 1 : 0;
}
