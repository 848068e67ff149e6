//! Simulation tests of the replica core, in the manner of raft-rs: three
//! cores driven through seeded random schedules with simulated time, a
//! network that drops, delays and reorders follower fetches and ISR
//! answers, ZooKeeper moving leadership and expiring sessions in the middle
//! of waits, acks=all and acks=1 produce requests, truncations, fsyncs and
//! waiter expiry. Invariants (`invariants.rs`) are checked after every core
//! event; a failure names its seed and prints the schedule that led to it.

mod invariants;
mod node;
mod rng;
mod world;
mod zk;

use world::World;

/// Schedules per `cargo test` run.
const SEEDS: u64 = 500;
/// Random steps per schedule.
const STEPS: usize = 600;
/// Schedule lines printed with a failure.
const SCHEDULE_TAIL_LINES: usize = 150;

/// Runs schedule `seed`; on a broken invariant, the error and the schedule.
fn run(seed: u64) -> Result<World, (String, Vec<String>)> {
    let mut w = World::new(seed);
    if let Err(e) = w.start() {
        return Err((e, w.schedule));
    }
    for _ in 0..STEPS {
        if let Err(e) = w.step() {
            return Err((e, w.schedule));
        }
    }
    match w.finish() {
        Ok(()) => Ok(w),
        Err(e) => Err((e, w.schedule)),
    }
}

#[test]
fn given_seeded_random_schedules_when_driving_three_replicas_should_hold_every_invariant() {
    let mut acknowledged = 0;
    for seed in 0..SEEDS {
        match run(seed) {
            Ok(w) => acknowledged += w.requests.acknowledged(),
            Err((e, schedule)) => {
                let tail = schedule.len().saturating_sub(SCHEDULE_TAIL_LINES);
                panic!(
                    "seed {seed}: {e}\nschedule (last {} of {} lines):\n{}",
                    schedule.len() - tail,
                    schedule.len(),
                    schedule[tail..].join("\n")
                );
            }
        }
    }
    // The schedules must exercise the path the invariants guard.
    assert!(
        acknowledged > SEEDS * 5,
        "only {acknowledged} acks=all requests acknowledged in {SEEDS} schedules"
    );
}

#[test]
fn given_same_seed_when_running_twice_should_follow_the_same_schedule() {
    let a = run(7).map(|w| w.schedule).unwrap_or_else(|(_, s)| s);
    let b = run(7).map(|w| w.schedule).unwrap_or_else(|(_, s)| s);
    assert!(a.len() > 100, "a schedule of {} lines", a.len());
    assert_eq!(a, b);
}
