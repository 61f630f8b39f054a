/* test_shard_crash.c: kill -9 while a shard applies commands, then check
 * the shard. A child opens the shard (with a background thread, small
 * index snapshots so snapshots and WAL trims run all the time, an indexed
 * payload field) and applies a deterministic stream of commands: upsert
 * batches over a bounded id space (so later ones overwrite), deletes by id,
 * set_payload (replace and merge), with an occasional checkpoint; it
 * reports each acknowledged command index on a pipe. The parent SIGKILLs it
 * at a random moment, reopens the shard and checks it against a model
 * built by replaying the commands up to the applied index: the applied
 * index covers every acknowledged command (at most the one in flight
 * beyond), never goes back, every point has exactly its vector and
 * payload, and the index holds exactly the store's points and finds them.
 * Two shards, one in sync and one in async index mode, take turns.
 * VT_CRASH_ROUNDS=200 runs a longer campaign (default 20); VT_CRASH_SEED
 * changes the kill times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "shard/shard.h"

#define DIM 16
#define IDS 2500u     /* the id space: "p0" .. "p2499" */
#define MAX_BATCH 40u

/* ---- the command stream: a function of the command index only ---------- */

enum { C_UPSERT, C_DELETE, C_REPLACE, C_MERGE };

struct desc {
	int kind;
	uint32_t n;
	uint32_t ids[MAX_BATCH];
};

static void gen(uint64_t index, struct desc *d)
{
	vt_rng r;
	vt_rng_seed(&r, vt_mix64(index * 0x2545F4914F6CDD1Dull + 77));
	uint32_t k = (uint32_t)(vt_rng_next(&r) % 100);
	uint32_t stride = 1;
	if (k < 55) {
		d->kind = C_UPSERT;
		d->n = 1 + (uint32_t)(vt_rng_next(&r) % MAX_BATCH);
	} else if (k < 75) {
		d->kind = C_DELETE;
		d->n = 1 + (uint32_t)(vt_rng_next(&r) % 20);
		stride = 1 + (uint32_t)(vt_rng_next(&r) % 5);
	} else {
		d->kind = k < 90 ? C_REPLACE : C_MERGE;
		d->n = 1 + (uint32_t)(vt_rng_next(&r) % 4);
		stride = 1 + (uint32_t)(vt_rng_next(&r) % 3);
	}
	uint32_t start = (uint32_t)(vt_rng_next(&r) % IDS);
	for (uint32_t j = 0; j < d->n; j++)
		d->ids[j] = (start + j * stride) % IDS; /* distinct */
}

/* The vector point n gets from the upsert at command `ver`. */
static void vec_of(uint32_t n, uint64_t ver, float *v)
{
	vt_rng r;
	vt_rng_seed(&r, vt_mix64(((uint64_t)n << 32) ^ ver));
	for (int j = 0; j < DIM; j++)
		v[j] = (float)(vt_rng_double(&r) * 2 - 1);
}

static int id_of(uint32_t n, char *buf, size_t cap)
{
	return snprintf(buf, cap, "p%u", n);
}

/* What a point's payload holds; 0 = key absent. Rendered canonically
 * (compact, keys sorted) so stored bytes compare equal. */
struct pl {
	uint32_t cat;
	uint64_t m, s, v;
};

static int render(uint32_t n, const struct pl *p, char *buf, size_t cap)
{
	int k = snprintf(buf, cap, "{\"cat\":%u", p->cat);
	if (p->m)
		k += snprintf(buf + k, cap - (size_t)k, ",\"m\":%llu",
			      (unsigned long long)p->m);
	k += snprintf(buf + k, cap - (size_t)k, ",\"n\":%u", n);
	if (p->s)
		k += snprintf(buf + k, cap - (size_t)k, ",\"s\":%llu",
			      (unsigned long long)p->s);
	if (p->v)
		k += snprintf(buf + k, cap - (size_t)k, ",\"v\":%llu",
			      (unsigned long long)p->v);
	return k + snprintf(buf + k, cap - (size_t)k, "}");
}

static void encode(uint64_t index, const struct desc *d, vt_buf *b)
{
	char id[32], pl[160];
	int rc = 0;
	switch (d->kind) {
	case C_UPSERT:
		rc = vt_cmd_enc_begin(b, VT_CMD_UPSERT, 0, DIM);
		for (uint32_t j = 0; j < d->n && !rc; j++) {
			float v[DIM];
			uint32_t n = d->ids[j];
			struct pl p = {(uint32_t)((n + index) % 10), 0, 0, index};
			vec_of(n, index, v);
			int il = id_of(n, id, sizeof id);
			int pn = render(n, &p, pl, sizeof pl);
			rc = vt_cmd_enc_upsert(b, id, (size_t)il, v, DIM, pl,
					       (size_t)pn);
		}
		break;
	case C_DELETE:
		rc = vt_cmd_enc_begin(b, VT_CMD_DELETE_IDS, 0, 0);
		for (uint32_t j = 0; j < d->n && !rc; j++) {
			int il = id_of(d->ids[j], id, sizeof id);
			rc = vt_cmd_enc_id(b, id, (size_t)il);
		}
		break;
	default:
		rc = vt_cmd_enc_begin(b, VT_CMD_SET_PAYLOAD,
				      d->kind == C_MERGE ? VT_CMD_MERGE : 0, 0);
		for (uint32_t j = 0; j < d->n && !rc; j++) {
			uint32_t n = d->ids[j];
			int il = id_of(n, id, sizeof id);
			int pn;
			if (d->kind == C_MERGE)
				pn = snprintf(pl, sizeof pl,
					      "{\"m\":%llu,\"cat\":%u}",
					      (unsigned long long)index,
					      (uint32_t)(index % 10));
			else {
				struct pl p = {(uint32_t)((n * 3 + index) % 10),
					       0, index, 0};
				pn = render(n, &p, pl, sizeof pl);
			}
			rc = vt_cmd_enc_payload(b, id, (size_t)il, pl, (size_t)pn);
		}
		break;
	}
	if (!rc)
		rc = vt_cmd_enc_end(b, d->n);
	if (rc) {
		fprintf(stderr, "encoding command %llu: %s\n",
			(unsigned long long)index, vt_strerror(rc));
		abort();
	}
}

/* ---- the model ------------------------------------------------------------*/

struct model {
	uint64_t applied;
	uint64_t live;
	uint8_t present[IDS];
	uint64_t vec_ver[IDS];
	struct pl pl[IDS];
};

/* Applies command `index` to the model as the shard must: a set_payload
 * naming an absent id is rejected whole. */
static void model_apply(struct model *m, uint64_t index)
{
	struct desc d;
	gen(index, &d);
	switch (d.kind) {
	case C_UPSERT:
		for (uint32_t j = 0; j < d.n; j++) {
			uint32_t n = d.ids[j];
			m->live += !m->present[n];
			m->present[n] = 1;
			m->vec_ver[n] = index;
			m->pl[n] = (struct pl){(uint32_t)((n + index) % 10), 0, 0,
					       index};
		}
		break;
	case C_DELETE:
		for (uint32_t j = 0; j < d.n; j++) {
			m->live -= m->present[d.ids[j]];
			m->present[d.ids[j]] = 0;
		}
		break;
	default:
		for (uint32_t j = 0; j < d.n; j++)
			if (!m->present[d.ids[j]])
				goto done; /* rejected */
		for (uint32_t j = 0; j < d.n; j++) {
			uint32_t n = d.ids[j];
			if (d.kind == C_MERGE) {
				m->pl[n].m = index;
				m->pl[n].cat = (uint32_t)(index % 10);
			} else {
				m->pl[n] = (struct pl){
					(uint32_t)((n * 3 + index) % 10), 0,
					index, 0};
			}
		}
		break;
	}
done:
	m->applied = index;
}

/* ---- the shard ----------------------------------------------------------- */

static void config(vt_shard_config *c, int mode)
{
	vt_shard_config_default(c, DIM, VT_METRIC_L2);
	c->m = 8;
	c->ef_construction = 48;
	c->index_mode = mode;
	c->n_fields = 1;
	strcpy(c->fields[0].path, "cat");
	c->fields[0].type = VT_PAYLOAD_INTEGER;
}

static int open_shard(const char *dir, int mode, int child, vt_shard **out,
		      vt_errmsg *e)
{
	vt_shard_config cfg;
	config(&cfg, mode);
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.index_threads = 1;
	o.background = child;
	o.snapshot_entries = child ? 300 : 0;
	o.queue_max = 2000;
	return vt_shard_open(dir, &o, out, e);
}

/* The child: applies commands from applied + 1 on, acknowledging each. */
static void child(const char *dir, int mode, int fd)
{
	vt_shard *s;
	vt_errmsg e = {{0}};
	if (open_shard(dir, mode, 1, &s, &e)) {
		fprintf(stderr, "child: open: %s\n", e.msg);
		_exit(2);
	}
	vt_shard_status st;
	if (vt_shard_status_get(s, &st))
		_exit(3);
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	for (uint64_t i = st.applied + 1;; i++) {
		struct desc d;
		gen(i, &d);
		encode(i, &d, &b);
		int rc;
		while ((rc = vt_shard_apply(s, i, b.data, b.len, NULL, &e)) ==
		       VT_EOVERLOAD) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		/* A set_payload naming an absent id is rejected, its index
		 * consumed: as final as a success. */
		if (rc && !(rc == VT_ENOENT &&
			    (d.kind == C_REPLACE || d.kind == C_MERGE))) {
			fprintf(stderr, "child: apply %llu: %s\n",
				(unsigned long long)i, e.msg);
			_exit(4);
		}
		if (write(fd, &i, sizeof i) != sizeof i)
			_exit(5);
		if (vt_mix64(i) % 40 == 0 && vt_shard_checkpoint(s, &e)) {
			fprintf(stderr, "child: checkpoint: %s\n", e.msg);
			_exit(6);
		}
	}
}

/* Graph searches that missed a point the exact search found (see
 * search_self). */
static unsigned long graph_misses;

/* Searches for point n's own vector: exact (brute force over the index's
 * vectors), then through the graph, with and without a filter on the
 * indexed field. The exact search must find it: the index holds the
 * point's current vector. The graph search uses a beam larger than the
 * shard (ef 4096 > 2,500 ids), so it walks everything reachable: a miss
 * means a node no search can reach (what consolidation used to leave,
 * fixed in lib/hnsw), and fails. VT_CRASH_LENIENT_GRAPH=1 only counts
 * such misses. */
static void search_self(vt_shard *s, uint32_t n, const struct model *m,
			int exact, int filtered, int round)
{
	float v[DIM];
	vec_of(n, m->vec_ver[n], v);
	vt_shard_query q;
	vt_shard_query_default(&q, v, 1);
	q.exact = exact;
	q.ef = 4096;
	vt_filter *f = NULL;
	vt_errmsg e = {{0}};
	if (filtered) {
		char fj[96];
		int fl = snprintf(fj, sizeof fj,
				  "{\"must\":[{\"key\":\"cat\",\"match\":"
				  "{\"value\":%u}}]}",
				  m->pl[n].cat);
		if (vt_filter_parse(fj, (size_t)fl, vt_shard_schema(s), &f, &e))
			fail_msg("filter %s: %s", fj, e.msg);
		q.filter = f;
	}
	vt_shard_results r;
	if (vt_shard_search(s, &q, &r, &e))
		fail_msg("round %d: search: %s", round, e.msg);
	char id[32];
	int il = id_of(n, id, sizeof id);
	if (r.n != 1 || r.hits[0].id_len != (uint32_t)il ||
	    memcmp(r.hits[0].id, id, (size_t)il) || r.hits[0].dist != 0) {
		if (exact || !getenv("VT_CRASH_LENIENT_GRAPH"))
			fail_msg("round %d: search (exact %d, filtered %d) for "
				 "%s's vector: got %.*s",
				 round, exact, filtered, id,
				 r.n ? (int)r.hits[0].id_len : 4,
				 r.n ? r.hits[0].id : "none");
		graph_misses++;
	}
	vt_shard_results_free(&r);
	vt_filter_free(f);
}

/* Reopens the shard after the kill and checks it against the model, which
 * it first brings to the applied index. Returns that index. */
static uint64_t check_shard(const char *dir, int mode, struct model *m,
			    uint64_t acked, int round, vt_rng *r,
			    uint64_t *snap_index)
{
	vt_shard *s;
	vt_errmsg e = {{0}};
	if (open_shard(dir, mode, 0, &s, &e))
		fail_msg("round %d: reopen: %s", round, e.msg);
	vt_shard_status st;
	assert_int_equal(vt_shard_status_get(s, &st), 0);
	if (st.applied < acked || st.applied > acked + 1 ||
	    st.applied < m->applied)
		fail_msg("round %d: applied %llu, acknowledged %llu, before "
			 "the round %llu",
			 round, (unsigned long long)st.applied,
			 (unsigned long long)acked,
			 (unsigned long long)m->applied);
	while (m->applied < st.applied)
		model_apply(m, m->applied + 1);
	if (st.points != m->live || st.index_points != st.points ||
	    st.indexed != st.applied)
		fail_msg("round %d: %llu points (model %llu), %llu in the "
			 "index, indexed %llu of %llu",
			 round, (unsigned long long)st.points,
			 (unsigned long long)m->live,
			 (unsigned long long)st.index_points,
			 (unsigned long long)st.indexed,
			 (unsigned long long)st.applied);
	/* Every point, exactly; absent ones absent. */
	static char idbuf[IDS][16];
	static const char *ids[IDS];
	static uint32_t lens[IDS];
	for (uint32_t n = 0; n < IDS; n++) {
		lens[n] = (uint32_t)id_of(n, idbuf[n], sizeof idbuf[n]);
		ids[n] = idbuf[n];
	}
	vt_shard_results res;
	if (vt_shard_get(s, ids, lens, IDS, 1, 1, &res, &e))
		fail_msg("round %d: get: %s", round, e.msg);
	size_t h = 0;
	for (uint32_t n = 0; n < IDS; n++) {
		int here = h < res.n && res.hits[h].id_len == lens[n] &&
			   !memcmp(res.hits[h].id, ids[n], lens[n]);
		if (here != m->present[n])
			fail_msg("round %d: %s is %s, the model says %s", round,
				 ids[n], here ? "there" : "missing",
				 m->present[n] ? "present" : "deleted");
		if (!here)
			continue;
		const vt_shard_hit *x = &res.hits[h++];
		float v[DIM];
		char pl[160];
		vec_of(n, m->vec_ver[n], v);
		int pn = render(n, &m->pl[n], pl, sizeof pl);
		if (memcmp(x->vec, v, sizeof v))
			fail_msg("round %d: %s: vector is not the one of command "
				 "%llu",
				 round, ids[n], (unsigned long long)m->vec_ver[n]);
		if (x->payload_len != (uint32_t)pn ||
		    memcmp(x->payload, pl, (size_t)pn))
			fail_msg("round %d: %s: payload %.*s, expected %s", round,
				 ids[n], (int)x->payload_len, x->payload, pl);
	}
	assert_int_equal(h, res.n);
	vt_shard_results_free(&res);
	/* The index finds a few points by their own vectors. */
	for (int k = 0; k < 4 && m->live; k++) {
		uint32_t n = (uint32_t)(vt_rng_next(r) % IDS);
		while (!m->present[n])
			n = (n + 1) % IDS;
		search_self(s, n, m, 1, 0, round);
		search_self(s, n, m, 0, 0, round);
		search_self(s, n, m, 0, 1, round);
	}
	vt_shard_close(s);
	*snap_index = st.snapshot_index;
	return st.applied;
}

static void test_kill9_during_apply(void **state)
{
	(void)state;
	const char *env = getenv("VT_CRASH_ROUNDS");
	int rounds = env ? atoi(env) : 20;
	const char *seed_env = getenv("VT_CRASH_SEED");
	vt_rng r;
	vt_rng_seed(&r, seed_env ? strtoull(seed_env, NULL, 10) : 20261130);
	char dirs[2][32] = {"/tmp/vt_shard_crash_XXXXXX",
			    "/tmp/vt_shard_crash_XXXXXX"};
	const int modes[2] = {VT_INDEX_SYNC, VT_INDEX_ASYNC};
	struct model *models = calloc(2, sizeof *models);
	assert_non_null(models);
	for (int k = 0; k < 2; k++)
		assert_non_null(mkdtemp(dirs[k]));
	uint64_t acked[2] = {0, 0};
	for (int round = 0; round < rounds; round++) {
		int k = round % 2;
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(dirs[k], modes[k], p[1]);
		}
		close(p[1]);
		/* From a few ms (maybe still opening) to ~250 ms. */
		long us = 2000 + (long)(vt_rng_next(&r) % 248000);
		struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status))
			fail_msg("round %d: the child exited by itself (status %d)",
				 round, WEXITSTATUS(status));
		uint64_t a, n_acks = 0;
		while (read(p[0], &a, sizeof a) == sizeof a) {
			if (a <= acked[k])
				fail_msg("round %d: acknowledged %llu after %llu",
					 round, (unsigned long long)a,
					 (unsigned long long)acked[k]);
			acked[k] = a;
			n_acks++;
		}
		close(p[0]);
		uint64_t before = models[k].applied;
		uint64_t snap;
		uint64_t now = check_shard(dirs[k], modes[k], &models[k],
					   acked[k], round, &r, &snap);
		if (getenv("VT_CRASH_VERBOSE"))
			print_message("round %d (%s): killed after %ld us, %llu "
				      "acks, applied %llu -> %llu, %llu points, "
				      "index snapshot at %llu\n",
				      round, k ? "async" : "sync", us,
				      (unsigned long long)n_acks,
				      (unsigned long long)before,
				      (unsigned long long)now,
				      (unsigned long long)models[k].live,
				      (unsigned long long)snap);
		/* The next child resumes after what the shard holds. */
		acked[k] = now;
	}
	print_message("%d rounds: sync shard at command %llu (%llu points), "
		      "async at %llu (%llu points); %lu graph searches "
		      "missed a point the exact search found\n",
		      rounds, (unsigned long long)models[0].applied,
		      (unsigned long long)models[0].live,
		      (unsigned long long)models[1].applied,
		      (unsigned long long)models[1].live, graph_misses);
	for (int k = 0; k < 2; k++) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[k]);
		assert_int_equal(system(cmd), 0);
	}
	free(models);
}

int main(void)
{
	vt_log_set_level(VT_LOG_OFF);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_during_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
