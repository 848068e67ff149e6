//! The group consumer: a [`Consumer`] whose partitions, of one or more
//! subscribed topics, come from the group coordinator (in ZooKeeper). It joins, heartbeats from a background
//! thread ([`Heartbeat`], Kafka's KIP-62: a caller busy between polls keeps
//! its partitions; one that does not poll within the max poll interval
//! leaves the group and rejoins at its next poll), follows rebalances
//! (commit, give up every partition, rejoin, start each
//! new partition at the group's committed offset, else at the reset
//! policy), and commits what the caller acknowledged as processed: every
//! commit interval, before giving partitions up, and on [`GroupConsumer::close`].
//! That is at-least-once: a member killed between processing and its next
//! commit leaves at most one commit interval of messages to be read again.

use super::consumer::{ConsumedRecord, Consumer, ConsumerConfig, TopicPartition};
use super::heartbeat::{Heartbeat, News};
use super::ClientError;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use yak_protocol::backoff::Backoff;
use yak_protocol::limits::{
    GROUP_COMMIT_INTERVAL_MS, GROUP_COORDINATOR_WAIT_MS_MAX, GROUP_HEARTBEAT_INTERVAL_MS_DEFAULT,
    GROUP_HEARTBEAT_INTERVAL_MS_MIN, GROUP_MAX_POLL_INTERVAL_MS_DEFAULT, GROUP_POLL_WAIT_MS_MIN,
    GROUP_REJOIN_POLL_MS,
};
use yak_protocol::{Assignor, Call, ErrorCode, MemberStatus, OffsetSpec, PartitionOffset, Reply};

/// Topic → partition → offset.
type TopicOffsets = BTreeMap<String, BTreeMap<u32, u64>>;

/// While waiting for an assignment, how often to ask again.
const REJOIN_POLL: Duration = Duration::from_millis(GROUP_REJOIN_POLL_MS);
/// Heartbeat interval until the coordinator names one.
const HEARTBEAT_DEFAULT: Duration = Duration::from_millis(GROUP_HEARTBEAT_INTERVAL_MS_DEFAULT);

/// How a group consumer is set up.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Group name.
    pub group: String,
    /// Topics subscribed to (at least one).
    pub topics: Vec<String>,
    /// The client's name, shown by `group describe`.
    pub client: String,
    /// Assignor asked for.
    pub assignor: Assignor,
    /// Session timeout; the coordinator's default when `None`.
    pub session_timeout: Option<Duration>,
    /// Where to start a partition the group has no committed offset for.
    pub reset: OffsetSpec,
    /// How often processed offsets are committed.
    pub commit_interval: Duration,
    /// Longest time between two polls before the member leaves the group
    /// (the heartbeat thread keeps it in meanwhile).
    pub max_poll_interval: Duration,
    /// Fetch settings.
    pub consumer: ConsumerConfig,
}

impl GroupConfig {
    /// Defaults for `group` reading `topic`.
    pub fn new(group: &str, topic: &str) -> GroupConfig {
        GroupConfig::for_topics(group, &[topic.to_string()])
    }

    /// Defaults for `group` reading every one of `topics`.
    pub fn for_topics(group: &str, topics: &[String]) -> GroupConfig {
        GroupConfig {
            group: group.to_string(),
            topics: topics.to_vec(),
            client: format!("consumer-{}", std::process::id()),
            assignor: Assignor::Range,
            session_timeout: None,
            reset: OffsetSpec::Latest,
            commit_interval: Duration::from_millis(GROUP_COMMIT_INTERVAL_MS),
            max_poll_interval: Duration::from_millis(GROUP_MAX_POLL_INTERVAL_MS_DEFAULT),
            consumer: ConsumerConfig::default(),
        }
    }
}

/// A member of a consumer group.
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConfig,
    member_id: String,
    /// The generation of the partitions held; `None` while holding none.
    generation: Option<u32>,
    heartbeat_every: Duration,
    next_heartbeat: Instant,
    /// Next offset after the last record acknowledged, per partition held.
    processed: TopicOffsets,
    /// Last offsets the coordinator accepted, per partition held.
    committed: TopicOffsets,
    last_commit: Instant,
    coordinator_lost_at: Option<Instant>,
    /// Waits before retrying a failed fetch or join.
    backoff: Backoff,
    /// Failed fetches in a row (0 after one that worked).
    fetch_failures: u32,
    /// Failed joins in a row while the coordinator is unreachable.
    join_failures: u32,
    heartbeat: Heartbeat,
    /// What the heartbeat thread was last told: member id, generation, interval.
    heartbeat_told: (String, Option<u32>, Duration),
}

/// An error the consumer rides out: the coordinator or a broker is away for a moment.
fn transient(e: &ClientError) -> bool {
    e.is_retriable() || matches!(e, ClientError::NoCluster { .. })
}

impl GroupConsumer {
    /// Joins the group; fails at once if the topic does not exist or the
    /// group refuses this member (another assignor).
    pub fn join(dir: &Path, config: GroupConfig) -> Result<GroupConsumer, ClientError> {
        let consumer = Consumer::unassigned(dir, &config.topics, config.consumer.clone())?;
        let heartbeat = Heartbeat::start(
            dir,
            &config.group,
            HEARTBEAT_DEFAULT,
            config.max_poll_interval,
        )?;
        let now = Instant::now();
        let mut g = GroupConsumer {
            consumer,
            config,
            member_id: String::new(),
            generation: None,
            heartbeat_every: HEARTBEAT_DEFAULT,
            next_heartbeat: now,
            processed: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit: now,
            coordinator_lost_at: None,
            backoff: Backoff::default(),
            fetch_failures: 0,
            join_failures: 0,
            heartbeat,
            heartbeat_told: (String::new(), None, HEARTBEAT_DEFAULT),
        };
        let status = g.send_join()?;
        g.absorb(status)?;
        g.tell_heartbeat();
        Ok(g)
    }

    /// This member's id.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The partitions held now, with the next offset to read.
    pub fn assignment(&self) -> &BTreeMap<TopicPartition, u64> {
        self.consumer.positions()
    }

    /// Heartbeats or rejoins when due, then fetches (up to `max_wait`) from
    /// the partitions held. Call [`GroupConsumer::ack`] for each record once
    /// it is processed.
    pub fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        self.coordinate()?;
        if self.last_commit.elapsed() >= self.config.commit_interval {
            self.commit();
        }
        let until_heartbeat = self
            .next_heartbeat
            .saturating_duration_since(Instant::now());
        let wait = max_wait.min(until_heartbeat.max(Duration::from_millis(GROUP_POLL_WAIT_MS_MIN)));
        if self.generation.is_none() || self.consumer.positions().is_empty() {
            std::thread::sleep(wait.min(REJOIN_POLL));
            return Ok(Vec::new());
        }
        match self.consumer.poll(wait) {
            Ok(records) => {
                self.fetch_failures = 0;
                Ok(records)
            }
            Err(e) if transient(&e) => {
                let pause = self.backoff.delay(self.fetch_failures);
                self.fetch_failures = self.fetch_failures.saturating_add(1);
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "fetch failed; retrying");
                std::thread::sleep(pause);
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Marks a record processed: its offset is committed at the next commit.
    pub fn ack(&mut self, r: &ConsumedRecord) {
        if let Some(p) = self
            .processed
            .get_mut(&r.topic)
            .and_then(|ps| ps.get_mut(&r.partition))
        {
            *p = (*p).max(r.offset + 1);
        }
    }

    /// Commits what was processed and leaves the group, so the others
    /// take over at once instead of after the session timeout.
    pub fn close(mut self) {
        self.heartbeat.stop();
        self.commit();
        if !self.member_id.is_empty() {
            let call = Call::LeaveGroup {
                group: self.config.group.clone(),
                member_id: self.member_id.clone(),
            };
            if let Err(e) = self.consumer.cache().zookeeper_call(&call) {
                tracing::warn!(error = %e, "could not leave the group; it will expire");
            }
        }
    }

    fn send_join(&mut self) -> Result<MemberStatus, ClientError> {
        let call = Call::JoinGroup {
            group: self.config.group.clone(),
            member_id: self.member_id.clone(),
            client: self.config.client.clone(),
            topic: self.consumer.topic().to_string(),
            topics: self.consumer.topics().to_vec(),
            assignor: self.config.assignor,
            session_timeout_ms: self.config.session_timeout.map(|d| d.as_millis() as u64),
        };
        match self.consumer.cache().zookeeper_call(&call)? {
            Reply::GroupMember(s) => Ok(s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Acts on what the heartbeat thread learned, then joins when due
    /// (waiting for partitions), and tells the thread what the member holds.
    fn coordinate(&mut self) -> Result<(), ClientError> {
        let result = self.coordinate_inner();
        self.tell_heartbeat();
        result
    }

    fn coordinate_inner(&mut self) -> Result<(), ClientError> {
        let now = Instant::now();
        match self.heartbeat.polled() {
            Some(News::Status(status)) => self.absorb(status)?,
            Some(News::Gone) => {
                self.forget_membership("no longer a member (expired, or the coordinator restarted)")
            }
            Some(News::PollIntervalExceeded(idle)) => {
                tracing::warn!(
                    idle_ms = idle.as_millis() as u64,
                    max_ms = self.config.max_poll_interval.as_millis() as u64,
                    "no poll within the max poll interval: left the group"
                );
                self.forget_membership("left the group (max poll interval)");
            }
            Some(News::Failed(e)) => return Err(e),
            None => {}
        }
        if let Some((since, error)) = self.heartbeat.unreachable_since() {
            let wait = Duration::from_millis(GROUP_COORDINATOR_WAIT_MS_MAX);
            if since.elapsed() > wait {
                return Err(ClientError::Unexpected(format!(
                    "the group coordinator was unreachable for {} s: {error}",
                    wait.as_secs()
                )));
            }
        }
        if self.generation.is_some() || now < self.next_heartbeat {
            return Ok(());
        }
        match self.send_join().and_then(|status| self.absorb(status)) {
            Ok(()) => {
                self.coordinator_lost_at = None;
                self.join_failures = 0;
                Ok(())
            }
            Err(e) if e.code() == Some(&ErrorCode::UnknownMember) => {
                self.forget_membership(
                    "no longer a member (expired, or the coordinator restarted)",
                );
                Ok(())
            }
            Err(e) if transient(&e) => {
                let since = *self.coordinator_lost_at.get_or_insert(now);
                if since.elapsed() > Duration::from_millis(GROUP_COORDINATOR_WAIT_MS_MAX) {
                    return Err(e);
                }
                let pause = self.backoff.delay(self.join_failures);
                self.join_failures = self.join_failures.saturating_add(1);
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "group coordinator unreachable; retrying");
                self.next_heartbeat = now + pause;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Gives up the partitions without a commit (the coordinator no longer
    /// counts this member) and rejoins at once.
    fn forget_membership(&mut self, why: &str) {
        tracing::warn!(member = %self.member_id, "{why}; rejoining");
        self.revoke();
        self.member_id.clear();
        self.next_heartbeat = Instant::now();
    }

    /// Tells the heartbeat thread which generation to keep alive, if that changed.
    fn tell_heartbeat(&mut self) {
        let now = (
            self.member_id.clone(),
            self.generation,
            self.heartbeat_every,
        );
        if now != self.heartbeat_told {
            self.heartbeat.hold(&now.0, now.1, now.2);
            self.heartbeat_told = now;
        }
    }

    /// Acts on the coordinator's answer.
    fn absorb(&mut self, status: MemberStatus) -> Result<(), ClientError> {
        self.member_id = status.member_id.clone();
        if status.heartbeat_interval_ms > 0 {
            self.heartbeat_every = Duration::from_millis(
                status
                    .heartbeat_interval_ms
                    .max(GROUP_HEARTBEAT_INTERVAL_MS_MIN),
            );
        }
        let now = Instant::now();
        if status.rebalancing {
            if self.generation.is_some() {
                tracing::info!(generation = ?self.generation, "rebalance: committing and giving up partitions");
                self.commit();
                self.revoke();
                // Rejoin at once: the rebalance waits for every member. On
                // failure the next poll rejoins.
                match self.send_join() {
                    Ok(status) if !status.rebalancing => return self.absorb(status),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "rejoin failed; retrying"),
                }
            }
            self.next_heartbeat = now + REJOIN_POLL;
            return Ok(());
        }
        if self.generation != Some(status.generation) {
            self.revoke();
            self.adopt(&status)?;
        }
        self.next_heartbeat = now + self.heartbeat_every;
        Ok(())
    }

    /// Starts reading the partitions of a new generation: each at the
    /// group's committed offset, else where the reset policy says.
    fn adopt(&mut self, status: &MemberStatus) -> Result<(), ClientError> {
        let mut positions: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        self.committed.clear();
        for share in status.assigned.iter().filter(|a| !a.partitions.is_empty()) {
            let committed = self.fetch_committed(&share.topic)?;
            for &p in &share.partitions {
                let offset = match committed.get(&p) {
                    Some(&o) => {
                        self.committed
                            .entry(share.topic.clone())
                            .or_default()
                            .insert(p, o);
                        o
                    }
                    None => self
                        .consumer
                        .list_offset(&share.topic, p, self.config.reset)?,
                };
                positions.insert((share.topic.clone(), p), offset);
            }
        }
        tracing::info!(generation = status.generation, partitions = ?positions, "assigned");
        self.processed.clear();
        for ((topic, p), offset) in &positions {
            self.processed
                .entry(topic.clone())
                .or_default()
                .insert(*p, *offset);
        }
        self.consumer.assign(positions);
        self.generation = Some(status.generation);
        Ok(())
    }

    /// The group's committed offsets for `topic`.
    fn fetch_committed(&mut self, topic: &str) -> Result<BTreeMap<u32, u64>, ClientError> {
        let call = Call::FetchOffsets {
            group: self.config.group.clone(),
            topic: topic.to_string(),
        };
        match self.consumer.cache().zookeeper_call(&call)? {
            Reply::GroupOffsets { offsets } => Ok(offsets
                .into_iter()
                .map(|o| (o.partition, o.offset))
                .collect()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Stops reading every partition (after a commit, or when fenced).
    fn revoke(&mut self) {
        self.consumer.assign(BTreeMap::new());
        self.generation = None;
        self.processed.clear();
        self.committed.clear();
    }

    /// Commits processed offsets that changed, one call per topic; a
    /// refusal (a rebalance fenced this generation) is logged: the next
    /// heartbeat rejoins.
    fn commit(&mut self) {
        self.last_commit = Instant::now();
        let Some(generation) = self.generation else {
            return;
        };
        for (topic, processed) in &self.processed {
            let done = self.committed.get(topic);
            let offsets: Vec<PartitionOffset> = processed
                .iter()
                .filter(|(p, o)| done.and_then(|d| d.get(p)) != Some(o))
                .map(|(&partition, &offset)| PartitionOffset { partition, offset })
                .collect();
            if offsets.is_empty() {
                continue;
            }
            let call = Call::CommitOffsets {
                group: self.config.group.clone(),
                member_id: self.member_id.clone(),
                generation,
                topic: topic.clone(),
                offsets: offsets.clone(),
                metadata: Default::default(),
            };
            match self.consumer.cache().zookeeper_call(&call) {
                Ok(Reply::GroupOk) => {
                    let done = self.committed.entry(topic.clone()).or_default();
                    for o in offsets {
                        done.insert(o.partition, o.offset);
                    }
                }
                Ok(other) => tracing::warn!(reply = ?other, "unexpected answer to a commit"),
                Err(e) => tracing::warn!(error = %e, generation, topic = %topic, "commit failed"),
            }
        }
    }
}
