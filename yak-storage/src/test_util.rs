//! Helpers shared by the storage tests.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::{AppendInfo, Log, LogConfig, StorageError};
use yak_protocol::batch::{
    self, BatchBuilder, BatchHeader, CheckedBatch, NewRecord, ReplicatedBatches,
};

/// Small segments and a dense index so a few batches exercise both.
pub(crate) const SMALL: LogConfig = LogConfig {
    segment_bytes: 1024,
    index_interval_bytes: 128,
};

/// A producer batch of `records` records whose values carry `tag`.
pub(crate) fn make_batch(records: u32, tag: u64) -> Vec<u8> {
    make_batch_at(records, tag, 1_000)
}

/// [`make_batch`] with record timestamps from `timestamp_ms` on.
pub(crate) fn make_batch_at(records: u32, tag: u64, timestamp_ms: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(-1, 0, -1, 256);
    for i in 0..records {
        let value = format!("value-{tag}-{i}");
        b.push(NewRecord {
            key: Some(b"k"),
            value: value.as_bytes(),
            timestamp_ms: timestamp_ms + i64::from(i),
        });
    }
    b.finish()
}

/// Checks `bytes` as the broker's edge would and appends it as leader at
/// `epoch`; `bytes` becomes the stored (stamped) batch.
pub(crate) fn append(
    log: &mut Log,
    bytes: &mut Vec<u8>,
    epoch: u32,
) -> Result<AppendInfo, StorageError> {
    let mut checked = CheckedBatch::check(std::mem::take(bytes)).expect("a test batch checks");
    let appended = log.append(&mut checked, epoch);
    *bytes = checked.into_bytes();
    appended
}

/// Checks `bytes` as a follower's fetch would and appends them.
pub(crate) fn replicate(log: &mut Log, bytes: &[u8]) -> Result<Option<AppendInfo>, StorageError> {
    log.append_replicated(&ReplicatedBatches::check(bytes).expect("a fetched run checks"))
}

/// Appends `count` batches of 1 to 3 records at `epoch`; returns the stored
/// (stamped) bytes of each.
pub(crate) fn append_batches(log: &mut Log, count: u64, epoch: u32) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut bytes = make_batch((i % 3 + 1) as u32, i);
            append(log, &mut bytes, epoch).unwrap();
            bytes
        })
        .collect()
}

/// Headers of the batches in `bytes`, which must all be whole and valid.
pub(crate) fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let hs: Vec<BatchHeader> = batch::split(bytes).map(|r| r.unwrap().0).collect();
    let total: usize = hs.iter().map(BatchHeader::total_bytes).sum();
    assert_eq!(total, bytes.len(), "only whole batches");
    hs
}

/// Paths of the files in `dir` ending in `.ext`, sorted.
pub(crate) fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// Checks that every offset of the log reads back its batch first.
pub(crate) fn assert_reads_all(log: &Log, batches: &[Vec<u8>]) {
    let mut offset = log.log_start_offset();
    for stored in batches {
        let h = batch::validate(stored).unwrap();
        for o in h.base_offset..=h.last_offset() {
            let got = log.read(o, 1).unwrap();
            assert_eq!(&got, stored, "offset {o}");
        }
        offset = h.next_offset();
    }
    assert_eq!(offset, log.log_end_offset());
}

/// Timestamps worth asking about for `batches`: each batch's largest
/// timestamp, one below and one above it, and the extremes.
pub(crate) fn probe_timestamps(batches: &[Vec<u8>]) -> Vec<i64> {
    let mut ts = vec![i64::MIN, -1, 0, i64::MAX];
    for b in batches {
        let m = batch::validate(b).unwrap().max_timestamp_ms;
        ts.extend([m - 1, m, m + 1]);
    }
    ts
}

/// Checks [`Log::batch_at_timestamp`] against a search of `batches` (the
/// log's batches from its start, in order) at every probe timestamp.
pub(crate) fn assert_time_lookups(log: &Log, batches: &[Vec<u8>], what: &str) {
    for t in probe_timestamps(batches) {
        let expected = batches
            .iter()
            .find(|b| batch::validate(b).unwrap().max_timestamp_ms >= t);
        let got = log.batch_at_timestamp(t).unwrap();
        assert_eq!(
            got.as_ref(),
            expected,
            "{what}: first batch at or after {t}"
        );
    }
}
