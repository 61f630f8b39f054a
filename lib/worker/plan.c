/* plan.c: the worker's pure decisions (plan.h). */
#include "plan.h"

#include <stdio.h>
#include <string.h>

#include <raft.h>

static int has(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

void vt_worker_diff(const uint64_t *hosted, size_t n_hosted,
		    const uint64_t *assigned, size_t n_assigned,
		    size_t *attach, size_t *n_attach, size_t *destroy,
		    size_t *n_destroy)
{
	*n_attach = *n_destroy = 0;
	for (size_t i = 0; i < n_assigned; i++)
		if (assigned[i] && !has(hosted, n_hosted, assigned[i]) &&
		    !has(assigned, i, assigned[i]))
			attach[(*n_attach)++] = i;
	for (size_t i = 0; i < n_hosted; i++)
		if (hosted[i] && !has(assigned, n_assigned, hosted[i]))
			destroy[(*n_destroy)++] = i;
}

static const vt_worker_want *want_of(const vt_worker_want *w, size_t n,
				     uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].id == id)
			return &w[i];
	return NULL;
}

static const vt_worker_member *member_of(const vt_worker_member *c, size_t n,
					 uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].id == id)
			return &c[i];
	return NULL;
}

static int set(vt_worker_change *out, int kind, uint64_t id,
	       const char *addr, const char *why)
{
	*out = (vt_worker_change){kind, id, addr, why};
	return kind;
}

int vt_worker_next_change(const vt_worker_member *conf, size_t n_conf,
			  uint64_t self, const vt_worker_want *want,
			  size_t n_want, vt_worker_change *out)
{
	set(out, VT_WORKER_NONE, 0, NULL, "configuration as wanted");
	if (!n_want)
		return VT_WORKER_NONE;
	/* Grow first: every wanted replica in, as a standby. */
	for (size_t i = 0; i < n_want; i++)
		if (want[i].id && !member_of(conf, n_conf, want[i].id))
			return set(out, VT_WORKER_ADD, want[i].id,
				   want[i].raft_addr,
				   want[i].voter ? "wanted voter missing (added "
						   "as a standby, promoted "
						   "later)"
						 : "wanted non-voter missing");
	/* Then the voters the PD wants. */
	for (size_t i = 0; i < n_want; i++) {
		const vt_worker_member *m = member_of(conf, n_conf, want[i].id);
		if (want[i].voter && m && m->role != RAFT_VOTER)
			return set(out, VT_WORKER_PROMOTE, m->id, NULL,
				   "wanted as a voter");
	}
	/* A spare wanted as a non-voter: an add whose second step failed. */
	for (size_t i = 0; i < n_conf; i++) {
		const vt_worker_want *w = want_of(want, n_want, conf[i].id);
		if (w && !w->voter && conf[i].role == RAFT_SPARE &&
		    conf[i].id != self)
			return set(out, VT_WORKER_REMOVE, conf[i].id, NULL,
				   "spare wanted as a standby: removed, added "
				   "again next round");
	}
	/* Shrink: the unwanted, and voters wanted as non-voters. */
	int self_must_go = 0;
	for (size_t i = 0; i < n_conf; i++) {
		const vt_worker_want *w = want_of(want, n_want, conf[i].id);
		int go = !w || (!w->voter && conf[i].role == RAFT_VOTER);
		if (!go)
			continue;
		if (conf[i].id == self) {
			self_must_go = 1;
			continue;
		}
		return set(out, VT_WORKER_REMOVE, conf[i].id, NULL,
			   w ? "voter wanted as a non-voter (no demotion: "
			       "removed, added back as a standby)"
			     : "not wanted in the group");
	}
	if (self_must_go) {
		for (size_t i = 0; i < n_conf; i++) {
			const vt_worker_want *w =
				want_of(want, n_want, conf[i].id);
			if (conf[i].id != self && conf[i].role == RAFT_VOTER &&
			    w && w->voter)
				return set(out, VT_WORKER_TRANSFER, conf[i].id,
					   NULL, "the leader itself must go: "
						 "transfer first");
		}
		set(out, VT_WORKER_NONE, 0, NULL,
		    "the leader must go but no wanted voter can take over yet");
	}
	return VT_WORKER_NONE;
}

int vt_worker_version_check(uint32_t version, vt_errmsg *err)
{
	if (version == VT_WORKER_PROTOCOL)
		return 0;
	return vt_errmsg_set(err, VT_EVERSION,
			     "protocol version %u, this node speaks %u",
			     version, VT_WORKER_PROTOCOL);
}

int vt_worker_epoch_check(uint64_t req, uint64_t replica, vt_errmsg *err)
{
	if (req >= replica)
		return 0;
	return vt_errmsg_set(err, VT_EBUSY,
			     "stale shard epoch: request %llu, replica %llu",
			     (unsigned long long)req,
			     (unsigned long long)replica);
}

#define NOT_LEADER "not the leader; leader: "

int vt_worker_not_leader(const char *addr, vt_errmsg *err)
{
	return vt_errmsg_set(err, VT_EBUSY, NOT_LEADER "%s",
			     addr && *addr ? addr : "unknown");
}

int vt_worker_leader_parse(const char *msg, char *addr, size_t cap)
{
	size_t n = strlen(NOT_LEADER);
	if (!msg || strncmp(msg, NOT_LEADER, n))
		return -1;
	const char *a = msg + n;
	if (!strcmp(a, "unknown") || !*a)
		return 0;
	size_t len = strcspn(a, " ");
	if (len + 1 > cap)
		return -1;
	memcpy(addr, a, len);
	addr[len] = '\0';
	return 1;
}
