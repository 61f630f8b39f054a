/* place.c: replica placement (place.h). */
#include "place.h"

#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "pd_int.h"

typedef vt__pd_pickset chosen;

static int eligible(const vt_pd_node *n, uint8_t rrole)
{
	uint8_t want = rrole == VT_PD_VOTER ? VT_PD_ROLE_NORMAL
					    : VT_PD_ROLE_SEARCH_ONLY;
	return n->state == VT_PD_UP && n->role == want;
}

static int in_set(const chosen *c, const vt_pd_node *n, int *zone_used,
		  int *rack_used)
{
	*zone_used = *rack_used = 0;
	for (uint32_t i = 0; i < c->k; i++) {
		if (c->n[i]->id == n->id)
			return 1;
		if (!strcmp(c->n[i]->zone, n->zone)) {
			*zone_used = 1;
			*rack_used |= !strcmp(c->n[i]->rack, n->rack);
		}
	}
	return 0;
}

/* Score of one candidate: lower is better. */
typedef struct score {
	int zone_used, rack_used;
	uint64_t load, cap, tie;
} score;

static int better(const score *a, const score *b)
{
	if (a->zone_used != b->zone_used)
		return a->zone_used < b->zone_used;
	if (a->rack_used != b->rack_used)
		return a->rack_used < b->rack_used;
	unsigned __int128 x = (unsigned __int128)(a->load + 1) * b->cap;
	unsigned __int128 y = (unsigned __int128)(b->load + 1) * a->cap;
	if (x != y)
		return x < y;
	return a->tie < b->tie;
}

long vt__pd_pick(const vt_pd_node *nodes, size_t n, const uint64_t *load,
		 const chosen *c, uint8_t rrole, uint64_t seed, uint32_t shard)
{
	long best = -1;
	score bs = {0};
	for (size_t i = 0; i < n; i++) {
		score s;
		if (!eligible(&nodes[i], rrole) ||
		    in_set(c, &nodes[i], &s.zone_used, &s.rack_used))
			continue;
		s.load = load[i];
		s.cap = nodes[i].capacity ? nodes[i].capacity : 1;
		s.tie = vt_mix64(seed ^ vt_mix64(((uint64_t)shard << 32) ^
						 vt_mix64(nodes[i].id)));
		if (best < 0 || better(&s, &bs)) {
			best = (long)i;
			bs = s;
		}
	}
	return best;
}

static int count_eligible(const vt_pd_node *nodes, size_t n, uint8_t rrole)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		k += eligible(&nodes[i], rrole);
		for (size_t j = 0; j < i && eligible(&nodes[i], rrole); j++)
			if (nodes[j].id == nodes[i].id &&
			    eligible(&nodes[j], rrole)) {
				k--; /* a duplicate id counts once */
				break;
			}
	}
	return (int)(k > INT32_MAX ? INT32_MAX : k);
}

static int check_req(const vt_pd_node *nodes, size_t n,
		     const vt_pd_place_req *q, size_t out_cap, vt_errmsg *err)
{
	if (!q->shards || q->shards > VT_PD_MAX_SHARDS || !q->rf ||
	    q->rf > VT_PD_MAX_RF ||
	    q->rf + q->search_replicas > VT_PD_MAX_REPLICAS)
		return vt_errmsg_set(err, VT_EINVAL,
				     "placement: shards %u (1..%u), rf %u "
				     "(1..%u), search_replicas %u (rf + it "
				     "<= %u)",
				     q->shards, VT_PD_MAX_SHARDS, q->rf,
				     VT_PD_MAX_RF, q->search_replicas,
				     VT_PD_MAX_REPLICAS);
	int nv = count_eligible(nodes, n, VT_PD_VOTER);
	if ((uint32_t)nv < q->rf)
		return vt_errmsg_set(err, VT_EINVAL,
				     "placement: rf %u needs %u up, normal "
				     "workers; there are %d",
				     q->rf, q->rf, nv);
	int ns = count_eligible(nodes, n, VT_PD_NONVOTER);
	if ((uint32_t)ns < q->search_replicas)
		return vt_errmsg_set(err, VT_EINVAL,
				     "placement: search_replicas %u needs %u "
				     "up, search_only workers; there are %d",
				     q->search_replicas, q->search_replicas,
				     ns);
	if ((uint64_t)q->shards * (q->rf + q->search_replicas) > out_cap)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "placement: %u slots do not fit in %zu",
				     q->shards * (q->rf + q->search_replicas),
				     out_cap);
	return 0;
}

static void place_one(const vt_pd_node *nodes, size_t n, uint64_t *load,
		      const vt_pd_place_req *q, uint32_t s, vt_pd_slot *out)
{
	chosen c = {.k = 0};
	uint32_t total = q->rf + q->search_replicas;
	for (uint32_t r = 0; r < total; r++) {
		uint8_t role = r < q->rf ? VT_PD_VOTER : VT_PD_NONVOTER;
		long i = vt__pd_pick(nodes, n, load, &c, role, q->seed, s);
		/* check_req counted enough distinct eligible workers. */
		if (i < 0)
			__builtin_trap();
		c.n[c.k++] = &nodes[i];
		load[i]++;
		out[r] = (vt_pd_slot){.shard = s, .worker = nodes[i].id,
				      .role = role};
	}
}

int vt_pd_place(const vt_pd_node *nodes, size_t n, const vt_pd_place_req *q,
		vt_pd_slot *out, size_t out_cap, size_t *n_out, vt_errmsg *err)
{
	*n_out = 0;
	int rc = check_req(nodes, n, q, out_cap, err);
	if (rc)
		return rc;
	uint64_t *load = vt_malloc((n ? n : 1) * sizeof *load);
	if (!load)
		return vt_errmsg_set(err, VT_ENOMEM, "placement");
	for (size_t i = 0; i < n; i++)
		load[i] = nodes[i].load;
	uint32_t per = q->rf + q->search_replicas;
	for (uint32_t s = 0; s < q->shards; s++)
		place_one(nodes, n, load, q, s, out + (size_t)s * per);
	vt_free(load);
	*n_out = (size_t)q->shards * per;
	return 0;
}

int vt_pd_nodes_of_meta(const vt_pd_meta *m, vt_pd_node *out, size_t cap,
			size_t *n_out)
{
	size_t k = 0;
	for (uint32_t i = 0; i < vt_pd_meta_worker_count(m); i++) {
		const vt_pd_worker *w = vt_pd_meta_worker(m, i);
		if (w->state == VT_PD_REMOVED)
			continue;
		if (k == cap)
			return VT_ELIMIT;
		out[k++] = (vt_pd_node){.id = w->id, .zone = w->zone,
					.rack = w->rack,
					.capacity = w->capacity,
					.load = vt_pd_meta_hosted(m, w->id),
					.role = w->role, .state = w->state};
	}
	*n_out = k;
	return 0;
}

int vt_pd_place_create(const vt_pd_meta *m, const char *name,
		       const void *config, uint32_t config_len,
		       const vt_pd_place_req *q, vt_buf *out, vt_errmsg *err)
{
	size_t len = strlen(name);
	if (!vt__pd_name_ok(name, len > UINT32_MAX ? 0 : (uint32_t)len))
		return vt_errmsg_set(err, VT_EINVAL,
				     "create_collection: name: want 1..%u "
				     "bytes of [A-Za-z0-9_.-]",
				     VT_PD_MAX_NAME);
	if (vt_pd_meta_find_collection(m, name, len))
		return vt_errmsg_set(err, VT_EEXIST,
				     "create_collection: name: '%s' exists",
				     name);
	size_t nn = vt_pd_meta_worker_count(m), ns;
	size_t cap = (size_t)(q->shards ? q->shards : 1) * VT_PD_MAX_REPLICAS;
	vt_pd_node *nodes = vt_malloc((nn ? nn : 1) * sizeof *nodes);
	vt_pd_slot *slots = vt_malloc(cap * sizeof *slots);
	int rc = nodes && slots ? 0 : VT_ENOMEM;
	if (!rc)
		rc = vt_pd_nodes_of_meta(m, nodes, nn, &nn);
	/* left out: as if draining (no new replicas) */
	for (size_t i = 0; !rc && i < nn; i++)
		for (size_t k = 0; k < q->n_exclude; k++)
			if (nodes[i].id == q->exclude[k])
				nodes[i].state = VT_PD_DRAINING;
	if (!rc)
		rc = vt_pd_place(nodes, nn, q, slots, cap, &ns, err);
	if (!rc) {
		vt_pd_cmd c = {.type = VT_PD_CMD_CREATE_COLLECTION,
			       .name = name, .name_len = (uint32_t)len,
			       .config = config, .config_len = config_len,
			       .shard_count = q->shards, .rf = q->rf,
			       .n_slots = (uint32_t)ns, .slots = slots};
		rc = vt_pd_cmd_encode(&c, out, err);
	}
	if (rc == VT_ENOMEM)
		vt_errmsg_set(err, rc, "placement: out of memory");
	vt_free(slots);
	vt_free(nodes);
	return rc;
}
