# Flow summaries end to end (issue 6, collector side): batches built by the
# agent's own flow code from real captures, posted to the real collector;
# checked with rrdtool fetch and GET /api/v1/sites/{id}/flows. Included from
# collector/http.cmake (needs collector_http_make_batch for enrolment).
set(NP_FLOWS_IT ${PROJECT_SOURCE_DIR}/tests/integration/flows_collector)
add_executable(flows_collector_batch ${NP_FLOWS_IT}/flow_batch.c)
target_link_libraries(flows_collector_batch PRIVATE netpulse_agent_core)
foreach(mode direct rrdcached)
    add_test(NAME integration.flows_collector.${mode}
             COMMAND bash ${NP_FLOWS_IT}/run.sh $<TARGET_FILE:netpulse-collector>
                     $<TARGET_FILE:collector_http_make_batch>
                     $<TARGET_FILE:flows_collector_batch> ${NETPULSE_TESTDATA}/pcap ${mode})
    set_tests_properties(integration.flows_collector.${mode} PROPERTIES
        LABELS "integration;collector;flow" TIMEOUT 60)
endforeach()

# The storage alone (state_db + rrd_store), no daemon: also for ASan runs.
add_executable(flows_store_test ${NP_FLOWS_IT}/flows_store_test.c)
target_include_directories(flows_store_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
target_link_libraries(flows_store_test PRIVATE netpulse_collector_core m)
add_test(NAME integration.flows_collector.store COMMAND flows_store_test)
set_tests_properties(integration.flows_collector.store PROPERTIES
    LABELS "integration;collector;flow" TIMEOUT 60)
