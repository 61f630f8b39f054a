# Tests of lib/rpc's gRPC layer (included from tests/unit/CMakeLists.txt):
# the test-only echo proto, the C unit test, the interop test server, and
# the Python (grpcio) and Node (@grpc/grpc-js) interop tests, labelled
# `interop`.
set(VT_ECHO_GEN ${CMAKE_BINARY_DIR}/gen/tests/grpc)
add_custom_command(
  OUTPUT ${VT_ECHO_GEN}/echo.pb-c.c ${VT_ECHO_GEN}/echo.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${VT_ECHO_GEN}
  COMMAND ${PROTOC_C} --c_out=${VT_ECHO_GEN} -I${CMAKE_SOURCE_DIR}/tests/grpc
          ${CMAKE_SOURCE_DIR}/tests/grpc/echo.proto
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/grpc/echo.proto
  COMMENT "protoc-c echo.proto")
set_source_files_properties(${VT_ECHO_GEN}/echo.pb-c.c PROPERTIES COMPILE_OPTIONS "-w")
add_library(vt_echo_test STATIC ${VT_ECHO_GEN}/echo.pb-c.c
            ${CMAKE_SOURCE_DIR}/tests/grpc/echo_service.c)
target_include_directories(vt_echo_test PUBLIC ${VT_ECHO_GEN} ${CMAKE_SOURCE_DIR}/tests/grpc)
target_link_libraries(vt_echo_test PUBLIC vt_grpc)

vt_add_test(test_grpc SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_grpc.c
            LIBS vt_echo_test vt_grpc TIMEOUT 120)

add_executable(grpc_test_server ${CMAKE_SOURCE_DIR}/tests/grpc/test_server.c)
target_link_libraries(grpc_test_server PRIVATE vt_echo_test)

find_program(VT_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(VT_PROTOC protoc)
if(VT_PYTHON3 AND VT_PROTOC)
  add_test(NAME grpc_interop_py
           COMMAND ${VT_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/grpc/interop_py.py
                   $<TARGET_FILE:grpc_test_server> ${CMAKE_SOURCE_DIR}/tests/grpc/echo.proto)
  set_tests_properties(grpc_interop_py PROPERTIES LABELS interop TIMEOUT 120
                       SKIP_RETURN_CODE 77)
endif()
find_program(VT_NODE node)
find_program(VT_NPM npm)
if(VT_NODE AND VT_NPM)
  add_test(NAME grpc_interop_node
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/grpc/interop_node.sh
                   ${CMAKE_BINARY_DIR}/grpc-node $<TARGET_FILE:grpc_test_server>
                   ${CMAKE_SOURCE_DIR}/tests/grpc)
  set_tests_properties(grpc_interop_node PROPERTIES LABELS interop TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endif()
