/* raftw.h: the write path of `vectron serve` through Raft: each shard of
 * each collection is a one-voter raft group on the server's loop, and
 * request workers hand their commands to it. Not a cluster (one voter, no
 * membership), not the FSM (lib/repl). docs/serve.md, docs/replication.md. */
#ifndef VT_VECTRON_RAFTW_H
#define VT_VECTRON_RAFTW_H

#include <uv.h>

#include "base/error.h"
#include "coll/coll.h"

typedef struct vt_raftw vt_raftw; /* opaque */

/* Opens the mux transport on `bind` ("a.b.c.d:port"; port 0 = ephemeral)
 * on `loop`. Call on the loop's thread before the loop runs; the groups
 * are made as the database attaches its shards (vt_raftw_writer). Errors:
 * those of vt_repl_mux_open, VT_ENOMEM. */
int vt_raftw_open(uv_loop_t *loop, const char *bind, vt_raftw **out,
		  vt_errmsg *err);

/* The writer to put in vt_db_opts.writer. Valid until vt_raftw_free. */
const vt_coll_writer *vt_raftw_writer(vt_raftw *w);

/* The address the groups listen on (the real port). */
const char *vt_raftw_address(vt_raftw *w);

/* On the loop thread: closes every group (writes waiting get
 * VT_ESHUTDOWN), the transport and the handles, so the loop can end. Later
 * writes fail with VT_ESHUTDOWN; later detaches only free. */
void vt_raftw_close(vt_raftw *w);

/* Frees it after the loop has ended and the database is closed. */
void vt_raftw_free(vt_raftw *w);

#endif
