/* host.c: Raft groups (shards, or another state machine such as the PD's
 * metadata) on a thread of their own (host.h). Callers queue
 * an op (mutex + uv_async) and wait on a condvar for their own result; the
 * host thread runs the op, proposes, flushes the group-commit queues once
 * per loop iteration and answers from the FSM's callbacks. */
#include "repl/host.h"
#include "repl/repl_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft/uv.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "repl/transport.h"

#define MOD "repl"
#define BASE_FILE "raft-index-base"

enum op_kind { OP_APPLY, OP_ATTACH, OP_DETACH, OP_CALL, OP_DROP, OP_CHANGE,
	       OP_READ };

/* One request from a thread to the host; lives on the caller's stack. */
struct op {
	struct op *next;
	enum op_kind kind;
	vt_repl_hgroup *g;        /* apply, detach, call; attach: the result */
	const void *cmd;          /* apply */
	size_t len;
	vt_repl_result *res;
	vt_errmsg *err;
	const vt_repl_group_spec *spec; /* attach */
	int (*fn)(vt_repl *, struct raft *, void *); /* call */
	void *ud;
	const char *peer;         /* drop; change: the address */
	int drop;                 /* drop */
	int change;               /* change: enum vt_repl_change_kind */
	raft_id id;               /* change */
	int role;                 /* change (add) */
	uint64_t deadline_ns;     /* apply: waiting for a ready leader */
	int rc, done;
};

struct vt_repl_hgroup {
	vt_repl_host *h;
	vt_repl_hgroup *next;     /* in h->groups until the host is freed */
	vt_repl *repl;
	struct raft raft;
	struct raft_io io;
	/* raft_uv 0.15 can report its close twice (below): raft's callback
	 * is called on the first report only. */
	void (*io_close)(struct raft_io *, void (*)(struct raft_io *));
	void (*io_close_cb)(struct raft_io *);
	unsigned io_close_reports;
	struct raft_uv_transport *tr;
	int one_voter;            /* a one-voter group waits for itself */
	int custom_sm;            /* spec->sm_ops: not a shard group */
	struct op *wait_head, *wait_tail; /* applies waiting for readiness */
	int closing, closed, cleaned;
	struct op *close_op;      /* finished once the group is cleaned */
	char dir[4300];           /* <shard>/raft */
	char sdir[4300];          /* the shard's directory */
};

struct vt_repl_host {
	vt_repl_host_opts o;
	char bind[300];
	char addr[300];
	uv_loop_t loop;
	uv_thread_t thread;
	vt_repl_mux *mux;
	uv_async_t wake;
	uv_check_t check;
	uv_timer_t timer;
	pthread_mutex_t mu;       /* queue, stopping, op->done, g->cleaned */
	pthread_cond_t cv;
	struct op *qhead, *qtail;
	int stopping;             /* vt_repl_host_close called */
	int stop_started, mux_closed, joined;
	vt_repl_hgroup *groups;
};

void vt_repl_host_opts_default(vt_repl_host_opts *o)
{
	*o = (vt_repl_host_opts){.bind = "127.0.0.1:0",
				 .tick_ms = 10,
				 .install_snapshot_ms = 10000,
				 .wait_ready_ms = 5000};
	vt_repl_tuning_default(&o->tune);
}

static void finish(vt_repl_host *h, struct op *op, int rc)
{
	pthread_mutex_lock(&h->mu);
	op->rc = rc;
	op->done = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* ---- the index base of a borrowed shard ------------------------------------ */

static int base_read(const char *sdir, uint64_t *base)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/" BASE_FILE, sdir);
	*base = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : VT_EIO;
	unsigned long long v;
	int ok = fscanf(f, "%llu", &v) == 1;
	fclose(f);
	if (!ok)
		return VT_ECORRUPT;
	*base = v;
	return 0;
}

static int base_write(const char *sdir, uint64_t base, vt_errmsg *err)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/" BASE_FILE, sdir);
	char text[32];
	int n = snprintf(text, sizeof text, "%" PRIu64 "\n", base);
	vt_afile f;
	int rc = vt_afile_open(&f, path, err);
	if (rc)
		return rc;
	if ((rc = vt_afile_write(&f, text, (size_t)n))) {
		vt_afile_abort(&f);
		return vt_errmsg_set(err, rc, "%s: %s", path, vt_strerror(rc));
	}
	return vt_afile_commit(&f, err);
}

/* The log directory; on first start of a borrowed shard that already
 * holds commands, the base its entries are numbered after. */
static int log_dir_prepare(vt_repl_hgroup *g, const vt_repl_group_spec *s,
			   uint64_t *base, vt_errmsg *err)
{
	struct stat st;
	*base = 0;
	if (!stat(g->dir, &st)) {
		int rc = s->borrow ? base_read(s->dir, base) : 0;
		return rc ? vt_errmsg_set(err, rc, "%s/" BASE_FILE
					  ": unreadable", s->dir) : 0;
	}
	if (s->borrow) {
		uint64_t indexed;
		vt_shard_progress(s->borrow, base, &indexed);
		int rc = *base ? base_write(s->dir, *base, err) : 0;
		if (rc)
			return rc;
		if (*base)
			VT_LOG(VT_LOG_INFO, MOD, "%s: new raft log after shard "
			       "index %" PRIu64, g->dir, *base);
	}
	if (mkdir(g->dir, 0755) && errno != EEXIST) {
		int rc = vt_err_from_errno(errno);
		return vt_errmsg_set(err, rc, "%s: cannot create the raft "
				     "log: %s", g->dir, vt_strerror(rc));
	}
	vt_fsync_dir(s->dir);
	return 0;
}

/* ---- groups (host thread) ---------------------------------------------------- */

/* raft_uv 0.15 reports its close from every completion path that finds
 * nothing pending, and does not remember that it already did; raft's
 * callback frees the raft's address on each report (a double free seen on
 * SIGTERM after a restart). The first report is the real one. */
static void io_closed_once(struct raft_io *io)
{
	vt_repl_hgroup *g = (vt_repl_hgroup *)((char *)io -
					       offsetof(vt_repl_hgroup, io));
	if (g->io_close_reports++) {
		VT_LOG(VT_LOG_DEBUG, MOD, "%s: raft_uv reported its close "
		       "again (ignored)", g->dir);
		return;
	}
	g->io_close_cb(io);
}

static void io_close_guarded(struct raft_io *io, void (*cb)(struct raft_io *))
{
	vt_repl_hgroup *g = (vt_repl_hgroup *)((char *)io -
					       offsetof(vt_repl_hgroup, io));
	g->io_close_cb = cb;
	g->io_close(io, io_closed_once);
}

static void raft_closed(struct raft *r)
{
	vt_repl_hgroup *g = r->data;
	g->closed = 1; /* cleaned up in service(), outside raft's stack */
}

static void fail_waiting(vt_repl_hgroup *g, int rc, const char *msg)
{
	struct op *op = g->wait_head;
	g->wait_head = g->wait_tail = NULL;
	while (op) {
		struct op *next = op->next;
		vt_errmsg_set(op->err, rc, "%s", msg);
		finish(g->h, op, rc);
		op = next;
	}
}

static void group_close(vt_repl_hgroup *g)
{
	if (g->closing)
		return;
	g->closing = 1;
	fail_waiting(g, VT_ESHUTDOWN, "shard closing: not written");
	raft_close(&g->raft, raft_closed);
}

/* After raft_close's callback: the adapter fails what is in flight
 * (VT_ESHUTDOWN). raft_uv may still have libuv callbacks pending (see
 * io_closed_once), so its memory, the transport and the struct stay until
 * the host is freed, after its loop has ended. */
static void group_cleanup(vt_repl_hgroup *g)
{
	vt_repl_close(g->repl);
	g->repl = NULL;
	pthread_mutex_lock(&g->h->mu);
	g->cleaned = 1;
	pthread_cond_broadcast(&g->h->cv);
	pthread_mutex_unlock(&g->h->mu);
	struct op *op = g->close_op;
	if (op) /* a detach, or an attach whose start failed */
		finish(g->h, op, op->kind == OP_ATTACH ? op->rc : 0);
}

static int config_build(const vt_repl_group_spec *s, const char *self_addr,
			struct raft_configuration *conf)
{
	raft_configuration_init(conf);
	if (!s->n_peers)
		return raft_configuration_add(conf, s->self ? s->self : 1,
					      self_addr, RAFT_VOTER);
	for (size_t i = 0; i < s->n_peers; i++) {
		const vt_repl_peer *p = &s->peers[i];
		int rc = raft_configuration_add(conf, p->id, p->address,
						p->voter ? RAFT_VOTER
							 : RAFT_STANDBY);
		if (rc)
			return rc;
	}
	return 0;
}

/* After raft_init: settings, bootstrap (a new log), start. */
static int group_start(vt_repl_hgroup *g, const vt_repl_group_spec *s,
		       vt_errmsg *err)
{
	vt_repl_host *h = g->h;
	int rc = 0;
	vt_repl_tuning t = h->o.tune;
	t.pre_vote = t.pre_vote && !g->one_voter;
	if ((rc = vt_repl_tune(&g->raft, &t, err)))
		return rc;
	raft_set_install_snapshot_timeout(&g->raft, h->o.install_snapshot_ms);
	if (!s->join) {
		struct raft_configuration conf;
		rc = config_build(s, h->addr, &conf);
		if (!rc && (rc = raft_bootstrap(&g->raft, &conf)) ==
			   RAFT_CANTBOOTSTRAP)
			rc = 0; /* a log exists: restart from it */
		raft_configuration_close(&conf);
	}
	if (!rc)
		rc = raft_start(&g->raft);
	if (rc)
		return vt_errmsg_set(err, VT_EIO, "%s: raft start: %s (%s)",
				     g->dir, raft_strerror(rc),
				     raft_errmsg(&g->raft));
	return 0;
}

/* Everything up to raft_init; undone here on failure. */
static int group_prepare(vt_repl_hgroup *g, const vt_repl_group_spec *s,
			 vt_errmsg *err)
{
	uint64_t base = 0;
	int rc = log_dir_prepare(g, s, &base, err);
	if (rc)
		return rc;
	vt_repl_opts ro;
	vt_repl_opts_default(&ro, s->dir);
	if (s->shard_opts)
		ro.shard = *s->shard_opts;
	ro.sm_ops = s->sm_ops;
	ro.sm = s->sm;
	ro.borrow = s->borrow;
	ro.index_base = base;
	if ((rc = vt_repl_open(&ro, &g->repl, err)))
		return rc;
	if ((rc = vt_repl_transport_for_group(g->h->mux, s->group_id,
					      &g->tr))) {
		vt_repl_close(g->repl);
		return vt_errmsg_set(err, rc, "out of memory");
	}
	if ((rc = raft_uv_init(&g->io, &g->h->loop, g->dir, g->tr))) {
		vt_errmsg_set(err, VT_EIO, "%s: raft log: %s", g->dir,
			      g->io.errmsg);
		vt_repl_transport_release(g->tr);
		vt_repl_close(g->repl);
		return VT_EIO;
	}
	g->io_close = g->io.close;
	g->io.close = io_close_guarded;
	if (g->h->o.segment_bytes)
		raft_uv_set_segment_size(&g->io, g->h->o.segment_bytes);
	/* raft_uv 0.15 spins forever (100% CPU, never returns) decompressing
	 * a truncated LZ4 snapshot file at start (test_corrupt_snapshot_
	 * refused[truncate]). Uncompressed, a damaged snapshot reaches our
	 * own restore, whose stream is framed and checksummed, and the
	 * replica refuses to start with a message. */
	raft_uv_set_snapshot_compression(&g->io, false);
	if ((rc = raft_init(&g->raft, &g->io, vt_repl_fsm(g->repl),
			    s->self ? s->self : 1, g->h->addr))) {
		vt_errmsg_set(err, VT_EIO, "%s: raft: %s", g->dir,
			      raft_strerror(rc));
		raft_uv_close(&g->io);
		vt_repl_transport_release(g->tr);
		vt_repl_close(g->repl);
		return VT_EIO;
	}
	g->raft.data = g;
	vt_repl_attach(g->repl, &g->raft);
	return 0;
}

/* Opens the group of op->spec. Returns 1 when the op finishes later (a
 * failed start closes the group asynchronously). */
static int group_open(vt_repl_host *h, struct op *op)
{
	const vt_repl_group_spec *s = op->spec;
	if (!s->dir || (s->borrow && s->n_peers > 1) || (s->join && !s->self) ||
	    (s->sm_ops && (s->borrow || s->shard_opts)))
		return vt_errmsg_set(op->err, VT_EINVAL, "group spec: a "
				     "directory, a borrowed shard only alone, "
				     "a joining replica with its id, no shard "
				     "options with another state machine");
	vt_repl_hgroup *g = vt_calloc(1, sizeof *g);
	if (!g)
		return vt_errmsg_set(op->err, VT_ENOMEM, "out of memory");
	g->h = h;
	g->one_voter = s->n_peers <= 1 && !s->join;
	g->custom_sm = s->sm_ops != NULL;
	snprintf(g->sdir, sizeof g->sdir, "%s", s->dir);
	if (snprintf(g->dir, sizeof g->dir, "%s/raft", s->dir) >=
	    (int)sizeof g->dir) {
		vt_free(g);
		return vt_errmsg_set(op->err, VT_ELIMIT, "path too long");
	}
	int rc = group_prepare(g, s, op->err);
	if (rc) {
		vt_free(g);
		return rc;
	}
	g->next = h->groups;
	h->groups = g;
	if ((rc = group_start(g, s, op->err))) {
		op->rc = rc;
		g->close_op = op;
		g->closing = 1;
		raft_close(&g->raft, raft_closed);
		return 1;
	}
	op->g = g;
	return 0;
}

static void apply_cb(void *ud, int status, const vt_repl_result *res,
		     const char *msg)
{
	struct op *op = ud;
	if (res) /* applied, or a verdict */
		*op->res = *res;
	if (status)
		vt_errmsg_set(op->err, status, "%s", msg);
	finish(op->g->h, op, status);
}

static void wait_ready(vt_repl_hgroup *g, struct op *op)
{
	op->next = NULL;
	if (g->wait_tail)
		g->wait_tail->next = op;
	else
		g->wait_head = op;
	g->wait_tail = op;
}

static int not_leader(vt_repl_hgroup *g, struct op *op)
{
	return vt_repl_busy_msg(g->repl, op->err);
}

/* Worth waiting for: a one-voter group (it elects itself) or a leader
 * whose barrier is not applied yet. A candidate may lose: the caller
 * retries elsewhere rather than wait for an election's outcome. */
static int may_become_ready(vt_repl_hgroup *g)
{
	return g->one_voter || raft_state(&g->raft) == RAFT_LEADER;
}

static void propose(vt_repl_hgroup *g, struct op *op)
{
	if (g->closing) {
		finish(g->h, op, vt_errmsg_set(op->err, VT_ESHUTDOWN,
					       "shard closing: not written"));
		return;
	}
	if (!vt_repl_ready(g->repl)) {
		/* A leader waiting for its barrier, or a one-voter group that
		 * is electing itself: wait (bounded). Else redirect. */
		if (may_become_ready(g))
			wait_ready(g, op);
		else
			finish(g->h, op, not_leader(g, op));
		return;
	}
	int rc = vt_repl_submit(g->repl, op->cmd, op->len, apply_cb, op);
	if (rc)
		finish(g->h, op, rc == VT_EBUSY ? not_leader(g, op)
			: vt_errmsg_set(op->err, rc, "raft: %s",
					vt_strerror(rc)));
}

static void op_cb(void *ud, int status, const char *msg)
{
	struct op *op = ud;
	if (status)
		vt_errmsg_set(op->err, status, "%s", msg);
	finish(op->g->h, op, status);
}

/* A membership change on the leader; finished from its callback. */
static void run_change(vt_repl_hgroup *g, struct op *op)
{
	vt_repl *r = g->repl;
	int rc;
	if (!r)
		rc = vt_errmsg_set(op->err, VT_ESHUTDOWN, "group closed");
	else if (op->change == VT_REPL_CHANGE_ADD)
		rc = vt_repl_add(r, op->id, op->peer, op->role, op_cb, op,
				 op->err);
	else if (op->change == VT_REPL_CHANGE_PROMOTE)
		rc = vt_repl_promote(r, op->id, op_cb, op, op->err);
	else if (op->change == VT_REPL_CHANGE_REMOVE)
		rc = vt_repl_remove(r, op->id, op_cb, op, op->err);
	else if (op->change == VT_REPL_CHANGE_TRANSFER)
		rc = vt_repl_transfer(r, op->id, op_cb, op, op->err);
	else
		rc = vt_errmsg_set(op->err, VT_EINVAL, "unknown change %d",
				   op->change);
	if (rc)
		finish(g->h, op, rc);
}

/* A linearizable read: once leadership is confirmed, fn runs here. */
static void read_cb(void *ud, int status, const char *msg)
{
	struct op *op = ud;
	vt_repl_hgroup *g = op->g;
	if (!status)
		status = g->repl ? op->fn(g->repl, &g->raft, op->ud)
				 : VT_ESHUTDOWN;
	else
		vt_errmsg_set(op->err, status, "%s", msg);
	finish(g->h, op, status);
}

static void run_read(vt_repl_hgroup *g, struct op *op)
{
	int rc = g->repl ? vt_repl_read(g->repl, read_cb, op) : VT_ESHUTDOWN;
	if (rc == VT_EBUSY)
		vt_repl_busy_msg(g->repl, op->err);
	if (rc)
		finish(g->h, op, rc);
}

static void run_op(vt_repl_host *h, struct op *op)
{
	vt_repl_hgroup *g = op->g;
	switch (op->kind) {
	case OP_APPLY:
		propose(g, op);
		break;
	case OP_ATTACH: {
		int rc = h->stopping ? vt_errmsg_set(op->err, VT_ESHUTDOWN,
						     "shutting down")
				     : group_open(h, op);
		if (rc != 1)
			finish(h, op, rc);
		break;
	}
	case OP_DETACH:
		if (g->cleaned) {
			finish(h, op, 0);
			break;
		}
		g->close_op = op;
		group_close(g);
		break;
	case OP_CALL:
		finish(h, op, g->repl ? op->fn(g->repl, &g->raft, op->ud)
				      : VT_ESHUTDOWN);
		break;
	case OP_DROP:
		finish(h, op, h->mux ? vt_repl_mux_drop_peer(h->mux, op->peer,
							     op->drop)
				     : VT_ESHUTDOWN);
		break;
	case OP_CHANGE:
		run_change(g, op);
		break;
	case OP_READ:
		run_read(g, op);
		break;
	}
}

/* Re-proposes what waited for readiness; fails what waited too long. */
static void service_waiting(vt_repl_hgroup *g, uint64_t now)
{
	struct op *op = g->wait_head;
	g->wait_head = g->wait_tail = NULL;
	while (op) {
		struct op *n = op->next;
		if (vt_repl_ready(g->repl))
			propose(g, op);
		else if (now >= op->deadline_ns || !may_become_ready(g))
			finish(g->h, op, not_leader(g, op));
		else
			wait_ready(g, op);
		op = n;
	}
}

static void stop_handles(vt_repl_host *h)
{
	h->mux_closed = 1;
	vt_repl_mux_close(h->mux, NULL, NULL);
	h->mux = NULL;
	uv_close((uv_handle_t *)&h->wake, NULL);
	uv_close((uv_handle_t *)&h->check, NULL);
	uv_close((uv_handle_t *)&h->timer, NULL);
	VT_LOG(VT_LOG_INFO, MOD, "raft groups closed");
}

/* Every loop iteration (and every tick_ms): leadership, waiting writes,
 * the group-commit flush, closed groups. */
static void service(vt_repl_host *h)
{
	uint64_t now = vt_clock_mono_ns();
	int open = 0;
	for (vt_repl_hgroup *g = h->groups; g; g = g->next) {
		open += !g->cleaned;
		if (g->cleaned)
			continue;
		if (g->closed) {
			group_cleanup(g);
			continue;
		}
		if (g->closing)
			continue;
		vt_repl_tick(g->repl);
		if (g->wait_head)
			service_waiting(g, now);
		vt_repl_flush(g->repl);
	}
	if (h->stop_started && !open && !h->mux_closed)
		stop_handles(h);
}

static void stop(vt_repl_host *h)
{
	h->stop_started = 1;
	VT_LOG(VT_LOG_INFO, MOD, "closing raft groups");
	for (vt_repl_hgroup *g = h->groups; g; g = g->next)
		group_close(g);
}

static void on_wake(uv_async_t *a)
{
	vt_repl_host *h = a->data;
	pthread_mutex_lock(&h->mu);
	struct op *op = h->qhead;
	h->qhead = h->qtail = NULL;
	int stopping = h->stopping;
	pthread_mutex_unlock(&h->mu);
	while (op) {
		struct op *next = op->next;
		run_op(h, op);
		op = next;
	}
	if (stopping && !h->stop_started)
		stop(h);
	service(h);
}

static void on_check(uv_check_t *c) { service(c->data); }
static void on_timer(uv_timer_t *t) { service(t->data); }

static void host_thread(void *arg)
{
	vt_repl_host *h = arg;
	uv_run(&h->loop, UV_RUN_DEFAULT);
}

/* ---- any thread ------------------------------------------------------------- */

/* Hands `op` to the host thread and waits for it. */
static int submit(vt_repl_host *h, struct op *op)
{
	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		return vt_errmsg_set(op->err, VT_ESHUTDOWN, "shutting down");
	}
	op->next = NULL;
	if (h->qtail)
		h->qtail->next = op;
	else
		h->qhead = op;
	h->qtail = op;
	uv_async_send(&h->wake);
	while (!op->done)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	return op->rc;
}

int vt_repl_host_attach(vt_repl_host *h, const vt_repl_group_spec *s,
			vt_repl_hgroup **out, vt_errmsg *err)
{
	struct op op = {.kind = OP_ATTACH, .spec = s, .err = err};
	int rc = submit(h, &op);
	*out = rc ? NULL : op.g;
	return rc;
}

int vt_repl_host_submit(vt_repl_host *h, vt_repl_hgroup *g, const void *cmd,
			size_t len, vt_repl_result *res, vt_errmsg *err)
{
	struct op op = {.kind = OP_APPLY, .g = g, .cmd = cmd, .len = len,
			.res = res, .err = err};
	op.deadline_ns = vt_clock_mono_ns() +
			 (uint64_t)h->o.wait_ready_ms * 1000000u;
	memset(res, 0, sizeof *res);
	return submit(h, &op);
}

int vt_repl_host_apply(vt_repl_host *h, vt_repl_hgroup *g, const void *cmd,
		       size_t len, vt_shard_result *res, vt_errmsg *err)
{
	memset(res, 0, sizeof *res);
	if (g->custom_sm)
		return vt_errmsg_set(err, VT_EINVAL, "not a shard group: use "
				     "vt_repl_host_submit");
	vt_repl_result rr;
	int rc = vt_repl_host_submit(h, g, cmd, len, &rr, err);
	if (!rc)
		vt_repl_result_shard(&rr, res);
	return rc;
}

vt_shard *vt_repl_host_shard_get(vt_repl_hgroup *g)
{
	vt__repl_shard_sm *s = g->custom_sm ? NULL : vt__repl_own(g->repl);
	if (!s)
		return NULL;
	pthread_rwlock_rdlock(&s->swap);
	vt_shard *sh = s->shard;
	if (!sh)
		pthread_rwlock_unlock(&s->swap);
	return sh;
}

void vt_repl_host_shard_put(vt_repl_hgroup *g)
{
	vt__repl_shard_sm *s = vt__repl_own(g->repl);
	pthread_rwlock_unlock(&s->swap);
}

int vt_repl_host_call(vt_repl_host *h, vt_repl_hgroup *g,
		      int (*fn)(vt_repl *, struct raft *, void *), void *ud)
{
	vt_errmsg err = {{0}};
	struct op op = {.kind = OP_CALL, .g = g, .fn = fn, .ud = ud,
			.err = &err};
	return submit(h, &op);
}

int vt_repl_host_drop_peer(vt_repl_host *h, const char *peer_address,
			   int drop)
{
	vt_errmsg err = {{0}};
	struct op op = {.kind = OP_DROP, .peer = peer_address, .drop = drop,
			.err = &err};
	return submit(h, &op);
}

int vt_repl_host_change(vt_repl_host *h, vt_repl_hgroup *g, int kind,
			raft_id id, const char *address, int role,
			vt_errmsg *err)
{
	struct op op = {.kind = OP_CHANGE, .g = g, .change = kind, .id = id,
			.peer = address, .role = role, .err = err};
	return submit(h, &op);
}

int vt_repl_host_read(vt_repl_host *h, vt_repl_hgroup *g,
		      int (*fn)(vt_repl *r, struct raft *raft, void *ud),
		      void *ud, vt_errmsg *err)
{
	struct op op = {.kind = OP_READ, .g = g, .fn = fn, .ud = ud,
			.err = err};
	return submit(h, &op);
}

int vt_repl_host_destroy(vt_repl_host *h, vt_repl_hgroup *g, vt_errmsg *err)
{
	if (g->custom_sm)
		return vt_errmsg_set(err, VT_EINVAL, "destroy: not a shard "
				     "group: detach it and delete its files");
	vt_repl_host_detach(h, g);
	int rc = vt_repl_destroy(g->sdir, err);
	if (!rc)
		VT_LOG(VT_LOG_INFO, MOD, "%s: replica removed and its files "
		       "deleted", g->sdir);
	return rc;
}

void vt_repl_host_detach(vt_repl_host *h, vt_repl_hgroup *g)
{
	vt_errmsg err = {{0}};
	struct op op = {.kind = OP_DETACH, .g = g, .err = &err};
	if (submit(h, &op) != VT_ESHUTDOWN)
		return;
	/* Stopping: the host closes every group; wait for this one. */
	pthread_mutex_lock(&h->mu);
	while (!g->cleaned && !h->joined)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

int vt_repl_host_open(const vt_repl_host_opts *o, vt_repl_host **out,
		      vt_errmsg *err)
{
	*out = NULL;
	vt_repl_host *h = vt_calloc(1, sizeof *h);
	if (!h)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	h->o = *o;
	snprintf(h->bind, sizeof h->bind, "%s", o->bind ? o->bind
							: "127.0.0.1:0");
	h->o.bind = h->bind;
	int rc = uv_loop_init(&h->loop);
	if (rc) {
		vt_free(h);
		return vt_errmsg_set(err, VT_EIO, "uv_loop_init: %s",
				     uv_strerror(rc));
	}
	if ((rc = vt_repl_mux_open(&h->loop, h->bind, &h->mux, err))) {
		uv_loop_close(&h->loop);
		vt_free(h);
		return rc;
	}
	snprintf(h->addr, sizeof h->addr, "%s", vt_repl_mux_address(h->mux));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	uv_async_init(&h->loop, &h->wake, on_wake);
	uv_check_init(&h->loop, &h->check);
	uv_timer_init(&h->loop, &h->timer);
	h->wake.data = h->check.data = h->timer.data = h;
	uv_check_start(&h->check, on_check);
	uv_timer_start(&h->timer, on_timer, h->o.tick_ms, h->o.tick_ms);
	if (uv_thread_create(&h->thread, host_thread, h)) {
		h->stopping = h->stop_started = 1;
		stop_handles(h);
		uv_run(&h->loop, UV_RUN_DEFAULT);
		vt_repl_host_free(h);
		return vt_errmsg_set(err, VT_EIO, "cannot start the raft "
				     "thread");
	}
	*out = h;
	return 0;
}

const char *vt_repl_host_address(const vt_repl_host *h) { return h->addr; }

void vt_repl_host_close(vt_repl_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	int again = h->stopping;
	h->stopping = 1;
	pthread_mutex_unlock(&h->mu);
	if (again)
		return;
	uv_async_send(&h->wake);
	uv_thread_join(&h->thread);
	/* Ops queued after the thread's last look fail here. */
	struct op *op = h->qhead;
	h->qhead = h->qtail = NULL;
	for (; op; op = op->next)
		finish(h, op, vt_errmsg_set(op->err, VT_ESHUTDOWN,
					    "shutting down"));
	pthread_mutex_lock(&h->mu);
	h->joined = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void vt_repl_host_free(vt_repl_host *h)
{
	if (!h)
		return;
	while (h->groups) {
		vt_repl_hgroup *g = h->groups;
		h->groups = g->next;
		raft_uv_close(&g->io);
		vt_repl_transport_release(g->tr);
		vt_free(g);
	}
	uv_loop_close(&h->loop);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	vt_free(h);
}
