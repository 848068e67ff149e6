//! The broker: serves produce, fetch and offset requests for the partition
//! replicas it holds, replicates as a follower, keeps the ISR and high
//! watermark as a leader, follows ZooKeeper's metadata and heartbeats.
//! Owns partition data; never decides placement or leaders.

pub mod fetcher;
pub mod notify;
pub mod partition;
pub mod peers;
#[cfg(test)]
mod producer_sequence_tests;
pub use crate::storage::producers;
pub mod replica;
pub mod replicas;
pub mod stats;
pub mod throttle;
pub mod zk_session;

use crate::limits::{
    FETCH_FRAME_SLACK_BYTES, FETCH_PARTITIONS_MAX, FETCH_PARTITION_OVERHEAD_BYTES,
    FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX, FRAME_BYTES_MAX, PRODUCE_ACK_TIMEOUT_MS,
    REPLICA_LAG_TIME_MAX_MS, RETENTION_CHECK_INTERVAL_MS, TIMESTAMP_AHEAD_MS_MAX,
};
use crate::protocol::batch::{self, BatchError, CheckedBatch};
use crate::protocol::{Acks, ClientError};
use crate::protocol::{
    Call, ClusterMetadata, ErrorBody, ErrorCode, FetchPartition, FetchedPartition, OffsetSpec,
    Reply, TimestampType,
};
use crate::server::{self, Handled, Handler, Responder};
use crate::storage::{FsyncPolicy, LogConfig, RetentionPolicy};
use fetcher::Fetchers;
use notify::Notifier;
use partition::{send_all, Partition};
use replicas::Replicas;
use stats::BrokerStats;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zk_session::ZkSession;

/// How a broker is set up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Broker id (1..).
    pub id: u32,
    /// Where the sockets live.
    pub run_dir: PathBuf,
    /// Where `broker-<id>/` goes.
    pub data_dir: PathBuf,
    /// Segment size and index interval.
    pub log: LogConfig,
    /// When appends are fsynced.
    pub fsync: FsyncPolicy,
    /// Cluster-wide retention for topics without their own.
    pub retention: RetentionPolicy,
    /// Most connections served at once.
    pub connections_max: usize,
    /// Kafka listener: `127.0.0.1:PORT` (`None`: off) and whether its
    /// Metadata creates unknown topics.
    pub kafka: Option<crate::kafka::KafkaSettings>,
}

use partition::IsrProposal;

/// A long-polling fetch that found nothing yet, parked on the notifier.
struct ParkedFetch {
    replica_id: Option<u32>,
    min_bytes: u32,
    partitions: Vec<FetchPartition>,
    responder: Responder,
}

/// Whether a fetch has something to answer now: at least `min_bytes` of
/// records over all partitions (0: always), or an error or a divergence
/// for any partition.
fn fetch_ready(results: &[FetchedPartition], min_bytes: u32) -> bool {
    let records: usize = results.iter().map(|r| r.records.len()).sum();
    records >= min_bytes as usize
        || results
            .iter()
            .any(|r| r.error.is_some() || r.diverging_epoch.is_some())
}

/// The broker's request handler and background duties.
pub struct Broker {
    id: u32,
    fsync: FsyncPolicy,
    retention: RetentionPolicy,
    replicas: Replicas,
    zk: ZkSession,
    fetchers: Fetchers,
    /// Bumped when data changes; long-polling fetches park on it.
    appended: Notifier<ParkedFetch>,
    metadata_version: Mutex<Option<u64>>,
    isr_proposals: Mutex<Vec<(String, u32, IsrProposal)>>,
    /// Counters for metrics (the same the replicas count fsyncs into).
    stats: Arc<BrokerStats>,
    /// Registered broker pids: a replica fetch is served only to its follower's process.
    peers: peers::PeerPids,
}

impl Broker {
    /// Applies metadata from ZooKeeper (never an older version than applied).
    fn on_metadata(&self, m: &ClusterMetadata) {
        let mut applied = self
            .metadata_version
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if applied.is_some_and(|v| v > m.version) {
            return;
        }
        *applied = Some(m.version);
        self.peers.update(&m.brokers);
        let (completions, plan) = self.replicas.reconcile(m);
        self.fetchers.apply(plan);
        drop(applied);
        send_all(completions, &self.stats);
        self.appended.notify();
    }

    /// Reloads and applies metadata; returns it (None if ZooKeeper failed).
    fn refresh_metadata(&self) -> Option<ClusterMetadata> {
        match self.zk.metadata() {
            Ok(m) => {
                self.on_metadata(&m);
                Some(m)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata refresh failed");
                None
            }
        }
    }

    /// Whether `peer` is the process registered as broker `replica_id`;
    /// asks ZooKeeper for the brokers once if not (the follower may have
    /// restarted and registered a new pid since the last metadata).
    fn is_replica(&self, replica_id: u32, peer: Option<u32>) -> bool {
        if self.peers.is_replica(replica_id, peer) {
            return true;
        }
        match self.zk.call(&Call::Metadata {
            topics: Some(Vec::new()),
            after_topic: None,
        }) {
            Ok(Reply::Metadata(m)) => self.peers.update(&m.brokers),
            Ok(other) => tracing::warn!(reply = ?other, "unexpected answer to a brokers query"),
            Err(e) => tracing::warn!(error = %e, "cannot reload brokers"),
        }
        self.peers.is_replica(replica_id, peer)
    }

    /// Finds a replica, reloading metadata once if it is unknown (a topic
    /// created a moment ago).
    fn replica(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, ErrorBody> {
        if let Some(p) = self.replicas.get(topic, partition) {
            return Ok(p);
        }
        let metadata = self.refresh_metadata();
        self.replicas
            .get(topic, partition)
            .ok_or_else(|| self.not_here(metadata.as_ref(), topic, partition))
    }

    /// Like [`Broker::replica`], but reloads metadata only while `may_refresh`
    /// holds and then clears it: one request naming many unknown partitions
    /// costs one metadata round trip, not one each.
    fn replica_once(
        &self,
        topic: &str,
        partition: u32,
        may_refresh: &mut bool,
    ) -> Result<Arc<Partition>, ErrorBody> {
        if let Some(p) = self.replicas.get(topic, partition) {
            return Ok(p);
        }
        if !std::mem::replace(may_refresh, false) {
            return Err(ErrorBody::new(
                ErrorCode::UnknownPartition,
                format!("broker {} holds no replica of {topic}-{partition}", self.id),
            ));
        }
        self.replica(topic, partition)
    }

    /// Why this broker cannot serve a partition, from freshly loaded metadata.
    fn not_here(
        &self,
        metadata: Option<&ClusterMetadata>,
        topic: &str,
        partition: u32,
    ) -> ErrorBody {
        let Some(m) = metadata else {
            return ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("broker {} does not know {topic}-{partition}", self.id),
            );
        };
        match m.topics.iter().find(|t| t.name == topic) {
            None => ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("topic '{topic}' does not exist"),
            ),
            Some(t) => match t.partitions.get(partition as usize) {
                None => ErrorBody::new(
                    ErrorCode::UnknownPartition,
                    format!("topic '{topic}' has no partition {partition}"),
                ),
                Some(p) => ErrorBody::new(
                    ErrorCode::NotLeader {
                        leader: p.leader,
                        epoch: p.leader_epoch,
                    },
                    format!("broker {} holds no replica of {topic}-{partition}", self.id),
                ),
            },
        }
    }

    fn produce(
        &self,
        topic: &str,
        partition: u32,
        acks: Acks,
        records: Vec<u8>,
        responder: Responder,
    ) -> Handled {
        self.stats.produce_received(records.len());
        let received = responder.received();
        let checked = (|| {
            // The one check of a produced batch: from here on it is a CheckedBatch.
            let batch = CheckedBatch::check(records).map_err(|e| {
                let code = match e {
                    BatchError::TooLarge { .. } => ErrorCode::MessageTooLarge,
                    _ => ErrorCode::CorruptBatch,
                };
                ErrorBody::new(code, format!("{topic}-{partition}: {e}"))
            })?;
            let replica = self.replica(topic, partition)?;
            // A LogAppendTime topic replaces the producer's time: no check.
            if replica.timestamp_type() == TimestampType::CreateTime {
                check_timestamp(batch.header(), now_ms()).map_err(|e| {
                    ErrorBody::new(e.code, format!("{topic}-{partition}: {}", e.message))
                })?;
            }
            Ok((batch, replica))
        })();
        let (batch, replica) = match checked {
            Ok(v) => v,
            Err(e) if acks == Acks::None => {
                tracing::warn!(topic, partition, error = %e, "acks=0 produce failed");
                return Handled::NoReply;
            }
            Err(e) => {
                self.stats.produce_answered(received.elapsed(), true);
                return Handled::Reply(Reply::Error(e));
            }
        };
        let timeout = Duration::from_millis(PRODUCE_ACK_TIMEOUT_MS);
        let (handled, completions) =
            replica.produce(acks, batch, timeout, responder, Instant::now());
        if let Handled::Reply(reply) = &handled {
            self.stats
                .produce_answered(received.elapsed(), matches!(reply, Reply::Error(_)));
        }
        send_all(completions, &self.stats);
        self.appended.notify();
        handled
    }

    /// Answers a fetch at once when there is something to say (`min_bytes`
    /// of records, an error, a divergence) or nothing to wait for; else
    /// parks it on the notifier for the fetch waker, and the connection
    /// reads on.
    fn fetch(
        &self,
        replica_id: Option<u32>,
        max_wait_ms: u64,
        min_bytes: u32,
        partitions: Vec<FetchPartition>,
        responder: Responder,
    ) -> Handled {
        if let Err(e) = check_fetch(&partitions) {
            return Handled::Reply(Reply::Error(e));
        }
        let deadline = Instant::now() + Duration::from_millis(max_wait_ms.min(FETCH_WAIT_MS_MAX));
        let generation = self.appended.generation();
        let results = self.read_fetch(replica_id, &partitions, true);
        if fetch_ready(&results, min_bytes) || Instant::now() >= deadline {
            return Handled::Reply(self.fetched(replica_id, results));
        }
        let waiter = ParkedFetch {
            replica_id,
            min_bytes,
            partitions,
            responder,
        };
        self.appended.park(generation, deadline, waiter);
        Handled::Deferred
    }

    /// The fetch waker: looks again at parked fetches whenever data changes
    /// (an append, a high watermark move, new metadata) and at their
    /// deadlines, and hands each answer to its connection's writer.
    fn wake_fetches_forever(&self) {
        let mut seen = self.appended.generation();
        loop {
            let due = self.appended.next_due(&mut seen);
            for notify::Parked { deadline, waiter } in due.waiters {
                let results = self.read_fetch(waiter.replica_id, &waiter.partitions, false);
                if fetch_ready(&results, waiter.min_bytes) || Instant::now() >= deadline {
                    let reply = self.fetched(waiter.replica_id, results);
                    waiter.responder.send(reply);
                } else {
                    self.appended.park(due.generation, deadline, waiter);
                }
            }
        }
    }

    /// A fetch answer, counted.
    fn fetched(&self, replica_id: Option<u32>, partitions: Vec<FetchedPartition>) -> Reply {
        let bytes = partitions.iter().map(|p| p.records.len() as u64).sum();
        self.stats.fetch_answered(replica_id.is_some(), bytes);
        Reply::Fetched { partitions }
    }

    /// Reads what a fetch asks for, once. A follower's fetch also records
    /// its progress (and may move the high watermark). `may_refresh`: an
    /// unknown partition or a newer leader epoch may reload metadata (not on
    /// the fetch waker, which must not wait for ZooKeeper).
    fn read_fetch(
        &self,
        replica_id: Option<u32>,
        partitions: &[FetchPartition],
        may_refresh: bool,
    ) -> Vec<FetchedPartition> {
        let mut may_refresh_replicas = may_refresh;
        let frame_records_max = fetch_frame_records_max(partitions);
        let mut budget = FETCH_RESPONSE_BYTES_MAX;
        let mut frame_left = frame_records_max;
        let mut results = Vec::with_capacity(partitions.len());
        let mut hw_advanced = false;
        for req in partitions {
            // At least one batch while the budget lasts, nothing after.
            let max_bytes = if budget == 0 || frame_left == 0 {
                0
            } else {
                req.max_bytes
                    .min(budget)
                    .min(u32::try_from(frame_left).unwrap_or(u32::MAX))
                    .max(1)
            };
            let replica =
                match self.replica_once(&req.topic, req.partition, &mut may_refresh_replicas) {
                    Ok(r) => r,
                    Err(e) => {
                        results.push(FetchedPartition {
                            topic: req.topic.clone(),
                            partition: req.partition,
                            error: Some(e),
                            high_watermark: 0,
                            log_start_offset: 0,
                            records: Vec::new(),
                            diverging_epoch: None,
                        });
                        continue;
                    }
                };
            let mut result = match replica_id {
                None => replica.fetch_for_consumer(req.offset, max_bytes, req.leader_epoch),
                Some(follower) => {
                    let f = replica.fetch_for_follower(
                        follower,
                        req.offset,
                        max_bytes,
                        req.leader_epoch,
                        req.last_fetched_epoch,
                        Instant::now(),
                    );
                    send_all(f.completions, &self.stats);
                    hw_advanced |= f.hw_advanced;
                    if let Some(proposal) = f.proposal {
                        self.propose_isr(&req.topic, req.partition, proposal);
                    }
                    f.result
                }
            };
            if may_refresh
                && result
                    .error
                    .as_ref()
                    .is_some_and(|e| matches!(e.code, ErrorCode::NotLeader { .. }))
                && req
                    .leader_epoch
                    .is_some_and(|e| e > replica.leadership().epoch)
            {
                // Someone knows a newer epoch than this broker: catch up.
                let _ = self.refresh_metadata();
            }
            if result.records.len() > frame_left {
                // The answer must stay one frame: these records wait for the next fetch.
                result.records = Vec::new();
                if !results.iter().any(|r| !r.records.is_empty()) {
                    result.error = Some(ErrorBody::new(
                        ErrorCode::MessageTooLarge,
                        format!("{}-{}: the next batch does not fit one answer with {} partitions; fetch fewer at once",
                            req.topic, req.partition, partitions.len()),
                    ));
                }
                frame_left = 0;
                budget = 0;
            } else {
                frame_left -= result.records.len();
                budget = budget.saturating_sub(result.records.len() as u32);
            }
            results.push(result);
        }
        if hw_advanced {
            self.appended.notify();
        }
        results
    }

    fn propose_isr(&self, topic: &str, partition: u32, proposal: IsrProposal) {
        let mut q = self.isr_proposals.lock().unwrap_or_else(|p| p.into_inner());
        q.retain(|(t, p, _)| !(t == topic && *p == partition));
        q.push((topic.to_string(), partition, proposal));
    }

    /// Every tick: expire waiting acks, shrink lagging ISRs, send ISR changes.
    fn maintain(&self) {
        let now = Instant::now();
        for p in self.replicas.all() {
            let (expired, shrink) = p.tick(now, Duration::from_millis(REPLICA_LAG_TIME_MAX_MS));
            send_all(expired, &self.stats);
            if let Some(proposal) = shrink {
                self.propose_isr(&p.topic, p.partition, proposal);
            }
        }
        let proposals =
            std::mem::take(&mut *self.isr_proposals.lock().unwrap_or_else(|p| p.into_inner()));
        for (topic, partition, proposal) in proposals {
            let Some(replica) = self.replicas.get(&topic, partition) else {
                continue;
            };
            if replica.is_pending(&proposal) {
                self.alter_isr(&replica, proposal);
            }
        }
    }

    /// Queues `proposal` again unless a newer one for the partition is queued.
    fn retry_isr(&self, topic: &str, partition: u32, proposal: IsrProposal) {
        let mut q = self.isr_proposals.lock().unwrap_or_else(|p| p.into_inner());
        if !q.iter().any(|(t, p, _)| t == topic && *p == partition) {
            q.push((topic.to_string(), partition, proposal));
        }
    }

    /// Asks ZooKeeper for an ISR change (compare-and-set on the partition
    /// epoch) and applies what it committed. The change stays pending (and
    /// its joining member keeps counting toward the high watermark) until
    /// its outcome is known: a lost answer is asked again (ZooKeeper may
    /// have committed it: a retry then meets a moved partition epoch), a
    /// stale version waits for metadata, which settles it; only a definite
    /// refusal forgets it.
    fn alter_isr(&self, replica: &Partition, proposal: IsrProposal) {
        let (topic, partition) = (replica.topic.as_str(), replica.partition);
        let call = Call::AlterIsr {
            topic: topic.to_string(),
            partition,
            leader: self.id,
            leader_epoch: proposal.leader_epoch,
            isr: proposal.isr.clone(),
            partition_epoch: proposal.partition_epoch,
            topic_id: replica.topic_id,
        };
        match self.zk.call(&call) {
            Ok(Reply::IsrAltered {
                isr,
                partition_epoch,
            }) => {
                tracing::info!(topic, partition, asked = ?proposal.isr, isr = ?isr, partition_epoch, "isr change accepted");
                send_all(
                    replica.isr_accepted(&proposal, partition_epoch, &isr),
                    &self.stats,
                );
                self.appended.notify();
            }
            Err(ClientError::Server(e)) if e.code == ErrorCode::InvalidUpdateVersion => {
                tracing::info!(topic, partition, asked = ?proposal.isr, error = %e, "isr change based on an old state; reloading metadata");
                if self.refresh_metadata().is_none() {
                    self.retry_isr(topic, partition, proposal);
                }
            }
            Err(ClientError::Server(e)) => {
                tracing::warn!(topic, partition, asked = ?proposal.isr, error = %e, "isr change refused");
                replica.isr_refused(&proposal);
                let _ = self.refresh_metadata();
            }
            other => {
                let why = match other {
                    Ok(reply) => format!("unexpected reply {reply:?}"),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(topic, partition, asked = ?proposal.isr, error = %why, "isr change not answered; asking again");
                self.retry_isr(topic, partition, proposal);
            }
        }
    }

    /// Every few seconds: deletes old segments of every replica this broker
    /// holds, leader or follower (offsets are the same on every replica).
    fn apply_retention(&self) {
        let now_ms = now_ms();
        for p in self.replicas.all() {
            match p.apply_retention(self.retention, now_ms) {
                Ok(r) if r.segments_deleted > 0 => {
                    tracing::info!(topic = %p.topic, partition = p.partition, segments = r.segments_deleted,
                        bytes = r.bytes_deleted, log_start_offset = r.log_start_offset, "retention applied");
                }
                Ok(_) => {}
                Err(e) if e.is_fatal() => {
                    fail_stop(&format_args!("{}-{}: retention: {e}", p.topic, p.partition))
                }
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "retention failed")
                }
            }
        }
    }

    /// fsync policy `always`: waits for appends and fsyncs them, many at a
    /// time, forever. Producers' acks=all requests complete from here.
    fn flush_forever(&self) {
        loop {
            let generation = self.appended.generation();
            let mut advanced = false;
            for p in self.replicas.all() {
                match p.sync() {
                    Ok((completions, moved)) => {
                        send_all(completions, &self.stats);
                        advanced |= moved;
                    }
                    // A failed fsync never returns here: `Partition::sync` fail-stops.
                    Err(e) => {
                        tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "sync failed")
                    }
                }
            }
            if advanced {
                self.appended.notify();
            }
            self.appended
                .wait(generation, Instant::now() + Duration::from_millis(100));
        }
    }

    fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<Reply, ErrorBody> {
        let replica = self.replica(topic, partition)?;
        match spec {
            OffsetSpec::Earliest | OffsetSpec::Latest => Ok(Reply::Offset {
                offset: replica.offset(spec == OffsetSpec::Latest)?,
            }),
            OffsetSpec::Timestamp { .. } | OffsetSpec::MaxTimestamp => Ok(Reply::TimestampOffset {
                found: replica.offset_by_time(spec)?,
            }),
        }
    }
}

impl Handler for Broker {
    fn handle(&self, call: Call, responder: Responder) -> Handled {
        let result = match call {
            Call::Produce {
                topic,
                partition,
                acks,
                records,
            } => match Acks::from_wire(acks) {
                Ok(acks) => return self.produce(&topic, partition, acks, records, responder),
                Err(e) => Err(e),
            },
            Call::Fetch {
                replica_id: Some(id),
                ..
            } if !self.is_replica(id, responder.peer_pid()) => {
                let refusal = self.peers.refusal(id, responder.peer_pid());
                tracing::warn!(error = %refusal, "refused a replica fetch");
                Err(refusal)
            }
            Call::Fetch {
                replica_id,
                max_wait_ms,
                min_bytes,
                partitions,
            } => return self.fetch(replica_id, max_wait_ms, min_bytes, partitions, responder),
            Call::ListOffsets {
                topic,
                partition,
                spec,
            } => self.list_offsets(&topic, partition, spec),
            Call::EpochEndOffset {
                topic,
                partition,
                leader_epoch,
                current_leader_epoch,
            } => self
                .replica(&topic, partition)
                .and_then(|p| p.epoch_end_offset(leader_epoch, current_leader_epoch))
                .map(|epoch_end| Reply::EpochEndOffset { epoch_end }),
            Call::LocalPartitions => Ok(Reply::LocalPartitions {
                partitions: self.replicas.describe(),
            }),
            Call::BrokerStats => Ok(Reply::BrokerStats(self.stats.report())),
            Call::RegisterBroker { .. }
            | Call::Heartbeat { .. }
            | Call::CreateTopic { .. }
            | Call::DeleteTopic { .. }
            | Call::Metadata { .. }
            | Call::AlterIsr { .. }
            | Call::BrokerDown { .. }
            | Call::RebalanceLeaders { .. }
            | Call::ProcessRestarted(_)
            | Call::Events { .. }
            | Call::InitProducerId
            | Call::BumpProducerEpoch { .. }
            | Call::JoinGroup { .. }
            | Call::ConsumerGroupHeartbeat { .. }
            | Call::GroupHeartbeat { .. }
            | Call::LeaveGroup { .. }
            | Call::CommitOffsets { .. }
            | Call::FetchOffsets { .. }
            | Call::ListGroups
            | Call::DescribeGroup { .. }
            | Call::ResetOffsets { .. }
            | Call::ClassicGroup(_)
            | Call::CreatePartitions { .. }
            | Call::AlterTopicConfig { .. }
            | Call::ReassignPartitions { .. }
            | Call::CancelReassignments { .. }
            | Call::AddBroker
            | Call::ForgetBroker { .. }
            | Call::RemoveBroker { .. } => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "brokers do not serve metadata requests; ask ZooKeeper",
            )),
        };
        Handled::Reply(result.unwrap_or_else(Reply::Error))
    }
}

/// Now in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Refuses a batch whose max timestamp is more than
/// [`TIMESTAMP_AHEAD_MS_MAX`] ahead of `now_ms` (Kafka's
/// `message.timestamp.after.max.ms`): time retention keeps a segment until
/// its newest timestamp is old, so one far-future batch would keep it forever.
fn check_timestamp(header: &batch::BatchHeader, now_ms: i64) -> Result<(), ErrorBody> {
    let ahead_ms = header.max_timestamp_ms.saturating_sub(now_ms);
    if ahead_ms > TIMESTAMP_AHEAD_MS_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidTimestamp,
            format!(
                "the batch's max timestamp {} is {ahead_ms} ms ahead of the broker's clock; at most {TIMESTAMP_AHEAD_MS_MAX} ms is accepted",
                header.max_timestamp_ms
            ),
        ));
    }
    Ok(())
}

/// Refuses a fetch naming too many partitions or one partition twice.
fn check_fetch(partitions: &[FetchPartition]) -> Result<(), ErrorBody> {
    if partitions.len() > FETCH_PARTITIONS_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!(
                "a fetch names {} partitions; the limit is {FETCH_PARTITIONS_MAX}",
                partitions.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(partitions.len());
    match partitions
        .iter()
        .find(|p| !seen.insert((p.topic.as_str(), p.partition)))
    {
        Some(p) => Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("a fetch names {}-{} twice", p.topic, p.partition),
        )),
        None => Ok(()),
    }
}

/// Most record bytes a fetch answer naming `partitions` may carry and still
/// be one frame: the frame limit less each partition's worst-case envelope
/// (fields, an error message, its topic name twice) and some slack.
fn fetch_frame_records_max(partitions: &[FetchPartition]) -> usize {
    let envelopes: usize = partitions
        .iter()
        .map(|p| FETCH_PARTITION_OVERHEAD_BYTES + 2 * p.topic.len())
        .sum();
    FRAME_BYTES_MAX.saturating_sub(FETCH_FRAME_SLACK_BYTES + envelopes)
}

/// Exit code of a broker that stopped on a fatal storage error.
pub const FAIL_STOP_EXIT_CODE: i32 = 74;

/// Fail-stop on a fatal storage error (a failed fsync): logs one line and
/// exits non-zero, so the supervisor restarts the broker and recovery reads
/// what is really on disk. After a failed fsync the kernel may have dropped
/// the dirty pages and a retried fsync would "succeed" without writing them
/// (fsyncgate): no other reaction is safe.
pub(crate) fn fail_stop(error: &dyn std::fmt::Display) -> ! {
    tracing::error!(error = %error, "fatal storage error; stopping so recovery reads what is on disk");
    eprintln!("yak broker: fatal storage error, stopping: {error}");
    std::process::exit(FAIL_STOP_EXIT_CODE)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
}

/// Runs a broker until SIGTERM.
pub fn run(config: BrokerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let data = crate::paths::broker_data_dir(&config.data_dir, config.id);
    // The lock first, then the cluster id, and only then is anything in the
    // dir opened, recovered, truncated, moved or deleted. Held until exit.
    let _lock = crate::datadir::lock(
        &data,
        crate::datadir::BROKER_LOCK_FILE,
        &crate::paths::broker_name(config.id),
    )?;
    crate::datadir::check_record_format(&data)?;
    // A Kafka port in use is refused before any log is opened.
    let kafka = config
        .kafka
        .map(|k| crate::kafka::KafkaListener::bind(k.port).map(|l| (l, k)))
        .transpose()?;
    let connections_max = crate::fdlimit::prepare(config.connections_max);
    let zk_socket = crate::paths::zookeeper_socket(&config.run_dir);
    let cluster_id = zk_session::cluster_id_at_start(&data, &zk_socket)?;
    let replicas = Replicas::open(
        config.id,
        &data,
        config.log,
        config.fsync == FsyncPolicy::Always,
    )?;
    let socket = crate::paths::broker_socket(&config.run_dir, config.id);
    let listener = crate::transport::Listener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let stats = Arc::clone(replicas.stats());
    let connections = Arc::clone(&stats.connections);
    let broker = Arc::new(Broker {
        id: config.id,
        fsync: config.fsync,
        retention: config.retention,
        replicas,
        zk: ZkSession::new(config.id, cluster_id, zk_socket.clone(), socket.clone())
            .with_kafka_address(kafka.as_ref().map(|(l, _)| l.address().to_string())),
        fetchers: Fetchers::new(
            config.id,
            config.run_dir.clone(),
            config.fsync == FsyncPolicy::Always,
        ),
        appended: Notifier::default(),
        metadata_version: Mutex::new(None),
        isr_proposals: Mutex::new(Vec::new()),
        stats,
        peers: peers::PeerPids::default(),
    });
    {
        let b = Arc::clone(&broker);
        let socket = socket.clone();
        crate::shutdown::on_terminate(move || {
            b.replicas.flush_all();
            let _ = std::fs::remove_file(&socket);
        })?;
    }
    // The heartbeat thread only fetches metadata; another thread applies it
    // (creating a big topic's files takes a while), so heartbeats never wait.
    let latest = Arc::new(notify::Latest::default());
    let (b, slot) = (Arc::clone(&broker), Arc::clone(&latest));
    spawn("zk-session", move || b.zk.run(|m| slot.put(m)))?;
    let b = Arc::clone(&broker);
    spawn("metadata", move || loop {
        b.on_metadata(&latest.take());
    })?;
    if broker.fsync == FsyncPolicy::Always {
        let b = Arc::clone(&broker);
        spawn("flusher", move || b.flush_forever())?;
    }
    let b = Arc::clone(&broker);
    spawn("fetch-waker", move || b.wake_fetches_forever())?;
    let b = Arc::clone(&broker);
    spawn("maintenance", move || {
        let mut retention_due = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            b.maintain();
            if Instant::now() >= retention_due {
                b.apply_retention();
                retention_due = Instant::now() + Duration::from_millis(RETENTION_CHECK_INTERVAL_MS);
            }
        }
    })?;
    if let Some((listener, settings)) = kafka {
        let handler: Arc<dyn server::Handler> = Arc::clone(&broker) as Arc<dyn server::Handler>;
        listener.serve(
            crate::kafka::KafkaConfig {
                broker_id: config.id,
                zk_socket,
                auto_create_topics: settings.auto_create_topics,
                retention: config.retention,
                segment_bytes: config.log.segment_bytes,
            },
            handler,
        )?;
    }
    tracing::info!(broker = config.id, socket = %socket.display(), fsync = ?config.fsync,
        retention_bytes = ?config.retention.bytes, retention_ms = ?config.retention.ms, "broker serving");
    server::serve(listener, broker, connections, connections_max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::partition::Leadership;
    use super::*;
    use crate::limits::BATCH_BYTES_MAX;
    use crate::protocol::batch::{BatchBuilder, NewRecord};
    use crate::storage::fs::SimFs;
    use crate::storage::Log;

    const CHILD: &str = "YAK_FAIL_STOP_CHILD";
    const NAME: &str =
        "broker::tests::given_failed_fsync_when_syncing_should_fail_stop_with_its_exit_code";

    /// In the child process: a leader with fsync `always` whose next fsync
    /// fails with EIO. `Partition::sync` must not return.
    fn sync_through_a_failing_fsync() {
        let sim = SimFs::new();
        let log = Log::open_with(
            sim.shared(),
            std::path::Path::new("/data/t-0"),
            LogConfig::default(),
        )
        .expect("open");
        let p = Partition::new("t".into(), 0, 1, 1, log, true);
        let leadership = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1],
            isr: vec![1],
            partition_epoch: 0,
        };
        let _ = p.set_leadership(leadership, Instant::now());
        let _ = p.produce_values(-1, -1, -1, &[b"a"]);
        sim.fail_syncs(1);
        let returned = p.sync();
        eprintln!(
            "sync returned after a failed fsync: {:?}",
            returned.map(|r| r.1)
        );
        std::process::exit(0);
    }

    fn header_with_max_timestamp(max_timestamp_ms: i64) -> batch::BatchHeader {
        let mut b = BatchBuilder::new(-1, 0, -1, 64);
        b.push(NewRecord {
            key: None,
            value: b"a",
            timestamp_ms: max_timestamp_ms,
        });
        batch::validate(&b.finish()).expect("valid batch")
    }

    #[test]
    fn given_batch_timestamps_when_checking_should_refuse_only_those_over_an_hour_ahead() {
        let now = 1_700_000_000_000;
        let cases = [
            (now - 10 * TIMESTAMP_AHEAD_MS_MAX, true),
            (now, true),
            (now + TIMESTAMP_AHEAD_MS_MAX, true),
            (now + TIMESTAMP_AHEAD_MS_MAX + 1, false),
            (i64::MAX, false),
        ];
        for (ts, accepted) in cases {
            let result = check_timestamp(&header_with_max_timestamp(ts), now);
            assert_eq!(result.is_ok(), accepted, "timestamp {ts}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.code, ErrorCode::InvalidTimestamp);
            }
        }
    }

    #[test]
    fn given_most_partitions_with_longest_names_and_errors_when_answering_a_fetch_should_fit_one_frame(
    ) {
        let topic = "t".repeat(crate::limits::TOPIC_NAME_CHARS_MAX);
        let asked: Vec<FetchPartition> = (0..FETCH_PARTITIONS_MAX as u32)
            .map(|p| FetchPartition {
                topic: topic.clone(),
                partition: p,
                offset: u64::MAX,
                max_bytes: u32::MAX,
                leader_epoch: Some(u32::MAX),
                last_fetched_epoch: Some(u32::MAX),
            })
            .collect();
        let records_max = fetch_frame_records_max(&asked);
        assert!(
            records_max >= BATCH_BYTES_MAX,
            "the largest batch always fits: {records_max}"
        );
        let mut partitions: Vec<crate::protocol::FetchedPartition> = asked
            .iter()
            .map(|p| crate::protocol::FetchedPartition {
                topic: p.topic.clone(),
                partition: p.partition,
                error: Some(ErrorBody::new(
                    ErrorCode::NotLeader {
                        leader: Some(u32::MAX),
                        epoch: u32::MAX,
                    },
                    format!(
                        "broker {} holds no replica of {}-{}",
                        u32::MAX,
                        p.topic,
                        p.partition
                    ),
                )),
                high_watermark: u64::MAX,
                log_start_offset: u64::MAX,
                records: Vec::new(),
                diverging_epoch: Some((u32::MAX, u64::MAX)),
            })
            .collect();
        partitions[0].records = vec![0u8; records_max];
        let reply = crate::protocol::Response {
            correlation_id: u64::MAX,
            reply: Reply::Fetched { partitions },
        };
        let frame = crate::protocol::frame::encode(&reply).expect("encode");
        assert!(frame.len() - 4 <= FRAME_BYTES_MAX, "{} bytes", frame.len());
    }

    #[test]
    fn given_min_bytes_when_deciding_whether_a_fetch_is_ready_should_count_bytes_over_all_partitions(
    ) {
        let part = |records: usize, error: Option<ErrorBody>| FetchedPartition {
            topic: "t".into(),
            partition: 0,
            error,
            high_watermark: 0,
            log_start_offset: 0,
            records: vec![0; records],
            diverging_epoch: None,
        };
        let two = [part(60, None), part(40, None)];
        assert!(fetch_ready(&two, 100), "enough over both partitions");
        assert!(!fetch_ready(&two, 101), "one byte short: wait");
        assert!(fetch_ready(&[part(0, None)], 0), "0 answers at once");
        assert!(!fetch_ready(&[part(0, None)], 1), "nothing yet: wait");
        let failed = part(0, Some(ErrorBody::new(ErrorCode::UnknownTopic, "gone")));
        assert!(
            fetch_ready(&[failed], 1_000_000),
            "an error answers at once"
        );
    }

    #[test]
    fn given_failed_fsync_when_syncing_should_fail_stop_with_its_exit_code() {
        if std::env::var_os(CHILD).is_some() {
            sync_through_a_failing_fsync();
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("run child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(FAIL_STOP_EXIT_CODE), "{stderr}");
        assert!(
            stderr.contains("fatal storage error") && stderr.contains("t-0"),
            "{stderr}"
        );
    }
}
