# Uplink (issue 5): libcurl on the loop (curl_uv), batches, spool and POST to
# the collector (uplink), the daemon wiring (agent_run), and their tests.
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)

target_sources(netpulse_agent_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/curl_uv.c
    ${CMAKE_CURRENT_LIST_DIR}/uplink.c
    ${CMAKE_CURRENT_LIST_DIR}/agent_run.c)
target_link_libraries(netpulse_agent_core PUBLIC PkgConfig::LIBCURL)
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/agent_run.c APPEND PROPERTY
             COMPILE_DEFINITIONS NP_AGENT_VERSION="${PROJECT_VERSION}")

find_package(Python3 COMPONENTS Interpreter)
set(NP_UPLINK_IT ${PROJECT_SOURCE_DIR}/tests/integration/uplink)

# curl_uv against a real HTTP/1.1 server and real sockets on loopback.
add_executable(test_curl_uv ${PROJECT_SOURCE_DIR}/tests/unit/test_curl_uv.c)
target_include_directories(test_curl_uv PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(test_curl_uv PRIVATE netpulse_agent_core)
add_test(NAME integration.curl_uv
         COMMAND ${Python3_EXECUTABLE} ${NP_UPLINK_IT}/test_curl_uv.py $<TARGET_FILE:test_curl_uv>)
set_tests_properties(integration.curl_uv PROPERTIES LABELS integration TIMEOUT 60)

# Agent -> collector end to end: the real agent polling a real snmpd, the real
# collector (TLS), each scenario its own test (see test_uplink.py).
foreach(scenario basic outage agentkill overflow)
    add_test(NAME integration.uplink.${scenario}
             COMMAND ${Python3_EXECUTABLE} ${NP_UPLINK_IT}/test_uplink.py
                     $<TARGET_FILE:netpulse-agent> $<TARGET_FILE:netpulse-collector>
                     $<TARGET_FILE:netpulse> ${scenario})
    set_tests_properties(integration.uplink.${scenario} PROPERTIES LABELS integration TIMEOUT 120)
endforeach()
