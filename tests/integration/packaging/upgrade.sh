#!/bin/bash
# Upgrades keep data: the first release's packages, installed and used, then
# this tree's packages installed over them.
#
#   upgrade.sh SOURCE_DIR BUILD_DIR WORK_DIR
#
# 1. The packages of netpulse 0.1.0 (git commit OLD_COMMIT, the first release)
#    are built from that commit's tree with its own packaging/build-deb.sh and
#    cached in WORK_DIR/cache/deb-old-COMMIT; this tree's packages come from
#    lib.sh (shared with run.sh) and must have a higher version. A clone
#    without that commit (shallow) fails here, loudly.
# 2. In a fresh Debian 12 root (lib.sh, separate from run.sh's): 0.1.0 is
#    installed and configured for loopback (local edits of both conffiles);
#    the old `netpulse` imports a site, enrols its agent, adds a dashboard
#    user with an API token, a maintenance window and a circuit rate; the old
#    agent polls an snmpd on loopback and probes the collector until RRD rows
#    exist; the collector stops and the agent spools some batches; the admin
#    tightens /var/lib/netpulse to 0700.
# 3. This tree's packages are installed over them (apt, --force-confold). Then:
#    nothing under /var/lib/netpulse and /etc/netpulse changed (contents,
#    owner, mode) before the daemons start; the new collector and agent run as
#    netpulse; the spooled batches drain (acked, each seq accepted once); the
#    old agent token keeps delivering, the old user logs in and its old API
#    token works; state.db is at this tree's schema version with every old row
#    (and alerts.db at its version); the same RRD files hold the same old rows
#    and grow.
# 4. remove keeps every data file and the configs; purge removes
#    /var/lib/netpulse and /etc/netpulse.
# Exits 77 (skipped) without root, or without debootstrap or network access
# when no cached root exists.
set -eu
SRC=$1
WORK=$3 # $2, the build folder, is not needed (run.sh's arguments, for symmetry)
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "needs root: skipped"; exit 77; }
. "$HERE/lib.sh"

OLD_COMMIT=2f39a565bc253daa0cc6028dd5e60ba4917c61f9 # netpulse 0.1.0, the first release
CACHE=$WORK/cache
UW=$WORK/upgrade
ROOT=$UW/root
LOG=$UW/apt.log
CHECK="python3 $HERE/upgrade_check.py"
DATA=$ROOT/var/lib/netpulse
SITE=school-up
PW=first-release-pw
mkdir -p "$CACHE" "$UW"
rm -rf "${UW:?}"/old "$UW"/new "$UW"/*.log "$UW"/*.json "$UW"/*.txt
: >"$LOG"
CPID=""
APID=""
SPID=""
cleanup() {
    for p in $APID $CPID $SPID; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    np_root_cleanup
}
trap cleanup EXIT
t_start=$(date +%s)

# ---- 1. old and new packages
np_old_debs_locked() {
    local out=$CACHE/deb-old-$OLD_COMMIT tmp=$CACHE/deb-old.tmp
    if ls "$out"/netpulse-agent_*.deb "$out"/netpulse-collector_*.deb >/dev/null 2>&1; then
        echo "old packages: cached in $out"
        return 0
    fi
    if ! git -C "$SRC" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
        echo "FAIL: commit $OLD_COMMIT (netpulse 0.1.0, the first release) is not in the" \
            "git history of $SRC (a shallow clone? git fetch --unshallow): the upgrade" \
            "from it cannot be tested" >&2
        return 1
    fi
    rm -rf "$tmp"
    mkdir -p "$tmp/tree"
    git -C "$SRC" archive "$OLD_COMMIT" | tar -x -C "$tmp/tree"
    "$tmp/tree/packaging/build-deb.sh" "$tmp/deb" || return 1
    mkdir -p "$tmp/final"
    cp "$tmp"/deb/netpulse-agent_*.deb "$tmp"/deb/netpulse-collector_*.deb "$tmp/final/"
    mv "$tmp/final" "$out"
    rm -rf "$tmp"
}
np_locked "$CACHE/deb-old.lock" np_old_debs_locked || { echo "FAIL: no 0.1.0 packages"; exit 1; }
mkdir -p "$UW/old"
cp "$CACHE/deb-old-$OLD_COMMIT"/netpulse-agent_*.deb "$CACHE/deb-old-$OLD_COMMIT"/netpulse-collector_*.deb \
    "$UW/old/"
OLD_AGENT=$(ls "$UW"/old/netpulse-agent_*.deb)
OLD_COLL=$(ls "$UW"/old/netpulse-collector_*.deb)
np_new_debs "$UW/new" || { echo "FAIL: build-deb.sh"; exit 1; }
OLD_V=$(dpkg-deb -f "$OLD_COLL" Version)
NEW_V=$(dpkg-deb -f "$COLL_DEB" Version)
[ "$(dpkg-deb -f "$OLD_AGENT" Version)" = "$OLD_V" ] || fail "old agent version differs"
[ "$(dpkg-deb -f "$AGENT_DEB" Version)" = "$NEW_V" ] || fail "new agent version differs"
if dpkg --compare-versions "$NEW_V" gt "$OLD_V"; then
    ok "version $NEW_V > $OLD_V"
else
    echo "FAIL: this tree's version $NEW_V is not above $OLD_V: add an entry to packaging/debian/changelog"
    exit 1
fi
echo "packages ready: $(($(date +%s) - t_start)) s"

# ---- 2. the old release installed and used
rc=0
np_root_new || rc=$?
if [ $rc -ne 0 ]; then
    echo "no Debian 12 root: upgrade test skipped"
    [ $failures -eq 0 ] && [ $rc -eq 77 ] || exit 1
    exit 77
fi
cp "$OLD_AGENT" "$OLD_COLL" "$AGENT_DEB" "$COLL_DEB" "$ROOT/debs/"
np_apt install /debs/"$(basename "$OLD_AGENT")" /debs/"$(basename "$OLD_COLL")" ||
    { tail -20 "$LOG"; echo "FAIL: apt-get install of $OLD_V"; exit 1; }
ok "installed $OLD_V"

free_port() { # tcp|udp: a port the kernel handed out and released
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}
# The collector keeps one port across the upgrade: the agent's config names it.
PORT=$(free_port tcp)
SPORT=$(free_port udp)
mkdir -p "$UW/snmpd"
printf 'rocommunity np-upgrade 127.0.0.1\nsysLocation netpulse upgrade test\n' >"$UW/snmpd/snmpd.conf"
SNMP_PERSISTENT_DIR=$UW/snmpd MIBS="" snmpd -f -Lf "$UW/snmpd/snmpd.log" -C -c "$UW/snmpd/snmpd.conf" \
    "udp:127.0.0.1:$SPORT" &
SPID=$!

np_collector_loopback "$PORT"
printf '\n# local edit before the upgrade\n[targets]\nuptime = 99.9%%\n' >>"$ROOT/etc/netpulse/collector.conf"
NP="as_np /usr/bin/netpulse -c /etc/netpulse/collector.conf"
printf 'id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts\n%s,Upgrade High,high,1Gbps,100Mbps,2024,it@example.org\n' \
    "$SITE" >"$ROOT/tmp/sites.csv"
$NP site import /tmp/sites.csv >>"$UW/cli.log" 2>&1 || fail "old netpulse site import"
TOKEN=$($NP agent enrol "$SITE" 2>>"$UW/cli.log" | head -1)
[ -n "$TOKEN" ] || fail "old netpulse agent enrol"
echo "$PW" | $NP user add admin1 --admin --password-stdin >>"$UW/cli.log" 2>&1 || fail "old netpulse user add"
UTOKEN=$($NP user token admin1 2>>"$UW/cli.log" | head -1)
[ -n "$UTOKEN" ] || fail "old netpulse user token"
$NP maintenance add "$SITE" 2026-01-05 2026-01-06 "router swap" >>"$UW/cli.log" 2>&1 ||
    fail "old netpulse maintenance add"
$NP circuit set "$SITE" 2026-01-01 2Gbps >>"$UW/cli.log" 2>&1 || fail "old netpulse circuit set"
np_agent_loopback "$SITE" "$PORT" "$TOKEN"
cat >>"$ROOT/etc/netpulse/agent.conf" <<EOF

[snmp edge]
host = 127.0.0.1
port = $SPORT
version = 2c
community = np-upgrade
interval = 1s
timeout = 300ms
retries = 1
include_loopback = yes
EOF
in_root /usr/sbin/netpulse-agent -c /etc/netpulse/agent.conf --check ||
    { echo "FAIL: old agent --check"; exit 1; }

api() { # PATH: GET with the old user's API token
    curl -sS --max-time 5 -H "Authorization: Bearer $UTOKEN" "http://127.0.0.1:$PORT$1"
}
applied_seq() {
    api "/api/v1/sites/$SITE" 2>/dev/null |
        python3 -c 'import json, sys; print((json.load(sys.stdin).get("agent") or {}).get("applied_seq") or 0)' \
            2>/dev/null || echo 0
}
np_start_collector "$UW/collector-old.log" /tmp/collector.port || { echo "FAIL: old collector did not start"; exit 1; }
np_start_agent "$UW/agent-old.log"
np_runs_as_netpulse "$CPID" "old collector"
# RRD rows are 1-minute averages (xff 0.5): run until a minute with at least
# 35 s of data has ended, so that the old files hold complete rows.
t_data=""
for _ in $(seq 150); do
    [ -z "$t_data" ] && [ -e "$DATA/rrd/$SITE/if+edge+lo.rrd" ] && t_data=$(date +%s)
    if [ -n "$t_data" ]; then
        m=$(((t_data + 59) / 60 * 60)) # the first whole minute with data
        [ $((t_data % 60)) -le 25 ] && m=$((t_data / 60 * 60))
        [ "$(date +%s)" -ge $((m + 63)) ] && break
    fi
    sleep 1
done
A_OLD=$(applied_seq)
[ "$A_OLD" -ge 3 ] && ok "old agent delivered, applied seq $A_OLD" || fail "old collector applied seq $A_OLD"
np_runs_as_netpulse "$APID" "old agent"
np_stop "$CPID" || fail "old collector exit status"
CPID=""
# The agent spools while the collector is down.
pending=""
for _ in $(seq 40); do
    pending=$($CHECK spool "$DATA/spool" | cut -d' ' -f2-)
    [ "$(echo "$pending" | wc -w)" -ge 3 ] && break
    sleep 0.5
done
np_stop "$APID" || fail "old agent exit status"
APID=""
read -r ACKED_OLD pending <<<"$($CHECK spool "$DATA/spool")"
N_PENDING=$(echo "$pending" | wc -w)
[ "$N_PENDING" -ge 3 ] && ok "$N_PENDING batches spooled (seqs $pending), acked $ACKED_OLD" ||
    fail "spool holds $N_PENDING batches: $pending"
MAX_PENDING=${pending##* }

$CHECK db-dump "$DATA/state.db" "$UW/state-old.json"
$CHECK db-dump "$DATA/alerts.db" "$UW/alerts-old.json"
A0=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["tables"]["applied_batches"]
print(t["rows"][0][t["cols"].index("seq")])' "$UW/state-old.json")
for t in sites agents applied_batches devices interfaces maintenance circuit_rates web_users web_tokens; do
    python3 -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1]))["tables"][sys.argv[2]]["rows"])' \
        "$UW/state-old.json" "$t" || fail "old state.db has no row in $t"
done
# The old RRD rows: the 1-minute rows of the last 5 minutes each file
# completed (up to its last update).
ls "$DATA/rrd/$SITE" >"$UW/rrd-files-old.txt"
rrd_last() { rrdtool lastupdate "$1" | awk -F: '/^[0-9]+:/ { print $1 }'; }
rrd_rows() { # FILE LAST
    rrdtool fetch "$1" AVERAGE -r 60 -s $(($2 / 60 * 60 - 300)) -e $(($2 / 60 * 60))
}
for f in $(cat "$UW/rrd-files-old.txt"); do
    rrd_last "$DATA/rrd/$SITE/$f" >"$UW/rrd-$f-last-old.txt"
    rrd_rows "$DATA/rrd/$SITE/$f" "$(cat "$UW/rrd-$f-last-old.txt")" >"$UW/rrd-$f-old.txt"
done
for f in if+edge+lo.rrd probe+collector.rrd; do
    grep -q "^ *[0-9]*: [0-9]" "$UW/rrd-$f-old.txt" 2>/dev/null &&
        ok "old $f holds rows: $(grep -c "^ *[0-9]*: [0-9]" "$UW/rrd-$f-old.txt") known minutes" ||
        fail "old $f: no known row: $(tail -3 "$UW/rrd-$f-old.txt" 2>/dev/null)"
done

# The admin's own choice, which the upgrade must keep.
chmod 0700 "$DATA"
$CHECK tree "$DATA" >"$UW/data-before.txt"
$CHECK tree "$ROOT/etc/netpulse" >"$UW/etc-before.txt"

# ---- 3. the upgrade
t0=$(date +%s)
np_apt -o Dpkg::Options::=--force-confold install \
    /debs/"$(basename "$AGENT_DEB")" /debs/"$(basename "$COLL_DEB")" ||
    { tail -20 "$LOG"; echo "FAIL: apt-get install of $NEW_V over $OLD_V"; exit 1; }
echo "upgrade: $(($(date +%s) - t0)) s"
for p in netpulse-agent netpulse-collector; do
    v=$(in_root dpkg-query -W -f '${Version} ${db:Status-Abbrev}' "$p")
    [ "$v" = "$NEW_V ii " ] && ok "$p $NEW_V installed" || fail "$p: $v"
done
$CHECK tree "$DATA" >"$UW/data-after.txt"
$CHECK tree "$ROOT/etc/netpulse" >"$UW/etc-after.txt"
diff "$UW/data-before.txt" "$UW/data-after.txt" &&
    ok "upgrade left every file under /var/lib/netpulse as it was (contents, owner, mode)" ||
    fail "the upgrade changed /var/lib/netpulse"
# A config whose packaged version changed gets that version beside it.
grep -v '[.]conf[.]dpkg-dist ' "$UW/etc-after.txt" | diff "$UW/etc-before.txt" - &&
    ok "upgrade kept the locally changed configs (contents, owner, mode)" ||
    fail "the upgrade changed /etc/netpulse"
for f in "$ROOT"/etc/netpulse/*.dpkg-dist; do
    if [ -e "$f" ]; then ok "the new packaged config is beside it: /etc/netpulse/${f##*/}"; fi
done

np_start_collector "$UW/collector-new.log" /tmp/collector.port || { echo "FAIL: new collector did not start"; exit 1; }
[ "$PORT" = "$(cat "$ROOT/tmp/collector.port")" ] || fail "new collector not on port $PORT"
np_start_agent "$UW/agent-new.log"
acked=0
a=0
for _ in $(seq 120); do
    acked=$($CHECK spool "$DATA/spool" | cut -d' ' -f1)
    a=$(applied_seq)
    [ "$acked" -ge "$MAX_PENDING" ] && [ "$a" -ge $((MAX_PENDING + 3)) ] && break
    sleep 0.5
done
[ "$acked" -ge "$MAX_PENDING" ] && ok "spool drained: acked $acked >= $MAX_PENDING" ||
    fail "spool not drained: acked $acked, pending up to $MAX_PENDING"
[ "$a" -ge $((MAX_PENDING + 3)) ] && ok "the old agent token keeps delivering: applied seq $a" ||
    fail "applied seq $a after the upgrade (spooled up to $MAX_PENDING)"
np_runs_as_netpulse "$CPID" "new collector"
np_runs_as_netpulse "$APID" "new agent"

# The old dashboard user: password login (a session) and the old API token.
login() { # PASSWORD: "CODE LOCATION"
    curl -sS --max-time 10 -o /dev/null -c "$UW/cookies.txt" -w '%{http_code} %{redirect_url}' \
        --data-urlencode user=admin1 --data-urlencode "password=$1" --data-urlencode next=/ \
        "http://127.0.0.1:$PORT/login"
}
r=$(login "$PW")
case "$r" in
"303 "*error*) fail "old user's login refused: $r" ;;
"303 "*) ok "old user logs in: $r" ;;
*) fail "login answered $r" ;;
esac
user=$(curl -sS --max-time 5 -b "$UW/cookies.txt" "http://127.0.0.1:$PORT/api/v1/session" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("user"))' 2>/dev/null || true)
[ "$user" = admin1 ] && ok "session of admin1" || fail "session user: $user"
case "$(login wrong-password)" in "303 "*error*) ;; *) fail "a wrong password was not refused" ;; esac
user=$(api /api/v1/session | python3 -c 'import json, sys; print(json.load(sys.stdin).get("user"))' \
    2>/dev/null || true)
[ "$user" = admin1 ] && ok "old API token works" || fail "old API token: $user"

np_stop "$APID" || fail "new agent exit status"
APID=""
sleep 1
A_FINAL=$(applied_seq)
metric() { api /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
B=$(metric netpulse_ingest_batches_total)
D=$(metric netpulse_ingest_duplicates_total)
# Every seq after the old collector's last applied one was accepted once.
[ "${B:-x}" = $((A_FINAL - A0)) ] &&
    ok "new collector accepted $B batches = seqs $((A0 + 1))..$A_FINAL once ($D duplicates acked)" ||
    fail "new collector accepted ${B:-?} batches for seqs $((A0 + 1))..$A_FINAL ($D duplicates)"
np_stop "$CPID" || fail "new collector exit status"
CPID=""

want=$(sed -n 's/^#define NP_STATE_DB_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$SRC/collector/state_db.h")
$CHECK db-dump "$DATA/state.db" "$UW/state-new.json"
v=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["user_version"])' "$UW/state-new.json")
[ "$v" = "$want" ] && ok "state.db schema version $v" || fail "state.db schema version $v, want $want"
$CHECK db-compare "$UW/state-old.json" "$UW/state-new.json" >"$UW/state-compare.txt" &&
    ok "state.db kept every old row: $(tr '\n' ' ' <"$UW/state-compare.txt")" ||
    fail "state.db lost data: $(cat "$UW/state-compare.txt")"
want=$(sed -n 's/^#define NP_ALERT_DB_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$SRC/collector/alert_db.h")
$CHECK db-dump "$DATA/alerts.db" "$UW/alerts-new.json"
v=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["user_version"])' "$UW/alerts-new.json")
[ "$v" = "$want" ] && ok "alerts.db schema version $v" || fail "alerts.db schema version $v, want $want"
$CHECK db-compare "$UW/alerts-old.json" "$UW/alerts-new.json" >"$UW/alerts-compare.txt" ||
    fail "alerts.db lost data: $(cat "$UW/alerts-compare.txt")"

for f in $(cat "$UW/rrd-files-old.txt"); do
    p=$DATA/rrd/$SITE/$f
    [ -e "$p" ] || { fail "RRD $f is gone"; continue; }
    rrd_rows "$p" "$(cat "$UW/rrd-$f-last-old.txt")" | cmp -s - "$UW/rrd-$f-old.txt" ||
        fail "old rows of $f changed"
    [ "$(rrd_last "$p")" -gt "$(cat "$UW/rrd-$f-last-old.txt")" ] || fail "$f did not grow"
done
ok "$(wc -l <"$UW/rrd-files-old.txt") RRD files kept their old rows and grew"
[ "$(stat -c '%a' "$DATA")" = 700 ] && ok "the admin's mode of /var/lib/netpulse kept" ||
    fail "/var/lib/netpulse mode $(stat -c '%a' "$DATA")"
NP_UID=$(in_root id -u netpulse)
find "$DATA" -mindepth 1 ! -uid "$NP_UID" -printf '%p\n' | grep . &&
    fail "files under /var/lib/netpulse not owned by netpulse" || ok "data owned by netpulse"

# ---- 4. remove keeps, purge removes
$CHECK tree "$DATA" >"$UW/data-before-remove.txt"
np_apt remove netpulse-agent netpulse-collector || fail "apt-get remove"
$CHECK tree "$DATA" | diff "$UW/data-before-remove.txt" - >/dev/null &&
    ok "remove kept every data file as it was" || fail "remove changed /var/lib/netpulse"
[ -e "$ROOT/etc/netpulse/agent.conf" ] && [ -e "$ROOT/etc/netpulse/collector.conf" ] &&
    ok "remove kept the configs" || fail "remove lost a config"
np_apt purge netpulse-agent netpulse-collector || fail "apt-get purge"
[ ! -e "$DATA" ] && ok "purge removed /var/lib/netpulse" ||
    fail "purge left $(find "$DATA" | head -5 | tr '\n' ' ')"
[ ! -e "$ROOT/etc/netpulse" ] && ok "purge removed /etc/netpulse" ||
    fail "purge left $(find "$ROOT/etc/netpulse" | tr '\n' ' ')"

echo "upgrade test: $(($(date +%s) - t_start)) s"
if [ $failures -ne 0 ]; then
    for l in agent-old agent-new collector-old collector-new; do
        echo "---- $l log ----"
        tail -n 15 "$UW/$l.log" || true
    done
    echo "$failures failure(s)"
    exit 1
fi
echo "packaging upgrade: all checks passed"
