/* test_store.c: unit tests for lib/store: CRUD and labels, the ids map,
 * iteration, the index WAL, the applied index, map growth, bad input,
 * damaged records, snapshot/restore, disk full (tmpfs and injected faults)
 * and allocation failures on the write path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "store/store.h"
#include "store/store_int.h"

#define DIM 8

static char *tmpdir(void)
{
	char *d = strdup("/tmp/vt_store_XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmrf(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static void vec_of(uint64_t n, float *v, uint32_t dim)
{
	for (uint32_t j = 0; j < dim; j++)
		v[j] = (float)((n * 31 + j * 7) % 101) * 0.5f - 3.0f;
}

static vt_store *open_store(const char *dir, size_t map_initial)
{
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.dim = DIM;
	if (map_initial)
		o.map_initial = map_initial;
	vt_store *st;
	vt_errmsg e;
	int rc = vt_store_open(dir, &o, &st, &e);
	if (rc)
		fail_msg("open %s: %s", dir, e.msg);
	return st;
}

/* Puts points n0..n0+cnt-1 with id "p<n>" and payload {"n":<n>}. */
static void put_range(vt_store *st, uint64_t n0, uint64_t cnt)
{
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	for (uint64_t n = n0; n < n0 + cnt; n++) {
		char id[32], pl[64];
		float v[DIM];
		vec_of(n, v, DIM);
		int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)n);
		int pn = snprintf(pl, sizeof pl, "{\"n\":%llu}", (unsigned long long)n);
		int rc = vt_store_put(tx, id, (size_t)il, v, DIM, pl, (size_t)pn,
				      NULL, NULL);
		if (rc)
			fail_msg("put %llu: %s", (unsigned long long)n,
				 vt_store_txn_errmsg(tx));
	}
	assert_int_equal(vt_store_txn_commit(tx), 0);
}

static void check_point(vt_store_txn *tx, uint64_t n)
{
	char id[32], pl[64];
	float v[DIM];
	vec_of(n, v, DIM);
	int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)n);
	int pn = snprintf(pl, sizeof pl, "{\"n\":%llu}", (unsigned long long)n);
	vt_store_point p;
	int rc = vt_store_get_by_id(tx, id, (size_t)il, &p);
	if (rc)
		fail_msg("get %s: %s", id, vt_store_txn_errmsg(tx));
	assert_int_equal(p.dim, DIM);
	assert_memory_equal(p.vec, v, sizeof v);
	assert_int_equal(p.payload_len, (size_t)pn);
	assert_memory_equal(p.payload, pl, (size_t)pn);
	assert_int_equal(p.id_len, (size_t)il);
	assert_memory_equal(p.id, id, (size_t)il);
	assert_int_equal((uintptr_t)p.vec % 4, 0);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_crud_and_labels(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	assert_int_equal(vt_store_dim(st), DIM);
	vt_store_txn *tx;
	float v[DIM], w[DIM];
	vec_of(1, v, DIM);
	vec_of(2, w, DIM);
	uint64_t l1, l2, l3;
	int upd;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM, "{}", 2, &l1, &upd), 0);
	assert_int_equal(l1, 0);
	assert_int_equal(upd, 0);
	assert_int_equal(vt_store_put(tx, "b", 1, v, DIM, NULL, 0, &l2, &upd), 0);
	assert_int_equal(l2, 1);
	/* Update keeps the label, replaces vector and payload. */
	assert_int_equal(vt_store_put(tx, "a", 1, w, DIM, "{\"x\":1}", 7, &l3, &upd), 0);
	assert_int_equal(l3, 0);
	assert_int_equal(upd, 1);
	assert_int_equal(vt_store_txn_commit(tx), 0);

	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "a", 1, &p), 0);
	assert_int_equal(p.label, 0);
	assert_memory_equal(p.vec, w, sizeof w);
	assert_int_equal(p.payload_len, 7);
	assert_memory_equal(p.payload, "{\"x\":1}", 7);
	assert_int_equal(vt_store_get_by_label(tx, 1, &p), 0);
	assert_int_equal(p.id_len, 1);
	assert_memory_equal(p.id, "b", 1);
	assert_null(p.payload);
	assert_int_equal(vt_store_get_by_id(tx, "zz", 2, &p), VT_ENOENT);
	assert_int_equal(vt_store_get_by_label(tx, 7, &p), VT_ENOENT);
	uint64_t np, nw;
	assert_int_equal(vt_store_count(tx, &np, &nw), 0);
	assert_int_equal(np, 2);
	assert_int_equal(nw, 0);
	vt_store_txn_abort(tx);

	/* Delete; labels are never reused. */
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_del(tx, "b", 1, &l2), 0);
	assert_int_equal(l2, 1);
	assert_int_equal(vt_store_del(tx, "b", 1, &l2), VT_ENOENT);
	assert_int_equal(vt_store_put(tx, "b", 1, v, DIM, NULL, 0, &l2, &upd), 0);
	assert_int_equal(l2, 2);
	assert_int_equal(upd, 0);
	assert_int_equal(vt_store_set_payload(tx, "b", 1, "{\"y\":2}", 7, &l3), 0);
	assert_int_equal(l3, 2);
	assert_int_equal(vt_store_set_payload(tx, "nope", 4, "{}", 2, &l3), VT_ENOENT);
	assert_int_equal(vt_store_txn_commit(tx), 0);

	/* Survives close and reopen (dim taken from the store). */
	vt_store_close(st);
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.create = 0;
	vt_errmsg e;
	assert_int_equal(vt_store_open(d, &o, &st, &e), 0);
	assert_int_equal(vt_store_dim(st), DIM);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	assert_int_equal(vt_store_get_by_id(tx, "b", 1, &p), 0);
	assert_int_equal(p.label, 2);
	assert_memory_equal(p.vec, v, sizeof v);
	assert_memory_equal(p.payload, "{\"y\":2}", 7);
	assert_int_equal(vt_store_get_by_label(tx, 1, &p), VT_ENOENT);
	vt_store_txn_abort(tx);
	vt_store_stats s;
	assert_int_equal(vt_store_stats_get(st, &s), 0);
	assert_int_equal(s.next_label, 3);
	assert_true(s.file_bytes > 0);
	assert_true(s.used_pages > 0);
	assert_int_equal(s.readonly, 0);
	vt_store_close(st);

	/* A wrong dim is refused with the field named. */
	o.dim = DIM + 1;
	assert_int_equal(vt_store_open(d, &o, &st, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dim"));
	rmrf(d);
	free(d);
}

static void test_abort_discards(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 10);
	vt_store_txn *tx;
	float v[DIM];
	vec_of(99, v, DIM);
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "new", 3, v, DIM, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vt_store_del(tx, "p3", 2, NULL), 0);
	assert_int_equal(vt_store_set_applied(tx, 5), 0);
	vt_store_txn_abort(tx);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "new", 3, &p), VT_ENOENT);
	check_point(tx, 3);
	uint64_t a;
	assert_int_equal(vt_store_get_applied(tx, &a), 0);
	assert_int_equal(a, 0);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_iterate_in_label_order(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 500);
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	for (int n = 0; n < 500; n += 3) {
		char id[16];
		int il = snprintf(id, sizeof id, "p%d", n);
		assert_int_equal(vt_store_del(tx, id, (size_t)il, NULL), 0);
	}
	assert_int_equal(vt_store_txn_commit(tx), 0);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_iter *it;
	assert_int_equal(vt_store_iter_open(tx, 0, &it), 0);
	vt_store_point p;
	uint64_t expect = 1, count = 0;
	int rc;
	while ((rc = vt_store_iter_next(it, &p)) == 0) {
		if (expect % 3 == 0)
			expect++;
		assert_int_equal(p.label, expect);
		check_point(tx, expect);
		expect++;
		count++;
	}
	assert_int_equal(rc, VT_ENOENT);
	assert_int_equal(count, 500 - 167);
	vt_store_iter_close(it);
	/* Resume from a cursor. */
	assert_int_equal(vt_store_iter_open(tx, 300, &it), 0);
	assert_int_equal(vt_store_iter_next(it, &p), 0);
	assert_int_equal(p.label, 301);
	vt_store_iter_close(it);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_wal_and_applied(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	vt_store_txn *tx;
	for (uint64_t idx = 1; idx <= 10; idx++) {
		assert_int_equal(vt_store_txn_begin(st, &tx), 0);
		for (uint64_t j = 0; j < 3; j++)
			assert_int_equal(vt_store_wal_append(tx, idx, j == 2 ? VT_STORE_WAL_DELETE : VT_STORE_WAL_UPSERT,
							     idx * 10 + j), 0);
		assert_int_equal(vt_store_set_applied(tx, idx), 0);
		assert_int_equal(vt_store_txn_commit(tx), 0);
	}
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	/* Going backwards is refused and leaves the transaction usable. */
	assert_int_equal(vt_store_set_applied(tx, 3), VT_ERANGE);
	assert_int_equal(vt_store_wal_append(tx, 4, VT_STORE_WAL_UPSERT, 1), VT_ERANGE);
	assert_int_equal(vt_store_wal_append(tx, 10, 77, 1), VT_EINVAL);
	/* Same index continues its sequence. */
	assert_int_equal(vt_store_wal_append(tx, 10, VT_STORE_WAL_UPSERT, 999), 0);
	uint64_t a;
	assert_int_equal(vt_store_get_applied(tx, &a), 0);
	assert_int_equal(a, 10);
	assert_int_equal(vt_store_txn_commit(tx), 0);

	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_wal_iter *it;
	vt_store_wal_entry e;
	assert_int_equal(vt_store_wal_iter_open(tx, 4, &it), 0);
	uint64_t n = 0;
	while (vt_store_wal_iter_next(it, &e) == 0) {
		uint64_t idx = 4 + n / 3, j = n % 3;
		if (idx == 11) {
			assert_int_equal(e.index, 10);
			assert_int_equal(e.seq, 3);
			assert_int_equal(e.label, 999);
		} else {
			assert_int_equal(e.index, idx);
			assert_int_equal(e.seq, j);
			assert_int_equal(e.label, idx * 10 + j);
			assert_int_equal(e.op, j == 2 ? VT_STORE_WAL_DELETE : VT_STORE_WAL_UPSERT);
		}
		n++;
	}
	assert_int_equal(n, 7 * 3 + 1);
	vt_store_wal_iter_close(it);
	uint64_t nw;
	assert_int_equal(vt_store_count(tx, NULL, &nw), 0);
	assert_int_equal(nw, 31);
	vt_store_txn_abort(tx);

	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	uint64_t removed;
	assert_int_equal(vt_store_wal_trim(tx, 6, &removed), 0);
	assert_int_equal(removed, 18);
	assert_int_equal(vt_store_txn_commit(tx), 0);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	assert_int_equal(vt_store_wal_iter_open(tx, 0, &it), 0);
	assert_int_equal(vt_store_wal_iter_next(it, &e), 0);
	assert_int_equal(e.index, 7);
	assert_int_equal(e.seq, 0);
	vt_store_wal_iter_close(it);
	assert_int_equal(vt_store_count(tx, NULL, &nw), 0);
	assert_int_equal(nw, 13);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_meta(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_meta_put(tx, "params", "{\"m\":16}", 8), 0);
	/* Caller keys never collide with the store's own. */
	assert_int_equal(vt_store_meta_put(tx, "applied", "x", 1), 0);
	assert_int_equal(vt_store_meta_put(tx, "", "x", 1), VT_EINVAL);
	assert_int_equal(vt_store_txn_commit(tx), 0);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	const void *val;
	size_t len;
	assert_int_equal(vt_store_meta_get(tx, "params", &val, &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(val, "{\"m\":16}", 8);
	assert_int_equal(vt_store_meta_get(tx, "other", &val, &len), VT_ENOENT);
	uint64_t a;
	assert_int_equal(vt_store_get_applied(tx, &a), 0);
	assert_int_equal(a, 0);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_bad_input(void **state)
{
	char *d = tmpdir();
	vt_store_opts o;
	vt_store_opts_default(&o);
	vt_store *st;
	vt_errmsg e;
	/* Creating needs a dim. */
	assert_int_equal(vt_store_open(d, &o, &st, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dim"));
	o.dim = DIM;
	o.map_initial = 100;
	assert_int_equal(vt_store_open(d, &o, &st, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "map_initial"));
	vt_store_opts_default(&o);
	o.dim = DIM;
	o.create = 0;
	assert_int_equal(vt_store_open("/tmp/vt_store_does_not_exist", &o, &st, &e), VT_ENOENT);
	st = open_store(d, 0);
	vt_store_txn *tx;
	float v[DIM];
	vec_of(0, v, DIM);
	char big[VT_STORE_MAX_ID + 1];
	memset(big, 'x', sizeof big);
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "", 0, v, DIM, NULL, 0, NULL, NULL), VT_EINVAL);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "id"));
	assert_int_equal(vt_store_put(tx, big, sizeof big, v, DIM, NULL, 0, NULL, NULL), VT_EINVAL);
	assert_int_equal(vt_store_put(tx, big, VT_STORE_MAX_ID, v, DIM, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM - 1, NULL, 0, NULL, NULL), VT_EINVAL);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "dimensions"));
	assert_int_equal(vt_store_put(tx, "a", 1, NULL, DIM, NULL, 0, NULL, NULL), VT_EINVAL);
	v[3] = NAN;
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM, NULL, 0, NULL, NULL), VT_EINVAL);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "component 3"));
	v[3] = 0;
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM, NULL, 5, NULL, NULL), VT_EINVAL);
	char *pl = calloc(1, ((size_t)1 << 20) + 1);
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM, pl, ((size_t)1 << 20) + 1, NULL, NULL), VT_EINVAL);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "max_payload"));
	/* A payload at the cap is fine (overflow pages). */
	assert_int_equal(vt_store_put(tx, "a", 1, v, DIM, pl, (size_t)1 << 20, NULL, NULL), 0);
	free(pl);
	assert_int_equal(vt_store_txn_commit(tx), 0);
	/* Writes in a read transaction are refused. */
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "b", 1, v, DIM, NULL, 0, NULL, NULL), VT_EINVAL);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "a", 1, &p), 0);
	assert_int_equal(p.payload_len, (size_t)1 << 20);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_map_grows(void **state)
{
	char *d = tmpdir();
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.dim = DIM;
	o.map_initial = (size_t)256 << 10;
	vt_store *st;
	vt_errmsg e;
	assert_int_equal(vt_store_open(d, &o, &st, &e), 0);
	/* One big transaction (grows mid-transaction and replays: the labels
	 * handed out must stay right) then many small ones (grow ahead at
	 * begin). Ids of odd lengths exercise the op log's padding. */
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	for (uint64_t n = 0; n < 20000; n++) {
		char id[32], pl[64];
		float v[DIM];
		vec_of(n, v, DIM);
		int il = snprintf(id, sizeof id, "p%llu", (unsigned long long)n);
		int pn = snprintf(pl, sizeof pl, "{\"n\":%llu}", (unsigned long long)n);
		uint64_t label = UINT64_MAX;
		int upd = -1;
		assert_int_equal(vt_store_put(tx, id, (size_t)il, v, DIM, pl, (size_t)pn,
					      &label, &upd), 0);
		assert_int_equal(label, n);
		assert_int_equal(upd, 0);
	}
	assert_int_equal(vt_store_txn_commit(tx), 0);
	for (int b = 0; b < 20; b++)
		put_range(st, 20000 + (uint64_t)b * 500, 500);
	vt_store_stats s;
	assert_int_equal(vt_store_stats_get(st, &s), 0);
	assert_true(s.map_bytes > o.map_initial);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	uint64_t np;
	assert_int_equal(vt_store_count(tx, &np, NULL), 0);
	assert_int_equal(np, 30000);
	for (uint64_t n = 0; n < 30000; n += 97)
		check_point(tx, n);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "p29999", 6, &p), 0);
	assert_int_equal(p.label, 29999);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_map_max_is_enospc(void **state)
{
	char *d = tmpdir();
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.dim = DIM;
	o.map_initial = (size_t)256 << 10;
	o.map_max = (size_t)512 << 10;
	vt_store *st;
	vt_errmsg e;
	assert_int_equal(vt_store_open(d, &o, &st, &e), 0);
	put_range(st, 0, 100);
	vt_store_txn *tx;
	int rc = 0;
	uint64_t n = 100;
	float v[DIM];
	while (!rc && n < 100000) {
		assert_int_equal(vt_store_txn_begin(st, &tx), 0);
		for (int i = 0; i < 100 && !rc; i++, n++) {
			char id[32];
			int il = snprintf(id, sizeof id, "q%llu", (unsigned long long)n);
			vec_of(n, v, DIM);
			rc = vt_store_put(tx, id, (size_t)il, v, DIM, NULL, 0, NULL, NULL);
		}
		if (rc)
			vt_store_txn_abort(tx);
		else
			rc = vt_store_txn_commit(tx);
	}
	assert_int_equal(rc, VT_ENOSPC);
	assert_true(vt_store_readonly(st));
	assert_int_equal(vt_store_txn_begin(st, &tx), VT_EREADONLY);
	assert_non_null(strstr(vt_store_errmsg(st), "map_max"));
	/* Reads still work. */
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	check_point(tx, 42);
	vt_store_txn_abort(tx);
	/* The operator raises the quota. */
	assert_int_equal(vt_store_clear_readonly(st, (size_t)8 << 20, &e), 0);
	assert_false(vt_store_readonly(st));
	put_range(st, 100, 1000);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_injected_fault_goes_readonly(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 50);
	vt_store_inject_fault(st, 1, EIO);
	vt_store_txn *tx;
	float v[DIM];
	vec_of(7, v, DIM);
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "lost", 4, v, DIM, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vt_store_set_applied(tx, 9), 0);
	assert_int_equal(vt_store_txn_commit(tx), VT_EIO);
	assert_true(vt_store_readonly(st));
	assert_int_equal(vt_store_txn_begin(st, &tx), VT_EREADONLY);
	assert_non_null(strstr(vt_store_errmsg(st), "read-only"));
	assert_non_null(strstr(vt_store_errmsg(st), "clear read-only"));
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "lost", 4, &p), VT_ENOENT);
	for (uint64_t n = 0; n < 50; n++)
		check_point(tx, n);
	vt_store_txn_abort(tx);
	vt_errmsg e;
	assert_int_equal(vt_store_clear_readonly(st, 0, &e), 0);
	put_range(st, 50, 10);
	vt_store_close(st);
	st = open_store(d, 0);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	for (uint64_t n = 0; n < 60; n++)
		check_point(tx, n);
	uint64_t a;
	assert_int_equal(vt_store_get_applied(tx, &a), 0);
	assert_int_equal(a, 0);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static char mounted[64];

/* Unmounts the tmpfs even when an assertion failed mid-test. */
static int unmount_tmpfs(void **state)
{
	if (mounted[0]) {
		umount(mounted);
		rmrf(mounted);
		mounted[0] = '\0';
	}
	return 0;
}

/* A disk error inside an operation (LMDB spilling pages of a huge batch). */
static void test_op_fault_goes_readonly(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 30);
	vt_store_inject_op_fault(st, 3, ENOSPC);
	vt_store_txn *tx;
	float v[DIM];
	vec_of(5, v, DIM);
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_put(tx, "x1", 2, v, DIM, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vt_store_del(tx, "p2", 2, NULL), 0);
	assert_int_equal(vt_store_put(tx, "x2", 2, v, DIM, NULL, 0, NULL, NULL), VT_ENOSPC);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "clear read-only"));
	assert_int_equal(vt_store_set_applied(tx, 4), VT_EINVAL);
	assert_int_equal(vt_store_txn_commit(tx), VT_EINVAL);
	assert_true(vt_store_readonly(st));
	assert_int_equal(vt_store_txn_begin(st, &tx), VT_EREADONLY);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, "x1", 2, &p), VT_ENOENT);
	for (uint64_t n = 0; n < 30; n++)
		check_point(tx, n);
	vt_store_txn_abort(tx);
	vt_errmsg e;
	assert_int_equal(vt_store_clear_readonly(st, 0, &e), 0);
	put_range(st, 30, 5);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

/* A real full disk: a 4 MiB tmpfs. */
static void test_disk_full_tmpfs(void **state)
{
	char *d = tmpdir();
	if (mount("tmpfs", d, "tmpfs", 0, "size=4m")) {
		int e = errno;
		rmrf(d);
		free(d);
		print_message("cannot mount a tmpfs (%s): tmpfs disk-full case skipped; the injected-fault case still runs\n",
			      strerror(e));
		skip();
	}
	snprintf(mounted, sizeof mounted, "%s", d);
	char sd[600];
	snprintf(sd, sizeof sd, "%s/shard", d);
	vt_store *st = open_store(sd, 0);
	put_range(st, 0, 1000);
	vt_store_txn *tx;
	int rc = 0;
	uint64_t n = 1000;
	static char pl[8192];
	memset(pl, 'z', sizeof pl);
	while (!rc && n < 100000) {
		assert_int_equal(vt_store_txn_begin(st, &tx), 0);
		for (int i = 0; i < 20 && !rc; i++, n++) {
			char id[32];
			float v[DIM];
			int il = snprintf(id, sizeof id, "big%llu", (unsigned long long)n);
			vec_of(n, v, DIM);
			rc = vt_store_put(tx, id, (size_t)il, v, DIM, pl, sizeof pl, NULL, NULL);
		}
		if (rc) {
			vt_store_txn_abort(tx);
			break;
		}
		rc = vt_store_txn_commit(tx);
	}
	assert_int_equal(rc, VT_ENOSPC);
	assert_true(vt_store_readonly(st));
	assert_int_equal(vt_store_txn_begin(st, &tx), VT_EREADONLY);
	assert_non_null(strstr(vt_store_errmsg(st), "space"));
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	for (uint64_t k = 0; k < 1000; k++)
		check_point(tx, k);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	/* Everything committed reads back after reopening. */
	st = open_store(sd, 0);
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	for (uint64_t k = 0; k < 1000; k++)
		check_point(tx, k);
	uint64_t np;
	assert_int_equal(vt_store_count(tx, &np, NULL), 0);
	assert_true(np >= 1000);
	vt_store_point p;
	vt_store_iter *it;
	assert_int_equal(vt_store_iter_open(tx, 0, &it), 0);
	uint64_t cnt = 0;
	while ((rc = vt_store_iter_next(it, &p)) == 0)
		cnt++;
	assert_int_equal(rc, VT_ENOENT);
	assert_int_equal(cnt, np);
	vt_store_iter_close(it);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	free(d);
}

/* Writes a garbage value under a label with raw LMDB. */
static void damage(const char *dir, uint64_t label, const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "points", 0, &dbi), 0);
	uint8_t kb[8];
	for (int i = 0; i < 8; i++)
		kb[i] = (uint8_t)(label >> (56 - 8 * i));
	MDB_val k = {8, kb}, v = {len, (void *)val};
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_corrupt_record_is_reported(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 10);
	vt_store_close(st);
	damage(d, 3, "garbage!", 8);
	uint8_t rec[VT__STORE_REC_HDR + DIM * 4 + 2];
	float v[DIM] = {0};
	vt__store_rec_encode(rec, v, DIM, "p4", 2, NULL, 0);
	rec[0] = 9; /* future version */
	damage(d, 4, rec, sizeof rec);
	vt__store_rec_encode(rec, v, DIM, "p5", 2, NULL, 0);
	rec[8] = 40; /* id length beyond the value */
	damage(d, 5, rec, sizeof rec);
	st = open_store(d, 0);
	vt_store_txn *tx;
	vt_store_point p;
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	assert_int_equal(vt_store_get_by_label(tx, 3, &p), VT_ECORRUPT);
	assert_non_null(strstr(vt_store_txn_errmsg(tx), "label 3"));
	assert_int_equal(vt_store_get_by_id(tx, "p3", 2, &p), VT_ECORRUPT);
	assert_int_equal(vt_store_get_by_label(tx, 4, &p), VT_EVERSION);
	assert_int_equal(vt_store_get_by_label(tx, 5, &p), VT_ECORRUPT);
	check_point(tx, 6);
	vt_store_iter *it;
	assert_int_equal(vt_store_iter_open(tx, 0, &it), 0);
	int rc, bad = 0, good = 0;
	while ((rc = vt_store_iter_next(it, &p)) != VT_ENOENT) {
		if (rc)
			bad++;
		else
			good++;
	}
	assert_int_equal(bad, 3);
	assert_int_equal(good, 7);
	vt_store_iter_close(it);
	vt_store_txn_abort(tx);
	/* set_payload on a damaged point fails without writing. */
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	assert_int_equal(vt_store_set_payload(tx, "p3", 2, "{}", 2, NULL), VT_ECORRUPT);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_future_format_is_refused(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	vt_store_close(st);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	assert_int_equal(mdb_env_open(env, d, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint8_t two[8] = {0, 0, 0, 0, 0, 0, 0, 2};
	MDB_val k = {6, "format"}, v = {8, two};
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	vt_store_opts o;
	vt_store_opts_default(&o);
	vt_errmsg e;
	assert_int_equal(vt_store_open(d, &o, &st, &e), VT_EVERSION);
	assert_non_null(strstr(e.msg, "format 2"));
	rmrf(d);
	free(d);
}

/* A first open killed after LMDB made its files but before the format
 * record committed: a caller that passes only new_dim (the shard, which
 * checks dims itself) must still be able to create the store. */
static void test_interrupted_create_completes(void **state)
{
	(void)state;
	char *d = tmpdir();
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	assert_int_equal(mdb_env_open(env, d, 0, 0644), 0);
	mdb_env_close(env);
	vt_store_opts o;
	vt_store_opts_default(&o);
	vt_errmsg e;
	vt_store *st;
	assert_int_equal(vt_store_open(d, &o, &st, &e), VT_EINVAL);
	assert_non_null(strstr(e.msg, "dim"));
	o.new_dim = 8;
	assert_int_equal(vt_store_open(d, &o, &st, &e), 0);
	assert_int_equal(vt_store_dim(st), 8);
	vt_store_close(st);
	/* later opens take the stored dim; new_dim is not a check */
	o.new_dim = 99;
	assert_int_equal(vt_store_open(d, &o, &st, &e), 0);
	assert_int_equal(vt_store_dim(st), 8);
	vt_store_close(st);
	rmrf(d);
	free(d);
}

struct mem {
	vt_buf b;
	size_t off;
	int chunks;
};

static int mem_write(void *ud, const void *p, size_t n)
{
	struct mem *m = ud;
	m->chunks++;
	return vt_buf_append(&m->b, p, n);
}

static int mem_read(void *ud, void *buf, size_t cap, size_t *n)
{
	struct mem *m = ud;
	size_t left = m->b.len - m->off;
	/* Small, uneven chunks, as from a network. */
	size_t k = left < 1000 ? left : 1000;
	if (k > cap)
		k = cap;
	memcpy(buf, m->b.data + m->off, k);
	m->off += k;
	*n = k;
	return 0;
}

static void test_snapshot_restore(void **state)
{
	char *d = tmpdir(), *d2 = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 3000);
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin(st, &tx), 0);
	for (int n = 0; n < 3000; n += 2) {
		char id[16];
		int il = snprintf(id, sizeof id, "p%d", n);
		assert_int_equal(vt_store_del(tx, id, (size_t)il, NULL), 0);
	}
	assert_int_equal(vt_store_wal_append(tx, 77, VT_STORE_WAL_UPSERT, 5), 0);
	assert_int_equal(vt_store_set_applied(tx, 77), 0);
	assert_int_equal(vt_store_meta_put(tx, "params", "P", 1), 0);
	assert_int_equal(vt_store_txn_commit(tx), 0);
	struct mem m = {0};
	vt_buf_init(&m.b, (size_t)1 << 30);
	vt_errmsg e;
	assert_int_equal(vt_store_snapshot(st, mem_write, &m, &e), 0);
	assert_true(m.b.len > 0);
	/* Restore over an existing, different store in another directory. */
	vt_store *st2 = open_store(d2, 0);
	put_range(st2, 5000, 10);
	vt_store_close(st2);
	assert_int_equal(vt_store_restore(d2, mem_read, &m, &e), 0);
	st2 = open_store(d2, 0);
	vt_store_txn *t1, *t2;
	assert_int_equal(vt_store_txn_begin_read(st, &t1), 0);
	assert_int_equal(vt_store_txn_begin_read(st2, &t2), 0);
	uint64_t a1, a2, n1, n2, w1, w2;
	assert_int_equal(vt_store_get_applied(t2, &a2), 0);
	assert_int_equal(vt_store_get_applied(t1, &a1), 0);
	assert_int_equal(a1, a2);
	assert_int_equal(vt_store_count(t1, &n1, &w1), 0);
	assert_int_equal(vt_store_count(t2, &n2, &w2), 0);
	assert_int_equal(n1, n2);
	assert_int_equal(w1, w2);
	assert_int_equal(n2, 1500);
	vt_store_iter *i1, *i2;
	vt_store_point p1, p2;
	assert_int_equal(vt_store_iter_open(t1, 0, &i1), 0);
	assert_int_equal(vt_store_iter_open(t2, 0, &i2), 0);
	int r1, r2;
	while ((r1 = vt_store_iter_next(i1, &p1)) == 0) {
		r2 = vt_store_iter_next(i2, &p2);
		assert_int_equal(r2, 0);
		assert_int_equal(p1.label, p2.label);
		assert_int_equal(p1.id_len, p2.id_len);
		assert_memory_equal(p1.id, p2.id, p1.id_len);
		assert_memory_equal(p1.vec, p2.vec, DIM * 4);
		assert_int_equal(p1.payload_len, p2.payload_len);
		assert_memory_equal(p1.payload, p2.payload, p1.payload_len);
	}
	assert_int_equal(r1, VT_ENOENT);
	assert_int_equal(vt_store_iter_next(i2, &p2), VT_ENOENT);
	vt_store_iter_close(i1);
	vt_store_iter_close(i2);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(t2, "p5000", 5, &p), VT_ENOENT);
	const void *val;
	size_t len;
	assert_int_equal(vt_store_meta_get(t2, "params", &val, &len), 0);
	vt_store_txn_abort(t1);
	vt_store_txn_abort(t2);
	vt_store_stats s;
	assert_int_equal(vt_store_stats_get(st2, &s), 0);
	assert_int_equal(s.next_label, 3000);
	vt_store_close(st2);

	/* A damaged stream is refused and the old store stays. */
	vt_buf_reset(&m.b);
	for (int i = 0; i < 20000; i++)
		vt_buf_put_u8(&m.b, (uint8_t)(i * 7));
	m.off = 0;
	assert_int_not_equal(vt_store_restore(d2, mem_read, &m, &e), 0);
	st2 = open_store(d2, 0);
	assert_int_equal(vt_store_txn_begin_read(st2, &t2), 0);
	check_point(t2, 1);
	vt_store_txn_abort(t2);
	vt_store_close(st2);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s/restore.tmp", d2);
	struct stat sb;
	assert_int_not_equal(stat(tmp, &sb), 0);
	vt_buf_free(&m.b);
	vt_store_close(st);
	rmrf(d);
	rmrf(d2);
	free(d);
	free(d2);
}

static void test_alloc_failures_leave_store_consistent(void **state)
{
	char *d = tmpdir();
	vt_store *st = open_store(d, 0);
	put_range(st, 0, 20);
	for (uint64_t nth = 1; nth < 40; nth++) {
		vt_store_txn *tx;
		vt_alloc_fail_at(nth, 0);
		int rc = vt_store_txn_begin(st, &tx);
		if (!rc) {
			float v[DIM];
			vec_of(1000 + nth, v, DIM);
			char id[16];
			int il = snprintf(id, sizeof id, "n%llu", (unsigned long long)nth);
			rc = vt_store_put(tx, id, (size_t)il, v, DIM, "{}", 2, NULL, NULL);
			if (!rc)
				rc = vt_store_del(tx, "p1", 2, NULL);
			if (!rc)
				rc = vt_store_wal_append(tx, nth, VT_STORE_WAL_DELETE, 1);
			if (!rc)
				rc = vt_store_set_applied(tx, nth);
			/* Always roll back so every round starts the same. */
			vt_store_txn_abort(tx);
		}
		vt_alloc_fail_at(0, 0);
		vt_store_txn *r;
		assert_int_equal(vt_store_txn_begin_read(st, &r), 0);
		for (uint64_t n = 0; n < 20; n++)
			check_point(r, n);
		uint64_t np;
		assert_int_equal(vt_store_count(r, &np, NULL), 0);
		assert_int_equal(np, 20);
		vt_store_txn_abort(r);
	}
	/* And committing with failures injected: all or nothing. */
	for (uint64_t nth = 1; nth < 20; nth++) {
		vt_store_txn *tx;
		vt_alloc_fail_at(nth, 0);
		int rc = vt_store_txn_begin(st, &tx);
		char id[16];
		int il = snprintf(id, sizeof id, "c%llu", (unsigned long long)nth);
		if (!rc) {
			float v[DIM];
			vec_of(nth, v, DIM);
			rc = vt_store_put(tx, id, (size_t)il, v, DIM, NULL, 0, NULL, NULL);
			if (!rc)
				rc = vt_store_set_applied(tx, nth);
			if (!rc)
				rc = vt_store_txn_commit(tx);
			else
				vt_store_txn_abort(tx);
		}
		vt_alloc_fail_at(0, 0);
		vt_store_txn *r;
		assert_int_equal(vt_store_txn_begin_read(st, &r), 0);
		vt_store_point p;
		uint64_t a;
		assert_int_equal(vt_store_get_applied(r, &a), 0);
		int present = vt_store_get_by_id(r, id, (size_t)il, &p) == 0;
		assert_int_equal(present, rc == 0);
		if (present)
			assert_int_equal(a, nth);
		vt_store_txn_abort(r);
	}
	vt_store_close(st);
	rmrf(d);
	free(d);
}

static void test_record_codec(void **state)
{
	uint8_t rec[VT__STORE_REC_HDR + 3 * 4 + 4 + 2];
	float v[3] = {1, 2, 3};
	vt__store_rec_encode(rec, v, 3, "ab", 2, "{}xx", 4);
	vt_store_point p;
	vt_errmsg e;
	assert_int_equal(vt__store_rec_decode(rec, sizeof rec, 3, 9, &p, &e), 0);
	assert_int_equal(p.label, 9);
	assert_int_equal(p.payload_len, 4);
	assert_int_equal(p.id_len, 2);
	assert_int_equal(vt__store_rec_decode(rec, sizeof rec, 4, 9, &p, &e), VT_ECORRUPT);
	for (size_t n = 0; n < sizeof rec; n++)
		assert_int_not_equal(vt__store_rec_decode(rec, n, 0, 9, &p, &e), 0);
}

int main(void)
{
	vt_log_set_level(VT_LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_codec),
		cmocka_unit_test(test_crud_and_labels),
		cmocka_unit_test(test_abort_discards),
		cmocka_unit_test(test_iterate_in_label_order),
		cmocka_unit_test(test_wal_and_applied),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_map_grows),
		cmocka_unit_test(test_map_max_is_enospc),
		cmocka_unit_test(test_injected_fault_goes_readonly),
		cmocka_unit_test(test_op_fault_goes_readonly),
		cmocka_unit_test_teardown(test_disk_full_tmpfs, unmount_tmpfs),
		cmocka_unit_test(test_corrupt_record_is_reported),
		cmocka_unit_test(test_future_format_is_refused),
		cmocka_unit_test(test_interrupted_create_completes),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_alloc_failures_leave_store_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
