/* old_layout.c: writes a data directory in the layout `vectron serve` used
 * before it ran the cluster roles (<dir>/collections, lib/coll with local
 * shards), for test_import.py. Usage: vt_old_layout DIR N: collection
 * "legacy" (dim 4, cosine, 3 shards, a keyword index on "group", the old
 * modulo routing) with N points "p<i>", vector (1, i, i % 7, 1) and
 * payload {"i": i, "group": "g<i % 3>"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll/coll.h"
#include "payload/payload.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR N\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[2]);
	vt_db_opts o;
	vt_db_opts_default(&o);
	vt_db *db;
	vt_errmsg e = {{0}};
	if (vt_db_open(argv[1], &o, &db, &e)) {
		fprintf(stderr, "open: %s\n", e.msg);
		return 1;
	}
	vt_coll_config cfg;
	vt_coll_config_default(&cfg, "legacy", 4, VT_METRIC_COSINE);
	cfg.shard_count = 3;
	cfg.routing = VT_COLL_ROUTE_MOD;
	cfg.shard.n_fields = 1;
	snprintf(cfg.shard.fields[0].path, sizeof cfg.shard.fields[0].path,
		 "group");
	cfg.shard.fields[0].type = VT_PAYLOAD_KEYWORD;
	vt_coll *c;
	if (vt_db_create(db, &cfg, &e) || vt_db_get(db, "legacy", &c)) {
		fprintf(stderr, "create: %s\n", e.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char id[32], pl[64];
		float v[4] = {1, (float)i, (float)(i % 7), 1};
		snprintf(id, sizeof id, "p%d", i);
		snprintf(pl, sizeof pl, "{\"i\": %d, \"group\": \"g%d\"}", i,
			 i % 3);
		vt_coll_point p = {id, strlen(id), v, pl, strlen(pl)};
		vt_coll_write_result r;
		if (vt_coll_upsert(c, &p, 1, &r, &e)) {
			fprintf(stderr, "upsert: %s\n", e.msg);
			return 1;
		}
	}
	vt_coll_release(c);
	vt_db_close(db);
	return 0;
}
