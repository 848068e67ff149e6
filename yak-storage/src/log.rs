//! The log of one partition: an ordered list of segments, the last one
//! active. Appends (leader and follower paths), reads through the sparse
//! index, truncation, recovery at open and the leader-epoch cache.
//! Fsyncs on its own only at a roll (the full segment), a truncation and an
//! epoch change (the checkpoint); otherwise the broker calls [`Log::flush`].

use std::path::{Path, PathBuf};

use super::epochs::EpochCache;
use super::fs::{FileHandle, Fs, FsRef};
use super::segment::{self, Segment};
use super::{io_err, sync_dir, AppendInfo, LogConfig, StorageError};
use yak_protocol::batch::{BatchHeader, CheckedBatch, ReplicatedBatches};

mod retention;
mod timestamps;

/// A partition log in its directory.
#[derive(Debug)]
pub struct Log {
    fs: FsRef,
    dir: PathBuf,
    config: LogConfig,
    /// The topic's `segment.bytes`, over `config`'s (set at run time).
    segment_bytes_override: Option<u64>,
    /// Ordered by base offset; never empty; the last one takes appends.
    segments: Vec<Segment>,
    log_end_offset: u64,
    epochs: EpochCache,
    /// A segment was created or removed since the directory was last synced.
    dir_dirty: bool,
    /// An fsync failed: every later write and fsync is refused
    /// ([`StorageError::Poisoned`]); only a restart recovers.
    poisoned: bool,
}

/// The state an append starts from, to undo it on error.
#[derive(Debug, Clone, Copy)]
struct Mark {
    segments: usize,
    active_size: u64,
    log_end_offset: u64,
}

impl Log {
    /// Opens the log in `dir` on the real file system: [`Log::open_with`].
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, StorageError> {
        Log::open_with(crate::real_fs(), dir, config)
    }

    /// Opens the log in `dir` through `fs`, creating the directory if
    /// missing, and recovers it: every segment but the last is trusted; the
    /// last is checked from its last index entry and a torn or corrupt tail
    /// is truncated. An empty segment file is dropped unless it is the only
    /// one (a roll that failed or was cut short leaves one). What recovery
    /// keeps is then fsynced (the last segment, its index, the directory and
    /// its entry in the parent): after a kill -9 the tail may sit in the page
    /// cache only, and the caller counts everything up to the log end offset
    /// as durable.
    pub fn open_with(fs: FsRef, dir: &Path, config: LogConfig) -> Result<Log, StorageError> {
        config.validate()?;
        let f: &dyn Fs = &*fs;
        let created: Vec<&Path> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !f.exists(d))
            .collect();
        f.create_dir_all(dir).map_err(io_err(dir))?;
        // A new directory's entry in its parent is durable only once the
        // parent is synced, innermost first; the log's own entry below.
        for new in created.iter().skip(1) {
            if let Some(parent) = new.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(f, parent)?;
            }
        }
        let mut bases = segment_bases(f, dir)?;
        drop_empty_segments(f, dir, &mut bases)?;
        let mut epochs = EpochCache::load(f, dir)?;
        let interval = config.index_interval_bytes;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let (log_end_offset, seen_epochs) = match bases.split_last() {
            None => {
                segments.push(Segment::create(f, dir, 0)?);
                (0, Vec::new())
            }
            Some((&last, trusted)) => {
                for &base in trusted {
                    segments.push(Segment::open_trusted(f, dir, base, interval)?);
                }
                let recovered = Segment::recover(f, dir, last, interval)?;
                segments.push(recovered.segment);
                (recovered.next_offset, recovered.epochs)
            }
        };
        if let Some(active) = segments.last() {
            active.flush()?;
        }
        sync_dir(f, dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(f, parent)?;
        }
        epochs.truncate_from(f, log_end_offset)?;
        for (epoch, start_offset) in seen_epochs {
            if epochs.latest().is_none_or(|latest| epoch > latest) {
                epochs.assign(f, epoch, start_offset)?;
            }
        }
        // Retention may have deleted segments and crashed before the
        // checkpoint followed: the log start comes from the files.
        let log_start_offset = segments
            .first()
            .map_or(log_end_offset, Segment::base_offset);
        epochs.truncate_start(f, log_start_offset)?;
        tracing::debug!(dir = %dir.display(), segments = segments.len(), log_end_offset, "log opened");
        Ok(Log {
            dir: dir.to_path_buf(),
            fs,
            config,
            segment_bytes_override: None,
            segments,
            log_end_offset,
            epochs,
            dir_dirty: false,
            poisoned: false,
        })
    }

    /// Leader path: stamps a checked batch with the log end offset and
    /// `leader_epoch`, and appends it. The batch was checked once, at the
    /// broker's edge ([`CheckedBatch`]); the log checks only what depends on
    /// its own state: the epoch and the offset range.
    pub fn append(
        &mut self,
        batch: &mut CheckedBatch,
        leader_epoch: u32,
    ) -> Result<AppendInfo, StorageError> {
        self.check_usable()?;
        self.check_epoch(leader_epoch)?;
        let base_offset = self.log_end_offset;
        let last_offset = base_offset
            .checked_add(u64::from(batch.header().last_offset_delta))
            .filter(|&l| l < u64::MAX)
            .ok_or(StorageError::OffsetOverflow {
                offset: base_offset,
            })?;
        batch.stamp(base_offset, leader_epoch);
        let header = *batch.header();
        let mark = self.mark();
        let written = self.write_batch(
            batch.as_bytes(),
            &header,
            base_offset,
            last_offset,
            leader_epoch,
        );
        self.settle(written, mark)?;
        Ok(AppendInfo {
            base_offset,
            last_offset,
        })
    }

    /// Follower path: appends batches fetched from the leader, which carry
    /// their offsets and epochs and were checked (framing, CRC, counts, one
    /// following another) into [`ReplicatedBatches`]. The log checks what
    /// depends on its own state: the first starts at the log end offset and
    /// no epoch is older than its latest. `None` when no batch was given.
    /// All or nothing: on an error no batch of the call stays in the log.
    pub fn append_replicated(
        &mut self,
        batches: &ReplicatedBatches<'_>,
    ) -> Result<Option<AppendInfo>, StorageError> {
        self.check_usable()?;
        let (Some(first), Some(last)) = (batches.headers().first(), batches.headers().last())
        else {
            return Ok(None);
        };
        if first.base_offset != self.log_end_offset {
            return Err(StorageError::NonMonotonicOffset {
                expected: self.log_end_offset,
                got: first.base_offset,
            });
        }
        self.check_epoch(first.leader_epoch)?;
        if last.last_offset() == u64::MAX {
            return Err(StorageError::OffsetOverflow {
                offset: last.base_offset,
            });
        }
        let mark = self.mark();
        let written = batches.iter().try_for_each(|(h, bytes)| {
            self.write_batch(bytes, h, h.base_offset, h.last_offset(), h.leader_epoch)
        });
        self.settle(written, mark)?;
        Ok(Some(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset(),
        }))
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` but at
    /// least one batch; empty at the log end offset. Seeks through the
    /// sparse index, then scans batch headers forward; continues into the
    /// next segment when the current one is exhausted and bytes remain.
    pub fn read(&self, offset: u64, max_bytes: u32) -> Result<Vec<u8>, StorageError> {
        if offset < self.log_start_offset() || offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        let mut out = Vec::new();
        if offset == self.log_end_offset {
            return Ok(out);
        }
        let budget = u64::from(max_bytes);
        let holding = self.segment_index(offset);
        // A segment ending before `offset` (only if damaged) is skipped.
        let (first, mut start) = match self.segments[holding].find(offset)? {
            Some((position, _)) => (holding, position),
            None => (holding + 1, 0),
        };
        for segment in &self.segments[first..] {
            let remaining = budget.saturating_sub(out.len() as u64);
            let chunk = segment.read(start, remaining, out.is_empty())?;
            let exhausted = start + chunk.len() as u64 >= segment.size_bytes();
            out.extend_from_slice(&chunk);
            if !exhausted || out.len() as u64 >= budget {
                break;
            }
            start = 0;
        }
        Ok(out)
    }

    /// The first offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.segments
            .first()
            .map_or(self.log_end_offset, Segment::base_offset)
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }

    /// Bytes of record batches in its segments (indexes not counted).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    /// Makes everything appended so far durable: the active segment's log
    /// and index, and the directory after a roll.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let flushed = self.active().flush().and_then(|()| {
            if self.dir_dirty {
                sync_dir(&*self.fs, &self.dir)?;
                self.dir_dirty = false;
            }
            Ok(())
        });
        self.poison_if_fatal(flushed)
    }

    /// For group commit without holding the log: a handle on the active
    /// segment's data file and the log end offset it covers, when fsyncing
    /// that file alone makes everything below that offset durable. `None`
    /// when [`Log::flush`] is needed (a new segment's directory entry or
    /// index entries are not yet durable). A failed fsync through the handle
    /// is as fatal as any other.
    pub fn data_sync_handle(&self) -> Result<Option<(FileHandle, u64)>, StorageError> {
        self.check_usable()?;
        if self.dir_dirty {
            return Ok(None);
        }
        Ok(self
            .active()
            .data_sync_handle()?
            .map(|f| (f, self.log_end_offset)))
    }

    /// Drops every record at `offset` or later. Works on whole batches: when
    /// `offset` falls inside a batch, that whole batch is dropped too, so the
    /// log end offset becomes the batch's base offset (at most `offset`).
    /// No-op at or past the log end; `OffsetOutOfRange` below the log start.
    /// Later segments are removed, the index and epoch cache trimmed, and the
    /// result made durable.
    pub fn truncate_to(&mut self, offset: u64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset < self.log_start_offset() {
            return Err(self.out_of_range(offset));
        }
        self.check_usable()?;
        let keep = self.segment_index(offset);
        let Some((position, header)) = self.segments[keep].find(offset)? else {
            return Err(self.out_of_range(offset));
        };
        let truncated = self.truncate_files(keep, position, header.base_offset);
        if truncated.is_err() {
            // Memory follows whatever step failed; drop the epochs past it.
            let _ = self.epochs.truncate_from(&*self.fs, self.log_end_offset);
        }
        self.poison_if_fatal(truncated)?;
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = header.base_offset, "log truncated");
        let truncated = self.epochs.truncate_from(&*self.fs, self.log_end_offset);
        self.poison_if_fatal(truncated)
    }

    /// The file steps of [`Log::truncate_to`]: later segments go newest
    /// first, each removal made durable before the next (a power cut never
    /// leaves a hole in the offsets), then the kept segment is cut at
    /// `position` (holding `end`) and fsynced. The log end offset follows
    /// each step, so memory matches the files whatever step fails.
    fn truncate_files(&mut self, keep: usize, position: u64, end: u64) -> Result<(), StorageError> {
        while self.segments.len() > keep + 1 {
            let newest = self.active();
            newest.delete_files(&*self.fs)?;
            let base = newest.base_offset();
            self.segments.pop();
            self.log_end_offset = base;
            self.dir_dirty = true;
            sync_dir(&*self.fs, &self.dir)?;
            self.dir_dirty = false;
        }
        self.active_mut().truncate_to_position(position)?;
        self.log_end_offset = end;
        self.active().flush()?;
        sync_dir(&*self.fs, &self.dir)?;
        self.dir_dirty = false;
        Ok(())
    }

    /// The epoch of the latest leader that appended, if any.
    pub fn latest_epoch(&self) -> Option<u32> {
        self.epochs.latest()
    }

    /// Kafka's OffsetsForLeaderEpoch: the largest epoch at most `epoch` and
    /// the start offset of the next higher epoch, or the log end offset if it
    /// is the latest (also when `epoch` is above the latest). For an epoch
    /// below the first known one: `epoch` itself and the first epoch's start
    /// offset, as Kafka. `None` when the log has no epoch.
    pub fn end_offset_for_epoch(&self, epoch: u32) -> Option<(u32, u64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let fs = std::sync::Arc::clone(&self.fs);
        drop(self);
        fs.remove_dir_all(&dir).map_err(io_err(&dir))
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses writes and fsyncs after a failed fsync.
    fn check_usable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// A fatal error poisons the log: nothing written since the last good
    /// fsync can be trusted, and retrying the fsync would lie.
    fn poison_if_fatal<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result {
            if e.is_fatal() && !self.poisoned {
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; the log refuses writes until restart");
                self.poisoned = true;
            }
        }
        result
    }

    fn mark(&self) -> Mark {
        Mark {
            segments: self.segments.len(),
            active_size: self.active().size_bytes(),
            log_end_offset: self.log_end_offset,
        }
    }

    /// On error, puts the log back as it was at `mark`: segments rolled
    /// since are removed, the active segment cut back, the epochs started
    /// since dropped. Memory is restored even when a file step fails (the
    /// next append overwrites stray bytes; recovery cuts them after a
    /// restart).
    fn settle(&mut self, result: Result<(), StorageError>, mark: Mark) -> Result<(), StorageError> {
        let Err(e) = result else {
            return Ok(());
        };
        let mut undone = true;
        while self.segments.len() > mark.segments {
            if let Some(rolled) = self.segments.pop() {
                if let Err(undo) = rolled.delete_files(&*self.fs) {
                    tracing::warn!(dir = %self.dir.display(), error = %undo, "cannot remove a segment rolled by a failed append");
                    undone = false;
                }
                self.dir_dirty = true;
            }
        }
        if let Err(undo) = self.active_mut().rollback_to(mark.active_size) {
            tracing::warn!(dir = %self.dir.display(), error = %undo, "cannot cut a failed append");
            undone = false;
        }
        self.log_end_offset = mark.log_end_offset;
        if let Err(undo) = self.epochs.truncate_from(&*self.fs, mark.log_end_offset) {
            tracing::warn!(dir = %self.dir.display(), error = %undo, "cannot drop the epoch of a failed append");
            undone = false;
        }
        tracing::warn!(dir = %self.dir.display(), error = %e, log_end_offset = self.log_end_offset, "append failed; undone");
        if !undone && !self.poisoned {
            // The files may still hold what memory no longer does: stop
            // writing, so the broker fail-stops at its next write and
            // recovery decides from what is really on disk.
            tracing::error!(dir = %self.dir.display(), "a failed append could not be undone on disk; the log refuses writes until restart");
            self.poisoned = true;
        }
        self.poison_if_fatal(Err(e))
    }

    /// Rejects a leader epoch older than the latest one.
    fn check_epoch(&self, epoch: u32) -> Result<(), StorageError> {
        match self.epochs.latest() {
            Some(latest) if epoch < latest => Err(StorageError::StaleEpoch { epoch, latest }),
            _ => Ok(()),
        }
    }

    /// Writes one checked batch at the log end, rolling first if due, and
    /// records a new epoch. `header` gives its largest timestamp.
    ///
    /// Order: roll, data, then the epoch checkpoint (fsynced). The caller
    /// undoes any failure ([`Log::settle`]), so an error always means the
    /// batch is not in the log: a failed epoch write takes the batch back
    /// out, and a checkpoint left stale by a failed write is rewritten
    /// before the next batch. A crash between the data and the checkpoint
    /// is covered by recovery, which relearns the epochs of the last
    /// segment's batches.
    fn write_batch(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        base_offset: u64,
        last_offset: u64,
        epoch: u32,
    ) -> Result<(), StorageError> {
        assert_eq!(
            base_offset, self.log_end_offset,
            "invariant: batches append at the log end"
        );
        self.epochs.ensure_written(&*self.fs)?;
        if self.roll_due(bytes.len() as u64, last_offset) {
            self.roll()?;
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(bytes, base_offset, header.max_timestamp_ms, interval)?;
        self.log_end_offset = last_offset + 1;
        if self.epochs.latest().is_none_or(|latest| epoch > latest) {
            self.epochs.assign(&*self.fs, epoch, base_offset)?;
        }
        Ok(())
    }

    /// The topic's own segment size (`None`: the log's configured one);
    /// applies from the next roll check on. Clamped to `1..=u32::MAX`.
    pub fn set_segment_bytes(&mut self, segment_bytes: Option<u64>) {
        self.segment_bytes_override = segment_bytes.map(|b| b.clamp(1, u64::from(u32::MAX)));
    }

    /// A non-empty active segment rolls when the batch would take it past
    /// `segment_bytes` or its last offset past a `u32` relative offset.
    fn roll_due(&self, batch_bytes: u64, last_offset: u64) -> bool {
        let active = self.active();
        let segment_bytes = self
            .segment_bytes_override
            .unwrap_or(self.config.segment_bytes);
        let too_big = active.size_bytes() + batch_bytes > segment_bytes;
        let too_far = last_offset - active.base_offset() > u64::from(u32::MAX);
        active.size_bytes() > 0 && (too_big || too_far)
    }

    /// Makes the active segment durable and starts a new one at the log
    /// end. All or nothing: on error no new segment is in the list (nor on
    /// disk, if removing the half-created one works; else the next open
    /// drops it).
    fn roll(&mut self) -> Result<(), StorageError> {
        self.active().flush()?;
        // The active segment's own entry first: were the new segment's entry
        // to reach the disk without it, a power cut would leave a hole.
        if self.dir_dirty {
            sync_dir(&*self.fs, &self.dir)?;
            self.dir_dirty = false;
        }
        let segment = Segment::create(&*self.fs, &self.dir, self.log_end_offset)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = self.log_end_offset, "segment rolled");
        self.segments.push(segment);
        self.dir_dirty = true;
        Ok(())
    }

    /// Index of the segment holding `offset` (which is at least the log start).
    fn segment_index(&self, offset: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("invariant: a log has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("invariant: a log has a segment")
    }

    fn out_of_range(&self, offset: u64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset,
        }
    }
}

/// Removes the empty segment files of `dir` unless only one segment is
/// left: a roll creates an empty segment, and one that failed or was cut
/// short by a crash may leave it behind while the previous segment goes on
/// (or went on) past its base offset. No legitimate empty segment precedes
/// another, and an empty last one ends where the one before it does.
fn drop_empty_segments(fs: &dyn Fs, dir: &Path, bases: &mut Vec<u64>) -> Result<(), StorageError> {
    let mut removed = false;
    let mut i = bases.len();
    while i > 0 && bases.len() > 1 {
        i -= 1;
        let path = dir.join(segment::file_name(bases[i], "log"));
        if fs.len(&path).map_err(io_err(&path))? > 0 {
            continue;
        }
        tracing::warn!(path = %path.display(), "removing an empty segment left by an unfinished roll");
        fs.remove_file(&path).map_err(io_err(&path))?;
        for ext in ["index", "timeindex"] {
            let index = dir.join(segment::file_name(bases[i], ext));
            match fs.remove_file(&index) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&index)(e))
                }
                _ => {}
            }
        }
        bases.remove(i);
        removed = true;
    }
    if removed {
        sync_dir(fs, dir)?;
    }
    Ok(())
}

/// Base offsets of the segment files in `dir`, in order. Other files are ignored.
fn segment_bases(fs: &dyn Fs, dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut bases = Vec::new();
    for name in fs.read_dir(dir).map_err(io_err(dir))? {
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        match stem.parse::<u64>() {
            Ok(base) if segment::file_name(base, "log") == name.to_str().unwrap_or_default() => {
                bases.push(base)
            }
            _ => {
                tracing::warn!(dir = %dir.display(), file = stem, "ignoring file that is not a segment")
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_util::{
        append, append_batches, assert_reads_all, files, headers, make_batch, make_batch_at,
        replicate, SMALL,
    };
    use crate::RetentionPolicy;

    fn size_of(log: &Log) -> u64 {
        log.segments.iter().map(Segment::size_bytes).sum()
    }

    fn bases(log: &Log) -> Vec<u64> {
        log.segments.iter().map(Segment::base_offset).collect()
    }

    /// The batches of `batches` at or after `offset`.
    fn from_offset(batches: &[Vec<u8>], offset: u64) -> Vec<Vec<u8>> {
        batches
            .iter()
            .filter(|b| headers(b)[0].base_offset >= offset)
            .cloned()
            .collect()
    }

    fn by_bytes(bytes: u64) -> RetentionPolicy {
        RetentionPolicy {
            bytes: Some(bytes),
            ms: None,
        }
    }

    fn by_ms(ms: u64) -> RetentionPolicy {
        RetentionPolicy {
            bytes: None,
            ms: Some(ms),
        }
    }

    /// `count` one-record batches stamped at `timestamp_ms`, appended at epoch 1.
    fn append_at(log: &mut Log, count: u64, timestamp_ms: i64) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let mut bytes = make_batch_at(1, i, timestamp_ms);
                append(log, &mut bytes, 1).unwrap();
                bytes
            })
            .collect()
    }

    #[test]
    fn given_log_over_retention_bytes_when_applying_should_delete_oldest_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_batches(&mut log, 60, 1);
        let (before, leo) = (bases(&log), log.log_end_offset());
        let keep = 2 * SMALL.segment_bytes;
        let report = log.apply_retention(by_bytes(keep), leo, 0).unwrap();
        let after = bases(&log);
        assert!(report.segments_deleted > 0, "{report:?}");
        assert_eq!(after[..], before[report.segments_deleted..], "oldest first");
        assert_eq!(report.log_start_offset, after[0]);
        assert_eq!(log.log_start_offset(), after[0]);
        // Kafka's rule: at least retention.bytes kept, and no further
        // segment could go without dropping below it.
        assert!(size_of(&log) >= keep);
        assert!(size_of(&log) - log.segments[0].size_bytes() < keep);
        assert_eq!(files(dir.path(), "log").len(), after.len());
        assert_eq!(files(dir.path(), "index").len(), after.len());
        assert_reads_all(&log, &from_offset(&batches, after[0]));
        assert_eq!(log.log_end_offset(), leo);
        // Applying again changes nothing.
        let again = log.apply_retention(by_bytes(keep), leo, 0).unwrap();
        assert_eq!(again.segments_deleted, 0);
    }

    #[test]
    fn given_retention_when_reading_below_new_start_should_be_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 60, 1);
        let leo = log.log_end_offset();
        log.apply_retention(by_bytes(SMALL.segment_bytes), leo, 0)
            .unwrap();
        let start = log.log_start_offset();
        assert!(start > 0);
        for offset in [0, start - 1] {
            let got = log.read(offset, u32::MAX);
            assert!(
                matches!(got, Err(StorageError::OffsetOutOfRange { offset: o, log_start_offset, log_end_offset })
                    if o == offset && log_start_offset == start && log_end_offset == leo),
                "{got:?}"
            );
        }
        assert_eq!(headers(&log.read(start, 1).unwrap())[0].base_offset, start);
        assert!(matches!(
            log.truncate_to(start - 1),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn given_old_and_new_segments_when_applying_time_retention_should_delete_only_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let mut batches = append_at(&mut log, 40, 1_000);
        let first_new = log.log_end_offset();
        batches.extend(append_at(&mut log, 40, 50_000));
        let leo = log.log_end_offset();
        // Cutoff 40_000: only segments wholly made of old batches go.
        let report = log.apply_retention(by_ms(20_000), leo, 60_000).unwrap();
        assert!(report.segments_deleted > 0);
        let start = log.log_start_offset();
        assert!(start <= first_new, "a segment holding a new batch stays");
        assert!(
            log.segments.get(1).unwrap().base_offset() > first_new,
            "the first kept segment holds a new batch"
        );
        assert_reads_all(&log, &from_offset(&batches, start));
        // Not yet expired: nothing more goes.
        let none = log.apply_retention(by_ms(20_000), leo, 60_000).unwrap();
        assert_eq!(none.segments_deleted, 0);
        // Later, everything but the active segment goes.
        let rest = log.apply_retention(by_ms(20_000), leo, 1_000_000).unwrap();
        assert_eq!(log.segments.len(), 1);
        assert!(rest.segments_deleted > 0);
        assert_eq!(log.log_start_offset(), log.active().base_offset());
    }

    #[test]
    fn given_everything_expired_when_applying_should_keep_active_segment_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_at(&mut log, 50, 1_000);
        let leo = log.log_end_offset();
        let policy = RetentionPolicy {
            bytes: Some(0),
            ms: Some(1),
        };
        log.apply_retention(policy, leo, i64::MAX).unwrap();
        assert_eq!(log.segments.len(), 1, "the active segment stays");
        let active_base = log.active().base_offset();
        assert!(log.active().size_bytes() > 0);
        assert_eq!(log.log_start_offset(), active_base);
        assert_reads_all(&log, &from_offset(&batches, active_base));
        let mut more = make_batch(2, 7);
        assert_eq!(append(&mut log, &mut more, 1).unwrap().base_offset, leo);
        log.apply_retention(policy, leo + 2, i64::MAX).unwrap();
        assert_eq!(log.segments.len(), 1);
        assert_eq!(log.log_start_offset(), log.active().base_offset());
        assert_eq!(log.log_end_offset(), leo + 2);
    }

    #[test]
    fn given_high_watermark_when_applying_should_keep_segments_reaching_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 60, 1);
        let second = log.segments[1].base_offset();
        let third = log.segments[2].base_offset();
        let none = log.apply_retention(by_bytes(0), second - 1, 0).unwrap();
        assert_eq!(
            none.segments_deleted, 0,
            "segment 0 holds unreplicated records"
        );
        let one = log.apply_retention(by_bytes(0), third - 1, 0).unwrap();
        assert_eq!(one.segments_deleted, 1);
        assert_eq!(log.log_start_offset(), second);
    }

    #[test]
    fn given_retention_when_reopening_should_start_at_first_kept_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let mut batches = append_batches(&mut log, 30, 1);
        batches.extend(append_batches(&mut log, 30, 2));
        let leo = log.log_end_offset();
        log.apply_retention(by_bytes(2 * SMALL.segment_bytes), leo, 0)
            .unwrap();
        let start = log.log_start_offset();
        log.flush().unwrap();
        drop(log);
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, leo));
        let kept = from_offset(&batches, start);
        assert_reads_all(&log, &kept);
        assert!(matches!(
            log.read(start - 1, 1),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // The epoch cache starts at the log start, or later.
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        let first_start: u64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(first_start >= start, "{text}");
        let mut more = make_batch(1, 9);
        assert_eq!(append(&mut log, &mut more, 2).unwrap().base_offset, leo);
        // Timestamps of segments opened from disk are read when needed.
        let report = log.apply_retention(by_ms(1), leo + 1, i64::MAX).unwrap();
        assert!(report.segments_deleted > 0);
        assert_eq!(log.segments.len(), 1);
    }

    #[test]
    fn given_segments_deleted_behind_checkpoint_when_opening_should_clamp_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 30, 1);
        append_batches(&mut log, 30, 3);
        let second = log.segments[1].base_offset();
        drop(log);
        // As after a crash between deleting a segment and the checkpoint.
        let oldest = &files(dir.path(), "log")[0];
        std::fs::remove_file(oldest).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.log_start_offset(), second);
        assert_eq!(log.end_offset_for_epoch(1).unwrap().0, 1);
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert!(text.starts_with(&format!("1 {second}\n")), "{text}");
    }

    #[test]
    fn given_log_when_resetting_should_empty_it_and_continue_at_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 30, 1);
        log.reset_to(1_000).unwrap();
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (1_000, 1_000)
        );
        assert_eq!(log.latest_epoch(), None);
        assert_eq!(files(dir.path(), "log").len(), 1);
        assert!(log.read(1_000, 100).unwrap().is_empty());
        assert!(matches!(
            log.read(999, 100),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // A leader's batch at its log start follows.
        let mut leader_batch = make_batch(3, 1);
        yak_protocol::batch::stamp(&mut leader_batch, 1_000, 4);
        let info = replicate(&mut log, &leader_batch).unwrap().unwrap();
        assert_eq!((info.base_offset, info.last_offset), (1_000, 1_002));
        assert_eq!(log.latest_epoch(), Some(4));
        log.flush().unwrap();
        drop(log);
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (1_000, 1_003)
        );
        assert_reads_all(&log, &[leader_batch]);
        assert_eq!(log.end_offset_for_epoch(4), Some((4, 1_003)));
    }

    #[test]
    fn given_batches_when_reading_each_offset_should_return_containing_batch_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let batches = append_batches(&mut log, 10, 1);
        assert_eq!(log.log_end_offset(), 19); // 1, 2, 3, 1, ... records
        assert_reads_all(&log, &batches);
        let all = log.read(0, u32::MAX).unwrap();
        assert_eq!(all, batches.concat());
        let from_mid = log.read(4, u32::MAX).unwrap(); // batch [3, 5]
        assert_eq!(headers(&from_mid)[0].base_offset, 3);
    }

    #[test]
    fn given_small_max_bytes_when_reading_should_return_whole_batches_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let batches = append_batches(&mut log, 5, 1);
        let two = (batches[0].len() + batches[1].len()) as u32;
        assert_eq!(log.read(0, two + 5).unwrap(), batches[..2].concat());
        assert_eq!(log.read(0, two - 1).unwrap(), batches[0]);
        assert_eq!(log.read(0, 0).unwrap(), batches[0]);
    }

    #[test]
    fn given_small_segments_when_appending_should_roll_and_read_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_batches(&mut log, 50, 1);
        let segments = files(dir.path(), "log");
        assert!(segments.len() > 3, "{} segments", segments.len());
        for s in &segments {
            let len = std::fs::metadata(s).unwrap().len();
            assert!(len <= SMALL.segment_bytes, "{} is {len} bytes", s.display());
        }
        assert_eq!(log.read(0, u32::MAX).unwrap(), batches.concat());
        assert_reads_all(&log, &batches);
    }

    #[test]
    fn given_segment_boundaries_when_reading_should_find_first_and_last_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append_batches(&mut log, 30, 1);
        let bases: Vec<u64> = log.segments.iter().map(Segment::base_offset).collect();
        let mut ends: Vec<u64> = bases[1..].to_vec();
        ends.push(log.log_end_offset());
        for (&base, &end) in bases.iter().zip(&ends) {
            let first = headers(&log.read(base, 1).unwrap())[0];
            assert_eq!(first.base_offset, base);
            let last = headers(&log.read(end - 1, 1).unwrap())[0];
            assert_eq!(last.next_offset(), end, "last batch of segment {base}");
        }
        let leo = log.log_end_offset();
        assert!(log.read(leo, u32::MAX).unwrap().is_empty());
        assert!(
            matches!(log.read(leo + 1, 1), Err(StorageError::OffsetOutOfRange { offset, .. }) if offset == leo + 1)
        );
    }

    #[test]
    fn given_damaged_segment_start_when_reading_late_offset_should_seek_through_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_batches(&mut log, 30, 1);
        let second_base = log.segments[1].base_offset();
        drop(log);
        // Break the first header of the first (trusted) segment: a read near
        // the segment end only works if it does not scan from the start.
        let first = &files(dir.path(), "log")[0];
        let mut raw = std::fs::read(first).unwrap();
        raw[16] = 99; // magic
        std::fs::write(first, raw).unwrap();
        let log = Log::open(dir.path(), SMALL).unwrap();
        let got = headers(&log.read(second_base - 1, 1).unwrap())[0];
        assert_eq!(got.next_offset(), second_base);
        assert!(matches!(
            log.read(0, 1),
            Err(StorageError::CorruptSegment { position: 0, .. })
        ));
        assert_eq!(
            log.read(second_base, u32::MAX).unwrap().len(),
            batches.concat().len() - std::fs::metadata(first).unwrap().len() as usize
        );
    }

    #[test]
    fn given_clean_append_when_reopening_should_keep_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let mut batches = append_batches(&mut log, 25, 3);
        log.flush().unwrap();
        drop(log);
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_reads_all(&log, &batches);
        assert_eq!(log.latest_epoch(), Some(3));
        let mut more = make_batch(2, 99);
        let info = append(&mut log, &mut more, 3).unwrap();
        assert_eq!(info.base_offset, 49);
        batches.push(more);
        drop(log);
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_reads_all(&log, &batches);
    }

    #[test]
    fn given_truncate_inside_batch_when_truncating_should_drop_that_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_batches(&mut log, 30, 1);
        let segments_before = files(dir.path(), "log").len();
        // Batch 4 holds offsets [7, 8]: truncating to 8 keeps [0, 7).
        log.truncate_to(8).unwrap();
        assert_eq!(log.log_end_offset(), 7);
        assert!(files(dir.path(), "log").len() < segments_before);
        assert_reads_all(&log, &batches[..4]);
        log.truncate_to(100).unwrap(); // past the end: nothing
        assert_eq!(log.log_end_offset(), 7);
        let mut more = make_batch(1, 7);
        assert_eq!(append(&mut log, &mut more, 1).unwrap().base_offset, 7);
        drop(log);
        let log = Log::open(dir.path(), SMALL).unwrap();
        let mut expected = batches[..4].to_vec();
        expected.push(more);
        assert_reads_all(&log, &expected);
    }

    #[test]
    fn given_truncate_to_segment_base_when_truncating_should_keep_empty_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_batches(&mut log, 30, 1);
        let base = log.segments[2].base_offset();
        log.truncate_to(base).unwrap();
        assert_eq!(log.log_end_offset(), base);
        assert!(log.read(base, 10).unwrap().is_empty());
        drop(log);
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.log_end_offset(), base);
        let n = batches
            .iter()
            .take_while(|b| headers(b)[0].base_offset < base)
            .count();
        assert_reads_all(&log, &batches[..n]);
        log.truncate_to(0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(log.latest_epoch(), None);
    }

    #[test]
    fn given_epochs_when_appending_and_truncating_should_answer_end_offset_for_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.end_offset_for_epoch(0), None);
        for (epoch, records) in [(1, 2), (1, 3), (2, 1), (5, 4), (5, 1)] {
            append(&mut log, &mut make_batch(records, 0), epoch).unwrap();
        }
        // Epoch 1: [0, 5), epoch 2: [5, 6), epoch 5: [6, 11).
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
        assert_eq!(log.end_offset_for_epoch(3), Some((2, 6)));
        assert_eq!(log.end_offset_for_epoch(5), Some((5, 11)));
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 0)));
        let refused = append(&mut log, &mut make_batch(1, 0), 4);
        assert!(matches!(
            refused,
            Err(StorageError::StaleEpoch {
                epoch: 4,
                latest: 5
            })
        ));
        log.truncate_to(6).unwrap();
        assert_eq!(log.latest_epoch(), Some(2));
        assert_eq!(log.end_offset_for_epoch(7), Some((2, 6)));
        drop(log);
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
        assert_eq!(log.latest_epoch(), Some(2));
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(text, "1 0\n2 5\n");
    }

    #[test]
    fn given_leader_log_when_replicating_should_copy_it_and_ignore_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut leader = Log::open(&dir.path().join("leader"), SMALL).unwrap();
        append_batches(&mut leader, 12, 1);
        append_batches(&mut leader, 12, 2);
        let mut follower = Log::open(&dir.path().join("follower"), SMALL).unwrap();
        let mut offset = 0;
        while offset < leader.log_end_offset() {
            let mut chunk = leader.read(offset, 300).unwrap();
            let torn = leader.read(leader.log_end_offset() - 1, 1).unwrap();
            chunk.extend_from_slice(&torn[..torn.len() / 2]);
            let info = replicate(&mut follower, &chunk).unwrap().unwrap();
            assert_eq!(info.base_offset, offset);
            offset = info.last_offset + 1;
        }
        assert_eq!(
            follower.read(0, u32::MAX).unwrap(),
            leader.read(0, u32::MAX).unwrap()
        );
        assert_eq!(
            follower.end_offset_for_epoch(1),
            leader.end_offset_for_epoch(1)
        );
        assert_eq!(replicate(&mut follower, &[1, 2, 3]).unwrap(), None);
        let again = replicate(&mut follower, &leader.read(0, 1).unwrap());
        assert!(
            matches!(again, Err(StorageError::NonMonotonicOffset { expected, got: 0 }) if expected == offset)
        );
    }

    #[test]
    fn given_replicated_run_behind_the_log_state_when_appending_should_refuse_and_write_nothing() {
        // What the edge check cannot know is the log's own state: the run
        // must start at the log end offset with no epoch below its latest.
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        append(&mut log, &mut make_batch(2, 0), 3).unwrap();
        let mut old_epoch = make_batch(1, 1);
        yak_protocol::batch::stamp(&mut old_epoch, 2, 2);
        assert!(matches!(
            replicate(&mut log, &old_epoch),
            Err(StorageError::StaleEpoch {
                epoch: 2,
                latest: 3
            })
        ));
        let mut gap = make_batch(1, 1);
        yak_protocol::batch::stamp(&mut gap, 5, 3);
        assert!(matches!(
            replicate(&mut log, &gap),
            Err(StorageError::NonMonotonicOffset {
                expected: 2,
                got: 5
            })
        ));
        assert_eq!(log.log_end_offset(), 2);
        let size = std::fs::metadata(&files(dir.path(), "log")[0])
            .unwrap()
            .len();
        let mut next = make_batch(1, 1);
        yak_protocol::batch::stamp(&mut next, 2, 3);
        replicate(&mut log, &next).unwrap();
        assert!(
            std::fs::metadata(&files(dir.path(), "log")[0])
                .unwrap()
                .len()
                > size
        );
    }

    #[test]
    fn given_large_log_when_reading_random_offsets_should_return_containing_batch() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 32 * 1024,
            index_interval_bytes: 1024,
        };
        let mut log = Log::open(dir.path(), config).unwrap();
        let batches = append_batches(&mut log, 2_000, 1);
        assert!(files(dir.path(), "log").len() >= 5);
        drop(log);
        let log = Log::open(dir.path(), config).unwrap();
        let starts: Vec<u64> = batches.iter().map(|b| headers(b)[0].base_offset).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let offset = seed % log.log_end_offset();
            let i = starts.partition_point(|&s| s <= offset) - 1;
            assert_eq!(log.read(offset, 1).unwrap(), batches[i], "offset {offset}");
        }
    }

    #[test]
    fn given_partition_when_deleting_should_remove_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic-0");
        let mut log = Log::open(&path, SMALL).unwrap();
        append_batches(&mut log, 3, 1);
        assert_eq!(log.dir(), path);
        log.delete().unwrap();
        assert!(!path.exists());
    }
}
