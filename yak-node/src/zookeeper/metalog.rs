//! The metadata log on disk: every change is appended and fsynced before it
//! is applied; now and then the whole state goes to a snapshot.
//!
//! Files in the ZooKeeper data dir: `snapshot` (the state when generation G
//! began) and `metadata-G.log` (records since). A record is `u32 length`,
//! `u32 crc32c`, MessagePack body. A snapshot is written to a temp file,
//! fsynced and renamed; only then does a new, empty log of generation G+1
//! replace the old one, so a crash at any point replays to the same state.

use crate::limits::{METADATA_RECORD_BYTES_MAX, METADATA_SNAPSHOT_BYTES_MAX};
use crate::protocol::metalog::{MetaRecord, MetaSnapshot};
use crate::storage::fs::{self, FsFile, FsRef, OpenOptions};
use serde::{de::DeserializeOwned, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What can go wrong with the metadata files.
#[derive(Debug, Error)]
pub enum MetaLogError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The snapshot is unreadable; ZooKeeper refuses to start without it.
    #[error("{path}: corrupt snapshot: {reason}")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode metadata record: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// A record over the size limit; nothing was written.
    #[error("metadata record of {bytes} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Limit.
        max: usize,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MetaLogError + '_ {
    move |source| MetaLogError::Io { path: path.to_path_buf(), source }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotFile {
    generation: u64,
    state: MetaSnapshot,
}

/// The open metadata log.
pub struct MetaLog {
    fs: FsRef,
    dir: PathBuf,
    generation: u64,
    file: Box<dyn FsFile>,
    records: u64,
}

/// What was on disk at open.
pub struct Recovered {
    /// State at the snapshot.
    pub snapshot: MetaSnapshot,
    /// Records since, in order.
    pub records: Vec<MetaRecord>,
}

fn encode_record<T: Serialize>(value: &T, max_bytes: usize) -> Result<Vec<u8>, MetaLogError> {
    let body = rmp_serde::to_vec_named(value)?;
    // Never write what `open` would refuse to read back.
    if body.len() > max_bytes {
        return Err(MetaLogError::TooLarge { bytes: body.len(), max: max_bytes });
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes framed records from `bytes`; returns them and the length of the
/// valid prefix (a torn or corrupt tail ends the run).
fn decode_records<T: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> (Vec<T>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > max_bytes || bytes.len() - at - 8 < len {
            break;
        }
        let body = &bytes[at + 8..at + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        match rmp_serde::from_slice(body) {
            Ok(v) => out.push(v),
            Err(_) => break,
        }
        at += 8 + len;
    }
    (out, at)
}

impl MetaLog {
    fn log_path(dir: &Path, generation: u64) -> PathBuf {
        dir.join(format!("metadata-{generation}.log"))
    }

    /// Opens (or creates) the metadata log in `dir` on the real file system,
    /// truncating a torn tail.
    pub fn open(dir: &Path) -> Result<(MetaLog, Recovered), MetaLogError> {
        Self::open_in(fs::real(), dir)
    }

    /// Opens (or creates) the metadata log in `dir` on `fs`, truncating a torn tail.
    pub fn open_in(fs: FsRef, dir: &Path) -> Result<(MetaLog, Recovered), MetaLogError> {
        fs.create_dir_all(dir).map_err(io_err(dir))?;
        let snap_path = dir.join("snapshot");
        let (generation, snapshot) = match fs.read(&snap_path) {
            Ok(bytes) => {
                let (mut v, _) = decode_records::<SnapshotFile>(&bytes, METADATA_SNAPSHOT_BYTES_MAX);
                let s = v.pop().ok_or_else(|| MetaLogError::CorruptSnapshot {
                    path: snap_path.clone(),
                    reason: "checksum or format mismatch".into(),
                })?;
                (s.generation, s.state)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, MetaSnapshot::default()),
            Err(e) => return Err(MetaLogError::Io { path: snap_path, source: e }),
        };
        let path = Self::log_path(dir, generation);
        let file = fs.open(&path, OpenOptions::create_append()).map_err(io_err(&path))?;
        let bytes = file.read_all().map_err(io_err(&path))?;
        let (records, valid) = decode_records::<MetaRecord>(&bytes, METADATA_RECORD_BYTES_MAX);
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), valid, len = bytes.len(), "truncating torn metadata log tail");
            file.set_len(valid as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let log = MetaLog { fs, dir: dir.to_path_buf(), generation, file, records: records.len() as u64 };
        log.remove_stale_logs();
        Ok((log, Recovered { snapshot, records }))
    }

    fn remove_stale_logs(&self) {
        let Ok(names) = self.fs.read_dir(&self.dir) else { return };
        let keep = Self::log_path(&self.dir, self.generation);
        for name in names {
            let p = self.dir.join(&name);
            let name = name.to_string_lossy();
            if p != keep && name.starts_with("metadata-") && name.ends_with(".log") {
                let _ = self.fs.remove_file(&p);
            }
        }
    }

    /// Appends one record and fsyncs it.
    pub fn append(&mut self, record: &MetaRecord) -> Result<(), MetaLogError> {
        let bytes = encode_record(record, METADATA_RECORD_BYTES_MAX)?;
        let path = Self::log_path(&self.dir, self.generation);
        self.file.append_all(&bytes).map_err(io_err(&path))?;
        self.file.sync_data().map_err(io_err(&path))?;
        self.records += 1;
        Ok(())
    }

    /// Records appended since the last snapshot.
    pub fn records_since_snapshot(&self) -> u64 {
        self.records
    }

    /// Writes `state` as the new snapshot and starts an empty log.
    pub fn snapshot(&mut self, state: MetaSnapshot) -> Result<(), MetaLogError> {
        let generation = self.generation + 1;
        let bytes = encode_record(&SnapshotFile { generation, state }, METADATA_SNAPSHOT_BYTES_MAX)?;
        let tmp = self.dir.join("snapshot.tmp");
        let f = self.fs.open(&tmp, OpenOptions::create_truncate()).map_err(io_err(&tmp))?;
        f.write_all_at(&bytes, 0).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
        let new_log_path = Self::log_path(&self.dir, generation);
        let new_log = self
            .fs
            .open(&new_log_path, OpenOptions::create_truncate())
            .map_err(io_err(&new_log_path))?;
        let snap = self.dir.join("snapshot");
        self.fs.rename(&tmp, &snap).map_err(io_err(&snap))?;
        self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        self.generation = generation;
        self.file = new_log;
        self.records = 0;
        self.remove_stale_logs();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicMetadata;

    fn topic(name: &str, id: u64) -> MetaRecord {
        MetaRecord::TopicCreated(TopicMetadata { name: name.into(), topic_id: id, partitions: vec![], config: Default::default() })
    }

    #[test]
    fn given_appended_records_when_reopening_should_replay_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, rec) = MetaLog::open(dir.path()).expect("open");
        assert!(rec.records.is_empty());
        log.append(&topic("a", 1)).expect("append");
        log.append(&MetaRecord::TopicDeleted { name: "a".into() }).expect("append");
        drop(log);
        let (_, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.records, vec![topic("a", 1), MetaRecord::TopicDeleted { name: "a".into() }]);
    }

    #[test]
    fn given_torn_tail_when_reopening_should_keep_whole_records_and_append_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = MetaLog::open(dir.path()).expect("open");
        log.append(&topic("a", 1)).expect("append");
        drop(log);
        let path = dir.path().join("metadata-0.log");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open log");
        std::io::Write::write_all(&mut f, &[0, 0, 0, 50, 1, 2]).expect("torn write");
        drop(f);
        let (mut log, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.records.len(), 1);
        log.append(&topic("b", 2)).expect("append after tear");
        drop(log);
        let (_, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.records, vec![topic("a", 1), topic("b", 2)]);
    }

    #[test]
    fn given_snapshot_when_reopening_should_restore_it_and_only_later_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = MetaLog::open(dir.path()).expect("open");
        log.append(&topic("a", 1)).expect("append");
        let state = MetaSnapshot { version: 1, next_topic_id: 1, ..Default::default() };
        log.snapshot(state.clone()).expect("snapshot");
        log.append(&topic("b", 2)).expect("append");
        drop(log);
        let (_, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.snapshot, state);
        assert_eq!(rec.records, vec![topic("b", 2)]);
    }
}
