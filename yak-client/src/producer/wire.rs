//! The producer's side of the wire: writing a produce request to its
//! leader's connection, reading answers as they come, and what a lost
//! connection means for the requests in flight on it.

use super::*;

impl Producer {
    pub(super) fn transmit(&mut self, mut p: Pending) {
        let leader = loop {
            let Some(meta) = self.cache.partition(&p.topic, p.partition) else {
                break None;
            };
            let Some(leader) = meta.leader else {
                break None;
            };
            let epoch = meta.leader_epoch;
            if self
                .in_flight
                .get(&leader)
                .is_none_or(|q| q.len() < IN_FLIGHT_REQUESTS_MAX)
            {
                break Some((leader, epoch));
            }
            // Wait for a slot, without blocking on one broker: the leader may move meanwhile.
            self.await_answers(Some(leader));
        };
        let Some((leader, epoch)) = leader else {
            let err = ClientError::Server(ErrorBody::new(
                ErrorCode::NotLeader {
                    leader: None,
                    epoch: 0,
                },
                format!("{}-{} has no leader", p.topic, p.partition),
            ));
            return self.retry_or_fail(p, err);
        };
        let slot = (p.topic.clone(), p.partition);
        let elsewhere = self
            .in_flight
            .iter()
            .any(|(b, q)| *b != leader && q.iter().any(|(_, o)| o.slot_is(&slot)));
        if elsewhere {
            // Earlier batches of this partition still wait on the old leader:
            // go after them, or the new leader would see a sequence gap.
            p.retry_at = Instant::now() + Duration::from_millis(PRODUCER_ANSWER_WAIT_MS);
            return self.retries.push(p);
        }
        let sent = self.cache.broker(leader).and_then(|c| {
            let id = c.send(&p.call)?;
            c.flush()?;
            Ok(id)
        });
        if sent.is_ok() {
            self.report.requests += 1;
        }
        p.sent = Some((leader, epoch, Instant::now()));
        match sent {
            Ok(_) if self.acks == Acks::None => self.acked(&p),
            Ok(id) => self.in_flight.entry(leader).or_default().push_back((id, p)),
            Err(e) => {
                self.connection_lost(leader);
                self.retry_or_fail(p, e);
            }
        }
    }

    /// Every request in flight to `broker` is retried: the connection is gone.
    pub(super) fn connection_lost(&mut self, broker: u32) {
        self.cache.forget_broker(broker);
        let lost: Vec<_> = self
            .in_flight
            .remove(&broker)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (_, p) in lost {
            let err = ClientError::Connection {
                path: Default::default(),
                reason: "connection lost".into(),
            };
            self.retry_or_fail(p, err);
        }
    }

    /// Reads every response already waiting, without blocking.
    pub(super) fn read_ready(&mut self) {
        let brokers: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(b, _)| *b)
            .collect();
        for broker in brokers {
            while self.in_flight.get(&broker).is_some_and(|q| !q.is_empty())
                && self.cache.broker(broker).is_ok_and(|c| c.response_ready())
            {
                self.read_one(broker);
            }
        }
    }

    pub(super) fn read_one(&mut self, broker: u32) {
        let response = match self.cache.broker(broker).and_then(|c| c.recv()) {
            Ok(r) => r,
            Err(_) => return self.connection_lost(broker),
        };
        let Some(queue) = self.in_flight.get_mut(&broker) else {
            return;
        };
        let Some(pos) = queue
            .iter()
            .position(|(id, _)| *id == response.correlation_id)
        else {
            return;
        };
        let Some((_, p)) = queue.remove(pos) else {
            return;
        };
        match response.reply {
            Reply::Produced { .. } => self.acked(&p),
            Reply::Error(e) => self.retry_or_fail(p, ClientError::Server(e)),
            other => self.fail(&p, format!("unexpected reply {other:?}")),
        }
    }
}
