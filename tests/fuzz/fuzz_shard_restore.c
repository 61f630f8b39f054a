/* fuzz_shard_restore.c: libFuzzer target for the shard snapshot reader
 * (vt_shard_restore, lib/shard/shard_snap.c) and for what open makes of a
 * restored shard. Each input is restored into a fresh directory; a
 * refusal must be a VT_E* code with a message, and a restore that succeeds
 * must give a shard that opens with the index matching the store, or is
 * refused cleanly. Nothing may crash.
 * The first byte picks the mode:
 *   even  the rest is a snapshot stream, as it would come off the network
 *         (most mutations die at its checksum, as they should);
 *   odd   the rest is an index snapshot file, wrapped with a valid
 *         checksum around the store of a small reference shard, so damaged
 *         index files reach open (which must rebuild, never serve them).
 * Store bytes themselves are not mutated behind a valid checksum: LMDB
 * trusts its pages (docs/store.md). Directories live in /dev/shm when it
 * exists (restore and open fsync), else /tmp, and are removed. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "shard/shard.h"
#include "fuzz.h"

#define DIM 4
#define FRAME_MAX (1u << 20)

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char *d = malloc(64);
	snprintf(d, 64, "%s/vt_fuzz_restore_XXXXXX", base);
	if (!mkdtemp(d))
		abort();
	return d;
}

static int mem_write(void *ud, const void *p, size_t n)
{
	return vt_buf_append(ud, p, n);
}

struct mem_src {
	const uint8_t *p;
	size_t len, off;
};

static int mem_read(void *ud, void *buf, size_t cap, size_t *n)
{
	struct mem_src *m = ud;
	size_t take = m->len - m->off;
	if (take > cap)
		take = cap;
	if (take > 5000)
		take = 5000; /* odd-sized reads, as from a socket */
	if (take)
		memcpy(buf, m->p + m->off, take);
	m->off += take;
	*n = take;
	return 0;
}

/* The reference shard's stream, and its index and store parts. */
static vt_buf ref_stream, ref_index, ref_store;
static uint64_t ref_applied;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void make_reference(void)
{
	if (ref_stream.data)
		return;
	vt_log_set_level(VT_LOG_OFF);
	char *d = tmpdir();
	vt_shard_config cfg;
	vt_shard_config_default(&cfg, DIM, VT_METRIC_L2);
	cfg.m = 4;
	cfg.ef_construction = 16;
	cfg.n_fields = 1;
	strcpy(cfg.fields[0].path, "c");
	cfg.fields[0].type = VT_PAYLOAD_INTEGER;
	vt_shard_opts o;
	vt_shard_opts_default(&o);
	o.create = &cfg;
	o.background = 0;
	o.index_threads = 1;
	o.snapshot_entries = 0;
	vt_shard *s;
	vt_errmsg e = {{0}};
	if (vt_shard_open(d, &o, &s, &e))
		abort();
	vt_buf c;
	vt_buf_init(&c, 1u << 20);
	for (uint64_t b = 0; b < 3; b++) {
		vt_cmd_enc_begin(&c, VT_CMD_UPSERT, 0, DIM);
		for (int i = 0; i < 10; i++) {
			char id[16], pl[32];
			float v[DIM] = {(float)b, (float)i, (float)(i * b), 1};
			int il = snprintf(id, sizeof id, "p%d", (int)b * 10 + i);
			int pn = snprintf(pl, sizeof pl, "{\"c\":%d}", i % 3);
			vt_cmd_enc_upsert(&c, id, (size_t)il, v, DIM, pl,
					  (size_t)pn);
		}
		vt_cmd_enc_end(&c, 10);
		if (vt_shard_apply(s, 0, c.data, c.len, NULL, &e))
			abort();
		if (b == 1 && vt_shard_checkpoint(s, &e))
			abort(); /* the last batch comes from the WAL */
	}
	vt_cmd_enc_begin(&c, VT_CMD_DELETE_IDS, 0, 0);
	vt_cmd_enc_id(&c, "p3", 2);
	vt_cmd_enc_end(&c, 1);
	if (vt_shard_apply(s, 0, c.data, c.len, NULL, &e))
		abort();
	vt_buf_free(&c);
	vt_buf_init(&ref_stream, 64u << 20);
	if (vt_shard_snapshot(s, mem_write, &ref_stream, &ref_applied, &e))
		abort();
	vt_shard_close(s);
	rmtree(d);
	free(d);
	/* Split it: header, then frames {u8 kind, u32 len, bytes}. */
	vt_buf_init(&ref_index, 64u << 20);
	vt_buf_init(&ref_store, 64u << 20);
	for (size_t off = 16; off + 5 <= ref_stream.len;) {
		int kind = ref_stream.data[off];
		uint32_t n = get32(ref_stream.data + off + 1);
		off += 5;
		if (kind == 1)
			vt_buf_append(&ref_index, ref_stream.data + off, n);
		else if (kind == 2)
			vt_buf_append(&ref_store, ref_stream.data + off, n);
		off += n;
	}
}

static void frames(vt_buf *out, int kind, const uint8_t *p, size_t n,
		   vt_hasher *h, uint64_t *total)
{
	while (n) {
		size_t take = n < FRAME_MAX ? n : FRAME_MAX;
		uint8_t hd[5];
		hd[0] = (uint8_t)kind;
		put32(hd + 1, (uint32_t)take);
		vt_buf_append(out, hd, 5);
		vt_buf_append(out, p, take);
		vt_hasher_update(h, p, take);
		*total += take;
		p += take;
		n -= take;
	}
}

/* A valid stream around the given index file and the reference store. */
static void wrap(const uint8_t *index, size_t n, vt_buf *out)
{
	vt_hasher h;
	uint64_t total = 0;
	if (vt_hasher_init(&h, 0))
		abort();
	vt_buf_append(out, ref_stream.data, 16);
	frames(out, 1, index, n, &h, &total);
	frames(out, 2, ref_store.data, ref_store.len, &h, &total);
	uint8_t end[5 + 24];
	end[0] = 3;
	put32(end + 1, 24);
	uint64_t d = vt_hasher_digest(&h);
	for (int i = 0; i < 8; i++) {
		end[5 + i] = (uint8_t)(ref_applied >> (8 * i));
		end[13 + i] = (uint8_t)(total >> (8 * i));
		end[21 + i] = (uint8_t)(d >> (8 * i));
	}
	vt_buf_append(out, end, sizeof end);
	vt_hasher_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	make_reference();
	int wrapped = data[0] & 1;
	vt_buf in;
	vt_buf_init(&in, 256u << 20);
	if (wrapped)
		wrap(data + 1, len - 1, &in);
	else
		vt_buf_append(&in, data + 1, len - 1);
	char *d = tmpdir();
	char shard_dir[128];
	snprintf(shard_dir, sizeof shard_dir, "%s/shard", d);
	struct mem_src src = {in.data, in.len, 0};
	vt_errmsg e = {{0}};
	int rc = vt_shard_restore(shard_dir, mem_read, &src, &e);
	if (rc) {
		if (rc >= 0 || !e.msg[0] || wrapped)
			abort(); /* a wrapped stream always restores */
	} else {
		vt_shard_opts o;
		vt_shard_opts_default(&o);
		o.background = 0;
		o.index_threads = 1;
		o.snapshot_entries = 0;
		vt_shard *s;
		rc = vt_shard_open(shard_dir, &o, &s, &e);
		if (rc) {
			if (rc >= 0 || !e.msg[0] || wrapped)
				abort(); /* the store is the reference one */
		} else {
			vt_shard_status st;
			if (vt_shard_status_get(s, &st) ||
			    st.points != st.index_points ||
			    st.indexed != st.applied ||
			    (wrapped && (st.points != 29 ||
					 st.applied != ref_applied)))
				abort();
			float q[DIM] = {2, 5, 10, 1};
			vt_shard_query qq;
			vt_shard_query_default(&qq, q, 3);
			vt_shard_results r;
			if (vt_shard_search(s, &qq, &r, &e) ||
			    (wrapped && (r.n != 3 || r.hits[0].dist != 0 ||
					 r.hits[0].id_len != 3 ||
					 memcmp(r.hits[0].id, "p25", 3))))
				abort();
			vt_shard_results_free(&r);
			vt_shard_close(s);
		}
	}
	rmtree(d);
	free(d);
	vt_buf_free(&in);
	return 0;
}

/* Seeds: the reference stream whole and cut at a few places, and the
 * reference index file wrapped (whole, cut, absent). */
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	make_reference();
	vt_buf b;
	vt_buf_init(&b, 256u << 20);
	int rc = 0;
	const size_t cuts[] = {0, 1, 2, 3};
	for (size_t k = 0; k < 4 && !rc; k++) {
		size_t n = ref_stream.len - ref_stream.len * cuts[k] / 4;
		if (k == 3)
			n = 40;
		vt_buf_reset(&b);
		vt_buf_put_u8(&b, 0);
		vt_buf_append(&b, ref_stream.data, n);
		rc = emit(ud, b.data, b.len);
	}
	for (size_t k = 0; k < 3 && !rc; k++) {
		size_t n = k == 0 ? ref_index.len : k == 1 ? ref_index.len / 2 : 0;
		vt_buf_reset(&b);
		vt_buf_put_u8(&b, 1);
		vt_buf_append(&b, ref_index.data, n);
		rc = emit(ud, b.data, b.len);
	}
	vt_buf_free(&b);
	return rc;
}
