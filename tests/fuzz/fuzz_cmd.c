/* fuzz_cmd.c: libFuzzer target for the shard's command decoder
 * (lib/shard/cmd.c), which reads whatever sits in a Raft log entry. Any
 * input must decode to entries that point inside it, or be refused with a
 * VT_E* code and a message; nothing may crash. A decoded command must
 * re-encode, through the vt_cmd_enc_* functions, to exactly the input bytes
 * (the format has one encoding) and decode again to the same entries. The
 * first byte picks default or small limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "shard/cmd.h"
#include "fuzz.h"

static int inside(const void *p, size_t n, const uint8_t *lo, size_t len)
{
	const uint8_t *b = p;
	return n == 0 || (b >= lo && b + n <= lo + len);
}

static int reencode(const vt_cmd *c, vt_buf *b)
{
	float *v = malloc(((size_t)c->dim ? c->dim : 1) * sizeof *v);
	int rc = vt_cmd_enc_begin(b, c->type, c->flags, c->dim);
	if (!rc && c->type == VT_CMD_DELETE_FILTER)
		rc = vt_cmd_enc_filter(b, c->filter, c->filter_len);
	for (uint32_t i = 0; i < c->n && !rc; i++) {
		const vt_cmd_point *pt = &c->points[i];
		switch (c->type) {
		case VT_CMD_UPSERT:
			vt_cmd_vector(c, i, v);
			rc = vt_cmd_enc_upsert(b, pt->id, pt->id_len, v, c->dim,
					       pt->payload, pt->payload_len);
			break;
		case VT_CMD_DELETE_IDS:
			rc = vt_cmd_enc_id(b, pt->id, pt->id_len);
			break;
		default:
			rc = vt_cmd_enc_payload(b, pt->id, pt->id_len,
						pt->payload, pt->payload_len);
		}
	}
	if (!rc)
		rc = vt_cmd_enc_end(b, c->n);
	free(v);
	return rc;
}

static int same(const vt_cmd *a, const vt_cmd *b)
{
	if (a->type != b->type || a->flags != b->flags || a->dim != b->dim ||
	    a->n != b->n || a->filter_len != b->filter_len ||
	    (a->filter_len && memcmp(a->filter, b->filter, a->filter_len)))
		return 0;
	for (uint32_t i = 0; i < a->n; i++) {
		const vt_cmd_point *x = &a->points[i], *y = &b->points[i];
		if (x->id_len != y->id_len || memcmp(x->id, y->id, x->id_len) ||
		    x->payload_len != y->payload_len ||
		    (x->payload_len &&
		     memcmp(x->payload, y->payload, x->payload_len)) ||
		    (a->type == VT_CMD_UPSERT &&
		     memcmp(x->vec, y->vec, (size_t)a->dim * 4)))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	vt_cmd_limits lim;
	vt_cmd_limits_default(&lim);
	if (data[0] & 1) {
		lim.max_points = 4;
		lim.max_id = 8;
		lim.max_dim = 8;
		lim.max_payload = 32;
		lim.max_filter = 32;
	}
	data++;
	len--;
	/* A copy of exactly len bytes, so ASan sees any overread. */
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data, len);
	vt_cmd c;
	vt_errmsg e = {{0}};
	int rc = vt_cmd_decode(p, len, &lim, &c, &e);
	if (rc) {
		if (rc >= 0 || !e.msg[0] || c.points)
			abort();
		free(p);
		return 0;
	}
	if (c.type < VT_CMD_UPSERT || c.type > VT_CMD_SET_PAYLOAD ||
	    c.n > lim.max_points ||
	    !inside(c.filter, c.filter_len, p, len) ||
	    (c.type == VT_CMD_DELETE_FILTER) != (c.filter_len > 0) ||
	    (c.type == VT_CMD_UPSERT) != (c.dim > 0) || c.dim > lim.max_dim)
		abort();
	for (uint32_t i = 0; i < c.n; i++) {
		const vt_cmd_point *pt = &c.points[i];
		if (!pt->id_len || pt->id_len > lim.max_id ||
		    pt->payload_len > lim.max_payload ||
		    !inside(pt->id, pt->id_len, p, len) ||
		    !inside(pt->payload, pt->payload_len, p, len) ||
		    (c.type == VT_CMD_UPSERT &&
		     !inside(pt->vec, (size_t)c.dim * 4, p, len)))
			abort();
	}
	vt_buf b;
	vt_buf_init(&b, len);
	if (reencode(&c, &b) || b.len != len || memcmp(b.data, p, len))
		abort();
	vt_cmd c2;
	if (vt_cmd_decode(b.data, b.len, &lim, &c2, &e) || !same(&c, &c2))
		abort();
	vt_cmd_release(&c2);
	vt_buf_free(&b);
	vt_cmd_release(&c);
	free(p);
	return 0;
}

/* Seeds: one valid command of each type and shape, under both limits. */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_buf b;
	vt_buf_init(&b, 1u << 16);
	int rc = 0;
	for (int shape = 0; shape < 6 && !rc; shape++) {
		const float v[4] = {0.5f, -1.0f, 2.0f, 0.0f};
		const char *pl = "{\"a\":1}";
		vt_buf_reset(&b);
		vt_buf_put_u8(&b, (uint8_t)(shape & 1)); /* limits byte */
		vt_buf c;
		vt_buf_init(&c, 1u << 16);
		switch (shape) {
		case 0:
		case 1:
			vt_cmd_enc_begin(&c, VT_CMD_UPSERT, 0, 4);
			vt_cmd_enc_upsert(&c, "a", 1, v, 4, pl, strlen(pl));
			vt_cmd_enc_upsert(&c, "bb", 2, v, 4, NULL, 0);
			vt_cmd_enc_end(&c, 2);
			break;
		case 2:
			vt_cmd_enc_begin(&c, VT_CMD_DELETE_IDS, 0, 0);
			vt_cmd_enc_id(&c, "a", 1);
			vt_cmd_enc_id(&c, "point-17", 8);
			vt_cmd_enc_end(&c, 2);
			break;
		case 3:
			vt_cmd_enc_begin(&c, VT_CMD_DELETE_FILTER, 0, 0);
			vt_cmd_enc_filter(&c, "{\"must\":[]}", 11);
			vt_cmd_enc_end(&c, 0);
			break;
		case 4:
			vt_cmd_enc_begin(&c, VT_CMD_SET_PAYLOAD, VT_CMD_MERGE, 0);
			vt_cmd_enc_payload(&c, "a", 1, pl, strlen(pl));
			vt_cmd_enc_end(&c, 1);
			break;
		default:
			vt_cmd_enc_begin(&c, VT_CMD_SET_PAYLOAD, 0, 0);
			vt_cmd_enc_payload(&c, "abc", 3, "{}", 2);
			vt_cmd_enc_payload(&c, "d", 1, NULL, 0);
			vt_cmd_enc_end(&c, 2);
			break;
		}
		vt_buf_append(&b, c.data, c.len);
		vt_buf_free(&c);
		rc = emit(ud, b.data, b.len);
	}
	vt_buf_free(&b);
	return rc;
}
