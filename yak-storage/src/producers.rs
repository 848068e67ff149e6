//! Idempotent-producer state of one partition: for each producer id, its
//! epoch and the last few batches' sequence ranges and offsets. A resent
//! batch is found here and answered as a duplicate instead of being written
//! twice; a batch from an older epoch of a known id is fenced; a newer
//! epoch starts its sequences at 0 (Kafka's rules). No I/O; rebuilt from
//! the log's tail at start-up (every batch header carries its producer id,
//! epoch and sequence) and kept by followers too, so a new leader knows
//! what the old one wrote.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use yak_protocol::batch::next_sequence;
use yak_protocol::limits::PRODUCER_BATCHES_REMEMBERED;

/// A batch as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
    last_offset: u64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen: append it.
    Append,
    /// Already in the log at these offsets: write nothing.
    Duplicate {
        /// Offset of its first record.
        base_offset: u64,
        /// Offset of its last record.
        last_offset: u64,
    },
    /// A gap after the last sequence: an earlier batch is missing (or a
    /// new epoch that does not start at sequence 0).
    OutOfOrder {
        /// The sequence that was expected.
        expected: i32,
    },
    /// An epoch older than the one this id last wrote with: a fenced
    /// producer (Kafka's `INVALID_PRODUCER_EPOCH`).
    Fenced {
        /// The epoch the id writes with now.
        current: i16,
    },
}

/// Producer state of one partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerTable {
    /// Per id, its last batches in log order; the last one's epoch is the
    /// id's current epoch.
    producers: HashMap<i64, VecDeque<Entry>>,
    /// When each producer's last batch was recorded, for expiry.
    last_seen: HashMap<i64, Instant>,
}

impl ProducerTable {
    /// Decides on a batch from `producer_id` at `epoch` with sequences
    /// `first..=last` (`last` may have wrapped past `i32::MAX` to a small
    /// number: the sequence after `i32::MAX` is 0, see [`next_sequence`]).
    pub fn check(&self, producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32) -> Verdict {
        if producer_id < 0 {
            return Verdict::Append;
        }
        let Some(entries) = self.producers.get(&producer_id) else {
            return Verdict::Append;
        };
        let Some(current) = entries.back().map(|e| e.epoch) else {
            return Verdict::Append;
        };
        if epoch < current {
            return Verdict::Fenced { current };
        }
        if epoch > current {
            return match first_seq {
                0 => Verdict::Append,
                _ => Verdict::OutOfOrder { expected: 0 },
            };
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.epoch == epoch && e.first_seq == first_seq && e.last_seq == last_seq)
        {
            return Verdict::Duplicate {
                base_offset: e.base_offset,
                last_offset: e.last_offset,
            };
        }
        match entries.back().map(|last| next_sequence(last.last_seq, 1)) {
            Some(expected) if first_seq != expected => Verdict::OutOfOrder { expected },
            _ => Verdict::Append,
        }
    }

    /// Records a batch that is now in the log. A batch older than the id's
    /// current epoch is not remembered (a leader never appends one).
    pub fn record(
        &mut self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
        base_offset: u64,
        last_offset: u64,
    ) {
        if producer_id < 0 || first_seq < 0 || epoch < 0 {
            return;
        }
        let entries = self.producers.entry(producer_id).or_default();
        if entries.back().is_some_and(|e| epoch < e.epoch) {
            return;
        }
        entries.push_back(Entry {
            epoch,
            first_seq,
            last_seq,
            base_offset,
            last_offset,
        });
        while entries.len() > PRODUCER_BATCHES_REMEMBERED {
            entries.pop_front();
        }
        self.last_seen.insert(producer_id, Instant::now());
    }

    /// The epoch `producer_id` writes with now, if it is remembered.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id)?.back().map(|e| e.epoch)
    }

    /// Forgets batches at or after `offset` (the log was truncated there);
    /// an id's epoch goes back to that of its last batch left.
    pub fn truncate(&mut self, offset: u64) {
        for entries in self.producers.values_mut() {
            entries.retain(|e| e.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.is_empty());
        self.last_seen
            .retain(|id, _| self.producers.contains_key(id));
    }

    /// Forgets producers without a batch for `ttl` (Kafka's
    /// `producer.id.expiration.ms`): a batch from one later starts afresh,
    /// like one from a new producer. Returns how many were forgotten.
    pub fn expire(&mut self, now: Instant, ttl: Duration) -> usize {
        let before = self.producers.len();
        self.last_seen
            .retain(|_, seen| now.saturating_duration_since(*seen) < ttl);
        self.producers
            .retain(|id, _| self.last_seen.contains_key(id));
        before - self.producers.len()
    }

    /// Producers remembered.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn given_resent_batch_when_checking_should_report_duplicate_with_original_offsets() {
        let mut t = ProducerTable::default();
        assert_eq!(t.check(7, 0, 0, 9), Verdict::Append);
        t.record(7, 0, 0, 9, 100, 109);
        t.record(7, 0, 10, 19, 110, 119);
        assert_eq!(
            t.check(7, 0, 0, 9),
            Verdict::Duplicate {
                base_offset: 100,
                last_offset: 109
            }
        );
        assert_eq!(t.check(7, 0, 20, 29), Verdict::Append);
        assert_eq!(t.check(7, 0, 30, 39), Verdict::OutOfOrder { expected: 20 });
        assert_eq!(
            t.check(8, 0, 50, 59),
            Verdict::Append,
            "unknown producers start anywhere"
        );
        assert_eq!(
            t.check(-1, 0, 0, 0),
            Verdict::Append,
            "non-idempotent batches are never deduplicated"
        );
    }

    #[test]
    fn given_producer_silent_past_expiration_when_expiring_should_forget_only_it() {
        let mut t = ProducerTable::default();
        t.record(7, 0, 0, 9, 100, 109);
        let later = Instant::now() + Duration::from_secs(60);
        t.record(8, 0, 0, 0, 110, 110);
        assert_eq!(
            t.expire(Instant::now(), Duration::from_secs(60)),
            0,
            "nobody is silent yet"
        );
        assert_eq!(
            t.expire(later + Duration::from_millis(1), Duration::from_secs(60)),
            2
        );
        assert!(t.is_empty());
        t.record(7, 0, 0, 9, 100, 109);
        t.record(9, 0, 0, 0, 111, 111);
        assert_eq!(
            t.expire(Instant::now(), Duration::ZERO),
            2,
            "a zero ttl forgets everyone"
        );
        assert_eq!(
            t.check(7, 0, 50, 59),
            Verdict::Append,
            "a forgotten producer starts anywhere"
        );
    }

    #[test]
    fn given_many_batches_when_recording_should_remember_only_the_last_five() {
        let mut t = ProducerTable::default();
        for i in 0..10 {
            t.record(1, 0, i * 10, i * 10 + 9, i as u64 * 10, i as u64 * 10 + 9);
        }
        assert_eq!(t.check(1, 0, 0, 9), Verdict::OutOfOrder { expected: 100 });
        assert!(matches!(t.check(1, 0, 90, 99), Verdict::Duplicate { .. }));
    }

    #[test]
    fn given_truncated_log_when_checking_should_forget_truncated_batches() {
        let mut t = ProducerTable::default();
        t.record(1, 0, 0, 9, 0, 9);
        t.record(1, 0, 10, 19, 10, 19);
        t.truncate(10);
        assert_eq!(t.check(1, 0, 10, 19), Verdict::Append);
    }

    #[test]
    fn given_higher_epoch_when_checking_should_start_sequences_at_zero() {
        let mut t = ProducerTable::default();
        t.record(7, 0, 0, 9, 100, 109);
        assert_eq!(t.check(7, 1, 0, 4), Verdict::Append, "a bump starts at 0");
        assert_eq!(
            t.check(7, 1, 10, 14),
            Verdict::OutOfOrder { expected: 0 },
            "a new epoch must start at sequence 0"
        );
        t.record(7, 1, 0, 4, 110, 114);
        assert_eq!(t.epoch(7), Some(1));
        assert_eq!(t.check(7, 1, 5, 9), Verdict::Append);
        assert_eq!(
            t.check(7, 1, 10, 14),
            Verdict::OutOfOrder { expected: 5 },
            "within the new epoch, today's gap rule"
        );
    }

    #[test]
    fn given_lower_epoch_when_checking_should_fence_it_even_for_a_resent_batch() {
        let mut t = ProducerTable::default();
        t.record(7, 0, 0, 9, 100, 109);
        t.record(7, 3, 0, 9, 110, 119);
        assert_eq!(t.check(7, 2, 10, 19), Verdict::Fenced { current: 3 });
        assert_eq!(
            t.check(7, 0, 0, 9),
            Verdict::Fenced { current: 3 },
            "a batch of the old epoch is fenced, not answered as a duplicate"
        );
        t.record(7, 2, 10, 19, 120, 129);
        assert_eq!(t.epoch(7), Some(3), "an older epoch never lowers the fence");
        assert_eq!(t.check(7, 3, 10, 19), Verdict::Append);
    }

    #[test]
    fn given_same_sequences_in_two_epochs_when_checking_should_dedup_only_within_the_epoch() {
        let mut t = ProducerTable::default();
        t.record(7, 0, 0, 9, 100, 109);
        t.record(7, 1, 0, 9, 110, 119);
        assert_eq!(
            t.check(7, 1, 0, 9),
            Verdict::Duplicate {
                base_offset: 110,
                last_offset: 119
            },
            "the resent batch of this epoch, at this epoch's offsets"
        );
        assert_eq!(
            t.check(7, 2, 0, 9),
            Verdict::Append,
            "the next epoch writes the same sequences afresh"
        );
    }

    #[test]
    fn given_log_cut_below_a_bump_when_truncating_should_go_back_to_the_older_epoch() {
        let mut t = ProducerTable::default();
        t.record(7, 0, 0, 9, 100, 109);
        t.record(7, 1, 0, 9, 110, 119);
        t.truncate(110);
        assert_eq!(t.epoch(7), Some(0));
        assert_eq!(t.check(7, 0, 10, 19), Verdict::Append);
        assert_eq!(
            t.check(7, 1, 0, 9),
            Verdict::Append,
            "the bump is not in the log any more"
        );
    }

    #[test]
    fn given_batches_replayed_from_the_log_when_recovering_should_decide_as_before() {
        // Recovery and followers rebuild the table by recording the log's
        // batch headers (id, epoch, sequences, offsets) in log order.
        let log = [
            (7, 0, 0, 9, 100, 109),
            (8, 0, 0, 0, 110, 110),
            (7, 1, 0, 4, 111, 115),
            (7, 1, 5, 9, 116, 120),
        ];
        let mut live = ProducerTable::default();
        let mut rebuilt = ProducerTable::default();
        for (id, epoch, first, last, base, end) in log {
            assert_eq!(live.check(id, epoch, first, last), Verdict::Append);
            live.record(id, epoch, first, last, base, end);
            rebuilt.record(id, epoch, first, last, base, end);
        }
        let probes = [
            (7, 0, 10, 19),
            (7, 1, 5, 9),
            (7, 1, 10, 10),
            (7, 2, 3, 3),
            (8, 0, 1, 1),
        ];
        for (id, epoch, first, last) in probes {
            assert_eq!(
                rebuilt.check(id, epoch, first, last),
                live.check(id, epoch, first, last),
                "producer {id} epoch {epoch} seq {first}"
            );
        }
        assert_eq!(rebuilt.check(7, 0, 10, 19), Verdict::Fenced { current: 1 });
        assert!(matches!(
            rebuilt.check(7, 1, 5, 9),
            Verdict::Duplicate { .. }
        ));
    }
}
