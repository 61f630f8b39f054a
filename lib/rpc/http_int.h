/* http_int.h: the socket-free core of an HTTP/1.1 connection (llhttp glue,
 * limits, response framing), shared by http.c and the fuzz target. Not an
 * I/O layer: bytes come in through vt__http_conn_feed and leave through the
 * vt__http_io vtable, so the parser runs without sockets. */
#ifndef VT_RPC_HTTP_INT_H
#define VT_RPC_HTTP_INT_H

#include "http.h"

/* Private; one per connection. */
typedef struct vt__http_conn vt__http_conn;

/* What the core asks of its I/O layer. Called from inside vt__http_conn_*
 * calls (never re-entering them). */
typedef struct vt__http_io {
	/* Queue `len` bytes for sending; takes ownership of `buf` (vt_free it).
	 * Must later report completion with vt__http_conn_write_done, once per
	 * write, even if the connection is closing. */
	void (*write)(void *ud, uint8_t *buf, size_t len);
	/* Start (1) or stop (0) reading from the peer. */
	void (*set_reading)(void *ud, int on);
	/* (Re)arm the single connection timer; 0 disarms it. On expiry call
	 * vt__http_conn_timeout. */
	void (*set_timer)(void *ud, uint64_t ms);
	/* Close the transport (after queued writes if possible). Called once.
	 * When the transport is gone call vt__http_conn_release. */
	void (*close)(void *ud);
	/* The core is finished with the connection (closed and no request is
	 * still with the handler); `ud` may be freed. Called once, last. */
	void (*destroy)(void *ud);
} vt__http_io;

/* What every connection of a server shares. Owned by the server. */
typedef struct vt__http_cfg {
	vt_http_opts opts; /* defaults filled in */
	vt_http_handler_fn fn;
	void *ud;
} vt__http_cfg;

/* Fills zero fields of `o` with the defaults (cors_origin stays borrowed). */
void vt__http_opts_fill(vt_http_opts *o);

/* Creates a connection in the idle state (reading on, idle timer armed
 * through `io`). `cfg` and `io` must outlive it. NULL on ENOMEM. */
vt__http_conn *vt__http_conn_create(const vt__http_cfg *cfg,
				    const vt__http_io *io, void *io_ud);

/* Bytes read from the peer (the core copies what it keeps). */
void vt__http_conn_feed(vt__http_conn *c, const uint8_t *data, size_t len);
/* The peer has finished sending (read EOF). */
void vt__http_conn_eof(vt__http_conn *c);
/* A write queued through io->write finished (status < 0: failed). */
void vt__http_conn_write_done(vt__http_conn *c, int status);
/* The timer armed through io->set_timer fired. */
void vt__http_conn_timeout(vt__http_conn *c);
/* Server shutdown: close now if idle, else after the current response. */
void vt__http_conn_drain(vt__http_conn *c);
/* Ask the core to close (transport error, server stopping). */
void vt__http_conn_abort(vt__http_conn *c);
/* The transport is closed (after io->close, or by itself). The core frees
 * itself and calls io->destroy now, or when the pending request is
 * responded to. Call exactly once. */
void vt__http_conn_release(vt__http_conn *c);

#endif
