//! The sparse time index of one segment (Kafka's `.timeindex`):
//! `(timestamp, relative offset)` entries, 12 bytes each (`i64` ms then
//! `u32`, big-endian). An entry sits at each batch that has an offset-index
//! entry and holds the largest batch timestamp of the segment up to and
//! including that batch, so timestamps never decrease and offsets increase.
//! Held in memory for binary search and appended to its file.
//! Never reads the log, never decides when to add an entry (the segment
//! does, beside its offset-index entries).

use std::path::{Path, PathBuf};

use super::fs::{Fs, FsFile, OpenOptions};
use super::index::Index;
use super::{io_err, sync_err, StorageError};

/// Bytes of one time index entry.
pub(crate) const TIME_ENTRY_BYTES: u64 = 12;

/// One entry: the largest timestamp of the segment's batches up to and
/// including the one at `segment base + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) max_timestamp_ms: i64,
    pub(crate) relative_offset: u32,
}

/// The in-memory entries and the open file.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    path: PathBuf,
    file: Box<dyn FsFile>,
    entries: Vec<TimeEntry>,
    /// Entries on disk as of the last fsync; `None` when the file changed
    /// since (or was never synced).
    synced_entries: std::cell::Cell<Option<usize>>,
}

impl TimeIndex {
    /// Creates an empty time index file, replacing any stale one.
    pub(crate) fn create(fs: &dyn Fs, path: &Path) -> Result<TimeIndex, StorageError> {
        let file = fs
            .open(path, OpenOptions::create_truncate())
            .map_err(io_err(path))?;
        Ok(TimeIndex {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            synced_entries: std::cell::Cell::new(None),
        })
    }

    /// Loads an existing time index, keeping the longest prefix of whole
    /// entries whose offsets increase, whose timestamps do not decrease and
    /// whose offset is that of an entry of `offsets` (the segment's offset
    /// index, already checked against the log): an entry a truncation, a
    /// torn write or a power cut left behind goes, with everything after it.
    /// The file is trimmed to match. `Ok(None)` when the file does not exist
    /// (a data dir written before time indexes: the caller rebuilds it).
    pub(crate) fn load(
        fs: &dyn Fs,
        path: &Path,
        offsets: &Index,
    ) -> Result<Option<TimeIndex>, StorageError> {
        let file = match fs.open(path, OpenOptions::read_write()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let file_bytes = file.len().map_err(io_err(path))?;
        // At most one entry per offset-index entry: anything beyond is garbage.
        let entries_max = offsets.len() as u64;
        let keep_bytes = (file_bytes / TIME_ENTRY_BYTES).min(entries_max) * TIME_ENTRY_BYTES;
        let mut raw = vec![0u8; keep_bytes as usize];
        file.read_exact_at(&mut raw, 0).map_err(io_err(path))?;
        let entries = valid_prefix(&raw, offsets);
        let valid_bytes = entries.len() as u64 * TIME_ENTRY_BYTES;
        if valid_bytes != file_bytes {
            tracing::warn!(path = %path.display(), file_bytes, valid_bytes, "trimming time index");
            file.set_len(valid_bytes).map_err(io_err(path))?;
        }
        Ok(Some(TimeIndex {
            path: path.to_path_buf(),
            file,
            entries,
            synced_entries: std::cell::Cell::new(None),
        }))
    }

    /// Appends an entry; it must follow the last one. All or nothing: a
    /// failed write is cut off again.
    pub(crate) fn push(&mut self, entry: TimeEntry) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset
                    && entry.max_timestamp_ms >= last.max_timestamp_ms,
                "invariant: time index offsets increase, timestamps never decrease"
            );
        }
        let mut bytes = [0u8; TIME_ENTRY_BYTES as usize];
        bytes[..8].copy_from_slice(&entry.max_timestamp_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&entry.relative_offset.to_be_bytes());
        let at = self.entries.len() as u64 * TIME_ENTRY_BYTES;
        self.synced_entries.set(None);
        if let Err(e) = self.file.write_all_at(&bytes, at) {
            if let Err(undo) = self.file.set_len(at) {
                tracing::warn!(path = %self.path.display(), error = %undo, "cannot cut a torn time index entry; recovery will");
            }
            return Err(io_err(&self.path)(e));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The last entry whose timestamp is below `timestamp_ms`: every batch
    /// up to and including its own is older than `timestamp_ms`, so a
    /// search for the first batch at or after it starts there.
    pub(crate) fn last_before(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let after = self
            .entries
            .partition_point(|e| e.max_timestamp_ms < timestamp_ms);
        after.checked_sub(1).map(|i| self.entries[i])
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// Drops every entry past `relative_offset` (`None`: every entry).
    pub(crate) fn truncate_after(
        &mut self,
        relative_offset: Option<u32>,
    ) -> Result<(), StorageError> {
        let keep = relative_offset.map_or(0, |r| {
            self.entries.partition_point(|e| e.relative_offset <= r)
        });
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.synced_entries.set(None);
            let bytes = keep as u64 * TIME_ENTRY_BYTES;
            self.file.set_len(bytes).map_err(io_err(&self.path))?;
        }
        Ok(())
    }

    /// True when the file changed since its last fsync.
    pub(crate) fn needs_sync(&self) -> bool {
        self.synced_entries.get() != Some(self.entries.len())
    }

    /// Makes the file durable (no fsync when nothing changed since the last).
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        let n = self.entries.len();
        if self.synced_entries.get() == Some(n) {
            return Ok(());
        }
        self.file.sync_data().map_err(sync_err(&self.path))?;
        self.synced_entries.set(Some(n));
        Ok(())
    }

    /// Path of the time index file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Entries from `raw` up to the first whose offset does not increase, whose
/// timestamp decreases, or whose offset has no entry in `offsets`.
fn valid_prefix(raw: &[u8], offsets: &Index) -> Vec<TimeEntry> {
    let mut entries: Vec<TimeEntry> = Vec::with_capacity(raw.len() / TIME_ENTRY_BYTES as usize);
    for chunk in raw.chunks_exact(TIME_ENTRY_BYTES as usize) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&chunk[..8]);
        let entry = TimeEntry {
            max_timestamp_ms: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
        };
        let follows = entries.last().is_none_or(|l| {
            entry.relative_offset > l.relative_offset
                && entry.max_timestamp_ms >= l.max_timestamp_ms
        });
        let indexed = offsets
            .lookup(entry.relative_offset)
            .is_some_and(|e| e.relative_offset == entry.relative_offset);
        if !follows || !indexed {
            break;
        }
        entries.push(entry);
    }
    entries
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fs::SimFs;
    use crate::index::Entry;

    fn overwrite(sim: &SimFs, path: &Path, raw: &[u8]) {
        let f = sim.open(path, OpenOptions::create_truncate()).unwrap();
        f.write_all_at(raw, 0).unwrap();
    }

    fn time(max_timestamp_ms: i64, relative_offset: u32) -> TimeEntry {
        TimeEntry {
            max_timestamp_ms,
            relative_offset,
        }
    }

    /// An offset index with entries at relative offsets 10, 20, 30, 40.
    fn offsets(sim: &SimFs) -> Index {
        sim.create_dir_all(Path::new("/d")).unwrap();
        let mut index = Index::create(sim, Path::new("/d/0.index")).unwrap();
        for i in 1..=4u32 {
            index
                .push(Entry {
                    relative_offset: i * 10,
                    position: i * 100,
                })
                .unwrap();
        }
        index
    }

    #[test]
    fn given_entries_when_looking_up_each_boundary_should_return_last_older_entry() {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let mut t = TimeIndex::create(&sim, Path::new("/d/0.timeindex")).unwrap();
        for (ts, o) in [(100, 10), (100, 20), (250, 30)] {
            t.push(time(ts, o)).unwrap();
        }
        assert_eq!(t.last_before(i64::MIN), None);
        assert_eq!(t.last_before(100), None);
        assert_eq!(t.last_before(101), Some(time(100, 20)));
        assert_eq!(t.last_before(250), Some(time(100, 20)));
        assert_eq!(t.last_before(251), Some(time(250, 30)));
        assert_eq!(t.last_before(i64::MAX), Some(time(250, 30)));
    }

    #[test]
    fn given_torn_tail_and_stale_entries_when_loading_should_keep_valid_prefix() {
        let sim = SimFs::new();
        let offsets = offsets(&sim);
        let path = Path::new("/d/0.timeindex");
        let mut t = TimeIndex::create(&sim, path).unwrap();
        for (ts, o) in [(5, 10), (7, 20), (7, 30)] {
            t.push(time(ts, o)).unwrap();
        }
        drop(t);
        let mut raw = sim.read(path).unwrap();
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0]); // torn entry
        overwrite(&sim, path, &raw);
        let t = TimeIndex::load(&sim, path, &offsets).unwrap().unwrap();
        assert_eq!(t.last(), Some(time(7, 30)));
        assert_eq!(sim.len(path).unwrap(), 3 * TIME_ENTRY_BYTES);
    }

    #[test]
    fn given_entry_off_the_offset_index_or_going_back_when_loading_should_stop_there() {
        let sim = SimFs::new();
        let offsets = offsets(&sim);
        for (bad, kept) in [
            (time(9, 25), 1), // offset 25 has no offset-index entry
            (time(3, 30), 1), // timestamp goes back
            (time(9, 10), 1), // offset does not increase
            (time(0, 0), 1),  // zeros left by a power cut
            (time(9, 50), 1), // past the offset index (a truncation)
            (time(9, 30), 2), // a good one
        ] {
            let path = Path::new("/d/x.timeindex");
            let mut t = TimeIndex::create(&sim, path).unwrap();
            t.push(time(5, 20)).unwrap();
            drop(t);
            let mut raw = sim.read(path).unwrap();
            raw.extend_from_slice(&bad.max_timestamp_ms.to_be_bytes());
            raw.extend_from_slice(&bad.relative_offset.to_be_bytes());
            overwrite(&sim, path, &raw);
            let t = TimeIndex::load(&sim, path, &offsets).unwrap().unwrap();
            assert_eq!(t.entries.len(), kept, "{bad:?}");
        }
    }

    #[test]
    fn given_entries_when_truncating_after_an_offset_should_drop_later_ones_on_disk() {
        let sim = SimFs::new();
        let offsets = offsets(&sim);
        let path = Path::new("/d/0.timeindex");
        let mut t = TimeIndex::create(&sim, path).unwrap();
        for (ts, o) in [(1, 10), (2, 20), (3, 30)] {
            t.push(time(ts, o)).unwrap();
        }
        t.truncate_after(Some(25)).unwrap();
        assert_eq!(t.last(), Some(time(2, 20)));
        t.truncate_after(None).unwrap();
        assert_eq!(t.last(), None);
        assert!(t.needs_sync());
        t.flush().unwrap();
        assert!(!t.needs_sync());
        let t = TimeIndex::load(&sim, path, &offsets).unwrap().unwrap();
        assert_eq!(t.last(), None);
    }

    #[test]
    fn given_missing_file_when_loading_should_return_none() {
        let sim = SimFs::new();
        let offsets = offsets(&sim);
        assert!(
            TimeIndex::load(&sim, Path::new("/d/none.timeindex"), &offsets)
                .unwrap()
                .is_none()
        );
    }
}
