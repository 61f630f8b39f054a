/* coll.c: collections as sets of shards (coll.h): the catalog on disk,
 * routing of writes by id hash, fan-out and merge of reads. */
#include "coll.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/pool.h"

#define CONFIG_FILE "collection.json"

struct vt_coll {
	atomic_int refs;
	vt_db *db;
	vt_coll_config cfg;
	char *dir;       /* where it lives now (moves to the trash on drop) */
	vt_shard **shards;
	void **wh;       /* per shard: the writer's handle (NULL: none) */
	int dropped;
	/* remote: the filter schema, from the config (local: the shards') */
	vt_payload_field schema_fields[VT_SHARD_MAX_FIELDS];
	vt_payload_schema schema;
};

struct vt_db {
	char *dir;
	char *cdir;      /* dir/collections */
	vt_db_opts opts;
	vt_pool *pool;
	pthread_rwlock_t lock; /* the table below */
	pthread_mutex_t ddl;   /* one create/drop at a time */
	vt_coll **colls;       /* sorted by name */
	size_t n, cap;
	const vt_coll_remote *remote; /* NULL: the shards are here */
};

/* ---- shard access: here, or behind the remote back end ------------------------ */

static int sh_search(vt_coll *c, uint32_t i, const vt_shard_query *q,
		     int strong, vt_shard_results *out, vt_errmsg *err)
{
	const vt_coll_remote *r = c->db->remote;
	if (r)
		return r->search(r->ud, c->cfg.name, i, q, strong, out, err);
	return vt_shard_search(c->shards[i], q, out, err);
}

static int sh_get(vt_coll *c, uint32_t i, const char *const *ids,
		  const uint32_t *lens, size_t n, int wp, int wv,
		  vt_shard_results *out, vt_errmsg *err)
{
	const vt_coll_remote *r = c->db->remote;
	if (r)
		return r->get(r->ud, c->cfg.name, i, ids, lens, n, wp, wv, out,
			      err);
	return vt_shard_get(c->shards[i], ids, lens, n, wp, wv, out, err);
}

static int sh_scroll(vt_coll *c, uint32_t i, uint64_t from, uint32_t limit,
		     const vt_filter *f, int wp, int wv, vt_shard_results *out,
		     uint64_t *next, vt_errmsg *err)
{
	const vt_coll_remote *r = c->db->remote;
	if (r)
		return r->scroll(r->ud, c->cfg.name, i, from, limit, f, wp, wv,
				 out, next, err);
	return vt_shard_scroll(c->shards[i], from, limit, f, wp, wv, out, next,
			       err);
}

static int sh_count(vt_coll *c, uint32_t i, const vt_filter *f,
		    uint64_t *out, vt_errmsg *err)
{
	const vt_coll_remote *r = c->db->remote;
	if (r)
		return r->count(r->ud, c->cfg.name, i, f, out, err);
	return vt_shard_count(c->shards[i], f, out, err);
}

static void sh_results_free(const vt_db *db, vt_shard_results *res)
{
	if (db->remote)
		db->remote->results_free(db->remote->ud, res);
	else
		vt_shard_results_free(res);
}

/* ---- config ---------------------------------------------------------------- */

void vt_coll_config_default(vt_coll_config *c, const char *name, uint32_t dim,
			    int metric)
{
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name ? name : "");
	vt_shard_config_default(&c->shard, dim, metric);
	c->rescore = 1;
	c->oversampling = 2.0f;
	c->routing = VT_COLL_ROUTE_RANGE;
}

void vt_db_opts_default(vt_db_opts *o)
{
	memset(o, 0, sizeof *o);
	o->threads = vt_cpu_count();
	o->default_shards = vt_cpu_count();
	vt_shard_opts_default(&o->shard);
}

int vt_coll_name_check(const char *name, vt_errmsg *err)
{
	size_t n = strlen(name);
	if (n == 0 || n > VT_COLL_MAX_NAME)
		return vt_errmsg_set(err, VT_EINVAL,
				     "name: must be 1..%u bytes, got %zu",
				     VT_COLL_MAX_NAME, n);
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return vt_errmsg_set(err, VT_EINVAL,
					     "name: only letters, digits, '_' "
					     "and '-' are allowed");
	}
	if (name[0] == '-')
		return vt_errmsg_set(err, VT_EINVAL,
				     "name: must not start with '-'");
	return 0;
}

const char *vt_coll_distance_name(int metric)
{
	switch (metric) {
	case VT_METRIC_COSINE:
		return "cosine";
	case VT_METRIC_IP:
		return "dot";
	case VT_METRIC_L2:
		return "euclid";
	}
	return "?";
}

int vt_coll_distance_parse(const char *s)
{
	if (!strcmp(s, "cosine"))
		return VT_METRIC_COSINE;
	if (!strcmp(s, "dot") || !strcmp(s, "ip"))
		return VT_METRIC_IP;
	if (!strcmp(s, "euclid") || !strcmp(s, "euclidean") || !strcmp(s, "l2"))
		return VT_METRIC_L2;
	return -1;
}

static int config_write(const char *dir, const vt_coll_config *c,
			vt_errmsg *err)
{
	json_t *o = json_pack("{s:s, s:I, s:b, s:f, s:s}", "name", c->name,
			      "shard_count", (json_int_t)c->shard_count,
			      "rescore", c->rescore, "oversampling",
			      (double)c->oversampling, "routing",
			      c->routing == VT_COLL_ROUTE_MOD ? "mod" : "range");
	char *text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
	json_decref(o);
	if (!text)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", dir, CONFIG_FILE) >=
	    (int)sizeof path) {
		free(text);
		return vt_errmsg_set(err, VT_ELIMIT, "path too long");
	}
	vt_afile f;
	int rc = vt_afile_open(&f, path, err);
	if (!rc) {
		rc = vt_afile_write(&f, text, strlen(text));
		if (rc)
			vt_afile_abort(&f);
		else
			rc = vt_afile_commit(&f, err);
	}
	free(text);
	return rc;
}

static int config_read(const char *dir, vt_coll_config *c, vt_errmsg *err)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", dir, CONFIG_FILE) >=
	    (int)sizeof path)
		return vt_errmsg_set(err, VT_ELIMIT, "path too long");
	json_error_t je;
	json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return vt_errmsg_set(err, VT_ECORRUPT, "%s: %s", path, je.text);
	const char *name;
	json_int_t shards;
	int rescore;
	double over;
	const char *routing = "mod"; /* written before routing was recorded */
	int rc = 0;
	if (json_unpack_ex(o, &je, JSON_STRICT, "{s:s, s:I, s:b, s:F, s?s}",
			   "name", &name, "shard_count", &shards, "rescore",
			   &rescore, "oversampling", &over, "routing",
			   &routing) ||
	    shards < 1 || shards > VT_COLL_MAX_SHARDS ||
	    strlen(name) > VT_COLL_MAX_NAME ||
	    (strcmp(routing, "mod") && strcmp(routing, "range")))
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: bad contents", path);
	else {
		snprintf(c->name, sizeof c->name, "%s", name);
		c->shard_count = (uint32_t)shards;
		c->rescore = rescore;
		c->oversampling = (float)over;
		c->routing = strcmp(routing, "mod") ? VT_COLL_ROUTE_RANGE
						    : VT_COLL_ROUTE_MOD;
	}
	json_decref(o);
	return rc;
}

/* ---- opening collections ------------------------------------------------- */

static void coll_free(vt_coll *c)
{
	const vt_coll_writer *w = c->db->opts.writer;
	/* The write path stops before its shard closes and, on a drop,
	 * before the files go. */
	for (uint32_t i = 0; c->wh && i < c->cfg.shard_count; i++)
		if (c->wh[i])
			w->detach(w->ud, c->wh[i]);
	vt_free(c->wh);
	for (uint32_t i = 0; c->shards && i < c->cfg.shard_count; i++)
		vt_shard_close(c->shards[i]);
	vt_free(c->shards);
	if (c->dropped && c->dir && vt_rmtree(c->dir))
		VT_LOG(VT_LOG_WARN, "coll",
		       "could not remove %s; it is removed on the next start",
		       c->dir);
	vt_free(c->dir);
	vt_free(c);
}

struct open_job {
	vt_coll *c;
	const vt_shard_config *create;
	int *rcs;
	vt_errmsg *errs;
};

static void open_task(void *ctx, size_t i)
{
	struct open_job *j = ctx;
	vt_coll *c = j->c;
	char dir[4200], name[128];
	if (snprintf(dir, sizeof dir, "%s/shard-%zu", c->dir, i) >=
	    (int)sizeof dir) {
		j->rcs[i] = vt_errmsg_set(&j->errs[i], VT_ELIMIT,
					  "path too long");
		return;
	}
	snprintf(name, sizeof name, "%s/%zu", c->cfg.name, i);
	vt_shard_opts o = c->db->opts.shard;
	o.create = j->create;
	o.name = name;
	j->rcs[i] = vt_shard_open(dir, &o, &c->shards[i], &j->errs[i]);
}

/* Opens (or creates, with `create`) the shards of the collection in `dir`. */
static int coll_open(vt_db *db, const char *dir, const vt_coll_config *create,
		     vt_coll **out, vt_errmsg *err)
{
	vt_coll *c = vt_calloc(1, sizeof *c);
	int rc;
	if (!c)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	atomic_init(&c->refs, 1);
	c->db = db;
	c->dir = vt_strdup(dir);
	if (!c->dir) {
		coll_free(c);
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	}
	if (create)
		c->cfg = *create;
	else if ((rc = config_read(dir, &c->cfg, err))) {
		coll_free(c);
		return rc;
	}
	uint32_t n = c->cfg.shard_count;
	c->shards = vt_calloc(n, sizeof *c->shards);
	int *rcs = vt_calloc(n, sizeof *rcs);
	vt_errmsg *errs = vt_calloc(n, sizeof *errs);
	rc = c->shards && rcs && errs ? 0 : VT_ENOMEM;
	if (!rc) {
		struct open_job j = {c, create ? &create->shard : NULL, rcs, errs};
		vt_pool_run(db->pool, n, open_task, &j);
		for (uint32_t i = 0; i < n && !rc; i++)
			if ((rc = rcs[i]))
				vt_errmsg_set(err, rc, "collection %s: %s",
					      c->cfg.name, errs[i].msg);
	} else {
		vt_errmsg_set(err, rc, "out of memory");
	}
	vt_free(rcs);
	vt_free(errs);
	if (rc) {
		coll_free(c);
		return rc;
	}
	if (!create)
		/* The shards hold the authoritative shard config. */
		c->cfg.shard = *vt_shard_config_get(c->shards[0]);
	/* A collection being built aside (create) gets no write path: it is
	 * reopened from its final place. */
	const vt_coll_writer *w = db->opts.writer;
	if (w && !create) {
		if (!(c->wh = vt_calloc(n, sizeof *c->wh))) {
			coll_free(c);
			return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		}
		for (uint32_t i = 0; i < n; i++) {
			char sdir[4200];
			snprintf(sdir, sizeof sdir, "%s/shard-%u", c->dir, i);
			if ((rc = w->attach(w->ud, c->shards[i], sdir,
					    &c->wh[i], err))) {
				vt_errmsg_prefix(err, rc, "collection %s",
						 c->cfg.name);
				coll_free(c);
				return rc;
			}
		}
	}
	*out = c;
	return 0;
}

void vt_coll_release(vt_coll *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		coll_free(c);
}

static int name_cmp(const void *a, const void *b)
{
	const vt_coll *x = *(vt_coll *const *)a, *y = *(vt_coll *const *)b;
	return strcmp(x->cfg.name, y->cfg.name);
}

static int table_add(vt_db *db, vt_coll *c)
{
	if (db->n == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 16;
		vt_coll **n = vt_realloc(db->colls, cap * sizeof *n);
		if (!n)
			return VT_ENOMEM;
		db->colls = n;
		db->cap = cap;
	}
	db->colls[db->n++] = c;
	qsort(db->colls, db->n, sizeof *db->colls, name_cmp);
	return 0;
}

static ssize_t table_find(vt_db *db, const char *name)
{
	size_t lo = 0, hi = db->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(db->colls[mid]->cfg.name, name);
		if (r == 0)
			return (ssize_t)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void rm_rf(const char *path)
{
	int rc = vt_rmtree(path);
	if (rc)
		VT_LOG(VT_LOG_WARN, "coll", "could not remove %s: %s", path,
		       vt_strerror(rc));
}

/* A database with its options' defaults filled in, no pool yet. */
static vt_db *db_new(const vt_db_opts *o)
{
	vt_db_opts dopts;
	if (!o) {
		vt_db_opts_default(&dopts);
		o = &dopts;
	}
	vt_db *db = vt_calloc(1, sizeof *db);
	if (!db)
		return NULL;
	pthread_rwlock_init(&db->lock, NULL);
	pthread_mutex_init(&db->ddl, NULL);
	db->opts = *o;
	db->opts.shard.create = NULL;
	if (!db->opts.threads)
		db->opts.threads = vt_cpu_count();
	if (!db->opts.default_shards)
		db->opts.default_shards = vt_cpu_count();
	return db;
}

int vt_db_open(const char *dir, const vt_db_opts *o, vt_db **out,
	       vt_errmsg *err)
{
	*out = NULL;
	vt_db *db = db_new(o);
	if (!db)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	db->dir = vt_strdup(dir);
	char cdir[4200];
	if (snprintf(cdir, sizeof cdir, "%s/collections", dir) >=
	    (int)sizeof cdir) {
		vt_db_close(db);
		return vt_errmsg_set(err, VT_ELIMIT, "%s: path too long", dir);
	}
	db->cdir = vt_strdup(cdir);
	int rc = 0;
	if (!db->dir || !db->cdir) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto fail;
	}
	if ((mkdir(dir, 0755) && errno != EEXIST) ||
	    (mkdir(cdir, 0755) && errno != EEXIST)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "mkdir %s: %s",
				   cdir, strerror(errno));
		goto fail;
	}
	if ((rc = vt_pool_create(db->opts.threads - 1, &db->pool))) {
		vt_errmsg_set(err, rc, "starting threads");
		goto fail;
	}
	DIR *d = opendir(cdir);
	if (!d) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "opendir %s: %s",
				   cdir, strerror(errno));
		goto fail;
	}
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		char path[4400];
		if (de->d_name[0] == '.' && (!de->d_name[1] ||
					     (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", cdir, de->d_name) >=
		    (int)sizeof path)
			continue;
		if (de->d_name[0] == '.') {
			/* .tmp-* (an interrupted create), .trash-* (a drop) */
			VT_LOG(VT_LOG_INFO, "coll", "removing leftover %s", path);
			rm_rf(path);
			continue;
		}
		vt_coll *c;
		if ((rc = coll_open(db, path, NULL, &c, err)))
			break;
		if (strcmp(c->cfg.name, de->d_name)) {
			rc = vt_errmsg_set(err, VT_ECORRUPT,
					   "%s holds collection \"%s\"", path,
					   c->cfg.name);
			vt_coll_release(c);
			break;
		}
		if ((rc = table_add(db, c))) {
			vt_coll_release(c);
			vt_errmsg_set(err, rc, "out of memory");
		}
	}
	closedir(d);
	if (rc)
		goto fail;
	VT_LOG(VT_LOG_INFO, "coll", "%s: %zu collections open", dir, db->n);
	*out = db;
	return 0;
fail:
	vt_db_close(db);
	return rc;
}

int vt_db_open_remote(const vt_coll_remote *r, const vt_db_opts *o,
		      vt_db **out, vt_errmsg *err)
{
	*out = NULL;
	vt_db *db = db_new(o);
	if (!db)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	db->opts.writer = NULL;
	db->remote = r;
	int rc = vt_pool_create(db->opts.threads - 1, &db->pool);
	if (rc) {
		vt_db_close(db);
		return vt_errmsg_set(err, rc, "starting threads");
	}
	*out = db;
	return 0;
}

void vt_db_close(vt_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++)
		vt_coll_release(db->colls[i]);
	vt_free(db->colls);
	vt_pool_destroy(db->pool);
	pthread_rwlock_destroy(&db->lock);
	pthread_mutex_destroy(&db->ddl);
	vt_free(db->dir);
	vt_free(db->cdir);
	vt_free(db);
}

int vt_db_checkpoint(vt_db *db, vt_errmsg *err)
{
	if (db->remote)
		return 0; /* the workers keep their own shards */
	vt_coll **all;
	size_t n;
	int rc = vt_db_list(db, &all, &n), first = 0;
	if (rc)
		return vt_errmsg_set(err, rc, "out of memory");
	for (size_t i = 0; i < n; i++) {
		for (uint32_t s = 0; s < all[i]->cfg.shard_count; s++) {
			vt_errmsg e = {{0}};
			rc = vt_shard_checkpoint(all[i]->shards[s], &e);
			if (rc && !first)
				first = vt_errmsg_set(err, rc, "%s/%u: %s",
						      all[i]->cfg.name, s, e.msg);
		}
		vt_coll_release(all[i]);
	}
	vt_free(all);
	return first;
}

int vt_db_create(vt_db *db, const vt_coll_config *in, vt_errmsg *err)
{
	vt_coll_config cfg = *in;
	int rc;
	if ((rc = vt_coll_name_check(cfg.name, err)))
		return rc;
	if (!cfg.shard_count)
		cfg.shard_count = db->opts.default_shards;
	if (cfg.shard_count > VT_COLL_MAX_SHARDS)
		return vt_errmsg_set(err, VT_EINVAL, "shard_count: %u (1..%u)",
				     cfg.shard_count, VT_COLL_MAX_SHARDS);
	if (!(cfg.oversampling >= 1.0f) || cfg.oversampling > 100.0f)
		return vt_errmsg_set(err, VT_EINVAL,
				     "quantization.oversampling: %g (1..100)",
				     (double)cfg.oversampling);
	if ((rc = vt_shard_config_check(&cfg.shard, err)))
		return rc;
	if (db->remote) {
		if (!cfg.routing)
			cfg.routing = VT_COLL_ROUTE_RANGE;
		return db->remote->create(db->remote->ud, &cfg, err);
	}
	pthread_mutex_lock(&db->ddl);
	pthread_rwlock_rdlock(&db->lock);
	ssize_t at = table_find(db, cfg.name);
	pthread_rwlock_unlock(&db->lock);
	char tmp[4400], final[4400];
	vt_coll *c = NULL;
	if (at >= 0) {
		rc = vt_errmsg_set(err, VT_EEXIST,
				   "collection \"%s\" already exists", cfg.name);
		goto out;
	}
	uint64_t r = 0;
	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (uint64_t)getpid();
	if (snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%016llx", db->cdir, cfg.name,
		     (unsigned long long)r) >= (int)sizeof tmp ||
	    snprintf(final, sizeof final, "%s/%s", db->cdir, cfg.name) >=
		    (int)sizeof final) {
		rc = vt_errmsg_set(err, VT_ELIMIT, "path too long");
		goto out;
	}
	if (mkdir(tmp, 0755)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "mkdir %s: %s",
				   tmp, strerror(errno));
		goto out;
	}
	/* Build it aside, then rename: a crash leaves it whole or absent. */
	if ((rc = config_write(tmp, &cfg, err)) ||
	    (rc = coll_open(db, tmp, &cfg, &c, err)))
		goto undo;
	vt_coll_release(c); /* closed: its paths are about to change */
	c = NULL;
	if (rename(tmp, final)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno),
				   "rename %s: %s", tmp, strerror(errno));
		goto undo;
	}
	vt_fsync_dir(db->cdir);
	if ((rc = coll_open(db, final, NULL, &c, err)))
		goto out;
	pthread_rwlock_wrlock(&db->lock);
	rc = table_add(db, c);
	pthread_rwlock_unlock(&db->lock);
	if (rc) {
		vt_coll_release(c);
		vt_errmsg_set(err, rc, "out of memory");
	} else {
		VT_LOG(VT_LOG_INFO, "coll",
		       "created collection %s: dim %u, %s, %u shards, %s index",
		       cfg.name, cfg.shard.dim,
		       vt_coll_distance_name(cfg.shard.metric), cfg.shard_count,
		       cfg.shard.index_mode == VT_INDEX_ASYNC ? "async" : "sync");
	}
	goto out;
undo:
	rm_rf(tmp);
out:
	pthread_mutex_unlock(&db->ddl);
	return rc;
}

static void table_remove(vt_db *db, const char *name)
{
	pthread_rwlock_wrlock(&db->lock);
	ssize_t at = table_find(db, name);
	vt_coll *c = NULL;
	if (at >= 0) {
		c = db->colls[at];
		memmove(&db->colls[at], &db->colls[at + 1],
			(db->n - (size_t)at - 1) * sizeof *db->colls);
		db->n--;
	}
	pthread_rwlock_unlock(&db->lock);
	vt_coll_release(c);
}

int vt_db_drop(vt_db *db, const char *name, vt_errmsg *err)
{
	if (db->remote) {
		int rc = db->remote->drop(db->remote->ud, name, err);
		table_remove(db, name);
		return rc;
	}
	pthread_mutex_lock(&db->ddl);
	pthread_rwlock_wrlock(&db->lock);
	ssize_t at = table_find(db, name);
	vt_coll *c = NULL;
	if (at >= 0) {
		c = db->colls[at];
		memmove(&db->colls[at], &db->colls[at + 1],
			(db->n - (size_t)at - 1) * sizeof *db->colls);
		db->n--;
	}
	pthread_rwlock_unlock(&db->lock);
	int rc = 0;
	if (!c) {
		rc = vt_errmsg_set(err, VT_ENOENT, "collection \"%s\" not found",
				   name);
		goto out;
	}
	/* Out of the catalog at once; the files go when the last user
	 * releases it (the shards are open until then). */
	char trash[4400];
	int tn = snprintf(trash, sizeof trash, "%s/.trash-%s-%llu", db->cdir,
			  name,
			  (unsigned long long)vt_hash64(&c, sizeof c,
							(uint64_t)getpid()));
	if (tn < (int)sizeof trash && rename(c->dir, trash) == 0) {
		vt_free(c->dir);
		c->dir = vt_strdup(trash);
		vt_fsync_dir(db->cdir);
	} else {
		VT_LOG(VT_LOG_WARN, "coll", "rename %s: %s", c->dir,
		       strerror(errno));
	}
	c->dropped = 1;
	VT_LOG(VT_LOG_INFO, "coll", "dropped collection %s", name);
	vt_coll_release(c);
out:
	pthread_mutex_unlock(&db->ddl);
	return rc;
}

/* A remote collection as the back end describes it now: the cached one
 * while its config is the same, else a new one in its place. */
static int remote_get(vt_db *db, const char *name, vt_coll **out)
{
	vt_coll_config cfg;
	vt_errmsg e;
	memset(&cfg, 0, sizeof cfg);
	int rc = db->remote->lookup(db->remote->ud, name, &cfg, &e);
	if (rc == VT_ENOENT)
		table_remove(db, name);
	if (rc)
		return rc;
	/* the usual case, shared: the cached collection is still current */
	pthread_rwlock_rdlock(&db->lock);
	ssize_t at = table_find(db, name);
	vt_coll *c = at >= 0 ? db->colls[at] : NULL;
	if (c && !memcmp(&c->cfg, &cfg, sizeof cfg)) {
		atomic_fetch_add(&c->refs, 1);
		pthread_rwlock_unlock(&db->lock);
		*out = c;
		return 0;
	}
	pthread_rwlock_unlock(&db->lock);
	pthread_rwlock_wrlock(&db->lock);
	at = table_find(db, name);
	c = at >= 0 ? db->colls[at] : NULL;
	if (c && memcmp(&c->cfg, &cfg, sizeof cfg)) {
		/* recreated elsewhere with another config */
		memmove(&db->colls[at], &db->colls[at + 1],
			(db->n - (size_t)at - 1) * sizeof *db->colls);
		db->n--;
		vt_coll_release(c);
		c = NULL;
	}
	if (!c && (c = vt_calloc(1, sizeof *c))) {
		atomic_init(&c->refs, 1);
		c->db = db;
		c->cfg = cfg;
		for (uint32_t i = 0; i < cfg.shard.n_fields; i++) {
			c->schema_fields[i].path = c->cfg.shard.fields[i].path;
			c->schema_fields[i].type = c->cfg.shard.fields[i].type;
		}
		c->schema.fields = c->schema_fields;
		c->schema.n = cfg.shard.n_fields;
		if (table_add(db, c)) {
			vt_free(c);
			c = NULL;
		}
	}
	if (c)
		atomic_fetch_add(&c->refs, 1);
	pthread_rwlock_unlock(&db->lock);
	*out = c;
	return c ? 0 : VT_ENOMEM;
}

int vt_db_get(vt_db *db, const char *name, vt_coll **out)
{
	if (db->remote)
		return remote_get(db, name, out);
	pthread_rwlock_rdlock(&db->lock);
	ssize_t at = table_find(db, name);
	if (at >= 0) {
		*out = db->colls[at];
		atomic_fetch_add(&(*out)->refs, 1);
	}
	pthread_rwlock_unlock(&db->lock);
	return at >= 0 ? 0 : VT_ENOENT;
}

static int remote_list(vt_db *db, vt_coll ***out, size_t *n)
{
	char **names = NULL;
	size_t k = 0, m = 0;
	vt_errmsg e;
	int rc = db->remote->list(db->remote->ud, &names, &k, &e);
	vt_coll **arr = rc ? NULL : vt_malloc((k ? k : 1) * sizeof *arr);
	if (!rc && !arr)
		rc = VT_ENOMEM;
	for (size_t i = 0; !rc && i < k; i++) {
		int r = remote_get(db, names[i], &arr[m]);
		if (!r)
			m++;
		else if (r != VT_ENOENT) /* dropped meanwhile: skip it */
			rc = r;
	}
	for (size_t i = 0; i < k; i++)
		vt_free(names[i]);
	vt_free(names);
	if (rc) {
		while (m)
			vt_coll_release(arr[--m]);
		vt_free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = m;
	return rc;
}

int vt_db_list(vt_db *db, vt_coll ***out, size_t *n)
{
	if (db->remote)
		return remote_list(db, out, n);
	pthread_rwlock_rdlock(&db->lock);
	vt_coll **arr = vt_malloc((db->n ? db->n : 1) * sizeof *arr);
	if (arr) {
		for (size_t i = 0; i < db->n; i++) {
			arr[i] = db->colls[i];
			atomic_fetch_add(&arr[i]->refs, 1);
		}
		*n = db->n;
	}
	pthread_rwlock_unlock(&db->lock);
	*out = arr;
	return arr ? 0 : VT_ENOMEM;
}

const vt_coll_config *vt_coll_config_get(const vt_coll *c)
{
	return &c->cfg;
}

const vt_payload_schema *vt_coll_schema(const vt_coll *c)
{
	return c->db->remote ? &c->schema : vt_shard_schema(c->shards[0]);
}

int vt_coll_status_get(vt_coll *c, vt_coll_status *st)
{
	memset(st, 0, sizeof *st);
	uint32_t n = c->cfg.shard_count;
	st->shards = vt_calloc(n, sizeof *st->shards);
	if (!st->shards)
		return VT_ENOMEM;
	st->n_shards = n;
	for (uint32_t i = 0; i < n; i++) {
		vt_shard_status *s = &st->shards[i];
		const vt_coll_remote *r = c->db->remote;
		vt_errmsg e;
		int rc = r ? r->status(r->ud, c->cfg.name, i, s, &e)
			   : vt_shard_status_get(c->shards[i], s);
		if (rc) {
			vt_free(st->shards);
			st->shards = NULL;
			return rc;
		}
		st->points += s->points;
		st->indexed_points += s->index_points;
		st->index_lag += s->lag;
		st->memory_bytes += s->bytes_index;
		st->disk_bytes += s->bytes_store + s->bytes_snapshot;
		st->readonly |= s->readonly;
	}
	return 0;
}

/* ---- writes ------------------------------------------------------------------ */

static uint32_t shard_of(const vt_coll *c, const void *id, size_t len)
{
	uint64_t h = vt_hash64(id, len, 0);
	return c->cfg.routing == VT_COLL_ROUTE_MOD
		       ? (uint32_t)(h % c->cfg.shard_count)
		       : vt_hash_range(h, c->cfg.shard_count);
}

/* Per-shard parts of a write. */
struct parts {
	vt_coll *c;
	vt_buf *cmd;        /* per shard: the encoded command (len 0: none) */
	uint32_t *count;    /* per shard: entries */
	uint32_t **map;     /* per shard: entry -> request index */
	vt_shard_result *res;
	int *rcs;
	vt_errmsg *errs;
	int validate;       /* the task validates instead of applying */
};

static void parts_free(struct parts *p)
{
	uint32_t n = p->c->cfg.shard_count;
	for (uint32_t i = 0; p->cmd && i < n; i++)
		vt_buf_free(&p->cmd[i]);
	for (uint32_t i = 0; p->map && i < n; i++)
		vt_free(p->map[i]);
	vt_free(p->cmd);
	vt_free(p->count);
	vt_free(p->map);
	vt_free(p->res);
	vt_free(p->rcs);
	vt_free(p->errs);
}

static int parts_init(struct parts *p, vt_coll *c)
{
	uint32_t n = c->cfg.shard_count;
	memset(p, 0, sizeof *p);
	p->c = c;
	p->cmd = vt_calloc(n, sizeof *p->cmd);
	p->count = vt_calloc(n, sizeof *p->count);
	p->map = vt_calloc(n, sizeof *p->map);
	p->res = vt_calloc(n, sizeof *p->res);
	p->rcs = vt_calloc(n, sizeof *p->rcs);
	p->errs = vt_calloc(n, sizeof *p->errs);
	if (!p->cmd || !p->count || !p->map || !p->res || !p->rcs || !p->errs)
		return VT_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		vt_buf_init(&p->cmd[i], (size_t)1 << 31);
	return 0;
}

static void part_task(void *ctx, size_t i)
{
	struct parts *p = ctx;
	if (!p->cmd[i].len)
		return;
	const vt_coll_remote *r = p->c->db->remote;
	if (r) {
		p->rcs[i] = r->write(r->ud, p->c->cfg.name, (uint32_t)i,
				     p->cmd[i].data, p->cmd[i].len, p->count[i],
				     p->validate, &p->res[i], &p->errs[i]);
		return;
	}
	vt_shard *s = p->c->shards[i];
	const vt_coll_writer *w = p->c->db->opts.writer;
	if (p->validate)
		p->rcs[i] = vt_shard_validate(s, p->cmd[i].data, p->cmd[i].len,
					      &p->errs[i]);
	else if (w && p->c->wh && p->c->wh[i] &&
		 (p->rcs[i] = vt_shard_wait_room(s, p->count[i] ? p->count[i]
								 : 1)))
		/* checked before the command enters a log, where it could no
		 * longer be refused */
		vt_errmsg_set(&p->errs[i], p->rcs[i],
			      "index queue full for %u ms: retry later",
			      p->c->db->opts.shard.queue_wait_ms);
	else if (w && p->c->wh && p->c->wh[i])
		p->rcs[i] = w->apply(w->ud, p->c->wh[i], p->cmd[i].data,
				     p->cmd[i].len, &p->res[i], &p->errs[i]);
	else
		p->rcs[i] = vt_shard_apply(s, 0, p->cmd[i].data, p->cmd[i].len,
					   &p->res[i], &p->errs[i]);
}

/* The first shard error, its "points[j]" rewritten to the request's index. */
static int parts_error(struct parts *p, vt_errmsg *err)
{
	for (uint32_t i = 0; i < p->c->cfg.shard_count; i++) {
		if (!p->rcs[i])
			continue;
		const char *m = p->errs[i].msg;
		unsigned j;
		int used = 0;
		if (p->map[i] && sscanf(m, "points[%u]%n", &j, &used) == 1 &&
		    used > 0 && j < p->count[i])
			return vt_errmsg_set(err, p->rcs[i], "points[%u]%s",
					     p->map[i][j], m + used);
		if (p->c->cfg.shard_count == 1)
			return vt_errmsg_set(err, p->rcs[i], "%s", m);
		return vt_errmsg_set(err, p->rcs[i], "shard %u: %s", i, m);
	}
	return 0;
}

/* Validates every part first when there are several (so bad input changes
 * nothing anywhere), or when a writer logs commands (a rejected command
 * would still be logged), then applies them in parallel. */
static int parts_run(struct parts *p, vt_coll_write_result *res,
		     vt_errmsg *err)
{
	uint32_t n = p->c->cfg.shard_count, used = 0;
	for (uint32_t i = 0; i < n; i++)
		used += p->cmd[i].len != 0;
	int rc;
	if (used > 1 || (p->c->db->opts.writer && !p->c->db->remote)) {
		p->validate = 1;
		vt_pool_run(p->c->db->pool, n, part_task, p);
		if ((rc = parts_error(p, err)))
			return rc;
		p->validate = 0;
	}
	vt_pool_run(p->c->db->pool, n, part_task, p);
	for (uint32_t i = 0; i < n; i++) {
		res->upserted += p->res[i].upserted;
		res->created += p->res[i].created;
		res->deleted += p->res[i].deleted;
		res->updated += p->res[i].updated;
	}
	return parts_error(p, err);
}

/* Groups request entries by shard: map[s][k] = request index. */
static int group(struct parts *p, const char *const *ids, const size_t *lens,
		 const vt_coll_point *pts, size_t n)
{
	uint32_t ns = p->c->cfg.shard_count;
	uint32_t *sh = vt_malloc((n ? n : 1) * sizeof *sh);
	if (!sh)
		return VT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sh[i] = pts ? shard_of(p->c, pts[i].id, pts[i].id_len)
			    : shard_of(p->c, ids[i], lens[i]);
		p->count[sh[i]]++;
	}
	int rc = 0;
	for (uint32_t s = 0; s < ns && !rc; s++)
		if (p->count[s] &&
		    !(p->map[s] = vt_malloc(p->count[s] * sizeof **p->map)))
			rc = VT_ENOMEM;
	uint32_t *fill = vt_calloc(ns, sizeof *fill);
	if (!fill)
		rc = VT_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++)
		p->map[sh[i]][fill[sh[i]]++] = (uint32_t)i;
	vt_free(fill);
	vt_free(sh);
	return rc;
}

/* Runs the encoded parts (or reports `rc`, an encoding error) and frees
 * them. */
static int run_parts(struct parts *p, int rc, vt_coll_write_result *res,
		     vt_errmsg *err)
{
	if (rc)
		vt_errmsg_set(err, rc, "encoding: %s", vt_strerror(rc));
	else
		rc = parts_run(p, res, err);
	parts_free(p);
	return rc;
}

static int check_count(size_t n, const char *what, vt_errmsg *err)
{
	if (n == 0)
		return vt_errmsg_set(err, VT_EINVAL, "%s: empty", what);
	if (n > VT_COLL_MAX_POINTS)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "%s: %zu entries (max %u per request)", what,
				     n, VT_COLL_MAX_POINTS);
	return 0;
}

int vt_coll_upsert(vt_coll *c, const vt_coll_point *pts, size_t n,
		   vt_coll_write_result *res, vt_errmsg *err)
{
	memset(res, 0, sizeof *res);
	int rc = check_count(n, "points", err);
	if (rc)
		return rc;
	uint32_t dim = c->cfg.shard.dim;
	for (size_t i = 0; i < n; i++) {
		if (pts[i].id_len == 0 || pts[i].id_len > 256)
			return vt_errmsg_set(err, VT_EINVAL,
					     "points[%zu].id: must be 1..256 "
					     "bytes",
					     i);
		if (!pts[i].vec)
			return vt_errmsg_set(err, VT_EINVAL,
					     "points[%zu].vector: missing", i);
	}
	struct parts p;
	if ((rc = parts_init(&p, c)) || (rc = group(&p, NULL, NULL, pts, n))) {
		parts_free(&p);
		return vt_errmsg_set(err, rc, "out of memory");
	}
	for (uint32_t s = 0; s < c->cfg.shard_count && !rc; s++) {
		if (!p.count[s])
			continue;
		vt_buf *b = &p.cmd[s];
		rc = vt_cmd_enc_begin(b, VT_CMD_UPSERT, 0, dim);
		for (uint32_t k = 0; k < p.count[s] && !rc; k++) {
			const vt_coll_point *pt = &pts[p.map[s][k]];
			rc = vt_cmd_enc_upsert(b, pt->id, pt->id_len, pt->vec,
					       dim, pt->payload,
					       pt->payload ? pt->payload_len : 0);
		}
		if (!rc)
			rc = vt_cmd_enc_end(b, p.count[s]);
	}
	return run_parts(&p, rc, res, err);
}

static int id_parts(vt_coll *c, struct parts *p, int type, uint32_t flags,
		    const char *const *ids, const size_t *lens, size_t n,
		    const char *payload, size_t plen)
{
	int rc = parts_init(p, c);
	if (!rc)
		rc = group(p, ids, lens, NULL, n);
	for (uint32_t s = 0; s < c->cfg.shard_count && !rc; s++) {
		if (!p->count[s])
			continue;
		vt_buf *b = &p->cmd[s];
		rc = vt_cmd_enc_begin(b, type, flags, 0);
		for (uint32_t k = 0; k < p->count[s] && !rc; k++) {
			uint32_t i = p->map[s][k];
			rc = type == VT_CMD_SET_PAYLOAD
				     ? vt_cmd_enc_payload(b, ids[i], lens[i],
							  payload, plen)
				     : vt_cmd_enc_id(b, ids[i], lens[i]);
		}
		if (!rc)
			rc = vt_cmd_enc_end(b, p->count[s]);
	}
	return rc;
}

static int check_ids(const char *const *ids, const size_t *lens, size_t n,
		     vt_errmsg *err)
{
	int rc = check_count(n, "ids", err);
	for (size_t i = 0; i < n && !rc; i++)
		if (!ids[i] || lens[i] == 0 || lens[i] > 256)
			rc = vt_errmsg_set(err, VT_EINVAL,
					   "ids[%zu]: must be 1..256 bytes", i);
	return rc;
}

int vt_coll_delete_ids(vt_coll *c, const char *const *ids, const size_t *lens,
		       size_t n, vt_coll_write_result *res, vt_errmsg *err)
{
	memset(res, 0, sizeof *res);
	int rc = check_ids(ids, lens, n, err);
	if (rc)
		return rc;
	struct parts p;
	rc = id_parts(c, &p, VT_CMD_DELETE_IDS, 0, ids, lens, n, NULL, 0);
	return run_parts(&p, rc, res, err);
}

int vt_coll_delete_filter(vt_coll *c, const char *filter, size_t len,
			  vt_coll_write_result *res, vt_errmsg *err)
{
	memset(res, 0, sizeof *res);
	vt_filter *f = NULL;
	int rc = vt_coll_filter_parse(c, filter, len, &f, err);
	vt_filter_free(f);
	if (rc)
		return rc;
	if (!f)
		return vt_errmsg_set(err, VT_EINVAL, "filter: empty");
	struct parts p;
	rc = parts_init(&p, c);
	for (uint32_t s = 0; s < c->cfg.shard_count && !rc; s++) {
		vt_buf *b = &p.cmd[s];
		if (!(rc = vt_cmd_enc_begin(b, VT_CMD_DELETE_FILTER, 0, 0)) &&
		    !(rc = vt_cmd_enc_filter(b, filter, len)))
			rc = vt_cmd_enc_end(b, 0);
	}
	return run_parts(&p, rc, res, err);
}

int vt_coll_set_payload(vt_coll *c, const char *const *ids, const size_t *lens,
			size_t n, const char *payload, size_t len, int merge,
			vt_coll_write_result *res, vt_errmsg *err)
{
	memset(res, 0, sizeof *res);
	int rc = check_ids(ids, lens, n, err);
	if (rc)
		return rc;
	/* Every id must exist: checked up front so no shard applies its
	 * part when another would refuse (a concurrent delete can still
	 * race; that shard then reports its id). */
	vt_coll_results got;
	if ((rc = vt_coll_get(c, ids, lens, n, 0, 0, &got, err)))
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k < got.n && got.hits[k].id_len == lens[i] &&
		    !memcmp(got.hits[k].id, ids[i], lens[i])) {
			k++;
			continue;
		}
		vt_coll_results_free(&got);
		return vt_errmsg_set(err, VT_ENOENT,
				     "ids[%zu]: no point with id \"%.*s\"", i,
				     (int)(lens[i] > 64 ? 64 : lens[i]), ids[i]);
	}
	vt_coll_results_free(&got);
	struct parts p;
	rc = id_parts(c, &p, VT_CMD_SET_PAYLOAD, merge ? VT_CMD_MERGE : 0, ids,
		      lens, n, payload, len);
	rc = run_parts(&p, rc, res, err);
	if (rc && strncmp(err->msg, "points[", 7) == 0)
		/* set_payload entries are ids, say so */
		vt_errmsg_prefix(err, rc, "payload");
	return rc;
}

/* ---- reads ------------------------------------------------------------------- */

struct results_priv {
	const vt_db *db;
	vt_shard_results *parts;
	uint32_t n;
};

void vt_coll_results_free(vt_coll_results *r)
{
	if (!r)
		return;
	struct results_priv *p = r->priv_;
	if (p) {
		for (uint32_t i = 0; i < p->n; i++)
			sh_results_free(p->db, &p->parts[i]);
		vt_free(p->parts);
		vt_free(p);
	}
	vt_free(r->hits);
	vt_free(r->missing);
	memset(r, 0, sizeof *r);
}

static int results_init(vt_coll_results *r, const vt_coll *c)
{
	uint32_t nparts = c->cfg.shard_count;
	memset(r, 0, sizeof *r);
	struct results_priv *p = vt_calloc(1, sizeof *p);
	if (!p)
		return VT_ENOMEM;
	p->parts = vt_calloc(nparts, sizeof *p->parts);
	if (!p->parts) {
		vt_free(p);
		return VT_ENOMEM;
	}
	p->n = nparts;
	p->db = c->db;
	r->priv_ = p;
	return 0;
}

struct get_job {
	vt_coll *c;
	struct parts *p;
	const char *const *ids;
	const size_t *lens;
	int with_payload, with_vector;
	vt_shard_results *out;
};

static void get_task(void *ctx, size_t s)
{
	struct get_job *j = ctx;
	uint32_t n = j->p->count[s];
	if (!n)
		return;
	const char **ids = vt_malloc(n * sizeof *ids);
	uint32_t *lens = vt_malloc(n * sizeof *lens);
	if (!ids || !lens) {
		j->p->rcs[s] = vt_errmsg_set(&j->p->errs[s], VT_ENOMEM,
					     "out of memory");
	} else {
		for (uint32_t k = 0; k < n; k++) {
			ids[k] = j->ids[j->p->map[s][k]];
			lens[k] = (uint32_t)j->lens[j->p->map[s][k]];
		}
		j->p->rcs[s] = sh_get(j->c, (uint32_t)s, ids, lens, n,
				      j->with_payload, j->with_vector,
				      &j->out[s], &j->p->errs[s]);
	}
	vt_free(ids);
	vt_free(lens);
}

int vt_coll_get(vt_coll *c, const char *const *ids, const size_t *lens,
		size_t n, int with_payload, int with_vector,
		vt_coll_results *out, vt_errmsg *err)
{
	int rc = results_init(out, c);
	if (rc)
		return vt_errmsg_set(err, rc, "out of memory");
	if ((rc = check_ids(ids, lens, n, err)))
		return rc;
	struct parts p;
	struct results_priv *rp = out->priv_;
	if ((rc = parts_init(&p, c)) || (rc = group(&p, ids, lens, NULL, n))) {
		parts_free(&p);
		return vt_errmsg_set(err, rc, "out of memory");
	}
	struct get_job j = {c, &p, ids, lens, with_payload, with_vector,
			    rp->parts};
	vt_pool_run(c->db->pool, c->cfg.shard_count, get_task, &j);
	if ((rc = parts_error(&p, err)))
		goto out;
	out->hits = vt_malloc(n * sizeof *out->hits);
	size_t *next = vt_calloc(c->cfg.shard_count, sizeof *next);
	if (!out->hits || !next) {
		vt_free(next);
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	/* Shards return what they found in the order asked: walk the
	 * request and take each shard's next hit when it is this id. */
	for (size_t i = 0; i < n; i++) {
		uint32_t s = shard_of(c, ids[i], lens[i]);
		vt_shard_results *sr = &rp->parts[s];
		if (next[s] < sr->n && sr->hits[next[s]].id_len == lens[i] &&
		    !memcmp(sr->hits[next[s]].id, ids[i], lens[i]))
			out->hits[out->n++] = sr->hits[next[s]++];
	}
	vt_free(next);
out:
	parts_free(&p);
	return rc;
}

int vt_coll_filter_parse(vt_coll *c, const char *json, size_t len,
			 vt_filter **out, vt_errmsg *err)
{
	*out = NULL;
	if (!json || len == 0)
		return 0;
	int rc = vt_filter_parse(json, len, vt_coll_schema(c), out, err);
	if (rc && strncmp(err->msg, "filter", 6) != 0)
		vt_errmsg_prefix(err, rc, "filter");
	return rc;
}

void vt_coll_query_default(vt_coll_query *q, const float *vec, uint32_t k)
{
	memset(q, 0, sizeof *q);
	q->vec = vec;
	q->k = k;
	q->rescore = -1;
	q->with_payload = 1;
	q->wait_ms = 1000;
}

struct search_job {
	vt_coll *c;
	vt_shard_query sq[1]; /* template; min_index set per shard */
	uint64_t *min_index;
	vt_shard_results *parts;
	int *rcs;
	vt_errmsg *errs;
	/* streaming */
	vt_coll_partial_fn partial;
	void *ud;
	pthread_mutex_t mu;
	uint32_t done;
	int *finished;
	vt_shard_hit *scratch;
	uint32_t k;
	int has_threshold;
	float threshold;
	int metric;
	int strong; /* remote: a linearizable read of each shard */
};

static int hit_cmp(const void *a, const void *b)
{
	const vt_shard_hit *x = a, *y = b;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->label < y->label ? -1 : x->label > y->label;
}

static int passes_threshold(const struct search_job *j, float score)
{
	if (!j->has_threshold)
		return 1;
	return j->metric == VT_METRIC_L2 ? score <= j->threshold
					 : score >= j->threshold;
}

/* Merges the finished shards' hits into `out` (room for every hit),
 * best first, top k, threshold applied. Returns the count. */
static size_t merge(struct search_job *j, vt_shard_hit *out)
{
	size_t m = 0;
	for (uint32_t s = 0; s < j->c->cfg.shard_count; s++) {
		if (!j->finished[s])
			continue;
		for (size_t i = 0; i < j->parts[s].n; i++)
			if (passes_threshold(j, j->parts[s].hits[i].score))
				out[m++] = j->parts[s].hits[i];
	}
	qsort(out, m, sizeof *out, hit_cmp);
	return m < j->k ? m : j->k;
}

static void search_task(void *ctx, size_t s)
{
	struct search_job *j = ctx;
	vt_shard_query q = j->sq[0];
	q.min_index = j->min_index ? j->min_index[s] : 0;
	j->rcs[s] = sh_search(j->c, (uint32_t)s, &q, j->strong, &j->parts[s],
			      &j->errs[s]);
	if (!j->partial)
		return;
	pthread_mutex_lock(&j->mu);
	j->finished[s] = j->rcs[s] == 0;
	j->done++;
	size_t m = merge(j, j->scratch);
	j->partial(j->ud, j->scratch, m, j->done, j->c->cfg.shard_count);
	pthread_mutex_unlock(&j->mu);
}

/* Shards grouped by the remote call that serves them (search_groups):
 * task g searches shards[start[g] .. start[g + 1]). */
struct group_job {
	struct search_job *j;
	uint32_t *shards, *start;
};

static void group_task(void *ctx, size_t g)
{
	struct group_job *gj = ctx;
	struct search_job *j = gj->j;
	const vt_coll_remote *r = j->c->db->remote;
	uint32_t a = gj->start[g], n = gj->start[g + 1] - a;
	vt_shard_results out[n];
	int rcs[n];
	vt_errmsg errs[n];
	memset(out, 0, sizeof out);
	memset(errs, 0, sizeof errs);
	r->search_many(r->ud, j->c->cfg.name, gj->shards + a, n, &j->sq[0],
		       j->strong, out, rcs, errs);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = gj->shards[a + i];
		j->parts[s] = out[i];
		j->rcs[s] = rcs[i];
		j->errs[s] = errs[i];
	}
}

/* Runs the shard searches: grouped when the remote back end can serve
 * several shards in one call, else one task per shard. */
static void search_run(struct search_job *j, uint32_t ns)
{
	const vt_coll_remote *r = j->c->db->remote;
	if (r && r->search_groups && r->search_many && !j->partial && ns > 1) {
		uint32_t group[ns], shards[ns], start[ns + 1], ng = ns;
		vt_errmsg e;
		if (!r->search_groups(r->ud, j->c->cfg.name, ns, j->strong,
				      group, &ng, &e) &&
		    ng >= 1 && ng < ns) {
			/* shards ordered by group; start[g] where g begins */
			uint32_t k = 0;
			for (uint32_t g = 0; g < ng; g++) {
				start[g] = k;
				for (uint32_t s = 0; s < ns; s++)
					if (group[s] == g)
						shards[k++] = s;
			}
			start[ng] = k;
			if (k == ns) {
				struct group_job gj = {j, shards, start};
				vt_pool_run(j->c->db->pool, ng, group_task, &gj);
				return;
			}
		}
	}
	vt_pool_run(j->c->db->pool, ns, search_task, j);
}

int vt_coll_search(vt_coll *c, const vt_coll_query *q,
		   vt_coll_partial_fn partial, void *ud, vt_coll_results *out,
		   vt_errmsg *err)
{
	uint32_t ns = c->cfg.shard_count;
	int rc = results_init(out, c);
	if (rc)
		return vt_errmsg_set(err, rc, "out of memory");
	if (q->k < 1 || q->k > VT_COLL_MAX_K)
		return vt_errmsg_set(err, VT_EINVAL, "top_k: %u (1..%u)", q->k,
				     VT_COLL_MAX_K);
	struct results_priv *rp = out->priv_;
	struct search_job j;
	memset(&j, 0, sizeof j);
	j.c = c;
	vt_shard_query_default(&j.sq[0], q->vec, q->k);
	j.sq[0].ef = q->ef;
	j.sq[0].exact = q->exact;
	j.sq[0].filter = q->filter;
	j.sq[0].rescore = q->rescore < 0 ? c->cfg.rescore : q->rescore;
	j.sq[0].oversampling = q->oversampling > 0 ? q->oversampling
						   : c->cfg.oversampling;
	j.sq[0].with_payload = q->with_payload;
	j.sq[0].with_vector = q->with_vector;
	j.sq[0].wait_ms = q->wait_ms;
	j.parts = rp->parts;
	j.partial = partial;
	j.ud = ud;
	j.k = q->k;
	j.has_threshold = q->has_threshold;
	j.threshold = q->threshold;
	j.metric = c->cfg.shard.metric;
	pthread_mutex_init(&j.mu, NULL);
	j.rcs = vt_calloc(ns, sizeof *j.rcs);
	j.errs = vt_calloc(ns, sizeof *j.errs);
	j.finished = vt_calloc(ns, sizeof *j.finished);
	if (q->strong && !c->db->remote)
		j.min_index = vt_calloc(ns, sizeof *j.min_index);
	size_t room = (size_t)q->k * ns;
	out->hits = vt_malloc(room * sizeof *out->hits);
	if (partial)
		j.scratch = vt_malloc(room * sizeof *j.scratch);
	if (!j.rcs || !j.errs || !j.finished || !out->hits ||
	    (q->strong && !c->db->remote && !j.min_index) ||
	    (partial && !j.scratch)) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	j.strong = q->strong;
	for (uint32_t s = 0; q->strong && !c->db->remote && s < ns; s++) {
		uint64_t indexed;
		vt_shard_progress(c->shards[s], &j.min_index[s], &indexed);
	}
	search_run(&j, ns);
	uint32_t failed = 0;
	for (uint32_t s = 0; s < ns; s++)
		failed += j.rcs[s] != 0;
	if (failed && (!q->allow_partial || failed == ns)) {
		for (uint32_t s = 0; s < ns; s++)
			if (j.rcs[s]) {
				rc = vt_errmsg_set(err, j.rcs[s], "%s",
						   j.errs[s].msg);
				goto out;
			}
	}
	if (failed && !(out->missing = vt_malloc(failed * sizeof *out->missing))) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t s = 0; s < ns; s++) {
		if (j.rcs[s]) {
			out->missing[out->n_missing++] = s;
			VT_LOG(VT_LOG_INFO, "coll", "search of %s: shard %u left out "
			       "(partial results allowed): %s", c->cfg.name, s,
			       j.errs[s].msg);
			continue;
		}
		j.finished[s] = 1;
	}
	out->n = merge(&j, out->hits);
out:
	pthread_mutex_destroy(&j.mu);
	vt_free(j.rcs);
	vt_free(j.errs);
	vt_free(j.finished);
	vt_free(j.min_index);
	vt_free(j.scratch);
	return rc;
}

/* ---- scroll and count ------------------------------------------------------- */

static int cursor_parse(const char *s, uint32_t ns, uint32_t *shard,
			uint64_t *label)
{
	if (!s || !*s) {
		*shard = 0;
		*label = 0;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long a = strtoull(s, &end, 10);
	if (errno || *end != '.' || end == s || a >= ns)
		return VT_EINVAL;
	const char *l = end + 1;
	unsigned long long b = strtoull(l, &end, 10);
	if (errno || *end || end == l || *l == '-' || *s == '-')
		return VT_EINVAL;
	*shard = (uint32_t)a;
	*label = b;
	return 0;
}

int vt_coll_scroll(vt_coll *c, const vt_filter *f, uint32_t limit,
		   const char *cursor, int with_payload, int with_vector,
		   vt_coll_results *out, char *next_cursor, vt_errmsg *err)
{
	uint32_t ns = c->cfg.shard_count, s;
	uint64_t from;
	next_cursor[0] = '\0';
	int rc = results_init(out, c);
	if (rc)
		return vt_errmsg_set(err, rc, "out of memory");
	if (limit < 1 || limit > VT_COLL_MAX_POINTS)
		return vt_errmsg_set(err, VT_EINVAL, "limit: %u (1..%u)", limit,
				     VT_COLL_MAX_POINTS);
	if (cursor_parse(cursor, ns, &s, &from))
		return vt_errmsg_set(err, VT_EINVAL,
				     "cursor: \"%.40s\" is not a cursor this "
				     "collection gave",
				     cursor);
	struct results_priv *rp = out->priv_;
	out->hits = vt_malloc(limit * sizeof *out->hits);
	if (!out->hits)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	for (; s < ns && out->n < limit; s++, from = 0) {
		uint64_t next;
		vt_shard_results *sr = &rp->parts[s];
		rc = sh_scroll(c, s, from, limit - (uint32_t)out->n, f,
			       with_payload, with_vector, sr, &next, err);
		if (rc)
			return rc;
		for (size_t i = 0; i < sr->n; i++)
			out->hits[out->n++] = sr->hits[i];
		if (next) {
			snprintf(next_cursor, 32, "%u.%llu", s,
				 (unsigned long long)next);
			return 0;
		}
	}
	if (out->n == limit && s < ns)
		snprintf(next_cursor, 32, "%u.0", s);
	return 0;
}

struct count_job {
	vt_coll *c;
	const vt_filter *f;
	uint64_t *counts;
	int *rcs;
	vt_errmsg *errs;
};

static void count_task(void *ctx, size_t s)
{
	struct count_job *j = ctx;
	j->rcs[s] = sh_count(j->c, (uint32_t)s, j->f, &j->counts[s],
			     &j->errs[s]);
}

int vt_coll_count(vt_coll *c, const vt_filter *f, uint64_t *out,
		  vt_errmsg *err)
{
	uint32_t ns = c->cfg.shard_count;
	struct count_job j = {c, f, vt_calloc(ns, sizeof(uint64_t)),
			      vt_calloc(ns, sizeof(int)),
			      vt_calloc(ns, sizeof(vt_errmsg))};
	int rc = 0;
	*out = 0;
	if (!j.counts || !j.rcs || !j.errs)
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	else
		vt_pool_run(c->db->pool, ns, count_task, &j);
	for (uint32_t s = 0; !rc && s < ns; s++) {
		if (j.rcs[s])
			rc = vt_errmsg_set(err, j.rcs[s], "%s", j.errs[s].msg);
		*out += j.counts[s];
	}
	vt_free(j.counts);
	vt_free(j.rcs);
	vt_free(j.errs);
	return rc;
}
