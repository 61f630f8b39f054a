/* meta.c: a replica's meta file (meta.h). */
#include "meta.h"

#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"

#define META_VERSION 1

int vt_worker_meta_encode(const vt_worker_meta *m, vt_buf *out,
			  vt_errmsg *err)
{
	json_t *peers = json_array();
	for (size_t i = 0; peers && i < m->n_peers; i++)
		if (json_array_append_new(peers,
					  json_pack("{s:I, s:s}", "id",
						    (json_int_t)m->peers[i].id,
						    "addr", m->peers[i].addr)))
			break;
	json_t *cfg = json_stringn(m->config ? m->config : "",
				   m->config ? m->config_len : 0);
	if (!cfg) {
		json_decref(peers);
		return vt_errmsg_set(err, VT_EINVAL, "the collection config is "
				     "not UTF-8 text");
	}
	json_t *o = peers ? json_pack(
		"{s:i, s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:o, s:o}",
		"version", META_VERSION, "collection", m->collection, "shard",
		(json_int_t)m->shard, "group", (json_int_t)m->group, "epoch",
		(json_int_t)m->epoch, "raft_id", (json_int_t)m->raft_id,
		"voter", m->voter, "join", m->join, "peers", peers, "config",
		cfg) : NULL;
	if (!peers)
		json_decref(cfg);
	char *text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
	json_decref(o);
	if (!text)
		return vt_errmsg_set(err, VT_ENOMEM, "out of memory");
	int rc = vt_buf_append(out, text, strlen(text));
	free(text);
	return rc ? vt_errmsg_set(err, rc, "%s", vt_strerror(rc)) : 0;
}

int vt_worker_meta_write(const char *path, const vt_worker_meta *m,
			 vt_errmsg *err)
{
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 30);
	int rc = vt_worker_meta_encode(m, &b, err);
	if (rc) {
		vt_buf_free(&b);
		return vt_errmsg_prefix(err, rc, "%s", path);
	}
	vt_afile f;
	if (!(rc = vt_afile_open(&f, path, err))) {
		if ((rc = vt_afile_write(&f, b.data, b.len))) {
			vt_afile_abort(&f);
			vt_errmsg_set(err, rc, "%s: %s", path, vt_strerror(rc));
		} else {
			rc = vt_afile_commit(&f, err);
		}
	}
	vt_buf_free(&b);
	return rc;
}

int vt_worker_meta_decode(const void *bytes, size_t len, vt_worker_meta *m,
			  vt_errmsg *err)
{
	memset(m, 0, sizeof *m);
	json_error_t je;
	json_t *o = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return vt_errmsg_set(err, VT_ECORRUPT, "%s", je.text);
	int version, voter, join, rc = 0;
	const char *coll, *cfg;
	size_t cfg_len;
	json_int_t shard, group, epoch, raft_id;
	json_t *peers;
	if (json_unpack_ex(o, &je, JSON_STRICT,
			   "{s:i, s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:o, "
			   "s:s%}",
			   "version", &version, "collection", &coll, "shard",
			   &shard, "group", &group, "epoch", &epoch, "raft_id",
			   &raft_id, "voter", &voter, "join", &join, "peers",
			   &peers, "config", &cfg, &cfg_len)) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s", je.text);
		goto out;
	}
	if (version != META_VERSION || strlen(coll) >= sizeof m->collection ||
	    shard < 0 || shard > UINT32_MAX || group <= 0 || raft_id <= 0 ||
	    epoch < 0 || !json_is_array(peers) ||
	    json_array_size(peers) > VT_WORKER_META_PEERS) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "version %d or a value "
				   "out of range", version);
		goto out;
	}
	snprintf(m->collection, sizeof m->collection, "%s", coll);
	m->shard = (uint32_t)shard;
	m->group = (uint64_t)group;
	m->epoch = (uint64_t)epoch;
	m->raft_id = (uint64_t)raft_id;
	m->voter = voter;
	m->join = join;
	size_t i;
	json_t *p;
	json_array_foreach(peers, i, p) {
		json_int_t id;
		const char *addr;
		if (json_unpack_ex(p, &je, JSON_STRICT, "{s:I, s:s}", "id", &id,
				   "addr", &addr) || id <= 0 ||
		    strlen(addr) >= VT_WORKER_META_ADDR) {
			rc = vt_errmsg_set(err, VT_ECORRUPT, "peers[%zu]: bad",
					   i);
			goto out;
		}
		m->peers[i].id = (uint64_t)id;
		snprintf(m->peers[i].addr, VT_WORKER_META_ADDR, "%s", addr);
	}
	m->n_peers = json_array_size(peers);
	m->config = vt_malloc(cfg_len + 1);
	if (!m->config) {
		rc = vt_errmsg_set(err, VT_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(m->config, cfg, cfg_len);
	m->config[cfg_len] = '\0';
	m->config_len = cfg_len;
out:
	json_decref(o);
	return rc;
}

int vt_worker_meta_read(const char *path, vt_worker_meta *m, vt_errmsg *err)
{
	memset(m, 0, sizeof *m);
	FILE *f = fopen(path, "rb");
	if (!f) {
		int rc = errno == ENOENT ? VT_ENOENT : vt_err_from_errno(errno);
		return vt_errmsg_set(err, rc, "%s: %s", path, rc == VT_ENOENT
				     ? "missing" : vt_strerror(rc));
	}
	char buf[1 << 16]; /* a meta file is a few hundred bytes */
	size_t n = fread(buf, 1, sizeof buf, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	if (bad)
		return vt_errmsg_set(err, VT_ECORRUPT, "%s: unreadable or over "
				     "%zu bytes", path, sizeof buf);
	int rc = vt_worker_meta_decode(buf, n, m, err);
	return rc ? vt_errmsg_prefix(err, rc, "%s", path) : 0;
}

void vt_worker_meta_free(vt_worker_meta *m)
{
	vt_free(m->config);
	m->config = NULL;
	m->config_len = 0;
}
