//! The producer: batches per partition with linger, pipelines up to
//! [`IN_FLIGHT_REQUESTS_MAX`] requests per broker, retries retriable errors
//! after a metadata refresh until the delivery timeout, and counts every
//! message as acknowledged or failed.

use super::metadata::MetadataCache;
use super::partitioner::DefaultPartitioner;
use super::ClientError;
use crate::limits::{
    BATCH_BYTES_DEFAULT, BATCH_BYTES_MAX, DELIVERY_TIMEOUT_MS_DEFAULT, IN_FLIGHT_REQUESTS_MAX, LINGER_MS_DEFAULT,
    MESSAGE_BYTES_MAX_DEFAULT,
};
use crate::protocol::batch::{record_bytes, BatchBuilder, NewRecord, HEADER_BYTES};
use crate::protocol::names::validate_topic;
use crate::protocol::{Call, ErrorBody, ErrorCode, Reply};
use hdrhistogram::Histogram;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a producer behaves.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// 0: fire and forget; 1: leader wrote it; -1: every in-sync replica has it.
    pub acks: i8,
    /// How long a partial batch waits for more messages.
    pub linger: Duration,
    /// A batch is sent once it reaches this size.
    pub batch_bytes: usize,
    /// Largest single message (key + value + overhead).
    pub max_message_bytes: usize,
    /// How long a message may take to be acknowledged, retries included.
    pub delivery_timeout: Duration,
    /// Create a missing topic with the cluster defaults.
    pub create_topics: bool,
    /// Number batches so a resent one is never written twice.
    pub idempotent: bool,
    /// Record each message's ack latency (from its batch's first message to the ack).
    pub record_latency: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            linger: Duration::from_millis(LINGER_MS_DEFAULT),
            batch_bytes: BATCH_BYTES_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_MAX_DEFAULT,
            delivery_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS_DEFAULT),
            create_topics: true,
            idempotent: true,
            record_latency: false,
        }
    }
}

/// Counts of what happened to the messages sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerReport {
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages given up on.
    pub failed: u64,
    /// Batches sent (first attempts).
    pub batches: u64,
    /// The first error that failed a message.
    pub first_error: Option<String>,
}

struct OpenBatch {
    builder: BatchBuilder,
    opened: Instant,
}

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
}

/// A producer bound to one cluster.
pub struct Producer {
    cache: MetadataCache,
    config: ProducerConfig,
    partitioner: DefaultPartitioner,
    partition_counts: HashMap<String, u32>,
    open: HashMap<(String, u32), OpenBatch>,
    in_flight: HashMap<u32, VecDeque<(u64, Pending)>>,
    retries: Vec<Pending>,
    report: ProducerReport,
    producer_id: i64,
    next_sequence: HashMap<(String, u32), i32>,
    latency_us: Option<Histogram<u64>>,
    dispatched: u64,
}

/// A microsecond latency histogram: 1 µs to 10 min, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .expect("invariant: constant bounds are valid")
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Connects to the cluster at `dir`.
    pub fn connect(dir: &Path, config: ProducerConfig) -> Result<Producer, ClientError> {
        if !matches!(config.acks, -1..=1) {
            return Err(ClientError::Invalid(format!("acks must be 0, 1 or all (-1), got {}", config.acks)));
        }
        let mut cache = MetadataCache::connect(dir)?;
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
            latency_us,
            producer_id,
            next_sequence: HashMap::new(),
            cache,
            config,
            partitioner: DefaultPartitioner::default(),
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

    fn acked(&mut self, p: &Pending) {
        self.report.acked += p.records;
        if let Some(h) = self.latency_us.as_mut() {
            let us = p.opened.elapsed().as_micros() as u64;
            h.saturating_record_n(us.max(1), p.records);
        }
    }

    fn partitions_of(&mut self, topic: &str) -> Result<u32, ClientError> {
        if let Some(n) = self.partition_counts.get(topic) {
            return Ok(*n);
        }
        validate_topic(topic).map_err(|m| ClientError::Server(ErrorBody::new(ErrorCode::InvalidTopicName, m)))?;
        let meta = match self.cache.topic(topic) {
            Err(e) if e.code() == Some(&ErrorCode::UnknownTopic) && self.config.create_topics => {
                self.cache.create_topic(topic, None, None)?
            }
            other => other?,
        };
        let n = meta.partitions.len() as u32;
        self.partition_counts.insert(topic.to_string(), n);
        Ok(n)
    }

    /// Queues one message; the partition is chosen by key (or sticky).
    pub fn send(&mut self, topic: &str, key: Option<&[u8]>, value: &[u8]) -> Result<(), ClientError> {
        let partitions = self.partitions_of(topic)?;
        let partition = self.partitioner.partition(key, partitions);
        self.send_to(topic, partition, key, value)
    }

    /// Queues one message for a given partition.
    pub fn send_to(&mut self, topic: &str, partition: u32, key: Option<&[u8]>, value: &[u8]) -> Result<(), ClientError> {
        let partitions = self.partitions_of(topic)?;
        if partition >= partitions {
            return Err(ClientError::Invalid(format!("topic '{topic}' has no partition {partition}")));
        }
        let size = record_bytes(key, value);
        let max = self.config.max_message_bytes.min(BATCH_BYTES_MAX - HEADER_BYTES);
        if size > max {
            return Err(ClientError::Server(ErrorBody::new(
                ErrorCode::MessageTooLarge,
                format!("message of {size} bytes is larger than the maximum of {max} bytes"),
            )));
        }
        let slot = (topic.to_string(), partition);
        let full = self
            .open
            .get(&slot)
            .is_some_and(|b| b.builder.size_bytes() + size > self.config.batch_bytes.max(HEADER_BYTES + size));
        if full {
            self.dispatch_open(&slot)?;
            self.partitioner.on_batch_full(partition, partitions);
        }
        let cap = self.config.batch_bytes;
        let (pid, seq) = match self.producer_id {
            -1 => (-1, -1),
            pid => (pid, self.next_sequence.get(&slot).copied().unwrap_or(0)),
        };
        let batch = self
            .open
            .entry(slot)
            .or_insert_with(|| OpenBatch { builder: BatchBuilder::new(pid, 0, seq, cap), opened: Instant::now() });
        batch.builder.push(NewRecord { key, value, timestamp_ms: now_ms() });
        Ok(())
    }

    /// Sends batches whose linger has passed and retries that are due, and
    /// reads every acknowledgement that has already arrived.
    pub fn poll(&mut self) -> Result<(), ClientError> {
        let ready: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(b, _)| *b)
            .filter(|b| self.cache.broker(*b).is_ok_and(|c| c.has_data()))
            .collect();
        for broker in ready {
            while self.in_flight.get(&broker).is_some_and(|q| !q.is_empty())
                && self.cache.broker(broker).is_ok_and(|c| c.has_data())
            {
                self.read_one(broker);
            }
        }
        let now = Instant::now();
        let due: Vec<(String, u32)> =
            self.open.iter().filter(|(_, b)| now >= b.opened + self.config.linger).map(|(k, _)| k.clone()).collect();
        for slot in due {
            self.dispatch_open(&slot)?;
        }
        self.run_retries(false)
    }

    /// When the oldest open batch's linger ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|b| b.opened + self.config.linger).min()
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
            let brokers: Vec<u32> = self.in_flight.iter().filter(|(_, q)| !q.is_empty()).map(|(b, _)| *b).collect();
            for broker in brokers {
                self.read_one(broker);
            }
        }
    }

    fn dispatch_open(&mut self, slot: &(String, u32)) -> Result<(), ClientError> {
        let Some(batch) = self.open.remove(slot) else { return Ok(()) };
        let records = u64::from(batch.builder.len());
        let bytes = batch.builder.finish();
        if self.producer_id >= 0 {
            let seq = self.next_sequence.entry(slot.clone()).or_insert(0);
            *seq = seq.wrapping_add(records as i32);
        }
        let now = Instant::now();
        self.report.batches += 1;
        self.dispatched += 1;
        let pending = Pending {
            order: self.dispatched,
            opened: batch.opened,
            topic: slot.0.clone(),
            partition: slot.1,
            call: Call::Produce { topic: slot.0.clone(), partition: slot.1, acks: self.config.acks, records: bytes },
            records,
            first_sent: now,
            retry_at: now,
        };
        // Behind a batch of the same partition that waits to be retried: wait
        // with it, or the broker would see a sequence gap.
        let waiting = self.retries.iter().filter(|p| p.topic == slot.0 && p.partition == slot.1).map(|p| p.retry_at).max();
        match waiting {
            Some(at) => self.retries.push(Pending { retry_at: at, ..pending }),
            None => self.transmit(pending),
        }
        Ok(())
    }

    fn run_retries(&mut self, wait: bool) -> Result<(), ClientError> {
        if self.retries.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if wait {
            if let Some(at) = self.retries.iter().map(|p| p.retry_at).min() {
                if at > now {
                    std::thread::sleep(at - now);
                }
            }
        }
        let now = Instant::now();
        let (mut due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retries).into_iter().partition(|p| p.retry_at <= now);
        self.retries = later;
        due.sort_by_key(|p| p.order);
        if !due.is_empty() {
            // Leaders may have moved; a failed refresh is retried with the batches.
            let _ = self.cache.refresh();
        }
        for p in due {
            self.transmit(p);
        }
        Ok(())
    }

    fn fail(&mut self, p: &Pending, why: String) {
        self.report.failed += p.records;
        tracing::debug!(topic = %p.topic, partition = p.partition, records = p.records, %why, "batch failed");
        self.report.first_error.get_or_insert(why);
    }

    fn retry_or_fail(&mut self, mut p: Pending, err: ClientError) {
        let retriable = err.is_retriable() || err.code() == Some(&ErrorCode::UnknownTopic);
        if !retriable || p.first_sent.elapsed() >= self.config.delivery_timeout {
            self.fail(&p, err.to_string());
            return;
        }
        p.retry_at = Instant::now() + Duration::from_millis(50);
        self.retries.push(p);
    }

    fn transmit(&mut self, p: Pending) {
        let leader = match self.cache.leader(&p.topic, p.partition) {
            Some(l) => l,
            None => {
                let err = ClientError::Server(ErrorBody::new(
                    ErrorCode::NotLeader { leader: None, epoch: 0 },
                    format!("{}-{} has no leader", p.topic, p.partition),
                ));
                return self.retry_or_fail(p, err);
            }
        };
        while self.in_flight.get(&leader).is_some_and(|q| q.len() >= IN_FLIGHT_REQUESTS_MAX) {
            self.read_one(leader);
        }
        let sent = self.cache.broker(leader).and_then(|c| {
            let id = c.send(&p.call)?;
            c.flush()?;
            Ok(id)
        });
        match sent {
            Ok(_) if self.config.acks == 0 => self.acked(&p),
            Ok(id) => self.in_flight.entry(leader).or_default().push_back((id, p)),
            Err(e) => {
                self.connection_lost(leader);
                self.retry_or_fail(p, e);
            }
        }
    }

    /// Every request in flight to `broker` is retried: the connection is gone.
    fn connection_lost(&mut self, broker: u32) {
        self.cache.forget_broker(broker);
        let lost: Vec<_> = self.in_flight.remove(&broker).unwrap_or_default().into_iter().collect();
        for (_, p) in lost {
            let err = ClientError::Connection { path: Default::default(), reason: "connection lost".into() };
            self.retry_or_fail(p, err);
        }
    }

    fn read_one(&mut self, broker: u32) {
        let response = match self.cache.broker(broker).and_then(|c| c.recv()) {
            Ok(r) => r,
            Err(_) => return self.connection_lost(broker),
        };
        let Some(queue) = self.in_flight.get_mut(&broker) else { return };
        let Some(pos) = queue.iter().position(|(id, _)| *id == response.correlation_id) else { return };
        let Some((_, p)) = queue.remove(pos) else { return };
        match response.reply {
            Reply::Produced { .. } => self.acked(&p),
            Reply::Error(e) => self.retry_or_fail(p, ClientError::Server(e)),
            other => self.fail(&p, format!("unexpected reply {other:?}")),
        }
    }
}
