//! The supervisor's control socket, `<run dir>/supervisor.sock` (mode
//! 0700, in the 0700 run dir): `AddBroker` and `RemoveBroker` in YaK's own
//! frames (`Request` → `Response`). One thread accepts and serves one
//! connection at a time, each bounded by `SUPERVISOR_CONTROL_TIMEOUT_MS`;
//! it hands each call to the main loop over a channel and waits for its
//! answer, so children are forked only on the main thread.
//!
//! Peer rule (as the other sockets, `yak_protocol::peer`): the kernel's record of
//! the caller (`SO_PEERCRED`) must show this user's uid, else the call is
//! refused `NotAuthorized`; the request's content is never trusted for it.
//!
//! Owns: the socket and its framing. Never: forks, stops or decides.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use yak_protocol::limits::{FRAME_BYTES_MAX, SUPERVISOR_CONTROL_TIMEOUT_MS};
use yak_protocol::{frame, Call, ErrorBody, ErrorCode, Reply, Request, Response};

/// The socket's file name in the run dir.
pub const CONTROL_SOCKET: &str = "supervisor.sock";

/// What the main loop is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start one more broker.
    AddBroker,
    /// Stop this broker for good.
    RemoveBroker(u32),
}

/// One command and where its answer goes.
#[derive(Debug)]
pub struct Order {
    /// What to do.
    pub command: Command,
    /// The answer (`BrokerAdded`, `BrokerRemoved` or `Error`).
    pub answer: Sender<Reply>,
}

/// Binds the socket (mode 0700) and serves it on its own thread; the main
/// loop reads the orders from the returned channel.
pub fn serve(run_dir: &Path) -> std::io::Result<Receiver<Order>> {
    let path = run_dir.join(CONTROL_SOCKET);
    let listener = yak_protocol::transport::Listener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    // The socket file this process just made carries its effective uid.
    let own_uid = std::fs::metadata(&path)?.uid();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || accept_loop(&listener, &tx, &path, own_uid))?;
    Ok(rx)
}

fn accept_loop(
    listener: &yak_protocol::transport::Listener,
    orders: &Sender<Order>,
    path: &Path,
    own_uid: u32,
) {
    loop {
        let stream = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(socket = %path.display(), error = %e, "control socket accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if let Err(e) = serve_one(stream, orders, own_uid) {
            tracing::warn!(error = %e, "control connection closed");
        }
    }
}

/// The answer to `call` from a peer with `peer_uid`, for a supervisor
/// running as `own_uid`; `None` when the main loop must decide.
fn check(call: &Call, peer_uid: Option<u32>, own_uid: u32) -> Result<Command, ErrorBody> {
    if peer_uid != Some(own_uid) {
        return Err(ErrorBody::new(
            ErrorCode::NotAuthorized,
            format!("the supervisor takes orders only from its own user (uid {own_uid}), not {peer_uid:?}"),
        ));
    }
    match call {
        Call::AddBroker => Ok(Command::AddBroker),
        Call::RemoveBroker { broker_id } => Ok(Command::RemoveBroker(*broker_id)),
        other => Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("the supervisor's socket takes AddBroker and RemoveBroker, not {other:?}"),
        )),
    }
}

fn serve_one(mut stream: UnixStream, orders: &Sender<Order>, own_uid: u32) -> Result<(), String> {
    let timeout = Duration::from_millis(SUPERVISOR_CONTROL_TIMEOUT_MS);
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let peer_uid = yak_protocol::peer::peer_cred(&stream).ok().map(|c| c.uid);
    loop {
        let request: Request = match frame::read(&mut stream, FRAME_BYTES_MAX) {
            Ok(r) => r,
            // The caller hung up (or went silent): done with it.
            Err(_) => return Ok(()),
        };
        let reply = match check(&request.call, peer_uid, own_uid) {
            Err(e) => {
                tracing::warn!(error = %e, "refused a control call");
                Reply::Error(e)
            }
            Ok(command) => {
                let (answer, wait) = mpsc::channel();
                if orders.send(Order { command, answer }).is_err() {
                    return Err("the main loop is gone".into());
                }
                // Removing waits for the broker to stop (at most its grace period).
                wait.recv_timeout(timeout * 2).unwrap_or_else(|_| {
                    Reply::Error(ErrorBody::new(
                        ErrorCode::Timeout,
                        "the supervisor did not answer in time",
                    ))
                })
            }
        };
        let response = Response {
            correlation_id: request.correlation_id,
            reply,
        };
        frame::write(&mut stream, &response).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_calls_from_users_when_checking_should_take_only_own_user_and_control_calls() {
        assert_eq!(
            check(&Call::AddBroker, Some(1000), 1000),
            Ok(Command::AddBroker)
        );
        assert_eq!(
            check(&Call::RemoveBroker { broker_id: 3 }, Some(1000), 1000),
            Ok(Command::RemoveBroker(3))
        );
        for (call, uid, code) in [
            (Call::AddBroker, Some(1001), ErrorCode::NotAuthorized),
            (Call::AddBroker, None, ErrorCode::NotAuthorized),
            (Call::InitProducerId, Some(1000), ErrorCode::InvalidRequest),
        ] {
            assert_eq!(check(&call, uid, 1000).map_err(|e| e.code), Err(code));
        }
    }
}
