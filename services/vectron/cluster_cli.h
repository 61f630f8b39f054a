/* cluster_cli.h: `vectron cluster`: workers, collections, status and
 * draining, asked of the placement driver. */
#ifndef VT_VECTRON_CLUSTER_CLI_H
#define VT_VECTRON_CLUSTER_CLI_H

int vt_cli_cluster(int argc, char **argv);

#endif
