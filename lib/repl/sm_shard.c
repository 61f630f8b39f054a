/* sm_shard.c: the default state machine of a lib/repl group (sm.h): a
 * lib/shard shard, owned or borrowed (a one-replica group whose snapshots
 * carry only the applied index). Not the raft adapter (fsm.c). */
#include "repl/repl_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"

#define MOD "repl"

_Static_assert(sizeof(vt_shard_result) <= VT_REPL_RESULT_SIZE,
	       "vt_shard_result must fit in vt_repl_result");

void vt_repl_result_shard(const vt_repl_result *res, vt_shard_result *out)
{
	memcpy(out, res->bytes, sizeof *out);
}

static int shard_apply(void *sm, uint64_t index, const void *cmd, size_t len,
		       vt_repl_result *res, vt_errmsg *err)
{
	vt__repl_shard_sm *s = sm;
	vt_shard_result sr = {0};
	int rc = vt_shard_apply(s->shard, index, cmd, len, &sr, err);
	memcpy(res->bytes, &sr, sizeof sr);
	return rc;
}

static uint64_t shard_applied(void *sm)
{
	vt__repl_shard_sm *s = sm;
	uint64_t applied = 0, indexed = 0;
	if (s->shard)
		vt_shard_progress(s->shard, &applied, &indexed);
	return applied;
}

static int shard_snapshot(void *sm, vt_repl_snap_write write, void *ud,
			  uint64_t *index, vt_errmsg *err)
{
	vt__repl_shard_sm *s = sm;
	if (s->borrowed) {
		/* One replica: the store is the state and SYNC_FULL made it
		 * durable; the snapshot only records where it stands. */
		*index = shard_applied(s);
		int rc = write(ud, index, 8);
		return rc ? vt_errmsg_set(err, rc, "out of memory") : 0;
	}
	/* vt_shard_snapshot syncs the store before copying it (docs/shard.md
	 * §6), so raft may then drop the log the copy covers. */
	return vt_shard_snapshot(s->shard, write, ud, index, err);
}

typedef struct snap_src {
	const char *p;
	size_t left;
} snap_src;

static int snap_read(void *ud, void *buf, size_t cap, size_t *n)
{
	snap_src *s = ud;
	size_t k = s->left < cap ? s->left : cap;
	memcpy(buf, s->p, k);
	s->p += k;
	s->left -= k;
	*n = k;
	return 0;
}

/* A borrowed shard is the group's only replica: a snapshot can only say
 * where it stands, never bring it forward. */
static int borrowed_restore(vt__repl_shard_sm *s, const void *bytes,
			    size_t len, vt_errmsg *err)
{
	uint64_t idx = UINT64_MAX, applied = shard_applied(s);
	if (len == 8)
		memcpy(&idx, bytes, 8);
	if (idx > applied)
		return vt_errmsg_set(err, VT_ECORRUPT, "snapshot at shard "
				     "index %" PRIu64 " but the shard is at %"
				     PRIu64 ": a single-replica group cannot "
				     "install it", idx, applied);
	return 0;
}

static int shard_restore(void *sm, const void *bytes, size_t len,
			 vt_errmsg *err)
{
	vt__repl_shard_sm *s = sm;
	if (s->borrowed)
		return borrowed_restore(s, bytes, len, err);
	snap_src src = {bytes, len};
	/* Readers on other threads finish with the old shard first. */
	pthread_rwlock_wrlock(&s->swap);
	vt_shard_close(s->shard);
	s->shard = NULL;
	int rc = vt_shard_restore(s->dir, snap_read, &src, err);
	/* On failure the old shard is kept (restore checks the whole stream
	 * first): reopen it either way. */
	vt_errmsg oerr = {{0}};
	vt_shard_opts so = s->opts;
	int orc = vt_shard_open(s->dir, &so, &s->shard, &oerr);
	pthread_rwlock_unlock(&s->swap);
	if (orc)
		return vt_errmsg_set(err, VT_EIO, "reopen after restore: %s "
				     "(%s)", oerr.msg, vt_errname(orc));
	if (rc)
		return vt_errmsg_prefix(err, VT_ECORRUPT, "restore (%s)",
					vt_errname(rc));
	return 0;
}

const vt_repl_sm_ops vt__repl_shard_ops = {
	.name = "shard",
	.apply = shard_apply,
	.applied = shard_applied,
	.snapshot = shard_snapshot,
	.restore = shard_restore,
};

int vt__repl_shard_sm_open(const vt_repl_opts *o, vt__repl_shard_sm **out,
			   vt_errmsg *err)
{
	*out = NULL;
	if (!o->dir || strlen(o->dir) >= sizeof ((vt__repl_shard_sm *)0)->dir)
		return vt_errmsg_set(err, VT_EINVAL, "repl: bad directory");
	vt__repl_shard_sm *s = vt_calloc(1, sizeof *s);
	if (!s)
		return vt_errmsg_set(err, VT_ENOMEM, "repl: out of memory");
	snprintf(s->dir, sizeof s->dir, "%s", o->dir);
	s->opts = o->shard;
	s->opts.create = NULL; /* a reopen after restore never creates */
	s->borrowed = o->borrow != NULL;
	int rc = 0;
	if (o->borrow)
		s->shard = o->borrow;
	else
		rc = vt_shard_open(s->dir, &o->shard, &s->shard, err);
	if (rc) {
		vt_free(s);
		return vt_errmsg_prefix(err, rc, "repl");
	}
	pthread_rwlock_init(&s->swap, NULL);
	*out = s;
	return 0;
}

void vt__repl_shard_sm_close(vt__repl_shard_sm *s)
{
	if (!s)
		return;
	if (!s->borrowed)
		vt_shard_close(s->shard);
	pthread_rwlock_destroy(&s->swap);
	vt_free(s);
}
