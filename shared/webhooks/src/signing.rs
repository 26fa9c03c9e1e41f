//! Standard Webhooks 1.0 signing: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one
//! per secret, space-separated), with secrets `whsec_` + base64 of their bytes.
//! The deliverer signs with it; `fleetgate webhooks listen` verifies with it;
//! the tests check both against the reference `standardwebhooks` crate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the spec asks for 24 to 64).
const SECRET_BYTES: usize = 32;
/// How far `webhook-timestamp` may be from the receiver's clock (the spec's
/// suggestion): older deliveries are refused as possible replays.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A signing secret. Its `Debug` never shows it: it goes in no log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn generate() -> Secret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// `whsec_<base64>`, as shown once to the endpoint's owner and as stored.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or("a webhook secret starts with whsec_")?;
        let bytes = STANDARD.decode(encoded).map_err(|_| "a webhook secret is whsec_ and base64")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("a webhook secret holds 24 to 64 bytes".into());
        }
        Ok(Secret(bytes))
    }

    /// The secret as its owner pastes it (`whsec_…`).
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one signature per secret (after a
/// rotation, the new and the previous), space-separated.
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| secret.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Why a delivery does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a whole number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from this clock (more than {TOLERANCE_SECONDS} s)")]
    OutsideTolerance(i64),
    #[error("no v1 signature matches this secret")]
    NoMatchingSignature,
}

/// Checks a delivery as a receiver does: a `v1` signature made with `secret`
/// over exactly these id, timestamp and body, sent within the tolerance of `now`.
pub fn verify(
    secret: &Secret,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures = signatures.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::OutsideTolerance(now - timestamp));
    }
    let matches = signatures.split_whitespace().filter_map(|s| s.strip_prefix("v1,")).any(|signature| {
        STANDARD.decode(signature).is_ok_and(|tag| secret.mac(id, timestamp, body).verify_slice(&tag).is_ok())
    });
    if matches { Ok(()) } else { Err(VerifyError::NoMatchingSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_and_never_shows_in_debug() {
        let secret = Secret::generate();
        let text = secret.reveal();
        assert!(text.starts_with("whsec_"));
        assert_eq!(Secret::parse(&text).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        assert_ne!(Secret::generate(), secret);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in ["", "whsec_", "sk_abc", "whsec_!!!!", &format!("whsec_{}", STANDARD.encode([0u8; 8]))] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_secret_id_timestamp_and_body() {
        let (secret, other) = (Secret::generate(), Secret::generate());
        let header = signature_header(&[&secret], "evt_1", 1_000, b"{}");
        let check = |secret: &Secret, id: &str, ts: &str, body: &[u8], now: i64| {
            verify(secret, Some(id), Some(ts), Some(&header), body, now)
        };
        assert_eq!(check(&secret, "evt_1", "1000", b"{}", 1_000), Ok(()));
        assert_eq!(check(&other, "evt_1", "1000", b"{}", 1_000), Err(VerifyError::NoMatchingSignature));
        assert_eq!(check(&secret, "evt_2", "1000", b"{}", 1_000), Err(VerifyError::NoMatchingSignature));
        assert_eq!(check(&secret, "evt_1", "1001", b"{}", 1_001), Err(VerifyError::NoMatchingSignature));
        assert_eq!(check(&secret, "evt_1", "1000", b"{ }", 1_000), Err(VerifyError::NoMatchingSignature));
        assert_eq!(check(&secret, "evt_1", "1000", b"{}", 1_301), Err(VerifyError::OutsideTolerance(301)));
        assert_eq!(check(&secret, "evt_1", "soon", b"{}", 1_000), Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let (new, previous) = (Secret::generate(), Secret::generate());
        let header = signature_header(&[&new, &previous], "evt_1", 7, b"x");
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&new, &previous] {
            assert_eq!(verify(secret, Some("evt_1"), Some("7"), Some(&header), b"x", 7), Ok(()));
        }
    }
}
