//! The YaK client library in a few lines: create a topic, produce keyed
//! messages with acks=all, read them back from the beginning.
//!
//! Run against a cluster started with `make cluster`:
//! `cargo run --release --example produce_consume -- yak-run`

use std::path::PathBuf;
use std::time::Duration;
use yak::client::{
    Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, StartFrom,
};
use yak::protocol::ErrorCode;

fn main() -> Result<(), ClientError> {
    let cluster = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "yak-run".into()));
    let topic = "example-orders";

    match Admin::connect(&cluster)?.create_topic(topic, Some(3), None) {
        Err(e) if e.code() == Some(&ErrorCode::TopicAlreadyExists) => {}
        other => drop(other?),
    }

    let mut producer = Producer::connect(&cluster, ProducerConfig::default())?;
    for i in 0..1000 {
        let key = format!("customer-{}", i % 10);
        producer.send(topic, Some(key.as_bytes()), format!("order {i}").as_bytes())?;
    }
    let report = producer.flush()?;
    println!(
        "acknowledged {} messages in {} batches",
        report.acked, report.batches
    );

    let mut consumer = Consumer::subscribe(
        &cluster,
        topic,
        StartFrom::Earliest,
        ConsumerConfig::default(),
    )?;
    let mut read = 0;
    loop {
        let records = consumer.poll(Duration::from_millis(500))?;
        if records.is_empty() {
            break;
        }
        read += records.len();
    }
    println!("read {read} messages back from the beginning");
    Ok(())
}
