#!/bin/bash
# Outage truth end to end against the real collector (TLS on 127.0.0.1,
# ephemeral port, heartbeat_timeout = 3s), batches built with common's wire
# builder (gen_batch) and posted with curl as an agent would.
#
#   run.sh COLLECTOR MAKE_BATCH GEN_BATCH SCENARIO
#     link   live heartbeats, a gap: a suspected outage within a few seconds
#            of the timeout; the backlog (half, then the rest) with failing
#            probe rounds: still suspected while it drains, then one
#            confirmed link outage with the rounds' exact start and end;
#            replayed batches and a collector restart change nothing
#     agent  live heartbeats, a gap, then a new agent process (new
#            agent_start_ms, AGENT_START event, probes fine): one confirmed
#            agent outage from the last sign of life to the restart
set -eu

COLLECTOR=$1
HELPER=$2
GEN=$3
SCENARIO=$4
TIMEOUT_S=3

MODE=direct
NP_TEST=$SCENARIO
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/collector.sh
. "$HERE/../lib/collector.sh"
np_on_fail() {
    echo "---- outages ----"
    CURL "$(URL /api/v1/sites/school-1/outages)"
}
now_ms() { date +%s%3N; }

np_make_cert
np_start_rrdcached
DB="$T/data/state.db"
np_collector_conf
cat >>"$T/collector.conf" <<CONF
heartbeat_timeout = ${TIMEOUT_S}s
[dashboard]
public = yes
metrics_public = yes
CONF
"$COLLECTOR" -c "$T/collector.conf" --check >/dev/null || fail "--check refused the config"
start_collector() { np_start_collector; }
post() { # post FILE: the answer must be 200
    local code
    code=$(CURL -o "$T/resp" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
        --data-binary "@$1" "$(URL /api/v1/ingest)") || code=000
    [ "$code" = 200 ] || fail "post $1: $code $(cat "$T/resp" 2>/dev/null)"
}
outages() { # outages PYEXPR: evaluated on the outage list (as d)
    CURL "$(URL /api/v1/sites/school-1/outages)" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
status() {
    CURL "$(URL /api/v1/sites)" |
        python3 -c "import json,sys; d=[s for s in json.load(sys.stdin) if s['id']=='school-1'][0]; print(d['status'], d['since_ms'])"
}
wait_for() { # wait_for SECONDS PYEXPR EXPECTED
    local deadline=$(($(now_ms) + $1 * 1000)) got
    while :; do
        got=$(outages "$2" 2>/dev/null || echo error)
        [ "$got" = "$3" ] && return 0
        [ "$(now_ms)" -gt "$deadline" ] && { echo "$got"; return 1; }
        sleep 0.1
    done
}

TOK=$("$HELPER" enrol "$DB" school-1)
start_collector
[ "$(status | cut -d' ' -f1)" = no_data ] || fail "status before any batch: $(status)"
ok "status no_data before any batch"

SEQ=0
START1=$(($(now_ms) - 60000))
live() { # one live batch (heartbeat) with a good probe round; sets LAST
    SEQ=$((SEQ + 1))
    LAST=$(now_ms)
    "$GEN" "$T/b$SEQ" school-1 "$SEQ" "$LAST" "$1" "probe=$((LAST - 200)):1000:ok" uplink=up
    post "$T/b$SEQ"
}
for _ in 1 2 3 4; do live "$START1"; sleep 1; done
[ "$(outages 'len(d)')" = 0 ] || fail "outages while heartbeats flow"
[ "$(status | cut -d' ' -f1)" = up ] || fail "status while heartbeats flow: $(status)"
ok "4 live heartbeats: no outage, status up"

# The gap: nothing is posted. A suspected outage must open from the last
# heartbeat within a few seconds of the timeout.
wait_for $((TIMEOUT_S + 6)) "[(o['state'], o['cause'], o['start_ms']) for o in d]" \
    "[('suspected', 'unknown', $LAST)]" >"$T/got" || fail "no suspected outage: $(cat "$T/got")"
SEEN=$(now_ms)
DELAY=$((SEEN - LAST))
[ "$DELAY" -le $(((TIMEOUT_S + 4) * 1000)) ] || fail "suspected only after ${DELAY} ms"
[ "$DELAY" -ge $((TIMEOUT_S * 1000)) ] || fail "suspected after ${DELAY} ms, before the timeout"
[ "$(status | cut -d' ' -f1)" = suspected ] || fail "status during the gap: $(status)"
OID=$(outages "d[0]['id']")
ok "suspected outage from the last heartbeat, seen ${DELAY} ms after it (timeout ${TIMEOUT_S} s)"

case "$SCENARIO" in
link)
    sleep 3
    # The backlog of the gap: one batch per second, created then, each with
    # its probe round. Round 1 still fine; rounds 2..K-1 fail; round K fine.
    K=$((($(now_ms) - LAST) / 1000))
    for k in $(seq "$K"); do
        c=$((LAST + k * 1000))
        r=ok
        [ "$k" -ge 2 ] && [ "$k" -lt "$K" ] && r=fail
        up=up
        [ "$r" = fail ] && up=down
        "$GEN" "$T/g$k" school-1 $((SEQ + k)) "$c" "$START1" "probe=$((c - 200)):1000:$r" \
            "uplink=$up" "spool=$((k - 1)):$((LAST + 1000))"
    done
    WANT_START=$((LAST + 2000 - 200))
    WANT_END=$((LAST + K * 1000 - 200))
    HALF=$((K / 2))
    for k in $(seq "$HALF"); do post "$T/g$k"; done
    wait_for 5 "[(o['state'], o['cause']) for o in d]" "[('suspected', 'link')]" >"$T/got" ||
        fail "half the backlog in: $(cat "$T/got")"
    [ "$(outages "d[0]['id']")" = "$OID" ] || fail "the suspected outage changed its id"
    outages "d[0]['detail']" | grep -q "waiting for the agent's backlog" || fail "detail: $(outages "d[0]['detail']")"
    ok "half the backlog in ($HALF of $K batches): still suspected, cause link so far"

    for k in $(seq $((HALF + 1)) "$K"); do post "$T/g$k"; done
    SEQ=$((SEQ + K))
    live "$START1"
    wait_for 5 "[(o['id'], o['state'], o['cause'], o['start_ms'], o['end_ms']) for o in d]" \
        "[($OID, 'confirmed', 'link', $WANT_START, $WANT_END)]" >"$T/got" ||
        fail "after the backlog: $(cat "$T/got"), want link $WANT_START..$WANT_END"
    [ "$(status | cut -d' ' -f1)" = up ] || fail "status after: $(status)"
    ok "backlog in: one confirmed link outage, first failed round to first good one ($(outages "d[0]['duration_s']") s), same id; status up"

    # The journal may replay: the same batches again change nothing.
    for k in $(seq "$K"); do post "$T/g$k"; done
    sleep 1.5
    [ "$(outages "[(o['id'], o['state'], o['start_ms'], o['end_ms']) for o in d]")" = \
        "[($OID, 'confirmed', $WANT_START, $WANT_END)]" ] || fail "after a replay: $(outages d)"
    stop_collector
    start_collector
    live "$START1"
    sleep 1.5
    [ "$(outages "[(o['id'], o['state'], o['cause'], o['start_ms'], o['end_ms']) for o in d]")" = \
        "[($OID, 'confirmed', 'link', $WANT_START, $WANT_END)]" ] || fail "after a restart: $(outages d)"
    n=$(sqlite3 "$DB" "SELECT count(*) FROM outages")
    [ "$n" = 1 ] || fail "$n outage rows"
    ok "replayed batches and a collector restart: still exactly one outage"
    # The site and the events endpoint carry it too.
    CURL "$(URL /api/v1/sites/school-1)" | python3 -c "
import json,sys; d=json.load(sys.stdin); o=d['outages']
sys.exit(0 if len(o)==1 and o[0]['cause']=='link' else 1)" || fail "/api/v1/sites/school-1 outages"
    CURL "$(URL "/api/v1/sites/school-1/events?from=$((LAST / 1000 - 60))&to=$(($(now_ms) / 1000 + 1))")" |
        python3 -c "import json,sys; json.load(sys.stdin)" || fail "/events"
    code=$(CURL -o /dev/null -w '%{http_code}' "$(URL "/api/v1/sites/school-1/outages?from=x")")
    [ "$code" = 400 ] || fail "bad from: $code"
    code=$(CURL -o /dev/null -w '%{http_code}' "$(URL /api/v1/sites/nowhere/outages)")
    [ "$code" = 404 ] || fail "unknown site: $code"
    ok "site JSON, /events and parameter errors"
    ;;
agent)
    sleep 2
    # A new agent process: new agent_start_ms, its AGENT_START event, probes fine.
    GAP_FROM=$LAST
    START2=$(now_ms)
    sleep 0.5
    SEQ=$((SEQ + 1))
    c=$(now_ms)
    "$GEN" "$T/r$SEQ" school-1 "$SEQ" "$c" "$START2" "probe=$((START2 + 100)):1000:ok" \
        uplink=up "event=agent_start:$START2"
    post "$T/r$SEQ"
    live "$START2"
    wait_for 5 "[(o['id'], o['state'], o['cause'], o['start_ms'], o['end_ms']) for o in d]" \
        "[($OID, 'confirmed', 'agent', $GAP_FROM, $START2)]" >"$T/got" ||
        fail "after the restart: $(cat "$T/got"), want agent $GAP_FROM..$START2"
    [ "$(status | cut -d' ' -f1)" = up ] || fail "status after: $(status)"
    ok "agent restart: one confirmed agent outage from the last heartbeat to the new start"
    ;;
*)
    fail "unknown scenario"
    ;;
esac
stop_collector
echo "PASS ($SCENARIO)"
