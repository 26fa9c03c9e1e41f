//! When each key last used each of its scopes: what an access review
//! (`review_keys`, `fleetgate keys review`) needs to name the scopes a key was
//! granted and never uses.
//!
//! Recorded by the endpoint functions, never in the keys table (they cannot write
//! it): one item per key in the usage table (`pk = key#<id>`, `sk = scopes`), an
//! attribute per scope holding the epoch second of its last use. Each function
//! instance writes a (key, scope) at most once an hour (remembered in memory),
//! right after the request's count on the same connection: one extra round trip
//! on the first request of the hour, a map lookup on the others. The answer's
//! granularity is an hour, like the authorizer's `last_used_at`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use fleetgate_scopes::Scope;

use crate::Timestamp;
use crate::dynamo::{DbError, batch_get};
use crate::usage::{TTL, UsageCounter};

/// The sort key of a key's scope-use item.
const SCOPES_ITEM: &str = "scopes";
/// A (key, scope) is written again by one instance after this many seconds.
pub const NOTE_EVERY_SECONDS: i64 = 3_600;
/// A scope-use item outlives its key's last use by this long (then DynamoDB drops it).
const KEEP_SECONDS: i64 = 400 * 86_400;
/// At most this many (key, scope) pairs are remembered per instance.
const MAX_NOTED: usize = 10_000;

/// When a key last used each scope (epoch seconds, at an hour's granularity).
pub type ScopeUse = BTreeMap<Scope, Timestamp>;

impl UsageCounter {
    /// Notes that `key_id` used `scope` at `now` (epoch seconds), unless this
    /// instance did (or tried) within the hour. A failure is logged and forgotten:
    /// the review is advice, never a reason to fail or slow a request.
    pub async fn note_scope_use(&self, key_id: &str, scope: Scope, now: i64) {
        let pair = (key_id.to_owned(), scope);
        {
            let Ok(mut noted) = self.scopes_noted.lock() else { return };
            if noted.get(&pair).is_some_and(|at| now - at < NOTE_EVERY_SECONDS) {
                return;
            }
            if noted.len() >= MAX_NOTED {
                noted.clear();
            }
            noted.insert(pair.clone(), now);
        }
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::key_item(key_id)))
            .key("sk", AttributeValue::S(SCOPES_ITEM.to_owned()))
            .update_expression("SET #scope = :now, #ttl = :ttl")
            .expression_attribute_names("#scope", scope.as_str())
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N((now + KEEP_SECONDS).to_string()))
            .send()
            .await;
        // Not retried before the hour is out: a sick table must not slow every request.
        if let Err(err) = written {
            let err = DbError::from(err);
            tracing::warn!(key_id, scope = scope.as_str(), error = %err, "could not note a scope's use");
        }
    }

    /// When each of `key_ids` last used each scope (keys without any use are
    /// left out). Any number of ids.
    pub async fn keys_scope_use(&self, key_ids: &[&str]) -> Result<HashMap<String, ScopeUse>, DbError> {
        let keys = key_ids
            .iter()
            .map(|id| {
                HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(Self::key_item(id))),
                    ("sk".to_owned(), AttributeValue::S(SCOPES_ITEM.to_owned())),
                ])
            })
            .collect();
        let items = batch_get(&self.client, &self.table, keys, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| match item.get("pk") {
                Some(AttributeValue::S(pk)) => Some((pk.strip_prefix("key#")?.to_owned(), scope_use_of(item))),
                _ => None,
            })
            .collect())
    }
}

/// The scopes and times a scope-use item holds (other attributes ignored).
fn scope_use_of(item: &HashMap<String, AttributeValue>) -> ScopeUse {
    Scope::ALL
        .into_iter()
        .filter_map(|scope| {
            let AttributeValue::N(seconds) = item.get(scope.as_str())? else { return None };
            Some((scope, Timestamp::from_unix_seconds(seconds.parse().ok()?)?))
        })
        .collect()
}
