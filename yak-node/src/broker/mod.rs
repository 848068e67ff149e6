//! The broker: serves produce, fetch and offset requests for the partition
//! replicas it holds, keeps them in line with ZooKeeper's metadata, and
//! heartbeats. Owns partition data; never decides placement or leaders.

pub mod notify;
pub mod replicas;
pub mod zk_session;

use crate::limits::{BATCH_BYTES_MAX, FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::protocol::batch::{self, BatchError};
use crate::protocol::{Call, ErrorBody, ErrorCode, FetchPartition, FetchedPartition, OffsetSpec, Reply};
use crate::server::{self, Handler};
use crate::storage::{FsyncPolicy, LogConfig, StorageError};
use notify::Notifier;
use replicas::{Replica, Replicas};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zk_session::ZkSession;

/// How a broker is set up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Broker id (1..).
    pub id: u32,
    /// Where the sockets live.
    pub run_dir: PathBuf,
    /// Where `broker-<id>/` goes.
    pub data_dir: PathBuf,
    /// Segment size and index interval.
    pub log: LogConfig,
    /// When appends are fsynced.
    pub fsync: FsyncPolicy,
}

/// The broker's request handler.
pub struct Broker {
    id: u32,
    fsync: FsyncPolicy,
    replicas: Arc<Replicas>,
    zk: Arc<ZkSession>,
    appended: Arc<Notifier>,
}

fn storage_error(e: StorageError) -> ErrorBody {
    match e {
        StorageError::OffsetOutOfRange { log_start_offset, log_end_offset, offset } => ErrorBody::new(
            ErrorCode::OffsetOutOfRange { log_start_offset, log_end_offset },
            format!("offset {offset} is outside the log [{log_start_offset}, {log_end_offset})"),
        ),
        other => {
            tracing::error!(error = %other, "storage failure");
            ErrorBody::new(ErrorCode::StorageError, other.to_string())
        }
    }
}

impl Broker {
    /// Finds a replica, reloading metadata once if it is not known yet
    /// (a topic created a moment ago), and checks this broker leads it.
    fn leader_replica(&self, topic: &str, partition: u32) -> Result<Arc<Replica>, ErrorBody> {
        let replica = match self.replicas.get(topic, partition) {
            Some(r) => r,
            None => {
                if let Ok(m) = self.zk.metadata() {
                    self.replicas.reconcile(&m);
                }
                self.replicas.get(topic, partition).ok_or_else(|| self.not_here(topic, partition))?
            }
        };
        let l = replica.leadership();
        if l.leader != Some(self.id) {
            return Err(ErrorBody::new(
                ErrorCode::NotLeader { leader: l.leader, epoch: l.epoch },
                format!("broker {} does not lead {topic}-{partition}", self.id),
            ));
        }
        Ok(replica)
    }

    fn not_here(&self, topic: &str, partition: u32) -> ErrorBody {
        match self.zk.metadata() {
            Ok(m) => match m.topics.iter().find(|t| t.name == topic) {
                None => ErrorBody::new(ErrorCode::UnknownTopic, format!("topic '{topic}' does not exist")),
                Some(t) => match t.partitions.get(partition as usize) {
                    None => ErrorBody::new(
                        ErrorCode::UnknownPartition,
                        format!("topic '{topic}' has no partition {partition}"),
                    ),
                    Some(p) => ErrorBody::new(
                        ErrorCode::NotLeader { leader: p.leader, epoch: p.leader_epoch },
                        format!("broker {} holds no replica of {topic}-{partition}", self.id),
                    ),
                },
            },
            Err(_) => ErrorBody::new(ErrorCode::UnknownTopic, format!("broker {} does not know {topic}-{partition}", self.id)),
        }
    }

    fn produce(&self, topic: &str, partition: u32, acks: i8, mut records: Vec<u8>) -> Result<Reply, ErrorBody> {
        if records.len() > BATCH_BYTES_MAX {
            return Err(ErrorBody::new(
                ErrorCode::MessageTooLarge,
                format!("batch of {} bytes exceeds the limit of {BATCH_BYTES_MAX}", records.len()),
            ));
        }
        let header = batch::validate(&records).map_err(|e: BatchError| {
            ErrorBody::new(ErrorCode::CorruptBatch, format!("{topic}-{partition}: {e}"))
        })?;
        if header.total_bytes() != records.len() {
            return Err(ErrorBody::new(ErrorCode::CorruptBatch, "a produce request carries exactly one batch"));
        }
        let replica = self.leader_replica(topic, partition)?;
        let epoch = replica.leadership().epoch;
        let info = {
            let mut log = replica.log();
            let info = log.append(&mut records, epoch).map_err(storage_error)?;
            if acks == -1 && self.fsync == FsyncPolicy::Always {
                log.flush().map_err(storage_error)?;
            }
            info
        };
        self.appended.notify();
        Ok(Reply::Produced { base_offset: info.base_offset })
    }

    fn fetch_one(&self, req: &FetchPartition, budget: u32) -> FetchedPartition {
        let mut out = FetchedPartition {
            topic: req.topic.clone(),
            partition: req.partition,
            error: None,
            high_watermark: 0,
            log_start_offset: 0,
            records: Vec::new(),
        };
        let replica = match self.leader_replica(&req.topic, req.partition) {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        let log = replica.log();
        out.high_watermark = log.log_end_offset();
        out.log_start_offset = log.log_start_offset();
        if req.offset != out.high_watermark {
            match log.read(req.offset, req.max_bytes.min(budget)) {
                Ok(bytes) => out.records = bytes,
                Err(e) => out.error = Some(storage_error(e)),
            }
        }
        out
    }

    fn fetch(&self, max_wait_ms: u64, partitions: &[FetchPartition]) -> Reply {
        let deadline = Instant::now() + Duration::from_millis(max_wait_ms.min(FETCH_WAIT_MS_MAX));
        loop {
            let generation = self.appended.generation();
            let mut budget = FETCH_RESPONSE_BYTES_MAX;
            let mut results = Vec::with_capacity(partitions.len());
            for p in partitions {
                let r = self.fetch_one(p, budget.max(1));
                budget = budget.saturating_sub(r.records.len() as u32);
                results.push(r);
            }
            let ready = results.iter().any(|r| !r.records.is_empty() || r.error.is_some());
            if ready || Instant::now() >= deadline {
                return Reply::Fetched { partitions: results };
            }
            self.appended.wait(generation, deadline);
        }
    }

    fn list_offsets(&self, topic: &str, partition: u32, spec: OffsetSpec) -> Result<Reply, ErrorBody> {
        let replica = self.leader_replica(topic, partition)?;
        let log = replica.log();
        let offset = match spec {
            OffsetSpec::Earliest => log.log_start_offset(),
            OffsetSpec::Latest => log.log_end_offset(),
        };
        Ok(Reply::Offset { offset })
    }

    fn dispatch(&self, call: Call) -> Option<Result<Reply, ErrorBody>> {
        Some(match call {
            Call::Produce { topic, partition, acks, records } => {
                let result = self.produce(&topic, partition, acks, records);
                if acks == 0 {
                    if let Err(e) = result {
                        tracing::warn!(topic = %topic, partition, error = %e, "acks=0 produce failed");
                    }
                    return None;
                }
                result
            }
            Call::Fetch { max_wait_ms, partitions } => Ok(self.fetch(max_wait_ms, &partitions)),
            Call::ListOffsets { topic, partition, spec } => self.list_offsets(&topic, partition, spec),
            Call::LocalPartitions => Ok(Reply::LocalPartitions { partitions: self.replicas.describe() }),
            Call::RegisterBroker { .. }
            | Call::Heartbeat { .. }
            | Call::CreateTopic { .. }
            | Call::DeleteTopic { .. }
            | Call::Metadata { .. } => {
                Err(ErrorBody::new(ErrorCode::InvalidRequest, "brokers do not serve metadata requests; ask ZooKeeper"))
            }
        })
    }
}

impl Handler for Broker {
    fn handle(&self, call: Call) -> Option<Reply> {
        self.dispatch(call).map(|r| r.unwrap_or_else(Reply::Error))
    }
}

/// Runs a broker until SIGTERM.
pub fn run(config: BrokerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let data = config.data_dir.join(format!("broker-{}", config.id));
    let replicas = Arc::new(Replicas::open(config.id, &data, config.log)?);
    let socket = config.run_dir.join(format!("broker-{}.sock", config.id));
    let listener = crate::transport::Listener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let zk = Arc::new(ZkSession::new(config.id, config.run_dir.join("zookeeper.sock"), socket.clone()));
    {
        let replicas = Arc::clone(&replicas);
        let socket = socket.clone();
        crate::shutdown::on_terminate(move || {
            replicas.flush_all();
            let _ = std::fs::remove_file(&socket);
        })?;
    }
    {
        let zk = Arc::clone(&zk);
        let replicas = Arc::clone(&replicas);
        std::thread::Builder::new().name("zk-session".into()).spawn(move || {
            zk.run(|m| replicas.reconcile(&m));
        })?;
    }
    tracing::info!(broker = config.id, socket = %socket.display(), fsync = ?config.fsync, "broker serving");
    let broker = Broker { id: config.id, fsync: config.fsync, replicas, zk, appended: Arc::new(Notifier::default()) };
    server::serve(listener, Arc::new(broker));
    Ok(())
}
