#!/usr/bin/env bash
# Builds librdkafka's own benchmark client, examples/rdkafka_performance.c,
# against the static library of the librdkafka sources `make kafka-compat`
# uses (the copy bundled in npm's node-rdkafka package, NODE_RDKAFKA_VERSION,
# default 3.6.1 = librdkafka 2.12), once, under target/kafka-compat; prints
# the binary's path. About 3 minutes on 2 idle cores the first time.
# Usage: bench/rdkafka-performance.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${NODE_RDKAFKA_VERSION:-3.6.1}
WORK=target/kafka-compat
SRC=$WORK/package/deps/librdkafka
PERF=$SRC/examples/rdkafka_performance

if [ ! -x "$PERF" ]; then
    echo "rdkafka-performance: building from node-rdkafka@$VERSION (once)" >&2
    mkdir -p "$WORK"
    [ -f "$WORK/node-rdkafka-$VERSION.tgz" ] || (cd "$WORK" && npm pack "node-rdkafka@$VERSION" >/dev/null)
    [ -d "$SRC" ] || tar xzf "$WORK/node-rdkafka-$VERSION.tgz" -C "$WORK"
    (cd "$SRC" && { [ -f Makefile.config ] || ./configure --disable-ssl --disable-gssapi --disable-curl --disable-sasl --disable-lz4-ext >/dev/null; } \
        && make -j2 libs >/dev/null && make -C examples rdkafka_performance >/dev/null)
fi
echo "$PERF"
