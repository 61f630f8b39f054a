/* rest.h: the REST routes of the API: which method and path parameters a
 * request maps to (docs/api.md, docs/openapi.yaml). Pure functions, no I/O,
 * so tests and the OpenAPI check can walk them. */
#ifndef VT_VECTRON_REST_H
#define VT_VECTRON_REST_H

#include <stddef.h>

enum vt_rest_special {
	VT_REST_API = 0,    /* a method of the API table */
	VT_REST_HEALTH,     /* GET /health */
	VT_REST_READY,      /* GET /ready */
	VT_REST_METRICS,    /* GET /metrics */
	/* a gateway's view of its cluster, from the PD (404 in serve) */
	VT_REST_CLUSTER_STATUS,      /* GET /v1/cluster/status */
	VT_REST_CLUSTER_WORKERS,     /* GET /v1/cluster/workers */
	VT_REST_CLUSTER_COLLECTIONS, /* GET /v1/cluster/collections[/{name}] */
};

typedef struct vt_rest_route {
	const char *verb;    /* "GET", "POST", ... */
	const char *pattern; /* "/v1/collections/{collection}/points/search" */
	const char *method;  /* API method name, or NULL for specials */
	int special;         /* enum vt_rest_special */
	int single;          /* GET /points/{id}: 404 when absent */
} vt_rest_route;

#define VT_REST_MAX_PARAMS 2

typedef struct vt_rest_match {
	const vt_rest_route *route;
	int n;
	char name[VT_REST_MAX_PARAMS][32];     /* "collection", "id" */
	char value[VT_REST_MAX_PARAMS][512];   /* percent-decoded */
} vt_rest_match;

/* The table. */
const vt_rest_route *vt_rest_routes(size_t *n);

/* Matches `verb` `path`: 0 and *m filled; 404 when no pattern fits;
 * 405 when a pattern fits but not with this verb; 400 for a bad
 * percent-encoding or a parameter over 511 bytes. */
int vt_rest_match_route(const char *verb, const char *path, vt_rest_match *m);

#endif
