/* bench_shard.c: vt_bench_shard, the shard state machine (lib/shard) on
 * Fashion-MNIST: acknowledged ingest rate (store only, sync and async
 * indexing), restart time from index snapshot + WAL against a full rebuild,
 * and filtered search QPS and recall against exact filtered search. Not a
 * pass/fail performance test: only a sanity floor (errors, recall, counts)
 * sets the exit status; the targets are reported. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/progress.h"
#include "common.h"
#include "cmds.h"
#include "dataset.h"
#include "hnsw/hnsw.h"
#include "payload/payload.h"
#include "shard/shard.h"
#include "store/store.h"

#define K 10u
#define BATCH 256u
#define WARMUP_QUERIES 100u
#define SANITY_RECALL 0.90
#define INDEX_WAIT_MS (30u * 60u * 1000u)

/* Targets from issue 4. */
#define TARGET_ASYNC_RATE 30000.0
#define TARGET_RESTART_RATIO 10.0
#define TARGET_RESTART_S 2.0
#define TARGET_RECALL 0.95

static const char *const tags[4] = {"red", "green", "blue", "black"};

/* The filters searched, over the payload {"bucket": n % 100, "label":
 * class, "tag": tags[n % 4]}. Bucket and tag follow the point number, so
 * they are independent of the image; label is the image's class, which
 * its neighbours tend to share. */
typedef struct filt_def {
	const char *name;
	const char *json; /* NULL: no filter */
	int target;       /* a recall target of the issue applies */
} filt_def;

static const filt_def filt_defs[] = {
	{"none", NULL, 0},
	{"50% bucket<50", "{\"must\":[{\"key\":\"bucket\",\"range\":{\"lt\":50}}]}", 1},
	{"25% tag=blue", "{\"must\":[{\"key\":\"tag\",\"match\":{\"value\":\"blue\"}}]}", 0},
	{"10% label=3", "{\"must\":[{\"key\":\"label\",\"match\":{\"value\":3}}]}", 1},
	{"10% bucket in [20,30)",
	 "{\"must\":[{\"key\":\"bucket\",\"range\":{\"gte\":20,\"lt\":30}}]}", 1},
	{"1% bucket=7", "{\"must\":[{\"key\":\"bucket\",\"match\":{\"value\":7}}]}", 1},
};
#define N_FILT (sizeof filt_defs / sizeof filt_defs[0])

typedef struct opts {
	int quick;
	size_t n_base;    /* 0 = all */
	size_t n_queries; /* search queries */
	size_t n_extra;   /* points re-applied after the checkpoint */
	const char *json_path;
	char parent[1024]; /* where the run's directory goes */
	char cache[1024];
	int keep;
	unsigned steps; /* STEP_* */
} opts;

enum { STEP_STORE = 1, STEP_SYNC = 2, STEP_ASYNC = 4, STEP_RESTART = 8, STEP_SEARCH = 16,
       STEP_ALL = 31 };
static const char *const step_names[] = {"store", "sync", "async", "restart", "search"};

/* ---- machine ---------------------------------------------------------- */

/* The calling thread's time on a CPU and waiting for one (runnable but
 * not running), from /proc/thread-self/schedstat; 0 if unreadable. */
static void thread_sched(double *on_cpu_s, double *runq_s)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	if (f) {
		if (fscanf(f, "%llu %llu", &run, &wait) != 2)
			run = wait = 0;
		fclose(f);
	}
	*on_cpu_s = (double)run / 1e9;
	*runq_s = (double)wait / 1e9;
}

/* Wall, our CPU and others' CPU over a measured step. */
typedef struct span {
	uint64_t t0;
	double cpu0, busy0;
	double wall_s, cpu_s, others_s;
} span;

static void span_start(span *p)
{
	p->busy0 = vt_bench_machine_busy_s();
	p->cpu0 = vt_bench_self_cpu_s();
	p->t0 = vt_clock_mono_ns();
}

static void span_stop(span *p)
{
	p->wall_s = (double)(vt_clock_mono_ns() - p->t0) / 1e9;
	p->cpu_s = vt_bench_self_cpu_s() - p->cpu0;
	double busy1 = vt_bench_machine_busy_s();
	p->others_s = vt_bench_others_cpu(p->busy0, busy1, p->cpu_s);
}

/* ---- data --------------------------------------------------------------- */

/* The first n class labels of the training set (IDX1, gzip'd). */
static int read_labels(size_t n, uint8_t **out, vt_errmsg *err)
{
	const char *path = VT_BENCH_FMNIST_DIR "/train-labels-idx1-ubyte.gz";
	uint8_t hdr[8];
	*out = NULL;
	gzFile f = gzopen(path, "rb");
	if (!f)
		return vt_errmsg_set(err, VT_EIO, "open %s: %s (install dataset-fashion-mnist)",
				     path, strerror(errno));
	uint8_t *l = vt_malloc(n ? n : 1);
	int rc = 0;
	if (!l) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	if (gzread(f, hdr, sizeof hdr) != (int)sizeof hdr || hdr[0] || hdr[1] || hdr[2] != 8 ||
	    hdr[3] != 1) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: not an IDX1 unsigned-byte file", path);
		goto out;
	}
	uint32_t cnt = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 |
		       hdr[7];
	if (cnt < n || gzread(f, l, (unsigned)n) != (int)n) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: %u labels, %zu needed", path, cnt, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (l[i] > 9) {
			rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: label %zu is %u", path, i, l[i]);
			goto out;
		}
	*out = l;
	l = NULL;
out:
	vt_free(l);
	gzclose(f);
	return rc;
}

/* Point n's payload, keys in canonical (sorted) order. */
static int payload_of(size_t n, const uint8_t *labels, char *buf, size_t cap)
{
	return snprintf(buf, cap, "{\"bucket\":%zu,\"label\":%u,\"tag\":\"%s\"}", n % 100,
			labels[n], tags[n % 4]);
}

/* Does point n pass filter i (for the selectivity column)? */
static int filt_pass(size_t i, size_t n, const uint8_t *labels)
{
	switch (i) {
	case 0:
		return 1;
	case 1:
		return n % 100 < 50;
	case 2:
		return n % 4 == 2;
	case 3:
		return labels[n] == 3;
	case 4:
		return n % 100 >= 20 && n % 100 < 30;
	default:
		return n % 100 == 7;
	}
}

/* payload_of as a vt_bench_payload_fn (ud: the labels). */
static int shard_payload(size_t i, void *ud, char *buf, size_t cap)
{
	return payload_of(i, ud, buf, cap);
}

/* ---- results ------------------------------------------------------------ */

typedef struct ingest_res {
	const char *mode;
	size_t points;
	span ack;          /* until the last apply returned */
	double indexed_s;  /* until the index caught up (async), else = ack */
	double rate_ack;   /* points / ack.wall_s */
	double rate_indexed;
	double lat_p50_ms, lat_p99_ms, lat_max_ms; /* per batch apply */
	double oncpu_s, runq_s; /* the applying thread: on a CPU, waiting for
				   one; the rest of ack is off-CPU (fsync) */
	int measured;
} ingest_res;

typedef struct restart_res {
	double checkpoint_s;
	size_t extra;
	uint64_t wal_entries; /* WAL entries the open replayed */
	double snap_s;        /* open from snapshot + WAL */
	double snap_cpu_s, snap_others_s;
	double rebuild_s;     /* open after deleting index.snap */
	double rebuild_cpu_s, rebuild_others_s;
	uint64_t points, index_points_snap, index_points_rebuild;
	uint64_t snap_bytes;
	int measured;
} restart_res;

typedef struct search_res {
	const char *name;
	double selectivity;  /* measured share of points passing */
	int strategy[3];     /* queries per enum vt_filter_strategy */
	double qps, qps_cpu, recall;      /* default search */
	double exact_qps, exact_qps_cpu;  /* q.exact = 1 */
	double exact_recall; /* exact vs the data set's truth (unfiltered) */
	double hits_avg;     /* hits per default query */
	int target;
} search_res;

static const char *strategy_name(int s)
{
	return s == VT_PLAN_EMPTY ? "empty" : s == VT_PLAN_SCAN ? "scan" : "graph";
}

/* ---- ingest ------------------------------------------------------------- */

static void shard_config(vt_shard_config *cfg, const vt_bench_data *d, int mode)
{
	vt_shard_config_default(cfg, d->dim, VT_METRIC_L2);
	cfg->index_mode = mode;
	cfg->n_fields = 3;
	strcpy(cfg->fields[0].path, "bucket");
	cfg->fields[0].type = VT_PAYLOAD_INTEGER;
	strcpy(cfg->fields[1].path, "label");
	cfg->fields[1].type = VT_PAYLOAD_INTEGER;
	strcpy(cfg->fields[2].path, "tag");
	cfg->fields[2].type = VT_PAYLOAD_KEYWORD;
}

static void latencies(double *lat, size_t n, ingest_res *r)
{
	qsort(lat, n, sizeof *lat, vt_bench_cmp_double);
	r->lat_p50_ms = n ? lat[n / 2] * 1e3 : NAN;
	r->lat_p99_ms = n ? lat[(size_t)((double)(n - 1) * 0.99)] * 1e3 : NAN;
	r->lat_max_ms = n ? lat[n - 1] * 1e3 : NAN;
}

/* The baseline: the same points straight into lib/store, one transaction
 * per batch (put every point, record the batch as applied, commit). */
static int ingest_store(const char *dir, const vt_bench_data *d, const uint8_t *labels,
			size_t n, ingest_res *r, vt_errmsg *err)
{
	vt_store_opts so;
	vt_store_opts_default(&so);
	so.dim = d->dim;
	so.sync = VT_STORE_SYNC_FULL;
	vt_store *st = NULL;
	size_t nb = (n + BATCH - 1) / BATCH;
	double *lat = vt_malloc((nb ? nb : 1) * sizeof *lat);
	int rc = lat ? vt_store_open(dir, &so, &st, err) : VT_ENOMEM;
	if (rc)
		goto out;
	vt_progress pg;
	vt_progress_start(&pg, stderr, "ingest store-only", n);
	double c0, w0, c1, w1;
	thread_sched(&c0, &w0);
	span_start(&r->ack);
	for (size_t b = 0; b < nb; b++) {
		uint64_t t0 = vt_clock_mono_ns();
		vt_store_txn *tx;
		if ((rc = vt_store_txn_begin(st, &tx))) {
			vt_errmsg_set(err, rc, "store: %s", vt_store_errmsg(st));
			goto out;
		}
		size_t lo = b * BATCH, hi = lo + BATCH < n ? lo + BATCH : n;
		for (size_t i = lo; !rc && i < hi; i++) {
			char id[32], pl[128];
			int il = snprintf(id, sizeof id, "p%zu", i);
			int pn = payload_of(i, labels, pl, sizeof pl);
			rc = vt_store_put(tx, id, (size_t)il, d->base + i * d->dim, d->dim, pl,
					  (size_t)pn, NULL, NULL);
		}
		if (!rc)
			rc = vt_store_set_applied(tx, b + 1);
		if (rc) {
			vt_errmsg_set(err, rc, "store: %s", vt_store_txn_errmsg(tx));
			vt_store_txn_abort(tx);
			goto out;
		}
		if ((rc = vt_store_txn_commit(tx))) {
			vt_errmsg_set(err, rc, "store commit: %s", vt_store_errmsg(st));
			goto out;
		}
		lat[b] = (double)(vt_clock_mono_ns() - t0) / 1e9;
		vt_progress_update(&pg, hi);
	}
	span_stop(&r->ack);
	thread_sched(&c1, &w1);
	r->oncpu_s = c1 - c0;
	r->runq_s = w1 - w0;
	vt_progress_done(&pg, n);
	r->mode = "store-only";
	r->points = n;
	r->indexed_s = NAN;
	r->rate_ack = (double)n / r->ack.wall_s;
	r->rate_indexed = NAN;
	latencies(lat, nb, r);
	r->measured = 1;
out:
	vt_store_close(st);
	vt_free(lat);
	return rc;
}

static int apply_all(vt_shard *s, const vt_bench_cmds *c, size_t first, size_t count, double *lat,
		     vt_progress *pg, size_t *points, vt_errmsg *err)
{
	for (size_t b = first; b < first + count; b++) {
		vt_shard_result res;
		uint64_t t0 = vt_clock_mono_ns();
		int rc = vt_shard_apply(s, 0, c->p[b], c->len[b], &res, err);
		if (lat)
			lat[b - first] = (double)(vt_clock_mono_ns() - t0) / 1e9;
		if (rc)
			return vt_errmsg_prefix(err, rc, "apply batch %zu", b);
		*points += res.upserted;
		if (pg)
			vt_progress_update(pg, *points);
	}
	return 0;
}

/* Ingests every batch into a new shard in `mode`; the shard stays open in
 * *out (NULL: closed). */
static int ingest_shard(const char *dir, const vt_bench_data *d, const vt_bench_cmds *c, size_t n,
			int mode, ingest_res *r, vt_shard **out, vt_errmsg *err)
{
	vt_shard_config cfg;
	shard_config(&cfg, d, mode);
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	vt_shard *s = NULL;
	double *lat = vt_malloc((c->n ? c->n : 1) * sizeof *lat);
	int rc = lat ? vt_shard_open(dir, &o, &s, err) : VT_ENOMEM;
	if (rc)
		goto out;
	r->mode = mode == VT_INDEX_SYNC ? "shard sync" : "shard async";
	vt_progress pg;
	vt_progress_start(&pg, stderr, mode == VT_INDEX_SYNC ? "ingest shard sync (acknowledged)"
							    : "ingest shard async (acknowledged)",
			  n);
	size_t points = 0;
	double c0, w0, c1, w1;
	thread_sched(&c0, &w0);
	span_start(&r->ack);
	rc = apply_all(s, c, 0, c->n, lat, &pg, &points, err);
	if (rc)
		goto out;
	span_stop(&r->ack);
	thread_sched(&c1, &w1);
	r->oncpu_s = c1 - c0;
	r->runq_s = w1 - w0;
	vt_progress_done(&pg, points);
	vt_shard_status st;
	if ((rc = vt_shard_status_get(s, &st)))
		goto out;
	if (mode == VT_INDEX_ASYNC) {
		fprintf(stderr, "  waiting for the index: %llu entries behind\n",
			(unsigned long long)st.lag);
		rc = vt_shard_wait_indexed(s, st.applied, INDEX_WAIT_MS);
		if (rc) {
			vt_errmsg_set(err, rc, "the index did not catch up");
			goto out;
		}
		r->indexed_s = (double)(vt_clock_mono_ns() - r->ack.t0) / 1e9;
		fprintf(stderr, "  indexed after %.2f s\n", r->indexed_s);
		if ((rc = vt_shard_status_get(s, &st)))
			goto out;
	} else {
		r->indexed_s = r->ack.wall_s;
	}
	r->points = points;
	r->rate_ack = (double)points / r->ack.wall_s;
	r->rate_indexed = (double)points / r->indexed_s;
	latencies(lat, c->n, r);
	if (st.points != n || st.index_points != n) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "%s: %llu points stored, %llu indexed, %zu applied", r->mode,
				   (unsigned long long)st.points,
				   (unsigned long long)st.index_points, n);
		goto out;
	}
	r->measured = 1;
out:
	vt_free(lat);
	if (rc || !out)
		vt_shard_close(s);
	else
		*out = s;
	return rc;
}

/* ---- restart -------------------------------------------------------------- */

static int open_timed(const char *dir, vt_shard **out, double *sec, double *cpu,
		      double *others, vt_errmsg *err)
{
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	span sp;
	span_start(&sp);
	int rc = vt_shard_open(dir, &o, out, err);
	span_stop(&sp);
	*sec = sp.wall_s;
	*cpu = sp.cpu_s;
	*others = sp.others_s;
	return rc;
}

/* Checkpoints the open shard `s`, re-applies the first `extra` points (so
 * the WAL holds that many entries), closes, and times an open from the
 * snapshot + WAL; the reopened shard is left in *out for the searches. */
static int restart_snapshot(const char *dir, vt_shard *s, const vt_bench_cmds *extra, restart_res *r,
			    vt_shard **out, vt_errmsg *err)
{
	uint64_t t0 = vt_clock_mono_ns();
	int rc = vt_shard_checkpoint(s, err);
	if (rc) {
		vt_shard_close(s);
		return vt_errmsg_prefix(err, rc, "checkpoint");
	}
	r->checkpoint_s = (double)(vt_clock_mono_ns() - t0) / 1e9;
	size_t points = 0;
	rc = apply_all(s, extra, 0, extra->n, NULL, NULL, &points, err);
	vt_shard_status st;
	if (!rc)
		rc = vt_shard_status_get(s, &st);
	if (!rc)
		rc = vt_shard_wait_indexed(s, st.applied, INDEX_WAIT_MS);
	if (!rc)
		rc = vt_shard_status_get(s, &st);
	vt_shard_close(s);
	if (rc)
		return rc;
	r->extra = points;
	r->wal_entries = st.wal_entries;
	r->snap_bytes = st.bytes_snapshot;
	fprintf(stderr, "restart: opening from the snapshot + %llu WAL entries\n",
		(unsigned long long)st.wal_entries);
	if ((rc = open_timed(dir, out, &r->snap_s, &r->snap_cpu_s, &r->snap_others_s, err)))
		return rc;
	if ((rc = vt_shard_status_get(*out, &st)))
		return rc;
	r->points = st.points;
	r->index_points_snap = st.index_points;
	fprintf(stderr, "  opened in %.3f s\n", r->snap_s);
	return 0;
}

static int restart_rebuild(const char *dir, restart_res *r, vt_errmsg *err)
{
	char path[2100];
	snprintf(path, sizeof path, "%s/index.snap", dir);
	if (unlink(path) != 0)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "unlink %s: %s", path,
				     strerror(errno));
	fprintf(stderr, "restart: opening without index.snap (full rebuild)\n");
	vt_shard *s = NULL;
	int rc = open_timed(dir, &s, &r->rebuild_s, &r->rebuild_cpu_s, &r->rebuild_others_s, err);
	vt_shard_status st;
	if (!rc)
		rc = vt_shard_status_get(s, &st);
	if (!rc)
		r->index_points_rebuild = st.index_points;
	vt_shard_close(s);
	if (!rc) {
		fprintf(stderr, "  opened in %.3f s\n", r->rebuild_s);
		r->measured = 1;
	}
	return rc;
}

/* ---- search ------------------------------------------------------------- */

static size_t id_num(const vt_shard_hit *h)
{
	char buf[32];
	size_t n = h->id_len < sizeof buf - 1 ? h->id_len : sizeof buf - 1;
	memcpy(buf, h->id, n);
	buf[n] = 0;
	return buf[0] == 'p' ? (size_t)strtoull(buf + 1, NULL, 10) : SIZE_MAX;
}

/* Runs every query once; ids[q * K ..] get the hits' point numbers
 * (SIZE_MAX past the end), cnt[q] their count. */
static int run_queries(vt_shard *s, const vt_bench_data *d, size_t nq, const vt_filter *f,
		       int exact, const char *what, size_t *ids, uint32_t *cnt, int *strategy,
		       double *qps, double *qps_cpu, vt_errmsg *err)
{
	vt_progress pg;
	vt_progress_start(&pg, stderr, what, nq);
	uint64_t c0 = vt_clock_thread_cpu_ns(), t0 = vt_clock_mono_ns();
	for (size_t qi = 0; qi < nq; qi++) {
		vt_shard_query q;
		vt_shard_query_default(&q, d->queries + qi * d->dim, K);
		q.filter = f;
		q.exact = exact;
		vt_shard_results r;
		int rc = vt_shard_search(s, &q, &r, err);
		if (rc) {
			vt_shard_results_free(&r);
			return vt_errmsg_prefix(err, rc, "%s: query %zu", what, qi);
		}
		if (ids) {
			for (size_t j = 0; j < K; j++)
				ids[qi * K + j] = j < r.n ? id_num(&r.hits[j]) : SIZE_MAX;
			cnt[qi] = (uint32_t)r.n;
		}
		if (strategy && r.strategy >= 0 && r.strategy < 3)
			strategy[r.strategy]++;
		vt_shard_results_free(&r);
		vt_progress_update(&pg, qi + 1);
	}
	double wall = (double)(vt_clock_mono_ns() - t0) / 1e9;
	double cpu = (double)(vt_clock_thread_cpu_ns() - c0) / 1e9;
	vt_progress_done(&pg, nq);
	*qps = (double)nq / wall;
	*qps_cpu = (double)nq / cpu;
	return 0;
}

/* Mean over queries of |got ∩ truth| / |truth| (queries with an empty
 * truth count as 1 when nothing came back). */
static double recall_of(const size_t *got, const size_t *truth, const uint32_t *truth_n,
			size_t nq)
{
	double sum = 0;
	for (size_t q = 0; q < nq; q++) {
		uint32_t tn = truth_n ? truth_n[q] : K;
		if (tn == 0) {
			sum += got[q * K] == SIZE_MAX;
			continue;
		}
		uint32_t hit = 0;
		for (size_t i = 0; i < K; i++) {
			if (got[q * K + i] == SIZE_MAX)
				continue;
			for (size_t j = 0; j < tn; j++)
				if (got[q * K + i] == truth[q * K + j]) {
					hit++;
					break;
				}
		}
		sum += (double)hit / tn;
	}
	return nq ? sum / (double)nq : NAN;
}

static int search_all(vt_shard *s, const vt_bench_data *d, const uint8_t *labels, size_t n,
		      size_t nq, search_res *out, vt_errmsg *err)
{
	size_t *got = vt_malloc(nq * K * sizeof *got);
	size_t *truth = vt_malloc(nq * K * sizeof *truth);
	uint32_t *got_n = vt_malloc(nq * sizeof *got_n);
	uint32_t *truth_n = vt_malloc(nq * sizeof *truth_n);
	int rc = 0;
	if (!got || !truth || !got_n || !truth_n) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	/* Warm the index and the store's pages. */
	double w1, w2;
	size_t warm = nq < WARMUP_QUERIES ? nq : WARMUP_QUERIES;
	if ((rc = run_queries(s, d, warm, NULL, 0, "search warm-up", NULL, NULL, NULL, &w1, &w2,
			      err)))
		goto out;
	for (size_t i = 0; i < N_FILT; i++) {
		search_res *r = &out[i];
		memset(r, 0, sizeof *r);
		r->name = filt_defs[i].name;
		r->target = filt_defs[i].target;
		size_t pass = 0;
		for (size_t p = 0; p < n; p++)
			pass += (size_t)filt_pass(i, p, labels);
		r->selectivity = (double)pass / (double)n;
		vt_filter *f = NULL;
		if (filt_defs[i].json &&
		    (rc = vt_filter_parse(filt_defs[i].json, strlen(filt_defs[i].json),
					  vt_shard_schema(s), &f, err))) {
			vt_errmsg_prefix(err, rc, "filter %s", r->name);
			goto out;
		}
		char what[96];
		snprintf(what, sizeof what, "search %s exact", r->name);
		rc = run_queries(s, d, nq, f, 1, what, truth, truth_n, NULL, &r->exact_qps,
				 &r->exact_qps_cpu, err);
		if (!rc) {
			snprintf(what, sizeof what, "search %s default", r->name);
			rc = run_queries(s, d, nq, f, 0, what, got, got_n, r->strategy, &r->qps,
					 &r->qps_cpu, err);
		}
		vt_filter_free(f);
		if (rc)
			goto out;
		double hits = 0;
		for (size_t q = 0; q < nq; q++)
			hits += got_n[q];
		r->hits_avg = hits / (double)nq;
		if (filt_defs[i].json) {
			r->recall = recall_of(got, truth, truth_n, nq);
			r->exact_recall = NAN;
		} else {
			/* Unfiltered: both against the data set's exact truth. */
			size_t *gt = vt_malloc(nq * K * sizeof *gt);
			if (!gt) {
				rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
				goto out;
			}
			for (size_t q = 0; q < nq * K; q++)
				gt[q] = d->gt_ids[q];
			r->recall = recall_of(got, gt, NULL, nq);
			r->exact_recall = recall_of(truth, gt, NULL, nq);
			vt_free(gt);
		}
		fprintf(stderr, "  %s: recall@10 %.4f, %.0f QPS (exact %.0f QPS)\n", r->name,
			r->recall, r->qps, r->exact_qps);
	}
out:
	vt_free(got);
	vt_free(truth);
	vt_free(got_n);
	vt_free(truth_n);
	return rc;
}

/* ---- report --------------------------------------------------------------- */

static const char *pf(int pass)
{
	return pass ? "**PASS**" : "**FAIL**";
}

typedef struct report {
	ingest_res ing[3];
	restart_res rs;
	search_res sr[N_FILT];
	size_t n, nq;
	double cmd_mib;
	int searched;
} report;

static void print_report(const report *R)
{
	const ingest_res *as = &R->ing[2];
	const restart_res *rs = &R->rs;
	printf("\n## Targets\n\n| target | measured | need | result |\n|---|---|---|---|\n");
	if (as->measured)
		printf("| async ingest, acknowledged vectors/s | %.0f | >= %.0f | %s |\n",
		       as->rate_ack, TARGET_ASYNC_RATE, pf(as->rate_ack >= TARGET_ASYNC_RATE));
	if (rs->measured) {
		double ratio = rs->rebuild_s / rs->snap_s;
		printf("| restart: rebuild time / snapshot + WAL time | %.1fx | >= %.0fx | %s |\n",
		       ratio, TARGET_RESTART_RATIO, pf(ratio >= TARGET_RESTART_RATIO));
		printf("| restart from snapshot + WAL, seconds | %.3f | < %.1f | %s |\n", rs->snap_s,
		       TARGET_RESTART_S, pf(rs->snap_s < TARGET_RESTART_S));
	}
	for (size_t i = 0; R->searched && i < N_FILT; i++)
		if (R->sr[i].target)
			printf("| filtered recall@10, %s | %.4f | >= %.2f | %s |\n", R->sr[i].name,
			       R->sr[i].recall, TARGET_RECALL,
			       pf(R->sr[i].recall >= TARGET_RECALL));

	printf("\n## Ingest: %zu points, batches of %u, SYNC_FULL store sync\n\n", R->n, BATCH);
	printf("Commands encoded before timing (%.1f MiB). Acknowledged = until the last apply "
	       "(commit) returned; indexed = until the index covered it "
	       "(vt_shard_wait_indexed). \"others\" = CPU-s other processes used meanwhile.\n\n",
	       R->cmd_mib);
	printf("| mode | acknowledged vec/s | indexed vec/s | ack s | indexed s | batch apply "
	       "p50 / p99 / max ms | applying thread on CPU / waiting for a CPU s | our CPU-s | "
	       "others CPU-s |\n");
	printf("|---|---:|---:|---:|---:|---|---|---:|---:|\n");
	for (int m = 0; m < 3; m++) {
		const ingest_res *r = &R->ing[m];
		if (!r->measured)
			continue;
		char ix[32], ixs[32];
		snprintf(ix, sizeof ix, isfinite(r->rate_indexed) ? "%.0f" : "-", r->rate_indexed);
		snprintf(ixs, sizeof ixs, isfinite(r->indexed_s) ? "%.2f" : "-", r->indexed_s);
		printf("| %s | %.0f | %s | %.2f | %s | %.1f / %.1f / %.1f | %.2f / %.2f | %.1f | "
		       "%.1f |\n",
		       r->mode, r->rate_ack, ix, r->ack.wall_s, ixs, r->lat_p50_ms, r->lat_p99_ms,
		       r->lat_max_ms, r->oncpu_s, r->runq_s, r->ack.cpu_s, r->ack.others_s);
	}
	if (rs->measured) {
		printf("\n## Restart: %llu points\n\n", (unsigned long long)rs->points);
		printf("vt_shard_checkpoint took %.2f s (snapshot file %.1f MiB); then %zu points "
		       "were re-applied (same vectors and payloads), leaving %llu index WAL "
		       "entries; the shard was closed and reopened. Page cache warm.\n\n",
		       rs->checkpoint_s, (double)rs->snap_bytes / 1048576.0, rs->extra,
		       (unsigned long long)rs->wal_entries);
		printf("| open | seconds | our CPU-s | index points | others CPU-s |\n"
		       "|---|---:|---:|---:|---:|\n");
		printf("| snapshot + WAL replay | %.3f | %.2f | %llu | %.1f |\n", rs->snap_s,
		       rs->snap_cpu_s, (unsigned long long)rs->index_points_snap,
		       rs->snap_others_s);
		printf("| full rebuild (index.snap deleted) | %.3f | %.2f | %llu | %.1f |\n",
		       rs->rebuild_s, rs->rebuild_cpu_s,
		       (unsigned long long)rs->index_points_rebuild, rs->rebuild_others_s);
		printf("\nratio %.1fx by wall clock, %.1fx by our CPU time\n",
		       rs->rebuild_s / rs->snap_s, rs->rebuild_cpu_s / rs->snap_cpu_s);
	}
	if (!R->searched)
		return;
	printf("\n## Search: %zu queries, k=%u, one thread, one query per call, default ef, "
	       "payloads returned\n\n",
	       R->nq, K);
	printf("Recall@10 of the default search against exact filtered search (q.exact = 1) "
	       "on the same shard; unfiltered: against the data set's exact top-10. QPS by "
	       "wall clock (CPU-time QPS in the JSON).\n\n");
	printf("| filter | selectivity | planner | recall@10 | QPS | exact QPS | speed-up | "
	       "hits/query |\n|---|---:|---|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < N_FILT; i++) {
		const search_res *r = &R->sr[i];
		char plan[64] = "";
		for (int s = 0; s < 3; s++)
			if (r->strategy[s])
				snprintf(plan + strlen(plan), sizeof plan - strlen(plan), "%s%s",
					 plan[0] ? "+" : "", strategy_name(s));
		printf("| %s | %.1f%% | %s | %.4f | %.0f | %.0f | %.1fx | %.1f |\n", r->name,
		       r->selectivity * 100, plan, r->recall, r->qps, r->exact_qps,
		       r->qps / r->exact_qps, r->hits_avg);
	}
	if (R->sr[0].exact_qps > 0)
		printf("\nExact unfiltered search against the data set's truth: recall@10 %.4f "
		       "(a check of the truth).\n",
		       R->sr[0].exact_recall);
}

static void json_report(FILE *f, const report *R)
{
	fprintf(f, ",\"points\":%zu,\"queries\":%zu,\"batch\":%u,\"ingest\":[", R->n, R->nq,
		BATCH);
	int first = 1;
	for (int m = 0; m < 3; m++) {
		const ingest_res *r = &R->ing[m];
		if (!r->measured)
			continue;
		fprintf(f, "%s{\"mode\":", first ? "" : ",");
		vt_bench_json_str(f, r->mode);
		fprintf(f, ",\"points\":%zu,\"ack_s\":", r->points);
		vt_bench_json_num(f, r->ack.wall_s);
		fprintf(f, ",\"indexed_s\":");
		vt_bench_json_num(f, r->indexed_s);
		fprintf(f, ",\"rate_ack\":");
		vt_bench_json_num(f, r->rate_ack);
		fprintf(f, ",\"rate_indexed\":");
		vt_bench_json_num(f, r->rate_indexed);
		fprintf(f, ",\"batch_ms\":{\"p50\":");
		vt_bench_json_num(f, r->lat_p50_ms);
		fprintf(f, ",\"p99\":");
		vt_bench_json_num(f, r->lat_p99_ms);
		fprintf(f, ",\"max\":");
		vt_bench_json_num(f, r->lat_max_ms);
		fprintf(f, "},\"apply_thread_oncpu_s\":");
		vt_bench_json_num(f, r->oncpu_s);
		fprintf(f, ",\"apply_thread_runq_s\":");
		vt_bench_json_num(f, r->runq_s);
		fprintf(f, ",\"cpu_s\":");
		vt_bench_json_num(f, r->ack.cpu_s);
		fprintf(f, ",\"others_cpu_s\":");
		vt_bench_json_num(f, r->ack.others_s);
		fprintf(f, "}");
		first = 0;
	}
	const restart_res *rs = &R->rs;
	fprintf(f, "],\"restart\":");
	if (rs->measured) {
		fprintf(f, "{\"points\":%llu,\"checkpoint_s\":", (unsigned long long)rs->points);
		vt_bench_json_num(f, rs->checkpoint_s);
		fprintf(f, ",\"extra_points\":%zu,\"wal_entries\":%llu,\"snapshot_bytes\":%llu,"
			   "\"snapshot_wal_s\":",
			rs->extra, (unsigned long long)rs->wal_entries,
			(unsigned long long)rs->snap_bytes);
		vt_bench_json_num(f, rs->snap_s);
		fprintf(f, ",\"rebuild_s\":");
		vt_bench_json_num(f, rs->rebuild_s);
		fprintf(f, ",\"ratio\":");
		vt_bench_json_num(f, rs->rebuild_s / rs->snap_s);
		fprintf(f, ",\"cpu_s\":{\"snapshot_wal\":");
		vt_bench_json_num(f, rs->snap_cpu_s);
		fprintf(f, ",\"rebuild\":");
		vt_bench_json_num(f, rs->rebuild_cpu_s);
		fprintf(f, "}");
		fprintf(f, ",\"others_cpu_s\":{\"snapshot_wal\":");
		vt_bench_json_num(f, rs->snap_others_s);
		fprintf(f, ",\"rebuild\":");
		vt_bench_json_num(f, rs->rebuild_others_s);
		fprintf(f, "}}");
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ",\"search\":[");
	for (size_t i = 0; R->searched && i < N_FILT; i++) {
		const search_res *r = &R->sr[i];
		fprintf(f, "%s{\"filter\":", i ? "," : "");
		vt_bench_json_str(f, r->name);
		fprintf(f, ",\"json\":");
		if (filt_defs[i].json)
			vt_bench_json_str(f, filt_defs[i].json);
		else
			fprintf(f, "null");
		fprintf(f, ",\"selectivity\":");
		vt_bench_json_num(f, r->selectivity);
		fprintf(f, ",\"strategy\":{\"empty\":%d,\"scan\":%d,\"graph\":%d},\"recall\":",
			r->strategy[0], r->strategy[1], r->strategy[2]);
		vt_bench_json_num(f, r->recall);
		fprintf(f, ",\"qps\":");
		vt_bench_json_num(f, r->qps);
		fprintf(f, ",\"qps_cpu\":");
		vt_bench_json_num(f, r->qps_cpu);
		fprintf(f, ",\"exact_qps\":");
		vt_bench_json_num(f, r->exact_qps);
		fprintf(f, ",\"exact_qps_cpu\":");
		vt_bench_json_num(f, r->exact_qps_cpu);
		fprintf(f, ",\"exact_recall_vs_truth\":");
		vt_bench_json_num(f, r->exact_recall);
		fprintf(f, ",\"hits_avg\":");
		vt_bench_json_num(f, r->hits_avg);
		fprintf(f, "}");
	}
	fprintf(f, "]");
}

/* ---- main ----------------------------------------------------------------- */

static int run(const opts *o, const char *root, report *R, int *sanity_failed, vt_errmsg *err)
{
	vt_bench_data d;
	uint8_t *labels = NULL;
	vt_bench_cmds all = {0}, extra = {0};
	vt_shard *s = NULL;
	char dir[2048];
	memset(&d, 0, sizeof d);
	int rc = vt_bench_data_load("fmnist", o->n_base, o->n_queries, &d, err);
	if (!rc)
		rc = vt_bench_gt_get(&d, o->cache, 2, err);
	if (!rc)
		rc = vt_bench_gt_verify(&d, 3, err);
	if (!rc)
		rc = read_labels(d.n, &labels, err);
	if (rc)
		goto out;
	R->n = d.n;
	R->nq = d.nq;
	fprintf(stderr, "data: %zu x %u base, %zu queries; encoding batches\n", d.n, d.dim, d.nq);
	if ((rc = vt_bench_cmds_encode(&d, d.n, BATCH, shard_payload, labels, &all, err)))
		goto out;
	if ((rc = vt_bench_cmds_encode(&d, o->n_extra < d.n ? o->n_extra : d.n, BATCH, shard_payload,
					labels, &extra, err)))
		goto out;
	R->cmd_mib = (double)all.bytes / 1048576.0;

	snprintf(dir, sizeof dir, "%s/store", root);
	if ((o->steps & STEP_STORE) && (rc = ingest_store(dir, &d, labels, d.n, &R->ing[0], err)))
		goto out;
	snprintf(dir, sizeof dir, "%s/sync", root);
	if ((o->steps & STEP_SYNC) &&
	    (rc = ingest_shard(dir, &d, &all, d.n, VT_INDEX_SYNC, &R->ing[1], NULL, err)))
		goto out;
	if (!(o->steps & (STEP_ASYNC | STEP_RESTART | STEP_SEARCH)))
		goto out;
	snprintf(dir, sizeof dir, "%s/async", root);
	if ((rc = ingest_shard(dir, &d, &all, d.n, VT_INDEX_ASYNC, &R->ing[2], &s, err)))
		goto out;
	if (!(o->steps & (STEP_RESTART | STEP_SEARCH)))
		goto out;
	if (o->steps & STEP_RESTART) {
		vt_shard *s2 = NULL;
		rc = restart_snapshot(dir, s, &extra, &R->rs, &s2, err);
		s = s2;
		if (rc)
			goto out;
		if (R->rs.index_points_snap != R->rs.points || R->rs.points != d.n) {
			fprintf(stderr, "sanity: after restart %llu points stored, %llu indexed, "
					"%zu expected\n",
				(unsigned long long)R->rs.points,
				(unsigned long long)R->rs.index_points_snap, d.n);
			*sanity_failed = 1;
		}
	}
	if (o->steps & STEP_SEARCH) {
		if ((rc = search_all(s, &d, labels, d.n, d.nq, R->sr, err)))
			goto out;
		R->searched = 1;
		for (size_t i = 0; i < N_FILT; i++)
			if (!(R->sr[i].recall >= SANITY_RECALL)) {
				fprintf(stderr, "sanity: recall@10 %.4f < %.2f for %s\n",
					R->sr[i].recall, SANITY_RECALL, R->sr[i].name);
				*sanity_failed = 1;
			}
	}
	if (o->steps & STEP_RESTART) {
		vt_shard_close(s);
		s = NULL;
		if ((rc = restart_rebuild(dir, &R->rs, err)))
			goto out;
		if (R->rs.index_points_rebuild != d.n) {
			fprintf(stderr, "sanity: the rebuilt index holds %llu points, %zu expected\n",
				(unsigned long long)R->rs.index_points_rebuild, d.n);
			*sanity_failed = 1;
		}
	}
out:
	vt_shard_close(s);
	vt_bench_cmds_free(&all);
	vt_bench_cmds_free(&extra);
	vt_free(labels);
	vt_bench_data_free(&d);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vt_bench_shard [options]\n"
		"Measures lib/shard on Fashion-MNIST (L2, M=16, efC=200, payload fields bucket,\n"
		"label, tag indexed): acknowledged ingest rate in batches of %u (store only,\n"
		"shard sync, shard async; SYNC_FULL), restart time from snapshot + WAL vs a full\n"
		"rebuild, and QPS and recall@10 of filtered searches vs exact filtered search.\n\n"
		"  --base N      points (first N of the 60,000) [all]\n"
		"  --queries N   search queries (first N of the 10,000) [1000]\n"
		"  --extra N     points re-applied after the checkpoint, for the WAL [2000]\n"
		"  --quick       5,000 points, 200 queries, 500 extra (the smoke test)\n"
		"  --dir DIR     parent of the run's shard directory, which is removed at the\n"
		"                end unless --keep [./build]\n"
		"  --keep        keep the shard directories\n"
		"  --steps LIST  store,sync,async,restart,search (comma list; restart and\n"
		"                search run on the async shard, so they ingest it) [all]\n"
		"  --json PATH   also write the results as JSON\n"
		"  --cache DIR   ground truth cache [$VT_BENCH_CACHE or ./build/bench-cache]\n"
		"Exit status: 0, 1 on an error, 2 if a sanity check failed (a recall@10 below\n"
		"%.2f, or an index that does not hold every stored point). Targets never fail.\n",
		BATCH, SANITY_RECALL);
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
	enum { O_BASE = 1, O_QUERIES, O_EXTRA, O_QUICK, O_DIR, O_KEEP, O_JSON, O_CACHE, O_STEPS,
	       O_HELP };
	static const struct option lo[] = {
		{"base", required_argument, 0, O_BASE},
		{"queries", required_argument, 0, O_QUERIES},
		{"extra", required_argument, 0, O_EXTRA},
		{"quick", no_argument, 0, O_QUICK},
		{"dir", required_argument, 0, O_DIR},
		{"keep", no_argument, 0, O_KEEP},
		{"json", required_argument, 0, O_JSON},
		{"cache", required_argument, 0, O_CACHE},
		{"steps", required_argument, 0, O_STEPS},
		{"help", no_argument, 0, O_HELP},
		{0, 0, 0, 0},
	};
	int base_set = 0, queries_set = 0, extra_set = 0, c;
	const char *env = getenv("VT_BENCH_CACHE");
	memset(o, 0, sizeof *o);
	snprintf(o->cache, sizeof o->cache, "%s", env && *env ? env : "./build/bench-cache");
	snprintf(o->parent, sizeof o->parent, "./build");
	o->n_queries = 1000;
	o->n_extra = 2000;
	o->steps = STEP_ALL;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_BASE:
			if (parse_size(optarg, &o->n_base) || o->n_base > 60000)
				goto bad;
			base_set = 1;
			break;
		case O_QUERIES:
			if (parse_size(optarg, &o->n_queries) || o->n_queries > 10000)
				goto bad;
			queries_set = 1;
			break;
		case O_EXTRA:
			if (parse_size(optarg, &o->n_extra))
				goto bad;
			extra_set = 1;
			break;
		case O_QUICK:
			o->quick = 1;
			break;
		case O_DIR:
			snprintf(o->parent, sizeof o->parent, "%s", optarg);
			break;
		case O_KEEP:
			o->keep = 1;
			break;
		case O_JSON:
			o->json_path = optarg;
			break;
		case O_CACHE:
			snprintf(o->cache, sizeof o->cache, "%s", optarg);
			break;
		case O_STEPS: {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof buf, "%s", optarg);
			o->steps = 0;
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				unsigned i = 0;
				while (i < 5 && strcmp(t, step_names[i]) != 0)
					i++;
				if (i == 5)
					goto bad;
				o->steps |= 1u << i;
			}
			if (!o->steps)
				goto bad;
			break;
		}
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vt_bench_shard: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->quick) {
		if (!base_set)
			o->n_base = 5000;
		if (!queries_set)
			o->n_queries = 200;
		if (!extra_set)
			o->n_extra = 500;
	}
	return 0;
bad:
	fprintf(stderr, "vt_bench_shard: bad option value '%s'\n", optarg ? optarg : "");
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	opts o;
	char cmd[2048], model[256], root[1100];
	vt_errmsg err;
	struct utsname un;
	static report R;
	int sanity_failed = 0;

	vt_errmsg_clear(&err);
	vt_bench_command_line(argc, argv, cmd, sizeof cmd);
	if (parse_args(argc, argv, &o) != 0)
		return 1;
	if (mkdir(o.parent, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "vt_bench_shard: mkdir %s: %s\n", o.parent, strerror(errno));
		return 1;
	}
	snprintf(root, sizeof root, "%s/vt_bench_shard.XXXXXX", o.parent);
	if (!mkdtemp(root)) {
		fprintf(stderr, "vt_bench_shard: mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}

	vt_bench_cpu_model(model, sizeof model);
	if (uname(&un) != 0)
		memset(&un, 0, sizeof un);
	printf("# vt_bench_shard\n\ncommand: `%s`\n\n", cmd);
	printf("machine: %s, %ld online CPUs, kernel %s; shards in %s; load average %.2f at "
	       "start\n",
	       model, sysconf(_SC_NPROCESSORS_ONLN), un.release, root, vt_bench_loadavg1());
	fflush(stdout);

	int rc = run(&o, root, &R, &sanity_failed, &err);
	double load_end = vt_bench_loadavg1();
	if (rc) {
		fprintf(stderr, "vt_bench_shard: %s (%s)\n", err.msg, vt_errname(rc));
	} else {
		print_report(&R);
		printf("\nload average %.2f at the end\n", load_end);
	}
	if (!rc && o.json_path) {
		FILE *json = fopen(o.json_path, "w");
		if (!json) {
			fprintf(stderr, "vt_bench_shard: open %s: %s\n", o.json_path, strerror(errno));
			rc = VT_EIO;
		} else {
			vt_bench_json_begin(json, "shard", cmd, model, un.release);
			fprintf(json, ",\"load_end\":");
			vt_bench_json_num(json, load_end);
			fprintf(json, "},\"params\":{\"m\":16,\"ef_construction\":200,\"ef_search\":64,"
				      "\"k\":%u,\"store_sync\":\"full\"}",
				K);
			json_report(json, &R);
			fprintf(json, "}\n");
			if (fclose(json) != 0) {
				fprintf(stderr, "vt_bench_shard: write %s: %s\n", o.json_path,
					strerror(errno));
				rc = VT_EIO;
			}
		}
	}
	if (!o.keep)
		vt_bench_rm_rf("vt_bench_shard", root);
	if (rc)
		return 1;
	if (sanity_failed) {
		fprintf(stderr, "vt_bench_shard: sanity check failed\n");
		return 2;
	}
	return 0;
}
