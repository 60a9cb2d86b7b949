# The collector's HTTP side, included from collector/CMakeLists.txt: the h2o
# server, ingest with its journal, the read API and /metrics, and the
# netpulse-collector daemon (main.c).
pkg_check_modules(LIBH2O REQUIRED IMPORTED_TARGET libh2o)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)

target_sources(netpulse_collector_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/http_server.c
    ${CMAKE_CURRENT_LIST_DIR}/journal.c
    ${CMAKE_CURRENT_LIST_DIR}/ingest.c
    ${CMAKE_CURRENT_LIST_DIR}/metrics.c
    ${CMAKE_CURRENT_LIST_DIR}/api.c)
target_link_libraries(netpulse_collector_core
    PUBLIC PkgConfig::LIBUV
    PRIVATE PkgConfig::LIBH2O OpenSSL::SSL OpenSSL::Crypto ZLIB::ZLIB)

add_executable(netpulse-collector ${CMAKE_CURRENT_LIST_DIR}/main.c)
target_link_libraries(netpulse-collector PRIVATE netpulse_collector_core)
install(TARGETS netpulse-collector RUNTIME DESTINATION sbin)

# ---- integration tests: the real daemon over TLS on loopback ---------------
set(NP_HTTP_IT ${PROJECT_SOURCE_DIR}/tests/integration/collector_http)
add_executable(collector_http_make_batch ${NP_HTTP_IT}/make_batch.c)
target_link_libraries(collector_http_make_batch PRIVATE netpulse_collector_core)

# The journal alone: order, group commit, acknowledgement, replay.
add_executable(collector_http_journal_test ${NP_HTTP_IT}/journal_test.c)
target_include_directories(collector_http_journal_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(collector_http_journal_test PRIVATE netpulse_collector_core)
add_test(NAME integration.collector_http.journal COMMAND collector_http_journal_test)
set_tests_properties(integration.collector_http.journal PROPERTIES
    LABELS "integration;collector;http" TIMEOUT 30)

# suite x RRD mode; each suite starts its own collector (and rrdcached).
foreach(suite ingest rejects crash)
    foreach(mode direct rrdcached)
        if(suite STREQUAL "rejects" AND mode STREQUAL "rrdcached")
            continue() # nothing is stored there: one mode is enough
        endif()
        add_test(NAME integration.collector_http.${suite}.${mode}
                 COMMAND bash ${NP_HTTP_IT}/run.sh $<TARGET_FILE:netpulse-collector>
                         $<TARGET_FILE:collector_http_make_batch> ${suite} ${mode})
        set_tests_properties(integration.collector_http.${suite}.${mode} PROPERTIES
            LABELS "integration;collector;http" TIMEOUT 90)
    endforeach()
endforeach()
