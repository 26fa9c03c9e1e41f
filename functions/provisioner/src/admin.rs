//! Admin actions beside keys: inspection templates and reading the audit trail.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use fleetgate_api::audit::{AuditFilter, AuditRecord};
use fleetgate_api::list::query_identity;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::templates::TemplateInput;
use fleetgate_scopes::TenantId;

use crate::error::Checks;
use crate::{Ctx, ProvisionError, State, cursor_signer, list_answer, page_limit, page_start};

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
    until: Option<String>,
    #[serde(default)]
    filter: AuditFilterInput,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// `list_audit`'s `filter` object (`action` names the provisioner action itself,
/// so the record's action is filtered here).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilterInput {
    action: Option<String>,
    key_id: Option<String>,
    resource_id: Option<String>,
    outcome: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_by: Option<String>,
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
            details: record.details,
            requested_by: record.requested_by,
        }
    }
}

/// Creates a template or replaces it (its version goes up by one); audited in the
/// same transaction, which also checks that the tenant exists.
pub async fn put_inspection_template(state: &State, input: PutInspectionTemplate, ctx: &Ctx) -> Result<Value> {
    let mut checks = Checks::default();
    let tenant_id = checks.take(TenantId::parse(&input.tenant_id).map_err(ProvisionError::from));
    let template = checks.take(TemplateInput::parse(input.template).map_err(|err| match err {
        ApiError::ValidationFailed(errors) => ProvisionError::InvalidTemplate(errors),
        other => ProvisionError::InvalidRequest(other.to_string()),
    }));
    // A bad template keeps its own error type (every template field listed) unless the tenant id is bad too.
    let (Some(tenant_id), Some(template)) = (tenant_id, template) else {
        return Err(checks.finish().err().unwrap_or_else(|| ProvisionError::InvalidRequest("invalid template".into())));
    };
    let details = json!({"items": template.items.len()});
    let audit = ctx.audit(state, &tenant_id, "put_inspection_template", Some(&template.id), "ok", details);
    let also = vec![state.audit.put_item(&audit)?, state.tenants.must_exist(&tenant_id)?];
    let stored = match state.templates.put(&tenant_id, template, also).await {
        Ok(stored) => stored,
        // [template, audit, tenant check]
        Err(err) if err.condition_failed_at(2) => return Err(ProvisionError::TenantNotFound(tenant_id.to_string())),
        Err(err) if err.is_condition_failure() => {
            return Err(ProvisionError::field("template", "the template changed meanwhile; send it again"));
        }
        Err(err) => return Err(err.into()),
    };
    Ok(json!({ "template": stored }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListInspectionTemplates {
    tenant_id: String,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// A tenant's inspection templates by id, paged like the other lists (what
/// `GET /inspection-templates` shows a key, for admins).
pub async fn list_inspection_templates(state: &State, input: ListInspectionTemplates, _ctx: &Ctx) -> Result<Value> {
    let limit = page_limit(input.limit)?;
    // A mistyped tenant is `tenant_not_found`, not an empty list.
    let tenant = crate::tenants::existing_tenant(state, &input.tenant_id).await?;
    let query = query_identity(tenant.tenant_id.as_str(), "list_inspection_templates", &[]);
    let start = page_start(state, &query, input.cursor.as_deref(), "template list").await?;
    let (templates, next) = state.templates.list(&tenant.tenant_id, limit, start.as_ref()).await?;
    let signer = cursor_signer(state).await?;
    Ok(list_answer(&templates, next.map(|position| signer.encode(&query, &position)), None))
}

/// The tenant's audit trail, newest first, paged like the HTTP lists, within
/// `since` (inclusive) and `until` (exclusive), matching `filter`.
pub async fn list_audit(state: &State, input: ListAudit, ctx: &Ctx) -> Result<Value> {
    let mut checks = Checks::default();
    let tenant_id = checks.take(TenantId::parse(&input.tenant_id).map_err(ProvisionError::from));
    let time = |field: &'static str, text: Option<&str>| {
        text.map(|text| {
            Timestamp::parse(text)
                .ok_or_else(|| ProvisionError::field(field, "must be an RFC 3339 timestamp, e.g. 2026-11-01T00:00:00Z"))
        })
        .transpose()
    };
    let since = checks.take(time("since", input.since.as_deref()));
    let until = checks.take(time("until", input.until.as_deref()));
    if let (Some(Some(since)), Some(Some(until))) = (since, until)
        && since >= until
    {
        checks.take::<()>(Err(ProvisionError::field("until", "must be later than since")));
    }
    let limit = checks.take(page_limit(input.limit));
    let filter = input.filter;
    for (field, value) in [
        ("filter.action", &filter.action),
        ("filter.key_id", &filter.key_id),
        ("filter.resource_id", &filter.resource_id),
        ("filter.outcome", &filter.outcome),
    ] {
        if value.as_ref().is_some_and(|v| v.is_empty() || v.chars().count() > 200) {
            checks.take::<()>(Err(ProvisionError::field(field, "must be 1 to 200 characters")));
        }
    }
    checks.finish()?;
    let (Some(tenant_id), Some(since), Some(until), Some(limit)) = (tenant_id, since, until, limit) else {
        unreachable!("every check passed");
    };
    let filter = AuditFilter {
        action: filter.action,
        key_id: filter.key_id,
        resource_id: filter.resource_id,
        outcome: filter.outcome,
    };
    let (since_text, until_text) = (since.map(|t| t.to_string()), until.map(|t| t.to_string()));
    let query = query_identity(
        tenant_id.as_str(),
        "list_audit",
        &[
            ("since", since_text.as_deref()),
            ("until", until_text.as_deref()),
            ("filter.action", filter.action.as_deref()),
            ("filter.key_id", filter.key_id.as_deref()),
            ("filter.resource_id", filter.resource_id.as_deref()),
            ("filter.outcome", filter.outcome.as_deref()),
        ],
    );
    let start = page_start(state, &query, input.cursor.as_deref(), "audit list").await?;
    let (records, next) = state.audit.list(&tenant_id, since, until, &filter, limit, start.as_ref()).await?;
    let records: Vec<AuditEntry> = records.into_iter().map(AuditEntry::from).collect();
    let signer = cursor_signer(state).await?;
    let next_cursor = next.map(|position| signer.encode(&query, &position));
    // Reading the trail is an action too; recorded after the read, so a page never shows its own read.
    let audit = ctx.audit(state, &tenant_id, "list_audit", None, "ok", Value::Null);
    state.audit.append(&audit).await?;
    Ok(list_answer(&records, next_cursor, Some("records")))
}
