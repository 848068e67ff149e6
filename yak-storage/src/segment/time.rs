//! The time side of a segment: keeping its time index in step with the
//! offset index (trimmed with it, caught up from batch headers when behind),
//! its largest timestamp, and finding the first batch at or after a
//! timestamp. Reads batch headers only, never records.

use super::Segment;
use crate::timeindex::TimeEntry;
use crate::StorageError;
use yak_protocol::batch::BatchHeader;

impl Segment {
    /// Drops the time entries past the last offset-index entry (after the
    /// offset index lost entries: a truncation, a recovery).
    pub(super) fn trim_time_index(&mut self) -> Result<(), StorageError> {
        let last = self.index.last().map(|e| e.relative_offset);
        self.time_index.truncate_after(last)
    }

    /// File position of the batch a time entry names (it has an offset
    /// entry: the time index never runs ahead of the offset index).
    fn time_entry_position(&self, entry: TimeEntry) -> u64 {
        self.index
            .lookup(entry.relative_offset)
            .filter(|e| e.relative_offset == entry.relative_offset)
            .map_or(0, |e| u64::from(e.position))
    }

    /// Adds the time entries missing for batches starting before `end`
    /// (a data dir from before time indexes, a tail lost to a crash): walks
    /// batch headers from the last time entry on, one entry at each batch
    /// with an offset entry. Returns the largest timestamp before `end`
    /// (`None`: no batch). Stops with a warning at a header that does not
    /// parse: a damaged trusted segment is still opened, searched as far as
    /// its time index goes.
    pub(super) fn catch_up_time_index(&mut self, end: u64) -> Result<Option<i64>, StorageError> {
        let last = self.time_index.last();
        let (mut position, mut max) = match last {
            Some(entry) => (
                self.time_entry_position(entry),
                Some(entry.max_timestamp_ms),
            ),
            None => (0, None),
        };
        while position < end.min(self.size_bytes) {
            let header = match self.header_at(position)? {
                Ok(h) => h,
                Err(reason) => {
                    tracing::warn!(path = %self.log_path.display(), position, %reason, "cannot read a batch header; time index stops here");
                    break;
                }
            };
            max = Some(max.map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms)));
            let relative_offset =
                u32::try_from(header.base_offset.saturating_sub(self.base_offset))
                    .unwrap_or(u32::MAX);
            let indexed = self.index.lookup(relative_offset).is_some_and(|e| {
                e.relative_offset == relative_offset && u64::from(e.position) == position
            });
            let newer = self
                .time_index
                .last()
                .is_none_or(|t| relative_offset > t.relative_offset);
            if indexed && newer {
                self.time_index.push(TimeEntry {
                    max_timestamp_ms: max.unwrap_or(header.max_timestamp_ms),
                    relative_offset,
                })?;
            }
            position += header.total_bytes() as u64;
        }
        Ok(max)
    }

    /// The largest batch timestamp in the segment; `None` when it is empty.
    /// When not known yet (a trusted segment, after a truncation) it is
    /// computed once: the last time entry's, and the headers after it (at
    /// most about one index interval of them).
    pub(crate) fn max_timestamp_ms(&mut self) -> Result<Option<i64>, StorageError> {
        if self.max_timestamp_known {
            return Ok(self.max_timestamp_ms);
        }
        let last = self.time_index.last();
        let (mut position, mut max) = match last {
            Some(entry) => (
                self.time_entry_position(entry),
                Some(entry.max_timestamp_ms),
            ),
            None => (0, None),
        };
        while position < self.size_bytes {
            let header = self.trusted_header_at(position)?;
            max = Some(max.map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms)));
            position += header.total_bytes() as u64;
        }
        self.max_timestamp_ms = max;
        self.max_timestamp_known = true;
        Ok(max)
    }

    /// Position and header of the first batch whose largest timestamp is
    /// at least `timestamp_ms`; `None` when no batch of the segment is that
    /// new. Starts at the last time entry older than `timestamp_ms` and
    /// scans headers forward: about one index interval.
    pub(crate) fn find_by_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut position = self
            .time_index
            .last_before(timestamp_ms)
            .map_or(0, |e| self.time_entry_position(e));
        while position < self.size_bytes {
            let header = self.trusted_header_at(position)?;
            if header.max_timestamp_ms >= timestamp_ms {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }
}
