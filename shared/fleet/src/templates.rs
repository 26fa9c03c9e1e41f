//! Inspection templates: checklists that inspections answer. Admins put them
//! through the provisioner; devices list them and submit inspections against them.
//!
//! Item: `pk = <tenant>`, `sk = template#<id>`; each put replaces the template
//! and bumps its version.

use std::collections::HashSet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::{ConfigError, DbError, env_var, transact_write};
use fleetgate_api::error::{ApiError, FieldError};
use fleetgate_api::input::{Fields, all_valid, text};
use fleetgate_api::list::{Position, query_page, tenant_prefix_query};
use fleetgate_scopes::TenantId;

pub const MAX_ITEMS: usize = 200;

/// One checklist item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateItem {
    pub id: String,
    pub label: String,
    pub required: bool,
    #[serde(default)]
    pub category: Option<String>,
}

/// A template as listed and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub items: Vec<TemplateItem>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Template {
    /// `input` as the version after `current` (version 1 when there is none).
    pub fn next_version(input: TemplateInput, current: Option<&Template>, now: Timestamp) -> Template {
        Template {
            id: input.id,
            name: input.name,
            description: input.description,
            items: input.items,
            version: current.map_or(1, |t| t.version + 1),
            created_at: current.map_or(now, |t| t.created_at),
            updated_at: now,
        }
    }
}

/// The admin's input: everything but version and timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInput {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub items: Vec<TemplateItem>,
}

/// A template or item id: 1–64 of `a-z 0-9 _ -`.
pub(crate) fn slug(value: &Value) -> Result<String, String> {
    let id = value.as_str().ok_or("must be a string")?;
    let valid = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid { Ok(id.to_owned()) } else { Err("must be 1-64 characters of a-z, 0-9, '_' and '-'".into()) }
}

impl TemplateInput {
    /// Validates a template: id, name, at least one item, unique item ids, non-empty labels.
    pub fn parse(value: Value) -> Result<TemplateInput, ApiError> {
        let mut fields = Fields::new(value)?;
        let id = fields.required("id", slug);
        let name = fields.required("name", |v| text(v, 100));
        let description = fields.optional("description", |v| text(v, 1000));
        let items = fields.required("items", |v| v.as_array().cloned().ok_or_else(|| "must be a list".to_owned()));
        let mut errors = fields.into_errors(&["version", "created_at", "updated_at"]);
        let items = items.map(|items| parse_items(items, &mut errors)).unwrap_or_default();
        all_valid(errors)?;
        let missing = || ApiError::Internal("validated template field missing".into());
        Ok(TemplateInput {
            id: id.ok_or_else(missing)?,
            name: name.ok_or_else(missing)?,
            description: description.ok_or_else(missing)?,
            items,
        })
    }
}

fn parse_items(items: Vec<Value>, errors: &mut Vec<FieldError>) -> Vec<TemplateItem> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", format!("must hold 1 to {MAX_ITEMS} items")));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (index, value) in items.into_iter().enumerate() {
        let at = |field: &str| format!("items[{index}].{field}");
        let mut fields = match Fields::new(value) {
            Ok(fields) => fields,
            Err(_) => {
                errors.push(FieldError::new(format!("items[{index}]"), "must be an object"));
                continue;
            }
        };
        let id = fields.required("id", slug);
        let label = fields.required("label", |v| text(v, 200));
        let required = fields.optional("required", |v| v.as_bool().ok_or_else(|| "must be true or false".to_owned()));
        let category = fields.optional("category", |v| text(v, 50));
        // A duplicate id is reported even when another field of the item is wrong too.
        if let Some(id) = &id
            && !seen.insert(id.clone())
        {
            errors.push(FieldError::new(at("id"), format!("duplicates item id '{id}'")));
        }
        if let Err(ApiError::ValidationFailed(item_errors)) = fields.finish(&[]) {
            errors.extend(item_errors.into_iter().map(|e| FieldError::new(at(&e.field), e.message)));
            continue;
        }
        let (Some(id), Some(label), Some(required), Some(category)) = (id, label, required, category) else { continue };
        // Items are required unless said otherwise: a checklist item is there to be answered.
        parsed.push(TemplateItem { id, label, required: required.unwrap_or(true), category });
    }
    parsed
}

/// A template item's own attributes: its key, and `version` for the write's
/// condition (the template is its body, see `fleetgate_api::stored`).
#[derive(Debug, Serialize)]
struct TemplateKeys<'a> {
    pk: &'a str,
    sk: String,
    version: u64,
}

pub(crate) fn template_sk(id: &str) -> String {
    format!("template#{id}")
}

/// Templates in the fleet table (`FLEET_TABLE`).
#[derive(Clone, Debug)]
pub struct TemplateStore {
    client: Client,
    table: String,
}

impl TemplateStore {
    pub fn new(client: Client, table: String) -> TemplateStore {
        TemplateStore { client, table }
    }

    pub fn from_env(client: Client) -> Result<TemplateStore, ConfigError> {
        Ok(TemplateStore::new(client, env_var("FLEET_TABLE")?))
    }

    /// A tenant's template; another tenant's is simply not found.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Template>, DbError> {
        if slug(&Value::String(id.to_owned())).is_err() {
            return Ok(None);
        }
        crate::table::get(&self.client, &self.table, tenant, template_sk(id)).await
    }

    /// Creates the template (version 1) or replaces it (version + 1), with `audit` in the same transaction.
    pub async fn put(
        &self,
        tenant: &TenantId,
        input: TemplateInput,
        also: Vec<TransactWriteItem>,
    ) -> Result<Template, DbError> {
        let current = self.get(tenant, &input.id).await?;
        let template = Template::next_version(input, current.as_ref(), Timestamp::now());
        let keys = TemplateKeys { pk: tenant.as_str(), sk: template_sk(&template.id), version: template.version };
        let put = Put::builder().table_name(&self.table).set_item(Some(fleetgate_api::stored::item(&keys, &template)?));
        // Replace exactly the version read, so two admins cannot both make version N+1.
        let put = match &current {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(current) => put
                .condition_expression("version = :read")
                .expression_attribute_values(":read", serde_dynamo::to_attribute_value(current.version)?),
        };
        let put = put.build().map_err(|e| DbError::Failed(Box::new(e)))?;
        // `also`: the audit record and the tenant's existence check, in the same transaction.
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(also);
        transact_write(&self.client, items).await?;
        Ok(template)
    }

    /// One page of a tenant's templates, by id.
    pub async fn list(
        &self,
        tenant: &TenantId,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<Template>, Option<Position>), DbError> {
        let query = tenant_prefix_query(&self.client, &self.table, tenant.as_str(), "template#");
        query_page(query, crate::table::KEY, limit, start).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(value: Value) -> Vec<(String, String)> {
        match TemplateInput::parse(value) {
            Err(ApiError::ValidationFailed(errors)) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_template_parses_and_items_default_to_required() {
        let input = TemplateInput::parse(json!({"id": "tpl_pretrip", "name": "Pre-trip", "items": [
            {"id": "brakes", "label": "Brakes", "required": true, "category": "safety"},
            {"id": "horn", "label": "Horn"},
            {"id": "radio", "label": "Radio", "required": false}]}))
        .unwrap();
        assert_eq!(input.items.iter().map(|i| i.required).collect::<Vec<_>>(), [true, true, false]);
        assert_eq!(input.description, None);
    }

    #[test]
    fn empty_duplicate_and_unlabelled_items_are_refused() {
        assert_eq!(
            errors(json!({"id": "t", "name": "T", "items": []})),
            [("items".into(), "must hold 1 to 200 items".into())]
        );
        let found = errors(json!({"id": "Bad Id", "name": "T", "items": [
            {"id": "brakes", "label": "Brakes"}, {"id": "brakes", "label": "Brakes again"}, {"id": "x", "label": " "},
            {"id": "y", "label": "Y", "colour": "red"}, 7]}));
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["id", "items[1].id", "items[2].label", "items[3].colour", "items[4]"]);
    }
}
