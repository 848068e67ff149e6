//! The Prometheus text exposition format (0.0.4): turns a [`Snapshot`] of
//! the cluster into the body `GET /metrics` answers.
//!
//! Owns: every metric's name, type, help text and labels, label escaping
//! and number formatting. A pure function of its input.
//! Never: talks to a child, reads a file or a clock (`scrape` gathers the
//! snapshot, `http` serves the text).

use std::fmt::Write;

use yak_protocol::{BrokerStatsReport, HistogramReport, LocalPartition};

/// The `Content-Type` of the text this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One child process as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSample {
    /// `zookeeper`, `broker-<id>`, `producer-<i>`, `consumer-<i>`.
    pub name: String,
    /// Running now.
    pub up: bool,
    /// Restarts by the supervisor since it started.
    pub restarts: u64,
    /// Resident memory, when running and readable.
    pub rss_bytes: Option<u64>,
}

/// One broker's counters (`Call::BrokerStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSample {
    /// Broker id.
    pub broker: u32,
    /// What it reported.
    pub stats: BrokerStatsReport,
}

/// Cluster-wide counts from ZooKeeper's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterSample {
    /// Registered brokers whose session is alive.
    pub brokers_alive: u64,
    /// Partitions of every topic.
    pub partitions: u64,
    /// Partitions with a leader and fewer in-sync replicas than replicas.
    pub under_replicated: u64,
    /// Partitions without a leader.
    pub offline: u64,
}

/// A consumer group's lag on one partition: the leader's high watermark
/// minus the group's committed offset (as `yak-node group describe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// Group name.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Records behind the high watermark.
    pub lag: u64,
}

/// Everything one scrape gathered. A child that did not answer is simply
/// absent (and counted in `scrape_errors`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every child of the supervisor.
    pub children: Vec<ChildSample>,
    /// Brokers that answered `BrokerStats`.
    pub brokers: Vec<BrokerSample>,
    /// Every replica of the brokers that answered, with the broker's id.
    pub replicas: Vec<(u32, LocalPartition)>,
    /// From ZooKeeper; `None` when it did not answer.
    pub cluster: Option<ClusterSample>,
    /// Members per group (from ZooKeeper).
    pub group_members: Vec<(String, u64)>,
    /// Lag per group and partition.
    pub group_lags: Vec<GroupLag>,
    /// Per target (`zookeeper`, `broker-<id>`): did it answer this scrape.
    pub targets_up: Vec<(String, bool)>,
    /// Per target: scrapes it failed since the supervisor started.
    pub scrape_errors: Vec<(String, u64)>,
    /// How long gathering this snapshot took.
    pub scrape_seconds: f64,
}

/// Metric kinds, as the `# TYPE` line names them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes families one after the other; each family's samples follow its
/// `# HELP` and `# TYPE` lines.
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// A gauge or counter family with one sample per item.
    fn each<T>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        items: &[T],
        sample: impl Fn(&mut Writer, &T),
    ) {
        self.family(name, kind, help);
        for item in items {
            sample(self, item);
        }
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramReport) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = match h.bounds_us.get(i) {
                Some(&us) => seconds(us).to_string(),
                None => "+Inf".to_string(),
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        if h.counts.len() <= h.bounds_us.len() {
            // A malformed report lacks its +Inf bucket; Prometheus needs one.
            let mut with_le = labels.to_vec();
            with_le.push(("le", "+Inf"));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, seconds(h.sum_us));
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// `\` and newline escaped, as `# HELP` text needs.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// The exposition of `s`: every family, with HELP and TYPE lines, in a fixed
/// order; samples within a family in the snapshot's order.
pub fn render(s: &Snapshot) -> String {
    let mut w = Writer {
        out: String::with_capacity(16 * 1024),
    };
    render_children(&mut w, s);
    render_brokers(&mut w, s);
    render_replicas(&mut w, s);
    render_cluster(&mut w, s);
    render_groups(&mut w, s);
    render_scrape(&mut w, s);
    w.out
}

fn render_children(w: &mut Writer, s: &Snapshot) {
    let c = &s.children;
    w.each(
        "yak_child_up",
        Kind::Gauge,
        "1 while the supervisor's child process runs, else 0.",
        c,
        |w, c| w.sample("yak_child_up", &[("child", &c.name)], u8::from(c.up)),
    );
    w.each(
        "yak_child_restarts_total",
        Kind::Counter,
        "Times the supervisor restarted the child after it died.",
        c,
        |w, c| {
            w.sample(
                "yak_child_restarts_total",
                &[("child", &c.name)],
                c.restarts,
            )
        },
    );
    let running: Vec<(&str, u64)> = c
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.rss_bytes?)))
        .collect();
    let name = "yak_child_resident_memory_bytes";
    w.each(
        name,
        Kind::Gauge,
        "Resident memory of the child process (from /proc/<pid>/statm).",
        &running,
        |w, (child, rss)| w.sample(name, &[("child", child)], rss),
    );
}

fn render_brokers(w: &mut Writer, s: &Snapshot) {
    type Field = fn(&BrokerStatsReport) -> u64;
    let counters: [(&str, &str, Field); 3] = [
        (
            "yak_broker_produce_requests_total",
            "Produce requests received.",
            |r| r.produce_requests,
        ),
        (
            "yak_broker_produce_errors_total",
            "Produce requests answered with an error.",
            |r| r.produce_errors,
        ),
        (
            "yak_broker_produce_bytes_total",
            "Record batch bytes received in produce requests.",
            |r| r.produce_bytes,
        ),
    ];
    for (name, help, field) in counters {
        w.each(name, Kind::Counter, help, &s.brokers, |w, b| {
            w.sample(name, &[("broker", &b.broker.to_string())], field(&b.stats))
        });
    }
    let kinds: [(&str, Field, Field); 2] = [
        (
            "consumer",
            |r| r.fetch_requests_consumer,
            |r| r.fetch_bytes_consumer,
        ),
        (
            "follower",
            |r| r.fetch_requests_follower,
            |r| r.fetch_bytes_follower,
        ),
    ];
    let name = "yak_broker_fetch_requests_total";
    w.family(
        name,
        Kind::Counter,
        "Fetch requests answered, by who asked (consumer or follower replica).",
    );
    for b in &s.brokers {
        for (kind, requests, _) in kinds {
            w.sample(
                name,
                &[("broker", &b.broker.to_string()), ("kind", kind)],
                requests(&b.stats),
            );
        }
    }
    let name = "yak_broker_fetch_bytes_total";
    w.family(
        name,
        Kind::Counter,
        "Record bytes returned by fetches, by who asked (consumer or follower replica).",
    );
    for b in &s.brokers {
        for (kind, _, bytes) in kinds {
            w.sample(
                name,
                &[("broker", &b.broker.to_string()), ("kind", kind)],
                bytes(&b.stats),
            );
        }
    }
    let name = "yak_broker_connections";
    w.each(
        name,
        Kind::Gauge,
        "Client connections open at the broker (the scrape's own included).",
        &s.brokers,
        |w, b| {
            w.sample(
                name,
                &[("broker", &b.broker.to_string())],
                b.stats.connections,
            )
        },
    );
    let name = "yak_broker_produce_latency_seconds";
    w.each(
        name,
        Kind::Histogram,
        "From a produce request's arrival to its answer (acks 1 and all).",
        &s.brokers,
        |w, b| {
            w.histogram(
                name,
                &[("broker", &b.broker.to_string())],
                &b.stats.produce_latency,
            )
        },
    );
    let name = "yak_broker_fsync_latency_seconds";
    w.each(
        name,
        Kind::Histogram,
        "One fsync of a partition log (leader group commit or follower append).",
        &s.brokers,
        |w, b| {
            w.histogram(
                name,
                &[("broker", &b.broker.to_string())],
                &b.stats.fsync_latency,
            )
        },
    );
}

fn render_replicas(w: &mut Writer, s: &Snapshot) {
    type Field = fn(&LocalPartition) -> u64;
    let gauges: [(&str, &str, Field); 6] = [
        (
            "yak_partition_log_start_offset",
            "First offset in the replica's log.",
            |p| p.log_start_offset,
        ),
        (
            "yak_partition_high_watermark",
            "The replica's high watermark: consumers read below it.",
            |p| p.high_watermark,
        ),
        (
            "yak_partition_log_end_offset",
            "Offset the replica's next record gets.",
            |p| p.log_end_offset,
        ),
        (
            "yak_partition_isr_size",
            "In-sync replicas as this broker knows them.",
            |p| p.isr.len() as u64,
        ),
        (
            "yak_partition_is_leader",
            "1 if this broker leads the partition, else 0.",
            |p| u64::from(p.is_leader),
        ),
        (
            "yak_partition_leader_epoch",
            "Leader epoch this broker knows.",
            |p| u64::from(p.leader_epoch),
        ),
    ];
    for (name, help, field) in gauges {
        w.each(name, Kind::Gauge, help, &s.replicas, |w, (broker, p)| {
            let (partition, broker) = (p.partition.to_string(), broker.to_string());
            w.sample(
                name,
                &[
                    ("topic", &p.topic),
                    ("partition", &partition),
                    ("broker", &broker),
                ],
                field(p),
            )
        });
    }
}

fn render_cluster(w: &mut Writer, s: &Snapshot) {
    type Field = fn(&ClusterSample) -> u64;
    let gauges: [(&str, &str, Field); 4] = [
        (
            "yak_cluster_brokers_alive",
            "Registered brokers whose ZooKeeper session is alive.",
            |c| c.brokers_alive,
        ),
        (
            "yak_cluster_partitions",
            "Partitions of every topic.",
            |c| c.partitions,
        ),
        (
            "yak_cluster_under_replicated_partitions",
            "Partitions with a leader and fewer in-sync replicas than replicas.",
            |c| c.under_replicated,
        ),
        (
            "yak_cluster_offline_partitions",
            "Partitions without a leader (no in-sync replica alive).",
            |c| c.offline,
        ),
    ];
    let cluster: Vec<ClusterSample> = s.cluster.iter().copied().collect();
    for (name, help, field) in gauges {
        w.each(name, Kind::Gauge, help, &cluster, |w, c| {
            w.sample(name, &[], field(c))
        });
    }
}

fn render_groups(w: &mut Writer, s: &Snapshot) {
    let name = "yak_group_members";
    w.each(
        name,
        Kind::Gauge,
        "Members of the consumer group.",
        &s.group_members,
        |w, (group, n)| w.sample(name, &[("group", group)], n),
    );
    let name = "yak_group_lag";
    w.each(
        name,
        Kind::Gauge,
        "Records between the group's committed offset and the leader's high watermark.",
        &s.group_lags,
        |w, l| {
            w.sample(
                name,
                &[
                    ("group", &l.group),
                    ("topic", &l.topic),
                    ("partition", &l.partition.to_string()),
                ],
                l.lag,
            )
        },
    );
}

fn render_scrape(w: &mut Writer, s: &Snapshot) {
    let name = "yak_scrape_target_up";
    w.each(
        name,
        Kind::Gauge,
        "1 if the child answered this scrape in time, else 0.",
        &s.targets_up,
        |w, (t, up)| w.sample(name, &[("target", t)], u8::from(*up)),
    );
    let name = "yak_scrape_errors_total";
    w.each(
        name,
        Kind::Counter,
        "Scrapes a child did not answer in time (it was skipped).",
        &s.scrape_errors,
        |w, (t, n)| w.sample(name, &[("target", t)], n),
    );
    w.family(
        "yak_scrape_duration_seconds",
        Kind::Gauge,
        "How long gathering this scrape took.",
    );
    w.sample("yak_scrape_duration_seconds", &[], s.scrape_seconds);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openmetrics_parser::prometheus::parse_prometheus;
    use openmetrics_parser::{PrometheusType, PrometheusValue};

    fn histogram(counts: Vec<u64>, sum_us: u64) -> HistogramReport {
        HistogramReport {
            bounds_us: vec![1_000, 250_000],
            counts,
            sum_us,
        }
    }

    fn replica(topic: &str, partition: u32, leader: bool) -> LocalPartition {
        LocalPartition {
            topic: topic.into(),
            partition,
            topic_id: 1,
            log_start_offset: 2,
            log_end_offset: 10,
            high_watermark: 9,
            leader_epoch: 3,
            is_leader: leader,
            isr: vec![1, 2],
            size_bytes: 0,
        }
    }

    fn full() -> Snapshot {
        let stats = BrokerStatsReport {
            produce_requests: 5,
            produce_errors: 1,
            produce_bytes: 500,
            fetch_requests_consumer: 2,
            fetch_requests_follower: 40,
            fetch_bytes_consumer: 300,
            fetch_bytes_follower: 500,
            connections: 3,
            produce_latency: histogram(vec![3, 1, 1], 2_000_000),
            fsync_latency: histogram(vec![4, 0, 0], 1_200),
        };
        Snapshot {
            children: vec![
                ChildSample {
                    name: "zookeeper".into(),
                    up: true,
                    restarts: 0,
                    rss_bytes: Some(4096),
                },
                ChildSample {
                    name: "broker-1".into(),
                    up: false,
                    restarts: 2,
                    rss_bytes: None,
                },
            ],
            brokers: vec![
                BrokerSample {
                    broker: 1,
                    stats: stats.clone(),
                },
                BrokerSample { broker: 2, stats },
            ],
            replicas: vec![
                (1, replica("orders", 0, true)),
                (2, replica("orders", 0, false)),
                (1, replica("a\"b\\c", 1, true)),
            ],
            cluster: Some(ClusterSample {
                brokers_alive: 2,
                partitions: 4,
                under_replicated: 1,
                offline: 1,
            }),
            group_members: vec![("g\nx".into(), 2)],
            group_lags: vec![GroupLag {
                group: "g\nx".into(),
                topic: "orders".into(),
                partition: 0,
                lag: 7,
            }],
            targets_up: vec![("zookeeper".into(), true), ("broker-1".into(), false)],
            scrape_errors: vec![("broker-1".into(), 3)],
            scrape_seconds: 0.012,
        }
    }

    /// The value of `family`'s sample whose labels include every `labels` pair.
    fn value(text: &str, family: &str, labels: &[(&str, &str)]) -> PrometheusValue {
        let exposition = parse_prometheus(text).unwrap();
        let f = exposition
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family}"));
        let found = f
            .iter_samples()
            .find(|s| {
                let set = s.get_labelset().unwrap();
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {family}{labels:?}"))
            .value
            .clone();
        found
    }

    fn number(v: PrometheusValue) -> f64 {
        match v {
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Counter(c) => c.value.as_f64(),
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn given_full_snapshot_when_rendering_should_parse_with_a_prometheus_parser() {
        let text = render(&full());
        let exposition = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (name, family) in &exposition.families {
            assert!(name.starts_with("yak_"), "{name}");
            assert!(!family.help.is_empty(), "{name} has no HELP");
            match family.family_type {
                PrometheusType::Counter => assert!(name.ends_with("_total"), "{name}"),
                PrometheusType::Histogram => assert!(name.ends_with("_seconds"), "{name}"),
                _ => assert!(!name.ends_with("_total"), "{name}"),
            }
        }
        assert_eq!(
            number(value(
                &text,
                "yak_partition_high_watermark",
                &[("broker", "2"), ("topic", "orders")]
            )),
            9.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_partition_is_leader",
                &[("broker", "2"), ("topic", "orders")]
            )),
            0.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_partition_isr_size",
                &[("partition", "1")]
            )),
            2.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_broker_produce_bytes_total",
                &[("broker", "1")]
            )),
            500.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_broker_fetch_requests_total",
                &[("kind", "follower")]
            )),
            40.0
        );
        assert_eq!(
            number(value(&text, "yak_cluster_under_replicated_partitions", &[])),
            1.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_child_restarts_total",
                &[("child", "broker-1")]
            )),
            2.0
        );
        assert_eq!(
            number(value(&text, "yak_child_up", &[("child", "broker-1")])),
            0.0
        );
        assert_eq!(
            number(value(&text, "yak_group_lag", &[("partition", "0")])),
            7.0
        );
        assert_eq!(
            number(value(
                &text,
                "yak_scrape_errors_total",
                &[("target", "broker-1")]
            )),
            3.0
        );
        let PrometheusValue::Histogram(h) = value(
            &text,
            "yak_broker_produce_latency_seconds",
            &[("broker", "1")],
        ) else {
            panic!("produce latency is not a histogram")
        };
        assert_eq!((h.count, h.sum.map(|s| s.as_f64())), (Some(5), Some(2.0)));
        let buckets: Vec<(f64, f64)> = h
            .buckets
            .iter()
            .map(|b| (b.upper_bound, b.count.as_f64()))
            .collect();
        assert_eq!(buckets, [(0.001, 3.0), (0.25, 4.0), (f64::INFINITY, 5.0)]);
    }

    #[test]
    fn given_empty_snapshot_when_rendering_should_still_parse_with_every_family_declared() {
        let text = render(&Snapshot::default());
        let exposition = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(exposition
            .families
            .contains_key("yak_cluster_offline_partitions"));
        assert!(exposition
            .families
            .contains_key("yak_broker_fsync_latency_seconds"));
        assert_eq!(
            number(value(&text, "yak_scrape_duration_seconds", &[])),
            0.0
        );
        assert!(
            !text.contains("yak_cluster_offline_partitions 0"),
            "no ZooKeeper answer: no sample"
        );
    }

    #[test]
    fn given_awkward_label_values_when_rendering_should_escape_them() {
        let text = render(&full());
        assert!(
            text.contains(r#"yak_partition_isr_size{topic="a\"b\\c",partition="1",broker="1"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"yak_group_members{group="g\nx"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn given_histogram_when_rendering_should_write_cumulative_buckets_sum_and_count() {
        let text = render(&full());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("yak_broker_fsync_latency_seconds") && l.contains("broker=\"2\"")
            })
            .collect();
        assert_eq!(
            lines,
            [
                r#"yak_broker_fsync_latency_seconds_bucket{broker="2",le="0.001"} 4"#,
                r#"yak_broker_fsync_latency_seconds_bucket{broker="2",le="0.25"} 4"#,
                r#"yak_broker_fsync_latency_seconds_bucket{broker="2",le="+Inf"} 4"#,
                r#"yak_broker_fsync_latency_seconds_sum{broker="2"} 0.0012"#,
                r#"yak_broker_fsync_latency_seconds_count{broker="2"} 4"#,
            ]
        );
    }

    #[test]
    fn given_report_without_inf_bucket_when_rendering_should_add_one() {
        let mut s = full();
        s.brokers[0].stats.fsync_latency = histogram(vec![1, 2], 10);
        let text = render(&s);
        parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(
            text.contains(r#"yak_broker_fsync_latency_seconds_bucket{broker="1",le="+Inf"} 3"#),
            "{text}"
        );
    }
}
