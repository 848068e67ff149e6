//! Unix-domain sockets through `interprocess`, handed out as std streams so
//! callers get timeouts and `try_clone`.

use interprocess::local_socket::{traits::ListenerExt, GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::uds_local_socket as uds;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A listening socket.
pub struct Listener(uds::Listener);

impl Listener {
    /// Binds `path`, replacing a stale socket file left by a dead process.
    pub fn bind(path: &Path) -> io::Result<Listener> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is served by a running process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let name = path.to_fs_name::<GenericFilePath>()?;
        let listener = ListenerOptions::new()
            .name(name)
            .create_sync_as::<uds::Listener>()?;
        Ok(Listener(listener))
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<UnixStream> {
        let stream = self
            .0
            .incoming()
            .next()
            .unwrap_or_else(|| Err(io::ErrorKind::BrokenPipe.into()))?;
        Ok(UnixStream::from(OwnedFd::from(stream)))
    }
}

/// Connects to the socket at `path` with a timeout on every read and write.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let name = path.to_fs_name::<GenericFilePath>()?;
    let stream: uds::Stream = interprocess::local_socket::traits::Stream::connect(name)?;
    let stream = UnixStream::from(OwnedFd::from(stream));
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// The pid of the process at the other end of a Unix socket
/// (`SO_PEERCRED`), if the kernel tells it.
pub fn peer_pid(stream: &UnixStream) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let pid = getsockopt(stream, PeerCredentials).ok()?.pid();
    u32::try_from(pid).ok().filter(|&p| p != 0)
}

/// The supervisor that started this process: its parent, when the parent
/// is a `yak-supervisor` (none when run by hand).
pub fn supervisor_pid() -> Option<u32> {
    let parent = u32::try_from(nix::unistd::getppid().as_raw()).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).ok()?;
    (comm.trim_end() == SUPERVISOR_COMM).then_some(parent)
}

/// The kernel's name (`comm`) of the supervisor's process.
const SUPERVISOR_COMM: &str = "yak-supervisor";

/// Whether `pid` is one of the cluster's own processes: the supervisor
/// itself or one of its children (ZooKeeper, a broker, a worker). Such a
/// peer may use the connection slots reserved for the cluster.
pub fn is_cluster_process(pid: u32, supervisor: Option<u32>) -> bool {
    let Some(supervisor) = supervisor else {
        return false;
    };
    pid == supervisor || parent_of(pid) == Some(supervisor)
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_parent(&stat)
}

/// The ppid field of a `/proc/<pid>/stat` line: the second field after the
/// command name, which is in parentheses and may hold spaces or parentheses.
fn parse_stat_parent(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_stat_lines_when_parsing_should_find_the_parent_after_the_command_name() {
        assert_eq!(parse_stat_parent("42 (yak-node) S 7 42 42 0"), Some(7));
        assert_eq!(
            parse_stat_parent("42 (a) b (c)) R 9 1"),
            Some(9),
            "a name with spaces and parentheses"
        );
        assert_eq!(parse_stat_parent("garbage"), None);
    }

    #[test]
    fn given_socket_pair_when_asking_for_the_peer_should_name_this_process() {
        let (a, _b) = UnixStream::pair().expect("socket pair");
        assert_eq!(peer_pid(&a), Some(std::process::id()));
    }

    #[test]
    fn given_no_supervisor_or_a_stranger_when_checking_should_not_count_as_a_cluster_process() {
        let me = std::process::id();
        assert!(
            !is_cluster_process(me, None),
            "without a supervisor nobody is reserved a slot"
        );
        let parent = u32::try_from(nix::unistd::getppid().as_raw()).expect("pid");
        assert!(
            is_cluster_process(me, Some(parent)),
            "a child of the supervisor"
        );
        assert!(
            is_cluster_process(parent, Some(parent)),
            "the supervisor itself"
        );
        assert!(
            !is_cluster_process(me, Some(u32::MAX - 1)),
            "a process that is neither"
        );
    }
}
