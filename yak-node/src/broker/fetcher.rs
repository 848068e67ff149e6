//! Follower fetchers: one thread per leader this broker follows, pulling
//! every partition it follows from that leader in one long-polling fetch,
//! with the last fetched epoch so a diverged log is truncated first.

use super::partition::{FetchPosition, Partition};
use super::replicas::FollowPlan;
use crate::limits::{
    FETCH_PARTITION_BYTES_DEFAULT, REPLICA_FETCHER_IDLE_POLL_MS, REPLICA_FETCH_BACKOFF_MS_MAX,
    REPLICA_FETCH_BACKOFF_MS_MIN, REPLICA_FETCH_WAIT_MS,
};
use crate::protocol::backoff::Backoff;
use crate::protocol::connection::Connection;
use crate::protocol::{Call, ErrorCode, FetchPartition, Reply};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Fetcher {
    partitions: Mutex<Vec<Arc<Partition>>>,
    stop: AtomicBool,
}

/// Runs the fetcher threads and keeps them in line with the follow plan.
pub struct Fetchers {
    broker_id: u32,
    run_dir: PathBuf,
    fsync: bool,
    by_leader: Mutex<BTreeMap<u32, Arc<Fetcher>>>,
}

impl Fetchers {
    /// No fetchers yet.
    pub fn new(broker_id: u32, run_dir: PathBuf, fsync: bool) -> Self {
        Fetchers {
            broker_id,
            run_dir,
            fsync,
            by_leader: Mutex::new(BTreeMap::new()),
        }
    }

    /// Follows exactly the partitions in `plan`.
    pub fn apply(&self, plan: FollowPlan) {
        let mut by_leader = self.by_leader.lock().unwrap_or_else(|p| p.into_inner());
        for (leader, f) in by_leader.iter() {
            if !plan.contains_key(leader) {
                f.stop.store(true, Ordering::Relaxed);
            }
        }
        by_leader.retain(|leader, _| plan.contains_key(leader));
        for (leader, partitions) in plan {
            if let Some(f) = by_leader.get(&leader) {
                *f.partitions.lock().unwrap_or_else(|p| p.into_inner()) = partitions;
                continue;
            }
            let f = Arc::new(Fetcher {
                partitions: Mutex::new(partitions),
                stop: AtomicBool::new(false),
            });
            let socket = crate::paths::broker_socket(&self.run_dir, leader);
            let (me, fsync, thread_f) = (self.broker_id, self.fsync, Arc::clone(&f));
            let spawned = std::thread::Builder::new()
                .name(format!("fetch-from-{leader}"))
                .spawn(move || run(&thread_f, me, leader, &socket, fsync));
            match spawned {
                Ok(_) => {
                    by_leader.insert(leader, f);
                }
                Err(e) => tracing::error!(leader, error = %e, "cannot start fetcher"),
            }
        }
    }
}

fn run(f: &Fetcher, me: u32, leader: u32, socket: &Path, fsync: bool) {
    let mut conn: Option<Connection> = None;
    let mut backoff = Backoff::new(REPLICA_FETCH_BACKOFF_MS_MIN, REPLICA_FETCH_BACKOFF_MS_MAX);
    // Rounds in a row that failed, or that asked to wait for metadata.
    let (mut failures, mut waits) = (0u32, 0u32);
    while !f.stop.load(Ordering::Relaxed) {
        let partitions = f
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match fetch_once(&mut conn, me, leader, socket, &partitions, fsync) {
            Ok(false) => (failures, waits) = (0, 0),
            Ok(true) => {
                failures = 0;
                std::thread::sleep(backoff.delay(waits));
                waits = waits.saturating_add(1);
            }
            Err(e) => {
                conn = None;
                if failures == 0 {
                    tracing::warn!(leader, error = %e, "fetch from leader failed; retrying");
                }
                std::thread::sleep(backoff.delay(failures));
                failures = failures.saturating_add(1);
            }
        }
    }
}

/// One long-polling fetch of every partition this broker follows from
/// `leader`. Each answer is applied only if the partition still follows
/// that leader, in the same epoch, from the same offset as when the fetch
/// was sent (`Partition::apply_fetched` checks under its lock): a late
/// answer is dropped, never appended under another leader's epoch.
/// `Ok(true)`: wait before the next round (a leader change is on its way
/// through metadata, or an answer could not be applied).
fn fetch_once(
    conn: &mut Option<Connection>,
    me: u32,
    leader: u32,
    socket: &Path,
    partitions: &[Arc<Partition>],
    fsync: bool,
) -> Result<bool, String> {
    // A partition whose leadership moved away from `leader` is on its way
    // to another fetcher: not asked here.
    let asked: Vec<(&Arc<Partition>, FetchPosition)> = partitions
        .iter()
        .map(|p| (p, p.fetch_position()))
        .filter(|(_, at)| at.leader == Some(leader))
        .collect();
    if asked.is_empty() {
        std::thread::sleep(Duration::from_millis(REPLICA_FETCHER_IDLE_POLL_MS));
        return Ok(false);
    }
    let requests: Vec<FetchPartition> = asked
        .iter()
        .map(|(p, at)| FetchPartition {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: at.offset,
            max_bytes: FETCH_PARTITION_BYTES_DEFAULT,
            leader_epoch: Some(at.leader_epoch),
            last_fetched_epoch: at.last_fetched_epoch,
        })
        .collect();
    if conn.is_none() {
        *conn = Some(Connection::connect(socket).map_err(|e| e.to_string())?);
    }
    let c = conn.as_mut().ok_or("invariant: connection set above")?;
    let call = Call::Fetch {
        replica_id: Some(me),
        max_wait_ms: REPLICA_FETCH_WAIT_MS,
        partitions: requests,
    };
    let results = match c.call(&call).map_err(|e| e.to_string())? {
        Reply::Fetched { partitions } => partitions,
        other => return Err(format!("unexpected reply {other:?}")),
    };
    if results.len() != asked.len() {
        return Err(format!(
            "asked for {} partitions, the answer has {}",
            asked.len(),
            results.len()
        ));
    }
    let mut backoff = false;
    for ((p, at), r) in asked.iter().zip(results) {
        if (r.topic.as_str(), r.partition) != (p.topic.as_str(), p.partition) {
            return Err(format!(
                "answer for {}-{} where {}-{} was asked",
                r.topic, r.partition, p.topic, p.partition
            ));
        }
        if let Some(ErrorCode::OffsetOutOfRange {
            log_start_offset, ..
        }) = r.error.as_ref().map(|e| &e.code)
        {
            // Retention at the leader passed this log's end: start over there.
            match p.restart_at(at, *log_start_offset) {
                Ok(true) => {}
                Ok(false) => backoff = true,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "cannot restart the log at the leader's start");
                    backoff = true;
                }
            }
            continue;
        }
        if let Some(e) = &r.error {
            // A leader change is on its way through metadata; wait for it.
            backoff |= matches!(
                e.code,
                ErrorCode::NotLeader { .. }
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownTopic
            );
            continue;
        }
        if let Err(e) = p.apply_fetched(&r, at, fsync) {
            tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "cannot apply replicated data");
            backoff = true;
        }
    }
    Ok(backoff)
}
