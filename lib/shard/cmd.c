/* cmd.c: encoding and bounds-checked decoding of shard commands (cmd.h). */
#include "cmd.h"

#include <string.h>

#include "base/alloc.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the command format stores floats as little-endian bytes"
#endif

#define HDR_BYTES 8u

void vt_cmd_limits_default(vt_cmd_limits *lim)
{
	lim->max_points = 10000;
	lim->max_id = 256;
	lim->max_dim = 65535;
	lim->max_payload = 65536;
	lim->max_filter = 1u << 20;
}

const char *vt_cmd_type_name(int type)
{
	switch (type) {
	case VT_CMD_UPSERT:
		return "upsert";
	case VT_CMD_DELETE_IDS:
		return "delete_ids";
	case VT_CMD_DELETE_FILTER:
		return "delete_filter";
	case VT_CMD_SET_PAYLOAD:
		return "set_payload";
	}
	return "?";
}

static int get_u16(vt_reader *r, uint16_t *out)
{
	uint8_t b[2];
	int rc = vt_reader_get(r, b, 2);
	if (!rc)
		*out = (uint16_t)(b[0] | (b[1] << 8));
	return rc;
}

#define TRUNC(what)                                                            \
	vt_errmsg_set(err, VT_ECORRUPT, "command: entry %u: truncated %s", i,  \
		      what)

static int get_id(vt_reader *r, const vt_cmd_limits *lim, vt_cmd_point *pt,
		  uint32_t i, vt_errmsg *err)
{
	uint16_t n;
	if (get_u16(r, &n))
		return TRUNC("id length");
	if (n == 0)
		return vt_errmsg_set(err, VT_EINVAL, "command: entry %u: empty id",
				     i);
	if (n > lim->max_id)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "command: entry %u: id of %u bytes (max %u)",
				     i, n, lim->max_id);
	const void *p;
	if (vt_reader_ptr(r, &p, n))
		return TRUNC("id");
	pt->id = p;
	pt->id_len = n;
	return 0;
}

static int get_payload(vt_reader *r, const vt_cmd_limits *lim,
		       vt_cmd_point *pt, uint32_t i, vt_errmsg *err)
{
	uint32_t n;
	if (vt_reader_u32(r, &n))
		return TRUNC("payload length");
	if (n > lim->max_payload)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "command: entry %u: payload of %u bytes "
				     "(max %u)",
				     i, n, lim->max_payload);
	const void *p = NULL;
	if (n && vt_reader_ptr(r, &p, n))
		return TRUNC("payload");
	pt->payload = p;
	pt->payload_len = n;
	return 0;
}

int vt_cmd_decode(const void *bytes, size_t len, const vt_cmd_limits *lim_in,
		  vt_cmd *cmd, vt_errmsg *err)
{
	vt_cmd_limits lim;
	if (lim_in)
		lim = *lim_in;
	else
		vt_cmd_limits_default(&lim);
	memset(cmd, 0, sizeof *cmd);
	vt_reader r;
	vt_reader_init(&r, bytes, len);
	uint8_t version, type;
	uint16_t flags;
	uint32_t count, i = 0;
	if (vt_reader_u8(&r, &version) || vt_reader_u8(&r, &type) ||
	    get_u16(&r, &flags) || vt_reader_u32(&r, &count))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "command: %zu bytes, shorter than the "
				     "header",
				     len);
	if (version != VT_CMD_VERSION)
		return vt_errmsg_set(err, VT_EVERSION,
				     "command: version %u (this build reads %u)",
				     version, VT_CMD_VERSION);
	if (type < VT_CMD_UPSERT || type > VT_CMD_SET_PAYLOAD)
		return vt_errmsg_set(err, VT_EINVAL, "command: unknown type %u",
				     type);
	uint32_t allowed = type == VT_CMD_SET_PAYLOAD ? VT_CMD_MERGE : 0;
	if (flags & ~allowed)
		return vt_errmsg_set(err, VT_EINVAL,
				     "command: unknown flags 0x%x for %s", flags,
				     vt_cmd_type_name(type));
	cmd->type = type;
	cmd->flags = flags;
	if (type == VT_CMD_DELETE_FILTER) {
		uint32_t n;
		const void *p;
		if (count != 0)
			return vt_errmsg_set(err, VT_ECORRUPT,
					     "command: delete_filter with count "
					     "%u",
					     count);
		if (vt_reader_u32(&r, &n))
			return vt_errmsg_set(err, VT_ECORRUPT,
					     "command: truncated filter length");
		if (n == 0)
			return vt_errmsg_set(err, VT_EINVAL,
					     "command: empty filter");
		if (n > lim.max_filter)
			return vt_errmsg_set(err, VT_ELIMIT,
					     "command: filter of %u bytes (max "
					     "%u)",
					     n, lim.max_filter);
		if (vt_reader_ptr(&r, &p, n))
			return vt_errmsg_set(err, VT_ECORRUPT,
					     "command: truncated filter");
		cmd->filter = p;
		cmd->filter_len = n;
		goto tail;
	}
	if (count == 0)
		return vt_errmsg_set(err, VT_EINVAL, "command: %s with no entries",
				     vt_cmd_type_name(type));
	if (count > lim.max_points)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "command: %u entries (max %u per command)",
				     count, lim.max_points);
	if (type == VT_CMD_UPSERT) {
		if (vt_reader_u32(&r, &cmd->dim))
			return vt_errmsg_set(err, VT_ECORRUPT,
					     "command: truncated dimension");
		if (cmd->dim == 0 || cmd->dim > lim.max_dim)
			return vt_errmsg_set(err, VT_EINVAL,
					     "command: dimension %u (1..%u)",
					     cmd->dim, lim.max_dim);
	}
	/* Each entry takes at least 3 bytes, so a count the bytes cannot hold
	 * is refused before allocating for it. */
	if ((size_t)count * 3 > vt_reader_left(&r))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "command: %u entries cannot fit in %zu "
				     "bytes",
				     count, vt_reader_left(&r));
	cmd->points = vt_calloc(count, sizeof *cmd->points);
	if (!cmd->points)
		return vt_errmsg_set(err, VT_ENOMEM, "command: out of memory");
	cmd->n = count;
	int rc;
	for (i = 0; i < count; i++) {
		vt_cmd_point *pt = &cmd->points[i];
		if ((rc = get_id(&r, &lim, pt, i, err)))
			goto fail;
		if (type == VT_CMD_UPSERT) {
			const void *v;
			if (vt_reader_ptr(&r, &v, (size_t)cmd->dim * 4)) {
				rc = TRUNC("vector");
				goto fail;
			}
			pt->vec = v;
		}
		if (type != VT_CMD_DELETE_IDS &&
		    (rc = get_payload(&r, &lim, pt, i, err)))
			goto fail;
	}
tail:
	if (vt_reader_left(&r)) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "command: %zu trailing bytes",
				   vt_reader_left(&r));
		goto fail;
	}
	return 0;
fail:
	vt_cmd_release(cmd);
	return rc;
}

void vt_cmd_release(vt_cmd *cmd)
{
	vt_free(cmd->points);
	cmd->points = NULL;
	cmd->n = 0;
}

void vt_cmd_vector(const vt_cmd *cmd, uint32_t i, float *out)
{
	memcpy(out, cmd->points[i].vec, (size_t)cmd->dim * 4);
}

/* ---- encoding ------------------------------------------------------------ */

static int put_u16(vt_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	return vt_buf_append(b, x, 2);
}

int vt_cmd_enc_begin(vt_buf *b, int type, uint32_t flags, uint32_t dim)
{
	int rc;
	vt_buf_reset(b);
	if ((rc = vt_buf_put_u8(b, VT_CMD_VERSION)) ||
	    (rc = vt_buf_put_u8(b, (uint8_t)type)) ||
	    (rc = put_u16(b, (uint16_t)flags)) || (rc = vt_buf_put_u32(b, 0)))
		return rc;
	if (type == VT_CMD_UPSERT)
		return vt_buf_put_u32(b, dim);
	return 0;
}

int vt_cmd_enc_id(vt_buf *b, const void *id, size_t id_len)
{
	if (id_len > UINT16_MAX)
		return VT_EINVAL;
	int rc = put_u16(b, (uint16_t)id_len);
	return rc ? rc : vt_buf_append(b, id, id_len);
}

static int put_blob(vt_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX)
		return VT_EINVAL;
	int rc = vt_buf_put_u32(b, (uint32_t)n);
	return rc || !n ? rc : vt_buf_append(b, p, n);
}

int vt_cmd_enc_upsert(vt_buf *b, const void *id, size_t id_len,
		      const float *vec, uint32_t dim, const void *payload,
		      size_t payload_len)
{
	int rc;
	if ((rc = vt_cmd_enc_id(b, id, id_len)) ||
	    (rc = vt_buf_append(b, vec, (size_t)dim * 4)))
		return rc;
	return put_blob(b, payload, payload_len);
}

int vt_cmd_enc_payload(vt_buf *b, const void *id, size_t id_len,
		       const void *payload, size_t payload_len)
{
	int rc = vt_cmd_enc_id(b, id, id_len);
	return rc ? rc : put_blob(b, payload, payload_len);
}

int vt_cmd_enc_filter(vt_buf *b, const char *filter, size_t len)
{
	return put_blob(b, filter, len);
}

int vt_cmd_enc_end(vt_buf *b, uint32_t count)
{
	if (b->len < HDR_BYTES)
		return VT_EINVAL;
	for (int k = 0; k < 4; k++)
		b->data[4 + k] = (uint8_t)(count >> (8 * k));
	return 0;
}
