#!/bin/sh
# Live-capture memory with 100,000 active flows (issue 6: "RSS under 32 MiB
# with 100,000 active flows"): the agent captures (`--capture-for`) on one end
# of a veth pair inside a namespace this script creates, while tcpreplay in a
# second namespace replays a generated capture of 99,789 one-way flows,
# once per export interval, several times. So every interval holds ~100k
# flows in the capture thread's table while the loop reports the previous
# interval's snapshot: the steady state of the daemon. Prints the agent's max
# RSS, the flows and packets per interval, and kernel drops. Root only (exits
# 77 otherwise); needs tcpreplay (Debian: tcpreplay). Never fails on a figure.
#
#   tests/bench/bench_flow_live.sh [BUILD_DIR]      (default: build)
#   env: PACKETS=180000 FLOWS=78000 LOOPS=4 PPS=100000 TABLE= (flow_table_size;
#        empty: the default) BUFFER= (buffer_size; empty: the default)
#        WORK=DIR KEEP=1
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
AGENT=$BUILD/agent/netpulse-agent
PACKETS=${PACKETS:-180000}
FLOWS=${FLOWS:-78000}
LOOPS=${LOOPS:-4}
PPS=${PPS:-100000}
TABLE=${TABLE:-}
BUFFER=${BUFFER:-}
WORK=${WORK:-$(mktemp -d /tmp/netpulse-bench-flow-live.XXXXXX)}

[ "$(id -u)" = 0 ] || { echo "bench_flow_live: needs root (ip netns)" >&2; exit 77; }
command -v tcpreplay >/dev/null && command -v tcprewrite >/dev/null ||
    { echo "bench_flow_live: needs tcpreplay and tcprewrite (Debian: tcpreplay)" >&2; exit 77; }
[ -x "$AGENT" ] || { echo "bench_flow_live: build netpulse-agent first ($AGENT)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_flow_live: needs /usr/bin/time (Debian: time)" >&2; exit 2; }

NSC=np-flowlive-cap-$$
NSS=np-flowlive-snd-$$
cleanup() {
    ip netns del "$NSC" 2>/dev/null || true
    ip netns del "$NSS" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK"

cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$WORK/gen" \
    "$ROOT/tests/bench/bench_flow_gen.c"
PCAP=$WORK/live-$PACKETS-$FLOWS.pcap
"$WORK/gen" "$WORK/headers.pcap" "$PACKETS" "$FLOWS" >/dev/null
# The generated capture holds headers only (caplen 128): pad every frame back
# to its wire length, so the replayed frames are what the capture describes.
tcprewrite --fixlen=pad -i "$WORK/headers.pcap" -o "$PCAP"
rm -f "$WORK/headers.pcap"

ip netns add "$NSC"
ip netns add "$NSS"
ip link add cap0 netns "$NSC" type veth peer name snd0 netns "$NSS"
ip -n "$NSC" link set cap0 up
ip -n "$NSS" link set snd0 up

# One pass of the capture takes PACKETS / PPS seconds: the export interval.
interval=$(awk -v p="$PACKETS" -v r="$PPS" 'BEGIN { s = int(p / r + 0.5); print (s < 1 ? 1 : s) }')
duration=$((interval * LOOPS + interval + 3))
{
    echo "[agent]"
    echo "id = bench"
    echo
    echo "[pcap live]"
    echo "interface = cap0"
    echo "promiscuous = yes"
    echo "local_prefixes = 10.0.0.0/8, 2001:db8:1::/48"
    echo "export_interval = ${interval}s"
    [ -z "$TABLE" ] || echo "flow_table_size = $TABLE"
    [ -z "$BUFFER" ] || echo "buffer_size = $BUFFER"
} >"$WORK/agent.conf"

NETPULSE_ALLOW_ROOT=1 ip netns exec "$NSC" /usr/bin/time -f "%M" -o "$WORK/rss" \
    "$AGENT" -c "$WORK/agent.conf" --capture-for "${duration}s" \
    >"$WORK/agent.out" 2>"$WORK/agent.err" &
agent=$!
sleep 1
ip netns exec "$NSS" tcpreplay -q -i snd0 --loop="$LOOPS" --pps="$PPS" "$PCAP" \
    >"$WORK/tcpreplay.out" 2>&1 || echo "bench_flow_live: tcpreplay failed" >&2
wait "$agent" || { echo "bench_flow_live: agent failed: $(tail -3 "$WORK/agent.err")" >&2; exit 1; }

one_pass=$("$AGENT" -c "$WORK/agent.conf" --pcap-file "$PCAP" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['flows']['count'])")
printf '\nlive capture: %s-packet capture (%s one-way flows) replayed %s times at %s packets/s\n' \
    "$PACKETS" "$one_pass" "$LOOPS" "$PPS"
python3 - "$WORK/agent.out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'interval':>8} {'packets':>9} {'flows':>8} {'evicted':>8} {'kernel drops':>12} {'snapshot MiB':>12}")
for r in rows:
    f, c = r["flows"], r.get("capture", {})
    print(f"{r.get('interval', '?'):>8} {r['packets']:>9} {f['count']:>8} {f['evicted']:>8} "
          f"{c.get('kernel_dropped', 0):>12} {f['memory_bytes'] / 1048576:>12.1f}")
print(f"most flows in one interval: {max((r['flows']['count'] for r in rows), default=0)}"
      f" (flow_table_size {rows[0]['flows']['max'] if rows else '?'})")
EOF
awk '{ printf "agent max RSS: %.1f MiB (goal < 32 MiB with 100,000 active flows)\n", $1 / 1024 }' \
    "$WORK/rss"
