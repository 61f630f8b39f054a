/* pdsvc.c: the placement driver daemon's pure logic (pdsvc.h). */
#include "pdsvc/pdsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* ---- worker addresses ---------------------------------------------------- */

static int addr_part_ok(const char *p)
{
	if (!*p)
		return 0;
	for (; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == ',')
			return 0;
	return 1;
}

int vt_pdsvc_addr_join(const char *addr, const char *raft_addr, char *out,
		       size_t cap, vt_errmsg *err)
{
	if (!addr || !addr_part_ok(addr))
		return vt_errmsg_set(err, VT_EINVAL,
				     "worker.addr: want host:port (printable, "
				     "no spaces or ',')");
	if (!raft_addr || !addr_part_ok(raft_addr))
		return vt_errmsg_set(err, VT_EINVAL,
				     "worker.raft_addr: want host:port "
				     "(printable, no spaces or ',')");
	size_t n = strlen(addr) + 1 + strlen(raft_addr);
	if (n > VT_PD_MAX_ADDR || n + 1 > cap)
		return vt_errmsg_set(err, VT_ELIMIT,
				     "worker.addr and raft_addr: %zu bytes "
				     "together (max %u)",
				     n, VT_PD_MAX_ADDR - 1);
	snprintf(out, cap, "%s,%s", addr, raft_addr);
	return 0;
}

int vt_pdsvc_addr_split(const char *stored, vt_arena *a, char **addr,
			char **raft_addr)
{
	const char *comma = strchr(stored, ',');
	size_t n = comma ? (size_t)(comma - stored) : strlen(stored);
	*addr = vt_arena_strndup(a, stored, n);
	*raft_addr = comma ? vt_arena_strndup(a, comma + 1, strlen(comma + 1))
			   : *addr;
	return *addr && *raft_addr ? 0 : VT_ENOMEM;
}

/* ---- the PD group's members ------------------------------------------------- */

int vt_pdsvc_hostport(const char *s, char *host, size_t cap, int *port)
{
	const char *c = strrchr(s, ':');
	if (!c || c == s || (size_t)(c - s) >= cap)
		return -1;
	char *end;
	long v = strtol(c + 1, &end, 10);
	if (*end || end == c + 1 || v < 0 || v > 65535)
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	*port = (int)v;
	return 0;
}

/* One "id=grpc/raft" entry of `len` bytes. */
static int peer_parse(const char *t, size_t len, vt_pdsvc_peer *x,
		      vt_errmsg *err)
{
	char buf[600], host[256];
	int port;
	if (len >= sizeof buf)
		return vt_errmsg_set(err, VT_EINVAL, "peers: an entry of %zu "
				     "bytes", len);
	memcpy(buf, t, len);
	buf[len] = '\0';
	char *eq = strchr(buf, '='), *sl = eq ? strchr(eq, '/') : NULL, *end;
	unsigned long long id = eq ? strtoull(buf, &end, 10) : 0;
	if (!eq || !sl || end != eq || !id || buf[0] == '-')
		return vt_errmsg_set(err, VT_EINVAL,
				     "peers: '%s': want "
				     "id=grpc_host:port/raft_host:port",
				     buf);
	*sl = '\0';
	if (strlen(eq + 1) >= sizeof x->grpc ||
	    strlen(sl + 1) >= sizeof x->raft ||
	    vt_pdsvc_hostport(eq + 1, host, sizeof host, &port) ||
	    vt_pdsvc_hostport(sl + 1, host, sizeof host, &port))
		return vt_errmsg_set(err, VT_EINVAL,
				     "peers: node %llu: want host:port for "
				     "both addresses",
				     id);
	x->id = id;
	snprintf(x->grpc, sizeof x->grpc, "%s", eq + 1);
	snprintf(x->raft, sizeof x->raft, "%s", sl + 1);
	return 0;
}

int vt_pdsvc_peers_parse(const char *s, uint64_t self, vt_pdsvc_peer *out,
			 size_t cap, size_t *n, vt_errmsg *err)
{
	size_t k = 0;
	int seen = 0;
	*n = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		if (k == cap)
			return vt_errmsg_set(err, VT_ELIMIT,
					     "peers: more than %zu", cap);
		int rc = peer_parse(s, len, &out[k], err);
		if (rc)
			return rc;
		for (size_t i = 0; i < k; i++)
			if (out[i].id == out[k].id)
				return vt_errmsg_set(
					err, VT_EINVAL, "peers: id %llu twice",
					(unsigned long long)out[k].id);
		seen |= out[k].id == self;
		k++;
		s += len;
		if (*s == ',')
			s++;
	}
	if (!seen)
		return vt_errmsg_set(err, VT_EINVAL,
				     "peers: node_id %llu is not among them "
				     "(list every PD node, this one included)",
				     (unsigned long long)self);
	*n = k;
	return 0;
}

/* ---- soft state ----------------------------------------------------------- */

typedef struct elect_order {
	uint64_t worker, group, raft_id;
} elect_order;

struct vt_pdsvc_soft {
	vt_pd_beat *beats; /* one per worker heard from */
	size_t n_beats, cap_beats;
	vt_pd_report *reps; /* every worker's last reports */
	size_t n_reps, cap_reps;
	elect_order *elect;
	size_t n_elect, cap_elect;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = vt_realloc(*p, n * elem);
	if (!q)
		return VT_ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int vt_pdsvc_soft_new(vt_pdsvc_soft **out)
{
	*out = vt_calloc(1, sizeof **out);
	return *out ? 0 : VT_ENOMEM;
}

void vt_pdsvc_soft_free(vt_pdsvc_soft *s)
{
	if (!s)
		return;
	vt_free(s->beats);
	vt_free(s->reps);
	vt_free(s->elect);
	vt_free(s);
}

void vt_pdsvc_soft_clear(vt_pdsvc_soft *s)
{
	s->n_beats = s->n_reps = s->n_elect = 0;
}

int vt_pdsvc_soft_beat(vt_pdsvc_soft *s, uint64_t worker, uint64_t now_ms,
		       const vt_pd_report *reps, size_t n)
{
	if (n > VT_PDSVC_MAX_REPORTS)
		n = VT_PDSVC_MAX_REPORTS;
	size_t b = 0;
	while (b < s->n_beats && s->beats[b].worker != worker)
		b++;
	/* Room first, so a failure changes nothing. */
	if (grow((void **)&s->beats, &s->cap_beats, s->n_beats + 1,
		 sizeof *s->beats) ||
	    grow((void **)&s->reps, &s->cap_reps, s->n_reps + n,
		 sizeof *s->reps))
		return VT_ENOMEM;
	if (b == s->n_beats)
		s->n_beats++;
	s->beats[b] = (vt_pd_beat){worker, now_ms};
	size_t k = 0;
	for (size_t i = 0; i < s->n_reps; i++)
		if (s->reps[i].worker != worker)
			s->reps[k++] = s->reps[i];
	s->n_reps = k;
	for (size_t i = 0; i < n; i++) {
		s->reps[s->n_reps] = reps[i];
		s->reps[s->n_reps++].worker = worker;
	}
	return 0;
}

int vt_pdsvc_soft_last(const vt_pdsvc_soft *s, uint64_t worker,
		       uint64_t *last_ms)
{
	for (size_t i = 0; i < s->n_beats; i++)
		if (s->beats[i].worker == worker) {
			*last_ms = s->beats[i].last_ms;
			return 1;
		}
	return 0;
}

const vt_pd_beat *vt_pdsvc_soft_beats(const vt_pdsvc_soft *s, size_t *n)
{
	*n = s->n_beats;
	return s->beats;
}

const vt_pd_report *vt_pdsvc_soft_reports(const vt_pdsvc_soft *s, size_t *n)
{
	*n = s->n_reps;
	return s->reps;
}

int vt_pdsvc_soft_elect(vt_pdsvc_soft *s, uint64_t worker, uint64_t group,
			uint64_t raft_id)
{
	for (size_t i = 0; i < s->n_elect; i++)
		if (s->elect[i].worker == worker && s->elect[i].group == group) {
			s->elect[i].raft_id = raft_id;
			return 0;
		}
	if (grow((void **)&s->elect, &s->cap_elect, s->n_elect + 1,
		 sizeof *s->elect))
		return VT_ENOMEM;
	s->elect[s->n_elect++] = (elect_order){worker, group, raft_id};
	return 0;
}

int vt_pdsvc_soft_elect_has(const vt_pdsvc_soft *s, uint64_t worker,
			    uint64_t group, uint64_t raft_id)
{
	for (size_t i = 0; i < s->n_elect; i++)
		if (s->elect[i].worker == worker && s->elect[i].group == group)
			return s->elect[i].raft_id == raft_id;
	return 0;
}

size_t vt_pdsvc_soft_elect_pending(const vt_pdsvc_soft *s, uint64_t worker)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_elect; i++)
		n += s->elect[i].worker == worker;
	return n;
}

int vt_pdsvc_soft_take_elect(vt_pdsvc_soft *s, uint64_t worker, vt_arena *a,
			     Vectron__Internal__V1__Elect ***out, size_t *n)
{
	size_t want = vt_pdsvc_soft_elect_pending(s, worker);
	*out = NULL;
	*n = 0;
	if (!want)
		return 0;
	Vectron__Internal__V1__Elect **v = vt_arena_calloc(a, want, sizeof *v);
	if (!v)
		return VT_ENOMEM;
	for (size_t i = 0, j = 0; i < s->n_elect; i++) {
		if (s->elect[i].worker != worker)
			continue;
		Vectron__Internal__V1__Elect *e = vt_arena_alloc(a, sizeof *e);
		if (!e)
			return VT_ENOMEM;
		vectron__internal__v1__elect__init(e);
		e->has_group = e->has_raft_id = 1;
		e->group = s->elect[i].group;
		e->raft_id = s->elect[i].raft_id;
		v[j++] = e;
	}
	size_t k = 0;
	for (size_t i = 0; i < s->n_elect; i++)
		if (s->elect[i].worker != worker)
			s->elect[k++] = s->elect[i];
	s->n_elect = k;
	*out = v;
	*n = want;
	return 0;
}

/* ---- recent actions -------------------------------------------------------- */

void vt_pdsvc_ring_push(vt_pdsvc_ring *r, const vt_pd_action *a,
			uint64_t at_ms, const char *outcome)
{
	vt_pdsvc_act_rec *x = &r->recs[r->next];
	memset(x, 0, sizeof *x);
	snprintf(x->kind, sizeof x->kind, "%s", vt_pd_act_name(a->kind));
	snprintf(x->collection, sizeof x->collection, "%s", a->collection);
	x->shard = a->shard;
	x->worker = a->worker;
	snprintf(x->reason, sizeof x->reason, "%s", a->reason);
	x->at_ms = at_ms;
	snprintf(x->outcome, sizeof x->outcome, "%s", outcome);
	r->next = (r->next + 1) % VT_PDSVC_RING;
	if (r->n < VT_PDSVC_RING)
		r->n++;
}

const vt_pdsvc_act_rec *vt_pdsvc_ring_get(const vt_pdsvc_ring *r, uint32_t i)
{
	uint32_t first = (r->next + VT_PDSVC_RING - r->n) % VT_PDSVC_RING;
	return &r->recs[(first + i) % VT_PDSVC_RING];
}

int vt_pdsvc_ring_msgs(const vt_pdsvc_ring *r, vt_arena *a,
		       Vectron__Internal__V1__PlanAction ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!r->n)
		return 0;
	Vectron__Internal__V1__PlanAction **v =
		vt_arena_calloc(a, r->n, sizeof *v);
	if (!v)
		return VT_ENOMEM;
	for (uint32_t i = 0; i < r->n; i++) {
		const vt_pdsvc_act_rec *x = vt_pdsvc_ring_get(r, i);
		Vectron__Internal__V1__PlanAction *p =
			vt_arena_alloc(a, sizeof *p);
		if (!p)
			return VT_ENOMEM;
		vectron__internal__v1__plan_action__init(p);
		p->kind = vt_arena_strndup(a, x->kind, strlen(x->kind));
		p->collection = vt_arena_strndup(a, x->collection,
						 strlen(x->collection));
		p->reason = vt_arena_strndup(a, x->reason, strlen(x->reason));
		p->outcome = vt_arena_strndup(a, x->outcome,
					      strlen(x->outcome));
		if (!p->kind || !p->collection || !p->reason || !p->outcome)
			return VT_ENOMEM;
		p->has_shard = p->has_worker = p->has_at_ms = 1;
		p->shard = x->shard;
		p->worker = x->worker;
		p->at_ms = x->at_ms;
		v[i] = p;
	}
	*out = v;
	*n = r->n;
	return 0;
}

/* ---- messages from the metadata -------------------------------------------- */

/* The replicas of a shard as Peers. */
static int peers_of(const vt_pd_meta *m, const vt_pd_shard *sh, vt_arena *a,
		    Vectron__Internal__V1__Peer ***out, size_t *n)
{
	*n = sh->n_replicas;
	*out = NULL;
	if (!sh->n_replicas)
		return 0;
	Vectron__Internal__V1__Peer **v =
		vt_arena_calloc(a, sh->n_replicas, sizeof *v);
	if (!v)
		return VT_ENOMEM;
	for (uint32_t i = 0; i < sh->n_replicas; i++) {
		const vt_pd_replica *r = &sh->replicas[i];
		Vectron__Internal__V1__Peer *p = vt_arena_alloc(a, sizeof *p);
		if (!p)
			return VT_ENOMEM;
		vectron__internal__v1__peer__init(p);
		p->has_raft_id = p->has_worker = p->has_role = 1;
		p->raft_id = r->raft_id;
		p->worker = r->worker;
		p->role = r->role == VT_PD_NONVOTER
				  ? VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER
				  : VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER;
		const vt_pd_worker *w = vt_pd_meta_find_worker(m, r->worker);
		if (vt_pdsvc_addr_split(w ? w->addr : "", a, &p->addr,
					&p->raft_addr))
			return VT_ENOMEM;
		v[i] = p;
	}
	*out = v;
	return 0;
}

/* The config is copied: the answer is sent after the host thread may have
 * applied more commands (a drop frees the collection's blob). */
static int set_config(const vt_pd_collection *c, vt_arena *a,
		      protobuf_c_boolean *has, ProtobufCBinaryData *b)
{
	*has = 1;
	b->len = c->config_len;
	b->data = NULL;
	if (!c->config_len)
		return 0;
	b->data = vt_arena_alloc(a, c->config_len);
	if (!b->data)
		return VT_ENOMEM;
	memcpy(b->data, c->config, c->config_len);
	return 0;
}

int vt_pdsvc_route(const vt_pd_meta *m, const vt_pd_collection *c,
		   vt_arena *a, Vectron__Internal__V1__CollectionRoute **out)
{
	Vectron__Internal__V1__CollectionRoute *r = vt_arena_alloc(a, sizeof *r);
	if (!r)
		return VT_ENOMEM;
	vectron__internal__v1__collection_route__init(r);
	r->name = vt_arena_strndup(a, c->name, strlen(c->name));
	if (!r->name)
		return VT_ENOMEM;
	if (set_config(c, a, &r->has_config, &r->config))
		return VT_ENOMEM;
	r->has_shard_count = r->has_rf = r->has_epoch = 1;
	r->shard_count = c->shard_count;
	r->rf = c->rf;
	r->epoch = c->epoch;
	r->shards = vt_arena_calloc(a, c->shard_count, sizeof *r->shards);
	if (!r->shards)
		return VT_ENOMEM;
	r->n_shards = c->shard_count;
	for (uint32_t i = 0; i < c->shard_count; i++) {
		const vt_pd_shard *sh = &c->shards[i];
		Vectron__Internal__V1__ShardRoute *s =
			vt_arena_alloc(a, sizeof *s);
		if (!s)
			return VT_ENOMEM;
		vectron__internal__v1__shard_route__init(s);
		s->has_index = s->has_group = s->has_key_lo = s->has_key_hi =
			s->has_epoch = s->has_leader = 1;
		s->index = sh->index;
		s->group = sh->group;
		s->key_lo = sh->key_lo;
		s->key_hi = sh->key_hi;
		s->epoch = sh->epoch;
		s->leader = sh->leader;
		int rc = peers_of(m, sh, a, &s->replicas, &s->n_replicas);
		if (rc)
			return rc;
		r->shards[i] = s;
	}
	*out = r;
	return 0;
}

int vt_pdsvc_worker_info(const vt_pd_meta *m, const vt_pd_worker *w,
			 const vt_pdsvc_soft *s, uint64_t now_ms,
			 uint64_t grace_ms, vt_arena *a,
			 Vectron__Internal__V1__WorkerInfo **out)
{
	Vectron__Internal__V1__WorkerInfo *i = vt_arena_alloc(a, sizeof *i);
	if (!i)
		return VT_ENOMEM;
	vectron__internal__v1__worker_info__init(i);
	if (vt_pdsvc_addr_split(w->addr, a, &i->addr, &i->raft_addr))
		return VT_ENOMEM;
	i->zone = vt_arena_strndup(a, w->zone, strlen(w->zone));
	i->rack = vt_arena_strndup(a, w->rack, strlen(w->rack));
	if (!i->zone || !i->rack)
		return VT_ENOMEM;
	i->has_id = i->has_capacity = i->has_role = i->has_state =
		i->has_alive = i->has_last_beat_ms_ago = i->has_replicas = 1;
	i->id = w->id;
	i->capacity = w->capacity;
	i->role = w->role == VT_PD_ROLE_SEARCH_ONLY
			  ? VECTRON__INTERNAL__V1__WORKER_ROLE__SEARCH_ONLY
			  : VECTRON__INTERNAL__V1__WORKER_ROLE__NORMAL;
	i->state = (Vectron__Internal__V1__WorkerState)w->state;
	uint64_t last;
	if (s && vt_pdsvc_soft_last(s, w->id, &last)) {
		uint64_t ago = now_ms > last ? now_ms - last : 0;
		/* 0 means "never heard": a beat this very millisecond is 1 */
		i->last_beat_ms_ago = ago ? ago : 1;
		i->alive = ago <= grace_ms;
	}
	i->replicas = vt_pd_meta_hosted(m, w->id);
	*out = i;
	return 0;
}

static int assignment(const vt_pd_meta *m, const vt_pd_collection *c,
		      const vt_pd_shard *sh, const vt_pd_replica *r,
		      vt_arena *a, Vectron__Internal__V1__Assignment **out)
{
	Vectron__Internal__V1__Assignment *x = vt_arena_alloc(a, sizeof *x);
	if (!x)
		return VT_ENOMEM;
	vectron__internal__v1__assignment__init(x);
	x->collection = vt_arena_strndup(a, c->name, strlen(c->name));
	if (!x->collection)
		return VT_ENOMEM;
	x->has_shard = x->has_group = x->has_epoch = x->has_raft_id =
		x->has_role = x->has_bootstrap = x->has_rf = x->has_leader = 1;
	x->shard = sh->index;
	x->group = sh->group;
	x->epoch = sh->epoch;
	x->raft_id = r->raft_id;
	x->role = r->role == VT_PD_NONVOTER
			  ? VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER
			  : VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER;
	x->bootstrap = r->raft_id <= c->rf;
	x->rf = c->rf;
	x->leader = sh->leader;
	if (set_config(c, a, &x->has_config, &x->config))
		return VT_ENOMEM;
	int rc = peers_of(m, sh, a, &x->peers, &x->n_peers);
	if (rc)
		return rc;
	*out = x;
	return 0;
}

int vt_pdsvc_assignments(const vt_pd_meta *m, uint64_t worker, vt_arena *a,
			 Vectron__Internal__V1__Assignment ***out, size_t *n)
{
	size_t want = vt_pd_meta_hosted(m, worker), k = 0;
	*out = NULL;
	*n = 0;
	if (!want)
		return 0;
	Vectron__Internal__V1__Assignment **v =
		vt_arena_calloc(a, want, sizeof *v);
	if (!v)
		return VT_ENOMEM;
	uint32_t nc = vt_pd_meta_collection_count(m);
	for (uint32_t i = 0; i < nc; i++) {
		const vt_pd_collection *c = vt_pd_meta_collection(m, i);
		for (uint32_t s = 0; s < c->shard_count; s++) {
			const vt_pd_shard *sh = &c->shards[s];
			for (uint32_t j = 0; j < sh->n_replicas; j++) {
				if (sh->replicas[j].worker != worker)
					continue;
				if (k == want)
					return VT_ECORRUPT; /* hosted() lied */
				int rc = assignment(m, c, sh,
						    &sh->replicas[j], a,
						    &v[k]);
				if (rc)
					return rc;
				k++;
			}
		}
	}
	*out = v;
	*n = k;
	return 0;
}
