/* fsm.c: the raft_fsm over a state machine (sm.h: a shard by default,
 * sm_shard.c), group-committed proposals and the new-leader barrier.
 * Everything runs on the raft instance's loop thread: no locks. The state
 * machine's own threads (a shard's async indexing) are its business. */
#include "repl/repl.h"
#include "repl/repl_int.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"

/* One command of a batch, waiting for its entry to be applied here. One
 * of the callbacks is set, or neither. */
typedef struct item {
	vt_repl_result_cb cb;
	vt_repl_cb shard_cb;     /* vt_repl_propose's */
	void *ud;
	int done;
} item;

/* One raft_apply: n entries at first..first+n-1, all of term `term`. */
typedef struct batch {
	struct raft_apply req;   /* raft's; its cb fires once, at `first` */
	struct vt_repl *owner;
	struct batch *next;      /* in owner->inflight */
	raft_term term;
	raft_index first;
	unsigned n, n_done;
	int req_done;            /* raft has called req.cb */
	item items[];
} batch;

/* One waiting linearizable read. */
typedef struct read_req {
	vt_repl_read_cb cb;
	void *ud;
} read_req;

typedef struct read_queue {
	read_req *v;
	unsigned n, cap;
} read_queue;

/* The one configuration change (or transfer) a group may run at a time. */
typedef struct change_slot {
	struct raft_change req;
	int busy;
	int then_role;           /* vt_repl_add: role to assign after raft_add */
	raft_id id;
	vt_repl_change_cb cb;
	void *ud;
} change_slot;

typedef struct xfer_slot {
	struct raft_transfer req;
	int busy;                /* raft holds req */
	int waiting;             /* raft is done; the new leader is not known */
	raft_time deadline;
	raft_id id;
	vt_repl_change_cb cb;
	void *ud;
} xfer_slot;

struct vt_repl {
	struct raft_fsm fsm;     /* first: raft hands us &fsm */
	struct raft *raft;
	const vt_repl_sm_ops *ops;
	void *sm;
	vt__repl_shard_sm *own;  /* the default state machine, else NULL */
	vt_repl_opts o;
	char dir[4096];
	/* the batch being filled */
	struct raft_buffer *qbufs;
	item *qitems;
	unsigned qn;
	size_t qbytes;           /* bytes queued (padded entries) */
	batch *inflight;
	/* leadership */
	struct raft_barrier barrier;
	int barrier_busy;
	raft_term barrier_term;  /* term the in-flight barrier was issued in */
	raft_term ready_term;    /* term whose barrier is applied */
	int seen_state;          /* raft state at the last tick (for logs) */
	raft_term seen_term;
	/* linearizable reads: waiting for the next barrier, and sharing the
	 * one in flight (issued in term rb_term) */
	read_queue rwait, rflight;
	struct raft_barrier rb;
	int rb_busy;
	raft_term rb_term;
	change_slot ch;
	xfer_slot xf;
	raft_time heard_at;      /* newest election_timer_start under a leader */
	int heard;
	vt_repl_stats st;
};

#define MOD "repl"

void vt_repl_opts_default(vt_repl_opts *o, const char *dir)
{
	memset(o, 0, sizeof *o);
	o->dir = dir;
	vt_shard_opts_default(&o->shard);
	o->batch_max = 64;
	o->batch_bytes = 8u << 20;
}

static void deliver(item *it, int status, const vt_repl_result *res,
		    const char *msg)
{
	if (it->done)
		return;
	it->done = 1;
	msg = msg ? msg : "";
	/* res is set only when the state machine answered: 0 or a verdict. */
	if (it->cb)
		it->cb(it->ud, status, res, msg);
	if (!it->shard_cb)
		return;
	vt_shard_result sr;
	if (res && !status)
		vt_repl_result_shard(res, &sr);
	it->shard_cb(it->ud, status, res && !status ? &sr : NULL, msg);
}

static void batch_unlink_free(vt_repl *r, batch *b)
{
	for (batch **p = &r->inflight; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	vt_free(b);
}

/* Fails what is still waiting; frees the batch unless raft still holds
 * its request (then req.cb frees it). */
static void batch_fail(vt_repl *r, batch *b, int status, const char *msg)
{
	for (unsigned i = 0; i < b->n; i++)
		if (!b->items[i].done) {
			deliver(&b->items[i], status, NULL, msg);
			b->n_done++;
		}
	if (b->req_done)
		batch_unlink_free(r, b);
}

/* A batch's remaining entries can only be ours while this node leads in
 * the batch's term: once it does not, the indexes may be refilled by
 * another leader, so the callers are told the outcome is unknown. */
static void check_term(vt_repl *r)
{
	int leading = r->raft && raft_state(r->raft) == RAFT_LEADER;
	batch *b = r->inflight;
	while (b) {
		batch *next = b->next;
		if (!leading || b->term != r->raft->current_term)
			batch_fail(r, b, VT_ECANCELED,
				   "leadership lost: outcome unknown");
		b = next;
	}
}

/* ---- raft_fsm -------------------------------------------------------------*/

/* The verdicts of every state machine (sm.h): a shard's (docs/shard.md
 * §3) and the PD's (docs/cluster-metadata.md §3), which adds VT_EEXIST
 * and VT_EBUSY. A state machine that returned one of them without
 * consuming the index is caught by fsm_apply's check. */
int vt_repl_is_rejection(int rc)
{
	return rc == VT_EINVAL || rc == VT_ELIMIT || rc == VT_ENOENT ||
	       rc == VT_EEXIST || rc == VT_EBUSY || rc == VT_ECORRUPT ||
	       rc == VT_EVERSION;
}

/* Entry format: the command, then 1..8 bytes that pad it to a multiple of
 * 8, the last of which holds their count. raft 0.15's AppendEntries
 * encoder writes entry bodies back to back while its decoder steps over
 * each at 8-byte-padded offsets, so an entry of another length shifts
 * every later entry of the same message on the followers (the leader
 * applies its own buffers and does not see it). */
static size_t entry_padded_len(size_t len)
{
	return (len + 8) & ~(size_t)7;
}

/* The command's length inside entry `buf`, SIZE_MAX if malformed. */
static size_t entry_len(const struct raft_buffer *buf)
{
	if (buf->len < 8 || buf->len % 8)
		return SIZE_MAX;
	unsigned pad = ((const unsigned char *)buf->base)[buf->len - 1];
	if (pad < 1 || pad > 8)
		return SIZE_MAX;
	return buf->len - pad;
}

/* Hands the command to the state machine; a full queue (a shard's async
 * index queue: proposers check it first, but others may fill it
 * meanwhile) is waited out, as a committed entry cannot be refused. */
static int sm_apply(vt_repl *r, uint64_t index, const void *cmd, size_t len,
		    vt_repl_result *res, vt_errmsg *err)
{
	int rc, waits = 0;
	while ((rc = r->ops->apply(r->sm, index, cmd, len, res, err)) ==
	       VT_EOVERLOAD)
		if (!waits++)
			VT_LOG(VT_LOG_WARN, MOD, "%s: entry %" PRIu64
			       ": %s queue full, waiting", r->dir,
			       (uint64_t)index, r->ops->name);
	return rc;
}

/* Whether this replica may go on after the state machine's answer `rc`
 * at `index`: 0, or a raft error that stops it. */
static int apply_outcome(vt_repl *r, uint64_t index, int rc,
			 const vt_errmsg *err)
{
	if (!rc)
		return 0;
	if (!vt_repl_is_rejection(rc)) {
		/* Not applied, index not consumed (disk full, I/O error, out
		 * of memory): this replica cannot go on. Raft stops applying;
		 * the operator repairs or rebuilds it from a peer. */
		VT_LOG(VT_LOG_ERROR, MOD,
		       "%s: entry %" PRIu64 " not applied: %s (%s): replica "
		       "stopped",
		       r->dir, index, err->msg, vt_errname(rc));
		return RAFT_IOERR;
	}
	/* The contract: a rejected command still consumes its index. Check
	 * it, as a replica that did not would diverge silently. */
	uint64_t applied = r->ops->applied(r->sm);
	if (applied != index) {
		VT_LOG(VT_LOG_ERROR, MOD,
		       "%s: entry %" PRIu64 " rejected (%s) but the %s is at %"
		       PRIu64 ": replica stopped",
		       r->dir, index, err->msg, r->ops->name, applied);
		return RAFT_IOERR;
	}
	return 0;
}

/* Gives entry `index` (raft's numbering) its result, if this node
 * proposed it. */
static void answer(vt_repl *r, raft_index index, int rc,
		   const vt_repl_result *res, const char *msg)
{
	for (batch *b = r->inflight; b; b = b->next) {
		if (index < b->first || index >= b->first + b->n)
			continue;
		item *it = &b->items[index - b->first];
		if (!it->done) {
			deliver(it, rc, res, msg);
			b->n_done++;
		}
		if (b->n_done == b->n && b->req_done)
			batch_unlink_free(r, b);
		break;
	}
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	vt_repl *r = fsm->data;
	*result = NULL;
	/* 0.15 does not pass the index: replicationApply sets last_applied
	 * to this entry's index only after apply returns (research §1.2). */
	raft_index rindex = raft_last_applied(r->raft) + 1;
	uint64_t index = rindex + r->o.index_base;
	check_term(r);
	size_t len = entry_len(buf);
	if (len == SIZE_MAX) {
		/* Not written by vt_repl_submit, or damaged on the way: the
		 * same entry may read otherwise elsewhere, so stop here. */
		VT_LOG(VT_LOG_ERROR, MOD,
		       "%s: entry %" PRIu64 " of %zu bytes has no valid "
		       "padding trailer: replica stopped",
		       r->dir, index, buf->len);
		return RAFT_CORRUPT;
	}
	vt_repl_result res;
	memset(&res, 0, sizeof res);
	vt_errmsg err = {{0}};
	int rc = sm_apply(r, index, buf->base, len, &res, &err);
	int stop = apply_outcome(r, index, rc, &err);
	if (stop)
		return stop;
	r->st.applied++;
	if (rc) {
		r->st.rejected++;
		VT_LOG(VT_LOG_DEBUG, MOD, "%s: entry %" PRIu64 " rejected: %s",
		       r->dir, index, err.msg);
	}
	answer(r, rindex, rc, &res, err.msg);
	return 0;
}

/* Collects the state machine's snapshot stream into raft buffers of up to
 * 1 MiB. */
typedef struct snap_sink {
	struct raft_buffer *bufs;
	unsigned n, cap;
} snap_sink;

#define SNAP_CHUNK (1u << 20)

static int snap_grow(snap_sink *s)
{
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 8;
		void *nb = raft_realloc(s->bufs, cap * sizeof *s->bufs);
		if (!nb)
			return VT_ENOMEM;
		s->bufs = nb;
		s->cap = cap;
	}
	struct raft_buffer *last = &s->bufs[s->n];
	last->base = raft_malloc(SNAP_CHUNK);
	if (!last->base)
		return VT_ENOMEM;
	last->len = 0;
	s->n++;
	return 0;
}

static int snap_write(void *ud, const void *p, size_t n)
{
	snap_sink *s = ud;
	const char *src = p;
	while (n) {
		if (!s->n || s->bufs[s->n - 1].len == SNAP_CHUNK) {
			int rc = snap_grow(s);
			if (rc)
				return rc;
		}
		struct raft_buffer *last = &s->bufs[s->n - 1];
		size_t k = SNAP_CHUNK - last->len;
		if (k > n)
			k = n;
		memcpy((char *)last->base + last->len, src, k);
		last->len += k;
		src += k;
		n -= k;
	}
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	vt_repl *r = fsm->data;
	snap_sink s = {0};
	vt_errmsg err = {{0}};
	uint64_t idx = 0;
	int rc = r->ops->snapshot(r->sm, snap_write, &s, &idx, &err);
	if (rc) {
		VT_LOG(VT_LOG_ERROR, MOD, "%s: snapshot failed: %s (%s)",
		       r->dir, err.msg, vt_errname(rc));
		for (unsigned i = 0; i < s.n; i++)
			raft_free(s.bufs[i].base);
		raft_free(s.bufs);
		return rc == VT_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
	}
	r->st.snapshots++;
	VT_LOG(VT_LOG_INFO, MOD, "%s: snapshot at %s index %" PRIu64
	       " (raft applied %" PRIu64 "), %u chunk(s)", r->dir,
	       r->ops->name, idx, (uint64_t)raft_last_applied(r->raft), s.n);
	*bufs = s.bufs;
	*n_bufs = s.n;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	vt_repl *r = fsm->data;
	vt_errmsg err = {{0}};
	int rc = r->ops->restore(r->sm, buf->base, buf->len, &err);
	if (rc) {
		/* Raft keeps (and frees) buf on error. */
		VT_LOG(VT_LOG_ERROR, MOD, "%s: snapshot restore failed: %s "
		       "(%s)", r->dir, err.msg, vt_errname(rc));
		if (rc == VT_ENOMEM)
			return RAFT_NOMEM;
		return rc == VT_EIO || rc == VT_ENOSPC ? RAFT_IOERR
						       : RAFT_CORRUPT;
	}
	raft_free(buf->base);
	r->st.restores++;
	VT_LOG(VT_LOG_INFO, MOD, "%s: installed snapshot, %s index %" PRIu64,
	       r->dir, r->ops->name, r->ops->applied(r->sm));
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------*/

static void close_pending(vt_repl *r);

/* The state machine: o's, or the shard (opened, or borrowed). */
static int sm_take(vt_repl *r, const vt_repl_opts *o, vt_errmsg *err)
{
	if (o->sm_ops) {
		if (!o->sm_ops->apply || !o->sm_ops->applied ||
		    !o->sm_ops->snapshot || !o->sm_ops->restore || o->borrow)
			return vt_errmsg_set(err, VT_EINVAL, "repl: state "
					     "machine ops incomplete, or a "
					     "borrowed shard with them");
		r->ops = o->sm_ops;
		r->sm = o->sm;
		return 0;
	}
	int rc = vt__repl_shard_sm_open(o, &r->own, err);
	if (rc)
		return rc;
	r->ops = &vt__repl_shard_ops;
	r->sm = r->own;
	return 0;
}

int vt_repl_open(const vt_repl_opts *o, vt_repl **out, vt_errmsg *err)
{
	*out = NULL;
	if (!o->dir || strlen(o->dir) >= sizeof ((vt_repl *)0)->dir)
		return vt_errmsg_set(err, VT_EINVAL, "repl: bad directory");
	int rc;
	vt_repl *r = vt_calloc(1, sizeof *r);
	if (!r)
		return vt_errmsg_set(err, VT_ENOMEM, "repl: out of memory");
	r->o = *o;
	if (!r->o.batch_max)
		r->o.batch_max = 64;
	snprintf(r->dir, sizeof r->dir, "%s", o->dir);
	r->o.dir = r->dir;
	r->o.shard.create = NULL; /* the caller's; sm_shard.c keeps a copy */
	r->qbufs = vt_calloc(r->o.batch_max, sizeof *r->qbufs);
	r->qitems = vt_calloc(r->o.batch_max, sizeof *r->qitems);
	if (!r->qbufs || !r->qitems) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "repl: out of memory");
		goto err;
	}
	if ((rc = sm_take(r, o, err)))
		goto err;
	r->fsm.version = 1;
	r->fsm.data = r;
	r->fsm.apply = fsm_apply;
	r->fsm.snapshot = fsm_snapshot;
	r->fsm.restore = fsm_restore;
	*out = r;
	return 0;
err:
	vt_free(r->qitems);
	vt_free(r->qbufs);
	vt_free(r);
	return rc;
}

struct raft_fsm *vt_repl_fsm(vt_repl *r) { return &r->fsm; }

void vt_repl_attach(vt_repl *r, struct raft *raft) { r->raft = raft; }

vt_shard *vt_repl_shard(vt_repl *r) { return r->own ? r->own->shard : NULL; }

vt__repl_shard_sm *vt__repl_own(vt_repl *r) { return r->own; }

void *vt_repl_sm(vt_repl *r) { return r->sm; }

void vt_repl_close(vt_repl *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->qn; i++) {
		deliver(&r->qitems[i], VT_ESHUTDOWN, NULL, "group closed");
		raft_free(r->qbufs[i].base);
	}
	while (r->inflight) {
		batch *b = r->inflight;
		b->req_done = 1; /* raft is closed: it holds nothing */
		batch_fail(r, b, VT_ESHUTDOWN, "group closed: outcome unknown");
	}
	close_pending(r);
	vt__repl_shard_sm_close(r->own);
	vt_free(r->qitems);
	vt_free(r->qbufs);
	vt_free(r);
}

/* ---- leadership -----------------------------------------------------------*/

static void barrier_cb(struct raft_barrier *req, int status)
{
	vt_repl *r = req->data;
	r->barrier_busy = 0;
	if (status) {
		VT_LOG(VT_LOG_INFO, MOD, "%s: barrier of term %" PRIu64
		       " failed: %s", r->dir, (uint64_t)r->barrier_term,
		       raft_strerror(status));
		return;
	}
	/* Applied here means committed: an entry of this term is on a
	 * majority, so every earlier entry is committed by the Raft rule and
	 * no leader without them can be elected. */
	if (raft_state(r->raft) == RAFT_LEADER &&
	    r->raft->current_term == r->barrier_term) {
		r->ready_term = r->barrier_term;
		r->st.barriers++;
		VT_LOG(VT_LOG_INFO, MOD, "%s: leader of term %" PRIu64
		       " ready at index %" PRIu64, r->dir,
		       (uint64_t)r->ready_term, (uint64_t)req->index);
	}
}

static void reads_issue(vt_repl *r);
static void heard_sample(vt_repl *r);
static void xfer_poll(vt_repl *r);

const char *vt_repl_state_name(int state)
{
	switch (state) {
	case RAFT_LEADER: return "leader";
	case RAFT_CANDIDATE: return "candidate";
	case RAFT_FOLLOWER: return "follower";
	default: return "unavailable";
	}
}

/* Logs every role or term change this replica sees (0.15 has no callback
 * for them): what an operator reads to follow an election. */
static void log_state(vt_repl *r)
{
	int st = raft_state(r->raft);
	raft_term t = r->raft->current_term;
	if (st == r->seen_state && t == r->seen_term)
		return;
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(r->raft, &lid, &laddr);
	VT_LOG(st == RAFT_UNAVAILABLE ? VT_LOG_ERROR : VT_LOG_INFO, MOD,
	       "%s: %s in term %" PRIu64 " (leader %llu)", r->dir,
	       vt_repl_state_name(st), (uint64_t)t, (unsigned long long)lid);
	r->seen_state = st;
	r->seen_term = t;
}

void vt_repl_tick(vt_repl *r)
{
	if (!r->raft)
		return;
	log_state(r);
	check_term(r);
	heard_sample(r);
	xfer_poll(r);
	reads_issue(r);
	if (raft_state(r->raft) != RAFT_LEADER)
		return;
	raft_term t = r->raft->current_term;
	if (r->ready_term == t || r->barrier_busy)
		return;
	r->barrier.data = r;
	r->barrier_term = t;
	int rc = raft_barrier(r->raft, &r->barrier, barrier_cb);
	if (rc) {
		VT_LOG(VT_LOG_WARN, MOD, "%s: barrier: %s", r->dir,
		       raft_strerror(rc));
		return;
	}
	r->barrier_busy = 1;
}

int vt_repl_ready(vt_repl *r)
{
	return r->raft && raft_state(r->raft) == RAFT_LEADER &&
	       r->ready_term == r->raft->current_term && !r->raft->transfer;
}

/* ---- proposals ------------------------------------------------------------*/

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	batch *b = req->data;
	vt_repl *r = b->owner;
	b->req_done = 1;
	if (status) {
		/* The entries may still commit under another leader. */
		char msg[128];
		snprintf(msg, sizeof msg, "not committed here: %s",
			 raft_strerror(status));
		batch_fail(r, b, status == RAFT_SHUTDOWN ? VT_ESHUTDOWN
							 : VT_ECANCELED, msg);
		return;
	}
	if (b->n_done == b->n)
		batch_unlink_free(r, b);
}

/* Queues one command for the next batch with its waiting item. */
static int enqueue(vt_repl *r, const void *cmd, size_t len, item it)
{
	if (!vt_repl_ready(r))
		return VT_EBUSY;
	/* 8-byte aligned for raft >= 0.16; raft_malloc gives that. The
	 * length is padded too (entry_len). */
	size_t plen = entry_padded_len(len);
	unsigned char *p = raft_malloc(plen);
	if (!p)
		return VT_ENOMEM;
	memcpy(p, cmd, len);
	memset(p + len, 0, plen - len);
	p[plen - 1] = (unsigned char)(plen - len);
	r->qbufs[r->qn].base = p;
	r->qbufs[r->qn].len = plen;
	r->qitems[r->qn] = it;
	r->qbytes += plen;
	if (++r->qn == r->o.batch_max ||
	    (r->o.batch_bytes && r->qbytes >= r->o.batch_bytes))
		vt_repl_flush(r);
	return 0;
}

int vt_repl_submit(vt_repl *r, const void *cmd, size_t len,
		   vt_repl_result_cb cb, void *ud)
{
	return enqueue(r, cmd, len, (item){.cb = cb, .ud = ud});
}

int vt_repl_propose(vt_repl *r, const void *cmd, size_t len, vt_repl_cb cb,
		    void *ud)
{
	if (!r->own)
		return VT_EINVAL;
	return enqueue(r, cmd, len, (item){.shard_cb = cb, .ud = ud});
}

static void flush_proposals(vt_repl *r);

void vt_repl_flush(vt_repl *r)
{
	flush_proposals(r);
	if (r->raft)
		reads_issue(r); /* after the proposals: the barrier follows them */
}

static void flush_proposals(vt_repl *r)
{
	unsigned n = r->qn;
	if (!n)
		return;
	r->qn = 0;
	r->qbytes = 0;
	batch *b = vt_calloc(1, sizeof *b + n * sizeof(item));
	int rc = VT_ENOMEM;
	const char *msg = "out of memory";
	if (b) {
		b->owner = r;
		b->n = n;
		b->term = r->raft->current_term;
		memcpy(b->items, r->qitems, n * sizeof(item));
		b->req.data = b;
		if (!vt_repl_ready(r)) {
			rc = VT_EBUSY;
			msg = "not the leader";
		} else {
			int rrc = raft_apply(r->raft, &b->req, r->qbufs, n,
					     apply_cb);
			if (rrc == 0) {
				b->first = b->req.index;
				b->next = r->inflight;
				r->inflight = b;
				r->st.batches++;
				return;
			}
			msg = raft_strerror(rrc);
			rc = rrc == RAFT_NOTLEADER ? VT_EBUSY : VT_EIO;
			if (rrc != RAFT_NOTLEADER && rrc != RAFT_NOMEM) {
				/* 0.15 may already have taken the buffers
				 * (they were appended, then discarded):
				 * freeing them here could double-free. */
				for (unsigned i = 0; i < n; i++)
					deliver(&b->items[i], rc, NULL, msg);
				vt_free(b);
				return;
			}
		}
	}
	for (unsigned i = 0; i < n; i++) {
		item it = b ? b->items[i] : r->qitems[i];
		deliver(&it, rc, NULL, msg);
		raft_free(r->qbufs[i].base);
	}
	vt_free(b);
}

void vt_repl_stats_get(vt_repl *r, vt_repl_stats *out)
{
	*out = r->st;
	out->ready_term = r->ready_term;
}

/* ---- "not leader" -----------------------------------------------------------*/

int vt_repl_leader(vt_repl *r, raft_id *id, const char **address)
{
	*id = 0;
	*address = NULL;
	if (r->raft)
		raft_leader(r->raft, id, address);
	if (!*id) {
		*address = NULL;
		return VT_ENOENT;
	}
	return 0;
}

int vt_repl_busy_msg(vt_repl *r, vt_errmsg *err)
{
	raft_id id;
	const char *addr;
	if (vt_repl_ready(r)) {
		vt_errmsg_clear(err);
		return 0;
	}
	if (!r->raft)
		return vt_errmsg_set(err, VT_EBUSY, "repl: not started");
	int st = raft_state(r->raft);
	unsigned long long term = r->raft->current_term;
	if (st == RAFT_LEADER && r->raft->transfer)
		return vt_errmsg_set(err, VT_EBUSY, "repl: leadership transfer "
				     "under way: retry at the new leader");
	if (st == RAFT_LEADER)
		return vt_errmsg_set(err, VT_EBUSY, "repl: leader of term %llu "
				     "but its barrier is not committed yet: "
				     "retry shortly", term);
	if (st == RAFT_UNAVAILABLE)
		return vt_errmsg_set(err, VT_EBUSY, "repl: replica halted or "
				     "closed");
	if (vt_repl_leader(r, &id, &addr))
		return vt_errmsg_set(err, VT_EBUSY, "repl: not the leader and "
				     "no leader known (election under way): "
				     "retry");
	return vt_errmsg_set(err, VT_EBUSY, "repl: not the leader: server "
			     "%llu at %s leads term %llu",
			     (unsigned long long)id, addr ? addr : "?", term);
}

/* ---- linearizable reads -----------------------------------------------------*/

static int rq_push(read_queue *q, vt_repl_read_cb cb, void *ud)
{
	if (q->n == q->cap) {
		unsigned cap = q->cap ? q->cap * 2 : 16;
		read_req *v = vt_realloc(q->v, cap * sizeof *v);
		if (!v)
			return VT_ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = (read_req){cb, ud};
	return 0;
}

/* Answers every read of *q with `status`. The queue is detached first:
 * a callback may queue new reads. */
static void rq_answer(vt_repl *r, read_queue *q, int status, const char *msg)
{
	read_queue done = *q;
	*q = (read_queue){0};
	if (!status)
		r->st.reads += done.n;
	for (unsigned i = 0; i < done.n; i++)
		if (done.v[i].cb)
			done.v[i].cb(done.v[i].ud, status, msg);
	vt_free(done.v);
}

int vt_repl_read(vt_repl *r, vt_repl_read_cb cb, void *ud)
{
	if (!vt_repl_ready(r))
		return VT_EBUSY;
	if (r->rwait.n >= VT_REPL_READS_MAX)
		return VT_EOVERLOAD;
	return rq_push(&r->rwait, cb, ud);
}

static void read_barrier_cb(struct raft_barrier *req, int status)
{
	vt_repl *r = req->data;
	r->rb_busy = 0;
	if (status) {
		char msg[128];
		snprintf(msg, sizeof msg, "read barrier failed: %s",
			 raft_strerror(status));
		rq_answer(r, &r->rflight, status == RAFT_SHUTDOWN
						  ? VT_ESHUTDOWN
						  : VT_ECANCELED, msg);
		return;
	}
	/* Applied and still leading the term it was issued in: an entry of
	 * this term reached a majority after the reads were queued, so no
	 * other leader had been elected by then. */
	if (raft_state(r->raft) != RAFT_LEADER ||
	    r->raft->current_term != r->rb_term) {
		rq_answer(r, &r->rflight, VT_ECANCELED,
			  "leadership lost before the read was confirmed");
		return;
	}
	rq_answer(r, &r->rflight, 0, "");
}

/* Issues one barrier for every waiting read, unless one is in flight. */
static void reads_issue(vt_repl *r)
{
	if (r->rb_busy || !r->rwait.n)
		return;
	if (!vt_repl_ready(r)) {
		rq_answer(r, &r->rwait, VT_EBUSY, "not the leader any more");
		return;
	}
	r->rb.data = r;
	int rc = raft_barrier(r->raft, &r->rb, read_barrier_cb);
	if (rc) {
		rq_answer(r, &r->rwait, rc == RAFT_NOTLEADER ? VT_EBUSY
							     : VT_ECANCELED,
			  raft_strerror(rc));
		return;
	}
	r->rb_busy = 1;
	r->rb_term = r->raft->current_term;
	r->rflight = r->rwait;
	r->rwait = (read_queue){0};
	r->st.read_barriers++;
}

/* ---- lag --------------------------------------------------------------------*/

static raft_time now_ms(vt_repl *r)
{
	return r->raft->io->time(r->raft->io);
}

/* election_timer_start is reset by the leader's messages (and by votes and
 * conversions); keep the newest value seen while a leader was known. */
static void heard_sample(vt_repl *r)
{
	struct raft *rf = r->raft;
	if (raft_state(rf) == RAFT_LEADER) {
		r->heard_at = now_ms(r);
		r->heard = 1;
	} else if (raft_state(rf) == RAFT_FOLLOWER &&
		   rf->follower_state.current_leader.id &&
		   (!r->heard || rf->election_timer_start > r->heard_at)) {
		r->heard_at = rf->election_timer_start;
		r->heard = 1;
	}
}

static int own_role(struct raft *rf)
{
	for (unsigned i = 0; i < rf->configuration.n; i++)
		if (rf->configuration.servers[i].id == rf->id)
			return rf->configuration.servers[i].role;
	return -1;
}

int vt_repl_lag(vt_repl *r, vt_repl_lag_info *out)
{
	memset(out, 0, sizeof *out);
	out->since_leader_ms = -1;
	if (!r->raft)
		return VT_EINVAL;
	struct raft *rf = r->raft;
	const char *addr;
	heard_sample(r);
	out->state = raft_state(rf);
	out->role = own_role(rf);
	out->ready = vt_repl_ready(r);
	out->term = rf->current_term;
	vt_repl_leader(r, &out->leader_id, &addr);
	out->last_index = raft_last_index(rf);
	out->commit_index = rf->commit_index;
	out->last_applied = raft_last_applied(rf);
	out->shard_applied = r->ops->applied(r->sm);
	if (out->state == RAFT_LEADER)
		out->since_leader_ms = 0;
	else if (r->heard)
		out->since_leader_ms = (int64_t)(now_ms(r) - r->heard_at);
	return 0;
}

/* ---- group lifecycle --------------------------------------------------------*/

static int vt_of_raft(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return VT_ECANCELED;
	case RAFT_SHUTDOWN:
		return VT_ESHUTDOWN;
	case RAFT_NOCONNECTION:
		return VT_ETIMEDOUT;
	case RAFT_CANTCHANGE:
		return VT_EOVERLOAD;
	case RAFT_BADID:
	case RAFT_NOTFOUND:
		return VT_ENOENT;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return VT_EEXIST;
	case RAFT_BADROLE:
		return VT_EINVAL;
	case RAFT_NOMEM:
		return VT_ENOMEM;
	default:
		return VT_EIO;
	}
}

/* The role of server `id` in the configuration, -1 if not a member. */
static int role_of(struct raft *rf, raft_id id)
{
	for (unsigned i = 0; i < rf->configuration.n; i++)
		if (rf->configuration.servers[i].id == id)
			return rf->configuration.servers[i].role;
	return -1;
}

/* What every change needs: a ready leader with no change pending. */
static int change_check(vt_repl *r, const char *what, vt_errmsg *err)
{
	if (!vt_repl_ready(r)) {
		vt_repl_busy_msg(r, err);
		return vt_errmsg_prefix(err, VT_EBUSY, "%s", what);
	}
	if (r->ch.busy || r->raft->configuration_uncommitted_index)
		return vt_errmsg_set(err, VT_EOVERLOAD, "%s: another "
				     "configuration change is in progress "
				     "(one at a time): retry later", what);
	return 0;
}

static void change_done(vt_repl *r, int rc, const char *msg)
{
	change_slot c = r->ch;
	r->ch.busy = 0;
	if (c.cb)
		c.cb(c.ud, rc, msg);
}

static void change_cb(struct raft_change *req, int status)
{
	vt_repl *r = req->data;
	char msg[192];
	if (!status && r->ch.then_role >= 0) {
		/* vt_repl_add, step 2: from spare to the role asked for. */
		int role = r->ch.then_role;
		r->ch.then_role = -1;
		int rc = raft_assign(r->raft, &r->ch.req, r->ch.id, role,
				     change_cb);
		if (!rc)
			return;
		snprintf(msg, sizeof msg, "server %llu added as a spare, but "
			 "assigning its role failed: %s (promote or remove "
			 "it)", (unsigned long long)r->ch.id,
			 raft_strerror(rc));
		change_done(r, vt_of_raft(rc), msg);
		return;
	}
	if (status)
		snprintf(msg, sizeof msg, "change for server %llu: %s",
			 (unsigned long long)r->ch.id, raft_strerror(status));
	else
		msg[0] = 0;
	change_done(r, vt_of_raft(status), msg);
}

/* Occupies the slot; raft calls are made by the caller. */
static void change_take(vt_repl *r, raft_id id, int then_role,
			vt_repl_change_cb cb, void *ud)
{
	r->ch.busy = 1;
	r->ch.id = id;
	r->ch.then_role = then_role;
	r->ch.cb = cb;
	r->ch.ud = ud;
	r->ch.req.data = r;
}

/* A raft call refused at once: free the slot, report. */
static int change_refused(vt_repl *r, int rc, const char *what,
			  vt_errmsg *err)
{
	r->ch.busy = 0;
	return vt_errmsg_set(err, vt_of_raft(rc), "%s: %s", what,
			     raft_strerror(rc));
}

int vt_repl_add(vt_repl *r, raft_id id, const char *address, int role,
		vt_repl_change_cb cb, void *ud, vt_errmsg *err)
{
	int rc = change_check(r, "repl: add", err);
	if (rc)
		return rc;
	if (!id || !address || !*address ||
	    (role != RAFT_VOTER && role != RAFT_STANDBY))
		return vt_errmsg_set(err, VT_EINVAL, "repl: add: need an id, "
				     "an address and role VOTER or STANDBY");
	if (role_of(r->raft, id) >= 0)
		return vt_errmsg_set(err, VT_EEXIST, "repl: add: server %llu "
				     "is already a member",
				     (unsigned long long)id);
	change_take(r, id, role, cb, ud);
	rc = raft_add(r->raft, &r->ch.req, id, address, change_cb);
	return rc ? change_refused(r, rc, "repl: add", err) : 0;
}

int vt_repl_promote(vt_repl *r, raft_id id, vt_repl_change_cb cb, void *ud,
		    vt_errmsg *err)
{
	int rc = change_check(r, "repl: promote", err);
	if (rc)
		return rc;
	int role = role_of(r->raft, id);
	if (role < 0)
		return vt_errmsg_set(err, VT_ENOENT, "repl: promote: server "
				     "%llu is not a member",
				     (unsigned long long)id);
	if (role == RAFT_VOTER)
		return vt_errmsg_set(err, VT_EEXIST, "repl: promote: server "
				     "%llu is already a voter",
				     (unsigned long long)id);
	change_take(r, id, -1, cb, ud);
	rc = raft_assign(r->raft, &r->ch.req, id, RAFT_VOTER, change_cb);
	return rc ? change_refused(r, rc, "repl: promote", err) : 0;
}

int vt_repl_remove(vt_repl *r, raft_id id, vt_repl_change_cb cb, void *ud,
		   vt_errmsg *err)
{
	int rc = change_check(r, "repl: remove", err);
	if (rc)
		return rc;
	if (role_of(r->raft, id) < 0)
		return vt_errmsg_set(err, VT_ENOENT, "repl: remove: server "
				     "%llu is not a member",
				     (unsigned long long)id);
	if (id == r->raft->id)
		return vt_errmsg_set(err, VT_EINVAL, "repl: remove: server "
				     "%llu is the leader: transfer leadership "
				     "first", (unsigned long long)id);
	change_take(r, id, -1, cb, ud);
	rc = raft_remove(r->raft, &r->ch.req, id, change_cb);
	return rc ? change_refused(r, rc, "repl: remove", err) : 0;
}

/* ---- leadership transfer ----------------------------------------------------*/

static void xfer_done(vt_repl *r, int rc, const char *msg)
{
	xfer_slot x = r->xf;
	r->xf.busy = 0;
	r->xf.waiting = 0;
	if (x.cb)
		x.cb(x.ud, rc, msg);
}

/* Decides once the leader is known (or the wait is over). */
static void xfer_poll(vt_repl *r)
{
	if (!r->xf.waiting)
		return;
	raft_id lid;
	const char *addr;
	char msg[160];
	if (!vt_repl_leader(r, &lid, &addr) && lid != r->raft->id) {
		if (!r->xf.id || lid == r->xf.id) {
			xfer_done(r, 0, "");
			return;
		}
		snprintf(msg, sizeof msg, "transfer: server %llu leads, not "
			 "%llu", (unsigned long long)lid,
			 (unsigned long long)r->xf.id);
		xfer_done(r, VT_ETIMEDOUT, msg);
		return;
	}
	if (lid == r->raft->id || now_ms(r) >= r->xf.deadline) {
		snprintf(msg, sizeof msg, "transfer: not done within the "
			 "election timeout; leader now: %llu",
			 (unsigned long long)lid);
		xfer_done(r, VT_ETIMEDOUT, msg);
	}
}

/* raft's callback: the target leads, or the election timeout passed, or
 * this node stepped down (then it may not know the new leader yet). */
static void xfer_cb(struct raft_transfer *req)
{
	vt_repl *r = req->data;
	r->xf.busy = 0;
	r->xf.waiting = 1;
	r->xf.deadline = now_ms(r) + r->raft->election_timeout;
	xfer_poll(r);
}

int vt_repl_transfer(vt_repl *r, raft_id id, vt_repl_change_cb cb, void *ud,
		     vt_errmsg *err)
{
	if (r->xf.busy || r->xf.waiting)
		return vt_errmsg_set(err, VT_EOVERLOAD, "repl: transfer: one "
				     "is already pending");
	if (!vt_repl_ready(r)) {
		vt_repl_busy_msg(r, err);
		return vt_errmsg_prefix(err, VT_EBUSY, "repl: transfer");
	}
	if (id && role_of(r->raft, id) < 0)
		return vt_errmsg_set(err, VT_ENOENT, "repl: transfer: server "
				     "%llu is not a member",
				     (unsigned long long)id);
	if (id == r->raft->id || (id && role_of(r->raft, id) != RAFT_VOTER))
		return vt_errmsg_set(err, VT_EINVAL, "repl: transfer: server "
				     "%llu is this leader or not a voter",
				     (unsigned long long)id);
	memset(&r->xf, 0, sizeof r->xf);
	r->xf.req.data = r;
	r->xf.id = id;
	r->xf.cb = cb;
	r->xf.ud = ud;
	int rc = raft_transfer(r->raft, &r->xf.req, id, xfer_cb);
	if (rc)
		return vt_errmsg_set(err, vt_of_raft(rc), "repl: transfer: %s",
				     raft_strerror(rc));
	r->xf.busy = 1;
	return 0;
}

/* What vt_repl_close fails: reads, a change, a transfer. */
static void close_pending(vt_repl *r)
{
	rq_answer(r, &r->rwait, VT_ESHUTDOWN, "group closed");
	rq_answer(r, &r->rflight, VT_ESHUTDOWN, "group closed");
	if (r->ch.busy)
		change_done(r, VT_ESHUTDOWN, "group closed: outcome unknown");
	if (r->xf.busy || r->xf.waiting)
		xfer_done(r, VT_ESHUTDOWN, "group closed");
}

/* ---- destroy ----------------------------------------------------------------*/

/* The entries a replica directory may hold (vt_repl_destroy). */
static const char *const replica_entries[] = {
	"store", "index.snap", "index.snap.new", "raft", "raft-index-base",
};

static int is_replica_entry(const char *name)
{
	for (size_t i = 0; i < sizeof replica_entries / sizeof *replica_entries;
	     i++)
		if (!strcmp(name, replica_entries[i]))
			return 1;
	return 0;
}

/* Every entry of `dir` is one a replica holds, and store/data.mdb is a
 * regular file. */
static int replica_check(const char *dir, vt_errmsg *err)
{
	struct stat st;
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode))
		return vt_errmsg_set(err, VT_EINVAL, "repl: destroy: %s is not "
				     "a directory (or is a symlink)", dir);
	char p[4200];
	snprintf(p, sizeof p, "%s/store/data.mdb", dir);
	if (lstat(p, &st) || !S_ISREG(st.st_mode))
		return vt_errmsg_set(err, VT_EINVAL, "repl: destroy: %s has no "
				     "store/data.mdb: not a replica directory",
				     dir);
	DIR *d = opendir(dir);
	if (!d)
		return vt_errmsg_set(err, vt_err_from_errno(errno),
				     "repl: destroy: %s: %s", dir,
				     strerror(errno));
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    !is_replica_entry(e->d_name))
			rc = vt_errmsg_set(err, VT_EINVAL, "repl: destroy: %s "
					   "holds '%s', which a replica does "
					   "not: refusing", dir, e->d_name);
	closedir(d);
	return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? errno : 0;
}

int vt_repl_destroy(const char *dir, vt_errmsg *err)
{
	if (!dir || strlen(dir) >= 4096)
		return vt_errmsg_set(err, VT_EINVAL, "repl: destroy: bad path");
	int rc = replica_check(dir, err);
	if (rc)
		return rc;
	/* Depth first, never following symlinks nor leaving the file
	 * system. */
	int e = nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (e) {
		int en = e > 0 ? e : errno;
		return vt_errmsg_set(err, vt_err_from_errno(en), "repl: destroy "
				     "%s: %s (run it again)", dir,
				     strerror(en));
	}
	VT_LOG(VT_LOG_INFO, MOD, "%s: replica files deleted", dir);
	return 0;
}

/* ---- tuning -----------------------------------------------------------------*/

void vt_repl_tuning_default(vt_repl_tuning *t)
{
	t->election_timeout_ms = 1000;
	t->heartbeat_timeout_ms = 100;
	t->snapshot_threshold = 16384;
	t->snapshot_trailing = 2048;
	t->pre_vote = 1;
}

int vt_repl_tune(struct raft *raft, const vt_repl_tuning *t, vt_errmsg *err)
{
	if (!t->election_timeout_ms || !t->heartbeat_timeout_ms ||
	    t->heartbeat_timeout_ms >= t->election_timeout_ms)
		return vt_errmsg_set(err, VT_EINVAL, "repl: tuning: need 0 < "
				     "heartbeat (%u ms) < election timeout "
				     "(%u ms)", t->heartbeat_timeout_ms,
				     t->election_timeout_ms);
	if (!t->snapshot_threshold)
		return vt_errmsg_set(err, VT_EINVAL, "repl: tuning: snapshot "
				     "threshold must be at least 1 entry");
	raft_set_election_timeout(raft, t->election_timeout_ms);
	raft_set_heartbeat_timeout(raft, t->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(raft, t->snapshot_threshold);
	raft_set_snapshot_trailing(raft, t->snapshot_trailing);
	raft_set_pre_vote(raft, t->pre_vote != 0);
	return 0;
}
