/* fuzz_store_record.c: libFuzzer target for the point-record decoder of
 * lib/store, the one thing the store parses from disk itself (LMDB's own
 * pages are trusted: it has no checksums, see docs/store.md). Any input must
 * decode to pointers that stay inside it, or be refused with VT_ECORRUPT /
 * VT_EVERSION; nothing may crash. The first byte picks the expected dim. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	uint32_t dim = data[0] % 8; /* 0 = any dim */
	data++;
	len--;
	/* A copy of exactly len bytes, so ASan sees any overread. */
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data, len);
	vt_store_point pt;
	vt_errmsg e;
	int rc = vt__store_rec_decode(p, len, dim, 7, &pt, &e);
	if (rc) {
		if (rc != VT_ECORRUPT && rc != VT_EVERSION)
			abort();
	} else {
		const uint8_t *lo = p, *hi = p + len;
		const uint8_t *v = (const uint8_t *)pt.vec;
		if (pt.label != 7 || (dim && pt.dim != dim) || pt.id_len == 0 ||
		    v < lo || v + (size_t)pt.dim * 4 > hi ||
		    (const uint8_t *)pt.id < lo ||
		    (const uint8_t *)pt.id + pt.id_len > hi ||
		    (pt.payload_len &&
		     ((const uint8_t *)pt.payload < lo ||
		      (const uint8_t *)pt.payload + pt.payload_len > hi)))
			abort();
		/* Touch every byte it points at. */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < (size_t)pt.dim * 4; i++)
			sink ^= v[i];
		for (size_t i = 0; i < pt.id_len; i++)
			sink ^= (uint8_t)pt.id[i];
		for (size_t i = 0; i < pt.payload_len; i++)
			sink ^= ((const uint8_t *)pt.payload)[i];
		(void)sink;
	}
	free(p);
	return 0;
}

/* Seeds: valid records of a few shapes (with and without payload, long
 * ids, every dim the first byte can ask for). */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	for (uint32_t dim = 1; dim < 8; dim++) {
		for (int shape = 0; shape < 3; shape++) {
			float v[8];
			for (uint32_t j = 0; j < dim; j++)
				v[j] = (float)j - 1.5f;
			char id[VT_STORE_MAX_ID];
			size_t id_len = shape == 2 ? VT_STORE_MAX_ID : 1 + (size_t)shape * 5;
			memset(id, 'a' + shape, id_len);
			const char *pl = shape == 0 ? NULL : "{\"k\":[1,2,3]}";
			size_t pl_len = pl ? strlen(pl) : 0;
			size_t n = vt__store_rec_size(dim, id_len, pl_len);
			uint8_t *b = malloc(n + 1);
			b[0] = (uint8_t)dim;
			vt__store_rec_encode(b + 1, v, dim, id, id_len, pl, pl_len);
			int rc = emit(ud, b, n + 1);
			free(b);
			if (rc)
				return rc;
		}
	}
	return 0;
}
