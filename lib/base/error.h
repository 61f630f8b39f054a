/* error.h: Vectron's error codes and the layered error-message buffer.
 * Not an exception system: functions return 0 or a negative VT_E* code. */
#ifndef VT_BASE_ERROR_H
#define VT_BASE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define VT_API __attribute__((visibility("default")))

/* One table makes both the enum and vt_strerror(). Codes are negative. */
#define VT_ERRNO_MAP(X)                                                        \
	X(EINVAL, -1, "invalid argument")                                      \
	X(ENOMEM, -2, "out of memory")                                         \
	X(EIO, -3, "input/output error")                                       \
	X(ENOENT, -4, "not found")                                             \
	X(EEXIST, -5, "already exists")                                        \
	X(ECORRUPT, -6, "data is corrupt")                                     \
	X(EVERSION, -7, "unsupported format version")                          \
	X(ERANGE, -8, "value out of range")                                    \
	X(ELIMIT, -9, "size limit exceeded")                                   \
	X(ENOSPC, -10, "no space left on device")                              \
	X(EBUSY, -11, "resource busy")                                         \
	X(ETIMEDOUT, -12, "timed out")                                         \
	X(EOVERLOAD, -13, "overloaded, retry later")                           \
	X(ESHUTDOWN, -14, "shutting down")                                     \
	X(ENOTSUP, -15, "not supported")                                       \
	X(EREADONLY, -16, "read-only")                                         \
	X(ECANCELED, -17, "canceled")                                          \
	X(EINTERNAL, -18, "internal error")

enum vt_err {
	VT_OK = 0,
#define VT__ERR_ENUM(name, code, text) VT_##name = (code),
	VT_ERRNO_MAP(VT__ERR_ENUM)
#undef VT__ERR_ENUM
};

/* Returns a static, human-readable text for a VT_E* code (or "unknown
 * error"). Never NULL. */
VT_API const char *vt_strerror(int code);

/* Returns the VT_E* name of a code ("VT_ENOENT"), or "VT_E?" if unknown. */
VT_API const char *vt_errname(int code);

/* What a client is told for a VT_E* code: the HTTP status, the gRPC status
 * code and its canonical name ("INVALID_ARGUMENT"). One table for every
 * transport (docs/api.md has it with the reasons). 0 gives 200, 0, "OK";
 * an unknown code 500, 13, "INTERNAL". */
typedef struct vt_err_status {
	int http;
	int grpc;
	const char *name;
} vt_err_status;

VT_API vt_err_status vt_err_status_of(int code);

/* Maps a positive errno value to the closest VT_E* code. */
VT_API int vt_err_from_errno(int err);

/* The error-message buffer a handle carries. Each layer that passes an error
 * upward may prefix its own context ("shard 3: load index: bad checksum"). */
#define VT_ERRMSG_SIZE 256
typedef struct vt_errmsg {
	char msg[VT_ERRMSG_SIZE];
} vt_errmsg;

/* Formats a message into `e` (NULL is allowed and ignored) and returns
 * `code`, so that `return vt_errmsg_set(e, VT_EINVAL, "...")` reads well. */
VT_API int vt_errmsg_set(vt_errmsg *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes "<formatted>: " to the message already in `e`, truncating the
 * tail if needed. Returns `code`. */
VT_API int vt_errmsg_prefix(vt_errmsg *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clears the message. */
static inline void vt_errmsg_clear(vt_errmsg *e)
{
	if (e)
		e->msg[0] = '\0';
}

#endif
