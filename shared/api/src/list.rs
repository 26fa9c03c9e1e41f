//! List pages: `limit`, opaque signed cursors bound to the tenant and the query,
//! and the `{"data": [...], "next_cursor": ...}` envelope.
//!
//! A cursor is `base64url(json position) . base64url(HMAC-SHA256(secret, query ‖ position))`
//! truncated to 128 bits, where `query` names the tenant, the route and its
//! filters. A cursor from another tenant or query, edited, or invented fails
//! the MAC and is a 400; it never reaches DynamoDB.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::dynamo::DbError;
use crate::error::ApiError;
use crate::input::invalid_parameter;

pub const DEFAULT_LIMIT: i32 = 25;
pub const MAX_LIMIT: i32 = 100;
const MAC_BYTES: usize = 16;
/// Longest cursor accepted; real ones are far shorter.
const MAX_CURSOR_CHARS: usize = 1024;

/// One page of a list response.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Where a list query resumes: DynamoDB's `LastEvaluatedKey` (string attributes only).
pub type Position = BTreeMap<String, String>;

/// Signs cursors with the deployment's current secret, and checks them against it
/// and the previous one (a rotation does not break the cursors clients hold).
/// Functions get it from [`crate::cursor_keys::CursorKeys`].
#[derive(Clone)]
pub struct CursorSigner {
    secret: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(…)")
    }
}

impl CursorSigner {
    pub fn new(secret: impl Into<Vec<u8>>) -> CursorSigner {
        CursorSigner { secret: secret.into(), previous: None }
    }

    /// This signer, also accepting cursors signed with `previous`.
    pub fn with_previous(self, previous: Option<impl Into<Vec<u8>>>) -> CursorSigner {
        CursorSigner { previous: previous.map(Into::into), ..self }
    }

    fn mac(&self, query: &str, position: &[u8]) -> Hmac<Sha256> {
        mac_with(&self.secret, query, position)
    }
}

fn mac_with(secret: &[u8], query: &str, position: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    // Length-prefix the query so (query, position) pairs cannot be re-split.
    mac.update(&(query.len() as u64).to_be_bytes());
    mac.update(query.as_bytes());
    mac.update(position);
    mac
}

impl CursorSigner {
    /// The cursor that resumes `query` after `position`.
    pub fn encode(&self, query: &str, position: &Position) -> String {
        let json = serde_json::to_vec(position).expect("a string map serialises");
        let tag = self.mac(query, &json).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    /// The position in `cursor`, if it was made by [`CursorSigner::encode`] for this very `query`.
    pub fn decode(&self, query: &str, cursor: &str) -> Result<Position, ApiError> {
        let invalid = || {
            crate::input::bad_query(
                "invalid_cursor",
                "cursor",
                cursor,
                "The cursor is not valid for this list; use next_cursor from the previous page of the same query."
                    .into(),
            )
        };
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let (body, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != MAC_BYTES {
            return Err(invalid());
        }
        // Constant-time comparison of the truncated tag, with the current key, then the previous.
        let verifies = |secret: &[u8]| mac_with(secret, query, &json).verify_truncated_left(&tag).is_ok();
        if !verifies(&self.secret) && !self.previous.as_deref().is_some_and(verifies) {
            return Err(invalid());
        }
        serde_json::from_slice(&json).map_err(|_| invalid())
    }
}

/// Names a list query for cursor binding: tenant, route and every filter value.
pub fn query_identity(tenant_id: &str, route: &str, filters: &[(&str, Option<&str>)]) -> String {
    let mut identity = format!("{tenant_id}\n{route}");
    for (name, value) in filters {
        identity.push_str(&format!("\n{name}={}", value.unwrap_or("")));
    }
    identity
}

/// `limit` and `cursor` of a list request.
#[derive(Debug, Default)]
pub struct PageRequest {
    pub limit: i32,
    pub start: Option<Position>,
}

impl PageRequest {
    /// `limit` alone (default [`DEFAULT_LIMIT`]), for a list that takes no cursor.
    pub fn parse_limit(params: &[(String, String)]) -> Result<i32, ApiError> {
        match params.iter().find(|(name, _)| name == "limit") {
            None => Ok(DEFAULT_LIMIT),
            Some((_, value)) => value.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                invalid_parameter("limit", value, format!("limit must be a whole number from 1 to {MAX_LIMIT}."))
            }),
        }
    }

    /// Reads `limit` and `cursor` from already-collected query parameters.
    pub fn parse(params: &[(String, String)], signer: &CursorSigner, query: &str) -> Result<PageRequest, ApiError> {
        let mut page = PageRequest { limit: DEFAULT_LIMIT, start: None };
        for (name, value) in params {
            match name.as_str() {
                "limit" => {
                    page.limit = value.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                        invalid_parameter(
                            "limit",
                            value,
                            format!("limit must be a whole number from 1 to {MAX_LIMIT}."),
                        )
                    })?;
                }
                "cursor" => page.start = Some(signer.decode(query, value)?),
                _ => {}
            }
        }
        Ok(page)
    }
}

/// A query of `table` for the items of `tenant` whose sort key starts with
/// `prefix` (`vehicle#`, `webhook#`, …), on the table's own key.
pub fn tenant_prefix_query(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &str,
    prefix: &str,
) -> QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :tenant AND begins_with(sk, :prefix)")
        .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_owned()))
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
}

/// Runs `query` (table, key condition and any index already set) for one page:
/// up to `limit` items after `start`, and the position after the last of them,
/// `None` exactly when nothing follows. Reads one extra item to know that.
/// `key` names the attributes DynamoDB needs to resume: the table's key, plus
/// the index's key when the query reads an index.
///
/// DynamoDB also ends a read at 1 MB of data, with fewer items than asked and a
/// `LastEvaluatedKey`: the read then goes on from there until it has `limit + 1`
/// items or the partition ends, so a page is never cut short (bounded: at most
/// 101 items, each ≤ 400 KB).
pub async fn query_page<T: DeserializeOwned>(
    query: QueryFluentBuilder,
    key: &[&str],
    limit: i32,
    start: Option<&Position>,
) -> Result<(Vec<T>, Option<Position>), DbError> {
    let wanted = limit as usize + 1;
    let mut items = Vec::with_capacity(wanted);
    let mut resume = start.map(start_key);
    loop {
        let asked = (wanted - items.len()) as i32;
        let output = query.clone().limit(asked).set_exclusive_start_key(resume).send().await?;
        items.extend(output.items.unwrap_or_default());
        resume = output.last_evaluated_key;
        if items.len() >= wanted || resume.is_none() {
            break;
        }
    }
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = match (more, items.last()) {
        (true, Some(last)) => {
            Some(position_of(last).into_iter().filter(|(name, _)| key.contains(&name.as_str())).collect())
        }
        _ => None,
    };
    let items = items.into_iter().filter_map(readable_item).collect();
    Ok((items, next))
}

/// A stored item as `T`; `None`, logged for the operators, when it does not map
/// (written by an older version, say). One unreadable record must not make its
/// whole list fail: it is left out, and a direct read of it is a 404.
pub fn readable_item<T: DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Option<T> {
    let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned();
    match crate::stored::record(item) {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::error!(sk, error = %err, "a stored item does not map; left out");
            None
        }
    }
}

/// A DynamoDB key as a cursor position (string attributes only).
fn position_of(key: &HashMap<String, AttributeValue>) -> Position {
    key.iter().filter_map(|(name, value)| Some((name.clone(), value.as_s().ok()?.clone()))).collect()
}

/// A cursor position back as a DynamoDB `ExclusiveStartKey`.
fn start_key(position: &Position) -> HashMap<String, AttributeValue> {
    position.iter().map(|(name, value)| (name.clone(), AttributeValue::S(value.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn position() -> Position {
        [("pk".to_owned(), "acme".to_owned()), ("sk".to_owned(), "vehicle#veh_1".to_owned())].into()
    }

    #[test]
    fn a_cursor_round_trips_only_for_its_own_query() {
        let signer = CursorSigner::new("secret");
        let query = query_identity("acme", "GET /vehicles", &[("status", Some("active"))]);
        let cursor = signer.encode(&query, &position());
        assert_eq!(signer.decode(&query, &cursor).unwrap(), position());

        let other_tenant = query_identity("globex", "GET /vehicles", &[("status", Some("active"))]);
        let other_filter = query_identity("acme", "GET /vehicles", &[("status", None)]);
        for query in [other_tenant, other_filter] {
            let err = signer.decode(&query, &cursor).unwrap_err();
            assert_eq!((err.status().as_u16(), err.code()), (400, "invalid_cursor"));
        }
        assert!(CursorSigner::new("other secret").decode(&query, &cursor).is_err());
    }

    #[test]
    fn a_validly_signed_cursor_over_1_kib_is_refused() {
        let signer = CursorSigner::new("secret");
        let long: Position = [("sk".to_owned(), "x".repeat(MAX_CURSOR_CHARS))].into();
        let cursor = signer.encode("q", &long);
        assert!(cursor.len() > MAX_CURSOR_CHARS);
        assert_eq!(signer.decode("q", &cursor).unwrap_err().code(), "invalid_cursor");
        // The same signer's short cursors verify: only the length refused it.
        let short: Position = [("sk".to_owned(), "x".repeat(100))].into();
        assert_eq!(signer.decode("q", &signer.encode("q", &short)).unwrap(), short);
    }

    #[test]
    fn after_a_rotation_cursors_of_the_previous_secret_still_verify() {
        let old = CursorSigner::new("old");
        let rotated = CursorSigner::new("new").with_previous(Some("old"));
        let cursor = old.encode("q", &position());
        assert_eq!(rotated.decode("q", &cursor).unwrap(), position());
        // New cursors are signed with the new secret only.
        let fresh = rotated.encode("q", &position());
        assert!(old.decode("q", &fresh).is_err());
        assert!(CursorSigner::new("new").decode("q", &cursor).is_err());
    }

    #[test]
    fn an_edited_position_is_refused() {
        let signer = CursorSigner::new("secret");
        let cursor = signer.encode("q", &position());
        let (_, tag) = cursor.split_once('.').unwrap();
        let forged = serde_json::to_vec(&Position::from([("pk".to_owned(), "globex".to_owned())])).unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert!(signer.decode("q", &forged).is_err());
        assert!(signer.decode("q", &format!("{cursor}A")).is_err());
        assert!(signer.decode("q", cursor.split_once('.').unwrap().0).is_err());
    }

    #[test]
    fn limit_is_bounded() {
        let signer = CursorSigner::new("s");
        let limit = |v: &str| PageRequest::parse(&[("limit".into(), v.into())], &signer, "q").map(|p| p.limit);
        assert_eq!(limit("1").unwrap(), 1);
        assert_eq!(limit("100").unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "", "1e2"] {
            assert_eq!(limit(bad).unwrap_err().code(), "invalid_parameter", "{bad}");
        }
        assert_eq!(PageRequest::parse(&[], &signer, "q").unwrap().limit, DEFAULT_LIMIT);
    }

    proptest! {
        #[test]
        fn garbage_cursors_are_400_never_a_panic(cursor in ".{0,200}") {
            let err = CursorSigner::new("s").decode("q", &cursor).unwrap_err();
            prop_assert_eq!(err.code(), "invalid_cursor");
        }
    }
}
