/* ref_hnswlib.cpp: the hnswlib reference behind ref_hnswlib.h, a thin
 * wrapper that catches every exception. Not Vectron code: only bench/ uses
 * it, and it is the only C++ in the project. */
#include "ref_hnswlib.h"

#include <malloc.h>

#include <new>
#include <stdexcept>

#include <hnswlib/hnswlib.h>

#include "base/error.h"

#ifndef VT_BENCH_HNSWLIB_VERSION
#define VT_BENCH_HNSWLIB_VERSION "unknown"
#endif

struct vt_bench_ref {
	hnswlib::SpaceInterface<float> *space;
	hnswlib::HierarchicalNSW<float> *index;
};

extern "C" int vt_bench_ref_create(uint32_t dim, int ip, size_t max_elements,
				   uint32_t m, uint32_t ef_construction,
				   uint64_t seed, vt_bench_ref **out)
{
	*out = nullptr;
	vt_bench_ref *r = new (std::nothrow) vt_bench_ref();
	if (!r)
		return VT_ENOMEM;
	try {
		if (ip)
			r->space = new hnswlib::InnerProductSpace(dim);
		else
			r->space = new hnswlib::L2Space(dim);
		r->index = new hnswlib::HierarchicalNSW<float>(
			r->space, max_elements, m, ef_construction, (size_t)seed);
	} catch (const std::bad_alloc &) {
		vt_bench_ref_destroy(r);
		return VT_ENOMEM;
	} catch (...) {
		vt_bench_ref_destroy(r);
		return VT_EINTERNAL;
	}
	*out = r;
	return 0;
}

extern "C" int vt_bench_ref_add(vt_bench_ref *r, uint64_t label, const float *vec)
{
	try {
		r->index->addPoint(vec, (hnswlib::labeltype)label);
	} catch (const std::bad_alloc &) {
		return VT_ENOMEM;
	} catch (...) {
		return VT_EINTERNAL;
	}
	return 0;
}

extern "C" int vt_bench_ref_search(vt_bench_ref *r, const float *q, uint32_t k,
				   uint32_t ef, uint64_t *labels, float *dists,
				   size_t *n_out)
{
	try {
		r->index->setEf(ef);
		auto pq = r->index->searchKnn(q, k);
		size_t n = pq.size();
		*n_out = n;
		/* The queue pops the farthest first. */
		while (!pq.empty()) {
			n--;
			labels[n] = pq.top().second;
			dists[n] = pq.top().first;
			pq.pop();
		}
	} catch (const std::bad_alloc &) {
		return VT_ENOMEM;
	} catch (...) {
		return VT_EINTERNAL;
	}
	return 0;
}

/* glibc: a small block costs its usable size plus the 8-byte size word. */
static size_t block_bytes(void *p)
{
	return p ? malloc_usable_size(p) + 8 : 0;
}

extern "C" void vt_bench_ref_mem_get(vt_bench_ref *r, int threads, vt_bench_ref_mem *m)
{
	hnswlib::HierarchicalNSW<float> *h = r->index;
	*m = vt_bench_ref_mem{};
	m->level0 = block_bytes(h->data_level0_memory_);
	for (size_t i = 0; i < h->cur_element_count; i++)
		if (h->element_levels_[i] > 0)
			m->upper += block_bytes(h->linkLists_[i]);
	m->locks = (h->link_list_locks_.capacity() + h->link_list_update_locks_.capacity()) *
		   sizeof(std::mutex);
	/* libstdc++ nodes: next pointer + the pair (no cached hash for
	 * integer keys), one 32-byte malloc chunk each, plus the buckets. */
	m->label_map = h->label_lookup_.size() * 32 +
		       h->label_lookup_.bucket_count() * sizeof(void *);
	m->visited = (size_t)(threads > 0 ? threads : 1) *
		     (h->max_elements_ * sizeof(hnswlib::vl_type) + 8);
	m->other = h->element_levels_.capacity() * sizeof(int) + block_bytes(h->linkLists_);
	m->total = m->level0 + m->upper + m->locks + m->label_map + m->visited + m->other;
}

extern "C" const char *vt_bench_ref_version(void)
{
	return "hnswlib (Debian libhnswlib-dev " VT_BENCH_HNSWLIB_VERSION ")";
}

extern "C" void vt_bench_ref_destroy(vt_bench_ref *r)
{
	if (!r)
		return;
	delete r->index;
	delete r->space;
	delete r;
}
