//! ConsumerGroupHeartbeat (API 68, KIP-848's next-generation consumer
//! protocol, v0–1), mapped onto YaK's own group coordinator in ZooKeeper:
//! the coordinator computes the assignment and reconciles each member
//! towards it (revoke first: a partition is never given to a member while
//! another still holds it; see `zookeeper/reconcile.rs`).
//!
//! Mapping, per heartbeat:
//! - epoch -1 or -2: `LeaveGroup` (a static member's -2 leaves as well:
//!   YaK has no static membership for this protocol);
//! - otherwise `ConsumerGroupHeartbeat` (epoch 0 joins) with the
//!   subscription when the client sent one (names, plus the topics that
//!   match `subscribed_topic_regex`, a full match of the whole name as
//!   Java's `Pattern.matches`; resolved when the client sends the regex,
//!   so a topic created later joins the subscription on the member's next
//!   join), the partitions it owns (topic ids turned into names), and the
//!   server assignor (`range` is YaK's range, anything else its sticky
//!   assignor, as Kafka's default `uniform` is).
//!
//! Topic ids are those of Metadata v10+ (`topic_ids.rs`). A fenced epoch
//! answers `FENCED_MEMBER_EPOCH`, an unknown member `UNKNOWN_MEMBER_ID`;
//! both make the client rejoin. Never keeps state of its own.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::{Outcome, Shared};
use super::topic_ids;
use crate::protocol::{
    Assignor, Call, ClientError, ClusterMetadata, ErrorBody, ErrorCode, MemberStatus, Reply,
    TopicAssignment,
};
use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

/// The member epoch a client sends to leave.
const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member sends when it leaves for a restart.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// Answers one ConsumerGroupHeartbeat.
pub fn heartbeat(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    client: &str,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ConsumerGroupHeartbeatRequest =
        frame::decode(body, version, "ConsumerGroupHeartbeat")?;
    let res = match answer(shared, &req, client) {
        Ok(res) => res,
        Err(e) => refused(&e),
    };
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &res,
        "ConsumerGroupHeartbeat",
    )?))
}

/// A refusal: a bad regex, or the client rejoins (fenced, unknown member).
#[derive(Debug)]
enum Refusal {
    /// `subscribed_topic_regex` does not compile.
    Regex(String),
    /// What the coordinator (or this mapping) said.
    Coordinator(ErrorBody),
}

impl From<ErrorBody> for Refusal {
    fn from(e: ErrorBody) -> Refusal {
        Refusal::Coordinator(e)
    }
}

fn refused(r: &Refusal) -> ConsumerGroupHeartbeatResponse {
    let (code, message) = match r {
        Refusal::Regex(m) => (errors::INVALID_REGULAR_EXPRESSION, m.clone()),
        Refusal::Coordinator(e) if e.code == ErrorCode::IllegalGeneration => {
            (errors::FENCED_MEMBER_EPOCH, e.message.clone())
        }
        Refusal::Coordinator(e) => (errors::of(e), e.message.clone()),
    };
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
}

fn zk_call(shared: &Shared, call: &Call) -> Result<Reply, ErrorBody> {
    match shared.zk.call(call) {
        Ok(Reply::Error(e)) => Err(e),
        Ok(reply) => Ok(reply),
        Err(ClientError::Server(e)) => Err(e),
        Err(e) => Err(ErrorBody::new(
            ErrorCode::Timeout,
            format!("group coordinator unreachable: {e}"),
        )),
    }
}

/// Every topic, when the request or its answer needs names and ids.
fn all_topics(shared: &Shared) -> Result<ClusterMetadata, ErrorBody> {
    shared
        .zk
        .metadata(None)
        .map_err(|e| ErrorBody::new(ErrorCode::Timeout, format!("metadata unavailable: {e}")))
}

/// The topics `regex` matches in full (Kafka matches whole names).
fn matching(regex: &str, names: &[&str]) -> Result<Vec<String>, Refusal> {
    let re = regex::Regex::new(&format!("^(?:{regex})$"))
        .map_err(|e| Refusal::Regex(format!("subscribed_topic_regex '{regex}': {e}")))?;
    Ok(names
        .iter()
        .filter(|n| re.is_match(n))
        .map(|n| n.to_string())
        .collect())
}

/// The subscription a request carries (`None`: unchanged).
fn subscription(
    req: &ConsumerGroupHeartbeatRequest,
    meta: &dyn Fn() -> Result<ClusterMetadata, ErrorBody>,
) -> Result<Option<Vec<String>>, Refusal> {
    let names = req
        .subscribed_topic_names
        .as_ref()
        .map(|ts| ts.iter().map(|t| t.0.to_string()).collect::<Vec<_>>());
    let Some(regex) = req.subscribed_topic_regex.as_deref() else {
        return Ok(names);
    };
    let m = meta()?;
    let all: Vec<&str> = m.topics.iter().map(|t| t.name.as_str()).collect();
    let mut topics = names.unwrap_or_default();
    for t in matching(regex, &all)? {
        if !topics.contains(&t) {
            topics.push(t);
        }
    }
    Ok(Some(topics))
}

/// The native call one heartbeat turns into.
fn call_for(
    req: &ConsumerGroupHeartbeatRequest,
    client: &str,
    meta: &dyn Fn() -> Result<ClusterMetadata, ErrorBody>,
) -> Result<Call, Refusal> {
    let group = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    if matches!(req.member_epoch, LEAVE_EPOCH | STATIC_LEAVE_EPOCH) {
        return Ok(Call::LeaveGroup { group, member_id });
    }
    let member_epoch = u32::try_from(req.member_epoch).map_err(|_| {
        ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("member epoch {}", req.member_epoch),
        )
    })?;
    let topics = subscription(req, meta)?;
    if member_epoch == 0 && topics.as_ref().is_none_or(|t| t.is_empty()) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "a joining member must name the topics it subscribes to",
        )
        .into());
    }
    let owned = match req.topic_partitions.as_ref() {
        None => None,
        Some(tps) if tps.is_empty() => Some(Vec::new()),
        Some(tps) => {
            let m = meta()?;
            // A topic id no topic has any more (deleted) is dropped.
            Some(
                tps.iter()
                    .filter_map(|tp| {
                        Some(TopicAssignment {
                            topic: topic_ids::name_of(&m, tp.topic_id)?.to_string(),
                            partitions: tp
                                .partitions
                                .iter()
                                .filter_map(|p| u32::try_from(*p).ok())
                                .collect(),
                        })
                    })
                    .collect(),
            )
        }
    };
    let assignor = match req.server_assignor.as_deref() {
        Some("range") => Assignor::Range,
        _ => Assignor::Sticky,
    };
    Ok(Call::ConsumerGroupHeartbeat {
        group,
        member_id,
        client: client.to_string(),
        member_epoch,
        topics,
        assignor,
        owned,
        rebalance_timeout_ms: u64::try_from(req.rebalance_timeout_ms).ok(),
    })
}

fn answer(
    shared: &Shared,
    req: &ConsumerGroupHeartbeatRequest,
    client: &str,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    let cached = std::cell::OnceCell::new();
    let meta = || -> Result<ClusterMetadata, ErrorBody> {
        if let Some(m) = cached.get() {
            return Ok(Clone::clone(m));
        }
        let m = all_topics(shared)?;
        Ok(cached.get_or_init(|| m).clone())
    };
    let call = call_for(req, client, &meta)?;
    let reply = zk_call(shared, &call)?;
    if matches!(call, Call::LeaveGroup { .. }) {
        return Ok(ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(req.member_id.clone()))
            .with_member_epoch(req.member_epoch));
    }
    let status = match reply {
        Reply::GroupMember(s) => s,
        other => {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("unexpected coordinator answer {other:?}"),
            )
            .into())
        }
    };
    let m = if status.assigned.iter().any(|a| !a.partitions.is_empty()) {
        meta()?
    } else {
        ClusterMetadata::default()
    };
    Ok(response(&status, &m))
}

/// The answer for a member: its epoch and its partitions of every topic,
/// by topic id (a topic deleted meanwhile is left out).
fn response(status: &MemberStatus, m: &ClusterMetadata) -> ConsumerGroupHeartbeatResponse {
    let topic_partitions = status
        .assigned
        .iter()
        .filter_map(|a| {
            let t = m.topics.iter().find(|t| t.name == a.topic)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(topic_ids::topic_uuid(&m.cluster_id, t.topic_id))
                    .with_partitions(a.partitions.iter().map(|p| *p as i32).collect()),
            )
        })
        .collect();
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(status.member_id.clone())))
        .with_member_epoch(status.generation as i32)
        .with_heartbeat_interval_ms(status.heartbeat_interval_ms.min(i32::MAX as u64) as i32)
        .with_assignment(Some(
            Assignment::default().with_topic_partitions(topic_partitions),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicMetadata;
    use kafka_protocol::messages::consumer_group_heartbeat_request;
    use kafka_protocol::messages::{GroupId, TopicName};

    fn request(epoch: i32, topics: Option<&[&str]>) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_member_epoch(epoch)
            .with_subscribed_topic_names(topics.map(|ts| {
                ts.iter()
                    .map(|t| TopicName(StrBytes::from_string(t.to_string())))
                    .collect()
            }))
    }

    fn meta() -> Result<ClusterMetadata, ErrorBody> {
        let topic = |name: &str, topic_id| TopicMetadata {
            name: name.into(),
            topic_id,
            partitions: Vec::new(),
            config: Default::default(),
        };
        Ok(ClusterMetadata {
            cluster_id: "c".into(),
            topics: vec![topic("a", 3), topic("orders-eu", 4), topic("orders-us", 5)],
            ..Default::default()
        })
    }

    fn code(r: Result<Call, Refusal>) -> i16 {
        refused(&r.expect_err("refused")).error_code
    }

    #[test]
    fn given_member_epochs_when_mapping_should_join_beat_or_leave_the_native_group() {
        match call_for(&request(0, Some(&["a", "b"])), "c", &meta).expect("join") {
            Call::ConsumerGroupHeartbeat {
                member_epoch,
                topics,
                assignor,
                client,
                owned,
                ..
            } => {
                assert_eq!(member_epoch, 0);
                assert_eq!(topics, Some(vec!["a".to_string(), "b".to_string()]));
                assert_eq!((assignor, client.as_str()), (Assignor::Sticky, "c"));
                assert_eq!(owned, None);
            }
            other => panic!("{other:?}"),
        }
        let range =
            request(0, Some(&["a"])).with_server_assignor(Some(StrBytes::from_static_str("range")));
        assert!(matches!(
            call_for(&range, "c", &meta),
            Ok(Call::ConsumerGroupHeartbeat {
                assignor: Assignor::Range,
                ..
            })
        ));
        assert_eq!(
            code(call_for(&request(0, None), "c", &meta)),
            errors::INVALID_REQUEST
        );
        for leave in [-1, -2] {
            assert!(matches!(
                call_for(&request(leave, None), "c", &meta),
                Ok(Call::LeaveGroup { .. })
            ));
        }
        assert!(matches!(
            call_for(&request(7, None), "c", &meta),
            Ok(Call::ConsumerGroupHeartbeat {
                member_epoch: 7,
                topics: None,
                ..
            })
        ));
        assert_eq!(
            code(call_for(&request(-3, None), "c", &meta)),
            errors::INVALID_REQUEST
        );
    }

    #[test]
    fn given_owned_partitions_by_topic_id_when_mapping_should_name_them_and_drop_unknown_ids() {
        let owned = |id| {
            consumer_group_heartbeat_request::TopicPartitions::default()
                .with_topic_id(id)
                .with_partitions(vec![0, 2])
        };
        let req = request(4, None).with_topic_partitions(Some(vec![
            owned(topic_ids::topic_uuid("c", 3)),
            owned(topic_ids::topic_uuid("c", 99)),
        ]));
        match call_for(&req, "c", &meta).expect("beat") {
            Call::ConsumerGroupHeartbeat { owned, .. } => assert_eq!(
                owned,
                Some(vec![TopicAssignment {
                    topic: "a".into(),
                    partitions: vec![0, 2]
                }])
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn given_topic_regex_when_mapping_should_subscribe_to_full_matches_or_refuse_a_bad_one() {
        let req = request(0, Some(&["a"]))
            .with_subscribed_topic_regex(Some(StrBytes::from_static_str("orders-.*")));
        match call_for(&req, "c", &meta).expect("join") {
            Call::ConsumerGroupHeartbeat { topics, .. } => assert_eq!(
                topics,
                Some(vec!["a".into(), "orders-eu".into(), "orders-us".into()])
            ),
            other => panic!("{other:?}"),
        }
        let partial =
            request(0, None).with_subscribed_topic_regex(Some(StrBytes::from_static_str("orders")));
        assert_eq!(
            code(call_for(&partial, "c", &meta)),
            errors::INVALID_REQUEST,
            "a regex matching no whole name gives a join without topics"
        );
        let bad =
            request(0, None).with_subscribed_topic_regex(Some(StrBytes::from_static_str("(")));
        assert_eq!(
            code(call_for(&bad, "c", &meta)),
            errors::INVALID_REGULAR_EXPRESSION
        );
    }

    #[test]
    fn given_member_status_when_answering_should_give_epoch_and_partitions_by_topic_id() {
        let status = MemberStatus {
            member_id: "m-1".into(),
            generation: 4,
            rebalancing: false,
            partitions: vec![0, 2],
            heartbeat_interval_ms: 600,
            assigned: vec![
                TopicAssignment {
                    topic: "a".into(),
                    partitions: vec![0, 2],
                },
                TopicAssignment {
                    topic: "gone".into(),
                    partitions: vec![1],
                },
            ],
        };
        let res = response(&status, &meta().expect("meta"));
        assert_eq!((res.member_epoch, res.heartbeat_interval_ms), (4, 600));
        assert_eq!(res.member_id.as_deref(), Some("m-1"));
        let tps = res.assignment.expect("an assignment").topic_partitions;
        assert_eq!(tps.len(), 1, "a topic without an id is left out");
        assert_eq!(tps[0].topic_id, topic_ids::topic_uuid("c", 3));
        assert_eq!(tps[0].partitions, vec![0, 2]);
        let fenced = refused(&Refusal::Coordinator(ErrorBody::new(
            ErrorCode::IllegalGeneration,
            "fenced",
        )));
        assert_eq!(fenced.error_code, errors::FENCED_MEMBER_EPOCH);
        let err = refused(&Refusal::Coordinator(ErrorBody::new(
            ErrorCode::UnknownMember,
            "rejoin",
        )));
        assert_eq!(err.error_code, errors::UNKNOWN_MEMBER_ID);
    }
}
