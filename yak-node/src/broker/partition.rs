//! One partition replica on this broker: its log, its leadership as
//! ZooKeeper last said, the high watermark, idempotent-producer state and
//! the produce requests waiting for the ISR (Kafka's purgatory). One mutex
//! guards it all, so an append, its dedup check and the high watermark
//! move together.
//!
//! Leader: appends produce batches, answers follower fetches (detecting a
//! diverged follower log by epoch), raises the high watermark and completes
//! waiting acks=all requests. Follower: appends what its fetcher brings,
//! truncating first where the leader says the logs diverged.

use super::divergence;
use super::isr::IsrTracker;
use super::producers::{ProducerTable, Verdict};
use super::stats::BrokerStats;
use crate::limits::{
    MIN_INSYNC_REPLICAS_DEFAULT, PRODUCER_ID_EXPIRATION_MS, PRODUCER_STATE_SCAN_BYTES,
};
use crate::protocol::batch::{self, BatchHeader, CheckedBatch, ReplicatedBatches};
use crate::protocol::{
    Acks, ErrorBody, ErrorCode, FetchedPartition, LocalPartition, Reply, TopicConfig,
};
use crate::server::{Handled, Responder};
use crate::storage::{Log, RetentionPolicy, RetentionReport, StorageError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Who leads a partition, as this broker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    /// The leader's id.
    pub leader: Option<u32>,
    /// The leader epoch.
    pub epoch: u32,
    /// Every replica.
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    pub isr: Vec<u32>,
    /// ZooKeeper's version of this leader and ISR; ISR changes name it.
    pub partition_epoch: u64,
}

/// An ISR change for the leader to ask ZooKeeper for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// The leader epoch it is made in.
    pub leader_epoch: u32,
    /// The partition epoch it is based on (compare-and-set).
    pub partition_epoch: u64,
    /// The ISR asked for.
    pub isr: Vec<u32>,
}

/// Where a follower fetches from, as of the moment the fetch was sent. An
/// answer is applied only if all of it still holds when it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    /// The leader fetched from.
    pub leader: Option<u32>,
    /// Its leader epoch.
    pub leader_epoch: u32,
    /// The offset fetched from: this log's end.
    pub offset: u64,
    /// The epoch of the last batch in this log.
    pub last_fetched_epoch: Option<u32>,
}

struct Waiter {
    last_offset: u64,
    reply: Reply,
    responder: Responder,
    deadline: Instant,
}

/// Answers to send once the partition lock is released.
pub type Completions = Vec<(Responder, Reply)>;

/// What a follower's fetch produced at the leader.
pub struct FollowerFetch {
    /// The answer for this partition.
    pub result: FetchedPartition,
    /// An ISR to ask ZooKeeper for (the follower caught up).
    pub proposal: Option<IsrProposal>,
    /// Produce requests the new high watermark completed.
    pub completions: Completions,
    /// The high watermark moved: consumers may have new data.
    pub hw_advanced: bool,
}

struct Inner {
    /// `<topic>-<partition>`, for messages.
    name: String,
    log: Log,
    /// Appends below this offset are fsynced.
    durable_offset: u64,
    /// fsync policy `always`: only fsynced data counts toward the high watermark.
    sync_appends: bool,
    /// Bumped by every truncation, so an fsync started before one does not
    /// vouch for data written after it.
    truncations: u64,
    leadership: Leadership,
    tracker: Option<IsrTracker>,
    high_watermark: u64,
    producers: ProducerTable,
    waiters: Vec<Waiter>,
    /// The topic's own settings from ZooKeeper (retention overrides).
    topic_config: TopicConfig,
}

/// A partition replica.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Topic id its files belong to.
    pub topic_id: u64,
    broker_id: u32,
    /// The broker's counters: fsync latencies go here.
    stats: Arc<BrokerStats>,
    inner: Mutex<Inner>,
}

/// Sends completed answers (every one answers a produce request) and
/// counts each in the produce latency histogram.
pub fn send_all(completions: Completions, stats: &BrokerStats) {
    for (responder, reply) in completions {
        stats.produce_answered(
            responder.received().elapsed(),
            matches!(reply, Reply::Error(_)),
        );
        responder.send(reply);
    }
}

/// A storage error as the client sees it. A fatal one (a failed fsync, on
/// any path: leader flush, follower flush, retention, truncation) does not
/// return: the broker fail-stops, since no answer after it can be trusted.
fn storage_error(e: StorageError) -> ErrorBody {
    if e.is_fatal() {
        super::fail_stop(&e);
    }
    match e {
        StorageError::OffsetOutOfRange {
            log_start_offset,
            log_end_offset,
            offset,
        } => {
            let why = if offset < log_start_offset {
                format!("offset {offset} is below the earliest offset {log_start_offset} (older records were deleted by retention)")
            } else {
                format!("offset {offset} is past the log end offset {log_end_offset}")
            };
            ErrorBody::new(
                ErrorCode::OffsetOutOfRange {
                    log_start_offset,
                    log_end_offset,
                },
                why,
            )
        }
        StorageError::StaleEpoch { epoch, latest } => ErrorBody::new(
            ErrorCode::FencedLeaderEpoch,
            format!("epoch {epoch} is older than the log's latest epoch {latest}"),
        ),
        other => {
            tracing::error!(error = %other, "storage failure");
            ErrorBody::new(ErrorCode::StorageError, other.to_string())
        }
    }
}

/// Headers of the whole batches in `bytes`, without CRC checks.
fn headers(bytes: &[u8]) -> impl Iterator<Item = (BatchHeader, usize)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = batch::parse_header(bytes.get(at..)?).ok()?;
        let start = at;
        at = at.checked_add(h.total_bytes())?;
        (at <= bytes.len()).then_some((h, start))
    })
}

/// The prefix of `bytes` holding only batches that start below `offset`.
fn cut_below(mut bytes: Vec<u8>, offset: u64) -> Vec<u8> {
    let end = headers(&bytes)
        .find(|(h, _)| h.base_offset >= offset)
        .map(|(_, start)| start);
    if let Some(end) = end {
        bytes.truncate(end);
    }
    bytes
}

fn last_seq(h: &BatchHeader) -> i32 {
    h.last_sequence()
}

fn rebuild_producers(log: &Log) -> ProducerTable {
    let mut table = ProducerTable::default();
    let end = log.log_end_offset();
    let mut offset = end.saturating_sub(100_000).max(log.log_start_offset());
    let mut scanned = 0u64;
    while offset < end && scanned < u64::from(PRODUCER_STATE_SCAN_BYTES) * 4 {
        let Ok(bytes) = log.read(offset, PRODUCER_STATE_SCAN_BYTES) else {
            break;
        };
        if bytes.is_empty() {
            break;
        }
        scanned += bytes.len() as u64;
        for (h, _) in headers(&bytes) {
            table.record(
                h.producer_id,
                h.base_sequence,
                last_seq(&h),
                h.base_offset,
                h.last_offset(),
            );
            offset = h.next_offset();
        }
    }
    table
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        topic: String,
        partition: u32,
        topic_id: u64,
        broker_id: u32,
        log: Log,
        sync_appends: bool,
    ) -> Partition {
        let producers = rebuild_producers(&log);
        let inner = Inner {
            name: format!("{topic}-{partition}"),
            durable_offset: log.log_end_offset(),
            sync_appends,
            truncations: 0,
            log,
            leadership: Leadership::default(),
            tracker: None,
            high_watermark: 0,
            producers,
            waiters: Vec::new(),
            topic_config: TopicConfig::default(),
        };
        Partition {
            topic,
            partition,
            topic_id,
            broker_id,
            stats: Arc::default(),
            inner: Mutex::new(inner),
        }
    }

    /// The same replica, counting into the broker's `stats`.
    pub fn with_stats(mut self, stats: Arc<BrokerStats>) -> Partition {
        self.stats = stats;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// The log directory.
    pub fn dir(&self) -> std::path::PathBuf {
        self.lock().log.dir().to_path_buf()
    }

    /// Leadership as last known.
    pub fn leadership(&self) -> Leadership {
        self.lock().leadership.clone()
    }

    fn not_leader(&self, l: &Leadership) -> ErrorBody {
        ErrorBody::new(
            ErrorCode::NotLeader {
                leader: l.leader,
                epoch: l.epoch,
            },
            format!(
                "broker {} does not lead {} (leader {:?}, epoch {})",
                self.broker_id,
                self.name(),
                l.leader,
                l.epoch
            ),
        )
    }

    /// Applies leadership from ZooKeeper. Returns answers to send (waiting
    /// produce requests failed by a lost leadership or completed by a
    /// smaller ISR).
    pub fn set_leadership(&self, new: Leadership, now: Instant) -> Completions {
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.leadership == new {
            return Vec::new();
        }
        let me = Some(self.broker_id);
        let was_leader = inner.tracker.is_some();
        let same_term =
            inner.leadership.leader == new.leader && inner.leadership.epoch == new.epoch;
        if same_term && new.partition_epoch < inner.leadership.partition_epoch {
            // Metadata read before an ISR change this leader already applied.
            return Vec::new();
        }
        let mut out = Vec::new();
        if new.leader == me {
            match (&mut inner.tracker, same_term) {
                (Some(t), true) => t.set_isr(&new.isr),
                _ => {
                    let leo = inner.log.log_end_offset();
                    inner.high_watermark = inner.high_watermark.min(leo);
                    inner.tracker = Some(IsrTracker::new(
                        self.broker_id,
                        &new.replicas,
                        &new.isr,
                        inner.high_watermark,
                        leo,
                        now,
                    ));
                    tracing::info!(partition = %self.name(), epoch = new.epoch, log_end_offset = leo, isr = ?new.isr, "became leader");
                }
            }
        } else {
            if was_leader || !same_term {
                let err = self.not_leader(&new);
                out.extend(
                    inner
                        .waiters
                        .drain(..)
                        .map(|w| (w.responder, Reply::Error(err.clone()))),
                );
            }
            if was_leader {
                tracing::info!(partition = %self.name(), leader = ?new.leader, epoch = new.epoch, "became follower");
            }
            inner.tracker = None;
        }
        inner.leadership = new;
        Self::advance(inner, &mut out);
        out
    }

    /// `min.insync.replicas` for this partition.
    fn min_insync(inner: &Inner) -> usize {
        MIN_INSYNC_REPLICAS_DEFAULT
            .min(inner.leadership.replicas.len())
            .max(1)
    }

    /// Leader: recomputes the high watermark and completes waiting requests.
    /// A request the high watermark passed is acknowledged only if the ISR
    /// holds at least `min.insync.replicas` members at this moment; else it
    /// is answered `NotEnoughReplicasAfterAppend` (its batch stays in the
    /// log; an idempotent retry finds it as a duplicate).
    fn advance(inner: &mut Inner, out: &mut Completions) {
        let Some(t) = inner.tracker.as_mut() else {
            return;
        };
        let leo = inner.log.log_end_offset();
        inner.durable_offset = inner.durable_offset.min(leo);
        let own_end = if inner.sync_appends {
            inner.durable_offset
        } else {
            leo
        };
        inner.high_watermark = t.update_high_watermark(own_end);
        let hw = inner.high_watermark;
        let isr_size = t.isr().len();
        let (done, waiting): (Vec<_>, Vec<_>) =
            inner.waiters.drain(..).partition(|w| w.last_offset < hw);
        inner.waiters = waiting;
        if done.is_empty() {
            return;
        }
        let min_isr = Self::min_insync(inner);
        if isr_size >= min_isr {
            out.extend(done.into_iter().map(|w| (w.responder, w.reply)));
            return;
        }
        let isr = inner.leadership.isr.clone();
        let name = inner.name.clone();
        out.extend(done.into_iter().map(|w| {
            let err = ErrorBody::new(
                ErrorCode::NotEnoughReplicasAfterAppend,
                format!(
                    "{name}: not enough replicas after append: the batch ending at offset {} is in the leader's log, but the in-sync replicas shrank to {isr:?} ({isr_size}, acks=all needs {min_isr}) before it was replicated; not acknowledged",
                    w.last_offset
                ),
            );
            (w.responder, Reply::Error(err))
        }));
    }

    /// Appends a producer's batch as leader. acks=all requests wait in the
    /// partition until the high watermark passes them.
    pub fn produce(
        &self,
        acks: Acks,
        mut batch: CheckedBatch,
        ack_timeout: Duration,
        responder: Responder,
        now: Instant,
    ) -> (Handled, Completions) {
        let header = *batch.header();
        let header = &header;
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = Vec::new();
        if inner.tracker.is_none() {
            return (
                Handled::Reply(Reply::Error(self.not_leader(&inner.leadership))),
                out,
            );
        }
        let min_isr = Self::min_insync(inner);
        if acks == Acks::All && inner.leadership.isr.len() < min_isr {
            let err = ErrorBody::new(
                ErrorCode::NotEnoughReplicas,
                format!(
                    "{}: {} in-sync replicas, acks=all needs {min_isr}",
                    self.name(),
                    inner.leadership.isr.len()
                ),
            );
            return (Handled::Reply(Reply::Error(err)), out);
        }
        let (base_offset, last_offset, duplicate) =
            match inner
                .producers
                .check(header.producer_id, header.base_sequence, last_seq(header))
            {
                Verdict::Duplicate {
                    base_offset,
                    last_offset,
                } => (base_offset, last_offset, true),
                Verdict::OutOfOrder { expected } => {
                    let err = ErrorBody::new(
                        ErrorCode::OutOfOrderSequence,
                        format!(
                            "{}: producer {} sent sequence {}, expected {expected}",
                            self.name(),
                            header.producer_id,
                            header.base_sequence
                        ),
                    );
                    return (Handled::Reply(Reply::Error(err)), out);
                }
                Verdict::Append => {
                    let epoch = inner.leadership.epoch;
                    let info = match inner.log.append(&mut batch, epoch) {
                        Ok(i) => i,
                        Err(e) => return (Handled::Reply(Reply::Error(storage_error(e))), out),
                    };
                    let (first, last) = (header.base_sequence, last_seq(header));
                    inner.producers.record(
                        header.producer_id,
                        first,
                        last,
                        info.base_offset,
                        info.last_offset,
                    );
                    (info.base_offset, info.last_offset, false)
                }
            };
        Self::advance(inner, &mut out);
        let reply = Reply::Produced {
            base_offset,
            duplicate,
        };
        let handled = match acks {
            Acks::None => Handled::NoReply,
            Acks::All if inner.high_watermark <= last_offset => {
                inner.waiters.push(Waiter {
                    last_offset,
                    reply,
                    responder,
                    deadline: now + ack_timeout,
                });
                Handled::Deferred
            }
            _ => Handled::Reply(reply),
        };
        (handled, out)
    }

    fn check_epoch(&self, inner: &Inner, epoch: Option<u32>) -> Result<(), ErrorBody> {
        if inner.tracker.is_none() {
            return Err(self.not_leader(&inner.leadership));
        }
        match epoch {
            Some(e) if e < inner.leadership.epoch => Err(ErrorBody::new(
                ErrorCode::FencedLeaderEpoch,
                format!(
                    "{}: epoch {e} is older than the leader's {}",
                    self.name(),
                    inner.leadership.epoch
                ),
            )),
            Some(e) if e > inner.leadership.epoch => Err(self.not_leader(&inner.leadership)),
            _ => Ok(()),
        }
    }

    fn empty_result(&self) -> FetchedPartition {
        FetchedPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            error: None,
            high_watermark: 0,
            log_start_offset: 0,
            records: Vec::new(),
            diverging_epoch: None,
        }
    }

    /// A consumer's fetch: only records below the high watermark.
    pub fn fetch_for_consumer(
        &self,
        offset: u64,
        max_bytes: u32,
        epoch: Option<u32>,
    ) -> FetchedPartition {
        let g = self.lock();
        let mut out = self.empty_result();
        if let Err(e) = self.check_epoch(&g, epoch) {
            out.error = Some(e);
            return out;
        }
        out.high_watermark = g.high_watermark;
        out.log_start_offset = g.log.log_start_offset();
        let leo = g.log.log_end_offset();
        if offset > leo || offset < out.log_start_offset {
            out.error = Some(storage_error(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: out.log_start_offset,
                log_end_offset: leo,
            }));
        } else if offset < g.high_watermark && max_bytes > 0 {
            match g.log.read(offset, max_bytes) {
                Ok(bytes) => out.records = cut_below(bytes, g.high_watermark),
                Err(e) => out.error = Some(storage_error(e)),
            }
        }
        out
    }

    /// A follower's fetch: records up to the log end, or where its log
    /// diverged. Updates the follower's offset, the high watermark and the
    /// ISR proposal (returned).
    pub fn fetch_for_follower(
        &self,
        follower: u32,
        offset: u64,
        max_bytes: u32,
        epoch: Option<u32>,
        last_fetched_epoch: Option<u32>,
        now: Instant,
    ) -> FollowerFetch {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = FollowerFetch {
            result: self.empty_result(),
            proposal: None,
            completions: Vec::new(),
            hw_advanced: false,
        };
        if let Err(e) = self.check_epoch(inner, epoch) {
            out.result.error = Some(e);
            return out;
        }
        let leo = inner.log.log_end_offset();
        out.result.log_start_offset = inner.log.log_start_offset();
        out.result.high_watermark = inner.high_watermark;
        if offset < out.result.log_start_offset {
            // Retention deleted what the follower asks for: it must start
            // over at the log start (see `restart_at`).
            let (log_start_offset, log_end_offset) = (out.result.log_start_offset, leo);
            out.result.error = Some(storage_error(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            }));
            return out;
        }
        let leader_end = last_fetched_epoch.and_then(|e| inner.log.end_offset_for_epoch(e));
        let diverging = divergence::leader_check(
            offset,
            last_fetched_epoch,
            leader_end,
            inner.leadership.epoch,
            leo,
        );
        if let Some(d) = diverging {
            out.result.diverging_epoch = Some(d);
            out.result.high_watermark = inner.high_watermark;
            return out;
        }
        let proposal = inner
            .tracker
            .as_mut()
            .and_then(|t| t.on_fetch(follower, offset, leo, now));
        let hw_before = inner.high_watermark;
        Self::advance(inner, &mut out.completions);
        out.hw_advanced = inner.high_watermark > hw_before;
        out.result.high_watermark = inner.high_watermark;
        if offset < leo && max_bytes > 0 {
            match inner.log.read(offset, max_bytes) {
                Ok(bytes) => out.result.records = bytes,
                Err(e) => out.result.error = Some(storage_error(e)),
            }
        }
        out.proposal = proposal.map(|isr| IsrProposal {
            leader_epoch: inner.leadership.epoch,
            partition_epoch: inner.leadership.partition_epoch,
            isr,
        });
        out
    }

    /// Leader with fsync policy `always`: fsyncs appends not yet on disk —
    /// one fsync for every batch appended since the last (group commit) — and
    /// completes the requests the higher watermark covers. Returns them and
    /// whether the high watermark moved. A failed fsync (a fatal storage
    /// error) never returns: the broker fail-stops ([`super::fail_stop`]).
    pub fn sync(&self) -> Result<(Completions, bool), ErrorBody> {
        let name = self.name();
        let (file, end, truncations) = {
            let mut g = self.lock();
            let inner = &mut *g;
            let leo = inner.log.log_end_offset();
            if !inner.sync_appends || inner.durable_offset >= leo {
                return Ok((Vec::new(), false));
            }
            match inner.log.data_sync_handle().map_err(storage_error)? {
                Some((file, end)) => (file, end, inner.truncations),
                None => {
                    // A new segment or index entries: the full flush, under the lock.
                    let began = Instant::now();
                    inner.log.flush().map_err(storage_error)?;
                    self.stats.fsync_latency.observe(began.elapsed());
                    return Ok(Self::made_durable(inner, leo));
                }
            }
        };
        // The fsync runs without the lock: appends and follower fetches of
        // this partition go on meanwhile, and the next sync covers them.
        let began = Instant::now();
        if let Err(e) = file.sync_data() {
            super::fail_stop(&format_args!("{name}: fsync of the active segment: {e}"));
        }
        self.stats.fsync_latency.observe(began.elapsed());
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.truncations != truncations {
            return Ok((Vec::new(), false));
        }
        Ok(Self::made_durable(inner, end))
    }

    /// Everything below `end` is on disk: raise the durable offset and the
    /// high watermark, and complete what that covers.
    fn made_durable(inner: &mut Inner, end: u64) -> (Completions, bool) {
        let mut out = Vec::new();
        inner.durable_offset = inner
            .durable_offset
            .max(end.min(inner.log.log_end_offset()));
        let hw = inner.high_watermark;
        Self::advance(inner, &mut out);
        let moved = inner.high_watermark > hw;
        (out, moved)
    }

    /// Follower: where to fetch from next.
    pub fn fetch_position(&self) -> FetchPosition {
        let g = self.lock();
        FetchPosition {
            leader: g.leadership.leader,
            leader_epoch: g.leadership.epoch,
            offset: g.log.log_end_offset(),
            last_fetched_epoch: g.log.latest_epoch(),
        }
    }

    /// Whether an answer to a fetch sent at `asked` may still be applied:
    /// this replica follows the same leader in the same epoch, and its log
    /// ends where it did. Anything else means the answer is stale (a late
    /// answer from a former leader, or one overtaken by a truncation).
    fn still_at(&self, inner: &Inner, asked: &FetchPosition) -> bool {
        let now = (
            inner.leadership.leader,
            inner.leadership.epoch,
            inner.log.log_end_offset(),
        );
        let fresh =
            inner.tracker.is_none() && now == (asked.leader, asked.leader_epoch, asked.offset);
        if !fresh {
            tracing::debug!(partition = %self.name(), asked = ?asked, leader = ?now.0, epoch = now.1, log_end_offset = now.2,
                "dropping a stale fetch answer");
        }
        fresh
    }

    /// Follower: applies a fetch answer from the leader, if it answers the
    /// fetch this replica would send now (see [`FetchPosition`]). Returns
    /// whether it was applied.
    pub fn apply_fetched(
        &self,
        fetched: &FetchedPartition,
        asked: &FetchPosition,
        fsync: bool,
    ) -> Result<bool, ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        if !self.still_at(inner, asked) {
            return Ok(false);
        }
        if let Some((epoch, end)) = fetched.diverging_epoch {
            let own_end = inner.log.end_offset_for_epoch(epoch).map(|(_, o)| o);
            let to =
                divergence::truncation_point((epoch, end), own_end, inner.log.log_end_offset());
            tracing::info!(partition = %self.name(), epoch, leader_end = end, truncate_to = to, "log diverged from the leader; truncating");
            if to < inner.log.log_start_offset() {
                // Everything this replica holds is past the point: start over there.
                inner.truncations += 1;
                inner.log.reset_to(to).map_err(storage_error)?;
                inner.producers = ProducerTable::default();
            } else {
                inner.truncations += 1;
                inner.log.truncate_to(to).map_err(storage_error)?;
                inner.producers.truncate(to);
            }
            inner.high_watermark = inner.high_watermark.min(inner.log.log_end_offset());
            return Ok(true);
        }
        let leo = inner.log.log_end_offset();
        // The one check of fetched batches (see `ReplicatedBatches` for why
        // it is lighter than a producer's).
        let batches = ReplicatedBatches::check(&fetched.records)
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::CorruptBatch,
                    format!("{}: fetched from the leader: {e}", self.name()),
                )
            })?
            .from_offset(leo);
        if !batches.is_empty() {
            inner
                .log
                .append_replicated(&batches)
                .map_err(storage_error)?;
            for h in batches.headers() {
                inner.producers.record(
                    h.producer_id,
                    h.base_sequence,
                    last_seq(h),
                    h.base_offset,
                    h.last_offset(),
                );
            }
            if fsync {
                let began = Instant::now();
                inner.log.flush().map_err(storage_error)?;
                self.stats.fsync_latency.observe(began.elapsed());
                inner.durable_offset = inner.log.log_end_offset();
            }
        }
        inner.high_watermark = inner
            .high_watermark
            .max(fetched.high_watermark.min(inner.log.log_end_offset()));
        Ok(true)
    }

    /// Follower: the leader answered OffsetOutOfRange to a fetch sent at
    /// `asked` because its log starts at `leader_log_start`. When this
    /// log still ends there, below the leader's start, it is emptied and
    /// restarts at the leader's log start (Kafka: truncate fully and start
    /// at the leader's log start offset). Returns whether it did.
    pub fn restart_at(
        &self,
        asked: &FetchPosition,
        leader_log_start: u64,
    ) -> Result<bool, ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        let leo = inner.log.log_end_offset();
        if !self.still_at(inner, asked) || leo >= leader_log_start {
            return Ok(false);
        }
        tracing::warn!(partition = %self.name(), log_end_offset = leo, leader_log_start,
            "log ends below the leader's log start (deleted by retention); emptying it and restarting there");
        inner.truncations += 1;
        inner
            .log
            .reset_to(leader_log_start)
            .map_err(storage_error)?;
        inner.producers = ProducerTable::default();
        inner.high_watermark = leader_log_start;
        Ok(true)
    }

    /// Sets the topic's own settings, as ZooKeeper holds them.
    pub fn set_topic_config(&self, config: TopicConfig) {
        self.lock().topic_config = config;
    }

    /// Deletes old segments by the topic's retention settings, else
    /// `defaults` (the broker's). Leaders and followers each apply it to
    /// their own log; never past the high watermark this replica knows.
    pub fn apply_retention(
        &self,
        defaults: RetentionPolicy,
        now_ms: i64,
    ) -> Result<RetentionReport, StorageError> {
        let mut g = self.lock();
        let inner = &mut *g;
        let c = inner.topic_config;
        let policy = RetentionPolicy {
            bytes: c.retention_bytes.or(defaults.bytes),
            ms: c.retention_ms.or(defaults.ms),
        };
        let hw = inner.high_watermark;
        let expired = inner.producers.expire(
            Instant::now(),
            Duration::from_millis(PRODUCER_ID_EXPIRATION_MS),
        );
        if expired > 0 {
            tracing::info!(topic = %self.topic, partition = self.partition, producers = expired, "producer ids expired");
        }
        inner.log.apply_retention(policy, hw, now_ms)
    }

    /// Leader: an ISR without lagging followers, if that differs and no
    /// other change is in flight.
    pub fn propose_shrink(&self, now: Instant, lag_max: Duration) -> Option<IsrProposal> {
        let mut g = self.lock();
        let inner = &mut *g;
        let isr = inner.tracker.as_mut()?.shrink(now, lag_max)?;
        Some(IsrProposal {
            leader_epoch: inner.leadership.epoch,
            partition_epoch: inner.leadership.partition_epoch,
            isr,
        })
    }

    /// Leader: ZooKeeper answered `proposal`: the partition is now at
    /// `isr`, `partition_epoch`. A newer state is applied. An answer at the
    /// proposal's own epoch means ZooKeeper changed nothing (the ISR asked
    /// for, without members it knows dead, is the one it has): that settles
    /// the proposal. An answer this replica already knows of otherwise
    /// (metadata brought it first) changes nothing: the change it answers
    /// was settled then, and any change pending now is a newer one.
    pub fn isr_accepted(
        &self,
        proposal: &IsrProposal,
        partition_epoch: u64,
        isr: &[u32],
    ) -> Completions {
        let unchanged = partition_epoch == proposal.partition_epoch && self.is_pending(proposal);
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = Vec::new();
        if inner.leadership.epoch != proposal.leader_epoch {
            return out;
        }
        if unchanged && partition_epoch == inner.leadership.partition_epoch {
            if let Some(t) = inner.tracker.as_mut() {
                t.proposal_failed();
            }
            return out;
        }
        if partition_epoch <= inner.leadership.partition_epoch {
            return out;
        }
        if let Some(t) = inner.tracker.as_mut() {
            // Every change pending was based on an older partition epoch:
            // ZooKeeper's compare-and-set refuses it now, so it is settled.
            t.set_isr(isr);
        }
        inner.leadership.isr = isr.to_vec();
        inner.leadership.partition_epoch = partition_epoch;
        Self::advance(inner, &mut out);
        out
    }

    /// Leader: whether `proposal` is the ISR change in flight now: same
    /// leader epoch, same partition epoch, same ISR. A queued proposal that
    /// is no longer pending (metadata settled it) is not sent.
    pub fn is_pending(&self, proposal: &IsrProposal) -> bool {
        let g = self.lock();
        g.leadership.epoch == proposal.leader_epoch
            && g.leadership.partition_epoch == proposal.partition_epoch
            && g.tracker.as_ref().and_then(IsrTracker::pending) == Some(proposal.isr.as_slice())
    }

    /// Leader: ZooKeeper definitely refused `proposal` (not a lost answer,
    /// not a stale version: those wait for metadata to settle them). Only
    /// that very proposal is forgotten, so the next fetch or tick may ask
    /// again; a newer pending one is left alone.
    pub fn isr_refused(&self, proposal: &IsrProposal) {
        if !self.is_pending(proposal) {
            return;
        }
        if let Some(t) = self.lock().tracker.as_mut() {
            t.proposal_failed();
        }
    }

    /// Fails waiting requests past their deadline with `Timeout`.
    pub fn expire_waiters(&self, now: Instant) -> Completions {
        let mut g = self.lock();
        let (expired, waiting): (Vec<_>, Vec<_>) =
            g.waiters.drain(..).partition(|w| w.deadline <= now);
        g.waiters = waiting;
        let name = self.name();
        expired
            .into_iter()
            .map(|w| {
                let err = ErrorBody::new(
                    ErrorCode::Timeout,
                    format!("{name}: the in-sync replicas did not confirm in time"),
                );
                (w.responder, Reply::Error(err))
            })
            .collect()
    }

    /// Earliest offset, or the high watermark (what a consumer can read up to).
    pub fn offset(&self, latest: bool) -> Result<u64, ErrorBody> {
        let g = self.lock();
        if g.tracker.is_none() {
            return Err(self.not_leader(&g.leadership));
        }
        Ok(if latest {
            g.high_watermark
        } else {
            g.log.log_start_offset()
        })
    }

    /// Fsyncs the log.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.lock().log.flush()
    }

    /// The state of this replica.
    pub fn describe(&self) -> LocalPartition {
        let g = self.lock();
        LocalPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            topic_id: self.topic_id,
            log_start_offset: g.log.log_start_offset(),
            log_end_offset: g.log.log_end_offset(),
            high_watermark: g.high_watermark,
            leader_epoch: g.leadership.epoch,
            is_leader: g.tracker.is_some(),
            isr: g.leadership.isr.clone(),
        }
    }
}

#[cfg(test)]
impl Partition {
    /// Tests: produces one batch of `values` from `producer_id` at
    /// `base_sequence` with `acks`, as the broker would after checking it.
    pub(crate) fn produce_values(
        &self,
        acks: i8,
        producer_id: i64,
        base_sequence: i32,
        values: &[&[u8]],
    ) -> (Handled, Completions) {
        let mut b = batch::BatchBuilder::new(producer_id, 0, base_sequence, 64);
        for value in values {
            b.push(batch::NewRecord {
                key: None,
                value,
                timestamp_ms: 0,
            });
        }
        let bytes = b.finish();
        let batch = batch::CheckedBatch::check(bytes).expect("a built batch checks");
        let (responder, _peer) = Responder::for_test(7);
        self.produce(
            Acks::try_from(acks).expect("test: a valid acks value"),
            batch,
            Duration::from_secs(10),
            responder,
            Instant::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{BatchBuilder, NewRecord};

    fn batch_at(base: u64, n: u32) -> Vec<u8> {
        let mut b = BatchBuilder::new(-1, 0, -1, 64);
        for _ in 0..n {
            b.push(NewRecord {
                key: None,
                value: b"v",
                timestamp_ms: 0,
            });
        }
        let mut bytes = b.finish();
        batch::stamp(&mut bytes, base, 0);
        bytes
    }

    fn single_replica_leader(dir: &std::path::Path, sync_appends: bool) -> Partition {
        let log =
            Log::open(&dir.join("t-0"), crate::storage::LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, sync_appends);
        let leadership = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1],
            isr: vec![1],
            partition_epoch: 0,
        };
        assert!(p.set_leadership(leadership, Instant::now()).is_empty());
        p
    }

    fn produce_two(p: &Partition) -> (Handled, Completions) {
        p.produce_values(-1, -1, -1, &[b"a", b"b"])
    }

    #[test]
    fn given_fsync_always_when_producing_acks_all_should_answer_only_after_the_data_is_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = single_replica_leader(dir.path(), true);
        let (handled, done) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred), "no ack before fsync");
        assert!(done.is_empty());
        assert_eq!(
            p.describe().high_watermark,
            0,
            "unsynced data is not below the high watermark"
        );
        let (done, moved) = p.sync().expect("sync");
        assert!(moved);
        assert_eq!(done.len(), 1, "the parked request completes");
        assert_eq!(p.describe().high_watermark, 2);
        assert!(!p.sync().expect("sync").1, "nothing left to sync");
    }

    #[test]
    fn given_fsync_never_when_producing_acks_all_should_answer_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = single_replica_leader(dir.path(), false);
        let (handled, _) = produce_two(&p);
        assert!(matches!(
            handled,
            Handled::Reply(Reply::Produced {
                base_offset: 0,
                duplicate: false
            })
        ));
        assert_eq!(p.describe().high_watermark, 2);
    }

    #[test]
    fn given_batches_when_cutting_below_offset_should_keep_only_earlier_batches() {
        let mut all = batch_at(0, 3);
        let first = all.len();
        all.extend(batch_at(3, 2));
        assert_eq!(cut_below(all.clone(), 3).len(), first);
        assert_eq!(cut_below(all.clone(), 5).len(), all.len());
        assert!(cut_below(all, 0).is_empty());
    }

    fn three_replica_leader(dir: &std::path::Path) -> Partition {
        let log =
            Log::open(&dir.join("t-0"), crate::storage::LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, false);
        let leadership = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 0,
        };
        assert!(p.set_leadership(leadership, Instant::now()).is_empty());
        p
    }

    fn error_code(completions: &Completions) -> Vec<ErrorCode> {
        completions
            .iter()
            .map(|(_, r)| match r {
                Reply::Error(e) => e.code.clone(),
                other => panic!("expected an error, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn given_acks_all_waiting_when_isr_shrinks_below_min_insync_should_answer_not_enough_replicas_after_append(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_replica_leader(dir.path());
        let (handled, done) = produce_two(&p);
        assert!(
            matches!(handled, Handled::Deferred),
            "waits for the followers"
        );
        assert!(done.is_empty());
        // Both followers are paused: ZooKeeper commits ISR = [leader]. The
        // high watermark now passes the batch, but one copy is not the
        // min.insync.replicas = 2 that acks=all promises.
        let done = p.isr_accepted(&proposal_at(0, vec![1]), 1, &[1]);
        assert_eq!(
            p.describe().high_watermark,
            2,
            "the high watermark follows the ISR"
        );
        assert_eq!(
            error_code(&done),
            vec![ErrorCode::NotEnoughReplicasAfterAppend]
        );
    }

    #[test]
    fn given_acks_all_waiting_when_metadata_shrinks_isr_below_min_insync_should_not_acknowledge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_replica_leader(dir.path());
        let (handled, _) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred));
        // ZooKeeper expired both followers' sessions (failover, same term).
        let smaller = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1],
            partition_epoch: 1,
        };
        let done = p.set_leadership(smaller, Instant::now());
        assert_eq!(
            error_code(&done),
            vec![ErrorCode::NotEnoughReplicasAfterAppend]
        );
    }

    #[test]
    fn given_acks_all_waiting_when_isr_shrinks_but_keeps_min_insync_should_acknowledge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_replica_leader(dir.path());
        let (handled, _) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred));
        let now = Instant::now();
        let f = p.fetch_for_follower(2, 2, 1 << 20, Some(0), Some(0), now);
        assert!(f.completions.is_empty(), "follower 3 has not fetched yet");
        let done = p.isr_accepted(&proposal_at(0, vec![1, 2]), 1, &[1, 2]);
        assert!(
            matches!(
                done.as_slice(),
                [(_, Reply::Produced { base_offset: 0, .. })]
            ),
            "two copies: acknowledged"
        );
    }

    #[test]
    fn given_stale_metadata_when_isr_change_was_already_applied_should_keep_the_newer_isr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_replica_leader(dir.path());
        assert!(p
            .isr_accepted(&proposal_at(0, vec![1, 2]), 1, &[1, 2])
            .is_empty());
        let old = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 0,
        };
        assert!(p.set_leadership(old, Instant::now()).is_empty());
        assert_eq!(
            p.leadership().isr,
            vec![1, 2],
            "metadata read before the change does not undo it"
        );
        assert_eq!(p.leadership().partition_epoch, 1);
    }

    #[test]
    fn given_pending_isr_expansion_when_others_advance_should_hold_the_high_watermark_at_the_joining_member(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(
            &dir.path().join("t-0"),
            crate::storage::LogConfig::default(),
        )
        .expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, false);
        let now = Instant::now();
        let l = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            partition_epoch: 0,
        };
        assert!(p.set_leadership(l, now).is_empty());
        let (handled, _) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred));
        // Follower 3 is at the high watermark (0) and the epoch start (0): it asks to rejoin.
        let f = p.fetch_for_follower(3, 0, 1 << 20, Some(0), None, now);
        let proposal = f.proposal.expect("rejoin proposed");
        assert_eq!(proposal.isr, vec![1, 2, 3]);
        assert_eq!(proposal.partition_epoch, 0);
        // Follower 2 catches up. With the change in flight ZooKeeper may
        // already have made 3 a member (and could elect it): nothing it does
        // not hold may be acknowledged.
        let f = p.fetch_for_follower(2, 2, 1 << 20, Some(0), Some(0), now);
        assert!(f.completions.is_empty());
        assert_eq!(p.describe().high_watermark, 0);
        let f = p.fetch_for_follower(3, 2, 1 << 20, Some(0), Some(0), now);
        assert_eq!(f.completions.len(), 1);
        assert_eq!(p.describe().high_watermark, 2);
    }

    fn follower(dir: &std::path::Path, leader: u32, epoch: u32) -> Partition {
        let log =
            Log::open(&dir.join("t-0"), crate::storage::LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, false);
        let l = Leadership {
            leader: Some(leader),
            epoch,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 0,
        };
        assert!(p.set_leadership(l, Instant::now()).is_empty());
        p
    }

    fn answer(
        records: Vec<u8>,
        high_watermark: u64,
        diverging_epoch: Option<(u32, u64)>,
    ) -> FetchedPartition {
        FetchedPartition {
            topic: "t".into(),
            partition: 0,
            error: None,
            high_watermark,
            log_start_offset: 0,
            records,
            diverging_epoch,
        }
    }

    #[test]
    fn given_leader_changed_while_fetching_when_old_answer_arrives_should_drop_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = follower(dir.path(), 2, 4);
        let asked = p.fetch_position();
        // Meanwhile ZooKeeper elected broker 3 at epoch 5.
        let l = Leadership {
            leader: Some(3),
            epoch: 5,
            replicas: vec![1, 2, 3],
            isr: vec![1, 3],
            partition_epoch: 1,
        };
        p.set_leadership(l, Instant::now());
        let late = answer(batch_at(0, 3), 3, None);
        assert!(
            !p.apply_fetched(&late, &asked, false).expect("apply"),
            "a late answer from broker 2 is dropped"
        );
        assert_eq!(p.describe().log_end_offset, 0);
        assert!(
            p.apply_fetched(&late, &p.fetch_position(), false)
                .expect("apply"),
            "the same bytes from the current leader apply"
        );
        assert_eq!(p.describe().log_end_offset, 3);
    }

    #[test]
    fn given_stale_diverging_epoch_when_log_moved_on_should_not_truncate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = follower(dir.path(), 2, 0);
        let asked = p.fetch_position();
        assert!(p
            .apply_fetched(&answer(batch_at(0, 3), 3, None), &asked, false)
            .expect("apply"));
        // An answer to the fetch sent at offset 0 (before the append) that
        // says "diverged at epoch 0, end 0" must not cut the log below its
        // high watermark.
        let stale = answer(Vec::new(), 3, Some((0, 0)));
        assert!(!p.apply_fetched(&stale, &asked, false).expect("apply"));
        assert_eq!(p.describe().log_end_offset, 3);
        assert_eq!(p.describe().high_watermark, 3);
    }

    #[test]
    fn given_same_leader_new_epoch_when_old_epoch_answer_arrives_should_drop_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = follower(dir.path(), 2, 4);
        let asked = p.fetch_position();
        let l = Leadership {
            leader: Some(2),
            epoch: 6,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 2,
        };
        p.set_leadership(l, Instant::now());
        assert!(!p
            .apply_fetched(&answer(batch_at(0, 1), 1, None), &asked, false)
            .expect("apply"));
        assert_eq!(p.describe().log_end_offset, 0);
    }

    #[test]
    fn given_newer_expansion_pending_when_an_older_change_is_answered_should_keep_it_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_replica_leader(dir.path());
        let t0 = Instant::now();
        // Follower 3 falls silent: shrink S is proposed at partition epoch 0.
        p.fetch_for_follower(2, 0, 1 << 20, Some(0), None, t0);
        let later = t0 + Duration::from_secs(5);
        p.fetch_for_follower(2, 0, 1 << 20, Some(0), None, later);
        let shrink = p
            .propose_shrink(later, Duration::from_secs(1))
            .expect("shrink proposed");
        assert_eq!(shrink.isr, vec![1, 2]);
        // ZooKeeper commits it and metadata brings it first (epoch 1)...
        let after = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            partition_epoch: 1,
        };
        p.set_leadership(after, later);
        // ...then 3 comes back: expansion E is pending at epoch 1.
        let (handled, _) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred));
        let e = p
            .fetch_for_follower(3, 0, 1 << 20, Some(0), None, later)
            .proposal
            .expect("rejoin proposed");
        assert_eq!((e.isr.clone(), e.partition_epoch), (vec![1, 2, 3], 1));
        // S's own answer arrives late, and a refusal of S too: neither settles E.
        assert!(p
            .isr_accepted(&proposal_at(0, vec![1, 2]), 1, &[1, 2])
            .is_empty());
        p.isr_refused(&shrink);
        assert!(p.is_pending(&e), "the newer expansion is still in flight");
        let f = p.fetch_for_follower(2, 2, 1 << 20, Some(0), Some(0), later);
        assert!(
            f.completions.is_empty(),
            "3 (maybe already in ZooKeeper's ISR) does not hold the batch"
        );
        assert_eq!(p.describe().high_watermark, 0);
        // E's refusal (a definite one) does settle it.
        p.isr_refused(&e);
        assert!(!p.is_pending(&e));
    }

    fn proposal_at(partition_epoch: u64, isr: Vec<u32>) -> IsrProposal {
        IsrProposal {
            leader_epoch: 0,
            partition_epoch,
            isr,
        }
    }

    #[test]
    fn given_expansion_of_a_dead_follower_when_zookeeper_changes_nothing_should_settle_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(
            &dir.path().join("t-0"),
            crate::storage::LogConfig::default(),
        )
        .expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, false);
        let now = Instant::now();
        let l = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 3],
            partition_epoch: 1,
        };
        p.set_leadership(l, now);
        // A fetch of follower 2 still being served after 2 died asks to add it...
        let e = p
            .fetch_for_follower(2, 0, 1 << 20, Some(0), None, now)
            .proposal
            .expect("rejoin proposed");
        // ...and ZooKeeper, knowing 2 dead, leaves the ISR as it is.
        assert!(p.isr_accepted(&e, 1, &[1, 3]).is_empty());
        assert!(
            !p.is_pending(&e),
            "a definite 'no change' settles the proposal"
        );
        let again = p
            .fetch_for_follower(2, 0, 1 << 20, Some(0), None, now)
            .proposal;
        assert!(again.is_some(), "the restarted follower can ask to rejoin");
    }
}
