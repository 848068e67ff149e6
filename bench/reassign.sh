#!/usr/bin/env bash
# Moving data onto a new broker (issue 16): fills two partitions (RF 1)
# with MB megabytes each on a 3-broker cluster, adds broker 4, and times
# `topic reassign` of one partition onto it without a throttle, then of the
# other with one,
# while an acks=all producer (RF 3 topic, fixed rate) measures its ack
# latency; a first producer run with no move gives the baseline.
# Needs jq and bc. Usage: MB=200 THROTTLE=20000000 bench/reassign.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
MB=${MB:-200}
THROTTLE=${THROTTLE:-20000000}
OUT=$(mktemp -d /tmp/yak-reassign.XXXXXX)
SUP=

cleanup() {
    if [ -n "$SUP" ]; then kill -TERM "$SUP" 2>/dev/null || true; wait "$SUP" 2>/dev/null || true; fi
    rm -rf "$OUT"
}
trap cleanup EXIT

cat > "$OUT/cluster.toml" <<TOML
run_dir = "$OUT/run"
data_dir = "$OUT/data"
brokers = 3
TOML
"$BIN/yak-supervisor" --config "$OUT/cluster.toml" --node-bin "$BIN/yak-node" > "$OUT/cluster.log" 2>&1 &
SUP=$!
export YAK_CLUSTER=$OUT/run
for _ in $(seq 100); do "$BIN/yak-node" cluster status >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1

messages=$((2 * MB * 1000))
"$BIN/yak-node" topic create big --partitions 2 --replication-factor 1 >/dev/null
"$BIN/yak-node" topic create lat --partitions 3 --replication-factor 3 >/dev/null
"$BIN/yak-node" bench produce --topic big --messages "$messages" --message-bytes 1000 --acks 1 --warmup-messages 0 >/dev/null
"$BIN/yak-node" cluster add-broker >/dev/null

# latency LABEL: a 10 s acks=all producer at 2000 msg/s; prints its p99 in ms.
latency() {
    "$BIN/yak-node" bench produce --topic lat --messages 20000 --rate 2000 --message-bytes 100 --json --label "$1" \
        | jq -r '.latency_p99_ms' | head -1
}

# move P TARGET [THROTTLE]: reassigns big-P, waits; prints seconds.
move() {
    local start end
    start=$(date +%s.%N)
    if [ -n "${3:-}" ]; then
        "$BIN/yak-node" topic reassign big --partition "$1" --replicas "$2" --throttle-bytes-per-sec "$3" 2>/dev/null >/dev/null
    else
        "$BIN/yak-node" topic reassign big --partition "$1" --replicas "$2" 2>/dev/null >/dev/null
    fi
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

bytes() { du -sb "$OUT/data/broker-$1/big-$2" | cut -f1; }

base=$(latency before)
src0=$("$BIN/yak-node" topic describe big --json | jq -r '.partitions[0].replicas[0]')
size0=$(bytes "$src0" 0)
latency during-unthrottled > "$OUT/lat1" &
lat=$!
sleep 1
t1=$(move 0 4)
wait "$lat"
src1=$("$BIN/yak-node" topic describe big --json | jq -r '.partitions[1].replicas[0]')
size1=$(bytes "$src1" 1)
latency during-throttled > "$OUT/lat2" &
lat=$!
sleep 1
t2=$(move 1 4 "$THROTTLE")
wait "$lat"
echo "partition bytes: unthrottled $size0, throttled $size1"
echo "move onto broker 4: unthrottled ${t1}s, throttled (${THROTTLE} B/s) ${t2}s"
echo "acks=all p99 ms: before $base, during unthrottled $(cat "$OUT/lat1"), during throttled $(cat "$OUT/lat2")"
