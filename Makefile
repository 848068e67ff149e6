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

# Partitioner plugins, each built to target/release/libyak_partitioner_<name>.so
# (dashes become underscores: round-robin -> libyak_partitioner_round_robin.so).
PLUGINS := round-robin key-hash sticky random least-loaded
# Loader test fixtures (built for `make test` only).
FIXTURES := wrong-abi no-symbol misbehaving
PLUGIN_SOS := $(foreach p,$(PLUGINS),$(BIN)/libyak_partitioner_$(subst -,_,$(p)).so)

.PHONY: all build cluster test style plugins fixtures kafka-deps kafka-compat bench bench-partitioners toolchain clean

all: build

# A fresh machine has rustup's cargo; nothing else is needed.
toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }

build: toolchain
	$(CARGO) build $(PROFILE_FLAGS) --workspace --bins

plugins: toolchain
	$(CARGO) build $(PROFILE_FLAGS) $(foreach p,$(PLUGINS),-p yak-partitioner-$(p))

fixtures: toolchain
	$(CARGO) build $(PROFILE_FLAGS) $(foreach p,$(FIXTURES),-p yak-partitioner-fixture-$(p))

cluster: build plugins
	$(BIN)/yak-supervisor --config $(CONFIG) $(if $(PRODUCERS),--producers $(PRODUCERS)) $(if $(CONSUMERS),--consumers $(CONSUMERS)) $(ARGS)

# Formatting and lints, as CI checks them (rustup adds rustfmt and clippy
# when the toolchain lacks them).
style: toolchain
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	$(CARGO) fmt --all --check
	$(CARGO) clippy $(PROFILE_FLAGS) --workspace --all-targets -- -D warnings

# Kafka clients the tests/kafka_*.rs tests drive: Debian's kcat, and a
# virtualenv with confluent-kafka from PyPI (librdkafka inside its wheel)
# under $(KAFKA_VENV). Each is installed only when missing.
KAFKA_VENV ?= target/kafka-venv
kafka-deps:
	@command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat; }
	@$(KAFKA_VENV)/bin/python -c 'import confluent_kafka' 2>/dev/null || { \
	  python3 -m venv $(KAFKA_VENV) || { apt-get install -y -qq python3-venv && python3 -m venv $(KAFKA_VENV); }; \
	  $(KAFKA_VENV)/bin/pip install -q confluent-kafka; }

# librdkafka's own test suite against a fresh cluster (scripts/kafka-compat:
# builds its test-runner once under target/kafka-compat, prints a pass/fail
# table). KAFKA_COMPAT_TESTS="0001 0002" picks tests.
kafka-compat: build
	bash scripts/kafka-compat

test: build plugins fixtures kafka-deps
	$(CARGO) test $(PROFILE_FLAGS) --workspace -- --test-threads=2

# The standard benchmark suite on fresh clusters; RUNS=3 by default.
bench: build plugins
	bash bench/suite.sh

# Starts a fresh 3-broker cluster in a temp dir, runs `bench partitioners`
# over all five plugins in every scenario, 5 rounds (BENCH_ARGS adds flags), stops it.
BENCH_ARGS ?=
bench-partitioners: build plugins
	scripts/bench-partitioners $(PLUGIN_SOS) -- $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf yak-run yak-data
