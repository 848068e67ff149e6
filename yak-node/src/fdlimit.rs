//! The open-files limit of a server process: raised to the hard limit at
//! start, and the connection cap fitted under it so a full server runs out
//! of connection slots, never of file descriptors. Opens nothing itself.

use crate::limits::{FDS_SPARE, FILES_OPEN_MAX};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit in force afterwards (the old one if raising failed, with a log line).
pub fn raise_to_hard() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-files limit");
            return 1024;
        }
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "open-files limit raised");
            hard
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-files limit");
            soft
        }
    }
}

/// The connection cap for a server allowed `nofile` open files: `wanted`,
/// or fewer so that connections, the segment file cache and a spare fit.
pub fn connections_cap(wanted: usize, nofile: u64) -> usize {
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    wanted
        .min(nofile.saturating_sub(FILES_OPEN_MAX + FDS_SPARE))
        .max(1)
}

/// [`raise_to_hard`], then [`connections_cap`] for `wanted`, saying so
/// when the limit forces a lower cap.
pub fn prepare(wanted: usize) -> usize {
    let nofile = raise_to_hard();
    let cap = connections_cap(wanted, nofile);
    if cap < wanted {
        tracing::warn!(
            wanted,
            cap,
            open_files_limit = nofile,
            "open-files limit too low; serving fewer connections"
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_open_files_limits_when_fitting_the_connection_cap_should_leave_room_for_files() {
        assert_eq!(connections_cap(4096, 1_048_576), 4096);
        assert_eq!(
            connections_cap(4096, 4096),
            4096 - FILES_OPEN_MAX - FDS_SPARE
        );
        assert_eq!(connections_cap(4096, 10), 1, "never zero");
    }

    #[test]
    fn given_soft_limit_below_hard_when_starting_should_raise_it_to_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, hard - 1, hard).expect("lower the soft limit by one");
        assert_eq!(raise_to_hard(), hard);
        assert_eq!(
            getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit").0,
            hard
        );
    }
}
