//! Tenant actions: a key or template can only be made for a tenant an admin created.

use serde::Deserialize;
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_api::usage::UtcMonth;
use fleetgate_fleet::tenants::Tenant;
use fleetgate_scopes::{RateLimit, TenantId};

use crate::error::Checks;
use crate::{Ctx, ProvisionError, State, cursor_signer, list_answer, page_limit, page_start};

type Result<T, E = ProvisionError> = std::result::Result<T, E>;

const MAX_TENANT_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    tenant_id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetTenant {
    tenant_id: String,
}

/// The cap on all of a tenant's keys together; `rate_limit: null` lifts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutTenantLimits {
    tenant_id: String,
    #[serde(default, deserialize_with = "crate::actions::present")]
    rate_limit: Option<Option<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTenants {
    limit: Option<i32>,
    cursor: Option<String>,
}

pub async fn create_tenant(state: &State, input: CreateTenant, ctx: &Ctx) -> Result<Value> {
    let mut checks = Checks::default();
    let tenant_id = checks.take(TenantId::parse(&input.tenant_id).map_err(ProvisionError::from));
    let name = checks.take(crate::actions::required_text("name", &input.name, MAX_TENANT_NAME_CHARS));
    checks.finish()?;
    let (Some(tenant_id), Some(name)) = (tenant_id, name) else { unreachable!("checked above") };
    let tenant = Tenant { tenant_id: tenant_id.clone(), name, created_at: Timestamp::now() };
    let audit = ctx.audit(state, &tenant_id, "create_tenant", None, "ok", json!({"name": tenant.name}));
    match state.tenants.create(&tenant, vec![state.audit.put_item(&audit)?]).await {
        Ok(()) => Ok(json!({ "tenant": tenant })),
        Err(err) if err.condition_failed_at(0) => Err(ProvisionError::TenantExists(tenant_id.to_string())),
        Err(err) => Err(err.into()),
    }
}

pub async fn get_tenant(state: &State, input: GetTenant, _ctx: &Ctx) -> Result<Value> {
    let tenant = existing_tenant(state, &input.tenant_id).await?;
    let rate_limit = state.keys.tenant_rate_limit(&tenant.tenant_id).await?;
    Ok(
        json!({ "tenant": tenant, "rate_limit": rate_limit, "usage": tenant_usage(state, &tenant.tenant_id, rate_limit).await? }),
    )
}

/// Sets or lifts the tenant's cap, audited; the authorizer cache is flushed, as
/// the cap travels in its answer.
pub async fn put_tenant_limits(state: &State, input: PutTenantLimits, ctx: &Ctx) -> Result<Value> {
    let rate_limit = match &input.rate_limit {
        None => return Err(ProvisionError::field("rate_limit", "required: a rate limit, or null to lift the cap")),
        Some(None) => None,
        Some(Some(value)) => Some(crate::actions::rate_limit("rate_limit", value, state.rate_limits.ceiling)?),
    };
    let tenant = existing_tenant(state, &input.tenant_id).await?;
    let previous = state.keys.tenant_rate_limit(&tenant.tenant_id).await?;
    let details = json!({"rate_limit": rate_limit, "previous_rate_limit": previous});
    let audit = ctx.audit(state, &tenant.tenant_id, "put_tenant_limits", None, "ok", details);
    state
        .keys
        .set_tenant_rate_limit(&tenant.tenant_id, rate_limit, Timestamp::now(), state.audit.put_item(&audit)?)
        .await?;
    let flushed = crate::actions::flush_authorizer_cache(state).await;
    Ok(
        json!({ "tenant": tenant, "rate_limit": rate_limit, "usage": tenant_usage(state, &tenant.tenant_id, rate_limit).await?,
               "authorizer_cache_flushed": flushed }),
    )
}

/// The tenant's requests this month, counted while it has a cap (`null` without one).
async fn tenant_usage(state: &State, tenant: &TenantId, cap: Option<RateLimit>) -> Result<Value> {
    if cap.is_none() {
        return Ok(Value::Null);
    }
    let now = Timestamp::now().unix_seconds();
    let requests = state.usage.tenant_month_usage(tenant, now).await?;
    Ok(json!({"month": UtcMonth::of(now).label(), "requests": requests}))
}

pub async fn list_tenants(state: &State, input: ListTenants, _ctx: &Ctx) -> Result<Value> {
    let limit = page_limit(input.limit)?;
    let query = fleetgate_api::list::query_identity("", "list_tenants", &[]);
    let start = page_start(state, &query, input.cursor.as_deref(), "tenant list").await?;
    let (tenants, next) = state.tenants.list(limit, start.as_ref()).await?;
    let signer = cursor_signer(state).await?;
    let next_cursor = next.map(|position| signer.encode(&query, &position));
    Ok(list_answer(&tenants, next_cursor, None))
}

/// The tenant `tenant_id` names, or `tenant_not_found`.
pub(crate) async fn existing_tenant(state: &State, tenant_id: &str) -> Result<Tenant> {
    let tenant_id = TenantId::parse(tenant_id)?;
    state.tenants.get(&tenant_id).await?.ok_or_else(|| ProvisionError::TenantNotFound(tenant_id.to_string()))
}
