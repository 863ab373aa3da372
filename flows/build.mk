# build.mk: compile a QONNX model into a build directory (included by the repository Makefile).
#   make build MODEL=model.onnx OUT=build/model [FOLDING=f.json] [FPS=1e6] [CLOCK_MHZ=100] [DEVICE=xc7z020] [TOPK=3]
#                        [BOARD=ulx3s|ulx3s-12f|ulx3s-25f|ulx3s-45f|icebreaker]
MODEL     ?=
OUT       ?= build/$(basename $(notdir $(MODEL)))
FOLDING   ?=
FPS       ?=
CLOCK_MHZ ?= 100
DEVICE    ?=
TOPK      ?=
BOARD     ?=

BUILD_ARGS = $(if $(FOLDING),--folding $(FOLDING)) $(if $(FPS),--fps $(FPS)) --clock-mhz $(CLOCK_MHZ) \
             $(if $(DEVICE),--device $(DEVICE)) $(if $(TOPK),--topk $(TOPK)) $(if $(BOARD),--board $(BOARD))

.PHONY: build
build: setup
	@test -n "$(MODEL)" || { echo "make build: set MODEL=path/to/model.onnx (and OUT=build/dir)" >&2; exit 2; }
	$(BIN)/hwgen build $(MODEL) -o $(OUT) $(BUILD_ARGS)
