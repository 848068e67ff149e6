//! Which process speaks for which broker: the pids ZooKeeper registered,
//! as this broker last heard them, used to accept a replica fetch only from
//! the follower it names (`SO_PEERCRED` gives the sender's pid).
//!
//! Owns the broker id → pid table and the decision. Never asks ZooKeeper
//! itself: on a mismatch the caller reloads the brokers (a follower that
//! just restarted registered a new pid) and asks again.

use crate::protocol::{BrokerInfo, ErrorBody, ErrorCode};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Registered broker pids, from the latest metadata.
#[derive(Debug, Default)]
pub struct PeerPids {
    pids: Mutex<BTreeMap<u32, u32>>,
}

impl PeerPids {
    /// Replaces the table with the brokers ZooKeeper lists.
    pub fn update(&self, brokers: &[BrokerInfo]) {
        let table = brokers
            .iter()
            .filter(|b| b.pid != 0)
            .map(|b| (b.id, b.pid))
            .collect();
        *self.pids.lock().unwrap_or_else(|p| p.into_inner()) = table;
    }

    /// Whether `peer` is the process registered as broker `replica_id`.
    pub fn is_replica(&self, replica_id: u32, peer: Option<u32>) -> bool {
        let registered = self
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&replica_id)
            .copied();
        registered.is_some() && registered == peer
    }

    /// The refusal of a replica fetch naming `replica_id` from `peer`.
    pub fn refusal(&self, replica_id: u32, peer: Option<u32>) -> ErrorBody {
        let registered = self
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&replica_id)
            .copied();
        let from = peer.map_or_else(
            || "a process of unknown pid".to_string(),
            |p| format!("pid {p}"),
        );
        ErrorBody::new(
            ErrorCode::NotAuthorized,
            format!("a replica fetch as broker {replica_id} (registered pid {registered:?}) is refused from {from}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u32, pid: u32) -> BrokerInfo {
        BrokerInfo {
            id,
            pid,
            socket: String::new(),
            alive: true,
            restarts: 0,
            kafka_address: None,
        }
    }

    #[test]
    fn given_registered_pids_when_a_fetch_names_a_replica_should_accept_only_its_process() {
        let peers = PeerPids::default();
        assert!(!peers.is_replica(2, Some(20)), "nothing known yet");
        peers.update(&[info(1, 10), info(2, 20), info(3, 0)]);
        assert!(peers.is_replica(2, Some(20)));
        assert!(!peers.is_replica(2, Some(10)), "another broker's process");
        assert!(!peers.is_replica(2, None), "unknown sender");
        assert!(
            !peers.is_replica(3, Some(0)),
            "a pid ZooKeeper does not know yet"
        );
        assert!(!peers.is_replica(4, Some(40)), "an unregistered broker");
        peers.update(&[info(2, 21)]);
        assert!(
            !peers.is_replica(2, Some(20)) && peers.is_replica(2, Some(21)),
            "a restart replaces the pid"
        );
        assert_eq!(peers.refusal(2, Some(20)).code, ErrorCode::NotAuthorized);
    }
}
