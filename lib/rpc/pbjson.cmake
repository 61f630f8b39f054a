# vt_pbjson: protobuf-c messages <-> JSON for the REST API (pbjson.h).
add_library(vt_pbjson STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pbjson.c)
target_include_directories(vt_pbjson PUBLIC ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(vt_pbjson PUBLIC vt_json vt_base ${PROTOBUF_C_LIB})
