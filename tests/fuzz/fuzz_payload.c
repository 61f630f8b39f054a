/* fuzz_payload.c: libFuzzer target for the payload parser. Any input must
 * either parse (and then dump canonically, re-parse to the same dump, and
 * enter and leave a payload index) or be refused with VT_EINVAL / VT_ELIMIT
 * and a message; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "payload/payload.h"
#include "fuzz.h"

static const vt_payload_field fields[] = {
	{"a", VT_PAYLOAD_KEYWORD}, {"b", VT_PAYLOAD_INTEGER},
	{"c.d", VT_PAYLOAD_FLOAT}, {"e", VT_PAYLOAD_BOOL},
};
static const vt_payload_schema schema = {fields, 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int quiet;
	if (!quiet) {
		vt_log_set_level(VT_LOG_OFF);
		quiet = 1;
	}
	vt_payload_limits lim;
	vt_payload_limits_default(&lim);
	lim.max_depth = 8;
	lim.max_keys = 64;
	vt_payload *p = NULL;
	vt_errmsg e;
	e.msg[0] = '\0';
	int rc = vt_payload_parse((const char *)data, len, &lim, &p, &e);
	if (rc) {
		if (p || !e.msg[0] ||
		    (rc != VT_EINVAL && rc != VT_ELIMIT && rc != VT_ENOMEM))
			abort();
		return 0;
	}
	vt_buf b1, b2;
	vt_buf_init(&b1, 1u << 24);
	vt_buf_init(&b2, 1u << 24);
	if (vt_payload_dump(p, &b1))
		abort();
	vt_payload *q = NULL;
	/* Re-read the dump with the size cap lifted to its own length: the
	 * other caps must hold as they did for the input. */
	lim.max_bytes = b1.len;
	if (vt_payload_parse((const char *)b1.data, b1.len, &lim, &q, &e))
		abort();
	if (vt_payload_dump(q, &b2) || b1.len != b2.len ||
	    memcmp(b1.data, b2.data, b1.len))
		abort();
	vt_payload_index *ix;
	if (vt_payload_index_create(&schema, &ix, NULL))
		abort();
	if (vt_payload_index_add(ix, 1, p) || vt_payload_index_add(ix, 2, q) ||
	    vt_payload_index_update(ix, 1, p, q) ||
	    vt_payload_index_remove(ix, 1, q) || vt_payload_index_remove(ix, 2, q) ||
	    vt_payload_index_count(ix) != 0)
		abort();
	vt_payload_index_destroy(ix);
	vt_buf_free(&b1);
	vt_buf_free(&b2);
	vt_payload_free(p);
	vt_payload_free(q);
	return 0;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	static const char *const seeds[] = {
		"{}",
		"{\"a\":\"x\",\"b\":3,\"c\":{\"d\":2.5},\"e\":true}",
		"{\"a\":[\"x\",\"y\"],\"b\":[1,-9223372036854775808],\"c\":[{\"d\":1},{\"d\":null}]}",
		"{\"u\":\"\\u00e9\\ud83d\\ude00\\n\",\"r\":1e-300,\"z\":[[[]]],\"n\":null}",
		"{\"a\":1,\"a\":2}",
		"[1,2,3]",
	};
	for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
		int rc = emit(ud, (const uint8_t *)seeds[i], strlen(seeds[i]));
		if (rc)
			return rc;
	}
	return 0;
}
