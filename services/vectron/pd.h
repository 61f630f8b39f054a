/* pd.h: `vectron pd`, the placement driver daemon: the cluster metadata
 * (lib/pd) in a Raft group on lib/repl's host, served over the internal
 * gRPC service vectron.internal.v1.PlacementDriver, with the
 * reconciliation loop on the leader. docs/pd.md.
 *
 * The same node also runs as a role of a bigger process (`vectron serve`):
 * a one-node PD whose group shares the process's Raft host and whose
 * methods join the process's internal gRPC server. */
#ifndef VT_VECTRON_PD_H
#define VT_VECTRON_PD_H

#include <uv.h>

#include "base/buf.h"
#include "base/error.h"
#include "repl/host.h"
#include "rpc/grpc.h"

/* Runs the daemon until SIGTERM/SIGINT. argv[0] is "pd". Returns the exit
 * status: 0, 1 (could not start), 2 (bad settings). */
int vt_cli_pd(int argc, char **argv);

/* The PD's Raft group id: every PD node uses it, and it is above any id
 * the PD hands to shard groups, so a PD group and shard groups can share
 * one host. */
#define VT_PD_RAFT_GROUP (UINT64_C(1) << 63)

typedef struct pd vt_pd_role; /* opaque */

typedef struct vt_pd_role_opts {
	uv_loop_t *loop;
	vt_repl_host *host;     /* shared; outlives the role (closed after
				   vt_pd_role_stop, before vt_pd_role_free) */
	vt_grpc_server *grpc;   /* the PD's methods are added to it; not owned */
	const char *data_dir;   /* the group lives in <data_dir>/pd */
	const char *listen;     /* `grpc`'s address, for redirects */
	int reconcile_ms;       /* 0: the daemon's default */
} vt_pd_role_opts;

/* Starts a one-node PD on the loop's thread, before or inside uv_run:
 * attaches its group, adds its methods, starts the reconciliation timer
 * with the daemon's defaults (docs/pd.md). *out is the role. VT_E*. */
int vt_pd_role_start(const vt_pd_role_opts *o, vt_pd_role **out,
		     vt_errmsg *err);
/* Appends this node's Prometheus text (vectron_pd_*, docs/pd.md) to
 * `out`; a host call, so not on the loop thread. vt_buf errors. */
int vt_pd_role_metrics(vt_pd_role *p, vt_buf *out);
/* Loop thread: stops the timer; the loop may then end. Idempotent. */
void vt_pd_role_stop(vt_pd_role *p);
/* After the loop ended and the host was closed: frees. NULL: no-op. */
void vt_pd_role_free(vt_pd_role *p);

#endif
