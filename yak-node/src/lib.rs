//! YaK: a small, real Kafka. One binary `yak-node` runs the mini-ZooKeeper,
//! a broker, or a client command.
//!
//! # Crates
//! Data flows one way: cli → client → protocol → broker → storage.
//! - `yak-protocol` ([`protocol`]): frames, requests, responses, error codes,
//!   record batches, limits, the Unix-socket transport and connection.
//! - `yak-storage` ([`storage`]): segmented partition logs, producer state,
//!   the data directory.
//! - `yak-client` ([`client`]): admin, metadata cache, producer, consumer.
//! - `yak-bench` ([`bench`]): benchmarks against a live cluster.
//! - this crate: [`server`] (the accept/read/answer loop shared by ZooKeeper
//!   and brokers), [`zookeeper`], [`broker`], [`cli`].
//!
//! The other crates are re-exported here under their module names, so
//! `yak::protocol`, `yak::storage`, `yak::client`, `yak::bench`,
//! `yak::limits`, `yak::transport` and `yak::datadir` stay the paths the
//! binaries, the examples and the end-to-end tests use.
#![deny(missing_docs)]

pub mod broker;
pub mod cli;
pub mod fdlimit;
pub mod peer;
pub mod server;
pub mod shutdown;
pub mod zookeeper;

pub use yak_bench as bench;
pub use yak_client as client;
pub use yak_protocol as protocol;
pub use yak_protocol::{limits, paths, transport};
pub use yak_storage as storage;
pub use yak_storage::datadir;
