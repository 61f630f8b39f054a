/* worker_pd.c: the PD client of `vectron worker` and its beat thread:
 * register (following "not the leader"), heartbeat with a report per
 * replica, hand the answers to the reconciler (worker_int.h). */
#include "worker_int.h"

/* ---- the PD client -------------------------------------------------------- */

struct pd_done_ud {
	struct worker *w;
	struct pdcall *c;
};

static void pd_on_msg(void *ud, ProtobufCMessage *msg, const uint8_t *raw,
		      size_t len)
{
	(void)raw;
	(void)len;
	struct pdcall *c = ((struct pd_done_ud *)ud)->c;
	if (c->reply)
		vt_grpc_msg_free(c->reply);
	c->reply = msg;
}

void vt__worker_pd_finish(worker *w, struct pdcall *c, int status,
		      const char *msg)
{
	pthread_mutex_lock(&w->pdmu);
	c->status = status;
	snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
	c->done = 1;
	pthread_cond_broadcast(&w->pdcv);
	pthread_mutex_unlock(&w->pdmu);
}

static void pd_on_done(void *ud, int status, const char *message)
{
	struct pd_done_ud *d = ud;
	vt__worker_pd_finish(d->w, d->c, status, message);
	vt_free(d);
}

/* Loop thread: starts the queued calls. */
void vt__worker_pd_async(uv_async_t *a)
{
	worker *w = a->data;
	pthread_mutex_lock(&w->pdmu);
	struct pdcall *c = w->pd_head;
	w->pd_head = w->pd_tail = NULL;
	pthread_mutex_unlock(&w->pdmu);
	while (c) {
		struct pdcall *next = c->next;
		int rc = 0;
		if (!w->pd_cli[c->slot]) {
			char host[128];
			int port;
			rc = vt__worker_split_addr(w->pd_addr[c->slot], host, sizeof host,
					&port);
			if (!rc)
				rc = vt_grpc_client_new(w->loop, host, port,
							NULL,
							&w->pd_cli[c->slot]);
		}
		struct pd_done_ud *d = rc ? NULL : vt_malloc(sizeof *d);
		if (!rc && !d)
			rc = VT_ENOMEM;
		if (!rc) {
			*d = (struct pd_done_ud){w, c};
			vt_grpc_call_opts o = {.timeout_ms = PD_TIMEOUT_MS};
			rc = vt_grpc_client_call(w->pd_cli[c->slot], c->path,
						 NULL, c->req, c->req_len,
						 c->desc, &o, pd_on_msg,
						 pd_on_done, d, NULL);
			if (rc)
				vt_free(d);
		}
		if (rc)
			vt__worker_pd_finish(w, c, VT_GRPC_UNAVAILABLE, vt_strerror(rc));
		c = next;
	}
}

/* One call to PD address `slot`, from a thread other than the loop.
 * Returns the gRPC status; on OK *reply is the decoded answer (the caller
 * frees it with vt_grpc_msg_free); `msg` gets the status message. */
static int pd_call(worker *w, int slot, const char *method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc,
		   ProtobufCMessage **reply, char *msg, size_t cap)
{
	char path[128];
	snprintf(path, sizeof path, PD_SVC "%s", method);
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = vt_malloc(len ? len : 1);
	if (!buf) {
		snprintf(msg, cap, "out of memory");
		return VT_GRPC_RESOURCE_EXHAUSTED;
	}
	protobuf_c_message_pack(req, buf);
	struct pdcall c = {.slot = slot, .path = path, .req = buf,
			   .req_len = len, .desc = desc};
	pthread_mutex_lock(&w->pdmu);
	if (w->pd_stopped) {
		pthread_mutex_unlock(&w->pdmu);
		vt_free(buf);
		snprintf(msg, cap, "shutting down");
		return VT_GRPC_CANCELLED;
	}
	if (w->pd_tail)
		w->pd_tail->next = &c;
	else
		w->pd_head = &c;
	w->pd_tail = &c;
	uv_async_send(&w->pd_async);
	while (!c.done)
		pthread_cond_wait(&w->pdcv, &w->pdmu);
	pthread_mutex_unlock(&w->pdmu);
	vt_free(buf);
	snprintf(msg, cap, "%s", c.msg);
	if (c.status == VT_GRPC_OK && !c.reply) {
		snprintf(msg, cap, "empty answer");
		return VT_GRPC_INTERNAL;
	}
	if (c.status != VT_GRPC_OK) {
		vt_grpc_msg_free(c.reply);
		c.reply = NULL;
	}
	*reply = c.reply;
	return c.status;
}

/* The slot of PD address `a`, added when new (a leader named by a
 * follower that is not in the configured list); -1 when full. */
static int pd_slot(worker *w, const char *a)
{
	pthread_mutex_lock(&w->pdmu);
	int s = -1;
	for (int i = 0; i < w->n_pd; i++)
		if (!strcmp(w->pd_addr[i], a))
			s = i;
	if (s < 0 && w->n_pd < MAX_PD && strlen(a) < 128) {
		snprintf(w->pd_addr[w->n_pd], 128, "%s", a);
		s = w->n_pd++;
	}
	pthread_mutex_unlock(&w->pdmu);
	return s;
}

/* Calls the PD leader: the address that answered last, following a
 * follower's "not the leader; leader: X" once per hop, then probing the
 * other addresses. Returns the gRPC status of the last try; `why` gets a
 * line per failed address. */
static int pd_request_one(worker *w, const char *method,
			  const ProtobufCMessage *req,
			  const ProtobufCMessageDescriptor *desc,
			  ProtobufCMessage **reply, char *why, size_t cap)
{
	int slot = atomic_load(&w->pd_cur), st = VT_GRPC_UNAVAILABLE;
	size_t used = 0;
	why[0] = '\0';
	for (int tries = 0; tries < 2 * w->n_pd + 1; tries++) {
		if (atomic_load(&w->stopping))
			return VT_GRPC_CANCELLED;
		char msg[VT_ERRMSG_SIZE], leader[128];
		st = pd_call(w, slot, method, req, desc, reply, msg,
			     sizeof msg);
		if (st == VT_GRPC_OK) {
			atomic_store(&w->pd_cur, slot);
			return st;
		}
		if (used < cap)
			used += (size_t)snprintf(why + used, cap - used,
						 "%s%s: %s %s", used ? "; " : "",
						 w->pd_addr[slot],
						 vt_grpc_status_name(st), msg);
		int next = -1;
		if (st == VT_GRPC_FAILED_PRECONDITION &&
		    vt_worker_leader_parse(msg, leader, sizeof leader) == 1)
			next = pd_slot(w, leader);
		if (next < 0 || next == slot)
			next = (slot + 1) % w->n_pd;
		slot = next;
		if (st == VT_GRPC_FAILED_PRECONDITION &&
		    !strstr(msg, "not the leader"))
			return st; /* refused by the leader itself */
	}
	return st;
}

/* pd_request_one, one thread at a time (it walks the shared address
 * list). */
static int pd_request(worker *w, const char *method,
		      const ProtobufCMessage *req,
		      const ProtobufCMessageDescriptor *desc,
		      ProtobufCMessage **reply, char *why, size_t cap)
{
	pthread_mutex_lock(&w->pdreq);
	int st = pd_request_one(w, method, req, desc, reply, why, cap);
	pthread_mutex_unlock(&w->pdreq);
	return st;
}

int vt__worker_group_alive(worker *w, const char *collection, uint32_t shard,
			   uint64_t group)
{
	Vectron__Internal__V1__GetRoutingRequest req =
		VECTRON__INTERNAL__V1__GET_ROUTING_REQUEST__INIT;
	req.has_version = 1;
	req.version = VT_WORKER_PROTOCOL;
	req.name = (char *)collection;
	ProtobufCMessage *rep;
	char why[1024];
	int st = pd_request(w, "GetRouting", &req.base,
			    &vectron__internal__v1__get_routing_response__descriptor,
			    &rep, why, sizeof why);
	if (st == VT_GRPC_NOT_FOUND)
		return 0;
	if (st)
		return -1;
	const Vectron__Internal__V1__GetRoutingResponse *r = (const void *)rep;
	int alive = 0;
	for (size_t i = 0; i < r->n_collections; i++)
		for (size_t k = 0; k < r->collections[i]->n_shards; k++) {
			const Vectron__Internal__V1__ShardRoute *s =
				r->collections[i]->shards[k];
			alive |= s->index == shard && s->group == group;
		}
	vt_grpc_msg_free(rep);
	return alive;
}

/* ---- register and heartbeat (the beat thread) ----------------------------- */

static int do_register(worker *w, char *why, size_t cap)
{
	Vectron__Internal__V1__WorkerInfo wi =
		VECTRON__INTERNAL__V1__WORKER_INFO__INIT;
	wi.has_id = wi.has_capacity = wi.has_role = 1;
	wi.id = w->id;
	wi.addr = w->addr;
	wi.raft_addr = w->cfg.raft_advertise[0]
			       ? w->cfg.raft_advertise
			       : (char *)vt_repl_host_address(w->host);
	wi.zone = w->cfg.zone;
	wi.rack = w->cfg.rack;
	wi.capacity = (uint64_t)w->cfg.capacity;
	wi.role = w->search_only ? VECTRON__INTERNAL__V1__WORKER_ROLE__SEARCH_ONLY
				 : VECTRON__INTERNAL__V1__WORKER_ROLE__NORMAL;
	Vectron__Internal__V1__RegisterWorkerRequest req =
		VECTRON__INTERNAL__V1__REGISTER_WORKER_REQUEST__INIT;
	req.has_version = 1;
	req.version = VT_WORKER_PROTOCOL;
	req.worker = &wi;
	ProtobufCMessage *reply = NULL;
	int st = pd_request(w, "RegisterWorker", &req.base,
			    &vectron__internal__v1__register_worker_response__descriptor,
			    &reply, why, cap);
	if ((st == VT_GRPC_FAILED_PRECONDITION || st == VT_GRPC_ALREADY_EXISTS) &&
	    strstr(why, "was removed")) {
		/* cluster.proto: a removed worker stops with an error (its
		 * replicas are gone from the PD's plan; an operator decides
		 * what to do with this data directory) */
		VT_LOG(VT_LOG_ERROR, MOD, "the PD refuses this worker: %s; "
		       "stopping", why);
		atomic_store(&w->removed, 1);
		raise(SIGTERM);
		return st;
	}
	if (st != VT_GRPC_OK)
		return st;
	Vectron__Internal__V1__RegisterWorkerResponse *rr = (void *)reply;
	VT_LOG(VT_LOG_INFO, MOD, "registered with the PD at %s as worker %"
	       PRIu64 " (assignments epoch %" PRIu64 ")",
	       w->pd_addr[atomic_load(&w->pd_cur)], w->id, rr->epoch);
	vt_grpc_msg_free(reply);
	pthread_mutex_lock(&w->mu);
	w->registered = 1;
	pthread_mutex_unlock(&w->mu);
	return st;
}

/* Hands an answer to the reconciler: a full list replaces any untaken
 * one (level-triggered: only the newest matters); elects queue up. */
static void beat_answer(worker *w, Vectron__Internal__V1__HeartbeatResponse *a)
{
	pthread_mutex_lock(&w->mu);
	if (!a->registered) {
		w->registered = 0;
		pthread_mutex_unlock(&w->mu);
		VT_LOG(VT_LOG_WARN, MOD, "the PD does not know this worker "
		       "(restarted or removed it): registering again");
		vt_grpc_msg_free(&a->base);
		return;
	}
	w->epoch = a->epoch;
	for (size_t i = 0; i < a->n_elect && w->n_elect < MAX_ELECT; i++)
		w->elect[w->n_elect++] = *a->elect[i];
	w->answer_seq++;
	if (!a->unchanged) {
		if (w->full_new)
			vt_grpc_msg_free(&w->full_new->base);
		w->full_new = a;
		a = NULL;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (a)
		vt_grpc_msg_free(&a->base);
}

static int do_heartbeat(worker *w, char *why, size_t cap)
{
	static uint64_t last_ns, last_requests; /* the beat thread's */
	size_t n;
	struct replica **v = vt__wrep_all(w, &n);
	if (!v)
		return VT_GRPC_RESOURCE_EXHAUSTED;
	Vectron__Internal__V1__ReplicaReport *rep = vt_calloc(n + 1,
							      sizeof *rep);
	Vectron__Internal__V1__ReplicaReport **rp = vt_calloc(n + 1,
							      sizeof *rp);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!rep || !rp)
		goto out;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		vt__wrep_stats_t s;
		if (vt__wrep_stats(w, v[i], &s))
			continue;
		Vectron__Internal__V1__ReplicaReport x =
			VECTRON__INTERNAL__V1__REPLICA_REPORT__INIT;
		x.has_group = x.has_term = x.has_leader = x.has_caught_up = 1;
		x.has_applied = x.has_points = 1;
		x.group = v[i]->group;
		x.term = s.term;
		x.leader = s.leader;
		x.caught_up = s.caught_up;
		x.applied = s.applied;
		x.points = s.points;
		rep[k] = x;
		rp[k] = &rep[k];
		k++;
	}
	Vectron__Internal__V1__HeartbeatRequest req =
		VECTRON__INTERNAL__V1__HEARTBEAT_REQUEST__INIT;
	req.has_version = req.has_worker = req.has_known_epoch = 1;
	req.version = VT_WORKER_PROTOCOL;
	req.worker = w->id;
	pthread_mutex_lock(&w->mu);
	req.known_epoch = w->epoch;
	pthread_mutex_unlock(&w->mu);
	double load[1];
	if (getloadavg(load, 1) == 1) {
		req.has_load = 1;
		req.load = load[0];
	}
	uint64_t now = vt_clock_mono_ns(), nreq = atomic_load(&w->requests);
	if (last_ns && now > last_ns) {
		req.has_qps = 1;
		req.qps = (double)(nreq - last_requests) * 1e9 /
			  (double)(now - last_ns);
	}
	last_ns = now;
	last_requests = nreq;
	req.n_replicas = k;
	req.replicas = rp;
	ProtobufCMessage *reply = NULL;
	st = pd_request(w, "Heartbeat", &req.base,
			&vectron__internal__v1__heartbeat_response__descriptor,
			&reply, why, cap);
	if (st == VT_GRPC_OK)
		beat_answer(w, (void *)reply);
out:
	vt_free(rep);
	vt_free(rp);
	vt__wrep_put_all(w, v, n);
	return st;
}

void *vt__worker_beat(void *arg)
{
	worker *w = arg;
	unsigned backoff = 200;
	char why[1024], last[1024] = "";
	uint64_t last_log = 0;
	while (!atomic_load(&w->stopping)) {
		pthread_mutex_lock(&w->mu);
		int reg = w->registered;
		pthread_mutex_unlock(&w->mu);
		int st = reg ? do_heartbeat(w, why, sizeof why)
			     : do_register(w, why, sizeof why);
		if (atomic_load(&w->stopping))
			break;
		unsigned wait = (unsigned)w->cfg.heartbeat_ms;
		if (st != VT_GRPC_OK) {
			/* Say why, but not every round of a long outage. */
			uint64_t now = vt_clock_mono_ns();
			if (strcmp(why, last) || now - last_log > 10000000000ull) {
				VT_LOG(VT_LOG_WARN, MOD, "%s failed (retrying "
				       "in %u ms): %s", reg ? "heartbeat"
				       : "registration", backoff, why);
				snprintf(last, sizeof last, "%s", why);
				last_log = now;
			}
			wait = backoff;
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		} else {
			backoff = 200;
			last[0] = '\0';
			/* Just registered (beat at once), or the PD forgot
			 * this worker (register again at once). */
			pthread_mutex_lock(&w->mu);
			if (!reg || !w->registered)
				wait = 0;
			pthread_mutex_unlock(&w->mu);
		}
		pthread_mutex_lock(&w->mu);
		if (wait && !w->kicked)
			vt__worker_nap(w, wait);
		w->kicked = 0;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}
