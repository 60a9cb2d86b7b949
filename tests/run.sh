#!/bin/sh
# The one test command: installs missing dependencies, configures, builds with
# -Werror and runs the whole ctest suite. Exit status is non-zero on any failure.
#
# Environment:
#   NETPULSE_BUILD_DIR   build folder (default: build)
#   NETPULSE_CMAKE_ARGS  extra cmake arguments (e.g. -DNETPULSE_SANITIZE=ON)
#   NETPULSE_CTEST_ARGS  extra ctest arguments (e.g. -L unit)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

packaging/deps.sh

# The suite starts real collectors; CI runs as root, where the collector refuses
# to run unless told (the least-privilege test unsets this on purpose).
export NETPULSE_ALLOW_ROOT=1

build=${NETPULSE_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DNETPULSE_WERROR=ON ${NETPULSE_CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"
cd "$build"
# shellcheck disable=SC2086
ctest --output-on-failure -j "$(nproc)" ${NETPULSE_CTEST_ARGS:-}
