/* json_write.c: the JSON writer: tokens appended to a vt_buf with commas
 * placed for the caller, escaping, and shortest round-trip numbers. Not
 * the reader (json.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/json.h"
#include "rpc/json_int.h"

/* ---- numbers ----------------------------------------------------------------- */

/* 10^0..10^47 (the scales a normal float needs), correctly rounded. */
static const double p10[48] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23,
	1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35,
	1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
};

/* 10^-0..10^-8, rounded: only used to pick candidates, which are then
 * checked exactly. */
static const double inv10[9] = {1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8};

static const uint64_t p10u[10] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

/* Writes the decimal digits[0..nd) * 10^(E - nd + 1) (E: the exponent of
 * the first digit, nd >= 1, no trailing zeros): plain notation for
 * -6 <= E <= 8, else d.ddde<E>. */
/* (Byte loops: the strings are short, a memcpy call costs more.) */
static size_t fmt_digits(char *o, const char *dg, int nd, int E)
{
	char *s = o;
	if (E >= 0 && E <= 8) {
		if (nd <= E + 1) {
			for (int i = 0; i < nd; i++)
				*o++ = dg[i];
			for (int i = nd; i <= E; i++)
				*o++ = '0';
		} else {
			for (int i = 0; i <= E; i++)
				*o++ = dg[i];
			*o++ = '.';
			for (int i = E + 1; i < nd; i++)
				*o++ = dg[i];
		}
	} else if (E < 0 && E >= -6) {
		*o++ = '0';
		*o++ = '.';
		for (int i = -1; i > E; i--)
			*o++ = '0';
		for (int i = 0; i < nd; i++)
			*o++ = dg[i];
	} else {
		*o++ = dg[0];
		if (nd > 1) {
			*o++ = '.';
			for (int i = 1; i < nd; i++)
				*o++ = dg[i];
		}
		*o++ = 'e';
		int x = E;
		if (x < 0) {
			*o++ = '-';
			x = -x;
		}
		if (x >= 100)
			*o++ = (char)('0' + x / 100);
		if (x >= 10)
			*o++ = (char)('0' + x / 10 % 10);
		*o++ = (char)('0' + x % 10);
	}
	return (size_t)(o - s);
}

/* Parses the output of "%.*e" into digits (trailing zeros dropped) and
 * the exponent of the first digit. Returns the digit count. */
static int split_e(const char *t, char *dg, int *E)
{
	int nd = 0;
	for (; *t && *t != 'e'; t++)
		if (*t >= '0' && *t <= '9')
			dg[nd++] = *t;
	*E = *t == 'e' ? atoi(t + 1) : 0;
	while (nd > 1 && dg[nd - 1] == '0')
		nd--;
	return nd;
}

/* Reference method: the first of %.1e..%.9e whose text reads back as v,
 * both by strtof and by strtod + cast. v > 0 and finite. */
static size_t fmt_float_slow(char *o, float v)
{
	char t[40], dg[24];
	int E = 0, nd = 0;
	for (int p = 1; p <= 9; p++) {
		snprintf(t, sizeof t, "%.*e", p - 1, (double)v);
		if (strtof(t, NULL) == v && (float)vt__json_strtod(t, NULL) == v) {
			nd = split_e(t, dg, &E);
			break;
		}
	}
	return fmt_digits(o, dg, nd, E);
}

/* The float being formatted: its bits, rounding interval (lo, hi) (exact
 * in double), and S, the value scaled to nine digits before the point
 * with E the decimal exponent of its first digit. */
typedef struct fctx {
	uint32_t bits;
	double lo, hi, S;
	int E;
} fctx;

/* Probes p significant digits: 1 with the digits in *D and the exponent of
 * their first digit in *e if the nearest p-digit decimal reads back as the
 * float; 0 if not; -1 if this method cannot tell (exponent outside the
 * exact range). */
static inline int probe(const fctx *c, int p, uint64_t *D_out, int *e_out)
{
	uint64_t D = (uint64_t)(c->S * inv10[9 - p] + 0.5);
	int k = c->E - p + 1, e = c->E;
	if (D >= p10u[p]) { /* 9.96 -> 10.0 */
		D /= 10;
		k++;
		e++;
	}
	if (k < -22 || k > 22)
		return -1;
	/* Clinger: D < 2^53 and 10^|k| exact, so V is the correctly rounded
	 * double of the decimal; strictly inside (lo, hi) means the decimal
	 * itself is, so strtof and strtod + cast agree. */
	double V = k >= 0 ? (double)D * vt__json_pow10[k] : (double)D / vt__json_pow10[-k];
	int ok = V > c->lo && V < c->hi;
	if (!ok && (V == c->lo || V == c->hi) && !(c->bits & 1)) {
		/* A tie goes to the even float, for strtof and for strtod +
		 * cast alike, if the decimal is exactly the midpoint. */
		double P = vt__json_pow10[k < 0 ? -k : k];
		ok = k >= 0 ? fma((double)D, P, -V) == 0 : fma(V, P, -(double)D) == 0;
	}
	*D_out = D;
	*e_out = e;
	return ok;
}

size_t vt_json_fmt_float(char *buf, float v)
{
	if (!isfinite(v))
		return 0;
	char *o = buf;
	fctx c;
	memcpy(&c.bits, &v, sizeof c.bits);
	if (c.bits >> 31) {
		*o++ = '-';
		c.bits &= 0x7FFFFFFFu;
	}
	if (c.bits == 0) {
		*o++ = '0';
		return (size_t)(o - buf);
	}
	float af;
	memcpy(&af, &c.bits, sizeof af);
	if (c.bits < 0x00800000u) /* subnormal */
		return (size_t)(o - buf) + fmt_float_slow(o, af);

	double d = af;
	float up, down;
	uint32_t ub = c.bits + 1, db = c.bits - 1;
	memcpy(&up, &ub, sizeof up);
	memcpy(&down, &db, sizeof down);
	c.lo = (d + (double)down) / 2;
	c.hi = isinf(up) ? d + (d - (double)down) / 2 : (d + (double)up) / 2;

	/* S is inexact: every candidate is checked exactly by probe(). */
	int e2 = (int)(c.bits >> 23) - 127;
	c.E = (int)floor(e2 * 0.30102999566398120);
	for (;;) {
		int k = 8 - c.E;
		c.S = k >= 0 ? d * p10[k] : d / p10[-k];
		if (c.S >= 999999999.5)
			c.E++;
		else if (c.S < 99999999.5)
			c.E--;
		else
			break;
	}

	/* The nearest p-digit decimal only gets closer as p grows, so when
	 * the interval is symmetric (the mantissa is not zero) "p digits
	 * read back" is monotonic in p: search for the smallest such p. The
	 * first probe is the guess g where the digit spacing 10^(9-g) first
	 * falls below the interval's width W (in units of S); the second is
	 * its neighbour, which usually settles it. At powers of two the lower
	 * half-interval is narrower: search linearly. */
	uint64_t D = 0;
	int e = 0, r = 0, p;
	if (c.bits & 0x7FFFFFu) {
		int k = 8 - c.E;
		double W = k >= 0 ? (c.hi - c.lo) * p10[k] : (c.hi - c.lo) / p10[-k];
		int g = 9;
		while (g > 1 && p10[10 - g] < W)
			g--;
		int a = 1, b = 9, got = 0, mid = g;
		uint64_t D1;
		int e1;
		while (a < b) {
			r = probe(&c, mid, &D1, &e1);
			if (r < 0)
				return (size_t)(o - buf) + fmt_float_slow(o, af);
			if (r) {
				/* first success: try just below; later: bisect */
				int next = got ? (a + mid - 1) / 2 : mid - 1;
				b = mid;
				got = mid;
				D = D1;
				e = e1;
				mid = next;
			} else {
				a = mid + 1;
				mid = (a + b) / 2;
			}
		}
		p = a;
		r = got == p ? 1 : probe(&c, p, &D, &e);
	} else {
		for (p = 1; p <= 9; p++)
			if ((r = probe(&c, p, &D, &e)) != 0)
				break;
	}
	if (r != 1)
		return (size_t)(o - buf) + fmt_float_slow(o, af);
	char dg[12];
	int nd = p;
	for (int i = nd - 1; i >= 0; i--) {
		dg[i] = (char)('0' + D % 10);
		D /= 10;
	}
	while (nd > 1 && dg[nd - 1] == '0')
		nd--;
	return (size_t)(o - buf) + fmt_digits(o, dg, nd, e);
}

size_t vt_json_fmt_double(char *buf, double v)
{
	if (!isfinite(v))
		return 0;
	char *o = buf;
	if (signbit(v)) {
		*o++ = '-';
		v = -v;
	}
	if (v == 0) {
		*o++ = '0';
		return (size_t)(o - buf);
	}
	char t[48], dg[24];
	int E = 0, nd = 0;
	for (int p = 15; p <= 17; p++) {
		snprintf(t, sizeof t, "%.*e", p - 1, v);
		if (p == 17 || vt__json_strtod(t, NULL) == v)
			break;
	}
	nd = split_e(t, dg, &E);
	return (size_t)(o - buf) + fmt_digits(o, dg, nd, E);
}

/* ---- writer ------------------------------------------------------------------ */

static inline int bit_get(const uint8_t *a, unsigned i)
{
	return a[i >> 3] >> (i & 7) & 1;
}

static inline void bit_set(uint8_t *a, unsigned i, int v)
{
	if (v)
		a[i >> 3] |= (uint8_t)(1u << (i & 7));
	else
		a[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

void vt_json_w_init(vt_json_writer *w, vt_buf *b)
{
	memset(w, 0, sizeof *w);
	w->b = b;
}

int vt_json_w_finish(vt_json_writer *w)
{
	if (w->err)
		return w->err;
	if (w->depth || !w->has_root || w->after_key)
		return VT_EINVAL;
	return 0;
}

static inline void set_err(vt_json_writer *w, int code)
{
	if (!w->err)
		w->err = code;
}

static inline int put(vt_json_writer *w, const void *p, size_t n)
{
	int rc = vt_buf_append(w->b, p, n);
	if (rc)
		set_err(w, rc);
	return rc;
}

/* Called before every value: the separator, and the state checks. */
static int pre_value(vt_json_writer *w)
{
	if (w->err)
		return w->err;
	if (!w->depth) {
		if (w->has_root) {
			set_err(w, VT_EINVAL);
			return VT_EINVAL;
		}
		w->has_root = 1;
		return 0;
	}
	unsigned l = w->depth - 1;
	if (bit_get(w->is_obj, l)) {
		if (!w->after_key) {
			set_err(w, VT_EINVAL);
			return VT_EINVAL;
		}
		w->after_key = 0;
		return 0;
	}
	if (bit_get(w->has_items, l))
		return put(w, ",", 1);
	bit_set(w->has_items, l, 1);
	return 0;
}

static void w_open(vt_json_writer *w, int is_obj)
{
	if (pre_value(w))
		return;
	if (w->depth >= VT_JSON_W_MAX_DEPTH) {
		set_err(w, VT_ELIMIT);
		return;
	}
	if (put(w, is_obj ? "{" : "[", 1))
		return;
	bit_set(w->is_obj, w->depth, is_obj);
	bit_set(w->has_items, w->depth, 0);
	w->depth++;
}

static void close_(vt_json_writer *w, int is_obj)
{
	if (w->err)
		return;
	if (!w->depth || bit_get(w->is_obj, w->depth - 1) != is_obj || w->after_key) {
		set_err(w, VT_EINVAL);
		return;
	}
	if (put(w, is_obj ? "}" : "]", 1))
		return;
	w->depth--;
}

void vt_json_w_obj_begin(vt_json_writer *w) { w_open(w, 1); }
void vt_json_w_obj_end(vt_json_writer *w) { close_(w, 1); }
void vt_json_w_arr_begin(vt_json_writer *w) { w_open(w, 0); }
void vt_json_w_arr_end(vt_json_writer *w) { close_(w, 0); }

/* Short escapes; 'u' means \u00XX; 0 means copy. */
static const char esc[128] = {
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
};

static void put_string(vt_json_writer *w, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s, *end = u + len;
	/* pass 1: validate and size */
	size_t out = 2;
	for (const unsigned char *q = u; q < end;) {
		if (*q < 0x80) {
			out += esc[*q] == 0 ? 1 : esc[*q] == 'u' ? 6 : 2;
			q++;
			continue;
		}
		int n = vt__json_utf8_len(q, end);
		if (!n) {
			set_err(w, VT_EINVAL);
			return;
		}
		out += (size_t)n;
		q += n;
	}
	int rc = vt_buf_reserve(w->b, out);
	if (rc) {
		set_err(w, rc);
		return;
	}
	char *o = (char *)w->b->data + w->b->len;
	*o++ = '"';
	for (const unsigned char *q = u; q < end; q++) {
		unsigned c = *q;
		if (c >= 0x80 || !esc[c]) {
			*o++ = (char)c;
		} else if (esc[c] == 'u') {
			static const char hx[] = "0123456789abcdef";
			memcpy(o, "\\u00", 4);
			o[4] = hx[c >> 4];
			o[5] = hx[c & 15];
			o += 6;
		} else {
			*o++ = '\\';
			*o++ = esc[c];
		}
	}
	*o++ = '"';
	w->b->len += out;
}

void vt_json_w_key(vt_json_writer *w, const char *k, size_t len)
{
	if (w->err)
		return;
	if (!w->depth || !bit_get(w->is_obj, w->depth - 1) || w->after_key) {
		set_err(w, VT_EINVAL);
		return;
	}
	unsigned l = w->depth - 1;
	if (bit_get(w->has_items, l) && put(w, ",", 1))
		return;
	bit_set(w->has_items, l, 1);
	put_string(w, k, len);
	if (!w->err && !put(w, ":", 1))
		w->after_key = 1;
}

void vt_json_w_str(vt_json_writer *w, const char *s, size_t len)
{
	if (!pre_value(w))
		put_string(w, s, len);
}

void vt_json_w_null(vt_json_writer *w)
{
	if (!pre_value(w))
		put(w, "null", 4);
}

void vt_json_w_bool(vt_json_writer *w, int v)
{
	if (!pre_value(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

static size_t fmt_u64(char *buf, uint64_t v)
{
	char t[24];
	size_t n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = t[n - 1 - i];
	return n;
}

void vt_json_w_uint(vt_json_writer *w, uint64_t v)
{
	char t[24];
	if (!pre_value(w))
		put(w, t, fmt_u64(t, v));
}

void vt_json_w_int(vt_json_writer *w, int64_t v)
{
	char t[24];
	if (pre_value(w))
		return;
	size_t n = 0;
	uint64_t m = (uint64_t)v;
	if (v < 0) {
		t[n++] = '-';
		m = 0 - m;
	}
	n += fmt_u64(t + n, m);
	put(w, t, n);
}

void vt_json_w_double(vt_json_writer *w, double v)
{
	char t[40];
	if (pre_value(w))
		return;
	size_t n = vt_json_fmt_double(t, v);
	if (!n) {
		set_err(w, VT_EINVAL);
		return;
	}
	put(w, t, n);
}

void vt_json_w_float(vt_json_writer *w, float v)
{
	char t[32];
	if (pre_value(w))
		return;
	size_t n = vt_json_fmt_float(t, v);
	if (!n) {
		set_err(w, VT_EINVAL);
		return;
	}
	put(w, t, n);
}

void vt_json_w_floats(vt_json_writer *w, const float *v, size_t n)
{
	vt_json_w_arr_begin(w);
	if (w->err)
		return;
	for (size_t i = 0; i < n; i++) {
		int rc = vt_buf_reserve(w->b, 32);
		if (rc) {
			set_err(w, rc);
			return;
		}
		char *o = (char *)w->b->data + w->b->len;
		if (i)
			*o++ = ',';
		size_t k = vt_json_fmt_float(o, v[i]);
		if (!k) {
			set_err(w, VT_EINVAL);
			return;
		}
		w->b->len += k + (i ? 1 : 0);
	}
	if (n)
		bit_set(w->has_items, w->depth - 1, 1);
	vt_json_w_arr_end(w);
}

void vt_json_w_raw(vt_json_writer *w, const char *json, size_t len)
{
	if (!pre_value(w))
		put(w, json, len);
}

void vt_json_w_value(vt_json_writer *w, const vt_json_value *v)
{
	vt_json_iter it;
	const vt_json_value *k, *c;
	switch (v->type) {
	case VT_JSON_NULL:
		vt_json_w_null(w);
		break;
	case VT_JSON_FALSE:
	case VT_JSON_TRUE:
		vt_json_w_bool(w, v->type == VT_JSON_TRUE);
		break;
	case VT_JSON_NUMBER: {
		int64_t i;
		if ((v->flags & VT__JSON_F_INT) && !vt_json_get_int64(v, &i, NULL) &&
		    !(i == 0 && signbit(v->u.num)))
			vt_json_w_int(w, i);
		else
			vt_json_w_double(w, v->u.num);
		break;
	}
	case VT_JSON_STRING:
		vt_json_w_str(w, v->u.str, v->count);
		break;
	case VT_JSON_ARRAY:
	case VT_JSON_OBJECT:
		if (v->type == VT_JSON_OBJECT)
			vt_json_w_obj_begin(w);
		else
			vt_json_w_arr_begin(w);
		vt_json_iter_init(&it, v);
		while (!w->err && (c = vt_json_iter_next(&it, &k))) {
			if (k)
				vt_json_w_key(w, k->u.str, k->count);
			vt_json_w_value(w, c);
		}
		if (v->type == VT_JSON_OBJECT)
			vt_json_w_obj_end(w);
		else
			vt_json_w_arr_end(w);
		break;
	}
}
