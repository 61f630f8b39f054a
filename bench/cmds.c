/* cmds.c: see cmds.h. */
#include "cmds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "common.h"
#include "shard/cmd.h"
#include "shard/shard.h"

void vt_bench_cmds_free(vt_bench_cmds *c)
{
	for (size_t i = 0; i < c->n; i++)
		vt_free(c->p[i]);
	vt_free(c->p);
	vt_free(c->len);
	memset(c, 0, sizeof *c);
}

int vt_bench_cmds_encode(const vt_bench_data *d, size_t n, size_t batch,
			 vt_bench_payload_fn payload, void *ud, vt_bench_cmds *c,
			 vt_errmsg *err)
{
	memset(c, 0, sizeof *c);
	size_t nb = (n + batch - 1) / batch;
	c->p = vt_calloc(nb ? nb : 1, sizeof *c->p);
	c->len = vt_calloc(nb ? nb : 1, sizeof *c->len);
	if (!c->p || !c->len)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	for (size_t b = 0; b < nb; b++) {
		vt_buf buf;
		vt_buf_init(&buf, (size_t)1 << 30);
		size_t lo = b * batch, hi = lo + batch < n ? lo + batch : n;
		int rc = vt_cmd_enc_begin(&buf, VT_CMD_UPSERT, 0, d->dim);
		for (size_t i = lo; !rc && i < hi; i++) {
			char id[32], pl[128];
			int il = snprintf(id, sizeof id, "p%zu", i);
			int pn = payload(i, ud, pl, sizeof pl);
			rc = vt_cmd_enc_upsert(&buf, id, (size_t)il, d->base + i * d->dim, d->dim, pl,
					       (size_t)pn);
		}
		if (!rc)
			rc = vt_cmd_enc_end(&buf, (uint32_t)(hi - lo));
		if (rc) {
			vt_buf_free(&buf);
			return vt_errmsg_set(err, rc, "encoding batch %zu: %s", b, vt_strerror(rc));
		}
		c->p[b] = vt_buf_steal(&buf, &c->len[b]);
		c->bytes += c->len[b];
		c->n++;
	}
	return 0;
}

void vt_bench_repl_shard_config(struct vt_shard_config *cfg, uint32_t dim, int mode)
{
	vt_shard_config_default(cfg, dim, VT_METRIC_L2);
	cfg->index_mode = mode;
	cfg->n_fields = 1;
	strcpy(cfg->fields[0].path, "bucket");
	cfg->fields[0].type = VT_PAYLOAD_INTEGER;
}

int vt_bench_bucket_payload(size_t i, void *ud, char *buf, size_t cap)
{
	(void)ud;
	return snprintf(buf, cap, "{\"bucket\":%zu}", i % 100);
}

void vt_bench_pct_ms(double *v, size_t n, double *p50, double *p99, double *max)
{
	qsort(v, n, sizeof *v, vt_bench_cmp_double);
	*p50 = n ? v[n / 2] * 1e3 : NAN;
	*p99 = n ? v[(size_t)((double)(n - 1) * 0.99)] * 1e3 : NAN;
	*max = n ? v[n - 1] * 1e3 : NAN;
}

int vt_bench_parse_modes(const char *list, int modes[2], int *n)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s", list);
	*n = 0;
	for (char *t = strtok(tmp, ","); t; t = strtok(NULL, ",")) {
		if (*n == 2)
			return -1;
		if (!strcmp(t, "async"))
			modes[(*n)++] = VT_INDEX_ASYNC;
		else if (!strcmp(t, "sync"))
			modes[(*n)++] = VT_INDEX_SYNC;
		else
			return -1;
	}
	return *n ? 0 : -1;
}
