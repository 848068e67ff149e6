//! `yak-node cluster watch` through real processes (issue 15): without a
//! terminal it prints one frame naming each partition and its leader; under
//! a pseudo-terminal (nix's openpty, the screen rebuilt with the vt100
//! parser, so no tmux is needed) the live view shows the new leader after a
//! kill -9 of the old one, and `q` quits with status 0.

#![allow(clippy::unwrap_used)]

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use yak_tests::{assert_success, wait_until, yak_node_bin, TestCluster};

/// The live view's screen in the pseudo-terminal.
const ROWS: u16 = 40;
const COLS: u16 = 130;
/// Upper bound for the view to show something it should.
const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `orders` (3 partitions × 3 replicas) and writes a few records.
fn orders(c: &TestCluster) {
    c.yak_ok(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    c.yak_stdin_ok(&["produce", "--topic", "orders"], "a\nb\nc\nd\n");
}

/// (leader id, leader pid) of orders-0 from `cluster status --json`.
fn leader_of_orders_0(c: &TestCluster) -> Option<(u64, u64)> {
    let s = c.status_json();
    let p = s["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["topic"] == "orders" && p["partition"] == 0)?
        .clone();
    let leader = p["leader"].as_u64()?;
    let pid = s["brokers"]
        .as_array()?
        .iter()
        .find(|b| b["id"] == leader)?["pid"]
        .as_u64()?;
    Some((leader, pid))
}

/// The cells of the partitions-table line naming `name` ("orders-0"):
/// the text after the name, split on the frame's blanks.
fn row_after<'a>(screen: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let line = screen.lines().find(|l| l.contains(&format!("│{name} ")))?;
    let rest = line.split(&format!("│{name} ")).nth(1)?;
    Some(rest.split_whitespace().collect())
}

#[test]
fn given_no_terminal_when_watching_should_print_one_frame_with_topic_and_leader() {
    let c = TestCluster::start(3);
    orders(&c);
    let (leader, _) = wait_until("orders-0 has a leader", SHOW_TIMEOUT, || {
        leader_of_orders_0(&c)
    });
    let started = Instant::now();
    let out = c.yak(&["cluster", "watch", "--interval-ms", "100"]);
    assert_success(&out, "cluster watch");
    let frame = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("one frame in {:?}:\n{frame}", started.elapsed());
    assert!(
        !frame.contains('\x1b'),
        "the plain frame has no escape sequences:\n{frame}"
    );
    for name in ["orders-0", "orders-1", "orders-2"] {
        assert!(
            row_after(&frame, name).is_some(),
            "{name} missing from:\n{frame}"
        );
    }
    let row = row_after(&frame, "orders-0").unwrap();
    assert_eq!(
        row[0],
        leader.to_string(),
        "orders-0's leader column in:\n{frame}"
    );
    assert!(frame.contains("brokers 3/3 alive"), "{frame}");
    assert!(
        frame.contains("topic orders created: 3 partitions × 3 replicas"),
        "events pane in:\n{frame}"
    );
}

/// What the test asks of the pty's master side.
enum ToPty {
    /// Type these bytes.
    Keys(Vec<u8>),
    /// Close the master: the terminal hangs up.
    HangUp,
}

/// `cluster watch` running in a pseudo-terminal; killed and reaped on drop.
/// One thread owns the master: it feeds what the child writes to a vt100
/// parser (the screen) and types what the test sends.
struct PtyWatch {
    child: Child,
    to_pty: mpsc::Sender<ToPty>,
    screen: Arc<Mutex<vt100::Parser>>,
}

/// How long the master thread waits for output before looking at its inbox.
const PTY_POLL_MS: u8 = 20;

fn pump(mut master: File, screen: Arc<Mutex<vt100::Parser>>, inbox: mpsc::Receiver<ToPty>) {
    let mut buf = [0u8; 8192];
    loop {
        match inbox.try_recv() {
            Ok(ToPty::Keys(k)) => master.write_all(&k).unwrap(),
            Ok(ToPty::HangUp) | Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(PTY_POLL_MS)).unwrap_or(0);
        let readable = ready > 0
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
        match readable.then(|| master.read(&mut buf)) {
            Some(Ok(n)) if n > 0 => screen.lock().unwrap().process(&buf[..n]),
            // Nothing to read, or the child exited (EIO): wait for the inbox.
            _ => thread::sleep(Duration::from_millis(u64::from(PTY_POLL_MS))),
        }
    }
}

impl PtyWatch {
    fn start(c: &TestCluster) -> PtyWatch {
        let size = Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("openpty");
        // openpty(3) leaves both ends inheritable: the child must not hold
        // the master, or closing ours would not hang its terminal up.
        fcntl(
            pty.master.as_raw_fd(),
            FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
        )
        .expect("set FD_CLOEXEC");
        let slave = File::from(pty.slave);
        let child = Command::new(yak_node_bin())
            .args(["cluster", "watch", "--interval-ms", "100", "--cluster"])
            .arg(c.run_dir())
            .env_remove("YAK_CLUSTER")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().expect("dup pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("cannot start yak-node cluster watch");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(ROWS).unwrap(),
            NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let (to_pty, inbox) = mpsc::channel();
        let master = File::from(pty.master);
        let parser = Arc::clone(&screen);
        thread::spawn(move || pump(master, parser, inbox));
        PtyWatch {
            child,
            to_pty,
            screen,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until `f` finds what it wants on the screen.
    fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + SHOW_TIMEOUT;
        loop {
            let text = self.text();
            if let Some(v) = f(&text) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "the live view did not show {what} within {SHOW_TIMEOUT:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `timeout` for the process to exit.
    fn wait_exit(&mut self, what: &str, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "cluster watch did not exit {what} within {timeout:?}:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.to_pty.send(ToPty::HangUp);
    }
}

#[test]
fn given_live_view_in_a_pty_when_leader_killed_should_show_new_leader_then_quit_on_q() {
    let c = TestCluster::start(3);
    orders(&c);
    let (old, pid) = wait_until("orders-0 has a leader", SHOW_TIMEOUT, || {
        leader_of_orders_0(&c)
    });
    let watch = PtyWatch::start(&c);
    watch.wait_for("orders-0 led by the first leader", |s| {
        row_after(s, "orders-0")
            .filter(|r| r[0] == old.to_string())
            .map(|_| ())
    });
    let killed_at = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let new = watch.wait_for("a new leader of orders-0", |s| {
        let row = row_after(s, "orders-0")?;
        let leader: u64 = row[0].parse().ok()?;
        (leader != old).then_some(leader)
    });
    let seen_after = killed_at.elapsed();
    let screen = watch.text();
    eprintln!("new leader {new} (was {old}) on screen {seen_after:?} after kill -9:\n{screen}");
    assert!((1..=3).contains(&new), "{screen}");
    let row = row_after(&screen, "orders-0").unwrap().join(" ");
    assert!(
        row.starts_with(&format!("{new} (was {old})")),
        "the leader change is marked: {row}"
    );
    let status: Value = c.status_json();
    let p0 = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == "orders" && p["partition"] == 0)
        .unwrap();
    assert_eq!(
        p0["leader"].as_u64(),
        Some(new),
        "the view agrees with cluster status"
    );
    watch.wait_for("the leader election in the events pane", |s| {
        s.contains(&format!("orders-0 leader {old} → {new}"))
            .then_some(())
    });
    watch.wait_for("the supervisor's restart in the events pane", |s| {
        s.contains(&format!("broker-{old} restarted: pid {pid} → "))
            .then_some(())
    });

    let mut watch = watch;
    watch.to_pty.send(ToPty::Keys(b"q".to_vec())).unwrap();
    let status = watch.wait_exit("on q", Duration::from_secs(3));
    assert!(status.success(), "cluster watch exited with {status}");
    // The master thread may still hold the last bytes written before exit.
    wait_until(
        "the terminal restored (alternate screen left)",
        Duration::from_secs(2),
        || (!watch.screen.lock().unwrap().screen().alternate_screen()).then_some(()),
    );
}

#[test]
fn given_live_view_when_terminal_hangs_up_should_exit_instead_of_spinning() {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let mut watch = PtyWatch::start(&c);
    watch.wait_for("orders-0", |s| row_after(s, "orders-0").map(|_| ()));
    watch.to_pty.send(ToPty::HangUp).unwrap();
    let status = watch.wait_exit("after the terminal hung up", Duration::from_secs(3));
    assert_eq!(
        status.signal(),
        None,
        "no abort (a panic while restoring a dead terminal): {status}"
    );
    assert!(status.success(), "a hang-up is a normal end: {status}");
}
