/* test_store_threads.c: readers on several threads while the writer grows
 * the map again and again (growth must wait for readers, readers must never
 * see a partial batch or a remapped pointer). Labelled "threads" for TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "store/store.h"

#define DIM 16
#define BATCH 100
#define BATCHES 150
#define READERS 3

static void vec_of(uint64_t n, float *v)
{
	for (uint32_t j = 0; j < DIM; j++)
		v[j] = (float)((n * 13 + j * 5) % 97);
}

struct shared {
	vt_store *st;
	int done;
	int bad;
	uint64_t reads;
};

static void *reader(void *arg)
{
	struct shared *s = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed;
	while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
		vt_store_txn *tx;
		if (vt_store_txn_begin_read(s->st, &tx)) {
			__atomic_store_n(&s->bad, 1, __ATOMIC_RELEASE);
			break;
		}
		uint64_t np, applied;
		if (vt_store_count(tx, &np, NULL) ||
		    vt_store_get_applied(tx, &applied) || np != applied * BATCH)
			__atomic_store_n(&s->bad, 2, __ATOMIC_RELEASE);
		for (int i = 0; i < 20 && np; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t label = (seed >> 33) % np;
			vt_store_point p;
			float v[DIM];
			vec_of(label, v);
			if (vt_store_get_by_label(tx, label, &p) ||
			    memcmp(p.vec, v, sizeof v))
				__atomic_store_n(&s->bad, 3, __ATOMIC_RELEASE);
		}
		vt_store_txn_abort(tx);
		__atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_readers_during_growth(void **state)
{
	char dir[] = "/tmp/vt_store_thr_XXXXXX";
	assert_non_null(mkdtemp(dir));
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.dim = DIM;
	o.map_initial = (size_t)128 << 10;
	o.sync = VT_STORE_SYNC_META;
	struct shared s = {0};
	vt_errmsg e;
	assert_int_equal(vt_store_open(dir, &o, &s.st, &e), 0);
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &s), 0);
	for (uint64_t b = 1; b <= BATCHES; b++) {
		vt_store_txn *tx;
		assert_int_equal(vt_store_txn_begin(s.st, &tx), 0);
		for (uint64_t n = (b - 1) * BATCH; n < b * BATCH; n++) {
			char id[32];
			float v[DIM];
			vec_of(n, v);
			int il = snprintf(id, sizeof id, "t%llu", (unsigned long long)n);
			assert_int_equal(vt_store_put(tx, id, (size_t)il, v, DIM, "{}", 2,
						      NULL, NULL), 0);
		}
		assert_int_equal(vt_store_set_applied(tx, b), 0);
		assert_int_equal(vt_store_txn_commit(tx), 0);
	}
	__atomic_store_n(&s.done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(s.bad, 0);
	assert_true(s.reads > 0);
	vt_store_stats st;
	assert_int_equal(vt_store_stats_get(s.st, &st), 0);
	assert_true(st.map_bytes > o.map_initial);
	vt_store_close(s.st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	vt_log_set_level(VT_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readers_during_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
