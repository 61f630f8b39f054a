/* test_shard.c: unit tests for lib/shard: the command codec, apply (every
 * command type, idempotency, all-or-nothing rejection of bad input), sync
 * and async indexing with back-pressure and read-your-writes, search with
 * filters against exact filtered search, index snapshots and WAL replay on
 * reopen, rebuild from a damaged or foreign snapshot, snapshot/restore
 * streams, and the read-only mode after a disk error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "shard/shard.h"
#include "shard/shard_int.h"

#define DIM 16

static char *tmpdir(void)
{
	char *d = strdup("/tmp/vt_shard_XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmrf(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

/* A deterministic vector for point n: distinct directions, finite. */
static void vec_of(uint64_t n, float *v)
{
	uint64_t x = n * 0x9E3779B97F4A7C15ull + 1;
	for (int j = 0; j < DIM; j++) {
		x ^= x >> 31;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 29;
		v[j] = (float)((x >> 40) % 2001) / 1000.0f - 1.0f;
	}
}

static vt_shard *open_shard(const char *dir, const vt_shard_config *cfg,
			    int background)
{
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = cfg;
	o.background = background;
	o.snapshot_entries = 0;
	vt_shard *s;
	vt_errmsg e = {{0}};
	int rc = vt_shard_open(dir, &o, &s, &e);
	if (rc)
		fail_msg("open %s: %s", dir, e.msg);
	return s;
}

static void default_cfg(vt_shard_config *c)
{
	vt_shard_config_default(c, DIM, VT_METRIC_L2);
	c->ef_construction = 64;
	c->n_fields = 2;
	strcpy(c->fields[0].path, "cat");
	c->fields[0].type = VT_PAYLOAD_INTEGER;
	strcpy(c->fields[1].path, "color");
	c->fields[1].type = VT_PAYLOAD_KEYWORD;
}

static const char *colors[] = {"red", "green", "blue", "black"};

/* Encodes an upsert of points n0..n0+cnt-1: id "p<n>", payload
 * {"cat": n % 10, "color": colors[n % 4], "n": n}. */
static void enc_upsert(vt_buf *b, uint64_t n0, uint64_t cnt)
{
	assert_int_equal(vt_cmd_enc_begin(b, VT_CMD_UPSERT, 0, DIM), 0);
	for (uint64_t n = n0; n < n0 + cnt; n++) {
		char id[32], pl[96];
		float v[DIM];
		vec_of(n, v);
		int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)n);
		int pn = snprintf(pl, sizeof pl,
				  "{\"cat\":%llu,\"color\":\"%s\",\"n\":%llu}",
				  (unsigned long long)(n % 10), colors[n % 4],
				  (unsigned long long)n);
		assert_int_equal(vt_cmd_enc_upsert(b, id, (size_t)il, v, DIM, pl,
						   (size_t)pn),
				 0);
	}
	assert_int_equal(vt_cmd_enc_end(b, (uint32_t)cnt), 0);
}

static void apply_ok(vt_shard *s, uint64_t index, const vt_buf *b,
		     vt_shard_result *res)
{
	vt_errmsg e = {{0}};
	int rc = vt_shard_apply(s, index, b->data, b->len, res, &e);
	if (rc)
		fail_msg("apply %llu: %s (%s)", (unsigned long long)index, e.msg,
			 vt_errname(rc));
}

static void upsert_range(vt_shard *s, uint64_t index, uint64_t n0,
			 uint64_t cnt)
{
	vt_buf b;
	vt_buf_init(&b, 64u << 20);
	enc_upsert(&b, n0, cnt);
	apply_ok(s, index, &b, NULL);
	vt_buf_free(&b);
}

static vt_shard_status status(vt_shard *s)
{
	vt_shard_status st;
	assert_int_equal(vt_shard_status_get(s, &st), 0);
	return st;
}

/* Searches for point n's own vector; returns the top hit's id number or
 * -1. */
static long top1(vt_shard *s, uint64_t n)
{
	float v[DIM];
	vec_of(n, v);
	vt_shard_query q;
	vt_shard_query_default(&q, v, 1);
	vt_shard_results r;
	vt_errmsg e = {{0}};
	int rc = vt_shard_search(s, &q, &r, &e);
	if (rc)
		fail_msg("search: %s", e.msg);
	long got = r.n ? strtol(r.hits[0].id + 1, NULL, 10) : -1;
	vt_shard_results_free(&r);
	return got;
}

/* ---- the codec ------------------------------------------------------------*/

static void test_cmd_roundtrip(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 5, 3);
	vt_cmd c;
	vt_errmsg e;
	assert_int_equal(vt_cmd_decode(b.data, b.len, NULL, &c, &e), 0);
	assert_int_equal(c.type, VT_CMD_UPSERT);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.dim, DIM);
	assert_memory_equal(c.points[1].id, "p6", 2);
	float v[DIM], w[DIM];
	vec_of(7, v);
	vt_cmd_vector(&c, 2, w);
	assert_memory_equal(v, w, sizeof v);
	assert_non_null(strstr(c.points[0].payload, "\"n\":5"));
	vt_cmd_release(&c);

	assert_int_equal(vt_cmd_enc_begin(&b, VT_CMD_DELETE_FILTER, 0, 0), 0);
	assert_int_equal(vt_cmd_enc_filter(&b, "{}", 2), 0);
	assert_int_equal(vt_cmd_enc_end(&b, 0), 0);
	assert_int_equal(vt_cmd_decode(b.data, b.len, NULL, &c, &e), 0);
	assert_int_equal(c.type, VT_CMD_DELETE_FILTER);
	assert_int_equal(c.filter_len, 2);
	vt_cmd_release(&c);
	vt_buf_free(&b);
}

/* Every proper prefix of a valid command is refused, never read past. */
static void test_cmd_truncations_refused(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 0, 4);
	for (size_t len = 0; len < b.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, b.data, len);
		vt_cmd c;
		vt_errmsg e = {{0}};
		int rc = vt_cmd_decode(copy, len, NULL, &c, &e);
		assert_true(rc < 0);
		assert_true(e.msg[0] != '\0');
		free(copy);
	}
	/* trailing bytes */
	vt_buf_put_u8(&b, 0);
	vt_cmd c;
	vt_errmsg e;
	assert_int_equal(vt_cmd_decode(b.data, b.len, NULL, &c, &e),
			 VT_ECORRUPT);
	assert_non_null(strstr(e.msg, "trailing"));
	/* version, type, flags, count */
	b.data[0] = 2;
	assert_int_equal(vt_cmd_decode(b.data, b.len - 1, NULL, &c, &e),
			 VT_EVERSION);
	b.data[0] = 1;
	b.data[1] = 9;
	assert_int_equal(vt_cmd_decode(b.data, b.len - 1, NULL, &c, &e),
			 VT_EINVAL);
	b.data[1] = VT_CMD_UPSERT;
	b.data[2] = 1; /* MERGE is for set_payload only */
	assert_int_equal(vt_cmd_decode(b.data, b.len - 1, NULL, &c, &e),
			 VT_EINVAL);
	b.data[2] = 0;
	vt_cmd_limits lim;
	vt_cmd_limits_default(&lim);
	lim.max_points = 3;
	assert_int_equal(vt_cmd_decode(b.data, b.len - 1, &lim, &c, &e),
			 VT_ELIMIT);
	assert_non_null(strstr(e.msg, "max 3"));
	/* a count the bytes cannot hold is refused before allocating */
	b.data[4] = b.data[5] = b.data[6] = b.data[7] = 0xff;
	lim.max_points = UINT32_MAX;
	assert_int_equal(vt_cmd_decode(b.data, b.len - 1, &lim, &c, &e),
			 VT_ECORRUPT);
	vt_buf_free(&b);

	/* an empty id */
	vt_buf_init(&b, 1024);
	assert_int_equal(vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0), 0);
	assert_int_equal(vt_cmd_enc_id(&b, "", 0), 0);
	assert_int_equal(vt_cmd_enc_id(&b, "abc", 3), 0);
	assert_int_equal(vt_cmd_enc_end(&b, 2), 0);
	assert_int_equal(vt_cmd_decode(b.data, b.len, NULL, &c, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "entry 0: empty id"));
	vt_buf_free(&b);
}

/* ---- apply ----------------------------------------------------------------*/

static void test_upsert_search_get(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 0, 200);
	vt_shard_result res;
	apply_ok(s, 1, &b, &res);
	assert_int_equal(res.upserted, 200);
	assert_int_equal(res.created, 200);
	assert_false(res.noop);
	/* the same index again, and an older one: no-ops */
	apply_ok(s, 1, &b, &res);
	assert_true(res.noop);
	vt_shard_status st = status(s);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.indexed, 1);
	assert_int_equal(st.points, 200);
	assert_int_equal(st.index_points, 200);
	for (uint64_t n = 0; n < 200; n += 17)
		assert_int_equal(top1(s, n), (long)n);

	/* replace 10 points with new vectors: ids keep, counts hold */
	enc_upsert(&b, 1000, 1);
	vt_cmd c;
	assert_int_equal(vt_cmd_decode(b.data, b.len, NULL, &c, NULL), 0);
	vt_cmd_release(&c);
	upsert_range(s, 2, 190, 20); /* 190..209: 10 replaced, 10 new */
	st = status(s);
	assert_int_equal(st.points, 210);
	assert_int_equal(st.index_points, 210);

	/* results carry id, score, payload and vector on request */
	float v[DIM];
	vec_of(42, v);
	vt_shard_query q;
	vt_shard_query_default(&q, v, 5);
	q.with_vector = 1;
	vt_shard_results r;
	vt_errmsg e;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), 0);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.hits[0].id, "p42");
	assert_true(r.hits[0].dist < 1e-6f);
	assert_true(fabsf(r.hits[1].score - sqrtf(r.hits[1].dist)) < 1e-5f);
	for (size_t i = 1; i < r.n; i++)
		assert_true(r.hits[i - 1].dist <= r.hits[i].dist);
	assert_string_equal(r.hits[0].payload,
			    "{\"cat\":2,\"color\":\"blue\",\"n\":42}");
	assert_memory_equal(r.hits[0].vec, v, sizeof v);
	vt_shard_results_free(&r);

	/* get by ids, absent ones skipped, order kept */
	const char *ids[] = {"p3", "nope", "p1"};
	uint32_t lens[] = {2, 4, 2};
	assert_int_equal(vt_shard_get(s, ids, lens, 3, 1, 0, &r, &e), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.hits[0].id, "p3");
	assert_string_equal(r.hits[1].id, "p1");
	assert_null(r.hits[0].vec);
	vt_shard_results_free(&r);
	vt_buf_free(&b);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* Bad commands change nothing, consume their index, name the field. */
static void test_rejections(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 10);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_errmsg e;
	vt_shard_result res;
	float v[DIM], nan_v[DIM];
	vec_of(99, v);
	vec_of(98, nan_v);
	nan_v[3] = NAN;
	uint64_t index = 2;

	struct {
		const char *what, *want;
		int rc;
	} cases[] = {
		{"dim", "dimension 4, the collection has 16", VT_EINVAL},
		{"nan", "points[1].vector[3]: not a finite number", VT_EINVAL},
		{"payload", "points[0]: payload: must be a JSON object",
		 VT_EINVAL},
		{"json", "points[0]: payload: invalid JSON", VT_EINVAL},
		{"filter", "unknown", VT_EINVAL},
		{"filter-type", "cat", VT_EINVAL},
		{"setpayload-missing", "no point with id \"ghost\"", VT_ENOENT},
		{"too-many", "max 2 per command", VT_ELIMIT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *w = cases[i].what;
		if (!strcmp(w, "dim")) {
			vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, 4);
			vt_cmd_enc_upsert(&b, "x", 1, v, 4, NULL, 0);
			vt_cmd_enc_end(&b, 1);
		} else if (!strcmp(w, "nan")) {
			vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, DIM);
			vt_cmd_enc_upsert(&b, "x", 1, v, DIM, NULL, 0);
			vt_cmd_enc_upsert(&b, "y", 1, nan_v, DIM, NULL, 0);
			vt_cmd_enc_end(&b, 2);
		} else if (!strcmp(w, "payload")) {
			vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, DIM);
			vt_cmd_enc_upsert(&b, "x", 1, v, DIM, "[1]", 3);
			vt_cmd_enc_end(&b, 1);
		} else if (!strcmp(w, "json")) {
			vt_cmd_enc_begin(&b, VT_CMD_SET_PAYLOAD, 0, 0);
			vt_cmd_enc_payload(&b, "p1", 2, "{\"a\":", 5);
			vt_cmd_enc_end(&b, 1);
		} else if (!strcmp(w, "filter")) {
			const char *f = "{\"must\":[{\"key\":\"cat\","
					"\"range\":{\"gtx\":1}}]}";
			vt_cmd_enc_begin(&b, VT_CMD_DELETE_FILTER, 0, 0);
			vt_cmd_enc_filter(&b, f, strlen(f));
			vt_cmd_enc_end(&b, 0);
		} else if (!strcmp(w, "filter-type")) {
			/* cat is an integer field: a string match is wrong */
			const char *f = "{\"must\":[{\"key\":\"cat\","
					"\"match\":{\"value\":\"x\"}}]}";
			vt_cmd_enc_begin(&b, VT_CMD_DELETE_FILTER, 0, 0);
			vt_cmd_enc_filter(&b, f, strlen(f));
			vt_cmd_enc_end(&b, 0);
		} else if (!strcmp(w, "setpayload-missing")) {
			vt_cmd_enc_begin(&b, VT_CMD_SET_PAYLOAD, 0, 0);
			vt_cmd_enc_payload(&b, "p1", 2, "{\"z\":1}", 7);
			vt_cmd_enc_payload(&b, "ghost", 5, "{\"z\":1}", 7);
			vt_cmd_enc_end(&b, 2);
		} else {
			enc_upsert(&b, 500, 3);
			s->opts.limits.max_points = 2;
		}
		vt_errmsg_clear(&e);
		int rc = vt_shard_apply(s, index, b.data, b.len, &res, &e);
		s->opts.limits.max_points = 10000;
		if (rc != cases[i].rc || !strstr(e.msg, cases[i].want))
			fail_msg("%s: got %s \"%s\", want %s \"%s\"", w,
				 vt_errname(rc), e.msg, vt_errname(cases[i].rc),
				 cases[i].want);
		vt_shard_status st = status(s);
		assert_int_equal(st.applied, index); /* consumed */
		assert_int_equal(st.points, 10);     /* nothing stored */
		assert_int_equal(st.index_points, 10);
		index++;
	}
	/* set_payload's partial work was rolled back: p1 kept its payload */
	const char *ids[] = {"p1"};
	uint32_t lens[] = {2};
	vt_shard_results r;
	assert_int_equal(vt_shard_get(s, ids, lens, 1, 1, 0, &r, &e), 0);
	assert_null(strstr(r.hits[0].payload, "\"z\""));
	vt_shard_results_free(&r);
	/* validate() says the same without applying */
	vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, 4);
	vt_cmd_enc_upsert(&b, "x", 1, v, 4, NULL, 0);
	vt_cmd_enc_end(&b, 1);
	assert_int_equal(vt_shard_validate(s, b.data, b.len, &e), VT_EINVAL);
	assert_int_equal(status(s).applied, index - 1);
	vt_buf_free(&b);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

static void test_deletes_and_payloads(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 100);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	vt_shard_result res;
	vt_errmsg e;

	vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0);
	vt_cmd_enc_id(&b, "p5", 2);
	vt_cmd_enc_id(&b, "p6", 2);
	vt_cmd_enc_id(&b, "p5000", 5);
	vt_cmd_enc_end(&b, 3);
	apply_ok(s, 2, &b, &res);
	assert_int_equal(res.deleted, 2);
	assert_int_equal(res.missing, 1);
	assert_int_equal(status(s).points, 98);
	assert_int_equal(status(s).index_points, 98);
	assert_int_not_equal(top1(s, 5), 5);

	/* delete by an indexed field (cat == 3): 10 points minus none gone */
	const char *f = "{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":3}}]}";
	vt_cmd_enc_begin(&b, VT_CMD_DELETE_FILTER, 0, 0);
	vt_cmd_enc_filter(&b, f, strlen(f));
	vt_cmd_enc_end(&b, 0);
	apply_ok(s, 3, &b, &res);
	assert_int_equal(res.deleted, 10);
	/* ... and by a field with no index (n >= 90): 90..99 minus 93 */
	f = "{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":90}}]}";
	vt_cmd_enc_begin(&b, VT_CMD_DELETE_FILTER, 0, 0);
	vt_cmd_enc_filter(&b, f, strlen(f));
	vt_cmd_enc_end(&b, 0);
	apply_ok(s, 4, &b, &res);
	assert_int_equal(res.deleted, 9);
	assert_int_equal(status(s).points, 79);
	assert_int_equal(status(s).index_points, 79);

	/* set payload: replace, then merge */
	vt_cmd_enc_begin(&b, VT_CMD_SET_PAYLOAD, 0, 0);
	vt_cmd_enc_payload(&b, "p1", 2, "{\"color\":\"pink\"}", 16);
	vt_cmd_enc_end(&b, 1);
	apply_ok(s, 5, &b, &res);
	assert_int_equal(res.updated, 1);
	vt_cmd_enc_begin(&b, VT_CMD_SET_PAYLOAD, VT_CMD_MERGE, 0);
	vt_cmd_enc_payload(&b, "p1", 2, "{\"cat\":7}", 9);
	vt_cmd_enc_end(&b, 1);
	apply_ok(s, 6, &b, &res);
	const char *ids[] = {"p1"};
	uint32_t lens[] = {2};
	vt_shard_results r;
	assert_int_equal(vt_shard_get(s, ids, lens, 1, 1, 0, &r, &e), 0);
	assert_string_equal(r.hits[0].payload, "{\"cat\":7,\"color\":\"pink\"}");
	vt_shard_results_free(&r);
	/* the payload index followed: color pink finds exactly p1 */
	vt_filter *flt;
	const char *fq = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":"
			 "\"pink\"}},{\"key\":\"cat\",\"match\":{\"value\":7}}]}";
	assert_int_equal(vt_filter_parse(fq, strlen(fq), vt_shard_schema(s),
					 &flt, &e),
			 0);
	float v[DIM];
	vec_of(50, v);
	vt_shard_query q;
	vt_shard_query_default(&q, v, 10);
	q.filter = flt;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.hits[0].id, "p1");
	assert_int_equal(r.strategy, VT_PLAN_SCAN);
	vt_shard_results_free(&r);
	vt_filter_free(flt);
	vt_buf_free(&b);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* ---- filtered search quality ------------------------------------------------ */

static double filtered_recall(vt_shard *s, const char *fjson, int *strategy)
{
	vt_filter *f;
	vt_errmsg e;
	assert_int_equal(vt_filter_parse(fjson, strlen(fjson),
					 vt_shard_schema(s), &f, &e),
			 0);
	double hit = 0, total = 0;
	for (uint64_t qn = 0; qn < 40; qn++) {
		float v[DIM];
		vec_of(100000 + qn, v);
		vt_shard_query q;
		vt_shard_query_default(&q, v, 10);
		q.filter = f;
		q.ef = 64;
		vt_shard_results a, x;
		assert_int_equal(vt_shard_search(s, &q, &a, &e), 0);
		*strategy = a.strategy;
		q.exact = 1;
		assert_int_equal(vt_shard_search(s, &q, &x, &e), 0);
		for (size_t i = 0; i < x.n; i++)
			for (size_t j = 0; j < a.n; j++)
				if (a.hits[j].label == x.hits[i].label) {
					hit++;
					break;
				}
		total += (double)x.n;
		vt_shard_results_free(&a);
		vt_shard_results_free(&x);
	}
	vt_filter_free(f);
	return total ? hit / total : 1.0;
}

static void test_filtered_recall(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	for (uint64_t i = 0; i < 20; i++)
		upsert_range(s, i + 1, i * 500, 500);
	int strat;
	/* 50%: colors red|green, broad: graph search */
	double r = filtered_recall(
		s,
		"{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[\"red\","
		"\"green\"]}}]}",
		&strat);
	assert_int_equal(strat, VT_PLAN_GRAPH);
	assert_true(r >= 0.95);
	/* 10% */
	r = filtered_recall(s,
			    "{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":"
			    "4}}]}",
			    &strat);
	assert_true(r >= 0.95);
	/* 1%: selective, exact scan */
	r = filtered_recall(s,
			    "{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":100}},"
			    "{\"key\":\"cat\",\"match\":{\"value\":1}}]}",
			    &strat);
	assert_int_equal(strat, VT_PLAN_SCAN);
	assert_true(r >= 0.999);
	/* a filter on a field with no index, broad: graph + payload
	 * look-ups */
	r = filtered_recall(s,
			    "{\"must_not\":[{\"key\":\"n\",\"range\":{\"lt\":"
			    "2000}}]}",
			    &strat);
	assert_int_equal(strat, VT_PLAN_GRAPH);
	assert_true(r >= 0.95);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* ---- async indexing ----------------------------------------------------------*/

static void test_async_backpressure_and_ryw(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	cfg.index_mode = VT_INDEX_ASYNC;
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.queue_max = 150;
	o.queue_wait_ms = 50;
	o.snapshot_entries = 0;
	vt_shard *s;
	vt_errmsg e;
	assert_int_equal(vt_shard_open(d, &o, &s, &e), 0);
	/* Hold the indexer off: the queue fills, then writes fail fast. */
	pthread_mutex_lock(&s->idx_mu);
	upsert_range(s, 1, 0, 100);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 100, 100);
	vt_shard_result res;
	int rc = vt_shard_apply(s, 2, b.data, b.len, &res, &e);
	assert_int_equal(rc, VT_EOVERLOAD);
	assert_non_null(strstr(e.msg, "queue full"));
	vt_shard_status st = status(s);
	assert_int_equal(st.applied, 1); /* not consumed: retry later */
	assert_int_equal(st.lag, 100);
	assert_int_equal(st.indexed, 0);
	/* read-your-writes times out while the index lags */
	float v[DIM];
	vec_of(3, v);
	vt_shard_query q;
	vt_shard_query_default(&q, v, 1);
	q.min_index = 1;
	q.wait_ms = 20;
	vt_shard_results r;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), VT_ETIMEDOUT);
	vt_shard_results_free(&r);
	pthread_mutex_unlock(&s->idx_mu);
	/* once the indexer has caught up (it may take longer than the 50 ms
	 * a write waits, under ASan on a busy machine), the retry goes
	 * through and a waiting search sees it */
	assert_int_equal(vt_shard_wait_indexed(s, 1, 10000), 0);
	apply_ok(s, 2, &b, &res);
	vec_of(150, v);
	q.min_index = 2;
	q.wait_ms = 10000;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), 0);
	assert_string_equal(r.hits[0].id, "p150");
	vt_shard_results_free(&r);
	assert_int_equal(vt_shard_wait_indexed(s, 2, 10000), 0);
	st = status(s);
	assert_int_equal(st.lag, 0);
	assert_int_equal(st.index_points, 200);
	/* a deleted point disappears from results at once, index or not */
	pthread_mutex_lock(&s->idx_mu);
	vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0);
	vt_cmd_enc_id(&b, "p150", 4);
	vt_cmd_enc_end(&b, 1);
	apply_ok(s, 3, &b, &res);
	q.min_index = 0;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), 0);
	assert_true(r.n == 0 || strcmp(r.hits[0].id, "p150"));
	vt_shard_results_free(&r);
	pthread_mutex_unlock(&s->idx_mu);
	vt_buf_free(&b);
	vt_shard_close(s); /* drains the queue */
	s = open_shard(d, NULL, 1);
	assert_int_equal(status(s).index_points, 199);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* ---- persistence -------------------------------------------------------------*/

static void test_reopen_snapshot_wal_rebuild(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 300);
	vt_errmsg e;
	assert_int_equal(vt_shard_checkpoint(s, &e), 0);
	vt_shard_status st = status(s);
	assert_int_equal(st.snapshot_index, 1);
	assert_int_equal(st.wal_entries, 0); /* trimmed */
	upsert_range(s, 2, 300, 50);
	vt_buf b;
	vt_buf_init(&b, 1024);
	vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0);
	vt_cmd_enc_id(&b, "p7", 2);
	vt_cmd_enc_end(&b, 1);
	apply_ok(s, 3, &b, NULL);
	vt_buf_free(&b);
	assert_int_equal(status(s).wal_entries, 51);
	vt_shard_close(s);

	/* snapshot + WAL replay */
	s = open_shard(d, NULL, 0);
	st = status(s);
	assert_int_equal(st.applied, 3);
	assert_int_equal(st.snapshot_index, 1);
	assert_int_equal(st.index_points, 349);
	assert_int_equal(top1(s, 320), 320);
	assert_int_not_equal(top1(s, 7), 7);
	vt_shard_close(s);

	/* a damaged snapshot: rebuilt from the store */
	char path[512];
	snprintf(path, sizeof path, "%s/index.snap", d);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 200, SEEK_SET);
	fputc(0x5a, fp);
	fseek(fp, 1000, SEEK_SET);
	fputc(0xa5, fp);
	fclose(fp);
	s = open_shard(d, NULL, 0);
	st = status(s);
	assert_int_equal(st.snapshot_index, 0);
	assert_int_equal(st.index_points, 349);
	assert_int_equal(top1(s, 11), 11);
	assert_int_equal(vt_shard_checkpoint(s, &e), 0);
	vt_shard_close(s);

	/* a snapshot of another shard: refused by identity, rebuilt */
	char *d2 = tmpdir();
	vt_shard *o = open_shard(d2, &cfg, 0);
	upsert_range(o, 1, 5000, 349);
	upsert_range(o, 2, 6000, 1);
	upsert_range(o, 3, 7000, 1);
	assert_int_equal(vt_shard_checkpoint(o, &e), 0);
	vt_shard_close(o);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "cp '%s/index.snap' '%s/index.snap'", d2, d);
	assert_int_equal(system(cmd), 0);
	s = open_shard(d, NULL, 0);
	assert_int_equal(status(s).snapshot_index, 0);
	assert_int_equal(top1(s, 100), 100);
	vt_shard_close(s);

	/* no snapshot at all */
	unlink(path);
	s = open_shard(d, NULL, 0);
	assert_int_equal(status(s).index_points, 349);
	vt_shard_close(s);

	/* the stored config wins; another dim is refused */
	vt_shard_config other = cfg;
	other.dim = 3;
	vt_shard_opts opt;
	vt_shard_opts_default(&opt);
	opt.create = &other;
	assert_int_equal(vt_shard_open(d, &opt, &s, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dimension 16"));
	opt.create = NULL;
	char *d3 = tmpdir();
	rmrf(d3);
	assert_int_equal(vt_shard_open(d3, &opt, &s, &e), VT_ENOENT);
	free(d3);
	rmrf(d2);
	free(d2);
	rmrf(d);
	free(d);
}

/* ---- snapshot / restore streams -------------------------------------------------*/

static int mem_write(void *ud, const void *p, size_t n)
{
	return vt_buf_append(ud, p, n);
}

struct mem_src {
	const uint8_t *p;
	size_t len, off, step;
};

static int mem_read(void *ud, void *buf, size_t cap, size_t *n)
{
	struct mem_src *m = ud;
	size_t take = m->len - m->off;
	if (take > cap)
		take = cap;
	if (take > m->step)
		take = m->step;
	memcpy(buf, m->p + m->off, take);
	m->off += take;
	*n = take;
	return 0;
}

static void test_snapshot_restore(void **state)
{
	(void)state;
	char *d = tmpdir(), *d2 = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 400);
	vt_errmsg e;
	vt_buf snap;
	vt_buf_init(&snap, 256u << 20);
	uint64_t at;
	assert_int_equal(vt_shard_snapshot(s, mem_write, &snap, &at, &e), 0);
	assert_int_equal(at, 1);
	upsert_range(s, 2, 400, 10); /* after the snapshot: not in it */

	/* the target has other data; a damaged stream leaves it alone */
	vt_shard *t = open_shard(d2, &cfg, 0);
	upsert_range(t, 1, 9000, 5);
	vt_shard_close(t);
	for (int k = 0; k < 3; k++) {
		vt_buf bad;
		vt_buf_init(&bad, snap.len);
		vt_buf_append(&bad, snap.data, snap.len);
		size_t at_byte = k == 0 ? 20 : k == 1 ? bad.len / 2 : bad.len - 3;
		bad.data[at_byte] ^= 0x40;
		struct mem_src src = {bad.data, bad.len, 0, 100000};
		assert_int_not_equal(vt_shard_restore(d2, mem_read, &src, &e), 0);
		vt_buf_free(&bad);
		t = open_shard(d2, NULL, 0);
		assert_int_equal(status(t).points, 5);
		vt_shard_close(t);
	}
	struct mem_src cut = {snap.data, snap.len - 10, 0, 7777};
	assert_int_equal(vt_shard_restore(d2, mem_read, &cut, &e), VT_ECORRUPT);

	/* the whole stream, in odd-sized reads */
	struct mem_src src = {snap.data, snap.len, 0, 7777};
	assert_int_equal(vt_shard_restore(d2, mem_read, &src, &e), 0);
	t = open_shard(d2, NULL, 0);
	vt_shard_status st = status(t);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.points, 400);
	assert_int_equal(st.index_points, 400);
	assert_int_equal(st.snapshot_index, 1); /* index came along */
	assert_int_equal(top1(t, 123), 123);
	/* it goes on from there like the source */
	upsert_range(t, 2, 400, 10);
	assert_int_equal(top1(t, 405), 405);
	vt_shard_close(t);
	vt_buf_free(&snap);
	vt_shard_close(s);
	rmrf(d);
	rmrf(d2);
	free(d);
	free(d2);
}

/* ---- disk errors -------------------------------------------------------------*/

static void test_disk_error_readonly(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 50);
	vt_store_inject_fault(s->st, 1, ENOSPC);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	enc_upsert(&b, 50, 10);
	vt_errmsg e;
	assert_int_equal(vt_shard_apply(s, 2, b.data, b.len, NULL, &e),
			 VT_ENOSPC);
	assert_int_equal(vt_shard_apply(s, 2, b.data, b.len, NULL, &e),
			 VT_EREADONLY);
	vt_shard_status st = status(s);
	assert_true(st.readonly);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.points, 50);
	assert_int_equal(st.index_points, 50);
	/* reads go on */
	assert_int_equal(top1(s, 20), 20);
	assert_int_equal(vt_shard_clear_readonly(s, 0, &e), 0);
	apply_ok(s, 2, &b, NULL);
	assert_int_equal(status(s).points, 60);
	vt_buf_free(&b);
	vt_shard_close(s);
	s = open_shard(d, NULL, 0);
	assert_int_equal(status(s).points, 60);
	assert_int_equal(top1(s, 55), 55);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* Background thread: snapshots come by themselves after enough changes. */
static void test_background_snapshots(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	cfg.index_mode = VT_INDEX_ASYNC;
	cfg.metric = VT_METRIC_COSINE;
	cfg.quant = VT_QUANT_INT8;
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.snapshot_entries = 500;
	vt_shard *s;
	vt_errmsg e;
	assert_int_equal(vt_shard_open(d, &o, &s, &e), 0);
	for (uint64_t i = 0; i < 10; i++)
		upsert_range(s, i + 1, i * 100, 100);
	assert_int_equal(vt_shard_wait_indexed(s, 10, 20000), 0);
	for (int i = 0; i < 200 && status(s).snapshot_index < 5; i++)
		usleep(50000);
	assert_true(status(s).snapshot_index >= 5);
	assert_int_equal(top1(s, 777), 777);
	vt_shard_close(s);
	s = open_shard(d, NULL, 1);
	assert_int_equal(status(s).index_points, 1000);
	assert_int_equal(top1(s, 999), 999);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}


/* ---- scroll and count ------------------------------------------------------- */

static void test_scroll_count(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 250);
	vt_errmsg e;
	uint64_t n;
	assert_int_equal(vt_shard_count(s, NULL, &n, &e), 0);
	assert_int_equal(n, 250);
	const char *fj[] = {
		/* indexed, exact from the payload index */
		"{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":3}}]}",
		/* not indexed: payloads read */
		"{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":100,\"lt\":137}}]}",
		/* mixed */
		"{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}},"
		"{\"key\":\"n\",\"range\":{\"lt\":50}}]}",
	};
	uint64_t want[] = {25, 37, 13};
	for (int k = 0; k < 3; k++) {
		vt_filter *f;
		assert_int_equal(vt_filter_parse(fj[k], strlen(fj[k]),
						 vt_shard_schema(s), &f, &e),
				 0);
		assert_int_equal(vt_shard_count(s, f, &n, &e), 0);
		assert_int_equal(n, want[k]);
		/* scroll in pages of 7 sees each match once, in label order */
		uint64_t from = 0, seen = 0, last = 0;
		do {
			vt_shard_results r;
			uint64_t next;
			assert_int_equal(vt_shard_scroll(s, from, 7, f, 1, 0, &r,
							 &next, &e),
					 0);
			for (size_t i = 0; i < r.n; i++) {
				assert_true(seen == 0 || r.hits[i].label > last);
				last = r.hits[i].label;
			}
			seen += r.n;
			assert_true(next == 0 || r.n == 7);
			vt_shard_results_free(&r);
			from = next;
		} while (from);
		assert_int_equal(seen, want[k]);
		vt_filter_free(f);
	}
	/* unfiltered, with a delete in between: the cursor goes on */
	vt_shard_results r;
	uint64_t next;
	assert_int_equal(vt_shard_scroll(s, 0, 100, NULL, 0, 1, &r, &next, &e), 0);
	assert_int_equal(r.n, 100);
	assert_null(r.hits[0].payload);
	assert_non_null(r.hits[0].vec);
	vt_shard_results_free(&r);
	vt_buf b;
	vt_buf_init(&b, 1024);
	vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0);
	vt_cmd_enc_id(&b, "p150", 4);
	vt_cmd_enc_end(&b, 1);
	apply_ok(s, 2, &b, NULL);
	vt_buf_free(&b);
	assert_int_equal(vt_shard_scroll(s, next, 1000, NULL, 1, 0, &r, &next,
					 &e),
			 0);
	assert_int_equal(r.n, 149);
	assert_int_equal(next, 0);
	vt_shard_results_free(&r);
	assert_int_equal(vt_shard_scroll(s, 0, 0, NULL, 1, 0, &r, &next, &e),
			 VT_EINVAL);
	vt_shard_close(s);
	rmrf(d);
	free(d);
}

/* A vector whose norm is too small to scale by 1/|v| in float would be
 * stored (or searched) as infinities under cosine: refused, not indexed. */
static void test_cosine_tiny_vectors(void **state)
{
	(void)state;
	char *d = tmpdir();
	vt_shard_config cfg;
	default_cfg(&cfg);
	cfg.metric = VT_METRIC_COSINE;
	vt_shard *s = open_shard(d, &cfg, 0);
	upsert_range(s, 1, 0, 20);
	float v[DIM] = {0};
	v[1] = 4.2e-44f; /* a denormal: |v|^2 is > 0 in double */
	v[0] = -0.0f;
	vt_buf b;
	vt_buf_init(&b, 1u << 16);
	vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, DIM);
	vt_cmd_enc_upsert(&b, "tiny", 4, v, DIM, NULL, 0);
	vt_cmd_enc_end(&b, 1);
	vt_errmsg e;
	assert_int_equal(vt_shard_apply(s, 2, b.data, b.len, NULL, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "too close to zero"));
	vt_shard_query q;
	vt_shard_query_default(&q, v, 3);
	vt_shard_results r;
	assert_int_equal(vt_shard_search(s, &q, &r, &e), VT_EINVAL);
	vt_shard_results_free(&r);
	assert_int_equal(status(s).index_points, 20);
	vt_buf_free(&b);
	vt_shard_close(s);
	rmrf(d);
	free(d);
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
		cmocka_unit_test(test_cmd_roundtrip),
		cmocka_unit_test(test_cmd_truncations_refused),
		cmocka_unit_test(test_upsert_search_get),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_deletes_and_payloads),
		cmocka_unit_test(test_filtered_recall),
		cmocka_unit_test(test_async_backpressure_and_ryw),
		cmocka_unit_test(test_reopen_snapshot_wal_rebuild),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_disk_error_readonly),
		cmocka_unit_test(test_background_snapshots),
		cmocka_unit_test(test_scroll_count),
		cmocka_unit_test(test_cosine_tiny_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
