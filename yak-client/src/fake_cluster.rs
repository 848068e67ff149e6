//! Test-only: a cluster in a temp dir that answers the client's calls from
//! threads in this process (ZooKeeper: metadata and producer ids; broker 1:
//! produce, with the real idempotent-producer table), so producer paths a
//! real cluster hits only by accident (a full disk) can be scripted.

use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use yak_protocol::batch;
use yak_protocol::frame;
use yak_protocol::limits::FRAME_BYTES_MAX;
use yak_protocol::{
    BrokerInfo, Call, ClusterMetadata, ErrorBody, ErrorCode, PartitionMetadata, Reply, Request,
    Response, TopicMetadata,
};
use yak_storage::producers::{ProducerTable, Verdict};

/// What broker 1 holds and how it misbehaves.
#[derive(Default)]
pub struct BrokerState {
    /// Batches appended: (producer id, base sequence, record values).
    pub log: Vec<(i64, i32, Vec<Vec<u8>>)>,
    table: ProducerTable,
    /// Refuse the batch with this (producer id, base sequence) once, with `StorageError`.
    pub fail_once: Option<(i64, i32)>,
    /// Producer ids handed out so far.
    pub producer_ids: i64,
}

/// A fake cluster at `dir` with one topic `t` of one partition led by broker 1.
pub struct FakeCluster {
    /// The broker's state, shared with its thread.
    pub broker: Arc<Mutex<BrokerState>>,
}

impl FakeCluster {
    /// Binds `zookeeper.sock` and `broker-1.sock` in `dir` and serves them.
    pub fn start(dir: &Path) -> FakeCluster {
        let broker = Arc::new(Mutex::new(BrokerState::default()));
        let socket = yak_protocol::paths::broker_socket(dir, 1);
        let metadata = ClusterMetadata {
            version: 1,
            brokers: vec![BrokerInfo {
                id: 1,
                pid: 1,
                socket: socket.display().to_string(),
                alive: true,
                restarts: 0,
                kafka_address: None,
            }],
            topics: vec![TopicMetadata {
                name: "t".into(),
                topic_id: 1,
                partitions: vec![PartitionMetadata {
                    partition: 0,
                    leader: Some(1),
                    replicas: vec![1],
                    isr: vec![1],
                    leader_epoch: 0,
                    partition_epoch: 0,
                    reassignment: None,
                }],
                config: Default::default(),
            }],
            ..ClusterMetadata::default()
        };
        let state = Arc::clone(&broker);
        serve(
            &yak_protocol::paths::zookeeper_socket(dir),
            move |call| match call {
                Call::Metadata { .. } => Reply::Metadata(metadata.clone()),
                Call::InitProducerId => {
                    let mut s = state.lock().expect("fake broker lock");
                    s.producer_ids += 1;
                    Reply::ProducerId {
                        producer_id: s.producer_ids,
                    }
                }
                other => Reply::Error(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("fake ZooKeeper: {other:?}"),
                )),
            },
        );
        let state = Arc::clone(&broker);
        serve(&socket, move |call| match call {
            Call::Produce { records, .. } => {
                produce(&mut state.lock().expect("fake broker lock"), &records)
            }
            other => Reply::Error(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("fake broker: {other:?}"),
            )),
        });
        FakeCluster { broker }
    }
}

fn produce(s: &mut BrokerState, bytes: &[u8]) -> Reply {
    let Ok(checked) = batch::CheckedBatch::check(bytes.to_vec()) else {
        return Reply::Error(ErrorBody::new(ErrorCode::CorruptBatch, "bad batch"));
    };
    let header = *checked.header();
    let (pid, first, last) = (
        header.producer_id,
        header.base_sequence,
        header.last_sequence(),
    );
    if s.fail_once == Some((pid, first)) {
        s.fail_once = None;
        return Reply::Error(ErrorBody::new(
            ErrorCode::StorageError,
            "No space left on device",
        ));
    }
    match s.table.check(pid, header.producer_epoch, first, last) {
        Verdict::Append => {
            let offset = s.log.len() as u64;
            let values = batch::decode(bytes)
                .map(|rs| {
                    rs.iter()
                        .flatten()
                        .map(|r| r.value.unwrap_or_default().to_vec())
                        .collect()
                })
                .unwrap_or_default();
            s.log.push((pid, first, values));
            s.table
                .record(pid, header.producer_epoch, first, last, offset, offset);
            Reply::Produced {
                base_offset: offset,
                duplicate: false,
                log_append_time_ms: None,
            }
        }
        Verdict::Duplicate { base_offset, .. } => Reply::Produced {
            base_offset,
            duplicate: true,
            log_append_time_ms: None,
        },
        Verdict::OutOfOrder { expected } => Reply::Error(ErrorBody::new(
            ErrorCode::OutOfOrderSequence,
            format!("expected sequence {expected}"),
        )),
        Verdict::Fenced { current } => Reply::Error(ErrorBody::new(
            ErrorCode::InvalidProducerEpoch,
            format!("producer epoch older than {current}"),
        )),
    }
}

/// Serves `path` on a thread: one thread per connection, `answer` per request.
fn serve(path: &Path, answer: impl Fn(Call) -> Reply + Send + Sync + 'static) {
    let listener = UnixListener::bind(path).expect("bind fake socket");
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || connection(stream, &*answer));
        }
    });
}

fn connection(stream: UnixStream, answer: &dyn Fn(Call) -> Reply) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    while let Ok(req) = frame::read::<_, Request>(&mut reader, FRAME_BYTES_MAX) {
        let response = Response {
            correlation_id: req.correlation_id,
            reply: answer(req.call),
        };
        if frame::write(&mut writer, &response).is_err() || writer.flush().is_err() {
            return;
        }
    }
}
