/* test_payload.c: unit tests for lib/payload: payload validation and the
 * canonical dump, every filter operator and its errors, the payload index
 * and planner against brute-force evaluation on random payloads and
 * filters, and filtered-search recall with lib/hnsw against exact search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "hnsw/hnsw.h"
#include "payload/payload.h"

/* ---- helpers ------------------------------------------------------------------ */

static vt_payload *P(const char *json)
{
	vt_payload *p = NULL;
	vt_errmsg e;
	int rc = vt_payload_parse(json, strlen(json), NULL, &p, &e);
	if (rc)
		fprintf(stderr, "payload %s: %s\n", json, e.msg);
	assert_int_equal(rc, 0);
	return p;
}

static vt_filter *F(const char *json, const vt_payload_schema *s)
{
	vt_filter *f = NULL;
	vt_errmsg e;
	int rc = vt_filter_parse(json, strlen(json), s, &f, &e);
	if (rc)
		fprintf(stderr, "filter %s: %s\n", json, e.msg);
	assert_int_equal(rc, 0);
	/* the source text comes back as given (a gateway forwards it) */
	size_t len;
	const char *src = vt_filter_source(f, &len);
	assert_int_equal(len, strlen(json));
	assert_memory_equal(src, json, len);
	assert_int_equal(src[len], '\0');
	return f;
}

/* Does `payload` pass `filter`? */
static int M(const char *filter, const char *payload)
{
	vt_filter *f = F(filter, NULL);
	vt_payload *p = P(payload);
	int r = vt_filter_match(f, p);
	vt_filter_free(f);
	vt_payload_free(p);
	return r;
}

/* Parses a bad payload and checks code and message fragment. */
static void bad_payload(const char *json, size_t len, const vt_payload_limits *lim,
			int code, const char *frag)
{
	vt_payload *p = (vt_payload *)1;
	vt_errmsg e = {{0}};
	int rc = vt_payload_parse(json, len, lim, &p, &e);
	if (rc != code || !strstr(e.msg, frag))
		fprintf(stderr, "payload %.60s: rc %d msg '%s', want %d '%s'\n", json,
			rc, e.msg, code, frag);
	assert_int_equal(rc, code);
	assert_null(p);
	assert_non_null(strstr(e.msg, frag));
}

static void bad_filter(const char *json, const vt_payload_schema *s, int code,
		       const char *msg)
{
	vt_filter *f = (vt_filter *)1;
	vt_errmsg e = {{0}};
	int rc = vt_filter_parse(json, strlen(json), s, &f, &e);
	if (rc != code || !strstr(e.msg, msg))
		fprintf(stderr, "filter %s: rc %d msg '%s', want %d '%s'\n", json, rc,
			e.msg, code, msg);
	assert_int_equal(rc, code);
	assert_null(f);
	assert_non_null(strstr(e.msg, msg));
}

/* ---- payloads ----------------------------------------------------------------- */

static void test_payload_errors(void **state)
{
	(void)state;
	bad_payload("[1,2]", 5, NULL, VT_EINVAL, "must be a JSON object, got an array");
	bad_payload("3", 1, NULL, VT_EINVAL, "got an integer");
	bad_payload("\"s\"", 3, NULL, VT_EINVAL, "got a string");
	bad_payload("null", 4, NULL, VT_EINVAL, "got null");
	bad_payload("", 0, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":1", 6, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":1} x", 9, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":NaN}", 9, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":Infinity}", 14, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":1e999}", 11, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":99999999999999999999}", 26, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":1,\"a\":2}", 13, NULL, VT_EINVAL, "duplicate");
	bad_payload("{\"a\":\"\xff\"}", 8, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":\"\xc3\"}", 8, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":\"\\u0000\"}", 14, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":\"\\ud800\"}", 14, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{'a':1}", 7, NULL, VT_EINVAL, "invalid JSON");
	bad_payload("{\"a\":1,}", 8, NULL, VT_EINVAL, "invalid JSON");

	/* Depth: the top object is level 1. */
	vt_payload_limits lim;
	vt_payload_limits_default(&lim);
	char deep[128];
	size_t n = 0;
	for (int i = 0; i < 16; i++) {
		memcpy(deep + n, "{\"a\":", 5);
		n += 5;
	}
	deep[n++] = '1';
	for (int i = 0; i < 16; i++)
		deep[n++] = '}';
	vt_payload *p;
	assert_int_equal(vt_payload_parse(deep, n, &lim, &p, NULL), 0);
	vt_payload_free(p);
	lim.max_depth = 15;
	bad_payload(deep, n, &lim, VT_ELIMIT, "nesting deeper than 15");
	bad_payload("{\"a\":[[1]]}", 11, &(vt_payload_limits){1024, 2, 10}, VT_ELIMIT,
		    "nesting");

	/* Size and keys. */
	vt_payload_limits_default(&lim);
	size_t big = lim.max_bytes + 1;
	char *s = malloc(big);
	memset(s, ' ', big);
	s[0] = '{';
	s[big - 1] = '}';
	bad_payload(s, big, &lim, VT_ELIMIT, "the limit is 65536");
	assert_int_equal(vt_payload_parse(s, big - 1, &lim, &p, NULL), VT_EINVAL);
	memcpy(s + big - 3, "}}", 2); /* still invalid; fine */
	free(s);
	bad_payload("{\"a\":{\"b\":1,\"c\":2}}", 19, &(vt_payload_limits){1024, 16, 2},
		    VT_ELIMIT, "more than 2 keys");

	/* Good ones, including unicode and big integers. */
	const char *good[] = {"{}", "{\"a\":null}", "{\"é\":\"ü😀\"}",
			      "{\"x\":-9223372036854775808,\"y\":1.5e300}",
			      " {\"a\":[1,\"x\",{\"b\":[]}]} "};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		vt_payload_free(P(good[i]));
}

static void dump_eq(const char *in, const char *want)
{
	vt_payload *p = P(in);
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	assert_int_equal(vt_payload_dump(p, &b), 0);
	if (b.len != strlen(want) || memcmp(b.data, want, b.len))
		fprintf(stderr, "dump %s: got %.*s\n", in, (int)b.len, b.data);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	/* The dump re-reads to the same dump. */
	vt_payload *q;
	assert_int_equal(vt_payload_parse((char *)b.data, b.len, NULL, &q, NULL), 0);
	vt_buf c;
	vt_buf_init(&c, 1 << 20);
	assert_int_equal(vt_payload_dump(q, &c), 0);
	assert_int_equal(c.len, b.len);
	assert_memory_equal(c.data, b.data, b.len);
	vt_buf_free(&b);
	vt_buf_free(&c);
	vt_payload_free(p);
	vt_payload_free(q);
}

static void test_payload_dump(void **state)
{
	(void)state;
	dump_eq("{ \"b\" : 1, \"a\" : {\"y\":[1, 2.5, \"x\"], \"x\":null} }",
		"{\"a\":{\"x\":null,\"y\":[1,2.5,\"x\"]},\"b\":1}");
	dump_eq("{\"r\":0.1}", "{\"r\":0.10000000000000001}");
	dump_eq("{\"u\":\"\\u00e9\\n\"}", "{\"u\":\"\xc3\xa9\\n\"}");
	dump_eq("{}", "{}");
	/* The cap of the buffer is honoured. */
	vt_payload *p = P("{\"a\":\"0123456789\"}");
	vt_buf b;
	vt_buf_init(&b, 8);
	assert_int_equal(vt_payload_dump(p, &b), VT_ELIMIT);
	vt_buf_free(&b);
	vt_payload_free(p);
	assert_int_equal(vt_payload_empty(&p), 0);
	vt_payload_free(p);
}

/* ---- filters -------------------------------------------------------------------- */

static void test_filter_operators(void **state)
{
	(void)state;
	const char *pl = "{\"color\":\"red\",\"n\":3,\"ok\":true,\"price\":2.5,"
			 "\"tags\":[\"a\",\"b\"],\"nums\":[1,5],\"none\":null,"
			 "\"empty\":[],\"meta\":{\"size\":\"L\",\"dims\":{\"w\":10}},"
			 "\"items\":[{\"k\":\"x\",\"q\":1},{\"k\":\"y\",\"q\":7}]}";
	/* match value: string, integer, bool */
	assert_true(M("{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"blue\"}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"re\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":3}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":4}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":\"3\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":true}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":false}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":true}}]}", pl));
	/* any (in) and except (not in) */
	assert_true(M("{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[\"blue\",\"red\"]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[\"blue\"]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[]}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"n\",\"match\":{\"any\":[9,3,3]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"n\",\"match\":{\"any\":[9]}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"color\",\"match\":{\"except\":[\"blue\"]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"match\":{\"except\":[\"red\"]}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"n\",\"match\":{\"except\":[1,2]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"n\",\"match\":{\"except\":[3]}}]}", pl));
	/* except needs a value: a missing field does not match */
	assert_false(M("{\"must\":[{\"key\":\"missing\",\"match\":{\"except\":[\"x\"]}}]}", pl));
	/* range */
	assert_true(M("{\"must\":[{\"key\":\"price\",\"range\":{\"gt\":1,\"lte\":2.5}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"price\",\"range\":{\"gt\":1,\"lt\":2.5}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"price\",\"range\":{\"gte\":2.5}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"price\",\"range\":{\"gt\":2.5}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":3,\"lte\":3}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color\",\"range\":{\"gte\":0}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"missing\",\"range\":{\"gte\":0}}]}", pl));
	/* arrays: any element matches */
	assert_true(M("{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"b\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"nums\",\"range\":{\"gt\":4}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"nums\",\"range\":{\"lt\":2}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"nums\",\"range\":{\"gt\":1,\"lt\":5}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"tags\",\"match\":{\"except\":[\"a\"]}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"tags\",\"match\":{\"except\":[\"a\",\"b\"]}}]}", pl));
	/* nested paths, and arrays of objects on the way */
	assert_true(M("{\"must\":[{\"key\":\"meta.size\",\"match\":{\"value\":\"L\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"meta.dims.w\",\"range\":{\"gte\":10}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"meta.dims.h\",\"range\":{\"gte\":10}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"color.x\",\"match\":{\"value\":\"red\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"items.k\",\"match\":{\"value\":\"y\"}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"items.q\",\"range\":{\"gt\":5}}]}", pl));
	/* is_null and is_empty */
	assert_true(M("{\"must\":[{\"is_null\":{\"key\":\"none\"}}]}", pl));
	assert_false(M("{\"must\":[{\"is_null\":{\"key\":\"missing\"}}]}", pl));
	assert_false(M("{\"must\":[{\"is_null\":{\"key\":\"color\"}}]}", pl));
	assert_true(M("{\"must\":[{\"is_empty\":{\"key\":\"missing\"}}]}", pl));
	assert_true(M("{\"must\":[{\"is_empty\":{\"key\":\"none\"}}]}", pl));
	assert_true(M("{\"must\":[{\"is_empty\":{\"key\":\"empty\"}}]}", pl));
	assert_false(M("{\"must\":[{\"is_empty\":{\"key\":\"tags\"}}]}", pl));
	assert_false(M("{\"must\":[{\"is_empty\":{\"key\":\"ok\"}}]}", pl));
	/* exists = must_not is_empty */
	assert_true(M("{\"must_not\":[{\"is_empty\":{\"key\":\"color\"}}]}", pl));
	/* must / should / must_not and nesting */
	assert_true(M("{}", pl));
	assert_true(M("{\"must\":[]}", pl));
	assert_true(M("{\"should\":[{\"key\":\"n\",\"match\":{\"value\":0}},"
		      "{\"key\":\"n\",\"match\":{\"value\":3}}]}", pl));
	assert_false(M("{\"should\":[{\"key\":\"n\",\"match\":{\"value\":0}},"
		       "{\"key\":\"n\",\"match\":{\"value\":1}}]}", pl));
	assert_false(M("{\"must_not\":[{\"key\":\"n\",\"match\":{\"value\":3}}]}", pl));
	assert_true(M("{\"must_not\":[{\"key\":\"n\",\"match\":{\"value\":4}}]}", pl));
	assert_true(M("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":true}},"
		      "{\"should\":[{\"key\":\"color\",\"match\":{\"value\":\"blue\"}},"
		      "{\"must_not\":[{\"key\":\"price\",\"range\":{\"gt\":3}}]}]}],"
		      "\"must_not\":[{\"is_null\":{\"key\":\"color\"}}]}", pl));
	assert_false(M("{\"must\":[{\"key\":\"ok\",\"match\":{\"value\":true}}],"
		       "\"should\":[{\"key\":\"color\",\"match\":{\"value\":\"blue\"}}]}", pl));
	/* missing field everywhere, and a NULL payload as {} */
	assert_false(M("{\"must\":[{\"key\":\"zz\",\"match\":{\"value\":\"red\"}}]}", "{}"));
	assert_true(M("{\"must_not\":[{\"key\":\"zz\",\"match\":{\"value\":\"red\"}}]}", "{}"));
	vt_filter *f = F("{\"must\":[{\"is_empty\":{\"key\":\"a\"}}]}", NULL);
	assert_true(vt_filter_match(f, NULL));
	vt_filter_free(f);
}

static const vt_payload_field schema_fields[] = {
	{"cat", VT_PAYLOAD_KEYWORD},   {"n", VT_PAYLOAD_INTEGER},
	{"price", VT_PAYLOAD_FLOAT},   {"flag", VT_PAYLOAD_BOOL},
	{"meta.color", VT_PAYLOAD_KEYWORD},
};
static const vt_payload_schema schema = {schema_fields, 5};

static void test_filter_errors(void **state)
{
	(void)state;
	bad_filter("[]", NULL, VT_EINVAL, "filter: a filter must be an object, got an array");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1}}", NULL, VT_EINVAL,
		   "filter: invalid JSON");
	bad_filter("{\"mus\":[]}", NULL, VT_EINVAL, "filter: unknown key \"mus\"");
	bad_filter("{\"must\":{}}", NULL, VT_EINVAL,
		   "filter.must: expected an array of conditions, got an object");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1}},"
		   "{\"key\":\"p\",\"range\":{\"gtx\":1}}]}",
		   NULL, VT_EINVAL, "filter.must[1].range: unknown operator \"gtx\"");
	bad_filter("{\"should\":[{\"key\":\"a\",\"match\":{\"val\":1}}]}", NULL, VT_EINVAL,
		   "filter.should[0].match: unknown operator \"val\"");
	bad_filter("{\"must_not\":[{\"key\":\"a\",\"mtch\":{\"value\":1}}]}", NULL,
		   VT_EINVAL, "filter.must_not[0]: unknown key \"mtch\"");
	bad_filter("{\"must\":[{\"must\":[{\"key\":5,\"match\":{\"value\":1}}]}]}", NULL,
		   VT_EINVAL, "filter.must[0].must[0]: \"key\" must be a string, got an integer");
	bad_filter("{\"must\":[{\"match\":{\"value\":1}}]}", NULL, VT_EINVAL,
		   "filter.must[0]: missing \"key\"");
	bad_filter("{\"must\":[{\"key\":\"a\"}]}", NULL, VT_EINVAL,
		   "filter.must[0]: field \"a\": expected \"match\" or \"range\"");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1},\"range\":{\"gt\":1}}]}",
		   NULL, VT_EINVAL, "both \"match\" and \"range\"");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1.5}}]}", NULL, VT_EINVAL,
		   "filter.must[0].match.value: expected a string, an integer or a boolean, "
		   "got a real number (use range for real numbers)");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":null}}]}", NULL,
		   VT_EINVAL, "got null");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[\"x\",2]}}]}", NULL,
		   VT_EINVAL, "filter.must[0].match.any: [1]: the list holds strings, got an integer");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[true]}}]}", NULL,
		   VT_EINVAL, "the list holds integers, got a boolean");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"except\":\"x\"}}]}", NULL,
		   VT_EINVAL, "filter.must[0].match.except: expected an array");
	bad_filter("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1,\"any\":[1]}}]}", NULL,
		   VT_EINVAL, "expected exactly one of");
	bad_filter("{\"must\":[{\"key\":\"a\",\"range\":{}}]}", NULL, VT_EINVAL,
		   "filter.must[0].range: expected at least one of gt, gte, lt, lte");
	bad_filter("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":\"1\"}}]}", NULL, VT_EINVAL,
		   "filter.must[0].range: \"gt\" must be a number, got a string");
	bad_filter("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":1,\"gte\":2}}]}", NULL,
		   VT_EINVAL, "both gt and gte");
	bad_filter("{\"must\":[{\"is_null\":{\"key\":\"a\",\"x\":1}}]}", NULL, VT_EINVAL,
		   "filter.must[0].is_null: expected {\"key\": ...} and nothing else");
	bad_filter("{\"must\":[{\"is_empty\":\"a\"}]}", NULL, VT_EINVAL,
		   "filter.must[0].is_empty: expected {\"key\": ...}, got a string");
	bad_filter("{\"must\":[{\"key\":\"a..b\",\"match\":{\"value\":1}}]}", NULL,
		   VT_EINVAL, "empty path segment");
	bad_filter("{\"must\":[{\"key\":\"\",\"match\":{\"value\":1}}]}", NULL, VT_EINVAL,
		   "1 to 255 bytes");
	bad_filter("{\"must\":[{\"has_id\":[1]}]}", NULL, VT_ENOTSUP,
		   "filter.must[0]: \"has_id\" is not supported");
	bad_filter("{\"must\":[3]}", NULL, VT_EINVAL,
		   "filter.must[0]: a condition must be an object, got an integer");
	bad_filter("{\"must\":[],\"must\":[]}", NULL, VT_EINVAL, "duplicate");
	/* Depth. */
	char deep[2048];
	size_t n = 0;
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(deep + n, "{\"must\":[");
	n += (size_t)sprintf(deep + n, "{\"key\":\"a\",\"match\":{\"value\":1}}");
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(deep + n, "]}");
	bad_filter(deep, NULL, VT_ELIMIT, "filters nested deeper than 16");

	/* With a schema: types of declared fields are checked. */
	bad_filter("{\"must\":[{\"key\":\"price\",\"match\":{\"value\":\"x\"}}]}", &schema,
		   VT_EINVAL, "filter.must[0].match: field 'price' is a float: use range, got a string");
	bad_filter("{\"must\":[{\"key\":\"cat\",\"range\":{\"gt\":1}}]}", &schema, VT_EINVAL,
		   "filter.must[0].range: field 'cat' is a keyword, got a range");
	bad_filter("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":\"x\"}}]}", &schema,
		   VT_EINVAL, "field 'n' is an integer, got a string");
	bad_filter("{\"must\":[{\"key\":\"flag\",\"match\":{\"any\":[1]}}]}", &schema,
		   VT_EINVAL, "field 'flag' is a bool, got an integer");
	bad_filter("{\"must\":[{\"key\":\"meta.color\",\"match\":{\"value\":true}}]}",
		   &schema, VT_EINVAL, "field 'meta.color' is a keyword, got a boolean");
	/* ... and undeclared fields are free. */
	vt_filter_free(F("{\"must\":[{\"key\":\"other\",\"match\":{\"value\":\"x\"}},"
			 "{\"key\":\"price\",\"range\":{\"lt\":3}},"
			 "{\"key\":\"n\",\"range\":{\"lt\":3}},"
			 "{\"key\":\"n\",\"match\":{\"except\":[3]}},"
			 "{\"is_null\":{\"key\":\"price\"}}]}",
			 &schema));
}

/* ---- random payloads and filters ---------------------------------------------- */

static const char *const cats[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
static const char *const colors[] = {"red", "green", "blue"};

static void rand_payload(vt_rng *r, char *buf, size_t cap)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, cap - n, "{\"id\":1");
	uint64_t x = vt_rng_next(r);
	switch (x % 6) {
	case 0: break;
	case 1: n += (size_t)snprintf(buf + n, cap - n, ",\"cat\":null"); break;
	case 2:
		n += (size_t)snprintf(buf + n, cap - n, ",\"cat\":[\"%s\",\"%s\"]",
				      cats[(x >> 8) % 8], cats[(x >> 16) % 8]);
		break;
	case 3: n += (size_t)snprintf(buf + n, cap - n, ",\"cat\":7"); break;
	default:
		n += (size_t)snprintf(buf + n, cap - n, ",\"cat\":\"%s\"", cats[(x >> 8) % 8]);
	}
	x = vt_rng_next(r);
	switch (x % 7) {
	case 0: break;
	case 1: n += (size_t)snprintf(buf + n, cap - n, ",\"n\":\"5\""); break;
	case 2:
		n += (size_t)snprintf(buf + n, cap - n, ",\"n\":[%d,%d]", (int)((x >> 8) % 20) - 5,
				      (int)((x >> 16) % 20) - 5);
		break;
	case 3: n += (size_t)snprintf(buf + n, cap - n, ",\"n\":%.1f", (double)((x >> 8) % 40) / 2 - 5); break;
	default:
		n += (size_t)snprintf(buf + n, cap - n, ",\"n\":%d", (int)((x >> 8) % 20) - 5);
	}
	x = vt_rng_next(r);
	if (x % 5)
		n += (size_t)snprintf(buf + n, cap - n, ",\"price\":%.3f",
				      (double)((x >> 8) % 10000) / 100.0);
	x = vt_rng_next(r);
	if (x % 4 == 0)
		n += (size_t)snprintf(buf + n, cap - n, ",\"flag\":%s", (x >> 8) & 1 ? "true" : "false");
	else if (x % 4 == 1)
		n += (size_t)snprintf(buf + n, cap - n, ",\"flag\":[true,false]");
	x = vt_rng_next(r);
	if (x % 3 == 0)
		n += (size_t)snprintf(buf + n, cap - n, ",\"meta\":{\"color\":\"%s\"}", colors[(x >> 8) % 3]);
	else if (x % 3 == 1)
		n += (size_t)snprintf(buf + n, cap - n,
				      ",\"meta\":[{\"color\":\"%s\"},{\"color\":\"%s\"}]",
				      colors[(x >> 8) % 3], colors[(x >> 16) % 3]);
	x = vt_rng_next(r);
	if (x % 2)
		n += (size_t)snprintf(buf + n, cap - n, ",\"free\":\"%s\"", cats[(x >> 8) % 4]);
	snprintf(buf + n, cap - n, "}");
}

static size_t rand_leaf(vt_rng *r, char *b, size_t cap)
{
	uint64_t x = vt_rng_next(r);
	const char *fields[] = {"cat", "meta.color", "free"};
	switch (x % 12) {
	case 0:
	case 1:
		return (size_t)snprintf(b, cap, "{\"key\":\"%s\",\"match\":{\"value\":\"%s\"}}",
					fields[(x >> 8) % 3], cats[(x >> 12) % 8]);
	case 2:
		return (size_t)snprintf(b, cap, "{\"key\":\"meta.color\",\"match\":{\"any\":[\"%s\",\"%s\"]}}",
					colors[(x >> 8) % 3], colors[(x >> 12) % 3]);
	case 3:
		return (size_t)snprintf(b, cap, "{\"key\":\"%s\",\"match\":{\"except\":[\"%s\",\"%s\"]}}",
					fields[(x >> 8) % 3], cats[(x >> 12) % 8], cats[(x >> 16) % 8]);
	case 4:
		return (size_t)snprintf(b, cap, "{\"key\":\"n\",\"match\":{\"value\":%d}}",
					(int)((x >> 8) % 20) - 5);
	case 5:
		return (size_t)snprintf(b, cap, "{\"key\":\"n\",\"match\":{\"%s\":[%d,%d,%d]}}",
					(x >> 7) & 1 ? "any" : "except", (int)((x >> 8) % 20) - 5,
					(int)((x >> 16) % 20) - 5, (int)((x >> 24) % 20) - 5);
	case 6:
		return (size_t)snprintf(b, cap, "{\"key\":\"flag\",\"match\":{\"value\":%s}}",
					(x >> 8) & 1 ? "true" : "false");
	case 7:
	case 8: {
		const char *ops[] = {"gt", "gte", "lt", "lte"};
		double lo = (double)((x >> 8) % 100), w = (double)((x >> 16) % 60);
		const char *f = (x >> 30) & 1 ? "price" : "n";
		if (f[0] == 'n') {
			lo = lo / 5 - 6;
			w /= 6;
		}
		return (size_t)snprintf(b, cap, "{\"key\":\"%s\",\"range\":{\"%s\":%g,\"%s\":%g}}", f,
					ops[(x >> 40) % 2], lo, ops[2 + (x >> 42) % 2], lo + w);
	}
	case 9:
		return (size_t)snprintf(b, cap, "{\"key\":\"n\",\"range\":{\"%s\":%d}}",
					(x >> 8) & 1 ? "gte" : "lt", (int)((x >> 9) % 20) - 5);
	case 10:
		return (size_t)snprintf(b, cap, "{\"is_empty\":{\"key\":\"%s\"}}",
					(x >> 8) & 1 ? "cat" : "n");
	default:
		return (size_t)snprintf(b, cap, "{\"is_null\":{\"key\":\"cat\"}}");
	}
}

static size_t rand_filter(vt_rng *r, char *b, size_t cap, int depth)
{
	size_t n = 0;
	n += (size_t)snprintf(b + n, cap - n, "{");
	const char *cl[] = {"must", "should", "must_not"};
	int first = 1;
	for (int c = 0; c < 3; c++) {
		uint64_t x = vt_rng_next(r);
		int k = (int)(x % (c == 0 ? 4 : 3));
		if (!k)
			continue;
		n += (size_t)snprintf(b + n, cap - n, "%s\"%s\":[", first ? "" : ",", cl[c]);
		first = 0;
		for (int i = 0; i < k; i++) {
			if (i)
				n += (size_t)snprintf(b + n, cap - n, ",");
			if (depth < 2 && vt_rng_next(r) % 4 == 0)
				n += rand_filter(r, b + n, cap - n, depth + 1);
			else
				n += rand_leaf(r, b + n, cap - n);
		}
		n += (size_t)snprintf(b + n, cap - n, "]");
	}
	n += (size_t)snprintf(b + n, cap - n, "}");
	return n;
}

/* Checks the plan against brute force over live[0..n). */
static void check_plan(const vt_filter *f, const vt_payload_index *ix,
		       vt_payload **pl, const int *live, size_t n, const char *text)
{
	vt_filter_plan plan;
	vt_filter_plan_params pp;
	vt_filter_plan_params_default(&pp);
	pp.scan_threshold = 100;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += live[i] != 0;
	assert_int_equal(vt_filter_plan_build(f, ix, total, &pp, &plan), 0);
	size_t want = 0;
	vt_filter_hnsw_ctx ctx = {f, &plan, NULL, NULL};
	for (size_t i = 0; i < n; i++) {
		if (!live[i]) {
			if (plan.has_labels)
				assert_false(vt_filter_plan_contains(&plan, i));
			continue;
		}
		int m = vt_filter_match(f, pl[i]);
		want += m;
		if (plan.has_labels) {
			int in = vt_filter_plan_contains(&plan, i);
			if (plan.exact ? in != m : m && !in)
				fprintf(stderr, "label %zu: match %d, in plan %d (exact %d): %s\n",
					i, m, in, plan.exact, text);
			if (plan.exact)
				assert_int_equal(in, m);
			else if (m)
				assert_true(in);
		}
		assert_int_equal(vt_filter_plan_check(&ctx, i, pl[i]), m);
	}
	if (plan.has_labels && plan.exact)
		assert_int_equal(plan.n_labels, want);
	if (plan.has_labels) {
		for (size_t i = 1; i < plan.n_labels; i++)
			assert_true(plan.labels[i - 1] < plan.labels[i]);
		assert_int_equal(plan.estimate, plan.n_labels);
		assert_int_equal(plan.strategy, plan.n_labels == 0 ? VT_PLAN_EMPTY
					       : plan.n_labels <= 100 ? VT_PLAN_SCAN
								      : VT_PLAN_GRAPH);
	}
	vt_filter_plan_free(&plan);
}

static void test_index_property(void **state)
{
	(void)state;
	enum { N = 1500 };
	vt_rng r;
	vt_rng_seed(&r, 7);
	vt_payload **pl = calloc(N, sizeof *pl);
	int *live = calloc(N, sizeof *live);
	vt_payload_index *ix;
	vt_errmsg e;
	assert_int_equal(vt_payload_index_create(&schema, &ix, &e), 0);
	char buf[1024];
	for (size_t i = 0; i < N; i++) {
		rand_payload(&r, buf, sizeof buf);
		pl[i] = P(buf);
		/* Out of order, to exercise sorted inserts. */
	}
	for (size_t k = 0; k < N; k++) {
		size_t i = (k * 7919) % N;
		assert_int_equal(vt_payload_index_add(ix, i, pl[i]), 0);
		live[i] = 1;
	}
	assert_int_equal(vt_payload_index_add(ix, 3, pl[3]), VT_EEXIST);
	assert_int_equal(vt_payload_index_count(ix), N);

	char fb[8192];
	int nexact = 0, nknown = 0;
	for (int round = 0; round < 4; round++) {
		for (int t = 0; t < 1000; t++) {
			rand_filter(&r, fb, sizeof fb, 0);
			vt_filter *f = F(fb, t % 2 ? &schema : NULL);
			check_plan(f, ix, pl, live, N, fb);
			vt_filter_plan plan;
			assert_int_equal(vt_filter_plan_build(f, ix, N, NULL, &plan), 0);
			nknown += plan.has_labels;
			nexact += plan.has_labels && plan.exact;
			vt_filter_plan_free(&plan);
			vt_filter_free(f);
		}
		/* Churn: update, remove and re-add a fifth of the points. */
		for (int k = 0; k < N / 5; k++) {
			size_t i = vt_rng_next(&r) % N;
			uint64_t op = vt_rng_next(&r) % 3;
			if (!live[i]) {
				assert_int_equal(vt_payload_index_remove(ix, i, pl[i]), VT_ENOENT);
				assert_int_equal(vt_payload_index_add(ix, i, pl[i]), 0);
				live[i] = 1;
			} else if (op == 0) {
				assert_int_equal(vt_payload_index_remove(ix, i, pl[i]), 0);
				live[i] = 0;
			} else {
				rand_payload(&r, buf, sizeof buf);
				vt_payload *np = P(buf);
				assert_int_equal(vt_payload_index_update(ix, i, pl[i], np), 0);
				vt_payload_free(pl[i]);
				pl[i] = np;
			}
		}
	}
	/* The generator must exercise every planner outcome. */
	assert_true(nexact > 500);
	assert_true(nknown > nexact);

	/* Removing everything leaves empty postings: every exact plan is
	 * empty. */
	for (size_t i = 0; i < N; i++)
		if (live[i]) {
			assert_int_equal(vt_payload_index_remove(ix, i, pl[i]), 0);
			live[i] = 0;
		}
	assert_int_equal(vt_payload_index_count(ix), 0);
	vt_filter *f = F("{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":\"a\"}}]}", &schema);
	vt_filter_plan plan;
	assert_int_equal(vt_filter_plan_build(f, ix, 0, NULL, &plan), 0);
	assert_int_equal(plan.strategy, VT_PLAN_EMPTY);
	vt_filter_plan_free(&plan);
	vt_filter_free(f);

	for (size_t i = 0; i < N; i++)
		vt_payload_free(pl[i]);
	free(pl);
	free(live);
	vt_payload_index_destroy(ix);
}

static void test_index_errors_and_oom(void **state)
{
	(void)state;
	vt_payload_index *ix;
	vt_errmsg e;
	vt_payload_field dup[] = {{"a", VT_PAYLOAD_KEYWORD}, {"a", VT_PAYLOAD_INTEGER}};
	assert_int_equal(vt_payload_index_create(&(vt_payload_schema){dup, 2}, &ix, &e),
			 VT_EINVAL);
	assert_non_null(strstr(e.msg, "field 'a' declared twice"));
	vt_payload_field badt[] = {{"a", 9}};
	assert_int_equal(vt_payload_index_create(&(vt_payload_schema){badt, 1}, &ix, &e),
			 VT_EINVAL);
	assert_int_equal(vt_payload_type_parse("keyword"), VT_PAYLOAD_KEYWORD);
	assert_int_equal(vt_payload_type_parse("float"), VT_PAYLOAD_FLOAT);
	assert_int_equal(vt_payload_type_parse("text"), -1);
	assert_string_equal(vt_payload_type_name(VT_PAYLOAD_BOOL), "bool");

	/* Every allocation failure in add leaves the index as it was. */
	assert_int_equal(vt_payload_index_create(&schema, &ix, &e), 0);
	vt_payload *p = P("{\"cat\":[\"a\",\"b\"],\"n\":[1,2],\"price\":3,\"flag\":true,"
			  "\"meta\":{\"color\":\"red\"}}");
	vt_filter *f = F("{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":\"a\"}},"
			 "{\"key\":\"n\",\"range\":{\"gte\":2}}]}", &schema);
	for (uint64_t k = 1; k < 64; k++) {
		vt_alloc_fail_at(k, 0);
		int rc = vt_payload_index_add(ix, 1, p);
		vt_alloc_fail_at(0, 0);
		vt_filter_plan plan;
		assert_int_equal(vt_filter_plan_build(f, ix, 1, NULL, &plan), 0);
		if (rc) {
			assert_int_equal(rc, VT_ENOMEM);
			assert_int_equal(vt_payload_index_count(ix), 0);
			assert_int_equal(plan.n_labels, 0);
		} else {
			assert_int_equal(plan.n_labels, 1);
			assert_int_equal(vt_payload_index_remove(ix, 1, p), 0);
		}
		vt_filter_plan_free(&plan);
	}
	/* And parse survives failures at every allocation. */
	const char *fj = "{\"must\":[{\"key\":\"a.b\",\"match\":{\"any\":[\"x\",\"y\"]}},"
			 "{\"should\":[{\"key\":\"n\",\"match\":{\"except\":[1]}}]}]}";
	for (uint64_t k = 1; k < 64; k++) {
		vt_filter *g = NULL;
		vt_alloc_fail_at(k, 0);
		int rc = vt_filter_parse(fj, strlen(fj), NULL, &g, &e);
		vt_alloc_fail_at(0, 0);
		assert_true(rc == 0 || rc == VT_ENOMEM);
		assert_true(rc ? g == NULL : g != NULL);
		vt_filter_free(g);
	}
	vt_filter_free(f);
	vt_payload_free(p);
	vt_payload_index_destroy(ix);
}

/* ---- filtered search recall with lib/hnsw ------------------------------------- */

enum { RN = 5000, RDIM = 32, RQ = 100, RK = 10 };

struct store {
	vt_payload **pl;
};

static int lookup(void *ctx, uint64_t label, const vt_payload **out)
{
	struct store *s = ctx;
	if (label >= RN)
		return -1;
	*out = s->pl[label];
	return 0;
}

static float *clustered(uint32_t n, uint64_t seed)
{
	float *x = malloc((size_t)n * RDIM * sizeof *x);
	float centers[16][RDIM];
	vt_rng r;
	vt_rng_seed(&r, 1000);
	for (int c = 0; c < 16; c++)
		for (int j = 0; j < RDIM; j++)
			centers[c][j] = (float)(vt_rng_double(&r) * 2 - 1);
	vt_rng_seed(&r, seed);
	for (uint32_t i = 0; i < n; i++) {
		int c = (int)(vt_rng_next(&r) % 16);
		for (int j = 0; j < RDIM; j++) {
			double g = vt_rng_double(&r) + vt_rng_double(&r) + vt_rng_double(&r) - 1.5;
			x[(size_t)i * RDIM + j] = centers[c][j] + (float)(g * 0.6);
		}
	}
	return x;
}

static double l2(const float *a, const float *b)
{
	double s = 0;
	for (int j = 0; j < RDIM; j++)
		s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
	return s;
}

/* Top-k of `cand` (or of every point when cand is NULL) passing the filter,
 * brute force: the answer the filtered search is measured against, and also
 * how the SCAN strategy runs. */
static size_t exact_topk(const float *x, const float *q, const uint64_t *cand,
			 size_t ncand, const vt_filter_hnsw_ctx *ctx,
			 struct store *st, uint64_t *out)
{
	double bd[RK];
	size_t n = 0;
	size_t lim = cand ? ncand : RN;
	for (size_t t = 0; t < lim; t++) {
		uint64_t i = cand ? cand[t] : t;
		if (!vt_filter_plan_check(ctx, i, st->pl[i]))
			continue;
		double d = l2(x + i * RDIM, q);
		if (n == RK && d >= bd[RK - 1])
			continue;
		size_t j = n < RK ? n++ : RK - 1;
		while (j > 0 && bd[j - 1] > d) {
			bd[j] = bd[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		bd[j] = d;
		out[j] = i;
	}
	return n;
}

static void test_filtered_recall(void **state)
{
	(void)state;
	float *x = clustered(RN, 11);
	float *qs = clustered(RQ, 99);
	vt_hnsw_params hp;
	vt_hnsw_params_default(&hp, RDIM, VT_METRIC_L2);
	vt_hnsw *h;
	assert_int_equal(vt_hnsw_create(&hp, &h, NULL), 0);
	vt_payload_field fl[] = {{"c2", VT_PAYLOAD_KEYWORD},
				 {"c10", VT_PAYLOAD_INTEGER},
				 {"c100", VT_PAYLOAD_KEYWORD}};
	vt_payload_schema sc = {fl, 3};
	vt_payload_index *ix;
	assert_int_equal(vt_payload_index_create(&sc, &ix, NULL), 0);
	struct store st = {calloc(RN, sizeof(vt_payload *))};
	vt_rng r;
	vt_rng_seed(&r, 5);
	for (uint64_t i = 0; i < RN; i++) {
		char b[128];
		/* Random, uncorrelated with the clusters: the hard case. */
		snprintf(b, sizeof b, "{\"c2\":\"v%d\",\"c10\":%d,\"c100\":\"w%d\",\"u\":%d}",
			 (int)(vt_rng_next(&r) % 2), (int)(vt_rng_next(&r) % 10),
			 (int)(vt_rng_next(&r) % 100), (int)(vt_rng_next(&r) % 10));
		st.pl[i] = P(b);
		assert_int_equal(vt_hnsw_insert(h, i, x + i * RDIM), 0);
		assert_int_equal(vt_payload_index_add(ix, i, st.pl[i]), 0);
	}
	struct {
		const char *filter;
		const char *name;
		uint64_t threshold; /* 0 = the default rule */
		int want_strategy;
	} cases[] = {
		{"{\"must\":[{\"key\":\"c2\",\"match\":{\"value\":\"v1\"}}]}", "50% indexed, default", 0, VT_PLAN_SCAN},
		{"{\"must\":[{\"key\":\"c2\",\"match\":{\"value\":\"v1\"}}]}", "50% indexed, graph", 1000, VT_PLAN_GRAPH},
		{"{\"must\":[{\"key\":\"c10\",\"match\":{\"value\":3}}]}", "10% indexed, default", 0, VT_PLAN_SCAN},
		{"{\"must\":[{\"key\":\"c10\",\"match\":{\"value\":3}}]}", "10% indexed, graph", 100, VT_PLAN_GRAPH},
		{"{\"must\":[{\"key\":\"c100\",\"match\":{\"value\":\"w42\"}}]}", "1% indexed", 0, VT_PLAN_SCAN},
		{"{\"must\":[{\"key\":\"c100\",\"match\":{\"value\":\"w42\"}}]}", "1% indexed, graph", 10, VT_PLAN_GRAPH},
		{"{\"must\":[{\"key\":\"u\",\"match\":{\"value\":3}}]}", "10% not indexed", 0, VT_PLAN_GRAPH},
		{"{\"must\":[{\"key\":\"c2\",\"match\":{\"value\":\"v0\"}},{\"key\":\"u\",\"range\":{\"lt\":5}}]}",
		 "25% mixed, graph", 1000, VT_PLAN_GRAPH},
		{"{\"must\":[{\"key\":\"c10\",\"match\":{\"any\":[1,2]}}],\"must_not\":[{\"key\":\"c2\",\"match\":{\"value\":\"v0\"}}]}",
		 "10% must_not", 0, VT_PLAN_SCAN},
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		vt_filter *f = F(cases[c].filter, &sc);
		vt_filter_plan_params pp;
		vt_filter_plan_params_default(&pp);
		pp.scan_threshold = cases[c].threshold;
		vt_filter_plan plan;
		assert_int_equal(vt_filter_plan_build(f, ix, RN, &pp, &plan), 0);
		if (plan.strategy != cases[c].want_strategy)
			fprintf(stderr, "%s: strategy %d, estimate %llu, threshold %llu\n",
				cases[c].name, plan.strategy,
				(unsigned long long)plan.estimate,
				(unsigned long long)plan.scan_threshold);
		assert_int_equal(plan.strategy, cases[c].want_strategy);
		vt_filter_hnsw_ctx ctx = {f, &plan, lookup, &st};
		vt_filter_hnsw_ctx bare = {f, NULL, lookup, &st};
		size_t found = 0, total = 0;
		for (int qi = 0; qi < RQ; qi++) {
			const float *q = qs + (size_t)qi * RDIM;
			uint64_t truth[RK], got[RK];
			size_t nt = exact_topk(x, q, NULL, 0, &bare, &st, truth);
			size_t ng = 0;
			if (plan.strategy == VT_PLAN_SCAN) {
				ng = exact_topk(x, q, plan.has_labels ? plan.labels : NULL,
						plan.n_labels, &ctx, &st, got);
			} else {
				vt_hnsw_query hq;
				vt_hnsw_hit hits[RK];
				vt_hnsw_query_default(&hq, RK);
				hq.ef = 64;
				hq.filter = vt_filter_hnsw_cb;
				hq.filter_ctx = &ctx;
				assert_int_equal(vt_hnsw_search(h, q, &hq, hits, &ng), 0);
				for (size_t i = 0; i < ng; i++)
					got[i] = hits[i].label;
			}
			for (size_t i = 0; i < ng; i++)
				assert_true(vt_filter_match(f, st.pl[got[i]]));
			for (size_t i = 0; i < nt; i++)
				for (size_t j = 0; j < ng; j++)
					if (truth[i] == got[j]) {
						found++;
						break;
					}
			total += nt;
		}
		double recall = total ? (double)found / (double)total : 1.0;
		printf("filtered recall@%d, %-24s strategy %s, matches %llu: %.4f\n", RK,
		       cases[c].name, plan.strategy == VT_PLAN_SCAN ? "scan " : "graph",
		       (unsigned long long)plan.estimate, recall);
		assert_true(recall >= 0.95);
		vt_filter_plan_free(&plan);
		vt_filter_free(f);
	}
	for (size_t i = 0; i < RN; i++)
		vt_payload_free(st.pl[i]);
	free(st.pl);
	vt_payload_index_destroy(ix);
	vt_hnsw_destroy(h);
	free(x);
	free(qs);
}

static int lookup_small(void *ctx, uint64_t label, const vt_payload **out)
{
	vt_payload **pl = ctx;
	if (label >= 3)
		return -1; /* unknown label: excluded */
	*out = label == 2 ? NULL : pl[label]; /* NULL means {} */
	return 0;
}

static void test_plan_rules(void **state)
{
	(void)state;
	vt_payload *pl[2] = {P("{\"cat\":\"a\",\"u\":1}"), P("{\"cat\":\"b\",\"u\":2}")};
	vt_payload_index *ix;
	assert_int_equal(vt_payload_index_create(&schema, &ix, NULL), 0);
	assert_int_equal(vt_payload_index_add(ix, 0, pl[0]), 0);
	assert_int_equal(vt_payload_index_add(ix, 1, pl[1]), 0);
	assert_int_equal(vt_payload_index_add(ix, 2, NULL), 0);

	/* The auto threshold: max(1000, sqrt(2000 N)). */
	vt_filter *f = F("{\"must\":[{\"key\":\"u\",\"match\":{\"value\":1}}]}", &schema);
	vt_filter_plan plan;
	assert_int_equal(vt_filter_plan_build(f, NULL, 100, NULL, &plan), 0);
	assert_int_equal(plan.scan_threshold, 1000);
	assert_int_equal(plan.strategy, VT_PLAN_SCAN);
	assert_false(plan.has_labels);
	vt_filter_plan_free(&plan);
	assert_int_equal(vt_filter_plan_build(f, NULL, 1000000, NULL, &plan), 0);
	assert_int_equal(plan.scan_threshold, 44721);
	assert_int_equal(plan.strategy, VT_PLAN_GRAPH);
	assert_int_equal(plan.estimate, 1000000);
	vt_filter_plan_free(&plan);

	/* Undeclared field: the callback evaluates looked-up payloads; an
	 * unknown label and a NULL payload are handled. */
	assert_int_equal(vt_filter_plan_build(f, ix, 3, NULL, &plan), 0);
	assert_false(plan.has_labels);
	vt_filter_hnsw_ctx ctx = {f, &plan, lookup_small, pl};
	assert_true(vt_filter_hnsw_cb(0, &ctx));
	assert_false(vt_filter_hnsw_cb(1, &ctx));
	assert_false(vt_filter_hnsw_cb(2, &ctx));
	assert_false(vt_filter_hnsw_cb(7, &ctx));
	vt_filter_plan_free(&plan);
	vt_filter_free(f);

	/* Indexed: exact set, no lookup needed. */
	f = F("{\"must_not\":[{\"key\":\"cat\",\"match\":{\"value\":\"a\"}}]}", &schema);
	assert_int_equal(vt_filter_plan_build(f, ix, 3, NULL, &plan), 0);
	assert_true(plan.has_labels && plan.exact);
	assert_int_equal(plan.n_labels, 2);
	ctx = (vt_filter_hnsw_ctx){f, &plan, NULL, NULL};
	assert_false(vt_filter_hnsw_cb(0, &ctx));
	assert_true(vt_filter_hnsw_cb(1, &ctx));
	assert_true(vt_filter_hnsw_cb(2, &ctx));
	vt_filter_plan_free(&plan);
	vt_filter_free(f);

	/* Mixed: a superset from the index, then evaluation. */
	f = F("{\"must\":[{\"key\":\"cat\",\"match\":{\"any\":[\"a\",\"b\"]}},"
	      "{\"key\":\"u\",\"range\":{\"gt\":1}}]}", &schema);
	assert_int_equal(vt_filter_plan_build(f, ix, 3, NULL, &plan), 0);
	assert_true(plan.has_labels && !plan.exact);
	assert_int_equal(plan.n_labels, 2);
	ctx = (vt_filter_hnsw_ctx){f, &plan, lookup_small, pl};
	assert_false(vt_filter_hnsw_cb(0, &ctx));
	assert_true(vt_filter_hnsw_cb(1, &ctx));
	assert_false(vt_filter_hnsw_cb(2, &ctx));
	vt_filter_plan_free(&plan);
	vt_filter_free(f);

	/* A contradiction plans EMPTY. */
	f = F("{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":\"a\"}},"
	      "{\"key\":\"cat\",\"match\":{\"value\":\"zzz\"}}]}", &schema);
	assert_int_equal(vt_filter_plan_build(f, ix, 3, NULL, &plan), 0);
	assert_int_equal(plan.strategy, VT_PLAN_EMPTY);
	vt_filter_plan_free(&plan);
	vt_filter_free(f);

	vt_payload_index_destroy(ix);
	vt_payload_free(pl[0]);
	vt_payload_free(pl[1]);
}

int main(void)
{
	vt_log_set_level(VT_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload_errors),
		cmocka_unit_test(test_payload_dump),
		cmocka_unit_test(test_filter_operators),
		cmocka_unit_test(test_filter_errors),
		cmocka_unit_test(test_index_property),
		cmocka_unit_test(test_index_errors_and_oom),
		cmocka_unit_test(test_plan_rules),
		cmocka_unit_test(test_filtered_recall),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
