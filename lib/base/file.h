/* file.h: writing a file so that a crash leaves either the old version or
 * the complete new one (write aside, fsync, rename, fsync the directory),
 * and reading a whole small file. Not a general I/O layer. */
#ifndef VT_BASE_FILE_H
#define VT_BASE_FILE_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

/* A file being written atomically. Caller-allocated; fields private. */
typedef struct vt_afile {
	int fd;
	char *path; /* the final name (owned) */
	char *tmp;  /* path + ".tmp" (owned) */
	vt_buf buf; /* write-behind buffer, flushed in 1 MiB writes */
} vt_afile;

/* Creates (truncates) `path`.tmp for writing. Errors: VT_EINVAL (path too
 * long), the errno of open mapped by vt_err_from_errno, VT_ENOMEM; `err`
 * says which file. On success the caller must end with vt_afile_commit or
 * vt_afile_abort. */
VT_API int vt_afile_open(vt_afile *f, const char *path, vt_errmsg *err);

/* Appends `n` bytes. Has the signature of the lib/hnsw and lib/store write
 * callbacks, so `f` can be passed as their `ud`. */
VT_API int vt_afile_write(void *f, const void *p, size_t n);

/* Flushes, fsyncs, renames the temporary file over `path` and fsyncs the
 * directory. After 0 the new file is durable. On error the temporary file
 * is removed and `path` is untouched. Frees `f` either way. */
VT_API int vt_afile_commit(vt_afile *f, vt_errmsg *err);

/* Removes the temporary file and frees `f`. */
VT_API void vt_afile_abort(vt_afile *f);

/* fsyncs the directory that holds `path` (the parent of its last '/'). */
VT_API int vt_fsync_parent(const char *path);

/* Removes `path` and, if it is a directory, everything under it (symbolic
 * links are removed, never followed). A missing path is not an error. */
VT_API int vt_rmtree(const char *path);

/* fsyncs the directory `dir` itself. */
VT_API int vt_fsync_dir(const char *dir);

#endif
