//! Gathers a metrics [`Snapshot`] at scrape time: asks ZooKeeper (metadata,
//! groups) and every running broker (`LocalPartitions`, `BrokerStats`) in
//! parallel over their sockets, each bounded by `METRICS_CHILD_TIMEOUT_MS`,
//! and reads the children's state and resident memory.
//!
//! Owns: the scrape error counts (touched by metrics threads only) and the
//! derived figures (under-replicated and offline partitions, group lag).
//! Never: formats text (`metrics` does), blocks the supervisor's main loop
//! (it reads the children's state from the lock-free [`Board`]), waits on a
//! child past its timeout: a child that does not answer is left out.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use yak_protocol::connection::Connection;
use yak_protocol::limits::METRICS_CHILD_TIMEOUT_MS;
use yak_protocol::paths;
use yak_protocol::ClientError;
use yak_protocol::{Call, ClusterMetadata, GroupDescription, LocalPartition, Reply};

use crate::board::Board;
use crate::metrics::{BrokerSample, ChildSample, ClusterSample, GroupLag, Snapshot};

/// What ZooKeeper answered in one scrape.
struct ZkView {
    metadata: ClusterMetadata,
    groups: Vec<GroupDescription>,
}

/// What one broker answered in one scrape.
struct BrokerView {
    replicas: Vec<LocalPartition>,
    stats: yak_protocol::BrokerStatsReport,
}

/// Gathers snapshots of one cluster.
pub struct Scraper {
    run_dir: PathBuf,
    board: Arc<Board>,
    /// Failed scrapes per target since start.
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Scraper {
    /// A scraper of the cluster whose sockets are in `run_dir`.
    pub fn new(run_dir: PathBuf, board: Arc<Board>) -> Scraper {
        Scraper {
            run_dir,
            board,
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Everything the running children answer within their timeout.
    pub fn snapshot(&self) -> Snapshot {
        let began = Instant::now();
        let deadline = began + Duration::from_millis(METRICS_CHILD_TIMEOUT_MS);
        let children = self.board.read();
        let running: Vec<&str> = children
            .iter()
            .filter(|c| c.pid.is_some())
            .map(|c| c.name.as_str())
            .collect();
        let brokers: Vec<u32> = running
            .iter()
            .filter_map(|n| paths::broker_id_of(n))
            .collect();
        let run_dir = self.run_dir.as_path();
        let (zk, views) = std::thread::scope(|scope| {
            let zk = running
                .contains(&"zookeeper")
                .then(|| spawn(scope, "scrape-zk", || zookeeper(run_dir, deadline)));
            let handles: Vec<_> = brokers
                .iter()
                .map(|&id| {
                    (
                        id,
                        spawn(scope, "scrape-broker", move || {
                            broker(run_dir, id, deadline)
                        }),
                    )
                })
                .collect();
            let zk = zk.map(join);
            let views: Vec<(u32, Result<BrokerView, String>)> =
                handles.into_iter().map(|(id, h)| (id, join(h))).collect();
            (zk, views)
        });
        let mut s = Snapshot {
            children: children
                .iter()
                .map(|c| ChildSample {
                    name: c.name.clone(),
                    up: c.pid.is_some(),
                    restarts: c.restarts,
                    rss_bytes: c
                        .pid
                        .and_then(yak_bench::rss::rss_kib)
                        .map(|kib| kib * 1024),
                })
                .collect(),
            ..Snapshot::default()
        };
        let mut failed = Vec::new();
        let zk = match zk {
            Some(Ok(view)) => Some(view),
            Some(Err(e)) => {
                failed.push(("zookeeper".to_string(), e));
                None
            }
            None => None,
        };
        let mut replicas: HashMap<(String, u32, u32), LocalPartition> = HashMap::new();
        for (id, view) in views {
            match view {
                Ok(v) => {
                    for p in v.replicas {
                        s.replicas.push((id, p.clone()));
                        replicas.insert((p.topic.clone(), p.partition, id), p);
                    }
                    s.brokers.push(BrokerSample {
                        broker: id,
                        stats: v.stats,
                    });
                }
                Err(e) => failed.push((paths::broker_name(id), e)),
            }
        }
        if let Some(zk) = &zk {
            s.cluster = Some(cluster_sample(&zk.metadata));
            s.group_members = zk
                .groups
                .iter()
                .map(|g| (g.group.clone(), g.members.len() as u64))
                .collect();
            s.group_lags = group_lags(&zk.groups, &zk.metadata, &replicas);
        }
        s.targets_up = running
            .iter()
            .filter(|n| **n == "zookeeper" || paths::broker_id_of(n).is_some())
            .map(|n| (n.to_string(), !failed.iter().any(|(f, _)| f == n)))
            .collect();
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        for (target, reason) in failed {
            tracing::debug!(target, reason, "metrics scrape: child skipped");
            *errors.entry(target).or_insert(0) += 1;
        }
        s.scrape_errors = errors.iter().map(|(t, n)| (t.clone(), *n)).collect();
        s.scrape_seconds = began.elapsed().as_secs_f64();
        s
    }
}

type Handle<'scope, T> = std::io::Result<ScopedJoinHandle<'scope, Result<T, ClientError>>>;

/// Asks one child on its own thread, so a slow one delays no other.
fn spawn<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'scope,
) -> Handle<'scope, T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(scope, f)
}

fn join<T>(handle: Handle<'_, T>) -> Result<T, String> {
    match handle {
        Ok(h) => match h.join() {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err("scrape thread panicked".into()),
        },
        Err(e) => Err(format!("cannot start a scrape thread: {e}")),
    }
}

/// Sends `call` and waits for its answer until `deadline`.
fn call(c: &mut Connection, call: &Call, deadline: Instant) -> Result<Reply, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ClientError::Unexpected(format!(
            "no time left for {call:?}"
        )));
    }
    c.set_read_timeout(left)?;
    c.call(call)
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Unexpected(format!("{reply:?}"))
}

fn zookeeper(run_dir: &Path, deadline: Instant) -> Result<ZkView, ClientError> {
    let mut c = Connection::connect(&paths::zookeeper_socket(run_dir))?;
    let metadata =
        yak_protocol::metadata_pages::read_metadata(None, |m| call(&mut c, m, deadline))?;
    let summaries = match call(&mut c, &Call::ListGroups, deadline)? {
        Reply::Groups { groups } => groups,
        other => return Err(unexpected(other)),
    };
    let mut groups = Vec::with_capacity(summaries.len());
    for g in summaries {
        match call(&mut c, &Call::DescribeGroup { group: g.group }, deadline)? {
            Reply::Group(d) => groups.push(d),
            other => return Err(unexpected(other)),
        }
    }
    Ok(ZkView { metadata, groups })
}

fn broker(run_dir: &Path, id: u32, deadline: Instant) -> Result<BrokerView, ClientError> {
    let mut c = Connection::connect(&paths::broker_socket(run_dir, id))?;
    let replicas = match call(&mut c, &Call::LocalPartitions, deadline)? {
        Reply::LocalPartitions { partitions } => partitions,
        other => return Err(unexpected(other)),
    };
    let stats = match call(&mut c, &Call::BrokerStats, deadline)? {
        Reply::BrokerStats(stats) => stats,
        other => return Err(unexpected(other)),
    };
    Ok(BrokerView { replicas, stats })
}

/// Cluster-wide counts from ZooKeeper's metadata: a partition is offline
/// without a leader, under-replicated with a leader and fewer in-sync
/// replicas than replicas (Kafka's UnderReplicatedPartitions).
pub fn cluster_sample(m: &ClusterMetadata) -> ClusterSample {
    let partitions = m.topics.iter().flat_map(|t| &t.partitions);
    let mut s = ClusterSample {
        brokers_alive: m.brokers.iter().filter(|b| b.alive).count() as u64,
        ..Default::default()
    };
    for p in partitions {
        s.partitions += 1;
        match p.leader {
            None => s.offline += 1,
            Some(_) if p.isr.len() < p.replicas.len() => s.under_replicated += 1,
            Some(_) => {}
        }
    }
    s
}

/// Each group's lag per partition it has committed: the partition leader's
/// high watermark (as the leader reported it) minus the committed offset,
/// as `yak-node group describe` computes it. Partitions whose leader did not
/// answer are left out.
pub fn group_lags(
    groups: &[GroupDescription],
    m: &ClusterMetadata,
    replicas: &HashMap<(String, u32, u32), LocalPartition>,
) -> Vec<GroupLag> {
    let leaders: HashMap<(&str, u32), u32> = m
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter_map(move |p| Some(((t.name.as_str(), p.partition), p.leader?)))
        })
        .collect();
    let mut out = Vec::new();
    for g in groups {
        for t in &g.offsets {
            for o in &t.offsets {
                let Some(&leader) = leaders.get(&(t.topic.as_str(), o.partition)) else {
                    continue;
                };
                let Some(view) = replicas.get(&(t.topic.clone(), o.partition, leader)) else {
                    continue;
                };
                out.push(GroupLag {
                    group: g.group.clone(),
                    topic: t.topic.clone(),
                    partition: o.partition,
                    lag: view.high_watermark.saturating_sub(o.offset),
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use yak_protocol::{
        Assignor, BrokerInfo, GroupTopicOffsets, PartitionMetadata, PartitionOffset, TopicMetadata,
    };

    fn partition(partition: u32, leader: Option<u32>, isr: Vec<u32>) -> PartitionMetadata {
        PartitionMetadata {
            partition,
            leader,
            replicas: vec![1, 2, 3],
            isr,
            leader_epoch: 0,
            partition_epoch: 0,
            reassignment: None,
        }
    }

    fn metadata() -> ClusterMetadata {
        let broker = |id, alive| BrokerInfo {
            id,
            pid: 1,
            socket: String::new(),
            alive,
            restarts: 0,
            kafka_address: None,
        };
        ClusterMetadata {
            brokers: vec![broker(1, true), broker(2, true), broker(3, false)],
            topics: vec![TopicMetadata {
                name: "t".into(),
                topic_id: 1,
                partitions: vec![
                    partition(0, Some(1), vec![1, 2, 3]),
                    partition(1, Some(2), vec![2]),
                    partition(2, None, vec![3]),
                ],
                config: Default::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn given_metadata_when_counting_should_tell_under_replicated_from_offline() {
        let s = cluster_sample(&metadata());
        assert_eq!(
            s,
            ClusterSample {
                brokers_alive: 2,
                partitions: 3,
                under_replicated: 1,
                offline: 1
            }
        );
    }

    #[test]
    fn given_commits_when_computing_lag_should_use_the_leaders_high_watermark() {
        let view = |hw| LocalPartition {
            topic: "t".into(),
            partition: 0,
            topic_id: 1,
            log_start_offset: 0,
            log_end_offset: hw + 5,
            high_watermark: hw,
            leader_epoch: 0,
            is_leader: false,
            isr: vec![],
            size_bytes: 0,
        };
        let mut replicas = HashMap::new();
        replicas.insert(("t".to_string(), 0, 1), view(100)); // the leader's view
        replicas.insert(("t".to_string(), 0, 2), view(90)); // a follower's, behind
        let offsets = |p: &[(u32, u64)]| {
            p.iter()
                .map(|&(partition, offset)| PartitionOffset { partition, offset })
                .collect()
        };
        let group = GroupDescription {
            group: "g".into(),
            state: "empty".into(),
            generation: 1,
            assignor: Assignor::Range,
            members: vec![],
            // Partition 1's leader (2) did not answer; partition 2 is offline.
            offsets: vec![GroupTopicOffsets {
                group: "g".into(),
                topic: "t".into(),
                offsets: offsets(&[(0, 60), (1, 5), (2, 1)]),
                metadata: Default::default(),
            }],
            protocol: None,
        };
        let lags = group_lags(&[group], &metadata(), &replicas);
        assert_eq!(
            lags,
            [GroupLag {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                lag: 40
            }]
        );
    }
}
