/* test_pd_meta.c: lib/pd's metadata state machine: every command and its
 * rejections, idempotency by index, rejected commands consuming their
 * index, epoch bumps, key ranges, the decoder's strictness, allocation
 * failures that change nothing, and snapshot/restore round trips with
 * corruption detected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "pd/cmd.h"
#include "pd/meta.h"

/* ---- helpers --------------------------------------------------------------- */

static vt_buf g_buf;

static const uint8_t *enc(const vt_pd_cmd *c, size_t *len)
{
	vt_errmsg e = {{0}};
	vt_buf_free(&g_buf);
	vt_buf_init(&g_buf, 1u << 22);
	int rc = vt_pd_cmd_encode(c, &g_buf, &e);
	if (rc)
		fail_msg("encode: %s", e.msg);
	*len = g_buf.len;
	return g_buf.data;
}

/* Applies at the next index; returns the status, message in *e. */
static int run(vt_pd_meta *m, const vt_pd_cmd *c, vt_pd_result *res,
	       vt_errmsg *e)
{
	size_t len;
	const uint8_t *p = enc(c, &len);
	vt_errmsg scratch;
	return vt_pd_apply(m, 0, p, len, res, e ? e : &scratch);
}

static void reg(vt_pd_meta *m, uint64_t id, const char *zone,
		const char *rack, int role)
{
	char addr[64];
	snprintf(addr, sizeof addr, "10.0.0.%llu:7000", (unsigned long long)id);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = id,
		       .addr = addr, .addr_len = (uint32_t)strlen(addr),
		       .capacity = 1, .zone = zone,
		       .zone_len = (uint32_t)strlen(zone), .rack = rack,
		       .rack_len = (uint32_t)strlen(rack), .role = (uint8_t)role};
	vt_errmsg e = {{0}};
	int rc = run(m, &c, NULL, &e);
	if (rc)
		fail_msg("register %llu: %s", (unsigned long long)id, e.msg);
}

/* A collection with `shards` shards; shard s gets voters on workers
 * 1 + (s + r) % nw for r < rf. */
static int create(vt_pd_meta *m, const char *name, uint32_t shards,
		  uint32_t rf, uint32_t nw, vt_errmsg *e)
{
	vt_pd_slot *sl = calloc((size_t)shards * rf, sizeof *sl);
	for (uint32_t s = 0; s < shards; s++)
		for (uint32_t r = 0; r < rf; r++)
			sl[s * rf + r] = (vt_pd_slot){
				.shard = s, .worker = 1 + (s + r) % nw,
				.role = VT_PD_VOTER};
	vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION, .name = name,
		       .name_len = (uint32_t)strlen(name),
		       .config = (const uint8_t *)"{\"dim\":4}",
		       .config_len = 9, .shard_count = shards, .rf = rf,
		       .n_slots = shards * rf, .slots = sl};
	int rc = run(m, &c, NULL, e);
	free(sl);
	return rc;
}

static int replica_cmd(vt_pd_meta *m, int type, const char *name,
		       uint32_t shard, uint64_t worker, int role,
		       uint64_t expect, vt_pd_result *res, vt_errmsg *e)
{
	vt_pd_cmd c = {.type = type, .name = name,
		       .name_len = (uint32_t)strlen(name), .shard = shard,
		       .worker = worker, .role = (uint8_t)role,
		       .expect_epoch = expect};
	return run(m, &c, res, e);
}

static int set_state(vt_pd_meta *m, uint64_t worker, int state,
		     vt_errmsg *e)
{
	vt_pd_cmd c = {.type = VT_PD_CMD_SET_WORKER_STATE, .worker = worker,
		       .state = (uint8_t)state};
	return run(m, &c, NULL, e);
}

static int set_leader(vt_pd_meta *m, const char *name, uint32_t shard,
		      uint64_t worker, uint64_t term, vt_errmsg *e)
{
	vt_pd_cmd c = {.type = VT_PD_CMD_SET_LEADER, .name = name,
		       .name_len = (uint32_t)strlen(name), .shard = shard,
		       .worker = worker, .term = term};
	return run(m, &c, NULL, e);
}

static const vt_pd_shard *shard(const vt_pd_meta *m, const char *name,
				uint32_t s)
{
	const vt_pd_collection *c =
		vt_pd_meta_find_collection(m, name, strlen(name));
	assert_non_null(c);
	assert_true(s < c->shard_count);
	return &c->shards[s];
}

static vt_pd_meta *fresh(uint32_t workers)
{
	vt_pd_meta *m;
	assert_int_equal(vt_pd_meta_new(&m), 0);
	for (uint32_t i = 1; i <= workers; i++) {
		char z[8];
		snprintf(z, sizeof z, "z%u", i % 3);
		reg(m, i, z, "r1", VT_PD_ROLE_NORMAL);
	}
	return m;
}

/* ---- workers --------------------------------------------------------------- */

static void test_register(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(0);
	reg(m, 7, "z1", "r1", VT_PD_ROLE_NORMAL);
	reg(m, 3, "z2", "", VT_PD_ROLE_SEARCH_ONLY);
	assert_int_equal(vt_pd_meta_epoch(m), 2);
	assert_int_equal(vt_pd_meta_applied(m), 2);
	assert_int_equal(vt_pd_meta_worker_count(m), 2);
	assert_int_equal(vt_pd_meta_worker(m, 0)->id, 3); /* id order */
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, 7);
	assert_non_null(w);
	assert_string_equal(w->addr, "10.0.0.7:7000");
	assert_string_equal(w->zone, "z1");
	assert_int_equal(w->state, VT_PD_UP);
	assert_int_equal(vt_pd_meta_find_worker(m, 3)->role,
			 VT_PD_ROLE_SEARCH_ONLY);
	assert_null(vt_pd_meta_find_worker(m, 5));

	/* Re-registering with a new address moves the routing of every shard
	 * it hosts: those shards take the new epoch. */
	reg(m, 1, "z1", "r1", VT_PD_ROLE_NORMAL);
	reg(m, 2, "z2", "r1", VT_PD_ROLE_NORMAL);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "c", 2, 1, 2, &e), 0);
	uint64_t e0 = shard(m, "c", 0)->epoch;
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = 1,
		       .addr = "10.9.9.9:1", .addr_len = 10, .capacity = 4,
		       .zone = "z1", .zone_len = 2, .role = 0};
	assert_int_equal(run(m, &c, NULL, &e), 0);
	assert_string_equal(vt_pd_meta_find_worker(m, 1)->addr, "10.9.9.9:1");
	assert_int_equal(vt_pd_meta_find_worker(m, 1)->capacity, 4);
	assert_true(shard(m, "c", 0)->epoch > e0);
	assert_int_equal(shard(m, "c", 0)->epoch, vt_pd_meta_epoch(m));
	assert_int_equal(shard(m, "c", 1)->epoch, e0); /* on worker 2 */

	/* The same registration again (a restart): no change, no epoch. */
	uint64_t before = vt_pd_meta_epoch(m);
	assert_int_equal(run(m, &c, NULL, &e), 0);
	assert_int_equal(vt_pd_meta_epoch(m), before);
	/* A worker hosting voters cannot turn search_only. */
	c.role = VT_PD_ROLE_SEARCH_ONLY;
	assert_int_equal(run(m, &c, NULL, &e), VT_EBUSY);
	assert_non_null(strstr(e.msg, "role"));
	vt_pd_meta_free(m);
}

static void test_worker_state(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(3);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "c", 1, 2, 2, &e), 0);
	uint64_t ep = vt_pd_meta_epoch(m);
	assert_int_equal(set_state(m, 1, VT_PD_DRAINING, &e), 0);
	assert_int_equal(vt_pd_meta_find_worker(m, 1)->state, VT_PD_DRAINING);
	assert_int_equal(vt_pd_meta_epoch(m), ep + 1);
	/* The same state again: accepted, no change, no epoch. */
	assert_int_equal(set_state(m, 1, VT_PD_DRAINING, &e), 0);
	assert_int_equal(vt_pd_meta_epoch(m), ep + 1);
	/* Removal needs an empty worker. */
	assert_int_equal(set_state(m, 1, VT_PD_REMOVED, &e), VT_EBUSY);
	assert_non_null(strstr(e.msg, "hosts 1 replicas"));
	assert_int_equal(set_state(m, 3, VT_PD_REMOVED, &e), 0);
	assert_int_equal(set_state(m, 3, VT_PD_UP, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "terminal"));
	assert_int_equal(set_state(m, 99, VT_PD_UP, &e), VT_ENOENT);
	assert_non_null(strstr(e.msg, "worker 99"));
	/* A removed id is never reused. */
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = 3,
		       .addr = "h:1", .addr_len = 3, .capacity = 1};
	assert_int_equal(run(m, &c, NULL, &e), VT_EEXIST);
	/* A draining worker gets no new replicas. */
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 3,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 VT_EINVAL);
	vt_pd_meta_free(m);
}

/* ---- collections ------------------------------------------------------------ */

static void test_create(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(5);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "docs", 7, 3, 5, &e), 0);
	const vt_pd_collection *c = vt_pd_meta_find_collection(m, "docs", 4);
	assert_non_null(c);
	assert_int_equal(c->shard_count, 7);
	assert_int_equal(c->rf, 3);
	assert_int_equal(c->config_len, 9);
	assert_memory_equal(c->config, "{\"dim\":4}", 9);
	assert_int_equal(c->epoch, vt_pd_meta_epoch(m));
	/* Ranges tile the hash space; routing agrees with them. */
	assert_int_equal(c->shards[0].key_lo, 0);
	assert_int_equal(c->shards[6].key_hi, UINT64_MAX);
	for (uint32_t s = 0; s < 7; s++) {
		const vt_pd_shard *sh = &c->shards[s];
		if (s)
			assert_int_equal(sh->key_lo, c->shards[s - 1].key_hi + 1);
		assert_int_equal(vt_pd_shard_of_key(7, sh->key_lo), s);
		assert_int_equal(vt_pd_shard_of_key(7, sh->key_hi), s);
		assert_int_equal(sh->n_replicas, 3);
		assert_int_equal(sh->epoch, c->epoch);
		assert_int_equal(sh->leader, 0);
		for (uint32_t r = 0; r < 3; r++)
			assert_int_equal(sh->replicas[r].raft_id, r + 1);
		for (uint32_t t = 0; t < s; t++)
			assert_int_not_equal(sh->group, c->shards[t].group);
	}
	for (int i = 0; i < 1000; i++) {
		uint64_t k = vt_hash64(&i, sizeof i, 0);
		uint32_t s = vt_pd_shard_of_key(7, k);
		assert_true(k >= c->shards[s].key_lo && k <= c->shards[s].key_hi);
	}
	assert_int_equal(vt_pd_meta_hosted(m, 1), 4); /* shards 0, 3, 4, 5 */
	assert_int_equal(create(m, "alpha", 1, 1, 5, &e), 0);
	assert_string_equal(vt_pd_meta_collection(m, 0)->name, "alpha");
	assert_int_equal(vt_pd_meta_collection_count(m), 2);
	vt_pd_meta_free(m);
}

static void test_create_rejects(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(3);
	reg(m, 4, "z", "r", VT_PD_ROLE_SEARCH_ONLY);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "c", 1, 1, 3, &e), 0);
	uint64_t ep = vt_pd_meta_epoch(m), ap = vt_pd_meta_applied(m);
	assert_int_equal(create(m, "c", 1, 1, 3, &e), VT_EEXIST);
	assert_non_null(strstr(e.msg, "name"));
	/* Unknown worker. */
	vt_pd_slot un = {0, 5, VT_PD_VOTER};
	vt_pd_cmd uc = {.type = VT_PD_CMD_CREATE_COLLECTION, .name = "d",
			.name_len = 1, .shard_count = 1, .rf = 1, .n_slots = 1,
			.slots = &un};
	assert_int_equal(run(m, &uc, NULL, &e), VT_ENOENT);
	assert_non_null(strstr(e.msg, "worker 5"));
	/* A search-only worker cannot hold a voter. */
	assert_int_equal(create(m, "d", 4, 1, 4, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "search_only"));
	/* A worker twice in one shard, and a wrong voter count. */
	vt_pd_slot sl[3] = {{0, 1, VT_PD_VOTER}, {0, 1, VT_PD_VOTER},
			    {0, 2, VT_PD_NONVOTER}};
	vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION, .name = "d",
		       .name_len = 1, .shard_count = 1, .rf = 2, .n_slots = 3,
		       .slots = sl};
	assert_int_equal(run(m, &c, NULL, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "twice"));
	sl[1].worker = 3;
	c.rf = 1;
	assert_int_equal(run(m, &c, NULL, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "rf is 1"));
	/* A draining worker gets nothing. */
	assert_int_equal(set_state(m, 2, VT_PD_DRAINING, &e), 0);
	ep++;
	ap++;
	c.rf = 2;
	sl[2].worker = 4; /* search-only non-voter is fine */
	sl[1].worker = 2;
	assert_int_equal(run(m, &c, NULL, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "draining"));
	/* Every rejection consumed its index and changed nothing else. */
	assert_int_equal(vt_pd_meta_applied(m), ap + 6);
	assert_int_equal(vt_pd_meta_epoch(m), ep);
	assert_int_equal(vt_pd_meta_collection_count(m), 1);
	sl[1].worker = 3;
	assert_int_equal(run(m, &c, NULL, &e), 0);
	assert_int_equal(shard(m, "d", 0)->replicas[2].role, VT_PD_NONVOTER);
	vt_pd_meta_free(m);
}

static void test_drop(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(2);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "c", 2, 1, 2, &e), 0);
	uint64_t g = shard(m, "c", 1)->group, ep = shard(m, "c", 1)->epoch;
	vt_pd_cmd d = {.type = VT_PD_CMD_DROP_COLLECTION, .name = "c",
		       .name_len = 1};
	assert_int_equal(run(m, &d, NULL, &e), 0);
	assert_null(vt_pd_meta_find_collection(m, "c", 1));
	assert_int_equal(vt_pd_meta_hosted(m, 1), 0);
	assert_int_equal(run(m, &d, NULL, &e), VT_ENOENT);
	/* Re-created: new groups, higher epochs (stale routing is caught). */
	assert_int_equal(create(m, "c", 2, 1, 2, &e), 0);
	assert_true(shard(m, "c", 0)->group > g);
	assert_true(shard(m, "c", 0)->epoch > ep);
	/* Workers emptied by the drop can be removed. */
	assert_int_equal(run(m, &d, NULL, &e), 0);
	assert_int_equal(set_state(m, 1, VT_PD_REMOVED, &e), 0);
	vt_pd_meta_free(m);
}

/* ---- replicas ----------------------------------------------------------------- */

static void test_replicas(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(4);
	reg(m, 5, "z", "r", VT_PD_ROLE_SEARCH_ONLY);
	vt_errmsg e = {{0}};
	vt_pd_result res;
	assert_int_equal(create(m, "c", 2, 3, 3, &e), 0); /* workers 1..3 */
	uint64_t s1 = shard(m, "c", 1)->epoch;

	/* add, with the right expected epoch; shard 1 untouched */
	uint64_t ep = shard(m, "c", 0)->epoch;
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 4,
				     VT_PD_NONVOTER, ep, &res, &e),
			 0);
	assert_int_equal(res.raft_id, 4);
	assert_int_equal(res.type, VT_PD_CMD_ADD_REPLICA);
	assert_int_equal(res.epoch, vt_pd_meta_epoch(m));
	assert_int_equal(shard(m, "c", 0)->epoch, vt_pd_meta_epoch(m));
	assert_int_equal(shard(m, "c", 1)->epoch, s1);
	assert_int_equal(shard(m, "c", 0)->n_replicas, 4);
	/* a stale expected epoch, a duplicate, a bad shard, a voter on a
	 * search-only worker */
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 5,
				     VT_PD_NONVOTER, ep, NULL, &e),
			 VT_EBUSY);
	assert_non_null(strstr(e.msg, "expect_epoch"));
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 4,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 VT_EEXIST);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 2, 4,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 VT_ENOENT);
	assert_non_null(strstr(e.msg, "shard 2"));
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "x", 0, 4,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 VT_ENOENT);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 5,
				     VT_PD_VOTER, 0, NULL, &e),
			 VT_EINVAL);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 5,
				     VT_PD_NONVOTER, 0, &res, &e),
			 0);
	assert_int_equal(res.raft_id, 5);

	/* promote the non-voter, then set a leader and remove it */
	ep = vt_pd_meta_epoch(m);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_PROMOTE, "c", 0, 4,
				     VT_PD_VOTER, 0, NULL, &e),
			 0);
	assert_int_equal(shard(m, "c", 0)->replicas[3].role, VT_PD_VOTER);
	assert_int_equal(vt_pd_meta_epoch(m), ep + 1);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_PROMOTE, "c", 0, 4,
				     VT_PD_VOTER, 0, NULL, &e),
			 0); /* already: no change */
	assert_int_equal(vt_pd_meta_epoch(m), ep + 1);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_PROMOTE, "c", 0, 5,
				     VT_PD_VOTER, 0, NULL, &e),
			 VT_EINVAL);
	assert_int_equal(set_leader(m, "c", 0, 4, 3, &e), 0);
	assert_int_equal(shard(m, "c", 0)->leader, 4);
	assert_int_equal(set_leader(m, "c", 0, 1, 2, &e), VT_EBUSY);
	assert_non_null(strstr(e.msg, "term 2"));
	assert_int_equal(set_leader(m, "c", 0, 5, 9, &e), VT_EINVAL);
	assert_int_equal(set_leader(m, "c", 0, 9, 9, &e), VT_EINVAL);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_REMOVE_REPLICA, "c", 0, 4, 0,
				     0, NULL, &e),
			 0);
	assert_int_equal(shard(m, "c", 0)->leader, 0); /* hint dropped */
	assert_int_equal(replica_cmd(m, VT_PD_CMD_REMOVE_REPLICA, "c", 0, 4, 0,
				     0, NULL, &e),
			 VT_ENOENT);
	/* raft ids are never reused in a shard */
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 4,
				     VT_PD_NONVOTER, 0, &res, &e),
			 0);
	assert_int_equal(res.raft_id, 6);
	vt_pd_meta_free(m);
}

static void test_last_voter(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(2);
	vt_errmsg e = {{0}};
	assert_int_equal(create(m, "c", 1, 1, 2, &e), 0); /* voter on 1 */
	assert_int_equal(replica_cmd(m, VT_PD_CMD_ADD_REPLICA, "c", 0, 2,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 0);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_REMOVE_REPLICA, "c", 0, 1, 0,
				     0, NULL, &e),
			 VT_EBUSY);
	assert_non_null(strstr(e.msg, "last voter"));
	assert_int_equal(replica_cmd(m, VT_PD_CMD_PROMOTE, "c", 0, 1,
				     VT_PD_NONVOTER, 0, NULL, &e),
			 VT_EBUSY);
	/* The non-voter goes without trouble; a leader hint on it is
	 * impossible (only voters lead). */
	assert_int_equal(set_leader(m, "c", 0, 2, 1, &e), VT_EINVAL);
	assert_int_equal(set_leader(m, "c", 0, 1, 1, &e), 0);
	uint64_t ep = vt_pd_meta_epoch(m);
	assert_int_equal(set_leader(m, "c", 0, 1, 1, &e), 0);
	assert_int_equal(vt_pd_meta_epoch(m), ep); /* same hint: no change */
	assert_int_equal(set_leader(m, "c", 0, 0, 1, &e), 0); /* unknown */
	assert_int_equal(shard(m, "c", 0)->leader, 0);
	assert_int_equal(replica_cmd(m, VT_PD_CMD_REMOVE_REPLICA, "c", 0, 2, 0,
				     0, NULL, &e),
			 0);
	vt_pd_meta_free(m);
}

/* ---- apply contract ----------------------------------------------------------- */

static void test_idempotent(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(0);
	vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = 1,
		       .addr = "a:1", .addr_len = 3, .capacity = 1};
	size_t len;
	const uint8_t *p = enc(&c, &len);
	vt_pd_result res;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_apply(m, 10, p, len, &res, &e), 0);
	assert_false(res.noop);
	assert_int_equal(res.index, 10);
	assert_int_equal(vt_pd_meta_applied(m), 10);
	assert_int_equal(vt_pd_meta_epoch(m), 1);
	/* the same index, an older one: nothing */
	assert_int_equal(vt_pd_apply(m, 10, p, len, &res, &e), 0);
	assert_true(res.noop);
	assert_int_equal(vt_pd_apply(m, 3, "junk", 4, &res, &e), 0);
	assert_true(res.noop);
	assert_int_equal(vt_pd_meta_epoch(m), 1);
	/* garbage at a new index: rejected, index consumed */
	assert_int_equal(vt_pd_apply(m, 11, "junk", 4, &res, &e), VT_EVERSION);
	assert_non_null(strstr(e.msg, "pd apply 11"));
	assert_int_equal(vt_pd_meta_applied(m), 11);
	assert_int_equal(vt_pd_apply(m, 11, "junk", 4, &res, &e), 0);
	assert_true(res.noop);
	/* index 0 = the next one */
	assert_int_equal(vt_pd_apply(m, 0, p, len, &res, NULL), 0);
	assert_int_equal(res.index, 12);
	vt_pd_meta_free(m);
}

static void test_decode_strict(void **state)
{
	(void)state;
	vt_pd_cmd c = {.type = VT_PD_CMD_ADD_REPLICA, .name = "c",
		       .name_len = 1, .worker = 2, .role = VT_PD_NONVOTER};
	size_t len;
	const uint8_t *p = enc(&c, &len);
	uint8_t b[64];
	memcpy(b, p, len);
	vt_pd_cmd d;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), 0);
	assert_int_equal(d.worker, 2);
	vt_pd_cmd_release(&d);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(vt_pd_cmd_decode(b, n, &d, &e), VT_ECORRUPT);
	b[len] = 0;
	assert_int_equal(vt_pd_cmd_decode(b, len + 1, &d, &e), VT_ECORRUPT);
	assert_non_null(strstr(e.msg, "trailing"));
	b[len - 1] = 2; /* role */
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "replica role"));
	b[len - 1] = 1;
	b[5] = '/'; /* name */
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "name"));
	b[5] = 'c';
	b[2] = 1; /* flags */
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_EINVAL);
	b[2] = 0;
	b[1] = 9; /* type */
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_EINVAL);
	b[1] = VT_PD_CMD_ADD_REPLICA;
	b[0] = 2;
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_EVERSION);
	/* worker id 0, capacity 0, empty address */
	vt_pd_cmd r = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = 0,
		       .addr = "a:1", .addr_len = 3, .capacity = 1};
	p = enc(&r, &len);
	assert_int_equal(vt_pd_cmd_decode(p, len, &d, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "worker id 0"));
	r.worker = 1;
	r.capacity = 0;
	p = enc(&r, &len);
	assert_int_equal(vt_pd_cmd_decode(p, len, &d, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "capacity"));
	r.capacity = 1;
	r.addr = "a b";
	p = enc(&r, &len);
	assert_int_equal(vt_pd_cmd_decode(p, len, &d, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "addr"));
	/* A placement count the input cannot hold is refused before any
	 * allocation for it. */
	vt_pd_slot sl = {0, 1, VT_PD_VOTER};
	vt_pd_cmd cc = {.type = VT_PD_CMD_CREATE_COLLECTION, .name = "c",
			.name_len = 1, .shard_count = 1, .rf = 1,
			.n_slots = 1, .slots = &sl};
	p = enc(&cc, &len);
	memcpy(b, p, len);
	b[4 + 2 + 4] = 0xff; /* shard_count low byte: 255 */
	assert_int_equal(vt_pd_cmd_decode(b, len, &d, &e), VT_ECORRUPT);
	/* encode refuses a placement out of shard order */
	vt_buf out;
	vt_buf_init(&out, 1024);
	cc.shard_count = 2;
	assert_int_equal(vt_pd_cmd_encode(&cc, &out, &e), VT_EINVAL);
	vt_buf_free(&out);
	assert_string_equal(vt_pd_cmd_type_name(VT_PD_CMD_PROMOTE), "promote");
	assert_string_equal(vt_pd_cmd_type_name(0), "?");
}

/* Every allocation of a create fails in turn: nothing changes, not even
 * the applied index; then it succeeds. */
static void test_enomem(void **state)
{
	(void)state;
	vt_pd_meta *m = fresh(3);
	vt_errmsg e = {{0}};
	for (uint64_t n = 1;; n++) {
		uint64_t ap = vt_pd_meta_applied(m), ep = vt_pd_meta_epoch(m);
		vt_pd_slot sl[3] = {{0, 1, 0}, {0, 2, 0}, {0, 3, 0}};
		vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION,
			       .name = "c", .name_len = 1,
			       .config = (const uint8_t *)"cfg",
			       .config_len = 3, .shard_count = 1, .rf = 3,
			       .n_slots = 3, .slots = sl};
		size_t len;
		const uint8_t *p = enc(&c, &len);
		vt_alloc_fail_at(n, 0);
		int rc = vt_pd_apply(m, 0, p, len, NULL, &e);
		vt_alloc_fail_at(0, 0);
		if (rc == 0)
			break;
		assert_int_equal(rc, VT_ENOMEM);
		assert_int_equal(vt_pd_meta_applied(m), ap);
		assert_int_equal(vt_pd_meta_epoch(m), ep);
		assert_int_equal(vt_pd_meta_collection_count(m), 0);
		assert_true(n < 20);
	}
	assert_int_equal(vt_pd_meta_collection_count(m), 1);
	vt_pd_meta_free(m);
}

/* ---- snapshots ------------------------------------------------------------------ */

static void snap(const vt_pd_meta *m, vt_buf *b)
{
	vt_buf_init(b, 1u << 24);
	assert_int_equal(vt_pd_snapshot(m, b), 0);
}

/* A cluster built by a random mix of commands. */
static vt_pd_meta *busy(uint64_t seed)
{
	vt_rng rng;
	vt_rng_seed(&rng, seed);
	vt_pd_meta *m = fresh(6);
	reg(m, 9, "z9", "r9", VT_PD_ROLE_SEARCH_ONLY);
	vt_errmsg e = {{0}};
	const char *names[] = {"a", "b.1", "c-2", "d_3"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(create(m, names[i], 1 + (uint32_t)i * 3,
					1 + (uint32_t)i % 3, 6, &e),
				 0);
	for (int i = 0; i < 300; i++) {
		const char *n = names[vt_rng_next(&rng) % 4];
		uint32_t s = (uint32_t)(vt_rng_next(&rng) % 10);
		uint64_t w = 1 + vt_rng_next(&rng) % 9;
		int t = VT_PD_CMD_ADD_REPLICA + (int)(vt_rng_next(&rng) % 4);
		if (t == VT_PD_CMD_SET_LEADER)
			set_leader(m, n, s, w, vt_rng_next(&rng) % 5, &e);
		else
			replica_cmd(m, t, n, s, w,
				    (int)(vt_rng_next(&rng) % 2), 0, NULL, &e);
	}
	/* Created last, sorted first: group ids do not follow name order
	 * (a restore bug the fuzzer found). */
	assert_int_equal(create(m, "-", 2, 2, 5, &e), 0);
	set_state(m, 6, VT_PD_DRAINING, &e);
	return m;
}

static void test_snapshot_roundtrip(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		vt_pd_meta *m = busy(seed), *r;
		vt_buf a, b;
		snap(m, &a);
		assert_int_equal(vt_pd_meta_new(&r), 0);
		vt_errmsg e = {{0}};
		assert_int_equal(vt_pd_restore(r, a.data, a.len, &e), 0);
		snap(r, &b);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		assert_int_equal(vt_pd_meta_applied(r), vt_pd_meta_applied(m));
		assert_int_equal(vt_pd_meta_epoch(r), vt_pd_meta_epoch(m));
		const vt_pd_shard *x = shard(m, "d_3", 9), *y = shard(r, "d_3", 9);
		assert_int_equal(x->key_lo, y->key_lo);
		assert_int_equal(x->group, y->group);
		/* Both apply the next command alike. */
		vt_pd_result rm, rr;
		assert_int_equal(create(m, "z", 2, 2, 5, &e), 0);
		assert_int_equal(create(r, "z", 2, 2, 5, &e), 0);
		(void)rm;
		(void)rr;
		assert_int_equal(shard(m, "z", 1)->group, shard(r, "z", 1)->group);
		vt_buf_free(&a);
		vt_buf_free(&b);
		vt_pd_meta_free(m);
		vt_pd_meta_free(r);
	}
}

static void test_snapshot_corrupt(void **state)
{
	(void)state;
	vt_pd_meta *m = busy(7), *r = fresh(1);
	vt_buf a, keep;
	snap(m, &a);
	snap(r, &keep);
	vt_errmsg e = {{0}};
	/* Every flipped byte and every truncation is refused; r unchanged. */
	for (size_t i = 0; i < a.len; i++) {
		a.data[i] ^= 0x40;
		assert_int_equal(vt_pd_restore(r, a.data, a.len, &e),
				 VT_ECORRUPT);
		a.data[i] ^= 0x40;
	}
	for (size_t n = 0; n < a.len; n += 7)
		assert_int_not_equal(vt_pd_restore(r, a.data, n, &e), 0);
	/* A valid checksum over bad content is still refused: a replica on
	 * an unknown worker (worker ids are rewritten from 1 to 77). */
	vt_pd_meta *one = fresh(1);
	assert_int_equal(create(one, "c", 1, 1, 1, &e), 0);
	vt_buf s;
	snap(one, &s);
	size_t at = s.len - 8 - 17; /* the replica's worker field */
	assert_int_equal(vt_le_get64(s.data + at), 1);
	vt_le_put64(s.data + at, 77);
	vt_le_put64(s.data + s.len - 8, vt_hash64(s.data, s.len - 8, 0));
	assert_int_equal(vt_pd_restore(r, s.data, s.len, &e), VT_ECORRUPT);
	vt_le_put64(s.data + at, 1);
	s.data[8] = 2; /* version */
	vt_le_put64(s.data + s.len - 8, vt_hash64(s.data, s.len - 8, 0));
	assert_int_equal(vt_pd_restore(r, s.data, s.len, &e), VT_EVERSION);
	vt_buf b;
	snap(r, &b);
	assert_int_equal(b.len, keep.len);
	assert_memory_equal(b.data, keep.data, b.len);
	vt_buf_free(&s);
	vt_buf_free(&a);
	vt_buf_free(&b);
	vt_buf_free(&keep);
	vt_pd_meta_free(one);
	vt_pd_meta_free(m);
	vt_pd_meta_free(r);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(vt_pd_role_name(1), "search_only");
	assert_string_equal(vt_pd_state_name(1), "draining");
	assert_string_equal(vt_pd_replica_role_name(0), "voter");
	assert_string_equal(vt_pd_state_name(9), "?");
	assert_int_equal(vt_pd_shard_of_key(1, UINT64_MAX), 0);
	assert_int_equal(vt_pd_shard_of_key(4, UINT64_MAX), 3);
	assert_int_equal(vt_pd_shard_of_key(4, 1ull << 62), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_worker_state),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_create_rejects),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_replicas),
		cmocka_unit_test(test_last_voter),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_decode_strict),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_snapshot_roundtrip),
		cmocka_unit_test(test_snapshot_corrupt),
		cmocka_unit_test(test_names),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	vt_buf_free(&g_buf);
	return rc;
}
