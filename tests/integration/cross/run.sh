#!/bin/sh
# The agent cross-built for ARCH and run under qemu-user (issue 10).
#
#   run.sh ARCH SOURCE_DIR NATIVE_AGENT WORK_DIR TESTDATA_DIR
#
# 1. packaging/cross/build-agent.sh builds the agent and the unit tests of
#    common/ and agent/ for ARCH in WORK_DIR/build-ARCH (incremental on
#    reruns).
# 2. Those unit tests run under qemu-user (ctest -L unit there; the toolchain
#    file makes qemu the test launcher), except unit.privdrop: it checks that
#    no thread of the process keeps root, and qemu-user's own helper thread
#    (not a guest thread, so outside glibc's setuid broadcast) does.
# 3. check_cross.py compares `--pcap-file` and `--once` (snmpsim, snmpd) of
#    the ARCH agent under qemu with NATIVE_AGENT on the same inputs.
set -eu
ARCH=$1
SRC=$2
NATIVE=$3
WORK=$4
DATA=$5
HERE=$(cd "$(dirname "$0")" && pwd)

case "$ARCH" in
arm64) EMULATOR="qemu-aarch64 -L /" MACHINE=AArch64 ;;
*)
    echo "cross: unsupported arch=$ARCH" >&2
    exit 2
    ;;
esac
BUILD=$WORK/build-$ARCH
mkdir -p "$WORK"

t0=$(date +%s)
sh "$SRC/packaging/cross/build-agent.sh" "$ARCH" "$BUILD" >"$WORK/build.log" 2>&1 || {
    tail -n 40 "$WORK/build.log"
    echo "cross: build failed, log in $WORK/build.log" >&2
    exit 1
}
t1=$(date +%s)
echo "cross: $ARCH build took $((t1 - t0))s"
if ! readelf -h "$BUILD/agent/netpulse-agent" | grep -q "Machine:.*$MACHINE"; then
    echo "cross: $BUILD/agent/netpulse-agent is not an $MACHINE program" >&2
    exit 1
fi

ctest --test-dir "$BUILD" -L unit -E '^unit\.privdrop$' -j 2 --output-on-failure --timeout 600 \
    --no-tests=error
t2=$(date +%s)
echo "cross: $ARCH unit tests under qemu took $((t2 - t1))s"

python3 "$HERE/check_cross.py" --native "$NATIVE" --cross "$BUILD/agent/netpulse-agent" \
    --emulator "$EMULATOR" --pcap-dir "$DATA/pcap" --snmprec "$DATA/snmprec/iosxe.snmprec" \
    --work "$WORK/check"
echo "cross: $ARCH comparisons took $(($(date +%s) - t2))s"
