/* repl_int.h: internals shared by the files of lib/repl's adapter: the
 * default state machine over a lib/shard shard (sm_shard.c). Not API. */
#ifndef VT_REPL_INT_H
#define VT_REPL_INT_H

#include <pthread.h>

#include "repl/repl.h"
#include "repl/sm.h"
#include "shard/shard.h"

/* The shard as a state machine: owned (opened from `dir`) or borrowed. */
typedef struct vt__repl_shard_sm {
	vt_shard *shard;   /* NULL only after a failed reopen (restore) */
	/* Readers on other threads (vt_repl_host_shard_get) hold it shared;
	 * a restore, which swaps `shard`, holds it exclusively. */
	pthread_rwlock_t swap;
	int borrowed;      /* the caller owns `shard` (vt_repl_opts.borrow) */
	vt_shard_opts opts; /* how to reopen after a restore (never creates) */
	char dir[4096];
} vt__repl_shard_sm;

/* The ops; sm is a vt__repl_shard_sm. */
extern const vt_repl_sm_ops vt__repl_shard_ops;

/* Opens o->dir with o->shard (or takes o->borrow). *out is freed by
 * vt__repl_shard_sm_close. Errors: those of vt_shard_open, VT_ENOMEM,
 * VT_EINVAL (directory too long). */
int vt__repl_shard_sm_open(const vt_repl_opts *o, vt__repl_shard_sm **out,
			   vt_errmsg *err);

/* The shard state machine of `r`, NULL for a group of another one. */
vt__repl_shard_sm *vt__repl_own(vt_repl *r);

/* Closes an owned shard (not a borrowed one) and frees *s. NULL-safe. */
void vt__repl_shard_sm_close(vt__repl_shard_sm *s);

#endif
