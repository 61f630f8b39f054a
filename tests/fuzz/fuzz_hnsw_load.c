/* fuzz_hnsw_load.c: libFuzzer target for the index loader. Any input must
 * either load (and then survive a search, an insert and a save) or be
 * refused with VT_ECORRUPT / VT_EVERSION; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "hnsw/hnsw.h"
#include "fuzz.h"

static int sink(void *ud, const void *p, size_t n)
{
	return vt_buf_append(ud, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int quiet;
	if (!quiet) {
		vt_log_set_level(VT_LOG_OFF);
		quiet = 1;
	}
	vt_hnsw *h = NULL;
	vt_errmsg e;
	int rc = vt_hnsw_load_mem(data, len, NULL, &h, &e);
	if (rc) {
		if (h || (rc != VT_ECORRUPT && rc != VT_EVERSION && rc != VT_ENOMEM))
			abort();
		return 0;
	}
	/* A loaded index must be fully usable. */
	vt_hnsw_params p;
	vt_hnsw_params_get(h, &p);
	float *q = calloc(p.dim, sizeof *q);
	q[0] = 1.0f;
	vt_hnsw_query qq;
	vt_hnsw_hit hits[8];
	size_t n;
	vt_hnsw_query_default(&qq, 8);
	if (vt_hnsw_search(h, q, &qq, hits, &n))
		abort();
	qq.exact = 1;
	if (vt_hnsw_search(h, q, &qq, hits, &n))
		abort();
	if (vt_hnsw_insert(h, 0xfeedull, q))
		abort();
	vt_hnsw_consolidate(h);
	vt_buf b;
	vt_buf_init(&b, 1u << 28);
	if (vt_hnsw_save(h, sink, &b, NULL))
		abort();
	vt_buf_free(&b);
	free(q);
	vt_hnsw_destroy(h);
	return 0;
}

/* Seeds: small valid files of every metric and quantization, with
 * tombstones and freed slots, so the fuzzer starts past the checksums. */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_log_set_level(VT_LOG_OFF);
	for (int variant = 0; variant < 6; variant++) {
		vt_hnsw_params p;
		vt_hnsw *h;
		vt_hnsw_params_default(&p, 3 + (uint32_t)variant, variant % 3);
		p.m = 4;
		p.quant = variant >= 3 ? VT_QUANT_INT8 : VT_QUANT_NONE;
		p.train_size = 10;
		p.initial_capacity = 8;
		if (vt_hnsw_create(&p, &h, NULL))
			return -1;
		uint32_t npts = variant == 0 ? 0 : 40;
		for (uint32_t i = 0; i < npts; i++) {
			float v[8];
			for (uint32_t j = 0; j < p.dim; j++)
				v[j] = (float)((i * 7 + j * 13) % 17) - 3.0f;
			v[0] += 1.0f;
			vt_hnsw_insert(h, i, v);
		}
		for (uint32_t i = 0; i < npts; i += 5)
			vt_hnsw_delete(h, i);
		if (variant % 2)
			vt_hnsw_consolidate(h);
		vt_buf b;
		vt_buf_init(&b, 1u << 24);
		int rc = vt_hnsw_save(h, sink, &b, NULL);
		if (!rc)
			rc = emit(ud, b.data, b.len);
		vt_buf_free(&b);
		vt_hnsw_destroy(h);
		if (rc)
			return rc;
	}
	return 0;
}
