#!/bin/bash
# The OpenWrt recipe (packaging/openwrt/netpulse-agent) checked against the
# tree, without an OpenWrt SDK: GNU make reads the recipe with stand-ins for
# OpenWrt's rules.mk, package.mk and cmake.mk (openwrt-stub/), so its own
# variables and steps are used, not a copy of them.
#
#   check_openwrt.sh SOURCE_DIR WORK_DIR
#
# 1. PKG_VERSION is the project version; every file in files/ is installed.
# 2. DEPENDS names exactly the OpenWrt packages of the pkg-config modules
#    (and find_package libraries) the agent's CMake uses.
# 3. Build/Prepare copies NETPULSE_SOURCES (and writes netsnmp.pc); from that
#    copy alone, with the recipe's CMAKE_OPTIONS (staging = /), the agent
#    configures, builds and installs (DESTDIR); every library it links
#    (DT_NEEDED) belongs to a DEPENDS package or the C library.
# 4. Package/install fills a package root from that install: binary, INI
#    config, UCI file, init script, uci-defaults; conffiles exist there (or,
#    for the token, are named in the config).
# 5. The init script and uci-defaults pass `sh -n`; the init script, run with
#    stand-ins for rc.common/procd/UCI: disabled by the shipped UCI file it
#    starts nothing; enabled, it checks the shipped config with the built
#    agent and gives procd the command, which (with --check) accepts it; a
#    config with an unknown key starts nothing, and reload keeps the old one.
set -u
SRC=$1
WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=$SRC/packaging/openwrt/netpulse-agent
failures=0
fail() {
    echo "check_openwrt: FAIL: $*" >&2
    failures=$((failures + 1))
}

rm -rf "$WORK"
mkdir -p "$WORK"
mk() {
    make -s -C "$RECIPE" TOPDIR="$HERE/openwrt-stub" INCLUDE_DIR="$HERE/openwrt-stub" \
        NETPULSE_SRC="$SRC" PKG_BUILD_DIR="$WORK/src" PKG_INSTALL_DIR="$WORK/destdir" \
        IPK_ROOT="$WORK/ipk" STAGING_DIR=/ STAGING_DIR_HOSTPKG=/usr "$@"
}
var() { mk np-print VAR="$1"; }

# 1. version, files
version=$(sed -n 's/^project(netpulse VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ "$(var PKG_VERSION)" = "$version" ] || fail "PKG_VERSION $(var PKG_VERSION) != project $version"
for f in "$RECIPE"/files/*; do
    grep -q "./files/$(basename "$f") " "$RECIPE/Makefile" || fail "files/$(basename "$f") not installed"
done

# 2. DEPENDS against the agent's CMake (top level: common/; agent/).
declare -A OPENWRT=([libuv]=libuv [libpcap]=libpcap [netsnmp]=libnetsnmp-ssl [libcurl]=libcurl
    [libprotobuf-c]=libprotobuf-c [inih]=libinih [jansson]=jansson [libcap]=libcap
    [libcares]=libcares [OpenSSL]=libopenssl [ZLIB]=zlib)
modules=$(find "$SRC/CMakeLists.txt" "$SRC/agent" \( -name CMakeLists.txt -o -name '*.cmake' \) \
    -exec cat {} + | sed -n -e 's/.*pkg_check_modules([A-Za-z_]*\(\( [A-Z_]*\)*\) \([a-z][^ )>=<]*\).*/\3/p' \
        -e 's/^find_package(\(OpenSSL\|ZLIB\) REQUIRED).*/\1/p' | sort -u)
want=""
for m in $modules; do
    if [ -z "${OPENWRT[$m]:-}" ]; then
        fail "the agent uses $m: add its OpenWrt package to DEPENDS and to OPENWRT here"
    else
        want="$want ${OPENWRT[$m]}"
    fi
done
want=$(echo "$want" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
have=$(var DEPENDS | tr ' ' '\n' | sed -n 's/^+//p' | sort -u | tr '\n' ' ')
[ "$want" = "$have" ] || fail "DEPENDS: recipe has [$have], the agent's CMake needs [$want]"
echo "check_openwrt: DEPENDS matches $(echo "$modules" | wc -w) CMake dependencies"

# 3. Prepare, configure with the recipe's options, build, install.
mk np-prepare || fail "Build/Prepare failed"
[ -s "$WORK/src/openwrt-pc/lib/pkgconfig/netsnmp.pc" ] || fail "Build/Prepare wrote no netsnmp.pc"
eval "set -- $(var CMAKE_OPTIONS)"
if cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    "$@" >"$WORK/cmake.log" 2>&1 &&
    cmake --build "$WORK/build" -j 2 --target netpulse-agent >>"$WORK/cmake.log" 2>&1 &&
    DESTDIR="$WORK/destdir" cmake --install "$WORK/build" >>"$WORK/cmake.log" 2>&1; then
    pc_prefix=$(sed -n 's/^prefix=//p' "$WORK/src/openwrt-pc/lib/pkgconfig/netsnmp.pc")
    grep -qx "NETSNMP_PREFIX:INTERNAL=$pc_prefix" "$WORK/build/CMakeCache.txt" ||
        fail "net-snmp was not found through the recipe's netsnmp.pc (prefix $pc_prefix)"
    if grep -q "Manually-specified variables were not used" "$WORK/cmake.log"; then
        fail "CMAKE_OPTIONS the tree does not use: $(grep -A 20 'not used by the project' \
            "$WORK/cmake.log" | sed -n 's/^    \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' | tr '\n' ' ')"
    fi
else
    tail -n 30 "$WORK/cmake.log"
    fail "the agent does not build from NETPULSE_SOURCES with CMAKE_OPTIONS (log: $WORK/cmake.log)"
fi
AGENT=$WORK/destdir/usr/sbin/netpulse-agent
declare -A SONAME=([libuv]=libuv [libpcap]=libpcap [libnetsnmp]=libnetsnmp-ssl [libcurl]=libcurl
    [libprotobuf-c]=libprotobuf-c [libinih]=libinih [libjansson]=jansson [libcap]=libcap
    [libcares]=libcares [libcrypto]=libopenssl [libssl]=libopenssl [libz]=zlib)
if [ -x "$AGENT" ]; then
    for n in $(readelf -d "$AGENT" | sed -n 's/.*(NEEDED).*\[\(lib[^.]*\)\..*/\1/p'); do
        case $n in
        libc | libm | libpthread | libdl | librt | ld-linux*) continue ;;
        esac
        p=${SONAME[$n]:-}
        case " $have " in
        *" $p "*) ;;
        *) fail "the agent links $n: no DEPENDS package provides it" ;;
        esac
    done
fi

# 4. Package/install, conffiles.
mk np-install || fail "Package/install failed"
IPK=$WORK/ipk
for f in /usr/sbin/netpulse-agent /etc/netpulse/agent.conf /etc/config/netpulse-agent \
    /etc/init.d/netpulse-agent; do
    [ -e "$IPK$f" ] || fail "package root lacks $f"
done
for f in $(var Package/netpulse-agent/conffiles); do
    [ -e "$IPK$f" ] || grep -q "$f" "$IPK/etc/netpulse/agent.conf" ||
        fail "conffile $f neither installed nor named in agent.conf"
done

# 5. init script and uci-defaults.
INIT=$IPK/etc/init.d/netpulse-agent
for s in "$INIT" "$IPK"/etc/uci-defaults/*; do
    sh -n "$s" || fail "$s: sh -n"
done
# run_init UCI_FILE FUNCTION: the init script with stand-ins; absolute paths
# that exist in the package root are taken from there. Prints what procd got.
run_init() {
    sh -c '
        IPK=$1 UCI=$2
        config_load() { :; }
        config_get() {
            v=$(sed -n "s/^[[:space:]]*option[[:space:]]*$3[[:space:]]*'\''\(.*\)'\''.*/\1/p" "$UCI")
            v=${v:-$4}
            case $v in /*) [ -e "$IPK$v" ] && v=$IPK$v ;; esac
            eval "$1=\$v"
        }
        config_get_bool() { config_get "$@"; eval "[ \"\$$1\" = 1 ] || $1=0"; }
        procd_open_instance() { echo "instance"; }
        procd_set_param() { echo "param $*"; }
        procd_close_instance() { echo "close"; }
        logger() { :; }
        mkdir() { echo "mkdir $*"; }
        start() { echo "start"; start_service; }
        . "$3"
        [ -e "$IPK$PROG" ] || { echo "PROG=$PROG not installed"; exit 3; }
        [ -e "$IPK$DEFAULT_CONF" ] || { echo "DEFAULT_CONF=$DEFAULT_CONF not installed"; exit 3; }
        PROG=$IPK$PROG DEFAULT_CONF=$IPK$DEFAULT_CONF
        $4
    ' run_init "$IPK" "$1" "$INIT" "$2" 2>&1
}
UCI=$IPK/etc/config/netpulse-agent
if ! out=$(run_init "$UCI" start_service) || echo "$out" | grep -q instance; then
    fail "shipped UCI file (disabled): start_service gave: $out"
fi
sed "s/option enabled '0'/option enabled '1'/" "$UCI" >"$WORK/uci-enabled"
out=$(run_init "$WORK/uci-enabled" start_service)
rc=$?
cmd=$(echo "$out" | sed -n 's/^param command //p')
if [ $rc -ne 0 ] || [ -z "$cmd" ]; then
    fail "enabled: start_service rc=$rc gave: $out"
fi
echo "$out" | grep -qx "param file $IPK/etc/netpulse/agent.conf" || fail "procd file param: $out"
echo "$out" | grep -qx "param reload_signal HUP" || fail "no reload_signal HUP: $out"
echo "$out" | grep -qx "mkdir -p /var/lib/netpulse/spool" || fail "spool folder not made: $out"
if [ -n "$cmd" ]; then
    # shellcheck disable=SC2086
    $cmd --check >"$WORK/check.out" 2>&1 || fail "procd command $cmd --check: $(cat "$WORK/check.out")"
fi
cp "$IPK/etc/netpulse/agent.conf" "$WORK/good.conf"
printf '[agent]\nno_such_key = 1\n' >>"$IPK/etc/netpulse/agent.conf"
if out=$(run_init "$WORK/uci-enabled" start_service) || echo "$out" | grep -q instance; then
    fail "invalid config: start_service should fail and start nothing, gave: $out"
fi
if out=$(run_init "$WORK/uci-enabled" reload_service) || echo "$out" | grep -qx start; then
    fail "invalid config: reload_service should keep the running agent, gave: $out"
fi
cp "$WORK/good.conf" "$IPK/etc/netpulse/agent.conf"

if [ $failures -ne 0 ]; then
    echo "check_openwrt: $failures check(s) failed" >&2
    exit 1
fi
echo "check_openwrt: all checks passed"
