/* gateway.c: lib/coll's remote back end over the PD and the workers
 * (gateway.h). Everything here runs on the API's request and fan-out
 * threads and blocks on lib/rpc's client thread. */
#include "gateway.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "payload/payload.h"
#include "rpc/grpc.h"
#include "rpc/rpcc.h"
#include "vectron/internal/v1/cluster.pb-c.h"

#define PROTO_VERSION 1
#define PD_SVC "/vectron.internal.v1.PlacementDriver/"
#define WK_SVC "/vectron.internal.v1.Worker/"
#define NOT_LEADER "not the leader; leader: "
#define STALE "stale shard epoch"
#define MAX_PD 16
#define MAX_SKIP 16

typedef Vectron__Internal__V1__CollectionRoute CollRoute;
typedef Vectron__Internal__V1__ShardRoute ShardRoute;
typedef Vectron__Internal__V1__Peer Peer;
typedef Vectron__Internal__V1__ShardRef ShardRef;

/* One collection's routing as the PD gave it; shared by the requests
 * that use it, freed by the last. */
struct route {
	atomic_int refs;
	ProtobufCMessage *owner; /* the GetRouting/CreateCollection reply */
	const CollRoute *r;      /* inside owner */
	vt_coll_config cfg;
	uint64_t fetched_ms;
};

struct entry {
	char name[VT_COLL_MAX_NAME + 1];
	struct route *route;     /* NULL: not fetched or gone */
	int fetching;            /* a thread is asking the PD */
};

struct vt_gw {
	vt_gw_opts opts;
	char *pd_list;
	char local_addr[300];    /* opts.local_addr's copy ("" none) */
	char *pd[MAX_PD];
	size_t n_pd;
	vt_rpcc *rpc;
	vt_coll_remote remote;
	pthread_mutex_t mu;      /* entries, pd_leader, stats */
	pthread_cond_t fetched;  /* a fetch finished */
	struct entry *entries;
	size_t n_entries, cap_entries;
	char pd_leader[300];     /* last PD that answered as leader */
	vt_gw_stats stats;
	atomic_uint rr;          /* spreads reads over replicas */
};

void vt_gw_opts_default(vt_gw_opts *o)
{
	memset(o, 0, sizeof *o);
	o->rf = 1;
	o->rpc_timeout_ms = 10000;
	o->retry_ms = 15000;
	o->routing_ttl_ms = 30000;
	o->create_wait_ms = 10000;
}

static uint64_t now_ms(void) { return vt_clock_mono_ns() / 1000000u; }

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void count(vt_gw *g, uint64_t *field)
{
	pthread_mutex_lock(&g->mu);
	(*field)++;
	pthread_mutex_unlock(&g->mu);
}

/* The VT_E* code of a relayed gRPC answer, with its message. */
static int relay(int status, const char *msg, const char *what,
		 vt_errmsg *err)
{
	int rc = vt_grpc_err_from_status(status);
	if (status == VT_GRPC_UNAVAILABLE || status == VT_GRPC_DEADLINE_EXCEEDED)
		return vt_errmsg_set(err, rc, "%s: %s (%s)", what, msg,
				     vt_grpc_status_name(status));
	return vt_errmsg_set(err, rc, "%s", msg);
}

/* "not the leader; leader: host:port" -> host:port in `to` (""
 * when unknown). 1 if `msg` is such an answer. */
static int not_leader(int status, const char *msg, char *to, size_t cap)
{
	size_t n = strlen(NOT_LEADER);
	if (status != VT_GRPC_FAILED_PRECONDITION || strncmp(msg, NOT_LEADER, n))
		return 0;
	const char *a = msg + n;
	size_t len = strcspn(a, " ;,");
	if (!strncmp(a, "unknown", 7) || len == 0 || len >= cap)
		to[0] = '\0';
	else {
		memcpy(to, a, len);
		to[len] = '\0';
	}
	return 1;
}

/* ---- the placement driver ------------------------------------------------------ */

/* Calls a PD method on the leader: the last known one, then the one a
 * follower names, then every address in turn, until the retry time is
 * spent. Returns the gRPC status (0: *reply set). */
static int pd_call(vt_gw *g, const char *method, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc,
		   ProtobufCMessage **reply, char *msg, size_t cap)
{
	char path[128], addr[300], hint[300];
	snprintf(path, sizeof path, PD_SVC "%s", method);
	uint64_t until = now_ms() + g->opts.retry_ms;
	pthread_mutex_lock(&g->mu);
	snprintf(addr, sizeof addr, "%s", g->pd_leader[0] ? g->pd_leader
							  : g->pd[0]);
	pthread_mutex_unlock(&g->mu);
	size_t next = 0;
	int st;
	for (;;) {
		st = vt_rpcc_call(g->rpc, addr, path, req, desc,
				  g->opts.rpc_timeout_ms, reply, msg, cap);
		if (st == VT_GRPC_OK) {
			pthread_mutex_lock(&g->mu);
			snprintf(g->pd_leader, sizeof g->pd_leader, "%s", addr);
			pthread_mutex_unlock(&g->mu);
			return st;
		}
		int nl = not_leader(st, msg, hint, sizeof hint);
		if (!nl && st != VT_GRPC_UNAVAILABLE &&
		    st != VT_GRPC_DEADLINE_EXCEEDED)
			return st; /* the leader's verdict */
		if (now_ms() >= until)
			return st;
		if (nl && hint[0] && strcmp(hint, addr)) {
			snprintf(addr, sizeof addr, "%s", hint);
			continue;
		}
		/* No leader known (an election) or this one is down: the
		 * next address, pausing after each round. */
		if (next && next % g->n_pd == 0)
			sleep_ms(200);
		snprintf(addr, sizeof addr, "%s", g->pd[next++ % g->n_pd]);
	}
}

int vt_gw_pd_call(vt_gw *g, const char *method, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *reply_desc,
		  ProtobufCMessage **reply, char *msg, size_t cap)
{
	return pd_call(g, method, req, reply_desc, reply, msg, cap);
}

static void route_unref(struct route *rt)
{
	if (rt && atomic_fetch_sub(&rt->refs, 1) == 1) {
		vt_grpc_msg_free(rt->owner);
		vt_free(rt);
	}
}

/* A route over collection `r` of `owner` (taken: freed with the route,
 * or here on error). */
static int route_new(ProtobufCMessage *owner, const CollRoute *r,
		     struct route **out, vt_errmsg *err)
{
	*out = NULL;
	struct route *rt = vt_calloc(1, sizeof *rt);
	if (!rt) {
		vt_grpc_msg_free(owner);
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	}
	atomic_init(&rt->refs, 1);
	rt->owner = owner;
	rt->r = r;
	rt->fetched_ms = now_ms();
	int rc = r->has_config ? vt_coll_config_decode(r->config.data,
						       r->config.len, &rt->cfg,
						       err)
			       : vt_errmsg_set(err, VT_EINVAL, "no config");
	if (!rc && (r->n_shards != rt->cfg.shard_count ||
		    r->n_shards == 0))
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "%zu shards in the routing, %u in the config",
				   r->n_shards, rt->cfg.shard_count);
	for (size_t i = 0; !rc && i < r->n_shards; i++)
		if (!r->shards[i]->has_index || r->shards[i]->index != i)
			rc = vt_errmsg_set(err, VT_ECORRUPT,
					   "shard %zu out of order", i);
	if (rc) {
		vt_errmsg_prefix(err, rc, "routing of %s from the PD",
				 r->name ? r->name : "?");
		route_unref(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

/* The cache entry of `name`, created empty (under g->mu). */
static struct entry *entry_of(vt_gw *g, const char *name)
{
	for (size_t i = 0; i < g->n_entries; i++)
		if (!strcmp(g->entries[i].name, name))
			return &g->entries[i];
	if (g->n_entries == g->cap_entries) {
		size_t cap = g->cap_entries ? g->cap_entries * 2 : 16;
		struct entry *n = vt_realloc(g->entries, cap * sizeof *n);
		if (!n)
			return NULL;
		g->entries = n;
		g->cap_entries = cap;
	}
	struct entry *e = &g->entries[g->n_entries++];
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	return e;
}

/* Replaces the cached route of `name` (under g->mu; `rt` may be NULL). */
static void cache_put(vt_gw *g, const char *name, struct route *rt)
{
	struct entry *e = entry_of(g, name);
	if (!e) {
		route_unref(rt);
		return;
	}
	route_unref(e->route);
	e->route = rt;
}

static int fetch(vt_gw *g, const char *name, struct route **out,
		 vt_errmsg *err)
{
	Vectron__Internal__V1__GetRoutingRequest req =
		VECTRON__INTERNAL__V1__GET_ROUTING_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	req.name = (char *)name;
	ProtobufCMessage *rep;
	char msg[512];
	count(g, &g->stats.routing_fetches);
	int st = pd_call(g, "GetRouting", &req.base,
			 &vectron__internal__v1__get_routing_response__descriptor,
			 &rep, msg, sizeof msg);
	if (st)
		return relay(st, msg, "placement driver", err);
	Vectron__Internal__V1__GetRoutingResponse *r = (void *)rep;
	if (r->n_collections != 1 || !r->collections[0]->name ||
	    strcmp(r->collections[0]->name, name)) {
		vt_grpc_msg_free(rep);
		return vt_errmsg_set(err, VT_ECORRUPT,
				     "placement driver: routing of %s missing "
				     "from its answer", name);
	}
	return route_new(rep, r->collections[0], out, err);
}

/* The routing of `name`: the cached one unless it expired or is `stale`
 * (the caller found it wrong); one PD call per collection at a time. */
static int route_get(vt_gw *g, const char *name, const struct route *stale,
		     struct route **out, vt_errmsg *err)
{
	*out = NULL;
	pthread_mutex_lock(&g->mu);
	struct entry *e = entry_of(g, name);
	if (!e) {
		pthread_mutex_unlock(&g->mu);
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	}
	for (;;) {
		struct route *rt = e->route;
		if (rt && rt != stale &&
		    now_ms() - rt->fetched_ms < g->opts.routing_ttl_ms) {
			atomic_fetch_add(&rt->refs, 1);
			pthread_mutex_unlock(&g->mu);
			*out = rt;
			return 0;
		}
		if (!e->fetching)
			break;
		/* another thread is asking: its answer serves us too */
		stale = NULL;
		pthread_cond_wait(&g->fetched, &g->mu);
		e = entry_of(g, name);
		if (!e) {
			pthread_mutex_unlock(&g->mu);
			return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		}
		if (!e->fetching && !e->route)
			break; /* it failed: try ourselves */
	}
	e->fetching = 1;
	pthread_mutex_unlock(&g->mu);
	struct route *rt = NULL;
	int rc = fetch(g, name, &rt, err);
	pthread_mutex_lock(&g->mu);
	e = entry_of(g, name); /* the array may have moved */
	if (e) {
		e->fetching = 0;
		if (!rc) {
			atomic_fetch_add(&rt->refs, 1);
			cache_put(g, name, rt);
		} else if (rc == VT_ENOENT) {
			cache_put(g, name, NULL);
		}
	}
	pthread_cond_broadcast(&g->fetched);
	pthread_mutex_unlock(&g->mu);
	*out = rt;
	return rc;
}

/* ---- choosing a replica ------------------------------------------------------- */

enum kind { WRITE, READ_LEADER, READ_ANY };

/* Replicas that failed during one operation (copied: the routing they
 * came from may be replaced meanwhile). */
struct skip {
	char addr[MAX_SKIP][300];
	size_t n;
};

static void skip_add(struct skip *s, const char *addr)
{
	if (s->n < MAX_SKIP)
		snprintf(s->addr[s->n++], sizeof s->addr[0], "%s", addr);
}

static int skipped(const struct skip *s, const char *addr)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->addr[i], addr))
			return 1;
	return 0;
}

static const Peer *leader_of(const ShardRoute *sr)
{
	for (size_t i = 0; sr->leader && i < sr->n_replicas; i++)
		if (sr->replicas[i]->worker == sr->leader)
			return sr->replicas[i];
	return NULL;
}

/* Where to send: the leader (hint) for writes and linearizable reads,
 * else a voter; for eventual reads the leader while it is healthy, else
 * any replica (non-voters first when preferred). NULL: every replica was
 * tried. */
static const char *pick(vt_gw *g, const ShardRoute *sr, int kind,
			const struct skip *sk)
{
	const Peer *l = leader_of(sr);
	size_t n = sr->n_replicas;
	if (n == 0)
		return NULL;
	unsigned start = atomic_fetch_add(&g->rr, 1);
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0 honours the breakers; pass 1 tries anyway */
#define OK(p)                                                                  \
	((p) && (p)->addr && (p)->addr[0] && !skipped(sk, (p)->addr) &&        \
	 (pass || vt_rpcc_healthy(g->rpc, (p)->addr)))
		if (kind == READ_ANY && g->opts.prefer_search_only)
			for (size_t i = 0; i < n; i++) {
				const Peer *p = sr->replicas[(start + i) % n];
				if (p->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER &&
				    OK(p))
					return p->addr;
			}
		if (OK(l))
			return l->addr;
		for (size_t i = 0; i < n; i++) {
			const Peer *p = sr->replicas[(start + i) % n];
			if ((kind == READ_ANY ||
			     p->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__VOTER) &&
			    OK(p))
				return p->addr;
		}
#undef OK
	}
	return NULL;
}

/* ---- one shard call with retries ------------------------------------------------ */

struct shard_call {
	const char *coll;
	uint32_t shard;
	int kind;
	const char *method;
	ProtobufCMessage *req;
	ShardRef *ref; /* inside req: filled per attempt */
	const ProtobufCMessageDescriptor *desc;
	uint32_t budget_ms; /* the whole call, retries included; 0 = retry_ms */
};

/* Sends the call to the right replica of the shard and follows what the
 * cluster answers: a stale epoch refreshes the routing and retries once;
 * "not the leader" goes to the leader named; an unreachable replica makes
 * reads go to another one and writes wait for the routing to change,
 * until retry_ms is spent. Returns 0 with *reply, or VT_E* with `err`. */
static int shard_call(vt_gw *g, const struct shard_call *sc,
		      ProtobufCMessage **reply, vt_errmsg *err)
{
	*reply = NULL;
	struct route *rt;
	int rc = route_get(g, sc->coll, NULL, &rt, err);
	if (rc)
		return rc;
	char path[128], to[300] = "", msg[512], hint[300];
	snprintf(path, sizeof path, WK_SVC "%s", sc->method);
	uint32_t budget = sc->budget_ms && sc->budget_ms < g->opts.retry_ms
				  ? sc->budget_ms
				  : g->opts.retry_ms;
	uint64_t until = now_ms() + budget;
	struct skip sk;
	sk.n = 0;
	int stale_tried = 0, hops = 0, answered = 0;
	char last[600] = "no replica";
	for (;;) {
		if (sc->shard >= rt->r->n_shards) {
			rc = vt_errmsg_set(err, VT_EINVAL, "shard %u of %s: the "
					   "collection has %zu", sc->shard,
					   sc->coll, rt->r->n_shards);
			break;
		}
		const ShardRoute *sr = rt->r->shards[sc->shard];
		sc->ref->has_group = sc->ref->has_epoch = 1;
		sc->ref->group = sr->group;
		sc->ref->epoch = sr->epoch;
		const char *addr = to[0] ? to : pick(g, sr, sc->kind, &sk);
		int st, cut = 0;
		if (!addr) {
			st = VT_GRPC_UNAVAILABLE;
			snprintf(msg, sizeof msg, "%.500s", last);
		} else {
			/* each try gets what is left of the budget, at
			 * least a moment, at most rpc_timeout_ms */
			uint64_t t = now_ms(), left = until > t ? until - t : 1;
			cut = left < g->opts.rpc_timeout_ms;
			if (g->local_addr[0] && !strcmp(addr, g->local_addr))
				st = g->opts.local_call(g->opts.local_ud,
							sc->method, sc->req,
							sc->desc, reply, msg,
							sizeof msg);
			else
				st = vt_rpcc_call(g->rpc, addr, path, sc->req,
						  sc->desc,
						  cut ? left
						      : g->opts.rpc_timeout_ms,
						  reply, msg, sizeof msg);
		}
		if (st == VT_GRPC_OK) {
			rc = 0;
			break;
		}
		/* The reason given up with is what a replica last said about
		 * the shard: not a redirect that is being followed, nor a try
		 * that ran out of the budget we cut it to once a replica has
		 * answered. */
		int redirect = not_leader(st, msg, hint, sizeof hint);
		int follow = redirect && hint[0] && hops < 3;
		if (addr && !follow &&
		    !(cut && answered && st == VT_GRPC_DEADLINE_EXCEEDED)) {
			snprintf(last, sizeof last, "%.80s: %.500s", addr, msg);
			answered = st != VT_GRPC_DEADLINE_EXCEEDED;
		}
		int refresh = 0, wait = 0;
		if (st == VT_GRPC_FAILED_PRECONDITION &&
		    !strncmp(msg, STALE, strlen(STALE))) {
			if (stale_tried) {
				rc = vt_errmsg_set(err, VT_EBUSY,
						   "shard %s/%u: routing still "
						   "stale after a refresh: %s",
						   sc->coll, sc->shard, msg);
				break;
			}
			stale_tried = refresh = 1;
			count(g, &g->stats.stale_retries);
		} else if (redirect) {
			if (follow) {
				hops++;
				snprintf(to, sizeof to, "%s", hint);
				count(g, &g->stats.leader_redirects);
				continue;
			}
			refresh = wait = 1; /* an election is on */
		} else if (st == VT_GRPC_NOT_FOUND &&
			   strstr(msg, "not hosted here")) {
			refresh = 1; /* moved: ask the PD again */
			if (addr)
				skip_add(&sk, addr);
		} else if (st == VT_GRPC_CANCELLED) {
			/* the replica lost its leadership with the call in
			 * flight (a read barrier or a write that may or may
			 * not commit: writes are idempotent): a new leader
			 * is being elected */
			refresh = wait = 1;
		} else if (st == VT_GRPC_UNAVAILABLE ||
			   st == VT_GRPC_DEADLINE_EXCEEDED) {
			if (addr) {
				skip_add(&sk, addr);
				if (sc->kind == READ_ANY) {
					count(g, &g->stats.replica_failovers);
					to[0] = '\0';
					continue;
				}
			}
			refresh = wait = 1;
		} else {
			rc = relay(st, msg, "worker", err);
			break;
		}
		if (now_ms() >= until) {
			rc = vt_errmsg_set(err, vt_grpc_err_from_status(st),
					   "shard %s/%u: %s (gave up after %u "
					   "ms)", sc->coll, sc->shard, last,
					   budget);
			break;
		}
		if (wait)
			sleep_ms(200);
		to[0] = '\0';
		hops = 0;
		if (refresh) {
			struct route *fresh;
			rc = route_get(g, sc->coll, rt, &fresh, err);
			if (rc)
				break;
			route_unref(rt);
			rt = fresh;
			if (wait)
				sk.n = 0; /* new leaders: every replica again */
		}
	}
	route_unref(rt);
	return rc;
}

/* ---- vt_coll_remote ------------------------------------------------------------- */

static int r_create(void *ud, const vt_coll_config *cfg, vt_errmsg *err)
{
	vt_gw *g = ud;
	vt_buf b;
	vt_buf_init(&b, 1 << 20);
	int rc = vt_coll_config_encode(cfg, &b, err);
	if (rc) {
		vt_buf_free(&b);
		return rc;
	}
	Vectron__Internal__V1__CreateCollectionRequest req =
		VECTRON__INTERNAL__V1__CREATE_COLLECTION_REQUEST__INIT;
	req.has_version = req.has_config = req.has_shard_count = req.has_rf = 1;
	req.version = PROTO_VERSION;
	req.name = (char *)cfg->name;
	req.config.data = b.data;
	req.config.len = b.len;
	req.shard_count = cfg->shard_count;
	req.rf = g->opts.rf;
	req.has_search_replicas = 1;
	req.search_replicas = g->opts.search_replicas;
	ProtobufCMessage *rep;
	char msg[512];
	int st = pd_call(g, "CreateCollection", &req.base,
			 &vectron__internal__v1__create_collection_response__descriptor,
			 &rep, msg, sizeof msg);
	vt_buf_free(&b);
	if (st)
		return relay(st, msg, "placement driver", err);
	vt_grpc_msg_free(rep);
	pthread_mutex_lock(&g->mu);
	cache_put(g, cfg->name, NULL);
	pthread_mutex_unlock(&g->mu);
	/* Writes right after a create should not meet shards without a
	 * leader: wait (bounded) until every shard has one. */
	uint64_t until = now_ms() + g->opts.create_wait_ms;
	for (;;) {
		if (g->opts.changed)
			g->opts.changed(g->opts.changed_ud);
		struct route *rt;
		vt_errmsg e;
		if (route_get(g, cfg->name, NULL, &rt, &e) == 0) {
			size_t led = 0;
			for (size_t i = 0; i < rt->r->n_shards; i++)
				led += rt->r->shards[i]->leader != 0;
			int all = led == rt->r->n_shards;
			route_unref(rt);
			if (all)
				break;
		}
		if (now_ms() >= until) {
			VT_LOG(VT_LOG_WARN, "gateway",
			       "collection %s created; some shards still have "
			       "no leader after %u ms (writes wait for them)",
			       cfg->name, g->opts.create_wait_ms);
			break;
		}
		/* a worker told of the change answers within a few ms */
		sleep_ms(g->opts.changed ? 5 : 100);
		pthread_mutex_lock(&g->mu);
		cache_put(g, cfg->name, NULL);
		pthread_mutex_unlock(&g->mu);
	}
	return 0;
}

static int r_drop(void *ud, const char *name, vt_errmsg *err)
{
	vt_gw *g = ud;
	Vectron__Internal__V1__DropCollectionRequest req =
		VECTRON__INTERNAL__V1__DROP_COLLECTION_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	req.name = (char *)name;
	ProtobufCMessage *rep;
	char msg[512];
	int st = pd_call(g, "DropCollection", &req.base,
			 &vectron__internal__v1__drop_collection_response__descriptor,
			 &rep, msg, sizeof msg);
	pthread_mutex_lock(&g->mu);
	cache_put(g, name, NULL);
	pthread_mutex_unlock(&g->mu);
	if (st)
		return relay(st, msg, "placement driver", err);
	vt_grpc_msg_free(rep);
	if (g->opts.changed)
		g->opts.changed(g->opts.changed_ud);
	return 0;
}

static int r_list(void *ud, char ***names, size_t *n, vt_errmsg *err)
{
	vt_gw *g = ud;
	*names = NULL;
	*n = 0;
	Vectron__Internal__V1__GetRoutingRequest req =
		VECTRON__INTERNAL__V1__GET_ROUTING_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	ProtobufCMessage *rep;
	char msg[512];
	count(g, &g->stats.routing_fetches);
	int st = pd_call(g, "GetRouting", &req.base,
			 &vectron__internal__v1__get_routing_response__descriptor,
			 &rep, msg, sizeof msg);
	if (st)
		return relay(st, msg, "placement driver", err);
	Vectron__Internal__V1__GetRoutingResponse *r = (void *)rep;
	char **arr = vt_calloc(r->n_collections ? r->n_collections : 1,
			       sizeof *arr);
	int rc = arr ? 0 : VT_ENOMEM;
	for (size_t i = 0; !rc && i < r->n_collections; i++)
		if (!(arr[i] = vt_strdup(r->collections[i]->name ?
					 r->collections[i]->name : "")))
			rc = VT_ENOMEM;
	if (rc) {
		for (size_t i = 0; arr && i < r->n_collections; i++)
			vt_free(arr[i]);
		vt_free(arr);
		vt_grpc_msg_free(rep);
		return vt_errmsg_set(err, rc, "out of memory");
	}
	*names = arr;
	*n = r->n_collections;
	vt_grpc_msg_free(rep);
	return 0;
}

static int r_lookup(void *ud, const char *name, vt_coll_config *cfg,
		    vt_errmsg *err)
{
	vt_gw *g = ud;
	struct route *rt;
	int rc = route_get(g, name, NULL, &rt, err);
	if (rc == VT_ENOENT)
		return vt_errmsg_set(err, rc, "collection \"%s\" not found",
				     name);
	if (rc)
		return rc;
	*cfg = rt->cfg;
	route_unref(rt);
	return 0;
}

static int r_write(void *ud, const char *coll, uint32_t shard,
		   const void *cmd, size_t len, uint32_t entries,
		   int validate_only, vt_shard_result *res, vt_errmsg *err)
{
	vt_gw *g = ud;
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardWriteRequest req =
		VECTRON__INTERNAL__V1__SHARD_WRITE_REQUEST__INIT;
	req.has_version = req.has_cmd = req.has_entries = 1;
	req.version = PROTO_VERSION;
	req.shard = &ref;
	req.cmd.data = (uint8_t *)cmd;
	req.cmd.len = len;
	req.entries = entries;
	req.has_validate_only = 1;
	req.validate_only = validate_only != 0;
	struct shard_call sc = {coll, shard, WRITE, "ShardWrite", &req.base,
				&ref,
				&vectron__internal__v1__shard_write_response__descriptor, 0};
	ProtobufCMessage *rep;
	int rc = shard_call(g, &sc, &rep, err);
	if (rc)
		return rc;
	Vectron__Internal__V1__ShardWriteResponse *w = (void *)rep;
	memset(res, 0, sizeof *res);
	res->upserted = w->upserted;
	res->created = w->created;
	res->deleted = w->deleted;
	res->updated = w->updated;
	vt_grpc_msg_free(rep);
	return 0;
}

/* Points the results at the hits of `rep` (which they keep). Ids are
 * copied after the hits with a NUL each, as lib/shard's results have them
 * (the API hands ids on as C strings); payloads are protobuf-c strings. */
static int hits_take(ProtobufCMessage *rep, Vectron__Internal__V1__Hit **h,
		     size_t n, vt_shard_results *out, vt_errmsg *err)
{
	out->priv_ = rep;
	size_t ids = 0;
	for (size_t i = 0; i < n; i++)
		ids += h[i]->id.len + 1;
	out->hits = vt_malloc((n ? n : 1) * sizeof *out->hits + ids);
	if (!out->hits)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	char *idp = (char *)(out->hits + (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		vt_shard_hit *d = &out->hits[i];
		memset(d, 0, sizeof *d);
		memcpy(idp, h[i]->id.data, h[i]->id.len);
		idp[h[i]->id.len] = '\0';
		d->id = idp;
		d->id_len = (uint32_t)h[i]->id.len;
		idp += h[i]->id.len + 1;
		d->label = h[i]->label;
		d->dist = h[i]->dist;
		d->score = h[i]->score;
		if (h[i]->payload) {
			d->payload = h[i]->payload;
			d->payload_len = (uint32_t)strlen(h[i]->payload);
		}
		d->vec = h[i]->n_vector ? h[i]->vector : NULL;
	}
	out->n = n;
	return 0;
}

static char *filter_text(const vt_filter *f)
{
	size_t len;
	return f ? (char *)vt_filter_source(f, &len) : NULL;
}

/* A ShardSearch request for `q` (its shard reference left to the caller). */
static void search_req_fill(Vectron__Internal__V1__ShardSearchRequest *req,
			    const vt_shard_query *q, size_t dim,
			    int linearizable)
{
	req->has_version = 1;
	req->version = PROTO_VERSION;
	req->n_vector = dim;
	req->vector = (float *)q->vec;
	req->has_k = req->has_ef = req->has_exact = req->has_rescore = 1;
	req->k = q->k;
	req->ef = q->ef;
	req->exact = q->exact != 0;
	req->rescore = q->rescore != 0;
	req->has_oversampling = req->has_with_payload = req->has_with_vector = 1;
	req->oversampling = q->oversampling;
	req->filter = filter_text(q->filter);
	req->with_payload = q->with_payload != 0;
	req->with_vector = q->with_vector != 0;
	req->has_linearizable = req->has_wait_ms = 1;
	req->linearizable = linearizable != 0;
	req->wait_ms = q->wait_ms;
}

/* The search's deadline bounds the shard's answer, retries included: 90%
 * of it, so that a shard that gives up still leaves time to merge and
 * answer (with partial results if allowed). */
static uint32_t search_budget(const vt_shard_query *q)
{
	return q->wait_ms > 50 ? q->wait_ms - q->wait_ms / 10 : q->wait_ms;
}

static int r_search(void *ud, const char *coll, uint32_t shard,
		    const vt_shard_query *q, int linearizable,
		    vt_shard_results *out, vt_errmsg *err)
{
	vt_gw *g = ud;
	struct route *rt;
	int rc = route_get(g, coll, NULL, &rt, err);
	if (rc)
		return rc;
	size_t dim = rt->cfg.shard.dim;
	route_unref(rt);
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardSearchRequest req =
		VECTRON__INTERNAL__V1__SHARD_SEARCH_REQUEST__INIT;
	search_req_fill(&req, q, dim, linearizable);
	req.shard = &ref;
	struct shard_call sc = {coll, shard, linearizable ? READ_LEADER : READ_ANY,
				"ShardSearch", &req.base, &ref,
				&vectron__internal__v1__shard_search_response__descriptor,
				search_budget(q)};
	ProtobufCMessage *rep;
	if ((rc = shard_call(g, &sc, &rep, err)))
		return rc;
	Vectron__Internal__V1__ShardSearchResponse *r = (void *)rep;
	return hits_take(rep, r->hits, r->n_hits, out, err);
}

/* Shards whose replica of choice (pick) is on the same worker share a
 * group. A worker in this process gets none: its shard searches run in
 * parallel on the fan-out pool, which beats one call searching them one
 * after the other. */
static int r_search_groups(void *ud, const char *coll, uint32_t n,
			   int linearizable, uint32_t *group,
			   uint32_t *n_groups, vt_errmsg *err)
{
	vt_gw *g = ud;
	for (uint32_t s = 0; s < n; s++)
		group[s] = s;
	*n_groups = n;
	if (g->local_addr[0])
		return 0;
	struct route *rt;
	int rc = route_get(g, coll, NULL, &rt, err);
	if (rc)
		return rc;
	if (rt->r->n_shards != n) {
		route_unref(rt);
		return 0; /* changed under the caller: one call per shard */
	}
	const char *addr[n];
	struct skip none;
	none.n = 0;
	uint32_t ng = 0;
	for (uint32_t s = 0; s < n; s++) {
		addr[s] = pick(g, rt->r->shards[s],
			       linearizable ? READ_LEADER : READ_ANY, &none);
		group[s] = UINT32_MAX;
		for (uint32_t t = 0; addr[s] && t < s; t++)
			if (addr[t] && !strcmp(addr[t], addr[s])) {
				group[s] = group[t];
				break;
			}
		if (group[s] == UINT32_MAX)
			group[s] = ng++;
	}
	*n_groups = ng;
	route_unref(rt);
	return 0;
}

/* One ShardSearchMany to the replica of choice of shards[0]: fills the
 * shards that answered (done[i] = 1). Anything else (a stale epoch, a
 * shard not there, the call failing) is left to the per-shard path with
 * its retries. */
static void search_many_call(vt_gw *g, const char *coll, const uint32_t *shards,
			     size_t n, const vt_shard_query *q, int linearizable,
			     vt_shard_results *out, int *rcs, vt_errmsg *errs,
			     int *done)
{
	struct route *rt;
	vt_errmsg e;
	if (route_get(g, coll, NULL, &rt, &e))
		return;
	ShardRef refs[n], *rp[n];
	const char *addr = NULL;
	for (size_t i = 0; i < n; i++) {
		if (shards[i] >= rt->r->n_shards)
			goto out;
		const ShardRoute *sr = rt->r->shards[shards[i]];
		vectron__internal__v1__shard_ref__init(&refs[i]);
		refs[i].has_group = refs[i].has_epoch = 1;
		refs[i].group = sr->group;
		refs[i].epoch = sr->epoch;
		rp[i] = &refs[i];
	}
	struct skip none;
	none.n = 0;
	addr = pick(g, rt->r->shards[shards[0]],
		    linearizable ? READ_LEADER : READ_ANY, &none);
	if (!addr)
		goto out;
	Vectron__Internal__V1__ShardSearchRequest one =
		VECTRON__INTERNAL__V1__SHARD_SEARCH_REQUEST__INIT;
	search_req_fill(&one, q, rt->cfg.shard.dim, linearizable);
	Vectron__Internal__V1__ShardSearchManyRequest req =
		VECTRON__INTERNAL__V1__SHARD_SEARCH_MANY_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	req.query = &one;
	req.n_shards = n;
	req.shards = rp;
	uint32_t budget = search_budget(q);
	char msg[512];
	ProtobufCMessage *rep = NULL;
	int st = vt_rpcc_call(g->rpc, addr, WK_SVC "ShardSearchMany", &req.base,
			      &vectron__internal__v1__shard_search_many_response__descriptor,
			      budget && budget < g->opts.rpc_timeout_ms
				      ? budget
				      : g->opts.rpc_timeout_ms,
			      &rep, msg, sizeof msg);
	if (st)
		goto out;
	count(g, &g->stats.multi_shard_calls);
	const Vectron__Internal__V1__ShardSearchManyResponse *r = (void *)rep;
	for (size_t i = 0; i < n && r->n_parts == n; i++) {
		const Vectron__Internal__V1__ShardSearchPart *p = r->parts[i];
		if (p->status || !p->has_response)
			continue;
		ProtobufCMessage *one_rep = vt_grpc_msg_unpack(
			&vectron__internal__v1__shard_search_response__descriptor,
			p->response.data, p->response.len);
		if (!one_rep)
			continue;
		Vectron__Internal__V1__ShardSearchResponse *sr = (void *)one_rep;
		memset(&out[i], 0, sizeof out[i]);
		rcs[i] = hits_take(one_rep, sr->hits, sr->n_hits, &out[i],
				   &errs[i]);
		done[i] = 1;
	}
	vt_grpc_msg_free(rep);
out:
	route_unref(rt);
}

static void r_search_many(void *ud, const char *coll, const uint32_t *shards,
			  size_t n, const vt_shard_query *q, int linearizable,
			  vt_shard_results *out, int *rcs, vt_errmsg *errs)
{
	vt_gw *g = ud;
	int done[n];
	memset(done, 0, sizeof done);
	if (n > 1)
		search_many_call(g, coll, shards, n, q, linearizable, out, rcs,
				 errs, done);
	for (size_t i = 0; i < n; i++)
		if (!done[i])
			rcs[i] = r_search(ud, coll, shards[i], q, linearizable,
					  &out[i], &errs[i]);
}

static int r_get(void *ud, const char *coll, uint32_t shard,
		 const char *const *ids, const uint32_t *lens, size_t n,
		 int with_payload, int with_vector, vt_shard_results *out,
		 vt_errmsg *err)
{
	vt_gw *g = ud;
	ProtobufCBinaryData *bin = vt_calloc(n ? n : 1, sizeof *bin);
	if (!bin)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		bin[i].data = (uint8_t *)ids[i];
		bin[i].len = lens[i];
	}
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardGetRequest req =
		VECTRON__INTERNAL__V1__SHARD_GET_REQUEST__INIT;
	req.has_version = req.has_with_payload = req.has_with_vector = 1;
	req.version = PROTO_VERSION;
	req.shard = &ref;
	req.n_ids = n;
	req.ids = bin;
	req.with_payload = with_payload != 0;
	req.with_vector = with_vector != 0;
	struct shard_call sc = {coll, shard, READ_ANY, "ShardGet", &req.base,
				&ref,
				&vectron__internal__v1__shard_get_response__descriptor, 0};
	ProtobufCMessage *rep;
	int rc = shard_call(g, &sc, &rep, err);
	vt_free(bin);
	if (rc)
		return rc;
	Vectron__Internal__V1__ShardGetResponse *r = (void *)rep;
	return hits_take(rep, r->hits, r->n_hits, out, err);
}

static int r_scroll(void *ud, const char *coll, uint32_t shard, uint64_t from,
		    uint32_t limit, const vt_filter *f, int with_payload,
		    int with_vector, vt_shard_results *out, uint64_t *next,
		    vt_errmsg *err)
{
	vt_gw *g = ud;
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardScrollRequest req =
		VECTRON__INTERNAL__V1__SHARD_SCROLL_REQUEST__INIT;
	req.has_version = req.has_from = req.has_limit = 1;
	req.version = PROTO_VERSION;
	req.shard = &ref;
	req.from = from;
	req.limit = limit;
	req.filter = filter_text(f);
	req.has_with_payload = req.has_with_vector = 1;
	req.with_payload = with_payload != 0;
	req.with_vector = with_vector != 0;
	/* Labels are per replica of the same log, so a cursor stays valid
	 * on any replica; the leader keeps pages in step with writes. */
	struct shard_call sc = {coll, shard, READ_ANY, "ShardScroll",
				&req.base, &ref,
				&vectron__internal__v1__shard_scroll_response__descriptor, 0};
	ProtobufCMessage *rep;
	int rc = shard_call(g, &sc, &rep, err);
	if (rc)
		return rc;
	Vectron__Internal__V1__ShardScrollResponse *r = (void *)rep;
	*next = r->next;
	return hits_take(rep, r->hits, r->n_hits, out, err);
}

static int r_count(void *ud, const char *coll, uint32_t shard,
		   const vt_filter *f, uint64_t *out, vt_errmsg *err)
{
	vt_gw *g = ud;
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardCountRequest req =
		VECTRON__INTERNAL__V1__SHARD_COUNT_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	req.shard = &ref;
	req.filter = filter_text(f);
	struct shard_call sc = {coll, shard, READ_ANY, "ShardCount", &req.base,
				&ref,
				&vectron__internal__v1__shard_count_response__descriptor, 0};
	ProtobufCMessage *rep;
	int rc = shard_call(g, &sc, &rep, err);
	if (rc)
		return rc;
	*out = ((Vectron__Internal__V1__ShardCountResponse *)rep)->count;
	vt_grpc_msg_free(rep);
	return 0;
}

static int r_status(void *ud, const char *coll, uint32_t shard,
		    vt_shard_status *out, vt_errmsg *err)
{
	vt_gw *g = ud;
	ShardRef ref = VECTRON__INTERNAL__V1__SHARD_REF__INIT;
	Vectron__Internal__V1__ShardStatusRequest req =
		VECTRON__INTERNAL__V1__SHARD_STATUS_REQUEST__INIT;
	req.has_version = 1;
	req.version = PROTO_VERSION;
	req.shard = &ref;
	struct shard_call sc = {coll, shard, READ_LEADER, "ShardStatus",
				&req.base, &ref,
				&vectron__internal__v1__shard_status_response__descriptor, 0};
	ProtobufCMessage *rep;
	int rc = shard_call(g, &sc, &rep, err);
	if (rc)
		return rc;
	Vectron__Internal__V1__ShardStatusResponse *s = (void *)rep;
	memset(out, 0, sizeof *out);
	out->applied = s->applied;
	out->indexed = s->indexed;
	out->lag = s->lag;
	out->points = s->points;
	out->index_points = s->index_points;
	out->bytes_store = s->bytes_store;
	out->bytes_index = s->bytes_index;
	out->bytes_snapshot = s->bytes_snapshot;
	out->readonly = s->readonly;
	vt_grpc_msg_free(rep);
	return 0;
}

static void r_results_free(void *ud, vt_shard_results *r)
{
	(void)ud;
	vt_grpc_msg_free(r->priv_);
	vt_free(r->hits);
	memset(r, 0, sizeof *r);
}

/* ---- lifecycle ------------------------------------------------------------------ */

int vt_gw_open(const vt_gw_opts *o, vt_gw **out, vt_errmsg *err)
{
	*out = NULL;
	if (!o->pd || !o->pd[0])
		return vt_errmsg_set(err, VT_EINVAL,
				     "pd: no placement driver address");
	vt_gw *g = vt_calloc(1, sizeof *g);
	if (!g || !(g->pd_list = vt_strdup(o->pd))) {
		vt_free(g);
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	}
	g->opts = *o;
	g->opts.pd = g->pd_list;
	if (o->local_call && o->local_addr)
		snprintf(g->local_addr, sizeof g->local_addr, "%s",
			 o->local_addr);
	g->opts.local_addr = g->local_addr;
	char *save = NULL, *tmp = vt_strdup(o->pd);
	int rc = tmp ? 0 : VT_ENOMEM;
	for (char *t = tmp ? strtok_r(tmp, ",", &save) : NULL; t && !rc;
	     t = strtok_r(NULL, ",", &save)) {
		if (g->n_pd == MAX_PD)
			rc = vt_errmsg_set(err, VT_EINVAL,
					   "pd: more than %d addresses", MAX_PD);
		else if (!strchr(t, ':'))
			rc = vt_errmsg_set(err, VT_EINVAL,
					   "pd: \"%s\" is not host:port", t);
		else if (!(g->pd[g->n_pd++] = vt_strdup(t)))
			rc = VT_ENOMEM;
	}
	vt_free(tmp);
	if (!rc && !g->n_pd)
		rc = vt_errmsg_set(err, VT_EINVAL,
				   "pd: no placement driver address");
	if (!rc)
		rc = vt_rpcc_open(NULL, &g->rpc, err);
	if (rc) {
		if (rc == VT_ENOMEM)
			vt_errmsg_set(err, rc, "out of memory");
		vt_gw_close(g);
		return rc;
	}
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->fetched, NULL);
	g->remote = (vt_coll_remote){g,        r_create, r_drop,   r_list,
				     r_lookup, r_write,  r_search, r_get,
				     r_scroll, r_count,  r_status,
				     r_results_free, r_search_groups,
				     r_search_many};
	*out = g;
	return 0;
}

const vt_coll_remote *vt_gw_remote(vt_gw *g) { return &g->remote; }

void vt_gw_stats_get(vt_gw *g, vt_gw_stats *out)
{
	pthread_mutex_lock(&g->mu);
	*out = g->stats;
	pthread_mutex_unlock(&g->mu);
}

void vt_gw_forget_routing(vt_gw *g)
{
	pthread_mutex_lock(&g->mu);
	for (size_t i = 0; i < g->n_entries; i++) {
		route_unref(g->entries[i].route);
		g->entries[i].route = NULL;
	}
	pthread_mutex_unlock(&g->mu);
}

void vt_gw_close(vt_gw *g)
{
	if (!g)
		return;
	vt_rpcc_close(g->rpc);
	if (g->remote.ud) {
		vt_gw_forget_routing(g);
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->fetched);
	}
	vt_free(g->entries);
	for (size_t i = 0; i < g->n_pd; i++)
		vt_free(g->pd[i]);
	vt_free(g->pd_list);
	vt_free(g);
}
