/* index.c: the payload index (per declared field: value -> sorted labels,
 * and a sorted (number, label) array for ranges) and the filter planner
 * that answers indexed conditions exactly and picks scan or graph. Not
 * persistent: the shard rebuilds it from its store on load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "payload_int.h"

/* ---- sorted label sets ------------------------------------------------------- */

struct lset {
	uint64_t *v;
	size_t n, cap;
};

static void lset_free(struct lset *s)
{
	vt_free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static int lset_reserve(struct lset *s, size_t n)
{
	if (n <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 4;
	while (cap < n)
		cap *= 2;
	uint64_t *v = vt_realloc(s->v, cap * sizeof *v);
	if (!v)
		return VT_ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

static size_t lower_bound(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- sorted block lists ----------------------------------------------------
 * An ordered set of fixed-width keys (w = 1 or 2 words, compared
 * lexicographically) kept in blocks of at most BLK keys: insert and erase
 * move at most one block and one array of block pointers, so building an
 * index in any label order stays O(n sqrt n) at worst, not O(n^2). */

#define BLK 512

struct blk {
	uint32_t n;
	uint64_t e[]; /* n * w words */
};

struct blist {
	struct blk **b;
	size_t nb, capb, n;
	uint32_t w;
};

static void blist_init(struct blist *l, uint32_t w)
{
	memset(l, 0, sizeof *l);
	l->w = w;
}

static void blist_free(struct blist *l)
{
	for (size_t i = 0; i < l->nb; i++)
		vt_free(l->b[i]);
	vt_free(l->b);
	l->b = NULL;
	l->nb = l->capb = l->n = 0;
}

static int kcmp(const uint64_t *a, const uint64_t *b, uint32_t w)
{
	for (uint32_t i = 0; i < w; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* The block that holds key or would: the first whose last key >= key, or
 * the last block. */
static size_t blist_block(const struct blist *l, const uint64_t *key)
{
	size_t lo = 0, hi = l->nb;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct blk *b = l->b[mid];
		if (kcmp(b->e + (size_t)(b->n - 1) * l->w, key, l->w) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->nb ? lo : l->nb - 1;
}

static uint32_t blk_lower(const struct blk *b, const uint64_t *key, uint32_t w)
{
	uint32_t lo = 0, hi = b->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (kcmp(b->e + (size_t)mid * w, key, w) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int blist_grow_ptrs(struct blist *l)
{
	if (l->nb < l->capb)
		return 0;
	size_t cap = l->capb ? l->capb * 2 : 4;
	struct blk **b = vt_realloc(l->b, cap * sizeof *b);
	if (!b)
		return VT_ENOMEM;
	l->b = b;
	l->capb = cap;
	return 0;
}

/* Inserts key: 0 if added, 1 if present, VT_ENOMEM (nothing changed). */
static int blist_insert(struct blist *l, const uint64_t *key)
{
	uint32_t w = l->w;
	size_t bytes = sizeof(struct blk) + (size_t)BLK * w * sizeof(uint64_t);
	if (!l->nb) {
		if (blist_grow_ptrs(l))
			return VT_ENOMEM;
		struct blk *b = vt_malloc(bytes);
		if (!b)
			return VT_ENOMEM;
		memcpy(b->e, key, w * sizeof(uint64_t));
		b->n = 1;
		l->b[l->nb++] = b;
		l->n++;
		return 0;
	}
	/* Blocks are never empty from here on. */
	size_t bi = blist_block(l, key);
	struct blk *b = l->b[bi];
	uint32_t pos = blk_lower(b, key, w);
	if (pos < b->n && !kcmp(b->e + (size_t)pos * w, key, w))
		return 1;
	if (b->n == BLK) {
		/* Split in halves; the upper half goes to a new block. */
		if (blist_grow_ptrs(l))
			return VT_ENOMEM;
		struct blk *nb = vt_malloc(bytes);
		if (!nb)
			return VT_ENOMEM;
		uint32_t half = BLK / 2;
		nb->n = BLK - half;
		memcpy(nb->e, b->e + (size_t)half * w, (size_t)nb->n * w * sizeof(uint64_t));
		b->n = half;
		memmove(l->b + bi + 2, l->b + bi + 1, (l->nb - bi - 1) * sizeof *l->b);
		l->b[bi + 1] = nb;
		l->nb++;
		if (pos > half) {
			b = nb;
			pos -= half;
		}
	}
	memmove(b->e + (size_t)(pos + 1) * w, b->e + (size_t)pos * w,
		(size_t)(b->n - pos) * w * sizeof(uint64_t));
	memcpy(b->e + (size_t)pos * w, key, w * sizeof(uint64_t));
	b->n++;
	l->n++;
	return 0;
}

/* Erases key: 1 if it was there, else 0. Never allocates. */
static int blist_erase(struct blist *l, const uint64_t *key)
{
	if (!l->nb)
		return 0;
	uint32_t w = l->w;
	size_t bi = blist_block(l, key);
	struct blk *b = l->b[bi];
	uint32_t pos = blk_lower(b, key, w);
	if (pos == b->n || kcmp(b->e + (size_t)pos * w, key, w))
		return 0;
	memmove(b->e + (size_t)pos * w, b->e + (size_t)(pos + 1) * w,
		(size_t)(b->n - pos - 1) * w * sizeof(uint64_t));
	b->n--;
	l->n--;
	if (!b->n) {
		vt_free(b);
		memmove(l->b + bi, l->b + bi + 1, (l->nb - bi - 1) * sizeof *l->b);
		l->nb--;
	}
	return 1;
}

/* Appends word `word` of every key from the first >= `from` (NULL: all)
 * to `out` while keep(key) holds (NULL: to the end). */
static int blist_collect(const struct blist *l, const uint64_t *from,
			 int (*keep)(const uint64_t *key, const void *ctx),
			 const void *ctx, uint32_t word, struct lset *out)
{
	size_t bi = 0;
	uint32_t pos = 0;
	if (!l->nb)
		return 0;
	if (from) {
		bi = blist_block(l, from);
		pos = blk_lower(l->b[bi], from, l->w);
	}
	for (; bi < l->nb; bi++, pos = 0) {
		const struct blk *b = l->b[bi];
		if (lset_reserve(out, out->n + (b->n - pos)))
			return VT_ENOMEM;
		for (; pos < b->n; pos++) {
			const uint64_t *k = b->e + (size_t)pos * l->w;
			if (keep && !keep(k, ctx))
				return 0;
			out->v[out->n++] = k[word];
		}
	}
	return 0;
}

/* Doubles as order-preserving unsigned keys (-0 folds into +0). */
static uint64_t dkey(double d)
{
	uint64_t u;
	if (d == 0)
		d = 0;
	memcpy(&u, &d, 8);
	return u >> 63 ? ~u : u | (1ull << 63);
}

static double dval(uint64_t u)
{
	u = u >> 63 ? u & ~(1ull << 63) : ~u;
	double d;
	memcpy(&d, &u, 8);
	return d;
}

/* ---- a value -> postings hash map (chained) --------------------------------- */

struct entry {
	struct entry *next;
	uint64_t hash;
	struct blist post; /* labels, w = 1 */
	size_t klen;
	unsigned char key[]; /* tag byte + value bytes */
};

struct hmap {
	struct entry **b;
	size_t nb, n;
};

static void hmap_free(struct hmap *m)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct entry *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			blist_free(&e->post);
			vt_free(e);
		}
	vt_free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

static struct entry *hmap_get(const struct hmap *m, const void *key, size_t klen,
			      uint64_t h)
{
	if (!m->nb)
		return NULL;
	for (struct entry *e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen))
			return e;
	return NULL;
}

static struct entry *hmap_put(struct hmap *m, const void *key, size_t klen,
			      uint64_t h)
{
	struct entry *e = hmap_get(m, key, klen, h);
	if (e)
		return e;
	if (m->n >= m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 16;
		struct entry **b = vt_calloc(nb, sizeof *b);
		if (!b)
			return NULL;
		for (size_t i = 0; i < m->nb; i++)
			for (struct entry *x = m->b[i], *nx; x; x = nx) {
				nx = x->next;
				x->next = b[x->hash & (nb - 1)];
				b[x->hash & (nb - 1)] = x;
			}
		vt_free(m->b);
		m->b = b;
		m->nb = nb;
	}
	e = vt_calloc(1, sizeof *e + klen);
	if (!e)
		return NULL;
	e->hash = h;
	blist_init(&e->post, 1);
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = e;
	m->n++;
	return e;
}

static void hmap_drop(struct hmap *m, struct entry *e)
{
	struct entry **pp = &m->b[e->hash & (m->nb - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	blist_free(&e->post);
	vt_free(e);
	m->n--;
}

/* ---- the index ------------------------------------------------------------------- */

struct field {
	struct vt__path path;
	int type;
	struct hmap map;     /* keyword, integer, bool */
	struct blist r;      /* integer, float: (dkey(number), label) */
};

struct vt_payload_index {
	struct field *f;
	size_t nf;
	struct blist all;    /* every label, w = 1 */
};

int vt_payload_index_create(const vt_payload_schema *schema,
			    vt_payload_index **out, vt_errmsg *err)
{
	*out = NULL;
	size_t n = schema ? schema->n : 0;
	for (size_t i = 0; i < n; i++) {
		const vt_payload_field *fd = &schema->fields[i];
		if (!fd->path || !fd->path[0])
			return vt_errmsg_set(err, VT_EINVAL,
					     "payload index: field %zu has no path", i);
		if (fd->type < VT_PAYLOAD_KEYWORD || fd->type > VT_PAYLOAD_BOOL)
			return vt_errmsg_set(err, VT_EINVAL,
					     "payload index: field '%s': unknown type %d",
					     fd->path, fd->type);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(schema->fields[j].path, fd->path))
				return vt_errmsg_set(err, VT_EINVAL,
						     "payload index: field '%s' declared twice",
						     fd->path);
	}
	vt_payload_index *ix = vt_calloc(1, sizeof *ix);
	if (!ix || !(ix->f = vt_calloc(n ? n : 1, sizeof *ix->f))) {
		vt_free(ix);
		return vt_errmsg_set(err, VT_ENOMEM, "payload index: out of memory");
	}
	blist_init(&ix->all, 1);
	for (size_t i = 0; i < n; i++) {
		ix->f[i].type = schema->fields[i].type;
		blist_init(&ix->f[i].r, 2);
		if (vt__path_init(&ix->f[i].path, schema->fields[i].path)) {
			vt_payload_index_destroy(ix);
			return vt_errmsg_set(err, VT_ENOMEM, "payload index: out of memory");
		}
		ix->nf = i + 1;
	}
	ix->nf = n;
	*out = ix;
	return 0;
}

void vt_payload_index_destroy(vt_payload_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->nf; i++) {
		vt__path_free(&ix->f[i].path);
		hmap_free(&ix->f[i].map);
		blist_free(&ix->f[i].r);
	}
	vt_free(ix->f);
	blist_free(&ix->all);
	vt_free(ix);
}

uint64_t vt_payload_index_count(const vt_payload_index *ix)
{
	return ix->all.n;
}

/* Keys: 's' + bytes, 'i' + int64, 'b' + 0/1. */
static size_t make_key(const json_t *v, int type, unsigned char *buf,
		       const unsigned char **key)
{
	if (type == VT_PAYLOAD_KEYWORD && json_is_string(v)) {
		/* Strings are keyed by their own bytes: tag folded into the
		 * hash input is unnecessary since one field has one type. */
		*key = (const unsigned char *)json_string_value(v);
		return json_string_length(v);
	}
	if (type == VT_PAYLOAD_INTEGER && json_is_integer(v)) {
		int64_t x = json_integer_value(v);
		memcpy(buf, &x, 8);
		*key = buf;
		return 8;
	}
	if (type == VT_PAYLOAD_BOOL && json_is_boolean(v)) {
		buf[0] = json_is_true(v);
		*key = buf;
		return 1;
	}
	return (size_t)-1;
}

struct upd {
	struct field *f;
	uint64_t label;
	int add; /* 1 add, 0 remove */
	int rc;
};

static int v_upd(const json_t *v, void *ctx)
{
	struct upd *u = ctx;
	struct field *f = u->f;
	unsigned char buf[8];
	const unsigned char *key;
	size_t klen = make_key(v, f->type, buf, &key);
	if (klen != (size_t)-1) {
		uint64_t h = vt_hash64(key, klen, 0x9e37);
		if (u->add) {
			struct entry *e = hmap_put(&f->map, key, klen, h);
			if (!e || blist_insert(&e->post, &u->label) < 0) {
				u->rc = VT_ENOMEM;
				return 1;
			}
		} else {
			struct entry *e = hmap_get(&f->map, key, klen, h);
			if (e) {
				blist_erase(&e->post, &u->label);
				if (!e->post.n)
					hmap_drop(&f->map, e);
			}
		}
	}
	if ((f->type == VT_PAYLOAD_INTEGER || f->type == VT_PAYLOAD_FLOAT) &&
	    json_is_number(v)) {
		uint64_t rk[2] = {dkey(json_number_value(v)), u->label};
		if (u->add) {
			if (blist_insert(&f->r, rk) < 0) {
				u->rc = VT_ENOMEM;
				return 1;
			}
		} else {
			blist_erase(&f->r, rk);
		}
	}
	return 0;
}

static void apply(vt_payload_index *ix, uint64_t label, const vt_payload *p,
		  int add, int *rc)
{
	if (!p)
		return;
	for (size_t i = 0; i < ix->nf && !*rc; i++) {
		struct upd u = {&ix->f[i], label, add, 0};
		vt__path_visit(p->root, &ix->f[i].path, v_upd, &u);
		*rc = u.rc;
	}
}

int vt_payload_index_add(vt_payload_index *ix, uint64_t label,
			 const vt_payload *p)
{
	int rc = blist_insert(&ix->all, &label);
	if (rc)
		return rc == 1 ? VT_EEXIST : rc;
	rc = 0;
	apply(ix, label, p, 1, &rc);
	if (rc) {
		/* Removal never allocates, and skips what was not added. */
		int rc2 = 0;
		apply(ix, label, p, 0, &rc2);
		blist_erase(&ix->all, &label);
	}
	return rc;
}

int vt_payload_index_remove(vt_payload_index *ix, uint64_t label,
			    const vt_payload *old)
{
	if (!blist_erase(&ix->all, &label))
		return VT_ENOENT;
	int rc = 0;
	apply(ix, label, old, 0, &rc);
	return 0;
}

int vt_payload_index_update(vt_payload_index *ix, uint64_t label,
			    const vt_payload *old, const vt_payload *p)
{
	int rc = vt_payload_index_remove(ix, label, old);
	if (rc)
		return rc;
	return vt_payload_index_add(ix, label, p);
}

/* ---- planning ---------------------------------------------------------------------- */

void vt_filter_plan_params_default(vt_filter_plan_params *pp)
{
	pp->scan_threshold = 0;
	pp->graph_cost = 2000;
}

/* What the index says about a (sub)filter: nothing (!known), a superset of
 * the matches (known, !exact) or exactly the matches. */
struct pres {
	int known, exact;
	struct lset s;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void sort_unique(struct lset *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof *s->v, u64_cmp);
	size_t m = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] != s->v[m - 1])
			s->v[m++] = s->v[i];
	s->n = m;
}

static int lset_append(struct lset *s, const uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	if (lset_reserve(s, s->n + n))
		return VT_ENOMEM;
	memcpy(s->v + s->n, v, n * sizeof *v);
	s->n += n;
	return 0;
}

/* a := a AND b */
static void lset_and(struct lset *a, const struct lset *b)
{
	size_t i = 0, j = 0, m = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j])
			i++;
		else if (a->v[i] > b->v[j])
			j++;
		else {
			a->v[m++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = m;
}

/* out := all AND NOT b (out is overwritten) */
static int lset_minus(struct lset *out, const struct lset *all,
		      const struct lset *b)
{
	out->n = 0;
	if (lset_reserve(out, all->n))
		return VT_ENOMEM;
	size_t j = 0;
	for (size_t i = 0; i < all->n; i++) {
		while (j < b->n && b->v[j] < all->v[i])
			j++;
		if (j < b->n && b->v[j] == all->v[i])
			continue;
		out->v[out->n++] = all->v[i];
	}
	return 0;
}

static const struct field *find_field(const vt_payload_index *ix,
				      const char *path)
{
	for (size_t i = 0; i < ix->nf; i++)
		if (!strcmp(ix->f[i].path.text, path))
			return &ix->f[i];
	return NULL;
}

static int add_posting(const struct field *f, const void *key, size_t klen,
		       struct lset *out, int *nlists)
{
	const struct entry *e = hmap_get(&f->map, key, klen,
					 vt_hash64(key, klen, 0x9e37));
	if (!e)
		return 0;
	*nlists += 1;
	return blist_collect(&e->post, NULL, NULL, NULL, 0, out);
}

/* The exact matches of a leaf from the index, or !known if the index
 * cannot answer it. */
static int range_keep(const uint64_t *key, const void *ctx)
{
	const struct vt__cond *c = ctx;
	return !c->has_hi || vt__range_ok(c, dval(key[0]));
}

static int plan_leaf(const struct vt__cond *c, const vt_payload_index *ix,
		     struct pres *r)
{
	const struct field *f = find_field(ix, c->path.text);
	if (!f)
		return 0;
	int t = f->type, rc = 0, nlists = 0;
	unsigned char buf[8];
	switch (c->op) {
	case VT__MATCH_STR:
	case VT__ANY_STR:
		if (t != VT_PAYLOAD_KEYWORD)
			return 0;
		for (size_t i = 0; i < c->nvals && !rc; i++)
			rc = add_posting(f, c->strs[i].s, c->strs[i].len, &r->s, &nlists);
		break;
	case VT__MATCH_INT:
	case VT__ANY_INT:
		if (t != VT_PAYLOAD_INTEGER)
			return 0;
		for (size_t i = 0; i < c->nvals && !rc; i++) {
			memcpy(buf, &c->ints[i], 8);
			rc = add_posting(f, buf, 8, &r->s, &nlists);
		}
		break;
	case VT__MATCH_BOOL:
		if (t != VT_PAYLOAD_BOOL)
			return 0;
		buf[0] = (unsigned char)c->boolean;
		rc = add_posting(f, buf, 1, &r->s, &nlists);
		break;
	case VT__EXCEPT_STR:
	case VT__EXCEPT_INT:
		if (t != (c->op == VT__EXCEPT_STR ? VT_PAYLOAD_KEYWORD
						  : VT_PAYLOAD_INTEGER))
			return 0;
		for (size_t b = 0; b < f->map.nb && !rc; b++)
			for (const struct entry *e = f->map.b[b]; e && !rc; e = e->next) {
				int in;
				if (c->op == VT__EXCEPT_STR) {
					in = vt__str_in(c, (const char *)e->key, e->klen);
				} else {
					int64_t x;
					memcpy(&x, e->key, 8);
					in = vt__int_in(c, x);
				}
				if (!in) {
					nlists++;
					rc = blist_collect(&e->post, NULL, NULL, NULL, 0, &r->s);
				}
			}
		break;
	case VT__RANGE: {
		if (t != VT_PAYLOAD_INTEGER && t != VT_PAYLOAD_FLOAT)
			return 0;
		/* From the first key >= lo (or just past lo when strict:
		 * keys are order-preserving, so +1 is the next double),
		 * while the upper bound holds. */
		uint64_t from[2] = {0, 0};
		if (c->has_lo)
			from[0] = dkey(c->lo) + (c->lo_incl ? 0 : 1);
		rc = blist_collect(&f->r, from, range_keep, c, 1, &r->s);
		nlists = 2; /* labels come in number order */
		break;
	}
	default:
		return 0;
	}
	if (rc)
		return rc;
	/* One posting list is sorted and unique already. */
	if (nlists > 1)
		sort_unique(&r->s);
	r->known = r->exact = 1;
	return 0;
}

static int plan_node(const struct vt__cond *c, const vt_payload_index *ix,
		     struct pres *r);

/* Intersects `part` into `acc` (both may be unknown). */
static int meet(struct pres *acc, struct pres *part, int *all_exact)
{
	if (!part->known) {
		*all_exact = 0;
		return 0;
	}
	*all_exact &= part->exact;
	if (!acc->known) {
		lset_free(&acc->s);
		acc->s = part->s;
		part->s = (struct lset){0};
		acc->known = 1;
		return 0;
	}
	lset_and(&acc->s, &part->s);
	return 0;
}

static int plan_node(const struct vt__cond *c, const vt_payload_index *ix,
		     struct pres *r)
{
	memset(r, 0, sizeof *r);
	if (c->op != VT__FILTER)
		return plan_leaf(c, ix, r);
	int all_exact = 1, rc = 0;
	struct pres part;
	for (size_t i = 0; i < c->nmust && !rc; i++) {
		rc = plan_node(c->must[i], ix, &part);
		if (!rc)
			rc = meet(r, &part, &all_exact);
		lset_free(&part.s);
	}
	if (c->nshould && !rc) {
		/* The union is known only if every branch is. */
		struct pres u = {.known = 1, .exact = 1};
		for (size_t i = 0; i < c->nshould && !rc; i++) {
			rc = plan_node(c->should[i], ix, &part);
			if (!rc && part.known && u.known) {
				u.exact &= part.exact;
				rc = lset_append(&u.s, part.s.v, part.s.n);
			} else {
				u.known = 0;
			}
			lset_free(&part.s);
		}
		if (!rc && u.known)
			sort_unique(&u.s);
		if (!rc)
			rc = meet(r, &u, &all_exact);
		lset_free(&u.s);
	}
	for (size_t i = 0; i < c->nmust_not && !rc; i++) {
		rc = plan_node(c->must_not[i], ix, &part);
		if (!rc && part.known && part.exact && r->known) {
			/* Subtract from what must/should left: cheaper than
			 * complementing within all labels. */
			struct lset d = {0};
			rc = lset_minus(&d, &r->s, &part.s);
			if (!rc) {
				lset_free(&r->s);
				r->s = d;
			}
		} else if (!rc && part.known && part.exact) {
			struct pres neg = {.known = 1, .exact = 1};
			struct lset all = {0};
			rc = blist_collect(&ix->all, NULL, NULL, NULL, 0, &all);
			if (!rc)
				rc = lset_minus(&neg.s, &all, &part.s);
			lset_free(&all);
			if (!rc)
				rc = meet(r, &neg, &all_exact);
			lset_free(&neg.s);
		} else {
			/* The complement of a superset tells nothing. */
			all_exact = 0;
		}
		lset_free(&part.s);
	}
	if (!rc && !r->known && all_exact) {
		/* No clause at all (or only exact ones that were empty
		 * lists): every label matches. */
		rc = blist_collect(&ix->all, NULL, NULL, NULL, 0, &r->s);
		r->known = 1;
	}
	r->exact = r->known && all_exact;
	if (rc)
		lset_free(&r->s);
	return rc;
}

int vt_filter_plan_build(const vt_filter *f, const vt_payload_index *ix,
		   uint64_t total_points, const vt_filter_plan_params *pp,
		   vt_filter_plan *out)
{
	vt_filter_plan_params dp;
	if (!pp) {
		vt_filter_plan_params_default(&dp);
		pp = &dp;
	}
	memset(out, 0, sizeof *out);
	uint64_t thr = pp->scan_threshold;
	if (!thr) {
		double g = pp->graph_cost > 0 ? pp->graph_cost : 2000;
		thr = (uint64_t)sqrt(g * (double)total_points);
		if (thr < 1000)
			thr = 1000;
	}
	out->scan_threshold = thr;
	struct pres r = {0};
	if (ix) {
		int rc = plan_node(f->root, ix, &r);
		if (rc)
			return rc;
	}
	if (!r.known) {
		out->estimate = total_points;
		out->strategy = total_points <= thr ? VT_PLAN_SCAN : VT_PLAN_GRAPH;
		return 0;
	}
	out->has_labels = 1;
	out->exact = r.exact;
	out->labels = r.s.v;
	out->n_labels = r.s.n;
	out->estimate = r.s.n;
	if (r.s.n == 0)
		out->strategy = VT_PLAN_EMPTY;
	else
		out->strategy = r.s.n <= thr ? VT_PLAN_SCAN : VT_PLAN_GRAPH;
	return 0;
}

void vt_filter_plan_free(vt_filter_plan *plan)
{
	if (!plan)
		return;
	vt_free(plan->labels);
	plan->labels = NULL;
	plan->n_labels = 0;
	plan->has_labels = 0;
}

int vt_filter_plan_contains(const vt_filter_plan *plan, uint64_t label)
{
	size_t i = lower_bound(plan->labels, plan->n_labels, label);
	return i < plan->n_labels && plan->labels[i] == label;
}

int vt_filter_plan_check(const vt_filter_hnsw_ctx *c, uint64_t label,
			 const vt_payload *p)
{
	const vt_filter_plan *pl = c->plan;
	if (pl && pl->has_labels) {
		if (!vt_filter_plan_contains(pl, label))
			return 0;
		if (pl->exact)
			return 1;
	}
	return vt_filter_match(c->filter, p);
}

int vt_filter_hnsw_cb(uint64_t label, void *ctx)
{
	const vt_filter_hnsw_ctx *c = ctx;
	const vt_filter_plan *pl = c->plan;
	if (pl && pl->has_labels) {
		if (!vt_filter_plan_contains(pl, label))
			return 0;
		if (pl->exact)
			return 1;
	}
	const vt_payload *p = NULL;
	if (c->lookup && c->lookup(c->lookup_ctx, label, &p))
		return 0;
	return vt_filter_match(c->filter, p);
}
