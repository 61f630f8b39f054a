/* error.c: the text of every VT_E* code and the message buffer helpers. */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *vt_strerror(int code)
{
	switch (code) {
	case VT_OK:
		return "success";
#define VT__ERR_STR(name, c, text)                                             \
	case VT_##name:                                                        \
		return text;
		VT_ERRNO_MAP(VT__ERR_STR)
#undef VT__ERR_STR
	}
	return "unknown error";
}

const char *vt_errname(int code)
{
	switch (code) {
	case VT_OK:
		return "VT_OK";
#define VT__ERR_NAME(name, c, text)                                            \
	case VT_##name:                                                        \
		return "VT_" #name;
		VT_ERRNO_MAP(VT__ERR_NAME)
#undef VT__ERR_NAME
	}
	return "VT_E?";
}

int vt_err_from_errno(int err)
{
	switch (err) {
	case 0:
		return VT_OK;
	case ENOMEM:
		return VT_ENOMEM;
	case ENOENT:
		return VT_ENOENT;
	case EEXIST:
		return VT_EEXIST;
	case ENOSPC:
	case EDQUOT:
		return VT_ENOSPC;
	case EINVAL:
		return VT_EINVAL;
	case EBUSY:
	case EAGAIN:
		return VT_EBUSY;
	case ETIMEDOUT:
		return VT_ETIMEDOUT;
	case EROFS:
		return VT_EREADONLY;
	case ERANGE:
	case EOVERFLOW:
	case EFBIG:
		return VT_ERANGE;
	case ENOTSUP:
		return VT_ENOTSUP;
	case ECANCELED:
		return VT_ECANCELED;
	default:
		return VT_EIO;
	}
}

int vt_errmsg_set(vt_errmsg *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return code;
}

int vt_errmsg_prefix(vt_errmsg *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	char prefix[VT_ERRMSG_SIZE];
	char old[VT_ERRMSG_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	/* Assembled by hand: snprintf("%s: %s") trips -Wformat-truncation,
	 * and truncating the tail is exactly what we want here. */
	size_t n = strnlen(prefix, sizeof e->msg - 1);
	memcpy(e->msg, prefix, n);
	if (old[0] && n + 2 < sizeof e->msg) {
		memcpy(e->msg + n, ": ", 2);
		n += 2;
		size_t m = strnlen(old, sizeof e->msg - 1 - n);
		memcpy(e->msg + n, old, m);
		n += m;
	}
	e->msg[n] = '\0';
	return code;
}

vt_err_status vt_err_status_of(int e)
{
	switch (e) {
	case VT_OK:
		return (vt_err_status){200, 0, "OK"};
	case VT_EINVAL:
		return (vt_err_status){400, 3, "INVALID_ARGUMENT"};
	case VT_ERANGE:
		return (vt_err_status){400, 11, "OUT_OF_RANGE"};
	case VT_ENOENT:
		return (vt_err_status){404, 5, "NOT_FOUND"};
	case VT_EEXIST:
		return (vt_err_status){409, 6, "ALREADY_EXISTS"};
	case VT_ELIMIT:
		return (vt_err_status){413, 8, "RESOURCE_EXHAUSTED"};
	case VT_EOVERLOAD:
		return (vt_err_status){429, 8, "RESOURCE_EXHAUSTED"};
	case VT_ECANCELED:
		return (vt_err_status){499, 1, "CANCELLED"};
	case VT_ENOTSUP:
		return (vt_err_status){501, 12, "UNIMPLEMENTED"};
	/* The server cannot do it now; another node or a later try can. */
	case VT_ENOMEM:
		return (vt_err_status){503, 8, "RESOURCE_EXHAUSTED"};
	case VT_EBUSY:
	case VT_ESHUTDOWN:
		return (vt_err_status){503, 14, "UNAVAILABLE"};
	/* Not fixed by retrying: the operator must act (lift read-only after
	 * a disk error; free disk space). */
	case VT_EREADONLY:
		return (vt_err_status){503, 9, "FAILED_PRECONDITION"};
	case VT_ENOSPC:
		return (vt_err_status){507, 8, "RESOURCE_EXHAUSTED"};
	case VT_ETIMEDOUT:
		return (vt_err_status){504, 4, "DEADLINE_EXCEEDED"};
	/* Stored data that does not read back: never the client's fault. */
	case VT_ECORRUPT:
	case VT_EVERSION:
		return (vt_err_status){500, 15, "DATA_LOSS"};
	default:
		return (vt_err_status){500, 13, "INTERNAL"};
	}
}
