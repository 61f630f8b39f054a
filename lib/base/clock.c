/* clock.c: clock_gettime wrappers. */
#include "clock.h"

#include <time.h>

static uint64_t ts_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vt_clock_mono_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}

uint64_t vt_clock_wall_ms(void)
{
	return ts_ns(CLOCK_REALTIME) / 1000000ull;
}

uint64_t vt_clock_thread_cpu_ns(void)
{
	return ts_ns(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t real_now(void *ud)
{
	(void)ud;
	return vt_clock_mono_ns();
}

const vt_clock *vt_clock_real(void)
{
	static const vt_clock c = {real_now, 0};
	return &c;
}
