//! The children's state as the metrics endpoint sees it: name, pid while
//! running, and how many times each was started.
//!
//! Owns: one slot of atomics per child, written by the main loop and read
//! by the metrics threads; the list itself grows only when a broker is
//! added at run time (a read lock, held only to copy the slots).
//! Never: starts, stops or reaps a child; decides anything.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::RwLock;

/// One child's slot.
#[derive(Debug)]
struct Slot {
    name: String,
    /// Pid while running, 0 while down.
    pid: AtomicI32,
    starts: AtomicU64,
}

/// One child as read from the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildView {
    /// `zookeeper`, `broker-<id>`, `producer-<i>`, `consumer-<i>`.
    pub name: String,
    /// Its pid while it runs.
    pub pid: Option<u32>,
    /// Times the supervisor started it again after it died.
    pub restarts: u64,
}

/// Every child's slot, in the supervisor's order.
#[derive(Debug)]
pub struct Board {
    slots: RwLock<Vec<Slot>>,
}

impl Board {
    /// A board for children named `names`, none started yet.
    pub fn new(names: impl IntoIterator<Item = String>) -> Board {
        let slots = names
            .into_iter()
            .map(|name| Slot {
                name,
                pid: AtomicI32::new(0),
                starts: AtomicU64::new(0),
            })
            .collect();
        Board {
            slots: RwLock::new(slots),
        }
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    /// One more child (a broker added at run time); returns its index.
    pub fn add(&self, name: String) -> usize {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.push(Slot {
            name,
            pid: AtomicI32::new(0),
            starts: AtomicU64::new(0),
        });
        slots.len() - 1
    }

    /// Child `index` runs as `pid`.
    pub fn started(&self, index: usize, pid: i32) {
        if let Some(slot) = self.slots().get(index) {
            slot.starts.fetch_add(1, Ordering::Relaxed);
            slot.pid.store(pid, Ordering::Relaxed);
        }
    }

    /// Child `index` is down (exited, waiting to restart, given up, stopped).
    pub fn stopped(&self, index: usize) {
        if let Some(slot) = self.slots().get(index) {
            slot.pid.store(0, Ordering::Relaxed);
        }
    }

    /// Every child now.
    pub fn read(&self) -> Vec<ChildView> {
        self.slots()
            .iter()
            .map(|s| ChildView {
                name: s.name.clone(),
                pid: u32::try_from(s.pid.load(Ordering::Relaxed))
                    .ok()
                    .filter(|&p| p > 0),
                restarts: s.starts.load(Ordering::Relaxed).saturating_sub(1),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_child_started_twice_when_read_should_show_one_restart_and_its_pid() {
        let board = Board::new(["zookeeper".to_string(), "broker-1".to_string()]);
        board.started(1, 10);
        board.stopped(1);
        assert_eq!(
            board.read()[1],
            ChildView {
                name: "broker-1".into(),
                pid: None,
                restarts: 0
            }
        );
        board.started(1, 11);
        assert_eq!(
            board.read()[1],
            ChildView {
                name: "broker-1".into(),
                pid: Some(11),
                restarts: 1
            }
        );
        assert_eq!(
            board.read()[0],
            ChildView {
                name: "zookeeper".into(),
                pid: None,
                restarts: 0
            }
        );
    }
}
