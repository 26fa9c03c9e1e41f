//! Tenant actions: a key or template can only be made for a tenant an admin created.

use serde::Deserialize;
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_fleet::tenants::Tenant;
use fleetgate_scopes::TenantId;

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
    Ok(json!({ "tenant": tenant }))
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
