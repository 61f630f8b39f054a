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
 * Here: settings, the replica table, attach/reopen/destroy, the
 * reconciler and the lifecycle; the PD client and the beat thread are in
 * worker_pd.c, the internal API in worker_api.c (shared: worker_int.h).
 * Decisions are lib/worker/plan.h's; replica meta files lib/worker/meta.h.
 * docs/worker.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_timedjoin_np */
#endif
#include "worker.h"
#include "worker_int.h"

#include <dirent.h>
#include <sys/random.h>

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
	S(pd, "VECTRON_WORKER_PD", "127.0.0.1:7000",
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
/* ---- small helpers ------------------------------------------------------- */

int vt__worker_split_addr(const char *a, char *host, size_t cap, int *port)
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

/* Sleeps up to `ms` (w->mu held), waking early on stop or a kick; other
 * broadcasts of w->cv (heartbeat answers for the reconciler) do not end
 * it. */
void vt__worker_nap(worker *w, unsigned ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	while (!atomic_load(&w->stopping) && !w->kicked)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
			break;
}

void vt__worker_sleep_ms(unsigned ms)
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
struct replica *vt__wrep_get(worker *w, uint64_t group)
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

void vt__wrep_put(worker *w, struct replica *r)
{
	pthread_mutex_lock(&w->mu);
	/* only an unlink waits for the last reference: a wake-up on every
	 * put would also wake the beat and reconciler threads (w->cv) on
	 * every request */
	if (!--r->refs && r->gone)
		pthread_cond_broadcast(&w->refs_cv);
	pthread_mutex_unlock(&w->mu);
}

/* Every hosted replica, referenced: the caller puts each and frees the
 * array. */
struct replica **vt__wrep_all(worker *w, size_t *n)
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

void vt__wrep_put_all(worker *w, struct replica **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vt__wrep_put(w, v[i]);
	vt_free(v);
}

/* Takes the replica out of the table once nobody uses it. */
static void rep_unlink(worker *w, struct replica *r)
{
	pthread_mutex_lock(&w->mu);
	r->gone = 1;
	while (r->refs)
		pthread_cond_wait(&w->refs_cv, &w->mu);
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

static int stats_fn(vt_repl *r, struct raft *raft, void *ud)
{
	vt__wrep_stats_t *st = ud;
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
	if (st->caught_up)
		atomic_store(&st->rep->readable, 1);
	vt_shard *s = vt_repl_shard(r);
	vt_shard_status ss = {0};
	if (s && !vt_shard_status_get(s, &ss))
		st->points = ss.points;
	(void)raft;
	return 0;
}

int vt__wrep_stats(worker *w, struct replica *r, vt__wrep_stats_t *st)
{
	memset(st, 0, sizeof *st);
	st->rep = r;
	st->state = "?";
	return vt_repl_host_call(w->host, r->g, stats_fn, st);
}

/* The leader's gRPC address for a "not the leader" answer, from the PD's
 * peer list (raft ids are the group's; the list maps them to workers). */
int vt__wrep_not_leader(worker *w, struct replica *r, vt_errmsg *err)
{
	vt__wrep_stats_t st;
	const char *addr = NULL;
	char buf[128];
	if (!vt__wrep_stats(w, r, &st) && st.leader_id && st.leader_id != r->raft_id) {
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
	int readable = !m->join;
	vt_shard *sh = vt_repl_host_shard_get(r->g);
	if (sh) {
		uint64_t applied, indexed;
		vt_shard_progress(sh, &applied, &indexed);
		readable |= applied > 0;
		vt_repl_host_shard_put(r->g);
	}
	atomic_init(&r->readable, readable);
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

/* A replica to host. Its meta file is written first (a crash then
 * reopens it) and removed again if the open fails, unless it was there
 * before: a replica that failed to reopen keeps the record of how it
 * started (and its data), and is retried as it is. A leftover of another
 * raft id in the same group (an old membership the PD no longer wants
 * here) is deleted first. */
static int attach_new(worker *w, const Vectron__Internal__V1__Assignment *a,
		      vt_errmsg *err)
{
	char gdir[1200], path[1200];
	group_dir(w, a->group, NULL, gdir, sizeof gdir);
	group_dir(w, a->group, "replica.json", path, sizeof path);
	vt_worker_meta m;
	vt_errmsg e2 = {{0}};
	int rc;
	if (!vt_worker_meta_read(path, &m, &e2)) {
		if (m.raft_id == a->raft_id) {
			rc = attach_meta(w, &m, err);
			vt_worker_meta_free(&m);
			return rc;
		}
		VT_LOG(VT_LOG_WARN, MOD, "group %" PRIu64 ": the data here is "
		       "raft id %" PRIu64 ", the PD assigns raft id %" PRIu64
		       ": deleting the old replica", a->group, m.raft_id,
		       a->raft_id);
		vt_worker_meta_free(&m);
		unlink(path);
		remove_leftover(w, a->group);
	}
	meta_of(a, &m);
	if (!m.join && !m.n_peers)
		return vt_errmsg_set(err, VT_EINVAL, "bootstrap without "
				     "voters among its peers (rf %u)", a->rf);
	if ((rc = mkdir_p(gdir)))
		return vt_errmsg_set(err, rc, "%s: %s", gdir, vt_strerror(rc));
	if ((rc = vt_worker_meta_write(path, &m, err)))
		return rc;
	if ((rc = attach_meta(w, &m, err)))
		unlink(path); /* ours: the next try starts over */
	return rc;
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

/* A replica about to be destroyed that leads its group, and that the
 * PD's last peer list had already left out (a move: the group goes on),
 * hands leadership to another voter first (raft picks), so the group
 * does not wait an election timeout for a leader that left. Not when the
 * list still named it: the whole group is likely going (a dropped
 * collection), and a transfer would only delay that. Best effort: a
 * failure only costs that election. */
static void lead_transfer(worker *w, struct replica *r);

static void handoff(worker *w, struct replica *r)
{
	int listed = 0;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < r->n_peers; i++)
		listed |= r->peers[i].raft_id == r->raft_id;
	pthread_mutex_unlock(&w->mu);
	if (listed)
		return;
	lead_transfer(w, r);
}

/* If this replica leads its group and another voter exists, transfers
 * leadership (raft picks the voter). Best effort. */
static void lead_transfer(worker *w, struct replica *r)
{
	struct confcopy c;
	if (vt_repl_host_call(w->host, r->g, conf_fn, &c) || !c.leader)
		return;
	int others = 0;
	for (size_t i = 0; i < c.n; i++)
		others += c.m[i].id != c.self && c.m[i].role == RAFT_VOTER;
	if (!others)
		return;
	vt_errmsg err = {{0}};
	int rc = vt_repl_host_change(w->host, r->g, VT_REPL_CHANGE_TRANSFER, 0,
				     NULL, 0, &err);
	VT_LOG(rc ? VT_LOG_WARN : VT_LOG_INFO, MOD, "group %" PRIu64 ": "
	       "leadership handed over before removal: %s", r->group,
	       rc ? err.msg : "done");
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

/* Attaches that failed, retried with backoff (1 s doubling to 60 s) so
 * a replica that cannot open is not retried and logged every round.
 * Reconciler thread only. */
static struct {
	uint64_t group, next_ns;
	unsigned ms;
} failed[64];

static int attach_due(uint64_t group)
{
	for (size_t i = 0; i < 64; i++)
		if (failed[i].group == group)
			return vt_clock_mono_ns() >= failed[i].next_ns;
	return 1;
}

static void attach_result(uint64_t group, int rc)
{
	size_t slot = 64;
	for (size_t i = 0; i < 64; i++)
		if (failed[i].group == group || (slot == 64 && !failed[i].group))
			slot = i;
	if (slot == 64)
		return; /* table full: retried every round */
	if (!rc) {
		failed[slot].group = 0;
		return;
	}
	unsigned ms = failed[slot].group == group ? failed[slot].ms * 2 : 1000;
	failed[slot].group = group;
	failed[slot].ms = ms > 60000 ? 60000 : ms;
	failed[slot].next_ns = vt_clock_mono_ns() +
			       (uint64_t)failed[slot].ms * 1000000ull;
}

/* Whether a replica no longer assigned may be deleted now. The PD writes
 * a move (the replica's removal) in its metadata before the group's
 * leader changes the Raft configuration; deleting a replica that is still
 * a voter could leave the group without a majority (one voter dead, one
 * deleted). So a replica of a group that goes on stays while a leader
 * still contacts it (a leader replicates only to its configuration's
 * members), hands leadership over if it leads, and goes once it has had
 * no leader for three election timeouts. A dropped collection's replicas
 * go at once; any replica goes after RELEASE_CAP_MS. */
#define RELEASE_CAP_MS 60000u

static int release_due(worker *w, struct replica *r)
{
	uint64_t now = vt_clock_mono_ns() / 1000000u;
	if (!r->unassigned_ms) {
		r->unassigned_ms = now;
		r->group_alive = -1;
		VT_LOG(VT_LOG_INFO, MOD, "group %" PRIu64 " (%s shard %u) no "
		       "longer assigned: deleted once its group has let it go",
		       r->group, r->collection, r->shard);
	}
	if (now - r->unassigned_ms >= RELEASE_CAP_MS)
		return 1;
	if (r->group_alive < 0)
		r->group_alive = vt__worker_group_alive(w, r->collection,
							r->shard, r->group);
	if (r->group_alive == 0)
		return 1; /* the whole group goes */
	vt__wrep_stats_t st;
	if (vt__wrep_stats(w, r, &st))
		return 1; /* closing anyway */
	if (st.leader) {
		lead_transfer(w, r);
		r->leaderless_ms = 0;
		return 0;
	}
	if (st.leader_id) {
		r->leaderless_ms = 0;
		return 0;
	}
	if (!r->leaderless_ms) {
		r->leaderless_ms = now;
		VT_LOG(VT_LOG_INFO, MOD, "group %" PRIu64 ": no longer assigned; "
		       "kept until the group has let it go (no leader for %u ms)",
		       r->group, 3u * (unsigned)w->cfg.election_ms);
	}
	return now - r->leaderless_ms >= 3u * (uint64_t)w->cfg.election_ms;
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
		struct replica *r = vt__wrep_get(w, a->group);
		if (r && r->raft_id != a->raft_id) {
			/* The group took this worker back under a new raft id
			 * (a replica removed, then added again before we saw
			 * the list without it): the old one is out of the
			 * group's configuration and can never rejoin as
			 * itself. Delete it; the new one starts empty. */
			char why[160];
			snprintf(why, sizeof why, "re-assigned as raft id %"
				 PRIu64 " (this was %" PRIu64 ")", a->raft_id,
				 r->raft_id);
			vt__wrep_put(w, r);
			destroy_replica(w, r, why);
			r = NULL;
		}
		if (!r) {
			vt_errmsg err = {{0}};
			if (!attach_due(a->group))
				continue;
			int rc = attach_new(w, a, &err);
			attach_result(a->group, rc);
			if (rc) {
				VT_LOG(VT_LOG_ERROR, MOD, "group %" PRIu64 " (%s "
				       "shard %u): attach failed (retried with "
				       "backoff): %s", a->group, a->collection,
				       a->shard, err.msg);
				continue;
			}
			VT_LOG(VT_LOG_INFO, MOD, "attached %s shard %u (group %"
			       PRIu64 ", raft id %" PRIu64 ", %s, %s)",
			       a->collection, a->shard, a->group, a->raft_id,
			       a->role ? "non-voter" : "voter",
			       a->bootstrap ? "bootstrap" : "joins");
			if (!(r = vt__wrep_get(w, a->group)))
				continue;
		}
		replica_update(w, r, a);
		vt__wrep_put(w, r);
	}
	/* destroy what is no longer assigned */
	size_t n;
	struct replica **v = vt__wrep_all(w, &n);
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
	vt__wrep_put_all(w, v, n);
	char why[128];
	snprintf(why, sizeof why, "no longer assigned to this worker "
		 "(assignments epoch %" PRIu64 ")", cur->epoch);
	for (size_t i = 0; gone && i < n_des; i++) {
		if (!release_due(w, gone[i]))
			continue;
		handoff(w, gone[i]);
		destroy_replica(w, gone[i], why);
	}
	vt_free(gone);
	vt_free(hosted);
	vt_free(assigned);
	vt_free(att);
	vt_free(des);
}

static void elect(worker *w, const Vectron__Internal__V1__Elect *e)
{
	struct replica *r = vt__wrep_get(w, e->group);
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
	vt__wrep_put(w, r);
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
		struct replica **v = vt__wrep_all(w, &n);
		for (size_t i = 0; v && i < n && !atomic_load(&w->stopping);
		     i++)
			membership_step(w, v[i]);
		if (v)
			vt__wrep_put_all(w, v, n);
	}
	if (cur)
		vt_grpc_msg_free(&cur->base);
	return NULL;
}
/* ---- lifecycle ------------------------------------------------------------ */

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
		vt__worker_pd_finish(w, c, VT_GRPC_CANCELLED, "shutting down");
	for (int i = 0; i < MAX_PD; i++)
		if (w->pd_cli[i]) {
			vt_grpc_client_close(w->pd_cli[i]);
			w->pd_cli[i] = NULL;
		}
	if (w->handles) {
		uv_close((uv_handle_t *)&w->pd_async, NULL);
		if (!w->embedded) {
			uv_close((uv_handle_t *)&w->sigterm, NULL);
			uv_close((uv_handle_t *)&w->sigint, NULL);
		}
		w->handles = 0;
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

static int parse_pd(worker *w, vt_errmsg *err)
{
	char list[1024];
	snprintf(list, sizeof list, "%s", w->cfg.pd);
	char *save = NULL;
	for (char *t = strtok_r(list, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		char host[128];
		int port;
		if (vt__worker_split_addr(t, host, sizeof host, &port) || w->n_pd == MAX_PD)
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
	char gdir[1100];
	snprintf(gdir, sizeof gdir, "%s/groups", w->cfg.data_dir);
	if ((rc = mkdir_p(w->cfg.data_dir)) || (rc = mkdir_p(gdir)))
		return vt_errmsg_set(err, rc, "%s: %s", w->cfg.data_dir,
				     vt_strerror(rc));
	if ((rc = worker_id_load(w, err)))
		return rc;
	if (!w->host) {
		vt_repl_host_opts ho;
		vt_repl_host_opts_default(&ho);
		ho.bind = w->cfg.raft_listen;
		ho.tune.election_timeout_ms = (unsigned)w->cfg.election_ms;
		ho.tune.heartbeat_timeout_ms =
			(unsigned)w->cfg.election_ms / 10;
		if (!ho.tune.heartbeat_timeout_ms)
			ho.tune.heartbeat_timeout_ms = 1;
		if ((rc = vt_repl_host_open(&ho, &w->host, err)))
			return vt_errmsg_prefix(err, rc, "raft on %s",
						w->cfg.raft_listen);
	}
	if (!w->embedded) {
		vt_shard_opts_default(&w->sopts);
		/* The raft log is durable and replayed: the store need
		 * not fsync each commit (docs/shard.md §4, "What
		 * replication changes"). */
		w->sopts.store_sync = VT_STORE_SYNC_META;
		w->sopts.queue_max = QUEUE_MAX;
		w->sopts.queue_wait_ms = QUEUE_WAIT_MS;
	}
	reopen_all(w);
	unsigned threads = w->cfg.threads ? (unsigned)w->cfg.threads
					  : vt_cpu_count();
	if ((rc = vt_reqpool_create(w->loop, threads, 0, 0, &w->pool)))
		return vt_errmsg_set(err, rc, "request workers: %s",
				     vt_strerror(rc));
	if ((rc = vt__worker_api_start(w, err)))
		return rc;
	if (!w->cfg.pd[0])
		snprintf(w->cfg.pd, sizeof w->cfg.pd, "%s", w->addr);
	if ((rc = parse_pd(w, err)))
		return rc;
	uv_async_init(w->loop, &w->pd_async, vt__worker_pd_async);
	w->pd_async.data = w;
	if (!w->embedded) {
		uv_signal_init(w->loop, &w->sigterm);
		uv_signal_init(w->loop, &w->sigint);
		w->sigterm.data = w->sigint.data = w;
		uv_signal_start(&w->sigterm, on_signal, SIGTERM);
		uv_signal_start(&w->sigint, on_signal, SIGINT);
	}
	w->handles = 1;
	return 0;
}

/* The beat and reconciler threads: the PD hears from this worker. */
static int run_threads(worker *w, vt_errmsg *err)
{
	if (pthread_create(&w->beat_thr, NULL, vt__worker_beat, w))
		return vt_errmsg_set(err, VT_EIO, "beat thread");
	w->beat_started = 1;
	if (pthread_create(&w->rec_thr, NULL, rec_main, w))
		return vt_errmsg_set(err, VT_EIO, "reconciler thread");
	w->rec_started = 1;
	return 0;
}

static worker *worker_new(void)
{
	worker *w = vt_calloc(1, sizeof *w);
	if (!w)
		return NULL;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->pdmu, NULL);
	pthread_mutex_init(&w->pdreq, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->refs_cv, NULL);
	pthread_cond_init(&w->pdcv, NULL);
	return w;
}

/* After the loop ended: joins the threads, detaches every replica (their
 * data stays for the next start), closes what is the worker's. */
static void worker_free(worker *w)
{
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
	/* An index snapshot per replica first, so the next start loads the
	 * graph instead of rebuilding it (a rebuilt HNSW graph answers
	 * approximate searches a little differently). */
	if (w->reps)
		VT_LOG(VT_LOG_INFO, MOD, "saving index snapshots");
	for (struct replica *x = w->reps; x; x = x->next) {
		vt_shard *sh = vt_repl_host_shard_get(x->g);
		vt_errmsg e = {{0}};
		if (sh && vt_shard_checkpoint(sh, &e))
			VT_LOG(VT_LOG_WARN, MOD, "group %" PRIu64 ": index "
			       "snapshot: %s (the next start replays the log)",
			       x->group, e.msg);
		if (sh)
			vt_repl_host_shard_put(x->g);
	}
	for (struct replica *x = w->reps, *nx; x; x = nx) {
		nx = x->next;
		vt_repl_host_detach(w->host, x->g);
		rep_free(x);
	}
	w->reps = NULL;
	if (w->host && !w->embedded) {
		vt_repl_host_close(w->host);
		vt_repl_host_free(w->host);
	}
	if (w->full_new)
		vt_grpc_msg_free(&w->full_new->base);
	if (w->loop) {
		uv_run(w->loop, UV_RUN_DEFAULT); /* client, handle closes */
		VT_LOG(VT_LOG_INFO, MOD, "stopped");
	}
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->pdmu);
	pthread_mutex_destroy(&w->pdreq);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->refs_cv);
	pthread_cond_destroy(&w->pdcv);
	vt_free(w);
}

int vt_cli_worker(int argc, char **argv)
{
	worker *w = worker_new();
	if (!w)
		return 1;
	int r = vt_settings_load(&settings, &w->cfg, argc, argv);
	int lvl = r ? 0 : vt_log_level_parse(w->cfg.log_level);
	if (r || lvl < 0) {
		if (lvl < 0)
			fprintf(stderr, "vectron worker: log_level: unknown "
				"\"%s\"\n", w->cfg.log_level);
		worker_free(w);
		return r > 0 ? 0 : 2;
	}
	vt_log_set_level(lvl);
	signal(SIGPIPE, SIG_IGN);
	w->loop = uv_default_loop();
	vt_errmsg err = {{0}};
	int rc = start(w, &err);
	if (!rc)
		rc = run_threads(w, &err);
	if (rc) {
		fprintf(stderr, "vectron worker: %s\n", err.msg);
		begin_stop(w);
	} else {
		/* One line tests and scripts can wait for, with the real
		 * ports. */
		printf("vectron worker %" PRIu64 ": gRPC on %s, raft on %s, "
		       "data in %s\n", w->id, w->addr,
		       vt_repl_host_address(w->host), w->cfg.data_dir);
		fflush(stdout);
	}
	uv_run(w->loop, UV_RUN_DEFAULT);
	int removed = atomic_load(&w->removed);
	uv_loop_t *loop = w->loop;
	worker_free(w);
	uv_loop_close(loop);
	return rc || removed ? 1 : 0;
}

/* ---- as a role of another process (worker.h) -------------------------------- */

int vt_worker_role_start(const vt_worker_role_opts *o, vt_worker_role **out,
			 vt_errmsg *err)
{
	worker *w = *out = worker_new();
	if (!w)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	/* the daemon's defaults, then what the process decides */
	if (vt_settings_defaults(&settings, &w->cfg))
		return vt_errmsg_set(err, VT_EINVAL, "worker defaults");
	w->embedded = 1;
	w->loop = o->loop;
	w->host = o->host;
	snprintf(w->cfg.data_dir, sizeof w->cfg.data_dir, "%s", o->data_dir);
	snprintf(w->cfg.listen, sizeof w->cfg.listen, "%s", o->listen);
	snprintf(w->cfg.pd, sizeof w->cfg.pd, "%s", o->pd ? o->pd : "");
	if (o->heartbeat_ms)
		w->cfg.heartbeat_ms = o->heartbeat_ms;
	w->cfg.threads = (int)o->threads;
	w->cfg.shutdown_grace_ms = o->shutdown_grace_ms;
	vt_shard_opts_default(&w->sopts);
	if (o->shard)
		w->sopts = *o->shard;
	return start(w, err);
}

vt_grpc_server *vt_worker_role_grpc(vt_worker_role *w) { return w->grpc; }

const char *vt_worker_role_addr(const vt_worker_role *w) { return w->addr; }

int vt_worker_role_run(vt_worker_role *w, vt_errmsg *err)
{
	return run_threads(w, err);
}

int vt_worker_role_registered(vt_worker_role *w)
{
	pthread_mutex_lock(&w->mu);
	int r = w->registered;
	pthread_mutex_unlock(&w->mu);
	return r;
}

void vt_worker_role_kick(vt_worker_role *w)
{
	pthread_mutex_lock(&w->mu);
	w->kicked = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void vt_worker_role_stop(vt_worker_role *w) { begin_stop(w); }

void vt_worker_role_free(vt_worker_role *w)
{
	if (w)
		worker_free(w);
}
