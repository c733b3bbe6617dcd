//! One connection to one broker: requests sent one at a time (a request, then its
//! response), framed and encoded by the `kafka-protocol` crate, each API at the version
//! both sides speak (negotiated with ApiVersions when the connection opens).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::ClientError;
use super::security::ClientSecurity;

/// A byte stream to a broker: TCP, or TLS over TCP.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Transport for T {}

/// The largest response frame read (a fetch answers at most what it asked for, plus
/// headers; Kafka's own clients cap responses the same way).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The versions this client writes requests in, per API: the lowest it can use and the
/// highest it knows. A connection uses the highest both it and the broker speak.
pub(crate) const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 8),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 5),
    (ApiKey::Metadata, 1, 8),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::DeleteTopics, 1, 3),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::JoinGroup, 4, 5),
    (ApiKey::SyncGroup, 1, 3),
    (ApiKey::Heartbeat, 1, 3),
    (ApiKey::LeaveGroup, 3, 3),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::OffsetFetch, 1, 5),
    (ApiKey::InitProducerId, 1, 4),
    (ApiKey::AddPartitionsToTxn, 1, 3),
    (ApiKey::AddOffsetsToTxn, 1, 3),
    (ApiKey::TxnOffsetCommit, 1, 3),
    (ApiKey::EndTxn, 1, 3),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::ListGroups, 1, 4),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DeleteGroups, 0, 2),
];

/// A connection to one broker.
pub struct BrokerConnection {
    addr: String,
    stream: Mutex<Box<dyn Transport>>,
    correlation: AtomicI32,
    client_id: StrBytes,
    /// Broker-supported version ranges by API key.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
    /// An exchange failed part way: the stream may hold half a frame; the connection is
    /// not used again.
    broken: AtomicBool,
}

impl BrokerConnection {
    /// Connects to `addr` (host:port) in plaintext and learns the versions the broker
    /// speaks.
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<BrokerConnection, ClientError> {
        Self::connect_securely(addr, client_id, timeout, &ClientSecurity::plaintext()).await
    }

    /// Connects to `addr` (host:port) as `security` says (TLS, SASL), and learns the
    /// versions the broker speaks.
    pub async fn connect_securely(addr: &str, client_id: &str, timeout: Duration, security: &ClientSecurity) -> Result<BrokerConnection, ClientError> {
        let io = |source: std::io::Error| ClientError::Io { addr: addr.to_string(), source };
        let timed_out = || io(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {timeout:?}")));
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr)).await.map_err(|_| timed_out())?.map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let stream: Box<dyn Transport> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ClientSecurity::server_name(addr).map_err(|detail| ClientError::Tls { addr: addr.to_string(), detail })?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp)).await.map_err(|_| timed_out())?;
                Box::new(tls.map_err(|e| ClientError::Tls { addr: addr.to_string(), detail: e.to_string() })?)
            }
        };
        let mut conn = BrokerConnection {
            addr: addr.to_string(),
            stream: Mutex::new(stream),
            correlation: AtomicI32::new(0),
            client_id: StrBytes::from_string(client_id.to_string()),
            versions: HashMap::new(),
            timeout,
            broken: AtomicBool::new(false),
        };
        // Version 0 is understood by every broker; it lists the rest.
        let answer = conn.send_at(&ApiVersionsRequest::default(), 0).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("ApiVersions", answer.error_code, &conn.addr));
        }
        conn.versions = answer.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        if let Some(sasl) = &security.sasl {
            super::sasl::authenticate(&conn, sasl).await?;
        }
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether an exchange failed part way (the connection must be replaced).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// The version to write `api` in: the highest both sides speak.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        let (_, low, high) = CLIENT_VERSIONS.iter().find(|(k, _, _)| *k == api).copied().ok_or(ClientError::Unsupported {
            api: format!("{api:?}"),
            addr: self.addr.clone(),
            detail: "this client does not send it".into(),
        })?;
        let (broker_low, broker_high) = self.versions.get(&(api as i16)).copied().ok_or_else(|| ClientError::Unsupported {
            api: format!("{api:?}"),
            addr: self.addr.clone(),
            detail: "the broker does not serve it".into(),
        })?;
        let version = high.min(broker_high);
        if version < low.max(broker_low) {
            return Err(ClientError::Unsupported {
                api: format!("{api:?}"),
                addr: self.addr.clone(),
                detail: format!("the broker speaks versions {broker_low}..={broker_high}, this client {low}..={high}"),
            });
        }
        Ok(version)
    }

    /// Sends a request at the negotiated version and reads its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response, ClientError> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::protocol("request", format!("unknown API key {}", R::KEY)))?;
        let version = self.version(api)?;
        self.send_at(request, version).await
    }

    /// Sends a request at `version` and reads its response.
    pub async fn send_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response, ClientError> {
        let api = format!("{:?}", ApiKey::try_from(R::KEY).map_err(|_| ClientError::protocol("request", format!("unknown API key {}", R::KEY)))?);
        let correlation_id = self.correlation.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).map_err(|e| ClientError::protocol(&api, format!("cannot encode the header: {e}")))?;
        request.encode(&mut body, version).map_err(|e| ClientError::protocol(&api, format!("cannot encode v{version}: {e}")))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let io = |source: std::io::Error| ClientError::Io { addr: self.addr.clone(), source };
        if self.is_broken() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::NotConnected, "the connection failed earlier")));
        }
        let mut stream = self.stream.lock().await;
        let exchange = async {
            stream.write_all(&frame).await.map_err(io)?;
            let size = stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= MAX_RESPONSE_BYTES && *s >= 4)
                .ok_or_else(|| ClientError::protocol(&api, format!("the broker answered with a frame of {size} bytes (at most {MAX_RESPONSE_BYTES})")))?;
            let mut answer = vec![0u8; size];
            stream.read_exact(&mut answer).await.map_err(io)?;
            Ok::<_, ClientError>(Bytes::from(answer))
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(io(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{api} got no answer within {:?}", self.timeout)))),
        };
        let mut answer = answer.inspect_err(|_| self.broken.store(true, Ordering::Relaxed))?;
        let header = ResponseHeader::decode(&mut answer, R::Response::header_version(version))
            .map_err(|e| ClientError::protocol(&api, format!("cannot decode the response header: {e}")))?;
        if header.correlation_id != correlation_id {
            self.broken.store(true, Ordering::Relaxed);
            return Err(ClientError::protocol(&api, format!("answer {} came for request {correlation_id}", header.correlation_id)));
        }
        let response = R::Response::decode(&mut answer, version).map_err(|e| ClientError::protocol(&api, format!("cannot decode v{version}: {e}")))?;
        if answer.has_remaining() {
            return Err(ClientError::protocol(&api, format!("{} bytes left after the response", answer.remaining())));
        }
        Ok(response)
    }
}
