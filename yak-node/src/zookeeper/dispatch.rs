//! ZooKeeper's requests, one arm each: registration and heartbeats,
//! topics, metadata, groups and offsets, live operations, events. Each arm
//! checks its input, commits what changes (metadata log first) and answers.

use super::*;

impl ZooKeeper {
    /// Answers one request (already authorized).
    pub(super) fn dispatch(&self, call: Call) -> Result<Reply, ErrorBody> {
        match call {
            Call::RegisterBroker {
                broker_id,
                pid,
                socket,
                kafka_address,
            } => {
                self.check_registration(broker_id, &socket)?;
                let mut inner = self.lock();
                tracing::info!(broker = broker_id, pid, socket = %socket, "broker registered");
                let old_pid = inner.sessions.pid(broker_id);
                inner
                    .sessions
                    .register(broker_id, pid, socket, Instant::now());
                inner.sessions.set_kafka_address(broker_id, kafka_address);
                Self::record_events(
                    &mut inner,
                    vec![EventKind::BrokerRegistered {
                        broker: broker_id,
                        pid,
                        old_pid,
                    }],
                );
                Self::fail_over(&mut inner, None);
                Ok(Reply::Registered {
                    metadata_version: inner.state.version,
                    cluster_id: inner.state.cluster_id().unwrap_or_default().to_string(),
                })
            }
            Call::Heartbeat { broker_id } => self.heartbeat(broker_id, Instant::now()),
            Call::CreateTopic {
                name,
                partitions,
                replication_factor,
                config,
            } => self.create_topic(&name, partitions, replication_factor, config),
            Call::DeleteTopic { name } => self.delete_topic(&name),
            Call::Metadata {
                topics,
                after_topic,
            } => Ok(self.metadata(topics, after_topic)),
            Call::AlterIsr {
                topic,
                partition,
                leader,
                leader_epoch,
                isr,
                partition_epoch,
                topic_id,
            } => {
                let mut inner = self.lock();
                let current_id = inner.state.topic(&topic).map(|t| t.topic_id);
                if topic_id != 0 && current_id.is_some_and(|id| id != topic_id) {
                    return Err(ErrorBody::new(
                        ErrorCode::UnknownTopic,
                        format!("{topic}-{partition}: ISR change for topic id {topic_id}, but '{topic}' is now topic id {current_id:?}"),
                    ));
                }
                let alive = inner.sessions.alive(Instant::now());
                let planned = inner.state.plan_alter_isr(
                    &topic,
                    partition,
                    leader,
                    leader_epoch,
                    partition_epoch,
                    &isr,
                    &alive,
                )?;
                if let Some(record) = planned {
                    tracing::info!(topic = %topic, partition, leader, isr = ?isr, "isr changed");
                    let old = inner
                        .state
                        .topic(&topic)
                        .and_then(|t| t.partitions.get(partition as usize))
                        .cloned();
                    let why_gone = |b: u32| {
                        if alive.contains(&b) {
                            Reason::FollowerLagging
                        } else {
                            Reason::NotAlive
                        }
                    };
                    let kinds = match (&record, old) {
                        (
                            MetaRecord::PartitionChanged {
                                leader,
                                isr,
                                leader_epoch,
                                ..
                            },
                            Some(old),
                        ) => events::partition_changed(
                            &topic,
                            &old,
                            *leader,
                            isr,
                            *leader_epoch,
                            &why_gone,
                        ),
                        _ => Vec::new(),
                    };
                    Self::commit_with(&mut inner, record, kinds)?;
                }
                let p = inner
                    .state
                    .topic(&topic)
                    .and_then(|t| t.partitions.get(partition as usize))
                    .ok_or_else(|| {
                        ErrorBody::new(
                            ErrorCode::UnknownTopic,
                            format!("{topic}-{partition} is gone"),
                        )
                    })?;
                Ok(Reply::IsrAltered {
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                })
            }
            Call::RebalanceLeaders { topic } => {
                let mut inner = self.lock();
                if let Some(t) = &topic {
                    if inner.state.topic(t).is_none() {
                        return Err(ErrorBody::new(
                            ErrorCode::UnknownTopic,
                            format!("topic '{t}' does not exist"),
                        ));
                    }
                }
                let moved = Self::rebalance_leaders(&mut inner, topic.as_deref())?;
                Ok(Reply::LeadersRebalanced { moved })
            }
            Call::BrokerDown { broker_id, pid } => {
                let mut inner = self.lock();
                if inner.sessions.expire(broker_id, pid, Instant::now()) {
                    tracing::info!(broker = broker_id, "broker reported down by the supervisor");
                    Self::fail_over(&mut inner, Some(broker_id));
                }
                Ok(Reply::BrokerDownNoted)
            }
            Call::InitProducerId => {
                let mut inner = self.lock();
                let producer_id = Self::allocate_producer_id(&mut inner)?;
                Ok(Reply::ProducerId { producer_id })
            }
            Call::BumpProducerEpoch { producer_id, epoch } => {
                use producer_epochs::Bump;
                let mut inner = self.lock();
                let handed_out = (0..inner.state.next_producer_id()).contains(&producer_id);
                let bump = match handed_out {
                    true => inner.producer_epochs.bump(producer_id, epoch),
                    false => Bump::NewId,
                };
                match bump {
                    Bump::Granted(epoch) => Ok(Reply::ProducerEpoch { producer_id, epoch }),
                    Bump::Stale { current } => Err(ErrorBody::new(
                        ErrorCode::InvalidProducerEpoch,
                        format!("producer {producer_id} is at epoch {current}, not {epoch}"),
                    )),
                    Bump::NewId => Ok(Reply::ProducerEpoch {
                        producer_id: Self::allocate_producer_id(&mut inner)?,
                        epoch: 0,
                    }),
                }
            }
            Call::ProcessRestarted(restart) => {
                check_process_restart(&restart)?;
                tracing::info!(child = %restart.child, old_pid = restart.old_pid, new_pid = restart.new_pid, "process restart reported by the supervisor");
                Self::record_events(&mut self.lock(), vec![EventKind::ProcessRestarted(restart)]);
                Ok(Reply::ProcessRestartNoted)
            }
            Call::Events {
                after_seq,
                since_ms,
                max,
            } => {
                let max = max.map_or(EVENTS_PER_ANSWER_MAX, |m| {
                    (m as usize).min(EVENTS_PER_ANSWER_MAX)
                });
                let (events, more) = self.lock().events.read(after_seq, since_ms, max);
                Ok(Reply::Events { events, more })
            }
            call @ (Call::JoinGroup { .. }
            | Call::ConsumerGroupHeartbeat { .. }
            | Call::GroupHeartbeat { .. }
            | Call::LeaveGroup { .. }
            | Call::CommitOffsets { .. }
            | Call::FetchOffsets { .. }
            | Call::ListGroups
            | Call::DescribeGroup { .. }
            | Call::ResetOffsets { .. }) => self.group_call(call),
            Call::ClassicGroup(call) => self.classic_call(call),
            Call::CreatePartitions { topic, count } => self.add_partitions(&topic, count),
            Call::AlterTopicConfig { topic, set, delete } => {
                self.alter_topic_config(&topic, set, &delete)
            }
            Call::ReassignPartitions {
                moves,
                throttle_bytes_per_sec,
            } => self.reassign(&moves, throttle_bytes_per_sec),
            Call::CancelReassignments { partitions } => self.cancel_reassignments(&partitions),
            Call::ForgetBroker { broker_id } => self.forget_broker(broker_id),
            Call::AddBroker | Call::RemoveBroker { .. } => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "brokers are added and removed by the supervisor (supervisor.sock)",
            )),
            Call::Produce { .. }
            | Call::Fetch { .. }
            | Call::ListOffsets { .. }
            | Call::EpochEndOffset { .. }
            | Call::LocalPartitions
            | Call::BrokerStats => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "ZooKeeper does not serve partition data; ask a broker",
            )),
        }
    }
}

impl ZooKeeper {
    /// A broker's heartbeat that arrived at `at`: recorded without the
    /// state's lock (which may wait for an fsync); only a session coming
    /// back to life takes it, to fail partitions back.
    pub(super) fn heartbeat(&self, broker_id: u32, at: Instant) -> Result<Reply, ErrorBody> {
        let (known, was_alive) = self.sessions.heartbeat(broker_id, at, Instant::now());
        if !known {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("broker {broker_id} is not registered"),
            ));
        }
        if !was_alive {
            tracing::info!(broker = broker_id, "broker session revived");
            Self::fail_over(&mut self.lock(), None);
        }
        Ok(Reply::HeartbeatOk {
            metadata_version: self.version.load(Ordering::Acquire),
        })
    }

    /// Refuses a registration ZooKeeper could not keep: an id out of range,
    /// a socket path no Unix socket can have, one broker too many.
    pub(super) fn check_registration(&self, broker_id: u32, socket: &str) -> Result<(), ErrorBody> {
        if broker_id == 0 || broker_id > BROKER_ID_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("a broker id must be 1 to {BROKER_ID_MAX}"),
            ));
        }
        if socket.is_empty() || socket.len() > SOCKET_PATH_BYTES_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("a broker socket path must have 1 to {SOCKET_PATH_BYTES_MAX} bytes"),
            ));
        }
        if !self.sessions.has_room_for(broker_id, BROKERS_MAX) {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("ZooKeeper keeps at most {BROKERS_MAX} brokers"),
            ));
        }
        Ok(())
    }

    /// Hands out the next producer id, durably.
    fn allocate_producer_id(inner: &mut Inner) -> Result<i64, ErrorBody> {
        let producer_id = inner.state.next_producer_id();
        Self::commit(
            inner,
            MetaRecord::ProducerIdsAllocated {
                next: producer_id + 1,
            },
        )?;
        Ok(producer_id)
    }
}

/// Refuses a restart report with names no supervisor sends.
fn check_process_restart(r: &ProcessRestart) -> Result<(), ErrorBody> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars().count() <= PROCESS_NAME_CHARS_MAX
            && !s.chars().any(char::is_control)
    };
    if !name_ok(&r.child) || !r.signal.as_deref().is_none_or(name_ok) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("a child or signal name must have 1 to {PROCESS_NAME_CHARS_MAX} printable characters"),
        ));
    }
    Ok(())
}
