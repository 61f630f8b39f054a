/* main.c: the `vectron` command: the server (`vectron serve`) and the
 * engine demo.
 * Thin by design: parsing and wiring only, the work lives in lib/. */
#include <stdio.h>
#include <string.h>

#include "cluster_cli.h"
#include "demo.h"
#include "pd.h"
#include "serve.h"
#include "worker.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vectron <command> [options]\n"
		"\n"
		"commands:\n"
		"  serve     run the database: REST on 8080, gRPC on 8081, data in\n"
		"            ./data (vectron serve --help lists every setting)\n"
		"  pd        run a placement driver node (vectron pd --help)\n"
		"  worker    host shard replicas for a cluster (vectron worker --help)\n"
		"  gateway   the public API over a cluster (placement driver +\n"
		"            workers); vectron gateway --help\n"
		"  cluster   ask the placement driver about workers, collections\n"
		"            and shards; drain a worker (vectron cluster --help)\n"
		"  demo      build an HNSW index over Fashion-MNIST and report\n"
		"            recall and queries per second (vectron demo --help)\n"
		"  version   print the version\n"
		"  help      this text\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "serve"))
		return vt_cli_serve(argc - 1, argv + 1);
	if (!strcmp(cmd, "pd"))
		return vt_cli_pd(argc - 1, argv + 1);
	if (!strcmp(cmd, "gateway"))
		return vt_cli_gateway(argc - 1, argv + 1);
	if (!strcmp(cmd, "cluster"))
		return vt_cli_cluster(argc - 1, argv + 1);
	if (!strcmp(cmd, "worker"))
		return vt_cli_worker(argc - 1, argv + 1);
	if (!strcmp(cmd, "demo"))
		return vt_cli_demo(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("vectron %s\n", VT_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "vectron: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
