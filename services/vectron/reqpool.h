/* reqpool.h: the request workers of `vectron serve`: threads that run a
 * request's work off the libuv loop and hand the finished request back to
 * the loop. Not a general executor and not libuv's thread pool: see why in
 * reqpool.c. */
#ifndef VT_VECTRON_REQPOOL_H
#define VT_VECTRON_REQPOOL_H

#include <uv.h>

typedef struct vt_reqpool vt_reqpool; /* opaque */

/* One request's work, embedded in the caller's request struct. The caller
 * sets `work` and `done`; the rest is the pool's. */
typedef struct vt_reqpool_job {
	/* On a worker thread: the request's CPU work (decode, run, encode). */
	void (*work)(struct vt_reqpool_job *j);
	/* On the loop thread, after `work`: answer, free. Jobs finish in no
	 * particular order across workers. */
	void (*done)(struct vt_reqpool_job *j);
	struct vt_reqpool_job *next; /* private */
} vt_reqpool_job;

/* Starts `workers` (>= 1) threads that take jobs submitted on `loop`.
 * After finishing a job, an idle worker polls the queue for up to
 * `spin_us` microseconds (0: never) before it sleeps, so a request that
 * comes soon after does not pay a thread wake-up. While exactly one job is
 * in flight, the loop polls its I/O without blocking for up to
 * `loop_spin_us` after the submit (0: never) so the answer does not pay
 * the loop's wake-up either. Both cost CPU that other threads on the
 * machine may need. VT_ENOMEM /
 * VT_EINTERNAL. The pool holds a handle on `loop` that keeps uv_run going
 * only while jobs are in flight (as uv_queue_work does). Release with
 * vt_reqpool_destroy. */
int vt_reqpool_create(uv_loop_t *loop, unsigned workers, unsigned spin_us,
		      unsigned loop_spin_us, vt_reqpool **out);

/* Queues `j` (loop thread only). Its `done` runs on the loop once `work`
 * has returned, exactly once. VT_ESHUTDOWN after vt_reqpool_destroy
 * began. */
int vt_reqpool_submit(vt_reqpool *p, vt_reqpool_job *j);

/* Jobs submitted whose `done` has not run yet (loop thread). */
unsigned vt_reqpool_inflight(const vt_reqpool *p);

/* Runs the loop until every job submitted is done, stops and joins the
 * workers, closes the loop handle (running the loop once more so its close
 * callback runs) and frees the pool. Loop thread, outside uv_run. NULL is
 * a no-op. */
void vt_reqpool_destroy(vt_reqpool *p);

#endif
