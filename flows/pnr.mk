# pnr.mk: nextpnr place and route of a build's board shell -> OUT/pnr/<family>.json (utilisation, Fmax).
#   make pnr OUT=build/model 
# Runs the build's own rendered Makefile (make -C OUT pnr) with the venv's tools on PATH.

.PHONY: pnr
pnr: setup
	@test -f "$(OUT)/Makefile" || { echo "make pnr: OUT=$(OUT) has no flows Makefile (make build first)" >&2; exit 2; }
	PATH="$(abspath $(BIN)):$$PATH" $(MAKE) -C $(OUT) pnr PYTHON=$(abspath $(BIN))/python $(if $(FAMILIES),FAMILIES="$(FAMILIES)")
