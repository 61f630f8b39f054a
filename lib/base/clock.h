/* clock.h: time sources. The core takes time through vt_clock so tests can
 * drive it; these functions are the real clocks behind the default. */
#ifndef VT_BASE_CLOCK_H
#define VT_BASE_CLOCK_H

#include <stdint.h>

#include "error.h"

/* Monotonic nanoseconds since an arbitrary start; never goes backwards. */
VT_API uint64_t vt_clock_mono_ns(void);
/* Wall-clock milliseconds since the Unix epoch. */
VT_API uint64_t vt_clock_wall_ms(void);
/* CPU time of the calling thread in nanoseconds (for benchmarks). */
VT_API uint64_t vt_clock_thread_cpu_ns(void);

/* A time source the core can be handed (canonical raft's raft_io style):
 * production uses vt_clock_real(); tests install a manual one. */
typedef struct vt_clock {
	uint64_t (*now_ns)(void *ud); /* monotonic */
	void *ud;
} vt_clock;

/* The real monotonic clock. Returns a static object. */
VT_API const vt_clock *vt_clock_real(void);

static inline uint64_t vt_clock_now(const vt_clock *c)
{
	return c->now_ns(c->ud);
}

#endif
