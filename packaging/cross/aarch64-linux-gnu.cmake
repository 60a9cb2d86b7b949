# CMake toolchain file: the agent for arm64 (aarch64) Linux, built on an amd64
# Debian 12 with Debian's cross compiler (crossbuild-essential-arm64) against
# the arm64 multiarch -dev packages in /usr/lib/aarch64-linux-gnu
# (packaging/deps.sh installs both). No sysroot: Debian's cross gcc and the
# aarch64-linux-gnu-pkg-config personality already look in the multiarch
# folders. net-snmp's -dev package is not co-installable across architectures;
# packaging/cross/build-agent.sh unpacks it into the build folder and passes
# that folder in CMAKE_PREFIX_PATH.
#
# Tests built here run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR, so
# `ctest -L unit` in the build folder just works); `-L /` makes qemu load the
# arm64 ld.so and libraries from the host's multiarch folders.
set(NP_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER ${NP_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${NP_CROSS_TRIPLET})
set(PKG_CONFIG_EXECUTABLE ${NP_CROSS_TRIPLET}-pkg-config CACHE FILEPATH "pkg-config for arm64")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)

# Programs (protoc-c, python3) come from the build machine; libraries and
# headers only from the arm64 multiarch folders and CMAKE_PREFIX_PATH.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)
