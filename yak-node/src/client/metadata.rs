//! The client's view of the cluster: which broker leads which partition,
//! and a connection pool keyed by broker id. Refreshed from ZooKeeper.

use super::{zookeeper_socket, ClientError, Connection};
use crate::protocol::{Call, ClusterMetadata, ErrorBody, ErrorCode, PartitionMetadata, Reply, TopicMetadata};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Metadata from ZooKeeper plus open connections to brokers.
pub struct MetadataCache {
    cluster_dir: PathBuf,
    zk: Option<Connection>,
    metadata: ClusterMetadata,
    brokers: HashMap<u32, Connection>,
}

impl MetadataCache {
    /// Connects to the cluster's ZooKeeper.
    pub fn connect(cluster_dir: &Path) -> Result<MetadataCache, ClientError> {
        let zk = connect_zookeeper(cluster_dir)?;
        Ok(MetadataCache {
            cluster_dir: cluster_dir.to_path_buf(),
            zk: Some(zk),
            metadata: ClusterMetadata::default(),
            brokers: HashMap::new(),
        })
    }

    /// Sends a request to ZooKeeper, reconnecting once if the connection dropped.
    pub fn zookeeper_call(&mut self, call: &Call) -> Result<Reply, ClientError> {
        if let Some(zk) = self.zk.as_mut() {
            match zk.call(call) {
                Err(ClientError::Connection { .. }) => {}
                other => return other,
            }
        }
        self.zk = None;
        let mut zk = connect_zookeeper(&self.cluster_dir)?;
        let reply = zk.call(call);
        self.zk = Some(zk);
        reply
    }

    /// Reloads metadata for every topic.
    pub fn refresh(&mut self) -> Result<&ClusterMetadata, ClientError> {
        match self.zookeeper_call(&Call::Metadata { topics: None })? {
            Reply::Metadata(m) => {
                self.metadata = m;
                Ok(&self.metadata)
            }
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
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
        self.metadata.topics.iter().find(|t| t.name == name).cloned().ok_or_else(|| {
            ClientError::Server(ErrorBody::new(ErrorCode::UnknownTopic, format!("topic '{name}' does not exist")))
        })
    }

    /// Creates a topic, or returns it if another client created it first.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
    ) -> Result<TopicMetadata, ClientError> {
        let call = Call::CreateTopic { name: name.to_string(), partitions, replication_factor, config: Default::default() };
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
                .unwrap_or_else(|| self.cluster_dir.join(format!("broker-{id}.sock")));
            let conn = Connection::connect(&socket)?;
            self.brokers.insert(id, conn);
        }
        self.brokers
            .get_mut(&id)
            .ok_or_else(|| ClientError::Unexpected("invariant: connection was just inserted".into()))
    }

    /// Waits up to `timeout` until at least one of the open connections to
    /// `ids` has a response to read; returns those that do.
    pub fn wait_readable(&self, ids: &[u32], timeout: Duration) -> Vec<u32> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let open: Vec<(u32, &Connection)> = ids.iter().filter_map(|id| Some((*id, self.brokers.get(id)?))).collect();
        let buffered: Vec<u32> = open.iter().filter(|(_, c)| c.has_buffered()).map(|(id, _)| *id).collect();
        if !buffered.is_empty() || open.is_empty() {
            return buffered;
        }
        let mut fds: Vec<PollFd<'_>> = open.iter().map(|(_, c)| PollFd::new(c.as_fd(), PollFlags::POLLIN)).collect();
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as u32).unwrap_or(PollTimeout::MAX);
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

fn connect_zookeeper(dir: &Path) -> Result<Connection, ClientError> {
    let socket = zookeeper_socket(dir);
    if !dir.is_dir() {
        return Err(ClientError::NoCluster { dir: dir.to_path_buf(), reason: "directory does not exist".into() });
    }
    Connection::connect(&socket).map_err(|e| ClientError::NoCluster {
        dir: dir.to_path_buf(),
        reason: match e {
            ClientError::Connect { source, .. } => format!("cannot reach {}: {source}", socket.display()),
            other => other.to_string(),
        },
    })
}
