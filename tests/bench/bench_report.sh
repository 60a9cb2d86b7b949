#!/bin/sh
# Annual report benchmark (issue 7): `netpulse report --year 2024` for SITES
# schools (default 600) each with a full leap year of 5-minute data (105,408
# rows in and out), outages and a circuit upgrade; wall time and peak RSS of
# the HTML report (graphs rendered by librrd) and of the JSON report (figures
# only), beside a peer on the same files in the same run: rrdtool graph
# computing the 95th percentile of each file (VDEF PERCENT, PRINT). Prints
# figures; never fails on time.
#
#   tests/bench/bench_report.sh [BUILD_DIR]        (default: build)
#   env: SITES=600 WORK=DIR KEEP=1 (keep WORK)
#
# The RRDs are three templates written by tests/integration/report/make_data.py
# (rrdtool create/update) and copied per school, so building the input takes
# seconds, not an hour of rrdtool update.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
NP=$BUILD/collector/netpulse
SITES=${SITES:-600}
WORK=${WORK:-$(mktemp -d /tmp/netpulse-bench-report.XXXXXX)}

[ -x "$NP" ] || { echo "bench_report: build netpulse first ($NP)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_report: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
mkdir -p "$WORK"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

echo "bench_report: building $SITES schools in $WORK" >&2
mkdir -p "$WORK/tmpl"
python3 "$ROOT/tests/integration/report/make_data.py" "$WORK/tmpl"
cat >"$WORK/collector.conf" <<CONF
[collector]
listen = 127.0.0.1:8443
plain_http = yes
data_dir = $WORK/data
CONF
python3 - "$WORK" "$SITES" <<'PY'
import os, shutil, sys
work, n = sys.argv[1], int(sys.argv[2])
tmpl = ["elem-a", "high-b", "elem-c"]
types = {"elem-a": "elementary", "high-b": "high", "elem-c": "elementary"}
rates = {"elem-a": "1000Mbps", "high-b": "500Mbps", "elem-c": "200Mbps"}
Y0, Y1 = 1704067200, 1735689600
csv = ["id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts"]
sql = ["BEGIN;"]
for i in range(n):
    t = tmpl[i % 3]
    sid = "school-%04d" % i
    d = os.path.join(work, "data", "rrd", sid)
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(os.path.join(work, "tmpl", "data", "rrd", t, "if+edge+wan0.rrd"),
                    os.path.join(d, "if+edge+wan0.rrd"))
    csv.append("%s,School %d,%s,%s,100Mbps,2021," % (sid, i, types[t], rates[t]))
    sql.append("INSERT INTO devices (site_id, device, first_seen_ms, last_seen_ms) VALUES"
               " ('%s', 'edge', %d, %d);" % (sid, Y0 * 1000, Y1 * 1000))
    sql.append("INSERT INTO interfaces (site_id, device, iface, if_name, if_index, if_alias,"
               " if_descr, speed_bps, oper_status, admin_status, first_seen_ms, last_seen_ms)"
               " VALUES ('%s', 'edge', 'wan0', 'wan0', 1, 'uplink', 'wan0', 1000000000, 1, 1,"
               " %d, %d);" % (sid, Y0 * 1000, Y1 * 1000))
    for k in range(30):
        s = Y0 + 86400 * (3 + 12 * k) + 3600 * (i % 24)
        sql.append("INSERT INTO events (site_id, type, start_ms, end_ms, state) VALUES"
                   " ('%s', 'uplink_down', %d, %d, 'closed');" % (sid, s * 1000, (s + 900) * 1000))
    sql.append("INSERT INTO circuit_rates (site_id, from_ms, rate_bps) VALUES"
               " ('%s', %d, 100000000), ('%s', %d, 1000000000);"
               % (sid, Y0 * 1000, sid, 1719792000 * 1000))
sql.append("COMMIT;")
open(os.path.join(work, "sites.csv"), "w").write("\n".join(csv) + "\n")
open(os.path.join(work, "bench.sql"), "w").write("\n".join(sql) + "\n")
PY
"$NP" -c "$WORK/collector.conf" site import "$WORK/sites.csv" 2>/dev/null
sqlite3 "$WORK/data/state.db" <"$WORK/bench.sql"
sync

measure() { # LABEL CMD...: prints wall seconds and peak RSS
    label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" ||
        { echo "bench_report: $label failed: $(tail -3 "$WORK/err")" >&2; exit 1; }
    read -r secs kb <"$WORK/time"
    printf '%-44s %8.2f s %8.1f MiB\n' "$label" "$secs" "$(awk "BEGIN{print $kb / 1024}")"
}

echo "netpulse report, $SITES schools x 105,408 five-minute rows (2024), $(nproc) cores"
# A first pass reads the files into the page cache; the figures are the second.
"$NP" -c "$WORK/collector.conf" report --year 2024 --format json -o "$WORK/r.json" 2>/dev/null
measure "report --format json (figures only)" \
    "$NP" -c "$WORK/collector.conf" report --year 2024 --format json -o "$WORK/r.json"
measure "report --format html (with $SITES graphs)" \
    "$NP" -c "$WORK/collector.conf" report --year 2024 --format html -o "$WORK/r.html"
measure "report --format html --no-graphs" \
    "$NP" -c "$WORK/collector.conf" report --year 2024 --format html --no-graphs \
    -o "$WORK/r2.html"
printf '%-44s %8s\n' "HTML size" "$(du -h "$WORK/r.html" | cut -f1)"

# The peer: rrdtool's own 95th percentile (VDEF PERCENT) of every file, one
# rrdtool process per school, as a cron script around rrdtool would do it.
cat >"$WORK/peer.sh" <<PEER
#!/bin/sh
for f in $WORK/data/rrd/*/if+edge+wan0.rrd; do
    rrdtool graph /dev/null --start 1704067200 --end 1735689600 \
        "DEF:i=\$f:in_bps:AVERAGE:step=300" "DEF:o=\$f:out_bps:AVERAGE:step=300" \
        VDEF:pi=i,95,PERCENT VDEF:po=o,95,PERCENT PRINT:pi:%.3lf PRINT:po:%.3lf
done
PEER
measure "peer: rrdtool graph VDEF 95 PERCENT, per file" sh "$WORK/peer.sh"
