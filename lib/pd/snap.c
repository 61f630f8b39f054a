/* snap.c: snapshot and restore of the whole metadata (meta.h). Layout,
 * little-endian (docs/cluster-metadata.md):
 *   "VTPDSNAP", u32 version (1), u64 applied, u64 epoch, u64 next_group,
 *   u32 n_workers, n x { u64 id, str16 addr, str8 zone, str8 rack,
 *                        u64 capacity, u8 role, u8 state },
 *   u32 n_colls, n x { str8 name, u32 config_len, config, u32 shard_count,
 *                      u8 rf, u64 epoch, shard_count x { u64 group,
 *                      u64 epoch, u64 leader, u64 leader_term,
 *                      u64 next_raft_id, u8 n, n x { u64 worker,
 *                      u64 raft_id, u8 role } } },
 *   u64 XXH3 (seed 0) of every byte before it.
 * Key ranges are not stored: they follow from shard_count. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "pd_int.h"

#define SNAP_MAGIC "VTPDSNAP"
#define SNAP_VERSION 1u

/* ---- writing ---------------------------------------------------------------- */

static int put_worker(vt_buf *b, const vt_pd_worker *w)
{
	int rc = vt_buf_put_u64(b, w->id);
	if (!rc)
		rc = vt__pd_put_str(b, 1, w->addr, (uint32_t)strlen(w->addr));
	if (!rc)
		rc = vt__pd_put_str(b, 0, w->zone, (uint32_t)strlen(w->zone));
	if (!rc)
		rc = vt__pd_put_str(b, 0, w->rack, (uint32_t)strlen(w->rack));
	if (!rc)
		rc = vt_buf_put_u64(b, w->capacity);
	if (!rc)
		rc = vt_buf_put_u8(b, w->role);
	return rc ? rc : vt_buf_put_u8(b, w->state);
}

static int put_shard(vt_buf *b, const vt_pd_shard *s)
{
	int rc = 0;
	const uint64_t f[] = {s->group, s->epoch, s->leader, s->leader_term,
			      s->next_raft_id};
	for (size_t i = 0; i < sizeof f / sizeof f[0] && !rc; i++)
		rc = vt_buf_put_u64(b, f[i]);
	if (!rc)
		rc = vt_buf_put_u8(b, (uint8_t)s->n_replicas);
	for (uint32_t i = 0; i < s->n_replicas && !rc; i++) {
		rc = vt_buf_put_u64(b, s->replicas[i].worker);
		if (!rc)
			rc = vt_buf_put_u64(b, s->replicas[i].raft_id);
		if (!rc)
			rc = vt_buf_put_u8(b, s->replicas[i].role);
	}
	return rc;
}

static int put_coll(vt_buf *b, const vt_pd_collection *c)
{
	int rc = vt__pd_put_str(b, 0, c->name, (uint32_t)strlen(c->name));
	if (!rc)
		rc = vt_buf_put_u32(b, c->config_len);
	if (!rc && c->config_len)
		rc = vt_buf_append(b, c->config, c->config_len);
	if (!rc)
		rc = vt_buf_put_u32(b, c->shard_count);
	if (!rc)
		rc = vt_buf_put_u8(b, (uint8_t)c->rf);
	if (!rc)
		rc = vt_buf_put_u64(b, c->epoch);
	for (uint32_t s = 0; s < c->shard_count && !rc; s++)
		rc = put_shard(b, &c->shards[s]);
	return rc;
}

int vt_pd_snapshot(const vt_pd_meta *m, vt_buf *b)
{
	size_t start = b->len;
	int rc = vt_buf_append(b, SNAP_MAGIC, 8);
	if (!rc)
		rc = vt_buf_put_u32(b, SNAP_VERSION);
	if (!rc)
		rc = vt_buf_put_u64(b, m->applied);
	if (!rc)
		rc = vt_buf_put_u64(b, m->epoch);
	if (!rc)
		rc = vt_buf_put_u64(b, m->next_group);
	if (!rc)
		rc = vt_buf_put_u32(b, m->n_workers);
	for (uint32_t i = 0; i < m->n_workers && !rc; i++)
		rc = put_worker(b, &m->workers[i]);
	if (!rc)
		rc = vt_buf_put_u32(b, m->n_colls);
	for (uint32_t i = 0; i < m->n_colls && !rc; i++)
		rc = put_coll(b, &m->colls[i].pub);
	if (!rc)
		rc = vt_buf_put_u64(b, vt_hash64(b->data + start,
						 b->len - start, 0));
	return rc;
}

/* ---- reading ---------------------------------------------------------------- */

#define BAD(...) vt_errmsg_set(err, VT_ECORRUPT, "pd snapshot: " __VA_ARGS__)

static int get_label(vt_reader *r, int wide, char *dst, int (*ok)(const char *,
								  uint32_t))
{
	const char *p;
	uint32_t n;
	if (vt__pd_get_str(r, wide, &p, &n) || !ok(p, n))
		return VT_ECORRUPT;
	if (n)
		memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

static int get_worker(vt_reader *r, vt_pd_worker *w, uint64_t prev,
		      vt_errmsg *err)
{
	memset(w, 0, sizeof *w);
	if (vt_reader_u64(r, &w->id) || w->id <= prev)
		return BAD("worker id %llu after %llu (ids ascend from 1)",
			   (unsigned long long)w->id,
			   (unsigned long long)prev);
	if (get_label(r, 1, w->addr, vt__pd_addr_ok) ||
	    get_label(r, 0, w->zone, vt__pd_label_ok) ||
	    get_label(r, 0, w->rack, vt__pd_label_ok) ||
	    vt_reader_u64(r, &w->capacity) || !w->capacity ||
	    vt_reader_u8(r, &w->role) || w->role > VT_PD_ROLE_SEARCH_ONLY ||
	    vt_reader_u8(r, &w->state) || w->state > VT_PD_REMOVED)
		return BAD("worker %llu: bad field", (unsigned long long)w->id);
	return 0;
}

static int get_workers(vt_reader *r, vt_pd_meta *m, vt_errmsg *err)
{
	uint32_t n;
	if (vt_reader_u32(r, &n) || n > VT_PD_MAX_WORKERS)
		return BAD("worker count");
	m->workers = vt_calloc(n ? n : 1, sizeof *m->workers);
	if (!m->workers)
		return vt_errmsg_set(err, VT_ENOMEM, "pd snapshot: workers");
	m->cap_workers = n;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t prev = i ? m->workers[i - 1].id : 0;
		int rc = get_worker(r, &m->workers[i], prev, err);
		if (rc)
			return rc;
		m->n_workers++;
	}
	return 0;
}

/* A replica must name a registered, not removed worker, once per shard,
 * with a raft id below next_raft_id, also once. */
static int check_replica(const vt_pd_meta *m, const vt_pd_shard *s,
			 uint32_t i)
{
	const vt_pd_replica *r = &s->replicas[i];
	const vt_pd_worker *w = vt_pd_meta_find_worker(m, r->worker);
	if (!w || w->state == VT_PD_REMOVED || r->role > VT_PD_NONVOTER ||
	    !r->raft_id || r->raft_id >= s->next_raft_id)
		return VT_ECORRUPT;
	for (uint32_t j = 0; j < i; j++)
		if (s->replicas[j].worker == r->worker ||
		    s->replicas[j].raft_id == r->raft_id)
			return VT_ECORRUPT;
	return 0;
}

static int get_shard(vt_reader *r, const vt_pd_meta *m, vt_pd_shard *s)
{
	uint8_t n;
	if (vt_reader_u64(r, &s->group) || vt_reader_u64(r, &s->epoch) ||
	    vt_reader_u64(r, &s->leader) || vt_reader_u64(r, &s->leader_term) ||
	    vt_reader_u64(r, &s->next_raft_id) || vt_reader_u8(r, &n) ||
	    n == 0 || n > VT_PD_MAX_REPLICAS || !s->group ||
	    s->group >= m->next_group || s->epoch > m->epoch)
		return VT_ECORRUPT;
	int leader_ok = s->leader == 0;
	for (uint32_t i = 0; i < n; i++) {
		vt_pd_replica *rp = &s->replicas[i];
		if (vt_reader_u64(r, &rp->worker) ||
		    vt_reader_u64(r, &rp->raft_id) ||
		    vt_reader_u8(r, &rp->role) || check_replica(m, s, i))
			return VT_ECORRUPT;
		leader_ok |= rp->worker == s->leader && rp->role == VT_PD_VOTER;
	}
	s->n_replicas = n;
	return leader_ok ? 0 : VT_ECORRUPT;
}

static int get_coll_head(vt_reader *r, const vt_pd_meta *m, vt__pd_coll *c,
			 vt_errmsg *err)
{
	vt_pd_collection *p = &c->pub;
	uint8_t rf;
	const void *cfg = NULL;
	if (get_label(r, 0, p->name, vt__pd_name_ok) ||
	    vt_reader_u32(r, &p->config_len) ||
	    p->config_len > VT_PD_MAX_CONFIG ||
	    (p->config_len && vt_reader_ptr(r, &cfg, p->config_len)) ||
	    vt_reader_u32(r, &p->shard_count) || !p->shard_count ||
	    p->shard_count > VT_PD_MAX_SHARDS ||
	    m->total_shards + p->shard_count > VT_PD_MAX_TOTAL_SHARDS ||
	    vt_reader_u8(r, &rf) || !rf || rf > VT_PD_MAX_RF ||
	    vt_reader_u64(r, &p->epoch) || p->epoch > m->epoch)
		return BAD("collection %u: bad header", m->n_colls);
	p->rf = rf;
	c->shards = vt_calloc(p->shard_count, sizeof *c->shards);
	c->config = p->config_len ? vt_malloc(p->config_len) : NULL;
	if (!c->shards || (p->config_len && !c->config))
		return vt_errmsg_set(err, VT_ENOMEM, "pd snapshot: collection");
	if (p->config_len)
		memcpy(c->config, cfg, p->config_len);
	p->config = c->config;
	p->shards = c->shards;
	return 0;
}

static int get_coll(vt_reader *r, vt_pd_meta *m, vt_errmsg *err)
{
	vt__pd_coll *c = &m->colls[m->n_colls];
	memset(c, 0, sizeof *c);
	int rc = get_coll_head(r, m, c, err);
	if (!rc && m->n_colls &&
	    strcmp(m->colls[m->n_colls - 1].pub.name, c->pub.name) >= 0)
		rc = BAD("collection '%s' out of name order", c->pub.name);
	for (uint32_t s = 0; s < c->pub.shard_count && !rc; s++) {
		c->shards[s].index = s;
		if (get_shard(r, m, &c->shards[s]))
			rc = BAD("collection '%s' shard %u: bad field",
				 c->pub.name, s);
	}
	if (rc) {
		vt__pd_coll_free(c);
		return rc;
	}
	vt__pd_key_ranges(c->shards, c->pub.shard_count);
	m->total_shards += c->pub.shard_count;
	m->n_colls++;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Raft group ids are unique across the cluster (below next_group, checked
 * per shard). */
static int check_groups(const vt_pd_meta *m, vt_errmsg *err)
{
	uint64_t *g = vt_malloc((m->total_shards ? m->total_shards : 1) *
				sizeof *g);
	if (!g)
		return vt_errmsg_set(err, VT_ENOMEM, "pd snapshot: groups");
	size_t k = 0;
	for (uint32_t c = 0; c < m->n_colls; c++)
		for (uint32_t s = 0; s < m->colls[c].pub.shard_count; s++)
			g[k++] = m->colls[c].shards[s].group;
	qsort(g, k, sizeof *g, u64_cmp);
	int rc = 0;
	for (size_t i = 1; i < k && !rc; i++)
		if (g[i] == g[i - 1])
			rc = BAD("group %llu used twice",
				 (unsigned long long)g[i]);
	vt_free(g);
	return rc;
}

static int get_colls(vt_reader *r, vt_pd_meta *m, vt_errmsg *err)
{
	uint32_t n;
	if (vt_reader_u32(r, &n) || n > VT_PD_MAX_COLLECTIONS)
		return BAD("collection count");
	m->colls = vt_calloc(n ? n : 1, sizeof *m->colls);
	if (!m->colls)
		return vt_errmsg_set(err, VT_ENOMEM, "pd snapshot: collections");
	m->cap_colls = n;
	for (uint32_t i = 0; i < n; i++) {
		int rc = get_coll(r, m, err);
		if (rc)
			return rc;
	}
	return check_groups(m, err);
}

static int get_all(vt_reader *r, vt_pd_meta *m, vt_errmsg *err)
{
	char magic[8];
	uint32_t version;
	if (vt_reader_get(r, magic, 8) || memcmp(magic, SNAP_MAGIC, 8))
		return BAD("bad magic");
	if (vt_reader_u32(r, &version))
		return BAD("truncated header");
	if (version != SNAP_VERSION)
		return vt_errmsg_set(err, VT_EVERSION,
				     "pd snapshot: version %u (this build "
				     "reads %u)",
				     version, SNAP_VERSION);
	if (vt_reader_u64(r, &m->applied) || vt_reader_u64(r, &m->epoch) ||
	    vt_reader_u64(r, &m->next_group) || !m->next_group)
		return BAD("truncated header");
	int rc = get_workers(r, m, err);
	if (!rc)
		rc = get_colls(r, m, err);
	if (!rc && vt_reader_left(r))
		rc = BAD("%zu trailing bytes", vt_reader_left(r));
	return rc;
}

int vt_pd_restore(vt_pd_meta *m, const void *bytes, size_t len,
		  vt_errmsg *err)
{
	if (len < 8 + 4 + 8)
		return BAD("%zu bytes, shorter than a header", len);
	const uint8_t *p = bytes;
	if (vt_le_get64(p + len - 8) != vt_hash64(p, len - 8, 0))
		return BAD("checksum mismatch");
	vt_pd_meta *n;
	if (vt_pd_meta_new(&n))
		return vt_errmsg_set(err, VT_ENOMEM, "pd snapshot");
	vt_reader r;
	vt_reader_init(&r, p, len - 8);
	int rc = get_all(&r, n, err);
	if (rc) {
		vt_pd_meta_free(n);
		return rc;
	}
	vt__pd_meta_clear(m);
	*m = *n;
	vt_free(n);
	return 0;
}
