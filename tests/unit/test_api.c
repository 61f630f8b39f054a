/* test_api.c: lib/api's method table over decoded messages: every method
 * runs, defaults apply when fields are absent, bad requests are refused
 * with the field named and the right status, SearchStream sends partials
 * then the final result, and /metrics counts what happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "base/file.h"
#include "base/log.h"

#define DIM 4

static char *g_dir;
static vt_db *g_db;
static vt_api *g_api;

static int setup(void **state)
{
	(void)state;
	g_dir = strdup("/tmp/vt_api_XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	vt_db_opts o;
	vt_db_opts_default(&o);
	o.default_shards = 2;
	vt_errmsg e;
	assert_int_equal(vt_db_open(g_dir, &o, &g_db, &e), 0);
	assert_int_equal(vt_api_create(g_db, NULL, &g_api), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vt_api_destroy(g_api);
	vt_db_close(g_db);
	vt_rmtree(g_dir);
	free(g_dir);
	return 0;
}

/* Packs `req` and unpacks it again (as a transport would), then calls. */
static int call(const char *name, const ProtobufCMessage *req,
		vt_arena **arena, ProtobufCMessage **resp, vt_errmsg *e)
{
	const vt_api_method *m = vt_api_method_find(name);
	assert_non_null(m);
	assert_ptr_equal(req->descriptor, m->input);
	size_t n = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(n + 1);
	protobuf_c_message_pack(req, buf);
	*arena = vt_arena_create(0);
	ProtobufCAllocator al;
	vt_api_allocator(*arena, &al);
	ProtobufCMessage *in = protobuf_c_message_unpack(m->input, &al, n, buf);
	free(buf);
	assert_non_null(in);
	vt_api_ctx cx = {*arena, 0, NULL, NULL};
	return vt_api_call(g_api, m, &cx, in, resp, e);
}

static void create(const char *name, Vectron__V1__Distance d)
{
	Vectron__V1__CreateCollectionRequest r =
		VECTRON__V1__CREATE_COLLECTION_REQUEST__INIT;
	Vectron__V1__PayloadField f = VECTRON__V1__PAYLOAD_FIELD__INIT;
	Vectron__V1__PayloadField *fs[] = {&f};
	f.path = "color";
	f.has_type = 1;
	f.type = VECTRON__V1__FIELD_TYPE__KEYWORD;
	r.name = (char *)name;
	r.has_dimension = 1;
	r.dimension = DIM;
	r.has_distance = 1;
	r.distance = d;
	r.n_indexed_fields = 1;
	r.indexed_fields = fs;
	vt_arena *a;
	ProtobufCMessage *resp;
	vt_errmsg e;
	int rc = call("CreateCollection", &r.base, &a, &resp, &e);
	if (rc)
		fail_msg("create: %s", e.msg);
	Vectron__V1__CollectionInfo *ci = (void *)resp;
	assert_string_equal(ci->name, name);
	assert_int_equal(ci->shard_count, 2);
	assert_int_equal(ci->hnsw->m, 16);
	assert_true(ci->quantization->rescore);
	assert_int_equal(ci->status->points, 0);
	vt_arena_destroy(a);
}

static void upsert(const char *coll, int n0, int n)
{
	Vectron__V1__UpsertRequest r = VECTRON__V1__UPSERT_REQUEST__INIT;
	Vectron__V1__Point *pts = calloc((size_t)n, sizeof *pts);
	Vectron__V1__Point **pp = calloc((size_t)n, sizeof *pp);
	float *v = calloc((size_t)n * DIM, sizeof *v);
	char (*ids)[16] = calloc((size_t)n, 16);
	char (*pl)[48] = calloc((size_t)n, 48);
	for (int i = 0; i < n; i++) {
		vectron__v1__point__init(&pts[i]);
		snprintf(ids[i], 16, "p%d", n0 + i);
		snprintf(pl[i], 48, "{\"color\":\"%s\",\"i\":%d}",
			 (n0 + i) % 2 ? "red" : "blue", n0 + i);
		for (int j = 0; j < DIM; j++)
			v[i * DIM + j] = (float)((n0 + i) * (j + 1) % 17) + 1;
		pts[i].id = ids[i];
		pts[i].n_vector = DIM;
		pts[i].vector = v + i * DIM;
		pts[i].payload = pl[i];
		pp[i] = &pts[i];
	}
	r.collection = (char *)coll;
	r.n_points = (size_t)n;
	r.points = pp;
	vt_arena *a;
	ProtobufCMessage *resp;
	vt_errmsg e;
	if (call("Upsert", &r.base, &a, &resp, &e))
		fail_msg("upsert: %s", e.msg);
	assert_int_equal(((Vectron__V1__UpsertResponse *)resp)->upserted, n);
	vt_arena_destroy(a);
	free(pts);
	free(pp);
	free(v);
	free(ids);
	free(pl);
}

static void expect_error(const char *method, const ProtobufCMessage *req,
			 int http, const char *needle)
{
	vt_arena *a;
	ProtobufCMessage *resp;
	vt_errmsg e;
	int rc = call(method, req, &a, &resp, &e);
	if (!rc || vt_api_status_of(rc).http != http || !strstr(e.msg, needle))
		fail_msg("%s: got %d (%s) \"%s\", want %d \"%s\"", method,
			 vt_api_status_of(rc).http, vt_api_status_of(rc).name,
			 e.msg, http, needle);
	assert_null(resp);
	vt_arena_destroy(a);
}

static void test_methods(void **state)
{
	(void)state;
	create("c1", VECTRON__V1__DISTANCE__COSINE);
	upsert("c1", 0, 30);
	vt_arena *a;
	ProtobufCMessage *resp;
	vt_errmsg e;

	/* search with defaults: top_k 10, payload on, vector off */
	Vectron__V1__SearchRequest s = VECTRON__V1__SEARCH_REQUEST__INIT;
	float q[DIM] = {1, 2, 3, 4};
	s.collection = "c1";
	s.n_vector = DIM;
	s.vector = q;
	assert_int_equal(call("Search", &s.base, &a, &resp, &e), 0);
	Vectron__V1__SearchResponse *sr = (void *)resp;
	assert_int_equal(sr->n_results, 10);
	assert_non_null(sr->results[0]->payload);
	assert_int_equal(sr->results[0]->n_vector, 0);
	for (size_t i = 1; i < sr->n_results; i++)
		assert_true(sr->results[i - 1]->score >= sr->results[i]->score);
	assert_true(sr->results[0]->score <= 1.0001f);
	vt_arena_destroy(a);

	/* filter + with_payload false */
	s.filter = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}";
	s.has_with_payload = 1;
	s.with_payload = 0;
	s.has_top_k = 1;
	s.top_k = 100;
	assert_int_equal(call("Search", &s.base, &a, &resp, &e), 0);
	sr = (void *)resp;
	assert_int_equal(sr->n_results, 15);
	assert_null(sr->results[0]->payload);
	vt_arena_destroy(a);

	/* count, scroll, get, set payload, delete */
	Vectron__V1__CountRequest cr = VECTRON__V1__COUNT_REQUEST__INIT;
	cr.collection = "c1";
	assert_int_equal(call("Count", &cr.base, &a, &resp, &e), 0);
	assert_int_equal(((Vectron__V1__CountResponse *)resp)->count, 30);
	vt_arena_destroy(a);
	Vectron__V1__ScrollRequest sc = VECTRON__V1__SCROLL_REQUEST__INIT;
	sc.collection = "c1";
	sc.has_limit = 1;
	sc.limit = 20;
	assert_int_equal(call("Scroll", &sc.base, &a, &resp, &e), 0);
	Vectron__V1__ScrollResponse *sp = (void *)resp;
	assert_int_equal(sp->n_points, 20);
	assert_true(sp->next_cursor[0] != '\0');
	char cursor[32];
	strcpy(cursor, sp->next_cursor);
	vt_arena_destroy(a);
	sc.cursor = cursor;
	assert_int_equal(call("Scroll", &sc.base, &a, &resp, &e), 0);
	sp = (void *)resp;
	assert_int_equal(sp->n_points, 10);
	assert_string_equal(sp->next_cursor, "");
	vt_arena_destroy(a);

	char *ids[] = {"p3", "p4"};
	Vectron__V1__SetPayloadRequest spr = VECTRON__V1__SET_PAYLOAD_REQUEST__INIT;
	spr.collection = "c1";
	spr.n_ids = 2;
	spr.ids = ids;
	spr.payload = "{\"color\":\"green\"}";
	spr.has_merge = spr.merge = 1;
	assert_int_equal(call("SetPayload", &spr.base, &a, &resp, &e), 0);
	vt_arena_destroy(a);
	Vectron__V1__GetRequest gr = VECTRON__V1__GET_REQUEST__INIT;
	gr.collection = "c1";
	gr.n_ids = 2;
	gr.ids = ids;
	gr.has_with_vector = gr.with_vector = 1;
	assert_int_equal(call("Get", &gr.base, &a, &resp, &e), 0);
	Vectron__V1__GetResponse *gp = (void *)resp;
	assert_int_equal(gp->n_points, 2);
	assert_string_equal(gp->points[0]->payload, "{\"color\":\"green\",\"i\":3}");
	assert_int_equal(gp->points[1]->n_vector, DIM);
	vt_arena_destroy(a);
	Vectron__V1__DeleteRequest dr = VECTRON__V1__DELETE_REQUEST__INIT;
	dr.collection = "c1";
	dr.filter = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"green\"}}]}";
	assert_int_equal(call("Delete", &dr.base, &a, &resp, &e), 0);
	assert_int_equal(((Vectron__V1__DeleteResponse *)resp)->deleted, 2);
	vt_arena_destroy(a);

	/* list + get collection + health */
	Vectron__V1__ListCollectionsRequest lr =
		VECTRON__V1__LIST_COLLECTIONS_REQUEST__INIT;
	assert_int_equal(call("ListCollections", &lr.base, &a, &resp, &e), 0);
	Vectron__V1__ListCollectionsResponse *lp = (void *)resp;
	assert_int_equal(lp->n_collections, 1);
	assert_int_equal(lp->collections[0]->status->points, 28);
	vt_arena_destroy(a);
	Vectron__V1__HealthRequest hr = VECTRON__V1__HEALTH_REQUEST__INIT;
	assert_int_equal(call("Health", &hr.base, &a, &resp, &e), 0);
	assert_string_equal(((Vectron__V1__HealthResponse *)resp)->status, "ok");
	vt_arena_destroy(a);
}

static void test_errors(void **state)
{
	(void)state;
	create("c2", VECTRON__V1__DISTANCE__EUCLID);
	upsert("c2", 0, 5);
	Vectron__V1__CreateCollectionRequest cr =
		VECTRON__V1__CREATE_COLLECTION_REQUEST__INIT;
	cr.name = "c2";
	cr.has_dimension = 1;
	cr.dimension = DIM;
	expect_error("CreateCollection", &cr.base, 400, "distance: required");
	cr.has_distance = 1;
	cr.distance = VECTRON__V1__DISTANCE__DOT;
	expect_error("CreateCollection", &cr.base, 409, "already exists");
	cr.name = "has space";
	expect_error("CreateCollection", &cr.base, 400, "name");

	Vectron__V1__SearchRequest s = VECTRON__V1__SEARCH_REQUEST__INIT;
	float q[DIM + 1] = {1, 2, 3, 4, 5};
	s.collection = "nope";
	s.n_vector = DIM;
	s.vector = q;
	expect_error("Search", &s.base, 404, "collection \"nope\" not found");
	s.collection = "c2";
	s.n_vector = DIM + 1;
	expect_error("Search", &s.base, 400, "vector: 5 values");
	s.n_vector = DIM;
	q[2] = NAN;
	expect_error("Search", &s.base, 400, "vector[2]: not a finite number");
	q[2] = 3;
	s.has_top_k = 1;
	s.top_k = 20000;
	expect_error("Search", &s.base, 400, "top_k");
	s.top_k = 5;
	s.filter = "{\"must\":[{\"key\":\"x\",\"rnge\":{}}]}";
	expect_error("Search", &s.base, 400, "filter");
	s.filter = NULL;

	Vectron__V1__UpsertRequest u = VECTRON__V1__UPSERT_REQUEST__INIT;
	Vectron__V1__Point p = VECTRON__V1__POINT__INIT, *pp[] = {&p};
	u.collection = "c2";
	u.n_points = 1;
	u.points = pp;
	p.id = "x";
	p.n_vector = DIM;
	p.vector = q;
	p.payload = "\"not an object\"";
	expect_error("Upsert", &u.base, 400, "points[0]");
	p.payload = NULL;
	p.id = "";
	expect_error("Upsert", &u.base, 400, "points[0].id: required");

	Vectron__V1__DeleteRequest d = VECTRON__V1__DELETE_REQUEST__INIT;
	d.collection = "c2";
	expect_error("Delete", &d.base, 400, "exactly one");

	/* batch: the second search is bad, nothing runs */
	Vectron__V1__SearchBatchRequest b = VECTRON__V1__SEARCH_BATCH_REQUEST__INIT;
	Vectron__V1__SearchRequest s1 = VECTRON__V1__SEARCH_REQUEST__INIT,
				   s2 = VECTRON__V1__SEARCH_REQUEST__INIT;
	Vectron__V1__SearchRequest *ss[] = {&s1, &s2};
	s1.n_vector = DIM;
	s1.vector = q;
	s2.n_vector = 2;
	s2.vector = q;
	b.collection = "c2";
	b.n_searches = 2;
	b.searches = ss;
	expect_error("SearchBatch", &b.base, 400, "searches[1].vector");
	s2.n_vector = DIM;
	vt_arena *a;
	ProtobufCMessage *resp;
	vt_errmsg e;
	assert_int_equal(call("SearchBatch", &b.base, &a, &resp, &e), 0);
	Vectron__V1__SearchBatchResponse *br = (void *)resp;
	assert_int_equal(br->n_responses, 2);
	assert_int_equal(br->responses[1]->n_results, 5);
	/* euclid: score is a distance, ascending */
	assert_true(br->responses[1]->results[0]->score <=
		    br->responses[1]->results[1]->score);
	vt_arena_destroy(a);

	/* metrics saw OK and errors */
	vt_buf m;
	vt_buf_init(&m, 1u << 20);
	assert_int_equal(vt_api_metrics(g_api, &m), 0);
	vt_buf_put_u8(&m, 0);
	const char *t = (const char *)m.data;
	assert_non_null(strstr(t, "vectron_requests_total{method=\"Search\",code=\"NOT_FOUND\"} 1"));
	assert_non_null(strstr(t, "vectron_requests_total{method=\"SearchBatch\",code=\"OK\"} 1"));
	assert_non_null(strstr(t, "vectron_request_seconds_bucket{method=\"Upsert\",le=\"+Inf\"}"));
	assert_non_null(strstr(t, "vectron_collection_points{collection=\"c2\"} 5"));
	vt_buf_free(&m);
}

struct stream_log {
	int n;
	uint32_t last_done, total;
	size_t last_results;
};

static int on_msg(void *ud, const ProtobufCMessage *msg)
{
	struct stream_log *l = ud;
	const Vectron__V1__SearchResponse *r = (const void *)msg;
	l->n++;
	l->last_done = r->shards_done;
	l->total = r->shards_total;
	l->last_results = r->n_results;
	return 0;
}

static void test_stream(void **state)
{
	(void)state;
	create("c3", VECTRON__V1__DISTANCE__DOT);
	upsert("c3", 0, 40);
	Vectron__V1__SearchRequest s = VECTRON__V1__SEARCH_REQUEST__INIT;
	float q[DIM] = {1, 1, 1, 1};
	s.collection = "c3";
	s.n_vector = DIM;
	s.vector = q;
	s.has_top_k = 1;
	s.top_k = 7;
	const vt_api_method *m = vt_api_method_find("SearchStream");
	assert_true(m->streaming);
	struct stream_log log = {0};
	vt_arena *a = vt_arena_create(0);
	vt_api_ctx cx = {a, 0, on_msg, &log};
	ProtobufCMessage *resp;
	vt_errmsg e;
	assert_int_equal(vt_api_call(g_api, m, &cx, &s.base, &resp, &e), 0);
	assert_null(resp);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.last_done, 2);
	assert_int_equal(log.total, 2);
	assert_int_equal(log.last_results, 7);
	vt_arena_destroy(a);
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
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
