//! SASL authentication of a new connection (KIP-152: SaslHandshake v1 names the mechanism,
//! SaslAuthenticate carries its exchange): PLAIN, and SCRAM-SHA-256/512 (RFC 5802, RFC
//! 7677) with the server's signature checked, so a server that does not know the
//! password cannot pass for the broker.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

use super::ClientError;
use super::connection::BrokerConnection;
use super::security::{SaslMechanism, SaslSettings};

/// Authenticates the connection with `sasl`.
pub async fn authenticate(conn: &BrokerConnection, sasl: &SaslSettings) -> Result<(), ClientError> {
    let failed = |detail: String| ClientError::Authentication { addr: conn.addr().to_string(), mechanism: sasl.mechanism.name(), detail };
    let handshake = conn.send(&SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(sasl.mechanism.name()))).await?;
    if handshake.error_code != 0 {
        let offered: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(failed(format!("the broker does not offer it (it offers {offered:?})")));
    }
    match sasl.mechanism {
        SaslMechanism::Plain => {
            let mut token = Vec::new();
            token.push(0);
            token.extend_from_slice(sasl.username.as_bytes());
            token.push(0);
            token.extend_from_slice(sasl.password.as_bytes());
            exchange(conn, token, &failed).await?;
            Ok(())
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let scram = Scram::new(sasl.mechanism, &sasl.username).map_err(&failed)?;
            let server_first = exchange(conn, scram.client_first().into_bytes(), &failed).await?;
            let server_first = String::from_utf8(server_first.to_vec()).map_err(|_| failed("the server's first message is not text".into()))?;
            let (client_final, expected) = scram.client_final(&server_first, &sasl.password).map_err(&failed)?;
            let server_final = exchange(conn, client_final.into_bytes(), &failed).await?;
            let server_final = String::from_utf8_lossy(&server_final);
            match server_final.strip_prefix("v=") {
                Some(v) if B64.decode(v.trim()).ok().as_deref() == Some(expected.as_slice()) => Ok(()),
                _ => Err(failed(format!("the server's signature does not match (it said '{server_final}'): it does not know the password"))),
            }
        }
    }
}

/// One SaslAuthenticate round: the server's answer bytes.
async fn exchange(conn: &BrokerConnection, token: Vec<u8>, failed: &impl Fn(String) -> ClientError) -> Result<Bytes, ClientError> {
    let answer = conn.send(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token))).await?;
    if answer.error_code != 0 {
        let message = answer.error_message.map(|m| m.to_string()).unwrap_or_default();
        return Err(failed(format!("the broker refused the credentials (error {}: {message})", answer.error_code)));
    }
    Ok(answer.auth_bytes)
}

/// A SCRAM client's exchange.
struct Scram {
    algorithm: (pbkdf2::Algorithm, hmac::Algorithm, &'static digest::Algorithm),
    client_first_bare: String,
    nonce: String,
}

impl Scram {
    fn new(mechanism: SaslMechanism, username: &str) -> Result<Scram, String> {
        let algorithm = match mechanism {
            SaslMechanism::ScramSha512 => (pbkdf2::PBKDF2_HMAC_SHA512, hmac::HMAC_SHA512, &digest::SHA512),
            _ => (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256),
        };
        let mut random = [0u8; 24];
        ring::rand::SystemRandom::new().fill(&mut random).map_err(|_| "no random numbers for the nonce".to_string())?;
        let nonce = B64.encode(random);
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Ok(Scram { algorithm, client_first_bare: format!("n={name},r={nonce}"), nonce })
    }

    fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client's final message and the server signature to expect.
    fn client_final(&self, server_first: &str, password: &str) -> Result<(String, Vec<u8>), String> {
        let field = |name: &str| server_first.split(',').find_map(|f| f.strip_prefix(name)).map(str::to_string);
        let nonce = field("r=").ok_or("the server's first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt = B64.decode(field("s=").ok_or("the server's first message has no salt")?).map_err(|_| "the server's salt is not base64")?;
        let iterations: u32 = field("i=").and_then(|i| i.parse().ok()).filter(|i| *i > 0).ok_or("the server's iteration count is missing")?;
        let (kdf, mac, hash) = self.algorithm;
        let mut salted = vec![0u8; hash.output_len()];
        pbkdf2::derive(kdf, std::num::NonZeroU32::new(iterations).ok_or("zero iterations")?, &salt, password.as_bytes(), &mut salted);
        let salted = hmac::Key::new(mac, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(hash, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(&hmac::Key::new(mac, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        let server_signature = hmac::sign(&hmac::Key::new(mac, server_key.as_ref()), auth_message.as_bytes());
        Ok((format!("{without_proof},p={}", B64.encode(proof)), server_signature.as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example (user "user", password "pencil").
    #[test]
    fn scram_sha_256_matches_the_rfc_example() {
        let scram = Scram {
            algorithm: (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO".into(),
        };
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (client_final, server_signature) = scram.client_final(server_first, "pencil").unwrap();
        assert_eq!(client_final, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(B64.encode(server_signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(scram.client_final("r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "pencil").is_err(), "a nonce that is not ours");
    }
}
