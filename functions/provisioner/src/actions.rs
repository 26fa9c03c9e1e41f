//! The key actions. Each validates all of its input before it writes anything,
//! and each write carries its audit record in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::Duration;

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::DbError;
use fleetgate_api::keys::{ApiKey, KeyRecord, KeyStatus, Restrictions, new_public_id};
use fleetgate_api::list::query_identity;
use fleetgate_scopes::{Cidr, Environment, MAX_ALLOWED_CIDRS, Preset, RateLimit, ScopeSet, TenantId};

use crate::error::Checks;
use crate::{Ctx, KeyView, ProvisionError, State, cursor_signer, list_answer, page_limit, page_start};

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
/// How far back a revocation follows `rotated_from` (rotations in grace at once).
const MAX_PREDECESSORS: usize = 10;
/// The largest monthly quota (a trillion requests: beyond any real month).
const MAX_MONTHLY_QUOTA: u64 = 1_000_000_000_000;

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
    allowed_cidrs: Option<Vec<String>>,
    /// `{"requests": N, "per": "second"|"minute", "burst": B}`; absent: the default.
    rate_limit: Option<Value>,
    monthly_quota: Option<Value>,
}

/// Restrictions change on a live key (scopes never do). Absent fields stay as
/// they are; `null` lifts one (`rate_limit: null`: back to the deployment's default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRestrictions {
    tenant_id: String,
    key_id: String,
    #[serde(default, deserialize_with = "present")]
    allowed_cidrs: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    monthly_quota: Option<Option<Value>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
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

/// Every field is checked before anything is written, and every invalid one is
/// reported at once; the tenant must exist (checked in the write's transaction).
pub async fn create_key(state: &State, input: CreateKey, ctx: &Ctx) -> Result<Value> {
    let now = Timestamp::now();
    let mut checks = Checks::default();
    let tenant_id = checks.take(TenantId::parse(&input.tenant_id).map_err(ProvisionError::from));
    let name = checks.take(required_text("name", &input.name, MAX_NAME_CHARS));
    let description =
        checks.take(input.description.as_deref().map(|d| bounded_text("description", d, MAX_TEXT_CHARS)).transpose());
    let preset = input.preset.clone();
    let scopes = checks.take(granted_scopes(input.scopes, input.preset));
    let environment = checks.take(requested_environment(input.environment.as_deref(), state.environment));
    let expires_at = checks.take(expiry(input.expires_at.as_deref(), input.expires_in_days, now));
    let allowed_cidrs = checks.take(input.allowed_cidrs.as_deref().map(allowed_networks).transpose());
    let rate_limit = checks
        .take(input.rate_limit.as_ref().map(|v| rate_limit("rate_limit", v, state.rate_limits.ceiling)).transpose());
    let monthly_quota = checks.take(input.monthly_quota.as_ref().map(monthly_quota).transpose());
    checks.finish()?;
    let (
        Some(tenant_id),
        Some(name),
        Some(description),
        Some(scopes),
        Some(environment),
        Some(expires_at),
        Some(allowed_cidrs),
        Some(rate_limit),
        Some(monthly_quota),
    ) = (tenant_id, name, description, scopes, environment, expires_at, allowed_cidrs, rate_limit, monthly_quota)
    else {
        unreachable!("every check passed");
    };

    let (api_key, mut record) = new_key(tenant_id, name, description, environment, scopes, now, expires_at, None);
    record.allowed_cidrs = allowed_cidrs;
    record.rate_limit = rate_limit;
    record.monthly_quota = monthly_quota;
    let details = json!({"name": record.name, "granted_scopes": record.scopes, "preset": preset,
                         "environment": record.environment, "expires_at": record.expires_at,
                         "restrictions": restrictions_shown(&record.restrictions())});
    let audit = ctx.audit(state, &record.tenant_id, "create_key", Some(&record.key_id), "ok", details);
    let also = vec![state.audit.put_item(&audit)?, state.tenants.must_exist(&record.tenant_id)?];
    match state.keys.create(&record, also).await {
        Ok(()) => {}
        // [key, audit, tenant check]: the tenant does not exist.
        Err(err) if err.condition_failed_at(2) => {
            return Err(ProvisionError::TenantNotFound(record.tenant_id.to_string()));
        }
        Err(err) => return Err(err.into()),
    }
    issued(&api_key, state.view(record, now), None)
}

/// A tenant's keys, newest first.
pub async fn list_keys(state: &State, input: ListKeys, ctx: &Ctx) -> Result<Value> {
    let now = Timestamp::now();
    let mut checks = Checks::default();
    let tenant_id = checks.take(TenantId::parse(&input.tenant_id).map_err(ProvisionError::from));
    let unused_since = checks.take(match input.unused_for_days {
        None => Ok(None),
        Some(days) if (1..=MAX_LIFETIME_DAYS).contains(&days) => Ok(Some(now.minus(Duration::days(days)))),
        Some(_) => Err(ProvisionError::field("unused_for_days", format!("must be 1 to {MAX_LIFETIME_DAYS}"))),
    });
    let limit = checks.take(page_limit(input.limit));
    checks.finish()?;
    let (Some(tenant_id), Some(unused_since), Some(limit)) = (tenant_id, unused_since, limit) else {
        unreachable!("every check passed");
    };
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
    // The cursor names the last key of the previous page by its public id; the page
    // resumes after that key's record (its hash, needed by DynamoDB, never leaves here).
    let after = match page_start(state, &query, input.cursor.as_deref(), "key list").await? {
        None => None,
        Some(mut position) => {
            let key_id = position.remove(CURSOR_KEY_ID).ok_or_else(|| ProvisionError::field("cursor", "malformed"))?;
            Some(state.keys.find_by_id(&tenant_id, &key_id).await?.ok_or_else(|| {
                ProvisionError::field("cursor", "the key it resumes after is gone; list from the start")
            })?)
        }
    };
    let (records, more) = state.keys.list_newest_first(&tenant_id, after.as_ref(), limit).await?;
    let last_key_id = more.then(|| records.last().map(|key| key.key_id.clone())).flatten();
    let keys: Vec<KeyView> = records
        .into_iter()
        .filter(|key| input.include_revoked || key.revoked_at.is_none())
        // Never used counts from creation: a key made yesterday is not "unused for 30 days".
        .filter(|key| unused_since.is_none_or(|since| key.last_used_at.unwrap_or(key.created_at) <= since))
        .map(|key| state.view(key, now))
        .collect();
    let keys = state.with_usage(keys, now).await?;
    let signer = cursor_signer(state).await?;
    let next_cursor = last_key_id.map(|key_id| signer.encode(&query, &[(CURSOR_KEY_ID.to_owned(), key_id)].into()));
    let audit = ctx.audit(state, &tenant_id, "list_keys", None, "ok", Value::Null);
    state.audit.append(&audit).await?;
    Ok(list_answer(&keys, next_cursor, Some("keys")))
}

pub async fn get_key(state: &State, input: GetKey, ctx: &Ctx) -> Result<Value> {
    let record = find(state, &input.tenant_id, &input.key_id).await?;
    let audit = ctx.audit(state, &record.tenant_id, "get_key", Some(&record.key_id), "ok", Value::Null);
    state.audit.append(&audit).await?;
    let now = Timestamp::now();
    let view = state.with_usage(vec![state.view(record, now)], now).await?;
    Ok(json!({ "key": view[0] }))
}

/// Idempotent: revoking a revoked key returns it unchanged. Also revokes the keys
/// it replaced by rotation that still work (in their grace period): a lost device's
/// key must not live on through its predecessor. `revoked_keys` lists every key
/// this call revoked.
pub async fn revoke_key(state: &State, input: RevokeKey, ctx: &Ctx) -> Result<Value> {
    let now = Timestamp::now();
    let reason = input.reason.as_deref().map(|r| bounded_text("reason", r, MAX_TEXT_CHARS)).transpose()?;
    let mut record = find(state, &input.tenant_id, &input.key_id).await?;
    let mut revoked = Vec::new();
    if revoke_one(state, ctx, &mut record, now, reason.as_deref(), None).await? {
        revoked.push(record.key_id.clone());
    }
    // Predecessors still in their grace period: revoked too, each with its own record.
    let mut predecessors = Vec::new();
    let mut previous = record.rotated_from.clone();
    while let Some(key_id) = previous.take() {
        if predecessors.len() >= MAX_PREDECESSORS {
            break;
        }
        let Some(mut older) = state.keys.find_by_id(&record.tenant_id, &key_id).await? else { break };
        previous = older.rotated_from.clone();
        if older.status(now) == KeyStatus::Active {
            let why = format!("predecessor of revoked key {}", record.key_id);
            let why = match &reason {
                Some(reason) => format!("{why}: {reason}"),
                None => why,
            };
            if revoke_one(state, ctx, &mut older, now, Some(&why), Some(&record.key_id)).await? {
                revoked.push(older.key_id.clone());
                predecessors.push(state.view(older, now));
            }
        }
    }
    // Cached Allow results would keep the keys working for up to the cache TTL.
    let flushed = flush_authorizer_cache(state).await;
    Ok(json!({ "key": state.view(record, now), "revoked_predecessors": predecessors, "revoked_keys": revoked,
               "authorizer_cache_flushed": flushed }))
}

/// Revokes `record` with its audit record; `false` if it was revoked already
/// (then `record` is re-read: someone else's revocation stands).
async fn revoke_one(
    state: &State,
    ctx: &Ctx,
    record: &mut KeyRecord,
    now: Timestamp,
    reason: Option<&str>,
    because_of: Option<&str>,
) -> Result<bool> {
    if record.revoked_at.is_some() {
        return Ok(false);
    }
    let details = json!({"reason": reason, "because_of": because_of});
    let audit = ctx.audit(state, &record.tenant_id, "revoke_key", Some(&record.key_id), "ok", details);
    match state.keys.revoke(record, now, reason, state.audit.put_item(&audit)?).await {
        Ok(()) => {
            record.revoked_at = Some(now);
            record.revoke_reason = reason.map(str::to_owned);
            Ok(true)
        }
        // Revoked concurrently: report the stored state.
        Err(err) if err.is_condition_failure() => {
            *record = state.keys.find_by_id(&record.tenant_id, &record.key_id).await?.unwrap_or(record.clone());
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}

/// Changes a live key's restrictions (networks, rate limit, monthly quota), audited;
/// the authorizer cache is flushed so the change applies within seconds, not the TTL.
/// A quota below this month's usage is taken as given: the key is refused with
/// `quota_exceeded` until the month ends, and the answer warns so.
pub async fn update_key_restrictions(state: &State, input: UpdateKeyRestrictions, ctx: &Ctx) -> Result<Value> {
    if input.allowed_cidrs.is_none() && input.rate_limit.is_none() && input.monthly_quota.is_none() {
        return Err(ProvisionError::field(
            "allowed_cidrs",
            "nothing to update: give allowed_cidrs, rate_limit or monthly_quota (a value, or null to lift it)",
        ));
    }
    let mut checks = Checks::default();
    let allowed = checks
        .take(input.allowed_cidrs.as_ref().map(|given| given.as_deref().map(allowed_networks).transpose()).transpose());
    let limit = checks.take(
        input
            .rate_limit
            .as_ref()
            .map(|given| given.as_ref().map(|v| rate_limit("rate_limit", v, state.rate_limits.ceiling)).transpose())
            .transpose(),
    );
    let quota = checks
        .take(input.monthly_quota.as_ref().map(|given| given.as_ref().map(monthly_quota).transpose()).transpose());
    checks.finish()?;
    let (Some(allowed), Some(limit), Some(quota)) = (allowed, limit, quota) else { unreachable!("every check passed") };
    let mut record = find(state, &input.tenant_id, &input.key_id).await?;
    if record.revoked_at.is_some() {
        return Err(ProvisionError::KeyRevoked(record.key_id));
    }
    let previous = record.restrictions();
    let restrictions = Restrictions {
        allowed_cidrs: allowed.unwrap_or(previous.allowed_cidrs.clone()),
        rate_limit: limit.unwrap_or(previous.rate_limit),
        monthly_quota: quota.unwrap_or(previous.monthly_quota),
    };
    let details = json!({"restrictions": restrictions_shown(&restrictions), "previous": restrictions_shown(&previous)});
    let audit = ctx.audit(state, &record.tenant_id, "update_key_restrictions", Some(&record.key_id), "ok", details);
    state.keys.set_restrictions(&record, &restrictions, state.audit.put_item(&audit)?).await?;
    record.allowed_cidrs = restrictions.allowed_cidrs;
    record.rate_limit = restrictions.rate_limit;
    record.monthly_quota = restrictions.monthly_quota;
    let flushed = flush_authorizer_cache(state).await;
    let now = Timestamp::now();
    let view = state.with_usage(vec![state.view(record, now)], now).await?.remove(0);
    let mut warnings = Vec::new();
    if let (Some(quota), Some(usage)) = (view.monthly_quota, &view.usage)
        && usage.requests >= quota
    {
        warnings.push(format!(
            "monthly_quota {quota} is not above this month's usage ({}): the key is refused with quota_exceeded until the month ends (UTC)",
            usage.requests
        ));
    }
    Ok(json!({ "key": view, "authorizer_cache_flushed": flushed, "warnings": warnings }))
}

/// Restrictions as the audit trail records them.
fn restrictions_shown(restrictions: &Restrictions) -> Value {
    json!({
        "allowed_cidrs": restrictions.allowed_cidrs.as_ref().map(|c| c.iter().map(Cidr::to_string).collect::<Vec<_>>()),
        "rate_limit": restrictions.rate_limit,
        "monthly_quota": restrictions.monthly_quota,
    })
}

/// A rate limit as given in `field`: `{"requests": N, "per": "second"|"minute",
/// "burst": B}` with N ≥ 1, N ≤ B ≤ 10 N, and an average rate at most the ceiling.
pub(crate) fn rate_limit(field: &str, value: &Value, ceiling: Option<RateLimit>) -> Result<RateLimit> {
    let limit: RateLimit = serde_json::from_value(value.clone()).map_err(|err| {
        ProvisionError::field(
            field,
            format!("{err}; give {{\"requests\": N, \"per\": \"second\" or \"minute\"}} and optionally \"burst\""),
        )
    })?;
    if let Some(ceiling) = ceiling
        && limit.per_second() > ceiling.per_second()
    {
        return Err(ProvisionError::field(
            field,
            format!("{limit} is above this deployment's ceiling of {ceiling} (template parameter RateLimitCeiling)"),
        ));
    }
    Ok(limit)
}

/// A monthly quota: a whole number of requests from 1 up.
fn monthly_quota(value: &Value) -> Result<u64> {
    match value.as_u64() {
        Some(quota) if (1..=MAX_MONTHLY_QUOTA).contains(&quota) => Ok(quota),
        _ => Err(ProvisionError::field(
            "monthly_quota",
            format!("must be a whole number of requests from 1 to {MAX_MONTHLY_QUOTA} (null: no quota)"),
        )),
    }
}

/// `allowed_cidrs` as given: 1 to 20 CIDRs, duplicates dropped, each a network
/// without host bits (`10.0.0.1/8` is refused, naming `10.0.0.0/8`).
fn allowed_networks(texts: &[String]) -> Result<Vec<Cidr>> {
    if texts.is_empty() || texts.len() > MAX_ALLOWED_CIDRS {
        return Err(ProvisionError::field(
            "allowed_cidrs",
            format!("must hold 1 to {MAX_ALLOWED_CIDRS} CIDRs (leave it out, or null, for any network)"),
        ));
    }
    let mut cidrs = Vec::new();
    let mut checks = Checks::default();
    for (index, text) in texts.iter().enumerate() {
        let field = format!("allowed_cidrs[{index}]");
        let parsed = Cidr::parse(text.trim()).map_err(|err| ProvisionError::field(&field, err.to_string()));
        if let Some(cidr) = checks.take(parsed)
            && !cidrs.contains(&cidr)
        {
            cidrs.push(cidr);
        }
    }
    checks.finish()?;
    Ok(cidrs)
}

/// Flushes API Gateway's authorizer cache where the stack has one; `false` if not configured or it failed.
pub(crate) async fn flush_authorizer_cache(state: &State) -> bool {
    match &state.authorizer_cache {
        Some(cache) => cache.flush().await,
        None => false,
    }
}

/// Issues a replacement with the same tenant, name, description, scopes and
/// lifetime; the old key keeps working for the grace period, then expires.
pub async fn rotate_key(state: &State, input: RotateKey, ctx: &Ctx) -> Result<Value> {
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
    // A rotation changes the secret, not what the key may do, where from, or how much.
    let mut new = new;
    new.allowed_cidrs = old.allowed_cidrs.clone();
    new.rate_limit = old.rate_limit;
    new.monthly_quota = old.monthly_quota;
    let grace_end = now.plus(Duration::hours(grace_hours));
    let old_expires_at = old.expires_at.map_or(grace_end, |at| at.min(grace_end));
    let details = json!({"grace_period_hours": grace_hours, "rotated_from": old.key_id,
                         "previous_key_expires_at": old_expires_at});
    let audit = ctx.audit(state, &new.tenant_id, "rotate_key", Some(&new.key_id), "ok", details);
    match state.keys.rotate(&old, &new, old_expires_at, state.audit.put_item(&audit)?).await {
        Ok(()) => {}
        Err(err) if err.is_condition_failure() => {
            return Err(ProvisionError::field("key_id", "the key was revoked or rotated meanwhile; read it again"));
        }
        Err(err) => return Err(err.into()),
    }
    old.expires_at = Some(old_expires_at);
    old.rotated_to = Some(new.key_id.clone());
    let mut response = issued(&api_key, state.view(new, now), Some(state.view(old, now)))?;
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

/// As [`bounded_text`], and not empty.
pub(crate) fn required_text(field: &'static str, text: &str, max_chars: usize) -> Result<String> {
    let text = bounded_text(field, text, max_chars)?;
    if text.is_empty() {
        return Err(ProvisionError::field(field, "must not be empty"));
    }
    Ok(text)
}

/// The environment a new key is for: this deployment's (a key of another could never be used here).
fn requested_environment(requested: Option<&str>, deployment: Environment) -> Result<Environment> {
    let Some(text) = requested else { return Ok(deployment) };
    let environment: Environment =
        text.parse().map_err(|_| ProvisionError::field("environment", "must be 'live' or 'test'"))?;
    if environment != deployment {
        return Err(ProvisionError::field("environment", format!("this deployment issues {deployment} keys only")));
    }
    Ok(environment)
}

/// Trims `text` and checks its length and that it has no control characters.
pub(crate) fn bounded_text(field: &'static str, text: &str, max_chars: usize) -> Result<String> {
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
        allowed_cidrs: None,
        rate_limit: None,
        monthly_quota: None,
    };
    (api_key, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_xor_preset() {
        let code = |result: Result<ScopeSet>| result.unwrap_err().code();
        assert_eq!(code(granted_scopes(None, None)), "invalid_field");
        assert_eq!(code(granted_scopes(Some(vec!["vehicles:read".into()]), Some("read-only".into()))), "invalid_field");
        let many = vec!["vehicles:read".to_owned(); 10_000];
        assert_eq!(code(granted_scopes(Some(many), None)), "invalid_field");
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
