#!/bin/sh
# Builds the Debian packages from this tree:
#   netpulse-agent_VERSION_ARCH.deb, netpulse-collector_VERSION_ARCH.deb
#
#   packaging/build-deb.sh [OUT_DIR]      (default: build-deb)
#
# The tree (without build folders and .git) is copied to OUT_DIR/src with
# packaging/debian as its debian/ folder, built with `dpkg-buildpackage -us
# -uc -b` (debhelper, CMake), and checked with lintian; its report is in
# OUT_DIR/lintian.txt and the script fails on a lintian error. Needs
# debhelper, dpkg-dev, fakeroot, lintian and the Build-Depends of
# packaging/debian/control (packaging/deps.sh installs them all).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

rm -rf "$out/src"
mkdir -p "$out/src"
(cd "$top" && tar -cf - --exclude='./build*' --exclude=./.git --exclude='./obj-*' \
    --exclude=./debian .) | (cd "$out/src" && tar -xf -)
cp -r "$top/packaging/debian" "$out/src/debian"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo

(cd "$out/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed, see $out/build.log" >&2
    exit 1
}
# dpkg-buildpackage writes next to the source folder.
changes=$(ls "$out"/netpulse_*.changes)
status=0
lintian --info --tag-display-limit 0 "$changes" >"$out/lintian.txt" 2>&1 || status=$?
errors=$(grep -c '^E: ' "$out/lintian.txt" || true)
warnings=$(grep -c '^W: ' "$out/lintian.txt" || true)
ls -l "$out"/*.deb
echo "build-deb: lintian errors=$errors warnings=$warnings ($out/lintian.txt)"
if [ "$errors" -ne 0 ]; then
    grep '^E: ' "$out/lintian.txt" >&2
    exit 1
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    echo "build-deb: lintian failed to run (status $status)" >&2
    exit 1
fi
