/* test_pdsvc.c: lib/pdsvc, the pure parts of `vectron pd`: the stored
 * "addr,raft_addr" pair (and that lib/pd accepts it), the leader's soft
 * state (beats, reports replaced per worker, Elect orders), the ring of
 * recent actions, and the messages built from a metadata: routes, worker
 * info, assignments with their bootstrap flag. */
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
#include "pdsvc/pdsvc.h"

static void apply_buf(vt_pd_meta *m, vt_buf *b)
{
	vt_errmsg e = {{0}};
	if (vt_pd_apply(m, 0, b->data, b->len, NULL, &e))
		fail_msg("apply: %s", e.msg);
	vt_buf_reset(b);
}

static void apply_cmd(vt_pd_meta *m, const vt_pd_cmd *c)
{
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_errmsg e = {{0}};
	if (vt_pd_cmd_encode(c, &b, &e))
		fail_msg("encode: %s", e.msg);
	apply_buf(m, &b);
	vt_buf_free(&b);
}

static void add_worker(vt_pd_meta *m, uint64_t id)
{
	char a[64], r[64], both[VT_PD_MAX_ADDR + 1];
	snprintf(a, sizeof a, "10.0.0.%llu:7000", (unsigned long long)id);
	snprintf(r, sizeof r, "10.0.0.%llu:7100", (unsigned long long)id);
	assert_int_equal(vt_pdsvc_addr_join(a, r, both, sizeof both, NULL), 0);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = id,
		       .addr = both, .addr_len = (uint32_t)strlen(both),
		       .capacity = 1};
	apply_cmd(m, &c); /* lib/pd takes the pair as one address */
}

static void test_addr(void **state)
{
	(void)state;
	char out[VT_PD_MAX_ADDR + 1];
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pdsvc_addr_join("h:1", "h:2", out, sizeof out, &e),
			 0);
	assert_string_equal(out, "h:1,h:2");
	assert_int_equal(vt_pdsvc_addr_join("h,1", "h:2", out, sizeof out, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "worker.addr"));
	assert_int_equal(vt_pdsvc_addr_join("h:1", "", out, sizeof out, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "worker.raft_addr"));
	assert_int_equal(vt_pdsvc_addr_join("h 1", "h:2", out, sizeof out, &e),
			 VT_EINVAL);
	assert_int_equal(vt_pdsvc_addr_join(NULL, "h:2", out, sizeof out, &e),
			 VT_EINVAL);
	char big[200];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(vt_pdsvc_addr_join(big, big, out, sizeof out, &e),
			 VT_ELIMIT);

	vt_arena *a = vt_arena_create(0);
	char *x, *y;
	assert_int_equal(vt_pdsvc_addr_split("h:1,h:2", a, &x, &y), 0);
	assert_string_equal(x, "h:1");
	assert_string_equal(y, "h:2");
	assert_int_equal(vt_pdsvc_addr_split("h:9", a, &x, &y), 0);
	assert_string_equal(x, "h:9");
	assert_string_equal(y, "h:9");
	vt_arena_destroy(a);
}

static void test_peers(void **state)
{
	(void)state;
	vt_pdsvc_peer v[4];
	size_t n;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pdsvc_peers_parse("1=a:1/a:2,2=b:1/b:2,3=c:1/c:2",
					      2, v, 4, &n, &e),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[2].id, 3);
	assert_string_equal(v[2].grpc, "c:1");
	assert_string_equal(v[2].raft, "c:2");
	const char *bad[] = {"1=a:1", "x=a:1/a:2", "0=a:1/a:2", "1=a/a:2",
			     "1=a:1/a:99999", "1=a:1/a:2,1=b:1/b:2",
			     "1=a:1/a:2,,2=b:1/b:2", "-1=a:1/a:2"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e.msg[0] = '\0';
		if (vt_pdsvc_peers_parse(bad[i], 1, v, 4, &n, &e) != VT_EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(e.msg, "peers"));
	}
	assert_int_equal(vt_pdsvc_peers_parse("1=a:1/a:2", 2, v, 4, &n, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "node_id 2"));
	assert_int_equal(vt_pdsvc_peers_parse("1=a:1/a:2,2=b:1/b:2", 1, v, 1,
					      &n, &e),
			 VT_ELIMIT);
	char host[16];
	int port;
	assert_int_equal(vt_pdsvc_hostport("127.0.0.1:7000", host, sizeof host,
					   &port),
			 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7000);
	assert_int_equal(vt_pdsvc_hostport(":7", host, sizeof host, &port), -1);
	assert_int_equal(vt_pdsvc_hostport("h:", host, sizeof host, &port), -1);
}

static void test_soft(void **state)
{
	(void)state;
	vt_pdsvc_soft *s;
	assert_int_equal(vt_pdsvc_soft_new(&s), 0);
	vt_pd_report r1[2] = {{.group = 1, .term = 3, .leader = 1},
			      {.group = 2, .caught_up = 1}};
	assert_int_equal(vt_pdsvc_soft_beat(s, 7, 100, r1, 2), 0);
	assert_int_equal(vt_pdsvc_soft_beat(s, 8, 150, r1, 1), 0);
	size_t n;
	const vt_pd_report *rep = vt_pdsvc_soft_reports(s, &n);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_true(rep[i].worker == 7 || rep[i].worker == 8);
	/* a new beat replaces the worker's reports, not the others' */
	vt_pd_report r2 = {.group = 5};
	assert_int_equal(vt_pdsvc_soft_beat(s, 7, 200, &r2, 1), 0);
	rep = vt_pdsvc_soft_reports(s, &n);
	assert_int_equal(n, 2);
	int saw5 = 0;
	for (size_t i = 0; i < n; i++) {
		if (rep[i].worker == 7) {
			assert_int_equal(rep[i].group, 5);
			saw5 = 1;
		} else {
			assert_int_equal(rep[i].worker, 8);
			assert_int_equal(rep[i].group, 1);
		}
	}
	assert_true(saw5);
	const vt_pd_beat *b = vt_pdsvc_soft_beats(s, &n);
	assert_int_equal(n, 2);
	uint64_t last;
	assert_int_equal(vt_pdsvc_soft_last(s, 7, &last), 1);
	assert_int_equal(last, 200);
	assert_int_equal(vt_pdsvc_soft_last(s, 9, &last), 0);
	(void)b;

	/* Elect orders: one per (worker, group), taken once */
	assert_int_equal(vt_pdsvc_soft_elect(s, 7, 1, 2), 0);
	assert_int_equal(vt_pdsvc_soft_elect(s, 7, 1, 3), 0);
	assert_int_equal(vt_pdsvc_soft_elect(s, 7, 4, 1), 0);
	assert_int_equal(vt_pdsvc_soft_elect(s, 8, 1, 3), 0);
	assert_int_equal(vt_pdsvc_soft_elect_pending(s, 7), 2);
	assert_int_equal(vt_pdsvc_soft_elect_has(s, 7, 1, 3), 1);
	assert_int_equal(vt_pdsvc_soft_elect_has(s, 7, 1, 2), 0);
	assert_int_equal(vt_pdsvc_soft_elect_has(s, 9, 1, 3), 0);
	vt_arena *a = vt_arena_create(0);
	Vectron__Internal__V1__Elect **el;
	assert_int_equal(vt_pdsvc_soft_take_elect(s, 7, a, &el, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(el[0]->group, 1);
	assert_int_equal(el[0]->raft_id, 3);
	assert_int_equal(el[1]->group, 4);
	assert_int_equal(vt_pdsvc_soft_elect_pending(s, 7), 0);
	assert_int_equal(vt_pdsvc_soft_elect_pending(s, 8), 1);
	assert_int_equal(vt_pdsvc_soft_take_elect(s, 7, a, &el, &n), 0);
	assert_int_equal(n, 0);

	vt_pdsvc_soft_clear(s);
	vt_pdsvc_soft_beats(s, &n);
	assert_int_equal(n, 0);
	vt_pdsvc_soft_reports(s, &n);
	assert_int_equal(n, 0);
	assert_int_equal(vt_pdsvc_soft_elect_pending(s, 8), 0);
	vt_arena_destroy(a);
	vt_pdsvc_soft_free(s);
}

static void test_ring(void **state)
{
	(void)state;
	vt_pdsvc_ring r;
	memset(&r, 0, sizeof r);
	vt_pd_action act;
	memset(&act, 0, sizeof act);
	act.kind = VT_PD_ACT_ADD_REPLICA;
	snprintf(act.collection, sizeof act.collection, "c");
	for (uint64_t i = 1; i <= 150; i++) {
		act.worker = i;
		snprintf(act.reason, sizeof act.reason, "r%llu",
			 (unsigned long long)i);
		vt_pdsvc_ring_push(&r, &act, 1000 + i, "ok");
	}
	assert_int_equal(r.n, VT_PDSVC_RING);
	assert_int_equal(vt_pdsvc_ring_get(&r, 0)->worker, 51);
	assert_int_equal(vt_pdsvc_ring_get(&r, 99)->worker, 150);
	vt_arena *a = vt_arena_create(0);
	Vectron__Internal__V1__PlanAction **v;
	size_t n;
	assert_int_equal(vt_pdsvc_ring_msgs(&r, a, &v, &n), 0);
	assert_int_equal(n, 100);
	assert_string_equal(v[0]->kind, "add_replica");
	assert_string_equal(v[0]->reason, "r51");
	assert_int_equal(v[99]->at_ms, 1150); /* newest last */
	assert_string_equal(v[99]->outcome, "ok");
	vt_arena_destroy(a);
}

static void test_messages(void **state)
{
	(void)state;
	vt_pd_meta *m;
	assert_int_equal(vt_pd_meta_new(&m), 0);
	for (uint64_t w = 1; w <= 4; w++)
		add_worker(m, w);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_pd_place_req pr = {.shards = 2, .rf = 3, .seed = 1};
	vt_errmsg e = {{0}};
	const char cfg[] = "{\"x\":1}";
	assert_int_equal(vt_pd_place_create(m, "col", cfg, sizeof cfg - 1, &pr,
					    &b, &e),
			 0);
	apply_buf(m, &b);
	const vt_pd_collection *c = vt_pd_meta_find_collection(m, "col", 3);
	assert_non_null(c);
	/* a fourth replica on the worker shard 0 lacks: raft id 4 */
	uint64_t spare = 0;
	for (uint64_t w = 1; w <= 4 && !spare; w++) {
		int has = 0;
		for (uint32_t i = 0; i < c->shards[0].n_replicas; i++)
			has |= c->shards[0].replicas[i].worker == w;
		if (!has)
			spare = w;
	}
	vt_pd_cmd add = {.type = VT_PD_CMD_ADD_REPLICA, .name = "col",
			 .name_len = 3, .shard = 0, .worker = spare,
			 .role = VT_PD_NONVOTER};
	apply_cmd(m, &add);
	c = vt_pd_meta_find_collection(m, "col", 3);

	vt_arena *a = vt_arena_create(0);
	Vectron__Internal__V1__CollectionRoute *r;
	assert_int_equal(vt_pdsvc_route(m, c, a, &r), 0);
	assert_string_equal(r->name, "col");
	assert_int_equal(r->config.len, sizeof cfg - 1);
	assert_memory_equal(r->config.data, cfg, sizeof cfg - 1);
	assert_ptr_not_equal(r->config.data, c->config); /* a copy */
	assert_int_equal(r->n_shards, 2);
	assert_int_equal(r->rf, 3);
	assert_int_equal(r->shards[0]->n_replicas, 4);
	assert_int_equal(r->shards[1]->n_replicas, 3);
	assert_int_equal(r->shards[0]->key_lo, 0);
	assert_int_equal(r->shards[1]->key_hi, UINT64_MAX);
	for (size_t i = 0; i < r->shards[0]->n_replicas; i++) {
		const Vectron__Internal__V1__Peer *p = r->shards[0]->replicas[i];
		char want[64];
		snprintf(want, sizeof want, "10.0.0.%llu:7100",
			 (unsigned long long)p->worker);
		assert_string_equal(p->raft_addr, want);
		assert_int_equal(p->raft_id, i + 1);
		assert_int_equal(p->role, i == 3 ? 1 : 0);
	}

	/* the spare worker: its new non-voter (no bootstrap) and, maybe, a
	 * first voter of shard 1 (bootstrap) */
	Vectron__Internal__V1__Assignment **as;
	size_t n;
	assert_int_equal(vt_pdsvc_assignments(m, spare, a, &as, &n), 0);
	assert_int_equal(n, vt_pd_meta_hosted(m, spare));
	int saw_new = 0;
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(as[i]->collection, "col");
		assert_int_equal(as[i]->rf, 3);
		assert_int_equal(as[i]->config.len, sizeof cfg - 1);
		if (as[i]->shard == 0) {
			saw_new = 1;
			assert_int_equal(as[i]->raft_id, 4);
			assert_false(as[i]->bootstrap);
			assert_int_equal(as[i]->role, 1);
			assert_int_equal(as[i]->n_peers, 4);
			assert_int_equal(as[i]->group, c->shards[0].group);
			assert_int_equal(as[i]->epoch, c->shards[0].epoch);
		} else {
			assert_true(as[i]->raft_id <= 3);
			assert_true(as[i]->bootstrap);
			assert_int_equal(as[i]->role, 0);
		}
	}
	assert_true(saw_new);
	assert_int_equal(vt_pdsvc_assignments(m, 99, a, &as, &n), 0);
	assert_int_equal(n, 0);

	/* worker info: alive from the soft state */
	vt_pdsvc_soft *s;
	assert_int_equal(vt_pdsvc_soft_new(&s), 0);
	assert_int_equal(vt_pdsvc_soft_beat(s, 1, 1000, NULL, 0), 0);
	Vectron__Internal__V1__WorkerInfo *wi;
	assert_int_equal(vt_pdsvc_worker_info(m, vt_pd_meta_find_worker(m, 1),
					      s, 1500, 1000, a, &wi),
			 0);
	assert_true(wi->alive);
	assert_int_equal(wi->last_beat_ms_ago, 500);
	assert_string_equal(wi->addr, "10.0.0.1:7000");
	assert_string_equal(wi->raft_addr, "10.0.0.1:7100");
	assert_int_equal(wi->replicas, vt_pd_meta_hosted(m, 1));
	assert_int_equal(vt_pdsvc_worker_info(m, vt_pd_meta_find_worker(m, 1),
					      s, 2001, 1000, a, &wi),
			 0);
	assert_false(wi->alive);
	assert_int_equal(vt_pdsvc_worker_info(m, vt_pd_meta_find_worker(m, 2),
					      s, 1500, 1000, a, &wi),
			 0);
	assert_false(wi->alive);
	assert_int_equal(wi->last_beat_ms_ago, 0); /* never heard */
	/* a message serialises (every required pointer set) */
	size_t len = protobuf_c_message_get_packed_size(&r->base);
	uint8_t *buf = malloc(len);
	assert_int_equal(protobuf_c_message_pack(&r->base, buf), len);
	Vectron__Internal__V1__CollectionRoute *back =
		vectron__internal__v1__collection_route__unpack(NULL, len, buf);
	assert_non_null(back);
	assert_int_equal(back->n_shards, 2);
	vectron__internal__v1__collection_route__free_unpacked(back, NULL);
	free(buf);

	vt_pdsvc_soft_free(s);
	vt_arena_destroy(a);
	vt_buf_free(&b);
	vt_pd_meta_free(m);
}

/* The scrape's numbers: workers by state and alive (heard within the
 * grace), shards without a leader, shards with fewer voters than the rf,
 * and the action counters by kind and outcome, in Prometheus text. */
static void test_metrics(void **state)
{
	(void)state;
	vt_pd_meta *m;
	assert_int_equal(vt_pd_meta_new(&m), 0);
	for (uint64_t w = 1; w <= 4; w++)
		add_worker(m, w);
	vt_pd_cmd dr = {.type = VT_PD_CMD_SET_WORKER_STATE, .worker = 4,
			.state = VT_PD_DRAINING};
	apply_cmd(m, &dr);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_pd_place_req pr = {.shards = 2, .rf = 3, .seed = 1};
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_place_create(m, "col", "{}", 2, &pr, &b, &e), 0);
	apply_buf(m, &b);
	const vt_pd_collection *c = vt_pd_meta_find_collection(m, "col", 3);
	/* shard 0 gets a leader; shard 1 loses a voter */
	vt_pd_cmd sl = {.type = VT_PD_CMD_SET_LEADER, .name = "col",
			.name_len = 3, .shard = 0,
			.worker = c->shards[0].replicas[0].worker, .term = 2};
	apply_cmd(m, &sl);
	c = vt_pd_meta_find_collection(m, "col", 3);
	vt_pd_cmd rm = {.type = VT_PD_CMD_REMOVE_REPLICA, .name = "col",
			.name_len = 3, .shard = 1,
			.worker = c->shards[1].replicas[0].worker};
	apply_cmd(m, &rm);

	vt_pdsvc_soft *soft;
	assert_int_equal(vt_pdsvc_soft_new(&soft), 0);
	assert_int_equal(vt_pdsvc_soft_beat(soft, 1, 1000, NULL, 0), 0);
	assert_int_equal(vt_pdsvc_soft_beat(soft, 2, 9000, NULL, 0), 0);
	vt_pdsvc_gauges g;
	memset(&g, 0, sizeof g);
	vt_pdsvc_gauges_of(m, soft, 10000, 5000, &g);
	assert_int_equal(g.workers[VT_PD_UP], 3);
	assert_int_equal(g.workers[VT_PD_DRAINING], 1);
	assert_int_equal(g.workers_alive, 1); /* worker 1 is 9 s silent */
	assert_int_equal(g.collections, 1);
	assert_int_equal(g.shards, 2);
	assert_int_equal(g.replicas, 5);
	assert_int_equal(g.shards_leaderless, 1);
	assert_int_equal(g.shards_under_replicated, 1);
	vt_pdsvc_gauges_of(m, NULL, 10000, 5000, &g); /* a follower */
	assert_int_equal(g.workers_alive, 0);

	assert_int_equal(vt_pdsvc_outcome_of("ok: epoch 4"), VT_PDSVC_OK);
	assert_int_equal(vt_pdsvc_outcome_of("stale plan: x"), VT_PDSVC_STALE);
	assert_int_equal(vt_pdsvc_outcome_of("failed: y"), VT_PDSVC_FAILED);
	vt_pdsvc_counters k;
	memset(&k, 0, sizeof k);
	k.passes = 7;
	k.actions[VT_PD_ACT_ADD_REPLICA][VT_PDSVC_OK] = 3;
	k.actions[VT_PD_ACT_ELECT][VT_PDSVC_FAILED] = 2;
	g.leader = 1;
	g.epoch = 42;
	vt_buf_reset(&b);
	assert_int_equal(vt_pdsvc_metrics(&g, &k, &b), 0);
	assert_int_equal(vt_buf_append(&b, "", 1), 0);
	const char *t = (const char *)b.data;
	assert_non_null(strstr(t, "\nvectron_pd_leader 1\n"));
	assert_non_null(strstr(t, "\nvectron_pd_epoch 42\n"));
	assert_non_null(strstr(t, "vectron_pd_workers{state=\"draining\"} 1\n"));
	assert_non_null(strstr(t, "\nvectron_pd_shards_leaderless 1\n"));
	assert_non_null(strstr(t, "\nvectron_pd_shards_under_replicated 1\n"));
	assert_non_null(strstr(t, "\nvectron_pd_reconcile_passes_total 7\n"));
	char want[128];
	snprintf(want, sizeof want,
		 "vectron_pd_actions_total{kind=\"%s\",outcome=\"ok\"} 3\n",
		 vt_pd_act_name(VT_PD_ACT_ADD_REPLICA));
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof want,
		 "vectron_pd_actions_total{kind=\"%s\",outcome=\"failed\"} 2\n",
		 vt_pd_act_name(VT_PD_ACT_ELECT));
	assert_non_null(strstr(t, want));
	vt_pdsvc_soft_free(soft);
	vt_buf_free(&b);
	vt_pd_meta_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_soft),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
