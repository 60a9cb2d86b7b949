# Flow sampler (issue 6): pure decoder, flow table, aggregation and report,
# config section, and the libpcap adapter. Only flow_capture.c includes pcap.h.
pkg_check_modules(LIBPCAP REQUIRED IMPORTED_TARGET libpcap)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)

target_sources(netpulse_agent_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/packet_decode.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_table.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_agg.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_report.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_config.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_capture.c
    ${CMAKE_CURRENT_LIST_DIR}/packet_ring.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_live.c
    ${CMAKE_CURRENT_LIST_DIR}/flow_wire.c)
target_link_libraries(netpulse_agent_core PUBLIC PkgConfig::LIBPCAP PkgConfig::JANSSON
                      OpenSSL::Crypto)

# Unit tests: tests/unit/test_flow_*.c and test_packet_ring.c, linked against the
# agent core.
set(NP_FLOW_TEST_DIR ${PROJECT_SOURCE_DIR}/tests/unit)
foreach(t flow_decode flow_table flow_report flow_sample flow_wire packet_ring)
    add_executable(test_${t} ${NP_FLOW_TEST_DIR}/test_${t}.c)
    target_include_directories(test_${t} PRIVATE ${NP_FLOW_TEST_DIR})
    target_link_libraries(test_${t} PRIVATE netpulse_agent_core)
    add_test(NAME unit.${t} COMMAND test_${t})
    set_tests_properties(unit.${t} PROPERTIES LABELS unit TIMEOUT 60)
endforeach()
target_link_libraries(test_flow_sample PRIVATE m)

# Integration: every capture in ../shared/testdata/pcap through --pcap-file,
# compared with tshark's ground truth.
find_program(NP_TSHARK tshark)
find_package(Python3 COMPONENTS Interpreter)
set(NP_PCAP_DIR ${NETPULSE_TESTDATA}/pcap)
if(Python3_Interpreter_FOUND)
    add_test(NAME integration.flow_pcap
             COMMAND ${Python3_EXECUTABLE}
                     ${PROJECT_SOURCE_DIR}/tests/integration/flow/check_pcap.py
                     --agent $<TARGET_FILE:netpulse-agent> --pcap-dir ${NP_PCAP_DIR}
                     --work ${CMAKE_CURRENT_BINARY_DIR}/flow-it)
    set_tests_properties(integration.flow_pcap PROPERTIES LABELS integration TIMEOUT 600)
endif()

# Integration: live capture on a veth pair between two namespaces the test
# creates, against tcpdump on the same interface (root; skipped otherwise).
if(Python3_Interpreter_FOUND)
    add_test(NAME integration.flow_live
             COMMAND ${Python3_EXECUTABLE}
                     ${PROJECT_SOURCE_DIR}/tests/integration/flow/check_live.py
                     --agent $<TARGET_FILE:netpulse-agent>
                     --work ${CMAKE_CURRENT_BINARY_DIR}/flow-it)
    set_tests_properties(integration.flow_live PROPERTIES LABELS "integration;netns" TIMEOUT 60
                         SKIP_RETURN_CODE 77)
endif()
