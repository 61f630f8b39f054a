/* test_store_crash.c: kill -9 during writes, then check the store. A child
 * writes batches (50 points + 50 WAL entries + applied = batch number, one
 * transaction each) and reports each acknowledged batch on a pipe; the
 * parent SIGKILLs it at a random moment, reopens the store and checks that
 * every acknowledged batch is there exactly, that no batch is partly there
 * and that the applied index matches the data. Then the next round goes on
 * from where the store is. VT_CRASH_ROUNDS=200 runs a longer campaign
 * (default 20); VT_CRASH_SEED changes the kill times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/hash.h"
#include "base/log.h"
#include "store/store.h"

#define DIM 32
#define BATCH 50

static void vec_of(uint64_t n, float *v)
{
	vt_rng r;
	vt_rng_seed(&r, n * 7919 + 1);
	for (uint32_t j = 0; j < DIM; j++)
		v[j] = (float)(vt_rng_double(&r) * 2 - 1);
}

static int payload_of(uint64_t n, char *buf, size_t cap)
{
	return snprintf(buf, cap, "{\"n\":%llu,\"batch\":%llu,\"tag\":\"%016llx\"}",
			(unsigned long long)n, (unsigned long long)(n / BATCH + 1),
			(unsigned long long)vt_mix64(n));
}

static int id_of(uint64_t n, char *buf, size_t cap)
{
	return snprintf(buf, cap, "point-%llu", (unsigned long long)n);
}

static vt_store *open_store(const char *dir)
{
	vt_store_opts o;
	vt_store_opts_default(&o);
	o.dim = DIM;
	o.map_initial = (size_t)1 << 20; /* growth happens under fire too */
	vt_store *st;
	vt_errmsg e;
	if (vt_store_open(dir, &o, &st, &e)) {
		fprintf(stderr, "open %s: %s\n", dir, e.msg);
		return NULL;
	}
	return st;
}

/* The child: writes batches forever, acknowledging each after commit. */
static void child(const char *dir, int fd)
{
	vt_store *st = open_store(dir);
	if (!st)
		_exit(2);
	vt_store_txn *tx;
	uint64_t applied;
	if (vt_store_txn_begin_read(st, &tx) || vt_store_get_applied(tx, &applied))
		_exit(3);
	vt_store_txn_abort(tx);
	for (uint64_t b = applied + 1;; b++) {
		if (vt_store_txn_begin(st, &tx))
			_exit(4);
		for (uint64_t n = (b - 1) * BATCH; n < b * BATCH; n++) {
			char id[32], pl[128];
			float v[DIM];
			vec_of(n, v);
			int il = id_of(n, id, sizeof id);
			int pn = payload_of(n, pl, sizeof pl);
			uint64_t label;
			if (vt_store_put(tx, id, (size_t)il, v, DIM, pl, (size_t)pn,
					 &label, NULL) ||
			    vt_store_wal_append(tx, b, VT_STORE_WAL_UPSERT, label))
				_exit(5);
		}
		if (vt_store_set_applied(tx, b) || vt_store_txn_commit(tx))
			_exit(6);
		uint32_t ack = (uint32_t)b;
		if (write(fd, &ack, sizeof ack) != sizeof ack)
			_exit(7);
	}
}

/* Checks the store after a crash; returns the applied index. */
static uint64_t check_store(const char *dir, uint64_t acked, int round)
{
	vt_store *st = open_store(dir);
	assert_non_null(st);
	vt_store_txn *tx;
	assert_int_equal(vt_store_txn_begin_read(st, &tx), 0);
	uint64_t applied, np, nw;
	assert_int_equal(vt_store_get_applied(tx, &applied), 0);
	assert_int_equal(vt_store_count(tx, &np, &nw), 0);
	if (applied < acked)
		fail_msg("round %d: applied %llu < acknowledged %llu", round,
			 (unsigned long long)applied, (unsigned long long)acked);
	/* Whole batches only, and exactly the applied ones. */
	if (np != applied * BATCH || nw != applied * BATCH)
		fail_msg("round %d: %llu points and %llu WAL entries for applied %llu",
			 round, (unsigned long long)np, (unsigned long long)nw,
			 (unsigned long long)applied);
	for (uint64_t n = 0; n < applied * BATCH; n++) {
		char id[32], pl[128];
		float v[DIM];
		vec_of(n, v);
		int il = id_of(n, id, sizeof id);
		int pn = payload_of(n, pl, sizeof pl);
		vt_store_point p;
		int rc = vt_store_get_by_id(tx, id, (size_t)il, &p);
		if (rc)
			fail_msg("round %d: point %llu: %s", round,
				 (unsigned long long)n, vt_store_txn_errmsg(tx));
		assert_int_equal(p.label, n);
		assert_memory_equal(p.vec, v, sizeof v);
		assert_int_equal(p.payload_len, (size_t)pn);
		assert_memory_equal(p.payload, pl, (size_t)pn);
	}
	char id[32];
	int il = id_of(applied * BATCH, id, sizeof id);
	vt_store_point p;
	assert_int_equal(vt_store_get_by_id(tx, id, (size_t)il, &p), VT_ENOENT);
	/* The WAL ends at the applied batch. */
	vt_store_wal_iter *it;
	vt_store_wal_entry e;
	assert_int_equal(vt_store_wal_iter_open(tx, applied, &it), 0);
	uint64_t last = 0;
	while (vt_store_wal_iter_next(it, &e) == 0)
		last = e.index;
	assert_int_equal(last, applied);
	vt_store_wal_iter_close(it);
	vt_store_txn_abort(tx);
	vt_store_close(st);
	return applied;
}

static void test_kill9_during_writes(void **state)
{
	const char *env = getenv("VT_CRASH_ROUNDS");
	int rounds = env ? atoi(env) : 20;
	const char *seed_env = getenv("VT_CRASH_SEED");
	vt_rng r;
	vt_rng_seed(&r, seed_env ? strtoull(seed_env, NULL, 10) : 20261122);
	char dir[] = "/tmp/vt_store_crash_XXXXXX";
	assert_non_null(mkdtemp(dir));
	uint64_t applied = 0;
	for (int round = 0; round < rounds; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(dir, p[1]);
		}
		close(p[1]);
		/* From a few ms (maybe still opening) to ~200 ms. */
		long us = 2000 + (long)(vt_rng_next(&r) % 198000);
		struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status))
			fail_msg("round %d: the child exited by itself (status %d)",
				 round, WEXITSTATUS(status));
		uint64_t acked = 0;
		uint32_t a;
		while (read(p[0], &a, sizeof a) == sizeof a)
			acked = a;
		close(p[0]);
		uint64_t now = check_store(dir, acked, round);
		assert_true(now >= applied);
		if (getenv("VT_CRASH_VERBOSE"))
			print_message("round %d: killed after %ld us, acked %llu, applied %llu\n",
				      round, us, (unsigned long long)acked,
				      (unsigned long long)now);
		applied = now;
	}
	print_message("%d rounds, %llu batches applied\n", rounds,
		      (unsigned long long)applied);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	vt_log_set_level(VT_LOG_OFF);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_during_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
