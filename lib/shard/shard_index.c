/* shard_index.c: keeping the HNSW index equal to the store. The store's
 * index WAL lists, per command, the labels whose vectors changed; the index
 * redoes them from the store's current state (upsert: insert the stored
 * vector, or delete if the point is gone since; delete: delete), which is
 * idempotent, so replaying a WAL entry twice is harmless. Snapshots save
 * the index with the command index it covers; the WAL up to there is then
 * trimmed. See docs/shard.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "shard_int.h"

#define META_TRIMMED "shard.trimmed"
#define RUN_BATCH 4096u /* WAL entries per index run between transactions */
#define RUN_COPY_BYTES ((size_t)16 << 20) /* vectors copied per run */

void vt__shard_hnsw_params(const vt_shard *s, vt_hnsw_params *p)
{
	vt_hnsw_params_default(p, s->cfg.dim, s->cfg.metric);
	p->m = s->cfg.m;
	p->ef_construction = s->cfg.ef_construction;
	p->ef_search = s->cfg.ef_search;
	p->quant = s->cfg.quant;
}

/* ---- the snapshot file header ----------------------------------------------*/

/* magic[8] version u32 header-bytes u32 index u64 points u64 uuid[16]
 * reserved u64 xxh3-of-the-first-56-bytes u64 */
void vt__snap_hdr_encode(const vt__snap_hdr *h, uint8_t out[VT_SNAPFILE_HDR])
{
	memset(out, 0, VT_SNAPFILE_HDR);
	memcpy(out, VT_SNAPFILE_MAGIC, 8);
	vt_le_put64(out + 8, VT_SNAPFILE_VERSION | (uint64_t)VT_SNAPFILE_HDR << 32);
	vt_le_put64(out + 16, h->index);
	vt_le_put64(out + 24, h->points);
	memcpy(out + 32, h->uuid, VT_SHARD_UUID_BYTES);
	vt_le_put64(out + 56, vt_hash64(out, 56, 0));
}

int vt__snap_hdr_decode(const uint8_t *p, size_t len, vt__snap_hdr *h,
			vt_errmsg *err)
{
	if (len < VT_SNAPFILE_HDR || memcmp(p, VT_SNAPFILE_MAGIC, 8))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "index snapshot: not a snapshot file");
	if (vt_le_get64(p + 56) != vt_hash64(p, 56, 0))
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "index snapshot: header checksum mismatch");
	uint64_t v = vt_le_get64(p + 8);
	if ((uint32_t)v != VT_SNAPFILE_VERSION ||
	    (v >> 32) != VT_SNAPFILE_HDR)
		return vt_errmsg_set(err, VT_EVERSION,
				     "index snapshot: version %u",
				     (unsigned)(uint32_t)v);
	h->index = vt_le_get64(p + 16);
	h->points = vt_le_get64(p + 24);
	memcpy(h->uuid, p + 32, VT_SHARD_UUID_BYTES);
	return 0;
}

/* ---- running index changes in parallel ------------------------------------*/

struct run_item {
	uint64_t label;
	const float *vec; /* NULL: delete */
};

struct run {
	vt_shard *s;
	struct run_item *items;
	size_t n;
	unsigned parts;
	atomic_int rc;
};

/* Task t takes the labels that hash to t, in order, so two changes of one
 * label never race and keep their order. */
static void run_task(void *ctx, size_t t)
{
	struct run *r = ctx;
	for (size_t i = 0; i < r->n; i++) {
		const struct run_item *it = &r->items[i];
		if (r->parts > 1 && vt_mix64(it->label) % r->parts != t)
			continue;
		int rc;
		if (it->vec)
			rc = vt_hnsw_insert(r->s->h, it->label, it->vec);
		else {
			rc = vt_hnsw_delete(r->s->h, it->label);
			if (rc == VT_ENOENT)
				rc = 0;
		}
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&r->rc, &zero, rc);
			return;
		}
	}
}

static int run_items(vt_shard *s, struct run_item *items, size_t n)
{
	struct run r = {s, items, n, vt_pool_width(s->pool), 0};
	if (n < 2 * r.parts)
		r.parts = 1;
	vt_pool_run(s->pool, r.parts, run_task, &r);
	return atomic_load(&r.rc);
}

/* Reads up to RUN_BATCH WAL entries (fewer when their vectors would pass
 * RUN_COPY_BYTES) from (from_index, from_seq) on, stopping after command
 * `target`, and applies them. *from_index, *from_seq get the resume point;
 * *done is set when the WAL holds nothing more up to target.
 *
 * The vectors are copied out and the read transaction ends before the
 * inserts: an HNSW insert takes ~0.5 ms, so a transaction held across a
 * batch would last seconds, and the store's writer cannot grow the map
 * while any read transaction is open (store.h): apply() stalled for the
 * whole batch at every growth. */
static int run_batch(vt_shard *s, uint64_t target, uint64_t *from_index,
		     uint32_t *from_seq, uint64_t *n_done, int *done)
{
	size_t row = (size_t)s->cfg.dim * sizeof(float);
	size_t cap = RUN_COPY_BYTES / row;
	if (cap > RUN_BATCH)
		cap = RUN_BATCH;
	if (cap < 1)
		cap = 1;
	struct run_item *items = vt_malloc(cap * sizeof *items);
	float *vecs = vt_malloc(cap * row);
	vt_store_txn *tx = NULL;
	vt_store_wal_iter *it = NULL;
	size_t n = 0;
	int rc;
	if (!items || !vecs) {
		rc = VT_ENOMEM;
		goto out;
	}
	if ((rc = vt__rd_begin(s, &tx)))
		goto out;
	if ((rc = vt_store_wal_iter_open(tx, *from_index, &it)))
		goto out;
	vt_store_wal_entry e;
	*done = 1;
	uint64_t next_index = target + 1;
	uint32_t next_seq = 0;
	while (!(rc = vt_store_wal_iter_next(it, &e))) {
		if (e.index > target)
			break;
		if (e.index == *from_index && e.seq < *from_seq)
			continue;
		if (n == cap) {
			*done = 0;
			next_index = e.index;
			next_seq = e.seq;
			break;
		}
		struct run_item *ri = &items[n];
		ri->label = e.label;
		ri->vec = NULL;
		if (e.op == VT_STORE_WAL_UPSERT) {
			vt_store_point p;
			rc = vt_store_get_by_label(tx, e.label, &p);
			if (rc == 0) {
				float *v = vecs + n * s->cfg.dim;
				memcpy(v, p.vec, row);
				ri->vec = v;
			} else if (rc == VT_ENOENT) {
				rc = 0; /* deleted since: deleting is right */
			} else {
				break;
			}
		}
		n++;
	}
	if (rc == VT_ENOENT)
		rc = 0;
	vt_store_wal_iter_close(it);
	it = NULL;
	vt__rd_end(s, tx);
	tx = NULL;
	if (!rc)
		rc = run_items(s, items, n);
	if (!rc) {
		*from_index = next_index;
		*from_seq = next_seq;
		*n_done = n;
	}
out:
	vt_store_wal_iter_close(it);
	if (tx)
		vt__rd_end(s, tx);
	vt_free(vecs);
	vt_free(items);
	return rc;
}

int vt__shard_index_upto(vt_shard *s, uint64_t target)
{
	pthread_mutex_lock(&s->idx_mu);
	pthread_mutex_lock(&s->mu);
	uint64_t indexed = s->indexed;
	pthread_mutex_unlock(&s->mu);
	uint64_t from_index = indexed + 1;
	uint32_t from_seq = 0;
	int rc = 0, done = indexed >= target;
	while (!done) {
		uint64_t n = 0;
		if ((rc = run_batch(s, target, &from_index, &from_seq, &n,
				    &done)))
			break;
		pthread_mutex_lock(&s->mu);
		/* Commands before the resume point are complete. */
		uint64_t covered = done ? target : from_index - 1;
		if (covered > s->indexed)
			s->indexed = covered;
		s->pending = s->pending > n ? s->pending - n : 0;
		vt__shard_signal(s);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_lock(&s->mu);
	s->index_failed = rc != 0;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->idx_mu);
	return rc;
}

/* ---- open: snapshot, replay, check, or rebuild ---------------------------*/

/* Loads index.snap if it belongs to this store and is not older than what
 * the WAL still holds. Returns 0 with s->h set, or an error saying why not. */
static int load_snapshot(vt_shard *s, uint64_t applied, uint64_t trimmed,
			 vt__snap_hdr *hdr, vt_errmsg *err)
{
	int fd = open(s->snap_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "%s",
				     errno == ENOENT ? "no index snapshot"
						     : strerror(errno));
	struct stat sb;
	void *map = MAP_FAILED;
	int rc;
	if (fstat(fd, &sb)) {
		rc = vt_errmsg_set(err, VT_EIO, "stat: %s", strerror(errno));
		goto out;
	}
	if ((size_t)sb.st_size <= VT_SNAPFILE_HDR) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "index snapshot: %lld bytes",
				   (long long)sb.st_size);
		goto out;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = vt_errmsg_set(err, VT_EIO, "mmap: %s", strerror(errno));
		goto out;
	}
	if ((rc = vt__snap_hdr_decode(map, (size_t)sb.st_size, hdr, err)))
		goto out;
	if (memcmp(hdr->uuid, s->uuid, VT_SHARD_UUID_BYTES)) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "index snapshot belongs to another store");
		goto out;
	}
	if (hdr->index > applied || hdr->index < trimmed) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "index snapshot covers command %llu; the "
				   "store is at %llu with its WAL from %llu",
				   (unsigned long long)hdr->index,
				   (unsigned long long)applied,
				   (unsigned long long)trimmed + 1);
		goto out;
	}
	rc = vt_hnsw_load_mem((const uint8_t *)map + VT_SNAPFILE_HDR,
			      (size_t)sb.st_size - VT_SNAPFILE_HDR, NULL, &s->h,
			      err);
	if (rc)
		goto out;
	vt_hnsw_params hp, want;
	vt_hnsw_params_get(s->h, &hp);
	vt__shard_hnsw_params(s, &want);
	if (hp.dim != want.dim || hp.metric != want.metric ||
	    hp.quant != want.quant || hp.m != want.m) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "index snapshot has other parameters than "
				   "the collection");
		vt_hnsw_destroy(s->h);
		s->h = NULL;
		goto out;
	}
	s->snap_bytes = (uint64_t)sb.st_size;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)sb.st_size);
	close(fd);
	return rc;
}

/* Every point of the store is in the index and the counts agree. */
static int check_index(vt_shard *s, uint64_t *points, vt_errmsg *err)
{
	vt_store_txn *tx;
	vt_store_iter *it = NULL;
	uint64_t wal;
	int rc = vt__rd_begin(s, &tx);
	if (rc)
		return vt_errmsg_set(err, rc, "reading the store");
	if ((rc = vt_store_count(tx, points, &wal)))
		goto out;
	vt_hnsw_stats hs;
	vt_hnsw_stats_get(s->h, &hs);
	if (hs.count != *points) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "the index holds %llu points, the store "
				   "%llu",
				   (unsigned long long)hs.count,
				   (unsigned long long)*points);
		goto out;
	}
	vt_store_point p;
	if ((rc = vt_store_iter_open(tx, 0, &it)))
		goto out;
	while (!(rc = vt_store_iter_next(it, &p))) {
		if (!vt_hnsw_contains(s->h, p.label)) {
			rc = vt_errmsg_set(err, VT_ECORRUPT,
					   "label %llu is stored but not "
					   "indexed",
					   (unsigned long long)p.label);
			goto out;
		}
	}
	if (rc == VT_ENOENT)
		rc = 0;
out:
	vt_store_iter_close(it);
	vt__rd_end(s, tx);
	return rc;
}

/* Inserts every stored point into a fresh index, in parallel, logging
 * progress. */
static int rebuild(vt_shard *s, uint64_t points, const char *why)
{
	vt_hnsw_params hp;
	vt__shard_hnsw_params(s, &hp);
	hp.initial_capacity = points > 1024 ? (size_t)points : 1024;
	vt_errmsg e = {{0}};
	vt_hnsw_destroy(s->h);
	s->h = NULL;
	int rc = vt_hnsw_create(&hp, &s->h, &e);
	if (rc) {
		VT_LOG(VT_LOG_ERROR, "shard", "%s: creating the index: %s",
		       s->name, e.msg);
		return rc;
	}
	VT_LOG(VT_LOG_INFO, "shard", "%s: rebuilding the index from %llu points "
	       "(%s)", s->name, (unsigned long long)points, why);
	struct run_item *items = vt_malloc(RUN_BATCH * sizeof *items);
	if (!items)
		return VT_ENOMEM;
	uint64_t t0 = vt_clock_mono_ns(), done = 0, from = 0;
	int decile = 0;
	for (;;) {
		vt_store_txn *tx;
		vt_store_iter *it = NULL;
		vt_store_point p;
		size_t n = 0;
		if ((rc = vt__rd_begin(s, &tx)))
			break;
		rc = vt_store_iter_open(tx, from, &it);
		while (!rc && n < RUN_BATCH &&
		       !(rc = vt_store_iter_next(it, &p))) {
			items[n].label = p.label;
			items[n++].vec = p.vec;
			from = p.label + 1;
		}
		int end = rc == VT_ENOENT;
		if (end)
			rc = 0;
		if (!rc)
			rc = run_items(s, items, n);
		vt_store_iter_close(it);
		vt__rd_end(s, tx);
		if (rc)
			break;
		done += n;
		int d = points ? (int)(done * 10 / points) : 10;
		if (d > decile && d < 10) {
			double sec = (double)(vt_clock_mono_ns() - t0) / 1e9;
			VT_LOG(VT_LOG_INFO, "shard",
			       "%s: rebuilding: %llu/%llu points, %.0f/s",
			       s->name, (unsigned long long)done,
			       (unsigned long long)points,
			       sec > 0 ? (double)done / sec : 0.0);
			decile = d;
		}
		if (end)
			break;
	}
	vt_free(items);
	if (!rc)
		VT_LOG(VT_LOG_INFO, "shard", "%s: index rebuilt: %llu points in "
		       "%.2f s", s->name, (unsigned long long)done,
		       (double)(vt_clock_mono_ns() - t0) / 1e9);
	return rc;
}

static int build_payload_index(vt_shard *s, vt_errmsg *err)
{
	if (!s->cfg.n_fields)
		return 0;
	int rc = vt_payload_index_create(&s->schema, &s->pix, err);
	if (rc)
		return rc;
	vt_store_txn *tx;
	vt_store_iter *it = NULL;
	vt_store_point p;
	if ((rc = vt__rd_begin(s, &tx)))
		return vt_errmsg_set(err, rc, "reading the store");
	rc = vt_store_iter_open(tx, 0, &it);
	while (!rc && !(rc = vt_store_iter_next(it, &p))) {
		vt_payload *pay = NULL;
		rc = vt__shard_payload_of(&p, &pay, err);
		if (!rc)
			rc = vt_payload_index_add(s->pix, p.label, pay);
		vt_payload_free(pay);
	}
	if (rc == VT_ENOENT)
		rc = 0;
	vt_store_iter_close(it);
	vt__rd_end(s, tx);
	return rc;
}

int vt__shard_index_open(vt_shard *s, vt_errmsg *err)
{
	vt_store_txn *tx;
	uint64_t applied = 0, trimmed = 0;
	const void *v;
	size_t n;
	int rc = vt__rd_begin(s, &tx);
	if (rc)
		return vt_errmsg_set(err, rc, "reading the store");
	rc = vt_store_get_applied(tx, &applied);
	if (!rc && vt_store_meta_get(tx, META_TRIMMED, &v, &n) == 0 && n == 8)
		trimmed = vt_le_get64(v);
	vt__rd_end(s, tx);
	if (rc)
		return vt_errmsg_set(err, rc, "reading the applied index");
	s->applied = applied;
	if ((rc = build_payload_index(s, err)))
		return rc;

	uint64_t t0 = vt_clock_mono_ns(), points = 0;
	vt__snap_hdr hdr = {0};
	vt_errmsg why = {{0}};
	rc = load_snapshot(s, applied, trimmed, &hdr, &why);
	if (!rc) {
		s->indexed = hdr.index;
		s->snap_index = hdr.index;
		rc = vt__shard_index_upto(s, applied);
		if (rc)
			vt_errmsg_set(&why, rc, "replaying the index WAL: %s",
				      vt_strerror(rc));
		else
			rc = check_index(s, &points, &why);
	}
	if (rc) {
		vt_store_txn *t2;
		uint64_t wal = 0;
		if (vt__rd_begin(s, &t2) == 0) {
			vt_store_count(t2, &points, &wal);
			vt__rd_end(s, t2);
		}
		if (hdr.index || rc != VT_ENOENT || points)
			VT_LOG(rc == VT_ENOENT ? VT_LOG_INFO : VT_LOG_WARN,
			       "shard", "%s: index snapshot not used: %s",
			       s->name, why.msg);
		s->snap_index = 0;
		s->snap_bytes = 0;
		if ((rc = rebuild(s, points, why.msg)))
			return vt_errmsg_set(err, rc, "rebuilding the index: %s",
					     vt_strerror(rc));
		if ((rc = check_index(s, &points, err)))
			return vt_errmsg_prefix(err, rc, "after rebuilding");
	} else {
		VT_LOG(VT_LOG_INFO, "shard",
		       "%s: index loaded: %llu points, snapshot at %llu, "
		       "replayed to %llu in %.2f s",
		       s->name, (unsigned long long)points,
		       (unsigned long long)hdr.index,
		       (unsigned long long)applied,
		       (double)(vt_clock_mono_ns() - t0) / 1e9);
	}
	s->indexed = applied;
	s->pending = 0;
	s->since_snap = applied > s->snap_index ? applied - s->snap_index : 0;
	return 0;
}

/* ---- checkpoints -------------------------------------------------------------*/

static int trim_wal(vt_shard *s, uint64_t upto)
{
	vt_store_txn *tx;
	uint8_t b[8];
	vt_le_put64(b, upto);
	pthread_rwlock_rdlock(&s->gate);
	int rc = vt_store_txn_begin(s->st, &tx);
	if (!rc) {
		if ((rc = vt_store_wal_trim(tx, upto, NULL)) ||
		    (rc = vt_store_meta_put(tx, META_TRIMMED, b, 8)))
			vt_store_txn_abort(tx);
		else
			rc = vt_store_txn_commit(tx);
	}
	pthread_rwlock_unlock(&s->gate);
	return rc;
}

int vt__shard_checkpoint_locked(vt_shard *s, vt_errmsg *err)
{
	pthread_mutex_lock(&s->mu);
	uint64_t target = s->applied;
	pthread_mutex_unlock(&s->mu);
	int rc = vt__shard_index_upto(s, target);
	if (rc)
		return vt_errmsg_set(err, rc, "catching the index up: %s",
				     vt_strerror(rc));
	uint64_t t0 = vt_clock_mono_ns();
	pthread_mutex_lock(&s->idx_mu);
	pthread_mutex_lock(&s->mu);
	vt__snap_hdr hdr = {.index = s->indexed};
	pthread_mutex_unlock(&s->mu);
	memcpy(hdr.uuid, s->uuid, VT_SHARD_UUID_BYTES);
	vt_hnsw_stats hs;
	vt_hnsw_stats_get(s->h, &hs);
	if (hs.tombstones &&
	    (double)hs.tombstones > s->opts.consolidate_ratio * (double)hs.count) {
		int freed = vt_hnsw_consolidate(s->h);
		if (freed < 0)
			VT_LOG(VT_LOG_WARN, "shard",
			       "%s: repairing tombstones failed: %s", s->name,
			       vt_strerror(freed));
		vt_hnsw_stats_get(s->h, &hs);
	}
	hdr.points = hs.count;
	uint8_t head[VT_SNAPFILE_HDR];
	vt__snap_hdr_encode(&hdr, head);
	vt_afile f;
	if (!(rc = vt_afile_open(&f, s->snap_path, err))) {
		rc = vt_afile_write(&f, head, sizeof head);
		if (!rc)
			rc = vt_hnsw_save(s->h, vt_afile_write, &f, err);
		if (rc) {
			if (!err || !err->msg[0])
				vt_errmsg_set(err, rc, "writing %s: %s",
					      s->snap_path, vt_strerror(rc));
			vt_afile_abort(&f);
		} else {
			rc = vt_afile_commit(&f, err);
		}
	}
	pthread_mutex_unlock(&s->idx_mu);
	if (rc)
		return rc;
	struct stat sb;
	uint64_t bytes = stat(s->snap_path, &sb) ? 0 : (uint64_t)sb.st_size;
	int trc = trim_wal(s, hdr.index);
	if (trc)
		/* The snapshot is good; the WAL just stays longer. */
		VT_LOG(VT_LOG_WARN, "shard", "%s: trimming the index WAL: %s",
		       s->name, vt_strerror(trc));
	pthread_mutex_lock(&s->mu);
	s->snap_index = hdr.index;
	s->snap_bytes = bytes;
	s->since_snap = s->pending;
	pthread_mutex_unlock(&s->mu);
	VT_LOG(VT_LOG_INFO, "shard",
	       "%s: index snapshot at command %llu: %llu points, %.1f MiB in "
	       "%.2f s",
	       s->name, (unsigned long long)hdr.index,
	       (unsigned long long)hdr.points, (double)bytes / (1 << 20),
	       (double)(vt_clock_mono_ns() - t0) / 1e9);
	return 0;
}

int vt_shard_checkpoint(vt_shard *s, vt_errmsg *err)
{
	pthread_mutex_lock(&s->ckpt_mu);
	int rc = vt__shard_checkpoint_locked(s, err);
	pthread_mutex_unlock(&s->ckpt_mu);
	return rc;
}

/* ---- the maintenance thread ----------------------------------------------------*/

static void *maintain(void *arg)
{
	vt_shard *s = arg;
	uint32_t backoff_ms = 0;
	if (s->cfg.index_mode == VT_INDEX_ASYNC)
		vt_thread_nice(s->opts.index_nice);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int async = s->cfg.index_mode == VT_INDEX_ASYNC;
		int want_index = async && s->indexed < s->applied;
		int want_snap = s->opts.snapshot_entries &&
				s->since_snap >= s->opts.snapshot_entries;
		if (s->stop && !want_index)
			break;
		if ((!want_index && !want_snap) || backoff_ms) {
			struct timespec dl;
			clock_gettime(CLOCK_MONOTONIC, &dl);
			uint32_t ms = backoff_ms ? backoff_ms : 1000;
			uint64_t ns = (uint64_t)dl.tv_nsec + ms * 1000000ull;
			dl.tv_sec += (time_t)(ns / 1000000000u);
			dl.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&s->cv, &s->mu, &dl);
			backoff_ms = 0;
			continue;
		}
		uint64_t target = s->applied;
		pthread_mutex_unlock(&s->mu);
		int rc = 0;
		if (want_index) {
			rc = vt__shard_index_upto(s, target);
			if (rc)
				VT_LOG(VT_LOG_ERROR, "shard",
				       "%s: indexing failed (%s); retrying in "
				       "1 s",
				       s->name, vt_strerror(rc));
		}
		if (!rc && want_snap) {
			vt_errmsg e = {{0}};
			pthread_mutex_lock(&s->ckpt_mu);
			rc = vt__shard_checkpoint_locked(s, &e);
			pthread_mutex_unlock(&s->ckpt_mu);
			if (rc)
				VT_LOG(VT_LOG_ERROR, "shard",
				       "%s: index snapshot failed: %s; "
				       "retrying in 10 s",
				       s->name, e.msg);
		}
		pthread_mutex_lock(&s->mu);
		if (rc)
			backoff_ms = want_snap ? 10000 : 1000;
		if (rc && s->stop)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int vt__shard_thread_start(vt_shard *s)
{
	if (pthread_create(&s->thread, NULL, maintain, s))
		return VT_EINTERNAL;
	s->thread_started = 1;
	return 0;
}

void vt__shard_thread_stop(vt_shard *s)
{
	if (!s->thread_started)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	vt__shard_signal(s);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->thread_started = 0;
}
