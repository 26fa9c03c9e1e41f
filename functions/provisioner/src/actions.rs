//! The key actions. Each validates all of its input before it writes anything,
//! and each write carries its audit record in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Duration;

use fleetgate_api::Timestamp;
use fleetgate_api::audit::AuditRecord;
use fleetgate_api::dynamo::DbError;
use fleetgate_api::keys::{ApiKey, KeyRecord, KeyStatus, new_public_id};
use fleetgate_api::list::{MAX_LIMIT, query_identity};
use fleetgate_scopes::{Environment, Preset, ScopeSet, TenantId};

use crate::{KeyView, ProvisionError, State, cursor_signer, page_limit, page_start};

type Result<T, E = ProvisionError> = std::result::Result<T, E>;

/// Bounds that keep admin input sane (and DynamoDB items small).
const MAX_NAME_CHARS: usize = 100;
const MAX_TEXT_CHARS: usize = 500;
const MAX_SCOPES: usize = 32;
const MAX_LIFETIME_DAYS: i64 = 3650;
const MAX_GRACE_HOURS: i64 = 168;
/// What a `list_keys` cursor holds: the last key id of the page.
const CURSOR_KEY_ID: &str = "after_key_id";
const DEFAULT_GRACE_HOURS: i64 = 24;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    tenant_id: String,
    name: String,
    scopes: Option<Vec<String>>,
    preset: Option<String>,
    description: Option<String>,
    environment: Option<String>,
    expires_at: Option<String>,
    expires_in_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKeys {
    tenant_id: String,
    #[serde(default)]
    include_revoked: bool,
    unused_for_days: Option<i64>,
    limit: Option<i32>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetKey {
    tenant_id: String,
    key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    tenant_id: String,
    key_id: String,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    tenant_id: String,
    key_id: String,
    grace_period_hours: Option<i64>,
}

/// The only response that ever holds a plaintext key.
#[derive(Serialize)]
struct IssuedKey<'a> {
    api_key: &'a str,
    key: KeyView,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_key: Option<KeyView>,
}

pub async fn create_key(state: &State, input: CreateKey, request_id: &str) -> Result<Value> {
    let now = Timestamp::now();
    let tenant_id = TenantId::parse(&input.tenant_id)?;
    let name = bounded_text("name", &input.name, MAX_NAME_CHARS)?;
    if name.is_empty() {
        return Err(ProvisionError::field("name", "must not be empty"));
    }
    let description =
        input.description.as_deref().map(|d| bounded_text("description", d, MAX_TEXT_CHARS)).transpose()?;
    let scopes = granted_scopes(input.scopes, input.preset)?;
    let environment = match input.environment.as_deref() {
        None => state.environment,
        Some(text) => {
            let environment: Environment =
                text.parse().map_err(|_| ProvisionError::field("environment", "must be 'live' or 'test'"))?;
            if environment != state.environment {
                return Err(ProvisionError::field(
                    "environment",
                    format!("this deployment issues {} keys only", state.environment),
                ));
            }
            environment
        }
    };
    let expires_at = expiry(input.expires_at.as_deref(), input.expires_in_days, now)?;

    let (api_key, record) = new_key(tenant_id, name, description, environment, scopes, now, expires_at, None);
    let audit = audit_record(state, &record, "create_key", request_id);
    state.keys.create(&record, state.audit.put_item(&audit)?).await?;
    issued(&api_key, KeyView::of(record, now), None)
}

pub async fn list_keys(state: &State, input: ListKeys, request_id: &str) -> Result<Value> {
    let now = Timestamp::now();
    let tenant_id = TenantId::parse(&input.tenant_id)?;
    let unused_since = match input.unused_for_days {
        None => None,
        Some(days) if (1..=MAX_LIFETIME_DAYS).contains(&days) => Some(now.minus(Duration::days(days))),
        Some(_) => {
            return Err(ProvisionError::field("unused_for_days", format!("must be 1 to {MAX_LIFETIME_DAYS}")));
        }
    };
    let limit = page_limit(input.limit, MAX_LIMIT)?;
    // Filters are applied to each page read, so a page may hold fewer than `limit` keys.
    let unused_text = input.unused_for_days.map(|days| days.to_string());
    let query = query_identity(
        tenant_id.as_str(),
        "list_keys",
        &[
            ("include_revoked", Some(if input.include_revoked { "true" } else { "false" })),
            ("unused_for_days", unused_text.as_deref()),
        ],
    );
    let after = match page_start(state, &query, input.cursor.as_deref(), "key list").await? {
        None => None,
        Some(mut position) => {
            Some(position.remove(CURSOR_KEY_ID).ok_or_else(|| ProvisionError::field("cursor", "malformed"))?)
        }
    };
    let (records, last) = state.keys.list(&tenant_id, after.as_deref(), limit).await?;
    let keys: Vec<KeyView> = records
        .into_iter()
        .filter(|key| input.include_revoked || key.revoked_at.is_none())
        // Never used counts from creation: a key made yesterday is not "unused for 30 days".
        .filter(|key| unused_since.is_none_or(|since| key.last_used_at.unwrap_or(key.created_at) <= since))
        .map(|key| KeyView::of(key, now))
        .collect();
    let signer = cursor_signer(state).await?;
    let next_cursor = last.map(|key_id| signer.encode(&query, &[(CURSOR_KEY_ID.to_owned(), key_id)].into()));
    let audit = AuditRecord::new(tenant_id, None, "list_keys", None, "ok", request_id, state.audit.retention_days());
    state.audit.append(&audit).await?;
    Ok(serde_json::json!({ "keys": keys, "next_cursor": next_cursor }))
}

pub async fn get_key(state: &State, input: GetKey, request_id: &str) -> Result<Value> {
    let record = find(state, &input.tenant_id, &input.key_id).await?;
    let audit = audit_record(state, &record, "get_key", request_id);
    state.audit.append(&audit).await?;
    Ok(serde_json::json!({ "key": KeyView::of(record, Timestamp::now()) }))
}

/// Idempotent: revoking a revoked key returns it unchanged.
pub async fn revoke_key(state: &State, input: RevokeKey, request_id: &str) -> Result<Value> {
    let now = Timestamp::now();
    let reason = input.reason.as_deref().map(|r| bounded_text("reason", r, MAX_TEXT_CHARS)).transpose()?;
    let mut record = find(state, &input.tenant_id, &input.key_id).await?;
    if record.revoked_at.is_none() {
        let audit = audit_record(state, &record, "revoke_key", request_id);
        match state.keys.revoke(&record, now, reason.as_deref(), state.audit.put_item(&audit)?).await {
            Ok(()) => {
                record.revoked_at = Some(now);
                record.revoke_reason = reason;
            }
            // Revoked concurrently: report the stored state.
            Err(err) if err.is_condition_failure() => record = find(state, &input.tenant_id, &input.key_id).await?,
            Err(err) => return Err(err.into()),
        }
    }
    // Cached Allow results would keep the key working for up to the cache TTL.
    let flushed = flush_authorizer_cache(state).await;
    Ok(serde_json::json!({ "key": KeyView::of(record, now), "authorizer_cache_flushed": flushed }))
}

/// Flushes API Gateway's authorizer cache where the stack has one; `false` if not configured or it failed.
async fn flush_authorizer_cache(state: &State) -> bool {
    match &state.authorizer_cache {
        Some(cache) => cache.flush().await,
        None => false,
    }
}

/// Issues a replacement with the same tenant, name, description, scopes and
/// lifetime; the old key keeps working for the grace period, then expires.
pub async fn rotate_key(state: &State, input: RotateKey, request_id: &str) -> Result<Value> {
    let now = Timestamp::now();
    let grace_hours = input.grace_period_hours.unwrap_or(DEFAULT_GRACE_HOURS);
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(ProvisionError::field("grace_period_hours", format!("must be 0 to {MAX_GRACE_HOURS}")));
    }
    let mut old = find(state, &input.tenant_id, &input.key_id).await?;
    match old.status(now) {
        KeyStatus::Revoked => return Err(ProvisionError::KeyRevoked(old.key_id)),
        KeyStatus::Expired => {
            return Err(ProvisionError::field("key_id", "the key has expired; create a new key instead"));
        }
        KeyStatus::Active => {}
    }
    if let Some(rotated_to) = old.rotated_to.clone() {
        return Err(ProvisionError::KeyAlreadyRotated { key_id: old.key_id, rotated_to });
    }
    let lifetime = old.expires_at.map(|at| at.unix_seconds() - old.created_at.unix_seconds());
    let new_expiry = lifetime.map(|seconds| now.plus(Duration::seconds(seconds)));
    let (api_key, new) = new_key(
        old.tenant_id.clone(),
        old.name.clone(),
        old.description.clone(),
        old.environment,
        old.scopes.clone(),
        now,
        new_expiry,
        Some(old.key_id.clone()),
    );
    let grace_end = now.plus(Duration::hours(grace_hours));
    let old_expires_at = old.expires_at.map_or(grace_end, |at| at.min(grace_end));
    let audit = audit_record(state, &new, "rotate_key", request_id);
    match state.keys.rotate(&old, &new, old_expires_at, state.audit.put_item(&audit)?).await {
        Ok(()) => {}
        Err(err) if err.is_condition_failure() => {
            return Err(ProvisionError::field("key_id", "the key was revoked or rotated meanwhile; read it again"));
        }
        Err(err) => return Err(err.into()),
    }
    old.expires_at = Some(old_expires_at);
    old.rotated_to = Some(new.key_id.clone());
    let mut response = issued(&api_key, KeyView::of(new, now), Some(KeyView::of(old, now)))?;
    // Cached Allows of the old key would outlive its grace period by up to the TTL
    // (and with no grace period it is retired now): start from a clean cache.
    let flushed = flush_authorizer_cache(state).await;
    response["authorizer_cache_flushed"] = Value::Bool(flushed);
    Ok(response)
}

fn issued(api_key: &ApiKey, key: KeyView, previous_key: Option<KeyView>) -> Result<Value> {
    serde_json::to_value(IssuedKey { api_key: api_key.expose(), key, previous_key })
        .map_err(|e| ProvisionError::Internal(DbError::Failed(Box::new(e))))
}

/// Looks a key up by tenant and public id; a malformed id is refused before any read.
async fn find(state: &State, tenant_id: &str, key_id: &str) -> Result<KeyRecord> {
    let tenant_id = TenantId::parse(tenant_id)?;
    let well_formed =
        key_id.len() == 24 && key_id.starts_with("key_") && key_id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    if !well_formed {
        return Err(ProvisionError::field("key_id", "must look like key_ followed by 20 letters or digits"));
    }
    state.keys.find_by_id(&tenant_id, key_id).await?.ok_or_else(|| ProvisionError::KeyNotFound(key_id.to_owned()))
}

fn granted_scopes(scopes: Option<Vec<String>>, preset: Option<String>) -> Result<ScopeSet> {
    match (scopes, preset) {
        (Some(_), Some(_)) => Err(ProvisionError::field("scopes", "give either scopes or preset, not both")),
        (None, None) => Err(ProvisionError::field(
            "scopes",
            "give scopes (a list) or preset (read-only, inspection-submission, full-fleet)",
        )),
        (None, Some(preset)) => Ok(preset.parse::<Preset>()?.scopes()),
        (Some(scopes), None) if scopes.len() > MAX_SCOPES => {
            Err(ProvisionError::field("scopes", format!("at most {MAX_SCOPES} entries")))
        }
        (Some(scopes), None) => Ok(ScopeSet::parse_granted(&scopes)?),
    }
}

fn expiry(expires_at: Option<&str>, expires_in_days: Option<i64>, now: Timestamp) -> Result<Option<Timestamp>> {
    let latest = now.plus(Duration::days(MAX_LIFETIME_DAYS));
    match (expires_at, expires_in_days) {
        (Some(_), Some(_)) => {
            Err(ProvisionError::field("expires_at", "give either expires_at or expires_in_days, not both"))
        }
        (None, None) => Ok(None),
        (None, Some(days)) if (1..=MAX_LIFETIME_DAYS).contains(&days) => Ok(Some(now.plus(Duration::days(days)))),
        (None, Some(_)) => Err(ProvisionError::field("expires_in_days", format!("must be 1 to {MAX_LIFETIME_DAYS}"))),
        (Some(text), None) => match Timestamp::parse(text) {
            None => {
                Err(ProvisionError::field("expires_at", "must be an RFC 3339 timestamp, e.g. 2027-01-31T00:00:00Z"))
            }
            Some(at) if at <= now => Err(ProvisionError::field("expires_at", "must be in the future")),
            Some(at) if at > latest => {
                Err(ProvisionError::field("expires_at", format!("must be within {MAX_LIFETIME_DAYS} days")))
            }
            Some(at) => Ok(Some(at)),
        },
    }
}

/// Trims `text` and checks its length and that it has no control characters.
fn bounded_text(field: &'static str, text: &str, max_chars: usize) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > max_chars {
        return Err(ProvisionError::field(field, format!("must be at most {max_chars} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(ProvisionError::field(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

#[allow(clippy::too_many_arguments)]
fn new_key(
    tenant_id: TenantId,
    name: String,
    description: Option<String>,
    environment: Environment,
    scopes: ScopeSet,
    now: Timestamp,
    expires_at: Option<Timestamp>,
    rotated_from: Option<String>,
) -> (ApiKey, KeyRecord) {
    let api_key = ApiKey::generate(environment);
    let record = KeyRecord {
        key_hash: api_key.hash().as_str().to_owned(),
        key_id: new_public_id("key_"),
        tenant_id,
        name,
        description,
        environment,
        scopes,
        hint: api_key.hint().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        revoke_reason: None,
        last_used_at: None,
        rotated_from,
        rotated_to: None,
    };
    (api_key, record)
}

fn audit_record(state: &State, record: &KeyRecord, action: &str, request_id: &str) -> AuditRecord {
    AuditRecord::new(
        record.tenant_id.clone(),
        None,
        action,
        Some(record.key_id.clone()),
        "ok",
        request_id,
        state.audit.retention_days(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_xor_preset() {
        assert!(matches!(granted_scopes(None, None), Err(ProvisionError::InvalidField { field: "scopes", .. })));
        assert!(matches!(
            granted_scopes(Some(vec!["vehicles:read".into()]), Some("read-only".into())),
            Err(ProvisionError::InvalidField { .. })
        ));
        let many = vec!["vehicles:read".to_owned(); 10_000];
        assert!(matches!(granted_scopes(Some(many), None), Err(ProvisionError::InvalidField { .. })));
        assert_eq!(granted_scopes(None, Some("full-fleet".into())).unwrap(), Preset::FullFleet.scopes());
    }

    #[test]
    fn expiry_rules() {
        let now = Timestamp::parse("2026-11-29T00:00:00Z").unwrap();
        assert_eq!(expiry(None, Some(30), now).unwrap(), Timestamp::parse("2026-12-29T00:00:00Z"));
        assert!(expiry(Some("2026-11-28T00:00:00Z"), None, now).is_err());
        assert!(expiry(Some("next week"), None, now).is_err());
        assert!(expiry(None, Some(0), now).is_err());
        assert!(expiry(Some("2027-01-01T00:00:00Z"), Some(3), now).is_err());
        assert_eq!(expiry(None, None, now).unwrap(), None);
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(bounded_text("name", "  tms-sync ", 100).unwrap(), "tms-sync");
        assert!(bounded_text("name", &"x".repeat(101), 100).is_err());
        assert!(bounded_text("name", "a\u{0}b", 100).is_err());
    }
}
