//! YaK's clients, the Rust API the CLI, the benchmarks and the examples use:
//! admin, metadata cache, producer (batching, retries, idempotence,
//! partitioner plugins), consumer and group consumer. Talks to ZooKeeper
//! for metadata and to partition leaders for data; never touches the disk.

#![deny(missing_docs)]

pub mod admin;
pub use yak_protocol::backoff;
pub mod consumer;
#[cfg(test)]
mod fake_cluster;
pub mod group;
pub mod heartbeat;
pub mod metadata;
pub mod partitioner;
pub mod plugin;
mod plugin_error;
pub mod producer;
pub mod source;

pub use admin::Admin;
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartFrom};
pub use group::{GroupConfig, GroupConsumer};
pub use producer::{BatchAck, Producer, ProducerConfig, ProducerReport};
pub use source::RecordSource;
pub use yak_protocol::connection::Connection;
/// The ZooKeeper socket of the cluster at `dir`.
pub use yak_protocol::paths::zookeeper_socket;
pub use yak_protocol::{Acks, ClientError};
