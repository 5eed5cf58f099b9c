# sessionedge — see README.md. Every target here is part of the contract in docs/.
GO       ?= go
BUILD    := build
WASM     := $(BUILD)/sessionedge.wasm

.PHONY: all build wasm test bench check demo fuzz clean

all: build wasm

build:
	@mkdir -p $(BUILD)/bin
	$(GO) build -o $(BUILD)/bin/edge ./edge/cmd/edge
	$(GO) build -o $(BUILD)/bin/origin ./origin/cmd/origin
	$(GO) build -o $(BUILD)/bin/caddy ./edge/cmd/caddy

wasm:
	@mkdir -p $(BUILD)
	@if [ -n "$(TINYGO)" ]; then \
	  command -v tinygo >/dev/null || { echo "make wasm TINYGO=1: tinygo is not on PATH" >&2; exit 1; }; \
	  tinygo build -o $(WASM) -target=wasip1 -buildmode=c-shared -scheduler=none ./wasm; \
	else \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags=-s -o $(WASM) ./wasm; \
	fi

test: wasm build
	@GO=$(GO) scripts/test.sh

bench: wasm build
	@scripts/bench.sh

check:
	@scripts/check.sh

demo:
	@scripts/demo.sh

fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf $(BUILD)
