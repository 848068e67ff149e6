//! The client's view of the cluster: which broker leads which partition,
//! and a connection pool keyed by broker id. Refreshed from ZooKeeper.
//!
//! ZooKeeper may be restarting (killed, back in a fraction of a second):
//! a refused connection, a socket file missing for a moment, or a
//! connection lost mid-call is retried with backoff for up to the cache's
//! ZooKeeper wait. A cluster that is not there (no run dir, or a run dir
//! with no socket and no supervisor lock) fails at once.

use super::backoff::Backoff;
use super::{zookeeper_socket, ClientError, Connection};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use yak_protocol::limits::{CLIENT_POLL_WAIT_MS_MAX, CLIENT_ZOOKEEPER_WAIT_MS_DEFAULT};
pub use yak_protocol::metadata_pages::read_metadata;
use yak_protocol::paths;
use yak_protocol::{
    Call, ClusterMetadata, ErrorBody, ErrorCode, PartitionMetadata, Reply, TopicMetadata,
};

/// Metadata from ZooKeeper plus open connections to brokers.
pub struct MetadataCache {
    cluster_dir: PathBuf,
    zk: Option<Connection>,
    metadata: ClusterMetadata,
    brokers: HashMap<u32, Connection>,
    zk_wait: Duration,
    backoff: Backoff,
}

impl MetadataCache {
    /// Connects to the cluster's ZooKeeper, waiting up to
    /// [`CLIENT_ZOOKEEPER_WAIT_MS_DEFAULT`] for one that is restarting.
    pub fn connect(cluster_dir: &Path) -> Result<MetadataCache, ClientError> {
        MetadataCache::connect_waiting(
            cluster_dir,
            Duration::from_millis(CLIENT_ZOOKEEPER_WAIT_MS_DEFAULT),
        )
    }

    /// Connects to the cluster's ZooKeeper, waiting up to `zk_wait` for one
    /// that is restarting; later calls wait as long.
    pub fn connect_waiting(
        cluster_dir: &Path,
        zk_wait: Duration,
    ) -> Result<MetadataCache, ClientError> {
        let mut cache = MetadataCache {
            cluster_dir: cluster_dir.to_path_buf(),
            zk: None,
            metadata: ClusterMetadata::default(),
            brokers: HashMap::new(),
            zk_wait,
            backoff: Backoff::default(),
        };
        cache.zk = Some(cache.connect_zookeeper_waiting()?);
        Ok(cache)
    }

    fn connect_zookeeper_waiting(&mut self) -> Result<Connection, ClientError> {
        let deadline = Instant::now() + self.zk_wait;
        let mut attempt = 0;
        loop {
            match connect_zookeeper(&self.cluster_dir) {
                Ok(zk) => return Ok(zk),
                Err(Unreachable {
                    error,
                    restarting: true,
                }) if Instant::now() < deadline => {
                    let pause = self
                        .backoff
                        .delay(attempt)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tracing::debug!(error = %error, ?pause, "ZooKeeper unreachable; retrying");
                    std::thread::sleep(pause);
                    attempt += 1;
                }
                Err(Unreachable { error, .. }) => return Err(error),
            }
        }
    }

    /// Sends a request to ZooKeeper. A connection that dropped is reopened;
    /// a ZooKeeper that is restarting is waited for (see the module doc).
    pub fn zookeeper_call(&mut self, call: &Call) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.zk_wait;
        let mut attempt = 0;
        loop {
            let zk = match self.zk.take() {
                Some(zk) => zk,
                None => self.connect_zookeeper_waiting()?,
            };
            let mut zk = zk;
            match zk.call(call) {
                Err(e @ ClientError::Connection { .. }) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    // ZooKeeper went away mid-call: reconnect (waiting) and ask again.
                    if attempt > 0 {
                        std::thread::sleep(self.backoff.delay(attempt - 1));
                    }
                    attempt += 1;
                }
                other => {
                    self.zk = Some(zk);
                    return other;
                }
            }
        }
    }

    /// Sends a request to ZooKeeper once (reconnecting once), never waiting
    /// for a restarting ZooKeeper: for callers that retry on their own.
    pub fn zookeeper_call_once(&mut self, call: &Call) -> Result<Reply, ClientError> {
        if let Some(zk) = self.zk.as_mut() {
            match zk.call(call) {
                Err(ClientError::Connection { .. }) => {}
                other => return other,
            }
        }
        self.zk = None;
        let mut zk = connect_zookeeper(&self.cluster_dir).map_err(|u| u.error)?;
        let reply = zk.call(call);
        self.zk = Some(zk);
        reply
    }

    /// Reloads metadata for every topic (waiting for a restarting ZooKeeper).
    pub fn refresh(&mut self) -> Result<&ClusterMetadata, ClientError> {
        self.metadata = read_metadata(None, |call| self.zookeeper_call(call))?;
        Ok(&self.metadata)
    }

    /// Reloads metadata once, without waiting for a restarting ZooKeeper.
    pub fn refresh_once(&mut self) -> Result<&ClusterMetadata, ClientError> {
        self.metadata = read_metadata(None, |call| self.zookeeper_call_once(call))?;
        Ok(&self.metadata)
    }

    /// The last metadata loaded.
    pub fn metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    /// A topic from the cache, refreshing once if it is not there.
    pub fn topic(&mut self, name: &str) -> Result<TopicMetadata, ClientError> {
        if let Some(t) = self.metadata.topics.iter().find(|t| t.name == name) {
            return Ok(t.clone());
        }
        self.refresh()?;
        self.metadata
            .topics
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| {
                ClientError::Server(ErrorBody::new(
                    ErrorCode::UnknownTopic,
                    format!("topic '{name}' does not exist"),
                ))
            })
    }

    /// Creates a topic, or returns it if another client created it first.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
    ) -> Result<TopicMetadata, ClientError> {
        let call = Call::CreateTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            config: Default::default(),
        };
        match self.zookeeper_call(&call) {
            Ok(Reply::TopicCreated(t)) => {
                self.refresh()?;
                Ok(t)
            }
            Ok(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            Err(e) if e.code() == Some(&ErrorCode::TopicAlreadyExists) => {
                self.refresh()?;
                self.topic(name)
            }
            Err(e) => Err(e),
        }
    }

    /// A partition's placement, from the cache.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<&PartitionMetadata> {
        let t = self.metadata.topics.iter().find(|t| t.name == topic)?;
        t.partitions.get(partition as usize)
    }

    /// The leader of a partition, from the cache.
    pub fn leader(&self, topic: &str, partition: u32) -> Option<u32> {
        self.partition(topic, partition)?.leader
    }

    /// A connection to a broker, opened on first use.
    pub fn broker(&mut self, id: u32) -> Result<&mut Connection, ClientError> {
        if !self.brokers.contains_key(&id) {
            let socket = self
                .metadata
                .brokers
                .iter()
                .find(|b| b.id == id)
                .map(|b| PathBuf::from(&b.socket))
                .unwrap_or_else(|| paths::broker_socket(&self.cluster_dir, id));
            let conn = Connection::connect(&socket)?;
            self.brokers.insert(id, conn);
        }
        self.brokers.get_mut(&id).ok_or_else(|| {
            ClientError::Unexpected("invariant: connection was just inserted".into())
        })
    }

    /// Waits up to `timeout` until at least one of the open connections to
    /// `ids` has a response to read; returns those that do.
    pub fn wait_readable(&self, ids: &[u32], timeout: Duration) -> Vec<u32> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let open: Vec<(u32, &Connection)> = ids
            .iter()
            .filter_map(|id| Some((*id, self.brokers.get(id)?)))
            .collect();
        let buffered: Vec<u32> = open
            .iter()
            .filter(|(_, c)| c.has_buffered())
            .map(|(id, _)| *id)
            .collect();
        if !buffered.is_empty() || open.is_empty() {
            return buffered;
        }
        let mut fds: Vec<PollFd<'_>> = open
            .iter()
            .map(|(_, c)| PollFd::new(c.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = PollTimeout::try_from(
            timeout.as_millis().min(u128::from(CLIENT_POLL_WAIT_MS_MAX)) as u32,
        )
        .unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, ms).is_err() {
            return Vec::new();
        }
        open.iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|((id, _), _)| *id)
            .collect()
    }

    /// True while a connection to broker `id` is open.
    pub fn is_connected(&self, id: u32) -> bool {
        self.brokers.contains_key(&id)
    }

    /// Drops a broker connection after a failure so the next use reconnects.
    pub fn forget_broker(&mut self, id: u32) {
        self.brokers.remove(&id);
    }
}

/// A failed connection to ZooKeeper, and whether it looks like a restart
/// (worth waiting for) rather than a cluster that is not there.
struct Unreachable {
    error: ClientError,
    restarting: bool,
}

fn connect_zookeeper(dir: &Path) -> Result<Connection, Unreachable> {
    let socket = zookeeper_socket(dir);
    if !dir.is_dir() {
        let error = ClientError::NoCluster {
            dir: dir.to_path_buf(),
            reason: "directory does not exist".into(),
        };
        return Err(Unreachable {
            error,
            restarting: false,
        });
    }
    Connection::connect(&socket).map_err(|e| {
        let restarting = match &e {
            ClientError::Connect { source, .. } => looks_like_restart(dir, source),
            _ => false,
        };
        let reason = match e {
            ClientError::Connect { source, .. } => {
                format!("cannot reach {}: {source}", socket.display())
            }
            other => other.to_string(),
        };
        Unreachable {
            error: ClientError::NoCluster {
                dir: dir.to_path_buf(),
                reason,
            },
            restarting,
        }
    })
}

/// A refused connection means a socket file with nobody listening: a
/// ZooKeeper killed and not yet back (the supervisor restarts it). A
/// missing socket file is a restart only while a supervisor runs here (a
/// restarting ZooKeeper replaces its socket file); with none, no cluster
/// runs here and the client fails at once.
fn looks_like_restart(dir: &Path, error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => true,
        io::ErrorKind::NotFound => paths::supervisor_run_lock(dir).exists(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_missing_run_dir_when_connecting_should_fail_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let started = Instant::now();
        let err = MetadataCache::connect_waiting(&missing, Duration::from_secs(5))
            .err()
            .expect("no cluster");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no wait for a missing dir"
        );
        assert!(
            err.to_string().contains("directory does not exist"),
            "{err}"
        );
    }

    #[test]
    fn given_run_dir_without_socket_or_supervisor_when_connecting_should_fail_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let err = MetadataCache::connect_waiting(dir.path(), Duration::from_secs(5))
            .err()
            .expect("no cluster");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no wait without a supervisor"
        );
        assert!(err.to_string().contains("zookeeper.sock"), "{err}");
    }

    #[test]
    fn given_supervisor_lock_without_socket_when_connecting_should_wait_then_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(paths::supervisor_run_lock(dir.path()), b"1").expect("lock file");
        let started = Instant::now();
        let err = MetadataCache::connect_waiting(dir.path(), Duration::from_millis(300))
            .err()
            .expect("no ZooKeeper");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
            "bounded wait: {waited:?}"
        );
        assert!(matches!(err, ClientError::NoCluster { .. }), "{err}");
    }

    #[test]
    fn given_stale_socket_when_connecting_should_wait_for_a_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(paths::supervisor_run_lock(dir.path()), b"1").expect("lock file");
        let path = zookeeper_socket(dir.path());
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists(), "a killed listener leaves its socket file");
        let started = Instant::now();
        let later = path.clone();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(&later).expect("remove stale socket");
            let listener = std::os::unix::net::UnixListener::bind(&later).expect("rebind");
            listener.accept().map(|_| ()).expect("accept");
        });
        let cache = MetadataCache::connect_waiting(dir.path(), Duration::from_secs(5));
        assert!(cache.is_ok(), "connected once the listener came back");
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "it waited for the restart"
        );
        server.join().expect("server thread");
    }
}
