# synth.mk: yosys synth_xilinx / synth_ecp5 / synth_ice40 of a build -> OUT/synth/<family>.json.
#   make synth OUT=build/model [FAMILIES="xilinx ecp5 ice40"]
# Runs the build's own rendered Makefile (make -C OUT synth) with the venv's tools on PATH.

.PHONY: synth
synth: setup
	@test -f "$(OUT)/Makefile" || { echo "make synth: OUT=$(OUT) has no flows Makefile (make build first)" >&2; exit 2; }
	PATH="$(abspath $(BIN)):$$PATH" $(MAKE) -C $(OUT) synth PYTHON=$(abspath $(BIN))/python $(if $(FAMILIES),FAMILIES="$(FAMILIES)")
