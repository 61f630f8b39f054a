/* worker.h: `vectron worker`, the daemon that hosts shard replicas for a
 * cluster: registers with the placement driver, heartbeats, attaches and
 * destroys the replicas it is assigned, drives the membership of the
 * groups it leads, and serves vectron.internal.v1.Worker
 * (proto/vectron/internal/v1/cluster.proto). docs/worker.md.
 *
 * The same worker also runs as a role of a bigger process (`vectron
 * serve`): on the process's loop and Raft host, with the gateway calling
 * it in-process (vt_worker_call_local). */
#ifndef VT_VECTRON_WORKER_H
#define VT_VECTRON_WORKER_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "base/error.h"
#include "repl/host.h"
#include "rpc/grpc.h"
#include "shard/shard.h"

/* argv[0] is "worker". Returns the process exit code: 0 after a clean
 * stop (SIGTERM/SIGINT) or --help, 1 on a start failure, 2 on bad
 * settings. */
int vt_cli_worker(int argc, char **argv);

typedef struct worker vt_worker_role; /* opaque */

typedef struct vt_worker_role_opts {
	uv_loop_t *loop;
	vt_repl_host *host;        /* shared; closed after vt_worker_role_free */
	const char *data_dir;      /* replicas and the worker id */
	const char *listen;        /* internal gRPC host:port (port 0: any) */
	const char *pd;            /* PD addresses; NULL: this listen address
				      (a PD role on the same server) */
	int heartbeat_ms;          /* 0: the daemon's default */
	unsigned threads;          /* internal API request threads; 0: cores */
	int shutdown_grace_ms;
	const vt_shard_opts *shard; /* every replica's engine options (copied);
				       NULL: the daemon's */
} vt_worker_role_opts;

/* Loop thread, before uv_run: reopens the replicas found in data_dir and
 * serves the internal API (listening). Nothing talks to the PD yet:
 * vt_worker_role_run. On error the role is still returned for
 * vt_worker_role_stop and _free. VT_E*. */
int vt_worker_role_start(const vt_worker_role_opts *o, vt_worker_role **out,
			 vt_errmsg *err);
/* The internal gRPC server (a PD role may add its methods) and its
 * address ("host:port" with the real port). */
vt_grpc_server *vt_worker_role_grpc(vt_worker_role *w);
const char *vt_worker_role_addr(const vt_worker_role *w);
/* Starts registering, heartbeating and reconciling. VT_EIO. */
int vt_worker_role_run(vt_worker_role *w, vt_errmsg *err);
/* Whether the PD has accepted this worker (any thread). */
int vt_worker_role_registered(vt_worker_role *w);
/* Asks for a heartbeat now (any thread): a caller that just changed the
 * metadata need not wait a heartbeat period for the worker to see it. */
void vt_worker_role_kick(vt_worker_role *w);
/* Loop thread: stops heartbeats and the server; the loop may then end. */
void vt_worker_role_stop(vt_worker_role *w);
/* After the loop ended: joins the threads, detaches every replica (data
 * kept), frees. The host stays open. NULL: no-op. */
void vt_worker_role_free(vt_worker_role *w);

/* One internal API call on the calling thread, as if it came over gRPC
 * (the gateway's vt_gw_opts.local_call; `ud` is the worker). */
int vt_worker_call_local(void *ud, const char *method,
			 const ProtobufCMessage *req,
			 const ProtobufCMessageDescriptor *reply_desc,
			 ProtobufCMessage **reply, char *msg, size_t cap);

#endif
