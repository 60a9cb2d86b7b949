#!/bin/sh
# Flow sampler benchmark (issue 6): packets per second through
# `netpulse-agent --pcap-file` on a large generated capture, beside softflowd
# (-r) and pmacctd (pcap_savefile) on the same file in the same run, and a bare
# libpcap read loop as the floor. Median of RUNS runs of each: wall time,
# packets/s, CPU seconds (user + system, children included) and max RSS; the
# agent's packet rate as a share of the floor's; the agent's flow table
# memory; and, with valgrind installed, instructions per packet of the agent
# and the floor (callgrind: deterministic, unlike wall time on a shared
# machine). Prints figures; never fails on time.
#
#   tests/bench/bench_flow.sh [BUILD_DIR]        (default: build)
#   env: PACKETS=3000000 FLOWS=60000 RUNS=3 INSNS=1 (0: no callgrind runs)
#        WORK=DIR KEEP=1 (keep WORK)
#
# FLOWS conversations give about 1.8 x FLOWS one-way flows (the agent's and
# pmacct's unit; 60000 -> about 107,000). The capture holds headers only
# (caplen 128, wire lengths kept), as the agent captures by default. No packet
# leaves the machine: softflowd exports to 127.0.0.1:9 (discard).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
AGENT=$BUILD/agent/netpulse-agent
PACKETS=${PACKETS:-3000000}
FLOWS=${FLOWS:-60000}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d /tmp/netpulse-bench-flow.XXXXXX)}
CFLAGS_BENCH="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror"

[ -x "$AGENT" ] || { echo "bench_flow: build netpulse-agent first ($AGENT)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_flow: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
mkdir -p "$WORK"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

# shellcheck disable=SC2086 # CFLAGS_BENCH is a list of flags
cc $CFLAGS_BENCH -o "$WORK/gen" "$ROOT/tests/bench/bench_flow_gen.c"
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$WORK/floor" "$ROOT/tests/bench/bench_flow_floor.c" -lpcap
PCAP=$WORK/bench-$PACKETS-$FLOWS.pcap
[ -s "$PCAP" ] || "$WORK/gen" "$PCAP" "$PACKETS" "$FLOWS"
cat "$PCAP" >/dev/null # page cache: every tool reads from memory

cat >"$WORK/agent.conf" <<EOF
[agent]
id = bench

[pcap bench]
interface = eth0
local_prefixes = 10.0.0.0/8, 2001:db8:1::/48
flow_table_size = 131072
EOF
cat >"$WORK/pmacctd.conf" <<EOF
daemonize: false
pcap_savefile: $PCAP
pcap_savefile_wait: false
aggregate: src_host, dst_host, src_port, dst_port, proto, vlan
plugins: print
print_output: csv
print_output_file: $WORK/pmacct.csv
print_refresh_time: 3600
print_cache_entries: 131071
plugin_pipe_size: 102400000
plugin_buffer_size: 102400
logfile: $WORK/pmacct.log
EOF

# run NAME CMD...: RUNS timed runs; lines "wall user sys maxrss_kb" in $WORK/NAME.times.
run() {
    name=$1
    shift
    : >"$WORK/$name.times"
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        if ! /usr/bin/time -f "%e %U %S %M" -o "$WORK/$name.t" "$@" >"$WORK/$name.out" \
            2>"$WORK/$name.err"; then
            echo "bench_flow: $name failed: $(tail -3 "$WORK/$name.err")" >&2
            return 1
        fi
        cat "$WORK/$name.t" >>"$WORK/$name.times"
        i=$((i + 1))
    done
}

median() { # column of $WORK/NAME.times (1 wall, 5 cpu = user + sys, 4 rss)
    awk -v c="$2" '{ v = (c == 5) ? $2 + $3 : $c; print v }' "$WORK/$1.times" |
        sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

run floor "$WORK/floor" "$PCAP"
run agent "$AGENT" -c "$WORK/agent.conf" --pcap-file "$PCAP"
have_sf=0
if command -v softflowd >/dev/null; then
    # -c none: softflowd 1.1.0 otherwise blocks in accept() on its control
    # socket before reading a file. -m above the flow count: no forced expiry.
    run softflowd softflowd -d -r "$PCAP" -n 127.0.0.1:9 -m 262144 -6 -T vlan -c none \
        -p "$WORK/softflowd.pid" && have_sf=1
fi
have_pm=0
if command -v pmacctd >/dev/null; then
    run pmacctd pmacctd -f "$WORK/pmacctd.conf" && have_pm=1
fi

agent_json=$WORK/agent.out
field() { python3 -c "import json,sys; o=json.load(open(sys.argv[1])); print($1)" "$agent_json"; }
npk=$(field "o['packets']")
nflows=$(field "o['flows']['count']")
table_mib=$(field "round(o['flows']['memory_bytes'] / 1048576, 1)")
evicted=$(field "o['flows']['evicted']")

printf '\nflow benchmark: %s packets, %s one-way flows (%s evicted), %s runs, median\n' \
    "$npk" "$nflows" "$evicted" "$RUNS"
printf '%-22s %10s %13s %8s %11s %9s\n' tool "wall s" "packets/s" "CPU s" "CPU ns/pkt" "RSS MiB"
row() {
    [ -s "$WORK/$1.times" ] || return 0
    w=$(median "$1" 1)
    c=$(median "$1" 5)
    r=$(median "$1" 4)
    awk -v n="$2" -v w="$w" -v c="$c" -v r="$r" -v p="$PACKETS" \
        'BEGIN { printf "%-22s %10.2f %13.0f %8.2f %11.0f %9.1f\n", n, w, (w > 0 ? p / w : 0), c, 1e9 * c / p, r / 1024 }'
}
row floor "libpcap read (floor)"
row agent "netpulse-agent"
[ "$have_sf" = 1 ] && row softflowd "softflowd 1.1.0"
[ "$have_pm" = 1 ] && row pmacctd "pmacctd (print)"
printf 'agent flow table + aggregator: %s MiB for %s flows (flow_table_size 131072)\n' \
    "$table_mib" "$nflows"
if [ "$have_pm" = 1 ]; then
    pm_flows=$(($(wc -l <"$WORK/pmacct.csv") - 1))
    printf 'pmacctd flows: %s (agent: %s)\n' "$pm_flows" "$nflows"
    echo "pmacctd's wall time includes its fixed 2 s sleep before reading a savefile"
fi
aw=$(median agent 1)
fw=$(median floor 1)
best=""
for t in softflowd pmacctd; do
    [ -s "$WORK/$t.times" ] || continue
    w=$(median "$t" 1)
    best=$(awk -v a="$best" -v b="$w" 'BEGIN { print (a == "" || b < a) ? b : a }')
done
ac=$(median agent 5)
fc=$(median floor 5)
awk -v a="$aw" -v f="$fw" -v b="$best" -v ac="$ac" -v fc="$fc" 'BEGIN {
    printf "agent/floor packet rate: %.2f (%.0f %% of the bare read loop; goal >= 70 %%)\n", f / a, 100 * f / a
    if (ac > 0) printf "agent/floor by CPU time: %.2f\n", fc / ac
    if (b != "") printf "agent vs faster peer: %.1fx (goal >= 3x)\n", b / a
}'
# Instructions per packet (callgrind counts every instruction the process
# runs, startup and the JSON report included): the same on a quiet or a busy
# machine. The agent reads a file on two threads (reader and aggregator):
# its busiest thread bounds its packet rate when it has two cores.
insns() { # NAME CMD...: prints the instruction count of one run, all threads
    name=$1
    shift
    rm -f "$WORK/$name.cg"*
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/$name.cg" \
        "$@" >/dev/null 2>"$WORK/$name.vg" || return 1
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$WORK/$name.vg" | tail -1
}
busiest() { # NAME: instruction count of the busiest thread of the last insns NAME run
    cat "$WORK/$1.cg"-* | sed -n 's/^totals: *//p' | sort -g | tail -1
}
if [ "${INSNS:-1}" = 1 ] && command -v valgrind >/dev/null; then
    fi_=$(insns floor "$WORK/floor" "$PCAP")
    ai_=$(insns agent "$AGENT" -c "$WORK/agent.conf" --pcap-file "$PCAP")
    ab_=$(busiest agent)
    awk -v a="$ai_" -v b="$ab_" -v f="$fi_" -v p="$PACKETS" 'BEGIN {
        printf "instructions/packet: agent %.0f, floor %.0f (agent/floor %.2f; the floor is %.0f %% of the agent)\n",
            a / p, f / p, a / f, 100 * f / a
        printf "instructions/packet of the busiest agent thread: %.0f (floor/busiest %.2f)\n", b / p, f / b
    }'
fi
[ "$npk" = "$PACKETS" ] || echo "bench_flow: agent counted $npk packets of $PACKETS" >&2
