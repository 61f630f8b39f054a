/* pool.c: fork-join worker pool (see pool.h). Several loops may run at
 * once: each is a job on a list; workers and callers claim tasks one at a
 * time under the pool's mutex (tasks are coarse: a shard search, a batch of
 * inserts), so a job's memory, on its caller's stack, is touched only under
 * the mutex and only until its last task has finished. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

struct job {
	vt_pool_fn fn;
	void *ctx;
	size_t n;
	size_t next;     /* next task to hand out */
	size_t finished; /* tasks done */
	struct job *link; /* the list of jobs with tasks left */
};

struct vt_pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was added, or stop */
	pthread_cond_t done; /* a task finished */
	struct job *head, *tail;
	unsigned workers;
	pthread_t *threads;
	int stop;
	int nice;
};

unsigned vt_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

/* Claims a task of `j` (or of the first job when j is NULL); mu held.
 * Returns the job or NULL when there is nothing to claim. */
static struct job *claim(vt_pool *p, struct job *j, size_t *i)
{
	if (!j)
		j = p->head;
	if (!j || j->next >= j->n)
		return NULL;
	*i = j->next++;
	if (j->next == j->n) { /* fully handed out: off the list */
		struct job **pp = &p->head, *prev = NULL;
		while (*pp && *pp != j) {
			prev = *pp;
			pp = &(*pp)->link;
		}
		if (*pp)
			*pp = j->link;
		if (p->tail == j)
			p->tail = prev;
		j->link = NULL;
	}
	return j;
}

static void run_one(vt_pool *p, struct job *j, size_t i)
{
	pthread_mutex_unlock(&p->mu);
	j->fn(j->ctx, i);
	pthread_mutex_lock(&p->mu);
	if (++j->finished == j->n)
		pthread_cond_broadcast(&p->done);
}

void vt_thread_nice(int nice)
{
	if (nice <= 0)
		return;
	/* Linux: a thread's priority is per task id, not per process. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice))
		VT_LOG(VT_LOG_WARN, "pool", "setpriority(%d): %s", nice,
		       strerror(errno));
}

static void *worker(void *arg)
{
	vt_pool *p = arg;
	vt_thread_nice(p->nice);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t i;
		struct job *j = claim(p, NULL, &i);
		if (j) {
			run_one(p, j, i);
			continue;
		}
		if (p->stop)
			break;
		pthread_cond_wait(&p->work, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int vt_pool_create(unsigned workers, vt_pool **out)
{
	return vt_pool_create_nice(workers, 0, out);
}

int vt_pool_create_nice(unsigned workers, int nice, vt_pool **out)
{
	vt_pool *p = vt_calloc(1, sizeof *p);
	if (!p)
		return VT_ENOMEM;
	p->nice = nice;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
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
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->workers; i++)
		pthread_join(p->threads[i], NULL);
	vt_free(p->threads);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
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
	struct job j = {fn, ctx, n, 0, 0, NULL};
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->link = &j;
	else
		p->head = &j;
	p->tail = &j;
	pthread_cond_broadcast(&p->work);
	/* The caller works on its own job, so a loop always progresses even
	 * when every worker is busy elsewhere (or runs a loop itself). */
	size_t i;
	while (claim(p, &j, &i))
		run_one(p, &j, i);
	while (j.finished < j.n)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

unsigned vt_pool_width(const vt_pool *p)
{
	return p ? p->workers + 1 : 1;
}
