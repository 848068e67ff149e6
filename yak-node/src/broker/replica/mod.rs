//! Everything a partition replica decides, with no I/O: leadership, the
//! high watermark, the ISR tracker and its pending change, produce
//! requests waiting for the ISR (by request id, with deadlines), the
//! `min.insync.replicas` check, and where a diverged follower truncates.
//!
//! [`ReplicaCore`] takes [`Event`]s (a produce appended, a follower
//! fetched, an fsync finished, a tick at `now`, leadership from ZooKeeper,
//! an ISR change answered, the log truncated) and returns [`Action`]s
//! (answer request R, ask ZooKeeper for an ISR, truncate to T, the high
//! watermark moved). It never reads a clock, a file or a socket: time is an
//! argument, the log is the caller's (`broker/partition.rs`, the shell that
//! owns the `Log`, the mutex and the reply channels), so the simulation
//! tests (`sim/`) drive three replicas through seeded random schedules.
//!
//! `isr.rs`: the leader's follower bookkeeping. `divergence.rs`: the
//! KIP-101/320 truncation rule. `waiters.rs`: the parked requests.

pub mod divergence;
mod events;
pub mod isr;
mod machine;
mod waiters;

#[cfg(test)]
mod sim;

pub use events::{
    Action, Event, FetchPosition, IsrProposal, Leadership, Outcome, Refusal, RequestId,
};
pub use machine::ReplicaCore;
