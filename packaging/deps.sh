#!/bin/sh
# Installs every Debian package netpulse needs to build, run and test.
# Idempotent and non-interactive: does nothing when everything is present.
set -eu

PACKAGES="
build-essential cmake pkg-config clang libclang-rt-14-dev
libuv1-dev libsnmp-dev libpcap-dev librrd-dev libcurl4-openssl-dev
libh2o-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
libinih-dev libjansson-dev libssl-dev zlib1g-dev libcsv-dev libc-ares-dev
snmpd snmp snmpsim rrdtool rrdcached sqlite3 python3-aiosmtpd
iproute2 curl openssl procps
tshark softflowd tcpdump pmacct time
chromium poppler-utils nodejs npm
collectd-core collectd-utils
libcap-dev libsystemd-dev systemd scdoc util-linux
debhelper dpkg-dev fakeroot lintian debootstrap
"

# Node.js may come from another repository (e.g. NodeSource's nodejs, which
# ships npm itself and conflicts with Debian's npm): a working command counts.
provided_by_command() {
    case "$1" in
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"ok installed"*) ;;
    *) provided_by_command "$p" || missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark's wireshark-common asks whether non-root users may capture; answer no
# before apt sees the question (tests only read files).
echo "wireshark-common wireshark-common/install-setuid boolean false" |
    $SUDO debconf-set-selections
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
