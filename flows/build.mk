# build.mk: compile a QONNX model into a build directory (included by the repository Makefile).
#   make build MODEL=model.onnx OUT=build/model [FOLDING=f.json] [FPS=1e6] [CLOCK_MHZ=100] [DEVICE=xc7z020] [TOPK=3]
MODEL     ?=
OUT       ?= build/$(basename $(notdir $(MODEL)))
FOLDING   ?=
FPS       ?=
CLOCK_MHZ ?= 100
DEVICE    ?=
TOPK      ?=

BUILD_ARGS = $(if $(FOLDING),--folding $(FOLDING)) $(if $(FPS),--fps $(FPS)) --clock-mhz $(CLOCK_MHZ) \
             $(if $(DEVICE),--device $(DEVICE)) $(if $(TOPK),--topk $(TOPK))

.PHONY: build
build: setup
	@test -n "$(MODEL)" || { echo "make build: set MODEL=path/to/model.onnx (and OUT=build/dir)" >&2; exit 2; }
	$(BIN)/hwgen build $(MODEL) -o $(OUT) $(BUILD_ARGS)
