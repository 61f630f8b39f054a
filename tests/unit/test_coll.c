/* test_coll.c: lib/coll: the catalog (create, list, drop, reopen, bad
 * names, duplicates), routing of writes across shards with request-indexed
 * errors and nothing applied on bad input, gets in request order, search
 * fan-out merged into the exact top-k, scroll cursors across shards, count,
 * streaming partial results, and a drop while a request holds the
 * collection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "coll/coll.h"

#define DIM 12
#define NPTS 600

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

static char *g_dir;

static vt_db *open_db(void)
{
	vt_db_opts o;
	vt_db_opts_default(&o);
	o.threads = 3;
	o.default_shards = 3;
	o.shard.snapshot_entries = 0;
	vt_db *db;
	vt_errmsg e = {{0}};
	if (vt_db_open(g_dir, &o, &db, &e))
		fail_msg("open: %s", e.msg);
	return db;
}

static void make_coll(vt_db *db, const char *name, int metric)
{
	vt_coll_config c;
	vt_coll_config_default(&c, name, DIM, metric);
	c.shard.ef_construction = 64;
	c.shard.n_fields = 1;
	strcpy(c.shard.fields[0].path, "g");
	c.shard.fields[0].type = VT_PAYLOAD_INTEGER;
	vt_errmsg e = {{0}};
	if (vt_db_create(db, &c, &e))
		fail_msg("create: %s", e.msg);
}

static void fill(vt_coll *c, uint64_t n0, uint64_t n)
{
	vt_coll_point *pts = calloc(n, sizeof *pts);
	float *vecs = calloc(n * DIM, sizeof(float));
	char (*ids)[16] = calloc(n, 16);
	char (*pls)[32] = calloc(n, 32);
	for (uint64_t i = 0; i < n; i++) {
		vec_of(n0 + i, vecs + i * DIM);
		pts[i].id = ids[i];
		pts[i].id_len = (size_t)snprintf(ids[i], 16, "p%llu",
						 (unsigned long long)(n0 + i));
		pts[i].vec = vecs + i * DIM;
		pts[i].payload = pls[i];
		pts[i].payload_len = (size_t)snprintf(
			pls[i], 32, "{\"g\":%llu}",
			(unsigned long long)((n0 + i) % 7));
	}
	vt_coll_write_result r;
	vt_errmsg e = {{0}};
	if (vt_coll_upsert(c, pts, n, &r, &e))
		fail_msg("upsert: %s", e.msg);
	assert_int_equal(r.upserted, n);
	free(pts);
	free(vecs);
	free(ids);
	free(pls);
}

static int setup(void **state)
{
	(void)state;
	g_dir = strdup("/tmp/vt_coll_XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vt_rmtree(g_dir);
	free(g_dir);
	return 0;
}

static void test_catalog(void **state)
{
	(void)state;
	vt_db *db = open_db();
	vt_errmsg e;
	make_coll(db, "alpha", VT_METRIC_L2);
	make_coll(db, "beta", VT_METRIC_COSINE);
	vt_coll_config c;
	vt_coll_config_default(&c, "alpha", DIM, VT_METRIC_L2);
	assert_int_equal(vt_db_create(db, &c, &e), VT_EEXIST);
	assert_non_null(strstr(e.msg, "already exists"));
	vt_coll_config_default(&c, "bad/name", DIM, VT_METRIC_L2);
	assert_int_equal(vt_db_create(db, &c, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "name"));
	vt_coll_config_default(&c, "zero", 0, VT_METRIC_L2);
	assert_int_equal(vt_db_create(db, &c, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dimension"));
	vt_coll **all;
	size_t n;
	assert_int_equal(vt_db_list(db, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(vt_coll_config_get(all[0])->name, "alpha");
	assert_int_equal(vt_coll_config_get(all[1])->shard.metric,
			 VT_METRIC_COSINE);
	for (size_t i = 0; i < n; i++)
		vt_coll_release(all[i]);
	vt_free(all);
	vt_coll *a;
	assert_int_equal(vt_db_get(db, "alpha", &a), 0);
	fill(a, 0, 50);
	vt_coll_release(a);
	vt_db_close(db);

	/* reopen: both there, data intact, config from disk */
	db = open_db();
	assert_int_equal(vt_db_get(db, "alpha", &a), 0);
	assert_int_equal(vt_coll_config_get(a)->shard_count, 3);
	vt_coll_status st;
	assert_int_equal(vt_coll_status_get(a, &st), 0);
	assert_int_equal(st.points, 50);
	assert_int_equal(st.n_shards, 3);
	assert_true(st.shards[0].points + st.shards[1].points +
			    st.shards[2].points ==
		    50);
	assert_true(st.shards[0].points > 0 && st.shards[1].points > 0);
	vt_free(st.shards);

	/* drop while a request holds it: gone from the catalog at once,
	 * still usable by the holder, files removed after release */
	assert_int_equal(vt_db_drop(db, "alpha", &e), 0);
	assert_int_equal(vt_db_drop(db, "alpha", &e), VT_ENOENT);
	vt_coll *again;
	assert_int_equal(vt_db_get(db, "alpha", &again), VT_ENOENT);
	uint64_t cnt;
	assert_int_equal(vt_coll_count(a, NULL, &cnt, &e), 0);
	assert_int_equal(cnt, 50);
	vt_coll_release(a);
	char path[512];
	snprintf(path, sizeof path, "%s/collections/alpha", g_dir);
	struct stat sb;
	assert_int_not_equal(stat(path, &sb), 0);
	/* re-created empty under the same name */
	make_coll(db, "alpha", VT_METRIC_L2);
	assert_int_equal(vt_db_get(db, "alpha", &a), 0);
	assert_int_equal(vt_coll_count(a, NULL, &cnt, &e), 0);
	assert_int_equal(cnt, 0);
	vt_coll_release(a);
	vt_db_close(db);
	db = open_db();
	assert_int_equal(vt_db_list(db, &all, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		vt_coll_release(all[i]);
	vt_free(all);
	vt_db_close(db);
}

static void test_writes_and_reads(void **state)
{
	(void)state;
	vt_db *db = open_db();
	make_coll(db, "w", VT_METRIC_L2);
	vt_coll *c;
	assert_int_equal(vt_db_get(db, "w", &c), 0);
	fill(c, 0, NPTS);
	vt_errmsg e;
	/* a bad point in the middle: nothing applied anywhere, error names
	 * the request's index */
	vt_coll_point pts[40];
	float vecs[40][DIM];
	char ids[40][16];
	for (int i = 0; i < 40; i++) {
		vec_of(5000 + (uint64_t)i, vecs[i]);
		pts[i].id = ids[i];
		pts[i].id_len = (size_t)snprintf(ids[i], 16, "n%d", i);
		pts[i].vec = vecs[i];
		pts[i].payload = NULL;
		pts[i].payload_len = 0;
	}
	vecs[27][5] = NAN;
	vt_coll_write_result r;
	assert_int_equal(vt_coll_upsert(c, pts, 40, &r, &e), VT_EINVAL);
	if (!strstr(e.msg, "points[27].vector[5]"))
		fail_msg("message: %s", e.msg);
	vecs[27][5] = 0;
	pts[31].payload = "[1,2]";
	pts[31].payload_len = 5;
	assert_int_equal(vt_coll_upsert(c, pts, 40, &r, &e), VT_EINVAL);
	if (!strstr(e.msg, "points[31]"))
		fail_msg("message: %s", e.msg);
	uint64_t cnt;
	assert_int_equal(vt_coll_count(c, NULL, &cnt, &e), 0);
	assert_int_equal(cnt, NPTS);

	/* get in request order, absent skipped */
	const char *gid[] = {"p5", "nope", "p599", "p0"};
	size_t glen[] = {2, 4, 4, 2};
	vt_coll_results res;
	assert_int_equal(vt_coll_get(c, gid, glen, 4, 1, 1, &res, &e), 0);
	assert_int_equal(res.n, 3);
	assert_string_equal(res.hits[0].id, "p5");
	assert_string_equal(res.hits[1].id, "p599");
	assert_string_equal(res.hits[2].id, "p0");
	assert_string_equal(res.hits[0].payload, "{\"g\":5}");
	float v[DIM];
	vec_of(599, v);
	assert_memory_equal(res.hits[1].vec, v, sizeof v);
	vt_coll_results_free(&res);

	/* search: merged top-k over 3 shards equals exact brute force */
	for (uint64_t qn = 0; qn < 20; qn++) {
		float q[DIM];
		vec_of(90000 + qn, q);
		vt_coll_query cq;
		vt_coll_query_default(&cq, q, 10);
		cq.exact = 1;
		assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &res, &e), 0);
		assert_int_equal(res.n, 10);
		/* brute force */
		float best[10];
		for (int i = 0; i < 10; i++)
			best[i] = INFINITY;
		for (uint64_t n = 0; n < NPTS; n++) {
			float p[DIM], d = 0;
			vec_of(n, p);
			for (int j = 0; j < DIM; j++)
				d += (p[j] - q[j]) * (p[j] - q[j]);
			for (int i = 0; i < 10; i++)
				if (d < best[i]) {
					memmove(best + i + 1, best + i,
						(size_t)(9 - i) * sizeof *best);
					best[i] = d;
					break;
				}
		}
		for (int i = 0; i < 10; i++) {
			assert_true(fabsf(res.hits[i].dist - best[i]) <
				    1e-4f * (1 + best[i]));
			assert_true(fabsf(res.hits[i].score -
					  sqrtf(res.hits[i].dist)) < 1e-5f);
		}
		vt_coll_results_free(&res);
	}
	/* score threshold (euclid: distance at most t) */
	vec_of(3, v);
	vt_coll_query cq;
	vt_coll_query_default(&cq, v, 50);
	cq.has_threshold = 1;
	cq.threshold = 0.5f;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &res, &e), 0);
	assert_true(res.n >= 1);
	assert_string_equal(res.hits[0].id, "p3");
	for (size_t i = 0; i < res.n; i++)
		assert_true(res.hits[i].score <= 0.5f);
	vt_coll_results_free(&res);

	/* filters: parse errors name the place; count/search agree */
	vt_filter *f;
	const char *bad = "{\"must\":[{\"key\":\"g\",\"range\":{\"gtx\":1}}]}";
	assert_int_equal(vt_coll_filter_parse(c, bad, strlen(bad), &f, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "filter"));
	const char *fj = "{\"must\":[{\"key\":\"g\",\"match\":{\"value\":3}}]}";
	assert_int_equal(vt_coll_filter_parse(c, fj, strlen(fj), &f, &e), 0);
	assert_int_equal(vt_coll_count(c, f, &cnt, &e), 0);
	assert_int_equal(cnt, 86); /* n % 7 == 3 for n < 600 */
	vt_coll_query_default(&cq, v, 100);
	cq.filter = f;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &res, &e), 0);
	assert_int_equal(res.n, 86);
	for (size_t i = 0; i < res.n; i++)
		assert_string_equal(res.hits[i].payload, "{\"g\":3}");
	vt_coll_results_free(&res);

	/* scroll across shards: every match once */
	char cursor[32] = "", next[32];
	size_t seen = 0;
	do {
		assert_int_equal(vt_coll_scroll(c, f, 13, cursor, 1, 0, &res,
						next, &e),
				 0);
		seen += res.n;
		vt_coll_results_free(&res);
		strcpy(cursor, next);
	} while (cursor[0]);
	assert_int_equal(seen, 86);
	assert_int_equal(vt_coll_scroll(c, NULL, 10, "9.x", 1, 0, &res, next,
					&e),
			 VT_EINVAL);
	vt_coll_results_free(&res);

	/* delete by filter, by ids; set payload (missing id: nothing) */
	assert_int_equal(vt_coll_delete_filter(c, fj, strlen(fj), &r, &e), 0);
	assert_int_equal(r.deleted, 86);
	assert_int_equal(vt_coll_count(c, f, &cnt, &e), 0);
	assert_int_equal(cnt, 0);
	vt_filter_free(f);
	const char *did[] = {"p0", "p1", "ghost"};
	size_t dlen[] = {2, 2, 5};
	assert_int_equal(vt_coll_delete_ids(c, did, dlen, 3, &r, &e), 0);
	assert_int_equal(r.deleted, 2);
	const char *sid[] = {"p2", "p4", "ghost"};
	assert_int_equal(vt_coll_set_payload(c, sid, dlen, 3, "{\"x\":1}", 7, 1,
					     &r, &e),
			 VT_ENOENT);
	assert_non_null(strstr(e.msg, "ghost"));
	assert_int_equal(vt_coll_set_payload(c, sid, dlen, 2, "{\"x\":1}", 7, 1,
					     &r, &e),
			 0);
	assert_int_equal(r.updated, 2);
	assert_int_equal(vt_coll_get(c, sid, dlen, 2, 1, 0, &res, &e), 0);
	assert_string_equal(res.hits[0].payload, "{\"g\":2,\"x\":1}");
	vt_coll_results_free(&res);
	vt_coll_release(c);
	vt_db_close(db);
}

struct stream_log {
	uint32_t calls, last_done, total;
	size_t last_n;
};

static void on_partial(void *ud, const vt_shard_hit *hits, size_t n,
		       uint32_t done, uint32_t total)
{
	struct stream_log *l = ud;
	for (size_t i = 1; i < n; i++)
		assert_true(hits[i - 1].dist <= hits[i].dist);
	l->calls++;
	l->last_done = done;
	l->total = total;
	l->last_n = n;
}

static void test_stream_and_strong(void **state)
{
	(void)state;
	vt_db *db = open_db();
	vt_coll_config cfg;
	vt_coll_config_default(&cfg, "s", DIM, VT_METRIC_IP);
	cfg.shard.index_mode = VT_INDEX_ASYNC;
	vt_errmsg e;
	assert_int_equal(vt_db_create(db, &cfg, &e), 0);
	vt_coll *c;
	assert_int_equal(vt_db_get(db, "s", &c), 0);
	fill(c, 0, 300);
	float v[DIM];
	vec_of(77, v);
	vt_coll_query q;
	vt_coll_query_default(&q, v, 5);
	q.strong = 1;
	q.wait_ms = 10000;
	struct stream_log log = {0};
	vt_coll_results res;
	assert_int_equal(vt_coll_search(c, &q, on_partial, &log, &res, &e), 0);
	assert_int_equal(log.calls, 3);
	assert_int_equal(log.last_done, 3);
	assert_int_equal(log.total, 3);
	assert_int_equal(log.last_n, 5);
	assert_int_equal(res.n, 5);
	/* dot: score is the inner product, best (largest) first */
	for (size_t i = 1; i < res.n; i++)
		assert_true(res.hits[i - 1].score >= res.hits[i].score);
	vt_coll_results_free(&res);
	vt_coll_release(c);
	vt_db_close(db);
}


/* Per-shard point counts of `c` against where `route` puts ids p0..pn-1. */
static void check_routing(vt_coll *c, uint64_t n, int route)
{
	uint64_t want[8] = {0};
	uint32_t shards = vt_coll_config_get(c)->shard_count;
	for (uint64_t i = 0; i < n; i++) {
		char id[16];
		int l = snprintf(id, sizeof id, "p%llu", (unsigned long long)i);
		uint64_t h = vt_hash64(id, (size_t)l, 0);
		want[route == VT_COLL_ROUTE_MOD ? h % shards
						 : vt_hash_range(h, shards)]++;
	}
	vt_coll_status st;
	assert_int_equal(vt_coll_status_get(c, &st), 0);
	assert_int_equal(st.n_shards, shards);
	for (uint32_t i = 0; i < shards; i++)
		assert_int_equal(st.shards[i].points, want[i]);
	vt_free(st.shards);
}

/* New collections route ids by key range (as the cluster's PD does); a
 * collection whose config predates the routing field keeps `% n`, so its
 * points stay where they are. */
static void test_routing_versions(void **state)
{
	(void)state;
	vt_db *db = open_db();
	make_coll(db, "ranged", VT_METRIC_L2);
	make_coll(db, "legacy", VT_METRIC_L2);
	vt_coll *c;
	assert_int_equal(vt_db_get(db, "ranged", &c), 0);
	assert_int_equal(vt_coll_config_get(c)->routing, VT_COLL_ROUTE_RANGE);
	fill(c, 0, NPTS);
	check_routing(c, NPTS, VT_COLL_ROUTE_RANGE);
	vt_coll_release(c);
	vt_db_close(db);
	/* rewrite "legacy"'s config as an earlier build wrote it */
	char path[4096];
	snprintf(path, sizeof path, "%s/collections/legacy/collection.json", g_dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char text[4096];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = 0;
	char *r = strstr(text, ",\n \"routing\": \"range\"");
	if (!r) /* the key may come first or last: JSON_SORT_KEYS puts it last */
		fail_msg("no routing field in %s", text);
	memmove(r, r + strlen(",\n \"routing\": \"range\""),
		strlen(r + strlen(",\n \"routing\": \"range\"")) + 1);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	db = open_db();
	assert_int_equal(vt_db_get(db, "legacy", &c), 0);
	assert_int_equal(vt_coll_config_get(c)->routing, VT_COLL_ROUTE_MOD);
	fill(c, 0, NPTS);
	check_routing(c, NPTS, VT_COLL_ROUTE_MOD);
	vt_coll_release(c);
	vt_db_close(db);
}

/* The config codec the placement driver stores: every field survives a
 * round trip, and damaged or foreign bytes are refused with the reason. */
static void test_config_codec(void **state)
{
	(void)state;
	vt_coll_config c, d;
	vt_coll_config_default(&c, "docs-1", 96, VT_METRIC_COSINE);
	c.shard_count = 7;
	c.rescore = 0;
	c.oversampling = 3.5f;
	c.routing = VT_COLL_ROUTE_RANGE;
	c.shard.m = 24;
	c.shard.ef_construction = 150;
	c.shard.ef_search = 80;
	c.shard.quant = VT_QUANT_INT8;
	c.shard.index_mode = VT_INDEX_ASYNC;
	c.shard.n_fields = 2;
	snprintf(c.shard.fields[0].path, sizeof c.shard.fields[0].path, "color");
	c.shard.fields[0].type = VT_PAYLOAD_KEYWORD;
	snprintf(c.shard.fields[1].path, sizeof c.shard.fields[1].path, "a.b");
	c.shard.fields[1].type = VT_PAYLOAD_INTEGER;
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	vt_errmsg err = {0};
	assert_int_equal(vt_coll_config_encode(&c, &b, &err), 0);
	assert_int_equal(vt_coll_config_decode(b.data, b.len, &d, &err), 0);
	assert_string_equal(d.name, "docs-1");
	assert_int_equal(d.shard_count, 7);
	assert_int_equal(d.rescore, 0);
	assert_true(d.oversampling == 3.5f);
	assert_int_equal(d.routing, VT_COLL_ROUTE_RANGE);
	assert_int_equal(d.shard.dim, 96);
	assert_int_equal(d.shard.metric, VT_METRIC_COSINE);
	assert_int_equal(d.shard.m, 24);
	assert_int_equal(d.shard.ef_construction, 150);
	assert_int_equal(d.shard.ef_search, 80);
	assert_int_equal(d.shard.quant, VT_QUANT_INT8);
	assert_int_equal(d.shard.index_mode, VT_INDEX_ASYNC);
	assert_int_equal(d.shard.n_fields, 2);
	assert_string_equal(d.shard.fields[1].path, "a.b");
	assert_int_equal(d.shard.fields[1].type, VT_PAYLOAD_INTEGER);
	/* damaged: truncated, a field missing, an unknown one, a bad value,
	 * another version */
	assert_int_equal(vt_coll_config_decode(b.data, b.len - 3, &d, &err),
			 VT_EINVAL);
	const char *bad[] = {
		"{\"version\":1}",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(vt_coll_config_decode(bad[i], strlen(bad[i]),
						       &d, &err),
				 VT_EINVAL);
	char *t = vt_malloc(b.len + 64);
	memcpy(t, b.data, b.len);
	t[b.len] = 0;
	char *p = strstr(t, "\"dim\":96");
	assert_non_null(p);
	memcpy(p, "\"dim\":00", 8); /* dim 0 */
	assert_int_equal(vt_coll_config_decode(t, b.len, &d, &err), VT_EINVAL);
	memcpy(p, "\"dim\":96", 8);
	p = strstr(t, "\"version\":1");
	assert_non_null(p);
	p[10] = '9';
	assert_int_equal(vt_coll_config_decode(t, b.len, &d, &err), VT_EVERSION);
	assert_non_null(strstr(err.msg, "version 9"));
	p[10] = '1';
	p = strstr(t, "\"distance\":\"cosine\"");
	assert_non_null(p);
	memcpy(p + 12, "cosinx", 6);
	assert_int_equal(vt_coll_config_decode(t, b.len, &d, &err), VT_EINVAL);
	vt_free(t);
	vt_buf_free(&b);
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
	if (!getenv("VT_TEST_VERBOSE"))
		vt_log_set_handler(quiet, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_codec),
		cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing_versions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_writes_and_reads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stream_and_strong, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
