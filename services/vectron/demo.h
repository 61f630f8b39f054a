/* demo.h: `vectron demo`, the engine demo (index build + recall/QPS sweep
 * on Fashion-MNIST). Not a benchmark: bench/ measures against hnswlib. */
#ifndef VT_CLI_DEMO_H
#define VT_CLI_DEMO_H

/* Runs the demo with argv[0] == "demo". Returns a process exit code. */
int vt_cli_demo(int argc, char **argv);

#endif
