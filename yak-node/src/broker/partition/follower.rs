//! A follower replica's side of replication: where its next fetch starts,
//! applying a leader's answer (checked, appended, fsynced) unless the
//! leadership moved while it was on its way, truncating where the logs
//! diverged, and starting over at the leader's log start.

use super::answers::storage_error;
use super::batches::record_producers;
use super::{FetchPosition, Inner, Partition};
use crate::broker::producers::ProducerTable;
use crate::broker::replica::{Action, Event};
use crate::protocol::batch::ReplicatedBatches;
use crate::protocol::{ErrorBody, ErrorCode, FetchedPartition};
use std::time::Instant;

impl Partition {
    /// Follower: where to fetch from next.
    pub fn fetch_position(&self) -> FetchPosition {
        let g = self.lock();
        FetchPosition {
            leader: g.core.leadership().leader,
            leader_epoch: g.core.leadership().epoch,
            offset: g.log.log_end_offset(),
            last_fetched_epoch: g.log.latest_epoch(),
        }
    }

    /// Whether an answer to a fetch sent at `asked` may be applied now.
    fn still_at(inner: &Inner, asked: &FetchPosition) -> bool {
        let fresh = inner.core.still_at(asked);
        if !fresh {
            let l = inner.core.leadership();
            tracing::debug!(partition = %inner.name, asked = ?asked, leader = ?l.leader, epoch = l.epoch,
                log_end_offset = inner.core.log_end_offset(), "dropping a stale fetch answer");
        }
        fresh
    }

    /// Performs a truncation or restart the core asked for; reports it back.
    fn cut(&self, inner: &mut Inner, action: Action, restart: bool) -> Result<(), ErrorBody> {
        match action {
            Action::Truncate { to } => {
                inner.log.truncate_to(to).map_err(storage_error)?;
                inner.producers.truncate(to);
            }
            Action::Restart { offset } => {
                inner.log.reset_to(offset).map_err(storage_error)?;
                inner.producers = ProducerTable::default();
            }
            _ => return Ok(()),
        }
        let event = match (restart, &action) {
            (true, Action::Restart { offset }) => Event::Restarted { offset: *offset },
            _ => Event::Truncated {
                log_end_offset: inner.log.log_end_offset(),
            },
        };
        inner.step(self.broker_id, event);
        Ok(())
    }

    /// Follower: applies a fetch answer from the leader, if it answers the
    /// fetch this replica would send now (see [`FetchPosition`]). Returns
    /// whether it was applied.
    pub fn apply_fetched(
        &self,
        fetched: &FetchedPartition,
        asked: &FetchPosition,
        fsync: bool,
    ) -> Result<bool, ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        if !Self::still_at(inner, asked) {
            return Ok(false);
        }
        if let Some((epoch, leader_end)) = fetched.diverging_epoch {
            let own_end_for_epoch = inner.log.end_offset_for_epoch(epoch).map(|(_, o)| o);
            let fx = inner.step(
                self.broker_id,
                Event::Diverged {
                    epoch,
                    leader_end,
                    own_end_for_epoch,
                    log_start_offset: inner.log.log_start_offset(),
                },
            );
            if let Some(cut) = fx.cut {
                tracing::info!(partition = %inner.name, epoch, leader_end, action = ?cut, "log diverged from the leader; truncating");
                self.cut(inner, cut, false)?;
            }
            return Ok(true);
        }
        let leo = inner.log.log_end_offset();
        // The one check of fetched batches (see `ReplicatedBatches` for why
        // it is lighter than a producer's).
        let batches = ReplicatedBatches::check(&fetched.records)
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::CorruptBatch,
                    format!("{}: fetched from the leader: {e}", inner.name),
                )
            })?
            .from_offset(leo);
        let mut durable = false;
        if !batches.is_empty() {
            inner
                .log
                .append_replicated(&batches)
                .map_err(storage_error)?;
            record_producers(&mut inner.producers, batches.headers());
            if fsync {
                let began = Instant::now();
                inner.log.flush().map_err(storage_error)?;
                self.stats.fsync_latency.observe(began.elapsed());
                durable = true;
            }
        }
        let log_end_offset = inner.log.log_end_offset();
        inner.step(
            self.broker_id,
            Event::Replicated {
                log_end_offset,
                durable,
                leader_high_watermark: fetched.high_watermark,
            },
        );
        Ok(true)
    }

    /// Follower: the leader answered OffsetOutOfRange to a fetch sent at
    /// `asked` because its log starts at `leader_log_start`. When this
    /// log still ends there, below the leader's start, it is emptied and
    /// restarts at the leader's log start (Kafka: truncate fully and start
    /// at the leader's log start offset). Returns whether it did.
    pub fn restart_at(
        &self,
        asked: &FetchPosition,
        leader_log_start: u64,
    ) -> Result<bool, ErrorBody> {
        let mut g = self.lock();
        let inner = &mut *g;
        if !Self::still_at(inner, asked) {
            return Ok(false);
        }
        let fx = inner.step(
            self.broker_id,
            Event::LeaderLogStart {
                offset: leader_log_start,
            },
        );
        let Some(cut) = fx.cut else {
            return Ok(false);
        };
        tracing::warn!(partition = %inner.name, log_end_offset = inner.log.log_end_offset(), leader_log_start,
            "log ends below the leader's log start (deleted by retention); emptying it and restarting there");
        self.cut(inner, cut, true)?;
        Ok(true)
    }
}
