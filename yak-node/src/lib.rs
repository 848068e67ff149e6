//! YaK: a small, real Kafka. One binary `yak-node` runs the mini-ZooKeeper,
//! a broker, or a client command.
//!
//! # Layout
//! Data flows one way: cli → client → protocol → broker → storage.
//! - [`protocol`]: frames, requests, responses, error codes, record batches.
//! - [`transport`]: Unix sockets (interprocess).
//! - [`server`]: the accept/read/answer loop shared by ZooKeeper and brokers.
//! - [`zookeeper`]: sessions, metadata state machine, metadata log.
//! - [`broker`]: produce, fetch, offsets, replica reconciliation.
//! - [`storage`]: segmented partition logs, sparse index, recovery.
//! - [`client`]: admin, metadata cache, producer, consumer.
//! - [`bench`]: produce, consume and end-to-end benchmarks.
//! - [`cli`]: the `yak-node` command line.
//! - [`limits`]: every limit and default.
//! - [`datadir`]: data-dir locks, the cluster id, durable small-file writes.
#![deny(missing_docs)]

pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod datadir;
pub mod fdlimit;
pub mod limits;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod transport;
pub mod zookeeper;
