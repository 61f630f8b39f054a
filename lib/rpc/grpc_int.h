/* grpc_int.h: what grpc_server.c, grpc_client.c and grpc_common.c share
 * (framing, grpc-timeout, percent-encoding, the protobuf-c allocator, the
 * nghttp2-to-libuv byte plumbing of a connection), and the socket-free
 * connection hooks the fuzz target drives. Not public. */
#ifndef VT_RPC_GRPC_INT_H
#define VT_RPC_GRPC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "base/buf.h"
#include "rpc/grpc.h"

#define VT__GRPC_CT "application/grpc"

/* What one uv_write request takes from nghttp2 at most. */
#define VT__GRPC_CHUNK (64 * 1024)

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

/* A header for nghttp2 (name and value are not copied: they must live
 * until nghttp2 has taken them). */
static inline nghttp2_nv vt__grpc_nv(const char *name, const char *value)
{
	nghttp2_nv nv = { (uint8_t *)name, (uint8_t *)value, strlen(name),
			  strlen(value), NGHTTP2_NV_FLAG_NONE };
	return nv;
}

/* ---- a connection's bytes: nghttp2 session <-> libuv TCP handle ---- */

typedef void (*vt__grpc_sink_fn)(void *ud, const uint8_t *p, size_t n);

/* The part of a connection both ends share, embedded as the first member
 * of the server's and the client's connection structs (so the owner's
 * `flush` can cast back). The owner creates `tcp` and `ng` and sets
 * `flush`; everything runs on the loop thread. */
struct vt__grpc_io {
	uv_tcp_t tcp;
	nghttp2_session *ng;
	size_t inflight; /* bytes in uv_write requests */
	int busy;        /* inside nghttp2 recv/send */
	int again;       /* a flush was asked while busy */
	int reading;     /* uv_read_start is on */
	int dead;        /* stop reading; close once writes are out */
	int closing;     /* handles are being closed */
	vt__grpc_sink_fn sink; /* when set, output goes here, not to `tcp` */
	void *sink_ud;
	/* Called when a write completes (unless closing): writes more. */
	void (*flush)(struct vt__grpc_io *io);
};

/* Writes what nghttp2 has to send, in uv_write requests of up to
 * VT__GRPC_CHUNK bytes (or to `sink`), while fewer than `max` bytes are in
 * flight, and again while a flush was asked meanwhile (`again`). Called
 * inside nghttp2 (`busy`), it only sets `again` and returns 0; else 1.
 * `stop_when_dead`: take nothing more from nghttp2 once `dead` is set (else
 * what it has is still taken, so its stream callbacks run, and dropped). */
int vt__grpc_io_send(struct vt__grpc_io *io, size_t max, int stop_when_dead);

/* Back-pressure: reads from `tcp` while the connection is not dead and
 * fewer than `max` bytes are in flight; stops reading otherwise. */
void vt__grpc_io_pace(struct vt__grpc_io *io, size_t max, uv_alloc_cb on_alloc,
		      uv_read_cb on_read);

/* 1 when the connection should close: nothing in flight, and it is dead or
 * nghttp2 wants neither to read nor to write. `ng` must be set. */
int vt__grpc_io_idle(const struct vt__grpc_io *io);

/* ---- socket-free server connections (tests/fuzz/fuzz_grpc.c) ---- */
struct vt__grpc_sconn;
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
