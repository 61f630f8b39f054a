/* bench_serve.c: vt_bench_serve, `vectron serve` on Fashion-MNIST against the
 * in-process engine (lib/coll) in one run: bulk ingest over gRPC and REST,
 * search QPS from one sequential client at the ef that reaches recall@10
 * 0.95 in-process, and throughput / latency with 2, 8 and 32 concurrent
 * clients (docs/benchmarks.md, "Server (issue 5)"). Not a pass/fail
 * performance test: only a sanity floor (errors, served recall equal to the
 * in-process recall, REST and gRPC answers equal on one collection) sets the
 * exit status; the targets of issue 5 are reported. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/pool.h"
#include "coll/coll.h"
#include "common.h"
#include "dataset.h"
#include "rpc/grpc.h"
#include "rpc/json.h"
#include "worker/meta.h"
#include "vectron/v1/vectron.pb-c.h"

#ifndef VT_BENCH_VECTRON_PATH
#define VT_BENCH_VECTRON_PATH "vectron"
#endif

#define K 10u
#define BATCH 256u
#define HNSW_M 16u
#define HNSW_EFC 200u
#define TARGET_RECALL 0.95
#define TARGET_GRPC 0.8
#define TARGET_REST 0.6
#define SANITY_RECALL_DIFF 0.01
#define MAX_SHARD_RUNS 4
#define N_CONC 3

static const unsigned conc_levels[N_CONC] = {2, 8, 32};
static const uint32_t efs[] = {10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128, 192, 256};
#define N_EFS (sizeof efs / sizeof efs[0])

#define SVC "/vectron.v1.VectronService/"

typedef struct opts {
	int quick;
	size_t n_base, n_queries, conc_queries;
	unsigned passes;
	unsigned shards[MAX_SHARD_RUNS];
	unsigned n_shards;
	const char *vectron;
	char parent[1024];
	char cache[1024];
	int keep;
	unsigned cluster_workers; /* --cluster N: also through a gateway */
	unsigned cluster_rf;
} opts;

/* ---- machine -------------------------------------------------------------- */

/* CPU seconds of process `pid` (utime + stime from /proc/pid/stat). */
static double pid_cpu_s(pid_t pid)
{
	char path[64], line[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	double s = 0;
	if (fgets(line, sizeof line, f)) {
		const char *p = strrchr(line, ')');
		unsigned long long ut, st;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt
		 * cminflt majflt cmajflt utime stime */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) == 2) {
			long hz = sysconf(_SC_CLK_TCK);
			s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
		}
	}
	fclose(f);
	return s;
}

/* The server's threads from /proc/PID/task/TID/schedstat: time on a CPU
 * of its main (loop) thread and of all others (request workers, shard
 * pool), and how many times its threads were switched in. */
typedef struct srv_threads {
	double loop_s, workers_s;
	unsigned long long slices;
} srv_threads;

static void srv_threads_get(pid_t pid, srv_threads *t)
{
	char path[128];
	memset(t, 0, sizeof *t);
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char p2[512];
		unsigned long long run = 0, wait = 0, sl = 0;
		snprintf(p2, sizeof p2, "%s/%s/schedstat", path, e->d_name);
		FILE *f = fopen(p2, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu %llu", &run, &wait, &sl) == 3) {
			if (atoi(e->d_name) == (int)pid)
				t->loop_s += (double)run / 1e9;
			else
				t->workers_s += (double)run / 1e9;
			t->slices += sl;
		}
		fclose(f);
	}
	closedir(dir);
}

/* Wall time, this process's CPU, the server's CPU and everyone else's
 * over a measured step. */
typedef struct span {
	uint64_t t0;
	double self0, srv0, busy0;
	double wall_s, self_s, srv_s, others_s;
	pid_t srv;
	srv_threads th0, th;     /* the server's threads: at start, then the
				    difference */
} span;

static void span_start(span *p, pid_t srv)
{
	p->srv = srv;
	p->busy0 = vt_bench_machine_busy_s();
	p->self0 = vt_bench_self_cpu_s();
	p->srv0 = srv ? pid_cpu_s(srv) : 0;
	if (srv)
		srv_threads_get(srv, &p->th0);
	p->t0 = vt_clock_mono_ns();
}

static void span_stop(span *p)
{
	p->wall_s = (double)(vt_clock_mono_ns() - p->t0) / 1e9;
	p->self_s = vt_bench_self_cpu_s() - p->self0;
	p->srv_s = p->srv ? pid_cpu_s(p->srv) - p->srv0 : 0;
	memset(&p->th, 0, sizeof p->th);
	if (p->srv) {
		srv_threads t1;
		srv_threads_get(p->srv, &t1);
		p->th.loop_s = t1.loop_s - p->th0.loop_s;
		p->th.workers_s = t1.workers_s - p->th0.workers_s;
		p->th.slices = t1.slices - p->th0.slices;
	}
	double busy1 = vt_bench_machine_busy_s();
	p->others_s = vt_bench_others_cpu(p->busy0, busy1, p->self_s + p->srv_s);
}

/* p50 and p99 of lat[0..n) in ms (sorts lat). */
static void percentiles(double *lat, size_t n, double *p50, double *p99)
{
	qsort(lat, n, sizeof *lat, vt_bench_cmp_double);
	*p50 = n ? lat[n / 2] * 1e3 : NAN;
	*p99 = n ? lat[(size_t)((double)(n - 1) * 0.99)] * 1e3 : NAN;
}

/* ---- results -------------------------------------------------------------- */

typedef struct seq_res {
	double qps;          /* best pass, wall clock */
	double p50_ms, p99_ms;
	double srv_us;       /* server CPU per query (best pass) */
	double self_us;      /* this process's CPU per query (best pass) */
	double others_s;     /* others' CPU during the best pass */
	double loop_us, work_us; /* server loop thread / other threads, on-CPU
				    time per query (schedstat) */
	double slices;       /* server threads switched in, per query */
	double recall;
	size_t same_ids;     /* queries whose id lists equal those of the
				in-process database built by the bench */
	size_t same_data;    /* ... equal those of the server's own data
				opened in-process after it stopped */
} seq_res;

/* Round trips that do no search: where a served search's time goes. */
typedef struct ping_res {
	double grpc_health_us;  /* gRPC Health: transport + the pool hop */
	double rest_health_us;  /* REST GET /health: answered on the loop */
	double rest_api_health_us; /* REST GET /v1/collections/{name}: the
				      pool hop, no vector */
} ping_res;

typedef struct conc_res {
	double qps, p50_ms, p99_ms, srv_cpu; /* srv_cpu: server CPUs busy */
} conc_res;

typedef struct ingest_res {
	double rate;     /* points / seconds inside the calls */
	double wall_rate; /* points / wall seconds, encoding included */
	double others_s;
} ingest_res;

typedef struct run_res {
	unsigned shards;
	ingest_res ing_inproc, ing_grpc, ing_rest;
	uint32_t ef;
	double sweep_recall[N_EFS];
	double sweep_qps[N_EFS];
	size_t n_sweep;
	seq_res s_inproc, s_grpc, s_rest;
	conc_res c_grpc[N_CONC], c_rest[N_CONC];
	ping_res ping;
	size_t cross_same; /* REST searches of the gRPC-filled collection whose
			      ids equal the gRPC answers */
	double load_before, load_after;
	/* --cluster: the same through a gateway (1 PD, N workers, rf R) */
	int cl_done;
	ingest_res ing_cl;
	seq_res s_cl;
	conc_res c_cl;
	size_t cl_same_serve; /* queries whose ids equal serve's gRPC answers */
} run_res;

/* ---- ids and recall ------------------------------------------------------- */

static uint32_t parse_id(const char *s, size_t len)
{
	uint32_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return UINT32_MAX;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	return len ? v : UINT32_MAX;
}

/* Mean recall@10 of ids[nq * K] (UINT32_MAX: no hit) against the truth. */
static double recall_of(const vt_bench_data *d, const uint32_t *ids, size_t nq)
{
	size_t hit = 0;
	for (size_t q = 0; q < nq; q++)
		for (size_t i = 0; i < K; i++)
			for (size_t j = 0; j < K; j++)
				if (ids[q * K + i] == d->gt_ids[q * VT_BENCH_GT_K + j]) {
					hit++;
					break;
				}
	return (double)hit / (double)(nq * K);
}

static size_t same_lists(const uint32_t *a, const uint32_t *b, size_t nq)
{
	size_t same = 0;
	for (size_t q = 0; q < nq; q++)
		same += memcmp(a + q * K, b + q * K, K * sizeof *a) == 0;
	return same;
}

/* ---- in-process ------------------------------------------------------------ */

static void coll_cfg(vt_coll_config *c, const char *name, const vt_bench_data *d, unsigned shards)
{
	vt_coll_config_default(c, name, d->dim, VT_METRIC_L2);
	c->shard_count = shards;
	c->shard.m = HNSW_M;
	c->shard.ef_construction = HNSW_EFC;
	c->shard.index_mode = VT_INDEX_SYNC;
}

static int inproc_ingest(vt_coll *c, const vt_bench_data *d, ingest_res *r, vt_errmsg *err)
{
	vt_coll_point pts[BATCH];
	char idbuf[BATCH][24];
	uint64_t in_calls = 0;
	span sp;
	span_start(&sp, 0);
	for (size_t lo = 0; lo < d->n; lo += BATCH) {
		size_t hi = lo + BATCH < d->n ? lo + BATCH : d->n;
		for (size_t i = lo; i < hi; i++) {
			int il = snprintf(idbuf[i - lo], sizeof idbuf[0], "%zu", i);
			pts[i - lo] = (vt_coll_point){idbuf[i - lo], (size_t)il,
						      d->base + i * d->dim, NULL, 0};
		}
		vt_coll_write_result wr;
		uint64_t t0 = vt_clock_mono_ns();
		int rc = vt_coll_upsert(c, pts, hi - lo, &wr, err);
		in_calls += vt_clock_mono_ns() - t0;
		if (rc)
			return vt_errmsg_prefix(err, rc, "in-process upsert at %zu", lo);
	}
	span_stop(&sp);
	r->rate = (double)d->n / ((double)in_calls / 1e9);
	r->wall_rate = (double)d->n / sp.wall_s;
	r->others_s = sp.others_s;
	return 0;
}

/* One sequential pass of every query at `ef`; ids[nq * K], lat[nq]. */
static int inproc_search(vt_coll *c, const vt_bench_data *d, size_t nq, uint32_t ef,
			 uint32_t *ids, double *lat, span *sp, vt_errmsg *err)
{
	span_start(sp, 0);
	for (size_t q = 0; q < nq; q++) {
		vt_coll_query qq;
		vt_coll_query_default(&qq, d->queries + q * d->dim, K);
		qq.ef = ef;
		qq.with_payload = 0;
		vt_coll_results res;
		uint64_t t0 = vt_clock_mono_ns();
		int rc = vt_coll_search(c, &qq, NULL, NULL, &res, err);
		if (rc) {
			vt_coll_results_free(&res);
			return vt_errmsg_prefix(err, rc, "in-process search %zu", q);
		}
		for (size_t i = 0; i < K; i++)
			ids[q * K + i] = i < res.n ? parse_id(res.hits[i].id, res.hits[i].id_len)
						   : UINT32_MAX;
		vt_coll_results_free(&res);
		if (lat)
			lat[q] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	span_stop(sp);
	return 0;
}

/* The served collections as a database lib/coll can open in-process:
 * `vectron serve` keeps each shard as a worker replica in
 * <data>/worker/groups/<group>/shard with the collection and shard index
 * in replica.json; `view` gets collections/<name>/collection.json and
 * shard-<i> links to those directories. */
static int served_view(const char *data, const char *view, vt_errmsg *err)
{
	char path[4096], gdir[2048];
	snprintf(gdir, sizeof gdir, "%s/worker/groups", data);
	snprintf(path, sizeof path, "%s/collections", view);
	if ((mkdir(view, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST))
		return vt_errmsg_set(err, VT_EIO, "%s: %s", path, strerror(errno));
	DIR *dp = opendir(gdir);
	if (!dp)
		return vt_errmsg_set(err, VT_EIO, "%s: %s", gdir, strerror(errno));
	int rc = 0;
	for (struct dirent *de; !rc && (de = readdir(dp));) {
		if (de->d_name[0] == '.')
			continue;
		vt_worker_meta m;
		vt_coll_config cfg;
		snprintf(path, sizeof path, "%s/%s/replica.json", gdir, de->d_name);
		if ((rc = vt_worker_meta_read(path, &m, err)))
			break;
		rc = vt_coll_config_decode(m.config, m.config_len, &cfg, err);
		if (!rc) {
			snprintf(path, sizeof path, "%s/collections/%s", view, m.collection);
			mkdir(path, 0755);
			snprintf(path, sizeof path, "%s/collections/%s/collection.json", view,
				 m.collection);
			FILE *f = fopen(path, "w");
			if (f) {
				fprintf(f, "{\"name\": \"%s\", \"shard_count\": %u, \"rescore\": %s, "
					   "\"oversampling\": %g, \"routing\": \"%s\"}\n",
					m.collection, cfg.shard_count, cfg.rescore ? "true" : "false",
					(double)cfg.oversampling,
					cfg.routing == VT_COLL_ROUTE_MOD ? "mod" : "range");
				fclose(f);
			}
			char target[2400];
			snprintf(target, sizeof target, "%s/%s/shard", gdir, de->d_name);
			snprintf(path, sizeof path, "%s/collections/%s/shard-%u", view, m.collection,
				 m.shard);
			if (!f || (symlink(target, path) && errno != EEXIST))
				rc = vt_errmsg_set(err, VT_EIO, "%s: %s", path, strerror(errno));
		}
		vt_worker_meta_free(&m);
	}
	closedir(dp);
	return rc;
}

/* ---- the server process ----------------------------------------------------- */

typedef struct server {
	pid_t pid;
	int rest_port, grpc_port;
} server;

/* In a child: execs `bin` with argv (argv[0] is the subcommand, NULL
 * ends it); returns only if the exec failed. */
static void exec_argv(const char *bin, char *const *argv)
{
	char *full[32];
	size_t k = 0;
	full[k++] = (char *)bin;
	for (size_t i = 0; argv[i] && k < 31; i++)
		full[k++] = argv[i];
	full[k] = NULL;
	execv(bin, full);
}

/* Starts `bin argv...` (argv[0] is the subcommand) with stdout on a pipe
 * whose first line, "vectron <sub>: REST on http://H:P, gRPC on H:P...",
 * gives the ports; stderr goes to `log`. */
static int server_exec(const char *bin, char *const *argv, const char *log, server *s,
		       vt_errmsg *err)
{
	int p[2];
	memset(s, 0, sizeof *s);
	if (pipe(p) != 0)
		return vt_errmsg_set(err, VT_EIO, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return vt_errmsg_set(err, VT_EIO, "fork: %s", strerror(errno));
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(p[1], 1);
		if (lf >= 0)
			dup2(lf, 2);
		close(p[0]);
		exec_argv(bin, argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	s->pid = pid;
	FILE *f = fdopen(p[0], "r");
	char line[1024];
	int ok = f && fgets(line, sizeof line, f) &&
		 sscanf(line, "vectron %*s REST on http://%*[^:]:%d, gRPC on %*[^:]:%d",
			&s->rest_port, &s->grpc_port) == 2;
	if (f)
		fclose(f);
	else
		close(p[0]);
	if (!ok) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		s->pid = 0;
		return vt_errmsg_set(err, VT_EIO,
				     "%s %s did not start (see %s; build it or pass --vectron)",
				     bin, argv[0], log);
	}
	return 0;
}

static int server_start(const char *bin, const char *dir, const char *log, unsigned shards,
			server *s, vt_errmsg *err)
{
	char sh[16];
	snprintf(sh, sizeof sh, "%u", shards);
	char *argv[] = {"serve", "--data-dir", (char *)dir, "--rest-port", "0", "--grpc-port",
			"0", "--shards", sh, "--log-level", "warn", NULL};
	return server_exec(bin, argv, log, s, err);
}

static int server_stop(server *s, vt_errmsg *err)
{
	int st = 0;
	if (!s->pid)
		return 0;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return vt_errmsg_set(err, VT_EIO, "vectron serve exited with status 0x%x", st);
	return 0;
}

/* ---- a cluster: one PD node, workers, a gateway ---------------------------------- */

#define MAX_CL_PROCS 9

typedef struct cluster {
	pid_t pid[MAX_CL_PROCS]; /* PD and workers */
	size_t n;
	server gw;
} cluster;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int port = -1;
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Runs `bin argv...` in the background, stdout and stderr to `log`. */
static pid_t spawn(const char *bin, char *const *argv, const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		exec_argv(bin, argv);
		_exit(127);
	}
	return pid;
}

static void cluster_stop(cluster *c)
{
	vt_errmsg e = {{0}};
	server_stop(&c->gw, &e);
	for (size_t i = c->n; i-- > 0;) {
		kill(c->pid[i], SIGTERM);
		waitpid(c->pid[i], NULL, 0);
	}
	c->n = 0;
}

/* One PD node, `workers` workers and a gateway whose collections get
 * `rf` voters per shard, all on loopback, data under `dir`. */
static int cluster_start(const char *bin, const char *dir, unsigned workers, unsigned rf,
			 cluster *c, vt_errmsg *err)
{
	memset(c, 0, sizeof *c);
	char pd[64], praft[64], peers[160], d[1300], log[1300], id[16], rfs[16];
	snprintf(pd, sizeof pd, "127.0.0.1:%d", free_port());
	snprintf(praft, sizeof praft, "127.0.0.1:%d", free_port());
	snprintf(peers, sizeof peers, "1=%s/%s", pd, praft);
	snprintf(d, sizeof d, "%s/pd", dir);
	snprintf(log, sizeof log, "%s/pd.log", dir);
	char *pargv[] = {"pd", "--node-id", "1", "--data-dir", d, "--listen", pd,
			 "--raft-listen", praft, "--peers", peers, "--log-level", "warn", NULL};
	if ((c->pid[c->n] = spawn(bin, pargv, log)) < 0)
		return vt_errmsg_set(err, VT_EIO, "fork: %s", strerror(errno));
	c->n++;
	for (unsigned w = 1; w <= workers && c->n < MAX_CL_PROCS; w++) {
		char listen[64], raft[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%d", free_port());
		snprintf(raft, sizeof raft, "127.0.0.1:%d", free_port());
		snprintf(id, sizeof id, "%u", w);
		snprintf(d, sizeof d, "%s/worker%u", dir, w);
		snprintf(log, sizeof log, "%s/worker%u.log", dir, w);
		char *wargv[] = {"worker", "--worker-id", id, "--data-dir", d, "--listen", listen,
				 "--raft-listen", raft, "--pd", pd, "--log-level", "warn", NULL};
		if ((c->pid[c->n] = spawn(bin, wargv, log)) < 0) {
			cluster_stop(c);
			return vt_errmsg_set(err, VT_EIO, "fork: %s", strerror(errno));
		}
		c->n++;
	}
	snprintf(log, sizeof log, "%s/gateway.log", dir);
	snprintf(rfs, sizeof rfs, "%u", rf);
	char *gargv[] = {"gateway", "--pd", pd, "--rest-port", "0", "--grpc-port", "0",
			 "--replication-factor", rfs, "--log-level", "warn", NULL};
	int rc = server_exec(bin, gargv, log, &c->gw, err);
	if (rc)
		cluster_stop(c);
	return rc;
}

/* ---- gRPC client -------------------------------------------------------------- */

typedef struct gcli {
	uv_loop_t loop;
	vt_grpc_client *c;
} gcli;

typedef struct gcall {
	int done, status;
	char msg[256];
	ProtobufCMessage *reply;
	/* concurrent runs */
	struct gconc *run;
	size_t q;
	uint64_t t0;
} gcall;

static void g_on_msg(void *ud, ProtobufCMessage *m, const uint8_t *raw, size_t len)
{
	gcall *c = ud;
	(void)raw;
	(void)len;
	vt_grpc_msg_free(c->reply);
	c->reply = m;
}

static void g_on_done(void *ud, int status, const char *message)
{
	gcall *c = ud;
	c->done = 1;
	c->status = status;
	snprintf(c->msg, sizeof c->msg, "%s", message);
}

static int gcli_open(gcli *g, int port, vt_errmsg *err)
{
	memset(g, 0, sizeof *g);
	uv_loop_init(&g->loop);
	if (vt_grpc_client_new(&g->loop, "127.0.0.1", port, NULL, &g->c))
		return vt_errmsg_set(err, VT_ENOMEM, "grpc client");
	return 0;
}

static void gcli_close(gcli *g)
{
	if (g->c)
		vt_grpc_client_close(g->c);
	uv_run(&g->loop, UV_RUN_DEFAULT);
	uv_loop_close(&g->loop);
}

/* One call at a time: returns the reply in *reply (caller frees with
 * vt_grpc_msg_free) or an error naming the status. */
static int g_call(gcli *g, const char *method, const ProtobufCMessage *req, const void *raw,
		  size_t raw_len, const ProtobufCMessageDescriptor *rd, ProtobufCMessage **reply,
		  vt_errmsg *err)
{
	gcall c;
	char path[128];
	memset(&c, 0, sizeof c);
	snprintf(path, sizeof path, SVC "%s", method);
	if (vt_grpc_client_call(g->c, path, req, raw, raw_len, rd, NULL, g_on_msg, g_on_done, &c,
				NULL))
		return vt_errmsg_set(err, VT_ENOMEM, "grpc %s: cannot start", method);
	while (!c.done)
		uv_run(&g->loop, UV_RUN_ONCE);
	if (c.status != VT_GRPC_OK) {
		vt_grpc_msg_free(c.reply);
		return vt_errmsg_set(err, VT_EIO, "grpc %s: %s: %s", method,
				     vt_grpc_status_name(c.status), c.msg);
	}
	if (reply)
		*reply = c.reply;
	else
		vt_grpc_msg_free(c.reply);
	return 0;
}

/* ---- REST client: blocking HTTP/1.1 keep-alive over one TCP socket ------------ */

typedef struct hcli {
	int fd;
	char *buf;
	size_t cap, len;  /* bytes in buf */
	size_t body_off, body_len; /* of the last response */
} hcli;

static int hcli_open(hcli *h, int port, vt_errmsg *err)
{
	memset(h, 0, sizeof *h);
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&a, sizeof a) != 0)
		return vt_errmsg_set(err, VT_EIO, "connect 127.0.0.1:%d: %s", port,
				     strerror(errno));
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	h->cap = 1u << 16;
	h->buf = vt_malloc(h->cap);
	return h->buf ? 0 : vt_errmsg_set(err, VT_ENOMEM, "out of memory");
}

static void hcli_close(hcli *h)
{
	if (h->fd >= 0)
		close(h->fd);
	vt_free(h->buf);
	h->fd = -1;
	h->buf = NULL;
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Sends one request and reads the whole response; *status gets the HTTP
 * status, the body is h->buf[h->body_off .. + h->body_len). The server
 * answers with Content-Length (never chunked). */
static int h_request(hcli *h, const char *method, const char *path, const char *body,
		     size_t blen, int *status, vt_errmsg *err)
{
	char hdr[512];
	int hl = snprintf(hdr, sizeof hdr,
			  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  method, path, blen);
	struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)body, blen}};
	if (write_all(h->fd, iov, blen ? 2 : 1))
		return vt_errmsg_set(err, VT_EIO, "REST %s: write: %s", path, strerror(errno));
	h->len = 0;
	size_t hend = 0, need = 0;
	for (;;) {
		if (hend && h->len >= need)
			break;
		if (h->len == h->cap) {
			char *nb = vt_realloc(h->buf, h->cap * 2);
			if (!nb)
				return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
			h->buf = nb;
			h->cap *= 2;
		}
		ssize_t r = read(h->fd, h->buf + h->len, h->cap - h->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return vt_errmsg_set(err, VT_EIO, "REST %s: connection closed", path);
		h->len += (size_t)r;
		if (!hend) {
			char *e = memmem(h->buf, h->len, "\r\n\r\n", 4);
			if (!e)
				continue;
			hend = (size_t)(e - h->buf) + 4;
			*e = '\0';
			if (sscanf(h->buf, "HTTP/1.1 %d", status) != 1)
				return vt_errmsg_set(err, VT_EIO, "REST %s: bad status line", path);
			const char *cl = strcasestr(h->buf, "\r\ncontent-length:");
			if (!cl)
				return vt_errmsg_set(err, VT_EIO, "REST %s: no Content-Length", path);
			need = hend + strtoull(cl + 17, NULL, 10);
		}
	}
	h->body_off = hend;
	h->body_len = need - hend;
	return 0;
}

/* A request whose answer must be 200. */
static int h_ok(hcli *h, const char *method, const char *path, const char *body, size_t blen,
		vt_errmsg *err)
{
	int st = 0;
	int rc = h_request(h, method, path, body, blen, &st, err);
	if (rc)
		return rc;
	if (st != 200)
		return vt_errmsg_set(err, VT_EIO, "REST %s %s: %d %.*s", method, path, st,
				     (int)(h->body_len < 300 ? h->body_len : 300),
				     h->buf + h->body_off);
	return 0;
}

/* The ids of a REST search response body into ids[K]. */
static int rest_ids(const char *body, size_t len, uint32_t *ids, vt_errmsg *err)
{
	vt_json_doc *doc;
	int rc = vt_json_parse(body, len, NULL, &doc, NULL, err);
	if (rc)
		return rc;
	const vt_json_value *res = vt_json_get(vt_json_root(doc), "results");
	for (size_t i = 0; i < K; i++) {
		const vt_json_value *hit = res ? vt_json_at(res, i) : NULL;
		const vt_json_value *id = hit ? vt_json_get(hit, "id") : NULL;
		const char *s;
		size_t sl;
		ids[i] = id && !vt_json_get_string(id, &s, &sl, NULL) ? parse_id(s, sl)
								       : UINT32_MAX;
	}
	vt_json_doc_free(doc);
	return 0;
}

/* ---- creating collections and ingesting over the wire --------------------------- */

static int grpc_create(gcli *g, const char *name, const vt_bench_data *d, unsigned shards,
		       vt_errmsg *err)
{
	Vectron__V1__CreateCollectionRequest r = VECTRON__V1__CREATE_COLLECTION_REQUEST__INIT;
	Vectron__V1__HnswConfig h = VECTRON__V1__HNSW_CONFIG__INIT;
	h.has_m = h.has_ef_construct = 1;
	h.m = HNSW_M;
	h.ef_construct = HNSW_EFC;
	r.name = (char *)name;
	r.has_dimension = r.has_distance = r.has_shard_count = r.has_index_mode = 1;
	r.dimension = d->dim;
	r.distance = VECTRON__V1__DISTANCE__EUCLID;
	r.shard_count = shards;
	r.index_mode = VECTRON__V1__INDEX_MODE__SYNC;
	r.hnsw = &h;
	return g_call(g, "CreateCollection", &r.base, NULL, 0,
		      &vectron__v1__collection_info__descriptor, NULL, err);
}

static int rest_create(hcli *h, const char *name, const vt_bench_data *d, unsigned shards,
		       vt_errmsg *err)
{
	char body[512];
	int n = snprintf(body, sizeof body,
			 "{\"name\":\"%s\",\"dimension\":%u,\"distance\":\"euclid\","
			 "\"hnsw\":{\"m\":%u,\"ef_construct\":%u},\"shard_count\":%u,"
			 "\"index_mode\":\"sync\"}",
			 name, d->dim, HNSW_M, HNSW_EFC, shards);
	return h_ok(h, "POST", "/v1/collections", body, (size_t)n, err);
}

static int grpc_ingest(gcli *g, const char *name, const vt_bench_data *d, pid_t srv,
		       ingest_res *r, vt_errmsg *err)
{
	Vectron__V1__Point pts[BATCH], *pp[BATCH];
	char idbuf[BATCH][24];
	uint64_t in_calls = 0;
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 30);
	span sp;
	span_start(&sp, srv);
	int rc = 0;
	for (size_t lo = 0; lo < d->n && !rc; lo += BATCH) {
		size_t hi = lo + BATCH < d->n ? lo + BATCH : d->n;
		Vectron__V1__UpsertRequest u = VECTRON__V1__UPSERT_REQUEST__INIT;
		for (size_t i = lo; i < hi; i++) {
			Vectron__V1__Point *p = &pts[i - lo];
			vectron__v1__point__init(p);
			snprintf(idbuf[i - lo], sizeof idbuf[0], "%zu", i);
			p->id = idbuf[i - lo];
			p->n_vector = d->dim;
			p->vector = d->base + i * d->dim;
			pp[i - lo] = p;
		}
		u.collection = (char *)name;
		u.n_points = hi - lo;
		u.points = pp;
		/* encoded before the clock starts, like the REST bodies */
		size_t sz = protobuf_c_message_get_packed_size(&u.base);
		b.len = 0;
		if ((rc = vt_buf_reserve(&b, sz)))
			break;
		b.len = protobuf_c_message_pack(&u.base, b.data);
		uint64_t t0 = vt_clock_mono_ns();
		rc = g_call(g, "Upsert", NULL, b.data, b.len, &vectron__v1__upsert_response__descriptor,
			    NULL, err);
		in_calls += vt_clock_mono_ns() - t0;
	}
	span_stop(&sp);
	vt_buf_free(&b);
	if (rc)
		return vt_errmsg_prefix(err, rc, "gRPC ingest");
	r->rate = (double)d->n / ((double)in_calls / 1e9);
	r->wall_rate = (double)d->n / sp.wall_s;
	r->others_s = sp.others_s;
	return 0;
}

static int rest_ingest(hcli *h, const char *name, const vt_bench_data *d, pid_t srv,
		       ingest_res *r, vt_errmsg *err)
{
	char path[256];
	snprintf(path, sizeof path, "/v1/collections/%s/points", name);
	uint64_t in_calls = 0;
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 30);
	span sp;
	span_start(&sp, srv);
	int rc = 0;
	for (size_t lo = 0; lo < d->n && !rc; lo += BATCH) {
		size_t hi = lo + BATCH < d->n ? lo + BATCH : d->n;
		vt_json_writer w;
		b.len = 0;
		vt_json_w_init(&w, &b);
		vt_json_w_obj_begin(&w);
		vt_json_w_key(&w, "points", 6);
		vt_json_w_arr_begin(&w);
		for (size_t i = lo; i < hi; i++) {
			char id[24];
			int il = snprintf(id, sizeof id, "%zu", i);
			vt_json_w_obj_begin(&w);
			vt_json_w_key(&w, "id", 2);
			vt_json_w_str(&w, id, (size_t)il);
			vt_json_w_key(&w, "vector", 6);
			vt_json_w_floats(&w, d->base + i * d->dim, d->dim);
			vt_json_w_obj_end(&w);
		}
		vt_json_w_arr_end(&w);
		vt_json_w_obj_end(&w);
		if ((rc = vt_json_w_finish(&w))) {
			vt_errmsg_set(err, rc, "encoding a batch: %s", vt_strerror(rc));
			break;
		}
		uint64_t t0 = vt_clock_mono_ns();
		rc = h_ok(h, "POST", path, (const char *)b.data, b.len, err);
		in_calls += vt_clock_mono_ns() - t0;
	}
	span_stop(&sp);
	vt_buf_free(&b);
	if (rc)
		return vt_errmsg_prefix(err, rc, "REST ingest");
	r->rate = (double)d->n / ((double)in_calls / 1e9);
	r->wall_rate = (double)d->n / sp.wall_s;
	r->others_s = sp.others_s;
	return 0;
}

/* ---- search requests, encoded once before any clock starts ---------------------- */

typedef struct reqs {
	uint8_t **pb;  /* SearchRequest, packed */
	size_t *pb_len;
	char **js;     /* the same as a REST body */
	size_t *js_len;
	size_t n;
} reqs;

static void reqs_free(reqs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		vt_free(r->pb[i]);
		vt_free(r->js[i]);
	}
	vt_free(r->pb);
	vt_free(r->pb_len);
	vt_free(r->js);
	vt_free(r->js_len);
	memset(r, 0, sizeof *r);
}

static int reqs_build(const vt_bench_data *d, size_t nq, const char *coll, uint32_t ef,
		      reqs *r, vt_errmsg *err)
{
	memset(r, 0, sizeof *r);
	r->pb = vt_calloc(nq, sizeof *r->pb);
	r->pb_len = vt_calloc(nq, sizeof *r->pb_len);
	r->js = vt_calloc(nq, sizeof *r->js);
	r->js_len = vt_calloc(nq, sizeof *r->js_len);
	if (!r->pb || !r->pb_len || !r->js || !r->js_len)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	for (size_t q = 0; q < nq; q++) {
		Vectron__V1__SearchRequest s = VECTRON__V1__SEARCH_REQUEST__INIT;
		s.collection = (char *)coll;
		s.n_vector = d->dim;
		s.vector = d->queries + q * d->dim;
		s.has_top_k = s.has_ef = s.has_with_payload = 1;
		s.top_k = K;
		s.ef = ef;
		s.with_payload = 0;
		size_t sz = protobuf_c_message_get_packed_size(&s.base);
		r->pb[q] = vt_malloc(sz ? sz : 1);
		if (!r->pb[q])
			return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		r->pb_len[q] = protobuf_c_message_pack(&s.base, r->pb[q]);
		vt_buf b;
		vt_buf_init(&b, 1u << 20);
		vt_json_writer w;
		vt_json_w_init(&w, &b);
		vt_json_w_obj_begin(&w);
		vt_json_w_key(&w, "vector", 6);
		vt_json_w_floats(&w, s.vector, d->dim);
		vt_json_w_key(&w, "top_k", 5);
		vt_json_w_uint(&w, K);
		vt_json_w_key(&w, "ef", 2);
		vt_json_w_uint(&w, ef);
		vt_json_w_key(&w, "with_payload", 12);
		vt_json_w_bool(&w, 0);
		vt_json_w_obj_end(&w);
		int rc = vt_json_w_finish(&w);
		if (rc) {
			vt_buf_free(&b);
			return vt_errmsg_set(err, rc, "encoding query %zu", q);
		}
		r->js[q] = (char *)vt_buf_steal(&b, &r->js_len[q]);
		r->n = q + 1;
	}
	return 0;
}

static void ids_from_reply(const ProtobufCMessage *m, uint32_t *ids)
{
	const Vectron__V1__SearchResponse *sr = (const void *)m;
	for (size_t i = 0; i < K; i++)
		ids[i] = sr && i < sr->n_results && sr->results[i]->id
				 ? parse_id(sr->results[i]->id, strlen(sr->results[i]->id))
				 : UINT32_MAX;
}

static int grpc_search_seq(gcli *g, const reqs *rq, pid_t srv, uint32_t *ids, double *lat,
			   span *sp, vt_errmsg *err)
{
	span_start(sp, srv);
	for (size_t q = 0; q < rq->n; q++) {
		ProtobufCMessage *m;
		uint64_t t0 = vt_clock_mono_ns();
		int rc = g_call(g, "Search", NULL, rq->pb[q], rq->pb_len[q],
				&vectron__v1__search_response__descriptor, &m, err);
		if (rc)
			return vt_errmsg_prefix(err, rc, "query %zu", q);
		ids_from_reply(m, ids + q * K);
		vt_grpc_msg_free(m);
		lat[q] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	span_stop(sp);
	return 0;
}

static int rest_search_seq(hcli *h, const char *path, const reqs *rq, pid_t srv, uint32_t *ids,
			   double *lat, span *sp, vt_errmsg *err)
{
	span_start(sp, srv);
	for (size_t q = 0; q < rq->n; q++) {
		uint64_t t0 = vt_clock_mono_ns();
		int rc = h_ok(h, "POST", path, rq->js[q], rq->js_len[q], err);
		if (!rc)
			rc = rest_ids(h->buf + h->body_off, h->body_len, ids + q * K, err);
		if (rc)
			return vt_errmsg_prefix(err, rc, "query %zu", q);
		lat[q] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	span_stop(sp);
	return 0;
}

/* ---- concurrent clients ---------------------------------------------------------- */

typedef struct gconc {
	gcli *g;
	const reqs *rq;
	size_t total, next, done;
	double *lat;
	int failed;
	char msg[256];
} gconc;

static void gc_issue(gconc *r, gcall *c);

static void gc_done(void *ud, int status, const char *message)
{
	gcall *c = ud;
	gconc *r = c->run;
	r->lat[c->q] = (double)(vt_clock_mono_ns() - c->t0) / 1e9;
	vt_grpc_msg_free(c->reply);
	c->reply = NULL;
	r->done++;
	if (status != VT_GRPC_OK && !r->failed) {
		r->failed = 1;
		snprintf(r->msg, sizeof r->msg, "%s: %s", vt_grpc_status_name(status), message);
	}
	if (r->next < r->total && !r->failed)
		gc_issue(r, c);
}

static void gc_issue(gconc *r, gcall *c)
{
	c->q = r->next++;
	size_t qi = c->q % r->rq->n;
	c->t0 = vt_clock_mono_ns();
	if (vt_grpc_client_call(r->g->c, SVC "Search", NULL, r->rq->pb[qi], r->rq->pb_len[qi],
				&vectron__v1__search_response__descriptor, NULL, g_on_msg, gc_done,
				c, NULL)) {
		r->failed = 1;
		snprintf(r->msg, sizeof r->msg, "cannot start a call");
		r->done++;
	}
}

/* `n` calls in flight on one connection until `total` queries are done. */
static int grpc_conc(gcli *g, const reqs *rq, unsigned n, size_t total, pid_t srv,
		     conc_res *out, vt_errmsg *err)
{
	gconc r = {g, rq, total, 0, 0, vt_malloc(total * sizeof(double)), 0, ""};
	gcall *calls = vt_calloc(n, sizeof *calls);
	if (!r.lat || !calls) {
		vt_free(r.lat);
		vt_free(calls);
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	}
	span sp;
	span_start(&sp, srv);
	size_t started = 0;
	for (unsigned i = 0; i < n && r.next < total; i++) {
		calls[i].run = &r;
		gc_issue(&r, &calls[i]);
		started++;
	}
	while (r.done < (r.failed ? started : total) && r.done < r.next)
		uv_run(&g->loop, UV_RUN_ONCE);
	span_stop(&sp);
	int rc = 0;
	if (r.failed)
		rc = vt_errmsg_set(err, VT_EIO, "gRPC, %u clients: %s", n, r.msg);
	else {
		out->qps = (double)total / sp.wall_s;
		out->srv_cpu = sp.srv_s / sp.wall_s;
		percentiles(r.lat, total, &out->p50_ms, &out->p99_ms);
	}
	vt_free(r.lat);
	vt_free(calls);
	return rc;
}

typedef struct hconc {
	int port;
	const char *path;
	const reqs *rq;
	size_t total;
	atomic_size_t next;
	double *lat;
	atomic_int failed;
	pthread_mutex_t mu;
	vt_errmsg err;
} hconc;

static void *rest_worker(void *arg)
{
	hconc *r = arg;
	hcli h;
	vt_errmsg e = {{0}};
	int rc = hcli_open(&h, r->port, &e);
	while (!rc && !atomic_load(&r->failed)) {
		size_t q = atomic_fetch_add(&r->next, 1);
		if (q >= r->total)
			break;
		size_t qi = q % r->rq->n;
		uint64_t t0 = vt_clock_mono_ns();
		rc = h_ok(&h, "POST", r->path, r->rq->js[qi], r->rq->js_len[qi], &e);
		r->lat[q] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	if (rc && !atomic_exchange(&r->failed, 1)) {
		pthread_mutex_lock(&r->mu);
		r->err = e;
		pthread_mutex_unlock(&r->mu);
	}
	hcli_close(&h);
	return NULL;
}

/* `n` threads, each with its own keep-alive connection. */
static int rest_conc(int port, const char *path, const reqs *rq, unsigned n, size_t total,
		     pid_t srv, conc_res *out, vt_errmsg *err)
{
	hconc r;
	memset(&r, 0, sizeof r);
	r.port = port;
	r.path = path;
	r.rq = rq;
	r.total = total;
	pthread_t th[64];
	if (n > 64)
		return vt_errmsg_set(err, VT_EINVAL, "at most 64 REST clients");
	r.lat = vt_malloc(total * sizeof(double));
	if (!r.lat)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	pthread_mutex_init(&r.mu, NULL);
	span sp;
	span_start(&sp, srv);
	for (unsigned i = 0; i < n; i++)
		pthread_create(&th[i], NULL, rest_worker, &r);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	span_stop(&sp);
	int rc = 0;
	if (atomic_load(&r.failed))
		rc = vt_errmsg_set(err, VT_EIO, "REST, %u clients: %s", n, r.err.msg);
	else {
		out->qps = (double)total / sp.wall_s;
		out->srv_cpu = sp.srv_s / sp.wall_s;
		percentiles(r.lat, total, &out->p50_ms, &out->p99_ms);
	}
	pthread_mutex_destroy(&r.mu);
	vt_free(r.lat);
	return rc;
}

/* Median microseconds of `n` sequential round trips of each kind. */
static int pings(gcli *g, hcli *h, const char *coll, size_t n, ping_res *out, vt_errmsg *err)
{
	double *lat = vt_malloc(n * sizeof *lat), p99;
	char path[256];
	int rc = lat ? 0 : vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	Vectron__V1__HealthRequest hr = VECTRON__V1__HEALTH_REQUEST__INIT;
	for (size_t i = 0; !rc && i < n; i++) {
		uint64_t t0 = vt_clock_mono_ns();
		rc = g_call(g, "Health", &hr.base, NULL, 0, &vectron__v1__health_response__descriptor,
			    NULL, err);
		lat[i] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	if (!rc) {
		percentiles(lat, n, &out->grpc_health_us, &p99);
		out->grpc_health_us *= 1e3;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		uint64_t t0 = vt_clock_mono_ns();
		rc = h_ok(h, "GET", "/health", NULL, 0, err);
		lat[i] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	if (!rc) {
		percentiles(lat, n, &out->rest_health_us, &p99);
		out->rest_health_us *= 1e3;
	}
	snprintf(path, sizeof path, "/v1/collections/%s", coll);
	for (size_t i = 0; !rc && i < n; i++) {
		uint64_t t0 = vt_clock_mono_ns();
		rc = h_ok(h, "GET", path, NULL, 0, err);
		lat[i] = (double)(vt_clock_mono_ns() - t0) / 1e9;
	}
	if (!rc) {
		percentiles(lat, n, &out->rest_api_health_us, &p99);
		out->rest_api_health_us *= 1e3;
	}
	vt_free(lat);
	return rc;
}

/* ---- one configuration: S shards in-process and served ------------------------- */

static void seq_keep(seq_res *s, const span *sp, double *lat, size_t nq)
{
	double qps = (double)nq / sp->wall_s;
	if (qps <= s->qps)
		return;
	s->qps = qps;
	s->srv_us = sp->srv_s / (double)nq * 1e6;
	s->self_us = sp->self_s / (double)nq * 1e6;
	s->others_s = sp->others_s;
	s->loop_us = sp->th.loop_s / (double)nq * 1e6;
	s->work_us = sp->th.workers_s / (double)nq * 1e6;
	s->slices = (double)sp->th.slices / (double)nq;
	percentiles(lat, nq, &s->p50_ms, &s->p99_ms);
}

/* The served path through a gateway: the same collection, ingest and
 * queries as serve's gRPC runs. ids_serve: serve's gRPC answers. */
static int cluster_phase(const opts *o, const vt_bench_data *d, const cluster *cl,
			 unsigned shards, const reqs *rq, const uint32_t *ids_serve,
			 uint32_t *ids, double *lat, run_res *rr, vt_errmsg *err)
{
	gcli g;
	int rc = gcli_open(&g, cl->gw.grpc_port, err);
	if (rc)
		return rc;
	/* The workers register within a few heartbeats; until then the PD
	 * refuses the create (not enough workers). */
	uint64_t t0 = vt_clock_mono_ns();
	while ((rc = grpc_create(&g, "fm_grpc", d, shards, err)) &&
	       vt_clock_mono_ns() - t0 < 60ull * 1000000000ull)
		usleep(500000);
	if (!rc) {
		fprintf(stderr, "  cluster gRPC ingest\n");
		rc = grpc_ingest(&g, "fm_grpc", d, cl->gw.pid, &rr->ing_cl, err);
	}
	if (!rc) {
		fprintf(stderr, "  %.0f vectors/s\n", rr->ing_cl.rate);
		span sp;
		reqs w = *rq;
		w.n = rq->n < 300 ? rq->n : 300;
		rc = grpc_search_seq(&g, &w, cl->gw.pid, ids, lat, &sp, err);
	}
	for (unsigned p = 0; !rc && p < o->passes; p++) {
		span sp;
		if ((rc = grpc_search_seq(&g, rq, cl->gw.pid, ids, lat, &sp, err)))
			break;
		seq_keep(&rr->s_cl, &sp, lat, rq->n);
		rr->s_cl.recall = recall_of(d, ids, rq->n);
		rr->cl_same_serve = same_lists(ids_serve, ids, rq->n);
		fprintf(stderr, "  cluster pass %u/%u: %.0f QPS\n", p + 1, o->passes,
			(double)rq->n / sp.wall_s);
	}
	if (!rc)
		rc = grpc_conc(&g, rq, 8, o->conc_queries, cl->gw.pid, &rr->c_cl, err);
	if (!rc)
		rr->cl_done = 1;
	gcli_close(&g);
	return rc;
}

static int run_one(const opts *o, const vt_bench_data *d, const char *rundir, unsigned shards,
		   run_res *rr, vt_errmsg *err)
{
	char dir[1200], log[1200], rest_path[256];
	vt_db *db = NULL;
	vt_coll *c = NULL;
	server srv = {0};
	gcli g;
	hcli h = {.fd = -1};
	reqs rq_g = {0}, rq_r = {0};
	int g_open = 0;
	size_t nq = d->nq;
	uint32_t *ids_in = vt_malloc(nq * K * sizeof *ids_in);
	uint32_t *ids_w = vt_malloc(nq * K * sizeof *ids_w);
	uint32_t *ids_g = vt_malloc(nq * K * sizeof *ids_g); /* served, last pass */
	uint32_t *ids_r = vt_malloc(nq * K * sizeof *ids_r);
	double *lat = vt_malloc(nq * sizeof *lat);
	int rc = 0;
	memset(rr, 0, sizeof *rr);
	rr->shards = shards;
	rr->load_before = vt_bench_loadavg1();
	if (!ids_in || !ids_w || !ids_g || !ids_r || !lat) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}

	/* In-process: a fresh database with the server's defaults. */
	snprintf(dir, sizeof dir, "%s/inproc-%u", rundir, shards);
	vt_db_opts dbo;
	vt_db_opts_default(&dbo);
	dbo.default_shards = shards;
	if ((rc = vt_db_open(dir, &dbo, &db, err)))
		goto out;
	vt_coll_config cc;
	coll_cfg(&cc, "fm", d, shards);
	if ((rc = vt_db_create(db, &cc, err)) || (rc = vt_db_get(db, "fm", &c)))
		goto out;
	fprintf(stderr, "[%u shard(s)] in-process ingest of %zu points\n", shards, d->n);
	if ((rc = inproc_ingest(c, d, &rr->ing_inproc, err)))
		goto out;
	fprintf(stderr, "  %.0f vectors/s\n", rr->ing_inproc.rate);

	/* The ef sweep: the first ef reaching the target. */
	rr->ef = 0;
	for (size_t i = 0; i < N_EFS; i++) {
		span sp;
		if ((rc = inproc_search(c, d, nq, efs[i], ids_in, NULL, &sp, err)))
			goto out;
		rr->sweep_recall[i] = recall_of(d, ids_in, nq);
		rr->sweep_qps[i] = (double)nq / sp.wall_s;
		rr->n_sweep = i + 1;
		fprintf(stderr, "  ef %3u: recall %.4f, %.0f QPS\n", efs[i], rr->sweep_recall[i],
			rr->sweep_qps[i]);
		if (rr->sweep_recall[i] >= TARGET_RECALL) {
			rr->ef = efs[i];
			break;
		}
	}
	if (!rr->ef) {
		rc = vt_errmsg_set(err, VT_EINVAL, "recall %.2f not reached by ef %u",
				   TARGET_RECALL, efs[N_EFS - 1]);
		goto out;
	}

	/* The server, two collections filled over each transport. */
	snprintf(dir, sizeof dir, "%s/serve-%u", rundir, shards);
	snprintf(log, sizeof log, "%s/serve-%u.log", rundir, shards);
	if ((rc = server_start(o->vectron, dir, log, shards, &srv, err)))
		goto out;
	fprintf(stderr, "  server pid %d: REST %d, gRPC %d\n", (int)srv.pid, srv.rest_port,
		srv.grpc_port);
	if ((rc = gcli_open(&g, srv.grpc_port, err)))
		goto out;
	g_open = 1;
	if ((rc = hcli_open(&h, srv.rest_port, err)))
		goto out;
	if ((rc = grpc_create(&g, "fm_grpc", d, shards, err)) ||
	    (rc = rest_create(&h, "fm_rest", d, shards, err)))
		goto out;
	fprintf(stderr, "  gRPC ingest\n");
	if ((rc = grpc_ingest(&g, "fm_grpc", d, srv.pid, &rr->ing_grpc, err)))
		goto out;
	fprintf(stderr, "  %.0f vectors/s\n  REST ingest\n", rr->ing_grpc.rate);
	/* The REST connection sat idle through the gRPC ingest, which on a
	 * loaded machine takes over the server's 60 s keep-alive idle
	 * timeout: the server closes it. Ingest on a fresh one. */
	hcli_close(&h);
	if ((rc = hcli_open(&h, srv.rest_port, err)))
		goto out;
	if ((rc = rest_ingest(&h, "fm_rest", d, srv.pid, &rr->ing_rest, err)))
		goto out;
	fprintf(stderr, "  %.0f vectors/s\n", rr->ing_rest.rate);
	/* The gRPC connection sat unread through the REST ingest (over a
	 * minute): the server's keepalive PING went unanswered and it closed
	 * the connection. Start the searches on a fresh one. */
	gcli_close(&g);
	g_open = 0;
	if ((rc = gcli_open(&g, srv.grpc_port, err)))
		goto out;
	g_open = 1;

	/* Sequential search, passes interleaved: in-process, gRPC, REST. */
	if ((rc = reqs_build(d, nq, "fm_grpc", rr->ef, &rq_g, err)) ||
	    (rc = reqs_build(d, nq, "fm_rest", rr->ef, &rq_r, err)))
		goto out;
	snprintf(rest_path, sizeof rest_path, "/v1/collections/fm_rest/points/search");
	/* warm-up: a few hundred queries each way */
	{
		span sp;
		size_t wq = nq < 300 ? nq : 300;
		reqs wg = rq_g, wr = rq_r;
		wg.n = wr.n = wq;
		if ((rc = grpc_search_seq(&g, &wg, srv.pid, ids_w, lat, &sp, err)) ||
		    (rc = rest_search_seq(&h, rest_path, &wr, srv.pid, ids_w, lat, &sp, err)))
			goto out;
	}
	for (unsigned p = 0; p < o->passes; p++) {
		span sp;
		fprintf(stderr, "  pass %u/%u: in-process", p + 1, o->passes);
		if ((rc = inproc_search(c, d, nq, rr->ef, ids_in, lat, &sp, err)))
			goto out;
		seq_keep(&rr->s_inproc, &sp, lat, nq);
		rr->s_inproc.recall = recall_of(d, ids_in, nq);
		rr->s_inproc.same_ids = nq;
		fprintf(stderr, " %.0f QPS, gRPC", (double)nq / sp.wall_s);
		if ((rc = grpc_search_seq(&g, &rq_g, srv.pid, ids_w, lat, &sp, err)))
			goto out;
		seq_keep(&rr->s_grpc, &sp, lat, nq);
		rr->s_grpc.recall = recall_of(d, ids_w, nq);
		rr->s_grpc.same_ids = same_lists(ids_in, ids_w, nq);
		memcpy(ids_g, ids_w, nq * K * sizeof *ids_g);
		fprintf(stderr, " %.0f QPS, REST", (double)nq / sp.wall_s);
		if ((rc = rest_search_seq(&h, rest_path, &rq_r, srv.pid, ids_w, lat, &sp, err)))
			goto out;
		seq_keep(&rr->s_rest, &sp, lat, nq);
		rr->s_rest.recall = recall_of(d, ids_w, nq);
		rr->s_rest.same_ids = same_lists(ids_in, ids_w, nq);
		memcpy(ids_r, ids_w, nq * K * sizeof *ids_r);
		fprintf(stderr, " %.0f QPS\n", (double)nq / sp.wall_s);
	}

	/* Both transports on one graph must give the same ids. */
	{
		span sp;
		if ((rc = rest_search_seq(&h, "/v1/collections/fm_grpc/points/search", &rq_r,
					  srv.pid, ids_w, lat, &sp, err)))
			goto out;
		rr->cross_same = same_lists(ids_g, ids_w, nq);
	}
	if ((rc = pings(&g, &h, "fm_rest", nq < 2000 ? nq : 2000, &rr->ping, err)))
		goto out;

	/* Concurrent clients. */
	for (unsigned i = 0; i < N_CONC; i++) {
		unsigned n = conc_levels[i];
		fprintf(stderr, "  %u clients: gRPC", n);
		if ((rc = grpc_conc(&g, &rq_g, n, o->conc_queries, srv.pid, &rr->c_grpc[i], err)))
			goto out;
		fprintf(stderr, " %.0f QPS, REST", rr->c_grpc[i].qps);
		if ((rc = rest_conc(srv.rest_port, rest_path, &rq_r, n, o->conc_queries, srv.pid,
				    &rr->c_rest[i], err)))
			goto out;
		fprintf(stderr, " %.0f QPS\n", rr->c_rest[i].qps);
	}
	rr->load_after = vt_bench_loadavg1();

	/* The served ids against the server's own graphs: stop it (it saves
	 * its index snapshots) and open its data in-process. */
	hcli_close(&h);
	gcli_close(&g);
	g_open = 0;
	if ((rc = server_stop(&srv, err)))
		goto out;
	vt_coll_release(c);
	c = NULL;
	vt_db_close(db);
	db = NULL;
	{
		/* a server of an earlier build (--vectron) kept collections/ */
		char view[sizeof dir + 8], old[sizeof dir + 16];
		struct stat st;
		snprintf(view, sizeof view, "%s.view", dir);
		snprintf(old, sizeof old, "%s/collections", dir);
		if (!stat(old, &st))
			snprintf(view, sizeof view, "%s", dir);
		else if ((rc = served_view(dir, view, err)))
			goto out;
		if ((rc = vt_db_open(view, &dbo, &db, err)))
			goto out;
	}
	for (int t = 0; t < 2; t++) {
		span sp;
		if ((rc = vt_db_get(db, t ? "fm_rest" : "fm_grpc", &c)) ||
		    (rc = inproc_search(c, d, nq, rr->ef, ids_in, NULL, &sp, err)))
			goto out;
		if (t)
			rr->s_rest.same_data = same_lists(ids_in, ids_r, nq);
		else
			rr->s_grpc.same_data = same_lists(ids_in, ids_g, nq);
		vt_coll_release(c);
		c = NULL;
	}

	if (o->cluster_workers) {
		cluster cl;
		snprintf(dir, sizeof dir, "%s/cluster-%u", rundir, shards);
		mkdir(dir, 0755);
		fprintf(stderr, "  cluster: 1 PD, %u workers, rf %u, a gateway\n",
			o->cluster_workers, o->cluster_rf);
		if ((rc = cluster_start(o->vectron, dir, o->cluster_workers, o->cluster_rf, &cl,
					err)))
			goto out;
		rc = cluster_phase(o, d, &cl, shards, &rq_g, ids_g, ids_w, lat, rr, err);
		cluster_stop(&cl);
		if (rc)
			goto out;
	}
out:
	reqs_free(&rq_g);
	reqs_free(&rq_r);
	hcli_close(&h);
	if (g_open)
		gcli_close(&g);
	if (srv.pid) {
		vt_errmsg e2 = {{0}};
		if (server_stop(&srv, &e2) && !rc)
			rc = vt_errmsg_set(err, VT_EIO, "%s", e2.msg);
	}
	vt_coll_release(c);
	vt_db_close(db);
	vt_free(ids_in);
	vt_free(ids_w);
	vt_free(ids_g);
	vt_free(ids_r);
	vt_free(lat);
	return rc;
}

/* ---- report ------------------------------------------------------------------------ */

static const char *pf(double ratio, double target)
{
	return ratio >= target ? "pass" : "FAIL";
}

static void report(const opts *o, const vt_bench_data *d, const run_res *rs, size_t n,
		   int argc, char **argv)
{
	char host[256] = "?";
	gethostname(host, sizeof host);
	printf("## vt_bench_serve\n\n");
	printf("Command: `");
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("`\n\n");
	printf("Data: %s, %zu base x %u dims, %zu queries, squared L2 (the API's score is the "
	       "Euclidean distance), k = %u. HNSW M = %u, ef_construct = %u, sync indexing, "
	       "batches of %u. Server: `%s serve --shards S` (threads = CPUs = %u). "
	       "Sequential QPS: best of %u interleaved passes.\n\n",
	       d->name, d->n, d->dim, d->nq, K, HNSW_M, HNSW_EFC, BATCH, o->vectron,
	       vt_cpu_count(), o->passes);
	for (size_t i = 0; i < n; i++) {
		const run_res *r = &rs[i];
		double gr = r->s_grpc.qps / r->s_inproc.qps, rr = r->s_rest.qps / r->s_inproc.qps;
		printf("### %u shard%s (load average %.1f before, %.1f after)\n\n", r->shards,
		       r->shards > 1 ? "s" : "", r->load_before, r->load_after);
		printf("Ingest (vectors/s; time inside the calls, request encoding excluded; wall "
		       "rate with encoding in brackets):\n\n");
		printf("| path | vectors/s | vs in-process | others' CPU-s |\n|---|---:|---:|---:|\n");
		printf("| in-process vt_coll_upsert | %.0f (%.0f) | 1.00x | %.1f |\n",
		       r->ing_inproc.rate, r->ing_inproc.wall_rate, r->ing_inproc.others_s);
		printf("| gRPC Upsert | %.0f (%.0f) | %.2fx | %.1f |\n", r->ing_grpc.rate,
		       r->ing_grpc.wall_rate, r->ing_grpc.rate / r->ing_inproc.rate,
		       r->ing_grpc.others_s);
		printf("| REST POST points | %.0f (%.0f) | %.2fx | %.1f |\n\n", r->ing_rest.rate,
		       r->ing_rest.wall_rate, r->ing_rest.rate / r->ing_inproc.rate,
		       r->ing_rest.others_s);
		printf("ef sweep in-process (first ef with recall@10 >= %.2f is used):",
		       TARGET_RECALL);
		for (size_t j = 0; j < r->n_sweep; j++)
			printf(" ef %u: %.4f / %.0f QPS;", efs[j], r->sweep_recall[j],
			       r->sweep_qps[j]);
		printf("\n\nSequential search, one client, ef = %u:\n\n", r->ef);
		printf("| path | QPS | ratio | target | p50 ms | p99 ms | server CPU us/q | bench "
		       "CPU us/q | recall@10 | same ids as bench-built | same ids as server's data | "
		       "others' CPU-s |\n"
		       "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		printf("| in-process | %.0f | 1.00x | | %.3f | %.3f | | %.1f | %.4f | %zu/%zu | | "
		       "%.1f |\n",
		       r->s_inproc.qps, r->s_inproc.p50_ms, r->s_inproc.p99_ms, r->s_inproc.self_us,
		       r->s_inproc.recall, r->s_inproc.same_ids, d->nq, r->s_inproc.others_s);
		printf("| gRPC | %.0f | %.2fx | >= %.1fx: %s | %.3f | %.3f | %.1f | %.1f | %.4f | "
		       "%zu/%zu | %zu/%zu | %.1f |\n",
		       r->s_grpc.qps, gr, TARGET_GRPC, pf(gr, TARGET_GRPC), r->s_grpc.p50_ms,
		       r->s_grpc.p99_ms, r->s_grpc.srv_us, r->s_grpc.self_us, r->s_grpc.recall,
		       r->s_grpc.same_ids, d->nq, r->s_grpc.same_data, d->nq, r->s_grpc.others_s);
		printf("| REST | %.0f | %.2fx | >= %.1fx: %s | %.3f | %.3f | %.1f | %.1f | %.4f | "
		       "%zu/%zu | %zu/%zu | %.1f |\n\n",
		       r->s_rest.qps, rr, TARGET_REST, pf(rr, TARGET_REST), r->s_rest.p50_ms,
		       r->s_rest.p99_ms, r->s_rest.srv_us, r->s_rest.self_us, r->s_rest.recall,
		       r->s_rest.same_ids, d->nq, r->s_rest.same_data, d->nq, r->s_rest.others_s);
		printf("REST searches of the gRPC-filled collection with the same ids as the "
		       "gRPC answers: %zu/%zu.\n\n",
		       r->cross_same, d->nq);
		printf("Server threads per sequential query (schedstat, best pass): gRPC: loop "
		       "thread %.1f us, workers %.1f us, %.1f switch-ins; REST: loop thread %.1f "
		       "us, workers %.1f us, %.1f switch-ins.\n\n",
		       r->s_grpc.loop_us, r->s_grpc.work_us, r->s_grpc.slices, r->s_rest.loop_us,
		       r->s_rest.work_us, r->s_rest.slices);
		printf("Round trips without a search (median): gRPC Health (transport + pool "
		       "hop) %.1f us; REST GET /health (answered on the loop) %.1f us; REST GET "
		       "/v1/collections/fm_rest (pool hop, small JSON) %.1f us. In-process search "
		       "median at this ef: %.1f us.\n\n",
		       r->ping.grpc_health_us, r->ping.rest_health_us, r->ping.rest_api_health_us,
		       r->s_inproc.p50_ms * 1e3);
		if (r->cl_done) {
			printf("Through a gateway (1 PD node, %u workers, rf %u, %u shards; gRPC; "
			       "not interleaved with the passes above):\n\n",
			       o->cluster_workers, o->cluster_rf, r->shards);
			printf("| path | ingest vectors/s | seq QPS | vs in-process | vs serve "
			       "gRPC | p50 ms | p99 ms | gateway CPU us/q | recall@10 | same "
			       "ids as serve | 8 clients QPS | p99 ms |\n"
			       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
			printf("| gateway gRPC | %.0f | %.0f | %.2fx | %.2fx | %.3f | %.3f | %.1f | "
			       "%.4f | %zu/%zu | %.0f | %.3f |\n\n",
			       r->ing_cl.rate, r->s_cl.qps, r->s_cl.qps / r->s_inproc.qps,
			       r->s_cl.qps / r->s_grpc.qps, r->s_cl.p50_ms, r->s_cl.p99_ms,
			       r->s_cl.srv_us, r->s_cl.recall, r->cl_same_serve, d->nq,
			       r->c_cl.qps, r->c_cl.p99_ms);
		}
		printf("Concurrent clients (%zu queries each; gRPC: calls in flight on one "
		       "connection; REST: one connection per client thread):\n\n",
		       o->conc_queries);
		printf("| clients | gRPC QPS | p50 ms | p99 ms | server CPUs | REST QPS | p50 ms | "
		       "p99 ms | server CPUs |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		for (unsigned j = 0; j < N_CONC; j++)
			printf("| %u | %.0f | %.3f | %.3f | %.2f | %.0f | %.3f | %.3f | %.2f |\n",
			       conc_levels[j], r->c_grpc[j].qps, r->c_grpc[j].p50_ms,
			       r->c_grpc[j].p99_ms, r->c_grpc[j].srv_cpu, r->c_rest[j].qps,
			       r->c_rest[j].p50_ms, r->c_rest[j].p99_ms, r->c_rest[j].srv_cpu);
		printf("\n");
	}
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vt_bench_serve [options]\n"
		"  --quick         5,000 base / 300 queries / 1 pass (the CTest smoke)\n"
		"  --n N           base vectors (default all 60,000)\n"
		"  --queries N     queries (default all 10,000)\n"
		"  --conc-queries N  queries per concurrency level (default 10,000)\n"
		"  --passes N      sequential search passes, best counts (default 3)\n"
		"  --shards LIST   shard counts to run, e.g. 1,2 (default 1,2)\n"
		"  --vectron PATH  the vectron binary [%s]\n"
		"  --dir DIR       where the run's directory goes [$TMPDIR or /tmp]\n"
		"  --cache DIR     ground truth cache [$VT_BENCH_CACHE or ./build/bench-cache]\n"
		"  --keep          keep the run's directory\n"
		"  --cluster N     also run through a gateway over 1 PD node and N workers\n"
		"  --rf R          voters per shard in that cluster (default 3)\n",
		VT_BENCH_VECTRON_PATH);
}

static int parse_opts(int argc, char **argv, opts *o)
{
	static const struct option lo[] = {
		{"quick", no_argument, 0, 'q'},	     {"n", required_argument, 0, 'n'},
		{"queries", required_argument, 0, 'Q'}, {"conc-queries", required_argument, 0, 'C'},
		{"passes", required_argument, 0, 'p'},  {"shards", required_argument, 0, 's'},
		{"vectron", required_argument, 0, 'v'}, {"dir", required_argument, 0, 'd'},
		{"cache", required_argument, 0, 'c'},   {"keep", no_argument, 0, 'k'},
		{"cluster", required_argument, 0, 'W'}, {"rf", required_argument, 0, 'R'},
		{"help", no_argument, 0, 'h'},	     {0, 0, 0, 0}};
	memset(o, 0, sizeof *o);
	o->passes = 3;
	o->conc_queries = 10000;
	o->shards[0] = 1;
	o->shards[1] = 2;
	o->n_shards = 2;
	o->vectron = VT_BENCH_VECTRON_PATH;
	const char *t = getenv("TMPDIR");
	snprintf(o->parent, sizeof o->parent, "%s", t && *t ? t : "/tmp");
	const char *env = getenv("VT_BENCH_CACHE");
	snprintf(o->cache, sizeof o->cache, "%s", env && *env ? env : "./build/bench-cache");
	int ch, quick_passes = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'q':
			o->quick = 1;
			break;
		case 'n':
			o->n_base = strtoull(optarg, NULL, 10);
			break;
		case 'Q':
			o->n_queries = strtoull(optarg, NULL, 10);
			break;
		case 'C':
			o->conc_queries = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			o->passes = (unsigned)strtoul(optarg, NULL, 10);
			quick_passes = 1;
			break;
		case 's': {
			o->n_shards = 0;
			for (char *p = optarg; *p && o->n_shards < MAX_SHARD_RUNS;) {
				char *e;
				unsigned long v = strtoul(p, &e, 10);
				if (e == p || v < 1 || v > 256)
					return -1;
				o->shards[o->n_shards++] = (unsigned)v;
				p = *e == ',' ? e + 1 : e;
			}
			if (!o->n_shards)
				return -1;
			break;
		}
		case 'v':
			o->vectron = optarg;
			break;
		case 'd':
			snprintf(o->parent, sizeof o->parent, "%s", optarg);
			break;
		case 'c':
			snprintf(o->cache, sizeof o->cache, "%s", optarg);
			break;
		case 'k':
			o->keep = 1;
			break;
		case 'W':
			o->cluster_workers = (unsigned)strtoul(optarg, NULL, 10);
			if (o->cluster_workers < 1 || o->cluster_workers > MAX_CL_PROCS - 1)
				return -1;
			break;
		case 'R':
			o->cluster_rf = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (o->quick) {
		if (!o->n_base)
			o->n_base = 5000;
		if (!o->n_queries)
			o->n_queries = 300;
		if (!quick_passes)
			o->passes = 1;
		o->conc_queries = 600;
	}
	if (!o->passes)
		o->passes = 1;
	if (!o->cluster_rf)
		o->cluster_rf = o->cluster_workers < 3 ? o->cluster_workers : 3;
	return 0;
}

int main(int argc, char **argv)
{
	opts o;
	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	vt_log_set_level(VT_LOG_WARN);
	vt_errmsg err = {{0}};
	vt_bench_data d;
	memset(&d, 0, sizeof d);
	run_res rs[MAX_SHARD_RUNS];
	size_t done = 0;
	char rundir[1100];
	snprintf(rundir, sizeof rundir, "%s/vt-bench-serve-XXXXXX", o.parent);
	int rc = vt_bench_data_load("fmnist", o.n_base, o.n_queries, &d, &err);
	if (!rc) {
		mkdir(o.cache, 0755);
		rc = vt_bench_gt_get(&d, o.cache, 2, &err);
	}
	if (!rc)
		rc = vt_bench_gt_verify(&d, 3, &err);
	if (!rc && !mkdtemp(rundir))
		rc = vt_errmsg_set(&err, VT_EIO, "mkdtemp %s: %s", rundir, strerror(errno));
	int made = !rc;
	for (unsigned i = 0; !rc && i < o.n_shards; i++) {
		rc = run_one(&o, &d, rundir, o.shards[i], &rs[i], &err);
		if (!rc)
			done++;
	}
	if (done)
		report(&o, &d, rs, done, argc, argv);
	int bad = 0;
	for (size_t i = 0; i < done; i++) {
		const run_res *r = &rs[i];
		if (fabs(r->s_grpc.recall - r->s_inproc.recall) > SANITY_RECALL_DIFF ||
		    fabs(r->s_rest.recall - r->s_inproc.recall) > SANITY_RECALL_DIFF) {
			fprintf(stderr, "sanity: served recall differs from in-process (%u shards)\n",
				r->shards);
			bad = 1;
		}
		if (r->cross_same != d.nq) {
			fprintf(stderr,
				"sanity: REST and gRPC answers differ on one collection "
				"(%zu/%zu same, %u shards)\n",
				r->cross_same, d.nq, r->shards);
			bad = 1;
		}
		if (r->s_grpc.same_data != d.nq || r->s_rest.same_data != d.nq)
			fprintf(stderr,
				"note: served ids differ from the server's data reopened "
				"in-process in %zu + %zu queries (%u shards): the reopened "
				"index is not the graph that answered\n",
				d.nq - r->s_grpc.same_data, d.nq - r->s_rest.same_data,
				r->shards);
	}
	if (made && !o.keep)
		vt_bench_rm_rf("vt_bench_serve", rundir);
	else if (made)
		fprintf(stderr, "kept %s\n", rundir);
	vt_bench_data_free(&d);
	if (rc) {
		fprintf(stderr, "vt_bench_serve: %s\n", err.msg);
		return 1;
	}
	return bad;
}
