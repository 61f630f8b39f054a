/* rpcc.c: blocking gRPC calls over one client loop thread (rpcc.h). */
#include "rpcc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "rpc/grpc.h"

/* A peer address: its client (loop thread only) and its breaker (under
 * the rpcc's mutex, read by callers). */
struct peer {
	struct peer *next;
	char *addr;
	vt_grpc_client *cli;
	unsigned fails;
	uint64_t open_until_ms;
};

/* One blocking call, on the caller's stack. */
struct call {
	struct call *next;
	const char *addr, *path;
	uint8_t *raw;
	size_t len;
	const ProtobufCMessageDescriptor *desc;
	uint64_t timeout_ms;
	pthread_cond_t cond;
	int done, status;
	char *msg;
	size_t msg_cap;
	ProtobufCMessage *reply;
	struct vt_rpcc *c;
};

struct vt_rpcc {
	vt_rpcc_opts opts;
	uv_loop_t loop;
	uv_async_t wake;
	pthread_t thread;
	pthread_mutex_t mu;
	struct call *head, *tail; /* queued for the loop */
	struct peer *peers;
	int closing;
};

void vt_rpcc_opts_default(vt_rpcc_opts *o)
{
	o->connect_timeout_ms = 2000;
	o->max_recv_msg = (size_t)64 << 20;
	o->breaker_failures = 3;
	o->breaker_open_ms = 2000;
}

static uint64_t now_ms(void) { return vt_clock_mono_ns() / 1000000u; }

/* Finishes a call: the caller wakes up. Takes the mutex. */
static void complete(struct call *k, int status, const char *msg)
{
	struct vt_rpcc *c = k->c;
	pthread_mutex_lock(&c->mu);
	k->status = status;
	snprintf(k->msg, k->msg_cap, "%s", msg ? msg : "");
	k->done = 1;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&c->mu);
}

static struct peer *peer_find(struct vt_rpcc *c, const char *addr)
{
	for (struct peer *p = c->peers; p; p = p->next)
		if (!strcmp(p->addr, addr))
			return p;
	return NULL;
}

static void breaker_note(struct vt_rpcc *c, const char *addr, int status)
{
	pthread_mutex_lock(&c->mu);
	struct peer *p = peer_find(c, addr);
	if (p) {
		/* Only a peer that cannot be reached counts; an error it
		 * answered says it is alive. */
		if (status == VT_GRPC_UNAVAILABLE ||
		    status == VT_GRPC_DEADLINE_EXCEEDED) {
			if (++p->fails >= c->opts.breaker_failures)
				p->open_until_ms =
					now_ms() + c->opts.breaker_open_ms;
		} else {
			p->fails = 0;
			p->open_until_ms = 0;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

static void on_msg(void *ud, ProtobufCMessage *msg, const uint8_t *raw,
		   size_t len)
{
	(void)raw;
	(void)len;
	struct call *k = ud;
	if (!k->reply)
		k->reply = msg;
	else
		vt_grpc_msg_free(msg); /* a unary call answers once */
}

static void on_done(void *ud, int status, const char *message)
{
	struct call *k = ud;
	if (status == VT_GRPC_OK && !k->reply) {
		status = VT_GRPC_INTERNAL;
		message = "the server answered OK without a message";
	}
	if (status != VT_GRPC_OK && k->reply) {
		vt_grpc_msg_free(k->reply);
		k->reply = NULL;
	}
	breaker_note(k->c, k->addr, status);
	complete(k, status, message);
}

/* The client of `addr`, created on first use (loop thread). */
static vt_grpc_client *client_of(struct vt_rpcc *c, const char *addr,
				 char *why, size_t cap)
{
	pthread_mutex_lock(&c->mu);
	struct peer *p = peer_find(c, addr);
	pthread_mutex_unlock(&c->mu);
	if (p && p->cli)
		return p->cli;
	const char *colon = strrchr(addr, ':');
	char host[256];
	int port = colon ? atoi(colon + 1) : 0;
	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host ||
	    port <= 0 || port > 65535) {
		snprintf(why, cap, "bad address \"%s\" (host:port)", addr);
		return NULL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	vt_grpc_client_opts o;
	vt_grpc_client_opts_default(&o);
	o.connect_timeout_ms = c->opts.connect_timeout_ms;
	o.max_recv_msg = c->opts.max_recv_msg;
	vt_grpc_client *cli;
	if (vt_grpc_client_new(&c->loop, host, port, &o, &cli)) {
		snprintf(why, cap, "%s: cannot create a client", addr);
		return NULL;
	}
	if (!p) {
		p = vt_calloc(1, sizeof *p);
		if (!p || !(p->addr = vt_strdup(addr))) {
			vt_free(p);
			vt_grpc_client_close(cli);
			snprintf(why, cap, "out of memory");
			return NULL;
		}
		pthread_mutex_lock(&c->mu);
		p->next = c->peers;
		c->peers = p;
		pthread_mutex_unlock(&c->mu);
	}
	p->cli = cli;
	return cli;
}

static void start(struct vt_rpcc *c, struct call *k)
{
	char why[300];
	vt_grpc_client *cli = client_of(c, k->addr, why, sizeof why);
	if (!cli) {
		complete(k, VT_GRPC_UNAVAILABLE, why);
		return;
	}
	vt_grpc_call_opts co = {.timeout_ms = k->timeout_ms};
	if (vt_grpc_client_call(cli, k->path, NULL, k->raw, k->len, k->desc,
				&co, on_msg, on_done, k, NULL))
		complete(k, VT_GRPC_INTERNAL, "out of memory");
}

static void on_wake(uv_async_t *a)
{
	struct vt_rpcc *c = a->data;
	pthread_mutex_lock(&c->mu);
	struct call *k = c->head;
	c->head = c->tail = NULL;
	int closing = c->closing;
	pthread_mutex_unlock(&c->mu);
	while (k) {
		struct call *next = k->next;
		if (closing)
			complete(k, VT_GRPC_CANCELLED, "client closing");
		else
			start(c, k);
		k = next;
	}
	if (!closing)
		return;
	/* Closing a client runs the on_done of its calls (CANCELLED). */
	for (struct peer *p = c->peers; p; p = p->next)
		if (p->cli) {
			vt_grpc_client_close(p->cli);
			p->cli = NULL;
		}
	uv_close((uv_handle_t *)&c->wake, NULL);
}

static void *run(void *arg)
{
	struct vt_rpcc *c = arg;
	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
}

int vt_rpcc_open(const vt_rpcc_opts *o, vt_rpcc **out, vt_errmsg *err)
{
	*out = NULL;
	struct vt_rpcc *c = vt_calloc(1, sizeof *c);
	if (!c)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	if (o)
		c->opts = *o;
	else
		vt_rpcc_opts_default(&c->opts);
	if (uv_loop_init(&c->loop)) {
		vt_free(c);
		return vt_errmsg_set(err, VT_EIO, "uv_loop_init failed");
	}
	uv_async_init(&c->loop, &c->wake, on_wake);
	c->wake.data = c;
	pthread_mutex_init(&c->mu, NULL);
	if (pthread_create(&c->thread, NULL, run, c)) {
		uv_close((uv_handle_t *)&c->wake, NULL);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		uv_loop_close(&c->loop);
		pthread_mutex_destroy(&c->mu);
		vt_free(c);
		return vt_errmsg_set(err, VT_EIO, "cannot start a thread");
	}
	*out = c;
	return 0;
}

void vt_rpcc_close(vt_rpcc *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->wake);
	pthread_join(c->thread, NULL);
	uv_loop_close(&c->loop);
	while (c->peers) {
		struct peer *p = c->peers;
		c->peers = p->next;
		vt_free(p->addr);
		vt_free(p);
	}
	pthread_mutex_destroy(&c->mu);
	vt_free(c);
}

int vt_rpcc_call(vt_rpcc *c, const char *addr, const char *path,
		 const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *reply_desc,
		 uint64_t timeout_ms, ProtobufCMessage **reply, char *msg,
		 size_t msg_cap)
{
	*reply = NULL;
	struct call k;
	memset(&k, 0, sizeof k);
	k.addr = addr;
	k.path = path;
	k.desc = reply_desc;
	k.timeout_ms = timeout_ms;
	k.msg = msg;
	k.msg_cap = msg_cap;
	k.c = c;
	/* Packed here so the request's memory is only read by its owner. */
	k.len = protobuf_c_message_get_packed_size(req);
	k.raw = vt_malloc(k.len ? k.len : 1);
	if (!k.raw) {
		snprintf(msg, msg_cap, "out of memory");
		return VT_GRPC_RESOURCE_EXHAUSTED;
	}
	protobuf_c_message_pack(req, k.raw);
	pthread_cond_init(&k.cond, NULL);
	pthread_mutex_lock(&c->mu);
	int queued = !c->closing;
	if (!queued) {
		k.done = 1;
		k.status = VT_GRPC_CANCELLED;
		snprintf(msg, msg_cap, "client closing");
	} else {
		if (c->tail)
			c->tail->next = &k;
		else
			c->head = &k;
		c->tail = &k;
	}
	pthread_mutex_unlock(&c->mu);
	/* (not k.done: once queued, the loop may finish it any time) */
	if (queued)
		uv_async_send(&c->wake);
	pthread_mutex_lock(&c->mu);
	while (!k.done)
		pthread_cond_wait(&k.cond, &c->mu);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&k.cond);
	vt_free(k.raw);
	*reply = k.reply;
	return k.status;
}

int vt_rpcc_healthy(vt_rpcc *c, const char *addr)
{
	pthread_mutex_lock(&c->mu);
	struct peer *p = peer_find(c, addr);
	int ok = !p || p->open_until_ms <= now_ms();
	pthread_mutex_unlock(&c->mu);
	return ok;
}
