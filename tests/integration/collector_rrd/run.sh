#!/bin/sh
# rrd_store end to end: write known batches through librrd ("direct") or a real
# rrdcached started here ("rrdcached"), then check the files with rrdtool:
# layout (step, DS, RRAs), values, MAX archive, unknowns for discontinuities,
# no cap at ifSpeed, backlog order, late samples skipped, safe file names, and
# np_rrd_store_fetch's JSON.
#   run.sh PATH/TO/collector_rrd_writer direct|rrdcached
set -eu

WRITER=$1
MODE=$2
T0=1699999200 # 2023-11-14T22:00:00Z, aligned to an hour
TMP=$(mktemp -d /tmp/np_collector_rrd.XXXXXX)
DATA=$TMP/data
SITE_DIR=$DATA/rrd/school-0412
RRDCACHED_PID=
fails=0

cleanup() {
    if [ -n "$RRDCACHED_PID" ]; then
        kill "$RRDCACHED_PID" 2>/dev/null || true
        wait "$RRDCACHED_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" != "$3" ]; then
        fail "$1: got '$2', want '$3'"
    fi
}

mkdir -p "$DATA/rrd" "$TMP/journal"
DAEMON=-
DAEMON_OPT=
if [ "$MODE" = rrdcached ]; then
    SOCK=$TMP/rrdcached.sock
    # -g foreground, -B only below the base folder, -j journal; -w/-z: keep
    # values in the daemon's queue so the test also proves that reads go
    # through the daemon (fetch flushes first).
    rrdcached -g -l "unix:$SOCK" -b "$DATA/rrd" -B -j "$TMP/journal" -p "$TMP/rrdcached.pid" \
        -w 3600 -z 1 >"$TMP/rrdcached.log" 2>&1 &
    RRDCACHED_PID=$!
    i=0
    while [ ! -S "$SOCK" ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            cat "$TMP/rrdcached.log" >&2
            echo "FAIL: rrdcached did not start" >&2
            exit 1
        fi
        sleep 0.1
    done
    DAEMON=unix:$SOCK
    DAEMON_OPT="--daemon unix:$SOCK"
fi

"$WRITER" write "$DATA" "$DAEMON" "$T0" >"$TMP/write.out"
cat "$TMP/write.out"
expect_eq "batch 1" "$(sed -n 1p "$TMP/write.out")" \
    "batch1 ret=0 written=540 late=0 invalid=0 created=3 errors=0"
expect_eq "backlog: overlap skipped" "$(sed -n 2p "$TMP/write.out")" \
    "batch2 ret=0 written=60 late=30 invalid=0 created=0 errors=0"
expect_eq "replay of batch 1" "$(sed -n 3p "$TMP/write.out")" \
    "batch1 ret=0 written=0 late=540 invalid=0 created=0 errors=0"

if [ "$MODE" = rrdcached ]; then
    # The values still sit in rrdcached's queue (-w 3600): the file on disk
    # has not seen the backlog yet.
    last_disk=$(rrdtool last "$SITE_DIR/if+edge+ge-0%2F0%2F0.rrd")
    last_daemon=$(rrdtool last $DAEMON_OPT "$SITE_DIR/if+edge+ge-0%2F0%2F0.rrd")
    expect_eq "last via rrdcached" "$last_daemon" $((T0 + 2400))
    if [ "$last_disk" = "$last_daemon" ]; then
        fail "rrdcached wrote at once; the queue was not exercised"
    fi
    # np_rrd_store_fetch flushes the daemon's queue before reading.
    "$WRITER" fetch "$DATA" "$DAEMON" school-0412 edge ge-0/0/0 AVERAGE $((T0 + 2280)) \
        $((T0 + 2400)) 60 >"$TMP/fetch.out"
    grep -q "{\"time\": *$((T0 + 2400)), *\"in_bps\": *300000000.0" "$TMP/fetch.out" ||
        fail "fetch through rrdcached's queue: $(cat "$TMP/fetch.out")"
    # rrdtool's reads through the daemon ignore -r (FETCH has no resolution):
    # flush the queue, then read the files themselves.
    rrdtool flushcached $DAEMON_OPT "$SITE_DIR"/*.rrd
    DAEMON_OPT=
    expect_eq "last after flush" "$(rrdtool last "$SITE_DIR/if+edge+ge-0%2F0%2F0.rrd")" \
        $((T0 + 2400))
fi

# File names: escaped, all inside the site folder, nothing else anywhere.
expect_eq "files" "$(cd "$DATA/rrd" && find . -type f | LC_ALL=C sort | tr '\n' ' ')" \
    "./school-0412/if+edge+%2E.%2Fevil%20name.rrd ./school-0412/if+edge+ge-0%2F0%2F0.rrd ./school-0412/probe+upstream.rrd "

IF=$SITE_DIR/if+edge+ge-0%2F0%2F0.rrd
EVIL=$SITE_DIR/if+edge+%2E.%2Fevil%20name.rrd
PROBE=$SITE_DIR/probe+upstream.rrd

# Layout: step = the 10 s interval, GAUGE without a maximum, the archives.
rrdtool info $DAEMON_OPT "$IF" >"$TMP/info"
info() { sed -n "s/^$1 = //p" "$TMP/info"; }
expect_eq step "$(info step)" 10
expect_eq "in_bps type" "$(info 'ds\[in_bps\]\.type')" '"GAUGE"'
expect_eq "in_bps max (never ifSpeed)" "$(info 'ds\[in_bps\]\.max')" NaN
expect_eq "out_bps max" "$(info 'ds\[out_bps\]\.max')" NaN
expect_eq "heartbeat" "$(info 'ds\[in_bps\]\.minimal_heartbeat')" 20
expect_eq "oper max" "$(info 'ds\[oper\]\.max')" 1.0000000000e+00
layout=""
for r in 0 1 2 3 4 5 6 7; do
    cf=$(info "rra\[$r\]\.cf")
    [ -n "$cf" ] || break
    layout="$layout $cf/$(info "rra\[$r\]\.pdp_per_row")/$(info "rra\[$r\]\.rows")/$(info "rra\[$r\]\.xff")"
done
# 1 min x 14 d; 5 min x 400 d (AVERAGE, MAX); 1 h x 5 y; 1 d x 10 y.
expect_eq "archives" "$layout" \
    ' "AVERAGE"/6/20160/5.0000000000e-01 "AVERAGE"/30/115200/5.0000000000e-01 "MAX"/30/115200/5.0000000000e-01 "AVERAGE"/360/43824/5.0000000000e-01 "MAX"/360/43824/5.0000000000e-01 "AVERAGE"/8640/3653/5.0000000000e-01 "MAX"/8640/3653/5.0000000000e-01'

rrdtool info $DAEMON_OPT "$PROBE" >"$TMP/info"
expect_eq "probe DS" "$(grep -o '^ds\[[a-z_]*\]\.type' "$TMP/info" | tr '\n' ' ')" \
    "ds[rtt_ms].type ds[loss].type ds[up].type "

# fetch_at FILE CF RES TIME: the row stamped TIME, as "v1 v2 v3".
fetch_at() {
    rrdtool fetch $DAEMON_OPT "$1" "$2" -r "$3" -s $(($4 - $3)) -e "$4" |
        sed -n "s/^$4: //p" | head -n 1
}

expect_eq "1-min average" "$(fetch_at "$IF" AVERAGE 60 $((T0 + 60)))" \
    "1.0000000000e+09 2.5000000000e+08 1.0000000000e+00"
expect_eq "1-min average, burst minute" "$(fetch_at "$IF" AVERAGE 60 $((T0 + 420)))" \
    "1.2000000000e+09 2.5000000000e+08 1.0000000000e+00"
# The discontinuity (no rate at T0+720) is 1 of 6 steps: the minute stays known
# and is not a spike.
expect_eq "minute with a discontinuity" "$(fetch_at "$IF" AVERAGE 60 $((T0 + 720)))" \
    "1.0000000000e+09 2.5000000000e+08 1.0000000000e+00"
expect_eq "5-min MAX keeps the burst" "$(fetch_at "$IF" MAX 300 $((T0 + 600)))" \
    "1.2000000000e+09 2.5000000000e+08 1.0000000000e+00"
expect_eq "5-min AVERAGE" "$(fetch_at "$IF" AVERAGE 300 $((T0 + 600)))" \
    "1.0400000000e+09 2.5000000000e+08 1.0000000000e+00"
# The backlog's overlap (in 7 bps up to T0+1800) was skipped, not written.
expect_eq "overlap not overwritten" "$(fetch_at "$IF" AVERAGE 60 $((T0 + 1800)))" \
    "1.0000000000e+09 2.5000000000e+08 1.0000000000e+00"
expect_eq "backlog written in order" "$(fetch_at "$IF" AVERAGE 60 $((T0 + 2400)))" \
    "3.0000000000e+08 1.0000000000e+08 1.0000000000e+00"
expect_eq "above ifSpeed kept" "$(fetch_at "$EVIL" AVERAGE 60 $((T0 + 60)))" \
    "5.0000000000e+09 1.0000000000e+06 0.0000000000e+00"
expect_eq "probe" "$(fetch_at "$PROBE" AVERAGE 60 $((T0 + 120)))" \
    "1.2500000000e+01 2.5000000000e-01 1.0000000000e+00"

# np_rrd_store_fetch: JSON rows for the API.
"$WRITER" fetch "$DATA" "$DAEMON" school-0412 edge ge-0/0/0 MAX $T0 $((T0 + 900)) 300 \
    >"$TMP/fetch.out"
expect_eq "fetch step" "$(sed -n 1p "$TMP/fetch.out")" "step=300"
row=$(sed -n 2p "$TMP/fetch.out" | grep -o "{\"time\": *$((T0 + 600))[^}]*}" || true)
case "$row" in
*'"in_bps": 1200000000.0'* | *'"in_bps":1200000000.0'*) ;;
*) fail "fetch JSON row at T0+600: '$row' in $(cat "$TMP/fetch.out")" ;;
esac
"$WRITER" fetch "$DATA" "$DAEMON" school-0412 upstream - AVERAGE $T0 $((T0 + 120)) 60 \
    >"$TMP/fetch.out"
grep -q '"rtt_ms": *12.5' "$TMP/fetch.out" || fail "probe fetch JSON: $(cat "$TMP/fetch.out")"
if "$WRITER" fetch "$DATA" "$DAEMON" school-0412 edge nope AVERAGE $T0 $((T0 + 60)) 60 \
    2>"$TMP/err.out"; then
    fail "fetch of a missing series succeeded"
fi
grep -q 'no series' "$TMP/err.out" || fail "missing series message: $(cat "$TMP/err.out")"

if [ "$fails" -ne 0 ]; then
    echo "collector_rrd $MODE: $fails check(s) failed" >&2
    exit 1
fi
echo "collector_rrd $MODE: all checks passed"
