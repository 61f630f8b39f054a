/* bench_hnsw.c: vt_bench_hnsw, Vectron's HNSW index (float32, int8, int8
 * with the floats in a mapped file) against hnswlib in one process: build
 * rates on 1 and N threads, memory, and QPS at recall targets from
 * interleaved ef sweeps. Not a pass/fail performance test: only a sanity
 * floor (recall, errors) sets the exit status; the ratios are reported. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/progress.h"
#include "common.h"
#include "dataset.h"
#include "hnsw/hnsw.h"
#include "ref_hnswlib.h"
#include "simd/simd.h"

#define K ((int)VT_BENCH_GT_K)
#define HNSW_M 16u
#define HNSW_EFC 200u
#define MAX_EF 64
#define MAX_PASSES 16
#define MAX_MT 4
#define MAX_THREADS 64
#define BUILD_CHUNK 16
/* The recall every system must reach at the largest ef, or the run fails:
 * below it something is broken, not slow. */
#define SANITY_RECALL 0.90
/* Queries and ef of the graph check after a multi-threaded build. */
#define CHECK_QUERIES 500
#define CHECK_EF 64u
/* Untimed queries before each sweep. */
#define WARMUP_QUERIES 300

static const uint32_t default_efs[] = {10, 12, 14, 16, 20, 24, 28, 32, 40, 48,
				       64, 96, 128, 192, 256};
static const double recall_targets[3] = {0.90, 0.95, 0.99};

/* ---- the systems -------------------------------------------------------- */

enum { SYS_REF, SYS_F32, SYS_I8, SYS_I8MAP, SYS_N };

typedef struct sys_def {
	const char *name;
	int vectron; /* 0: hnswlib */
	int quant;   /* enum vt_quant */
	int mapped;  /* floats in a file (vectors_path) */
	int mt_build; /* also built on the --threads counts */
} sys_def;

static const sys_def sys_defs[SYS_N] = {
	{"hnswlib", 0, VT_QUANT_NONE, 0, 1},
	{"vectron-f32", 1, VT_QUANT_NONE, 0, 1},
	{"vectron-int8", 1, VT_QUANT_INT8, 0, 1},
	{"vectron-int8-mmap", 1, VT_QUANT_INT8, 1, 0},
};

/* One index of either kind behind the same three calls, so both go
 * through the same harness. */
typedef struct bindex {
	const sys_def *def;
	vt_bench_ref *ref;
	vt_hnsw *vt;
	float oversampling; /* int8 re-score factor, 0 = library default */
} bindex;

typedef struct opts {
	const char *datasets[8];
	int n_datasets;
	size_t n_base, n_queries;
	int passes;
	int mt[MAX_MT];
	int n_mt;
	uint32_t efs[MAX_EF];
	size_t n_ef;
	const char *json_path;
	char cache[4096];
	int quick;
	int build_reps;
	float oversampling;
	int gt_threads;
	int sys_on[SYS_N];
} opts;

typedef struct build_res {
	int threads;
	double wall_s, cpu_s;
	double rss_mib, anon_mib, file_mib; /* growth while building */
	double alloc_mib;     /* vt_alloc_bytes growth (Vectron) */
	double check_recall;  /* child builds: recall@10 at CHECK_EF */
	int reps;             /* builds timed; wall_s and cpu_s are the best */
	double others_s;      /* CPU time other processes used meanwhile */
} build_res;

typedef struct point {
	uint32_t ef;
	double recall;      /* id overlap with the exact top-10 */
	double recall_dist; /* returned within the exact 10th distance */
	double qps_cpu, qps_wall; /* best over passes */
	double qps_cpu_pass[MAX_PASSES];
	int recall_varies;  /* passes disagreed (a nondeterministic search) */
} point;

enum { AT_OK = 0, AT_BOUND = 1, AT_NOT_REACHED = 2 };

typedef struct sys_res {
	const sys_def *def;
	int on;
	bindex ix;
	build_res b1;
	build_res bmt[MAX_MT];
	int n_bmt;
	double own_mib;        /* the index's own count of RAM bytes */
	double own_mapped_mib; /* floats in the mapped file */
	char own_detail[256];
	double file_mib_after; /* RssFile growth after the sweeps (mapped) */
	point pts[MAX_EF];
	double at_qps[3], at_qps_wall[3];
	int at_status[3];
	double max_recall;
	double sweep_wall_s;   /* all passes */
	double sweep_others_s; /* CPU time other processes used meanwhile */
} sys_res;

/* ---- small helpers ------------------------------------------------------ */

typedef struct mem_snap {
	long rss_kb, anon_kb, file_kb, hwm_kb;
} mem_snap;

static int mem_read(mem_snap *m, vt_errmsg *err)
{
	char line[256];
	memset(m, 0, sizeof *m);
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "open /proc/self/status: %s",
				     strerror(errno));
	int seen = 0;
	while (fgets(line, sizeof line, f)) {
		long v;
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			m->rss_kb = v, seen |= 1;
		else if (sscanf(line, "RssAnon: %ld", &v) == 1)
			m->anon_kb = v, seen |= 2;
		else if (sscanf(line, "RssFile: %ld", &v) == 1)
			m->file_kb = v, seen |= 4;
		else if (sscanf(line, "VmHWM: %ld", &v) == 1)
			m->hwm_kb = v, seen |= 8;
	}
	fclose(f);
	if (seen != 15)
		return vt_errmsg_set(err, VT_EIO, "/proc/self/status lacks VmRSS/RssAnon/RssFile/VmHWM");
	return 0;
}

static double kb_mib(long kb)
{
	return (double)kb / 1024.0;
}

static double b_mib(double b)
{
	return b / (1024.0 * 1024.0);
}

/* ---- index wrappers ----------------------------------------------------- */

static int bindex_create(bindex *ix, const sys_def *def, const vt_bench_data *d,
			 const char *vec_path, float oversampling, vt_errmsg *err)
{
	int rc;
	memset(ix, 0, sizeof *ix);
	ix->def = def;
	ix->oversampling = oversampling;
	if (!def->vectron) {
		rc = vt_bench_ref_create(d->dim, d->dist == VT_BENCH_COS, d->n, HNSW_M,
					 HNSW_EFC, 100, &ix->ref);
		if (rc)
			return vt_errmsg_set(err, rc, "hnswlib: create: %s", vt_strerror(rc));
		return 0;
	}
	vt_hnsw_params p;
	vt_hnsw_params_default(&p, d->dim,
			       d->dist == VT_BENCH_L2 ? VT_METRIC_L2 : VT_METRIC_COSINE);
	p.m = HNSW_M;
	p.ef_construction = HNSW_EFC;
	p.quant = def->quant;
	p.vectors_path = def->mapped ? vec_path : NULL;
	p.initial_capacity = d->n; /* as hnswlib's max_elements */
	rc = vt_hnsw_create(&p, &ix->vt, err);
	if (rc)
		return vt_errmsg_prefix(err, rc, "%s: create", def->name);
	return 0;
}

static inline int bindex_insert(bindex *ix, uint64_t label, const float *v)
{
	return ix->vt ? vt_hnsw_insert(ix->vt, label, v) : vt_bench_ref_add(ix->ref, label, v);
}

/* One query, top K labels into labels[K] (padded with UINT64_MAX). */
static inline int bindex_search(bindex *ix, const float *q, uint32_t ef, uint64_t *labels)
{
	size_t n = 0;
	int rc;
	if (ix->vt) {
		vt_hnsw_query qq;
		vt_hnsw_hit hits[K];
		vt_hnsw_query_default(&qq, K);
		qq.ef = ef;
		if (ix->oversampling > 0)
			qq.oversampling = ix->oversampling;
		rc = vt_hnsw_search(ix->vt, q, &qq, hits, &n);
		for (size_t i = 0; i < n && i < K; i++)
			labels[i] = hits[i].label;
	} else {
		float dists[K];
		rc = vt_bench_ref_search(ix->ref, q, K, ef, labels, dists, &n);
	}
	for (size_t i = n; i < K; i++)
		labels[i] = UINT64_MAX;
	return rc;
}

static void bindex_destroy(bindex *ix)
{
	vt_hnsw_destroy(ix->vt);
	vt_bench_ref_destroy(ix->ref);
	ix->vt = NULL;
	ix->ref = NULL;
}

/* The index's own count of the RAM it holds, and of mapped floats. */
static void bindex_own(bindex *ix, int threads, double *ram_mib, double *mapped_mib,
		       char *detail, size_t cap)
{
	if (ix->ref) {
		vt_bench_ref_mem m;
		vt_bench_ref_mem_get(ix->ref, threads, &m);
		*ram_mib = b_mib((double)m.total);
		*mapped_mib = 0;
		snprintf(detail, cap,
			 "level0 %.1f, upper %.1f, locks %.1f, label map %.1f, visited %.1f, other %.1f MiB",
			 b_mib((double)m.level0), b_mib((double)m.upper), b_mib((double)m.locks),
			 b_mib((double)m.label_map), b_mib((double)m.visited),
			 b_mib((double)m.other));
		return;
	}
	vt_hnsw_stats st;
	vt_hnsw_stats_get(ix->vt, &st);
	double ram = (double)st.bytes_graph + (double)st.bytes_vectors +
		     (double)st.bytes_codes + (double)st.bytes_other;
	*ram_mib = b_mib(ram);
	*mapped_mib = b_mib((double)st.bytes_vectors_mapped);
	snprintf(detail, cap,
		 "graph %.1f, vectors %.1f, codes %.1f, other %.1f, mapped %.1f MiB; max level %u",
		 b_mib((double)st.bytes_graph), b_mib((double)st.bytes_vectors),
		 b_mib((double)st.bytes_codes), b_mib((double)st.bytes_other),
		 b_mib((double)st.bytes_vectors_mapped), st.max_level);
}

/* ---- building ----------------------------------------------------------- */

typedef struct build_job {
	bindex *ix;
	const vt_bench_data *d;
	atomic_size_t next;
	atomic_size_t done;
	atomic_int rc;
	atomic_size_t bad; /* the label whose insert failed */
	uint64_t cpu_ns[MAX_THREADS];
	uint64_t end_ns[MAX_THREADS]; /* monotonic time each worker finished */
} build_job;

typedef struct build_arg {
	build_job *job;
	int idx;
} build_arg;

/* Each thread takes the next BUILD_CHUNK ids from a shared counter, the
 * same way for both systems. */
static void *build_worker(void *p)
{
	build_arg *a = p;
	build_job *job = a->job;
	const vt_bench_data *d = job->d;
	uint64_t c0 = vt_clock_thread_cpu_ns();
	for (;;) {
		size_t i0 = atomic_fetch_add(&job->next, BUILD_CHUNK);
		if (i0 >= d->n || atomic_load(&job->rc))
			break;
		size_t i1 = i0 + BUILD_CHUNK < d->n ? i0 + BUILD_CHUNK : d->n;
		for (size_t i = i0; i < i1; i++) {
			int rc = bindex_insert(job->ix, i, d->base + i * d->dim);
			if (rc) {
				int zero = 0;
				if (atomic_compare_exchange_strong(&job->rc, &zero, rc))
					atomic_store(&job->bad, i);
				goto out;
			}
		}
		atomic_fetch_add(&job->done, i1 - i0);
	}
out:
	job->cpu_ns[a->idx] = vt_clock_thread_cpu_ns() - c0;
	job->end_ns[a->idx] = vt_clock_mono_ns();
	return NULL;
}

/* Creates ix and inserts every base vector from `threads` threads, in this
 * process; fills the time and memory fields of *r. */
static int build_here(const sys_def *def, const vt_bench_data *d, const opts *o, int threads,
		      const char *vec_path, bindex *ix, build_res *r, vt_errmsg *err)
{
	pthread_t tid[MAX_THREADS];
	build_arg args[MAX_THREADS];
	build_job job;
	mem_snap m0, m1;
	int started = 0, rc;
	char what[96];

	memset(r, 0, sizeof *r);
	memset(&job, 0, sizeof job);
	r->threads = threads;
	r->check_recall = -1;
	/* Give freed memory back first so the growth below is this index's. */
	malloc_trim(0);
	rc = mem_read(&m0, err);
	if (rc)
		return rc;
	int64_t a0 = vt_alloc_bytes();
	double busy0 = vt_bench_machine_busy_s();
	uint64_t w0 = vt_clock_mono_ns();
	rc = bindex_create(ix, def, d, vec_path, o->oversampling, err);
	if (rc)
		return rc;
	job.ix = ix;
	job.d = d;
	snprintf(what, sizeof what, "build %s %s %dt", d->name, def->name, threads);
	vt_progress pr;
	vt_progress_start(&pr, stderr, what, d->n);
	for (; started < threads; started++) {
		args[started].job = &job;
		args[started].idx = started;
		int e = pthread_create(&tid[started], NULL, build_worker, &args[started]);
		if (e) {
			atomic_store(&job.rc, VT_EINTERNAL);
			rc = vt_errmsg_set(err, VT_EINTERNAL, "pthread_create: %s", strerror(e));
			break;
		}
	}
	while (started > 0 && atomic_load(&job.done) < d->n && !atomic_load(&job.rc)) {
		vt_progress_update(&pr, atomic_load(&job.done));
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (rc)
		goto err;
	rc = atomic_load(&job.rc);
	if (rc) {
		vt_errmsg_set(err, rc, "%s: insert of label %zu: %s", def->name,
			      (size_t)atomic_load(&job.bad), vt_strerror(rc));
		goto err;
	}
	/* The build ends when the last worker does, not when this thread
	 * wakes up from its progress nap. */
	uint64_t w1 = w0;
	for (int i = 0; i < threads; i++) {
		r->cpu_s += (double)job.cpu_ns[i] / 1e9;
		if (job.end_ns[i] > w1)
			w1 = job.end_ns[i];
	}
	r->wall_s = (double)(w1 - w0) / 1e9;
	r->others_s = vt_bench_others_cpu(busy0, vt_bench_machine_busy_s(), r->cpu_s);
	vt_progress_done(&pr, d->n);
	rc = mem_read(&m1, err);
	if (rc)
		goto err;
	r->rss_mib = kb_mib(m1.rss_kb - m0.rss_kb);
	r->anon_mib = kb_mib(m1.anon_kb - m0.anon_kb);
	r->file_mib = kb_mib(m1.file_kb - m0.file_kb);
	r->alloc_mib = def->vectron ? b_mib((double)(vt_alloc_bytes() - a0)) : 0;
	return 0;
err:
	bindex_destroy(ix);
	return rc;
}

/* Recall@K of the first `nq` queries at `ef` (untimed). */
static double quick_recall(bindex *ix, const vt_bench_data *d, size_t nq, uint32_t ef)
{
	uint64_t lab[K];
	size_t hit = 0;
	if (nq > d->nq)
		nq = d->nq;
	for (size_t q = 0; q < nq; q++) {
		if (bindex_search(ix, d->queries + q * d->dim, ef, lab))
			return -1;
		for (int i = 0; i < K; i++)
			for (int j = 0; j < K; j++)
				if (lab[i] == d->gt_ids[q * K + j]) {
					hit++;
					break;
				}
	}
	return nq ? (double)hit / (double)(nq * K) : 0;
}

typedef struct child_msg {
	int rc;
	build_res r;
	char msg[VT_ERRMSG_SIZE];
} child_msg;

/* A multi-threaded build runs in a forked child: the parent's heap, where
 * the searched indexes live and their memory is measured, never sees it,
 * and the child's whole address space goes away with it. The child also
 * checks the graph it built (recall at CHECK_EF), so a race that breaks
 * the graph shows here. */
static int build_child(const sys_def *def, const vt_bench_data *d, const opts *o, int threads,
		       const char *vec_path, build_res *out, vt_errmsg *err)
{
	int fds[2];
	child_msg m;
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) != 0)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return vt_errmsg_set(err, vt_err_from_errno(e), "fork: %s", strerror(e));
	}
	if (pid == 0) {
		bindex ix;
		vt_errmsg e;
		vt_errmsg_clear(&e);
		memset(&m, 0, sizeof m);
		close(fds[0]);
		m.rc = build_here(def, d, o, threads, vec_path, &ix, &m.r, &e);
		if (m.rc == 0) {
			m.r.check_recall = quick_recall(&ix, d, CHECK_QUERIES, CHECK_EF);
			if (m.r.check_recall < 0)
				m.rc = vt_errmsg_set(&e, VT_EINTERNAL, "search failed");
		}
		snprintf(m.msg, sizeof m.msg, "%s", e.msg);
		const char *p = (const char *)&m;
		size_t left = sizeof m;
		while (left > 0) {
			ssize_t w = write(fds[1], p, left);
			if (w <= 0)
				_exit(3);
			p += w;
			left -= (size_t)w;
		}
		/* No destroy: the process is about to vanish, which frees it
		 * faster. */
		_exit(m.rc ? 1 : 0);
	}
	close(fds[1]);
	size_t got = 0;
	while (got < sizeof m) {
		ssize_t r = read(fds[0], (char *)&m + got, sizeof m - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof m)
		return vt_errmsg_set(err, VT_EINTERNAL, "%s %dt build child died (status 0x%x)",
				     def->name, threads, status);
	if (m.rc)
		return vt_errmsg_set(err, m.rc, "%s %dt build (child): %s", def->name, threads,
				     m.msg);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return vt_errmsg_set(err, VT_EINTERNAL, "%s %dt build child exit status 0x%x",
				     def->name, threads, status);
	*out = m.r;
	return 0;
}

/* `reps` child builds on `threads` threads; *out gets the fastest, with
 * the lowest graph check of them all. */
static int build_timed(const sys_def *def, const vt_bench_data *d, const opts *o, int threads,
		       const char *vec_path, int reps, build_res *out, int *sanity_failed,
		       vt_errmsg *err)
{
	build_res r;
	double worst_check = 2;
	for (int i = 0; i < reps; i++) {
		int rc = build_child(def, d, o, threads, vec_path, &r, err);
		if (rc)
			return rc;
		if (r.check_recall < SANITY_RECALL) {
			fprintf(stderr,
				"SANITY: %s %s built on %d threads: recall@10 at ef %u is %.4f < %.2f\n",
				d->name, def->name, threads, CHECK_EF, r.check_recall,
				SANITY_RECALL);
			*sanity_failed = 1;
		}
		worst_check = fmin(worst_check, r.check_recall);
		if (i == 0 || r.wall_s < out->wall_s)
			*out = r;
	}
	out->check_recall = worst_check;
	out->reps = reps;
	return 0;
}

/* ---- searching ---------------------------------------------------------- */

static double recall_ids(const vt_bench_data *d, const uint64_t *labels)
{
	size_t hit = 0;
	for (size_t q = 0; q < d->nq; q++) {
		const uint64_t *l = labels + q * K;
		const uint32_t *g = d->gt_ids + q * K;
		for (int i = 0; i < K; i++)
			for (int j = 0; j < K; j++)
				if (l[i] == g[j]) {
					hit++;
					break;
				}
	}
	return (double)hit / (double)(d->nq * K);
}

/* ann-benchmarks' definition: a returned point counts if its exact
 * distance is within the exact 10th distance (ties count). */
static double recall_dist(const vt_bench_data *d, const uint64_t *labels)
{
	size_t hit = 0;
	for (size_t q = 0; q < d->nq; q++) {
		double lim = d->gt_dist[q * K + K - 1];
		lim += fabs(lim) * 1e-12;
		for (int i = 0; i < K; i++) {
			uint64_t l = labels[q * K + i];
			if (l < d->n && vt_bench_exact_dist(d, q, l) <= lim)
				hit++;
		}
	}
	return (double)hit / (double)(d->nq * K);
}

/* Every returned label must be a real id and appear once per query. */
static int labels_valid(const vt_bench_data *d, const uint64_t *labels, vt_errmsg *err,
			const char *who, uint32_t ef)
{
	for (size_t q = 0; q < d->nq; q++) {
		const uint64_t *l = labels + q * K;
		for (int i = 0; i < K; i++) {
			if (l[i] == UINT64_MAX)
				return vt_errmsg_set(err, VT_EINTERNAL,
						     "%s ef %u query %zu: only %d of %d results",
						     who, ef, q, i, K);
			if (l[i] >= d->n)
				return vt_errmsg_set(err, VT_EINTERNAL,
						     "%s ef %u query %zu: label %llu out of range",
						     who, ef, q, (unsigned long long)l[i]);
			for (int j = 0; j < i; j++)
				if (l[j] == l[i])
					return vt_errmsg_set(err, VT_EINTERNAL,
							     "%s ef %u query %zu: label %llu twice",
							     who, ef, q,
							     (unsigned long long)l[i]);
		}
	}
	return 0;
}

/* One pass over every ef: all queries, one per call, on this thread. */
static int sweep(sys_res *s, const vt_bench_data *d, const opts *o, int pass,
		 uint64_t *labels, vt_errmsg *err)
{
	char what[96];
	vt_progress pr;
	snprintf(what, sizeof what, "search %s %s pass %d/%d", d->name, s->def->name,
		 pass + 1, o->passes);
	/* Untimed warm-up, so the first ef point does not pay for caches and
	 * TLBs the previous system's sweep took over. */
	for (size_t q = 0; q < d->nq && q < WARMUP_QUERIES; q++) {
		int rc = bindex_search(&s->ix, d->queries + q * d->dim, CHECK_EF, labels);
		if (rc)
			return vt_errmsg_set(err, rc, "%s: warm-up search: %s", s->def->name,
					     vt_strerror(rc));
	}
	vt_progress_start(&pr, stderr, what, o->n_ef * d->nq);
	for (size_t e = 0; e < o->n_ef; e++) {
		point *pt = &s->pts[e];
		uint32_t ef = o->efs[e];
		double busy0 = vt_bench_machine_busy_s();
		uint64_t w0 = vt_clock_mono_ns(), c0 = vt_clock_thread_cpu_ns();
		for (size_t q = 0; q < d->nq; q++) {
			int rc = bindex_search(&s->ix, d->queries + q * d->dim, ef, labels + q * K);
			if (rc)
				return vt_errmsg_set(err, rc, "%s: search ef %u query %zu: %s",
						     s->def->name, ef, q, vt_strerror(rc));
		}
		uint64_t c1 = vt_clock_thread_cpu_ns(), w1 = vt_clock_mono_ns();
		double cpu = (double)(c1 - c0) / 1e9, wall = (double)(w1 - w0) / 1e9;
		s->sweep_wall_s += wall;
		s->sweep_others_s += vt_bench_others_cpu(busy0, vt_bench_machine_busy_s(), cpu);
		double qc = cpu > 0 ? (double)d->nq / cpu : 0, qw = wall > 0 ? (double)d->nq / wall : 0;
		pt->ef = ef;
		pt->qps_cpu_pass[pass] = qc;
		if (qc > pt->qps_cpu)
			pt->qps_cpu = qc;
		if (qw > pt->qps_wall)
			pt->qps_wall = qw;
		int rc = labels_valid(d, labels, err, s->def->name, ef);
		if (rc)
			return rc;
		double r = recall_ids(d, labels);
		if (pass == 0) {
			pt->recall = r;
			pt->recall_dist = recall_dist(d, labels);
		} else if (r != pt->recall) {
			pt->recall_varies = 1;
		}
		vt_progress_update(&pr, (e + 1) * d->nq);
	}
	vt_progress_done(&pr, o->n_ef * d->nq);
	return 0;
}

/* QPS at a recall target: linear in log(QPS) against log(1 - recall)
 * between the two sweep points around the first crossing. */
static void qps_at(const point *pts, size_t n, double target, int wall, double *qps,
		   int *status)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (pts[i].recall >= target)
			break;
	if (i == n) {
		*qps = 0;
		*status = AT_NOT_REACHED;
		return;
	}
	double y1 = log(wall ? pts[i].qps_wall : pts[i].qps_cpu);
	if (i == 0) {
		/* Already past the target at the smallest ef: a lower bound. */
		*qps = exp(y1);
		*status = AT_BOUND;
		return;
	}
	double y0 = log(wall ? pts[i - 1].qps_wall : pts[i - 1].qps_cpu);
	double x0 = log(fmax(1 - pts[i - 1].recall, 1e-6));
	double x1 = log(fmax(1 - pts[i].recall, 1e-6));
	double xt = log(1 - target);
	double t = x0 == x1 ? 1 : (xt - x0) / (x1 - x0);
	*qps = exp(y0 + t * (y1 - y0));
	*status = AT_OK;
}

/* ---- reporting ---------------------------------------------------------- */

typedef struct target {
	char what[96];
	double ratio;   /* vectron / hnswlib (memory: vectron / hnswlib) */
	double need;
	int at_most;    /* the ratio must be <= need (memory) */
	int defined;    /* 0: a side is missing */
	int info;       /* no target: reported only */
	char qual;      /* ' ', '>' (lower bound), '<' (upper bound), '~' */
	int pass;
} target;

static const char *fmt_qps(char *buf, size_t cap, double q, int status)
{
	if (status == AT_NOT_REACHED)
		snprintf(buf, cap, "not reached");
	else
		snprintf(buf, cap, "%s%.0f", status == AT_BOUND ? ">=" : "", q);
	return buf;
}

static void target_qps(target *t, const sys_res *v, const sys_res *h, int ti, double need,
		       const char *label)
{
	memset(t, 0, sizeof *t);
	snprintf(t->what, sizeof t->what, "%s QPS@%.2f vs hnswlib", label, recall_targets[ti]);
	t->need = need;
	t->qual = ' ';
	if (!v->on || !h->on)
		return;
	t->defined = 1;
	if (v->at_status[ti] == AT_NOT_REACHED) {
		t->ratio = 0;
		t->pass = 0;
		return;
	}
	if (h->at_status[ti] == AT_NOT_REACHED) {
		t->ratio = INFINITY;
		t->pass = 1;
		return;
	}
	t->ratio = v->at_qps[ti] / h->at_qps[ti];
	int vb = v->at_status[ti] == AT_BOUND, hb = h->at_status[ti] == AT_BOUND;
	t->qual = vb && hb ? '~' : vb ? '>' : hb ? '<' : ' ';
	t->pass = t->ratio >= need;
}

static void target_build(target *t, const sys_res *v, const sys_res *h, int threads,
			 double need)
{
	memset(t, 0, sizeof *t);
	snprintf(t->what, sizeof t->what, "%s build vec/s %dt vs hnswlib", v->def->name, threads);
	t->need = need;
	t->qual = ' ';
	const build_res *bv = NULL, *bh = NULL;
	if (threads == 1) {
		bv = v->on ? &v->b1 : NULL;
		bh = h->on ? &h->b1 : NULL;
	} else {
		for (int i = 0; i < v->n_bmt; i++)
			if (v->bmt[i].threads == threads)
				bv = &v->bmt[i];
		for (int i = 0; i < h->n_bmt; i++)
			if (h->bmt[i].threads == threads)
				bh = &h->bmt[i];
	}
	if (!bv || !bh || bv->wall_s <= 0 || bh->wall_s <= 0)
		return;
	t->defined = 1;
	t->ratio = bh->wall_s / bv->wall_s;
	t->pass = t->ratio >= need;
}

static void print_target(const target *t)
{
	if (!t->defined) {
		if (t->info)
			printf("| %s | n/a | - | not measured |\n", t->what);
		else
			printf("| %s | n/a | %s %.2f | not measured |\n", t->what,
			       t->at_most ? "<=" : ">=", t->need);
		return;
	}
	char r[32];
	if (isinf(t->ratio))
		snprintf(r, sizeof r, "inf (hnswlib not reached)");
	else if (t->ratio == 0 && !t->at_most)
		snprintf(r, sizeof r, "0 (not reached)");
	else
		snprintf(r, sizeof r, "%s%.2fx",
			 t->qual == '>' ? ">=" : t->qual == '<' ? "<=" : t->qual == '~' ? "~" : "",
			 t->ratio);
	if (t->info)
		printf("| %s | %s | - | info |\n", t->what, r);
	else
		printf("| %s | %s | %s %.2f | **%s** |\n", t->what, r, t->at_most ? "<=" : ">=",
		       t->need, t->pass ? "PASS" : "FAIL");
}

static void json_build(FILE *f, const build_res *b, size_t n)
{
	fprintf(f, "{\"threads\":%d,\"wall_s\":", b->threads);
	vt_bench_json_num(f, b->wall_s);
	fprintf(f, ",\"cpu_s\":");
	vt_bench_json_num(f, b->cpu_s);
	fprintf(f, ",\"vec_per_s\":");
	vt_bench_json_num(f, b->wall_s > 0 ? (double)n / b->wall_s : 0);
	fprintf(f, ",\"rss_mib\":");
	vt_bench_json_num(f, b->rss_mib);
	fprintf(f, ",\"anon_mib\":");
	vt_bench_json_num(f, b->anon_mib);
	fprintf(f, ",\"file_mib\":");
	vt_bench_json_num(f, b->file_mib);
	fprintf(f, ",\"alloc_mib\":");
	vt_bench_json_num(f, b->alloc_mib);
	fprintf(f, ",\"check_recall\":");
	vt_bench_json_num(f, b->check_recall);
	fprintf(f, ",\"reps\":%d,\"others_cpu_s\":", b->reps);
	vt_bench_json_num(f, b->others_s);
	fprintf(f, "}");
}

static void json_dataset(FILE *f, const vt_bench_data *d, const opts *o, const sys_res *S,
			 const target *T, int nt, double load0, double load1, int first)
{
	fprintf(f, "%s\n  {\"name\":", first ? "" : ",");
	vt_bench_json_str(f, d->name);
	fprintf(f, ",\"n\":%zu,\"nq\":%zu,\"dim\":%u,\"dist\":\"%s\",\"k\":%d,\"passes\":%d,",
		d->n, d->nq, d->dim, d->dist == VT_BENCH_L2 ? "l2" : "cosine", K, o->passes);
	fprintf(f, "\"gt\":{\"cached\":%d,\"ties\":%u,\"rescans\":%u},", d->gt_from_cache,
		d->gt_ties, d->gt_rescans);
	fprintf(f, "\"loadavg_start\":");
	vt_bench_json_num(f, load0);
	fprintf(f, ",\"loadavg_end\":");
	vt_bench_json_num(f, load1);
	fprintf(f, ",\"systems\":[");
	int fs = 1;
	for (int s = 0; s < SYS_N; s++) {
		const sys_res *r = &S[s];
		if (!r->on)
			continue;
		fprintf(f, "%s\n   {\"name\":\"%s\",\"builds\":[", fs ? "" : ",", r->def->name);
		fs = 0;
		json_build(f, &r->b1, d->n);
		for (int i = 0; i < r->n_bmt; i++) {
			fputc(',', f);
			json_build(f, &r->bmt[i], d->n);
		}
		fprintf(f, "],\"n_built\":%zu,\"own_ram_mib\":", d->n);
		vt_bench_json_num(f, r->own_mib);
		fprintf(f, ",\"own_mapped_mib\":");
		vt_bench_json_num(f, r->own_mapped_mib);
		fprintf(f, ",\"own_detail\":");
		vt_bench_json_str(f, r->own_detail);
		fprintf(f, ",\"file_mib_after_search\":");
		vt_bench_json_num(f, r->file_mib_after);
		fprintf(f, ",\"max_recall\":");
		vt_bench_json_num(f, r->max_recall);
		fprintf(f, ",\"sweep_wall_s\":");
		vt_bench_json_num(f, r->sweep_wall_s);
		fprintf(f, ",\"sweep_others_cpu_s\":");
		vt_bench_json_num(f, r->sweep_others_s);
		fprintf(f, ",\"qps_at\":{");
		for (int t = 0; t < 3; t++) {
			fprintf(f, "%s\"%.2f\":{\"qps_cpu\":", t ? "," : "", recall_targets[t]);
			vt_bench_json_num(f, r->at_qps[t]);
			fprintf(f, ",\"qps_wall\":");
			vt_bench_json_num(f, r->at_qps_wall[t]);
			fprintf(f, ",\"status\":\"%s\"}",
				r->at_status[t] == AT_OK ? "interpolated"
				: r->at_status[t] == AT_BOUND ? "lower_bound" : "not_reached");
		}
		fprintf(f, "},\"sweep\":[");
		for (size_t e = 0; e < o->n_ef; e++) {
			const point *p = &r->pts[e];
			fprintf(f, "%s{\"ef\":%u,\"recall\":", e ? "," : "", p->ef);
			vt_bench_json_num(f, p->recall);
			fprintf(f, ",\"recall_dist\":");
			vt_bench_json_num(f, p->recall_dist);
			fprintf(f, ",\"qps_cpu\":");
			vt_bench_json_num(f, p->qps_cpu);
			fprintf(f, ",\"qps_wall\":");
			vt_bench_json_num(f, p->qps_wall);
			fprintf(f, ",\"qps_cpu_passes\":[");
			for (int ps = 0; ps < o->passes; ps++) {
				if (ps)
					fputc(',', f);
				vt_bench_json_num(f, p->qps_cpu_pass[ps]);
			}
			fprintf(f, "],\"recall_varies\":%d}", p->recall_varies);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "],\n  \"targets\":[");
	for (int i = 0; i < nt; i++) {
		fprintf(f, "%s{\"what\":", i ? "," : "");
		vt_bench_json_str(f, T[i].what);
		fprintf(f, ",\"ratio\":");
		vt_bench_json_num(f, T[i].defined ? T[i].ratio : NAN);
		fprintf(f, ",\"need\":");
		vt_bench_json_num(f, T[i].need);
		fprintf(f, ",\"at_most\":%d,\"qualifier\":\"%c\",\"pass\":%s}", T[i].at_most,
			T[i].qual,
			!T[i].defined || T[i].info ? "null" : T[i].pass ? "true" : "false");
	}
	fprintf(f, "]}");
}

static void print_report(const vt_bench_data *d, const opts *o, const sys_res *S,
			 const target *T, int nt)
{
	char a[32], b[32], c[32];
	printf("\n## %s: %zu x %u base, %zu queries, %s, k=%d, M=%u efC=%u, best of %d pass%s\n\n",
	       d->name, d->n, d->dim, d->nq, d->dist == VT_BENCH_L2 ? "L2" : "cosine", K, HNSW_M,
	       HNSW_EFC, o->passes, o->passes == 1 ? "" : "es");
	printf("Ground truth: %s, %u quer%s with a tie at rank 10, %u re-scanned in double.\n\n",
	       d->gt_from_cache ? "cached" : "computed", d->gt_ties, d->gt_ties == 1 ? "y" : "ies",
	       d->gt_rescans);
	printf("| system | QPS@0.90 | QPS@0.95 | QPS@0.99 | max recall | build vec/s 1t |");
	for (int i = 0; i < o->n_mt; i++)
		printf(" build vec/s %dt |", o->mt[i]);
	printf(" RSS growth MiB (anon / file) | own count MiB |\n|---|---|---|---|---|---|");
	for (int i = 0; i < o->n_mt; i++)
		printf("---|");
	printf("---|---|\n");
	for (int s = 0; s < SYS_N; s++) {
		const sys_res *r = &S[s];
		if (!r->on)
			continue;
		printf("| %s | %s | %s | %s | %.4f | %.0f |", r->def->name,
		       fmt_qps(a, sizeof a, r->at_qps[0], r->at_status[0]),
		       fmt_qps(b, sizeof b, r->at_qps[1], r->at_status[1]),
		       fmt_qps(c, sizeof c, r->at_qps[2], r->at_status[2]), r->max_recall,
		       (double)d->n / r->b1.wall_s);
		for (int i = 0; i < o->n_mt; i++) {
			const build_res *m = NULL;
			for (int j = 0; j < r->n_bmt; j++)
				if (r->bmt[j].threads == o->mt[i])
					m = &r->bmt[j];
			if (m)
				printf(" %.0f |", (double)d->n / m->wall_s);
			else
				printf(" - |");
		}
		printf(" %.1f (%.1f / %.1f) |", r->b1.rss_mib, r->b1.anon_mib, r->b1.file_mib);
		if (r->own_mapped_mib > 0)
			printf(" %.1f + %.1f mapped |\n", r->own_mib, r->own_mapped_mib);
		else
			printf(" %.1f |\n", r->own_mib);
	}
	printf("\nQPS by per-thread CPU time, one query per call; \">=\": the smallest ef already "
	       "exceeds the target.\n\n");

	printf("| target | ratio | need | result |\n|---|---|---|---|\n");
	for (int i = 0; i < nt; i++)
		print_target(&T[i]);

	printf("\nPer ef: recall@10 / QPS (CPU time, best of passes) / QPS (wall)\n\n| ef |");
	for (int s = 0; s < SYS_N; s++)
		if (S[s].on)
			printf(" %s |", S[s].def->name);
	printf("\n|---:|");
	for (int s = 0; s < SYS_N; s++)
		if (S[s].on)
			printf("---|");
	printf("\n");
	for (size_t e = 0; e < o->n_ef; e++) {
		printf("| %u |", o->efs[e]);
		for (int s = 0; s < SYS_N; s++) {
			if (!S[s].on)
				continue;
			const point *p = &S[s].pts[e];
			printf(" %.4f / %.0f / %.0f%s |", p->recall, p->qps_cpu, p->qps_wall,
			       p->recall_varies ? " (recall varies)" : "");
		}
		printf("\n");
	}

	printf("\nBuilds: the fastest of the timed ones; \"others\" is the CPU time other processes "
	       "used meanwhile (a sign of a busy machine); check = recall@10 at ef %u of that graph.\n\n",
	       CHECK_EF);
	printf("| system | threads | timed | wall s | CPU s | vec/s (wall) | vec per CPU-s | others CPU-s | RSS growth MiB | check |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int s = 0; s < SYS_N; s++) {
		const sys_res *r = &S[s];
		if (!r->on)
			continue;
		for (int i = -1; i < r->n_bmt; i++) {
			const build_res *br = i < 0 ? &r->b1 : &r->bmt[i];
			char chk[16];
			if (br->check_recall >= 0)
				snprintf(chk, sizeof chk, "%.4f", br->check_recall);
			else
				snprintf(chk, sizeof chk, "searched");
			printf("| %s | %d | %d | %.2f | %.2f | %.0f | %.0f | %.1f | %.1f | %s |\n",
			       r->def->name, br->threads, br->reps, br->wall_s, br->cpu_s,
			       (double)d->n / br->wall_s, (double)d->n / br->cpu_s, br->others_s,
			       br->rss_mib, chk);
		}
	}
	printf("\nMemory, the index's own count:\n\n");
	for (int s = 0; s < SYS_N; s++) {
		const sys_res *r = &S[s];
		if (!r->on)
			continue;
		printf("- %s: %s", r->def->name, r->own_detail);
		if (r->def->vectron)
			printf("; vt_alloc growth %.1f MiB", r->b1.alloc_mib);
		if (r->def->mapped)
			printf("; RssFile growth after searching %.1f MiB", r->file_mib_after);
		printf("\n");
	}
	printf("\nOther processes' CPU during the searches, average CPUs busy besides us:");
	for (int s = 0; s < SYS_N; s++)
		if (S[s].on && S[s].sweep_wall_s > 0)
			printf(" %s %.2f;", S[s].def->name, S[s].sweep_others_s / S[s].sweep_wall_s);
	printf("\n");
	fflush(stdout);
}

/* ---- one data set ------------------------------------------------------- */

static int run_dataset(const opts *o, const char *name, FILE *json, int first,
		       int *sanity_failed, vt_errmsg *err)
{
	vt_bench_data d;
	sys_res S[SYS_N];
	target T[16];
	int nt = 0, rc;
	uint64_t *labels = NULL;
	char vec_path[4200];
	mem_snap m0, m1;

	memset(S, 0, sizeof S);
	memset(&m0, 0, sizeof m0);
	memset(&d, 0, sizeof d);
	vec_path[0] = 0;
	double load0 = vt_bench_loadavg1();
	fprintf(stderr, "loading %s\n", name);
	rc = vt_bench_data_load(name, o->n_base, o->n_queries, &d, err);
	if (rc)
		goto err;
	rc = vt_bench_gt_get(&d, o->cache, o->gt_threads, err);
	if (rc)
		goto err;
	rc = vt_bench_gt_verify(&d, 3, err);
	if (rc)
		goto err;
	labels = vt_malloc(d.nq * K * sizeof *labels);
	if (!labels) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "labels: out of memory");
		goto err;
	}
	snprintf(vec_path, sizeof vec_path, "%s/vectors-%s-%zu.f32", o->cache, d.name, d.n);

	/* Builds: per system the multi-thread ones (children) first, then
	 * the 1-thread one here, which is the graph that gets searched. */
	for (int s = 0; s < SYS_N; s++) {
		sys_res *r = &S[s];
		r->def = &sys_defs[s];
		r->on = o->sys_on[s];
		if (!r->on)
			continue;
		if (r->def->mt_build) {
			for (int i = 0; i < o->n_mt; i++) {
				rc = build_timed(r->def, &d, o, o->mt[i], vec_path, o->build_reps,
						 &r->bmt[r->n_bmt], sanity_failed, err);
				if (rc)
					goto err;
				r->n_bmt++;
			}
		}
		if (r->def->mapped && mem_read(&m0, NULL) != 0)
			m0.file_kb = -1; /* unknown: no RssFile figure after searching */
		rc = build_here(r->def, &d, o, 1, vec_path, &r->ix, &r->b1, err);
		if (rc)
			goto err;
		r->b1.reps = 1;
		if (o->build_reps > 1 && !r->def->mapped) {
			/* More 1-thread builds for the timing only; the graph
			 * searched and the memory measured stay this one's. */
			build_res extra;
			rc = build_timed(r->def, &d, o, 1, vec_path, o->build_reps - 1, &extra,
					 sanity_failed, err);
			if (rc)
				goto err;
			if (extra.wall_s < r->b1.wall_s) {
				r->b1.wall_s = extra.wall_s;
				r->b1.cpu_s = extra.cpu_s;
				r->b1.others_s = extra.others_s;
			}
			r->b1.reps += extra.reps;
		}
		bindex_own(&r->ix, 1, &r->own_mib, &r->own_mapped_mib, r->own_detail,
			   sizeof r->own_detail);
	}

	/* Searches: interleaved passes, the order reversed every other pass
	 * so neither system always runs right after a build or another. */
	for (int p = 0; p < o->passes; p++) {
		for (int j = 0; j < SYS_N; j++) {
			int s = p % 2 ? SYS_N - 1 - j : j;
			if (!S[s].on)
				continue;
			rc = sweep(&S[s], &d, o, p, labels, err);
			if (rc)
				goto err;
		}
	}
	if (S[SYS_I8MAP].on) {
		if (m0.file_kb >= 0 && mem_read(&m1, NULL) == 0)
			S[SYS_I8MAP].file_mib_after = kb_mib(m1.file_kb - m0.file_kb);
		else
			S[SYS_I8MAP].file_mib_after = NAN;
	}

	for (int s = 0; s < SYS_N; s++) {
		sys_res *r = &S[s];
		if (!r->on)
			continue;
		r->max_recall = 0;
		for (size_t e = 0; e < o->n_ef; e++)
			r->max_recall = fmax(r->max_recall, r->pts[e].recall);
		for (int t = 0; t < 3; t++) {
			int st;
			qps_at(r->pts, o->n_ef, recall_targets[t], 0, &r->at_qps[t], &r->at_status[t]);
			qps_at(r->pts, o->n_ef, recall_targets[t], 1, &r->at_qps_wall[t], &st);
		}
		double last = r->pts[o->n_ef - 1].recall;
		if (last < SANITY_RECALL) {
			fprintf(stderr, "SANITY: %s %s: recall@10 at ef %u is %.4f < %.2f\n", d.name,
				r->def->name, o->efs[o->n_ef - 1], last, SANITY_RECALL);
			*sanity_failed = 1;
		}
	}

	/* The targets of the issue; ratios are Vectron over hnswlib. */
	sys_res *H = &S[SYS_REF];
	target_qps(&T[nt++], &S[SYS_F32], H, 1, 1.2, "vectron-f32");
	target_qps(&T[nt++], &S[SYS_F32], H, 2, 1.2, "vectron-f32");
	target_qps(&T[nt++], &S[SYS_I8], H, 1, 2.0, "vectron-int8");
	{
		target *t = &T[nt++];
		memset(t, 0, sizeof *t);
		snprintf(t->what, sizeof t->what, "vectron-int8 max recall (0.99 reachable)");
		t->qual = ' ';
		t->need = 0.99;
		t->defined = S[SYS_I8].on;
		t->ratio = S[SYS_I8].max_recall;
		t->pass = t->ratio >= 0.99;
	}
	target_build(&T[nt++], &S[SYS_F32], H, 1, 1.2);
	for (int i = 0; i < o->n_mt; i++)
		target_build(&T[nt++], &S[SYS_F32], H, o->mt[i], 1.2);
	{
		target *t = &T[nt++];
		memset(t, 0, sizeof *t);
		snprintf(t->what, sizeof t->what,
			 "vectron-int8-mmap RssAnon growth vs hnswlib RSS growth");
		t->qual = ' ';
		t->need = 0.4;
		t->at_most = 1;
		t->defined = S[SYS_I8MAP].on && H->on && H->b1.rss_mib > 0;
		if (t->defined) {
			t->ratio = S[SYS_I8MAP].b1.anon_mib / H->b1.rss_mib;
			t->pass = t->ratio <= 0.4;
		}
	}
	/* Informational rows, no target of their own. */
	target_qps(&T[nt], &S[SYS_I8], H, 2, 0, "vectron-int8");
	T[nt++].info = 1;
	target_qps(&T[nt], &S[SYS_I8MAP], H, 1, 0, "vectron-int8-mmap");
	T[nt++].info = 1;
	target_build(&T[nt], &S[SYS_I8], H, 1, 0);
	T[nt++].info = 1;
	{
		target *t = &T[nt++];
		memset(t, 0, sizeof *t);
		snprintf(t->what, sizeof t->what, "vectron-int8-mmap own RAM count vs hnswlib own count");
		t->qual = ' ';
		t->need = 0.4;
		t->at_most = 1;
		t->info = 1;
		t->defined = S[SYS_I8MAP].on && H->on && H->own_mib > 0;
		if (t->defined) {
			t->ratio = S[SYS_I8MAP].own_mib / H->own_mib;
			t->pass = t->ratio <= 0.4;
		}
	}

	print_report(&d, o, S, T, nt);
	if (json)
		json_dataset(json, &d, o, S, T, nt, load0, vt_bench_loadavg1(), first);
	rc = 0;
err:
	for (int s = SYS_N - 1; s >= 0; s--)
		bindex_destroy(&S[s].ix);
	if (vec_path[0])
		unlink(vec_path);
	vt_free(labels);
	vt_bench_data_free(&d);
	return rc;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vt_bench_hnsw [options]\n"
		"Builds Vectron's HNSW index and hnswlib (M=16, efC=200) on the same data, sweeps\n"
		"ef (k=10, one query per call, one thread) in interleaved passes, and reports QPS\n"
		"at recall 0.90/0.95/0.99, build rates, memory and the target ratios.\n\n"
		"  --dataset LIST   fmnist, fmnist-cos, synth (comma list) or all [fmnist]\n"
		"  --queries N      queries to run (first N) [all: 10000]\n"
		"  --base N         base vectors (first N) [all]\n"
		"  --passes P       interleaved search passes, best QPS kept [3]\n"
		"  --threads LIST   extra build thread counts besides 1 (comma list) [2]\n"
		"  --build-reps R   time each build R times (extra ones in children), keep\n"
		"                   the fastest [1]\n"
		"  --ef LIST        ef sweep (comma list, ascending) [10,12,...,256]\n"
		"  --systems LIST   subset of hnswlib,vectron-f32,vectron-int8,vectron-int8-mmap\n"
		"  --oversampling X int8 re-score candidates = ceil(k * X) [library default]\n"
		"  --quick          10,000 base, 1,000 queries, 1 pass (the smoke test)\n"
		"  --json PATH      also write the results as JSON\n"
		"  --cache DIR      ground truth and mapped-vector files\n"
		"                   [$VT_BENCH_CACHE or ./build/bench-cache]\n"
		"Exit status: 0, 1 on an error, 2 if a sanity check failed (recall < %.2f at\n"
		"the largest ef, or on a multi-thread-built graph at ef %u). Ratios never fail.\n",
		SANITY_RECALL, CHECK_EF);
}

static int parse_u64(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, opts *o, char *dsbuf, size_t dscap)
{
	enum { O_DATASET = 1, O_QUERIES, O_BASE, O_PASSES, O_THREADS, O_EF, O_SYSTEMS,
	       O_OVERSAMPLING, O_QUICK, O_JSON, O_CACHE, O_BUILD_REPS, O_HELP };
	static const struct option lo[] = {
		{"dataset", required_argument, 0, O_DATASET},
		{"queries", required_argument, 0, O_QUERIES},
		{"base", required_argument, 0, O_BASE},
		{"passes", required_argument, 0, O_PASSES},
		{"threads", required_argument, 0, O_THREADS},
		{"ef", required_argument, 0, O_EF},
		{"systems", required_argument, 0, O_SYSTEMS},
		{"oversampling", required_argument, 0, O_OVERSAMPLING},
		{"quick", no_argument, 0, O_QUICK},
		{"json", required_argument, 0, O_JSON},
		{"cache", required_argument, 0, O_CACHE},
		{"build-reps", required_argument, 0, O_BUILD_REPS},
		{"help", no_argument, 0, O_HELP},
		{0, 0, 0, 0},
	};
	int passes_set = 0, queries_set = 0, base_set = 0;
	unsigned long long v;
	const char *env = getenv("VT_BENCH_CACHE");

	memset(o, 0, sizeof *o);
	snprintf(o->cache, sizeof o->cache, "%s", env && *env ? env : "./build/bench-cache");
	snprintf(dsbuf, dscap, "fmnist");
	o->passes = 3;
	o->mt[0] = 2;
	o->n_mt = 1;
	memcpy(o->efs, default_efs, sizeof default_efs);
	o->n_ef = sizeof default_efs / sizeof default_efs[0];
	o->gt_threads = 2;
	o->build_reps = 1;
	for (int s = 0; s < SYS_N; s++)
		o->sys_on[s] = 1;

	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DATASET:
			snprintf(dsbuf, dscap, "%s",
				 strcmp(optarg, "all") == 0 ? "fmnist,fmnist-cos,synth" : optarg);
			break;
		case O_QUERIES:
			if (parse_u64(optarg, &v) || v == 0)
				goto bad;
			o->n_queries = v;
			queries_set = 1;
			break;
		case O_BASE:
			if (parse_u64(optarg, &v) || v == 0)
				goto bad;
			o->n_base = v;
			base_set = 1;
			break;
		case O_PASSES:
			if (parse_u64(optarg, &v) || v < 1 || v > MAX_PASSES)
				goto bad;
			o->passes = (int)v;
			passes_set = 1;
			break;
		case O_THREADS: {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof buf, "%s", optarg);
			o->n_mt = 0;
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (parse_u64(t, &v) || v < 1 || v > MAX_THREADS || o->n_mt == MAX_MT)
					goto bad;
				if (v > 1)
					o->mt[o->n_mt++] = (int)v;
			}
			break;
		}
		case O_EF: {
			char buf[512], *save = NULL;
			snprintf(buf, sizeof buf, "%s", optarg);
			o->n_ef = 0;
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (parse_u64(t, &v) || v < K || v > 100000 || o->n_ef == MAX_EF ||
				    (o->n_ef && v <= o->efs[o->n_ef - 1]))
					goto bad;
				o->efs[o->n_ef++] = (uint32_t)v;
			}
			if (o->n_ef == 0)
				goto bad;
			break;
		}
		case O_SYSTEMS: {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (int s = 0; s < SYS_N; s++)
				o->sys_on[s] = 0;
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				int found = 0;
				for (int s = 0; s < SYS_N; s++)
					if (strcmp(t, sys_defs[s].name) == 0)
						o->sys_on[s] = found = 1;
				if (!found)
					goto bad;
			}
			break;
		}
		case O_OVERSAMPLING: {
			char *end;
			double x = strtod(optarg, &end);
			if (end == optarg || *end || !(x >= 1.0) || x > 1000)
				goto bad;
			o->oversampling = (float)x;
			break;
		}
		case O_QUICK:
			o->quick = 1;
			break;
		case O_JSON:
			o->json_path = optarg;
			break;
		case O_BUILD_REPS:
			if (parse_u64(optarg, &v) || v < 1 || v > 10)
				goto bad;
			o->build_reps = (int)v;
			break;
		case O_CACHE:
			snprintf(o->cache, sizeof o->cache, "%s", optarg);
			break;
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
		fprintf(stderr, "vt_bench_hnsw: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->quick) {
		if (!base_set)
			o->n_base = 10000;
		if (!queries_set)
			o->n_queries = 1000;
		if (!passes_set)
			o->passes = 1;
	}
	char *save = NULL;
	for (char *t = strtok_r(dsbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->n_datasets == (int)(sizeof o->datasets / sizeof o->datasets[0]))
			goto bad;
		o->datasets[o->n_datasets++] = t;
	}
	if (o->n_datasets == 0)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "vt_bench_hnsw: bad option value '%s'\n", optarg ? optarg : "");
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	opts o;
	char dsbuf[256], cmd[2048], model[256];
	vt_errmsg err;
	FILE *json = NULL;
	int rc = 0, sanity_failed = 0;
	struct utsname un;

	vt_errmsg_clear(&err);
	vt_bench_command_line(argc, argv, cmd, sizeof cmd);
	if (parse_args(argc, argv, &o, dsbuf, sizeof dsbuf) != 0)
		return 1;

	vt_bench_cpu_model(model, sizeof model);
	if (uname(&un) != 0)
		memset(&un, 0, sizeof un);
	printf("# vt_bench_hnsw\n\ncommand: `%s`\n\n", cmd);
	printf("machine: %s, %ld online CPUs, kernel %s; Vectron SIMD: %s; reference: %s, -O3 -march=native; load average %.2f\n",
	       model, sysconf(_SC_NPROCESSORS_ONLN), un.release, vt_simd()->name,
	       vt_bench_ref_version(), vt_bench_loadavg1());
	fflush(stdout);

	if (o.json_path) {
		json = fopen(o.json_path, "w");
		if (!json) {
			fprintf(stderr, "vt_bench_hnsw: open %s: %s\n", o.json_path, strerror(errno));
			return 1;
		}
		vt_bench_json_begin(json, "hnsw", cmd, model, un.release);
		fprintf(json, ",\"vectron_simd\":");
		vt_bench_json_str(json, vt_simd()->name);
		fprintf(json, ",\"reference\":");
		vt_bench_json_str(json, vt_bench_ref_version());
		fprintf(json, "},\"params\":{\"m\":%u,\"ef_construction\":%u,\"k\":%d,\"passes\":%d,"
			      "\"build_reps\":%d,\"oversampling\":",
			HNSW_M, HNSW_EFC, K, o.passes, o.build_reps);
		vt_bench_json_num(json, o.oversampling > 0 ? o.oversampling : NAN);
		fprintf(json, ",\"qps\":\"per-thread CPU time, best of passes\","
			      "\"recall\":\"id overlap with the exact top-10\"},\"datasets\":[");
	}

	for (int i = 0; i < o.n_datasets; i++) {
		rc = run_dataset(&o, o.datasets[i], json, i == 0, &sanity_failed, &err);
		if (rc) {
			fprintf(stderr, "vt_bench_hnsw: %s: %s (%s)\n", o.datasets[i], err.msg,
				vt_errname(rc));
			break;
		}
	}
	if (json) {
		fprintf(json, "\n]}\n");
		if (fclose(json) != 0 && rc == 0) {
			fprintf(stderr, "vt_bench_hnsw: write %s: %s\n", o.json_path, strerror(errno));
			rc = VT_EIO;
		}
	}
	if (rc)
		return 1;
	if (sanity_failed) {
		fprintf(stderr, "vt_bench_hnsw: sanity check failed\n");
		return 2;
	}
	return 0;
}
