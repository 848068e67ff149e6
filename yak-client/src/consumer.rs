//! The consumer: reads the partitions of one or more topics (all, or one
//! partition from a given offset) from their leaders, one long-polling
//! fetch per broker per round,
//! sent to all brokers before any answer is read. Positions only move
//! forward; a leader change is followed after a metadata refresh.

use super::metadata::MetadataCache;
use super::ClientError;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use yak_protocol::backoff::Backoff;
use yak_protocol::batch::{self, Record};
use yak_protocol::limits::{
    CONSUMER_FETCH_ANSWER_SLACK_MS, CONSUMER_FETCH_READ_SLACK_MS,
    CONSUMER_LIST_OFFSETS_RETRY_MS_MAX, FETCH_MIN_BYTES_DEFAULT, FETCH_PARTITION_BYTES_DEFAULT,
    FETCH_WAIT_MS_MAX,
};
use yak_protocol::{
    Call, ErrorBody, ErrorCode, FetchPartition, FetchedPartition, OffsetSpec, Reply,
};

/// Where a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The first offset still in each partition.
    Earliest,
    /// The end of each partition at subscribe time: only new messages.
    Latest,
    /// Each partition from its first record at or after a timestamp (ms
    /// since the Unix epoch), or from its end when none is that new.
    Timestamp {
        /// Milliseconds since the Unix epoch.
        timestamp_ms: i64,
    },
    /// One partition, from an offset.
    Offset {
        /// Partition index.
        partition: u32,
        /// First offset to read.
        offset: u64,
    },
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Most bytes per partition per fetch.
    pub partition_max_bytes: u32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            partition_max_bytes: FETCH_PARTITION_BYTES_DEFAULT,
        }
    }
}

/// A message as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Offset in the partition.
    pub offset: u64,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value; `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Producer timestamp, ms since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A topic and a partition index.
pub type TopicPartition = (String, u32);

/// Reads one or more topics.
pub struct Consumer {
    cache: MetadataCache,
    /// The topics read, the first as named at subscribe time.
    topics: Vec<String>,
    config: ConsumerConfig,
    positions: BTreeMap<TopicPartition, u64>,
    /// One outstanding fetch per leader: broker id → correlation id.
    in_flight: BTreeMap<u32, u64>,
    /// Waits between metadata refreshes after failed fetches.
    backoff: Backoff,
    /// Polls in a row that ended in a refresh (0 after a clean one).
    refreshes_in_a_row: u32,
}

impl Consumer {
    /// Subscribes to `topic`; fails if it does not exist, or with
    /// `OffsetOutOfRange` when an explicit offset is below the partition's
    /// earliest offset (retention deleted it). Once running, a position that
    /// falls below the earliest offset skips ahead to it, with a warning.
    pub fn subscribe(
        dir: &Path,
        topic: &str,
        start: StartFrom,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        Consumer::subscribe_all(dir, &[topic.to_string()], start, config)
    }

    /// Subscribes to every partition of each of `topics` (at least one),
    /// as [`Consumer::subscribe`]; `StartFrom::Offset` names a partition
    /// of the first topic and needs exactly one.
    pub fn subscribe_all(
        dir: &Path,
        topics: &[String],
        start: StartFrom,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        let mut consumer = Consumer::unassigned(dir, topics, config)?;
        if matches!(start, StartFrom::Offset { .. }) && consumer.topics.len() != 1 {
            return Err(ClientError::Invalid(
                "a start offset names one partition of one topic".into(),
            ));
        }
        for topic in consumer.topics.clone() {
            let count = consumer.cache.topic(&topic)?.partitions.len() as u32;
            let partitions: Vec<u32> = match start {
                StartFrom::Offset { partition, .. } => {
                    if partition >= count {
                        return Err(ClientError::Invalid(format!(
                            "topic '{topic}' has {count} partitions; there is no partition {partition}"
                        )));
                    }
                    vec![partition]
                }
                _ => (0..count).collect(),
            };
            for p in partitions {
                let offset = match start {
                    StartFrom::Offset { offset, .. } => {
                        consumer.check_retained(&topic, p, offset)?
                    }
                    StartFrom::Earliest => consumer.list_offset(&topic, p, OffsetSpec::Earliest)?,
                    StartFrom::Latest => consumer.list_offset(&topic, p, OffsetSpec::Latest)?,
                    StartFrom::Timestamp { timestamp_ms } => {
                        consumer.list_offset(&topic, p, OffsetSpec::Timestamp { timestamp_ms })?
                    }
                };
                consumer.positions.insert((topic.clone(), p), offset);
            }
        }
        Ok(consumer)
    }

    /// A consumer of `topics` (at least one; duplicates dropped) that reads
    /// nothing until [`Consumer::assign`] gives it partitions (a group
    /// member); fails if a topic does not exist.
    pub fn unassigned(
        dir: &Path,
        topics: &[String],
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        let mut unique: Vec<String> = Vec::with_capacity(topics.len());
        for t in topics {
            if !unique.contains(t) {
                unique.push(t.clone());
            }
        }
        if unique.is_empty() {
            return Err(ClientError::Invalid("no topic to read".into()));
        }
        let mut cache = MetadataCache::connect(dir)?;
        cache.refresh()?;
        for t in &unique {
            cache.topic(t)?;
        }
        Ok(Consumer::reading_nothing(cache, unique, config))
    }

    fn reading_nothing(
        cache: MetadataCache,
        topics: Vec<String>,
        config: ConsumerConfig,
    ) -> Consumer {
        Consumer {
            cache,
            topics,
            config,
            positions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            backoff: Backoff::default(),
            refreshes_in_a_row: 0,
        }
    }

    /// Replaces the partitions read, each from the position given.
    pub fn assign(&mut self, positions: BTreeMap<TopicPartition, u64>) {
        self.positions = positions;
        // A fetch still out was for the old positions: its answer, when it
        // comes, is skipped by correlation id instead of being read as new data.
        self.in_flight.clear();
    }

    /// The first topic read.
    pub fn topic(&self) -> &str {
        self.topics.first().map_or("", String::as_str)
    }

    /// Every topic read.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The metadata cache, for calls to ZooKeeper.
    pub fn cache(&mut self) -> &mut MetadataCache {
        &mut self.cache
    }

    /// The next offset to read per topic-partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, u64> {
        &self.positions
    }

    /// `offset` itself, or `OffsetOutOfRange` when it is below the earliest offset.
    fn check_retained(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64, ClientError> {
        let earliest = self.list_offset(topic, partition, OffsetSpec::Earliest)?;
        if offset >= earliest {
            return Ok(offset);
        }
        let latest = self.list_offset(topic, partition, OffsetSpec::Latest)?;
        Err(ClientError::Server(ErrorBody::new(
            ErrorCode::OffsetOutOfRange { log_start_offset: earliest, log_end_offset: latest },
            format!(
                "offset {offset} of {topic}-{partition} is below its earliest offset {earliest}: older messages were deleted by retention"
            ),
        )))
    }

    /// The earliest or latest (high watermark) offset of a partition, from
    /// its leader; by timestamp, the first record at or after it, or the
    /// latest offset when none is that new (where a consumer seeking by
    /// time starts).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, ClientError> {
        let mut last_err = None;
        let deadline = Instant::now() + Duration::from_millis(CONSUMER_LIST_OFFSETS_RETRY_MS_MAX);
        for attempt in 0.. {
            if attempt > 0 {
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(self.backoff.delay(attempt - 1));
                self.cache.refresh()?;
            }
            let Some(leader) = self.cache.leader(topic, partition) else {
                continue;
            };
            let call = Call::ListOffsets {
                topic: topic.to_string(),
                partition,
                spec,
            };
            match self.cache.broker(leader).and_then(|c| c.call(&call)) {
                Ok(Reply::Offset { offset }) => return Ok(offset),
                Ok(Reply::TimestampOffset { found: Some(found) }) => return Ok(found.offset),
                Ok(Reply::TimestampOffset { found: None }) => {
                    return self.list_offset(topic, partition, OffsetSpec::Latest)
                }
                Ok(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
                Err(e) if e.is_retriable() => {
                    self.cache.forget_broker(leader);
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| ClientError::Invalid(format!("{topic}-{partition} has no leader"))))
    }

    /// One round of fetches: waits up to `max_wait` for data; returns what came.
    pub fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        let mut out = Vec::new();
        self.poll_topics(max_wait, &mut |topic, partition, r| {
            out.push(ConsumedRecord {
                topic: topic.to_string(),
                partition,
                offset: r.offset,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                timestamp_ms: r.timestamp_ms,
            });
        })?;
        Ok(out)
    }

    /// Like [`Consumer::poll`], but lends each record to `visit` instead of
    /// copying it: no allocation per record.
    pub fn poll_each(
        &mut self,
        max_wait: Duration,
        visit: &mut dyn FnMut(u32, &Record<'_>),
    ) -> Result<usize, ClientError> {
        self.poll_topics(max_wait, &mut |_, partition, r| visit(partition, r))
    }

    /// Like [`Consumer::poll_each`], naming each record's topic too.
    pub fn poll_topics(
        &mut self,
        max_wait: Duration,
        visit: &mut dyn FnMut(&str, u32, &Record<'_>),
    ) -> Result<usize, ClientError> {
        let wait_ms = (max_wait.as_millis() as u64).min(FETCH_WAIT_MS_MAX);
        let cache = &self.cache;
        self.in_flight
            .retain(|leader, _| cache.is_connected(*leader));
        let mut by_leader: BTreeMap<u32, Vec<FetchPartition>> = BTreeMap::new();
        let mut leaderless = false;
        for ((topic, partition), &offset) in &self.positions {
            let partition = *partition;
            let placement = self
                .cache
                .partition(topic, partition)
                .and_then(|p| Some((p.leader?, p.leader_epoch)));
            match placement {
                Some((leader, _)) if self.in_flight.contains_key(&leader) => {}
                Some((leader, epoch)) => {
                    by_leader.entry(leader).or_default().push(FetchPartition {
                        topic: topic.clone(),
                        partition,
                        offset,
                        max_bytes: self.config.partition_max_bytes,
                        leader_epoch: Some(epoch),
                        last_fetched_epoch: None,
                    })
                }
                None => leaderless = true,
            }
        }
        let mut refresh = leaderless;
        for (leader, partitions) in by_leader {
            let call = Call::Fetch {
                replica_id: None,
                max_wait_ms: wait_ms,
                min_bytes: FETCH_MIN_BYTES_DEFAULT,
                partitions,
            };
            let res = self.cache.broker(leader).and_then(|c| {
                c.set_read_timeout(Duration::from_millis(
                    wait_ms + CONSUMER_FETCH_READ_SLACK_MS,
                ))?;
                let id = c.send(&call)?;
                c.flush()?;
                Ok(id)
            });
            match res {
                Ok(id) => {
                    self.in_flight.insert(leader, id);
                }
                Err(_) => {
                    self.cache.forget_broker(leader);
                    refresh = true;
                }
            }
        }
        // Answers are taken in the order they arrive: a leader with data is
        // never kept waiting behind one that is long-polling.
        let leaders: Vec<u32> = self.in_flight.keys().copied().collect();
        let ready = self.cache.wait_readable(
            &leaders,
            Duration::from_millis(wait_ms + CONSUMER_FETCH_ANSWER_SLACK_MS),
        );
        let mut count = 0;
        for leader in ready {
            let Some(id) = self.in_flight.remove(&leader) else {
                continue;
            };
            match self.receive(leader, id) {
                Ok(parts) => {
                    for p in parts {
                        refresh |= self.absorb(p, &mut count, visit)?;
                    }
                }
                Err(_) => {
                    self.cache.forget_broker(leader);
                    refresh = true;
                }
            }
        }
        if refresh {
            // A leader moved or went away: back off (growing while it
            // lasts) before asking ZooKeeper again.
            std::thread::sleep(self.backoff.delay(self.refreshes_in_a_row));
            self.refreshes_in_a_row = self.refreshes_in_a_row.saturating_add(1);
            self.cache.refresh()?;
            for t in &self.topics {
                self.cache.topic(t)?;
            }
        } else {
            self.refreshes_in_a_row = 0;
        }
        Ok(count)
    }

    fn receive(&mut self, leader: u32, id: u64) -> Result<Vec<FetchedPartition>, ClientError> {
        let conn = self.cache.broker(leader)?;
        loop {
            let r = conn.recv()?;
            if r.correlation_id != id {
                continue;
            }
            return match r.reply {
                Reply::Fetched { partitions } => Ok(partitions),
                Reply::Error(e) => Err(ClientError::Server(e)),
                other => Err(ClientError::Unexpected(format!("{other:?}"))),
            };
        }
    }

    /// Takes one partition's answer; returns true when metadata should be refreshed.
    fn absorb(
        &mut self,
        p: FetchedPartition,
        count: &mut usize,
        visit: &mut dyn FnMut(&str, u32, &Record<'_>),
    ) -> Result<bool, ClientError> {
        let key = (p.topic, p.partition);
        let Some(position) = self.positions.get(&key).copied() else {
            return Ok(false);
        };
        if let Some(err) = p.error {
            return match err.code {
                ErrorCode::OffsetOutOfRange {
                    log_start_offset, ..
                } if position < log_start_offset => {
                    tracing::warn!(
                        topic = %key.0,
                        partition = key.1,
                        position,
                        log_start_offset,
                        "position below log start; skipping ahead"
                    );
                    self.positions.insert(key, log_start_offset);
                    Ok(false)
                }
                ErrorCode::UnknownTopic => Err(ClientError::Server(err)),
                code if code.is_retriable() || code == ErrorCode::UnknownPartition => Ok(true),
                _ => Err(ClientError::Server(err)),
            };
        }
        let mut next = position;
        let (topic, partition) = (key.0.as_str(), key.1);
        let corrupt = |e| ClientError::Invalid(format!("{topic}-{partition}: {e}"));
        for item in batch::split(&p.records) {
            let (header, bytes) = item.map_err(corrupt)?;
            if header.last_offset() < next {
                continue;
            }
            // Decompresses a compressed batch (once, into one buffer).
            let records = batch::decode_validated(&header, bytes).map_err(corrupt)?;
            for r in records.iter() {
                let r = r.map_err(corrupt)?;
                if r.offset < next || r.offset >= p.high_watermark {
                    continue;
                }
                next = r.offset + 1;
                *count += 1;
                visit(topic, partition, &r);
            }
        }
        debug_assert!(next >= position, "positions only move forward");
        self.positions.insert(key, next);
        Ok(false)
    }
}
