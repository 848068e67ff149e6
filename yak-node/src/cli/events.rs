//! `cluster events [--json] [--follow] [--since DURATION]`: the cluster's
//! event history, oldest first, one line per event (a UTC timestamp and
//! what happened, with its cause) or one JSON object per line with the
//! stable names of [`crate::protocol::events`]. With `--follow` it keeps
//! asking ZooKeeper for newer events until interrupted or stdout closes.
//!
//! Owns parsing `--since` and the human wording. Never keeps events of its
//! own: ZooKeeper's history is the only one.

use crate::client::Admin;
use crate::limits::EVENTS_FOLLOW_POLL_MS;
use crate::protocol::{ClusterEvent, EventKind, Reason};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Parses `500ms`, `30s`, `5m`, `2h` or `1d` (a number, then its unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}': expected a number then ms, s, m, h or d (e.g. 30s)"))?;
    let ms_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "'{text}': the unit must be ms, s, m, h or d (e.g. 30s)"
            ))
        }
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// Runs `cluster events`.
pub fn run(cluster: &Path, json: bool, follow: bool, since: Option<Duration>) -> CliResult {
    let mut admin = Admin::connect(cluster)?;
    let since_ms = since.map(|d| now_ms().saturating_sub(d.as_millis() as i64));
    let mut last = None;
    let mut out = std::io::stdout().lock();
    let mut first = true;
    loop {
        match admin.events(if last.is_some() { None } else { since_ms }, last) {
            Ok(events) => {
                for e in &events {
                    let line = if json {
                        serde_json::to_string(e)?
                    } else {
                        human(e)
                    };
                    if writeln!(out, "{line}").is_err() {
                        return Ok(()); // stdout closed: nobody is reading
                    }
                }
                if out.flush().is_err() {
                    return Ok(());
                }
                if let Some(e) = events.last() {
                    last = Some(e.seq);
                }
            }
            // The first answer must come; later, ZooKeeper may be restarting.
            Err(e) if first || !follow => return Err(e.into()),
            Err(_) => {}
        }
        first = false;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(EVENTS_FOLLOW_POLL_MS));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `HH:MM:SS.mmm` (UTC) of a Unix millisecond.
pub fn clock(time_ms: i64) -> String {
    let ms_of_day = time_ms.rem_euclid(86_400_000);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

fn ids(v: &[u32]) -> String {
    format!(
        "[{}]",
        v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    )
}

fn broker(b: Option<u32>) -> String {
    b.map_or_else(|| "none".into(), |b| b.to_string())
}

/// Why, in words; `who` is the broker the reason is about.
fn cause(reason: Reason, who: Option<u32>) -> String {
    let who = who.map_or_else(|| "the broker".to_string(), |b| format!("broker {b}"));
    match reason {
        Reason::SessionExpired => format!("{who}'s session expired"),
        Reason::ReportedDown => format!("{who} reported down by the supervisor"),
        Reason::NotAlive => format!("{who} not alive"),
        Reason::IsrMemberReturned => "an ISR member returned".into(),
        Reason::FollowerLagging => "a follower fell behind".into(),
        Reason::FollowerCaughtUp => "a follower caught up".into(),
        Reason::PreferredLeader => "back to the preferred replica".into(),
    }
}

/// One event as a line for people: a UTC timestamp, then what happened
/// and why.
pub fn human(e: &ClusterEvent) -> String {
    let what = match &e.kind {
        EventKind::LeaderElected { topic, partition, old_leader, new_leader, leader_epoch, reason } => format!(
            "leader of {topic}-{partition}: {} → {new_leader} (epoch {leader_epoch}), {}",
            broker(*old_leader),
            cause(*reason, *old_leader)
        ),
        EventKind::PartitionOffline { topic, partition, old_leader, leader_epoch, isr, reason } => format!(
            "{topic}-{partition} offline (epoch {leader_epoch}): leader {} gone, {}; waiting for ISR {}",
            broker(*old_leader),
            cause(*reason, *old_leader),
            ids(isr)
        ),
        EventKind::PartitionOnline { topic, partition, leader, leader_epoch } => {
            format!("{topic}-{partition} online again: leader {leader} (epoch {leader_epoch})")
        }
        EventKind::IsrShrunk { topic, partition, before, after, reason, .. } => {
            let gone = before.iter().copied().find(|b| !after.contains(b));
            format!("ISR of {topic}-{partition} shrunk: {} → {}, {}", ids(before), ids(after), cause(*reason, gone))
        }
        EventKind::IsrExpanded { topic, partition, before, after, reason, .. } => {
            let joined = after.iter().copied().find(|b| !before.contains(b));
            let who = joined.map_or_else(String::new, |b| format!(" (broker {b})"));
            format!("ISR of {topic}-{partition} expanded: {} → {}, {}{who}", ids(before), ids(after), cause(*reason, joined))
        }
        EventKind::BrokerRegistered { broker, pid, old_pid } => match old_pid {
            Some(old) if old != pid => format!("broker {broker} registered (pid {pid}, was {old})"),
            _ => format!("broker {broker} registered (pid {pid})"),
        },
        EventKind::BrokerSessionExpired { broker, reason } => match reason {
            Reason::ReportedDown => format!("broker {broker}'s session ended: reported down by the supervisor"),
            Reason::SessionExpired => format!("broker {broker}'s session expired: no heartbeat within the session timeout"),
            other => format!("broker {broker}'s session ended: {}", cause(*other, Some(*broker))),
        },
        EventKind::ProcessRestarted(r) => {
            let how = match (&r.signal, r.exit_code) {
                (Some(signal), _) => format!("killed by {signal}"),
                (None, Some(code)) => format!("exited with status {code}"),
                (None, None) => "ended".into(),
            };
            format!(
                "{} restarted by the supervisor: pid {} → {}, {how} at {}, restarted after {} ms",
                r.child,
                r.old_pid,
                r.new_pid,
                clock(r.exited_at_ms),
                r.restart_delay_ms
            )
        }
        EventKind::ZookeeperStarted { pid, restart } => {
            if *restart {
                format!("zookeeper started (pid {pid}), metadata and events replayed from disk")
            } else {
                format!("zookeeper started (pid {pid}) on a new data dir")
            }
        }
        EventKind::TopicCreated { topic, topic_id, partitions, replication_factor } => format!(
            "topic {topic} created (id {topic_id}): {partitions} partition{}, replication factor {replication_factor}",
            if *partitions == 1 { "" } else { "s" }
        ),
        EventKind::TopicDeleted { topic, topic_id } => format!("topic {topic} deleted (id {topic_id})"),
        EventKind::GroupRebalanced { group, generation, members } => {
            format!("group {group} rebalanced: generation {generation}, {} members", members.len())
        }
        EventKind::ReassignmentStarted { .. }
        | EventKind::ReassignmentReplicaCaughtUp { .. }
        | EventKind::ReassignmentCompleted { .. }
        | EventKind::ReassignmentCancelled { .. } => reassignment_text(&e.kind),
    };
    format!("{} {what}", clock(e.time_ms))
}

/// The wording of a reassignment event (the watch view uses it too).
pub(crate) fn reassignment_text(kind: &EventKind) -> String {
    match kind {
        EventKind::ReassignmentStarted {
            topic,
            partition,
            replicas,
            target,
            ..
        } => format!(
            "{topic}-{partition} reassignment started: replicas {} -> {}",
            ids(replicas),
            ids(target)
        ),
        EventKind::ReassignmentReplicaCaughtUp {
            topic,
            partition,
            broker,
        } => {
            format!("{topic}-{partition} reassignment: new replica {broker} caught up and joined the ISR")
        }
        EventKind::ReassignmentCompleted {
            topic,
            partition,
            replicas,
        } => {
            format!(
                "{topic}-{partition} reassignment completed: replicas {}",
                ids(replicas)
            )
        }
        EventKind::ReassignmentCancelled {
            topic,
            partition,
            replicas,
            target,
        } => format!(
            "{topic}-{partition} reassignment to {} cancelled: replicas back to {}",
            ids(target),
            ids(replicas)
        ),
        other => other.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ProcessRestart;

    #[test]
    fn given_durations_when_parsing_should_accept_units_and_refuse_the_rest() {
        let ok = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("0s", 0),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "-5s",
            "1.5s",
            "99999999999999999999d",
            "30 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn given_events_when_printed_for_people_should_give_time_and_cause() {
        let t = 12 * 3_600_000 + 60_000 + 2_345; // 12:01:02.345 on 1 January 1970
        let e = ClusterEvent {
            seq: 1,
            time_ms: t,
            kind: EventKind::LeaderElected {
                topic: "orders".into(),
                partition: 0,
                old_leader: Some(2),
                new_leader: 3,
                leader_epoch: 5,
                reason: Reason::SessionExpired,
            },
        };
        assert_eq!(
            human(&e),
            "12:01:02.345 leader of orders-0: 2 → 3 (epoch 5), broker 2's session expired"
        );
        let r = ClusterEvent {
            seq: 2,
            time_ms: t + 100,
            kind: EventKind::ProcessRestarted(ProcessRestart {
                child: "broker-2".into(),
                broker: Some(2),
                old_pid: 10,
                new_pid: 11,
                exit_code: None,
                signal: Some("SIGKILL".into()),
                restart_delay_ms: 100,
                exited_at_ms: t - 5,
            }),
        };
        assert_eq!(
            human(&r),
            "12:01:02.445 broker-2 restarted by the supervisor: pid 10 → 11, killed by SIGKILL at 12:01:02.340, restarted after 100 ms"
        );
        assert_eq!(clock(-1), "23:59:59.999");
    }
}
