/* pbjson.c: descriptor-driven JSON mapping of protobuf-c messages (see
 * pbjson.h). Works on proto2 messages as protobuf-c lays them out: an
 * optional scalar has a protobuf_c_boolean "has_" at quantifier_offset,
 * strings and messages are pointers (NULL = absent), a repeated field has
 * a size_t count at quantifier_offset and an array pointer at offset. */
#include "pbjson.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* String fields that carry JSON text. */
static int is_json_field(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_STRING &&
	       (!strcmp(f->name, "payload") || !strcmp(f->name, "filter"));
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	}
	return 0;
}

static int fail(vt_errmsg *err, const vt_json_value *v, int rc,
		const char *what)
{
	char path[160];
	vt_json_path(v, path, sizeof path);
	return vt_errmsg_set(err, rc, "%s: %s", path, what);
}

/* The enum value named `s` ("cosine", "COSINE", "DISTANCE_COSINE"...). */
static int enum_by_name(const ProtobufCEnumDescriptor *ed, const char *s,
			int *out)
{
	for (unsigned i = 0; i < ed->n_values; i++) {
		const char *n = ed->values[i].name; /* "COSINE" */
		if (!strcasecmp(n, s)) {
			*out = ed->values[i].value;
			return 0;
		}
	}
	return -1;
}

/* Decodes one scalar (or string/message) JSON value into `dst`. */
static int decode_one(const ProtobufCFieldDescriptor *f, const vt_json_value *v,
		      void *dst, vt_arena *a, vt_errmsg *err)
{
	int rc;
	int64_t i64;
	uint64_t u64;
	double d;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = vt_json_get_int64(v, &i64, err)))
			return rc;
		if (i64 < INT32_MIN || i64 > INT32_MAX)
			return fail(err, v, VT_EINVAL, "out of range");
		*(int32_t *)dst = (int32_t)i64;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = vt_json_get_uint64(v, &u64, err)))
			return rc == VT_ERANGE ? VT_EINVAL : rc;
		if (u64 > UINT32_MAX)
			return fail(err, v, VT_EINVAL,
				    "out of range (0..4294967295)");
		*(uint32_t *)dst = (uint32_t)u64;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		rc = vt_json_get_int64(v, (int64_t *)dst, err);
		return rc == VT_ERANGE ? VT_EINVAL : rc;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		rc = vt_json_get_uint64(v, (uint64_t *)dst, err);
		return rc == VT_ERANGE ? VT_EINVAL : rc;
	case PROTOBUF_C_TYPE_FLOAT:
		rc = vt_json_get_float(v, (float *)dst, err);
		return rc == VT_ERANGE ? VT_EINVAL : rc;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rc = vt_json_get_double(v, &d, err)))
			return rc == VT_ERANGE ? VT_EINVAL : rc;
		*(double *)dst = d;
		return 0;
	case PROTOBUF_C_TYPE_BOOL: {
		int b;
		if ((rc = vt_json_get_bool(v, &b, err)))
			return rc;
		*(protobuf_c_boolean *)dst = b != 0;
		return 0;
	}
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		int ev;
		if (vt_json_typeof(v) == VT_JSON_STRING) {
			const char *s;
			vt_json_get_string(v, &s, NULL, NULL);
			if (enum_by_name(ed, s, &ev)) {
				char what[256];
				size_t o = (size_t)snprintf(what, sizeof what,
							    "unknown value \"%.40s\"; one of",
							    s);
				for (unsigned i = 0; i < ed->n_values && o < sizeof what; i++)
					if (ed->values[i].value)
						o += (size_t)snprintf(
							what + o, sizeof what - o,
							"%s %s", i > 1 ? "," : "",
							ed->values[i].name);
				for (char *p = what; *p; p++)
					if (p > what + 10)
						*p = (char)tolower((unsigned char)*p);
				return fail(err, v, VT_EINVAL, what);
			}
		} else {
			if ((rc = vt_json_get_int64(v, &i64, err)))
				return rc == VT_ERANGE ? VT_EINVAL : rc;
			if (!protobuf_c_enum_descriptor_get_value(ed, (int)i64) ||
			    i64 < INT32_MIN || i64 > INT32_MAX)
				return fail(err, v, VT_EINVAL, "unknown value");
			ev = (int)i64;
		}
		*(int *)dst = ev;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s;
		size_t len;
		if (vt_json_typeof(v) == VT_JSON_OBJECT ||
		    (vt_json_typeof(v) == VT_JSON_ARRAY && is_json_field(f))) {
			s = vt_json_raw(v, &len);
		} else if ((rc = vt_json_get_string(v, &s, &len, err))) {
			return rc;
		}
		char *copy = vt_arena_strndup(a, s, len);
		if (!copy)
			return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		*(char **)dst = copy;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return vt_pbjson_decode(v, f->descriptor, a,
					(ProtobufCMessage **)dst, err);
	case PROTOBUF_C_TYPE_BYTES:
		return fail(err, v, VT_EINVAL, "bytes fields are not supported");
	}
	return fail(err, v, VT_EINTERNAL, "unknown field type");
}

static int decode_repeated(const ProtobufCFieldDescriptor *f,
			   const vt_json_value *v, ProtobufCMessage *m,
			   vt_arena *a, vt_errmsg *err)
{
	if (vt_json_typeof(v) != VT_JSON_ARRAY)
		return fail(err, v, VT_EINVAL, "expected an array");
	size_t n = v->count, es = elem_size(f);
	void *arr = vt_arena_calloc(a, n ? n : 1, es);
	if (!arr)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	int rc;
	if (f->type == PROTOBUF_C_TYPE_FLOAT) {
		/* the hot path: vectors */
		size_t got;
		if ((rc = vt_json_get_floats(v, arr, n, &got, err)))
			return rc == VT_ERANGE ? VT_EINVAL : rc;
	} else {
		vt_json_iter it;
		const vt_json_value *e, *k;
		size_t i = 0;
		vt_json_iter_init(&it, v);
		while ((e = vt_json_iter_next(&it, &k))) {
			if (vt_json_typeof(e) == VT_JSON_NULL)
				return fail(err, e, VT_EINVAL,
					    "null is not allowed in an array");
			if ((rc = decode_one(f, e, (char *)arr + i * es, a, err)))
				return rc;
			i++;
		}
	}
	*(size_t *)((char *)m + f->quantifier_offset) = n;
	*(void **)((char *)m + f->offset) = arr;
	return 0;
}

int vt_pbjson_decode(const vt_json_value *v,
		     const ProtobufCMessageDescriptor *desc, vt_arena *a,
		     ProtobufCMessage **out, vt_errmsg *err)
{
	if (vt_json_typeof(v) != VT_JSON_OBJECT)
		return fail(err, v, VT_EINVAL, "expected an object");
	ProtobufCMessage *m = vt_arena_alloc(a, desc->sizeof_message);
	if (!m)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	protobuf_c_message_init(desc, m);
	vt_json_iter it;
	const vt_json_value *val, *key;
	vt_json_iter_init(&it, v);
	while ((val = vt_json_iter_next(&it, &key))) {
		const char *name;
		vt_json_get_string(key, &name, NULL, NULL);
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(desc, name);
		if (!f)
			return fail(err, val, VT_EINVAL, "unknown field");
		if (vt_json_typeof(val) == VT_JSON_NULL)
			continue;
		int rc;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			rc = decode_repeated(f, val, m, a, err);
		} else {
			rc = decode_one(f, val, (char *)m + f->offset, a, err);
			if (!rc && f->quantifier_offset &&
			    f->type != PROTOBUF_C_TYPE_STRING &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE)
				*(protobuf_c_boolean *)((char *)m +
							f->quantifier_offset) = 1;
		}
		if (rc)
			return rc;
	}
	*out = m;
	return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

static void encode_enum(vt_json_writer *w, const ProtobufCFieldDescriptor *f,
			int value)
{
	const ProtobufCEnumValue *ev =
		protobuf_c_enum_descriptor_get_value(f->descriptor, value);
	if (!ev) {
		vt_json_w_int(w, value);
		return;
	}
	char name[64];
	size_t n = strlen(ev->name);
	if (n >= sizeof name)
		n = sizeof name - 1;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)ev->name[i]);
	vt_json_w_str(w, name, n);
}

static void encode_one(vt_json_writer *w, const ProtobufCFieldDescriptor *f,
		       const void *src)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		vt_json_w_int(w, *(const int32_t *)src);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		vt_json_w_uint(w, *(const uint32_t *)src);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		vt_json_w_int(w, *(const int64_t *)src);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		vt_json_w_uint(w, *(const uint64_t *)src);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		vt_json_w_float(w, *(const float *)src);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		vt_json_w_double(w, *(const double *)src);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		vt_json_w_bool(w, *(const protobuf_c_boolean *)src);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		encode_enum(w, f, *(const int *)src);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)src;
		if (is_json_field(f) && s && *s)
			vt_json_w_raw(w, s, strlen(s));
		else
			vt_json_w_str(w, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		vt_pbjson_encode(*(const ProtobufCMessage *const *)src, w);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		vt_json_w_null(w);
		break;
	}
}

void vt_pbjson_encode(const ProtobufCMessage *m, vt_json_writer *w)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	vt_json_w_obj_begin(w);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const void *arr = *(void *const *)(base + f->offset);
			/* Empty lists of messages or strings are written too:
			 * a client reading resp["results"] must not meet a
			 * missing key. An empty number list (a vector not
			 * asked for) is left out. */
			if (!n && f->type != PROTOBUF_C_TYPE_MESSAGE &&
			    f->type != PROTOBUF_C_TYPE_STRING)
				continue;
			vt_json_w_key(w, f->name, strlen(f->name));
			if (f->type == PROTOBUF_C_TYPE_FLOAT && n) {
				vt_json_w_floats(w, arr, n);
				continue;
			}
			vt_json_w_arr_begin(w);
			for (size_t k = 0; k < n; k++)
				encode_one(w, f,
					   (const char *)arr + k * elem_size(f));
			vt_json_w_arr_end(w);
			continue;
		}
		if (f->type == PROTOBUF_C_TYPE_STRING ||
		    f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const void *p = *(void *const *)(base + f->offset);
			if (!p || p == f->default_value)
				continue;
		} else if (f->quantifier_offset &&
			   !*(const protobuf_c_boolean *)(base +
							  f->quantifier_offset)) {
			continue;
		}
		vt_json_w_key(w, f->name, strlen(f->name));
		encode_one(w, f, base + f->offset);
	}
	vt_json_w_obj_end(w);
}

int vt_pbjson_set_string(ProtobufCMessage *m, const char *name, char *value)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
								name);
	if (!f || f->type != PROTOBUF_C_TYPE_STRING ||
	    f->label == PROTOBUF_C_LABEL_REPEATED)
		return VT_ENOENT;
	*(char **)((char *)m + f->offset) = value;
	return 0;
}
