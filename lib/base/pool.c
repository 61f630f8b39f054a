/* pool.c: fork-join worker pool (see pool.h). Tasks are handed out by an
 * atomic counter, so uneven tasks balance by themselves. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "alloc.h"

struct vt_pool {
	pthread_mutex_t run_mu; /* one loop at a time */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	unsigned workers;
	pthread_t *threads;
	/* the current loop, guarded by mu except the counters */
	uint64_t gen;           /* bumped per loop so workers see a new one */
	vt_pool_fn fn;
	void *ctx;
	size_t n;
	atomic_size_t next;     /* next task to hand out */
	unsigned busy;          /* workers still inside the loop */
	int stop;
};

unsigned vt_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

static void drain(vt_pool *p)
{
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			return;
		p->fn(p->ctx, i);
	}
}

static void *worker(void *arg)
{
	vt_pool *p = arg;
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		drain(p);
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int vt_pool_create(unsigned workers, vt_pool **out)
{
	vt_pool *p = vt_calloc(1, sizeof *p);
	if (!p)
		return VT_ENOMEM;
	pthread_mutex_init(&p->run_mu, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	if (workers) {
		p->threads = vt_calloc(workers, sizeof *p->threads);
		if (!p->threads) {
			vt_pool_destroy(p);
			return VT_ENOMEM;
		}
	}
	for (unsigned i = 0; i < workers; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p)) {
			vt_pool_destroy(p);
			return VT_EINTERNAL;
		}
		p->workers++;
	}
	*out = p;
	return 0;
}

void vt_pool_destroy(vt_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->workers; i++)
		pthread_join(p->threads[i], NULL);
	vt_free(p->threads);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->run_mu);
	vt_free(p);
}

void vt_pool_run(vt_pool *p, size_t n, vt_pool_fn fn, void *ctx)
{
	if (n == 0)
		return;
	if (!p || p->workers == 0 || n == 1) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i);
		return;
	}
	pthread_mutex_lock(&p->run_mu);
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->n = n;
	atomic_store(&p->next, 0);
	p->busy = p->workers;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	drain(p);
	pthread_mutex_lock(&p->mu);
	while (p->busy)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->run_mu);
}

unsigned vt_pool_width(const vt_pool *p)
{
	return p ? p->workers + 1 : 1;
}
