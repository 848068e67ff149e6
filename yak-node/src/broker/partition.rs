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
use crate::limits::{MIN_INSYNC_REPLICAS_DEFAULT, PRODUCER_STATE_SCAN_BYTES};
use crate::protocol::batch::{self, BatchHeader, HEADER_BYTES};
use crate::protocol::{ErrorBody, ErrorCode, FetchedPartition, LocalPartition, Reply, TopicConfig};
use crate::server::{Handled, Responder};
use crate::storage::{Log, RetentionPolicy, RetentionReport, StorageError};
use std::sync::{Mutex, MutexGuard};
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
    /// An ISR to ask ZooKeeper for (the follower caught up), with the epoch.
    pub proposal: Option<(u32, Vec<u32>)>,
    /// Produce requests the new high watermark completed.
    pub completions: Completions,
    /// The high watermark moved: consumers may have new data.
    pub hw_advanced: bool,
}

struct Inner {
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
    inner: Mutex<Inner>,
}

/// Sends completed answers.
pub fn send_all(completions: Completions) {
    for (responder, reply) in completions {
        responder.send(reply);
    }
}

fn storage_error(e: StorageError) -> ErrorBody {
    match e {
        StorageError::OffsetOutOfRange { log_start_offset, log_end_offset, offset } => {
            let why = if offset < log_start_offset {
                format!("offset {offset} is below the earliest offset {log_start_offset} (older records were deleted by retention)")
            } else {
                format!("offset {offset} is past the log end offset {log_end_offset}")
            };
            ErrorBody::new(ErrorCode::OffsetOutOfRange { log_start_offset, log_end_offset }, why)
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
    let end = headers(&bytes).find(|(h, _)| h.base_offset >= offset).map(|(_, start)| start);
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
        let Ok(bytes) = log.read(offset, PRODUCER_STATE_SCAN_BYTES) else { break };
        if bytes.is_empty() {
            break;
        }
        scanned += bytes.len() as u64;
        for (h, _) in headers(&bytes) {
            table.record(h.producer_id, h.base_sequence, last_seq(&h), h.base_offset, h.last_offset());
            offset = h.next_offset();
        }
    }
    table
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: String, partition: u32, topic_id: u64, broker_id: u32, log: Log, sync_appends: bool) -> Partition {
        let producers = rebuild_producers(&log);
        let inner = Inner {
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
        Partition { topic, partition, topic_id, broker_id, inner: Mutex::new(inner) }
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
            ErrorCode::NotLeader { leader: l.leader, epoch: l.epoch },
            format!("broker {} does not lead {} (leader {:?}, epoch {})", self.broker_id, self.name(), l.leader, l.epoch),
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
        let same_term = inner.leadership.leader == new.leader && inner.leadership.epoch == new.epoch;
        let mut out = Vec::new();
        if new.leader == me {
            match (&mut inner.tracker, same_term) {
                (Some(t), true) => t.set_isr(&new.isr),
                _ => {
                    let leo = inner.log.log_end_offset();
                    inner.high_watermark = inner.high_watermark.min(leo);
                    inner.tracker = Some(IsrTracker::new(self.broker_id, &new.replicas, &new.isr, inner.high_watermark, now));
                    tracing::info!(partition = %self.name(), epoch = new.epoch, log_end_offset = leo, isr = ?new.isr, "became leader");
                }
            }
        } else {
            if was_leader || !same_term {
                let err = self.not_leader(&new);
                out.extend(inner.waiters.drain(..).map(|w| (w.responder, Reply::Error(err.clone()))));
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

    /// Leader: recomputes the high watermark and completes waiting requests.
    fn advance(inner: &mut Inner, out: &mut Completions) {
        let Some(t) = inner.tracker.as_mut() else { return };
        let leo = inner.log.log_end_offset();
        inner.durable_offset = inner.durable_offset.min(leo);
        let own_end = if inner.sync_appends { inner.durable_offset } else { leo };
        inner.high_watermark = t.update_high_watermark(own_end);
        let hw = inner.high_watermark;
        let (done, waiting): (Vec<_>, Vec<_>) = inner.waiters.drain(..).partition(|w| w.last_offset < hw);
        inner.waiters = waiting;
        out.extend(done.into_iter().map(|w| (w.responder, w.reply)));
    }

    /// Appends a producer's batch as leader. acks=all requests wait in the
    /// partition until the high watermark passes them.
    pub fn produce(
        &self,
        acks: i8,
        mut records: Vec<u8>,
        header: &BatchHeader,
        ack_timeout: Duration,
        responder: Responder,
    ) -> (Handled, Completions) {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = Vec::new();
        if inner.tracker.is_none() {
            return (Handled::Reply(Reply::Error(self.not_leader(&inner.leadership))), out);
        }
        let min_isr = MIN_INSYNC_REPLICAS_DEFAULT.min(inner.leadership.replicas.len());
        if acks == -1 && inner.leadership.isr.len() < min_isr {
            let err = ErrorBody::new(
                ErrorCode::NotEnoughReplicas,
                format!("{}: {} in-sync replicas, acks=all needs {min_isr}", self.name(), inner.leadership.isr.len()),
            );
            return (Handled::Reply(Reply::Error(err)), out);
        }
        let (base_offset, last_offset, duplicate) =
            match inner.producers.check(header.producer_id, header.base_sequence, last_seq(header)) {
                Verdict::Duplicate { base_offset, last_offset } => (base_offset, last_offset, true),
                Verdict::OutOfOrder { expected } => {
                    let err = ErrorBody::new(
                        ErrorCode::OutOfOrderSequence,
                        format!("{}: producer {} sent sequence {}, expected {expected}", self.name(), header.producer_id, header.base_sequence),
                    );
                    return (Handled::Reply(Reply::Error(err)), out);
                }
                Verdict::Append => {
                    let epoch = inner.leadership.epoch;
                    let info = match inner.log.append(&mut records, epoch) {
                        Ok(i) => i,
                        Err(e) => return (Handled::Reply(Reply::Error(storage_error(e))), out),
                    };
                    let (first, last) = (header.base_sequence, last_seq(header));
                    inner.producers.record(header.producer_id, first, last, info.base_offset, info.last_offset);
                    (info.base_offset, info.last_offset, false)
                }
            };
        Self::advance(inner, &mut out);
        let reply = Reply::Produced { base_offset, duplicate };
        let handled = match acks {
            0 => Handled::NoReply,
            -1 if inner.high_watermark <= last_offset => {
                inner.waiters.push(Waiter { last_offset, reply, responder, deadline: Instant::now() + ack_timeout });
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
                format!("{}: epoch {e} is older than the leader's {}", self.name(), inner.leadership.epoch),
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
    pub fn fetch_for_consumer(&self, offset: u64, max_bytes: u32, epoch: Option<u32>) -> FetchedPartition {
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
        let mut out = FollowerFetch { result: self.empty_result(), proposal: None, completions: Vec::new(), hw_advanced: false };
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
            out.result.error = Some(storage_error(StorageError::OffsetOutOfRange { offset, log_start_offset, log_end_offset }));
            return out;
        }
        let leader_end = last_fetched_epoch.and_then(|e| inner.log.end_offset_for_epoch(e));
        let diverging = divergence::leader_check(offset, last_fetched_epoch, leader_end, inner.leadership.epoch, leo);
        if let Some(d) = diverging {
            out.result.diverging_epoch = Some(d);
            out.result.high_watermark = inner.high_watermark;
            return out;
        }
        let proposal = inner.tracker.as_mut().and_then(|t| t.on_fetch(follower, offset, leo, now));
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
        out.proposal = proposal.map(|isr| (inner.leadership.epoch, isr));
        out
    }

    /// Leader with fsync policy `always`: fsyncs appends not yet on disk —
    /// one fsync for every batch appended since the last (group commit) — and
    /// completes the requests the higher watermark covers. Returns them and
    /// whether the high watermark moved. A failed fsync (a fatal storage
    /// error) never returns: the broker fail-stops ([`super::fail_stop`]).
    pub fn sync(&self) -> Result<(Completions, bool), ErrorBody> {
        let name = self.name();
        let fatal = |e: StorageError| -> ErrorBody {
            if e.is_fatal() {
                super::fail_stop(&format_args!("{name}: {e}"));
            }
            storage_error(e)
        };
        let (file, end, truncations) = {
            let mut g = self.lock();
            let inner = &mut *g;
            let leo = inner.log.log_end_offset();
            if !inner.sync_appends || inner.durable_offset >= leo {
                return Ok((Vec::new(), false));
            }
            match inner.log.data_sync_handle().map_err(fatal)? {
                Some((file, end)) => (file, end, inner.truncations),
                None => {
                    // A new segment or index entries: the full flush, under the lock.
                    inner.log.flush().map_err(fatal)?;
                    return Ok(Self::made_durable(inner, leo));
                }
            }
        };
        // The fsync runs without the lock: appends and follower fetches of
        // this partition go on meanwhile, and the next sync covers them.
        if let Err(e) = file.sync_data() {
            super::fail_stop(&format_args!("{name}: fsync of the active segment: {e}"));
        }
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
        inner.durable_offset = inner.durable_offset.max(end.min(inner.log.log_end_offset()));
        let hw = inner.high_watermark;
        Self::advance(inner, &mut out);
        let moved = inner.high_watermark > hw;
        (out, moved)
    }

    /// Follower: where to fetch from next: (offset, last epoch, leader epoch).
    pub fn fetch_position(&self) -> (u64, Option<u32>, u32) {
        let g = self.lock();
        (g.log.log_end_offset(), g.log.latest_epoch(), g.leadership.epoch)
    }

    /// Follower: applies a fetch answer from the leader.
    pub fn apply_fetched(&self, fetched: &FetchedPartition, fsync: bool) -> Result<(), ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.tracker.is_some() {
            return Ok(());
        }
        if let Some((epoch, end)) = fetched.diverging_epoch {
            let own_end = inner.log.end_offset_for_epoch(epoch).map(|(_, o)| o);
            let to = divergence::truncation_point((epoch, end), own_end, inner.log.log_end_offset());
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
            return Ok(());
        }
        let leo = inner.log.log_end_offset();
        let skip = headers(&fetched.records).find(|(h, _)| h.base_offset >= leo).map(|(_, at)| at);
        let bytes = match skip {
            Some(at) => &fetched.records[at..],
            None => &[][..],
        };
        if bytes.len() >= HEADER_BYTES {
            inner.log.append_replicated(bytes).map_err(storage_error)?;
            for (h, _) in headers(bytes) {
                inner.producers.record(h.producer_id, h.base_sequence, last_seq(&h), h.base_offset, h.last_offset());
            }
            if fsync {
                inner.log.flush().map_err(storage_error)?;
                inner.durable_offset = inner.log.log_end_offset();
            }
        }
        inner.high_watermark = inner.high_watermark.max(fetched.high_watermark.min(inner.log.log_end_offset()));
        Ok(())
    }

    /// Follower: the leader answered OffsetOutOfRange to a fetch at
    /// `fetched_from` because its log starts at `leader_log_start`. When this
    /// log still ends there, below the leader's start, it is emptied and
    /// restarts at the leader's log start (Kafka: truncate fully and start
    /// at the leader's log start offset). Returns whether it did.
    pub fn restart_at(&self, fetched_from: u64, leader_log_start: u64) -> Result<bool, ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        let leo = inner.log.log_end_offset();
        if inner.tracker.is_some() || leo != fetched_from || leo >= leader_log_start {
            return Ok(false);
        }
        tracing::warn!(partition = %self.name(), log_end_offset = leo, leader_log_start,
            "log ends below the leader's log start (deleted by retention); emptying it and restarting there");
        inner.truncations += 1;
        inner.log.reset_to(leader_log_start).map_err(storage_error)?;
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
    pub fn apply_retention(&self, defaults: RetentionPolicy, now_ms: i64) -> Result<RetentionReport, StorageError> {
        let mut g = self.lock();
        let inner = &mut *g;
        let c = inner.topic_config;
        let policy = RetentionPolicy { bytes: c.retention_bytes.or(defaults.bytes), ms: c.retention_ms.or(defaults.ms) };
        let hw = inner.high_watermark;
        inner.log.apply_retention(policy, hw, now_ms)
    }

    /// Leader: an ISR without lagging followers, if that differs, with the epoch.
    pub fn propose_shrink(&self, now: Instant, lag_max: Duration) -> Option<(u32, Vec<u32>)> {
        let g = self.lock();
        let t = g.tracker.as_ref()?;
        t.shrink(now, lag_max).map(|isr| (g.leadership.epoch, isr))
    }

    /// Leader: ZooKeeper accepted a new ISR at `epoch`.
    pub fn isr_accepted(&self, epoch: u32, isr: &[u32]) -> Completions {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut out = Vec::new();
        if inner.leadership.epoch != epoch {
            return out;
        }
        if let Some(t) = inner.tracker.as_mut() {
            t.set_isr(isr);
        }
        inner.leadership.isr = isr.to_vec();
        Self::advance(inner, &mut out);
        out
    }

    /// Fails waiting requests past their deadline with `Timeout`.
    pub fn expire_waiters(&self, now: Instant) -> Completions {
        let mut g = self.lock();
        let (expired, waiting): (Vec<_>, Vec<_>) = g.waiters.drain(..).partition(|w| w.deadline <= now);
        g.waiters = waiting;
        let name = self.name();
        expired
            .into_iter()
            .map(|w| {
                let err = ErrorBody::new(ErrorCode::Timeout, format!("{name}: the in-sync replicas did not confirm in time"));
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
        Ok(if latest { g.high_watermark } else { g.log.log_start_offset() })
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
mod tests {
    use super::*;
    use crate::protocol::batch::{BatchBuilder, NewRecord};

    fn batch_at(base: u64, n: u32) -> Vec<u8> {
        let mut b = BatchBuilder::new(-1, 0, -1, 64);
        for _ in 0..n {
            b.push(NewRecord { key: None, value: b"v", timestamp_ms: 0 });
        }
        let mut bytes = b.finish();
        batch::stamp(&mut bytes, base, 0);
        bytes
    }

    fn single_replica_leader(dir: &std::path::Path, sync_appends: bool) -> Partition {
        let log = Log::open(&dir.join("t-0"), crate::storage::LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, sync_appends);
        let leadership = Leadership { leader: Some(1), epoch: 0, replicas: vec![1], isr: vec![1] };
        assert!(p.set_leadership(leadership, Instant::now()).is_empty());
        p
    }

    fn produce_two(p: &Partition) -> (Handled, Completions) {
        let mut b = batch::BatchBuilder::new(-1, 0, -1, 64);
        b.push(NewRecord { key: None, value: b"a", timestamp_ms: 0 });
        b.push(NewRecord { key: None, value: b"b", timestamp_ms: 0 });
        let bytes = b.finish();
        let header = batch::validate(&bytes).expect("valid batch");
        let (responder, _peer) = Responder::for_test(7);
        p.produce(-1, bytes, &header, Duration::from_secs(10), responder)
    }

    #[test]
    fn given_fsync_always_when_producing_acks_all_should_answer_only_after_the_data_is_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = single_replica_leader(dir.path(), true);
        let (handled, done) = produce_two(&p);
        assert!(matches!(handled, Handled::Deferred), "no ack before fsync");
        assert!(done.is_empty());
        assert_eq!(p.describe().high_watermark, 0, "unsynced data is not below the high watermark");
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
        assert!(matches!(handled, Handled::Reply(Reply::Produced { base_offset: 0, duplicate: false })));
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
}
