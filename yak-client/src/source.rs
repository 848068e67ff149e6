//! [`RecordSource`]: what a read loop needs of a consumer, whichever kind.
//! A plain [`Consumer`] and a group member ([`GroupConsumer`]) both poll for
//! records; a group member also wants to hear which records were processed
//! (to commit their offsets) and to be closed (to commit and leave the
//! group). One loop over this trait serves both.
//!
//! Owns the trait and its two implementations; never loops, prints or
//! decides when to stop: that is the caller's.

use crate::consumer::{ConsumedRecord, Consumer};
use crate::group::GroupConsumer;
use std::time::Duration;
use yak_protocol::ClientError;

/// Something records are read from, in a loop: poll, process, ack, and
/// close at the end.
pub trait RecordSource {
    /// Waits up to `max_wait` for records; returns what came (maybe none).
    fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError>;

    /// `record` was processed (written out, say). A plain consumer has
    /// nothing to do; a group member commits its offset later.
    fn ack(&mut self, record: &ConsumedRecord) {
        let _ = record;
    }

    /// The loop is over. A group member commits what was acknowledged and
    /// leaves its group; a plain consumer just drops its connections.
    fn close(self)
    where
        Self: Sized,
    {
    }
}

impl RecordSource for Consumer {
    fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        Consumer::poll(self, max_wait)
    }
}

impl RecordSource for GroupConsumer {
    fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        GroupConsumer::poll(self, max_wait)
    }

    fn ack(&mut self, record: &ConsumedRecord) {
        GroupConsumer::ack(self, record);
    }

    fn close(self) {
        GroupConsumer::close(self);
    }
}
