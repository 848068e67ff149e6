//! Kafka consumer groups (the classic protocol, the leader member assigns)
//! served by YaK's one coordinator: confluent-kafka group consumers with
//! the range, roundrobin and cooperative-sticky assignors, kcat -G, static
//! membership, kill -9 of a member, committed offsets shared with `yak-node
//! group describe`. Needs what `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use bytes::BytesMut;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_support::members::{
    create_topic, describe, lines_of, partitions, produce, settle, split, try_describe, values,
    Member, OwnedOf,
};
use kafka_support::{kafka_cluster, KafkaCluster};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A group consumer: prints `assigned P,P`, `revoked P,P`, `msg P VALUE`,
/// commits what it read when partitions are revoked, and on `close`
/// (stdin) commits, closes and prints `closed`.
const CONSUMER: &str = r#"
import sys, threading
from confluent_kafka import Consumer, KafkaException
bs, group, topic, strategy, inst = sys.argv[1:6]
conf = {"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 3000,
        "heartbeat.interval.ms": 100, "partition.assignment.strategy": strategy,
        "client.id": "py-" + inst, "topic.metadata.refresh.interval.ms": 1000}
if inst != "-":
    conf["group.instance.id"] = inst
c = Consumer(conf)
owned = set()
def show():
    print("assigned", ",".join(str(p) for p in sorted(owned)), flush=True)
def on_assign(c, ps):
    owned.update(p.partition for p in ps); show()
def on_revoke(c, ps):
    try:
        c.commit(asynchronous=False)
    except KafkaException:
        pass
    print("revoked", ",".join(str(p.partition) for p in ps), flush=True)
    owned.difference_update(p.partition for p in ps); show()
def on_lost(c, ps):
    print("revoked", ",".join(str(p.partition) for p in ps), flush=True)
    owned.difference_update(p.partition for p in ps); show()
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
stop = threading.Event()
def watch():
    for line in sys.stdin:
        if line.strip() == "close":
            break
    stop.set()
threading.Thread(target=watch, daemon=True).start()
while not stop.is_set():
    m = c.poll(0.1)
    if m is None:
        continue
    if m.error():
        print("error", m.error(), flush=True)
        continue
    print("msg", m.partition(), m.value().decode(), flush=True)
try:
    c.commit(asynchronous=False)
except KafkaException as e:
    print("commit", e, flush=True)
c.close()
print("closed", flush=True)
"#;

/// A member running [`CONSUMER`]; its ownership is its last `assigned` line.
fn start(k: &KafkaCluster, group: &str, topic: &str, strategy: &str, inst: &str) -> Member {
    let owned_of: OwnedOf = |seen| {
        let last = seen.iter().rev().find(|l| l.starts_with("assigned"))?;
        Some(partitions(last.trim_start_matches("assigned").trim()))
    };
    Member::start(
        CONSUMER,
        &[&k.bootstrap(), group, topic, strategy, inst],
        owned_of,
    )
}

/// What a member read.
trait Reads {
    /// `(partition, value)` of every message read.
    fn messages(&self) -> Vec<(u32, String)>;
}

impl Reads for Member {
    fn messages(&self) -> Vec<(u32, String)> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("msg "))
            .map(|l| {
                let (p, v) = l.split_once(' ').unwrap();
                (p.parse().unwrap(), v.to_string())
            })
            .collect()
    }
}

#[test]
fn given_three_range_consumers_when_reading_6000_messages_should_split_2_2_2_read_each_once_and_resume_from_commits(
) {
    let k = kafka_cluster(3);
    create_topic(&k, "gt", 6);
    let mut a = start(&k, "g1", "gt", "range", "-");
    let mut b = start(&k, "g1", "gt", "range", "-");
    let mut c = start(&k, "g1", "gt", "range", "-");
    settle(&mut [&mut a, &mut b, &mut c], 20, "a 2/2/2 split", |m| {
        split(m, &[2, 2, 2], 6)
    });
    produce(&k, "gt", 0, 6000);
    settle(
        &mut [&mut a, &mut b, &mut c],
        30,
        "6000 messages read",
        |m| m.iter().map(|m| m.messages().len()).sum::<usize>() >= 6000,
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut all = Vec::new();
    for m in [&mut a, &mut b, &mut c] {
        m.drain();
        let owned = m.owned().unwrap();
        let msgs = m.messages();
        assert!(
            msgs.iter().all(|(p, _)| owned.contains(p)),
            "a member reads only its partitions"
        );
        all.extend(msgs.into_iter().map(|(_, v)| v));
    }
    assert_eq!(all.len(), 6000, "no message read twice");
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), values(0..6000));
    let d = describe(&k, "g1");
    let members: BTreeSet<&str> = d["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (members.len(), d["assignor"].as_str()),
        (3, Some("range")),
        "{d}"
    );
    for m in [a, b, c] {
        m.close();
    }
    let d = describe(&k, "g1");
    let committed: u64 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed_offset"].as_u64().unwrap())
        .sum();
    assert_eq!((committed, d["total_lag"].as_u64()), (6000, Some(0)), "{d}");
    // A restarted member reads only what was produced after the commits.
    produce(&k, "gt", 6000, 6600);
    let mut again = start(&k, "g1", "gt", "range", "-");
    settle(&mut [&mut again], 20, "600 new messages read", |m| {
        m[0].messages().len() >= 600
    });
    std::thread::sleep(Duration::from_millis(300));
    again.drain();
    let got: Vec<String> = again.messages().into_iter().map(|(_, v)| v).collect();
    assert_eq!(got.len(), 600);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), values(6000..6600));
    let reset = [
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "gt",
        "--to-earliest",
    ];
    assert!(
        !k.cluster.yak(&reset).status.success(),
        "no reset while the group has members"
    );
    again.close();
    k.cluster.yak_ok(&reset);
    let d = describe(&k, "g1");
    assert!(
        d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["committed_offset"] == 0),
        "{d}"
    );
}

#[test]
fn given_two_kcat_group_members_when_consuming_should_split_the_partitions_and_show_in_group_describe(
) {
    let k = kafka_cluster(1);
    create_topic(&k, "kt", 6);
    let kcat = || {
        Command::new("kcat")
            .args([
                "-b",
                &k.bootstrap(),
                "-G",
                "kg",
                "kt",
                "-q",
                "-u",
                "-f",
                "%s\\n",
            ])
            .args([
                "-X",
                "heartbeat.interval.ms=100",
                "-X",
                "session.timeout.ms=3000",
            ])
            .args(["-X", "auto.offset.reset=earliest"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut one = kcat();
    let mut two = kcat();
    let (l1, l2) = (lines_of(&mut one), lines_of(&mut two));
    let deadline = Instant::now() + Duration::from_secs(20);
    let split = loop {
        let d = try_describe(&k, "kg");
        let mut per_member: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for m in d["members"].as_array().into_iter().flatten() {
            let parts = m["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap());
            per_member
                .entry(m["member_id"].as_str().unwrap().into())
                .or_default()
                .extend(parts);
        }
        let counts: Vec<usize> = per_member.values().map(Vec::len).collect();
        if d["state"] == "stable" && counts == [3, 3] {
            break d;
        }
        assert!(Instant::now() < deadline, "kcat members split 3/3: {d}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        split["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["client"] == "rdkafka"),
        "client ids shown: {split}"
    );
    let list = k.cluster.yak_ok(&["group", "list"]);
    assert!(list.contains("kg") && list.contains("kt"), "{list}");
    // A YaK consumer cannot join a Kafka group.
    let out = k.cluster.yak(&[
        "consume",
        "--topic",
        "kt",
        "--group",
        "kg",
        "--max-messages",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Kafka consumer group"),
        "{err}"
    );
    produce(&k, "kt", 0, 300);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < 300 && Instant::now() < deadline {
        got.extend(l1.try_iter());
        got.extend(l2.try_iter());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = one.kill();
    let _ = two.kill();
    let _ = one.wait();
    let _ = two.wait();
    assert_eq!(got.len(), 300);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), values(0..300));
}

#[test]
fn given_three_roundrobin_members_when_one_is_killed_should_give_its_partitions_to_the_others() {
    let k = kafka_cluster(1);
    create_topic(&k, "rr", 6);
    let mut a = start(&k, "g2", "rr", "roundrobin", "-");
    let mut b = start(&k, "g2", "rr", "roundrobin", "-");
    let mut c = start(&k, "g2", "rr", "roundrobin", "-");
    settle(&mut [&mut a, &mut b, &mut c], 20, "a 2/2/2 split", |m| {
        split(m, &[2, 2, 2], 6)
    });
    let owned = a.owned().unwrap();
    assert!(
        owned
            .iter()
            .all(|p| owned.iter().all(|q| p == q || p.abs_diff(*q) % 3 == 0)),
        "round-robin deals partitions in turn: {owned:?}"
    );
    c.child.kill().unwrap();
    let killed_at = Instant::now();
    settle(&mut [&mut a, &mut b], 20, "a 3/3 split", |m| {
        split(m, &[3, 3], 6)
    });
    assert!(
        killed_at.elapsed() >= Duration::from_millis(2500),
        "taken over only after the session timeout"
    );
    produce(&k, "rr", 0, 600);
    settle(&mut [&mut a, &mut b], 20, "600 messages read", |m| {
        m.iter()
            .flat_map(|m| m.messages())
            .map(|(_, v)| v)
            .collect::<BTreeSet<_>>()
            == values(0..600)
    });
    a.close();
    b.close();
}

#[test]
fn given_cooperative_sticky_members_when_a_third_joins_should_move_only_the_partitions_it_takes() {
    let k = kafka_cluster(1);
    create_topic(&k, "cs", 6);
    let mut a = start(&k, "g3", "cs", "cooperative-sticky", "-");
    let mut b = start(&k, "g3", "cs", "cooperative-sticky", "-");
    settle(&mut [&mut a, &mut b], 20, "a 3/3 split", |m| {
        split(m, &[3, 3], 6)
    });
    let (before_a, before_b) = (a.owned().unwrap(), b.owned().unwrap());
    let (seen_a, seen_b) = (a.seen.len(), b.seen.len());
    let mut c = start(&k, "g3", "cs", "cooperative-sticky", "-");
    settle(&mut [&mut a, &mut b, &mut c], 20, "a 2/2/2 split", |m| {
        split(m, &[2, 2, 2], 6)
    });
    let taken = c.owned().unwrap();
    for (m, before, from) in [(&a, &before_a, seen_a), (&b, &before_b, seen_b)] {
        let revoked: BTreeSet<u32> = m.seen[from..]
            .iter()
            .filter_map(|l| l.strip_prefix("revoked "))
            .flat_map(|l| {
                l.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|p| p.parse::<u32>().unwrap())
            })
            .collect();
        assert!(
            revoked.is_subset(&taken),
            "only what the newcomer takes moves: {revoked:?} {taken:?} {:?}",
            &m.seen[from..]
        );
        assert!(
            m.owned().unwrap().is_subset(before),
            "the others keep the rest"
        );
    }
    for m in [a, b, c] {
        m.close();
    }
}

#[test]
fn given_static_member_when_restarted_within_session_timeout_should_get_its_partitions_back_without_rebalance(
) {
    let k = kafka_cluster(1);
    create_topic(&k, "st", 4);
    let mut a = start(&k, "g4", "st", "range", "ia");
    let mut b = start(&k, "g4", "st", "range", "ib");
    settle(&mut [&mut a, &mut b], 20, "a 2/2 split", |m| {
        split(m, &[2, 2], 4)
    });
    let before_b = b.owned().unwrap();
    let seen_a = a.seen.len();
    b.child.kill().unwrap();
    drop(b);
    let mut b2 = start(&k, "g4", "st", "range", "ib");
    settle(&mut [&mut b2], 10, "b's partitions back", |m| {
        m[0].owned() == Some(before_b.clone())
    });
    std::thread::sleep(Duration::from_millis(3500));
    a.drain();
    assert!(
        !a.seen[seen_a..].iter().any(|l| l.starts_with("revoked")),
        "no rebalance for the other member: {:?}",
        &a.seen[seen_a..]
    );
    a.close();
    b2.close();
}

/// One Kafka connection speaking whole requests through `kafka-protocol`;
/// a request may be sent now and its response read later.
struct Raw {
    stream: std::net::TcpStream,
    next_id: i32,
}

const GROUP_VERSIONS: [(ApiKey, i16); 7] = [
    (ApiKey::FindCoordinator, 4),
    (ApiKey::JoinGroup, 9),
    (ApiKey::SyncGroup, 5),
    (ApiKey::Heartbeat, 4),
    (ApiKey::LeaveGroup, 5),
    (ApiKey::ListGroups, 5),
    (ApiKey::DescribeGroups, 5),
];
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

impl Raw {
    fn connect(address: &str) -> Raw {
        let stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Raw { stream, next_id: 1 }
    }

    /// Sends `req` at the flexible version this test speaks for `api`.
    fn send<Req: Encodable + HeaderVersion>(&mut self, api: ApiKey, req: &Req) -> i16 {
        let version = GROUP_VERSIONS.iter().find(|(a, _)| *a == api).unwrap().1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.next_id)
            .with_client_id(Some(StrBytes::from_static_str("raw")))
            .encode(&mut buf, Req::header_version(version))
            .unwrap();
        self.next_id += 1;
        req.encode(&mut buf, version).unwrap();
        let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        self.stream.write_all(&frame).unwrap();
        version
    }

    /// Reads the response to the oldest request sent (`version` as sent).
    fn recv<Resp: Decodable + HeaderVersion>(&mut self, version: i16) -> Resp {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).unwrap();
        let mut body = bytes::Bytes::from(body);
        ResponseHeader::decode(&mut body, Resp::header_version(version)).unwrap();
        Resp::decode(&mut body, version).unwrap()
    }

    fn call<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        req: &Req,
    ) -> Resp {
        let v = self.send(api, req);
        self.recv(v)
    }
}

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join_req(group: &str, member: &str, rebalance_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(3000)
        .with_rebalance_timeout_ms(rebalance_ms)
        .with_member_id(sb(member))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(bytes::Bytes::from_static(&[0, 1]))])
        .with_reason(Some(sb("raw test")))
}

fn sync_req(group: &str, member: &str, generation: i32) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
}

/// Two raw members of `group` in one generation (JoinGroup v9, after the
/// member id it requires), at generation 1: `[leader, follower]` with their ids.
fn joined_pair(address: &str, group: &str, rebalance_ms: i32) -> [(Raw, String); 2] {
    let mut pair = [Raw::connect(address), Raw::connect(address)].map(|mut c| {
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, &join_req(group, "", rebalance_ms));
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
        (c, r.member_id.to_string())
    });
    // Both joins wait on their connections until the rebalance completes.
    let v: Vec<i16> = pair
        .iter_mut()
        .map(|(c, id)| c.send(ApiKey::JoinGroup, &join_req(group, id, rebalance_ms)))
        .collect();
    let answers: Vec<JoinGroupResponse> = pair
        .iter_mut()
        .zip(v)
        .map(|((c, _), v)| c.recv(v))
        .collect();
    for a in &answers {
        assert_eq!((a.error_code, a.generation_id), (0, 1), "{a:?}");
        assert_eq!(a.protocol_type.as_deref(), Some("consumer"), "v7+ field");
    }
    assert_eq!(answers[0].leader, answers[1].leader);
    if pair[1].1 == answers[0].leader.as_str() {
        pair.swap(0, 1);
    }
    let [leader, follower] = pair;
    [leader, follower]
}

#[test]
fn given_leader_that_never_syncs_when_the_rebalance_timeout_passes_should_answer_the_waiting_follower(
) {
    let k = kafka_cluster(1);
    let address = k.bootstrap();
    let mut probe = Raw::connect(&address);
    let fc: FindCoordinatorResponse = probe.call(
        ApiKey::FindCoordinator,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("g5"), sb("g6")]),
    );
    let found: Vec<_> = fc
        .coordinators
        .iter()
        .map(|c| (c.key.to_string(), c.error_code, c.port))
        .collect();
    let port = i32::from(k.port(1));
    assert_eq!(found, [("g5".into(), 0, port), ("g6".into(), 0, port)]);

    let rebalance_ms = 1000;
    let [(mut leader, leader_id), (mut follower, follower_id)] =
        joined_pair(&address, "g5", rebalance_ms);
    let v = follower.send(ApiKey::SyncGroup, &sync_req("g5", &follower_id, 1));
    let waiting = Instant::now();
    // The leader stays alive (a completing group accepts heartbeats) but
    // never sends its SyncGroup; it heartbeats until it is told otherwise.
    let beats = {
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while codes.last().is_none_or(|c| *c == 0) && Instant::now() < deadline {
                let hb = HeartbeatRequest::default()
                    .with_group_id(GroupId(sb("g5")))
                    .with_generation_id(1)
                    .with_member_id(sb(&leader_id));
                let r: HeartbeatResponse = leader.call(ApiKey::Heartbeat, &hb);
                codes.push(r.error_code);
                std::thread::sleep(Duration::from_millis(100));
            }
            codes
        })
    };
    let r: SyncGroupResponse = follower.recv(v);
    let waited = waiting.elapsed();
    let codes = beats.join().unwrap();
    assert_eq!(r.error_code, REBALANCE_IN_PROGRESS, "the follower rejoins");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "answered after about the rebalance timeout: {waited:?}"
    );
    assert_eq!(
        codes[0], 0,
        "heartbeats accepted while completing: {codes:?}"
    );
    assert_eq!(
        codes.last(),
        Some(&UNKNOWN_MEMBER_ID),
        "the leader that never synced was removed: {codes:?}"
    );

    // A follower waiting for its assignment that leaves (from another
    // connection) is answered at once, and so is its LeaveGroup.
    let [(_leader2, _), (mut follower2, follower2_id)] = joined_pair(&address, "g6", 60_000);
    let v = follower2.send(ApiKey::SyncGroup, &sync_req("g6", &follower2_id, 1));
    std::thread::sleep(Duration::from_millis(200));
    let leaving = Instant::now();
    let leave: LeaveGroupResponse = probe.call(
        ApiKey::LeaveGroup,
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(sb("g6")))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(sb(&follower2_id))
                .with_reason(Some(sb("raw test")))]),
    );
    assert_eq!(leave.members[0].error_code, 0);
    let r: SyncGroupResponse = follower2.recv(v);
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    assert!(leaving.elapsed() < Duration::from_secs(1), "at once");

    // ListGroups v5 filters by state and type; DescribeGroups v5.
    let list = |states: &[&str], types: &[&str]| -> Vec<String> {
        let req = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|s| sb(s)).collect())
            .with_types_filter(types.iter().map(|s| sb(s)).collect());
        let r: ListGroupsResponse = probe_call(&address, ApiKey::ListGroups, &req);
        r.groups.iter().map(|g| g.group_id.0.to_string()).collect()
    };
    assert!(list(&["preparingrebalance"], &["classic"]).contains(&"g6".to_string()));
    assert!(!list(&["Stable"], &[]).contains(&"g6".to_string()));
    assert!(list(&[], &["consumer"]).is_empty(), "no native groups");
    let d: DescribeGroupsResponse = probe.call(
        ApiKey::DescribeGroups,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g6"))]),
    );
    assert_eq!(d.groups[0].group_state.as_str(), "PreparingRebalance");
    assert_eq!(d.groups[0].members.len(), 1);
}

fn probe_call<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
    address: &str,
    api: ApiKey,
    req: &Req,
) -> Resp {
    Raw::connect(address).call(api, req)
}
