/* json.h: Vectron's strict RFC 8259 JSON reader (a read-only DOM in one
 * arena per document) and writer (appends to a vt_buf). Not a general JSON
 * library: no mutation of parsed documents, no JSON5, no streaming. */
#ifndef VT_RPC_JSON_H
#define VT_RPC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

/* ---- reader ------------------------------------------------------------ */

typedef enum vt_json_type {
	VT_JSON_NULL = 0,
	VT_JSON_FALSE,
	VT_JSON_TRUE,
	VT_JSON_NUMBER,
	VT_JSON_STRING,
	VT_JSON_ARRAY,
	VT_JSON_OBJECT,
} vt_json_type;

/* One value of a parsed document. Values live in the document's arena in
 * document order (a container is followed by its children; an object's
 * children alternate key string, value) and stay valid until
 * vt_json_doc_free. Read them through the functions below. */
typedef struct vt_json_value {
	uint8_t type;    /* vt_json_type */
	uint8_t flags;   /* private: VT__JSON_F_* */
	uint16_t pad_;   /* private */
	uint32_t count;  /* string: bytes; array: elements; object: members */
	uint32_t off;    /* private: byte offset of the source text */
	uint32_t len;    /* private: bytes of source text */
	uint32_t tree;   /* private: values in this subtree, itself included */
	uint32_t idx;    /* private: index in the document */
	union {
		double num;      /* number */
		const char *str; /* string: unescaped, NUL-terminated */
	} u;
} vt_json_value;

#define VT__JSON_F_INT 1u /* number written without fraction or exponent */

typedef struct vt_json_doc vt_json_doc;

/* Parse options; a zeroed struct (or NULL) means the defaults. */
typedef struct vt_json_opts {
	size_t max_bytes;   /* input size limit; 0: 64 MiB (hard limit 2 GiB) */
	unsigned max_depth; /* nesting limit; 0: 64 (hard limit 1024) */
} vt_json_opts;

/* Where and why a parse failed. `reason` is a static string. */
typedef struct vt_json_error {
	size_t offset; /* byte offset in the input */
	size_t line;   /* 1-based */
	size_t column; /* 1-based, counted in bytes */
	const char *reason;
} vt_json_error;

/* Parses exactly one JSON text (RFC 8259; any value at top level,
 * surrounding whitespace allowed) from `src[0..len)`; `src` need not be
 * NUL-terminated and is not referenced afterwards (the document keeps a
 * copy, which vt_json_raw returns). Policy beyond the RFC's "must":
 *   - strings must be valid UTF-8 (no overlong forms, no surrogates, nothing
 *     above U+10FFFF); \u escapes must pair surrogates properly; \u0000 is
 *     refused (strings come out NUL-terminated);
 *   - an object with the same key twice (after unescaping) is an error;
 *   - a number whose magnitude overflows a double (1e400) is an error;
 *     underflow gives the nearest double (possibly 0 or subnormal);
 *   - numbers convert exactly as strtod in the "C" locale would.
 * Memory: one allocation of at most 2 * len + 32 * (1 + the number of
 * '[', '{', ',' and ':' bytes in the input) plus a small header.
 * On success *out owns the document (vt_json_doc_free). Errors: VT_EINVAL
 * (malformed, with `err` and `e` saying where and why), VT_ELIMIT (size
 * or depth limit), VT_ERANGE (number overflow), VT_ENOMEM. `err` and `e`
 * may be NULL; the message reads "line 1, column 9 (byte 8): reason". */
VT_API int vt_json_parse(const void *src, size_t len, const vt_json_opts *opts,
			 vt_json_doc **out, vt_json_error *err, vt_errmsg *e);

/* Frees a document and all its values; NULL is a no-op. */
VT_API void vt_json_doc_free(vt_json_doc *d);

/* The top-level value. */
VT_API const vt_json_value *vt_json_root(const vt_json_doc *d);

static inline vt_json_type vt_json_typeof(const vt_json_value *v)
{
	return (vt_json_type)v->type;
}

/* The value's source text, exactly as it appeared in the input (for an
 * object: from '{' to '}'), in *len_out. Valid until vt_json_doc_free;
 * not NUL-terminated. Use it to store or forward a nested object
 * unchanged (vt_json_w_raw). */
VT_API const char *vt_json_raw(const vt_json_value *v, size_t *len_out);

/* Container access. An object member is a key (a VT_JSON_STRING value)
 * followed by its value. Iteration is in document order:
 *   vt_json_iter it; const vt_json_value *k, *v;
 *   vt_json_iter_init(&it, obj);
 *   while ((v = vt_json_iter_next(&it, &k))) ...
 * For an array *key_out is set to NULL. A scalar iterates as empty. */
typedef struct vt_json_iter {
	const vt_json_value *cur, *end; /* private */
	int is_obj;                     /* private */
} vt_json_iter;

static inline void vt_json_iter_init(vt_json_iter *it, const vt_json_value *c)
{
	int cont = c->type == VT_JSON_ARRAY || c->type == VT_JSON_OBJECT;
	it->cur = c + 1;
	it->end = cont ? c + c->tree : c + 1;
	it->is_obj = c->type == VT_JSON_OBJECT;
}

static inline const vt_json_value *vt_json_iter_next(vt_json_iter *it,
						     const vt_json_value **key_out)
{
	const vt_json_value *k = NULL;
	if (it->cur >= it->end)
		return NULL;
	if (it->is_obj)
		k = it->cur++;
	const vt_json_value *v = it->cur;
	it->cur = v + v->tree;
	if (key_out)
		*key_out = k;
	return v;
}

/* The member named `key` (`klen` bytes, compared after unescaping) of an
 * object, or NULL if absent or `obj` is not an object. Linear in the
 * number of members: fine for request bodies (a handful of keys); iterate
 * instead for large objects. */
VT_API const vt_json_value *vt_json_get(const vt_json_value *obj, const char *key);
VT_API const vt_json_value *vt_json_getn(const vt_json_value *obj, const char *key,
					 size_t klen);

/* Element `i` of an array, or NULL. Linear in i (nested containers are
 * skipped in O(1) each). */
VT_API const vt_json_value *vt_json_at(const vt_json_value *arr, size_t i);

/* Writes the value's path from the root ("points[3].vector[7]"; the root
 * itself is "$"; keys that are not [A-Za-z0-9_-]+ appear as ["k"]) into
 * buf, truncated to cap - 1 bytes and NUL-terminated. Returns buf. */
VT_API char *vt_json_path(const vt_json_value *v, char *buf, size_t cap);

/* Typed getters. On a type or range mismatch they return VT_EINVAL or
 * VT_ERANGE, leave *out unchanged and set `e` (may be NULL) to
 * "<path>: expected <what>, got <type>". */
VT_API int vt_json_get_bool(const vt_json_value *v, int *out, vt_errmsg *e);
VT_API int vt_json_get_double(const vt_json_value *v, double *out, vt_errmsg *e);
/* A finite double within float range, rounded to the nearest float. */
VT_API int vt_json_get_float(const vt_json_value *v, float *out, vt_errmsg *e);
/* An integer number (no fraction or exponent, as in "12" and not "12.0")
 * that fits; exact for all of int64 / uint64. */
VT_API int vt_json_get_int64(const vt_json_value *v, int64_t *out, vt_errmsg *e);
VT_API int vt_json_get_uint64(const vt_json_value *v, uint64_t *out, vt_errmsg *e);
/* *s points at the unescaped, NUL-terminated string (valid until
 * vt_json_doc_free) and *len (may be NULL) receives its byte length. */
VT_API int vt_json_get_string(const vt_json_value *v, const char **s, size_t *len,
			      vt_errmsg *e);

/* The hot path for vectors: copies an array of numbers into out[0..cap)
 * and sets *n to its length. Errors: VT_EINVAL if `v` is not an array or
 * an element is not a number ("vector[7]: expected a number, got a
 * string"), VT_ERANGE if an element is outside float range
 * ("vector[7]: 1e39 is out of float range"), VT_ELIMIT if the array has
 * more than `cap` elements (*n is still set to its length, nothing
 * copied). Each element is the parsed double rounded to nearest float. */
VT_API int vt_json_get_floats(const vt_json_value *v, float *out, size_t cap,
			      size_t *n, vt_errmsg *e);

/* ---- writer ------------------------------------------------------------ */

/* Appends JSON text to a caller's vt_buf (whose cap limits the output).
 * Caller-allocated; commas and colons are placed automatically. The first
 * error is sticky: later calls do nothing and vt_json_w_finish returns it
 * (VT_ELIMIT from the buffer cap or nesting past VT_JSON_W_MAX_DEPTH,
 * VT_ENOMEM, VT_EINVAL for invalid UTF-8, a non-finite number or a
 * misplaced key/value/end). */
#define VT_JSON_W_MAX_DEPTH 256
typedef struct vt_json_writer {
	vt_buf *b;                                  /* private */
	int err;                                    /* private */
	unsigned depth;                             /* private */
	int after_key;                              /* private */
	uint8_t is_obj[VT_JSON_W_MAX_DEPTH / 8];    /* private: bit per level */
	uint8_t has_items[VT_JSON_W_MAX_DEPTH / 8]; /* private: bit per level */
	int has_root;                               /* private */
} vt_json_writer;

VT_API void vt_json_w_init(vt_json_writer *w, vt_buf *b);
/* 0 if the writer holds exactly one complete value, else the first error
 * (VT_EINVAL if containers are still open or nothing was written). */
VT_API int vt_json_w_finish(vt_json_writer *w);

VT_API void vt_json_w_obj_begin(vt_json_writer *w);
VT_API void vt_json_w_obj_end(vt_json_writer *w);
VT_API void vt_json_w_arr_begin(vt_json_writer *w);
VT_API void vt_json_w_arr_end(vt_json_writer *w);
/* A member key inside an object; the next call writes its value. */
VT_API void vt_json_w_key(vt_json_writer *w, const char *k, size_t len);
/* A string from valid UTF-8 (else VT_EINVAL); '"', '\\' and control
 * characters are escaped, everything else is copied. */
VT_API void vt_json_w_str(vt_json_writer *w, const char *s, size_t len);
VT_API void vt_json_w_null(vt_json_writer *w);
VT_API void vt_json_w_bool(vt_json_writer *w, int v);
VT_API void vt_json_w_int(vt_json_writer *w, int64_t v);
VT_API void vt_json_w_uint(vt_json_writer *w, uint64_t v);
/* The shortest decimal that reads back as the same double (strtod). */
VT_API void vt_json_w_double(vt_json_writer *w, double v);
/* The shortest decimal (at most 9 digits) that reads back as the same
 * float, both by strtof and by strtod followed by a cast to float. */
VT_API void vt_json_w_float(vt_json_writer *w, float v);
/* An array of floats, each as vt_json_w_float. */
VT_API void vt_json_w_floats(vt_json_writer *w, const float *v, size_t n);
/* Inserts `len` bytes of JSON text as one value, unchecked: the caller
 * guarantees it is one valid JSON value (e.g. a payload vt_json_raw
 * returned, or one stored after validation). */
VT_API void vt_json_w_raw(vt_json_writer *w, const char *json, size_t len);
/* Writes a parsed value (re-serialised, not its raw text). */
VT_API void vt_json_w_value(vt_json_writer *w, const vt_json_value *v);

/* Formats a float as vt_json_w_float does into buf (>= 24 bytes; no NUL);
 * returns the length, or 0 for NaN and infinities. */
VT_API size_t vt_json_fmt_float(char *buf, float v);
/* Formats a double as vt_json_w_double does into buf (>= 32 bytes; no
 * NUL); returns the length, or 0 for NaN and infinities. */
VT_API size_t vt_json_fmt_double(char *buf, double v);

#endif
