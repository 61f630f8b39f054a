/* raftw.c: `vectron serve` writes through Raft (raftw.h): lib/coll's
 * writer hook on a lib/repl host, one one-voter group per shard. */
#include "raftw.h"

#include <stdatomic.h>

#include "base/alloc.h"

struct vt_raftw {
	vt_repl_host *host;
	vt_coll_writer writer;
	atomic_uint_fast64_t next_id; /* group ids: unique in this process */
};

static int w_attach(void *ud, vt_shard *s, const char *dir, void **h,
		    vt_errmsg *err)
{
	vt_raftw *w = ud;
	/* The shard is the database's: a borrowed shard keeps one copy of
	 * the data, and its snapshots record only where the log stands. */
	vt_repl_group_spec spec = {.group_id = ++w->next_id, .self = 1,
				   .dir = dir, .borrow = s};
	vt_repl_hgroup *g;
	int rc = vt_repl_host_attach(w->host, &spec, &g, err);
	*h = rc ? NULL : g;
	return rc;
}

static int w_apply(void *ud, void *h, const void *cmd, size_t len,
		   vt_shard_result *res, vt_errmsg *err)
{
	vt_raftw *w = ud;
	return vt_repl_host_apply(w->host, h, cmd, len, res, err);
}

static void w_detach(void *ud, void *h)
{
	vt_raftw *w = ud;
	vt_repl_host_detach(w->host, h);
}

int vt_raftw_open(const char *bind, vt_raftw **out, vt_errmsg *err)
{
	*out = NULL;
	vt_raftw *w = vt_calloc(1, sizeof *w);
	if (!w)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	vt_repl_host_opts o;
	vt_repl_host_opts_default(&o);
	o.bind = bind;
	/* One voter: it elects itself at start; the timeouts only matter
	 * for how fast a restarted group is ready. */
	o.tune.election_timeout_ms = 200;
	o.tune.heartbeat_timeout_ms = 50;
	int rc = vt_repl_host_open(&o, &w->host, err);
	if (rc) {
		vt_free(w);
		return rc;
	}
	w->writer = (vt_coll_writer){w, w_attach, w_apply, w_detach};
	*out = w;
	return 0;
}

const vt_coll_writer *vt_raftw_writer(vt_raftw *w) { return &w->writer; }

const char *vt_raftw_address(vt_raftw *w)
{
	return vt_repl_host_address(w->host);
}

void vt_raftw_close(vt_raftw *w)
{
	if (w)
		vt_repl_host_close(w->host);
}

void vt_raftw_free(vt_raftw *w)
{
	if (!w)
		return;
	vt_repl_host_free(w->host);
	vt_free(w);
}
