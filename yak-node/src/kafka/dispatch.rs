//! One request to its handler: parses the header, refuses what is not
//! served (`UNSUPPORTED_VERSION`, never a silent close), decodes the body
//! and calls the API's file. Never answers by itself.

use super::frame::{self, KafkaFrameError};
use super::native::BrokerLink;
use super::request::{Outcome, Shared};
use super::{
    admin, configs, consumer_group, fetch, group_admin, group_offsets, groups, leader_epoch,
    metadata, offsets, produce, topic_admin, versions,
};
use kafka_protocol::messages::ApiKey;

/// Handles one request frame.
pub fn dispatch(
    shared: &Shared,
    link: &mut BrokerLink,
    frame: Vec<u8>,
) -> Result<Outcome, KafkaFrameError> {
    let parsed = frame::parse_header(frame)?;
    let h = &parsed.header;
    let (correlation_id, version) = (h.correlation_id, h.request_api_version);
    let api = match parsed.api {
        Some(ApiKey::ApiVersions) => {
            // Answered before the body is decoded: an unknown version must
            // still get the list (the client retries with one from it).
            return Ok(Outcome::Ready(versions::answer(correlation_id, version)?));
        }
        Some(api) if versions::is_served(api, version) => api,
        _ => {
            tracing::debug!(
                api = h.request_api_key,
                version,
                "unsupported kafka request"
            );
            return Ok(Outcome::Ready(frame::unsupported(correlation_id)));
        }
    };
    let client = h.client_id.as_deref().unwrap_or("").to_string();
    let body = parsed.body;
    super::guard::check(api, version, &body)?;
    match api {
        ApiKey::Metadata => metadata::answer(shared, correlation_id, version, body),
        ApiKey::CreateTopics => admin::create_topics(shared, correlation_id, version, body),
        ApiKey::DeleteTopics => admin::delete_topics(shared, correlation_id, version, body),
        ApiKey::InitProducerId => admin::init_producer_id(shared, correlation_id, version, body),
        ApiKey::Produce => produce::handle(link, correlation_id, version, body),
        ApiKey::Fetch => fetch::handle(link, correlation_id, version, body),
        ApiKey::ListOffsets => offsets::handle(link, correlation_id, version, body),
        ApiKey::OffsetForLeaderEpoch => leader_epoch::handle(link, correlation_id, version, body),
        ApiKey::ConsumerGroupHeartbeat => {
            consumer_group::heartbeat(shared, correlation_id, version, &client, body)
        }
        ApiKey::CreatePartitions => {
            topic_admin::create_partitions(shared, correlation_id, version, body)
        }
        ApiKey::AlterPartitionReassignments => {
            topic_admin::alter_reassignments(shared, correlation_id, version, body)
        }
        ApiKey::ListPartitionReassignments => {
            topic_admin::list_reassignments(shared, correlation_id, version, body)
        }
        ApiKey::DescribeConfigs => configs::describe(shared, correlation_id, version, body),
        ApiKey::IncrementalAlterConfigs => {
            configs::incremental_alter(shared, correlation_id, version, body)
        }
        ApiKey::AlterConfigs => configs::alter(shared, correlation_id, version, body),
        ApiKey::FindCoordinator => groups::find_coordinator(shared, correlation_id, version, body),
        ApiKey::JoinGroup => groups::join(shared, &client, correlation_id, version, body),
        ApiKey::SyncGroup => groups::sync(shared, correlation_id, version, body),
        ApiKey::Heartbeat => groups::heartbeat(shared, correlation_id, version, body),
        ApiKey::LeaveGroup => groups::leave(shared, correlation_id, version, body),
        ApiKey::OffsetCommit => group_offsets::commit(shared, correlation_id, version, body),
        ApiKey::OffsetFetch => group_offsets::fetch(shared, correlation_id, version, body),
        ApiKey::ListGroups => group_admin::list(shared, correlation_id, version, body),
        ApiKey::DescribeGroups => group_admin::describe(shared, correlation_id, version, body),
        ApiKey::DeleteGroups => group_admin::delete(shared, correlation_id, version, body),
        _ => Ok(Outcome::Ready(frame::unsupported(correlation_id))),
    }
}
