# sim.mk: verify a build in RTL simulation, every output word against the reference.
#   make sim OUT=build/model [SIM=verilator|icarus] [FRAMES=32] [SEED=0]
SIM    ?= verilator
FRAMES ?= 32
SEED   ?= 0

.PHONY: sim
sim: setup
	@test -d "$(OUT)" || { echo "make sim: OUT=$(OUT) is not a build directory (make build first)" >&2; exit 2; }
	$(BIN)/hwgen verify $(OUT) --sim $(SIM) --frames $(FRAMES) --seed $(SEED)
