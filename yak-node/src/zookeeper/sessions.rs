//! Broker sessions: who registered, where, and whether its heartbeats are
//! recent. No I/O and no clock of its own: callers pass `now`.
//!
//! [`SharedSessions`] is the sessions behind a lock of their own, never
//! held across I/O: a heartbeat is recorded, stamped with the time it
//! arrived, while the metadata state's lock waits for a slow fsync, so a
//! slow disk cannot expire every broker.

use crate::protocol::BrokerInfo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Session {
    pid: u32,
    socket: String,
    last_seen: Instant,
    restarts: u32,
    /// Its Kafka listener's address, as it registered it.
    kafka_address: Option<String>,
}

/// Registered brokers and their last heartbeat.
#[derive(Debug)]
pub struct Sessions {
    timeout: Duration,
    brokers: BTreeMap<u32, Session>,
}

impl Sessions {
    /// No brokers yet; sessions expire after `timeout` without a heartbeat.
    pub fn new(timeout: Duration) -> Self {
        Sessions {
            timeout,
            brokers: BTreeMap::new(),
        }
    }

    /// A broker (re)registers; a new registration replaces an old one. A
    /// new pid counts as a restart.
    pub fn register(&mut self, id: u32, pid: u32, socket: String, now: Instant) {
        let restarts = match self.brokers.get(&id) {
            Some(old) if old.pid != pid && old.pid != 0 => old.restarts + 1,
            Some(old) => old.restarts,
            None => 0,
        };
        self.brokers.insert(
            id,
            Session {
                pid,
                socket,
                last_seen: now,
                restarts,
                kafka_address: None,
            },
        );
    }

    /// Records where a registered broker serves the Kafka protocol.
    pub fn set_kafka_address(&mut self, id: u32, address: Option<String>) {
        if let Some(s) = self.brokers.get_mut(&id) {
            s.kafka_address = address;
        }
    }

    /// After a ZooKeeper restart: brokers named in the metadata count as
    /// alive until `until` + timeout, giving them time to re-register before
    /// anything is failed over.
    pub fn assume_alive(&mut self, ids: impl IntoIterator<Item = u32>, until: Instant) {
        for id in ids {
            self.brokers.entry(id).or_insert(Session {
                pid: 0,
                socket: String::new(),
                last_seen: until,
                restarts: 0,
                kafka_address: None,
            });
        }
    }

    /// The pid a broker registered with (none if unknown, or only assumed
    /// alive after a ZooKeeper restart).
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.brokers.get(&id).map(|s| s.pid).filter(|&p| p != 0)
    }

    /// Ends a broker's session at once: the process `pid` is known to be
    /// gone. A session registered by another process (a restarted
    /// successor) is left alone; one only assumed alive after a ZooKeeper
    /// restart (pid unknown) is ended (a live successor re-registers).
    pub fn expire(&mut self, id: u32, pid: u32, now: Instant) -> bool {
        match self.brokers.get_mut(&id) {
            Some(s) if s.pid == pid || s.pid == 0 => {
                s.last_seen = now.checked_sub(self.timeout * 2).unwrap_or(s.last_seen);
                true
            }
            _ => false,
        }
    }

    /// Forgets a broker whose session is not alive (a removed broker);
    /// returns whether it was forgotten.
    pub fn forget(&mut self, id: u32, now: Instant) -> bool {
        if self.is_alive_id(id, now) {
            return false;
        }
        self.brokers.remove(&id).is_some()
    }

    /// Records a heartbeat; false if the broker is unknown and must register.
    /// A heartbeat stamped before the last one seen (it waited for a lock)
    /// does not move the session back.
    pub fn heartbeat(&mut self, id: u32, now: Instant) -> bool {
        match self.brokers.get_mut(&id) {
            Some(s) => {
                s.last_seen = s.last_seen.max(now);
                true
            }
            None => false,
        }
    }

    fn is_alive(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_seen) <= self.timeout
    }

    /// Whether a broker's session is alive.
    pub fn is_alive_id(&self, id: u32, now: Instant) -> bool {
        self.brokers.get(&id).is_some_and(|s| self.is_alive(s, now))
    }

    /// Ids of brokers whose session is alive, sorted.
    pub fn alive(&self, now: Instant) -> Vec<u32> {
        self.brokers
            .iter()
            .filter(|(_, s)| self.is_alive(s, now))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every registered broker with its liveness.
    pub fn infos(&self, now: Instant) -> Vec<BrokerInfo> {
        self.brokers
            .iter()
            .map(|(id, s)| BrokerInfo {
                id: *id,
                pid: s.pid,
                socket: s.socket.clone(),
                alive: self.is_alive(s, now),
                restarts: s.restarts,
                kafka_address: s.kafka_address.clone(),
            })
            .collect()
    }
}

/// [`Sessions`] shared between the state's lock holders and the heartbeat
/// path, behind their own short lock.
#[derive(Debug, Clone)]
pub struct SharedSessions(Arc<Mutex<Sessions>>);

impl SharedSessions {
    /// No brokers yet; sessions expire after `timeout` without a heartbeat.
    pub fn new(timeout: Duration) -> Self {
        SharedSessions(Arc::new(Mutex::new(Sessions::new(timeout))))
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Sessions::register`].
    pub fn register(&self, id: u32, pid: u32, socket: String, now: Instant) {
        self.lock().register(id, pid, socket, now)
    }

    /// [`Sessions::set_kafka_address`].
    pub fn set_kafka_address(&self, id: u32, address: Option<String>) {
        self.lock().set_kafka_address(id, address)
    }

    /// [`Sessions::assume_alive`].
    pub fn assume_alive(&self, ids: impl IntoIterator<Item = u32>, until: Instant) {
        self.lock().assume_alive(ids, until)
    }

    /// [`Sessions::pid`].
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.lock().pid(id)
    }

    /// [`Sessions::expire`].
    pub fn expire(&self, id: u32, pid: u32, now: Instant) -> bool {
        self.lock().expire(id, pid, now)
    }

    /// Records a heartbeat that arrived at `at`; returns (known, alive just
    /// before at `now`). Unknown brokers must register.
    pub fn heartbeat(&self, id: u32, at: Instant, now: Instant) -> (bool, bool) {
        let mut s = self.lock();
        let was_alive = s.is_alive_id(id, now);
        (s.heartbeat(id, at), was_alive)
    }

    /// [`Sessions::forget`].
    pub fn forget(&self, id: u32, now: Instant) -> bool {
        self.lock().forget(id, now)
    }

    /// [`Sessions::is_alive_id`].
    pub fn is_alive_id(&self, id: u32, now: Instant) -> bool {
        self.lock().is_alive_id(id, now)
    }

    /// [`Sessions::alive`].
    pub fn alive(&self, now: Instant) -> Vec<u32> {
        self.lock().alive(now)
    }

    /// [`Sessions::infos`].
    pub fn infos(&self, now: Instant) -> Vec<BrokerInfo> {
        self.lock().infos(now)
    }

    /// Whether a broker `id` may register: a known one always; a new one
    /// only while fewer than `max` are known.
    pub fn has_room_for(&self, id: u32, max: usize) -> bool {
        let s = self.lock();
        s.brokers.contains_key(&id) || s.brokers.len() < max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_restarted_successor_when_old_pid_is_reported_down_should_keep_the_successors_session()
    {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_millis(600));
        s.register(1, 10, "b1".into(), t0);
        s.register(1, 11, "b1".into(), t0);
        assert!(!s.expire(1, 10, t0), "the dead pid 10 is not the session's");
        assert_eq!(s.alive(t0), vec![1]);
        assert!(s.expire(1, 11, t0));
        assert!(s.alive(t0).is_empty());
        s.assume_alive([2], t0);
        assert!(s.expire(2, 99, t0), "a session of unknown pid ends");
        assert!(!s.expire(3, 1, t0), "unknown broker");
    }

    #[test]
    fn given_removed_broker_when_forgetting_should_drop_only_a_dead_session() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_millis(600));
        s.register(1, 10, "b1".into(), t0);
        s.register(2, 20, "b2".into(), t0);
        assert!(!s.forget(2, t0), "an alive broker is kept");
        assert!(s.expire(2, 20, t0));
        assert!(s.forget(2, t0));
        assert_eq!(
            s.infos(t0).iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![1]
        );
        assert!(!s.forget(9, t0), "unknown broker");
    }

    #[test]
    fn given_silent_broker_when_timeout_passes_should_not_be_alive() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_millis(600));
        s.register(1, 10, "b1".into(), t0);
        s.register(2, 20, "b2".into(), t0);
        assert_eq!(s.alive(t0 + Duration::from_millis(500)), vec![1, 2]);
        assert!(s.heartbeat(1, t0 + Duration::from_millis(500)));
        assert_eq!(s.alive(t0 + Duration::from_millis(700)), vec![1]);
        assert!(!s.heartbeat(3, t0), "unknown broker must register");
        let infos = s.infos(t0 + Duration::from_millis(700));
        assert!(infos[0].alive && !infos[1].alive);
        s.register(2, 21, "b2".into(), t0 + Duration::from_millis(800));
        assert_eq!(s.infos(t0 + Duration::from_millis(800))[1].restarts, 1);
    }
}
