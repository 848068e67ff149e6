//! The broker's session with ZooKeeper: register, heartbeat every
//! [`HEARTBEAT_INTERVAL_MS`], and reload metadata whenever its version moves.
//! Reconnects (and re-registers) on its own when ZooKeeper restarts.
//!
//! The broker's data dir belongs to one cluster: [`cluster_id_at_start`]
//! checks ZooKeeper's cluster id against it before anything is opened, and
//! every registration and metadata answer is checked again; a ZooKeeper with
//! another id (wiped, or another cluster's) stops the broker before any of
//! its metadata is applied.

use crate::datadir::{self, DataDirError};
use crate::limits::HEARTBEAT_INTERVAL_MS;
use crate::protocol::connection::Connection;
use crate::protocol::ClientError;
use crate::protocol::{Call, ClusterMetadata, Reply};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Exit code of a broker that finds ZooKeeper belongs to another cluster.
pub const EXIT_CLUSTER_ID_MISMATCH: i32 = 3;

/// Why a broker cannot start against this ZooKeeper.
#[derive(Debug, thiserror::Error)]
pub enum ClusterIdError {
    /// The data dir belongs to another cluster: nothing was opened or changed.
    #[error(
        "cluster id mismatch: {dir} belongs to cluster {stored} but zookeeper at {zookeeper} reports cluster {reported}; \
         refusing to start (nothing in {dir} was changed)"
    )]
    Mismatch {
        /// The broker's data dir.
        dir: PathBuf,
        /// The id stored in it.
        stored: String,
        /// ZooKeeper's socket.
        zookeeper: PathBuf,
        /// The id ZooKeeper reported.
        reported: String,
    },
    /// ZooKeeper answered without a well-formed cluster id.
    #[error(
        "zookeeper at {zookeeper} reports no valid cluster id ({reported:?}); refusing to start"
    )]
    Missing {
        /// ZooKeeper's socket.
        zookeeper: PathBuf,
        /// What it reported.
        reported: String,
    },
    /// The cluster id file could not be read or written.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

/// How often the broker retries ZooKeeper while waiting for its cluster id.
const CLUSTER_ID_RETRY: Duration = Duration::from_millis(crate::limits::BROKER_CLUSTER_ID_RETRY_MS);
/// How often, while waiting, the broker says it still waits.
const CLUSTER_ID_WAIT_LOG: Duration =
    Duration::from_millis(crate::limits::BROKER_CLUSTER_ID_WAIT_LOG_MS);

/// Asks ZooKeeper for the cluster id, retrying until it answers.
fn await_cluster_id(zk_socket: &Path) -> String {
    let mut next_log = Instant::now();
    loop {
        let answer = Connection::connect(zk_socket).and_then(|mut c| {
            c.call(&Call::Metadata {
                topics: Some(Vec::new()),
                after_topic: None,
            })
        });
        let error = match answer {
            Ok(Reply::Metadata(m)) => return m.cluster_id,
            Ok(other) => format!("unexpected answer {other:?}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= next_log {
            tracing::warn!(zookeeper = %zk_socket.display(), error = %error, "waiting for zookeeper's cluster id");
            next_log = Instant::now() + CLUSTER_ID_WAIT_LOG;
        }
        std::thread::sleep(CLUSTER_ID_RETRY);
    }
}

/// Checks `reported` (ZooKeeper's id) against the id stored in the broker's
/// data dir `dir`; stores it there the first time. Reads and writes nothing
/// else.
pub fn check_cluster_id(
    dir: &Path,
    zk_socket: &Path,
    reported: &str,
) -> Result<(), ClusterIdError> {
    if !datadir::is_cluster_id(reported) {
        return Err(ClusterIdError::Missing {
            zookeeper: zk_socket.to_path_buf(),
            reported: reported.to_string(),
        });
    }
    match datadir::read_cluster_id(dir)? {
        Some(stored) if stored == reported => Ok(()),
        Some(stored) => Err(ClusterIdError::Mismatch {
            dir: dir.to_path_buf(),
            stored,
            zookeeper: zk_socket.to_path_buf(),
            reported: reported.to_string(),
        }),
        None => {
            datadir::write_cluster_id(dir, reported)?;
            tracing::info!(dir = %dir.display(), cluster_id = reported, "data dir joined cluster");
            Ok(())
        }
    }
}

/// At start-up, before any replica is opened: waits for ZooKeeper, then
/// checks (or, the first time, stores) the cluster id in `dir`. Returns the id.
pub fn cluster_id_at_start(dir: &Path, zk_socket: &Path) -> Result<String, ClusterIdError> {
    let reported = await_cluster_id(zk_socket);
    check_cluster_id(dir, zk_socket, &reported)?;
    Ok(reported)
}

/// The link to ZooKeeper.
pub struct ZkSession {
    broker_id: u32,
    cluster_id: String,
    zk_socket: PathBuf,
    own_socket: PathBuf,
    /// Where this broker serves Kafka clients, registered with ZooKeeper.
    kafka_address: Option<String>,
    conn: Mutex<Option<Connection>>,
}

impl ZkSession {
    /// A session not yet connected, for a broker of cluster `cluster_id`.
    pub fn new(
        broker_id: u32,
        cluster_id: String,
        zk_socket: PathBuf,
        own_socket: PathBuf,
    ) -> Self {
        ZkSession {
            broker_id,
            cluster_id,
            zk_socket,
            own_socket,
            kafka_address: None,
            conn: Mutex::new(None),
        }
    }

    /// Registers `address` as this broker's Kafka listener.
    pub fn with_kafka_address(mut self, address: Option<String>) -> Self {
        self.kafka_address = address;
        self
    }

    /// Stops the process (fail-stop) when ZooKeeper reports another cluster
    /// id than the one this broker started with: ZooKeeper was wiped or
    /// replaced while the broker ran. Nothing it said is applied; the
    /// restarted broker refuses to start with the same message.
    fn check_cluster(&self, reported: &str) {
        if reported != self.cluster_id {
            tracing::error!(cluster_id = %self.cluster_id, zookeeper_cluster_id = %reported,
                zookeeper = %self.zk_socket.display(),
                "cluster id mismatch: zookeeper now belongs to another cluster; stopping before applying anything it says");
            std::process::exit(EXIT_CLUSTER_ID_MISMATCH);
        }
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
                kafka_address: self.kafka_address.clone(),
            };
            match conn.call(&register)? {
                Reply::Registered { cluster_id, .. } => self.check_cluster(&cluster_id),
                other => {
                    return Err(ClientError::Unexpected(format!(
                        "registration refused: {other:?}"
                    )))
                }
            }
            tracing::info!(zookeeper = %self.zk_socket.display(), "registered with zookeeper");
            *guard = Some(conn);
        }
        let result = match guard.as_mut() {
            Some(conn) => conn.call(call),
            None => {
                return Err(ClientError::Unexpected(
                    "invariant: connection set above".into(),
                ))
            }
        };
        if result.is_err() {
            // Reconnect and re-register on the next call (ZooKeeper may have restarted).
            *guard = None;
        }
        result
    }

    /// Fetches the whole cluster metadata.
    pub fn metadata(&self) -> Result<ClusterMetadata, ClientError> {
        let m = crate::protocol::metadata_pages::read_metadata(None, |call| self.call(call))?;
        self.check_cluster(&m.cluster_id);
        Ok(m)
    }

    /// Sends one heartbeat; returns ZooKeeper's metadata version.
    pub fn heartbeat(&self) -> Result<u64, ClientError> {
        match self.call(&Call::Heartbeat {
            broker_id: self.broker_id,
        })? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_dir_of_another_cluster_when_checking_cluster_id_should_refuse_and_change_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (ours, theirs) = (
            datadir::new_cluster_id().expect("id"),
            datadir::new_cluster_id().expect("id"),
        );
        datadir::write_cluster_id(tmp.path(), &theirs).expect("write");
        let before = std::fs::read(tmp.path().join(datadir::CLUSTER_ID_FILE)).expect("read");
        let err = check_cluster_id(tmp.path(), Path::new("zk.sock"), &ours).expect_err("mismatch");
        let text = err.to_string();
        assert!(
            text.contains(&ours) && text.contains(&theirs),
            "names both ids: {text}"
        );
        assert_eq!(
            std::fs::read(tmp.path().join(datadir::CLUSTER_ID_FILE)).expect("read"),
            before
        );
    }

    #[test]
    fn given_new_dir_when_checking_cluster_id_should_store_it_and_accept_it_afterwards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let id = datadir::new_cluster_id().expect("id");
        check_cluster_id(tmp.path(), Path::new("zk.sock"), &id).expect("first time");
        assert_eq!(
            datadir::read_cluster_id(tmp.path()).expect("read"),
            Some(id.clone())
        );
        check_cluster_id(tmp.path(), Path::new("zk.sock"), &id).expect("same cluster");
        let err = check_cluster_id(tmp.path(), Path::new("zk.sock"), "")
            .expect_err("no id from zookeeper");
        assert!(matches!(err, ClusterIdError::Missing { .. }), "{err}");
    }
}
