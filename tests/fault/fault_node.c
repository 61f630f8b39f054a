/* fault_node.c: one process of the multi-process replication tests
 * (tests/fault/test_replication.py). It hosts one replica of each of
 * `--shards` Raft groups on a lib/repl host (the same code `vectron serve`
 * writes through) and takes commands on stdin, one per line, each with a
 * tag the answer repeats; commands run on their own threads, so several
 * writes can be in flight when the test kills the process:
 *
 *   T write SHARD PREFIX N   upsert N points "PREFIX_i" (vectors derived
 *                            from the id) -> "T ok INDEX" | "T err CODE MSG"
 *   T status                 -> "T ok {json}": per shard role, term,
 *                            leader, indexes, points, digest, snapshots
 *   T has SHARD PREFIX N     -> "T ok K": how many of "PREFIX_0".. this
 *                            replica holds (with the right vector)
 *   T read SHARD PREFIX N    as has, after confirming leadership (a
 *                            linearizable read; "not leader" elsewhere)
 *   T add SHARD ID ADDR voter|standby, T promote SHARD ID,
 *   T remove SHARD ID, T transfer SHARD ID   membership (on the leader)
 *   T destroy SHARD          close this replica and delete its files
 *   T drop ADDRESS 0|1       cut / restore traffic with that process
 *   T quit                   close every group, exit 0
 *
 * The digest is order-independent (a sum of per-point hashes of id and
 * vector), so two replicas holding the same points agree. */
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "repl/host.h"
#include "shard/cmd.h"
#include "store/store.h"

#define MAX_PEERS 7
#define MAX_SHARDS 16

static struct {
	unsigned id, shards, dim, map_mb;
	int join;                 /* 1: a new replica, added by the leader */
	const char *dir;
	char bind[128];
	vt_repl_peer peers[MAX_PEERS];
	char peer_addr[MAX_PEERS][128];
	size_t n_peers;
	vt_repl_host_opts ho;
} opt;

static vt_repl_host *host;
static vt_repl_hgroup *groups[MAX_SHARDS];
static vt_shard_config cfg;
static vt_shard_opts sopts;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int running;

static void reply(const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply(const char *tag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&out_mu);
	printf("%s ", tag);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
	va_end(ap);
}

static void vector_of(const char *id, size_t len, float *v)
{
	uint64_t x = XXH64(id, len, 7) | 1;
	for (unsigned i = 0; i < opt.dim; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v[i] = (float)((double)(x >> 11) / (double)(1ull << 53)) * 2 - 1;
	}
}

static void cmd_write(const char *tag, unsigned shard, const char *prefix,
		      unsigned n)
{
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 30);
	float v[4096];
	int rc = shard < opt.shards ? vt_cmd_enc_begin(&b, VT_CMD_UPSERT, 0,
						      opt.dim) : VT_EINVAL;
	for (unsigned i = 0; !rc && i < n; i++) {
		char id[160];
		int il = snprintf(id, sizeof id, "%s_%u", prefix, i);
		vector_of(id, (size_t)il, v);
		rc = vt_cmd_enc_upsert(&b, id, (size_t)il, v, opt.dim, NULL, 0);
	}
	if (!rc)
		rc = vt_cmd_enc_end(&b, n);
	vt_shard_result res;
	vt_errmsg err = {{0}};
	if (!rc)
		rc = vt_repl_host_apply(host, groups[shard], b.data, b.len,
					&res, &err);
	vt_buf_free(&b);
	if (rc)
		reply(tag, "err %s %s", vt_errname(rc),
		      err.msg[0] ? err.msg : vt_strerror(rc));
	else
		reply(tag, "ok %" PRIu64, res.index);
}

struct status {
	vt_buf *out;
	unsigned shard;
};


/* The shard's points as an order-independent digest (on the host thread:
 * the shard handle is valid there). */
static int digest(vt_shard *s, uint64_t *sum, uint64_t *count)
{
	uint64_t from = 0;
	*sum = *count = 0;
	do {
		vt_shard_results r = {0};
		vt_errmsg err = {{0}};
		int rc = vt_shard_scroll(s, from, 10000, NULL, 0, 1, &r, &from,
					 &err);
		for (size_t i = 0; !rc && i < r.n; i++) {
			XXH64_state_t *st = XXH64_createState();
			XXH64_reset(st, 0);
			XXH64_update(st, r.hits[i].id, r.hits[i].id_len);
			XXH64_update(st, r.hits[i].vec, opt.dim * sizeof(float));
			*sum += XXH64_digest(st);
			XXH64_freeState(st);
			++*count;
		}
		vt_shard_results_free(&r);
		if (rc)
			return rc;
	} while (from);
	return 0;
}

static int status_of(vt_repl *r, struct raft *raft, void *ud)
{
	struct status *st = ud;
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(raft, &lid, &laddr);
	vt_repl_stats rs;
	vt_repl_stats_get(r, &rs);
	uint64_t applied = 0, indexed = 0, sum = 0, count = 0;
	vt_shard *s = vt_repl_shard(r);
	int rc = s ? digest(s, &sum, &count) : VT_ESHUTDOWN;
	vt_shard_status ss = {0};
	if (s) {
		vt_shard_progress(s, &applied, &indexed);
		vt_shard_status_get(s, &ss);
	}
	char line[800];
	int n = snprintf(line, sizeof line,
		"%s{\"shard\":%u,\"state\":\"%s\",\"term\":%llu,"
		"\"leader\":%llu,\"ready\":%d,\"commit\":%llu,"
		"\"last_applied\":%llu,\"applied\":%" PRIu64 ","
		"\"points\":%" PRIu64 ",\"digest\":\"%016" PRIx64 "\","
		"\"indexed\":%" PRIu64 ",\"index_points\":%" PRIu64 ","
		"\"snapshots\":%" PRIu64 ",\"restores\":%" PRIu64
		",\"error\":%d}",
		st->shard ? "," : "", st->shard, vt_repl_state_name(raft_state(raft)),
		(unsigned long long)raft->current_term,
		(unsigned long long)lid, vt_repl_ready(r),
		(unsigned long long)raft->commit_index,
		(unsigned long long)raft_last_applied(raft), applied, count,
		sum, indexed, ss.index_points, rs.snapshots, rs.restores, rc);
	return vt_buf_append(st->out, line, (size_t)n);
}

static void cmd_status(const char *tag)
{
	vt_buf b;
	vt_buf_init(&b, (size_t)1 << 20);
	char head[200];
	int n = snprintf(head, sizeof head, "{\"id\":%u,\"shards\":[", opt.id);
	int rc = vt_buf_append(&b, head, (size_t)n);
	for (unsigned i = 0; !rc && i < opt.shards; i++) {
		struct status st = {&b, i};
		if (groups[i])
			rc = vt_repl_host_call(host, groups[i], status_of, &st);
		else
			rc = vt_buf_append(&b, i ? ",null" : "null", i ? 5 : 4);
	}
	if (!rc)
		rc = vt_buf_append(&b, "]}", 3);
	if (rc)
		reply(tag, "err %s status", vt_errname(rc));
	else
		reply(tag, "ok %s", (const char *)b.data);
	vt_buf_free(&b);
}

struct has {
	const char *prefix;
	unsigned n, found;
};

static int has_in(vt_shard *s, struct has *h)
{
	float v[4096];
	for (unsigned i = 0; s && i < h->n; i++) {
		char id[160];
		int il = snprintf(id, sizeof id, "%s_%u", h->prefix, i);
		const char *ids[1] = {id};
		uint32_t lens[1] = {(uint32_t)il};
		vt_shard_results res = {0};
		vt_errmsg err = {{0}};
		vector_of(id, (size_t)il, v);
		if (!vt_shard_get(s, ids, lens, 1, 0, 1, &res, &err) &&
		    res.n == 1 &&
		    !memcmp(res.hits[0].vec, v, opt.dim * sizeof(float)))
			h->found++;
		vt_shard_results_free(&res);
	}
	return s ? 0 : VT_ESHUTDOWN;
}

static int has_of(vt_repl *r, struct raft *raft, void *ud)
{
	(void)raft;
	return has_in(vt_repl_shard(r), ud);
}

static void cmd_has(const char *tag, unsigned shard, const char *prefix,
		    unsigned n, int linearizable)
{
	struct has h = {prefix, n, 0};
	vt_errmsg err = {{0}};
	int rc;
	if (linearizable) {
		rc = vt_repl_host_read(host, groups[shard], has_of, &h, &err);
	} else {
		/* on this thread, as a worker's request threads read */
		vt_shard *s = vt_repl_host_shard_get(groups[shard]);
		rc = has_in(s, &h);
		if (s)
			vt_repl_host_shard_put(groups[shard]);
	}
	if (rc)
		reply(tag, "err %s %s", vt_errname(rc), err.msg);
	else
		reply(tag, "ok %u", h.found);
}

static void cmd_change(const char *tag, unsigned shard, int kind,
		       unsigned id, const char *addr, const char *role)
{
	vt_errmsg err = {{0}};
	int r = role && !strcmp(role, "standby") ? RAFT_STANDBY : RAFT_VOTER;
	int rc = vt_repl_host_change(host, groups[shard], kind, id, addr, r,
				     &err);
	if (rc)
		reply(tag, "err %s %s", vt_errname(rc), err.msg);
	else
		reply(tag, "ok");
}

static void cmd_destroy(const char *tag, unsigned shard)
{
	vt_errmsg err = {{0}};
	vt_repl_hgroup *g = groups[shard];
	groups[shard] = NULL;
	int rc = vt_repl_host_destroy(host, g, &err);
	if (rc)
		reply(tag, "err %s %s", vt_errname(rc), err.msg);
	else
		reply(tag, "ok");
}

struct job {
	char line[512];
};

static void dispatch(const char *tag, const char *verb, unsigned shard,
		     const char *a, const char *b, const char *c)
{
	if (!strcmp(verb, "write"))
		cmd_write(tag, shard, a, (unsigned)atoi(b));
	else if (!strcmp(verb, "has") || !strcmp(verb, "read"))
		cmd_has(tag, shard, a, (unsigned)atoi(b), verb[0] == 'r');
	else if (!strcmp(verb, "add"))
		cmd_change(tag, shard, VT_REPL_CHANGE_ADD, (unsigned)atoi(a), b,
			   c);
	else if (!strcmp(verb, "promote"))
		cmd_change(tag, shard, VT_REPL_CHANGE_PROMOTE, (unsigned)atoi(a),
			   NULL, NULL);
	else if (!strcmp(verb, "remove"))
		cmd_change(tag, shard, VT_REPL_CHANGE_REMOVE, (unsigned)atoi(a),
			   NULL, NULL);
	else if (!strcmp(verb, "transfer"))
		cmd_change(tag, shard, VT_REPL_CHANGE_TRANSFER,
			   (unsigned)atoi(a), NULL, NULL);
	else if (!strcmp(verb, "destroy"))
		cmd_destroy(tag, shard);
	else
		reply(tag, "err EINVAL bad command");
}

static void *run_job(void *arg)
{
	struct job *j = arg;
	char tag[64] = "?", verb[32] = "", x[32] = "", a[160] = "",
	     b[160] = "", c[32] = "";
	int n = sscanf(j->line, "%63s %31s %31s %159s %159s %31s", tag, verb,
		       x, a, b, c);
	unsigned shard = 0;
	if (n >= 2 && !strcmp(verb, "status"))
		cmd_status(tag);
	else if (n >= 4 && !strcmp(verb, "drop")) {
		int rc = vt_repl_host_drop_peer(host, x, atoi(a));
		if (rc)
			reply(tag, "err %s drop", vt_errname(rc));
		else
			reply(tag, "ok");
	} else if (n >= 3 && sscanf(x, "%u", &shard) == 1 &&
		   shard < opt.shards && groups[shard])
		dispatch(tag, verb, shard, a, b, c);
	else
		reply(tag, "err EINVAL bad command or shard");
	vt_free(j);
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static int parse_peers(char *s)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		unsigned id;
		char addr[128];
		if (opt.n_peers == MAX_PEERS ||
		    sscanf(tok, "%u=%127s", &id, addr) != 2 || !id)
			return -1;
		snprintf(opt.peer_addr[opt.n_peers], 128, "%s", addr);
		opt.peers[opt.n_peers] = (vt_repl_peer){
			id, opt.peer_addr[opt.n_peers], 1};
		if (id == opt.id)
			snprintf(opt.bind, sizeof opt.bind, "%s", addr);
		opt.n_peers++;
	}
	return 0;
}

static int parse_args(int argc, char **argv)
{
	vt_repl_host_opts_default(&opt.ho);
	opt.shards = 2;
	opt.dim = 8;
	char *peers = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--id")) opt.id = (unsigned)atoi(v);
		else if (!strcmp(k, "--dir")) opt.dir = v;
		else if (!strcmp(k, "--peers")) peers = argv[i + 1];
		else if (!strcmp(k, "--shards")) opt.shards = (unsigned)atoi(v);
		else if (!strcmp(k, "--dim")) opt.dim = (unsigned)atoi(v);
		else if (!strcmp(k, "--election-ms")) opt.ho.tune.election_timeout_ms = (unsigned)atoi(v);
		else if (!strcmp(k, "--heartbeat-ms")) opt.ho.tune.heartbeat_timeout_ms = (unsigned)atoi(v);
		else if (!strcmp(k, "--snapshot-threshold")) opt.ho.tune.snapshot_threshold = (unsigned)atoi(v);
		else if (!strcmp(k, "--snapshot-trailing")) opt.ho.tune.snapshot_trailing = (unsigned)atoi(v);
		else if (!strcmp(k, "--join")) opt.join = atoi(v);
		else if (!strcmp(k, "--map-mb")) opt.map_mb = (unsigned)atoi(v);
		else if (!strcmp(k, "--install-snapshot-ms")) opt.ho.install_snapshot_ms = (unsigned)atoi(v);
		else return -1;
	}
	if (!opt.id || !opt.dir || !peers || parse_peers(peers) ||
	    !opt.bind[0] || !opt.shards || opt.shards > MAX_SHARDS ||
	    !opt.dim || opt.dim > 4096)
		return -1;
	opt.ho.bind = opt.bind;
	return 0;
}

static int open_groups(vt_errmsg *err)
{
	vt_shard_config_default(&cfg, opt.dim, VT_METRIC_IP);
	vt_shard_opts_default(&sopts);
	sopts.create = &cfg;
	/* The raft log is durable and replayed: the store need not fsync
	 * each commit (docs/shard.md §4, "What replication changes"). */
	sopts.store_sync = VT_STORE_SYNC_META;
	sopts.index_threads = 1;
	if (opt.map_mb) /* a small store: "disk full" on this replica */
		sopts.map_max = (size_t)opt.map_mb << 20;
	for (unsigned i = 0; i < opt.shards; i++) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/shard-%u", opt.dir, i);
		mkdir(dir, 0755);
		vt_repl_group_spec spec = {.group_id = i + 1, .self = opt.id,
					   .dir = dir, .peers = opt.peers,
					   .n_peers = opt.n_peers,
					   .join = opt.join,
					   .shard_opts = &sopts};
		int rc = vt_repl_host_attach(host, &spec, &groups[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv)) {
		fprintf(stderr, "usage: fault_node --id N --dir D --peers "
			"1=ip:port,2=ip:port,... [--shards S] [--dim D] "
			"[--election-ms] [--heartbeat-ms] "
			"[--snapshot-threshold] [--snapshot-trailing] "
			"[--install-snapshot-ms] [--map-mb] [--join 1]\n");
		return 2;
	}
	mkdir(opt.dir, 0755);
	vt_errmsg err = {{0}};
	int rc = vt_repl_host_open(&opt.ho, &host, &err);
	if (!rc)
		rc = open_groups(&err);
	if (rc) {
		fprintf(stderr, "fault_node %u: %s\n", opt.id, err.msg);
		return 1;
	}
	reply("ready", "%u %s", opt.id, vt_repl_host_address(host));
	char line[512];
	while (fgets(line, sizeof line, stdin)) {
		if (strstr(line, " quit"))
			break;
		struct job *j = vt_calloc(1, sizeof *j);
		if (!j)
			break;
		snprintf(j->line, sizeof j->line, "%s", line);
		atomic_fetch_add(&running, 1);
		pthread_t t;
		if (pthread_create(&t, NULL, run_job, j)) {
			vt_free(j);
			atomic_fetch_sub(&running, 1);
			continue;
		}
		pthread_detach(t);
	}
	while (atomic_load(&running))
		usleep(1000);
	vt_repl_host_close(host);
	for (unsigned i = 0; i < opt.shards; i++)
		if (groups[i])
			vt_repl_host_detach(host, groups[i]);
	vt_repl_host_free(host);
	reply("bye", "%u", opt.id);
	return 0;
}
