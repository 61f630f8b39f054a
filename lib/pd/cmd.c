/* cmd.c: encoding and strict decoding of placement driver commands (cmd.h). */
#include "cmd.h"

#include <string.h>

#include "base/alloc.h"
#include "pd_int.h"

const char *vt_pd_cmd_type_name(int type)
{
	static const char *const names[] = {
		"?",		    "register_worker", "set_worker_state",
		"create_collection", "drop_collection", "add_replica",
		"remove_replica",    "promote",	       "set_leader",
	};
	if (type < 1 || type > VT_PD_CMD_SET_LEADER)
		return "?";
	return names[type];
}

/* ---- field helpers shared with the snapshot ----------------------------- */

int vt__pd_get_u16(vt_reader *r, uint16_t *out)
{
	uint8_t b[2];
	int rc = vt_reader_get(r, b, 2);
	if (!rc)
		*out = (uint16_t)(b[0] | (b[1] << 8));
	return rc;
}

int vt__pd_get_str(vt_reader *r, int wide, const char **p, uint32_t *n)
{
	uint16_t w;
	uint8_t s;
	int rc = wide ? vt__pd_get_u16(r, &w) : vt_reader_u8(r, &s);
	if (rc)
		return rc;
	*n = wide ? w : s;
	const void *q = NULL;
	if (*n && (rc = vt_reader_ptr(r, &q, *n)))
		return rc;
	*p = q;
	return 0;
}

int vt__pd_put_u16(vt_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	return vt_buf_append(b, x, 2);
}

int vt__pd_put_str(vt_buf *b, int wide, const char *p, uint32_t n)
{
	int rc = wide ? vt__pd_put_u16(b, (uint16_t)n)
		      : vt_buf_put_u8(b, (uint8_t)n);
	if (!rc && n)
		rc = vt_buf_append(b, p, n);
	return rc;
}

static int label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

int vt__pd_label_ok(const char *p, uint32_t n)
{
	if (n > VT_PD_MAX_ZONE)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (!label_char(p[i]))
			return 0;
	return 1;
}

int vt__pd_name_ok(const char *p, uint32_t n)
{
	if (n == 0 || n > VT_PD_MAX_NAME)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (!label_char(p[i]))
			return 0;
	return 1;
}

int vt__pd_addr_ok(const char *p, uint32_t n)
{
	if (n == 0 || n > VT_PD_MAX_ADDR)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return 0;
	return 1;
}

/* ---- decoding ------------------------------------------------------------ */

#define TRUNC(field)                                                           \
	vt_errmsg_set(err, VT_ECORRUPT, "pd command: truncated %s", field)

static int get_u64(vt_reader *r, uint64_t *v, const char *field,
		   vt_errmsg *err)
{
	return vt_reader_u64(r, v) ? TRUNC(field) : 0;
}

static int get_u32(vt_reader *r, uint32_t *v, const char *field,
		   vt_errmsg *err)
{
	return vt_reader_u32(r, v) ? TRUNC(field) : 0;
}

static int get_enum(vt_reader *r, uint8_t *v, uint8_t max, const char *field,
		    vt_errmsg *err)
{
	if (vt_reader_u8(r, v))
		return TRUNC(field);
	if (*v > max)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: %s %u is not one of 0..%u",
				     field, *v, max);
	return 0;
}

static int get_worker_id(vt_reader *r, uint64_t *v, int zero_ok,
			 vt_errmsg *err)
{
	int rc = get_u64(r, v, "worker", err);
	if (!rc && !*v && !zero_ok)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: worker id 0 (ids start at 1)");
	return rc;
}

static int get_name(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	if (vt__pd_get_str(r, 0, &c->name, &c->name_len))
		return TRUNC("name");
	if (!vt__pd_name_ok(c->name, c->name_len))
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: name: want 1..%u bytes of "
				     "[A-Za-z0-9_.-] (got %u bytes)",
				     VT_PD_MAX_NAME, c->name_len);
	return 0;
}

static int get_label(vt_reader *r, const char **p, uint32_t *n,
		     const char *field, vt_errmsg *err)
{
	if (vt__pd_get_str(r, 0, p, n))
		return TRUNC(field);
	if (!vt__pd_label_ok(*p, *n))
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: %s: want 0..%u bytes of "
				     "[A-Za-z0-9_.-]",
				     field, VT_PD_MAX_ZONE);
	return 0;
}

static int dec_register(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	int rc = get_worker_id(r, &c->worker, 0, err);
	if (rc)
		return rc;
	if (vt__pd_get_str(r, 1, &c->addr, &c->addr_len))
		return TRUNC("addr");
	if (!vt__pd_addr_ok(c->addr, c->addr_len))
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: addr: want 1..%u printable "
				     "bytes without spaces",
				     VT_PD_MAX_ADDR);
	if ((rc = get_u64(r, &c->capacity, "capacity", err)))
		return rc;
	if (!c->capacity)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: capacity 0 (want >= 1)");
	if ((rc = get_label(r, &c->zone, &c->zone_len, "zone", err)) ||
	    (rc = get_label(r, &c->rack, &c->rack_len, "rack", err)))
		return rc;
	return get_enum(r, &c->role, VT_PD_ROLE_SEARCH_ONLY, "role", err);
}

static int dec_state(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	int rc = get_worker_id(r, &c->worker, 0, err);
	return rc ? rc : get_enum(r, &c->state, VT_PD_REMOVED, "state", err);
}

static int dec_shard_slots(vt_reader *r, vt_pd_cmd *c, uint32_t s,
			   vt_errmsg *err)
{
	uint8_t n;
	if (vt_reader_u8(r, &n))
		return TRUNC("placement count");
	if (n == 0 || n > VT_PD_MAX_REPLICAS)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "pd command: shard %u: %u replicas (want "
				     "1..%u)",
				     s, n, VT_PD_MAX_REPLICAS);
	for (uint8_t i = 0; i < n; i++) {
		vt_pd_slot *sl = &c->slots[c->n_slots];
		sl->shard = s;
		int rc = get_worker_id(r, &sl->worker, 0, err);
		if (!rc)
			rc = get_enum(r, &sl->role, VT_PD_NONVOTER,
				      "replica role", err);
		if (rc)
			return vt_errmsg_prefix(err, rc, "shard %u", s);
		c->n_slots++;
	}
	return 0;
}

static int dec_create(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	int rc = get_name(r, c, err);
	if (rc || (rc = get_u32(r, &c->config_len, "config length", err)))
		return rc;
	if (c->config_len > VT_PD_MAX_CONFIG)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "pd command: config of %u bytes (max %u)",
				     c->config_len, VT_PD_MAX_CONFIG);
	const void *p = NULL;
	if (c->config_len && vt_reader_ptr(r, &p, c->config_len))
		return TRUNC("config");
	c->config = p;
	uint8_t rf;
	if ((rc = get_u32(r, &c->shard_count, "shard_count", err)))
		return rc;
	if (vt_reader_u8(r, &rf))
		return TRUNC("rf");
	c->rf = rf;
	if (c->shard_count == 0 || c->shard_count > VT_PD_MAX_SHARDS)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "pd command: shard_count %u (want 1..%u)",
				     c->shard_count, VT_PD_MAX_SHARDS);
	if (c->rf == 0 || c->rf > VT_PD_MAX_RF)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "pd command: rf %u (want 1..%u)", c->rf,
				     VT_PD_MAX_RF);
	/* Each slot takes 9 bytes: refuse counts the input cannot hold
	 * before allocating for them. */
	if ((uint64_t)c->shard_count * 10 > vt_reader_left(r))
		return TRUNC("placement");
	c->slots = vt_malloc((size_t)c->shard_count * VT_PD_MAX_REPLICAS *
			     sizeof *c->slots);
	if (!c->slots)
		return vt_errmsg_set(err, VT_ENOMEM, "pd command: placement");
	for (uint32_t s = 0; s < c->shard_count && !rc; s++)
		rc = dec_shard_slots(r, c, s, err);
	return rc;
}

static int dec_replica(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	int rc = get_name(r, c, err);
	if (rc || (rc = get_u32(r, &c->shard, "shard", err)))
		return rc;
	if (c->type == VT_PD_CMD_SET_LEADER) {
		rc = get_worker_id(r, &c->worker, 1, err);
		return rc ? rc : get_u64(r, &c->term, "term", err);
	}
	if ((rc = get_u64(r, &c->expect_epoch, "expect_epoch", err)) ||
	    (rc = get_worker_id(r, &c->worker, 0, err)))
		return rc;
	if (c->type == VT_PD_CMD_REMOVE_REPLICA)
		return 0;
	return get_enum(r, &c->role, VT_PD_NONVOTER, "replica role", err);
}

static int dec_body(vt_reader *r, vt_pd_cmd *c, vt_errmsg *err)
{
	switch (c->type) {
	case VT_PD_CMD_REGISTER_WORKER:
		return dec_register(r, c, err);
	case VT_PD_CMD_SET_WORKER_STATE:
		return dec_state(r, c, err);
	case VT_PD_CMD_CREATE_COLLECTION:
		return dec_create(r, c, err);
	case VT_PD_CMD_DROP_COLLECTION:
		return get_name(r, c, err);
	default:
		return dec_replica(r, c, err);
	}
}

int vt_pd_cmd_decode(const void *bytes, size_t len, vt_pd_cmd *c,
		     vt_errmsg *err)
{
	memset(c, 0, sizeof *c);
	vt_reader r;
	vt_reader_init(&r, bytes, len);
	uint8_t version, type;
	uint16_t flags;
	if (vt_reader_u8(&r, &version) || vt_reader_u8(&r, &type) ||
	    vt__pd_get_u16(&r, &flags))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "pd command: %zu bytes, shorter than the "
				     "header",
				     len);
	if (version != VT_PD_CMD_VERSION)
		return vt_errmsg_set(err, VT_EVERSION,
				     "pd command: version %u (this build reads "
				     "%u)",
				     version, VT_PD_CMD_VERSION);
	if (type < 1 || type > VT_PD_CMD_SET_LEADER)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: unknown type %u", type);
	if (flags)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: unknown flags 0x%x", flags);
	c->type = type;
	int rc = dec_body(&r, c, err);
	if (!rc && vt_reader_left(&r))
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "pd command: %zu trailing bytes after %s",
				   vt_reader_left(&r), vt_pd_cmd_type_name(type));
	if (rc)
		vt_pd_cmd_release(c);
	return rc;
}

void vt_pd_cmd_release(vt_pd_cmd *c)
{
	if (!c)
		return;
	vt_free(c->slots);
	c->slots = NULL;
	c->n_slots = 0;
}

/* ---- encoding ------------------------------------------------------------ */

static int enc_check(const vt_pd_cmd *c, vt_errmsg *err)
{
	if (c->type < 1 || c->type > VT_PD_CMD_SET_LEADER)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: unknown type %d", c->type);
	if (c->addr_len > VT_PD_MAX_ADDR || c->zone_len > VT_PD_MAX_ZONE ||
	    c->rack_len > VT_PD_MAX_ZONE || c->name_len > VT_PD_MAX_NAME ||
	    c->config_len > VT_PD_MAX_CONFIG || c->rf > 255)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "pd command: a field is longer than the "
				     "format carries (addr %u, zone %u, rack "
				     "%u, name %u, config %u, rf %u)",
				     c->addr_len, c->zone_len, c->rack_len,
				     c->name_len, c->config_len, c->rf);
	return 0;
}

static int enc_register(const vt_pd_cmd *c, vt_buf *b)
{
	int rc = vt_buf_put_u64(b, c->worker);
	if (!rc)
		rc = vt__pd_put_str(b, 1, c->addr, c->addr_len);
	if (!rc)
		rc = vt_buf_put_u64(b, c->capacity);
	if (!rc)
		rc = vt__pd_put_str(b, 0, c->zone, c->zone_len);
	if (!rc)
		rc = vt__pd_put_str(b, 0, c->rack, c->rack_len);
	return rc ? rc : vt_buf_put_u8(b, c->role);
}

/* Slots must come in shard order, each shard with 1..MAX_REPLICAS. */
static int enc_slots(const vt_pd_cmd *c, vt_buf *b, vt_errmsg *err)
{
	uint32_t i = 0;
	for (uint32_t s = 0; s < c->shard_count; s++) {
		uint32_t j = i;
		while (j < c->n_slots && c->slots[j].shard == s)
			j++;
		if (j == i || j - i > VT_PD_MAX_REPLICAS)
			return vt_errmsg_set(err, VT_EINVAL,
					     "pd command: shard %u: %u "
					     "replicas in the placement "
					     "(want 1..%u, slots in shard "
					     "order)",
					     s, j - i, VT_PD_MAX_REPLICAS);
		int rc = vt_buf_put_u8(b, (uint8_t)(j - i));
		for (; i < j && !rc; i++) {
			rc = vt_buf_put_u64(b, c->slots[i].worker);
			if (!rc)
				rc = vt_buf_put_u8(b, c->slots[i].role);
		}
		if (rc)
			return rc;
	}
	if (i != c->n_slots)
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd command: slot %u names shard %u of "
				     "%u",
				     i, c->slots[i].shard, c->shard_count);
	return 0;
}

static int enc_create(const vt_pd_cmd *c, vt_buf *b, vt_errmsg *err)
{
	int rc = vt__pd_put_str(b, 0, c->name, c->name_len);
	if (!rc)
		rc = vt_buf_put_u32(b, c->config_len);
	if (!rc && c->config_len)
		rc = vt_buf_append(b, c->config, c->config_len);
	if (!rc)
		rc = vt_buf_put_u32(b, c->shard_count);
	if (!rc)
		rc = vt_buf_put_u8(b, (uint8_t)c->rf);
	return rc ? rc : enc_slots(c, b, err);
}

static int enc_replica(const vt_pd_cmd *c, vt_buf *b)
{
	int rc = vt__pd_put_str(b, 0, c->name, c->name_len);
	if (!rc)
		rc = vt_buf_put_u32(b, c->shard);
	if (c->type == VT_PD_CMD_SET_LEADER) {
		if (!rc)
			rc = vt_buf_put_u64(b, c->worker);
		return rc ? rc : vt_buf_put_u64(b, c->term);
	}
	if (!rc)
		rc = vt_buf_put_u64(b, c->expect_epoch);
	if (!rc)
		rc = vt_buf_put_u64(b, c->worker);
	if (rc || c->type == VT_PD_CMD_REMOVE_REPLICA)
		return rc;
	return vt_buf_put_u8(b, c->role);
}

int vt_pd_cmd_encode(const vt_pd_cmd *c, vt_buf *b, vt_errmsg *err)
{
	int rc = enc_check(c, err);
	if (rc)
		return rc;
	uint8_t hdr[4] = {VT_PD_CMD_VERSION, (uint8_t)c->type, 0, 0};
	if ((rc = vt_buf_append(b, hdr, sizeof hdr)))
		return rc;
	switch (c->type) {
	case VT_PD_CMD_REGISTER_WORKER:
		return enc_register(c, b);
	case VT_PD_CMD_SET_WORKER_STATE:
		rc = vt_buf_put_u64(b, c->worker);
		return rc ? rc : vt_buf_put_u8(b, c->state);
	case VT_PD_CMD_CREATE_COLLECTION:
		return enc_create(c, b, err);
	case VT_PD_CMD_DROP_COLLECTION:
		return vt__pd_put_str(b, 0, c->name, c->name_len);
	default:
		return enc_replica(c, b);
	}
}
