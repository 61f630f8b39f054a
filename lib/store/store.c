/* store.c: the shard store on LMDB: four named DBs in one environment, a
 * write transaction that records its operations so it can be replayed after
 * the map grows, read-only mode after disk errors, snapshot and restore.
 * Layout and contract: docs/store.md. */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"

/* Internal: LMDB said the map is full; the transaction is grown and
 * replayed, callers never see this code. */
#define EMAPFULL (-1000)

#define LOG_MAX ((size_t)1 << 30) /* op log of one write txn */
#define CHUNK ((size_t)1 << 20)

/* Meta keys of the store itself; caller keys get the "u." prefix. */
#define K_FORMAT "format"
#define K_DIM "dim"
#define K_APPLIED "applied"
#define K_NEXT "next_label"

struct vt_store {
	MDB_env *env;
	MDB_dbi meta, points, ids, wal;
	char *dir;
	vt_store_opts o;
	uint32_t dim;
	size_t map;                 /* current map size */
	pthread_rwlock_t maplock;   /* readers and the writer hold it shared;
				       growing and reopening exclusively */
	pthread_mutex_t wmu;        /* one write txn at a time */
	int readonly;               /* VT_ENOSPC / VT_EIO that caused it, or 0 */
	char ro_why[VT_ERRMSG_SIZE];
	uint32_t fault_n;
	int fault_errno;
	uint32_t fault_op_n;
	int fault_op_errno;
	vt_errmsg err;
};

struct copy {
	struct copy *next;
	float v[];
};

/* Operations recorded in the op log (for replay after growth). */
enum { OP_PUT = 1, OP_DEL, OP_SETPAY, OP_WAL, OP_APPLIED, OP_META, OP_TRIM };

struct vt_store_txn {
	vt_store *st;
	MDB_txn *txn;
	int write;
	int failed;
	vt_buf log;
	vt_buf tmp;                /* scratch (old vectors on set_payload) */
	int have_next;
	uint64_t next_label;
	int have_wal_last;
	uint64_t wal_last_index;
	uint32_t wal_last_seq;
	int wal_empty;
	struct copy *copies;
	vt_errmsg err;
};

/* Both iterators are a cursor that first seeks to a big-endian key built
 * from `from` and then steps forward. */
struct vt__cursor {
	vt_store_txn *tx;
	MDB_cursor *cur;
	uint64_t from;
	int started;
};

struct vt_store_iter {
	struct vt__cursor c;
};

struct vt_store_wal_iter {
	struct vt__cursor c;
};

/* ---- small helpers ------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Maps an LMDB result to a VT_E* code with a message. */
static int merr(vt_errmsg *e, int rc, const char *what)
{
	int code;
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_MAP_FULL:
		return EMAPFULL;
	case MDB_NOTFOUND:
		code = VT_ENOENT;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_DBI:
		code = VT_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
		code = VT_EVERSION;
		break;
	case MDB_READERS_FULL:
		code = VT_EBUSY;
		break;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_DBS_FULL:
	case MDB_TLS_FULL:
		code = VT_ELIMIT;
		break;
	case MDB_BAD_VALSIZE:
		code = VT_EINVAL;
		break;
	case MDB_PANIC:
	case MDB_MAP_RESIZED:
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
		code = VT_EIO;
		break;
	default:
		code = rc > 0 ? vt_err_from_errno(rc) : VT_EIO;
	}
	return vt_errmsg_set(e, code, "%s: %s", what, mdb_strerror(rc));
}

static int is_disk_error(int mdb_rc)
{
	return mdb_rc > 0 || mdb_rc == MDB_PANIC;
}

/* ---- record codec ------------------------------------------------------------ */

void vt__store_rec_encode(void *dst, const float *vec, uint32_t dim,
			  const void *id, size_t id_len, const void *payload,
			  size_t payload_len)
{
	uint8_t *p = dst;
	p[0] = VT__STORE_REC_VERSION;
	p[1] = 0;
	p[2] = p[3] = 0;
	put_le32(p + 4, dim);
	put_le32(p + 8, (uint32_t)id_len);
	put_le32(p + 12, (uint32_t)payload_len);
	p += VT__STORE_REC_HDR;
	memcpy(p, vec, (size_t)dim * 4);
	p += (size_t)dim * 4;
	if (payload_len)
		memcpy(p, payload, payload_len);
	p += payload_len;
	memcpy(p, id, id_len);
}

int vt__store_rec_decode(const void *src, size_t n, uint32_t dim,
			 uint64_t label, vt_store_point *out, vt_errmsg *err)
{
	const uint8_t *p = src;
	if (n < VT__STORE_REC_HDR)
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "points: label %llu: record of %zu bytes is shorter than its header",
				     (unsigned long long)label, n);
	if (p[0] != VT__STORE_REC_VERSION)
		return vt_errmsg_set(err, VT_EVERSION,
				     "points: label %llu: record version %u, this build reads %u",
				     (unsigned long long)label, p[0],
				     VT__STORE_REC_VERSION);
	if (p[1] || p[2] || p[3])
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "points: label %llu: unknown record flags",
				     (unsigned long long)label);
	uint32_t d = get_le32(p + 4), idl = get_le32(p + 8),
		 pl = get_le32(p + 12);
	if (d == 0 || d > VT_STORE_MAX_DIM || (dim && d != dim))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "points: label %llu: record dim %u, the store's is %u",
				     (unsigned long long)label, d, dim);
	if (idl == 0 || idl > VT_STORE_MAX_ID)
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "points: label %llu: id length %u out of 1..%u",
				     (unsigned long long)label, idl, VT_STORE_MAX_ID);
	/* All terms are < 2^32, so the sum cannot overflow size_t. */
	if (vt__store_rec_size(d, idl, pl) != n)
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "points: label %llu: lengths (dim %u, id %u, payload %u) do not add up to the record size %zu",
				     (unsigned long long)label, d, idl, pl, n);
	out->label = label;
	out->dim = d;
	out->vec = (const float *)(const void *)(p + VT__STORE_REC_HDR);
	out->payload_len = pl;
	out->payload = pl ? p + VT__STORE_REC_HDR + (size_t)d * 4 : NULL;
	out->id_len = idl;
	out->id = (const char *)(p + VT__STORE_REC_HDR + (size_t)d * 4 + pl);
	return 0;
}

/* Decodes a points value for `tx`, copying a misaligned vector into
 * memory the transaction owns. */
static int decode_point(vt_store_txn *tx, uint64_t label, const MDB_val *v,
			vt_store_point *out)
{
	int rc = vt__store_rec_decode(v->mv_data, v->mv_size, tx->st->dim,
				      label, out, &tx->err);
	if (rc)
		return rc;
	if ((uintptr_t)out->vec % sizeof(float)) {
		size_t bytes = (size_t)out->dim * sizeof(float);
		struct copy *c = vt_malloc(sizeof *c + bytes);
		if (!c)
			return vt_errmsg_set(&tx->err, VT_ENOMEM,
					     "points: label %llu: copying the vector",
					     (unsigned long long)label);
		memcpy(c->v, out->vec, bytes);
		c->next = tx->copies;
		tx->copies = c;
		out->vec = c->v;
	}
	return 0;
}

/* ---- environment ------------------------------------------------------------ */

void vt_store_opts_default(vt_store_opts *o)
{
	memset(o, 0, sizeof *o);
	o->sync = VT_STORE_SYNC_FULL;
	o->map_initial = (size_t)64 << 20;
	o->map_max = (size_t)64 << 30;
	o->max_readers = 126;
	o->max_payload = (size_t)1 << 20;
	o->create = 1;
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key,
			uint64_t *out, vt_errmsg *e)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return merr(e, rc, key);
	if (v.mv_size != 8)
		return vt_errmsg_set(e, VT_ECORRUPT,
				     "meta: %s has %zu bytes, expected 8", key,
				     v.mv_size);
	*out = get_be64(v.mv_data);
	return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key,
			uint64_t val, vt_errmsg *e)
{
	uint8_t b[8];
	put_be64(b, val);
	MDB_val k = {strlen(key), (void *)key}, v = {8, b};
	int rc = mdb_put(txn, dbi, &k, &v, 0);
	return rc ? merr(e, rc, key) : 0;
}

static int env_map_size(MDB_env *env, size_t *out)
{
	MDB_envinfo info;
	int rc = mdb_env_info(env, &info);
	if (!rc)
		*out = info.me_mapsize;
	return rc;
}

/* Opens st->env and the DBs, creating or checking the meta records. */
static int env_open(vt_store *st, vt_errmsg *e)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int rc = mdb_env_create(&env);
	if (rc)
		return merr(e, rc, "mdb_env_create");
	unsigned flags = MDB_NOTLS;
	if (st->o.sync == VT_STORE_SYNC_META)
		flags |= MDB_NOMETASYNC;
	if ((rc = mdb_env_set_maxdbs(env, 4)) ||
	    (rc = mdb_env_set_maxreaders(env, st->o.max_readers)) ||
	    (rc = mdb_env_set_mapsize(env, st->map))) {
		rc = merr(e, rc, "configure environment");
		goto err;
	}
	rc = mdb_env_open(env, st->dir, flags, 0644);
	if (rc) {
		rc = merr(e, rc, "mdb_env_open");
		goto err;
	}
	if ((rc = env_map_size(env, &st->map))) {
		rc = merr(e, rc, "mdb_env_info");
		goto err;
	}
	if (st->map > st->o.map_max)
		st->o.map_max = st->map;
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		rc = merr(e, rc, "begin");
		goto err;
	}
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) ||
	    (rc = mdb_dbi_open(txn, "points", MDB_CREATE, &st->points)) ||
	    (rc = mdb_dbi_open(txn, "ids", MDB_CREATE, &st->ids)) ||
	    (rc = mdb_dbi_open(txn, "wal", MDB_CREATE, &st->wal))) {
		rc = merr(e, rc, "open named DBs");
		goto err;
	}
	uint64_t format, dim;
	rc = meta_get_u64(txn, st->meta, K_FORMAT, &format, e);
	if (rc == VT_ENOENT) {
		MDB_stat ps;
		if ((rc = mdb_stat(txn, st->points, &ps))) {
			rc = merr(e, rc, "stat points");
			goto err;
		}
		if (ps.ms_entries) {
			rc = vt_errmsg_set(e, VT_ECORRUPT,
					   "meta: no format record but %zu points",
					   ps.ms_entries);
			goto err;
		}
		uint32_t ndim = st->o.dim ? st->o.dim : st->o.new_dim;
		if (ndim == 0 || ndim > VT_STORE_MAX_DIM) {
			rc = vt_errmsg_set(e, VT_EINVAL,
					   "dim: %u is out of 1..%u (required to create a store)",
					   ndim, VT_STORE_MAX_DIM);
			goto err;
		}
		if ((rc = meta_put_u64(txn, st->meta, K_FORMAT, VT_STORE_FORMAT, e)) ||
		    (rc = meta_put_u64(txn, st->meta, K_DIM, ndim, e)) ||
		    (rc = meta_put_u64(txn, st->meta, K_APPLIED, 0, e)) ||
		    (rc = meta_put_u64(txn, st->meta, K_NEXT, 0, e)))
			goto err;
		st->dim = ndim;
	} else if (rc) {
		goto err;
	} else {
		if (format != VT_STORE_FORMAT) {
			rc = vt_errmsg_set(e, VT_EVERSION,
					   "meta: store format %llu, this build reads %u",
					   (unsigned long long)format, VT_STORE_FORMAT);
			goto err;
		}
		if ((rc = meta_get_u64(txn, st->meta, K_DIM, &dim, e)))
			goto err;
		if (dim == 0 || dim > VT_STORE_MAX_DIM) {
			rc = vt_errmsg_set(e, VT_ECORRUPT, "meta: dim %llu",
					   (unsigned long long)dim);
			goto err;
		}
		if (st->o.dim && st->o.dim != dim) {
			rc = vt_errmsg_set(e, VT_EINVAL,
					   "dim: %u given, the store holds %llu-dim vectors",
					   st->o.dim, (unsigned long long)dim);
			goto err;
		}
		st->dim = (uint32_t)dim;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		rc = merr(e, rc, "commit");
		goto err;
	}
	st->env = env;
	return 0;
err:
	if (rc == EMAPFULL)
		rc = vt_errmsg_set(e, VT_ENOSPC, "open: map full");
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

int vt_store_open(const char *dir, const vt_store_opts *o, vt_store **out,
		  vt_errmsg *err)
{
	vt_store_opts def;
	*out = NULL;
	if (!o) {
		vt_store_opts_default(&def);
		o = &def;
	}
	if (!dir || !*dir)
		return vt_errmsg_set(err, VT_EINVAL, "dir: empty");
	if (o->sync != VT_STORE_SYNC_FULL && o->sync != VT_STORE_SYNC_META)
		return vt_errmsg_set(err, VT_EINVAL, "sync: %d is not a vt_store_sync",
				     o->sync);
	if (o->map_initial < ((size_t)1 << 16) || o->map_max < o->map_initial)
		return vt_errmsg_set(err, VT_EINVAL,
				     "map_initial: %zu must be >= 64 KiB and <= map_max (%zu)",
				     o->map_initial, o->map_max);
	if (o->max_readers == 0)
		return vt_errmsg_set(err, VT_EINVAL, "max_readers: must be >= 1");
	if (o->max_payload > ((size_t)1 << 30))
		return vt_errmsg_set(err, VT_EINVAL, "max_payload: %zu is over 1 GiB",
				     o->max_payload);
	if (o->dim > VT_STORE_MAX_DIM)
		return vt_errmsg_set(err, VT_EINVAL, "dim: %u is over %u", o->dim,
				     VT_STORE_MAX_DIM);
	struct stat sb;
	if (stat(dir, &sb)) {
		if (errno != ENOENT || !o->create)
			return vt_errmsg_set(err, vt_err_from_errno(errno),
					     "%s: %s", dir, strerror(errno));
		if (mkdir(dir, 0755) && errno != EEXIST)
			return vt_errmsg_set(err, vt_err_from_errno(errno),
					     "mkdir %s: %s", dir, strerror(errno));
	} else if (!S_ISDIR(sb.st_mode)) {
		return vt_errmsg_set(err, VT_EINVAL, "%s: not a directory", dir);
	}
	if (!o->create) {
		char path[4096];
		snprintf(path, sizeof path, "%s/data.mdb", dir);
		if (stat(path, &sb))
			return vt_errmsg_set(err, VT_ENOENT, "%s: no store", dir);
	}
	vt_store *st = vt_calloc(1, sizeof *st);
	if (!st)
		return vt_errmsg_set(err, VT_ENOMEM, "store");
	st->dir = vt_strdup(dir);
	if (!st->dir) {
		vt_free(st);
		return vt_errmsg_set(err, VT_ENOMEM, "store");
	}
	st->o = *o;
	st->map = o->map_initial;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* Growth must not starve behind a steady stream of searches. */
	pthread_rwlockattr_setkind_np(&ra,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->maplock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&st->wmu, NULL);
	int rc = env_open(st, err);
	if (rc) {
		vt_errmsg_prefix(err, rc, "store %s", dir);
		vt_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void vt_store_close(vt_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->maplock);
	pthread_mutex_destroy(&st->wmu);
	vt_free(st->dir);
	vt_free(st);
}

uint32_t vt_store_dim(const vt_store *st)
{
	return st->dim;
}

const char *vt_store_errmsg(const vt_store *st)
{
	return st->err.msg;
}

const char *vt_store_txn_errmsg(const vt_store_txn *tx)
{
	return tx->err.msg;
}

int vt_store_readonly(const vt_store *st)
{
	return __atomic_load_n(&st->readonly, __ATOMIC_ACQUIRE) != 0;
}

void vt_store_inject_fault(vt_store *st, uint32_t n, int err_no)
{
	st->fault_n = n;
	st->fault_errno = err_no;
}

void vt_store_inject_op_fault(vt_store *st, uint32_t n, int err_no)
{
	st->fault_op_n = n;
	st->fault_op_errno = err_no;
}

/* Reopens the environment (after a failed commit LMDB may refuse further
 * transactions). Called with maplock held exclusively. */
static int env_reopen(vt_store *st, vt_errmsg *e)
{
	if (st->env) {
		mdb_env_close(st->env);
		st->env = NULL;
	}
	return env_open(st, e);
}

/* Puts the store in read-only mode after a disk error during a write.
 * Called by the writer with no LMDB transaction open and maplock not held. */
static int go_readonly(vt_store *st, int code, const char *why)
{
	snprintf(st->ro_why, sizeof st->ro_why, "%s", why);
	__atomic_store_n(&st->readonly, code, __ATOMIC_RELEASE);
	VT_LOG(VT_LOG_ERROR, "store", "%s: read-only: %s", st->dir, why);
	/* LMDB marks its environment unusable after some write failures;
	 * reopening keeps reads working on what is committed. */
	pthread_rwlock_wrlock(&st->maplock);
	vt_errmsg e;
	if (env_reopen(st, &e))
		VT_LOG(VT_LOG_ERROR, "store", "%s: reopen after the error failed: %s",
		       st->dir, e.msg);
	pthread_rwlock_unlock(&st->maplock);
	return code;
}

int vt_store_clear_readonly(vt_store *st, size_t new_map_max, vt_errmsg *err)
{
	pthread_mutex_lock(&st->wmu);
	pthread_rwlock_wrlock(&st->maplock);
	size_t old_max = st->o.map_max;
	if (new_map_max) {
		if (new_map_max < st->map) {
			pthread_rwlock_unlock(&st->maplock);
			pthread_mutex_unlock(&st->wmu);
			return vt_errmsg_set(err, VT_EINVAL,
					     "map_max: %zu is below the current map (%zu)",
					     new_map_max, st->map);
		}
		st->o.map_max = new_map_max;
	}
	int rc = env_reopen(st, err);
	if (rc)
		st->o.map_max = old_max;
	else
		__atomic_store_n(&st->readonly, 0, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&st->maplock);
	pthread_mutex_unlock(&st->wmu);
	if (!rc)
		VT_LOG(VT_LOG_WARN, "store", "%s: writable again", st->dir);
	return rc;
}

/* ---- transactions ------------------------------------------------------------ */

static void txn_free(vt_store_txn *tx)
{
	while (tx->copies) {
		struct copy *c = tx->copies;
		tx->copies = c->next;
		vt_free(c);
	}
	vt_buf_free(&tx->log);
	vt_buf_free(&tx->tmp);
	vt_free(tx);
}

static void reset_caches(vt_store_txn *tx)
{
	tx->have_next = 0;
	tx->have_wal_last = 0;
}

/* Grows the map (doubling, capped at map_max). Called by the writer with
 * no LMDB transaction open and maplock not held. */
static int grow(vt_store *st)
{
	if (st->map >= st->o.map_max) {
		char why[VT_ERRMSG_SIZE];
		snprintf(why, sizeof why,
			 "the map reached map_max (%zu bytes, the shard's quota): delete points or raise map_max, then clear read-only",
			 st->o.map_max);
		vt_errmsg_set(&st->err, VT_ENOSPC, "%s", why);
		return go_readonly(st, VT_ENOSPC, why);
	}
	size_t n = st->map > st->o.map_max / 2 ? st->o.map_max : st->map * 2;
	pthread_rwlock_wrlock(&st->maplock);
	int rc = mdb_env_set_mapsize(st->env, n);
	if (!rc)
		rc = env_map_size(st->env, &st->map);
	pthread_rwlock_unlock(&st->maplock);
	if (rc)
		return merr(&st->err, rc, "grow map");
	VT_LOG(VT_LOG_INFO, "store", "%s: map grown to %zu bytes", st->dir, st->map);
	return 0;
}

int vt_store_txn_begin(vt_store *st, vt_store_txn **out)
{
	*out = NULL;
	if (vt_store_readonly(st))
		return vt_errmsg_set(&st->err, VT_EREADONLY,
				     "store %s is read-only: %s", st->dir,
				     st->ro_why);
	vt_store_txn *tx = vt_calloc(1, sizeof *tx);
	if (!tx)
		return vt_errmsg_set(&st->err, VT_ENOMEM, "begin");
	tx->st = st;
	tx->write = 1;
	vt_buf_init(&tx->log, LOG_MAX);
	vt_buf_init(&tx->tmp, (size_t)VT_STORE_MAX_DIM * 4);
	pthread_mutex_lock(&st->wmu);
	/* Grow ahead of need, so a transaction rarely replays. */
	MDB_envinfo info;
	MDB_stat es;
	if (!mdb_env_info(st->env, &info) && !mdb_env_stat(st->env, &es) &&
	    (info.me_last_pgno + 1) * (size_t)es.ms_psize > st->map / 4 * 3 &&
	    st->map < st->o.map_max) {
		int rc = grow(st);
		if (rc) {
			pthread_mutex_unlock(&st->wmu);
			vt_free(tx);
			return rc;
		}
	}
	pthread_rwlock_rdlock(&st->maplock);
	int rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn);
	if (rc) {
		pthread_rwlock_unlock(&st->maplock);
		pthread_mutex_unlock(&st->wmu);
		rc = merr(&st->err, rc, "begin write");
		vt_free(tx);
		return rc;
	}
	*out = tx;
	return 0;
}

int vt_store_txn_begin_read(vt_store *st, vt_store_txn **out)
{
	*out = NULL;
	vt_store_txn *tx = vt_calloc(1, sizeof *tx);
	if (!tx)
		return VT_ENOMEM;
	tx->st = st;
	pthread_rwlock_rdlock(&st->maplock);
	int rc = st->env ? mdb_txn_begin(st->env, NULL, MDB_RDONLY, &tx->txn)
			 : MDB_PANIC;
	if (rc) {
		pthread_rwlock_unlock(&st->maplock);
		vt_free(tx);
		return merr(NULL, rc, "begin read");
	}
	*out = tx;
	return 0;
}

void vt_store_txn_abort(vt_store_txn *tx)
{
	if (!tx)
		return;
	vt_store *st = tx->st;
	if (tx->txn)
		mdb_txn_abort(tx->txn);
	pthread_rwlock_unlock(&st->maplock);
	if (tx->write)
		pthread_mutex_unlock(&st->wmu);
	txn_free(tx);
}

static int replay(vt_store_txn *tx, uint64_t *label_out, int *was_update);

/* After MDB_MAP_FULL: drop the LMDB transaction, grow the map, begin again
 * and redo every operation so far. The outputs of the last operation go to
 * label_out / was_update. On error the transaction is failed. */
static int grow_and_replay(vt_store_txn *tx, uint64_t *label_out,
			   int *was_update)
{
	vt_store *st = tx->st;
	for (;;) {
		mdb_txn_abort(tx->txn);
		tx->txn = NULL;
		pthread_rwlock_unlock(&st->maplock);
		int rc = grow(st);
		pthread_rwlock_rdlock(&st->maplock);
		if (rc) {
			vt_errmsg_set(&tx->err, rc, "%s", st->err.msg);
			return rc;
		}
		rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn);
		if (rc) {
			tx->txn = NULL;
			return merr(&tx->err, rc, "begin write after growth");
		}
		reset_caches(tx);
		rc = replay(tx, label_out, was_update);
		if (rc != EMAPFULL)
			return rc;
	}
}

/* ---- write operations -------------------------------------------------------- */

static int next_label(vt_store_txn *tx, uint64_t *out)
{
	if (!tx->have_next) {
		int rc = meta_get_u64(tx->txn, tx->st->meta, K_NEXT,
				      &tx->next_label, &tx->err);
		if (rc)
			return rc;
		tx->have_next = 1;
	}
	*out = tx->next_label;
	return 0;
}

static int lookup_id(vt_store_txn *tx, const void *id, size_t id_len,
		     uint64_t *label)
{
	MDB_val k = {id_len, (void *)id}, v;
	int rc = mdb_get(tx->txn, tx->st->ids, &k, &v);
	if (rc == MDB_NOTFOUND)
		return VT_ENOENT;
	if (rc)
		return merr(&tx->err, rc, "ids");
	if (v.mv_size != 8)
		return vt_errmsg_set(&tx->err, VT_ECORRUPT,
				     "ids: value of %zu bytes, expected 8",
				     v.mv_size);
	*label = get_be64(v.mv_data);
	return 0;
}

static int write_point(vt_store_txn *tx, uint64_t label, int append,
		       const void *id, size_t id_len, const float *vec,
		       const void *payload, size_t payload_len)
{
	uint8_t kb[8];
	put_be64(kb, label);
	MDB_val k = {8, kb};
	MDB_val v = {vt__store_rec_size(tx->st->dim, id_len, payload_len), NULL};
	int rc = mdb_put(tx->txn, tx->st->points, &k, &v,
			 MDB_RESERVE | (append ? MDB_APPEND : 0));
	if (rc)
		return merr(&tx->err, rc, "points");
	vt__store_rec_encode(v.mv_data, vec, tx->st->dim, id, id_len, payload,
			     payload_len);
	return 0;
}

static int do_put(vt_store_txn *tx, const void *id, size_t id_len,
		  const float *vec, const void *payload, size_t payload_len,
		  uint64_t *label_out, int *was_update)
{
	uint64_t label;
	int rc = lookup_id(tx, id, id_len, &label);
	int update = rc == 0;
	if (rc && rc != VT_ENOENT)
		return rc;
	if (!update) {
		if ((rc = next_label(tx, &label)))
			return rc;
		if (label == UINT64_MAX)
			return vt_errmsg_set(&tx->err, VT_ELIMIT, "labels exhausted");
	}
	if ((rc = write_point(tx, label, !update, id, id_len, vec, payload,
			      payload_len)))
		return rc;
	if (!update) {
		uint8_t lb[8];
		put_be64(lb, label);
		MDB_val k = {id_len, (void *)id}, v = {8, lb};
		if ((rc = mdb_put(tx->txn, tx->st->ids, &k, &v, MDB_NOOVERWRITE)))
			return merr(&tx->err, rc, "ids");
		if ((rc = meta_put_u64(tx->txn, tx->st->meta, K_NEXT, label + 1,
				       &tx->err)))
			return rc;
		tx->next_label = label + 1;
	}
	if (label_out)
		*label_out = label;
	if (was_update)
		*was_update = update;
	return 0;
}

static int do_del(vt_store_txn *tx, const void *id, size_t id_len,
		  uint64_t *label_out)
{
	uint64_t label;
	int rc = lookup_id(tx, id, id_len, &label);
	if (rc == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "id: no such point");
	if (rc)
		return rc;
	MDB_val k = {id_len, (void *)id};
	if ((rc = mdb_del(tx->txn, tx->st->ids, &k, NULL)))
		return merr(&tx->err, rc, "ids");
	uint8_t kb[8];
	put_be64(kb, label);
	MDB_val lk = {8, kb};
	rc = mdb_del(tx->txn, tx->st->points, &lk, NULL);
	if (rc == MDB_NOTFOUND)
		return vt_errmsg_set(&tx->err, VT_ECORRUPT,
				     "ids: maps to label %llu, which has no point",
				     (unsigned long long)label);
	if (rc)
		return merr(&tx->err, rc, "points");
	if (label_out)
		*label_out = label;
	return 0;
}

static int get_label(vt_store_txn *tx, uint64_t label, vt_store_point *out,
		     int copy_ok)
{
	uint8_t kb[8];
	put_be64(kb, label);
	MDB_val k = {8, kb}, v;
	int rc = mdb_get(tx->txn, tx->st->points, &k, &v);
	if (rc == MDB_NOTFOUND)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "label %llu: no such point",
				     (unsigned long long)label);
	if (rc)
		return merr(&tx->err, rc, "points");
	if (!copy_ok)
		return vt__store_rec_decode(v.mv_data, v.mv_size, tx->st->dim,
					    label, out, &tx->err);
	return decode_point(tx, label, &v, out);
}

static int do_setpay(vt_store_txn *tx, const void *id, size_t id_len,
		     const void *payload, size_t payload_len,
		     uint64_t *label_out)
{
	uint64_t label;
	int rc = lookup_id(tx, id, id_len, &label);
	if (rc == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "id: no such point");
	if (rc)
		return rc;
	vt_store_point p;
	if ((rc = get_label(tx, label, &p, 0)))
		return rc == VT_ENOENT ? vt_errmsg_set(&tx->err, VT_ECORRUPT,
					  "ids: maps to label %llu, which has no point",
					  (unsigned long long)label)
				       : rc;
	/* The old record's page may be rewritten in place: keep the vector. */
	vt_buf_reset(&tx->tmp);
	if ((rc = vt_buf_append(&tx->tmp, p.vec, (size_t)p.dim * 4)))
		return vt_errmsg_set(&tx->err, rc, "set_payload: copying the vector");
	const float *vec = (const float *)(const void *)tx->tmp.data;
	if ((rc = write_point(tx, label, 0, id, id_len, vec, payload, payload_len)))
		return rc;
	if (label_out)
		*label_out = label;
	return 0;
}

static int do_wal(vt_store_txn *tx, uint64_t index, int op, uint64_t label)
{
	int rc;
	if (!tx->have_wal_last) {
		MDB_cursor *c;
		if ((rc = mdb_cursor_open(tx->txn, tx->st->wal, &c)))
			return merr(&tx->err, rc, "wal");
		MDB_val k, v;
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND) {
			tx->wal_empty = 1;
		} else if (rc) {
			return merr(&tx->err, rc, "wal");
		} else {
			if (k.mv_size != 12)
				return vt_errmsg_set(&tx->err, VT_ECORRUPT,
						     "wal: key of %zu bytes, expected 12",
						     k.mv_size);
			tx->wal_empty = 0;
			tx->wal_last_index = get_be64(k.mv_data);
			tx->wal_last_seq = get_be32((uint8_t *)k.mv_data + 8);
		}
		tx->have_wal_last = 1;
	}
	uint32_t seq = 0;
	if (!tx->wal_empty) {
		if (index < tx->wal_last_index)
			return vt_errmsg_set(&tx->err, VT_ERANGE,
					     "wal: index %llu is below the last one (%llu)",
					     (unsigned long long)index,
					     (unsigned long long)tx->wal_last_index);
		if (index == tx->wal_last_index) {
			if (tx->wal_last_seq == UINT32_MAX)
				return vt_errmsg_set(&tx->err, VT_ELIMIT,
						     "wal: too many entries for index %llu",
						     (unsigned long long)index);
			seq = tx->wal_last_seq + 1;
		}
	}
	uint8_t kb[12], vb[9];
	put_be64(kb, index);
	put_be32(kb + 8, seq);
	vb[0] = (uint8_t)op;
	put_be64(vb + 1, label);
	MDB_val k = {12, kb}, v = {9, vb};
	if ((rc = mdb_put(tx->txn, tx->st->wal, &k, &v, MDB_APPEND)))
		return merr(&tx->err, rc, "wal");
	tx->wal_empty = 0;
	tx->wal_last_index = index;
	tx->wal_last_seq = seq;
	return 0;
}

static int do_applied(vt_store_txn *tx, uint64_t index)
{
	uint64_t cur;
	int rc = meta_get_u64(tx->txn, tx->st->meta, K_APPLIED, &cur, &tx->err);
	if (rc)
		return rc;
	if (index < cur)
		return vt_errmsg_set(&tx->err, VT_ERANGE,
				     "applied: %llu is below the stored %llu",
				     (unsigned long long)index,
				     (unsigned long long)cur);
	return meta_put_u64(tx->txn, tx->st->meta, K_APPLIED, index, &tx->err);
}

static int do_meta(vt_store_txn *tx, const char *key, size_t klen,
		   const void *val, size_t len)
{
	char kb[2 + VT_STORE_MAX_META_KEY];
	memcpy(kb, "u.", 2);
	memcpy(kb + 2, key, klen);
	MDB_val k = {klen + 2, kb}, v = {len, (void *)val};
	int rc = mdb_put(tx->txn, tx->st->meta, &k, &v, 0);
	return rc ? merr(&tx->err, rc, "meta") : 0;
}

static int do_trim(vt_store_txn *tx, uint64_t upto, uint64_t *removed)
{
	MDB_cursor *c;
	uint64_t n = 0;
	int rc = mdb_cursor_open(tx->txn, tx->st->wal, &c);
	if (rc)
		return merr(&tx->err, rc, "wal");
	MDB_val k, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (!rc) {
		if (k.mv_size != 12) {
			mdb_cursor_close(c);
			return vt_errmsg_set(&tx->err, VT_ECORRUPT,
					     "wal: key of %zu bytes, expected 12",
					     k.mv_size);
		}
		if (get_be64(k.mv_data) > upto)
			break;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		n++;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return merr(&tx->err, rc, "wal trim");
	tx->have_wal_last = 0;
	if (removed)
		*removed = n;
	return 0;
}

/* Applies one op-log record (see log_op). */
static int apply_rec(vt_store_txn *tx, const uint8_t *rec, size_t len,
		     uint64_t *label_out, int *was_update)
{
	vt_reader r;
	vt_reader_init(&r, rec, len);
	uint8_t op;
	uint32_t a_len, b_len, u32;
	uint64_t a, b;
	const void *ap = NULL, *bp = NULL, *vp = NULL;
	vt_reader_u8(&r, &op);
	switch (op) {
	case OP_PUT:
		vt_reader_u32(&r, &a_len);
		vt_reader_ptr(&r, &ap, a_len);
		vt_reader_u32(&r, &b_len);
		vt_reader_ptr(&r, &bp, b_len);
		/* Floats sit at a 4-aligned offset of a vt_malloc'd buffer. */
		r.off += (4 - (r.off & 3)) & 3;
		if (vt_reader_ptr(&r, &vp, (size_t)tx->st->dim * 4))
			return vt_errmsg_set(&tx->err, VT_EINTERNAL, "op log: short put");
		return do_put(tx, ap, a_len, vp, bp, b_len, label_out,
			      was_update);
	case OP_DEL:
		vt_reader_u32(&r, &a_len);
		vt_reader_ptr(&r, &ap, a_len);
		return do_del(tx, ap, a_len, label_out);
	case OP_SETPAY:
		vt_reader_u32(&r, &a_len);
		vt_reader_ptr(&r, &ap, a_len);
		vt_reader_u32(&r, &b_len);
		vt_reader_ptr(&r, &bp, b_len);
		return do_setpay(tx, ap, a_len, bp, b_len, label_out);
	case OP_WAL:
		vt_reader_u64(&r, &a);
		vt_reader_u32(&r, &u32);
		vt_reader_u64(&r, &b);
		return do_wal(tx, a, (int)u32, b);
	case OP_APPLIED:
		vt_reader_u64(&r, &a);
		return do_applied(tx, a);
	case OP_META:
		vt_reader_u32(&r, &a_len);
		vt_reader_ptr(&r, &ap, a_len);
		vt_reader_u32(&r, &b_len);
		vt_reader_ptr(&r, &bp, b_len);
		return do_meta(tx, ap, a_len, bp, b_len);
	case OP_TRIM:
		vt_reader_u64(&r, &a);
		return do_trim(tx, a, label_out);
	}
	return vt_errmsg_set(&tx->err, VT_EINTERNAL, "op log: unknown op %u", op);
}

/* Op-log records: u32 length | u8 op | fields. The length keeps floats at a
 * 4-aligned offset: records are padded to a multiple of 4, and the vector
 * field of OP_PUT is preceded by padding to a 4-aligned offset. */
static int replay(vt_store_txn *tx, uint64_t *label_out, int *was_update)
{
	size_t off = 0;
	while (off < tx->log.len) {
		uint32_t n;
		memcpy(&n, tx->log.data + off, 4);
		off += 4;
		size_t padded = (n + 3) & ~(size_t)3;
		int last = off + padded >= tx->log.len;
		uint64_t l;
		int u;
		int rc = apply_rec(tx, tx->log.data + off, n,
				   last ? label_out : &l, last ? was_update : &u);
		if (rc)
			return rc;
		off += padded;
	}
	return 0;
}

/* Field writers for building a record in tx->log. */
static int log_begin(vt_store_txn *tx, uint8_t op, size_t *start)
{
	*start = tx->log.len;
	uint32_t zero = 0;
	int rc = vt_buf_append(&tx->log, &zero, 4);
	if (!rc)
		rc = vt_buf_put_u8(&tx->log, op);
	return rc;
}

static int log_bytes(vt_store_txn *tx, const void *p, size_t n)
{
	int rc = vt_buf_put_u32(&tx->log, (uint32_t)n);
	if (!rc && n)
		rc = vt_buf_append(&tx->log, p, n);
	return rc;
}

static int log_end(vt_store_txn *tx, size_t start)
{
	uint32_t n = (uint32_t)(tx->log.len - start - 4);
	memcpy(tx->log.data + start, &n, 4);
	static const uint8_t pad[4];
	size_t p = (4 - (tx->log.len & 3)) & 3;
	return p ? vt_buf_append(&tx->log, pad, p) : 0;
}

/* Runs the record just logged at `start`, growing and replaying on a full
 * map. Marks the transaction failed on any error. */
static int run_logged(vt_store_txn *tx, size_t start, uint64_t *label_out,
		      int *was_update)
{
	uint32_t n;
	memcpy(&n, tx->log.data + start, 4);
	vt_store *fst = tx->st;
	int rc;
	if (fst->fault_op_n && --fst->fault_op_n == 0)
		rc = merr(&tx->err, fst->fault_op_errno ? fst->fault_op_errno : EIO,
			  "injected fault");
	else
		rc = apply_rec(tx, tx->log.data + start + 4, n, label_out,
			       was_update);
	if (rc == EMAPFULL)
		rc = grow_and_replay(tx, label_out, was_update);
	if ((rc == VT_EIO || rc == VT_ENOSPC) && tx->txn &&
	    !vt_store_readonly(tx->st)) {
		/* LMDB writes dirty pages out early in a very large transaction
		 * (spilling), so a disk error can surface here too. */
		vt_store *st = tx->st;
		char why[VT_ERRMSG_SIZE];
		snprintf(why, sizeof why,
			 "write failed (%.120s), the transaction was rolled back; free disk space or fix the device, then clear read-only",
			 tx->err.msg);
		mdb_txn_abort(tx->txn);
		tx->txn = NULL;
		pthread_rwlock_unlock(&st->maplock);
		go_readonly(st, rc, why);
		pthread_rwlock_rdlock(&st->maplock);
		vt_errmsg_set(&tx->err, rc, "%s", why);
	}
	if (rc)
		tx->failed = 1;
	return rc;
}

static int check_write(vt_store_txn *tx)
{
	if (!tx->write)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "write in a read transaction");
	if (tx->failed || !tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "transaction failed earlier: abort it");
	return 0;
}

static int check_id(vt_store_txn *tx, const void *id, size_t id_len)
{
	if (!id || id_len == 0 || id_len > VT_STORE_MAX_ID)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "id: length %zu is out of 1..%u", id ? id_len : 0,
				     VT_STORE_MAX_ID);
	return 0;
}

static int check_payload(vt_store_txn *tx, const void *payload, size_t len)
{
	if (len && !payload)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "payload: NULL with length %zu",
				     len);
	if (len > tx->st->o.max_payload)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "payload: %zu bytes is over max_payload (%zu)",
				     len, tx->st->o.max_payload);
	return 0;
}

/* On an error before anything was written the transaction stays usable. */
static int fail_nomem(vt_store_txn *tx, size_t start, int rc)
{
	tx->log.len = start;
	return vt_errmsg_set(&tx->err, rc, "op log: %s", vt_strerror(rc));
}

int vt_store_put(vt_store_txn *tx, const void *id, size_t id_len,
		 const float *vec, uint32_t dim, const void *payload,
		 size_t payload_len, uint64_t *label_out, int *was_update)
{
	int rc;
	if ((rc = check_write(tx)) || (rc = check_id(tx, id, id_len)) ||
	    (rc = check_payload(tx, payload, payload_len)))
		return rc;
	if (!vec)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "vector: NULL");
	if (dim != tx->st->dim)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "vector: %u dimensions, the collection has %u",
				     dim, tx->st->dim);
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(vec[i]))
			return vt_errmsg_set(&tx->err, VT_EINVAL,
					     "vector: component %u is not finite", i);
	size_t start;
	if ((rc = log_begin(tx, OP_PUT, &start)) ||
	    (rc = log_bytes(tx, id, id_len)) ||
	    (rc = log_bytes(tx, payload, payload_len)))
		return fail_nomem(tx, start, rc);
	/* Pad so the vector sits at a 4-aligned offset (apply_rec skips the
	 * same padding); the record body itself starts 4-aligned. */
	static const uint8_t pad[4];
	size_t p = (4 - ((tx->log.len - start - 4) & 3)) & 3;
	if (p && (rc = vt_buf_append(&tx->log, pad, p)))
		return fail_nomem(tx, start, rc);
	if ((rc = vt_buf_append(&tx->log, vec, (size_t)dim * 4)) ||
	    (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	return run_logged(tx, start, label_out, was_update);
}

int vt_store_del(vt_store_txn *tx, const void *id, size_t id_len,
		 uint64_t *label_out)
{
	int rc;
	if ((rc = check_write(tx)) || (rc = check_id(tx, id, id_len)))
		return rc;
	/* A missing id is an answer, not a failure of the transaction. */
	uint64_t l;
	if ((rc = lookup_id(tx, id, id_len, &l)) == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "id: no such point");
	if (rc) {
		tx->failed = 1;
		return rc;
	}
	size_t start;
	if ((rc = log_begin(tx, OP_DEL, &start)) ||
	    (rc = log_bytes(tx, id, id_len)) || (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	return run_logged(tx, start, label_out, NULL);
}

int vt_store_set_payload(vt_store_txn *tx, const void *id, size_t id_len,
			 const void *payload, size_t payload_len,
			 uint64_t *label_out)
{
	int rc;
	if ((rc = check_write(tx)) || (rc = check_id(tx, id, id_len)) ||
	    (rc = check_payload(tx, payload, payload_len)))
		return rc;
	uint64_t l;
	if ((rc = lookup_id(tx, id, id_len, &l)) == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "id: no such point");
	if (rc) {
		tx->failed = 1;
		return rc;
	}
	size_t start;
	if ((rc = log_begin(tx, OP_SETPAY, &start)) ||
	    (rc = log_bytes(tx, id, id_len)) ||
	    (rc = log_bytes(tx, payload, payload_len)) ||
	    (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	return run_logged(tx, start, label_out, NULL);
}

int vt_store_wal_append(vt_store_txn *tx, uint64_t index, int op,
			uint64_t label)
{
	int rc;
	if ((rc = check_write(tx)))
		return rc;
	if (op != VT_STORE_WAL_UPSERT && op != VT_STORE_WAL_DELETE)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "wal: op %d is not a vt_store_wal_op",
				     op);
	size_t start;
	if ((rc = log_begin(tx, OP_WAL, &start)) ||
	    (rc = vt_buf_put_u64(&tx->log, index)) ||
	    (rc = vt_buf_put_u32(&tx->log, (uint32_t)op)) ||
	    (rc = vt_buf_put_u64(&tx->log, label)) || (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	rc = run_logged(tx, start, NULL, NULL);
	if (rc == VT_ERANGE) {
		/* Refused before writing: undo the record, keep the txn. */
		tx->failed = 0;
		tx->log.len = start;
	}
	return rc;
}

int vt_store_set_applied(vt_store_txn *tx, uint64_t index)
{
	int rc;
	if ((rc = check_write(tx)))
		return rc;
	size_t start;
	if ((rc = log_begin(tx, OP_APPLIED, &start)) ||
	    (rc = vt_buf_put_u64(&tx->log, index)) || (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	rc = run_logged(tx, start, NULL, NULL);
	if (rc == VT_ERANGE) {
		tx->failed = 0;
		tx->log.len = start;
	}
	return rc;
}

int vt_store_meta_put(vt_store_txn *tx, const char *key, const void *val,
		      size_t len)
{
	int rc;
	if ((rc = check_write(tx)))
		return rc;
	size_t klen = key ? strlen(key) : 0;
	if (klen == 0 || klen > VT_STORE_MAX_META_KEY)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "meta key: length %zu is out of 1..%u", klen,
				     VT_STORE_MAX_META_KEY);
	if (len && !val)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "meta value: NULL");
	if (len > ((size_t)1 << 30))
		return vt_errmsg_set(&tx->err, VT_EINVAL, "meta value: %zu bytes is over 1 GiB",
				     len);
	size_t start;
	if ((rc = log_begin(tx, OP_META, &start)) ||
	    (rc = log_bytes(tx, key, klen)) || (rc = log_bytes(tx, val, len)) ||
	    (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	return run_logged(tx, start, NULL, NULL);
}

int vt_store_wal_trim(vt_store_txn *tx, uint64_t upto, uint64_t *removed)
{
	int rc;
	if ((rc = check_write(tx)))
		return rc;
	size_t start;
	if ((rc = log_begin(tx, OP_TRIM, &start)) ||
	    (rc = vt_buf_put_u64(&tx->log, upto)) || (rc = log_end(tx, start)))
		return fail_nomem(tx, start, rc);
	uint64_t n = 0;
	rc = run_logged(tx, start, &n, NULL);
	if (!rc && removed)
		*removed = n;
	return rc;
}

int vt_store_txn_commit(vt_store_txn *tx)
{
	vt_store *st = tx->st;
	if (!tx->write) {
		vt_store_txn_abort(tx);
		return 0;
	}
	if (tx->failed || !tx->txn) {
		vt_errmsg_set(&st->err, VT_EINVAL,
			      "commit of a failed transaction: it was rolled back");
		vt_store_txn_abort(tx);
		return VT_EINVAL;
	}
	int rc;
	for (;;) {
		if (st->fault_n && --st->fault_n == 0) {
			mdb_txn_abort(tx->txn);
			rc = st->fault_errno ? st->fault_errno : EIO;
		} else {
			rc = mdb_txn_commit(tx->txn);
		}
		tx->txn = NULL;
		if (rc != MDB_MAP_FULL)
			break;
		/* Committing can need pages too (the free list). */
		uint64_t l;
		int u;
		int g = grow_and_replay(tx, &l, &u);
		if (g) {
			/* At map_max, st->err already says why. */
			if (!(g == VT_ENOSPC && vt_store_readonly(st)))
				vt_errmsg_set(&st->err, g, "commit: %s", tx->err.msg);
			vt_store_txn_abort(tx);
			return g;
		}
	}
	pthread_rwlock_unlock(&st->maplock);
	if (rc && is_disk_error(rc)) {
		int code = rc == ENOSPC || rc == EDQUOT ? VT_ENOSPC : VT_EIO;
		/* LMDB turns a short write (the disk filled mid-write) into
		 * EIO: tell the operator what it really is. */
		struct statvfs fs;
		if (code == VT_EIO && !statvfs(st->dir, &fs) &&
		    (uint64_t)fs.f_bavail * fs.f_frsize < ((uint64_t)1 << 20)) {
			code = VT_ENOSPC;
			rc = ENOSPC;
		}
		char why[VT_ERRMSG_SIZE];
		snprintf(why, sizeof why,
			 "commit failed (%s), nothing of it was stored; free disk space or fix the device, then clear read-only",
			 mdb_strerror(rc));
		vt_errmsg_set(&st->err, code, "%s", why);
		rc = go_readonly(st, code, why);
	} else if (rc) {
		rc = merr(&st->err, rc, "commit");
	}
	pthread_mutex_unlock(&st->wmu);
	txn_free(tx);
	return rc;
}

/* ---- reads ---------------------------------------------------------------------- */

int vt_store_get_by_id(vt_store_txn *tx, const void *id, size_t id_len,
		       vt_store_point *out)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	if (!id || id_len == 0 || id_len > VT_STORE_MAX_ID)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "id: length %zu is out of 1..%u", id_len,
				     VT_STORE_MAX_ID);
	uint64_t label;
	int rc = lookup_id(tx, id, id_len, &label);
	if (rc == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "id: no such point");
	if (rc)
		return rc;
	rc = get_label(tx, label, out, 1);
	if (rc == VT_ENOENT)
		return vt_errmsg_set(&tx->err, VT_ECORRUPT,
				     "ids: maps to label %llu, which has no point",
				     (unsigned long long)label);
	if (!rc && (out->id_len != id_len || memcmp(out->id, id, id_len)))
		return vt_errmsg_set(&tx->err, VT_ECORRUPT,
				     "points: label %llu holds another id",
				     (unsigned long long)label);
	return rc;
}

int vt_store_get_by_label(vt_store_txn *tx, uint64_t label, vt_store_point *out)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	return get_label(tx, label, out, 1);
}

/* Opens a cursor on `dbi` that will start at `from`. */
static int cursor_open(vt_store_txn *tx, MDB_dbi dbi, const char *what,
		       uint64_t from, struct vt__cursor *c)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	int rc = mdb_cursor_open(tx->txn, dbi, &c->cur);
	if (rc)
		return merr(&tx->err, rc, what);
	c->tx = tx;
	c->from = from;
	c->started = 0;
	return 0;
}

/* Moves to the first key >= from (padded with zeros to `klen` bytes) on
 * the first call, to the next key afterwards. VT_ENOENT at the end. */
static int cursor_step(struct vt__cursor *c, size_t klen, const char *what,
		       MDB_val *k, MDB_val *v)
{
	int rc;
	if (!c->started) {
		uint8_t kb[16] = {0};
		put_be64(kb, c->from);
		k->mv_size = klen;
		k->mv_data = kb;
		rc = mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);
		c->started = 1;
	} else {
		rc = mdb_cursor_get(c->cur, k, v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		return VT_ENOENT;
	if (rc)
		return merr(&c->tx->err, rc, what);
	return 0;
}

int vt_store_iter_open(vt_store_txn *tx, uint64_t from, vt_store_iter **out)
{
	*out = NULL;
	vt_store_iter *it = vt_calloc(1, sizeof *it);
	if (!it)
		return vt_errmsg_set(&tx->err, VT_ENOMEM, "iterator");
	int rc = cursor_open(tx, tx->st->points, "points cursor", from, &it->c);
	if (rc) {
		vt_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int vt_store_iter_next(vt_store_iter *it, vt_store_point *p)
{
	MDB_val k, v;
	int rc = cursor_step(&it->c, 8, "points", &k, &v);
	if (rc)
		return rc;
	if (k.mv_size != 8)
		return vt_errmsg_set(&it->c.tx->err, VT_ECORRUPT,
				     "points: key of %zu bytes, expected 8",
				     k.mv_size);
	return decode_point(it->c.tx, get_be64(k.mv_data), &v, p);
}

void vt_store_iter_close(vt_store_iter *it)
{
	if (!it)
		return;
	mdb_cursor_close(it->c.cur);
	vt_free(it);
}

int vt_store_wal_iter_open(vt_store_txn *tx, uint64_t from,
			   vt_store_wal_iter **out)
{
	*out = NULL;
	vt_store_wal_iter *it = vt_calloc(1, sizeof *it);
	if (!it)
		return vt_errmsg_set(&tx->err, VT_ENOMEM, "iterator");
	int rc = cursor_open(tx, tx->st->wal, "wal cursor", from, &it->c);
	if (rc) {
		vt_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int vt_store_wal_iter_next(vt_store_wal_iter *it, vt_store_wal_entry *e)
{
	MDB_val k, v;
	int rc = cursor_step(&it->c, 12, "wal", &k, &v);
	if (rc)
		return rc;
	const uint8_t *vb = v.mv_data;
	if (k.mv_size != 12 || v.mv_size != 9 ||
	    (vb[0] != VT_STORE_WAL_UPSERT && vb[0] != VT_STORE_WAL_DELETE))
		return vt_errmsg_set(&it->c.tx->err, VT_ECORRUPT,
				     "wal: entry with a %zu-byte key and a %zu-byte value (op %u)",
				     k.mv_size, v.mv_size,
				     v.mv_size ? vb[0] : 0u);
	e->index = get_be64(k.mv_data);
	e->seq = get_be32((const uint8_t *)k.mv_data + 8);
	e->op = vb[0];
	e->label = get_be64(vb + 1);
	return 0;
}

void vt_store_wal_iter_close(vt_store_wal_iter *it)
{
	if (!it)
		return;
	mdb_cursor_close(it->c.cur);
	vt_free(it);
}

int vt_store_get_applied(vt_store_txn *tx, uint64_t *out)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	return meta_get_u64(tx->txn, tx->st->meta, K_APPLIED, out, &tx->err);
}

int vt_store_meta_get(vt_store_txn *tx, const char *key, const void **val,
		      size_t *len)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	size_t klen = key ? strlen(key) : 0;
	if (klen == 0 || klen > VT_STORE_MAX_META_KEY)
		return vt_errmsg_set(&tx->err, VT_EINVAL,
				     "meta key: length %zu is out of 1..%u", klen,
				     VT_STORE_MAX_META_KEY);
	char kb[2 + VT_STORE_MAX_META_KEY];
	memcpy(kb, "u.", 2);
	memcpy(kb + 2, key, klen);
	MDB_val k = {klen + 2, kb}, v;
	int rc = mdb_get(tx->txn, tx->st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return vt_errmsg_set(&tx->err, VT_ENOENT, "meta: no key %s", key);
	if (rc)
		return merr(&tx->err, rc, "meta");
	*val = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int vt_store_count(vt_store_txn *tx, uint64_t *points, uint64_t *wal)
{
	if (!tx->txn)
		return vt_errmsg_set(&tx->err, VT_EINVAL, "transaction failed earlier");
	MDB_stat s;
	int rc;
	if (points) {
		if ((rc = mdb_stat(tx->txn, tx->st->points, &s)))
			return merr(&tx->err, rc, "points");
		*points = s.ms_entries;
	}
	if (wal) {
		if ((rc = mdb_stat(tx->txn, tx->st->wal, &s)))
			return merr(&tx->err, rc, "wal");
		*wal = s.ms_entries;
	}
	return 0;
}

int vt_store_stats_get(vt_store *st, vt_store_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_rwlock_rdlock(&st->maplock);
	int rc = MDB_PANIC;
	if (st->env) {
		MDB_envinfo info;
		MDB_stat es;
		if (!(rc = mdb_env_info(st->env, &info)) &&
		    !(rc = mdb_env_stat(st->env, &es))) {
			out->map_bytes = info.me_mapsize;
			out->used_pages = info.me_last_pgno + 1;
			out->page_size = es.ms_psize;
		}
		MDB_txn *txn;
		if (!rc && !(rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) {
			uint64_t nl = 0;
			meta_get_u64(txn, st->meta, K_NEXT, &nl, NULL);
			out->next_label = nl;
			mdb_txn_abort(txn);
		}
	}
	pthread_rwlock_unlock(&st->maplock);
	out->map_max = st->o.map_max;
	out->readonly = vt_store_readonly(st);
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof path, "%s/data.mdb", st->dir);
	if (!stat(path, &sb))
		out->file_bytes = (uint64_t)sb.st_blocks * 512;
	return rc ? merr(NULL, rc, "stats") : 0;
}

/* ---- snapshot / restore ----------------------------------------------------- */

int vt_store_snapshot(vt_store *st, vt_store_write_fn write, void *ud,
		      vt_errmsg *err)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/snapshot.XXXXXX", st->dir);
	uint8_t *buf = vt_malloc(CHUNK);
	if (!buf)
		return vt_errmsg_set(err, VT_ENOMEM, "snapshot: buffer");
	int fd = mkstemp(path);
	if (fd < 0) {
		vt_free(buf);
		return vt_errmsg_set(err, vt_err_from_errno(errno),
				     "snapshot: %s: %s", path, strerror(errno));
	}
	unlink(path);
	pthread_rwlock_rdlock(&st->maplock);
	int rc = st->env ? mdb_env_sync(st->env, 1) : MDB_PANIC;
	if (!rc)
		rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&st->maplock);
	if (rc) {
		rc = merr(err, rc, "snapshot: copy");
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		rc = vt_errmsg_set(err, VT_EIO, "snapshot: seek: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = vt_errmsg_set(err, vt_err_from_errno(errno),
					   "snapshot: read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = write(ud, buf, (size_t)n))) {
			vt_errmsg_set(err, rc, "snapshot: the sink refused: %s",
				      vt_strerror(rc));
			goto out;
		}
	}
out:
	close(fd);
	vt_free(buf);
	return rc;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Opens the file at `path` read-only as an LMDB env and checks its meta. */
static int check_copy(const char *path, vt_errmsg *err)
{
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_dbi meta;
	int rc = mdb_env_create(&env);
	if (rc)
		return merr(err, rc, "mdb_env_create");
	mdb_env_set_maxdbs(env, 4);
	rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0644);
	if (rc) {
		rc = merr(err, rc, "not an LMDB file");
		if (rc == VT_EINVAL || rc == VT_EIO)
			rc = VT_ECORRUPT;
		goto out;
	}
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
		rc = merr(err, rc, "begin");
		goto out;
	}
	if ((rc = mdb_dbi_open(txn, "meta", 0, &meta))) {
		rc = merr(err, rc, "no meta DB");
		if (rc == VT_ENOENT)
			rc = VT_ECORRUPT;
		goto out;
	}
	uint64_t format, dim;
	if ((rc = meta_get_u64(txn, meta, K_FORMAT, &format, err)) ||
	    (rc = meta_get_u64(txn, meta, K_DIM, &dim, err))) {
		if (rc == VT_ENOENT)
			rc = VT_ECORRUPT;
		goto out;
	}
	if (format != VT_STORE_FORMAT) {
		rc = vt_errmsg_set(err, VT_EVERSION,
				   "store format %llu, this build reads %u",
				   (unsigned long long)format, VT_STORE_FORMAT);
		goto out;
	}
	if (dim == 0 || dim > VT_STORE_MAX_DIM)
		rc = vt_errmsg_set(err, VT_ECORRUPT, "meta: dim %llu",
				   (unsigned long long)dim);
out:
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

int vt_store_restore(const char *dir, vt_store_read_fn read_fn, void *ud,
		     vt_errmsg *err)
{
	char tmp[4096], data[4096];
	if (mkdir(dir, 0755) && errno != EEXIST)
		return vt_errmsg_set(err, vt_err_from_errno(errno),
				     "restore: mkdir %s: %s", dir, strerror(errno));
	snprintf(tmp, sizeof tmp, "%s/restore.tmp", dir);
	snprintf(data, sizeof data, "%s/data.mdb", dir);
	uint8_t *buf = vt_malloc(CHUNK);
	if (!buf)
		return vt_errmsg_set(err, VT_ENOMEM, "restore: buffer");
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "restore: %s: %s",
				   tmp, strerror(errno));
		vt_free(buf);
		return rc;
	}
	uint64_t total = 0;
	for (;;) {
		size_t n = 0;
		if ((rc = read_fn(ud, buf, CHUNK, &n))) {
			vt_errmsg_set(err, rc, "restore: the source failed: %s",
				      vt_strerror(rc));
			goto fail;
		}
		if (n == 0)
			break;
		if (n > CHUNK) {
			rc = vt_errmsg_set(err, VT_EINVAL,
					   "restore: the source returned %zu bytes for a %zu-byte buffer",
					   n, CHUNK);
			goto fail;
		}
		for (size_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = vt_errmsg_set(err, vt_err_from_errno(errno),
						   "restore: write %s: %s", tmp,
						   strerror(errno));
				goto fail;
			}
			off += (size_t)w;
		}
		total += n;
	}
	if (fsync(fd)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno), "restore: fsync %s: %s",
				   tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (total == 0) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "restore: empty stream");
		goto fail;
	}
	if ((rc = check_copy(tmp, err))) {
		vt_errmsg_prefix(err, rc, "restore: the received copy is unusable");
		goto fail;
	}
	if (rename(tmp, data)) {
		rc = vt_errmsg_set(err, vt_err_from_errno(errno),
				   "restore: rename to %s: %s", data, strerror(errno));
		goto fail;
	}
	if (fsync_dir(dir)) {
		/* The new file is in place; only its name may not be durable. */
		vt_free(buf);
		return vt_errmsg_set(err, vt_err_from_errno(errno),
				     "restore: fsync %s: %s", dir, strerror(errno));
	}
	vt_free(buf);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	vt_free(buf);
	return rc;
}
