#!/bin/sh
# SNMP poller benchmark: one netpulse-agent polling DEVICES simulated devices
# x IFACES interfaces (snmpsim, one community per device), beside snmpbulkwalk
# fetching the same tables from the same simulators in the same run.
# Prints figures; never fails on time. See bench_snmp.py for the details.
#
# usage: tests/bench/bench_snmp.sh [AGENT] [DEVICES] [IFACES] [RUNS] [SIMULATORS]
#   AGENT defaults to build/agent/netpulse-agent; 200 48 3 and nproc simulators.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
agent=${1:-$here/../../build/agent/netpulse-agent}
exec python3 "$here/bench_snmp.py" "$agent" "${2:-200}" "${3:-48}" "${4:-3}" \
    "${5:-$(nproc)}"
