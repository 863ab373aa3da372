# bitstream.mk: ecppack -> OUT/bitstream/hwgen_top.bit, icepack -> .bin on iCE40 boards (runs synth and pnr first).
#   make bitstream OUT=build/model 
# Runs the build's own rendered Makefile (make -C OUT bitstream) with the venv's tools on PATH.

.PHONY: bitstream
bitstream: setup
	@test -f "$(OUT)/Makefile" || { echo "make bitstream: OUT=$(OUT) has no flows Makefile (make build first)" >&2; exit 2; }
	PATH="$(abspath $(BIN)):$$PATH" $(MAKE) -C $(OUT) bitstream PYTHON=$(abspath $(BIN))/python $(if $(FAMILIES),FAMILIES="$(FAMILIES)")
