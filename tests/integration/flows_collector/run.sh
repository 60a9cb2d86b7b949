#!/bin/bash
# Flow summaries through the real collector (issue 6, deliverable 6).
#
#   run.sh COLLECTOR MAKE_BATCH FLOW_BATCH PCAP_DIR MODE
#
# FLOW_BATCH turns real captures into batches with the agent's own flow code
# (aggregator + np_flow_wire_add); they are posted over TLS to a collector on
# 127.0.0.1 (ephemeral port). Checked: the per-class bits/s in
# rrd/SITE/flow+SOURCE.rrd (rrdtool fetch) equal bytes * 8 / interval of each
# summary; GET /api/v1/sites/{id}/flows serves the latest summary per source
# (by app, by protocol, top talkers, top flows; newest first with
# intervals=N); no local address appears in full; a replayed batch and a
# restart change nothing; a summary for the same interval replaces the old.
# MODE: direct (librrd) or rrdcached (a daemon started here).
set -eu

COLLECTOR=$1
HELPER=$2
FLOWGEN=$3
PCAPS=$4
MODE=$5
HERE=$(cd "$(dirname "$0")" && pwd)

NP_TEST=flows/$MODE
# shellcheck source=../lib/collector.sh
. "$HERE/../lib/collector.sh"

for f in youtube_quic.pcap zoom.pcap http_ipv6.pcap test.pcap; do
    [ -r "$PCAPS/$f" ] || fail "test capture $PCAPS/$f missing"
done
np_make_cert

DB="$T/data/state.db"
np_start_rrdcached

np_collector_conf
cat >>"$T/collector.conf" <<CONF

[dashboard]
public = yes
CONF

start_collector() { np_start_collector; }

post() { # post FILE: must be acknowledged
    local code
    code=$(CURL -o "$T/resp" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: application/x-protobuf" --data-binary "@$1" "$(URL /api/v1/ingest)") ||
        code=000
    [ "$code" = 200 ] || fail "post $1: HTTP $code $(cat "$T/resp" 2>/dev/null)"
}

wait_applied() { # wait_applied SEQ
    for _ in $(seq 100); do
        [ "$("$HELPER" applied "$DB" school-1)" -ge "$1" ] && return 0
        sleep 0.1
    done
    fail "never reached applied seq $1"
}

# gen NAME SEQ SOURCE END_S PCAP: batch $T/NAME.pb, expected summary $T/NAME.json
gen() {
    "$FLOWGEN" "$T/$1.pb" school-1 "$2" "$3" "$4" 60 "$PCAPS/$5" >"$T/$1.json" ||
        fail "flow_batch $1"
}

NOW=$(date +%s)
T1=$(((NOW - 3600) / 60 * 60)) # minute boundaries: one RRD row per summary
T2=$((T1 + 60))
T3=$((T1 + 120))

TOKEN=$("$HELPER" enrol "$DB" school-1)
gen b1 1 wan "$T1" youtube_quic.pcap
gen b2 2 wan "$T2" zoom.pcap
gen b3 3 lan2 "$T2" http_ipv6.pcap
gen b4 4 wan "$T3" test.pcap

start_collector
for b in b1 b2 b3; do post "$T/$b.pb"; done
wait_applied 3
ok "three flow batches acknowledged and applied"

# ---- RRD: per-class bits/s of each summary at its end time -------------------
check_rrd() { # check_rrd SOURCE TIME EXPECTED_JSON
    local file="$T/data/rrd/school-1/flow+$1.rrd"
    [ -f "$file" ] || fail "no $file"
    # shellcheck disable=SC2086
    rrdtool fetch "$file" AVERAGE -r 60 -s "$(($2 - 120))" -e "$(($2 + 60))" $FETCH_DAEMON \
        >"$T/fetch.txt" || fail "rrdtool fetch $file"
    python3 - "$T/fetch.txt" "$2" "$3" <<'PY' || fail "RRD values of $1 at $2"
import json, sys
rows = open(sys.argv[1]).read().split("\n")
names = rows[0].split()
want = json.load(open(sys.argv[3]))
expect = {n: 0.0 for n in ["web", "video", "dns", "quic", "vpn", "email", "other"]}
for app, b in want["by_app"].items():
    expect[app] += b * 8 / 60
expect["in"] = want["bytes_in"] * 8 / 60
expect["out"] = want["bytes_out"] * 8 / 60
row = [r for r in rows if r.startswith(sys.argv[2] + ":")]
assert row, "no row at %s" % sys.argv[2]
vals = [float(v) for v in row[0].split(":")[1].split()]
got = dict(zip(names, vals))
for n, e in expect.items():
    g = got[n]
    if not abs(g - e) <= 1e-6 * max(1.0, e):
        sys.exit("%s: rrd %r, summary %r" % (n, g, e))
assert sum(expect.values()) > 0, "an empty summary proves nothing"
print("  %s: %s" % (sys.argv[2], {k: round(v) for k, v in got.items() if v}))
PY
}
check_rrd wan "$T1" "$T/b1.json"
check_rrd wan "$T2" "$T/b2.json"
check_rrd lan2 "$T2" "$T/b3.json"
ok "flow+SOURCE.rrd: each class's bits/s = its bytes * 8 / interval"

# ---- API ---------------------------------------------------------------------
check_api() { # check_api LABEL: latest per source, newest first, privacy
    CURL "$(URL /api/v1/sites/school-1/flows?intervals=5)" >"$T/api.json" || fail "GET flows"
    python3 - "$T" <<'PY' || fail "API flows ($1)"
import ipaddress, json, sys
t = sys.argv[1]
d = json.load(open(t + "/api.json"))
assert d["site"] == "school-1", d["site"]
src = {s["source"]: s["intervals"] for s in d["sources"]}
assert sorted(src) == ["lan2", "wan"], sorted(src)
assert [i["end_ms"] for i in src["wan"]] == sorted([i["end_ms"] for i in src["wan"]], reverse=True)
def same(api, name):
    want = json.load(open("%s/%s.json" % (t, name)))
    assert api["end_ms"] == want["end_ms"] and api["bytes"] == want["bytes"], (api["end_ms"], name)
    assert {a["name"]: a["bytes"] for a in api["by_app"]} == want["by_app"], name
    assert [x["address"] for x in api["top_talkers"]] == [x["address"] for x in want["top_talkers"]]
    assert [(f["src"], f["dst"], f["bytes"]) for f in api["top_flows"]] == \
        [(f["src"], f["dst"], f["bytes"]) for f in want["top_flows"]], name
    assert api["by_protocol"] and api["top_talkers"] and api["top_flows"], name
local = [ipaddress.ip_network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")]
for ivs in src.values():
    for iv in ivs:
        for a in [x["address"] for x in iv["top_talkers"]] + \
                 [f[k] for f in iv["top_flows"] for k in ("src", "dst")]:
            if "/" in a:
                continue
            ip = ipaddress.ip_address(a)
            assert not any(ip in n for n in local), "full local address " + a
for name, ivs in [("b2", src["wan"]), ("b3", src["lan2"])]:
    same(ivs[0], name)
same(src["wan"][1], "b1")
print("  wan: %d intervals, lan2: %d" % (len(src["wan"]), len(src["lan2"])))
PY
}
check_api "first"
ok "/flows: latest summary per source, newest first, what the agent sent, no full local address"

one=$(CURL "$(URL /api/v1/sites/school-1/flows)" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(sum(len(s['intervals']) for s in d['sources']))")
[ "$one" = 2 ] || fail "default intervals=1 gave $one summaries (want 1 per source)"
code=$(CURL -o /dev/null -w '%{http_code}' "$(URL /api/v1/sites/school-1/flows?intervals=0)")
[ "$code" = 400 ] || fail "intervals=0: HTTP $code"
code=$(CURL -o /dev/null -w '%{http_code}' "$(URL /api/v1/sites/nosuch/flows)")
[ "$code" = 404 ] || fail "unknown site: HTTP $code"
ok "intervals default 1; 400 on a bad count; 404 for an unknown site"

# ---- replay, restart, replacement --------------------------------------------
post "$T/b1.pb" # a duplicate: acknowledged, changes nothing
check_api "after duplicate"
stop_collector
start_collector # the journal replays; applying again must not duplicate
check_api "after restart"
ok "a duplicate batch and a restart change nothing"

# A later batch for the same interval end (e.g. re-sent after an agent
# restart) replaces the stored summary; RRD keeps what it had (no past writes).
gen b5 5 wan "$T2" test.pcap
post "$T/b5.pb"
post "$T/b4.pb" # seq 4 after 5: below the applied seq, skipped
wait_applied 5
CURL "$(URL /api/v1/sites/school-1/flows?intervals=5)" >"$T/api.json"
python3 - "$T" "$T2" <<'PY' || fail "replacement"
import json, sys
t, t2 = sys.argv[1], int(sys.argv[2])
d = json.load(open(t + "/api.json"))
wan = [s for s in d["sources"] if s["source"] == "wan"][0]["intervals"]
want = json.load(open(t + "/b5.json"))
assert [i["end_ms"] for i in wan] == [t2 * 1000, (t2 - 60) * 1000], [i["end_ms"] for i in wan]
assert wan[0]["bytes"] == want["bytes"], (wan[0]["bytes"], want["bytes"])
PY
check_rrd wan "$T2" "$T/b2.json"
ok "same interval again: the API row is replaced, the RRD row kept"
stop_collector
echo "PASS flows_collector/$MODE"
