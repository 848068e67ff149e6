//! End-to-end: a raw Kafka Fetch's `min_bytes` and `max_wait_ms`, served
//! by the broker's own fetch handling: fewer bytes than asked wait the
//! whole `max_wait_ms` (and then answer with what there is), enough bytes
//! answer at once, and bytes arriving during the wait answer it early.

#![allow(clippy::unwrap_used)]

mod kafka_support;

use kafka_support::{kafka_cluster, request};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A Fetch v4 body for partition 0 of `topic` from offset 0.
fn fetch_body(topic: &str, max_wait_ms: i32, min_bytes: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((-1i32).to_be_bytes()); // replica id: a consumer
    b.extend(max_wait_ms.to_be_bytes());
    b.extend(min_bytes.to_be_bytes());
    b.extend((50i32 << 20).to_be_bytes()); // max bytes
    b.push(0); // isolation level
    b.extend(1i32.to_be_bytes()); // one topic
    b.extend((topic.len() as i16).to_be_bytes());
    b.extend(topic.as_bytes());
    b.extend(1i32.to_be_bytes()); // one partition
    b.extend(0i32.to_be_bytes()); // partition 0
    b.extend(0i64.to_be_bytes()); // fetch offset
    b.extend((1i32 << 20).to_be_bytes()); // partition max bytes
    b
}

/// Sends a Fetch v4 and returns (how long the answer took, error code,
/// record bytes) of its one partition.
fn fetch(
    s: &mut TcpStream,
    topic: &str,
    max_wait_ms: i32,
    min_bytes: i32,
) -> (Duration, i16, usize) {
    let start = Instant::now();
    s.write_all(&request(
        1,
        4,
        9,
        &fetch_body(topic, max_wait_ms, min_bytes),
    ))
    .unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let took = start.elapsed();
    // correlation id, throttle, topics (1), name, partitions (1), index
    let name_at = 4 + 4 + 4;
    let name_len = i16::from_be_bytes([body[name_at], body[name_at + 1]]) as usize;
    let p = name_at + 2 + name_len + 4 + 4;
    let error = i16::from_be_bytes([body[p], body[p + 1]]);
    // high watermark, last stable offset, aborted transactions (count 0 or -1)
    let records_at = p + 2 + 8 + 8 + 4;
    let len = i32::from_be_bytes(body[records_at..records_at + 4].try_into().unwrap());
    (took, error, len.max(0) as usize)
}

#[test]
fn given_min_bytes_when_fetching_raw_should_wait_for_them_or_max_wait_and_answer_at_once_when_there(
) {
    let k = kafka_cluster(1);
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "w",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    c.yak_stdin_ok(&["produce", "--topic", "w"], "a few\nsmall\nmessages\n");
    let mut s = TcpStream::connect(k.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();

    // Fewer bytes than min_bytes: the answer comes after max_wait_ms, with them.
    let (took, error, have) = fetch(&mut s, "w", 1500, 1 << 20);
    assert_eq!(error, 0);
    assert!(have > 0, "what there is comes back at the deadline");
    assert!(
        took >= Duration::from_millis(1400),
        "waited max_wait_ms: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "but not much longer: {took:?}"
    );

    // Enough bytes: at once, even with a long max_wait_ms.
    let (took, error, again) = fetch(&mut s, "w", 15_000, have as i32);
    assert_eq!((error, again), (0, have));
    assert!(took < Duration::from_secs(3), "answered at once: {took:?}");
    let (took, _, _) = fetch(&mut s, "w", 15_000, 0);
    assert!(
        took < Duration::from_secs(3),
        "min_bytes 0 never waits: {took:?}"
    );

    // Bytes arriving during the wait answer it as soon as there are enough.
    let waiting = std::thread::spawn({
        let mut s = s.try_clone().unwrap();
        move || fetch(&mut s, "w", 15_000, have as i32 + 1)
    });
    std::thread::sleep(Duration::from_millis(300));
    c.yak_stdin_ok(&["produce", "--topic", "w"], "one more\n");
    let (took, error, now) = waiting.join().unwrap();
    assert_eq!(error, 0);
    assert!(now > have, "the new bytes are in the answer");
    assert!(
        took < Duration::from_secs(10),
        "woken by the data, not the deadline: {took:?}"
    );
}
