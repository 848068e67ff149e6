//! One simulated broker: its replica core, its log (the leader epoch of
//! every offset) and what it has in flight.

use crate::broker::replica::{IsrProposal, ReplicaCore};

/// A log as the leader epoch of each offset.
pub type SimLog = Vec<u32>;

/// The log's answer for `epoch`: the largest epoch at or below it and
/// where that epoch ends (`Log::end_offset_for_epoch`).
pub fn end_for_epoch(log: &SimLog, epoch: u32) -> Option<(u32, u64)> {
    let i = log.iter().rposition(|e| *e <= epoch)?;
    Some((log[i], i as u64 + 1))
}

/// One broker.
pub struct Node {
    pub id: u32,
    pub core: ReplicaCore,
    pub log: SimLog,
    /// Paused (its ZooKeeper session expired): it does nothing, and what
    /// is sent to it waits.
    pub paused: bool,
    /// The leader and epoch of the fetch in flight: one at a time per
    /// leadership, as the fetcher does; a new leader gets a new fetch.
    pub fetch_in_flight: Option<(Option<u32>, u32)>,
    /// The newest metadata (index into ZooKeeper's history) it applied.
    pub metadata_seen: usize,
    /// The newest ISR change to send, and whether one is being asked.
    pub outbox: Option<IsrProposal>,
    pub alter_in_flight: bool,
    /// An fsync begun (policy `always`): its end and truncation count.
    pub fsync: Option<(u64, u64)>,
    /// The leader epoch it last led and the high watermark then.
    pub led: Option<(u32, u64)>,
}
