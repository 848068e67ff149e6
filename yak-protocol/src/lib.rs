//! YaK's wire protocol: what its processes say to each other and the limits
//! they agree on. Frames, requests, responses, error codes, record batches,
//! topic naming rules, the metadata log's records and cluster events; the
//! Unix-socket transport and one pipelined request/response
//! [`connection::Connection`] over it, with the [`ClientError`] its caller
//! sees; every limit and default ([`limits`]). Owns every serde type of YaK.
//! Knows nothing of disks, brokers or ZooKeeper's state.

#![deny(missing_docs)]

pub mod acks;
pub mod backoff;
pub mod batch;
pub mod classic;
pub mod client_error;
pub mod connection;
pub mod errors;
pub mod events;
pub mod frame;
pub mod groups;
pub mod limits;
pub mod messages;
pub mod metadata;
pub mod metadata_pages;
pub mod metalog;
pub mod names;
pub mod paths;
pub mod peer;
pub mod transport;

pub use acks::Acks;
pub use client_error::ClientError;
pub use errors::{ErrorBody, ErrorCode};
pub use events::{ClusterEvent, EventKind, ProcessRestart, Reason};
pub use groups::*;
pub use messages::*;
pub use metadata::*;
