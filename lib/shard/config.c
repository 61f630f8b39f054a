/* config.c: the collection configuration a shard stores: defaults, checks,
 * and its JSON form in the store's meta (readable with mdb_dump). */
#include <jansson.h>
#include <string.h>

#include "base/alloc.h"
#include "shard_int.h"

void vt_shard_config_default(vt_shard_config *c, uint32_t dim, int metric)
{
	memset(c, 0, sizeof *c);
	c->dim = dim;
	c->metric = metric;
	c->m = 16;
	c->ef_construction = 200;
	c->ef_search = 64;
	c->quant = VT_QUANT_NONE;
	c->index_mode = VT_INDEX_SYNC;
}

int vt_shard_config_check(const vt_shard_config *c, vt_errmsg *err)
{
	if (c->dim < 1 || c->dim > VT_HNSW_MAX_DIM)
		return vt_errmsg_set(err, VT_EINVAL, "dimension: %u (1..%u)",
				     c->dim, VT_HNSW_MAX_DIM);
	if (!vt_metric_name(c->metric) || vt_metric_parse(vt_metric_name(
						c->metric)) != c->metric)
		return vt_errmsg_set(err, VT_EINVAL, "metric: unknown (%d)",
				     c->metric);
	if (c->m < 2 || c->m > VT_HNSW_MAX_M)
		return vt_errmsg_set(err, VT_EINVAL, "hnsw.m: %u (2..%u)", c->m,
				     VT_HNSW_MAX_M);
	if (c->ef_construction < 1 || c->ef_construction > 100000)
		return vt_errmsg_set(err, VT_EINVAL,
				     "hnsw.ef_construction: %u (1..100000)",
				     c->ef_construction);
	if (c->ef_search < 1 || c->ef_search > 100000)
		return vt_errmsg_set(err, VT_EINVAL,
				     "hnsw.ef_search: %u (1..100000)",
				     c->ef_search);
	if (c->quant != VT_QUANT_NONE && c->quant != VT_QUANT_INT8)
		return vt_errmsg_set(err, VT_EINVAL, "quantization: unknown (%d)",
				     c->quant);
	if (c->index_mode != VT_INDEX_SYNC && c->index_mode != VT_INDEX_ASYNC)
		return vt_errmsg_set(err, VT_EINVAL, "index_mode: unknown (%d)",
				     c->index_mode);
	if (c->n_fields > VT_SHARD_MAX_FIELDS)
		return vt_errmsg_set(err, VT_EINVAL,
				     "indexed_fields: %u (max %u)", c->n_fields,
				     VT_SHARD_MAX_FIELDS);
	for (uint32_t i = 0; i < c->n_fields; i++) {
		const vt_shard_field *f = &c->fields[i];
		size_t n = strnlen(f->path, VT_SHARD_MAX_PATH);
		if (n == 0 || n == VT_SHARD_MAX_PATH)
			return vt_errmsg_set(err, VT_EINVAL,
					     "indexed_fields[%u].path: empty or "
					     "longer than %u bytes",
					     i, VT_SHARD_MAX_PATH - 1);
		if (!vt_payload_type_name(f->type))
			return vt_errmsg_set(err, VT_EINVAL,
					     "indexed_fields[%u].type: unknown "
					     "(%d)",
					     i, f->type);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(c->fields[j].path, f->path))
				return vt_errmsg_set(err, VT_EINVAL,
						     "indexed_fields[%u].path: "
						     "\"%s\" repeated",
						     i, f->path);
	}
	return 0;
}

static const char *quant_name(int q)
{
	return q == VT_QUANT_INT8 ? "int8" : "none";
}

static const char *mode_name(int m)
{
	return m == VT_INDEX_ASYNC ? "async" : "sync";
}

int vt__shard_config_encode(const vt_shard_config *c, char **out, size_t *len)
{
	json_t *fields = json_array();
	json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:s}", "dim",
			      (json_int_t)c->dim, "metric",
			      vt_metric_name(c->metric), "m", (json_int_t)c->m,
			      "ef_construction", (json_int_t)c->ef_construction,
			      "ef_search", (json_int_t)c->ef_search, "quant",
			      quant_name(c->quant), "index_mode",
			      mode_name(c->index_mode));
	int rc = VT_ENOMEM;
	if (!fields || !o)
		goto out;
	for (uint32_t i = 0; i < c->n_fields; i++) {
		json_t *f = json_pack("{s:s, s:s}", "path", c->fields[i].path,
				      "type",
				      vt_payload_type_name(c->fields[i].type));
		if (!f || json_array_append_new(fields, f))
			goto out;
	}
	if (json_object_set(o, "fields", fields))
		goto out;
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		goto out;
	*len = strlen(s);
	*out = vt_strdup(s);
	free(s);
	rc = *out ? 0 : VT_ENOMEM;
out:
	json_decref(fields);
	json_decref(o);
	return rc;
}

int vt__shard_config_decode(const char *p, size_t len, vt_shard_config *c,
			    vt_errmsg *err)
{
	json_error_t je;
	json_t *o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
	json_int_t dim, m, efc, efs;
	const char *metric, *quant, *mode;
	json_t *fields;
	int rc = VT_ECORRUPT;
	if (!o)
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "stored config: %s", je.text);
	if (json_unpack_ex(o, &je, JSON_STRICT,
			   "{s:I, s:s, s:I, s:I, s:I, s:s, s:s, s:o}", "dim",
			   &dim, "metric", &metric, "m", &m, "ef_construction",
			   &efc, "ef_search", &efs, "quant", &quant,
			   "index_mode", &mode, "fields", &fields)) {
		vt_errmsg_set(err, rc, "stored config: %s", je.text);
		goto out;
	}
	vt_shard_config_default(c, 0, VT_METRIC_L2);
	if (dim < 0 || dim > (json_int_t)VT_HNSW_MAX_DIM || m < 0 ||
	    m > 100000 || efc < 0 || efc > 100000 || efs < 0 || efs > 100000) {
		vt_errmsg_set(err, rc, "stored config: a number out of range");
		goto out;
	}
	c->dim = (uint32_t)dim;
	c->metric = vt_metric_parse(metric);
	c->m = (uint32_t)m;
	c->ef_construction = (uint32_t)efc;
	c->ef_search = (uint32_t)efs;
	c->quant = !strcmp(quant, "int8") ? VT_QUANT_INT8
		   : !strcmp(quant, "none") ? VT_QUANT_NONE
					    : -1;
	c->index_mode = !strcmp(mode, "async") ? VT_INDEX_ASYNC
			: !strcmp(mode, "sync") ? VT_INDEX_SYNC
						: -1;
	if (!json_is_array(fields) ||
	    json_array_size(fields) > VT_SHARD_MAX_FIELDS) {
		vt_errmsg_set(err, rc, "stored config: bad fields");
		goto out;
	}
	size_t i;
	json_t *f;
	json_array_foreach(fields, i, f)
	{
		const char *path, *type;
		if (json_unpack(f, "{s:s, s:s}", "path", &path, "type", &type) ||
		    strlen(path) >= VT_SHARD_MAX_PATH) {
			vt_errmsg_set(err, rc, "stored config: bad field %zu", i);
			goto out;
		}
		strcpy(c->fields[i].path, path);
		c->fields[i].type = vt_payload_type_parse(type);
	}
	c->n_fields = (uint32_t)json_array_size(fields);
	if ((rc = vt_shard_config_check(c, err))) {
		vt_errmsg_prefix(err, VT_ECORRUPT, "stored config");
		rc = VT_ECORRUPT;
	}
out:
	json_decref(o);
	return rc;
}
