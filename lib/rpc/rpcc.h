/* rpcc.h: blocking gRPC calls from any thread. One libuv loop on a thread
 * of its own keeps a vt_grpc_client per peer address (connected on first
 * use, reconnected after a failure); a caller hands it a call and sleeps
 * until the answer. For code that runs on request threads and talks to
 * other Vectron processes (the gateway to workers and the PD). A small
 * circuit breaker per address counts failures so callers can avoid a
 * peer that keeps failing. */
#ifndef VT_RPC_RPCC_H
#define VT_RPC_RPCC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/error.h"

typedef struct vt_rpcc vt_rpcc; /* opaque */

typedef struct vt_rpcc_opts {
	uint64_t connect_timeout_ms; /* 2000 */
	size_t max_recv_msg;         /* 64 MiB */
	unsigned breaker_failures;   /* consecutive failures that open the
					breaker of an address, 3 */
	unsigned breaker_open_ms;    /* how long it stays open, 2000 */
} vt_rpcc_opts;

VT_API void vt_rpcc_opts_default(vt_rpcc_opts *o);

/* Starts the loop thread. `o` NULL: defaults. VT_ENOMEM, VT_EIO. */
VT_API int vt_rpcc_open(const vt_rpcc_opts *o, vt_rpcc **out, vt_errmsg *err);

/* Fails the calls in flight (CANCELLED), closes every connection, joins
 * the thread and frees. No call may start after. NULL is a no-op. */
VT_API void vt_rpcc_close(vt_rpcc *c);

/* Calls `path` ("/pkg.Service/Method") on `addr` ("host:port") with `req`
 * and waits at most `timeout_ms` (0: none). Returns the gRPC status: 0 with
 * *reply set (the caller frees it with vt_grpc_msg_free), or the status
 * with *reply NULL and the server's (or a local) message in `msg` (never
 * NULL; `msg_cap` bytes, truncated). Statuses made locally: UNAVAILABLE
 * (connection failed or lost, bad address), DEADLINE_EXCEEDED, CANCELLED
 * (closing), INTERNAL (undecodable reply). Any thread but the loop's. */
VT_API int vt_rpcc_call(vt_rpcc *c, const char *addr, const char *path,
			const ProtobufCMessage *req,
			const ProtobufCMessageDescriptor *reply_desc,
			uint64_t timeout_ms, ProtobufCMessage **reply,
			char *msg, size_t msg_cap);

/* 0 while the breaker of `addr` is open (it failed breaker_failures times
 * in a row, the last less than breaker_open_ms ago), else 1. An address
 * never called is healthy. */
VT_API int vt_rpcc_healthy(vt_rpcc *c, const char *addr);

#endif
