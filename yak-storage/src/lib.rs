//! YaK's storage: per-partition segmented logs (append, read, recovery,
//! truncation, retention by deleting whole old segments, the leader-epoch
//! cache), the idempotent-producer state a log carries ([`producers`]) and
//! the data directory itself ([`datadir`]: its lock, the cluster id,
//! durable small-file writes).
//!
//! Owns every file in a partition directory: segments
//! `<base offset, 20 digits>.log`, their sparse `.index` (8-byte entries:
//! `u32` offset relative to the segment base, `u32` file position, both
//! big-endian, one every ~`index_interval_bytes` of log, each pointing at a
//! batch start), their `.timeindex` (12-byte entries: `i64` largest batch
//! timestamp of the segment so far, `u32` relative offset, at the same
//! batches as the `.index` entries) and `leader-epoch-checkpoint` (text, one
//! `epoch start_offset` line per epoch).
//!
//! Never parses records, never decides when to fsync (the broker calls
//! [`Log::flush`] according to its [`FsyncPolicy`]) and does no network I/O.
//!
//! # Layout
//! - `log`: the [`Log`] of one partition: segments, roll, read, truncate,
//!   retention, lookups by timestamp.
//! - `segment`: one `.log` file and its indexes; recovery of a segment.
//! - `index`: the sparse offset → position index.
//! - `timeindex`: the sparse time index (largest timestamp → offset).
//! - `epochs`: the leader-epoch cache and its checkpoint file.
//! - `fs`: the I/O seam every file operation goes through ([`fs::RealFs`]
//!   in production, `fs::SimFs` in tests: faults and power cuts).
//! - `fd_cache`: [`fd_cache::CachedFs`], the bound on open files
//!   ([`real_fs`] is `RealFs` behind one process-wide cache).

#![deny(missing_docs)]

pub mod datadir;
mod epochs;
#[cfg(test)]
mod faults;
pub mod fd_cache;
pub mod fs;
mod index;
mod log;
pub mod producers;
mod segment;
#[cfg(test)]
mod test_util;
mod timeindex;

use std::path::PathBuf;

use yak_protocol::batch::BatchError;
use yak_protocol::limits::FILES_OPEN_MAX;

pub use log::Log;

/// When the broker makes appended data durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// The broker calls [`Log::flush`] before answering the acks of a request
    /// (one fsync per request: group commit).
    Always,
    /// The operating system decides when dirty pages reach the disk.
    Never,
}

/// Settings of one partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A new segment starts when the active one is non-empty and the next
    /// batch would take it past this size.
    pub segment_bytes: u64,
    /// An index entry is written every this many bytes of log.
    pub index_interval_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: yak_protocol::limits::SEGMENT_BYTES_DEFAULT,
            index_interval_bytes: yak_protocol::limits::INDEX_INTERVAL_BYTES,
        }
    }
}

impl LogConfig {
    /// Rejects settings the on-disk format cannot represent.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes == 0 || self.segment_bytes > u64::from(u32::MAX) {
            return Err(StorageError::InvalidConfig {
                reason: "segment_bytes must be in 1..=u32::MAX",
            });
        }
        if self.index_interval_bytes == 0 {
            return Err(StorageError::InvalidConfig {
                reason: "index_interval_bytes must be positive",
            });
        }
        Ok(())
    }
}

/// How much of a log to keep; `None` keeps everything on that axis.
/// Kafka's `retention.bytes` and `retention.ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep the log at about this size: old segments go while it exceeds
    /// this by at least a whole segment.
    pub bytes: Option<u64>,
    /// Delete a segment once its newest record is older than this.
    pub ms: Option<u64>,
}

/// What [`Log::apply_retention`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of log they held.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start_offset: u64,
}

/// Offsets given to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first appended record.
    pub base_offset: u64,
    /// Offset of the last appended record.
    pub last_offset: u64,
}

/// What went wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system call failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// File or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An fsync (of a file or a directory) failed. Fatal: the kernel may
    /// have dropped the dirty data and a later fsync would "succeed"
    /// without writing it (fsyncgate), so nothing written since the last
    /// good fsync can be trusted. The process must stop and recover from
    /// what is on disk.
    #[error("fsync failed on {path}: {source}")]
    Fsync {
        /// File or directory being synced.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An earlier fsync of this log failed; the log refuses every write and
    /// fsync until the process restarts.
    #[error("log {dir} failed an fsync earlier; restart to recover")]
    Poisoned {
        /// The partition directory.
        dir: PathBuf,
    },
    /// A setting is out of range.
    #[error("invalid log config: {reason}")]
    InvalidConfig {
        /// Which setting and why.
        reason: &'static str,
    },
    /// A read or truncation asked for an offset outside the log.
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// Offset asked for.
        offset: u64,
        /// First offset in the log.
        log_start_offset: u64,
        /// Offset the next append gets.
        log_end_offset: u64,
    },
    /// A replicated batch does not start at the offset the log expects.
    #[error("non-monotonic offset: expected {expected}, got {got}")]
    NonMonotonicOffset {
        /// Offset the log expects next.
        expected: u64,
        /// Offset the batch carries.
        got: u64,
    },
    /// A batch carries an epoch older than the latest one in the log.
    #[error("stale leader epoch {epoch}, log is at epoch {latest}")]
    StaleEpoch {
        /// Epoch of the batch.
        epoch: u32,
        /// Latest epoch in the log.
        latest: u32,
    },
    /// Offsets would pass `u64::MAX`.
    #[error("offset overflow after {offset}")]
    OffsetOverflow {
        /// Offset the overflowing batch would start at.
        offset: u64,
    },
    /// Stored bytes that recovery trusted do not parse.
    #[error("corrupt segment {path} at position {position}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte position in the file.
        position: u64,
        /// What is wrong.
        reason: BatchError,
    },
}

impl StorageError {
    /// Whether the error means the data on disk may differ from what this
    /// process believes (a failed fsync): the process must fail-stop.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StorageError::Fsync { .. } | StorageError::Poisoned { .. }
        )
    }
}

/// Attaches a path to an I/O error.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Attaches a path to a failed fsync: a fatal [`StorageError::Fsync`].
pub(crate) fn sync_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Fsync {
        path: path.to_path_buf(),
        source,
    }
}

/// The real file system, behind the process's one cache of open files
/// (at most [`FILES_OPEN_MAX`] descriptors for all storage files).
pub fn real_fs() -> fs::FsRef {
    static REAL: std::sync::OnceLock<fs::FsRef> = std::sync::OnceLock::new();
    std::sync::Arc::clone(REAL.get_or_init(|| {
        std::sync::Arc::new(fd_cache::CachedFs::new(
            std::sync::Arc::new(fs::RealFs),
            FILES_OPEN_MAX,
        ))
    }))
}

/// Makes the entries of a directory (created, renamed, removed files) durable.
pub fn sync_dir(fs: &dyn fs::Fs, dir: &std::path::Path) -> Result<(), StorageError> {
    fs.sync_dir(dir).map_err(sync_err(dir))
}
