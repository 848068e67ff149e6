//! Who may make ZooKeeper's cluster-only calls, decided from facts about
//! the calling process (its pid from `SO_PEERCRED`, its parent and command
//! line from `/proc`) that the caller gathers.
//!
//! The rules:
//! - **The supervisor** is the process that started ZooKeeper (its parent
//!   at start-up). Only it may report a broker down or a process restart.
//! - **A broker registers** only from a process the supervisor started
//!   (its parent is the supervisor's pid) whose command line is
//!   `yak-node broker ... --id N` for the id it registers, and only naming
//!   its own pid.
//! - **A broker's other calls** (heartbeats, ISR changes) are accepted only
//!   from the pid registered for that broker id.
//!
//! Owns these decisions as pure functions. Never reads `/proc` or sockets
//! itself (the handler does, through `yak_protocol::peer`).

use crate::protocol::{ErrorBody, ErrorCode};

fn refuse(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotAuthorized, message)
}

fn who(peer: Option<u32>) -> String {
    peer.map_or_else(
        || "a process of unknown pid".to_string(),
        |p| format!("pid {p}"),
    )
}

/// A supervisor-only call (`call` names it) from `peer`.
pub fn check_supervisor(
    supervisor: Option<u32>,
    peer: Option<u32>,
    call: &str,
) -> Result<(), ErrorBody> {
    match (supervisor, peer) {
        (Some(s), Some(p)) if s == p => Ok(()),
        (Some(s), _) => Err(refuse(format!(
            "{call} is accepted only from the supervisor (pid {s}), not from {}",
            who(peer)
        ))),
        (None, _) => Err(refuse(format!(
            "{call}: this ZooKeeper has no supervisor; refused from {}",
            who(peer)
        ))),
    }
}

/// Facts about a process that asks to register as a broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registrant {
    /// Its pid (`SO_PEERCRED`).
    pub pid: Option<u32>,
    /// Its parent's pid.
    pub parent: Option<u32>,
    /// Its command line, program first.
    pub command_line: Option<Vec<String>>,
}

/// The broker id a command line runs as: `<program> broker ... --id N`
/// (or `--id=N`); `None` for any other command.
pub fn broker_id_of(command_line: &[String]) -> Option<u32> {
    if command_line.get(1).map(String::as_str) != Some("broker") {
        return None;
    }
    let args = &command_line[2..];
    args.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--id") {
            Some("") => args.get(i + 1).and_then(|v| v.parse().ok()),
            Some(rest) => rest.strip_prefix('=').and_then(|v| v.parse().ok()),
            None => None,
        })
}

/// `RegisterBroker { broker_id, pid: claimed_pid }` from `who`.
pub fn check_registration(
    supervisor: Option<u32>,
    who: &Registrant,
    broker_id: u32,
    claimed_pid: u32,
) -> Result<(), ErrorBody> {
    let Some(pid) = who.pid else {
        return Err(refuse(format!(
            "broker {broker_id}'s registration from a process of unknown pid"
        )));
    };
    if pid != claimed_pid {
        return Err(refuse(format!(
            "broker {broker_id}'s registration names pid {claimed_pid} but comes from pid {pid}"
        )));
    }
    let Some(supervisor) = supervisor else {
        return Err(refuse(format!(
            "broker {broker_id}: this ZooKeeper has no supervisor to vouch for pid {pid}"
        )));
    };
    if who.parent != Some(supervisor) {
        return Err(refuse(format!(
            "broker {broker_id}'s registration from pid {pid}, which the supervisor (pid {supervisor}) did not start (parent {:?})",
            who.parent
        )));
    }
    let runs_as = who.command_line.as_deref().and_then(broker_id_of);
    if runs_as != Some(broker_id) {
        return Err(refuse(format!(
            "pid {pid} registers as broker {broker_id} but does not run as that broker (runs as {runs_as:?})"
        )));
    }
    Ok(())
}

/// A call (`call` names it) only broker `broker_id` may make, from `peer`,
/// while the broker is registered with pid `registered`.
pub fn check_broker(
    registered: Option<u32>,
    peer: Option<u32>,
    broker_id: u32,
    call: &str,
) -> Result<(), ErrorBody> {
    match (registered, peer) {
        (Some(r), Some(p)) if r == p => Ok(()),
        (Some(r), _) => Err(refuse(format!(
            "{call} for broker {broker_id} (pid {r}) refused from {}",
            who(peer)
        ))),
        (None, _) => Err(refuse(format!(
            "{call} for broker {broker_id}, which is not registered, refused from {}",
            who(peer)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn broker(pid: u32, parent: u32, line: &str) -> Registrant {
        Registrant {
            pid: Some(pid),
            parent: Some(parent),
            command_line: Some(args(line)),
        }
    }

    #[test]
    fn given_command_lines_when_reading_the_broker_id_should_accept_only_broker_commands() {
        assert_eq!(
            broker_id_of(&args("/bin/yak-node broker --id 2 --run-dir r")),
            Some(2)
        );
        assert_eq!(
            broker_id_of(&args("/bin/yak-node broker --run-dir r --id=3")),
            Some(3)
        );
        assert_eq!(
            broker_id_of(&args("/bin/yak-node worker produce --id 2")),
            None
        );
        assert_eq!(broker_id_of(&args("/bin/yak-node broker --idx 2")), None);
        assert_eq!(broker_id_of(&args("/bin/yak-node broker --id")), None);
        assert_eq!(broker_id_of(&args("/bin/yak-node")), None);
    }

    #[test]
    fn given_registrations_when_checking_should_accept_only_the_supervisors_broker_child_naming_itself(
    ) {
        let line = "/bin/yak-node broker --id 2 --run-dir r";
        let cases = [
            (
                "the supervisor's broker-2",
                broker(50, 10, line),
                2,
                50,
                true,
            ),
            ("claims another pid", broker(50, 10, line), 2, 51, false),
            (
                "not the supervisor's child",
                broker(50, 11, line),
                2,
                50,
                false,
            ),
            (
                "runs as broker 3",
                broker(50, 10, "/bin/yak-node broker --id 3"),
                2,
                50,
                false,
            ),
            (
                "a worker child",
                broker(50, 10, "/bin/yak-node worker produce"),
                2,
                50,
                false,
            ),
            ("unknown pid", Registrant::default(), 2, 50, false),
            (
                "process gone",
                Registrant {
                    pid: Some(50),
                    parent: None,
                    command_line: None,
                },
                2,
                50,
                false,
            ),
        ];
        for (what, who, id, claimed, ok) in cases {
            let result = check_registration(Some(10), &who, id, claimed);
            assert_eq!(result.is_ok(), ok, "{what}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.code, ErrorCode::NotAuthorized, "{what}");
            }
        }
        assert!(
            check_registration(None, &broker(50, 10, line), 2, 50).is_err(),
            "no supervisor vouches"
        );
    }

    #[test]
    fn given_broker_and_supervisor_calls_when_checking_should_accept_only_the_registered_or_supervisor_pid(
    ) {
        assert!(check_broker(Some(50), Some(50), 2, "AlterIsr").is_ok());
        assert!(check_broker(Some(50), Some(51), 2, "AlterIsr").is_err());
        assert!(check_broker(None, Some(50), 2, "AlterIsr").is_err());
        assert!(check_broker(Some(50), None, 2, "AlterIsr").is_err());
        assert!(check_supervisor(Some(10), Some(10), "BrokerDown").is_ok());
        assert!(check_supervisor(Some(10), Some(50), "BrokerDown").is_err());
        assert!(check_supervisor(None, Some(10), "BrokerDown").is_err());
        assert!(check_supervisor(Some(10), None, "BrokerDown").is_err());
    }
}
