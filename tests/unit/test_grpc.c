/* test_grpc.c: lib/rpc's gRPC server and client against each other on
 * 127.0.0.1 (ephemeral ports): unary, streaming with back-pressure,
 * metadata, deadlines, errors, size limits, cancellation, many calls,
 * graceful and forced shutdown, reconnect; plus the helpers (status map,
 * grpc-timeout, percent-encoding) and a socket-free 415 check. */
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "base/alloc.h"
#include "rpc/grpc.h"
#include "rpc/grpc_int.h"
#include "echo_service.h"

struct res {
	int done, status, nmsg;
	char msg[512];
	char text[64];
	char auth[64];
	uint32_t last_n;
	int in_order, had_deadline;
	size_t raw_len, n_vec;
	int cancel_after; /* cancel from on_msg after this many messages */
	vt_grpc_ccall *call;
	int *counter;     /* incremented on done */
};

static void on_msg(void *ud, ProtobufCMessage *m, const uint8_t *raw,
		   size_t len)
{
	struct res *r = ud;
	r->raw_len = len;
	if (m) {
		Vt__Test__EchoReply *e = (Vt__Test__EchoReply *)m;
		if ((uint32_t)r->nmsg != e->n)
			r->in_order = 0;
		r->last_n = e->n;
		snprintf(r->text, sizeof r->text, "%s", e->msg ? e->msg : "");
		snprintf(r->auth, sizeof r->auth, "%s", e->auth ? e->auth : "");
		r->had_deadline = e->has_had_deadline && e->had_deadline;
		r->n_vec = e->n_vec;
	}
	vt_grpc_msg_free(m);
	r->nmsg++;
	if (r->cancel_after && r->nmsg == r->cancel_after)
		vt_grpc_client_cancel(r->call);
}

static void on_done(void *ud, int status, const char *message)
{
	struct res *r = ud;
	assert_false(r->done);
	r->done = 1;
	r->status = status;
	snprintf(r->msg, sizeof r->msg, "%s", message);
	if (r->counter)
		++*r->counter;
}

struct env {
	uv_loop_t loop;
	vt_grpc_server *srv;
	vt_grpc_client *cl;
	int port;
	int srv_done;
	int64_t bytes0;
};

static void srv_done(void *ud)
{
	*(int *)ud = 1;
}

static int timed_out;
static void on_guard(uv_timer_t *t)
{
	timed_out = 1;
}

/* Runs the loop until *flag >= want (or 10 s pass: failure). */
static void run_until(struct env *e, int *flag, int want)
{
	uv_timer_t guard;
	uv_timer_init(&e->loop, &guard);
	timed_out = 0;
	uv_timer_start(&guard, on_guard, 10000, 0);
	while (*flag < want && !timed_out)
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_false(timed_out);
}

static void run_ms(struct env *e, uint64_t ms)
{
	uv_timer_t t;
	int fired = 0;
	uv_timer_init(&e->loop, &t);
	t.data = &fired;
	uv_timer_start(&t, (uv_timer_cb)on_guard, ms, 0);
	timed_out = 0;
	while (!timed_out)
		uv_run(&e->loop, UV_RUN_ONCE);
	timed_out = 0;
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void run_until_zero(struct env *e, int *flag)
{
	for (int i = 0; i < 500 && *flag; i++)
		run_ms(e, 10);
	assert_int_equal(*flag, 0);
}

static void start_server(struct env *e, int port)
{
	vt_grpc_server_opts o;
	vt_grpc_server_opts_default(&o);
	o.max_recv_msg = 1u << 20;
	o.max_send_msg = 4u << 20;
	o.stream_queue_max = 256u << 10;
	vt_errmsg err;
	assert_int_equal(vt_grpc_server_new(&e->loop, &o, &e->srv), 0);
	assert_int_equal(vt_test_echo_register(e->srv, &e->loop), 0);
	assert_int_equal(vt_grpc_server_listen(e->srv, "127.0.0.1", port, &err),
			 0);
	e->port = vt_grpc_server_port(e->srv);
	assert_true(e->port > 0);
	e->srv_done = 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	e->bytes0 = vt_alloc_bytes();
	assert_int_equal(uv_loop_init(&e->loop), 0);
	start_server(e, 0);
	assert_int_equal(vt_grpc_client_new(&e->loop, "127.0.0.1", e->port,
					    NULL, &e->cl),
			 0);
	*state = e;
	return 0;
}

static void close_server(struct env *e, uint64_t grace)
{
	vt_grpc_server_close(e->srv, grace, srv_done, &e->srv_done);
	run_until(e, &e->srv_done, 1);
	e->srv = NULL;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->cl)
		vt_grpc_client_close(e->cl);
	if (e->srv)
		close_server(e, 1000);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	assert_int_equal(vt_test_echo_live, 0);
	assert_int_equal(vt_alloc_bytes(), e->bytes0);
	free(e);
	return 0;
}

static void call_echo(struct env *e, const char *path,
		      const Vt__Test__EchoRequest *rq, const vt_grpc_call_opts *o,
		      struct res *r)
{
	r->in_order = 1;
	assert_int_equal(vt_grpc_client_call(e->cl, path, &rq->base, NULL, 0,
					     &vt__test__echo_reply__descriptor,
					     o, on_msg, on_done, r, &r->call),
			 0);
}

static void test_unary(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	float v[3] = { 1, 2, 3 };
	rq.msg = "hello";
	rq.vec = v;
	rq.n_vec = 3;
	vt_grpc_md md[] = { { "authorization", "Bearer t0k" } };
	vt_grpc_call_opts o = { .timeout_ms = 5000, .md = md, .n_md = 1 };
	struct res r = { 0 };
	call_echo(e, "/vt.test.Echo/Say", &rq, &o, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_OK);
	assert_int_equal(r.nmsg, 1);
	assert_string_equal(r.text, "hello");
	assert_string_equal(r.auth, "Bearer t0k");
	assert_int_equal(r.n_vec, 3);
	assert_true(r.had_deadline);
	/* Same connection, no deadline, answered later. */
	struct res r2 = { 0 };
	rq.has_delay_ms = 1;
	rq.delay_ms = 20;
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r2);
	run_until(e, &r2.done, 1);
	assert_int_equal(r2.status, VT_GRPC_OK);
	assert_false(r2.had_deadline);
	assert_int_equal(vt_grpc_server_connections(e->srv), 1);
	/* Raw bytes both ways. */
	struct res r3 = { 0 };
	assert_int_equal(vt_grpc_client_call(e->cl, "/vt.test.Echo/Raw", NULL,
					     "abc", 3, NULL, NULL, on_msg,
					     on_done, &r3, NULL),
			 0);
	run_until(e, &r3.done, 1);
	assert_int_equal(r3.status, VT_GRPC_OK);
	assert_int_equal(r3.raw_len, 3);
}

static void test_streaming(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.msg = "s";
	rq.has_count = 1;
	rq.count = 50;
	struct res r = { 0 };
	call_echo(e, "/vt.test.Echo/Stream", &rq, NULL, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_OK);
	assert_int_equal(r.nmsg, 50);
	assert_true(r.in_order);
	/* 200 x 64 KiB against a 256 KiB stream queue: the handler must wait
	 * for on_drain (VT_EOVERLOAD) and everything still arrives in order. */
	struct res r2 = { 0 };
	rq.count = 200;
	rq.has_reply_bytes = 1;
	rq.reply_bytes = 64 << 10;
	call_echo(e, "/vt.test.Echo/Stream", &rq, NULL, &r2);
	run_until(e, &r2.done, 1);
	assert_int_equal(r2.status, VT_GRPC_OK);
	assert_int_equal(r2.nmsg, 200);
	assert_true(r2.in_order);
	/* An error after some messages arrives in the trailers. */
	struct res r3 = { 0 };
	rq.count = 3;
	rq.reply_bytes = 0;
	rq.has_fail_code = 1;
	rq.fail_code = VT_GRPC_ABORTED;
	rq.fail_msg = "stop";
	call_echo(e, "/vt.test.Echo/Stream", &rq, NULL, &r3);
	run_until(e, &r3.done, 1);
	assert_int_equal(r3.status, VT_GRPC_ABORTED);
	assert_string_equal(r3.msg, "stop");
}

static void test_error_status(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_fail_code = 1;
	rq.fail_code = VT_GRPC_NOT_FOUND;
	rq.fail_msg = "collection \"x\" not found: 100% g\xc3\xbcltig\n";
	struct res r = { 0 };
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_NOT_FOUND);
	assert_string_equal(r.msg, rq.fail_msg);
	assert_int_equal(r.nmsg, 0);
}

static void test_deadline(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_delay_ms = 1;
	rq.delay_ms = 3000;
	/* The server's own deadline: grpc-timeout sent by hand, no local
	 * timer on the client. */
	vt_grpc_md md[] = { { "grpc-timeout", "100m" } };
	vt_grpc_call_opts o = { .md = md, .n_md = 1 };
	struct res r = { 0 };
	call_echo(e, "/vt.test.Echo/Say", &rq, &o, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_DEADLINE_EXCEEDED);
	assert_string_equal(r.msg, "deadline exceeded");
	/* The handler saw the cancellation and its late reply was dropped. */
	run_until_zero(e, &vt_test_echo_live);
	assert_int_equal(vt_grpc_server_active_calls(e->srv), 0);
	/* The client's deadline. */
	struct res r2 = { 0 };
	vt_grpc_call_opts o2 = { .timeout_ms = 50 };
	call_echo(e, "/vt.test.Echo/Say", &rq, &o2, &r2);
	run_until(e, &r2.done, 1);
	assert_int_equal(r2.status, VT_GRPC_DEADLINE_EXCEEDED);
	/* A malformed grpc-timeout. */
	struct res r3 = { 0 };
	md[0].value = "soon";
	call_echo(e, "/vt.test.Echo/Say", &rq, &o, &r3);
	run_until(e, &r3.done, 1);
	assert_int_equal(r3.status, VT_GRPC_INVALID_ARGUMENT);
}

static void test_unknown_method(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	struct res r = { 0 };
	call_echo(e, "/vt.test.Echo/Nope", &rq, NULL, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_UNIMPLEMENTED);
	assert_non_null(strstr(r.msg, "unknown method /vt.test.Echo/Nope"));
	/* A compressed request. */
	struct res r2 = { 0 };
	vt_grpc_md md[] = { { "grpc-encoding", "gzip" } };
	vt_grpc_call_opts o = { .md = md, .n_md = 1 };
	call_echo(e, "/vt.test.Echo/Say", &rq, &o, &r2);
	run_until(e, &r2.done, 1);
	assert_int_equal(r2.status, VT_GRPC_UNIMPLEMENTED);
}

static void test_oversized(void **state)
{
	struct env *e = *state;
	size_t n = (1u << 20) + 1;
	uint8_t *big = calloc(1, n);
	struct res r = { 0 };
	assert_int_equal(vt_grpc_client_call(e->cl, "/vt.test.Echo/Raw", NULL,
					     big, n, NULL, NULL, on_msg,
					     on_done, &r, NULL),
			 0);
	run_until(e, &r.done, 1);
	free(big);
	assert_int_equal(r.status, VT_GRPC_RESOURCE_EXHAUSTED);
	/* A reply over the server's max send size. */
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_reply_bytes = 1;
	rq.reply_bytes = 5u << 20;
	struct res r2 = { 0 };
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r2);
	run_until(e, &r2.done, 1);
	assert_int_equal(r2.status, VT_GRPC_RESOURCE_EXHAUSTED);
	/* A reply over the client's max receive size. */
	vt_grpc_client_opts co;
	vt_grpc_client_opts_default(&co);
	co.max_recv_msg = 1000;
	vt_grpc_client *small;
	assert_int_equal(vt_grpc_client_new(&e->loop, "127.0.0.1", e->port,
					    &co, &small),
			 0);
	rq.reply_bytes = 2000;
	struct res r3 = { 0 };
	assert_int_equal(vt_grpc_client_call(small, "/vt.test.Echo/Say",
					     &rq.base, NULL, 0,
					     &vt__test__echo_reply__descriptor,
					     NULL, on_msg, on_done, &r3, NULL),
			 0);
	run_until(e, &r3.done, 1);
	assert_int_equal(r3.status, VT_GRPC_RESOURCE_EXHAUSTED);
	vt_grpc_client_close(small);
	/* The connection is still good. */
	struct res r4 = { 0 };
	rq.reply_bytes = 10;
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r4);
	run_until(e, &r4.done, 1);
	assert_int_equal(r4.status, VT_GRPC_OK);
}

static void test_garbage_protobuf(void **state)
{
	struct env *e = *state;
	struct res r = { 0 };
	assert_int_equal(vt_grpc_client_call(e->cl, "/vt.test.Echo/Say", NULL,
					     "\xff\xff\xff\xff", 4, NULL, NULL,
					     on_msg, on_done, &r, NULL),
			 0);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_INVALID_ARGUMENT);
	assert_non_null(strstr(r.msg, "vt.test.EchoRequest"));
}

static void test_cancel(void **state)
{
	struct env *e = *state;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_count = 1;
	rq.count = 1000;
	rq.has_delay_ms = 1;
	rq.delay_ms = 5;
	struct res r = { 0 };
	r.cancel_after = 3;
	call_echo(e, "/vt.test.Echo/Stream", &rq, NULL, &r);
	run_until(e, &r.done, 1);
	assert_int_equal(r.status, VT_GRPC_CANCELLED);
	assert_int_equal(r.nmsg, 3);
	/* The server sees the RST_STREAM: the handler is told and stops. */
	run_until_zero(e, &vt_test_echo_live);
	for (int i = 0; i < 100 && vt_grpc_server_active_calls(e->srv); i++)
		run_ms(e, 10);
	assert_int_equal(vt_grpc_server_active_calls(e->srv), 0);
	/* Cancelling a unary call before it is answered. */
	struct res r2 = { 0 };
	rq.delay_ms = 200;
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r2);
	run_ms(e, 20);
	vt_grpc_client_cancel(r2.call);
	assert_true(r2.done);
	assert_int_equal(r2.status, VT_GRPC_CANCELLED);
	run_ms(e, 300);
	assert_int_equal(vt_test_echo_live, 0);
}

static void test_many_calls(void **state)
{
	struct env *e = *state;
	enum { N = 500 };
	struct res *r = calloc(N, sizeof *r);
	int done = 0;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.msg = "m";
	for (int i = 0; i < N; i++) {
		r[i].counter = &done;
		/* Every other call answers later, so streams overlap. */
		rq.has_delay_ms = i & 1;
		rq.delay_ms = 5;
		call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r[i]);
	}
	run_until(e, &done, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].status, VT_GRPC_OK);
		assert_int_equal(r[i].nmsg, 1);
	}
	free(r);
	/* A second client: two connections at once. */
	vt_grpc_client *c2;
	assert_int_equal(vt_grpc_client_new(&e->loop, "localhost", e->port,
					    NULL, &c2),
			 0);
	struct res x = { 0 };
	assert_int_equal(vt_grpc_client_call(c2, "/vt.test.Echo/Raw", NULL, "",
					     0, NULL, NULL, on_msg, on_done,
					     &x, NULL),
			 0);
	run_until(e, &x.done, 1);
	assert_int_equal(x.status, VT_GRPC_OK);
	assert_int_equal(vt_grpc_server_connections(e->srv), 2);
	vt_grpc_client_close(c2);
}

static void test_shutdown_graceful(void **state)
{
	struct env *e = *state;
	enum { N = 10 };
	struct res r[N] = { 0 };
	int done = 0;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_delay_ms = 1;
	rq.delay_ms = 200;
	for (int i = 0; i < N; i++) {
		r[i].counter = &done;
		call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r[i]);
	}
	run_ms(e, 50);
	assert_int_equal(vt_grpc_server_active_calls(e->srv), N);
	/* GOAWAY; the calls in flight still complete. */
	vt_grpc_server_close(e->srv, 5000, srv_done, &e->srv_done);
	run_until(e, &done, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(r[i].status, VT_GRPC_OK);
	run_until(e, &e->srv_done, 1);
	e->srv = NULL;
	/* Nobody listens now: the next call fails UNAVAILABLE. */
	struct res x = { 0 };
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &x);
	run_until(e, &x.done, 1);
	assert_int_equal(x.status, VT_GRPC_UNAVAILABLE);
	/* A new server on the same port: the client reconnects. */
	start_server(e, e->port);
	struct res y = { 0 };
	rq.delay_ms = 0;
	call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &y);
	run_until(e, &y.done, 1);
	assert_int_equal(y.status, VT_GRPC_OK);
}

static void test_shutdown_forced(void **state)
{
	struct env *e = *state;
	enum { N = 5 };
	struct res r[N] = { 0 };
	int done = 0;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_delay_ms = 1;
	rq.delay_ms = 5000;
	for (int i = 0; i < N; i++) {
		r[i].counter = &done;
		call_echo(e, "/vt.test.Echo/Say", &rq, NULL, &r[i]);
	}
	run_ms(e, 50);
	/* The grace period ends long before the handlers answer. */
	vt_grpc_server_close(e->srv, 100, srv_done, &e->srv_done);
	run_until(e, &e->srv_done, 1);
	e->srv = NULL;
	run_until(e, &done, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(r[i].status, VT_GRPC_UNAVAILABLE);
	/* The handlers were told (on_cancel) and finished their calls. */
	assert_int_equal(vt_test_echo_live, 0);
}

static void test_helpers(void **state)
{
	(void)state;
	assert_int_equal(vt_grpc_status_from_err(0), VT_GRPC_OK);
	assert_int_equal(vt_grpc_status_from_err(VT_EINVAL),
			 VT_GRPC_INVALID_ARGUMENT);
	assert_int_equal(vt_grpc_status_from_err(VT_ENOENT), VT_GRPC_NOT_FOUND);
	assert_int_equal(vt_grpc_status_from_err(VT_EEXIST),
			 VT_GRPC_ALREADY_EXISTS);
	assert_int_equal(vt_grpc_status_from_err(VT_ETIMEDOUT),
			 VT_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(vt_grpc_status_from_err(VT_EOVERLOAD),
			 VT_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(vt_grpc_status_from_err(VT_ELIMIT),
			 VT_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(vt_grpc_status_from_err(VT_EREADONLY),
			 VT_GRPC_FAILED_PRECONDITION);
	/* the gRPC docs' own example of RESOURCE_EXHAUSTED: a full disk */
	assert_int_equal(vt_grpc_status_from_err(VT_ENOSPC),
			 VT_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(vt_grpc_status_from_err(VT_ENOTSUP),
			 VT_GRPC_UNIMPLEMENTED);
	assert_int_equal(vt_grpc_status_from_err(VT_ESHUTDOWN),
			 VT_GRPC_UNAVAILABLE);
	assert_int_equal(vt_grpc_status_from_err(VT_EIO), VT_GRPC_INTERNAL);
	assert_int_equal(vt_grpc_status_from_err(-999), VT_GRPC_INTERNAL);
	assert_string_equal(vt_grpc_status_name(VT_GRPC_UNAVAILABLE),
			    "UNAVAILABLE");
	assert_string_equal(vt_grpc_status_name(99), "UNKNOWN");

	uint64_t ns;
	assert_int_equal(vt__grpc_timeout_parse("100m", 4, &ns), 0);
	assert_int_equal(ns, 100000000ull);
	assert_int_equal(vt__grpc_timeout_parse("2H", 2, &ns), 0);
	assert_int_equal(ns, 7200000000000ull);
	assert_int_equal(vt__grpc_timeout_parse("99999999H", 9, &ns), 0);
	assert_true(ns > 1000000000000000ull); /* saturates, no wrap */
	assert_int_equal(vt__grpc_timeout_parse("5", 1, &ns), VT_EINVAL);
	assert_int_equal(vt__grpc_timeout_parse("5x", 2, &ns), VT_EINVAL);
	assert_int_equal(vt__grpc_timeout_parse("123456789S", 10, &ns),
			 VT_EINVAL);
	char t[16];
	vt__grpc_timeout_format(250, t);
	assert_string_equal(t, "250m");
	vt__grpc_timeout_format(1000ull * 100000000ull, t);
	assert_string_equal(t, "27777H");

	char *enc = vt__grpc_pct_encode("a b%\xc3\xbc\n");
	assert_string_equal(enc, "a b%25%C3%BC%0A");
	char *dec = vt__grpc_pct_decode(enc, strlen(enc));
	assert_string_equal(dec, "a b%\xc3\xbc\n");
	vt_free(enc);
	vt_free(dec);
	dec = vt__grpc_pct_decode("100%", 4); /* a bad escape stays */
	assert_string_equal(dec, "100%");
	vt_free(dec);
}

/* Socket-free: an nghttp2 client session talks to a test connection. */
struct pipe {
	nghttp2_session *cli;
	int http_status;
	int closed;
};

static void sink(void *ud, const uint8_t *p, size_t n)
{
	struct pipe *pp = ud;
	nghttp2_session_mem_recv(pp->cli, p, n);
}

static int pcb_header(nghttp2_session *s, const nghttp2_frame *f,
		      const uint8_t *name, size_t nl, const uint8_t *value,
		      size_t vl, uint8_t flags, void *ud)
{
	struct pipe *pp = ud;
	if (nl == 7 && !memcmp(name, ":status", 7))
		pp->http_status = atoi((const char *)value);
	return 0;
}

static int pcb_close(nghttp2_session *s, int32_t sid, uint32_t err, void *ud)
{
	((struct pipe *)ud)->closed = 1;
	return 0;
}

static int pcb_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	if (f->hd.type == NGHTTP2_GOAWAY)
		fprintf(stderr, "GOAWAY %u %.*s\n", f->goaway.error_code,
			(int)f->goaway.opaque_data_len, f->goaway.opaque_data);
	return 0;
}

static void test_content_type_415(void **state)
{
	struct env *e = *state;
	struct pipe pp = { 0 };
	nghttp2_session_callbacks *cbs;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_header_callback(cbs, pcb_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, pcb_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, pcb_frame);
	nghttp2_session_client_new(&pp.cli, cbs, &pp);
	nghttp2_session_callbacks_del(cbs);
	/* Our SETTINGS must be queued before the server's arrive (or the
	 * ACK would go first). */
	nghttp2_submit_settings(pp.cli, NGHTTP2_FLAG_NONE, NULL, 0);
	struct vt__grpc_sconn *tc;
	assert_int_equal(vt__grpc_sconn_new_test(e->srv, sink, &pp, &tc), 0);
	nghttp2_nv nv[] = {
#define NV(a, b) { (uint8_t *)a, (uint8_t *)b, sizeof a - 1, sizeof b - 1, 0 }
		NV(":method", "POST"), NV(":scheme", "http"),
		NV(":path", "/vt.test.Echo/Say"), NV(":authority", "x"),
		NV("content-type", "application/json"),
#undef NV
	};
	nghttp2_submit_request(pp.cli, NULL, nv, 5, NULL, NULL);
	const uint8_t *p;
	ssize_t n;
	while ((n = nghttp2_session_mem_send(pp.cli, &p)) > 0)
		assert_int_equal(vt__grpc_sconn_feed(tc, p, (size_t)n), 0);
	assert_int_equal(pp.http_status, 415);
	assert_true(pp.closed);
	/* Garbage after the preface: the connection closes, nothing leaks. */
	vt__grpc_sconn_feed(tc, (const uint8_t *)"\0\0\4\x77garbage!", 12);
	vt__grpc_sconn_release(tc);
	nghttp2_session_del(pp.cli);
	run_ms(e, 1);
}

static void discard(void *ud, const uint8_t *p, size_t n)
{
}

static void test_keepalive_and_limits(void **state)
{
	struct env *e = *state;
	vt_grpc_server_opts o;
	vt_grpc_server_opts_default(&o);
	o.keepalive_ms = 50;
	o.keepalive_timeout_ms = 50;
	o.max_connections = 2;
	vt_grpc_server *s2;
	vt_errmsg err;
	assert_int_equal(vt_grpc_server_new(&e->loop, &o, &s2), 0);
	assert_int_equal(vt_test_echo_register(s2, &e->loop), 0);
	assert_int_equal(vt_grpc_server_listen(s2, "127.0.0.1", 0, &err), 0);
	/* A peer that never answers PINGs is closed. */
	struct vt__grpc_sconn *tc;
	assert_int_equal(vt__grpc_sconn_new_test(s2, discard, NULL, &tc), 0);
	static const uint8_t settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	assert_int_equal(vt__grpc_sconn_feed(tc, (const uint8_t *)
					     NGHTTP2_CLIENT_MAGIC,
					     NGHTTP2_CLIENT_MAGIC_LEN), 0);
	assert_int_equal(vt__grpc_sconn_feed(tc, settings, 9), 0);
	/* A real client answers them and stays. */
	vt_grpc_client *c2;
	assert_int_equal(vt_grpc_client_new(&e->loop, "127.0.0.1",
					    vt_grpc_server_port(s2), NULL, &c2),
			 0);
	struct res a = { 0 };
	assert_int_equal(vt_grpc_client_call(c2, "/vt.test.Echo/Raw", NULL, "",
					     0, NULL, NULL, on_msg, on_done,
					     &a, NULL),
			 0);
	run_until(e, &a.done, 1);
	assert_int_equal(a.status, VT_GRPC_OK);
	run_ms(e, 300);
	assert_int_equal(vt__grpc_sconn_feed(tc, settings, 9), VT_ESHUTDOWN);
	struct res b = { 0 };
	assert_int_equal(vt_grpc_client_call(c2, "/vt.test.Echo/Raw", NULL, "",
					     0, NULL, NULL, on_msg, on_done,
					     &b, NULL),
			 0);
	run_until(e, &b.done, 1);
	assert_int_equal(b.status, VT_GRPC_OK);
	/* Two connections (the closed test one is not released yet): a
	 * third is refused. */
	assert_int_equal(vt_grpc_server_connections(s2), 2);
	vt_grpc_client *c3;
	assert_int_equal(vt_grpc_client_new(&e->loop, "127.0.0.1",
					    vt_grpc_server_port(s2), NULL, &c3),
			 0);
	struct res c = { 0 };
	assert_int_equal(vt_grpc_client_call(c3, "/vt.test.Echo/Raw", NULL, "",
					     0, NULL, NULL, on_msg, on_done,
					     &c, NULL),
			 0);
	run_until(e, &c.done, 1);
	assert_int_equal(c.status, VT_GRPC_UNAVAILABLE);
	vt_grpc_client_close(c3);
	vt_grpc_client_close(c2);
	vt__grpc_sconn_release(tc);
	int closed = 0;
	vt_grpc_server_close(s2, 100, srv_done, &closed);
	run_until(e, &closed, 1);
}

/* Calls sent before the server's SETTINGS arrive go over its stream limit
 * and are refused (REFUSED_STREAM); the client sends them again. */
static void test_refused_stream_retry(void **state)
{
	struct env *e = *state;
	vt_grpc_server_opts o;
	vt_grpc_server_opts_default(&o);
	o.max_concurrent_streams = 1;
	vt_grpc_server *s2;
	vt_errmsg err;
	assert_int_equal(vt_grpc_server_new(&e->loop, &o, &s2), 0);
	assert_int_equal(vt_test_echo_register(s2, &e->loop), 0);
	assert_int_equal(vt_grpc_server_listen(s2, "127.0.0.1", 0, &err), 0);
	vt_grpc_client *c2;
	assert_int_equal(vt_grpc_client_new(&e->loop, "127.0.0.1",
					    vt_grpc_server_port(s2), NULL, &c2),
			 0);
	enum { N = 5 };
	struct res r[N] = { 0 };
	int done = 0;
	Vt__Test__EchoRequest rq = VT__TEST__ECHO_REQUEST__INIT;
	rq.has_delay_ms = 1;
	rq.delay_ms = 20;
	for (int i = 0; i < N; i++) {
		r[i].counter = &done;
		r[i].in_order = 1;
		assert_int_equal(vt_grpc_client_call(
					 c2, "/vt.test.Echo/Say", &rq.base,
					 NULL, 0,
					 &vt__test__echo_reply__descriptor, NULL,
					 on_msg, on_done, &r[i], NULL),
				 0);
	}
	run_until(e, &done, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(r[i].status, VT_GRPC_OK);
	vt_grpc_client_close(c2);
	int closed = 0;
	vt_grpc_server_close(s2, 100, srv_done, &closed);
	run_until(e, &closed, 1);
}

int main(void)
{
	/* a peer that closed first must be an EPIPE, not a signal (grpc.h) */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_status, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_method, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_protobuf, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_calls, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_graceful, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_forced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_content_type_415, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_and_limits,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_stream_retry,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
