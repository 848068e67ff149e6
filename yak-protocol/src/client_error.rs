//! The error a caller of a YaK socket sees: connecting, a broken
//! connection, an error answer, an unexpected answer, bad input. Shared by
//! the clients and by the broker's own connections to ZooKeeper and to
//! other brokers.

use crate::frame::FrameError;
use crate::{ErrorBody, ErrorCode};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What can go wrong in a client.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No cluster answers at that directory.
    #[error("no YaK cluster at {dir}: {reason}")]
    NoCluster {
        /// The `--cluster` directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A socket could not be reached.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A connection failed mid-way.
    #[error("connection to {path} failed: {reason}")]
    Connection {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{0}")]
    Server(ErrorBody),
    /// The server answered with something else than asked.
    #[error("unexpected reply from {0}")]
    Unexpected(String),
    /// Bad input from the caller.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    pub(crate) fn io(path: &Path, e: io::Error) -> Self {
        ClientError::Connection {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn frame(path: &Path, e: FrameError) -> Self {
        ClientError::Connection {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// The server's error code, if this is a server error.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Server(e) => Some(&e.code),
            _ => None,
        }
    }

    /// Worth retrying after a metadata refresh: a retriable code or a lost connection.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Server(e) => e.code.is_retriable(),
            ClientError::Connect { .. } | ClientError::Connection { .. } => true,
            _ => false,
        }
    }
}
