//! The view model of `cluster watch`: what the live view shows, computed
//! from successive snapshots of the cluster and a clock the caller passes in
//! (milliseconds on any monotonic scale). Owns the highlight timers (a
//! changed leader, a shrunk or grown ISR), the per-topic throughput rates
//! (high watermark deltas between polls), under-replicated and offline
//! counts and consumer-group lag. Never does I/O, never reads a clock, never
//! draws.

use crate::limits::{WATCH_EVENTS_SHOWN_MAX, WATCH_HIGHLIGHT_MS, WATCH_RATE_SAMPLES_MAX};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A broker as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSnap {
    /// Broker id.
    pub id: u32,
    /// Process id of its last registration.
    pub pid: u32,
    /// Its ZooKeeper session is alive.
    pub alive: bool,
    /// Times it registered again with a new pid.
    pub restarts: u32,
}

/// A partition as one poll saw it: placement from ZooKeeper, offsets from
/// its leader (`None` where the leader could not be asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSnap {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Leader, if any.
    pub leader: Option<u32>,
    /// Every replica, preferred leader first.
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    pub isr: Vec<u32>,
    /// Leader epoch.
    pub leader_epoch: u32,
    /// High watermark as the leader reports it.
    pub high_watermark: Option<u64>,
    /// Log end offset as the leader reports it.
    pub log_end_offset: Option<u64>,
}

/// A consumer group as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnap {
    /// Group name.
    pub group: String,
    /// `stable`, `rebalancing` or `empty`.
    pub state: String,
    /// Number of members.
    pub members: u32,
    /// Committed offsets as (topic, partition, offset).
    pub committed: Vec<(String, u32, u64)>,
}

/// One line of the cluster's event history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSnap {
    /// When it happened, Unix milliseconds.
    pub at_unix_ms: u64,
    /// What happened, one line.
    pub text: String,
}

/// Everything one poll of the cluster returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The cluster's id.
    pub cluster_id: String,
    /// Registered brokers.
    pub brokers: Vec<BrokerSnap>,
    /// Every partition of every topic.
    pub partitions: Vec<PartitionSnap>,
    /// Consumer groups.
    pub groups: Vec<GroupSnap>,
    /// The newest cluster events, oldest first.
    pub events: Vec<EventSnap>,
}

/// A highlight: what was there before, shown until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark<T> {
    what: T,
    until_ms: u64,
}

/// The highlights of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Marks {
    /// The leader before the last change.
    leader_was: Option<Mark<Option<u32>>>,
    /// Members that left the ISR recently and are still out.
    shrunk: Option<Mark<Vec<u32>>>,
    /// Members that joined the ISR recently and are still in.
    expanded: Option<Mark<Vec<u32>>>,
}

impl Marks {
    fn expire(&mut self, now_ms: u64) {
        if self
            .leader_was
            .as_ref()
            .is_some_and(|m| m.until_ms <= now_ms)
        {
            self.leader_was = None;
        }
        if self.shrunk.as_ref().is_some_and(|m| m.until_ms <= now_ms) {
            self.shrunk = None;
        }
        if self.expanded.as_ref().is_some_and(|m| m.until_ms <= now_ms) {
            self.expanded = None;
        }
    }

    fn is_empty(&self) -> bool {
        self.leader_was.is_none() && self.shrunk.is_none() && self.expanded.is_none()
    }
}

/// Whether the last poll reached the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// No poll answered yet.
    Waiting,
    /// The last poll answered.
    Live,
    /// Polls fail since `since_ms` (ZooKeeper restarting, cluster stopped).
    Reconnecting { since_ms: u64, error: String },
}

/// What the header says about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkView {
    /// No poll answered yet.
    Waiting,
    /// The data is `age_ms` old.
    Live {
        /// Milliseconds since the last answered poll.
        age_ms: u64,
    },
    /// Polls have failed for `for_ms`; the data shown is the last answered.
    Reconnecting {
        /// Milliseconds since the first failed poll.
        for_ms: u64,
        /// The last poll's error.
        error: String,
    },
}

/// A broker row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRow {
    /// Broker id.
    pub id: u32,
    /// Process id.
    pub pid: u32,
    /// Session alive.
    pub alive: bool,
    /// Restarts seen by ZooKeeper.
    pub restarts: u32,
    /// Partitions it leads.
    pub leads: usize,
    /// Partitions it leads whose ISR is smaller than their replica set.
    pub under_replicated: usize,
}

/// A partition row, with its highlights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    /// `topic-partition`.
    pub name: String,
    /// Leader now.
    pub leader: Option<u32>,
    /// The leader before a recent change (highlighted while set).
    pub leader_was: Option<Option<u32>>,
    /// In-sync replicas now.
    pub isr: Vec<u32>,
    /// Members that left the ISR recently (highlighted while not empty).
    pub isr_shrunk: Vec<u32>,
    /// Members that joined the ISR recently.
    pub isr_expanded: Vec<u32>,
    /// Leader epoch.
    pub leader_epoch: u32,
    /// High watermark.
    pub high_watermark: Option<u64>,
    /// Log end offset.
    pub log_end_offset: Option<u64>,
    /// ISR smaller than the replica set.
    pub under_replicated: bool,
    /// No leader.
    pub offline: bool,
}

/// A topic's throughput.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRate {
    /// Topic name.
    pub topic: String,
    /// Records per second between successive polls, oldest first.
    pub samples: Vec<u64>,
}

impl TopicRate {
    /// The newest rate, if two polls were seen.
    pub fn per_sec(&self) -> Option<u64> {
        self.samples.last().copied()
    }
}

/// A consumer group's lag on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Group name.
    pub group: String,
    /// Group state.
    pub state: String,
    /// Number of members.
    pub members: u32,
    /// The topic (`None`: the group has no committed offsets).
    pub topic: Option<String>,
    /// High watermark − committed offset, summed over the partitions whose
    /// high watermark is known.
    pub lag: Option<u64>,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The cluster's id (empty before the first answer).
    pub cluster_id: String,
    /// Connection state.
    pub link: LinkView,
    /// Brokers.
    pub brokers: Vec<BrokerRow>,
    /// Partitions.
    pub partitions: Vec<PartitionRow>,
    /// Throughput per topic.
    pub topics: Vec<TopicRate>,
    /// Consumer-group lag.
    pub groups: Vec<GroupRow>,
    /// Newest events, oldest first.
    pub events: Vec<EventSnap>,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
}

/// The state of the live view across polls.
#[derive(Debug, Clone)]
pub struct WatchModel {
    last: Option<Snapshot>,
    last_at_ms: u64,
    marks: BTreeMap<(String, u32), Marks>,
    rates: BTreeMap<String, VecDeque<u64>>,
    link: Link,
}

impl Default for WatchModel {
    fn default() -> Self {
        WatchModel {
            last: None,
            last_at_ms: 0,
            marks: BTreeMap::new(),
            rates: BTreeMap::new(),
            link: Link::Waiting,
        }
    }
}

fn key(p: &PartitionSnap) -> (String, u32) {
    (p.topic.clone(), p.partition)
}

fn minus(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().copied().filter(|x| !b.contains(x)).collect()
}

fn union_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter()
        .chain(b)
        .copied()
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect()
}

impl WatchModel {
    /// Takes a poll's answer at `now_ms`: highlights what changed since the
    /// last answer, adds a throughput sample per topic, drops what expired.
    pub fn apply(&mut self, now_ms: u64, snap: Snapshot) {
        if let Some(prev) = self.last.take() {
            self.mark_changes(now_ms, &prev, &snap);
            self.sample_rates(now_ms.saturating_sub(self.last_at_ms), &prev, &snap);
        }
        let topics: BTreeSet<&str> = snap.partitions.iter().map(|p| p.topic.as_str()).collect();
        self.rates.retain(|t, _| topics.contains(t.as_str()));
        for t in topics {
            self.rates.entry(t.to_string()).or_default();
        }
        let live: BTreeSet<(String, u32)> = snap.partitions.iter().map(key).collect();
        self.marks.retain(|k, m| {
            m.expire(now_ms);
            live.contains(k) && !m.is_empty()
        });
        self.last = Some(snap);
        self.last_at_ms = now_ms;
        self.link = Link::Live;
    }

    /// A poll failed at `now_ms`: the view says "reconnecting…" and keeps
    /// showing the last answer.
    pub fn poll_failed(&mut self, now_ms: u64, error: String) {
        let since_ms = match &self.link {
            Link::Reconnecting { since_ms, .. } => *since_ms,
            Link::Waiting | Link::Live => now_ms,
        };
        self.link = Link::Reconnecting { since_ms, error };
    }

    fn mark_changes(&mut self, now_ms: u64, prev: &Snapshot, snap: &Snapshot) {
        let before: BTreeMap<(String, u32), &PartitionSnap> =
            prev.partitions.iter().map(|p| (key(p), p)).collect();
        let until_ms = now_ms + WATCH_HIGHLIGHT_MS;
        for p in &snap.partitions {
            let Some(old) = before.get(&key(p)) else {
                continue;
            };
            let marks = self.marks.entry(key(p)).or_default();
            marks.expire(now_ms);
            if old.leader != p.leader {
                marks.leader_was = Some(Mark {
                    what: old.leader,
                    until_ms,
                });
            }
            let left = minus(&old.isr, &p.isr);
            let joined = minus(&p.isr, &old.isr);
            if !left.is_empty() {
                let earlier = marks.shrunk.take().map(|m| m.what).unwrap_or_default();
                marks.shrunk = Some(Mark {
                    what: union_sorted(&earlier, &left),
                    until_ms,
                });
            }
            if !joined.is_empty() {
                let earlier = marks.expanded.take().map(|m| m.what).unwrap_or_default();
                marks.expanded = Some(Mark {
                    what: union_sorted(&earlier, &joined),
                    until_ms,
                });
            }
            // A member counts as "left" only while it is out, and as
            // "joined" only while it is in.
            if let Some(m) = &mut marks.shrunk {
                m.what.retain(|b| !p.isr.contains(b));
            }
            if let Some(m) = &mut marks.expanded {
                m.what.retain(|b| p.isr.contains(b));
            }
            if marks.shrunk.as_ref().is_some_and(|m| m.what.is_empty()) {
                marks.shrunk = None;
            }
            if marks.expanded.as_ref().is_some_and(|m| m.what.is_empty()) {
                marks.expanded = None;
            }
        }
    }

    fn sample_rates(&mut self, elapsed_ms: u64, prev: &Snapshot, snap: &Snapshot) {
        if elapsed_ms == 0 {
            return;
        }
        let before: BTreeMap<(String, u32), u64> = prev
            .partitions
            .iter()
            .filter_map(|p| Some((key(p), p.high_watermark?)))
            .collect();
        let mut records: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &snap.partitions {
            let delta = match (before.get(&key(p)), p.high_watermark) {
                (Some(old), Some(new)) => new.saturating_sub(*old),
                _ => 0,
            };
            *records.entry(p.topic.as_str()).or_default() += delta;
        }
        for (topic, n) in records {
            let samples = self.rates.entry(topic.to_string()).or_default();
            samples.push_back(n * 1000 / elapsed_ms);
            while samples.len() > WATCH_RATE_SAMPLES_MAX {
                samples.pop_front();
            }
        }
    }

    /// What to show at `now_ms`.
    pub fn view(&self, now_ms: u64) -> View {
        let empty = Snapshot::default();
        let snap = self.last.as_ref().unwrap_or(&empty);
        let link = match &self.link {
            Link::Waiting => LinkView::Waiting,
            Link::Live => LinkView::Live {
                age_ms: now_ms.saturating_sub(self.last_at_ms),
            },
            Link::Reconnecting { since_ms, error } => LinkView::Reconnecting {
                for_ms: now_ms.saturating_sub(*since_ms),
                error: error.clone(),
            },
        };
        let partitions: Vec<PartitionRow> = snap
            .partitions
            .iter()
            .map(|p| self.partition_row(now_ms, p))
            .collect();
        let brokers = snap
            .brokers
            .iter()
            .map(|b| {
                let led = snap.partitions.iter().filter(|p| p.leader == Some(b.id));
                let (leads, under_replicated) = led.fold((0, 0), |(n, u), p| {
                    (n + 1, u + usize::from(p.isr.len() < p.replicas.len()))
                });
                BrokerRow {
                    id: b.id,
                    pid: b.pid,
                    alive: b.alive,
                    restarts: b.restarts,
                    leads,
                    under_replicated,
                }
            })
            .collect();
        let topics = self
            .rates
            .iter()
            .map(|(topic, s)| TopicRate {
                topic: topic.clone(),
                samples: s.iter().copied().collect(),
            })
            .collect();
        let skip = snap.events.len().saturating_sub(WATCH_EVENTS_SHOWN_MAX);
        View {
            cluster_id: snap.cluster_id.clone(),
            link,
            brokers,
            under_replicated: partitions.iter().filter(|p| p.under_replicated).count(),
            offline: partitions.iter().filter(|p| p.offline).count(),
            partitions,
            topics,
            groups: group_rows(snap),
            events: snap.events[skip..].to_vec(),
        }
    }

    fn partition_row(&self, now_ms: u64, p: &PartitionSnap) -> PartitionRow {
        let mut marks = self.marks.get(&key(p)).cloned().unwrap_or_default();
        marks.expire(now_ms);
        PartitionRow {
            name: format!("{}-{}", p.topic, p.partition),
            leader: p.leader,
            leader_was: marks.leader_was.map(|m| m.what),
            isr: p.isr.clone(),
            isr_shrunk: marks.shrunk.map(|m| m.what).unwrap_or_default(),
            isr_expanded: marks.expanded.map(|m| m.what).unwrap_or_default(),
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            log_end_offset: p.log_end_offset,
            under_replicated: p.isr.len() < p.replicas.len(),
            offline: p.leader.is_none(),
        }
    }
}

/// One row per (group, topic it has offsets for); lag against the leaders'
/// high watermarks.
fn group_rows(snap: &Snapshot) -> Vec<GroupRow> {
    let hw: BTreeMap<(&str, u32), u64> = snap
        .partitions
        .iter()
        .filter_map(|p| Some(((p.topic.as_str(), p.partition), p.high_watermark?)))
        .collect();
    let mut rows = Vec::new();
    for g in &snap.groups {
        let mut per_topic: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for (topic, partition, offset) in &g.committed {
            let lag = hw
                .get(&(topic.as_str(), *partition))
                .map(|h| h.saturating_sub(*offset));
            let slot = per_topic.entry(topic.as_str()).or_default();
            if let Some(lag) = lag {
                *slot = Some(slot.unwrap_or(0) + lag);
            }
        }
        let row = |topic: Option<String>, lag| GroupRow {
            group: g.group.clone(),
            state: g.state.clone(),
            members: g.members,
            topic,
            lag,
        };
        if per_topic.is_empty() {
            rows.push(row(None, None));
        }
        rows.extend(
            per_topic
                .into_iter()
                .map(|(t, lag)| row(Some(t.to_string()), lag)),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: u32, alive: bool) -> BrokerSnap {
        BrokerSnap {
            id,
            pid: 100 + id,
            alive,
            restarts: 0,
        }
    }

    fn part(
        topic: &str,
        partition: u32,
        leader: Option<u32>,
        isr: &[u32],
        hw: u64,
    ) -> PartitionSnap {
        PartitionSnap {
            topic: topic.into(),
            partition,
            leader,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader_epoch: 0,
            high_watermark: Some(hw),
            log_end_offset: Some(hw),
        }
    }

    fn snap(partitions: Vec<PartitionSnap>) -> Snapshot {
        Snapshot {
            cluster_id: "c".into(),
            brokers: vec![broker(1, true), broker(2, true), broker(3, true)],
            partitions,
            groups: vec![],
            events: vec![],
        }
    }

    fn row<'a>(v: &'a View, name: &str) -> &'a PartitionRow {
        v.partitions
            .iter()
            .find(|p| p.name == name)
            .expect("partition in view")
    }

    #[test]
    fn given_leader_change_when_viewing_should_highlight_then_expire() {
        let mut m = WatchModel::default();
        m.apply(0, snap(vec![part("orders", 0, Some(2), &[2, 3, 1], 0)]));
        assert_eq!(row(&m.view(0), "orders-0").leader_was, None);
        m.apply(1000, snap(vec![part("orders", 0, Some(3), &[3, 1], 0)]));
        let v = m.view(1000);
        assert_eq!(row(&v, "orders-0").leader, Some(3));
        assert_eq!(row(&v, "orders-0").leader_was, Some(Some(2)));
        assert_eq!(
            row(&m.view(1000 + WATCH_HIGHLIGHT_MS - 1), "orders-0").leader_was,
            Some(Some(2))
        );
        assert_eq!(
            row(&m.view(1000 + WATCH_HIGHLIGHT_MS), "orders-0").leader_was,
            None
        );
        // A later poll without change keeps it expired.
        m.apply(
            1000 + WATCH_HIGHLIGHT_MS + 10,
            snap(vec![part("orders", 0, Some(3), &[3, 1], 0)]),
        );
        assert_eq!(
            row(&m.view(1000 + WATCH_HIGHLIGHT_MS + 10), "orders-0").leader_was,
            None
        );
    }

    #[test]
    fn given_partition_going_offline_when_viewing_should_highlight_and_count_it() {
        let mut m = WatchModel::default();
        m.apply(0, snap(vec![part("t", 0, Some(1), &[1], 0)]));
        m.apply(100, snap(vec![part("t", 0, None, &[1], 0)]));
        let v = m.view(100);
        assert_eq!(row(&v, "t-0").leader_was, Some(Some(1)));
        assert!(row(&v, "t-0").offline);
        assert_eq!(v.offline, 1);
    }

    #[test]
    fn given_isr_shrink_when_viewing_should_flag_missing_member_until_it_returns() {
        let mut m = WatchModel::default();
        m.apply(0, snap(vec![part("t", 0, Some(1), &[1, 2, 3], 0)]));
        m.apply(100, snap(vec![part("t", 0, Some(1), &[1, 3], 0)]));
        let v = m.view(100);
        assert_eq!(row(&v, "t-0").isr_shrunk, vec![2]);
        assert!(row(&v, "t-0").under_replicated);
        assert_eq!(v.under_replicated, 1);
        // A second shrink adds to the flag.
        m.apply(200, snap(vec![part("t", 0, Some(1), &[1], 0)]));
        assert_eq!(row(&m.view(200), "t-0").isr_shrunk, vec![2, 3]);
        // Broker 2 is back: no longer flagged as missing, flagged as joined.
        m.apply(300, snap(vec![part("t", 0, Some(1), &[1, 2], 0)]));
        let r = m.view(300);
        assert_eq!(row(&r, "t-0").isr_shrunk, vec![3]);
        assert_eq!(row(&r, "t-0").isr_expanded, vec![2]);
        assert_eq!(
            row(&m.view(300 + WATCH_HIGHLIGHT_MS), "t-0").isr_shrunk,
            Vec::<u32>::new()
        );
        assert_eq!(
            row(&m.view(300 + WATCH_HIGHLIGHT_MS), "t-0").isr_expanded,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn given_high_watermark_deltas_when_polling_should_compute_rates_per_topic() {
        let mut m = WatchModel::default();
        m.apply(
            0,
            snap(vec![
                part("a", 0, Some(1), &[1, 2, 3], 100),
                part("a", 1, Some(2), &[1, 2, 3], 50),
            ]),
        );
        assert_eq!(
            m.view(0).topics,
            vec![TopicRate {
                topic: "a".into(),
                samples: vec![]
            }]
        );
        // 250 ms later: 100 + 25 more records = 500 records/s.
        m.apply(
            250,
            snap(vec![
                part("a", 0, Some(1), &[1, 2, 3], 200),
                part("a", 1, Some(2), &[1, 2, 3], 75),
            ]),
        );
        // 500 ms later: partition 1's leader unknown, counts nothing; 50 in 0.5 s.
        let mut p1 = part("a", 1, Some(2), &[1, 2, 3], 0);
        p1.high_watermark = None;
        m.apply(750, snap(vec![part("a", 0, Some(1), &[1, 2, 3], 250), p1]));
        let v = m.view(750);
        assert_eq!(v.topics[0].samples, vec![500, 100]);
        assert_eq!(v.topics[0].per_sec(), Some(100));
    }

    #[test]
    fn given_many_polls_when_sampling_should_keep_a_bounded_history_and_drop_deleted_topics() {
        let mut m = WatchModel::default();
        for i in 0..(WATCH_RATE_SAMPLES_MAX as u64 + 10) {
            m.apply(
                i * 100,
                snap(vec![
                    part("a", 0, Some(1), &[1, 2, 3], i * 10),
                    part("b", 0, Some(1), &[1], 0),
                ]),
            );
        }
        let v = m.view(0);
        assert_eq!(v.topics[0].samples.len(), WATCH_RATE_SAMPLES_MAX);
        assert!(v.topics[0].samples.iter().all(|r| *r == 100));
        m.apply(1_000_000, snap(vec![part("b", 0, Some(1), &[1], 0)]));
        let names: Vec<String> = m
            .view(1_000_000)
            .topics
            .into_iter()
            .map(|t| t.topic)
            .collect();
        assert_eq!(names, vec!["b".to_string()]);
    }

    #[test]
    fn given_partitions_when_viewing_brokers_should_count_led_and_under_replicated() {
        let mut m = WatchModel::default();
        let mut s = snap(vec![
            part("t", 0, Some(1), &[1, 2, 3], 0),
            part("t", 1, Some(1), &[1, 3], 0),
            part("t", 2, Some(3), &[3], 0),
            part("t", 3, None, &[2], 0),
        ]);
        s.brokers[1].alive = false;
        m.apply(0, s);
        let v = m.view(0);
        let counts: Vec<(u32, bool, usize, usize)> = v
            .brokers
            .iter()
            .map(|b| (b.id, b.alive, b.leads, b.under_replicated))
            .collect();
        assert_eq!(
            counts,
            vec![(1, true, 2, 1), (2, false, 0, 0), (3, true, 1, 1)]
        );
        assert_eq!((v.under_replicated, v.offline), (3, 1));
    }

    #[test]
    fn given_committed_offsets_when_viewing_groups_should_compute_lag_per_topic() {
        let mut s = snap(vec![
            part("a", 0, Some(1), &[1], 100),
            part("a", 1, Some(1), &[1], 40),
        ]);
        s.groups = vec![
            GroupSnap {
                group: "g".into(),
                state: "stable".into(),
                members: 2,
                committed: vec![
                    ("a".into(), 0, 90),
                    ("a".into(), 1, 40),
                    ("gone".into(), 0, 5),
                ],
            },
            GroupSnap {
                group: "new".into(),
                state: "empty".into(),
                members: 0,
                committed: vec![],
            },
        ];
        let mut m = WatchModel::default();
        m.apply(0, s);
        let lags: Vec<(String, Option<String>, Option<u64>)> = m
            .view(0)
            .groups
            .into_iter()
            .map(|g| (g.group, g.topic, g.lag))
            .collect();
        assert_eq!(
            lags,
            vec![
                ("g".into(), Some("a".into()), Some(10)),
                ("g".into(), Some("gone".into()), None),
                ("new".into(), None, None),
            ]
        );
    }

    #[test]
    fn given_failed_polls_when_viewing_should_say_reconnecting_and_keep_last_answer() {
        let mut m = WatchModel::default();
        assert_eq!(m.view(0).link, LinkView::Waiting);
        m.apply(100, snap(vec![part("t", 0, Some(1), &[1, 2, 3], 7)]));
        assert_eq!(m.view(350).link, LinkView::Live { age_ms: 250 });
        m.poll_failed(400, "zookeeper down".into());
        m.poll_failed(900, "still down".into());
        let v = m.view(1000);
        assert_eq!(
            v.link,
            LinkView::Reconnecting {
                for_ms: 600,
                error: "still down".into()
            }
        );
        assert_eq!(row(&v, "t-0").high_watermark, Some(7));
        m.apply(1200, snap(vec![part("t", 0, Some(2), &[2, 3], 7)]));
        let v = m.view(1200);
        assert_eq!(v.link, LinkView::Live { age_ms: 0 });
        assert_eq!(
            row(&v, "t-0").leader_was,
            Some(Some(1)),
            "a change across the gap is highlighted"
        );
    }

    #[test]
    fn given_more_events_than_shown_when_viewing_should_keep_the_newest() {
        let mut s = snap(vec![]);
        s.events = (0..WATCH_EVENTS_SHOWN_MAX as u64 + 5)
            .map(|i| EventSnap {
                at_unix_ms: i,
                text: format!("e{i}"),
            })
            .collect();
        let mut m = WatchModel::default();
        m.apply(0, s);
        let v = m.view(0);
        assert_eq!(v.events.len(), WATCH_EVENTS_SHOWN_MAX);
        assert_eq!(v.events.first().map(|e| e.at_unix_ms), Some(5));
        assert_eq!(
            v.events.last().map(|e| e.text.clone()),
            Some(format!("e{}", WATCH_EVENTS_SHOWN_MAX + 4))
        );
    }
}
