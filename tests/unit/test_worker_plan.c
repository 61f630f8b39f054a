/* test_worker_plan.c: lib/worker: the worker's reconciliation diff, the
 * one next membership change of a group it leads (walked to a fixed point
 * the way the daemon does it, one change per round), the request checks
 * and messages of the internal protocol, and the replica meta file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>

#include "base/alloc.h"
#include "worker/meta.h"
#include "worker/plan.h"

static void test_diff(void **state)
{
	(void)state;
	uint64_t hosted[] = {5, 7, 9};
	uint64_t assigned[] = {7, 11, 11, 0, 5};
	size_t att[5], des[3], na, nd;
	vt_worker_diff(hosted, 3, assigned, 5, att, &na, des, &nd);
	assert_int_equal(na, 1);
	assert_int_equal(att[0], 1); /* 11 once, 0 ignored */
	assert_int_equal(nd, 1);
	assert_int_equal(des[0], 2); /* 9 */
	/* nothing hosted: attach all; nothing assigned: destroy all */
	vt_worker_diff(NULL, 0, assigned, 5, att, &na, des, &nd);
	assert_int_equal(na, 3);
	assert_int_equal(nd, 0);
	vt_worker_diff(hosted, 3, NULL, 0, att, &na, des, &nd);
	assert_int_equal(na, 0);
	assert_int_equal(nd, 3);
}

/* Applies a change to a configuration as raft would. */
static void apply(vt_worker_member *c, size_t *n, uint64_t *leader,
		  const vt_worker_change *ch)
{
	switch (ch->kind) {
	case VT_WORKER_ADD:
		c[(*n)++] = (vt_worker_member){ch->id, RAFT_STANDBY};
		break;
	case VT_WORKER_PROMOTE:
		for (size_t i = 0; i < *n; i++)
			if (c[i].id == ch->id)
				c[i].role = RAFT_VOTER;
		break;
	case VT_WORKER_REMOVE:
		for (size_t i = 0; i < *n; i++)
			if (c[i].id == ch->id) {
				c[i] = c[--*n];
				break;
			}
		break;
	case VT_WORKER_TRANSFER:
		*leader = ch->id;
		break;
	}
}

/* Runs rounds until nothing is left; returns the number of changes and
 * the kinds in order. */
static int converge(vt_worker_member *c, size_t *n, uint64_t *leader,
		    const vt_worker_want *w, size_t nw, int *kinds)
{
	int k = 0;
	vt_worker_change ch;
	while (vt_worker_next_change(c, *n, *leader, w, nw, &ch)) {
		assert_true(k < 20);
		if (ch.kind == VT_WORKER_REMOVE)
			assert_int_not_equal(ch.id, *leader);
		kinds[k++] = ch.kind;
		apply(c, n, leader, &ch);
	}
	return k;
}

static int role_of(const vt_worker_member *c, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].id == id)
			return c[i].role;
	return -1;
}

static void test_change_add_promote(void **state)
{
	(void)state;
	vt_worker_member c[8] = {{1, RAFT_VOTER}, {2, RAFT_VOTER},
				 {3, RAFT_VOTER}};
	size_t n = 3;
	uint64_t leader = 1;
	vt_worker_want w[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"},
			      {4, 0, "d"}};
	int kinds[20];
	assert_int_equal(converge(c, &n, &leader, w, 4, kinds), 1);
	assert_int_equal(kinds[0], VT_WORKER_ADD);
	assert_int_equal(role_of(c, n, 4), RAFT_STANDBY);
	/* then wanted as a voter: promoted */
	w[3].voter = 1;
	assert_int_equal(converge(c, &n, &leader, w, 4, kinds), 1);
	assert_int_equal(kinds[0], VT_WORKER_PROMOTE);
	assert_int_equal(role_of(c, n, 4), RAFT_VOTER);
	/* a new voter: added as a standby, then promoted */
	vt_worker_want w5[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"},
			       {4, 1, "d"}, {5, 1, "e"}};
	assert_int_equal(converge(c, &n, &leader, w5, 5, kinds), 2);
	assert_int_equal(kinds[0], VT_WORKER_ADD);
	assert_int_equal(kinds[1], VT_WORKER_PROMOTE);
	vt_worker_change ch;
	assert_int_equal(vt_worker_next_change(c, n, leader, w5, 5, &ch),
			 VT_WORKER_NONE);
}

static void test_change_remove_and_self(void **state)
{
	(void)state;
	vt_worker_member c[8] = {{1, RAFT_VOTER}, {2, RAFT_VOTER},
				 {3, RAFT_VOTER}};
	size_t n = 3;
	uint64_t leader = 1;
	/* replace 1 (the leader) by 4: add, promote, transfer, remove */
	vt_worker_want w[] = {{2, 1, "b"}, {3, 1, "c"}, {4, 1, "d"}};
	int kinds[20];
	int k = converge(c, &n, &leader, w, 3, kinds);
	assert_int_equal(k, 4);
	assert_int_equal(kinds[0], VT_WORKER_ADD);
	assert_int_equal(kinds[1], VT_WORKER_PROMOTE);
	assert_int_equal(kinds[2], VT_WORKER_TRANSFER);
	assert_int_equal(kinds[3], VT_WORKER_REMOVE);
	assert_int_equal(role_of(c, n, 1), -1);
	assert_int_not_equal(leader, 1);
	/* a voter wanted as a non-voter: removed, added back as standby */
	vt_worker_want w2[] = {{2, 1, "b"}, {3, 0, "c"}, {4, 1, "d"}};
	leader = 2;
	k = converge(c, &n, &leader, w2, 3, kinds);
	assert_int_equal(k, 2);
	assert_int_equal(kinds[0], VT_WORKER_REMOVE);
	assert_int_equal(kinds[1], VT_WORKER_ADD);
	assert_int_equal(role_of(c, n, 3), RAFT_STANDBY);
}

static void test_change_waits(void **state)
{
	(void)state;
	/* the leader must go, but no wanted voter is in the configuration */
	vt_worker_member c[] = {{1, RAFT_VOTER}, {2, RAFT_STANDBY}};
	vt_worker_want w[] = {{2, 0, "b"}};
	vt_worker_change ch;
	assert_int_equal(vt_worker_next_change(c, 2, 1, w, 1, &ch),
			 VT_WORKER_NONE);
	assert_non_null(strstr(ch.why, "no wanted voter"));
	/* empty want list: never touches the group */
	assert_int_equal(vt_worker_next_change(c, 2, 1, NULL, 0, &ch),
			 VT_WORKER_NONE);
	/* a spare wanted as a standby is removed (then added again) */
	vt_worker_member s[] = {{1, RAFT_VOTER}, {2, RAFT_SPARE}};
	vt_worker_want ws[] = {{1, 1, "a"}, {2, 0, "b"}};
	assert_int_equal(vt_worker_next_change(s, 2, 1, ws, 2, &ch),
			 VT_WORKER_REMOVE);
	assert_int_equal(ch.id, 2);
}

static void test_messages(void **state)
{
	(void)state;
	vt_errmsg e = {{0}};
	assert_int_equal(vt_worker_version_check(1, &e), 0);
	assert_int_equal(vt_worker_version_check(2, &e), VT_EVERSION);
	assert_string_equal(e.msg, "protocol version 2, this node speaks 1");
	assert_int_equal(vt_worker_epoch_check(5, 5, &e), 0);
	assert_int_equal(vt_worker_epoch_check(6, 5, &e), 0);
	assert_int_equal(vt_worker_epoch_check(4, 5, &e), VT_EBUSY);
	assert_string_equal(e.msg, "stale shard epoch: request 4, replica 5");
	assert_int_equal(vt_worker_not_leader("127.0.0.1:7201", &e), VT_EBUSY);
	assert_string_equal(e.msg, "not the leader; leader: 127.0.0.1:7201");
	char a[64];
	assert_int_equal(vt_worker_leader_parse(e.msg, a, sizeof a), 1);
	assert_string_equal(a, "127.0.0.1:7201");
	vt_worker_not_leader(NULL, &e);
	assert_string_equal(e.msg, "not the leader; leader: unknown");
	assert_int_equal(vt_worker_leader_parse(e.msg, a, sizeof a), 0);
	assert_int_equal(vt_worker_leader_parse("stale shard epoch", a,
						sizeof a), -1);
	assert_int_equal(vt_worker_leader_parse(
				 "not the leader; leader: 1.2.3.4:5", a, 4), -1);
}

static void test_meta(void **state)
{
	(void)state;
	char dir[] = "/tmp/vt-wmeta-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/replica.json", dir);
	vt_worker_meta m = {.collection = "c1", .shard = 3, .group = 42,
			    .epoch = 7, .raft_id = 2, .voter = 1,
			    .n_peers = 2};
	m.peers[0] = (vt_worker_meta_peer){1, "127.0.0.1:7300"};
	m.peers[1] = (vt_worker_meta_peer){2, "127.0.0.1:7301"};
	m.config = "{\"version\":1,\"name\":\"c1\"}";
	m.config_len = strlen(m.config);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_worker_meta_write(path, &m, &e), 0);
	vt_worker_meta r;
	assert_int_equal(vt_worker_meta_read(path, &r, &e), 0);
	assert_string_equal(r.collection, "c1");
	assert_int_equal(r.shard, 3);
	assert_int_equal(r.group, 42);
	assert_int_equal(r.epoch, 7);
	assert_int_equal(r.raft_id, 2);
	assert_int_equal(r.voter, 1);
	assert_int_equal(r.join, 0);
	assert_int_equal(r.n_peers, 2);
	assert_string_equal(r.peers[1].addr, "127.0.0.1:7301");
	assert_int_equal(r.config_len, m.config_len);
	assert_string_equal(r.config, m.config);
	vt_worker_meta_free(&r);
	/* damaged and missing files */
	FILE *f = fopen(path, "w");
	fputs("{\"version\":9}", f);
	fclose(f);
	assert_int_equal(vt_worker_meta_read(path, &r, &e), VT_ECORRUPT);
	unlink(path);
	assert_int_equal(vt_worker_meta_read(path, &r, &e), VT_ENOENT);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_change_add_promote),
		cmocka_unit_test(test_change_remove_and_self),
		cmocka_unit_test(test_change_waits),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_meta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
