/* raftw.h: the write path of `vectron serve` through Raft: each shard of
 * each collection is a one-voter group on a lib/repl host (its own thread),
 * and lib/coll's writes go through it. Not a cluster (one voter, no
 * membership), not the FSM (lib/repl). docs/serve.md, docs/replication.md. */
#ifndef VT_VECTRON_RAFTW_H
#define VT_VECTRON_RAFTW_H

#include "base/error.h"
#include "coll/coll.h"
#include "repl/host.h"

typedef struct vt_raftw vt_raftw; /* opaque */

/* Starts the host (transport on `bind`, "a.b.c.d:port", port 0 =
 * ephemeral). The groups are made as the database attaches its shards.
 * Errors: those of vt_repl_host_open. */
VT_API int vt_raftw_open(const char *bind, vt_raftw **out, vt_errmsg *err);

/* The writer to put in vt_db_opts.writer. Valid until vt_raftw_free. */
VT_API const vt_coll_writer *vt_raftw_writer(vt_raftw *w);

/* The address the groups listen on (the real port). */
VT_API const char *vt_raftw_address(vt_raftw *w);

/* Closes every group (queued writes get VT_ESHUTDOWN) and stops the host
 * thread. Later writes fail with VT_ESHUTDOWN; later detaches return. */
VT_API void vt_raftw_close(vt_raftw *w);

/* Frees it after the database is closed. */
VT_API void vt_raftw_free(vt_raftw *w);

#endif
