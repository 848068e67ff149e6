//! `bench restart`: SIGKILLs a broker and measures how long until its
//! restarted process (the supervisor brings it back) answers a request
//! again, log recovery included.

use super::BenchResult;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};
use yak_client::{Admin, ClientError, Connection};
use yak_protocol::{Call, Reply};

/// The broker leading partition 0 of `topic`: the one `--leader-of` kills.
pub fn leader_of(cluster: &Path, topic: &str) -> Result<u32, ClientError> {
    Admin::connect(cluster)?
        .describe_topic(topic)?
        .partitions
        .first()
        .and_then(|p| p.leader)
        .ok_or_else(|| ClientError::Invalid(format!("topic {topic} has no leader for partition 0")))
}

/// Runs the benchmark; `seconds` is the time from the kill to the first answer.
pub fn run(cluster: &Path, broker: u32) -> Result<BenchResult, ClientError> {
    let metadata = Admin::connect(cluster)?.metadata()?;
    let info = metadata
        .brokers
        .iter()
        .find(|b| b.id == broker && b.alive)
        .ok_or_else(|| ClientError::Invalid(format!("broker {broker} is not alive")))?;
    let socket = std::path::PathBuf::from(&info.socket);
    let old_pid = info.pid;
    let logged: u64 = match Connection::connect(&socket)?.call(&Call::LocalPartitions)? {
        Reply::LocalPartitions { partitions } => partitions
            .iter()
            .map(|p| p.log_end_offset - p.log_start_offset)
            .sum(),
        other => return Err(ClientError::Unexpected(format!("{other:?}"))),
    };
    let pid =
        i32::try_from(old_pid).map_err(|_| ClientError::Invalid(format!("bad pid {old_pid}")))?;
    kill(Pid::from_raw(pid), Signal::SIGKILL)
        .map_err(|e| ClientError::Invalid(format!("kill {old_pid}: {e}")))?;
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(60);
    loop {
        let answered = Connection::connect(&socket)
            .and_then(|mut c| c.call(&Call::LocalPartitions))
            .is_ok_and(|r| matches!(r, Reply::LocalPartitions { .. }));
        if answered && std::fs::read_to_string(format!("/proc/{old_pid}/status")).is_err() {
            break;
        }
        if Instant::now() > deadline {
            return Err(ClientError::Invalid(format!(
                "broker {broker} did not come back within 60 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(BenchResult {
        name: format!("restart broker {broker}"),
        messages: logged,
        seconds: killed.elapsed().as_secs_f64(),
        ..BenchResult::default()
    })
}
