//! Operating a live cluster: `topic alter`, `topic reassign`, `cluster
//! add-broker`, `cluster remove-broker` and `cluster rebalance` (planned by
//! `zookeeper::balance`, carried out by reassignment, with progress).
//! Parses, calls the admin client or the supervisor's socket, prints.

use crate::client::admin::ReplicaOffsets;
use crate::client::{Admin, Connection};
use crate::limits::{REASSIGN_POLL_MS, REASSIGN_WAIT_MS_DEFAULT};
use crate::protocol::{
    Call, PartitionMetadata, PartitionMove, PartitionRef, Reply, TimestampType, TopicConfig,
    TopicMetadata,
};
use crate::zookeeper::balance::{plan_balance, PlannedMove};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// `topic alter` flags.
#[derive(Debug, clap::Args)]
pub struct AlterArgs {
    /// Topic name.
    pub name: String,
    /// Grow the topic to this many partitions (never shrinks). Keyed
    /// messages may map to other partitions afterwards, as in Kafka.
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Kafka's retention.ms for this topic.
    #[arg(long)]
    pub retention_ms: Option<u64>,
    /// Kafka's retention.bytes for this topic.
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Kafka's min.insync.replicas for this topic (1..=replication factor).
    #[arg(long)]
    pub min_insync_replicas: Option<u32>,
    /// Kafka's segment.bytes for this topic (applies from the next roll).
    #[arg(long)]
    pub segment_bytes: Option<u64>,
    /// Kafka's message.timestamp.type for this topic: CreateTime (the
    /// producer's time) or LogAppendTime (the leader's time at append).
    #[arg(long, value_parser = parse_timestamp_type, value_name = "TYPE")]
    pub message_timestamp_type: Option<TimestampType>,
    /// Back to the cluster default: retention.ms, retention.bytes,
    /// min.insync.replicas, segment.bytes or message.timestamp.type
    /// (repeatable).
    #[arg(long, value_name = "KEY")]
    pub delete_config: Vec<String>,
}

/// Runs `topic alter`.
pub fn alter(a: AlterArgs, cluster: &Path) -> CliResult {
    let set = TopicConfig {
        retention_ms: a.retention_ms,
        retention_bytes: a.retention_bytes,
        min_insync_replicas: a.min_insync_replicas,
        segment_bytes: a.segment_bytes,
        message_timestamp_type: a.message_timestamp_type,
    };
    if a.partitions.is_none() && set == TopicConfig::default() && a.delete_config.is_empty() {
        return Err("nothing to alter: give --partitions, a setting or --delete-config".into());
    }
    let mut admin = Admin::connect(cluster)?;
    if let Some(n) = a.partitions {
        let before = admin.describe_topic(&a.name)?.partitions.len();
        let t = admin.create_partitions(&a.name, n)?;
        println!(
            "topic {}: {before} -> {} partitions (keyed messages may now map to other partitions; producers and groups pick the new ones up at their next metadata refresh)",
            t.name,
            t.partitions.len()
        );
    }
    if set != TopicConfig::default() || !a.delete_config.is_empty() {
        let t = admin.alter_topic_config(&a.name, set, &a.delete_config)?;
        println!("topic {}: settings now", t.name);
        for (key, value, source) in configs(&t) {
            println!("  {key} = {value} ({source})");
        }
    }
    Ok(())
}

/// Parses Kafka's `message.timestamp.type` names.
pub fn parse_timestamp_type(s: &str) -> Result<TimestampType, String> {
    TimestampType::parse(s)
        .ok_or_else(|| format!("'{s}' is not a timestamp type: CreateTime or LogAppendTime"))
}

/// Parses `1,2,4`.
pub fn parse_ids(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|id| {
            id.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{id}' is not a broker id (expected a list like 1,2,4)"))
        })
        .collect()
}

/// Runs `topic reassign`: moves the partition to `replicas`, or with
/// `None` (`--cancel`) cancels its move in progress.
pub fn reassign(
    cluster: &Path,
    topic: &str,
    partition: u32,
    replicas: Option<Vec<u32>>,
    throttle: Option<u64>,
    wait: bool,
) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    let Some(replicas) = replicas else {
        admin.cancel_reassignments(vec![PartitionRef {
            topic: topic.to_string(),
            partition,
        }])?;
        let t = admin.describe_topic(topic)?;
        let now = t
            .partitions
            .get(partition as usize)
            .map(|p| p.replicas.clone())
            .unwrap_or_default();
        println!("{topic}-{partition}: reassignment cancelled, replicas back to {now:?}");
        return Ok(());
    };
    let moves = vec![PartitionMove {
        topic: topic.to_string(),
        partition,
        replicas: replicas.clone(),
    }];
    let started = admin.reassign(moves, throttle)?;
    if started == 0 {
        println!("{topic}-{partition} already has replicas {replicas:?} (or is moving there)");
    } else {
        println!("{topic}-{partition}: moving to replicas {replicas:?}");
    }
    if wait {
        let mut wanted = BTreeSet::new();
        wanted.insert((topic.to_string(), partition));
        wait_for(&mut admin, &wanted, false)?;
        println!("{topic}-{partition}: done");
    }
    Ok(())
}

/// The alive brokers' ids, sorted.
fn alive_brokers(admin: &mut Admin) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    let mut ids: Vec<u32> = admin
        .metadata()?
        .brokers
        .iter()
        .filter(|b| b.alive)
        .map(|b| b.id)
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

fn plan_json(moves: &[PlannedMove]) -> serde_json::Value {
    json!(moves
        .iter()
        .map(|m| json!({
            "topic": m.topic,
            "partition": m.partition,
            "from": m.from,
            "to": m.to,
            "added": m.added(),
        }))
        .collect::<Vec<_>>())
}

fn print_plan(moves: &[PlannedMove]) {
    if moves.is_empty() {
        println!("balanced: every broker holds an equal share (±1) of replicas and preferred leaders; nothing to move");
        return;
    }
    let mut tab = comfy_table::Table::new();
    tab.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(vec![
            "topic",
            "partition",
            "replicas now",
            "replicas after",
            "copies to",
        ]);
    for m in moves {
        let ids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let added = m.added();
        tab.add_row(vec![
            m.topic.clone(),
            m.partition.to_string(),
            ids(&m.from),
            ids(&m.to),
            if added.is_empty() {
                "- (leader order only)".to_string()
            } else {
                ids(&added)
            },
        ]);
    }
    println!("{tab}");
    let copies: usize = moves.iter().map(|m| m.added().len()).sum();
    println!("{} partitions change, {copies} replica copies", moves.len());
}

/// Starts `moves` and waits for them, printing progress.
fn execute(
    admin: &mut Admin,
    moves: &[PlannedMove],
    throttle: Option<u64>,
    json_out: bool,
) -> CliResult {
    let calls: Vec<PartitionMove> = moves
        .iter()
        .map(|m| PartitionMove {
            topic: m.topic.clone(),
            partition: m.partition,
            replicas: m.to.clone(),
        })
        .collect();
    admin.reassign(calls, throttle)?;
    let wanted: BTreeSet<(String, u32)> = moves
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let started = Instant::now();
    wait_for(admin, &wanted, json_out)?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "moves": plan_json(moves),
                "elapsed_ms": started.elapsed().as_millis() as u64,
            }))?
        );
    } else {
        println!(
            "done: {} partitions moved in {:.1} s",
            moves.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Bytes the new replicas of one moving partition hold, and the bytes
/// they must hold (the leader's log size, once per new replica): the
/// progress of its copy. `None` if it is not moving or its leader did not
/// answer.
pub fn bytes_copied(
    topic: &str,
    p: &PartitionMetadata,
    offsets: &ReplicaOffsets,
) -> Option<(u64, u64)> {
    let r = p.reassignment.as_ref()?;
    let leader = offsets.get(&(topic.to_string(), p.partition, p.leader?))?;
    let (mut have, mut need) = (0, 0);
    for b in &r.adding {
        need += leader.size_bytes;
        have += offsets
            .get(&(topic.to_string(), p.partition, *b))
            .map_or(0, |o| o.size_bytes.min(leader.size_bytes));
    }
    Some((have, need))
}

/// [`bytes_copied`] summed over `wanted`'s moving partitions.
fn copied(
    admin: &mut Admin,
    topics: &[TopicMetadata],
    wanted: &BTreeSet<(String, u32)>,
) -> (u64, u64) {
    let Ok(offsets) = admin.replica_offsets() else {
        return (0, 0);
    };
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(t, p)| wanted.contains(&(t.name.clone(), p.partition)))
        .filter_map(|(t, p)| bytes_copied(&t.name, p, &offsets))
        .fold((0, 0), |(h, n), (have, need)| (h + have, n + need))
}

/// `n` bytes for people: `12.3 MB`.
pub fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

/// Polls until none of `wanted` is being reassigned; prints progress to
/// stderr (partitions done, bytes copied onto the new replicas of those
/// still moving).
fn wait_for(admin: &mut Admin, wanted: &BTreeSet<(String, u32)>, quiet: bool) -> CliResult {
    let deadline = Instant::now() + Duration::from_millis(REASSIGN_WAIT_MS_DEFAULT);
    let mut last = String::new();
    loop {
        let m = admin.metadata()?;
        let moving: usize = m
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.reassignment.is_some())
                    .map(move |p| (t.name.clone(), p.partition))
            })
            .filter(|tp| wanted.contains(tp))
            .count();
        let (have, need) = copied(admin, &m.topics, wanted);
        let line = format!(
            "moving: {}/{} partitions done, {}/{} copied onto new replicas (partitions still moving)",
            wanted.len() - moving,
            wanted.len(),
            megabytes(have),
            megabytes(need)
        );
        if !quiet && line != last {
            eprintln!("{line}");
            last = line;
        }
        if moving == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{moving} partitions still moving after {} s (they go on; see `cluster status`)",
                REASSIGN_WAIT_MS_DEFAULT / 1000
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(REASSIGN_POLL_MS));
    }
}

/// Runs `cluster rebalance`.
pub fn rebalance(
    cluster: &Path,
    dry_run: bool,
    json_out: bool,
    throttle: Option<u64>,
) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    let brokers = alive_brokers(&mut admin)?;
    let topics = admin.metadata()?.topics;
    let moves = plan_balance(&topics, &brokers)?;
    if dry_run {
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"brokers": brokers, "moves": plan_json(&moves)})
                )?
            );
        } else {
            print_plan(&moves);
        }
        return Ok(());
    }
    if !json_out {
        print_plan(&moves);
    }
    if moves.is_empty() {
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"moves": [], "elapsed_ms": 0}))?
            );
        }
        return Ok(());
    }
    execute(&mut admin, &moves, throttle, json_out)
}

fn supervisor_call(cluster: &Path, call: &Call) -> Result<Reply, Box<dyn std::error::Error>> {
    let path = cluster.join("supervisor.sock");
    let mut c = Connection::connect(&path)
        .map_err(|e| format!("cannot reach the supervisor at {}: {e}", path.display()))?;
    match c.call(call)? {
        Reply::Error(e) => Err(e.to_string().into()),
        other => Ok(other),
    }
}

/// Runs `cluster add-broker`: the supervisor starts it; waits until it
/// registers with ZooKeeper.
pub fn add_broker(cluster: &Path) -> CliResult {
    let (id, pid) = match supervisor_call(cluster, &Call::AddBroker)? {
        Reply::BrokerAdded { broker_id, pid } => (broker_id, pid),
        other => return Err(format!("unexpected answer {other:?}").into()),
    };
    let mut admin = Admin::connect(cluster)?;
    let deadline =
        Instant::now() + Duration::from_millis(crate::limits::CLIENT_ZOOKEEPER_WAIT_MS_DEFAULT);
    while !alive_brokers(&mut admin)?.contains(&id) {
        if Instant::now() >= deadline {
            return Err(format!("broker {id} (pid {pid}) started but has not registered yet; see the supervisor's output").into());
        }
        std::thread::sleep(Duration::from_millis(REASSIGN_POLL_MS));
    }
    println!("{id}");
    eprintln!(
        "added broker {id} (pid {pid}); move replicas onto it with `yak-node cluster rebalance`"
    );
    Ok(())
}

/// Runs `cluster remove-broker`: moves every replica off it (refused if
/// the others cannot hold every partition's replication factor), then the
/// supervisor stops it and drops it from its set.
pub fn remove_broker(cluster: &Path, id: u32, throttle: Option<u64>) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    let m = admin.metadata()?;
    if !m.brokers.iter().any(|b| b.id == id) {
        return Err(format!("broker {id} is not registered with this cluster").into());
    }
    let remaining: Vec<u32> = alive_brokers(&mut admin)?
        .into_iter()
        .filter(|b| *b != id)
        .collect();
    let moves = plan_balance(&m.topics, &remaining)
        .map_err(|e| format!("cannot remove broker {id}: {e}"))?;
    eprintln!("draining broker {id}: {} partitions move", moves.len());
    if !moves.is_empty() {
        execute(&mut admin, &moves, throttle, false)?;
    }
    let still: Vec<String> = admin
        .metadata()?
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.replicas.contains(&id))
                .map(move |p| format!("{}-{}", t.name, p.partition))
        })
        .collect();
    if !still.is_empty() {
        return Err(format!(
            "broker {id} still holds {} (moved meanwhile?); run remove-broker again",
            still.join(", ")
        )
        .into());
    }
    match supervisor_call(cluster, &Call::RemoveBroker { broker_id: id })? {
        Reply::BrokerRemoved { broker_id } => println!("removed broker {broker_id}"),
        other => return Err(format!("unexpected answer {other:?}").into()),
    }
    Ok(())
}

/// Each setting of a topic: (Kafka's name, value, where it comes from).
/// A cluster default whose value the brokers hold (their flags) is shown
/// by the flag that sets it.
pub fn configs(t: &TopicMetadata) -> Vec<(&'static str, String, &'static str)> {
    let c = t.config;
    let rf = crate::zookeeper::alter::replication_factor(t);
    let topic_or = |v: Option<u64>, default: String| match v {
        Some(v) => (v.to_string(), "topic"),
        None => (default, "cluster default"),
    };
    let rows = [
        (
            "retention.ms",
            topic_or(c.retention_ms, "broker --retention-ms (none: kept)".into()),
        ),
        (
            "retention.bytes",
            topic_or(
                c.retention_bytes,
                "broker --retention-bytes (none: kept)".into(),
            ),
        ),
        (
            "min.insync.replicas",
            topic_or(
                c.min_insync_replicas.map(u64::from),
                crate::limits::MIN_INSYNC_REPLICAS_DEFAULT
                    .min(rf)
                    .max(1)
                    .to_string(),
            ),
        ),
        (
            "segment.bytes",
            topic_or(c.segment_bytes, "broker --segment-bytes".into()),
        ),
        (
            "message.timestamp.type",
            match c.message_timestamp_type {
                Some(t) => (t.name().to_string(), "topic"),
                None => (
                    TimestampType::CreateTime.name().to_string(),
                    "cluster default",
                ),
            },
        ),
    ];
    rows.into_iter().map(|(k, (v, s))| (k, v, s)).collect()
}
