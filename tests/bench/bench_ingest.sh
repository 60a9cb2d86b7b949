#!/bin/sh
# Ingest benchmark: netpulse-collector (librrd, rrdcached) beside collectd
# (rrdtool, rrdcached plugins) on the same samples; prints a table of medians.
#   tests/bench/bench_ingest.sh BUILD_DIR
# BUILD_DIR configured with -DNETPULSE_BENCH=ON and built. Environment: ROUNDS
# (3), AGENTS (20), IFACES (50), PER_BATCH (1000), BATCHES (30), CASES,
# PERF=np-direct|np-rrdcached|cd-rrdtool|cd-rrdcached (perf record of that case
# in round 1, to /tmp/*-bench-perf.data), UTILISATION (the collector's [alerts]
# utilisation, e.g. 0% to measure the alert's cost). A district-sized run with
# the same 1000 files: AGENTS=100 IFACES=10 BATCHES=10. Needs rrdtool, rrdcached, collectd
# (packaging/deps.sh). About 9 GB of RRD files per case at the defaults
# (1000 files of the collector's 14-day/400-day/5-year/10-year layout).
# Never fails on time. `bench_ingest.sh BUILD_DIR --table-from LOG` prints the
# table again from the "round N: {...}" lines of an earlier run's stderr.
set -eu
build=${1:?usage: bench_ingest.sh BUILD_DIR [--table-from LOG]}
shift
exec python3 "$(dirname "$0")/bench_ingest.py" "$(cd "$build" && pwd)" "$@"
