//! Wire protocol: frames, requests, responses, error codes, record batches,
//! topic naming rules, the metadata log's records and cluster events. Owns every serde type
//! of YaK. Does no socket I/O beyond reading and writing one frame on a
//! stream it is given.

pub mod batch;
pub mod errors;
pub mod events;
pub mod frame;
pub mod groups;
pub mod messages;
pub mod metalog;
pub mod names;

pub use errors::{ErrorBody, ErrorCode};
pub use events::{ClusterEvent, EventKind, ProcessRestart, Reason};
pub use groups::*;
pub use messages::*;
