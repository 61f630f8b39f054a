# vt_repl_transport: one TCP port per process for every Raft group
# (transport.c; docs/repl-transport.md). Included from lib/repl/CMakeLists.txt.
find_library(RAFT_LIB raft REQUIRED)
find_library(LIBUV_LIB uv REQUIRED)
add_library(vt_repl_transport STATIC ${CMAKE_CURRENT_LIST_DIR}/transport.c)
target_include_directories(vt_repl_transport PUBLIC ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(vt_repl_transport PUBLIC vt_base ${RAFT_LIB} ${LIBUV_LIB})

# vt_repl_host: many groups on a thread of their own (host.c, host.h).
add_library(vt_repl_host STATIC ${CMAKE_CURRENT_LIST_DIR}/host.c)
target_link_libraries(vt_repl_host PUBLIC vt_repl vt_repl_transport)
