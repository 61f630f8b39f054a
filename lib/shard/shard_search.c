/* shard_search.c: reads. A search plans its filter (payload index or not),
 * then either scans the matching points exactly, straight from the store,
 * or searches the graph with the filter as a callback. Hits are resolved
 * against the store, so a point deleted from the store never comes back
 * even while an async index lags. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "shard_int.h"
#include "simd/simd.h"

void vt_shard_query_default(vt_shard_query *q, const float *vec, uint32_t k)
{
	memset(q, 0, sizeof *q);
	q->vec = vec;
	q->k = k;
	q->rescore = 1;
	q->oversampling = 2.0f;
	q->with_payload = 1;
	q->wait_ms = 1000;
}

float vt_shard_score(int metric, float dist)
{
	switch (metric) {
	case VT_METRIC_IP:
		return -dist;
	case VT_METRIC_COSINE:
		return 1.0f - dist;
	default:
		return sqrtf(dist > 0 ? dist : 0);
	}
}

void vt_shard_results_free(vt_shard_results *r)
{
	if (!r)
		return;
	vt_free(r->priv_);
	memset(r, 0, sizeof *r);
}

/* ---- exact scans from the store ----------------------------------------------*/

/* A bounded max-heap on dist: the k best seen so far. */
struct topk {
	vt_hnsw_hit *h;
	size_t n, k;
};

static void topk_push(struct topk *t, uint64_t label, float dist)
{
	size_t i;
	if (t->n < t->k) {
		i = t->n++;
		while (i && t->h[(i - 1) / 2].dist < dist) {
			t->h[i] = t->h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		t->h[i] = (vt_hnsw_hit){label, dist};
		return;
	}
	if (!(dist < t->h[0].dist))
		return;
	i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->n)
			break;
		if (c + 1 < t->n && t->h[c + 1].dist > t->h[c].dist)
			c++;
		if (!(t->h[c].dist > dist))
			break;
		t->h[i] = t->h[c];
		i = c;
	}
	t->h[i] = (vt_hnsw_hit){label, dist};
}

static int hit_cmp(const void *a, const void *b)
{
	const vt_hnsw_hit *x = a, *y = b;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->label < y->label ? -1 : x->label > y->label;
}

static float distance(int metric, const float *q, const float *v, uint32_t dim)
{
	const vt_simd_ops *ops = vt_simd();
	switch (metric) {
	case VT_METRIC_IP:
		return -ops->dot_f32(q, v, dim);
	case VT_METRIC_COSINE:
		return 1.0f - ops->cos_f32(q, v, dim);
	default:
		return ops->l2sq_f32(q, v, dim);
	}
}

/* Scores one stored point if it passes the filter. */
static int scan_one(vt_shard *s, const vt_shard_query *q,
		    const vt_filter_plan *plan, const vt_store_point *p,
		    struct topk *t)
{
	int pass = 1;
	if (q->filter && !(plan && plan->exact)) {
		vt_payload *pay;
		int rc = vt__shard_payload_of(p, &pay, NULL);
		if (rc)
			return rc;
		pass = vt_filter_match(q->filter, pay);
		vt_payload_free(pay);
	}
	if (pass)
		topk_push(t, p->label, distance(s->cfg.metric, q->vec, p->vec,
						s->cfg.dim));
	return 0;
}

static int scan(vt_shard *s, vt_store_txn *tx, const vt_shard_query *q,
		const vt_filter_plan *plan, vt_hnsw_hit *out, size_t *n_out)
{
	struct topk t = {out, 0, q->k};
	vt_store_point p;
	int rc = 0;
	if (plan && plan->has_labels) {
		for (size_t i = 0; i < plan->n_labels && !rc; i++) {
			rc = vt_store_get_by_label(tx, plan->labels[i], &p);
			if (rc == VT_ENOENT) {
				rc = 0;
				continue;
			}
			if (!rc)
				rc = scan_one(s, q, plan, &p, &t);
		}
	} else {
		vt_store_iter *it;
		rc = vt_store_iter_open(tx, 0, &it);
		while (!rc && !(rc = vt_store_iter_next(it, &p)))
			rc = scan_one(s, q, NULL, &p, &t);
		if (rc == VT_ENOENT)
			rc = 0;
		vt_store_iter_close(it);
	}
	qsort(out, t.n, sizeof *out, hit_cmp);
	*n_out = t.n;
	return rc;
}

/* ---- the filter callback's payload look-up ----------------------------------*/

struct lookup {
	vt_store_txn *tx;
	vt_payload **owned; /* parsed payloads, freed after the search */
	size_t n, cap;
};

static int lookup_payload(void *ctx, uint64_t label, const vt_payload **out)
{
	struct lookup *lk = ctx;
	vt_store_point p;
	vt_payload *pay;
	if (vt_store_get_by_label(lk->tx, label, &p) || vt__shard_payload_of(&p, &pay, NULL))
		return 1; /* gone or unreadable: excluded */
	if (lk->n == lk->cap) {
		size_t cap = lk->cap ? lk->cap * 2 : 64;
		vt_payload **o = vt_realloc(lk->owned, cap * sizeof *o);
		if (!o) {
			vt_payload_free(pay);
			return 1;
		}
		lk->owned = o;
		lk->cap = cap;
	}
	lk->owned[lk->n++] = pay;
	*out = pay;
	return 0;
}

static void lookup_free(struct lookup *lk)
{
	for (size_t i = 0; i < lk->n; i++)
		vt_payload_free(lk->owned[i]);
	vt_free(lk->owned);
}

/* ---- results ------------------------------------------------------------------ */

/* Copies the points `views` into one allocation owned by `out`. */
static int fill_results(vt_shard *s, const vt_store_point *views,
			const float *dists, size_t n, int with_payload,
			int with_vector, vt_shard_results *out)
{
	size_t vec_bytes = (size_t)s->cfg.dim * sizeof(float);
	size_t bytes = n * sizeof(vt_shard_hit);
	for (size_t i = 0; i < n; i++) {
		bytes += with_vector ? vec_bytes : 0;
		bytes += views[i].id_len + 1;
		bytes += with_payload ? views[i].payload_len + 3 : 0;
	}
	uint8_t *arena = vt_malloc(bytes ? bytes : 1);
	if (!arena)
		return VT_ENOMEM;
	vt_shard_hit *hits = (vt_shard_hit *)arena;
	uint8_t *vecs = arena + n * sizeof(vt_shard_hit); /* 4-aligned */
	char *str = (char *)vecs + (with_vector ? n * vec_bytes : 0);
	for (size_t i = 0; i < n; i++) {
		const vt_store_point *v = &views[i];
		vt_shard_hit *h = &hits[i];
		memset(h, 0, sizeof *h);
		h->label = v->label;
		h->dist = dists ? dists[i] : 0;
		h->score = dists ? vt_shard_score(s->cfg.metric, h->dist) : 0;
		memcpy(str, v->id, v->id_len);
		str[v->id_len] = '\0';
		h->id = str;
		h->id_len = (uint32_t)v->id_len;
		str += v->id_len + 1;
		if (with_payload) {
			if (v->payload_len)
				memcpy(str, v->payload, v->payload_len);
			else
				memcpy(str, "{}", 2);
			h->payload_len = v->payload_len ? (uint32_t)v->payload_len
							: 2;
			str[h->payload_len] = '\0';
			h->payload = str;
			str += h->payload_len + 1;
		}
		if (with_vector) {
			float *dst = (float *)(vecs + i * vec_bytes);
			memcpy(dst, v->vec, vec_bytes);
			h->vec = dst;
		}
	}
	out->hits = hits;
	out->n = n;
	out->priv_ = arena;
	return 0;
}

/* Looks the hits up in the store (dropping any deleted meanwhile). */
static int resolve(vt_shard *s, vt_store_txn *tx, const vt_hnsw_hit *hits,
		   size_t n, const vt_shard_query *q, vt_shard_results *out)
{
	vt_store_point *views = vt_malloc((n ? n : 1) * sizeof *views);
	float *dists = vt_malloc((n ? n : 1) * sizeof *dists);
	size_t m = 0;
	int rc = views && dists ? 0 : VT_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		rc = vt_store_get_by_label(tx, hits[i].label, &views[m]);
		if (rc == VT_ENOENT) {
			rc = 0;
			continue;
		}
		if (!rc)
			dists[m++] = hits[i].dist;
	}
	if (!rc)
		rc = fill_results(s, views, dists, m, q->with_payload,
				  q->with_vector, out);
	vt_free(views);
	vt_free(dists);
	return rc;
}

static int check_query(vt_shard *s, const vt_shard_query *q, vt_errmsg *err)
{
	if (!q->vec)
		return vt_errmsg_set(err, VT_EINVAL, "vector: missing");
	if (q->k < 1 || q->k > VT_HNSW_MAX_K)
		return vt_errmsg_set(err, VT_EINVAL, "top_k: %u (1..%u)", q->k,
				     VT_HNSW_MAX_K);
	int rc = vt__shard_check_vector(s, q->vec, "vector", err);
	if (rc)
		return rc;
	if (q->rescore && !(q->oversampling >= 1.0f))
		return vt_errmsg_set(err, VT_EINVAL,
				     "oversampling: %g (must be >= 1)",
				     (double)q->oversampling);
	return 0;
}

int vt_shard_search(vt_shard *s, const vt_shard_query *q,
		    vt_shard_results *out, vt_errmsg *err)
{
	vt_errmsg edummy;
	if (!err)
		err = &edummy;
	vt_errmsg_clear(err);
	memset(out, 0, sizeof *out);
	int rc = check_query(s, q, err);
	if (rc)
		return rc;
	if (q->min_index &&
	    vt_shard_wait_indexed(s, q->min_index, q->wait_ms))
		return vt_errmsg_set(err, VT_ETIMEDOUT,
				     "the index did not reach command %llu "
				     "within %u ms",
				     (unsigned long long)q->min_index,
				     q->wait_ms);
	vt_hnsw_hit *hits = vt_malloc(q->k * sizeof *hits);
	if (!hits)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	vt_filter_plan plan = {0};
	struct lookup lk = {0};
	vt_store_txn *tx = NULL;
	size_t n = 0;
	if (q->filter) {
		uint64_t total;
		pthread_rwlock_rdlock(&s->pix_lock);
		if (s->pix)
			total = vt_payload_index_count(s->pix);
		else {
			vt_hnsw_stats hs;
			vt_hnsw_stats_get(s->h, &hs);
			total = hs.count;
		}
		rc = vt_filter_plan_build(q->filter, s->pix, total, NULL, &plan);
		pthread_rwlock_unlock(&s->pix_lock);
		if (rc)
			goto out;
		out->strategy = plan.strategy;
	} else {
		out->strategy = VT_PLAN_GRAPH;
	}
	if ((rc = vt__rd_begin(s, &tx)))
		goto out;
	if (q->filter && plan.strategy == VT_PLAN_EMPTY) {
		n = 0;
	} else if (q->filter && (plan.strategy == VT_PLAN_SCAN || q->exact)) {
		out->strategy = VT_PLAN_SCAN;
		rc = scan(s, tx, q, &plan, hits, &n);
	} else {
		vt_hnsw_query hq;
		vt_hnsw_query_default(&hq, q->k);
		hq.ef = q->ef;
		hq.exact = q->exact;
		hq.rescore = q->rescore;
		hq.oversampling = q->oversampling;
		vt_filter_hnsw_ctx fc = {q->filter,
					 plan.has_labels ? &plan : NULL,
					 lookup_payload, &lk};
		lk.tx = tx;
		if (q->filter) {
			hq.filter = vt_filter_hnsw_cb;
			hq.filter_ctx = &fc;
		}
		rc = vt_hnsw_search(s->h, q->vec, &hq, hits, &n);
	}
	if (!rc)
		rc = resolve(s, tx, hits, n, q, out);
	vt__rd_end(s, tx);
out:
	lookup_free(&lk);
	vt_filter_plan_free(&plan);
	vt_free(hits);
	if (rc && !err->msg[0])
		vt_errmsg_set(err, rc, "search: %s", vt_strerror(rc));
	return rc;
}

int vt_shard_get(vt_shard *s, const char *const *ids, const uint32_t *id_lens,
		 size_t n, int with_payload, int with_vector,
		 vt_shard_results *out, vt_errmsg *err)
{
	memset(out, 0, sizeof *out);
	vt_store_point *views = vt_malloc((n ? n : 1) * sizeof *views);
	vt_store_txn *tx;
	size_t m = 0;
	if (!views)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	int rc = vt__rd_begin(s, &tx);
	if (rc) {
		vt_free(views);
		return vt_errmsg_set(err, rc, "get: %s", vt_strerror(rc));
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rc = vt_store_get_by_id(tx, ids[i], id_lens[i], &views[m]);
		if (rc == VT_ENOENT || rc == VT_EINVAL) {
			rc = 0; /* absent, or an id no point can have */
			continue;
		}
		if (!rc)
			m++;
	}
	if (!rc)
		rc = fill_results(s, views, NULL, m, with_payload, with_vector,
				  out);
	vt__rd_end(s, tx);
	vt_free(views);
	if (rc)
		vt_errmsg_set(err, rc, "get: %s", vt_strerror(rc));
	return rc;
}

/* ---- scroll and count ------------------------------------------------------- */

/* Plans `f` for a listing: the label set when the payload index gives one. */
static int plan_all(vt_shard *s, const vt_filter *f, vt_filter_plan *plan)
{
	memset(plan, 0, sizeof *plan);
	if (!f || !s->pix)
		return 0;
	vt_filter_plan_params pp;
	vt_filter_plan_params_default(&pp);
	pp.scan_threshold = UINT64_MAX; /* always want the labels */
	pthread_rwlock_rdlock(&s->pix_lock);
	int rc = vt_filter_plan_build(f, s->pix, vt_payload_index_count(s->pix),
				      &pp, plan);
	pthread_rwlock_unlock(&s->pix_lock);
	return rc;
}

/* Whether stored point `p` passes; `plan` may say so without parsing. */
static int passes(const vt_filter *f, const vt_filter_plan *plan,
		  const vt_store_point *p, int *ok)
{
	*ok = 1;
	if (!f || (plan->has_labels && plan->exact))
		return 0;
	vt_payload *pay;
	int rc = vt__shard_payload_of(p, &pay, NULL);
	if (rc)
		return rc;
	*ok = vt_filter_match(f, pay);
	vt_payload_free(pay);
	return 0;
}

int vt_shard_scroll(vt_shard *s, uint64_t from, uint32_t limit,
		    const vt_filter *f, int with_payload, int with_vector,
		    vt_shard_results *out, uint64_t *next, vt_errmsg *err)
{
	memset(out, 0, sizeof *out);
	*next = 0;
	if (limit < 1 || limit > 100000)
		return vt_errmsg_set(err, VT_EINVAL, "limit: %u (1..100000)",
				     limit);
	vt_filter_plan plan;
	int rc = plan_all(s, f, &plan);
	if (rc)
		return vt_errmsg_set(err, rc, "scroll: %s", vt_strerror(rc));
	vt_store_point *views = vt_malloc(limit * sizeof *views);
	vt_store_txn *tx = NULL;
	vt_store_iter *it = NULL;
	size_t m = 0;
	if (!views) {
		rc = VT_ENOMEM;
		goto out;
	}
	if ((rc = vt__rd_begin(s, &tx)))
		goto out;
	vt_store_point p;
	if (f && plan.strategy == VT_PLAN_EMPTY && s->pix) {
		/* nothing matches */
	} else if (plan.has_labels) {
		size_t j = 0;
		while (j < plan.n_labels && plan.labels[j] < from)
			j++;
		for (; j < plan.n_labels && !rc; j++) {
			int ok;
			rc = vt_store_get_by_label(tx, plan.labels[j], &p);
			if (rc == VT_ENOENT) {
				rc = 0;
				continue;
			}
			if (!rc)
				rc = passes(f, &plan, &p, &ok);
			if (rc || !ok)
				continue;
			if (m == limit) {
				*next = p.label;
				break;
			}
			views[m++] = p;
		}
	} else {
		rc = vt_store_iter_open(tx, from, &it);
		while (!rc && !(rc = vt_store_iter_next(it, &p))) {
			int ok;
			if ((rc = passes(f, &plan, &p, &ok)) || !ok)
				continue;
			if (m == limit) {
				*next = p.label;
				break;
			}
			views[m++] = p;
		}
		if (rc == VT_ENOENT)
			rc = 0;
	}
	if (!rc)
		rc = fill_results(s, views, NULL, m, with_payload, with_vector,
				  out);
out:
	vt_store_iter_close(it);
	if (tx)
		vt__rd_end(s, tx);
	vt_free(views);
	vt_filter_plan_free(&plan);
	if (rc) {
		*next = 0;
		vt_errmsg_set(err, rc, "scroll: %s", vt_strerror(rc));
	}
	return rc;
}

int vt_shard_count(vt_shard *s, const vt_filter *f, uint64_t *count,
		   vt_errmsg *err)
{
	*count = 0;
	vt_filter_plan plan;
	int rc = plan_all(s, f, &plan);
	if (rc)
		return vt_errmsg_set(err, rc, "count: %s", vt_strerror(rc));
	vt_store_txn *tx;
	if ((rc = vt__rd_begin(s, &tx))) {
		vt_filter_plan_free(&plan);
		return vt_errmsg_set(err, rc, "count: %s", vt_strerror(rc));
	}
	uint64_t wal;
	if (!f) {
		rc = vt_store_count(tx, count, &wal);
	} else if (plan.strategy == VT_PLAN_EMPTY && s->pix) {
		*count = 0;
	} else if (plan.has_labels && plan.exact) {
		/* The payload index mirrors the store (apply updates both
		 * under apply_mu before the next command). */
		*count = plan.n_labels;
	} else {
		vt_store_point p;
		if (plan.has_labels) {
			for (size_t j = 0; j < plan.n_labels && !rc; j++) {
				int ok;
				rc = vt_store_get_by_label(tx, plan.labels[j], &p);
				if (rc == VT_ENOENT) {
					rc = 0;
					continue;
				}
				if (!rc && !(rc = passes(f, &plan, &p, &ok)))
					*count += (uint64_t)ok;
			}
		} else {
			vt_store_iter *it;
			rc = vt_store_iter_open(tx, 0, &it);
			while (!rc && !(rc = vt_store_iter_next(it, &p))) {
				int ok;
				if (!(rc = passes(f, &plan, &p, &ok)))
					*count += (uint64_t)ok;
			}
			if (rc == VT_ENOENT)
				rc = 0;
			vt_store_iter_close(it);
		}
	}
	vt__rd_end(s, tx);
	vt_filter_plan_free(&plan);
	if (rc)
		vt_errmsg_set(err, rc, "count: %s", vt_strerror(rc));
	return rc;
}
