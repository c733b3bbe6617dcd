//! How the client reaches brokers, from Kafka's client properties (the names librdkafka
//! and the Java client use): `security.protocol` PLAINTEXT, SSL, SASL_PLAINTEXT or
//! SASL_SSL; TLS with the system's or a given CA (`ssl.ca.location`), a client
//! certificate (`ssl.certificate.location`, `ssl.key.location`), host name checks
//! (`ssl.endpoint.identification.algorithm`); SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
//! (`sasl.mechanism`, `sasl.username`, `sasl.password`, or the Java client's
//! `sasl.jaas.config`). A property the client does not act on is refused by name, so a
//! setting never silently does nothing.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A client property that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("Kafka client property '{0}' is not one Eddy's client acts on; the ones it does: {SUPPORTED}")]
    Unsupported(String),
    #[error("Kafka client property '{key}' cannot be '{value}': {expected}")]
    BadValue { key: String, value: String, expected: String },
    #[error("{0}")]
    Missing(String),
    #[error("cannot read {what} '{path}': {source}")]
    File {
        what: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} '{path}' holds no usable PEM data: {detail}")]
    Pem { what: String, path: String, detail: String },
    #[error("the TLS settings are not usable: {0}")]
    Tls(#[source] rustls::Error),
}

const SUPPORTED: &str = "security.protocol, sasl.mechanism(s), sasl.username, sasl.password, sasl.jaas.config, ssl.ca.location, \
    ssl.certificate.location, ssl.key.location, ssl.endpoint.identification.algorithm";

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone)]
pub struct SaslSettings {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings").field("mechanism", &self.mechanism).field("username", &self.username).finish_non_exhaustive()
    }
}

/// How to reach the brokers.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS, when the protocol is SSL or SASL_SSL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslSettings>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

/// Reads `key=value` lines (a Java properties file's simple form: `#` and `!` comments,
/// `=` or `:` between key and value).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

/// `username="..."` and `password="..."` of a `sasl.jaas.config` value.
fn jaas_option(config: &str, name: &str) -> Option<String> {
    let mut rest = config;
    while let Some(at) = rest.find(name) {
        let after = rest[at + name.len()..].trim_start();
        let preceded = rest[..at].chars().next_back().is_none_or(|c| c.is_whitespace() || c == ';');
        if preceded && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quoted = value.strip_prefix('"')?;
            return Some(quoted[..quoted.find('"')?].to_string());
        }
        rest = &rest[at + name.len()..];
    }
    None
}

fn read_pem_certs(what: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let bytes = std::fs::read(path).map_err(|source| SecurityError::File { what: what.into(), path: path.into(), source })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>().map_err(|e| SecurityError::Pem {
        what: what.into(),
        path: path.into(),
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(SecurityError::Pem { what: what.into(), path: path.into(), detail: "no CERTIFICATE block".into() });
    }
    Ok(certs)
}

impl ClientSecurity {
    /// Plaintext, no SASL.
    pub fn plaintext() -> ClientSecurity {
        ClientSecurity::default()
    }

    /// The settings Kafka client properties ask for.
    pub fn from_properties(props: &[(String, String)]) -> Result<ClientSecurity, SecurityError> {
        let mut protocol = None;
        let (mut mechanism, mut username, mut password, mut jaas) = (None, None, None, None);
        let (mut ca, mut cert, mut key, mut check_host) = (None, None, None, true);
        for (k, v) in props {
            match k.as_str() {
                "security.protocol" => protocol = Some(v.to_ascii_uppercase()),
                "sasl.mechanism" | "sasl.mechanisms" => {
                    mechanism = Some(match v.to_ascii_uppercase().as_str() {
                        "PLAIN" => SaslMechanism::Plain,
                        "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                        "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                        _ => return Err(bad(k, v, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")),
                    })
                }
                "sasl.username" => username = Some(v.clone()),
                "sasl.password" => password = Some(v.clone()),
                "sasl.jaas.config" => jaas = Some(v.clone()),
                "ssl.ca.location" => ca = Some(v.clone()),
                "ssl.certificate.location" => cert = Some(v.clone()),
                "ssl.key.location" => key = Some(v.clone()),
                "ssl.endpoint.identification.algorithm" => {
                    check_host = match v.to_ascii_lowercase().as_str() {
                        "https" => true,
                        "" | "none" => false,
                        _ => return Err(bad(k, v, "https, or none (empty) to skip the host name check")),
                    }
                }
                _ => return Err(SecurityError::Unsupported(k.clone())),
            }
        }
        let protocol = protocol.unwrap_or_else(|| "PLAINTEXT".into());
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            _ => return Err(bad("security.protocol", &protocol, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")),
        };
        let sasl = if sasl {
            if let Some(config) = &jaas {
                username = username.or_else(|| jaas_option(config, "username"));
                password = password.or_else(|| jaas_option(config, "password"));
            }
            let (Some(username), Some(password)) = (username, password) else {
                return Err(SecurityError::Missing(format!(
                    "security.protocol={protocol} needs SASL credentials: set sasl.username and sasl.password (or sasl.jaas.config)"
                )));
            };
            Some(SaslSettings { mechanism: mechanism.unwrap_or(SaslMechanism::Plain), username, password })
        } else {
            None
        };
        let tls = if tls { Some(Arc::new(tls_config(ca.as_deref(), cert.as_deref(), key.as_deref(), check_host)?)) } else { None };
        Ok(ClientSecurity { tls, sasl })
    }

    /// The server name TLS checks the broker's certificate against.
    pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| format!("'{host}' is not a host name TLS can check: {e}"))
    }
}

fn bad(key: &str, value: &str, expected: &str) -> SecurityError {
    SecurityError::BadValue { key: key.into(), value: value.into(), expected: expected.into() }
}

/// A rustls client configuration (ring's cryptography).
fn tls_config(ca: Option<&str>, cert: Option<&str>, key: Option<&str>, check_host: bool) -> Result<rustls::ClientConfig, SecurityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in read_pem_certs("the CA file (ssl.ca.location)", path)? {
                roots.add(c).map_err(SecurityError::Tls)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(SecurityError::Missing("no system CA certificates were found; set ssl.ca.location to the brokers' CA (PEM)".into()));
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(SecurityError::Tls)?;
    let roots = Arc::new(roots);
    let builder = if check_host {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| SecurityError::Tls(rustls::Error::General(e.to_string())))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyHostName(inner)))
    };
    match (cert, key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = read_pem_certs("the client certificate (ssl.certificate.location)", cert)?;
            let what = "the client key (ssl.key.location)";
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| SecurityError::Pem { what: what.into(), path: key.into(), detail: e.to_string() })?;
            builder.with_client_auth_cert(chain, key).map_err(SecurityError::Tls)
        }
        _ => Err(SecurityError::Missing("a client certificate needs both ssl.certificate.location and ssl.key.location".into())),
    }
}

/// Checks the broker's certificate chain but not its host name
/// (`ssl.endpoint.identification.algorithm=none`).
#[derive(Debug)]
struct AnyHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sasl_settings_come_from_librdkafka_or_java_client_properties() {
        let plain =
            ClientSecurity::from_properties(&props(&[("security.protocol", "sasl_plaintext"), ("sasl.username", "u"), ("sasl.password", "p")])).unwrap();
        let sasl = plain.sasl.unwrap();
        assert!(plain.tls.is_none());
        assert_eq!((sasl.mechanism, sasl.username.as_str(), sasl.password.as_str()), (SaslMechanism::Plain, "u", "p"));
        let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="s3 cr=t";"#;
        let java = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", jaas),
        ]))
        .unwrap()
        .sasl
        .unwrap();
        assert_eq!((java.mechanism, java.username.as_str(), java.password.as_str()), (SaslMechanism::ScramSha512, "svc", "s3 cr=t"));
        assert!(format!("{java:?}").contains("svc") && !format!("{java:?}").contains("s3 cr"), "no password in debug output");
    }

    #[test]
    fn unusable_properties_are_refused_by_name() {
        let e = ClientSecurity::from_properties(&props(&[("linger.ms", "5")])).unwrap_err().to_string();
        assert!(e.contains("'linger.ms'") && e.contains("security.protocol"), "{e}");
        let e = ClientSecurity::from_properties(&props(&[("security.protocol", "SASL_PLAINTEXT")])).unwrap_err().to_string();
        assert!(e.contains("sasl.username"), "{e}");
        let e = ClientSecurity::from_properties(&props(&[("sasl.mechanism", "GSSAPI")])).unwrap_err().to_string();
        assert!(e.contains("GSSAPI") && e.contains("SCRAM-SHA-256"), "{e}");
        let e = ClientSecurity::from_properties(&props(&[("security.protocol", "SSL"), ("ssl.ca.location", "/nonexistent/ca.pem")])).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn properties_files_read_as_java_reads_simple_ones() {
        let read = parse_properties("# comment\nsecurity.protocol = SASL_SSL\n\nsasl.username: me\n! other comment\nsasl.password=a=b\n");
        assert_eq!(read, props(&[("security.protocol", "SASL_SSL"), ("sasl.username", "me"), ("sasl.password", "a=b")]));
    }
}
