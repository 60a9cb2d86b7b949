#!/bin/bash
# The Debian packages, built and installed for real.
#
#   run.sh SOURCE_DIR BUILD_DIR WORK_DIR
#
# 1. packaging/build-deb.sh builds netpulse-agent and netpulse-collector from
#    the tree (lintian: no error); their contents, conffiles and maintainer
#    scripts are checked, and the committed packaging/*.conf.example must
#    equal what packaging/gen-conf-examples.py makes from BUILD_DIR's --help.
# 2. Unless NETPULSE_PKG_ROOT=0: a fresh Debian 12 root (debootstrap
#    --variant=minbase bookworm, cached as WORK_DIR/cache/root.tar with apt's
#    downloads beside it, so reruns need no network but apt-get update)
#    gets both packages with apt. Then, chrooted (no systemd): the netpulse
#    user and /var/lib/netpulse exist, the configs are group netpulse 0640;
#    with the packaged configs adjusted for loopback the collector runs as
#    netpulse (it refuses root), an agent enrolled with the packaged
#    `netpulse` starts as root and drops to netpulse itself, and its batches
#    arrive: /api/v1/sites shows the site's last_seen. Exits 77 (skipped)
#    without root, or without debootstrap or network access when no cached
#    root exists. The cache and the helpers are shared with upgrade.sh (lib.sh).
set -eu
SRC=$1
BUILD=$2
WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "needs root: skipped"; exit 77; }
. "$HERE/lib.sh"

CACHE=$WORK/cache
DEB=$WORK/deb
ROOT=$WORK/root
LOG=$WORK/apt.log
mkdir -p "$CACHE"
: >"$LOG"
CPID=""
APID=""
cleanup() {
    [ -n "$APID" ] && kill -9 "$APID" 2>/dev/null || true
    [ -n "$CPID" ] && kill -9 "$CPID" 2>/dev/null || true
    wait 2>/dev/null || true
    np_root_cleanup
}
trap cleanup EXIT

# ---- 1. build and inspect
np_new_debs "$DEB" || { echo "FAIL: build-deb.sh"; exit 1; }
contains() { # deb path
    dpkg-deb -c "$1" | awk '{print $6}' | grep -qx "./$2" && ok "$(basename "$1") has /$2" ||
        fail "$(basename "$1") lacks /$2"
}
for p in usr/sbin/netpulse-agent etc/netpulse/agent.conf lib/systemd/system/netpulse-agent.service \
    usr/share/man/man8/netpulse-agent.8.gz usr/share/man/man5/netpulse-agent.conf.5.gz; do
    contains "$AGENT_DEB" "$p"
done
for p in usr/sbin/netpulse-collector usr/bin/netpulse etc/netpulse/collector.conf \
    lib/systemd/system/netpulse-collector.service usr/share/man/man1/netpulse.1.gz \
    usr/share/man/man8/netpulse-collector.8.gz usr/share/man/man5/netpulse-collector.conf.5.gz \
    usr/share/netpulse/web/index.html; do
    contains "$COLL_DEB" "$p"
done
ctrl() { dpkg-deb --ctrl-tarfile "$1" | tar -xOf - "./$2"; }
[ "$(ctrl "$AGENT_DEB" conffiles)" = /etc/netpulse/agent.conf ] && ok "agent conffiles" ||
    fail "agent conffiles: $(ctrl "$AGENT_DEB" conffiles)"
[ "$(ctrl "$COLL_DEB" conffiles)" = /etc/netpulse/collector.conf ] && ok "collector conffiles" ||
    fail "collector conffiles"
for d in "$AGENT_DEB" "$COLL_DEB"; do
    ctrl "$d" postinst | grep -q "adduser --system" && ok "$(basename "$d") postinst adds the user" ||
        fail "$(basename "$d") postinst: no adduser"
    dpkg-deb -f "$d" Depends | grep -q "libc6" && ok "$(basename "$d") shlibs Depends" ||
        fail "$(basename "$d") Depends: $(dpkg-deb -f "$d" Depends)"
done
dpkg-deb -f "$AGENT_DEB" Depends | grep -q libcap2 || fail "agent does not depend on libcap2"
mkdir -p "$WORK/conf"
python3 "$SRC/packaging/gen-conf-examples.py" "$BUILD" "$WORK/conf"
for k in agent collector; do
    if cmp -s "$WORK/conf/$k.conf.example" "$SRC/packaging/$k.conf.example"; then
        ok "packaging/$k.conf.example is up to date"
    else
        fail "packaging/$k.conf.example differs from --help: run packaging/gen-conf-examples.py"
    fi
done
for u in netpulse-agent netpulse-collector; do
    score=$(systemd-analyze security --offline=yes "$SRC/packaging/systemd/$u.service" 2>/dev/null |
        sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    echo "systemd-analyze security $u: ${score:-?}"
    if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s >= 2.5) }'; then
        fail "$u exposure $score >= 2.5"
    fi
done

if [ "${NETPULSE_PKG_ROOT:-1}" = 0 ]; then
    echo "NETPULSE_PKG_ROOT=0: install test skipped"
    [ $failures -eq 0 ] || exit 1
    exit 0
fi

# ---- 2. a fresh Debian 12 root
rc=0
np_root_new || rc=$?
if [ $rc -ne 0 ]; then
    echo "no Debian 12 root: install test skipped"
    [ $failures -eq 0 ] && [ $rc -eq 77 ] || exit 1
    exit 77
fi
cp "$AGENT_DEB" "$COLL_DEB" "$ROOT/debs/"
t0=$(date +%s)
if ! np_apt install /debs/"$(basename "$AGENT_DEB")" /debs/"$(basename "$COLL_DEB")"; then
    tail -20 "$LOG"
    echo "FAIL: apt-get install of the packages"
    exit 1
fi
echo "install into the fresh root: $(($(date +%s) - t0)) s"

NP_UID=$(in_root id -u netpulse) || { echo "FAIL: no netpulse user"; exit 1; }
NP_GID=$(in_root id -g netpulse)
ok "netpulse user uid=$NP_UID gid=$NP_GID shell=$(in_root getent passwd netpulse | cut -d: -f7)"
[ "$(stat -c '%u %a' "$ROOT/var/lib/netpulse")" = "$NP_UID 750" ] && ok "/var/lib/netpulse" ||
    fail "/var/lib/netpulse: $(stat -c '%u %a' "$ROOT/var/lib/netpulse")"
[ "$(stat -c '%u' "$ROOT/var/lib/netpulse/spool")" = "$NP_UID" ] && ok "/var/lib/netpulse/spool" ||
    fail "spool folder not netpulse's"
for k in agent collector; do
    [ "$(stat -c '%U %g %a' "$ROOT/etc/netpulse/$k.conf")" = "root $NP_GID 640" ] &&
        ok "/etc/netpulse/$k.conf root:netpulse 0640" ||
        fail "/etc/netpulse/$k.conf: $(stat -c '%U %g %a' "$ROOT/etc/netpulse/$k.conf")"
done

# Configs adjusted for loopback: the packaged files with a few keys set.
np_collector_loopback 0
printf '\n[dashboard]\npublic = yes\n' >>"$ROOT/etc/netpulse/collector.conf"
as_np /usr/sbin/netpulse-collector -c /etc/netpulse/collector.conf --check || fail "collector --check"

set +e
in_root /usr/sbin/netpulse-collector -c /etc/netpulse/collector.conf -f >"$WORK/root-refused.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "refusing to run as root" "$WORK/root-refused.log" &&
    ok "packaged collector refuses root" || fail "collector as root: rc=$rc $(cat "$WORK/root-refused.log")"

: >"$WORK/collector.log"
np_start_collector "$WORK/collector.log" /var/lib/netpulse/port ||
    { echo "FAIL: collector did not start"; exit 1; }
ok "collector listening port=$PORT"
TOKEN=$(as_np /usr/bin/netpulse -c /etc/netpulse/collector.conf agent enrol school-pkg | head -1)
[ -n "$TOKEN" ] || fail "no token from netpulse agent enrol"
np_agent_loopback school-pkg "$PORT" "$TOKEN"
in_root /usr/sbin/netpulse-agent -c /etc/netpulse/agent.conf --check || fail "agent --check"
# As root: the agent drops to the packaged `user = netpulse` itself.
: >"$WORK/agent.log"
np_start_agent "$WORK/agent.log"

seen=""
for _ in $(seq 60); do
    seen=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/api/v1/sites" | python3 -c '
import json, sys
def walk(o):
    if isinstance(o, dict):
        if o.get("id") == "school-pkg":
            v = (o.get("agent") or {}).get("last_seen_ms")
            if isinstance(v, int) and v > 0:
                print(v); sys.exit(0)
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(json.load(sys.stdin))' 2>/dev/null || true)
    [ -n "$seen" ] && break
    sleep 0.5
done
[ -n "$seen" ] && ok "agent batches arrived: school-pkg last_seen_ms=$seen" ||
    fail "no last_seen for school-pkg: $(curl -s "http://127.0.0.1:$PORT/api/v1/sites" | head -c 400)"
np_runs_as_netpulse "$APID" agent
[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$APID/status")" = 0000000000000000 ] &&
    ok "agent holds no capability (no capture, no icmp)" || fail "agent CapEff"
np_runs_as_netpulse "$CPID" collector
find "$ROOT/var/lib/netpulse" -mindepth 1 ! -uid "$NP_UID" -printf '%p\n' |
    grep . && fail "files under /var/lib/netpulse not owned by netpulse" || ok "data owned by netpulse"
np_stop "$APID" || fail "agent exit status"
np_stop "$CPID" || fail "collector exit status"
APID=""
CPID=""

# Remove keeps data and config; purge removes them.
np_apt remove netpulse-agent netpulse-collector || fail "apt-get remove"
[ -e "$ROOT/var/lib/netpulse/state.db" ] && [ -e "$ROOT/etc/netpulse/agent.conf" ] &&
    ok "remove keeps state.db and the configs" || fail "remove lost data or config"
np_apt purge netpulse-agent netpulse-collector || fail "apt-get purge"
[ ! -e "$ROOT/etc/netpulse/agent.conf" ] && [ ! -e "$ROOT/var/lib/netpulse/state.db" ] &&
    ok "purge removes data and configs" || fail "purge left files"

if [ $failures -ne 0 ]; then
    echo "---- agent log ----"; tail -n 20 "$WORK/agent.log" || true
    echo "---- collector log ----"; tail -n 20 "$WORK/collector.log" || true
    echo "$failures failure(s)"
    exit 1
fi
echo "packaging: all checks passed"
