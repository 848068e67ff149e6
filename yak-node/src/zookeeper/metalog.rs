//! The metadata log on disk: every change is appended and fsynced before it
//! is applied; now and then the whole state goes to a snapshot.
//!
//! Files in the ZooKeeper data dir: `snapshot` (the state when generation G
//! began) and `metadata-G.log` (records since). A record is `u32 length`,
//! `u32 crc32c`, MessagePack body. A snapshot is written to a temp file,
//! fsynced and renamed; only then does a new, empty log of generation G+1
//! replace the old one, so a crash at any point replays to the same state.
//!
//! A record is written at the end of the last whole record, never after a
//! torn one: a failed write is cut off (and the cut fsynced) before the
//! request fails. When the state on disk can no longer be known (an fsync
//! failed, or cutting a torn write failed) every call returns a fail-stop
//! error ([`MetaLogError::is_fail_stop`]): the caller exits and the
//! restarted process replays what is really on disk. A failed snapshot is
//! not fatal: the log keeps growing and the snapshot is tried again later.
//! All file I/O goes through the storage seam ([`crate::storage::fs`]).

use crate::limits::{
    METADATA_LOG_RECORDS_PER_SNAPSHOT, METADATA_RECORD_BYTES_MAX, METADATA_SNAPSHOT_BYTES_MAX,
    METADATA_SNAPSHOT_RETRY_RECORDS,
};
use crate::protocol::metalog::{MetaRecord, MetaSnapshot};
use crate::storage::fs::{FsFile, FsRef, OpenOptions};
use serde::{de::DeserializeOwned, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What can go wrong with the metadata files.
#[derive(Debug, Error)]
pub enum MetaLogError {
    /// A file could not be read or written; nothing was changed (a torn
    /// write was cut off again).
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
    /// What is on disk is no longer known (an fsync failed, or a torn write
    /// could not be cut off): the process must stop and replay the disk.
    #[error("{path}: {step} failed, metadata on disk unknown: {source}")]
    FailStop {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        step: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// An earlier fail-stop error: the log writes nothing more.
    #[error("{path}: metadata log stopped after an earlier failure")]
    Stopped {
        /// The log.
        path: PathBuf,
    },
}

impl MetaLogError {
    /// The process must stop (and be restarted to replay the disk).
    pub fn is_fail_stop(&self) -> bool {
        matches!(
            self,
            MetaLogError::FailStop { .. } | MetaLogError::Stopped { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MetaLogError + '_ {
    move |source| MetaLogError::Io {
        path: path.to_path_buf(),
        source,
    }
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
    /// Bytes of whole, fsynced records: where the next record goes.
    len: u64,
    records: u64,
    /// A snapshot is due once `records` reaches this (raised after a failed one).
    snapshot_at: u64,
    /// A fail-stop error happened: nothing more is written.
    stopped: bool,
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
        return Err(MetaLogError::TooLarge {
            bytes: body.len(),
            max: max_bytes,
        });
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
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
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

/// Writes records at chosen offsets: the file is opened without O_APPEND.
fn log_options(truncate: bool) -> OpenOptions {
    OpenOptions {
        read: true,
        write: true,
        append: false,
        create: true,
        truncate,
    }
}

impl MetaLog {
    fn log_path(dir: &Path, generation: u64) -> PathBuf {
        dir.join(format!("metadata-{generation}.log"))
    }

    fn path(&self) -> PathBuf {
        Self::log_path(&self.dir, self.generation)
    }

    /// Opens (or creates) the metadata log in `dir` on the real file system,
    /// truncating a torn tail.
    pub fn open(dir: &Path) -> Result<(MetaLog, Recovered), MetaLogError> {
        Self::open_in(crate::storage::real_fs(), dir)
    }

    /// Opens (or creates) the metadata log in `dir` on `fs`, truncating a torn tail.
    pub fn open_in(fs: FsRef, dir: &Path) -> Result<(MetaLog, Recovered), MetaLogError> {
        fs.create_dir_all(dir).map_err(io_err(dir))?;
        // The directory's own entry must be durable before any record in it
        // counts (its parent, the data dir, is made by whoever owns it).
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent).map_err(io_err(parent))?;
        }
        let snap_path = dir.join("snapshot");
        let (generation, snapshot) = match fs.read(&snap_path) {
            Ok(bytes) => {
                let (mut v, _) =
                    decode_records::<SnapshotFile>(&bytes, METADATA_SNAPSHOT_BYTES_MAX);
                let s = v.pop().ok_or_else(|| MetaLogError::CorruptSnapshot {
                    path: snap_path.clone(),
                    reason: "checksum or format mismatch".into(),
                })?;
                (s.generation, s.state)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, MetaSnapshot::default()),
            Err(e) => {
                return Err(MetaLogError::Io {
                    path: snap_path,
                    source: e,
                })
            }
        };
        let path = Self::log_path(dir, generation);
        let file = fs.open(&path, log_options(false)).map_err(io_err(&path))?;
        let bytes = file.read_all().map_err(io_err(&path))?;
        let (records, valid) = decode_records::<MetaRecord>(&bytes, METADATA_RECORD_BYTES_MAX);
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), valid, len = bytes.len(), "truncating torn metadata log tail");
            file.set_len(valid as u64).map_err(io_err(&path))?;
        }
        // Whatever was read counts only once it is known to be on disk (a
        // record written before a crash may still be only in the page cache),
        // and so does the log's name in the directory.
        file.sync_all().map_err(io_err(&path))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        let log = MetaLog {
            fs,
            dir: dir.to_path_buf(),
            generation,
            file,
            len: valid as u64,
            records: records.len() as u64,
            snapshot_at: METADATA_LOG_RECORDS_PER_SNAPSHOT,
            stopped: false,
        };
        log.remove_stale_logs();
        Ok((log, Recovered { snapshot, records }))
    }

    fn remove_stale_logs(&self) {
        let Ok(names) = self.fs.read_dir(&self.dir) else {
            return;
        };
        let keep = self.path();
        for name in names {
            let p = self.dir.join(&name);
            let name = name.to_string_lossy();
            if p != keep && name.starts_with("metadata-") && name.ends_with(".log") {
                let _ = self.fs.remove_file(&p);
            }
        }
    }

    fn running(&self) -> Result<(), MetaLogError> {
        if self.stopped {
            return Err(MetaLogError::Stopped { path: self.path() });
        }
        Ok(())
    }

    /// Marks the log stopped and returns the fail-stop error.
    fn stop(&mut self, path: PathBuf, step: &'static str, source: io::Error) -> MetaLogError {
        self.stopped = true;
        MetaLogError::FailStop { path, step, source }
    }

    /// Appends one record after the last whole one and fsyncs it. On a
    /// failed write the partial record is cut off and the error is returned
    /// (the caller must not apply the record); if that cut or the fsync
    /// fails, the error is a fail-stop one.
    pub fn append(&mut self, record: &MetaRecord) -> Result<(), MetaLogError> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends `records` in one write and one fsync (a change and the events
    /// describing it). All or nothing on an error, as [`MetaLog::append`];
    /// a crash in the middle may leave a prefix, whole records only, which
    /// is why a change goes before its events.
    pub fn append_all(&mut self, records: &[MetaRecord]) -> Result<(), MetaLogError> {
        self.running()?;
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend_from_slice(&encode_record(record, METADATA_RECORD_BYTES_MAX)?);
        }
        let path = self.path();
        if let Err(source) = self.file.write_all_at(&bytes, self.len) {
            // Part of the records may be in the file: cut it off, durably,
            // before anything else is written.
            return Err(
                match self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data())
                {
                    Ok(()) => MetaLogError::Io { path, source },
                    Err(e) => self.stop(path, "cutting off a torn record", e),
                },
            );
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages and
            // a later fsync would "succeed": never retry, stop.
            return Err(self.stop(path, "fsync", e));
        }
        self.len += bytes.len() as u64;
        self.records += records.len() as u64;
        Ok(())
    }

    /// Records appended since the last snapshot.
    pub fn records_since_snapshot(&self) -> u64 {
        self.records
    }

    /// Takes a snapshot of `state()` if enough records have been appended
    /// since the last one. A snapshot that fails without a fail-stop error
    /// (a full disk) is logged and tried again after
    /// `METADATA_SNAPSHOT_RETRY_RECORDS` more records; the log stays as it
    /// was, so nothing is lost. Returns whether a snapshot was taken.
    pub fn snapshot_if_due(
        &mut self,
        state: impl FnOnce() -> MetaSnapshot,
    ) -> Result<bool, MetaLogError> {
        if self.records < self.snapshot_at {
            return Ok(false);
        }
        match self.snapshot(state()) {
            Ok(()) => Ok(true),
            Err(e) if e.is_fail_stop() => Err(e),
            Err(e) => {
                self.snapshot_at = self.records + METADATA_SNAPSHOT_RETRY_RECORDS;
                tracing::warn!(error = %e, records = self.records, retry_at = self.snapshot_at, "metadata snapshot failed; keeping the log");
                Ok(false)
            }
        }
    }

    /// Writes `state` as the new snapshot and starts an empty log. On an
    /// error before the rename nothing changed (the temp file is removed);
    /// a failed directory fsync after it is a fail-stop error.
    pub fn snapshot(&mut self, state: MetaSnapshot) -> Result<(), MetaLogError> {
        self.running()?;
        let generation = self.generation + 1;
        let bytes = encode_record(
            &SnapshotFile { generation, state },
            METADATA_SNAPSHOT_BYTES_MAX,
        )?;
        let tmp = self.dir.join("snapshot.tmp");
        let new_log_path = Self::log_path(&self.dir, generation);
        let prepared = self.write_synced(&tmp, &bytes).and_then(|()| {
            self.fs
                .open(&new_log_path, log_options(true))
                .map_err(io_err(&new_log_path))
        });
        let new_log = match prepared {
            Ok(f) => f,
            Err(e) => {
                // Nothing depends on the temp file: free its space.
                let _ = self.fs.remove_file(&tmp);
                return Err(e);
            }
        };
        let snap = self.dir.join("snapshot");
        if let Err(e) = self.fs.rename(&tmp, &snap) {
            let _ = self.fs.remove_file(&tmp);
            return Err(MetaLogError::Io {
                path: snap,
                source: e,
            });
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            // Whether a crash leaves the old snapshot or the new is unknown.
            let dir = self.dir.clone();
            return Err(self.stop(dir, "fsync of the directory after a snapshot", e));
        }
        self.generation = generation;
        self.file = new_log;
        self.len = 0;
        self.records = 0;
        self.snapshot_at = METADATA_LOG_RECORDS_PER_SNAPSHOT;
        self.remove_stale_logs();
        Ok(())
    }

    /// Writes `bytes` to a new file at `path` and fsyncs it. A failure here
    /// is not fatal: the caller discards the file, nothing reads it.
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> Result<(), MetaLogError> {
        let f = self
            .fs
            .open(path, OpenOptions::create_truncate())
            .map_err(io_err(path))?;
        f.write_all_at(bytes, 0)
            .and_then(|()| f.sync_all())
            .map_err(io_err(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicMetadata;
    use crate::storage::fs::{Fs, SimFs, WriteFault};

    fn topic(name: &str, id: u64) -> MetaRecord {
        MetaRecord::TopicCreated(TopicMetadata {
            name: name.into(),
            topic_id: id,
            partitions: vec![],
            config: Default::default(),
        })
    }

    #[test]
    fn given_appended_records_when_reopening_should_replay_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, rec) = MetaLog::open(dir.path()).expect("open");
        assert!(rec.records.is_empty());
        log.append(&topic("a", 1)).expect("append");
        log.append(&MetaRecord::TopicDeleted { name: "a".into() })
            .expect("append");
        drop(log);
        let (_, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(
            rec.records,
            vec![topic("a", 1), MetaRecord::TopicDeleted { name: "a".into() }]
        );
    }

    #[test]
    fn given_torn_tail_when_reopening_should_keep_whole_records_and_append_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = MetaLog::open(dir.path()).expect("open");
        log.append(&topic("a", 1)).expect("append");
        drop(log);
        let path = dir.path().join("metadata-0.log");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open log");
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
        let state = MetaSnapshot {
            version: 1,
            next_topic_id: 1,
            ..Default::default()
        };
        log.snapshot(state.clone()).expect("snapshot");
        log.append(&topic("b", 2)).expect("append");
        drop(log);
        let (_, rec) = MetaLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.snapshot, state);
        assert_eq!(rec.records, vec![topic("b", 2)]);
    }

    /// A disk holding a data dir that already survives a power cut (made
    /// by whoever owns it), in which ZooKeeper makes `zookeeper/`.
    fn data_disk() -> SimFs {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/data")).expect("data dir");
        sim.sync_dir(Path::new("/")).expect("sync root");
        sim
    }

    fn sim_dir() -> &'static Path {
        Path::new("/data/zookeeper")
    }

    /// A restart after a power cut: only what was fsynced is left.
    fn restart(sim: &SimFs) -> (MetaLog, Recovered) {
        sim.power_cut();
        MetaLog::open_in(sim.shared(), sim_dir()).expect("reopen")
    }

    #[test]
    fn given_write_failing_mid_record_when_appending_should_fail_cut_back_and_replay_later_records()
    {
        type Fault = fn(&SimFs, u64);
        let faults: [(&str, Fault); 3] = [
            ("short write then ENOSPC", |sim, _| {
                sim.fail_write(0, WriteFault::Short(5));
                sim.fail_write(1, WriteFault::NoSpace);
            }),
            ("short write then EIO", |sim, _| {
                sim.fail_write(0, WriteFault::Short(9));
                sim.fail_write(1, WriteFault::Io);
            }),
            ("disk full 7 bytes into the record", |sim, used| {
                sim.set_capacity(Some(used + 7))
            }),
        ];
        let log_path = sim_dir().join("metadata-0.log");
        for (what, fault) in faults {
            let sim = data_disk();
            let (mut log, _) = MetaLog::open_in(sim.shared(), sim_dir()).expect("open");
            log.append(&topic("a", 1)).expect("append a");
            let good = sim.len(&log_path).expect("log length");
            fault(&sim, good);
            assert!(
                log.append(&topic("b", 2)).is_err(),
                "{what}: the append fails"
            );
            assert_eq!(
                sim.len(&log_path).expect("log length"),
                good,
                "{what}: the log is back at its last good length"
            );
            sim.set_capacity(None);
            log.append(&topic("c", 3))
                .expect("append after the failure");
            drop(log);
            let (_, rec) = restart(&sim);
            assert_eq!(
                rec.records,
                vec![topic("a", 1), topic("c", 3)],
                "{what}: later records replayed"
            );
        }
    }

    #[test]
    fn given_fsync_failing_when_appending_should_fail_stop_and_append_nothing_more() {
        let sim = data_disk();
        let (mut log, _) = MetaLog::open_in(sim.shared(), sim_dir()).expect("open");
        log.append(&topic("a", 1)).expect("append a");
        sim.fail_syncs(1);
        let err = log.append(&topic("b", 2)).expect_err("the fsync failed");
        assert!(err.is_fail_stop(), "a failed fsync is fail-stop: {err}");
        let again = log
            .append(&topic("c", 3))
            .expect_err("no append after a failed fsync");
        assert!(again.is_fail_stop(), "{again}");
        assert!(log
            .snapshot(MetaSnapshot::default())
            .expect_err("no snapshot either")
            .is_fail_stop());
        drop(log);
        let (_, rec) = restart(&sim);
        assert_eq!(
            rec.records,
            vec![topic("a", 1)],
            "only the acknowledged record is replayed"
        );
    }

    #[test]
    fn given_acknowledged_appends_when_power_is_cut_should_replay_them() {
        let sim = data_disk();
        let (mut log, _) = MetaLog::open_in(sim.shared(), sim_dir()).expect("open");
        log.append(&topic("a", 1)).expect("append a");
        let (mut log, rec) = restart(&sim);
        assert_eq!(
            rec.records,
            vec![topic("a", 1)],
            "a power cut right after the first append"
        );
        let state = MetaSnapshot {
            version: 1,
            next_topic_id: 1,
            ..Default::default()
        };
        log.snapshot(state.clone()).expect("snapshot");
        log.append(&topic("b", 2)).expect("append b");
        let (_, rec) = restart(&sim);
        assert_eq!(
            rec.snapshot, state,
            "a power cut right after a snapshot and an append"
        );
        assert_eq!(rec.records, vec![topic("b", 2)]);
    }

    #[test]
    fn given_full_disk_when_a_snapshot_is_due_should_keep_the_log_and_retry_later() {
        let sim = data_disk();
        let (mut log, _) = MetaLog::open_in(sim.shared(), sim_dir()).expect("open");
        for i in 0..METADATA_LOG_RECORDS_PER_SNAPSHOT {
            log.append(&MetaRecord::ProducerIdsAllocated { next: i as i64 + 1 })
                .expect("append");
        }
        let used = sim
            .len(&sim_dir().join("metadata-0.log"))
            .expect("log length");
        sim.set_capacity(Some(used + 50));
        assert!(!log
            .snapshot_if_due(MetaSnapshot::default)
            .expect("a failed snapshot is not fatal"));
        assert!(
            !sim.exists(&sim_dir().join("snapshot.tmp")),
            "the temp file is removed"
        );
        sim.set_capacity(None);
        log.append(&topic("a", 1)).expect("the log goes on");
        assert!(
            !log.snapshot_if_due(MetaSnapshot::default)
                .expect("not due yet"),
            "no retry at every record"
        );
        for i in 1..METADATA_SNAPSHOT_RETRY_RECORDS {
            log.append(&MetaRecord::ProducerIdsAllocated { next: i as i64 })
                .expect("append");
        }
        assert!(
            log.snapshot_if_due(MetaSnapshot::default).expect("retried"),
            "retried after the retry interval"
        );
        assert_eq!(log.records_since_snapshot(), 0);
    }
}
