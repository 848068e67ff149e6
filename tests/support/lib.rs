//! End-to-end test support for YaK: [`TestCluster`] starts a real cluster
//! (`yak-supervisor` forking one `yak-node zookeeper` and N `yak-node
//! broker`s) from the built binaries in its own temp dir, runs `yak-node`
//! client commands against it with bounded timeouts, and on `Drop` stops the
//! supervisor, kills whatever is left and prints the cluster log if the test
//! is failing.
//!
//! Binaries come from `$YAK_BIN_DIR`, else `<workspace>/target/release` (when
//! the tests are compiled without debug assertions), else `target/debug`.
//! Every wait is bounded: nothing here can hang a test run.

#![warn(missing_docs)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a client command may run before it is killed and the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`TestCluster::start`] waits for every broker to be alive.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `Drop` waits after SIGTERM before it SIGKILLs the supervisor.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of the cluster log printed when a test fails.
const LOG_TAIL_LINES: usize = 200;
/// Sleep between two polls of a condition.
const POLL: Duration = Duration::from_millis(50);

/// One consumed record of `consume --format json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    /// Partition index.
    pub partition: u64,
    /// Offset in the partition.
    pub offset: u64,
    /// Key, if any.
    pub key: Option<String>,
    /// Value.
    pub value: String,
}

/// Parses the JSON lines `consume --format json` prints; panics on a line
/// that is not a record.
pub fn parse_records(stdout: &[u8]) -> Vec<Rec> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            Rec {
                partition: v["partition"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no partition: {l}")),
                offset: v["offset"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no offset: {l}")),
                key: v["key"].as_str().map(str::to_string),
                value: v["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no value: {l}"))
                    .to_string(),
            }
        })
        .collect()
}

/// The directory holding `yak-node` and `yak-supervisor`; panics with a clear
/// message when either is missing.
pub fn bin_dir() -> PathBuf {
    let dir = match std::env::var_os("YAK_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None if cfg!(debug_assertions) => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug")
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release"),
    };
    for name in ["yak-node", "yak-supervisor"] {
        let bin = dir.join(name);
        assert!(
            bin.is_file(),
            "YaK binary {} not found; run `cargo build --release --workspace --bins` (make test does), \
             or point YAK_BIN_DIR at a directory holding yak-node and yak-supervisor",
            bin.display()
        );
    }
    dir
}

/// The `yak-node` binary.
pub fn yak_node_bin() -> PathBuf {
    bin_dir().join("yak-node")
}

/// The partitioner plugin (or loader fixture) `name` as built by `make
/// plugins` / `make fixtures`: `<bin dir>/libyak_partitioner_<name>.so` with
/// dashes as underscores (`round-robin`, `fixture-wrong-abi`); panics with a
/// hint when it is missing.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = bin_dir().join(format!("libyak_partitioner_{}.so", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "plugin {} not found; run `make plugins fixtures` (make test does)",
        path.display()
    );
    path
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`;
/// panics naming `what` when time runs out.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(POLL);
    }
}

/// Runs `yak-node ARGS` (no `--cluster` added) with `input` on stdin, killing
/// it and panicking if it runs longer than `timeout`.
pub fn run_yak_node(args: &[&str], input: Option<&[u8]>, timeout: Duration) -> Output {
    let mut cmd = Command::new(yak_node_bin());
    cmd.args(args).env_remove("YAK_CLUSTER");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("yak-node {}", abbreviate(&args.join(" ")));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let writer = input.map(|data| {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        let data = data.to_vec();
        // A client that exits early closes its stdin: ignore the broken pipe.
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let out = wait_output(child, timeout, &what);
    if let Some(w) = writer {
        w.join().expect("stdin writer thread panicked");
    }
    out
}

fn abbreviate(s: &str) -> String {
    if s.len() <= 200 {
        s.to_string()
    } else {
        format!(
            "{}... ({} bytes)",
            s.chars().take(200).collect::<String>(),
            s.len()
        )
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` (stdout/stderr piped) at most `timeout`, collecting its
/// output; kills, reaps and panics with its stderr on timeout.
fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    };
    let stdout = out.join().expect("stdout reader panicked");
    let stderr = err.join().expect("stderr reader panicked");
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{what} did not finish within {timeout:?} and was killed; stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// A `yak-node` client running in the background (see
/// [`TestCluster::spawn_yak`]); killed and reaped when dropped.
pub struct Background {
    child: Option<Child>,
    what: String,
}

impl Background {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits at most `timeout` for the process to exit and returns its
    /// output; kills it and panics when it runs longer.
    pub fn wait_output(mut self, timeout: Duration) -> Output {
        let child = self
            .child
            .take()
            .expect("a Background always holds its child until waited");
        wait_output(child, timeout, &self.what)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Options of a cluster: broker count, extra `[zookeeper]` / `[broker]` keys
/// of the generated cluster.toml and extra supervisor flags.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    brokers: u32,
    top_level: Vec<(String, String)>,
    zookeeper: Vec<(String, String)>,
    broker: Vec<(String, String)>,
    supervisor_args: Vec<String>,
}

impl ClusterBuilder {
    /// Number of brokers (ids 1..=n).
    pub fn brokers(mut self, n: u32) -> Self {
        self.brokers = n;
        self
    }

    /// Adds a top-level `key = value` (e.g. `partitioner`); `value` is TOML text.
    pub fn top_level(mut self, key: &str, value: &str) -> Self {
        self.top_level.push((key.into(), value.into()));
        self
    }

    /// Adds `key = value` to `[zookeeper]`; `value` is TOML text (`"600"`, `"\"x\""`).
    pub fn zookeeper(mut self, key: &str, value: &str) -> Self {
        self.zookeeper.push((key.into(), value.into()));
        self
    }

    /// Adds `key = value` to `[broker]`; `value` is TOML text.
    pub fn broker(mut self, key: &str, value: &str) -> Self {
        self.broker.push((key.into(), value.into()));
        self
    }

    /// Adds a command-line flag of `yak-supervisor`.
    pub fn supervisor_arg(mut self, arg: &str) -> Self {
        self.supervisor_args.push(arg.into());
        self
    }

    /// Starts the cluster and waits until every broker is alive.
    pub fn start(self) -> TestCluster {
        TestCluster::launch(self)
    }
}

/// A running YaK cluster in its own temp dir. Stopped, killed and reaped on
/// `Drop`; its log is printed to stderr then if the test is panicking.
pub struct TestCluster {
    dir: TempDir,
    run_dir: PathBuf,
    log_path: PathBuf,
    brokers: u32,
    supervisor: Option<Child>,
    /// The supervisor's extra arguments, to start it again the same way.
    supervisor_args: Vec<String>,
}

/// A JSON string is a valid TOML basic string for the paths used here.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

impl TestCluster {
    /// A builder with `brokers` brokers and no extra settings.
    pub fn builder(brokers: u32) -> ClusterBuilder {
        ClusterBuilder {
            brokers,
            top_level: Vec::new(),
            zookeeper: Vec::new(),
            broker: Vec::new(),
            supervisor_args: Vec::new(),
        }
    }

    /// Starts a cluster of `brokers` brokers with default settings and waits
    /// (at most [`START_TIMEOUT`]) until all are alive.
    pub fn start(brokers: u32) -> TestCluster {
        Self::builder(brokers).start()
    }

    fn launch(b: ClusterBuilder) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("yak-e2e-")
            .tempdir()
            .expect("cannot create a temp dir");
        let run_dir = dir.path().join("run");
        let data_dir = dir.path().join("data");
        fs::create_dir(&run_dir).expect("cannot create run dir");
        fs::create_dir(&data_dir).expect("cannot create data dir");
        let mut toml = format!(
            "run_dir = {}\ndata_dir = {}\nbrokers = {}\n",
            toml_string(&run_dir.to_string_lossy()),
            toml_string(&data_dir.to_string_lossy()),
            b.brokers
        );
        for (k, v) in &b.top_level {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        toml.push_str("\n[zookeeper]\n");
        for (k, v) in &b.zookeeper {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        toml.push_str("\n[broker]\n");
        for (k, v) in &b.broker {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        let config = dir.path().join("cluster.toml");
        fs::write(&config, toml).expect("cannot write cluster.toml");
        let log_path = dir.path().join("cluster.log");
        fs::File::create(&log_path).expect("cannot create cluster.log");
        let mut cluster = TestCluster {
            dir,
            run_dir,
            log_path,
            brokers: b.brokers,
            supervisor: None,
            supervisor_args: b.supervisor_args,
        };
        cluster.supervisor = Some(cluster.spawn_supervisor());
        cluster.wait_for_alive_brokers(b.brokers, START_TIMEOUT);
        cluster
    }

    /// Starts `yak-supervisor` on this cluster's config and dirs, its
    /// output appended to the cluster log.
    fn spawn_supervisor(&self) -> Child {
        let bins = bin_dir();
        let log = fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("cannot open cluster.log");
        let mut cmd = Command::new(bins.join("yak-supervisor"));
        cmd.arg("--config")
            .arg(self.dir.path().join("cluster.toml"))
            .arg("--node-bin")
            .arg(bins.join("yak-node"));
        cmd.args(&self.supervisor_args)
            .env_remove("YAK_CLUSTER")
            .stdin(Stdio::null());
        cmd.stdout(log.try_clone().expect("cannot clone log file"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        // If the test process dies without running Drop (killed by a CI
        // timeout), the supervisor gets SIGTERM and stops its children. The
        // signal follows the spawning thread; a cluster lives in one test thread.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        cmd.spawn().expect("cannot start yak-supervisor")
    }

    /// Stops the supervisor with SIGTERM (panics if it does not exit within
    /// the stop grace) and starts it again with the same config and dirs;
    /// waits until `brokers` brokers are alive.
    pub fn restart_supervisor(&mut self, brokers: u32) {
        let status = self.signal_supervisor(Signal::SIGTERM, STOP_GRACE);
        assert!(status.is_some(), "the supervisor did not stop on SIGTERM");
        self.supervisor = Some(self.spawn_supervisor());
        self.wait_for_alive_brokers(brokers, START_TIMEOUT);
    }

    /// Waits (at most `timeout`) until `cluster status` shows `n` alive
    /// brokers; panics with the cluster log when the supervisor exits or time
    /// runs out.
    pub fn wait_for_alive_brokers(&mut self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self
                .supervisor
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "yak-supervisor exited with {s} while starting; log:\n{}",
                    self.log_text()
                );
            }
            if let Some(status) = self.try_status_json() {
                let alive = status["brokers"].as_array().map_or(0, |b| {
                    b.iter().filter(|b| b["alive"] == Value::Bool(true)).count()
                });
                if alive == n as usize {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "cluster did not show {n} alive brokers within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Number of brokers the cluster was started with.
    pub fn broker_count(&self) -> u32 {
        self.brokers
    }

    /// The run dir (sockets, lock file): what `--cluster` names.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The temp dir holding run/, data/, cluster.toml and cluster.log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process id of the supervisor, while it runs.
    pub fn supervisor_pid(&self) -> Option<u32> {
        self.supervisor.as_ref().map(Child::id)
    }

    /// Everything the supervisor and its children wrote so far.
    pub fn log_text(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn args_with_cluster<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let run = self.run_dir.to_str().expect("temp dir paths are UTF-8");
        let mut v = args.to_vec();
        v.extend(["--cluster", run]);
        v
    }

    /// Runs `yak-node ARGS --cluster RUN` (killed after [`CLIENT_TIMEOUT`]).
    pub fn yak(&self, args: &[&str]) -> Output {
        run_yak_node(&self.args_with_cluster(args), None, CLIENT_TIMEOUT)
    }

    /// Like [`TestCluster::yak`], with `input` on stdin.
    pub fn yak_stdin(&self, args: &[&str], input: &str) -> Output {
        run_yak_node(
            &self.args_with_cluster(args),
            Some(input.as_bytes()),
            CLIENT_TIMEOUT,
        )
    }

    /// Runs `yak-node ARGS --cluster RUN` and panics unless it exits 0;
    /// returns its stdout.
    pub fn yak_ok(&self, args: &[&str]) -> String {
        let out = self.yak(args);
        assert_success(&out, &args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`TestCluster::yak_ok`], with `input` on stdin.
    pub fn yak_stdin_ok(&self, args: &[&str], input: &str) -> String {
        let out = self.yak_stdin(args, input);
        assert_success(&out, &args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `yak-node ARGS --cluster RUN` in the background, stdout and
    /// stderr piped; see [`Background::wait_output`].
    pub fn spawn_yak(&self, args: &[&str]) -> Background {
        let full = self.args_with_cluster(args);
        let child = Command::new(yak_node_bin())
            .args(&full)
            .env_remove("YAK_CLUSTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start yak-node in the background");
        Background {
            child: Some(child),
            what: format!("yak-node {}", abbreviate(&args.join(" "))),
        }
    }

    /// Like [`TestCluster::spawn_yak`], with stdin piped: returns the
    /// process and its stdin (drop the stdin to send end-of-file).
    pub fn spawn_yak_stdin(&self, args: &[&str]) -> (Background, std::process::ChildStdin) {
        let full = self.args_with_cluster(args);
        let mut child = Command::new(yak_node_bin())
            .args(&full)
            .env_remove("YAK_CLUSTER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start yak-node in the background");
        let stdin = child.stdin.take().expect("stdin was piped");
        (
            Background {
                child: Some(child),
                what: format!("yak-node {}", abbreviate(&args.join(" "))),
            },
            stdin,
        )
    }

    /// `cluster status --json`, or `None` if the command fails.
    pub fn try_status_json(&self) -> Option<Value> {
        let out = run_yak_node(
            &self.args_with_cluster(&["cluster", "status", "--json"]),
            None,
            CLIENT_TIMEOUT,
        );
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `cluster status --json`; panics if it fails or is not JSON.
    pub fn status_json(&self) -> Value {
        let out = self.yak_ok(&["cluster", "status", "--json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("cluster status --json is not JSON ({e}):\n{out}"))
    }

    /// Live processes (not zombies, not this test) whose command line
    /// contains this cluster's temp dir, as `(pid, command line)`.
    pub fn cluster_processes(&self) -> Vec<(i32, String)> {
        processes_mentioning(&self.dir.path().to_string_lossy())
    }

    /// The pid of the running `yak-node zookeeper` of this cluster, if any.
    pub fn zookeeper_pid(&self) -> Option<i32> {
        self.cluster_processes()
            .into_iter()
            .find(|(_, cmd)| cmd.split(' ').nth(1) == Some("zookeeper"))
            .map(|(pid, _)| pid)
    }

    /// Sends `signal` to the supervisor and waits at most `timeout` for it to
    /// exit; returns its exit status, or `None` if it is still running.
    pub fn signal_supervisor(&mut self, signal: Signal, timeout: Duration) -> Option<ExitStatus> {
        let child = self.supervisor.as_mut()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
        let _ = kill(pid, signal);
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.supervisor = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
    }

    fn stop(&mut self) {
        if self
            .signal_supervisor(Signal::SIGTERM, STOP_GRACE)
            .is_none()
        {
            if let Some(mut c) = self.supervisor.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Children die with the supervisor (PDEATHSIG); anything of this
        // cluster still alive (an orphaned client, a stuck child) is killed.
        for (pid, _) in self.cluster_processes() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Panics with the command's stderr unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "yak-node {} failed with {}\nstdout:\n{}\nstderr:\n{}",
        abbreviate(what),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Live processes (not zombies, not this process) whose command line
/// contains `needle`, as `(pid, command line with spaces between args)`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        // A zombie has an empty cmdline; a vanished process reads as an error.
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if !cmd.is_empty() && cmd.contains(needle) {
            found.push((pid, cmd));
        }
    }
    found
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "---- cluster log ({}), last {} of {} lines ----\n{}\n---- end of cluster log ----",
                self.log_path.display(),
                tail.len(),
                lines.len(),
                tail.join("\n")
            );
        }
    }
}
