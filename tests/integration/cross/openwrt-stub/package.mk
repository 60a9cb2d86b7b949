# Stand-in for OpenWrt's package.mk (tests/integration/cross/check_openwrt.sh).
# BuildPackage reads the package definition and adds targets that print a
# variable (VAR=NAME), run Build/Prepare, and run Package/NAME/install into IPK_ROOT.
# Like OpenWrt, step definitions are expanded once by call, once in the recipe.
define BuildPackage
$$(eval $$(Package/$(1)))
np-print:
	$$(info $$($$(VAR)))
	@:
np-prepare:
	$(Build/Prepare)
np-install:
	$(call Package/$(1)/install,$$(IPK_ROOT))
endef
