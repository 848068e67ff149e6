//! Reading batch headers out of raw log bytes: walking whole batches,
//! cutting an answer at an offset, rebuilding the producer table from the
//! log's tail at open. No CRC checks (the log checked them on append).

use crate::broker::producers::ProducerTable;
use crate::limits::{PRODUCER_STATE_SCAN_BYTES, PRODUCER_STATE_SCAN_OFFSETS_MAX};
use crate::protocol::batch::{self, BatchHeader};
use crate::storage::Log;

/// Headers of the whole batches in `bytes`, with where each starts.
pub fn headers(bytes: &[u8]) -> impl Iterator<Item = (BatchHeader, usize)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = batch::parse_header(bytes.get(at..)?).ok()?;
        let start = at;
        at = at.checked_add(h.total_bytes())?;
        (at <= bytes.len()).then_some((h, start))
    })
}

/// The prefix of `bytes` holding only batches that start below `offset`.
pub fn cut_below(mut bytes: Vec<u8>, offset: u64) -> Vec<u8> {
    let end = headers(&bytes)
        .find(|(h, _)| h.base_offset >= offset)
        .map(|(_, start)| start);
    if let Some(end) = end {
        bytes.truncate(end);
    }
    bytes
}

/// Records every batch of `headers` in `table`.
pub fn record_producers<'a>(
    table: &mut ProducerTable,
    headers: impl IntoIterator<Item = &'a BatchHeader>,
) {
    for h in headers {
        table.record(
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.last_sequence(),
            h.base_offset,
            h.last_offset(),
        );
    }
}

/// The producer table as the log's last batches leave it.
pub fn rebuild_producers(log: &Log) -> ProducerTable {
    let mut table = ProducerTable::default();
    let end = log.log_end_offset();
    let mut offset = end
        .saturating_sub(PRODUCER_STATE_SCAN_OFFSETS_MAX)
        .max(log.log_start_offset());
    let mut scanned = 0u64;
    while offset < end && scanned < u64::from(PRODUCER_STATE_SCAN_BYTES) * 4 {
        let Ok(bytes) = log.read(offset, PRODUCER_STATE_SCAN_BYTES) else {
            break;
        };
        if bytes.is_empty() {
            break;
        }
        scanned += bytes.len() as u64;
        let batches: Vec<BatchHeader> = headers(&bytes).map(|(h, _)| h).collect();
        record_producers(&mut table, &batches);
        match batches.last() {
            Some(h) => offset = h.next_offset(),
            None => break,
        }
    }
    table
}
