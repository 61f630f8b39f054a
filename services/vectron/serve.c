/* serve.c: `vectron serve` (serve.h). The loop thread only parses framing
 * and routes; every request is decoded, run and encoded on a request worker
 * (reqpool.c, not libuv's thread pool), and the answer goes back on the
 * loop. SIGTERM/SIGINT: stop
 * accepting, let requests in flight finish (shutdown_grace_ms), save every
 * shard's index snapshot, close. */
#include "serve.h"

#include <errno.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/pool.h"
#include "base/text.h"
#include "config.h"
#include "gateway/gateway.h"
#include "vectron/internal/v1/cluster.pb-c.h"
#include "import.h"
#include "pd.h"
#include "reqpool.h"
#include "rest.h"
#include "worker.h"
#include "rpc/grpc.h"
#include "rpc/http.h"
#include "rpc/json.h"
#include "rpc/pbjson.h"
#include "store/store.h"

struct server {
	const char *name;  /* "serve" or "gateway": for messages */
	char where[1100];  /* "data in ./data": for the ready line */
	uv_loop_t *loop;
	vt_serve_config cfg;
	vt_db *db;
	vt_gw *gw;         /* the cluster back end */
	/* serve: the PD and worker roles (stop: on the loop, when stopping;
	 * ready: whether to announce yet, polled on the loop) */
	void (*stop_fn)(void *ud);
	int (*ready_fn)(void *ud);
	int (*metrics_fn)(void *ud, vt_buf *out); /* appends to /metrics */
	void *roles;
	uv_timer_t ready_timer;
	int ready;
	vt_api *api;
	vt_http_server *http;
	vt_grpc_server *grpc;
	vt_reqpool *pool; /* request workers */
	uv_signal_t sigterm, sigint;
	int stopping;
	struct grpc_route *routes; /* one per API method */
};

struct grpc_route {
	struct server *srv;
	const vt_api_method *method;
};

static uint64_t deadline_from(const struct server *s, uint64_t asked)
{
	if (asked)
		return asked;
	return vt_clock_mono_ns() + (uint64_t)s->cfg.timeout_ms * 1000000u;
}

/* ---- REST ---------------------------------------------------------------------- */

struct rest_job {
	vt_reqpool_job work;
	struct server *srv;
	vt_http_req *req;
	vt_rest_match m;
	const vt_api_method *method;
	int status;
	const char *code;       /* error code name, NULL on success */
	vt_errmsg err;
	const char *ctype;
	vt_buf out;
	uint64_t t0;            /* arrival: the deadline counts from here */
};

/* Whether `v` is a JSON number (or true/false), so it goes in raw. */
static int json_scalar(const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "false"))
		return 1;
	vt_json_doc *d;
	if (vt_json_parse(v, strlen(v), NULL, &d, NULL, NULL))
		return 0;
	int num = vt_json_typeof(vt_json_root(d)) == VT_JSON_NUMBER;
	vt_json_doc_free(d);
	return num;
}

/* GET query "a=1&b=true&c=x" (percent-encoded) as a JSON object text. */
static int query_json(const char *q, vt_buf *b)
{
	vt_json_writer w;
	vt_json_w_init(&w, b);
	vt_json_w_obj_begin(&w);
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		char k[128], v[512];
		if (len && (!eq ||
			    vt_pct_decode(q, (size_t)(eq - q), k, sizeof k, 1) ||
			    vt_pct_decode(eq + 1, len - (size_t)(eq - q) - 1, v,
					  sizeof v, 1)))
			return VT_EINVAL;
		if (len) {
			vt_json_w_key(&w, k, strlen(k));
			if (json_scalar(v))
				vt_json_w_raw(&w, v, strlen(v));
			else
				vt_json_w_str(&w, v, strlen(v));
		}
		q = amp ? amp + 1 : NULL;
	}
	vt_json_w_obj_end(&w);
	return vt_json_w_finish(&w);
}

static void rest_fail(struct rest_job *j, int rc)
{
	vt_api_status st = vt_api_status_of(rc);
	j->status = st.http;
	j->code = st.name;
	if (!j->err.msg[0])
		vt_errmsg_set(&j->err, rc, "%s", vt_strerror(rc));
}

/* Puts the path parameters into the request message. */
static int apply_params(struct rest_job *j, vt_arena *a, ProtobufCMessage *msg)
{
	for (int i = 0; i < j->m.n; i++) {
		const char *name = j->m.name[i];
		char *v = vt_arena_strndup(a, j->m.value[i],
					   strlen(j->m.value[i]));
		if (!v)
			return vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		if (!strcmp(name, "id")) {
			/* GET/DELETE .../points/{id}: ids = [id] */
			const ProtobufCFieldDescriptor *f =
				protobuf_c_message_descriptor_get_field_by_name(
					msg->descriptor, "ids");
			char **arr = vt_arena_alloc(a, sizeof *arr);
			if (!f || !arr)
				return vt_errmsg_set(&j->err, VT_EINTERNAL,
						     "route without ids");
			arr[0] = v;
			*(size_t *)((char *)msg + f->quantifier_offset) = 1;
			*(char ***)((char *)msg + f->offset) = arr;
			continue;
		}
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(
				msg->descriptor, name);
		const char *body = f ? *(char **)((char *)msg + f->offset) : NULL;
		if (body && *body && strcmp(body, v))
			return vt_errmsg_set(&j->err, VT_EINVAL,
					     "%s: the body says \"%.64s\", the "
					     "path \"%.64s\"",
					     name, body, v);
		if (vt_pbjson_set_string(msg, name, v))
			return vt_errmsg_set(&j->err, VT_EINTERNAL,
					     "route parameter %s", name);
	}
	return 0;
}

static void rest_api(struct rest_job *j)
{
	struct server *s = j->srv;
	vt_arena *a = vt_arena_create(0);
	vt_json_doc *doc = NULL;
	vt_buf q;
	vt_buf_init(&q, 1u << 16);
	int rc;
	if (!a) {
		rest_fail(j, VT_ENOMEM);
		return;
	}
	const void *body = j->req->body;
	size_t len = j->req->body_len;
	if (!len && j->req->query[0]) {
		if ((rc = query_json(j->req->query, &q))) {
			vt_errmsg_set(&j->err, VT_EINVAL, "query: malformed");
			goto fail;
		}
		body = q.data;
		len = q.len;
	} else if (!len) {
		body = "{}";
		len = 2;
	}
	vt_json_opts jo = {.max_bytes = (size_t)s->cfg.max_body_bytes};
	if ((rc = vt_json_parse(body, len, &jo, &doc, NULL, &j->err))) {
		vt_errmsg_prefix(&j->err, rc, "body");
		if (rc != VT_ENOMEM && rc != VT_ELIMIT)
			rc = VT_EINVAL;
		goto fail;
	}
	ProtobufCMessage *msg, *resp;
	if ((rc = vt_pbjson_decode(vt_json_root(doc), j->method->input, a, &msg,
				   &j->err))) {
		if (!strncmp(j->err.msg, "$:", 2)) {
			char rest[VT_ERRMSG_SIZE];
			snprintf(rest, sizeof rest, "%s", j->err.msg + 1);
			vt_errmsg_set(&j->err, rc, "body%s", rest);
		}
		goto fail;
	}
	if ((rc = apply_params(j, a, msg)))
		goto fail;
	vt_api_ctx cx = {a, j->t0 + (uint64_t)s->cfg.timeout_ms * 1000000u,
			 NULL, NULL};
	if ((rc = vt_api_call(s->api, j->method, &cx, msg, &resp, &j->err)))
		goto done;
	if (j->m.route->single &&
	    ((Vectron__V1__GetResponse *)resp)->n_points == 0) {
		rc = vt_errmsg_set(&j->err, VT_ENOENT,
				   "point \"%.200s\" not found", j->m.value[1]);
		goto done;
	}
	vt_json_writer w;
	vt_json_w_init(&w, &j->out);
	vt_pbjson_encode(resp, &w);
	if ((rc = vt_json_w_finish(&w)))
		vt_errmsg_set(&j->err, rc, "encoding the response: %s",
			      vt_strerror(rc));
	j->status = 200;
	goto done;
fail:
	/* refused before the method ran: count it */
	vt_api_observe(s->api, j->method, rc, 0);
done:
	if (rc)
		rest_fail(j, rc);
	vt_json_doc_free(doc);
	vt_buf_free(&q);
	vt_arena_destroy(a); /* after encoding: the response lives in it */
}

/* The gateway's own counters, after the API's. */
static int gw_metrics(vt_gw *g, vt_buf *out)
{
	vt_gw_stats st;
	vt_gw_stats_get(g, &st);
	char t[2048];
	int n = snprintf(
		t, sizeof t,
		"# HELP vectron_gateway_routing_fetches_total Routing reads from the PD.\n"
		"# TYPE vectron_gateway_routing_fetches_total counter\n"
		"vectron_gateway_routing_fetches_total %llu\n"
		"# HELP vectron_gateway_stale_retries_total Shard calls retried after a "
		"stale epoch.\n"
		"# TYPE vectron_gateway_stale_retries_total counter\n"
		"vectron_gateway_stale_retries_total %llu\n"
		"# HELP vectron_gateway_leader_redirects_total Not-the-leader answers "
		"followed.\n"
		"# TYPE vectron_gateway_leader_redirects_total counter\n"
		"vectron_gateway_leader_redirects_total %llu\n"
		"# HELP vectron_gateway_replica_failovers_total Reads sent to another "
		"replica.\n"
		"# TYPE vectron_gateway_replica_failovers_total counter\n"
		"vectron_gateway_replica_failovers_total %llu\n"
		"# HELP vectron_gateway_multi_shard_calls_total Searches of "
		"several shards of one worker in one call.\n"
		"# TYPE vectron_gateway_multi_shard_calls_total counter\n"
		"vectron_gateway_multi_shard_calls_total %llu\n",
		(unsigned long long)st.routing_fetches,
		(unsigned long long)st.stale_retries,
		(unsigned long long)st.leader_redirects,
		(unsigned long long)st.replica_failovers,
		(unsigned long long)st.multi_shard_calls);
	return vt_buf_append(out, t, (size_t)n);
}

/* GET /v1/cluster/...: the PD's answer as JSON. */
static void rest_cluster(struct rest_job *j)
{
	Vectron__Internal__V1__StatusRequest st =
		VECTRON__INTERNAL__V1__STATUS_REQUEST__INIT;
	Vectron__Internal__V1__ListWorkersRequest lw =
		VECTRON__INTERNAL__V1__LIST_WORKERS_REQUEST__INIT;
	Vectron__Internal__V1__GetRoutingRequest gr =
		VECTRON__INTERNAL__V1__GET_ROUTING_REQUEST__INIT;
	st.has_version = lw.has_version = gr.has_version = 1;
	st.version = lw.version = gr.version = 1;
	const char *method;
	const ProtobufCMessage *req;
	const ProtobufCMessageDescriptor *desc;
	switch (j->m.route->special) {
	case VT_REST_CLUSTER_STATUS:
		method = "Status";
		req = &st.base;
		desc = &vectron__internal__v1__status_response__descriptor;
		break;
	case VT_REST_CLUSTER_WORKERS:
		method = "ListWorkers";
		req = &lw.base;
		desc = &vectron__internal__v1__list_workers_response__descriptor;
		break;
	default:
		method = "GetRouting";
		gr.name = j->m.n ? j->m.value[0] : NULL;
		req = &gr.base;
		desc = &vectron__internal__v1__get_routing_response__descriptor;
	}
	ProtobufCMessage *rep;
	char msg[VT_ERRMSG_SIZE];
	int st_code = vt_gw_pd_call(j->srv->gw, method, req, desc, &rep, msg,
				    sizeof msg);
	if (st_code) {
		int rc = vt_grpc_err_from_status(st_code);
		vt_errmsg_set(&j->err, rc, "placement driver: %s", msg);
		rest_fail(j, rc);
		return;
	}
	vt_json_writer w;
	vt_json_w_init(&w, &j->out);
	vt_pbjson_encode(rep, &w);
	int rc = vt_json_w_finish(&w);
	vt_grpc_msg_free(rep);
	if (rc) {
		vt_errmsg_set(&j->err, rc, "encoding: %s", vt_strerror(rc));
		rest_fail(j, rc);
		return;
	}
	j->status = 200;
}

static void rest_work(vt_reqpool_job *w)
{
	struct rest_job *j = (struct rest_job *)w;
	if (j->m.route->special >= VT_REST_CLUSTER_STATUS) {
		rest_cluster(j);
		return;
	}
	if (j->m.route->special == VT_REST_METRICS) {
		int rc = vt_api_metrics(j->srv->api, &j->out);
		if (!rc && j->srv->gw)
			rc = gw_metrics(j->srv->gw, &j->out);
		if (!rc && j->srv->metrics_fn)
			rc = j->srv->metrics_fn(j->srv->roles, &j->out);
		j->ctype = "text/plain; version=0.0.4";
		if (rc)
			rest_fail(j, rc);
		else
			j->status = 200;
		return;
	}
	rest_api(j);
}

static void rest_done(vt_reqpool_job *w)
{
	struct rest_job *j = (struct rest_job *)w;
	if (j->code && (j->status == 429 || j->status == 503)) {
		/* overload: tell clients when to come back */
		char body[512];
		size_t n = vt_http_error_json(body, sizeof body, j->status,
					      j->code, j->err.msg);
		vt_http_respond_hdrs(j->req, j->status, "application/json",
				     "Retry-After: 1\r\n", body,
				     n < sizeof body ? n : sizeof body - 1);
	} else if (j->code) {
		vt_http_respond_error(j->req, j->status, j->code, "%s",
				      j->err.msg);
	}
	else
		vt_http_respond(j->req, j->status, j->ctype, j->out.data,
				j->out.len);
	vt_buf_free(&j->out);
	vt_free(j);
}

static void on_http(void *ud, vt_http_req *req)
{
	struct server *s = ud;
	vt_rest_match m;
	int r = vt_rest_match_route(req->method, req->path, &m);
	if (r == 404) {
		vt_api_observe(s->api, NULL, VT_ENOENT, 0);
		vt_http_respond_error(req, 404, "NOT_FOUND",
				      "no route for %s %.200s", req->method,
				      req->path);
		return;
	}
	if (r) {
		vt_http_respond_error(req, r, r == 405 ? "UNIMPLEMENTED"
						       : "INVALID_ARGUMENT",
				      r == 405 ? "%s is not allowed on %.200s"
					       : "%s %.200s: bad path",
				      req->method, req->path);
		return;
	}
	if (m.route->special == VT_REST_HEALTH) {
		char body[128];
		int n = snprintf(body, sizeof body,
				 "{\"status\":\"ok\",\"version\":\"%s\"}",
				 VT_VERSION);
		vt_http_respond(req, 200, "application/json", body, (size_t)n);
		return;
	}
	if (m.route->special == VT_REST_READY) {
		if (s->stopping)
			vt_http_respond_error(req, 503, "UNAVAILABLE",
					      "shutting down");
		else if (!s->ready)
			vt_http_respond_error(req, 503, "UNAVAILABLE",
					      "starting: the worker has not "
					      "registered with the placement "
					      "driver yet");
		else
			vt_http_respond(req, 200, "application/json",
					"{\"ready\":true}", 14);
		return;
	}
	struct rest_job *j = vt_calloc(1, sizeof *j);
	if (!j) {
		vt_http_respond_error(req, 500, "INTERNAL", "out of memory");
		return;
	}
	j->srv = s;
	j->req = req;
	j->m = m;
	j->t0 = vt_clock_mono_ns();
	j->ctype = "application/json";
	j->method = m.route->method ? vt_api_method_find(m.route->method) : NULL;
	vt_buf_init(&j->out, (size_t)1 << 31);
	j->work.work = rest_work;
	j->work.done = rest_done;
	if (vt_reqpool_submit(s->pool, &j->work)) {
		vt_free(j);
		vt_http_respond_error(req, 503, "UNAVAILABLE", "cannot queue");
	}
}

/* ---- gRPC ---------------------------------------------------------------------- */

struct frame {
	struct frame *next;
	size_t len;
	uint8_t data[];
};

struct grpc_job {
	vt_reqpool_job work;  /* first: the pool's callbacks cast back */
	uv_async_t async;     /* streaming: wakes the loop to send frames */
	struct server *srv;
	vt_grpc_call *call;
	const vt_api_method *method;
	int rc;
	vt_errmsg err;
	uint8_t *reply;
	size_t reply_len;
	pthread_mutex_t mu;   /* frames */
	struct frame *head, *tail;
	atomic_int cancelled;
};

static void send_frames(struct grpc_job *j)
{
	pthread_mutex_lock(&j->mu);
	struct frame *f = j->head;
	j->head = j->tail = NULL;
	pthread_mutex_unlock(&j->mu);
	while (f) {
		struct frame *n = f->next;
		if (!atomic_load(&j->cancelled))
			vt_grpc_call_send_bytes(j->call, f->data, f->len);
		vt_free(f);
		f = n;
	}
}

static void on_async(uv_async_t *a)
{
	send_frames(a->data);
}

static int on_stream_msg(void *ud, const ProtobufCMessage *msg)
{
	struct grpc_job *j = ud;
	if (atomic_load(&j->cancelled))
		return 1;
	size_t n = protobuf_c_message_get_packed_size(msg);
	struct frame *f = vt_malloc(sizeof *f + n);
	if (!f)
		return 1;
	f->next = NULL;
	f->len = protobuf_c_message_pack(msg, f->data);
	pthread_mutex_lock(&j->mu);
	if (j->tail)
		j->tail->next = f;
	else
		j->head = f;
	j->tail = f;
	pthread_mutex_unlock(&j->mu);
	uv_async_send(&j->async);
	return 0;
}

static void on_cancel(vt_grpc_call *c, void *ud)
{
	(void)c;
	struct grpc_job *j = ud;
	atomic_store(&j->cancelled, 1);
}

static void grpc_work(vt_reqpool_job *w)
{
	struct grpc_job *j = (struct grpc_job *)w;
	vt_arena *a = vt_arena_create(0);
	if (!a) {
		j->rc = vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		return;
	}
	vt_api_ctx cx = {a,
			 deadline_from(j->srv, vt_grpc_call_deadline_ns(j->call)),
			 j->method->streaming ? on_stream_msg : NULL, j};
	ProtobufCMessage *resp;
	j->rc = vt_api_call(j->srv->api, j->method, &cx,
			    vt_grpc_call_request(j->call), &resp, &j->err);
	if (!j->rc && resp) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		j->reply = vt_malloc(n ? n : 1);
		if (!j->reply)
			j->rc = vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		else
			j->reply_len = protobuf_c_message_pack(resp, j->reply);
	}
	vt_arena_destroy(a);
}

static void grpc_job_free(uv_handle_t *h)
{
	struct grpc_job *j = h->data;
	pthread_mutex_destroy(&j->mu);
	vt_free(j->reply);
	vt_free(j);
}

static void grpc_done(vt_reqpool_job *w)
{
	struct grpc_job *j = (struct grpc_job *)w;
	if (j->method->streaming)
		send_frames(j);
	if (j->rc)
		vt_grpc_call_finish(j->call, vt_api_status_of(j->rc).grpc,
				    j->err.msg);
	else if (j->method->streaming)
		vt_grpc_call_finish(j->call, VT_GRPC_OK, NULL);
	else
		vt_grpc_call_reply_bytes(j->call, j->reply, j->reply_len);
	if (j->method->streaming) {
		uv_close((uv_handle_t *)&j->async, grpc_job_free);
	} else {
		pthread_mutex_destroy(&j->mu);
		vt_free(j->reply);
		vt_free(j);
	}
}

static void on_grpc(vt_grpc_call *call, void *ud)
{
	const struct grpc_route *r = ud;
	struct grpc_job *j = vt_calloc(1, sizeof *j);
	if (!j) {
		vt_grpc_call_finish(call, VT_GRPC_RESOURCE_EXHAUSTED,
				    "out of memory");
		return;
	}
	j->srv = r->srv;
	j->call = call;
	j->method = r->method;
	pthread_mutex_init(&j->mu, NULL);
	j->work.work = grpc_work;
	j->work.done = grpc_done;
	if (r->method->streaming) {
		uv_async_init(r->srv->loop, &j->async, on_async);
		j->async.data = j;
		vt_grpc_call_on_cancel(call, on_cancel, j);
	}
	if (vt_reqpool_submit(r->srv->pool, &j->work)) {
		vt_grpc_call_finish(call, VT_GRPC_UNAVAILABLE, "cannot queue");
		if (r->method->streaming)
			uv_close((uv_handle_t *)&j->async, grpc_job_free);
		else
			grpc_job_free((uv_handle_t *)&j->async);
	}
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void http_closed(vt_http_server *h, void *ud)
{
	(void)h;
	(void)ud;
	VT_LOG(VT_LOG_INFO, "serve", "REST server stopped");
}

static void grpc_closed(void *ud)
{
	struct server *s = ud;
	s->grpc = NULL;
	VT_LOG(VT_LOG_INFO, "serve", "gRPC server stopped");
}

/* The ready timer and the roles: requests in flight still reach the
 * worker in-process, so its server closing with the same grace is fine. */
static void stop_roles(struct server *s)
{
	if (s->ready_timer.data) /* started */
		uv_close((uv_handle_t *)&s->ready_timer, NULL);
	s->ready_timer.data = NULL;
	s->ready_fn = NULL;
	if (s->stop_fn) {
		s->stop_fn(s->roles);
		s->stop_fn = NULL;
	}
}

/* One line tests and scripts can wait for, with the real ports: printed
 * once the API can answer. */
static void announce(struct server *s)
{
	s->ready = 1;
	printf("vectron %s: REST on http://%s:%d, gRPC on %s:%d, %s\n",
	       s->name, s->cfg.host, vt_http_server_port(s->http), s->cfg.host,
	       vt_grpc_server_port(s->grpc), s->where);
	fflush(stdout);
}

static void on_ready_timer(uv_timer_t *t)
{
	struct server *s = t->data;
	if (!s->ready_fn || !s->ready_fn(s->roles))
		return;
	uv_timer_stop(t);
	announce(s);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct server *s = h->data;
	if (s->stopping)
		return;
	s->stopping = 1;
	VT_LOG(VT_LOG_INFO, "serve",
	       "%s: stopping: no new connections, requests in flight get %d ms",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT", s->cfg.shutdown_grace_ms);
	vt_http_server_shutdown(s->http, http_closed, s);
	vt_grpc_server_close(s->grpc, (uint64_t)s->cfg.shutdown_grace_ms,
			     grpc_closed, s);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	stop_roles(s);
}

static int start(struct server *s)
{
	vt_errmsg e = {{0}};
	int rc;
	vt_http_opts ho;
	memset(&ho, 0, sizeof ho);
	ho.max_body_bytes = (size_t)s->cfg.max_body_bytes;
	ho.cors_origin = s->cfg.cors_origin;
	if ((rc = vt_http_server_create(s->loop, &ho, on_http, s, &s->http, &e)) ||
	    (rc = vt_http_server_listen(s->http, s->cfg.host, s->cfg.rest_port,
					&e))) {
		fprintf(stderr, "vectron %s: REST on %s:%d: %s\n", s->name,
			s->cfg.host, s->cfg.rest_port, e.msg);
		return rc;
	}
	vt_grpc_server_opts go;
	vt_grpc_server_opts_default(&go);
	go.max_recv_msg = go.max_send_msg = (size_t)s->cfg.max_message_bytes;
	if ((rc = vt_grpc_server_new(s->loop, &go, &s->grpc))) {
		fprintf(stderr, "vectron %s: gRPC: %s\n", s->name,
			vt_strerror(rc));
		return rc;
	}
	size_t n;
	const vt_api_method *m = vt_api_methods(&n);
	s->routes = vt_calloc(n, sizeof *s->routes);
	if (!s->routes)
		return VT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char path[128];
		snprintf(path, sizeof path, "/%s/%s", VT_API_SERVICE, m[i].name);
		s->routes[i] = (struct grpc_route){s, &m[i]};
		vt_grpc_method gm = {path,
				     m[i].streaming ? VT_GRPC_SERVER_STREAM
						    : VT_GRPC_UNARY,
				     m[i].input, on_grpc, &s->routes[i]};
		if ((rc = vt_grpc_server_add_method(s->grpc, &gm)))
			return rc;
	}
	if ((rc = vt_grpc_server_listen(s->grpc, s->cfg.host, s->cfg.grpc_port,
					&e))) {
		fprintf(stderr, "vectron %s: gRPC on %s:%d: %s\n", s->name,
			s->cfg.host, s->cfg.grpc_port, e.msg);
		return rc;
	}
	uv_signal_init(s->loop, &s->sigterm);
	uv_signal_init(s->loop, &s->sigint);
	s->sigterm.data = s->sigint.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	if (!s->ready_fn) {
		announce(s);
	} else {
		uv_timer_init(s->loop, &s->ready_timer);
		s->ready_timer.data = s;
		uv_timer_start(&s->ready_timer, on_ready_timer, 0, 5);
	}
	return 0;
}

/* Applies the log level; 0 or 2 (the exit code) with the reason. */
static int log_setup(const struct server *s)
{
	int lvl = vt_log_level_parse(s->cfg.log_level);
	if (lvl < 0) {
		fprintf(stderr, "vectron %s: log_level: unknown \"%s\"\n",
			s->name, s->cfg.log_level);
		return 2;
	}
	vt_log_set_level(lvl);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Serves the API over s->db until SIGTERM/SIGINT (or a failed start):
 * the API, the request workers, both servers and the loop. Leaves the
 * database open for its owner. Returns 0, or the start's VT_E* error. */
static int run(struct server *s, unsigned threads)
{
	vt_api_opts ao;
	vt_api_opts_default(&ao);
	ao.default_timeout_ms = (uint32_t)s->cfg.timeout_ms;
	ao.version = VT_VERSION;
	int rc = vt_api_create(s->db, &ao, &s->api);
	if (!rc && (rc = vt_reqpool_create(s->loop, threads,
					   (unsigned)s->cfg.request_spin_us,
					   (unsigned)s->cfg.loop_spin_us,
					   &s->pool)))
		fprintf(stderr, "vectron %s: request workers: %s\n", s->name,
			vt_strerror(rc));
	if (!rc)
		rc = start(s);
	if (rc && !s->stopping) {
		/* close what started so the loop can end */
		s->stopping = 1;
		if (s->http)
			vt_http_server_shutdown(s->http, http_closed, s);
		if (s->grpc)
			vt_grpc_server_close(s->grpc, 0, grpc_closed, s);
		if (uv_is_active((uv_handle_t *)&s->sigterm)) {
			uv_close((uv_handle_t *)&s->sigterm, NULL);
			uv_close((uv_handle_t *)&s->sigint, NULL);
		}
		stop_roles(s);
	}
	uv_run(s->loop, UV_RUN_DEFAULT);
	vt_reqpool_destroy(s->pool); /* nothing in flight: the loop ended */
	vt_http_server_destroy(s->http);
	vt_api_destroy(s->api);
	vt_free(s->routes);
	return rc;
}

/* ---- serve: the placement driver, a worker and a gateway in one process --------- */

struct roles {
	vt_repl_host *host;      /* the PD's group and every replica's */
	vt_worker_role *worker;
	vt_pd_role *pd;
	/* an earlier layout being imported (import.h) */
	const char *data_dir;
	vt_db *db;
	pthread_t import_thr;
	int importing;           /* the thread exists */
	atomic_int imported;     /* it finished (or there was nothing) */
	atomic_int import_failed;
	atomic_int stopping;
};

static int roles_ready(void *ud)
{
	struct roles *r = ud;
	return vt_worker_role_registered(r->worker) &&
	       atomic_load(&r->imported);
}

/* Imports on its own thread while the loop serves the roles; a failure
 * stops the server as SIGTERM would (exit 1), the old files untouched. */
static void *import_main(void *arg)
{
	struct roles *r = arg;
	vt_errmsg e = {{0}};
	/* the worker must be registered before a collection can be placed */
	while (!vt_worker_role_registered(r->worker))
		if (atomic_load(&r->stopping))
			return NULL;
		else
			usleep(5000);
	if (vt_import_run(r->data_dir, r->db, &e)) {
		VT_LOG(VT_LOG_ERROR, "serve", "import of the earlier layout "
		       "failed, stopping (nothing old was changed): %s", e.msg);
		atomic_store(&r->import_failed, 1);
		kill(getpid(), SIGTERM);
		return NULL;
	}
	atomic_store(&r->imported, 1);
	return NULL;
}

static void roles_stop(void *ud)
{
	struct roles *r = ud;
	atomic_store(&r->stopping, 1);
	if (r->pd)
		vt_pd_role_stop(r->pd);
	if (r->worker)
		vt_worker_role_stop(r->worker);
}

static int roles_metrics(void *ud, vt_buf *out)
{
	return vt_pd_role_metrics(((struct roles *)ud)->pd, out);
}

static void roles_kick(void *ud)
{
	vt_worker_role_kick(((struct roles *)ud)->worker);
}

/* After the loop ended: the worker detaches its replicas, then the host
 * closes (the PD's group with it), then the PD's state goes. */
static void roles_free(struct roles *r)
{
	vt_worker_role_free(r->worker);
	if (r->host)
		vt_repl_host_close(r->host);
	vt_pd_role_free(r->pd);
	vt_repl_host_free(r->host);
}

static int data_dir_make(const char *dir)
{
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "vectron serve: %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Starts the roles on s->loop: the Raft host, the worker (its internal
 * server on loopback), the PD on that server, then the worker's
 * heartbeats. 0 or -1 with the reason on stderr. */
static int roles_start(struct server *s, struct roles *r, unsigned threads)
{
	vt_errmsg e = {{0}};
	char addr[300], wdir[1100];
	vt_repl_host_opts ho;
	vt_repl_host_opts_default(&ho);
	/* Groups have one voter: nothing crosses this transport, so it
	 * stays on loopback whatever `host` is. */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", s->cfg.raft_port);
	ho.bind = addr;
	if (vt_repl_host_open(&ho, &r->host, &e)) {
		fprintf(stderr, "vectron serve: raft on %s: %s\n", addr, e.msg);
		return -1;
	}
	vt_shard_opts so;
	vt_shard_opts_default(&so);
	/* The raft log is durable and replayed: the store need not fsync
	 * each commit (docs/shard.md §4). */
	so.store_sync = VT_STORE_SYNC_META;
	so.snapshot_entries = (uint64_t)s->cfg.snapshot_entries;
	so.queue_max = (uint64_t)s->cfg.queue_max;
	so.queue_wait_ms = (uint32_t)s->cfg.queue_wait_ms;
	snprintf(wdir, sizeof wdir, "%s/worker", s->cfg.data_dir);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", s->cfg.internal_port);
	vt_worker_role_opts wo = {
		.loop = s->loop,
		.host = r->host,
		.data_dir = wdir,
		.listen = addr,
		.heartbeat_ms = 200,
		.threads = threads < 2 ? threads : 2,
		.shutdown_grace_ms = s->cfg.shutdown_grace_ms,
		.shard = &so,
	};
	if (vt_worker_role_start(&wo, &r->worker, &e)) {
		fprintf(stderr, "vectron serve: worker: %s\n", e.msg);
		return -1;
	}
	vt_pd_role_opts po = {
		.loop = s->loop,
		.host = r->host,
		.grpc = vt_worker_role_grpc(r->worker),
		.data_dir = s->cfg.data_dir,
		.listen = vt_worker_role_addr(r->worker),
		/* leaders reported by the worker reach the routing on the
		 * next pass: a create waits for them */
		.reconcile_ms = 100,
	};
	if (vt_pd_role_start(&po, &r->pd, &e) ||
	    vt_worker_role_run(r->worker, &e)) {
		fprintf(stderr, "vectron serve: %s\n", e.msg);
		return -1;
	}
	VT_LOG(VT_LOG_INFO, "serve", "placement driver and worker on %s "
	       "(vectron cluster --pd %s), raft on %s",
	       vt_worker_role_addr(r->worker), vt_worker_role_addr(r->worker),
	       vt_repl_host_address(r->host));
	return 0;
}

int vt_cli_serve(int argc, char **argv)
{
	struct server s;
	memset(&s, 0, sizeof s);
	s.name = "serve";
	int r = vt_serve_config_load(&s.cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if ((r = log_setup(&s)))
		return r;
	if (data_dir_make(s.cfg.data_dir))
		return 1;
	snprintf(s.where, sizeof s.where, "data in %s", s.cfg.data_dir);
	unsigned threads = s.cfg.threads ? (unsigned)s.cfg.threads
					 : vt_cpu_count();
	/* Host calls block (a commit, a wait for leadership) on libuv's
	 * pool: the PD's handlers use it (pd.c). A user's setting wins. */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	s.loop = uv_default_loop();
	struct roles ro;
	memset(&ro, 0, sizeof ro);
	vt_gw *gw = NULL;
	vt_errmsg e = {{0}};
	uint64_t t0 = vt_clock_mono_ns();
	int rc = roles_start(&s, &ro, threads);
	if (!rc) {
		vt_gw_opts go;
		vt_gw_opts_default(&go);
		go.pd = go.local_addr = vt_worker_role_addr(ro.worker);
		go.local_call = vt_worker_call_local;
		go.local_ud = ro.worker;
		go.changed = roles_kick;
		go.changed_ud = &ro;
		vt_db_opts dbo;
		vt_db_opts_default(&dbo);
		dbo.threads = threads;
		dbo.default_shards = s.cfg.shards ? (uint32_t)s.cfg.shards
						  : vt_cpu_count();
		if ((rc = vt_gw_open(&go, &gw, &e)) ||
		    (rc = vt_db_open_remote(vt_gw_remote(gw), &dbo, &s.db,
					    &e)))
			fprintf(stderr, "vectron serve: %s\n", e.msg);
	}
	if (!rc) {
		VT_LOG(VT_LOG_INFO, "serve", "data opened in %.2f s",
		       (double)(vt_clock_mono_ns() - t0) / 1e9);
		/* Builds before the roles kept <data_dir>/collections: copy
		 * them in (import.h); ready once that is done. */
		ro.data_dir = s.cfg.data_dir;
		ro.db = s.db;
		atomic_store(&ro.imported, !vt_import_needed(s.cfg.data_dir));
		if (!atomic_load(&ro.imported)) {
			if (pthread_create(&ro.import_thr, NULL, import_main,
					   &ro)) {
				fprintf(stderr, "vectron serve: import thread\n");
				rc = VT_EIO;
			} else {
				ro.importing = 1;
			}
		}
	}
	if (!rc) {
		s.gw = gw;
		s.roles = &ro;
		s.stop_fn = roles_stop;
		s.ready_fn = roles_ready;
		s.metrics_fn = roles_metrics;
		rc = run(&s, threads);
	} else {
		/* let what started stop, and the loop end */
		roles_stop(&ro);
		uv_run(s.loop, UV_RUN_DEFAULT);
	}
	/* the import's calls fail once the roles stop: it ends */
	if (ro.importing)
		pthread_join(ro.import_thr, NULL);
	if (atomic_load(&ro.import_failed))
		rc = VT_EIO;
	vt_db_close(s.db);
	vt_gw_close(gw);
	roles_free(&ro);
	uv_loop_close(s.loop);
	VT_LOG(VT_LOG_INFO, "serve", "stopped");
	return rc ? 1 : 0;
}

int vt_cli_gateway(int argc, char **argv)
{
	struct server s;
	memset(&s, 0, sizeof s);
	s.name = "gateway";
	int r = vt_gateway_config_load(&s.cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if ((r = log_setup(&s)))
		return r;
	snprintf(s.where, sizeof s.where, "placement driver %s", s.cfg.pd);
	unsigned threads = s.cfg.threads ? (unsigned)s.cfg.threads
					 : vt_cpu_count();
	vt_gw_opts go;
	vt_gw_opts_default(&go);
	go.pd = s.cfg.pd;
	go.rf = (uint32_t)s.cfg.replication_factor;
	go.search_replicas = (uint32_t)s.cfg.search_replicas;
	go.rpc_timeout_ms = (uint32_t)s.cfg.rpc_timeout_ms;
	go.retry_ms = (uint32_t)s.cfg.retry_ms;
	go.routing_ttl_ms = (uint32_t)s.cfg.routing_ttl_ms;
	go.prefer_search_only = s.cfg.prefer_search_only;
	vt_errmsg e = {{0}};
	vt_gw *gw;
	if (vt_gw_open(&go, &gw, &e)) {
		fprintf(stderr, "vectron gateway: %s\n", e.msg);
		return 2;
	}
	s.gw = gw;
	vt_db_opts dbo;
	vt_db_opts_default(&dbo);
	/* Fan-out threads wait on the network, not the CPU. */
	dbo.threads = (unsigned)s.cfg.fanout_threads;
	dbo.default_shards = s.cfg.shards ? (uint32_t)s.cfg.shards
					  : vt_cpu_count();
	if (vt_db_open_remote(vt_gw_remote(gw), &dbo, &s.db, &e)) {
		fprintf(stderr, "vectron gateway: %s\n", e.msg);
		vt_gw_close(gw);
		return 1;
	}
	s.loop = uv_default_loop();
	int rc = run(&s, threads);
	vt_db_close(s.db);
	vt_gw_close(gw);
	uv_loop_close(s.loop);
	VT_LOG(VT_LOG_INFO, "gateway", "stopped");
	return rc ? 1 : 0;
}
