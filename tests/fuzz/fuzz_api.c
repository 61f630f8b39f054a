/* fuzz_api.c: libFuzzer target for what a client's bytes reach after the
 * transport: the REST route matcher, the JSON -> request message mapping
 * (lib/rpc/pbjson.c) and the protobuf unpacking of every API method's
 * request, then the method itself (lib/api) on a small live database. The
 * first byte picks the method, the second the path (JSON, protobuf, or a
 * REST path). Nothing may crash or leak; a request that decodes from JSON
 * must encode back to JSON that decodes to the same message (compared by
 * protobuf bytes). Collections are not created or dropped by fuzz input
 * (that would only fill the disk); one fixed collection takes the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "base/file.h"
#include "base/log.h"
#include "fuzz.h"
#include "rpc/json.h"
#include "rpc/pbjson.h"
#include "../../services/vectron/rest.h"

static vt_db *g_db;
static vt_api *g_api;
static char g_dir[64];

static void quiet(void *ud, int level, const char *module, const char *line)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)line;
}

static void cleanup(void)
{
	vt_api_destroy(g_api);
	vt_db_close(g_db);
	vt_rmtree(g_dir);
}

static void init(void)
{
	if (g_api)
		return;
	vt_log_set_handler(quiet, NULL);
	snprintf(g_dir, sizeof g_dir, "/tmp/vt_fuzz_api_XXXXXX");
	if (!mkdtemp(g_dir))
		abort();
	vt_db_opts o;
	vt_db_opts_default(&o);
	o.threads = 1;
	o.default_shards = 2;
	o.shard.index_threads = 1;
	o.shard.background = 0;
	vt_errmsg e;
	if (vt_db_open(g_dir, &o, &g_db, &e) || vt_api_create(g_db, NULL, &g_api))
		abort();
	vt_coll_config c;
	vt_coll_config_default(&c, "c", 4, VT_METRIC_COSINE);
	c.shard.n_fields = 1;
	strcpy(c.shard.fields[0].path, "k");
	c.shard.fields[0].type = VT_PAYLOAD_KEYWORD;
	if (vt_db_create(g_db, &c, &e))
		abort();
	atexit(cleanup);
}

static int allowed(const vt_api_method *m)
{
	return strcmp(m->name, "CreateCollection") &&
	       strcmp(m->name, "DeleteCollection");
}

static int ignore_stream(void *ud, const ProtobufCMessage *msg)
{
	(void)ud;
	(void)msg;
	return 0;
}

static void run(const vt_api_method *m, ProtobufCMessage *msg, vt_arena *a)
{
	if (!allowed(m))
		return;
	vt_api_ctx cx = {a, 0, ignore_stream, NULL};
	ProtobufCMessage *resp;
	vt_errmsg e;
	int rc = vt_api_call(g_api, m, &cx, msg, &resp, &e);
	if (rc && !e.msg[0])
		abort(); /* every error says what was wrong */
	if (!rc && resp) {
		/* the response must pack and encode */
		size_t n = protobuf_c_message_get_packed_size(resp);
		uint8_t *b = malloc(n + 1);
		protobuf_c_message_pack(resp, b);
		free(b);
		vt_buf out;
		vt_buf_init(&out, 64u << 20);
		vt_json_writer w;
		vt_json_w_init(&w, &out);
		vt_pbjson_encode(resp, &w);
		if (vt_json_w_finish(&w))
			abort();
		vt_buf_free(&out);
	}
}

static uint8_t *packed(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n + 1);
	protobuf_c_message_pack(m, b);
	return b;
}

static void via_json(const vt_api_method *m, const uint8_t *d, size_t len)
{
	vt_json_doc *doc;
	vt_errmsg e;
	if (vt_json_parse(d, len, NULL, &doc, NULL, &e))
		return;
	vt_arena *a = vt_arena_create(0);
	ProtobufCMessage *msg;
	if (!vt_pbjson_decode(vt_json_root(doc), m->input, a, &msg, &e)) {
		/* round trip: encode, decode, same protobuf bytes */
		vt_buf out;
		vt_buf_init(&out, 64u << 20);
		vt_json_writer w;
		vt_json_w_init(&w, &out);
		vt_pbjson_encode(msg, &w);
		if (vt_json_w_finish(&w))
			abort();
		vt_json_doc *doc2;
		ProtobufCMessage *msg2;
		if (vt_json_parse(out.data, out.len, NULL, &doc2, NULL, &e) ||
		    vt_pbjson_decode(vt_json_root(doc2), m->input, a, &msg2, &e))
			abort();
		size_t n1, n2;
		uint8_t *p1 = packed(msg, &n1), *p2 = packed(msg2, &n2);
		if (n1 != n2 || memcmp(p1, p2, n1))
			abort();
		free(p1);
		free(p2);
		vt_json_doc_free(doc2);
		vt_buf_free(&out);
		run(m, msg, a);
	} else if (!e.msg[0]) {
		abort();
	}
	vt_arena_destroy(a);
	vt_json_doc_free(doc);
}

static void via_protobuf(const vt_api_method *m, const uint8_t *d, size_t len)
{
	vt_arena *a = vt_arena_create(64u << 20);
	ProtobufCAllocator al;
	vt_api_allocator(a, &al);
	ProtobufCMessage *msg = protobuf_c_message_unpack(m->input, &al, len, d);
	if (msg)
		run(m, msg, a);
	vt_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	init();
	if (len < 2)
		return 0;
	size_t n;
	const vt_api_method *all = vt_api_methods(&n);
	const vt_api_method *m = &all[data[0] % n];
	switch (data[1] % 3) {
	case 0:
		via_json(m, data + 2, len - 2);
		break;
	case 1:
		via_protobuf(m, data + 2, len - 2);
		break;
	default: {
		char path[1024];
		size_t k = len - 2 < sizeof path - 1 ? len - 2 : sizeof path - 1;
		memcpy(path, data + 2, k);
		path[k] = '\0';
		static const char *verbs[] = {"GET", "POST", "PUT", "DELETE"};
		vt_rest_match mt;
		int r = vt_rest_match_route(verbs[data[0] % 4], path, &mt);
		if (r != 0 && r != 400 && r != 404 && r != 405)
			abort();
		if (!r && (!mt.route || mt.n < 0 || mt.n > VT_REST_MAX_PARAMS))
			abort();
		break;
	}
	}
	return 0;
}

static int seed(vt_fuzz_emit_fn emit, void *ud, const char *method, int how,
		const char *text)
{
	size_t n;
	const vt_api_method *all = vt_api_methods(&n);
	uint8_t buf[2048];
	for (size_t i = 0; i < n; i++)
		if (method ? !strcmp(all[i].name, method) : i == 0) {
			buf[0] = (uint8_t)i;
			buf[1] = (uint8_t)how;
			size_t l = strlen(text);
			memcpy(buf + 2, text, l);
			return emit(ud, buf, l + 2);
		}
	return 0;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	static const char *const json[][2] = {
		{"Upsert", "{\"collection\":\"c\",\"points\":[{\"id\":\"a\",\"vector\":[1,2,3,4],\"payload\":{\"k\":\"x\"}},{\"id\":\"b\",\"vector\":[0,1,0,0]}]}"},
		{"Search", "{\"collection\":\"c\",\"vector\":[1,0,0,0],\"top_k\":3,\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"x\"}}]},\"with_vector\":true}"},
		{"SearchStream", "{\"collection\":\"c\",\"vector\":[1,0,0,0],\"consistency\":\"strong\"}"},
		{"SearchBatch", "{\"collection\":\"c\",\"searches\":[{\"vector\":[1,0,0,0]},{\"vector\":[0,0,1,0],\"exact\":true}]}"},
		{"Get", "{\"collection\":\"c\",\"ids\":[\"a\",\"b\",\"z\"],\"with_payload\":false}"},
		{"Delete", "{\"collection\":\"c\",\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"y\"}}]}}"},
		{"SetPayload", "{\"collection\":\"c\",\"ids\":[\"a\"],\"payload\":{\"k\":\"y\"},\"merge\":true}"},
		{"Scroll", "{\"collection\":\"c\",\"limit\":1,\"cursor\":\"0.0\"}"},
		{"Count", "{\"collection\":\"c\",\"filter\":{}}"},
		{"GetCollection", "{\"name\":\"c\"}"},
		{"ListCollections", "{}"},
		{"Health", "{}"},
		{"CreateCollection", "{\"name\":\"n\",\"dimension\":3,\"distance\":\"dot\",\"hnsw\":{\"m\":8}}"},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof json / sizeof json[0] && !rc; i++)
		rc = seed(emit, ud, json[i][0], 0, json[i][1]);
	static const char *const paths[] = {
		"/v1/collections/c/points/search", "/v1/collections/c%20d/points/x%2Fy",
		"/v1/collections/%zz", "/metrics", "/v1/collections//points",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !rc; i++)
		rc = seed(emit, ud, NULL, 2, paths[i]);
	/* protobuf: a packed SearchRequest */
	Vectron__V1__SearchRequest s = VECTRON__V1__SEARCH_REQUEST__INIT;
	float v[4] = {1, 0, 0, 0};
	s.collection = "c";
	s.n_vector = 4;
	s.vector = v;
	s.has_top_k = 1;
	s.top_k = 2;
	size_t n;
	uint8_t *p = packed(&s.base, &n);
	uint8_t buf[256];
	const vt_api_method *sm = vt_api_method_find("Search");
	buf[0] = (uint8_t)sm->index;
	buf[1] = 1;
	memcpy(buf + 2, p, n);
	free(p);
	if (!rc)
		rc = emit(ud, buf, n + 2);
	return rc;
}
