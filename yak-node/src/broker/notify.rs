//! Wakes what waits for this broker's data to change: the flusher, and
//! long-polling fetches parked here ([`Notifier::park`]) until data
//! arrives or their deadline passes, so no thread is held per waiting
//! fetch; and hands the newest metadata from the heartbeat thread to the
//! thread that applies it ([`Latest`]). Never builds an answer itself.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The newest value put, for one taker: an older value not yet taken is
/// replaced, never queued.
pub struct Latest<T> {
    value: Mutex<Option<T>>,
    put: Condvar,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest {
            value: Mutex::new(None),
            put: Condvar::new(),
        }
    }
}

impl<T> Latest<T> {
    /// Replaces the value waiting, if any; never blocks on the taker.
    pub fn put(&self, value: T) {
        *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        self.put.notify_one();
    }

    /// Waits for a value and takes it.
    pub fn take(&self) -> T {
        let mut v = self.value.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(value) = v.take() {
                return value;
            }
            v = self.put.wait(v).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One parked waiter and when it must be answered at the latest.
pub struct Parked<T> {
    /// Answer by then, data or not.
    pub deadline: Instant,
    /// What the waker needs to answer it.
    pub waiter: T,
}

/// Waiters due for another look: all of them when data changed, else
/// those whose deadline passed.
pub struct Due<T> {
    /// The generation they were taken at: park again with it.
    pub generation: u64,
    /// The waiters taken (no longer parked).
    pub waiters: Vec<Parked<T>>,
}

struct State<T> {
    generation: u64,
    /// A waiter parked after the data changed under it: look again.
    recheck: bool,
    parked: Vec<Parked<T>>,
    /// Threads in [`Notifier::wait`].
    waiting: usize,
}

/// A generation counter bumped whenever data changes (an append, a high
/// watermark move, new metadata), and the waiters parked on it.
pub struct Notifier<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Default for Notifier<T> {
    fn default() -> Self {
        Notifier {
            state: Mutex::new(State {
                generation: 0,
                recheck: false,
                parked: Vec::new(),
                waiting: 0,
            }),
            changed: Condvar::new(),
        }
    }
}

impl<T> Notifier<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Something changed. Wakes nobody when nobody waits for it: the
    /// waker with no fetch parked sleeps through appends.
    pub fn notify(&self) {
        let mut s = self.state();
        s.generation += 1;
        let wake = !s.parked.is_empty() || s.waiting > 0;
        drop(s);
        if wake {
            self.changed.notify_all();
        }
    }

    /// Waits until the generation moves past `seen` or `deadline` passes.
    pub fn wait(&self, seen: u64, deadline: Instant) {
        let mut s = self.state();
        s.waiting += 1;
        while s.generation == seen {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = match self.changed.wait_timeout(s, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        s.waiting -= 1;
    }

    /// Parks `waiter`, which found nothing new at generation `seen`, until
    /// the next change or `deadline`; it is looked at again at once if the
    /// generation already moved.
    pub fn park(&self, seen: u64, deadline: Instant, waiter: T) {
        let mut s = self.state();
        if s.generation != seen {
            s.recheck = true;
        }
        s.parked.push(Parked { deadline, waiter });
        drop(s);
        // Waiters on `wait` see the same generation and wait on.
        self.changed.notify_all();
    }

    /// Waiters parked now.
    pub fn parked(&self) -> usize {
        self.state().parked.len()
    }

    /// For the waker: waits until the generation moves past `*seen` (or a
    /// waiter asks for a recheck) and takes every parked waiter, or until
    /// the earliest deadline passes and takes the waiters past theirs.
    pub fn next_due(&self, seen: &mut u64) -> Due<T> {
        let mut s = self.state();
        loop {
            if (s.generation != *seen || s.recheck) && s.parked.is_empty() {
                // Nobody to look at again.
                *seen = s.generation;
                s.recheck = false;
            }
            if s.generation != *seen || s.recheck {
                *seen = s.generation;
                s.recheck = false;
                return Due {
                    generation: s.generation,
                    waiters: std::mem::take(&mut s.parked),
                };
            }
            let now = Instant::now();
            let earliest = s.parked.iter().map(|p| p.deadline).min();
            match earliest {
                Some(d) if d <= now => {
                    let (expired, waiting) = std::mem::take(&mut s.parked)
                        .into_iter()
                        .partition(|p| p.deadline <= now);
                    s.parked = waiting;
                    return Due {
                        generation: s.generation,
                        waiters: expired,
                    };
                }
                Some(d) => {
                    s = match self.changed.wait_timeout(s, d - now) {
                        Ok((guard, _)) => guard,
                        Err(p) => p.into_inner().0,
                    }
                }
                None => s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_put_faster_than_taken_when_taking_should_get_the_newest_only() {
        let latest = Latest::default();
        latest.put(1);
        latest.put(2);
        assert_eq!(latest.take(), 2);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                latest.put(3);
            });
            assert_eq!(latest.take(), 3, "take waits for the next value");
        });
    }

    #[test]
    fn given_nothing_parked_when_data_changes_should_keep_the_waker_asleep_until_a_fetch_parks() {
        let n = Notifier::<u32>::default();
        let mut seen = n.generation();
        n.notify();
        n.notify();
        std::thread::scope(|s| {
            let waker = s.spawn(|| n.next_due(&mut seen));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !waker.is_finished(),
                "appends with nothing parked wake nobody"
            );
            // A fetch that looked before those appends parks: looked at again at once.
            let far = Instant::now() + std::time::Duration::from_secs(60);
            n.park(0, far, 7);
            let due = waker.join().expect("waker");
            assert_eq!(due.waiters.len(), 1);
            assert_eq!(due.waiters[0].waiter, 7);
        });
    }

    #[test]
    fn given_parked_waiters_when_data_changes_should_hand_over_all_of_them() {
        let n = Notifier::default();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = n.generation();
        n.park(seen, far, "a");
        n.park(seen, far, "b");
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                n.notify();
            });
            let due = n.next_due(&mut seen);
            let got: Vec<&str> = due.waiters.iter().map(|p| p.waiter).collect();
            assert_eq!(got, ["a", "b"]);
            assert_eq!(due.generation, seen);
        });
        assert_eq!(n.parked(), 0);
    }

    #[test]
    fn given_waiters_with_deadlines_when_no_data_comes_should_hand_over_each_at_its_deadline() {
        let n = Notifier::default();
        let start = Instant::now();
        let mut seen = n.generation();
        n.park(seen, start + std::time::Duration::from_millis(300), "late");
        n.park(seen, start + std::time::Duration::from_millis(50), "early");
        let due = n.next_due(&mut seen);
        let waited = start.elapsed();
        assert_eq!(due.waiters.len(), 1);
        assert_eq!(due.waiters[0].waiter, "early");
        assert!(
            waited >= std::time::Duration::from_millis(50)
                && waited < std::time::Duration::from_millis(250),
            "{waited:?}"
        );
        assert_eq!(n.parked(), 1, "the later one stays parked");
        let due = n.next_due(&mut seen);
        assert_eq!(due.waiters[0].waiter, "late");
        assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    }

    #[test]
    fn given_data_changed_before_parking_when_waking_should_look_again_at_once() {
        let n = Notifier::default();
        let seen_by_waiter = n.generation();
        n.notify();
        // The waker took its round at the new generation before the waiter parked.
        let mut seen_by_waker = n.generation();
        n.park(
            seen_by_waiter,
            Instant::now() + std::time::Duration::from_secs(60),
            1,
        );
        let started = Instant::now();
        let due = n.next_due(&mut seen_by_waker);
        assert_eq!(due.waiters.len(), 1, "the missed change is not lost");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
