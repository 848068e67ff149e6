//! The supervisor proper: prepares the run dir, starts ZooKeeper, then the
//! brokers, then the producer/consumer workers, reaps and restarts
//! children, and shuts everything down on SIGINT, SIGTERM or SIGHUP, or
//! when ZooKeeper, which nothing works without, is past its restart budget.
//!
//! Owns: the run-dir and data-dir locks, the list of children and their states, the main
//! loop, and the shutdown order (workers, then brokers, then ZooKeeper,
//! then files).
//! Never: forks itself (`spawn` does), decides backoff (`restart` does) or
//! formats child output (`output` does). All forks happen on the main thread,
//! which lives until exit: PR_SET_PDEATHSIG fires when the forking thread ends.
//! Other threads (output readers, the metrics endpoint) never fork; a fork
//! while they run is safe because the child only makes async-signal-safe
//! calls before it execs (`spawn`), and every fd they open is close-on-exec.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use yak_protocol::{limits, paths};

use crate::board::Board;
use crate::config::Config;
use crate::output::{self, Sink};
use crate::report::{self, Exit};
use crate::report::{report_broker_down, report_broker_removed};
use crate::restart::{
    Decision, RestartPolicy, RESTARTS_MAX, RESTART_WINDOW, ZOOKEEPER_BACKOFF_MAX,
};
use crate::rundir::{lock_run_dir, prepare_dirs, remove_sockets, write_client_config};
use crate::spawn::{self, ChildSpec, SpawnError};
use crate::specs::{broker_spec, child_specs};

pub use crate::error::Error;

/// How often the main loop reaps, restarts and checks for signals.
pub const TICK: Duration = Duration::from_millis(limits::SUPERVISOR_TICK_MS);
/// How long ZooKeeper may take to accept connections on its socket.
pub const ZOOKEEPER_READY_TIMEOUT: Duration =
    Duration::from_millis(limits::SUPERVISOR_ZOOKEEPER_READY_TIMEOUT_MS);
/// How often to try ZooKeeper's socket while waiting for it.
pub const ZOOKEEPER_READY_POLL: Duration =
    Duration::from_millis(limits::SUPERVISOR_ZOOKEEPER_READY_POLL_MS);
/// How long children get between SIGTERM and SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(limits::SUPERVISOR_SHUTDOWN_GRACE_MS);
/// How long to wait for output readers to drain after the children are gone.
pub const READERS_DRAIN_TIMEOUT: Duration =
    Duration::from_millis(limits::SUPERVISOR_READERS_DRAIN_TIMEOUT_MS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Running { pid: Pid, since: Instant },
    Backoff { until: Instant },
    GaveUp,
    Stopped,
}

#[derive(Debug)]
struct Child {
    spec: ChildSpec,
    state: State,
    policy: RestartPolicy,
    /// How it last ended, until its replacement starts and is reported.
    last_exit: Option<Exit>,
    /// Set while a removed broker stops: it is never restarted, and the
    /// control socket's caller gets its answer once it is reaped.
    removal: Option<dynamic::Removal>,
}

impl Child {
    fn pid(&self) -> Option<Pid> {
        match self.state {
            State::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

/// Index of ZooKeeper in `Supervisor::children`; brokers follow it.
const ZOOKEEPER: usize = 0;

#[path = "dynamic.rs"]
mod dynamic;

struct Supervisor {
    run_dir: PathBuf,
    data_dir: PathBuf,
    /// Zookeeper first, then the brokers of the set, then `producer-*`,
    /// `consumer-*`, then brokers added at run time.
    children: Vec<Child>,
    /// The durable broker set (`broker_set.rs`), sorted.
    broker_ids: Vec<u32>,
    /// Builds a broker's spec (added at run time).
    node_bin: PathBuf,
    config: Config,
    /// Orders from `supervisor.sock`.
    control: Option<std::sync::mpsc::Receiver<crate::control::Order>>,
    signals: Signals,
    signals_seen: usize,
    shutting_down: bool,
    readers: Vec<JoinHandle<()>>,
    /// The children's pids and restarts, for the metrics endpoint.
    board: Arc<Board>,
    /// Set when the cluster must stop (ZooKeeper given up): the main loop returns it.
    fatal: Option<Error>,
}

/// Runs the cluster described by `config` until SIGINT, SIGTERM or SIGHUP
/// (a closed terminal: the same ordered shutdown). On an error every
/// started child is stopped before it is returned.
pub fn run(config: &Config, node_bin: &Path) -> Result<(), Error> {
    let signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|source| Error::Signals { source })?;
    prepare_dirs(config)?;
    let lock = lock_run_dir(&config.run_dir)?;
    // One cluster per data dir, whatever its run dir: taken before any child
    // starts, held until the supervisor exits (children lock their own dirs).
    let data_lock = yak_storage::datadir::lock(
        &config.data_dir,
        yak_storage::datadir::SUPERVISOR_LOCK_FILE,
        "yak-supervisor",
    )?;
    remove_sockets(&config.run_dir).map_err(|source| Error::CleanSockets {
        dir: config.run_dir.clone(),
        source,
    })?;
    write_client_config(config)?;
    let broker_ids = dynamic::broker_set(config)?;
    let specs = child_specs(config, node_bin, &broker_ids);
    let board = Arc::new(Board::new(specs.iter().map(|s| s.name.clone())));
    if let Some(addr) = config.metrics_addr {
        serve_metrics(addr, &config.run_dir, &board)?;
    }
    let control = crate::control::serve(&config.run_dir).map_err(|source| Error::Control {
        path: config.run_dir.join(crate::control::CONTROL_SOCKET),
        source,
    })?;
    let mut supervisor = Supervisor {
        run_dir: config.run_dir.clone(),
        data_dir: config.data_dir.clone(),
        broker_ids,
        node_bin: node_bin.to_path_buf(),
        config: config.clone(),
        control: Some(control),
        children: specs
            .into_iter()
            .enumerate()
            .map(|(index, spec)| Child {
                spec,
                state: State::NotStarted,
                policy: policy_for(index),
                last_exit: None,
                removal: None,
            })
            .collect(),
        signals,
        signals_seen: 0,
        shutting_down: false,
        readers: Vec::new(),
        board,
        fatal: None,
    };
    let result = supervisor.start_and_watch();
    supervisor.shutdown(if result.is_ok() { "signal" } else { "error" });
    if let Err(e) = remove_sockets(&config.run_dir) {
        tracing::warn!(dir = %config.run_dir.display(), "cannot remove sockets: {e}");
    }
    let lock_path = paths::supervisor_run_lock(&config.run_dir);
    if let Err(e) = std::fs::remove_file(&lock_path) {
        tracing::warn!(path = %lock_path.display(), "cannot remove lock file: {e}");
    }
    drop(lock);
    drop(data_lock);
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// The restart policy of child `index`: ZooKeeper's delay is capped low
/// (every client waits for it), the others back off up to the default.
fn policy_for(index: usize) -> RestartPolicy {
    if index == ZOOKEEPER {
        RestartPolicy::with_backoff_max(ZOOKEEPER_BACKOFF_MAX)
    } else {
        RestartPolicy::new()
    }
}

/// Binds `addr` (an error stops start-up before any child runs) and serves
/// `GET /metrics` there from its own threads, gathered at each scrape.
fn serve_metrics(
    addr: std::net::SocketAddr,
    run_dir: &Path,
    board: &Arc<Board>,
) -> Result<(), Error> {
    let bind_err = |source| Error::Metrics { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    let scraper = crate::scrape::Scraper::new(run_dir.to_path_buf(), Arc::clone(board));
    crate::http::serve(
        listener,
        Arc::new(move || crate::metrics::render(&scraper.snapshot())),
    )
    .map_err(bind_err)?;
    tracing::info!("metrics at http://{addr}/metrics");
    Ok(())
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, core) => {
            format!(
                "killed by {}{}",
                signal.as_str(),
                if core { " (core dumped)" } else { "" }
            )
        }
        other => format!("{other:?}"),
    }
}

impl Supervisor {
    /// Returns when a signal asks for shutdown, or with an error at start-up.
    fn start_and_watch(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        self.start(ZOOKEEPER, now)?;
        if !self.wait_for_zookeeper()? {
            return Ok(());
        }
        // Brokers, then workers (which wait for the brokers to register).
        let now = Instant::now();
        for index in 1..self.children.len() {
            self.start(index, now)?;
        }
        let started: Vec<String> = self
            .children
            .iter()
            .map(|c| match c.pid() {
                Some(pid) => format!("{}={pid}", c.spec.name),
                None => format!("{}=(down)", c.spec.name),
            })
            .collect();
        tracing::info!("all children started: {}", started.join(" "));
        while !self.signalled() {
            self.tick(Instant::now());
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
            std::thread::sleep(TICK);
        }
        Ok(())
    }

    /// Waits until ZooKeeper accepts a connection; `false` if a signal came first.
    fn wait_for_zookeeper(&mut self) -> Result<bool, Error> {
        let path = paths::zookeeper_socket(&self.run_dir);
        let begin = Instant::now();
        loop {
            if self.signalled() {
                return Ok(false);
            }
            self.tick(Instant::now());
            if self.children[ZOOKEEPER].state == State::GaveUp {
                return Err(Error::ZookeeperGaveUp { path });
            }
            if path.exists() && UnixStream::connect(&path).is_ok() {
                tracing::info!(socket = %path.display(), "zookeeper ready");
                return Ok(true);
            }
            if begin.elapsed() >= ZOOKEEPER_READY_TIMEOUT {
                return Err(Error::ZookeeperTimeout {
                    path,
                    waited_ms: begin.elapsed().as_millis(),
                });
            }
            std::thread::sleep(ZOOKEEPER_READY_POLL);
        }
    }

    /// True once SIGINT, SIGTERM or SIGHUP has arrived (counts every arrival).
    fn signalled(&mut self) -> bool {
        for signal in self.signals.pending() {
            self.signals_seen += 1;
            tracing::info!(signal, count = self.signals_seen, "signal received");
        }
        self.signals_seen > 0
    }

    /// Spawns child `index` and starts its output readers.
    fn start(&mut self, index: usize, now: Instant) -> Result<(), SpawnError> {
        let child = &mut self.children[index];
        let spawned = spawn::spawn(&child.spec)?;
        child.state = State::Running {
            pid: spawned.pid,
            since: now,
        };
        child.policy.started(now);
        self.board.started(index, spawned.pid.as_raw());
        tracing::info!(child = %child.spec.name, pid = %spawned.pid, "started");
        if let Some(exit) = child.last_exit.take() {
            report::report_restart(
                &self.run_dir,
                exit.report(&child.spec.name, spawned.pid.as_raw() as u32),
            );
        }
        for (fd, sink) in [
            (spawned.stdout, Sink::Stdout),
            (spawned.stderr, Sink::Stderr),
        ] {
            match output::forward(&child.spec.name, fd, sink) {
                Ok(handle) => self.readers.push(handle),
                Err(e) => {
                    tracing::error!(child = %child.spec.name, "cannot start output reader: {e}")
                }
            }
        }
        self.readers.retain(|r| !r.is_finished());
        Ok(())
    }

    /// Reaps exited children and restarts those whose backoff has passed.
    fn tick(&mut self, now: Instant) {
        self.reap(now);
        if self.shutting_down {
            return;
        }
        self.take_orders(now);
        for index in 0..self.children.len() {
            let due =
                matches!(self.children[index].state, State::Backoff { until } if until <= now);
            if due {
                if let Err(e) = self.start(index, now) {
                    tracing::error!("{e}");
                    self.decide(index, now);
                }
            }
        }
    }

    /// Collects every exited child without blocking.
    fn reap(&mut self, now: Instant) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("waitpid failed: {e}");
                    return;
                }
                Ok(status) => status,
            };
            let Some(pid) = status.pid() else { continue };
            if !matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            let Some(index) = self.children.iter().position(|c| c.pid() == Some(pid)) else {
                continue;
            };
            self.exited(index, status, now);
        }
    }

    fn exited(&mut self, index: usize, status: WaitStatus, now: Instant) {
        self.board.stopped(index);
        let child = &mut self.children[index];
        let up_ms = match child.state {
            State::Running { since, .. } => now.saturating_duration_since(since).as_millis(),
            _ => 0,
        };
        if self.shutting_down {
            tracing::info!(child = %child.spec.name, "{}", describe(status));
            child.state = State::Stopped;
            return;
        }
        if let Some(removal) = child.removal.take() {
            tracing::info!(child = %child.spec.name, "removed: {}", describe(status));
            child.state = State::Stopped;
            if let Some(pid) = status.pid() {
                report_broker_removed(&self.run_dir, removal.broker_id(), pid.as_raw() as u32);
            }
            removal.done();
            return;
        }
        tracing::warn!(child = %child.spec.name, up_ms, "{}", describe(status));
        if let Some(pid) = status.pid() {
            child.last_exit = Some(Exit::new(pid.as_raw() as u32, status, report::now_ms()));
        }
        if let (Some(id), Some(pid)) = (paths::broker_id_of(&child.spec.name), status.pid()) {
            report_broker_down(&self.run_dir, id, pid.as_raw() as u32);
        }
        self.decide(index, now);
    }

    /// Applies the restart policy to a child that is down.
    fn decide(&mut self, index: usize, now: Instant) {
        let child = &mut self.children[index];
        match child.policy.exited(now) {
            Decision::RestartAt(until) => {
                let delay_ms = until.saturating_duration_since(now).as_millis();
                tracing::info!(child = %child.spec.name, delay_ms, "restarting after backoff");
                if let Some(exit) = &mut child.last_exit {
                    exit.delay_ms = delay_ms as u64;
                }
                child.state = State::Backoff { until };
            }
            Decision::GiveUp if index == ZOOKEEPER => {
                let last = match child
                    .last_exit
                    .as_ref()
                    .map(|e| (e.exit_code, e.signal.as_deref()))
                {
                    Some((Some(code), _)) => format!("exited with status {code}"),
                    Some((None, Some(signal))) => format!("killed by {signal}"),
                    _ => "unknown".to_string(),
                };
                child.state = State::GaveUp;
                self.fatal = Some(Error::ZookeeperCrashLoop {
                    restarts: RESTARTS_MAX,
                    window_s: RESTART_WINDOW.as_secs(),
                    last,
                });
            }
            Decision::GiveUp => {
                tracing::error!(
                    child = %child.spec.name,
                    "giving up: more than {RESTARTS_MAX} restarts within {} s; the other children keep running",
                    RESTART_WINDOW.as_secs()
                );
                child.state = State::GaveUp;
            }
        }
    }

    /// Stops every child: workers first, then brokers, then ZooKeeper; reaps them all.
    fn shutdown(&mut self, reason: &str) {
        self.shutting_down = true;
        let signals_at_start = self.signals_seen;
        tracing::info!(reason, "shutting down");
        for child in &mut self.children {
            if !matches!(child.state, State::Running { .. }) {
                child.state = State::Stopped;
            }
        }
        let is_broker = |i: usize| self.children[i].spec.name.starts_with("broker-");
        let workers: Vec<usize> = (1..self.children.len())
            .filter(|i| !is_broker(*i))
            .collect();
        let brokers: Vec<usize> = (1..self.children.len()).filter(|i| is_broker(*i)).collect();
        let hurry = self.stop_group(&workers, signals_at_start, false);
        let hurry = self.stop_group(&brokers, signals_at_start, hurry);
        self.stop_group(&[ZOOKEEPER], signals_at_start, hurry);
        debug_assert!(self.children.iter().all(|c| c.pid().is_none()));
        // Children of children (if any were left in a group) are not ours to reap.
        self.reap(Instant::now());
        self.drain_readers();
    }

    /// SIGTERM, grace period, SIGKILL for the children at `indices`; returns
    /// true if a new signal asked to hurry (the caller then skips the grace).
    fn stop_group(&mut self, indices: &[usize], signals_at_start: usize, mut hurry: bool) -> bool {
        let running = |s: &Self| indices.iter().any(|&i| s.children[i].pid().is_some());
        if !running(self) {
            return hurry;
        }
        if !hurry {
            self.signal_all(indices, Signal::SIGTERM);
            let deadline = Instant::now() + SHUTDOWN_GRACE;
            while running(self) && Instant::now() < deadline {
                std::thread::sleep(TICK);
                self.reap(Instant::now());
                if self.signalled() && self.signals_seen > signals_at_start {
                    tracing::warn!("second signal: killing at once");
                    hurry = true;
                    break;
                }
            }
        }
        if running(self) {
            self.signal_all(indices, Signal::SIGKILL);
            for &index in indices {
                if let Some(pid) = self.children[index].pid() {
                    self.wait_blocking(index, pid);
                }
            }
        }
        hurry
    }

    /// Signals each running child's process group (it leads its own group).
    fn signal_all(&self, indices: &[usize], signal: Signal) {
        for &index in indices {
            let child = &self.children[index];
            if let Some(pid) = child.pid() {
                tracing::info!(child = %child.spec.name, %pid, "sending {}", signal.as_str());
                match killpg(pid, signal) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => tracing::error!(child = %child.spec.name, %pid, "kill failed: {e}"),
                }
            }
        }
    }

    fn wait_blocking(&mut self, index: usize, pid: Pid) {
        loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.exited(index, status, Instant::now());
                    return;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(child = %self.children[index].spec.name, %pid, "waitpid failed: {e}");
                    self.children[index].state = State::Stopped;
                    return;
                }
            }
        }
    }

    /// Lets readers print the children's last lines; gives up after a bound.
    fn drain_readers(&mut self) {
        let deadline = Instant::now() + READERS_DRAIN_TIMEOUT;
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(
                limits::SUPERVISOR_READERS_DRAIN_POLL_MS,
            ));
        }
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rundir::client_config_text;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn given_partitioner_when_writing_client_config_should_quote_the_path() {
        let mut config = Config {
            run_dir: "/r".into(),
            data_dir: "/d".into(),
            brokers: 1,
            zookeeper_args: Vec::new(),
            broker_args: Vec::new(),
            partitioner: None,
            producers: 0,
            consumers: 0,
            workers: crate::config::Workers::default(),
            metrics_addr: None,
            kafka_port_base: None,
        };
        assert_eq!(client_config_text(&config), None);
        config.partitioner = Some("/p/a \"b\".so".into());
        let text = client_config_text(&config).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["partitioner"].as_str(), Some("/p/a \"b\".so"));
    }

    #[test]
    fn given_config_when_building_specs_should_name_and_flag_children() {
        let config = Config {
            run_dir: "/r".into(),
            data_dir: "/d".into(),
            brokers: 2,
            zookeeper_args: vec!["--session-timeout-ms".into(), "600".into()],
            broker_args: vec!["--fsync".into(), "never".into()],
            partitioner: None,
            producers: 1,
            consumers: 2,
            workers: crate::config::Workers::default(),
            metrics_addr: None,
            kafka_port_base: None,
        };
        let specs = child_specs(&config, Path::new("/bin/yak-node"), &[1, 2]);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "zookeeper",
                "broker-1",
                "broker-2",
                "producer-1",
                "consumer-1",
                "consumer-2"
            ]
        );
        assert_eq!(
            specs[3].args,
            [
                "worker",
                "produce",
                "--cluster",
                "/r",
                "--name",
                "producer-1",
                "--topic",
                "workers",
                "--rate",
                "5"
            ]
            .into_iter()
            .chain(["--message-bytes", "64"])
            .collect::<Vec<_>>()
        );
        assert_eq!(
            specs[5].args,
            [
                "worker",
                "consume",
                "--cluster",
                "/r",
                "--name",
                "consumer-2",
                "--topic",
                "workers",
                "--group",
                "workers"
            ]
        );
        assert_eq!(
            specs[0].args,
            [
                "zookeeper",
                "--run-dir",
                "/r",
                "--data-dir",
                "/d",
                "--session-timeout-ms",
                "600"
            ]
        );
        assert_eq!(
            specs[2].args,
            [
                "broker",
                "--id",
                "2",
                "--run-dir",
                "/r",
                "--data-dir",
                "/d",
                "--fsync",
                "never"
            ]
        );
    }

    #[test]
    fn given_lock_held_when_locking_again_should_say_another_supervisor_runs() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_run_dir(dir.path()).unwrap();
        let err = lock_run_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("another yak-supervisor is running in"),
            "{err}"
        );
    }

    #[test]
    fn given_new_or_open_data_dir_when_preparing_should_leave_it_mode_0700() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
        for data_dir in [dir.path().join("new/nested"), existing] {
            let config = Config {
                run_dir: dir.path().join("run"),
                data_dir: data_dir.clone(),
                brokers: 1,
                zookeeper_args: Vec::new(),
                broker_args: Vec::new(),
                partitioner: None,
                producers: 0,
                consumers: 0,
                workers: crate::config::Workers::default(),
                metrics_addr: None,
                kafka_port_base: None,
            };
            prepare_dirs(&config).unwrap();
            for d in [&config.run_dir, &data_dir] {
                let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", d.display());
            }
        }
    }

    #[test]
    fn given_children_when_choosing_restart_policies_should_cap_only_zookeeper_low() {
        let now = Instant::now();
        let delays = |mut p: RestartPolicy| -> Vec<Duration> {
            (0..4)
                .map(|i| match p.exited(now + Duration::from_secs(i)) {
                    Decision::RestartAt(at) => at - (now + Duration::from_secs(i)),
                    Decision::GiveUp => Duration::ZERO,
                })
                .collect()
        };
        assert!(delays(policy_for(ZOOKEEPER))
            .iter()
            .all(|d| *d <= ZOOKEEPER_BACKOFF_MAX));
        assert!(
            delays(policy_for(1))
                .iter()
                .any(|d| *d > ZOOKEEPER_BACKOFF_MAX),
            "brokers back off further"
        );
    }

    #[test]
    fn given_stale_sockets_when_cleaning_should_remove_only_sockets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broker-1.sock"), "").unwrap();
        std::fs::write(dir.path().join("keep.txt"), "").unwrap();
        remove_sockets(dir.path()).unwrap();
        assert!(!dir.path().join("broker-1.sock").exists());
        assert!(dir.path().join("keep.txt").exists());
    }
}
