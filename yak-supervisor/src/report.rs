//! Telling ZooKeeper that a child was restarted, for the cluster's event
//! history (`yak-node cluster events` shows it as `process_restarted`).
//!
//! Owns: the report's content (pure, from the child's exit) and sending it
//! on a thread of its own, retried while ZooKeeper is not up yet (it may be
//! the child that was restarted). Never: blocks the main loop, or makes a
//! report's failure matter to the cluster: it is logged and dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use yak_protocol::backoff::Backoff;
use yak_protocol::limits::{
    CLIENT_RETRY_BACKOFF_MS_MAX, SUPERVISOR_REPORT_RETRY_MS, SUPERVISOR_REPORT_TIMEOUT_MS,
};
use yak_protocol::{Call, ProcessRestart};

/// How long a report keeps trying to reach ZooKeeper.
pub const REPORT_TIMEOUT: Duration = Duration::from_millis(SUPERVISOR_REPORT_TIMEOUT_MS);

/// How a child ended, kept until its replacement starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Pid of the process that ended.
    pub pid: u32,
    /// Its exit status, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<String>,
    /// When it was reaped, in Unix milliseconds.
    pub at_ms: i64,
    /// The backoff chosen before its restart.
    pub delay_ms: u64,
}

impl Exit {
    /// The exit of `status` (an `Exited` or `Signaled` one), reaped at `at_ms`.
    pub fn new(pid: u32, status: WaitStatus, at_ms: i64) -> Exit {
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (Some(code), None),
            WaitStatus::Signaled(_, signal, _) => (None, Some(signal.as_str().to_string())),
            _ => (None, None),
        };
        Exit {
            pid,
            exit_code,
            signal,
            at_ms,
            delay_ms: 0,
        }
    }

    /// The report for child `name` restarted as `new_pid`.
    pub fn report(self, name: &str, new_pid: u32) -> ProcessRestart {
        ProcessRestart {
            child: name.to_string(),
            broker: yak_protocol::paths::broker_id_of(name),
            old_pid: self.pid,
            new_pid,
            exit_code: self.exit_code,
            signal: self.signal,
            restart_delay_ms: self.delay_ms,
            exited_at_ms: self.at_ms,
        }
    }
}

/// Now in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends `restart` to ZooKeeper on a thread of its own, trying again until
/// [`REPORT_TIMEOUT`] while ZooKeeper does not answer.
pub fn report_restart(run_dir: &Path, restart: ProcessRestart) {
    let socket: PathBuf = yak_protocol::paths::zookeeper_socket(run_dir);
    let spawned = std::thread::Builder::new().name("report-restart".into()).spawn(move || {
        let child = restart.child.clone();
        let call = Call::ProcessRestarted(restart);
        let begin = Instant::now();
        let mut backoff = Backoff::new(SUPERVISOR_REPORT_RETRY_MS, CLIENT_RETRY_BACKOFF_MS_MAX);
        for attempt in 0u32.. {
            let result = yak_protocol::connection::Connection::connect(&socket).and_then(|mut c| c.call(&call));
            match result {
                Ok(_) => return,
                Err(e) if begin.elapsed() >= REPORT_TIMEOUT => {
                    tracing::warn!(child = %child, error = %e, "could not report the restart to zookeeper");
                    return;
                }
                Err(_) => std::thread::sleep(backoff.delay(attempt)),
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start reporter thread");
    }
}

/// Tells ZooKeeper at once that a broker's process is gone, so its
/// partitions fail over without waiting for the session timeout. Sessions
/// stay the rule: this only makes it faster. Runs on its own thread so a
/// slow ZooKeeper never stalls the supervisor.
pub(crate) fn report_broker_down(run_dir: &Path, broker_id: u32, pid: u32) {
    let socket = yak_protocol::paths::zookeeper_socket(run_dir);
    let spawned = std::thread::Builder::new().name("report-down".into()).spawn(move || {
        let result = yak_protocol::connection::Connection::connect(&socket)
            .and_then(|mut c| c.call(&yak_protocol::Call::BrokerDown { broker_id, pid }));
        if let Err(e) = result {
            tracing::warn!(broker = broker_id, error = %e, "could not report broker down to zookeeper");
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start reporter thread");
    }
}

/// Tells ZooKeeper a removed broker's process is gone and the broker with
/// it (so it is no longer listed), on its own thread.
pub(crate) fn report_broker_removed(run_dir: &Path, broker_id: u32, pid: u32) {
    let socket = run_dir.join("zookeeper.sock");
    let spawned = std::thread::Builder::new().name("report-removed".into()).spawn(move || {
        let result = yak_protocol::connection::Connection::connect(&socket).and_then(|mut c| {
            c.call(&yak_protocol::Call::BrokerDown { broker_id, pid })?;
            c.call(&yak_protocol::Call::ForgetBroker { broker_id })
        });
        if let Err(e) = result {
            tracing::warn!(broker = broker_id, error = %e, "could not report the removed broker to zookeeper");
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start reporter thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn given_killed_broker_when_reporting_restart_should_name_broker_pids_signal_and_delay() {
        let mut exit = Exit::new(
            41,
            WaitStatus::Signaled(Pid::from_raw(41), Signal::SIGKILL, false),
            1_000,
        );
        exit.delay_ms = 100;
        let r = exit.report("broker-2", 42);
        assert_eq!(
            (
                r.child.as_str(),
                r.broker,
                r.old_pid,
                r.new_pid,
                r.exit_code,
                r.signal.as_deref(),
                r.restart_delay_ms,
                r.exited_at_ms
            ),
            (
                "broker-2",
                Some(2),
                41,
                42,
                None,
                Some("SIGKILL"),
                100,
                1_000
            )
        );
        let r = Exit::new(7, WaitStatus::Exited(Pid::from_raw(7), 74), 5).report("zookeeper", 8);
        assert_eq!((r.broker, r.exit_code, r.signal), (None, Some(74), None));
    }
}
