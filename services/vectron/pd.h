/* pd.h: `vectron pd`, the placement driver daemon: the cluster metadata
 * (lib/pd) in a Raft group on lib/repl's host, served over the internal
 * gRPC service vectron.internal.v1.PlacementDriver, with the
 * reconciliation loop on the leader. docs/pd.md. */
#ifndef VT_VECTRON_PD_H
#define VT_VECTRON_PD_H

/* Runs the daemon until SIGTERM/SIGINT. argv[0] is "pd". Returns the exit
 * status: 0, 1 (could not start), 2 (bad settings). */
int vt_cli_pd(int argc, char **argv);

#endif
