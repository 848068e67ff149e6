//! Partition assignment for consumer groups: range, round-robin and sticky,
//! as Kafka's assignors of the same names, over members that may subscribe
//! to different sets of topics (only a topic's subscribers get its
//! partitions). Pure functions.
//!
//! Kafka computes the assignment in the group leader (a client); YaK's
//! coordinator computes it itself, so every member gets its partitions from
//! ZooKeeper's answer.

use crate::protocol::Assignor;
use std::collections::{BTreeMap, BTreeSet};

/// Member id → topic → partitions (ascending). Every member appears, with
/// every topic it subscribes to, possibly with no partitions.
pub type Assignment = BTreeMap<String, BTreeMap<String, Vec<u32>>>;

/// One member's subscription: its id and the topics it reads.
pub type Subscription = (String, Vec<String>);

/// Assigns the partitions of every subscribed topic over the members that
/// subscribe to it. Members are taken in id order, so the result depends
/// only on the subscriptions (and, for sticky, on `previous`). Every
/// partition of a subscribed topic goes to exactly one of its subscribers.
/// - range: per topic, contiguous ranges over that topic's subscribers;
/// - round-robin: every topic-partition in (topic, partition) order dealt
///   to the members in turn, skipping members not subscribed to its topic;
/// - sticky: each member keeps what it had in `previous` (if it still
///   subscribes and the partition still exists), the rest goes to the
///   least loaded subscriber, then partitions move from the most to the
///   least loaded member until no move would narrow the spread.
pub fn assign(
    assignor: Assignor,
    members: &[Subscription],
    partitions_of: impl Fn(&str) -> u32,
    previous: &Assignment,
) -> Assignment {
    let subs = Subs::new(members, partitions_of);
    let owners: Vec<(&str, &str, u32)> = match assignor {
        Assignor::Range => subs.range(),
        Assignor::RoundRobin => subs.round_robin(),
        Assignor::Sticky => subs.sticky(previous),
    };
    let mut out: Assignment = subs
        .topics_of
        .iter()
        .map(|(m, ts)| {
            let topics = ts.iter().map(|t| (t.to_string(), Vec::new())).collect();
            (m.to_string(), topics)
        })
        .collect();
    for (member, topic, p) in owners {
        if let Some(list) = out.get_mut(member).and_then(|ts| ts.get_mut(topic)) {
            list.push(p);
        }
    }
    for ps in out.values_mut().flat_map(|ts| ts.values_mut()) {
        ps.sort_unstable();
    }
    out
}

/// The subscriptions, indexed both ways.
struct Subs<'a> {
    /// Member → topics, members in id order.
    topics_of: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Topic → (partition count, subscribers in id order).
    readers_of: BTreeMap<&'a str, (u32, Vec<&'a str>)>,
}

impl<'a> Subs<'a> {
    fn new(members: &'a [Subscription], partitions_of: impl Fn(&str) -> u32) -> Subs<'a> {
        let mut topics_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (m, ts) in members {
            topics_of
                .entry(m.as_str())
                .or_default()
                .extend(ts.iter().map(String::as_str));
        }
        let mut readers_of: BTreeMap<&str, (u32, Vec<&str>)> = BTreeMap::new();
        for (m, ts) in &topics_of {
            for t in ts {
                readers_of
                    .entry(t)
                    .or_insert_with(|| (partitions_of(t), Vec::new()))
                    .1
                    .push(m);
            }
        }
        Subs {
            topics_of,
            readers_of,
        }
    }

    /// Every subscribed topic-partition, in (topic, partition) order.
    fn all(&self) -> impl Iterator<Item = (&'a str, u32)> + '_ {
        self.readers_of
            .iter()
            .flat_map(|(t, (n, _))| (0..*n).map(move |p| (*t, p)))
    }

    fn range(&self) -> Vec<(&'a str, &'a str, u32)> {
        let mut out = Vec::new();
        for (topic, (n, readers)) in &self.readers_of {
            let m = readers.len() as u32;
            for p in 0..*n {
                out.push((readers[range_owner(p, *n, m) as usize], *topic, p));
            }
        }
        out
    }

    fn round_robin(&self) -> Vec<(&'a str, &'a str, u32)> {
        let ids: Vec<&str> = self.topics_of.keys().copied().collect();
        let mut out = Vec::new();
        let mut next = 0usize;
        for (topic, p) in self.all() {
            // Every topic here has a subscriber, so this finds one within a lap.
            let found = (0..ids.len())
                .map(|k| (next + k) % ids.len())
                .find(|&i| self.topics_of[ids[i]].contains(topic));
            if let Some(i) = found {
                out.push((ids[i], topic, p));
                next = i + 1;
            }
        }
        out
    }

    fn sticky(&self, previous: &Assignment) -> Vec<(&'a str, &'a str, u32)> {
        let mut held: BTreeMap<&str, Vec<(&str, u32)>> =
            self.topics_of.keys().map(|m| (*m, Vec::new())).collect();
        let mut taken: BTreeSet<(&str, u32)> = BTreeSet::new();
        for (member, topics) in &self.topics_of {
            let Some(before) = previous.get(*member) else {
                continue;
            };
            for (topic, parts) in before {
                let Some((topic, (n, _))) = self.readers_of.get_key_value(topic.as_str()) else {
                    continue;
                };
                if !topics.contains(topic) {
                    continue;
                }
                for &p in parts.iter().filter(|&&p| p < *n) {
                    if taken.insert((topic, p)) {
                        held.entry(member).or_default().push((topic, p));
                    }
                }
            }
        }
        let load =
            |held: &BTreeMap<&str, Vec<(&str, u32)>>, m: &str| held.get(m).map_or(0, Vec::len);
        for (topic, p) in self.all() {
            if taken.contains(&(topic, p)) {
                continue;
            }
            let readers = &self.readers_of[topic].1;
            if let Some(m) = readers.iter().min_by_key(|m| load(&held, m)) {
                held.entry(m).or_default().push((topic, p));
            }
        }
        // Each move lowers the sum of squared loads, so this ends.
        while let Some((from, index, to)) = self.best_move(&held) {
            let tp = held.get_mut(from).map(|v| v.remove(index));
            if let Some(tp) = tp {
                held.entry(to).or_default().push(tp);
            }
        }
        held.into_iter()
            .flat_map(|(m, tps)| tps.into_iter().map(move |(t, p)| (m, t, p)))
            .collect()
    }

    /// A partition the most loaded member can hand to a subscriber holding
    /// at least two fewer: (from, index in its list, to).
    fn best_move(
        &self,
        held: &BTreeMap<&'a str, Vec<(&'a str, u32)>>,
    ) -> Option<(&'a str, usize, &'a str)> {
        let mut by_load: Vec<(&str, usize)> = held.iter().map(|(m, v)| (*m, v.len())).collect();
        by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (from, n) in by_load {
            let tps = held.get(from)?;
            for (index, (topic, _)) in tps.iter().enumerate().rev() {
                let to = self.readers_of[topic]
                    .1
                    .iter()
                    .map(|m| (*m, held.get(m).map_or(0, Vec::len)))
                    .filter(|(_, l)| l + 1 < n)
                    .min_by_key(|(_, l)| *l);
                if let Some((to, _)) = to {
                    return Some((from, index, to));
                }
            }
        }
        None
    }
}

/// Range: the first `n % m` members get `n / m + 1` partitions, the rest `n / m`.
fn range_owner(p: u32, n: u32, m: u32) -> u32 {
    let (base, extra) = (n / m, n % m);
    let big = extra * (base + 1);
    if p < big {
        p / (base + 1)
    } else {
        extra + (p - big) / base.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[&str], topic: &str) -> Vec<Subscription> {
        ids.iter()
            .map(|m| (m.to_string(), vec![topic.to_string()]))
            .collect()
    }

    fn sub(id: &str, topics: &[&str]) -> Subscription {
        (
            id.to_string(),
            topics.iter().map(|t| t.to_string()).collect(),
        )
    }

    /// Partitions of topic `t` per member, in member order.
    fn lists(a: &Assignment, t: &str) -> Vec<Vec<u32>> {
        a.values()
            .map(|ts| ts.get(t).cloned().unwrap_or_default())
            .collect()
    }

    /// Number of partitions per member, in member order.
    fn loads(a: &Assignment) -> Vec<usize> {
        a.values()
            .map(|ts| ts.values().map(Vec::len).sum())
            .collect()
    }

    /// Checks every partition of every topic went to exactly one subscriber.
    fn assert_complete(a: &Assignment, subs: &[Subscription], counts: &[(&str, u32)]) {
        for (t, n) in counts {
            let mut got: Vec<u32> = a
                .values()
                .filter_map(|ts| ts.get(*t))
                .flatten()
                .copied()
                .collect();
            got.sort_unstable();
            assert_eq!(got, (0..*n).collect::<Vec<_>>(), "topic {t}: {a:?}");
        }
        for (m, ts) in a {
            let mine = &subs.iter().find(|s| &s.0 == m).expect("a member").1;
            for (t, ps) in ts {
                assert!(
                    mine.contains(t) || ps.is_empty(),
                    "{m} got {t} unsubscribed"
                );
            }
        }
    }

    /// Assignor, partition count, member ids, expected partitions per member.
    type Case<'a> = (Assignor, u32, &'a [&'a str], &'a [&'a [u32]]);

    #[test]
    fn given_members_and_partitions_when_assigning_should_match_kafka_assignors() {
        let cases: &[Case<'_>] = &[
            (
                Assignor::Range,
                6,
                &["a", "b", "c"],
                &[&[0, 1], &[2, 3], &[4, 5]],
            ),
            (
                Assignor::Range,
                7,
                &["a", "b", "c"],
                &[&[0, 1, 2], &[3, 4], &[5, 6]],
            ),
            (Assignor::Range, 2, &["a", "b", "c"], &[&[0], &[1], &[]]),
            (
                Assignor::RoundRobin,
                6,
                &["a", "b", "c"],
                &[&[0, 3], &[1, 4], &[2, 5]],
            ),
            (
                Assignor::RoundRobin,
                7,
                &["a", "b", "c"],
                &[&[0, 3, 6], &[1, 4], &[2, 5]],
            ),
            (Assignor::Range, 3, &["a"], &[&[0, 1, 2]]),
            (Assignor::Range, 0, &["a", "b"], &[&[], &[]]),
            (Assignor::Sticky, 4, &["a", "b"], &[&[0, 2], &[1, 3]]),
        ];
        for (assignor, n, ids, want) in cases {
            let got = assign(*assignor, &members(ids, "t"), |_| *n, &Assignment::new());
            let want: Vec<Vec<u32>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(lists(&got, "t"), want, "{assignor:?} {n} over {ids:?}");
        }
    }

    #[test]
    fn given_any_shape_when_assigning_should_give_every_partition_to_exactly_one_member() {
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
            for n in 0..20u32 {
                for m in 1..8usize {
                    let ids: Vec<String> = (0..m).map(|i| format!("m{i:02}")).collect();
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let subs = members(&refs, "t");
                    let got = assign(assignor, &subs, |_| n, &Assignment::new());
                    assert_complete(&got, &subs, &[("t", n)]);
                    let sizes = loads(&got);
                    let (lo, hi) = (sizes.iter().min().copied(), sizes.iter().max().copied());
                    assert!(
                        hi.unwrap_or(0) - lo.unwrap_or(0) <= 1,
                        "balanced: {sizes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn given_members_of_two_topics_when_assigning_should_split_each_topic_among_its_readers() {
        let mut ms = members(&["a", "b"], "x");
        ms.extend(members(&["c"], "y"));
        let got = assign(
            Assignor::Range,
            &ms,
            |t| if t == "x" { 4 } else { 2 },
            &Assignment::new(),
        );
        assert_eq!(lists(&got, "x"), vec![vec![0, 1], vec![2, 3], vec![]]);
        assert_eq!(lists(&got, "y"), vec![vec![], vec![], vec![0, 1]]);
        assert!(!got["a"].contains_key("y"), "a does not subscribe to y");
    }

    #[test]
    fn given_two_members_on_two_topics_when_assigning_should_split_both_like_kafka() {
        let subs = [sub("a", &["x", "y"]), sub("b", &["x", "y"])];
        let three = |_: &str| 3;
        // Range works per topic: the first member gets the extra of each.
        let range = assign(Assignor::Range, &subs, three, &Assignment::new());
        assert_eq!(lists(&range, "x"), vec![vec![0, 1], vec![2]]);
        assert_eq!(lists(&range, "y"), vec![vec![0, 1], vec![2]]);
        // Round-robin deals x-0..x-2, y-0..y-2 in turn: 3 and 3.
        let rr = assign(Assignor::RoundRobin, &subs, three, &Assignment::new());
        assert_eq!(lists(&rr, "x"), vec![vec![0, 2], vec![1]]);
        assert_eq!(lists(&rr, "y"), vec![vec![1], vec![0, 2]]);
        let sticky = assign(Assignor::Sticky, &subs, three, &Assignment::new());
        assert_eq!(loads(&sticky), vec![3, 3]);
        for a in [range, rr, sticky] {
            assert_complete(&a, &subs, &[("x", 3), ("y", 3)]);
        }
    }

    #[test]
    fn given_different_subscriptions_when_dealing_round_robin_should_skip_non_subscribers() {
        // Kafka's example: a reads x, b reads x and y, c reads y and z.
        let subs = [
            sub("a", &["x"]),
            sub("b", &["x", "y"]),
            sub("c", &["y", "z"]),
        ];
        let got = assign(Assignor::RoundRobin, &subs, |_| 2, &Assignment::new());
        assert_eq!(lists(&got, "x"), vec![vec![0], vec![1], vec![]]);
        assert_eq!(lists(&got, "y"), vec![vec![], vec![1], vec![0]]);
        assert_eq!(lists(&got, "z"), vec![vec![], vec![], vec![0, 1]]);
        assert_complete(&got, &subs, &[("x", 2), ("y", 2), ("z", 2)]);
    }

    #[test]
    fn given_previous_assignment_when_a_member_joins_sticky_should_move_only_what_it_takes() {
        let two = [sub("a", &["x", "y"]), sub("b", &["x", "y"])];
        let six = |_: &str| 6;
        let before = assign(Assignor::Sticky, &two, six, &Assignment::new());
        let mut three = two.to_vec();
        three.push(sub("c", &["x", "y"]));
        let after = assign(Assignor::Sticky, &three, six, &before);
        assert_complete(&after, &three, &[("x", 6), ("y", 6)]);
        assert_eq!(loads(&after), vec![4, 4, 4]);
        for m in ["a", "b"] {
            for (t, ps) in &after[m] {
                assert!(
                    ps.iter().all(|p| before[m][t].contains(p)),
                    "{m} kept only its own partitions of {t}: {before:?} → {after:?}"
                );
            }
        }
        // Round-robin, by contrast, reshuffles what a and b held.
        let rr_before = assign(Assignor::RoundRobin, &two, six, &Assignment::new());
        let rr_after = assign(Assignor::RoundRobin, &three, six, &rr_before);
        assert_ne!(rr_before["b"]["x"], rr_after["b"]["x"]);
    }

    #[test]
    fn given_member_drops_a_topic_when_sticky_should_give_that_topic_to_its_subscribers() {
        let both = [sub("a", &["x", "y"]), sub("b", &["x", "y"])];
        let four = |_: &str| 4;
        let before = assign(Assignor::Sticky, &both, four, &Assignment::new());
        let changed = [sub("a", &["x"]), sub("b", &["x", "y"])];
        let after = assign(Assignor::Sticky, &changed, four, &before);
        assert_complete(&after, &changed, &[("x", 4), ("y", 4)]);
        assert_eq!(after["b"]["y"], vec![0, 1, 2, 3]);
        assert_eq!(loads(&after), vec![4, 4], "a takes x over to balance");
    }
}
