//! Starting one child process: fork, then exec `yak-node` with its stdout and
//! stderr on fresh pipes.
//!
//! Owns: the only `unsafe` of the supervisor (fork and what the child does
//! before exec), and the child's process group, death signal and stdio.
//! Never: waits for, signals or restarts a child; reads its output.

use std::ffi::{c_char, CString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

/// Exit status of a child whose exec failed (as shells use).
pub const EXEC_FAILED_STATUS: i32 = 127;

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("child {child}: argument contains a NUL byte: {arg:?}")]
    Nul { child: String, arg: String },
    #[error("child {child}: cannot create pipe: {source}")]
    Pipe {
        child: String,
        source: nix::errno::Errno,
    },
    #[error("child {child}: cannot open /dev/null: {source}")]
    DevNull {
        child: String,
        source: std::io::Error,
    },
    #[error("child {child}: fork failed: {source}")]
    Fork {
        child: String,
        source: nix::errno::Errno,
    },
}

/// What to run and what to call it in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// `zookeeper` or `broker-<id>`: the prefix of its output lines.
    pub name: String,
    /// Absolute path of the program.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<String>,
}

/// A started child: its pid and the read ends of its stdout and stderr.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Forks and execs `spec`. The child gets its own process group (a terminal
/// Ctrl-C reaches only the supervisor), SIGKILL when the supervisor dies,
/// stdin from /dev/null and stdout/stderr on pipes returned to the caller.
pub fn spawn(spec: &ChildSpec) -> Result<Spawned, SpawnError> {
    // Everything the child needs is built here: after fork it may not allocate.
    let nul = |arg: &[u8]| SpawnError::Nul {
        child: spec.name.clone(),
        arg: String::from_utf8_lossy(arg).into_owned(),
    };
    let program_bytes = spec.program.as_os_str().as_bytes();
    let program = CString::new(program_bytes).map_err(|_| nul(program_bytes))?;
    let mut argv_owned = vec![program.clone()];
    for arg in &spec.args {
        argv_owned.push(CString::new(arg.as_bytes()).map_err(|_| nul(arg.as_bytes()))?);
    }
    let mut argv: Vec<*const c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let exec_failed_msg = format!("yak-supervisor: cannot exec {}\n", spec.program.display());

    let pipe_err = |source| SpawnError::Pipe {
        child: spec.name.clone(),
        source,
    };
    // O_CLOEXEC: no other child inherits these ends, so EOF arrives when this one exits.
    let (out_read, out_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
    let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
    // std opens files with O_CLOEXEC.
    let dev_null = std::fs::File::open("/dev/null").map_err(|source| SpawnError::DevNull {
        child: spec.name.clone(),
        source,
    })?;
    let supervisor_pid = nix::unistd::getpid();

    // SAFETY: the supervisor may have threads (output readers), so the child
    // only makes async-signal-safe calls between fork and exec: setpgid,
    // prctl, getppid, signal, dup2, write, execv and _exit, all on data built
    // above. It never returns from this block: it execs or `_exit`s.
    let fork = unsafe { nix::unistd::fork() };
    match fork {
        Ok(ForkResult::Child) => unsafe {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            // The supervisor died before the death signal was armed.
            if nix::unistd::getppid() != supervisor_pid {
                libc::_exit(1);
            }
            // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let ok = libc::dup2(dev_null.as_raw_fd(), 0) >= 0
                && libc::dup2(out_write.as_raw_fd(), 1) >= 0
                && libc::dup2(err_write.as_raw_fd(), 2) >= 0;
            if ok {
                libc::execv(program.as_ptr(), argv.as_ptr());
            }
            let msg = exec_failed_msg.as_bytes();
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(EXEC_FAILED_STATUS);
        },
        Ok(ForkResult::Parent { child }) => Ok(Spawned {
            pid: child,
            stdout: out_read,
            stderr: err_read,
        }),
        Err(source) => Err(SpawnError::Fork {
            child: spec.name.clone(),
            source,
        }),
    }
    // The write ends and /dev/null drop here in the parent.
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use std::io::Read;

    fn read_all(fd: OwnedFd) -> String {
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn given_shell_command_when_spawning_should_pipe_output_and_isolate_group() {
        let spec = ChildSpec {
            name: "t".into(),
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "echo out; echo err >&2; ps -o pgid= -p $$".into(),
            ],
        };
        let child = spawn(&spec).unwrap();
        let pid = child.pid;
        let out = read_all(child.stdout);
        let err = read_all(child.stderr);
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("out"));
        if let Some(pgid) = lines.next() {
            assert_eq!(pgid.trim(), pid.to_string(), "child leads its own group");
        }
        assert_eq!(err, "err\n");
    }

    #[test]
    fn given_missing_program_when_spawning_should_exit_127() {
        let spec = ChildSpec {
            name: "t".into(),
            program: "/nonexistent/yak-node".into(),
            args: vec![],
        };
        let child = spawn(&spec).unwrap();
        let pid = child.pid;
        let err = read_all(child.stderr);
        assert_eq!(
            waitpid(pid, None).unwrap(),
            WaitStatus::Exited(pid, EXEC_FAILED_STATUS)
        );
        assert!(err.contains("cannot exec /nonexistent/yak-node"), "{err}");
    }
}
