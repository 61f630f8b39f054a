/* test_gateway.c: lib/gateway against fake placement driver and worker
 * servers on loopback (lib/rpc on a loop thread of the test): routing
 * fetched from the PD leader through a follower's redirect and cached;
 * concurrent look-ups of one collection share one PD call; a stale shard
 * epoch refreshes the routing and retries once, and twice stale is a clear
 * error; "not the leader" answers are followed; an unreachable replica
 * makes eventual reads go to another one while writes wait for a leader;
 * worker errors come back with their code and message. */
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "coll/coll.h"
#include "gateway/gateway.h"
#include "rpc/grpc.h"
#include "vectron/internal/v1/cluster.pb-c.h"

enum node { PD_LEADER, PD_FOLLOWER, WK_A, WK_B, N_NODES };

/* What the fakes answer; under g_mu. */
static struct {
	uint64_t pd_epoch;     /* shard epoch in the PD's routing */
	uint64_t wk_epoch;     /* shard epoch the workers hold */
	uint64_t hint0;        /* PD's leader hint of shard 0 (1 = A, 2 = B) */
	uint64_t leader0;      /* the real leader of shard 0 */
	int down[N_NODES];     /* answers UNAVAILABLE */
	unsigned delay_ms;     /* GetRouting answers this late */
	int fetches;           /* GetRouting calls answered by the leader */
	int searches[N_NODES], writes[N_NODES];
	int exists;            /* the collection */
} S;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uv_loop_t g_loop;
static uv_async_t g_stop;
static pthread_t g_thread;
static vt_grpc_server *g_srv[N_NODES];
static char g_addr[N_NODES][64];
static vt_buf g_config;
static enum node g_nodes[N_NODES] = {PD_LEADER, PD_FOLLOWER, WK_A, WK_B};

#define LOCK() pthread_mutex_lock(&g_mu)
#define UNLOCK() pthread_mutex_unlock(&g_mu)

/* The error names `what`; on failure the whole message is printed. */
#define assert_says(e, what)                                                   \
	do {                                                                   \
		if (!strstr((e).msg, (what)))                                  \
			print_error("message: %s\n", (e).msg);                 \
		assert_non_null(strstr((e).msg, (what)));                      \
	} while (0)

/* ---- the fake PD ------------------------------------------------------------- */

static void routing_reply(vt_grpc_call *call)
{
	LOCK();
	int exists = S.exists;
	uint64_t epoch = S.pd_epoch, hint0 = S.hint0;
	S.fetches++;
	UNLOCK();
	if (!exists) {
		vt_grpc_call_finish(call, VT_GRPC_NOT_FOUND,
				    "collection \"c\" not found");
		return;
	}
	Vectron__Internal__V1__Peer pa = VECTRON__INTERNAL__V1__PEER__INIT,
				    pb = VECTRON__INTERNAL__V1__PEER__INIT;
	pa.has_worker = pb.has_worker = pa.has_role = pb.has_role = 1;
	pa.worker = 1;
	pa.addr = g_addr[WK_A];
	pb.worker = 2;
	pb.addr = g_addr[WK_B];
	Vectron__Internal__V1__Peer *peers[2] = {&pa, &pb};
	Vectron__Internal__V1__ShardRoute s0 = VECTRON__INTERNAL__V1__SHARD_ROUTE__INIT,
					  s1 = VECTRON__INTERNAL__V1__SHARD_ROUTE__INIT;
	Vectron__Internal__V1__ShardRoute *shards[2] = {&s0, &s1};
	for (int i = 0; i < 2; i++) {
		Vectron__Internal__V1__ShardRoute *s = shards[i];
		s->has_index = s->has_group = s->has_epoch = s->has_leader = 1;
		s->index = (uint32_t)i;
		s->group = 10 + (uint64_t)i;
		s->epoch = epoch;
		s->leader = i == 0 ? hint0 : 2;
		s->n_replicas = 2;
		s->replicas = peers;
	}
	Vectron__Internal__V1__CollectionRoute c =
		VECTRON__INTERNAL__V1__COLLECTION_ROUTE__INIT;
	c.name = "c";
	c.has_config = c.has_shard_count = 1;
	c.config.data = g_config.data;
	c.config.len = g_config.len;
	c.shard_count = 2;
	c.n_shards = 2;
	c.shards = shards;
	Vectron__Internal__V1__CollectionRoute *cs[1] = {&c};
	Vectron__Internal__V1__GetRoutingResponse r =
		VECTRON__INTERNAL__V1__GET_ROUTING_RESPONSE__INIT;
	r.n_collections = 1;
	r.collections = cs;
	vt_grpc_call_reply(call, &r.base);
}

static void on_late(uv_timer_t *t)
{
	routing_reply(t->data);
	uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void on_routing(vt_grpc_call *call, void *ud)
{
	enum node n = *(enum node *)ud;
	if (n == PD_FOLLOWER) {
		char m[128];
		snprintf(m, sizeof m, "not the leader; leader: %s",
			 g_addr[PD_LEADER]);
		vt_grpc_call_finish(call, VT_GRPC_FAILED_PRECONDITION, m);
		return;
	}
	LOCK();
	unsigned delay = S.delay_ms;
	UNLOCK();
	if (!delay) {
		routing_reply(call);
		return;
	}
	uv_timer_t *t = malloc(sizeof *t);
	uv_timer_init(&g_loop, t);
	t->data = call;
	uv_timer_start(t, on_late, delay, 0);
}

/* ---- the fake workers ----------------------------------------------------------- */

/* Common checks; 1 if the call was answered. */
static int worker_refuses(vt_grpc_call *call, enum node n,
			  const Vectron__Internal__V1__ShardRef *ref)
{
	LOCK();
	int down = S.down[n];
	uint64_t have = S.wk_epoch;
	UNLOCK();
	if (down) {
		vt_grpc_call_finish(call, VT_GRPC_UNAVAILABLE, "worker down");
		return 1;
	}
	if (!ref || ref->epoch < have) {
		char m[128];
		snprintf(m, sizeof m, "stale shard epoch: request %llu, "
			 "replica %llu", (unsigned long long)(ref ? ref->epoch : 0),
			 (unsigned long long)have);
		vt_grpc_call_finish(call, VT_GRPC_FAILED_PRECONDITION, m);
		return 1;
	}
	return 0;
}

static void on_search(vt_grpc_call *call, void *ud)
{
	enum node n = *(enum node *)ud;
	const Vectron__Internal__V1__ShardSearchRequest *q =
		(const void *)vt_grpc_call_request(call);
	if (worker_refuses(call, n, q->shard))
		return;
	if (q->filter && !strcmp(q->filter, "{\"bad\":1}")) {
		vt_grpc_call_finish(call, VT_GRPC_INVALID_ARGUMENT,
				    "filter: unknown key \"bad\"");
		return;
	}
	LOCK();
	uint64_t leader = q->shard->group == 10 ? S.leader0 : 2;
	if (!q->linearizable || leader == (n == WK_A ? 1u : 2u))
		S.searches[n]++;
	UNLOCK();
	if (q->linearizable && leader != (n == WK_A ? 1u : 2u)) {
		char m[128];
		snprintf(m, sizeof m, "not the leader; leader: %s",
			 g_addr[leader == 1 ? WK_A : WK_B]);
		vt_grpc_call_finish(call, VT_GRPC_FAILED_PRECONDITION, m);
		return;
	}
	char id[32];
	int len = snprintf(id, sizeof id, "%c-%llu", n == WK_A ? 'A' : 'B',
			   (unsigned long long)q->shard->group);
	Vectron__Internal__V1__Hit h = VECTRON__INTERNAL__V1__HIT__INIT;
	h.has_id = h.has_dist = h.has_score = h.has_label = 1;
	h.id.data = (uint8_t *)id;
	h.id.len = (size_t)len;
	h.dist = h.score = 0.25f * (float)q->shard->group;
	h.label = 1;
	Vectron__Internal__V1__Hit *hs[1] = {&h};
	Vectron__Internal__V1__ShardSearchResponse r =
		VECTRON__INTERNAL__V1__SHARD_SEARCH_RESPONSE__INIT;
	r.n_hits = 1;
	r.hits = hs;
	vt_grpc_call_reply(call, &r.base);
}

static void on_write(vt_grpc_call *call, void *ud)
{
	enum node n = *(enum node *)ud;
	const Vectron__Internal__V1__ShardWriteRequest *q =
		(const void *)vt_grpc_call_request(call);
	if (worker_refuses(call, n, q->shard))
		return;
	LOCK();
	uint64_t leader = q->shard->group == 10 ? S.leader0 : 2;
	UNLOCK();
	uint64_t me = n == WK_A ? 1 : 2;
	if (leader != me) {
		char m[128];
		if (leader)
			snprintf(m, sizeof m, "not the leader; leader: %s",
				 g_addr[leader == 1 ? WK_A : WK_B]);
		else
			snprintf(m, sizeof m, "not the leader; leader: unknown");
		vt_grpc_call_finish(call, VT_GRPC_FAILED_PRECONDITION, m);
		return;
	}
	LOCK();
	S.writes[n]++;
	UNLOCK();
	Vectron__Internal__V1__ShardWriteResponse r =
		VECTRON__INTERNAL__V1__SHARD_WRITE_RESPONSE__INIT;
	r.has_upserted = 1;
	r.upserted = q->entries;
	vt_grpc_call_reply(call, &r.base);
}

/* ---- the loop -------------------------------------------------------------------- */

static void on_stop(uv_async_t *a)
{
	(void)a;
	for (int i = 0; i < N_NODES; i++)
		vt_grpc_server_close(g_srv[i], 0, NULL, NULL);
	uv_close((uv_handle_t *)&g_stop, NULL);
}

static void *loop_main(void *arg)
{
	(void)arg;
	uv_run(&g_loop, UV_RUN_DEFAULT);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	memset(&S, 0, sizeof S);
	S.pd_epoch = S.wk_epoch = 5;
	S.hint0 = S.leader0 = 1;
	S.exists = 1;
	vt_coll_config cfg;
	vt_coll_config_default(&cfg, "c", 4, VT_METRIC_L2);
	cfg.shard_count = 2;
	cfg.routing = VT_COLL_ROUTE_RANGE;
	vt_buf_init(&g_config, 1 << 20);
	vt_errmsg e;
	assert_int_equal(vt_coll_config_encode(&cfg, &g_config, &e), 0);
	uv_loop_init(&g_loop);
	uv_async_init(&g_loop, &g_stop, on_stop);
	for (int i = 0; i < N_NODES; i++) {
		assert_int_equal(vt_grpc_server_new(&g_loop, NULL, &g_srv[i]), 0);
		const char *pd = "/vectron.internal.v1.PlacementDriver/";
		const char *wk = "/vectron.internal.v1.Worker/";
		char p[128];
		snprintf(p, sizeof p, "%sGetRouting", pd);
		vt_grpc_method m1 = {p, VT_GRPC_UNARY,
				     &vectron__internal__v1__get_routing_request__descriptor,
				     on_routing, &g_nodes[i]};
		assert_int_equal(vt_grpc_server_add_method(g_srv[i], &m1), 0);
		snprintf(p, sizeof p, "%sShardSearch", wk);
		vt_grpc_method m2 = {p, VT_GRPC_UNARY,
				     &vectron__internal__v1__shard_search_request__descriptor,
				     on_search, &g_nodes[i]};
		assert_int_equal(vt_grpc_server_add_method(g_srv[i], &m2), 0);
		snprintf(p, sizeof p, "%sShardWrite", wk);
		vt_grpc_method m3 = {p, VT_GRPC_UNARY,
				     &vectron__internal__v1__shard_write_request__descriptor,
				     on_write, &g_nodes[i]};
		assert_int_equal(vt_grpc_server_add_method(g_srv[i], &m3), 0);
		assert_int_equal(vt_grpc_server_listen(g_srv[i], "127.0.0.1", 0,
						       &e), 0);
		snprintf(g_addr[i], sizeof g_addr[i], "127.0.0.1:%d",
			 vt_grpc_server_port(g_srv[i]));
	}
	assert_int_equal(pthread_create(&g_thread, NULL, loop_main, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	uv_async_send(&g_stop);
	pthread_join(g_thread, NULL);
	uv_loop_close(&g_loop);
	vt_buf_free(&g_config);
	return 0;
}

static vt_gw *gw_open(void)
{
	vt_gw_opts o;
	vt_gw_opts_default(&o);
	char pd[200];
	/* the follower first: its redirect must be followed */
	snprintf(pd, sizeof pd, "%s,%s", g_addr[PD_FOLLOWER], g_addr[PD_LEADER]);
	o.pd = pd;
	o.retry_ms = 1500;
	o.rpc_timeout_ms = 1000;
	vt_gw *g;
	vt_errmsg e;
	assert_int_equal(vt_gw_open(&o, &g, &e), 0);
	return g;
}

static int search(vt_gw *g, uint32_t shard, int linearizable,
		  const char *filter, char *id_out, vt_errmsg *e)
{
	const vt_coll_remote *r = vt_gw_remote(g);
	float v[4] = {0};
	vt_shard_query q;
	vt_shard_query_default(&q, v, 3);
	(void)filter;
	vt_shard_results res;
	memset(&res, 0, sizeof res);
	int rc = r->search(r->ud, "c", shard, &q, linearizable, &res, e);
	if (!rc) {
		assert_int_equal(res.n, 1);
		memcpy(id_out, res.hits[0].id, res.hits[0].id_len);
		id_out[res.hits[0].id_len] = '\0';
	}
	r->results_free(r->ud, &res);
	return rc;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_routing_and_lookup(void **state)
{
	(void)state;
	vt_gw *g = gw_open();
	const vt_coll_remote *r = vt_gw_remote(g);
	vt_coll_config cfg;
	vt_errmsg e;
	assert_int_equal(r->lookup(r->ud, "c", &cfg, &e), 0);
	assert_int_equal(cfg.shard_count, 2);
	assert_int_equal(cfg.shard.dim, 4);
	/* cached: no second fetch */
	assert_int_equal(r->lookup(r->ud, "c", &cfg, &e), 0);
	assert_int_equal(S.fetches, 1);
	char id[32];
	assert_int_equal(search(g, 1, 0, NULL, id, &e), 0);
	assert_string_equal(id, "B-11"); /* shard 1's leader */
	LOCK();
	S.exists = 0;
	UNLOCK();
	vt_gw_forget_routing(g);
	assert_int_equal(r->lookup(r->ud, "c", &cfg, &e), VT_ENOENT);
	assert_says(e, "not found");
	vt_gw_close(g);
}

struct looker {
	vt_gw *g;
	int rc;
};

static void *look(void *arg)
{
	struct looker *l = arg;
	const vt_coll_remote *r = vt_gw_remote(l->g);
	vt_coll_config cfg;
	vt_errmsg e;
	l->rc = r->lookup(r->ud, "c", &cfg, &e);
	return NULL;
}

/* Eight requests that find no routing at once cost one PD call. */
static void test_singleflight(void **state)
{
	(void)state;
	vt_gw *g = gw_open();
	LOCK();
	S.delay_ms = 200;
	UNLOCK();
	pthread_t t[8];
	struct looker l[8];
	for (int i = 0; i < 8; i++) {
		l[i] = (struct looker){g, -1};
		pthread_create(&t[i], NULL, look, &l[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(l[i].rc, 0);
	}
	assert_int_equal(S.fetches, 1);
	vt_gw_stats st;
	vt_gw_stats_get(g, &st);
	assert_int_equal(st.routing_fetches, 1);
	vt_gw_close(g);
}

static void test_stale_epoch(void **state)
{
	(void)state;
	vt_gw *g = gw_open();
	char id[32];
	vt_errmsg e;
	assert_int_equal(search(g, 0, 0, NULL, id, &e), 0);
	/* the workers moved on, the PD has not told yet: one refresh, then
	 * a clear error */
	LOCK();
	S.wk_epoch = 6;
	UNLOCK();
	assert_int_equal(search(g, 0, 0, NULL, id, &e), VT_EBUSY);
	assert_says(e, "routing still stale after a refresh");
	assert_says(e, "stale shard epoch");
	assert_int_equal(S.fetches, 2);
	/* now the PD has it: the stale answer costs one refresh and the
	 * retry succeeds */
	LOCK();
	S.pd_epoch = 6;
	UNLOCK();
	assert_int_equal(search(g, 0, 0, NULL, id, &e), 0);
	assert_string_equal(id, "A-10");
	assert_int_equal(S.fetches, 3);
	vt_gw_stats st;
	vt_gw_stats_get(g, &st);
	assert_int_equal(st.stale_retries, 2);
	vt_gw_close(g);
}

static int write0(vt_gw *g, vt_errmsg *e)
{
	const vt_coll_remote *r = vt_gw_remote(g);
	vt_shard_result res;
	return r->write(r->ud, "c", 0, "x", 1, 3, 0, &res, e);
}

static void test_leader_redirect(void **state)
{
	(void)state;
	vt_gw *g = gw_open();
	vt_errmsg e;
	/* the hint says A, B leads: A's answer names B */
	LOCK();
	S.leader0 = 2;
	UNLOCK();
	assert_int_equal(write0(g, &e), 0);
	assert_int_equal(S.writes[WK_B], 1);
	assert_int_equal(S.writes[WK_A], 0);
	vt_gw_stats st;
	vt_gw_stats_get(g, &st);
	assert_int_equal(st.leader_redirects, 1);
	/* no leader anywhere: retried until retry_ms, then the reason */
	LOCK();
	S.leader0 = 0;
	UNLOCK();
	assert_int_not_equal(write0(g, &e), 0);
	assert_says(e, "not the leader");
	assert_says(e, "gave up after");
	vt_gw_close(g);
}

static void test_replica_failover(void **state)
{
	(void)state;
	vt_gw *g = gw_open();
	vt_errmsg e;
	char id[32];
	LOCK();
	S.down[WK_A] = 1;
	UNLOCK();
	/* eventual read of shard 0 (led by A): B answers */
	assert_int_equal(search(g, 0, 0, NULL, id, &e), 0);
	assert_string_equal(id, "B-10");
	vt_gw_stats st;
	vt_gw_stats_get(g, &st);
	assert_int_equal(st.replica_failovers, 1);
	/* a linearizable read needs the leader: it waits, then says why */
	assert_int_not_equal(search(g, 0, 1, NULL, id, &e), 0);
	assert_says(e, "worker down");
	/* the leader moved to B and the PD says so: writes follow */
	LOCK();
	S.leader0 = S.hint0 = 2;
	S.wk_epoch = S.pd_epoch = 7;
	UNLOCK();
	assert_int_equal(write0(g, &e), 0);
	assert_int_equal(S.writes[WK_B], 1);
	vt_gw_close(g);
}

static void quiet(void *ud, int level, const char *module, const char *line)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)line;
}

int main(void)
{
	/* a peer that closed first must be an EPIPE, not a signal (grpc.h) */
	signal(SIGPIPE, SIG_IGN);
	vt_log_set_handler(quiet, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing_and_lookup, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_singleflight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_epoch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_leader_redirect, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_replica_failover, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
