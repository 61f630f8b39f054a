/* log.c: the level filter and the default stderr handler. */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void default_handler(void *ud, int level, const char *module,
			    const char *line);

static _Atomic int g_level = VT_LOG_INFO;
static vt_log_fn g_fn = default_handler;
static void *g_ud;

static const char *level_name(int level)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	return level >= 0 && level < 4 ? names[level] : "?";
}

static void default_handler(void *ud, int level, const char *module,
			    const char *line)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when, ts.tv_nsec / 1000000,
		level_name(level), module, line);
}

void vt_log_set_handler(vt_log_fn fn, void *ud)
{
	g_fn = fn ? fn : default_handler;
	g_ud = fn ? ud : NULL;
}

void vt_log_set_level(int level)
{
	atomic_store_explicit(&g_level, level, memory_order_relaxed);
}

int vt_log_level(void)
{
	return atomic_load_explicit(&g_level, memory_order_relaxed);
}

int vt_log_level_parse(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void vt__log(int level, const char *module, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	g_fn(g_ud, level, module, line);
}
