/* import.c: the earlier serve layout into the roles (import.h). */
#include "import.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

#define MOD "import"
#define PAGE 256

int vt_import_needed(const char *data_dir)
{
	char path[2048];
	struct stat st;
	snprintf(path, sizeof path, "%s/collections", data_dir);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* One page of `from`'s scroll into `to`. */
static int copy_page(vt_coll *to, const vt_coll_results *page,
		     vt_errmsg *err)
{
	vt_coll_point *pts = vt_calloc(page->n ? page->n : 1, sizeof *pts);
	if (!pts)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < page->n && !rc; i++) {
		const vt_shard_hit *h = &page->hits[i];
		if (!h->vec)
			rc = vt_errmsg_set(err, VT_ECORRUPT, "point %.*s: no "
					   "vector", (int)h->id_len, h->id);
		pts[i] = (vt_coll_point){h->id, h->id_len, h->vec, h->payload,
					 h->payload_len};
	}
	vt_coll_write_result wr;
	if (!rc)
		rc = vt_coll_upsert(to, pts, page->n, &wr, err);
	vt_free(pts);
	return rc;
}

static int copy_collection(vt_db *to, vt_coll *from, vt_errmsg *err)
{
	vt_coll_config cfg = *vt_coll_config_get(from);
	const char *name = vt_coll_config_get(from)->name;
	uint64_t total = 0, done = 0, have = 0;
	int rc = vt_coll_count(from, NULL, &total, err);
	if (rc)
		return vt_errmsg_prefix(err, rc, "%s: count", name);
	/* the cluster routes by key range; the points are written again */
	cfg.routing = VT_COLL_ROUTE_RANGE;
	vt_coll *c = NULL;
	rc = vt_db_get(to, name, &c);
	if (rc == VT_ENOENT) {
		if ((rc = vt_db_create(to, &cfg, err)))
			return vt_errmsg_prefix(err, rc, "%s: create", name);
		rc = vt_db_get(to, name, &c);
	} else if (!rc) {
		VT_LOG(VT_LOG_INFO, MOD, "%s exists (an import cut short): "
		       "writing every point again", name);
	}
	if (rc)
		return vt_errmsg_set(err, rc, "%s: %s", name, vt_strerror(rc));
	VT_LOG(VT_LOG_INFO, MOD, "%s: %llu points to copy", name,
	       (unsigned long long)total);
	char cursor[64] = "", next[64];
	uint64_t t0 = vt_clock_mono_ns(), last = t0;
	for (;;) {
		vt_coll_results page;
		memset(&page, 0, sizeof page);
		rc = vt_coll_scroll(from, NULL, PAGE, cursor, 1, 1, &page, next,
				    err);
		if (!rc)
			rc = copy_page(c, &page, err);
		done += page.n;
		vt_coll_results_free(&page);
		if (rc)
			break;
		uint64_t now = vt_clock_mono_ns();
		if (now - last > 5000000000ull) {
			VT_LOG(VT_LOG_INFO, MOD, "%s: %llu of %llu points",
			       name, (unsigned long long)done,
			       (unsigned long long)total);
			last = now;
		}
		if (!next[0])
			break;
		snprintf(cursor, sizeof cursor, "%s", next);
	}
	if (!rc && !(rc = vt_coll_count(c, NULL, &have, err)) && have != total)
		rc = vt_errmsg_set(err, VT_EIO, "%s: %llu points copied, the "
				   "new collection counts %llu", name,
				   (unsigned long long)total,
				   (unsigned long long)have);
	vt_coll_release(c);
	if (rc)
		return vt_errmsg_prefix(err, rc, "%s", name);
	VT_LOG(VT_LOG_INFO, MOD, "%s: %llu points in %.1f s", name,
	       (unsigned long long)done,
	       (double)(vt_clock_mono_ns() - t0) / 1e9);
	return 0;
}

int vt_import_run(const char *data_dir, vt_db *to, vt_errmsg *err)
{
	vt_db_opts o;
	vt_db_opts_default(&o);
	o.threads = 1;
	vt_db *from;
	int rc = vt_db_open(data_dir, &o, &from, err);
	if (rc)
		return vt_errmsg_prefix(err, rc, "opening %s/collections",
					data_dir);
	vt_coll **all = NULL;
	size_t n = 0;
	if ((rc = vt_db_list(from, &all, &n)))
		vt_errmsg_set(err, rc, "out of memory");
	VT_LOG(VT_LOG_INFO, MOD, "%s/collections holds %zu collections of an "
	       "earlier layout: copying them into the worker's replicas",
	       data_dir, n);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = copy_collection(to, all[i], err);
		vt_coll_release(all[i]);
	}
	vt_free(all);
	vt_db_close(from);
	if (rc)
		return rc;
	char old[2048], kept[2100];
	snprintf(old, sizeof old, "%s/collections", data_dir);
	snprintf(kept, sizeof kept, "%s.imported", old);
	if (rename(old, kept))
		return vt_errmsg_set(err, VT_EIO, "%s -> %s: %s", old, kept,
				     strerror(errno));
	VT_LOG(VT_LOG_INFO, MOD, "imported %zu collections; the earlier files "
	       "are kept in %s (delete them when satisfied)", n, kept);
	return 0;
}
