/* payload.c: parsing, validation and canonical serialisation of point
 * payloads (jansson underneath), and dotted-path lookup. Not the filter
 * language: that is filter.c. */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "payload_int.h"

void vt_payload_limits_default(vt_payload_limits *lim)
{
	lim->max_bytes = 65536;
	lim->max_depth = 16;
	lim->max_keys = 1024;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* Checks depth and key count; jansson already bounds recursion (2048). */
static int check_tree(const json_t *v, uint32_t depth,
		      const vt_payload_limits *lim, uint32_t *keys,
		      vt_errmsg *err)
{
	if (json_is_object(v) || json_is_array(v)) {
		if (depth > lim->max_depth)
			return vt_errmsg_set(err, VT_ELIMIT,
					     "payload: nesting deeper than %u levels",
					     lim->max_depth);
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach((json_t *)v, k, c) {
			if (++*keys > lim->max_keys)
				return vt_errmsg_set(err, VT_ELIMIT,
						     "payload: more than %u keys",
						     lim->max_keys);
			int rc = check_tree(c, depth + 1, lim, keys, err);
			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c) {
			int rc = check_tree(c, depth + 1, lim, keys, err);
			if (rc)
				return rc;
		}
	} else if (json_is_real(v) && !isfinite(json_real_value(v))) {
		return vt_errmsg_set(err, VT_EINVAL, "payload: number is not finite");
	}
	return 0;
}

int vt_payload_parse(const char *json, size_t len, const vt_payload_limits *lim,
		     vt_payload **out, vt_errmsg *err)
{
	vt_payload_limits dl;
	*out = NULL;
	if (!lim) {
		vt_payload_limits_default(&dl);
		lim = &dl;
	}
	if (!json && len)
		return vt_errmsg_set(err, VT_EINVAL, "payload: no input");
	if (len > lim->max_bytes)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "payload: %zu bytes, the limit is %zu", len,
				     lim->max_bytes);
	json_error_t je;
	json_t *root = json_loadb(json ? json : "", len,
				  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return vt_errmsg_set(err, VT_EINVAL,
				     "payload: invalid JSON at line %d column %d: %s",
				     je.line, je.column, je.text);
	int rc;
	if (!json_is_object(root)) {
		rc = vt_errmsg_set(err, VT_EINVAL,
				   "payload: must be a JSON object, got %s",
				   json_kind(root));
		goto err;
	}
	uint32_t keys = 0;
	rc = check_tree(root, 1, lim, &keys, err);
	if (rc)
		goto err;
	vt_payload *p = vt_malloc(sizeof *p);
	if (!p) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "payload: out of memory");
		goto err;
	}
	p->root = root;
	*out = p;
	return 0;
err:
	json_decref(root);
	return rc;
}

int vt_payload_empty(vt_payload **out)
{
	*out = NULL;
	vt_payload *p = vt_malloc(sizeof *p);
	if (!p)
		return VT_ENOMEM;
	p->root = json_object();
	if (!p->root) {
		vt_free(p);
		return VT_ENOMEM;
	}
	*out = p;
	return 0;
}

int vt_payload_merge(const vt_payload *base, const vt_payload *patch,
		     vt_payload **out)
{
	*out = NULL;
	vt_payload *p = vt_malloc(sizeof *p);
	if (!p)
		return VT_ENOMEM;
	/* Both trees are immutable; the merged object shares their values
	 * (jansson counts references), so only the top object is new. */
	p->root = json_copy(base->root);
	if (!p->root || json_object_update(p->root, patch->root)) {
		json_decref(p->root);
		vt_free(p);
		return VT_ENOMEM;
	}
	*out = p;
	return 0;
}

void vt_payload_free(vt_payload *p)
{
	if (!p)
		return;
	json_decref(p->root);
	vt_free(p);
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

int vt_payload_dump(const vt_payload *p, vt_buf *out)
{
	size_t n = json_dumpb(p->root, NULL, 0, DUMP_FLAGS);
	if (n == 0)
		return VT_ENOMEM;
	int rc = vt_buf_reserve(out, n);
	if (rc)
		return rc;
	size_t m = json_dumpb(p->root, (char *)out->data + out->len, n, DUMP_FLAGS);
	if (m != n)
		return VT_EINTERNAL;
	out->len += n;
	return 0;
}

/* ---- schema names ----------------------------------------------------------- */

static const char *const type_names[] = {NULL, "keyword", "integer", "float",
					  "bool"};

const char *vt_payload_type_name(int type)
{
	if (type < VT_PAYLOAD_KEYWORD || type > VT_PAYLOAD_BOOL)
		return "?";
	return type_names[type];
}

int vt_payload_type_parse(const char *s)
{
	for (int t = VT_PAYLOAD_KEYWORD; t <= VT_PAYLOAD_BOOL; t++)
		if (!strcmp(s, type_names[t]))
			return t;
	return -1;
}

/* ---- paths ------------------------------------------------------------------ */

int vt__path_init(struct vt__path *p, const char *text)
{
	size_t len = strlen(text);
	uint32_t nseg = 1;
	for (size_t i = 0; i < len; i++)
		nseg += text[i] == '.';
	p->text = vt_malloc(2 * (len + 1));
	p->seg = vt_malloc(nseg * sizeof *p->seg);
	if (!p->text || !p->seg) {
		vt_free(p->text);
		vt_free(p->seg);
		p->text = NULL;
		p->seg = NULL;
		return VT_ENOMEM;
	}
	memcpy(p->text, text, len + 1);
	/* The second half holds the segments, NUL-separated. */
	char *s = p->text + len + 1;
	memcpy(s, text, len + 1);
	p->nseg = 0;
	p->seg[p->nseg++] = s;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '.') {
			s[i] = '\0';
			p->seg[p->nseg++] = s + i + 1;
		}
	return 0;
}

void vt__path_free(struct vt__path *p)
{
	vt_free(p->text);
	vt_free(p->seg);
	p->text = NULL;
	p->seg = NULL;
}

static int visit(const json_t *v, char *const *seg, uint32_t nseg,
		 vt__visit_fn fn, void *ctx)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c) {
			if (visit(c, seg, nseg, fn, ctx))
				return 1;
		}
		return 0;
	}
	if (nseg == 0)
		return fn(v, ctx);
	if (!json_is_object(v))
		return 0;
	const json_t *c = json_object_get(v, seg[0]);
	return c ? visit(c, seg + 1, nseg - 1, fn, ctx) : 0;
}

int vt__path_visit(const json_t *v, const struct vt__path *p, vt__visit_fn fn,
		   void *ctx)
{
	return v ? visit(v, p->seg, p->nseg, fn, ctx) : 0;
}
