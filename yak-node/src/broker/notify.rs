//! Wakes long-polling fetches when any partition of this broker gets data,
//! and hands the newest metadata from the heartbeat thread to the thread
//! that applies it ([`Latest`]).

use std::sync::{Condvar, Mutex};
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

/// A generation counter bumped on every append.
#[derive(Default)]
pub struct Notifier {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Notifier {
    /// The current generation.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something was appended.
    pub fn notify(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// Waits until the generation moves past `seen` or `deadline` passes.
    pub fn wait(&self, seen: u64, deadline: Instant) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        while *g == seen {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            g = match self.changed.wait_timeout(g, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
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
}
