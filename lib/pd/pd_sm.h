/* pd_sm.h: the placement driver's metadata (meta.h) as the state machine of
 * a lib/repl Raft group (repl/sm.h): apply, snapshot and restore through
 * vt_pd_apply, vt_pd_snapshot and vt_pd_restore. Not the group, not the
 * daemon: the caller opens the vt_pd_meta, hands vt_pd_sm_ops() and it to
 * lib/repl (vt_repl_opts.sm_ops/sm, or vt_repl_group_spec.sm_ops/sm) and
 * frees it after the group is closed. Needs only repl/sm.h (no raft, no
 * lib/shard). docs/cluster-metadata.md §8. */
#ifndef VT_PD_SM_H
#define VT_PD_SM_H

#include "pd/meta.h"
#include "repl/sm.h"

/* Largest snapshot restored or taken (VT_ELIMIT beyond): 256 MiB, far
 * above the limits of meta.h (about 4096 workers and 65536 shards). */
#define VT_PD_SM_SNAP_MAX (256u << 20)

/* The ops; their `sm` is a vt_pd_meta *. Static: never freed. Apply's
 * verdicts are vt_pd_apply's (VT_EEXIST and VT_EBUSY included); its
 * VT_ENOMEM is a local failure, which stops the replica. */
VT_API const vt_repl_sm_ops *vt_pd_sm_ops(void);

/* Copies a PD group's result (of a status-0 callback or
 * vt_repl_host_submit) out of the box. */
VT_API void vt_pd_sm_result(const vt_repl_result *res, vt_pd_result *out);

#endif
