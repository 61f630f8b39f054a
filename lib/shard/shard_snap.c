/* shard_snap.c: the whole shard as one stream, for Raft snapshots and for
 * moving a replica. Layout (docs/shard.md):
 *
 *   header  "VTSHSNP1", u32 version (1), u32 0
 *   frames  u8 kind, u32 length, bytes
 *             kind 1: index snapshot file bytes (index.snap, may be absent)
 *             kind 2: store copy bytes (lib/store's snapshot stream)
 *             kind 3: end; 24 bytes: u64 applied index, u64 bytes of all
 *                     frame data before it, u64 xxh3 of those bytes
 *
 * The index comes first so that restore can stage it before the store is
 * swapped in; the end frame is checked before the store restore finishes,
 * so a damaged stream never replaces anything. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/alloc.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "shard_int.h"

#define STREAM_MAGIC "VTSHSNP1"
#define STREAM_VERSION 1u
#define FRAME_INDEX 1
#define FRAME_STORE 2
#define FRAME_END 3
#define FRAME_MAX (1u << 20)
#define INDEX_NEW "index.snap.new"

/* ---- writing -------------------------------------------------------------------*/

struct sink {
	vt_shard_write_fn write;
	void *ud;
	int kind;          /* frame kind for frame_write */
	vt_hasher hash;
	uint64_t total;
};

static int frame(struct sink *k, int kind, const void *p, size_t n)
{
	uint8_t h[5];
	h[0] = (uint8_t)kind;
	vt_le_put32(h + 1, (uint32_t)n);
	int rc = k->write(k->ud, h, 5);
	if (!rc && n)
		rc = k->write(k->ud, p, n);
	if (!rc && kind != FRAME_END) {
		vt_hasher_update(&k->hash, p, n);
		k->total += n;
	}
	return rc;
}

/* A vt_store_write_fn that frames what the store streams. */
static int frame_write(void *ud, const void *p, size_t n)
{
	struct sink *k = ud;
	const uint8_t *b = p;
	while (n) {
		size_t take = n < FRAME_MAX ? n : FRAME_MAX;
		int rc = frame(k, k->kind, b, take);
		if (rc)
			return rc;
		b += take;
		n -= take;
	}
	return 0;
}

static int stream_index_file(vt_shard *s, struct sink *k, vt_errmsg *err)
{
	int fd = open(s->snap_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : vt_errmsg_set(err, vt_err_from_errno(errno),
						       "open %s: %s", s->snap_path,
						       strerror(errno));
	uint8_t *buf = vt_malloc(FRAME_MAX);
	int rc = buf ? 0 : VT_ENOMEM;
	while (!rc) {
		ssize_t r = read(fd, buf, FRAME_MAX);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = vt_errmsg_set(err, vt_err_from_errno(errno),
					   "read %s: %s", s->snap_path,
					   strerror(errno));
		if (r <= 0)
			break;
		rc = frame(k, FRAME_INDEX, buf, (size_t)r);
	}
	vt_free(buf);
	close(fd);
	return rc;
}

int vt_shard_snapshot(vt_shard *s, vt_shard_write_fn write, void *ud,
		      uint64_t *index_out, vt_errmsg *err)
{
	struct sink k = {write, ud, FRAME_STORE, {0}, 0};
	uint8_t head[16];
	int rc;
	memcpy(head, STREAM_MAGIC, 8);
	vt_le_put32(head + 8, STREAM_VERSION);
	vt_le_put32(head + 12, 0);
	if ((rc = vt_hasher_init(&k.hash, 0)))
		return vt_errmsg_set(err, rc, "out of memory");
	pthread_mutex_lock(&s->ckpt_mu);
	/* Without an index snapshot the receiver would rebuild: make one. */
	if (s->snap_index == 0 && s->applied > 0 &&
	    (rc = vt__shard_checkpoint_locked(s, err)))
		goto out;
	if ((rc = write(ud, head, sizeof head)) ||
	    (rc = stream_index_file(s, &k, err)))
		goto out;
	/* Applies wait while the store is copied, so the copy's applied
	 * index is known; the index file streamed above is older, and the
	 * store's WAL (not trimmed past it: ckpt_mu) covers the gap. */
	pthread_mutex_lock(&s->apply_mu);
	uint64_t applied = s->applied;
	pthread_rwlock_rdlock(&s->gate);
	rc = vt_store_snapshot(s->st, frame_write, &k, err);
	pthread_rwlock_unlock(&s->gate);
	pthread_mutex_unlock(&s->apply_mu);
	if (rc)
		goto out;
	uint8_t end[24];
	vt_le_put64(end, applied);
	vt_le_put64(end + 8, k.total);
	vt_le_put64(end + 16, vt_hasher_digest(&k.hash));
	if ((rc = frame(&k, FRAME_END, end, sizeof end)))
		goto out;
	if (index_out)
		*index_out = applied;
	VT_LOG(VT_LOG_INFO, "shard", "%s: snapshot streamed at command %llu, "
	       "%.1f MiB", s->name, (unsigned long long)applied,
	       (double)k.total / (1 << 20));
out:
	pthread_mutex_unlock(&s->ckpt_mu);
	vt_hasher_free(&k.hash);
	if (rc && err && !err->msg[0])
		vt_errmsg_set(err, rc, "snapshot: %s", vt_strerror(rc));
	return rc;
}

/* ---- reading --------------------------------------------------------------------*/

struct source {
	vt_shard_read_fn read;
	void *ud;
	vt_hasher hash;
	uint64_t total;
	int kind;          /* kind of the frame being read, 0 before one */
	uint32_t left;     /* bytes left in it */
	int ended;         /* the end frame was read and checked */
	uint64_t applied;
	vt_errmsg *err;
};

/* Reads exactly n bytes. */
static int src_get(struct source *s, void *out, size_t n)
{
	uint8_t *b = out;
	while (n) {
		size_t got = 0;
		int rc = s->read(s->ud, b, n, &got);
		if (rc)
			return rc;
		if (got == 0 || got > n)
			return vt_errmsg_set(s->err, VT_ECORRUPT,
					     "snapshot stream: truncated");
		b += got;
		n -= got;
	}
	return 0;
}

/* Reads the next frame header; checks the end frame when it comes. */
static int next_frame(struct source *s)
{
	uint8_t h[5];
	int rc = src_get(s, h, 5);
	if (rc)
		return rc;
	s->kind = h[0];
	s->left = vt_le_get32(h + 1);
	if (s->kind == FRAME_END) {
		uint8_t e[24];
		if (s->left != sizeof e)
			return vt_errmsg_set(s->err, VT_ECORRUPT,
					     "snapshot stream: bad end frame");
		if ((rc = src_get(s, e, sizeof e)))
			return rc;
		s->left = 0;
		if (vt_le_get64(e + 8) != s->total ||
		    vt_le_get64(e + 16) != vt_hasher_digest(&s->hash))
			return vt_errmsg_set(s->err, VT_ECORRUPT,
					     "snapshot stream: checksum "
					     "mismatch");
		s->applied = vt_le_get64(e);
		s->ended = 1;
		return 0;
	}
	if ((s->kind != FRAME_INDEX && s->kind != FRAME_STORE) ||
	    s->left > FRAME_MAX)
		return vt_errmsg_set(s->err, VT_ECORRUPT,
				     "snapshot stream: bad frame (kind %d, "
				     "%u bytes)",
				     s->kind, s->left);
	return 0;
}

/* Reads up to cap bytes of the current frame (and following frames of the
 * same kind); *n = 0 when a frame of another kind (or the end) comes. */
static int src_read_kind(struct source *s, int kind, void *buf, size_t cap,
			 size_t *n)
{
	*n = 0;
	while (s->left == 0) {
		if (s->ended || (s->kind && s->kind != kind))
			return 0;
		int rc = next_frame(s);
		if (rc)
			return rc;
		if (s->ended || s->kind != kind)
			return 0;
	}
	size_t take = cap < s->left ? cap : s->left;
	int rc = src_get(s, buf, take);
	if (rc)
		return rc;
	vt_hasher_update(&s->hash, buf, take);
	s->total += take;
	s->left -= (uint32_t)take;
	*n = take;
	return 0;
}

/* A vt_store_read_fn over the store frames. */
static int store_read(void *ud, void *buf, size_t cap, size_t *n)
{
	struct source *s = ud;
	int rc = src_read_kind(s, FRAME_STORE, buf, cap, n);
	if (rc)
		return rc;
	if (*n == 0 && !s->ended)
		/* After the store only the end frame may come: reading it
		 * here checks the whole stream before the store is swapped. */
		return vt_errmsg_set(s->err, VT_ECORRUPT,
				     "snapshot stream: frame kind %d after the "
				     "store",
				     s->kind);
	return 0;
}

int vt_shard_restore(const char *dir, vt_shard_read_fn read, void *ud,
		     vt_errmsg *err)
{
	vt_errmsg edummy;
	if (!err)
		err = &edummy;
	vt_errmsg_clear(err);
	struct source src = {read, ud, {0}, 0, 0, 0, 0, 0, err};
	char *store_dir = vt__path_join(dir, "store");
	char *snap = vt__path_join(dir, "index.snap");
	char *snap_new = vt__path_join(dir, INDEX_NEW);
	uint8_t *buf = vt_malloc(FRAME_MAX);
	int have_index = 0, rc;
	if (!store_dir || !snap || !snap_new || !buf) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = vt_hasher_init(&src.hash, 0))) {
		vt_errmsg_set(err, rc, "out of memory");
		goto out;
	}
	uint8_t head[16];
	if ((rc = src_get(&src, head, sizeof head)))
		goto out;
	if (memcmp(head, STREAM_MAGIC, 8)) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "snapshot stream: not a shard snapshot");
		goto out;
	}
	if (vt_le_get32(head + 8) != STREAM_VERSION) {
		rc = vt_errmsg_set(err, VT_EVERSION,
				   "snapshot stream: version %u",
				   vt_le_get32(head + 8));
		goto out;
	}
	if ((mkdir(dir, 0755) && errno != EEXIST) ||
	    (mkdir(store_dir, 0755) && errno != EEXIST)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "mkdir: %s",
				   strerror(errno));
		goto out;
	}
	/* Stage the index file aside. */
	vt_afile f;
	if ((rc = vt_afile_open(&f, snap_new, err)))
		goto out;
	size_t n;
	while (!(rc = src_read_kind(&src, FRAME_INDEX, buf, FRAME_MAX, &n)) &&
	       n) {
		have_index = 1;
		if ((rc = vt_afile_write(&f, buf, n)))
			break;
	}
	if (rc) {
		vt_afile_abort(&f);
		goto out;
	}
	if ((rc = vt_afile_commit(&f, err)))
		goto out;
	if (src.ended || src.kind != FRAME_STORE) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "snapshot stream: no store in it");
		goto out;
	}
	/* The store is swapped in only after the end frame checked out. */
	if ((rc = vt_store_restore(store_dir, store_read, &src, err)))
		goto out;
	if (!src.ended) {
		/* vt_store_restore stopped reading early: it cannot have
		 * accepted a stream whose end was not checked. */
		rc = vt_errmsg_set(err, VT_EINTERNAL,
				   "snapshot stream: store restored before the "
				   "end frame");
		goto out;
	}
	/* A crash before this rename leaves the old index.snap beside the
	 * new store; open notices (another store identity, or a WAL that does
	 * not continue it) and rebuilds. */
	if (have_index) {
		if (rename(snap_new, snap))
			rc = vt_err_from_errno(errno);
	} else if (unlink(snap) && errno != ENOENT) {
		rc = vt_err_from_errno(errno);
	}
	if (!rc)
		rc = vt_fsync_dir(dir);
	if (rc)
		vt_errmsg_set(err, rc, "installing the index snapshot: %s",
			      vt_strerror(rc));
	else
		VT_LOG(VT_LOG_INFO, "shard",
		       "%s: restored at command %llu (%.1f MiB)", dir,
		       (unsigned long long)src.applied,
		       (double)src.total / (1 << 20));
out:
	if (snap_new)
		unlink(snap_new);
	vt_hasher_free(&src.hash);
	vt_free(buf);
	vt_free(store_dir);
	vt_free(snap);
	vt_free(snap_new);
	return rc;
}
