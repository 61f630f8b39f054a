# vt_http: the HTTP/1.1 server (http.c: libuv transport; http_parse.c: the
# socket-free protocol core). llhttp is compiled from the sources Debian's
# node-llhttp package ships; it is never copied into this tree.
find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp NO_DEFAULT_PATH REQUIRED)
find_path(LLHTTP_SRC_DIR llhttp.c PATHS /usr/share/llhttp NO_DEFAULT_PATH REQUIRED)
find_library(LIBUV_LIB uv REQUIRED)

add_library(vt_llhttp STATIC ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c ${LLHTTP_SRC_DIR}/http.c)
# Generated third-party code is not ours to warn about.
target_compile_options(vt_llhttp PRIVATE -w)
target_include_directories(vt_llhttp PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(vt_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)

add_library(vt_http STATIC ${CMAKE_CURRENT_LIST_DIR}/http.c ${CMAKE_CURRENT_LIST_DIR}/http_parse.c)
target_include_directories(vt_http PUBLIC ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(vt_http PUBLIC vt_base ${LIBUV_LIB} PRIVATE vt_llhttp)
