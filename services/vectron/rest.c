/* rest.c: the REST route table and its matcher (rest.h). */
#include "rest.h"

#include <string.h>

#include "base/text.h"

static const vt_rest_route routes[] = {
	{"GET", "/health", NULL, VT_REST_HEALTH, 0},
	{"GET", "/v1/health", NULL, VT_REST_HEALTH, 0},
	{"GET", "/ready", NULL, VT_REST_READY, 0},
	{"GET", "/metrics", NULL, VT_REST_METRICS, 0},
	{"GET", "/v1/cluster/status", NULL, VT_REST_CLUSTER_STATUS, 0},
	{"GET", "/v1/cluster/workers", NULL, VT_REST_CLUSTER_WORKERS, 0},
	{"GET", "/v1/cluster/collections", NULL, VT_REST_CLUSTER_COLLECTIONS, 0},
	{"GET", "/v1/cluster/collections/{name}", NULL,
	 VT_REST_CLUSTER_COLLECTIONS, 0},
	{"POST", "/v1/collections", "CreateCollection", 0, 0},
	{"GET", "/v1/collections", "ListCollections", 0, 0},
	{"GET", "/v1/collections/{name}", "GetCollection", 0, 0},
	{"GET", "/v1/collections/{name}/status", "GetCollection", 0, 0},
	{"DELETE", "/v1/collections/{name}", "DeleteCollection", 0, 0},
	{"POST", "/v1/collections/{collection}/points", "Upsert", 0, 0},
	{"PUT", "/v1/collections/{collection}/points", "Upsert", 0, 0},
	{"POST", "/v1/collections/{collection}/points/get", "Get", 0, 0},
	{"GET", "/v1/collections/{collection}/points/{id}", "Get", 0, 1},
	{"DELETE", "/v1/collections/{collection}/points/{id}", "Delete", 0, 0},
	{"POST", "/v1/collections/{collection}/points/delete", "Delete", 0, 0},
	{"POST", "/v1/collections/{collection}/points/payload", "SetPayload", 0,
	 0},
	{"POST", "/v1/collections/{collection}/points/scroll", "Scroll", 0, 0},
	{"POST", "/v1/collections/{collection}/points/count", "Count", 0, 0},
	{"POST", "/v1/collections/{collection}/points/search", "Search", 0, 0},
	{"POST", "/v1/collections/{collection}/points/search/batch",
	 "SearchBatch", 0, 0},
};

#define N (sizeof routes / sizeof routes[0])

const vt_rest_route *vt_rest_routes(size_t *n)
{
	*n = N;
	return routes;
}

/* Matches one pattern; 1 on a fit (m filled, *literals = the literal
 * segments it matched), 0 otherwise, -1 bad input. */
static int fit(const char *pat, const char *path, vt_rest_match *m,
	       int *literals)
{
	m->n = 0;
	*literals = 0;
	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		const char *pe = strchr(pat, '/'), *se = strchr(path, '/');
		size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
		size_t sl = se ? (size_t)(se - path) : strlen(path);
		if (pl && pat[0] == '{') {
			if (sl == 0 || m->n == VT_REST_MAX_PARAMS)
				return 0;
			size_t nl = pl - 2; /* "{name}" */
			if (nl >= sizeof m->name[0])
				return 0;
			memcpy(m->name[m->n], pat + 1, nl);
			m->name[m->n][nl] = '\0';
			if (vt_pct_decode(path, sl, m->value[m->n],
					  sizeof m->value[m->n], 0))
				return -1;
			m->n++;
		} else if (pl != sl || strncmp(pat, path, pl)) {
			return 0;
		} else {
			(*literals)++;
		}
		pat += pl;
		path += sl;
	}
	return !*pat && (!*path || !strcmp(path, "/"));
}

/* The most specific pattern wins: ".../points/search" is the search route
 * for every verb, never the point "search" (so GET on it is 405, and
 * DELETE .../points/delete does not delete a point named "delete"). */
int vt_rest_match_route(const char *verb, const char *path, vt_rest_match *m)
{
	int best = -1, best_verb = -1;
	for (size_t i = 0; i < N; i++) {
		vt_rest_match t;
		int lit;
		int r = fit(routes[i].pattern, path, &t, &lit);
		if (r < 0)
			return 400;
		if (!r)
			continue;
		if (lit > best)
			best = lit;
		if (!strcmp(routes[i].verb, verb) && lit > best_verb) {
			best_verb = lit;
			*m = t;
			m->route = &routes[i];
		}
	}
	if (best < 0)
		return 404;
	return best_verb == best ? 0 : 405;
}
