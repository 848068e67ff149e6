//! The slow-broker scenario's pauser: a thread that stops one broker process
//! (SIGSTOP) and lets it run again (SIGCONT) on a duty cycle while a run
//! lasts, as a GC-pausing or noisy-neighbour broker would be. Owns the pause
//! and, on every exit path, the resumption: stopping the pauser, dropping it
//! (an error, a panic) or the interrupt flag all end with a SIGCONT. Never
//! picks the broker.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the pauser looks at its stop and interrupt flags while it waits.
const FLAG_CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// Pauses a broker on a duty cycle until dropped.
#[derive(Debug)]
pub struct Pauser {
    pid: Pid,
    stop: Arc<AtomicBool>,
    pauses: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Pauser {
    /// Starts pausing process `pid` at once: stopped for `pause`, running for
    /// `run`, again and again, until dropped or `interrupted` is set.
    pub fn start(
        pid: u32,
        pause: Duration,
        run: Duration,
        interrupted: Arc<AtomicBool>,
    ) -> Result<Pauser, nix::Error> {
        let pid = Pid::from_raw(pid as i32);
        // A pid we may not signal fails here, before any thread starts.
        kill(pid, None)?;
        let stop = Arc::new(AtomicBool::new(false));
        let pauses = Arc::new(AtomicU64::new(0));
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&pauses));
        let thread = std::thread::spawn(move || {
            let done = || stop_flag.load(Ordering::SeqCst) || interrupted.load(Ordering::SeqCst);
            while !done() {
                if let Err(e) = kill(pid, Signal::SIGSTOP) {
                    tracing::warn!(%pid, "cannot pause the slowed broker: {e}");
                    break;
                }
                count.fetch_add(1, Ordering::SeqCst);
                wait_unless(pause, &done);
                resume(pid);
                wait_unless(run, &done);
            }
            resume(pid);
        });
        Ok(Pauser {
            pid,
            stop,
            pauses,
            thread: Some(thread),
        })
    }

    /// Pauses so far.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::SeqCst)
    }
}

fn resume(pid: Pid) {
    if let Err(e) = kill(pid, Signal::SIGCONT) {
        tracing::warn!(%pid, "cannot resume the slowed broker: {e}");
    }
}

/// Sleeps for `span`, or less if `done` turns true.
fn wait_unless(span: Duration, done: &dyn Fn() -> bool) {
    let until = Instant::now() + span;
    while !done() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(FLAG_CHECK_INTERVAL));
    }
}

impl Drop for Pauser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Whatever the thread did (even a panic), the broker runs on.
        resume(self.pid);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// The state letter of `pid` in /proc (T when stopped).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(") ").unwrap().1;
        after.chars().next().unwrap()
    }

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    fn wait_for_state(pid: u32, want: char) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if state(pid) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn given_a_long_pause_when_dropping_the_pauser_should_resume_the_process() {
        let mut child = sleeper();
        let pid = child.id();
        let pauser = Pauser::start(
            pid,
            Duration::from_secs(60),
            Duration::from_millis(1),
            Arc::default(),
        )
        .unwrap();
        assert!(wait_for_state(pid, 'T'), "paused");
        assert_eq!(pauser.pauses(), 1);
        drop(pauser);
        assert_ne!(state(pid), 'T', "resumed on drop");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn given_an_interrupt_when_paused_should_resume_at_once() {
        let mut child = sleeper();
        let pid = child.id();
        let interrupted = Arc::new(AtomicBool::new(false));
        let pauser = Pauser::start(
            pid,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Arc::clone(&interrupted),
        )
        .unwrap();
        assert!(wait_for_state(pid, 'T'), "paused");
        interrupted.store(true, Ordering::SeqCst);
        assert!(
            wait_for_state(pid, 'S'),
            "resumed on interrupt, before the pause ends"
        );
        drop(pauser);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn given_a_short_duty_cycle_when_running_should_pause_again_and_again() {
        let mut child = sleeper();
        let pid = child.id();
        let pauser = Pauser::start(
            pid,
            Duration::from_millis(10),
            Duration::from_millis(10),
            Arc::default(),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pauser.pauses() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(pauser.pauses() >= 3, "{} pauses", pauser.pauses());
        drop(pauser);
        assert_ne!(state(pid), 'T');
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn given_a_process_that_is_gone_when_starting_should_fail() {
        let mut child = sleeper();
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(Pauser::start(
            pid,
            Duration::from_millis(1),
            Duration::from_millis(1),
            Arc::default()
        )
        .is_err());
    }
}
