/* place.h: replica placement: which workers hold the replicas of new
 * shards, spread across zones then racks and weighted by load. Pure and
 * deterministic for a given seed. Not the reconciler (plan.h), which uses
 * the same scoring to pick a single replacement. */
#ifndef VT_PD_PLACE_H
#define VT_PD_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "cmd.h"
#include "meta.h"

/* A candidate worker. Strings are borrowed for the call. */
typedef struct vt_pd_node {
	uint64_t id;
	const char *zone;  /* NUL-terminated; "" is a zone of its own */
	const char *rack;  /* NUL-terminated */
	uint64_t capacity; /* relative weight, >= 1 (0 is taken as 1) */
	uint64_t load;     /* replicas it holds now; placement adds its own */
	uint8_t role;      /* enum vt_pd_role */
	uint8_t state;     /* enum vt_pd_state */
} vt_pd_node;

typedef struct vt_pd_place_req {
	uint32_t shards;          /* 1..VT_PD_MAX_SHARDS */
	uint32_t rf;              /* voters per shard, 1..VT_PD_MAX_RF */
	uint32_t search_replicas; /* extra non-voters per shard, on
				     search_only workers; 0 = none */
	uint64_t seed;            /* breaks ties between equal workers */
	/* vt_pd_place_create only: workers to leave out (the PD leader does
	 * not hear them: a replica there would start without its worker,
	 * and a shard of rf 1 or 2 could never elect). Borrowed. */
	const uint64_t *exclude;
	size_t n_exclude;
} vt_pd_place_req;

/* Chooses shards x (rf + search_replicas) replicas into out[] (caller's
 * array of at least that many), in shard order, voters first; *n_out gets
 * the count. Rules, in order of precedence for each replica:
 *   - voters only on up, normal workers; search replicas only on up,
 *     search_only workers; never two replicas of a shard on one worker;
 *   - a zone the shard does not use yet, then a zone/rack pair it does not
 *     use yet;
 *   - the lowest (load + 1) / capacity, counting what this call placed;
 *   - a hash of (seed, shard, worker id).
 * Errors (nothing written that counts): VT_EINVAL when the request cannot
 * be met (fewer eligible workers than rf or search_replicas; the message
 * says how many there are) or is malformed, VT_ELIMIT when out_cap is too
 * small, VT_ENOMEM. */
VT_API int vt_pd_place(const vt_pd_node *nodes, size_t n_nodes,
		       const vt_pd_place_req *req, vt_pd_slot *out,
		       size_t out_cap, size_t *n_out, vt_errmsg *err);

/* Fills out[] (caller's, cap entries) with the registered, not removed
 * workers of `m`, load = replicas they host. Pointers in the nodes borrow
 * `m` (valid until its next apply or restore). *n_out gets the count;
 * VT_ELIMIT if cap is too small. */
VT_API int vt_pd_nodes_of_meta(const vt_pd_meta *m, vt_pd_node *out,
			       size_t cap, size_t *n_out);

/* Places a new collection on the workers of `m` and appends the complete
 * CREATE_COLLECTION command to `out`, ready for the PD log. `name` and
 * `config` are copied into the command. Errors: those of vt_pd_place and
 * vt_pd_cmd_encode, VT_EEXIST if the name is taken now. */
VT_API int vt_pd_place_create(const vt_pd_meta *m, const char *name,
			      const void *config, uint32_t config_len,
			      const vt_pd_place_req *req, vt_buf *out,
			      vt_errmsg *err);

#endif
