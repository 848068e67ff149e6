//! Producer epoch bumps (KIP-360): an idempotent producer's InitProducerId
//! naming its id and epoch gets the same id with the next epoch. Keeps the
//! current epoch of each id bumped here (and the one before, so a retried
//! bump gets the same answer) to refuse a stale bump. Pure and in memory;
//! never allocates ids (the caller does, durably, when [`Bump::NewId`]).
//!
//! Not durable, on purpose: Kafka keeps no state at all for producers
//! without a transactional id (its coordinator hands out a new id on every
//! InitProducerId). What fences an old epoch's writes is each partition's
//! producer table, rebuilt from the log's batch headers; this table only
//! refuses stale bumps early. After a ZooKeeper restart it starts empty
//! and a bump of `(id, e)` gets `e + 1` again, which the partitions fence
//! if the id already wrote with a newer epoch.

use crate::limits::PRODUCER_EPOCHS_TRACKED_MAX;
use std::collections::BTreeMap;

/// The answer to a bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// The id keeps writing with this epoch.
    Granted(i16),
    /// The epoch is exhausted (or the id unusable): hand out a fresh id
    /// with epoch 0.
    NewId,
    /// An epoch older than the id's current one: a fenced producer.
    Stale {
        /// The id's current epoch.
        current: i16,
    },
}

/// Current and previous epoch of the ids bumped lately.
#[derive(Debug, Default)]
pub struct ProducerEpochs {
    /// Per id: (current epoch, the epoch it was bumped from).
    bumped: BTreeMap<i64, (i16, i16)>,
}

impl ProducerEpochs {
    /// Bumps `producer_id` from `epoch` (an id ZooKeeper handed out).
    pub fn bump(&mut self, producer_id: i64, epoch: i16) -> Bump {
        if producer_id < 0 || epoch < 0 {
            return Bump::NewId;
        }
        if let Some(&(current, previous)) = self.bumped.get(&producer_id) {
            if epoch == previous {
                return Bump::Granted(current);
            }
            if epoch < current {
                return Bump::Stale { current };
            }
        }
        if epoch >= i16::MAX - 1 {
            self.bumped.remove(&producer_id);
            return Bump::NewId;
        }
        let next = epoch + 1;
        self.bumped.insert(producer_id, (next, epoch));
        while self.bumped.len() > PRODUCER_EPOCHS_TRACKED_MAX {
            // The smallest ids are the oldest producers.
            self.bumped.pop_first();
        }
        Bump::Granted(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_current_epoch_when_bumping_should_grant_the_next_and_repeat_it_for_a_retry() {
        let mut e = ProducerEpochs::default();
        assert_eq!(e.bump(7, 0), Bump::Granted(1));
        assert_eq!(e.bump(7, 0), Bump::Granted(1), "a retried bump");
        assert_eq!(e.bump(7, 1), Bump::Granted(2));
        assert_eq!(e.bump(8, 4), Bump::Granted(5), "an id not seen before");
    }

    #[test]
    fn given_older_epoch_when_bumping_should_refuse_it_as_stale() {
        let mut e = ProducerEpochs::default();
        for epoch in 0..3 {
            assert_eq!(e.bump(7, epoch), Bump::Granted(epoch + 1));
        }
        assert_eq!(e.bump(7, 0), Bump::Stale { current: 3 });
        assert_eq!(e.bump(7, 2), Bump::Granted(3), "the retry of the last bump");
        assert_eq!(e.bump(7, 5), Bump::Granted(6), "newer than known: trusted");
    }

    #[test]
    fn given_exhausted_epoch_or_bad_input_when_bumping_should_ask_for_a_new_id() {
        let mut e = ProducerEpochs::default();
        assert_eq!(e.bump(7, i16::MAX - 2), Bump::Granted(i16::MAX - 1));
        assert_eq!(e.bump(7, i16::MAX - 1), Bump::NewId);
        assert_eq!(e.bump(-1, 0), Bump::NewId);
        assert_eq!(e.bump(7, -1), Bump::NewId);
    }

    #[test]
    fn given_more_ids_than_tracked_when_bumping_should_forget_the_oldest() {
        let mut e = ProducerEpochs::default();
        let ids = PRODUCER_EPOCHS_TRACKED_MAX as i64 + 1;
        for id in 0..ids {
            e.bump(id, 0);
        }
        assert_eq!(e.bump(ids - 1, 0), Bump::Granted(1), "kept");
        assert_eq!(
            e.bump(0, 0),
            Bump::Granted(1),
            "forgotten: the bump is granted afresh"
        );
        assert_eq!(e.bumped.len(), PRODUCER_EPOCHS_TRACKED_MAX);
    }
}
