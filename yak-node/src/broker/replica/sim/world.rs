//! The simulated cluster: three replica cores, each with a log modelled as
//! the leader epoch of every offset, a model ZooKeeper, a network that
//! delays, drops and reorders messages, produce clients and simulated
//! time. One [`World::step`] is one random thing happening; every core
//! event it causes goes through [`World::feed`], which records it in the
//! schedule and checks what the actions it returned may claim.

use super::invariants::{self, Requests};
use super::node::{end_for_epoch, Node, SimLog};
use super::rng::Rng;
use super::zk::{AlterAnswer, Zk};
use crate::broker::replica::{Action, Event, FetchPosition, IsrProposal, ReplicaCore};
use std::time::{Duration, Instant};

/// A follower not caught up for this long leaves the ISR (simulated).
const LAG_MAX_MS: u64 = 300;
/// Most entries a fetch answer carries.
const FETCH_ENTRIES_MAX: usize = 16;

#[derive(Debug, Clone)]
pub enum Answer {
    Refused,
    Diverging(u32, u64),
    Entries { entries: SimLog, hw: u64 },
}

#[derive(Debug, Clone)]
pub enum Msg {
    Fetch {
        from: u32,
        to: u32,
        asked: FetchPosition,
    },
    Fetched {
        to: u32,
        asked: FetchPosition,
        answer: Answer,
    },
    AlterIsr {
        from: u32,
        proposal: IsrProposal,
    },
    IsrAnswer {
        to: u32,
        proposal: IsrProposal,
        answer: AlterAnswer,
    },
}

impl Msg {
    fn target(&self) -> Option<u32> {
        match self {
            Msg::Fetch { to, .. } | Msg::Fetched { to, .. } | Msg::IsrAnswer { to, .. } => {
                Some(*to)
            }
            Msg::AlterIsr { .. } => None,
        }
    }
}

/// Everything simulated.
pub struct World {
    pub rng: Rng,
    t0: Instant,
    pub now_ms: u64,
    pub nodes: Vec<Node>,
    pub zk: Zk,
    /// In flight: (deliverable at ms, message).
    pub network: Vec<(u64, Msg)>,
    pub requests: Requests,
    pub schedule: Vec<String>,
    sync_appends: bool,
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let sync_appends = rng.chance(30);
        let nodes = (1..=3)
            .map(|id| Node {
                id,
                core: ReplicaCore::new(id, 0, sync_appends),
                log: Vec::new(),
                paused: false,
                fetch_in_flight: None,
                metadata_seen: 0,
                outbox: None,
                alter_in_flight: false,
                fsync: None,
                led: None,
            })
            .collect();
        World {
            rng,
            t0: Instant::now(),
            now_ms: 0,
            nodes,
            zk: Zk::new(),
            network: Vec::new(),
            requests: Requests::default(),
            schedule: vec![format!("seed {seed}, fsync always: {sync_appends}")],
            sync_appends,
        }
    }

    /// Every broker learns the first metadata.
    pub fn start(&mut self) -> Result<(), String> {
        for id in 1..=3 {
            self.deliver_metadata(id, Some(0))?;
        }
        Ok(())
    }

    /// `event` for the schedule, its times as offsets from the start.
    fn describe(&self, event: &Event) -> String {
        let mut s = format!("{event:?}");
        let instant = match event {
            Event::Leadership { now, .. }
            | Event::FollowerFetched { now, .. }
            | Event::Tick { now, .. } => Some(*now),
            Event::Produced { deadline, .. } => Some(*deadline),
            _ => None,
        };
        if let Some(i) = instant {
            let ms = i.saturating_duration_since(self.t0).as_millis();
            s = s.replace(&format!("{i:?}"), &format!("t+{ms}ms"));
        }
        s
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.now_ms)
    }

    fn node(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn note(&mut self, line: String) {
        self.schedule.push(format!("t={}ms {line}", self.now_ms));
    }

    /// Feeds `event` to broker `id`'s core, checks the actions, returns them.
    fn feed(&mut self, id: u32, event: Event) -> Result<Vec<Action>, String> {
        let line = format!("broker {id} <- {}", self.describe(&event));
        self.note(line);
        let actions = self.node(id).core.step(event);
        for a in &actions {
            self.note(format!("broker {id} -> {a:?}"));
            if let Action::Reply {
                request, outcome, ..
            } = a
            {
                let node = &self.nodes[(id - 1) as usize];
                self.requests.answered(*request, outcome, node)?;
            }
            if let Action::ProposeIsr(p) = a {
                self.node(id).outbox = Some(p.clone());
            }
        }
        let zk_epoch = self.zk.current().epoch;
        invariants::after_event(&mut self.nodes[(id - 1) as usize], &self.requests, zk_epoch)?;
        Ok(actions)
    }

    fn alive_nodes(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|n| !n.paused)
            .map(|n| n.id)
            .collect()
    }

    /// Hands broker `id` ZooKeeper's state `index` (newest if `None`).
    fn deliver_metadata(&mut self, id: u32, index: Option<usize>) -> Result<(), String> {
        let last = self.zk.history.len() - 1;
        let index = index.unwrap_or(last).max(self.node(id).metadata_seen);
        self.node(id).metadata_seen = index;
        let leadership = self.zk.history[index].clone();
        let now = self.now();
        self.feed(id, Event::Leadership { leadership, now })?;
        Ok(())
    }

    fn send(&mut self, msg: Msg) {
        let drop = self.rng.chance(5);
        let delay = self.rng.below(30);
        self.note(format!(
            "send {msg:?}{}",
            if drop { " (dropped)" } else { "" }
        ));
        if !drop {
            self.network.push((self.now_ms + delay, msg));
            return;
        }
        match msg {
            Msg::Fetch {
                from: id, asked, ..
            }
            | Msg::Fetched { to: id, asked, .. } => self.fetch_over(id, &asked),
            Msg::AlterIsr { from: id, proposal }
            | Msg::IsrAnswer {
                to: id, proposal, ..
            } => {
                // A lost answer: asked again unless a newer change is queued.
                let n = self.node(id);
                n.alter_in_flight = false;
                n.outbox.get_or_insert(proposal);
            }
        }
    }

    /// One random step.
    pub fn step(&mut self) -> Result<(), String> {
        match self.rng.below(1000) {
            0..=99 => self.produce(),
            100..=349 => self.start_fetch(),
            350..=729 => self.deliver(),
            730..=859 => self.tick(),
            860..=929 => self.metadata(),
            930..=989 => self.sync(),
            990..=995 => self.pause_or_resume(),
            _ => self.move_leader(),
        }
    }

    fn produce(&mut self) -> Result<(), String> {
        let leaders: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| !n.paused && n.core.is_leader())
            .map(|n| n.id)
            .collect();
        let alive = self.alive_nodes();
        let id = match self.rng.pick(&leaders) {
            Some(id) if self.rng.chance(90) => id,
            _ => match self.rng.pick(&alive) {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let acks_all = self.rng.chance(65);
        let count = 1 + self.rng.below(3);
        if let Err(r) = self.node(id).core.admit(acks_all) {
            self.note(format!("broker {id}: produce refused: {r:?}"));
            return Ok(());
        }
        let epoch = self.node(id).core.leadership().epoch;
        let n = self.node(id);
        n.log.extend(std::iter::repeat_n(epoch, count as usize));
        let log_end_offset = n.log.len() as u64;
        self.feed(id, Event::Appended { log_end_offset })?;
        let deadline = self.now() + Duration::from_millis(100 + self.rng.below(1500));
        let request = self.requests.add(
            id,
            log_end_offset - count,
            log_end_offset - 1,
            epoch,
            acks_all,
        );
        self.feed(
            id,
            Event::Produced {
                request,
                last_offset: log_end_offset - 1,
                acks_all,
                deadline,
            },
        )?;
        Ok(())
    }

    fn start_fetch(&mut self) -> Result<(), String> {
        let ready: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| !n.paused && !n.core.is_leader())
            .filter(|n| {
                let l = n.core.leadership();
                n.fetch_in_flight != Some((l.leader, l.epoch))
            })
            .filter(|n| n.core.leadership().leader.is_some_and(|l| l != n.id))
            .map(|n| n.id)
            .collect();
        let Some(id) = self.rng.pick(&ready) else {
            return Ok(());
        };
        let n = self.node(id);
        let l = n.core.leadership().clone();
        n.fetch_in_flight = Some((l.leader, l.epoch));
        let asked = FetchPosition {
            leader: l.leader,
            leader_epoch: l.epoch,
            offset: n.log.len() as u64,
            last_fetched_epoch: n.log.last().copied(),
        };
        let to = l.leader.unwrap_or(0);
        self.send(Msg::Fetch {
            from: id,
            to,
            asked,
        });
        Ok(())
    }

    /// Delivers one message that is due, chosen at random (reordering).
    fn deliver(&mut self) -> Result<(), String> {
        let due: Vec<usize> = (0..self.network.len())
            .filter(|i| {
                let (at, msg) = &self.network[*i];
                *at <= self.now_ms && msg.target().is_none_or(|t| !self.node_ref(t).paused)
            })
            .collect();
        let Some(i) = self.rng.pick(&due) else {
            return Ok(());
        };
        let (_, msg) = self.network.swap_remove(i);
        self.note(format!("deliver {msg:?}"));
        match msg {
            Msg::Fetch { from, to, asked } => self.serve_fetch(from, to, asked),
            Msg::Fetched { to, asked, answer } => self.apply_fetched(to, &asked, answer),
            Msg::AlterIsr { from, proposal } => {
                let answer = self.zk.alter_isr(from, &proposal);
                self.send(Msg::IsrAnswer {
                    to: from,
                    proposal,
                    answer,
                });
                Ok(())
            }
            Msg::IsrAnswer {
                to,
                proposal,
                answer,
            } => self.isr_answered(to, proposal, answer),
        }
    }

    fn node_ref(&self, id: u32) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn serve_fetch(&mut self, from: u32, to: u32, asked: FetchPosition) -> Result<(), String> {
        let answer = if self
            .node(to)
            .core
            .check_epoch(Some(asked.leader_epoch))
            .is_err()
        {
            Answer::Refused
        } else {
            let leader_end_for_epoch = asked
                .last_fetched_epoch
                .and_then(|e| end_for_epoch(&self.node(to).log, e));
            let now = self.now();
            let actions = self.feed(
                to,
                Event::FollowerFetched {
                    follower: from,
                    offset: asked.offset,
                    last_fetched_epoch: asked.last_fetched_epoch,
                    leader_end_for_epoch,
                    now,
                },
            )?;
            let diverging = actions.iter().find_map(|a| match a {
                Action::Diverging { epoch, end } => Some((*epoch, *end)),
                _ => None,
            });
            let n = self.node(to);
            match diverging {
                Some((e, end)) => Answer::Diverging(e, end),
                None => {
                    let start = (asked.offset as usize).min(n.log.len());
                    let end = (start + FETCH_ENTRIES_MAX).min(n.log.len());
                    Answer::Entries {
                        entries: n.log[start..end].to_vec(),
                        hw: n.core.high_watermark(),
                    }
                }
            }
        };
        self.send(Msg::Fetched {
            to: from,
            asked,
            answer,
        });
        Ok(())
    }

    /// The fetch sent at `asked` is answered or lost.
    fn fetch_over(&mut self, id: u32, asked: &FetchPosition) {
        let n = self.node(id);
        if n.fetch_in_flight == Some((asked.leader, asked.leader_epoch)) {
            n.fetch_in_flight = None;
        }
    }

    fn apply_fetched(
        &mut self,
        id: u32,
        asked: &FetchPosition,
        answer: Answer,
    ) -> Result<(), String> {
        self.fetch_over(id, asked);
        if !self.node(id).core.still_at(asked) {
            self.note(format!("broker {id}: stale fetch answer dropped"));
            return Ok(());
        }
        match answer {
            Answer::Refused => Ok(()),
            Answer::Diverging(epoch, leader_end) => {
                let own_end_for_epoch = end_for_epoch(&self.node(id).log, epoch).map(|(_, o)| o);
                let actions = self.feed(
                    id,
                    Event::Diverged {
                        epoch,
                        leader_end,
                        own_end_for_epoch,
                        log_start_offset: 0,
                    },
                )?;
                for a in actions {
                    if let Action::Truncate { to } = a {
                        self.node(id).log.truncate(to as usize);
                        self.feed(id, Event::Truncated { log_end_offset: to })?;
                    }
                }
                Ok(())
            }
            Answer::Entries { entries, hw } => {
                let n = self.node(id);
                n.log.extend(entries);
                let log_end_offset = n.log.len() as u64;
                self.feed(
                    id,
                    Event::Replicated {
                        log_end_offset,
                        durable: true,
                        leader_high_watermark: hw,
                    },
                )?;
                Ok(())
            }
        }
    }

    fn isr_answered(
        &mut self,
        id: u32,
        proposal: IsrProposal,
        answer: AlterAnswer,
    ) -> Result<(), String> {
        self.node(id).alter_in_flight = false;
        match answer {
            AlterAnswer::Accepted {
                partition_epoch,
                isr,
            } => {
                self.feed(
                    id,
                    Event::IsrAccepted {
                        proposal,
                        partition_epoch,
                        isr,
                    },
                )?;
            }
            AlterAnswer::Stale => self.deliver_metadata(id, None)?,
            AlterAnswer::Refused => {
                self.feed(id, Event::IsrRefused { proposal })?;
                self.deliver_metadata(id, None)?;
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), String> {
        self.now_ms += 1 + self.rng.below(25);
        let now = self.now();
        for id in self.alive_nodes() {
            let lag_max = Duration::from_millis(LAG_MAX_MS);
            self.feed(id, Event::Tick { now, lag_max })?;
            let n = self.node(id);
            let send = match n.outbox.take() {
                Some(p) if !n.alter_in_flight && n.core.is_pending(&p) => Some(p),
                Some(p) if n.alter_in_flight => {
                    n.outbox = Some(p);
                    None
                }
                _ => None,
            };
            if let Some(proposal) = send {
                self.node(id).alter_in_flight = true;
                self.send(Msg::AlterIsr { from: id, proposal });
            }
        }
        Ok(())
    }

    fn metadata(&mut self) -> Result<(), String> {
        let Some(id) = self.rng.pick(&self.alive_nodes()) else {
            return Ok(());
        };
        let (seen, len) = (self.node(id).metadata_seen, self.zk.history.len());
        let index = seen + self.rng.below((len - seen) as u64) as usize;
        self.deliver_metadata(id, Some(index))
    }

    fn sync(&mut self) -> Result<(), String> {
        if !self.sync_appends {
            return Ok(());
        }
        let Some(id) = self.rng.pick(&self.alive_nodes()) else {
            return Ok(());
        };
        let n = self.node(id);
        match n.fsync.take() {
            Some((end, truncations)) => {
                self.feed(id, Event::Synced { end, truncations })?;
            }
            None if n.core.needs_sync() => {
                n.fsync = Some((n.log.len() as u64, n.core.truncations()));
            }
            None => {}
        }
        Ok(())
    }

    fn pause_or_resume(&mut self) -> Result<(), String> {
        let paused: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.paused)
            .map(|n| n.id)
            .collect();
        if !paused.is_empty() && (paused.len() == 2 || self.rng.chance(60)) {
            let id = self.rng.pick(&paused).unwrap_or(1);
            self.note(format!("broker {id} resumes"));
            self.node(id).paused = false;
            self.zk.set_alive(id, true);
        } else {
            let Some(id) = self.rng.pick(&self.alive_nodes()) else {
                return Ok(());
            };
            self.note(format!("broker {id} pauses; its session expires"));
            self.node(id).paused = true;
            self.zk.set_alive(id, false);
        }
        self.note(format!("zookeeper: {:?}", self.zk.current()));
        Ok(())
    }

    fn move_leader(&mut self) -> Result<(), String> {
        let isr = self.zk.current().isr.clone();
        if let Some(to) = self.rng.pick(&isr) {
            self.zk.move_leader(to);
            self.note(format!("zookeeper: {:?}", self.zk.current()));
        }
        Ok(())
    }

    /// Ends the run: everyone resumes and learns the newest metadata, time
    /// passes every deadline, and every request must have been answered once.
    pub fn finish(&mut self) -> Result<(), String> {
        for id in 1..=3 {
            if self.node(id).paused {
                self.node(id).paused = false;
                self.zk.set_alive(id, true);
            }
        }
        for id in 1..=3 {
            self.deliver_metadata(id, None)?;
        }
        self.now_ms += 10_000;
        let now = self.now();
        for id in 1..=3 {
            let lag_max = Duration::from_millis(LAG_MAX_MS);
            self.feed(id, Event::Tick { now, lag_max })?;
        }
        self.requests.all_answered_once()
    }
}
