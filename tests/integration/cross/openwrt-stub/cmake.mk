# Stand-in for OpenWrt's cmake.mk: CMAKE_OPTIONS stays what the recipe adds.
CMAKE_OPTIONS:=
