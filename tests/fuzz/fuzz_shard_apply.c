/* fuzz_shard_apply.c: libFuzzer target for the whole write path of a
 * shard: arbitrary bytes go through vt_shard_validate and vt_shard_apply
 * on a small open shard (sync index, one indexed field). Validate and
 * apply must agree on whether the command is acceptable, refusals must be
 * VT_E* codes with a message, and after every input the index must hold
 * exactly the store's points and cover the applied index. The shard lives
 * in /dev/shm when it exists (every apply commits with fsync), else /tmp,
 * is recreated every 2,000 inputs and removed at exit. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "shard/shard.h"
#include "fuzz.h"

#define DIM 4
#define STR(x) x, strlen(x)

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char dir[64];
static vt_shard *shard;
static unsigned runs;

static void shard_drop(void)
{
	if (!dir[0])
		return;
	vt_shard_close(shard);
	shard = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = 0;
}

static void shard_fresh(void)
{
	static int registered;
	shard_drop();
	vt_log_set_level(VT_LOG_OFF);
	snprintf(dir, sizeof dir, "%s/vt_fuzz_apply_XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		abort();
	vt_shard_config cfg;
	vt_shard_config_default(&cfg, DIM, VT_METRIC_L2);
	cfg.m = 4;
	cfg.ef_construction = 16;
	cfg.n_fields = 2;
	strcpy(cfg.fields[0].path, "c");
	cfg.fields[0].type = VT_PAYLOAD_INTEGER;
	strcpy(cfg.fields[1].path, "k");
	cfg.fields[1].type = VT_PAYLOAD_KEYWORD;
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.background = 0;
	o.index_threads = 1;
	o.snapshot_entries = 0;
	o.limits.max_points = 64;
	o.limits.max_payload = 4096;
	o.limits.max_filter = 4096;
	vt_errmsg e = {{0}};
	if (vt_shard_open(dir, &o, &shard, &e)) {
		fprintf(stderr, "open %s: %s\n", dir, e.msg);
		abort();
	}
	if (!registered) {
		atexit(shard_drop);
		registered = 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!shard || ++runs % 2000 == 0)
		shard_fresh();
	/* A copy of exactly len bytes, so ASan sees any overread. */
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data, len);
	vt_errmsg e = {{0}}, e2 = {{0}};
	int vrc = vt_shard_validate(shard, p, len, &e);
	vt_shard_status before, st;
	if (vt_shard_status_get(shard, &before))
		abort();
	vt_shard_result res;
	int rc = vt_shard_apply(shard, 0, p, len, &res, &e2);
	if (rc >= 0 && vrc < 0 && vrc != VT_ENOENT)
		abort(); /* validate refused what apply took */
	if (rc < 0 && !e2.msg[0])
		abort();
	if ((vrc < 0 && !e.msg[0]) || vrc > 0 || rc > 0)
		abort();
	if (vt_shard_status_get(shard, &st) || st.points != st.index_points ||
	    st.applied != before.applied + 1 || st.indexed != st.applied ||
	    (rc < 0 && st.points != before.points))
		abort();
	free(p);
	return 0;
}

/* Seeds: one command of each type, written for this shard (dim 4, fields
 * "c" integer and "k" keyword). */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_buf c;
	vt_buf_init(&c, 1u << 16);
	int rc = 0;
	for (int shape = 0; shape < 6 && !rc; shape++) {
		const float v[DIM] = {0.5f, -1.0f, 2.0f, 0.0f};
		switch (shape) {
		case 0:
			vt_cmd_enc_begin(&c, VT_CMD_UPSERT, 0, DIM);
			vt_cmd_enc_upsert(&c, "a", 1, v, DIM,
					  STR("{\"c\":1,\"k\":\"x\"}"));
			vt_cmd_enc_upsert(&c, "b", 1, v, DIM, NULL, 0);
			vt_cmd_enc_upsert(&c, "c", 1, v, DIM,
					  STR("{\"c\":2,\"n\":{\"d\":[1,2.5,null]}}"));
			vt_cmd_enc_end(&c, 3);
			break;
		case 1:
			vt_cmd_enc_begin(&c, VT_CMD_DELETE_IDS, 0, 0);
			vt_cmd_enc_id(&c, "a", 1);
			vt_cmd_enc_id(&c, "zz", 2);
			vt_cmd_enc_end(&c, 2);
			break;
		case 2:
			vt_cmd_enc_begin(&c, VT_CMD_DELETE_FILTER, 0, 0);
			vt_cmd_enc_filter(&c,
					  STR("{\"must\":[{\"key\":\"c\","
					      "\"match\":{\"value\":2}}]}"));
			vt_cmd_enc_end(&c, 0);
			break;
		case 3:
			vt_cmd_enc_begin(&c, VT_CMD_DELETE_FILTER, 0, 0);
			vt_cmd_enc_filter(&c,
					  STR("{\"should\":[{\"key\":\"k\","
					      "\"match\":{\"any\":[\"x\","
					      "\"y\"]}},{\"key\":\"c\","
					      "\"range\":{\"gte\":5}}]}"));
			vt_cmd_enc_end(&c, 0);
			break;
		case 4:
			vt_cmd_enc_begin(&c, VT_CMD_SET_PAYLOAD, VT_CMD_MERGE, 0);
			vt_cmd_enc_payload(&c, "b", 1, STR("{\"k\":\"y\"}"));
			vt_cmd_enc_end(&c, 1);
			break;
		default:
			vt_cmd_enc_begin(&c, VT_CMD_SET_PAYLOAD, 0, 0);
			vt_cmd_enc_payload(&c, "c", 1, STR("{\"c\":7}"));
			vt_cmd_enc_end(&c, 1);
			break;
		}
		rc = emit(ud, c.data, c.len);
	}
	vt_buf_free(&c);
	return rc;
}
