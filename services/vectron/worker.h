/* worker.h: `vectron worker`, the daemon that hosts shard replicas for a
 * cluster: registers with the placement driver, heartbeats, attaches and
 * destroys the replicas it is assigned, drives the membership of the
 * groups it leads, and serves vectron.internal.v1.Worker
 * (proto/vectron/internal/v1/cluster.proto). docs/worker.md. */
#ifndef VT_VECTRON_WORKER_H
#define VT_VECTRON_WORKER_H

/* argv[0] is "worker". Returns the process exit code: 0 after a clean
 * stop (SIGTERM/SIGINT) or --help, 1 on a start failure, 2 on bad
 * settings. */
int vt_cli_worker(int argc, char **argv);

#endif
