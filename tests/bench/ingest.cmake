# bench_ingest.sh's load generator (ingest_load.c): libcurl multi, HTTP/2 over
# TLS, many enrolled agents; also the equal sender for the collectd peer.
pkg_check_modules(NP_BENCH_CURL REQUIRED IMPORTED_TARGET libcurl)
add_executable(ingest_load ${CMAKE_CURRENT_LIST_DIR}/ingest_load.c)
target_link_libraries(ingest_load PRIVATE netpulse_common PkgConfig::NP_BENCH_CURL)
