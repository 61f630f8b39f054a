# vt_json: the strict JSON reader and writer for the REST API (docs/json.md).
add_library(vt_json STATIC ${CMAKE_CURRENT_LIST_DIR}/json.c ${CMAKE_CURRENT_LIST_DIR}/json_write.c)
target_include_directories(vt_json PUBLIC ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(vt_json PUBLIC vt_base ${MATH_LIB})
