#!/bin/bash
# Least privilege without systemd, with the real daemons.
#
#   check_privdrop.sh AGENT COLLECTOR
#
# Agent: started as root in a network namespace of its own with `user =
# nobody`, a [pcap] capture on a veth whose peer is in a second namespace and
# an ICMP probe to that peer. Once running: every thread runs as nobody, the
# main thread holds CAP_NET_RAW only (permitted, effective, bounding), no
# thread anything else, ambient empty, no_new_privs; its spool (created as
# root) is written as nobody; a SIGHUP reload reopens the capture; without
# [pcap] and icmp probes no capability is left; an unknown user stops it.
#
# Collector: as root it refuses to start unless told (--allow-root or
# allow_root = yes); as nobody it binds port 443 through an ambient
# CAP_NET_BIND_SERVICE (as systemd's AmbientCapabilities gives it) and port
# 80 through socket activation (systemd-socket-activate), in a namespace.
#
# Root only (exit 77 otherwise). Namespaces and files are removed on exit.
set -eu

AGENT=$1
COLLECTOR=$2
[ "$(id -u)" -eq 0 ] || { echo "needs root: skipped"; exit 77; }
command -v ip >/dev/null || { echo "no ip(8): skipped"; exit 77; }

NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
T=$(mktemp -d /tmp/np-privdrop.XXXXXX)
chmod 755 "$T"
NS=nppd$$
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "${NS}a" 2>/dev/null || true
    ip netns del "${NS}b" 2>/dev/null || true
    ip netns del "${NS}c" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
fatal() {
    echo "FAIL: $*" >&2
    exit 1
}
expect_eq() { # name got want
    if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; else echo "ok   $1 = $3"; fi
}
field() { # file name -> value (tabs squeezed to spaces)
    awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }' "$1"
}
wait_for() { # seconds file pattern
    local i
    for i in $(seq 1 $(($1 * 10))); do
        grep -q "$3" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

ip netns add "${NS}a"
ip netns add "${NS}b"
ip -n "${NS}a" link add npv0 type veth peer name npv1 netns "${NS}b"
ip -n "${NS}a" addr add 10.213.7.1/24 dev npv0
ip -n "${NS}b" addr add 10.213.7.2/24 dev npv1
for n in a b; do
    ip -n "${NS}$n" link set lo up
done
ip -n "${NS}a" link set npv0 up
ip -n "${NS}b" link set npv1 up
# Raw ICMP sockets for the probe (ping sockets are off for every group).
ip netns exec "${NS}a" sysctl -qw net.ipv4.ping_group_range="1 0"

write_agent_conf() { # file user with_capture
    {
        printf '[agent]\nid = privdrop-test\ncollector = http://127.0.0.1:9\n'
        printf 'spool_dir = %s/spool\nbatch_interval = 1s\nspool_fsync = always\n' "$T"
        printf 'user = %s\n' "$2"
        if [ "$3" = yes ]; then
            printf '[pcap wan]\ninterface = npv0\nexport_interval = 1s\n'
            printf '[probe peer]\ntype = icmp\ntarget = 10.213.7.2\ninterval = 2s\ntimeout = 500ms\n'
        else
            printf '[probe peer]\ntype = tcp\ntarget = 10.213.7.2:9\ninterval = 2s\ntimeout = 500ms\n'
        fi
    } >"$1"
}

start_agent() { # conf log
    ip netns exec "${NS}a" "$AGENT" -c "$1" -f >"$2" 2>&1 &
    APID=$!
    PIDS="$PIDS $APID"
}

# Every thread: uid/gid nobody, nothing but `allowed` in its capability sets.
check_threads() { # pid allowed-mask-hex label
    local task st
    for task in /proc/"$1"/task/*; do
        st=$task/status
        expect_eq "$3 thread ${task##*/} Uid" "$(field "$st" Uid)" \
            "$NOBODY $NOBODY $NOBODY $NOBODY"
        expect_eq "$3 thread ${task##*/} Gid" "$(field "$st" Gid)" \
            "$NOGROUP $NOGROUP $NOGROUP $NOGROUP"
        for c in CapPrm CapEff CapAmb; do
            local v
            v=$(field "$st" $c)
            if [ $((0x$v & ~0x$2)) -ne 0 ]; then
                fail "$3 thread ${task##*/} $c=$v beyond $2"
            fi
        done
    done
}

# ---- agent with a capture and an ICMP probe: keeps CAP_NET_RAW
write_agent_conf "$T/agent.conf" nobody yes
start_agent "$T/agent.conf" "$T/agent.log"
wait_for 10 "$T/agent.log" "privdrop: running as" || fatal "agent did not drop: $(tail -5 "$T/agent.log")"
S=/proc/$APID/status
expect_eq "agent Uid" "$(field "$S" Uid)" "$NOBODY $NOBODY $NOBODY $NOBODY"
expect_eq "agent Gid" "$(field "$S" Gid)" "$NOGROUP $NOGROUP $NOGROUP $NOGROUP"
expect_eq "agent Groups" "$(field "$S" Groups)" "$NOGROUP"
expect_eq "agent CapPrm" "$(field "$S" CapPrm)" 0000000000002000
expect_eq "agent CapEff" "$(field "$S" CapEff)" 0000000000002000
expect_eq "agent CapInh" "$(field "$S" CapInh)" 0000000000000000
expect_eq "agent CapAmb" "$(field "$S" CapAmb)" 0000000000000000
expect_eq "agent CapBnd" "$(field "$S" CapBnd)" 0000000000002000
expect_eq "agent NoNewPrivs" "$(field "$S" NoNewPrivs)" 1
nthreads=$(ls /proc/$APID/task | wc -l)
[ "$nthreads" -ge 2 ] || fail "expected a capture thread, threads=$nthreads"
check_threads "$APID" 2000 agent
# Traffic on the captured link, then the spool (made by root) grows as nobody.
# (the ICMP probe's echoes are the traffic)
sleep 2.5
expect_eq "spool owner" "$(stat -c %u "$T/spool")" "$NOBODY"
segs=$(find "$T/spool" -type f -user "$NOBODY" | wc -l)
[ "$segs" -ge 1 ] || fail "no spool files written as nobody"
others=$(find "$T/spool" -mindepth 1 ! -user "$NOBODY" | wc -l)
expect_eq "spool files not nobody's" "$others" 0
grep -q "probe:.*peer" "$T/agent.log" || true
# Reload: the capture is reopened with CAP_NET_RAW.
kill -HUP "$APID"
wait_for 5 "$T/agent.log" "configuration reloaded" || fail "no reload"
if grep -q "capture not started" "$T/agent.log"; then
    fail "capture not reopened after SIGHUP: $(grep 'capture not started' "$T/agent.log")"
fi
expect_eq "agent CapPrm after reload" "$(field "$S" CapPrm)" 0000000000002000
check_threads "$APID" 2000 "agent after reload"
kill -TERM "$APID"
wait "$APID" && rc=0 || rc=$?
expect_eq "agent exit" "$rc" 0

# ---- agent needing nothing: no capability at all
write_agent_conf "$T/agent2.conf" nobody no
start_agent "$T/agent2.conf" "$T/agent2.log"
wait_for 10 "$T/agent2.log" "privdrop: running as" || fatal "agent2 did not drop: $(tail -5 "$T/agent2.log")"
S=/proc/$APID/status
for c in CapPrm CapEff CapAmb CapBnd; do
    expect_eq "agent2 $c" "$(field "$S" $c)" 0000000000000000
done
check_threads "$APID" 0 agent2
kill -TERM "$APID"
wait "$APID" || fail "agent2 exit"

# ---- an unknown user stops the agent
write_agent_conf "$T/agent3.conf" np-no-such-user yes
start_agent "$T/agent3.conf" "$T/agent3.log"
wait "$APID" && rc=0 || rc=$?
expect_eq "agent3 exit (unknown user)" "$rc" 1
grep -q "cannot drop privileges.*np-no-such-user" "$T/agent3.log" ||
    fail "no clear message for an unknown user: $(tail -3 "$T/agent3.log")"

# ---- collector
mkdir -p "$T/cdata"
chown nobody "$T/cdata"
write_collector_conf() { # file listen extra
    printf '[collector]\nlisten = %s\nplain_http = yes\ndata_dir = %s/cdata\n%s' \
        "$2" "$T" "$3" >"$1"
}
write_collector_conf "$T/c.conf" 127.0.0.1:0 ""
set +e
env -u NETPULSE_ALLOW_ROOT "$COLLECTOR" -c "$T/c.conf" -f >"$T/c1.log" 2>&1
rc=$?
set -e
expect_eq "collector as root exit" "$rc" 2
grep -q "refusing to run as root" "$T/c1.log" || fail "collector root message: $(cat "$T/c1.log")"

health() { # netns port
    ip netns exec "$1" curl -s --max-time 3 "http://127.0.0.1:$2/healthz" || true
}
ip netns add "${NS}c"
ip -n "${NS}c" link set lo up
for how in flag config; do
    rm -f "$T/port"
    if [ $how = flag ]; then
        write_collector_conf "$T/c.conf" 127.0.0.1:0 ""
        env -u NETPULSE_ALLOW_ROOT ip netns exec "${NS}c" "$COLLECTOR" -c "$T/c.conf" -f \
            --allow-root --port-file "$T/port" >"$T/c2.log" 2>&1 &
    else
        write_collector_conf "$T/c.conf" 127.0.0.1:0 "allow_root = yes
"
        env -u NETPULSE_ALLOW_ROOT ip netns exec "${NS}c" "$COLLECTOR" -c "$T/c.conf" -f \
            --port-file "$T/port" >"$T/c2.log" 2>&1 &
    fi
    CP=$!
    PIDS="$PIDS $CP"
    wait_for 10 "$T/port" . || fail "collector --allow-root ($how) did not start: $(tail -3 "$T/c2.log")"
    expect_eq "collector allowed as root ($how) healthz" "$(health "${NS}c" "$(cat "$T/port")")" ok
    kill -TERM $CP
    wait $CP || fail "collector ($how) exit"
done

chown -R nobody "$T/cdata" # the root runs made their files as root
mkdir -p "$T/run"
chown nobody "$T/run"

# As nobody, port 443 through an ambient CAP_NET_BIND_SERVICE.
rm -f "$T/run/port"
write_collector_conf "$T/c.conf" 127.0.0.1:443 ""
ip netns exec "${NS}c" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    --inh-caps=+net_bind_service --ambient-caps=+net_bind_service \
    "$COLLECTOR" -c "$T/c.conf" -f --port-file "$T/run/port" >"$T/c3.log" 2>&1 &
CP=$!
PIDS="$PIDS $CP"
wait_for 10 "$T/run/port" . || fail "collector on 443 did not start: $(tail -3 "$T/c3.log")"
expect_eq "collector port with CAP_NET_BIND_SERVICE" "$(cat "$T/run/port" 2>/dev/null)" 443
expect_eq "collector healthz on 443" "$(health "${NS}c" 443)" ok
expect_eq "collector Uid" "$(field /proc/$CP/status Uid)" "$NOBODY $NOBODY $NOBODY $NOBODY"
kill -TERM $CP
wait $CP || fail "collector (443) exit"

# As nobody, port 80 through socket activation: no capability at all.
if command -v systemd-socket-activate >/dev/null; then
    rm -f "$T/run/port"
    write_collector_conf "$T/c.conf" 127.0.0.1:8443 "" # not used: the passed socket is
    ip netns exec "${NS}c" systemd-socket-activate -l 127.0.0.1:80 \
        setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$COLLECTOR" -c "$T/c.conf" -f --port-file "$T/run/port" >"$T/c4.log" 2>&1 &
    CP=$!
    PIDS="$PIDS $CP"
    sleep 0.3
    # The first connection starts the collector (systemd-socket-activate execs it).
    expect_eq "collector socket-activated healthz on 80" "$(health "${NS}c" 80)" ok
    expect_eq "collector socket-activated port" "$(cat "$T/run/port" 2>/dev/null)" 80
    expect_eq "collector socket-activated CapEff" "$(field /proc/$CP/status CapEff)" \
        0000000000000000
    grep -q "socket activation fd=3" "$T/c4.log" || fail "no socket activation: $(tail -3 "$T/c4.log")"
    kill -TERM $CP
    wait $CP || fail "collector (socket activation) exit"
else
    echo "skip socket activation: no systemd-socket-activate"
fi

if [ $failures -ne 0 ]; then
    echo "---- agent log ----" >&2
    tail -n 30 "$T/agent.log" >&2
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "privdrop: all checks passed"
