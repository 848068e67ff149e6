//! Partition assignment for consumer groups: range and round-robin, as
//! Kafka's assignors of the same names, per topic. Pure functions.
//!
//! Kafka computes the assignment in the group leader (a client); YaK's
//! coordinator computes it itself, so every member gets its partitions from
//! ZooKeeper's answer.

use crate::protocol::Assignor;
use std::collections::BTreeMap;

/// Assigns each topic's partitions over the members that read it.
/// `members` is `(member id, topic)`; members are ordered by id, so the
/// result depends only on the set of members. Every member appears in the
/// result, possibly with no partitions; every partition of a subscribed
/// topic goes to exactly one member.
pub fn assign(
    assignor: Assignor,
    members: &[(String, String)],
    partitions_of: impl Fn(&str) -> u32,
) -> BTreeMap<String, Vec<u32>> {
    let mut by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member, topic) in members {
        by_topic
            .entry(topic.as_str())
            .or_default()
            .push(member.as_str());
    }
    let mut out: BTreeMap<String, Vec<u32>> = members
        .iter()
        .map(|(m, _)| (m.clone(), Vec::new()))
        .collect();
    for (topic, mut readers) in by_topic {
        readers.sort_unstable();
        readers.dedup();
        let n = partitions_of(topic);
        let m = readers.len() as u32;
        for p in 0..n {
            let index = match assignor {
                Assignor::RoundRobin => p % m,
                Assignor::Range => range_owner(p, n, m),
            };
            if let Some(list) = out.get_mut(readers[index as usize]) {
                list.push(p);
            }
        }
    }
    out
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

    fn members(ids: &[&str], topic: &str) -> Vec<(String, String)> {
        ids.iter()
            .map(|m| (m.to_string(), topic.to_string()))
            .collect()
    }

    fn lists(a: &BTreeMap<String, Vec<u32>>) -> Vec<Vec<u32>> {
        a.values().cloned().collect()
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
        ];
        for (assignor, n, ids, want) in cases {
            let got = assign(*assignor, &members(ids, "t"), |_| *n);
            let want: Vec<Vec<u32>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(lists(&got), want, "{assignor:?} {n} over {ids:?}");
        }
    }

    #[test]
    fn given_any_shape_when_assigning_should_give_every_partition_to_exactly_one_member() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for n in 0..20u32 {
                for m in 1..8usize {
                    let ids: Vec<String> = (0..m).map(|i| format!("m{i:02}")).collect();
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let got = assign(assignor, &members(&refs, "t"), |_| n);
                    let mut all: Vec<u32> = got.values().flatten().copied().collect();
                    all.sort_unstable();
                    assert_eq!(all, (0..n).collect::<Vec<_>>(), "{assignor:?} n={n} m={m}");
                    let sizes: Vec<usize> = got.values().map(Vec::len).collect();
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
        let got = assign(Assignor::Range, &ms, |t| if t == "x" { 4 } else { 2 });
        assert_eq!(lists(&got), vec![vec![0, 1], vec![2, 3], vec![0, 1]]);
    }
}
