/* test_pool.c: lib/base's worker pool: every task runs exactly once, loops
 * from several threads at once share the workers, a loop started inside a
 * task completes, and a pool without workers runs inline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/pool.h"

#define N 1000

struct loop {
	atomic_int hits[N];
	vt_pool *p;
	int nested;
};

static void task(void *ctx, size_t i)
{
	struct loop *l = ctx;
	atomic_fetch_add(&l->hits[i], 1);
	if (l->nested && i % 100 == 0) {
		struct loop *inner = calloc(1, sizeof *inner);
		vt_pool_run(l->p, N, task, inner);
		for (int k = 0; k < N; k++)
			assert_int_equal(atomic_load(&inner->hits[k]), 1);
		free(inner);
	}
}

static void check_once(struct loop *l)
{
	for (int k = 0; k < N; k++)
		assert_int_equal(atomic_load(&l->hits[k]), 1);
}

static void test_each_task_once(void **state)
{
	(void)state;
	for (unsigned w = 0; w < 4; w++) {
		vt_pool *p;
		assert_int_equal(vt_pool_create(w, &p), 0);
		assert_int_equal(vt_pool_width(p), w + 1);
		struct loop *l = calloc(1, sizeof *l);
		vt_pool_run(p, N, task, l);
		check_once(l);
		free(l);
		vt_pool_destroy(p);
	}
}

static void *caller(void *arg)
{
	struct loop *l = arg;
	for (int r = 0; r < 20; r++) {
		for (int k = 0; k < N; k++)
			atomic_store(&l->hits[k], 0);
		vt_pool_run(l->p, N, task, l);
		check_once(l);
	}
	return NULL;
}

static void test_concurrent_and_nested_loops(void **state)
{
	(void)state;
	vt_pool *p;
	assert_int_equal(vt_pool_create(3, &p), 0);
	struct loop *l[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		l[i] = calloc(1, sizeof *l[i]);
		l[i]->p = p;
		l[i]->nested = i == 0;
		pthread_create(&t[i], NULL, caller, l[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		free(l[i]);
	}
	vt_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_task_once),
		cmocka_unit_test(test_concurrent_and_nested_loops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
