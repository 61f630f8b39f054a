/* bench_json.c: lib/rpc/json against jansson (Debian libjansson-dev, linked
 * here only) on the REST hot paths: parse a search body with 768 floats
 * into float[768] + k, write a 10-hit search response, write float[768].
 * Reports µs per operation (best of several rounds, thread CPU time, so a
 * busy machine inflates less) and the ratio. Usage: vt_bench_json [iters] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/clock.h"
#include "rpc/json.h"

#define DIM 768
#define ROUNDS 7

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static float g_vec[DIM];
static char *g_body;
static size_t g_body_len;
static volatile float g_sink;

/* A unit vector like an embedding, printed as clients print float32. */
static void make_body(void)
{
	double norm = 0;
	for (int i = 0; i < DIM; i++) {
		double u = urand(), v = urand();
		g_vec[i] = (float)(sqrt(-2 * log(u + 1e-12)) * cos(6.283185307179586 * v));
		norm += (double)g_vec[i] * g_vec[i];
	}
	for (int i = 0; i < DIM; i++)
		g_vec[i] = (float)(g_vec[i] / sqrt(norm));
	g_body = malloc(DIM * 20 + 100);
	char *o = g_body;
	o += sprintf(o, "{\"vector\":[");
	for (int i = 0; i < DIM; i++)
		o += sprintf(o, "%s%.9g", i ? "," : "", (double)g_vec[i]);
	o += sprintf(o, "],\"k\":10,\"namespace\":\"default\"}");
	g_body_len = (size_t)(o - g_body);
}

typedef int (*bench_fn)(void);

/* µs per call: the best round of `iters` calls. */
static double measure(bench_fn fn, int iters)
{
	double best = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = vt_clock_thread_cpu_ns();
		for (int i = 0; i < iters; i++)
			if (fn()) {
				fprintf(stderr, "benchmark function failed\n");
				exit(1);
			}
		double us = (double)(vt_clock_thread_cpu_ns() - t0) / 1e3 / iters;
		if (us < best)
			best = us;
	}
	return best;
}

/* ---- parse ------------------------------------------------------------------- */

static int parse_vt(void)
{
	vt_json_doc *d;
	float out[DIM];
	size_t n;
	int64_t k;
	if (vt_json_parse(g_body, g_body_len, NULL, &d, NULL, NULL))
		return -1;
	const vt_json_value *r = vt_json_root(d);
	int rc = vt_json_get_floats(vt_json_get(r, "vector"), out, DIM, &n, NULL) ||
		 vt_json_get_int64(vt_json_get(r, "k"), &k, NULL) || n != DIM || k != 10;
	g_sink = out[DIM - 1];
	vt_json_doc_free(d);
	return rc;
}

static int parse_jansson(void)
{
	json_error_t err;
	json_t *root = json_loadb(g_body, g_body_len, 0, &err);
	if (!root)
		return -1;
	float out[DIM];
	json_t *vec = json_object_get(root, "vector");
	json_t *k = json_object_get(root, "k");
	int rc = !json_is_array(vec) || json_array_size(vec) != DIM || !json_is_integer(k);
	for (size_t i = 0; !rc && i < DIM; i++) {
		json_t *x = json_array_get(vec, i);
		if (!json_is_number(x))
			rc = 1;
		else
			out[i] = (float)json_number_value(x);
	}
	g_sink = out[DIM - 1];
	json_decref(root);
	return rc;
}

/* ---- write a 10-hit response ------------------------------------------------- */

static const char *g_payload = "{\"category\":\"shoes\",\"price\":59.9,\"tags\":[\"running\","
			       "\"trail\"],\"stock\":{\"eu\":12,\"us\":3}}";
static float g_scores[10];
static vt_buf g_out;

static int write_hits_vt(int with_vector)
{
	vt_json_writer w;
	vt_buf_reset(&g_out);
	vt_json_w_init(&w, &g_out);
	vt_json_w_obj_begin(&w);
	vt_json_w_key(&w, "result", 6);
	vt_json_w_arr_begin(&w);
	for (int i = 0; i < 10; i++) {
		char id[32];
		int n = snprintf(id, sizeof id, "point-%d", 1000 + i);
		vt_json_w_obj_begin(&w);
		vt_json_w_key(&w, "id", 2);
		vt_json_w_str(&w, id, (size_t)n);
		vt_json_w_key(&w, "score", 5);
		vt_json_w_float(&w, g_scores[i]);
		vt_json_w_key(&w, "payload", 7);
		vt_json_w_raw(&w, g_payload, strlen(g_payload));
		if (with_vector) {
			vt_json_w_key(&w, "vector", 6);
			vt_json_w_floats(&w, g_vec, DIM);
		}
		vt_json_w_obj_end(&w);
	}
	vt_json_w_arr_end(&w);
	vt_json_w_key(&w, "time_ms", 7);
	vt_json_w_double(&w, 0.731);
	vt_json_w_obj_end(&w);
	return vt_json_w_finish(&w);
}

static json_t *g_payload_j;

static int write_hits_jansson(int with_vector)
{
	json_t *root = json_object(), *res = json_array();
	for (int i = 0; i < 10; i++) {
		char id[32];
		snprintf(id, sizeof id, "point-%d", 1000 + i);
		json_t *h = json_object();
		json_object_set_new(h, "id", json_string(id));
		json_object_set_new(h, "score", json_real(g_scores[i]));
		json_object_set(h, "payload", g_payload_j); /* stored as a DOM */
		if (with_vector) {
			json_t *v = json_array();
			for (int j = 0; j < DIM; j++)
				json_array_append_new(v, json_real(g_vec[j]));
			json_object_set_new(h, "vector", v);
		}
		json_array_append_new(res, h);
	}
	json_object_set_new(root, "result", res);
	json_object_set_new(root, "time_ms", json_real(0.731));
	char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
	int rc = s == NULL;
	g_sink = s ? (float)s[0] : 0;
	free(s);
	json_decref(root);
	return rc;
}

static int hits_vt(void) { return write_hits_vt(0); }
static int hits_jansson(void) { return write_hits_jansson(0); }
static int hitsv_vt(void) { return write_hits_vt(1); }
static int hitsv_jansson(void) { return write_hits_jansson(1); }

/* ---- float formatting -------------------------------------------------------- */

static int floats_vt(void)
{
	char t[32];
	size_t n = 0;
	for (int i = 0; i < DIM; i++)
		n += vt_json_fmt_float(t, g_vec[i]);
	g_sink = (float)n;
	return 0;
}

/* The obvious method: the first of %.1g..%.9g that reads back. */
static int floats_snprintf_loop(void)
{
	char t[32];
	size_t n = 0;
	for (int i = 0; i < DIM; i++)
		for (int p = 1; p <= 9; p++) {
			int k = snprintf(t, sizeof t, "%.*g", p, (double)g_vec[i]);
			if (strtof(t, NULL) == g_vec[i]) {
				n += (size_t)k;
				break;
			}
		}
	g_sink = (float)n;
	return 0;
}

static int floats_snprintf9(void)
{
	char t[32];
	size_t n = 0;
	for (int i = 0; i < DIM; i++)
		n += (size_t)snprintf(t, sizeof t, "%.9g", (double)g_vec[i]);
	g_sink = (float)n;
	return 0;
}

static void row(const char *what, double ours, double ref, const char *refname)
{
	printf("%-44s %9.2f µs  %-22s %9.2f µs  x%.1f\n", what, ours, refname, ref, ref / ours);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	if (iters < 1)
		iters = 1;
	make_body();
	for (int i = 0; i < 10; i++)
		g_scores[i] = (float)(0.95 - 0.013 * i + urand() * 1e-3);
	vt_buf_init(&g_out, 1 << 22);
	json_error_t err;
	g_payload_j = json_loads(g_payload, 0, &err);

	printf("vt_bench_json: %d iterations x %d rounds (best round), thread CPU time, jansson %s\n",
	       iters, ROUNDS, JANSSON_VERSION);
	printf("search body: %zu bytes, %d floats printed %%.9g\n\n", g_body_len, DIM);

	double a = measure(parse_vt, iters), b = measure(parse_jansson, iters);
	row("parse body + extract float[768] and k", a, b, "jansson");
	printf("%-44s %9.0f MB/s\n", "  vt_json throughput", (double)g_body_len / a);

	write_hits_vt(0);
	size_t len0 = g_out.len;
	a = measure(hits_vt, iters * 5);
	b = measure(hits_jansson, iters * 5);
	row("write 10-hit response (id, score, payload)", a, b, "jansson");
	write_hits_vt(1);
	size_t len1 = g_out.len;
	a = measure(hitsv_vt, iters / 10 + 1);
	b = measure(hitsv_jansson, iters / 10 + 1);
	row("write 10-hit response with 768-d vectors", a, b, "jansson");
	a = measure(floats_vt, iters);
	b = measure(floats_snprintf_loop, iters);
	row("format 768 floats shortest round-trip", a, b, "%.1g..%.9g loop");
	b = measure(floats_snprintf9, iters);
	row("", a, b, "%.9g (not shortest)");
	printf("\nresponse sizes: %zu bytes (no vectors), %zu bytes (vectors)\n", len0, len1);
	json_decref(g_payload_j);
	vt_buf_free(&g_out);
	return 0;
}
