#!/usr/bin/env bash
# The standard benchmark suite (issue 5): starts fresh 3-broker clusters in a
# temp dir (one with relaxed fsync, one durable), runs every benchmark RUNS
# times (default 3), and prints one table of medians. The relaxed cluster
# also serves the Kafka protocol: rows through it use librdkafka's own
# rdkafka_performance (bench/kafka.sh; built once by
# bench/rdkafka-performance.sh) in the same runs as the native rows, and a
# last table sets each against its native row. Raw results (JSON lines)
# stay in $OUT/results.jsonl. Usage: bench/suite.sh   (or: make bench)
# ONLY=kafka bench/suite.sh runs just the relaxed-cluster rows that have a
# Kafka twin (produce 1 replica acks=1, 3 replicas acks=all, consume, group
# consume with 1 and 3 members) and the ratio table: a quick before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
RUNS=${RUNS:-3}
ONLY=${ONLY:-}
case "$ONLY" in ""|kafka) ;; *) echo "bench: ONLY is empty or kafka, not '$ONLY'" >&2; exit 2 ;; esac
GROUP_MESSAGES=2000000
KAFKA_SHORT_WAITS=(-X fetch.queue.backoff.ms=10 -X fetch.wait.max.ms=100)
OUT=$(mktemp -d /tmp/yak-bench.XXXXXX)
RESULTS=$OUT/results.jsonl
SUPERVISORS=()
RDKAFKA_PERF=$(bench/rdkafka-performance.sh)
# shellcheck source=bench/kafka.sh
source bench/kafka.sh

cleanup() {
    for pid in "${SUPERVISORS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SUPERVISORS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # The logs and results stay; the clusters' gigabytes of data do not.
    rm -rf "$OUT"/*/data "$OUT"/*/run
}
trap cleanup EXIT

# start_cluster NAME FSYNC [KAFKA_PORT_BASE] -> sets CLUSTER to its run dir
start_cluster() {
    local dir=$OUT/$1
    mkdir -p "$dir"
    cat > "$dir/cluster.toml" <<TOML
run_dir = "$dir/run"
data_dir = "$dir/data"
brokers = 3
[zookeeper]
default_partitions = 3
default_replication_factor = 1
[broker]
fsync = "$2"
[kafka]
port_base = ${3:-0}
TOML
    "$BIN/yak-supervisor" --config "$dir/cluster.toml" > "$dir/cluster.log" 2>&1 &
    SUPERVISORS+=($!)
    CLUSTER=$dir/run
    for _ in $(seq 1 300); do
        if [ "$("$BIN/yak-node" cluster status --json --cluster "$CLUSTER" 2>/dev/null | grep -c '"alive": true')" = 3 ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "cluster $1 did not start; log:" >&2; cat "$dir/cluster.log" >&2; exit 1
}

# Each row starts with no dirty page cache left by the one before (writeback
# of earlier rows' data would otherwise throttle or stall it).
y() { sync; "$BIN/yak-node" "$@" --cluster "$CLUSTER" --json >> "$RESULTS"; }
step() { echo "[bench] $*" >&2; }

start_cluster relaxed never "$(kafka_port_base)"
RELAXED=$CLUSTER
[ "$ONLY" = kafka ] || { start_cluster durable always; DURABLE=$CLUSTER; }

# The durable rows first: the relaxed rows below write gigabytes, and the
# page cache they leave behind stalls later fsyncs on this VM.
[ "$ONLY" = kafka ] || for run in $(seq 1 "$RUNS"); do
    step "durable, run $run of $RUNS"
    CLUSTER=$DURABLE
    y bench produce --label "3 replicas, acks=all, durable, 10k msg/s: ack latency" --topic dl-$run --partitions 3 --replication-factor 3 --acks all --messages 50000 --rate 10000 --linger-ms 1
    y bench e2e --label "same: produce-to-consume latency" --topic de-$run --partitions 3 --replication-factor 3 --acks all --messages 50000 --rate 10000 --linger-ms 1
    y bench produce --label "3 replicas, acks=all, durable: produce" --topic d3-$run --partitions 3 --replication-factor 3 --acks all --messages 1000000
done

for run in $(seq 1 "$RUNS"); do
    step "relaxed, run $run of $RUNS"
    CLUSTER=$RELAXED
    y bench produce --label "1 replica, acks=1, relaxed: produce" --topic r1-$run --partitions 3 --replication-factor 1 --acks 1 --messages 2000000
    y bench consume --label "consume that topic from the beginning" --topic r1-$run
    kafka_consume "Kafka: consume that topic from the beginning" r1-$run 3 2000000
    kafka_produce "Kafka: 1 replica, acks=1, relaxed: produce" kr1-$run 3 1 1 2000000
    y bench produce --label "3 replicas, acks=all, relaxed: produce" --topic r3-$run --partitions 3 --replication-factor 3 --acks all --messages 2000000
    kafka_produce "Kafka: 3 replicas, acks=all, relaxed: produce" kr3-$run 3 3 -1 2000000
    # Group consume: 6 partitions, every row a fresh group reading all of it.
    "$BIN/yak-node" bench produce --topic g6-$run --partitions 6 --replication-factor 1 --acks 1 --messages "$GROUP_MESSAGES" --warmup-messages 0 --cluster "$CLUSTER" > /dev/null
    y bench consume --label "group consume, 6 partitions, 1 member" --topic g6-$run --group ng1-$run --members 1
    y bench consume --label "group consume, 6 partitions, 3 members" --topic g6-$run --group ng3-$run --members 3
    kafka_group_consume "Kafka: group consume, 6 partitions, 1 member" g6-$run 1 "$GROUP_MESSAGES"
    kafka_group_consume "Kafka: group consume, 6 partitions, 3 members" g6-$run 3 "$GROUP_MESSAGES"
    # The same with librdkafka's fetch queue backoff (default 1 s, taken
    # each time the consumer's 64 MB queue is full) and fetch wait (a fetch
    # at the end of a partition is held this long before -e sees the end)
    # shortened: the default rows measure those client pauses as much as
    # the broker (BENCHMARKS.md, "Group consume").
    kafka_group_consume "Kafka, short waits: group consume, 6 partitions, 1 member" g6-$run 1 "$GROUP_MESSAGES" "${KAFKA_SHORT_WAITS[@]}"
    kafka_group_consume "Kafka, short waits: group consume, 6 partitions, 3 members" g6-$run 3 "$GROUP_MESSAGES" "${KAFKA_SHORT_WAITS[@]}"
    [ "$ONLY" = kafka ] || y bench produce --label "1 KiB, 1 replica, acks=1: produce" --topic k1-$run --partitions 3 --replication-factor 1 --acks 1 --messages 300000 --message-bytes 1024
done

# The rows without a Kafka twin (not with ONLY=kafka).
if [ "$ONLY" != kafka ]; then

step "log size: consume the first 1M messages of a 1M-message and a 10M-message log"
CLUSTER=$RELAXED
"$BIN/yak-node" bench produce --topic small --partitions 1 --replication-factor 1 --acks 1 --messages 1000000 --cluster "$CLUSTER" > /dev/null
"$BIN/yak-node" bench produce --topic large --partitions 1 --replication-factor 1 --acks 1 --messages 10000000 --cluster "$CLUSTER" > /dev/null
for run in $(seq 1 "$RUNS"); do
    y bench consume --label "consume 1M from offset 0 of a 1M log" --topic small --messages 1000000
    y bench consume --label "consume 1M from offset 0 of a 10M log" --topic large --messages 1000000
done

step "restart: a broker holding a 2 GB log"
"$BIN/yak-node" bench produce --topic big --partitions 1 --replication-factor 1 --acks 1 --messages 2000000 --message-bytes 1024 --cluster "$CLUSTER" > /dev/null
sync
for run in $(seq 1 "$RUNS"); do
    y bench restart --label "restart of the broker holding a 2 GB log, until it serves" --leader-of big
    sleep 1
done
step "data on disk: $(du -sh "$OUT/relaxed/data" | cut -f1) (relaxed), $(du -sh "$OUT/durable/data" | cut -f1) (durable)"
fi

"$BIN/yak-node" bench table --median "$RESULTS"
kafka_ratios "$RESULTS" \
    "Kafka: 1 replica, acks=1, relaxed: produce|1 replica, acks=1, relaxed: produce" \
    "Kafka: 3 replicas, acks=all, relaxed: produce|3 replicas, acks=all, relaxed: produce" \
    "Kafka: consume that topic from the beginning|consume that topic from the beginning" \
    "Kafka: group consume, 6 partitions, 1 member|group consume, 6 partitions, 1 member" \
    "Kafka: group consume, 6 partitions, 3 members|group consume, 6 partitions, 3 members" \
    "Kafka, short waits: group consume, 6 partitions, 1 member|group consume, 6 partitions, 1 member" \
    "Kafka, short waits: group consume, 6 partitions, 3 members|group consume, 6 partitions, 3 members"
echo "raw results: $RESULTS" >&2
