/* config.h: every setting of `vectron serve` in one table: its default,
 * its environment variable, its flag, and what it does. Sources, later
 * ones winning: defaults, the config file (--config or VECTRON_CONFIG;
 * lines "name = value", '#' comments), the environment, the flags.
 * `vectron serve --help` prints the table. */
#ifndef VT_VECTRON_CONFIG_H
#define VT_VECTRON_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct vt_serve_config {
	char data_dir[1024];
	char host[256];
	int rest_port;
	int grpc_port;
	int raft_port;
	int internal_port;      /* the PD and worker roles' gRPC, loopback */
	int threads;            /* 0 = online CPUs */
	int request_spin_us;    /* reqpool.h: idle workers poll this long */
	int loop_spin_us;       /* reqpool.h: the loop polls this long */
	int shards;             /* default shard_count, 0 = online CPUs */
	int timeout_ms;
	long long max_body_bytes;
	long long max_message_bytes;
	char log_level[16];
	char cors_origin[256];
	long long snapshot_entries;
	long long queue_max;
	int queue_wait_ms;
	int shutdown_grace_ms;
	/* gateway only */
	char pd[1024];          /* PD gRPC addresses, comma-separated */
	int replication_factor; /* voters per shard of a new collection */
	int search_replicas;    /* non-voters per shard on search-only workers */
	int rpc_timeout_ms;
	int retry_ms;
	int routing_ttl_ms;
	int prefer_search_only;
	int fanout_threads;
} vt_serve_config;

/* Fills defaults, then applies file, environment and argv (argv[0] is the
 * subcommand). Returns 0, 1 when --help was printed, or -1 with the reason
 * on stderr. */
int vt_serve_config_load(vt_serve_config *c, int argc, char **argv);

/* The same for `vectron gateway` (its own table: the servers' settings
 * and the cluster's, no data directory). */
int vt_gateway_config_load(vt_serve_config *c, int argc, char **argv);

/* Prints the table with each setting's current value. */
void vt_serve_config_print(const vt_serve_config *c, FILE *out);

#endif
