/* grpc_int.h: what grpc_server.c, grpc_client.c and grpc_common.c share
 * (framing, grpc-timeout, percent-encoding, the protobuf-c allocator), and
 * the socket-free connection hooks the fuzz target drives. Not public. */
#ifndef VT_RPC_GRPC_INT_H
#define VT_RPC_GRPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "rpc/grpc.h"

#define VT__GRPC_CT "application/grpc"

/* protobuf-c allocations go through vt_malloc. */
extern ProtobufCAllocator vt__grpc_pb_alloc;

/* Appends one length-prefixed message (`msg` packed, or `raw`/`len`) to
 * `out`. VT_ELIMIT if the message is over `max` (nothing appended),
 * VT_ENOMEM. */
int vt__grpc_frame(vt_buf *out, const ProtobufCMessage *msg, const void *raw,
		   size_t len, size_t max);

/* Looks at the bytes `p`/`n` for one whole message: 1 and *flags, *msg,
 * *msg_len set if there is one (it takes 5 + *msg_len bytes), 0 if more
 * bytes are needed, VT_ELIMIT if the declared length is over `max` (then
 * *msg_len holds it). */
int vt__grpc_deframe(const uint8_t *p, size_t n, size_t max, int *flags,
		     const uint8_t **msg, size_t *msg_len);

/* Parses a grpc-timeout value ("100m", "5S": 1-8 digits and one of
 * HMSmun) into nanoseconds (saturating). VT_EINVAL if malformed. */
int vt__grpc_timeout_parse(const char *s, size_t n, uint64_t *ns_out);
/* Formats milliseconds as a grpc-timeout value into `out` (>= 16 bytes). */
void vt__grpc_timeout_format(uint64_t ms, char *out);

/* grpc-message percent-encoding. Both return vt_malloc'd NUL-terminated
 * strings (NULL on allocation failure). */
char *vt__grpc_pct_encode(const char *s);
char *vt__grpc_pct_decode(const char *s, size_t n);

/* ---- socket-free server connections (tests/fuzz/fuzz_grpc.c) ---- */
struct vt__grpc_sconn;
typedef void (*vt__grpc_sink_fn)(void *ud, const uint8_t *p, size_t n);
/* A connection whose output goes to `sink` (synchronously, never blocks). */
int vt__grpc_sconn_new_test(vt_grpc_server *s, vt__grpc_sink_fn sink, void *ud,
			    struct vt__grpc_sconn **out);
/* Feeds bytes as if read from the socket. Returns 0, or VT_ESHUTDOWN once
 * the connection has decided to close (later feeds are ignored). */
int vt__grpc_sconn_feed(struct vt__grpc_sconn *c, const uint8_t *p, size_t n);
/* Closes and releases a test connection (after libuv runs its close
 * callbacks). */
void vt__grpc_sconn_release(struct vt__grpc_sconn *c);

#endif
