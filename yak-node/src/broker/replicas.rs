//! The partition replicas this broker holds, and their reconciliation with
//! ZooKeeper's metadata: open what is newly assigned, apply leadership,
//! delete replicas of deleted (or re-created) topics.
//!
//! Directory: `<data>/broker-<id>/<topic>-<partition>/` with the log files
//! and a `topic_id` file, so a re-created topic never reads old data.

use super::partition::{Completions, Leadership, Partition};
use crate::protocol::{ClusterMetadata, LocalPartition, TopicConfig};
use crate::storage::{Log, LogConfig, StorageError};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// (topic, partition).
pub type TopicPartition = (String, u32);

/// Partitions this broker follows, by leader id.
pub type FollowPlan = BTreeMap<u32, Vec<Arc<Partition>>>;

/// Every replica on this broker.
pub struct Replicas {
    broker_id: u32,
    sync_appends: bool,
    dir: PathBuf,
    config: LogConfig,
    map: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
}

fn parse_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

impl Replicas {
    /// Opens every partition directory under `dir` (running log recovery).
    /// With `sync_appends`, only fsynced data counts toward high watermarks.
    pub fn open(broker_id: u32, dir: &Path, config: LogConfig, sync_appends: bool) -> Result<Replicas, StorageError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut map = HashMap::new();
        for entry in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((topic, partition)) = parse_dir_name(&name) else { continue };
            let topic_id = fs::read_to_string(path.join("topic_id")).ok().and_then(|s| s.trim().parse().ok());
            let Some(topic_id) = topic_id else {
                tracing::warn!(dir = %path.display(), "partition directory without topic_id; removing");
                let _ = fs::remove_dir_all(&path);
                continue;
            };
            let log = Log::open(&path, config)?;
            tracing::info!(topic = %topic, partition, log_end_offset = log.log_end_offset(), "replica loaded");
            let p = Partition::new(topic.clone(), partition, topic_id, broker_id, log, sync_appends);
            map.insert((topic, partition), Arc::new(p));
        }
        Ok(Replicas { broker_id, sync_appends, dir: dir.to_path_buf(), config, map: RwLock::new(map) })
    }

    /// A replica by topic and partition.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(topic.to_string(), partition)).cloned()
    }

    /// Every replica.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    fn create(&self, topic: &str, partition: u32, topic_id: u64) -> Result<Partition, StorageError> {
        let path = self.dir.join(format!("{topic}-{partition}"));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(io(&path))?;
        }
        let log = Log::open(&path, self.config)?;
        let id_path = path.join("topic_id");
        fs::write(&id_path, topic_id.to_string()).map_err(io(&id_path))?;
        Ok(Partition::new(topic.to_string(), partition, topic_id, self.broker_id, log, self.sync_appends))
    }

    /// Makes the replicas match `metadata`. Returns answers to send and the
    /// partitions to follow, by leader.
    pub fn reconcile(&self, metadata: &ClusterMetadata) -> (Completions, FollowPlan) {
        let mut wanted: HashMap<TopicPartition, (u64, Leadership)> = HashMap::new();
        let mut configs: HashMap<&str, TopicConfig> = HashMap::new();
        for t in &metadata.topics {
            configs.insert(&t.name, t.config);
            for p in t.partitions.iter().filter(|p| p.replicas.contains(&self.broker_id)) {
                let l = Leadership {
                    leader: p.leader,
                    epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                };
                wanted.insert((t.name.clone(), p.partition), (t.topic_id, l));
            }
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let stale: Vec<TopicPartition> = map
            .iter()
            .filter(|(tp, r)| wanted.get(*tp).is_none_or(|(id, _)| *id != r.topic_id))
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut completions = Vec::new();
        for tp in stale {
            if let Some(p) = map.remove(&tp) {
                completions.extend(p.set_leadership(Leadership::default(), Instant::now()));
                remove_replica(&p);
            }
        }
        let mut follow: FollowPlan = BTreeMap::new();
        for (tp, (topic_id, leadership)) in wanted {
            let partition = match map.get(&tp) {
                Some(p) => Arc::clone(p),
                None => match self.create(&tp.0, tp.1, topic_id) {
                    Ok(p) => {
                        tracing::info!(topic = %tp.0, partition = tp.1, topic_id, "replica created");
                        let p = Arc::new(p);
                        map.insert(tp.clone(), Arc::clone(&p));
                        p
                    }
                    Err(e) => {
                        tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "cannot create replica");
                        continue;
                    }
                },
            };
            partition.set_topic_config(configs.get(tp.0.as_str()).copied().unwrap_or_default());
            if let Some(leader) = leadership.leader.filter(|l| *l != self.broker_id) {
                follow.entry(leader).or_default().push(Arc::clone(&partition));
            }
            completions.extend(partition.set_leadership(leadership, Instant::now()));
        }
        (completions, follow)
    }

    /// Fsyncs every log (at shutdown).
    pub fn flush_all(&self) {
        for p in self.all() {
            if let Err(e) = p.flush() {
                tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "flush failed");
            }
        }
    }

    /// The state of every replica, for `cluster status`.
    pub fn describe(&self) -> Vec<LocalPartition> {
        let mut out: Vec<LocalPartition> = self.all().iter().map(|p| p.describe()).collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}

fn remove_replica(p: &Partition) {
    let dir = p.dir();
    match fs::remove_dir_all(&dir) {
        Ok(()) => tracing::info!(topic = %p.topic, partition = p.partition, "replica deleted"),
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
