//! Wakes long-polling fetches when any partition of this broker gets data.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

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
