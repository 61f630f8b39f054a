/* config.c: the settings table of `vectron serve` (config.h). */
#include "config.h"

#include <string.h>

#include "settings.h"

#define S(n, e, d, h) VT_SET_S(vt_serve_config, n, e, d, h)
#define I(n, e, k, d, lo, hi, h) VT_SET_N(vt_serve_config, n, e, k, d, lo, hi, h)
#define INT VT_SET_INT
#define LONG VT_SET_LONG

/* The servers' settings, shared by serve and gateway. */
#define SERVER_SETTINGS \
	S(host, "VECTRON_HOST", "127.0.0.1",\
	  "address both servers listen on (0.0.0.0: every interface)"), \
	I(rest_port, "VECTRON_REST_PORT", INT, "8080", 0, 65535,\
	  "REST (HTTP/1.1 + JSON) port; 0 picks a free one"), \
	I(grpc_port, "VECTRON_GRPC_PORT", INT, "8081", 0, 65535,\
	  "gRPC (HTTP/2) port; 0 picks a free one"), \
	I(threads, "VECTRON_THREADS", INT, "0", 0, 1024,\
	  "worker threads for requests and shard fan-out; 0 = CPUs"), \
	I(request_spin_us, "VECTRON_REQUEST_SPIN_US", INT, "50", 0, 10000,\
	  "an idle request worker polls its queue this long before sleeping"), \
	I(loop_spin_us, "VECTRON_LOOP_SPIN_US", INT, "100", 0, 10000,\
	  "with one request in flight, the loop polls this long before sleeping"), \
	I(shards, "VECTRON_SHARDS", INT, "0", 0, 256,\
	  "shards of a new collection that does not say; 0 = CPUs"), \
	I(timeout_ms, "VECTRON_TIMEOUT_MS", INT, "30000", 1, 3600000,\
	  "deadline of a request that sets none"), \
	I(max_body_bytes, "VECTRON_MAX_BODY_BYTES", LONG, "33554432", 1024,\
	  1ll << 31, "largest REST body; larger gets 413"), \
	I(max_message_bytes, "VECTRON_MAX_MESSAGE_BYTES", LONG, "16777216",\
	  1024, 1ll << 31,\
	  "largest gRPC message; larger gets RESOURCE_EXHAUSTED"), \
	S(log_level, "VECTRON_LOG_LEVEL", "info", "debug, info, warn, error"), \
	S(cors_origin, "VECTRON_CORS_ORIGIN", "*",\
	  "Access-Control-Allow-Origin for the console; empty disables CORS"), \
	I(shutdown_grace_ms, "VECTRON_SHUTDOWN_GRACE_MS", INT, "10000", 0,\
	  600000, "on SIGTERM, how long in-flight requests may finish"), \
	/* end */

static const vt_setting table[] = {
	S(data_dir, "VECTRON_DATA_DIR", "./data",
	  "directory of the data (collections, shards)"),
	I(raft_port, "VECTRON_RAFT_PORT", INT, "0", 0, 65535,
	  "Raft port of the shards' and the metadata's groups, on loopback; "
	  "0 picks a free one: fine while each group has one voter"),
	I(internal_port, "VECTRON_INTERNAL_PORT", INT, "0", 0, 65535,
	  "port of the internal gRPC services (placement driver, worker) on "
	  "127.0.0.1, for `vectron cluster --pd 127.0.0.1:PORT`; 0 picks a "
	  "free one (the log names it)"),
	I(snapshot_entries, "VECTRON_SNAPSHOT_ENTRIES", LONG, "20000", 0,
	  1ll << 40, "index changes between a shard's index snapshots"),
	I(queue_max, "VECTRON_QUEUE_MAX", LONG, "100000", 1, 1ll << 40,
	  "async index: changes waiting before writes wait (then 429)"),
	I(queue_wait_ms, "VECTRON_QUEUE_WAIT_MS", INT, "1000", 0, 600000,
	  "async index: how long a write waits for room"),
	SERVER_SETTINGS
};

static const vt_setting gw_table[] = {
	S(pd, "VECTRON_GATEWAY_PD", "127.0.0.1:7000",
	  "placement driver gRPC addresses, comma-separated (any node: "
	  "followers name the leader)"),
	I(replication_factor, "VECTRON_GATEWAY_REPLICATION_FACTOR", INT, "1",
	  1, 7, "voters per shard of a collection created here"),
	I(search_replicas, "VECTRON_GATEWAY_SEARCH_REPLICAS", INT, "0", 0, 8,
	  "extra non-voting replicas per shard, on search-only workers"),
	I(rpc_timeout_ms, "VECTRON_GATEWAY_RPC_TIMEOUT_MS", INT, "10000", 1,
	  600000, "deadline of one call to a worker or the placement driver"),
	I(retry_ms, "VECTRON_GATEWAY_RETRY_MS", INT, "15000", 0, 600000,
	  "how long an operation retries while leaders change or a worker is "
	  "down"),
	I(routing_ttl_ms, "VECTRON_GATEWAY_ROUTING_TTL_MS", INT, "30000", 0,
	  86400000, "a cached collection routing is read again after this"),
	I(prefer_search_only, "VECTRON_GATEWAY_PREFER_SEARCH_ONLY", INT, "0",
	  0, 1, "1: eventual reads go to search-only replicas first"),
	I(fanout_threads, "VECTRON_GATEWAY_FANOUT_THREADS", INT, "32", 2, 1024,
	  "threads that wait on shard calls (a search uses one per shard)"),
	SERVER_SETTINGS
};

static const vt_settings settings = {
	"serve",
	"Runs the whole database in one process: the placement driver, a worker\n"
	"and the gateway (REST and gRPC on the ports below), data in data_dir.",
	"VECTRON_CONFIG", table, sizeof table / sizeof table[0]};

void vt_serve_config_print(const vt_serve_config *c, FILE *out)
{
	vt_settings_print(&settings, c, out);
}

int vt_serve_config_load(vt_serve_config *c, int argc, char **argv)
{
	memset(c, 0, sizeof *c);
	return vt_settings_load(&settings, c, argc, argv);
}

static const vt_settings gw_settings = {
	"gateway",
	"Serves the public API (REST and gRPC on the ports below) over a "
	"cluster:\ncollections live on workers found through the placement "
	"driver (pd).",
	"VECTRON_CONFIG", gw_table, sizeof gw_table / sizeof gw_table[0]};

int vt_gateway_config_load(vt_serve_config *c, int argc, char **argv)
{
	memset(c, 0, sizeof *c);
	return vt_settings_load(&gw_settings, c, argc, argv);
}
