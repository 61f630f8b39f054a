# vt_grpc: gRPC server and client over HTTP/2 (nghttp2) on libuv, messages
# with protobuf-c. See lib/rpc/grpc.h and docs/grpc.md.
find_package(PkgConfig REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
find_library(PROTOBUF_C_LIB protobuf-c REQUIRED)
add_library(vt_grpc STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/grpc_common.c
  ${CMAKE_CURRENT_SOURCE_DIR}/grpc_server.c
  ${CMAKE_CURRENT_SOURCE_DIR}/grpc_client.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rpcc.c)
target_include_directories(vt_grpc PUBLIC ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(vt_grpc PUBLIC vt_base PkgConfig::NGHTTP2 PkgConfig::LIBUV
                      ${PROTOBUF_C_LIB})
