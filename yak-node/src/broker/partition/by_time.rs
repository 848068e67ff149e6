//! ListOffsets by time on a leader's log: the batch the log's time index
//! finds, then the first record in it at or after the timestamp, kept only
//! below the high watermark (Kafka: a consumer is never sent past what it
//! may read). The log finds batches; this reads the records of one.

use crate::protocol::batch;
use crate::protocol::{OffsetSpec, TimestampOffset};
use crate::storage::{Log, StorageError};

/// What `spec` names in `log`, below `high_watermark`; `None` for the
/// earliest and latest specs (not asked by time) and when no record is
/// that new.
pub fn find(
    log: &mut Log,
    spec: OffsetSpec,
    high_watermark: u64,
) -> Result<Option<TimestampOffset>, StorageError> {
    let timestamp_ms = match spec {
        OffsetSpec::Timestamp { timestamp_ms } => timestamp_ms,
        OffsetSpec::MaxTimestamp => match log.max_timestamp_ms()? {
            Some(max) => max,
            None => return Ok(None),
        },
        OffsetSpec::Earliest | OffsetSpec::Latest => return Ok(None),
    };
    let Some(bytes) = log.batch_at_timestamp(timestamp_ms)? else {
        return Ok(None);
    };
    let Ok(header) = batch::parse_header(&bytes) else {
        return Ok(None);
    };
    let (offset, timestamp_ms) = match batch::first_record_since(&bytes, timestamp_ms) {
        Ok(Some(found)) => found,
        // The header's largest timestamp says a record is that new; a
        // batch whose records disagree answers with its first offset.
        Ok(None) | Err(_) => {
            tracing::warn!(dir = %log.dir().display(), base_offset = header.base_offset,
                "a batch's records disagree with its largest timestamp");
            (header.base_offset, header.max_timestamp_ms)
        }
    };
    Ok((offset < high_watermark).then_some(TimestampOffset {
        offset,
        timestamp_ms,
        leader_epoch: header.leader_epoch,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::batch::{BatchBuilder, CheckedBatch, NewRecord};
    use crate::storage::LogConfig;

    /// A log of batches with these record timestamps, at epoch 3.
    fn log_of(dir: &std::path::Path, batches: &[&[i64]]) -> Log {
        let config = LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 100,
        };
        let mut log = Log::open(dir, config).unwrap();
        for timestamps in batches {
            let mut b = BatchBuilder::new(-1, 0, -1, 64);
            for &ts in *timestamps {
                b.push(NewRecord {
                    key: None,
                    value: b"v",
                    timestamp_ms: ts,
                });
            }
            let mut checked = CheckedBatch::check(b.finish()).unwrap();
            log.append(&mut checked, 3).unwrap();
        }
        log
    }

    fn at(offset: u64, timestamp_ms: i64) -> Option<TimestampOffset> {
        Some(TimestampOffset {
            offset,
            timestamp_ms,
            leader_epoch: 3,
        })
    }

    #[test]
    fn given_timestamps_when_finding_should_answer_first_record_at_or_after_below_the_hw() {
        let dir = tempfile::tempdir().unwrap();
        // Offsets 0-2, 3-4, 5, 6-7.
        let mut log = log_of(
            dir.path(),
            &[&[100, 300, 200], &[150, 250], &[400], &[350, 500]],
        );
        let ts = |t| OffsetSpec::Timestamp { timestamp_ms: t };
        for (spec, hw, want) in [
            (ts(-5), 8, at(0, 100)),
            (ts(100), 8, at(0, 100)),
            (ts(101), 8, at(1, 300)),
            (ts(300), 8, at(1, 300)),
            (ts(301), 8, at(5, 400)),
            (ts(360), 8, at(5, 400)),
            (ts(401), 8, at(7, 500)),
            (ts(501), 8, None),
            (ts(401), 7, None),
            (OffsetSpec::MaxTimestamp, 8, at(7, 500)),
            (OffsetSpec::MaxTimestamp, 7, None),
            (OffsetSpec::Latest, 8, None),
        ] {
            assert_eq!(find(&mut log, spec, hw).unwrap(), want, "{spec:?} hw {hw}");
        }
    }

    #[test]
    fn given_empty_log_when_finding_max_timestamp_should_answer_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_of(dir.path(), &[]);
        assert_eq!(find(&mut log, OffsetSpec::MaxTimestamp, 0).unwrap(), None);
    }
}
