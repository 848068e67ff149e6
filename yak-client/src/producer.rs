//! The producer: batches per partition with linger, pipelines up to
//! [`IN_FLIGHT_REQUESTS_MAX`] requests per broker, retries retriable errors
//! after a metadata refresh until the delivery timeout, and counts every
//! message as acknowledged or failed.
//!
//! The partition of a message comes from a [`Partitioner`]: the built-in
//! default, or a plugin set with [`Producer::set_partitioner`]. The producer
//! counts unacknowledged records per partition (queued, in flight or waiting
//! for a retry) and passes those counts to the strategy. A strategy that
//! fails (a plugin that panicked) or answers a partition out of range never
//! stops the producer: that message is placed by the built-in default and the
//! fallback is counted in [`ProducerReport::partitioner_fallbacks`].
//!
//! The producer never blocks on one broker: it waits for answers from all
//! of them at once, a little at a time. While a request is unanswered for
//! [`PRODUCER_STALE_REQUEST_MS`], it refreshes metadata every
//! [`PRODUCER_METADATA_REFRESH_MS`]; once a partition's leader moved on (a
//! paused or cut-off leader was replaced), it drops the connection to the
//! old leader and resends what was in flight there to the new one at once.
//! Idempotence keeps a resent batch single. Retries back off exponentially
//! with jitter ([`Backoff`]).
//!
//! After the leader refuses a batch for good (a full disk), the
//! partition's later batches would meet a sequence gap and be refused
//! (`OutOfOrderSequence`) until their own delivery timeout. Instead, once
//! nothing of that partition is in flight and every batch of it still
//! waiting is known not to be in the log (refused by the sequence check, or
//! never sent), the producer takes a fresh producer id from ZooKeeper for
//! that partition and renumbers those batches from sequence 0, in order
//! (see ARCHITECTURE.md, "Producer sequence gaps").

mod config;
mod retries;
mod wire;

pub use config::{latency_histogram, AckObserver, BatchAck, ProducerConfig, ProducerReport};

use super::backoff::Backoff;
use super::metadata::MetadataCache;
use super::partitioner::{DefaultPartitioner, Message, Partitioner};
use super::ClientError;
use hdrhistogram::Histogram;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use yak_protocol::batch::{
    next_sequence, record_bytes, restamp_producer, BatchBuilder, NewRecord, HEADER_BYTES,
};
use yak_protocol::limits::{BATCH_BYTES_MAX, IN_FLIGHT_REQUESTS_MAX, PRODUCER_ANSWER_WAIT_MS};
use yak_protocol::names::validate_topic;
use yak_protocol::{Acks, Call, ErrorBody, ErrorCode, Reply};

struct OpenBatch {
    builder: BatchBuilder,
    opened: Instant,
    /// The producer id and base sequence the builder was started with.
    stamp: (i64, i32),
}

type Slot = (String, u32);

struct Pending {
    /// Dispatch order: retries go out in it, so a partition's batches keep their sequence order.
    order: u64,
    opened: Instant,
    topic: String,
    partition: u32,
    call: Call,
    records: u64,
    first_sent: Instant,
    retry_at: Instant,
    /// Why the first attempt failed, if it did: reported with the last
    /// error when the batch finally fails (the first is often the telling one).
    first_error: Option<String>,
    /// Retries so far (the backoff grows with it).
    attempts: u32,
    /// The broker and leader epoch of the last send, and when it went out.
    sent: Option<(u32, u32, Instant)>,
    /// Known not to be in the log: never sent with its current numbering,
    /// or refused by the leader's sequence check. Only such a batch may be
    /// renumbered under a fresh producer id.
    unwritten: bool,
}

impl Pending {
    fn slot_is(&self, slot: &Slot) -> bool {
        self.topic == slot.0 && self.partition == slot.1
    }
}

/// A producer bound to one cluster.
pub struct Producer {
    cache: MetadataCache,
    config: ProducerConfig,
    /// `config.acks`, checked once at connect.
    acks: Acks,
    partitioner: Box<dyn Partitioner>,
    fallback: DefaultPartitioner,
    /// Unacknowledged records per partition of each topic.
    unacked: HashMap<String, Vec<u64>>,
    ack_observer: Option<AckObserver>,
    partition_counts: HashMap<String, u32>,
    open: HashMap<(String, u32), OpenBatch>,
    in_flight: HashMap<u32, VecDeque<(u64, Pending)>>,
    retries: Vec<Pending>,
    report: ProducerReport,
    producer_id: i64,
    /// Partitions that took a fresh producer id after a failed batch.
    partition_ids: HashMap<Slot, i64>,
    /// Partitions with a batch that failed for good: they take a fresh
    /// producer id once their waiting batches are known unwritten.
    gaps: BTreeSet<Slot>,
    /// When to ask ZooKeeper for a fresh producer id again after it failed.
    gap_retry_at: Instant,
    next_sequence: HashMap<(String, u32), i32>,
    backoff: Backoff,
    last_refresh: Instant,
    latency_us: Option<Histogram<u64>>,
    dispatched: u64,
    slot_scratch: (String, u32),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Connects to the cluster at `dir`.
    pub fn connect(dir: &Path, config: ProducerConfig) -> Result<Producer, ClientError> {
        let acks = Acks::try_from(config.acks).map_err(|e| ClientError::Invalid(e.to_string()))?;
        // A ZooKeeper that is restarting is waited for, as long as a message may wait.
        let mut cache = MetadataCache::connect_waiting(dir, config.delivery_timeout)?;
        cache.refresh()?;
        let producer_id = if config.idempotent {
            match cache.zookeeper_call(&Call::InitProducerId)? {
                Reply::ProducerId { producer_id } => producer_id,
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        } else {
            -1
        };
        let latency_us = config.record_latency.then(latency_histogram);
        Ok(Producer {
            dispatched: 0,
            slot_scratch: (String::new(), 0),
            latency_us,
            producer_id,
            partition_ids: HashMap::new(),
            gaps: BTreeSet::new(),
            gap_retry_at: Instant::now(),
            next_sequence: HashMap::new(),
            backoff: Backoff::default(),
            last_refresh: Instant::now(),
            cache,
            config,
            acks,
            partitioner: Box::new(DefaultPartitioner::default()),
            fallback: DefaultPartitioner::default(),
            unacked: HashMap::new(),
            ack_observer: None,
            partition_counts: HashMap::new(),
            open: HashMap::new(),
            in_flight: HashMap::new(),
            retries: Vec::new(),
            report: ProducerReport::default(),
        })
    }

    /// What happened so far.
    pub fn report(&self) -> &ProducerReport {
        &self.report
    }

    /// Ack latencies in microseconds, one count per message, if recorded.
    pub fn ack_latency_us(&self) -> Option<&Histogram<u64>> {
        self.latency_us.as_ref()
    }

    /// Places messages with `partitioner` from now on.
    pub fn set_partitioner(&mut self, partitioner: Box<dyn Partitioner>) {
        self.partitioner = partitioner;
    }

    /// The name of the strategy placing messages.
    pub fn partitioner_name(&self) -> &str {
        self.partitioner.name()
    }

    /// Calls `observer` for every acknowledged batch (acks 1 or all).
    pub fn set_ack_observer(&mut self, observer: AckObserver) {
        self.ack_observer = Some(observer);
    }

    /// Unacknowledged records per partition of `topic` (empty if none sent yet).
    pub fn in_flight(&self, topic: &str) -> &[u64] {
        self.unacked.get(topic).map_or(&[], Vec::as_slice)
    }

    fn partitions_of(&mut self, topic: &str) -> Result<u32, ClientError> {
        if let Some(n) = self.partition_counts.get(topic) {
            return Ok(*n);
        }
        validate_topic(topic)
            .map_err(|m| ClientError::Server(ErrorBody::new(ErrorCode::InvalidTopicName, m)))?;
        let meta = match self.cache.topic(topic) {
            Err(e) if e.code() == Some(&ErrorCode::UnknownTopic) && self.config.create_topics => {
                self.cache.create_topic(topic, None, None)?
            }
            other => other?,
        };
        let n = meta.partitions.len() as u32;
        self.partition_counts.insert(topic.to_string(), n);
        self.unacked
            .entry(topic.to_string())
            .or_default()
            .resize(n as usize, 0);
        Ok(n)
    }

    /// Queues one message; the partitioner picks its partition.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), ClientError> {
        let partitions = self.partitions_of(topic)?;
        let partition = self.choose_partition(topic, key, value.len(), partitions);
        self.send_to(topic, partition, key, value)
    }

    /// Asks the partitioner; on an error or an out-of-range answer, counts a
    /// fallback and asks the built-in default.
    fn choose_partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value_len: usize,
        partitions: u32,
    ) -> u32 {
        let in_flight = self.unacked.get(topic).map_or(&[][..], Vec::as_slice);
        debug_assert_eq!(
            in_flight.len(),
            partitions as usize,
            "invariant: unacked sized by partitions_of"
        );
        let msg = Message {
            key,
            value_len,
            in_flight,
        };
        let why = match self.partitioner.partition(topic, &msg) {
            Ok(p) if p < partitions => return p,
            Ok(p) => format!(
                "partitioner '{}' returned partition {p} for topic '{topic}', which has {partitions} partitions",
                self.partitioner.name()
            ),
            Err(e) => e.to_string(),
        };
        if self.report.partitioner_fallbacks == 0 {
            tracing::warn!(topic, %why, "partitioner failed; the built-in default places this message");
        }
        self.report.partitioner_fallbacks += 1;
        self.report.partitioner_error.get_or_insert(why);
        self.fallback.partition(key, partitions)
    }

    /// Queues one message for a given partition.
    pub fn send_to(
        &mut self,
        topic: &str,
        partition: u32,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), ClientError> {
        let partitions = self.partitions_of(topic)?;
        if partition >= partitions {
            return Err(ClientError::Invalid(format!(
                "topic '{topic}' has no partition {partition}"
            )));
        }
        let size = record_bytes(key, value);
        let max = self
            .config
            .max_message_bytes
            .min(BATCH_BYTES_MAX - HEADER_BYTES);
        if size > max {
            return Err(ClientError::Server(ErrorBody::new(
                ErrorCode::MessageTooLarge,
                format!("message of {size} bytes is larger than the maximum of {max} bytes"),
            )));
        }
        // The slot key is a reused buffer: no allocation per message.
        let mut slot = std::mem::take(&mut self.slot_scratch);
        slot.0.clear();
        slot.0.push_str(topic);
        slot.1 = partition;
        let full = self.open.get(&slot).is_some_and(|b| {
            b.builder.size_bytes() + size > self.config.batch_bytes.max(HEADER_BYTES + size)
        });
        if full {
            self.dispatch_open(&slot)?;
            self.partitioner.on_batch_full(topic, partition, partitions);
            self.fallback.on_batch_full(partition, partitions);
        }
        if !self.open.contains_key(&slot) {
            let stamp = self.stamp_for(&slot);
            let builder = BatchBuilder::new(stamp.0, 0, stamp.1, self.config.batch_bytes)
                .compressed(self.config.compression);
            self.open.insert(
                slot.clone(),
                OpenBatch {
                    builder,
                    opened: Instant::now(),
                    stamp,
                },
            );
        }
        let batch = self.open.get_mut(&slot);
        self.slot_scratch = slot;
        let Some(batch) = batch else {
            return Err(ClientError::Invalid(
                "invariant: the open batch was just inserted".into(),
            ));
        };
        batch.builder.push(NewRecord {
            key,
            value,
            timestamp_ms: now_ms(),
        });
        if let Some(n) = self
            .unacked
            .get_mut(topic)
            .and_then(|v| v.get_mut(partition as usize))
        {
            *n += 1;
        }
        Ok(())
    }

    /// The producer id and base sequence the next batch of `slot` gets.
    fn stamp_for(&self, slot: &Slot) -> (i64, i32) {
        match self.producer_id {
            -1 => (-1, -1),
            id => (
                self.partition_ids.get(slot).copied().unwrap_or(id),
                self.next_sequence.get(slot).copied().unwrap_or(0),
            ),
        }
    }

    /// Reads the acknowledgements that have arrived, sends batches whose
    /// linger has passed and retries that are due. Never waits for a broker.
    pub fn poll(&mut self) -> Result<(), ClientError> {
        self.read_ready();
        self.check_stale();
        let now = Instant::now();
        // A lingered batch whose leader already has the most requests in
        // flight stays open and keeps filling (as Kafka's accumulator does)
        // instead of blocking the caller.
        let due: Vec<(String, u32)> = self
            .open
            .iter()
            .filter(|(_, b)| now >= b.opened + self.config.linger)
            .map(|(k, _)| k)
            .filter(|(t, p)| {
                self.cache.leader(t, *p).is_none_or(|l| {
                    self.in_flight
                        .get(&l)
                        .is_none_or(|q| q.len() < IN_FLIGHT_REQUESTS_MAX)
                })
            })
            .cloned()
            .collect();
        for slot in due {
            self.dispatch_open(&slot)?;
        }
        self.run_retries(false)
    }

    /// When the oldest open batch's linger ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|b| b.opened + self.config.linger)
            .min()
    }

    /// Sends everything and waits until every message is acknowledged or failed.
    pub fn flush(&mut self) -> Result<ProducerReport, ClientError> {
        let slots: Vec<(String, u32)> = self.open.keys().cloned().collect();
        for slot in slots {
            self.dispatch_open(&slot)?;
        }
        loop {
            let idle = self.in_flight.values().all(VecDeque::is_empty);
            if idle && self.retries.is_empty() {
                return Ok(self.report.clone());
            }
            // Sleep for a retry's backoff only when no answer is awaited.
            self.run_retries(idle)?;
            self.await_answers(None);
        }
    }

    fn dispatch_open(&mut self, slot: &(String, u32)) -> Result<(), ClientError> {
        let Some(batch) = self.open.remove(slot) else {
            return Ok(());
        };
        let batch_records = batch.builder.len();
        let records = u64::from(batch_records);
        let mut bytes = batch.builder.finish();
        if self.producer_id >= 0 {
            let stamp = self.stamp_for(slot);
            if stamp != batch.stamp {
                // The partition took a fresh producer id while this batch filled.
                restamp_producer(&mut bytes, stamp.0, stamp.1);
            }
            // After i32::MAX comes 0, as in Kafka; the broker expects the same.
            self.next_sequence
                .insert(slot.clone(), next_sequence(stamp.1, batch_records));
        }
        let now = Instant::now();
        self.report.batches += 1;
        self.dispatched += 1;
        let pending = Pending {
            order: self.dispatched,
            opened: batch.opened,
            topic: slot.0.clone(),
            partition: slot.1,
            call: Call::Produce {
                topic: slot.0.clone(),
                partition: slot.1,
                acks: self.acks.into(),
                records: bytes,
            },
            records,
            first_sent: now,
            retry_at: now,
            first_error: None,
            attempts: 0,
            sent: None,
            unwritten: true,
        };
        // Behind a batch of the same partition that waits to be retried: wait
        // with it, or the broker would see a sequence gap. A partition that
        // waits for a fresh producer id holds its new batches too.
        let waiting = self
            .retries
            .iter()
            .filter(|p| p.slot_is(slot))
            .map(|p| p.retry_at)
            .max();
        match waiting {
            Some(at) => self.retries.push(Pending {
                retry_at: at,
                ..pending
            }),
            None if self.gaps.contains(slot) => self.retries.push(pending),
            None => self.transmit(pending),
        }
        Ok(())
    }

    /// The records of `p` are no longer unacknowledged.
    fn settle(&mut self, p: &Pending) {
        if let Some(n) = self
            .unacked
            .get_mut(&p.topic)
            .and_then(|v| v.get_mut(p.partition as usize))
        {
            *n = n.saturating_sub(p.records);
        }
    }

    fn acked(&mut self, p: &Pending) {
        self.settle(p);
        self.report.acked += p.records;
        if self.acks == Acks::None {
            return;
        }
        if let Some(h) = self.latency_us.as_mut() {
            let us = p.opened.elapsed().as_micros() as u64;
            h.saturating_record_n(us.max(1), p.records);
        }
        if let Some(observe) = self.ack_observer.as_mut() {
            observe(
                &p.topic,
                BatchAck {
                    partition: p.partition,
                    records: p.records,
                    latency: p.first_sent.elapsed(),
                },
            );
        }
    }

    fn fail(&mut self, p: &Pending, why: String) {
        self.settle(p);

        self.report.failed += p.records;
        tracing::debug!(topic = %p.topic, partition = p.partition, records = p.records, %why, "batch failed");
        self.report.first_error.get_or_insert(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_cluster::FakeCluster;
    use yak_protocol::batch::Compression;

    #[test]
    fn given_batch_refused_for_a_full_disk_when_later_batches_meet_the_gap_should_renumber_them_and_finish_fast(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cluster = FakeCluster::start(dir.path());
        // The second batch of the first producer id meets a full disk.
        cluster.broker.lock().expect("lock").fail_once = Some((1, 1));
        let config = ProducerConfig {
            linger: Duration::ZERO,
            batch_bytes: 1,
            delivery_timeout: Duration::from_secs(20),
            ..ProducerConfig::default()
        };
        let mut producer = Producer::connect(dir.path(), config).expect("connect");
        let started = Instant::now();
        for v in ["m0", "m1", "m2", "m3"] {
            // A one-byte batch size: every message is its own batch, sent at once.
            producer.send_to("t", 0, None, v.as_bytes()).expect("send");
        }
        let report = producer.flush().expect("flush");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no wait for the delivery timeout: {:?}",
            started.elapsed()
        );
        assert_eq!((report.acked, report.failed), (3, 1), "{report:?}");
        assert!(
            report
                .first_error
                .as_deref()
                .is_some_and(|e| e.contains("No space left")),
            "{report:?}"
        );
        let broker = cluster.broker.lock().expect("lock");
        let values: Vec<&[u8]> = broker
            .log
            .iter()
            .flat_map(|(_, _, vs)| vs.iter().map(Vec::as_slice))
            .collect();
        assert_eq!(
            values,
            [&b"m0"[..], b"m2", b"m3"],
            "the rest written once, in order"
        );
        let stamps: Vec<(i64, i32)> = broker
            .log
            .iter()
            .map(|(pid, seq, _)| (*pid, *seq))
            .collect();
        assert_eq!(
            stamps,
            [(1, 0), (2, 0), (2, 1)],
            "after the gap: a fresh producer id from sequence 0"
        );
    }

    #[test]
    fn given_acks_outside_kafka_values_when_connecting_should_refuse_before_any_io() {
        let dir = tempfile::tempdir().expect("tempdir");
        for acks in [2i8, -2, 100] {
            let config = ProducerConfig {
                acks,
                ..ProducerConfig::default()
            };
            let err = Producer::connect(dir.path(), config)
                .err()
                .expect("refused");
            assert!(
                matches!(&err, ClientError::Invalid(m) if m == &format!("acks must be 0, 1 or -1 (all), got {acks}")),
                "{err}"
            );
        }
    }

    #[test]
    fn given_each_codec_when_producing_should_send_batches_the_broker_checks_and_reads_back() {
        for codec in Compression::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let cluster = FakeCluster::start(dir.path());
            let config = ProducerConfig {
                linger: Duration::from_millis(50),
                compression: codec,
                ..ProducerConfig::default()
            };
            let mut producer = Producer::connect(dir.path(), config).expect("connect");
            let sent: Vec<String> = (0..200).map(|i| format!("{codec} message {i}")).collect();
            for v in &sent {
                producer
                    .send_to("t", 0, Some(b"k"), v.as_bytes())
                    .expect("send");
            }
            let report = producer.flush().expect("flush");
            assert_eq!(
                (report.acked, report.failed),
                (200, 0),
                "{codec}: {report:?}"
            );
            let broker = cluster.broker.lock().expect("lock");
            let got: Vec<&[u8]> = broker
                .log
                .iter()
                .flat_map(|(_, _, vs)| vs.iter().map(Vec::as_slice))
                .collect();
            let want: Vec<&[u8]> = sent.iter().map(String::as_bytes).collect();
            assert_eq!(got, want, "{codec}");
        }
    }
}
