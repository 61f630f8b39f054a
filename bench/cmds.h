/* cmds.h: Fashion-MNIST points as encoded shard upsert commands (ids
 * "p<n>", batches of `batch` points), shared by the shard and replication
 * benchmarks so both feed the shard the same bytes. */
#ifndef VT_BENCH_CMDS_H
#define VT_BENCH_CMDS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "dataset.h"

/* Encoded commands; each p[i] (len[i] bytes) is vt_malloc'd and owned. */
typedef struct vt_bench_cmds {
	uint8_t **p;
	size_t *len;
	size_t n;
	size_t bytes;
} vt_bench_cmds;

/* Writes point i's payload JSON into buf (cap bytes); returns its length. */
typedef int (*vt_bench_payload_fn)(size_t i, void *ud, char *buf, size_t cap);

/* Encodes points [0, n) of `d` in batches of `batch`. VT_ENOMEM, or an
 * encoding error naming the batch. */
int vt_bench_cmds_encode(const vt_bench_data *d, size_t n, size_t batch,
			 vt_bench_payload_fn payload, void *ud, vt_bench_cmds *c,
			 vt_errmsg *err);

void vt_bench_cmds_free(vt_bench_cmds *c);

/* The replication benchmarks' shared pieces (bench_repl, bench_repl_procs):
 * the shard config (L2, `mode`, one indexed integer field "bucket"), the
 * payload that fills it ({"bucket": i % 100}), latency percentiles in ms
 * (sorts v), and a --modes list ("async,sync": at most 2; -1 if bad). */
struct vt_shard_config;
void vt_bench_repl_shard_config(struct vt_shard_config *cfg, uint32_t dim, int mode);
int vt_bench_bucket_payload(size_t i, void *ud, char *buf, size_t cap);
void vt_bench_pct_ms(double *v, size_t n, double *p50, double *p99, double *max);
int vt_bench_parse_modes(const char *list, int modes[2], int *n);

#endif
