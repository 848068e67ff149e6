//! Group members as Python confluent-kafka consumer processes: start one
//! with a script, collect the lines it prints, wait until a set of members
//! settles, close; and the topic and group helpers the group tests share.

use super::{python, KafkaCluster};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Reads the partitions a member owns now from the lines it printed.
pub type OwnedOf = fn(&[String]) -> Option<BTreeSet<u32>>;

/// One consumer process and the lines it printed.
pub struct Member {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    owned_of: OwnedOf,
}

/// Forwards a child's stdout lines to a channel.
pub fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Member {
    /// Runs `script` with `args`; `owned_of` reads its ownership lines.
    pub fn start(script: &str, args: &[&str], owned_of: OwnedOf) -> Member {
        let mut child = python(script, args);
        let lines = lines_of(&mut child);
        Member {
            child,
            lines,
            seen: Vec::new(),
            owned_of,
        }
    }

    /// Takes every line printed so far.
    pub fn drain(&mut self) {
        self.seen.extend(self.lines.try_iter());
    }

    /// The partitions it owns now.
    pub fn owned(&self) -> Option<BTreeSet<u32>> {
        (self.owned_of)(&self.seen)
    }

    /// Asks it to commit, close and exit (it prints `closed`); returns
    /// every line it printed.
    pub fn close(mut self) -> Vec<String> {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"close\n").unwrap();
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.seen.iter().any(|l| l == "closed") {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            assert!(Instant::now() < deadline, "no close: {:?}", self.seen);
        }
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "consumer did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `members` until `done` holds, at most `secs` seconds.
pub fn settle(
    members: &mut [&mut Member],
    secs: u64,
    what: &str,
    done: impl Fn(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for m in members.iter_mut() {
            m.drain();
        }
        if done(members) {
            return;
        }
        let state: Vec<_> = members
            .iter()
            .map(|m| m.seen.iter().rev().take(3).cloned().collect::<Vec<_>>())
            .collect();
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every member owns `sizes[i]` partitions and together they own `0..total`
/// once.
pub fn split(members: &[&mut Member], sizes: &[usize], total: u32) -> bool {
    let owned: Vec<BTreeSet<u32>> = members.iter().filter_map(|m| m.owned()).collect();
    let mut got: Vec<usize> = owned.iter().map(BTreeSet::len).collect();
    got.sort_unstable();
    let union: BTreeSet<u32> = owned.iter().flatten().copied().collect();
    let count: usize = owned.iter().map(BTreeSet::len).sum();
    owned.len() == members.len()
        && got == sizes
        && union == (0..total).collect()
        && count == total as usize
}

/// Partitions listed as `p,p,...` (empty: none).
pub fn partitions(list: &str) -> BTreeSet<u32> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|p| p.trim().parse().unwrap())
        .collect()
}

pub fn create_topic(k: &KafkaCluster, topic: &str, partitions: u32) {
    k.cluster.yak_ok(&[
        "topic",
        "create",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--replication-factor",
        "1",
    ]);
}

/// Produces `v{from}..v{to}` with keys spread over the partitions.
pub fn produce(k: &KafkaCluster, topic: &str, from: usize, to: usize) {
    let input: String = (from..to).map(|i| format!("k{i}:v{i}\n")).collect();
    k.cluster.yak_stdin_ok(
        &["produce", "--topic", topic, "--key-separator", ":"],
        &input,
    );
}

/// `v{i}` for every i of `range`.
pub fn values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("v{i}")).collect()
}

/// `group describe --json`, or `Null` while the group does not exist yet.
pub fn try_describe(k: &KafkaCluster, group: &str) -> Value {
    let out = k.cluster.yak(&["group", "describe", group, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// `group describe --json`.
pub fn describe(k: &KafkaCluster, group: &str) -> Value {
    serde_json::from_str(&k.cluster.yak_ok(&["group", "describe", group, "--json"])).unwrap()
}
