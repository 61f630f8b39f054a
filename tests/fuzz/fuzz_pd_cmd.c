/* fuzz_pd_cmd.c: libFuzzer target for the placement driver's command
 * decoder and apply (lib/pd/cmd.c, apply.c), which read whatever sits in
 * the PD's Raft log. Any input must decode or be refused with a VT_E* code
 * and a message; a decoded command must re-encode to exactly the input
 * bytes and decode again to the same fields. Then the input is applied to
 * a small cluster: the index is always consumed, the epoch moves only on
 * success, and the result survives a snapshot round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "pd/cmd.h"
#include "pd/meta.h"
#include "fuzz.h"

static int same_str(const char *a, uint32_t an, const char *b, uint32_t bn)
{
	return an == bn && (!an || !memcmp(a, b, an));
}

static int same(const vt_pd_cmd *a, const vt_pd_cmd *b)
{
	if (a->type != b->type || a->worker != b->worker ||
	    a->capacity != b->capacity || a->role != b->role ||
	    a->state != b->state || a->shard_count != b->shard_count ||
	    a->rf != b->rf || a->shard != b->shard ||
	    a->expect_epoch != b->expect_epoch || a->term != b->term ||
	    a->n_slots != b->n_slots ||
	    !same_str(a->addr, a->addr_len, b->addr, b->addr_len) ||
	    !same_str(a->zone, a->zone_len, b->zone, b->zone_len) ||
	    !same_str(a->rack, a->rack_len, b->rack, b->rack_len) ||
	    !same_str(a->name, a->name_len, b->name, b->name_len) ||
	    !same_str((const char *)a->config, a->config_len,
		      (const char *)b->config, b->config_len))
		return 0;
	for (uint32_t i = 0; i < a->n_slots; i++)
		if (a->slots[i].shard != b->slots[i].shard ||
		    a->slots[i].worker != b->slots[i].worker ||
		    a->slots[i].role != b->slots[i].role)
			return 0;
	return 1;
}

static void apply_text(vt_pd_meta *m, const void *p, size_t len)
{
	if (vt_pd_apply(m, 0, p, len, NULL, NULL))
		abort();
}

/* Three workers in two zones, a search-only one, a collection "c" of two
 * shards with rf 2. */
static vt_pd_meta *cluster(void)
{
	vt_pd_meta *m;
	if (vt_pd_meta_new(&m))
		abort();
	vt_buf b;
	vt_buf_init(&b, 4096);
	for (uint64_t id = 1; id <= 4; id++) {
		vt_pd_cmd c = {.type = VT_PD_CMD_REGISTER_WORKER, .worker = id,
			       .addr = "h:1", .addr_len = 3, .capacity = id,
			       .zone = id % 2 ? "a" : "b", .zone_len = 1,
			       .role = id == 4};
		vt_buf_reset(&b);
		if (vt_pd_cmd_encode(&c, &b, NULL))
			abort();
		apply_text(m, b.data, b.len);
	}
	vt_pd_slot sl[4] = {{0, 1, 0}, {0, 2, 0}, {1, 2, 0}, {1, 3, 0}};
	vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION, .name = "c",
		       .name_len = 1, .shard_count = 2, .rf = 2, .n_slots = 4,
		       .slots = sl};
	vt_buf_reset(&b);
	if (vt_pd_cmd_encode(&c, &b, NULL))
		abort();
	apply_text(m, b.data, b.len);
	vt_buf_free(&b);
	return m;
}

static void check_apply(const uint8_t *p, size_t len)
{
	vt_pd_meta *m = cluster(), *r;
	uint64_t ap = vt_pd_meta_applied(m), ep = vt_pd_meta_epoch(m);
	vt_errmsg e = {{0}};
	vt_pd_result res;
	int rc = vt_pd_apply(m, 0, p, len, &res, &e);
	if (rc == VT_ENOMEM)
		abort(); /* no injection here */
	if (vt_pd_meta_applied(m) != ap + 1 || res.index != ap + 1 ||
	    (rc && (vt_pd_meta_epoch(m) != ep || !e.msg[0])) ||
	    (!rc && vt_pd_meta_epoch(m) > ep + 1))
		abort();
	vt_buf a, b;
	vt_buf_init(&a, 1u << 24);
	vt_buf_init(&b, 1u << 24);
	if (vt_pd_snapshot(m, &a) || vt_pd_meta_new(&r) ||
	    vt_pd_restore(r, a.data, a.len, &e) || vt_pd_snapshot(r, &b) ||
	    a.len != b.len || memcmp(a.data, b.data, a.len))
		abort();
	vt_buf_free(&a);
	vt_buf_free(&b);
	vt_pd_meta_free(r);
	vt_pd_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* A copy of exactly len bytes, so ASan sees any overread. */
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data, len);
	vt_pd_cmd c;
	vt_errmsg e = {{0}};
	int rc = vt_pd_cmd_decode(p, len, &c, &e);
	if (rc) {
		if (rc >= 0 || !e.msg[0] || c.slots)
			abort();
	} else {
		vt_buf b;
		vt_buf_init(&b, len);
		vt_pd_cmd c2;
		if (vt_pd_cmd_encode(&c, &b, &e) || b.len != len ||
		    memcmp(b.data, p, len) ||
		    vt_pd_cmd_decode(b.data, b.len, &c2, &e) || !same(&c, &c2))
			abort();
		vt_pd_cmd_release(&c2);
		vt_buf_free(&b);
		vt_pd_cmd_release(&c);
	}
	check_apply(p, len);
	free(p);
	return 0;
}

/* Seeds: one valid command of every type, against the cluster above. */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_pd_slot sl[3] = {{0, 1, 0}, {0, 3, 0}, {0, 4, 1}};
	const vt_pd_cmd cmds[] = {
		{.type = VT_PD_CMD_REGISTER_WORKER, .worker = 9,
		 .addr = "10.0.0.9:7000", .addr_len = 13, .capacity = 2,
		 .zone = "z", .zone_len = 1, .rack = "r1", .rack_len = 2},
		{.type = VT_PD_CMD_SET_WORKER_STATE, .worker = 2, .state = 1},
		{.type = VT_PD_CMD_CREATE_COLLECTION, .name = "d",
		 .name_len = 1, .config = (const uint8_t *)"{}",
		 .config_len = 2, .shard_count = 1, .rf = 2, .n_slots = 3,
		 .slots = sl},
		{.type = VT_PD_CMD_DROP_COLLECTION, .name = "c", .name_len = 1},
		{.type = VT_PD_CMD_ADD_REPLICA, .name = "c", .name_len = 1,
		 .shard = 0, .worker = 3, .role = 1},
		{.type = VT_PD_CMD_REMOVE_REPLICA, .name = "c", .name_len = 1,
		 .shard = 1, .worker = 3},
		{.type = VT_PD_CMD_PROMOTE, .name = "c", .name_len = 1,
		 .shard = 0, .worker = 2, .role = 1},
		{.type = VT_PD_CMD_SET_LEADER, .name = "c", .name_len = 1,
		 .shard = 1, .worker = 2, .term = 3},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0] && !rc; i++) {
		vt_buf b;
		vt_buf_init(&b, 4096);
		if (vt_pd_cmd_encode(&cmds[i], &b, NULL))
			abort();
		rc = emit(ud, b.data, b.len);
		vt_buf_free(&b);
	}
	return rc;
}
