//! End-to-end: replies leave each connection through its own writer. A raw
//! client that floods a leader with acks=all produce requests and never
//! reads the answers is disconnected, while a producer with acks=all beside
//! it keeps getting its acks at normal speed (the flusher that completes
//! both never waits for the stuck socket); and answers on one connection
//! come back in request order even when a later request completes first.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use yak::protocol::batch::{BatchBuilder, NewRecord};
use yak::protocol::{frame, Call, Reply, Request, Response};
use yak_tests::{wait_until, TestCluster};

const ISR_TIMEOUT: Duration = Duration::from_secs(20);
/// A producer run of `PRODUCE_MESSAGES` acks=all messages (process start
/// included) takes well under this on an idle cluster; a flusher stuck on
/// one socket would hold it for the 5 s write timeout, again and again.
const PRODUCE_RUN_MAX: Duration = Duration::from_secs(3);
const PRODUCE_MESSAGES: usize = 50;
/// Produce requests the stuck client sends: their answers overflow the
/// socket buffer many times over.
const FLOOD_REQUESTS: u64 = 20_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn batch(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(-1, 0, -1, 256);
    b.push(NewRecord {
        key: None,
        value: value.as_bytes(),
        timestamp_ms: now_ms(),
    });
    b.finish()
}

fn produce_request(correlation_id: u64, acks: i8) -> Request {
    Request {
        correlation_id,
        call: Call::Produce {
            topic: "t".into(),
            partition: 0,
            acks,
            records: batch("flood"),
        },
    }
}

/// A cluster of two brokers, fsync `always` (acks complete on the flusher),
/// with t-0 replicated on both and both in sync; returns the leader's socket.
fn cluster() -> (TestCluster, PathBuf) {
    let c = TestCluster::builder(2)
        .broker("fsync", "\"always\"")
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "1",
        "--replication-factor",
        "2",
    ]);
    let leader = wait_until("t-0 with both replicas in sync", ISR_TIMEOUT, || {
        let s = c.try_status_json()?;
        let p = s["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["topic"] == "t")?
            .clone();
        (p["isr"].as_array()?.len() == 2).then(|| p["leader"].as_u64())?
    });
    let socket = c.run_dir().join(format!("broker-{leader}.sock"));
    (c, socket)
}

/// Produces `PRODUCE_MESSAGES` messages with acks=all; returns how long it took.
fn timed_produce(c: &TestCluster) -> Duration {
    let lines: String = (0..PRODUCE_MESSAGES).map(|i| format!("m{i}\n")).collect();
    let started = Instant::now();
    c.yak_stdin_ok(&["produce", "--topic", "t", "--acks", "all"], &lines);
    started.elapsed()
}

#[test]
fn given_client_that_never_reads_when_a_producer_sends_acks_all_beside_it_should_disconnect_it_and_keep_acking(
) {
    let (c, leader) = cluster();
    let before = timed_produce(&c);
    println!("REPLY: acks=all producer alone: {} ms", before.as_millis());

    let mut stuck = UnixStream::connect(&leader).expect("connect the stuck client");
    let flood = std::thread::spawn(move || {
        let started = Instant::now();
        for id in 0..FLOOD_REQUESTS {
            if frame::write(&mut stuck, &produce_request(id, -1)).is_err() {
                return Some((id, started.elapsed()));
            }
        }
        let _ = stuck.flush();
        // Never read: keep the socket open until the test is done.
        std::thread::sleep(Duration::from_secs(10));
        None
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(timed_produce(&c));
    }
    println!(
        "REPLY: acks=all producer beside a client that never reads: {:?} ms",
        runs.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );
    for run in &runs {
        assert!(
            *run < PRODUCE_RUN_MAX,
            "a producer run took {run:?} beside the stuck client (alone: {before:?})"
        );
    }
    let cut = flood.join().expect("flood thread");
    let (sent, after) = cut.expect("the broker shut the stuck client out");
    println!(
        "REPLY: stuck client cut off after {sent} requests, {} ms",
        after.as_millis()
    );
    assert!(
        after < Duration::from_secs(2),
        "cut off within the reply queue's bound, not a timeout: {after:?}"
    );
    wait_until(
        "the broker's log line saying why it closed the connection",
        Duration::from_secs(5),
        || {
            c.log_text()
                .lines()
                .any(|l| l.contains("closing connection") && l.contains("reply queue full"))
                .then_some(())
        },
    );
}

#[test]
fn given_produce_waiting_for_its_acks_when_a_later_request_is_answered_first_should_reply_in_request_order(
) {
    let (_c, leader) = cluster();
    let mut conn = UnixStream::connect(&leader).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    for round in 0..20u64 {
        // The produce waits for the flusher and the follower; the stats
        // call right behind it is answered at once by the reader.
        let mut both = frame::encode(&produce_request(2 * round, -1)).expect("encode");
        both.extend(
            frame::encode(&Request {
                correlation_id: 2 * round + 1,
                call: Call::BrokerStats,
            })
            .expect("encode"),
        );
        conn.write_all(&both).expect("write both");
        let first: Response = frame::read(&mut conn, 1 << 24).expect("first answer");
        let second: Response = frame::read(&mut conn, 1 << 24).expect("second answer");
        assert_eq!(
            (first.correlation_id, second.correlation_id),
            (2 * round, 2 * round + 1),
            "answers in request order"
        );
        assert!(
            matches!(first.reply, Reply::Produced { .. }),
            "{:?}",
            first.reply
        );
        assert!(
            matches!(second.reply, Reply::BrokerStats(_)),
            "{:?}",
            second.reply
        );
    }
}
