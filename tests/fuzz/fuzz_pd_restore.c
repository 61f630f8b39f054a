/* fuzz_pd_restore.c: libFuzzer target for the placement driver's snapshot
 * reader (lib/pd/snap.c). The input is a snapshot without its checksum:
 * the target appends the right one, so mutations reach the parser instead
 * of stopping at the checksum. A snapshot that restores must write back to
 * exactly the same bytes (one encoding); one that does not must leave the
 * metadata as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hash.h"
#include "pd/cmd.h"
#include "pd/meta.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint8_t *p = malloc(len + 8);
	memcpy(p, data, len);
	vt_le_put64(p + len, vt_hash64(p, len, 0));
	vt_pd_meta *m;
	if (vt_pd_meta_new(&m))
		abort();
	vt_errmsg e = {{0}};
	int rc = vt_pd_restore(m, p, len + 8, &e);
	vt_buf b;
	vt_buf_init(&b, 1u << 26);
	if (vt_pd_snapshot(m, &b))
		abort();
	if (rc) {
		if (rc >= 0 || !e.msg[0] || vt_pd_meta_epoch(m) ||
		    vt_pd_meta_worker_count(m))
			abort();
	} else if (b.len != len + 8 || memcmp(b.data, p, len + 8)) {
		abort();
	}
	vt_buf_free(&b);
	vt_pd_meta_free(m);
	free(p);
	return 0;
}

static void apply(vt_pd_meta *m, const vt_pd_cmd *c)
{
	vt_buf b;
	vt_buf_init(&b, 4096);
	if (vt_pd_cmd_encode(c, &b, NULL) ||
	    vt_pd_apply(m, 0, b.data, b.len, NULL, NULL))
		abort();
	vt_buf_free(&b);
}

/* Seeds: snapshots (checksum stripped) of an empty and a small cluster. */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_pd_meta *m;
	if (vt_pd_meta_new(&m))
		abort();
	int rc = 0;
	for (int round = 0; round < 2 && !rc; round++) {
		if (round == 1) {
			for (uint64_t id = 1; id <= 3; id++) {
				vt_pd_cmd c = {
					.type = VT_PD_CMD_REGISTER_WORKER,
					.worker = id, .addr = "h:1",
					.addr_len = 3, .capacity = 1,
					.zone = "z", .zone_len = 1,
					.role = id == 3};
				apply(m, &c);
			}
			vt_pd_slot sl[3] = {{0, 1, 0}, {0, 3, 1}, {1, 2, 0}};
			vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION,
				       .name = "c", .name_len = 1,
				       .config = (const uint8_t *)"cfg",
				       .config_len = 3, .shard_count = 2,
				       .rf = 1, .n_slots = 3, .slots = sl};
			apply(m, &c);
			vt_pd_cmd l = {.type = VT_PD_CMD_SET_LEADER,
				       .name = "c", .name_len = 1, .shard = 0,
				       .worker = 1, .term = 4};
			apply(m, &l);
		}
		vt_buf b;
		vt_buf_init(&b, 1u << 20);
		if (vt_pd_snapshot(m, &b))
			abort();
		rc = emit(ud, b.data, b.len - 8);
		vt_buf_free(&b);
	}
	vt_pd_meta_free(m);
	return rc;
}
