/* cluster_cli.c: `vectron cluster`, the operator's view of a cluster
 * through its placement driver: workers, collections with their shards'
 * placement and leaders, the PD's status and recent reconciliation
 * actions, and draining a worker. A thin client of the PD's internal API
 * (proto/vectron/internal/v1/cluster.proto); docs/operations.md. */
#include "cluster_cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "gateway/gateway.h"
#include "rpc/grpc.h"
#include "vectron/internal/v1/cluster.pb-c.h"

#define V 1 /* protocol version */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vectron cluster [--pd HOST:PORT[,...]] <command>\n"
		"\n"
		"Asks the placement driver (any node; default $VECTRON_PD or\n"
		"127.0.0.1:7000) about the cluster:\n"
		"  status              the PD node, its leader, term, epoch and\n"
		"                      the last reconciliation actions\n"
		"  workers             every worker: address, zone, role, state,\n"
		"                      alive, replicas\n"
		"  collections [NAME]  collections and each shard's replicas,\n"
		"                      leader and epoch\n"
		"  drain ID            move every replica off worker ID\n"
		"  undrain ID          let worker ID receive replicas again\n"
		"  remove ID           retire worker ID (it must host nothing)\n");
}

static const char *worker_state(int s)
{
	return s == VECTRON__INTERNAL__V1__WORKER_STATE__DRAINING ? "draining"
	       : s == VECTRON__INTERNAL__V1__WORKER_STATE__REMOVED ? "removed"
								    : "up";
}

static int fail(int st, const char *msg)
{
	fprintf(stderr, "vectron cluster: %s: %s\n", vt_grpc_status_name(st),
		msg);
	return 1;
}

static int cmd_status(vt_gw *g)
{
	Vectron__Internal__V1__StatusRequest req =
		VECTRON__INTERNAL__V1__STATUS_REQUEST__INIT;
	req.has_version = 1;
	req.version = V;
	ProtobufCMessage *rep;
	char msg[512];
	int st = vt_gw_pd_call(g, "Status", &req.base,
			       &vectron__internal__v1__status_response__descriptor,
			       &rep, msg, sizeof msg);
	if (st)
		return fail(st, msg);
	Vectron__Internal__V1__StatusResponse *r = (void *)rep;
	printf("pd node %" PRIu64 " (%s), leader %s, term %" PRIu64
	       ", applied %" PRIu64 ", epoch %" PRIu64 "\n",
	       r->node_id, r->leader ? "leader" : "follower",
	       r->leader_addr ? r->leader_addr : "unknown", r->term, r->applied,
	       r->epoch);
	for (size_t i = 0; i < r->n_recent_actions; i++) {
		const Vectron__Internal__V1__PlanAction *a = r->recent_actions[i];
		printf("  %-15s %s/%u worker %" PRIu64 ": %s -> %s\n",
		       a->kind ? a->kind : "?",
		       a->collection ? a->collection : "", a->shard, a->worker,
		       a->reason ? a->reason : "", a->outcome ? a->outcome : "");
	}
	vt_grpc_msg_free(rep);
	return 0;
}

static int cmd_workers(vt_gw *g)
{
	Vectron__Internal__V1__ListWorkersRequest req =
		VECTRON__INTERNAL__V1__LIST_WORKERS_REQUEST__INIT;
	req.has_version = 1;
	req.version = V;
	ProtobufCMessage *rep;
	char msg[512];
	int st = vt_gw_pd_call(g, "ListWorkers", &req.base,
			       &vectron__internal__v1__list_workers_response__descriptor,
			       &rep, msg, sizeof msg);
	if (st)
		return fail(st, msg);
	Vectron__Internal__V1__ListWorkersResponse *r = (void *)rep;
	printf("%-20s %-22s %-10s %-11s %-8s %-5s %s\n", "ID", "ADDRESS",
	       "ZONE", "ROLE", "STATE", "ALIVE", "REPLICAS");
	for (size_t i = 0; i < r->n_workers; i++) {
		const Vectron__Internal__V1__WorkerInfo *w = r->workers[i];
		printf("%-20" PRIu64 " %-22s %-10s %-11s %-8s %-5s %u\n", w->id,
		       w->addr ? w->addr : "", w->zone && *w->zone ? w->zone : "-",
		       w->role == VECTRON__INTERNAL__V1__WORKER_ROLE__SEARCH_ONLY
			       ? "search_only"
			       : "normal",
		       worker_state(w->state), w->alive ? "yes" : "no",
		       w->replicas);
	}
	printf("assignments epoch %" PRIu64 "\n", r->epoch);
	vt_grpc_msg_free(rep);
	return 0;
}

static int cmd_collections(vt_gw *g, const char *name)
{
	Vectron__Internal__V1__GetRoutingRequest req =
		VECTRON__INTERNAL__V1__GET_ROUTING_REQUEST__INIT;
	req.has_version = 1;
	req.version = V;
	req.name = (char *)name;
	ProtobufCMessage *rep;
	char msg[512];
	int st = vt_gw_pd_call(g, "GetRouting", &req.base,
			       &vectron__internal__v1__get_routing_response__descriptor,
			       &rep, msg, sizeof msg);
	if (st)
		return fail(st, msg);
	Vectron__Internal__V1__GetRoutingResponse *r = (void *)rep;
	for (size_t i = 0; i < r->n_collections; i++) {
		const Vectron__Internal__V1__CollectionRoute *c = r->collections[i];
		printf("%s: %u shards, rf %u, epoch %" PRIu64 "\n",
		       c->name ? c->name : "?", c->shard_count, c->rf, c->epoch);
		for (size_t s = 0; s < c->n_shards; s++) {
			const Vectron__Internal__V1__ShardRoute *sr = c->shards[s];
			printf("  shard %u group %" PRIu64 " epoch %" PRIu64
			       " leader %" PRIu64 ":",
			       sr->index, sr->group, sr->epoch, sr->leader);
			for (size_t k = 0; k < sr->n_replicas; k++) {
				const Vectron__Internal__V1__Peer *p =
					sr->replicas[k];
				printf(" %" PRIu64 "@%s%s", p->worker,
				       p->addr ? p->addr : "?",
				       p->role == VECTRON__INTERNAL__V1__REPLICA_ROLE__NONVOTER
					       ? "(nonvoter)"
					       : "");
			}
			printf("\n");
		}
	}
	vt_grpc_msg_free(rep);
	return 0;
}

static int cmd_state(vt_gw *g, const char *id, int state)
{
	char *end;
	unsigned long long w = strtoull(id, &end, 10);
	if (!*id || *end || w == 0) {
		fprintf(stderr, "vectron cluster: \"%s\" is not a worker id\n",
			id);
		return 2;
	}
	Vectron__Internal__V1__SetWorkerStateRequest req =
		VECTRON__INTERNAL__V1__SET_WORKER_STATE_REQUEST__INIT;
	req.has_version = req.has_worker = req.has_state = 1;
	req.version = V;
	req.worker = w;
	req.state = state;
	ProtobufCMessage *rep;
	char msg[512];
	int st = vt_gw_pd_call(g, "SetWorkerState", &req.base,
			       &vectron__internal__v1__set_worker_state_response__descriptor,
			       &rep, msg, sizeof msg);
	if (st)
		return fail(st, msg);
	printf("worker %llu: %s (epoch %" PRIu64 ")\n", w, worker_state(state),
	       ((Vectron__Internal__V1__SetWorkerStateResponse *)rep)->epoch);
	vt_grpc_msg_free(rep);
	return 0;
}

int vt_cli_cluster(int argc, char **argv)
{
	const char *pd = getenv("VECTRON_PD");
	if (!pd || !*pd)
		pd = "127.0.0.1:7000";
	int i = 1;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--pd") && i + 1 < argc)
			pd = argv[++i];
		else if (!strncmp(argv[i], "--pd=", 5))
			pd = argv[i] + 5;
		else if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "vectron cluster: unknown flag %s\n\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	const char *arg = i + 1 < argc ? argv[i + 1] : NULL;
	vt_log_set_level(VT_LOG_WARN);
	vt_gw_opts o;
	vt_gw_opts_default(&o);
	o.pd = pd;
	o.retry_ms = 5000;
	o.rpc_timeout_ms = 3000;
	vt_errmsg e = {{0}};
	vt_gw *g;
	if (vt_gw_open(&o, &g, &e)) {
		fprintf(stderr, "vectron cluster: %s\n", e.msg);
		return 2;
	}
	int rc;
	if (!strcmp(cmd, "status"))
		rc = cmd_status(g);
	else if (!strcmp(cmd, "workers"))
		rc = cmd_workers(g);
	else if (!strcmp(cmd, "collections"))
		rc = cmd_collections(g, arg);
	else if ((!strcmp(cmd, "drain") || !strcmp(cmd, "undrain") ||
		  !strcmp(cmd, "remove")) && arg)
		rc = cmd_state(g, arg,
			       !strcmp(cmd, "drain")
				       ? VECTRON__INTERNAL__V1__WORKER_STATE__DRAINING
			       : !strcmp(cmd, "undrain")
				       ? VECTRON__INTERNAL__V1__WORKER_STATE__UP
				       : VECTRON__INTERNAL__V1__WORKER_STATE__REMOVED);
	else {
		usage(stderr);
		rc = 2;
	}
	vt_gw_close(g);
	return rc;
}
