/* echo_service.h: the vt.test.Echo service on a vt_grpc_server, shared by
 * test_grpc.c and the interop test server. Not production code. */
#ifndef VT_TESTS_ECHO_SERVICE_H
#define VT_TESTS_ECHO_SERVICE_H

#include "rpc/grpc.h"
#include "echo.pb-c.h"

/* Registers /vt.test.Echo/Say, /vt.test.Echo/Stream and /vt.test.Echo/Raw
 * (raw bytes echoed back). */
int vt_test_echo_register(vt_grpc_server *s, uv_loop_t *loop);

/* Number of handler contexts still alive (0 once every call is done). */
extern int vt_test_echo_live;

#endif
