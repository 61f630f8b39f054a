/* fuzz_json.c: libFuzzer target for the JSON reader and writer. Any input
 * either parses or is refused with VT_EINVAL / VT_ELIMIT / VT_ERANGE and a
 * message naming a position inside the input. A parsed document, written
 * back with vt_json_w_value and parsed again, gives the same DOM (types,
 * counts, strings, numbers bit for bit); every value's raw span parses on
 * its own to the same DOM; getters and paths never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "rpc/json.h"
#include "fuzz.h"

/* 1 if the subtrees are the same; the values are compared node by node. */
static int same(const vt_json_value *a, const vt_json_value *b)
{
	if (a->tree != b->tree)
		return 0;
	for (uint32_t i = 0; i < a->tree; i++) {
		const vt_json_value *x = a + i, *y = b + i;
		if (x->type != y->type || x->count != y->count || x->tree != y->tree)
			return 0;
		if (x->type == VT_JSON_NUMBER && memcmp(&x->u.num, &y->u.num, sizeof x->u.num))
			return 0;
		if (x->type == VT_JSON_STRING &&
		    (memcmp(x->u.str, y->u.str, x->count) || x->u.str[x->count] != '\0'))
			return 0;
	}
	return 1;
}

static void poke(const vt_json_value *root)
{
	char path[64];
	float fl[8];
	size_t n;
	for (uint32_t i = 0; i < root->tree && i < 256; i++) {
		const vt_json_value *v = root + i;
		vt_errmsg e;
		double d;
		int64_t x;
		uint64_t u;
		int b;
		const char *s;
		vt_json_path(v, path, sizeof path);
		vt_json_get_double(v, &d, &e);
		vt_json_get_int64(v, &x, &e);
		vt_json_get_uint64(v, &u, &e);
		vt_json_get_bool(v, &b, &e);
		vt_json_get_string(v, &s, &n, &e);
		float f;
		vt_json_get_float(v, &f, &e);
		int rc = vt_json_get_floats(v, fl, 8, &n, &e);
		if (rc && rc != VT_EINVAL && rc != VT_ERANGE && rc != VT_ELIMIT)
			abort();
		if (v->type == VT_JSON_OBJECT && v->count) {
			const vt_json_value *k = v + 1;
			if (vt_json_getn(v, k->u.str, k->count) != k + 1)
				abort();
		}
		if (v->type == VT_JSON_ARRAY && v->count &&
		    vt_json_at(v, v->count - 1) == NULL)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	vt_json_doc *d = NULL;
	vt_json_error er;
	vt_errmsg e;
	e.msg[0] = '\0';
	int rc = vt_json_parse(data, len, NULL, &d, &er, &e);
	if (rc) {
		if (d || !e.msg[0] || !er.reason ||
		    (rc != VT_EINVAL && rc != VT_ELIMIT && rc != VT_ERANGE))
			abort();
		if (er.offset > len)
			abort();
		return 0;
	}
	const vt_json_value *root = vt_json_root(d);
	poke(root);

	/* write back, parse again, same DOM */
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 26);
	vt_json_writer w;
	vt_json_w_init(&w, &b);
	vt_json_w_value(&w, root);
	if (vt_json_w_finish(&w))
		abort();
	vt_json_doc *d2 = NULL;
	if (vt_json_parse(b.data, b.len, NULL, &d2, NULL, &e) || !same(root, vt_json_root(d2)))
		abort();
	vt_json_doc_free(d2);

	/* the raw span of a few containers stands on its own */
	for (uint32_t i = 0; i < root->tree && i < 64; i++) {
		const vt_json_value *v = root + i;
		size_t n;
		const char *raw = vt_json_raw(v, &n);
		vt_json_doc *d3 = NULL;
		if (vt_json_parse(raw, n, NULL, &d3, NULL, NULL) || !same(v, vt_json_root(d3)))
			abort();
		vt_json_doc_free(d3);
	}
	vt_buf_free(&b);
	vt_json_doc_free(d);
	return 0;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	static const char *const seeds[] = {
		"{\"vector\":[0.123456789,-1.5e-3,2,3.4028235e38,1e-45],\"k\":10,\"namespace\":\"default\"}",
		"{\"points\":[{\"id\":\"a\",\"vector\":[1,2],\"payload\":{\"cat\":\"x\",\"n\":[1,{\"y\":null}]}}]}",
		"[\"\\u00e9\\uD83D\\uDE00\\n\\\"\", \"caf\xc3\xa9\", \"\xf0\x9f\x98\x80\", true, false, null]",
		"[[[[[[[[[[[]]]]]]]]]], {}, [], 0, -0, 1E+2, 123456789012345678901234567890]",
		"{\"a\":1,\"b\":{\"a\":1},\"c\":[{\"a\":[1.5,-2.25e-10]}]}",
		"  \n\t\"top-level string\"  ",
		"9007199254740993",
		"{\"k\":1,\"k\":2}",
		"[1,]",
	};
	for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
		int rc = emit(ud, (const uint8_t *)seeds[i], strlen(seeds[i]));
		if (rc)
			return rc;
	}
	return 0;
}
