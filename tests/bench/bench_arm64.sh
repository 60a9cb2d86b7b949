#!/bin/sh
# The agent on router hardware (issue 10): size and memory of the arm64
# agent, beside the native amd64 agent built from the same tree.
#
#   tests/bench/bench_arm64.sh [CROSS_BUILD_DIR] [NATIVE_BUILD_DIR]
#     defaults: build-cross-arm64 (built with packaging/cross/build-agent.sh
#     when missing) and build (netpulse-agent must be built there)
#   env: RUNS=5 PACKETS=200000 FLOWS=20000 WORK=DIR KEEP=1 (keep WORK)
#
# Prints: the agent binary unstripped and stripped; the shared libraries it
# needs (direct, then the whole closure a router must carry, libc included);
# and max RSS (median of RUNS) for --check, --pcap-file (a capture from the
# test data and a generated one with FLOWS conversations) and --once against
# snmpsim serving a 48-port switch recording, each under qemu-user and natively.
#
# qemu-user RSS is an approximation: it is the RSS of the qemu process, which
# holds the guest's pages plus qemu's own (its translation cache and
# bookkeeping, several MB). The `--help` line is that floor; the agent's own
# share is roughly the figure minus the floor. Measure on a real router for
# exact numbers. Never fails on time or size.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CROSS=${1:-$ROOT/build-cross-arm64}
NATIVE_BUILD=${2:-$ROOT/build}
RUNS=${RUNS:-5}
PACKETS=${PACKETS:-200000}
FLOWS=${FLOWS:-20000}
TRIPLET=aarch64-linux-gnu
QEMU="qemu-aarch64 -L /"
DATA=${NETPULSE_TESTDATA:-$ROOT/../shared/testdata}
[ -d "$DATA/pcap" ] || DATA=/work/shared/testdata
WORK=${WORK:-$(mktemp -d /tmp/netpulse-bench-arm64.XXXXXX)}

NATIVE=$NATIVE_BUILD/agent/netpulse-agent
ARM=$CROSS/agent/netpulse-agent
[ -x "$NATIVE" ] || { echo "bench_arm64: build netpulse-agent first ($NATIVE)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_arm64: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
if [ ! -x "$ARM" ]; then
    sh "$ROOT/packaging/cross/build-agent.sh" arm64 "$CROSS" >"$WORK.build.log" 2>&1 ||
        { echo "bench_arm64: cross build failed, see $WORK.build.log" >&2; exit 2; }
fi
mkdir -p "$WORK"
SIM=""
cleanup() {
    if [ -n "$SIM" ]; then kill "$SIM" 2>/dev/null || true; fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

kib() { echo $((($1 + 512) / 1024)); }

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$CROSS/CMakeCache.txt")
build_type=${build_type:-RelWithDebInfo}
flags=$(sed -n "s/^CMAKE_C_FLAGS_$(echo "$build_type" | tr '[:lower:]' '[:upper:]'):STRING=//p" "$CROSS/CMakeCache.txt")
echo "== netpulse-agent binary (arm64: $build_type build, $flags; amd64: NATIVE_BUILD_DIR's)"
$TRIPLET-strip -o "$WORK/arm.stripped" "$ARM"
strip -o "$WORK/native.stripped" "$NATIVE"
printf '%-8s unstripped %6s KiB  stripped %6s KiB\n' \
    arm64 "$(kib "$(stat -c %s "$ARM")")" "$(kib "$(stat -c %s "$WORK/arm.stripped")")" \
    amd64 "$(kib "$(stat -c %s "$NATIVE")")" "$(kib "$(stat -c %s "$WORK/native.stripped")")"
# Stripped file sizes move in steps of the 64 KiB segment alignment of
# aarch64; the sections show what the code itself weighs.
sections() {
    "$1" "$2" | awk 'NR == 2 { printf "text %6.0f KiB  data %4.0f KiB  bss %4.0f KiB\n",
                                      $1 / 1024, $2 / 1024, $3 / 1024 }'
}
printf '%-8s %s\n' arm64 "$(sections $TRIPLET-size "$ARM")" amd64 "$(sections size "$NATIVE")"

# Shared libraries: DT_NEEDED resolved in the multiarch folders, recursively.
libs() {
    python3 - "$1" "$2" <<'EOF'
import os, re, subprocess, sys
binary, triplet = sys.argv[1], sys.argv[2]
dirs = [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\).*\[(.+)\]", out)
def find(name):
    for d in dirs:
        if os.path.exists(os.path.join(d, name)):
            return os.path.realpath(os.path.join(d, name))
    return None
direct = needed(binary)
seen, todo = {}, list(direct)
while todo:
    n = todo.pop()
    if n in seen:
        continue
    seen[n] = find(n)
    if seen[n]:
        todo += needed(seen[n])
size = lambda n: os.path.getsize(seen[n]) if seen[n] else 0
for n in direct:
    print(f"  {n:28s} {size(n) / 1024:8.0f} KiB" + ("" if seen[n] else "  (not found)"))
print(f"  direct: {len(direct)} libraries, {sum(size(n) for n in direct) / 1024:.0f} KiB; "
      f"closure: {len(seen)} libraries, {sum(size(n) for n in seen) / 1024:.0f} KiB")
EOF
}
echo "== shared libraries (file sizes as packaged by Debian)"
echo "arm64:"
libs "$ARM" $TRIPLET
echo "amd64:"
libs "$NATIVE" x86_64-linux-gnu

# Inputs: a real capture, a generated one, a recorded switch on snmpsim.
cc -O2 -std=c11 -D_GNU_SOURCE -o "$WORK/gen" "$ROOT/tests/bench/bench_flow_gen.c"
GEN=$WORK/gen-$PACKETS-$FLOWS.pcap
"$WORK/gen" "$GEN" "$PACKETS" "$FLOWS" >/dev/null
REAL=$DATA/pcap/netflix.pcap
REC=ios_2960x
mkdir -p "$WORK/sim/data" "$WORK/sim/cache"
cp "$DATA/snmprec/$REC.snmprec" "$WORK/sim/data/"
chmod -R a+rX "$WORK/sim" "$WORK"
chown nobody:nogroup "$WORK/sim/cache" 2>/dev/null || true
PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_ARGS=""
[ "$(id -u)" -eq 0 ] && USER_ARGS="--process-user=nobody --process-group=nogroup"
# shellcheck disable=SC2086
snmpsimd --data-dir="$WORK/sim/data" --agent-udpv4-endpoint=127.0.0.1:$PORT \
    --cache-dir="$WORK/sim/cache" --logging-method=null $USER_ARGS >/dev/null 2>&1 &
SIM=$!
i=0
until snmpget -v2c -c $REC -t 1 -r 0 "127.0.0.1:$PORT" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 60 ] || { echo "bench_arm64: snmpsim did not answer" >&2; exit 2; }
    sleep 0.5
done
cat >"$WORK/agent.conf" <<EOF
[agent]
id = bench
[pcap wan]
interface = eth0
local_prefixes = 10.0.0.0/8, 2001:db8:1::/48
[snmp switch]
host = 127.0.0.1
port = $PORT
community = $REC
timeout = 5s
EOF

# max RSS (KiB) and wall seconds of one command, median of RUNS.
median_run() {
    : >"$WORK/runs"
    n=0
    while [ $n -lt "$RUNS" ]; do
        # shellcheck disable=SC2068
        /usr/bin/time -f '%M %e' -o "$WORK/t" $@ >"$WORK/out" 2>"$WORK/err" ||
            { echo "bench_arm64: failed: $*" >&2; cat "$WORK/err" >&2; exit 2; }
        cat "$WORK/t" >>"$WORK/runs"
        n=$((n + 1))
    done
    python3 -c '
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"{statistics.median(int(r[0]) for r in rows):>8.0f} KiB {statistics.median(float(r[1]) for r in rows):7.2f} s")
' "$WORK/runs"
}

lines=0
echo "== max RSS, median of $RUNS runs (arm64: the qemu-aarch64 process, an approximation)"
for what in help check real gen once; do
    case $what in
    help) args="--help" label="--help (floor)" ;;
    check) args="-c $WORK/agent.conf --check" label="--check" ;;
    real) args="-c $WORK/agent.conf --pcap-file $REAL" label="--pcap-file $(basename "$REAL")" ;;
    gen) args="-c $WORK/agent.conf --pcap-file $GEN" label="--pcap-file gen ${PACKETS}p/${FLOWS}c" ;;
    once) args="-c $WORK/agent.conf --once" label="--once $REC" ;;
    esac
    # shellcheck disable=SC2086
    a=$(median_run $QEMU "$ARM" $args)
    [ $what != once ] || lines=$(wc -l <"$WORK/out")
    # shellcheck disable=SC2086
    n=$(median_run "$NATIVE" $args)
    printf '%-32s arm64/qemu %s   amd64 %s\n' "$label" "$a" "$n"
done
echo "(--once polled $lines interfaces; --pcap-file gen: $PACKETS packets, $FLOWS conversations)"
