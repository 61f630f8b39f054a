/* http.h: the HTTP/1.1 server for the REST API, on a libuv loop with llhttp
 * parsing (keep-alive, pipelining, chunked bodies, limits, timeouts, CORS).
 * Not a router, not a client, no TLS and no HTTP/2 (gRPC lives in grpc.h).
 *
 * Threading rule: every function here runs on the loop thread, including
 * the handler and vt_http_respond*. Work done elsewhere comes back to the
 * loop (uv_async_send, or uv_queue_work's after-callback) before responding. */
#ifndef VT_RPC_HTTP_H
#define VT_RPC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/error.h"

/* Limits and behaviour. A zero field (NULL for cors_origin) takes the
 * default shown; docs/http.md has the same table. */
typedef struct vt_http_opts {
	size_t max_header_bytes;   /* 16 KiB: request line + headers; over -> 431 */
	size_t max_body_bytes;     /* 32 MiB: decoded body; over -> 413 + close */
	unsigned max_headers;      /* 100 header fields; over -> 431 */
	unsigned idle_timeout_ms;  /* 60 s: keep-alive connection with no request */
	unsigned read_timeout_ms;  /* 30 s: a whole request (headers and body)
				    * must arrive within this from its first
				    * byte, else 408 + close; also bounds how
				    * long a response may wait to be sent */
	unsigned max_connections;  /* 1024: more are answered 503 and closed */
	const char *cors_origin;   /* "*": Access-Control-Allow-Origin value on
				    * every response; OPTIONS is answered 204
				    * by the server. "" disables CORS (OPTIONS
				    * then reaches the handler). Copied. */
} vt_http_opts;

/* One parsed request. The public fields are read-only and valid until the
 * request is responded to (vt_http_respond*), which also frees it. */
typedef struct vt_http_req {
	const char *method;  /* "GET", "POST", ... (static string) */
	const char *path;    /* raw (not percent-decoded) path, before '?' */
	const char *query;   /* raw text after '?', "" if none */
	const uint8_t *body; /* decoded body (chunked removed); NULL if empty */
	size_t body_len;
	int http_minor;      /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
	int keep_alive;      /* 1 if the connection stays open after this */
	void *user;          /* free for the handler; the server ignores it */
} vt_http_req;

/* Called on the loop thread once per request, in the order requests arrive
 * on a connection. Must not block. Must eventually call vt_http_respond* on
 * `req` exactly once, now or later (on the loop thread); until then no
 * further request of that connection is read (back-pressure). */
typedef void (*vt_http_handler_fn)(void *ud, vt_http_req *req);

/* Opaque; owned by the caller of vt_http_server_create. */
typedef struct vt_http_server vt_http_server;

/* Called on the loop thread when a shutdown has finished. */
typedef void (*vt_http_shutdown_fn)(vt_http_server *srv, void *ud);

/* Creates a server on `loop` (not yet listening). `o` may be NULL for all
 * defaults; it is copied. `fn(ud, req)` handles every request except CORS
 * preflights. On success *out is set; release it with
 * vt_http_server_destroy. The process must ignore SIGPIPE (as for
 * grpc.h: a client that closed first must fail a write, not kill the
 * process). Errors: VT_EINVAL (NULL loop/fn), VT_ENOMEM. */
VT_API int vt_http_server_create(uv_loop_t *loop, const vt_http_opts *o,
				 vt_http_handler_fn fn, void *ud,
				 vt_http_server **out, vt_errmsg *err);

/* Binds and listens on host:port (IPv4 or IPv6 literal, e.g. "127.0.0.1",
 * "::"). port 0 picks an ephemeral port; see vt_http_server_port. Errors:
 * VT_EINVAL (bad address, already listening), VT_EIO/VT_EBUSY (bind). */
VT_API int vt_http_server_listen(vt_http_server *srv, const char *host,
				 int port, vt_errmsg *err);

/* The bound port (after a successful listen), else 0. */
VT_API int vt_http_server_port(const vt_http_server *srv);

/* Open connections, including closed ones whose request is still being
 * handled. For tests and metrics. */
VT_API unsigned vt_http_server_connections(const vt_http_server *srv);

/* Graceful shutdown: stops accepting, closes idle connections now, lets
 * requests already started finish (their responses carry Connection:
 * close), then calls fn(srv, ud) on the loop thread once every connection
 * is gone. Calling it twice is VT_ESHUTDOWN. `fn` may be NULL. */
VT_API int vt_http_server_shutdown(vt_http_server *srv, vt_http_shutdown_fn fn,
				   void *ud);

/* Frees the server. Precondition: its shutdown callback has run (the
 * listener handle exists from create on, so even a server that never
 * listened is shut down and the loop run before destroy). NULL is a no-op. */
VT_API void vt_http_server_destroy(vt_http_server *srv);

/* Returns the value of the first header named `name` (ASCII
 * case-insensitive), or NULL. Valid as long as `req`. */
VT_API const char *vt_http_req_header(const vt_http_req *req, const char *name);

/* Iterates the headers: *name and *value for index i in [0, count). */
VT_API unsigned vt_http_req_header_count(const vt_http_req *req);
VT_API void vt_http_req_header_at(const vt_http_req *req, unsigned i,
				  const char **name, const char **value);

/* Sends the response and frees `req` (it must not be used afterwards).
 * `content_type` may be NULL (then no Content-Type header); `body` is
 * copied. `extra_headers` (vt_http_respond_hdrs only) is NULL or complete
 * header lines, each ending in "\r\n" ("Retry-After: 1\r\n"). The server adds
 * Content-Length, CORS and, when the connection is to close, Connection:
 * close. HEAD responses omit the body. Returns 0; VT_ECANCELED if the
 * connection had already closed (nothing is sent, `req` is still freed);
 * VT_ENOMEM (the connection is closed, `req` is freed). */
VT_API int vt_http_respond(vt_http_req *req, int status,
			   const char *content_type, const void *body,
			   size_t len);
VT_API int vt_http_respond_hdrs(vt_http_req *req, int status,
				const char *content_type,
				const char *extra_headers, const void *body,
				size_t len);

/* Sends the standard JSON error and frees `req`, as vt_http_respond:
 *   {"error":{"code":"INVALID_ARGUMENT","message":"..."},"status":400}
 * `code` is a gRPC canonical code name ("NOT_FOUND"); the message is
 * formatted and JSON-escaped. */
VT_API int vt_http_respond_error(vt_http_req *req, int status, const char *code,
				 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Maps a VT_E* code to the HTTP status and canonical code name used in the
 * error shape (VT_EINVAL -> 400 "INVALID_ARGUMENT", VT_ENOENT -> 404
 * "NOT_FOUND", ...; unknown -> 500 "INTERNAL"). `code_out` may be NULL. */
VT_API int vt_http_status_from_err(int vt_err, const char **code_out);

/* Writes the JSON error body into buf (NUL-terminated, truncated to fit
 * `cap`) and returns the length it needed (snprintf style). */
VT_API size_t vt_http_error_json(char *buf, size_t cap, int status,
				 const char *code, const char *message);

#endif
