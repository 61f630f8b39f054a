/* shard.c: opening and closing a shard, applying commands, status. Index
 * upkeep is in shard_index.c, reads in shard_search.c, whole-shard copies
 * in shard_snap.c. The apply contract is in shard.h and docs/shard.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "shard_int.h"

#define META_CONFIG "shard.config"
#define META_UUID "shard.uuid"

void vt_shard_opts_default(vt_shard_opts *o)
{
	memset(o, 0, sizeof *o);
	o->store_sync = VT_STORE_SYNC_FULL;
	o->map_max = (size_t)64 << 30;
	vt_cmd_limits_default(&o->limits);
	o->queue_max = 100000;
	o->queue_wait_ms = 1000;
	o->index_threads = 0;
	o->snapshot_entries = 20000;
	o->consolidate_ratio = 0.1;
	o->background = 1;
	o->index_nice = 10;
}

char *vt__path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = vt_malloc(a + b + 2);
	if (p) {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, name, b + 1);
	}
	return p;
}

void vt__shard_signal(vt_shard *s)
{
	pthread_cond_broadcast(&s->cv);
}

const vt_shard_config *vt_shard_config_get(const vt_shard *s)
{
	return &s->cfg;
}

const vt_payload_schema *vt_shard_schema(const vt_shard *s)
{
	return &s->schema;
}

/* Reads the stored config and identity, or writes them for a new store. */
static int load_or_init_meta(vt_shard *s, vt_errmsg *err)
{
	vt_store_txn *tx = NULL;
	const void *v;
	size_t n;
	char *json = NULL;
	int rc = vt_store_txn_begin_read(s->st, &tx);
	if (rc)
		return vt_errmsg_set(err, rc, "reading config: %s",
				     vt_strerror(rc));
	rc = vt_store_meta_get(tx, META_CONFIG, &v, &n);
	if (rc == 0) {
		rc = vt__shard_config_decode(v, n, &s->cfg, err);
		if (!rc) {
			rc = vt_store_meta_get(tx, META_UUID, &v, &n);
			if (rc || n != VT_SHARD_UUID_BYTES)
				rc = vt_errmsg_set(err, VT_ECORRUPT,
						   "stored identity missing");
			else
				memcpy(s->uuid, v, n);
		}
		vt_store_txn_abort(tx);
		if (rc)
			return rc;
		const vt_shard_config *want = s->opts.create;
		if (want && (want->dim != s->cfg.dim ||
			     want->metric != s->cfg.metric))
			return vt_errmsg_set(err, VT_EINVAL,
					     "the shard exists with dimension %u "
					     "and metric %s",
					     s->cfg.dim,
					     vt_metric_name(s->cfg.metric));
		return 0;
	}
	vt_store_txn_abort(tx);
	if (rc != VT_ENOENT)
		return vt_errmsg_set(err, rc, "reading config: %s",
				     vt_strerror(rc));
	if (!s->opts.create)
		return vt_errmsg_set(err, VT_ENOENT, "%s: no shard here", s->dir);
	s->cfg = *s->opts.create;
	if (getrandom(s->uuid, sizeof s->uuid, 0) != (ssize_t)sizeof s->uuid)
		return vt_errmsg_set(err, VT_EIO, "getrandom: %s",
				     strerror(errno));
	if ((rc = vt__shard_config_encode(&s->cfg, &json, &n)))
		return vt_errmsg_set(err, rc, "encoding config");
	if ((rc = vt_store_txn_begin(s->st, &tx)))
		goto fail;
	if ((rc = vt_store_meta_put(tx, META_CONFIG, json, n)) ||
	    (rc = vt_store_meta_put(tx, META_UUID, s->uuid, sizeof s->uuid))) {
		vt_store_txn_abort(tx);
		goto fail;
	}
	rc = vt_store_txn_commit(tx);
fail:
	vt_free(json);
	if (rc)
		return vt_errmsg_set(err, rc, "writing config: %s",
				     vt_store_errmsg(s->st));
	return 0;
}

static void shard_free(vt_shard *s)
{
	vt_pool_destroy(s->pool);
	vt_payload_index_destroy(s->pix);
	vt_hnsw_destroy(s->h);
	vt_store_close(s->st);
	pthread_mutex_destroy(&s->apply_mu);
	pthread_mutex_destroy(&s->ckpt_mu);
	pthread_mutex_destroy(&s->idx_mu);
	pthread_mutex_destroy(&s->mu);
	pthread_rwlock_destroy(&s->pix_lock);
	pthread_rwlock_destroy(&s->gate);
	pthread_cond_destroy(&s->cv);
	vt_free(s->dir);
	vt_free(s->store_dir);
	vt_free(s->snap_path);
	vt_free(s->name);
	vt_free(s);
}

int vt_shard_open(const char *dir, const vt_shard_opts *o, vt_shard **out,
		  vt_errmsg *err)
{
	vt_shard_opts dopts;
	if (!o) {
		vt_shard_opts_default(&dopts);
		o = &dopts;
	}
	*out = NULL;
	int rc;
	if (o->create && (rc = vt_shard_config_check(o->create, err)))
		return rc;
	if (o->queue_max == 0)
		return vt_errmsg_set(err, VT_EINVAL, "queue_max: must be > 0");
	if (!(o->consolidate_ratio >= 0))
		return vt_errmsg_set(err, VT_EINVAL,
				     "consolidate_ratio: must be >= 0");
	if (o->create && mkdir(dir, 0755) && errno != EEXIST)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "mkdir %s: %s",
				     dir, strerror(errno));
	vt_shard *s = vt_calloc(1, sizeof *s);
	if (!s)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	pthread_mutex_init(&s->apply_mu, NULL);
	pthread_mutex_init(&s->ckpt_mu, NULL);
	pthread_mutex_init(&s->idx_mu, NULL);
	pthread_mutex_init(&s->mu, NULL);
	pthread_rwlock_init(&s->pix_lock, NULL);
	pthread_rwlock_init(&s->gate, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->opts = *o;
	s->opts.create = NULL; /* not retained */
	s->dir = vt_strdup(dir);
	s->store_dir = vt__path_join(dir, "store");
	s->snap_path = vt__path_join(dir, "index.snap");
	s->name = vt_strdup(o->name ? o->name : dir);
	if (!s->dir || !s->store_dir || !s->snap_path || !s->name) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto fail;
	}
	s->opts.name = s->name;
	if (!s->opts.index_threads)
		s->opts.index_threads = vt_cpu_count();
	vt_store_opts so;
	vt_store_opts_default(&so);
	/* An existing store keeps its dim; the meta check below compares it
	 * with the create config and says so in the shard's terms. */
	char *data = vt__path_join(s->store_dir, "data.mdb");
	struct stat sb;
	int exists = data && stat(data, &sb) == 0;
	vt_free(data);
	so.dim = o->create && !exists ? o->create->dim : 0;
	/* Files but no format record: a first open killed half-way. */
	so.new_dim = o->create ? o->create->dim : 0;
	so.sync = o->store_sync;
	so.map_max = o->map_max;
	if (so.map_initial > so.map_max) /* a store smaller than the default start */
		so.map_initial = so.map_max;
	so.max_payload = o->limits.max_payload;
	so.create = o->create != NULL;
	if ((rc = vt_store_open(s->store_dir, &so, &s->st, err))) {
		vt_errmsg_prefix(err, rc, "shard %s: store", s->name);
		goto fail;
	}
	s->opts.create = o->create; /* for the meta check only */
	rc = load_or_init_meta(s, err);
	s->opts.create = NULL;
	if (rc) {
		vt_errmsg_prefix(err, rc, "shard %s", s->name);
		goto fail;
	}
	for (uint32_t i = 0; i < s->cfg.n_fields; i++) {
		s->schema_fields[i].path = s->cfg.fields[i].path;
		s->schema_fields[i].type = s->cfg.fields[i].type;
	}
	s->schema.fields = s->schema_fields;
	s->schema.n = s->cfg.n_fields;
	/* Async indexing is background work: its threads yield the CPU to
	 * the writes being acknowledged. Sync mode indexes on the write
	 * path, at the writer's priority. */
	if ((rc = vt_pool_create_nice(s->opts.index_threads - 1,
				      s->cfg.index_mode == VT_INDEX_ASYNC
					      ? s->opts.index_nice
					      : 0,
				      &s->pool))) {
		vt_errmsg_set(err, rc, "starting index threads");
		goto fail;
	}
	if ((rc = vt__shard_index_open(s, err))) {
		vt_errmsg_prefix(err, rc, "shard %s", s->name);
		goto fail;
	}
	if (s->opts.background && (rc = vt__shard_thread_start(s))) {
		vt_errmsg_set(err, rc, "shard %s: starting its thread", s->name);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	shard_free(s);
	return rc;
}

void vt_shard_close(vt_shard *s)
{
	if (!s)
		return;
	vt__shard_thread_stop(s);
	shard_free(s);
}

/* ---- apply ------------------------------------------------------------------*/

/* A command, decoded and checked, with what apply needs ready. */
struct prep {
	vt_cmd cmd;
	vt_buf canon;       /* canonical payload bytes, back to back */
	size_t *off;        /* per entry: offset and length in canon */
	uint32_t *len;
	vt_payload **parsed; /* per entry, when the payload index needs it */
	vt_filter *filter;  /* DELETE_FILTER */
	float *vec;         /* scratch: one aligned vector */
};

static void prep_free(struct prep *p)
{
	if (p->parsed)
		for (uint32_t i = 0; i < p->cmd.n; i++)
			vt_payload_free(p->parsed[i]);
	vt_free(p->parsed);
	vt_free(p->off);
	vt_free(p->len);
	vt_buf_free(&p->canon);
	vt_filter_free(p->filter);
	vt_free(p->vec);
	vt_cmd_release(&p->cmd);
}

int vt__shard_check_vector(const vt_shard *s, const float *v,
			   const char *what, vt_errmsg *err)
{
	double norm = 0;
	for (uint32_t d = 0; d < s->cfg.dim; d++) {
		if (!isfinite(v[d]))
			return vt_errmsg_set(err, VT_EINVAL,
					     "%s[%u]: not a finite number", what,
					     d);
		norm += (double)v[d] * v[d];
	}
	if (s->cfg.metric == VT_METRIC_COSINE &&
	    !(norm > 0 && isfinite((float)(1.0 / sqrt(norm)))))
		return vt_errmsg_set(err, VT_EINVAL,
				     "%s: zero (or too close to zero to "
				     "normalise) under cosine distance",
				     what);
	return 0;
}

static int prepare(vt_shard *s, const void *bytes, size_t len,
		   struct prep *p, vt_errmsg *err)
{
	vt_cmd_limits lim = s->opts.limits;
	if (lim.max_id > VT_STORE_MAX_ID)
		lim.max_id = VT_STORE_MAX_ID;
	memset(p, 0, sizeof *p);
	vt_buf_init(&p->canon, (size_t)1 << 31);
	int rc = vt_cmd_decode(bytes, len, &lim, &p->cmd, err);
	if (rc)
		return rc;
	vt_cmd *c = &p->cmd;
	if (c->type == VT_CMD_DELETE_FILTER)
		return vt_filter_parse(c->filter, c->filter_len, &s->schema,
				       &p->filter, err);
	if (c->type == VT_CMD_DELETE_IDS)
		return 0;
	if (c->type == VT_CMD_UPSERT && c->dim != s->cfg.dim)
		return vt_errmsg_set(err, VT_EINVAL,
				     "points[0].vector: dimension %u, the "
				     "collection has %u",
				     c->dim, s->cfg.dim);
	p->off = vt_calloc(c->n, sizeof *p->off);
	p->len = vt_calloc(c->n, sizeof *p->len);
	p->vec = vt_malloc((size_t)s->cfg.dim * sizeof(float));
	int keep = s->pix || c->type == VT_CMD_SET_PAYLOAD;
	if (keep)
		p->parsed = vt_calloc(c->n, sizeof *p->parsed);
	if (!p->off || !p->len || !p->vec || (keep && !p->parsed))
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	vt_payload_limits pl;
	vt_payload_limits_default(&pl);
	pl.max_bytes = s->opts.limits.max_payload;
	for (uint32_t i = 0; i < c->n; i++) {
		const vt_cmd_point *pt = &c->points[i];
		if (c->type == VT_CMD_UPSERT) {
			char what[32];
			snprintf(what, sizeof what, "points[%u].vector", i);
			vt_cmd_vector(c, i, p->vec);
			if ((rc = vt__shard_check_vector(s, p->vec, what, err)))
				return rc;
		}
		vt_payload *pay = NULL;
		p->off[i] = p->canon.len;
		if (pt->payload_len) {
			rc = vt_payload_parse(pt->payload, pt->payload_len, &pl,
					      &pay, err);
			if (rc)
				return vt_errmsg_prefix(err, rc,
							"points[%u]", i);
			/* "{}" is stored as no bytes: the common case costs
			 * nothing. */
			rc = vt_payload_dump(pay, &p->canon);
			if (!rc && p->canon.len - p->off[i] == 2)
				p->canon.len = p->off[i];
		} else if (keep) {
			rc = vt_payload_empty(&pay);
		}
		if (rc) {
			vt_payload_free(pay);
			return vt_errmsg_set(err, rc, "points[%u].payload: %s", i,
					     vt_strerror(rc));
		}
		p->len[i] = (uint32_t)(p->canon.len - p->off[i]);
		if (keep)
			p->parsed[i] = pay;
		else
			vt_payload_free(pay);
	}
	return 0;
}

/* A pending payload-index change, applied after the commit. */
struct pix_op {
	uint64_t label;
	vt_payload *old; /* NULL: none (a new point) */
	vt_payload *now; /* NULL: removed; borrowed from prep or owned */
	int own_now;
};

struct apply_ctx {
	vt_shard *s;
	struct prep *p;
	vt_store_txn *tx;
	uint64_t index;
	vt_shard_result *res;
	vt_errmsg *err;
	struct pix_op *ops;
	size_t nops, capops;
	uint64_t wal;       /* WAL entries written */
	int rejected;       /* a check failed inside the transaction */
};

static int push_op(struct apply_ctx *a, uint64_t label, vt_payload *old,
		   vt_payload *now, int own_now)
{
	if (a->nops == a->capops) {
		size_t cap = a->capops ? a->capops * 2 : 64;
		struct pix_op *n = vt_realloc(a->ops, cap * sizeof *n);
		if (!n) {
			vt_payload_free(old);
			if (own_now)
				vt_payload_free(now);
			return VT_ENOMEM;
		}
		a->ops = n;
		a->capops = cap;
	}
	a->ops[a->nops++] = (struct pix_op){label, old, now, own_now};
	return 0;
}

static void ops_free(struct apply_ctx *a)
{
	for (size_t i = 0; i < a->nops; i++) {
		vt_payload_free(a->ops[i].old);
		if (a->ops[i].own_now)
			vt_payload_free(a->ops[i].now);
	}
	vt_free(a->ops);
	a->ops = NULL;
	a->nops = a->capops = 0;
}

int vt__shard_payload_of(const vt_store_point *p, vt_payload **out,
			 vt_errmsg *err)
{
	if (!p->payload_len)
		return vt_payload_empty(out);
	vt_payload_limits pl;
	vt_payload_limits_default(&pl);
	pl.max_bytes = p->payload_len;
	pl.max_keys = pl.max_depth = UINT32_MAX;
	int rc = vt_payload_parse(p->payload, p->payload_len, &pl, out, err);
	if (rc && rc != VT_ENOMEM) {
		vt_errmsg_prefix(err, VT_ECORRUPT, "payload of label %llu",
				 (unsigned long long)p->label);
		rc = VT_ECORRUPT;
	}
	return rc;
}

static int txn_err(struct apply_ctx *a, int rc, const char *what, uint32_t i)
{
	/* The store refuses bad input the same way on every replica. */
	if (rc == VT_EINVAL || rc == VT_ELIMIT || rc == VT_ERANGE)
		a->rejected = 1;
	return vt_errmsg_set(a->err, rc, "points[%u]: %s: %s", i, what,
			     vt_store_txn_errmsg(a->tx));
}

static int do_upsert(struct apply_ctx *a)
{
	vt_shard *s = a->s;
	struct prep *p = a->p;
	int rc;
	for (uint32_t i = 0; i < p->cmd.n; i++) {
		const vt_cmd_point *pt = &p->cmd.points[i];
		vt_payload *old = NULL;
		if (s->pix) {
			vt_store_point sp;
			rc = vt_store_get_by_id(a->tx, pt->id, pt->id_len, &sp);
			if (rc == 0)
				rc = vt__shard_payload_of(&sp, &old, NULL);
			if (rc && rc != VT_ENOENT)
				return txn_err(a, rc, "reading", i);
		}
		uint64_t label;
		int upd;
		vt_cmd_vector(&p->cmd, i, p->vec);
		rc = vt_store_put(a->tx, pt->id, pt->id_len, p->vec, s->cfg.dim,
				  p->canon.data + p->off[i], p->len[i], &label,
				  &upd);
		if (!rc)
			rc = vt_store_wal_append(a->tx, a->index,
						 VT_STORE_WAL_UPSERT, label);
		if (rc) {
			vt_payload_free(old);
			return txn_err(a, rc, "writing", i);
		}
		a->wal++;
		a->res->upserted++;
		a->res->created += !upd;
		if (s->pix && (rc = push_op(a, label, old, p->parsed[i], 0)))
			return vt_errmsg_set(a->err, rc, "out of memory");
	}
	return 0;
}

/* Deletes one point; `label` (when known) saves a lookup. */
static int delete_one(struct apply_ctx *a, const void *id, size_t id_len,
		      uint32_t i)
{
	vt_payload *old = NULL;
	int rc;
	if (a->s->pix) {
		vt_store_point sp;
		rc = vt_store_get_by_id(a->tx, id, id_len, &sp);
		if (rc == VT_ENOENT) {
			a->res->missing++;
			return 0;
		}
		if (rc == 0)
			rc = vt__shard_payload_of(&sp, &old, NULL);
		if (rc)
			return txn_err(a, rc, "reading", i);
	}
	uint64_t label;
	rc = vt_store_del(a->tx, id, id_len, &label);
	if (rc == VT_ENOENT) {
		vt_payload_free(old);
		a->res->missing++;
		return 0;
	}
	if (!rc)
		rc = vt_store_wal_append(a->tx, a->index, VT_STORE_WAL_DELETE,
					 label);
	if (rc) {
		vt_payload_free(old);
		return txn_err(a, rc, "deleting", i);
	}
	a->wal++;
	a->res->deleted++;
	if (a->s->pix && (rc = push_op(a, label, old, NULL, 0)))
		return vt_errmsg_set(a->err, rc, "out of memory");
	return 0;
}

static int do_delete_ids(struct apply_ctx *a)
{
	for (uint32_t i = 0; i < a->p->cmd.n; i++) {
		const vt_cmd_point *pt = &a->p->cmd.points[i];
		int rc = delete_one(a, pt->id, pt->id_len, i);
		if (rc)
			return rc;
	}
	return 0;
}

/* Collects the ids that match the filter (as of this transaction), then
 * deletes them: the iterator must not see its own deletes. */
static int do_delete_filter(struct apply_ctx *a)
{
	vt_shard *s = a->s;
	vt_buf ids;
	vt_buf_init(&ids, SIZE_MAX);
	vt_filter_plan plan = {0};
	vt_store_iter *it = NULL;
	int rc = 0;
	if (s->pix) {
		/* apply_mu keeps the payload index equal to the store here. */
		pthread_rwlock_rdlock(&s->pix_lock);
		vt_filter_plan_params pp;
		vt_filter_plan_params_default(&pp);
		pp.scan_threshold = UINT64_MAX; /* always want the labels */
		rc = vt_filter_plan_build(a->p->filter, s->pix,
					  vt_payload_index_count(s->pix), &pp,
					  &plan);
		pthread_rwlock_unlock(&s->pix_lock);
		if (rc)
			goto out;
	}
	vt_filter_hnsw_ctx fc = {a->p->filter, plan.has_labels ? &plan : NULL,
				 NULL, NULL};
	vt_store_point sp;
	if (plan.strategy == VT_PLAN_EMPTY && s->pix)
		goto out;
	if (plan.has_labels) {
		for (size_t j = 0; j < plan.n_labels && !rc; j++) {
			rc = vt_store_get_by_label(a->tx, plan.labels[j], &sp);
			if (rc == VT_ENOENT) {
				rc = 0;
				continue;
			}
			vt_payload *pay = NULL;
			if (!rc && !plan.exact)
				rc = vt__shard_payload_of(&sp, &pay, NULL);
			if (!rc && (plan.exact ||
				    vt_filter_plan_check(&fc, sp.label, pay))) {
				uint16_t n = (uint16_t)sp.id_len;
				rc = vt_buf_append(&ids, &n, 2);
				if (!rc)
					rc = vt_buf_append(&ids, sp.id, n);
			}
			vt_payload_free(pay);
		}
	} else {
		rc = vt_store_iter_open(a->tx, 0, &it);
		while (!rc && !(rc = vt_store_iter_next(it, &sp))) {
			vt_payload *pay = NULL;
			rc = vt__shard_payload_of(&sp, &pay, NULL);
			if (!rc && vt_filter_match(a->p->filter, pay)) {
				uint16_t n = (uint16_t)sp.id_len;
				rc = vt_buf_append(&ids, &n, 2);
				if (!rc)
					rc = vt_buf_append(&ids, sp.id, n);
			}
			vt_payload_free(pay);
		}
		if (rc == VT_ENOENT)
			rc = 0;
		vt_store_iter_close(it);
	}
	if (rc)
		goto out;
	for (size_t off = 0; off < ids.len && !rc;) {
		uint16_t n;
		memcpy(&n, ids.data + off, 2);
		rc = delete_one(a, ids.data + off + 2, n, 0);
		off += 2u + n;
	}
out:
	if (rc && !a->err->msg[0])
		vt_errmsg_set(a->err, rc, "delete by filter: %s", vt_strerror(rc));
	vt_filter_plan_free(&plan);
	vt_buf_free(&ids);
	return rc;
}

static int do_set_payload(struct apply_ctx *a)
{
	struct prep *p = a->p;
	int merge = p->cmd.flags & VT_CMD_MERGE;
	vt_buf merged;
	vt_buf_init(&merged, a->s->opts.limits.max_payload);
	int rc = 0;
	for (uint32_t i = 0; i < p->cmd.n && !rc; i++) {
		const vt_cmd_point *pt = &p->cmd.points[i];
		vt_store_point sp;
		vt_payload *old = NULL, *now = p->parsed[i];
		int own = 0;
		rc = vt_store_get_by_id(a->tx, pt->id, pt->id_len, &sp);
		if (rc == VT_ENOENT) {
			a->rejected = 1;
			rc = vt_errmsg_set(a->err, VT_ENOENT,
					   "points[%u]: no point with id "
					   "\"%.*s\"",
					   i, (int)(pt->id_len > 64 ? 64 : pt->id_len),
					   pt->id);
			break;
		}
		if (!rc && (a->s->pix || merge))
			rc = vt__shard_payload_of(&sp, &old, NULL);
		if (rc) {
			rc = txn_err(a, rc, "reading", i);
			break;
		}
		const void *bytes = p->canon.data + p->off[i];
		size_t len = p->len[i];
		if (merge) {
			rc = vt_payload_merge(old, p->parsed[i], &now);
			own = 1;
			vt_buf_reset(&merged);
			if (!rc)
				rc = vt_payload_dump(now, &merged);
			if (rc == VT_ELIMIT) {
				a->rejected = 1;
				rc = vt_errmsg_set(a->err, VT_ELIMIT,
						   "points[%u].payload: merged "
						   "payload passes %u bytes",
						   i,
						   a->s->opts.limits.max_payload);
			}
			bytes = merged.data;
			len = merged.len == 2 ? 0 : merged.len;
		}
		uint64_t label = sp.label;
		if (!rc)
			rc = vt_store_set_payload(a->tx, pt->id, pt->id_len,
						  bytes, len, &label);
		if (rc) {
			if (!a->err->msg[0])
				txn_err(a, rc, "writing", i);
			vt_payload_free(old);
			if (own)
				vt_payload_free(now);
			break;
		}
		a->res->updated++;
		if (a->s->pix)
			rc = push_op(a, label, old, now, own);
		else {
			vt_payload_free(old);
			if (own)
				vt_payload_free(now);
		}
	}
	vt_buf_free(&merged);
	return rc;
}

/* The write transaction of apply: the command's changes, the applied
 * index, commit. */
static int txn_section(struct apply_ctx *a)
{
	vt_shard *s = a->s;
	vt_errmsg *err = a->err;
	int rc = vt_store_txn_begin(s->st, &a->tx);
	if (rc)
		return vt_errmsg_set(err, rc, "%s", vt_store_errmsg(s->st));
	switch (a->p->cmd.type) {
	case VT_CMD_UPSERT:
		rc = do_upsert(a);
		break;
	case VT_CMD_DELETE_IDS:
		rc = do_delete_ids(a);
		break;
	case VT_CMD_DELETE_FILTER:
		rc = do_delete_filter(a);
		break;
	default:
		rc = do_set_payload(a);
		break;
	}
	if (!rc && (rc = vt_store_set_applied(a->tx, a->index)))
		vt_errmsg_set(err, rc, "recording index %llu: %s",
			      (unsigned long long)a->index,
			      vt_store_txn_errmsg(a->tx));
	if (rc) {
		vt_store_txn_abort(a->tx);
		return rc;
	}
	if ((rc = vt_store_txn_commit(a->tx)))
		return vt_errmsg_set(err, rc, "commit: %s",
				     vt_store_errmsg(s->st));
	return 0;
}

/* Records `index` as applied with nothing else: for a rejected command. */
static int record_applied(vt_shard *s, uint64_t index)
{
	vt_store_txn *tx;
	pthread_rwlock_rdlock(&s->gate);
	int rc = vt_store_txn_begin(s->st, &tx);
	if (!rc && (rc = vt_store_set_applied(tx, index)))
		vt_store_txn_abort(tx);
	else if (!rc)
		rc = vt_store_txn_commit(tx);
	pthread_rwlock_unlock(&s->gate);
	return rc;
}

static void apply_pix(vt_shard *s, struct apply_ctx *a)
{
	if (!s->pix || !a->nops)
		return;
	pthread_rwlock_wrlock(&s->pix_lock);
	for (size_t i = 0; i < a->nops; i++) {
		struct pix_op *o = &a->ops[i];
		int rc;
		if (o->old && o->now)
			rc = vt_payload_index_update(s->pix, o->label, o->old,
						     o->now);
		else if (o->old)
			rc = vt_payload_index_remove(s->pix, o->label, o->old);
		else
			rc = vt_payload_index_add(s->pix, o->label, o->now);
		if (rc)
			/* Out of memory half-way: the payload index no
			 * longer matches the store. Searches would be
			 * wrong, so say it loudly; reopening rebuilds it. */
			VT_LOG(VT_LOG_ERROR, "shard",
			       "%s: payload index update failed (%s); reopen "
			       "the shard to rebuild it",
			       s->name, vt_strerror(rc));
	}
	pthread_rwlock_unlock(&s->pix_lock);
}

/* Async mode: waits for room for `n` entries. VT_EOVERLOAD on time-out. */
static int wait_queue(vt_shard *s, uint64_t n, uint64_t *waiting)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec +
		      (uint64_t)s->opts.queue_wait_ms * 1000000u;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	while (s->pending && s->pending + n > s->opts.queue_max) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT &&
		    s->pending && s->pending + n > s->opts.queue_max) {
			rc = VT_EOVERLOAD;
			break;
		}
	}
	*waiting = s->pending;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int vt_shard_wait_room(vt_shard *s, uint64_t n)
{
	if (s->cfg.index_mode != VT_INDEX_ASYNC)
		return 0;
	uint64_t waiting;
	return wait_queue(s, n, &waiting);
}

int vt_shard_validate(vt_shard *s, const void *cmd, size_t len,
		      vt_errmsg *err)
{
	struct prep p;
	int rc = prepare(s, cmd, len, &p, err);
	prep_free(&p);
	return rc;
}

int vt_shard_apply(vt_shard *s, uint64_t index, const void *bytes, size_t len,
		   vt_shard_result *res_out, vt_errmsg *err)
{
	vt_shard_result rdummy;
	vt_errmsg edummy;
	vt_shard_result *res = res_out ? res_out : &rdummy;
	if (!err)
		err = &edummy;
	memset(res, 0, sizeof *res);
	vt_errmsg_clear(err);
	pthread_mutex_lock(&s->apply_mu);
	pthread_mutex_lock(&s->mu);
	uint64_t applied = s->applied;
	pthread_mutex_unlock(&s->mu);
	if (index == 0)
		index = applied + 1;
	res->index = index;
	if (index <= applied) {
		res->noop = 1;
		pthread_mutex_unlock(&s->apply_mu);
		return 0;
	}
	struct prep p;
	struct apply_ctx a = {.s = s, .p = &p, .index = index, .res = res,
			      .err = err};
	uint64_t waiting;
	int rc = prepare(s, bytes, len, &p, err);
	if (rc && rc != VT_ENOMEM) {
		a.rejected = 1;
		goto reject;
	}
	if (rc)
		goto out;
	if (s->cfg.index_mode == VT_INDEX_ASYNC && p.cmd.type != VT_CMD_SET_PAYLOAD &&
	    (rc = wait_queue(s, p.cmd.n, &waiting))) {
		vt_errmsg_set(err, rc,
			      "index queue full (%llu entries waiting, max "
			      "%llu) for %u ms",
			      (unsigned long long)waiting,
			      (unsigned long long)s->opts.queue_max,
			      s->opts.queue_wait_ms);
		goto out;
	}
	pthread_rwlock_rdlock(&s->gate);
	rc = txn_section(&a);
	pthread_rwlock_unlock(&s->gate);
	if (rc && a.rejected)
		goto reject;
	if (rc)
		goto out;
	apply_pix(s, &a);
	pthread_mutex_lock(&s->mu);
	s->applied = index;
	s->pending += a.wal;
	s->since_snap += a.wal;
	if (!a.wal && s->indexed == applied && !s->pending)
		s->indexed = index; /* nothing for the index to do */
	vt__shard_signal(s);
	pthread_mutex_unlock(&s->mu);
	if (s->cfg.index_mode == VT_INDEX_SYNC || !s->thread_started) {
		int irc = vt__shard_index_upto(s, index);
		if (irc)
			VT_LOG(VT_LOG_ERROR, "shard",
			       "%s: indexing command %llu failed (%s); the "
			       "write is stored and indexing will be retried",
			       s->name, (unsigned long long)index,
			       vt_strerror(irc));
	}
	goto out;
reject:
	/* Every replica rejects the same command the same way: nothing of
	 * it is stored, but its index is consumed. */
	res->upserted = res->created = res->deleted = res->missing = 0;
	res->updated = 0;
	{
		int wrc = record_applied(s, index);
		if (wrc) {
			vt_errmsg_set(err, wrc, "recording index %llu: %s",
				      (unsigned long long)index,
				      vt_store_errmsg(s->st));
			rc = wrc;
		} else {
			pthread_mutex_lock(&s->mu);
			s->applied = index;
			if (s->indexed == applied && !s->pending)
				s->indexed = index;
			vt__shard_signal(s);
			pthread_mutex_unlock(&s->mu);
		}
	}
out:
	ops_free(&a);
	prep_free(&p);
	pthread_mutex_unlock(&s->apply_mu);
	return rc;
}

/* ---- waiting, status, read-only --------------------------------------------*/

int vt_shard_wait_indexed(vt_shard *s, uint64_t index, uint32_t timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)timeout_ms * 1000000u;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	while (s->indexed < index) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT &&
		    s->indexed < index) {
			rc = VT_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int vt_shard_status_get(vt_shard *s, vt_shard_status *st)
{
	memset(st, 0, sizeof *st);
	vt_store_txn *tx;
	int rc = vt__rd_begin(s, &tx);
	if (rc)
		return rc;
	rc = vt_store_count(tx, &st->points, &st->wal_entries);
	vt__rd_end(s, tx);
	if (rc)
		return rc;
	vt_store_stats ss;
	pthread_rwlock_rdlock(&s->gate);
	rc = vt_store_stats_get(s->st, &ss);
	pthread_rwlock_unlock(&s->gate);
	if (rc)
		return rc;
	st->bytes_store = ss.file_bytes;
	st->readonly = ss.readonly;
	vt_hnsw_stats hs;
	vt_hnsw_stats_get(s->h, &hs);
	st->index_points = hs.count;
	st->bytes_index = hs.bytes_graph + hs.bytes_vectors + hs.bytes_codes +
			  hs.bytes_other;
	pthread_mutex_lock(&s->mu);
	st->applied = s->applied;
	st->indexed = s->indexed;
	st->lag = s->pending;
	st->snapshot_index = s->snap_index;
	st->bytes_snapshot = s->snap_bytes;
	pthread_mutex_unlock(&s->mu);
	st->index_mode = s->cfg.index_mode;
	return 0;
}

void vt_shard_progress(vt_shard *s, uint64_t *applied, uint64_t *indexed)
{
	pthread_mutex_lock(&s->mu);
	*applied = s->applied;
	*indexed = s->indexed;
	pthread_mutex_unlock(&s->mu);
}

int vt_shard_clear_readonly(vt_shard *s, size_t new_map_max, vt_errmsg *err)
{
	pthread_mutex_lock(&s->ckpt_mu);
	pthread_mutex_lock(&s->apply_mu);
	pthread_mutex_lock(&s->idx_mu);
	pthread_rwlock_wrlock(&s->gate);
	int rc = vt_store_clear_readonly(s->st, new_map_max, err);
	pthread_rwlock_unlock(&s->gate);
	pthread_mutex_unlock(&s->idx_mu);
	pthread_mutex_unlock(&s->apply_mu);
	pthread_mutex_unlock(&s->ckpt_mu);
	if (!rc)
		VT_LOG(VT_LOG_INFO, "shard", "%s: writes accepted again",
		       s->name);
	return rc;
}
