/* hnsw.c: the HNSW graph: insert, delete, consolidate, search (greedy
 * descent, beam search on layer 0, filtered search, brute force, int8
 * traversal with float re-scoring). Not the file format (hnsw_io.c) nor the
 * quantizer's arithmetic (quant.c).
 *
 * Concurrency: link lists are read with acquire loads and written with
 * release stores under a striped mutex, so searches take no per-node lock
 * and a node's vector, label and level (written before its id is stored in
 * any list) are visible to whoever reaches it. Array growth, training and
 * consolidation take the `grow` lock exclusively. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/log.h"
#include "hnsw_int.h"

#define CHECKED 0x80000000u
/* Candidates a query expands per step on layer 0 (see search_layer). */
#define VT__QUERY_WIDTH 2
#define VT__MAX_WIDTH 2

/* ---- small atomics helpers --------------------------------------------- */

static inline uint32_t ld_acq(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void st_rel(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint8_t flags_of(const vt_hnsw *h, uint32_t id)
{
	/* acquire: a brute-force scan reads the row after seeing the flags */
	return __atomic_load_n(&h->flags[id], __ATOMIC_ACQUIRE);
}

/* The entry point and the top level are read together, or a reader could
 * pair a new top level with an old, lower entry node. */
static inline uint64_t pack_ep(uint32_t id, int level)
{
	return (uint64_t)(uint32_t)level << 32 | id;
}

static inline void load_ep(const vt_hnsw *h, uint32_t *id, int *level)
{
	uint64_t v = __atomic_load_n(&h->ep, __ATOMIC_ACQUIRE);
	*id = (uint32_t)v;
	*level = (int)(int32_t)(v >> 32);
}

static inline void store_ep(vt_hnsw *h, uint32_t id, int level)
{
	__atomic_store_n(&h->ep, pack_ep(id, level), __ATOMIC_RELEASE);
}

/* ---- per-thread search state ------------------------------------------- */

struct vt__searcher {
	struct vt__searcher *next;
	/* visited set: a bitset cleared through the list of words touched, so
	 * a query costs O(visits), not O(index) */
	uint64_t *vis;
	uint32_t vis_words;
	uint32_t *touched;
	uint32_t n_touched, touched_cap;
	/* beam: sorted by distance, CHECKED marks expanded entries */
	uint32_t *pids;
	float *pd;
	uint32_t pcap, psize, pcur;
	/* filtered search heaps */
	uint32_t *cid, *rid;
	float *cd, *rd;
	uint32_t ccap, rcap;
	/* query in the index's representation */
	float *qf;
	uint8_t *qc;
	/* scratch for neighbour selection and expansion */
	uint32_t *edge;
	uint32_t *tid, *tid2;
	float *td;
	uint32_t tcap;
};

static void searcher_free(struct vt__searcher *s)
{
	if (!s)
		return;
	vt_free(s->vis);
	vt_free(s->touched);
	vt_free(s->pids);
	vt_free(s->pd);
	vt_free(s->cid);
	vt_free(s->rid);
	vt_free(s->cd);
	vt_free(s->rd);
	vt_free_aligned(s->qf);
	vt_free_aligned(s->qc);
	vt_free(s->edge);
	vt_free(s->tid);
	vt_free(s->tid2);
	vt_free(s->td);
	vt_free(s);
}

static int grow_array(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t n = *cap ? *cap : 16;
	while (n < need)
		n = n > UINT32_MAX / 2 ? need : n * 2;
	void *q = vt_realloc(*p, (size_t)n * elem);
	if (!q)
		return VT_ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

/* Grows an (ids, dists) pair of arrays that share one capacity. */
static int grow_pair(uint32_t **ids, float **ds, uint32_t *cap, uint32_t need)
{
	if (need <= *cap)
		return 0;
	uint32_t c1 = *cap, c2 = *cap;
	if (grow_array((void **)ids, &c1, need, sizeof **ids) ||
	    grow_array((void **)ds, &c2, need, sizeof **ds))
		return VT_ENOMEM;
	*cap = c1 < c2 ? c1 : c2;
	return 0;
}

/* Makes sure `s` can search `h` with a beam of `ef`. */
static int searcher_fit(vt_hnsw *h, struct vt__searcher *s, uint32_t ef)
{
	uint32_t words = (h->cap + 63) / 64;
	if (s->vis_words < words) {
		uint64_t *v = vt_calloc(words, sizeof *v);
		if (!v)
			return VT_ENOMEM;
		vt_free(s->vis);
		s->vis = v;
		s->vis_words = words;
		s->n_touched = 0;
	}
	if (s->touched_cap < s->vis_words + 1) {
		/* search_layer stores one past the words it appends, without a
		 * bound check */
		uint32_t tc = s->touched_cap;
		if (grow_array((void **)&s->touched, &tc, s->vis_words + 1,
			       sizeof *s->touched))
			return VT_ENOMEM;
		s->touched_cap = tc;
	}
	if (grow_pair(&s->pids, &s->pd, &s->pcap, ef + 1))
		return VT_ENOMEM;
	uint32_t t = h->m0 + 1 > ef + 1 ? h->m0 + 1 : ef + 1;
	t = t * 2 + h->m0 * h->m0; /* consolidation unions lists */
	if (t > s->tcap) {
		uint32_t c = s->tcap;
		if (grow_array((void **)&s->tid2, &c, t, sizeof *s->tid2) ||
		    grow_pair(&s->tid, &s->td, &s->tcap, t))
			return VT_ENOMEM;
	}
	return 0;
}

static struct vt__searcher *searcher_get(vt_hnsw *h)
{
	pthread_mutex_lock(&h->pool_lock);
	struct vt__searcher *s = h->pool;
	if (s)
		h->pool = s->next;
	pthread_mutex_unlock(&h->pool_lock);
	if (s)
		return s;
	s = vt_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	size_t qbytes = h->vstride * sizeof(float);
	s->qf = vt_malloc_aligned(64, qbytes);
	s->qc = vt_malloc_aligned(64, h->cstride ? h->cstride : 64);
	s->edge = vt_malloc((VT__MAX_WIDTH * h->m0 + 4) * sizeof *s->edge);
	if (!s->qf || !s->qc || !s->edge) {
		searcher_free(s);
		return NULL;
	}
	return s;
}

static void searcher_put(vt_hnsw *h, struct vt__searcher *s)
{
	pthread_mutex_lock(&h->pool_lock);
	s->next = h->pool;
	h->pool = s;
	pthread_mutex_unlock(&h->pool_lock);
}

static inline int visit(struct vt__searcher *s, uint32_t id)
{
	uint32_t w = id >> 6;
	uint64_t bit = 1ull << (id & 63);
	uint64_t old = s->vis[w];
	if (old & bit)
		return 0;
	if (!old) {
		if (s->n_touched == s->touched_cap &&
		    grow_array((void **)&s->touched, &s->touched_cap,
			       s->touched_cap + 1, sizeof *s->touched)) {
			/* Cannot remember the word: clear everything later. */
			s->n_touched = UINT32_MAX;
		} else if (s->n_touched != UINT32_MAX) {
			s->touched[s->n_touched++] = w;
		}
	}
	s->vis[w] = old | bit;
	return 1;
}

static void visited_clear(struct vt__searcher *s)
{
	if (s->n_touched == UINT32_MAX) {
		memset(s->vis, 0, (size_t)s->vis_words * sizeof *s->vis);
	} else {
		for (uint32_t i = 0; i < s->n_touched; i++)
			s->vis[s->touched[i]] = 0;
	}
	s->n_touched = 0;
}

/* ---- distances ---------------------------------------------------------- */

/* A query (or an inserted vector) against stored nodes in one mode. */
typedef struct qctx {
	const vt_hnsw *h;
	int mode;
	const float *qf;
	const uint8_t *qc;
	/* int8 inner product: x.y = ka + kb * (sum_x + sum_y) + kc * codes.codes */
	float ka, kb, kc;
	uint32_t qsum;
} qctx;

static inline float f32_dist(const vt_hnsw *h, const float *a, const float *b)
{
	switch (h->p.metric) {
	case VT_METRIC_L2:
		return h->ops->l2sq_f32(a, b, h->p.dim);
	case VT_METRIC_IP:
		return -h->ops->dot_f32(a, b, h->p.dim);
	default:
		return 1.0f - h->ops->dot_f32(a, b, h->p.dim);
	}
}

static inline float u8_dist(const qctx *c, const uint8_t *a, uint32_t asum,
			    const uint8_t *b, uint32_t bsum)
{
	const vt_hnsw *h = c->h;
	if (h->p.metric == VT_METRIC_L2)
		return c->kc * (float)h->ops->l2sq_u8(a, b, h->p.dim);
	float dot = c->ka + c->kb * (float)(asum + bsum) +
		    c->kc * (float)h->ops->dot_u8(a, b, h->p.dim);
	return h->p.metric == VT_METRIC_IP ? -dot : 1.0f - dot;
}

static inline float dist_q(const qctx *c, uint32_t id)
{
	const vt_hnsw *h = c->h;
	if (c->mode == VT__MODE_U8)
		return u8_dist(c, c->qc, c->qsum, h->codes + (size_t)id * h->cstride,
			       h->csum[id]);
	return f32_dist(h, c->qf, vt__vec(h, id));
}

static inline float dist_nn(const qctx *c, uint32_t a, uint32_t b)
{
	const vt_hnsw *h = c->h;
	if (c->mode == VT__MODE_U8)
		return u8_dist(c, h->codes + (size_t)a * h->cstride, h->csum[a],
			       h->codes + (size_t)b * h->cstride, h->csum[b]);
	return f32_dist(h, vt__vec(h, a), vt__vec(h, b));
}

/* dist_q of four nodes at once, through the *_x4 kernels that share the
 * query's loads (faiss distances_batch_4, research/hnsw-speed.md §2D).
 * The integer kernels are exact, so int8 results equal dist_q's bit for
 * bit; float ones may differ in the last bits (another summation order),
 * within the kernels' stated tolerance. */
static inline void dist_q4(const qctx *c, const uint32_t *ids, float out[4])
{
	const vt_hnsw *h = c->h;
	const vt_simd_ops *o = h->ops;
	uint32_t dim = h->p.dim;
	if (c->mode == VT__MODE_U8) {
		const uint8_t *r[4];
		uint32_t v[4];
		for (int i = 0; i < 4; i++)
			r[i] = h->codes + (size_t)ids[i] * h->cstride;
		if (h->p.metric == VT_METRIC_L2) {
			o->l2sq_u8_x4(c->qc, r[0], r[1], r[2], r[3], dim, v);
			for (int i = 0; i < 4; i++)
				out[i] = c->kc * (float)v[i];
			return;
		}
		o->dot_u8_x4(c->qc, r[0], r[1], r[2], r[3], dim, v);
		for (int i = 0; i < 4; i++) {
			float dot = c->ka + c->kb * (float)(c->qsum + h->csum[ids[i]]) +
				    c->kc * (float)v[i];
			out[i] = h->p.metric == VT_METRIC_IP ? -dot : 1.0f - dot;
		}
		return;
	}
	const float *r[4];
	for (int i = 0; i < 4; i++)
		r[i] = vt__vec(h, ids[i]);
	if (h->p.metric == VT_METRIC_L2) {
		o->l2sq_f32_x4(c->qf, r[0], r[1], r[2], r[3], dim, out);
		return;
	}
	o->dot_f32_x4(c->qf, r[0], r[1], r[2], r[3], dim, out);
	for (int i = 0; i < 4; i++)
		out[i] = h->p.metric == VT_METRIC_IP ? -out[i] : 1.0f - out[i];
}

static void qctx_init(qctx *c, const vt_hnsw *h, int mode, const float *qf,
		      const uint8_t *qc, uint32_t qsum)
{
	c->h = h;
	c->mode = mode;
	c->qf = qf;
	c->qc = qc;
	c->qsum = qsum;
	c->ka = (float)h->p.dim * h->q_lo * h->q_lo;
	c->kb = h->q_lo * h->q_scale;
	c->kc = h->q_scale * h->q_scale;
}

/* Software prefetch, tuned on Fashion-MNIST (784-d) on Zen 5:
 * - int8 rows (13 lines) are prefetched whole for every unvisited
 *   neighbour as soon as it is collected: the misses overlap, and search
 *   gained about 35% over prefetching only the first lines;
 * - float rows (49 lines) would flood the fill buffers that way
 *   (research/hnsw-speed.md §2C, lance #8275), so only the first line is
 *   touched early and the next row is fetched while the current one is
 *   being scored. */
#define PF_U8_MAX_LINES 32
#define PF_F32_NEXT_LINES 16

static inline void prefetch_lines(const void *p, size_t lines)
{
	for (size_t i = 0; i < lines; i++)
		__builtin_prefetch((const char *)p + 64 * i, 0, 3);
}

static inline void prefetch_head(const qctx *c, uint32_t id)
{
	const vt_hnsw *h = c->h;
	if (c->mode == VT__MODE_U8) {
		size_t lines = (h->p.dim + 63) / 64;
		prefetch_lines(h->codes + (size_t)id * h->cstride,
			       lines < PF_U8_MAX_LINES ? lines : PF_U8_MAX_LINES);
		/* the row's code sum, a separate random miss under ip/cosine */
		if (h->p.metric != VT_METRIC_L2)
			__builtin_prefetch(&h->csum[id], 0, 3);
	} else {
		__builtin_prefetch(vt__vec(h, id), 0, 3);
	}
}

/* Issued again just before use: early prefetches beyond the fill buffers
 * are dropped by the core, and re-issuing them was worth 50% on int8. */
static inline void prefetch_next(const qctx *c, uint32_t id)
{
	const vt_hnsw *h = c->h;
	if (c->mode == VT__MODE_U8) {
		size_t lines = (h->p.dim + 63) / 64;
		prefetch_lines(h->codes + (size_t)id * h->cstride,
			       lines < PF_U8_MAX_LINES ? lines : PF_U8_MAX_LINES);
	} else {
		size_t lines = ((size_t)h->p.dim * 4 + 63) / 64;
		prefetch_lines(vt__vec(h, id),
			       lines < PF_F32_NEXT_LINES ? lines : PF_F32_NEXT_LINES);
	}
}

/* ---- beam (sorted candidate pool) --------------------------------------- */

static inline void pool_reset(struct vt__searcher *s)
{
	s->psize = 0;
	s->pcur = 0;
}

/* Inserts (id, d) into the sorted pool of at most `cap` entries; returns
 * its position, or cap when it did not make it. */
static inline uint32_t pool_insert(struct vt__searcher *s, uint32_t cap,
				   uint32_t id, float d)
{
	uint32_t n = s->psize;
	if (n == cap && d >= s->pd[n - 1])
		return cap;
	/* Branch-free upper bound (the first entry > d): the comparisons of
	 * a pool search are coin flips, and their mispredictions were a
	 * visible share of a query at 128 dimensions. Invariant: the answer
	 * lies in [b, b + len]. */
	uint32_t lo = 0;
	if (n) {
		const float *pd = s->pd;
		uint32_t b = 0, len = n;
		while (len > 1) {
			uint32_t half = len >> 1;
			b = pd[b + half] <= d ? b + half : b;
			len -= half;
		}
		lo = b + (pd[b] <= d);
	}
	uint32_t last = n == cap ? n - 1 : n;
	memmove(s->pd + lo + 1, s->pd + lo, (last - lo) * sizeof *s->pd);
	memmove(s->pids + lo + 1, s->pids + lo, (last - lo) * sizeof *s->pids);
	s->pd[lo] = d;
	s->pids[lo] = id;
	if (n < cap)
		s->psize = n + 1;
	if (lo < s->pcur)
		s->pcur = lo;
	return lo;
}

/* Returns the closest unexpanded node among the first `ef` and marks it
 * expanded, or VT__NONE. */
static inline uint32_t pool_next(struct vt__searcher *s, uint32_t ef)
{
	uint32_t end = s->psize < ef ? s->psize : ef;
	while (s->pcur < end && (s->pids[s->pcur] & CHECKED))
		s->pcur++;
	if (s->pcur >= end)
		return VT__NONE;
	uint32_t id = s->pids[s->pcur];
	s->pids[s->pcur] = id | CHECKED;
	return id;
}

/* Puts a scored node into the pool. One that lands among the next few to
 * be expanded gets its link list fetched now: the lists prefetched at the
 * start of a step are those of the candidates then next in line, and a
 * better neighbour found during the step takes their place. */
static inline void admit(const vt_hnsw *h, struct vt__searcher *s,
			 uint32_t keep, int level, uint32_t width, uint32_t id,
			 float d)
{
	if (pool_insert(s, keep, id, d) < s->pcur + width)
		__builtin_prefetch(vt__links(h, id, level), 0, 3);
}

/* Beam search on one layer from `ep` (Malkov & Yashunin, Algorithm 2)
 * with a beam of `ef`, leaving the best `keep` (>= ef) nodes it scored in
 * the pool, sorted. Only the first ef entries are ever expanded, so the
 * walk is exactly the ef-beam's; entries past ef are nodes the beam scored
 * and dropped, kept as extra re-scoring candidates at no memory traffic.
 * Two passes per step: first collect the unvisited neighbours, then
 * compute their distances while prefetching the next one's row.
 *
 * `width` > 1 expands the best `width` unexpanded candidates per step
 * (DiskANN's beam width, there for SSD reads): one step then waits for
 * one round of link-list and row misses instead of `width` rounds. A
 * search is bound by those round trips, not by arithmetic (on int8,
 * AVX2 kernels with 4x the instructions of VNNI's cost only ~10%), so
 * the overlap pays more than the occasional expansion the strict order
 * would have skipped; that extra expansion also lifts recall at a given
 * ef. Queries use 2 (+4-8% QPS at equal recall on Fashion-MNIST-cosine
 * and synth int8; 4 gained no more); inserts keep the paper's 1, so the
 * graph does not change. */
static void search_layer(const vt_hnsw *h, struct vt__searcher *s,
			 const qctx *c, uint32_t ep, float ep_d, int level,
			 uint32_t ef, uint32_t keep, uint32_t width)
{
	uint32_t cnt = level == 0 ? h->m0 : h->m;
	pool_reset(s);
	visited_clear(s);
	visit(s, ep);
	pool_insert(s, keep, ep, ep_d);
	uint32_t u;
	while ((u = pool_next(s, ef)) != VT__NONE) {
		uint32_t us[VT__MAX_WIDTH], nu = 1;
		us[0] = u;
		while (nu < width && (us[nu] = pool_next(s, ef)) != VT__NONE)
			nu++;
		/* The next candidates' lists are the next misses we will take. */
		uint32_t end = s->psize < ef ? s->psize : ef, pf = 0;
		for (uint32_t i = s->pcur + 1; i < end && pf < width; i++)
			if (!(s->pids[i] & CHECKED)) {
				__builtin_prefetch(vt__links(h, s->pids[i], level), 0, 3);
				pf++;
			}
		/* Branch-free visited test: whether a neighbour was seen is a
		 * coin flip the predictor keeps missing. searcher_fit made
		 * `touched` one longer than the bitset, and a word is appended
		 * only the one time it turns nonzero (the store always lands,
		 * at most one past the last), so it cannot overflow. Rows
		 * of already-visited neighbours are prefetched too: they were
		 * read recently, so those prefetches hit in cache. */
		uint32_t n = 0;
		for (uint32_t k = 0; k < nu; k++) {
			const uint32_t *lst = vt__links(h, us[k], level);
			for (uint32_t j = 0; j < cnt; j++) {
				uint32_t v = ld_acq(&lst[j]);
				if (v == VT__NONE)
					break;
				prefetch_head(c, v);
				uint32_t w = v >> 6;
				uint64_t bit = 1ull << (v & 63), old = s->vis[w];
				s->touched[s->n_touched] = w;
				s->n_touched += old == 0;
				s->vis[w] = old | bit;
				s->edge[n] = v;
				n += !(old & bit);
			}
		}
		/* Four at a time: one query load serves four rows, and the
		 * four rows' misses overlap in one instruction stream. */
		uint32_t j = 0;
		for (; j + 4 <= n; j += 4) {
			for (uint32_t t = j + 4; t < j + 8 && t < n; t++)
				prefetch_next(c, s->edge[t]);
			float d4[4];
			dist_q4(c, s->edge + j, d4);
			for (int t = 0; t < 4; t++)
				if (s->psize < keep || d4[t] < s->pd[s->psize - 1])
					admit(h, s, keep, level, width, s->edge[j + t], d4[t]);
		}
		if (j < n && c->mode == VT__MODE_U8) {
			/* The last one to three as one padded batch: the u8
			 * kernels are exact, so this equals dist_q. */
			uint32_t t4[4];
			float d4[4];
			for (uint32_t t = 0; t < 4; t++)
				t4[t] = s->edge[j + t < n ? j + t : n - 1];
			dist_q4(c, t4, d4);
			for (; j < n; j++) {
				float d = d4[j & 3];
				if (s->psize < keep || d < s->pd[s->psize - 1])
					admit(h, s, keep, level, width, s->edge[j], d);
			}
		}
		for (; j < n; j++) {
			if (j + 1 < n)
				prefetch_next(c, s->edge[j + 1]);
			uint32_t v = s->edge[j];
			float d = dist_q(c, v);
			if (s->psize < keep || d < s->pd[s->psize - 1])
				admit(h, s, keep, level, width, v, d);
		}
	}
	for (uint32_t i = 0; i < s->psize; i++)
		s->pids[i] &= ~CHECKED;
}

/* Greedy descent through the upper layers, from `top` down to `bottom`
 * (exclusive). Each list is read whole, its rows prefetched, then scored
 * four at a time: one by one, every upper-layer row was a miss taken in
 * turn, and the descent cost as much as a fifth of an int8 query. */
static uint32_t greedy(const vt_hnsw *h, const qctx *c, uint32_t ep,
		       float *ep_d, int top, int bottom)
{
	float d = *ep_d;
	uint32_t ids[VT_HNSW_MAX_M + 3];
	float ds[VT_HNSW_MAX_M + 3];
	for (int l = top; l > bottom; l--) {
		int changed = 1;
		while (changed) {
			changed = 0;
			const uint32_t *lst = vt__links(h, ep, l);
			uint32_t n = 0;
			for (uint32_t j = 0; j < h->m; j++) {
				uint32_t v = ld_acq(&lst[j]);
				if (v == VT__NONE)
					break;
				ids[n++] = v;
				prefetch_head(c, v);
			}
			if (n == 0)
				continue;
			/* pad to a multiple of four with the last id: a row
			 * already in cache costs less than a lone call */
			uint32_t n4 = (n + 3) & ~3u;
			for (uint32_t j = n; j < n4; j++)
				ids[j] = ids[n - 1];
			for (uint32_t j = 0; j < n4; j += 4) {
				if (j + 4 < n4)
					for (uint32_t t = j + 4; t < j + 8; t++)
						prefetch_next(c, ids[t]);
				dist_q4(c, ids + j, ds + j);
			}
			for (uint32_t j = 0; j < n; j++)
				if (ds[j] < d) {
					d = ds[j];
					ep = ids[j];
					changed = 1;
				}
		}
	}
	*ep_d = d;
	return ep;
}

/* ---- neighbour selection ------------------------------------------------ */

/* The paper's heuristic (Algorithm 4, without extension or pruned-keeping,
 * as hnswlib): walking candidates by increasing distance to the base, keep
 * one unless it is closer to an already kept neighbour than to the base.
 * ids/ds sorted ascending; writes up to `max` ids to out; returns count. */
static uint32_t select_neighbours(const qctx *c, const uint32_t *ids,
				  const float *ds, uint32_t n, uint32_t max,
				  uint32_t *out)
{
	if (n <= max) {
		memcpy(out, ids, n * sizeof *ids);
		return n;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < n && k < max; i++) {
		int good = 1;
		for (uint32_t j = 0; j < k; j++)
			if (dist_nn(c, ids[i], out[j]) < ds[i]) {
				good = 0;
				break;
			}
		if (good)
			out[k++] = ids[i];
	}
	return k;
}

/* Sorts ids by ds ascending (insertion sort: lists are at most a few
 * hundred long and mostly sorted). */
static void sort_by_dist(uint32_t *ids, float *ds, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint32_t id = ids[i];
		float d = ds[i];
		uint32_t j = i;
		while (j > 0 && ds[j - 1] > d) {
			ds[j] = ds[j - 1];
			ids[j] = ids[j - 1];
			j--;
		}
		ds[j] = d;
		ids[j] = id;
	}
}

static void write_list(uint32_t *lst, uint32_t cap, const uint32_t *ids,
		       uint32_t n)
{
	for (uint32_t i = 0; i < cap; i++)
		st_rel(&lst[i], i < n ? ids[i] : VT__NONE);
}

static inline pthread_mutex_t *stripe(vt_hnsw *h, uint32_t id)
{
	return &h->stripes[vt_mix64(id) & (VT__STRIPES - 1)];
}

/* Adds the link n -> id at `level`, shrinking n's list with the heuristic
 * when it is full. */
static void add_reverse(vt_hnsw *h, struct vt__searcher *s, const qctx *c,
			uint32_t n, uint32_t id, int level, float d_n_id)
{
	uint32_t cap = level == 0 ? h->m0 : h->m;
	pthread_mutex_lock(stripe(h, n));
	uint32_t *lst = vt__links(h, n, level);
	uint32_t cnt = 0;
	for (; cnt < cap; cnt++) {
		uint32_t v = lst[cnt];
		if (v == VT__NONE)
			break;
		if (v == id)
			goto out;
	}
	if (cnt < cap) {
		st_rel(&lst[cnt], id);
		goto out;
	}
	for (uint32_t i = 0; i < cap; i++) {
		s->tid[i] = lst[i];
		s->td[i] = dist_nn(c, n, lst[i]);
	}
	s->tid[cap] = id;
	s->td[cap] = d_n_id;
	sort_by_dist(s->tid, s->td, cap + 1);
	uint32_t k = select_neighbours(c, s->tid, s->td, cap + 1, cap, s->tid2);
	write_list(lst, cap, s->tid2, k);
out:
	pthread_mutex_unlock(stripe(h, n));
}

/* ---- label map ----------------------------------------------------------- */

static uint32_t map_find(const vt_hnsw *h, uint64_t label)
{
	if (!h->map_cap)
		return VT__NONE;
	uint32_t mask = h->map_cap - 1;
	for (uint32_t i = (uint32_t)vt_mix64(label) & mask;; i = (i + 1) & mask) {
		uint32_t e = h->map[i];
		if (e == VT__MAP_EMPTY)
			return VT__NONE;
		if (e != VT__MAP_GONE && h->labels[e - VT__MAP_BASE] == label)
			return e - VT__MAP_BASE;
	}
}

static int map_rehash(vt_hnsw *h, uint32_t ncap)
{
	uint32_t *nm = vt_calloc(ncap, sizeof *nm); /* all VT__MAP_EMPTY */
	if (!nm)
		return VT_ENOMEM;
	uint32_t mask = ncap - 1;
	for (uint32_t i = 0; i < h->map_cap; i++) {
		uint32_t e = h->map[i];
		if (e < VT__MAP_BASE)
			continue;
		uint32_t j = (uint32_t)vt_mix64(h->labels[e - VT__MAP_BASE]) & mask;
		while (nm[j] != VT__MAP_EMPTY)
			j = (j + 1) & mask;
		nm[j] = e;
	}
	vt_free(h->map);
	h->map = nm;
	h->map_cap = ncap;
	h->map_dead = 0;
	return 0;
}

/* Sizes the map for `n` labels before they arrive (a known capacity), so a
 * build never rehashes: each rehash leaves the old table behind as heap
 * the allocator may keep. */
static int map_reserve(vt_hnsw *h, uint32_t n)
{
	uint64_t ncap = 64;
	while ((uint64_t)n * 2 > ncap)
		ncap *= 2;
	if (ncap <= h->map_cap || ncap > 0x80000000ull)
		return 0;
	return map_rehash(h, (uint32_t)ncap);
}

/* Records label -> id; labels[id] must already hold `label`. Rehashing at
 * half occupancy (live + removed) keeps probes short and guarantees an
 * empty slot ends every probe; the new table is at most 3/8 full. */
int vt__hnsw_map_put(vt_hnsw *h, uint64_t label, uint32_t id)
{
	if (h->map_cap == 0 || (h->map_used + h->map_dead + 1) * 2 > h->map_cap) {
		uint64_t ncap = h->map_cap ? h->map_cap : 64;
		while ((uint64_t)(h->map_used + 1) * 8 > ncap * 3)
			ncap *= 2;
		if (ncap > 0x80000000ull)
			return VT_ENOMEM;
		int rc = map_rehash(h, (uint32_t)ncap);
		if (rc)
			return rc;
	}
	uint32_t mask = h->map_cap - 1;
	uint32_t i = (uint32_t)vt_mix64(label) & mask, dest = VT__NONE;
	for (;; i = (i + 1) & mask) {
		uint32_t e = h->map[i];
		if (e == VT__MAP_EMPTY)
			break;
		if (e == VT__MAP_GONE) {
			if (dest == VT__NONE)
				dest = i;
		} else if (h->labels[e - VT__MAP_BASE] == label) {
			h->map[i] = id + VT__MAP_BASE;
			return 0;
		}
	}
	if (dest == VT__NONE)
		dest = i;
	else
		h->map_dead--;
	h->map[dest] = id + VT__MAP_BASE;
	h->map_used++;
	return 0;
}

static void map_del(vt_hnsw *h, uint64_t label)
{
	uint32_t mask = h->map_cap - 1;
	for (uint32_t i = (uint32_t)vt_mix64(label) & mask;; i = (i + 1) & mask) {
		uint32_t e = h->map[i];
		if (e == VT__MAP_EMPTY)
			return;
		if (e != VT__MAP_GONE && h->labels[e - VT__MAP_BASE] == label) {
			h->map[i] = VT__MAP_GONE;
			h->map_used--;
			h->map_dead++;
			return;
		}
	}
}

/* ---- creation and storage ------------------------------------------------ */

VT_API void vt_hnsw_params_default(vt_hnsw_params *p, uint32_t dim, int metric)
{
	memset(p, 0, sizeof *p);
	p->dim = dim;
	p->metric = metric;
	p->m = 16;
	p->ef_construction = 200;
	p->ef_search = 64;
	p->seed = 42;
	p->quant = VT_QUANT_NONE;
	p->train_size = 4096;
	p->quantile = 1.0f;
	p->initial_capacity = 1024;
}

int vt__hnsw_validate_params(const vt_hnsw_params *p, vt_errmsg *err)
{
	if (p->dim < 1 || p->dim > VT_HNSW_MAX_DIM)
		return vt_errmsg_set(err, VT_EINVAL,
				     "dimension %u out of range 1..%u", p->dim,
				     VT_HNSW_MAX_DIM);
	if (p->metric < VT_METRIC_L2 || p->metric > VT_METRIC_COSINE)
		return vt_errmsg_set(err, VT_EINVAL, "unknown metric %d", p->metric);
	if (p->m < 2 || p->m > VT_HNSW_MAX_M)
		return vt_errmsg_set(err, VT_EINVAL, "m %u out of range 2..%u",
				     p->m, VT_HNSW_MAX_M);
	if (p->ef_construction < 1 || p->ef_construction > 100000)
		return vt_errmsg_set(err, VT_EINVAL,
				     "ef_construction %u out of range 1..100000",
				     p->ef_construction);
	if (p->ef_search < 1 || p->ef_search > 100000)
		return vt_errmsg_set(err, VT_EINVAL,
				     "ef_search %u out of range 1..100000",
				     p->ef_search);
	if (p->quant != VT_QUANT_NONE && p->quant != VT_QUANT_INT8)
		return vt_errmsg_set(err, VT_EINVAL, "unknown quantization %d",
				     p->quant);
	if (p->quant == VT_QUANT_INT8 &&
	    (!(p->quantile > 0.5f && p->quantile <= 1.0f) || p->train_size < 1))
		return vt_errmsg_set(err, VT_EINVAL,
				     "int8 needs quantile in (0.5, 1] and train_size >= 1");
	if (p->initial_capacity > VT__MAX_NODES)
		return vt_errmsg_set(err, VT_EINVAL, "initial_capacity too large");
	return 0;
}

static size_t round_up(size_t x, size_t to)
{
	return (x + to - 1) / to * to;
}

/* Resizes every per-node array to `ncap` slots. All-or-nothing: on failure
 * the index is unchanged. Caller holds `grow` exclusively (or owns h). */
static int resize(vt_hnsw *h, uint32_t ncap)
{
	uint32_t old = h->cap;
	uint32_t *l0 = NULL, **up = NULL, *cs = NULL;
	uint8_t *lv = NULL, *fl = NULL, *cd = NULL;
	uint64_t *lb = NULL;
	float *vv = NULL;
	size_t vbytes = (size_t)ncap * h->vstride * sizeof(float);

	l0 = vt_malloc_aligned(64, (size_t)ncap * h->m0 * sizeof *l0);
	up = vt_calloc(ncap, sizeof *up);
	lv = vt_calloc(ncap, 1);
	fl = vt_calloc(ncap, 1);
	lb = vt_calloc(ncap, sizeof *lb);
	if (!l0 || !up || !lv || !fl || !lb)
		goto err;
	if (h->p.quant == VT_QUANT_INT8) {
		cd = vt_malloc_aligned(64, (size_t)ncap * h->cstride);
		cs = vt_calloc(ncap, sizeof *cs);
		if (!cd || !cs)
			goto err;
	}
	if (h->vfd < 0) {
		vv = vt_malloc_aligned(64, vbytes);
		if (!vv)
			goto err;
	} else {
		if (ftruncate(h->vfd, (off_t)vbytes) != 0)
			goto err;
		void *m = h->vecs ? mremap(h->vecs, h->vmap_len, vbytes, MREMAP_MAYMOVE)
				  : mmap(NULL, vbytes, PROT_READ, MAP_SHARED, h->vfd, 0);
		if (m == MAP_FAILED)
			goto err;
		madvise(m, vbytes, MADV_RANDOM);
		h->vecs = m;
		h->vmap_len = vbytes;
	}

	memset(l0 + (size_t)old * h->m0, 0xff, (size_t)(ncap - old) * h->m0 * sizeof *l0);
	if (old) {
		memcpy(l0, h->links0, (size_t)old * h->m0 * sizeof *l0);
		memcpy(up, h->upper, (size_t)old * sizeof *up);
		memcpy(lv, h->levels, old);
		memcpy(fl, h->flags, old);
		memcpy(lb, h->labels, (size_t)old * sizeof *lb);
		if (cd) {
			memcpy(cd, h->codes, (size_t)old * h->cstride);
			memcpy(cs, h->csum, (size_t)old * sizeof *cs);
		}
		if (vv)
			memcpy(vv, h->vecs, (size_t)old * h->vstride * sizeof(float));
	}
	vt_free_aligned(h->links0);
	vt_free(h->upper);
	vt_free(h->levels);
	vt_free(h->flags);
	vt_free(h->labels);
	vt_free_aligned(h->codes);
	vt_free(h->csum);
	if (vv) {
		vt_free_aligned(h->vecs);
		h->vecs = vv;
	}
	h->links0 = l0;
	h->upper = up;
	h->levels = lv;
	h->flags = fl;
	h->labels = lb;
	h->codes = cd;
	h->csum = cs;
	h->cap = ncap;
	return 0;
err:
	vt_free_aligned(l0);
	vt_free(up);
	vt_free(lv);
	vt_free(fl);
	vt_free(lb);
	vt_free_aligned(cd);
	vt_free(cs);
	vt_free_aligned(vv);
	return VT_ENOMEM;
}

int vt__hnsw_alloc(const vt_hnsw_params *p, uint32_t cap, vt_hnsw **out,
		   vt_errmsg *err)
{
	int rc = vt__hnsw_validate_params(p, err);
	if (rc)
		return rc;
	vt_hnsw *h = vt_calloc(1, sizeof *h);
	if (!h)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	h->p = *p;
	h->p.vectors_path = NULL;
	h->m = p->m;
	h->m0 = 2 * p->m;
	h->level_mult = 1.0 / log((double)p->m);
	h->ops = vt_simd();
	h->vstride = round_up(p->dim, 16);
	h->cstride = p->quant == VT_QUANT_INT8 ? round_up(p->dim, 64) : 0;
	h->vfd = -1;
	store_ep(h, VT__NONE, -1);
	pthread_rwlock_init(&h->grow, NULL);
	pthread_rwlock_init(&h->gate, NULL);
	pthread_mutex_init(&h->map_lock, NULL);
	pthread_mutex_init(&h->entry_lock, NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	for (int i = 0; i < VT__STRIPES; i++)
		pthread_mutex_init(&h->stripes[i], NULL);
	if (p->vectors_path) {
		h->vpath = vt_strdup(p->vectors_path);
		if (!h->vpath) {
			rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
			goto err;
		}
		h->p.vectors_path = h->vpath;
		h->vfd = open(h->vpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (h->vfd < 0) {
			rc = vt_errmsg_set(err, vt_err_from_errno(errno),
					   "open vectors file %s: %s", h->vpath,
					   strerror(errno));
			goto err;
		}
	}
	if (cap < 64)
		cap = 64;
	if (resize(h, cap) || map_reserve(h, cap)) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "allocating %u slots", cap);
		goto err;
	}
	*out = h;
	return 0;
err:
	vt_hnsw_destroy(h);
	return rc;
}

VT_API int vt_hnsw_create(const vt_hnsw_params *p, vt_hnsw **out, vt_errmsg *err)
{
	size_t cap = p->initial_capacity ? p->initial_capacity : 1024;
	if (cap > VT__MAX_NODES)
		cap = VT__MAX_NODES;
	return vt__hnsw_alloc(p, (uint32_t)cap, out, err);
}

VT_API void vt_hnsw_destroy(vt_hnsw *h)
{
	if (!h)
		return;
	if (h->upper)
		for (uint32_t i = 0; i < h->cap; i++)
			vt_free(h->upper[i]);
	vt_free(h->upper);
	vt_free_aligned(h->links0);
	vt_free(h->levels);
	vt_free(h->flags);
	vt_free(h->labels);
	vt_free_aligned(h->codes);
	vt_free(h->csum);
	if (h->vfd >= 0) {
		if (h->vecs)
			munmap(h->vecs, h->vmap_len);
		close(h->vfd);
	} else {
		vt_free_aligned(h->vecs);
	}
	vt_free(h->vpath);
	vt_free(h->map);
	vt_free(h->free_ids);
	while (h->pool) {
		struct vt__searcher *s = h->pool;
		h->pool = s->next;
		searcher_free(s);
	}
	pthread_rwlock_destroy(&h->grow);
	pthread_rwlock_destroy(&h->gate);
	pthread_mutex_destroy(&h->map_lock);
	pthread_mutex_destroy(&h->entry_lock);
	pthread_mutex_destroy(&h->pool_lock);
	for (int i = 0; i < VT__STRIPES; i++)
		pthread_mutex_destroy(&h->stripes[i]);
	vt_free(h);
}

/* Stores a node's float row (padded with zeros). */
int vt__hnsw_write_vec(vt_hnsw *h, uint32_t id, const float *v)
{
	if (h->vfd < 0) {
		float *row = h->vecs + (size_t)id * h->vstride;
		memcpy(row, v, h->p.dim * sizeof(float));
		memset(row + h->p.dim, 0, (h->vstride - h->p.dim) * sizeof(float));
		return 0;
	}
	/* pwrite, not a store through the mapping: the page becomes resident
	 * in this process only when a search reads it. */
	size_t bytes = h->vstride * sizeof(float);
	float pad[16] = {0};
	off_t off = (off_t)id * (off_t)bytes;
	size_t main = h->p.dim * sizeof(float);
	ssize_t w = pwrite(h->vfd, v, main, off);
	if (w == (ssize_t)main && bytes > main)
		w = pwrite(h->vfd, pad, bytes - main, off + (off_t)main) ==
			    (ssize_t)(bytes - main) ? w : -1;
	if (w != (ssize_t)main)
		return w < 0 ? vt_err_from_errno(errno) : VT_EIO;
	return 0;
}

static int encode_node(vt_hnsw *h, uint32_t id)
{
	int exact;
	h->csum[id] = vt__quant_encode(vt__vec(h, id), h->p.dim, h->cstride,
				       h->q_lo, h->q_scale,
				       h->codes + (size_t)id * h->cstride, &exact);
	return exact;
}

/* Caller holds `grow` exclusively (or owns h). */
int vt__hnsw_encode_all(vt_hnsw *h)
{
	int exact = 1;
	for (uint32_t i = 0; i < h->n_slots; i++)
		if (!(h->flags[i] & VT__F_FREE))
			exact &= encode_node(h, i);
	__atomic_store_n(&h->codes_inexact, !exact, __ATOMIC_RELEASE);
	return 0;
}

static int is_trained(const vt_hnsw *h)
{
	return __atomic_load_n(&h->trained, __ATOMIC_ACQUIRE);
}

static int mode_of(const vt_hnsw *h)
{
	return h->p.quant == VT_QUANT_INT8 && is_trained(h) ? VT__MODE_U8
							    : VT__MODE_F32;
}

/* Copies `in` into the searcher's query row, normalising under cosine.
 * Rejects NaN/Inf and zero vectors under cosine. */
static int prepare_query(const vt_hnsw *h, const float *in, float *qf)
{
	/* Four sums for the adder's latency, and no test per value: a NaN or
	 * infinite component makes the norm NaN or infinite (finite floats
	 * squared cannot overflow a double, even 65535 of them). */
	double n4[4] = {0, 0, 0, 0};
	uint32_t i = 0;
	for (; i + 4 <= h->p.dim; i += 4)
		for (int t = 0; t < 4; t++)
			n4[t] += (double)in[i + t] * in[i + t];
	for (; i < h->p.dim; i++)
		n4[0] += (double)in[i] * in[i];
	double norm = (n4[0] + n4[1]) + (n4[2] + n4[3]);
	if (!isfinite(norm))
		return VT_EINVAL;
	if (h->p.metric == VT_METRIC_COSINE) {
		if (!(norm > 0))
			return VT_EINVAL;
		float inv = (float)(1.0 / sqrt(norm));
		for (i = 0; i < h->p.dim; i++)
			qf[i] = in[i] * inv;
	} else {
		memcpy(qf, in, h->p.dim * sizeof(float));
	}
	memset(qf + h->p.dim, 0, (h->vstride - h->p.dim) * sizeof(float));
	return 0;
}

/* Sets up the query context; under int8, *exact (may be NULL) tells
 * whether the query's codes decode back to its floats. */
static void query_ctx(const vt_hnsw *h, struct vt__searcher *s, qctx *c,
		      int *exact)
{
	int mode = mode_of(h), ex = 0;
	uint32_t qsum = 0;
	if (mode == VT__MODE_U8)
		qsum = vt__quant_encode(s->qf, h->p.dim, h->cstride, h->q_lo,
					h->q_scale, s->qc, &ex);
	if (exact)
		*exact = ex;
	qctx_init(c, h, mode, s->qf, s->qc, qsum);
}

/* ---- insert ------------------------------------------------------------- */

static int draw_level(vt_hnsw *h)
{
	uint64_t n = __atomic_fetch_add(&h->level_ctr, 1, __ATOMIC_RELAXED);
	double u = (double)(vt_mix64(h->p.seed ^ vt_mix64(n)) >> 11) *
		   (1.0 / 9007199254740992.0);
	int l = (int)(-log(1.0 - u) * h->level_mult);
	return l > VT__MAX_LEVEL ? VT__MAX_LEVEL : l;
}

/* Connects the node `id` (whose row is stored) into the graph, in two
 * passes: first its own lists on every layer, then the reverse links that
 * make it reachable. Other inserts can reach a node only through a reverse
 * link to it, so they never see it half-linked. When they could (reverse
 * links written layer by layer), an insert that descended onto it found an
 * empty list one layer down, chose it as its only neighbour, and the
 * reverse link it added there was overwritten when this node wrote its own
 * list: concurrent builds left nodes no search could reach (tested in
 * test_hnsw_threads). hnswlib avoids the same race by holding the new
 * node's lock for the whole insert. */
static void link_node(vt_hnsw *h, struct vt__searcher *s, const qctx *c,
		      uint32_t id, int level)
{
	uint32_t ep;
	int top, hold = 0;
	load_ep(h, &ep, &top);
	if (ep == VT__NONE || level > top) {
		pthread_mutex_lock(&h->entry_lock);
		load_ep(h, &ep, &top);
		if (ep == VT__NONE) {
			store_ep(h, id, level);
			pthread_mutex_unlock(&h->entry_lock);
			return;
		}
		if (level > top)
			hold = 1; /* keep the lock until we become the entry */
		else
			pthread_mutex_unlock(&h->entry_lock);
	}
	float d = dist_q(c, ep);
	ep = greedy(h, c, ep, &d, top, level);
	int low = level < top ? level : top;
	/* Per layer: the neighbours chosen and their distances. */
	uint32_t sel[VT__MAX_LEVEL + 1][VT_HNSW_MAX_M];
	float seld[VT__MAX_LEVEL + 1][VT_HNSW_MAX_M];
	uint32_t nsel[VT__MAX_LEVEL + 1];
	for (int l = low; l >= 0; l--) {
		nsel[l] = 0;
		search_layer(h, s, c, ep, d, l, h->p.ef_construction,
			     h->p.ef_construction, 1);
		uint32_t n = 0;
		for (uint32_t i = 0; i < s->psize; i++)
			if (s->pids[i] != id) {
				s->tid[n] = s->pids[i];
				s->td[n++] = s->pd[i];
			}
		if (n == 0)
			continue;
		ep = s->tid[0];
		d = s->td[0];
		uint32_t k = select_neighbours(c, s->tid, s->td, n, h->m, s->tid2);
		for (uint32_t i = 0, j = 0; i < k; i++) {
			while (s->tid[j] != s->tid2[i])
				j++;
			sel[l][i] = s->tid2[i];
			seld[l][i] = s->td[j];
		}
		nsel[l] = k;
		uint32_t cap = l == 0 ? h->m0 : h->m;
		pthread_mutex_lock(stripe(h, id));
		write_list(vt__links(h, id, l), cap, sel[l], k);
		pthread_mutex_unlock(stripe(h, id));
	}
	for (int l = low; l >= 0; l--)
		for (uint32_t i = 0; i < nsel[l]; i++)
			add_reverse(h, s, c, sel[l][i], id, l, seld[l][i]);
	if (hold) {
		store_ep(h, id, level);
		pthread_mutex_unlock(&h->entry_lock);
	}
}

static int train_locked(vt_hnsw *h, const float *rows, size_t n, size_t stride);

/* Reserves a slot (a consolidated one when there is one), growing the
 * arrays when full. The slot is PENDING: no search reads it until its row
 * is written. On success the caller holds `grow` and `gate` shared. */
static int reserve_slot(vt_hnsw *h, uint32_t *id_out)
{
	for (;;) {
		pthread_rwlock_rdlock(&h->grow);
		pthread_rwlock_rdlock(&h->gate);
		pthread_mutex_lock(&h->map_lock);
		uint32_t id = VT__NONE;
		if (h->n_free)
			id = h->free_ids[--h->n_free];
		else if (h->n_slots < h->cap)
			id = h->n_slots;
		if (id != VT__NONE) {
			__atomic_store_n(&h->flags[id], VT__F_PENDING, __ATOMIC_RELAXED);
			if (id == h->n_slots)
				__atomic_store_n(&h->n_slots, id + 1, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&h->map_lock);
			*id_out = id;
			return 0;
		}
		uint32_t cap = h->cap;
		pthread_mutex_unlock(&h->map_lock);
		pthread_rwlock_unlock(&h->gate);
		pthread_rwlock_unlock(&h->grow);
		if (cap >= VT__MAX_NODES)
			return VT_ELIMIT;
		pthread_rwlock_wrlock(&h->grow);
		int rc = 0;
		if (h->cap == cap) {
			uint64_t ncap = (uint64_t)cap * 2;
			if (ncap > VT__MAX_NODES)
				ncap = VT__MAX_NODES;
			rc = resize(h, (uint32_t)ncap);
		}
		pthread_rwlock_unlock(&h->grow);
		if (rc)
			return rc;
	}
}

/* Gives a reserved slot back (its row was never published). */
static void release_slot(vt_hnsw *h, uint32_t id)
{
	pthread_mutex_lock(&h->map_lock);
	__atomic_store_n(&h->flags[id], VT__F_FREE, __ATOMIC_RELAXED);
	uint32_t fc = h->free_cap;
	if (!grow_array((void **)&h->free_ids, &fc, h->n_free + 1,
			sizeof *h->free_ids)) {
		h->free_cap = fc;
		h->free_ids[h->n_free++] = id;
	} /* else the slot stays FREE and unused: harmless */
	pthread_mutex_unlock(&h->map_lock);
}

VT_API int vt_hnsw_insert(vt_hnsw *h, uint64_t label, const float *vec)
{
	struct vt__searcher *s = searcher_get(h);
	if (!s)
		return VT_ENOMEM;
	int rc = prepare_query(h, vec, s->qf);
	if (rc)
		goto out;
	int level = draw_level(h);
	uint32_t *up = NULL;
	if (level > 0) {
		up = vt_malloc((size_t)level * h->m * sizeof *up);
		if (!up) {
			rc = VT_ENOMEM;
			goto out;
		}
		memset(up, 0xff, (size_t)level * h->m * sizeof *up);
	}
	uint32_t id;
	rc = reserve_slot(h, &id);
	if (rc) {
		vt_free(up);
		goto out;
	}
	rc = searcher_fit(h, s, h->p.ef_construction);
	if (!rc)
		rc = vt__hnsw_write_vec(h, id, s->qf);
	if (rc) {
		vt_free(up);
		release_slot(h, id);
		goto unlock;
	}
	qctx c;
	int exact;
	query_ctx(h, s, &c, &exact);
	if (c.mode == VT__MODE_U8) {
		memcpy(h->codes + (size_t)id * h->cstride, s->qc, h->cstride);
		h->csum[id] = c.qsum;
		/* before the node is linked: a search that reaches it sees
		 * the flag (release here, acquire in vt_hnsw_search) */
		if (!exact)
			__atomic_store_n(&h->codes_inexact, 1, __ATOMIC_RELEASE);
	}
	h->labels[id] = label;
	h->levels[id] = (uint8_t)level;
	vt_free(h->upper[id]);
	h->upper[id] = up;
	memset(h->links0 + (size_t)id * h->m0, 0xff, h->m0 * sizeof(uint32_t));

	pthread_mutex_lock(&h->map_lock);
	uint32_t old = map_find(h, label);
	rc = vt__hnsw_map_put(h, label, id);
	if (rc) {
		pthread_mutex_unlock(&h->map_lock);
		h->upper[id] = NULL;
		vt_free(up);
		release_slot(h, id);
		goto unlock;
	}
	if (old != VT__NONE) {
		/* An update: the old node becomes a tombstone. */
		__atomic_fetch_or(&h->flags[old], VT__F_DELETED, __ATOMIC_RELAXED);
		__atomic_fetch_add(&h->n_tomb, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&h->n_live, 1, __ATOMIC_RELAXED);
	}
	/* Clear only PENDING: a delete may already have tombstoned us. */
	__atomic_fetch_and(&h->flags[id], (uint8_t)~VT__F_PENDING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&h->map_lock);
	if (up)
		__atomic_fetch_add(&h->upper_bytes, (uint64_t)level * h->m * 4,
				   __ATOMIC_RELAXED);
	link_node(h, s, &c, id, level);
unlock:
	pthread_rwlock_unlock(&h->gate);
	pthread_rwlock_unlock(&h->grow);
	if (!rc && h->p.quant == VT_QUANT_INT8 && !is_trained(h) &&
	    __atomic_load_n(&h->n_live, __ATOMIC_RELAXED) >= h->p.train_size) {
		pthread_rwlock_wrlock(&h->grow);
		if (!is_trained(h))
			rc = train_locked(h, h->vecs, h->n_slots, h->vstride);
		pthread_rwlock_unlock(&h->grow);
	}
out:
	searcher_put(h, s);
	return rc;
}

/* ---- delete, lookup ------------------------------------------------------ */

VT_API int vt_hnsw_delete(vt_hnsw *h, uint64_t label)
{
	pthread_rwlock_rdlock(&h->grow);
	pthread_rwlock_rdlock(&h->gate);
	pthread_mutex_lock(&h->map_lock);
	uint32_t id = map_find(h, label);
	if (id != VT__NONE) {
		map_del(h, label);
		__atomic_fetch_or(&h->flags[id], VT__F_DELETED, __ATOMIC_RELAXED);
		__atomic_fetch_add(&h->n_tomb, 1, __ATOMIC_RELAXED);
		__atomic_fetch_sub(&h->n_live, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&h->map_lock);
	pthread_rwlock_unlock(&h->gate);
	pthread_rwlock_unlock(&h->grow);
	return id == VT__NONE ? VT_ENOENT : 0;
}

VT_API int vt_hnsw_contains(vt_hnsw *h, uint64_t label)
{
	/* shared `grow`: probes read labels[], which growth moves */
	pthread_rwlock_rdlock(&h->grow);
	pthread_mutex_lock(&h->map_lock);
	uint32_t id = map_find(h, label);
	pthread_mutex_unlock(&h->map_lock);
	pthread_rwlock_unlock(&h->grow);
	return id != VT__NONE;
}

VT_API int vt_hnsw_get(vt_hnsw *h, uint64_t label, float *out)
{
	pthread_rwlock_rdlock(&h->grow);
	pthread_mutex_lock(&h->map_lock);
	uint32_t id = map_find(h, label);
	pthread_mutex_unlock(&h->map_lock);
	if (id != VT__NONE)
		memcpy(out, vt__vec(h, id), h->p.dim * sizeof(float));
	pthread_rwlock_unlock(&h->grow);
	return id == VT__NONE ? VT_ENOENT : 0;
}

/* ---- search --------------------------------------------------------------- */

VT_API void vt_hnsw_query_default(vt_hnsw_query *q, uint32_t k)
{
	memset(q, 0, sizeof *q);
	q->k = k;
	q->rescore = 1;
	q->oversampling = 2.0f;
}

static inline int allowed(const vt_hnsw *h, const vt_hnsw_query *q, uint32_t id)
{
	if (flags_of(h, id) & (VT__F_DELETED | VT__F_FREE | VT__F_PENDING))
		return 0;
	return !q->filter || q->filter(h->labels[id], q->filter_ctx);
}

/* Binary heaps on (id, dist) arrays: min-heap for candidates, max-heap
 * for results. */
static void heap_push(uint32_t *ids, float *ds, uint32_t *n, uint32_t id,
		      float d, int max)
{
	uint32_t i = (*n)++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (max ? ds[p] >= d : ds[p] <= d)
			break;
		ids[i] = ids[p];
		ds[i] = ds[p];
		i = p;
	}
	ids[i] = id;
	ds[i] = d;
}

static void heap_pop(uint32_t *ids, float *ds, uint32_t *n, int max)
{
	uint32_t last = --(*n), i = 0;
	uint32_t id = ids[last];
	float d = ds[last];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= last)
			break;
		if (c + 1 < last && (max ? ds[c + 1] > ds[c] : ds[c + 1] < ds[c]))
			c++;
		if (max ? ds[c] <= d : ds[c] >= d)
			break;
		ids[i] = ids[c];
		ds[i] = ds[c];
		i = c;
	}
	ids[i] = id;
	ds[i] = d;
}

/* Filtered beam search on layer 0 (as hnswlib with a filter): every node is
 * traversed, only allowed ones enter the results, and the search goes on
 * while a candidate can still beat the worst of `ef` results, so a
 * selective filter explores further instead of returning too few. Leaves
 * the results sorted ascending in the pool arrays. */
static int search_filtered(const vt_hnsw *h, struct vt__searcher *s,
			   const qctx *c, const vt_hnsw_query *q, uint32_t ep,
			   float ep_d, uint32_t ef)
{
	uint32_t nc = 0, nr = 0;
	if (grow_pair(&s->rid, &s->rd, &s->rcap, ef + 1) ||
	    grow_pair(&s->cid, &s->cd, &s->ccap, 64))
		return VT_ENOMEM;
	visited_clear(s);
	visit(s, ep);
	heap_push(s->cid, s->cd, &nc, ep, ep_d, 0);
	if (allowed(h, q, ep))
		heap_push(s->rid, s->rd, &nr, ep, ep_d, 1);
	while (nc) {
		uint32_t u = s->cid[0];
		float du = s->cd[0];
		if (nr == ef && du > s->rd[0])
			break;
		heap_pop(s->cid, s->cd, &nc, 0);
		const uint32_t *lst = vt__links(h, u, 0);
		for (uint32_t j = 0; j < h->m0; j++) {
			uint32_t v = ld_acq(&lst[j]);
			if (v == VT__NONE)
				break;
			if (!visit(s, v))
				continue;
			float d = dist_q(c, v);
			if (nr < ef || d < s->rd[0]) {
				if (grow_pair(&s->cid, &s->cd, &s->ccap, nc + 1))
					return VT_ENOMEM;
				heap_push(s->cid, s->cd, &nc, v, d, 0);
				if (allowed(h, q, v)) {
					heap_push(s->rid, s->rd, &nr, v, d, 1);
					if (nr > ef)
						heap_pop(s->rid, s->rd, &nr, 1);
				}
			}
		}
	}
	/* Drain the max-heap into ascending order. */
	s->psize = nr;
	while (nr) {
		s->pids[nr - 1] = s->rid[0];
		s->pd[nr - 1] = s->rd[0];
		heap_pop(s->rid, s->rd, &nr, 1);
	}
	return 0;
}

/* Brute force over every live node on float32 vectors. */
static int search_exact(const vt_hnsw *h, struct vt__searcher *s,
			const vt_hnsw_query *q, vt_hnsw_hit *out, size_t *n_out)
{
	uint32_t k = q->k, n = 0;
	if (grow_pair(&s->rid, &s->rd, &s->rcap, k + 1))
		return VT_ENOMEM;
	uint32_t slots = __atomic_load_n(&h->n_slots, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < slots; i++) {
		if (!allowed(h, q, i))
			continue;
		float d = f32_dist(h, s->qf, vt__vec(h, i));
		if (n < k) {
			heap_push(s->rid, s->rd, &n, i, d, 1);
		} else if (d < s->rd[0]) {
			heap_pop(s->rid, s->rd, &n, 1);
			heap_push(s->rid, s->rd, &n, i, d, 1);
		}
	}
	*n_out = n;
	while (n) {
		out[n - 1].label = h->labels[s->rid[0]];
		out[n - 1].dist = s->rd[0];
		heap_pop(s->rid, s->rd, &n, 1);
	}
	return 0;
}

/* Float distances of the n re-scoring candidates, four at a time. Their
 * rows are cold (the traversal read only codes), so the next four rows are
 * fetched whole while the current four are scored: one line of lookahead
 * per row, as before, left almost every line a full memory round trip
 * (re-scoring 20 rows cost ~10% of a query at 128 dimensions). */
static void rescore_f32(const vt_hnsw *h, const float *q, uint32_t *ids,
			float *ds, uint32_t n)
{
	size_t lines = ((size_t)h->p.dim * 4 + 63) / 64;
	for (uint32_t i = 0; i < n && i < 4; i++)
		prefetch_lines(vt__vec(h, ids[i]), lines);
	uint32_t i = 0;
	qctx c;
	qctx_init(&c, h, VT__MODE_F32, q, NULL, 0);
	for (; i + 4 <= n; i += 4) {
		for (uint32_t t = i + 4; t < i + 8 && t < n; t++)
			prefetch_lines(vt__vec(h, ids[t]), lines);
		dist_q4(&c, ids + i, ds + i);
	}
	for (; i < n; i++)
		ds[i] = f32_dist(h, q, vt__vec(h, ids[i]));
}

VT_API int vt_hnsw_search(vt_hnsw *h, const float *query,
			  const vt_hnsw_query *q, vt_hnsw_hit *out, size_t *n_out)
{
	*n_out = 0;
	if (q->k < 1 || q->k > VT_HNSW_MAX_K)
		return VT_EINVAL;
	if (q->oversampling != 0 && !(q->oversampling >= 1.0f && q->oversampling <= 1000.0f))
		return VT_EINVAL;
	struct vt__searcher *s = searcher_get(h);
	if (!s)
		return VT_ENOMEM;
	int rc = prepare_query(h, query, s->qf);
	if (rc)
		goto out;
	pthread_rwlock_rdlock(&h->grow);
	uint32_t k = q->k;
	uint32_t ef = q->ef ? q->ef : h->p.ef_search;
	if (ef < k)
		ef = k;
	qctx c;
	int qexact;
	query_ctx(h, s, &c, &qexact);
	int rescore = c.mode == VT__MODE_U8 && q->rescore;
	/* Lossless codes (integer data spanning at most 256 values, such as
	 * pixels, gets a unit step, quant.c) under L2: the code distance is
	 * the float distance, so re-scoring would only re-derive it from 4x
	 * the bytes. Skipped when the query and every stored row decode back
	 * exactly; checked again after the walk, since a row inserted
	 * meanwhile may be lossy. */
	int lossless = rescore && h->p.metric == VT_METRIC_L2 && qexact &&
		       !__atomic_load_n(&h->codes_inexact, __ATOMIC_ACQUIRE);
	uint32_t r = k;
	if (rescore && !lossless) {
		float os = q->oversampling ? q->oversampling : 2.0f;
		double want = ceil((double)k * os);
		r = want > VT_HNSW_MAX_K ? VT_HNSW_MAX_K : (uint32_t)want;
	}
	/* The r re-scoring candidates come from a pool of keep = max(ef, r)
	 * entries, but the beam stays ef wide: entries past ef are nodes
	 * the beam scored and let go. Widening the beam to r instead (as
	 * this code once did) made every ef below r cost as much as ef = r,
	 * so ef could no longer trade recall for speed under int8: with
	 * k = 10 and the default oversampling of 2, ef 10..20 all ran a
	 * 20-wide beam (Fashion-MNIST, lossless codes: recall 0.98 at about
	 * 20k QPS and nothing cheaper; a 12-wide beam re-scoring the same
	 * 20 gives 0.95 at about 27k). ef is the recall knob and oversampling only says how
	 * many code-distance candidates get the float distance; the default
	 * stays 2 because lossy codes (cosine, unnormalised floats) need the
	 * spare candidates, and with exact codes the extra re-scoring costs
	 * r float rows, a few microseconds. */
	uint32_t keep = ef > r ? ef : r;
	rc = searcher_fit(h, s, keep);
	if (rc)
		goto unlock;
	if (q->exact) {
		rc = search_exact(h, s, q, out, n_out);
		goto unlock;
	}
	uint32_t ep;
	int top;
	load_ep(h, &ep, &top);
	if (ep == VT__NONE)
		goto unlock;
	float d = dist_q(&c, ep);
	ep = greedy(h, &c, ep, &d, top, 0);
	uint32_t n = 0;
	uint32_t *ids = s->tid;
	float *ds = s->td;
	if (!q->filter) {
		search_layer(h, s, &c, ep, d, 0, ef, keep, VT__QUERY_WIDTH);
		/* Without tombstones every node the walk reached is live (a
		 * reachable node is never PENDING or FREE), so the candidates'
		 * flags, one random load each, need not be read. A delete
		 * racing this check is concurrent with the query either way. */
		int all_live = __atomic_load_n(&h->n_tomb, __ATOMIC_ACQUIRE) == 0;
		for (uint32_t i = 0; i < s->psize && n < r; i++)
			if (all_live || allowed(h, q, s->pids[i])) {
				ids[n] = s->pids[i];
				ds[n++] = s->pd[i];
			}
	}
	/* Tombstones crowding the beam fall back to the filtered search,
	 * which keeps going until it has enough live results. */
	uint64_t live = __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
	if (q->filter || (n < r && n < live)) {
		rc = search_filtered(h, s, &c, q, ep, d, keep);
		if (rc)
			goto unlock;
		n = 0;
		for (uint32_t i = 0; i < s->psize && n < r; i++) {
			ids[n] = s->pids[i];
			ds[n++] = s->pd[i];
		}
	}
	if (lossless && __atomic_load_n(&h->codes_inexact, __ATOMIC_ACQUIRE))
		lossless = 0;
	if (rescore && !lossless) {
		rescore_f32(h, s->qf, ids, ds, n);
		sort_by_dist(ids, ds, n);
	}
	if (n > k)
		n = k;
	for (uint32_t i = 0; i < n; i++) {
		out[i].label = h->labels[ids[i]];
		out[i].dist = ds[i];
	}
	*n_out = n;
unlock:
	pthread_rwlock_unlock(&h->grow);
out:
	searcher_put(h, s);
	return rc;
}

/* ---- training -------------------------------------------------------------- */

static int train_locked(vt_hnsw *h, const float *rows, size_t n, size_t stride)
{
	float lo, scale;
	int rc = vt__quant_train(rows, n, stride, h->p.dim, h->p.quantile, &lo, &scale);
	if (rc)
		return rc;
	h->q_lo = lo;
	h->q_scale = scale;
	vt__hnsw_encode_all(h);
	__atomic_store_n(&h->trained, 1, __ATOMIC_RELEASE);
	VT_LOG(VT_LOG_INFO, "hnsw", "int8 quantizer trained on %zu vectors: range [%g, %g]",
	       n, (double)lo, (double)(lo + 255.0f * scale));
	return 0;
}

VT_API int vt_hnsw_train(vt_hnsw *h, const float *vecs, size_t n)
{
	if (h->p.quant != VT_QUANT_INT8)
		return VT_ENOTSUP;
	if (n == 0)
		return VT_EINVAL;
	for (size_t i = 0; i < n * h->p.dim; i++)
		if (!isfinite(vecs[i]))
			return VT_EINVAL;
	float *tmp = NULL;
	if (h->p.metric == VT_METRIC_COSINE) {
		/* The codes describe the normalised rows, so the range must
		 * too. */
		tmp = vt_malloc(n * h->p.dim * sizeof(float));
		if (!tmp)
			return VT_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			const float *v = vecs + i * h->p.dim;
			double norm = 0;
			for (uint32_t j = 0; j < h->p.dim; j++)
				norm += (double)v[j] * v[j];
			float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
			for (uint32_t j = 0; j < h->p.dim; j++)
				tmp[i * h->p.dim + j] = v[j] * inv;
		}
		vecs = tmp;
	}
	pthread_rwlock_wrlock(&h->grow);
	int rc = train_locked(h, vecs, n, h->p.dim);
	pthread_rwlock_unlock(&h->grow);
	vt_free(tmp);
	return rc;
}

/* ---- consolidation ---------------------------------------------------------- */

static int is_gone(const vt_hnsw *h, uint32_t id)
{
	return (h->flags[id] & (VT__F_DELETED | VT__F_FREE | VT__F_PENDING)) != 0;
}

/* Re-picks u's neighbours at `level` from its live neighbours and the live
 * neighbours of its deleted ones (FreshDiskANN-style one-hop repair). */
static void repair_node(vt_hnsw *h, struct vt__searcher *s, const qctx *c,
			uint32_t u, int level)
{
	uint32_t cap = level == 0 ? h->m0 : h->m;
	uint32_t *lst = vt__links(h, u, level);
	uint32_t n = 0;
	int dirty = 0;
	for (uint32_t j = 0; j < cap && lst[j] != VT__NONE; j++) {
		uint32_t v = lst[j];
		if (!is_gone(h, v)) {
			if (visit(s, v))
				s->tid[n++] = v;
			continue;
		}
		dirty = 1;
		if (h->levels[v] < level || (h->flags[v] & VT__F_FREE))
			continue;
		const uint32_t *tl = vt__links(h, v, level);
		for (uint32_t t = 0; t < cap && tl[t] != VT__NONE; t++) {
			uint32_t w = tl[t];
			if (w != u && !is_gone(h, w) && visit(s, w))
				s->tid[n++] = w;
		}
	}
	visited_clear(s);
	if (!dirty)
		return;
	for (uint32_t i = 0; i < n; i++)
		s->td[i] = dist_nn(c, u, s->tid[i]);
	sort_by_dist(s->tid, s->td, n);
	uint32_t k = select_neighbours(c, s->tid, s->td, n, cap, s->tid2);
	write_list(lst, cap, s->tid2, k);
}

/* After repair, a live node whose only in-links came from deleted nodes
 * has none left and no search can reach it (one-hop repair re-picks each
 * node's out-links, not anyone's in-links). Gives every such node at
 * `level` a link from its nearest out-neighbour: appended when that list
 * has room, else in place of the farthest entry whose target keeps
 * another in-link. `indeg` has room for n_slots counters. */
static void ensure_in_links(vt_hnsw *h, const qctx *c, int level,
			    uint32_t *indeg, uint32_t ep)
{
	uint32_t cap = level == 0 ? h->m0 : h->m;
	memset(indeg, 0, h->n_slots * sizeof *indeg);
	for (uint32_t u = 0; u < h->n_slots; u++) {
		if (is_gone(h, u) || h->levels[u] < level)
			continue;
		const uint32_t *lst = vt__links(h, u, level);
		for (uint32_t j = 0; j < cap && lst[j] != VT__NONE; j++)
			indeg[lst[j]]++;
	}
	for (uint32_t u = 0; u < h->n_slots; u++) {
		if (is_gone(h, u) || h->levels[u] < level || indeg[u] || u == ep)
			continue;
		const uint32_t *out = vt__links(h, u, level);
		uint32_t v = VT__NONE;
		float best = INFINITY;
		for (uint32_t j = 0; j < cap && out[j] != VT__NONE; j++) {
			float d = dist_nn(c, u, out[j]);
			if (d < best) {
				best = d;
				v = out[j];
			}
		}
		if (v == VT__NONE)
			continue; /* isolated: nothing to hang it on */
		uint32_t *lst = vt__links(h, v, level);
		uint32_t j = 0, worst = VT__NONE;
		float wd = -1;
		for (; j < cap && lst[j] != VT__NONE; j++) {
			float d = dist_nn(c, v, lst[j]);
			if (indeg[lst[j]] >= 2 && d > wd) {
				wd = d;
				worst = j;
			}
		}
		if (j < cap) {
			lst[j] = u;
		} else if (worst != VT__NONE) {
			indeg[lst[worst]]--;
			lst[worst] = u;
		} else {
			continue;
		}
		indeg[u]++;
	}
}

VT_API int vt_hnsw_consolidate(vt_hnsw *h)
{
	struct vt__searcher *s = searcher_get(h);
	if (!s)
		return VT_ENOMEM;
	pthread_rwlock_wrlock(&h->grow);
	int rc = searcher_fit(h, s, h->m0);
	if (rc)
		goto out;
	uint32_t ntomb = 0;
	for (uint32_t i = 0; i < h->n_slots; i++)
		ntomb += (h->flags[i] & VT__F_DELETED) != 0;
	if (ntomb == 0)
		goto out;
	if (h->free_cap < h->n_free + ntomb) {
		uint32_t fc = h->free_cap;
		rc = grow_array((void **)&h->free_ids, &fc, h->n_free + ntomb,
				sizeof *h->free_ids);
		if (rc)
			goto out;
		h->free_cap = fc;
	}
	qctx c;
	qctx_init(&c, h, mode_of(h), NULL, NULL, 0);
	for (uint32_t u = 0; u < h->n_slots; u++) {
		if (is_gone(h, u))
			continue;
		for (int l = h->levels[u]; l >= 0; l--)
			repair_node(h, s, &c, u, l);
	}
	/* A new entry point if the old one is going: the live node with the
	 * highest level. */
	uint32_t ep;
	int top;
	load_ep(h, &ep, &top);
	if (ep != VT__NONE && is_gone(h, ep)) {
		uint32_t best = VT__NONE;
		int bl = -1;
		for (uint32_t u = 0; u < h->n_slots; u++)
			if (!is_gone(h, u) && (int)h->levels[u] > bl) {
				bl = h->levels[u];
				best = u;
			}
		store_ep(h, best, bl);
	}
	load_ep(h, &ep, &top);
	uint32_t *indeg = vt_malloc((h->n_slots ? h->n_slots : 1) * sizeof *indeg);
	if (indeg) {
		for (int l = 0; l <= top; l++)
			ensure_in_links(h, &c, l, indeg, ep);
		vt_free(indeg);
	} /* else: the repair stands, without the in-link pass */
	for (uint32_t u = 0; u < h->n_slots; u++) {
		if (!(h->flags[u] & VT__F_DELETED))
			continue;
		if (h->upper[u]) {
			__atomic_fetch_sub(&h->upper_bytes,
					   (uint64_t)h->levels[u] * h->m * 4,
					   __ATOMIC_RELAXED);
			vt_free(h->upper[u]);
			h->upper[u] = NULL;
		}
		h->levels[u] = 0;
		memset(h->links0 + (size_t)u * h->m0, 0xff, h->m0 * sizeof(uint32_t));
		h->flags[u] = VT__F_FREE;
		h->free_ids[h->n_free++] = u;
	}
	__atomic_store_n(&h->n_tomb, 0, __ATOMIC_RELAXED);
	rc = (int)ntomb;
	VT_LOG(VT_LOG_INFO, "hnsw", "consolidated %u deleted nodes", ntomb);
out:
	pthread_rwlock_unlock(&h->grow);
	searcher_put(h, s);
	return rc;
}

/* ---- introspection ------------------------------------------------------------ */

VT_API void vt_hnsw_stats_get(vt_hnsw *h, vt_hnsw_stats *st)
{
	memset(st, 0, sizeof *st);
	pthread_rwlock_rdlock(&h->grow);
	pthread_mutex_lock(&h->map_lock);
	uint32_t ep;
	int top;
	load_ep(h, &ep, &top);
	st->count = __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
	st->tombstones = __atomic_load_n(&h->n_tomb, __ATOMIC_RELAXED);
	st->free_slots = h->n_free;
	st->capacity = h->cap;
	st->max_level = top < 0 ? 0 : (uint32_t)top;
	st->dim = h->p.dim;
	st->metric = h->p.metric;
	st->quant = h->p.quant;
	st->trained = is_trained(h);
	st->quant_lo = h->q_lo;
	st->quant_hi = h->q_lo + 255.0f * h->q_scale;
	st->bytes_graph = (size_t)h->cap * h->m0 * 4 + (size_t)h->cap * sizeof(void *) +
			  __atomic_load_n(&h->upper_bytes, __ATOMIC_RELAXED);
	size_t vb = (size_t)h->cap * h->vstride * sizeof(float);
	if (h->vfd >= 0)
		st->bytes_vectors_mapped = vb;
	else
		st->bytes_vectors = vb;
	if (h->codes)
		st->bytes_codes = (size_t)h->cap * (h->cstride + sizeof(uint32_t));
	st->bytes_other = (size_t)h->cap * (sizeof(uint64_t) + 2) +
			  (size_t)h->map_cap * sizeof *h->map +
			  (size_t)h->free_cap * sizeof(uint32_t);
	pthread_mutex_unlock(&h->map_lock);
	pthread_rwlock_unlock(&h->grow);
}

VT_API void vt_hnsw_params_get(vt_hnsw *h, vt_hnsw_params *out)
{
	*out = h->p;
	out->vectors_path = NULL;
}

VT_API const char *vt_metric_name(int metric)
{
	switch (metric) {
	case VT_METRIC_L2:
		return "l2";
	case VT_METRIC_IP:
		return "ip";
	case VT_METRIC_COSINE:
		return "cosine";
	}
	return "?";
}

VT_API int vt_metric_parse(const char *s)
{
	if (!strcmp(s, "l2") || !strcmp(s, "euclid"))
		return VT_METRIC_L2;
	if (!strcmp(s, "ip") || !strcmp(s, "dot"))
		return VT_METRIC_IP;
	if (!strcmp(s, "cosine"))
		return VT_METRIC_COSINE;
	return -1;
}
