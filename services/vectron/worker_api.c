/* worker_api.c: the internal API of `vectron worker`,
 * vectron.internal.v1.Worker: each call runs on a request thread
 * (reqpool.c), waits for the Raft host there, and is answered on the loop
 * (worker_int.h, docs/worker.md "Internal API errors"). */
#include "worker_int.h"

/* ---- the internal API ---------------------------------------------------- */

enum method { M_WRITE, M_SEARCH, M_SEARCH_MANY, M_GET, M_SCROLL, M_COUNT, M_STATUS,
	      M_WSTATUS, M_N };

struct route {
	worker *w;
	int method;
};

struct job {
	vt_reqpool_job work;     /* first: the pool casts back */
	worker *w;
	vt_grpc_call *call;      /* NULL: an in-process call */
	const ProtobufCMessage *req;
	int method;
	int status;              /* gRPC */
	vt_errmsg err;
	uint8_t *reply;
	size_t reply_len;
};

/* A gRPC status for a VT_E* code, keeping the message. */
static int fail(int rc)
{
	return vt_grpc_status_from_err(rc);
}

/* Common checks: protocol version, a shard reference, the replica here,
 * its epoch. On OK *out holds a reference (vt__wrep_put). */
static int prologue(worker *w, int has_version, uint32_t version,
		    const Vectron__Internal__V1__ShardRef *ref,
		    struct replica **out, vt_errmsg *err)
{
	*out = NULL;
	if (vt_worker_version_check(has_version ? version : 0, err))
		return VT_GRPC_FAILED_PRECONDITION;
	if (!ref || !ref->has_group) {
		vt_errmsg_set(err, VT_EINVAL, "shard: the group is missing");
		return VT_GRPC_INVALID_ARGUMENT;
	}
	struct replica *r = vt__wrep_get(w, ref->group);
	if (!r) {
		vt_errmsg_set(err, VT_ENOENT, "shard group %" PRIu64
			      " not hosted here", ref->group);
		return VT_GRPC_NOT_FOUND;
	}
	pthread_mutex_lock(&w->mu);
	uint64_t epoch = r->epoch;
	pthread_mutex_unlock(&w->mu);
	if (vt_worker_epoch_check(ref->epoch, epoch, err)) {
		vt__wrep_put(w, r);
		return VT_GRPC_FAILED_PRECONDITION;
	}
	*out = r;
	return VT_GRPC_OK;
}

static int pack(struct job *j, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	j->reply = vt_malloc(n ? n : 1);
	if (!j->reply) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		return VT_GRPC_RESOURCE_EXHAUSTED;
	}
	j->reply_len = protobuf_c_message_pack(m, j->reply);
	return VT_GRPC_OK;
}

/* ShardWrite's host-thread parts. */
struct wr {
	const void *cmd;
	size_t len;
	uint64_t entries;
	uint64_t queue_max;      /* the replicas' vt_shard_opts.queue_max */
	vt_errmsg err;
};

static int validate_fn(vt_repl *r, struct raft *raft, void *ud)
{
	(void)raft;
	struct wr *x = ud;
	vt_shard *s = vt_repl_shard(r);
	return s ? vt_shard_validate(s, x->cmd, x->len, &x->err)
		 : VT_ESHUTDOWN;
}

/* Room in the async index queue, without blocking the host thread
 * (vt_shard_wait_room would wait there): the caller polls. */
static int room_fn(vt_repl *r, struct raft *raft, void *ud)
{
	(void)raft;
	struct wr *x = ud;
	vt_shard *s = vt_repl_shard(r);
	vt_shard_status ss;
	if (!s)
		return VT_ESHUTDOWN;
	if (vt_shard_config_get(s)->index_mode == VT_INDEX_SYNC)
		return 0; /* no queue: skip the status */
	if (vt_shard_status_get(s, &ss))
		return VT_ESHUTDOWN;
	/* An empty queue takes any command, even one over the cap. */
	return !ss.lag || ss.lag + x->entries <= x->queue_max ? 0 : VT_EOVERLOAD;
}

static int h_write(struct job *j)
{
	worker *w = j->w;
	const Vectron__Internal__V1__ShardWriteRequest *q =
		(const void *)j->req;
	if (vt_worker_version_check(q->has_version ? q->version : 0, &j->err))
		return VT_GRPC_FAILED_PRECONDITION;
	if (w->search_only) {
		vt_errmsg_set(&j->err, VT_EBUSY, "search-only worker");
		return VT_GRPC_FAILED_PRECONDITION;
	}
	struct replica *r;
	int st = prologue(w, q->has_version, q->version, q->shard, &r,
			  &j->err);
	if (st)
		return st;
	struct wr x = {q->cmd.data, q->cmd.len,
		       q->has_entries ? q->entries : 0, w->sopts.queue_max,
		       {{0}}};
	if (!q->has_cmd || !q->cmd.len) {
		vt_errmsg_set(&j->err, VT_EINVAL, "cmd: missing");
		st = VT_GRPC_INVALID_ARGUMENT;
		goto out;
	}
	Vectron__Internal__V1__ShardWriteResponse resp =
		VECTRON__INTERNAL__V1__SHARD_WRITE_RESPONSE__INIT;
	if (q->validate_only) {
		int rc = vt_repl_host_call(w->host, r->g, validate_fn, &x);
		if (rc) {
			vt_errmsg_set(&j->err, rc, "%s", x.err.msg[0]
				      ? x.err.msg : vt_strerror(rc));
			st = fail(rc);
		} else {
			st = pack(j, &resp.base);
		}
		goto out;
	}
	uint64_t until = vt_clock_mono_ns() +
			 w->sopts.queue_wait_ms * 1000000ull;
	int rc;
	while ((rc = vt_repl_host_call(w->host, r->g, room_fn, &x)) ==
		       VT_EOVERLOAD &&
	       vt_clock_mono_ns() < until)
		vt__worker_sleep_ms(5);
	if (rc == VT_EOVERLOAD)
		vt_errmsg_set(&j->err, rc, "the shard's index queue is full: "
			      "retry later");
	else if (rc)
		vt_errmsg_set(&j->err, rc, "%s", vt_strerror(rc));
	if (rc) {
		st = fail(rc);
		goto out;
	}
	vt_shard_result res;
	rc = vt_repl_host_apply(w->host, r->g, x.cmd, x.len, &res, &j->err);
	if (rc == VT_EBUSY) {
		vt__wrep_not_leader(w, r, &j->err);
		st = VT_GRPC_FAILED_PRECONDITION;
	} else if (rc) {
		st = fail(rc);
	} else {
		resp.has_upserted = resp.has_created = resp.has_deleted =
			resp.has_updated = 1;
		resp.upserted = res.upserted;
		resp.created = res.created;
		resp.deleted = res.deleted;
		resp.updated = res.updated;
		st = pack(j, &resp.base);
	}
out:
	vt__wrep_put(w, r);
	return st;
}

/* The reads: one struct for every kind, filled on the host thread. The
 * results own their memory, so they are converted after the call. */
struct rd {
	int method;
	const void *q;
	const char *filter;      /* JSON text or NULL */
	int linearizable;
	uint64_t need;           /* linearizable: the index to cover */
	int not_indexed;         /* the index did not cover `need` yet */
	uint32_t dim;
	vt_shard_results res;
	uint64_t next, count, applied;
	vt_shard_status ss;
	int state;
	uint64_t term;
	vt_errmsg err;
};

/* The read itself, on shard `s`; `raft` only for M_STATUS (NULL: from a
 * request thread, which reads no Raft state). */
static int read_shard(vt_shard *s, struct raft *raft, struct rd *x)
{
	uint64_t applied, indexed;
	vt_shard_progress(s, &applied, &indexed);
	x->applied = applied;
	x->dim = vt_shard_config_get(s)->dim;
	if (x->linearizable && !x->need)
		x->need = applied;
	/* A linearizable read waits for the index outside this thread. */
	x->not_indexed = x->need && indexed < x->need;
	if (x->not_indexed)
		return 0;
	vt_filter *f = NULL;
	int rc = 0;
	if (x->filter && *x->filter &&
	    (rc = vt_filter_parse(x->filter, strlen(x->filter),
				  vt_shard_schema(s), &f, &x->err)))
		return rc;
	switch (x->method) {
	case M_SEARCH: {
		const Vectron__Internal__V1__ShardSearchRequest *q = x->q;
		vt_shard_query sq;
		vt_shard_query_default(&sq, q->vector, q->k);
		if (q->n_vector != x->dim) {
			rc = vt_errmsg_set(&x->err, VT_EINVAL, "vector: %zu "
					   "values, the collection has %u",
					   q->n_vector, x->dim);
			break;
		}
		if (q->has_ef)
			sq.ef = q->ef;
		if (q->has_exact)
			sq.exact = q->exact;
		if (q->has_rescore)
			sq.rescore = q->rescore;
		if (q->has_oversampling)
			sq.oversampling = q->oversampling;
		sq.filter = f;
		sq.with_payload = q->has_with_payload ? q->with_payload : 0;
		sq.with_vector = q->has_with_vector ? q->with_vector : 0;
		rc = vt_shard_search(s, &sq, &x->res, &x->err);
		break;
	}
	case M_GET: {
		const Vectron__Internal__V1__ShardGetRequest *q = x->q;
		const char **ids = vt_calloc(q->n_ids + 1, sizeof *ids);
		uint32_t *lens = vt_calloc(q->n_ids + 1, sizeof *lens);
		if (!ids || !lens) {
			rc = vt_errmsg_set(&x->err, VT_ENOMEM, "out of memory");
		} else {
			for (size_t i = 0; i < q->n_ids; i++) {
				ids[i] = (const char *)q->ids[i].data;
				lens[i] = (uint32_t)q->ids[i].len;
			}
			rc = vt_shard_get(s, ids, lens, q->n_ids,
					  q->with_payload, q->with_vector,
					  &x->res, &x->err);
		}
		vt_free(ids);
		vt_free(lens);
		break;
	}
	case M_SCROLL: {
		const Vectron__Internal__V1__ShardScrollRequest *q = x->q;
		rc = vt_shard_scroll(s, q->from, q->has_limit ? q->limit : 100,
				     f, q->with_payload, q->with_vector,
				     &x->res, &x->next, &x->err);
		break;
	}
	case M_COUNT:
		rc = vt_shard_count(s, f, &x->count, &x->err);
		break;
	case M_STATUS:
		rc = vt_shard_status_get(s, &x->ss);
		x->state = raft_state(raft);
		x->term = raft->current_term;
		break;
	}
	vt_filter_free(f);
	return rc;
}

static int read_fn(vt_repl *r, struct raft *raft, void *ud)
{
	struct rd *x = ud;
	vt_shard *s = vt_repl_shard(r);
	if (!s)
		return vt_errmsg_set(&x->err, VT_ESHUTDOWN, "shard closing");
	return read_shard(s, raft, x);
}

/* An eventual read on this (request) thread: the shard is borrowed from
 * the host (vt_repl_host_shard_get), so searches of every replica run in
 * parallel instead of one at a time on the Raft thread. The caller holds
 * a reference to the replica, so its group stays attached. */
static int read_here(worker *w, struct replica *r, struct rd *x)
{
	(void)w;
	if (!atomic_load(&r->readable))
		return vt_errmsg_set(&x->err, VT_EBUSY, "replica of group %"
				     PRIu64 " is still catching up: no data "
				     "to read yet", r->group);
	vt_shard *s = vt_repl_host_shard_get(r->g);
	if (!s)
		return vt_errmsg_set(&x->err, VT_ESHUTDOWN, "shard closing");
	int rc = read_shard(s, NULL, x);
	vt_repl_host_shard_put(r->g);
	return rc;
}

/* Runs a read: linearizable ones on the leader after it confirmed its
 * leadership, and once the index covers what was applied then. */
static int run_read(worker *w, struct replica *r, struct rd *x,
		    uint32_t wait_ms, vt_errmsg *err)
{
	int rc = x->linearizable ? vt_repl_host_read(w->host, r->g, read_fn, x, err)
		 : x->method == M_STATUS ? vt_repl_host_call(w->host, r->g, read_fn, x)
					 : read_here(w, r, x);
	if (rc == VT_EBUSY && x->linearizable)
		return vt__wrep_not_leader(w, r, err);
	uint64_t until = vt_clock_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	while (!rc && x->not_indexed) {
		if (vt_clock_mono_ns() >= until)
			return vt_errmsg_set(err, VT_ETIMEDOUT, "the index did "
					     "not reach command %" PRIu64
					     " within %u ms", x->need,
					     wait_ms);
		vt__worker_sleep_ms(2);
		rc = vt_repl_host_call(w->host, r->g, read_fn, x);
	}
	if (rc && !err->msg[0])
		vt_errmsg_set(err, rc, "%s", x->err.msg[0] ? x->err.msg
							   : vt_strerror(rc));
	return rc;
}

static int hits_reply(struct job *j, struct rd *x, int method)
{
	size_t n = x->res.n;
	Vectron__Internal__V1__Hit *h = vt_calloc(n + 1, sizeof *h);
	Vectron__Internal__V1__Hit **hp = vt_calloc(n + 1, sizeof *hp);
	char **pl = vt_calloc(n + 1, sizeof *pl);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!h || !hp || !pl) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const vt_shard_hit *s = &x->res.hits[i];
		Vectron__Internal__V1__Hit y = VECTRON__INTERNAL__V1__HIT__INIT;
		y.has_id = y.has_label = y.has_dist = y.has_score = 1;
		y.id.data = (uint8_t *)s->id;
		y.id.len = s->id_len;
		y.label = s->label;
		y.dist = s->dist;
		y.score = s->score;
		if (s->payload) {
			pl[i] = vt_malloc(s->payload_len + 1);
			if (!pl[i]) {
				vt_errmsg_set(&j->err, VT_ENOMEM, "out of "
					      "memory");
				goto out;
			}
			memcpy(pl[i], s->payload, s->payload_len);
			pl[i][s->payload_len] = '\0';
			y.payload = pl[i];
		}
		if (s->vec) {
			y.n_vector = x->dim;
			y.vector = (float *)s->vec;
		}
		h[i] = y;
		hp[i] = &h[i];
	}
	if (method == M_SEARCH) {
		Vectron__Internal__V1__ShardSearchResponse m =
			VECTRON__INTERNAL__V1__SHARD_SEARCH_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		m.has_applied = 1;
		m.applied = x->applied;
		st = pack(j, &m.base);
	} else if (method == M_GET) {
		Vectron__Internal__V1__ShardGetResponse m =
			VECTRON__INTERNAL__V1__SHARD_GET_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		st = pack(j, &m.base);
	} else {
		Vectron__Internal__V1__ShardScrollResponse m =
			VECTRON__INTERNAL__V1__SHARD_SCROLL_RESPONSE__INIT;
		m.n_hits = n;
		m.hits = hp;
		m.has_next = 1;
		m.next = x->next;
		st = pack(j, &m.base);
	}
out:
	for (size_t i = 0; pl && i < n; i++)
		vt_free(pl[i]);
	vt_free(pl);
	vt_free(h);
	vt_free(hp);
	return st;
}

static int h_read(struct job *j)
{
	worker *w = j->w;
	const ProtobufCMessage *m = j->req;
	struct rd x;
	memset(&x, 0, sizeof x);
	x.method = j->method;
	x.q = m;
	int has_version = 0;
	uint32_t version = 0, wait_ms = 1000;
	const Vectron__Internal__V1__ShardRef *ref = NULL;
#define COMMON(T)                                                            \
	do {                                                                 \
		const T *q = (const T *)m;                                   \
		has_version = q->has_version;                                \
		version = q->version;                                        \
		ref = q->shard;                                              \
	} while (0)
	switch (j->method) {
	case M_SEARCH: {
		COMMON(Vectron__Internal__V1__ShardSearchRequest);
		const Vectron__Internal__V1__ShardSearchRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		if (q->has_wait_ms)
			/* bounded: a waiting read holds its replica, which a
			 * removal waits for */
			wait_ms = q->wait_ms < 10000 ? q->wait_ms : 10000;
		break;
	}
	case M_GET: {
		COMMON(Vectron__Internal__V1__ShardGetRequest);
		x.linearizable = ((const Vectron__Internal__V1__ShardGetRequest *)
					  m)->linearizable;
		break;
	}
	case M_SCROLL: {
		COMMON(Vectron__Internal__V1__ShardScrollRequest);
		const Vectron__Internal__V1__ShardScrollRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		break;
	}
	case M_COUNT: {
		COMMON(Vectron__Internal__V1__ShardCountRequest);
		const Vectron__Internal__V1__ShardCountRequest *q = (void *)m;
		x.filter = q->filter;
		x.linearizable = q->linearizable;
		break;
	}
	case M_STATUS:
		COMMON(Vectron__Internal__V1__ShardStatusRequest);
		break;
	}
#undef COMMON
	struct replica *r;
	int st = prologue(w, has_version, version, ref, &r, &j->err);
	if (st)
		return st;
	int rc = run_read(w, r, &x, wait_ms, &j->err);
	vt__wrep_put(w, r);
	if (rc) {
		st = vt_grpc_status_from_err(rc);
		if (rc == VT_EBUSY && strstr(j->err.msg, "not the leader"))
			st = VT_GRPC_FAILED_PRECONDITION;
		vt_shard_results_free(&x.res);
		return st;
	}
	switch (j->method) {
	case M_SEARCH:
	case M_GET:
	case M_SCROLL:
		st = hits_reply(j, &x, j->method);
		break;
	case M_COUNT: {
		Vectron__Internal__V1__ShardCountResponse c =
			VECTRON__INTERNAL__V1__SHARD_COUNT_RESPONSE__INIT;
		c.has_count = 1;
		c.count = x.count;
		st = pack(j, &c.base);
		break;
	}
	case M_STATUS: {
		Vectron__Internal__V1__ShardStatusResponse s =
			VECTRON__INTERNAL__V1__SHARD_STATUS_RESPONSE__INIT;
		s.has_applied = s.has_indexed = s.has_lag = s.has_points = 1;
		s.has_index_points = s.has_bytes_store = s.has_bytes_index = 1;
		s.has_bytes_snapshot = s.has_readonly = s.has_leader = 1;
		s.has_term = 1;
		s.applied = x.ss.applied;
		s.indexed = x.ss.indexed;
		s.lag = x.ss.lag;
		s.points = x.ss.points;
		s.index_points = x.ss.index_points;
		s.bytes_store = x.ss.bytes_store;
		s.bytes_index = x.ss.bytes_index;
		s.bytes_snapshot = x.ss.bytes_snapshot;
		s.readonly = x.ss.readonly;
		s.leader = x.state == RAFT_LEADER;
		s.term = x.term;
		st = pack(j, &s.base);
		break;
	}
	}
	vt_shard_results_free(&x.res);
	return st;
}

/* ShardSearchMany: each shard searched as ShardSearch would be (its own
 * prologue, epoch and errors), one after the other on this thread, each
 * answer packed into its part. */
static int h_search_many(struct job *j)
{
	const Vectron__Internal__V1__ShardSearchManyRequest *q =
		(const void *)j->req;
	if (vt_worker_version_check(q->has_version ? q->version : 0, &j->err))
		return VT_GRPC_FAILED_PRECONDITION;
	if (!q->query || !q->n_shards) {
		vt_errmsg_set(&j->err, VT_EINVAL, "%s",
			      q->query ? "shards: none" : "query: missing");
		return VT_GRPC_INVALID_ARGUMENT;
	}
	if (q->n_shards > 256) {
		vt_errmsg_set(&j->err, VT_ELIMIT, "shards: %zu (at most 256)",
			      q->n_shards);
		return VT_GRPC_INVALID_ARGUMENT;
	}
	size_t n = q->n_shards;
	Vectron__Internal__V1__ShardSearchPart *parts =
		vt_calloc(n, sizeof *parts);
	Vectron__Internal__V1__ShardSearchPart **pp =
		vt_calloc(n, sizeof *pp);
	struct job *sub = vt_calloc(n, sizeof *sub);
	int st = VT_GRPC_OK;
	if (!parts || !pp || !sub) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		st = VT_GRPC_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		Vectron__Internal__V1__ShardSearchRequest one = *q->query;
		one.shard = q->shards[i];
		one.has_version = 1;
		one.version = q->version;
		sub[i].w = j->w;
		sub[i].req = &one.base;
		sub[i].method = M_SEARCH;
		int s1 = h_read(&sub[i]);
		vectron__internal__v1__shard_search_part__init(&parts[i]);
		parts[i].has_group = q->shards[i] && q->shards[i]->has_group;
		parts[i].group = parts[i].has_group ? q->shards[i]->group : 0;
		parts[i].has_status = 1;
		parts[i].status = (uint32_t)s1;
		if (s1) {
			parts[i].message = sub[i].err.msg[0]
						   ? sub[i].err.msg
						   : (char *)vt_grpc_status_name(s1);
		} else {
			parts[i].has_response = 1;
			parts[i].response.data = sub[i].reply;
			parts[i].response.len = sub[i].reply_len;
		}
		pp[i] = &parts[i];
	}
	Vectron__Internal__V1__ShardSearchManyResponse resp =
		VECTRON__INTERNAL__V1__SHARD_SEARCH_MANY_RESPONSE__INIT;
	resp.n_parts = n;
	resp.parts = pp;
	st = pack(j, &resp.base);
out:
	for (size_t i = 0; sub && i < n; i++)
		vt_free(sub[i].reply);
	vt_free(sub);
	vt_free(pp);
	vt_free(parts);
	return st;
}

static int h_wstatus(struct job *j)
{
	worker *w = j->w;
	const Vectron__Internal__V1__WorkerStatusRequest *q =
		(const void *)j->req;
	if (vt_worker_version_check(q->has_version ? q->version : 0, &j->err))
		return VT_GRPC_FAILED_PRECONDITION;
	size_t n;
	struct replica **v = vt__wrep_all(w, &n);
	Vectron__Internal__V1__ReplicaInfo *ri = vt_calloc(n + 1, sizeof *ri);
	Vectron__Internal__V1__ReplicaInfo **rp = vt_calloc(n + 1, sizeof *rp);
	int st = VT_GRPC_RESOURCE_EXHAUSTED;
	if (!v || !ri || !rp) {
		vt_errmsg_set(&j->err, VT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct replica *r = v[i];
		vt__wrep_stats_t s;
		vt__wrep_stats(w, r, &s);
		Vectron__Internal__V1__ReplicaInfo x =
			VECTRON__INTERNAL__V1__REPLICA_INFO__INIT;
		x.collection = r->collection;
		x.has_shard = x.has_group = x.has_epoch = x.has_raft_id = 1;
		x.has_role = x.has_term = x.has_applied = x.has_points = 1;
		x.shard = r->shard;
		x.group = r->group;
		pthread_mutex_lock(&w->mu);
		x.epoch = r->epoch;
		x.role = r->voter ? VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER
				  : VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER;
		pthread_mutex_unlock(&w->mu);
		x.raft_id = r->raft_id;
		x.state = (char *)s.state;
		x.term = s.term;
		x.applied = s.applied;
		x.points = s.points;
		ri[i] = x;
		rp[i] = &ri[i];
	}
	Vectron__Internal__V1__WorkerStatusResponse resp =
		VECTRON__INTERNAL__V1__WORKER_STATUS_RESPONSE__INIT;
	resp.has_id = resp.has_registered = resp.has_epoch = 1;
	resp.id = w->id;
	pthread_mutex_lock(&w->mu);
	resp.registered = w->registered;
	resp.epoch = w->epoch;
	pthread_mutex_unlock(&w->mu);
	resp.n_replicas = n;
	resp.replicas = rp;
	st = pack(j, &resp.base);
out:
	if (v)
		vt__wrep_put_all(w, v, n);
	vt_free(ri);
	vt_free(rp);
	return st;
}

static void job_work(vt_reqpool_job *p)
{
	struct job *j = (struct job *)p;
	switch (j->method) {
	case M_WRITE:
		j->status = h_write(j);
		break;
	case M_WSTATUS:
		j->status = h_wstatus(j);
		break;
	case M_SEARCH_MANY:
		j->status = h_search_many(j);
		break;
	default:
		j->status = h_read(j);
	}
	if (j->status && !j->err.msg[0])
		vt_errmsg_set(&j->err, VT_EINTERNAL, "%s",
			      vt_grpc_status_name(j->status));
}

static void job_done(vt_reqpool_job *p)
{
	struct job *j = (struct job *)p;
	if (j->status)
		vt_grpc_call_finish(j->call, j->status, j->err.msg);
	else
		vt_grpc_call_reply_bytes(j->call, j->reply, j->reply_len);
	vt_free(j->reply);
	vt_free(j);
}

static void on_call(vt_grpc_call *call, void *ud)
{
	const struct route *rt = ud;
	atomic_fetch_add(&rt->w->requests, 1);
	struct job *j = vt_calloc(1, sizeof *j);
	if (!j) {
		vt_grpc_call_finish(call, VT_GRPC_RESOURCE_EXHAUSTED,
				    "out of memory");
		return;
	}
	j->w = rt->w;
	j->call = call;
	j->req = vt_grpc_call_request(call);
	j->method = rt->method;
	j->work.work = job_work;
	j->work.done = job_done;
	if (vt_reqpool_submit(rt->w->pool, &j->work)) {
		vt_free(j);
		vt_grpc_call_finish(call, VT_GRPC_UNAVAILABLE, "shutting down");
	}
}

static struct route routes[M_N];

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *in;
} m[M_N] = {
		{"ShardWrite", &vectron__internal__v1__shard_write_request__descriptor},
		{"ShardSearch", &vectron__internal__v1__shard_search_request__descriptor},
		{"ShardSearchMany", &vectron__internal__v1__shard_search_many_request__descriptor},
		{"ShardGet", &vectron__internal__v1__shard_get_request__descriptor},
		{"ShardScroll", &vectron__internal__v1__shard_scroll_request__descriptor},
		{"ShardCount", &vectron__internal__v1__shard_count_request__descriptor},
		{"ShardStatus", &vectron__internal__v1__shard_status_request__descriptor},
		{"WorkerStatus", &vectron__internal__v1__worker_status_request__descriptor},
};

int vt_worker_call_local(void *ud, const char *method,
			 const ProtobufCMessage *req,
			 const ProtobufCMessageDescriptor *reply_desc,
			 ProtobufCMessage **reply, char *msg, size_t cap)
{
	worker *w = ud;
	*reply = NULL;
	struct job j;
	memset(&j, 0, sizeof j);
	j.w = w;
	j.req = req;
	j.method = M_N;
	for (int i = 0; i < M_N; i++)
		if (!strcmp(m[i].name, method))
			j.method = i;
	if (j.method == M_N || req->descriptor != m[j.method].in) {
		snprintf(msg, cap, "unknown method %s", method);
		return VT_GRPC_UNIMPLEMENTED;
	}
	/* No "shutting down" here: the process's own requests in flight at
	 * a stop must finish (the replicas stay attached until
	 * vt_worker_role_free, which comes after the last of them). */
	atomic_fetch_add(&w->requests, 1);
	job_work(&j.work);
	if (!j.status &&
	    !(*reply = vt_grpc_msg_unpack(reply_desc, j.reply, j.reply_len))) {
		j.status = VT_GRPC_INTERNAL;
		snprintf(j.err.msg, sizeof j.err.msg, "undecodable reply");
	}
	if (j.status)
		snprintf(msg, cap, "%s", j.err.msg);
	vt_free(j.reply);
	return j.status;
}

int vt__worker_api_start(worker *w, vt_errmsg *err)
{
	int rc = vt_grpc_server_new(w->loop, NULL, &w->grpc);
	if (rc)
		return vt_errmsg_set(err, rc, "gRPC: %s", vt_strerror(rc));
	for (int i = 0; i < M_N; i++) {
		char path[128];
		snprintf(path, sizeof path, WORKER_SVC "%s", m[i].name);
		routes[i] = (struct route){w, i};
		vt_grpc_method gm = {path, VT_GRPC_UNARY, m[i].in, on_call,
				     &routes[i]};
		if ((rc = vt_grpc_server_add_method(w->grpc, &gm)))
			return vt_errmsg_set(err, rc, "gRPC method %s",
					     m[i].name);
	}
	char host[256];
	int port;
	if (vt__worker_split_addr(w->cfg.listen, host, sizeof host, &port))
		return vt_errmsg_set(err, VT_EINVAL, "listen: \"%s\" is not "
				     "host:port", w->cfg.listen);
	if ((rc = vt_grpc_server_listen(w->grpc, host, port, err)))
		return vt_errmsg_prefix(err, rc, "gRPC on %s", w->cfg.listen);
	if (w->cfg.advertise[0])
		snprintf(w->addr, sizeof w->addr, "%s", w->cfg.advertise);
	else
		snprintf(w->addr, sizeof w->addr, "%s:%d", host,
			 vt_grpc_server_port(w->grpc));
	return 0;
}

