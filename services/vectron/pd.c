/* pd.c: `vectron pd` (pd.h): settings, the PD Raft group on a vt_repl_host,
 * the PlacementDriver gRPC methods and the reconciliation timer. Handlers
 * check what needs no metadata on the loop, then do the rest on libuv's
 * thread pool (host calls block) and answer from the after-work callback.
 * The pure parts (messages, soft state, addresses) are lib/pdsvc. */
#include "pd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "coll/coll.h"
#include "pd/cmd.h"
#include "pd/meta.h"
#include "pd/pd_sm.h"
#include "pd/place.h"
#include "pd/plan.h"
#include "pdsvc/pdsvc.h"
#include "repl/host.h"
#include "rpc/grpc.h"
#include "rpc/http.h"
#include "settings.h"

#define MOD "pd"
#define SERVICE "/vectron.internal.v1.PlacementDriver/"
#define MAX_PEERS VT_PDSVC_MAX_PEERS
#define MAX_PLAN 64
#define PD_GROUP VT_PD_RAFT_GROUP
/* A new leader has heard no worker yet; after this long every live worker
 * has heartbeated to it (the default period is 500 ms) */
#define LEAD_SETTLE_MS 2000

/* ---- settings ------------------------------------------------------------- */

typedef struct pd_config {
	long long node_id;
	char data_dir[1024];
	char listen[256];
	char raft_listen[256];
	char peers[4096];
	int heartbeat_grace_ms;
	int reconcile_ms;
	int max_actions;
	int max_moves;
	int shutdown_grace_ms;
	char metrics_listen[256];
	char log_level[16];
} pd_config;

#define S(n, e, d, h) VT_SET_S(pd_config, n, e, d, h)
#define I(n, e, k, d, lo, hi, h) VT_SET_N(pd_config, n, e, k, d, lo, hi, h)

static const vt_setting table[] = {
	I(node_id, "VECTRON_PD_NODE_ID", VT_SET_LONG, "1", 1, 1ll << 40,
	  "this node's id in the PD group (its Raft id); one of `peers`"),
	S(data_dir, "VECTRON_PD_DATA_DIR", "./data-pd",
	  "directory of the PD's Raft log and snapshots (<data_dir>/pd)"),
	S(listen, "VECTRON_PD_LISTEN", "127.0.0.1:7000",
	  "host:port of the internal gRPC service (workers, gateways)"),
	S(raft_listen, "VECTRON_PD_RAFT_LISTEN", "127.0.0.1:7100",
	  "host:port of the PD group's Raft transport"),
	S(peers, "VECTRON_PD_PEERS", "",
	  "every PD node, itself included: id=grpc_host:port/raft_host:port,"
	  "...; empty = a one-node PD"),
	I(heartbeat_grace_ms, "VECTRON_PD_HEARTBEAT_GRACE_MS", VT_SET_INT,
	  "5000", 100, 3600000,
	  "a worker not heard from this long is dead (its replicas move)"),
	I(reconcile_ms, "VECTRON_PD_RECONCILE_MS", VT_SET_INT, "1000", 10,
	  3600000, "the leader's reconciliation loop runs this often"),
	I(max_actions, "VECTRON_PD_MAX_ACTIONS", VT_SET_INT, "4", 1, MAX_PLAN,
	  "actions per reconciliation pass at most"),
	I(max_moves, "VECTRON_PD_MAX_MOVES", VT_SET_INT, "1", 1, 64,
	  "rebalancing moves in flight at most"),
	I(shutdown_grace_ms, "VECTRON_PD_SHUTDOWN_GRACE_MS", VT_SET_INT,
	  "2000", 0, 600000,
	  "on SIGTERM, how long calls in flight may finish"),
	S(metrics_listen, "VECTRON_PD_METRICS_LISTEN", "",
	  "host:port of GET /metrics (Prometheus text: the metadata's state "
	  "and the reconciliation's actions); empty = none"),
	S(log_level, "VECTRON_PD_LOG_LEVEL", "info", "debug, info, warn, error"),
};

static const vt_settings settings = {
	"pd",
	"Runs a placement driver node: the cluster metadata in a Raft group of\n"
	"the `peers`, the PlacementDriver gRPC service on `listen`, and the\n"
	"reconciliation loop on the leader (docs/pd.md).",
	"VECTRON_PD_CONFIG", table, sizeof table / sizeof table[0]};

/* ---- the daemon ------------------------------------------------------------ */

typedef struct pd {
	pd_config cfg;
	vt_pdsvc_peer peers[MAX_PEERS];
	size_t n_peers;
	uv_loop_t *loop;
	vt_grpc_server *grpc;
	vt_http_server *http;   /* metrics_listen, or NULL */
	vt_repl_host *host;
	vt_repl_hgroup *group;
	vt_pd_meta *meta; /* touched on the host thread only */
	uv_timer_t timer;
	uv_signal_t sigterm, sigint;
	int stopping;
	int embedded;    /* a role (pd.h): host, server and signals not ours */
	int reconciling; /* a pass is on the thread pool (loop thread) */
	/* Leader's soft state, the actions ring and the leadership they
	 * belong to: any thread, under mu. */
	pthread_mutex_t mu;
	vt_pdsvc_soft *soft;
	vt_pdsvc_ring ring;
	vt_pdsvc_counters counters;
	uint64_t lead_term;     /* term this node leads with soft state, 0 none */
	uint64_t lead_since_ms; /* monotonic ms when it became so */
} pd;

static uint64_t mono_ms(void) { return vt_clock_mono_ns() / 1000000u; }

static const char *peer_grpc(const pd *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_peers; i++)
		if (p->peers[i].id == id)
			return p->peers[i].grpc;
	return NULL;
}

/* Soft state belongs to one term of leadership: a new term (or the loss of
 * leadership) starts it empty, so the planner never counts beats another
 * leader heard, nor ones from before a gap in which workers may have died
 * unseen. Any thread. */
static void observe(pd *p, int leader, int ready, uint64_t term)
{
	pthread_mutex_lock(&p->mu);
	if (ready && p->lead_term != term) {
		vt_pdsvc_soft_clear(p->soft);
		p->lead_term = term;
		p->lead_since_ms = mono_ms();
		VT_LOG(VT_LOG_INFO, MOD,
		       "leading the PD group in term %" PRIu64
		       ": heartbeats start afresh, workers count as seen now",
		       term);
	} else if (!leader && p->lead_term) {
		VT_LOG(VT_LOG_INFO, MOD,
		       "no longer the PD leader (term %" PRIu64
		       " ended): soft state dropped",
		       p->lead_term);
		vt_pdsvc_soft_clear(p->soft);
		p->lead_term = 0;
	}
	pthread_mutex_unlock(&p->mu);
}

/* ---- requests --------------------------------------------------------------- */

typedef struct req req;
typedef void (*work_fn)(req *r);

struct req {
	uv_work_t w;
	pd *p;
	vt_grpc_call *call;
	const ProtobufCMessage *in; /* owned by the call */
	work_fn fn;
	vt_arena *a;                /* the answer and scratch */
	ProtobufCMessage *out;      /* in `a`; sent when status is OK */
	int status;                 /* gRPC status */
	char msg[600];
	vt_buf cmd;                 /* the PD command to submit */
	void *scratch;              /* the reconciliation's plan */
};

static void req_fail(req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void req_fail(req *r, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->status = status;
}

/* A failed host or metadata call: the gRPC status of its code. */
static void req_fail_err(req *r, int rc, const char *msg)
{
	req_fail(r, vt_grpc_status_from_err(rc), "%s", msg);
}

/* What the leader probe saw. */
typedef struct lead_q {
	pd *p;
	int leader, ready;
	uint64_t leader_id, term, applied, epoch;
	/* Run on the host thread when this node is a ready leader; its
	 * result is the call's. */
	int (*fn)(req *r, const vt_pd_meta *m);
	req *r;
} lead_q;

static int lead_fn(vt_repl *rp, struct raft *raft, void *ud)
{
	lead_q *q = ud;
	const vt_pd_meta *m = vt_repl_sm(rp);
	raft_id lid = 0;
	const char *laddr;
	if (vt_repl_leader(rp, &lid, &laddr))
		lid = 0;
	q->leader_id = lid;
	q->leader = raft_state(raft) == RAFT_LEADER;
	q->ready = vt_repl_ready(rp);
	q->term = raft->current_term;
	q->applied = vt_pd_meta_applied(m);
	q->epoch = vt_pd_meta_epoch(m);
	observe(q->p, q->leader, q->ready, q->term);
	if (q->ready && q->fn)
		return q->fn(q->r, m);
	return 0;
}

static void not_leader(req *r, uint64_t leader_id)
{
	const char *addr = leader_id && leader_id != (uint64_t)r->p->cfg.node_id
				   ? peer_grpc(r->p, leader_id)
				   : NULL;
	req_fail(r, VT_GRPC_FAILED_PRECONDITION,
		 "not the leader; leader: %s", addr ? addr : "unknown");
}

/* Runs fn on the host thread if this node is a ready leader (a leader
 * that has applied a barrier of its term, so the metadata holds every
 * committed command); else fails `r` with "not the leader". A leader still
 * applying its barrier, or an election under way, is waited for up to a
 * second (it holds a pool thread, so not longer). 0 when fn ran (its result in
 * *fn_rc). */
static int with_leader(req *r, int (*fn)(req *, const vt_pd_meta *),
		       int *fn_rc)
{
	lead_q q;
	for (int tries = 0;; tries++) {
		memset(&q, 0, sizeof q);
		q.p = r->p;
		q.fn = fn;
		q.r = r;
		int rc = vt_repl_host_call(r->p->host, r->p->group, lead_fn, &q);
		if (q.ready) {
			if (fn_rc)
				*fn_rc = rc;
			return 0;
		}
		if (rc == VT_ESHUTDOWN) {
			req_fail(r, VT_GRPC_UNAVAILABLE, "shutting down");
			return rc;
		}
		/* our own election or barrier in progress: worth a wait */
		if (!(q.leader || q.leader_id == 0) || tries >= 50)
			break;
		usleep(20000);
	}
	not_leader(r, q.leader_id);
	return VT_EBUSY;
}

/* Linearizable: fn runs once leadership is confirmed through the log. */
typedef struct read_q {
	req *r;
	int (*fn)(req *r, const vt_pd_meta *m);
} read_q;

static int read_fn(vt_repl *rp, struct raft *raft, void *ud)
{
	read_q *q = ud;
	observe(q->r->p, 1, 1, raft->current_term);
	return q->fn(q->r, vt_repl_sm(rp));
}

static void with_read(req *r, int (*fn)(req *, const vt_pd_meta *))
{
	read_q q = {r, fn};
	vt_errmsg e = {{0}};
	int rc = vt_repl_host_read(r->p->host, r->p->group, read_fn, &q, &e);
	if (rc == VT_EBUSY || rc == VT_ECANCELED) {
		/* Not (or no longer) a ready leader: with_leader names the
		 * leader, or runs fn if this node became ready meanwhile (its
		 * term's barrier is applied: nothing committed is missing). */
		int frc = 0;
		if (with_leader(r, fn, &frc))
			return;
		rc = frc;
	}
	if (rc && r->status == VT_GRPC_OK)
		req_fail_err(r, rc, e.msg[0] ? e.msg : vt_strerror(rc));
}

/* Puts r->cmd through the log. 0 and *res on success; else r is failed
 * (the PD's verdict with its message, or "not the leader"). */
static int submit(req *r, vt_pd_result *res)
{
	vt_repl_result rr;
	memset(&rr, 0, sizeof rr);
	vt_errmsg e = {{0}};
	int rc = vt_repl_host_submit(r->p->host, r->p->group, r->cmd.data,
				     r->cmd.len, &rr, &e);
	vt_pd_sm_result(&rr, res);
	if (!rc)
		return 0;
	if (res->index) { /* a verdict of the state machine */
		req_fail_err(r, rc, e.msg);
		return rc;
	}
	if (rc == VT_EBUSY) {
		lead_q q = {.p = r->p};
		vt_repl_host_call(r->p->host, r->p->group, lead_fn, &q);
		not_leader(r, q.leader_id);
	} else if (rc == VT_ECANCELED) {
		req_fail(r, VT_GRPC_UNAVAILABLE,
			 "PD leadership changed with the command in flight: "
			 "it may or may not have been applied; retry");
	} else {
		req_fail_err(r, rc, e.msg[0] ? e.msg : vt_strerror(rc));
	}
	return rc;
}

static void after_work(uv_work_t *w, int status)
{
	(void)status;
	req *r = w->data;
	if (r->status == VT_GRPC_OK && r->out)
		vt_grpc_call_reply(r->call, r->out);
	else
		vt_grpc_call_finish(r->call,
				    r->status == VT_GRPC_OK ? VT_GRPC_INTERNAL
							    : r->status,
				    r->msg);
	vt_buf_free(&r->cmd);
	vt_arena_destroy(r->a);
	vt_free(r);
}

static void do_work(uv_work_t *w)
{
	req *r = w->data;
	r->fn(r);
}

/* Hands the call to the thread pool (or answers INTERNAL). */
static void queue(pd *p, vt_grpc_call *call, work_fn fn)
{
	req *r = vt_calloc(1, sizeof *r);
	vt_arena *a = r ? vt_arena_create(64u << 20) : NULL;
	if (!a) {
		vt_free(r);
		vt_grpc_call_finish(call, VT_GRPC_RESOURCE_EXHAUSTED,
				    "out of memory");
		return;
	}
	r->p = p;
	r->call = call;
	r->in = vt_grpc_call_request(call);
	r->fn = fn;
	r->a = a;
	vt_buf_init(&r->cmd, VT_PD_MAX_CONFIG + (8u << 20));
	r->w.data = r;
	if (uv_queue_work(p->loop, &r->w, do_work, after_work)) {
		vt_arena_destroy(a);
		vt_free(r);
		vt_grpc_call_finish(call, VT_GRPC_INTERNAL, "thread pool");
	}
}

#define MSG_NEW(r, T, init)                                                   \
	({                                                                     \
		T *m_ = vt_arena_alloc((r)->a, sizeof(T));                     \
		if (m_)                                                        \
			init(m_);                                              \
		m_;                                                            \
	})

static int oom(req *r)
{
	req_fail(r, VT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
	return VT_ENOMEM;
}

/* ---- validation on the loop ---------------------------------------------- */

static int label_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static int name_ok(const char *s)
{
	return s && *s && label_ok(s, VT_PD_MAX_NAME);
}

/* ---- RegisterWorker ----------------------------------------------------------- */

/* A stored label against a decoded one (which may be NULL when empty). */
static int same_str(const char *stored, const char *p, uint32_t n)
{
	return strlen(stored) == n && (!n || !memcmp(stored, p, n));
}

static int reg_same(req *r, const vt_pd_meta *m)
{
	const Vectron__Internal__V1__RegisterWorkerRequest *in =
		(const void *)r->in;
	vt_pd_cmd c;
	if (vt_pd_cmd_decode(r->cmd.data, r->cmd.len, &c, NULL))
		return 0; /* then the log decides */
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, in->worker->id);
	if (w && w->state == VT_PD_REMOVED) {
		vt_pd_cmd_release(&c);
		return 2; /* removed: refused without a log entry */
	}
	int same = w &&
		   same_str(w->addr, c.addr, c.addr_len) &&
		   same_str(w->zone, c.zone, c.zone_len) &&
		   same_str(w->rack, c.rack, c.rack_len) &&
		   w->capacity == c.capacity && w->role == c.role;
	vt_pd_cmd_release(&c);
	return same ? (int)1 : 0;
}

static void work_register(req *r)
{
	const Vectron__Internal__V1__RegisterWorkerRequest *in =
		(const void *)r->in;
	Vectron__Internal__V1__RegisterWorkerResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__RegisterWorkerResponse,
		vectron__internal__v1__register_worker_response__init);
	if (!out) {
		oom(r);
		return;
	}
	const Vectron__Internal__V1__WorkerInfo *w = in->worker;
	char both[VT_PD_MAX_ADDR + 1];
	vt_errmsg e = {{0}};
	int rc = vt_pdsvc_addr_join(w->addr, w->raft_addr, both, sizeof both,
				    &e);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER,
		       .worker = w->id,
		       .addr = both,
		       .addr_len = (uint32_t)strlen(both),
		       .capacity = w->has_capacity && w->capacity ? w->capacity
								   : 1,
		       .zone = w->zone ? w->zone : "",
		       .zone_len = w->zone ? (uint32_t)strlen(w->zone) : 0,
		       .rack = w->rack ? w->rack : "",
		       .rack_len = w->rack ? (uint32_t)strlen(w->rack) : 0,
		       .role = (uint8_t)(w->has_role ? w->role : 0)};
	if (rc || (rc = vt_pd_cmd_encode(&c, &r->cmd, &e))) {
		req_fail_err(r, rc, e.msg);
		return;
	}
	/* A restart with nothing new needs no log entry, and neither does a
	 * worker that was removed: it is told so (cluster.proto: it stops),
	 * every try, without filling the log. */
	int same = 0;
	if (with_leader(r, reg_same, &same))
		return;
	if (same == 2) {
		req_fail(r, VT_GRPC_FAILED_PRECONDITION,
			 "register_worker: worker %" PRIu64 " was removed; "
			 "ids are never reused", in->worker->id);
		return;
	}
	vt_pd_result res = {0};
	if (!same) {
		if (submit(r, &res))
			return;
		VT_LOG(VT_LOG_INFO, MOD,
		       "worker %" PRIu64 " registered at %s (raft %s), epoch %"
		       PRIu64,
		       in->worker->id, in->worker->addr, in->worker->raft_addr,
		       res.epoch);
	} else {
		lead_q q = {.p = r->p};
		vt_repl_host_call(r->p->host, r->p->group, lead_fn, &q);
		res.epoch = q.epoch;
	}
	out->has_epoch = 1;
	out->epoch = res.epoch;
	r->out = &out->base;
}

static void on_register(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__RegisterWorkerRequest *in =
		(const void *)vt_grpc_call_request(call);
	const Vectron__Internal__V1__WorkerInfo *w = in->worker;
	if (!w || !w->has_id || !w->id) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "worker.id: want > 0");
		return;
	}
	char both[VT_PD_MAX_ADDR + 1];
	vt_errmsg e = {{0}};
	if (vt_pdsvc_addr_join(w->addr, w->raft_addr, both, sizeof both, &e)) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, e.msg);
		return;
	}
	if ((w->zone && !label_ok(w->zone, VT_PD_MAX_ZONE)) ||
	    (w->rack && !label_ok(w->rack, VT_PD_MAX_ZONE))) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "worker.zone/rack: want 0..64 of "
				    "[A-Za-z0-9_.-]");
		return;
	}
	if (w->has_role && w->role != VECTRON__INTERNAL__V1__WORKER_ROLE__NORMAL &&
	    w->role != VECTRON__INTERNAL__V1__WORKER_ROLE__SEARCH_ONLY) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "worker.role: unknown");
		return;
	}
	queue(p, call, work_register);
}

/* ---- Heartbeat -------------------------------------------------------------- */

static int beat_fn(req *r, const vt_pd_meta *m)
{
	const Vectron__Internal__V1__HeartbeatRequest *in = (const void *)r->in;
	pd *p = r->p;
	Vectron__Internal__V1__HeartbeatResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__HeartbeatResponse,
		vectron__internal__v1__heartbeat_response__init);
	if (!out)
		return oom(r);
	r->out = &out->base;
	out->has_epoch = out->has_registered = out->has_unchanged = 1;
	out->epoch = vt_pd_meta_epoch(m);
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, in->worker);
	if (!w || w->state == VT_PD_REMOVED)
		return 0; /* registered = false */
	out->registered = 1;
	vt_pd_report *reps = NULL;
	if (in->n_replicas) {
		reps = vt_arena_calloc(r->a, in->n_replicas, sizeof *reps);
		if (!reps)
			return oom(r);
	}
	for (size_t i = 0; i < in->n_replicas; i++) {
		const Vectron__Internal__V1__ReplicaReport *x = in->replicas[i];
		reps[i] = (vt_pd_report){.group = x->group,
					 .worker = in->worker,
					 .term = x->term,
					 .leader = x->leader ? 1 : 0,
					 .caught_up = x->caught_up ? 1 : 0};
	}
	pthread_mutex_lock(&p->mu);
	int rc = vt_pdsvc_soft_beat(p->soft, in->worker, mono_ms(), reps,
				    in->n_replicas);
	size_t pending = vt_pdsvc_soft_elect_pending(p->soft, in->worker);
	if (!rc && pending)
		rc = vt_pdsvc_soft_take_elect(p->soft, in->worker, r->a,
					      &out->elect, &out->n_elect);
	pthread_mutex_unlock(&p->mu);
	if (rc)
		return oom(r);
	if (in->has_known_epoch && in->known_epoch == out->epoch && !pending) {
		out->unchanged = 1;
		return 0;
	}
	if (vt_pdsvc_assignments(m, in->worker, r->a, &out->assignments,
				 &out->n_assignments))
		return oom(r);
	return 0;
}

static void work_beat(req *r)
{
	with_leader(r, beat_fn, NULL);
}

static void on_beat(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__HeartbeatRequest *in =
		(const void *)vt_grpc_call_request(call);
	if (!in->has_worker || !in->worker) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "worker: want > 0");
		return;
	}
	for (size_t i = 0; i < in->n_replicas; i++)
		if (!in->replicas[i]->has_group || !in->replicas[i]->group) {
			vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
					    "replicas.group: want > 0");
			return;
		}
	queue(p, call, work_beat);
}

/* ---- CreateCollection ------------------------------------------------------- */

static uint32_t req_rf(const Vectron__Internal__V1__CreateCollectionRequest *in)
{
	return in->has_rf ? in->rf : 1;
}

/* Fills r->out with the route of the named collection (NOT_FOUND if none). */
static int route_of(req *r, const vt_pd_meta *m, const char *name,
		    Vectron__Internal__V1__CollectionRoute **route)
{
	const vt_pd_collection *c =
		vt_pd_meta_find_collection(m, name, strlen(name));
	if (!c) {
		req_fail(r, VT_GRPC_NOT_FOUND, "name: collection '%s' does not "
			 "exist", name);
		return VT_ENOENT;
	}
	return vt_pdsvc_route(m, c, r->a, route) ? oom(r) : 0;
}

static int create_plan(req *r, const vt_pd_meta *m)
{
	const Vectron__Internal__V1__CreateCollectionRequest *in =
		(const void *)r->in;
	Vectron__Internal__V1__CreateCollectionResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__CreateCollectionResponse,
		vectron__internal__v1__create_collection_response__init);
	if (!out)
		return oom(r);
	const vt_pd_collection *c =
		vt_pd_meta_find_collection(m, in->name, strlen(in->name));
	if (c) {
		/* The same create again (a client retrying after a lost
		 * answer or a leader change) gets the collection; anything
		 * else is a conflict. */
		if (c->config_len == in->config.len &&
		    !memcmp(c->config, in->config.data, in->config.len) &&
		    c->shard_count == in->shard_count && c->rf == req_rf(in)) {
			r->out = &out->base;
			return route_of(r, m, in->name, &out->collection);
		}
		req_fail(r, VT_GRPC_ALREADY_EXISTS,
			 "name: collection '%s' exists with another config, "
			 "shard_count or rf", in->name);
		return VT_EEXIST;
	}
	/* Only on workers this leader hears: one not heard within the grace
	 * is dead or cut off (the reconciler will move what it holds), and
	 * one a leader has not heard since it took over is too, once the
	 * workers have had time to find it (LEAD_SETTLE_MS). */
	uint32_t nw = vt_pd_meta_worker_count(m), nx = 0;
	uint64_t *deaf = vt_calloc(nw ? nw : 1, sizeof *deaf);
	if (!deaf)
		return oom(r);
	uint64_t now = mono_ms(),
		 grace = (uint64_t)r->p->cfg.heartbeat_grace_ms;
	pthread_mutex_lock(&r->p->mu);
	int settled = now - r->p->lead_since_ms >= LEAD_SETTLE_MS;
	for (uint32_t i = 0; i < nw; i++) {
		const vt_pd_worker *w = vt_pd_meta_worker(m, i);
		uint64_t last;
		int heard = vt_pdsvc_soft_last(r->p->soft, w->id, &last);
		if ((heard && now - last > grace) || (!heard && settled))
			deaf[nx++] = w->id;
	}
	pthread_mutex_unlock(&r->p->mu);
	vt_pd_place_req pr = {.shards = in->shard_count,
			      .rf = req_rf(in),
			      .search_replicas = in->search_replicas,
			      .seed = vt_clock_wall_ms(),
			      .exclude = deaf,
			      .n_exclude = nx};
	vt_errmsg e = {{0}};
	int rc = vt_pd_place_create(m, in->name, in->config.data,
				    (uint32_t)in->config.len, &pr, &r->cmd, &e);
	vt_free(deaf);
	if (rc == VT_EINVAL) /* not enough workers: the cluster's state */
		req_fail(r, VT_GRPC_FAILED_PRECONDITION, "%s", e.msg);
	else if (rc)
		req_fail_err(r, rc, e.msg);
	return rc;
}

static int create_route(req *r, const vt_pd_meta *m)
{
	const Vectron__Internal__V1__CreateCollectionRequest *in =
		(const void *)r->in;
	Vectron__Internal__V1__CreateCollectionResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__CreateCollectionResponse,
		vectron__internal__v1__create_collection_response__init);
	if (!out)
		return oom(r);
	r->out = &out->base;
	return route_of(r, m, in->name, &out->collection);
}

static void work_create(req *r)
{
	const Vectron__Internal__V1__CreateCollectionRequest *in =
		(const void *)r->in;
	int rc = 0;
	if (with_leader(r, create_plan, &rc) || rc || r->out)
		return; /* refused, or it existed already */
	vt_pd_result res;
	if (submit(r, &res))
		return;
	VT_LOG(VT_LOG_INFO, MOD,
	       "collection '%s' created: %u shards, rf %u, %u search "
	       "replicas, epoch %" PRIu64,
	       in->name, in->shard_count, req_rf(in), in->search_replicas,
	       res.epoch);
	/* Read back what was applied (this node applied it: submit waits). */
	with_leader(r, create_route, NULL);
}

static void on_create(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__CreateCollectionRequest *in =
		(const void *)vt_grpc_call_request(call);
	char msg[400];
	if (!name_ok(in->name)) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "name: want 1..128 of [A-Za-z0-9_.-]");
		return;
	}
	if (!in->has_shard_count || in->shard_count < 1 ||
	    in->shard_count > VT_COLL_MAX_SHARDS) {
		snprintf(msg, sizeof msg, "shard_count: want 1..%u",
			 VT_COLL_MAX_SHARDS);
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	uint32_t rf = req_rf(in);
	if (rf < 1 || rf > VT_PD_MAX_RF) {
		snprintf(msg, sizeof msg, "rf: want 1..%u", VT_PD_MAX_RF);
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	if (in->search_replicas > VT_PD_MAX_REPLICAS - rf) {
		snprintf(msg, sizeof msg,
			 "search_replicas: want 0..%u with rf %u",
			 VT_PD_MAX_REPLICAS - rf, rf);
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	if (!in->has_config || !in->config.len ||
	    in->config.len > VT_PD_MAX_CONFIG) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "config: want the collection's config "
				    "(lib/coll encoding)");
		return;
	}
	vt_coll_config cc;
	vt_errmsg e = {{0}};
	if (vt_coll_config_decode(in->config.data, in->config.len, &cc, &e)) {
		snprintf(msg, sizeof msg, "config: %s", e.msg);
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	if (strcmp(cc.name, in->name) || cc.shard_count != in->shard_count) {
		snprintf(msg, sizeof msg,
			 "config: it names '%s' with %u shards, the request "
			 "'%s' with %u",
			 cc.name, cc.shard_count, in->name, in->shard_count);
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	queue(p, call, work_create);
}

/* ---- DropCollection --------------------------------------------------------- */

/* Encodes `c`, checks that this node leads, and puts the command through
 * the log: 0, or nonzero with the failure already in `r`. */
static int encode_submit(req *r, const vt_pd_cmd *c, vt_pd_result *res)
{
	vt_errmsg e = {{0}};
	int rc = vt_pd_cmd_encode(c, &r->cmd, &e);
	if (rc) {
		req_fail_err(r, rc, e.msg);
		return rc;
	}
	if (with_leader(r, NULL, NULL))
		return VT_EBUSY;
	return submit(r, res);
}

static void work_drop(req *r)
{
	const Vectron__Internal__V1__DropCollectionRequest *in =
		(const void *)r->in;
	Vectron__Internal__V1__DropCollectionResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__DropCollectionResponse,
		vectron__internal__v1__drop_collection_response__init);
	if (!out) {
		oom(r);
		return;
	}
	vt_pd_cmd c = {.type = VT_PD_CMD_DROP_COLLECTION,
		       .name = in->name,
		       .name_len = (uint32_t)strlen(in->name)};
	vt_pd_result res;
	if (encode_submit(r, &c, &res)) {
		if (r->status == VT_GRPC_NOT_FOUND)
			req_fail(r, VT_GRPC_NOT_FOUND,
				 "name: collection '%s' does not exist",
				 in->name);
		return;
	}
	VT_LOG(VT_LOG_INFO, MOD, "collection '%s' dropped, epoch %" PRIu64,
	       in->name, res.epoch);
	out->has_dropped = 1;
	out->dropped = 1;
	r->out = &out->base;
}

static void on_drop(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__DropCollectionRequest *in =
		(const void *)vt_grpc_call_request(call);
	if (!name_ok(in->name)) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "name: want 1..128 of [A-Za-z0-9_.-]");
		return;
	}
	queue(p, call, work_drop);
}

/* ---- GetRouting ---------------------------------------------------------------- */

static int routing_fn(req *r, const vt_pd_meta *m)
{
	const Vectron__Internal__V1__GetRoutingRequest *in = (const void *)r->in;
	Vectron__Internal__V1__GetRoutingResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__GetRoutingResponse,
		vectron__internal__v1__get_routing_response__init);
	if (!out)
		return oom(r);
	out->has_epoch = 1;
	out->epoch = vt_pd_meta_epoch(m);
	size_t n = in->name ? 1 : vt_pd_meta_collection_count(m);
	if (n) {
		out->collections =
			vt_arena_calloc(r->a, n, sizeof *out->collections);
		if (!out->collections)
			return oom(r);
	}
	if (in->name) {
		int rc = route_of(r, m, in->name, &out->collections[0]);
		if (rc)
			return rc;
	} else {
		for (size_t i = 0; i < n; i++)
			if (vt_pdsvc_route(m,
					   vt_pd_meta_collection(m, (uint32_t)i),
					   r->a, &out->collections[i]))
				return oom(r);
	}
	out->n_collections = n;
	r->out = &out->base;
	return 0;
}

static void work_routing(req *r) { with_read(r, routing_fn); }

static void on_routing(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__GetRoutingRequest *in =
		(const void *)vt_grpc_call_request(call);
	if (in->name && !name_ok(in->name)) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "name: want 1..128 of [A-Za-z0-9_.-]");
		return;
	}
	queue(p, call, work_routing);
}

/* ---- ListWorkers ------------------------------------------------------------- */

static int workers_fn(req *r, const vt_pd_meta *m)
{
	pd *p = r->p;
	Vectron__Internal__V1__ListWorkersResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__ListWorkersResponse,
		vectron__internal__v1__list_workers_response__init);
	if (!out)
		return oom(r);
	out->has_epoch = 1;
	out->epoch = vt_pd_meta_epoch(m);
	uint32_t n = vt_pd_meta_worker_count(m);
	if (n && !(out->workers = vt_arena_calloc(r->a, n,
						  sizeof *out->workers)))
		return oom(r);
	uint64_t now = mono_ms();
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = vt_pdsvc_worker_info(m, vt_pd_meta_worker(m, i), p->soft,
					  now,
					  (uint64_t)p->cfg.heartbeat_grace_ms,
					  r->a, &out->workers[i]);
	pthread_mutex_unlock(&p->mu);
	if (rc)
		return oom(r);
	out->n_workers = n;
	r->out = &out->base;
	return 0;
}

static void work_workers(req *r) { with_read(r, workers_fn); }

static void on_workers(pd *p, vt_grpc_call *call)
{
	queue(p, call, work_workers);
}

/* ---- SetWorkerState ----------------------------------------------------------- */

static void work_state(req *r)
{
	const Vectron__Internal__V1__SetWorkerStateRequest *in =
		(const void *)r->in;
	Vectron__Internal__V1__SetWorkerStateResponse *out = MSG_NEW(
		r, Vectron__Internal__V1__SetWorkerStateResponse,
		vectron__internal__v1__set_worker_state_response__init);
	if (!out) {
		oom(r);
		return;
	}
	vt_pd_cmd c = {.type = VT_PD_CMD_SET_WORKER_STATE,
		       .worker = in->worker,
		       .state = (uint8_t)in->state};
	vt_pd_result res;
	if (encode_submit(r, &c, &res)) {
		/* "still hosts N replicas; move them first": the cluster's
		 * state, not the request, is what is wrong */
		if (r->status == vt_grpc_status_from_err(VT_EBUSY))
			r->status = VT_GRPC_FAILED_PRECONDITION;
		return;
	}
	VT_LOG(VT_LOG_INFO, MOD, "worker %" PRIu64 " set %s, epoch %" PRIu64,
	       in->worker, vt_pd_state_name(in->state), res.epoch);
	out->has_epoch = 1;
	out->epoch = res.epoch;
	r->out = &out->base;
}

static void on_state(pd *p, vt_grpc_call *call)
{
	const Vectron__Internal__V1__SetWorkerStateRequest *in =
		(const void *)vt_grpc_call_request(call);
	if (!in->has_worker || !in->worker) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "worker: want > 0");
		return;
	}
	if (!in->has_state || (unsigned)in->state > VT_PD_REMOVED) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "state: want UP, DRAINING or REMOVED");
		return;
	}
	queue(p, call, work_state);
}

/* ---- Status ----------------------------------------------------------------- */

static void work_status(req *r)
{
	pd *p = r->p;
	Vectron__Internal__V1__StatusResponse *out =
		MSG_NEW(r, Vectron__Internal__V1__StatusResponse,
			vectron__internal__v1__status_response__init);
	if (!out) {
		oom(r);
		return;
	}
	lead_q q = {.p = p};
	int rc = vt_repl_host_call(p->host, p->group, lead_fn, &q);
	if (rc) {
		req_fail_err(r, rc, vt_strerror(rc));
		return;
	}
	out->has_node_id = out->has_leader = out->has_term =
		out->has_applied = out->has_epoch = 1;
	out->node_id = (uint64_t)p->cfg.node_id;
	out->leader = q.leader;
	out->term = q.term;
	out->applied = q.applied;
	out->epoch = q.epoch;
	const char *la = q.leader_id ? peer_grpc(p, q.leader_id) : NULL;
	out->leader_addr = vt_arena_strndup(r->a, la ? la : "",
					    la ? strlen(la) : 0);
	pthread_mutex_lock(&p->mu);
	rc = vt_pdsvc_ring_msgs(&p->ring, r->a, &out->recent_actions,
				&out->n_recent_actions);
	pthread_mutex_unlock(&p->mu);
	if (rc || !out->leader_addr) {
		oom(r);
		return;
	}
	r->out = &out->base;
}

static void on_status(pd *p, vt_grpc_call *call)
{
	queue(p, call, work_status);
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef struct pd_method {
	const char *name;
	const ProtobufCMessageDescriptor *input;
	void (*fn)(pd *p, vt_grpc_call *call);
} pd_method;

static const pd_method methods[] = {
	{"RegisterWorker",
	 &vectron__internal__v1__register_worker_request__descriptor,
	 on_register},
	{"Heartbeat", &vectron__internal__v1__heartbeat_request__descriptor,
	 on_beat},
	{"CreateCollection",
	 &vectron__internal__v1__create_collection_request__descriptor,
	 on_create},
	{"DropCollection",
	 &vectron__internal__v1__drop_collection_request__descriptor, on_drop},
	{"GetRouting", &vectron__internal__v1__get_routing_request__descriptor,
	 on_routing},
	{"ListWorkers",
	 &vectron__internal__v1__list_workers_request__descriptor, on_workers},
	{"SetWorkerState",
	 &vectron__internal__v1__set_worker_state_request__descriptor,
	 on_state},
	{"Status", &vectron__internal__v1__status_request__descriptor,
	 on_status},
};

typedef struct route {
	pd *p;
	const pd_method *m;
} route;

static route routes[sizeof methods / sizeof methods[0]];

/* Every request's field 1 is `version` (cluster.proto's convention): the
 * same check for all, before anything else. */
static void on_call(vt_grpc_call *call, void *ud)
{
	route *rt = ud;
	const ProtobufCMessage *in = vt_grpc_call_request(call);
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(in->descriptor, 1);
	uint32_t version = 0;
	if (f && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    *(const protobuf_c_boolean *)((const char *)in +
					   f->quantifier_offset))
		version = *(const uint32_t *)((const char *)in + f->offset);
	if (version != VT_PDSVC_PROTO_VERSION) {
		char msg[96];
		snprintf(msg, sizeof msg,
			 "protocol version %u, this node speaks %u", version,
			 VT_PDSVC_PROTO_VERSION);
		vt_grpc_call_finish(call, VT_GRPC_FAILED_PRECONDITION, msg);
		return;
	}
	if (rt->p->stopping) {
		vt_grpc_call_finish(call, VT_GRPC_UNAVAILABLE, "shutting down");
		return;
	}
	rt->m->fn(rt->p, call);
}

/* ---- reconciliation ------------------------------------------------------------- */

typedef struct plan_q {
	pd *p;
	vt_pd_action acts[MAX_PLAN];
	uint8_t repeat[MAX_PLAN]; /* an ELECT still waiting for a heartbeat */
	size_t n;
	int rc;
	vt_errmsg err;
} plan_q;

/* Host thread: plan against the metadata as it is, and queue the ELECT
 * orders for the group's workers (they are no log commands). */
static int plan_fn(req *r, const vt_pd_meta *m)
{
	plan_q *q = r->scratch;
	pd *p = q->p;
	pthread_mutex_lock(&p->mu);
	vt_pd_plan_in in = {0};
	in.beats = vt_pdsvc_soft_beats(p->soft, &in.n_beats);
	in.reports = vt_pdsvc_soft_reports(p->soft, &in.n_reports);
	in.now_ms = mono_ms();
	in.since_ms = p->lead_since_ms;
	in.grace_ms = (uint64_t)p->cfg.heartbeat_grace_ms;
	in.max_actions = (uint32_t)p->cfg.max_actions;
	in.max_moves = (uint32_t)p->cfg.max_moves;
	in.balance_leaders = 1;
	in.seed = in.now_ms;
	q->rc = vt_pd_plan(m, &in, q->acts, MAX_PLAN, &q->n, &q->err);
	for (size_t i = 0; !q->rc && i < q->n; i++) {
		const vt_pd_action *a = &q->acts[i];
		if (a->kind != VT_PD_ACT_ELECT)
			continue;
		const vt_pd_collection *c = vt_pd_meta_find_collection(
			m, a->collection, strlen(a->collection));
		if (!c || a->shard >= c->shard_count)
			continue;
		const vt_pd_shard *sh = &c->shards[a->shard];
		uint64_t rid = 0;
		for (uint32_t j = 0; j < sh->n_replicas; j++)
			if (sh->replicas[j].worker == a->worker)
				rid = sh->replicas[j].raft_id;
		/* The same order not yet delivered is not news: it is neither
		 * logged nor recorded again. */
		q->repeat[i] = rid && vt_pdsvc_soft_elect_has(
					      p->soft, sh->replicas[0].worker,
					      sh->group, rid);
		for (uint32_t j = 0; rid && j < sh->n_replicas; j++)
			vt_pdsvc_soft_elect(p->soft, sh->replicas[j].worker,
					    sh->group, rid);
	}
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static void record(pd *p, const vt_pd_action *a, const char *outcome, int lvl)
{
	if (a->collection[0])
		VT_LOG(lvl, MOD, "%s %s/%u worker %" PRIu64 " (%s): %s",
		       vt_pd_act_name(a->kind), a->collection, a->shard,
		       a->worker, a->reason, outcome);
	else
		VT_LOG(lvl, MOD, "%s worker %" PRIu64 " (%s): %s",
		       vt_pd_act_name(a->kind), a->worker, a->reason, outcome);
	pthread_mutex_lock(&p->mu);
	vt_pdsvc_ring_push(&p->ring, a, vt_clock_wall_ms(), outcome);
	if (a->kind > 0 && a->kind < VT_PDSVC_ACT_KINDS)
		p->counters.actions[a->kind][vt_pdsvc_outcome_of(outcome)]++;
	pthread_mutex_unlock(&p->mu);
}

static void work_reconcile(uv_work_t *w)
{
	pd *p = w->data;
	plan_q *q = vt_calloc(1, sizeof *q);
	req r;
	vt_buf b;
	memset(&r, 0, sizeof r);
	vt_buf_init(&b, 1u << 20);
	if (!q)
		return;
	q->p = p;
	r.p = p;
	r.scratch = q;
	lead_q lq = {.p = p, .fn = plan_fn, .r = &r};
	int rc = vt_repl_host_call(p->host, p->group, lead_fn, &lq);
	if (rc || !lq.ready)
		goto out;
	pthread_mutex_lock(&p->mu);
	p->counters.passes++;
	pthread_mutex_unlock(&p->mu);
	if (q->rc) {
		VT_LOG(VT_LOG_WARN, MOD, "plan: %s", q->err.msg);
		goto out;
	}
	for (size_t i = 0; i < q->n; i++) {
		const vt_pd_action *a = &q->acts[i];
		if (a->kind == VT_PD_ACT_ELECT && q->repeat[i])
			continue;
		if (a->kind == VT_PD_ACT_ELECT) {
			record(p, a, "ok: sent with the next heartbeats",
			       VT_LOG_INFO);
			continue;
		}
		vt_errmsg e = {{0}};
		vt_buf_reset(&b);
		if ((rc = vt_pd_action_encode(a, &b, &e))) {
			record(p, a, e.msg, VT_LOG_WARN);
			continue;
		}
		vt_repl_result rr;
		memset(&rr, 0, sizeof rr);
		rc = vt_repl_host_submit(p->host, p->group, b.data, b.len, &rr,
					 &e);
		vt_pd_result res;
		vt_pd_sm_result(&rr, &res);
		char outcome[VT_ERRMSG_SIZE + 32];
		if (!rc) {
			snprintf(outcome, sizeof outcome, "ok: epoch %" PRIu64,
				 res.epoch);
			record(p, a, outcome, VT_LOG_INFO);
		} else if (rc == VT_EBUSY && res.index) {
			/* the shard moved on since the plan: next pass */
			snprintf(outcome, sizeof outcome, "stale plan: %s",
				 e.msg);
			record(p, a, outcome, VT_LOG_DEBUG);
		} else {
			snprintf(outcome, sizeof outcome, "failed: %s",
				 e.msg[0] ? e.msg : vt_strerror(rc));
			record(p, a, outcome, VT_LOG_WARN);
			if (!res.index)
				break; /* not the leader any more */
		}
	}
out:
	vt_buf_free(&b);
	vt_free(q);
}

static void after_reconcile(uv_work_t *w, int status)
{
	(void)status;
	pd *p = w->data;
	p->reconciling = 0;
	vt_free(w);
}

static void on_timer(uv_timer_t *t)
{
	pd *p = t->data;
	if (p->reconciling || p->stopping)
		return; /* the last pass is still submitting */
	uv_work_t *w = vt_calloc(1, sizeof *w);
	if (!w)
		return;
	w->data = p;
	p->reconciling = 1;
	if (uv_queue_work(p->loop, w, work_reconcile, after_reconcile)) {
		p->reconciling = 0;
		vt_free(w);
	}
}

/* ---- metrics ------------------------------------------------------------------ */

struct metrics_q {
	pd *p;
	vt_pdsvc_gauges g;
};

static int metrics_fn(vt_repl *rp, struct raft *raft, void *ud)
{
	struct metrics_q *q = ud;
	pd *p = q->p;
	const vt_pd_meta *m = vt_repl_sm(rp);
	q->g.leader = raft_state(raft) == RAFT_LEADER;
	q->g.term = raft->current_term;
	q->g.applied = vt_pd_meta_applied(m);
	q->g.epoch = vt_pd_meta_epoch(m);
	pthread_mutex_lock(&p->mu);
	/* soft state is the leader's own: a follower's is empty */
	vt_pdsvc_gauges_of(m, q->g.leader ? p->soft : NULL, mono_ms(),
			   (uint64_t)p->cfg.heartbeat_grace_ms, &q->g);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* The Prometheus text of this node (a host call: not on the loop). */
static int pd_metrics(pd *p, vt_buf *out)
{
	struct metrics_q q;
	memset(&q, 0, sizeof q);
	q.p = p;
	int rc = vt_repl_host_call(p->host, p->group, metrics_fn, &q);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->mu);
	vt_pdsvc_counters c = p->counters;
	pthread_mutex_unlock(&p->mu);
	return vt_pdsvc_metrics(&q.g, &c, out);
}

struct scrape {
	uv_work_t w;
	pd *p;
	vt_http_req *hreq;
	vt_buf out;
	int rc;
};

static void scrape_work(uv_work_t *w)
{
	struct scrape *sc = w->data;
	sc->rc = pd_metrics(sc->p, &sc->out);
}

static void scrape_done(uv_work_t *w, int status)
{
	struct scrape *sc = w->data;
	if (status || sc->rc)
		vt_http_respond_error(sc->hreq, 503, "UNAVAILABLE", "%s",
				      status ? "shutting down"
					     : vt_strerror(sc->rc));
	else
		vt_http_respond(sc->hreq, 200, "text/plain; version=0.0.4",
				sc->out.data, sc->out.len);
	vt_buf_free(&sc->out);
	vt_free(sc);
}

static void on_http(void *ud, vt_http_req *hreq)
{
	pd *p = ud;
	if (strcmp(hreq->path, "/metrics")) {
		vt_http_respond_error(hreq, 404, "NOT_FOUND", "no route for %s "
				      "%s (the PD serves GET /metrics)",
				      hreq->method, hreq->path);
		return;
	}
	struct scrape *sc = vt_calloc(1, sizeof *sc);
	if (!sc) {
		vt_http_respond_error(hreq, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	sc->p = p;
	sc->hreq = hreq;
	sc->w.data = sc;
	vt_buf_init(&sc->out, 8192);
	if (uv_queue_work(p->loop, &sc->w, scrape_work, scrape_done)) {
		vt_buf_free(&sc->out);
		vt_free(sc);
		vt_http_respond_error(hreq, 503, "UNAVAILABLE", "busy");
	}
}

static void http_closed(vt_http_server *srv, void *ud)
{
	(void)srv;
	(void)ud;
}

static int start_http(pd *p)
{
	vt_errmsg e = {{0}};
	char host[256];
	int port;
	if (!p->cfg.metrics_listen[0])
		return 0;
	if (vt_pdsvc_hostport(p->cfg.metrics_listen, host, sizeof host,
			      &port)) {
		fprintf(stderr, "vectron pd: metrics_listen: '%s': want "
			"host:port\n", p->cfg.metrics_listen);
		return -1;
	}
	if (vt_http_server_create(p->loop, NULL, on_http, p, &p->http, &e) ||
	    vt_http_server_listen(p->http, host, port, &e)) {
		fprintf(stderr, "vectron pd: metrics on %s: %s\n",
			p->cfg.metrics_listen, e.msg);
		return -1;
	}
	VT_LOG(VT_LOG_INFO, MOD, "metrics on http://%s:%d/metrics", host,
	       vt_http_server_port(p->http));
	return 0;
}

/* ---- start and stop ----------------------------------------------------------- */

static void grpc_closed(void *ud)
{
	pd *p = ud;
	p->grpc = NULL;
	VT_LOG(VT_LOG_INFO, MOD, "gRPC server stopped");
}

static void stop(pd *p)
{
	if (p->stopping)
		return;
	p->stopping = 1;
	uv_close((uv_handle_t *)&p->timer, NULL);
	if (p->http)
		vt_http_server_shutdown(p->http, http_closed, p);
	if (p->embedded)
		return;
	if (p->grpc)
		vt_grpc_server_close(p->grpc, (uint64_t)p->cfg.shutdown_grace_ms,
				     grpc_closed, p);
	uv_close((uv_handle_t *)&p->sigterm, NULL);
	uv_close((uv_handle_t *)&p->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
	pd *p = h->data;
	VT_LOG(VT_LOG_INFO, MOD, "%s: stopping",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(p);
}

/* The PD nodes from `peers`, or this node alone when it is empty. */
static int parse_peers(pd *p)
{
	const pd_config *c = &p->cfg;
	vt_errmsg e = {{0}};
	if (!c->peers[0]) {
		p->peers[0].id = (uint64_t)c->node_id;
		snprintf(p->peers[0].grpc, sizeof p->peers[0].grpc, "%s",
			 c->listen);
		snprintf(p->peers[0].raft, sizeof p->peers[0].raft, "%s",
			 c->raft_listen);
		p->n_peers = 1;
		return 0;
	}
	if (vt_pdsvc_peers_parse(c->peers, (uint64_t)c->node_id, p->peers,
				 MAX_PEERS, &p->n_peers, &e)) {
		fprintf(stderr, "vectron pd: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *q = tmp + 1; *q; q++)
		if (*q == '/') {
			*q = '\0';
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -1;
			*q = '/';
		}
	return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

static int open_group(pd *p)
{
	vt_errmsg e = {{0}};
	char dir[1100];
	snprintf(dir, sizeof dir, "%s/pd", p->cfg.data_dir);
	if (mkdir_p(dir)) {
		fprintf(stderr, "vectron pd: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	vt_repl_host_opts ho;
	vt_repl_host_opts_default(&ho);
	ho.bind = p->cfg.raft_listen;
	if (!p->host && vt_repl_host_open(&ho, &p->host, &e)) {
		fprintf(stderr, "vectron pd: raft on %s: %s\n",
			p->cfg.raft_listen, e.msg);
		return -1;
	}
	if (vt_pd_meta_new(&p->meta))
		return -1;
	vt_repl_peer vp[MAX_PEERS];
	for (size_t i = 0; i < p->n_peers; i++)
		vp[i] = (vt_repl_peer){p->peers[i].id, p->peers[i].raft, 1};
	vt_repl_group_spec spec = {
		.group_id = PD_GROUP,
		.self = (raft_id)p->cfg.node_id,
		.dir = dir,
		.peers = p->n_peers > 1 ? vp : NULL,
		.n_peers = p->n_peers > 1 ? p->n_peers : 0,
		.sm_ops = vt_pd_sm_ops(),
		.sm = p->meta,
	};
	if (vt_repl_host_attach(p->host, &spec, &p->group, &e)) {
		fprintf(stderr, "vectron pd: PD group in %s: %s\n", dir, e.msg);
		return -1;
	}
	return 0;
}

static int start_grpc(pd *p)
{
	vt_errmsg e = {{0}};
	char host[256];
	int port, rc;
	if (vt_pdsvc_hostport(p->cfg.listen, host, sizeof host, &port)) {
		fprintf(stderr, "vectron pd: listen: '%s': want host:port\n",
			p->cfg.listen);
		return -1;
	}
	if (!p->grpc && (rc = vt_grpc_server_new(p->loop, NULL, &p->grpc)))
		return -1;
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s%s", SERVICE, methods[i].name);
		routes[i] = (route){p, &methods[i]};
		vt_grpc_method gm = {path, VT_GRPC_UNARY, methods[i].input,
				     on_call, &routes[i]};
		if (vt_grpc_server_add_method(p->grpc, &gm))
			return -1;
	}
	if (!p->embedded && vt_grpc_server_listen(p->grpc, host, port, &e)) {
		fprintf(stderr, "vectron pd: gRPC on %s: %s\n", p->cfg.listen,
			e.msg);
		return -1;
	}
	return 0;
}

static pd *pd_new(void)
{
	pd *p = vt_calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	if (vt_pdsvc_soft_new(&p->soft)) {
		pthread_mutex_destroy(&p->mu);
		vt_free(p);
		return NULL;
	}
	return p;
}

/* Attaches the group and serves; the timer (and the daemon's signals)
 * run from here on. 0 or -1 with the reason said. */
static int pd_start(pd *p)
{
	int rc = open_group(p);
	uv_timer_init(p->loop, &p->timer);
	p->timer.data = p;
	if (!p->embedded) {
		uv_signal_init(p->loop, &p->sigterm);
		uv_signal_init(p->loop, &p->sigint);
		p->sigterm.data = p->sigint.data = p;
	}
	if (!rc)
		rc = start_grpc(p);
	if (!rc)
		rc = start_http(p);
	if (rc)
		return -1;
	if (!p->embedded) {
		uv_signal_start(&p->sigterm, on_signal, SIGTERM);
		uv_signal_start(&p->sigint, on_signal, SIGINT);
	}
	uv_timer_start(&p->timer, on_timer, (uint64_t)p->cfg.reconcile_ms,
		       (uint64_t)p->cfg.reconcile_ms);
	return 0;
}

/* After the loop ended (no call and no pass in flight) and, for a role,
 * after the process closed the shared host. */
static void pd_free(pd *p)
{
	if (p->host && !p->embedded) {
		vt_repl_host_close(p->host);
		vt_repl_host_free(p->host);
	}
	vt_http_server_destroy(p->http);
	vt_pd_meta_free(p->meta);
	vt_pdsvc_soft_free(p->soft);
	pthread_mutex_destroy(&p->mu);
	if (p->loop) /* it ran (not --help or bad settings) */
		VT_LOG(VT_LOG_INFO, MOD, "stopped");
	vt_free(p);
}

int vt_cli_pd(int argc, char **argv)
{
	pd *p = pd_new();
	if (!p)
		return 1;
	int r = vt_settings_load(&settings, &p->cfg, argc, argv);
	int lvl = r ? 0 : vt_log_level_parse(p->cfg.log_level);
	if (!r && lvl < 0)
		fprintf(stderr, "vectron pd: log_level: unknown \"%s\"\n",
			p->cfg.log_level);
	if (r || lvl < 0 || parse_peers(p)) {
		pd_free(p);
		return r > 0 ? 0 : 2;
	}
	vt_log_set_level(lvl);
	signal(SIGPIPE, SIG_IGN); /* the host's transport */
	/* Calls block on the host (a commit, a wait for leadership): libuv's
	 * default 4 pool threads would let a few slow ones hold up every
	 * heartbeat. Read once, at the first uv_queue_work; a user's own
	 * setting wins. */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	p->loop = uv_default_loop();
	int rc = pd_start(p);
	if (!rc) {
		/* One line tests and scripts can wait for. */
		printf("vectron pd: node %lld, gRPC on %s, raft on %s, %zu "
		       "PD nodes, data in %s\n",
		       p->cfg.node_id, p->cfg.listen, p->cfg.raft_listen,
		       p->n_peers, p->cfg.data_dir);
		fflush(stdout);
	} else {
		stop(p);
	}
	uv_run(p->loop, UV_RUN_DEFAULT);
	uv_loop_t *loop = p->loop;
	pd_free(p);
	uv_loop_close(loop);
	return rc ? 1 : 0;
}

/* ---- as a role of another process (pd.h) ------------------------------------- */

int vt_pd_role_start(const vt_pd_role_opts *o, vt_pd_role **out,
		     vt_errmsg *err)
{
	pd *p = *out = pd_new();
	if (!p)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	if (vt_settings_defaults(&settings, &p->cfg))
		return vt_errmsg_set(err, VT_EINVAL, "PD defaults");
	p->embedded = 1;
	p->loop = o->loop;
	p->host = o->host;
	p->grpc = o->grpc;
	snprintf(p->cfg.data_dir, sizeof p->cfg.data_dir, "%s", o->data_dir);
	snprintf(p->cfg.listen, sizeof p->cfg.listen, "%s", o->listen);
	if (o->reconcile_ms)
		p->cfg.reconcile_ms = o->reconcile_ms;
	snprintf(p->cfg.raft_listen, sizeof p->cfg.raft_listen, "%s",
		 vt_repl_host_address(o->host));
	if (parse_peers(p) || pd_start(p))
		return vt_errmsg_set(err, VT_EIO, "the placement driver did "
				     "not start (the log says why)");
	return 0;
}

void vt_pd_role_stop(vt_pd_role *p) { stop(p); }

void vt_pd_role_free(vt_pd_role *p)
{
	if (p)
		pd_free(p);
}

int vt_pd_role_metrics(vt_pd_role *p, vt_buf *out) { return pd_metrics(p, out); }
