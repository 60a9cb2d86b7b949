# The collector's HTTP side, included from collector/CMakeLists.txt: the h2o
# server, ingest with its journal, the read API and /metrics, and the
# netpulse-collector daemon (main.c).
pkg_check_modules(LIBH2O REQUIRED IMPORTED_TARGET libh2o)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)

# The request pieces the collector parses itself (bearer token, query
# strings, site paths, gzip bodies): pure, so unit tests and fuzz targets link
# it alone.
add_library(netpulse_http_parse STATIC ${CMAKE_CURRENT_LIST_DIR}/http_parse.c)
target_include_directories(netpulse_http_parse PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(netpulse_http_parse PUBLIC netpulse_common PRIVATE ZLIB::ZLIB)

add_executable(test_http_parse ${PROJECT_SOURCE_DIR}/tests/unit/test_http_parse.c)
target_include_directories(test_http_parse PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(test_http_parse PRIVATE netpulse_http_parse ZLIB::ZLIB)
add_test(NAME unit.http_parse COMMAND test_http_parse)
set_tests_properties(unit.http_parse PROPERTIES LABELS "unit;collector;http" TIMEOUT 60)

target_sources(netpulse_collector_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/http_server.c
    ${CMAKE_CURRENT_LIST_DIR}/journal.c
    ${CMAKE_CURRENT_LIST_DIR}/ingest.c
    ${CMAKE_CURRENT_LIST_DIR}/metrics.c
    ${CMAKE_CURRENT_LIST_DIR}/api.c
    ${CMAKE_CURRENT_LIST_DIR}/web_auth.c
    ${CMAKE_CURRENT_LIST_DIR}/web.c
    ${CMAKE_CURRENT_LIST_DIR}/rrd_graph.c)
target_link_libraries(netpulse_collector_core
    PUBLIC PkgConfig::LIBUV netpulse_http_parse
    PRIVATE PkgConfig::LIBH2O OpenSSL::SSL OpenSSL::Crypto ZLIB::ZLIB)

pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd) # sd_listen_fds
add_executable(netpulse-collector ${CMAKE_CURRENT_LIST_DIR}/main.c)
target_link_libraries(netpulse-collector PRIVATE netpulse_collector_core PkgConfig::LIBSYSTEMD)
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
foreach(suite ingest rejects crash order)
    foreach(mode direct rrdcached)
        if(suite STREQUAL "rejects" AND mode STREQUAL "rrdcached")
            continue() # nothing is stored there: one mode is enough
        endif()
        if(suite STREQUAL "order" AND mode STREQUAL "rrdcached")
            continue() # a locked file fails the apply only with librrd directly
        endif()
        add_test(NAME integration.collector_http.${suite}.${mode}
                 COMMAND bash ${NP_HTTP_IT}/run.sh $<TARGET_FILE:netpulse-collector>
                         $<TARGET_FILE:collector_http_make_batch> ${suite} ${mode})
        set_tests_properties(integration.collector_http.${suite}.${mode} PROPERTIES
            LABELS "integration;collector;http" TIMEOUT 90)
    endforeach()
endforeach()

# Outage truth (outage.h) end to end: suspected at once, settled by the backlog.
set(NP_OUTAGE_IT ${PROJECT_SOURCE_DIR}/tests/integration/outage)
add_executable(outage_gen_batch ${NP_OUTAGE_IT}/gen_batch.c)
target_link_libraries(outage_gen_batch PRIVATE netpulse_common)
foreach(scenario link agent)
    add_test(NAME integration.outage.${scenario}
             COMMAND bash ${NP_OUTAGE_IT}/run.sh $<TARGET_FILE:netpulse-collector>
                     $<TARGET_FILE:collector_http_make_batch> $<TARGET_FILE:outage_gen_batch>
                     ${scenario})
    set_tests_properties(integration.outage.${scenario} PROPERTIES
        LABELS "integration;collector;outage" TIMEOUT 90)
endforeach()

# The dashboard (web.h, web_auth.h, rrd_graph.h): static files installed under
# share/netpulse/web, the default [collector] web_root.
include(GNUInstallDirs)
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/collector_config.c APPEND PROPERTY
    COMPILE_DEFINITIONS NP_DEFAULT_WEB_ROOT="${CMAKE_INSTALL_FULL_DATADIR}/netpulse/web")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/dashboards/web DESTINATION ${CMAKE_INSTALL_DATADIR}/netpulse)
include(${PROJECT_SOURCE_DIR}/tests/integration/dashboard/dashboard.cmake OPTIONAL)
include(${PROJECT_SOURCE_DIR}/tests/integration/flows_collector/flows_collector.cmake)
