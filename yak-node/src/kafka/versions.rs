//! ApiVersions, and the table of what this front door serves: the version
//! range each API advertises and the lowest it really serves. Older
//! versions are advertised because librdkafka before 2.11 turns features on
//! only when the broker's range contains them (Produce ∋ 0..3, Fetch ∋ 4,
//! InitProducerId ∋ 0); asking for them gets `UNSUPPORTED_VERSION`, as
//! Kafka 4.0 does (the versions it dropped in KIP-896 are those the codec,
//! built from Kafka 4's schemas, no longer decodes). Never handles another API.

use super::errors;
use super::frame::{self, KafkaFrameError};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// One API this front door serves.
pub struct Served {
    pub key: ApiKey,
    /// Lowest version advertised.
    pub advertised_min: i16,
    /// Highest version advertised and served.
    pub max: i16,
    /// Lowest version served; those below it are refused.
    pub served_min: i16,
}

/// Every API served, with its versions.
pub const SERVED: &[Served] = &[
    Served {
        key: ApiKey::Produce,
        advertised_min: 0,
        max: 7,
        served_min: 3,
    },
    Served {
        key: ApiKey::Fetch,
        advertised_min: 4,
        max: 11,
        served_min: 4,
    },
    Served {
        key: ApiKey::ListOffsets,
        advertised_min: 0,
        max: 8,
        served_min: 1,
    },
    Served {
        key: ApiKey::Metadata,
        advertised_min: 0,
        // 9+: librdkafka trusts leader epochs (and validates positions
        // with OffsetForLeaderEpoch after a leader change) only from 9;
        // 10+ carry topic ids, which KIP-848 consumers need.
        max: 12,
        served_min: 0,
    },
    Served {
        key: ApiKey::ApiVersions,
        advertised_min: 0,
        max: 3,
        served_min: 0,
    },
    Served {
        key: ApiKey::CreateTopics,
        advertised_min: 0,
        max: 4,
        served_min: 2,
    },
    Served {
        key: ApiKey::DeleteTopics,
        advertised_min: 0,
        max: 4,
        served_min: 1,
    },
    Served {
        key: ApiKey::ConsumerGroupHeartbeat,
        advertised_min: 0,
        max: 1,
        served_min: 0,
    },
    Served {
        key: ApiKey::InitProducerId,
        advertised_min: 0,
        max: 4,
        served_min: 0,
    },
    Served {
        key: ApiKey::CreatePartitions,
        advertised_min: 0,
        max: 3,
        served_min: 0,
    },
    Served {
        key: ApiKey::DescribeConfigs,
        advertised_min: 0,
        max: 4,
        served_min: 1,
    },
    Served {
        key: ApiKey::IncrementalAlterConfigs,
        advertised_min: 0,
        max: 1,
        served_min: 0,
    },
    Served {
        key: ApiKey::AlterConfigs,
        advertised_min: 0,
        max: 2,
        served_min: 0,
    },
    Served {
        key: ApiKey::AlterPartitionReassignments,
        advertised_min: 0,
        max: 0,
        served_min: 0,
    },
    Served {
        key: ApiKey::ListPartitionReassignments,
        advertised_min: 0,
        max: 0,
        served_min: 0,
    },
    Served {
        key: ApiKey::OffsetForLeaderEpoch,
        advertised_min: 0,
        max: 4,
        served_min: 2,
    },
    Served {
        key: ApiKey::FindCoordinator,
        advertised_min: 0,
        max: 4,
        served_min: 0,
    },
    Served {
        key: ApiKey::JoinGroup,
        advertised_min: 0,
        max: 9,
        served_min: 2,
    },
    Served {
        key: ApiKey::SyncGroup,
        advertised_min: 0,
        max: 5,
        served_min: 0,
    },
    Served {
        key: ApiKey::Heartbeat,
        advertised_min: 0,
        max: 4,
        served_min: 0,
    },
    Served {
        key: ApiKey::LeaveGroup,
        advertised_min: 0,
        max: 5,
        served_min: 0,
    },
    Served {
        key: ApiKey::OffsetCommit,
        advertised_min: 0,
        // 9: generation_id_or_member_epoch carries a KIP-848 member epoch.
        max: 9,
        served_min: 2,
    },
    Served {
        key: ApiKey::OffsetFetch,
        advertised_min: 0,
        // 8+: groups batched; 9 adds the KIP-848 member id and epoch.
        max: 9,
        served_min: 1,
    },
    Served {
        key: ApiKey::ListGroups,
        advertised_min: 0,
        max: 5,
        served_min: 0,
    },
    Served {
        key: ApiKey::DescribeGroups,
        advertised_min: 0,
        max: 5,
        served_min: 0,
    },
    Served {
        key: ApiKey::DeleteGroups,
        advertised_min: 0,
        max: 1,
        served_min: 0,
    },
];

/// Whether `api` at `version` is served.
pub fn is_served(api: ApiKey, version: i16) -> bool {
    SERVED
        .iter()
        .any(|s| s.key == api && s.served_min <= version && version <= s.max)
}

/// The ApiVersions body: every API's advertised range, and `error`.
fn body(error: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error)
        .with_api_keys(
            SERVED
                .iter()
                .map(|s| {
                    ApiVersion::default()
                        .with_api_key(s.key as i16)
                        .with_min_version(s.advertised_min)
                        .with_max_version(s.max)
                })
                .collect(),
        )
}

/// Answers ApiVersions. A version this listener does not know gets error
/// 35 with a v0 body, so the client retries with one from the list.
pub fn answer(correlation_id: i32, version: i16) -> Result<Vec<u8>, KafkaFrameError> {
    if is_served(ApiKey::ApiVersions, version) {
        frame::response(correlation_id, version, &body(errors::NONE), "ApiVersions")
    } else {
        frame::response(
            correlation_id,
            0,
            &body(errors::UNSUPPORTED_VERSION),
            "ApiVersions",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_librdkafka_feature_probes_when_advertising_should_contain_the_old_versions() {
        let has = |key: ApiKey, v: i16| {
            SERVED
                .iter()
                .any(|s| s.key == key && s.advertised_min <= v && v <= s.max)
        };
        assert!(has(ApiKey::Produce, 0) && has(ApiKey::Produce, 3) && has(ApiKey::Produce, 7));
        assert!(has(ApiKey::Fetch, 4) && has(ApiKey::Fetch, 11));
        assert!(has(ApiKey::InitProducerId, 0) && has(ApiKey::Metadata, 4));
        assert!(!is_served(ApiKey::Produce, 2) && is_served(ApiKey::Produce, 3));
    }

    #[test]
    fn given_the_codec_when_serving_a_version_should_be_one_it_decodes() {
        for s in SERVED {
            let codec = s.key.valid_versions();
            assert!(
                codec.min <= s.served_min && s.max <= codec.max,
                "{:?} serves {}..={} but the codec knows {}..={}",
                s.key,
                s.served_min,
                s.max,
                codec.min,
                codec.max
            );
        }
    }

    #[test]
    fn given_unknown_api_versions_version_when_answering_should_send_error_35_with_a_v0_body() {
        let frame = answer(7, 99).expect("encode");
        // size, correlation id, then the v0 body: error code first.
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        assert_eq!(&frame[8..10], &35i16.to_be_bytes());
        let ok = answer(8, 3).expect("encode");
        assert_eq!(&ok[8..10], &0i16.to_be_bytes());
    }
}
