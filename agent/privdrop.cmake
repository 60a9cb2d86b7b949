# Least privilege without systemd (issue 10): privdrop.c, the only user of
# libcap, and its test (root only; skipped otherwise).
pkg_check_modules(LIBCAP REQUIRED IMPORTED_TARGET libcap)

target_sources(netpulse_agent_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/privdrop.c)
target_link_libraries(netpulse_agent_core PUBLIC PkgConfig::LIBCAP)

add_executable(test_privdrop ${PROJECT_SOURCE_DIR}/tests/unit/test_privdrop.c)
target_include_directories(test_privdrop PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(test_privdrop PRIVATE netpulse_agent_core Threads::Threads)
add_test(NAME unit.privdrop COMMAND test_privdrop)
set_tests_properties(unit.privdrop PROPERTIES LABELS unit TIMEOUT 60 SKIP_RETURN_CODE 77)

# The real daemons started as root: the agent drops to nobody after opening a
# capture on a veth in namespaces; the collector refuses root and binds low
# ports through an ambient capability or socket activation.
add_test(NAME integration.privdrop
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/packaging/check_privdrop.sh
                 $<TARGET_FILE:netpulse-agent> $<TARGET_FILE:netpulse-collector>)
set_tests_properties(integration.privdrop PROPERTIES LABELS "integration;netns" TIMEOUT 60
                     SKIP_RETURN_CODE 77)
