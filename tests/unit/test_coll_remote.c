/* test_coll_remote.c: lib/coll over a remote back end (vt_db_open_remote).
 * The back end here keeps shards in this process but sees only what a
 * gateway would send (collection name, shard index, command bytes, filter
 * source text), so the test checks that a collection behind it answers
 * exactly as a local one with the same data: searches (filtered, exact,
 * strong), gets, scroll pages, counts, status; that bad input reaches no
 * shard (every part is validated before any applies); that the catalog
 * (create, list, duplicate, drop) goes through the back end; and that a
 * collection recreated with another config is picked up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/log.h"
#include "coll/coll.h"
#include "payload/payload.h"

#define DIM 10
#define NPTS 400
#define MAXC 8

/* ---- the fake back end: shards in this process, reached by name ---------- */

struct fcoll {
	vt_coll_config cfg;
	vt_shard **shards;
	int live;
};

struct fake {
	pthread_mutex_t mu;
	char dir[256];
	struct fcoll c[MAXC];
	unsigned seq;
	int applies, validates, searches_linearizable;
	int fail_mask; /* searches of these shards (bit i) fail */
	int grouped;   /* search_groups pairs shards by parity */
	int many_calls, many_shards;
};

static struct fcoll *f_find(struct fake *f, const char *name)
{
	for (int i = 0; i < MAXC; i++)
		if (f->c[i].live && !strcmp(f->c[i].cfg.name, name))
			return &f->c[i];
	return NULL;
}

static vt_shard *f_shard(struct fake *f, const char *name, uint32_t i)
{
	pthread_mutex_lock(&f->mu);
	struct fcoll *c = f_find(f, name);
	vt_shard *s = c && i < c->cfg.shard_count ? c->shards[i] : NULL;
	pthread_mutex_unlock(&f->mu);
	return s;
}

static int f_create(void *ud, const vt_coll_config *cfg, vt_errmsg *err)
{
	struct fake *f = ud;
	pthread_mutex_lock(&f->mu);
	int rc = 0;
	if (f_find(f, cfg->name)) {
		rc = vt_errmsg_set(err, VT_EEXIST, "collection \"%s\" already "
				   "exists", cfg->name);
		goto out;
	}
	struct fcoll *c = NULL;
	for (int i = 0; i < MAXC && !c; i++)
		if (!f->c[i].live)
			c = &f->c[i];
	assert_non_null(c);
	c->cfg = *cfg;
	c->shards = vt_calloc(cfg->shard_count, sizeof *c->shards);
	for (uint32_t i = 0; i < cfg->shard_count && !rc; i++) {
		char d[400];
		snprintf(d, sizeof d, "%s/%u-%s-%u", f->dir, f->seq++, cfg->name,
			 i);
		vt_shard_opts o;
		vt_shard_opts_default(&o);
		o.create = &cfg->shard;
		o.snapshot_entries = 0;
		rc = vt_shard_open(d, &o, &c->shards[i], err);
	}
	c->live = !rc;
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static void f_close(struct fcoll *c)
{
	for (uint32_t i = 0; i < c->cfg.shard_count; i++)
		vt_shard_close(c->shards[i]);
	vt_free(c->shards);
	c->shards = NULL;
	c->live = 0;
}

static int f_drop(void *ud, const char *name, vt_errmsg *err)
{
	struct fake *f = ud;
	pthread_mutex_lock(&f->mu);
	struct fcoll *c = f_find(f, name);
	if (c)
		f_close(c);
	pthread_mutex_unlock(&f->mu);
	return c ? 0 : vt_errmsg_set(err, VT_ENOENT, "no %s", name);
}

static int f_list(void *ud, char ***names, size_t *n, vt_errmsg *err)
{
	(void)err;
	struct fake *f = ud;
	pthread_mutex_lock(&f->mu);
	*names = vt_calloc(MAXC, sizeof **names);
	*n = 0;
	for (int i = 0; i < MAXC; i++)
		if (f->c[i].live)
			(*names)[(*n)++] = vt_strdup(f->c[i].cfg.name);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int f_lookup(void *ud, const char *name, vt_coll_config *cfg,
		    vt_errmsg *err)
{
	struct fake *f = ud;
	pthread_mutex_lock(&f->mu);
	struct fcoll *c = f_find(f, name);
	if (c)
		*cfg = c->cfg;
	pthread_mutex_unlock(&f->mu);
	return c ? 0 : vt_errmsg_set(err, VT_ENOENT, "no %s", name);
}

static int f_write(void *ud, const char *coll, uint32_t shard, const void *cmd,
		   size_t len, uint32_t entries, int validate_only,
		   vt_shard_result *res, vt_errmsg *err)
{
	struct fake *f = ud;
	vt_shard *s = f_shard(f, coll, shard);
	assert_non_null(s);
	assert_true(entries >= 1);
	pthread_mutex_lock(&f->mu);
	if (validate_only)
		f->validates++;
	else
		f->applies++;
	pthread_mutex_unlock(&f->mu);
	return validate_only ? vt_shard_validate(s, cmd, len, err)
			     : vt_shard_apply(s, 0, cmd, len, res, err);
}

/* A filter arrives as text, parsed again here as a worker would. */
static int f_filter(vt_shard *s, const vt_filter *in, vt_filter **out,
		    vt_errmsg *err)
{
	*out = NULL;
	if (!in)
		return 0;
	size_t len;
	const char *src = vt_filter_source(in, &len);
	return vt_filter_parse(src, len, vt_shard_schema(s), out, err);
}

static int f_search(void *ud, const char *coll, uint32_t shard,
		    const vt_shard_query *q, int linearizable,
		    vt_shard_results *out, vt_errmsg *err)
{
	struct fake *f = ud;
	if (f->fail_mask & (1 << shard))
		return vt_errmsg_set(err, VT_ETIMEDOUT, "shard %u did not "
				     "answer in time", shard);
	vt_shard *s = f_shard(f, coll, shard);
	vt_filter *flt;
	int rc = f_filter(s, q->filter, &flt, err);
	if (rc)
		return rc;
	if (linearizable) {
		pthread_mutex_lock(&f->mu);
		f->searches_linearizable++;
		pthread_mutex_unlock(&f->mu);
	}
	vt_shard_query q2 = *q;
	q2.filter = flt;
	rc = vt_shard_search(s, &q2, out, err);
	vt_filter_free(flt);
	return rc;
}

static int f_search_groups(void *ud, const char *coll, uint32_t n,
			   int linearizable, uint32_t *group,
			   uint32_t *n_groups, vt_errmsg *err)
{
	struct fake *f = ud;
	(void)coll, (void)linearizable, (void)err;
	for (uint32_t s = 0; s < n; s++)
		group[s] = f->grouped ? s % 2 : s;
	*n_groups = f->grouped && n > 1 ? 2 : n;
	return 0;
}

static void f_search_many(void *ud, const char *coll, const uint32_t *shards,
			  size_t n, const vt_shard_query *q, int linearizable,
			  vt_shard_results *out, int *rcs, vt_errmsg *errs)
{
	struct fake *f = ud;
	pthread_mutex_lock(&f->mu);
	f->many_calls++;
	f->many_shards += (int)n;
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < n; i++) {
		/* one group is one parity */
		assert_int_equal(shards[i] % 2, shards[0] % 2);
		rcs[i] = f_search(ud, coll, shards[i], q, linearizable, &out[i],
				  &errs[i]);
	}
}

static int f_get(void *ud, const char *coll, uint32_t shard,
		 const char *const *ids, const uint32_t *lens, size_t n, int wp,
		 int wv, vt_shard_results *out, vt_errmsg *err)
{
	return vt_shard_get(f_shard(ud, coll, shard), ids, lens, n, wp, wv, out,
			    err);
}

static int f_scroll(void *ud, const char *coll, uint32_t shard, uint64_t from,
		    uint32_t limit, const vt_filter *fl, int wp, int wv,
		    vt_shard_results *out, uint64_t *next, vt_errmsg *err)
{
	vt_shard *s = f_shard(ud, coll, shard);
	vt_filter *flt;
	int rc = f_filter(s, fl, &flt, err);
	if (!rc)
		rc = vt_shard_scroll(s, from, limit, flt, wp, wv, out, next,
				     err);
	vt_filter_free(flt);
	return rc;
}

static int f_count(void *ud, const char *coll, uint32_t shard,
		   const vt_filter *fl, uint64_t *out, vt_errmsg *err)
{
	vt_shard *s = f_shard(ud, coll, shard);
	vt_filter *flt;
	int rc = f_filter(s, fl, &flt, err);
	if (!rc)
		rc = vt_shard_count(s, flt, out, err);
	vt_filter_free(flt);
	return rc;
}

static int f_status(void *ud, const char *coll, uint32_t shard,
		    vt_shard_status *out, vt_errmsg *err)
{
	(void)err;
	return vt_shard_status_get(f_shard(ud, coll, shard), out);
}

static void f_results_free(void *ud, vt_shard_results *r)
{
	(void)ud;
	vt_shard_results_free(r);
}

/* ---- helpers ----------------------------------------------------------------- */

static void vec_of(uint64_t n, float *v)
{
	uint64_t x = n * 0x9E3779B97F4A7C15ull + 11;
	for (int j = 0; j < DIM; j++) {
		x ^= x >> 31;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 29;
		v[j] = (float)((x >> 40) % 2001) / 1000.0f - 1.0f;
	}
}

static void config_of(vt_coll_config *c, const char *name, uint32_t shards)
{
	vt_coll_config_default(c, name, DIM, VT_METRIC_L2);
	c->shard_count = shards;
	c->shard.ef_construction = 64;
	c->shard.n_fields = 1;
	strcpy(c->shard.fields[0].path, "g");
	c->shard.fields[0].type = VT_PAYLOAD_INTEGER;
}

static void fill(vt_coll *c, uint64_t n)
{
	vt_coll_point *pts = calloc(n, sizeof *pts);
	float *vecs = calloc(n * DIM, sizeof(float));
	char (*ids)[16] = calloc(n, 16);
	char (*pls)[32] = calloc(n, 32);
	for (uint64_t i = 0; i < n; i++) {
		vec_of(i, vecs + i * DIM);
		pts[i].id = ids[i];
		pts[i].id_len = (size_t)snprintf(ids[i], 16, "p%llu",
						 (unsigned long long)i);
		pts[i].vec = vecs + i * DIM;
		pts[i].payload = pls[i];
		pts[i].payload_len = (size_t)snprintf(
			pls[i], 32, "{\"g\":%llu}", (unsigned long long)(i % 5));
	}
	vt_coll_write_result r;
	vt_errmsg e = {{0}};
	if (vt_coll_upsert(c, pts, n, &r, &e))
		fail_msg("upsert: %s", e.msg);
	assert_int_equal(r.upserted, n);
	assert_int_equal(r.created, n);
	free(pts);
	free(vecs);
	free(ids);
	free(pls);
}

static void same_hits(const vt_coll_results *a, const vt_coll_results *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->hits[i].id_len, b->hits[i].id_len);
		assert_memory_equal(a->hits[i].id, b->hits[i].id,
				    a->hits[i].id_len);
		assert_true(a->hits[i].score == b->hits[i].score);
		assert_int_equal(a->hits[i].payload_len, b->hits[i].payload_len);
	}
}

static char g_dir[64];
static struct fake g_fake;
static vt_coll_remote g_remote = {&g_fake,  f_create, f_drop,   f_list,
				  f_lookup, f_write,  f_search, f_get,
				  f_scroll, f_count,  f_status, f_results_free,
				  f_search_groups, f_search_many};

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof g_dir, "/tmp/vt_collr_XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	memset(&g_fake, 0, sizeof g_fake);
	pthread_mutex_init(&g_fake.mu, NULL);
	snprintf(g_fake.dir, sizeof g_fake.dir, "%s/remote", g_dir);
	assert_int_equal(mkdir(g_fake.dir, 0755), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < MAXC; i++)
		if (g_fake.c[i].live)
			f_close(&g_fake.c[i]);
	pthread_mutex_destroy(&g_fake.mu);
	vt_rmtree(g_dir);
	return 0;
}

static void open_both(vt_db **local, vt_db **remote)
{
	vt_db_opts o;
	vt_db_opts_default(&o);
	o.threads = 4;
	o.default_shards = 3;
	o.shard.snapshot_entries = 0;
	vt_errmsg e = {{0}};
	char d[128];
	snprintf(d, sizeof d, "%s/local", g_dir);
	if (vt_db_open(d, &o, local, &e))
		fail_msg("open: %s", e.msg);
	if (vt_db_open_remote(&g_remote, &o, remote, &e))
		fail_msg("open remote: %s", e.msg);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_same_answers(void **state)
{
	(void)state;
	vt_db *ldb, *rdb;
	open_both(&ldb, &rdb);
	vt_coll_config cfg;
	config_of(&cfg, "docs", 4);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_db_create(ldb, &cfg, &e), 0);
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	vt_coll *lc, *rc;
	assert_int_equal(vt_db_get(ldb, "docs", &lc), 0);
	assert_int_equal(vt_db_get(rdb, "docs", &rc), 0);
	/* the defaults a create fills in reached the back end */
	assert_int_equal(vt_coll_config_get(rc)->routing, VT_COLL_ROUTE_RANGE);
	fill(lc, NPTS);
	fill(rc, NPTS);

	/* searches: plain, filtered, with an ef, strong */
	for (int v = 0; v < 4; v++) {
		float q[DIM];
		vec_of(1000 + (uint64_t)v, q);
		vt_coll_query cq;
		vt_coll_query_default(&cq, q, 15);
		vt_filter *lf = NULL, *rf = NULL;
		const char *fj = "{\"must\":[{\"key\":\"g\",\"match\":{\"value\":3}}]}";
		if (v == 1) {
			assert_int_equal(vt_coll_filter_parse(lc, fj, strlen(fj),
							      &lf, &e), 0);
			assert_int_equal(vt_coll_filter_parse(rc, fj, strlen(fj),
							      &rf, &e), 0);
		}
		/* exact: HNSW graphs built by parallel inserts are not
		 * bit-identical between two databases, the plumbing is what
		 * is compared here */
		cq.exact = 1;
		cq.ef = v == 2 ? 40 : 0;
		cq.strong = v == 3;
		vt_coll_results a, b;
		cq.filter = lf;
		assert_int_equal(vt_coll_search(lc, &cq, NULL, NULL, &a, &e), 0);
		cq.filter = rf;
		assert_int_equal(vt_coll_search(rc, &cq, NULL, NULL, &b, &e), 0);
		assert_int_equal(b.n, 15);
		same_hits(&a, &b);
		for (size_t i = 0; v == 1 && i < b.n; i++)
			assert_non_null(memmem(b.hits[i].payload,
					       b.hits[i].payload_len,
					       "\"g\":3", 5));
		vt_coll_results_free(&a);
		vt_coll_results_free(&b);
		vt_filter_free(lf);
		vt_filter_free(rf);
	}
	/* strong searches were linearizable reads of every shard */
	assert_int_equal(g_fake.searches_linearizable, 4);

	/* get, in the order asked, absent ones skipped */
	const char *ids[] = {"p7", "nope", "p399", "p0"};
	size_t lens[] = {2, 4, 4, 2};
	vt_coll_results a, b;
	assert_int_equal(vt_coll_get(lc, ids, lens, 4, 1, 1, &a, &e), 0);
	assert_int_equal(vt_coll_get(rc, ids, lens, 4, 1, 1, &b, &e), 0);
	assert_int_equal(b.n, 3);
	same_hits(&a, &b);
	assert_memory_equal(b.hits[1].id, "p399", 4);
	assert_non_null(b.hits[0].vec);
	vt_coll_results_free(&a);
	vt_coll_results_free(&b);

	/* scroll: the same pages and cursors */
	char ca[32] = "", cb[32] = "";
	size_t seen = 0;
	do {
		char na[32], nb[32];
		assert_int_equal(vt_coll_scroll(lc, NULL, 70, ca, 0, 0, &a, na,
						&e), 0);
		assert_int_equal(vt_coll_scroll(rc, NULL, 70, cb, 0, 0, &b, nb,
						&e), 0);
		same_hits(&a, &b);
		assert_string_equal(na, nb);
		seen += b.n;
		vt_coll_results_free(&a);
		vt_coll_results_free(&b);
		strcpy(ca, na);
		strcpy(cb, nb);
	} while (cb[0]);
	assert_int_equal(seen, NPTS);

	/* count, with a filter that travels as text */
	vt_filter *f;
	const char *fj = "{\"must\":[{\"key\":\"g\",\"range\":{\"gte\":3}}]}";
	assert_int_equal(vt_coll_filter_parse(rc, fj, strlen(fj), &f, &e), 0);
	uint64_t n;
	assert_int_equal(vt_coll_count(rc, f, &n, &e), 0);
	assert_int_equal(n, NPTS * 2 / 5);
	vt_filter_free(f);
	/* a bad filter fails here, before any shard */
	const char *bad = "{\"must\":[{\"key\":\"g\",\"bogus\":{}}]}";
	assert_int_equal(vt_coll_filter_parse(rc, bad, strlen(bad), &f, &e),
			 VT_EINVAL);

	vt_coll_status st;
	assert_int_equal(vt_coll_status_get(rc, &st), 0);
	assert_int_equal(st.points, NPTS);
	assert_int_equal(st.n_shards, 4);
	vt_free(st.shards);

	vt_coll_release(lc);
	vt_coll_release(rc);
	vt_db_close(ldb);
	vt_db_close(rdb);
}

/* Bad input is refused before any shard applies anything: a write that
 * spans shards is validated everywhere first. */
static void test_bad_input_applies_nothing(void **state)
{
	(void)state;
	vt_db *ldb, *rdb;
	open_both(&ldb, &rdb);
	vt_coll_config cfg;
	config_of(&cfg, "w", 3);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	vt_coll *c;
	assert_int_equal(vt_db_get(rdb, "w", &c), 0);
	float v[DIM] = {0};
	float nan_v[DIM] = {0};
	nan_v[3] = 0.0f / 0.0f;
	vt_coll_point pts[8];
	char ids[8][8];
	for (int i = 0; i < 8; i++) {
		snprintf(ids[i], sizeof ids[i], "x%d", i);
		pts[i] = (vt_coll_point){ids[i], strlen(ids[i]),
					 i == 6 ? nan_v : v, NULL, 0};
	}
	vt_coll_write_result r;
	int before = g_fake.applies;
	assert_int_equal(vt_coll_upsert(c, pts, 8, &r, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "points[6]"));
	assert_int_equal(g_fake.applies, before); /* nothing applied */
	assert_true(g_fake.validates > 0);
	uint64_t n;
	assert_int_equal(vt_coll_count(c, NULL, &n, &e), 0);
	assert_int_equal(n, 0);
	pts[6].vec = v;
	assert_int_equal(vt_coll_upsert(c, pts, 8, &r, &e), 0);
	assert_int_equal(r.created, 8);
	/* set_payload on an absent id: refused, nothing written */
	const char *sid[] = {"x1", "ghost"};
	size_t sl[] = {2, 5};
	before = g_fake.applies;
	assert_int_equal(vt_coll_set_payload(c, sid, sl, 2, "{\"g\":1}", 7, 0,
					     &r, &e),
			 VT_ENOENT);
	assert_int_equal(g_fake.applies, before);
	vt_coll_release(c);
	vt_db_close(ldb);
	vt_db_close(rdb);
}

/* The catalog is the back end's: create, duplicate, list, drop, and a
 * collection recreated elsewhere with another config. */
static void test_catalog(void **state)
{
	(void)state;
	vt_db *ldb, *rdb;
	open_both(&ldb, &rdb);
	vt_coll_config cfg;
	config_of(&cfg, "a", 2);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	assert_int_equal(vt_db_create(rdb, &cfg, &e), VT_EEXIST);
	config_of(&cfg, "b", 0); /* the default shard count is filled in */
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	config_of(&cfg, "bad name!", 2);
	assert_int_equal(vt_db_create(rdb, &cfg, &e), VT_EINVAL);
	vt_coll **all;
	size_t n;
	assert_int_equal(vt_db_list(rdb, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(vt_coll_config_get(all[0])->name, "a");
	assert_int_equal(vt_coll_config_get(all[1])->shard_count, 3);
	for (size_t i = 0; i < n; i++)
		vt_coll_release(all[i]);
	vt_free(all);

	/* dropped behind our back: the next get says so */
	vt_coll *c;
	assert_int_equal(vt_db_get(rdb, "a", &c), 0);
	vt_coll_release(c);
	assert_int_equal(f_drop(&g_fake, "a", &e), 0);
	assert_int_equal(vt_db_get(rdb, "a", &c), VT_ENOENT);
	/* recreated elsewhere with 5 shards: the new config is used */
	config_of(&cfg, "a", 5);
	assert_int_equal(f_create(&g_fake, &cfg, &e), 0);
	assert_int_equal(vt_db_get(rdb, "a", &c), 0);
	assert_int_equal(vt_coll_config_get(c)->shard_count, 5);
	vt_coll_release(c);
	assert_int_equal(vt_db_drop(rdb, "b", &e), 0);
	assert_int_equal(vt_db_get(rdb, "b", &c), VT_ENOENT);
	assert_int_equal(vt_db_drop(rdb, "b", &e), VT_ENOENT);
	/* nothing to checkpoint here: the shards are elsewhere */
	assert_int_equal(vt_db_checkpoint(rdb, &e), 0);
	vt_db_close(ldb);
	vt_db_close(rdb);
}

/* A shard that fails: the search fails, unless partial results are
 * allowed: then the other shards answer and the missing one is named;
 * when every shard fails the search fails anyway. */
static void test_partial_results(void **state)
{
	(void)state;
	vt_db *ldb, *rdb;
	open_both(&ldb, &rdb);
	vt_coll_config cfg;
	config_of(&cfg, "p", 3);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	vt_coll *c;
	assert_int_equal(vt_db_get(rdb, "p", &c), 0);
	fill(c, 120);
	float q[DIM];
	vec_of(7, q);
	vt_coll_query cq;
	vt_coll_query_default(&cq, q, 120);
	cq.exact = 1;
	vt_coll_results r;
	g_fake.fail_mask = 1 << 1;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &r, &e), VT_ETIMEDOUT);
	assert_non_null(strstr(e.msg, "shard 1 did not answer"));
	vt_coll_results_free(&r);
	cq.allow_partial = 1;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &r, &e), 0);
	assert_int_equal(r.n_missing, 1);
	assert_int_equal(r.missing[0], 1);
	size_t partial = r.n;
	assert_true(partial > 0 && partial < 120);
	vt_coll_results_free(&r);
	g_fake.fail_mask = 0;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &r, &e), 0);
	assert_int_equal(r.n, 120);
	assert_int_equal(r.n_missing, 0);
	assert_null(r.missing);
	vt_coll_results_free(&r);
	g_fake.fail_mask = 7;
	assert_int_equal(vt_coll_search(c, &cq, NULL, NULL, &r, &e), VT_ETIMEDOUT);
	vt_coll_results_free(&r);
	g_fake.fail_mask = 0;
	vt_coll_release(c);
	vt_db_close(ldb);
	vt_db_close(rdb);
}

static void quiet(void *ud, int level, const char *module, const char *line)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)line;
}

/* A back end that serves several shards per call: the search runs one
 * call per group (here two for four shards), the answers are those of
 * the local database, and a shard that fails inside a group is left out
 * on its own when partial results are allowed. */
static void test_grouped_search(void **state)
{
	(void)state;
	vt_db *ldb, *rdb;
	open_both(&ldb, &rdb);
	vt_coll_config cfg;
	config_of(&cfg, "grp", 4);
	vt_errmsg e = {{0}};
	assert_int_equal(vt_db_create(ldb, &cfg, &e), 0);
	assert_int_equal(vt_db_create(rdb, &cfg, &e), 0);
	vt_coll *lc, *rc;
	assert_int_equal(vt_db_get(ldb, "grp", &lc), 0);
	assert_int_equal(vt_db_get(rdb, "grp", &rc), 0);
	fill(lc, NPTS);
	fill(rc, NPTS);
	g_fake.grouped = 1;
	float q[DIM];
	vec_of(77, q);
	vt_coll_query cq;
	vt_coll_query_default(&cq, q, 12);
	cq.exact = 1;
	vt_coll_results a, b;
	assert_int_equal(vt_coll_search(lc, &cq, NULL, NULL, &a, &e), 0);
	assert_int_equal(vt_coll_search(rc, &cq, NULL, NULL, &b, &e), 0);
	same_hits(&a, &b);
	assert_int_equal(g_fake.many_calls, 2);
	assert_int_equal(g_fake.many_shards, 4);
	vt_coll_results_free(&b);
	/* shard 1 fails inside its group: left out, named */
	g_fake.fail_mask = 1 << 1;
	cq.allow_partial = 1;
	assert_int_equal(vt_coll_search(rc, &cq, NULL, NULL, &b, &e), 0);
	assert_int_equal(b.n_missing, 1);
	assert_int_equal(b.missing[0], 1);
	vt_coll_results_free(&b);
	cq.allow_partial = 0;
	assert_int_not_equal(vt_coll_search(rc, &cq, NULL, NULL, &b, &e), 0);
	assert_non_null(strstr(e.msg, "shard 1"));
	vt_coll_results_free(&b);
	g_fake.fail_mask = 0;
	g_fake.grouped = 0;
	vt_coll_results_free(&a);
	vt_coll_release(lc);
	vt_coll_release(rc);
	vt_db_close(ldb);
	vt_db_close(rdb);
}

int main(void)
{
	vt_log_set_handler(quiet, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_answers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_applies_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grouped_search, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_partial_results, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
