/* meta.c: the metadata container: creation, look-ups, key ranges, names
 * (meta.h). Commands live in apply.c, snapshots in snap.c. */
#include "meta.h"

#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "pd_int.h"

int vt_pd_meta_new(vt_pd_meta **out)
{
	vt_pd_meta *m = vt_calloc(1, sizeof *m);
	if (!m)
		return VT_ENOMEM;
	m->next_group = 1;
	*out = m;
	return 0;
}

void vt__pd_coll_free(vt__pd_coll *c)
{
	vt_free(c->config);
	vt_free(c->shards);
	c->config = NULL;
	c->shards = NULL;
}

void vt__pd_meta_clear(vt_pd_meta *m)
{
	for (uint32_t i = 0; i < m->n_colls; i++)
		vt__pd_coll_free(&m->colls[i]);
	vt_free(m->colls);
	vt_free(m->workers);
	memset(m, 0, sizeof *m);
	m->next_group = 1;
}

void vt_pd_meta_free(vt_pd_meta *m)
{
	if (!m)
		return;
	vt__pd_meta_clear(m);
	vt_free(m);
}

uint64_t vt_pd_meta_applied(const vt_pd_meta *m)
{
	return m->applied;
}

uint64_t vt_pd_meta_epoch(const vt_pd_meta *m)
{
	return m->epoch;
}

uint32_t vt_pd_meta_worker_count(const vt_pd_meta *m)
{
	return m->n_workers;
}

const vt_pd_worker *vt_pd_meta_worker(const vt_pd_meta *m, uint32_t i)
{
	return i < m->n_workers ? &m->workers[i] : NULL;
}

int32_t vt__pd_worker_index(const vt_pd_meta *m, uint64_t id)
{
	uint32_t lo = 0, hi = m->n_workers;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->workers[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n_workers && m->workers[lo].id == id ? (int32_t)lo : -1;
}

const vt_pd_worker *vt_pd_meta_find_worker(const vt_pd_meta *m, uint64_t id)
{
	int32_t i = vt__pd_worker_index(m, id);
	return i < 0 ? NULL : &m->workers[i];
}

uint32_t vt_pd_meta_collection_count(const vt_pd_meta *m)
{
	return m->n_colls;
}

const vt_pd_collection *vt_pd_meta_collection(const vt_pd_meta *m,
					      uint32_t i)
{
	return i < m->n_colls ? &m->colls[i].pub : NULL;
}

static int name_cmp(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int32_t vt__pd_coll_index(const vt_pd_meta *m, const char *name, size_t n)
{
	uint32_t lo = 0, hi = m->n_colls;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(m->colls[mid].pub.name, name, n);
		if (c == 0)
			return (int32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(int32_t)lo - 1;
}

const vt_pd_collection *vt_pd_meta_find_collection(const vt_pd_meta *m,
						   const char *name,
						   size_t len)
{
	int32_t i = vt__pd_coll_index(m, name, len);
	return i < 0 ? NULL : &m->colls[i].pub;
}

uint32_t vt_pd_meta_hosted(const vt_pd_meta *m, uint64_t worker)
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < m->n_colls; c++) {
		const vt__pd_coll *co = &m->colls[c];
		for (uint32_t s = 0; s < co->pub.shard_count; s++)
			for (uint32_t r = 0; r < co->shards[s].n_replicas; r++)
				n += co->shards[s].replicas[r].worker == worker;
	}
	return n;
}

/* Shard i owns [ceil(i * 2^64 / n), ceil((i+1) * 2^64 / n) - 1]. */
static uint64_t range_start(uint32_t i, uint32_t n)
{
	unsigned __int128 x = ((unsigned __int128)i << 64) + n - 1;
	return (uint64_t)(x / n);
}

void vt__pd_key_ranges(vt_pd_shard *shards, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		shards[i].key_lo = range_start(i, n);
		shards[i].key_hi =
			i + 1 == n ? UINT64_MAX : range_start(i + 1, n) - 1;
	}
}

uint32_t vt_pd_shard_of_key(uint32_t shard_count, uint64_t key)
{
	return vt_hash_range(key, shard_count);
}

const char *vt_pd_role_name(int role)
{
	return role == VT_PD_ROLE_NORMAL	? "normal"
	       : role == VT_PD_ROLE_SEARCH_ONLY ? "search_only"
						: "?";
}

const char *vt_pd_state_name(int state)
{
	return state == VT_PD_UP	 ? "up"
	       : state == VT_PD_DRAINING ? "draining"
	       : state == VT_PD_REMOVED	 ? "removed"
					 : "?";
}

const char *vt_pd_replica_role_name(int role)
{
	return role == VT_PD_VOTER	? "voter"
	       : role == VT_PD_NONVOTER ? "nonvoter"
					: "?";
}
