/* test_pd_plan.c: lib/pd's reconciliation planner, driven as the daemon
 * will drive it: plan, turn the actions into PD commands, apply them, and
 * report what the workers would (caught up, leaders). Scenarios: a healthy
 * cluster plans nothing; a dead worker within its grace period plans
 * nothing; past it, its replicas are re-created (add, catch up, promote,
 * remove) and the worker removed; a joining worker gets replicas a few at
 * a time; a draining worker is emptied; leaderless shards are repaired;
 * the rate limit holds; stale plans are refused by the epoch fence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pd/cmd.h"
#include "pd/meta.h"
#include "pd/place.h"
#include "pd/plan.h"

#define MAXW 16
#define GRACE 10000

typedef struct sim {
	vt_pd_meta *m;
	uint64_t now;
	uint64_t last[MAXW + 1]; /* heartbeat per worker id */
	int dead[MAXW + 1];      /* stops beating */
	int lagging;             /* new replicas never catch up */
	uint64_t elected[1024];  /* group -> worker asked to campaign */
	vt_pd_beat beats[MAXW];
	vt_pd_report rep[8192];
	size_t nb, nr;
	vt_pd_action act[256];
	size_t na;
	uint32_t max_actions, max_moves;
	int balance_leaders;
	int log;
} sim;

static int apply_cmd(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *e)
{
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	int rc = vt_pd_cmd_encode(c, &b, e);
	if (!rc)
		rc = vt_pd_apply(m, 0, b.data, b.len, NULL, e);
	vt_buf_free(&b);
	return rc;
}

static void add_worker(sim *s, uint64_t id, const char *zone)
{
	char addr[32];
	snprintf(addr, sizeof addr, "w%llu:7000", (unsigned long long)id);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = id,
		       .addr = addr, .addr_len = (uint32_t)strlen(addr),
		       .capacity = 1, .zone = zone,
		       .zone_len = (uint32_t)strlen(zone), .rack = "r",
		       .rack_len = 1};
	vt_errmsg e = {{0}};
	assert_int_equal(apply_cmd(s->m, &c, &e), 0);
	s->last[id] = s->now;
}

static void set_state(sim *s, uint64_t id, int state)
{
	vt_pd_cmd c = {.type = VT_PD_CMD_SET_WORKER_STATE, .worker = id,
		       .state = (uint8_t)state};
	vt_errmsg e = {{0}};
	assert_int_equal(apply_cmd(s->m, &c, &e), 0);
}

static void set_leader(sim *s, const char *name, uint32_t shard,
		       uint64_t worker, uint64_t term)
{
	vt_pd_cmd c = {.type = VT_PD_CMD_SET_LEADER, .name = name,
		       .name_len = (uint32_t)strlen(name), .shard = shard,
		       .worker = worker, .term = term};
	vt_errmsg e = {{0}};
	assert_int_equal(apply_cmd(s->m, &c, &e), 0);
}

/* `workers` workers over `zones` zones, one collection "c" of `shards`
 * shards x rf 3, each shard's first voter its leader. */
static void setup(sim *s, uint32_t workers, uint32_t zones, uint32_t shards)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(vt_pd_meta_new(&s->m), 0);
	s->now = 1000000;
	static const char *const Z[] = {"z0", "z1", "z2", "z3"};
	for (uint64_t id = 1; id <= workers; id++)
		add_worker(s, id, Z[(id - 1) % zones]);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = shards, .rf = 3, .seed = 1};
	assert_int_equal(vt_pd_place_create(s->m, "c", NULL, 0, &q, &b, &e), 0);
	assert_int_equal(vt_pd_apply(s->m, 0, b.data, b.len, NULL, &e), 0);
	vt_buf_free(&b);
	const vt_pd_collection *c = vt_pd_meta_find_collection(s->m, "c", 1);
	for (uint32_t i = 0; i < shards; i++)
		set_leader(s, "c", i, c->shards[i].replicas[0].worker, 1);
}

static const vt_pd_collection *coll(const sim *s)
{
	return vt_pd_meta_find_collection(s->m, "c", 1);
}

/* What the workers would report: live replicas are caught up unless
 * lagging; the hinted leader (or an elected one) claims leadership. */
static void reports(sim *s)
{
	s->nr = 0;
	const vt_pd_collection *c = coll(s);
	for (uint32_t i = 0; c && i < c->shard_count; i++) {
		const vt_pd_shard *sh = &c->shards[i];
		for (uint32_t r = 0; r < sh->n_replicas; r++) {
			const vt_pd_replica *rp = &sh->replicas[r];
			if (s->dead[rp->worker])
				continue;
			vt_pd_report *x = &s->rep[s->nr++];
			*x = (vt_pd_report){.group = sh->group,
					    .worker = rp->worker,
					    .term = sh->leader_term,
					    .caught_up = !s->lagging};
			if (s->elected[sh->group] == rp->worker) {
				x->leader = 1;
				x->term = sh->leader_term + 1;
			} else if (sh->leader == rp->worker) {
				x->leader = 1;
			}
		}
	}
	s->nb = 0;
	for (uint64_t id = 1; id <= MAXW; id++) {
		if (!s->last[id])
			continue;
		if (!s->dead[id])
			s->last[id] = s->now;
		s->beats[s->nb++] = (vt_pd_beat){id, s->last[id]};
	}
}

static size_t plan(sim *s)
{
	reports(s);
	vt_pd_plan_in in = {.beats = s->beats, .n_beats = s->nb,
			    .reports = s->rep, .n_reports = s->nr,
			    .now_ms = s->now, .since_ms = 0,
			    .grace_ms = GRACE, .max_actions = s->max_actions,
			    .max_moves = s->max_moves, .seed = 7,
			    .balance_leaders = s->balance_leaders};
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_plan(s->m, &in, s->act, 256, &s->na, &e), 0);
	return s->na;
}

static size_t count(const sim *s, int kind)
{
	size_t n = 0;
	for (size_t i = 0; i < s->na; i++)
		n += s->act[i].kind == kind;
	return n;
}

/* Applies every log action; ELECT makes the worker the leader by the next
 * report. Every action must be accepted. */
static void execute(sim *s)
{
	for (size_t i = 0; i < s->na; i++) {
		const vt_pd_action *a = &s->act[i];
		if (s->log)
			printf("  %s: %s\n", vt_pd_act_name(a->kind), a->reason);
		assert_true(a->reason[0]);
		if (a->kind == VT_PD_ACT_ELECT) {
			s->elected[a->group] = a->worker;
			continue;
		}
		vt_buf b;
		vt_buf_init(&b, 1u << 16);
		vt_errmsg e = {{0}};
		assert_int_equal(vt_pd_action_encode(a, &b, &e), 0);
		int rc = vt_pd_apply(s->m, 0, b.data, b.len, NULL, &e);
		if (rc)
			fail_msg("%s refused: %s", a->reason, e.msg);
		vt_buf_free(&b);
		if (a->kind == VT_PD_ACT_SET_LEADER)
			s->elected[a->group] = 0;
	}
}

/* Plans and executes until a plan is empty; returns the rounds taken. */
static int converge(sim *s, int max_rounds)
{
	for (int r = 0; r < max_rounds; r++) {
		s->now += 1000;
		if (!plan(s))
			return r;
		execute(s);
	}
	fail_msg("no convergence in %d rounds", max_rounds);
	return -1;
}

/* Every shard: rf voters on distinct live, up, normal workers, nothing in
 * transit, a leader hint on one of them. */
static void check_settled(const sim *s)
{
	const vt_pd_collection *c = coll(s);
	for (uint32_t i = 0; i < c->shard_count; i++) {
		const vt_pd_shard *sh = &c->shards[i];
		assert_int_equal(sh->n_replicas, c->rf);
		int leader_ok = 0;
		for (uint32_t r = 0; r < sh->n_replicas; r++) {
			const vt_pd_replica *rp = &sh->replicas[r];
			const vt_pd_worker *w =
				vt_pd_meta_find_worker(s->m, rp->worker);
			assert_int_equal(rp->role, VT_PD_VOTER);
			assert_int_equal(w->state, VT_PD_UP);
			assert_false(s->dead[rp->worker]);
			leader_ok |= sh->leader == rp->worker;
			for (uint32_t t = 0; t < r; t++)
				assert_int_not_equal(sh->replicas[t].worker,
						     rp->worker);
		}
		assert_true(leader_ok);
	}
}

static void done(sim *s)
{
	vt_pd_meta_free(s->m);
}

/* ---- scenarios --------------------------------------------------------------- */

static void test_healthy(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 8);
	assert_int_equal(plan(&s), 0);
	check_settled(&s);
	done(&s);
}

static void test_dead_within_grace(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 8);
	s.dead[2] = 1;
	s.now += GRACE; /* exactly the grace period: still alive */
	assert_int_equal(plan(&s), 0);
	done(&s);
}

static void test_dead_worker_rereplicated(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 8);
	uint32_t lost = vt_pd_meta_hosted(s.m, 2);
	assert_true(lost > 0);
	s.dead[2] = 1;
	s.now += GRACE + 1;
	/* Round 1: one new non-voter for each shard that lost a replica (or
	 * a leader repair where the dead worker led). */
	plan(&s);
	assert_int_equal(count(&s, VT_PD_ACT_ADD_REPLICA) +
				 count(&s, VT_PD_ACT_SET_LEADER) +
				 count(&s, VT_PD_ACT_ELECT),
			 lost);
	for (size_t i = 0; i < s.na; i++) {
		const vt_pd_action *a = &s.act[i];
		if (a->kind != VT_PD_ACT_ADD_REPLICA)
			continue;
		assert_int_equal(a->role, VT_PD_NONVOTER);
		assert_int_not_equal(a->worker, 2);
		assert_non_null(strstr(a->reason, "2 healthy voters"));
	}
	/* While the new replicas lag, nothing more happens to them. */
	s.lagging = 1;
	execute(&s);
	s.now += 1000;
	plan(&s);
	assert_int_equal(count(&s, VT_PD_ACT_PROMOTE), 0);
	assert_int_equal(count(&s, VT_PD_ACT_ADD_REPLICA), 0);
	execute(&s);
	/* Caught up: promote, then remove the dead voters, then the worker. */
	s.lagging = 0;
	s.now += 1000;
	plan(&s);
	assert_true(count(&s, VT_PD_ACT_PROMOTE) > 0);
	execute(&s);
	assert_true(converge(&s, 20) >= 1);
	check_settled(&s);
	assert_int_equal(vt_pd_meta_hosted(s.m, 2), 0);
	assert_int_equal(vt_pd_meta_find_worker(s.m, 2)->state, VT_PD_REMOVED);
	/* Zones still spread: 3 zones, rf 3. */
	const vt_pd_collection *c = coll(&s);
	for (uint32_t i = 0; i < c->shard_count; i++) {
		int z[3] = {0};
		for (uint32_t r = 0; r < 3; r++)
			z[(c->shards[i].replicas[r].worker - 1) % 3]++;
		assert_true(z[0] == 1 && z[1] == 1 && z[2] == 1);
	}
	done(&s);
}

static void test_rate_limit(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 12);
	s.dead[1] = 1;
	s.now += GRACE + 1;
	s.max_actions = 2;
	assert_int_equal(plan(&s), 2);
	s.max_actions = 0;
	assert_true(plan(&s) > 2);
	done(&s);
}

static void test_join_rebalances(void **state)
{
	(void)state;
	sim s;
	setup(&s, 3, 3, 6); /* every worker holds all 6 shards */
	add_worker(&s, 4, "z0");
	add_worker(&s, 5, "z1");
	add_worker(&s, 6, "z2");
	/* One move at a time: a single add, then nothing new until it is
	 * promoted and the old replica removed. */
	s.max_moves = 1;
	s.lagging = 1;
	assert_int_equal(plan(&s), 1);
	assert_int_equal(s.act[0].kind, VT_PD_ACT_ADD_REPLICA);
	assert_non_null(strstr(s.act[0].reason, "rebalance"));
	execute(&s);
	s.now += 1000;
	assert_int_equal(plan(&s), 0); /* catching up */
	s.lagging = 0;
	s.log = getenv("PD_LOG") != NULL;
	int rounds = converge(&s, 100);
	assert_true(rounds >= 3 * 3); /* 3 moves of 3 steps at least */
	check_settled(&s);
	for (uint64_t id = 1; id <= 6; id++)
		assert_int_equal(vt_pd_meta_hosted(s.m, id), 3);
	/* More moves in flight, fewer rounds. */
	sim t;
	setup(&t, 3, 3, 6);
	add_worker(&t, 4, "z0");
	add_worker(&t, 5, "z1");
	add_worker(&t, 6, "z2");
	t.max_moves = 3;
	assert_int_equal(plan(&t), 3);
	int fast = converge(&t, 100);
	assert_true(fast < rounds);
	check_settled(&t);
	done(&s);
	done(&t);
}

static void test_drain(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 8);
	assert_true(vt_pd_meta_hosted(s.m, 4) > 0);
	set_state(&s, 4, VT_PD_DRAINING);
	plan(&s);
	assert_true(count(&s, VT_PD_ACT_ADD_REPLICA) > 0);
	for (size_t i = 0; i < s.na; i++)
		assert_non_null(strstr(s.act[i].reason, "2 healthy voters"));
	execute(&s);
	converge(&s, 30);
	check_settled(&s);
	assert_int_equal(vt_pd_meta_hosted(s.m, 4), 0);
	/* Drained, not removed: that is the operator's call. */
	assert_int_equal(vt_pd_meta_find_worker(s.m, 4)->state, VT_PD_DRAINING);
	done(&s);
}

static void test_leader_repair(void **state)
{
	(void)state;
	sim s;
	setup(&s, 3, 3, 2);
	/* No hint and no claim: ask a live voter to campaign. */
	set_leader(&s, "c", 0, 0, 1);
	assert_int_equal(plan(&s), 1);
	assert_int_equal(s.act[0].kind, VT_PD_ACT_ELECT);
	assert_int_equal(s.act[0].shard, 0);
	uint64_t who = s.act[0].worker;
	execute(&s);
	/* The campaigner now claims leadership: the hint follows. */
	s.now += 1000;
	assert_int_equal(plan(&s), 1);
	assert_int_equal(s.act[0].kind, VT_PD_ACT_SET_LEADER);
	assert_int_equal(s.act[0].worker, who);
	assert_int_equal(s.act[0].term, 2);
	execute(&s);
	assert_int_equal(coll(&s)->shards[0].leader, who);
	assert_int_equal(plan(&s), 0);
	/* Two of three voters dead: no quorum, no election asked, no place
	 * to re-replicate (three workers); only what can be done. */
	const vt_pd_shard *sh = &coll(&s)->shards[1];
	s.dead[sh->replicas[0].worker] = 1;
	s.dead[sh->replicas[1].worker] = 1;
	s.now += GRACE + 1;
	plan(&s);
	assert_int_equal(count(&s, VT_PD_ACT_ELECT), 0);
	assert_int_equal(count(&s, VT_PD_ACT_ADD_REPLICA), 0);
	done(&s);
}

static void test_stale_plan_fenced(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 4);
	s.dead[1] = 1;
	s.now += GRACE + 1;
	plan(&s);
	size_t i = 0;
	while (i < s.na && s.act[i].kind != VT_PD_ACT_ADD_REPLICA)
		i++;
	assert_true(i < s.na);
	vt_pd_action a = s.act[i];
	/* Something else changes the shard first. */
	const vt_pd_shard *sh = &coll(&s)->shards[a.shard];
	set_leader(&s, "c", a.shard, sh->replicas[1].worker,
		   sh->leader_term + 1);
	vt_buf b;
	vt_buf_init(&b, 4096);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_action_encode(&a, &b, &e), 0);
	assert_int_equal(vt_pd_apply(s.m, 0, b.data, b.len, NULL, &e),
			 VT_EBUSY);
	assert_non_null(strstr(e.msg, "expect_epoch"));
	vt_buf_free(&b);
	/* ELECT is not a log command. */
	a.kind = VT_PD_ACT_ELECT;
	vt_buf_init(&b, 4096);
	assert_int_equal(vt_pd_action_encode(&a, &b, &e), VT_EINVAL);
	vt_buf_free(&b);
	assert_string_equal(vt_pd_act_name(VT_PD_ACT_REMOVE_WORKER),
			    "remove_worker");
	done(&s);
}

static void test_deterministic(void **state)
{
	(void)state;
	sim s;
	setup(&s, 8, 3, 16);
	s.dead[3] = 1;
	s.now += GRACE + 1;
	plan(&s);
	vt_pd_action first[256];
	size_t n = s.na;
	memcpy(first, s.act, n * sizeof *first);
	assert_int_equal(plan(&s), n);
	assert_memory_equal(first, s.act, n * sizeof *first);
	done(&s);
}

/* A worker the PD has never heard from since it took office counts from
 * since_ms: no premature repair after a PD leader change. */
static void test_since(void **state)
{
	(void)state;
	sim s;
	setup(&s, 6, 3, 4);
	vt_pd_action out[16];
	size_t n;
	vt_errmsg e = {{0}};
	reports(&s);
	vt_pd_plan_in in = {.reports = s.rep, .n_reports = s.nr,
			    .now_ms = 50000, .since_ms = 45000,
			    .grace_ms = GRACE};
	assert_int_equal(vt_pd_plan(s.m, &in, out, 16, &n, &e), 0);
	assert_int_equal(n, 0);
	in.now_ms = 56000;
	assert_int_equal(vt_pd_plan(s.m, &in, out, 16, &n, &e), 0);
	assert_int_equal(n, 0); /* everyone is dead: no live host, no quorum */
	done(&s);
}

/* A search replica on a dead search-only worker is dropped, not moved
 * (search replicas are placed only when asked). */
/* Every shard led by one worker: with balance_leaders, elections move
 * leadership until no worker leads two more shards than another; without
 * it, nothing is planned. */
static void test_balance_leaders(void **state)
{
	(void)state;
	sim s;
	setup(&s, 3, 3, 6);
	const vt_pd_collection *c = coll(&s);
	uint64_t w1 = c->shards[0].replicas[0].worker;
	for (uint32_t i = 0; i < 6; i++)
		set_leader(&s, "c", i, w1, 2);
	assert_int_equal(plan(&s), 0);
	s.balance_leaders = 1;
	assert_int_equal(plan(&s), 1);
	assert_int_equal(s.act[0].kind, VT_PD_ACT_ELECT);
	assert_int_not_equal(s.act[0].worker, w1);
	assert_non_null(strstr(s.act[0].reason, "balance leaders"));
	converge(&s, 40);
	check_settled(&s);
	uint64_t lead[MAXW + 1] = {0}, lo = UINT64_MAX, hi = 0;
	c = coll(&s);
	for (uint32_t i = 0; i < c->shard_count; i++)
		lead[c->shards[i].leader]++;
	for (uint32_t r = 0; r < c->shards[0].n_replicas; r++) {
		uint64_t n = lead[c->shards[0].replicas[r].worker];
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	assert_true(hi - lo <= 1);
	done(&s);
}

static void test_search_replica_lost(void **state)
{
	(void)state;
	sim s;
	setup(&s, 3, 3, 2);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = 9,
		       .addr = "s:1", .addr_len = 3, .capacity = 1,
		       .role = VT_PD_ROLE_SEARCH_ONLY};
	vt_errmsg e = {{0}};
	assert_int_equal(apply_cmd(s.m, &c, &e), 0);
	s.last[9] = s.now;
	vt_pd_cmd a = {.type = VT_PD_CMD_ADD_REPLICA, .name = "c",
		       .name_len = 1, .shard = 1, .worker = 9,
		       .role = VT_PD_NONVOTER};
	assert_int_equal(apply_cmd(s.m, &a, &e), 0);
	assert_int_equal(plan(&s), 0); /* a live search replica is fine */
	s.dead[9] = 1;
	s.now += GRACE + 1;
	assert_int_equal(plan(&s), 1);
	assert_int_equal(s.act[0].kind, VT_PD_ACT_REMOVE_REPLICA);
	assert_int_equal(s.act[0].worker, 9);
	assert_non_null(strstr(s.act[0].reason, "search replica"));
	execute(&s);
	assert_int_equal(converge(&s, 5), 1); /* then the worker goes */
	assert_int_equal(vt_pd_meta_find_worker(s.m, 9)->state, VT_PD_REMOVED);
	check_settled(&s);
	done(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy),
		cmocka_unit_test(test_dead_within_grace),
		cmocka_unit_test(test_dead_worker_rereplicated),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_join_rebalances),
		cmocka_unit_test(test_drain),
		cmocka_unit_test(test_leader_repair),
		cmocka_unit_test(test_stale_plan_fenced),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_since),
		cmocka_unit_test(test_search_replica_lost),
		cmocka_unit_test(test_balance_leaders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
