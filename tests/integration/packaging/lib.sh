# Shared by the packaging tests (run.sh: install, upgrade.sh: upgrade); sourced.
#
# Both may run at once (ctest -j): what they share lives in CACHE and is made
# under flock(1) locks there:
#   root.tar, debootstrap.log  the Debian 12 root (debootstrap --variant=minbase
#                              bookworm); root.lock
#   archives/                  apt's downloads, bind-mounted into every root;
#                              apt locks that folder for a whole install, so
#                              np_apt runs apt-get under apt.lock
#   deb-new/                   the packages of this tree, rebuilt only when the
#                              tree changed (deb-new/tree.sha256); deb-new.lock
# Each test has its own root folder, copies of the packages and logs.
#
# Globals: SRC (the tree), CACHE, ROOT (the test's root folder), LOG (apt's
# log); failures counts fail calls.

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
ok() { echo "ok   $*"; }

# np_locked LOCKFILE CMD...: runs CMD (a function too) holding LOCKFILE.
np_locked() {
    local lock=$1
    shift
    (
        flock 9
        "$@"
    ) 9>"$lock"
}

# The tree as build-deb.sh copies it: contents and names, not times.
np_tree_hash() {
    (cd "$SRC" && tar -cf - --exclude='./build*' --exclude=./.git --exclude='./obj-*' \
        --exclude=./debian --exclude=__pycache__ --sort=name --mtime=@0 --owner=0 --group=0 \
        --numeric-owner .) | sha256sum | cut -d' ' -f1
}

np_new_debs_locked() { # DEST
    local out=$CACHE/deb-new hash t0
    hash=$(np_tree_hash)
    if [ "$(cat "$out/tree.sha256" 2>/dev/null)" = "$hash" ]; then
        echo "build-deb: tree unchanged, packages reused from $out"
    else
        rm -f "$out/tree.sha256"
        t0=$(date +%s)
        "$SRC/packaging/build-deb.sh" "$out" || return 1
        echo "$hash" >"$out/tree.sha256"
        echo "build-deb: $(($(date +%s) - t0)) s"
    fi
    cp "$out"/netpulse-agent_*.deb "$out"/netpulse-collector_*.deb "$out/lintian.txt" "$1/"
}

# np_new_debs DEST: this tree's packages (built once for every test that runs
# on an unchanged tree) copied into DEST; sets AGENT_DEB and COLL_DEB.
np_new_debs() {
    mkdir -p "$CACHE" "$1"
    rm -f "$1"/*.deb
    np_locked "$CACHE/deb-new.lock" np_new_debs_locked "$1" || return 1
    AGENT_DEB=$(ls "$1"/netpulse-agent_*.deb)
    COLL_DEB=$(ls "$1"/netpulse-collector_*.deb)
}

np_root_tar_locked() {
    local t0
    [ -s "$CACHE/root.tar" ] && return 0
    command -v debootstrap >/dev/null || { echo "no debootstrap"; return 77; }
    t0=$(date +%s)
    rm -rf "$CACHE/root.tmp"
    if ! debootstrap --variant=minbase bookworm "$CACHE/root.tmp" http://deb.debian.org/debian \
        >"$CACHE/debootstrap.log" 2>&1; then
        echo "debootstrap failed (network?)"
        tail -3 "$CACHE/debootstrap.log"
        rm -rf "$CACHE/root.tmp"
        return 77
    fi
    tar -C "$CACHE/root.tmp" -cf "$CACHE/root.tar.tmp" . && mv "$CACHE/root.tar.tmp" "$CACHE/root.tar"
    rm -rf "$CACHE/root.tmp"
    echo "debootstrap: $(($(date +%s) - t0)) s"
}

# np_root_new: a fresh Debian 12 root in ROOT from the cached root.tar (made
# first if missing), /proc, /dev and the shared apt archives mounted, apt's
# lists updated. 0, 77 (no debootstrap or network: skip) or 1.
np_root_new() {
    local rc=0
    mkdir -p "$CACHE/archives/partial"
    np_locked "$CACHE/root.lock" np_root_tar_locked || rc=$?
    [ $rc -eq 0 ] || return $rc
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xf "$CACHE/root.tar"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    mount --bind /proc "$ROOT/proc"
    mount --bind /dev "$ROOT/dev"
    mount --bind "$CACHE/archives" "$ROOT/var/cache/apt/archives"
    mkdir -p "$ROOT/debs"
    if ! in_root apt-get -o Acquire::Retries=3 -q update >>"$LOG" 2>&1; then
        tail -5 "$LOG"
        echo "apt-get update failed"
        return 77
    fi
}

# np_root_cleanup: stops nothing (the caller kills its daemons first), unmounts
# and removes ROOT.
np_root_cleanup() {
    local m
    [ -n "${ROOT:-}" ] || return 0
    for m in "$ROOT/var/cache/apt/archives" "$ROOT/proc" "$ROOT/dev"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    # Never remove through a mount that is still there.
    for m in "$ROOT/var/cache/apt/archives" "$ROOT/proc" "$ROOT/dev"; do
        mountpoint -q "$m" 2>/dev/null && { echo "still mounted: $m" >&2; return 1; }
    done
    rm -rf "$ROOT"
}

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_np() { in_root setpriv --reuid=netpulse --regid=netpulse --init-groups "$@"; }

# np_apt ARGS...: apt-get ARGS in the root, non-interactive, output to LOG.
np_apt() {
    np_locked "$CACHE/apt.lock" in_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
        --no-install-recommends "$@" >>"$LOG" 2>&1
}

# np_collector_loopback: the packaged collector.conf adjusted for loopback:
# listen on 127.0.0.1:PORT (0: any free port) over plain HTTP.
np_collector_loopback() { # PORT
    sed -i "s/^\[collector\]\$/[collector]\nlisten = 127.0.0.1:$1\nplain_http = yes/" \
        "$ROOT/etc/netpulse/collector.conf"
}

# np_agent_loopback ID PORT TOKEN: the packaged agent.conf sending to the
# collector on 127.0.0.1:PORT every second, probing it (tcp) every second.
np_agent_loopback() {
    sed -i "s|^\[agent\]\$|[agent]\nid = $1\ncollector = http://127.0.0.1:$2\ntoken = $3\nbatch_interval = 1s|" \
        "$ROOT/etc/netpulse/agent.conf"
    printf '\n[probe collector]\ntype = tcp\ntarget = 127.0.0.1:%s\ninterval = 1s\ntimeout = 500ms\n' \
        "$2" >>"$ROOT/etc/netpulse/agent.conf"
}

# np_start_collector LOGFILE PORTFILE: the packaged collector in the root as
# netpulse (chroot, env and setpriv exec each other: $! is the daemon); sets
# CPID and PORT (read from PORTFILE, a path inside the root). 0 or 1.
np_start_collector() {
    rm -f "$ROOT$2"
    chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --reuid=netpulse \
        --regid=netpulse --init-groups /usr/sbin/netpulse-collector -c /etc/netpulse/collector.conf \
        -f --port-file "$2" >>"$1" 2>&1 &
    CPID=$!
    for _ in $(seq 100); do
        [ -s "$ROOT$2" ] && break
        kill -0 "$CPID" 2>/dev/null || break
        sleep 0.1
    done
    PORT=$(cat "$ROOT$2" 2>/dev/null || true)
    [ -n "$PORT" ] || { tail "$1"; return 1; }
}

# np_start_agent LOGFILE: the packaged agent started as root in the root (it
# drops to the configured netpulse user itself); sets APID.
np_start_agent() {
    chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/netpulse-agent \
        -c /etc/netpulse/agent.conf -f >>"$1" 2>&1 &
    APID=$!
}

# np_stop PID: SIGTERM, then its exit status (0 or fail).
np_stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1"
}

np_uids() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status"; }

# np_runs_as_netpulse PID NAME: real, effective, saved and fs uid are netpulse's.
np_runs_as_netpulse() {
    local uid
    uid=$(in_root id -u netpulse)
    [ "$(np_uids "$1")" = "$uid $uid $uid $uid" ] && ok "$2 runs as netpulse" ||
        fail "$2 Uid: $(np_uids "$1")"
}
