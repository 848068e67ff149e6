//! One partition replica on this broker, as a shell around its
//! [`ReplicaCore`]: the shell owns the log, the idempotent-producer table
//! (dedup needs the log), the mutex, and the reply channel of each parked
//! produce request (by request id); the core decides everything else
//! (leadership, high watermark, ISR, which request is answered how). One
//! mutex guards both, so an append, its dedup check and the high watermark
//! move together. Every method here does its I/O, feeds the core the event
//! and performs the actions it returns.
//!
//! Leader: appends produce batches, answers follower fetches (detecting a
//! diverged follower log by epoch), completes waiting acks=all requests.
//! Follower: appends what its fetcher brings, truncating first where the
//! leader says the logs diverged.

mod answers;
mod batches;
mod by_time;
mod follower;
mod leader_epoch;

use super::producers::{ProducerTable, Verdict};
use super::replica::{Action, Event, ReplicaCore, RequestId};
use super::stats::BrokerStats;
use crate::limits::PRODUCER_ID_EXPIRATION_MS;
use crate::protocol::batch::CheckedBatch;
use crate::protocol::{
    Acks, ErrorBody, ErrorCode, FetchedPartition, LocalPartition, OffsetSpec, Reply,
    TimestampOffset, TimestampType, TopicConfig,
};
use crate::server::{Handled, Responder};
use crate::storage::{Log, RetentionPolicy, RetentionReport, StorageError};
use answers::storage_error;
use batches::{cut_below, rebuild_producers};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use super::replica::{FetchPosition, IsrProposal, Leadership};

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

/// What the core's actions came to, besides the truncations the follower
/// paths perform themselves.
#[derive(Default)]
struct Effects {
    completions: Completions,
    proposals: Vec<IsrProposal>,
    hw_advanced: bool,
    diverging: Option<(u32, u64)>,
    /// Truncate or Restart, for the follower path that asked.
    cut: Option<Action>,
}

struct Inner {
    /// `<topic>-<partition>`, for messages.
    name: String,
    log: Log,
    core: ReplicaCore,
    producers: ProducerTable,
    /// Parked produce requests: where to answer and what to answer on success.
    parked: HashMap<RequestId, (Responder, Reply)>,
    next_request: RequestId,
    /// The topic's own settings from ZooKeeper (retention overrides).
    topic_config: TopicConfig,
}

impl Inner {
    fn step(&mut self, broker: u32, event: Event) -> Effects {
        let actions = self.core.step(event);
        self.perform(broker, actions)
    }

    fn perform(&mut self, broker: u32, actions: Vec<Action>) -> Effects {
        let mut fx = Effects::default();
        for action in actions {
            match action {
                Action::Reply {
                    request,
                    last_offset,
                    outcome,
                } => match self.parked.remove(&request) {
                    Some((responder, ok)) => {
                        let reply = answers::outcome(&self.name, broker, last_offset, outcome, ok);
                        fx.completions.push((responder, reply));
                    }
                    None => {
                        tracing::error!(partition = %self.name, request, "bug: an answer for a request not parked")
                    }
                },
                Action::ProposeIsr(p) => fx.proposals.push(p),
                Action::HighWatermarkAdvanced(_) => fx.hw_advanced = true,
                Action::Diverging { epoch, end } => fx.diverging = Some((epoch, end)),
                cut @ (Action::Truncate { .. } | Action::Restart { .. }) => fx.cut = Some(cut),
            }
        }
        fx
    }
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
            core: ReplicaCore::new(broker_id, log.log_end_offset(), sync_appends),
            log,
            producers,
            parked: HashMap::new(),
            next_request: 0,
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
        self.lock().core.leadership().clone()
    }

    /// Applies leadership from ZooKeeper. Returns answers to send (waiting
    /// produce requests failed by a lost leadership or completed by a
    /// smaller ISR).
    #[must_use = "completed answers: hand them to send_all"]
    pub fn set_leadership(&self, leadership: Leadership, now: Instant) -> Completions {
        self.lock()
            .step(self.broker_id, Event::Leadership { leadership, now })
            .completions
    }

    /// Appends a producer's batch as leader. acks=all requests wait in the
    /// partition until the high watermark passes them.
    #[must_use = "completed answers: hand them to send_all"]
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
        let acks_all = acks == Acks::All;
        let refused = |e: ErrorBody| (Handled::Reply(Reply::Error(e)), Vec::new());
        if let Err(r) = inner.core.admit(acks_all) {
            return refused(answers::refusal(&inner.name, self.broker_id, r));
        }
        let (pid, producer_epoch, first, last) = (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.last_sequence(),
        );
        let mut fx = Effects::default();
        let verdict = inner.producers.check(pid, producer_epoch, first, last);
        let mut log_append_time_ms = None;
        let (base_offset, last_offset, duplicate) = match verdict {
            Verdict::Duplicate {
                base_offset,
                last_offset,
            } => (base_offset, last_offset, true),
            Verdict::OutOfOrder { expected } => {
                return refused(ErrorBody::new(
                    ErrorCode::OutOfOrderSequence,
                    format!(
                        "{}: producer {pid} sent sequence {first}, expected {expected}",
                        inner.name
                    ),
                ));
            }
            Verdict::Fenced { current } => {
                return refused(ErrorBody::new(
                    ErrorCode::InvalidProducerEpoch,
                    format!(
                        "{}: producer {pid} sent epoch {producer_epoch}, older than its epoch {current}",
                        inner.name
                    ),
                ));
            }
            Verdict::Append => {
                if inner.topic_config.message_timestamp_type == Some(TimestampType::LogAppendTime) {
                    let ms = super::now_ms();
                    batch.set_log_append_time(ms);
                    log_append_time_ms = Some(ms);
                }
                let epoch = inner.core.leadership().epoch;
                let info = match inner.log.append(&mut batch, epoch) {
                    Ok(i) => i,
                    Err(e) => return refused(storage_error(e)),
                };
                inner.producers.record(
                    pid,
                    producer_epoch,
                    first,
                    last,
                    info.base_offset,
                    info.last_offset,
                );
                let log_end_offset = inner.log.log_end_offset();
                fx = inner.step(self.broker_id, Event::Appended { log_end_offset });
                (info.base_offset, info.last_offset, false)
            }
        };
        let reply = Reply::Produced {
            base_offset,
            duplicate,
            log_append_time_ms,
        };
        if acks == Acks::None {
            return (Handled::NoReply, fx.completions);
        }
        let request = inner.next_request;
        inner.next_request += 1;
        let actions = inner.core.step(Event::Produced {
            request,
            last_offset,
            acks_all,
            deadline: now + ack_timeout,
        });
        let (own, others): (Vec<_>, Vec<_>) = actions
            .into_iter()
            .partition(|a| matches!(a, Action::Reply { request: r, .. } if *r == request));
        fx.completions
            .extend(inner.perform(self.broker_id, others).completions);
        let handled = match own.into_iter().next() {
            Some(Action::Reply {
                last_offset,
                outcome,
                ..
            }) => Handled::Reply(answers::outcome(
                &inner.name,
                self.broker_id,
                last_offset,
                outcome,
                reply,
            )),
            _ => {
                inner.parked.insert(request, (responder, reply));
                Handled::Deferred
            }
        };
        (handled, fx.completions)
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
        if let Err(r) = g.core.check_epoch(epoch) {
            out.error = Some(answers::refusal(&g.name, self.broker_id, r));
            return out;
        }
        let hw = g.core.high_watermark();
        out.high_watermark = hw;
        out.log_start_offset = g.log.log_start_offset();
        let leo = g.log.log_end_offset();
        if offset > leo || offset < out.log_start_offset {
            out.error = Some(storage_error(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: out.log_start_offset,
                log_end_offset: leo,
            }));
        } else if offset < hw && max_bytes > 0 {
            match g.log.read(offset, max_bytes) {
                Ok(bytes) => out.records = cut_below(bytes, hw),
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
        if let Err(r) = inner.core.check_epoch(epoch) {
            out.result.error = Some(answers::refusal(&inner.name, self.broker_id, r));
            return out;
        }
        let leo = inner.log.log_end_offset();
        out.result.log_start_offset = inner.log.log_start_offset();
        out.result.high_watermark = inner.core.high_watermark();
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
        let leader_end_for_epoch =
            last_fetched_epoch.and_then(|e| inner.log.end_offset_for_epoch(e));
        let fx = inner.step(
            self.broker_id,
            Event::FollowerFetched {
                follower,
                offset,
                last_fetched_epoch,
                leader_end_for_epoch,
                now,
            },
        );
        out.result.high_watermark = inner.core.high_watermark();
        out.completions = fx.completions;
        out.hw_advanced = fx.hw_advanced;
        out.proposal = fx.proposals.into_iter().last();
        if let Some(d) = fx.diverging {
            out.result.diverging_epoch = Some(d);
            return out;
        }
        if offset < leo && max_bytes > 0 {
            match inner.log.read(offset, max_bytes) {
                Ok(bytes) => out.result.records = bytes,
                Err(e) => out.result.error = Some(storage_error(e)),
            }
        }
        out
    }

    /// Leader with fsync policy `always`: fsyncs appends not yet on disk —
    /// one fsync for every batch appended since the last (group commit) — and
    /// completes the requests the higher watermark covers. Returns them and
    /// whether the high watermark moved. A failed fsync (a fatal storage
    /// error) never returns: the broker fail-stops ([`super::fail_stop`]).
    #[must_use = "completed answers: hand them to send_all"]
    pub fn sync(&self) -> Result<(Completions, bool), ErrorBody> {
        let name = self.name();
        let (file, end, truncations) = {
            let mut g = self.lock();
            let inner = &mut *g;
            if !inner.core.needs_sync() {
                return Ok((Vec::new(), false));
            }
            let truncations = inner.core.truncations();
            match inner.log.data_sync_handle().map_err(storage_error)? {
                Some((file, end)) => (file, end, truncations),
                None => {
                    // A new segment or index entries: the full flush, under the lock.
                    let end = inner.log.log_end_offset();
                    let began = Instant::now();
                    inner.log.flush().map_err(storage_error)?;
                    self.stats.fsync_latency.observe(began.elapsed());
                    let fx = inner.step(self.broker_id, Event::Synced { end, truncations });
                    return Ok((fx.completions, fx.hw_advanced));
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
        let fx = self
            .lock()
            .step(self.broker_id, Event::Synced { end, truncations });
        Ok((fx.completions, fx.hw_advanced))
    }

    /// Which time the topic's records carry (`message.timestamp.type`).
    pub fn timestamp_type(&self) -> TimestampType {
        self.lock()
            .topic_config
            .message_timestamp_type
            .unwrap_or(TimestampType::CreateTime)
    }

    /// Sets the topic's own settings, as ZooKeeper holds them.
    pub fn set_topic_config(&self, config: TopicConfig) {
        let mut inner = self.lock();
        inner.log.set_segment_bytes(config.segment_bytes);
        inner
            .core
            .set_min_insync_replicas(config.min_insync_replicas);
        inner.topic_config = config;
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
        let hw = inner.core.high_watermark();
        let expired = inner.producers.expire(
            Instant::now(),
            Duration::from_millis(PRODUCER_ID_EXPIRATION_MS),
        );
        if expired > 0 {
            tracing::info!(topic = %self.topic, partition = self.partition, producers = expired, "producer ids expired");
        }
        inner.log.apply_retention(policy, hw, now_ms)
    }

    /// Every maintenance tick: fails waiting requests past their deadline
    /// with `Timeout`, and returns an ISR without lagging followers to ask
    /// for, if that differs and no other change is in flight.
    #[must_use = "completed answers: hand them to send_all"]
    pub fn tick(&self, now: Instant, lag_max: Duration) -> (Completions, Option<IsrProposal>) {
        let fx = self
            .lock()
            .step(self.broker_id, Event::Tick { now, lag_max });
        (fx.completions, fx.proposals.into_iter().last())
    }

    /// Leader: ZooKeeper answered `proposal`: the partition is now at
    /// `isr`, `partition_epoch` (see [`Event::IsrAccepted`]).
    #[must_use = "completed answers: hand them to send_all"]
    pub fn isr_accepted(
        &self,
        proposal: &IsrProposal,
        partition_epoch: u64,
        isr: &[u32],
    ) -> Completions {
        let event = Event::IsrAccepted {
            proposal: proposal.clone(),
            partition_epoch,
            isr: isr.to_vec(),
        };
        self.lock().step(self.broker_id, event).completions
    }

    /// Leader: whether `proposal` is the ISR change in flight now: same
    /// leader epoch, same partition epoch, same ISR. A queued proposal that
    /// is no longer pending (metadata settled it) is not sent.
    pub fn is_pending(&self, proposal: &IsrProposal) -> bool {
        self.lock().core.is_pending(proposal)
    }

    /// Leader: ZooKeeper definitely refused `proposal` (not a lost answer,
    /// not a stale version: those wait for metadata to settle them). Only
    /// that very proposal is forgotten, so the next fetch or tick may ask
    /// again; a newer pending one is left alone.
    pub fn isr_refused(&self, proposal: &IsrProposal) {
        let event = Event::IsrRefused {
            proposal: proposal.clone(),
        };
        self.lock().step(self.broker_id, event);
    }

    /// Earliest offset, or the high watermark (what a consumer can read up to).
    pub fn offset(&self, latest: bool) -> Result<u64, ErrorBody> {
        let g = self.lock();
        if !g.core.is_leader() {
            let l = g.core.leadership();
            return Err(answers::not_leader(
                &g.name,
                self.broker_id,
                l.leader,
                l.epoch,
            ));
        }
        Ok(if latest {
            g.core.high_watermark()
        } else {
            g.log.log_start_offset()
        })
    }

    /// ListOffsets by timestamp (or the largest): the first record at or
    /// after it below the high watermark, through the log's time index.
    pub fn offset_by_time(&self, spec: OffsetSpec) -> Result<Option<TimestampOffset>, ErrorBody> {
        let mut g = self.lock();
        if !g.core.is_leader() {
            let l = g.core.leadership();
            return Err(answers::not_leader(
                &g.name,
                self.broker_id,
                l.leader,
                l.epoch,
            ));
        }
        let high_watermark = g.core.high_watermark();
        by_time::find(&mut g.log, spec, high_watermark).map_err(storage_error)
    }

    /// Fsyncs the log.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.lock().log.flush()
    }

    /// The state of this replica.
    #[must_use = "completed answers: hand them to send_all"]
    pub fn describe(&self) -> LocalPartition {
        let g = self.lock();
        LocalPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            topic_id: self.topic_id,
            log_start_offset: g.log.log_start_offset(),
            log_end_offset: g.log.log_end_offset(),
            high_watermark: g.core.high_watermark(),
            leader_epoch: g.core.leadership().epoch,
            is_leader: g.core.is_leader(),
            isr: g.core.leadership().isr.clone(),
            size_bytes: g.log.size_bytes(),
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
        use crate::protocol::batch;
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
    use crate::protocol::batch::{self, BatchBuilder, NewRecord};
    use crate::protocol::ErrorCode;

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
                duplicate: false,
                log_append_time_ms: None,
            })
        ));
        assert_eq!(p.describe().high_watermark, 2);
    }

    #[test]
    fn given_log_append_time_topic_when_producing_should_store_and_answer_the_leaders_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = single_replica_leader(dir.path(), false);
        p.set_topic_config(TopicConfig {
            message_timestamp_type: Some(TimestampType::LogAppendTime),
            ..TopicConfig::default()
        });
        let before = super::super::now_ms();
        let (handled, _) = produce_two(&p); // the producer's timestamps are 0
        let after = super::super::now_ms();
        let Handled::Reply(Reply::Produced {
            log_append_time_ms: Some(t),
            ..
        }) = handled
        else {
            panic!("expected an answer with an append time");
        };
        assert!((before..=after).contains(&t), "{before} <= {t} <= {after}");
        let fetched = p.fetch_for_consumer(0, 1 << 20, None);
        let stored = crate::protocol::batch::decode(&fetched.records).expect("stored batch");
        let times: Vec<i64> = stored
            .iter()
            .map(|r| r.expect("record").timestamp_ms)
            .collect();
        assert_eq!(times, vec![t, t], "every record reads as the append time");
        // Back to CreateTime: the producer's time again, and no append time.
        p.set_topic_config(TopicConfig::default());
        let (handled, _) = produce_two(&p);
        assert!(matches!(
            handled,
            Handled::Reply(Reply::Produced {
                log_append_time_ms: None,
                ..
            })
        ));
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
        let _ = p.set_leadership(l, Instant::now());
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
        let _ = p.set_leadership(l, Instant::now());
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
        let (expired, shrink) = p.tick(later, Duration::from_secs(1));
        assert!(expired.is_empty());
        let shrink = shrink.expect("shrink proposed");
        assert_eq!(shrink.isr, vec![1, 2]);
        // ZooKeeper commits it and metadata brings it first (epoch 1)...
        let after = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            partition_epoch: 1,
        };
        let _ = p.set_leadership(after, later);
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
        let _ = p.set_leadership(l, now);
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
