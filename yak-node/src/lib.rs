//! YaK: a small, real Kafka. One binary `yak-node` runs the mini-ZooKeeper,
//! a broker, or a client command.
//!
//! # Layout
//! - [`protocol`]: frames, requests, responses, error codes, record batches.
//! - [`storage`]: segmented partition logs, sparse index, recovery.
//! - [`limits`]: every limit and default.

pub mod limits;
pub mod protocol;
pub mod storage;
