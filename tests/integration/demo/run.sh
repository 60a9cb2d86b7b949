#!/bin/bash
# packaging/demo.sh end to end: a first run in a temporary data folder stops
# by itself (NETPULSE_DEMO_SECONDS) after the agent's samples reached the
# collector (checked through the API with the demo's token and in the RRD);
# everything it started is gone afterwards; a second run reuses the data
# (same agent token, batch numbers go on) and stops on SIGINT.
#
#   run.sh DEMO_SH BUILD_DIR
set -eu
DEMO=$1
BUILD=$2
T=$(mktemp -d /tmp/np-demo.XXXXXX)
DATA=$T/data
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && sleep 3
    # anything still running from this data folder is a leak: kill and fail
    local left
    left=$(pgrep -f -- "$DATA/" || true)
    [ -n "$left" ] && kill -KILL $left 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in demo.err collector.log agent.log; do
        [ -f "$T/$f" ] && { echo "---- $f ----" >&2; tail -n 20 "$T/$f" >&2; }
        [ -f "$DATA/$f" ] && { echo "---- $f ----" >&2; tail -n 20 "$DATA/$f" >&2; }
    done
    exit 1
}
ok() { echo "ok: $*"; }

start_demo() { # start_demo SECONDS
    # The demo is a foreground program: Ctrl-C must reach it even when this
    # script was started with SIGINT ignored (background jobs of a shell).
    env --default-signal=INT NETPULSE_DEMO_DIR="$DATA" NETPULSE_DEMO_BUILD="$BUILD" \
        NETPULSE_DEMO_NO_DEPS=1 NETPULSE_DEMO_PORT=0 NETPULSE_DEMO_SECONDS="$1" \
        "$DEMO" >"$T/demo.out" 2>"$T/demo.err" &
    DPID=$!
    for _ in $(seq 300); do
        # the banner's last line: everything is printed and running
        grep -q "^  snmpd  *udp:" "$T/demo.out" 2>/dev/null && return 0
        kill -0 "$DPID" 2>/dev/null || fail "demo.sh exited at start"
        sleep 0.1
    done
    fail "demo.sh did not start"
}
wait_demo() { # wait_demo SECONDS: demo.sh must exit 0 within them
    local rc=0
    for _ in $(seq $(($1 * 10))); do
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$DPID" 2>/dev/null && fail "demo.sh still running"
    wait "$DPID" || rc=$?
    DPID=""
    [ "$rc" = 0 ] || fail "demo.sh exited $rc"
    left=$(pgrep -f -- "$DATA/" || true)
    [ -z "$left" ] || fail "still running after demo.sh stopped: $(ps -o pid,args -p "$(echo $left | tr ' ' ,)")"
}
site() { # site PYEXPR on /api/v1/sites/demo-school (as d)
    local port
    port=$(cat "$DATA/collector.port")
    curl -sS --max-time 10 --cacert "$DATA/tls/cert.pem" \
        -H "Authorization: Bearer $(cat "$DATA/api.token")" \
        "https://127.0.0.1:$port/api/v1/sites/demo-school" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# ---- first run: stops by itself after 35 s ----
start_demo 35
grep -q "login      user demo, password" "$T/demo.out" || fail "no dashboard credentials printed"
for u in "https://127.0.0.1:[0-9]*/ " "/api/v1/sites/demo-school" "/metrics"; do
    grep -q "$u" "$T/demo.out" || fail "URL $u not printed"
done
ok "demo.sh started and printed its URLs and credentials"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/tls/cert.pem" \
    "https://127.0.0.1:$(cat "$DATA/collector.port")/api/v1/sites/demo-school") || code=000
[ "$code" = 401 ] || [ "$code" = 403 ] || fail "API without a token answered $code"
seq1=0
for _ in $(seq 30); do
    seq1=$(site "d['agent']['applied_seq']" 2>/dev/null || echo 0)
    [ "$seq1" -ge 2 ] && break
    sleep 1
done
[ "$seq1" -ge 2 ] || fail "collector applied seq $seq1 after 30 s"
[ "$(site "d['status']")" = up ] || fail "site status $(site "d['status']")"
[ "$(site "sorted(i['iface'] for i in d['interfaces'] if i['iface']=='lo')")" = "['lo']" ] ||
    fail "interface lo of the local snmpd not in the API"
last=$(rrdtool lastupdate "$DATA/collector/rrd/demo-school/if+edge+lo.rrd" | awk -F'[: ]+' '/^[0-9]+:/ {print $1, $2}')
set -- $last
[ -n "${1:-}" ] && [ $(($(date +%s) - $1)) -lt 30 ] || fail "RRD of lo not updated lately: $last"
case "${2:-nan}" in *nan*|U) fail "RRD of lo holds no rate: $last" ;; esac
probe=$(rrdtool lastupdate "$DATA/collector/rrd/demo-school/probe+collector.rrd" | awk -F'[: ]+' '/^[0-9]+:/ {print $4}')
[ "$probe" = 1 ] || fail "tcp probe of the collector not up in its RRD: $probe"
ok "site up via the API (applied seq $seq1), lo at $2 bit/s in the RRD, tcp probe up"
wait_demo 40
grep -q "ran 35s" "$T/demo.err" || fail "demo.sh did not stop on its time limit"
ok "stopped by itself after 35 s; nothing left running"
TOKEN=$(cat "$DATA/agent.token")

# ---- second run: data reused, Ctrl-C stops it ----
start_demo 0
grep -q "enrolled agent" "$T/demo.err" && fail "the agent was enrolled again"
[ "$(cat "$DATA/agent.token")" = "$TOKEN" ] || fail "agent token changed"
seq2=0
for _ in $(seq 30); do
    seq2=$(site "d['agent']['applied_seq']" 2>/dev/null || echo 0)
    [ "$seq2" -gt "$seq1" ] && break
    sleep 1
done
[ "$seq2" -gt "$seq1" ] || fail "second run: applied seq $seq2 not beyond $seq1"
ok "second run reuses token and data (applied seq $seq1 -> $seq2)"
kill -INT "$DPID"
wait_demo 30
ok "SIGINT stopped everything; data kept"
[ -s "$DATA/collector/state.db" ] || fail "state.db gone"
echo PASS
