//! A model of ZooKeeper's partition state for one partition, as
//! `zookeeper/state.rs` plans it: failover (dead members leave the ISR, a
//! dead leader is replaced by the first alive ISR member), leader moves,
//! and `AlterIsr` as a compare-and-set on the partition epoch. Every
//! committed state is kept, so brokers can be handed stale metadata.

use crate::broker::replica::{IsrProposal, Leadership};

/// How ZooKeeper answers an `AlterIsr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterAnswer {
    /// Committed (or nothing to change): the partition is at this state.
    Accepted { partition_epoch: u64, isr: Vec<u32> },
    /// Based on an old partition epoch (`InvalidUpdateVersion`).
    Stale,
    /// Refused for good (fenced leader epoch, or an ISR without its leader).
    Refused,
}

/// ZooKeeper's view of one partition with replicas 1, 2, 3.
pub struct Zk {
    pub replicas: Vec<u32>,
    pub alive: Vec<u32>,
    /// Every state committed, oldest first; the last is current.
    pub history: Vec<Leadership>,
}

impl Zk {
    /// Leader 1 at epoch 0, every replica in the ISR and alive.
    pub fn new() -> Zk {
        let replicas = vec![1, 2, 3];
        let first = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            partition_epoch: 0,
        };
        Zk {
            alive: replicas.clone(),
            replicas,
            history: vec![first],
        }
    }

    /// The current state.
    pub fn current(&self) -> &Leadership {
        self.history
            .last()
            .expect("invariant: history starts non-empty")
    }

    fn commit(&mut self, leader: Option<u32>, epoch: u32, isr: Vec<u32>) {
        let next = Leadership {
            leader,
            epoch,
            replicas: self.replicas.clone(),
            isr,
            partition_epoch: self.current().partition_epoch + 1,
        };
        self.history.push(next);
    }

    /// `plan_failover` for the alive set now.
    pub fn failover(&mut self) {
        let p = self.current().clone();
        let alive_isr: Vec<u32> = p
            .isr
            .iter()
            .copied()
            .filter(|b| self.alive.contains(b))
            .collect();
        let leader_alive = p.leader.is_some_and(|l| self.alive.contains(&l));
        if leader_alive {
            if alive_isr != p.isr {
                self.commit(p.leader, p.epoch, alive_isr);
            }
        } else if !alive_isr.is_empty() {
            let leader = self
                .replicas
                .iter()
                .copied()
                .find(|r| alive_isr.contains(r));
            self.commit(leader, p.epoch + 1, alive_isr);
        } else if p.leader.is_some() {
            self.commit(None, p.epoch + 1, p.isr);
        }
    }

    /// A session expired (`alive` false) or came back.
    pub fn set_alive(&mut self, broker: u32, alive: bool) {
        self.alive.retain(|b| *b != broker);
        if alive {
            self.alive.push(broker);
        }
        self.failover();
    }

    /// Leadership moves to `to` (an alive ISR member), epoch + 1, ISR kept.
    pub fn move_leader(&mut self, to: u32) {
        let p = self.current().clone();
        if p.leader != Some(to) && p.isr.contains(&to) && self.alive.contains(&to) {
            self.commit(Some(to), p.epoch + 1, p.isr);
        }
    }

    /// `plan_alter_isr` and its commit.
    pub fn alter_isr(&mut self, from: u32, proposal: &IsrProposal) -> AlterAnswer {
        let p = self.current().clone();
        if p.leader != Some(from) || p.epoch != proposal.leader_epoch {
            return AlterAnswer::Refused;
        }
        if p.partition_epoch != proposal.partition_epoch {
            return AlterAnswer::Stale;
        }
        let mut isr: Vec<u32> = proposal
            .isr
            .iter()
            .copied()
            .filter(|b| self.replicas.contains(b) && self.alive.contains(b))
            .collect();
        isr.sort_unstable();
        isr.dedup();
        if !isr.contains(&from) {
            return AlterAnswer::Refused;
        }
        let mut current = p.isr.clone();
        current.sort_unstable();
        if current != isr {
            self.commit(p.leader, p.epoch, isr);
        }
        let now = self.current();
        AlterAnswer::Accepted {
            partition_epoch: now.partition_epoch,
            isr: now.isr.clone(),
        }
    }
}
