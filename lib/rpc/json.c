/* json.c: the strict JSON reader: one recursive-descent pass into a value
 * array sized by a pre-count, typed getters with path messages. Not the
 * writer (json_write.c). */
#include <assert.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/alloc.h"
#include "rpc/json.h"
#include "rpc/json_int.h"

struct vt_json_doc {
	const char *src; /* copy of the input, NUL-terminated */
	size_t len;
	uint32_t nvals, maxvals;
	vt_json_value vals[]; /* then: src copy, then the string area */
};

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define HARD_MAX_BYTES ((size_t)2 << 30)
#define DEFAULT_MAX_DEPTH 64u
#define HARD_MAX_DEPTH 1024u

/* ---- the "C" locale for strtod ------------------------------------------- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

double vt__json_strtod(const char *s, char **end)
{
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale)
		return strtod_l(s, end, c_locale);
	return strtod(s, end);
}

/* Exact powers of ten in double: 10^0..10^22 (Clinger's fast path). */
const double vt__json_pow10[23] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* ---- UTF-8 ------------------------------------------------------------------- */

int vt__json_utf8_len(const unsigned char *s, const unsigned char *end)
{
	unsigned c = s[0];
	size_t left = (size_t)(end - s);
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		if (left < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		if (left < 3)
			return 0;
		unsigned lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
		if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (left < 4)
			return 0;
		unsigned lo = 0x80, hi = 0xBF;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
		if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/* ---- parser ------------------------------------------------------------------ */

typedef struct parser {
	const char *src; /* NUL-terminated copy */
	const char *end;
	vt_json_doc *d;
	char *sp; /* next free byte of the string area */
	unsigned depth, max_depth;
	/* the error */
	int code;
	const char *at;
	const char *reason;
} parser;

static int fail(parser *p, int code, const char *at, const char *reason)
{
	p->code = code;
	p->at = at;
	p->reason = reason;
	return code;
}

static inline const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
		s++;
	return s;
}

static vt_json_value *new_value(parser *p, int type, const char *at)
{
	vt_json_doc *d = p->d;
	if (d->nvals >= d->maxvals) {
		/* The pre-count bounds the values of any valid prefix. */
		fail(p, VT_EINTERNAL, at, "internal error: value count");
		return NULL;
	}
	vt_json_value *v = &d->vals[d->nvals];
	v->type = (uint8_t)type;
	v->flags = 0;
	v->pad_ = 0;
	v->count = 0;
	v->off = (uint32_t)(at - p->src);
	v->len = 0;
	v->tree = 1;
	v->idx = d->nvals++;
	v->u.num = 0;
	return v;
}

static inline int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)s[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* 1 for bytes a string copies without a second look. */
static const uint8_t plain[256] = {
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
	R16(0), R16(0),
	/* 0x20..0x2F: '"' is 0x22 */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	R16(1), R16(1),
	/* 0x50..0x5F: '\\' is 0x5C */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	R16(1), R16(1),
	R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
#undef R16
};

static int parse_string(parser *p, const char **sp, vt_json_value **out)
{
	const char *s = *sp;
	vt_json_value *v = new_value(p, VT_JSON_STRING, s);
	if (!v)
		return p->code;
	char *o = p->sp;
	v->u.str = o;
	s++;
	for (;;) {
		while (plain[(unsigned char)*s])
			*o++ = *s++;
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			break;
		if (c == '\\') {
			const char *esc = s;
			s++;
			switch (*s) {
			case '"': *o++ = '"'; s++; continue;
			case '\\': *o++ = '\\'; s++; continue;
			case '/': *o++ = '/'; s++; continue;
			case 'b': *o++ = '\b'; s++; continue;
			case 'f': *o++ = '\f'; s++; continue;
			case 'n': *o++ = '\n'; s++; continue;
			case 'r': *o++ = '\r'; s++; continue;
			case 't': *o++ = '\t'; s++; continue;
			case 'u': break;
			default:
				return fail(p, VT_EINVAL, esc, "invalid escape in string");
			}
			int cp = hex4(s + 1);
			if (cp < 0)
				return fail(p, VT_EINVAL, esc, "\\u needs four hex digits");
			s += 5;
			if (cp == 0)
				return fail(p, VT_EINVAL, esc,
					    "\\u0000 is not allowed in strings");
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return fail(p, VT_EINVAL, esc,
					    "lone low surrogate in \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				int lo = -1;
				if (s[0] == '\\' && s[1] == 'u')
					lo = hex4(s + 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return fail(p, VT_EINVAL, esc,
						    "lone high surrogate in \\u escape");
				s += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (cp < 0x80) {
				*o++ = (char)cp;
			} else if (cp < 0x800) {
				*o++ = (char)(0xC0 | cp >> 6);
				*o++ = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				*o++ = (char)(0xE0 | cp >> 12);
				*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
				*o++ = (char)(0x80 | (cp & 0x3F));
			} else {
				*o++ = (char)(0xF0 | cp >> 18);
				*o++ = (char)(0x80 | (cp >> 12 & 0x3F));
				*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
				*o++ = (char)(0x80 | (cp & 0x3F));
			}
			continue;
		}
		if (c < 0x20) {
			if (s >= p->end)
				return fail(p, VT_EINVAL, *sp, "unterminated string");
			return fail(p, VT_EINVAL, s,
				    "control character in string (escape it)");
		}
		int n = vt__json_utf8_len((const unsigned char *)s,
					  (const unsigned char *)p->end);
		if (!n)
			return fail(p, VT_EINVAL, s, "invalid UTF-8 in string");
		memcpy(o, s, (size_t)n);
		o += n;
		s += n;
	}
	s++;
	v->count = (uint32_t)(o - v->u.str);
	*o++ = '\0';
	p->sp = o;
	v->len = (uint32_t)(s - *sp);
	*sp = s;
	*out = v;
	return 0;
}

static inline int is_digit(int c)
{
	return (unsigned)(c - '0') < 10;
}

/* 8 ASCII digits at s as a number, or -1 if they are not all digits.
 * Reads 8 bytes: the arena pads the source copy for it. */
static inline int64_t eight_digits(const char *s)
{
	uint64_t v;
	memcpy(&v, s, 8);
	if ((v & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull ||
	    ((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull)
		return -1;
	v -= 0x3030303030303030ull;
	/* little endian: the first digit is the low byte */
	v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFull;
	v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFull;
	v = (v * 10000 + (v >> 32)) & 0xFFFFFFFFull;
	return (int64_t)v;
}

#define M_SAFE UINT64_C(1000000000000000000) /* m * 10 + 9 fits below this */
#define M_SAFE8 UINT64_C(100000000000)       /* m * 1e8 + 99999999 fits */

int vt__json_scan_number(const char *s, const char **end_out, double *out, int *is_int,
			 const char **err_at, const char **reason)
{
	const char *start = s;
	int neg = 0;
	uint64_t m = 0;
	int slow = 0; /* m lost nonzero digits */
	int64_t ex = 0;
	int64_t e8;
	*is_int = 1;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s == '0') {
		s++;
		if (is_digit(*s)) {
			*err_at = s - 1;
			*reason = "leading zeros are not allowed in numbers";
			return VT_EINVAL;
		}
	} else if (is_digit(*s)) {
		while (m < M_SAFE8 && (e8 = eight_digits(s)) >= 0) {
			m = m * 100000000 + (uint64_t)e8;
			s += 8;
		}
		for (; is_digit(*s); s++) {
			if (m < M_SAFE) {
				m = m * 10 + (uint64_t)(*s - '0');
			} else {
				slow = 1;
				ex++;
			}
		}
	} else {
		*err_at = s;
		*reason = "expected a digit in number";
		return VT_EINVAL;
	}
	if (*s == '.') {
		s++;
		*is_int = 0;
		if (!is_digit(*s)) {
			*err_at = s;
			*reason = "expected a digit after '.'";
			return VT_EINVAL;
		}
		while (m < M_SAFE8 && (e8 = eight_digits(s)) >= 0) {
			m = m * 100000000 + (uint64_t)e8;
			ex -= 8;
			s += 8;
		}
		for (; is_digit(*s); s++) {
			if (m < M_SAFE) {
				m = m * 10 + (uint64_t)(*s - '0');
				ex--;
			} else if (*s != '0') {
				slow = 1;
			}
		}
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		*is_int = 0;
		int eneg = 0;
		if (*s == '+' || *s == '-')
			eneg = *s++ == '-';
		if (!is_digit(*s)) {
			*err_at = s;
			*reason = "expected a digit in exponent";
			return VT_EINVAL;
		}
		int64_t e = 0;
		while (is_digit(*s)) {
			if (e < 1000000)
				e = e * 10 + (*s - '0');
			s++;
		}
		ex += eneg ? -e : e;
	}
	*end_out = s;
	double d;
	if (m == 0 && !slow) {
		d = 0.0;
	} else if (!slow && ex == 0) {
		d = (double)m; /* uint64 -> double rounds correctly */
#if FLT_EVAL_METHOD == 0
	} else if (!slow && m <= (UINT64_C(1) << 53) && ex >= -22 && ex <= 22) {
		/* Clinger: both operands exact, one correctly rounded op. */
		d = ex < 0 ? (double)m / vt__json_pow10[-ex] : (double)m * vt__json_pow10[ex];
#endif
	} else {
		/* The token is followed by a byte strtod stops at. */
		d = vt__json_strtod(start, NULL);
		if (isinf(d)) {
			*err_at = start;
			*reason = "number out of range (overflows a double)";
			return VT_ERANGE;
		}
		*out = d;
		return 0;
	}
	*out = neg ? -d : d;
	return 0;
}

static int parse_value(parser *p, const char **sp);

static int parse_number(parser *p, const char **sp)
{
	const char *s = *sp;
	vt_json_value *v = new_value(p, VT_JSON_NUMBER, s);
	if (!v)
		return p->code;
	int is_int;
	const char *end, *at = NULL, *reason = NULL;
	int rc = vt__json_scan_number(s, &end, &v->u.num, &is_int, &at, &reason);
	if (rc)
		return fail(p, rc, at, reason);
	v->flags = is_int ? VT__JSON_F_INT : 0;
	v->len = (uint32_t)(end - s);
	*sp = end;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const vt_json_value *x = *(const vt_json_value *const *)a;
	const vt_json_value *y = *(const vt_json_value *const *)b;
	if (x->count != y->count)
		return x->count < y->count ? -1 : 1;
	int c = memcmp(x->u.str, y->u.str, x->count);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int check_dup_keys(parser *p, vt_json_value *obj)
{
	uint32_t n = obj->count;
	if (n < 2)
		return 0;
	const vt_json_value *end = obj + obj->tree;
	if (n <= 16) {
		const vt_json_value *keys[16];
		uint32_t i = 0;
		for (const vt_json_value *k = obj + 1; k < end; k += 1 + k[1].tree)
			keys[i++] = k;
		for (i = 1; i < n; i++)
			for (uint32_t j = 0; j < i; j++)
				if (keys[i]->count == keys[j]->count &&
				    !memcmp(keys[i]->u.str, keys[j]->u.str, keys[i]->count))
					return fail(p, VT_EINVAL, p->src + keys[i]->off,
						    "duplicate key in object");
		return 0;
	}
	const vt_json_value **keys = vt_malloc(n * sizeof *keys);
	if (!keys)
		return fail(p, VT_ENOMEM, p->src + obj->off, "out of memory");
	uint32_t i = 0;
	for (const vt_json_value *k = obj + 1; k < end; k += 1 + k[1].tree)
		keys[i++] = k;
	qsort(keys, n, sizeof *keys, key_cmp);
	const vt_json_value *dup = NULL;
	for (i = 1; i < n; i++)
		if (keys[i]->count == keys[i - 1]->count &&
		    !memcmp(keys[i]->u.str, keys[i - 1]->u.str, keys[i]->count)) {
			/* the later of the pair; the earliest such in the text */
			if (!dup || keys[i]->idx < dup->idx)
				dup = keys[i];
		}
	vt_free(keys);
	if (dup)
		return fail(p, VT_EINVAL, p->src + dup->off, "duplicate key in object");
	return 0;
}

static int parse_container(parser *p, const char **sp, int is_obj)
{
	const char *s = *sp;
	vt_json_value *v = new_value(p, is_obj ? VT_JSON_OBJECT : VT_JSON_ARRAY, s);
	if (!v)
		return p->code;
	if (++p->depth > p->max_depth)
		return fail(p, VT_ELIMIT, s, "nesting too deep");
	char close = is_obj ? '}' : ']';
	uint32_t count = 0;
	int rc;
	s = skip_ws(s + 1);
	if (*s != close) {
		for (;;) {
			if (is_obj) {
				if (*s != '"')
					return fail(p, VT_EINVAL, s,
						    "expected a string key");
				vt_json_value *k;
				if ((rc = parse_string(p, &s, &k)))
					return rc;
				s = skip_ws(s);
				if (*s != ':')
					return fail(p, VT_EINVAL, s,
						    "expected ':' after object key");
				s = skip_ws(s + 1);
			}
			if ((rc = parse_value(p, &s)))
				return rc;
			count++;
			s = skip_ws(s);
			if (*s == ',') {
				s = skip_ws(s + 1);
				continue;
			}
			if (*s == close)
				break;
			return fail(p, VT_EINVAL, s,
				    is_obj ? "expected ',' or '}' in object"
					   : "expected ',' or ']' in array");
		}
	}
	s++;
	p->depth--;
	/* v may be used again: vals never move */
	v->count = count;
	v->tree = p->d->nvals - v->idx;
	v->len = (uint32_t)(s - *sp);
	*sp = s;
	if (is_obj && (rc = check_dup_keys(p, v)))
		return rc;
	return 0;
}

static int parse_literal(parser *p, const char **sp, const char *word, size_t n, int type)
{
	const char *s = *sp;
	if ((size_t)(p->end - s) < n || memcmp(s, word, n))
		return fail(p, VT_EINVAL, s, "expected a value");
	vt_json_value *v = new_value(p, type, s);
	if (!v)
		return p->code;
	v->len = (uint32_t)n;
	*sp = s + n;
	return 0;
}

static int parse_value(parser *p, const char **sp)
{
	vt_json_value *k;
	switch (**sp) {
	case '{':
		return parse_container(p, sp, 1);
	case '[':
		return parse_container(p, sp, 0);
	case '"':
		return parse_string(p, sp, &k);
	case 't':
		return parse_literal(p, sp, "true", 4, VT_JSON_TRUE);
	case 'f':
		return parse_literal(p, sp, "false", 5, VT_JSON_FALSE);
	case 'n':
		return parse_literal(p, sp, "null", 4, VT_JSON_NULL);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return parse_number(p, sp);
	default:
		if (*sp >= p->end)
			return fail(p, VT_EINVAL, *sp, "unexpected end of input, expected a value");
		return fail(p, VT_EINVAL, *sp, "expected a value");
	}
}

/* Upper bound on the values of any valid prefix: each value but the root
 * follows its own '[', '{', ',' or ':'. ('[' | 0x20 is '{'.) */
static size_t count_structural(const unsigned char *s, size_t len)
{
	size_t n = 1, i = 0;
#ifdef __SSE2__
	/* Byte lanes count down from 0 by compare masks (-1 per hit) for at
	 * most 255 blocks, then _mm_sad_epu8 sums them. */
	const __m128i comma = _mm_set1_epi8(','), colon = _mm_set1_epi8(':');
	const __m128i brace = _mm_set1_epi8('{'), low = _mm_set1_epi8(0x20);
	while (len - i >= 16) {
		__m128i acc = _mm_setzero_si128();
		size_t blocks = (len - i) / 16;
		if (blocks > 255)
			blocks = 255;
		for (size_t b = 0; b < blocks; b++, i += 16) {
			__m128i c = _mm_loadu_si128((const __m128i *)(s + i));
			__m128i hit = _mm_or_si128(
				_mm_or_si128(_mm_cmpeq_epi8(c, comma), _mm_cmpeq_epi8(c, colon)),
				_mm_cmpeq_epi8(_mm_or_si128(c, low), brace));
			acc = _mm_sub_epi8(acc, hit);
		}
		__m128i sum = _mm_sad_epu8(acc, _mm_setzero_si128());
		n += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
	}
#endif
	for (; i < len; i++) {
		unsigned c = s[i];
		n += (c == ',') | (c == ':') | ((c | 0x20) == '{');
	}
	return n;
}

static void locate(const char *src, size_t off, vt_json_error *err)
{
	size_t line = 1, col = 1;
	for (size_t i = 0; i < off; i++) {
		if (src[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	err->offset = off;
	err->line = line;
	err->column = col;
}

int vt_json_parse(const void *src, size_t len, const vt_json_opts *opts,
		  vt_json_doc **out, vt_json_error *err, vt_errmsg *e)
{
	size_t max_bytes = opts && opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
	unsigned max_depth = opts && opts->max_depth ? opts->max_depth : DEFAULT_MAX_DEPTH;
	if (max_bytes > HARD_MAX_BYTES)
		max_bytes = HARD_MAX_BYTES;
	if (max_depth > HARD_MAX_DEPTH)
		max_depth = HARD_MAX_DEPTH;
	*out = NULL;
	if (err) {
		err->offset = 0;
		err->line = err->column = 1;
		err->reason = NULL;
	}
	if (len > max_bytes) {
		if (err)
			err->reason = "document too large";
		return vt_errmsg_set(e, VT_ELIMIT,
				     "JSON document of %zu bytes exceeds the limit of %zu",
				     len, max_bytes);
	}
	if (len && !src)
		return vt_errmsg_set(e, VT_EINVAL, "JSON: NULL input");
	size_t nv = count_structural(src, len);
	/* + 8: eight_digits() may read 7 bytes past the copy's NUL */
	size_t bytes = sizeof(vt_json_doc) + nv * sizeof(vt_json_value) + 2 * (len + 1) + 8;
	vt_json_doc *d = vt_malloc(bytes);
	if (!d) {
		if (err)
			err->reason = "out of memory";
		return vt_errmsg_set(e, VT_ENOMEM, "JSON: out of memory (%zu bytes)", bytes);
	}
	char *copy = (char *)(d->vals + nv);
	if (len)
		memcpy(copy, src, len);
	copy[len] = '\0';
	d->src = copy;
	d->len = len;
	d->nvals = 0;
	d->maxvals = (uint32_t)nv;

	/* the padding after the NUL is for eight_digits(); strings follow */
	memset(copy + len + 1, 0, 8);
	parser p = {.src = copy, .end = copy + len, .d = d, .sp = copy + len + 1 + 8,
		    .max_depth = max_depth};
	const char *s = skip_ws(copy);
	int rc = parse_value(&p, &s);
	if (!rc) {
		s = skip_ws(s);
		if (s != p.end)
			rc = fail(&p, VT_EINVAL, s, "unexpected data after the JSON value");
	}
	if (rc) {
		vt_json_error tmp;
		vt_json_error *er = err ? err : &tmp;
		locate(copy, (size_t)(p.at - copy), er);
		er->reason = p.reason;
		vt_errmsg_set(e, rc, "line %zu, column %zu (byte %zu): %s", er->line,
			      er->column, er->offset, p.reason);
		vt_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void vt_json_doc_free(vt_json_doc *d)
{
	vt_free(d);
}

const vt_json_value *vt_json_root(const vt_json_doc *d)
{
	return &d->vals[0];
}

static const vt_json_doc *doc_of(const vt_json_value *v)
{
	const vt_json_value *root = v - v->idx;
	return (const vt_json_doc *)((const char *)root - offsetof(vt_json_doc, vals));
}

const char *vt_json_raw(const vt_json_value *v, size_t *len_out)
{
	*len_out = v->len;
	return doc_of(v)->src + v->off;
}

/* ---- access ------------------------------------------------------------------ */

const vt_json_value *vt_json_getn(const vt_json_value *obj, const char *key, size_t klen)
{
	if (obj->type != VT_JSON_OBJECT)
		return NULL;
	const vt_json_value *end = obj + obj->tree;
	for (const vt_json_value *k = obj + 1; k < end; k += 1 + k[1].tree)
		if (k->count == klen && !memcmp(k->u.str, key, klen))
			return k + 1;
	return NULL;
}

const vt_json_value *vt_json_get(const vt_json_value *obj, const char *key)
{
	return vt_json_getn(obj, key, strlen(key));
}

const vt_json_value *vt_json_at(const vt_json_value *arr, size_t i)
{
	if (arr->type != VT_JSON_ARRAY || i >= arr->count)
		return NULL;
	const vt_json_value *c = arr + 1;
	while (i--)
		c += c->tree;
	return c;
}

/* ---- paths and typed getters ------------------------------------------------- */

typedef struct pbuf {
	char *p;
	size_t cap, len;
} pbuf;

static void pb_puts(pbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n && b->len + 1 < b->cap; i++)
		b->p[b->len++] = s[i];
	b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
}

static int ident_key(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

char *vt_json_path(const vt_json_value *v, char *buf, size_t cap)
{
	if (!cap)
		return buf;
	pbuf b = {buf, cap, 0};
	buf[0] = '\0';
	const vt_json_value *cur = v - v->idx;
	if (cur == v) {
		pb_puts(&b, "$", 1);
		return buf;
	}
	char tmp[32];
	while (cur != v) {
		const vt_json_value *end = cur + cur->tree;
		const vt_json_value *c = cur + 1;
		size_t i = 0;
		int is_obj = cur->type == VT_JSON_OBJECT;
		while (c < end) {
			const vt_json_value *val = is_obj ? c + 1 : c;
			if (v >= c && v < val + val->tree) {
				if (is_obj) {
					if (ident_key(c->u.str, c->count)) {
						if (b.len)
							pb_puts(&b, ".", 1);
						pb_puts(&b, c->u.str, c->count);
					} else {
						pb_puts(&b, "[\"", 2);
						pb_puts(&b, c->u.str, c->count > 40 ? 40 : c->count);
						pb_puts(&b, "\"]", 2);
					}
					if (v == c)
						return buf; /* a key: its member */
				} else {
					int n = snprintf(tmp, sizeof tmp, "[%zu]", i);
					pb_puts(&b, tmp, (size_t)n);
				}
				cur = val;
				break;
			}
			c = val + val->tree;
			i++;
		}
		assert(c < end);
		if (c >= end)
			break; /* v is not in this document: keep what we have */
	}
	return buf;
}

static const char *type_name(const vt_json_value *v)
{
	switch (v->type) {
	case VT_JSON_NULL: return "null";
	case VT_JSON_FALSE:
	case VT_JSON_TRUE: return "a boolean";
	case VT_JSON_NUMBER: return "a number";
	case VT_JSON_STRING: return "a string";
	case VT_JSON_ARRAY: return "an array";
	default: return "an object";
	}
}

static int type_err(const vt_json_value *v, const char *want, vt_errmsg *e)
{
	if (e) {
		char path[160];
		vt_errmsg_set(e, VT_EINVAL, "%s: expected %s, got %s",
			      vt_json_path(v, path, sizeof path), want, type_name(v));
	}
	return VT_EINVAL;
}

static int range_err(const vt_json_value *v, const char *what, vt_errmsg *e)
{
	if (e) {
		char path[160];
		size_t n;
		const char *raw = vt_json_raw(v, &n);
		vt_errmsg_set(e, VT_ERANGE, "%s: %.*s is out of %s range",
			      vt_json_path(v, path, sizeof path), (int)(n > 40 ? 40 : n), raw,
			      what);
	}
	return VT_ERANGE;
}

int vt_json_get_bool(const vt_json_value *v, int *out, vt_errmsg *e)
{
	if (v->type != VT_JSON_TRUE && v->type != VT_JSON_FALSE)
		return type_err(v, "a boolean", e);
	*out = v->type == VT_JSON_TRUE;
	return 0;
}

int vt_json_get_double(const vt_json_value *v, double *out, vt_errmsg *e)
{
	if (v->type != VT_JSON_NUMBER)
		return type_err(v, "a number", e);
	*out = v->u.num;
	return 0;
}

/* FLT_MAX plus half an ulp: doubles from here on round to infinity. */
#define FLOAT_ROUNDS_TO_INF 0x1.ffffffp127

int vt_json_get_float(const vt_json_value *v, float *out, vt_errmsg *e)
{
	if (v->type != VT_JSON_NUMBER)
		return type_err(v, "a number", e);
	if (!(fabs(v->u.num) < FLOAT_ROUNDS_TO_INF))
		return range_err(v, "float", e);
	*out = (float)v->u.num;
	return 0;
}

/* Reads the integer token of `v` exactly: 0, or VT_ERANGE. */
static int int_token(const vt_json_value *v, int *neg, uint64_t *mag)
{
	size_t n;
	const char *s = vt_json_raw(v, &n);
	const char *end = s + n;
	uint64_t m = 0;
	*neg = 0;
	if (s < end && *s == '-') {
		*neg = 1;
		s++;
	}
	for (; s < end; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (m > (UINT64_MAX - d) / 10)
			return VT_ERANGE;
		m = m * 10 + d;
	}
	*mag = m;
	return 0;
}

int vt_json_get_int64(const vt_json_value *v, int64_t *out, vt_errmsg *e)
{
	if (v->type != VT_JSON_NUMBER || !(v->flags & VT__JSON_F_INT))
		return type_err(v, "an integer", e);
	int neg;
	uint64_t m;
	if (int_token(v, &neg, &m) || m > (uint64_t)INT64_MAX + (uint64_t)neg)
		return range_err(v, "int64", e);
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

int vt_json_get_uint64(const vt_json_value *v, uint64_t *out, vt_errmsg *e)
{
	if (v->type != VT_JSON_NUMBER || !(v->flags & VT__JSON_F_INT))
		return type_err(v, "an integer", e);
	int neg;
	uint64_t m;
	if (int_token(v, &neg, &m) || (neg && m))
		return range_err(v, "uint64", e);
	*out = m;
	return 0;
}

int vt_json_get_string(const vt_json_value *v, const char **s, size_t *len, vt_errmsg *e)
{
	if (v->type != VT_JSON_STRING)
		return type_err(v, "a string", e);
	*s = v->u.str;
	if (len)
		*len = v->count;
	return 0;
}

int vt_json_get_floats(const vt_json_value *v, float *out, size_t cap, size_t *n,
		       vt_errmsg *e)
{
	if (v->type != VT_JSON_ARRAY)
		return type_err(v, "an array of numbers", e);
	size_t cnt = v->count;
	*n = cnt;
	if (cnt > cap) {
		if (e) {
			char path[160];
			vt_errmsg_set(e, VT_ELIMIT, "%s: %zu numbers, at most %zu allowed",
				      vt_json_path(v, path, sizeof path), cnt, cap);
		}
		return VT_ELIMIT;
	}
	const vt_json_value *c = v + 1;
	for (size_t i = 0; i < cnt; i++, c += c->tree) {
		if (c->type != VT_JSON_NUMBER)
			return type_err(c, "a number", e);
		if (!(fabs(c->u.num) < FLOAT_ROUNDS_TO_INF))
			return range_err(c, "float", e);
		out[i] = (float)c->u.num;
	}
	return 0;
}
