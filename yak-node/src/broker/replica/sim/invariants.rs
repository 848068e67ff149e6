//! What must hold after every core event of a simulated schedule, checked
//! against what the core knows and against the simulated logs themselves.

use super::node::Node;
use crate::broker::replica::{Outcome, RequestId};

/// A produce request as the client sent it.
#[derive(Debug)]
struct Request {
    broker: u32,
    first_offset: u64,
    last_offset: u64,
    epoch: u32,
    acks_all: bool,
    answers: u32,
    acknowledged: bool,
}

/// Every request sent, by id.
#[derive(Debug, Default)]
pub struct Requests {
    all: Vec<Request>,
}

impl Requests {
    /// A request to `broker` whose batch is at `first..=last` in `epoch`; returns its id.
    pub fn add(
        &mut self,
        broker: u32,
        first: u64,
        last: u64,
        epoch: u32,
        acks_all: bool,
    ) -> RequestId {
        self.all.push(Request {
            broker,
            first_offset: first,
            last_offset: last,
            epoch,
            acks_all,
            answers: 0,
            acknowledged: false,
        });
        (self.all.len() - 1) as RequestId
    }

    /// `node` answered `request` with `outcome`: answered once, by the
    /// broker it was sent to, and (acks=all) acknowledged only while the
    /// committed ISR holds `min.insync.replicas` members, each known to
    /// hold the batch, and the leader's log holds it.
    pub fn answered(
        &mut self,
        request: RequestId,
        outcome: &Outcome,
        node: &Node,
    ) -> Result<(), String> {
        let r = self
            .all
            .get_mut(request as usize)
            .ok_or(format!("answer for unknown request {request}"))?;
        r.answers += 1;
        if r.answers > 1 {
            return Err(format!("request {request} answered twice"));
        }
        if r.broker != node.id {
            return Err(format!(
                "request {request} of broker {} answered by {}",
                r.broker, node.id
            ));
        }
        if *outcome != Outcome::Acknowledged || !r.acks_all {
            return Ok(());
        }
        r.acknowledged = true;
        let core = &node.core;
        let t = core
            .tracker()
            .ok_or(format!("request {request} acknowledged by a follower"))?;
        if t.isr().len() < core.min_insync() {
            return Err(format!(
                "request {request} acknowledged with ISR {:?} below min.insync {}",
                t.isr(),
                core.min_insync()
            ));
        }
        for m in t.isr() {
            let end = if *m == node.id {
                core.own_end()
            } else {
                t.follower_leo(*m).unwrap_or(0)
            };
            if end <= r.last_offset {
                return Err(format!(
                    "request {request} (last offset {}) acknowledged but ISR member {m} is known to end at {end}",
                    r.last_offset
                ));
            }
        }
        holds(&node.log, r, request, node.id)
    }

    /// How many acks=all requests were acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.all.iter().filter(|r| r.acknowledged).count() as u64
    }

    /// Every request was answered exactly once.
    pub fn all_answered_once(&self) -> Result<(), String> {
        match self.all.iter().position(|r| r.answers != 1) {
            Some(i) => Err(format!(
                "request {i} answered {} times",
                self.all[i].answers
            )),
            None => Ok(()),
        }
    }
}

fn holds(log: &[u32], r: &Request, request: RequestId, broker: u32) -> Result<(), String> {
    for offset in r.first_offset..=r.last_offset {
        if log.get(offset as usize) != Some(&r.epoch) {
            return Err(format!(
                "acknowledged request {request} (offsets {}..={} of epoch {}) is not in broker {broker}'s log {log:?}",
                r.first_offset, r.last_offset, r.epoch
            ));
        }
    }
    Ok(())
}

/// After any event at `node`: the core's log end is the log's; HW <= LEO
/// and never clamped; while leading one epoch the HW never goes back and
/// rises only to offsets every maximal-ISR member is known to hold; the
/// leader ZooKeeper elected in `zk_epoch`, once it knows, holds every
/// acknowledged acks=all batch (a deposed leader that has not heard yet,
/// or one handed stale metadata, may not).
pub fn after_event(node: &mut Node, requests: &Requests, zk_epoch: u32) -> Result<(), String> {
    let core = &node.core;
    let (id, hw, leo) = (node.id, core.high_watermark(), core.log_end_offset());
    if leo != node.log.len() as u64 {
        return Err(format!(
            "broker {id}: core log end {leo}, log {}",
            node.log.len()
        ));
    }
    if hw > leo || core.high_watermark_clamps() > 0 {
        return Err(format!(
            "broker {id}: high watermark {hw} above log end {leo}"
        ));
    }
    let Some(t) = core.tracker() else {
        node.led = None;
        return Ok(());
    };
    let epoch = core.leadership().epoch;
    match node.led {
        Some((e, before)) if e == epoch => {
            if hw < before {
                return Err(format!(
                    "broker {id}: high watermark went back from {before} to {hw} in epoch {epoch}"
                ));
            }
            if hw > before {
                for m in t.maximal_isr() {
                    let end = if m == id {
                        core.own_end()
                    } else {
                        t.follower_leo(m).unwrap_or(0)
                    };
                    if end < hw {
                        return Err(format!(
                            "broker {id}: high watermark {hw} passed ISR member {m}'s end {end}"
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    if epoch == zk_epoch {
        for (i, r) in requests.all.iter().enumerate() {
            if r.acknowledged {
                holds(&node.log, r, i as RequestId, id)?;
            }
        }
    }
    node.led = Some((epoch, hw));
    Ok(())
}
