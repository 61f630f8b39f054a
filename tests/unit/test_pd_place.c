/* test_pd_place.c: lib/pd placement: invariants over many random clusters
 * (distinct workers, only eligible workers, zone and rack spread as wide as
 * the cluster allows), load and capacity weighting, determinism by seed,
 * clear errors when a request cannot be met, and vt_pd_place_create
 * feeding vt_pd_apply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/hash.h"
#include "pd/cmd.h"
#include "pd/meta.h"
#include "pd/place.h"

static const char *const ZONES[] = {"za", "zb", "zc", "zd", "ze"};
static const char *const RACKS[] = {"r0", "r1", "r2"};

static vt_pd_node node(uint64_t id, const char *zone, const char *rack)
{
	return (vt_pd_node){.id = id, .zone = zone, .rack = rack,
			    .capacity = 1, .role = VT_PD_ROLE_NORMAL,
			    .state = VT_PD_UP};
}

static int eligible(const vt_pd_node *n, int role)
{
	return n->state == VT_PD_UP &&
	       n->role == (role == VT_PD_VOTER ? VT_PD_ROLE_NORMAL
					       : VT_PD_ROLE_SEARCH_ONLY);
}

static const vt_pd_node *find(const vt_pd_node *nodes, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].id == id)
			return &nodes[i];
	return NULL;
}

/* Distinct zones (zr = 0) or zone/rack pairs (zr = 1) among k nodes. */
static uint32_t distinct(const vt_pd_node *const *v, size_t k, int zr)
{
	uint32_t d = 0;
	for (size_t i = 0; i < k; i++) {
		size_t j = 0;
		for (; j < i; j++)
			if (!strcmp(v[i]->zone, v[j]->zone) &&
			    (!zr || !strcmp(v[i]->rack, v[j]->rack)))
				break;
		d += j == i;
	}
	return d;
}

static uint32_t distinct_eligible(const vt_pd_node *nodes, size_t n,
				  int zr)
{
	const vt_pd_node **v = calloc(n ? n : 1, sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (eligible(&nodes[i], VT_PD_VOTER))
			v[k++] = &nodes[i];
	uint32_t d = distinct(v, k, zr);
	free(v);
	return d;
}

static void check_shard(const vt_pd_node *nodes, size_t n,
			const vt_pd_place_req *q, const vt_pd_slot *sl,
			uint32_t s)
{
	const vt_pd_node *v[VT_PD_MAX_REPLICAS];
	uint32_t per = q->rf + q->search_replicas;
	for (uint32_t r = 0; r < per; r++) {
		assert_int_equal(sl[r].shard, s);
		assert_int_equal(sl[r].role,
				 r < q->rf ? VT_PD_VOTER : VT_PD_NONVOTER);
		v[r] = find(nodes, n, sl[r].worker);
		assert_non_null(v[r]);
		assert_true(eligible(v[r], sl[r].role));
		for (uint32_t t = 0; t < r; t++)
			assert_int_not_equal(sl[t].worker, sl[r].worker);
	}
	uint32_t zones = distinct_eligible(nodes, n, 0);
	uint32_t pairs = distinct_eligible(nodes, n, 1);
	assert_int_equal(distinct(v, q->rf, 0), zones < q->rf ? zones : q->rf);
	assert_int_equal(distinct(v, q->rf, 1), pairs < q->rf ? pairs : q->rf);
}

static uint32_t count_eligible(const vt_pd_node *nodes, size_t n, int role)
{
	uint32_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += eligible(&nodes[i], role);
	return k;
}

static void random_cluster(vt_rng *g, vt_pd_node *nodes, size_t n)
{
	uint32_t nz = 1 + (uint32_t)(vt_rng_next(g) % 5);
	for (size_t i = 0; i < n; i++) {
		nodes[i] = node(100 + i, ZONES[vt_rng_next(g) % nz],
				RACKS[vt_rng_next(g) % 3]);
		nodes[i].capacity = 1 + vt_rng_next(g) % 4;
		nodes[i].load = vt_rng_next(g) % 20;
		uint64_t x = vt_rng_next(g) % 10;
		if (x == 0)
			nodes[i].state = VT_PD_DRAINING;
		else if (x == 1)
			nodes[i].state = VT_PD_REMOVED;
		else if (x == 2)
			nodes[i].role = VT_PD_ROLE_SEARCH_ONLY;
	}
}

static void test_random_clusters(void **state)
{
	(void)state;
	vt_rng g;
	vt_rng_seed(&g, 42);
	vt_pd_node nodes[40];
	vt_pd_slot *out = calloc(64 * VT_PD_MAX_REPLICAS, sizeof *out);
	int ok = 0, refused = 0;
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = 1 + vt_rng_next(&g) % 40;
		random_cluster(&g, nodes, n);
		vt_pd_place_req q = {
			.shards = 1 + (uint32_t)(vt_rng_next(&g) % 64),
			.rf = 1 + (uint32_t)(vt_rng_next(&g) % 5),
			.search_replicas = (uint32_t)(vt_rng_next(&g) % 3 == 0),
			.seed = vt_rng_next(&g)};
		size_t got;
		vt_errmsg e = {{0}};
		int rc = vt_pd_place(nodes, n, &q, out, 64 * VT_PD_MAX_REPLICAS,
				     &got, &e);
		if (rc) {
			assert_int_equal(rc, VT_EINVAL);
			assert_true(count_eligible(nodes, n, VT_PD_VOTER) <
					    q.rf ||
				    count_eligible(nodes, n, VT_PD_NONVOTER) <
					    q.search_replicas);
			assert_non_null(strstr(e.msg, "there are"));
			assert_int_equal(got, 0);
			refused++;
			continue;
		}
		ok++;
		uint32_t per = q.rf + q.search_replicas;
		assert_int_equal(got, (size_t)q.shards * per);
		for (uint32_t s = 0; s < q.shards; s++)
			check_shard(nodes, n, &q, out + (size_t)s * per, s);
	}
	assert_true(ok > 500);
	assert_true(refused > 50);
	free(out);
}

/* Equal workers in one zone: placement by load alone fills them evenly;
 * a worker of capacity 2 takes twice as much; an already loaded worker is
 * filled last. */
static void test_load_weighting(void **state)
{
	(void)state;
	vt_pd_node nodes[6];
	for (int i = 0; i < 6; i++)
		nodes[i] = node(1 + (uint64_t)i, "z", "r");
	vt_pd_slot out[60 * 3];
	size_t got;
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = 60, .rf = 3, .seed = 1};
	assert_int_equal(vt_pd_place(nodes, 6, &q, out, 180, &got, &e), 0);
	uint32_t cnt[7] = {0};
	for (size_t i = 0; i < got; i++)
		cnt[out[i].worker]++;
	for (int i = 1; i <= 6; i++)
		assert_int_equal(cnt[i], 30);

	nodes[0].capacity = 2;
	nodes[5].load = 25;
	memset(cnt, 0, sizeof cnt);
	assert_int_equal(vt_pd_place(nodes, 6, &q, out, 180, &got, &e), 0);
	for (size_t i = 0; i < got; i++)
		cnt[out[i].worker]++;
	/* 180 + 25 = 205 units over capacities 2+1+1+1+1+1 = 7 */
	assert_true(cnt[1] >= 56 && cnt[1] <= 60);
	assert_true(cnt[6] + 25 >= 28 && cnt[6] + 25 <= 31);
	for (int i = 2; i <= 5; i++)
		assert_true(cnt[i] >= 28 && cnt[i] <= 31);
}

static void test_zones_racks(void **state)
{
	(void)state;
	/* 3 zones; zone za has 4 workers on 2 racks. rf 3 spans zones; rf 5
	 * also spans both racks of za. */
	vt_pd_node nodes[] = {node(1, "za", "r0"), node(2, "za", "r0"),
			      node(3, "za", "r1"), node(4, "za", "r1"),
			      node(5, "zb", "r0"), node(6, "zc", "r0")};
	vt_pd_slot out[10 * 5];
	size_t got;
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = 10, .rf = 3, .seed = 9};
	assert_int_equal(vt_pd_place(nodes, 6, &q, out, 50, &got, &e), 0);
	for (uint32_t s = 0; s < 10; s++) {
		int z[3] = {0};
		for (int r = 0; r < 3; r++) {
			uint64_t w = out[s * 3 + r].worker;
			z[w <= 4 ? 0 : w - 4]++;
		}
		assert_true(z[0] == 1 && z[1] == 1 && z[2] == 1);
	}
	q.rf = 5;
	assert_int_equal(vt_pd_place(nodes, 6, &q, out, 50, &got, &e), 0);
	for (uint32_t s = 0; s < 10; s++)
		check_shard(nodes, 6, &q, out + s * 5, s);
}

static void test_deterministic(void **state)
{
	(void)state;
	vt_pd_node nodes[12];
	vt_rng g;
	vt_rng_seed(&g, 5);
	random_cluster(&g, nodes, 12);
	for (int i = 0; i < 12; i++)
		nodes[i].state = VT_PD_UP, nodes[i].role = 0, nodes[i].load = 0;
	vt_pd_slot a[30], b[30];
	size_t na, nb;
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = 10, .rf = 3, .seed = 77};
	assert_int_equal(vt_pd_place(nodes, 12, &q, a, 30, &na, &e), 0);
	assert_int_equal(vt_pd_place(nodes, 12, &q, b, 30, &nb, &e), 0);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(a[i].shard, b[i].shard);
		assert_int_equal(a[i].worker, b[i].worker);
		assert_int_equal(a[i].role, b[i].role);
	}
	int differs = 0;
	for (uint64_t seed = 1; seed < 20 && !differs; seed++) {
		q.seed = seed;
		assert_int_equal(vt_pd_place(nodes, 12, &q, b, 30, &nb, &e), 0);
		for (int i = 0; i < 30; i++)
			differs |= a[i].worker != b[i].worker;
	}
	assert_true(differs);
}

static void test_errors(void **state)
{
	(void)state;
	vt_pd_node nodes[] = {node(1, "z", "r"), node(2, "z", "r"),
			      node(3, "z", "r"), node(4, "z", "r")};
	nodes[2].state = VT_PD_DRAINING;
	nodes[3].role = VT_PD_ROLE_SEARCH_ONLY;
	vt_pd_slot out[16];
	size_t got = 99;
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = 1, .rf = 3, .seed = 1};
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e),
			 VT_EINVAL);
	assert_string_equal(e.msg, "placement: rf 3 needs 3 up, normal "
				   "workers; there are 2");
	assert_int_equal(got, 0);
	q.rf = 2;
	q.search_replicas = 2;
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "search_replicas 2"));
	q.search_replicas = 1;
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e), 0);
	assert_int_equal(got, 3);
	assert_int_equal(out[2].worker, 4);
	assert_int_equal(out[2].role, VT_PD_NONVOTER);
	q.shards = 6;
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e),
			 VT_ELIMIT);
	q.shards = 0;
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e),
			 VT_EINVAL);
	q.shards = 1;
	q.rf = VT_PD_MAX_RF + 1;
	assert_int_equal(vt_pd_place(nodes, 4, &q, out, 16, &got, &e),
			 VT_EINVAL);
	/* A duplicated id is one worker, not two. */
	vt_pd_node dup[] = {node(1, "z", "r"), node(1, "y", "r")};
	q.rf = 2;
	q.search_replicas = 0;
	assert_int_equal(vt_pd_place(dup, 2, &q, out, 16, &got, &e),
			 VT_EINVAL);
	assert_int_equal(vt_pd_place(NULL, 0, &q, out, 16, &got, &e),
			 VT_EINVAL);
}

static void apply_ok(vt_pd_meta *m, const vt_pd_cmd *c)
{
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_pd_cmd_encode(c, &b, &e), 0);
	assert_int_equal(vt_pd_apply(m, 0, b.data, b.len, NULL, &e), 0);
	vt_buf_free(&b);
}

static void test_place_create(void **state)
{
	(void)state;
	vt_pd_meta *m;
	assert_int_equal(vt_pd_meta_new(&m), 0);
	for (uint64_t id = 1; id <= 5; id++) {
		char addr[32];
		snprintf(addr, sizeof addr, "h%llu:1", (unsigned long long)id);
		vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = id,
			       .addr = addr, .addr_len = (uint32_t)strlen(addr),
			       .capacity = 1, .zone = ZONES[id % 3],
			       .zone_len = 2, .rack = "r0", .rack_len = 2,
			       .role = id == 5 ? VT_PD_ROLE_SEARCH_ONLY : 0};
		apply_ok(m, &c);
	}
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_errmsg e = {{0}};
	vt_pd_place_req q = {.shards = 4, .rf = 3, .search_replicas = 1,
			     .seed = 3};
	assert_int_equal(vt_pd_place_create(m, "docs", "{}", 2, &q, &b, &e),
			 0);
	assert_int_equal(vt_pd_apply(m, 0, b.data, b.len, NULL, &e), 0);
	const vt_pd_collection *c = vt_pd_meta_find_collection(m, "docs", 4);
	assert_non_null(c);
	for (uint32_t s = 0; s < 4; s++) {
		assert_int_equal(c->shards[s].n_replicas, 4);
		assert_int_equal(c->shards[s].replicas[3].worker, 5);
	}
	/* Zones before load: 3 (za) and 2 (zc) are alone in their zones and
	 * hold every shard; 1 and 4 share zb and split it. */
	assert_int_equal(vt_pd_meta_hosted(m, 2), 4);
	assert_int_equal(vt_pd_meta_hosted(m, 3), 4);
	assert_int_equal(vt_pd_meta_hosted(m, 1), 2);
	assert_int_equal(vt_pd_meta_hosted(m, 4), 2);
	vt_buf_reset(&b);
	assert_int_equal(vt_pd_place_create(m, "docs", NULL, 0, &q, &b, &e),
			 VT_EEXIST);
	assert_int_equal(vt_pd_place_create(m, "bad name", NULL, 0, &q, &b,
					    &e),
			 VT_EINVAL);
	q.rf = 5;
	assert_int_equal(vt_pd_place_create(m, "x", NULL, 0, &q, &b, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "there are 4"));
	/* workers the leader does not hear are left out: rf 2 on the two
	 * heard normal workers only, and rf 3 can no longer be met */
	uint64_t deaf[] = {2, 3};
	vt_pd_place_req qx = {.shards = 3, .rf = 2, .seed = 9,
			      .exclude = deaf, .n_exclude = 2};
	vt_buf_reset(&b);
	assert_int_equal(vt_pd_place_create(m, "live", "{}", 2, &qx, &b, &e),
			 0);
	assert_int_equal(vt_pd_apply(m, 0, b.data, b.len, NULL, &e), 0);
	c = vt_pd_meta_find_collection(m, "live", 4);
	assert_non_null(c);
	for (uint32_t s = 0; s < 3; s++)
		for (uint32_t i = 0; i < c->shards[s].n_replicas; i++) {
			uint64_t w = c->shards[s].replicas[i].worker;
			assert_true(w == 1 || w == 4);
		}
	qx.rf = 3;
	vt_buf_reset(&b);
	assert_int_equal(vt_pd_place_create(m, "live2", "{}", 2, &qx, &b, &e),
			 VT_EINVAL);
	vt_pd_node nodes[2];
	size_t nn;
	assert_int_equal(vt_pd_nodes_of_meta(m, nodes, 2, &nn), VT_ELIMIT);
	vt_buf_free(&b);
	vt_pd_meta_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_clusters),
		cmocka_unit_test(test_load_weighting),
		cmocka_unit_test(test_zones_racks),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_place_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
