/* grpc_server.c: the gRPC server: libuv accepts and moves bytes, nghttp2
 * does HTTP/2, this file maps streams to calls (routing, deadlines, framing,
 * trailers, back-pressure, keepalive, GOAWAY). Not thread-safe: everything
 * runs on the loop thread. */
#include <assert.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "rpc/grpc_int.h"

#define MOD "grpc"

struct method {
	char *path;
	vt_grpc_method m;
};

struct vt_grpc_server {
	uv_loop_t *loop;
	vt_grpc_server_opts o;
	uv_tcp_t listener;
	int listener_open;
	int port;
	struct method *methods;
	size_t n_methods, cap_methods;
	struct sconn *conns;
	size_t n_conns;
	size_t active_calls;
	uv_timer_t grace;
	int closing, done_started;
	vt_grpc_server_done_fn done;
	void *done_ud;
	uint8_t rbuf[VT__GRPC_CHUNK];
};

struct sconn {
	struct vt__grpc_io io; /* first: io.flush casts back */
	vt_grpc_server *srv;
	struct sconn *prev, *next;
	int has_tcp;
	uv_timer_t ka;
	int handles;       /* libuv handles not yet closed */
	struct vt_grpc_call *calls;
	int ping_out;
	int test, test_released;
};

struct vt_grpc_call {
	int refs;
	struct sconn *conn; /* NULL once detached from its stream */
	struct vt_grpc_call *prev, *next;
	int32_t sid;
	const struct method *m;
	vt_buf md;  /* request headers: "name\0value\0"... */
	int md_over;
	vt_buf in;  /* the request: prefix + message */
	ProtobufCMessage *req;
	uint64_t deadline;
	uv_timer_t timer;
	int timer_open;
	vt_buf out; /* framed replies not yet handed to nghttp2 */
	size_t out_off;
	int headers_sent, deferred;
	int finished;  /* the answer (trailers) is decided */
	int status;
	char *msg;     /* percent-encoded grpc-message, or NULL */
	int app_holds; /* the application owes a reply/finish */
	int req_done, rejected, dispatched;
	int cancelled;
	vt_grpc_call_fn on_cancel, on_drain;
	void *cancel_ud, *drain_ud;
};

static void conn_flush(struct sconn *c);
static void conn_close(struct sconn *c);
static void on_keepalive(uv_timer_t *t);
static void call_detach(struct vt_grpc_call *call);

void vt_grpc_server_opts_default(vt_grpc_server_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_recv_msg = 16u << 20;
	o->max_send_msg = 16u << 20;
	o->max_metadata = 16u << 10;
	o->max_concurrent_streams = 100;
	o->max_connections = 1024;
	o->write_queue_max = 1u << 20;
	o->stream_queue_max = 4u << 20;
	o->keepalive_ms = 60000;
	o->keepalive_timeout_ms = 20000;
	o->backlog = 511;
}

/* ---- calls ---- */

static void call_free(struct vt_grpc_call *call)
{
	vt_buf_free(&call->md);
	vt_buf_free(&call->in);
	vt_buf_free(&call->out);
	if (call->req)
		protobuf_c_message_free_unpacked(call->req, &vt__grpc_pb_alloc);
	vt_free(call->msg);
	vt_free(call);
}

void vt_grpc_call_ref(vt_grpc_call *c)
{
	c->refs++;
}

void vt_grpc_call_unref(vt_grpc_call *c)
{
	assert(c->refs > 0);
	if (--c->refs == 0)
		call_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	vt_grpc_call_unref(h->data);
}

static void call_stop_timer(struct vt_grpc_call *call)
{
	if (call->timer_open) {
		call->timer_open = 0;
		uv_close((uv_handle_t *)&call->timer, on_timer_closed);
	}
}

static void call_cancelled(struct vt_grpc_call *call)
{
	if (call->cancelled)
		return;
	call->cancelled = 1;
	if (call->app_holds && call->on_cancel) {
		vt_grpc_call_fn fn = call->on_cancel;
		call->on_cancel = NULL;
		fn(call, call->cancel_ud);
	}
}

static ssize_t data_read(nghttp2_session *ng, int32_t sid, uint8_t *buf,
			 size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct vt_grpc_call *call = src->ptr;
	size_t avail = call->out.len - call->out_off;
	if (avail) {
		size_t n = avail < length ? avail : length;
		memcpy(buf, call->out.data + call->out_off, n);
		call->out_off += n;
		if (call->out_off == call->out.len) {
			vt_buf_reset(&call->out);
			call->out_off = 0;
			if (call->on_drain && call->app_holds && !call->finished)
				call->on_drain(call, call->drain_ud);
		}
		return (ssize_t)n;
	}
	if (call->finished) {
		char st[16];
		snprintf(st, sizeof st, "%d", call->status);
		nghttp2_nv nv[2] = { vt__grpc_nv("grpc-status", st) };
		size_t n = 1;
		if (call->msg)
			nv[n++] = vt__grpc_nv("grpc-message", call->msg);
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (nghttp2_submit_trailer(ng, sid, nv, n) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		return 0;
	}
	call->deferred = 1;
	return NGHTTP2_ERR_DEFERRED;
}

/* Submits the response headers (with a data source) if not yet done, or
 * wakes the deferred data source. */
static int call_kick(struct vt_grpc_call *call)
{
	struct sconn *c = call->conn;
	if (!call->headers_sent) {
		nghttp2_nv nv[] = {
			vt__grpc_nv(":status", "200"),
			vt__grpc_nv("content-type", VT__GRPC_CT),
			vt__grpc_nv("grpc-accept-encoding", "identity"),
		};
		nghttp2_data_provider prd = { .source.ptr = call,
					      .read_callback = data_read };
		if (nghttp2_submit_response(c->io.ng, call->sid, nv, 3, &prd))
			return VT_EINTERNAL;
		call->headers_sent = 1;
	} else if (call->deferred) {
		call->deferred = 0;
		nghttp2_session_resume_data(c->io.ng, call->sid);
	}
	conn_flush(c);
	return 0;
}

/* Decides the end of a call: trailers after the queued messages, or a
 * trailers-only response. */
static void call_end(struct vt_grpc_call *call, int status, const char *msg)
{
	if (call->finished || !call->conn)
		return;
	call->finished = 1;
	call->status = status;
	if (msg && *msg)
		call->msg = vt__grpc_pct_encode(msg);
	call_stop_timer(call);
	struct sconn *c = call->conn;
	if (call->headers_sent || call->out.len > call->out_off) {
		call_kick(call);
		return;
	}
	char st[16];
	snprintf(st, sizeof st, "%d", status);
	nghttp2_nv nv[5] = {
		vt__grpc_nv(":status", "200"),
		vt__grpc_nv("content-type", VT__GRPC_CT),
		vt__grpc_nv("grpc-status", st),
	};
	size_t n = 3;
	if (call->msg)
		nv[n++] = vt__grpc_nv("grpc-message", call->msg);
	call->headers_sent = 1;
	nghttp2_submit_response(c->io.ng, call->sid, nv, n, NULL);
	conn_flush(c);
}

static void call_reject(struct vt_grpc_call *call, int status, const char *msg)
{
	call->rejected = 1;
	vt_buf_free(&call->in);
	call_end(call, status, msg);
}

static void call_http_error(struct vt_grpc_call *call, const char *code)
{
	call->rejected = 1;
	call->finished = 1;
	call->headers_sent = 1;
	nghttp2_nv nv[] = { vt__grpc_nv(":status", code) };
	nghttp2_submit_response(call->conn->io.ng, call->sid, nv, 1, NULL);
	conn_flush(call->conn);
}

static void on_deadline(uv_timer_t *t)
{
	struct vt_grpc_call *call = t->data;
	vt_grpc_call_ref(call);
	call_end(call, VT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
	call_cancelled(call);
	vt_grpc_call_unref(call);
}

const char *vt_grpc_call_metadata(const vt_grpc_call *c, const char *key,
				  size_t *len_out)
{
	if (!c->md.data)
		return NULL;
	size_t kl = strlen(key);
	const char *p = (const char *)c->md.data, *end = p + c->md.len;
	while (p && p < end) {
		size_t nl = strlen(p);
		const char *v = p + nl + 1;
		size_t vl = strlen(v);
		if (nl == kl && !memcmp(p, key, kl)) {
			if (len_out)
				*len_out = vl;
			return v;
		}
		p = v + vl + 1;
	}
	return NULL;
}

const char *vt_grpc_call_method(const vt_grpc_call *c)
{
	const char *p = vt_grpc_call_metadata(c, ":path", NULL);
	return p ? p : "";
}

const ProtobufCMessage *vt_grpc_call_request(const vt_grpc_call *c)
{
	return c->req;
}

const uint8_t *vt_grpc_call_request_bytes(const vt_grpc_call *c,
					  size_t *len_out)
{
	*len_out = c->in.len >= 5 ? c->in.len - 5 : 0;
	return c->in.len >= 5 ? c->in.data + 5 : (const uint8_t *)"";
}

uint64_t vt_grpc_call_deadline_ns(const vt_grpc_call *c)
{
	return c->deadline;
}

int vt_grpc_call_is_cancelled(const vt_grpc_call *c)
{
	return c->cancelled || !c->conn;
}

void vt_grpc_call_on_cancel(vt_grpc_call *c, vt_grpc_call_fn fn, void *ud)
{
	c->on_cancel = fn;
	c->cancel_ud = ud;
}

void vt_grpc_call_on_drain(vt_grpc_call *c, vt_grpc_call_fn fn, void *ud)
{
	c->on_drain = fn;
	c->drain_ud = ud;
}

static int call_queue(vt_grpc_call *c, const ProtobufCMessage *msg,
		      const void *raw, size_t len)
{
	if (!c->conn || c->finished)
		return VT_ECANCELED;
	int rc = vt__grpc_frame(&c->out, msg, raw, len,
				c->conn->srv->o.max_send_msg);
	return rc;
}

static int call_release(vt_grpc_call *c, int rc)
{
	c->app_holds = 0;
	vt_grpc_call_unref(c);
	return rc;
}

static int reply(vt_grpc_call *c, const ProtobufCMessage *msg, const void *raw,
		 size_t len)
{
	assert(c->app_holds);
	if (!c->app_holds)
		return VT_EINVAL;
	int rc = call_queue(c, msg, raw, len);
	if (rc == VT_ELIMIT)
		call_end(c, VT_GRPC_RESOURCE_EXHAUSTED,
			 "reply larger than the server's max send message size");
	else if (rc == VT_ECANCELED)
		;
	else if (rc)
		call_end(c, VT_GRPC_INTERNAL, "cannot queue the reply");
	else
		call_end(c, VT_GRPC_OK, NULL);
	return call_release(c, rc);
}

int vt_grpc_call_reply(vt_grpc_call *c, const ProtobufCMessage *msg)
{
	return reply(c, msg, NULL, 0);
}

int vt_grpc_call_reply_bytes(vt_grpc_call *c, const void *data, size_t len)
{
	return reply(c, NULL, data, len);
}

static int send_one(vt_grpc_call *c, const ProtobufCMessage *msg,
		    const void *raw, size_t len)
{
	if (!c->app_holds || (c->m && c->m->m.kind != VT_GRPC_SERVER_STREAM))
		return VT_EINVAL;
	if (!c->conn || c->finished)
		return VT_ECANCELED;
	if (c->out.len - c->out_off >= c->conn->srv->o.stream_queue_max)
		return VT_EOVERLOAD;
	int rc = call_queue(c, msg, raw, len);
	return rc ? rc : call_kick(c);
}

int vt_grpc_call_send(vt_grpc_call *c, const ProtobufCMessage *msg)
{
	return send_one(c, msg, NULL, 0);
}

int vt_grpc_call_send_bytes(vt_grpc_call *c, const void *data, size_t len)
{
	return send_one(c, NULL, data, len);
}

int vt_grpc_call_finish(vt_grpc_call *c, int status, const char *message)
{
	assert(c->app_holds);
	if (!c->app_holds)
		return VT_EINVAL;
	int rc = c->conn && !c->finished ? 0 : VT_ECANCELED;
	call_end(c, status, message);
	return call_release(c, rc);
}

/* The stream is gone (closed, reset, or the connection closed). */
static void call_detach(struct vt_grpc_call *call)
{
	struct sconn *c = call->conn;
	if (!c)
		return;
	if (c->io.ng)
		nghttp2_session_set_stream_user_data(c->io.ng, call->sid, NULL);
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->conn = NULL;
	c->srv->active_calls--;
	call_stop_timer(call);
	if (!call->finished || call->out.len > call->out_off)
		call_cancelled(call);
	call->finished = 1;
	vt_grpc_call_unref(call);
}

/* ---- request processing ---- */

static const struct method *find_method(vt_grpc_server *s, const char *path)
{
	for (size_t i = 0; i < s->n_methods; i++)
		if (!strcmp(s->methods[i].path, path))
			return &s->methods[i];
	return NULL;
}

static void on_headers_done(struct vt_grpc_call *call)
{
	struct sconn *c = call->conn;
	vt_grpc_server *s = c->srv;
	char buf[160];
	if (call->md_over) {
		call_reject(call, VT_GRPC_RESOURCE_EXHAUSTED,
			    "request metadata too large");
		return;
	}
	const char *method = vt_grpc_call_metadata(call, ":method", NULL);
	if (!method || strcmp(method, "POST")) {
		call_http_error(call, "405");
		return;
	}
	const char *ct = vt_grpc_call_metadata(call, "content-type", NULL);
	if (!ct || strncmp(ct, VT__GRPC_CT, strlen(VT__GRPC_CT)) ||
	    (ct[16] && ct[16] != '+' && ct[16] != ';')) {
		call_http_error(call, "415");
		return;
	}
	const char *enc = vt_grpc_call_metadata(call, "grpc-encoding", NULL);
	if (enc && strcmp(enc, "identity")) {
		snprintf(buf, sizeof buf,
			 "grpc-encoding %.64s is not supported (identity only)",
			 enc);
		call_reject(call, VT_GRPC_UNIMPLEMENTED, buf);
		return;
	}
	const char *path = vt_grpc_call_method(call);
	call->m = find_method(s, path);
	if (!call->m) {
		snprintf(buf, sizeof buf, "unknown method %.120s", path);
		call_reject(call, VT_GRPC_UNIMPLEMENTED, buf);
		return;
	}
	size_t tl;
	const char *to = vt_grpc_call_metadata(call, "grpc-timeout", &tl);
	if (to) {
		uint64_t ns;
		if (vt__grpc_timeout_parse(to, tl, &ns)) {
			call_reject(call, VT_GRPC_INVALID_ARGUMENT,
				    "malformed grpc-timeout");
			return;
		}
		uint64_t now = vt_clock_mono_ns();
		call->deadline = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
		uint64_t ms = ns / 1000000 + (ns % 1000000 != 0);
		uv_timer_init(s->loop, &call->timer);
		call->timer.data = call;
		call->timer_open = 1;
		vt_grpc_call_ref(call);
		uv_timer_start(&call->timer, on_deadline, ms, 0);
	}
}

static void on_request_done(struct vt_grpc_call *call)
{
	char buf[200];
	if (call->rejected || call->finished || call->dispatched)
		return;
	struct sconn *c = call->conn;
	int flags = 0;
	const uint8_t *msg = NULL;
	size_t len = 0;
	int rc = vt__grpc_deframe(call->in.data, call->in.len,
				  c->srv->o.max_recv_msg, &flags, &msg, &len);
	if (rc != 1 || call->in.len != 5 + len) {
		call_reject(call, VT_GRPC_INVALID_ARGUMENT,
			    "expected exactly one request message");
		return;
	}
	if (flags & 1) {
		call_reject(call, VT_GRPC_UNIMPLEMENTED,
			    "compressed messages are not supported");
		return;
	}
	const ProtobufCMessageDescriptor *d = call->m->m.input;
	if (d) {
		call->req = protobuf_c_message_unpack(d, &vt__grpc_pb_alloc,
						      len, msg);
		if (!call->req) {
			snprintf(buf, sizeof buf,
				 "cannot decode the request as %.120s",
				 d->name);
			call_reject(call, VT_GRPC_INVALID_ARGUMENT, buf);
			return;
		}
	}
	call->dispatched = 1;
	call->app_holds = 1;
	vt_grpc_call_ref(call);
	call->m->m.handler(call, call->m->m.ud);
}

/* ---- nghttp2 callbacks ---- */

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *f,
			    void *ud)
{
	struct sconn *c = ud;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct vt_grpc_call *call = vt_calloc(1, sizeof *call);
	if (!call)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	call->refs = 1;
	call->conn = c;
	call->sid = f->hd.stream_id;
	vt_buf_init(&call->md, c->srv->o.max_metadata);
	vt_buf_init(&call->in, c->srv->o.max_recv_msg + 5);
	vt_buf_init(&call->out, SIZE_MAX);
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->srv->active_calls++;
	nghttp2_session_set_stream_user_data(ng, call->sid, call);
	return 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *f,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct vt_grpc_call *call =
		nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!call || f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST || call->md_over)
		return 0;
	/* Names and values cannot hold NUL (nghttp2 checks), so NUL
	 * separates them. */
	vt_buf *b = &call->md;
	size_t before = b->len;
	if (vt_buf_append(b, name, nl) || vt_buf_put_u8(b, 0) ||
	    vt_buf_append(b, value, vl) || vt_buf_put_u8(b, 0)) {
		b->len = before;
		call->md_over = 1;
	}
	return 0;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f,
			 void *ud)
{
	struct sconn *c = ud;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
		c->ping_out = 0;
		if (c->srv->o.keepalive_ms && !c->io.closing)
			uv_timer_start(&c->ka, on_keepalive,
				       c->srv->o.keepalive_ms, 0);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	struct vt_grpc_call *call =
		nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!call)
		return 0;
	vt_grpc_call_ref(call);
	if (f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST)
		on_headers_done(call);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		call->req_done = 1;
		if (call->conn)
			on_request_done(call);
	}
	vt_grpc_call_unref(call);
	return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid,
			 const uint8_t *data, size_t len, void *ud)
{
	struct sconn *c = ud;
	struct vt_grpc_call *call = nghttp2_session_get_stream_user_data(ng, sid);
	if (!call || call->rejected || call->finished)
		return 0;
	size_t max = c->srv->o.max_recv_msg;
	char buf[160];
	int rc = vt_buf_append(&call->in, data, len);
	if (rc == VT_ENOMEM) {
		call_reject(call, VT_GRPC_RESOURCE_EXHAUSTED,
			    "out of memory for the request");
		return 0;
	}
	const uint8_t *p = call->in.data;
	size_t declared = 0;
	if (call->in.len >= 5)
		declared = (size_t)p[1] << 24 | (size_t)p[2] << 16 |
			   (size_t)p[3] << 8 | p[4];
	if (declared > max || (rc && call->in.len < 5)) {
		snprintf(buf, sizeof buf,
			 "request message of %zu bytes is over the limit of %zu",
			 declared, max);
		call_reject(call, VT_GRPC_RESOURCE_EXHAUSTED, buf);
	} else if (rc || call->in.len > 5 + declared) {
		call_reject(call, VT_GRPC_INVALID_ARGUMENT,
			    "more than one request message");
	}
	return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t sid, uint32_t err,
			   void *ud)
{
	struct vt_grpc_call *call = nghttp2_session_get_stream_user_data(ng, sid);
	if (call)
		call_detach(call);
	return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct vt_grpc_call *call =
		nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	/* The answer is complete but the client is still sending: tell it to
	 * stop (RFC 9113 §8.1). */
	if (call && !call->req_done)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE,
					  f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static nghttp2_session_callbacks *server_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;
	if (!cbs) {
		if (nghttp2_session_callbacks_new(&cbs))
			return NULL;
		nghttp2_session_callbacks_set_on_begin_headers_callback(
			cbs, cb_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(
			cbs, cb_frame_recv);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
			cbs, cb_data_chunk);
		nghttp2_session_callbacks_set_on_stream_close_callback(
			cbs, cb_stream_close);
		nghttp2_session_callbacks_set_on_frame_send_callback(
			cbs, cb_frame_send);
	}
	return cbs;
}

/* ---- connections ---- */

static void srv_maybe_done(vt_grpc_server *s);

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct sconn *c = h->data;
	if (--c->handles > 0)
		return;
	if (c->test && !c->test_released)
		return;
	vt_grpc_server *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	vt_free(c);
	srv_maybe_done(s);
}

static void conn_close(struct sconn *c)
{
	if (c->io.closing)
		return;
	c->io.closing = 1;
	c->io.dead = 1;
	while (c->calls)
		call_detach(c->calls);
	if (c->io.ng) {
		nghttp2_session_del(c->io.ng);
		c->io.ng = NULL;
	}
	uv_close((uv_handle_t *)&c->ka, on_conn_handle_closed);
	if (c->has_tcp)
		uv_close((uv_handle_t *)&c->io.tcp, on_conn_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sconn *c = h->data;
	buf->base = (char *)c->srv->rbuf;
	buf->len = sizeof c->srv->rbuf;
}

static void conn_check(struct sconn *c)
{
	if (c->io.closing || c->io.busy)
		return;
	if (vt__grpc_io_idle(&c->io))
		conn_close(c);
}

static int conn_feed(struct sconn *c, const uint8_t *p, size_t n)
{
	if (c->io.dead || c->io.closing)
		return VT_ESHUTDOWN;
	c->io.busy++;
	ssize_t rv = nghttp2_session_mem_recv(c->io.ng, p, n);
	c->io.busy--;
	if (rv < 0) {
		VT_LOG(VT_LOG_DEBUG, MOD, "connection error: %s",
		       nghttp2_strerror((int)rv));
		/* Send the GOAWAY nghttp2 may have queued, then close. */
		c->io.again = 1;
		conn_flush(c);
		c->io.dead = 1;
		conn_check(c);
		return VT_ESHUTDOWN;
	}
	conn_flush(c);
	return c->io.dead ? VT_ESHUTDOWN : 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct sconn *c = st->data;
	if (nread < 0) {
		c->io.dead = 1;
		conn_check(c);
		return;
	}
	if (nread > 0)
		conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void conn_flush(struct sconn *c)
{
	if (c->io.closing || !c->io.ng)
		return;
	size_t max = c->srv->o.write_queue_max;
	/* Not stopped by `dead`: what nghttp2 queued (stream closes
	 * included) is still taken from it, then dropped. */
	if (!vt__grpc_io_send(&c->io, max, 0))
		return;
	/* Back-pressure: a peer that does not read gets no more reads. */
	if (c->has_tcp && !c->io.closing)
		vt__grpc_io_pace(&c->io, max, on_alloc, on_read);
	conn_check(c);
}

static void on_keepalive(uv_timer_t *t)
{
	struct sconn *c = t->data;
	if (c->ping_out) {
		VT_LOG(VT_LOG_INFO, MOD, "closing a connection: no PING ACK");
		c->io.dead = 1;
		conn_check(c);
		return;
	}
	if (nghttp2_submit_ping(c->io.ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
		c->ping_out = 1;
		conn_flush(c);
	}
	if (!c->io.closing)
		uv_timer_start(&c->ka, on_keepalive,
			       c->srv->o.keepalive_timeout_ms, 0);
}

static void io_flush(struct vt__grpc_io *io)
{
	conn_flush((struct sconn *)io);
}

static int conn_new(vt_grpc_server *s, struct sconn **out)
{
	struct sconn *c = vt_calloc(1, sizeof *c);
	if (!c)
		return VT_ENOMEM;
	c->srv = s;
	c->io.flush = io_flush;
	if (nghttp2_session_server_new(&c->io.ng, server_callbacks(), c)) {
		vt_free(c);
		return VT_ENOMEM;
	}
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		  s->o.max_concurrent_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		  (uint32_t)s->o.max_metadata },
	};
	nghttp2_submit_settings(c->io.ng, NGHTTP2_FLAG_NONE, iv, 3);
	nghttp2_session_set_local_window_size(c->io.ng, NGHTTP2_FLAG_NONE, 0,
					      4 << 20);
	uv_timer_init(s->loop, &c->ka);
	c->ka.data = c;
	c->handles = 1;
	if (s->o.keepalive_ms)
		uv_timer_start(&c->ka, on_keepalive, s->o.keepalive_ms, 0);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	*out = c;
	return 0;
}

static void conn_goaway(struct sconn *c)
{
	if (c->io.closing)
		return;
	nghttp2_submit_goaway(c->io.ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(c->io.ng),
			      NGHTTP2_NO_ERROR, NULL, 0);
	conn_flush(c);
}

static void on_closed_plain(uv_handle_t *h)
{
	vt_free(h);
}

static void on_connection(uv_stream_t *ls, int status)
{
	vt_grpc_server *s = ls->data;
	if (status < 0)
		return;
	if (s->closing || s->n_conns >= s->o.max_connections) {
		uv_tcp_t *t = vt_malloc(sizeof *t);
		if (!t)
			return;
		uv_tcp_init(s->loop, t);
		if (uv_accept(ls, (uv_stream_t *)t) == 0)
			VT_LOG(VT_LOG_WARN, MOD,
			       "connection refused: %zu connections open",
			       s->n_conns);
		uv_close((uv_handle_t *)t, on_closed_plain);
		return;
	}
	struct sconn *c;
	if (conn_new(s, &c))
		return;
	uv_tcp_init(s->loop, &c->io.tcp);
	c->io.tcp.data = c;
	c->has_tcp = 1;
	c->handles++;
	if (uv_accept(ls, (uv_stream_t *)&c->io.tcp)) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->io.tcp, 1);
	conn_flush(c); /* the SETTINGS frame; starts reading */
}

/* ---- server ---- */

int vt_grpc_server_new(uv_loop_t *loop, const vt_grpc_server_opts *o,
		       vt_grpc_server **out)
{
	vt_grpc_server *s = vt_calloc(1, sizeof *s);
	if (!s)
		return VT_ENOMEM;
	s->loop = loop;
	if (o)
		s->o = *o;
	else
		vt_grpc_server_opts_default(&s->o);
	if (!s->o.max_concurrent_streams)
		s->o.max_concurrent_streams = 100;
	if (!s->o.write_queue_max)
		s->o.write_queue_max = 1u << 20;
	if (!s->o.keepalive_timeout_ms)
		s->o.keepalive_timeout_ms = 20000;
	s->port = -1;
	uv_timer_init(loop, &s->grace);
	s->grace.data = s;
	*out = s;
	return 0;
}

int vt_grpc_server_add_method(vt_grpc_server *s, const vt_grpc_method *m)
{
	if (!m->path || m->path[0] != '/' || !strchr(m->path + 1, '/') ||
	    !m->handler)
		return VT_EINVAL;
	if (find_method(s, m->path))
		return VT_EEXIST;
	if (s->n_methods == s->cap_methods) {
		size_t cap = s->cap_methods ? 2 * s->cap_methods : 16;
		struct method *n = vt_realloc(s->methods, cap * sizeof *n);
		if (!n)
			return VT_ENOMEM;
		s->methods = n;
		s->cap_methods = cap;
	}
	struct method *e = &s->methods[s->n_methods];
	e->path = vt_strdup(m->path);
	if (!e->path)
		return VT_ENOMEM;
	e->m = *m;
	e->m.path = e->path;
	s->n_methods++;
	return 0;
}

int vt_grpc_server_listen(vt_grpc_server *s, const char *host, int port,
			  vt_errmsg *err)
{
	struct sockaddr_storage sa;
	int rc;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa))
		return vt_errmsg_set(err, VT_EINVAL,
				     "grpc listen: %s is not an IP address",
				     host);
	uv_tcp_init(s->loop, &s->listener);
	s->listener.data = s;
	s->listener_open = 1;
	if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0)) ||
	    (rc = uv_listen((uv_stream_t *)&s->listener, s->o.backlog,
			    on_connection)))
		return vt_errmsg_set(err, VT_EIO, "grpc listen on %s:%d: %s",
				     host, port, uv_strerror(rc));
	struct sockaddr_storage name;
	int len = sizeof name;
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &len);
	s->port = ntohs(name.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&name)->sin6_port
				: ((struct sockaddr_in *)&name)->sin_port);
	return 0;
}

int vt_grpc_server_port(const vt_grpc_server *s)
{
	return s->port;
}

size_t vt_grpc_server_connections(const vt_grpc_server *s)
{
	return s->n_conns;
}

size_t vt_grpc_server_active_calls(const vt_grpc_server *s)
{
	return s->active_calls;
}

static void on_grace_closed(uv_handle_t *h)
{
	vt_grpc_server *s = h->data;
	vt_grpc_server_done_fn done = s->done;
	void *ud = s->done_ud;
	for (size_t i = 0; i < s->n_methods; i++)
		vt_free(s->methods[i].path);
	vt_free(s->methods);
	vt_free(s);
	if (done)
		done(ud);
}

static void srv_maybe_done(vt_grpc_server *s)
{
	if (!s->closing || s->done_started || s->n_conns || s->listener_open)
		return;
	s->done_started = 1;
	uv_close((uv_handle_t *)&s->grace, on_grace_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
	vt_grpc_server *s = h->data;
	s->listener_open = 0;
	srv_maybe_done(s);
}

static void on_grace(uv_timer_t *t)
{
	vt_grpc_server *s = t->data;
	for (struct sconn *c = s->conns, *n; c; c = n) {
		n = c->next;
		conn_close(c);
	}
}

void vt_grpc_server_close(vt_grpc_server *s, uint64_t grace_ms,
			  vt_grpc_server_done_fn done, void *ud)
{
	assert(!s->closing);
	s->closing = 1;
	s->done = done;
	s->done_ud = ud;
	if (s->listener_open)
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
	for (struct sconn *c = s->conns, *n; c; c = n) {
		n = c->next;
		conn_goaway(c);
	}
	uv_timer_start(&s->grace, on_grace, grace_ms, 0);
	srv_maybe_done(s);
}

/* ---- socket-free connections ---- */

int vt__grpc_sconn_new_test(vt_grpc_server *s, vt__grpc_sink_fn sink, void *ud,
			    struct vt__grpc_sconn **out)
{
	struct sconn *c;
	int rc = conn_new(s, &c);
	if (rc)
		return rc;
	c->io.sink = sink;
	c->io.sink_ud = ud;
	c->test = 1;
	conn_flush(c);
	*out = (struct vt__grpc_sconn *)c;
	return 0;
}

int vt__grpc_sconn_feed(struct vt__grpc_sconn *tc, const uint8_t *p, size_t n)
{
	return conn_feed((struct sconn *)tc, p, n);
}

void vt__grpc_sconn_release(struct vt__grpc_sconn *tc)
{
	struct sconn *c = (struct sconn *)tc;
	c->test_released = 1;
	if (c->io.closing && c->handles == 0) {
		c->handles = 1;
		on_conn_handle_closed((uv_handle_t *)&c->ka);
		return;
	}
	conn_close(c);
}
