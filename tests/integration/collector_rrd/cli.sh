#!/bin/sh
# The netpulse CLI end to end on a real state database: check, site import
# (good file, bad file with FILE:LINE:COLUMN and nothing imported), agent
# enrol / list / revoke, --help everywhere, exit statuses.
#   cli.sh PATH/TO/netpulse
set -eu

NP=$1
TMP=$(mktemp -d /tmp/np_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}
# status WANT CMD...: runs CMD with stdout in $TMP/out and stderr in $TMP/err.
status() {
    want=$1
    shift
    set +e
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    set -e
    if [ "$got" != "$want" ]; then
        fail "'$*' exited $got, want $want; stderr: $(cat "$TMP/err")"
    fi
}
contains() { # FILE TEXT
    grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}

CONF=$TMP/collector.conf
cat >"$CONF" <<EOF
[collector]
listen = 127.0.0.1:8443
plain_http = yes
data_dir = $TMP/data
EOF

status 0 "$NP" -c "$CONF" check
contains "$TMP/out" ": ok"
status 0 "$NP" --help
contains "$TMP/out" "agent enrol ID"
for c in "site import" "agent enrol" "agent revoke" "agent list" "check"; do
    # shellcheck disable=SC2086
    status 0 "$NP" $c --help
    contains "$TMP/out" "usage: netpulse [-c FILE] $c"
done
status 0 "$NP" agent --help
status 2 "$NP"
status 2 "$NP" frobnicate
status 2 "$NP" agent frobnicate
status 2 "$NP" -c "$CONF" agent enrol
status 2 "$NP" -c "$CONF" agent enrol a b
status 2 "$NP" -c "$CONF" agent enrol --bogus x
status 2 "$NP" -c "$TMP/missing.conf" agent list
printf '[collector]\ncolour = blue\n' >"$TMP/bad.conf"
status 2 "$NP" -c "$TMP/bad.conf" check
contains "$TMP/err" "bad.conf:2:"
# Collector-specific checks, each at its line.
printf '[collector]\nplain_http = yes\nlisten = 8443\n' >"$TMP/bad.conf"
status 2 "$NP" -c "$TMP/bad.conf" check
contains "$TMP/err" "bad.conf:3: listen must be HOST:PORT"
printf '[collector]\nplain_http = yes\ndata_dir = var/lib\n' >"$TMP/bad.conf"
status 2 "$NP" -c "$TMP/bad.conf" check
contains "$TMP/err" "bad.conf:3: data_dir must be an absolute path"
printf '[collector]\ntls_cert =\n' >"$TMP/bad.conf"
status 2 "$NP" -c "$TMP/bad.conf" check
contains "$TMP/err" "bad.conf:2: tls_cert and tls_key are required unless plain_http = yes"
printf '[collector]\nplain_http = yes\nrrdcached = unix:relative.sock\n' >"$TMP/bad.conf"
status 2 "$NP" -c "$TMP/bad.conf" check
contains "$TMP/err" "bad.conf:3: rrdcached must be"
printf '[collector]\nplain_http = yes\nlisten = [::1]:8443\nmax_body = 16MiB\n[targets]\nuptime = 99.9%%\n[smtp]\nto = a@x.org, b@x.org\n' >"$TMP/ok.conf"
status 0 "$NP" -c "$TMP/ok.conf" check

# site import: a good file, then a bad one that must change nothing.
cat >"$TMP/sites.csv" <<'EOF'
id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts
school-0412,"Lincoln Elementary, North",elementary,1Gbps,100Mbps,2021,"a@x.org
b@x.org"
school-0007,Washington High,high,10Gbps,1Gbps,2020,
EOF
status 0 "$NP" -c "$CONF" site import "$TMP/sites.csv"
contains "$TMP/err" "2 sites"
[ -f "$TMP/data/state.db" ] || fail "no state.db in data_dir"
cat >"$TMP/bad.csv" <<'EOF'
id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts
school-0412,Renamed,elementary,1Gbps,,,
school-0099,New School,middle,lots,,,
EOF
status 1 "$NP" -c "$CONF" site import "$TMP/bad.csv"
contains "$TMP/err" "$TMP/bad.csv:3:31: circuit_rate \"lots\""
contains "$TMP/err" "nothing imported"
name=$(sqlite3 "$TMP/data/state.db" "SELECT name FROM sites WHERE id = 'school-0412'")
[ "$name" = "Lincoln Elementary, North" ] || fail "bad import changed a site: $name"
n=$(sqlite3 "$TMP/data/state.db" "SELECT count(*) FROM sites")
[ "$n" = 2 ] || fail "bad import added sites: $n"
status 1 "$NP" -c "$CONF" site import "$TMP/none.csv"

# agents
status 0 "$NP" -c "$CONF" agent enrol school-0412
token=$(cat "$TMP/out")
case "$token" in
np1_???????????????????????????????????????????) ;;
*) fail "token '$token'" ;;
esac
contains "$TMP/err" "shown only this once"
if sqlite3 "$TMP/data/state.db" .dump | grep -qF "$token"; then
    fail "the token itself is stored"
fi
status 1 "$NP" -c "$CONF" agent enrol school-0412
contains "$TMP/err" "revoke it first"
status 2 "$NP" -c "$CONF" agent enrol "../etc"
status 0 "$NP" -c "$CONF" agent enrol school-new # unknown site: stub
status 0 "$NP" -c "$CONF" agent list
contains "$TMP/out" "school-0412"
contains "$TMP/out" "school-new"
[ "$(grep -c active "$TMP/out")" = 2 ] || fail "agent list: $(cat "$TMP/out")"
status 0 "$NP" -c "$CONF" agent revoke school-0412
status 1 "$NP" -c "$CONF" agent revoke school-0412
contains "$TMP/err" "already revoked"
status 1 "$NP" -c "$CONF" agent revoke nobody
status 0 "$NP" -c "$CONF" agent list
contains "$TMP/out" "revoked"

if [ "$fails" -ne 0 ]; then
    echo "cli: $fails check(s) failed" >&2
    exit 1
fi
echo "cli: all checks passed"
