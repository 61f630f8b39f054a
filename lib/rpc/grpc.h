/* grpc.h: gRPC over HTTP/2 (h2c) on one libuv loop: a server with unary and
 * server-streaming methods answered synchronously or later, and a client.
 * Not TLS, not client-streaming/bidi, not compression (docs/grpc.md). */
#ifndef VT_RPC_GRPC_H
#define VT_RPC_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "base/error.h"

/* The gRPC status codes (grpc/doc/statuscodes.md). */
enum vt_grpc_status {
	VT_GRPC_OK = 0,
	VT_GRPC_CANCELLED = 1,
	VT_GRPC_UNKNOWN = 2,
	VT_GRPC_INVALID_ARGUMENT = 3,
	VT_GRPC_DEADLINE_EXCEEDED = 4,
	VT_GRPC_NOT_FOUND = 5,
	VT_GRPC_ALREADY_EXISTS = 6,
	VT_GRPC_PERMISSION_DENIED = 7,
	VT_GRPC_RESOURCE_EXHAUSTED = 8,
	VT_GRPC_FAILED_PRECONDITION = 9,
	VT_GRPC_ABORTED = 10,
	VT_GRPC_OUT_OF_RANGE = 11,
	VT_GRPC_UNIMPLEMENTED = 12,
	VT_GRPC_INTERNAL = 13,
	VT_GRPC_UNAVAILABLE = 14,
	VT_GRPC_DATA_LOSS = 15,
	VT_GRPC_UNAUTHENTICATED = 16,
};

/* Maps a VT_E* code (0 -> OK) to the status a client should see; the table
 * and its reasons are in docs/grpc.md. */
VT_API int vt_grpc_status_from_err(int vt_err);
/* The reverse, for a caller that relays another server's answer: the
 * VT_E* code whose status this is (RESOURCE_EXHAUSTED: VT_EOVERLOAD,
 * UNAVAILABLE: VT_EBUSY, FAILED_PRECONDITION: VT_EREADONLY, unknown:
 * VT_EIO); 0 for OK. */
VT_API int vt_grpc_err_from_status(int status);
/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for codes out of range. */
VT_API const char *vt_grpc_status_name(int status);

/* Frees a message handed out by this library (client replies). NULL is a
 * no-op. */
VT_API void vt_grpc_msg_free(ProtobufCMessage *msg);
/* Decodes `len` bytes as a `desc` message with the allocator
 * vt_grpc_msg_free expects, for a reply that did not cross a connection
 * (an in-process call). NULL: undecodable or out of memory. */
VT_API ProtobufCMessage *vt_grpc_msg_unpack(
	const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len);

/* ---- server ------------------------------------------------------------ */

typedef struct vt_grpc_server vt_grpc_server;
typedef struct vt_grpc_call vt_grpc_call;

typedef struct vt_grpc_server_opts {
	size_t max_recv_msg;     /* request message cap (16 MiB); over: RESOURCE_EXHAUSTED */
	size_t max_send_msg;     /* reply message cap (16 MiB); over: RESOURCE_EXHAUSTED */
	size_t max_metadata;     /* request header bytes per call (16 KiB) */
	uint32_t max_concurrent_streams; /* per connection, in SETTINGS (100) */
	uint32_t max_connections;        /* more are accepted and closed (1024) */
	size_t write_queue_max;  /* bytes handed to the socket and not yet written
				  * before the connection stops producing and reading (1 MiB) */
	size_t stream_queue_max; /* bytes a call may have queued before
				  * vt_grpc_call_send says VT_EOVERLOAD (4 MiB) */
	uint64_t keepalive_ms;         /* idle PING interval, 0 = off (60 s) */
	uint64_t keepalive_timeout_ms; /* no PING ACK within this: close (20 s) */
	int backlog;                   /* listen(2) backlog (511) */
} vt_grpc_server_opts;

/* Fills `o` with the defaults above. */
VT_API void vt_grpc_server_opts_default(vt_grpc_server_opts *o);

/* A handler runs on the loop thread once the whole request has arrived. It
 * receives a reference to the call that it (or whoever it hands the call to)
 * must release by exactly one vt_grpc_call_reply / _reply_bytes /
 * _finish, now or later (on the loop thread). The call object stays valid
 * until then even if the client cancels, the deadline passes or the
 * connection closes; in those cases the answer is dropped. */
typedef void (*vt_grpc_handler_fn)(vt_grpc_call *call, void *ud);

enum vt_grpc_kind {
	VT_GRPC_UNARY = 0,         /* exactly one reply (vt_grpc_call_reply) */
	VT_GRPC_SERVER_STREAM = 1, /* vt_grpc_call_send * n, then _finish */
};

typedef struct vt_grpc_method {
	const char *path; /* "/vectron.v1.VectronService/Search" (copied) */
	int kind;         /* enum vt_grpc_kind */
	/* Decodes the request with protobuf_c_message_unpack (undecodable:
	 * INVALID_ARGUMENT). NULL: the handler takes the raw bytes. */
	const ProtobufCMessageDescriptor *input;
	vt_grpc_handler_fn handler;
	void *ud;
} vt_grpc_method;

/* Creates a server on `loop` (not yet listening). `o` NULL: defaults.
 * The process must ignore SIGPIPE (servers and clients alike): libuv writes
 * with write(2), and a peer that closed first would otherwise kill the
 * process instead of failing the write with EPIPE. VT_ENOMEM. */
VT_API int vt_grpc_server_new(uv_loop_t *loop, const vt_grpc_server_opts *o,
			      vt_grpc_server **out);

/* Registers a method (before or after listen). VT_EEXIST if the path is
 * already there, VT_EINVAL for a path not of the form "/svc/method". */
VT_API int vt_grpc_server_add_method(vt_grpc_server *s, const vt_grpc_method *m);

/* Binds and listens on host:port (port 0: ephemeral; see _port). Errors are
 * VT_E* codes with a message in `err` (may be NULL). */
VT_API int vt_grpc_server_listen(vt_grpc_server *s, const char *host, int port,
				 vt_errmsg *err);

/* The port actually bound, or -1 before listen. */
VT_API int vt_grpc_server_port(const vt_grpc_server *s);

/* Number of open connections and of calls not yet finished (for tests and
 * metrics). */
VT_API size_t vt_grpc_server_connections(const vt_grpc_server *s);
VT_API size_t vt_grpc_server_active_calls(const vt_grpc_server *s);

/* Graceful shutdown: stops accepting, sends GOAWAY on every connection (new
 * streams are refused, those in flight go on), closes each connection once
 * its calls are done, and force-closes whatever is left after `grace_ms`
 * (their calls see a cancellation). Then `done` runs (may be NULL) and the
 * server is freed: `s` is invalid after `done` returns. Calls the
 * application still holds stay valid (answers are dropped). Call once. */
typedef void (*vt_grpc_server_done_fn)(void *ud);
VT_API void vt_grpc_server_close(vt_grpc_server *s, uint64_t grace_ms,
				 vt_grpc_server_done_fn done, void *ud);

/* ---- the server call (all on the loop thread) ---- */

/* "/svc/method". Valid as long as the call. */
VT_API const char *vt_grpc_call_method(const vt_grpc_call *c);

/* The decoded request (method registered with an input descriptor), or NULL.
 * Owned by the call. */
VT_API const ProtobufCMessage *vt_grpc_call_request(const vt_grpc_call *c);

/* The raw request message bytes (without the 5-byte gRPC prefix). Owned by
 * the call. */
VT_API const uint8_t *vt_grpc_call_request_bytes(const vt_grpc_call *c,
						 size_t *len_out);

/* The first value of request header `key` (lower case, e.g.
 * "authorization"), NUL-terminated, or NULL; *len_out (may be NULL) gets its
 * length. "-bin" values are returned as sent (base64). Owned by the call. */
VT_API const char *vt_grpc_call_metadata(const vt_grpc_call *c, const char *key,
					 size_t *len_out);

/* The deadline from grpc-timeout as a vt_clock_mono_ns() value, or 0 for
 * none. At the deadline the server answers DEADLINE_EXCEEDED itself. */
VT_API uint64_t vt_grpc_call_deadline_ns(const vt_grpc_call *c);

/* 1 once the answer can no longer be delivered: the client cancelled, the
 * deadline passed or the connection closed. */
VT_API int vt_grpc_call_is_cancelled(const vt_grpc_call *c);

/* Runs `fn` once if the call is cancelled before the application finishes
 * it (the application still has to finish it). NULL clears. */
typedef void (*vt_grpc_call_fn)(vt_grpc_call *c, void *ud);
VT_API void vt_grpc_call_on_cancel(vt_grpc_call *c, vt_grpc_call_fn fn, void *ud);

/* Runs `fn` each time the call's queued reply bytes have all been handed to
 * nghttp2 (streaming back-pressure; see vt_grpc_call_send). NULL clears. */
VT_API void vt_grpc_call_on_drain(vt_grpc_call *c, vt_grpc_call_fn fn, void *ud);

/* Unary answer: serializes `msg` (it can be freed right after) and finishes
 * with OK. Releases the application's reference. Returns 0, VT_ECANCELED if
 * the answer was dropped, VT_ELIMIT if the message is over max_send_msg (the
 * client gets RESOURCE_EXHAUSTED), VT_ENOMEM (the client gets INTERNAL). */
VT_API int vt_grpc_call_reply(vt_grpc_call *c, const ProtobufCMessage *msg);
VT_API int vt_grpc_call_reply_bytes(vt_grpc_call *c, const void *data, size_t len);

/* Streaming: queues one message. Does not release the reference. VT_EOVERLOAD
 * when stream_queue_max bytes are already queued (wait for on_drain),
 * VT_ECANCELED if dropped, VT_ELIMIT over max_send_msg, VT_EINVAL on a
 * unary call or after finish. */
VT_API int vt_grpc_call_send(vt_grpc_call *c, const ProtobufCMessage *msg);
VT_API int vt_grpc_call_send_bytes(vt_grpc_call *c, const void *data, size_t len);

/* Ends the call with `status` and `message` (may be NULL; sent
 * percent-encoded in grpc-message) after the queued messages. Releases the
 * application's reference. Returns 0 or VT_ECANCELED (dropped). */
VT_API int vt_grpc_call_finish(vt_grpc_call *c, int status, const char *message);

/* Extra references, for code that keeps the call past its finish. */
VT_API void vt_grpc_call_ref(vt_grpc_call *c);
VT_API void vt_grpc_call_unref(vt_grpc_call *c);

/* ---- client ------------------------------------------------------------ */

typedef struct vt_grpc_client vt_grpc_client;
typedef struct vt_grpc_ccall vt_grpc_ccall;

typedef struct vt_grpc_client_opts {
	size_t max_recv_msg;     /* reply message cap (16 MiB); over: RESOURCE_EXHAUSTED */
	uint64_t connect_timeout_ms; /* (5 s): pending calls fail UNAVAILABLE */
	size_t write_queue_max;  /* as for the server (1 MiB) */
} vt_grpc_client_opts;

VT_API void vt_grpc_client_opts_default(vt_grpc_client_opts *o);

/* A client for one peer. It connects on the first call and again on the
 * first call after the connection failed, closed or received GOAWAY.
 * `host` is an IPv4/IPv6 literal or a name (resolved with getaddrinfo on the
 * loop's thread pool). VT_EINVAL, VT_ENOMEM. */
VT_API int vt_grpc_client_new(uv_loop_t *loop, const char *host, int port,
			      const vt_grpc_client_opts *o, vt_grpc_client **out);

/* Cancels every call (their on_done runs with CANCELLED before this
 * returns), closes the connections and frees the client once libuv has
 * closed its handles (keep running the loop). */
VT_API void vt_grpc_client_close(vt_grpc_client *c);

typedef struct vt_grpc_md {
	const char *key; /* lower case */
	const char *value;
} vt_grpc_md;

typedef struct vt_grpc_call_opts {
	uint64_t timeout_ms;   /* 0: no deadline; sent as grpc-timeout and
				* enforced locally (DEADLINE_EXCEEDED) */
	const vt_grpc_md *md;  /* extra request headers (copied) */
	size_t n_md;
} vt_grpc_call_opts;

/* One reply message. `msg` is decoded with the call's reply descriptor (or
 * NULL without one: `raw`/`len` hold the bytes, valid during the callback).
 * The callback owns `msg` and frees it with vt_grpc_msg_free. */
typedef void (*vt_grpc_on_msg_fn)(void *ud, ProtobufCMessage *msg,
				  const uint8_t *raw, size_t len);
/* The end of the call, exactly once: the status from the trailers, or one
 * made locally (UNAVAILABLE: connection failed or lost; DEADLINE_EXCEEDED;
 * CANCELLED; INTERNAL: undecodable reply). `message` is decoded and valid
 * during the callback; never NULL. The call handle is invalid after. */
typedef void (*vt_grpc_on_done_fn)(void *ud, int status, const char *message);

/* Starts a call of `path` with request `req` (serialized now; NULL with
 * raw/raw_len for bytes). Unary and server-streaming calls are the same:
 * on_msg (may be NULL) runs per reply message, on_done once. `*out` (may be
 * NULL) gets a handle for vt_grpc_client_cancel, valid until on_done.
 * Returns 0 (on_done will run) or VT_ENOMEM / VT_EINVAL (it will not). */
VT_API int vt_grpc_client_call(vt_grpc_client *c, const char *path,
			       const ProtobufCMessage *req, const void *raw,
			       size_t raw_len,
			       const ProtobufCMessageDescriptor *reply_desc,
			       const vt_grpc_call_opts *o,
			       vt_grpc_on_msg_fn on_msg, vt_grpc_on_done_fn on_done,
			       void *ud, vt_grpc_ccall **out);

/* Cancels a call (RST_STREAM CANCEL); its on_done runs with CANCELLED before
 * this returns. */
VT_API void vt_grpc_client_cancel(vt_grpc_ccall *call);

#endif
