#!/bin/sh
# Cross-builds netpulse-agent, its static libraries and the unit tests of
# common/ and agent/ for another Debian architecture (NETPULSE_AGENT_ONLY).
#
# usage: packaging/cross/build-agent.sh ARCH BUILD_DIR [CMAKE_ARGS...]
#   ARCH       arm64 (Debian architecture name)
#   BUILD_DIR  build folder, reused (incremental) when it exists
#
# Needs what packaging/deps.sh installs: the cross compiler, qemu-user, the
# ARCH multiarch -dev packages, and libsnmp-dev_*_ARCH.deb in
# /var/cache/netpulse-cross (NETPULSE_CROSS_DEBS). libsnmp-dev is not
# Multi-Arch: same, so instead of installing it (apt would remove the native
# one) its headers, netsnmp.pc and the libnetsnmp.so link are unpacked into
# BUILD_DIR/netsnmp-dev and found through CMAKE_PREFIX_PATH; the library
# itself is the installed libsnmp40:ARCH.
#
# Afterwards: `ctest -L unit` in BUILD_DIR runs the unit tests under qemu;
# BUILD_DIR/agent/netpulse-agent is the agent.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 ARCH BUILD_DIR [CMAKE_ARGS...]" >&2
    exit 2
fi
arch=$1
build=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)

case "$arch" in
arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
*)
    echo "build-agent: unsupported architecture arch=$arch (arm64)" >&2
    exit 2
    ;;
esac

for tool in "$triplet-gcc" "$triplet-pkg-config" "$qemu" protoc-c cmake; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build-agent: missing tool=$tool: run packaging/deps.sh" >&2
        exit 1
    fi
done

# net-snmp's -dev files, unpacked once per version into the build folder.
snmp_version=$(dpkg-query -W -f='${Version}' "libsnmp40:$arch" 2>/dev/null || true)
debs=${NETPULSE_CROSS_DEBS:-/var/cache/netpulse-cross}
deb=$debs/libsnmp-dev_$(echo "$snmp_version" | sed 's/^\([0-9]*\):/\1%3a/')_$arch.deb
if [ -z "$snmp_version" ] || [ ! -f "$deb" ]; then
    echo "build-agent: libsnmp40:$arch or $deb missing: run packaging/deps.sh" >&2
    exit 1
fi
mkdir -p "$build"
build=$(cd "$build" && pwd)
snmp_dev=$build/netsnmp-dev
if [ "$(cat "$snmp_dev/.version" 2>/dev/null || true)" != "$snmp_version" ]; then
    rm -rf "$snmp_dev" "$build/netsnmp-dev.tmp"
    dpkg-deb -x "$deb" "$build/netsnmp-dev.tmp"
    libdir=usr/lib/$triplet
    # FindPkgConfig looks in PREFIX/lib/pkgconfig when cross-compiling (not
    # in the multiarch folder); netsnmp.pc's own libdir stays multiarch.
    mkdir -p "$snmp_dev/$libdir" "$snmp_dev/usr/lib/pkgconfig" "$snmp_dev/usr/include"
    mv "$build/netsnmp-dev.tmp/usr/include/net-snmp" "$snmp_dev/usr/include/"
    sed "s|^prefix=.*|prefix=$snmp_dev/usr|" \
        "$build/netsnmp-dev.tmp/$libdir/pkgconfig/netsnmp.pc" >"$snmp_dev/usr/lib/pkgconfig/netsnmp.pc"
    soname=$(readlink "$build/netsnmp-dev.tmp/$libdir/libnetsnmp.so")
    if [ ! -e "/$libdir/$soname" ]; then
        echo "build-agent: /$libdir/$soname missing: run packaging/deps.sh" >&2
        exit 1
    fi
    ln -s "/$libdir/$soname" "$snmp_dev/$libdir/libnetsnmp.so"
    rm -rf "$build/netsnmp-dev.tmp"
    echo "$snmp_version" >"$snmp_dev/.version"
fi

cmake -S "$src" -B "$build" \
    -DCMAKE_TOOLCHAIN_FILE="$src/packaging/cross/$triplet.cmake" \
    -DCMAKE_PREFIX_PATH="$snmp_dev/usr" \
    -DNETPULSE_AGENT_ONLY=ON -DNETPULSE_WERROR=ON "$@"

# Only the agent and the executables of the unit tests (not the agent's
# integration-test helpers): their names from ctest's own list.
targets=$(ctest --test-dir "$build" -L unit --show-only=json-v1 | python3 -c '
import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    print(os.path.basename(t["command"][-1]))')
# shellcheck disable=SC2086
cmake --build "$build" -j "${NETPULSE_CROSS_JOBS:-2}" --target netpulse-agent $targets
