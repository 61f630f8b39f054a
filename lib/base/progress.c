/* progress.c: terminal bar or decile log lines. */
#include "progress.h"

#include <unistd.h>

#include "clock.h"

void vt_progress_start(vt_progress *p, FILE *out, const char *what,
		       uint64_t total)
{
	p->what = what;
	p->total = total ? total : 1;
	p->out = out ? out : stderr;
	p->tty = isatty(fileno(p->out));
	p->start_ns = p->last_ns = vt_clock_mono_ns();
	p->last_decile = -1;
}

void vt_progress_update(vt_progress *p, uint64_t done)
{
	uint64_t now = vt_clock_mono_ns();
	double frac = (double)done / (double)p->total;
	if (p->tty) {
		if (now - p->last_ns < 100000000ull && done < p->total)
			return;
		p->last_ns = now;
		int w = 30, fill = (int)(frac * w);
		char bar[31];
		for (int i = 0; i < w; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[w] = 0;
		double secs = (double)(now - p->start_ns) / 1e9;
		fprintf(p->out, "\r%s [%s] %3d%% %llu/%llu %.1fs", p->what, bar,
			(int)(frac * 100), (unsigned long long)done,
			(unsigned long long)p->total, secs);
		fflush(p->out);
		return;
	}
	int decile = (int)(frac * 10);
	if (decile > p->last_decile && decile < 10) {
		p->last_decile = decile;
		fprintf(p->out, "%s: %d%% (%llu/%llu)\n", p->what, decile * 10,
			(unsigned long long)done, (unsigned long long)p->total);
		fflush(p->out);
	}
}

void vt_progress_done(vt_progress *p, uint64_t done)
{
	double secs = (double)(vt_clock_mono_ns() - p->start_ns) / 1e9;
	fprintf(p->out, "%s%s: done, %llu in %.2fs (%.0f/s)\n", p->tty ? "\r\033[K" : "",
		p->what, (unsigned long long)done, secs,
		secs > 0 ? (double)done / secs : 0.0);
	fflush(p->out);
}
