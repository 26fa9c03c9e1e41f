//! Our signing against the reference implementation of Standard Webhooks 1.0
//! (the `standardwebhooks` crate): ours signs, theirs verifies, and the reverse.

use fleetgate_webhooks::signing::{Secret, signature_header, verify};
use http::{HeaderMap, HeaderValue};
use standardwebhooks::Webhook;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    headers.insert("webhook-timestamp", HeaderValue::from_str(&timestamp.to_string()).unwrap());
    headers.insert("webhook-signature", HeaderValue::from_str(signature).unwrap());
    headers
}

// Non-ASCII included: the signature covers the body's bytes exactly as sent.
const BODY: &[u8] =
    r#"{"type":"inspection.failed","timestamp":"2026-12-07T10:00:00Z","data":{"id":"insp_1","notes":"café ✓"}}"#
        .as_bytes();

#[test]
fn the_reference_verifies_what_we_sign_with_each_secret_of_a_rotation() {
    let (new, previous) = (Secret::generate(), Secret::generate());
    let at = now();
    let signed = signature_header(&[&new, &previous], "evt_01JE", at, BODY);
    for secret in [&new, &previous] {
        let reference = Webhook::new(&secret.reveal()).unwrap();
        reference.verify(BODY, &headers("evt_01JE", at, &signed)).unwrap();
    }
    // And it refuses what we signed for another body or with another secret.
    let reference = Webhook::new(&new.reveal()).unwrap();
    assert!(reference.verify(b"{}", &headers("evt_01JE", at, &signed)).is_err());
    let other = Webhook::new(&Secret::generate().reveal()).unwrap();
    assert!(other.verify(BODY, &headers("evt_01JE", at, &signed)).is_err());
}

#[test]
fn we_verify_what_the_reference_signs_and_refuse_it_altered() {
    let secret = Secret::generate();
    let reference = Webhook::new(&secret.reveal()).unwrap();
    let at = now();
    let signed = reference.sign("msg_2", at, BODY).unwrap();
    assert_eq!(verify(&secret, Some("msg_2"), Some(&at.to_string()), Some(&signed), BODY, at), Ok(()));
    assert_eq!(signed, secret.sign("msg_2", at, BODY), "byte-identical signatures");
    assert!(verify(&secret, Some("msg_3"), Some(&at.to_string()), Some(&signed), BODY, at).is_err());
}
