#!/bin/bash
# Ingest admission under a stalled apply (collector/ingest.h, "Backpressure"),
# with the real collector and an rrdcached started here, over HTTP/2 + TLS on
# 127.0.0.1 (ephemeral port).
#
#   run.sh COLLECTOR MAKE_BATCH LOAD FLOOD
#     MAKE_BATCH: tests/integration/collector_http/make_batch.c
#     LOAD:       tests/bench/ingest_load.c (one batch in flight per agent)
#     FLOOD:      flood.c (many requests at once, multiplexed)
#
# rrdcached is SIGSTOPped, so every RRD write of the apply jobs blocks on its
# socket. AGENTS agents then post BATCHES batches each: 64 are journaled and
# acknowledged, then every agent's next request waits unanswered ("parked")
# instead of being refused. Past the park bounds requests get 503 with
# Retry-After and nothing is stored: first the 64 MiB bound (padded batches
# of nearly 8 MiB), then the 4096-request bound (a flood of small
# duplicates). After SIGCONT every parked request is answered, every batch in
# order, and every sample is in its RRD file exactly once.
set -eu
COLLECTOR=$1
HELPER=$2
LOAD=$3
FLOOD=$4
MODE=rrdcached
HERE=$(cd "$(dirname "$0")" && pwd)

AGENTS=40         # agents posting small batches, one in flight each
BATCHES=4         # each, after the warm-up batch (seq 1) that creates the files
IFACES=2          # interfaces per agent
PER_BATCH=4       # samples per batch: IFACES x 2 polls
APPLY_MAX=64      # ingest.c APPLY_QUEUE_MAX
PARK_MAX=4096     # ingest.c PARK_MAX
PARK_BYTES=$((64 << 20)) # ingest.c PARK_BYTES_MAX
ROOM=$((1 << 20)) # of PARK_BYTES, for the small parked requests
HOGS=10           # padded batches posted at once while the others wait
HOGS_FIT=8        # of them parked: HOG_BYTES (under max_body, 8MiB) fills all but ROOM
HOG_BYTES=$(((PARK_BYTES - ROOM) / HOGS_FIT))
FLOODS=4200       # small duplicates posted at once after them

NP_TEST=ingest_overload
# shellcheck source=../lib/collector.sh
. "$HERE/../lib/collector.sh"
LPID=""
cont_rrdcached() { [ -n "$RPID" ] && kill -CONT "$RPID" 2>/dev/null || true; }
trap 'cont_rrdcached; [ -n "$LPID" ] && kill "$LPID" 2>/dev/null; np_cleanup' EXIT

np_make_cert
np_start_rrdcached
DB="$T/data/state.db"
np_collector_conf
cat >>"$T/collector.conf" <<EOF
[dashboard]
public = yes
metrics_public = yes
EOF

metrics() { CURL "$(URL /metrics)" >"$T/metrics"; }
m() { # m NAME_WITH_LABELS: its value in $T/metrics, or "none"
    awk -v m="$1" '$1 == m { print $2; f=1 } END { if (!f) print "none" }' "$T/metrics"
}
rejects() { # the sum of every reject reason
    awk '$1 ~ /^netpulse_ingest_rejects_total/ { n += $2 } END { print n + 0 }' "$T/metrics"
}

: >"$T/tokens"
for i in $(seq -w 1 "$AGENTS"); do
    echo "a$i $("$HELPER" enrol "$DB" "a$i")" >>"$T/tokens"
done
for i in $(seq -w 1 "$HOGS"); do
    echo "h$i $("$HELPER" enrol "$DB" "h$i")" >>"$T/hogtokens"
done
np_start_collector
NOW=$(date +%s)
T0=$(((NOW - 6 * 3600) / 60 * 60))
# post FIRST_SEQ COUNT REPLIES: every agent's batches, one in flight per agent
post() { "$LOAD" post "$(URL /api/v1/ingest)" "$T/cert.pem" "$T/tokens" "$IFACES" "$PER_BATCH" \
    "$1" "$2" "$T0" "$3"; }

# Warm-up: seq 1 of every agent creates its files; then idle.
post 1 1 "$T/replies.1" >"$T/load.1" || fail "warm-up: $(cat "$T/load.1")"
for _ in $(seq 100); do
    metrics
    [ "$(m 'netpulse_queue_depth{queue="apply"}')" = 0 ] &&
        [ "$(m netpulse_rrd_write_seconds_count)" = "$AGENTS" ] && break
    sleep 0.1
done
[ "$(m netpulse_rrd_write_seconds_count)" = "$AGENTS" ] || fail "warm-up batches not applied"
ok "warm-up: $AGENTS agents' first batches applied"

# Stall: rrdcached stopped, its socket still accepting.
kill -STOP "$RPID"
T_POST=$(date +%s.%N)
post 2 "$BATCHES" "$T/replies" >"$T/load" &
LPID=$!
for _ in $(seq 150); do
    metrics
    [ "$(m 'netpulse_queue_depth{queue="parked"}')" = "$AGENTS" ] && break
    sleep 0.1
done
parked=$(m 'netpulse_queue_depth{queue="parked"}')
applyq=$(m 'netpulse_queue_depth{queue="apply"}')
answered=$(wc -l <"$T/replies")
[ "$parked" = "$AGENTS" ] || fail "parked=$parked, expected every agent's next batch ($AGENTS)"
# The apply queue holds the acknowledged batches and at most one outage write
# (queued by a timer, whether or not there is room): APPLY_MAX batches and the
# write after them, or the write first and one batch less.
flush=$((applyq - answered))
[ "$flush" -ge 0 ] && [ "$flush" -le 1 ] && [ $((answered + flush)) -ge "$APPLY_MAX" ] &&
    [ "$answered" -le "$APPLY_MAX" ] ||
    fail "$answered answers while stalled, apply queue $applyq; expected $APPLY_MAX in all"
awk '$3 != 200 || $4 != "{\"ack\":" || $5 != ($2 "}") { exit 1 }' "$T/replies" ||
    fail "answers while stalled: $(grep -v ' 200 ' "$T/replies" | head -n 3)"
[ "$(rejects)" = 0 ] || fail "refusals below the park bounds: $(grep rejects_total "$T/metrics")"
[ "$(m netpulse_rrd_write_seconds_count)" = "$AGENTS" ] || fail "a batch was applied while stalled"
sleep 1
metrics
[ "$(wc -l <"$T/replies")" = "$answered" ] || fail "answers came while rrdcached was stopped"
[ "$(m 'netpulse_queue_depth{queue="parked"}')" = "$AGENTS" ] &&
    [ "$(m 'netpulse_queue_depth{queue="apply"}')" = "$applyq" ] || fail "queues moved while stalled"
kill -0 "$LPID" 2>/dev/null || fail "the load generator ended while stalled: $(cat "$T/load")"
ok "stalled: $answered batches acknowledged (journal), apply queue $applyq, $parked requests parked" \
    "with no answer for 1 s, no refusal"

# Past the byte bound: HOGS padded batches at once, HOGS_FIT of them wait.
[ $(((HOGS_FIT + 1) * HOG_BYTES)) -gt "$PARK_BYTES" ] || fail "HOG_BYTES too small"
NP_MAX_PAD=$HOG_BYTES python3 - "$T" "$HOGS" "$HELPER" "$T0" <<'PYEOF'
import os, subprocess, sys
t, hogs, helper, t0 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
size = int(os.environ["NP_MAX_PAD"])
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
for i in range(1, hogs + 1):
    path = f"{t}/hog{i}"
    subprocess.run([helper, "batch", path, f"h{i:02d}", "1", str(t0 + 60)], check=True)
    with open(path, "rb") as f:
        batch = f.read()
    # An unknown field (number 2047, length-delimited) pads the batch: still a
    # valid batch, protobuf keeps it aside.
    tag = varint(2047 << 3 | 2)
    pad = size - len(batch) - len(tag) - 4
    body = batch + tag + varint(pad) + b"\0" * pad
    assert len(body) == size and len(varint(pad)) == 4
    with open(path, "wb") as f:
        f.write(body)
PYEOF
hog_pids=()
i=0
while read -r _ token; do
    i=$((i + 1))
    curl -sS --max-time 60 --http2 --cacert "$T/cert.pem" -H "Authorization: Bearer $token" \
        -H "Content-Type: application/x-protobuf" --data-binary "@$T/hog$i" \
        -D "$T/hog$i.head" -o "$T/hog$i.body" -w '%{http_code}' "$(URL /api/v1/ingest)" \
        >"$T/hog$i.code" 2>"$T/hog$i.err" &
    hog_pids+=($!)
done <"$T/hogtokens"
refused_want=$((HOGS - HOGS_FIT))
for _ in $(seq 200); do
    metrics
    [ "$(m 'netpulse_queue_depth{queue="parked"}')" = $((AGENTS + HOGS_FIT)) ] &&
        [ "$(m 'netpulse_ingest_rejects_total{reason="unavailable"}')" = "$refused_want" ] && break
    sleep 0.1
done
[ "$(m 'netpulse_queue_depth{queue="parked"}')" = $((AGENTS + HOGS_FIT)) ] ||
    fail "parked $(m 'netpulse_queue_depth{queue="parked"}'), expected $((AGENTS + HOGS_FIT))"
[ "$(m 'netpulse_ingest_rejects_total{reason="unavailable"}')" = "$refused_want" ] &&
    [ "$(rejects)" = "$refused_want" ] || fail "rejects: $(grep rejects_total "$T/metrics")"
refused=()
for i in $(seq "$HOGS"); do
    [ -s "$T/hog$i.code" ] || continue
    code=$(cat "$T/hog$i.code")
    [ "$code" = 503 ] || fail "hog $i answered $code while stalled"
    grep -qi '^retry-after: 5' "$T/hog$i.head" || fail "503 without Retry-After: $(cat "$T/hog$i.head")"
    grep -q 'backlog full' "$T/hog$i.body" || fail "503 reason: $(cat "$T/hog$i.body")"
    refused+=("$i")
done
[ "${#refused[@]}" = "$refused_want" ] || fail "refused hogs: ${refused[*]}"
[ "$(wc -l <"$T/replies")" = "$answered" ] || fail "answers came while rrdcached was stopped"
ok "$HOGS batches of $HOG_BYTES bytes: $HOGS_FIT parked (64 MiB bound), $refused_want refused:" \
    "503, Retry-After: 5, counted as unavailable"

# Past the count bound: FLOODS copies of a01's (acknowledged) seq 1 at once.
"$HELPER" batch "$T/dup" a01 1 "$T0"
[ $(($(stat -c %s "$T/dup") * PARK_MAX)) -lt $((ROOM / 2)) ] || fail "the flood's batch is too big"
fits=$((PARK_MAX - AGENTS - HOGS_FIT))
"$FLOOD" "$(URL /api/v1/ingest)" "$T/cert.pem" "$(awk '$1 == "a01" { print $2 }' "$T/tokens")" \
    "$T/dup" "$FLOODS" 60 "$T/flood" 2>"$T/flood.err" &
FPID=$!
unavailable=$((refused_want + FLOODS - fits))
for _ in $(seq 200); do
    metrics
    [ "$(m 'netpulse_queue_depth{queue="parked"}')" = "$PARK_MAX" ] &&
        [ "$(m 'netpulse_ingest_rejects_total{reason="unavailable"}')" = "$unavailable" ] && break
    sleep 0.1
done
[ "$(m 'netpulse_queue_depth{queue="parked"}')" = "$PARK_MAX" ] &&
    [ "$(m 'netpulse_ingest_rejects_total{reason="unavailable"}')" = "$unavailable" ] &&
    [ "$(rejects)" = "$unavailable" ] ||
    fail "flood: parked $(m 'netpulse_queue_depth{queue="parked"}'), $(grep rejects_total "$T/metrics")"
[ "$(grep -c '^503 5$' "$T/flood")" = $((FLOODS - fits)) ] && [ "$(wc -l <"$T/flood")" = $((FLOODS - fits)) ] ||
    fail "flood answers while stalled: $(sort "$T/flood" | uniq -c)"
[ "$(wc -l <"$T/replies")" = "$answered" ] || fail "answers came while rrdcached was stopped"
ok "$FLOODS small requests at once: $fits parked ($PARK_MAX in all), $((FLOODS - fits)) refused:" \
    "503, Retry-After: 5"

# Release: everything parked is acknowledged, in order per agent.
T_CONT=$(date +%s.%N)
kill -CONT "$RPID"
for _ in $(seq 300); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$LPID" 2>/dev/null && fail "parked requests still unanswered 30 s after SIGCONT"
wait "$LPID" || fail "load generator: $(cat "$T/load")"
LPID=""
for p in "${hog_pids[@]}"; do wait "$p" || true; done
wait "$FPID" || fail "flood: $(head -n 3 "$T/flood.err")"
T_DONE=$(date +%s.%N)
python3 - "$T" "$AGENTS" "$BATCHES" "$HOGS" "${refused[@]}" <<'PYEOF' || fail "answers after SIGCONT"
import json, sys
t, agents, batches, hogs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
refused = {int(x) for x in sys.argv[5:]}
load = json.load(open(f"{t}/load"))
assert load["requests"] == agents * batches and load["errors"] == 0, load
assert load["retries_503"] == 0, f"503 below the park bounds: {load}"
seen = {}
for line in open(f"{t}/replies"):
    agent, seq, code, *rest = line.split()
    assert code == "200" and rest == ['{"ack":', seq + "}"], line
    seen.setdefault(agent, []).append(int(seq))
assert len(seen) == agents, len(seen)
for agent, seqs in seen.items():
    assert seqs == list(range(2, batches + 2)), (agent, seqs)
for i in range(1, hogs + 1):
    code = open(f"{t}/hog{i}.code").read()
    if i not in refused:
        assert code == "200" and '"ack": 1' in open(f"{t}/hog{i}.body").read(), (i, code)
PYEOF
[ "$(grep -c '^200 ' "$T/flood")" = "$fits" ] || fail "flood answers: $(sort "$T/flood" | uniq -c)"
ok "after SIGCONT: every batch acknowledged (ack = seq, in order per agent), no 503 below" \
    "the bounds, the parked duplicates answered; all drained in $(python3 -c "print(f'{$T_DONE - $T_CONT:.2f}')") s"

# Stored: every sample once, the refused batches not at all.
for _ in $(seq 150); do
    metrics
    [ "$(m 'netpulse_queue_depth{queue="apply"}')" = 0 ] &&
        [ "$(m 'netpulse_queue_depth{queue="journal"}')" = 0 ] && break
    sleep 0.1
done
total=$((AGENTS * (BATCHES + 1)))
[ "$(m netpulse_ingest_batches_total)" = $((total + HOGS_FIT)) ] &&
    [ "$(m netpulse_ingest_samples_total)" = $((total * PER_BATCH + HOGS_FIT)) ] &&
    [ "$(m netpulse_ingest_duplicates_total)" = "$fits" ] &&
    [ "$(m netpulse_rrd_write_seconds_count)" = $((total + HOGS_FIT)) ] ||
    fail "counters: $(grep -E '^netpulse_(ingest_(batches|samples|dup)|rrd_write_seconds_count)' "$T/metrics")"
for i in $(seq -w 1 "$AGENTS"); do
    [ "$("$HELPER" applied "$DB" "a$i")" = $((BATCHES + 1)) ] || fail "a$i applied seq"
done
python3 - "$T" "$AGENTS" "$BATCHES" "$IFACES" "$PER_BATCH" "$T0" "$HOGS" "${refused[@]}" \
    <<'PYEOF' || fail "RRD contents"
import os, subprocess, sys
t = sys.argv[1]
agents, batches, ifaces, per_batch, t0, hogs = map(int, sys.argv[2:8])
refused = {int(x) for x in sys.argv[8:]}
daemon = ["--daemon", f"unix:{t}/rrdcached.sock"]
polls = (batches + 1) * per_batch // ifaces
def rows(path):
    out = subprocess.run(["rrdtool", "fetch", path, "AVERAGE", "-r", "60", "-s", str(t0 - 600),
                          "-e", str(t0 + (polls + 10) * 60)] + daemon,
                         check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        if ":" in line and "nan" not in line:
            ts, vals = line.split(":")
            got[int(ts)] = [float(v) for v in vals.split()]
    return got
for a in range(1, agents + 1):
    for i in range(ifaces):
        got = rows(f"{t}/data/rrd/a{a:02d}/if+edge+eth{i}.rrd")
        want = {t0 + p * 60: 1e6 + i * 1000 + p % 1000 for p in range(polls)}
        assert sorted(got) == sorted(want), (a, i, sorted(set(got) ^ set(want)))
        for ts, v in want.items():
            assert abs(got[ts][0] - v) < 1e-6, (a, i, ts, got[ts], v)
for h in range(1, hogs + 1):
    d = f"{t}/data/rrd/h{h:02d}"
    if h in refused:
        assert not os.path.exists(d), d
    else:
        assert list(rows(f"{d}/if+edge+eth0.rrd")) == [t0 + 60], h
PYEOF
for i in "${refused[@]}"; do
    [ "$("$HELPER" applied "$DB" "$(printf 'h%02d' "$i")")" = 0 ] || fail "refused hog $i stored"
done
ok "RRD: $AGENTS agents x $IFACES interfaces x $(((BATCHES + 1) * PER_BATCH / IFACES)) polls," \
    "each once with its value; the refused batches nowhere, the parked big ones stored"
stop_collector
echo "PASS (ingest_overload) $(python3 -c "print(f'posted to drained {$T_DONE - $T_POST:.2f} s')")"
