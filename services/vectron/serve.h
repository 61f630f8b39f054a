/* serve.h: `vectron serve`, the whole database in one process: the
 * collections of a data directory (lib/coll) behind the API (lib/api),
 * served over REST (lib/rpc http + pbjson) and gRPC (lib/rpc grpc) on one
 * libuv loop, with requests worked on serve's own request workers
 * (reqpool.h), never on libuv's thread pool. */
#ifndef VT_VECTRON_SERVE_H
#define VT_VECTRON_SERVE_H

int vt_cli_serve(int argc, char **argv);

/* `vectron gateway`: the same servers and API over a cluster: the
 * collections live on workers found through the placement driver
 * (lib/gateway), nothing is stored here. */
int vt_cli_gateway(int argc, char **argv);

#endif
