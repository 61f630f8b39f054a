/* metrics.h: request counters and latency histograms per API method, in
 * Prometheus text format. Lock-free (atomic counters); internal to
 * lib/api. */
#ifndef VT_API_METRICS_H
#define VT_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct vt_api_metrics_reg vt_api_metrics_reg;

/* `methods` (n names, borrowed, static) label the series; index -1 in
 * observe counts requests refused before a method was known. */
int vt_api_metrics_reg_create(const char *const *methods, size_t n,
			      vt_api_metrics_reg **out);
void vt_api_metrics_reg_destroy(vt_api_metrics_reg *r);
/* `code`: a gRPC code name ("OK", "INVALID_ARGUMENT", ...). */
void vt_api_metrics_reg_observe(vt_api_metrics_reg *r, int method,
				const char *code, uint64_t ns);
int vt_api_metrics_reg_render(vt_api_metrics_reg *r, vt_buf *out);

#endif
