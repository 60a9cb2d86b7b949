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
tshark softflowd tcpdump pmacct time tcpreplay
chromium poppler-utils nodejs npm
collectd-core collectd-utils
libcap-dev libsystemd-dev systemd scdoc util-linux
debhelper dpkg-dev fakeroot lintian debootstrap
crossbuild-essential-arm64 qemu-user
"

# The agent cross-built for arm64 (packaging/cross/build-agent.sh): the arm64
# multiarch -dev packages beside the native ones. libsnmp-dev is not
# Multi-Arch: same (its arm64 build would replace the amd64 one), so only the
# library is installed and the -dev .deb is kept in CROSS_DEBS for the build
# script to unpack into its build folder.
CROSS_ARCH=arm64
CROSS_PACKAGES="
libuv1-dev libpcap-dev libcurl4-openssl-dev libprotobuf-c-dev libinih-dev
libjansson-dev libcap-dev libc-ares-dev libssl-dev zlib1g-dev libsnmp40
"
CROSS_DEBS=/var/cache/netpulse-cross
for p in $CROSS_PACKAGES; do
    PACKAGES="$PACKAGES $p:$CROSS_ARCH"
done

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

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

# libsnmp-dev for the cross architecture, matching the installed libsnmp40.
fetch_cross_snmp_dev() {
    v=$(dpkg-query -W -f='${Version}' "libsnmp40:$CROSS_ARCH")
    [ -f "$CROSS_DEBS/libsnmp-dev_$(echo "$v" | sed 's/^\([0-9]*\):/\1%3a/')_$CROSS_ARCH.deb" ] && return 0
    $SUDO mkdir -p "$CROSS_DEBS"
    (cd "$CROSS_DEBS" &&
        $SUDO apt-get download -q -o APT::Sandbox::User=root "libsnmp-dev:$CROSS_ARCH=$v")
}

if [ -z "$missing" ]; then
    fetch_cross_snmp_dev
    exit 0
fi

if ! dpkg --print-foreign-architectures | grep -qx "$CROSS_ARCH"; then
    $SUDO dpkg --add-architecture "$CROSS_ARCH"
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
fetch_cross_snmp_dev
