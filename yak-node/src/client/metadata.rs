//! The client's view of the cluster: which broker leads which partition,
//! and a connection pool keyed by broker id. Refreshed from ZooKeeper.

use super::{zookeeper_socket, ClientError, Connection};
use crate::limits::METADATA_PAGE_RESTARTS_MAX;
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
        self.metadata = read_metadata(None, |call| self.zookeeper_call(call))?;
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

/// Reads metadata for `topics` (every topic when `None`) page by page
/// through `call` (one request to ZooKeeper) and returns it whole. Pages
/// must share one metadata version: if it moves between pages, reading
/// starts over, at most [`METADATA_PAGE_RESTARTS_MAX`] times.
pub fn read_metadata(
    topics: Option<Vec<String>>,
    mut call: impl FnMut(&Call) -> Result<Reply, ClientError>,
) -> Result<ClusterMetadata, ClientError> {
    let mut restarts = 0;
    'start: loop {
        let mut whole: Option<ClusterMetadata> = None;
        let mut after_topic = None;
        loop {
            let page = match call(&Call::Metadata { topics: topics.clone(), after_topic: after_topic.take() })? {
                Reply::Metadata(m) => m,
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            };
            let more = page.more && !page.topics.is_empty();
            after_topic = page.topics.last().map(|t| t.name.clone());
            match whole.as_mut() {
                None => whole = Some(page),
                Some(w) if w.version == page.version => w.topics.extend(page.topics),
                Some(w) => {
                    restarts += 1;
                    if restarts > METADATA_PAGE_RESTARTS_MAX {
                        return Err(ClientError::Unexpected(format!(
                            "metadata changed between pages {restarts} times (version {} then {})",
                            w.version, page.version
                        )));
                    }
                    continue 'start;
                }
            }
            if !more {
                let mut m = whole.unwrap_or_default();
                m.more = false;
                return Ok(m);
            }
        }
    }
}

#[cfg(test)]
mod paging_tests {
    use super::*;

    fn page(version: u64, names: &[&str], more: bool) -> Reply {
        let topics = names
            .iter()
            .map(|n| TopicMetadata { name: n.to_string(), topic_id: 1, partitions: Vec::new(), config: Default::default() })
            .collect();
        Reply::Metadata(ClusterMetadata { version, topics, more, ..ClusterMetadata::default() })
    }

    #[test]
    fn given_pages_when_reading_metadata_should_join_them_and_start_over_when_the_version_moves() {
        let mut script = vec![
            page(1, &["a", "b"], true),
            page(2, &["c"], true),
            page(2, &["a", "b"], true),
            page(2, &["c"], true),
            page(2, &["d"], false),
        ]
        .into_iter();
        let mut asked = Vec::new();
        let m = read_metadata(None, |call| {
            if let Call::Metadata { after_topic, .. } = call {
                asked.push(after_topic.clone());
            }
            script.next().ok_or_else(|| ClientError::Unexpected("asked too often".into()))
        })
        .expect("read");
        assert_eq!(m.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["a", "b", "c", "d"]);
        assert_eq!((m.version, m.more), (2, false));
        let b = Some("b".to_string());
        assert_eq!(asked, vec![None, b.clone(), None, b, Some("c".into())]);
        let mut flapping = 0;
        let err = read_metadata(None, |_| {
            flapping += 1;
            Ok(page(flapping, &["a"], true))
        })
        .expect_err("never settles");
        assert!(err.to_string().contains("changed between pages"), "{err}");
    }
}
