/* import.h: moves the collections of an earlier `vectron serve` layout
 * (<data_dir>/collections, one lib/coll database with local shards) into
 * the cluster roles serve runs now, through the same API path a client's
 * upserts take. docs/serve.md, "Data directory". */
#ifndef VT_VECTRON_IMPORT_H
#define VT_VECTRON_IMPORT_H

#include "base/error.h"
#include "coll/coll.h"

/* 1 if data_dir holds the earlier layout. */
int vt_import_needed(const char *data_dir);

/* Copies every collection of <data_dir>/collections into `to` (a remote
 * database, lib/coll over lib/gateway): creates it with the same config
 * (key-range routing), then scrolls the old shards in pages and upserts
 * them, logging progress; a collection `to` already has (an import cut
 * short) is filled again, upserts being idempotent. When every count
 * matches, renames <data_dir>/collections to
 * <data_dir>/collections.imported (kept for the operator to delete).
 * Nothing old is changed on error. Blocks; not on the loop thread.
 * VT_E* with the reason. */
int vt_import_run(const char *data_dir, vt_db *to, vt_errmsg *err);

#endif
