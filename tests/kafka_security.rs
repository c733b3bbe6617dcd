//! Eddy's Kafka client over TLS and SASL (`--kafka-property security.protocol=SASL_SSL`
//! ...). The broker is an Eddy in embedded mode behind a gateway written here: it
//! terminates TLS with a certificate the test makes (openssl), authenticates SASL PLAIN
//! and SCRAM-SHA-256 itself (the server side of RFC 5802, with ring), refuses every other
//! request until then, and passes authenticated connections' requests to the broker,
//! which advertises the gateway's port (`--kafka-advertised-port`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Buf, Bytes, BytesMut};
use common::TestServer;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use ring::{digest, hmac, pbkdf2};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

const USER: &str = "eddy";
const PASSWORD: &str = "pencil";
const SALT: &[u8] = b"eddy-test-salt";
const ITERATIONS: u32 = 4096;

/// Certificates made with openssl: a CA, and a broker certificate it signed for 127.0.0.1.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for ca in ["ca", "other-ca"] {
            let (key, pem, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN=eddy test {ca}"));
            run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subject]);
        }
        std::fs::write(dir.path().join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("write");
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=broker"]);
        run(&[
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "broker.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ]);
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What the gateway saw.
#[derive(Default)]
struct Seen {
    authenticated: AtomicUsize,
    refused: AtomicUsize,
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<Bytes> {
    let size = s.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(size).ok()?];
    s.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, body: &[u8]) -> Option<()> {
    s.write_i32(body.len() as i32).await.ok()?;
    s.write_all(body).await.ok()
}

fn response<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, body: &R) -> Bytes {
    let mut out = BytesMut::new();
    ResponseHeader::default().with_correlation_id(correlation_id).encode(&mut out, R::header_version(version)).expect("header");
    body.encode(&mut out, version).expect("body");
    out.freeze()
}

/// The server side of a SCRAM-SHA-256 exchange: the client's first message gets the
/// server's; the final one is checked.
struct ScramServer {
    first_bare: String,
    server_first: String,
    nonce: String,
}

fn scram_server_first(client_first: &str) -> Option<ScramServer> {
    let bare = client_first.strip_prefix("n,,")?;
    let nonce = format!("{}server-nonce", bare.split(',').find_map(|f| f.strip_prefix("r="))?);
    let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(SALT));
    Some(ScramServer { first_bare: bare.to_string(), server_first, nonce })
}

/// The server's final message when the client's proof holds.
fn scram_server_final(s: &ScramServer, client_final: &str) -> Option<String> {
    let without_proof = client_final.rsplit_once(",p=")?.0;
    let proof = B64.decode(client_final.rsplit_once(",p=")?.1).ok()?;
    if without_proof != format!("c=biws,r={}", s.nonce) {
        return None;
    }
    let mut salted = [0u8; 32];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, std::num::NonZeroU32::new(ITERATIONS)?, SALT, PASSWORD.as_bytes(), &mut salted);
    let salted = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let auth_message = format!("{},{},{without_proof}", s.first_bare, s.server_first);
    let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()), auth_message.as_bytes());
    let expected: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
    if proof != expected {
        return None;
    }
    let server_key = hmac::sign(&salted, b"Server Key");
    Some(format!("v={}", B64.encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()), auth_message.as_bytes()))))
}

/// One client connection through the gateway.
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, broker: String, seen: Arc<Seen>) {
    let Ok(mut upstream) = tokio::net::TcpStream::connect(&broker).await else { return };
    let (mut mechanism, mut scram, mut authenticated) = (String::new(), None, false);
    while let Some(frame) = read_frame(&mut client).await {
        let mut peek = frame.clone();
        let (api, version) = (peek.get_i16(), peek.get_i16());
        let correlation_id = peek.get_i32();
        let answer = match ApiKey::try_from(api) {
            Ok(ApiKey::ApiVersions) => {
                // The broker's answer, plus the SASL APIs this gateway serves.
                write_frame(&mut upstream, &frame).await;
                let Some(mut answer) = read_frame(&mut upstream).await else { return };
                ResponseHeader::decode(&mut answer, 0).expect("header");
                let mut versions = ApiVersionsResponse::decode(&mut answer, version).expect("ApiVersions");
                versions.api_keys.push(ApiVersion::default().with_api_key(ApiKey::SaslHandshake as i16).with_min_version(0).with_max_version(1));
                versions.api_keys.push(ApiVersion::default().with_api_key(ApiKey::SaslAuthenticate as i16).with_min_version(0).with_max_version(2));
                response(correlation_id, version, &versions)
            }
            Ok(ApiKey::SaslHandshake) => {
                let mut body = frame.clone();
                RequestHeader::decode(&mut body, SaslHandshakeRequest::header_version(version)).expect("header");
                let req = SaslHandshakeRequest::decode(&mut body, version).expect("SaslHandshake");
                mechanism = req.mechanism.to_string();
                let offered = ["PLAIN", "SCRAM-SHA-256"];
                let code = if offered.contains(&mechanism.as_str()) { 0 } else { 33 };
                let mechanisms = offered.iter().map(|m| StrBytes::from_static_str(m)).collect();
                response(correlation_id, version, &SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(mechanisms))
            }
            Ok(ApiKey::SaslAuthenticate) => {
                let mut body = frame.clone();
                RequestHeader::decode(&mut body, SaslAuthenticateRequest::header_version(version)).expect("header");
                let token = SaslAuthenticateRequest::decode(&mut body, version).expect("SaslAuthenticate").auth_bytes;
                let text = String::from_utf8_lossy(&token).into_owned();
                let reply = match (mechanism.as_str(), scram.take()) {
                    ("PLAIN", _) if text == format!("\0{USER}\0{PASSWORD}") => {
                        authenticated = true;
                        Some(String::new())
                    }
                    ("SCRAM-SHA-256", None) => scram_server_first(&text).map(|s| {
                        let first = s.server_first.clone();
                        scram = Some(s);
                        first
                    }),
                    ("SCRAM-SHA-256", Some(s)) => scram_server_final(&s, &text).inspect(|_| authenticated = true),
                    _ => None,
                };
                if authenticated {
                    seen.authenticated.fetch_add(1, Ordering::Relaxed);
                }
                let answer = match reply {
                    Some(r) => SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(r)),
                    None => {
                        SaslAuthenticateResponse::default().with_error_code(58).with_error_message(Some(StrBytes::from_static_str("Authentication failed")))
                    }
                };
                response(correlation_id, version, &answer)
            }
            _ if !authenticated => {
                seen.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {
                write_frame(&mut upstream, &frame).await;
                match read_frame(&mut upstream).await {
                    Some(a) => a,
                    None => return,
                }
            }
        };
        if write_frame(&mut client, &answer).await.is_none() {
            return;
        }
    }
}

/// A TLS and SASL gateway on `listener` in front of the broker at `broker`.
fn start_gateway(listener: std::net::TcpListener, broker: String, certs: &Certificates) -> Arc<Seen> {
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(certs.path("broker.pem")).expect("pem").map(|c| c.expect("cert")).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(certs.path("broker.key")).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, broker, seen) = (acceptor.clone(), broker.clone(), s.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_connection(tls, broker, seen).await;
                    }
                });
            }
        });
    });
    seen
}

/// A broker behind a gateway: (broker, gateway address, what the gateway saw).
fn broker_behind_gateway(certs: &Certificates) -> (TestServer, String, Arc<Seen>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let broker = TestServer::start_with(&["--kafka-advertised-port", &port.to_string()]);
    let seen = start_gateway(listener, broker.kafka.clone(), certs);
    (broker, format!("127.0.0.1:{port}"), seen)
}

/// `--kafka-property` arguments for SASL over TLS.
fn properties(mechanism: &str, password: &str, ca: &Path) -> Vec<String> {
    [
        "security.protocol=SASL_SSL".to_string(),
        format!("sasl.mechanism={mechanism}"),
        format!("sasl.username={USER}"),
        format!("sasl.password={password}"),
        format!("ssl.ca.location={}", ca.display()),
    ]
    .into_iter()
    .flat_map(|p| ["--kafka-property".to_string(), p])
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_reaches_its_cluster_over_tls_with_scram_and_runs_queries_there() {
    let certs = Certificates::make();
    let (broker, gateway, seen) = broker_behind_gateway(&certs);
    let mut args: Vec<String> = vec!["--kafka-bootstrap".into(), gateway.clone()];
    args.extend(properties("SCRAM-SHA-256", PASSWORD, &certs.path("ca.pem")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let eddy = TestServer::start_with(&args);
    eddy.ksql_ok("CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', partitions=2, value_format='JSON');").await;
    let (status, body) =
        eddy.ksql_with("CREATE STREAM copied AS SELECT user, page FROM clicks EMIT CHANGES;", json!({"ksql.streams.auto.offset.reset": "earliest"})).await;
    assert_eq!(status, 200, "{body}");
    eddy.ksql_ok("INSERT INTO clicks (user, page) VALUES ('u1', '/a');").await;
    eddy.ksql_ok("INSERT INTO clicks (user, page) VALUES ('u2', '/b');").await;
    broker
        .wait_until("the query's output is on the broker", async |b| {
            let mut pages: Vec<String> = b.read_topic("COPIED").await.into_iter().filter_map(|(_, r)| r["value"]["PAGE"].as_str().map(String::from)).collect();
            pages.sort();
            pages == ["/a", "/b"]
        })
        .await;
    assert!(seen.authenticated.load(Ordering::Relaxed) > 0, "the server authenticated");
    assert_eq!(seen.refused.load(Ordering::Relaxed), 0, "no request came before authentication");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_and_an_unknown_ca_are_clear_start_up_errors() {
    let certs = Certificates::make();
    let (_broker, gateway, seen) = broker_behind_gateway(&certs);
    let err = common::refused_cluster_start(&gateway, &properties("SCRAM-SHA-256", "wrong", &certs.path("ca.pem")));
    assert!(err.contains("SASL SCRAM-SHA-256 authentication") && err.contains("refused the credentials"), "{err}");
    let err = common::refused_cluster_start(&gateway, &properties("PLAIN", "wrong", &certs.path("ca.pem")));
    assert!(err.contains("SASL PLAIN authentication"), "{err}");
    let err = common::refused_cluster_start(&gateway, &properties("PLAIN", PASSWORD, &certs.path("other-ca.pem")));
    assert!(err.contains("TLS to the Kafka broker") && err.contains("ssl.ca.location"), "{err}");
    let err = common::refused_cluster_start(&gateway, &["--kafka-property", "linger.ms=5"]);
    assert!(err.contains("'linger.ms'"), "{err}");
    assert_eq!(seen.authenticated.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_check_runs_over_tls_with_sasl_plain_from_a_properties_file() {
    let certs = Certificates::make();
    let (_broker, gateway, seen) = broker_behind_gateway(&certs);
    let file = certs.path("client.properties");
    let text = format!(
        "# as for Kafka's own tools\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{USER}\" password=\"{PASSWORD}\";\n\
         ssl.ca.location={}\n",
        certs.path("ca.pem").display()
    );
    std::fs::write(&file, text).expect("write");
    let out = std::process::Command::new(common::eddy_bin()).args(["kafka-check", &gateway, "--kafka-properties"]).arg(&file).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok      run transactions"), "{stdout}");
    assert!(seen.authenticated.load(Ordering::Relaxed) > 0);
}
