#!/bin/bash
# Collector HTTP tests against the real daemon on 127.0.0.1 (ephemeral port),
# TLS with a self-signed certificate made here, clients curl (libcurl) and
# slow_client.py.
#
#   run.sh COLLECTOR MAKE_BATCH SUITE MODE
#     SUITE: ingest   batches over HTTP/2 and HTTP/1.1 (gzip too), read back with
#                     rrdtool fetch and the API, duplicates, /metrics, SIGTERM
#            rejects  wrong/revoked token, other site, oversized, malformed,
#                     gzip bomb, garbage on the socket, slow-loris; nothing stored
#                     and the server keeps serving
#            crash    SIGKILL right after the last acknowledgement, restart:
#                     everything acknowledged is there
#            order    (direct only) several agents' batches applied at once:
#                     every row in its file; a batch that cannot be applied
#                     (its file locked) keeps the journal's applied position
#                     below it although later batches of other agents are
#                     applied: after SIGTERM and a restart it is applied
#     MODE:  direct (librrd) or rrdcached (a daemon started here)
set -eu
COLLECTOR=$1
HELPER=$2
SUITE=$3
MODE=$4
HERE=$(cd "$(dirname "$0")" && pwd)

NP_TEST=$SUITE/$MODE
# shellcheck source=../lib/collector.sh
. "$HERE/../lib/collector.sh"

np_make_cert

DB="$T/data/state.db"
np_start_rrdcached

# Port 0: the collector binds a free port and writes it to --port-file.
np_collector_conf
cat >>"$T/collector.conf" <<EOF
max_body = 1MiB
[dashboard]
public = yes
metrics_public = yes
EOF

"$COLLECTOR" -c "$T/collector.conf" --check >/dev/null || fail "--check refused the config"

start_collector() {
    np_start_collector
    grep -q "http: listening addr=127.0.0.1:$PORT " "$T/collector.log" ||
        fail "no log line http: listening addr=127.0.0.1:$PORT"
}

# post FILE TOKEN [curl options...]: sets CODE, BODY and VER
post() {
    local file=$1 token=$2
    shift 2
    local out
    out=$(CURL -o "$T/resp" -w '%{http_code} %{http_version}' \
        -H "Authorization: Bearer $token" -H "Content-Type: application/x-protobuf" \
        --data-binary "@$file" "$@" "$(URL /api/v1/ingest)") || out="000 0"
    CODE=${out% *}
    VER=${out#* }
    BODY=$(cat "$T/resp" 2>/dev/null || true)
}

get_json() { # get_json PATH PYEXPR: prints PYEXPR evaluated on the JSON (as d)
    CURL "$(URL "$1")" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

metric() { # metric NAME_WITH_LABELS: its value, or "none"
    CURL "$(URL /metrics)" | awk -v m="$1" '$1 == m { print $2; f=1 } END { if (!f) print "none" }'
}

wait_applied() { # wait_applied AGENT SEQ
    for _ in $(seq 100); do
        [ "$("$HELPER" applied "$DB" "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "agent $1 never reached applied seq $2 (at $("$HELPER" applied "$DB" "$1"))"
}

# rrd_value FILE TIME DS_INDEX: the value in the row at TIME (AVERAGE, 60 s)
rrd_value() {
    # shellcheck disable=SC2086
    rrdtool fetch "$1" AVERAGE -r 60 -s "$(($2 - 120))" -e "$(($2 + 60))" $FETCH_DAEMON |
        awk -v t="$2:" -v i="$3" '$1 == t { print $(i + 2) }'
}

NOW=$(date +%s)
T0=$(((NOW - 7200) / 60 * 60))
IFFILE="$T/data/rrd/school-1/if+edge+eth0.rrd"

case "$SUITE" in
ingest)
    TOK1=$("$HELPER" enrol "$DB" school-1)
    start_collector
    [ "$(CURL "$(URL /healthz)")" = ok ] || fail "/healthz"
    ok "healthz"

    for s in 1 2 3 4; do
        "$HELPER" batch "$T/b$s" school-1 "$s" "$((T0 + 60 * s))" 3 "$((s * 1000000))" 5000
    done
    gzip -c "$T/b1" >"$T/b1.gz"
    post "$T/b1.gz" "$TOK1" --http2 -H "Content-Encoding: gzip"
    [ "$CODE" = 200 ] || fail "gzip batch over HTTP/2: $CODE $BODY"
    [ "$VER" = 2 ] || fail "expected HTTP/2 over ALPN, got $VER"
    echo "$BODY" | grep -q '"ack": 1' || fail "ack 1 expected: $BODY"
    ok "seq 1 over HTTP/2, gzip: $BODY"

    post "$T/b2" "$TOK1" --http1.1
    [ "$CODE" = 200 ] && [ "$VER" = 1.1 ] || fail "HTTP/1.1 batch: $CODE $VER $BODY"
    echo "$BODY" | grep -q '"ack": 2' || fail "ack 2 expected: $BODY"
    ok "seq 2 over HTTP/1.1: $BODY"

    post "$T/b3" "$TOK1" --http2
    echo "$BODY" | grep -q '"ack": 3' || fail "ack 3 expected: $CODE $BODY"
    post "$T/b4" "$TOK1" --http2
    echo "$BODY" | grep -q '"ack": 4' || fail "ack 4 expected: $CODE $BODY"
    post "$T/b2" "$TOK1" --http2
    [ "$CODE" = 200 ] && echo "$BODY" | grep -q '"ack": 4' || fail "duplicate: $CODE $BODY"
    ok "duplicate seq 2 answered with ack 4"

    wait_applied school-1 4
    [ -f "$IFFILE" ] || fail "no RRD file $IFFILE"
    for s in 2 3 4; do
        v=$(rrd_value "$IFFILE" "$((T0 + 60 * s))" 0)
        python3 -c "import sys; sys.exit(0 if abs(float('$v') - $s * 1e6) < 1 else 1)" ||
            fail "rrdtool fetch at seq $s: in_bps=$v, expected ${s}e6"
    done
    ok "rrdtool fetch shows in_bps 2e6, 3e6, 4e6"

    got=$(get_json "/api/v1/sites/school-1/series?from=$T0&to=$((T0 + 300))&step=60&device=edge&iface=eth0" \
        "[p['in_bps'] for p in d['series'][0]['points'] if p['time'] == $((T0 + 240))]")
    [ "$got" = "[4000000.0]" ] || fail "API series at seq 4: $got"
    n=$(get_json "/api/v1/sites/school-1/series?from=$T0&to=$((T0 + 300))&step=60" \
        "len(d['series'])")
    [ "$n" = 3 ] || fail "API series of every interface: $n series, expected 3"
    ok "API series agrees"

    [ "$(get_json /api/v1/sites "[s['id'] for s in d]")" = "['school-1']" ] || fail "/api/v1/sites"
    [ "$(get_json /api/v1/sites/school-1 "d['agent']['applied_seq']")" = 4 ] ||
        fail "/api/v1/sites/school-1 applied_seq"
    code=$(CURL -o /dev/null -w '%{http_code}' "$(URL /api/v1/sites/nowhere)")
    [ "$code" = 404 ] || fail "unknown site: $code"
    ok "sites API"

    [ "$(metric netpulse_ingest_batches_total)" = 4 ] || fail "batches_total"
    [ "$(metric netpulse_ingest_samples_total)" = 12 ] || fail "samples_total"
    [ "$(metric netpulse_ingest_duplicates_total)" = 1 ] || fail "duplicates_total"
    [ "$(metric 'netpulse_agent_last_seen_seconds{agent="school-1"}')" != none ] ||
        fail "last_seen metric"
    [ "$(metric netpulse_rrd_write_seconds_count)" = 4 ] || fail "rrd histogram count"
    ok "metrics"

    # SIGHUP: new certificate and key for new connections; a bad file is refused.
    cp "$T/cert.pem" "$T/old-cert.pem"
    np_make_cert
    kill -HUP "$CPID"
    for _ in $(seq 50); do grep -q "configuration reloaded" "$T/collector.log" && break; sleep 0.1; done
    [ "$(CURL "$(URL /healthz)")" = ok ] || fail "new certificate not served after SIGHUP"
    if curl -sS --max-time 5 --cacert "$T/old-cert.pem" "$(URL /healthz)" >/dev/null 2>&1; then
        fail "old certificate still served to new connections after SIGHUP"
    fi
    echo "bogus_key = 1" >>"$T/collector.conf"
    kill -HUP "$CPID"
    for _ in $(seq 50); do grep -q "reload refused" "$T/collector.log" && break; sleep 0.1; done
    grep -q "reload refused" "$T/collector.log" || fail "bad config not refused on SIGHUP"
    [ "$(CURL "$(URL /healthz)")" = ok ] || fail "not serving after a refused reload"
    ok "SIGHUP: new TLS key for new connections; a bad config is refused and changes nothing"

    stop_collector
    ok "SIGTERM: exit 0"
    ;;

rejects)
    TOK1=$("$HELPER" enrol "$DB" school-1)
    TOK2=$("$HELPER" enrol "$DB" school-2)
    TOK3=$("$HELPER" enrol "$DB" school-3)
    "$HELPER" revoke "$DB" school-3
    start_collector

    # Slow clients first; the rest of the suite runs while they hang on.
    python3 "$HERE/slow_client.py" stall "$PORT" "$T/cert.pem" >"$T/stall.out" &
    S1=$!
    python3 "$HERE/slow_client.py" trickle "$PORT" "$T/cert.pem" >"$T/trickle.out" &
    S2=$!
    python3 "$HERE/slow_client.py" garbage "$PORT" >"$T/garbage.out" &
    S3=$!
    python3 "$HERE/slow_client.py" tlsjunk "$PORT" "$T/cert.pem" >"$T/tlsjunk.out" &
    S4=$!

    "$HELPER" batch "$T/b1" school-1 1 "$((T0 + 60))"
    "$HELPER" batch "$T/b2" school-2 1 "$((T0 + 60))"
    "$HELPER" batch "$T/b3" school-3 1 "$((T0 + 60))"

    post "$T/b1" "np1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    [ "$CODE" = 401 ] || fail "unknown token: $CODE $BODY"
    out=$(CURL -o /dev/null -w '%{http_code}' --data-binary "@$T/b1" "$(URL /api/v1/ingest)")
    [ "$out" = 401 ] || fail "no token: $out"
    post "$T/b3" "$TOK3"
    [ "$CODE" = 401 ] || fail "revoked token: $CODE $BODY"
    ok "unknown, missing and revoked tokens: 401"

    post "$T/b2" "$TOK1"
    [ "$CODE" = 403 ] || fail "other site's batch: $CODE $BODY"
    ok "school-1's token with school-2's batch: 403 ($BODY)"

    head -c 3000 /dev/urandom >"$T/junk"
    post "$T/junk" "$TOK1"
    [ "$CODE" = 400 ] && [ -n "$BODY" ] || fail "garbage body: $CODE $BODY"
    ok "garbage body: 400 ($BODY)"
    head -c "$(($(stat -c %s "$T/b1") - 7))" "$T/b1" >"$T/trunc"
    post "$T/trunc" "$TOK1"
    [ "$CODE" = 400 ] || fail "truncated batch: $CODE $BODY"
    ok "truncated batch: 400 ($BODY)"
    post "$T/junk" "$TOK1" -H "Content-Encoding: gzip"
    [ "$CODE" = 400 ] || fail "bad gzip: $CODE $BODY"
    ok "bad gzip: 400 ($BODY)"

    head -c $((3 * 1024 * 1024 / 2)) /dev/zero >"$T/big"
    post "$T/big" "$TOK1" --http2
    [ "$CODE" = 413 ] || fail "1.5 MiB body over max_body=1MiB, HTTP/2: $CODE"
    post "$T/big" "$TOK1" --http1.1
    [ "$CODE" = 413 ] || fail "1.5 MiB body over max_body=1MiB, HTTP/1.1: $CODE"
    ok "oversized body: 413 ($BODY)"
    # Over h2o's own bound (2 x max_body): HTTP/1.1 413 from h2o; HTTP/2 gets
    # its stream refused. Either way nothing is read into the handler.
    head -c $((5 * 1024 * 1024)) /dev/zero >"$T/huge"
    post "$T/huge" "$TOK1" --http1.1
    [ "$CODE" = 413 ] || fail "5 MiB body over HTTP/1.1: $CODE"
    post "$T/huge" "$TOK1" --http2 --retry 0
    [ "$CODE" != 200 ] || fail "5 MiB body over HTTP/2 accepted"
    ok "huge body: 413 over HTTP/1.1, stream refused over HTTP/2 (code $CODE)"
    head -c $((64 * 1024 * 1024)) /dev/zero | gzip -c >"$T/bomb.gz"
    post "$T/bomb.gz" "$TOK1" -H "Content-Encoding: gzip"
    [ "$CODE" = 413 ] || fail "gzip bomb: $CODE $BODY"
    ok "gzip bomb ($(stat -c %s "$T/bomb.gz") bytes -> 64 MiB): 413 ($BODY)"

    code=$(CURL -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK1" "$(URL /api/v1/ingest)")
    [ "$code" = 405 ] || fail "GET on ingest: $code"

    # The server keeps serving while the slow clients hang on.
    post "$T/b1" "$TOK1" --http2
    [ "$CODE" = 200 ] || fail "valid batch during the attacks: $CODE $BODY"
    ok "valid batch accepted while slow clients hang"

    for p in $S1 $S2 $S3 $S4; do wait "$p"; done
    for f in stall trickle garbage tlsjunk; do
        read -r state secs <"$T/$f.out"
        [ "$state" = closed ] || fail "$f client still open after ${secs}s"
        python3 -c "import sys; sys.exit(0 if $secs < 25 else 1)" ||
            fail "$f client closed only after ${secs}s"
        ok "$f client dropped after ${secs}s"
    done
    [ "$(CURL "$(URL /healthz)")" = ok ] || fail "/healthz after the attacks"

    wait_applied school-1 1
    [ "$("$HELPER" applied "$DB" school-2)" = 0 ] || fail "school-2 has data"
    [ "$("$HELPER" applied "$DB" school-3)" = 0 ] || fail "school-3 has data"
    [ ! -e "$T/data/rrd/school-2" ] && [ ! -e "$T/data/rrd/school-3" ] ||
        fail "RRD files for rejected sites"
    [ "$(metric netpulse_ingest_batches_total)" = 1 ] || fail "batches_total"
    [ "$(metric 'netpulse_ingest_rejects_total{reason="unauthorized"}')" = 3 ] ||
        fail "unauthorized rejects"
    [ "$(metric 'netpulse_ingest_rejects_total{reason="forbidden"}')" = 1 ] ||
        fail "forbidden rejects"
    [ "$(metric 'netpulse_ingest_rejects_total{reason="too_large"}')" = 3 ] ||
        fail "too_large rejects"
    ok "nothing stored for rejected requests; rejects counted"
    stop_collector
    ;;

crash)
    TOK1=$("$HELPER" enrol "$DB" school-1)
    start_collector
    N=30
    args=()
    for s in $(seq "$N"); do
        "$HELPER" batch "$T/b$s" school-1 "$s" "$((T0 + 60 * s))" 20 "$((s * 1000))" 7
        [ "$s" -gt 1 ] && args+=(--next)
        args+=(--cacert "$T/cert.pem" -sS --http2 -H "Authorization: Bearer $TOK1"
            --data-binary "@$T/b$s" -w '%{http_code} ' -o "$T/r$s" "$(URL /api/v1/ingest)")
    done
    # Hold SQLite's write lock so that nothing gets applied: every batch is
    # acknowledged from the journal alone, and the restart must replay them.
    mkfifo "$T/lock.fifo"
    sqlite3 "$DB" <"$T/lock.fifo" &
    LPID=$!
    exec 3>"$T/lock.fifo"
    echo "BEGIN IMMEDIATE;" >&3
    sleep 0.3
    codes=$(curl "${args[@]}")
    kill -9 "$CPID"
    wait "$CPID" 2>/dev/null || true
    CPID=""
    echo "ROLLBACK;" >&3
    exec 3>&-
    wait "$LPID" || true
    [ "$("$HELPER" applied "$DB" school-1)" -lt "$N" ] ||
        fail "everything was applied before the kill: the lock did not hold"
    for c in $codes; do [ "$c" = 200 ] || fail "codes: $codes"; done
    grep -q "\"ack\": $N" "$T/r$N" || fail "last ack: $(cat "$T/r$N")"
    ok "$N batches acknowledged, collector SIGKILLed right after the last"

    start_collector
    grep -q "journal replayed" "$T/collector.log" || fail "no journal replay at restart"
    ok "restart: $(grep -o 'journal replayed.*' "$T/collector.log" | tail -n 1)"
    wait_applied school-1 "$N"
    for s in 1 15 "$N"; do
        v=$(rrd_value "$IFFILE" "$((T0 + 60 * s))" 0)
        python3 -c "import sys; sys.exit(0 if abs(float('$v') - $s * 1000) < 1e-6 else 1)" ||
            fail "seq $s after restart: in_bps=$v"
    done
    ok "every acknowledged batch is in RRD and SQLite after the restart"
    post "$T/b$N" "$TOK1"
    [ "$CODE" = 200 ] && echo "$BODY" | grep -q "\"ack\": $N" || fail "replayed duplicate: $BODY"
    [ "$(metric netpulse_ingest_batches_total)" = 0 ] || fail "duplicate stored again"
    ok "the last batch again: ack $N, nothing stored"
    stop_collector
    ;;
order)
    AGENTS="a1 a2 a3 a4 a5 a6"
    N=8
    declare -A TOK
    pids=()
    for a in $AGENTS; do TOK[$a]=$("$HELPER" enrol "$DB" "$a"); done
    start_collector
    # Each agent posts its batches in order on its own connection, all at once.
    for a in $AGENTS; do
        args=()
        for s in $(seq "$N"); do
            "$HELPER" batch "$T/$a.$s" "$a" "$s" "$((T0 + 60 * s))" 4 "$((s * 1000))" 7
            [ "$s" -gt 1 ] && args+=(--next)
            args+=(--cacert "$T/cert.pem" -sS --http2 -H "Authorization: Bearer ${TOK[$a]}"
                --data-binary "@$T/$a.$s" -w '%{http_code} ' -o /dev/null "$(URL /api/v1/ingest)")
        done
        curl "${args[@]}" >"$T/codes.$a" &
        pids+=($!)
    done
    wait "${pids[@]}"
    for a in $AGENTS; do
        for c in $(cat "$T/codes.$a"); do [ "$c" = 200 ] || fail "$a codes: $(cat "$T/codes.$a")"; done
        wait_applied "$a" "$N"
    done
    for a in $AGENTS; do
        for i in 0 3; do
            f="$T/data/rrd/$a/if+edge+eth$i.rrd"
            rows=$(rrdtool fetch "$f" AVERAGE -r 60 -s "$((T0 - 60))" -e "$((T0 + 60 * N))" |
                awk -F: 'NF == 2 && $2 !~ /nan/ { n++ } END { print n + 0 }')
            [ "$rows" = "$N" ] || fail "$f: $rows rows of $N"
        done
    done
    ok "$N batches of each of $(echo $AGENTS | wc -w) agents at once: every row in its file"

    # a1's file locked (librrd's own fcntl lock): a1's next batch fails to
    # apply; the other agents' next batches, journaled after it, are applied.
    python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close()
time.sleep(60)' "$T/data/rrd/a1/if+edge+eth0.rrd" "$T/locked" &
    LPID=$!
    for _ in $(seq 50); do [ -e "$T/locked" ] && break; sleep 0.1; done
    [ -e "$T/locked" ] || fail "could not lock a1's file"
    M=$((N + 1))
    for a in $AGENTS; do
        "$HELPER" batch "$T/$a.$M" "$a" "$M" "$((T0 + 60 * M))" 4 "$((M * 1000))" 7
        post "$T/$a.$M" "${TOK[$a]}"
        [ "$CODE" = 200 ] || fail "$a seq $M: $CODE $BODY"
    done
    for a in a2 a3 a4 a5 a6; do wait_applied "$a" "$M"; done
    [ "$("$HELPER" applied "$DB" a1)" = "$N" ] || fail "a1 applied although its file was locked"
    grep -q "apply failed agent=a1" "$T/collector.log" || fail "no apply failure logged for a1"
    stop_collector
    kill "$LPID"
    wait "$LPID" 2>/dev/null || true
    ok "a1's batch failed, the later batches of the other agents were applied; SIGTERM"

    start_collector
    wait_applied a1 "$M"
    v=$(rrd_value "$T/data/rrd/a1/if+edge+eth0.rrd" "$((T0 + 60 * M))" 0)
    python3 -c "import sys; sys.exit(0 if abs(float('$v') - $M * 1000) < 1e-6 else 1)" ||
        fail "a1 seq $M after restart: in_bps=$v"
    ok "restart: a1's batch replayed from the journal (its applied position stayed below it)"
    stop_collector
    ;;
*)
    fail "unknown suite $SUITE"
    ;;
esac
echo "PASS ($SUITE/$MODE)"
