# SNMP poller module: sources into netpulse_agent_core, net-snmp and jansson,
# and its tests. Only these files include net-snmp headers.
pkg_check_modules(NETSNMP REQUIRED IMPORTED_TARGET netsnmp)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)

target_sources(netpulse_agent_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/snmp_config.c
    ${CMAKE_CURRENT_LIST_DIR}/snmp_poller.c
    ${CMAKE_CURRENT_LIST_DIR}/snmp_once.c)
target_include_directories(netpulse_agent_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
# net-snmp's pkg-config file lists only -lnetsnmp; net-snmp-config --libs adds -lm and OpenSSL.
target_link_libraries(netpulse_agent_core PUBLIC PkgConfig::NETSNMP PkgConfig::JANSSON
                      OpenSSL::Crypto m)

# Unit test of the pure parts (selection, text, config validation).
set(NP_SNMP_TESTS ${CMAKE_SOURCE_DIR}/tests)
add_executable(test_snmp_config ${NP_SNMP_TESTS}/unit/test_snmp_config.c)
target_link_libraries(test_snmp_config PRIVATE netpulse_agent_core)
target_include_directories(test_snmp_config PRIVATE ${NP_SNMP_TESTS}/unit)
add_test(NAME unit.snmp_config COMMAND test_snmp_config)
set_tests_properties(unit.snmp_config PROPERTIES LABELS unit TIMEOUT 60)

# Integration tests: real snmpd and snmpsim on loopback ports.
set(NP_SNMP_IT ${NP_SNMP_TESTS}/integration/snmp)
add_test(NAME integration.snmp_snmpd
         COMMAND python3 ${NP_SNMP_IT}/test_snmpd.py $<TARGET_FILE:netpulse-agent>)
set_tests_properties(integration.snmp_snmpd PROPERTIES LABELS integration TIMEOUT 180)
add_test(NAME integration.snmp_snmpsim
         COMMAND python3 ${NP_SNMP_IT}/test_snmpsim.py $<TARGET_FILE:netpulse-agent>
                 ${NETPULSE_TESTDATA}/snmprec)
set_tests_properties(integration.snmp_snmpsim PROPERTIES LABELS integration TIMEOUT 300)
# Rates over a veth pair between two namespaces the test creates (root; 77 = skipped).
add_test(NAME integration.snmp_veth_rates
         COMMAND python3 ${NP_SNMP_IT}/test_snmp_veth.py $<TARGET_FILE:netpulse-agent>)
set_tests_properties(integration.snmp_veth_rates PROPERTIES LABELS "integration;netns"
                     TIMEOUT 60 SKIP_RETURN_CODE 77)
# Counter wraps, restarts, sysUpTime wrap and status events through pass_persist.
add_test(NAME integration.snmp_wrap
         COMMAND python3 ${NP_SNMP_IT}/test_snmp_wrap.py $<TARGET_FILE:netpulse-agent>)
set_tests_properties(integration.snmp_wrap PROPERTIES LABELS integration TIMEOUT 60)
# A device whose replies arrive after the timeout.
add_test(NAME integration.snmp_late
         COMMAND python3 ${NP_SNMP_IT}/test_snmp_late.py $<TARGET_FILE:netpulse-agent>)
set_tests_properties(integration.snmp_late PROPERTIES LABELS integration TIMEOUT 60)
# The concurrency cap (snmp_max_concurrent) with a dead device in the queue,
# and v3 engine discovery kept across per-poll sessions.
add_test(NAME integration.snmp_concurrency
         COMMAND python3 ${NP_SNMP_IT}/test_snmp_concurrency.py $<TARGET_FILE:netpulse-agent>
                 ${NETPULSE_TESTDATA}/snmprec)
set_tests_properties(integration.snmp_concurrency PROPERTIES LABELS integration TIMEOUT 120)
