//! The Kafka front door: every broker may also listen for the Kafka wire
//! protocol on TCP `127.0.0.1:PORT`, so unmodified Kafka clients (kcat,
//! librdkafka and its bindings) produce, consume and administer topics.
//!
//! # Layout
//! - `listener.rs`: binds the port, accepts, caps connections.
//! - `conn.rs`: one connection: a reader thread (frames in, requests
//!   dispatched in order) and a writer thread (responses out in request order).
//! - `frame.rs`: Kafka framing and request headers (sizes checked before
//!   anything is allocated) and response encoding.
//! - `dispatch.rs`: API key and version to handler; `UNSUPPORTED_VERSION`
//!   for everything else. `guard.rs`: every body's lengths checked against
//!   its schema before the decoder (which reserves what arrays declare) runs.
//! - One file per API group: `versions.rs` (ApiVersions), `metadata.rs`
//!   (Metadata, topic auto-creation), `admin.rs` (CreateTopics,
//!   DeleteTopics, InitProducerId), `produce.rs`, `fetch.rs`, `offsets.rs`
//!   (ListOffsets), `groups.rs` (FindCoordinator, JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup), `group_offsets.rs` (OffsetCommit,
//!   OffsetFetch), `group_admin.rs` (ListGroups, DescribeGroups,
//!   DeleteGroups): groups are served by ZooKeeper's coordinator;
//!   `leader_epoch.rs` (OffsetForLeaderEpoch),
//!   `consumer_group.rs` (ConsumerGroupHeartbeat, KIP-848, onto the native
//!   group coordinator); `topic_ids.rs`: Kafka topic ids (UUIDs) of YaK
//!   topics, for Metadata v10+ and KIP-848 assignments.
//! - `topic_admin.rs` (CreatePartitions, AlterPartitionReassignments,
//!   ListPartitionReassignments) and `configs.rs` (DescribeConfigs,
//!   IncrementalAlterConfigs, AlterConfigs): forwarded to the ZooKeeper
//!   calls `topic alter` and `topic reassign` make.
//! - `request.rs`: what handlers share and return (`Shared`, `Outcome`).
//! - `native.rs`: the link to this broker's own request server and to
//!   ZooKeeper; `errors.rs`: YaK error codes as Kafka's.
//!
//! Data requests (produce, fetch, list offsets) are translated into YaK's
//! own calls and handed, in-process, to this broker's request handler (the
//! one its native server calls), each with a responder that delivers the
//! reply back to the Kafka connection: they pass the very checks, limits,
//! long-poll parking and code paths the native front door uses, and the
//! broker's handling is not duplicated. Metadata and admin requests go to
//! ZooKeeper. Never touches partitions, logs or metadata state directly.

mod admin;
mod configs;
mod conn;
mod consumer_group;
mod dispatch;
mod errors;
mod fetch;
mod frame;
#[cfg(test)]
mod fuzz_tests;
mod group_admin;
mod group_offsets;
mod groups;
mod guard;
mod leader_epoch;
mod listener;
mod metadata;
mod native;
mod offsets;
mod produce;
mod request;
mod topic_admin;
mod topic_ids;
mod versions;

pub use listener::{KafkaListener, ListenError};

use std::path::PathBuf;

/// What the Kafka front door of one broker needs to know.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The broker this listener belongs to (Metadata's controller id).
    pub broker_id: u32,
    /// ZooKeeper's socket.
    pub zk_socket: PathBuf,
    /// Whether a Metadata request naming an unknown topic creates it
    /// (with the cluster's default partitions and replication factor).
    pub auto_create_topics: bool,
    /// The broker's retention flags (topics without their own), shown
    /// by DescribeConfigs.
    pub retention: crate::storage::RetentionPolicy,
    /// The broker's segment size flag, shown by DescribeConfigs.
    pub segment_bytes: u64,
}

/// The broker's Kafka flags.
#[derive(Debug, Clone, Copy)]
pub struct KafkaSettings {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Whether Metadata creates topics clients name (cluster defaults).
    pub auto_create_topics: bool,
}
