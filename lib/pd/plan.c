/* plan.c: the reconciliation planner (plan.h). Every decision is derived
 * from the metadata and the soft state given, so the same inputs always
 * give the same plan; multi-step changes (add, catch up, promote, remove)
 * are not remembered here but read back from the replica sets. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cmd.h"
#include "pd_int.h"

typedef struct plan {
	const vt_pd_meta *m;
	const vt_pd_plan_in *in;
	uint32_t nw;        /* workers, indexes as in m */
	vt_pd_node *nodes;  /* eligible = live and up (dead ones: removed) */
	uint64_t *load;     /* replicas hosted */
	uint8_t *dead;
	vt_pd_report *rep;  /* sorted by (group, worker) */
	size_t nrep;
	vt_pd_action *out;
	size_t cap, n;
	uint32_t inflight;  /* shards with a move under way */
	int repairs;        /* actions of steps 1 and 2 */
} plan;

const char *vt_pd_act_name(int kind)
{
	static const char *const names[] = {"?",	      "add_replica",
					    "promote",	      "remove_replica",
					    "set_leader",     "elect",
					    "remove_worker"};
	return kind >= 1 && kind <= VT_PD_ACT_REMOVE_WORKER ? names[kind] : "?";
}

/* ---- soft state ------------------------------------------------------------ */

static int rep_cmp(const void *a, const void *b)
{
	const vt_pd_report *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->worker < y->worker ? -1 : x->worker > y->worker;
}

static const vt_pd_report *report(const plan *p, uint64_t group,
				  uint64_t worker)
{
	vt_pd_report key = {.group = group, .worker = worker};
	return bsearch(&key, p->rep, p->nrep, sizeof *p->rep, rep_cmp);
}

static uint64_t last_seen(const vt_pd_plan_in *in, uint64_t worker)
{
	uint64_t t = in->since_ms;
	for (size_t i = 0; i < in->n_beats; i++)
		if (in->beats[i].worker == worker && in->beats[i].last_ms > t)
			t = in->beats[i].last_ms;
	return t;
}

static void count_load(plan *p)
{
	for (uint32_t c = 0; c < vt_pd_meta_collection_count(p->m); c++) {
		const vt_pd_collection *co = vt_pd_meta_collection(p->m, c);
		for (uint32_t s = 0; s < co->shard_count; s++)
			for (uint32_t r = 0; r < co->shards[s].n_replicas;
			     r++) {
				int32_t i = vt__pd_worker_index(
					p->m, co->shards[s].replicas[r].worker);
				if (i >= 0)
					p->load[i]++;
			}
	}
}

static int setup(plan *p)
{
	size_t nw = p->nw ? p->nw : 1;
	p->nodes = vt_calloc(nw, sizeof *p->nodes);
	p->load = vt_calloc(nw, sizeof *p->load);
	p->dead = vt_calloc(nw, 1);
	p->rep = vt_malloc((p->in->n_reports ? p->in->n_reports : 1) *
			   sizeof *p->rep);
	if (!p->nodes || !p->load || !p->dead || !p->rep)
		return VT_ENOMEM;
	/* Beats are scanned per worker: O(workers x beats), both bounded by
	 * VT_PD_MAX_WORKERS and run once per plan. */
	for (uint32_t i = 0; i < p->nw; i++) {
		const vt_pd_worker *w = vt_pd_meta_worker(p->m, i);
		uint64_t seen = last_seen(p->in, w->id);
		p->dead[i] = p->in->now_ms > seen &&
			     p->in->now_ms - seen > p->in->grace_ms;
		p->nodes[i] = (vt_pd_node){
			.id = w->id, .zone = w->zone, .rack = w->rack,
			.capacity = w->capacity, .role = w->role,
			.state = p->dead[i] ? VT_PD_REMOVED : w->state};
	}
	count_load(p);
	p->nrep = p->in->n_reports;
	if (p->nrep)
		memcpy(p->rep, p->in->reports, p->nrep * sizeof *p->rep);
	qsort(p->rep, p->nrep, sizeof *p->rep, rep_cmp);
	return 0;
}

/* ---- replica classification -------------------------------------------- */

/* Index of the replica's worker in m (every replica names a registered
 * worker: apply and restore check it). */
static int32_t widx(const plan *p, const vt_pd_replica *r)
{
	return vt__pd_worker_index(p->m, r->worker);
}

/* Live and up: may keep (or receive) replicas. */
static int healthy(const plan *p, const vt_pd_replica *r)
{
	int32_t i = widx(p, r);
	return i >= 0 && p->nodes[i].state == VT_PD_UP;
}

static int is_transit(const plan *p, const vt_pd_replica *r)
{
	int32_t i = widx(p, r);
	return r->role == VT_PD_NONVOTER && i >= 0 &&
	       p->nodes[i].role == VT_PD_ROLE_NORMAL;
}

static int good_voter(const plan *p, const vt_pd_replica *r)
{
	int32_t i = widx(p, r);
	return r->role == VT_PD_VOTER && healthy(p, r) &&
	       p->nodes[i].role == VT_PD_ROLE_NORMAL;
}

static const char *why_bad(const plan *p, const vt_pd_replica *r)
{
	int32_t i = widx(p, r);
	if (i < 0)
		return "unknown";
	if (p->dead[i])
		return "dead";
	return vt_pd_state_name(vt_pd_meta_worker(p->m, i)->state);
}

/* ---- emitting ---------------------------------------------------------------- */

static int full(const plan *p)
{
	return p->n >= p->cap;
}

static vt_pd_action *emit(plan *p, int kind, const vt_pd_collection *co,
			  const vt_pd_shard *s, uint64_t worker)
{
	vt_pd_action *a = &p->out[p->n++];
	memset(a, 0, sizeof *a);
	a->kind = kind;
	a->worker = worker;
	if (co) {
		snprintf(a->collection, sizeof a->collection, "%s", co->name);
		a->shard = s->index;
		a->group = s->group;
		a->shard_epoch = s->epoch;
	}
	return a;
}

#define REASON(a, ...) snprintf((a)->reason, sizeof (a)->reason, __VA_ARGS__)

/* ---- step 1: one shard ----------------------------------------------------- */

/* A replica in transit: promote once caught up, drop if its worker went. */
static int step_transit(plan *p, const vt_pd_collection *co,
			const vt_pd_shard *s, const vt_pd_replica *r)
{
	if (!healthy(p, r)) {
		vt_pd_action *a = emit(p, VT_PD_ACT_REMOVE_REPLICA, co, s,
				       r->worker);
		REASON(a, "in-transit replica of %s/%u on %s worker %llu",
		       co->name, s->index, why_bad(p, r),
		       (unsigned long long)r->worker);
		return 1;
	}
	const vt_pd_report *rp = report(p, s->group, r->worker);
	if (!rp || !rp->caught_up)
		return 0; /* still catching up: wait */
	vt_pd_action *a = emit(p, VT_PD_ACT_PROMOTE, co, s, r->worker);
	a->role = VT_PD_VOTER;
	REASON(a, "replica of %s/%u on worker %llu caught up: promote",
	       co->name, s->index, (unsigned long long)r->worker);
	return 1;
}

/* Removal preference: a bad voter, then one sharing its zone with another
 * voter, then the highest load per capacity, then the highest id. */
static int worse_voter(const plan *p, const vt_pd_shard *s, int a, int b)
{
	const vt_pd_replica *x = &s->replicas[a], *y = &s->replicas[b];
	int gx = good_voter(p, x), gy = good_voter(p, y);
	if (gx != gy)
		return gy;
	int32_t ix = widx(p, x), iy = widx(p, y);
	int dx = 0, dy = 0;
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *o = &s->replicas[i];
		if (o->role != VT_PD_VOTER || !good_voter(p, o))
			continue;
		int32_t io = widx(p, o);
		dx |= o != x && !strcmp(p->nodes[io].zone, p->nodes[ix].zone);
		dy |= o != y && !strcmp(p->nodes[io].zone, p->nodes[iy].zone);
	}
	if (dx != dy)
		return dx;
	/* Removing the leader costs an election: keep it if we can. */
	if ((x->worker == s->leader) != (y->worker == s->leader))
		return y->worker == s->leader;
	unsigned __int128 lx = (unsigned __int128)p->load[ix] *
			       (p->nodes[iy].capacity ? p->nodes[iy].capacity : 1);
	unsigned __int128 ly = (unsigned __int128)p->load[iy] *
			       (p->nodes[ix].capacity ? p->nodes[ix].capacity : 1);
	if (lx != ly)
		return lx > ly;
	return x->worker > y->worker;
}

static void remove_extra_voter(plan *p, const vt_pd_collection *co,
			       const vt_pd_shard *s, uint32_t nvoters)
{
	int worst = -1;
	for (uint32_t i = 0; i < s->n_replicas; i++)
		if (s->replicas[i].role == VT_PD_VOTER &&
		    (worst < 0 || worse_voter(p, s, (int)i, worst)))
			worst = (int)i;
	const vt_pd_replica *r = &s->replicas[worst];
	vt_pd_action *a = emit(p, VT_PD_ACT_REMOVE_REPLICA, co, s, r->worker);
	if (good_voter(p, r))
		REASON(a, "%s/%u has %u voters for rf %u: remove the one on "
			  "worker %llu",
		       co->name, s->index, nvoters, co->rf,
		       (unsigned long long)r->worker);
	else
		REASON(a, "%s/%u: replaced voter on %s worker %llu",
		       co->name, s->index, why_bad(p, r),
		       (unsigned long long)r->worker);
}

/* Adds a non-voter on the best worker; 0 if there is none. */
static int add_replacement(plan *p, const vt_pd_collection *co,
			   const vt_pd_shard *s, uint32_t good)
{
	vt__pd_pickset have = {.k = 0};
	for (uint32_t i = 0; i < s->n_replicas; i++)
		if (healthy(p, &s->replicas[i]))
			have.n[have.k++] = &p->nodes[widx(p, &s->replicas[i])];
	long w = vt__pd_pick(p->nodes, p->nw, p->load, &have, VT_PD_VOTER,
			     p->in->seed, s->index);
	if (w < 0)
		return 0;
	p->load[w]++;
	vt_pd_action *a = emit(p, VT_PD_ACT_ADD_REPLICA, co, s, p->nodes[w].id);
	a->role = VT_PD_NONVOTER;
	REASON(a, "%s/%u has %u healthy voters for rf %u: add a replica on "
		  "worker %llu",
	       co->name, s->index, good, co->rf,
	       (unsigned long long)p->nodes[w].id);
	return 1;
}

static int remove_lost_search(plan *p, const vt_pd_collection *co,
			      const vt_pd_shard *s)
{
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *r = &s->replicas[i];
		if (r->role != VT_PD_NONVOTER || is_transit(p, r) ||
		    healthy(p, r))
			continue;
		vt_pd_action *a = emit(p, VT_PD_ACT_REMOVE_REPLICA, co, s,
				       r->worker);
		REASON(a, "search replica of %s/%u on %s worker %llu",
		       co->name, s->index, why_bad(p, r),
		       (unsigned long long)r->worker);
		return 1;
	}
	return 0;
}

/* At most one replica change for the shard; returns 1 if it planned one. */
static int step_replicas(plan *p, const vt_pd_collection *co,
			 const vt_pd_shard *s)
{
	uint32_t nvoters = 0, good = 0;
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *r = &s->replicas[i];
		if (is_transit(p, r)) {
			p->inflight++;
			return step_transit(p, co, s, r);
		}
		nvoters += r->role == VT_PD_VOTER;
		good += good_voter(p, r);
	}
	if (nvoters > co->rf && good >= co->rf) {
		p->inflight++;
		remove_extra_voter(p, co, s, nvoters);
		return 1;
	}
	if (good < co->rf)
		return add_replacement(p, co, s, good);
	return remove_lost_search(p, co, s);
}

/* The live voter reporting leadership in the highest term, or NULL. */
static const vt_pd_report *leader_report(const plan *p, const vt_pd_shard *s,
					 int *claimed)
{
	const vt_pd_report *best = NULL;
	*claimed = 0;
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *r = &s->replicas[i];
		const vt_pd_report *rp = report(p, s->group, r->worker);
		if (!rp || !rp->leader)
			continue;
		*claimed = 1;
		if (good_voter(p, r) && rp->term >= s->leader_term &&
		    (!best || rp->term > best->term))
			best = rp;
	}
	return best;
}

static int has_quorum(const plan *p, const vt_pd_shard *s, int *pick)
{
	uint32_t nv = 0, live = 0;
	*pick = -1;
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *r = &s->replicas[i];
		if (r->role != VT_PD_VOTER)
			continue;
		nv++;
		if (!p->dead[widx(p, r)]) {
			live++;
			if (good_voter(p, r) && *pick < 0)
				*pick = (int)i;
		}
	}
	return *pick >= 0 && live * 2 > nv;
}

static int hint_live(const plan *p, const vt_pd_shard *s)
{
	int32_t i = s->leader ? vt__pd_worker_index(p->m, s->leader) : -1;
	return i >= 0 && !p->dead[i];
}

/* The hint follows a report of a newer term; a shard without a live hint
 * and without any claim gets an election. Returns 1 if it planned one. */
static int step_leader(plan *p, const vt_pd_collection *co,
		       const vt_pd_shard *s)
{
	int claimed, at, live = hint_live(p, s);
	const vt_pd_report *rp = leader_report(p, s, &claimed);
	vt_pd_action *a;
	if (rp && rp->worker != s->leader &&
	    (!live || rp->term > s->leader_term)) {
		a = emit(p, VT_PD_ACT_SET_LEADER, co, s, rp->worker);
		a->term = rp->term;
		REASON(a, "%s/%u: worker %llu reports leadership in term %llu",
		       co->name, s->index, (unsigned long long)rp->worker,
		       (unsigned long long)rp->term);
		return 1;
	}
	if (live || claimed || !has_quorum(p, s, &at))
		return 0;
	a = emit(p, VT_PD_ACT_ELECT, co, s, s->replicas[at].worker);
	REASON(a, "%s/%u has no live leader: ask worker %llu to campaign",
	       co->name, s->index, (unsigned long long)s->replicas[at].worker);
	return 1;
}

static void step_shards(plan *p)
{
	for (uint32_t c = 0; c < vt_pd_meta_collection_count(p->m); c++) {
		const vt_pd_collection *co = vt_pd_meta_collection(p->m, c);
		/* One action per shard per plan: each changes its epoch,
		 * and a second one would be planned against the old. */
		for (uint32_t s = 0; s < co->shard_count && !full(p); s++) {
			int did = step_replicas(p, co, &co->shards[s]);
			p->repairs += did;
			if (!did && !full(p))
				p->repairs += step_leader(p, co, &co->shards[s]);
		}
	}
}

/* ---- step 2: dead, empty workers -------------------------------------------- */

static void step_workers(plan *p)
{
	for (uint32_t i = 0; i < p->nw && !full(p); i++) {
		const vt_pd_worker *w = vt_pd_meta_worker(p->m, i);
		if (!p->dead[i] || w->state == VT_PD_REMOVED || p->load[i])
			continue;
		vt_pd_action *a = emit(p, VT_PD_ACT_REMOVE_WORKER, NULL, NULL,
				       w->id);
		REASON(a, "worker %llu unseen for more than %llu ms and hosts "
			  "nothing",
		       (unsigned long long)w->id,
		       (unsigned long long)p->in->grace_ms);
		p->repairs++;
	}
}

/* ---- step 3: rebalancing ----------------------------------------------------- */

static int host_ok(const plan *p, uint32_t i)
{
	return p->nodes[i].state == VT_PD_UP &&
	       p->nodes[i].role == VT_PD_ROLE_NORMAL;
}

/* load[a] / cap[a] < load[b] / cap[b] */
static int lighter(const plan *p, uint32_t a, uint32_t b)
{
	uint64_t ca = p->nodes[a].capacity ? p->nodes[a].capacity : 1;
	uint64_t cb = p->nodes[b].capacity ? p->nodes[b].capacity : 1;
	return (unsigned __int128)p->load[a] * cb <
	       (unsigned __int128)p->load[b] * ca;
}

/* The lightest and heaviest usable hosts; 0 if fewer than two. */
static int extremes(const plan *p, uint32_t *lo, uint32_t *hi)
{
	int n = 0;
	for (uint32_t i = 0; i < p->nw; i++) {
		if (!host_ok(p, i))
			continue;
		if (!n++) {
			*lo = *hi = i;
			continue;
		}
		if (lighter(p, i, *lo))
			*lo = i;
		if (lighter(p, *hi, i))
			*hi = i;
	}
	return n >= 2;
}

/* Moving one replica from hi to lo narrows the gap: (lo+1)/clo < hi/chi. */
static int worth_moving(const plan *p, uint32_t lo, uint32_t hi)
{
	uint64_t clo = p->nodes[lo].capacity ? p->nodes[lo].capacity : 1;
	uint64_t chi = p->nodes[hi].capacity ? p->nodes[hi].capacity : 1;
	return (unsigned __int128)(p->load[lo] + 1) * chi <
	       (unsigned __int128)p->load[hi] * clo;
}

/* Whether the shard can move a voter from hi to lo without losing zone
 * spread; the shard must be settled (rf voters, nothing in transit) and
 * not led from hi: removal spares the leader (remove_extra_voter), so a
 * move off the leader would remove the new replica again. */
static int movable(const plan *p, const vt_pd_collection *co,
		   const vt_pd_shard *s, uint32_t lo, uint32_t hi,
		   int leader_ok)
{
	int on_hi = 0, lo_zone = 0, hi_zone = 0;
	if (!leader_ok && s->leader == p->nodes[hi].id)
		return 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->out[i].group == s->group)
			return 0; /* one action per shard per plan */
	uint32_t nv = 0;
	for (uint32_t i = 0; i < s->n_replicas; i++) {
		const vt_pd_replica *r = &s->replicas[i];
		int32_t w = widx(p, r);
		if (is_transit(p, r) || (uint32_t)w == lo)
			return 0;
		if (r->role != VT_PD_VOTER)
			continue;
		nv++;
		if ((uint32_t)w == hi) {
			on_hi = 1;
			continue;
		}
		lo_zone |= !strcmp(p->nodes[w].zone, p->nodes[lo].zone);
		hi_zone |= !strcmp(p->nodes[w].zone, p->nodes[hi].zone);
	}
	return on_hi && nv == co->rf && (!lo_zone || hi_zone);
}

static void emit_move(plan *p, const vt_pd_collection *co,
		      const vt_pd_shard *sh, uint32_t lo, uint32_t hi)
{
	vt_pd_action *a = emit(p, VT_PD_ACT_ADD_REPLICA, co, sh,
			       p->nodes[lo].id);
	a->role = VT_PD_NONVOTER;
	REASON(a, "rebalance %s/%u: worker %llu holds %llu replicas, worker "
		  "%llu holds %llu",
	       co->name, sh->index, (unsigned long long)p->nodes[hi].id,
	       (unsigned long long)p->load[hi],
	       (unsigned long long)p->nodes[lo].id,
	       (unsigned long long)p->load[lo]);
	p->load[lo]++;
	p->load[hi]--;
}

/* Leadership leaves hi first (to its least loaded good voter), so that the
 * move can follow once the new leader is reported. */
static void emit_handover(plan *p, const vt_pd_collection *co,
			  const vt_pd_shard *sh, uint32_t hi)
{
	int to = -1;
	for (uint32_t i = 0; i < sh->n_replicas; i++) {
		const vt_pd_replica *r = &sh->replicas[i];
		if (r->worker == p->nodes[hi].id || !good_voter(p, r))
			continue;
		if (to < 0 || lighter(p, (uint32_t)widx(p, r),
				      (uint32_t)widx(p, &sh->replicas[to])))
			to = (int)i;
	}
	if (to < 0)
		return;
	vt_pd_action *a = emit(p, VT_PD_ACT_ELECT, co, sh,
			       sh->replicas[to].worker);
	REASON(a, "rebalance %s/%u: move leadership off worker %llu (%llu "
		  "replicas) to worker %llu first",
	       co->name, sh->index, (unsigned long long)p->nodes[hi].id,
	       (unsigned long long)p->load[hi],
	       (unsigned long long)sh->replicas[to].worker);
}

/* Plans one move from hi to lo: a replica of a shard hi does not lead, or
 * else a leadership hand-over that makes one movable. 0 if neither. */
static int move_one(plan *p, uint32_t lo, uint32_t hi)
{
	for (int leader_ok = 0; leader_ok < 2; leader_ok++)
		for (uint32_t c = 0; c < vt_pd_meta_collection_count(p->m);
		     c++) {
			const vt_pd_collection *co =
				vt_pd_meta_collection(p->m, c);
			for (uint32_t s = 0; s < co->shard_count; s++) {
				const vt_pd_shard *sh = &co->shards[s];
				if (!movable(p, co, sh, lo, hi, leader_ok))
					continue;
				if (!leader_ok) {
					emit_move(p, co, sh, lo, hi);
					return 1;
				}
				emit_handover(p, co, sh, hi);
				return 0; /* the move waits for the leader */
			}
		}
	return 0;
}

static void step_rebalance(plan *p)
{
	uint32_t max_moves = p->in->max_moves ? p->in->max_moves : 1;
	uint32_t lo = 0, hi = 0;
	while (!full(p) && p->inflight < max_moves && extremes(p, &lo, &hi) &&
	       worth_moving(p, lo, hi)) {
		size_t before = p->n;
		int moved = move_one(p, lo, hi);
		if (p->n == before)
			break;
		p->inflight++;
		if (!moved)
			break; /* a hand-over: loads did not change */
	}
}

/* ---- step 4: leaders ------------------------------------------------------------ */

/* Spreads leadership: writes and (by default) reads of a shard go to its
 * leader, and new shards elect whoever wins first, so one worker can end
 * up leading every shard of a collection. One ELECT per plan moves one
 * shard's leadership from the worker leading the most shards to a voter
 * of that shard on a worker leading at least two fewer (the margin keeps
 * it from swinging back and forth). */
static void step_leaders(plan *p)
{
	uint64_t *lead = vt_calloc(p->nw ? p->nw : 1, sizeof *lead);
	if (!lead)
		return; /* an optimisation: skipped without memory */
	uint32_t nc = vt_pd_meta_collection_count(p->m);
	for (uint32_t c = 0; c < nc; c++) {
		const vt_pd_collection *co = vt_pd_meta_collection(p->m, c);
		for (uint32_t s = 0; s < co->shard_count; s++)
			if (hint_live(p, &co->shards[s]))
				lead[vt__pd_worker_index(
					p->m, co->shards[s].leader)]++;
	}
	const vt_pd_collection *bco = NULL;
	const vt_pd_shard *bsh = NULL;
	int32_t bfrom = -1, bto = -1;
	for (uint32_t c = 0; c < nc; c++) {
		const vt_pd_collection *co = vt_pd_meta_collection(p->m, c);
		for (uint32_t s = 0; s < co->shard_count; s++) {
			const vt_pd_shard *sh = &co->shards[s];
			if (!hint_live(p, sh))
				continue;
			int32_t from = vt__pd_worker_index(p->m, sh->leader);
			for (uint32_t r = 0; r < sh->n_replicas; r++) {
				const vt_pd_replica *rp = &sh->replicas[r];
				int32_t to = widx(p, rp);
				if (to < 0 || to == from || !good_voter(p, rp) ||
				    lead[from] < lead[to] + 2)
					continue;
				/* the busiest leader first, then the least
				 * busy target */
				if (bfrom < 0 || lead[from] > lead[bfrom] ||
				    (lead[from] == lead[bfrom] &&
				     lead[to] < lead[bto])) {
					bco = co;
					bsh = sh;
					bfrom = from;
					bto = to;
				}
			}
		}
	}
	if (bsh && !full(p)) {
		vt_pd_action *a = emit(p, VT_PD_ACT_ELECT, bco, bsh,
				       p->nodes[bto].id);
		REASON(a, "balance leaders: worker %llu leads %llu shards, "
			  "worker %llu %llu: %s/%u moves",
		       (unsigned long long)p->nodes[bfrom].id,
		       (unsigned long long)lead[bfrom],
		       (unsigned long long)p->nodes[bto].id,
		       (unsigned long long)lead[bto], bco->name, bsh->index);
	}
	vt_free(lead);
}

int vt_pd_plan(const vt_pd_meta *m, const vt_pd_plan_in *in,
	       vt_pd_action *out, size_t out_cap, size_t *n_out,
	       vt_errmsg *err)
{
	plan p = {.m = m, .in = in, .nw = vt_pd_meta_worker_count(m),
		  .out = out, .cap = out_cap};
	if (in->max_actions && in->max_actions < p.cap)
		p.cap = in->max_actions;
	*n_out = 0;
	int rc = setup(&p);
	if (!rc) {
		step_shards(&p);
		step_workers(&p);
		if (!p.repairs)
			step_rebalance(&p);
		if (in->balance_leaders && !p.repairs && !p.n)
			step_leaders(&p);
		*n_out = p.n;
	} else {
		vt_errmsg_set(err, rc, "plan: out of memory");
	}
	vt_free(p.rep);
	vt_free(p.dead);
	vt_free(p.load);
	vt_free(p.nodes);
	return rc;
}

int vt_pd_action_encode(const vt_pd_action *a, vt_buf *out, vt_errmsg *err)
{
	static const int type[] = {0,
				   VT_PD_CMD_ADD_REPLICA,
				   VT_PD_CMD_PROMOTE,
				   VT_PD_CMD_REMOVE_REPLICA,
				   VT_PD_CMD_SET_LEADER,
				   0,
				   VT_PD_CMD_SET_WORKER_STATE};
	if (a->kind < 1 || a->kind > VT_PD_ACT_REMOVE_WORKER || !type[a->kind])
		return vt_errmsg_set(err, VT_EINVAL,
				     "action %s is not a PD log command",
				     vt_pd_act_name(a->kind));
	vt_pd_cmd c = {.type = type[a->kind], .worker = a->worker,
		       .name = a->collection,
		       .name_len = (uint32_t)strlen(a->collection),
		       .shard = a->shard, .expect_epoch = a->shard_epoch,
		       .role = a->role, .term = a->term};
	if (a->kind == VT_PD_ACT_REMOVE_WORKER)
		c.state = VT_PD_REMOVED;
	return vt_pd_cmd_encode(&c, out, err);
}
