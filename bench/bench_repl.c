/* bench_repl.c: three replicas of one shard behind raft (lib/repl over
 * raft_uv and the mux transport) in one process, on one libuv loop: group-
 * committed Fashion-MNIST upserts (acknowledged rate, commit latency)
 * against the same shard without replication, then leader failover time.
 * Not a multi-process test: the "kill" is in-process (see kill_leader). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "common.h"
#include "cmds.h"
#include "dataset.h"
#include "repl/repl.h"
#include "repl/transport.h"
#include "shard/cmd.h"
#include "shard/shard.h"
#include "store/store.h"

#define BATCH 256u
#define NREP 3
#define GROUP_ID 42u

/* ---- options ------------------------------------------------------------ */

static struct {
	int quick;
	size_t n;            /* points */
	unsigned window;     /* commands in flight (proposed, not acked) */
	unsigned batch_max;  /* commands per raft_apply */
	unsigned election_ms, heartbeat_ms;
	size_t segment_mb;   /* raft_uv segment size */
	unsigned index_threads; /* per shard (async), 0 = the shard's default */
	int store_sync;      /* enum vt_store_sync, replicas and baseline */
	int modes[2];
	int nmodes;
	const char *root;
} opt;

/* ---- encoded commands ----------------------------------------------------- */

/* Point i's payload: its bucket, the field the shards index. */


static void shard_opts(vt_shard_opts *o, const vt_shard_config *cfg)
{
	vt_shard_opts_default(o);
	o->create = cfg;
	o->store_sync = opt.store_sync;
	/* A write the async queue cannot take would stop a replica
	 * (RAFT_IOERR, docs/replication.md §2): keep the bound above the run. */
	o->queue_max = 1u << 22;
	if (opt.index_threads)
		o->index_threads = opt.index_threads;
}

static double now_s(void)
{
	return (double)vt_clock_mono_ns() / 1e9;
}


/* ---- the unreplicated baseline -------------------------------------------- */

typedef struct rate_res {
	size_t points, batches;
	double wall_s, cpu_s, others_s;
	double vps, bps, p50, p99, max;
	double catchup_s; /* repl: until every follower applied the last entry */
	double loop_cpu_s, apply_s; /* repl: loop thread CPU, time in applies */
	unsigned leader_changes;
	uint64_t raft_batches;
	int ok;
} rate_res;

static int run_baseline(const char *dir, const vt_bench_data *d, const vt_bench_cmds *c, int mode,
			rate_res *r, vt_errmsg *err)
{
	vt_shard_config cfg;
	vt_bench_repl_shard_config(&cfg, d->dim, mode);
	vt_shard_opts o;
	shard_opts(&o, &cfg);
	vt_shard *s = NULL;
	double *lat = vt_malloc(c->n * sizeof *lat);
	int rc = lat ? vt_shard_open(dir, &o, &s, err) : VT_ENOMEM;
	if (rc)
		goto out;
	double cpu0 = vt_bench_self_cpu_s(), busy0 = vt_bench_machine_busy_s(), t0 = now_s();
	for (size_t b = 0; b < c->n; b++) {
		vt_shard_result res;
		double tb = now_s();
		rc = vt_shard_apply(s, 0, c->p[b], c->len[b], &res, err);
		lat[b] = now_s() - tb;
		if (rc) {
			vt_errmsg_prefix(err, rc, "baseline batch %zu", b);
			goto out;
		}
		r->points += res.upserted;
	}
	r->wall_s = now_s() - t0;
	r->cpu_s = vt_bench_self_cpu_s() - cpu0;
	r->others_s = vt_bench_others_cpu(busy0, vt_bench_machine_busy_s(), r->cpu_s);
	r->batches = c->n;
	r->vps = (double)r->points / r->wall_s;
	r->bps = (double)c->n / r->wall_s;
	vt_bench_pct_ms(lat, c->n, &r->p50, &r->p99, &r->max);
	r->ok = 1;
out:
	vt_shard_close(s);
	vt_free(lat);
	return rc;
}

/* ---- three replicas on one loop ------------------------------------------ */

/* Each replica's raft_fsm is wrapped to time the shard applies, which run
 * on the loop thread (where the time goes, besides raft and the network). */
typedef struct timed_fsm {
	struct raft_fsm fsm;
	struct raft_fsm *inner;
} timed_fsm;

static double apply_s; /* loop time spent in the three replicas' apply */

static int tf_apply(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
	struct raft_fsm *in = ((timed_fsm *)f->data)->inner;
	double t0 = now_s();
	int rc = in->apply(in, buf, result);
	apply_s += now_s() - t0;
	return rc;
}

static int tf_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n)
{
	struct raft_fsm *in = ((timed_fsm *)f->data)->inner;
	return in->snapshot(in, bufs, n);
}

static int tf_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	struct raft_fsm *in = ((timed_fsm *)f->data)->inner;
	return in->restore(in, buf);
}

typedef struct replica {
	int i;
	char dir[512], rdir[600], sdir[600];
	vt_repl_mux *mux;
	struct raft_uv_transport *t;
	struct raft_io io;
	struct raft raft;
	vt_repl *repl;
	timed_fsm tf;
	int alive;   /* raft running */
	int closed;  /* raft_close done */
} replica;

static uv_loop_t loop;
static uv_check_t check;
static replica reps[NREP];
static int mux_closed_n;

/* The writer: keeps `window` commands in flight on whichever replica is a
 * ready leader; a command that fails is proposed again (upserts by id are
 * idempotent). */
typedef struct slot {
	size_t b;
	int rep;
	double t0;
} slot;

static struct {
	const vt_bench_cmds *c;
	size_t next;          /* next batch to propose (mod c->n when cycling) */
	size_t limit;         /* stop proposing new batches at this count */
	size_t *retry;
	size_t nretry;
	unsigned inflight;
	size_t acked, points, failed;
	double *lat;          /* per batch, first successful ack */
	size_t nlat;
	int cycle;            /* failover phase: reuse batches */
	int stopped;
	/* failover */
	double t_kill;
	int dead;             /* replica killed, -1 none */
	double t_first_ack;   /* first ack by another replica after the kill */
	double t_elected, t_ready;
	int new_leader;
} W;

static void on_ack(void *ud, int status, const vt_shard_result *res, const char *msg)
{
	slot *s = ud;
	W.inflight--;
	if (status == 0) {
		W.acked++;
		W.points += res->upserted;
		if (W.lat && W.nlat < W.limit)
			W.lat[W.nlat++] = now_s() - s->t0;
		if (W.dead >= 0 && s->rep != W.dead && W.t_first_ack == 0 && s->t0 >= W.t_kill)
			W.t_first_ack = now_s();
	} else {
		W.failed++;
		if (!W.cycle && status != VT_EBUSY && status != VT_ECANCELED &&
		    status != VT_ESHUTDOWN)
			fprintf(stderr, "bench_repl: batch %zu: %s (%s)\n", s->b, msg,
				vt_errname(status));
		if (!W.stopped)
			W.retry[W.nretry++] = s->b;
	}
	vt_free(s);
}

static int ready_replica(void)
{
	for (int i = 0; i < NREP; i++)
		if (reps[i].alive && vt_repl_ready(reps[i].repl))
			return i;
	return -1;
}

static void pump(void)
{
	int l = ready_replica();
	if (l < 0 || W.stopped)
		return;
	if (W.dead >= 0 && l != W.dead) {
		if (W.t_ready == 0)
			W.t_ready = now_s();
	}
	/* Failover phase: a few batches in flight, so the survivors' async
	 * index queues (drained by vt_shard_close) stay short. */
	unsigned window = W.cycle && opt.window > 4 ? 4 : opt.window;
	while (W.inflight < window) {
		size_t b;
		if (W.nretry)
			b = W.retry[--W.nretry];
		else if (W.next < W.limit)
			b = W.next++ % W.c->n;
		else
			break;
		slot *s = vt_malloc(sizeof *s);
		if (!s)
			abort();
		*s = (slot){b, l, now_s()};
		int rc = vt_repl_propose(reps[l].repl, W.c->p[b], W.c->len[b], on_ack, s);
		if (rc) {
			vt_free(s);
			W.retry[W.nretry++] = b;
			break;
		}
		W.inflight++;
	}
	vt_repl_flush(reps[l].repl);
}

static void on_check(uv_check_t *h)
{
	(void)h;
	for (int i = 0; i < NREP; i++)
		if (reps[i].alive) {
			vt_repl_tick(reps[i].repl);
			if (W.dead >= 0 && i != W.dead && W.t_elected == 0 &&
			    raft_state(&reps[i].raft) == RAFT_LEADER)
				W.t_elected = now_s();
		}
	pump();
}

static void raft_closed(struct raft *r)
{
	((replica *)r->data)->closed = 1;
}

static void mux_closed(void *arg)
{
	(void)arg;
	mux_closed_n++;
}

/* Runs the loop until pred() or `timeout_s`; 0 on timeout. */
static int run_until(int (*pred)(void), double timeout_s)
{
	double end = now_s() + timeout_s;
	while (!pred()) {
		if (now_s() > end)
			return 0;
		uv_run(&loop, UV_RUN_ONCE);
	}
	return 1;
}

static int have_leader(void)
{
	return ready_replica() >= 0;
}

static int all_acked(void)
{
	return W.next >= W.limit && W.nretry == 0 && W.inflight == 0;
}

static uint64_t target_applied;
static int followers_caught_up(void)
{
	for (int i = 0; i < NREP; i++)
		if (reps[i].alive && raft_last_applied(&reps[i].raft) < target_applied)
			return 0;
	return 1;
}

static int first_ack_seen(void)
{
	return W.t_first_ack != 0;
}

static int none_inflight(void)
{
	return W.inflight == 0;
}

static int all_raft_closed(void)
{
	for (int i = 0; i < NREP; i++)
		if (!reps[i].closed)
			return 0;
	return 1;
}

static int group_open(const char *root, const vt_bench_data *d, int mode, vt_errmsg *err)
{
	vt_shard_config cfg;
	vt_bench_repl_shard_config(&cfg, d->dim, mode);
	int rc;
	memset(reps, 0, sizeof reps);
	for (int i = 0; i < NREP; i++) {
		replica *p = &reps[i];
		p->i = i;
		snprintf(p->dir, sizeof p->dir, "%s/r%d", root, i);
		snprintf(p->rdir, sizeof p->rdir, "%s/raft", p->dir);
		snprintf(p->sdir, sizeof p->sdir, "%s/shard", p->dir);
		if (mkdir(p->dir, 0755) || mkdir(p->rdir, 0755))
			return vt_errmsg_set(err, VT_EIO, "mkdir %s: %s", p->rdir,
					     strerror(errno));
		if ((rc = vt_repl_mux_open(&loop, "127.0.0.1:0", &p->mux, err)))
			return rc;
	}
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	for (int i = 0; i < NREP; i++)
		if (raft_configuration_add(&conf, (raft_id)(i + 1), vt_repl_mux_address(reps[i].mux),
					   RAFT_VOTER))
			return vt_errmsg_set(err, VT_ENOMEM, "raft configuration");
	for (int i = 0; i < NREP; i++) {
		replica *p = &reps[i];
		vt_repl_opts ro;
		vt_repl_opts_default(&ro, p->sdir);
		shard_opts(&ro.shard, &cfg);
		ro.batch_max = opt.batch_max;
		if ((rc = vt_repl_open(&ro, &p->repl, err)))
			return rc;
		if ((rc = vt_repl_transport_for_group(p->mux, GROUP_ID, &p->t)))
			return vt_errmsg_set(err, rc, "transport");
		if (raft_uv_init(&p->io, &loop, p->rdir, p->t))
			return vt_errmsg_set(err, VT_EIO, "raft_uv_init: %s", p->io.errmsg);
		raft_uv_set_segment_size(&p->io, opt.segment_mb << 20);
		p->tf.inner = vt_repl_fsm(p->repl);
		p->tf.fsm = (struct raft_fsm){.version = 1, .data = &p->tf, .apply = tf_apply,
					      .snapshot = tf_snapshot, .restore = tf_restore};
		if (raft_init(&p->raft, &p->io, &p->tf.fsm, (raft_id)(i + 1),
			      vt_repl_mux_address(p->mux)))
			return vt_errmsg_set(err, VT_EIO, "raft_init: %s", raft_errmsg(&p->raft));
		p->raft.data = p;
		vt_repl_attach(p->repl, &p->raft);
		raft_set_election_timeout(&p->raft, opt.election_ms);
		raft_set_heartbeat_timeout(&p->raft, opt.heartbeat_ms);
		raft_set_pre_vote(&p->raft, true);
		/* Research §6: a large threshold, a few thousand trailing. A v1
		 * snapshot here is the whole shard in memory: keep it out of
		 * the measured run (the run has fewer entries than this). */
		raft_set_snapshot_threshold(&p->raft, 16384);
		raft_set_snapshot_trailing(&p->raft, 4096);
		if ((rc = raft_bootstrap(&p->raft, &conf)))
			return vt_errmsg_set(err, VT_EIO, "raft_bootstrap: %s", raft_strerror(rc));
	}
	raft_configuration_close(&conf);
	for (int i = 0; i < NREP; i++) {
		if ((rc = raft_start(&reps[i].raft)))
			return vt_errmsg_set(err, VT_EIO, "raft_start: %s", raft_strerror(rc));
		reps[i].alive = 1;
	}
	uv_check_init(&loop, &check);
	uv_check_start(&check, on_check);
	return 0;
}

static void group_close(void)
{
	uv_check_stop(&check);
	for (int i = 0; i < NREP; i++)
		if (reps[i].repl && !reps[i].closed && reps[i].alive) {
			reps[i].alive = 0;
			raft_close(&reps[i].raft, raft_closed);
		}
	run_until(all_raft_closed, 30);
	for (int i = 0; i < NREP; i++) {
		raft_uv_close(&reps[i].io);
		vt_repl_transport_release(reps[i].t);
	}
	uv_close((uv_handle_t *)&check, NULL);
	for (int i = 0; i < NREP; i++) {
		int before = mux_closed_n;
		vt_repl_mux_close(reps[i].mux, mux_closed, NULL);
		while (mux_closed_n == before)
			uv_run(&loop, UV_RUN_ONCE);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < NREP; i++)
		vt_repl_close(reps[i].repl);
}

/* The abrupt stop: the leader's mux drops both peers (connections cut at
 * once, new ones refused, as a dead process's RSTs would), then its raft
 * is closed without a leadership transfer (0.15's raft_close sends
 * nothing). Its shard is closed only at the end: vt_shard_close would
 * drain the async index queue on the shared loop thread and stall the
 * survivors, which a real crash does not do. */
static void kill_leader(int l)
{
	for (int i = 0; i < NREP; i++)
		if (i != l)
			vt_repl_mux_drop_peer(reps[l].mux, vt_repl_mux_address(reps[i].mux), 1);
	reps[l].alive = 0;
	raft_close(&reps[l].raft, raft_closed);
}

typedef struct fo_res {
	double failover_s, elected_s, ready_s;
	int ok;
} fo_res;

static int run_repl(const char *root, const vt_bench_data *d, const vt_bench_cmds *c, int mode,
		    rate_res *r, fo_res *f, vt_errmsg *err)
{
	int rc = group_open(root, d, mode, err);
	if (rc)
		return rc;
	memset(&W, 0, sizeof W);
	W.c = c;
	W.dead = -1;
	W.retry = vt_calloc(c->n + opt.window + 8, sizeof *W.retry);
	W.lat = vt_malloc(c->n * sizeof *W.lat);
	if (!W.retry || !W.lat)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	if (!run_until(have_leader, 20)) {
		rc = vt_errmsg_set(err, VT_ETIMEDOUT, "no ready leader after 20 s");
		goto out;
	}
	int l0 = ready_replica();
	fprintf(stderr, "  leader: replica %d; ingesting %zu batches, %u in flight\n", l0, c->n,
		opt.window);
	/* ---- throughput ---- */
	W.limit = c->n;
	double cpu0 = vt_bench_self_cpu_s(), busy0 = vt_bench_machine_busy_s(), t0 = now_s();
	double lcpu0 = (double)vt_clock_thread_cpu_ns() / 1e9;
	apply_s = 0;
	int lp = l0;
	if (!run_until(all_acked, 600)) {
		rc = vt_errmsg_set(err, VT_ETIMEDOUT, "ingest did not finish: %zu of %zu acked",
				   W.acked, c->n);
		goto out;
	}
	(void)lp;
	r->wall_s = now_s() - t0;
	r->cpu_s = vt_bench_self_cpu_s() - cpu0;
	r->loop_cpu_s = (double)vt_clock_thread_cpu_ns() / 1e9 - lcpu0;
	r->apply_s = apply_s;
	r->others_s = vt_bench_others_cpu(busy0, vt_bench_machine_busy_s(), r->cpu_s);
	r->points = W.points;
	r->batches = W.acked;
	r->vps = (double)W.points / r->wall_s;
	r->bps = (double)W.acked / r->wall_s;
	vt_bench_pct_ms(W.lat, W.nlat, &r->p50, &r->p99, &r->max);
	int l1 = ready_replica();
	r->leader_changes = l1 != l0;
	vt_repl_stats st;
	vt_repl_stats_get(reps[l1 < 0 ? l0 : l1].repl, &st);
	r->raft_batches = st.batches;
	target_applied = raft_last_applied(&reps[l1 < 0 ? l0 : l1].raft);
	double tc = now_s();
	if (!run_until(followers_caught_up, 120)) {
		rc = vt_errmsg_set(err, VT_ETIMEDOUT, "followers did not catch up");
		goto out;
	}
	r->catchup_s = now_s() - tc;
	for (int i = 0; i < NREP; i++) {
		vt_shard_status ss;
		if ((rc = vt_shard_status_get(vt_repl_shard(reps[i].repl), &ss)))
			goto out;
		vt_repl_stats rs;
		vt_repl_stats_get(reps[i].repl, &rs);
		fprintf(stderr, "  replica %d: raft applied %llu, shard applied %llu, %llu points, "
			"%llu commands (%llu rejected)\n", i,
			(unsigned long long)raft_last_applied(&reps[i].raft),
			(unsigned long long)ss.applied, (unsigned long long)ss.points,
			(unsigned long long)rs.applied, (unsigned long long)rs.rejected);
		if (ss.points != d->n) {
			rc = vt_errmsg_set(err, VT_ECORRUPT, "replica %d holds %llu points, not %zu",
					   i, (unsigned long long)ss.points, d->n);
			goto out;
		}
	}
	r->ok = 1;
	fprintf(stderr, "  %zu points acked in %.2f s (%.0f vectors/s); followers +%.3f s; "
		"%zu proposals failed and were retried\n",
		W.points, r->wall_s, r->vps, r->catchup_s, W.failed);
	/* ---- failover under load ---- */
	W.cycle = 1;
	vt_free(W.lat); /* latencies are measured in the first phase only */
	W.lat = NULL;
	W.limit = (size_t)-1;
	double warm = now_s() + 0.3;
	while (now_s() < warm)
		uv_run(&loop, UV_RUN_ONCE);
	int l = ready_replica();
	if (l < 0) {
		rc = vt_errmsg_set(err, VT_ETIMEDOUT, "no leader before the kill");
		goto out;
	}
	fprintf(stderr, "  killing leader replica %d under load (%u in flight)\n", l, W.inflight);
	W.t_kill = now_s();
	W.dead = l;
	kill_leader(l);
	if (!run_until(first_ack_seen, 30)) {
		rc = vt_errmsg_set(err, VT_ETIMEDOUT, "no acknowledged write 30 s after the kill");
		goto out;
	}
	f->failover_s = W.t_first_ack - W.t_kill;
	f->elected_s = W.t_elected ? W.t_elected - W.t_kill : NAN;
	f->ready_s = W.t_ready ? W.t_ready - W.t_kill : NAN;
	f->ok = 1;
	fprintf(stderr, "  failover: elected +%.3f s, ready +%.3f s, first ack +%.3f s\n",
		f->elected_s, f->ready_s, f->failover_s);
	W.stopped = 1;
	run_until(none_inflight, 30);
out:
	W.stopped = 1;
	group_close();
	vt_free(W.retry);
	vt_free(W.lat);
	return rc;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vt_bench_repl [options]\n"
		"Three replicas of one shard (raft 0.15 + raft_uv + mux transport) in one\n"
		"process on one libuv loop: acknowledged group-committed upserts of\n"
		"Fashion-MNIST in batches of %u vs the same shard without raft, then the\n"
		"time from killing the leader to the first acknowledged write on the new one.\n"
		"  --quick          5,000 points, async index only (CTest smoke)\n"
		"  --n N            points (default 60000)\n"
		"  --window N       commands in flight (default 32; 4 during failover)\n"
		"  --batch-max N    commands per raft_apply (default 8)\n"
		"  --election-ms N  election timeout (default 500; heartbeat = /10)\n"
		"  --segment-mb N   raft_uv segment size (default 32)\n"
		"  --sync full|meta shard store sync, replicas and baseline (default meta)\n"
		"  --modes LIST     async,sync (default async,sync)\n"
		"  --index-threads N  index threads per shard, async (default 1: three\n"
		"                   replicas share this machine's cores; 0 = shard default)\n"
		"  --dir DIR        scratch root (default /tmp/vt-bench-repl)\n",
		BATCH);
}

static int parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{"quick", no_argument, 0, 'q'},      {"n", required_argument, 0, 'n'},
		{"window", required_argument, 0, 'w'}, {"batch-max", required_argument, 0, 'b'},
		{"election-ms", required_argument, 0, 'e'},
		{"segment-mb", required_argument, 0, 's'}, {"sync", required_argument, 0, 'y'},
		{"modes", required_argument, 0, 'm'}, {"dir", required_argument, 0, 'd'},
		{"index-threads", required_argument, 0, 'i'},
		{"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
	opt.n = 60000;
	opt.window = 32;
	opt.batch_max = 8;
	opt.election_ms = 500;
	opt.segment_mb = 32;
	opt.index_threads = 1;
	opt.store_sync = VT_STORE_SYNC_META;
	opt.modes[0] = VT_INDEX_ASYNC;
	opt.modes[1] = VT_INDEX_SYNC;
	opt.nmodes = 2;
	opt.root = "/tmp/vt-bench-repl";
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'q':
			opt.quick = 1;
			opt.n = 5000;
			opt.nmodes = 1;
			break;
		case 'n':
			opt.n = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			opt.window = (unsigned)atoi(optarg);
			break;
		case 'b':
			opt.batch_max = (unsigned)atoi(optarg);
			break;
		case 'e':
			opt.election_ms = (unsigned)atoi(optarg);
			break;
		case 's':
			opt.segment_mb = strtoull(optarg, NULL, 10);
			break;
		case 'y':
			if (!strcmp(optarg, "full"))
				opt.store_sync = VT_STORE_SYNC_FULL;
			else if (!strcmp(optarg, "meta"))
				opt.store_sync = VT_STORE_SYNC_META;
			else
				return -1;
			break;
		case 'm':
			if (vt_bench_parse_modes(optarg, opt.modes, &opt.nmodes))
				return -1;
			break;
		case 'i':
			opt.index_threads = (unsigned)atoi(optarg);
			break;
		case 'd':
			opt.root = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (!opt.n || !opt.window || !opt.batch_max || opt.election_ms < 50 || !opt.segment_mb)
		return -1;
	opt.heartbeat_ms = opt.election_ms / 10;
	return 0;
}

int main(int argc, char **argv)
{
	if (parse(argc, argv)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	vt_log_set_level(getenv("VT_BENCH_DEBUG") ? VT_LOG_DEBUG : VT_LOG_WARN);
	char cmdline[1024], cpu[256];
	vt_bench_command_line(argc, argv, cmdline, sizeof cmdline);
	vt_bench_cpu_model(cpu, sizeof cpu);
	vt_errmsg err = {{0}};
	vt_bench_data d;
	memset(&d, 0, sizeof d);
	int rc = vt_bench_data_load("fmnist", opt.n, 1, &d, &err);
	vt_bench_cmds c = {0};
	if (!rc)
		rc = vt_bench_cmds_encode(&d, d.n, BATCH, vt_bench_bucket_payload, NULL, &c, &err);
	if (rc) {
		fprintf(stderr, "vt_bench_repl: %s\n", err.msg);
		vt_bench_data_free(&d);
		return 1;
	}
	if (uv_loop_init(&loop)) {
		fprintf(stderr, "vt_bench_repl: uv_loop_init failed\n");
		return 1;
	}
	vt_bench_rm_rf("vt_bench_repl", opt.root);
	mkdir(opt.root, 0755);
	double load0 = vt_bench_loadavg1();
	rate_res base[2], repl[2];
	fo_res fo[2];
	memset(base, 0, sizeof base);
	memset(repl, 0, sizeof repl);
	memset(fo, 0, sizeof fo);
	for (int m = 0; m < opt.nmodes && !rc; m++) {
		const char *mn = opt.modes[m] == VT_INDEX_ASYNC ? "async" : "sync";
		char dir[512];
		snprintf(dir, sizeof dir, "%s/%s-base", opt.root, mn);
		fprintf(stderr, "[%s] unreplicated shard: %zu points\n", mn, d.n);
		rc = run_baseline(dir, &d, &c, opt.modes[m], &base[m], &err);
		vt_bench_rm_rf("vt_bench_repl", dir);
		if (rc)
			break;
		fprintf(stderr, "  %.0f vectors/s\n", base[m].vps);
		snprintf(dir, sizeof dir, "%s/%s-repl", opt.root, mn);
		mkdir(dir, 0755);
		fprintf(stderr, "[%s] three replicas\n", mn);
		rc = run_repl(dir, &d, &c, opt.modes[m], &repl[m], &fo[m], &err);
		vt_bench_rm_rf("vt_bench_repl", dir);
	}
	double load1 = vt_bench_loadavg1();
	struct utsname u;
	uname(&u);
	printf("# vt_bench_repl\n\ncommand: `%s`\nmachine: %s, %ld CPUs, %s %s; load avg %.2f -> "
	       "%.2f\n",
	       cmdline, cpu, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, load0, load1);
	printf("setup: 3 replicas, one process, one libuv loop (all raft_uv I/O, the mux "
	       "transports and the three shards' apply on that thread); %zu points x %u-d, %zu "
	       "commands of %u (%.0f KiB each), %u in flight, <= %u commands per raft_apply, "
	       "segment %zu MiB, store sync %s, election %u ms / heartbeat %u ms, async index threads per shard %u\n\n",
	       d.n, d.dim, c.n, BATCH, c.n ? (double)c.bytes / (double)c.n / 1024 : 0, opt.window,
	       opt.batch_max, opt.segment_mb,
	       opt.store_sync == VT_STORE_SYNC_META ? "meta" : "full", opt.election_ms,
	       opt.heartbeat_ms, opt.index_threads);
	printf("| index | setup | vectors/s | batches/s | commit p50 ms | p99 ms | max ms | wall s | "
	       "CPU s | others' CPU s | raft_apply calls | followers +s |\n"
	       "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int m = 0; m < opt.nmodes; m++) {
		const char *mn = opt.modes[m] == VT_INDEX_ASYNC ? "async" : "sync";
		if (base[m].ok)
			printf("| %s | unreplicated (vt_shard_apply) | %.0f | %.1f | %.2f | %.2f | "
			       "%.2f | %.2f | %.2f | %.2f | - | - |\n",
			       mn, base[m].vps, base[m].bps, base[m].p50, base[m].p99, base[m].max,
			       base[m].wall_s, base[m].cpu_s, base[m].others_s);
		if (repl[m].ok)
			printf("| %s | 3 replicas | %.0f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | "
			       "%.2f | %llu | %.3f |\n",
			       mn, repl[m].vps, repl[m].bps, repl[m].p50, repl[m].p99, repl[m].max,
			       repl[m].wall_s, repl[m].cpu_s, repl[m].others_s,
			       (unsigned long long)repl[m].raft_batches, repl[m].catchup_s);
	}
	printf("\nWhere the loop thread's time went during the replicated ingest (the shard "
	       "applies of all three replicas run on it):\n\n| index | wall s | loop thread CPU s | "
	       "in shard apply s (3 replicas, incl. fdatasync) | apply per command ms |\n"
	       "|---|---|---|---|---|\n");
	for (int m = 0; m < opt.nmodes; m++)
		if (repl[m].ok)
			printf("| %s | %.2f | %.2f | %.2f | %.2f |\n",
			       opt.modes[m] == VT_INDEX_ASYNC ? "async" : "sync", repl[m].wall_s,
			       repl[m].loop_cpu_s, repl[m].apply_s,
			       repl[m].apply_s * 1e3 / (double)(repl[m].batches ? repl[m].batches : 1));
	printf("\n| index | failover: leader elected s | barrier ready s | first ack s | "
	       "target |\n|---|---|---|---|---|\n");
	for (int m = 0; m < opt.nmodes; m++)
		if (fo[m].ok)
			printf("| %s | %.3f | %.3f | %.3f | %s |\n",
			       opt.modes[m] == VT_INDEX_ASYNC ? "async" : "sync", fo[m].elected_s,
			       fo[m].ready_s, fo[m].failover_s,
			       fo[m].failover_s < 3.0 ? "PASS (< 3 s)" : "FAIL (>= 3 s)");
	printf("\n| target | measured | verdict |\n|---|---|---|\n");
	for (int m = 0; m < opt.nmodes; m++)
		if (repl[m].ok)
			printf("| >= 10,000 vectors/s acknowledged, 3 replicas (%s) | %.0f | %s |\n",
			       opt.modes[m] == VT_INDEX_ASYNC ? "async" : "sync", repl[m].vps,
			       repl[m].vps >= 10000 ? "PASS" : "FAIL");
	if (rc)
		fprintf(stderr, "vt_bench_repl: %s (%s)\n", err.msg, vt_errname(rc));
	vt_bench_cmds_free(&c);
	vt_bench_data_free(&d);
	uv_loop_close(&loop);
	vt_bench_rm_rf("vt_bench_repl", opt.root);
	return rc ? 1 : 0;
}
