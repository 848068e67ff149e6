//! Samples the brokers' resident memory (VmRSS from /proc) during a run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A background sampler; `stop` returns the largest RSS seen, in MiB.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Resident memory of a process in KiB, if it can be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl RssSampler {
    /// Starts sampling `pids` every 100 ms.
    pub fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, m) = (Arc::clone(&stop), Arc::clone(&max_kib));
        let thread = std::thread::Builder::new()
            .name("rss".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    for pid in &pids {
                        if let Some(kib) = rss_kib(*pid) {
                            m.fetch_max(kib, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        RssSampler {
            stop,
            max_kib,
            thread,
        }
    }

    /// Stops and returns the largest RSS seen, in MiB (None if nothing was read).
    pub fn stop(mut self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let kib = self.max_kib.load(Ordering::Relaxed);
        (kib > 0).then(|| kib as f64 / 1024.0)
    }
}
