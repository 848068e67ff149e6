//! Brokers added and removed at run time (OTP's `start_child` and
//! `terminate_child` + `delete_child`): the orders `control.rs` hands the
//! main loop, carried out on the main thread (the only one that forks).
//!
//! Add: the next free id (`broker_set::next_id`) joins the durable set
//! first, then its child starts and is supervised like the others. Remove:
//! the id leaves the durable set first, then the broker gets SIGTERM (and
//! SIGKILL after the grace period); it is never restarted, and the caller
//! is answered once it is reaped. A supervisor killed in between restarts
//! with the set as stored: an added broker runs, a removed one does not.
//!
//! Never: drains a broker (its replicas are moved off first by `cluster
//! remove-broker`, through ZooKeeper) or decides placement.

use super::{broker_spec, Child, Error, State, Supervisor, SHUTDOWN_GRACE};
use crate::broker_set;
use crate::config::Config;
use crate::control::{Command, Order};
use nix::sys::signal::{killpg, Signal};
use std::sync::mpsc::Sender;
use std::time::Instant;
use yak_protocol::{ErrorBody, ErrorCode, Reply};

/// A broker being removed: who waits for it, and when it gets SIGKILL.
#[derive(Debug)]
pub(super) struct Removal {
    broker_id: u32,
    answer: Sender<Reply>,
    kill_at: Instant,
}

impl Removal {
    /// The broker being removed.
    pub(super) fn broker_id(&self) -> u32 {
        self.broker_id
    }

    /// The broker is gone: answer the caller.
    pub(super) fn done(self) {
        let _ = self.answer.send(Reply::BrokerRemoved {
            broker_id: self.broker_id,
        });
    }
}

/// The run's broker set: the stored one, else `1..=config.brokers`
/// (stored now, so it is the set from here on).
pub(super) fn broker_set(config: &Config) -> Result<Vec<u32>, Error> {
    if let Some(ids) = broker_set::load(&config.data_dir)? {
        if ids.len() != config.brokers as usize {
            tracing::info!(brokers = ?ids, configured = config.brokers,
                "brokers from the data dir's broker set (changed at run time), not the configured count");
        }
        return Ok(ids);
    }
    let ids: Vec<u32> = (1..=config.brokers).collect();
    broker_set::store(&config.data_dir, &ids)?;
    Ok(ids)
}

fn refusal(code: ErrorCode, message: String) -> ErrorBody {
    tracing::warn!("{message}");
    ErrorBody::new(code, message)
}

impl Supervisor {
    /// Carries out the control socket's orders, and kills removed brokers
    /// past their grace period.
    pub(super) fn take_orders(&mut self, now: Instant) {
        let orders: Vec<Order> = match &self.control {
            Some(rx) => rx.try_iter().collect(),
            None => Vec::new(),
        };
        for order in orders {
            match order.command {
                Command::AddBroker => {
                    let reply = self.add_broker(now);
                    let _ = order.answer.send(reply);
                }
                Command::RemoveBroker(id) => {
                    if let Err(e) = self.remove_broker(id, order.answer.clone(), now) {
                        let _ = order.answer.send(Reply::Error(e));
                    }
                }
            }
        }
        for child in &mut self.children {
            let overdue = child.removal.as_ref().is_some_and(|r| now >= r.kill_at);
            if let (true, Some(pid)) = (overdue, child.pid()) {
                tracing::warn!(child = %child.spec.name, "removed broker still running after its grace period: SIGKILL");
                let _ = killpg(pid, Signal::SIGKILL);
                if let Some(r) = &mut child.removal {
                    r.kill_at = now + SHUTDOWN_GRACE;
                }
            }
        }
    }

    fn add_broker(&mut self, now: Instant) -> Reply {
        let id = broker_set::next_id(&self.data_dir, &self.broker_ids);
        let mut ids = self.broker_ids.clone();
        ids.push(id);
        ids.sort_unstable();
        if let Err(e) = broker_set::store(&self.data_dir, &ids) {
            return Reply::Error(refusal(
                ErrorCode::StorageError,
                format!("cannot add broker {id}: {e}"),
            ));
        }
        self.broker_ids = ids;
        let spec = broker_spec(&self.config, &self.node_bin, id);
        let index = self.board.add(spec.name.clone());
        self.children.push(Child {
            spec,
            state: State::NotStarted,
            policy: super::policy_for(index),
            last_exit: None,
            removal: None,
        });
        debug_assert_eq!(index, self.children.len() - 1, "board and children line up");
        if let Err(e) = self.start(index, now) {
            tracing::error!("{e}");
            self.decide(index, now);
        }
        tracing::info!(broker = id, brokers = ?self.broker_ids, "broker added");
        let pid = self.children[index].pid().map_or(0, |p| p.as_raw() as u32);
        Reply::BrokerAdded { broker_id: id, pid }
    }

    /// Starts removing broker `id`; `Err` is the refusal to answer now.
    fn remove_broker(
        &mut self,
        id: u32,
        answer: Sender<Reply>,
        now: Instant,
    ) -> Result<(), ErrorBody> {
        if !self.broker_ids.contains(&id) {
            return Err(refusal(
                ErrorCode::InvalidRequest,
                format!(
                    "broker {id} is not one of this cluster's brokers {:?}",
                    self.broker_ids
                ),
            ));
        }
        if self.broker_ids.len() == 1 {
            return Err(refusal(
                ErrorCode::InvalidRequest,
                format!("broker {id} is the last broker; a cluster keeps at least one"),
            ));
        }
        let name = yak_protocol::paths::broker_name(id);
        let Some(index) = self.children.iter().position(|c| c.spec.name == name) else {
            return Err(refusal(
                ErrorCode::InvalidRequest,
                format!("broker {id} has no child process"),
            ));
        };
        let ids: Vec<u32> = self
            .broker_ids
            .iter()
            .copied()
            .filter(|b| *b != id)
            .collect();
        if let Err(e) = broker_set::store(&self.data_dir, &ids) {
            return Err(refusal(
                ErrorCode::StorageError,
                format!("cannot remove broker {id}: {e}"),
            ));
        }
        self.broker_ids = ids;
        let removal = Removal {
            broker_id: id,
            answer,
            kill_at: now + SHUTDOWN_GRACE,
        };
        let child = &mut self.children[index];
        tracing::info!(broker = id, brokers = ?self.broker_ids, "removing broker");
        match child.pid() {
            Some(pid) => {
                let _ = killpg(pid, Signal::SIGTERM);
                child.removal = Some(removal);
            }
            None => {
                // Down (backing off or given up): it just never starts again.
                child.state = State::Stopped;
                removal.done();
            }
        }
        Ok(())
    }
}
