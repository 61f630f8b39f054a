/* api.c: the methods of vectron.v1.VectronService over lib/coll (api.h):
 * validation with field-naming errors, defaults, deadlines, and the
 * conversion of results into response messages. */
#include "api.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "metrics.h"

struct vt_api {
	vt_db *db;
	vt_api_opts opts;
	vt_api_metrics_reg *metrics;
};

void vt_api_opts_default(vt_api_opts *o)
{
	memset(o, 0, sizeof *o);
	o->default_timeout_ms = 30000;
	o->max_batch_searches = 100;
	o->version = "dev";
}

/* ---- helpers ----------------------------------------------------------------- */

#define ALLOC(cx, T) ((T *)vt_arena_calloc((cx)->arena, 1, sizeof(T)))
#define NOMEM(err) vt_errmsg_set((err), VT_ENOMEM, "out of memory")

static void *arena_alloc(void *ud, size_t n)
{
	return vt_arena_alloc(ud, n);
}

static void arena_nofree(void *ud, void *p)
{
	(void)ud;
	(void)p;
}

void vt_api_allocator(vt_arena *a, ProtobufCAllocator *out)
{
	out->alloc = arena_alloc;
	out->free = arena_nofree;
	out->allocator_data = a;
}

static int is_empty(const char *s)
{
	return !s || !*s;
}

/* Finds the collection named by a request field. */
static int coll_of(vt_api *api, const char *field, const char *name,
		   vt_coll **out, vt_errmsg *err)
{
	if (is_empty(name))
		return vt_errmsg_set(err, VT_EINVAL, "%s: required", field);
	if (vt_db_get(api->db, name, out))
		return vt_errmsg_set(err, VT_ENOENT,
				     "collection \"%.64s\" not found", name);
	return 0;
}

static void release_coll(void *p)
{
	vt_coll_release(p);
}

static void free_results(void *p)
{
	vt_coll_results_free(p);
	vt_free(p);
}

static void free_filter(void *p)
{
	vt_filter_free(p);
}

/* The collection, released with the request (results may point into its
 * shards until the response is packed). */
static int coll_for_request(vt_api *api, vt_api_ctx *cx, const char *field,
			    const char *name, vt_coll **out, vt_errmsg *err)
{
	int rc = coll_of(api, field, name, out, err);
	if (!rc && vt_arena_defer(cx->arena, release_coll, *out))
		return NOMEM(err);
	return rc;
}

static vt_coll_results *results_for_request(vt_api_ctx *cx)
{
	vt_coll_results *r = vt_calloc(1, sizeof *r);
	if (r && vt_arena_defer(cx->arena, free_results, r))
		return NULL;
	return r;
}

static int filter_for_request(vt_api_ctx *cx, vt_coll *c, const char *json,
			      vt_filter **out, vt_errmsg *err)
{
	*out = NULL;
	if (is_empty(json))
		return 0;
	int rc = vt_coll_filter_parse(c, json, strlen(json), out, err);
	if (!rc && *out && vt_arena_defer(cx->arena, free_filter, *out))
		return NOMEM(err);
	return rc;
}

static int check_deadline(const vt_api_ctx *cx, vt_errmsg *err)
{
	if (cx->deadline_ns && vt_clock_mono_ns() >= cx->deadline_ns)
		return vt_errmsg_set(err, VT_ETIMEDOUT,
				     "deadline exceeded before the request ran");
	return 0;
}

static uint32_t remaining_ms(const vt_api_ctx *cx)
{
	if (!cx->deadline_ns)
		return 0;
	uint64_t now = vt_clock_mono_ns();
	return now >= cx->deadline_ns
		       ? 0
		       : (uint32_t)((cx->deadline_ns - now) / 1000000u);
}

/* ---- collections ------------------------------------------------------------ */

static Vectron__V1__Distance distance_enum(int metric)
{
	switch (metric) {
	case VT_METRIC_COSINE:
		return VECTRON__V1__DISTANCE__COSINE;
	case VT_METRIC_IP:
		return VECTRON__V1__DISTANCE__DOT;
	default:
		return VECTRON__V1__DISTANCE__EUCLID;
	}
}

static int collection_info(vt_api_ctx *cx, vt_coll *c, int with_status,
			   Vectron__V1__CollectionInfo **out, vt_errmsg *err)
{
	const vt_coll_config *cfg = vt_coll_config_get(c);
	Vectron__V1__CollectionInfo *ci = ALLOC(cx, Vectron__V1__CollectionInfo);
	Vectron__V1__HnswConfig *h = ALLOC(cx, Vectron__V1__HnswConfig);
	Vectron__V1__QuantizationConfig *q =
		ALLOC(cx, Vectron__V1__QuantizationConfig);
	if (!ci || !h || !q)
		return NOMEM(err);
	vectron__v1__collection_info__init(ci);
	vectron__v1__hnsw_config__init(h);
	vectron__v1__quantization_config__init(q);
	ci->name = vt_arena_strndup(cx->arena, cfg->name, strlen(cfg->name));
	ci->has_dimension = 1;
	ci->dimension = cfg->shard.dim;
	ci->has_distance = 1;
	ci->distance = distance_enum(cfg->shard.metric);
	h->has_m = h->has_ef_construct = h->has_ef_search = 1;
	h->m = cfg->shard.m;
	h->ef_construct = cfg->shard.ef_construction;
	h->ef_search = cfg->shard.ef_search;
	ci->hnsw = h;
	q->has_int8 = q->has_rescore = q->has_oversampling = 1;
	q->int8 = cfg->shard.quant == VT_QUANT_INT8;
	q->rescore = cfg->rescore != 0;
	q->oversampling = cfg->oversampling;
	ci->quantization = q;
	ci->has_shard_count = 1;
	ci->shard_count = cfg->shard_count;
	ci->has_index_mode = 1;
	ci->index_mode = cfg->shard.index_mode == VT_INDEX_ASYNC
				 ? VECTRON__V1__INDEX_MODE__ASYNC
				 : VECTRON__V1__INDEX_MODE__SYNC;
	ci->n_indexed_fields = cfg->shard.n_fields;
	ci->indexed_fields = vt_arena_calloc(cx->arena, cfg->shard.n_fields + 1,
					     sizeof *ci->indexed_fields);
	if (!ci->name || !ci->indexed_fields)
		return NOMEM(err);
	for (uint32_t i = 0; i < cfg->shard.n_fields; i++) {
		Vectron__V1__PayloadField *f = ALLOC(cx, Vectron__V1__PayloadField);
		if (!f)
			return NOMEM(err);
		vectron__v1__payload_field__init(f);
		f->path = (char *)cfg->shard.fields[i].path;
		f->has_type = 1;
		f->type = (Vectron__V1__FieldType)cfg->shard.fields[i].type;
		ci->indexed_fields[i] = f;
	}
	if (with_status) {
		vt_coll_status st;
		int rc = vt_coll_status_get(c, &st);
		if (rc)
			return vt_errmsg_set(err, rc, "status: %s",
					     vt_strerror(rc));
		Vectron__V1__CollectionStatus *cs =
			ALLOC(cx, Vectron__V1__CollectionStatus);
		Vectron__V1__ShardStatus **ss = vt_arena_calloc(
			cx->arena, st.n_shards, sizeof *ss);
		if (!cs || !ss) {
			vt_free(st.shards);
			return NOMEM(err);
		}
		vectron__v1__collection_status__init(cs);
		cs->has_points = cs->has_indexed_points = cs->has_index_lag = 1;
		cs->has_memory_bytes = cs->has_disk_bytes = 1;
		cs->points = st.points;
		cs->indexed_points = st.indexed_points;
		cs->index_lag = st.index_lag;
		cs->memory_bytes = st.memory_bytes;
		cs->disk_bytes = st.disk_bytes;
		cs->n_shards = st.n_shards;
		cs->shards = ss;
		for (uint32_t i = 0; i < st.n_shards; i++) {
			Vectron__V1__ShardStatus *s =
				ALLOC(cx, Vectron__V1__ShardStatus);
			if (!s) {
				vt_free(st.shards);
				return NOMEM(err);
			}
			vectron__v1__shard_status__init(s);
			const vt_shard_status *x = &st.shards[i];
			s->has_shard_id = s->has_points = s->has_indexed_points = 1;
			s->has_applied_index = s->has_indexed_index = 1;
			s->has_index_lag = s->has_readonly = 1;
			s->shard_id = i;
			s->points = x->points;
			s->indexed_points = x->index_points;
			s->applied_index = x->applied;
			s->indexed_index = x->indexed;
			s->index_lag = x->lag;
			s->readonly = x->readonly != 0;
			ss[i] = s;
		}
		vt_free(st.shards);
		ci->status = cs;
	}
	*out = ci;
	return 0;
}

static int m_create(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__CreateCollectionRequest *r = (const void *)in;
	vt_coll_config c;
	int metric;
	if (is_empty(r->name))
		return vt_errmsg_set(err, VT_EINVAL, "name: required");
	if (!r->has_dimension)
		return vt_errmsg_set(err, VT_EINVAL, "dimension: required");
	switch (r->has_distance ? r->distance : 0) {
	case VECTRON__V1__DISTANCE__COSINE:
		metric = VT_METRIC_COSINE;
		break;
	case VECTRON__V1__DISTANCE__EUCLID:
		metric = VT_METRIC_L2;
		break;
	case VECTRON__V1__DISTANCE__DOT:
		metric = VT_METRIC_IP;
		break;
	default:
		return vt_errmsg_set(err, VT_EINVAL,
				     "distance: required, one of cosine, "
				     "euclid, dot");
	}
	if (strlen(r->name) > VT_COLL_MAX_NAME)
		return vt_errmsg_set(err, VT_EINVAL, "name: longer than %u bytes",
				     VT_COLL_MAX_NAME);
	vt_coll_config_default(&c, r->name, r->dimension, metric);
	if (r->hnsw) {
		if (r->hnsw->has_m)
			c.shard.m = r->hnsw->m;
		if (r->hnsw->has_ef_construct)
			c.shard.ef_construction = r->hnsw->ef_construct;
		if (r->hnsw->has_ef_search)
			c.shard.ef_search = r->hnsw->ef_search;
	}
	if (r->quantization) {
		c.shard.quant = r->quantization->int8 ? VT_QUANT_INT8
						      : VT_QUANT_NONE;
		c.rescore = r->quantization->rescore;
		c.oversampling = r->quantization->oversampling;
	}
	if (r->has_shard_count)
		c.shard_count = r->shard_count;
	if (r->has_index_mode)
		c.shard.index_mode = r->index_mode == VECTRON__V1__INDEX_MODE__ASYNC
					     ? VT_INDEX_ASYNC
					     : VT_INDEX_SYNC;
	if (r->n_indexed_fields > VT_SHARD_MAX_FIELDS)
		return vt_errmsg_set(err, VT_EINVAL,
				     "indexed_fields: %zu (max %u)",
				     r->n_indexed_fields, VT_SHARD_MAX_FIELDS);
	for (size_t i = 0; i < r->n_indexed_fields; i++) {
		const Vectron__V1__PayloadField *f = r->indexed_fields[i];
		if (is_empty(f->path) || strlen(f->path) >= VT_SHARD_MAX_PATH)
			return vt_errmsg_set(err, VT_EINVAL,
					     "indexed_fields[%zu].path: 1..%u "
					     "bytes",
					     i, VT_SHARD_MAX_PATH - 1);
		if (!f->has_type || f->type < 1 || f->type > 4)
			return vt_errmsg_set(err, VT_EINVAL,
					     "indexed_fields[%zu].type: one of "
					     "keyword, integer, float, bool",
					     i);
		strcpy(c.shard.fields[i].path, f->path);
		c.shard.fields[i].type = (int)f->type;
	}
	c.shard.n_fields = (uint32_t)r->n_indexed_fields;
	int rc = vt_db_create(api->db, &c, err);
	if (rc)
		return rc;
	vt_coll *coll;
	if ((rc = coll_for_request(api, cx, "name", r->name, &coll, err)))
		return rc;
	return collection_info(cx, coll, 1,
			       (Vectron__V1__CollectionInfo **)resp, err);
}

static int m_list(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		  ProtobufCMessage **resp, vt_errmsg *err)
{
	(void)in;
	vt_coll **all;
	size_t n;
	if (vt_db_list(api->db, &all, &n))
		return NOMEM(err);
	Vectron__V1__ListCollectionsResponse *out =
		ALLOC(cx, Vectron__V1__ListCollectionsResponse);
	Vectron__V1__CollectionInfo **infos =
		vt_arena_calloc(cx->arena, n + 1, sizeof *infos);
	int rc = out && infos ? 0 : NOMEM(err);
	for (size_t i = 0; i < n; i++) {
		if (!rc && !(rc = vt_arena_defer(cx->arena, release_coll, all[i])))
			rc = collection_info(cx, all[i], 1, &infos[i], err);
		else if (rc)
			vt_coll_release(all[i]);
	}
	vt_free(all);
	if (rc)
		return rc;
	vectron__v1__list_collections_response__init(out);
	out->n_collections = n;
	out->collections = infos;
	*resp = &out->base;
	return 0;
}

static int m_get_collection(vt_api *api, vt_api_ctx *cx,
			    const ProtobufCMessage *in, ProtobufCMessage **resp,
			    vt_errmsg *err)
{
	const Vectron__V1__GetCollectionRequest *r = (const void *)in;
	vt_coll *c;
	int rc = coll_for_request(api, cx, "name", r->name, &c, err);
	if (rc)
		return rc;
	return collection_info(cx, c, 1, (Vectron__V1__CollectionInfo **)resp,
			       err);
}

static int m_delete_collection(vt_api *api, vt_api_ctx *cx,
			       const ProtobufCMessage *in,
			       ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__DeleteCollectionRequest *r = (const void *)in;
	if (is_empty(r->name))
		return vt_errmsg_set(err, VT_EINVAL, "name: required");
	int rc = vt_db_drop(api->db, r->name, err);
	if (rc)
		return rc;
	Vectron__V1__DeleteCollectionResponse *out =
		ALLOC(cx, Vectron__V1__DeleteCollectionResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__delete_collection_response__init(out);
	out->has_deleted = out->deleted = 1;
	*resp = &out->base;
	return 0;
}

/* ---- points ------------------------------------------------------------------- */

static int m_upsert(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__UpsertRequest *r = (const void *)in;
	vt_coll *c;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc)
		return rc;
	if (r->n_points == 0)
		return vt_errmsg_set(err, VT_EINVAL, "points: empty");
	if (r->n_points > VT_COLL_MAX_POINTS)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "points: %zu (max %u per request)",
				     r->n_points, VT_COLL_MAX_POINTS);
	uint32_t dim = vt_coll_config_get(c)->shard.dim;
	vt_coll_point *pts =
		vt_arena_calloc(cx->arena, r->n_points, sizeof *pts);
	if (!pts)
		return NOMEM(err);
	for (size_t i = 0; i < r->n_points; i++) {
		const Vectron__V1__Point *p = r->points[i];
		if (is_empty(p->id))
			return vt_errmsg_set(err, VT_EINVAL,
					     "points[%zu].id: required", i);
		if (p->n_vector != dim)
			return vt_errmsg_set(err, VT_EINVAL,
					     "points[%zu].vector: %zu values, "
					     "the collection has dimension %u",
					     i, p->n_vector, dim);
		pts[i].id = p->id;
		pts[i].id_len = strlen(p->id);
		pts[i].vec = p->vector;
		pts[i].payload = p->payload;
		pts[i].payload_len = p->payload ? strlen(p->payload) : 0;
	}
	if ((rc = check_deadline(cx, err)))
		return rc;
	vt_coll_write_result wr;
	if ((rc = vt_coll_upsert(c, pts, r->n_points, &wr, err)))
		return rc;
	Vectron__V1__UpsertResponse *out = ALLOC(cx, Vectron__V1__UpsertResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__upsert_response__init(out);
	out->has_upserted = out->has_created = 1;
	out->upserted = wr.upserted;
	out->created = wr.created;
	*resp = &out->base;
	return 0;
}

/* ids of a request as (pointer, length) arrays in the arena. */
static int ids_of(vt_api_ctx *cx, char **ids, size_t n, size_t **lens,
		  vt_errmsg *err)
{
	*lens = vt_arena_calloc(cx->arena, n + 1, sizeof **lens);
	if (!*lens)
		return NOMEM(err);
	for (size_t i = 0; i < n; i++)
		(*lens)[i] = strlen(ids[i]);
	return 0;
}

/* Fills Point messages from hits. */
static int points_of(vt_api_ctx *cx, const vt_coll_results *res, uint32_t dim,
		     Vectron__V1__Point ***out, vt_errmsg *err)
{
	Vectron__V1__Point **pts =
		vt_arena_calloc(cx->arena, res->n + 1, sizeof *pts);
	Vectron__V1__Point *blk =
		vt_arena_calloc(cx->arena, res->n + 1, sizeof *blk);
	if (!pts || !blk)
		return NOMEM(err);
	for (size_t i = 0; i < res->n; i++) {
		const vt_shard_hit *h = &res->hits[i];
		vectron__v1__point__init(&blk[i]);
		blk[i].id = (char *)h->id;
		blk[i].payload = (char *)h->payload;
		if (h->vec) {
			blk[i].n_vector = dim;
			blk[i].vector = (float *)h->vec;
		}
		pts[i] = &blk[i];
	}
	*out = pts;
	return 0;
}

static int m_get(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		 ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__GetRequest *r = (const void *)in;
	vt_coll *c;
	size_t *lens;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc || (rc = ids_of(cx, r->ids, r->n_ids, &lens, err)))
		return rc;
	vt_coll_results *res = results_for_request(cx);
	if (!res)
		return NOMEM(err);
	rc = vt_coll_get(c, (const char *const *)r->ids, lens, r->n_ids,
			 r->with_payload, r->has_with_vector && r->with_vector,
			 res, err);
	if (rc)
		return rc;
	Vectron__V1__GetResponse *out = ALLOC(cx, Vectron__V1__GetResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__get_response__init(out);
	out->n_points = res->n;
	if ((rc = points_of(cx, res, vt_coll_config_get(c)->shard.dim,
			    &out->points, err)))
		return rc;
	*resp = &out->base;
	return 0;
}

static int m_delete(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__DeleteRequest *r = (const void *)in;
	vt_coll *c;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc)
		return rc;
	int by_filter = !is_empty(r->filter);
	if (by_filter == (r->n_ids > 0))
		return vt_errmsg_set(err, VT_EINVAL,
				     "ids, filter: give exactly one of them");
	if ((rc = check_deadline(cx, err)))
		return rc;
	vt_coll_write_result wr;
	if (by_filter) {
		rc = vt_coll_delete_filter(c, r->filter, strlen(r->filter), &wr,
					   err);
	} else {
		size_t *lens;
		if ((rc = ids_of(cx, r->ids, r->n_ids, &lens, err)))
			return rc;
		rc = vt_coll_delete_ids(c, (const char *const *)r->ids, lens,
					r->n_ids, &wr, err);
	}
	if (rc)
		return rc;
	Vectron__V1__DeleteResponse *out = ALLOC(cx, Vectron__V1__DeleteResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__delete_response__init(out);
	out->has_deleted = 1;
	out->deleted = wr.deleted;
	*resp = &out->base;
	return 0;
}

static int m_set_payload(vt_api *api, vt_api_ctx *cx,
			 const ProtobufCMessage *in, ProtobufCMessage **resp,
			 vt_errmsg *err)
{
	const Vectron__V1__SetPayloadRequest *r = (const void *)in;
	vt_coll *c;
	size_t *lens;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc)
		return rc;
	if (!r->payload)
		return vt_errmsg_set(err, VT_EINVAL, "payload: required");
	if ((rc = ids_of(cx, r->ids, r->n_ids, &lens, err)) ||
	    (rc = check_deadline(cx, err)))
		return rc;
	vt_coll_write_result wr;
	rc = vt_coll_set_payload(c, (const char *const *)r->ids, lens, r->n_ids,
				 r->payload, strlen(r->payload),
				 r->has_merge && r->merge, &wr, err);
	if (rc)
		return rc;
	Vectron__V1__SetPayloadResponse *out =
		ALLOC(cx, Vectron__V1__SetPayloadResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__set_payload_response__init(out);
	out->has_updated = 1;
	out->updated = wr.updated;
	*resp = &out->base;
	return 0;
}

static int m_scroll(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__ScrollRequest *r = (const void *)in;
	vt_coll *c;
	vt_filter *f;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc || (rc = filter_for_request(cx, c, r->filter, &f, err)))
		return rc;
	uint32_t limit = r->has_limit ? r->limit : 100;
	vt_coll_results *res = results_for_request(cx);
	char *next = vt_arena_alloc(cx->arena, 32);
	if (!res || !next)
		return NOMEM(err);
	rc = vt_coll_scroll(c, f, limit, r->cursor ? r->cursor : "",
			    r->with_payload, r->has_with_vector && r->with_vector,
			    res, next, err);
	if (rc)
		return rc;
	Vectron__V1__ScrollResponse *out = ALLOC(cx, Vectron__V1__ScrollResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__scroll_response__init(out);
	out->n_points = res->n;
	out->next_cursor = next;
	if ((rc = points_of(cx, res, vt_coll_config_get(c)->shard.dim,
			    &out->points, err)))
		return rc;
	*resp = &out->base;
	return 0;
}

static int m_count(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		   ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__CountRequest *r = (const void *)in;
	vt_coll *c;
	vt_filter *f;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc || (rc = filter_for_request(cx, c, r->filter, &f, err)))
		return rc;
	uint64_t n;
	if ((rc = vt_coll_count(c, f, &n, err)))
		return rc;
	Vectron__V1__CountResponse *out = ALLOC(cx, Vectron__V1__CountResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__count_response__init(out);
	out->has_count = 1;
	out->count = n;
	*resp = &out->base;
	return 0;
}

/* ---- search ------------------------------------------------------------------- */

/* Checks a search request and fills the query; `field` prefixes errors
 * ("searches[3]" in a batch). */
static int search_query(vt_api *api, vt_api_ctx *cx, vt_coll *c,
			const Vectron__V1__SearchRequest *r, const char *field,
			vt_coll_query *q, vt_errmsg *err)
{
	const vt_coll_config *cfg = vt_coll_config_get(c);
	const char *p = field ? field : "";
	const char *dot = field ? "." : "";
	if (r->n_vector != cfg->shard.dim)
		return vt_errmsg_set(err, VT_EINVAL,
				     "%s%svector: %zu values, the collection has "
				     "dimension %u",
				     p, dot, r->n_vector, cfg->shard.dim);
	for (size_t i = 0; i < r->n_vector; i++)
		if (!isfinite(r->vector[i]))
			return vt_errmsg_set(err, VT_EINVAL,
					     "%s%svector[%zu]: not a finite "
					     "number",
					     p, dot, i);
	uint32_t k = r->has_top_k ? r->top_k : 10;
	if (k < 1 || k > VT_COLL_MAX_K)
		return vt_errmsg_set(err, VT_EINVAL, "%s%stop_k: %u (1..%u)", p,
				     dot, k, VT_COLL_MAX_K);
	if (r->has_ef && r->ef > 100000)
		return vt_errmsg_set(err, VT_EINVAL, "%s%sef: %u (0..100000)", p,
				     dot, r->ef);
	if (r->has_oversampling &&
	    !(r->oversampling >= 1.0f && r->oversampling <= 100.0f))
		return vt_errmsg_set(err, VT_EINVAL,
				     "%s%soversampling: %g (1..100)", p, dot,
				     (double)r->oversampling);
	if (r->has_score_threshold && !isfinite(r->score_threshold))
		return vt_errmsg_set(err, VT_EINVAL,
				     "%s%sscore_threshold: not a finite number",
				     p, dot);
	vt_filter *f;
	int rc = filter_for_request(cx, c, r->filter, &f, err);
	if (rc) {
		if (field)
			vt_errmsg_prefix(err, rc, "%s", field);
		return rc;
	}
	vt_coll_query_default(q, r->vector, k);
	q->ef = r->has_ef ? r->ef : 0;
	q->filter = f;
	q->exact = r->has_exact && r->exact;
	q->rescore = r->has_rescore ? r->rescore : -1;
	q->oversampling = r->has_oversampling ? r->oversampling : 0;
	q->with_payload = r->with_payload;
	q->with_vector = r->has_with_vector && r->with_vector;
	q->has_threshold = r->has_score_threshold;
	q->threshold = r->score_threshold;
	q->strong = r->has_consistency &&
		    r->consistency == VECTRON__V1__CONSISTENCY__STRONG;
	q->allow_partial = r->has_allow_partial && r->allow_partial;
	uint32_t left = remaining_ms(cx);
	q->wait_ms = r->has_timeout_ms && r->timeout_ms ? r->timeout_ms
		     : left ? left
			    : api->opts.default_timeout_ms;
	if (left && q->wait_ms > left)
		q->wait_ms = left;
	return 0;
}

static int search_response(vt_api_ctx *cx, const vt_shard_hit *hits, size_t n,
			   uint32_t dim, Vectron__V1__SearchResponse **out,
			   vt_errmsg *err)
{
	Vectron__V1__SearchResponse *sr = ALLOC(cx, Vectron__V1__SearchResponse);
	Vectron__V1__ScoredPoint **res =
		vt_arena_calloc(cx->arena, n + 1, sizeof *res);
	Vectron__V1__ScoredPoint *blk =
		vt_arena_calloc(cx->arena, n + 1, sizeof *blk);
	if (!sr || !res || !blk)
		return NOMEM(err);
	vectron__v1__search_response__init(sr);
	for (size_t i = 0; i < n; i++) {
		vectron__v1__scored_point__init(&blk[i]);
		blk[i].id = (char *)hits[i].id;
		blk[i].has_score = 1;
		blk[i].score = hits[i].score;
		blk[i].payload = (char *)hits[i].payload;
		if (hits[i].vec) {
			blk[i].n_vector = dim;
			blk[i].vector = (float *)hits[i].vec;
		}
		res[i] = &blk[i];
	}
	sr->n_results = n;
	sr->results = res;
	*out = sr;
	return 0;
}

/* The shards a partial search left out (their list lives in `res`, which
 * lives as long as the request). */
static int missing_of(const vt_coll_results *res, Vectron__V1__SearchResponse *sr)
{
	sr->n_missing_shards = res->n_missing;
	sr->missing_shards = res->missing;
	return 0;
}

static int m_search(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	const Vectron__V1__SearchRequest *r = (const void *)in;
	vt_coll *c;
	vt_coll_query q;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc || (rc = search_query(api, cx, c, r, NULL, &q, err)) ||
	    (rc = check_deadline(cx, err)))
		return rc;
	/* timeout_ms bounds this search as well as the request's deadline */
	if (r->has_timeout_ms && r->timeout_ms) {
		uint64_t dl = vt_clock_mono_ns() +
			      (uint64_t)r->timeout_ms * 1000000u;
		if (!cx->deadline_ns || dl < cx->deadline_ns)
			cx->deadline_ns = dl;
	}
	vt_coll_results *res = results_for_request(cx);
	if (!res)
		return NOMEM(err);
	if ((rc = vt_coll_search(c, &q, NULL, NULL, res, err)))
		return rc;
	if (cx->deadline_ns && vt_clock_mono_ns() > cx->deadline_ns)
		return vt_errmsg_set(err, VT_ETIMEDOUT,
				     "deadline exceeded during the search");
	return search_response(cx, res->hits, res->n,
			       vt_coll_config_get(c)->shard.dim,
			       (Vectron__V1__SearchResponse **)resp, err) ||
	       missing_of(res, *(Vectron__V1__SearchResponse **)resp);
}

static int m_search_batch(vt_api *api, vt_api_ctx *cx,
			  const ProtobufCMessage *in, ProtobufCMessage **resp,
			  vt_errmsg *err)
{
	const Vectron__V1__SearchBatchRequest *r = (const void *)in;
	vt_coll *c;
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc)
		return rc;
	if (r->n_searches == 0)
		return vt_errmsg_set(err, VT_EINVAL, "searches: empty");
	if (r->n_searches > api->opts.max_batch_searches)
		return vt_errmsg_set(err, VT_ELIMIT, "searches: %zu (max %u)",
				     r->n_searches, api->opts.max_batch_searches);
	vt_coll_query *qs = vt_arena_calloc(cx->arena, r->n_searches, sizeof *qs);
	Vectron__V1__SearchBatchResponse *out =
		ALLOC(cx, Vectron__V1__SearchBatchResponse);
	Vectron__V1__SearchResponse **rs =
		vt_arena_calloc(cx->arena, r->n_searches, sizeof *rs);
	if (!qs || !out || !rs)
		return NOMEM(err);
	/* every search is checked before any runs */
	for (size_t i = 0; i < r->n_searches; i++) {
		const Vectron__V1__SearchRequest *s = r->searches[i];
		char field[32];
		snprintf(field, sizeof field, "searches[%zu]", i);
		if (!is_empty(s->collection) &&
		    strcmp(s->collection, r->collection))
			return vt_errmsg_set(err, VT_EINVAL,
					     "%s.collection: must be empty or "
					     "\"%.64s\"",
					     field, r->collection);
		if ((rc = search_query(api, cx, c, s, field, &qs[i], err)))
			return rc;
	}
	uint32_t dim = vt_coll_config_get(c)->shard.dim;
	for (size_t i = 0; i < r->n_searches; i++) {
		vt_coll_results *res = results_for_request(cx);
		if (!res)
			return NOMEM(err);
		if ((rc = check_deadline(cx, err)) ||
		    (rc = vt_coll_search(c, &qs[i], NULL, NULL, res, err)) ||
		    (rc = search_response(cx, res->hits, res->n, dim, &rs[i],
					  err)) ||
		    (rc = missing_of(res, rs[i]))) {
			vt_errmsg_prefix(err, rc, "searches[%zu]", i);
			return rc;
		}
	}
	vectron__v1__search_batch_response__init(out);
	out->n_responses = r->n_searches;
	out->responses = rs;
	*resp = &out->base;
	return 0;
}

struct stream_ctx {
	vt_api_ctx *cx;
	uint32_t dim;
	int stopped;
};

static void on_partial(void *ud, const vt_shard_hit *hits, size_t n,
		       uint32_t done, uint32_t total)
{
	struct stream_ctx *sc = ud;
	if (sc->stopped)
		return;
	/* A scratch arena per message: partial messages are packed at once
	 * and not kept. */
	vt_arena *a = vt_arena_create(0);
	if (!a)
		return;
	vt_api_ctx tmp = *sc->cx;
	tmp.arena = a;
	Vectron__V1__SearchResponse *sr;
	vt_errmsg e;
	if (!search_response(&tmp, hits, n, sc->dim, &sr, &e)) {
		sr->has_shards_done = sr->has_shards_total = 1;
		sr->shards_done = done;
		sr->shards_total = total;
		if (sc->cx->stream(sc->cx->stream_ud, &sr->base))
			sc->stopped = 1;
	}
	vt_arena_destroy(a);
}

static int m_search_stream(vt_api *api, vt_api_ctx *cx,
			   const ProtobufCMessage *in, ProtobufCMessage **resp,
			   vt_errmsg *err)
{
	const Vectron__V1__SearchRequest *r = (const void *)in;
	vt_coll *c;
	vt_coll_query q;
	*resp = NULL;
	if (!cx->stream)
		return vt_errmsg_set(err, VT_ENOTSUP,
				     "SearchStream needs a streaming transport");
	int rc = coll_for_request(api, cx, "collection", r->collection, &c, err);
	if (rc || (rc = search_query(api, cx, c, r, NULL, &q, err)) ||
	    (rc = check_deadline(cx, err)))
		return rc;
	vt_coll_results *res = results_for_request(cx);
	if (!res)
		return NOMEM(err);
	struct stream_ctx sc = {cx, vt_coll_config_get(c)->shard.dim, 0};
	/* The last partial (all shards done) is the final result. */
	return vt_coll_search(c, &q, on_partial, &sc, res, err);
}

static int m_health(vt_api *api, vt_api_ctx *cx, const ProtobufCMessage *in,
		    ProtobufCMessage **resp, vt_errmsg *err)
{
	(void)in;
	Vectron__V1__HealthResponse *out = ALLOC(cx, Vectron__V1__HealthResponse);
	if (!out)
		return NOMEM(err);
	vectron__v1__health_response__init(out);
	out->status = "ok";
	out->version = (char *)api->opts.version;
	*resp = &out->base;
	return 0;
}

/* ---- the table ---------------------------------------------------------------- */

#define M(name, in, out, fn, streaming)                                        \
	{name, &vectron__v1__##in##__descriptor,                               \
	 &vectron__v1__##out##__descriptor, fn, streaming, 0}

static vt_api_method methods[] = {
	M("CreateCollection", create_collection_request, collection_info,
	  m_create, 0),
	M("ListCollections", list_collections_request,
	  list_collections_response, m_list, 0),
	M("GetCollection", get_collection_request, collection_info,
	  m_get_collection, 0),
	M("DeleteCollection", delete_collection_request,
	  delete_collection_response, m_delete_collection, 0),
	M("Upsert", upsert_request, upsert_response, m_upsert, 0),
	M("Get", get_request, get_response, m_get, 0),
	M("Delete", delete_request, delete_response, m_delete, 0),
	M("SetPayload", set_payload_request, set_payload_response,
	  m_set_payload, 0),
	M("Scroll", scroll_request, scroll_response, m_scroll, 0),
	M("Count", count_request, count_response, m_count, 0),
	M("Search", search_request, search_response, m_search, 0),
	M("SearchBatch", search_batch_request, search_batch_response,
	  m_search_batch, 0),
	M("SearchStream", search_request, search_response, m_search_stream,
	  1),
	M("Health", health_request, health_response, m_health, 0),
};

#define N_METHODS (sizeof methods / sizeof methods[0])

/* Each method's `index` is its place in the table, written once: the
 * loop thread looks methods up while request threads read them. */
static pthread_once_t methods_once = PTHREAD_ONCE_INIT;

static void methods_number(void)
{
	for (size_t i = 0; i < N_METHODS; i++)
		methods[i].index = (int)i;
}

const vt_api_method *vt_api_methods(size_t *n)
{
	pthread_once(&methods_once, methods_number);
	*n = N_METHODS;
	return methods;
}

const vt_api_method *vt_api_method_find(const char *name)
{
	pthread_once(&methods_once, methods_number);
	for (size_t i = 0; i < N_METHODS; i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

int vt_api_create(vt_db *db, const vt_api_opts *o, vt_api **out)
{
	vt_api *api = vt_calloc(1, sizeof *api);
	if (!api)
		return VT_ENOMEM;
	api->db = db;
	if (o)
		api->opts = *o;
	else
		vt_api_opts_default(&api->opts);
	size_t n;
	const vt_api_method *m = vt_api_methods(&n);
	const char *names[N_METHODS];
	for (size_t i = 0; i < n; i++)
		names[i] = m[i].name;
	if (vt_api_metrics_reg_create(names, n, &api->metrics)) {
		vt_free(api);
		return VT_ENOMEM;
	}
	*out = api;
	return 0;
}

void vt_api_destroy(vt_api *api)
{
	if (!api)
		return;
	vt_api_metrics_reg_destroy(api->metrics);
	vt_free(api);
}

int vt_api_call(vt_api *api, const vt_api_method *m, vt_api_ctx *cx,
		const ProtobufCMessage *req, ProtobufCMessage **resp,
		vt_errmsg *err)
{
	uint64_t t0 = vt_clock_mono_ns();
	vt_errmsg_clear(err);
	*resp = NULL;
	if (!cx->deadline_ns && api->opts.default_timeout_ms)
		cx->deadline_ns = t0 + (uint64_t)api->opts.default_timeout_ms *
					       1000000u;
	int rc = m->fn(api, cx, req, resp, err);
	if (rc && !err->msg[0])
		vt_errmsg_set(err, rc, "%s", vt_strerror(rc));
	if (rc)
		*resp = NULL;
	vt_api_observe(api, m, rc, vt_clock_mono_ns() - t0);
	if (rc && vt_api_status_of(rc).http >= 500)
		VT_LOG(VT_LOG_WARN, "api", "%s: %s", m->name, err->msg);
	return rc;
}

vt_api_status vt_api_status_of(int e)
{
	return vt_err_status_of(e);
}

void vt_api_observe(vt_api *api, const vt_api_method *m, int vt_err,
		    uint64_t ns)
{
	vt_api_metrics_reg_observe(api->metrics, m ? m->index : -1,
				   vt_api_status_of(vt_err).name, ns);
}

int vt_api_metrics(vt_api *api, vt_buf *out)
{
	int rc = vt_api_metrics_reg_render(api->metrics, out);
	if (rc)
		return rc;
	vt_coll **all;
	size_t n;
	if ((rc = vt_db_list(api->db, &all, &n)))
		return rc;
	char line[512];
	static const char *const gauges[][2] = {
		{"vectron_collection_points", "Points stored."},
		{"vectron_collection_indexed_points", "Points in the index."},
		{"vectron_collection_index_lag",
		 "Index changes waiting (async indexing)."},
		{"vectron_collection_memory_bytes", "Index memory."},
		{"vectron_collection_disk_bytes", "Store and index snapshot."},
	};
	vt_coll_status *st = vt_calloc(n + 1, sizeof *st);
	for (size_t i = 0; st && i < n; i++)
		vt_coll_status_get(all[i], &st[i]);
	for (size_t g = 0; st && !rc && g < 5; g++) {
		int k = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s gauge\n",
				 gauges[g][0], gauges[g][1], gauges[g][0]);
		rc = vt_buf_append(out, line, (size_t)k);
		for (size_t i = 0; i < n && !rc; i++) {
			uint64_t v = g == 0   ? st[i].points
				     : g == 1 ? st[i].indexed_points
				     : g == 2 ? st[i].index_lag
				     : g == 3 ? st[i].memory_bytes
					      : st[i].disk_bytes;
			k = snprintf(line, sizeof line,
				     "%s{collection=\"%s\"} %llu\n", gauges[g][0],
				     vt_coll_config_get(all[i])->name,
				     (unsigned long long)v);
			rc = vt_buf_append(out, line, (size_t)k);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (st)
			vt_free(st[i].shards);
		vt_coll_release(all[i]);
	}
	vt_free(st);
	vt_free(all);
	return st ? rc : VT_ENOMEM;
}
