# Kafka-protocol rows for bench/suite.sh (sourced, not run): librdkafka's own
# rdkafka_performance (bench/rdkafka-performance.sh builds it) against a
# cluster's Kafka ports, each result appended to $RESULTS as a JSON line in
# the `yak-node bench --json` shape, so `bench table` shows them beside the
# native rows; `kafka_ratios` then prints each Kafka row's median against
# its native row's median. Needs: BIN, RESULTS, CLUSTER (set by suite.sh).

# kafka_port_base: a base with three free consecutive ports on 127.0.0.1.
kafka_port_base() {
    local b
    for _ in $(seq 100); do
        b=$((20000 + RANDOM % 40000))
        if python3 - "$b" <<'PY' 2>/dev/null
import socket, sys
b = int(sys.argv[1])
ss = []
for p in range(b, b + 3):
    s = socket.socket(); s.bind(("127.0.0.1", p)); ss.append(s)
PY
        then echo "$b"; return 0; fi
    done
    echo "bench: no three free ports" >&2
    return 1
}

# kafka_address: the Kafka address of the cluster's broker 1.
kafka_address() {
    "$BIN/yak-node" cluster status --json --cluster "$CLUSTER" \
        | python3 -c 'import json,sys; print(sorted((b["id"], b["kafka_address"]) for b in json.load(sys.stdin)["brokers"])[0][1])'
}

# kafka_result LABEL MESSAGES MS FAILED [MEMBERS]: one JSON line into $RESULTS
# (with "members" for a group row, as `bench consume --group` writes it).
kafka_result() {
    python3 - "$@" >> "$RESULTS" <<'PY'
import json, sys
label, messages, ms, failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = max(ms, 1) / 1000.0
row = {"name": label, "messages": messages, "message_bytes": 100, "seconds": s,
       "msgs_per_sec": messages / s, "mb_per_sec": messages * 100 / s / 1e6,
       "failed": failed}
if len(sys.argv) > 5:
    row["members"] = int(sys.argv[5])
print(json.dumps(row))
PY
}

# kafka_produce LABEL TOPIC PARTITIONS REPLICATION ACKS MESSAGES
kafka_produce() {
    local label=$1 topic=$2 partitions=$3 rf=$4 acks=$5 messages=$6 out
    "$BIN/yak-node" topic create "$topic" --partitions "$partitions" --replication-factor "$rf" --cluster "$CLUSTER" >/dev/null
    sync
    out=$("$RDKAFKA_PERF" -P -t "$topic" -b "$(kafka_address)" -s 100 -c "$messages" -a "$acks" -q \
        -X linger.ms=5 -X batch.size=1000000 2>&1 | grep 'messages produced' | tail -1)
    # "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: ..."
    local delivered failed ms
    delivered=$(sed -E 's/.* ([0-9]+) delivered.*/\1/' <<<"$out")
    failed=$(sed -E 's/.*, ([0-9]+) failed\).*/\1/' <<<"$out")
    ms=$(sed -E 's/.* in ([0-9]+)ms:.*/\1/' <<<"$out")
    [ -n "$out" ] || { echo "bench: rdkafka_performance produced no summary" >&2; return 1; }
    kafka_result "$label" "$delivered" "$ms" "$failed"
}

# kafka_consume LABEL TOPIC PARTITIONS MESSAGES: from the beginning of every partition.
kafka_consume() {
    local label=$1 topic=$2 partitions=$3 messages=$4 out ps=()
    for p in $(seq 0 $((partitions - 1))); do ps+=(-p "$p"); done
    sync
    out=$("$RDKAFKA_PERF" -C -t "$topic" "${ps[@]}" -b "$(kafka_address)" -o beginning -e -c "$messages" -q 2>&1 \
        | grep 'messages (.*consumed' | tail -1)
    # "% N messages (B bytes) consumed in T ms: ..."
    [ -n "$out" ] || { echo "bench: rdkafka_performance consumed no summary" >&2; return 1; }
    local n ms
    n=$(sed -E 's/^% ([0-9]+) messages.*/\1/' <<<"$out")
    ms=$(sed -E 's/.* in ([0-9]+)ms:.*/\1/' <<<"$out")
    kafka_result "$label" "$n" "$ms" $(( messages > n ? messages - n : 0 ))
}

# A group member that has not exited after this long is stopped (SIGINT:
# it prints its summary) and the row counts what was read.
KAFKA_GROUP_TIMEOUT_S=${KAFKA_GROUP_TIMEOUT_S:-120}

# kafka_group_consume LABEL TOPIC MEMBERS MESSAGES [ARGS...]: MEMBERS
# rdkafka_performance processes in one fresh group (-C -G: subscribe, the
# classic group protocol, auto.offset.reset=earliest), started at once, each
# exiting once every partition it holds is at its end (-e) and closing
# (commit, leave); ARGS go to each (e.g. -X settings). Aggregate = messages
# read by all / wall time from the first start to the last exit; "failed" =
# MESSAGES not read.
kafka_group_consume() {
    local label=$1 topic=$2 members=$3 messages=$4
    shift 4
    local group addr start end n=0 i c logs=() pids=()
    group=kg-$topic-$members-$RANDOM
    addr=$(kafka_address)
    sync
    start=$(date +%s%N)
    for i in $(seq 1 "$members"); do
        logs+=("$OUT/$group.$i.log")
        timeout -s INT "$KAFKA_GROUP_TIMEOUT_S" "$RDKAFKA_PERF" -C -G "$group" -t "$topic" -b "$addr" -e -q "$@" \
            > "${logs[-1]}" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || echo "bench: group member $((i + 1)) of $label exited non-zero; log: ${logs[$i]}" >&2
    done
    end=$(date +%s%N)
    for i in "${!logs[@]}"; do
        # "% N messages (B bytes) consumed in T ms: ..."
        c=$(grep 'messages (.*consumed' "${logs[$i]}" | tail -1 | sed -E 's/^% ([0-9]+) messages.*/\1/')
        [ -n "$c" ] || { echo "bench: group member $((i + 1)) printed no summary; log: ${logs[$i]}" >&2; c=0; }
        n=$((n + c))
    done
    kafka_result "$label" "$n" $(((end - start) / 1000000)) $((messages > n ? messages - n : 0)) "$members"
}

# kafka_ratios RESULTS "KAFKA LABEL|NATIVE LABEL"...: medians side by side.
kafka_ratios() {
    python3 - "$@" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
def median(name):
    v = [r["msgs_per_sec"] for r in rows if r["name"] == name]
    return (statistics.median(v), len(v)) if v else (None, 0)
print("\nThrough the Kafka protocol (librdkafka rdkafka_performance) vs native (yak-node bench), medians, msg/s:")
print(f"{'row':<60} {'Kafka':>12} {'native':>12} {'ratio':>7}")
for pair in sys.argv[2:]:
    k, n = pair.split("|", 1)
    (km, kc), (nm, nc) = median(k), median(n)
    ratio = f"{km / nm:.0%}" if km and nm else "-"
    fmt = lambda m: f"{m:,.0f}" if m else "-"
    print(f"{k:<60} {fmt(km):>12} {fmt(nm):>12} {ratio:>7}")
PY
}
