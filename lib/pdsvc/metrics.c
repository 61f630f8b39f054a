/* metrics.c: the PD's Prometheus text (pdsvc.h, "metrics"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pd/plan.h"
#include "pdsvc/pdsvc.h"

int vt_pdsvc_outcome_of(const char *outcome)
{
	if (!strncmp(outcome, "ok", 2))
		return VT_PDSVC_OK;
	if (!strncmp(outcome, "stale plan", 10))
		return VT_PDSVC_STALE;
	return VT_PDSVC_FAILED;
}

void vt_pdsvc_gauges_of(const vt_pd_meta *m, const vt_pdsvc_soft *soft,
			uint64_t now_ms, uint64_t grace_ms, vt_pdsvc_gauges *g)
{
	memset(g->workers, 0, sizeof g->workers);
	g->workers_alive = g->collections = g->shards = 0;
	g->shards_leaderless = g->shards_under_replicated = g->replicas = 0;
	uint32_t nw = vt_pd_meta_worker_count(m);
	for (uint32_t i = 0; i < nw; i++) {
		const vt_pd_worker *w = vt_pd_meta_worker(m, i);
		uint64_t last;
		if (w->state < 3)
			g->workers[w->state]++;
		if (soft && w->state != VT_PD_REMOVED &&
		    vt_pdsvc_soft_last(soft, w->id, &last) &&
		    now_ms - last <= grace_ms)
			g->workers_alive++;
	}
	g->collections = vt_pd_meta_collection_count(m);
	for (uint32_t i = 0; i < g->collections; i++) {
		const vt_pd_collection *c = vt_pd_meta_collection(m, i);
		for (uint32_t k = 0; k < c->shard_count; k++) {
			const vt_pd_shard *sh = &c->shards[k];
			uint32_t voters = 0;
			for (uint32_t r = 0; r < sh->n_replicas; r++)
				voters += sh->replicas[r].role == VT_PD_VOTER;
			g->shards++;
			g->replicas += sh->n_replicas;
			g->shards_leaderless += sh->leader == 0;
			g->shards_under_replicated += voters < c->rf;
		}
	}
}

static const char *const outcome_names[VT_PDSVC_OUTCOMES] = {"ok", "stale",
							     "failed"};

int vt_pdsvc_metrics(const vt_pdsvc_gauges *g, const vt_pdsvc_counters *c,
		     vt_buf *out)
{
	char t[4096];
	int n = snprintf(
		t, sizeof t,
		"# HELP vectron_pd_leader 1 on the PD leader (it plans and "
		"answers).\n# TYPE vectron_pd_leader gauge\n"
		"vectron_pd_leader %d\n"
		"# HELP vectron_pd_term Raft term of the PD group.\n"
		"# TYPE vectron_pd_term gauge\nvectron_pd_term %" PRIu64 "\n"
		"# HELP vectron_pd_applied_index Last PD log index applied.\n"
		"# TYPE vectron_pd_applied_index gauge\n"
		"vectron_pd_applied_index %" PRIu64 "\n"
		"# HELP vectron_pd_epoch The assignments epoch.\n"
		"# TYPE vectron_pd_epoch gauge\nvectron_pd_epoch %" PRIu64 "\n"
		"# HELP vectron_pd_workers Registered workers by state.\n"
		"# TYPE vectron_pd_workers gauge\n"
		"vectron_pd_workers{state=\"up\"} %u\n"
		"vectron_pd_workers{state=\"draining\"} %u\n"
		"vectron_pd_workers{state=\"removed\"} %u\n"
		"# HELP vectron_pd_workers_alive Workers heard from within the "
		"heartbeat grace (the leader's view; 0 elsewhere).\n"
		"# TYPE vectron_pd_workers_alive gauge\n"
		"vectron_pd_workers_alive %u\n"
		"# HELP vectron_pd_collections Collections.\n"
		"# TYPE vectron_pd_collections gauge\n"
		"vectron_pd_collections %u\n"
		"# HELP vectron_pd_shards Shards of every collection.\n"
		"# TYPE vectron_pd_shards gauge\nvectron_pd_shards %u\n"
		"# HELP vectron_pd_replicas Replicas of every shard.\n"
		"# TYPE vectron_pd_replicas gauge\nvectron_pd_replicas %u\n"
		"# HELP vectron_pd_shards_leaderless Shards no worker reports "
		"leading.\n# TYPE vectron_pd_shards_leaderless gauge\n"
		"vectron_pd_shards_leaderless %u\n"
		"# HELP vectron_pd_shards_under_replicated Shards with fewer "
		"voters than their replication factor.\n"
		"# TYPE vectron_pd_shards_under_replicated gauge\n"
		"vectron_pd_shards_under_replicated %u\n"
		"# HELP vectron_pd_reconcile_passes_total Reconciliation passes "
		"run as the leader.\n"
		"# TYPE vectron_pd_reconcile_passes_total counter\n"
		"vectron_pd_reconcile_passes_total %" PRIu64 "\n"
		"# HELP vectron_pd_actions_total Reconciliation actions by kind "
		"and outcome (stale: the shard moved on since the plan).\n"
		"# TYPE vectron_pd_actions_total counter\n",
		g->leader, g->term, g->applied, g->epoch, g->workers[VT_PD_UP],
		g->workers[VT_PD_DRAINING], g->workers[VT_PD_REMOVED],
		g->workers_alive, g->collections, g->shards, g->replicas,
		g->shards_leaderless, g->shards_under_replicated, c->passes);
	int rc = vt_buf_append(out, t, (size_t)n);
	for (int k = 1; !rc && k < VT_PDSVC_ACT_KINDS; k++)
		for (int o = 0; !rc && o < VT_PDSVC_OUTCOMES; o++) {
			n = snprintf(t, sizeof t,
				     "vectron_pd_actions_total{kind=\"%s\","
				     "outcome=\"%s\"} %" PRIu64 "\n",
				     vt_pd_act_name(k), outcome_names[o],
				     c->actions[k][o]);
			rc = vt_buf_append(out, t, (size_t)n);
		}
	return rc;
}
