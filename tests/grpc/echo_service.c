/* echo_service.c: the vt.test.Echo handlers. Say answers now or after
 * delay_ms (a libuv timer, as a worker-thread job would); Stream sends
 * count replies, one per delay_ms; fail_code finishes with that status.
 * Cancellation stops the timers. */
#include <stdlib.h>
#include <string.h>

#include "echo_service.h"

int vt_test_echo_live;

struct job {
	vt_grpc_call *call;
	uv_timer_t timer;
	uint32_t sent, count, delay;
	int stream, finished;
};

static void build_reply(vt_grpc_call *call, const Vt__Test__EchoRequest *rq,
			uint32_t n, Vt__Test__EchoReply *r, uint8_t **pad)
{
	vt__test__echo_reply__init(r);
	r->msg = rq->msg;
	r->n_vec = rq->n_vec;
	r->vec = rq->vec;
	r->has_n = 1;
	r->n = n;
	r->auth = (char *)vt_grpc_call_metadata(call, "authorization", NULL);
	r->has_had_deadline = 1;
	r->had_deadline = vt_grpc_call_deadline_ns(call) != 0;
	*pad = NULL;
	if (rq->has_reply_bytes && rq->reply_bytes) {
		*pad = calloc(1, rq->reply_bytes);
		r->has_pad = 1;
		r->pad.len = rq->reply_bytes;
		r->pad.data = *pad;
	}
}

static void job_closed(uv_handle_t *h)
{
	free(h->data);
	vt_test_echo_live--;
}

static void job_end(struct job *j)
{
	uv_close((uv_handle_t *)&j->timer, job_closed);
}

/* Sends the next message or the end; returns 1 when the call is done. */
static int job_step(struct job *j)
{
	const Vt__Test__EchoRequest *rq =
		(const Vt__Test__EchoRequest *)vt_grpc_call_request(j->call);
	Vt__Test__EchoReply r;
	uint8_t *pad;
	if (rq->has_fail_code && rq->fail_code) {
		vt_grpc_call_finish(j->call, rq->fail_code, rq->fail_msg);
		return 1;
	}
	if (!j->stream) {
		build_reply(j->call, rq, 0, &r, &pad);
		vt_grpc_call_reply(j->call, &r.base);
		free(pad);
		return 1;
	}
	while (j->sent < j->count) {
		build_reply(j->call, rq, j->sent, &r, &pad);
		int rc = vt_grpc_call_send(j->call, &r.base);
		free(pad);
		if (rc == VT_EOVERLOAD)
			return 0; /* on_drain resumes */
		if (rc) {
			vt_grpc_call_finish(j->call, VT_GRPC_CANCELLED, NULL);
			return 1;
		}
		j->sent++;
		if (j->delay)
			return 0;
	}
	vt_grpc_call_finish(j->call, VT_GRPC_OK, NULL);
	return 1;
}

static void on_timer(uv_timer_t *t)
{
	struct job *j = t->data;
	if (j->finished)
		return;
	if (job_step(j)) {
		j->finished = 1;
		job_end(j);
	} else if (j->delay) {
		uv_timer_start(&j->timer, on_timer, j->delay, 0);
	}
}

static void on_cancel(vt_grpc_call *call, void *ud)
{
	struct job *j = ud;
	if (j->finished)
		return;
	j->finished = 1;
	vt_grpc_call_finish(call, VT_GRPC_CANCELLED, "cancelled");
	job_end(j);
}

static void on_drain(vt_grpc_call *call, void *ud)
{
	struct job *j = ud;
	if (!j->finished && !j->delay)
		on_timer(&j->timer);
}

static void start(vt_grpc_call *call, void *ud, int stream)
{
	uv_loop_t *loop = ud;
	const Vt__Test__EchoRequest *rq =
		(const Vt__Test__EchoRequest *)vt_grpc_call_request(call);
	struct job *j = calloc(1, sizeof *j);
	j->call = call;
	j->stream = stream;
	j->count = rq->has_count ? rq->count : 1;
	j->delay = rq->has_delay_ms ? rq->delay_ms : 0;
	uv_timer_init(loop, &j->timer);
	j->timer.data = j;
	vt_test_echo_live++;
	vt_grpc_call_on_cancel(call, on_cancel, j);
	vt_grpc_call_on_drain(call, on_drain, j);
	if (j->delay)
		uv_timer_start(&j->timer, on_timer, j->delay, 0);
	else
		on_timer(&j->timer);
}

static void say(vt_grpc_call *call, void *ud)
{
	start(call, ud, 0);
}

static void stream(vt_grpc_call *call, void *ud)
{
	start(call, ud, 1);
}

static void raw(vt_grpc_call *call, void *ud)
{
	size_t n;
	const uint8_t *p = vt_grpc_call_request_bytes(call, &n);
	vt_grpc_call_reply_bytes(call, p, n);
}

int vt_test_echo_register(vt_grpc_server *s, uv_loop_t *loop)
{
	vt_grpc_method m[] = {
		{ "/vt.test.Echo/Say", VT_GRPC_UNARY,
		  &vt__test__echo_request__descriptor, say, loop },
		{ "/vt.test.Echo/Stream", VT_GRPC_SERVER_STREAM,
		  &vt__test__echo_request__descriptor, stream, loop },
		{ "/vt.test.Echo/Raw", VT_GRPC_UNARY, NULL, raw, NULL },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		int rc = vt_grpc_server_add_method(s, &m[i]);
		if (rc)
			return rc;
	}
	return 0;
}
