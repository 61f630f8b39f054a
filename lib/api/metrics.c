/* metrics.c: see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

static const char *const codes[] = {
	"OK",		     "CANCELLED",	  "INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED", "NOT_FOUND",	  "ALREADY_EXISTS",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "UNIMPLEMENTED",
	"INTERNAL",	     "UNAVAILABLE",
};
#define N_CODES (sizeof codes / sizeof codes[0])

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
				0.005,	0.01,	 0.025,	 0.05,	0.1,
				0.25,	0.5,	 1,	 2.5,	10};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

struct series {
	atomic_uint_fast64_t count[N_CODES];
	atomic_uint_fast64_t bucket[N_BOUNDS + 1];
	atomic_uint_fast64_t sum_ns;
};

struct vt_api_metrics_reg {
	const char *const *names;
	size_t n;
	struct series *s; /* n + 1: the last is "unknown" */
};

int vt_api_metrics_reg_create(const char *const *methods, size_t n,
			      vt_api_metrics_reg **out)
{
	vt_api_metrics_reg *r = vt_calloc(1, sizeof *r);
	if (!r)
		return -1;
	r->s = vt_calloc(n + 1, sizeof *r->s);
	if (!r->s) {
		vt_free(r);
		return -1;
	}
	const char **names = vt_calloc(n + 1, sizeof *names);
	if (!names) {
		vt_free(r->s);
		vt_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		names[i] = methods[i];
	names[n] = "unknown";
	r->names = names;
	r->n = n;
	*out = r;
	return 0;
}

void vt_api_metrics_reg_destroy(vt_api_metrics_reg *r)
{
	if (!r)
		return;
	vt_free((void *)r->names);
	vt_free(r->s);
	vt_free(r);
}

void vt_api_metrics_reg_observe(vt_api_metrics_reg *r, int method,
				const char *code, uint64_t ns)
{
	struct series *s = &r->s[method < 0 || (size_t)method >= r->n
					 ? r->n
					 : (size_t)method];
	size_t c = 0;
	while (c < N_CODES && strcmp(codes[c], code))
		c++;
	if (c == N_CODES)
		c = 9; /* INTERNAL */
	atomic_fetch_add(&s->count[c], 1);
	double sec = (double)ns / 1e9;
	size_t b = 0;
	while (b < N_BOUNDS && sec > bounds[b])
		b++;
	atomic_fetch_add(&s->bucket[b], 1);
	atomic_fetch_add(&s->sum_ns, ns);
}

static int put(vt_buf *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int put(vt_buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (k < 0)
		return -1;
	return vt_buf_append(out, line,
			     (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

int vt_api_metrics_reg_render(vt_api_metrics_reg *r, vt_buf *out)
{
	int rc = put(out, "# HELP vectron_requests_total Requests by method "
			  "and status.\n# TYPE vectron_requests_total counter\n");
	for (size_t m = 0; m <= r->n && !rc; m++)
		for (size_t c = 0; c < N_CODES && !rc; c++) {
			uint64_t v = atomic_load(&r->s[m].count[c]);
			if (v)
				rc = put(out,
					 "vectron_requests_total{method=\"%s\","
					 "code=\"%s\"} %llu\n",
					 r->names[m], codes[c],
					 (unsigned long long)v);
		}
	if (!rc)
		rc = put(out, "# HELP vectron_request_seconds Request latency "
			      "by method.\n# TYPE vectron_request_seconds "
			      "histogram\n");
	for (size_t m = 0; m <= r->n && !rc; m++) {
		uint64_t cum = 0;
		for (size_t b = 0; b <= N_BOUNDS && !rc; b++) {
			cum += atomic_load(&r->s[m].bucket[b]);
			if (b < N_BOUNDS)
				rc = put(out,
					 "vectron_request_seconds_bucket{method="
					 "\"%s\",le=\"%g\"} %llu\n",
					 r->names[m], bounds[b],
					 (unsigned long long)cum);
			else
				rc = put(out,
					 "vectron_request_seconds_bucket{method="
					 "\"%s\",le=\"+Inf\"} %llu\n",
					 r->names[m], (unsigned long long)cum);
		}
		if (!rc)
			rc = put(out,
				 "vectron_request_seconds_sum{method=\"%s\"} "
				 "%.9f\nvectron_request_seconds_count{method="
				 "\"%s\"} %llu\n",
				 r->names[m],
				 (double)atomic_load(&r->s[m].sum_ns) / 1e9,
				 r->names[m], (unsigned long long)cum);
	}
	return rc;
}
