//! Where `cluster watch` gets its data: one poll of the cluster through the
//! admin client (metadata, each alive broker's replica offsets, groups and
//! their committed offsets) turned into a [`Snapshot`]. Reconnects after a
//! failed poll; asks for cluster events it has not seen yet (by sequence
//! number) and keeps the newest. Never draws and never decides what is
//! highlighted.

use super::event_text;
use super::model::{BrokerSnap, EventSnap, GroupSnap, PartitionSnap, Snapshot};
use crate::client::{Admin, ClientError};
use crate::limits::{WATCH_EVENTS_SHOWN_MAX, WATCH_GROUPS_MAX};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Polls one cluster, keeping its connections between polls.
pub struct Source {
    dir: PathBuf,
    admin: Option<Admin>,
    /// The newest events seen, oldest first.
    events: VecDeque<EventSnap>,
    /// Sequence number of the last event seen.
    last_seq: Option<u64>,
}

impl Source {
    /// A source for the cluster whose run dir is `dir`; connects at the first poll.
    pub fn new(dir: &Path) -> Source {
        Source {
            dir: dir.to_path_buf(),
            admin: None,
            events: VecDeque::new(),
            last_seq: None,
        }
    }

    /// One snapshot of the cluster. After an error the connections are
    /// dropped and the next poll connects anew (ZooKeeper may have restarted).
    pub fn poll(&mut self) -> Result<Snapshot, ClientError> {
        let result = self.try_poll();
        if result.is_err() {
            self.admin = None;
        }
        result
    }

    fn try_poll(&mut self) -> Result<Snapshot, ClientError> {
        let admin = match &mut self.admin {
            Some(a) => a,
            None => self.admin.insert(Admin::connect(&self.dir)?),
        };
        for e in admin.events(None, self.last_seq)? {
            self.last_seq = Some(e.seq);
            let at_unix_ms = u64::try_from(e.time_ms).unwrap_or(0);
            self.events.push_back(EventSnap {
                at_unix_ms,
                text: event_text::describe(&e.kind),
            });
            if self.events.len() > WATCH_EVENTS_SHOWN_MAX {
                self.events.pop_front();
            }
        }
        let m = admin.metadata()?;
        let offsets = admin.replica_offsets()?;
        let mut partitions = Vec::new();
        for t in &m.topics {
            for p in &t.partitions {
                let view = p
                    .leader
                    .and_then(|l| offsets.get(&(t.name.clone(), p.partition, l)));
                partitions.push(PartitionSnap {
                    topic: t.name.clone(),
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader_epoch: p.leader_epoch,
                    high_watermark: view.map(|o| o.high_watermark),
                    log_end_offset: view.map(|o| o.log_end_offset),
                });
            }
        }
        let brokers = m
            .brokers
            .iter()
            .map(|b| BrokerSnap {
                id: b.id,
                pid: b.pid,
                alive: b.alive,
                restarts: b.restarts,
            })
            .collect();
        let mut groups = Vec::new();
        for g in admin.list_groups()?.into_iter().take(WATCH_GROUPS_MAX) {
            // A group that went away between the list and the describe is skipped.
            let d = match admin.describe_group(&g.group) {
                Ok(d) => d,
                Err(ClientError::Server(_)) => continue,
                Err(e) => return Err(e),
            };
            let committed = d
                .offsets
                .iter()
                .flat_map(|t| {
                    t.offsets
                        .iter()
                        .map(|o| (t.topic.clone(), o.partition, o.offset))
                })
                .collect();
            groups.push(GroupSnap {
                group: d.group,
                state: d.state,
                members: g.members,
                committed,
            });
        }
        let events = self.events.iter().cloned().collect();
        Ok(Snapshot {
            cluster_id: m.cluster_id.clone(),
            brokers,
            partitions,
            groups,
            events,
        })
    }
}
