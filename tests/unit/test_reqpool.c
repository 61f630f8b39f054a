/* test_reqpool.c: serve's request workers (services/vectron/reqpool.c):
 * every job's work runs once on a worker and its done runs once on the loop
 * thread after it; one worker runs jobs in submission order; the loop runs
 * while jobs are in flight and ends when none are; done may submit more;
 * destroy waits for every job in flight; spinning and sleeping workers both
 * pick up jobs (a lost wake-up or completion hangs the test, and CTest's
 * timeout fails it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "../services/vectron/reqpool.h"

#define N 2000

struct job {
	vt_reqpool_job j; /* first */
	int id;
	atomic_int worked;
	int done;
	pthread_t worker;
	struct ctx *cx;
};

struct ctx {
	vt_reqpool *p;
	pthread_t loop_thread;
	struct job *jobs;
	int ndone;
	int order[N];     /* ids in the order done ran */
	atomic_int seq;   /* work order */
	int work_seq[N];
	int resubmit;     /* done submits job id + N/2 for ids < N/2 */
	unsigned sleep_us; /* work sleeps this long */
};

static void work(vt_reqpool_job *w)
{
	struct job *j = (struct job *)w;
	assert_true(!pthread_equal(pthread_self(), j->cx->loop_thread));
	j->worker = pthread_self();
	j->cx->work_seq[j->id] = atomic_fetch_add(&j->cx->seq, 1);
	if (j->cx->sleep_us) {
		struct timespec ts = {0, (long)j->cx->sleep_us * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_fetch_add(&j->worked, 1);
}

static void done(vt_reqpool_job *w)
{
	struct job *j = (struct job *)w;
	struct ctx *cx = j->cx;
	assert_true(pthread_equal(pthread_self(), cx->loop_thread));
	assert_int_equal(atomic_load(&j->worked), 1); /* work before done */
	assert_int_equal(j->done, 0);
	j->done = 1;
	cx->order[cx->ndone++] = j->id;
	if (cx->resubmit && j->id < N / 2)
		assert_int_equal(vt_reqpool_submit(cx->p, &cx->jobs[j->id + N / 2].j),
				 0);
}

static struct ctx *ctx_new(void)
{
	struct ctx *cx = calloc(1, sizeof *cx);
	cx->jobs = calloc(N, sizeof *cx->jobs);
	cx->loop_thread = pthread_self();
	for (int i = 0; i < N; i++) {
		cx->jobs[i].id = i;
		cx->jobs[i].cx = cx;
		cx->jobs[i].j.work = work;
		cx->jobs[i].j.done = done;
	}
	return cx;
}

static void ctx_free(struct ctx *cx)
{
	free(cx->jobs);
	free(cx);
}

static void check_all_once(struct ctx *cx, int n)
{
	assert_int_equal(cx->ndone, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(atomic_load(&cx->jobs[i].worked), 1);
		assert_int_equal(cx->jobs[i].done, 1);
	}
}

/* Workers x spin: every job runs once; uv_run returns once all are done. */
static void test_all_jobs_once(void **state)
{
	(void)state;
	unsigned workers[] = {1, 2, 4};
	unsigned spins[] = {0, 50, 1000};
	for (size_t w = 0; w < 3; w++) {
		for (size_t s = 0; s < 3; s++) {
			uv_loop_t loop;
			assert_int_equal(uv_loop_init(&loop), 0);
			struct ctx *cx = ctx_new();
			assert_int_equal(vt_reqpool_create(&loop, workers[w],
							   spins[s], spins[s], &cx->p),
					 0);
			for (int i = 0; i < N; i++)
				assert_int_equal(
					vt_reqpool_submit(cx->p, &cx->jobs[i].j), 0);
			assert_int_equal(vt_reqpool_inflight(cx->p), N);
			uv_run(&loop, UV_RUN_DEFAULT); /* ends when all are done */
			assert_int_equal(vt_reqpool_inflight(cx->p), 0);
			check_all_once(cx, N);
			vt_reqpool_destroy(cx->p);
			assert_int_equal(uv_loop_close(&loop), 0);
			ctx_free(cx);
		}
	}
}

/* One worker: work and done run in submission order. */
static void test_one_worker_fifo(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct ctx *cx = ctx_new();
	assert_int_equal(vt_reqpool_create(&loop, 1, 20, 0, &cx->p), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(vt_reqpool_submit(cx->p, &cx->jobs[i].j), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	check_all_once(cx, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(cx->order[i], i);
		assert_int_equal(cx->work_seq[i], i);
	}
	vt_reqpool_destroy(cx->p);
	assert_int_equal(uv_loop_close(&loop), 0);
	ctx_free(cx);
}

/* A done callback that submits more keeps the loop running. */
static void test_done_submits(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct ctx *cx = ctx_new();
	cx->resubmit = 1;
	assert_int_equal(vt_reqpool_create(&loop, 2, 0, 0, &cx->p), 0);
	for (int i = 0; i < N / 2; i++)
		assert_int_equal(vt_reqpool_submit(cx->p, &cx->jobs[i].j), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	check_all_once(cx, N);
	vt_reqpool_destroy(cx->p);
	assert_int_equal(uv_loop_close(&loop), 0);
	ctx_free(cx);
}

/* Sequential, one at a time, with gaps longer than the spin: each job is
 * picked up by a sleeping worker (the condition variable path), then with
 * gaps shorter than the spin (the polling path). */
static void test_sequential_wakeups(void **state)
{
	(void)state;
	unsigned gaps_us[] = {300, 0};
	for (size_t g = 0; g < 2; g++) {
		uv_loop_t loop;
		assert_int_equal(uv_loop_init(&loop), 0);
		struct ctx *cx = ctx_new();
		assert_int_equal(vt_reqpool_create(&loop, 2, 100, 100, &cx->p), 0);
		for (int i = 0; i < 200; i++) {
			assert_int_equal(vt_reqpool_submit(cx->p, &cx->jobs[i].j),
					 0);
			uv_run(&loop, UV_RUN_DEFAULT);
			assert_int_equal(cx->ndone, i + 1);
			if (gaps_us[g]) {
				struct timespec ts = {0, (long)gaps_us[g] * 1000};
				nanosleep(&ts, NULL);
			}
		}
		check_all_once(cx, 200);
		vt_reqpool_destroy(cx->p);
		assert_int_equal(uv_loop_close(&loop), 0);
		ctx_free(cx);
	}
}

/* Destroy with jobs still running (the loop never ran): it runs the loop
 * until each job's done has run, exactly once. */
static void test_destroy_drains(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct ctx *cx = ctx_new();
	cx->sleep_us = 200;
	assert_int_equal(vt_reqpool_create(&loop, 2, 0, 0, &cx->p), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(vt_reqpool_submit(cx->p, &cx->jobs[i].j), 0);
	vt_reqpool_destroy(cx->p); /* without running the loop first */
	check_all_once(cx, 50);
	assert_int_equal(uv_loop_close(&loop), 0);
	ctx_free(cx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_jobs_once),
		cmocka_unit_test(test_one_worker_fifo),
		cmocka_unit_test(test_done_submits),
		cmocka_unit_test(test_sequential_wakeups),
		cmocka_unit_test(test_destroy_drains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
