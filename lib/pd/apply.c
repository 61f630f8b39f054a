/* apply.c: vt_pd_apply (meta.h): each command is checked in full before the
 * first byte of metadata changes, so a rejection leaves nothing behind. */
#include <string.h>

#include "base/alloc.h"
#include "pd_int.h"

#define REJECT(code, ...) vt_errmsg_set(err, code, __VA_ARGS__)

static uint64_t bump(vt_pd_meta *m)
{
	return ++m->epoch;
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t n = *cap ? *cap * 2 : 8;
	while (n < need)
		n *= 2;
	void *p = vt_realloc(*arr, (size_t)n * elem);
	if (!p)
		return VT_ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static void copy_label(char *dst, const char *src, uint32_t n)
{
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static int replica_at(const vt_pd_shard *s, uint64_t worker)
{
	for (uint32_t i = 0; i < s->n_replicas; i++)
		if (s->replicas[i].worker == worker)
			return (int)i;
	return -1;
}

static uint32_t voters(const vt_pd_shard *s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n_replicas; i++)
		n += s->replicas[i].role == VT_PD_VOTER;
	return n;
}

static void touch(vt__pd_coll *c, vt_pd_shard *s, uint64_t epoch)
{
	s->epoch = epoch;
	c->pub.epoch = epoch;
}

/* ---- workers ------------------------------------------------------------- */

static void fill_worker(vt_pd_worker *w, const vt_pd_cmd *c)
{
	w->id = c->worker;
	copy_label(w->addr, c->addr, c->addr_len);
	copy_label(w->zone, c->zone, c->zone_len);
	copy_label(w->rack, c->rack, c->rack_len);
	w->capacity = c->capacity;
	w->role = c->role;
}

/* Every shard hosted by `worker` takes `epoch` (its routing changed). */
static void touch_hosted(vt_pd_meta *m, uint64_t worker, uint64_t epoch)
{
	for (uint32_t i = 0; i < m->n_colls; i++) {
		vt__pd_coll *c = &m->colls[i];
		for (uint32_t s = 0; s < c->pub.shard_count; s++)
			if (replica_at(&c->shards[s], worker) >= 0)
				touch(c, &c->shards[s], epoch);
	}
}

static int hosts_voter(const vt_pd_meta *m, uint64_t worker)
{
	for (uint32_t i = 0; i < m->n_colls; i++) {
		const vt__pd_coll *c = &m->colls[i];
		for (uint32_t s = 0; s < c->pub.shard_count; s++) {
			int r = replica_at(&c->shards[s], worker);
			if (r >= 0 &&
			    c->shards[s].replicas[r].role == VT_PD_VOTER)
				return 1;
		}
	}
	return 0;
}

static int reregister(vt_pd_meta *m, vt_pd_worker *w, const vt_pd_cmd *c,
		      vt_errmsg *err)
{
	if (w->state == VT_PD_REMOVED)
		return REJECT(VT_EEXIST,
			      "register_worker: worker %llu was removed; ids "
			      "are never reused",
			      (unsigned long long)c->worker);
	if (c->role == VT_PD_ROLE_SEARCH_ONLY && w->role != c->role &&
	    hosts_voter(m, w->id))
		return REJECT(VT_EBUSY,
			      "register_worker: role: worker %llu hosts "
			      "voters and cannot become search_only",
			      (unsigned long long)c->worker);
	int moved = c->addr_len != strlen(w->addr) ||
		    memcmp(w->addr, c->addr, c->addr_len);
	vt_pd_worker now = *w;
	fill_worker(&now, c);
	if (!moved && !strcmp(now.zone, w->zone) &&
	    !strcmp(now.rack, w->rack) && now.capacity == w->capacity &&
	    now.role == w->role)
		return 0; /* a restart with nothing new: no epoch */
	*w = now;
	uint64_t e = bump(m);
	if (moved)
		touch_hosted(m, w->id, e);
	return 0;
}

static int apply_register(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	int32_t i = vt__pd_worker_index(m, c->worker);
	if (i >= 0)
		return reregister(m, &m->workers[i], c, err);
	if (m->n_workers >= VT_PD_MAX_WORKERS)
		return REJECT(VT_ELIMIT, "register_worker: %u workers (max %u)",
			      m->n_workers, VT_PD_MAX_WORKERS);
	if (grow((void **)&m->workers, &m->cap_workers, m->n_workers + 1,
		 sizeof *m->workers))
		return VT_ENOMEM;
	uint32_t at = 0;
	while (at < m->n_workers && m->workers[at].id < c->worker)
		at++;
	memmove(&m->workers[at + 1], &m->workers[at],
		(m->n_workers - at) * sizeof *m->workers);
	m->n_workers++;
	vt_pd_worker *w = &m->workers[at];
	memset(w, 0, sizeof *w);
	fill_worker(w, c);
	w->state = VT_PD_UP;
	bump(m);
	return 0;
}

static int apply_state(vt_pd_meta *m, const vt_pd_cmd *c, vt_pd_result *res,
		       vt_errmsg *err)
{
	int32_t i = vt__pd_worker_index(m, c->worker);
	if (i < 0)
		return REJECT(VT_ENOENT, "set_worker_state: worker %llu is not "
					 "registered",
			      (unsigned long long)c->worker);
	vt_pd_worker *w = &m->workers[i];
	if (w->state == c->state)
		return 0; /* already there: no change, no epoch */
	if (w->state == VT_PD_REMOVED)
		return REJECT(VT_EINVAL,
			      "set_worker_state: worker %llu is removed "
			      "(terminal)",
			      (unsigned long long)c->worker);
	uint32_t n = vt_pd_meta_hosted(m, c->worker);
	if (c->state == VT_PD_REMOVED && n)
		return REJECT(VT_EBUSY,
			      "set_worker_state: worker %llu still hosts %u "
			      "replicas; move them first",
			      (unsigned long long)c->worker, n);
	w->state = c->state;
	bump(m);
	return 0;
}

/* ---- collections ---------------------------------------------------------- */

static int check_slot(const vt_pd_meta *m, const vt_pd_cmd *c,
		      const vt_pd_slot *sl, vt_errmsg *err)
{
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, sl->worker);
	if (!w)
		return REJECT(VT_ENOENT,
			      "create_collection: shard %u: worker %llu is "
			      "not registered",
			      sl->shard, (unsigned long long)sl->worker);
	if (w->state != VT_PD_UP)
		return REJECT(VT_EINVAL,
			      "create_collection: shard %u: worker %llu is "
			      "%s",
			      sl->shard, (unsigned long long)sl->worker,
			      vt_pd_state_name(w->state));
	if (sl->role == VT_PD_VOTER && w->role == VT_PD_ROLE_SEARCH_ONLY)
		return REJECT(VT_EINVAL,
			      "create_collection: shard %u: worker %llu is "
			      "search_only and cannot hold a voter",
			      sl->shard, (unsigned long long)sl->worker);
	return 0;
}

/* Slots [from, to) are one shard: distinct workers, rf voters. */
static int check_shard(const vt_pd_meta *m, const vt_pd_cmd *c, uint32_t from,
		       uint32_t to, vt_errmsg *err)
{
	uint32_t nv = 0;
	for (uint32_t i = from; i < to; i++) {
		int rc = check_slot(m, c, &c->slots[i], err);
		if (rc)
			return rc;
		nv += c->slots[i].role == VT_PD_VOTER;
		for (uint32_t j = from; j < i; j++)
			if (c->slots[j].worker == c->slots[i].worker)
				return REJECT(VT_EINVAL,
					      "create_collection: shard %u: "
					      "worker %llu twice",
					      c->slots[i].shard,
					      (unsigned long long)
						      c->slots[i].worker);
	}
	if (nv != c->rf)
		return REJECT(VT_EINVAL,
			      "create_collection: shard %u: %u voters, rf is "
			      "%u",
			      c->slots[from].shard, nv, c->rf);
	return 0;
}

static int check_create(const vt_pd_meta *m, const vt_pd_cmd *c,
			vt_errmsg *err)
{
	if (vt__pd_coll_index(m, c->name, c->name_len) >= 0)
		return REJECT(VT_EEXIST,
			      "create_collection: name: '%.*s' exists",
			      (int)c->name_len, c->name);
	if (m->n_colls >= VT_PD_MAX_COLLECTIONS ||
	    m->total_shards + c->shard_count > VT_PD_MAX_TOTAL_SHARDS)
		return REJECT(VT_ELIMIT,
			      "create_collection: %u collections with %u "
			      "shards (max %u and %u)",
			      m->n_colls, m->total_shards,
			      VT_PD_MAX_COLLECTIONS, VT_PD_MAX_TOTAL_SHARDS);
	for (uint32_t i = 0; i < c->n_slots;) {
		uint32_t j = i;
		while (j < c->n_slots && c->slots[j].shard == c->slots[i].shard)
			j++;
		int rc = check_shard(m, c, i, j, err);
		if (rc)
			return rc;
		i = j;
	}
	return 0;
}

static void fill_shards(vt_pd_meta *m, vt__pd_coll *co, const vt_pd_cmd *c,
			uint64_t epoch)
{
	vt__pd_key_ranges(co->shards, c->shard_count);
	for (uint32_t s = 0; s < c->shard_count; s++) {
		co->shards[s].index = s;
		co->shards[s].group = m->next_group++;
		co->shards[s].epoch = epoch;
		co->shards[s].next_raft_id = 1;
	}
	for (uint32_t i = 0; i < c->n_slots; i++) {
		vt_pd_shard *s = &co->shards[c->slots[i].shard];
		vt_pd_replica *r = &s->replicas[s->n_replicas++];
		r->worker = c->slots[i].worker;
		r->role = c->slots[i].role;
		r->raft_id = s->next_raft_id++;
	}
}

static int apply_create(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	int rc = check_create(m, c, err);
	if (rc)
		return rc;
	vt__pd_coll co;
	memset(&co, 0, sizeof co);
	co.shards = vt_calloc(c->shard_count, sizeof *co.shards);
	co.config = c->config_len ? vt_malloc(c->config_len) : NULL;
	if (!co.shards || (c->config_len && !co.config) ||
	    grow((void **)&m->colls, &m->cap_colls, m->n_colls + 1,
		 sizeof *m->colls)) {
		vt__pd_coll_free(&co);
		return VT_ENOMEM;
	}
	if (c->config_len)
		memcpy(co.config, c->config, c->config_len);
	copy_label(co.pub.name, c->name, c->name_len);
	co.pub.config = co.config;
	co.pub.config_len = c->config_len;
	co.pub.shard_count = c->shard_count;
	co.pub.rf = c->rf;
	co.pub.shards = co.shards;
	co.pub.epoch = bump(m);
	fill_shards(m, &co, c, co.pub.epoch);
	uint32_t at = (uint32_t)(-vt__pd_coll_index(m, c->name, c->name_len) - 1);
	memmove(&m->colls[at + 1], &m->colls[at],
		(m->n_colls - at) * sizeof *m->colls);
	m->colls[at] = co;
	m->n_colls++;
	m->total_shards += c->shard_count;
	return 0;
}

static int apply_drop(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	int32_t i = vt__pd_coll_index(m, c->name, c->name_len);
	if (i < 0)
		return REJECT(VT_ENOENT,
			      "drop_collection: name: '%.*s' does not exist",
			      (int)c->name_len, c->name);
	m->total_shards -= m->colls[i].pub.shard_count;
	vt__pd_coll_free(&m->colls[i]);
	memmove(&m->colls[i], &m->colls[i + 1],
		(m->n_colls - (uint32_t)i - 1) * sizeof *m->colls);
	m->n_colls--;
	bump(m);
	return 0;
}

/* ---- replicas ------------------------------------------------------------- */

/* Finds the command's shard and checks its expected epoch. */
static int find_shard(vt_pd_meta *m, const vt_pd_cmd *c, vt__pd_coll **co,
		      vt_pd_shard **sh, vt_errmsg *err)
{
	const char *what = vt_pd_cmd_type_name(c->type);
	int32_t i = vt__pd_coll_index(m, c->name, c->name_len);
	if (i < 0)
		return REJECT(VT_ENOENT, "%s: name: '%.*s' does not exist",
			      what, (int)c->name_len, c->name);
	*co = &m->colls[i];
	if (c->shard >= (*co)->pub.shard_count)
		return REJECT(VT_ENOENT, "%s: shard %u of '%s' (it has %u)",
			      what, c->shard, (*co)->pub.name,
			      (*co)->pub.shard_count);
	*sh = &(*co)->shards[c->shard];
	if (c->expect_epoch && c->expect_epoch != (*sh)->epoch)
		return REJECT(VT_EBUSY,
			      "%s: expect_epoch: shard %u of '%s' is at "
			      "epoch %llu, not %llu",
			      what, c->shard, (*co)->pub.name,
			      (unsigned long long)(*sh)->epoch,
			      (unsigned long long)c->expect_epoch);
	return 0;
}

/* The shard of `c` and the index of c->worker's replica in it; VT_ENOENT
 * (rejected, named after the command) when that worker hosts none. */
static int find_replica(vt_pd_meta *m, const vt_pd_cmd *c, vt__pd_coll **co,
			vt_pd_shard **s, int *i, vt_errmsg *err)
{
	int rc = find_shard(m, c, co, s, err);
	if (rc)
		return rc;
	if ((*i = replica_at(*s, c->worker)) < 0)
		return REJECT(VT_ENOENT, "%s: worker %llu does not host shard "
			      "%u of '%s'", vt_pd_cmd_type_name(c->type),
			      (unsigned long long)c->worker, c->shard,
			      (*co)->pub.name);
	return 0;
}

/* Whether `worker` may take a replica of `role`: registered, up, and not
 * search_only for a voter. */
static int check_host(const vt_pd_meta *m, const vt_pd_cmd *c, uint8_t role,
		      vt_errmsg *err)
{
	const char *what = vt_pd_cmd_type_name(c->type);
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, c->worker);
	if (!w)
		return REJECT(VT_ENOENT, "%s: worker %llu is not registered",
			      what, (unsigned long long)c->worker);
	if (w->state != VT_PD_UP)
		return REJECT(VT_EINVAL, "%s: worker %llu is %s", what,
			      (unsigned long long)c->worker,
			      vt_pd_state_name(w->state));
	if (role == VT_PD_VOTER && w->role == VT_PD_ROLE_SEARCH_ONLY)
		return REJECT(VT_EINVAL,
			      "%s: worker %llu is search_only and cannot "
			      "hold a voter",
			      what, (unsigned long long)c->worker);
	return 0;
}

static int apply_add(vt_pd_meta *m, const vt_pd_cmd *c, vt_pd_result *res,
		     vt_errmsg *err)
{
	vt__pd_coll *co;
	vt_pd_shard *s;
	int rc = find_shard(m, c, &co, &s, err);
	if (rc || (rc = check_host(m, c, c->role, err)))
		return rc;
	if (replica_at(s, c->worker) >= 0)
		return REJECT(VT_EEXIST,
			      "add_replica: worker %llu already hosts shard "
			      "%u of '%s'",
			      (unsigned long long)c->worker, c->shard,
			      co->pub.name);
	if (s->n_replicas >= VT_PD_MAX_REPLICAS)
		return REJECT(VT_ELIMIT,
			      "add_replica: shard %u of '%s' has %u replicas "
			      "(max %u)",
			      c->shard, co->pub.name, s->n_replicas,
			      VT_PD_MAX_REPLICAS);
	vt_pd_replica *r = &s->replicas[s->n_replicas++];
	r->worker = c->worker;
	r->role = c->role;
	r->raft_id = s->next_raft_id++;
	res->raft_id = r->raft_id;
	touch(co, s, bump(m));
	return 0;
}

static int apply_remove(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	vt__pd_coll *co;
	vt_pd_shard *s;
	int i;
	int rc = find_replica(m, c, &co, &s, &i, err);
	if (rc)
		return rc;
	if (s->replicas[i].role == VT_PD_VOTER && voters(s) == 1)
		return REJECT(VT_EBUSY,
			      "remove_replica: worker %llu holds the last "
			      "voter of shard %u of '%s'",
			      (unsigned long long)c->worker, c->shard,
			      co->pub.name);
	memmove(&s->replicas[i], &s->replicas[i + 1],
		(s->n_replicas - (uint32_t)i - 1) * sizeof *s->replicas);
	s->n_replicas--;
	if (s->leader == c->worker)
		s->leader = 0;
	touch(co, s, bump(m));
	return 0;
}

static int apply_promote(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	vt__pd_coll *co;
	vt_pd_shard *s;
	int i;
	int rc = find_replica(m, c, &co, &s, &i, err);
	if (rc)
		return rc;
	vt_pd_replica *r = &s->replicas[i];
	if (r->role == c->role)
		return 0; /* already so: no change, no epoch */
	if (c->role == VT_PD_VOTER && (rc = check_host(m, c, c->role, err)))
		return rc;
	if (r->role == VT_PD_VOTER && voters(s) == 1)
		return REJECT(VT_EBUSY,
			      "promote: worker %llu holds the last voter of "
			      "shard %u of '%s'",
			      (unsigned long long)c->worker, c->shard,
			      co->pub.name);
	r->role = c->role;
	if (r->role == VT_PD_NONVOTER && s->leader == c->worker)
		s->leader = 0;
	touch(co, s, bump(m));
	return 0;
}

static int apply_leader(vt_pd_meta *m, const vt_pd_cmd *c, vt_errmsg *err)
{
	vt__pd_coll *co;
	vt_pd_shard *s;
	int rc = find_shard(m, c, &co, &s, err);
	if (rc)
		return rc;
	int i = c->worker ? replica_at(s, c->worker) : 0;
	if (i < 0 || (c->worker && s->replicas[i].role != VT_PD_VOTER))
		return REJECT(VT_EINVAL,
			      "set_leader: worker %llu is not a voter of "
			      "shard %u of '%s'",
			      (unsigned long long)c->worker, c->shard,
			      co->pub.name);
	if (c->term < s->leader_term)
		return REJECT(VT_EBUSY,
			      "set_leader: term %llu is older than the "
			      "hint's %llu",
			      (unsigned long long)c->term,
			      (unsigned long long)s->leader_term);
	if (s->leader == c->worker && s->leader_term == c->term)
		return 0;
	s->leader = c->worker;
	s->leader_term = c->term;
	touch(co, s, bump(m));
	return 0;
}

static int dispatch(vt_pd_meta *m, const vt_pd_cmd *c, vt_pd_result *res,
		    vt_errmsg *err)
{
	switch (c->type) {
	case VT_PD_CMD_REGISTER_WORKER:
		return apply_register(m, c, err);
	case VT_PD_CMD_SET_WORKER_STATE:
		return apply_state(m, c, res, err);
	case VT_PD_CMD_CREATE_COLLECTION:
		return apply_create(m, c, err);
	case VT_PD_CMD_DROP_COLLECTION:
		return apply_drop(m, c, err);
	case VT_PD_CMD_ADD_REPLICA:
		return apply_add(m, c, res, err);
	case VT_PD_CMD_REMOVE_REPLICA:
		return apply_remove(m, c, err);
	case VT_PD_CMD_PROMOTE:
		return apply_promote(m, c, err);
	default:
		return apply_leader(m, c, err);
	}
}

int vt_pd_apply(vt_pd_meta *m, uint64_t index, const void *bytes, size_t len,
		vt_pd_result *res_out, vt_errmsg *err)
{
	vt_pd_result scratch;
	vt_pd_result *res = res_out ? res_out : &scratch;
	memset(res, 0, sizeof *res);
	if (index == 0)
		index = m->applied + 1;
	res->index = index;
	res->epoch = m->epoch;
	if (index <= m->applied) {
		res->noop = 1;
		return 0;
	}
	vt_pd_cmd c;
	int rc = vt_pd_cmd_decode(bytes, len, &c, err);
	if (!rc) {
		res->type = c.type;
		rc = dispatch(m, &c, res, err);
		vt_pd_cmd_release(&c);
	}
	if (rc == VT_ENOMEM)
		return vt_errmsg_set(err, rc, "pd apply %llu: out of memory",
				     (unsigned long long)index);
	m->applied = index;
	res->epoch = m->epoch;
	if (rc)
		vt_errmsg_prefix(err, rc, "pd apply %llu", (unsigned long long)index);
	return rc;
}
