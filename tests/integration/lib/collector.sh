# Shared by the shell integration tests that run the real collector on
# 127.0.0.1 (collector_http, flows_collector, ingest_overload, outage). Source it
# after setting COLLECTOR, MODE (direct | rrdcached) and NP_TEST (the name
# failures carry); it makes the temporary folder $T (removed on exit with
# whatever it started) and gives:
#   fail MSG, ok MSG     FAIL (NP_TEST): MSG, what np_on_fail (if the test
#                        defines it) prints, the collector log's tail; exit 1.
#                        ok: MSG
#   np_make_cert         self-signed TLS key and certificate in $T
#   np_collector_conf    writes $T/collector.conf's [collector] section (a free
#                        port, the certificate, $T/data, $T/journal, rrdcached);
#                        append further keys and sections to it
#   np_start_rrdcached   in rrdcached mode: a daemon on $T/rrdcached.sock;
#                        sets RRDCACHED_OPT (config) and FETCH_DAEMON (rrdtool)
#   np_start_collector   starts it with $T/collector.conf on a free port: PORT
#   stop_collector       SIGTERM; must exit 0
#   URL PATH, CURL ARGS  https://127.0.0.1:$PORT and curl trusting the cert

# CI runs as root; the collector refuses that unless told (privdrop).
export NETPULSE_ALLOW_ROOT=1

T=$(mktemp -d /tmp/np-coll.XXXXXX)
CPID=""
RPID=""
PORT=""
RRDCACHED_OPT=""
FETCH_DAEMON=""
np_cleanup() {
    [ -n "$CPID" ] && kill -9 "$CPID" 2>/dev/null || true
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap np_cleanup EXIT

fail() {
    echo "FAIL ($NP_TEST): $*" >&2
    # a test may add its own evidence first
    if command -v np_on_fail >/dev/null 2>&1; then np_on_fail >&2 || true; fi
    echo "---- collector log (tail) ----" >&2
    tail -n 40 "$T/collector.log" >&2 || true
    exit 1
}
ok() { echo "ok: $*"; }

np_collector_conf() { # after np_start_rrdcached, which sets RRDCACHED_OPT
    cat >"$T/collector.conf" <<EOF
[collector]
listen = 127.0.0.1:0
tls_cert = $T/cert.pem
tls_key = $T/key.pem
data_dir = $T/data
journal_dir = $T/journal
rrdcached = $RRDCACHED_OPT
EOF
}

np_make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null || fail "openssl req"
}

np_start_rrdcached() {
    mkdir -p "$T/data/rrd"
    [ "$MODE" = rrdcached ] || return 0
    mkdir -p "$T/rrdj"
    # -p: its own pid file (the default, /var/run/rrdcached.pid, makes a second
    # rrdcached of a parallel test refuse to start)
    rrdcached -g -l "unix:$T/rrdcached.sock" -p "$T/rrdcached.pid" -b "$T/data/rrd" -B -j "$T/rrdj" \
        >"$T/rrdcached.log" 2>&1 &
    RPID=$!
    for _ in $(seq 150); do [ -S "$T/rrdcached.sock" ] && break; sleep 0.1; done
    [ -S "$T/rrdcached.sock" ] || fail "rrdcached did not start"
    RRDCACHED_OPT="unix:$T/rrdcached.sock"
    FETCH_DAEMON="--daemon unix:$T/rrdcached.sock"
}

np_start_collector() { # a new port each start: written to $T/port once listening
    rm -f "$T/port"
    "$COLLECTOR" -c "$T/collector.conf" --foreground --port-file "$T/port" 2>>"$T/collector.log" &
    CPID=$!
    for _ in $(seq 150); do
        if [ -s "$T/port" ]; then
            PORT=$(cat "$T/port")
            return 0
        fi
        kill -0 "$CPID" 2>/dev/null || fail "collector exited at start"
        sleep 0.1
    done
    fail "collector did not start"
}

stop_collector() {
    kill -TERM "$CPID"
    local rc=0
    wait "$CPID" || rc=$?
    CPID=""
    [ "$rc" -eq 0 ] || fail "collector exited $rc on SIGTERM"
}

URL() { echo "https://127.0.0.1:$PORT$1"; }
CURL() { curl -sS --max-time 20 --cacert "$T/cert.pem" "$@"; }
