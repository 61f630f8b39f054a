/* test_json.c: unit tests for lib/rpc/json: a hand-written valid/invalid
 * corpus in the manner of JSONTestSuite, error positions, strings and
 * UTF-8, duplicate keys, limits, number parsing bit-exact against strtod,
 * the float writer's round trip, getters with paths, the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "rpc/json.h"

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static vt_json_doc *parse_ok(const char *s, size_t len)
{
	vt_json_doc *d = NULL;
	vt_errmsg e = {{0}};
	int rc = vt_json_parse(s, len, NULL, &d, NULL, &e);
	if (rc)
		fprintf(stderr, "unexpected failure on [%.*s]: %s\n", (int)len, s, e.msg);
	assert_int_equal(rc, 0);
	assert_non_null(d);
	return d;
}

static int parse_rc(const char *s, size_t len)
{
	vt_json_doc *d = NULL;
	vt_errmsg e = {{0}};
	int rc = vt_json_parse(s, len, NULL, &d, NULL, &e);
	if (rc) {
		assert_null(d);
		assert_true(e.msg[0] != '\0');
	}
	vt_json_doc_free(d);
	return rc;
}

/* ---- corpus ------------------------------------------------------------------- */

static const char *const valid[] = {
	"[]", "{}", "0", "-0", "1", "-1", "0.5", "-0.0e0", "1e5", "1E+5", "1e-5", "123.456e-7",
	"true", "false", "null", "\"\"", "\"a\"", " [ 1 , 2 ] ", "\t\r\n{}\n",
	"[[[[[]]]]]", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[\"\\u00e9\\uD83D\\uDE00\"]",
	"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"caf\xc3\xa9\"", "\"\xe2\x82\xac\"",
	"\"\xf0\x9f\x98\x80\"", "\"\xef\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"", "1e-400",
	"18446744073709551616", "[1e308]", "{\"a\":1,\"A\":2}", "\"\x7f\"",
	"123456789012345678901234567890", "0.000000000000000000000000000001",
	"{\"\":0}", "[-1e-7,2.5E10]",
};

static const struct {
	const char *text;
	int code;
} invalid[] = {
	{"", VT_EINVAL},           {" ", VT_EINVAL},           {"01", VT_EINVAL},
	{"-01", VT_EINVAL},        {"1.", VT_EINVAL},          {".5", VT_EINVAL},
	{"-", VT_EINVAL},          {"+1", VT_EINVAL},          {"1e", VT_EINVAL},
	{"1e+", VT_EINVAL},        {"0x10", VT_EINVAL},        {"1.5x", VT_EINVAL},
	{"NaN", VT_EINVAL},        {"Infinity", VT_EINVAL},    {"-Infinity", VT_EINVAL},
	{"[1,]", VT_EINVAL},       {"{\"a\":1,}", VT_EINVAL},  {"[,1]", VT_EINVAL},
	{"[1 2]", VT_EINVAL},      {"{\"a\" 1}", VT_EINVAL},   {"{a:1}", VT_EINVAL},
	{"{'a':1}", VT_EINVAL},    {"['a']", VT_EINVAL},       {"[1]//c", VT_EINVAL},
	{"/*c*/[1]", VT_EINVAL},   {"[1] x", VT_EINVAL},       {"{\"a\":1} {}", VT_EINVAL},
	{"[", VT_EINVAL},          {"]", VT_EINVAL},           {"{", VT_EINVAL},
	{"{\"a\"", VT_EINVAL},     {"{\"a\":", VT_EINVAL},     {"\"abc", VT_EINVAL},
	{"\"a\tb\"", VT_EINVAL},   {"\"a\nb\"", VT_EINVAL},    {"\"\\x\"", VT_EINVAL},
	{"\"\\u12\"", VT_EINVAL},  {"\"\\u12G4\"", VT_EINVAL}, {"\"\\u0000\"", VT_EINVAL},
	{"\"\\uD800\"", VT_EINVAL}, {"\"\\uDC00\"", VT_EINVAL}, {"\"\\uD800\\u0041\"", VT_EINVAL},
	{"\"\\uD800\\n\"", VT_EINVAL}, {"\"\xff\"", VT_EINVAL}, {"\"\xc3\"", VT_EINVAL},
	{"\"\xc0\xaf\"", VT_EINVAL}, {"\"\xc1\xbf\"", VT_EINVAL}, {"\"\xe0\x80\xaf\"", VT_EINVAL},
	{"\"\xf0\x80\x80\xaf\"", VT_EINVAL}, {"\"\xed\xa0\x80\"", VT_EINVAL},
	{"\"\xf4\x90\x80\x80\"", VT_EINVAL}, {"\"\xf5\x80\x80\x80\"", VT_EINVAL},
	{"\"\x80\"", VT_EINVAL},   {"\"\xe2\x82\"", VT_EINVAL}, {"tru", VT_EINVAL},
	{"nul", VT_EINVAL},        {"True", VT_EINVAL},        {"[true false]", VT_EINVAL},
	{"{\"a\":1,\"a\":2}", VT_EINVAL}, {"{\"a\":1,\"\\u0061\":2}", VT_EINVAL},
	{"1e400", VT_ERANGE},      {"-1e400", VT_ERANGE},      {"[1e99999999999]", VT_ERANGE},
	{"\xef\xbb\xbf[]", VT_EINVAL},
};

static void test_corpus(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
		vt_json_doc_free(parse_ok(valid[i], strlen(valid[i])));
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
		const char *t = invalid[i].text;
		int rc = parse_rc(t, strlen(t));
		if (rc != invalid[i].code)
			fprintf(stderr, "case %zu [%s]: rc %d, want %d\n", i, t, rc,
				invalid[i].code);
		assert_int_equal(rc, invalid[i].code);
	}
	/* explicit embedded-NUL cases */
	assert_int_equal(parse_rc("[1]\0", 4), VT_EINVAL);
	assert_int_equal(parse_rc("\"\0\"", 3), VT_EINVAL);
	assert_int_equal(parse_rc("[\0]", 3), VT_EINVAL);
}

static void test_error_position(void **state)
{
	(void)state;
	const char *t = "{\n  \"a\": [1, 2,],\n  \"b\": 3\n}";
	vt_json_doc *d = NULL;
	vt_json_error er;
	vt_errmsg e;
	assert_int_equal(vt_json_parse(t, strlen(t), NULL, &d, &er, &e), VT_EINVAL);
	assert_int_equal(er.line, 2);
	assert_int_equal(er.column, 14);
	assert_int_equal(er.offset, 15);
	assert_string_equal(er.reason, "expected a value");
	assert_string_equal(e.msg, "line 2, column 14 (byte 15): expected a value");

	t = "{\"k\":1,\n\"k\":2}";
	assert_int_equal(vt_json_parse(t, strlen(t), NULL, &d, &er, &e), VT_EINVAL);
	assert_int_equal(er.line, 2);
	assert_int_equal(er.column, 1);
	assert_string_equal(er.reason, "duplicate key in object");

	t = "[01]";
	assert_int_equal(vt_json_parse(t, strlen(t), NULL, &d, &er, NULL), VT_EINVAL);
	assert_int_equal(er.offset, 1);
	assert_string_equal(er.reason, "leading zeros are not allowed in numbers");
}

static void test_strings(void **state)
{
	(void)state;
	const char *t = "[\"a\\u00e9\\uD83D\\uDE00\\n\", \"plain\", \"\xe2\x82\xac\"]";
	vt_json_doc *d = parse_ok(t, strlen(t));
	const vt_json_value *r = vt_json_root(d);
	const char *s;
	size_t n;
	assert_int_equal(vt_json_get_string(vt_json_at(r, 0), &s, &n, NULL), 0);
	assert_int_equal(n, 1 + 2 + 4 + 1);
	assert_memory_equal(s, "a\xc3\xa9\xf0\x9f\x98\x80\n", n + 1);
	assert_int_equal(vt_json_get_string(vt_json_at(r, 1), &s, &n, NULL), 0);
	assert_string_equal(s, "plain");
	assert_int_equal(vt_json_get_string(vt_json_at(r, 2), &s, &n, NULL), 0);
	assert_string_equal(s, "\xe2\x82\xac");
	assert_null(vt_json_at(r, 3));
	vt_json_doc_free(d);
}

static void test_dup_keys_large(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	vt_json_writer w;
	for (int dup = 0; dup < 2; dup++) {
		vt_buf_reset(&b);
		vt_json_w_init(&w, &b);
		vt_json_w_obj_begin(&w);
		for (int i = 0; i < 500; i++) {
			char k[16];
			int n = snprintf(k, sizeof k, "k%d", dup && i == 499 ? 17 : i);
			vt_json_w_key(&w, k, (size_t)n);
			vt_json_w_int(&w, i);
		}
		vt_json_w_obj_end(&w);
		assert_int_equal(vt_json_w_finish(&w), 0);
		vt_json_doc *d = NULL;
		vt_json_error er;
		int rc = vt_json_parse(b.data, b.len, NULL, &d, &er, NULL);
		if (!dup) {
			assert_int_equal(rc, 0);
			assert_int_equal(vt_json_root(d)->count, 500);
			const vt_json_value *v = vt_json_get(vt_json_root(d), "k321");
			int64_t x;
			assert_int_equal(vt_json_get_int64(v, &x, NULL), 0);
			assert_int_equal(x, 321);
			assert_null(vt_json_get(vt_json_root(d), "k500"));
		} else {
			assert_int_equal(rc, VT_EINVAL);
			assert_string_equal(er.reason, "duplicate key in object");
			/* the later "k17" */
			assert_true(er.offset > b.len - 20);
		}
		vt_json_doc_free(d);
	}
	vt_buf_free(&b);
}

static void test_limits(void **state)
{
	(void)state;
	char t[2 * 1100 + 1];
	for (unsigned depth = 63; depth <= 66; depth++) {
		memset(t, '[', depth);
		memset(t + depth, ']', depth);
		int rc = parse_rc(t, 2 * depth);
		assert_int_equal(rc, depth <= 64 ? 0 : VT_ELIMIT);
	}
	vt_json_opts o = {.max_depth = 1000};
	memset(t, '[', 1000);
	memset(t + 1000, ']', 1000);
	vt_json_doc *d = NULL;
	assert_int_equal(vt_json_parse(t, 2000, &o, &d, NULL, NULL), 0);
	vt_json_doc_free(d);
	o.max_depth = 5000; /* capped at 1024 */
	memset(t, '[', 1100);
	memset(t + 1100, ']', 1100);
	assert_int_equal(vt_json_parse(t, 2200, &o, &d, NULL, NULL), VT_ELIMIT);
	/* 200,000 '[': refused, no stack overflow */
	char *deep = malloc(200000);
	memset(deep, '[', 200000);
	assert_int_equal(parse_rc(deep, 200000), VT_ELIMIT);
	free(deep);

	vt_json_opts s = {.max_bytes = 10};
	assert_int_equal(vt_json_parse("[1,2,3,4,5]", 11, &s, &d, NULL, NULL), VT_ELIMIT);
	assert_int_equal(vt_json_parse("[1,2,3,45]", 10, &s, &d, NULL, NULL), 0);
	vt_json_doc_free(d);
}

static void test_oom(void **state)
{
	(void)state;
	const char *t = "{\"a\":[1,2,3]}";
	vt_json_doc *d = NULL;
	vt_alloc_fail_at(1, 0);
	assert_int_equal(vt_json_parse(t, strlen(t), NULL, &d, NULL, NULL), VT_ENOMEM);
	vt_alloc_fail_at(0, 0);
	assert_null(d);
	/* a large object needs a second (temporary) allocation */
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	vt_json_writer w;
	vt_json_w_init(&w, &b);
	vt_json_w_obj_begin(&w);
	for (int i = 0; i < 40; i++) {
		char k[8];
		vt_json_w_key(&w, k, (size_t)snprintf(k, sizeof k, "%d", i));
		vt_json_w_null(&w);
	}
	vt_json_w_obj_end(&w);
	assert_int_equal(vt_json_w_finish(&w), 0);
	vt_alloc_fail_at(2, 0);
	assert_int_equal(vt_json_parse(b.data, b.len, NULL, &d, NULL, NULL), VT_ENOMEM);
	vt_alloc_fail_at(0, 0);
	vt_buf_free(&b);
}

/* ---- numbers ------------------------------------------------------------------- */

static int check_number(const char *t)
{
	vt_json_doc *d = NULL;
	int rc = vt_json_parse(t, strlen(t), NULL, &d, NULL, NULL);
	double want = strtod(t, NULL);
	if (isinf(want)) {
		if (rc != VT_ERANGE)
			fprintf(stderr, "%s: rc %d, want VT_ERANGE\n", t, rc);
		return rc == VT_ERANGE;
	}
	if (rc) {
		fprintf(stderr, "%s: rc %d\n", t, rc);
		return 0;
	}
	double got;
	assert_int_equal(vt_json_get_double(vt_json_root(d), &got, NULL), 0);
	vt_json_doc_free(d);
	if (memcmp(&got, &want, sizeof got)) {
		fprintf(stderr, "%s: got %.17g, strtod %.17g\n", t, got, want);
		return 0;
	}
	return 1;
}

static void random_number_text(char *t)
{
	char *o = t;
	if (rnd() & 1)
		*o++ = '-';
	int form = (int)(rnd() % 4);
	if (form == 0) { /* a random double at its natural precisions */
		uint64_t bits = rnd() & ~(UINT64_C(1) << 63);
		double x;
		memcpy(&x, &bits, sizeof x);
		if (!isfinite(x))
			x = 1.5;
		sprintf(o, "%.*e", (int)(rnd() % 19), x);
		return;
	}
	if (form == 1) { /* a random float printed as %.9g (vectors) */
		float f = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2 - 1);
		sprintf(o, "%.9g", (double)f);
		if (o[0] == '-')
			memmove(o, o + 1, strlen(o));
		return;
	}
	/* random digits, point and exponent */
	int nd = 1 + (int)(rnd() % (form == 2 ? 19 : 40));
	int point = (int)(rnd() % (unsigned)(nd + 1));
	for (int i = 0; i < nd; i++) {
		if (i == point && i > 0)
			*o++ = '.';
		int dgt = (int)(rnd() % 10);
		if (i == 0 && nd > 1 && point != 1 && dgt == 0)
			dgt = 1 + (int)(rnd() % 9);
		if (i == 0 && point == 1 && rnd() % 4 == 0)
			dgt = 0;
		*o++ = (char)('0' + dgt);
	}
	if (rnd() % 2) {
		int range = form == 2 ? 30 : 700;
		o += sprintf(o, "e%d", (int)(rnd() % (unsigned)(2 * range + 1)) - range);
	}
	*o = '\0';
}

static void test_numbers_edge(void **state)
{
	(void)state;
	static const char *const edge[] = {
		"0", "-0", "0.0", "1", "9007199254740991", "9007199254740992",
		"9007199254740993", "9007199254740995", "18446744073709551615",
		"18446744073709551616", "1e22", "1e23", "9999999999999999e22",
		"123456789012345678e-5", "0.1", "0.2", "0.3", "1.7976931348623157e308",
		"1.7976931348623158e308", "1.7976931348623159e308", "2.2250738585072011e-308",
		"2.2250738585072012e-308", "2.2250738585072014e-308", "4.9406564584124654e-324",
		"2.4703282292062327e-324", "2.4703282292062328e-324", "1e-324", "5e-324",
		"1e-400", "1e308", "1e309", "-1e309", "8.988465674311579e307",
		"7.205759403792794e16", "3.4028234663852886e38", "1.401298464324817e-45",
		"0.000001", "1e-22", "1e-23", "4503599627370496.5", "4503599627370497.5",
		"9007199254740993.0000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
		"1.00000000000000011102230246251565404236316680908203124",
		"1.00000000000000011102230246251565404236316680908203126",
		"0.50000000000000011102230246251565404236316680908203125",
		"100000000000000000000000", "123.456e+2", "1E0", "0e99999999999",
		"0.00000000000000000000000000000000000000000000000000001e50",
	};
	for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
		assert_true(check_number(edge[i]));
}

static void test_numbers_random(void **state)
{
	(void)state;
	char t[128];
	int n = getenv("VT_JSON_QUICK") ? 100000 : 1000000;
	for (int i = 0; i < n; i++) {
		random_number_text(t);
		if (!check_number(t))
			fail_msg("number %s", t);
	}
}

static void test_integers(void **state)
{
	(void)state;
	const char *t = "[9223372036854775807,-9223372036854775808,9223372036854775808,"
			"18446744073709551615,18446744073709551616,-1,1.0,1e2,12]";
	vt_json_doc *d = parse_ok(t, strlen(t));
	const vt_json_value *r = vt_json_root(d);
	int64_t i;
	uint64_t u;
	vt_errmsg e;
	assert_int_equal(vt_json_get_int64(vt_json_at(r, 0), &i, NULL), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(vt_json_get_int64(vt_json_at(r, 1), &i, NULL), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(vt_json_get_int64(vt_json_at(r, 2), &i, &e), VT_ERANGE);
	assert_string_equal(e.msg, "[2]: 9223372036854775808 is out of int64 range");
	assert_int_equal(vt_json_get_uint64(vt_json_at(r, 3), &u, NULL), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(vt_json_get_uint64(vt_json_at(r, 4), &u, NULL), VT_ERANGE);
	assert_int_equal(vt_json_get_uint64(vt_json_at(r, 5), &u, NULL), VT_ERANGE);
	assert_int_equal(vt_json_get_int64(vt_json_at(r, 6), &i, &e), VT_EINVAL);
	assert_string_equal(e.msg, "[6]: expected an integer, got a number");
	assert_int_equal(vt_json_get_int64(vt_json_at(r, 7), &i, NULL), VT_EINVAL);
	assert_int_equal(vt_json_get_uint64(vt_json_at(r, 8), &u, NULL), 0);
	assert_true(u == 12);
	vt_json_doc_free(d);
}

/* ---- floats -------------------------------------------------------------------- */

/* The shortest %.{p}e (p = 1..9) that reads back as f: its digit count. */
static int ref_digits(float f)
{
	char t[48];
	for (int p = 1; p <= 9; p++) {
		snprintf(t, sizeof t, "%.*e", p - 1, (double)f);
		if (strtof(t, NULL) == f && (float)strtod(t, NULL) == f)
			return p;
	}
	return 99;
}

static int count_digits(const char *s)
{
	/* significant digits: strip sign, leading zeros, the exponent */
	int n = 0, started = 0, trailing = 0;
	for (; *s && *s != 'e'; s++) {
		if (*s < '0' || *s > '9')
			continue;
		if (*s != '0')
			started = 1;
		if (!started)
			continue;
		n++;
		trailing = *s == '0' ? trailing + 1 : 0;
	}
	return n - trailing > 0 ? n - trailing : 1;
}

static void test_float_writer(void **state)
{
	(void)state;
	char buf[40];
	static const float edge[] = {
		0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 0.1f, 1e-7f, 1e-6f, 1e9f, 123456789.0f,
		16777216.0f, 16777217.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1.4e-45f, 1e-40f,
		3.4028235e38f, 0.3f, 2.5f, 1e10f, 1e-10f, 9.999999e-7f, 1e38f, 7e-45f,
	};
	for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
		size_t n = vt_json_fmt_float(buf, edge[i]);
		buf[n] = '\0';
		assert_true(n > 0 && n < 24);
		assert_true(strtof(buf, NULL) == edge[i]);
		assert_true(signbit(strtof(buf, NULL)) == signbit(edge[i]));
	}
	assert_int_equal(vt_json_fmt_float(buf, 0.5f), 3);
	assert_memory_equal(buf, "0.5", 3);
	assert_int_equal(vt_json_fmt_float(buf, 1e-7f), 4);
	assert_memory_equal(buf, "1e-7", 4);
	assert_int_equal(vt_json_fmt_float(buf, 1e10f), 4);
	assert_memory_equal(buf, "1e10", 4);
	assert_int_equal(vt_json_fmt_float(buf, 100.0f), 3);
	assert_memory_equal(buf, "100", 3);
	assert_int_equal(vt_json_fmt_float(buf, NAN), 0);
	assert_int_equal(vt_json_fmt_float(buf, INFINITY), 0);

	/* every power of two and its neighbours (the asymmetric intervals),
	 * and the subnormal range's edges */
	for (uint32_t ex = 0; ex < 255; ex++) {
		for (int dm = -2; dm <= 2; dm++) {
			uint32_t bits = ex << 23;
			if (dm < 0 && bits < (uint32_t)-dm)
				continue;
			bits = (uint32_t)((int64_t)bits + dm);
			for (int sign = 0; sign < 2; sign++) {
				float f;
				uint32_t b = bits | (uint32_t)sign << 31;
				memcpy(&f, &b, sizeof f);
				if (!isfinite(f) || f == 0)
					continue;
				size_t k = vt_json_fmt_float(buf, f);
				buf[k] = '\0';
				if (strtof(buf, NULL) != f || (float)strtod(buf, NULL) != f)
					fail_msg("float %a wrote %s", (double)f, buf);
				if (count_digits(buf) != ref_digits(f))
					fail_msg("float %a wrote %s, %d digits suffice", (double)f,
						 buf, ref_digits(f));
			}
		}
	}

	int n = getenv("VT_JSON_QUICK") ? 100000 : 1000000;
	int longer = 0;
	for (int i = 0; i < n; i++) {
		uint32_t bits = (uint32_t)rnd();
		if (i & 1) /* half of them in the range of embeddings */
			bits = (bits & 0x807FFFFFu) | (uint32_t)(100 + rnd() % 27) << 23;
		float f;
		memcpy(&f, &bits, sizeof f);
		if (!isfinite(f))
			continue;
		size_t k = vt_json_fmt_float(buf, f);
		buf[k] = '\0';
		if (strtof(buf, NULL) != f || (float)strtod(buf, NULL) != f)
			fail_msg("float %a wrote %s", (double)f, buf);
		/* the JSON reader agrees too */
		vt_json_doc *d = parse_ok(buf, k);
		float g;
		assert_int_equal(vt_json_get_float(vt_json_root(d), &g, NULL), 0);
		assert_true(g == f);
		vt_json_doc_free(d);
		if (f != 0) {
			int want = ref_digits(f), got = count_digits(buf);
			assert_true(got >= want);
			longer += got > want;
		}
	}
	/* shortest as the %.{1..9}e search (the writer checks ties exactly) */
	fprintf(stderr, "float writer: %d of %d not shortest\n", longer, n);
	assert_int_equal(longer, 0);
}

static void test_double_writer(void **state)
{
	(void)state;
	char buf[48];
	for (int i = 0; i < 200000; i++) {
		uint64_t bits = rnd();
		double x;
		memcpy(&x, &bits, sizeof x);
		if (!isfinite(x))
			continue;
		size_t k = vt_json_fmt_double(buf, x);
		buf[k] = '\0';
		double y = strtod(buf, NULL);
		if (memcmp(&x, &y, sizeof x))
			fail_msg("double %a wrote %s", x, buf);
		assert_int_equal(parse_rc(buf, k), 0);
	}
	size_t k = vt_json_fmt_double(buf, 0.1);
	assert_int_equal(k, 3);
	assert_memory_equal(buf, "0.1", 3);
	k = vt_json_fmt_double(buf, 1e300);
	assert_memory_equal(buf, "1e300", k);
}

/* ---- access -------------------------------------------------------------------- */

static void test_getters_and_paths(void **state)
{
	(void)state;
	const char *t = "{\"points\":[{},{},{},{\"id\":\"p3\",\"vector\":[0,1,2,3,4,5,6,\"x\",8],"
			"\"payload\": {\"a\" : [1, {\"b\":2}] },\"odd key\":{\"q\":[true]}}],"
			"\"k\":10,\"big\":[1,2e39],\"nested\":[[1,2],[3]]}";
	vt_json_doc *d = parse_ok(t, strlen(t));
	const vt_json_value *r = vt_json_root(d);
	const vt_json_value *p3 = vt_json_at(vt_json_get(r, "points"), 3);
	assert_non_null(p3);
	const vt_json_value *vec = vt_json_get(p3, "vector");
	float f[16];
	size_t n = 0;
	vt_errmsg e;
	assert_int_equal(vt_json_get_floats(vec, f, 16, &n, &e), VT_EINVAL);
	assert_string_equal(e.msg, "points[3].vector[7]: expected a number, got a string");
	assert_int_equal(vt_json_get_floats(vec, f, 4, &n, &e), VT_ELIMIT);
	assert_int_equal(n, 9);
	assert_string_equal(e.msg, "points[3].vector: 9 numbers, at most 4 allowed");
	assert_int_equal(vt_json_get_floats(vt_json_get(r, "big"), f, 16, &n, &e), VT_ERANGE);
	assert_string_equal(e.msg, "big[1]: 2e39 is out of float range");
	assert_int_equal(vt_json_get_floats(vt_json_get(r, "k"), f, 16, &n, &e), VT_EINVAL);
	assert_string_equal(e.msg, "k: expected an array of numbers, got a number");

	const vt_json_value *q = vt_json_at(vt_json_get(vt_json_get(p3, "odd key"), "q"), 0);
	double dd;
	assert_int_equal(vt_json_get_double(q, &dd, &e), VT_EINVAL);
	assert_string_equal(e.msg, "points[3][\"odd key\"].q[0]: expected a number, got a boolean");
	int b;
	assert_int_equal(vt_json_get_bool(q, &b, NULL), 0);
	assert_int_equal(b, 1);
	const char *s;
	assert_int_equal(vt_json_get_string(r, &s, NULL, &e), VT_EINVAL);
	assert_string_equal(e.msg, "$: expected a string, got an object");
	assert_int_equal(vt_json_get_string(vt_json_get(p3, "id"), &s, NULL, NULL), 0);
	assert_string_equal(s, "p3");
	const vt_json_value *n3 = vt_json_at(vt_json_at(vt_json_get(r, "nested"), 1), 0);
	char path[64];
	assert_string_equal(vt_json_path(n3, path, sizeof path), "nested[1][0]");
	assert_string_equal(vt_json_path(n3, path, 5), "nest");

	/* raw spans */
	size_t rl;
	const char *raw = vt_json_raw(vt_json_get(p3, "payload"), &rl);
	assert_int_equal(rl, strlen("{\"a\" : [1, {\"b\":2}] }"));
	assert_memory_equal(raw, "{\"a\" : [1, {\"b\":2}] }", rl);
	raw = vt_json_raw(vt_json_get(p3, "id"), &rl);
	assert_memory_equal(raw, "\"p3\"", rl);
	raw = vt_json_raw(r, &rl);
	assert_int_equal(rl, strlen(t));

	/* iteration */
	vt_json_iter it;
	const vt_json_value *k, *v;
	const char *names[] = {"points", "k", "big", "nested"};
	int i = 0;
	vt_json_iter_init(&it, r);
	while ((v = vt_json_iter_next(&it, &k)))
		assert_string_equal(k->u.str, names[i++]);
	assert_int_equal(i, 4);
	vt_json_iter_init(&it, vt_json_get(r, "nested"));
	i = 0;
	while ((v = vt_json_iter_next(&it, &k))) {
		assert_null(k);
		assert_int_equal(vt_json_typeof(v), VT_JSON_ARRAY);
		i++;
	}
	assert_int_equal(i, 2);
	vt_json_iter_init(&it, vt_json_get(r, "k"));
	assert_null(vt_json_iter_next(&it, &k));

	assert_int_equal(vt_json_get_floats(vt_json_at(vt_json_get(r, "nested"), 0), f, 2, &n,
					    NULL), 0);
	assert_int_equal(n, 2);
	assert_true(f[0] == 1.0f && f[1] == 2.0f);
	vt_json_doc_free(d);
}

/* ---- writer -------------------------------------------------------------------- */

static void test_writer(void **state)
{
	(void)state;
	vt_buf b;
	vt_buf_init(&b, 1 << 16);
	vt_json_writer w;
	vt_json_w_init(&w, &b);
	vt_json_w_obj_begin(&w);
	vt_json_w_key(&w, "id", 2);
	vt_json_w_str(&w, "a\"b\\c\n\x01\x1f\xc3\xa9/", 11);
	vt_json_w_key(&w, "n", 1);
	vt_json_w_int(&w, INT64_MIN);
	vt_json_w_key(&w, "u", 1);
	vt_json_w_uint(&w, UINT64_MAX);
	vt_json_w_key(&w, "d", 1);
	vt_json_w_double(&w, 0.25);
	vt_json_w_key(&w, "v", 1);
	float fv[3] = {0.1f, -2.0f, 1e-8f};
	vt_json_w_floats(&w, fv, 3);
	vt_json_w_key(&w, "e", 1);
	vt_json_w_floats(&w, fv, 0);
	vt_json_w_key(&w, "p", 1);
	vt_json_w_raw(&w, "{\"x\": [1, 2]}", 13);
	vt_json_w_key(&w, "l", 1);
	vt_json_w_arr_begin(&w);
	vt_json_w_null(&w);
	vt_json_w_bool(&w, 1);
	vt_json_w_bool(&w, 0);
	vt_json_w_float(&w, 3.0f);
	vt_json_w_arr_end(&w);
	vt_json_w_obj_end(&w);
	assert_int_equal(vt_json_w_finish(&w), 0);
	const char *want = "{\"id\":\"a\\\"b\\\\c\\n\\u0001\\u001f\xc3\xa9/\","
			   "\"n\":-9223372036854775808,\"u\":18446744073709551615,\"d\":0.25,"
			   "\"v\":[0.1,-2,1e-8],\"e\":[],\"p\":{\"x\": [1, 2]},"
			   "\"l\":[null,true,false,3]}";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	vt_json_doc_free(parse_ok((const char *)b.data, b.len));

	/* misuse and bad input are sticky errors */
	vt_buf_reset(&b);
	vt_json_w_init(&w, &b);
	vt_json_w_obj_begin(&w);
	vt_json_w_int(&w, 1); /* value without key */
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_str(&w, "\xc0\xaf", 2);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_double(&w, NAN);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_arr_begin(&w);
	vt_json_w_obj_end(&w);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_arr_begin(&w);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_int(&w, 1);
	vt_json_w_int(&w, 2);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	vt_json_w_key(&w, "k", 1);
	assert_int_equal(vt_json_w_finish(&w), VT_EINVAL);
	vt_json_w_init(&w, &b);
	for (int i = 0; i < VT_JSON_W_MAX_DEPTH + 1; i++)
		vt_json_w_arr_begin(&w);
	assert_int_equal(vt_json_w_finish(&w), VT_ELIMIT);
	vt_buf_free(&b);

	/* the buffer's cap */
	vt_buf small;
	vt_buf_init(&small, 8);
	vt_json_w_init(&w, &small);
	vt_json_w_str(&w, "0123456789", 10);
	assert_int_equal(vt_json_w_finish(&w), VT_ELIMIT);
	vt_buf_free(&small);
}

static void test_roundtrip_value(void **state)
{
	(void)state;
	const char *t = "{\"a\":[1,-2,3.5,1e300,-0,18446744073709551616,\"x\\u00e9\\n\"],"
			"\"b\":{\"c\":null,\"d\":[true,false,{}],\"e\":[]},\"\\u0001\":0.1}";
	vt_json_doc *d = parse_ok(t, strlen(t));
	vt_buf b;
	vt_buf_init(&b, 1 << 16);
	vt_json_writer w;
	vt_json_w_init(&w, &b);
	vt_json_w_value(&w, vt_json_root(d));
	assert_int_equal(vt_json_w_finish(&w), 0);
	const char *want = "{\"a\":[1,-2,3.5,1e300,-0,1.8446744073709552e19,\"x\xc3\xa9\\n\"],"
			   "\"b\":{\"c\":null,\"d\":[true,false,{}],\"e\":[]},\"\\u0001\":0.1}";
	if (b.len != strlen(want) || memcmp(b.data, want, b.len))
		fprintf(stderr, "got %.*s\n", (int)b.len, b.data);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	vt_json_doc_free(d);
	vt_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_error_position),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_dup_keys_large),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_numbers_edge),
		cmocka_unit_test(test_numbers_random),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_float_writer),
		cmocka_unit_test(test_double_writer),
		cmocka_unit_test(test_getters_and_paths),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_roundtrip_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
