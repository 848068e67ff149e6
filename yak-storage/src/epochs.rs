//! The leader-epoch cache of one partition: `(epoch, start offset)` pairs,
//! both strictly increasing, kept in `leader-epoch-checkpoint` (text, one
//! `epoch start_offset` line each), rewritten atomically on every change.
//! Never reads segments.

use std::path::{Path, PathBuf};

use super::fs::{Fs, OpenOptions};
use super::{io_err, sync_dir, sync_err, StorageError};

/// Name of the checkpoint file in the partition directory.
pub(crate) const FILE_NAME: &str = "leader-epoch-checkpoint";
/// Largest checkpoint file read at start-up; the rest is ignored.
const FILE_BYTES_MAX: u64 = yak_protocol::limits::LEADER_EPOCH_FILE_BYTES_MAX;

/// One epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub(crate) epoch: u32,
    pub(crate) start_offset: u64,
}

/// The cache and its file.
#[derive(Debug)]
pub(crate) struct EpochCache {
    dir: PathBuf,
    path: PathBuf,
    entries: Vec<EpochEntry>,
    /// A write failed: the file may not match `entries`; the next change
    /// (or [`EpochCache::ensure_written`]) rewrites it.
    stale: bool,
}

impl EpochCache {
    /// Loads the checkpoint of `dir`, keeping the longest prefix of
    /// well-formed, increasing lines. No file: an empty cache.
    pub(crate) fn load(fs: &dyn Fs, dir: &Path) -> Result<EpochCache, StorageError> {
        let path = dir.join(FILE_NAME);
        let mut text = String::new();
        match fs.open(&path, OpenOptions::read()) {
            Ok(f) => {
                let len = f.len().map_err(io_err(&path))?.min(FILE_BYTES_MAX);
                let mut raw = vec![0u8; len as usize];
                f.read_exact_at(&mut raw, 0).map_err(io_err(&path))?;
                text = String::from_utf8_lossy(&raw).into_owned();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let entries = parse(&text);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        if entries.len() != lines {
            tracing::warn!(path = %path.display(), kept = entries.len(), lines, "ignoring bad leader-epoch lines");
        }
        Ok(EpochCache {
            dir: dir.to_path_buf(),
            path,
            entries,
            stale: false,
        })
    }

    /// The latest epoch, if any.
    pub(crate) fn latest(&self) -> Option<u32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`; entries that contradict
    /// it (an epoch or start offset not below it) are dropped first.
    /// All or nothing in memory: on error the entries are as before (the
    /// file is rewritten at the next change).
    pub(crate) fn assign(
        &mut self,
        fs: &dyn Fs,
        epoch: u32,
        start_offset: u64,
    ) -> Result<(), StorageError> {
        let before = self.entries.clone();
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.write(fs).inspect_err(|_| self.entries = before)
    }

    /// Rewrites the file if an earlier write failed, so it matches memory.
    pub(crate) fn ensure_written(&mut self, fs: &dyn Fs) -> Result<(), StorageError> {
        if self.stale {
            self.write(fs)?;
        }
        Ok(())
    }

    /// Drops every epoch starting at `offset` or later: after a truncation
    /// to `offset` they hold no record.
    pub(crate) fn truncate_from(&mut self, fs: &dyn Fs, offset: u64) -> Result<(), StorageError> {
        let keep = self.entries.partition_point(|e| e.start_offset < offset);
        if keep == self.entries.len() {
            return self.ensure_written(fs);
        }
        self.entries.truncate(keep);
        self.write(fs)
    }

    /// The log now starts at `offset` (retention deleted what was below):
    /// drops the epochs that end at or before it and clamps the start of the
    /// one covering it to `offset`, as Kafka's `truncateFromStart`.
    pub(crate) fn truncate_start(&mut self, fs: &dyn Fs, offset: u64) -> Result<(), StorageError> {
        let covering = self.entries.partition_point(|e| e.start_offset <= offset);
        let Some(first) = covering.checked_sub(1) else {
            return self.ensure_written(fs);
        };
        if first == 0 && self.entries[0].start_offset == offset {
            return self.ensure_written(fs);
        }
        self.entries.drain(..first);
        self.entries[0].start_offset = offset;
        self.write(fs)
    }

    /// Kafka's OffsetsForLeaderEpoch answer: the largest epoch at most
    /// `epoch` and where the next higher epoch starts (`log_end_offset` if
    /// none). For an epoch below the first known one, that epoch itself and
    /// the first start offset (as Kafka). `None` with no epoch at all.
    pub(crate) fn end_offset_for(&self, epoch: u32, log_end_offset: u64) -> Option<(u32, u64)> {
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let end = self
            .entries
            .get(higher)
            .map_or(log_end_offset, |e| e.start_offset);
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, end)),
            None => self
                .entries
                .first()
                .map(|first| (epoch, first.start_offset)),
        }
    }

    /// Writes the checkpoint atomically: temporary file, fsync, rename, fsync
    /// of the directory.
    /// A failure marks the cache stale until a write succeeds.
    fn write(&mut self, fs: &dyn Fs) -> Result<(), StorageError> {
        self.stale = true;
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let mut text = String::new();
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        let file = fs
            .open(&tmp, OpenOptions::create_truncate())
            .map_err(io_err(&tmp))?;
        file.write_all_at(text.as_bytes(), 0)
            .map_err(io_err(&tmp))?;
        file.sync_all().map_err(sync_err(&tmp))?;
        drop(file);
        fs.rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(fs, &self.dir)?;
        self.stale = false;
        Ok(())
    }
}

/// Entries up to the first malformed or non-increasing line.
fn parse(text: &str) -> Vec<EpochEntry> {
    let mut entries: Vec<EpochEntry> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            break;
        };
        let (Ok(epoch), Ok(start_offset)) = (epoch.parse::<u32>(), start.parse::<u64>()) else {
            break;
        };
        if entries
            .last()
            .is_some_and(|l| epoch <= l.epoch || start_offset <= l.start_offset)
        {
            break;
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    entries
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    fn cache(pairs: &[(u32, u64)]) -> (tempfile::TempDir, EpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::load(&RealFs, dir.path()).unwrap();
        for &(e, o) in pairs {
            c.assign(&RealFs, e, o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn given_epochs_when_asking_end_offset_should_answer_like_kafka() {
        let (_dir, c) = cache(&[(1, 0), (3, 40), (4, 90)]);
        let cases = [
            (0, Some((0, 0))),  // below the first epoch: first start offset
            (1, Some((1, 40))), // ends where epoch 3 starts
            (2, Some((1, 40))), // unknown epoch: the largest below it
            (3, Some((3, 90))),
            (4, Some((4, 120))), // latest: log end offset
            (9, Some((4, 120))), // above the latest: the latest
        ];
        for (asked, want) in cases {
            assert_eq!(c.end_offset_for(asked, 120), want, "epoch {asked}");
        }
    }

    #[test]
    fn given_no_epochs_when_asking_end_offset_should_return_none() {
        let (_dir, c) = cache(&[]);
        assert_eq!(c.end_offset_for(3, 0), None);
    }

    #[test]
    fn given_checkpoint_when_reloading_should_restore_entries() {
        let (dir, mut c) = cache(&[(1, 0), (2, 10), (5, 30)]);
        c.truncate_from(&RealFs, 10).unwrap();
        let reloaded = EpochCache::load(&RealFs, dir.path()).unwrap();
        assert_eq!(
            reloaded.entries,
            vec![EpochEntry {
                epoch: 1,
                start_offset: 0
            }]
        );
    }

    #[test]
    fn given_garbage_lines_when_loading_should_keep_valid_prefix() {
        let text = "1 0\n2 10\nbad line\n3 20\n";
        assert_eq!(parse(text).len(), 2);
        assert_eq!(parse("2 10\n1 20\n").len(), 1);
        assert_eq!(parse("").len(), 0);
    }

    #[test]
    fn given_contradicting_epoch_when_assigning_should_drop_later_entries() {
        let (_dir, mut c) = cache(&[(1, 0), (2, 10), (3, 20)]);
        c.assign(&RealFs, 4, 15).unwrap();
        assert_eq!(
            c.entries
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect::<Vec<_>>(),
            vec![(1, 0), (2, 10), (4, 15)]
        );
    }

    #[test]
    fn given_new_log_start_when_truncating_start_should_drop_and_clamp_like_kafka() {
        let cases: [(u64, &[(u32, u64)]); 5] = [
            (0, &[(1, 0), (3, 40), (4, 90)]),   // nothing below
            (10, &[(1, 10), (3, 40), (4, 90)]), // clamp the first
            (40, &[(3, 40), (4, 90)]),          // exactly at an epoch start
            (95, &[(4, 95)]),                   // inside the latest
            (500, &[(4, 500)]),                 // past every start
        ];
        for (start, want) in cases {
            let (dir, mut c) = cache(&[(1, 0), (3, 40), (4, 90)]);
            c.truncate_start(&RealFs, start).unwrap();
            let got: Vec<(u32, u64)> = c
                .entries
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect();
            assert_eq!(got, want, "start {start}");
            let reloaded = EpochCache::load(&RealFs, dir.path()).unwrap();
            assert_eq!(reloaded.entries, c.entries, "start {start} persisted");
        }
        let (_dir, mut empty) = cache(&[]);
        empty.truncate_start(&RealFs, 7).unwrap();
        assert_eq!(empty.latest(), None);
    }
}
