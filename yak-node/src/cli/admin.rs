//! `topic create|delete|list|describe`, `cluster status` and `cluster rebalance-leaders`.
//! (`topic alter|reassign` and the broker commands are in `ops.rs`.)

use super::TopicCommand;
use crate::client::Admin;
use crate::protocol::{PartitionMetadata, TopicConfig, TopicMetadata};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn ids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "none".into(), |l| l.to_string())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// A retention override, or what applies without one.
fn retention(v: Option<u64>) -> String {
    v.map_or_else(|| "cluster default".into(), |n| n.to_string())
}

/// A partition's preferred leader: the first replica.
fn preferred(p: &PartitionMetadata) -> Option<u32> {
    p.replicas.first().copied()
}

/// Led by its preferred replica.
fn on_preferred(p: &PartitionMetadata) -> bool {
    p.leader.is_some() && p.leader == preferred(p)
}

/// Partitions not led by their preferred replica (Kafka's leader imbalance).
fn imbalance(t: &TopicMetadata) -> usize {
    t.partitions.iter().filter(|p| !on_preferred(p)).count()
}

/// A reassignment in progress, as JSON (null when none).
fn reassignment_json(p: &PartitionMetadata, progress: Option<(u64, u64)>) -> serde_json::Value {
    p.reassignment
        .as_ref()
        .map_or(serde_json::Value::Null, |r| {
            json!({
                "target": r.target,
                "adding": r.adding,
                "removing": r.removing,
                "original": r.original_replicas(&p.replicas),
                "throttle_bytes_per_sec": r.throttle_bytes_per_sec,
                "bytes_copied": progress.map(|(have, _)| have),
                "bytes_total": progress.map(|(_, need)| need),
            })
        })
}

/// A reassignment in progress, for a table cell.
fn reassignment_text(p: &PartitionMetadata, progress: Option<(u64, u64)>) -> String {
    p.reassignment.as_ref().map_or_else(
        || "-".into(),
        |r| {
            let copied = progress.map_or_else(String::new, |(have, need)| {
                format!(
                    ", {}/{} copied",
                    super::ops::megabytes(have),
                    super::ops::megabytes(need)
                )
            });
            format!(
                "-> {} (+{} -{}{copied})",
                ids(&r.target),
                ids(&r.adding),
                ids(&r.removing)
            )
        },
    )
}

/// Each moving partition's copy progress (bytes held, bytes to hold).
fn progress_of(admin: &mut Admin, t: &TopicMetadata) -> BTreeMap<u32, (u64, u64)> {
    if t.partitions.iter().all(|p| p.reassignment.is_none()) {
        return BTreeMap::new();
    }
    let Ok(offsets) = admin.replica_offsets() else {
        return BTreeMap::new();
    };
    t.partitions
        .iter()
        .filter_map(|p| super::ops::bytes_copied(&t.name, p, &offsets).map(|c| (p.partition, c)))
        .collect()
}

fn topic_json(t: &TopicMetadata, progress: &BTreeMap<u32, (u64, u64)>) -> serde_json::Value {
    json!({
        "configs": super::ops::configs(t).into_iter().map(|(name, value, source)| json!({
            "name": name,
            "value": value,
            "source": source,
        })).collect::<Vec<_>>(),
        "name": t.name,
        "topic_id": t.topic_id,
        "retention_bytes": t.config.retention_bytes,
        "retention_ms": t.config.retention_ms,
        "leader_imbalance": imbalance(t),
        "partitions": t.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "preferred_leader": preferred(p),
            "on_preferred_leader": on_preferred(p),
            "replicas": p.replicas,
            "isr": p.isr,
            "leader_epoch": p.leader_epoch,
            "reassignment": reassignment_json(p, progress.get(&p.partition).copied()),
        })).collect::<Vec<_>>(),
    })
}

/// Runs a `topic` subcommand.
pub fn topic(command: TopicCommand, cluster: &Path) -> CliResult {
    let command = match command {
        TopicCommand::Alter(a) => return super::ops::alter(a, cluster),
        TopicCommand::Reassign {
            name,
            partition,
            replicas,
            throttle_bytes_per_sec,
            no_wait,
            cancel: _,
        } => {
            return super::ops::reassign(
                cluster,
                &name,
                partition,
                replicas,
                throttle_bytes_per_sec,
                !no_wait,
            )
        }
        other => other,
    };
    let mut admin = Admin::connect(cluster)?;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            retention_bytes,
            retention_ms,
            message_timestamp_type,
        } => {
            let config = TopicConfig {
                retention_bytes,
                retention_ms,
                message_timestamp_type,
                ..TopicConfig::default()
            };
            let t =
                admin.create_topic_with_config(&name, partitions, replication_factor, config)?;
            let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
            println!(
                "created topic {} with {} partitions, replication factor {rf}",
                t.name,
                t.partitions.len()
            );
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name)?;
            println!("deleted topic {name}");
        }
        TopicCommand::List { json } => {
            let m = admin.metadata()?;
            if json {
                let v: Vec<_> = m
                    .topics
                    .iter()
                    .map(|t| {
                        json!({
                            "name": t.name,
                            "partitions": t.partitions.len(),
                            "replication_factor": t.partitions.first().map_or(0, |p| p.replicas.len()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for t in &m.topics {
                    println!("{}", t.name);
                }
            }
        }
        TopicCommand::Alter(_) | TopicCommand::Reassign { .. } => {
            unreachable!("invariant: handled above")
        }
        TopicCommand::Describe { name, json } => {
            let t = admin.describe_topic(&name)?;
            let progress = progress_of(&mut admin, &t);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&topic_json(&t, &progress))?
                );
            } else {
                println!(
                    "topic {} (id {}), {} partitions",
                    t.name,
                    t.topic_id,
                    t.partitions.len()
                );
                println!(
                    "retention.bytes: {}, retention.ms: {}",
                    retention(t.config.retention_bytes),
                    retention(t.config.retention_ms)
                );
                for (key, value, source) in super::ops::configs(&t) {
                    println!("  {key} = {value} ({source})");
                }
                println!(
                    "leader imbalance: {} of {} partitions not led by their preferred replica",
                    imbalance(&t),
                    t.partitions.len()
                );
                let mut tab = table(&[
                    "partition",
                    "leader",
                    "preferred leader",
                    "on preferred",
                    "replicas",
                    "isr",
                    "leader epoch",
                    "reassignment",
                ]);
                for p in &t.partitions {
                    tab.add_row(vec![
                        p.partition.to_string(),
                        opt(p.leader),
                        opt(preferred(p)),
                        if on_preferred(p) { "yes" } else { "no" }.to_string(),
                        ids(&p.replicas),
                        ids(&p.isr),
                        p.leader_epoch.to_string(),
                        reassignment_text(p, progress.get(&p.partition).copied()),
                    ]);
                }
                println!("{tab}");
            }
        }
    }
    Ok(())
}

/// Runs `cluster rebalance-leaders`: one line per partition moved.
pub fn rebalance_leaders(cluster: &Path, topic: Option<&str>, json: bool) -> CliResult {
    let moved = Admin::connect(cluster)?.rebalance_leaders(topic)?;
    if json {
        let v: Vec<_> = moved
            .iter()
            .map(|m| {
                json!({
                    "topic": m.topic,
                    "partition": m.partition,
                    "old_leader": m.old_leader,
                    "new_leader": m.new_leader,
                    "leader_epoch": m.leader_epoch,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if moved.is_empty() {
        println!("every partition is led by its preferred replica (or it is not in the ISR): nothing moved");
    }
    for m in &moved {
        println!(
            "{}-{}: leader {} -> {} (preferred), epoch {}",
            m.topic,
            m.partition,
            opt(m.old_leader),
            m.new_leader,
            m.leader_epoch
        );
    }
    Ok(())
}

fn replica_leos(v: &serde_json::Value) -> String {
    let Some(list) = v.as_array() else {
        return String::new();
    };
    list.iter()
        .map(|r| {
            let leo = r["log_end_offset"]
                .as_u64()
                .map_or_else(|| "-".to_string(), |o| o.to_string());
            format!("{}:{leo}", r["broker"])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cluster status`.
pub fn status(cluster: &Path, json: bool) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    let m = admin.metadata()?;
    let offsets = admin.replica_offsets()?;
    let mut partitions = Vec::new();
    for t in &m.topics {
        for p in &t.partitions {
            let leader_view = p
                .leader
                .and_then(|l| offsets.get(&(t.name.clone(), p.partition, l)));
            let replica_leos: Vec<serde_json::Value> = p
                .replicas
                .iter()
                .map(|r| {
                    let leo = offsets
                        .get(&(t.name.clone(), p.partition, *r))
                        .map(|o| o.log_end_offset);
                    json!({"broker": r, "log_end_offset": leo})
                })
                .collect();
            partitions.push(json!({
                "topic": t.name,
                "partition": p.partition,
                "leader": p.leader,
                "replicas": p.replicas,
                "isr": p.isr,
                "leader_epoch": p.leader_epoch,
                "high_watermark": leader_view.map(|o| o.high_watermark),
                "log_start_offset": leader_view.map(|o| o.log_start_offset),
                "log_end_offset": leader_view.map(|o| o.log_end_offset),
                "replica_log_end_offsets": replica_leos,
                "reassignment": reassignment_json(p, super::ops::bytes_copied(&t.name, p, &offsets)),
            }));
        }
    }
    let brokers: Vec<_> = m
        .brokers
        .iter()
        .map(|b| {
            json!({"id": b.id, "pid": b.pid, "alive": b.alive, "restarts": b.restarts,
            "kafka_address": b.kafka_address})
        })
        .collect();
    if json {
        let v = json!({"cluster_id": m.cluster_id, "brokers": brokers, "partitions": partitions});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("cluster id: {}", m.cluster_id);
    let mut tb = table(&["broker", "pid", "alive", "restarts", "socket", "kafka"]);
    for b in &m.brokers {
        tb.add_row(vec![
            b.id.to_string(),
            b.pid.to_string(),
            b.alive.to_string(),
            b.restarts.to_string(),
            b.socket.clone(),
            b.kafka_address.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{tb}");
    let mut tp = table(&[
        "topic",
        "partition",
        "leader",
        "replicas",
        "isr",
        "epoch",
        "log start offset",
        "high watermark",
        "log end offset",
        "replica log end offsets",
        "reassignment",
    ]);
    for p in &partitions {
        let s = |k: &str| match &p[k] {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            v => v.to_string(),
        };
        tp.add_row(vec![
            s("topic"),
            s("partition"),
            s("leader"),
            s("replicas"),
            s("isr"),
            s("leader_epoch"),
            s("log_start_offset"),
            s("high_watermark"),
            s("log_end_offset"),
            replica_leos(&p["replica_log_end_offsets"]),
            match &p["reassignment"] {
                serde_json::Value::Null => "-".to_string(),
                r => format!("-> {} (+{} -{})", r["target"], r["adding"], r["removing"]),
            },
        ]);
    }
    if partitions.is_empty() {
        println!("no topics");
    } else {
        println!("{tp}");
    }
    Ok(())
}
