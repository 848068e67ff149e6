//! Deleting a log's old records: retention by time and size (whole
//! segments from the front) and resetting a follower's log to start over
//! at its leader's log start.

use super::Log;
use crate::segment::Segment;
use crate::{sync_dir, RetentionPolicy, RetentionReport, StorageError};

impl Log {
    /// Deletes whole old segments as `policy` says, oldest first, and moves
    /// the log start up to the first segment kept. Kafka's rules: by time, a
    /// segment goes once its largest timestamp is more than `policy.ms`
    /// before `now_ms`; by size, the oldest segment goes while the log
    /// exceeds `policy.bytes` by at least that segment's size. Deletion
    /// stops at the first segment that must stay. Never deletes the active
    /// (last) segment, nor one holding offsets at or past `high_watermark`
    /// (records not yet replicated), so the log start never passes it.
    pub fn apply_retention(
        &mut self,
        policy: RetentionPolicy,
        high_watermark: u64,
        now_ms: i64,
    ) -> Result<RetentionReport, StorageError> {
        self.check_usable()?;
        // Segments [0, deletable) are closed and wholly below the high watermark.
        let deletable = self.segments[1..]
            .iter()
            .take_while(|next| next.base_offset() <= high_watermark)
            .count();
        let mut count = 0;
        if let Some(ms) = policy.ms {
            let cutoff_ms = now_ms.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
            while count < deletable && self.expired(count, cutoff_ms) {
                count += 1;
            }
        }
        if let Some(bytes) = policy.bytes {
            let total: u64 = self.segments[count..].iter().map(Segment::size_bytes).sum();
            if total >= bytes {
                let mut excess = total - bytes;
                while count < deletable && excess >= self.segments[count].size_bytes() {
                    excess -= self.segments[count].size_bytes();
                    count += 1;
                }
            }
        }
        let deleted = self.delete_oldest(count);
        self.poison_if_fatal(deleted)
    }

    /// Whether segment `i` holds nothing newer than `cutoff_ms`. An empty
    /// segment holds nothing; a segment whose headers cannot be read is kept.
    fn expired(&mut self, i: usize, cutoff_ms: i64) -> bool {
        match self.segments[i].max_timestamp_ms() {
            Ok(max) => max.is_none_or(|m| m < cutoff_ms),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read a segment's timestamps; keeping it");
                false
            }
        }
    }

    /// Deletes the `count` oldest segments (never the active one), oldest
    /// first, each removal made durable before the next (a power cut never
    /// leaves a hole in the offsets), and moves the epoch cache's start up.
    fn delete_oldest(&mut self, count: usize) -> Result<RetentionReport, StorageError> {
        assert!(
            count < self.segments.len(),
            "invariant: the active segment is never deleted"
        );
        let mut report = RetentionReport {
            segments_deleted: 0,
            bytes_deleted: 0,
            log_start_offset: self.log_start_offset(),
        };
        if count == 0 {
            return Ok(report);
        }
        for _ in 0..count {
            // Files first: a segment leaves the list only once they are gone.
            self.segments[0].delete_files(&*self.fs)?;
            let segment = self.segments.remove(0);
            report.segments_deleted += 1;
            report.bytes_deleted += segment.size_bytes();
            sync_dir(&*self.fs, &self.dir)?;
        }
        let start = self.log_start_offset();
        assert!(
            start >= report.log_start_offset,
            "invariant: the log start only moves forward"
        );
        report.log_start_offset = start;
        self.epochs.truncate_start(&*self.fs, start)?;
        tracing::info!(dir = %self.dir.display(), segments = report.segments_deleted, bytes = report.bytes_deleted,
            log_start_offset = start, "retention deleted old segments");
        Ok(report)
    }

    /// Empties the log and starts it again at `offset`: every segment is
    /// deleted, one empty segment starts at `offset`, the epoch cache is
    /// cleared. A follower does this when its log ends below the leader's
    /// log start (Kafka's truncate-fully-and-start-at), then fetches from
    /// `offset`. Old segments go newest first, each removal durable before
    /// the next, so a power cut leaves a prefix of the old log (no hole);
    /// the new segment comes last. Should its creation fail once the old
    /// files are gone, the log is poisoned: a restart starts it afresh.
    pub fn reset_to(&mut self, offset: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        let reset = self.reset_files(offset);
        self.poison_if_fatal(reset)?;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        Ok(())
    }

    /// The file steps of [`Log::reset_to`]. The oldest segment stays in the
    /// list until the new one replaces it (a log always has a segment).
    fn reset_files(&mut self, offset: u64) -> Result<(), StorageError> {
        let fs = &*self.fs;
        while self.segments.len() > 1 {
            let newest = self.active();
            newest.delete_files(fs)?;
            let base = newest.base_offset();
            self.segments.pop();
            self.log_end_offset = base;
            sync_dir(fs, &self.dir)?;
        }
        // Until the new segment replaces it, the list names files that may
        // be gone: a failure in between leaves the log poisoned.
        self.poisoned = true;
        self.active().delete_files(fs)?;
        sync_dir(fs, &self.dir)?;
        let fresh = Segment::create(fs, &self.dir, offset)?;
        self.segments = vec![fresh];
        self.poisoned = false;
        self.log_end_offset = offset;
        sync_dir(fs, &self.dir)?;
        self.dir_dirty = false;
        self.epochs.truncate_from(fs, 0)
    }
}
