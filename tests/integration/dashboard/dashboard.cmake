# The dashboard end to end (included from collector/http.cmake): a TLS
# collector filled through ingest; access rules, graph parameter injection,
# static path traversal and CSRF over HTTP; then headless Chromium driven by
# playwright-core (npm-installed into the build tree at test time).
set(NP_DASH_IT ${PROJECT_SOURCE_DIR}/tests/integration/dashboard)
foreach(part http browser)
    add_test(NAME integration.dashboard.${part}
             COMMAND python3 ${NP_DASH_IT}/run.py $<TARGET_FILE:netpulse>
                     $<TARGET_FILE:netpulse-collector> $<TARGET_FILE:collector_http_make_batch>
                     ${PROJECT_SOURCE_DIR}/dashboards/web ${CMAKE_BINARY_DIR}/dashboard-artifacts
                     ${part})
    set_tests_properties(integration.dashboard.${part} PROPERTIES
        LABELS "integration;collector;dashboard" TIMEOUT 420
        # librrd is built without frame pointers: full unwinding lets the
        # suppressions see rrd_graph_v in librrd's own leaks.
        ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0;LSAN_OPTIONS=suppressions=${NP_DASH_IT}/lsan.supp:print_suppressions=0")
endforeach()

add_executable(test_web_auth ${PROJECT_SOURCE_DIR}/tests/unit/test_web_auth.c)
add_executable(test_web_graph ${PROJECT_SOURCE_DIR}/tests/unit/test_web_graph.c)
foreach(t web_auth web_graph)
    target_include_directories(test_${t} PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
    target_link_libraries(test_${t} PRIVATE netpulse_collector_core)
    add_test(NAME unit.${t} COMMAND test_${t})
    set_tests_properties(unit.${t} PROPERTIES LABELS "unit;collector;dashboard" TIMEOUT 60)
endforeach()

# The request bodies and small fields of the admin and login routes (api_body.h).
add_executable(test_api_body ${PROJECT_SOURCE_DIR}/tests/unit/test_api_body.c)
target_include_directories(test_api_body PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(test_api_body PRIVATE netpulse_collector_core)
add_test(NAME unit.api_body COMMAND test_api_body)
set_tests_properties(unit.api_body PROPERTIES LABELS "unit;collector;dashboard" TIMEOUT 60)
