/* test_openapi.c: docs/openapi.yaml describes exactly the routes the server
 * serves. Every (verb, path) under `paths:` is in vt_rest_routes() and every
 * route of the table is in the file, once. The file is read with a small
 * indentation-based scan (paths at two spaces, verbs at four), which is the
 * layout docs/openapi.yaml keeps; no YAML library. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rest.h"

#define MAX_OPS 128

struct op {
	char verb[8];   /* upper case, as in the route table */
	char path[256];
	int line;
};

static struct op g_ops[MAX_OPS];
static int g_n;

static int indent_of(const char *s)
{
	int n = 0;
	while (s[n] == ' ')
		n++;
	return n;
}

static const char *const verbs[] = {"get",   "put",     "post",  "delete",
				    "patch", "options", "head",  "trace"};

/* Reads the (verb, path) pairs under the top-level `paths:` key. */
static void load(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f)
		fail_msg("cannot open %s", file);
	char line[1024], path[256] = "";
	int in_paths = 0, ln = 0;
	g_n = 0;
	while (fgets(line, sizeof line, f)) {
		ln++;
		line[strcspn(line, "\r\n")] = '\0';
		int ind = indent_of(line);
		const char *s = line + ind;
		if (!*s || *s == '#')
			continue;
		if (ind == 0) {
			in_paths = !strcmp(s, "paths:");
			continue;
		}
		if (!in_paths)
			continue;
		size_t len = strlen(s);
		if (ind == 2) {
			/* "/v1/collections/{name}:" (quotes allowed) */
			char p[256];
			if (len < 2 || len >= sizeof p || s[len - 1] != ':')
				fail_msg("%s:%d: expected a path key: %s", file,
					 ln, s);
			memcpy(p, s, len - 1);
			p[len - 1] = '\0';
			char *q = p;
			size_t pl = strlen(q);
			if (pl >= 2 && (q[0] == '"' || q[0] == '\'') &&
			    q[pl - 1] == q[0]) {
				q[pl - 1] = '\0';
				q++;
			}
			if (q[0] != '/')
				fail_msg("%s:%d: a path must start with '/': %s",
					 file, ln, q);
			strcpy(path, q);
			continue;
		}
		if (ind != 4)
			continue;
		for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
			size_t vl = strlen(verbs[v]);
			if (strncmp(s, verbs[v], vl) || s[vl] != ':')
				continue;
			if (!path[0])
				fail_msg("%s:%d: verb outside a path", file, ln);
			if (g_n == MAX_OPS)
				fail_msg("%s: more than %d operations", file,
					 MAX_OPS);
			struct op *o = &g_ops[g_n++];
			for (size_t i = 0; i <= vl; i++)
				o->verb[i] = (char)toupper(
					(unsigned char)verbs[v][i]);
			strcpy(o->path, path);
			o->line = ln;
		}
	}
	fclose(f);
}

static void test_yaml_routes_are_served(void **state)
{
	(void)state;
	size_t n;
	const vt_rest_route *r = vt_rest_routes(&n);
	load(VT_OPENAPI_YAML);
	assert_true(g_n > 0);
	int bad = 0;
	for (int i = 0; i < g_n; i++) {
		int found = 0;
		for (size_t k = 0; k < n; k++)
			if (!strcmp(r[k].verb, g_ops[i].verb) &&
			    !strcmp(r[k].pattern, g_ops[i].path))
				found++;
		if (found != 1) {
			print_error("openapi.yaml:%d: %s %s is not a route of "
				    "services/vectron/rest.c\n",
				    g_ops[i].line, g_ops[i].verb, g_ops[i].path);
			bad++;
		}
		for (int j = 0; j < i; j++)
			if (!strcmp(g_ops[j].verb, g_ops[i].verb) &&
			    !strcmp(g_ops[j].path, g_ops[i].path)) {
				print_error("openapi.yaml:%d: %s %s twice\n",
					    g_ops[i].line, g_ops[i].verb,
					    g_ops[i].path);
				bad++;
			}
	}
	assert_int_equal(bad, 0);
}

static void test_served_routes_are_in_yaml(void **state)
{
	(void)state;
	size_t n;
	const vt_rest_route *r = vt_rest_routes(&n);
	load(VT_OPENAPI_YAML);
	int bad = 0;
	for (size_t k = 0; k < n; k++) {
		int found = 0;
		for (int i = 0; i < g_n; i++)
			if (!strcmp(r[k].verb, g_ops[i].verb) &&
			    !strcmp(r[k].pattern, g_ops[i].path))
				found = 1;
		if (!found) {
			print_error("route %s %s is missing from "
				    "docs/openapi.yaml\n",
				    r[k].verb, r[k].pattern);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal((size_t)g_n, n);
}

/* Each documented path matches its own route, so the matcher agrees with
 * the file too (a parameter name typo would still pass the string test
 * only if rest.c had the same typo). */
static void test_matcher_agrees(void **state)
{
	(void)state;
	load(VT_OPENAPI_YAML);
	for (int i = 0; i < g_n; i++) {
		char path[256], *o = path;
		for (const char *p = g_ops[i].path; *p;) {
			if (*p == '{') {
				o += sprintf(o, "x");
				p = strchr(p, '}') + 1;
			} else {
				*o++ = *p++;
			}
		}
		*o = '\0';
		vt_rest_match m;
		int rc = vt_rest_match_route(g_ops[i].verb, path, &m);
		if (rc || strcmp(m.route->pattern, g_ops[i].path) ||
		    strcmp(m.route->verb, g_ops[i].verb))
			fail_msg("%s %s (as %s) matched %s", g_ops[i].verb,
				 g_ops[i].path, path,
				 rc ? "nothing" : m.route->pattern);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_routes_are_served),
		cmocka_unit_test(test_served_routes_are_in_yaml),
		cmocka_unit_test(test_matcher_agrees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
