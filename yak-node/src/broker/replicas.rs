//! The partition replicas this broker holds, and their reconciliation with
//! ZooKeeper's metadata: open what is newly assigned, apply leadership,
//! delete replicas of deleted topics.
//!
//! Directory: `<data>/broker-<id>/<topic>-<partition>/` with the log files
//! and a `topic_id` file, so a re-created topic never reads old data.
//!
//! Nothing is deleted because it cannot be read or because metadata does
//! not name it: a partition dir whose `topic_id` is missing or unreadable,
//! and a replica whose topic id metadata neither names nor lists as deleted
//! (a stray replica), are moved aside to
//! `<data>/broker-<id>/quarantine/<dir name>.<unix ms>` with a log line.
//! Only a replica whose topic id ZooKeeper lists among its deleted topic ids
//! is deleted, or one a completed reassignment moved away (its topic id is
//! current, the partition lists other replicas, and no reassignment of it
//! is in progress). `topic_id` is written atomically and durably (temp file,
//! fsync, rename, fsync the partition dir, fsync the broker dir) before any
//! log file, so a power cut right after a topic's creation keeps the replica.

use super::partition::{Completions, Leadership, Partition};
use super::stats::BrokerStats;
use crate::protocol::{ClusterMetadata, LocalPartition, TopicConfig};
use crate::storage::fs::{self, Fs, FsRef};
use crate::storage::{sync_dir, Log, LogConfig, StorageError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// (topic, partition).
pub type TopicPartition = (String, u32);

/// Partitions this broker follows, by leader id.
pub type FollowPlan = BTreeMap<u32, Vec<Followed>>;

/// A partition this broker follows.
#[derive(Clone)]
pub struct Followed {
    /// The replica.
    pub partition: Arc<Partition>,
    /// Set while a reassignment adds this replica and it is not in the
    /// ISR yet: its catch-up fetches share this rate.
    pub throttle_bytes_per_sec: Option<u64>,
}

/// Every replica on this broker.
pub struct Replicas {
    fs: FsRef,
    broker_id: u32,
    sync_appends: bool,
    dir: PathBuf,
    config: LogConfig,
    map: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The broker's counters, handed to every replica (fsync latencies).
    stats: Arc<BrokerStats>,
}

fn parse_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file in a partition dir naming its topic's id.
const TOPIC_ID_FILE: &str = "topic_id";
/// Where unreadable and stray partition dirs are moved, in the broker dir.
pub const QUARANTINE_DIR: &str = "quarantine";

/// The topic id in a partition dir, or why it cannot be read.
fn read_topic_id(f: &dyn Fs, dir: &Path) -> Result<u64, String> {
    match f.read(&dir.join(TOPIC_ID_FILE)) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            text.trim().parse().map_err(|_| {
                format!(
                    "unreadable topic_id {:?}",
                    text.chars().take(32).collect::<String>()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no topic_id".to_string()),
        Err(e) => Err(format!("cannot read topic_id: {e}")),
    }
}

/// Moves a partition dir into `<broker dir>/quarantine/<name>.<unix ms>`,
/// durably. Returns where it went.
fn quarantine(f: &dyn Fs, broker_dir: &Path, dir: &Path) -> Result<PathBuf, StorageError> {
    let aside = broker_dir.join(QUARANTINE_DIR);
    f.create_dir_all(&aside).map_err(io(&aside))?;
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut target = aside.join(format!("{name}.{ms}"));
    let mut n = 1;
    while f.exists(&target) {
        target = aside.join(format!("{name}.{ms}.{n}"));
        n += 1;
    }
    f.rename(dir, &target).map_err(io(dir))?;
    sync_dir(f, &aside)?;
    sync_dir(f, broker_dir)?;
    Ok(target)
}

impl Replicas {
    /// Opens every partition directory under `dir` (running log recovery).
    /// With `sync_appends`, only fsynced data counts toward high watermarks.
    /// A partition dir whose `topic_id` cannot be read is moved aside
    /// (quarantined), never deleted.
    pub fn open(
        broker_id: u32,
        dir: &Path,
        config: LogConfig,
        sync_appends: bool,
    ) -> Result<Replicas, StorageError> {
        Self::open_with(
            crate::storage::real_fs(),
            broker_id,
            dir,
            config,
            sync_appends,
        )
    }

    /// [`Replicas::open`] with every file operation through `fs`.
    pub fn open_with(
        fs: FsRef,
        broker_id: u32,
        dir: &Path,
        config: LogConfig,
        sync_appends: bool,
    ) -> Result<Replicas, StorageError> {
        let f: &dyn Fs = &*fs;
        f.create_dir_all(dir).map_err(io(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(f, parent)?;
        }
        let mut map = HashMap::new();
        let stats = Arc::new(BrokerStats::default());
        for name in f.read_dir(dir).map_err(io(dir))? {
            let name = name.to_string_lossy().into_owned();
            let path = dir.join(&name);
            let Some((topic, partition)) = parse_dir_name(&name) else {
                continue;
            };
            if !f.is_dir(&path) {
                continue;
            }
            let topic_id = match read_topic_id(f, &path) {
                Ok(id) => id,
                Err(reason) => {
                    let aside = quarantine(f, dir, &path)?;
                    tracing::warn!(dir = %path.display(), moved_to = %aside.display(), reason = %reason,
                        "partition directory without a readable topic_id; quarantined, not deleted");
                    continue;
                }
            };
            let log = Log::open_with(Arc::clone(&fs), &path, config)?;
            tracing::info!(topic = %topic, partition, log_end_offset = log.log_end_offset(), "replica loaded");
            let p = Partition::new(
                topic.clone(),
                partition,
                topic_id,
                broker_id,
                log,
                sync_appends,
            )
            .with_stats(Arc::clone(&stats));
            map.insert((topic, partition), Arc::new(p));
        }
        Ok(Replicas {
            fs,
            broker_id,
            sync_appends,
            dir: dir.to_path_buf(),
            config,
            map: RwLock::new(map),
            stats,
        })
    }

    /// The broker's counters every replica counts into.
    pub fn stats(&self) -> &Arc<BrokerStats> {
        &self.stats
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

    /// A new, empty replica. Its `topic_id` is durable (and the partition
    /// dir's entry too) before any log file is created. A dir already at its
    /// path (which no replica holds) is quarantined first.
    fn create(
        &self,
        topic: &str,
        partition: u32,
        topic_id: u64,
    ) -> Result<Partition, StorageError> {
        let f: &dyn Fs = &*self.fs;
        let path = self.dir.join(format!("{topic}-{partition}"));
        if f.exists(&path) {
            let aside = quarantine(f, &self.dir, &path)?;
            tracing::warn!(dir = %path.display(), moved_to = %aside.display(), topic_id,
                "partition directory in the way of a new replica; quarantined, not deleted");
        }
        f.create_dir_all(&path).map_err(io(&path))?;
        // Temp file, fsync, rename, fsync the partition dir; then the
        // partition dir's own entry in the broker dir.
        let id_path = path.join(TOPIC_ID_FILE);
        fs::write_atomic(f, &id_path, topic_id.to_string().as_bytes()).map_err(io(&id_path))?;
        sync_dir(f, &self.dir)?;
        let log = Log::open_with(Arc::clone(&self.fs), &path, self.config)?;
        Ok(Partition::new(
            topic.to_string(),
            partition,
            topic_id,
            self.broker_id,
            log,
            self.sync_appends,
        )
        .with_stats(Arc::clone(&self.stats)))
    }

    /// Makes the replicas match `metadata` (a full one, with the deleted
    /// topic ids). Returns answers to send and the partitions to follow, by
    /// leader. A replica metadata does not place here is deleted only when
    /// its topic id is among the deleted ones; otherwise it is a stray
    /// replica and is quarantined. Files are created, moved and deleted
    /// outside the map's lock, which is taken briefly per replica, so
    /// creating a 10,000-partition topic never holds up requests for the
    /// replicas already here. The caller runs one reconcile at a time.
    #[must_use = "completed answers: hand them to send_all"]
    pub fn reconcile(&self, metadata: &ClusterMetadata) -> (Completions, FollowPlan) {
        let deleted: HashSet<u64> = metadata.deleted_topic_ids.iter().copied().collect();
        let mut wanted: HashMap<TopicPartition, (u64, Leadership)> = HashMap::new();
        let mut throttles: HashMap<TopicPartition, u64> = HashMap::new();
        let mut configs: HashMap<&str, TopicConfig> = HashMap::new();
        for t in &metadata.topics {
            configs.insert(&t.name, t.config);
            for p in t
                .partitions
                .iter()
                .filter(|p| p.replicas.contains(&self.broker_id))
            {
                let l = Leadership {
                    leader: p.leader,
                    epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                };
                if let Some(rate) = p.reassignment.as_ref().and_then(|r| {
                    r.throttle_bytes_per_sec
                        .filter(|_| r.adding.contains(&self.broker_id))
                        .filter(|_| !p.isr.contains(&self.broker_id))
                }) {
                    throttles.insert((t.name.clone(), p.partition), rate);
                }
                wanted.insert((t.name.clone(), p.partition), (t.topic_id, l));
            }
        }
        let stale: Vec<Arc<Partition>> = {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<TopicPartition> = map
                .iter()
                .filter(|(tp, r)| wanted.get(*tp).is_none_or(|(id, _)| *id != r.topic_id))
                .map(|(tp, _)| tp.clone())
                .collect();
            keys.iter().filter_map(|tp| map.remove(tp)).collect()
        };
        let mut completions = Vec::new();
        for p in stale {
            completions.extend(p.set_leadership(Leadership::default(), Instant::now()));
            if deleted.contains(&p.topic_id) {
                remove_replica(&*self.fs, &p, "its topic was deleted");
            } else if moved_away(metadata, &p.topic, p.partition, p.topic_id) {
                remove_replica(&*self.fs, &p, "a completed reassignment moved it away");
            } else {
                self.quarantine_stray(&p);
            }
        }
        let mut follow: FollowPlan = BTreeMap::new();
        let mut created = 0usize;
        for (tp, (topic_id, leadership)) in wanted {
            let config = configs.get(tp.0.as_str()).copied().unwrap_or_default();
            let existing = self.get(&tp.0, tp.1);
            let partition = match existing {
                Some(p) => p,
                None => match self.create(&tp.0, tp.1, topic_id) {
                    Ok(p) => {
                        tracing::debug!(topic = %tp.0, partition = tp.1, topic_id, "replica created");
                        created += 1;
                        Arc::new(p)
                    }
                    Err(e) => {
                        tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "cannot create replica");
                        continue;
                    }
                },
            };
            partition.set_topic_config(config);
            if let Some(leader) = leadership.leader.filter(|l| *l != self.broker_id) {
                follow.entry(leader).or_default().push(Followed {
                    partition: Arc::clone(&partition),
                    throttle_bytes_per_sec: throttles.get(&tp).copied(),
                });
            }
            completions.extend(partition.set_leadership(leadership, Instant::now()));
            // A new replica is seen by requests only once it has its leadership.
            self.map
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(tp)
                .or_insert(partition);
        }
        if created > 0 {
            tracing::info!(replicas = created, "replicas created");
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

impl Replicas {
    /// Moves aside a replica metadata does not place here and does not list
    /// as deleted.
    fn quarantine_stray(&self, p: &Partition) {
        let dir = p.dir();
        match quarantine(&*self.fs, &self.dir, &dir) {
            Ok(aside) => {
                tracing::warn!(topic = %p.topic, partition = p.partition, topic_id = p.topic_id,
                moved_to = %aside.display(),
                "stray replica: metadata neither places it here nor lists its topic as deleted; quarantined, not deleted")
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "stray replica: cannot quarantine it; left in place")
            }
        }
    }
}

/// The partition of this very topic id exists, no reassignment of it is in
/// progress, and its replicas do not name this broker (the caller checked):
/// the reassignment that removed this replica is complete, so its files go.
/// While one is in progress the replica is still listed, so never deleted.
fn moved_away(metadata: &ClusterMetadata, topic: &str, partition: u32, topic_id: u64) -> bool {
    metadata
        .topics
        .iter()
        .find(|t| t.name == topic && t.topic_id == topic_id)
        .and_then(|t| t.partitions.get(partition as usize))
        .is_some_and(|p| p.reassignment.is_none())
}

/// Deletes the files of a replica metadata lists as deleted or moved away.
fn remove_replica(f: &dyn Fs, p: &Partition, why: &str) {
    let dir = p.dir();
    match f.remove_dir_all(&dir) {
        Ok(()) => {
            tracing::info!(topic = %p.topic, partition = p.partition, reason = why, "replica deleted")
        }
        Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot delete replica"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{self, BatchBuilder, NewRecord};
    use crate::protocol::{PartitionMetadata, Reply, TopicMetadata};
    use crate::server::{Handled, Responder};
    use crate::storage::fs::SimFs;
    use std::fs;
    use std::time::Duration;

    /// Full metadata placing partition 0 of each (name, id) on broker 1, as leader.
    fn metadata(topics: &[(&str, u64)], deleted: &[u64]) -> ClusterMetadata {
        let topics = topics
            .iter()
            .map(|&(name, topic_id)| TopicMetadata {
                name: name.to_string(),
                topic_id,
                partitions: vec![PartitionMetadata {
                    partition: 0,
                    leader: Some(1),
                    replicas: vec![1],
                    isr: vec![1],
                    leader_epoch: 0,
                    partition_epoch: 0,
                    reassignment: None,
                }],
                config: TopicConfig::default(),
            })
            .collect();
        ClusterMetadata {
            version: 1,
            topics,
            deleted_topic_ids: deleted.to_vec(),
            ..ClusterMetadata::default()
        }
    }

    fn open(dir: &Path) -> Replicas {
        Replicas::open(1, dir, LogConfig::default(), false).expect("open replicas")
    }

    /// Appends `n` one-record batches (acks=1) and fsyncs them.
    fn produce(p: &Partition, n: usize) {
        for i in 0..n {
            let mut b = BatchBuilder::new(-1, 0, -1, 64);
            let value = format!("v{i}");
            b.push(NewRecord {
                key: None,
                value: value.as_bytes(),
                timestamp_ms: 0,
            });
            let bytes = b.finish();
            let batch = batch::CheckedBatch::check(bytes).expect("a built batch checks");
            let (responder, _peer) = Responder::for_test(1);
            let (handled, _) = p.produce(
                crate::protocol::Acks::Leader,
                batch,
                Duration::from_secs(1),
                responder,
                std::time::Instant::now(),
            );
            assert!(
                matches!(handled, Handled::Reply(Reply::Produced { .. })),
                "batch {i} refused"
            );
        }
        p.flush().expect("flush");
    }

    /// Every file under `dir`, by path relative to it, with its bytes.
    fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for entry in fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = PathBuf::from(entry.file_name());
            if path.is_dir() {
                out.extend(files(&path).into_iter().map(|(p, b)| (rel.join(p), b)));
            } else {
                out.insert(rel, fs::read(&path).expect("read file"));
            }
        }
        out
    }

    /// The quarantined dirs, by name, with their files.
    fn quarantined(broker_dir: &Path) -> Vec<(String, BTreeMap<PathBuf, Vec<u8>>)> {
        let Ok(entries) = fs::read_dir(broker_dir.join(QUARANTINE_DIR)) else {
            return Vec::new();
        };
        let mut out: Vec<_> = entries
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    files(&e.path()),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn given_partition_dirs_without_readable_topic_id_when_opening_should_quarantine_them_not_delete(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("broker-1");
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
        produce(&replicas.get("t", 0).expect("created"), 3);
        drop(replicas);
        fs::write(dir.join("t-0").join(TOPIC_ID_FILE), "garbage").expect("spoil topic_id");
        let t_files = files(&dir.join("t-0"));
        fs::create_dir(dir.join("u-0")).expect("mkdir");
        fs::write(
            dir.join("u-0").join("00000000000000000000.log"),
            b"some bytes",
        )
        .expect("write");
        let u_files = files(&dir.join("u-0"));

        let replicas = open(&dir);

        assert!(replicas.get("t", 0).is_none() && replicas.get("u", 0).is_none());
        assert!(
            !dir.join("t-0").exists() && !dir.join("u-0").exists(),
            "moved out of the way"
        );
        let aside = quarantined(&dir);
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert!(
            aside[0].0.starts_with("t-0.") && aside[1].0.starts_with("u-0."),
            "{aside:?}"
        );
        assert_eq!(aside[0].1, t_files, "every file kept, byte for byte");
        assert_eq!(aside[1].1, u_files);
    }

    #[test]
    fn given_replica_of_topic_id_metadata_never_heard_of_when_reconciling_should_quarantine_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("broker-1");
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 1)], &[]));
        produce(&replicas.get("t", 0).expect("created"), 2);
        let old = files(&dir.join("t-0"));
        drop(replicas);
        // A restarted broker, and metadata (a wiped or foreign ZooKeeper)
        // naming "t" with another id and listing no deleted topic.
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 2)], &[]));
        let fresh = replicas.get("t", 0).expect("new replica");
        assert_eq!(
            (fresh.topic_id, fresh.describe().log_end_offset),
            (2, 0),
            "the new topic starts empty"
        );
        produce(&fresh, 1);
        let newer = files(&dir.join("t-0"));
        // Metadata that names nothing at all.
        let _ = replicas.reconcile(&metadata(&[], &[]));
        assert!(replicas.get("t", 0).is_none());
        let aside = quarantined(&dir);
        assert_eq!(
            aside.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(),
            vec![old, newer],
            "{aside:?}"
        );
    }

    #[test]
    fn given_deleted_topic_id_when_reconciling_should_remove_the_replica_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("broker-1");
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 1)], &[]));
        produce(&replicas.get("t", 0).expect("created"), 2);
        let _ = replicas.reconcile(&metadata(&[("t", 2)], &[1]));
        let fresh = replicas.get("t", 0).expect("re-created");
        assert_eq!((fresh.topic_id, fresh.describe().log_end_offset), (2, 0));
        let _ = replicas.reconcile(&metadata(&[], &[1, 2]));
        assert!(replicas.get("t", 0).is_none());
        assert!(!dir.join("t-0").exists(), "deleted topic's files are gone");
        assert!(quarantined(&dir).is_empty(), "nothing was moved aside");
    }

    #[test]
    fn given_reassignment_away_from_this_broker_when_reconciling_should_keep_it_until_complete_then_delete(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("broker-1");
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 1)], &[]));
        produce(&replicas.get("t", 0).expect("created"), 2);
        let placed = |replicas: Vec<u32>, moving: bool| {
            let mut m = metadata(&[("t", 1)], &[]);
            let p = &mut m.topics[0].partitions[0];
            p.leader = Some(2);
            p.isr = replicas.clone();
            p.reassignment = moving.then(|| crate::protocol::Reassignment {
                target: vec![2],
                adding: vec![2],
                removing: vec![1],
                throttle_bytes_per_sec: None,
                original: vec![1],
            });
            p.replicas = replicas;
            m
        };
        let _ = replicas.reconcile(&placed(vec![2, 1], true));
        assert!(replicas.get("t", 0).is_some(), "held while the move runs");
        // Moving still, yet metadata (stale or odd) lists the replica elsewhere: not ours to delete.
        let _ = replicas.reconcile(&placed(vec![2], true));
        assert!(replicas.get("t", 0).is_none());
        assert_eq!(quarantined(&dir).len(), 1, "moved aside, not deleted");
        let replicas = open(&dir);
        let _ = replicas.reconcile(&metadata(&[("t", 1)], &[]));
        produce(&replicas.get("t", 0).expect("a new replica"), 1);
        let _ = replicas.reconcile(&placed(vec![2], false));
        assert!(replicas.get("t", 0).is_none());
        assert!(!dir.join("t-0").exists(), "moved away: files deleted");
        assert_eq!(quarantined(&dir).len(), 1, "nothing more moved aside");
    }

    #[test]
    fn given_big_topic_being_created_when_requests_look_up_other_replicas_should_not_wait_for_the_files(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let replicas = open(&tmp.path().join("broker-1"));
        let _ = replicas.reconcile(&metadata(&[("small", 1)], &[]));
        let mut big = metadata(&[("small", 1), ("big", 2)], &[]);
        let template = big.topics[1].partitions[0].clone();
        big.topics[1].partitions = (0..40)
            .map(|p| PartitionMetadata {
                partition: p,
                ..template.clone()
            })
            .collect();
        let (mut counts, mut slowest) = (std::collections::BTreeSet::new(), Duration::ZERO);
        std::thread::scope(|s| {
            let creating = s.spawn(|| replicas.reconcile(&big));
            while !creating.is_finished() {
                let started = std::time::Instant::now();
                assert!(replicas.get("small", 0).is_some());
                slowest = slowest.max(started.elapsed());
                counts.insert(replicas.all().len());
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        assert_eq!(replicas.all().len(), 41);
        assert!(
            counts.iter().any(|&n| n > 1 && n < 41),
            "replicas appear one by one: {counts:?}"
        );
        assert!(
            slowest < Duration::from_millis(100),
            "a lookup waited {slowest:?}"
        );
        let p = replicas.get("big", 39).expect("created");
        assert_eq!(
            p.leadership().leader,
            Some(1),
            "visible only with its leadership"
        );
    }

    #[test]
    fn given_dir_names_when_parsing_should_split_at_last_dash() {
        assert_eq!(parse_dir_name("my-topic-12"), Some(("my-topic".into(), 12)));
        assert_eq!(parse_dir_name("t-0"), Some(("t".into(), 0)));
        assert_eq!(parse_dir_name("nodash"), None);
        assert_eq!(parse_dir_name("t-x"), None);
    }

    /// A SimFs whose `/data` exists durably (the data dir predates the broker).
    fn sim_with_data_dir() -> SimFs {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/data")).expect("mkdir");
        sim.sync_dir(Path::new("/")).expect("sync root");
        sim
    }

    fn open_sim(sim: &SimFs) -> Replicas {
        Replicas::open_with(
            sim.shared(),
            1,
            Path::new("/data/broker-1"),
            LogConfig::default(),
            false,
        )
        .expect("open")
    }

    #[test]
    fn given_topic_just_created_when_power_is_cut_should_keep_the_replica_and_its_topic_id() {
        for seed in 0..16 {
            let sim = sim_with_data_dir();
            let replicas = open_sim(&sim);
            let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
            assert!(replicas.get("t", 0).is_some());
            drop(replicas);
            // Nothing appended, nothing flushed by the caller: the topic's
            // set-up alone must have reached the disk.
            if seed == 0 {
                sim.power_cut()
            } else {
                sim.power_cut_random(seed)
            }
            let replicas = open_sim(&sim);
            let p = replicas
                .get("t", 0)
                .unwrap_or_else(|| panic!("seed {seed}: replica lost at the power cut"));
            assert_eq!(p.topic_id, 7, "seed {seed}");
            assert!(
                !sim.exists(Path::new("/data/broker-1/quarantine")),
                "seed {seed}: nothing quarantined"
            );
        }
    }

    #[test]
    fn given_flushed_records_when_power_is_cut_should_reopen_the_replica_with_all_of_them() {
        let sim = sim_with_data_dir();
        let replicas = open_sim(&sim);
        let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
        let p = replicas.get("t", 0).expect("created");
        produce(&p, 5);
        let before = p.fetch_for_consumer(0, 1 << 20, None).records;
        drop((p, replicas));
        sim.power_cut();
        let replicas = open_sim(&sim);
        let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
        let p = replicas.get("t", 0).expect("replica kept");
        assert_eq!(
            (p.topic_id, p.describe().log_end_offset),
            (7, 5),
            "every flushed record is there"
        );
        assert_eq!(
            p.fetch_for_consumer(0, 1 << 20, None).records,
            before,
            "byte for byte"
        );
    }

    #[test]
    fn given_power_cut_at_any_step_of_replica_creation_when_reopening_should_never_fail_or_lose_a_kept_dir(
    ) {
        let probe = sim_with_data_dir();
        let start = probe.ops();
        let _ = open_sim(&probe).reconcile(&metadata(&[("t", 7)], &[]));
        let steps = probe.ops() - start;
        assert!(steps > 3, "creation takes several steps: {steps}");
        for k in 0..steps {
            let sim = sim_with_data_dir();
            let replicas = open_sim(&sim);
            sim.crash_at(sim.ops() + k);
            let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
            drop(replicas);
            sim.power_cut();
            let replicas = open_sim(&sim);
            if let Some(p) = replicas.get("t", 0) {
                assert_eq!(
                    (p.topic_id, p.describe().log_end_offset),
                    (7, 0),
                    "step {k}"
                );
            }
            // A half-made dir is moved aside, never deleted; the topic is
            // created again from metadata.
            let _ = replicas.reconcile(&metadata(&[("t", 7)], &[]));
            let p = replicas
                .get("t", 0)
                .unwrap_or_else(|| panic!("step {k}: replica not re-created"));
            assert_eq!(p.topic_id, 7, "step {k}");
        }
    }
}
