/* payload_int.h: internals shared by payload.c, filter.c and index.c: the
 * payload's jansson tree, dotted paths, and the compiled filter tree.
 * Not part of the API. */
#ifndef VT_PAYLOAD_PAYLOAD_INT_H
#define VT_PAYLOAD_PAYLOAD_INT_H

#include <jansson.h>

#include "payload.h"

struct vt_payload {
	json_t *root; /* an object, validated, never modified */
};

/* A dotted path split into segments. */
struct vt__path {
	char *text;  /* "meta.color" */
	char **seg;  /* pointers into one allocation */
	uint32_t nseg;
};

int vt__path_init(struct vt__path *p, const char *text);
void vt__path_free(struct vt__path *p);

/* Calls fn on every value the path reaches in `v`: arrays on the way and at
 * the end are entered element by element (any element may match). Stops
 * and returns 1 as soon as fn returns 1. */
typedef int (*vt__visit_fn)(const json_t *v, void *ctx);
int vt__path_visit(const json_t *v, const struct vt__path *p,
		   vt__visit_fn fn, void *ctx);

enum vt__op {
	VT__MATCH_STR = 1,
	VT__MATCH_INT,
	VT__MATCH_BOOL,
	VT__ANY_STR,
	VT__ANY_INT,
	VT__EXCEPT_STR,
	VT__EXCEPT_INT,
	VT__RANGE,
	VT__IS_EMPTY,
	VT__IS_NULL,
	VT__FILTER, /* a nested must/should/must_not node */
};

struct vt__str {
	char *s;
	size_t len;
};

struct vt__cond {
	int op;
	struct vt__path path;
	/* MATCH_STR and *_STR lists: sorted by (len, bytes), unique */
	struct vt__str *strs;
	/* MATCH_INT and *_INT lists: sorted, unique */
	int64_t *ints;
	size_t nvals;
	int boolean;
	/* RANGE: a bound is active when its flag is set */
	double lo, hi;
	int has_lo, lo_incl, has_hi, hi_incl;
	/* FILTER */
	struct vt__cond **must, **should, **must_not;
	size_t nmust, nshould, nmust_not;
};

struct vt_filter {
	struct vt__cond *root; /* op FILTER */
	char *src;             /* the JSON text it was parsed from */
	size_t src_len;
};

int vt__str_cmp(const struct vt__str *a, const struct vt__str *b);
int vt__str_in(const struct vt__cond *c, const char *s, size_t len);
int vt__int_in(const struct vt__cond *c, int64_t v);
int vt__range_ok(const struct vt__cond *c, double v);

#endif
