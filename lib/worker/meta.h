/* meta.h: the small file a worker writes next to each replica it hosts
 * (<data_dir>/groups/<group>/replica.json), so that a restarted worker
 * reopens and serves its replicas before the PD answers: which collection
 * and shard, the raft group and id, the first configuration and the
 * collection's config blob. JSON with a version; written atomically. Not
 * the replica's data (that is the shard directory beside it). */
#ifndef VT_WORKER_META_H
#define VT_WORKER_META_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

#define VT_WORKER_META_PEERS 16u   /* first-configuration voters kept */
#define VT_WORKER_META_ADDR 128u   /* bytes of a raft address, NUL included */

typedef struct vt_worker_meta_peer {
	uint64_t id;
	char addr[VT_WORKER_META_ADDR];
} vt_worker_meta_peer;

typedef struct vt_worker_meta {
	char collection[65];
	uint32_t shard;
	uint64_t group;
	uint64_t epoch;          /* the shard epoch last heard */
	uint64_t raft_id;
	int voter;               /* the role the PD assigned */
	int join;                /* 1: started empty, added by the leader */
	size_t n_peers;          /* first configuration (join = 0) */
	vt_worker_meta_peer peers[VT_WORKER_META_PEERS];
	char *config;            /* vt_coll_config_encode bytes (owned,
				    vt_malloc; NUL-terminated) */
	size_t config_len;
} vt_worker_meta;

/* The file's bytes: appends `m` as JSON to `out` (vt_buf errors,
 * VT_ENOMEM, VT_EINVAL for a config blob that is not UTF-8 text). */
int vt_worker_meta_encode(const vt_worker_meta *m, vt_buf *out,
			  vt_errmsg *err);

/* Decodes what encode wrote into *m (zeroed first). On success the caller
 * frees it with vt_worker_meta_free. Errors: VT_ECORRUPT (not a meta
 * file of this version: the message says what), VT_ENOMEM. */
int vt_worker_meta_decode(const void *bytes, size_t len,
			  vt_worker_meta *m /* out */, vt_errmsg *err);

/* Writes `m` to `path` atomically (base/file.h). Errors: those of
 * vt_afile_*, VT_ENOMEM, VT_EINVAL (a config blob that is not UTF-8
 * text). */
int vt_worker_meta_write(const char *path, const vt_worker_meta *m,
			 vt_errmsg *err);

/* Reads and decodes `path`. Errors: VT_ENOENT (no file), VT_EIO, and
 * those of decode (the message names the file). */
int vt_worker_meta_read(const char *path, vt_worker_meta *m /* out */,
			vt_errmsg *err);

/* Frees what read allocated (the config blob). */
void vt_worker_meta_free(vt_worker_meta *m);

#endif
