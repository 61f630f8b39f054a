/* transport.h: one TCP port per process for every Raft group in it: a
 * `struct raft_uv_transport` per group, all multiplexed over shared TCP
 * connections (wire format: docs/repl-transport.md). Not a raft_io: raft_uv
 * still does the framing of Raft messages, the retries and the disk. */
#ifndef VT_REPL_TRANSPORT_H
#define VT_REPL_TRANSPORT_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "base/error.h"

/* The process-wide multiplexer: one listener, one loop, every group. Opaque;
 * every call is made on the loop's thread. */
typedef struct vt_repl_mux vt_repl_mux;

/* Counters of one mux since it was opened (all monotonic). */
typedef struct vt_repl_mux_stats {
	uint64_t conns_accepted;  /* TCP connections accepted */
	uint64_t conns_dialed;    /* TCP connections that completed a connect */
	uint64_t frames_in;       /* frames read */
	uint64_t frames_out;      /* frames queued for writing */
	uint64_t unknown_group;   /* OPEN frames for a group not listening here */
	uint64_t stale_frames;    /* DATA/CLOSE frames for a channel not open
				   * (a removed group, a closed stream) */
	uint64_t protocol_errors; /* connections closed for bad bytes */
	uint64_t hook_drops;      /* connections refused or cut by drop rules */
	uint64_t paused;          /* times a connection hit a buffer cap */
} vt_repl_mux_stats;

/* Opens the mux on `loop` and starts listening on `bind_address`
 * ("a.b.c.d:port", IPv4; port 0 picks an ephemeral port). On success *out
 * holds a mux the caller closes with vt_repl_mux_close. The process must
 * ignore SIGPIPE (raft_uv needs that too): streams are socketpairs and a
 * write after the peer closed raises it otherwise.
 * Errors: VT_EINVAL (bad address), VT_ENOMEM, VT_EIO (bind/listen failed,
 * message in `e`). */
VT_API int vt_repl_mux_open(uv_loop_t *loop, const char *bind_address,
			    vt_repl_mux **out, vt_errmsg *e);

/* The address peers dial and every group of this process passes to raft
 * ("127.0.0.1:40123", the real port when 0 was asked). Valid until the mux
 * is closed. */
VT_API const char *vt_repl_mux_address(const vt_repl_mux *m);

/* Closes the listener and every connection, cancels pending connects, and
 * calls `cb(arg)` from the loop once every handle is closed; the mux is
 * freed before `cb` runs. Close the raft instances first: streams already
 * handed to raft_uv see EOF. Transports obtained from the mux stay valid
 * (detached) until vt_repl_transport_release. */
VT_API void vt_repl_mux_close(vt_repl_mux *m, void (*cb)(void *arg),
			      void *arg);

/* Makes the transport of one Raft group: give it to raft_uv_init for that
 * group's raft_io. Raft ids and addresses are per group; the address of
 * every group of a process is vt_repl_mux_address. One transport per group
 * id may be listening at a time (listen returns RAFT_DUPLICATEID else).
 * The caller owns *out and frees it with vt_repl_transport_release after
 * raft_uv_close. Errors: VT_ENOMEM. */
VT_API int vt_repl_transport_for_group(vt_repl_mux *m, uint64_t group_id,
				       struct raft_uv_transport **out);

/* Frees a transport from vt_repl_transport_for_group. It must be closed
 * (raft_close / raft_uv_close done) or never initialised. */
VT_API void vt_repl_transport_release(struct raft_uv_transport *t);

/* Drop-traffic hook for tests (partitions without network namespaces).
 * While a rule for `peer_address` is on, this mux does not dial that peer
 * (connects fail with RAFT_NOCONNECTION, so raft_uv retries), closes any
 * connection that introduces itself as that peer, and cuts the connections
 * it already has to and from it. A rule on one side therefore cuts both
 * directions between the two processes; raft sees EOF and retries, as with
 * a real partition that resets connections. `drop` = 0 removes the rule.
 * Errors: VT_ENOMEM, VT_EINVAL. */
VT_API int vt_repl_mux_drop_peer(vt_repl_mux *m, const char *peer_address,
				 int drop);

/* Copies the counters into *out. */
VT_API void vt_repl_mux_stats_get(const vt_repl_mux *m,
				  vt_repl_mux_stats *out);

#endif
