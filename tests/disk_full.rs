//! A real full disk: the cluster's data dir is a small tmpfs, filled up while
//! a producer writes. Produce must get a clear storage error, the broker must
//! stay up and keep serving what it acknowledged, and writes must resume once
//! space is freed. Needs permission to mount a tmpfs (root, as on CI); where
//! that is refused the test says so and checks nothing else.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use yak_tests::{parse_records, wait_until, TestCluster};

const TMPFS_BYTES: u64 = 16 * 1024 * 1024;
/// Space left free for the log once the filler is written.
const HEADROOM_BYTES: u64 = 600 * 1024;
const MESSAGE_BYTES: usize = 8 * 1024;

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).expect("mount point");
        let options = format!("size={TMPFS_BYTES},mode=0700");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn free_bytes(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.0).expect("statvfs");
        s.blocks_available() * s.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// (acknowledged, sent) from the producer's summary line.
fn summary(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("produced "))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let acked = words[1].parse().expect("acknowledged count");
    let sent = words[3].parse().expect("sent count");
    (acked, sent)
}

fn broker_pid(c: &TestCluster) -> (i64, bool) {
    let s: Value = c.status_json();
    let b = &s["brokers"][0];
    (
        b["pid"].as_i64().expect("pid"),
        b["alive"].as_bool().expect("alive"),
    )
}

fn read_back(c: &TestCluster) -> Vec<String> {
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "full",
        "--from-beginning",
        "--timeout-ms",
        "1500",
        "--format",
        "json",
    ]);
    parse_records(out.as_bytes())
        .into_iter()
        .map(|r| r.value)
        .collect()
}

#[test]
fn given_data_dir_fills_up_when_producing_should_refuse_with_storage_error_keep_serving_and_resume_after_space_is_freed(
) {
    let scratch = tempfile::Builder::new()
        .prefix("yak-full-")
        .tempdir()
        .expect("tempdir");
    let data = scratch.path().join("data");
    let fs = match Tmpfs::mount(&data) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a tmpfs ({e}); a real full disk needs root");
            return;
        }
    };
    let c = TestCluster::builder(1)
        .supervisor_arg("--data-dir")
        .supervisor_arg(&data.to_string_lossy())
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "full",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    c.yak_ok(&["produce", "--topic", "full", "--message", "before"]);

    // Leave HEADROOM_BYTES free, then try to write three times that.
    let filler = data.join("filler");
    let fill = fs.free_bytes().saturating_sub(HEADROOM_BYTES);
    std::fs::write(&filler, vec![7u8; fill as usize]).expect("filler");
    println!(
        "tmpfs: {} KiB free after the filler",
        fs.free_bytes() / 1024
    );
    let (pid_before, _) = broker_pid(&c);
    let lines: String = (0..(3 * HEADROOM_BYTES as usize / MESSAGE_BYTES))
        .map(|i| format!("m{i:05}-{}\n", "x".repeat(MESSAGE_BYTES)))
        .collect();
    let t = std::time::Instant::now();
    let out = c.yak_stdin(
        &[
            "produce",
            "--topic",
            "full",
            "--acks",
            "all",
            "--linger-ms",
            "0",
            "--delivery-timeout-ms",
            "5000",
        ],
        &lines,
    );
    println!("produce on a full disk took {} ms", t.elapsed().as_millis());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let (acked, sent) = summary(&err);
    println!(
        "full disk: {acked} of {sent} acknowledged; exit {}; stderr: {}",
        out.status,
        err.lines().take(4).collect::<Vec<_>>().join(" / ")
    );
    assert!(
        !out.status.success(),
        "every message was acknowledged on a full disk?\n{err}"
    );
    assert!(acked > 0, "nothing fit in {HEADROOM_BYTES} bytes:\n{err}");
    assert!(
        err.contains("No space left on device") || err.contains("storage"),
        "the refusal does not say the disk is full:\n{}",
        err.lines().take(5).collect::<Vec<_>>().join("\n")
    );

    // The broker is up (same process) and serves everything it acknowledged.
    let (pid_after, alive) = broker_pid(&c);
    assert_eq!(
        (pid_after, alive),
        (pid_before, true),
        "the broker died or restarted on a full disk"
    );
    let values = read_back(&c);
    assert_eq!(values.first().map(String::as_str), Some("before"));
    let produced: Vec<&String> = values.iter().skip(1).collect();
    assert!(
        produced.len() as u64 >= acked,
        "{} records read back, {acked} were acknowledged",
        produced.len()
    );
    // In order, none twice; after a refused batch the producer goes on under a
    // fresh producer id, so messages that fit later may follow a hole.
    let mut last: Option<u64> = None;
    for v in &produced {
        let n: u64 = v
            .get(1..6)
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("damaged record: {}", &v[..v.len().min(12)]));
        assert!(
            v.len() == 7 + MESSAGE_BYTES && v.as_bytes()[6] == b'-',
            "damaged record m{n:05}"
        );
        assert!(
            last.is_none_or(|l| n > l),
            "record m{n:05} out of order after m{:05}",
            last.unwrap_or(0)
        );
        last = Some(n);
    }

    // Free the space: writes resume without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    wait_until(
        "produce to succeed after space was freed",
        Duration::from_secs(20),
        || {
            let out = c.yak(&[
                "produce",
                "--topic",
                "full",
                "--acks",
                "all",
                "--message",
                "after",
                "--delivery-timeout-ms",
                "3000",
            ]);
            out.status.success().then_some(())
        },
    );
    let values = read_back(&c);
    assert_eq!(
        values.last().map(String::as_str),
        Some("after"),
        "the write after freeing space is not readable"
    );
    assert_eq!(broker_pid(&c), (pid_before, true), "the broker restarted");
    drop(c);
    drop(fs);
}
