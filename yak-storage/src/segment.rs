//! One segment: a `.log` file of whole batches, its sparse offset index
//! and its time index (entries at the same batches). Appends, positioned
//! reads, truncation and the batch-by-batch check of a segment at start-up;
//! the time side (catching the time index up, lookups by timestamp) is in
//! `segment/time.rs`. Knows nothing about other segments or epochs.

use std::path::{Path, PathBuf};

use super::fs::{Fs, FsFile, OpenOptions};
use super::index::{Entry, Index};
use super::timeindex::{TimeEntry, TimeIndex};
use super::{io_err, sync_err, StorageError};
use yak_protocol::batch::{self, BatchError, BatchHeader, HEADER_BYTES};

mod time;

/// Name of the segment file for `base_offset` with extension `ext`.
pub(crate) fn file_name(base_offset: u64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// The batch does not parse or fails its CRC (or is incomplete).
    #[error("{0}")]
    Batch(BatchError),
    /// The batch does not start at the offset the previous one ended at.
    #[error("base offset {got}, expected {expected}")]
    Offset { expected: u64, got: u64 },
    /// The record count disagrees with the last offset delta.
    #[error("record_count {record_count} with last_offset_delta {last_offset_delta}")]
    RecordCount {
        record_count: u32,
        last_offset_delta: u32,
    },
    /// The epoch is lower than the previous batch's.
    #[error("leader epoch {got} after {previous}")]
    Epoch { previous: u32, got: u32 },
    /// Offset or position too far from the segment start for a `u32` entry.
    #[error("offset {offset} at position {position} does not fit a u32 index entry")]
    TooFar { offset: u64, position: u64 },
}

/// The last segment after its check at start-up.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segment: Segment,
    /// Offset after the last intact batch.
    pub(crate) next_offset: u64,
    /// `(epoch, base offset)` at each epoch change among the checked batches.
    pub(crate) epochs: Vec<(u32, u64)>,
}

/// Where a scan ended.
#[derive(Debug)]
struct ScanEnd {
    position: u64,
    next_offset: u64,
    fault: Option<Fault>,
}

/// A segment file, its indexes and the bookkeeping for the next entry.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: u64,
    log_path: PathBuf,
    log: Box<dyn FsFile>,
    size_bytes: u64,
    index: Index,
    /// One entry at each batch with an offset-index entry (none past the
    /// last one): the largest timestamp up to that batch.
    time_index: TimeIndex,
    bytes_since_index: u64,
    /// Largest batch timestamp in the segment, once known: kept up to date
    /// by appends and recovery, computed lazily (from the last time index
    /// entry on) for a trusted segment or after a truncation.
    max_timestamp_ms: Option<i64>,
    max_timestamp_known: bool,
}

impl Segment {
    /// Creates an empty segment starting at `base_offset`, replacing stale
    /// files. All or nothing: when the index cannot be created, the new log
    /// file is removed again.
    pub(crate) fn create(
        fs: &dyn Fs,
        dir: &Path,
        base_offset: u64,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = fs
            .open(&log_path, OpenOptions::create_truncate())
            .map_err(io_err(&log_path))?;
        let index_path = dir.join(file_name(base_offset, "index"));
        let indexes = Index::create(fs, &index_path).and_then(|index| {
            let time_index = TimeIndex::create(fs, &dir.join(file_name(base_offset, "timeindex")))?;
            Ok((index, time_index))
        });
        let (index, time_index) = match indexes {
            Ok(both) => both,
            Err(e) => {
                for path in [&log_path, &index_path] {
                    match fs.remove_file(path) {
                        Err(undo) if undo.kind() != std::io::ErrorKind::NotFound => {
                            tracing::warn!(path = %path.display(), error = %undo, "cannot remove a half-created segment");
                        }
                        _ => {}
                    }
                }
                return Err(e);
            }
        };
        Ok(Segment {
            base_offset,
            log_path,
            log,
            size_bytes: 0,
            index,
            time_index,
            bytes_since_index: 0,
            max_timestamp_ms: None,
            max_timestamp_known: true,
        })
    }

    /// Opens a segment that is not the last one: trusted as it is. Its
    /// indexes are loaded, or rebuilt by scanning the segment if the offset
    /// index is missing; a time index missing or behind the offset index (a
    /// data dir from before time indexes, a lost tail) is caught up from the
    /// batch headers and made durable.
    pub(crate) fn open_trusted(
        fs: &dyn Fs,
        dir: &Path,
        base_offset: u64,
        interval_bytes: u64,
    ) -> Result<Segment, StorageError> {
        let (mut segment, loaded) = Segment::open(fs, dir, base_offset)?;
        if !loaded {
            tracing::warn!(path = %segment.index.path().display(), "index missing, rebuilding");
            let mut max = None;
            let end = segment.scan(0, base_offset, interval_bytes, &mut Vec::new(), &mut max)?;
            if let Some(fault) = end.fault {
                tracing::warn!(path = %segment.log_path.display(), position = end.position, reason = %fault,
                    "cannot index a trusted segment past this position");
            }
        }
        let through = segment.index.last().map(|e| u64::from(e.position) + 1);
        let entries = segment.time_index.len();
        segment.catch_up_time_index(through.unwrap_or(0))?;
        if segment.time_index.len() != entries {
            // Only what was rebuilt: opening costs no fsync per segment.
            segment.time_index.flush()?;
        }
        segment.bytes_since_index = segment.size_bytes - segment.last_indexed_position();
        Ok(segment)
    }

    /// Opens the last segment and checks it batch by batch from its last
    /// index entry (from the start without one). A torn or corrupt tail is
    /// truncated and logged.
    pub(crate) fn recover(
        fs: &dyn Fs,
        dir: &Path,
        base_offset: u64,
        interval_bytes: u64,
    ) -> Result<Recovered, StorageError> {
        let (mut segment, _) = Segment::open(fs, dir, base_offset)?;
        let (start, expected) = segment.scan_start()?;
        // The time entries from the scan's start on are derived again from
        // the checked batches: the newest entry is never taken on trust.
        let kept = segment
            .index
            .last()
            .and_then(|e| e.relative_offset.checked_sub(1));
        segment.time_index.truncate_after(kept)?;
        let mut max = segment.catch_up_time_index(start)?;
        let mut epochs = Vec::new();
        let end = segment.scan(start, expected, interval_bytes, &mut epochs, &mut max)?;
        segment.max_timestamp_ms = max;
        segment.max_timestamp_known = true;
        if let Some(fault) = end.fault {
            tracing::warn!(path = %segment.log_path.display(), position = end.position, reason = %fault,
                "truncating torn or corrupt tail");
            segment.truncate_to_position(end.position)?;
        }
        Ok(Recovered {
            segment,
            next_offset: end.next_offset,
            epochs,
        })
    }

    /// Opens the files of an existing segment; tells whether an index file was found.
    fn open(fs: &dyn Fs, dir: &Path, base_offset: u64) -> Result<(Segment, bool), StorageError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = fs
            .open(&log_path, OpenOptions::read_write())
            .map_err(io_err(&log_path))?;
        let size_bytes = log.len().map_err(io_err(&log_path))?;
        let index_path = dir.join(file_name(base_offset, "index"));
        let (index, loaded) = match Index::load(fs, &index_path, size_bytes)? {
            Some(index) => (index, true),
            None => (Index::create(fs, &index_path)?, false),
        };
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let time_index = match TimeIndex::load(fs, &time_path, &index)? {
            Some(time_index) => time_index,
            None => {
                tracing::info!(path = %time_path.display(), "time index missing, rebuilding");
                TimeIndex::create(fs, &time_path)?
            }
        };
        Ok((
            Segment {
                base_offset,
                log_path,
                log,
                size_bytes,
                index,
                time_index,
                bytes_since_index: 0,
                max_timestamp_ms: None,
                max_timestamp_known: false,
            },
            loaded,
        ))
    }

    /// The last index entry whose batch header matches it, as (position,
    /// offset); entries that do not match are dropped.
    fn scan_start(&mut self) -> Result<(u64, u64), StorageError> {
        while let Some(entry) = self.index.last() {
            let offset = self
                .base_offset
                .saturating_add(u64::from(entry.relative_offset));
            let position = u64::from(entry.position);
            if matches!(self.header_at(position)?, Ok(h) if h.base_offset == offset) {
                return Ok((position, offset));
            }
            tracing::warn!(path = %self.index.path().display(), position, offset, "dropping index entry that does not match the log");
            self.index.pop()?;
            self.trim_time_index()?;
        }
        Ok((0, self.base_offset))
    }

    /// Checks batches from `position` (expected to hold `offset`) to the
    /// first fault or the end of the file, re-adding index entries and
    /// their time entries (also one at `position` when it has an offset
    /// entry), with `max` the largest timestamp before `position`.
    fn scan(
        &mut self,
        mut position: u64,
        mut offset: u64,
        interval_bytes: u64,
        epochs: &mut Vec<(u32, u64)>,
        max: &mut Option<i64>,
    ) -> Result<ScanEnd, StorageError> {
        let start = position;
        let start_indexed = self
            .index
            .last()
            .is_some_and(|e| u64::from(e.position) == start);
        let mut buf = Vec::new();
        let mut since_index = 0u64;
        let mut last_epoch: Option<u32> = None;
        while position < self.size_bytes {
            let header = match self.check_batch_at(position, offset, last_epoch, &mut buf)? {
                Ok(h) => h,
                Err(fault) => {
                    return Ok(ScanEnd {
                        position,
                        next_offset: offset,
                        fault: Some(fault),
                    })
                }
            };
            let (Ok(relative_offset), Ok(entry_position)) = (
                u32::try_from(offset - self.base_offset),
                u32::try_from(position),
            ) else {
                return Ok(ScanEnd {
                    position,
                    next_offset: offset,
                    fault: Some(Fault::TooFar { offset, position }),
                });
            };
            *max = Some(max.map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms)));
            let index_due = since_index >= interval_bytes;
            if index_due {
                self.index.push(Entry {
                    relative_offset,
                    position: entry_position,
                })?;
                since_index = 0;
            }
            if index_due || (position == start && start_indexed) {
                self.time_index.push(TimeEntry {
                    max_timestamp_ms: max.unwrap_or(header.max_timestamp_ms),
                    relative_offset,
                })?;
            }
            if last_epoch != Some(header.leader_epoch) {
                epochs.push((header.leader_epoch, offset));
            }
            last_epoch = Some(header.leader_epoch);
            let total = header.total_bytes() as u64;
            since_index += total;
            position += total;
            offset = header.base_offset + u64::from(header.last_offset_delta) + 1;
        }
        Ok(ScanEnd {
            position,
            next_offset: offset,
            fault: None,
        })
    }

    /// Reads and checks the whole batch at `position`.
    fn check_batch_at(
        &self,
        position: u64,
        offset: u64,
        last_epoch: Option<u32>,
        buf: &mut Vec<u8>,
    ) -> Result<Result<BatchHeader, Fault>, StorageError> {
        let header = match self.header_at(position)? {
            Ok(h) => h,
            Err(e) => return Ok(Err(Fault::Batch(e))),
        };
        let total = header.total_bytes();
        let have = self.size_bytes - position;
        if total as u64 > have {
            return Ok(Err(Fault::Batch(BatchError::Truncated {
                needed: total,
                have: have as usize,
            })));
        }
        buf.resize(total, 0);
        self.log
            .read_exact_at(buf, position)
            .map_err(io_err(&self.log_path))?;
        if let Err(e) = batch::validate(buf) {
            return Ok(Err(Fault::Batch(e)));
        }
        if header.base_offset != offset {
            return Ok(Err(Fault::Offset {
                expected: offset,
                got: header.base_offset,
            }));
        }
        let (record_count, last_offset_delta) = (header.record_count, header.last_offset_delta);
        if record_count == 0
            || last_offset_delta != record_count - 1
            || offset.checked_add(u64::from(record_count)).is_none()
        {
            return Ok(Err(Fault::RecordCount {
                record_count,
                last_offset_delta,
            }));
        }
        if let Some(previous) = last_epoch.filter(|&p| header.leader_epoch < p) {
            return Ok(Err(Fault::Epoch {
                previous,
                got: header.leader_epoch,
            }));
        }
        Ok(Ok(header))
    }

    /// The parsed header at `position`; `Ok(Err)` when it is incomplete or bad.
    fn header_at(&self, position: u64) -> Result<Result<BatchHeader, BatchError>, StorageError> {
        let have = self.size_bytes.saturating_sub(position);
        if have < HEADER_BYTES as u64 {
            return Ok(Err(BatchError::Truncated {
                needed: HEADER_BYTES,
                have: have as usize,
            }));
        }
        let mut bytes = [0u8; HEADER_BYTES];
        self.log
            .read_exact_at(&mut bytes, position)
            .map_err(io_err(&self.log_path))?;
        Ok(batch::parse_header(&bytes))
    }

    /// The header at `position` in a segment trusted to hold whole batches.
    fn trusted_header_at(&self, position: u64) -> Result<BatchHeader, StorageError> {
        self.header_at(position)?
            .map_err(|reason| StorageError::CorruptSegment {
                path: self.log_path.clone(),
                position,
                reason,
            })
    }

    /// Position and header of the batch holding `offset`: from the index
    /// entry at or below it, scanning headers forward. `None` when the
    /// segment ends first.
    pub(crate) fn find(&self, offset: u64) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let relative = u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX);
        let mut position = self
            .index
            .lookup(relative)
            .map_or(0, |e| u64::from(e.position));
        while position < self.size_bytes {
            let header = self.trusted_header_at(position)?;
            if header
                .base_offset
                .saturating_add(u64::from(header.last_offset_delta))
                >= offset
            {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Whole batches from `position` (a batch start) up to `max_bytes`; the
    /// first batch even if larger when `at_least_one`.
    pub(crate) fn read(
        &self,
        position: u64,
        max_bytes: u64,
        at_least_one: bool,
    ) -> Result<Vec<u8>, StorageError> {
        let available = self.size_bytes.saturating_sub(position);
        // Bounded by the file size, whatever `max_bytes` says.
        let mut buf = vec![0u8; max_bytes.min(available) as usize];
        self.log
            .read_exact_at(&mut buf, position)
            .map_err(io_err(&self.log_path))?;
        let mut cut = 0;
        while buf.len() - cut >= HEADER_BYTES {
            let Ok(header) = batch::parse_header(&buf[cut..]) else {
                break;
            };
            if header.total_bytes() > buf.len() - cut {
                break;
            }
            cut += header.total_bytes();
        }
        if cut == 0 && at_least_one && available > 0 {
            let total = self.trusted_header_at(position)?.total_bytes();
            if total as u64 > available {
                let reason = BatchError::Truncated {
                    needed: total,
                    have: available as usize,
                };
                return Err(StorageError::CorruptSegment {
                    path: self.log_path.clone(),
                    position,
                    reason,
                });
            }
            buf.resize(total, 0);
            self.log
                .read_exact_at(&mut buf, position)
                .map_err(io_err(&self.log_path))?;
            return Ok(buf);
        }
        buf.truncate(cut);
        Ok(buf)
    }

    /// Appends one checked batch (whose largest timestamp is
    /// `max_timestamp_ms`), adding an index entry when one is due.
    /// All or nothing: on any error (short write, full disk, index write)
    /// the file is cut back to where it was and nothing in memory changes.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        base_offset: u64,
        max_timestamp_ms: i64,
        interval_bytes: u64,
    ) -> Result<(), StorageError> {
        let relative_offset = u32::try_from(base_offset - self.base_offset)
            .expect("invariant: the log rolls before relative offsets pass u32");
        let position = u32::try_from(self.size_bytes)
            .expect("invariant: the log rolls before positions pass u32");
        let index_due = self.bytes_since_index >= interval_bytes;
        let max_after = self
            .max_timestamp_ms()?
            .map_or(max_timestamp_ms, |m| m.max(max_timestamp_ms));
        let written = self
            .log
            .write_all_at(bytes, self.size_bytes)
            .map_err(io_err(&self.log_path))
            .and_then(|()| match index_due {
                true => self.index.push(Entry {
                    relative_offset,
                    position,
                }),
                false => Ok(()),
            })
            .and_then(|()| match index_due {
                true => self.time_index.push(TimeEntry {
                    max_timestamp_ms: max_after,
                    relative_offset,
                }),
                false => Ok(()),
            });
        if let Err(e) = written {
            // Each index push cleans up after itself; an offset entry whose
            // time entry failed goes, and the log is cut here.
            if let Err(undo) = self.index.truncate_to_position(self.size_bytes) {
                tracing::warn!(path = %self.index.path().display(), error = %undo, "cannot cut a failed append's index entry");
            }
            if let Err(undo) = self.log.set_len(self.size_bytes) {
                // The bytes past `size_bytes` are overwritten by the next
                // append, or cut by recovery after a restart.
                tracing::warn!(path = %self.log_path.display(), error = %undo, "cannot cut a failed append");
            }
            return Err(e);
        }
        self.size_bytes += bytes.len() as u64;
        if index_due {
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += bytes.len() as u64;
        self.max_timestamp_ms = Some(max_after);
        self.max_timestamp_known = true;
        Ok(())
    }

    /// Drops every byte from `position` (a batch start) on.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<(), StorageError> {
        self.log.set_len(position).map_err(io_err(&self.log_path))?;
        self.size_bytes = position;
        self.index.truncate_to_position(position)?;
        self.trim_time_index()?;
        self.bytes_since_index = self.size_bytes - self.last_indexed_position();
        // The largest timestamp may have been cut off: recompute when asked.
        self.max_timestamp_known = false;
        Ok(())
    }

    /// Puts the segment back at `size_bytes` (undoing a failed append):
    /// memory first, whatever the file calls say, then the files are cut.
    pub(crate) fn rollback_to(&mut self, size_bytes: u64) -> Result<(), StorageError> {
        self.size_bytes = size_bytes;
        let index = self
            .index
            .truncate_to_position(size_bytes)
            .and_then(|()| self.trim_time_index());
        self.bytes_since_index = self.size_bytes - self.last_indexed_position();
        self.max_timestamp_known = false;
        self.log
            .set_len(size_bytes)
            .map_err(io_err(&self.log_path))?;
        index
    }

    /// Makes the log and both index files durable.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.log.sync_data().map_err(sync_err(&self.log_path))?;
        self.index.flush()?;
        self.time_index.flush()
    }

    /// A second handle on the data file, to fsync it without holding the
    /// segment; `None` when an index also needs an fsync.
    pub(crate) fn data_sync_handle(&self) -> Result<Option<Box<dyn FsFile>>, StorageError> {
        if self.index.needs_sync() || self.time_index.needs_sync() {
            return Ok(None);
        }
        self.log
            .try_clone()
            .map(Some)
            .map_err(io_err(&self.log_path))
    }

    /// Removes the three files (the log first) but keeps this handle, so a
    /// caller drops it from its list only once the files are gone.
    pub(crate) fn delete_files(&self, fs: &dyn Fs) -> Result<(), StorageError> {
        fs.remove_file(&self.log_path)
            .map_err(io_err(&self.log_path))?;
        for path in [self.index.path(), self.time_index.path()] {
            match fs.remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Offset of the first batch.
    pub(crate) fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Bytes in the log file.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn last_indexed_position(&self) -> u64 {
        self.index.last().map_or(0, |e| u64::from(e.position))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::test_util::{append, append_batches, assert_reads_all, files, make_batch, SMALL};
    use crate::Log;
    use yak_protocol::batch;

    fn last_log(dir: &Path) -> PathBuf {
        files(dir, "log").pop().unwrap()
    }

    /// A log of 30 batches over several segments, closed; returns its batches.
    fn closed_log(dir: &Path) -> Vec<Vec<u8>> {
        let mut log = Log::open(dir, SMALL).unwrap();
        let batches = append_batches(&mut log, 30, 1);
        log.flush().unwrap();
        batches
    }

    /// After recovery: appends work, and everything reads back after a reopen.
    fn assert_usable_after_reopen(dir: &Path, mut batches: Vec<Vec<u8>>) {
        let mut log = Log::open(dir, SMALL).unwrap();
        assert_reads_all(&log, &batches);
        let mut more = make_batch(2, 1000);
        append(&mut log, &mut more, 1).unwrap();
        batches.push(more);
        drop(log);
        let log = Log::open(dir, SMALL).unwrap();
        assert_reads_all(&log, &batches);
    }

    #[test]
    fn given_empty_dir_when_opening_should_start_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("new"), SMALL).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert!(log.read(0, 100).unwrap().is_empty());
        assert!(log.read(1, 100).is_err());
        assert!(log.dir().join("00000000000000000000.log").exists());
    }

    #[test]
    fn given_torn_tail_when_recovering_should_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let batches = closed_log(dir.path());
        let path = last_log(dir.path());
        let clean_len = std::fs::metadata(&path).unwrap().len();
        let leo = Log::open(dir.path(), SMALL).unwrap().log_end_offset();
        let mut torn = make_batch(3, 77);
        batch::stamp(&mut torn, leo, 1);
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(&path, raw).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), clean_len);
        drop(log);
        assert_usable_after_reopen(dir.path(), batches);
    }

    #[test]
    fn given_flipped_byte_in_last_batch_when_recovering_should_drop_that_batch_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut batches = closed_log(dir.path());
        let last = batches.pop().unwrap();
        let path = last_log(dir.path());
        let mut raw = std::fs::read(&path).unwrap();
        let at = raw.len() - last.len() / 2;
        raw[at] ^= 0x10;
        std::fs::write(&path, raw).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(
            log.log_end_offset(),
            batch::validate(&last).unwrap().base_offset
        );
        drop(log);
        assert_usable_after_reopen(dir.path(), batches);
    }

    #[test]
    fn given_whole_last_segment_torn_when_recovering_should_end_at_its_base() {
        let dir = tempfile::tempdir().unwrap();
        let batches = closed_log(dir.path());
        let path = last_log(dir.path());
        std::fs::write(&path, [0u8; 7]).unwrap();
        let base: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.log_end_offset(), base);
        drop(log);
        let kept = batches
            .iter()
            .filter(|b| batch::validate(b).unwrap().base_offset < base)
            .cloned()
            .collect();
        assert_usable_after_reopen(dir.path(), kept);
    }

    #[test]
    fn given_deleted_indexes_when_reopening_should_rebuild_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let batches = closed_log(dir.path());
        let indexes = files(dir.path(), "index");
        let before: Vec<Vec<u8>> = indexes.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert!(before.iter().any(|b| !b.is_empty()));
        for p in &indexes {
            std::fs::remove_file(p).unwrap();
        }
        drop(Log::open(dir.path(), SMALL).unwrap());
        let after: Vec<Vec<u8>> = indexes.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert_eq!(after, before, "rebuilt indexes equal the originals");
        assert_usable_after_reopen(dir.path(), batches);
    }

    #[test]
    fn given_garbage_index_tail_when_reopening_should_trim_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let batches = closed_log(dir.path());
        let index = files(dir.path(), "index").pop().unwrap();
        let mut raw = std::fs::read(&index).unwrap();
        raw.extend_from_slice(&[0, 0, 0x7f, 0, 0, 0, 0x7f, 0]); // past the log end
        raw.extend_from_slice(&[1, 2, 3]); // torn entry
        std::fs::write(&index, raw).unwrap();
        drop(Log::open(dir.path(), SMALL).unwrap());
        assert_eq!(std::fs::metadata(&index).unwrap().len() % 8, 0);
        assert_usable_after_reopen(dir.path(), batches);
    }

    #[test]
    fn given_index_entry_off_a_batch_start_when_recovering_should_drop_it() {
        let dir = tempfile::tempdir().unwrap();
        let batches = closed_log(dir.path());
        let index = files(dir.path(), "index").pop().unwrap();
        let mut raw = std::fs::read(&index).unwrap();
        let n = raw.len();
        assert!(n >= 8, "the last segment has an index entry");
        raw[n - 1] = raw[n - 1].wrapping_add(3); // position now mid-batch
        std::fs::write(&index, raw).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(
            log.log_end_offset(),
            batch::validate(batches.last().unwrap())
                .unwrap()
                .next_offset()
        );
        drop(log);
        assert_usable_after_reopen(dir.path(), batches);
    }

    #[test]
    fn given_epoch_of_torn_batch_when_recovering_should_drop_that_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 5, 1);
        let mut last = make_batch(1, 5);
        append(&mut log, &mut last, 2).unwrap();
        drop(log);
        let path = last_log(dir.path());
        let raw = std::fs::read(&path).unwrap();
        std::fs::write(&path, &raw[..raw.len() - 1]).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(log.end_offset_for_epoch(2), Some((1, log.log_end_offset())));
    }

    #[test]
    fn given_lost_epoch_checkpoint_when_recovering_should_relearn_tail_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 3, 4);
        append_batches(&mut log, 1, 6);
        drop(log);
        std::fs::remove_file(dir.path().join("leader-epoch-checkpoint")).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.latest_epoch(), Some(6));
        assert_eq!(log.end_offset_for_epoch(4), Some((4, 6)));
    }

    #[test]
    fn given_garbage_segments_when_opening_should_recover_without_panic() {
        let mut huge = make_batch(1, 0);
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes()); // claims 4 GiB
        let mut frame_max = make_batch(1, 0);
        frame_max[8..12].copy_from_slice(&(16u32 << 20).to_be_bytes());
        let mut seed = 7u64;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        for garbage in [huge, frame_max, noise.clone(), noise[..60].to_vec()] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("00000000000000000000.log"), &noise).unwrap();
            std::fs::write(dir.path().join("00000000000000000000.index"), &noise[..37]).unwrap();
            std::fs::write(dir.path().join("00000000000000000100.log"), &garbage).unwrap();
            std::fs::write(dir.path().join("leader-epoch-checkpoint"), &noise).unwrap();
            let mut log = Log::open(dir.path(), SMALL).unwrap();
            assert_eq!(log.log_end_offset(), 100);
            assert_eq!(std::fs::metadata(last_log(dir.path())).unwrap().len(), 0);
            let _ = log.read(0, 1000); // an error or data, never a panic
            let mut b = make_batch(1, 1);
            assert_eq!(append(&mut log, &mut b, 0).unwrap().base_offset, 100);
            assert_eq!(log.read(100, 1).unwrap(), b);
        }
    }
}
