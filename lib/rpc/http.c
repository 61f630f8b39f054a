/* http.c: the libuv side of the HTTP/1.1 server: listening, accepting,
 * socket reads and writes, per-connection timers, graceful shutdown. Not
 * the protocol: http_parse.c owns parsing and framing behind vt__http_io. */
#include "http_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"

/* After a closing response, keep reading (and discarding) for up to this
 * long so the peer sees our response instead of a reset. */
#define LINGER_MS 2000u
#define READ_BUF (64u << 10)

struct sconn {
	vt__http_conn *core;
	struct vt_http_server *srv;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shut;
	struct sconn *prev, *next;
	int open_handles;
	int closing;       /* io->close was called */
	int handles_closing;
};

struct wreq {
	uv_write_t w;
	struct sconn *s;
	uint8_t *buf;
};

struct vt_http_server {
	uv_loop_t *loop;
	vt__http_cfg cfg;
	char *cors; /* owned copy behind cfg.opts.cors_origin */
	uv_tcp_t listener;
	int listening;
	int shutting;
	int listener_closed;
	int done;
	vt_http_shutdown_fn on_done;
	void *on_done_ud;
	struct sconn *conns;
	unsigned nconns;
	int port;
	char rbuf[READ_BUF]; /* reads are consumed synchronously: one buffer */
};

static void check_done(struct vt_http_server *srv)
{
	if (!srv->shutting || !srv->listener_closed || srv->nconns ||
	    srv->done)
		return;
	srv->done = 1;
	if (srv->on_done)
		srv->on_done(srv, srv->on_done_ud);
}

/* ---- the transport of one connection ---------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct sconn *s = h->data;
	if (--s->open_handles)
		return;
	if (s->core) {
		vt__http_conn_release(s->core); /* calls io_destroy, now or later */
	} else {
		vt_free(s);
	}
}

static void close_handles(struct sconn *s)
{
	if (s->handles_closing)
		return;
	s->handles_closing = 1;
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sconn *s = h->data;
	(void)hint;
	buf->base = s->srv->rbuf;
	buf->len = sizeof s->srv->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct sconn *s = st->data;
	if (s->closing) {
		if (n < 0)
			close_handles(s); /* lingering is over: peer is done */
		return;
	}
	if (n > 0) {
		vt__http_conn_feed(s->core, (const uint8_t *)buf->base,
				   (size_t)n);
	} else if (n == UV_EOF) {
		uv_read_stop(st);
		vt__http_conn_eof(s->core);
	} else if (n < 0) {
		uv_read_stop(st);
		vt__http_conn_abort(s->core);
	}
}

static void on_write(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct sconn *s = wr->s;
	vt_free(wr->buf);
	vt_free(wr);
	vt__http_conn_write_done(s->core, status);
}

static void io_write(void *ud, uint8_t *buf, size_t len)
{
	struct sconn *s = ud;
	struct wreq *wr = vt_malloc(sizeof *wr);
	if (!wr) {
		vt_free(buf);
		vt__http_conn_write_done(s->core, VT_ENOMEM);
		return;
	}
	wr->s = s;
	wr->buf = buf;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	int rc = uv_write(&wr->w, (uv_stream_t *)&s->tcp, &b, 1, on_write);
	if (rc) {
		vt_free(buf);
		vt_free(wr);
		vt__http_conn_write_done(s->core, rc);
	}
}

static void io_set_reading(void *ud, int on)
{
	struct sconn *s = ud;
	if (s->closing)
		return;
	if (on)
		uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&s->tcp);
}

static void on_timer(uv_timer_t *t)
{
	struct sconn *s = t->data;
	if (s->closing)
		close_handles(s); /* linger or a stuck shutdown ran out */
	else
		vt__http_conn_timeout(s->core);
}

static void io_set_timer(void *ud, uint64_t ms)
{
	struct sconn *s = ud;
	if (s->closing)
		return;
	if (ms)
		uv_timer_start(&s->timer, on_timer, ms, 0);
	else
		uv_timer_stop(&s->timer);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct sconn *s = req->data;
	if (status < 0 || s->handles_closing) {
		close_handles(s);
		return;
	}
	/* our response and FIN are out; wait for the peer's FIN (on_read) or
	 * the linger timer */
	unsigned ms = s->srv->cfg.opts.read_timeout_ms;
	uv_timer_start(&s->timer, on_timer, ms < LINGER_MS ? ms : LINGER_MS,
		       0);
	if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read))
		close_handles(s);
}

static void io_close(void *ud)
{
	struct sconn *s = ud;
	s->closing = 1;
	/* bounds a peer that never reads our last response */
	uv_timer_start(&s->timer, on_timer, s->srv->cfg.opts.read_timeout_ms,
		       0);
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->shut.data = s;
	if (uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, on_shutdown))
		close_handles(s);
}

static void io_destroy(void *ud)
{
	struct sconn *s = ud;
	struct vt_http_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->conns = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nconns--;
	vt_free(s);
	check_done(srv);
}

static const vt__http_io g_io = {
	.write = io_write,
	.set_reading = io_set_reading,
	.set_timer = io_set_timer,
	.close = io_close,
	.destroy = io_destroy,
};

/* ---- accepting ------------------------------------------------------ */

static void free_handle(uv_handle_t *h)
{
	vt_free(h);
}

/* Over max_connections: a canned 503 written straight into the fresh
 * socket's empty send buffer, then close. */
static void reject(struct vt_http_server *srv)
{
	static const char busy[] =
		"HTTP/1.1 503 Service Unavailable\r\n"
		"Content-Type: application/json\r\n"
		"Content-Length: 91\r\n"
		"Retry-After: 1\r\n"
		"Connection: close\r\n\r\n"
		"{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":"
		"\"too many connections, retry later\"},\"status\":503}";
	uv_tcp_t *t = vt_malloc(sizeof *t);
	if (!t)
		return;
	uv_tcp_init(srv->loop, t);
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t) == 0) {
		uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
		uv_try_write((uv_stream_t *)t, &b, 1);
	}
	uv_close((uv_handle_t *)t, free_handle);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct vt_http_server *srv = ls->data;
	if (status < 0) {
		VT_LOG(VT_LOG_WARN, "http", "accept: %s", uv_strerror(status));
		return;
	}
	if (srv->nconns >= srv->cfg.opts.max_connections) {
		reject(srv);
		return;
	}
	struct sconn *s = vt_calloc(1, sizeof *s);
	if (!s) {
		reject(srv);
		return;
	}
	s->srv = srv;
	uv_tcp_init(srv->loop, &s->tcp);
	uv_timer_init(srv->loop, &s->timer);
	s->tcp.data = s;
	s->timer.data = s;
	s->open_handles = 2;
	if (uv_accept(ls, (uv_stream_t *)&s->tcp)) {
		close_handles(s);
		return;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	s->core = vt__http_conn_create(&srv->cfg, &g_io, s);
	if (!s->core) {
		close_handles(s);
		return;
	}
	s->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = s;
	srv->conns = s;
	srv->nconns++;
}

/* ---- the server ----------------------------------------------------- */

int vt_http_server_create(uv_loop_t *loop, const vt_http_opts *o,
			  vt_http_handler_fn fn, void *ud,
			  vt_http_server **out, vt_errmsg *err)
{
	*out = NULL;
	if (!loop || !fn)
		return vt_errmsg_set(err, VT_EINVAL,
				     "http server: loop and handler required");
	struct vt_http_server *srv = vt_calloc(1, sizeof *srv);
	if (!srv)
		return vt_errmsg_set(err, VT_ENOMEM, "http server: no memory");
	srv->loop = loop;
	if (o)
		srv->cfg.opts = *o;
	vt__http_opts_fill(&srv->cfg.opts);
	srv->cors = vt_strdup(srv->cfg.opts.cors_origin);
	if (!srv->cors) {
		vt_free(srv);
		return vt_errmsg_set(err, VT_ENOMEM, "http server: no memory");
	}
	srv->cfg.opts.cors_origin = srv->cors;
	srv->cfg.fn = fn;
	srv->cfg.ud = ud;
	uv_tcp_init(loop, &srv->listener);
	srv->listener.data = srv;
	*out = srv;
	return 0;
}

int vt_http_server_listen(vt_http_server *srv, const char *host, int port,
			  vt_errmsg *err)
{
	struct sockaddr_storage ss;
	int rc;
	if (srv->listening || srv->shutting)
		return vt_errmsg_set(err, VT_EINVAL,
				     "http listen: already listening or stopped");
	if (port < 0 || port > 65535)
		return vt_errmsg_set(err, VT_EINVAL, "http listen: port %d "
				     "out of range 0..65535", port);
	if (strchr(host, ':'))
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (rc)
		return vt_errmsg_set(err, VT_EINVAL, "http listen: bad address "
				     "'%s' (want an IPv4 or IPv6 literal)",
				     host);
	rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&srv->listener, 511,
			       on_connection);
	if (rc) {
		int code = rc == UV_EADDRINUSE ? VT_EBUSY :
						 vt_err_from_errno(-rc);
		return vt_errmsg_set(err, code, "http listen on %s:%d: %s",
				     host, port, uv_strerror(rc));
	}
	int len = sizeof ss;
	if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) ==
	    0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ?
					  ((struct sockaddr_in6 *)&ss)->sin6_port :
					  ((struct sockaddr_in *)&ss)->sin_port);
	srv->listening = 1;
	return 0;
}

int vt_http_server_port(const vt_http_server *srv)
{
	return srv->listening ? srv->port : 0;
}

unsigned vt_http_server_connections(const vt_http_server *srv)
{
	return srv->nconns;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct vt_http_server *srv = h->data;
	srv->listener_closed = 1;
	check_done(srv);
}

int vt_http_server_shutdown(vt_http_server *srv, vt_http_shutdown_fn fn,
			    void *ud)
{
	if (srv->shutting)
		return VT_ESHUTDOWN;
	srv->shutting = 1;
	srv->on_done = fn;
	srv->on_done_ud = ud;
	uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
	/* closing is asynchronous: no connection is freed during this walk */
	for (struct sconn *s = srv->conns; s; s = s->next)
		vt__http_conn_drain(s->core);
	return 0;
}

void vt_http_server_destroy(vt_http_server *srv)
{
	if (!srv)
		return;
	assert(srv->done);
	vt_free(srv->cors);
	vt_free(srv);
}
