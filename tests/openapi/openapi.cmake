# openapi.cmake: test_openapi checks docs/openapi.yaml against the REST route
# table (services/vectron/rest.c), both ways. Included from tests/unit.
vt_add_test(test_openapi
  SOURCES ${CMAKE_SOURCE_DIR}/tests/openapi/test_openapi.c
          ${CMAKE_SOURCE_DIR}/services/vectron/rest.c
  LIBS vt_base)
target_include_directories(test_openapi PRIVATE ${CMAKE_SOURCE_DIR}/services/vectron)
target_compile_definitions(test_openapi PRIVATE
  VT_OPENAPI_YAML="${CMAKE_SOURCE_DIR}/docs/openapi.yaml")
