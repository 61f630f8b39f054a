/* reqpool.c: request workers (reqpool.h).
 *
 * Why not libuv's thread pool (uv_queue_work): that pool is shared with
 * everything else on the loop that does blocking work through it, raft_uv's
 * disk I/O in particular. A request that waits for a Raft commit would hold
 * one of its threads while the commit waits for raft_uv's disk writes,
 * queued behind it on the same few threads: requests must never be able to
 * starve raft's disk work. So serve owns its workers.
 *
 * Why spin: a sequential client's next request arrives a few tens of
 * microseconds after the previous answer. A worker that went to sleep on
 * the condition variable costs the loop a futex wake and the request a
 * thread switch-in (on a VM, waking an idle vCPU is an IPI and costs
 * 5-15 us); a worker still polling the queue picks the job up at once.
 * The poll is bounded (spin_us) so an idle server sleeps. For the same
 * reason the loop itself, while exactly one request is with the workers,
 * may poll its sockets without blocking (an active uv_idle handle: epoll
 * with timeout 0) for up to loop_spin_us instead of sleeping, so the
 * answer does not wait for the loop thread to be woken. Only one: with
 * several requests in flight the loop has work coming anyway, and its CPU
 * belongs to the workers.
 *
 * Polling only pays when a CPU is free: on a busy machine the polling
 * thread takes the CPU (and its fair share) from the threads that would
 * answer. So a poll that finds it was descheduled (two clock readings more
 * than CONTENDED_NS apart) turns polling off, for workers and loop alike,
 * for BACKOFF_NS; the pool then behaves as if both knobs were 0.
 *
 * Hand-offs: the queue is a FIFO under `mu`; the loop signals the condition
 * variable only when no live polling worker will take the job, and after
 * unlocking (a waiter woken under the lock would block on it at once).
 * Finished jobs go on the `done` list under `dmu`; after unlocking, the
 * worker wakes the loop with one eventfd write unless a wake-up is already
 * pending; the loop takes the whole list per wake-up. Not uv_async_send:
 * libuv 1.44's makes the woken loop busy-wait (uv__async_spin) until the
 * sender's write() has returned, which perf showed as ~9% of the loop
 * thread's time per request. */
#include "reqpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define CONTENDED_NS 30000u  /* a gap this long while polling: preempted */
#define BACKOFF_NS 50000000u /* then no polling for 50 ms */
#define STALE_NS 10000u      /* a poller silent this long is descheduled */

struct vt_reqpool {
	uv_loop_t *loop;
	uv_poll_t poll;    /* on `efd`: a job is done */
	int efd;           /* eventfd the workers write to wake the loop */
	atomic_int woken;  /* an eventfd write is pending for the loop */
	int closed;        /* poll's close callback ran */
	uv_idle_t idle;    /* active: the loop polls instead of sleeping */
	uint64_t loop_spin_ns, loop_spin_until;
	unsigned inflight; /* loop thread: submitted, `done` not yet run */
	int destroying;

	pthread_mutex_t mu; /* the queue and the counts below */
	pthread_cond_t cv;  /* a job was queued, or stop */
	vt_reqpool_job *head, *tail;
	unsigned queued, spinning, sleeping;
	atomic_uint avail;  /* = queued, for spinners (read without mu) */
	atomic_int stop;

	pthread_mutex_t dmu; /* the done list */
	vt_reqpool_job *dhead, *dtail;

	uint64_t spin_ns;
	_Atomic uint64_t backoff_until; /* no polling before this (mono ns) */
	_Atomic uint64_t beat;          /* a polling worker's last clock read */
	uint64_t loop_last;             /* loop thread: last idle callback */
	unsigned workers;
	pthread_t *threads;
};

/* Whether polling is allowed at `now`; else the machine was found busy. */
static int may_poll(vt_reqpool *p, uint64_t now)
{
	return now >= atomic_load_explicit(&p->backoff_until,
					   memory_order_relaxed);
}

/* A poll saw a gap from `last` to `now`: descheduled means contended. */
static int preempted(vt_reqpool *p, uint64_t last, uint64_t now)
{
	if (now - last < CONTENDED_NS)
		return 0;
	atomic_store_explicit(&p->backoff_until, now + BACKOFF_NS,
			      memory_order_relaxed);
	return 1;
}

/* Polls for a queued job (or stop) until `until`; mu not held. */
static void spin(vt_reqpool *p, uint64_t until)
{
	uint64_t last = vt_clock_mono_ns();
	atomic_store_explicit(&p->beat, last, memory_order_relaxed);
	for (;;) {
		for (int i = 0; i < 32; i++) {
			if (atomic_load_explicit(&p->avail,
						 memory_order_relaxed) ||
			    atomic_load_explicit(&p->stop,
						 memory_order_relaxed))
				return;
			cpu_relax();
		}
		uint64_t now = vt_clock_mono_ns();
		atomic_store_explicit(&p->beat, now, memory_order_relaxed);
		if (now >= until || preempted(p, last, now))
			return;
		last = now;
	}
}

static void finish(vt_reqpool *p, vt_reqpool_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->dmu);
	if (p->dtail)
		p->dtail->next = j;
	else
		p->dhead = j;
	p->dtail = j;
	pthread_mutex_unlock(&p->dmu);
	/* After unlocking: the loop may run at once and take the list. */
	if (!atomic_exchange(&p->woken, 1)) {
		uint64_t one = 1;
		while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
}

static void *worker(void *arg)
{
	vt_reqpool *p = arg;
	uint64_t until = p->spin_ns ? vt_clock_mono_ns() + p->spin_ns : 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		vt_reqpool_job *j = p->head;
		if (j) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
			p->queued--;
			atomic_store_explicit(&p->avail, p->queued,
					      memory_order_relaxed);
			pthread_mutex_unlock(&p->mu);
			j->work(j);
			finish(p, j);
			until = p->spin_ns ? vt_clock_mono_ns() + p->spin_ns : 0;
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (atomic_load(&p->stop))
			break;
		uint64_t now = until ? vt_clock_mono_ns() : 0;
		if (until && now < until && may_poll(p, now)) {
			p->spinning++;
			pthread_mutex_unlock(&p->mu);
			spin(p, until);
			pthread_mutex_lock(&p->mu);
			p->spinning--;
			continue;
		}
		until = 0;
		p->sleeping++;
		pthread_cond_wait(&p->cv, &p->mu);
		p->sleeping--;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void on_done(uv_poll_t *h, int status, int events)
{
	vt_reqpool *p = h->data;
	(void)status;
	(void)events;
	uint64_t n;
	if (read(p->efd, &n, sizeof n) < 0 && errno == EAGAIN)
		return;
	/* Before taking the list: a job added after this is either in the
	 * list taken below or comes with a new eventfd write. */
	atomic_store(&p->woken, 0);
	pthread_mutex_lock(&p->dmu);
	vt_reqpool_job *j = p->dhead;
	p->dhead = p->dtail = NULL;
	pthread_mutex_unlock(&p->dmu);
	while (j) {
		vt_reqpool_job *next = j->next; /* done() may free j */
		p->inflight--;
		j->done(j);
		j = next;
	}
	if (!p->inflight) {
		uv_unref((uv_handle_t *)&p->poll);
		uv_idle_stop(&p->idle);
	}
}

/* The loop's bounded poll: ends when the request is done, a second one
 * arrives, or loop_spin_us have passed. */
static void on_idle(uv_idle_t *h)
{
	vt_reqpool *p = h->data;
	uint64_t now = vt_clock_mono_ns();
	if (p->inflight != 1 || now >= p->loop_spin_until ||
	    preempted(p, p->loop_last, now))
		uv_idle_stop(h);
	p->loop_last = now;
}

static void stop_workers(vt_reqpool *p)
{
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_broadcast(&p->cv);
	for (unsigned i = 0; i < p->workers; i++)
		pthread_join(p->threads[i], NULL);
	p->workers = 0;
}

static void on_closed(uv_handle_t *h)
{
	((vt_reqpool *)h->data)->closed = 1;
}

static void pool_free(vt_reqpool *p)
{
	if (p->efd >= 0)
		close(p->efd);
	vt_free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->dmu);
	vt_free(p);
}

int vt_reqpool_create(uv_loop_t *loop, unsigned workers, unsigned spin_us,
		      unsigned loop_spin_us, vt_reqpool **out)
{
	if (!workers)
		workers = 1;
	vt_reqpool *p = vt_calloc(1, sizeof *p);
	if (!p)
		return VT_ENOMEM;
	p->loop = loop;
	p->efd = -1;
	p->spin_ns = (uint64_t)spin_us * 1000u;
	p->loop_spin_ns = (uint64_t)loop_spin_us * 1000u;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->dmu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = vt_calloc(workers, sizeof *p->threads);
	if (!p->threads) {
		pool_free(p);
		return VT_ENOMEM;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0 || uv_poll_init(loop, &p->poll, p->efd)) {
		pool_free(p);
		return VT_EINTERNAL;
	}
	p->poll.data = p;
	uv_poll_start(&p->poll, UV_READABLE, on_done);
	uv_idle_init(loop, &p->idle);
	p->idle.data = p;

	uv_unref((uv_handle_t *)&p->poll); /* alive only with jobs */
	for (unsigned i = 0; i < workers; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p)) {
			vt_reqpool_destroy(p);
			return VT_EINTERNAL;
		}
		p->workers++;
	}
	*out = p;
	return 0;
}

int vt_reqpool_submit(vt_reqpool *p, vt_reqpool_job *j)
{
	if (p->destroying)
		return VT_ESHUTDOWN;
	if (!p->inflight++)
		uv_ref((uv_handle_t *)&p->poll);
	if (p->loop_spin_ns && p->inflight == 1) {
		uint64_t now = vt_clock_mono_ns();
		if (may_poll(p, now)) {
			p->loop_spin_until = now + p->loop_spin_ns;
			p->loop_last = now;
			uv_idle_start(&p->idle, on_idle);
		}
	}
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	atomic_store_explicit(&p->avail, p->queued, memory_order_relaxed);
	/* A polling worker will take it, unless it was descheduled in its
	 * poll (no heartbeat for STALE_NS): then the job would wait for that
	 * worker's next time slice, milliseconds on a busy machine. */
	int wake = p->sleeping &&
		   (p->queued > p->spinning ||
		    vt_clock_mono_ns() - atomic_load_explicit(
			    &p->beat, memory_order_relaxed) > STALE_NS);
	pthread_mutex_unlock(&p->mu);
	if (wake)
		pthread_cond_signal(&p->cv);
	return 0;
}

unsigned vt_reqpool_inflight(const vt_reqpool *p)
{
	return p->inflight;
}

void vt_reqpool_destroy(vt_reqpool *p)
{
	if (!p)
		return;
	p->destroying = 1;
	while (p->inflight && p->workers)
		uv_run(p->loop, UV_RUN_ONCE); /* poll is referenced */
	stop_workers(p);
	uv_close((uv_handle_t *)&p->idle, NULL);
	uv_close((uv_handle_t *)&p->poll, on_closed);
	while (!p->closed)
		uv_run(p->loop, UV_RUN_ONCE);
	pool_free(p);
}
