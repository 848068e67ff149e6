//! Wire protocol: frames, requests, responses, error codes, record batches.
//! Owns every serde type of YaK. Does no socket I/O of its own beyond
//! reading and writing one frame on a stream it is given.

pub mod batch;
