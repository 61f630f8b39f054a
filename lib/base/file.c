/* file.c: atomic file replacement (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#define FLUSH_AT (1u << 20)

int vt_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vt_err_from_errno(errno);
	int rc = fsync(fd) ? vt_err_from_errno(errno) : 0;
	close(fd);
	return rc;
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(p) : unlink(p);
	return r && errno != ENOENT ? errno : 0;
}

int vt_rmtree(const char *path)
{
	int r = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (r < 0)
		return errno == ENOENT ? 0 : vt_err_from_errno(errno);
	return r ? vt_err_from_errno(r) : 0;
}

int vt_fsync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) >= sizeof dir)
		return VT_EINVAL;
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	return vt_fsync_dir(dir);
}

static void afile_free(vt_afile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	vt_buf_free(&f->buf);
	vt_free(f->path);
	vt_free(f->tmp);
	f->path = f->tmp = NULL;
}

int vt_afile_open(vt_afile *f, const char *path, vt_errmsg *err)
{
	size_t n = strlen(path);
	f->fd = -1;
	f->path = vt_strdup(path);
	f->tmp = vt_malloc(n + 5);
	vt_buf_init(&f->buf, 2 * FLUSH_AT);
	if (!f->path || !f->tmp) {
		afile_free(f);
		return vt_errmsg_set(err, VT_ENOMEM, "%s: out of memory", path);
	}
	memcpy(f->tmp, path, n);
	memcpy(f->tmp + n, ".tmp", 5);
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		int e = errno;
		int rc = vt_errmsg_set(err, vt_err_from_errno(e), "create %s: %s",
				       f->tmp, strerror(e));
		afile_free(f);
		return rc;
	}
	return 0;
}

static int flush(vt_afile *f)
{
	const uint8_t *p = f->buf.data;
	size_t n = f->buf.len;
	while (n) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return vt_err_from_errno(errno);
		}
		p += w;
		n -= (size_t)w;
	}
	vt_buf_reset(&f->buf);
	return 0;
}

int vt_afile_write(void *ud, const void *p, size_t n)
{
	vt_afile *f = ud;
	const uint8_t *b = p;
	while (n) {
		size_t room = FLUSH_AT - f->buf.len;
		size_t take = n < room ? n : room;
		int rc = vt_buf_append(&f->buf, b, take);
		if (rc)
			return rc;
		b += take;
		n -= take;
		if (f->buf.len >= FLUSH_AT && (rc = flush(f)))
			return rc;
	}
	return 0;
}

int vt_afile_commit(vt_afile *f, vt_errmsg *err)
{
	const char *step = "write";
	int rc = flush(f);
	if (!rc && fsync(f->fd)) {
		step = "fsync";
		rc = vt_err_from_errno(errno);
	}
	if (!rc) {
		int fd = f->fd;
		f->fd = -1;
		if (close(fd)) {
			step = "close";
			rc = vt_err_from_errno(errno);
		}
	}
	if (!rc && rename(f->tmp, f->path)) {
		step = "rename";
		rc = vt_err_from_errno(errno);
	}
	if (!rc && (rc = vt_fsync_parent(f->path)))
		step = "fsync directory";
	if (rc) {
		vt_errmsg_set(err, rc, "%s %s: %s", step, f->tmp, vt_strerror(rc));
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		unlink(f->tmp);
	}
	afile_free(f);
	return rc;
}

void vt_afile_abort(vt_afile *f)
{
	if (!f->tmp)
		return;
	unlink(f->tmp);
	afile_free(f);
}
