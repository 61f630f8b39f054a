/* fuzz_worker_meta.c: libFuzzer target for the worker's replica meta file
 * decoder (lib/worker/meta.c), which a worker reads at start from disk it
 * may not trust after a crash or an operator's edit. Any input decodes or
 * is refused with VT_ECORRUPT / VT_ENOMEM and a message; a decoded file
 * re-encodes to a file that decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "worker/meta.h"
#include "fuzz.h"

static int same(const vt_worker_meta *a, const vt_worker_meta *b)
{
	if (strcmp(a->collection, b->collection) || a->shard != b->shard ||
	    a->group != b->group || a->epoch != b->epoch ||
	    a->raft_id != b->raft_id || a->voter != b->voter ||
	    a->join != b->join || a->n_peers != b->n_peers ||
	    a->config_len != b->config_len ||
	    memcmp(a->config, b->config, a->config_len))
		return 0;
	for (size_t i = 0; i < a->n_peers; i++)
		if (a->peers[i].id != b->peers[i].id ||
		    strcmp(a->peers[i].addr, b->peers[i].addr))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	vt_worker_meta m, again;
	vt_errmsg err = {{0}};
	int rc = vt_worker_meta_decode(data, len, &m, &err);
	if (rc) {
		if ((rc != VT_ECORRUPT && rc != VT_ENOMEM) || !err.msg[0])
			abort();
		return 0;
	}
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 24);
	rc = vt_worker_meta_encode(&m, &b, &err);
	/* what decoded is valid UTF-8 (jansson checks): it encodes */
	if (rc && rc != VT_ENOMEM)
		abort();
	if (!rc) {
		if (vt_worker_meta_decode(b.data, b.len, &again, &err) ||
		    !same(&m, &again))
			abort();
		vt_worker_meta_free(&again);
	}
	vt_buf_free(&b);
	vt_worker_meta_free(&m);
	return 0;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_worker_meta m = {.collection = "c1", .shard = 3, .group = 42,
			    .epoch = 7, .raft_id = 2, .voter = 1,
			    .n_peers = 2};
	m.peers[0] = (vt_worker_meta_peer){1, "127.0.0.1:7300"};
	m.peers[1] = (vt_worker_meta_peer){2, "127.0.0.1:7301"};
	m.config = "{\"version\":1,\"name\":\"c1\",\"dim\":4}";
	m.config_len = strlen(m.config);
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 20);
	int rc = vt_worker_meta_encode(&m, &b, NULL);
	if (!rc)
		rc = emit(ud, b.data, b.len);
	vt_buf_reset(&b);
	m.join = 1;
	m.n_peers = 0;
	m.config = "";
	m.config_len = 0;
	if (!rc && !(rc = vt_worker_meta_encode(&m, &b, NULL)))
		rc = emit(ud, b.data, b.len);
	vt_buf_free(&b);
	return rc;
}
