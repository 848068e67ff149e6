//! The producer's retry paths: waiting for answers without blocking on one
//! broker, giving up a broker whose leadership moved on (or that is
//! silent), retries with exponential backoff in partition order, the
//! delivery timeout, and the fresh producer id after a refused batch (see
//! the parent module and ARCHITECTURE.md, "Producer sequence gaps").
//! Never builds batches or picks partitions.

use super::{Pending, Producer, Slot};
use crate::ClientError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use yak_protocol::batch::{next_sequence, restamp_producer};
use yak_protocol::limits::{
    CLIENT_REQUEST_TIMEOUT_MS, PRODUCER_ANSWER_WAIT_MS, PRODUCER_METADATA_REFRESH_MS,
    PRODUCER_STALE_REQUEST_MS,
};
use yak_protocol::{Call, ErrorBody, ErrorCode, Reply};

impl Producer {
    /// Waits up to [`PRODUCER_ANSWER_WAIT_MS`] for answers from the brokers
    /// with requests in flight (or only `broker`), reads those that came,
    /// then checks for requests stuck on a leader that moved on.
    pub(super) fn await_answers(&mut self, broker: Option<u32>) {
        let brokers: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(b, q)| !q.is_empty() && broker.is_none_or(|only| only == **b))
            .map(|(b, _)| *b)
            .collect();
        if brokers.is_empty() {
            return;
        }
        let ready = self
            .cache
            .wait_readable(&brokers, Duration::from_millis(PRODUCER_ANSWER_WAIT_MS));
        for b in ready {
            self.read_one(b);
        }
        self.read_ready();
        self.check_stale();
    }

    /// While a request waits longer than [`PRODUCER_STALE_REQUEST_MS`],
    /// refreshes metadata (at most every [`PRODUCER_METADATA_REFRESH_MS`]);
    /// a broker holding a request for a partition whose leader moved on, or
    /// one silent past [`CLIENT_REQUEST_TIMEOUT_MS`], is given up: its
    /// requests are resent at once.
    pub(super) fn check_stale(&mut self) {
        let now = Instant::now();
        let stale = Duration::from_millis(PRODUCER_STALE_REQUEST_MS);
        let oldest = self
            .in_flight
            .values()
            .flatten()
            .filter_map(|(_, p)| p.sent.map(|s| s.2))
            .min();
        let Some(oldest) = oldest else { return };
        if now.duration_since(oldest) < stale {
            return;
        }
        if now.duration_since(self.last_refresh)
            >= Duration::from_millis(PRODUCER_METADATA_REFRESH_MS)
        {
            self.last_refresh = now;
            if let Err(e) = self.cache.refresh_once() {
                tracing::debug!(error = %e, "metadata refresh failed; retried later");
            }
        }
        let timeout = Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
        let moved: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(broker, q)| {
                q.iter().any(|(_, p)| {
                    let Some((_, epoch, at)) = p.sent else {
                        return false;
                    };
                    let led_elsewhere = self
                        .cache
                        .partition(&p.topic, p.partition)
                        .is_some_and(|m| m.leader != Some(**broker) || m.leader_epoch > epoch);
                    led_elsewhere || now.duration_since(at) >= timeout
                })
            })
            .map(|(b, _)| *b)
            .collect();
        for broker in moved {
            tracing::info!(
                broker,
                "leadership moved on (or the broker is silent); resending its requests"
            );
            self.abandon(broker);
        }
    }

    /// Drops the connection to `broker` and resends everything in flight
    /// there at once (no backoff: the new leader is known).
    pub(super) fn abandon(&mut self, broker: u32) {
        self.cache.forget_broker(broker);
        let now = Instant::now();
        for (_, mut p) in self.in_flight.remove(&broker).unwrap_or_default() {
            if p.first_sent.elapsed() >= self.config.delivery_timeout {
                let why = ClientError::Server(ErrorBody::new(
                    ErrorCode::Timeout,
                    "no answer within the delivery timeout",
                ));
                self.retry_or_fail(p, why);
                continue;
            }
            p.first_error.get_or_insert_with(|| {
                format!("no answer from broker {broker}, whose leadership moved on")
            });
            p.unwritten = false;
            p.retry_at = now;
            self.retries.push(p);
        }
    }

    pub(super) fn run_retries(&mut self, wait: bool) -> Result<(), ClientError> {
        self.renumber_gaps();
        if self.retries.is_empty() {
            return Ok(());
        }
        self.expire_retries();
        let now = Instant::now();
        if wait {
            if let Some(at) = self.retries.iter().map(|p| p.retry_at).min() {
                if at > now {
                    std::thread::sleep(at - now);
                }
            }
        }
        let now = Instant::now();
        // A batch known unwritten of a partition that waits for a fresh
        // producer id stays: it is renumbered first.
        let held = |p: &Pending| p.unwritten && self.gaps.iter().any(|s| p.slot_is(s));
        // A partition's retries go out together, in order, when its oldest
        // one is due: each on its own backoff, they would reach the leader
        // out of order and be refused until they happened to line up.
        let mut heads: HashMap<(&str, u32), (u64, Instant)> = HashMap::new();
        for p in &self.retries {
            let head = heads
                .entry((p.topic.as_str(), p.partition))
                .or_insert((p.order, p.retry_at));
            if p.order < head.0 {
                *head = (p.order, p.retry_at);
            }
        }
        let due_at: HashMap<Slot, Instant> = heads
            .into_iter()
            .map(|((t, n), (_, at))| ((t.to_string(), n), at))
            .collect();
        let partition_due = |p: &Pending| {
            due_at
                .get(&(p.topic.clone(), p.partition))
                .is_some_and(|at| *at <= now)
        };
        let (mut due, mut later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|p| partition_due(p) && !held(p));
        for p in later.iter_mut().filter(|p| p.retry_at <= now) {
            // Not due before its partition's head (or held): never a busy wait.
            let head = due_at
                .get(&(p.topic.clone(), p.partition))
                .copied()
                .filter(|at| *at > now);
            p.retry_at = head.unwrap_or_else(|| now + self.backoff.delay(0));
        }
        self.retries = later;
        due.sort_by_key(|p| p.order);
        if !due.is_empty()
            && now.duration_since(self.last_refresh)
                >= Duration::from_millis(PRODUCER_METADATA_REFRESH_MS)
        {
            // Leaders may have moved; a failed refresh is retried with the batches.
            self.last_refresh = now;
            let _ = self.cache.refresh_once();
        }
        for p in due {
            self.transmit(p);
        }
        Ok(())
    }

    /// Fails every waiting batch past its delivery timeout.
    pub(super) fn expire_retries(&mut self) {
        let timeout = self.config.delivery_timeout;
        let (expired, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|p| p.first_sent.elapsed() >= timeout);
        self.retries = keep;
        for p in expired {
            let err = ClientError::Server(ErrorBody::new(
                ErrorCode::Timeout,
                "not acknowledged within the delivery timeout",
            ));
            self.retry_or_fail(p, err);
        }
    }

    /// Gives a fresh producer id to every partition with a failed batch
    /// whose waiting batches are all known unwritten and none in flight, and
    /// renumbers those batches from 0 in their order. One id from ZooKeeper
    /// serves every such partition; if ZooKeeper cannot be reached, the next
    /// round tries again.
    pub(super) fn renumber_gaps(&mut self) {
        if self.gaps.is_empty() {
            return;
        }
        let ready: Vec<Slot> = self
            .gaps
            .iter()
            .filter(|s| !self.in_flight.values().flatten().any(|(_, p)| p.slot_is(s)))
            .filter(|s| {
                self.retries
                    .iter()
                    .filter(|p| p.slot_is(s))
                    .all(|p| p.unwritten)
            })
            .cloned()
            .collect();
        let now = Instant::now();
        if ready.is_empty() || now < self.gap_retry_at {
            return;
        }
        let fresh = match self.cache.zookeeper_call_once(&Call::InitProducerId) {
            Ok(Reply::ProducerId { producer_id }) => producer_id,
            other => {
                self.gap_retry_at = now + self.backoff.delay(3);
                return tracing::debug!(answer = ?other, "no fresh producer id yet; retried later");
            }
        };
        for slot in ready {
            let mut waiting: Vec<&mut Pending> = self
                .retries
                .iter_mut()
                .filter(|p| p.slot_is(&slot))
                .collect();
            waiting.sort_by_key(|p| p.order);
            let mut seq = 0;
            for p in waiting {
                if let Call::Produce { records, .. } = &mut p.call {
                    restamp_producer(records, fresh, seq);
                }
                seq = next_sequence(seq, p.records as u32);
                p.retry_at = now;
            }
            tracing::info!(topic = %slot.0, partition = slot.1, producer_id = fresh, "a batch failed: fresh producer id, waiting batches renumbered");
            self.next_sequence.insert(slot.clone(), seq);
            self.partition_ids.insert(slot.clone(), fresh);
            self.gaps.remove(&slot);
        }
    }

    pub(super) fn retry_or_fail(&mut self, mut p: Pending, err: ClientError) {
        let retriable = err.is_retriable() || err.code() == Some(&ErrorCode::UnknownTopic);
        let why = err.to_string();
        if !retriable && self.producer_id >= 0 && matches!(err, ClientError::Server(_)) {
            // The leader refused it, so it is not in the log: its sequence
            // is a gap the partition's later batches cannot pass. (A batch
            // that timed out may be in the log: no fresh id for that.)
            self.gaps.insert((p.topic.clone(), p.partition));
        }
        if !retriable || p.first_sent.elapsed() >= self.config.delivery_timeout {
            let why = match p.first_error.take() {
                Some(first) if first != why => format!("{why} (first attempt: {first})"),
                _ => why,
            };
            self.fail(&p, why);
            return;
        }
        // Refused by the sequence check: certainly not in the log. Anything
        // else may have been written (an answer lost with its connection).
        p.unwritten = err.code() == Some(&ErrorCode::OutOfOrderSequence) || p.sent.is_none();
        p.first_error.get_or_insert(why);
        p.retry_at = Instant::now() + self.backoff.delay(p.attempts);
        p.attempts += 1;
        self.retries.push(p);
    }
}
