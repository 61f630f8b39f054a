/* fuzz_filter.c: libFuzzer target for the filter parser. Any input must
 * either compile into a filter (that then evaluates on sample payloads and
 * plans over a small index, agreeing with brute force) or be refused with
 * VT_EINVAL / VT_ELIMIT / VT_ENOTSUP and a message; nothing may crash or
 * leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "payload/payload.h"
#include "fuzz.h"

static const char *const samples[] = {
	"{}",
	"{\"cat\":\"a\",\"n\":3,\"price\":2.5,\"flag\":true,\"meta\":{\"color\":\"red\"}}",
	"{\"cat\":[\"a\",\"b\"],\"n\":[1,-4],\"price\":null,\"flag\":[true,false]}",
	"{\"cat\":7,\"n\":\"x\",\"price\":[1,100],\"meta\":[{\"color\":\"blue\"},{\"color\":null}]}",
	"{\"cat\":null,\"n\":2.0,\"empty\":[],\"x\":{\"y\":{\"z\":[[1],[2]]}}}",
};
#define NS (sizeof samples / sizeof *samples)

static const vt_payload_field fields[] = {
	{"cat", VT_PAYLOAD_KEYWORD}, {"n", VT_PAYLOAD_INTEGER},
	{"price", VT_PAYLOAD_FLOAT}, {"flag", VT_PAYLOAD_BOOL},
	{"meta.color", VT_PAYLOAD_KEYWORD},
};
static const vt_payload_schema schema = {fields, 5};

static vt_payload *pl[NS];
static vt_payload_index *ix;

static void setup(void)
{
	vt_log_set_level(VT_LOG_OFF);
	if (vt_payload_index_create(&schema, &ix, NULL))
		abort();
	for (size_t i = 0; i < NS; i++) {
		if (vt_payload_parse(samples[i], strlen(samples[i]), NULL, &pl[i], NULL))
			abort();
		if (vt_payload_index_add(ix, i, pl[i]))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!ix)
		setup();
	for (int with_schema = 0; with_schema < 2; with_schema++) {
		vt_filter *f = NULL;
		vt_errmsg e;
		e.msg[0] = '\0';
		int rc = vt_filter_parse((const char *)data, len,
					 with_schema ? &schema : NULL, &f, &e);
		if (rc) {
			if (f || !e.msg[0] ||
			    (rc != VT_EINVAL && rc != VT_ELIMIT && rc != VT_ENOTSUP &&
			     rc != VT_ENOMEM))
				abort();
			continue;
		}
		vt_filter_plan plan;
		if (vt_filter_plan_build(f, ix, NS, NULL, &plan))
			abort();
		vt_filter_hnsw_ctx ctx = {f, &plan, NULL, NULL};
		size_t matches = 0;
		for (size_t i = 0; i < NS; i++) {
			int m = vt_filter_match(f, pl[i]);
			matches += m;
			if (vt_filter_plan_check(&ctx, i, pl[i]) != m)
				abort();
			if (plan.has_labels && m && !vt_filter_plan_contains(&plan, i))
				abort();
			if (plan.has_labels && plan.exact &&
			    vt_filter_plan_contains(&plan, i) != m)
				abort();
		}
		if (plan.has_labels && plan.exact && plan.n_labels != matches)
			abort();
		vt_filter_plan_free(&plan);
		vt_filter_free(f);
	}
	return 0;
}

/* Seeds: one filter of every shape, so mutations start inside the
 * grammar. */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	static const char *const seeds[] = {
		"{}",
		"{\"must\":[{\"key\":\"cat\",\"match\":{\"value\":\"a\"}}]}",
		"{\"must\":[{\"key\":\"n\",\"match\":{\"value\":3}},{\"key\":\"flag\",\"match\":{\"value\":true}}]}",
		"{\"should\":[{\"key\":\"cat\",\"match\":{\"any\":[\"a\",\"b\"]}},{\"key\":\"n\",\"match\":{\"any\":[1,2,3]}}]}",
		"{\"must_not\":[{\"key\":\"cat\",\"match\":{\"except\":[\"a\"]}},{\"key\":\"n\",\"match\":{\"except\":[1]}}]}",
		"{\"must\":[{\"key\":\"price\",\"range\":{\"gt\":1,\"lte\":5}},{\"key\":\"n\",\"range\":{\"gte\":-3.5,\"lt\":10}}]}",
		"{\"must\":[{\"is_null\":{\"key\":\"price\"}}],\"must_not\":[{\"is_empty\":{\"key\":\"meta.color\"}}]}",
		"{\"must\":[{\"should\":[{\"key\":\"meta.color\",\"match\":{\"value\":\"red\"}},{\"must_not\":[{\"key\":\"x.y.z\",\"range\":{\"lt\":2}}]}]},{}]}",
		"{\"must\":[{\"key\":\"p\",\"range\":{\"gtx\":1}}]}",
	};
	for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
		int rc = emit(ud, (const uint8_t *)seeds[i], strlen(seeds[i]));
		if (rc)
			return rc;
	}
	return 0;
}
