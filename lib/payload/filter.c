/* filter.c: the filter language: parsing a JSON filter into a compiled
 * condition tree (with errors naming the place), and evaluating the tree on
 * a payload. Not the planner: that is index.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "payload_int.h"

/* ---- value sets ------------------------------------------------------------- */

int vt__str_cmp(const struct vt__str *a, const struct vt__str *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->s, b->s, a->len);
}

static int str_qcmp(const void *a, const void *b)
{
	return vt__str_cmp(a, b);
}

static int int_qcmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int vt__str_in(const struct vt__cond *c, const char *s, size_t len)
{
	struct vt__str key = {(char *)s, len};
	return bsearch(&key, c->strs, c->nvals, sizeof *c->strs, str_qcmp) != NULL;
}

int vt__int_in(const struct vt__cond *c, int64_t v)
{
	return bsearch(&v, c->ints, c->nvals, sizeof *c->ints, int_qcmp) != NULL;
}

int vt__range_ok(const struct vt__cond *c, double v)
{
	if (c->has_lo && (c->lo_incl ? v < c->lo : v <= c->lo))
		return 0;
	if (c->has_hi && (c->hi_incl ? v > c->hi : v >= c->hi))
		return 0;
	return 1;
}

/* ---- freeing ------------------------------------------------------------------ */

static void cond_free(struct vt__cond *c)
{
	if (!c)
		return;
	vt__path_free(&c->path);
	if (c->strs)
		for (size_t i = 0; i < c->nvals; i++)
			vt_free(c->strs[i].s);
	vt_free(c->strs);
	vt_free(c->ints);
	for (size_t i = 0; i < c->nmust; i++)
		cond_free(c->must[i]);
	for (size_t i = 0; i < c->nshould; i++)
		cond_free(c->should[i]);
	for (size_t i = 0; i < c->nmust_not; i++)
		cond_free(c->must_not[i]);
	vt_free(c->must);
	vt_free(c->should);
	vt_free(c->must_not);
	vt_free(c);
}

void vt_filter_free(vt_filter *f)
{
	if (!f)
		return;
	cond_free(f->root);
	vt_free(f->src);
	vt_free(f);
}

const char *vt_filter_source(const vt_filter *f, size_t *len)
{
	*len = f->src_len;
	return f->src;
}

/* ---- parsing ------------------------------------------------------------------ */

struct parser {
	const vt_payload_schema *schema;
	vt_errmsg *err;
	uint32_t nconds;
	char where[192]; /* "filter.must[1].range" */
	size_t wlen;
};

static size_t where_push(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static size_t where_push(struct parser *ps, const char *fmt, ...)
{
	size_t old = ps->wlen;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(ps->where + old, sizeof ps->where - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		ps->wlen = old + (size_t)n < sizeof ps->where ? old + (size_t)n
							       : sizeof ps->where - 1;
	return old;
}

static void where_pop(struct parser *ps, size_t old)
{
	ps->wlen = old;
	ps->where[old] = '\0';
}

#define FAIL(ps, code, ...)                                                    \
	fail((ps), (code), __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int fail(struct parser *ps,
							int code,
							const char *fmt, ...)
{
	char msg[VT_ERRMSG_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return vt_errmsg_set(ps->err, code, "%s: %s", ps->where, msg);
}

static const char *kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

static const vt_payload_field *schema_find(const vt_payload_schema *s,
					   const char *path)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->fields[i].path && !strcmp(s->fields[i].path, path))
			return &s->fields[i];
	return NULL;
}

static const char *type_article(int t)
{
	switch (t) {
	case VT_PAYLOAD_KEYWORD: return "a keyword";
	case VT_PAYLOAD_INTEGER: return "an integer";
	case VT_PAYLOAD_FLOAT: return "a float";
	case VT_PAYLOAD_BOOL: return "a bool";
	}
	return "?";
}

static int check_key(struct parser *ps, const json_t *k, const char **out)
{
	if (!k)
		return FAIL(ps, VT_EINVAL, "missing \"key\"");
	if (!json_is_string(k))
		return FAIL(ps, VT_EINVAL, "\"key\" must be a string, got %s",
			    kind(k));
	const char *s = json_string_value(k);
	size_t len = json_string_length(k);
	if (len == 0 || len > 255)
		return FAIL(ps, VT_EINVAL, "\"key\" must be 1 to 255 bytes");
	if (s[0] == '.' || s[len - 1] == '.' || strstr(s, ".."))
		return FAIL(ps, VT_EINVAL, "key \"%s\" has an empty path segment", s);
	*out = s;
	return 0;
}

/* Checks a match/range against the declared type of its field. */
static int check_type(struct parser *ps, const char *key, int op)
{
	const vt_payload_field *f = schema_find(ps->schema, key);
	if (!f)
		return 0;
	int t = f->type, ok;
	const char *got;
	switch (op) {
	case VT__MATCH_STR:
	case VT__ANY_STR:
	case VT__EXCEPT_STR:
		ok = t == VT_PAYLOAD_KEYWORD;
		got = "a string";
		break;
	case VT__MATCH_INT:
	case VT__ANY_INT:
	case VT__EXCEPT_INT:
		ok = t == VT_PAYLOAD_INTEGER;
		got = "an integer";
		break;
	case VT__MATCH_BOOL:
		ok = t == VT_PAYLOAD_BOOL;
		got = "a boolean";
		break;
	case VT__RANGE:
		ok = t == VT_PAYLOAD_INTEGER || t == VT_PAYLOAD_FLOAT;
		got = "a range";
		break;
	default:
		return 0;
	}
	if (ok)
		return 0;
	if (t == VT_PAYLOAD_FLOAT && op != VT__RANGE)
		return FAIL(ps, VT_EINVAL,
			    "field '%s' is a float: use range, got %s", key, got);
	return FAIL(ps, VT_EINVAL, "field '%s' is %s, got %s", key,
		    type_article(t), got);
}

static int parse_list(struct parser *ps, struct vt__cond *c, const json_t *arr,
		      int str_op, int int_op)
{
	if (!json_is_array(arr))
		return FAIL(ps, VT_EINVAL, "expected an array of strings or integers, got %s",
			    kind(arr));
	size_t n = json_array_size(arr);
	if (n > VT_FILTER_MAX_VALUES)
		return FAIL(ps, VT_ELIMIT, "more than %u values", VT_FILTER_MAX_VALUES);
	/* The first element decides; an empty list is a list of strings. */
	int strs = n == 0 || json_is_string(json_array_get(arr, 0));
	c->op = strs ? str_op : int_op;
	if (strs)
		c->strs = vt_calloc(n ? n : 1, sizeof *c->strs);
	else
		c->ints = vt_malloc((n ? n : 1) * sizeof *c->ints);
	if (!c->strs && !c->ints)
		return FAIL(ps, VT_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);
		if (strs) {
			if (!json_is_string(v))
				return FAIL(ps, VT_EINVAL,
					    "[%zu]: the list holds strings, got %s",
					    i, kind(v));
			c->strs[i].len = json_string_length(v);
			c->strs[i].s = vt_malloc(c->strs[i].len + 1);
			if (!c->strs[i].s)
				return FAIL(ps, VT_ENOMEM, "out of memory");
			memcpy(c->strs[i].s, json_string_value(v), c->strs[i].len + 1);
			c->nvals = i + 1;
		} else {
			if (!json_is_integer(v))
				return FAIL(ps, VT_EINVAL,
					    "[%zu]: the list holds integers, got %s",
					    i, kind(v));
			c->ints[i] = json_integer_value(v);
			c->nvals = i + 1;
		}
	}
	/* Sort and drop duplicates, for binary search and index merges. */
	size_t m = 0;
	if (strs) {
		qsort(c->strs, n, sizeof *c->strs, str_qcmp);
		for (size_t i = 0; i < n; i++) {
			if (m && !vt__str_cmp(&c->strs[m - 1], &c->strs[i])) {
				vt_free(c->strs[i].s);
				continue;
			}
			c->strs[m++] = c->strs[i];
		}
	} else {
		qsort(c->ints, n, sizeof *c->ints, int_qcmp);
		for (size_t i = 0; i < n; i++)
			if (!m || c->ints[m - 1] != c->ints[i])
				c->ints[m++] = c->ints[i];
	}
	c->nvals = m;
	return 0;
}

static int parse_match(struct parser *ps, struct vt__cond *c, const json_t *m)
{
	if (!json_is_object(m))
		return FAIL(ps, VT_EINVAL, "expected an object, got %s", kind(m));
	if (json_object_size(m) != 1)
		return FAIL(ps, VT_EINVAL,
			    "expected exactly one of \"value\", \"any\", \"except\"");
	const char *op = json_object_iter_key(json_object_iter((json_t *)m));
	const json_t *v = json_object_iter_value(json_object_iter((json_t *)m));
	size_t w = where_push(ps, ".%s", op);
	int rc = 0;
	if (!strcmp(op, "value")) {
		if (json_is_string(v)) {
			c->op = VT__MATCH_STR;
			c->strs = vt_calloc(1, sizeof *c->strs);
			if (!c->strs)
				return FAIL(ps, VT_ENOMEM, "out of memory");
			c->strs[0].len = json_string_length(v);
			c->strs[0].s = vt_malloc(c->strs[0].len + 1);
			if (!c->strs[0].s)
				return FAIL(ps, VT_ENOMEM, "out of memory");
			memcpy(c->strs[0].s, json_string_value(v), c->strs[0].len + 1);
			c->nvals = 1;
		} else if (json_is_integer(v)) {
			c->op = VT__MATCH_INT;
			c->ints = vt_malloc(sizeof *c->ints);
			if (!c->ints)
				return FAIL(ps, VT_ENOMEM, "out of memory");
			c->ints[0] = json_integer_value(v);
			c->nvals = 1;
		} else if (json_is_boolean(v)) {
			c->op = VT__MATCH_BOOL;
			c->boolean = json_is_true(v);
		} else {
			rc = FAIL(ps, VT_EINVAL,
				  "expected a string, an integer or a boolean, got %s%s",
				  kind(v),
				  json_is_real(v) ? " (use range for real numbers)" : "");
		}
	} else if (!strcmp(op, "any")) {
		rc = parse_list(ps, c, v, VT__ANY_STR, VT__ANY_INT);
	} else if (!strcmp(op, "except")) {
		rc = parse_list(ps, c, v, VT__EXCEPT_STR, VT__EXCEPT_INT);
	} else {
		where_pop(ps, w);
		return FAIL(ps, VT_EINVAL,
			    "unknown operator \"%s\" (expected value, any or except)",
			    op);
	}
	where_pop(ps, w);
	return rc;
}

static int parse_range(struct parser *ps, struct vt__cond *c, const json_t *r)
{
	if (!json_is_object(r))
		return FAIL(ps, VT_EINVAL, "expected an object, got %s", kind(r));
	if (json_object_size(r) == 0)
		return FAIL(ps, VT_EINVAL, "expected at least one of gt, gte, lt, lte");
	c->op = VT__RANGE;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)r, k, v) {
		int lo = !strcmp(k, "gt") || !strcmp(k, "gte");
		int hi = !strcmp(k, "lt") || !strcmp(k, "lte");
		if (!lo && !hi)
			return FAIL(ps, VT_EINVAL,
				    "unknown operator \"%s\" (expected gt, gte, lt or lte)",
				    k);
		if (!json_is_number(v))
			return FAIL(ps, VT_EINVAL, "\"%s\" must be a number, got %s",
				    k, kind(v));
		double d = json_number_value(v);
		int incl = k[2] == 'e';
		if (lo) {
			if (c->has_lo)
				return FAIL(ps, VT_EINVAL, "both gt and gte given");
			c->has_lo = 1;
			c->lo = d;
			c->lo_incl = incl;
		} else {
			if (c->has_hi)
				return FAIL(ps, VT_EINVAL, "both lt and lte given");
			c->has_hi = 1;
			c->hi = d;
			c->hi_incl = incl;
		}
	}
	return 0;
}

static int parse_filter(struct parser *ps, const json_t *v, uint32_t depth,
			struct vt__cond **out);

static int parse_cond(struct parser *ps, const json_t *v, uint32_t depth,
		      struct vt__cond **out)
{
	if (!json_is_object(v))
		return FAIL(ps, VT_EINVAL, "a condition must be an object, got %s",
			    kind(v));
	/* A nested filter; {} is one too (it matches everything), as in
	 * Qdrant, where every clause of a filter is optional. */
	if (json_object_size(v) == 0 || json_object_get(v, "must") ||
	    json_object_get(v, "should") || json_object_get(v, "must_not"))
		return parse_filter(ps, v, depth + 1, out);
	if (++ps->nconds > VT_FILTER_MAX_CONDS)
		return FAIL(ps, VT_ELIMIT, "more than %u conditions",
			    VT_FILTER_MAX_CONDS);
	struct vt__cond *c = vt_calloc(1, sizeof *c);
	if (!c)
		return FAIL(ps, VT_ENOMEM, "out of memory");
	*out = c;
	const json_t *ie = json_object_get(v, "is_empty");
	const json_t *in = json_object_get(v, "is_null");
	const char *key = NULL;
	int rc;
	if (ie || in) {
		const char *name = ie ? "is_empty" : "is_null";
		if (json_object_size(v) != 1)
			return FAIL(ps, VT_EINVAL, "%s must be the only key of its condition",
				    name);
		const json_t *o = ie ? ie : in;
		size_t w = where_push(ps, ".%s", name);
		if (!json_is_object(o)) {
			rc = FAIL(ps, VT_EINVAL, "expected {\"key\": ...}, got %s", kind(o));
		} else if (json_object_size(o) != 1 || !json_object_get(o, "key")) {
			rc = FAIL(ps, VT_EINVAL, "expected {\"key\": ...} and nothing else");
		} else {
			rc = check_key(ps, json_object_get(o, "key"), &key);
		}
		where_pop(ps, w);
		if (rc)
			return rc;
		c->op = ie ? VT__IS_EMPTY : VT__IS_NULL;
		goto path;
	}
	const char *k;
	json_t *x;
	const json_t *m = NULL, *r = NULL;
	json_object_foreach((json_t *)v, k, x) {
		if (!strcmp(k, "key"))
			continue;
		if (!strcmp(k, "match"))
			m = x;
		else if (!strcmp(k, "range"))
			r = x;
		else if (!strcmp(k, "has_id") || !strcmp(k, "nested") ||
			 !strcmp(k, "geo_radius") || !strcmp(k, "geo_bounding_box") ||
			 !strcmp(k, "geo_polygon") || !strcmp(k, "values_count") ||
			 !strcmp(k, "min_should"))
			return FAIL(ps, VT_ENOTSUP, "\"%s\" is not supported", k);
		else
			return FAIL(ps, VT_EINVAL,
				    "unknown key \"%s\" (a condition has \"key\" with "
				    "\"match\" or \"range\", or is is_empty, is_null or "
				    "a nested filter)",
				    k);
	}
	if ((rc = check_key(ps, json_object_get(v, "key"), &key)))
		return rc;
	if (m && r)
		return FAIL(ps, VT_EINVAL,
			    "both \"match\" and \"range\": put them in two conditions");
	if (!m && !r)
		return FAIL(ps, VT_EINVAL, "field \"%s\": expected \"match\" or \"range\"",
			    key);
	size_t w = where_push(ps, "%s", m ? ".match" : ".range");
	rc = m ? parse_match(ps, c, m) : parse_range(ps, c, r);
	if (!rc)
		rc = check_type(ps, key, c->op);
	where_pop(ps, w);
	if (rc)
		return rc;
path:
	if (vt__path_init(&c->path, key))
		return FAIL(ps, VT_ENOMEM, "out of memory");
	return 0;
}

static int parse_list_of(struct parser *ps, const json_t *arr, const char *name,
			 uint32_t depth, struct vt__cond ***out, size_t *n)
{
	size_t w = where_push(ps, ".%s", name);
	int rc = 0;
	if (!json_is_array(arr)) {
		rc = FAIL(ps, VT_EINVAL, "expected an array of conditions, got %s",
			  kind(arr));
		goto done;
	}
	size_t len = json_array_size(arr);
	if (len > VT_FILTER_MAX_CONDS) {
		rc = FAIL(ps, VT_ELIMIT, "more than %u conditions", VT_FILTER_MAX_CONDS);
		goto done;
	}
	*out = vt_calloc(len ? len : 1, sizeof **out);
	if (!*out) {
		rc = FAIL(ps, VT_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < len; i++) {
		size_t w2 = where_push(ps, "[%zu]", i);
		rc = parse_cond(ps, json_array_get(arr, i), depth, &(*out)[i]);
		*n = i + 1; /* freed by the caller on error too */
		where_pop(ps, w2);
		if (rc)
			break;
	}
done:
	where_pop(ps, w);
	return rc;
}

static int parse_filter(struct parser *ps, const json_t *v, uint32_t depth,
			struct vt__cond **out)
{
	if (!json_is_object(v))
		return FAIL(ps, VT_EINVAL, "a filter must be an object, got %s", kind(v));
	if (depth > VT_FILTER_MAX_DEPTH)
		return FAIL(ps, VT_ELIMIT, "filters nested deeper than %u",
			    VT_FILTER_MAX_DEPTH);
	if (++ps->nconds > VT_FILTER_MAX_CONDS)
		return FAIL(ps, VT_ELIMIT, "more than %u conditions",
			    VT_FILTER_MAX_CONDS);
	struct vt__cond *c = vt_calloc(1, sizeof *c);
	if (!c)
		return FAIL(ps, VT_ENOMEM, "out of memory");
	c->op = VT__FILTER;
	*out = c;
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		int rc;
		if (!strcmp(k, "must"))
			rc = parse_list_of(ps, x, k, depth, &c->must, &c->nmust);
		else if (!strcmp(k, "should"))
			rc = parse_list_of(ps, x, k, depth, &c->should, &c->nshould);
		else if (!strcmp(k, "must_not"))
			rc = parse_list_of(ps, x, k, depth, &c->must_not, &c->nmust_not);
		else if (!strcmp(k, "min_should"))
			rc = FAIL(ps, VT_ENOTSUP, "\"min_should\" is not supported");
		else
			rc = FAIL(ps, VT_EINVAL,
				  "unknown key \"%s\" (a filter has must, should and must_not)",
				  k);
		if (rc)
			return rc;
	}
	return 0;
}

int vt_filter_parse(const char *json, size_t len, const vt_payload_schema *schema,
		    vt_filter **out, vt_errmsg *err)
{
	*out = NULL;
	if (len > VT_FILTER_MAX_BYTES)
		return vt_errmsg_set(err, VT_ELIMIT, "filter: %zu bytes, the limit is %u",
				     len, VT_FILTER_MAX_BYTES);
	json_error_t je;
	json_t *root = json_loadb(json ? json : "", json ? len : 0,
				  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return vt_errmsg_set(err, VT_EINVAL,
				     "filter: invalid JSON at line %d column %d: %s",
				     je.line, je.column, je.text);
	struct parser ps = {.schema = schema, .err = err};
	strcpy(ps.where, "filter");
	ps.wlen = strlen(ps.where);
	vt_filter *f = vt_calloc(1, sizeof *f);
	if (f && (f->src = vt_malloc(len + 1))) {
		memcpy(f->src, json ? json : "", len);
		f->src[len] = '\0';
		f->src_len = len;
	}
	int rc = f && f->src ? parse_filter(&ps, root, 1, &f->root)
			     : vt_errmsg_set(err, VT_ENOMEM,
					     "filter: out of memory");
	json_decref(root);
	if (rc) {
		vt_filter_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* ---- evaluation ------------------------------------------------------------------ */

static int v_match(const json_t *v, void *ctx)
{
	const struct vt__cond *c = ctx;
	switch (c->op) {
	case VT__MATCH_STR:
		return json_is_string(v) && json_string_length(v) == c->strs[0].len &&
		       !memcmp(json_string_value(v), c->strs[0].s, c->strs[0].len);
	case VT__MATCH_INT:
		return json_is_integer(v) && json_integer_value(v) == c->ints[0];
	case VT__MATCH_BOOL:
		return json_is_boolean(v) && json_is_true(v) == c->boolean;
	case VT__ANY_STR:
		return json_is_string(v) &&
		       vt__str_in(c, json_string_value(v), json_string_length(v));
	case VT__ANY_INT:
		return json_is_integer(v) && vt__int_in(c, json_integer_value(v));
	case VT__EXCEPT_STR:
		return json_is_string(v) &&
		       !vt__str_in(c, json_string_value(v), json_string_length(v));
	case VT__EXCEPT_INT:
		return json_is_integer(v) && !vt__int_in(c, json_integer_value(v));
	case VT__RANGE:
		return json_is_number(v) && vt__range_ok(c, json_number_value(v));
	case VT__IS_NULL:
		return json_is_null(v);
	case VT__IS_EMPTY: /* "found a value": the condition negates it */
		return !json_is_null(v);
	}
	return 0;
}

static int eval(const struct vt__cond *c, const json_t *root)
{
	if (c->op != VT__FILTER) {
		int hit = vt__path_visit(root, &c->path, v_match, (void *)c);
		return c->op == VT__IS_EMPTY ? !hit : hit;
	}
	for (size_t i = 0; i < c->nmust; i++)
		if (!eval(c->must[i], root))
			return 0;
	for (size_t i = 0; i < c->nmust_not; i++)
		if (eval(c->must_not[i], root))
			return 0;
	if (c->nshould) {
		for (size_t i = 0; i < c->nshould; i++)
			if (eval(c->should[i], root))
				return 1;
		return 0;
	}
	return 1;
}

int vt_filter_match(const vt_filter *f, const vt_payload *p)
{
	/* A NULL root reaches no values, exactly like {}. */
	return eval(f->root, p ? p->root : NULL);
}
