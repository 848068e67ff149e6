//! Who is at the other end of a Unix socket: the peer process's pid and
//! uid from `SO_PEERCRED` (the kernel's record of who connected, which the
//! peer cannot forge), and what `/proc` says about a process (its parent,
//! its command line).
//!
//! Owns reading these facts. Never decides who may make which call: the
//! ZooKeeper (`zookeeper/auth.rs`) and the broker (`broker/peers.rs`) do.

use std::os::unix::net::UnixStream;

/// The process that connected a socket, as the kernel recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Its pid (in this process's pid namespace).
    pub pid: u32,
    /// Its user id.
    pub uid: u32,
}

/// The credentials of the process at the other end of `stream`.
pub fn peer_cred(stream: &UnixStream) -> std::io::Result<PeerCred> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)?;
    let pid = u32::try_from(cred.pid()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "SO_PEERCRED gave no pid")
    })?;
    Ok(PeerCred {
        pid,
        uid: cred.uid(),
    })
}

/// The parent pid of process `pid`, from `/proc/<pid>/stat`; `None` if the
/// process is gone or the file does not parse.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// The parent pid from the text of a `/proc/<pid>/stat` file: the field
/// after the state, itself after the command name in parentheses (which may
/// hold spaces and parentheses, so the last `)` ends it).
fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// The command line of process `pid` (`/proc/<pid>/cmdline`, NUL-separated
/// arguments); `None` if the process is gone.
pub fn command_line(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_stat_lines_when_parsing_should_find_the_parent_pid_after_the_name() {
        assert_eq!(parse_stat_ppid("42 (yak-node) S 7 42 42 0 -1"), Some(7));
        assert_eq!(
            parse_stat_ppid("42 (a) b (c) R 9 1"),
            Some(9),
            "a name holding parentheses and spaces"
        );
        assert_eq!(parse_stat_ppid("42 (x) S"), None);
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn given_a_socket_pair_when_asking_the_peer_should_name_this_process_and_its_parent() {
        let (a, _b) = UnixStream::pair().expect("socket pair");
        let me = peer_cred(&a).expect("SO_PEERCRED");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(
            parent_pid(me.pid),
            Some(std::os::unix::process::parent_id())
        );
        let args = command_line(me.pid).expect("own command line");
        assert!(!args.is_empty());
    }
}
