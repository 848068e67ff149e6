//! `group list|describe|reset-offsets`: consumer groups, their members,
//! committed offsets and lag.

use super::GroupCommand;
use crate::client::Admin;
use crate::protocol::{GroupDescription, LocalPartition, MemberDescription, PartitionOffset};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(Value::to_string).collect::<Vec<_>>().join(","),
        v => v.to_string(),
    }
}

/// Runs a `group` subcommand.
pub fn run(command: GroupCommand, cluster: &Path) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    match command {
        GroupCommand::List { json } => list(&mut admin, json),
        GroupCommand::Describe { group, json } => describe(&mut admin, &group, json),
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
        } => {
            let to = match (to_earliest, to_latest, to_offset) {
                (true, _, _) => Target::Earliest,
                (_, true, _) => Target::Latest,
                (_, _, Some(n)) if n < 0 => {
                    return Err(format!("--to-offset must not be negative, got {n}").into())
                }
                (_, _, Some(n)) => Target::Offset(n as u64),
                _ => return Err("say where to: --to-earliest, --to-latest or --to-offset N".into()),
            };
            reset(&mut admin, &group, &topic, to)
        }
    }
}

fn list(admin: &mut Admin, json: bool) -> CliResult {
    let groups = admin.list_groups()?;
    if json {
        let v: Vec<Value> = groups
            .iter()
            .map(|g| json!({"group": g.group, "state": g.state, "members": g.members, "topics": g.topics}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if groups.is_empty() {
        println!("no groups");
        return Ok(());
    }
    let mut t = table(&["group", "state", "members", "topics"]);
    for g in &groups {
        t.add_row(vec![
            g.group.clone(),
            g.state.clone(),
            g.members.to_string(),
            g.topics.join(","),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The topics a member subscribes to (`topic` alone from an older ZooKeeper).
fn subscribed(m: &MemberDescription) -> Vec<String> {
    if m.topics.is_empty() {
        vec![m.topic.clone()]
    } else {
        m.topics.clone()
    }
}

/// The group as JSON, with each partition's offsets from its leader and the lag.
fn describe_json(
    admin: &mut Admin,
    g: &GroupDescription,
) -> Result<Value, Box<dyn std::error::Error>> {
    // Every topic a member subscribes to, and every topic with offsets.
    let mut topics: BTreeSet<String> = g.members.iter().flat_map(subscribed).collect();
    topics.extend(g.offsets.iter().map(|o| o.topic.clone()));
    let owner: BTreeMap<(&str, u32), &MemberDescription> = g
        .members
        .iter()
        .flat_map(|m| {
            m.assigned.iter().flat_map(move |a| {
                a.partitions
                    .iter()
                    .map(move |p| ((a.topic.as_str(), *p), m))
            })
        })
        .collect();
    let committed: BTreeMap<(&str, u32), u64> = g
        .offsets
        .iter()
        .flat_map(|t| {
            t.offsets
                .iter()
                .map(move |o| ((t.topic.as_str(), o.partition), o.offset))
        })
        .collect();
    let mut partitions = Vec::new();
    let mut total_lag = 0u64;
    for topic in &topics {
        // A deleted topic has no partitions to show.
        let Ok(leaders) = admin.leader_offsets(topic) else {
            continue;
        };
        for (p, view) in leaders {
            let c = committed.get(&(topic.as_str(), p)).copied();
            let hw = view.as_ref().map(|v| v.high_watermark);
            let lag = match (c, hw) {
                (Some(c), Some(hw)) => Some(hw.saturating_sub(c)),
                _ => None,
            };
            total_lag += lag.unwrap_or(0);
            let m = owner.get(&(topic.as_str(), p));
            partitions.push(json!({
                "topic": topic,
                "partition": p,
                "member_id": m.map(|m| m.member_id.clone()),
                "client": m.map(|m| m.client.clone()),
                "committed_offset": c,
                "log_end_offset": view.as_ref().map(|v| v.log_end_offset),
                "high_watermark": hw,
                "lag": lag,
            }));
        }
    }
    Ok(json!({
        "group": g.group,
        "state": g.state,
        "generation": g.generation,
        "assignor": g.protocol.as_deref().unwrap_or(g.assignor.name()),
        "members": g.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "client": m.client,
            "topic": m.topic,
            "partitions": m.partitions,
            "topics": subscribed(m),
            "assigned": m.assigned.iter().map(|a| json!({
                "topic": a.topic,
                "partitions": a.partitions,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "partitions": partitions,
        "total_lag": total_lag,
    }))
}

fn describe(admin: &mut Admin, group: &str, json: bool) -> CliResult {
    let g = admin.describe_group(group)?;
    let v = describe_json(admin, &g)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "group {} ({}, generation {}, {} assignor), {} members, total lag {}",
        g.group,
        g.state,
        g.generation,
        g.protocol.as_deref().unwrap_or(g.assignor.name()),
        g.members.len(),
        v["total_lag"]
    );
    if !g.members.is_empty() {
        let mut t = table(&["member", "client", "topics", "partitions"]);
        for m in &g.members {
            let shares: Vec<String> = m
                .assigned
                .iter()
                .filter(|a| !a.partitions.is_empty())
                .map(|a| format!("{}:{}", a.topic, cell(&json!(a.partitions))))
                .collect();
            t.add_row(vec![
                m.member_id.clone(),
                m.client.clone(),
                subscribed(m).join(","),
                shares.join(" "),
            ]);
        }
        println!("{t}");
    }
    let mut t = table(&[
        "topic",
        "partition",
        "client",
        "committed offset",
        "log end offset",
        "high watermark",
        "lag",
    ]);
    for p in v["partitions"].as_array().into_iter().flatten() {
        let cols = [
            "topic",
            "partition",
            "client",
            "committed_offset",
            "log_end_offset",
            "high_watermark",
            "lag",
        ];
        t.add_row(cols.iter().map(|c| cell(&p[*c])).collect::<Vec<_>>());
    }
    println!("{t}");
    Ok(())
}

/// Where `reset-offsets` moves a group.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(u64),
}

/// Resolves the target per partition and checks it lies within the log.
fn plan_reset(
    topic: &str,
    leaders: &[(u32, Option<LocalPartition>)],
    to: Target,
) -> Result<Vec<PartitionOffset>, String> {
    let mut out = Vec::new();
    for (p, view) in leaders {
        let v = view
            .as_ref()
            .ok_or_else(|| format!("{topic}-{p} has no reachable leader; try again"))?;
        let offset = match to {
            Target::Earliest => v.log_start_offset,
            Target::Latest => v.high_watermark,
            Target::Offset(n) if n > v.high_watermark => {
                return Err(format!(
                    "--to-offset {n} is past the end of {topic}-{p} (its log ends at offset {})",
                    v.high_watermark
                ))
            }
            Target::Offset(n) if n < v.log_start_offset => {
                return Err(format!(
                "--to-offset {n} is before the start of {topic}-{p} (its log starts at offset {})",
                v.log_start_offset
            ))
            }
            Target::Offset(n) => n,
        };
        out.push(PartitionOffset {
            partition: *p,
            offset,
        });
    }
    Ok(out)
}

fn reset(admin: &mut Admin, group: &str, topic: &str, to: Target) -> CliResult {
    let leaders = admin.leader_offsets(topic)?;
    let offsets = plan_reset(topic, &leaders, to)?;
    admin.reset_offsets(group, topic, offsets.clone())?;
    let list: Vec<String> = offsets
        .iter()
        .map(|o| format!("{}:{}", o.partition, o.offset))
        .collect();
    println!("reset group {group} on {topic} to {}", list.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(start: u64, hw: u64) -> Option<LocalPartition> {
        Some(LocalPartition {
            topic: "t".into(),
            partition: 0,
            topic_id: 1,
            log_start_offset: start,
            log_end_offset: hw,
            high_watermark: hw,
            leader_epoch: 0,
            is_leader: true,
            isr: vec![1],
            size_bytes: 0,
        })
    }

    #[test]
    fn given_targets_when_planning_reset_should_resolve_or_refuse_out_of_range() {
        let leaders = vec![(0, view(0, 10)), (1, view(2, 5))];
        let po = |partition, offset| PartitionOffset { partition, offset };
        assert_eq!(
            plan_reset("t", &leaders, Target::Earliest),
            Ok(vec![po(0, 0), po(1, 2)])
        );
        assert_eq!(
            plan_reset("t", &leaders, Target::Latest),
            Ok(vec![po(0, 10), po(1, 5)])
        );
        assert_eq!(
            plan_reset("t", &leaders, Target::Offset(4)),
            Ok(vec![po(0, 4), po(1, 4)])
        );
        let past = plan_reset("t", &leaders, Target::Offset(6)).expect_err("past the end of t-1");
        assert!(past.contains("past the end of t-1"), "{past}");
        let before = plan_reset("t", &leaders, Target::Offset(1)).expect_err("before start of t-1");
        assert!(before.contains("before the start of t-1"), "{before}");
        assert!(plan_reset("t", &[(0, None)], Target::Latest).is_err());
    }
}
