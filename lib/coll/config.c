/* config.c: a collection's whole configuration as bytes (coll.h,
 * vt_coll_config_encode): what the placement driver stores for a
 * collection and hands to every worker that hosts one of its shards. */
#include "coll.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "payload/payload.h"

#define CONFIG_VERSION 1

int vt_coll_config_encode(const vt_coll_config *c, vt_buf *out, vt_errmsg *err)
{
	const vt_shard_config *s = &c->shard;
	json_t *fields = json_array();
	for (uint32_t i = 0; fields && i < s->n_fields; i++)
		if (json_array_append_new(
			    fields, json_pack("{s:s, s:s}", "path", s->fields[i].path,
					      "type",
					      vt_payload_type_name(s->fields[i].type))))
			break;
	json_t *o = fields ? json_pack(
		"{s:i, s:s, s:I, s:b, s:f, s:s, s:I, s:s, s:I, s:I, s:I, s:s, s:s, s:o}",
		"version", CONFIG_VERSION, "name", c->name, "shard_count",
		(json_int_t)c->shard_count, "rescore", c->rescore, "oversampling",
		(double)c->oversampling, "routing",
		c->routing == VT_COLL_ROUTE_MOD ? "mod" : "range", "dim",
		(json_int_t)s->dim, "distance", vt_coll_distance_name(s->metric),
		"m", (json_int_t)s->m, "ef_construction",
		(json_int_t)s->ef_construction, "ef_search",
		(json_int_t)s->ef_search, "quant",
		s->quant == VT_QUANT_INT8 ? "int8" : "none", "index_mode",
		s->index_mode == VT_INDEX_ASYNC ? "async" : "sync", "fields",
		fields) : NULL;
	char *text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	int rc = vt_buf_append(out, text, strlen(text));
	free(text);
	return rc ? vt_errmsg_set(err, rc, "collection config: %s",
				  vt_strerror(rc))
		  : 0;
}

static int fields_decode(json_t *arr, vt_shard_config *s, vt_errmsg *err)
{
	if (json_array_size(arr) > VT_SHARD_MAX_FIELDS)
		return vt_errmsg_set(err, VT_EINVAL, "fields: more than %u",
				     VT_SHARD_MAX_FIELDS);
	size_t i;
	json_t *f;
	json_array_foreach(arr, i, f) {
		const char *path, *type;
		json_error_t je;
		if (json_unpack_ex(f, &je, JSON_STRICT, "{s:s, s:s}", "path",
				   &path, "type", &type))
			return vt_errmsg_set(err, VT_EINVAL, "fields[%zu]: %s", i,
					     je.text);
		int t = vt_payload_type_parse(type);
		if (t < 0 || strlen(path) >= VT_SHARD_MAX_PATH)
			return vt_errmsg_set(err, VT_EINVAL,
					     "fields[%zu]: bad path or type", i);
		snprintf(s->fields[i].path, sizeof s->fields[i].path, "%s",
			 path);
		s->fields[i].type = t;
	}
	s->n_fields = (uint32_t)json_array_size(arr);
	return 0;
}

int vt_coll_config_decode(const void *bytes, size_t len, vt_coll_config *c,
			  vt_errmsg *err)
{
	json_error_t je;
	json_t *o = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return vt_errmsg_set(err, VT_EINVAL, "collection config: %s",
				     o ? "not an object" : je.text);
	}
	int version, rescore;
	const char *name, *routing, *distance, *quant, *mode;
	json_int_t shards, dim, m, efc, efs;
	double over;
	json_t *fields;
	int rc = 0;
	memset(c, 0, sizeof *c);
	if (json_unpack_ex(o, &je, JSON_STRICT,
			   "{s:i, s:s, s:I, s:b, s:F, s:s, s:I, s:s, s:I, s:I, "
			   "s:I, s:s, s:s, s:o}",
			   "version", &version, "name", &name, "shard_count",
			   &shards, "rescore", &rescore, "oversampling", &over,
			   "routing", &routing, "dim", &dim, "distance",
			   &distance, "m", &m, "ef_construction", &efc,
			   "ef_search", &efs, "quant", &quant, "index_mode",
			   &mode, "fields", &fields)) {
		rc = vt_errmsg_set(err, VT_EINVAL, "collection config: %s",
				   je.text);
		goto out;
	}
	if (version != CONFIG_VERSION) {
		rc = vt_errmsg_set(err, VT_EVERSION,
				   "collection config: version %d, this build "
				   "reads %d", version, CONFIG_VERSION);
		goto out;
	}
	int metric = vt_coll_distance_parse(distance);
	if ((rc = vt_coll_name_check(name, err)))
		goto out;
	if (shards < 1 || shards > VT_COLL_MAX_SHARDS || dim < 1 ||
	    dim > UINT32_MAX || m < 0 || m > UINT32_MAX || efc < 0 ||
	    efc > UINT32_MAX || efs < 0 || efs > UINT32_MAX || metric < 0 ||
	    !isfinite(over) || (strcmp(routing, "mod") && strcmp(routing, "range")) ||
	    (strcmp(quant, "none") && strcmp(quant, "int8")) ||
	    (strcmp(mode, "sync") && strcmp(mode, "async")) ||
	    !json_is_array(fields)) {
		rc = vt_errmsg_set(err, VT_EINVAL,
				   "collection config: a value out of range");
		goto out;
	}
	snprintf(c->name, sizeof c->name, "%s", name);
	c->shard_count = (uint32_t)shards;
	c->rescore = rescore;
	c->oversampling = (float)over;
	c->routing = strcmp(routing, "mod") ? VT_COLL_ROUTE_RANGE
					    : VT_COLL_ROUTE_MOD;
	vt_shard_config_default(&c->shard, (uint32_t)dim, metric);
	c->shard.m = (uint32_t)m;
	c->shard.ef_construction = (uint32_t)efc;
	c->shard.ef_search = (uint32_t)efs;
	c->shard.quant = strcmp(quant, "int8") ? VT_QUANT_NONE : VT_QUANT_INT8;
	c->shard.index_mode = strcmp(mode, "async") ? VT_INDEX_SYNC
						    : VT_INDEX_ASYNC;
	if ((rc = fields_decode(fields, &c->shard, err)))
		goto out;
	rc = vt_shard_config_check(&c->shard, err);
out:
	json_decref(o);
	return rc;
}
