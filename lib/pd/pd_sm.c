/* pd_sm.c: vt_pd_meta behind lib/repl's state-machine vtable (pd_sm.h). */
#include "pd/pd_sm.h"

#include <string.h>

#include "base/buf.h"

_Static_assert(sizeof(vt_pd_result) <= VT_REPL_RESULT_SIZE,
	       "vt_pd_result must fit in vt_repl_result");

void vt_pd_sm_result(const vt_repl_result *res, vt_pd_result *out)
{
	memcpy(out, res->bytes, sizeof *out);
}

static int pd_apply(void *sm, uint64_t index, const void *cmd, size_t len,
		    vt_repl_result *res, vt_errmsg *err)
{
	vt_pd_result pr;
	memset(&pr, 0, sizeof pr);
	int rc = vt_pd_apply(sm, index, cmd, len, &pr, err);
	memcpy(res->bytes, &pr, sizeof pr);
	return rc;
}

static uint64_t pd_applied(void *sm) { return vt_pd_meta_applied(sm); }

/* The metadata lives in memory only: the snapshot is the whole of it. */
static int pd_snapshot(void *sm, vt_repl_snap_write write, void *ud,
		       uint64_t *index, vt_errmsg *err)
{
	vt_buf b;
	vt_buf_init(&b, VT_PD_SM_SNAP_MAX);
	*index = vt_pd_meta_applied(sm);
	int rc = vt_pd_snapshot(sm, &b);
	if (rc) {
		vt_buf_free(&b);
		return vt_errmsg_set(err, rc, "pd: snapshot at %llu: %s",
				     (unsigned long long)*index,
				     vt_strerror(rc));
	}
	rc = write(ud, b.data, b.len);
	vt_buf_free(&b);
	return rc ? vt_errmsg_set(err, rc, "pd: snapshot: %s", vt_strerror(rc))
		  : 0;
}

static int pd_restore(void *sm, const void *bytes, size_t len, vt_errmsg *err)
{
	if (len > VT_PD_SM_SNAP_MAX)
		return vt_errmsg_set(err, VT_ELIMIT, "pd: snapshot of %zu bytes "
				     "exceeds %u", len, VT_PD_SM_SNAP_MAX);
	return vt_pd_restore(sm, bytes, len, err);
}

static const vt_repl_sm_ops pd_ops = {
	.name = "pd",
	.apply = pd_apply,
	.applied = pd_applied,
	.snapshot = pd_snapshot,
	.restore = pd_restore,
};

const vt_repl_sm_ops *vt_pd_sm_ops(void) { return &pd_ops; }
