/* test_server.c: the vt.test.Echo service on 127.0.0.1 for the interop
 * tests (interop_py.py, interop_node.js). Prints "PORT <n>" once listening;
 * SIGTERM or SIGINT shuts it down gracefully. Usage: grpc_test_server [port]. */
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "echo_service.h"

static vt_grpc_server *srv;
static uv_signal_t sig_term, sig_int;

static void on_done(void *ud)
{
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	if (srv)
		vt_grpc_server_close(srv, 2000, on_done, NULL);
	srv = NULL;
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	vt_grpc_server_opts o;
	vt_grpc_server_opts_default(&o);
	o.max_recv_msg = 1u << 20; /* so the tests can pass it cheaply */
	vt_errmsg err;
	if (vt_grpc_server_new(loop, &o, &srv) ||
	    vt_test_echo_register(srv, loop) ||
	    vt_grpc_server_listen(srv, "127.0.0.1",
				  argc > 1 ? atoi(argv[1]) : 0, &err)) {
		fprintf(stderr, "grpc_test_server: %s\n", err.msg);
		return 1;
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	printf("PORT %d\n", vt_grpc_server_port(srv));
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return vt_alloc_bytes() == 0 ? 0 : 2;
}
