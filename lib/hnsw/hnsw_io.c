/* hnsw_io.c: the index file format (docs/hnsw-format.md): a fixed header
 * and tagged sections, each with an XXH3 checksum, all little-endian. The
 * loader trusts nothing: every count, id and level is bounds-checked before
 * use. Not a WAL or a snapshot policy: lib/shard decides when to save. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/hash.h"
#include "hnsw_int.h"

#define MAGIC "VTHNSW\r\n"
#define VERSION 1u
#define HEADER_SIZE 128u
#define FIELDS_SIZE 88u /* the fields of struct hdr as encoded */
#define CSUM_SEED 0x5674686e7377ull /* "Vthnsw" */

enum {
	SEC_LABELS = 0x4c42414c, /* "LABL" */
	SEC_LEVELS = 0x4c56454c, /* "LEVL" */
	SEC_FLAGS = 0x47414c46,  /* "FLAG" */
	SEC_LINKS0 = 0x304b4e4c, /* "LNK0" */
	SEC_UPPER = 0x554b4e4c,  /* "LNKU" */
	SEC_VECS = 0x53434556,   /* "VECS" */
	SEC_END = 0x20444e45,    /* "END " */
};

/* The header, in file order. Encoded field by field, never memcpy'd as a
 * struct, so the format does not depend on the compiler's padding. */
struct hdr {
	uint32_t version, header_size, dim, metric, m, ef_construction,
		ef_search, quant, train_size, trained;
	float quantile, q_lo, q_scale;
	uint64_t seed, level_ctr;
	uint32_t n_slots, ep, max_level;
	uint64_t n_live;
};

/* ---- writing ------------------------------------------------------------- */

struct sink {
	vt_hnsw_write_fn fn;
	void *ud;
	vt_hasher hs;
	int rc;
};

static void put(struct sink *k, const void *p, size_t n)
{
	if (k->rc || n == 0)
		return;
	vt_hasher_update(&k->hs, p, n);
	k->rc = k->fn(k->ud, p, n);
}

static void put_u32(struct sink *k, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	put(k, b, 4);
}

static void put_u64(struct sink *k, uint64_t v)
{
	put_u32(k, (uint32_t)v);
	put_u32(k, (uint32_t)(v >> 32));
}

static void put_f32(struct sink *k, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	put_u32(k, v);
}

/* Starts a section: tag, reserved word, payload length. Its checksum
 * covers the payload only. */
static void sec_begin(struct sink *k, uint32_t tag, uint64_t len)
{
	put_u32(k, tag);
	put_u32(k, 0);
	put_u64(k, len);
	vt_hasher_free(&k->hs);
	if (!k->rc)
		k->rc = vt_hasher_init(&k->hs, CSUM_SEED);
}

static void sec_end(struct sink *k)
{
	if (k->rc)
		return;
	uint64_t c = vt_hasher_digest(&k->hs);
	put_u64(k, c);
}

/* Arrays of integers are written in place: the format is little-endian
 * and so is every machine this builds for (checked at compile time). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the file format writes arrays in host order");

VT_API int vt_hnsw_save(vt_hnsw *h, vt_hnsw_write_fn write, void *ud,
			vt_errmsg *err)
{
	struct sink k = {write, ud, {0}, 0};
	pthread_rwlock_rdlock(&h->grow);
	pthread_rwlock_wrlock(&h->gate);
	k.rc = vt_hasher_init(&k.hs, CSUM_SEED);
	uint32_t n = h->n_slots;
	uint32_t ep = (uint32_t)h->ep;
	int top = (int)(int32_t)(h->ep >> 32);

	/* header: magic, fields, zero padding to HEADER_SIZE - 8, checksum */
	put(&k, MAGIC, 8);
	put_u32(&k, VERSION);
	put_u32(&k, HEADER_SIZE);
	put_u32(&k, h->p.dim);
	put_u32(&k, (uint32_t)h->p.metric);
	put_u32(&k, h->p.m);
	put_u32(&k, h->p.ef_construction);
	put_u32(&k, h->p.ef_search);
	put_u32(&k, (uint32_t)h->p.quant);
	put_u32(&k, h->p.train_size);
	put_u32(&k, (uint32_t)h->trained);
	put_f32(&k, h->p.quantile);
	put_f32(&k, h->q_lo);
	put_f32(&k, h->q_scale);
	put_u64(&k, h->p.seed);
	put_u64(&k, h->level_ctr);
	put_u32(&k, n);
	put_u32(&k, ep);
	put_u32(&k, (uint32_t)top);
	put_u64(&k, h->n_live);
	uint8_t zero[HEADER_SIZE] = {0};
	put(&k, zero, HEADER_SIZE - 8 - FIELDS_SIZE);
	sec_end(&k);

	sec_begin(&k, SEC_LABELS, (uint64_t)n * 8);
	put(&k, h->labels, (size_t)n * 8);
	sec_end(&k);

	sec_begin(&k, SEC_LEVELS, n);
	put(&k, h->levels, n);
	sec_end(&k);

	/* PENDING slots (an insert in flight cannot exist: the gate is held)
	 * never reach the file; FREE and DELETED do. */
	sec_begin(&k, SEC_FLAGS, n);
	put(&k, h->flags, n);
	sec_end(&k);

	sec_begin(&k, SEC_LINKS0, (uint64_t)n * h->m0 * 4);
	put(&k, h->links0, (size_t)n * h->m0 * 4);
	sec_end(&k);

	uint64_t ulen = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!(h->flags[i] & VT__F_FREE))
			ulen += (uint64_t)h->levels[i] * h->m * 4;
	sec_begin(&k, SEC_UPPER, ulen);
	for (uint32_t i = 0; i < n; i++)
		if (!(h->flags[i] & VT__F_FREE) && h->levels[i])
			put(&k, h->upper[i], (size_t)h->levels[i] * h->m * 4);
	sec_end(&k);

	sec_begin(&k, SEC_VECS, (uint64_t)n * h->p.dim * 4);
	for (uint32_t i = 0; i < n && !k.rc; i++)
		put(&k, vt__vec(h, i), (size_t)h->p.dim * 4);
	sec_end(&k);

	sec_begin(&k, SEC_END, 0);
	sec_end(&k);

	pthread_rwlock_unlock(&h->gate);
	pthread_rwlock_unlock(&h->grow);
	vt_hasher_free(&k.hs);
	if (k.rc)
		return vt_errmsg_set(err, k.rc, "saving index: %s", vt_strerror(k.rc));
	return 0;
}

VT_API int vt_hnsw_save_file(vt_hnsw *h, const char *path, vt_errmsg *err)
{
	/* Written aside, fsynced, renamed, directory fsynced (lib/base). */
	vt_afile f;
	int rc = vt_afile_open(&f, path, err);
	if (rc)
		return rc;
	if ((rc = vt_hnsw_save(h, vt_afile_write, &f, err))) {
		vt_afile_abort(&f);
		if (!err || !err->msg[0])
			vt_errmsg_set(err, rc, "saving %s: %s", path,
				      vt_strerror(rc));
		return rc;
	}
	return vt_afile_commit(&f, err);
}

/* ---- reading ------------------------------------------------------------- */

#define BAD(...) vt_errmsg_set(err, VT_ECORRUPT, "index file: " __VA_ARGS__)

static int get_f32(vt_reader *r, float *f)
{
	uint32_t v;
	int rc = vt_reader_u32(r, &v);
	memcpy(f, &v, 4);
	return rc;
}

/* Positions *payload at the next section, which must carry `tag` and
 * exactly `len` bytes, and verifies its checksum. */
static int section(vt_reader *r, uint32_t tag, uint64_t len,
		   const uint8_t **payload, vt_errmsg *err)
{
	uint32_t t, rsv;
	uint64_t l, sum;
	const void *p;
	char name[5] = {(char)tag, (char)(tag >> 8), (char)(tag >> 16),
			(char)(tag >> 24), 0};
	if (vt_reader_u32(r, &t) || vt_reader_u32(r, &rsv) || vt_reader_u64(r, &l))
		return BAD("truncated before section %s", name);
	if (t != tag)
		return BAD("expected section %s, found tag 0x%08x", name, t);
	if (rsv != 0)
		return BAD("section %s: reserved word is 0x%08x", name, rsv);
	if (l != len)
		return BAD("section %s is %llu bytes, header implies %llu", name,
			   (unsigned long long)l, (unsigned long long)len);
	if (len > vt_reader_left(r) || vt_reader_ptr(r, &p, (size_t)len) ||
	    vt_reader_u64(r, &sum))
		return BAD("section %s truncated", name);
	if (vt_hash64(p, (size_t)len, CSUM_SEED) != sum)
		return BAD("section %s checksum mismatch", name);
	*payload = p;
	return 0;
}

static int read_header(vt_reader *r, struct hdr *hd, vt_errmsg *err)
{
	const void *start;
	if (vt_reader_left(r) < HEADER_SIZE + 8)
		return BAD("too short (%zu bytes) to be an index",
			   vt_reader_left(r));
	vt_reader_ptr(r, &start, 0);
	if (memcmp(start, MAGIC, 8) != 0)
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "not a Vectron index file (bad magic)");
	uint64_t sum;
	memcpy(&sum, (const uint8_t *)start + HEADER_SIZE, 8);
	if (vt_hash64(start, HEADER_SIZE, CSUM_SEED) != sum)
		return BAD("header checksum mismatch");
	r->off += 8;
	vt_reader_u32(r, &hd->version);
	if (hd->version != VERSION)
		return vt_errmsg_set(err, VT_EVERSION,
				     "index file version %u, this build reads %u",
				     hd->version, VERSION);
	vt_reader_u32(r, &hd->header_size);
	if (hd->header_size != HEADER_SIZE)
		return BAD("header size %u", hd->header_size);
	vt_reader_u32(r, &hd->dim);
	vt_reader_u32(r, &hd->metric);
	vt_reader_u32(r, &hd->m);
	vt_reader_u32(r, &hd->ef_construction);
	vt_reader_u32(r, &hd->ef_search);
	vt_reader_u32(r, &hd->quant);
	vt_reader_u32(r, &hd->train_size);
	vt_reader_u32(r, &hd->trained);
	get_f32(r, &hd->quantile);
	get_f32(r, &hd->q_lo);
	get_f32(r, &hd->q_scale);
	vt_reader_u64(r, &hd->seed);
	vt_reader_u64(r, &hd->level_ctr);
	vt_reader_u32(r, &hd->n_slots);
	vt_reader_u32(r, &hd->ep);
	vt_reader_u32(r, &hd->max_level);
	vt_reader_u64(r, &hd->n_live);
	r->off = HEADER_SIZE + 8;
	return 0;
}

/* Checks one link list: every entry a valid, non-free node other than
 * `self` whose level reaches `level`, or NONE padding after the last. */
static int check_list(const vt_hnsw *h, const uint32_t *lst, uint32_t cap,
		      uint32_t self, int level, vt_errmsg *err)
{
	int ended = 0;
	for (uint32_t j = 0; j < cap; j++) {
		uint32_t v = lst[j];
		if (v == VT__NONE) {
			ended = 1;
			continue;
		}
		if (ended)
			return BAD("node %u level %d: link after end of list", self, level);
		if (v >= h->n_slots || v == self)
			return BAD("node %u level %d: bad link %u", self, level, v);
		if (h->flags[v] & VT__F_FREE)
			return BAD("node %u level %d: link to freed node %u", self, level, v);
		if (h->levels[v] < level)
			return BAD("node %u level %d: link to node %u of level %u",
				   self, level, v, h->levels[v]);
	}
	return 0;
}

VT_API int vt_hnsw_load_mem(const void *data, size_t len,
			    const char *vectors_path, vt_hnsw **out,
			    vt_errmsg *err)
{
	vt_reader r;
	struct hdr hd;
	vt_hnsw *h = NULL;
	const uint8_t *pl;
	int rc;

	*out = NULL;
	vt_reader_init(&r, data, len);
	rc = read_header(&r, &hd, err);
	if (rc)
		return rc;

	vt_hnsw_params p;
	vt_hnsw_params_default(&p, hd.dim, (int)hd.metric);
	if (hd.metric > 2 || hd.quant > 1)
		return BAD("unknown metric %u or quantization %u", hd.metric, hd.quant);
	p.m = hd.m;
	p.ef_construction = hd.ef_construction;
	p.ef_search = hd.ef_search;
	p.quant = (int)hd.quant;
	p.train_size = hd.train_size;
	p.quantile = hd.quantile;
	p.seed = hd.seed;
	p.vectors_path = vectors_path;
	rc = vt__hnsw_validate_params(&p, err);
	if (rc)
		return vt_errmsg_prefix(err, VT_ECORRUPT, "index file");
	if (hd.n_slots > VT__MAX_NODES)
		return BAD("%u slots", hd.n_slots);
	/* Refuse sizes the input cannot hold before allocating for them. */
	uint64_t need = (uint64_t)hd.n_slots * (8 + 1 + 1 + 2ull * hd.m * 4 + (uint64_t)hd.dim * 4);
	if (need > len)
		return BAD("%u slots need %llu bytes, file has %zu", hd.n_slots,
			   (unsigned long long)need, len);
	if (hd.trained > 1 || (hd.trained && (!isfinite(hd.q_lo) ||
					      !(hd.q_scale > 0) || !isfinite(hd.q_scale))))
		return BAD("bad quantizer range");
	if (hd.n_slots == 0 ? hd.ep != VT__NONE
			    : (hd.ep != VT__NONE && hd.ep >= hd.n_slots))
		return BAD("entry point %u out of range", hd.ep);
	if (hd.ep != VT__NONE && hd.max_level > VT__MAX_LEVEL)
		return BAD("max level %u", hd.max_level);

	/* Room for growth: a loaded index usually takes inserts next (a shard
	 * replays its WAL), and an index allocated full doubles every array
	 * on the first one, under the exclusive lock. */
	uint64_t cap = (uint64_t)hd.n_slots + (hd.n_slots / 8 > 1024 ? hd.n_slots / 8 : 1024);
	if (cap > VT__MAX_NODES)
		cap = VT__MAX_NODES;
	rc = vt__hnsw_alloc(&p, (uint32_t)cap, &h, err);
	if (rc)
		return rc;
	uint32_t n = hd.n_slots;
	h->n_slots = n;
	h->level_ctr = hd.level_ctr;
	h->q_lo = hd.q_lo;
	h->q_scale = hd.q_scale;

	if ((rc = section(&r, SEC_LABELS, (uint64_t)n * 8, &pl, err)))
		goto err;
	memcpy(h->labels, pl, (size_t)n * 8);
	if ((rc = section(&r, SEC_LEVELS, n, &pl, err)))
		goto err;
	memcpy(h->levels, pl, n);
	if ((rc = section(&r, SEC_FLAGS, n, &pl, err)))
		goto err;
	memcpy(h->flags, pl, n);
	if ((rc = section(&r, SEC_LINKS0, (uint64_t)n * h->m0 * 4, &pl, err)))
		goto err;
	memcpy(h->links0, pl, (size_t)n * h->m0 * 4);

	uint64_t ulen = 0, live = 0, tomb = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t f = h->flags[i];
		if (f & ~(VT__F_DELETED | VT__F_FREE) || f == (VT__F_DELETED | VT__F_FREE)) {
			rc = BAD("node %u: bad flags 0x%x", i, f);
			goto err;
		}
		if (h->levels[i] > VT__MAX_LEVEL ||
		    (hd.ep != VT__NONE && h->levels[i] > hd.max_level)) {
			rc = BAD("node %u: level %u", i, h->levels[i]);
			goto err;
		}
		if (f & VT__F_FREE) {
			if (h->levels[i]) {
				rc = BAD("freed node %u has level %u", i, h->levels[i]);
				goto err;
			}
			continue;
		}
		ulen += (uint64_t)h->levels[i] * h->m * 4;
		if (f & VT__F_DELETED)
			tomb++;
		else
			live++;
	}
	if (live != hd.n_live) {
		rc = BAD("%llu live nodes, header says %llu",
			 (unsigned long long)live, (unsigned long long)hd.n_live);
		goto err;
	}
	if ((live + tomb) == 0 ? hd.ep != VT__NONE : hd.ep == VT__NONE) {
		rc = BAD("entry point does not match the node count");
		goto err;
	}
	if (hd.ep != VT__NONE &&
	    ((h->flags[hd.ep] & VT__F_FREE) || h->levels[hd.ep] != hd.max_level)) {
		rc = BAD("entry point %u is not a top-level node", hd.ep);
		goto err;
	}
	if ((rc = section(&r, SEC_UPPER, ulen, &pl, err)))
		goto err;
	for (uint32_t i = 0; i < n; i++) {
		if ((h->flags[i] & VT__F_FREE) || !h->levels[i])
			continue;
		size_t bytes = (size_t)h->levels[i] * h->m * 4;
		h->upper[i] = vt_malloc(bytes);
		if (!h->upper[i]) {
			rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
			goto err;
		}
		memcpy(h->upper[i], pl, bytes);
		pl += bytes;
		h->upper_bytes += bytes;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (h->flags[i] & VT__F_FREE) {
			const uint32_t *l0 = vt__links(h, i, 0);
			for (uint32_t j = 0; j < h->m0; j++)
				if (l0[j] != VT__NONE) {
					rc = BAD("freed node %u has links", i);
					goto err;
				}
			continue;
		}
		for (int l = 0; l <= h->levels[i]; l++) {
			rc = check_list(h, vt__links(h, i, l), l ? h->m : h->m0, i, l, err);
			if (rc)
				goto err;
		}
	}
	if ((rc = section(&r, SEC_VECS, (uint64_t)n * hd.dim * 4, &pl, err)))
		goto err;
	for (uint32_t i = 0; i < n; i++) {
		float row[64];
		const uint8_t *src = pl + (size_t)i * hd.dim * 4;
		/* validated in chunks so the row never sits unchecked in RAM */
		for (uint32_t j = 0; j < hd.dim; j += 64) {
			uint32_t c = hd.dim - j < 64 ? hd.dim - j : 64;
			memcpy(row, src + (size_t)j * 4, c * 4);
			for (uint32_t t = 0; t < c; t++)
				if (!isfinite(row[t])) {
					rc = BAD("node %u: non-finite vector component", i);
					goto err;
				}
		}
	}
	if (h->vfd < 0) {
		for (uint32_t i = 0; i < n; i++)
			memcpy(h->vecs + (size_t)i * h->vstride, pl + (size_t)i * hd.dim * 4,
			       (size_t)hd.dim * 4);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			float *row = vt_malloc((size_t)hd.dim * 4);
			if (!row) {
				rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
				goto err;
			}
			memcpy(row, pl + (size_t)i * hd.dim * 4, (size_t)hd.dim * 4);
			rc = vt__hnsw_write_vec(h, i, row);
			vt_free(row);
			if (rc) {
				vt_errmsg_set(err, rc, "writing vectors file: %s", vt_strerror(rc));
				goto err;
			}
		}
	}
	if ((rc = section(&r, SEC_END, 0, &pl, err)))
		goto err;
	if (vt_reader_left(&r) != 0) {
		rc = BAD("%zu trailing bytes", vt_reader_left(&r));
		goto err;
	}

	/* Rebuild what the file does not store: label map, free list,
	 * counters, codes. A label held by two live nodes is corruption. */
	for (uint32_t i = 0; i < n; i++) {
		uint8_t f = h->flags[i];
		if (f & VT__F_FREE) {
			uint32_t fc = h->free_cap;
			if (h->n_free == fc) {
				uint32_t nc = fc ? fc * 2 : 64;
				uint32_t *q = vt_realloc(h->free_ids, (size_t)nc * 4);
				if (!q) {
					rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
					goto err;
				}
				h->free_ids = q;
				h->free_cap = nc;
			}
			h->free_ids[h->n_free++] = i;
			continue;
		}
		if (f & VT__F_DELETED)
			continue;
		uint32_t before = h->map_used;
		rc = vt__hnsw_map_put(h, h->labels[i], i);
		if (rc) {
			vt_errmsg_set(err, rc, "out of memory");
			goto err;
		}
		if (h->map_used == before) {
			rc = BAD("label %llu appears twice", (unsigned long long)h->labels[i]);
			goto err;
		}
	}
	h->n_live = live;
	h->n_tomb = tomb;
	h->ep = (uint64_t)(hd.ep == VT__NONE ? 0xffffffffu : hd.max_level) << 32 | hd.ep;
	if (p.quant == VT_QUANT_INT8 && hd.trained) {
		vt__hnsw_encode_all(h);
		h->trained = 1;
	}
	*out = h;
	return 0;
err:
	vt_hnsw_destroy(h);
	return rc;
}

VT_API int vt_hnsw_load_file(const char *path, const char *vectors_path,
			     vt_hnsw **out, vt_errmsg *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "open %s: %s",
				     path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st)) {
		int rc = vt_err_from_errno(errno);
		close(fd);
		return vt_errmsg_set(err, rc, "stat %s: %s", path, strerror(errno));
	}
	size_t len = (size_t)st.st_size;
	void *m = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (len && m == MAP_FAILED)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "mmap %s: %s",
				     path, strerror(errno));
	int rc = vt_hnsw_load_mem(len ? m : "", len, vectors_path, out, err);
	if (len)
		munmap(m, len);
	if (rc)
		vt_errmsg_prefix(err, rc, "%s", path);
	return rc;
}
