/* pd_int.h: internals shared by the files of lib/pd: the metadata struct,
 * field readers and writers, label checks. Not part of the API. */
#ifndef VT_PD_INT_H
#define VT_PD_INT_H

#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "cmd.h"
#include "meta.h"
#include "place.h"

/* A collection as stored: the public view plus the storage it points to. */
typedef struct vt__pd_coll {
	vt_pd_collection pub;
	uint8_t *config;     /* owned (vt_malloc), pub.config aliases it */
	vt_pd_shard *shards; /* owned, pub.shards aliases it */
} vt__pd_coll;

struct vt_pd_meta {
	uint64_t applied;
	uint64_t epoch;
	uint64_t next_group; /* next shard Raft group id, starts at 1 */
	vt_pd_worker *workers; /* sorted by id */
	uint32_t n_workers, cap_workers;
	vt__pd_coll *colls; /* sorted by name */
	uint32_t n_colls, cap_colls;
	uint32_t total_shards;
};

/* Bounds-checked readers: VT_ECORRUPT when the bytes run out. */
int vt__pd_get_u16(vt_reader *r, uint16_t *out);
/* A u8- (wide = 0) or u16-length string; *p borrows the input. */
int vt__pd_get_str(vt_reader *r, int wide, const char **p, uint32_t *n);
int vt__pd_put_u16(vt_buf *b, uint16_t v);
int vt__pd_put_str(vt_buf *b, int wide, const char *p, uint32_t n);

/* Label checks; each returns 1 when valid. */
int vt__pd_name_ok(const char *p, uint32_t n);  /* 1..MAX_NAME [A-Za-z0-9_.-] */
int vt__pd_label_ok(const char *p, uint32_t n); /* 0..MAX_ZONE, same chars */
int vt__pd_addr_ok(const char *p, uint32_t n);  /* 1..MAX_ADDR printable */

/* Index of the worker with `id`, or -1. */
int32_t vt__pd_worker_index(const vt_pd_meta *m, uint64_t id);
/* Index of the collection named so, or -(insertion point) - 1. */
int32_t vt__pd_coll_index(const vt_pd_meta *m, const char *name, size_t n);
/* Releases a collection's storage. */
void vt__pd_coll_free(vt__pd_coll *c);
/* Sets the even key ranges of `n` shards. */
void vt__pd_key_ranges(vt_pd_shard *shards, uint32_t n);
/* Empties the metadata (to epoch 0, no workers, no collections). */
void vt__pd_meta_clear(vt_pd_meta *m);

/* Replicas a shard already has on usable workers (placement avoids their
 * workers and prefers other zones and racks). */
typedef struct vt__pd_pickset {
	const vt_pd_node *n[VT_PD_MAX_REPLICAS];
	uint32_t k;
} vt__pd_pickset;

/* The best node for the next replica of `role` of `shard` (place.h's
 * rules, load[] replacing the nodes' load), or -1 if none is eligible. */
long vt__pd_pick(const vt_pd_node *nodes, size_t n, const uint64_t *load,
		 const vt__pd_pickset *c, uint8_t role, uint64_t seed,
		 uint32_t shard);

#endif
