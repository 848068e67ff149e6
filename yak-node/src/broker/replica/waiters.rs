//! Produce requests waiting for the high watermark (Kafka's purgatory), by
//! request id, each with its batch's last offset and a deadline. Taking a
//! request out is the only way to answer it, so each is answered once.

use super::events::RequestId;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone)]
struct Waiter {
    last_offset: u64,
    deadline: Instant,
}

/// The parked requests of one replica.
#[derive(Debug, Clone, Default)]
pub struct Waiters {
    by_id: BTreeMap<RequestId, Waiter>,
}

impl Waiters {
    /// Parks `request` until the high watermark passes `last_offset` or `deadline`.
    pub fn park(&mut self, request: RequestId, last_offset: u64, deadline: Instant) {
        self.by_id.insert(
            request,
            Waiter {
                last_offset,
                deadline,
            },
        );
    }

    /// Takes out the requests the high watermark `hw` passed, in id order,
    /// with their last offsets.
    pub fn take_below(&mut self, hw: u64) -> Vec<(RequestId, u64)> {
        self.take_where(|w| w.last_offset < hw)
    }

    /// Takes out the requests whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(RequestId, u64)> {
        self.take_where(|w| w.deadline <= now)
    }

    /// Takes out every request.
    pub fn take_all(&mut self) -> Vec<(RequestId, u64)> {
        self.take_where(|_| true)
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    fn take_where(&mut self, pred: impl Fn(&Waiter) -> bool) -> Vec<(RequestId, u64)> {
        let ids: Vec<RequestId> = self
            .by_id
            .iter()
            .filter(|(_, w)| pred(w))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.by_id.remove(&id).map(|w| (id, w.last_offset)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn given_parked_requests_when_taking_should_take_each_once_in_id_order() {
        let t0 = Instant::now();
        let mut w = Waiters::default();
        w.park(3, 9, t0 + Duration::from_secs(1));
        w.park(1, 4, t0 + Duration::from_secs(5));
        w.park(2, 6, t0);
        assert_eq!(w.take_below(7), vec![(1, 4), (2, 6)]);
        assert_eq!(w.take_below(7), vec![]);
        assert_eq!(w.take_expired(t0 + Duration::from_secs(1)), vec![(3, 9)]);
        assert_eq!(w.len(), 0);
    }
}
