//! The broker's session with ZooKeeper: register, heartbeat every
//! [`HEARTBEAT_INTERVAL_MS`], and reload metadata whenever its version moves.
//! Reconnects (and re-registers) on its own when ZooKeeper restarts.

use crate::client::{ClientError, Connection};
use crate::limits::HEARTBEAT_INTERVAL_MS;
use crate::protocol::{Call, ClusterMetadata, Reply};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The link to ZooKeeper.
pub struct ZkSession {
    broker_id: u32,
    zk_socket: PathBuf,
    own_socket: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl ZkSession {
    /// A session not yet connected.
    pub fn new(broker_id: u32, zk_socket: PathBuf, own_socket: PathBuf) -> Self {
        ZkSession { broker_id, zk_socket, own_socket, conn: Mutex::new(None) }
    }

    /// Sends one request to ZooKeeper, (re)connecting and registering first if needed.
    pub fn call(&self, call: &Call) -> Result<Reply, ClientError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let mut conn = Connection::connect(&self.zk_socket)?;
            let register = Call::RegisterBroker {
                broker_id: self.broker_id,
                pid: std::process::id(),
                socket: self.own_socket.to_string_lossy().into_owned(),
            };
            conn.call(&register)?;
            tracing::info!(zookeeper = %self.zk_socket.display(), "registered with zookeeper");
            *guard = Some(conn);
        }
        let result = match guard.as_mut() {
            Some(conn) => conn.call(call),
            None => return Err(ClientError::Unexpected("invariant: connection set above".into())),
        };
        if result.is_err() {
            // Reconnect and re-register on the next call (ZooKeeper may have restarted).
            *guard = None;
        }
        result
    }

    /// Fetches the whole cluster metadata.
    pub fn metadata(&self) -> Result<ClusterMetadata, ClientError> {
        match self.call(&Call::Metadata { topics: None })? {
            Reply::Metadata(m) => Ok(m),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends one heartbeat; returns ZooKeeper's metadata version.
    pub fn heartbeat(&self) -> Result<u64, ClientError> {
        match self.call(&Call::Heartbeat { broker_id: self.broker_id })? {
            Reply::HeartbeatOk { metadata_version } => Ok(metadata_version),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Heartbeats forever; calls `on_change` with fresh metadata whenever
    /// the version differs from the last one seen (and after a reconnect).
    pub fn run(&self, on_change: impl Fn(ClusterMetadata)) {
        let mut seen: Option<u64> = None;
        let mut failures = 0u32;
        loop {
            match self.heartbeat() {
                Ok(version) => {
                    if failures > 0 {
                        tracing::info!("zookeeper reachable again");
                    }
                    failures = 0;
                    if seen != Some(version) {
                        match self.metadata() {
                            Ok(m) => {
                                seen = Some(m.version);
                                on_change(m);
                            }
                            Err(e) => tracing::warn!(error = %e, "metadata refresh failed"),
                        }
                    }
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(error = %e, "zookeeper heartbeat failed; retrying");
                    }
                    failures += 1;
                    seen = None;
                }
            }
            std::thread::sleep(Duration::from_millis(HEARTBEAT_INTERVAL_MS));
        }
    }
}
