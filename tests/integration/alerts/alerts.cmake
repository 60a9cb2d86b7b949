# Alert integration tests (issue 8), included from collector/CMakeLists.txt:
# the real collector, a real SMTP server (aiosmtpd with STARTTLS and AUTH,
# Debian python3-aiosmtpd, hence the system python) and a webhook receiver.
set(NP_ALERTS_IT ${CMAKE_CURRENT_LIST_DIR})
add_executable(alert_feeder ${NP_ALERTS_IT}/alert_feeder.c)
target_link_libraries(alert_feeder PRIVATE netpulse_common PkgConfig::LIBCURL)
foreach(scenario down_up digest flap smtp_outage events iface_restart utilisation sla)
    add_test(NAME integration.alerts.${scenario}
             COMMAND /usr/bin/python3 ${NP_ALERTS_IT}/run_alerts.py
                     $<TARGET_FILE:netpulse-collector> $<TARGET_FILE:netpulse>
                     $<TARGET_FILE:alert_feeder> ${scenario})
    set_tests_properties(integration.alerts.${scenario} PROPERTIES
        LABELS "integration;collector;alerts" TIMEOUT 120)
endforeach()

# A real link cut between agent and collector in network namespaces (the e2e
# harness) with the SMTP server in the collector's namespace. Root only.
add_test(NAME integration.alerts.netns_cut
         COMMAND /usr/bin/python3 ${NP_ALERTS_IT}/netns_cut.py $<TARGET_FILE:netpulse-agent>
                 $<TARGET_FILE:netpulse-collector> $<TARGET_FILE:netpulse>)
set_tests_properties(integration.alerts.netns_cut PROPERTIES
    LABELS "integration;collector;alerts;e2e;netns" TIMEOUT 240 SKIP_RETURN_CODE 77)

# The alert e-mail path fuzzed with hostile names, contacts and aliases
# (tests/fuzz/fuzz_alert_mail.c); like np_fuzz_target() in tests/fuzz, which
# is not defined yet when the collector's folder is read.
set(NP_FUZZ_DIR ${PROJECT_SOURCE_DIR}/tests/fuzz)
if(NETPULSE_FUZZ)
    add_executable(fuzz_alert_mail ${NP_FUZZ_DIR}/fuzz_alert_mail.c)
    target_link_options(fuzz_alert_mail PRIVATE -fsanitize=fuzzer)
else()
    add_executable(fuzz_alert_mail ${NP_FUZZ_DIR}/fuzz_alert_mail.c ${NP_FUZZ_DIR}/replay.c)
endif()
target_link_libraries(fuzz_alert_mail PRIVATE netpulse_collector_core)
add_test(NAME fuzz.alert_mail.corpus COMMAND fuzz_alert_mail ${NP_FUZZ_DIR}/corpus/alert_mail)
set_tests_properties(fuzz.alert_mail.corpus PROPERTIES LABELS "fuzz;alerts" TIMEOUT 120)
