/* raftw.c: `vectron serve` writes through Raft (raftw.h). Each shard is a
 * one-voter raft group (raft_uv, log in <shard>/raft/, the mux transport)
 * on the server's loop; lib/repl is its FSM. Request workers never touch
 * raft: they queue an op (mutex + uv_async) and wait on a condvar for their
 * own result; the loop proposes, flushes once per iteration and answers. */
#include "raftw.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/log.h"
#include "repl/repl.h"
#include "repl/transport.h"

#define MOD "raft"
#define BASE_FILE "raft-index-base"

enum op_kind { OP_APPLY, OP_ATTACH, OP_DETACH };

/* One request from a thread to the loop; lives on the caller's stack. */
struct op {
	struct op *next;
	enum op_kind kind;
	struct group *g;          /* apply, detach; attach: the result */
	const void *cmd;          /* apply */
	size_t len;
	vt_shard_result *res;
	vt_errmsg *err;
	vt_shard *shard;          /* attach */
	const char *dir;
	int rc, done;
};

struct group {
	vt_raftw *w;
	struct group *next;       /* in w->groups while open or closing */
	vt_repl *repl;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport *tr;
	struct op *wait_head, *wait_tail; /* applies waiting for readiness */
	int closing, closed, cleaned, detached;
	struct op *close_op;      /* finished once the group is cleaned */
	char dir[4300];           /* <shard>/raft */
};

struct vt_raftw {
	uv_loop_t *loop;
	uv_thread_t loop_thread;
	vt_repl_mux *mux;
	uv_async_t wake;
	uv_check_t check;
	uv_timer_t timer;
	pthread_mutex_t mu;       /* queue, closed, op->done */
	pthread_cond_t cv;
	struct op *qhead, *qtail;
	int closed;               /* vt_raftw_close called */
	int mux_closed;
	struct group *groups;
	uint64_t next_id;
	vt_coll_writer writer;
};

static void finish(vt_raftw *w, struct op *op, int rc)
{
	pthread_mutex_lock(&w->mu);
	op->rc = rc;
	op->done = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- groups (loop thread) --------------------------------------------------- */

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

static int base_write(const char *sdir, uint64_t base)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/" BASE_FILE, sdir);
	char text[32];
	int n = snprintf(text, sizeof text, "%" PRIu64 "\n", base);
	vt_afile f;
	vt_errmsg e = {{0}};
	int rc = vt_afile_open(&f, path, &e);
	if (rc)
		return rc;
	if ((rc = vt_afile_write(&f, text, (size_t)n))) {
		vt_afile_abort(&f);
		return rc;
	}
	return vt_afile_commit(&f, &e);
}

/* After raft_close's callback: release what the group holds. raft_uv
 * 0.15 may still have libuv callbacks pending at that point (freeing
 * raft_uv's memory here was seen to double-free after a restart from a
 * log that kill -9 left open), so raft_uv_close, the transport and the
 * struct wait for vt_raftw_free, after the loop has ended. */
static void group_cleanup(struct group *g)
{
	vt_repl_close(g->repl); /* fails what is in flight: VT_ESHUTDOWN */
	g->repl = NULL;
	pthread_mutex_lock(&g->w->mu);
	g->cleaned = 1;
	pthread_cond_broadcast(&g->w->cv);
	pthread_mutex_unlock(&g->w->mu);
	struct op *op = g->close_op;
	if (op)
		finish(g->w, op, op->rc);
}

static void raft_closed(struct raft *r)
{
	struct group *g = r->data;
	g->closed = 1; /* cleaned up in service(), outside raft's stack */
}

static void fail_waiting(struct group *g, int rc, const char *msg)
{
	struct op *op = g->wait_head;
	g->wait_head = g->wait_tail = NULL;
	while (op) {
		struct op *next = op->next;
		vt_errmsg_set(op->err, rc, "%s", msg);
		finish(g->w, op, rc);
		op = next;
	}
}

static void group_close(struct group *g)
{
	if (g->closing)
		return;
	g->closing = 1;
	fail_waiting(g, VT_ESHUTDOWN, "shard closing: not written");
	raft_close(&g->raft, raft_closed);
}

/* Opens (bootstrapping on first start) the one-voter group of the shard in
 * `sdir`. On an error after raft_init the group closes asynchronously and
 * `op` is finished when it is cleaned; returns 1 then. */
static int group_open(vt_raftw *w, struct op *op)
{
	vt_errmsg *err = op->err;
	struct group *g = vt_calloc(1, sizeof *g);
	if (!g)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	g->w = w;
	int rc;
	if (snprintf(g->dir, sizeof g->dir, "%s/raft", op->dir) >=
	    (int)sizeof g->dir) {
		vt_free(g);
		return vt_errmsg_set(err, VT_ELIMIT, "path too long");
	}
	struct stat st;
	uint64_t base = 0;
	if (stat(g->dir, &st)) {
		/* First start: a shard that already holds writes (from
		 * before serve used Raft) numbers its entries after them. */
		uint64_t applied = 0, indexed = 0;
		vt_shard_progress(op->shard, &applied, &indexed);
		base = applied;
		if ((base && (rc = base_write(op->dir, base))) ||
		    (mkdir(g->dir, 0755) && errno != EEXIST &&
		     (rc = vt_err_from_errno(errno)))) {
			vt_free(g);
			return vt_errmsg_set(err, rc, "%s: cannot create the "
					     "raft log: %s", g->dir,
					     vt_strerror(rc));
		}
		vt_fsync_dir(op->dir);
		if (base)
			VT_LOG(VT_LOG_INFO, MOD, "%s: new raft log after "
			       "shard index %" PRIu64, g->dir, base);
	} else if ((rc = base_read(op->dir, &base))) {
		vt_free(g);
		return vt_errmsg_set(err, rc, "%s/" BASE_FILE ": unreadable",
				     op->dir);
	}
	vt_repl_opts ro;
	vt_repl_opts_default(&ro, op->dir);
	ro.borrow = op->shard;
	ro.index_base = base;
	if ((rc = vt_repl_open(&ro, &g->repl, err))) {
		vt_free(g);
		return rc;
	}
	if ((rc = vt_repl_transport_for_group(w->mux, ++w->next_id, &g->tr))) {
		vt_repl_close(g->repl);
		vt_free(g);
		return vt_errmsg_set(err, rc, "out of memory");
	}
	int rrc = raft_uv_init(&g->io, w->loop, g->dir, g->tr);
	if (rrc) {
		vt_errmsg_set(err, VT_EIO, "%s: raft log: %s", g->dir,
			      g->io.errmsg);
		vt_repl_transport_release(g->tr);
		vt_repl_close(g->repl);
		vt_free(g);
		return VT_EIO;
	}
	/* A shard's group holds up to 256 KiB entries; smaller segments keep
	 * many idle shards cheap (research §1.3). */
	/* raft_uv_set_segment_size(&g->io, 1u << 20); */
	const char *addr = vt_repl_mux_address(w->mux);
	rrc = raft_init(&g->raft, &g->io, vt_repl_fsm(g->repl), 1, addr);
	if (rrc) {
		vt_errmsg_set(err, VT_EIO, "%s: raft: %s", g->dir,
			      raft_strerror(rrc));
		raft_uv_close(&g->io);
		vt_repl_transport_release(g->tr);
		vt_repl_close(g->repl);
		vt_free(g);
		return VT_EIO;
	}
	g->raft.data = g;
	vt_repl_attach(g->repl, &g->raft);
	/* Entries of a single voter commit on its own fsync; snapshots are
	 * metadata only (lib/repl, borrowed shard) but still make raft_uv
	 * pause, so not too often (research §3.1). */
	raft_set_snapshot_threshold(&g->raft, 16384);
	raft_set_snapshot_trailing(&g->raft, 2048);
	raft_set_election_timeout(&g->raft, 200);
	raft_set_heartbeat_timeout(&g->raft, 50);
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	rrc = raft_configuration_add(&conf, 1, addr, RAFT_VOTER);
	if (!rrc) {
		rrc = raft_bootstrap(&g->raft, &conf);
		if (rrc == RAFT_CANTBOOTSTRAP)
			rrc = 0; /* a log exists: restart from it */
	}
	raft_configuration_close(&conf);
	if (!rrc)
		rrc = raft_start(&g->raft);
	g->next = w->groups;
	w->groups = g;
	if (rrc) {
		op->rc = vt_errmsg_set(err, VT_EIO, "%s: raft start: %s (%s)",
				       g->dir, raft_strerror(rrc),
				       raft_errmsg(&g->raft));
		g->detached = 1;
		g->close_op = op;
		group_close(g);
		return 1;
	}
	op->g = g;
	return 0;
}

static void propose(struct group *g, struct op *op);

static void apply_cb(void *ud, int status, const vt_shard_result *res,
		     const char *msg)
{
	struct op *op = ud;
	if (!status && res)
		*op->res = *res;
	else if (status)
		vt_errmsg_set(op->err, status, "%s", msg);
	finish(op->g->w, op, status);
}

static void propose(struct group *g, struct op *op)
{
	if (g->closing) {
		finish(g->w, op, vt_errmsg_set(op->err, VT_ESHUTDOWN,
					       "shard closing: not written"));
		return;
	}
	if (!vt_repl_ready(g->repl)) {
		/* Not leader yet (just started): wait for the barrier. */
		op->next = NULL;
		if (g->wait_tail)
			g->wait_tail->next = op;
		else
			g->wait_head = op;
		g->wait_tail = op;
		return;
	}
	int rc = vt_repl_propose(g->repl, op->cmd, op->len, apply_cb, op);
	if (rc)
		finish(g->w, op, vt_errmsg_set(op->err, rc, "raft: %s",
					       vt_strerror(rc)));
}

static void run_op(vt_raftw *w, struct op *op)
{
	switch (op->kind) {
	case OP_APPLY:
		propose(op->g, op);
		break;
	case OP_ATTACH: {
		int rc = w->closed ? vt_errmsg_set(op->err, VT_ESHUTDOWN,
						   "server stopping")
				   : group_open(w, op);
		if (rc != 1)
			finish(w, op, rc);
		break;
	}
	case OP_DETACH: {
		struct group *g = op->g;
		g->detached = 1;
		if (g->cleaned) {
			finish(w, op, 0);
			break;
		}
		g->close_op = op;
		group_close(g);
		break;
	}
	}
}

/* Every loop iteration (and every 10 ms): ticks leadership, proposes what
 * waited for it, submits the batches, cleans closed groups. */
static void service(vt_raftw *w)
{
	struct group *g = w->groups;
	int open = 0;
	while (g) {
		struct group *next = g->next;
		open += !g->cleaned;
		if (g->cleaned) {
			/* closed with the server, waiting for its detach */
		} else if (g->closed) {
			group_cleanup(g);
		} else if (!g->closing) {
			vt_repl_tick(g->repl);
			if (g->wait_head && vt_repl_ready(g->repl)) {
				struct op *op = g->wait_head;
				g->wait_head = g->wait_tail = NULL;
				while (op) {
					struct op *n = op->next;
					propose(g, op);
					op = n;
				}
			}
			vt_repl_flush(g->repl);
		}
		g = next;
	}
	if (w->closed && !open && !w->mux_closed) {
		w->mux_closed = 1;
		vt_repl_mux_close(w->mux, NULL, NULL);
		w->mux = NULL;
		uv_close((uv_handle_t *)&w->wake, NULL);
		uv_close((uv_handle_t *)&w->check, NULL);
		uv_close((uv_handle_t *)&w->timer, NULL);
		VT_LOG(VT_LOG_INFO, MOD, "raft groups closed");
	}
}

static void on_wake(uv_async_t *a)
{
	vt_raftw *w = a->data;
	pthread_mutex_lock(&w->mu);
	struct op *op = w->qhead;
	w->qhead = w->qtail = NULL;
	pthread_mutex_unlock(&w->mu);
	while (op) {
		struct op *next = op->next;
		run_op(w, op);
		op = next;
	}
}

static void on_check(uv_check_t *c) { service(c->data); }
static void on_timer(uv_timer_t *t) { service(t->data); }

/* ---- any thread ------------------------------------------------------------- */

static int on_loop_thread(vt_raftw *w)
{
	uv_thread_t self = uv_thread_self();
	return uv_thread_equal(&self, &w->loop_thread);
}

/* Runs `op` on the loop and waits for it. From the loop's own thread this
 * is only allowed while the loop is not running (opening the database
 * before it, closing it after): the loop is then driven here. */
static int submit(vt_raftw *w, struct op *op)
{
	if (on_loop_thread(w)) {
		run_op(w, op);
		while (!op->done && !w->mux_closed)
			uv_run(w->loop, UV_RUN_ONCE);
		return op->done ? op->rc : VT_ESHUTDOWN;
	}
	pthread_mutex_lock(&w->mu);
	if (w->closed && op->kind != OP_DETACH) {
		pthread_mutex_unlock(&w->mu);
		return vt_errmsg_set(op->err, VT_ESHUTDOWN, "server stopping");
	}
	if (w->closed) {
		/* the loop may be gone: every group is closing or closed */
		pthread_mutex_unlock(&w->mu);
		return VT_ESHUTDOWN;
	}
	op->next = NULL;
	if (w->qtail)
		w->qtail->next = op;
	else
		w->qhead = op;
	w->qtail = op;
	uv_async_send(&w->wake);
	while (!op->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return op->rc;
}

static int w_attach(void *ud, vt_shard *s, const char *dir, void **h,
		    vt_errmsg *err)
{
	struct op op = {.kind = OP_ATTACH, .shard = s, .dir = dir, .err = err};
	int rc = submit(ud, &op);
	*h = rc ? NULL : op.g;
	return rc;
}

static int w_apply(void *ud, void *h, const void *cmd, size_t len,
		   vt_shard_result *res, vt_errmsg *err)
{
	struct op op = {.kind = OP_APPLY, .g = h, .cmd = cmd, .len = len,
			.res = res, .err = err};
	memset(res, 0, sizeof *res);
	return submit(ud, &op);
}

static void w_detach(void *ud, void *h)
{
	vt_raftw *w = ud;
	struct group *g = h;
	vt_errmsg err = {{0}};
	struct op op = {.kind = OP_DETACH, .g = g, .err = &err};
	if (submit(w, &op) == VT_ESHUTDOWN && !on_loop_thread(w)) {
		/* Stopping: vt_raftw_close is closing the group; the shard
		 * may close once it is (the group is freed with the rest). */
		pthread_mutex_lock(&w->mu);
		while (!g->cleaned)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
}

int vt_raftw_open(uv_loop_t *loop, const char *bind, vt_raftw **out,
		  vt_errmsg *err)
{
	*out = NULL;
	vt_raftw *w = vt_calloc(1, sizeof *w);
	if (!w)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	w->loop = loop;
	w->loop_thread = uv_thread_self();
	int rc = vt_repl_mux_open(loop, bind, &w->mux, err);
	if (rc) {
		vt_free(w);
		return rc;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	uv_async_init(loop, &w->wake, on_wake);
	uv_check_init(loop, &w->check);
	uv_timer_init(loop, &w->timer);
	w->wake.data = w->check.data = w->timer.data = w;
	uv_check_start(&w->check, on_check);
	uv_timer_start(&w->timer, on_timer, 10, 10);
	w->writer = (vt_coll_writer){w, w_attach, w_apply, w_detach};
	*out = w;
	return 0;
}

const vt_coll_writer *vt_raftw_writer(vt_raftw *w) { return &w->writer; }

const char *vt_raftw_address(vt_raftw *w)
{
	return w->mux ? vt_repl_mux_address(w->mux) : "";
}

void vt_raftw_close(vt_raftw *w)
{
	if (!w || w->closed)
		return;
	pthread_mutex_lock(&w->mu);
	w->closed = 1;
	struct op *op = w->qhead;
	w->qhead = w->qtail = NULL;
	pthread_mutex_unlock(&w->mu);
	/* what was queued still runs: applies fail, detaches close */
	while (op) {
		struct op *next = op->next;
		run_op(w, op);
		op = next;
	}
	VT_LOG(VT_LOG_INFO, MOD, "closing raft groups");
	for (struct group *g = w->groups; g; g = g->next)
		group_close(g);
	service(w);
}

void vt_raftw_free(vt_raftw *w)
{
	if (!w)
		return;
	while (w->groups) {
		struct group *g = w->groups;
		w->groups = g->next;
		if (g->tr) { /* raft_init was reached */
			raft_uv_close(&g->io);
			vt_repl_transport_release(g->tr);
		}
		vt_free(g);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	vt_free(w);
}
