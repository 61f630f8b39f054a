/* log.h: leveled logging through a callback the program installs.
 * Libraries never write to stderr themselves; the default handler does, so
 * tools work out of the box. Not a log shipper or a file rotator. */
#ifndef VT_BASE_LOG_H
#define VT_BASE_LOG_H

#include <stdarg.h>

#include "error.h"

enum vt_log_level {
	VT_LOG_DEBUG = 0,
	VT_LOG_INFO = 1,
	VT_LOG_WARN = 2,
	VT_LOG_ERROR = 3,
	VT_LOG_OFF = 4,
};

/* Receives one formatted line (no trailing newline). `module` is a short
 * static string naming the library ("hnsw"). Called from any thread. */
typedef void (*vt_log_fn)(void *ud, int level, const char *module,
			  const char *line);

/* Installs the handler (NULL restores the stderr default). */
VT_API void vt_log_set_handler(vt_log_fn fn, void *ud);
/* Messages below `level` are dropped before they are formatted. */
VT_API void vt_log_set_level(int level);
VT_API int vt_log_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
VT_API int vt_log_level_parse(const char *s);

VT_API void vt__log(int level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The arguments are not evaluated when the level is filtered out. */
#define VT_LOG(level, module, ...)                                             \
	do {                                                                   \
		if ((level) >= vt_log_level())                                 \
			vt__log((level), (module), __VA_ARGS__);               \
	} while (0)

#endif
