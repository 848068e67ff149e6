# YaK: the README's commands. `make cluster` runs a cluster in the
# foreground; `make test` builds and runs every test.

CARGO ?= cargo
PROFILE_FLAGS := --release
BIN := target/release
CONFIG ?= examples/cluster.toml
ARGS ?=
# Worker processes: make cluster PRODUCERS=2 CONSUMERS=3
PRODUCERS ?=
CONSUMERS ?=

.PHONY: all build cluster test plugins bench toolchain clean

all: build

# A fresh machine has rustup's cargo; nothing else is needed.
toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }

build: toolchain
	$(CARGO) build $(PROFILE_FLAGS) --workspace --bins

cluster: build
	$(BIN)/yak-supervisor --config $(CONFIG) $(if $(PRODUCERS),--producers $(PRODUCERS)) $(if $(CONSUMERS),--consumers $(CONSUMERS)) $(ARGS)

test: build
	$(CARGO) test $(PROFILE_FLAGS) --workspace -- --test-threads=2

clean:
	$(CARGO) clean
	rm -rf yak-run yak-data
