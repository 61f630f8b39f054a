/* test_http.c: the HTTP/1.1 server over real sockets on 127.0.0.1: requests,
 * bodies, keep-alive, pipelining, limits, timeouts, CORS, async responses
 * and graceful shutdown. The server's loop runs in a thread; the test is
 * the client, with blocking sockets and receive timeouts. */
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "rpc/http.h"

/* ---- the server fixture ---------------------------------------------- */

struct fx {
	uv_loop_t loop;
	uv_async_t stop;
	uv_timer_t delay;
	vt_http_server *srv;
	pthread_t th;
	int port;
	vt_http_req *held;
	int delayed_rc;
	atomic_int handled;
	atomic_int delayed_done;
	int64_t base_bytes;
};

static void on_delay(uv_timer_t *t)
{
	struct fx *f = t->data;
	vt_http_req *r = f->held;
	f->held = NULL;
	f->delayed_rc = vt_http_respond(r, 200, "text/plain", "late", 4);
	atomic_store(&f->delayed_done, 1);
}

static void handler(void *ud, vt_http_req *req)
{
	struct fx *f = ud;
	atomic_fetch_add(&f->handled, 1);
	if (!strcmp(req->path, "/echo")) {
		const char *ct = vt_http_req_header(req, "content-type");
		vt_http_respond(req, 200, ct ? ct : "application/octet-stream",
				req->body, req->body_len);
	} else if (!strcmp(req->path, "/info")) {
		char out[512];
		const char *x = vt_http_req_header(req, "X-Test");
		int n = snprintf(out, sizeof out, "%s %s %s %zu ka=%d %s",
				 req->method, req->path, req->query,
				 req->body_len, req->keep_alive, x ? x : "-");
		vt_http_respond_hdrs(req, 200, "text/plain", "X-Served: 1\r\n",
				     out, (size_t)n);
	} else if (!strcmp(req->path, "/delay")) {
		assert_null(f->held);
		f->held = req;
		uv_timer_start(&f->delay, on_delay, 200, 0);
	} else {
		vt_http_respond_error(req, 404, "NOT_FOUND", "no route \"%s\"",
				      req->path);
	}
}

static void on_done(vt_http_server *srv, void *ud)
{
	struct fx *f = ud;
	(void)srv;
	uv_close((uv_handle_t *)&f->stop, NULL);
	uv_close((uv_handle_t *)&f->delay, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct fx *f = a->data;
	assert_int_equal(vt_http_server_shutdown(f->srv, on_done, f), 0);
	assert_int_equal(vt_http_server_shutdown(f->srv, on_done, f),
			 VT_ESHUTDOWN);
}

static void *loop_main(void *arg)
{
	struct fx *f = arg;
	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static struct fx *fx_start(const vt_http_opts *o)
{
	struct fx *f = calloc(1, sizeof *f);
	vt_errmsg err;
	f->base_bytes = vt_alloc_bytes();
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	uv_timer_init(&f->loop, &f->delay);
	f->delay.data = f;
	assert_int_equal(vt_http_server_create(&f->loop, o, handler, f,
					       &f->srv, &err), 0);
	assert_int_equal(vt_http_server_listen(f->srv, "127.0.0.1", 0, &err),
			 0);
	f->port = vt_http_server_port(f->srv);
	assert_true(f->port > 0);
	pthread_create(&f->th, NULL, loop_main, f);
	return f;
}

static void fx_stop(struct fx *f)
{
	uv_async_send(&f->stop);
	pthread_join(f->th, NULL);
	vt_http_server_destroy(f->srv);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	/* everything the server allocated came back */
	assert_int_equal(vt_alloc_bytes(), f->base_bytes);
	free(f);
}

/* ---- a tiny blocking client ------------------------------------------ */

struct cli {
	int fd;
	char buf[1 << 16];
	size_t len;
};

struct resp {
	int status;
	char head[8192];
	char body[1 << 15];
	size_t body_len;
};

static void cli_open(struct cli *c, int port)
{
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void cli_close(struct cli *c)
{
	close(c->fd);
	c->fd = -1;
}

static void cli_send(struct cli *c, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w < 0)
			return; /* the server may have closed on us */
		s += w;
		n -= (size_t)w;
	}
}

static void cli_sends(struct cli *c, const char *s)
{
	cli_send(c, s, strlen(s));
}

/* Reads more bytes; 0 on EOF or timeout. */
static ssize_t cli_fill(struct cli *c)
{
	if (c->len == sizeof c->buf)
		return 0;
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
	if (n > 0)
		c->len += (size_t)n;
	return n > 0 ? n : 0;
}

static const char *hdr(const struct resp *r, const char *name)
{
	static char val[512];
	char pat[128];
	snprintf(pat, sizeof pat, "\r\n%s:", name);
	const char *p = strcasestr(r->head, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\r");
	if (n >= sizeof val)
		n = sizeof val - 1;
	memcpy(val, p, n);
	val[n] = '\0';
	return val;
}

/* Reads one response (without its body if `no_body`, for HEAD); returns
 * 0, or -1 if the connection ended first. */
static int cli_resp_x(struct cli *c, struct resp *r, int no_body)
{
	char *end;
	memset(r, 0, sizeof *r);
	for (;;) {
		c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
		end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (!cli_fill(c))
			return -1;
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	assert_true(hlen < sizeof r->head);
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = '\0';
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
	const char *cl = hdr(r, "Content-Length");
	size_t blen = cl && !no_body ? strtoul(cl, NULL, 10) : 0;
	assert_true(blen < sizeof r->body);
	while (c->len < hlen + blen)
		if (!cli_fill(c))
			return -1;
	memcpy(r->body, c->buf + hlen, blen);
	r->body_len = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	return 0;
}

static int cli_resp(struct cli *c, struct resp *r)
{
	return cli_resp_x(c, r, 0);
}

/* 1 if the server closes the connection within the receive timeout. */
static int cli_closed(struct cli *c)
{
	char b[256];
	for (;;) {
		ssize_t n = recv(c->fd, b, sizeof b, 0);
		if (n == 0)
			return 1;
		if (n < 0)
			return errno == ECONNRESET;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- tests ----------------------------------------------------------- */

static void test_error_json(void **state)
{
	(void)state;
	char b[256];
	size_t n = vt_http_error_json(b, sizeof b, 400, "INVALID_ARGUMENT",
				      "field \"vector\"\n bad\\");
	assert_string_equal(b, "{\"error\":{\"code\":\"INVALID_ARGUMENT\","
			       "\"message\":\"field \\\"vector\\\"\\n bad\\\\\"},"
			       "\"status\":400}");
	assert_int_equal(n, strlen(b));
	char small[16];
	size_t need = vt_http_error_json(small, sizeof small, 400, "X", "y");
	assert_true(need >= sizeof small);
	assert_int_equal(strlen(small), sizeof small - 1);
	const char *code;
	assert_int_equal(vt_http_status_from_err(VT_EINVAL, &code), 400);
	assert_string_equal(code, "INVALID_ARGUMENT");
	assert_int_equal(vt_http_status_from_err(VT_ENOENT, &code), 404);
	assert_string_equal(code, "NOT_FOUND");
	assert_int_equal(vt_http_status_from_err(VT_EEXIST, &code), 409);
	assert_int_equal(vt_http_status_from_err(VT_EOVERLOAD, &code), 429);
	assert_string_equal(code, "RESOURCE_EXHAUSTED");
	assert_int_equal(vt_http_status_from_err(VT_ETIMEDOUT, NULL), 504);
	assert_int_equal(vt_http_status_from_err(-999, &code), 500);
	assert_string_equal(code, "INTERNAL");
}

static void test_get(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "GET /info?x=1&y=%20 HTTP/1.1\r\nHost: t\r\n"
		      "x-test: hello\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	r.body[r.body_len] = 0;
	assert_string_equal(r.body, "GET /info x=1&y=%20 0 ka=1 hello");
	assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), "*");
	assert_string_equal(hdr(&r, "X-Served"), "1");
	assert_string_equal(hdr(&r, "Content-Type"), "text/plain");
	assert_null(hdr(&r, "Connection"));
	/* unknown route: the handler's JSON error */
	cli_sends(&c, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 404);
	r.body[r.body_len] = 0;
	assert_string_equal(r.body, "{\"error\":{\"code\":\"NOT_FOUND\","
				    "\"message\":\"no route \\\"/nope\\\"\"},"
				    "\"status\":404}");
	assert_string_equal(hdr(&r, "Content-Type"), "application/json");
	/* HEAD: the headers of a GET, no body */
	cli_sends(&c, "HEAD /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp_x(&c, &r, 1), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "Content-Length"), "20");
	/* no body bytes followed: the next response starts right away */
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 19);
	cli_close(&c);
	fx_stop(f);
}

static void test_post_body(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: "
		      "application/json\r\nContent-Length: 13\r\n\r\n{\"a\":");
	sleep_ms(20); /* the body arrives in two reads */
	cli_sends(&c, "[1,2,3]}");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 13);
	assert_memory_equal(r.body, "{\"a\":[1,2,3]}", 13);
	assert_string_equal(hdr(&r, "Content-Type"), "application/json");
	/* an empty POST */
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	cli_close(&c);
	fx_stop(f);
}

static void test_chunked_body(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
	sleep_ms(20);
	cli_sends(&c, "6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 11);
	assert_memory_equal(r.body, "hello world", 11);
	cli_close(&c);
	fx_stop(f);
}

static void test_keep_alive_three(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	for (int i = 0; i < 3; i++) {
		char req[128], want[128];
		snprintf(req, sizeof req,
			 "GET /info?i=%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
		snprintf(want, sizeof want, "GET /info i=%d 0 ka=1 -", i);
		cli_sends(&c, req);
		assert_int_equal(cli_resp(&c, &r), 0);
		r.body[r.body_len] = 0;
		assert_string_equal(r.body, want);
		assert_null(hdr(&r, "Connection"));
	}
	assert_int_equal(vt_http_server_connections(f->srv), 1);
	/* the last one asks to close */
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_string_equal(hdr(&r, "Connection"), "close");
	assert_true(cli_closed(&c));
	cli_close(&c);
	fx_stop(f);
}

static void test_http10_closes(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "GET /info HTTP/1.0\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	r.body[r.body_len] = 0;
	assert_string_equal(r.body, "GET /info  0 ka=0 -");
	assert_string_equal(hdr(&r, "Connection"), "close");
	assert_true(cli_closed(&c));
	cli_close(&c);
	fx_stop(f);
}

static void test_pipelined_in_order(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	/* the slow one first: the fast ones must wait their turn */
	cli_sends(&c, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n"
		      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
		      "GET /info?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
		      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		      "2\r\nxy\r\n0\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.body_len, 4);
	assert_memory_equal(r.body, "late", 4);
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_memory_equal(r.body, "abc", 3);
	assert_int_equal(cli_resp(&c, &r), 0);
	r.body[r.body_len] = 0;
	assert_string_equal(r.body, "GET /info n=3 0 ka=1 -");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_memory_equal(r.body, "xy", 2);
	cli_close(&c);
	fx_stop(f);
}

static void test_pipelined_many_and_bytewise(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	/* 100 requests in one write: held input, parsed one at a time */
	static char all[100 * 64];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(all + n, sizeof all - n,
				      "GET /info?i=%d HTTP/1.1\r\nHost: t\r\n\r\n",
				      i);
	cli_send(&c, all, n);
	for (int i = 0; i < 100; i++) {
		char want[64];
		snprintf(want, sizeof want, "GET /info i=%d 0 ka=1 -", i);
		assert_int_equal(cli_resp(&c, &r), 0);
		r.body[r.body_len] = 0;
		assert_string_equal(r.body, want);
	}
	/* one byte per read */
	const char *req = "POST /echo HTTP/1.1\r\nHost: t\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	for (const char *p = req; *p; p++) {
		cli_send(&c, p, 1);
		if ((p - req) % 8 == 0)
			sleep_ms(1);
	}
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "abc", 3);
	cli_close(&c);
	fx_stop(f);
}

static void test_oversized_header(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	char *big = malloc(20000);
	memset(big, 'a', 19999);
	big[19999] = 0;
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\nX-Big: ");
	cli_sends(&c, big);
	cli_sends(&c, "\r\n\r\n");
	free(big);
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 431);
	assert_string_equal(hdr(&r, "Connection"), "close");
	r.body[r.body_len] = 0;
	assert_non_null(strstr(r.body, "\"code\":\"RESOURCE_EXHAUSTED\""));
	assert_true(cli_closed(&c));
	cli_close(&c);
	/* too many header fields */
	vt_http_opts o = {.max_headers = 4};
	fx_stop(f);
	f = fx_start(&o);
	cli_open(&c, f->port);
	cli_sends(&c, "GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 431);
	cli_close(&c);
	fx_stop(f);
}

static void test_oversized_body(void **state)
{
	(void)state;
	vt_http_opts o = {.max_body_bytes = 1024};
	struct fx *f = fx_start(&o);
	struct cli c;
	struct resp r;
	/* declared too large: refused before any body byte is read */
	cli_open(&c, f->port);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 413);
	assert_string_equal(hdr(&r, "Connection"), "close");
	r.body[r.body_len] = 0;
	assert_non_null(strstr(r.body, "\"status\":413}"));
	assert_non_null(strstr(r.body, "max_body_bytes"));
	assert_true(cli_closed(&c));
	cli_close(&c);
	/* chunked: discovered while reading */
	cli_open(&c, f->port);
	char chunk[900];
	memset(chunk, 'z', sizeof chunk);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 2; i++) {
		cli_sends(&c, "384\r\n");
		cli_send(&c, chunk, sizeof chunk);
		cli_sends(&c, "\r\n");
	}
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 413);
	assert_true(cli_closed(&c));
	cli_close(&c);
	/* exactly the limit is fine */
	cli_open(&c, f->port);
	char body[1024];
	memset(body, 'q', sizeof body);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
	cli_send(&c, body, sizeof body);
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 1024);
	cli_close(&c);
	fx_stop(f);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
		"GARBAGE\r\n\r\n",
		"GET / HTTP/9.9\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	};
	struct fx *f = fx_start(NULL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cli c;
		struct resp r;
		cli_open(&c, f->port);
		cli_sends(&c, bad[i]);
		assert_int_equal(cli_resp(&c, &r), 0);
		assert_true(r.status == 400 || r.status == 505);
		assert_string_equal(hdr(&r, "Connection"), "close");
		r.body[r.body_len] = 0;
		assert_non_null(strstr(r.body, "{\"error\":{\"code\":"));
		assert_true(cli_closed(&c));
		cli_close(&c);
	}
	assert_int_equal(atomic_load(&f->handled), 0);
	fx_stop(f);
}

static void test_slow_client_timeouts(void **state)
{
	(void)state;
	vt_http_opts o = {.read_timeout_ms = 300, .idle_timeout_ms = 300};
	struct fx *f = fx_start(&o);
	struct cli c;
	struct resp r;
	/* slowloris: a request that never finishes gets 408 */
	uint64_t t0 = vt_clock_mono_ns();
	cli_open(&c, f->port);
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost:");
	for (int i = 0; i < 3; i++) {
		sleep_ms(120); /* trickling bytes does not extend the deadline */
		cli_sends(&c, " x");
	}
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 408);
	assert_true(cli_closed(&c));
	uint64_t ms = (vt_clock_mono_ns() - t0) / 1000000;
	assert_true(ms >= 250 && ms < 3000);
	cli_close(&c);
	/* an idle keep-alive connection is closed silently */
	cli_open(&c, f->port);
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	t0 = vt_clock_mono_ns();
	assert_true(cli_closed(&c));
	ms = (vt_clock_mono_ns() - t0) / 1000000;
	assert_true(ms >= 200 && ms < 3000);
	assert_int_equal(c.len, 0);
	cli_close(&c);
	fx_stop(f);
}

static void test_cors_preflight(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "OPTIONS /v1/collections HTTP/1.1\r\nHost: t\r\n"
		      "Origin: http://console\r\n"
		      "Access-Control-Request-Method: POST\r\n"
		      "Access-Control-Request-Headers: content-type,x-api-key\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	assert_null(hdr(&r, "Content-Length"));
	assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), "*");
	assert_non_null(strstr(hdr(&r, "Access-Control-Allow-Methods"), "POST"));
	assert_string_equal(hdr(&r, "Access-Control-Allow-Headers"),
			    "content-type,x-api-key");
	assert_non_null(hdr(&r, "Access-Control-Max-Age"));
	/* the connection lives on */
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(atomic_load(&f->handled), 1);
	cli_close(&c);
	fx_stop(f);

	/* a configured origin; and "" turns CORS off */
	vt_http_opts o = {.cors_origin = "https://console.example"};
	f = fx_start(&o);
	cli_open(&c, f->port);
	cli_sends(&c, "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"),
			    "https://console.example");
	cli_close(&c);
	fx_stop(f);
	o.cors_origin = "";
	f = fx_start(&o);
	cli_open(&c, f->port);
	cli_sends(&c, "OPTIONS /x HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 404); /* the handler answered */
	assert_null(hdr(&r, "Access-Control-Allow-Origin"));
	cli_close(&c);
	fx_stop(f);
}

static void test_expect_continue(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		      "Content-Length: 5\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 100);
	cli_sends(&c, "12345");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "12345", 5);
	cli_close(&c);
	fx_stop(f);
}

static void test_delayed_response(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	struct resp r;
	cli_open(&c, f->port);
	uint64_t t0 = vt_clock_mono_ns();
	cli_sends(&c, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&c, &r), 0);
	assert_true((vt_clock_mono_ns() - t0) / 1000000 >= 150);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "late", 4);
	assert_int_equal(f->delayed_rc, 0);
	cli_close(&c);
	fx_stop(f);
}

static void test_client_gone_before_async_response(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli c;
	cli_open(&c, f->port);
	cli_sends(&c, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n");
	sleep_ms(30);
	/* a reset, not a FIN */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	cli_close(&c);
	while (!atomic_load(&f->delayed_done))
		sleep_ms(10);
	assert_true(f->delayed_rc == 0 || f->delayed_rc == VT_ECANCELED);
	fx_stop(f); /* checks that nothing leaked */
}

static void test_max_connections(void **state)
{
	(void)state;
	vt_http_opts o = {.max_connections = 2};
	struct fx *f = fx_start(&o);
	struct cli c[3];
	struct resp r;
	for (int i = 0; i < 2; i++) {
		cli_open(&c[i], f->port);
		cli_sends(&c[i], "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_int_equal(cli_resp(&c[i], &r), 0);
	}
	cli_open(&c[2], f->port);
	assert_int_equal(cli_resp(&c[2], &r), 0);
	assert_int_equal(r.status, 503);
	r.body[r.body_len] = 0;
	assert_string_equal(r.body, "{\"error\":{\"code\":\"UNAVAILABLE\","
				    "\"message\":\"too many connections, retry "
				    "later\"},\"status\":503}");
	for (int i = 0; i < 3; i++)
		cli_close(&c[i]);
	fx_stop(f);
}

static void test_graceful_shutdown(void **state)
{
	(void)state;
	struct fx *f = fx_start(NULL);
	struct cli idle, busy, late;
	struct resp r;
	cli_open(&idle, f->port);
	cli_sends(&idle, "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cli_resp(&idle, &r), 0);
	cli_open(&busy, f->port);
	cli_sends(&busy, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n");
	sleep_ms(50);
	uv_async_send(&f->stop); /* shutdown starts while /delay is in flight */
	assert_true(cli_closed(&idle));
	assert_int_equal(cli_resp(&busy, &r), 0);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "late", 4);
	assert_string_equal(hdr(&r, "Connection"), "close");
	assert_true(cli_closed(&busy));
	/* no longer accepting */
	late.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)f->port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(late.fd, (struct sockaddr *)&a, sizeof a), 0);
	close(late.fd);
	cli_close(&idle);
	cli_close(&busy);
	pthread_join(f->th, NULL);
	vt_http_server_destroy(f->srv);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(vt_alloc_bytes(), f->base_bytes);
	free(f);
}

static void test_bad_listen(void **state)
{
	(void)state;
	uv_loop_t loop;
	vt_http_server *srv;
	vt_errmsg err;
	uv_loop_init(&loop);
	assert_int_equal(vt_http_server_create(&loop, NULL, handler, NULL,
					       &srv, &err), 0);
	assert_int_equal(vt_http_server_listen(srv, "not-an-ip", 0, &err),
			 VT_EINVAL);
	assert_non_null(strstr(err.msg, "not-an-ip"));
	assert_int_equal(vt_http_server_port(srv), 0);
	vt_http_server_shutdown(srv, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	vt_http_server_destroy(srv);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	/* a peer that closed first must be an EPIPE, not a signal (grpc.h) */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_post_body),
		cmocka_unit_test(test_chunked_body),
		cmocka_unit_test(test_keep_alive_three),
		cmocka_unit_test(test_http10_closes),
		cmocka_unit_test(test_pipelined_in_order),
		cmocka_unit_test(test_pipelined_many_and_bytewise),
		cmocka_unit_test(test_oversized_header),
		cmocka_unit_test(test_oversized_body),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_slow_client_timeouts),
		cmocka_unit_test(test_cors_preflight),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_delayed_response),
		cmocka_unit_test(test_client_gone_before_async_response),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_graceful_shutdown),
		cmocka_unit_test(test_bad_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
