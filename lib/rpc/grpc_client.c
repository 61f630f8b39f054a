/* grpc_client.c: the gRPC client: one HTTP/2 connection per peer at a time,
 * opened on demand (again after a failure or a GOAWAY), calls with
 * deadlines, metadata, streaming replies and cancellation. Not a pool or a
 * load balancer, and not thread-safe: everything runs on the loop thread. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "base/alloc.h"
#include "base/log.h"
#include "rpc/grpc_int.h"

#define MOD "grpc"

struct vt_grpc_client {
	uv_loop_t *loop;
	char *host;
	char authority[300];
	int port;
	vt_grpc_client_opts o;
	struct cconn *cur;   /* where new calls go; NULL: connect anew */
	struct cconn *conns; /* every connection, draining ones too */
	int closing;
};

enum { C_RESOLVING, C_CONNECTING, C_READY };

struct cconn {
	struct vt__grpc_io io; /* first: io.flush casts back */
	vt_grpc_client *cl;
	struct cconn *prev, *next;
	int state;
	uv_getaddrinfo_t gai;
	int gai_pending;
	uv_connect_t creq;
	uv_timer_t timer; /* connect timeout */
	int handles;
	struct vt_grpc_ccall *calls;
	uint8_t rbuf[VT__GRPC_CHUNK];
};

struct vt_grpc_ccall {
	struct cconn *conn;
	struct vt_grpc_ccall *prev, *next;
	int32_t sid;
	char *path;
	vt_grpc_md *md; /* copies */
	size_t n_md;
	char timeout[16];
	vt_buf req;
	size_t req_off;
	vt_buf in;
	const ProtobufCMessageDescriptor *desc;
	vt_grpc_on_msg_fn on_msg;
	vt_grpc_on_done_fn on_done;
	void *ud;
	uint64_t timeout_ms;
	uv_timer_t dl;
	int dl_open;
	int status; /* -1 until grpc-status arrives */
	char *msg;
	int http_status;
	int done;
	int retried;
};

static void cconn_flush(struct cconn *c);
static void cconn_close(struct cconn *c);
static int cconn_new(vt_grpc_client *cl, struct cconn **out);
static int ccall_submit(struct cconn *c, struct vt_grpc_ccall *call);

void vt_grpc_client_opts_default(vt_grpc_client_opts *o)
{
	o->max_recv_msg = 16u << 20;
	o->connect_timeout_ms = 5000;
	o->write_queue_max = 1u << 20;
}

/* ---- calls ---- */

static void ccall_free(struct vt_grpc_ccall *call)
{
	vt_free(call->path);
	for (size_t i = 0; i < call->n_md; i++) {
		vt_free((char *)call->md[i].key);
		vt_free((char *)call->md[i].value);
	}
	vt_free(call->md);
	vt_buf_free(&call->req);
	vt_buf_free(&call->in);
	vt_free(call->msg);
	vt_free(call);
}

static void on_dl_closed(uv_handle_t *h)
{
	ccall_free(h->data);
}

static void unlink_call(struct vt_grpc_ccall *call)
{
	struct cconn *c = call->conn;
	if (!c)
		return;
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	if (call->sid > 0 && c->io.ng)
		nghttp2_session_set_stream_user_data(c->io.ng, call->sid, NULL);
	call->conn = NULL;
}

/* Ends a call exactly once: on_done, then the memory goes. */
static void ccall_done(struct vt_grpc_ccall *call, int status, const char *msg)
{
	if (call->done)
		return;
	call->done = 1;
	unlink_call(call);
	call->on_done(call->ud, status, msg ? msg : "");
	if (call->dl_open) {
		call->dl_open = 0;
		uv_close((uv_handle_t *)&call->dl, on_dl_closed);
	} else {
		ccall_free(call);
	}
}

/* Stops the stream (RST_STREAM CANCEL) and ends the call locally. */
static void ccall_abort(struct vt_grpc_ccall *call, int status, const char *msg)
{
	struct cconn *c = call->conn;
	if (c && c->io.ng && call->sid > 0) {
		nghttp2_submit_rst_stream(c->io.ng, NGHTTP2_FLAG_NONE, call->sid,
					  NGHTTP2_CANCEL);
		ccall_done(call, status, msg);
		cconn_flush(c);
	} else {
		ccall_done(call, status, msg);
	}
}

static void on_deadline(uv_timer_t *t)
{
	ccall_abort(t->data, VT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

void vt_grpc_client_cancel(vt_grpc_ccall *call)
{
	ccall_abort(call, VT_GRPC_CANCELLED, "cancelled by the client");
}

static ssize_t req_read(nghttp2_session *ng, int32_t sid, uint8_t *buf,
			size_t length, uint32_t *flags,
			nghttp2_data_source *src, void *ud)
{
	struct vt_grpc_ccall *call = src->ptr;
	size_t n = call->req.len - call->req_off;
	if (n > length)
		n = length;
	memcpy(buf, call->req.data + call->req_off, n);
	call->req_off += n;
	if (call->req_off == call->req.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int ccall_submit(struct cconn *c, struct vt_grpc_ccall *call)
{
	size_t n = 0, cap = 7 + call->n_md;
	nghttp2_nv *nv = vt_malloc(cap * sizeof *nv);
	if (!nv)
		return VT_ENOMEM;
	nv[n++] = vt__grpc_nv(":method", "POST");
	nv[n++] = vt__grpc_nv(":scheme", "http");
	nv[n++] = vt__grpc_nv(":path", call->path);
	nv[n++] = vt__grpc_nv(":authority", c->cl->authority);
	nv[n++] = vt__grpc_nv("content-type", VT__GRPC_CT);
	nv[n++] = vt__grpc_nv("te", "trailers");
	if (call->timeout[0])
		nv[n++] = vt__grpc_nv("grpc-timeout", call->timeout);
	for (size_t i = 0; i < call->n_md; i++)
		nv[n++] = vt__grpc_nv(call->md[i].key, call->md[i].value);
	nghttp2_data_provider prd = { .source.ptr = call,
				      .read_callback = req_read };
	int32_t sid = nghttp2_submit_request(c->io.ng, NULL, nv, n, &prd, call);
	vt_free(nv);
	if (sid < 0)
		return VT_EINVAL;
	call->sid = sid;
	return 0;
}

/* ---- nghttp2 callbacks ---- */

static int cb_header(nghttp2_session *ng, const nghttp2_frame *f,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct vt_grpc_ccall *call =
		nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!call || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nl == 7 && !memcmp(name, ":status", 7)) {
		int v = 0;
		for (size_t i = 0; i < vl && i < 4; i++)
			v = v * 10 + (value[i] - '0');
		call->http_status = v;
	} else if (nl == 11 && !memcmp(name, "grpc-status", 11)) {
		int v = 0;
		for (size_t i = 0; i < vl && i < 4; i++)
			v = v * 10 + (value[i] >= '0' && value[i] <= '9'
					      ? value[i] - '0'
					      : 0);
		call->status = v;
	} else if (nl == 12 && !memcmp(name, "grpc-message", 12)) {
		vt_free(call->msg);
		call->msg = vt__grpc_pct_decode((const char *)value, vl);
	}
	return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid,
			 const uint8_t *data, size_t len, void *ud)
{
	struct cconn *c = ud;
	struct vt_grpc_ccall *call = nghttp2_session_get_stream_user_data(ng, sid);
	if (!call)
		return 0;
	size_t max = c->cl->o.max_recv_msg;
	if (vt_buf_append(&call->in, data, len)) {
		ccall_abort(call, VT_GRPC_RESOURCE_EXHAUSTED,
			    "reply larger than the client's max receive size");
		return 0;
	}
	size_t off = 0;
	for (;;) {
		int fl;
		const uint8_t *m;
		size_t ml;
		int rc = vt__grpc_deframe(call->in.data + off,
					  call->in.len - off, max, &fl, &m, &ml);
		if (rc == 0)
			break;
		if (rc < 0) {
			ccall_abort(call, VT_GRPC_RESOURCE_EXHAUSTED,
				    "reply larger than the client's max "
				    "receive size");
			return 0;
		}
		off += 5 + ml;
		if (fl & 1) {
			ccall_abort(call, VT_GRPC_INTERNAL,
				    "compressed reply (not supported)");
			return 0;
		}
		ProtobufCMessage *pm = NULL;
		if (call->desc) {
			pm = protobuf_c_message_unpack(call->desc,
						       &vt__grpc_pb_alloc, ml, m);
			if (!pm) {
				ccall_abort(call, VT_GRPC_INTERNAL,
					    "cannot decode the reply");
				return 0;
			}
		}
		if (call->on_msg)
			call->on_msg(call->ud, pm, m, ml);
		else
			vt_grpc_msg_free(pm);
		/* on_msg may have cancelled the call or closed the client. */
		if (c->io.closing)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		if (nghttp2_session_get_stream_user_data(ng, sid) != call)
			return 0;
	}
	if (off) {
		memmove(call->in.data, call->in.data + off, call->in.len - off);
		call->in.len -= off;
	}
	return 0;
}

/* Puts `call` on the client's current connection (opening one if needed),
 * submitting it if that connection is ready. Ends the call on failure. */
static void ccall_attach(vt_grpc_client *cl, struct vt_grpc_ccall *call)
{
	struct cconn *c = cl->cur;
	if (!c) {
		if (cconn_new(cl, &c)) {
			ccall_done(call, VT_GRPC_UNAVAILABLE, "out of memory");
			return;
		}
		/* A synchronous failure already closed it. */
		cl->cur = c->io.closing ? NULL : c;
	}
	if (c->io.closing) {
		ccall_done(call, VT_GRPC_UNAVAILABLE,
			   "cannot connect (address or socket error)");
		return;
	}
	call->conn = c;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	if (c->state == C_READY) {
		if (ccall_submit(c, call)) {
			ccall_done(call, VT_GRPC_INTERNAL,
				   "cannot submit the request");
			return;
		}
		cconn_flush(c);
	}
}

/* A refused stream was not processed by the server (GOAWAY, RFC 9113
 * §8.7), so it is safe to send it again, once, on a fresh connection. */
static void ccall_retry(struct vt_grpc_ccall *call)
{
	vt_grpc_client *cl = call->conn->cl;
	unlink_call(call);
	call->retried = 1;
	call->sid = 0;
	call->req_off = 0;
	vt_buf_reset(&call->in);
	call->status = -1;
	call->http_status = 0;
	vt_free(call->msg);
	call->msg = NULL;
	ccall_attach(cl, call);
}

static int http_to_grpc(int http)
{
	switch (http) {
	case 400: return VT_GRPC_INTERNAL;
	case 401: return VT_GRPC_UNAUTHENTICATED;
	case 403: return VT_GRPC_PERMISSION_DENIED;
	case 404: return VT_GRPC_UNIMPLEMENTED;
	case 429: case 502: case 503: case 504: return VT_GRPC_UNAVAILABLE;
	default: return VT_GRPC_UNKNOWN;
	}
}

static int cb_stream_close(nghttp2_session *ng, int32_t sid, uint32_t err,
			   void *ud)
{
	struct vt_grpc_ccall *call = nghttp2_session_get_stream_user_data(ng, sid);
	if (!call)
		return 0;
	char buf[96];
	if (call->status >= 0) {
		if (call->status == 0 && call->in.len)
			ccall_done(call, VT_GRPC_INTERNAL,
				   "reply stream ended inside a message");
		else
			ccall_done(call, call->status, call->msg);
	} else if (call->http_status && call->http_status != 200) {
		snprintf(buf, sizeof buf, "HTTP status %d", call->http_status);
		ccall_done(call, http_to_grpc(call->http_status), buf);
	} else if (err == NGHTTP2_REFUSED_STREAM && !call->retried &&
		   !call->http_status && !call->conn->cl->closing) {
		ccall_retry(call);
	} else if (err == NGHTTP2_REFUSED_STREAM) {
		ccall_done(call, VT_GRPC_UNAVAILABLE,
			   "stream refused by the server (retry)");
	} else {
		snprintf(buf, sizeof buf, "stream closed without a status (%s)",
			 nghttp2_http2_strerror(err));
		ccall_done(call, err == NGHTTP2_CANCEL ? VT_GRPC_CANCELLED
						       : VT_GRPC_INTERNAL,
			   buf);
	}
	return 0;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct cconn *c = ud;
	/* The server is going away: new calls go to a new connection; this
	 * one finishes what it has. */
	if (f->hd.type == NGHTTP2_GOAWAY && c->cl->cur == c)
		c->cl->cur = NULL;
	return 0;
}

static nghttp2_session_callbacks *client_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;
	if (!cbs) {
		if (nghttp2_session_callbacks_new(&cbs))
			return NULL;
		nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
			cbs, cb_data_chunk);
		nghttp2_session_callbacks_set_on_stream_close_callback(
			cbs, cb_stream_close);
		nghttp2_session_callbacks_set_on_frame_recv_callback(
			cbs, cb_frame_recv);
	}
	return cbs;
}

/* ---- connections ---- */

static void cconn_maybe_free(struct cconn *c)
{
	if (c->handles || c->gai_pending || !c->io.closing)
		return;
	vt_grpc_client *cl = c->cl;
	if (c->prev)
		c->prev->next = c->next;
	else
		cl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	vt_free(c);
	if (cl->closing && !cl->conns) {
		vt_free(cl->host);
		vt_free(cl);
	}
}

static void on_cconn_handle_closed(uv_handle_t *h)
{
	struct cconn *c = h->data;
	c->handles--;
	cconn_maybe_free(c);
}

/* Fails every call left with UNAVAILABLE (or CANCELLED when the client is
 * closing) and closes. */
static void cconn_fail(struct cconn *c, const char *why)
{
	if (c->io.closing)
		return;
	c->io.closing = 1;
	c->io.dead = 1;
	if (c->cl->cur == c)
		c->cl->cur = NULL;
	char buf[400];
	snprintf(buf, sizeof buf, "connection to %s: %.80s", c->cl->authority,
		 why);
	while (c->calls)
		ccall_done(c->calls,
			   c->cl->closing ? VT_GRPC_CANCELLED
					  : VT_GRPC_UNAVAILABLE,
			   c->cl->closing ? "client closed" : buf);
	/* Inside nghttp2 (a callback closed the client): the caller deletes
	 * the session when nghttp2 returns. */
	if (c->io.ng && !c->io.busy) {
		nghttp2_session_del(c->io.ng);
		c->io.ng = NULL;
	}
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai);
	uv_close((uv_handle_t *)&c->timer, on_cconn_handle_closed);
	uv_close((uv_handle_t *)&c->io.tcp, on_cconn_handle_closed);
}

static void cconn_close(struct cconn *c)
{
	cconn_fail(c, "closed");
}

static void cconn_check(struct cconn *c)
{
	if (c->io.closing || c->io.busy || !c->io.ng)
		return;
	if (vt__grpc_io_idle(&c->io))
		cconn_fail(c, c->io.dead ? "connection lost"
				      : "closed by the server");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct cconn *c = h->data;
	buf->base = (char *)c->rbuf;
	buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct cconn *c = st->data;
	if (nread < 0) {
		c->io.dead = 1;
		cconn_check(c);
		return;
	}
	if (nread == 0 || c->io.closing)
		return;
	c->io.busy++;
	ssize_t rv = nghttp2_session_mem_recv(
		c->io.ng, (const uint8_t *)buf->base, (size_t)nread);
	c->io.busy--;
	if (c->io.closing) {
		nghttp2_session_del(c->io.ng);
		c->io.ng = NULL;
		return;
	}
	if (rv < 0) {
		VT_LOG(VT_LOG_INFO, MOD, "client connection error: %s",
		       nghttp2_strerror((int)rv));
		c->io.dead = 1;
	}
	cconn_flush(c);
}

static void cconn_flush(struct cconn *c)
{
	if (c->io.closing || !c->io.ng || c->state != C_READY)
		return;
	size_t max = c->cl->o.write_queue_max;
	if (!vt__grpc_io_send(&c->io, max, 1))
		return;
	if (c->io.closing && c->io.ng) {
		nghttp2_session_del(c->io.ng);
		c->io.ng = NULL;
		return;
	}
	if (!c->io.closing)
		vt__grpc_io_pace(&c->io, max, on_alloc, on_read);
	cconn_check(c);
}

static void io_flush(struct vt__grpc_io *io)
{
	cconn_flush((struct cconn *)io);
}

static void on_connect_timeout(uv_timer_t *t)
{
	cconn_fail(t->data, "connect timed out");
}

static void on_connected(uv_connect_t *req, int status)
{
	struct cconn *c = req->data;
	if (c->io.closing)
		return;
	if (status < 0) {
		cconn_fail(c, uv_strerror(status));
		return;
	}
	uv_timer_stop(&c->timer);
	uv_tcp_nodelay(&c->io.tcp, 1);
	if (nghttp2_session_client_new(&c->io.ng, client_callbacks(), c)) {
		cconn_fail(c, "out of memory");
		return;
	}
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 },
	};
	nghttp2_submit_settings(c->io.ng, NGHTTP2_FLAG_NONE, iv, 2);
	nghttp2_session_set_local_window_size(c->io.ng, NGHTTP2_FLAG_NONE, 0,
					      4 << 20);
	c->state = C_READY;
	for (struct vt_grpc_ccall *call = c->calls, *n; call; call = n) {
		n = call->next;
		if (ccall_submit(c, call))
			ccall_done(call, VT_GRPC_INTERNAL,
				   "cannot submit the request");
	}
	cconn_flush(c);
}

static void start_connect(struct cconn *c, const struct sockaddr *sa)
{
	c->state = C_CONNECTING;
	c->creq.data = c;
	int rc = uv_tcp_connect(&c->creq, &c->io.tcp, sa, on_connected);
	if (rc)
		cconn_fail(c, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct cconn *c = req->data;
	c->gai_pending = 0;
	if (c->io.closing) {
		uv_freeaddrinfo(ai);
		cconn_maybe_free(c);
		return;
	}
	if (status < 0 || !ai) {
		cconn_fail(c, status < 0 ? uv_strerror(status)
					 : "no address");
	} else {
		start_connect(c, ai->ai_addr);
	}
	uv_freeaddrinfo(ai);
}

static int cconn_new(vt_grpc_client *cl, struct cconn **out)
{
	struct cconn *c = vt_calloc(1, sizeof *c);
	if (!c)
		return VT_ENOMEM;
	c->cl = cl;
	c->io.flush = io_flush;
	uv_tcp_init(cl->loop, &c->io.tcp);
	c->io.tcp.data = c;
	uv_timer_init(cl->loop, &c->timer);
	c->timer.data = c;
	c->handles = 2;
	c->next = cl->conns;
	if (cl->conns)
		cl->conns->prev = c;
	cl->conns = c;
	if (cl->o.connect_timeout_ms)
		uv_timer_start(&c->timer, on_connect_timeout,
			       cl->o.connect_timeout_ms, 0);
	*out = c;
	struct sockaddr_storage sa;
	if (!uv_ip4_addr(cl->host, cl->port, (struct sockaddr_in *)&sa) ||
	    !uv_ip6_addr(cl->host, cl->port, (struct sockaddr_in6 *)&sa)) {
		start_connect(c, (struct sockaddr *)&sa);
		return 0;
	}
	c->state = C_RESOLVING;
	c->gai.data = c;
	char port[16];
	snprintf(port, sizeof port, "%d", cl->port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	int rc = uv_getaddrinfo(cl->loop, &c->gai, on_resolved, cl->host, port,
				&hints);
	if (rc)
		cconn_fail(c, uv_strerror(rc));
	else
		c->gai_pending = 1;
	return 0;
}

/* ---- client ---- */

int vt_grpc_client_new(uv_loop_t *loop, const char *host, int port,
		       const vt_grpc_client_opts *o, vt_grpc_client **out)
{
	if (!host || !*host || port <= 0 || port > 65535)
		return VT_EINVAL;
	vt_grpc_client *cl = vt_calloc(1, sizeof *cl);
	if (!cl)
		return VT_ENOMEM;
	cl->loop = loop;
	cl->host = vt_strdup(host);
	if (!cl->host) {
		vt_free(cl);
		return VT_ENOMEM;
	}
	cl->port = port;
	snprintf(cl->authority, sizeof cl->authority,
		 strchr(host, ':') ? "[%.250s]:%d" : "%.250s:%d", host, port);
	if (o)
		cl->o = *o;
	else
		vt_grpc_client_opts_default(&cl->o);
	if (!cl->o.write_queue_max)
		cl->o.write_queue_max = 1u << 20;
	*out = cl;
	return 0;
}

void vt_grpc_client_close(vt_grpc_client *cl)
{
	cl->closing = 1;
	cl->cur = NULL;
	if (!cl->conns) {
		vt_free(cl->host);
		vt_free(cl);
		return;
	}
	for (struct cconn *c = cl->conns; c; c = c->next)
		cconn_close(c);
}

int vt_grpc_client_call(vt_grpc_client *cl, const char *path,
			const ProtobufCMessage *req, const void *raw,
			size_t raw_len,
			const ProtobufCMessageDescriptor *reply_desc,
			const vt_grpc_call_opts *o, vt_grpc_on_msg_fn on_msg,
			vt_grpc_on_done_fn on_done, void *ud,
			vt_grpc_ccall **out)
{
	if (cl->closing || !path || path[0] != '/' || !on_done)
		return VT_EINVAL;
	struct vt_grpc_ccall *call = vt_calloc(1, sizeof *call);
	if (!call)
		return VT_ENOMEM;
	call->status = -1;
	call->desc = reply_desc;
	call->on_msg = on_msg;
	call->on_done = on_done;
	call->ud = ud;
	vt_buf_init(&call->req, SIZE_MAX);
	vt_buf_init(&call->in, cl->o.max_recv_msg + 5);
	call->path = vt_strdup(path);
	int rc = call->path ? 0 : VT_ENOMEM;
	if (!rc)
		rc = vt__grpc_frame(&call->req, req, raw, raw_len, UINT32_MAX);
	if (!rc && o && o->n_md) {
		call->md = vt_calloc(o->n_md, sizeof *call->md);
		rc = call->md ? 0 : VT_ENOMEM;
		for (size_t i = 0; !rc && i < o->n_md; i++) {
			call->n_md++;
			call->md[i].key = vt_strdup(o->md[i].key);
			call->md[i].value = vt_strdup(o->md[i].value);
			if (!call->md[i].key || !call->md[i].value)
				rc = VT_ENOMEM;
		}
	}
	if (rc) {
		ccall_free(call);
		return rc;
	}
	if (o && o->timeout_ms)
		vt__grpc_timeout_format(o->timeout_ms, call->timeout);
	if (o && o->timeout_ms) {
		uv_timer_init(cl->loop, &call->dl);
		call->dl.data = call;
		call->dl_open = 1;
		uv_timer_start(&call->dl, on_deadline, o->timeout_ms, 0);
	}
	if (out)
		*out = call;
	ccall_attach(cl, call);
	return 0;
}
