# Stand-in for OpenWrt's rules.mk (tests/integration/cross/check_openwrt.sh):
# the install commands the recipe uses, as OpenWrt defines them.
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
CP:=cp -fpR
