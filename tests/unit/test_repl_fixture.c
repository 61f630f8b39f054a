/* test_repl_fixture.c: lib/repl on raft_fixture (deterministic, in-memory
 * raft I/O) driving real shards in temporary directories: election and
 * group-committed writes applied identically everywhere, leader crash,
 * partition and heal, membership (voter and non-voting standby), snapshot
 * install to a lagging replica, and the Raft paper's Figure 8 with the
 * new-leader barrier (docs/replication.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "base/buf.h"
#include "base/log.h"
#include "repl/repl.h"
#include "shard/shard.h"
#include "store/store.h"

#define DIM 8
#define MAXN 8

typedef struct node {
	char *dir;
	vt_repl *r;
} node;

typedef struct cluster {
	struct raft_fixture f;
	node n[MAXN];
	unsigned nn;
	int started;
} cluster;

static cluster *g_c;
static const vt_repl_tuning *g_tune; /* applied by cluster_new if set */
static int g_auto = 1; /* the hook drives vt_repl_tick on live nodes */

static void hook(struct raft_fixture *f, struct raft_fixture_event *ev)
{
	(void)f;
	(void)ev;
	if (!g_auto || !g_c)
		return;
	for (unsigned i = 0; i < g_c->nn; i++)
		if (raft_fixture_alive(&g_c->f, i))
			vt_repl_tick(g_c->n[i].r);
}

static void vec_of(uint64_t n, float *v)
{
	uint64_t x = n * 0x9E3779B97F4A7C15ull + 7;
	for (int j = 0; j < DIM; j++) {
		x ^= x >> 31;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 29;
		v[j] = (float)((x >> 40) % 2001) / 1000.0f - 1.0f;
	}
}

/* An upsert of points p<n0>..p<n0+cnt-1>; dim DIM (bad_dim: DIM+1). */
static void enc_upsert(vt_buf *b, uint64_t n0, uint64_t cnt, int bad_dim)
{
	uint32_t dim = bad_dim ? DIM + 1 : DIM;
	float v[DIM + 1];
	b->len = 0;
	assert_int_equal(vt_cmd_enc_begin(b, VT_CMD_UPSERT, 0, dim), 0);
	for (uint64_t n = n0; n < n0 + cnt; n++) {
		char id[32], pl[64];
		vec_of(n, v);
		v[DIM] = 0;
		int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)n);
		int pn = snprintf(pl, sizeof pl, "{\"n\":%llu}",
				  (unsigned long long)n);
		assert_int_equal(vt_cmd_enc_upsert(b, id, (size_t)il, v, dim, pl,
						   (size_t)pn),
				 0);
	}
	assert_int_equal(vt_cmd_enc_end(b, (uint32_t)cnt), 0);
}

static void node_open(cluster *c, unsigned i)
{
	node *nd = &c->n[i];
	nd->dir = strdup("/tmp/vt_repl_XXXXXX");
	assert_non_null(mkdtemp(nd->dir));
	vt_shard_config cfg;
	vt_shard_config_default(&cfg, DIM, VT_METRIC_L2);
	cfg.ef_construction = 32;
	vt_repl_opts o;
	vt_repl_opts_default(&o, nd->dir);
	o.shard.create = &cfg;
	o.shard.background = 0;
	o.shard.snapshot_entries = 0;
	o.shard.index_threads = 1;
	o.shard.store_sync = VT_STORE_SYNC_META;
	o.shard.map_max = 64u << 20;
	vt_errmsg e = {{0}};
	if (vt_repl_open(&o, &nd->r, &e))
		fail_msg("open %s: %s", nd->dir, e.msg);
	assert_int_equal(raft_fixture_grow(&c->f, vt_repl_fsm(nd->r)), 0);
	vt_repl_attach(nd->r, raft_fixture_get(&c->f, i));
	c->nn = i + 1;
	if (c->started && g_tune)
		assert_int_equal(vt_repl_tune(raft_fixture_get(&c->f, i), g_tune,
					      &e),
				 0);
	if (c->started) /* the fixture starts only the first servers */
		assert_int_equal(raft_start(raft_fixture_get(&c->f, i)), 0);
}

/* n servers, the first `voters` of them voters; snapshot threshold 0 =
 * the library default. */
static cluster *cluster_new(unsigned n, unsigned voters, unsigned threshold,
			    unsigned trailing)
{
	cluster *c = calloc(1, sizeof *c);
	assert_non_null(c);
	g_c = c;
	g_auto = 1;
	assert_int_equal(raft_fixture_initialize(&c->f), 0);
	for (unsigned i = 0; i < n; i++)
		node_open(c, i);
	struct raft_configuration conf;
	assert_int_equal(raft_fixture_configuration(&c->f, voters, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
	raft_configuration_close(&conf);
	for (unsigned i = 0; i < n && threshold; i++) {
		raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), threshold);
		raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), trailing);
	}
	for (unsigned i = 0; i < n && g_tune; i++) {
		vt_errmsg e = {{0}};
		if (vt_repl_tune(raft_fixture_get(&c->f, i), g_tune, &e))
			fail_msg("tune: %s", e.msg);
	}
	assert_int_equal(raft_fixture_start(&c->f), 0);
	c->started = 1;
	raft_fixture_hook(&c->f, hook);
	return c;
}

static void cluster_free(cluster *c)
{
	raft_fixture_close(&c->f);
	for (unsigned i = 0; i < c->nn; i++) {
		vt_repl_close(c->n[i].r);
		char cmd[256];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->n[i].dir);
		assert_int_equal(system(cmd), 0);
		free(c->n[i].dir);
	}
	g_c = NULL;
	g_tune = NULL;
	free(c);
}

static void dump(cluster *c)
{
	for (unsigned j = 0; j < c->nn; j++) {
		struct raft *r = raft_fixture_get(&c->f, j);
		fprintf(stderr, "node %u alive %d state %d term %llu last %llu "
			"commit %llu\n", j, raft_fixture_alive(&c->f, j),
			raft_state(r), (unsigned long long)r->current_term,
			(unsigned long long)raft_last_index(r),
			(unsigned long long)r->commit_index);
		const struct raft_log *l = &r->log;
		size_t n = (l->back + l->size - l->front) % (l->size ? l->size : 1);
		for (size_t k = 0; k < n; k++) {
			const struct raft_entry *e =
				&l->entries[(l->front + k) % l->size];
			fprintf(stderr, "   [%llu] term %llu type %d\n",
				(unsigned long long)(l->offset + k + 1),
				(unsigned long long)e->term, e->type);
		}
	}
}

static bool some_ready(struct raft_fixture *f, void *arg)
{
	(void)f;
	cluster *c = arg;
	for (unsigned i = 0; i < c->nn; i++)
		if (raft_fixture_alive(&c->f, i) && vt_repl_ready(c->n[i].r))
			return true;
	return false;
}

/* Steps until some live node is a ready leader; returns its index. */
static unsigned ready_leader(cluster *c)
{
	if (!raft_fixture_step_until(&c->f, some_ready, c, 30000)) {
		dump(c);
		fail_msg("no ready leader");
	}
	for (unsigned i = 0; i < c->nn; i++)
		if (raft_fixture_alive(&c->f, i) && vt_repl_ready(c->n[i].r))
			return i;
	return ~0u;
}

typedef struct ack {
	int done, status;
	uint64_t index;
} ack;

static void ack_cb(void *ud, int status, const vt_shard_result *res,
		   const char *msg)
{
	ack *a = ud;
	assert_int_equal(a->done, 0); /* exactly once */
	a->done = 1;
	a->status = status;
	a->index = res ? res->index : 0;
	(void)msg;
}

typedef struct acks {
	ack *a;
	unsigned n;
} acks;

static bool all_done(struct raft_fixture *f, void *arg)
{
	(void)f;
	acks *as = arg;
	for (unsigned i = 0; i < as->n; i++)
		if (!as->a[i].done)
			return false;
	return true;
}

/* Proposes `cmds` upserts of `per` points each, from point n0, on node
 * `ld` in one batch, and steps until every callback ran. */
static void write_batch(cluster *c, unsigned ld, uint64_t n0, unsigned cmds,
			unsigned per, ack *a)
{
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	memset(a, 0, cmds * sizeof *a);
	for (unsigned k = 0; k < cmds; k++) {
		enc_upsert(&b, n0 + (uint64_t)k * per, per, 0);
		assert_int_equal(vt_repl_propose(c->n[ld].r, b.data, b.len,
						 ack_cb, &a[k]),
				 0);
	}
	vt_repl_flush(c->n[ld].r);
	vt_buf_free(&b);
	acks as = {a, cmds};
	assert_true(raft_fixture_step_until(&c->f, all_done, &as, 30000));
}

typedef struct upto {
	cluster *c;
	uint64_t index;
} upto;

static bool live_applied(struct raft_fixture *f, void *arg)
{
	upto *u = arg;
	for (unsigned i = 0; i < u->c->nn; i++)
		if (raft_fixture_alive(f, i) &&
		    raft_last_applied(raft_fixture_get(f, i)) < u->index)
			return false;
	return true;
}

/* Steps until every live node applied what node `ld` applied. */
static void converge(cluster *c, unsigned ld)
{
	upto u = {c, raft_last_applied(raft_fixture_get(&c->f, ld))};
	assert_true(raft_fixture_step_until(&c->f, live_applied, &u, 30000));
}

static uint64_t shard_applied(cluster *c, unsigned i)
{
	uint64_t a = 0, x = 0;
	vt_shard_progress(vt_repl_shard(c->n[i].r), &a, &x);
	return a;
}

/* Node i holds exactly points p0..p<n-1> with their vectors. */
static void check_points(cluster *c, unsigned i, uint64_t n)
{
	vt_shard *s = vt_repl_shard(c->n[i].r);
	vt_errmsg e = {{0}};
	uint64_t cnt = 0;
	assert_int_equal(vt_shard_count(s, NULL, &cnt, &e), 0);
	if (cnt != n)
		fail_msg("node %u holds %llu points, want %llu", i,
			 (unsigned long long)cnt, (unsigned long long)n);
	for (uint64_t k = 0; k < n; k++) {
		char id[32];
		int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)k);
		const char *ids[1] = {id};
		uint32_t lens[1] = {(uint32_t)il};
		vt_shard_results res = {0};
		assert_int_equal(vt_shard_get(s, ids, lens, 1, 0, 1, &res, &e), 0);
		if (res.n != 1)
			fail_msg("node %u lacks %s", i, id);
		float v[DIM];
		vec_of(k, v);
		assert_memory_equal(res.hits[0].vec, v, sizeof v);
		vt_shard_results_free(&res);
	}
}

/* Every live node: the same shard applied index and the same points. */
static void check_same(cluster *c, unsigned ld, uint64_t n)
{
	converge(c, ld);
	uint64_t want = shard_applied(c, ld);
	for (unsigned i = 0; i < c->nn; i++) {
		if (!raft_fixture_alive(&c->f, i))
			continue;
		assert_int_equal(shard_applied(c, i), want);
		check_points(c, i, n);
	}
}

/* ---- tests ----------------------------------------------------------------*/

static void test_elect_and_group_commit(void **state)
{
	(void)state;
	cluster *c = cluster_new(3, 3, 0, 0);
	unsigned ld = ready_leader(c);
	/* Not ready nodes refuse. */
	for (unsigned i = 0; i < 3; i++)
		if (i != ld)
			assert_int_equal(vt_repl_propose(c->n[i].r, "x", 1, NULL,
							 NULL),
					 VT_EBUSY);
	vt_repl_stats st0;
	vt_repl_stats_get(c->n[ld].r, &st0);
	/* 10 commands of 5 points + one bad one in the middle, one batch. */
	ack a[11];
	memset(a, 0, sizeof a);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	for (unsigned k = 0; k < 11; k++) {
		if (k == 5)
			enc_upsert(&b, 1000, 1, 1);
		else
			enc_upsert(&b, (k < 5 ? k : k - 1) * 5ull, 5, 0);
		assert_int_equal(vt_repl_propose(c->n[ld].r, b.data, b.len,
						 ack_cb, &a[k]),
				 0);
	}
	vt_repl_flush(c->n[ld].r);
	vt_buf_free(&b);
	acks as = {a, 11};
	assert_true(raft_fixture_step_until(&c->f, all_done, &as, 30000));
	vt_repl_stats st;
	vt_repl_stats_get(c->n[ld].r, &st);
	assert_int_equal(st.batches - st0.batches, 1);
	for (unsigned k = 0; k < 11; k++) {
		if (k == 5) {
			/* rejected alike everywhere, index consumed */
			assert_int_equal(a[k].status, VT_EINVAL);
			continue;
		}
		assert_int_equal(a[k].status, 0);
		/* each caller its own entry: consecutive indexes */
		assert_int_equal(a[k].index, a[0].index + k);
	}
	assert_int_equal(st.rejected, 1);
	check_same(c, ld, 50);
	assert_int_equal(shard_applied(c, ld), a[10].index);
	cluster_free(c);
}

static void test_leader_crash(void **state)
{
	(void)state;
	cluster *c = cluster_new(3, 3, 0, 0);
	unsigned ld = ready_leader(c);
	ack a[4];
	write_batch(c, ld, 0, 4, 10, a);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(a[k].status, 0);
	raft_fixture_kill(&c->f, ld);
	unsigned nl = ready_leader(c);
	assert_int_not_equal(nl, ld);
	write_batch(c, nl, 40, 4, 10, a);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(a[k].status, 0);
	raft_fixture_revive(&c->f, ld);
	write_batch(c, nl, 80, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	check_same(c, nl, 90);
	cluster_free(c);
}

static void isolate(cluster *c, unsigned i, int on)
{
	for (unsigned j = 0; j < c->nn; j++) {
		if (j == i)
			continue;
		if (on) {
			raft_fixture_saturate(&c->f, i, j);
			raft_fixture_saturate(&c->f, j, i);
		} else {
			raft_fixture_desaturate(&c->f, i, j);
			raft_fixture_desaturate(&c->f, j, i);
		}
	}
}

static bool is_done(struct raft_fixture *f, void *arg)
{
	(void)f;
	return ((ack *)arg)->done != 0;
}

static void test_partition_heal(void **state)
{
	(void)state;
	cluster *c = cluster_new(3, 3, 0, 0);
	unsigned ld = ready_leader(c);
	ack a[2];
	write_batch(c, ld, 0, 2, 10, a);
	/* The leader ends up alone: its write cannot commit. */
	isolate(c, ld, 1);
	ack lost = {0};
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 5000, 1, 0);
	assert_int_equal(vt_repl_propose(c->n[ld].r, b.data, b.len, ack_cb,
					 &lost),
			 0);
	vt_repl_flush(c->n[ld].r);
	vt_buf_free(&b);
	/* It steps down, and its caller hears "outcome unknown", not ok. */
	assert_true(raft_fixture_step_until(&c->f, is_done, &lost, 30000));
	assert_int_equal(lost.status, VT_ECANCELED);
	assert_false(vt_repl_ready(c->n[ld].r));
	/* The majority side goes on. */
	unsigned nl = ready_leader(c);
	assert_int_not_equal(nl, ld);
	write_batch(c, nl, 20, 2, 10, a);
	assert_int_equal(a[0].status, 0);
	isolate(c, ld, 0);
	write_batch(c, nl, 40, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	/* The old leader's uncommitted entry is gone everywhere. */
	check_same(c, nl, 50);
	cluster_free(c);
}

static int g_changed;
static void change_cb(struct raft_change *req, int status)
{
	(void)req;
	assert_int_equal(status, 0);
	g_changed = 1;
}

static bool changed(struct raft_fixture *f, void *arg)
{
	(void)f;
	(void)arg;
	return g_changed != 0;
}

static void change(cluster *c, unsigned ld, int add, raft_id id, int role)
{
	static struct raft_change req;
	g_changed = 0;
	struct raft *r = raft_fixture_get(&c->f, ld);
	char addr[16];
	snprintf(addr, sizeof addr, "%llu", (unsigned long long)id);
	if (add)
		assert_int_equal(raft_add(r, &req, id, addr, change_cb), 0);
	else
		assert_int_equal(raft_assign(r, &req, id, role, change_cb), 0);
	assert_true(raft_fixture_step_until(&c->f, changed, NULL, 30000));
}

static int role_of(cluster *c, unsigned ld, raft_id id)
{
	struct raft *r = raft_fixture_get(&c->f, ld);
	for (unsigned i = 0; i < r->configuration.n; i++)
		if (r->configuration.servers[i].id == id)
			return r->configuration.servers[i].role;
	return -1;
}

static void test_membership(void **state)
{
	(void)state;
	cluster *c = cluster_new(3, 3, 0, 0);
	unsigned ld = ready_leader(c);
	ack a[2];
	write_batch(c, ld, 0, 2, 10, a);
	/* A new voter (id 4) and a non-voting standby (id 5). */
	node_open(c, 3);
	node_open(c, 4);
	change(c, ld, 1, 4, 0);
	change(c, ld, 0, 4, RAFT_VOTER);
	change(c, ld, 1, 5, 0);
	change(c, ld, 0, 5, RAFT_STANDBY);
	assert_int_equal(role_of(c, ld, 4), RAFT_VOTER);
	assert_int_equal(role_of(c, ld, 5), RAFT_STANDBY);
	write_batch(c, ld, 20, 2, 10, a);
	assert_int_equal(a[1].status, 0);
	check_same(c, ld, 40);
	/* Quorum is now 3 of 4 voters: with two old voters gone the
	 * standby does not count, the new voter does. */
	unsigned others[2], k = 0;
	for (unsigned i = 0; i < 3; i++)
		if (i != ld)
			others[k++] = i;
	raft_fixture_kill(&c->f, others[0]);
	write_batch(c, ld, 40, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	raft_fixture_revive(&c->f, others[0]);
	check_same(c, ld, 50);
	cluster_free(c);
}

static void test_snapshot_install(void **state)
{
	(void)state;
	cluster *c = cluster_new(3, 3, 8, 2);
	unsigned ld = ready_leader(c);
	unsigned lag = (ld + 1) % 3;
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	check_same(c, ld, 10);
	for (unsigned j = 0; j < 3; j++)
		if (j != lag) {
			raft_fixture_disconnect(&c->f, lag, j);
			raft_fixture_disconnect(&c->f, j, lag);
		}
	/* 30 entries: several snapshots, the log before them dropped. */
	for (unsigned k = 1; k <= 30; k++) {
		write_batch(c, ld, k * 10ull, 1, 10, a);
		assert_int_equal(a[0].status, 0);
	}
	vt_repl_stats st;
	vt_repl_stats_get(c->n[ld].r, &st);
	assert_true(st.snapshots >= 1);
	for (unsigned j = 0; j < 3; j++)
		if (j != lag) {
			raft_fixture_reconnect(&c->f, lag, j);
			raft_fixture_reconnect(&c->f, j, lag);
		}
	check_same(c, ld, 310);
	assert_true(raft_fixture_n_recv(&c->f, lag, RAFT_IO_INSTALL_SNAPSHOT) >=
		    1);
	vt_repl_stats_get(c->n[lag].r, &st);
	assert_true(st.restores >= 1);
	/* And it keeps applying after the install. */
	write_batch(c, ld, 310, 1, 10, a);
	check_same(c, ld, 320);
	cluster_free(c);
}

/* Sets node j's election timeout: the next one drawn and the running one
 * (a public field of struct raft, as raft_fixture_elect does). */
static void set_to(cluster *c, unsigned j, unsigned t)
{
	struct raft *r = raft_fixture_get(&c->f, j);
	raft_fixture_set_randomized_election_timeout(&c->f, j, t);
	if (raft_state(r) == RAFT_FOLLOWER)
		r->follower_state.randomized_election_timeout = t;
	else if (raft_state(r) == RAFT_CANDIDATE)
		r->candidate_state.randomized_election_timeout = t;
}

/* Elects node i after its leader died. A follower that still knows a
 * leader refuses votes without looking at logs until its own timer runs
 * out, so: i times out first (1000 ms, refused), `who` time out next
 * (1050 ms, they become candidates and forget the dead leader), then i's
 * second try, with a higher term, gets their votes if its log allows. */
static void elect_after_crash(cluster *c, unsigned i, const unsigned *who,
			      unsigned n_who)
{
	for (unsigned j = 0; j < c->nn; j++)
		set_to(c, j, 1000000);
	set_to(c, i, 1000);
	for (unsigned k = 0; k < n_who; k++)
		set_to(c, who[k], 1050);
	if (!raft_fixture_step_until_state_is(&c->f, i, RAFT_LEADER, 60000)) {
		dump(c);
		fail_msg("node %u not elected", i);
	}
	for (unsigned j = 0; j < c->nn; j++)
		set_to(c, j, 3000);
}

static uint64_t npoints(cluster *c, unsigned i)
{
	uint64_t n = 0;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_shard_count(vt_repl_shard(c->n[i].r), NULL, &n, &e),
			 0);
	return n;
}

/* Figure 8 (c)-(e) with no barrier: S1 (term t3) counts A (term t1) on
 * S1, S2, S3 as committed and the replicas apply it; S5 (last term t2)
 * can still win and overwrite A with B: the state machines diverge. This
 * pins the 0.15 defect: if it ever fails, the library was fixed. */
static void figure8_defect(cluster *c, raft_index ia, raft_term t2)
{
	struct raft *s1 = raft_fixture_get(&c->f, 0);
	struct raft *s5 = raft_fixture_get(&c->f, 4);
	raft_fixture_step_until_elapsed(&c->f, 1000);
	assert_true(s1->current_term > t2);
	assert_int_equal(raft_last_index(s1), ia); /* no entry of t3 */
	assert_true(s1->commit_index >= ia);        /* yet A "committed" */
	assert_int_equal(shard_applied(c, 0), ia);
	assert_int_equal(npoints(c, 0), 20);        /* W0 + A applied */
	raft_fixture_kill(&c->f, 0);
	for (unsigned j = 0; j < 4; j++)
		raft_fixture_desaturate(&c->f, 4, j);
	raft_fixture_revive(&c->f, 4);
	set_to(c, 4, 1000000);
	assert_true(raft_fixture_step_until_state_is(&c->f, 4, RAFT_FOLLOWER,
						     60000));
	const unsigned s234[] = {1, 2, 3};
	elect_after_crash(c, 4, s234, 3);
	/* S5, elected with a log that lacks an entry the others applied,
	 * sends B for A's index: every follower that applied A detects a
	 * conflicting committed entry and halts (RAFT_UNAVAILABLE). The
	 * group is stuck, and the leader holds another entry than the one
	 * applied at that index. */
	raft_fixture_step_until_elapsed(&c->f, 2000);
	const struct raft_log *l = &s5->log;
	const struct raft_entry *e =
		&l->entries[(l->front + (ia - l->offset - 1)) % l->size];
	assert_int_equal(e->term, t2); /* B, not A */
	unsigned halted = 0;
	for (unsigned j = 1; j < 4; j++) {
		if (raft_state(raft_fixture_get(&c->f, j)) == RAFT_UNAVAILABLE)
			halted++;
		assert_int_equal(npoints(c, j), 20); /* they applied A */
	}
	assert_int_equal(npoints(c, 4), 10);        /* S5 never did */
	fprintf(stderr, "figure 8 without barrier: A applied as committed, "
		"new leader S5 holds a term-%llu entry at index %llu, %u of 3 "
		"followers halted\n", (unsigned long long)e->term,
		(unsigned long long)ia, halted);
	assert_int_equal(halted, 3);
}

/* Figure 8 of the Raft paper with servers S1..S5 = nodes 0..4. With
 * `barrier` the adapter's barrier guards the new leader; without it the
 * test shows what 0.15 does then (upstream issue 220). */
static void figure8(int barrier)
{
	cluster *c = cluster_new(5, 5, 0, 0);
	g_auto = 0;
	raft_fixture_elect(&c->f, 0);
	g_auto = 1;
	assert_int_equal(ready_leader(c), 0);
	ack a[1];
	write_batch(c, 0, 0, 1, 10, a); /* W0 everywhere */
	check_same(c, 0, 10);
	/* (a) S1 leads term t1 and replicates entry A to S2 only. */
	raft_term t1 = raft_fixture_get(&c->f, 0)->current_term;
	for (unsigned j = 2; j < 5; j++)
		raft_fixture_saturate(&c->f, 0, j);
	ack aa = {0};
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 10, 10, 0); /* A = p10..p19 */
	assert_int_equal(vt_repl_propose(c->n[0].r, b.data, b.len, ack_cb, &aa),
			 0);
	vt_repl_flush(c->n[0].r);
	raft_index ia = raft_last_index(raft_fixture_get(&c->f, 0));
	struct raft *s2 = raft_fixture_get(&c->f, 1);
	for (int k = 0; k < 2000 && raft_last_index(s2) < ia; k++)
		raft_fixture_step(&c->f);
	assert_int_equal(raft_last_index(s2), ia);
	/* (b) S1 crashes; S5 wins term t2 with S3, S4 (S2 would refuse).
	 * No barrier anywhere until S1 is back: S5 must not replicate. */
	g_auto = 0;
	/* (Links stay saturated while a node is down: the fixture would
	 * deliver what it had in flight once they are not.) */
	raft_fixture_kill(&c->f, 0);
	const unsigned s34[] = {2, 3}, s234[] = {1, 2, 3};
	elect_after_crash(c, 4, s34, 2);
	struct raft *s5 = raft_fixture_get(&c->f, 4);
	raft_term t2 = s5->current_term;
	assert_true(t2 > t1);
	for (unsigned j = 0; j < 4; j++)
		raft_fixture_saturate(&c->f, 4, j);
	struct raft_apply breq;
	struct raft_buffer bb;
	enc_upsert(&b, 9000, 1, 0); /* B = p9000, at A's index */
	bb.len = b.len;
	bb.base = raft_malloc(b.len);
	memcpy(bb.base, b.data, b.len);
	assert_int_equal(raft_apply(s5, &breq, &bb, 1, NULL), 0);
	if (raft_last_index(s5) != ia)
		fail_msg("S5 last %llu, A at %llu, S1 last %llu",
			 (unsigned long long)raft_last_index(s5),
			 (unsigned long long)ia,
			 (unsigned long long)raft_last_index(
				 raft_fixture_get(&c->f, 0)));
	raft_fixture_kill(&c->f, 4);
	/* (c) S1 restarts and leads term t3; it brings A to S3. Without the
	 * barrier 0.15 would count A (term t1) committed on S1, S2, S3 and
	 * S1 could serve it; with it S1 is not ready until its own barrier
	 * (term t3, after A) is on a majority. */
	for (unsigned j = 2; j < 5; j++)
		raft_fixture_desaturate(&c->f, 0, j);
	raft_fixture_revive(&c->f, 0);
	g_auto = barrier;
	/* The fixture freezes a killed server instead of restarting it: S1
	 * comes back as the stale leader of t1 and must first hear of t2.
	 * A's callback must not have said "ok" meanwhile. */
	set_to(c, 0, 1000000);
	assert_true(raft_fixture_step_until_state_is(&c->f, 0, RAFT_FOLLOWER,
						     60000));
	assert_int_equal(aa.done, 1);
	assert_int_equal(aa.status, VT_ECANCELED);
	elect_after_crash(c, 0, s234, 3);
	if (!barrier) {
		figure8_defect(c, ia, t2);
		vt_buf_free(&b);
		cluster_free(c);
		return;
	}
	/* Leader, but its barrier is not committed yet: no writes. */
	assert_false(vt_repl_ready(c->n[0].r));
	assert_int_equal(vt_repl_propose(c->n[0].r, "x", 1, NULL, NULL),
			 VT_EBUSY);
	unsigned ld = ready_leader(c);
	assert_int_equal(ld, 0);
	struct raft *s1 = raft_fixture_get(&c->f, 0);
	raft_term t3 = s1->current_term;
	assert_true(t3 > t2);
	/* A's first leader was deposed: its caller never heard "ok". */
	assert_int_equal(aa.done, 1);
	assert_int_not_equal(aa.status, 0);
	/* Ready means the barrier of t3 is committed, after A. */
	assert_true(s1->commit_index > ia);
	/* (d) S1 crashes again; S5 revives. It cannot win: a majority holds
	 * an entry of term t3, newer than its B (term t2). */
	raft_fixture_kill(&c->f, 0);
	for (unsigned j = 0; j < 4; j++)
		raft_fixture_desaturate(&c->f, 4, j);
	raft_fixture_revive(&c->f, 4);
	/* S5 runs first and again for 5 s: every time S2, S3 and S4
	 * refuse, as their last entry (t3) is newer than its B (t2). */
	raft_term t5 = s5->current_term;
	for (unsigned j = 0; j < 5; j++)
		set_to(c, j, 1000000);
	set_to(c, 4, 500);
	for (unsigned j = 1; j < 4; j++)
		set_to(c, j, 600); /* they forget S1 and hear S5 out */
	for (int k = 0; k < 50; k++) {
		raft_fixture_step_until_elapsed(&c->f, 100);
		assert_int_not_equal(raft_state(s5), RAFT_LEADER);
	}
	assert_true(s5->current_term > t5 + 2);
	/* Then the others may win (S5's timer is pushed out). */
	set_to(c, 4, 1000000);
	for (unsigned j = 1; j < 4; j++)
		set_to(c, j, 1000 + 100 * j);
	ld = ready_leader(c);
	assert_int_not_equal(ld, 4);
	assert_int_not_equal(ld, 0);
	write_batch(c, ld, 20, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	raft_fixture_revive(&c->f, 0);
	/* Everyone, S5 included, holds W0, A and the last write; nobody B. */
	check_same(c, ld, 30);
	vt_buf_free(&b);
	cluster_free(c);
}

static void test_figure8(void **state)
{
	(void)state;
	figure8(1);
}

static void test_figure8_without_barrier(void **state)
{
	(void)state;
	figure8(0);
}

/* ---- reads, lag, "not leader", lifecycle, tuning ---------------------------*/

/* The tuning the new tests run with: the library defaults (pre-vote on),
 * with a snapshot threshold a test may lower. */
static vt_repl_tuning g_tuning;

static cluster *tuned_cluster(unsigned n, unsigned voters)
{
	vt_repl_tuning_default(&g_tuning);
	g_tune = &g_tuning;
	return cluster_new(n, voters, 0, 0);
}

typedef struct rd {
	cluster *c;
	unsigned node;
	int done, status;
	unsigned seq;            /* answer order */
	uint64_t shard_applied;  /* the shard's index when answered */
} rd;

static unsigned g_seq;

static void rd_cb(void *ud, int status, const char *msg)
{
	rd *x = ud;
	(void)msg;
	assert_int_equal(x->done, 0); /* exactly once */
	x->done = 1;
	x->status = status;
	x->seq = ++g_seq;
	x->shard_applied = shard_applied(x->c, x->node);
}

typedef struct rds {
	rd *v;
	unsigned n;
} rds;

static bool rds_done(struct raft_fixture *f, void *arg)
{
	(void)f;
	rds *x = arg;
	for (unsigned i = 0; i < x->n; i++)
		if (!x->v[i].done)
			return false;
	return true;
}

static void rd_queue(cluster *c, unsigned nd, rd *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		v[i] = (rd){.c = c, .node = nd};
		assert_int_equal(vt_repl_read(c->n[nd].r, rd_cb, &v[i]), 0);
	}
}

/* Reads queued together share one barrier; reads queued while it is in
 * flight share the next one; a read queued after a write sees it. */
static void test_read_batched(void **state)
{
	(void)state;
	cluster *c = tuned_cluster(3, 3);
	unsigned ld = ready_leader(c);
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	vt_repl_stats st0, st;
	vt_repl_stats_get(c->n[ld].r, &st0);
	rd r1[100], r2[50];
	rd_queue(c, ld, r1, 100);
	vt_repl_flush(c->n[ld].r);   /* one barrier for the 100 */
	rd_queue(c, ld, r2, 50);      /* wait for the next one */
	vt_repl_stats_get(c->n[ld].r, &st);
	assert_int_equal(st.read_barriers - st0.read_barriers, 1);
	rds all1 = {r1, 100}, all2 = {r2, 50};
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all1, 30000));
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all2, 30000));
	vt_repl_stats_get(c->n[ld].r, &st);
	assert_int_equal(st.read_barriers - st0.read_barriers, 2);
	assert_int_equal(st.reads - st0.reads, 150);
	unsigned last1 = 0;
	for (unsigned i = 0; i < 100; i++) {
		assert_int_equal(r1[i].status, 0);
		if (r1[i].seq > last1)
			last1 = r1[i].seq;
	}
	for (unsigned i = 0; i < 50; i++) {
		assert_int_equal(r2[i].status, 0);
		assert_true(r2[i].seq > last1); /* the second round */
	}
	/* Read after write: queued before the write is applied anywhere,
	 * answered with the write applied on the leader's shard. */
	ack w = {0};
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 10, 5, 0);
	assert_int_equal(vt_repl_propose(c->n[ld].r, b.data, b.len, ack_cb, &w),
			 0);
	vt_buf_free(&b);
	rd r3[1];
	rd_queue(c, ld, r3, 1);
	vt_repl_flush(c->n[ld].r);    /* the write, then the read barrier */
	assert_int_equal(w.done, 0);
	rds all3 = {r3, 1};
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all3, 30000));
	assert_int_equal(r3[0].status, 0);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.status, 0);
	assert_true(r3[0].shard_applied >= w.index);
	fprintf(stderr, "reads: 150 reads in 2 barriers; read after write at "
		"index %llu answered at shard index %llu\n",
		(unsigned long long)w.index,
		(unsigned long long)r3[0].shard_applied);
	check_same(c, ld, 15);
	cluster_free(c);
}

typedef struct other_ready {
	cluster *c;
	unsigned not;
} other_ready;

static bool ready_not(struct raft_fixture *f, void *arg)
{
	other_ready *o = arg;
	for (unsigned i = 0; i < o->c->nn; i++)
		if (i != o->not && raft_fixture_alive(f, i) &&
		    vt_repl_ready(o->c->n[i].r))
			return true;
	return false;
}

/* A leader cut off from the majority never confirms a read, while the
 * majority elects a leader and writes. */
static void test_read_deposed_leader(void **state)
{
	(void)state;
	cluster *c = tuned_cluster(3, 3);
	unsigned ld = ready_leader(c);
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	isolate(c, ld, 1);
	rd r1[20];
	rd_queue(c, ld, r1, 20);      /* still "ready" locally */
	vt_repl_flush(c->n[ld].r);
	other_ready o = {c, ld};
	assert_true(raft_fixture_step_until(&c->f, ready_not, &o, 30000));
	unsigned nl = 0;
	while (nl == ld || !vt_repl_ready(c->n[nl].r))
		nl++;
	write_batch(c, nl, 10, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	/* More reads on the old leader if it still believes it leads. */
	rd r2[5];
	unsigned n2 = 0;
	if (vt_repl_ready(c->n[ld].r)) {
		rd_queue(c, ld, r2, 5);
		n2 = 5;
	}
	rds all1 = {r1, 20}, all2 = {r2, n2};
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all1, 30000));
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all2, 30000));
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(r1[i].status, VT_ECANCELED);
	for (unsigned i = 0; i < n2; i++)
		assert_int_not_equal(r2[i].status, 0);
	/* Once deposed it refuses at once. */
	assert_int_equal(vt_repl_read(c->n[ld].r, rd_cb, NULL), VT_EBUSY);
	/* The new leader's reads are confirmed. */
	rd r3[3];
	rd_queue(c, nl, r3, 3);
	rds all3 = {r3, 3};
	assert_true(raft_fixture_step_until(&c->f, rds_done, &all3, 30000));
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(r3[i].status, 0);
	fprintf(stderr, "deposed leader: 20 + %u reads refused (first: %s)\n",
		n2, vt_errname(r1[0].status));
	isolate(c, ld, 0);
	check_same(c, nl, 20);
	cluster_free(c);
}

/* A follower cut off from the leader reports its lag; a healthy one and
 * the leader report none. */
static void test_lag_follower(void **state)
{
	(void)state;
	cluster *c = tuned_cluster(3, 3);
	unsigned ld = ready_leader(c);
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	converge(c, ld);
	unsigned fo = (ld + 1) % 3;
	vt_repl_lag_info li, ll;
	assert_int_equal(vt_repl_lag(c->n[fo].r, &li), 0);
	assert_int_equal(li.state, RAFT_FOLLOWER);
	assert_int_equal(li.role, RAFT_VOTER);
	assert_int_equal(li.ready, 0);
	assert_int_equal(li.leader_id, ld + 1);
	assert_true(li.since_leader_ms >= 0 && li.since_leader_ms <= 200);
	assert_int_equal(vt_repl_lag(c->n[ld].r, &ll), 0);
	assert_int_equal(ll.state, RAFT_LEADER);
	assert_int_equal(ll.ready, 1);
	assert_int_equal(ll.since_leader_ms, 0);
	assert_int_equal(li.last_applied, ll.last_applied);
	assert_int_equal(li.shard_applied, ll.shard_applied);
	/* Cut it off; the other two go on. */
	isolate(c, fo, 1);
	for (unsigned k = 1; k <= 5; k++)
		write_batch(c, ld, k * 10ull, 1, 10, a);
	raft_fixture_step_until_elapsed(&c->f, 600);
	assert_int_equal(vt_repl_lag(c->n[ld].r, &ll), 0);
	assert_int_equal(vt_repl_lag(c->n[fo].r, &li), 0);
	fprintf(stderr, "lagging follower: state %d term %llu leader %llu "
		"commit %llu/%llu applied %llu/%llu shard %llu/%llu, %lld ms "
		"since the leader\n", li.state, (unsigned long long)li.term,
		(unsigned long long)li.leader_id,
		(unsigned long long)li.commit_index,
		(unsigned long long)ll.commit_index,
		(unsigned long long)li.last_applied,
		(unsigned long long)ll.last_applied,
		(unsigned long long)li.shard_applied,
		(unsigned long long)ll.shard_applied,
		(long long)li.since_leader_ms);
	assert_true(li.since_leader_ms >= 600);
	assert_true(li.commit_index < ll.commit_index);
	assert_true(li.last_applied < ll.last_applied);
	assert_true(li.shard_applied < ll.shard_applied);
	/* Past its election timeout it is a (pre-vote) candidate; the figure
	 * keeps growing, and with pre-vote the term stays. */
	raft_fixture_step_until_elapsed(&c->f, 3000);
	assert_int_equal(vt_repl_lag(c->n[fo].r, &li), 0);
	assert_true(li.since_leader_ms >= 3600);
	assert_int_equal(li.term, ll.term);
	isolate(c, fo, 0);
	check_same(c, ld, 60);
	assert_int_equal(vt_repl_lag(c->n[fo].r, &li), 0);
	assert_int_equal(li.state, RAFT_FOLLOWER);
	assert_true(li.since_leader_ms <= 200);
	cluster_free(c);
}

/* A follower refuses writes, reads and changes with VT_EBUSY and names
 * the leader. */
static void test_not_leader_names_leader(void **state)
{
	(void)state;
	cluster *c = tuned_cluster(3, 3);
	raft_id id;
	const char *addr;
	vt_errmsg e = {{0}};
	/* Before any election: no leader known. */
	assert_int_equal(vt_repl_leader(c->n[0].r, &id, &addr), VT_ENOENT);
	assert_int_equal(id, 0);
	assert_int_equal(vt_repl_busy_msg(c->n[0].r, &e), VT_EBUSY);
	assert_non_null(strstr(e.msg, "no leader known"));
	unsigned ld = ready_leader(c);
	unsigned fo = (ld + 1) % 3;
	char want[64];
	snprintf(want, sizeof want, "server %u at %u leads", ld + 1, ld + 1);
	assert_int_equal(vt_repl_propose(c->n[fo].r, "x", 1, NULL, NULL),
			 VT_EBUSY);
	assert_int_equal(vt_repl_busy_msg(c->n[fo].r, &e), VT_EBUSY);
	fprintf(stderr, "follower says: %s\n", e.msg);
	assert_non_null(strstr(e.msg, want));
	assert_int_equal(vt_repl_leader(c->n[fo].r, &id, &addr), 0);
	assert_int_equal(id, ld + 1);
	snprintf(want, sizeof want, "%u", ld + 1);
	assert_string_equal(addr, want);
	assert_int_equal(vt_repl_read(c->n[fo].r, rd_cb, NULL), VT_EBUSY);
	assert_int_equal(vt_repl_remove(c->n[fo].r, ld + 1, NULL, NULL, &e),
			 VT_EBUSY);
	assert_non_null(strstr(e.msg, "repl: remove: repl: not the leader"));
	assert_int_equal(vt_repl_busy_msg(c->n[ld].r, &e), 0);
	assert_int_equal(vt_repl_leader(c->n[ld].r, &id, &addr), 0);
	assert_int_equal(id, ld + 1);
	cluster_free(c);
}

typedef struct chg {
	int done, status;
	char msg[160];
} chg;

static void chg_cb(void *ud, int status, const char *msg)
{
	chg *x = ud;
	assert_int_equal(x->done, 0);
	x->done = 1;
	x->status = status;
	snprintf(x->msg, sizeof x->msg, "%s", msg);
}

static bool chg_done(struct raft_fixture *f, void *arg)
{
	(void)f;
	return ((chg *)arg)->done != 0;
}

static void chg_wait(cluster *c, chg *x)
{
	if (!raft_fixture_step_until(&c->f, chg_done, x, 60000)) {
		dump(c);
		fail_msg("change not done");
	}
	if (x->status)
		fail_msg("change failed: %s (%s)", x->msg,
			 vt_errname(x->status));
}

/* Add a voter and a standby, promote, transfer, remove; the errors. */
static void test_lifecycle(void **state)
{
	(void)state;
	cluster *c = tuned_cluster(3, 3);
	unsigned ld = ready_leader(c);
	vt_repl *L = c->n[ld].r;
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	node_open(c, 3); /* id 4 */
	node_open(c, 4); /* id 5 */
	vt_errmsg e = {{0}};
	chg x = {0};
	assert_int_equal(vt_repl_add(L, 4, "4", RAFT_VOTER, chg_cb, &x, &e), 0);
	/* One change at a time. */
	assert_int_equal(vt_repl_add(L, 5, "5", RAFT_STANDBY, chg_cb, &x, &e),
			 VT_EOVERLOAD);
	assert_int_equal(vt_repl_remove(L, 2, chg_cb, &x, &e), VT_EOVERLOAD);
	fprintf(stderr, "second change: %s\n", e.msg);
	chg_wait(c, &x);
	assert_int_equal(role_of(c, ld, 4), RAFT_VOTER);
	x = (chg){0};
	assert_int_equal(vt_repl_add(L, 5, "5", RAFT_STANDBY, chg_cb, &x, &e),
			 0);
	chg_wait(c, &x);
	assert_int_equal(role_of(c, ld, 5), RAFT_STANDBY);
	write_batch(c, ld, 10, 1, 10, a);
	check_same(c, ld, 20); /* the standby applies too */
	vt_repl_lag_info li;
	assert_int_equal(vt_repl_lag(c->n[4].r, &li), 0);
	assert_int_equal(li.role, RAFT_STANDBY);
	/* Errors, each at once. */
	x = (chg){0};
	assert_int_equal(vt_repl_add(L, 4, "4", RAFT_VOTER, chg_cb, &x, &e),
			 VT_EEXIST);
	assert_int_equal(vt_repl_add(L, 9, "9", RAFT_SPARE, chg_cb, &x, &e),
			 VT_EINVAL);
	assert_int_equal(vt_repl_promote(L, 99, chg_cb, &x, &e), VT_ENOENT);
	assert_int_equal(vt_repl_promote(L, 4, chg_cb, &x, &e), VT_EEXIST);
	assert_int_equal(vt_repl_remove(L, 99, chg_cb, &x, &e), VT_ENOENT);
	assert_int_equal(vt_repl_remove(L, ld + 1, chg_cb, &x, &e), VT_EINVAL);
	assert_int_equal(vt_repl_transfer(L, 99, chg_cb, &x, &e), VT_ENOENT);
	assert_int_equal(vt_repl_transfer(L, 5, chg_cb, &x, &e), VT_EINVAL);
	assert_int_equal(vt_repl_transfer(L, ld + 1, chg_cb, &x, &e),
			 VT_EINVAL);
	assert_int_equal(x.done, 0);
	/* Promote the standby. */
	assert_int_equal(vt_repl_promote(L, 5, chg_cb, &x, &e), 0);
	chg_wait(c, &x);
	assert_int_equal(role_of(c, ld, 5), RAFT_VOTER);
	/* Transfer to the new voter (node 3, id 4). */
	x = (chg){0};
	assert_int_equal(vt_repl_transfer(L, 4, chg_cb, &x, &e), 0);
	assert_int_equal(vt_repl_transfer(L, 4, chg_cb, &x, &e), VT_EOVERLOAD);
	assert_false(vt_repl_ready(L));
	assert_int_equal(vt_repl_propose(L, "x", 1, NULL, NULL), VT_EBUSY);
	chg_wait(c, &x);
	unsigned nl = ready_leader(c);
	assert_int_equal(nl, 3);
	vt_repl *N = c->n[nl].r;
	/* The old leader is now an ordinary follower: remove it. */
	x = (chg){0};
	assert_int_equal(vt_repl_remove(N, ld + 1, chg_cb, &x, &e), 0);
	chg_wait(c, &x);
	assert_int_equal(role_of(c, nl, ld + 1), -1);
	write_batch(c, nl, 20, 1, 10, a);
	assert_int_equal(a[0].status, 0);
	raft_fixture_kill(&c->f, ld); /* stopped, as the contract says */
	check_same(c, nl, 30);
	cluster_free(c);
}

/* A removed member that keeps running (and timing out) must not disturb
 * the group: same leader, same term, and it never leads. */
static void removed_member(int pre_vote)
{
	vt_repl_tuning_default(&g_tuning);
	g_tuning.pre_vote = pre_vote;
	g_tune = &g_tuning;
	cluster *c = cluster_new(3, 3, 0, 0);
	unsigned ld = ready_leader(c);
	unsigned rm = (ld + 1) % 3;
	ack a[1];
	write_batch(c, ld, 0, 1, 10, a);
	vt_errmsg e = {{0}};
	chg x = {0};
	assert_int_equal(vt_repl_remove(c->n[ld].r, rm + 1, chg_cb, &x, &e), 0);
	chg_wait(c, &x);
	struct raft *L = raft_fixture_get(&c->f, ld);
	struct raft *R = raft_fixture_get(&c->f, rm);
	raft_term t = L->current_term;
	for (unsigned k = 1; k <= 20; k++) {
		write_batch(c, ld, k * 10ull, 1, 10, a);
		assert_int_equal(a[0].status, 0);
		for (int s = 0; s < 10; s++) {
			raft_fixture_step_until_elapsed(&c->f, 50);
			assert_int_not_equal(raft_state(R), RAFT_LEADER);
			assert_true(vt_repl_ready(c->n[ld].r));
		}
	}
	fprintf(stderr, "removed member (pre-vote %d): group term %llu -> "
		"%llu, removed node term %llu state %d, applied %llu vs %llu\n",
		pre_vote, (unsigned long long)t,
		(unsigned long long)L->current_term,
		(unsigned long long)R->current_term, raft_state(R),
		(unsigned long long)raft_last_applied(R),
		(unsigned long long)raft_last_applied(L));
	assert_int_equal(L->current_term, t);
	if (pre_vote)
		assert_int_equal(R->current_term, t);
	assert_true(raft_last_applied(R) < raft_last_applied(L));
	raft_fixture_kill(&c->f, rm);
	check_same(c, ld, 210);
	cluster_free(c);
}

static void test_removed_member_prevote(void **state)
{
	(void)state;
	removed_member(1);
}

static void test_removed_member_no_prevote(void **state)
{
	(void)state;
	removed_member(0);
}

static int exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static void touch(const char *dir, const char *name)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
}

/* vt_repl_destroy deletes a closed replica's directory and refuses what
 * does not look like one. */
static void test_destroy(void **state)
{
	(void)state;
	cluster *c = calloc(1, sizeof *c);
	assert_non_null(c);
	assert_int_equal(raft_fixture_initialize(&c->f), 0);
	node_open(c, 0);
	raft_fixture_close(&c->f);
	vt_repl_close(c->n[0].r);
	char *dir = c->n[0].dir, p[512];
	vt_errmsg e = {{0}};
	/* A raft_uv log and the index base beside the shard. */
	snprintf(p, sizeof p, "%s/raft", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	touch(p, "metadata1");
	touch(p, "0000000000000001-0000000000000004");
	touch(dir, "raft-index-base");
	/* Refused: not a directory, no store, a foreign entry, a symlink. */
	snprintf(p, sizeof p, "%s/raft-index-base", dir);
	assert_int_equal(vt_repl_destroy(p, &e), VT_EINVAL);
	assert_int_equal(vt_repl_destroy("/tmp", &e), VT_EINVAL);
	assert_int_equal(vt_repl_destroy("/", &e), VT_EINVAL);
	touch(dir, "notes.txt");
	assert_int_equal(vt_repl_destroy(dir, &e), VT_EINVAL);
	fprintf(stderr, "destroy refuses: %s\n", e.msg);
	snprintf(p, sizeof p, "%s/notes.txt", dir);
	assert_int_equal(unlink(p), 0);
	char link[64];
	snprintf(link, sizeof link, "/tmp/vt_repl_link_%d", (int)getpid());
	assert_int_equal(symlink(dir, link), 0);
	assert_int_equal(vt_repl_destroy(link, &e), VT_EINVAL);
	assert_int_equal(unlink(link), 0);
	snprintf(p, sizeof p, "%s/store/data.mdb", dir);
	assert_true(exists(p)); /* nothing deleted so far */
	if (vt_repl_destroy(dir, &e))
		fail_msg("destroy: %s", e.msg);
	assert_false(exists(dir));
	free(dir);
	free(c);
}

/* vt_repl_tune: defaults, and what it refuses. */
static void test_tune(void **state)
{
	(void)state;
	vt_repl_tuning t;
	vt_repl_tuning_default(&t);
	assert_int_equal(t.election_timeout_ms, 1000);
	assert_int_equal(t.heartbeat_timeout_ms, 100);
	assert_int_equal(t.snapshot_threshold, 16384);
	assert_int_equal(t.snapshot_trailing, 2048);
	assert_int_equal(t.pre_vote, 1);
	cluster *c = tuned_cluster(1, 1);
	struct raft *r = raft_fixture_get(&c->f, 0);
	assert_int_equal(r->election_timeout, 1000);
	assert_int_equal(r->snapshot.threshold, 16384);
	assert_int_equal(r->snapshot.trailing, 2048);
	vt_errmsg e = {{0}};
	t.heartbeat_timeout_ms = 1000;
	assert_int_equal(vt_repl_tune(r, &t, &e), VT_EINVAL);
	t.heartbeat_timeout_ms = 100;
	t.snapshot_threshold = 0;
	assert_int_equal(vt_repl_tune(r, &t, &e), VT_EINVAL);
	t.snapshot_threshold = 64;
	t.election_timeout_ms = 500;
	assert_int_equal(vt_repl_tune(r, &t, &e), 0);
	assert_int_equal(r->election_timeout, 500);
	assert_int_equal(r->snapshot.threshold, 64);
	ready_leader(c);
	cluster_free(c);
}

/* ---- borrow + index_base ---------------------------------------------------*/

#define BASE 3 /* commands the shard held before its raft log */

static vt_shard *borrowed_open(const char *dir, int create)
{
	vt_shard_config cfg;
	vt_shard_config_default(&cfg, DIM, VT_METRIC_L2);
	cfg.ef_construction = 32;
	vt_shard_opts so;
	vt_shard_opts_default(&so);
	so.create = create ? &cfg : NULL;
	so.background = 0;
	so.snapshot_entries = 0;
	so.index_threads = 1;
	so.store_sync = VT_STORE_SYNC_FULL; /* the store is the state */
	so.map_max = 64u << 20;
	vt_shard *s = NULL;
	vt_errmsg e = {{0}};
	if (vt_shard_open(dir, &so, &s, &e))
		fail_msg("open %s: %s", dir, e.msg);
	return s;
}

/* A one-voter fixture group over the borrowed shard `s`. With `snap`, the
 * server starts from that snapshot, `n` entries after it and `term`, as a
 * restarted raft_uv would load them. Returns raft_start's result. */
static int borrowed_group(cluster *c, char *dir, vt_shard *s,
			  struct raft_snapshot *snap, struct raft_entry *ents,
			  unsigned n, raft_term term)
{
	memset(c, 0, sizeof *c);
	g_c = c;
	g_auto = 1;
	vt_repl_tuning_default(&g_tuning);
	g_tuning.snapshot_threshold = 4;
	g_tuning.snapshot_trailing = 2;
	assert_int_equal(raft_fixture_initialize(&c->f), 0);
	vt_repl_opts o;
	vt_repl_opts_default(&o, dir);
	o.borrow = s;
	o.index_base = BASE;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_repl_open(&o, &c->n[0].r, &e), 0);
	c->n[0].dir = dir;
	c->nn = 1;
	assert_int_equal(raft_fixture_grow(&c->f, vt_repl_fsm(c->n[0].r)), 0);
	struct raft *r = raft_fixture_get(&c->f, 0);
	vt_repl_attach(c->n[0].r, r);
	assert_int_equal(vt_repl_tune(r, &g_tuning, &e), 0);
	if (!snap) {
		struct raft_configuration conf;
		assert_int_equal(raft_fixture_configuration(&c->f, 1, &conf), 0);
		assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
		raft_configuration_close(&conf);
	} else {
		raft_fixture_set_term(&c->f, 0, term);
		raft_fixture_set_snapshot(&c->f, 0, snap);
		for (unsigned i = 0; i < n; i++)
			raft_fixture_add_entry(&c->f, 0, &ents[i]);
	}
	int rc = raft_fixture_start(&c->f);
	c->started = 1;
	raft_fixture_hook(&c->f, hook);
	return rc;
}

static void borrowed_close(cluster *c)
{
	raft_fixture_close(&c->f);
	vt_repl_close(c->n[0].r); /* leaves the borrowed shard open */
	g_c = NULL;
	g_tune = NULL;
}

/* A snapshot as fsm_snapshot makes it for a borrowed shard: the 8-byte
 * shard index, here `shard_index`. */
static struct raft_snapshot *borrowed_snapshot(raft_index index,
					       raft_term term,
					       uint64_t shard_index)
{
	struct raft_snapshot *sn = raft_malloc(sizeof *sn);
	assert_non_null(sn);
	memset(sn, 0, sizeof *sn);
	sn->index = index;
	sn->term = term;
	raft_configuration_init(&sn->configuration);
	assert_int_equal(raft_configuration_add(&sn->configuration, 1, "1",
						RAFT_VOTER),
			 0);
	sn->configuration_index = 1;
	sn->bufs = raft_malloc(sizeof *sn->bufs);
	sn->bufs[0].base = raft_malloc(8);
	memcpy(sn->bufs[0].base, &shard_index, 8);
	sn->bufs[0].len = 8;
	sn->n_bufs = 1;
	return sn;
}

/* The log entries of `r` after index `from`, copied (raft_malloc'd). */
static unsigned log_after(struct raft *r, raft_index from,
			  struct raft_entry *out, unsigned max)
{
	const struct raft_log *l = &r->log;
	size_t n = (l->back + l->size - l->front) % (l->size ? l->size : 1);
	unsigned k = 0;
	for (size_t i = 0; i < n; i++) {
		raft_index idx = l->offset + i + 1;
		if (idx <= from)
			continue;
		const struct raft_entry *e =
			&l->entries[(l->front + i) % l->size];
		assert_true(k < max);
		out[k] = *e;
		out[k].batch = NULL;
		out[k].buf.base = raft_malloc(e->buf.len ? e->buf.len : 8);
		memcpy(out[k].buf.base, e->buf.base, e->buf.len);
		k++;
	}
	return k;
}

/* vectron serve's one-voter group: a shard that held BASE commands before
 * its raft log, borrowed. Its snapshots hold only the shard index; a
 * restart loads the snapshot and the log after it and replays it as
 * no-ops; a snapshot ahead of the shard is refused. */
static void test_borrow_index_base(void **state)
{
	(void)state;
	char *dir = strdup("/tmp/vt_repl_XXXXXX");
	assert_non_null(mkdtemp(dir));
	vt_shard *s = borrowed_open(dir, 1);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_shard_result res;
	vt_errmsg e = {{0}};
	for (unsigned i = 1; i <= BASE; i++) {
		enc_upsert(&b, (i - 1) * 5ull, 5, 0);
		assert_int_equal(vt_shard_apply(s, i, b.data, b.len, &res, &e), 0);
	}
	vt_buf_free(&b);
	cluster c;
	assert_int_equal(borrowed_group(&c, dir, s, NULL, NULL, 0, 0), 0);
	assert_int_equal(ready_leader(&c), 0);
	ack a[1];
	for (unsigned k = 0; k < 10; k++) {
		write_batch(&c, 0, 15 + k * 5ull, 1, 5, a);
		assert_int_equal(a[0].status, 0);
		/* index_base shifts: shard index = raft index + BASE */
		struct raft *r = raft_fixture_get(&c.f, 0);
		assert_int_equal(a[0].index, raft_last_applied(r) + BASE);
	}
	struct raft *r = raft_fixture_get(&c.f, 0);
	vt_repl_stats st;
	vt_repl_stats_get(c.n[0].r, &st);
	assert_true(st.snapshots >= 1);
	raft_index si = r->log.snapshot.last_index, last = raft_last_index(r);
	raft_term sterm = r->log.snapshot.last_term, term = r->current_term;
	assert_true(si > 0 && si < last);
	uint64_t applied = shard_applied(&c, 0);
	assert_int_equal(applied, last + BASE);
	check_points(&c, 0, 65);
	struct raft_entry ents[64];
	unsigned n = log_after(r, si, ents, 64);
	fprintf(stderr, "borrowed: %llu snapshot(s), last at raft index %llu; "
		"%u entries after it; shard at %llu = raft %llu + %d\n",
		(unsigned long long)st.snapshots, (unsigned long long)si, n,
		(unsigned long long)applied, (unsigned long long)last, BASE);
	borrowed_close(&c);
	/* Restart: the shard reopened from disk, raft from its snapshot
	 * (shard index at most si + BASE) and the log after it. */
	vt_shard_close(s);
	s = borrowed_open(dir, 0);
	assert_int_equal(borrowed_group(&c, dir, s,
					borrowed_snapshot(si, sterm, si + BASE),
					ents, n, term),
			 0);
	unsigned ld = ready_leader(&c);
	assert_int_equal(ld, 0);
	vt_repl_stats_get(c.n[0].r, &st);
	assert_int_equal(st.restores, 1);
	assert_int_equal(shard_applied(&c, 0), applied); /* replay: no-ops */
	check_points(&c, 0, 65);
	write_batch(&c, 0, 65, 1, 5, a);
	assert_int_equal(a[0].status, 0);
	r = raft_fixture_get(&c.f, 0);
	assert_int_equal(a[0].index, raft_last_applied(r) + BASE);
	assert_true(a[0].index > applied);
	check_points(&c, 0, 70);
	applied = shard_applied(&c, 0);
	borrowed_close(&c);
	/* A snapshot ahead of the shard cannot be installed: one replica has
	 * no peer to copy the store from. */
	assert_int_not_equal(borrowed_group(&c, dir, s,
					    borrowed_snapshot(si, sterm,
							      applied + 100),
					    NULL, 0, term),
			     0);
	vt_repl_stats_get(c.n[0].r, &st);
	assert_int_equal(st.restores, 0);
	borrowed_close(&c);
	uint64_t sa = 0, sx = 0;
	vt_shard_progress(s, &sa, &sx);
	assert_int_equal(sa, applied);
	vt_shard_close(s);
	assert_int_equal(vt_repl_destroy(dir, &e), 0);
	free(dir);
}

int main(void)
{
	vt_log_set_level(VT_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elect_and_group_commit),
		cmocka_unit_test(test_leader_crash),
		cmocka_unit_test(test_partition_heal),
		cmocka_unit_test(test_membership),
		cmocka_unit_test(test_snapshot_install),
		cmocka_unit_test(test_figure8),
		cmocka_unit_test(test_figure8_without_barrier),
		cmocka_unit_test(test_read_batched),
		cmocka_unit_test(test_read_deposed_leader),
		cmocka_unit_test(test_lag_follower),
		cmocka_unit_test(test_not_leader_names_leader),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_removed_member_prevote),
		cmocka_unit_test(test_removed_member_no_prevote),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_tune),
		cmocka_unit_test(test_borrow_index_base),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
