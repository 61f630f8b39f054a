/* main.c: the `vectron` command. Today it runs the engine demo; the
 * server (`vectron serve`) and admin commands arrive with the RPC issue.
 * Thin by design: parsing and wiring only, the work lives in lib/. */
#include <stdio.h>
#include <string.h>

#include "demo.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vectron <command> [options]\n"
		"\n"
		"commands:\n"
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
