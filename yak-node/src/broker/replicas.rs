//! The partition replicas this broker holds: their logs on disk, their
//! leader and epoch as ZooKeeper last said, and reconciliation with
//! metadata (open what is assigned, delete what was deleted).
//!
//! Directory: `<data>/broker-<id>/<topic>-<partition>/` with the log files
//! and a `topic_id` file, so a re-created topic never reads old data.

use crate::protocol::{ClusterMetadata, LocalPartition, PartitionMetadata};
use crate::storage::{Log, LogConfig, StorageError};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// (topic, partition).
pub type TopicPartition = (String, u32);

/// Who leads a partition, as this broker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's id.
    pub leader: Option<u32>,
    /// The leader epoch.
    pub epoch: u32,
    /// Every replica.
    pub replicas: Vec<u32>,
}

/// One partition replica held by this broker.
pub struct Replica {
    /// Topic id the files belong to.
    pub topic_id: u64,
    log: Mutex<Log>,
    leadership: Mutex<Leadership>,
}

impl Replica {
    /// The log, locked.
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leader and epoch as last known.
    pub fn leadership(&self) -> Leadership {
        self.leadership.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_leadership(&self, l: Leadership) {
        *self.leadership.lock().unwrap_or_else(|p| p.into_inner()) = l;
    }
}

/// Every replica on this broker.
pub struct Replicas {
    broker_id: u32,
    dir: PathBuf,
    config: LogConfig,
    map: RwLock<HashMap<TopicPartition, Arc<Replica>>>,
}

fn parse_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

impl Replicas {
    /// Opens every partition directory under `dir` (running log recovery).
    pub fn open(broker_id: u32, dir: &Path, config: LogConfig) -> Result<Replicas, StorageError> {
        fs::create_dir_all(dir).map_err(|source| StorageError::Io { path: dir.to_path_buf(), source })?;
        let replicas = Replicas { broker_id, dir: dir.to_path_buf(), config, map: RwLock::new(HashMap::new()) };
        let entries = fs::read_dir(dir).map_err(|source| StorageError::Io { path: dir.to_path_buf(), source })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(tp) = parse_dir_name(&name) else { continue };
            let topic_id = fs::read_to_string(path.join("topic_id")).ok().and_then(|s| s.trim().parse().ok());
            let Some(topic_id) = topic_id else {
                tracing::warn!(dir = %path.display(), "partition directory without topic_id; removing");
                let _ = fs::remove_dir_all(&path);
                continue;
            };
            let log = Log::open(&path, replicas.config)?;
            tracing::info!(topic = %tp.0, partition = tp.1, log_end_offset = log.log_end_offset(), "replica loaded");
            let leadership = Leadership { leader: None, epoch: 0, replicas: vec![] };
            let replica = Replica { topic_id, log: Mutex::new(log), leadership: Mutex::new(leadership) };
            replicas.write_map().insert(tp, Arc::new(replica));
        }
        Ok(replicas)
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Replica>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A replica by topic and partition.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<Replica>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(topic.to_string(), partition)).cloned()
    }

    /// Every replica.
    pub fn all(&self) -> Vec<(TopicPartition, Arc<Replica>)> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }

    fn open_new(&self, tp: &TopicPartition, topic_id: u64) -> Result<Replica, StorageError> {
        let path = self.dir.join(format!("{}-{}", tp.0, tp.1));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|source| StorageError::Io { path: path.clone(), source })?;
        }
        let log = Log::open(&path, self.config)?;
        let id_path = path.join("topic_id");
        fs::write(&id_path, topic_id.to_string()).map_err(|source| StorageError::Io { path: id_path, source })?;
        let leadership = Leadership { leader: None, epoch: 0, replicas: vec![] };
        Ok(Replica { topic_id, log: Mutex::new(log), leadership: Mutex::new(leadership) })
    }

    /// Makes the replicas match `metadata`: opens newly assigned partitions,
    /// updates leadership, deletes replicas of deleted (or re-created) topics.
    pub fn reconcile(&self, metadata: &ClusterMetadata) {
        let mut wanted: HashMap<TopicPartition, (u64, &PartitionMetadata)> = HashMap::new();
        for t in &metadata.topics {
            for p in &t.partitions {
                if p.replicas.contains(&self.broker_id) {
                    wanted.insert((t.name.clone(), p.partition), (t.topic_id, p));
                }
            }
        }
        let mut map = self.write_map();
        let stale: Vec<TopicPartition> = map
            .iter()
            .filter(|(tp, r)| wanted.get(*tp).is_none_or(|(id, _)| *id != r.topic_id))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in stale {
            if let Some(replica) = map.remove(&tp) {
                remove_replica(&tp, replica);
            }
        }
        for (tp, (topic_id, p)) in wanted {
            let leadership = Leadership { leader: p.leader, epoch: p.leader_epoch, replicas: p.replicas.clone() };
            if let Some(r) = map.get(&tp) {
                r.set_leadership(leadership);
                continue;
            }
            match self.open_new(&tp, topic_id) {
                Ok(r) => {
                    r.set_leadership(leadership);
                    tracing::info!(topic = %tp.0, partition = tp.1, topic_id, "replica created");
                    map.insert(tp, Arc::new(r));
                }
                Err(e) => tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "cannot create replica"),
            }
        }
    }

    /// Fsyncs every log (at shutdown).
    pub fn flush_all(&self) {
        for (tp, r) in self.all() {
            if let Err(e) = r.log().flush() {
                tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "flush failed");
            }
        }
    }

    /// The state of every replica, for `cluster status`.
    pub fn describe(&self) -> Vec<LocalPartition> {
        let mut out: Vec<LocalPartition> = self
            .all()
            .into_iter()
            .map(|((topic, partition), r)| {
                let l = r.leadership();
                let log = r.log();
                LocalPartition {
                    topic,
                    partition,
                    topic_id: r.topic_id,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    high_watermark: log.log_end_offset(),
                    leader_epoch: l.epoch,
                    is_leader: l.leader == Some(self.broker_id),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}

fn remove_replica(tp: &TopicPartition, replica: Arc<Replica>) {
    let dir = replica.log().dir().to_path_buf();
    match fs::remove_dir_all(&dir) {
        Ok(()) => tracing::info!(topic = %tp.0, partition = tp.1, "replica deleted"),
        Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot delete replica"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_dir_names_when_parsing_should_split_at_last_dash() {
        assert_eq!(parse_dir_name("my-topic-12"), Some(("my-topic".into(), 12)));
        assert_eq!(parse_dir_name("t-0"), Some(("t".into(), 0)));
        assert_eq!(parse_dir_name("nodash"), None);
        assert_eq!(parse_dir_name("t-x"), None);
    }
}
