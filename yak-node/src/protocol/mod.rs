//! Wire protocol: frames, requests, responses, error codes, record batches,
//! topic naming rules and the metadata log's records. Owns every serde type
//! of YaK. Does no socket I/O beyond reading and writing one frame on a
//! stream it is given.

pub mod batch;
pub mod errors;
pub mod frame;
pub mod groups;
pub mod messages;
pub mod metalog;
pub mod names;

pub use errors::{ErrorBody, ErrorCode};
pub use groups::*;
pub use messages::*;
