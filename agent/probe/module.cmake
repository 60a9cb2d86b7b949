# Uplink probes (issue 5, item 1): icmp, tcp, dns (c-ares) and http (libcurl
# via curl_uv) on the agent's loop, the uplink quorum, and their tests. Only
# dns.c includes ares.h.
pkg_check_modules(LIBCARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)

target_sources(netpulse_agent_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/probe_config.c
    ${CMAKE_CURRENT_LIST_DIR}/probe_logic.c
    ${CMAKE_CURRENT_LIST_DIR}/probe.c
    ${CMAKE_CURRENT_LIST_DIR}/icmp.c
    ${CMAKE_CURRENT_LIST_DIR}/tcp.c
    ${CMAKE_CURRENT_LIST_DIR}/dns.c
    ${CMAKE_CURRENT_LIST_DIR}/http.c)
target_link_libraries(netpulse_agent_core PUBLIC PkgConfig::LIBCARES PkgConfig::LIBCURL)

# Unit test of the pure rules (hysteresis, quorum, statuses, ICMP packets, config).
add_executable(test_probe_logic ${PROJECT_SOURCE_DIR}/tests/unit/test_probe_logic.c)
target_include_directories(test_probe_logic PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(test_probe_logic PRIVATE netpulse_agent_core)
add_test(NAME unit.probe_logic COMMAND test_probe_logic)
set_tests_properties(unit.probe_logic PROPERTIES LABELS unit TIMEOUT 60)

# Test driver: runs the probes of a config for a while, prints JSON lines.
set(NP_PROBE_IT ${PROJECT_SOURCE_DIR}/tests/integration/probe)
add_executable(probe_run ${NP_PROBE_IT}/probe_run.c)
target_link_libraries(probe_run PRIVATE netpulse_agent_core PkgConfig::JANSSON)

# Integration: real targets in network namespaces the tests create (root;
# 77 = skipped without the rights to create them).
find_package(Python3 COMPONENTS Interpreter)
foreach(t icmp tcp dns http)
    add_test(NAME integration.probe_${t}
             COMMAND ${Python3_EXECUTABLE} ${NP_PROBE_IT}/test_probe.py ${t}
                     $<TARGET_FILE:probe_run>)
    set_tests_properties(integration.probe_${t} PROPERTIES LABELS "integration;netns"
                         TIMEOUT 90 SKIP_RETURN_CODE 77)
endforeach()
