//! The append-only audit trail: one item per write request or provisioning action.
//!
//! Items are only ever put with `attribute_not_exists`, and where an action
//! changes data, the audit put rides in the same DynamoDB transaction, so no
//! change can exist without its record.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use fleetgate_scopes::TenantId;

use crate::dynamo::{ConfigError, DbError, env_var};
use crate::http::Call;
use crate::keys::new_public_id;
use crate::list::{Position, query_page};
use crate::timestamp::Timestamp;

/// How long audit items live by default (DynamoDB TTL), in days.
pub const DEFAULT_RETENTION_DAYS: i64 = 400;

/// One audit record, as stored and as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Partition key.
    pub tenant_id: TenantId,
    /// Sort key: `<at to the microsecond>#<audit id>`, so a tenant's trail reads in time order.
    pub sk: String,
    pub at: Timestamp,
    /// The key that made the request; `None` for an admin's provisioning action.
    pub key_id: Option<String>,
    /// e.g. `create_key`, `POST /vehicles`.
    pub action: String,
    pub resource_id: Option<String>,
    /// `ok`, or the problem code of a refused request.
    pub outcome: String,
    pub request_id: String,
    /// What an admin action did beyond its name: scopes granted, reason, grace,
    /// the keys a revocation also ended, the error of a refused action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Who the admin says they are (`requested_by` of the event). The provisioner
    /// cannot verify it: the caller's real identity is in CloudTrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// DynamoDB TTL attribute (epoch seconds).
    pub expires_at_epoch: i64,
}

impl AuditRecord {
    pub fn new(
        tenant_id: TenantId,
        key_id: Option<String>,
        action: impl Into<String>,
        resource_id: Option<String>,
        outcome: impl Into<String>,
        request_id: impl Into<String>,
        retention_days: i64,
    ) -> AuditRecord {
        let (at, sort_key) = Timestamp::now_with_sort_key();
        AuditRecord {
            sk: format!("{sort_key}#{}", new_public_id("aud_")),
            tenant_id,
            at,
            key_id,
            action: action.into(),
            resource_id,
            outcome: outcome.into(),
            request_id: request_id.into(),
            details: None,
            requested_by: None,
            expires_at_epoch: at.plus(time::Duration::days(retention_days)).unix_seconds(),
        }
    }

    /// With `details` (an object) and the admin's own `requested_by`.
    pub fn with_details(mut self, details: serde_json::Value, requested_by: Option<&str>) -> AuditRecord {
        self.details = Some(details).filter(|d| d.as_object().is_some_and(|o| !o.is_empty()));
        self.requested_by = requested_by.map(str::to_owned);
        self
    }
}

/// What `list_audit` may filter on besides time: each given member must equal the
/// record's (applied by DynamoDB after the key condition, so it costs reads, not answers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub key_id: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<String>,
}

impl AuditFilter {
    fn members(&self) -> Vec<(&'static str, &str)> {
        [
            ("action", self.action.as_deref()),
            ("key_id", self.key_id.as_deref()),
            ("resource_id", self.resource_id.as_deref()),
            ("outcome", self.outcome.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// Writes audit records to the audit table (`AUDIT_TABLE`).
#[derive(Clone, Debug)]
pub struct AuditLog {
    client: Client,
    table: String,
    retention_days: i64,
}

impl AuditLog {
    pub fn new(client: Client, table: String) -> AuditLog {
        AuditLog { client, table, retention_days: DEFAULT_RETENTION_DAYS }
    }

    pub fn from_env(client: Client) -> Result<AuditLog, ConfigError> {
        let mut log = AuditLog::new(client, env_var("AUDIT_TABLE")?);
        if let Some(days) = std::env::var("AUDIT_RETENTION_DAYS").ok().and_then(|d| d.parse().ok()) {
            log.retention_days = days;
        }
        Ok(log)
    }

    pub fn retention_days(&self) -> i64 {
        self.retention_days
    }

    /// The record of an HTTP write `call` on `resource_id` with `outcome` (`ok` or a problem code).
    pub fn record(&self, call: &Call, resource_id: Option<&str>, outcome: &str) -> AuditRecord {
        AuditRecord::new(
            call.auth.tenant_id.clone(),
            Some(call.auth.key_id.clone()),
            call.route.describe(),
            resource_id.map(str::to_owned),
            outcome,
            call.request_id.clone(),
            self.retention_days,
        )
    }

    /// The put of `record`, to include in a transaction with the change it records.
    pub fn put_item(&self, record: &AuditRecord) -> Result<TransactWriteItem, DbError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(record)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One page of a tenant's trail, newest first: records at or after `since` and
    /// before `until`, matching `filter`.
    pub async fn list(
        &self,
        tenant_id: &TenantId,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        filter: &AuditFilter,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<AuditRecord>, Option<Position>), DbError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .expression_attribute_values(":tenant", serde_dynamo::to_attribute_value(tenant_id)?);
        // Sort keys start with the time to the microsecond: `since`'s second sorts first, `until`'s is excluded.
        let since = since.map(Timestamp::sort_key);
        let until = until.map(Timestamp::sort_key);
        query = match (&since, &until) {
            (None, None) => query.key_condition_expression("tenant_id = :tenant"),
            (Some(since), None) => query
                .key_condition_expression("tenant_id = :tenant AND sk >= :since")
                .expression_attribute_values(":since", serde_dynamo::to_attribute_value(since)?),
            (None, Some(until)) => query
                .key_condition_expression("tenant_id = :tenant AND sk < :until")
                .expression_attribute_values(":until", serde_dynamo::to_attribute_value(until)?),
            (Some(since), Some(until)) => query
                .key_condition_expression("tenant_id = :tenant AND sk BETWEEN :since AND :until")
                .expression_attribute_values(":since", serde_dynamo::to_attribute_value(since)?)
                // BETWEEN is inclusive, but no sort key equals `until`'s: each ends in `#<audit id>`.
                .expression_attribute_values(":until", serde_dynamo::to_attribute_value(until)?),
        };
        let members = filter.members();
        if !members.is_empty() {
            let mut conditions = Vec::new();
            for (index, (name, value)) in members.into_iter().enumerate() {
                conditions.push(format!("#f{index} = :f{index}"));
                query = query
                    .expression_attribute_names(format!("#f{index}"), name)
                    .expression_attribute_values(format!(":f{index}"), serde_dynamo::to_attribute_value(value)?);
            }
            query = query.filter_expression(conditions.join(" AND "));
        }
        query_page(query, &["tenant_id", "sk"], limit, start).await
    }

    /// Appends a record on its own (for actions that change nothing else).
    pub async fn append(&self, record: &AuditRecord) -> Result<(), DbError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(record)?))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await?;
        Ok(())
    }
}
