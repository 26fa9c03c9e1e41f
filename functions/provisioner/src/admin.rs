//! Admin actions beside keys: inspection templates and reading the audit trail.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use fleetgate_api::audit::AuditRecord;
use fleetgate_api::list::{DEFAULT_LIMIT, query_identity};
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::templates::TemplateInput;
use fleetgate_scopes::TenantId;

use crate::{ProvisionError, State, cursor_signer, page_limit, page_start};

type Result<T, E = ProvisionError> = std::result::Result<T, E>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutInspectionTemplate {
    tenant_id: String,
    template: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAudit {
    tenant_id: String,
    since: Option<String>,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// An audit record as admins read it (without storage keys and TTL).
#[derive(Debug, Serialize)]
struct AuditEntry {
    at: Timestamp,
    tenant_id: TenantId,
    key_id: Option<String>,
    action: String,
    resource_id: Option<String>,
    outcome: String,
    request_id: String,
}

impl From<AuditRecord> for AuditEntry {
    fn from(record: AuditRecord) -> AuditEntry {
        AuditEntry {
            at: record.at,
            tenant_id: record.tenant_id,
            key_id: record.key_id,
            action: record.action,
            resource_id: record.resource_id,
            outcome: record.outcome,
            request_id: record.request_id,
        }
    }
}

/// Creates a template or replaces it (its version goes up by one); audited in the same transaction.
pub async fn put_inspection_template(state: &State, input: PutInspectionTemplate, request_id: &str) -> Result<Value> {
    let tenant_id = TenantId::parse(&input.tenant_id)?;
    let template = TemplateInput::parse(input.template).map_err(|err| match err {
        ApiError::ValidationFailed(errors) => ProvisionError::InvalidTemplate(errors),
        other => ProvisionError::InvalidRequest(other.to_string()),
    })?;
    let audit = AuditRecord::new(
        tenant_id.clone(),
        None,
        "put_inspection_template",
        Some(template.id.clone()),
        "ok",
        request_id,
        state.audit.retention_days(),
    );
    let stored = match state.templates.put(&tenant_id, template, state.audit.put_item(&audit)?).await {
        Ok(stored) => stored,
        Err(err) if err.is_condition_failure() => {
            return Err(ProvisionError::field("template", "the template changed meanwhile; send it again"));
        }
        Err(err) => return Err(err.into()),
    };
    Ok(json!({ "template": stored }))
}

/// The tenant's audit trail, newest first, paged like the HTTP lists.
pub async fn list_audit(state: &State, input: ListAudit, request_id: &str) -> Result<Value> {
    let tenant_id = TenantId::parse(&input.tenant_id)?;
    let since = input
        .since
        .as_deref()
        .map(|text| {
            Timestamp::parse(text).ok_or_else(|| ProvisionError::field("since", "must be an RFC 3339 timestamp"))
        })
        .transpose()?;
    let limit = page_limit(input.limit, DEFAULT_LIMIT)?;
    let since_text = since.map(|t| t.to_string());
    let query = query_identity(tenant_id.as_str(), "list_audit", &[("since", since_text.as_deref())]);
    let start = page_start(state, &query, input.cursor.as_deref(), "audit list").await?;
    let (records, next) = state.audit.list(&tenant_id, since, limit, start.as_ref()).await?;
    let records: Vec<AuditEntry> = records.into_iter().map(AuditEntry::from).collect();
    let signer = cursor_signer(state).await?;
    let next_cursor = next.map(|position| signer.encode(&query, &position));
    // Reading the trail is an action too; recorded after the read, so a page never shows its own read.
    let audit = AuditRecord::new(tenant_id, None, "list_audit", None, "ok", request_id, state.audit.retention_days());
    state.audit.append(&audit).await?;
    Ok(json!({ "records": records, "next_cursor": next_cursor }))
}
