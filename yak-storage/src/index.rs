//! The sparse index of one segment: `(relative offset, file position)`
//! entries, 8 bytes each, big-endian, in increasing order. Held in memory for
//! binary search and appended to its file. Never reads the log itself.

use std::path::{Path, PathBuf};

use super::fs::{Fs, FsFile, OpenOptions};
use super::{io_err, sync_err, StorageError};

/// Bytes of one index entry.
pub(crate) const ENTRY_BYTES: u64 = 8;

/// One index entry: a batch starts at `position` with offset
/// `segment base + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

/// The in-memory entries and the open file.
#[derive(Debug)]
pub(crate) struct Index {
    path: PathBuf,
    file: Box<dyn FsFile>,
    entries: Vec<Entry>,
    /// Entries on disk as of the last fsync; `None` when the file changed
    /// since (or was never synced). Skips fsyncs of an unchanged index.
    synced_entries: std::cell::Cell<Option<usize>>,
}

impl Index {
    /// Creates an empty index file, replacing any stale one.
    pub(crate) fn create(fs: &dyn Fs, path: &Path) -> Result<Index, StorageError> {
        let file = fs
            .open(path, OpenOptions::create_truncate())
            .map_err(io_err(path))?;
        Ok(Index {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            synced_entries: std::cell::Cell::new(None),
        })
    }

    /// Loads an existing index, keeping the longest prefix of whole,
    /// increasing entries that point inside a log of `log_bytes`. The file is
    /// trimmed to match. `Ok(None)` when the file does not exist.
    pub(crate) fn load(
        fs: &dyn Fs,
        path: &Path,
        log_bytes: u64,
    ) -> Result<Option<Index>, StorageError> {
        let file = match fs.open(path, OpenOptions::read_write()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        let file_bytes = file.len().map_err(io_err(path))?;
        // A valid index has at most one entry per batch start, so it can never
        // be larger than the log; anything beyond is garbage and not read.
        let keep_bytes = file_bytes.min(log_bytes) / ENTRY_BYTES * ENTRY_BYTES;
        let mut raw = vec![0u8; keep_bytes as usize];
        file.read_exact_at(&mut raw, 0).map_err(io_err(path))?;
        let entries = valid_prefix(&raw, log_bytes);
        let valid_bytes = entries.len() as u64 * ENTRY_BYTES;
        if valid_bytes != file_bytes {
            tracing::warn!(path = %path.display(), file_bytes, valid_bytes, "trimming index");
            file.set_len(valid_bytes).map_err(io_err(path))?;
        }
        Ok(Some(Index {
            path: path.to_path_buf(),
            file,
            entries,
            synced_entries: std::cell::Cell::new(None),
        }))
    }

    /// Appends an entry; it must follow the last one.
    pub(crate) fn push(&mut self, entry: Entry) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "invariant: index entries increase"
            );
        }
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&entry.relative_offset.to_be_bytes());
        bytes[4..].copy_from_slice(&entry.position.to_be_bytes());
        let at = self.entries.len() as u64 * ENTRY_BYTES;
        self.synced_entries.set(None);
        if let Err(e) = self.file.write_all_at(&bytes, at) {
            // All or nothing: a torn entry must not stay in the file.
            if let Err(undo) = self.file.set_len(at) {
                tracing::warn!(path = %self.path.display(), error = %undo, "cannot cut a torn index entry; recovery will");
            }
            return Err(io_err(&self.path)(e));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The last entry whose offset is at most `relative_offset`.
    pub(crate) fn lookup(&self, relative_offset: u32) -> Option<Entry> {
        let after = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        after.checked_sub(1).map(|i| self.entries[i])
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<Entry> {
        self.entries.last().copied()
    }

    /// Drops the last entry (recovery found it does not match the log).
    pub(crate) fn pop(&mut self) -> Result<(), StorageError> {
        self.entries.pop();
        self.sync_len()
    }

    /// Drops every entry pointing at `position` or later.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<(), StorageError> {
        let keep = self
            .entries
            .partition_point(|e| u64::from(e.position) < position);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.sync_len()?;
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

    /// Path of the index file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn sync_len(&mut self) -> Result<(), StorageError> {
        self.synced_entries.set(None);
        let bytes = self.entries.len() as u64 * ENTRY_BYTES;
        self.file.set_len(bytes).map_err(io_err(&self.path))
    }
}

/// Entries from `raw` up to the first one that does not increase or points
/// at or past `log_bytes`.
fn valid_prefix(raw: &[u8], log_bytes: u64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::with_capacity(raw.len() / ENTRY_BYTES as usize);
    for chunk in raw.chunks_exact(ENTRY_BYTES as usize) {
        let entry = Entry {
            relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        };
        let increases = entries.last().is_none_or(|l| {
            entry.relative_offset > l.relative_offset && entry.position > l.position
        });
        if !increases || u64::from(entry.position) >= log_bytes {
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
    use crate::fs::RealFs;

    fn entry(relative_offset: u32, position: u32) -> Entry {
        Entry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn given_entries_when_looking_up_should_return_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::create(&RealFs, &dir.path().join("0.index")).unwrap();
        index.push(entry(10, 4000)).unwrap();
        index.push(entry(25, 8100)).unwrap();
        assert_eq!(index.lookup(9), None);
        assert_eq!(index.lookup(10), Some(entry(10, 4000)));
        assert_eq!(index.lookup(24), Some(entry(10, 4000)));
        assert_eq!(index.lookup(u32::MAX), Some(entry(25, 8100)));
    }

    #[test]
    fn given_torn_and_stale_entries_when_loading_should_keep_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = Index::create(&RealFs, &path).unwrap();
        for (o, p) in [(1, 100), (2, 200), (3, 300), (4, 400)] {
            index.push(entry(o, p)).unwrap();
        }
        drop(index);
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&[0, 0, 0]);
        std::fs::write(&path, &raw).unwrap();
        // The log now ends at 350: entries at 400 and the torn tail go.
        let index = Index::load(&RealFs, &path, 350).unwrap().unwrap();
        assert_eq!(index.last(), Some(entry(3, 300)));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * ENTRY_BYTES);
    }

    #[test]
    fn given_non_increasing_entry_when_loading_should_stop_there() {
        let raw = [0, 0, 0, 5, 0, 0, 0, 90, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(valid_prefix(&raw, 1000), vec![entry(5, 90)]);
    }

    #[test]
    fn given_missing_file_when_loading_should_return_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Index::load(&RealFs, &dir.path().join("x.index"), 10)
            .unwrap()
            .is_none());
    }
}
