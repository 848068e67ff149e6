//! The mini-ZooKeeper: broker sessions, the topic metadata state machine,
//! its fsynced metadata log, and the request handler that ties them
//! together. Owns cluster metadata; never touches partition data.

pub mod alter;
pub mod assign;
pub mod auth;
pub mod balance;
mod classic;
mod classic_groups;
mod coordinator;
mod dispatch;
pub mod events;
pub mod groups;
pub mod metalog;
mod ops;
pub mod producer_epochs;
pub mod reassign;
pub mod reconcile;
pub mod sessions;
pub mod state;

use crate::limits::{
    BROKERS_MAX, BROKER_ID_MAX, EVENTS_PER_ANSWER_MAX, FRAME_BYTES_MAX, METADATA_PAGE_BYTES_MAX,
    PROCESS_NAME_CHARS_MAX, SESSION_TICK_MS, SOCKET_PATH_BYTES_MAX,
};
use crate::protocol::metalog::{MetaRecord, MetaSnapshot};
use crate::protocol::{
    Call, ClusterMetadata, ErrorBody, ErrorCode, EventKind, LeaderMove, ProcessRestart, Reason,
    Reply,
};
use crate::server::{self, Handled, Handler, Responder};
use events::EventLog;
use groups::Groups;
use metalog::MetaLog;
use sessions::SharedSessions;
use state::{MetadataState, TopicDefaults};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a ZooKeeper process is set up.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// Where `zookeeper.sock` goes.
    pub run_dir: PathBuf,
    /// Where `zookeeper/` (metadata log and snapshot) goes.
    pub data_dir: PathBuf,
    /// A broker without a heartbeat for this long is dead.
    pub session_timeout: Duration,
    /// Defaults for topics created without counts.
    pub defaults: TopicDefaults,
    /// A consumer-group member silent this long is removed (unless it asks
    /// for another timeout when it joins).
    pub group_session_timeout: Duration,
    /// The shortest session timeout a member may ask for.
    pub group_session_timeout_min: Duration,
    /// The longest session timeout a member may ask for.
    pub group_session_timeout_max: Duration,
    /// Cluster events kept (the newest; older ones are dropped).
    pub events_max: usize,
    /// How often leadership moves back to preferred replicas on its own
    /// (`None`: only when asked).
    pub leader_rebalance_interval: Option<Duration>,
    /// The supervisor's pid: the only process whose reports (broker down,
    /// restarts) are accepted, and whose children alone may register as
    /// brokers (`auth.rs`). `None`: nobody may.
    pub supervisor_pid: Option<u32>,
    /// Most connections served at once.
    pub connections_max: usize,
}

/// Why ZooKeeper cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ZkOpenError {
    /// The metadata log or snapshot.
    #[error(transparent)]
    MetaLog(#[from] metalog::MetaLogError),
    /// The data dir's lock, or the cluster id could not be made.
    #[error(transparent)]
    DataDir(#[from] crate::datadir::DataDirError),
}

struct Inner {
    state: MetadataState,
    /// Behind their own lock: heartbeats never wait for this one.
    sessions: SharedSessions,
    /// The state's metadata version, readable without this lock (heartbeat answers).
    version: Arc<AtomicU64>,
    log: MetaLog,
    groups: Groups,
    /// Kafka classic groups (the leader member assigns).
    classic: classic_groups::ClassicGroups,
    /// The newest cluster events.
    events: EventLog,
    /// Brokers alive at the last failover check: one missing now has lost its session.
    alive: Vec<u32>,
    /// Epoch bumps of producer ids (in memory only; see the module).
    producer_epochs: producer_epochs::ProducerEpochs,
}

/// ZooKeeper's request handler.
pub struct ZooKeeper {
    inner: Mutex<Inner>,
    /// The sessions `Inner` holds too; heartbeats use them without its lock.
    sessions: SharedSessions,
    /// The metadata version, as last applied.
    version: Arc<AtomicU64>,
    defaults: TopicDefaults,
    group_session_timeout: Duration,
    group_session_timeout_min: Duration,
    group_session_timeout_max: Duration,
    supervisor_pid: Option<u32>,
}

impl ZooKeeper {
    /// Opens the metadata log and replays it; the first time, gives the
    /// cluster its id. The caller holds the data dir's lock.
    pub fn open(config: &ZkConfig) -> Result<ZooKeeper, ZkOpenError> {
        let dir = crate::paths::zookeeper_data_dir(&config.data_dir);
        let (mut log, recovered) = MetaLog::open(&dir)?;
        let (mut state, events) = replay(&mut log, recovered, config.events_max)?;
        let restart = state.cluster_id().is_some();
        if !restart {
            let record = MetaRecord::ClusterIdCreated {
                cluster_id: crate::datadir::new_cluster_id()?,
            };
            log.append(&record)?;
            state.apply(&record);
            tracing::info!(
                cluster_id = state.cluster_id().unwrap_or_default(),
                "cluster id created"
            );
        }
        tracing::info!(
            topics = state.topics().count(),
            version = state.version,
            cluster_id = state.cluster_id().unwrap_or_default(),
            "metadata recovered"
        );
        let sessions = SharedSessions::new(config.session_timeout);
        // Brokers get a few session timeouts to re-register before anything
        // is failed over: a ZooKeeper restart alone moves no leader.
        let known: Vec<u32> = state
            .topics()
            .flat_map(|t| t.partitions.iter().flat_map(|p| p.replicas.iter().copied()))
            .collect();
        sessions.assume_alive(known, Instant::now() + config.session_timeout * 4);
        let alive = sessions.alive(Instant::now());
        let version = Arc::new(AtomicU64::new(state.version));
        let mut inner = Inner {
            state,
            sessions: sessions.clone(),
            version: Arc::clone(&version),
            log,
            groups: Groups::default(),
            classic: classic_groups::ClassicGroups::with_session_timeouts(
                config.group_session_timeout_min,
                config.group_session_timeout_max,
            ),
            events,
            alive,
            producer_epochs: producer_epochs::ProducerEpochs::default(),
        };
        Self::record_events(
            &mut inner,
            vec![EventKind::ZookeeperStarted {
                pid: std::process::id(),
                restart,
            }],
        );
        Ok(ZooKeeper {
            inner: Mutex::new(inner),
            sessions,
            version,
            defaults: config.defaults,
            group_session_timeout: config.group_session_timeout,
            group_session_timeout_min: config.group_session_timeout_min,
            group_session_timeout_max: config.group_session_timeout_max,
            supervisor_pid: config.supervisor_pid,
        })
    }

    /// Fails over partitions whose leader or ISR members lost their session
    /// (`reported`: the broker the supervisor just reported down). Called on
    /// every tick and whenever a broker comes or goes. Each change is
    /// recorded with its events in one append.
    fn fail_over(inner: &mut Inner, reported: Option<u32>) {
        let alive = inner.sessions.alive(Instant::now());
        let lost = events::lost_brokers(&inner.alive, &alive, reported);
        inner.alive.clone_from(&alive);
        let mut pending: Vec<EventKind> = lost
            .iter()
            .map(|&(broker, reason)| EventKind::BrokerSessionExpired { broker, reason })
            .collect();
        let why_gone = |b: u32| {
            lost.iter()
                .find(|(l, _)| *l == b)
                .map_or(Reason::NotAlive, |(_, r)| *r)
        };
        for record in inner.state.plan_failover(&alive) {
            if let MetaRecord::PartitionChanged {
                topic,
                partition,
                leader,
                isr,
                leader_epoch,
            } = &record
            {
                let old = inner
                    .state
                    .topic(topic)
                    .and_then(|t| t.partitions.get(*partition as usize))
                    .cloned();
                if old.as_ref().map(|o| o.leader) != Some(*leader) {
                    tracing::info!(topic = %topic, partition, old_leader = ?old.as_ref().and_then(|o| o.leader), new_leader = ?leader, leader_epoch, isr = ?isr, "leader changed");
                } else {
                    tracing::info!(topic = %topic, partition, leader = ?leader, isr = ?isr, "isr changed");
                }
                if let Some(old) = old {
                    pending.extend(events::partition_changed(
                        topic,
                        &old,
                        *leader,
                        isr,
                        *leader_epoch,
                        &why_gone,
                    ));
                }
            }
            if let Err(e) = Self::commit_with(inner, record, std::mem::take(&mut pending)) {
                tracing::error!(error = %e, "cannot record failover");
                return;
            }
        }
        Self::record_events(inner, pending);
    }

    /// Moves leadership back to preferred replicas that are alive and in
    /// the ISR (of `topic`, or every topic): each move a new leader epoch,
    /// recorded with its `leader_elected` event (reason `preferred_leader`)
    /// like a failover. Returns the moves made.
    fn rebalance_leaders(
        inner: &mut Inner,
        topic: Option<&str>,
    ) -> Result<Vec<LeaderMove>, ErrorBody> {
        let alive = inner.sessions.alive(Instant::now());
        let mut moved = Vec::new();
        for record in inner.state.plan_preferred_leaders(&alive, topic) {
            let MetaRecord::PartitionChanged {
                topic,
                partition,
                leader: Some(new_leader),
                isr,
                leader_epoch,
            } = &record
            else {
                continue;
            };
            let Some(old) = inner
                .state
                .topic(topic)
                .and_then(|t| t.partitions.get(*partition as usize))
                .cloned()
            else {
                continue;
            };
            tracing::info!(topic = %topic, partition, old_leader = ?old.leader, new_leader, leader_epoch, "leader moved to the preferred replica");
            let kinds = events::partition_changed(
                topic,
                &old,
                Some(*new_leader),
                isr,
                *leader_epoch,
                &|_| Reason::PreferredLeader,
            );
            let m = LeaderMove {
                topic: topic.clone(),
                partition: *partition,
                old_leader: old.leader,
                new_leader: *new_leader,
                leader_epoch: *leader_epoch,
            };
            Self::commit_with(inner, record, kinds)?;
            moved.push(m);
        }
        Ok(moved)
    }

    /// Checks sessions every `period` and preferred leaders every
    /// `rebalance_every` (if set), forever.
    pub fn tick_forever(&self, period: Duration, rebalance_every: Option<Duration>) {
        let mut rebalance_due = rebalance_every.map(|every| Instant::now() + every);
        loop {
            std::thread::sleep(period);
            let mut inner = self.lock();
            Self::fail_over(&mut inner, None);
            Self::step_reassignments(&mut inner);
            Self::tick_groups(&mut inner);
            Self::tick_classic(&mut inner);
            if let (Some(due), Some(every)) = (rebalance_due, rebalance_every) {
                if Instant::now() < due {
                    continue;
                }
                rebalance_due = Some(Instant::now() + every);
                if let Err(e) = Self::rebalance_leaders(&mut inner, None) {
                    tracing::warn!(error = %e, "cannot move leaders back to preferred replicas");
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave half-applied state:
        // records are applied only after they are durable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` durably, then applies it. A failed append fails the
    /// request and applies nothing; a fail-stop error stops the process.
    fn commit(inner: &mut Inner, record: MetaRecord) -> Result<(), ErrorBody> {
        Self::commit_with(inner, record, Vec::new())
    }

    /// [`ZooKeeper::commit`] with the events that describe the change, in
    /// the same append (one fsync). If the append fails for a reason that is
    /// not fail-stop, the change is tried again alone: an event never fails
    /// the request that caused it.
    fn commit_with(
        inner: &mut Inner,
        record: MetaRecord,
        kinds: Vec<EventKind>,
    ) -> Result<(), ErrorBody> {
        let mut records = vec![record];
        if !kinds.is_empty() {
            records.push(MetaRecord::Events(inner.events.stamp(kinds, now_ms())));
        }
        let result = match inner.log.append_all(&records) {
            Err(e) if records.len() > 1 && !e.is_fail_stop() => {
                tracing::warn!(error = %e, "cannot append a change with its events; trying the change alone");
                records.truncate(1);
                inner.log.append_all(&records)
            }
            other => other,
        };
        if let Err(e) = result {
            if e.is_fail_stop() {
                fail_stop(&e);
            }
            tracing::error!(error = %e, "metadata log append failed");
            return Err(ErrorBody::new(
                ErrorCode::StorageError,
                format!("metadata log: {e}"),
            ));
        }
        for r in &records {
            apply(&mut inner.state, &mut inner.events, r);
        }
        inner.version.store(inner.state.version, Ordering::Release);
        Self::snapshot_if_due(inner);
        Ok(())
    }

    /// Records events that no metadata change carries (a registration, a
    /// restart, a rebalance) in a record of their own. A failure is logged
    /// and the events are lost; it fails no request (a fail-stop error still
    /// stops the process: the disk is gone for every record).
    fn record_events(inner: &mut Inner, kinds: Vec<EventKind>) {
        if kinds.is_empty() {
            return;
        }
        let record = MetaRecord::Events(inner.events.stamp(kinds, now_ms()));
        match inner.log.append(&record) {
            Ok(()) => {
                apply(&mut inner.state, &mut inner.events, &record);
                Self::snapshot_if_due(inner);
            }
            Err(e) if e.is_fail_stop() => fail_stop(&e),
            Err(e) => tracing::warn!(error = %e, "cannot record cluster events; they are lost"),
        }
    }

    /// Takes a snapshot if one is due. Only a fail-stop error comes back: a
    /// failed snapshot is retried later.
    fn snapshot_if_due(inner: &mut Inner) {
        let Inner {
            state, events, log, ..
        } = inner;
        if let Err(e) = log.snapshot_if_due(|| snapshot_of(state, events)) {
            fail_stop(&e);
        }
    }

    fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        rf: Option<u32>,
        config: crate::protocol::TopicConfig,
    ) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        let alive = inner.sessions.alive(Instant::now());
        let record =
            inner
                .state
                .plan_create(name, partitions, rf, config, self.defaults, &alive)?;
        let kinds = match &record {
            MetaRecord::TopicCreated(t) => vec![EventKind::TopicCreated {
                topic: t.name.clone(),
                topic_id: t.topic_id,
                partitions: t.partitions.len() as u32,
                replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len() as u32),
            }],
            _ => Vec::new(),
        };
        Self::commit_with(&mut inner, record, kinds)?;
        let topic = inner.state.topic(name).cloned().ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::StorageError,
                "invariant: created topic is in the state",
            )
        })?;
        tracing::info!(
            topic = name,
            topic_id = topic.topic_id,
            partitions = topic.partitions.len(),
            "topic created"
        );
        Ok(Reply::TopicCreated(topic))
    }

    fn delete_topic(&self, name: &str) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        let record = inner.state.plan_delete(name)?;
        let kinds = inner
            .state
            .topic(name)
            .map(|t| EventKind::TopicDeleted {
                topic: name.to_string(),
                topic_id: t.topic_id,
            })
            .into_iter()
            .collect();
        Self::commit_with(&mut inner, record, kinds)?;
        tracing::info!(topic = name, "topic deleted");
        Ok(Reply::TopicDeleted)
    }

    /// One page of metadata (whole topics, name order, after `after_topic`).
    fn metadata(&self, names: Option<Vec<String>>, after_topic: Option<String>) -> Reply {
        let inner = self.lock();
        let (topics, more) = inner.state.metadata_page(
            names.as_deref(),
            after_topic.as_deref(),
            METADATA_PAGE_BYTES_MAX,
        );
        // The deleted ids go with the full metadata, the one brokers load.
        let deleted_topic_ids = match names {
            None => inner.state.deleted_topic_ids().collect(),
            Some(_) => Vec::new(),
        };
        Reply::Metadata(ClusterMetadata {
            more,
            version: inner.state.version,
            brokers: inner.sessions.infos(Instant::now()),
            topics,
            cluster_id: inner.state.cluster_id().unwrap_or_default().to_string(),
            deleted_topic_ids,
        })
    }

    /// Refuses a cluster-only call that `peer` (the sender's pid) may not
    /// make (see `auth.rs`); every other call passes.
    fn authorize(&self, call: &Call, peer: Option<u32>) -> Result<(), ErrorBody> {
        // The sessions' own lock, not the state's: a heartbeat never waits for an fsync.
        let registered = |id: u32| self.sessions.pid(id);
        match call {
            Call::RegisterBroker { broker_id, pid, .. } => {
                let who = auth::Registrant {
                    pid: peer,
                    parent: peer.and_then(crate::protocol::peer::parent_pid),
                    command_line: peer.and_then(crate::protocol::peer::command_line),
                };
                auth::check_registration(self.supervisor_pid, &who, *broker_id, *pid)
            }
            Call::Heartbeat { broker_id } => {
                auth::check_broker(registered(*broker_id), peer, *broker_id, "Heartbeat")
            }
            Call::AlterIsr { leader, .. } => {
                auth::check_broker(registered(*leader), peer, *leader, "AlterIsr")
            }
            Call::BrokerDown { .. } => {
                auth::check_supervisor(self.supervisor_pid, peer, "BrokerDown")
            }
            Call::ProcessRestarted(_) => {
                auth::check_supervisor(self.supervisor_pid, peer, "ProcessRestarted")
            }
            Call::ForgetBroker { .. } => {
                auth::check_supervisor(self.supervisor_pid, peer, "ForgetBroker")
            }
            _ => Ok(()),
        }
    }
}

impl Handler for ZooKeeper {
    fn handle(&self, call: Call, responder: Responder) -> Handled {
        let result = match self.authorize(&call, responder.peer_pid()) {
            // Stamped with its arrival, not with when a lock let it through.
            Ok(()) if matches!(call, Call::Heartbeat { .. }) => match call {
                Call::Heartbeat { broker_id } => self.heartbeat(broker_id, responder.received()),
                _ => self.dispatch(call),
            },
            Ok(()) => self.dispatch(call),
            Err(e) => {
                tracing::warn!(error = %e, "refused a cluster-only call");
                Err(e)
            }
        };
        Handled::Reply(result.unwrap_or_else(Reply::Error))
    }
}

/// Now in Unix milliseconds (events are stamped with it).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Applies one durable record: metadata to the state, events to the history.
fn apply(state: &mut MetadataState, events: &mut EventLog, record: &MetaRecord) {
    match record {
        MetaRecord::Events(e) => events.apply(e),
        other => state.apply(other),
    }
}

/// The whole state, events included, as a snapshot.
fn snapshot_of(state: &MetadataState, events: &EventLog) -> MetaSnapshot {
    let mut s = state.snapshot();
    events.snapshot_into(&mut s);
    s
}

/// The state and the events the metadata log holds; then a snapshot, if
/// one is due. A snapshot that fails (a full disk) does not stop start-up:
/// ZooKeeper runs on the old snapshot and the log, and tries again later.
fn replay(
    log: &mut MetaLog,
    recovered: metalog::Recovered,
    events_max: usize,
) -> Result<(MetadataState, EventLog), metalog::MetaLogError> {
    let mut events = EventLog::new(events_max);
    events.restore(&recovered.snapshot);
    let mut state = MetadataState::from_snapshot(recovered.snapshot);
    for r in &recovered.records {
        apply(&mut state, &mut events, r);
    }
    log.snapshot_if_due(|| snapshot_of(&state, &events))?;
    Ok((state, events))
}

/// Stops ZooKeeper: what the metadata log holds on disk is unknown (an
/// fsync failed, or a torn write could not be cut off). The supervisor
/// restarts it and it replays what is really on disk; retrying could
/// acknowledge a record the disk never got.
fn fail_stop(error: &metalog::MetaLogError) -> ! {
    tracing::error!(error = %error, "metadata log failed; stopping so a restart replays what is on disk");
    std::process::exit(crate::broker::FAIL_STOP_EXIT_CODE)
}

/// Runs ZooKeeper until SIGTERM.
pub fn run(config: ZkConfig) -> Result<(), Box<dyn std::error::Error>> {
    // Before anything in the dir is opened, recovered or truncated; held
    // until the process exits.
    let dir = crate::paths::zookeeper_data_dir(&config.data_dir);
    let _lock = crate::datadir::lock(&dir, crate::datadir::ZOOKEEPER_LOCK_FILE, "zookeeper")?;
    let connections_max = crate::fdlimit::prepare(config.connections_max);
    let zk = Arc::new(ZooKeeper::open(&config)?);
    let rebalance_every = config.leader_rebalance_interval;
    let socket = crate::paths::zookeeper_socket(&config.run_dir);
    let listener = crate::transport::Listener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let cleanup = socket.clone();
    crate::shutdown::on_terminate(move || {
        let _ = std::fs::remove_file(&cleanup);
    })?;
    {
        let zk = Arc::clone(&zk);
        std::thread::Builder::new()
            .name("sessions".into())
            .spawn(move || {
                zk.tick_forever(Duration::from_millis(SESSION_TICK_MS), rebalance_every)
            })?;
    }
    tracing::info!(socket = %socket.display(), max_frame_bytes = FRAME_BYTES_MAX, "zookeeper serving");
    server::serve(listener, zk, Default::default(), connections_max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{
        GROUP_SESSION_TIMEOUT_MS_MAX, GROUP_SESSION_TIMEOUT_MS_MIN,
        METADATA_LOG_RECORDS_PER_SNAPSHOT,
    };
    use crate::protocol::metalog::MetaSnapshot;
    use crate::protocol::TopicMetadata;
    use crate::storage::fs::{Fs, SimFs, WriteFault};
    use std::path::Path;

    const DIR: &str = "/data/zookeeper";

    fn topic(name: &str, id: u64) -> MetaRecord {
        MetaRecord::TopicCreated(TopicMetadata {
            name: name.into(),
            topic_id: id,
            partitions: vec![],
            config: Default::default(),
        })
    }

    /// A disk holding a data dir that already survives a power cut.
    fn data_disk() -> SimFs {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/data")).expect("data dir");
        sim.sync_dir(Path::new("/")).expect("sync root");
        sim
    }

    /// ZooKeeper's start-up on `sim`: open the log, replay it.
    fn start(sim: &SimFs) -> Result<(MetaLog, MetadataState), metalog::MetaLogError> {
        start_with_events(sim).map(|(inner_log, state, _)| (inner_log, state))
    }

    /// [`start`], with the event history it replays (bounded to 10).
    fn start_with_events(
        sim: &SimFs,
    ) -> Result<(MetaLog, MetadataState, EventLog), metalog::MetaLogError> {
        let (mut log, recovered) = MetaLog::open_in(sim.shared(), Path::new(DIR))?;
        let (state, events) = replay(&mut log, recovered, 10)?;
        Ok((log, state, events))
    }

    fn inner_on(sim: &SimFs) -> Inner {
        let (log, state, events) = start_with_events(sim).expect("start");
        let version = Arc::new(AtomicU64::new(state.version));
        Inner {
            state,
            sessions: SharedSessions::new(Duration::from_secs(1)),
            version,
            log,
            groups: Groups::default(),
            classic: Default::default(),
            events,
            alive: Vec::new(),
            producer_epochs: Default::default(),
        }
    }

    fn deleted(name: &str) -> EventKind {
        EventKind::TopicDeleted {
            topic: name.into(),
            topic_id: 0,
        }
    }

    fn zookeeper_in(dir: &Path, session_timeout: Duration) -> ZooKeeper {
        ZooKeeper::open(&ZkConfig {
            run_dir: dir.to_path_buf(),
            data_dir: dir.to_path_buf(),
            session_timeout,
            defaults: TopicDefaults {
                partitions: 1,
                replication_factor: 1,
            },
            group_session_timeout: Duration::from_secs(3),
            group_session_timeout_min: Duration::from_millis(GROUP_SESSION_TIMEOUT_MS_MIN),
            group_session_timeout_max: Duration::from_millis(GROUP_SESSION_TIMEOUT_MS_MAX),
            events_max: 10,
            connections_max: 100,
            leader_rebalance_interval: None,
            supervisor_pid: None,
        })
        .expect("open zookeeper")
    }

    fn register(zk: &ZooKeeper, broker_id: u32, socket: &str) -> Result<Reply, ErrorBody> {
        zk.dispatch(Call::RegisterBroker {
            broker_id,
            pid: 10 + broker_id,
            socket: socket.into(),
            kafka_address: None,
        })
    }

    #[test]
    fn given_state_lock_held_by_a_slow_fsync_when_heartbeats_arrive_should_answer_them_and_keep_sessions_alive(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let zk = zookeeper_in(tmp.path(), Duration::from_millis(300));
        // Registered as this process: a test responder's peer is this process.
        let me = std::process::id();
        zk.dispatch(Call::RegisterBroker {
            broker_id: 1,
            pid: me,
            socket: "b1.sock".into(),
            kafka_address: None,
        })
        .expect("register");
        let stalled = zk.lock();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10 {
                    let started = Instant::now();
                    let (responder, _peer) = Responder::for_test(1);
                    let handled = zk.handle(Call::Heartbeat { broker_id: 1 }, responder);
                    assert!(
                        matches!(handled, Handled::Reply(Reply::HeartbeatOk { .. })),
                        "answered during the stall"
                    );
                    assert!(
                        started.elapsed() < Duration::from_millis(100),
                        "a heartbeat never waits for the state lock"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        });
        drop(stalled);
        let mut inner = zk.lock();
        ZooKeeper::fail_over(&mut inner, None);
        assert_eq!(
            inner.alive,
            vec![1],
            "a 1 s stall of the state expired nobody"
        );
    }

    #[test]
    fn given_registrations_out_of_bounds_when_registering_should_refuse_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let zk = zookeeper_in(tmp.path(), Duration::from_secs(1));
        assert!(register(&zk, 0, "b.sock").is_err(), "id 0");
        assert!(
            register(&zk, BROKER_ID_MAX + 1, "b.sock").is_err(),
            "id too large"
        );
        assert!(
            register(&zk, 1, &"x".repeat(SOCKET_PATH_BYTES_MAX + 1)).is_err(),
            "socket path too long"
        );
        assert!(register(&zk, 1, "").is_err(), "no socket path");
        for id in 1..=BROKERS_MAX as u32 {
            zk.sessions.register(id, 1, "b.sock".into(), Instant::now());
        }
        let err = register(&zk, BROKERS_MAX as u32 + 1, "b.sock").expect_err("one broker too many");
        assert!(err.message.contains("at most"), "{}", err.message);
        register(&zk, 1, "b.sock").expect("a known broker registers again");
    }

    #[test]
    fn given_full_disk_when_snapshot_is_due_at_start_should_run_on_old_snapshot_and_log_and_lose_nothing(
    ) {
        let sim = data_disk();
        let (mut log, _) = start(&sim).expect("first start");
        log.snapshot(MetaSnapshot {
            version: 0,
            next_topic_id: 0,
            ..Default::default()
        })
        .expect("an old snapshot");
        for i in 0..METADATA_LOG_RECORDS_PER_SNAPSHOT {
            log.append(&MetaRecord::ProducerIdsAllocated { next: i as i64 + 1 })
                .expect("append");
        }
        log.append(&topic("t", 1)).expect("append");
        drop(log);
        sim.power_cut();
        let used = sim.len(&Path::new(DIR).join("snapshot")).expect("snapshot")
            + sim
                .len(&Path::new(DIR).join("metadata-1.log"))
                .expect("log");
        sim.set_capacity(Some(used));

        let (_, state) =
            start(&sim).expect("a snapshot failing on a full disk does not stop start-up");
        assert_eq!(
            state.next_producer_id(),
            METADATA_LOG_RECORDS_PER_SNAPSHOT as i64
        );
        assert!(state.topic("t").is_some());
        assert!(
            !sim.exists(&Path::new(DIR).join("snapshot.tmp")),
            "the failed snapshot's temp file is removed"
        );
        sim.power_cut();
        let (_, again) = start(&sim).expect("a second start on the full disk");
        assert_eq!(again, state, "nothing lost");

        sim.set_capacity(None);
        let (mut log, state) = start(&sim).expect("start with space again");
        assert!(
            log.records_since_snapshot() < METADATA_LOG_RECORDS_PER_SNAPSHOT,
            "the snapshot was taken now"
        );
        log.append(&topic("u", 2)).expect("append");
        drop(log);
        sim.power_cut();
        let (_, after) = start(&sim).expect("restart");
        assert!(after.topic("t").is_some() && after.topic("u").is_some());
        assert_eq!(after.next_producer_id(), state.next_producer_id());
    }

    #[test]
    fn given_change_with_events_when_committed_should_write_one_record_pair_and_replay_both_after_power_cut(
    ) {
        let sim = data_disk();
        let mut inner = inner_on(&sim);
        let syncs = sim.ops();
        ZooKeeper::commit_with(&mut inner, topic("a", 1), vec![deleted("x"), deleted("y")])
            .expect("commit");
        let version = inner.state.version;
        assert!(
            sim.ops() - syncs <= 2,
            "one write and one fsync for the change and its events"
        );
        for i in 0..METADATA_LOG_RECORDS_PER_SNAPSHOT {
            ZooKeeper::record_events(&mut inner, vec![deleted(&format!("z{i}"))]);
        }
        assert_eq!(
            inner.state.version, version,
            "events do not raise the metadata version"
        );
        let before = inner.events.clone();
        assert_eq!(before.len(), 10, "bounded to the newest");
        drop(inner);
        sim.power_cut();
        let (_, state, events) = start_with_events(&sim).expect("restart");
        assert_eq!(state.version, version);
        assert_eq!(
            events, before,
            "the history survives through the snapshot and the log"
        );
    }

    #[test]
    fn given_change_and_events_that_cannot_be_appended_together_when_committing_should_commit_the_change_alone(
    ) {
        let sim = data_disk();
        let mut inner = inner_on(&sim);
        sim.fail_write(0, WriteFault::NoSpace);
        ZooKeeper::commit_with(&mut inner, topic("a", 1), vec![deleted("x")])
            .expect("an event never fails its request");
        assert!(inner.state.topic("a").is_some());
        assert!(inner.events.is_empty(), "the events were not recorded");
        sim.fail_write(0, WriteFault::NoSpace);
        ZooKeeper::record_events(&mut inner, vec![deleted("y")]);
        assert!(
            inner.events.is_empty(),
            "a failed event record is dropped, not applied"
        );
        ZooKeeper::record_events(&mut inner, vec![deleted("z")]);
        drop(inner);
        sim.power_cut();
        let (_, state, events) = start_with_events(&sim).expect("restart");
        assert!(state.topic("a").is_some());
        assert_eq!(
            events
                .read(None, None, 10)
                .0
                .iter()
                .map(|e| e.kind.clone())
                .collect::<Vec<_>>(),
            vec![deleted("z")]
        );
    }

    #[test]
    fn given_failed_append_when_committing_should_fail_the_request_and_not_apply_the_record() {
        let sim = data_disk();
        let (log, state) = start(&sim).expect("start");
        let mut inner = Inner {
            state,
            sessions: SharedSessions::new(Duration::from_secs(1)),
            version: Arc::new(AtomicU64::new(0)),
            log,
            groups: Groups::default(),
            classic: Default::default(),
            events: EventLog::new(10),
            alive: Vec::new(),
            producer_epochs: Default::default(),
        };
        sim.fail_write(0, WriteFault::NoSpace);
        let err = ZooKeeper::commit(&mut inner, topic("a", 1)).expect_err("the append failed");
        assert_eq!(err.code, ErrorCode::StorageError);
        assert!(
            inner.state.topic("a").is_none(),
            "a record that is not durable is not applied"
        );
        ZooKeeper::commit(&mut inner, topic("b", 2)).expect("the next commit");
        let version = inner.state.version;
        drop(inner);
        sim.power_cut();
        let (_, state) = start(&sim).expect("restart");
        assert!(state.topic("a").is_none() && state.topic("b").is_some());
        assert_eq!(
            state.version, version,
            "a restart replays to the same state"
        );
    }
}
