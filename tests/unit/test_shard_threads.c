/* test_shard_threads.c: a shard under concurrent use, for TSan: one writer
 * applying upserts and deletes (async indexing, background snapshots),
 * readers searching with and without filters, and a thread taking
 * checkpoints, status and snapshot streams, all at once. Checks at the end
 * that the index holds exactly the store's points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/log.h"
#include "shard/shard.h"

#define DIM 8
#define BATCHES 60
#define BATCH 50

static vt_shard *g_shard;
static atomic_int g_done;
static atomic_int g_failures;

static void vec_of(uint64_t n, float *v)
{
	for (int j = 0; j < DIM; j++)
		v[j] = (float)((n * 7919 + (uint64_t)j * 104729) % 1000) / 500.0f -
		       1.0f;
}

static void *writer(void *arg)
{
	(void)arg;
	vt_buf b;
	vt_buf_init(&b, 1u << 20);
	uint64_t index = 1;
	for (uint64_t k = 0; k < BATCHES; k++) {
		vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0, DIM);
		for (uint64_t i = 0; i < BATCH; i++) {
			uint64_t n = k * BATCH + i;
			char id[32], pl[64];
			float v[DIM];
			vec_of(n, v);
			int il = snprintf(id, sizeof id, "p%llu",
					  (unsigned long long)n);
			int pn = snprintf(pl, sizeof pl, "{\"g\":%llu}",
					  (unsigned long long)(n % 5));
			vt_cmd_enc_upsert(&b, id, (size_t)il, v, DIM, pl,
					  (size_t)pn);
		}
		vt_cmd_enc_end(&b, BATCH);
		vt_errmsg e;
		int rc;
		while ((rc = vt_shard_apply(g_shard, index, b.data, b.len, NULL,
					    &e)) == VT_EOVERLOAD)
			usleep(1000);
		if (rc)
			atomic_fetch_add(&g_failures, 1);
		index++;
		if (k % 3 == 2) {
			char id[32];
			int il = snprintf(id, sizeof id, "p%llu",
					  (unsigned long long)(k * BATCH));
			vt_cmd_enc_begin(&b, VT_CMD_DELETE_IDS, 0, 0);
			vt_cmd_enc_id(&b, id, (size_t)il);
			vt_cmd_enc_end(&b, 1);
			if (vt_shard_apply(g_shard, index++, b.data, b.len, NULL,
					   &e))
				atomic_fetch_add(&g_failures, 1);
		}
	}
	vt_buf_free(&b);
	atomic_store(&g_done, 1);
	return NULL;
}

static void *reader(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	vt_filter *f = NULL;
	vt_errmsg e;
	const char *fj = "{\"must\":[{\"key\":\"g\",\"match\":{\"value\":2}}]}";
	if (id & 1)
		vt_filter_parse(fj, strlen(fj), vt_shard_schema(g_shard), &f, &e);
	uint64_t n = id * 977;
	while (!atomic_load(&g_done)) {
		float v[DIM];
		vec_of(n++, v);
		vt_shard_query q;
		vt_shard_query_default(&q, v, 5);
		q.filter = f;
		vt_shard_results r;
		if (vt_shard_search(g_shard, &q, &r, &e))
			atomic_fetch_add(&g_failures, 1);
		for (size_t i = 0; f && i < r.n; i++)
			if (!strstr(r.hits[i].payload, "\"g\":2"))
				atomic_fetch_add(&g_failures, 1);
		vt_shard_results_free(&r);
	}
	vt_filter_free(f);
	return NULL;
}

static int null_write(void *ud, const void *p, size_t n)
{
	(void)p;
	*(size_t *)ud += n;
	return 0;
}

static void *admin(void *arg)
{
	(void)arg;
	int i = 0;
	while (!atomic_load(&g_done)) {
		vt_errmsg e;
		vt_shard_status st;
		if (vt_shard_status_get(g_shard, &st))
			atomic_fetch_add(&g_failures, 1);
		if (i % 4 == 1 && vt_shard_checkpoint(g_shard, &e))
			atomic_fetch_add(&g_failures, 1);
		if (i % 4 == 3) {
			size_t bytes = 0;
			if (vt_shard_snapshot(g_shard, null_write, &bytes, NULL,
					      &e) ||
			    bytes == 0)
				atomic_fetch_add(&g_failures, 1);
		}
		i++;
		usleep(20000);
	}
	return NULL;
}

static void quiet(void *ud, int level, const char *module, const char *line)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)line;
}

static void test_concurrent_use(void **state)
{
	(void)state;
	char d[] = "/tmp/vt_shard_thr_XXXXXX";
	assert_non_null(mkdtemp(d));
	vt_shard_config cfg;
	vt_shard_config_default(&cfg, DIM, VT_METRIC_L2);
	cfg.ef_construction = 32;
	cfg.index_mode = VT_INDEX_ASYNC;
	cfg.n_fields = 1;
	strcpy(cfg.fields[0].path, "g");
	cfg.fields[0].type = VT_PAYLOAD_INTEGER;
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.queue_max = 400;
	o.snapshot_entries = 700;
	o.index_threads = 2;
	vt_errmsg e;
	assert_int_equal(vt_shard_open(d, &o, &g_shard, &e), 0);
	pthread_t w, r[3], a;
	pthread_create(&w, NULL, writer, NULL);
	for (uintptr_t i = 0; i < 3; i++)
		pthread_create(&r[i], NULL, reader, (void *)i);
	pthread_create(&a, NULL, admin, NULL);
	pthread_join(w, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(r[i], NULL);
	pthread_join(a, NULL);
	assert_int_equal(atomic_load(&g_failures), 0);
	vt_shard_status st;
	assert_int_equal(vt_shard_status_get(g_shard, &st), 0);
	assert_int_equal(vt_shard_wait_indexed(g_shard, st.applied, 60000), 0);
	assert_int_equal(vt_shard_status_get(g_shard, &st), 0);
	assert_int_equal(st.points, BATCHES * BATCH - BATCHES / 3);
	assert_int_equal(st.index_points, st.points);
	vt_shard_close(g_shard);
	/* and again after a reopen */
	o.create = NULL;
	assert_int_equal(vt_shard_open(d, &o, &g_shard, &e), 0);
	assert_int_equal(vt_shard_status_get(g_shard, &st), 0);
	assert_int_equal(st.index_points, BATCHES * BATCH - BATCHES / 3);
	vt_shard_close(g_shard);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	if (!getenv("VT_TEST_VERBOSE"))
		vt_log_set_handler(quiet, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
