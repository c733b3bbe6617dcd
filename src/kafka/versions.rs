//! The APIs and versions this broker serves, and the ApiVersions response that lists them.
//!
//! Versions that need topic ids (Fetch 13+, Produce 12+, OffsetCommit 10+) and the new
//! consumer-group protocol are left out on purpose: clients then use the classic forms.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// (API, lowest version served, highest version advertised).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    // Produce is advertised from 0 because older librdkafka turns compression off unless the
    // advertised range includes 0; versions below 3 (message sets before magic 2) are refused.
    (ApiKey::Produce, 0, 8),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 5),
    (ApiKey::Metadata, 0, 8),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::OffsetFetch, 1, 5),
    (ApiKey::FindCoordinator, 0, 2),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::DeleteTopics, 1, 3),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 3),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeProducers, 0, 0),
];

/// Lowest Produce version actually served (magic-2 record batches).
pub const PRODUCE_MIN_SERVED: i16 = 3;

/// The served range of an API, if it is served at all.
pub fn served_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key).map(|(_, lo, hi)| if key == ApiKey::Produce { (PRODUCE_MIN_SERVED, *hi) } else { (*lo, *hi) })
}

/// The ApiVersions response body; `error` is set when the client asked for a version
/// above 3 (it then retries with the highest version listed).
pub fn api_versions(error: Option<ResponseError>) -> ApiVersionsResponse {
    let keys = SUPPORTED_APIS.iter().map(|(k, lo, hi)| ApiVersion::default().with_api_key(*k as i16).with_min_version(*lo).with_max_version(*hi)).collect();
    ApiVersionsResponse::default().with_error_code(error.map(|e| e.code()).unwrap_or(0)).with_api_keys(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_versions_are_ones_the_message_crate_can_encode() {
        for (key, _, _) in SUPPORTED_APIS {
            let (lo, hi) = served_range(*key).expect("served");
            let (lo, hi) = (&lo, &hi);
            let range = key.valid_versions();
            assert!(range.min <= *lo && *hi <= range.max, "{key:?} {lo}..={hi} outside {range:?}");
        }
    }

    #[test]
    fn produce_is_advertised_from_zero_but_served_from_three() {
        assert_eq!(served_range(ApiKey::Produce), Some((3, 8)));
        assert_eq!(served_range(ApiKey::Fetch), Some((4, 11)));
        assert_eq!(served_range(ApiKey::DescribeGroups), None);
    }
}
