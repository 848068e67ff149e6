//! Follower fetchers: one thread per leader this broker follows, pulling
//! every partition it follows from that leader in one long-polling fetch,
//! with the last fetched epoch so a diverged log is truncated first.
//! Replicas a reassignment is adding, not in the ISR yet, share one
//! catch-up throttle (`throttle.rs`) when the reassignment has one.

use super::partition::{FetchPosition, Partition};
use super::replicas::{FollowPlan, Followed};
use super::throttle::Throttle;
use crate::limits::{
    FETCH_MIN_BYTES_DEFAULT, FETCH_PARTITION_BYTES_DEFAULT, REPLICA_FETCHER_IDLE_POLL_MS,
    REPLICA_FETCH_BACKOFF_MS_MAX, REPLICA_FETCH_BACKOFF_MS_MIN, REPLICA_FETCH_WAIT_MS,
};
use crate::protocol::backoff::Backoff;
use crate::protocol::connection::Connection;
use crate::protocol::{Call, ErrorCode, FetchPartition, Reply};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Fetcher {
    partitions: Mutex<Vec<Followed>>,
    stop: AtomicBool,
}

/// The throttle every fetcher thread shares (`None`: nothing throttled).
type SharedThrottle = Arc<Mutex<Option<Throttle>>>;

/// Runs the fetcher threads and keeps them in line with the follow plan.
pub struct Fetchers {
    broker_id: u32,
    run_dir: PathBuf,
    fsync: bool,
    by_leader: Mutex<BTreeMap<u32, Arc<Fetcher>>>,
    throttle: SharedThrottle,
}

impl Fetchers {
    /// No fetchers yet.
    pub fn new(broker_id: u32, run_dir: PathBuf, fsync: bool) -> Self {
        Fetchers {
            broker_id,
            run_dir,
            fsync,
            by_leader: Mutex::new(BTreeMap::new()),
            throttle: Arc::new(Mutex::new(None)),
        }
    }

    /// The plan's catch-up rate (the lowest asked for, if any) becomes the
    /// shared throttle's.
    fn set_throttle(&self, plan: &FollowPlan) {
        let rate = plan
            .values()
            .flatten()
            .filter_map(|f| f.throttle_bytes_per_sec)
            .min();
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        match (rate, t.as_mut()) {
            (None, _) => *t = None,
            (Some(r), Some(current)) if current.rate_bytes_per_sec() != r => {
                current.set_rate(r, Instant::now())
            }
            (Some(_), Some(_)) => {}
            (Some(r), None) => *t = Some(Throttle::new(r, Instant::now())),
        }
    }

    /// Follows exactly the partitions in `plan`.
    pub fn apply(&self, plan: FollowPlan) {
        self.set_throttle(&plan);
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
            let throttle = Arc::clone(&self.throttle);
            let spawned = std::thread::Builder::new()
                .name(format!("fetch-from-{leader}"))
                .spawn(move || run(&thread_f, me, leader, &socket, fsync, &throttle));
            match spawned {
                Ok(_) => {
                    by_leader.insert(leader, f);
                }
                Err(e) => tracing::error!(leader, error = %e, "cannot start fetcher"),
            }
        }
    }
}

fn run(
    f: &Fetcher,
    me: u32,
    leader: u32,
    socket: &Path,
    fsync: bool,
    throttle: &Mutex<Option<Throttle>>,
) {
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
        match fetch_once(&mut conn, me, leader, socket, &partitions, fsync, throttle) {
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

/// What each of `throttled` partitions may fetch now, and how long to
/// wait when that is nothing (0 bytes).
fn throttle_budget(throttle: &Mutex<Option<Throttle>>, throttled: u32) -> (u32, Duration) {
    let mut guard = throttle.lock().unwrap_or_else(|p| p.into_inner());
    let Some(t) = guard.as_mut().filter(|_| throttled > 0) else {
        return (FETCH_PARTITION_BYTES_DEFAULT, Duration::ZERO);
    };
    let now = Instant::now();
    let allowance = t.allowance_bytes(now);
    if allowance == 0 {
        return (0, t.wait(now));
    }
    let share = allowance.checked_div(throttled).unwrap_or(allowance);
    (
        share.clamp(1, FETCH_PARTITION_BYTES_DEFAULT),
        Duration::ZERO,
    )
}

/// One long-polling fetch of every partition this broker follows from
/// `leader`. Each answer is applied only if the partition still follows
/// that leader, in the same epoch, from the same offset as when the fetch
/// was sent (`Partition::apply_fetched` checks under its lock): a late
/// answer is dropped, never appended under another leader's epoch.
/// `Ok(true)`: wait before the next round (a leader change is on its way
/// through metadata, or an answer could not be applied).
#[allow(clippy::too_many_arguments)]
fn fetch_once(
    conn: &mut Option<Connection>,
    me: u32,
    leader: u32,
    socket: &Path,
    partitions: &[Followed],
    fsync: bool,
    throttle: &Mutex<Option<Throttle>>,
) -> Result<bool, String> {
    // A partition whose leadership moved away from `leader` is on its way
    // to another fetcher: not asked here.
    let mut asked: Vec<(&Arc<Partition>, FetchPosition, bool)> = partitions
        .iter()
        .map(|f| {
            (
                &f.partition,
                f.partition.fetch_position(),
                f.throttle_bytes_per_sec.is_some(),
            )
        })
        .filter(|(_, at, _)| at.leader == Some(leader))
        .collect();
    let throttled = asked.iter().filter(|(_, _, t)| *t).count() as u32;
    let (throttled_max_bytes, throttle_wait) = throttle_budget(throttle, throttled);
    if throttled_max_bytes == 0 {
        asked.retain(|(_, _, t)| !t);
    }
    if asked.is_empty() {
        std::thread::sleep(throttle_wait.clamp(
            Duration::from_millis(REPLICA_FETCHER_IDLE_POLL_MS),
            Duration::from_millis(REPLICA_FETCH_WAIT_MS),
        ));
        return Ok(false);
    }
    let requests: Vec<FetchPartition> = asked
        .iter()
        .map(|(p, at, throttled)| FetchPartition {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: at.offset,
            max_bytes: if *throttled {
                throttled_max_bytes
            } else {
                FETCH_PARTITION_BYTES_DEFAULT
            },
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
        min_bytes: FETCH_MIN_BYTES_DEFAULT,
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
    let throttled_bytes: u64 = asked
        .iter()
        .zip(&results)
        .filter(|((_, _, t), _)| *t)
        .map(|(_, r)| r.records.len() as u64)
        .sum();
    if throttled_bytes > 0 {
        if let Some(t) = throttle.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            t.charge(throttled_bytes, Instant::now());
        }
    }
    let mut backoff = false;
    for ((p, at, _), r) in asked.iter().zip(results) {
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
