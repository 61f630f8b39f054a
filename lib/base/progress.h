/* progress.h: a progress line for long work (index builds, rebuilds,
 * benchmarks). Draws a bar on a terminal, logs every 10% otherwise. */
#ifndef VT_BASE_PROGRESS_H
#define VT_BASE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Caller-allocated; all fields private. */
typedef struct vt_progress {
	const char *what;
	uint64_t total;
	uint64_t start_ns;
	uint64_t last_ns;
	int last_decile;
	int tty;
	FILE *out;
} vt_progress;

/* Starts a progress report of `total` units on `out` (stderr if NULL).
 * `what` must outlive the progress object. */
VT_API void vt_progress_start(vt_progress *p, FILE *out, const char *what,
			      uint64_t total);
/* Reports that `done` units are complete; cheap to call often (it redraws
 * at most 10 times a second). */
VT_API void vt_progress_update(vt_progress *p, uint64_t done);
/* Prints the final line with the elapsed time and rate. */
VT_API void vt_progress_done(vt_progress *p, uint64_t done);

#endif
