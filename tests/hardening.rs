//! Only YaK's own processes speak for a broker or the supervisor, and one
//! bad clock cannot pin a partition's segments (issue 12, items 1 and 7):
//! a plain client's replica fetch, `RegisterBroker`, `AlterIsr` and
//! `BrokerDown` are refused with `NotAuthorized` (checked with SO_PEERCRED)
//! and change nothing; a batch stamped more than an hour ahead is refused
//! with `InvalidTimestamp`.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use yak::client::{ClientError, Connection};
use yak::protocol::batch::{BatchBuilder, NewRecord};
use yak::protocol::{Call, ErrorCode, FetchPartition, LocalPartition, Reply};
use yak_tests::TestCluster;

fn code(result: Result<Reply, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn batch(value: &str, timestamp_ms: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(-1, 0, -1, 256);
    b.push(NewRecord {
        key: None,
        value: value.as_bytes(),
        timestamp_ms,
    });
    b.finish()
}

fn produce(c: &TestCluster, broker: u64, acks: i8, records: Vec<u8>) -> Result<Reply, ClientError> {
    let mut conn = Connection::connect(&c.run_dir().join(format!("broker-{broker}.sock"))).unwrap();
    conn.call(&Call::Produce {
        topic: "t".into(),
        partition: 0,
        acks,
        records,
    })
}

/// The leader's own view of t-0: high watermark and ISR in one answer.
fn leader_view(c: &TestCluster, leader: u64) -> LocalPartition {
    let mut conn = Connection::connect(&c.run_dir().join(format!("broker-{leader}.sock"))).unwrap();
    match conn.call(&Call::LocalPartitions).unwrap() {
        Reply::LocalPartitions { partitions } => {
            partitions.into_iter().find(|p| p.topic == "t").unwrap()
        }
        other => panic!("{other:?}"),
    }
}

fn partition0(c: &TestCluster) -> Value {
    c.status_json()["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == "t")
        .unwrap()
        .clone()
}

fn brokers(c: &TestCluster) -> Vec<Value> {
    c.status_json()["brokers"].as_array().unwrap().clone()
}

#[test]
fn given_plain_client_when_it_speaks_for_a_broker_or_the_supervisor_should_be_refused_and_change_nothing(
) {
    // Sessions outlive the followers' pause below.
    let c = TestCluster::builder(3)
        .zookeeper("session_timeout_ms", "10000")
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    c.yak_stdin_ok(&["produce", "--topic", "t"], "a\nb\n");
    let p = partition0(&c);
    let leader = p["leader"].as_u64().unwrap();
    let followers: Vec<u64> = p["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .filter(|b| *b != leader)
        .collect();
    let before = brokers(&c);
    let pid_of = |id: u64| {
        before.iter().find(|b| b["id"] == id).unwrap()["pid"]
            .as_u64()
            .unwrap() as i32
    };

    // Followers paused: a record acknowledged by the leader alone stays
    // above the high watermark until a follower fetches past it.
    for f in &followers {
        kill(Pid::from_raw(pid_of(*f)), Signal::SIGSTOP).unwrap();
    }
    let hw = leader_view(&c, leader).high_watermark;
    produce(&c, leader, 1, batch("c", now_ms())).unwrap();
    let mut conn = Connection::connect(&c.run_dir().join(format!("broker-{leader}.sock"))).unwrap();
    for f in &followers {
        let spoof = Call::Fetch {
            replica_id: Some(*f as u32),
            max_wait_ms: 0,
            min_bytes: 1,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: hw + 1,
                max_bytes: 1024,
                leader_epoch: None,
                last_fetched_epoch: None,
            }],
        };
        assert_eq!(
            code(conn.call(&spoof)),
            ErrorCode::NotAuthorized,
            "a replica fetch as broker {f}"
        );
    }
    let view = leader_view(&c, leader);
    for f in &followers {
        kill(Pid::from_raw(pid_of(*f)), Signal::SIGCONT).unwrap();
    }
    assert_eq!(
        view.isr.len(),
        3,
        "precondition: the ISR was whole while the spoof ran: {view:?}"
    );
    assert_eq!(
        view.high_watermark, hw,
        "the spoofed fetches did not move the high watermark: {view:?}"
    );
    assert_eq!(view.log_end_offset, hw + 1);

    let mut zk = Connection::connect(&c.run_dir().join("zookeeper.sock")).unwrap();
    let me = std::process::id();
    let register = Call::RegisterBroker {
        broker_id: leader as u32,
        pid: me,
        socket: "/tmp/elsewhere.sock".into(),
        kafka_address: None,
    };
    assert_eq!(
        code(zk.call(&register)),
        ErrorCode::NotAuthorized,
        "a spoofed registration"
    );
    let claimed = Call::RegisterBroker {
        broker_id: leader as u32,
        pid: pid_of(leader) as u32,
        socket: "/tmp/elsewhere.sock".into(),
        kafka_address: None,
    };
    assert_eq!(
        code(zk.call(&claimed)),
        ErrorCode::NotAuthorized,
        "a registration naming the real broker's pid"
    );
    let alter = Call::AlterIsr {
        topic: "t".into(),
        partition: 0,
        leader: leader as u32,
        leader_epoch: p["leader_epoch"].as_u64().unwrap() as u32,
        isr: vec![leader as u32],
        partition_epoch: 0,
        topic_id: 0,
    };
    assert_eq!(
        code(zk.call(&alter)),
        ErrorCode::NotAuthorized,
        "a spoofed ISR change"
    );
    let down = Call::BrokerDown {
        broker_id: leader as u32,
        pid: pid_of(leader) as u32,
    };
    assert_eq!(
        code(zk.call(&down)),
        ErrorCode::NotAuthorized,
        "a spoofed broker-down report"
    );

    std::thread::sleep(Duration::from_millis(300));
    let after = brokers(&c);
    let strip = |v: &[Value]| {
        v.iter()
            .map(|b| (b["id"].clone(), b["pid"].clone(), b["alive"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&after),
        strip(&before),
        "every broker kept its registration and session"
    );
    let socket = c.yak_ok(&["cluster", "status"]);
    assert!(!socket.contains("/tmp/elsewhere.sock"), "{socket}");
    assert_eq!(
        partition0(&c)["leader"].as_u64(),
        Some(leader),
        "no failover followed"
    );
    // The real followers still replicate: the record commits once they run again.
    yak_tests::wait_until(
        "the high watermark to pass the record",
        Duration::from_secs(10),
        || (leader_view(&c, leader).high_watermark == hw + 1).then_some(()),
    );
}

#[test]
fn given_batch_stamped_over_an_hour_ahead_when_produced_should_be_refused_with_invalid_timestamp() {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let hour_ms = 3_600_000;
    assert_eq!(
        code(produce(&c, 1, 1, batch("future", now_ms() + 2 * hour_ms))),
        ErrorCode::InvalidTimestamp
    );
    assert!(matches!(
        produce(&c, 1, 1, batch("soon", now_ms() + hour_ms / 2)),
        Ok(Reply::Produced { base_offset: 0, .. })
    ));
    assert!(matches!(
        produce(&c, 1, 1, batch("past", 0)),
        Ok(Reply::Produced { base_offset: 1, .. })
    ));
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "t",
        "--from-beginning",
        "--timeout-ms",
        "1000",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["soon", "past"],
        "the refused batch is not in the log"
    );
}
