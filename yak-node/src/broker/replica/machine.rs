//! The replica state machine: leadership, log end and durable offsets as
//! the shell reported them, the high watermark, the ISR tracker, parked
//! produce requests. [`ReplicaCore::step`] applies one event and returns
//! the actions it calls for. Never does I/O, never reads a clock.
//!
//! **Invariants** (checked by `sim/` after every step of random schedules):
//! a request is acknowledged only while the committed ISR holds at least
//! `min.insync.replicas` members, each known to hold its batch; the high
//! watermark rises only to offsets every member of the maximal ISR holds,
//! never goes back while this replica leads one epoch, and never passes the
//! log end offset (a candidate above it is clamped and logged as a bug, see
//! [`ReplicaCore::high_watermark_clamps`]); each request is answered once.

use super::divergence;
use super::events::{Action, Event, FetchPosition, IsrProposal, Leadership, Outcome, Refusal};
use super::isr::IsrTracker;
use super::waiters::Waiters;
use crate::limits::MIN_INSYNC_REPLICAS_DEFAULT;
use std::time::{Duration, Instant};

/// Everything one partition replica decides.
#[derive(Debug, Clone)]
pub struct ReplicaCore {
    /// This broker's id.
    me: u32,
    leadership: Leadership,
    /// Some while this broker leads.
    tracker: Option<IsrTracker>,
    high_watermark: u64,
    /// The log end offset, as the shell last reported it.
    log_end_offset: u64,
    /// Appends below this offset are fsynced.
    durable_offset: u64,
    /// fsync policy `always`: only fsynced data counts toward the high watermark.
    sync_appends: bool,
    /// Bumped by every truncation, so an fsync started before one does not
    /// vouch for data written after it.
    truncations: u64,
    waiters: Waiters,
    /// Times a high watermark above the log end offset was refused.
    high_watermark_clamps: u64,
}

impl ReplicaCore {
    /// A replica of broker `me` whose log (all of it on disk) ends at `log_end_offset`.
    pub fn new(me: u32, log_end_offset: u64, sync_appends: bool) -> ReplicaCore {
        ReplicaCore {
            me,
            leadership: Leadership::default(),
            tracker: None,
            high_watermark: 0,
            log_end_offset,
            durable_offset: log_end_offset,
            sync_appends,
            truncations: 0,
            waiters: Waiters::default(),
            high_watermark_clamps: 0,
        }
    }

    /// Leadership as last known.
    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// Whether this broker leads.
    pub fn is_leader(&self) -> bool {
        self.tracker.is_some()
    }

    /// The leader's follower bookkeeping, while leading.
    pub fn tracker(&self) -> Option<&IsrTracker> {
        self.tracker.as_ref()
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// The log end offset as last reported.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }

    /// What this replica counts as its own end toward the high watermark:
    /// the durable offset under fsync `always`, else the log end.
    pub fn own_end(&self) -> u64 {
        if self.sync_appends {
            self.durable_offset
        } else {
            self.log_end_offset
        }
    }

    /// The truncation count, to pass back in [`Event::Synced`].
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    /// Whether appends wait for an fsync (policy `always`) not done yet.
    pub fn needs_sync(&self) -> bool {
        self.sync_appends && self.durable_offset < self.log_end_offset
    }

    /// How many produce requests wait.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Times a high watermark above the log end offset was refused (a bug
    /// in whoever reported the log; logged at error level each time).
    pub fn high_watermark_clamps(&self) -> u64 {
        self.high_watermark_clamps
    }

    /// `min.insync.replicas` for this partition.
    pub fn min_insync(&self) -> usize {
        MIN_INSYNC_REPLICAS_DEFAULT
            .min(self.leadership.replicas.len())
            .max(1)
    }

    fn not_leader(&self) -> Refusal {
        Refusal::NotLeader {
            leader: self.leadership.leader,
            epoch: self.leadership.epoch,
        }
    }

    /// Whether a produce request may append: this broker leads and, for
    /// acks=all, the ISR holds `min.insync.replicas`.
    pub fn admit(&self, acks_all: bool) -> Result<(), Refusal> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let (isr, min_insync) = (self.leadership.isr.len(), self.min_insync());
        if acks_all && isr < min_insync {
            return Err(Refusal::NotEnoughReplicas { isr, min_insync });
        }
        Ok(())
    }

    /// Whether a fetch naming leader epoch `epoch` may be served here.
    pub fn check_epoch(&self, epoch: Option<u32>) -> Result<(), Refusal> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let current = self.leadership.epoch;
        match epoch {
            Some(asked) if asked < current => Err(Refusal::FencedLeaderEpoch { asked, current }),
            Some(asked) if asked > current => Err(self.not_leader()),
            _ => Ok(()),
        }
    }

    /// Whether `proposal` is the ISR change in flight now: same leader
    /// epoch, same partition epoch, same ISR.
    pub fn is_pending(&self, proposal: &IsrProposal) -> bool {
        self.leadership.epoch == proposal.leader_epoch
            && self.leadership.partition_epoch == proposal.partition_epoch
            && self.tracker.as_ref().and_then(IsrTracker::pending) == Some(proposal.isr.as_slice())
    }

    /// Whether an answer to a fetch sent at `asked` may still be applied:
    /// this replica follows the same leader in the same epoch, and its log
    /// ends where it did (else a late answer from a former leader, or one
    /// overtaken by a truncation).
    pub fn still_at(&self, asked: &FetchPosition) -> bool {
        !self.is_leader()
            && self.leadership.leader == asked.leader
            && self.leadership.epoch == asked.leader_epoch
            && self.log_end_offset == asked.offset
    }

    /// Applies `event`; returns what the shell must do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Leadership { leadership, now } => self.set_leadership(leadership, now, &mut out),
            Event::Appended { log_end_offset } => {
                self.log_end_offset = log_end_offset;
                self.advance(&mut out);
            }
            Event::Produced {
                request,
                last_offset,
                acks_all,
                deadline,
            } => self.produced(request, last_offset, acks_all, deadline, &mut out),
            Event::FollowerFetched {
                follower,
                offset,
                last_fetched_epoch,
                leader_end_for_epoch,
                now,
            } => self.follower_fetched(
                follower,
                offset,
                last_fetched_epoch,
                leader_end_for_epoch,
                now,
                &mut out,
            ),
            Event::Synced { end, truncations } => {
                if truncations == self.truncations {
                    self.durable_offset = self.durable_offset.max(end.min(self.log_end_offset));
                    self.advance(&mut out);
                }
            }
            Event::Tick { now, lag_max } => self.tick(now, lag_max, &mut out),
            Event::IsrAccepted {
                proposal,
                partition_epoch,
                isr,
            } => self.isr_accepted(&proposal, partition_epoch, isr, &mut out),
            Event::IsrRefused { proposal } => {
                if self.is_pending(&proposal) {
                    if let Some(t) = self.tracker.as_mut() {
                        t.proposal_failed();
                    }
                }
            }
            Event::Replicated {
                log_end_offset,
                durable,
                leader_high_watermark,
            } => {
                self.log_end_offset = log_end_offset;
                if durable {
                    self.durable_offset = log_end_offset;
                }
                let hw = self
                    .high_watermark
                    .max(leader_high_watermark.min(log_end_offset));
                self.set_high_watermark(hw, &mut out);
            }
            Event::Diverged {
                epoch,
                leader_end,
                own_end_for_epoch,
                log_start_offset,
            } => {
                let to = divergence::truncation_point(
                    (epoch, leader_end),
                    own_end_for_epoch,
                    self.log_end_offset,
                );
                out.push(if to < log_start_offset {
                    Action::Restart { offset: to }
                } else {
                    Action::Truncate { to }
                });
            }
            Event::LeaderLogStart { offset } => {
                if self.log_end_offset < offset {
                    out.push(Action::Restart { offset });
                }
            }
            Event::Truncated { log_end_offset } => self.truncated(log_end_offset, &mut out),
            Event::Restarted { offset } => {
                self.truncations += 1;
                self.log_end_offset = offset;
                self.durable_offset = offset;
                self.high_watermark = offset;
            }
        }
        out
    }

    fn set_leadership(&mut self, new: Leadership, now: Instant, out: &mut Vec<Action>) {
        if self.leadership == new {
            return;
        }
        let was_leader = self.is_leader();
        let same_term = self.leadership.leader == new.leader && self.leadership.epoch == new.epoch;
        if same_term && new.partition_epoch < self.leadership.partition_epoch {
            // Metadata read before an ISR change this leader already applied.
            return;
        }
        if new.leader == Some(self.me) {
            match (&mut self.tracker, same_term) {
                (Some(t), true) => t.set_isr(&new.isr),
                _ => {
                    let leo = self.log_end_offset;
                    self.high_watermark = self.high_watermark.min(leo);
                    self.tracker = Some(IsrTracker::new(
                        self.me,
                        &new.replicas,
                        &new.isr,
                        self.high_watermark,
                        leo,
                        now,
                    ));
                    tracing::info!(broker = self.me, epoch = new.epoch, log_end_offset = leo, isr = ?new.isr, "became leader");
                }
            }
        } else {
            if was_leader || !same_term {
                let outcome = Outcome::NotLeader {
                    leader: new.leader,
                    epoch: new.epoch,
                };
                out.extend(
                    self.waiters
                        .take_all()
                        .into_iter()
                        .map(|(request, last_offset)| Action::Reply {
                            request,
                            last_offset,
                            outcome: outcome.clone(),
                        }),
                );
            }
            if was_leader {
                tracing::info!(broker = self.me, leader = ?new.leader, epoch = new.epoch, "became follower");
            }
            self.tracker = None;
        }
        self.leadership = new;
        self.advance(out);
    }

    fn produced(
        &mut self,
        request: u64,
        last_offset: u64,
        acks_all: bool,
        deadline: Instant,
        out: &mut Vec<Action>,
    ) {
        if !self.is_leader() {
            let Refusal::NotLeader { leader, epoch } = self.not_leader() else {
                return;
            };
            out.push(Action::Reply {
                request,
                last_offset,
                outcome: Outcome::NotLeader { leader, epoch },
            });
            return;
        }
        if !acks_all {
            out.push(Action::Reply {
                request,
                last_offset,
                outcome: Outcome::Acknowledged,
            });
            return;
        }
        self.waiters.park(request, last_offset, deadline);
        self.advance(out);
    }

    fn follower_fetched(
        &mut self,
        follower: u32,
        offset: u64,
        last_fetched_epoch: Option<u32>,
        leader_end_for_epoch: Option<(u32, u64)>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let leo = self.log_end_offset;
        let Some(t) = self.tracker.as_mut() else {
            return;
        };
        let diverging = divergence::leader_check(
            offset,
            last_fetched_epoch,
            leader_end_for_epoch,
            self.leadership.epoch,
            leo,
        );
        if let Some((epoch, end)) = diverging {
            out.push(Action::Diverging { epoch, end });
            return;
        }
        if let Some(isr) = t.on_fetch(follower, offset, leo, now) {
            out.push(Action::ProposeIsr(self.proposal(isr)));
        }
        self.advance(out);
    }

    fn proposal(&self, isr: Vec<u32>) -> IsrProposal {
        IsrProposal {
            leader_epoch: self.leadership.epoch,
            partition_epoch: self.leadership.partition_epoch,
            isr,
        }
    }

    fn tick(&mut self, now: Instant, lag_max: Duration, out: &mut Vec<Action>) {
        out.extend(
            self.waiters
                .take_expired(now)
                .into_iter()
                .map(|(request, last_offset)| Action::Reply {
                    request,
                    last_offset,
                    outcome: Outcome::Timeout,
                }),
        );
        if let Some(isr) = self.tracker.as_mut().and_then(|t| t.shrink(now, lag_max)) {
            out.push(Action::ProposeIsr(self.proposal(isr)));
        }
    }

    /// ZooKeeper answered `proposal`: the partition is now at `isr`,
    /// `partition_epoch`. A newer state is applied. An answer at the
    /// proposal's own epoch means ZooKeeper changed nothing (the ISR asked
    /// for, without members it knows dead, is the one it has): that settles
    /// the proposal. An answer this replica already knows of otherwise
    /// (metadata brought it first) changes nothing: the change it answers
    /// was settled then, and any change pending now is a newer one.
    fn isr_accepted(
        &mut self,
        proposal: &IsrProposal,
        partition_epoch: u64,
        isr: Vec<u32>,
        out: &mut Vec<Action>,
    ) {
        if self.leadership.epoch != proposal.leader_epoch {
            return;
        }
        let unchanged = partition_epoch == proposal.partition_epoch && self.is_pending(proposal);
        if unchanged && partition_epoch == self.leadership.partition_epoch {
            if let Some(t) = self.tracker.as_mut() {
                t.proposal_failed();
            }
            return;
        }
        if partition_epoch <= self.leadership.partition_epoch {
            return;
        }
        if let Some(t) = self.tracker.as_mut() {
            // Every change pending was based on an older partition epoch:
            // ZooKeeper's compare-and-set refuses it now, so it is settled.
            t.set_isr(&isr);
        }
        self.leadership.isr = isr;
        self.leadership.partition_epoch = partition_epoch;
        self.advance(out);
    }

    fn truncated(&mut self, log_end_offset: u64, out: &mut Vec<Action>) {
        if self.is_leader() {
            tracing::error!(
                broker = self.me,
                log_end_offset,
                high_watermark = self.high_watermark,
                "bug: a leader's log was truncated"
            );
        }
        self.truncations += 1;
        self.log_end_offset = log_end_offset;
        self.durable_offset = self.durable_offset.min(log_end_offset);
        let hw = self.high_watermark.min(log_end_offset);
        self.set_high_watermark(hw, out);
    }

    /// Sets the high watermark, refusing anything past the log end offset.
    fn set_high_watermark(&mut self, candidate: u64, out: &mut Vec<Action>) {
        let hw = if candidate > self.log_end_offset {
            self.high_watermark_clamps += 1;
            tracing::error!(
                broker = self.me,
                high_watermark = candidate,
                log_end_offset = self.log_end_offset,
                "bug: high watermark above the log end offset; clamped"
            );
            self.log_end_offset
        } else {
            candidate
        };
        if hw > self.high_watermark {
            out.push(Action::HighWatermarkAdvanced(hw));
        }
        self.high_watermark = hw;
    }

    /// Leader: recomputes the high watermark and completes waiting requests.
    /// A request the high watermark passed is acknowledged only if the ISR
    /// holds at least `min.insync.replicas` members at this moment; else it
    /// is answered `NotEnoughReplicasAfterAppend` (its batch stays in the
    /// log; an idempotent retry finds it as a duplicate).
    fn advance(&mut self, out: &mut Vec<Action>) {
        self.durable_offset = self.durable_offset.min(self.log_end_offset);
        let own_end = self.own_end();
        let Some(t) = self.tracker.as_mut() else {
            return;
        };
        let candidate = t.update_high_watermark(own_end);
        let isr = t.isr().to_vec();
        self.set_high_watermark(candidate, out);
        let done = self.waiters.take_below(self.high_watermark);
        let min_insync = self.min_insync();
        let outcome = if isr.len() >= min_insync {
            Outcome::Acknowledged
        } else {
            Outcome::NotEnoughReplicasAfterAppend { isr, min_insync }
        };
        out.extend(
            done.into_iter()
                .map(|(request, last_offset)| Action::Reply {
                    request,
                    last_offset,
                    outcome: outcome.clone(),
                }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_of_three(now: Instant) -> ReplicaCore {
        let mut c = ReplicaCore::new(1, 0, false);
        let leadership = Leadership {
            leader: Some(1),
            epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 0,
        };
        assert!(c.step(Event::Leadership { leadership, now }).is_empty());
        c
    }

    fn fetched(follower: u32, offset: u64, now: Instant) -> Event {
        Event::FollowerFetched {
            follower,
            offset,
            last_fetched_epoch: (offset > 0).then_some(0),
            leader_end_for_epoch: (offset > 0).then_some((0, 2)),
            now,
        }
    }

    fn produce(c: &mut ReplicaCore, request: u64, end: u64, deadline: Instant) -> Vec<Action> {
        let mut out = c.step(Event::Appended {
            log_end_offset: end,
        });
        out.extend(c.step(Event::Produced {
            request,
            last_offset: end - 1,
            acks_all: true,
            deadline,
        }));
        out
    }

    #[test]
    fn given_leader_log_cut_below_its_high_watermark_when_followers_fetch_should_clamp_to_the_log_end_and_count_it(
    ) {
        let t0 = Instant::now();
        let mut c = leader_of_three(t0);
        produce(&mut c, 0, 2, t0 + Duration::from_secs(5));
        c.step(fetched(2, 2, t0));
        c.step(fetched(3, 2, t0));
        assert_eq!(c.high_watermark(), 2);
        // A shell bug: the leader's log is cut below the high watermark.
        c.step(Event::Truncated { log_end_offset: 1 });
        assert_eq!(c.high_watermark(), 1);
        // The tracker still says 2; the core refuses it.
        let out = c.step(fetched(2, 1, t0));
        assert_eq!(c.high_watermark(), 1, "HW <= LEO holds");
        assert_eq!(c.high_watermark_clamps(), 1);
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::HighWatermarkAdvanced(_))));
    }

    #[test]
    fn given_waiting_request_when_deadline_passes_should_answer_timeout_once() {
        let t0 = Instant::now();
        let mut c = leader_of_three(t0);
        let deadline = t0 + Duration::from_millis(100);
        assert!(produce(&mut c, 7, 2, deadline).is_empty(), "waits");
        let lag_max = Duration::from_secs(10);
        let out = c.step(Event::Tick {
            now: deadline,
            lag_max,
        });
        assert_eq!(
            out,
            vec![Action::Reply {
                request: 7,
                last_offset: 1,
                outcome: Outcome::Timeout
            }]
        );
        c.step(fetched(2, 2, t0));
        let out = c.step(fetched(3, 2, t0));
        assert!(
            !out.iter().any(|a| matches!(a, Action::Reply { .. })),
            "answered once"
        );
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn given_waiting_request_when_leadership_moves_away_should_answer_not_leader() {
        let t0 = Instant::now();
        let mut c = leader_of_three(t0);
        produce(&mut c, 3, 2, t0 + Duration::from_secs(5));
        let leadership = Leadership {
            leader: Some(2),
            epoch: 1,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            partition_epoch: 1,
        };
        let out = c.step(Event::Leadership {
            leadership,
            now: t0,
        });
        assert_eq!(
            out,
            vec![Action::Reply {
                request: 3,
                last_offset: 1,
                outcome: Outcome::NotLeader {
                    leader: Some(2),
                    epoch: 1
                }
            }]
        );
        assert!(!c.is_leader());
    }

    #[test]
    fn given_fsync_started_before_a_truncation_when_it_finishes_should_not_count_as_durable() {
        let mut c = ReplicaCore::new(1, 0, true);
        c.step(Event::Replicated {
            log_end_offset: 5,
            durable: false,
            leader_high_watermark: 0,
        });
        let token = c.truncations();
        c.step(Event::Truncated { log_end_offset: 3 });
        c.step(Event::Replicated {
            log_end_offset: 6,
            durable: false,
            leader_high_watermark: 0,
        });
        c.step(Event::Synced {
            end: 5,
            truncations: token,
        });
        assert!(c.needs_sync(), "the fsync vouched for the old bytes only");
        let token = c.truncations();
        c.step(Event::Synced {
            end: 6,
            truncations: token,
        });
        assert!(!c.needs_sync());
    }
}
