//! Request frames: decoding a request (header and body) from the bytes after the size
//! prefix, and encoding a response frame. Depends only on the message crate, so the fuzz
//! target builds it without the rest of Eddy.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::versions;

/// Why a frame cannot be served; the connection is then closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("request frame of {0} bytes is too short to hold a request header (8 bytes at least)")]
    FrameTooShort(usize),
    #[error("unknown API key {0}; this broker serves the APIs it lists in ApiVersions")]
    UnknownApiKey(i16),
    #[error("{api} version {version} is not supported; supported versions are {min}..={max}")]
    UnsupportedVersion { api: &'static str, version: i16, min: i16, max: i16 },
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },
    #[error("cannot encode the {api} response: {detail}")]
    Encode { api: &'static str, detail: String },
}

/// A decoded request frame.
// Nearly every frame is a `Request`: boxing it would add an allocation per request to
// shrink the rare variant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Incoming {
    Request {
        header: RequestHeader,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    },
    /// ApiVersions in a version above the highest served: answer in v0 with the list.
    ApiVersionsTooNew {
        correlation_id: i32,
    },
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes one request frame (the bytes after the size prefix). Never panics on any input.
pub fn decode_request(frame: Bytes) -> Result<Incoming, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::FrameTooShort(frame.len()));
    }
    let key = be_i16(&frame, 0);
    let version = be_i16(&frame, 2);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    let Some((min, max)) = versions::served_range(api) else {
        return Err(FrameError::UnknownApiKey(key));
    };
    if version < min || version > max {
        if api == ApiKey::ApiVersions && version > max {
            return Ok(Incoming::ApiVersionsTooNew { correlation_id });
        }
        return Err(FrameError::UnsupportedVersion { api: api_name(api), version, min, max });
    }
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
        .map_err(|e| FrameError::Malformed { what: format!("{} request header", api_name(api)), detail: e.to_string() })?;
    let body = RequestKind::decode(api, &mut buf, version)
        .map_err(|e| FrameError::Malformed { what: format!("{} v{version} request", api_name(api)), detail: e.to_string() })?;
    Ok(Incoming::Request { header, api, version, body })
}

/// A short name for logs and errors.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        _ => "unsupported API",
    }
}

/// Encodes a response frame: size prefix, header, body.
pub fn encode_response(api: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api.response_header_version(version)).map_err(|e| FrameError::Encode { api: api_name(api), detail: e.to_string() })?;
    body.encode(&mut buf, version).map_err(|e| FrameError::Encode { api: api_name(api), detail: e.to_string() })?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ResponseKind;

    fn frame(key: i16, version: i16, rest: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(7);
        b.put_slice(rest);
        b.freeze()
    }

    #[test]
    fn short_frames_unknown_keys_and_versions_are_refused() {
        assert!(matches!(decode_request(Bytes::from_static(&[0, 18, 0])), Err(FrameError::FrameTooShort(3))));
        assert!(matches!(decode_request(frame(999, 0, &[])), Err(FrameError::UnknownApiKey(999))));
        // DescribeGroups exists in Kafka but is not served.
        assert!(matches!(decode_request(frame(15, 0, &[])), Err(FrameError::UnknownApiKey(15))));
        assert!(matches!(decode_request(frame(1, 3, &[])), Err(FrameError::UnsupportedVersion { version: 3, .. })));
        assert!(matches!(decode_request(frame(0, 2, &[])), Err(FrameError::UnsupportedVersion { min: 3, .. })));
    }

    #[test]
    fn api_versions_too_new_is_answered_not_refused() {
        assert!(matches!(decode_request(frame(18, 9, &[])), Ok(Incoming::ApiVersionsTooNew { correlation_id: 7 })));
    }

    #[test]
    fn truncated_bodies_are_malformed_errors() {
        // Metadata v1 header (client id) followed by a topic array that claims 5 topics.
        let mut rest = BytesMut::new();
        rest.put_i16(-1);
        rest.put_i32(5);
        assert!(matches!(decode_request(frame(3, 1, &rest)), Err(FrameError::Malformed { .. })));
    }

    #[test]
    fn responses_carry_their_size_and_correlation_id() {
        let body = ResponseKind::ApiVersions(versions::api_versions(None));
        let bytes = encode_response(ApiKey::ApiVersions, 3, 42, &body).expect("encode");
        let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(size, bytes.len() - 4);
        assert_eq!(i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]), 42);
    }
}
