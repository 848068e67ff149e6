//! Finding records by time (Kafka's ListOffsets by timestamp): the first
//! batch whose largest timestamp reaches a given one, through each
//! segment's time index, and the log's largest timestamp. Answers with
//! whole batches; which record inside one matches is the caller's (the
//! log never parses records).

use super::Log;
use crate::segment::Segment;
use crate::StorageError;

impl Log {
    /// The whole first batch whose largest timestamp is at least
    /// `timestamp_ms`, from the log start on; `None` when no batch is that
    /// new. Each segment costs a binary search of its time index and about
    /// one index interval of headers; the first segment with a match ends
    /// the search.
    pub fn batch_at_timestamp(&self, timestamp_ms: i64) -> Result<Option<Vec<u8>>, StorageError> {
        for segment in &self.segments {
            if let Some((position, header)) = segment.find_by_timestamp(timestamp_ms)? {
                let total = header.total_bytes() as u64;
                return segment.read(position, total, true).map(Some);
            }
        }
        Ok(None)
    }

    /// The largest batch timestamp in the log; `None` when it is empty.
    /// Known per segment once computed (from its time index and the
    /// headers after the last entry).
    pub fn max_timestamp_ms(&mut self) -> Result<Option<i64>, StorageError> {
        let mut max: Option<i64> = None;
        for segment in &mut self.segments {
            if let Some(m) = Segment::max_timestamp_ms(segment)? {
                max = Some(max.map_or(m, |x| x.max(m)));
            }
        }
        Ok(max)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_util::{append, assert_time_lookups, files, make_batch_at, SMALL};
    use crate::RetentionPolicy;
    use yak_protocol::batch;

    /// Appends `count` batches whose timestamps jump back and forth (a
    /// producer's clock is not monotonic); returns the stored bytes.
    fn append_jittery(log: &mut Log, count: u64, from: u64) -> Vec<Vec<u8>> {
        (from..from + count)
            .map(|i| {
                let ts = 10_000 + ((i * 7_919) % 97) as i64 * 10;
                let mut bytes = make_batch_at((i % 3 + 1) as u32, i, ts);
                append(log, &mut bytes, 1).unwrap();
                bytes
            })
            .collect()
    }

    fn time_indexes(dir: &std::path::Path) -> Vec<Vec<u8>> {
        files(dir, "timeindex")
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    #[test]
    fn given_jittery_timestamps_over_segments_when_looking_up_should_find_first_batch_reaching_each(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_jittery(&mut log, 60, 0);
        assert!(log.segments.len() > 3, "several segments");
        assert!(time_indexes(dir.path()).iter().any(|t| t.len() >= 24));
        assert_time_lookups(&log, &batches, "appended");
        let max = batches
            .iter()
            .map(|b| batch::validate(b).unwrap().max_timestamp_ms)
            .max();
        assert_eq!(log.max_timestamp_ms().unwrap(), max);
        drop(log);
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_time_lookups(&log, &batches, "reopened");
        assert_eq!(log.max_timestamp_ms().unwrap(), max);
    }

    #[test]
    fn given_empty_log_when_looking_up_should_find_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.batch_at_timestamp(i64::MIN).unwrap(), None);
        assert_eq!(log.max_timestamp_ms().unwrap(), None);
    }

    #[test]
    fn given_data_dir_without_time_indexes_when_opening_should_rebuild_them_identically() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_jittery(&mut log, 50, 0);
        log.flush().unwrap();
        drop(log);
        let before = time_indexes(dir.path());
        for p in files(dir.path(), "timeindex") {
            std::fs::remove_file(p).unwrap();
        }
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(
            time_indexes(dir.path()),
            before,
            "rebuilt equal the originals"
        );
        assert_time_lookups(&log, &batches, "rebuilt");
        // And with the offset indexes gone as well.
        drop(log);
        for p in files(dir.path(), "index")
            .into_iter()
            .chain(files(dir.path(), "timeindex"))
        {
            std::fs::remove_file(p).unwrap();
        }
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(
            time_indexes(dir.path()),
            before,
            "rebuilt with the offset indexes"
        );
        assert_time_lookups(&log, &batches, "both rebuilt");
    }

    #[test]
    fn given_torn_or_garbage_time_index_tail_when_opening_should_drop_it_and_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_jittery(&mut log, 50, 0);
        log.flush().unwrap();
        drop(log);
        let before = time_indexes(dir.path());
        let paths = files(dir.path(), "timeindex");
        assert!(paths.len() > 2);
        for (i, p) in paths.iter().enumerate() {
            let mut raw = std::fs::read(p).unwrap();
            let n = raw.len();
            assert!(n >= 12, "every segment has a time entry");
            if i == paths.len() - 1 {
                // The active segment's newest entry lies about its timestamp.
                raw[n - 12..n - 4].copy_from_slice(&i64::MAX.to_be_bytes());
            } else if i % 2 == 0 {
                raw.extend_from_slice(&[0, 0, 0, 0, 0]); // torn entry
            } else {
                raw.truncate(n - 12); // lost tail
            }
            std::fs::write(p, raw).unwrap();
        }
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(time_indexes(dir.path()), before, "recovered");
        assert_time_lookups(&log, &batches, "recovered");
    }

    #[test]
    fn given_truncation_when_looking_up_should_forget_truncated_batches_and_index_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let mut batches = append_jittery(&mut log, 40, 0);
        let cut = batch::validate(&batches[25]).unwrap().base_offset;
        log.truncate_to(cut).unwrap();
        batches.truncate(25);
        assert_time_lookups(&log, &batches, "truncated");
        batches.extend(append_jittery(&mut log, 15, 100));
        assert_time_lookups(&log, &batches, "appended after truncation");
        drop(log);
        let before = time_indexes(dir.path());
        for p in files(dir.path(), "timeindex") {
            std::fs::remove_file(p).unwrap();
        }
        let log = Log::open(dir.path(), SMALL).unwrap();
        assert_eq!(time_indexes(dir.path()), before, "same as a rebuild");
        assert_time_lookups(&log, &batches, "reopened");
    }

    #[test]
    fn given_retention_when_looking_up_should_start_at_the_new_log_start_and_delete_time_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), SMALL).unwrap();
        let batches = append_jittery(&mut log, 60, 0);
        let segments = log.segments.len();
        let policy = RetentionPolicy {
            bytes: Some(2 * SMALL.segment_bytes),
            ms: None,
        };
        let report = log
            .apply_retention(policy, log.log_end_offset(), 0)
            .unwrap();
        assert!(report.segments_deleted > 0);
        assert_eq!(
            files(dir.path(), "timeindex").len(),
            segments - report.segments_deleted
        );
        let kept: Vec<Vec<u8>> = batches
            .into_iter()
            .filter(|b| batch::validate(b).unwrap().base_offset >= report.log_start_offset)
            .collect();
        assert_time_lookups(&log, &kept, "after retention");
    }
}
