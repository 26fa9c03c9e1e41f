//! Webhook endpoints in the fleet table (`FLEET_TABLE`), beside the tenant's
//! other records (pk = tenant id):
//! - `webhook#<id>`: the endpoint as the API shows it (`body`, see
//!   `fleetgate_api::stored`) and its `version`; its signing secrets are
//!   attributes of their own, never in the body: `secret`, and for 24 hours
//!   after a rotation `previous_secret` until `previous_secret_until` (epoch
//!   seconds); `failing_since` (epoch seconds) while its deliveries fail.
//! - `webhooks#count`: how many endpoints the tenant has (`n`), changed in the
//!   same transaction as every create and delete, so the per-tenant maximum
//!   holds however many requests race.
//!
//! Lists read only keys and bodies (a projection): a page of endpoints never
//! even loads their secrets.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::Serialize;

use fleetgate_api::dynamo::{ConfigError, DbError, env_var, optional_var, transact_write};
use fleetgate_api::list::{Position, query_page, tenant_prefix_query};
use fleetgate_api::stored::{self, Projection};
use fleetgate_scopes::TenantId;

use fleetgate_api::Timestamp;

use crate::endpoints::{DisabledReason, Endpoint, EndpointStatus};
use crate::signing::Secret;

/// Endpoints a tenant may have unless `WEBHOOK_ENDPOINTS_PER_TENANT` says otherwise.
pub const DEFAULT_MAX_PER_TENANT: u32 = 20;
/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 60 * 60;

const COUNT_SK: &str = "webhooks#count";
const SECRET: &str = "secret";
const PREVIOUS_SECRET: &str = "previous_secret";
const PREVIOUS_UNTIL: &str = "previous_secret_until";
const FAILING_SINCE: &str = "failing_since";

const ENDPOINT_PREFIX: &str = "webhook#";

pub fn endpoint_sk(id: &str) -> String {
    format!("{ENDPOINT_PREFIX}{id}")
}

/// An endpoint with what only the delivery side reads.
#[derive(Clone, Debug)]
pub struct StoredEndpoint {
    pub endpoint: Endpoint,
    pub secret: Secret,
    /// The secret before the last rotation, and until when it still signs.
    pub previous: Option<(Secret, i64)>,
    /// Since when every delivery has failed (epoch seconds).
    pub failing_since: Option<i64>,
}

impl StoredEndpoint {
    /// The secrets that sign a delivery at `now`: the current one, and the previous
    /// one during its overlap.
    pub fn signing_secrets(&self, now: i64) -> Vec<&Secret> {
        let previous = self.previous.as_ref().filter(|(_, until)| now < *until).map(|(secret, _)| secret);
        std::iter::once(&self.secret).chain(previous).collect()
    }
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointWriteError {
    #[error("the tenant has its maximum of {0} webhook endpoints")]
    LimitReached(u32),
    #[error("no such webhook endpoint")]
    NotFound,
    #[error("the endpoint changed since it was read")]
    Stale,
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Serialize)]
struct EndpointKeys<'a> {
    pk: &'a str,
    sk: String,
    version: u64,
}

#[derive(Clone, Debug)]
pub struct EndpointStore {
    client: Client,
    table: String,
    max_per_tenant: u32,
}

static LIST_PROJECTION: std::sync::LazyLock<Projection> =
    std::sync::LazyLock::new(|| Projection::new(&["pk", "sk"], &[]));

impl EndpointStore {
    pub fn new(client: Client, table: String, max_per_tenant: u32) -> EndpointStore {
        EndpointStore { client, table, max_per_tenant }
    }

    pub fn from_env(client: Client) -> Result<EndpointStore, ConfigError> {
        let max = match optional_var("WEBHOOK_ENDPOINTS_PER_TENANT") {
            None => DEFAULT_MAX_PER_TENANT,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError("WEBHOOK_ENDPOINTS_PER_TENANT (a whole number above 0)".into()))?,
        };
        Ok(EndpointStore::new(client, env_var("FLEET_TABLE")?, max))
    }

    pub fn max_per_tenant(&self) -> u32 {
        self.max_per_tenant
    }

    fn key(tenant: &TenantId, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(tenant.to_string())),
            ("sk".to_owned(), AttributeValue::S(sk)),
        ])
    }

    /// Writes `own` then `extra` in one transaction; a condition failing on the first
    /// of `own` is `first_failed` (the endpoint is not as expected).
    async fn write(
        &self,
        own: Vec<TransactWriteItem>,
        extra: Vec<TransactWriteItem>,
        first_failed: EndpointWriteError,
    ) -> Result<(), EndpointWriteError> {
        let items = own.into_iter().chain(extra).collect();
        match transact_write(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(err) if err.condition_failed_at(0) => Err(first_failed),
            Err(err) => Err(err.into()),
        }
    }

    /// Stores a new endpoint with its secret, counted against the tenant's maximum,
    /// with `extra` items (audit, idempotency) in the same transaction.
    pub async fn create(
        &self,
        tenant: &TenantId,
        endpoint: &Endpoint,
        secret: &Secret,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), EndpointWriteError> {
        let keys = EndpointKeys { pk: tenant.as_str(), sk: endpoint_sk(&endpoint.id), version: endpoint.version };
        let mut item = stored::item(&keys, endpoint)?;
        item.insert(SECRET.to_owned(), AttributeValue::S(secret.reveal()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, COUNT_SK.to_owned())))
            .update_expression("SET n = if_not_exists(n, :zero) + :one")
            .condition_expression("attribute_not_exists(n) OR n < :max")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(self.max_per_tenant.to_string()))
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let mut items =
            vec![TransactWriteItem::builder().put(put).build(), TransactWriteItem::builder().update(count).build()];
        items.extend(extra);
        match transact_write(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_own_earlier_create() => Ok(()),
            Err(err) if err.condition_failed_at(1) => Err(EndpointWriteError::LimitReached(self.max_per_tenant)),
            Err(err) => Err(err.into()),
        }
    }

    /// A tenant's endpoint with its secrets; another tenant's id is simply not found.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<StoredEndpoint>, DbError> {
        if !fleetgate_api::ids::is_sortable_id(crate::endpoints::ID_PREFIX, id) {
            return Ok(None);
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(id))))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.and_then(read_stored))
    }

    /// A tenant's endpoint as the API shows it: what the route functions read (its
    /// secrets are not even loaded).
    pub async fn find(&self, tenant: &TenantId, id: &str) -> Result<Option<Endpoint>, DbError> {
        if !fleetgate_api::ids::is_sortable_id(crate::endpoints::ID_PREFIX, id) {
            return Ok(None);
        }
        let get = self.client.get_item().table_name(&self.table).set_key(Some(Self::key(tenant, endpoint_sk(id))));
        let output = LIST_PROJECTION.apply_to_get(get).consistent_read(true).send().await?;
        Ok(output.item.and_then(fleetgate_api::list::readable_item))
    }

    /// One page of a tenant's endpoints, oldest first (ids sort by creation).
    pub async fn list(
        &self,
        tenant: &TenantId,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<Endpoint>, Option<Position>), DbError> {
        let query = tenant_prefix_query(&self.client, &self.table, tenant.as_str(), ENDPOINT_PREFIX);
        query_page(LIST_PROJECTION.apply(query), &["pk", "sk"], limit, start).await
    }

    /// Every endpoint of the tenant, with secrets (the dispatcher's and deliverer's
    /// read: at most `max_per_tenant` items, one page).
    pub async fn all(&self, tenant: &TenantId) -> Result<Vec<StoredEndpoint>, DbError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = tenant_prefix_query(&self.client, &self.table, tenant.as_str(), ENDPOINT_PREFIX)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            found.extend(output.items.unwrap_or_default().into_iter().filter_map(read_stored));
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    /// Replaces the endpoint's representation if it is still at `expected_version`;
    /// its secrets and delivery state are kept. `extra` joins the transaction.
    pub async fn replace(
        &self,
        tenant: &TenantId,
        next: &Endpoint,
        expected_version: u64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), EndpointWriteError> {
        let body = serde_json::to_string(next).map_err(|e| DbError::Failed(Box::new(e)))?;
        // Re-enabled endpoints start their failure clock afresh.
        let clear_failures =
            if next.status == crate::endpoints::EndpointStatus::Enabled { " REMOVE failing_since" } else { "" };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(&next.id))))
            .update_expression(format!("SET body = :body, version = :next{clear_failures}"))
            .condition_expression("version = :expected")
            .expression_attribute_values(":body", AttributeValue::S(body))
            .expression_attribute_values(":next", AttributeValue::N(next.version.to_string()))
            .expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        self.write(vec![TransactWriteItem::builder().update(update).build()], extra, EndpointWriteError::Stale).await
    }

    /// Deletes the endpoint and gives its place back; `extra` joins the transaction.
    pub async fn delete(
        &self,
        tenant: &TenantId,
        id: &str,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), EndpointWriteError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(id))))
            .condition_expression("attribute_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, COUNT_SK.to_owned())))
            .update_expression("SET n = n - :one")
            .condition_expression("n > :zero")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let own = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        self.write(own, extra, EndpointWriteError::NotFound).await
    }

    /// Makes `secret` the signing secret; the one it replaces keeps signing until
    /// `previous_until` (the old value, read by DynamoDB in the same update).
    pub async fn rotate_secret(
        &self,
        tenant: &TenantId,
        id: &str,
        secret: &Secret,
        previous_until: i64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), EndpointWriteError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(id))))
            .update_expression(format!(
                "SET {PREVIOUS_SECRET} = {SECRET}, {PREVIOUS_UNTIL} = :until, {SECRET} = :secret"
            ))
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":until", AttributeValue::N(previous_until.to_string()))
            .expression_attribute_values(":secret", AttributeValue::S(secret.reveal()))
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        self.write(vec![TransactWriteItem::builder().update(update).build()], extra, EndpointWriteError::NotFound).await
    }
}

impl EndpointStore {
    /// Notes a failed delivery: `failing_since` is set by the first failure of a
    /// run and kept by the ones after; returns it (`None`: the endpoint is gone).
    pub async fn note_failure(&self, tenant: &TenantId, id: &str, now: i64) -> Result<Option<i64>, DbError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(id))))
            .update_expression(format!("SET {FAILING_SINCE} = if_not_exists({FAILING_SINCE}, :now)"))
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            // ALL_NEW, not UPDATED_NEW: an attribute that if_not_exists kept unchanged
            // is not returned as "updated" by every implementation (the emulator's).
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result.map_err(DbError::from) {
            Ok(output) => Ok(output
                .attributes
                .and_then(|a| a.get(FAILING_SINCE).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()))),
            Err(DbError::ConditionFailed) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Ends a run of failures after a success (called only when one was noted,
    /// so a healthy endpoint costs no write).
    pub async fn note_success(&self, tenant: &TenantId, id: &str) -> Result<(), DbError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, endpoint_sk(id))))
            .update_expression(format!("REMOVE {FAILING_SINCE}"))
            .condition_expression("attribute_exists(sk)")
            .send()
            .await;
        match result.map_err(DbError::from) {
            Ok(_) | Err(DbError::ConditionFailed) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Disables the endpoint for `reason` (a 410, or five days of failures). If
    /// its owner changed it meanwhile, the owner's version stands (`Stale`).
    pub async fn disable(
        &self,
        tenant: &TenantId,
        endpoint: &Endpoint,
        reason: DisabledReason,
        now: Timestamp,
    ) -> Result<Endpoint, EndpointWriteError> {
        let next = Endpoint {
            status: EndpointStatus::Disabled,
            disabled_reason: Some(reason),
            version: endpoint.version + 1,
            updated_at: now,
            ..endpoint.clone()
        };
        self.replace(tenant, &next, endpoint.version, vec![]).await?;
        Ok(next)
    }
}

/// An endpoint item as read with its secrets; `None` (logged) when it does not map.
fn read_stored(mut item: HashMap<String, AttributeValue>) -> Option<StoredEndpoint> {
    let text = |item: &mut HashMap<String, AttributeValue>, name: &str| match item.remove(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    };
    let number = |item: &HashMap<String, AttributeValue>, name: &str| -> Option<i64> {
        item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
    };
    let secret = text(&mut item, SECRET).and_then(|s| Secret::parse(&s).ok());
    let previous = text(&mut item, PREVIOUS_SECRET).and_then(|s| Secret::parse(&s).ok());
    let previous_until = number(&item, PREVIOUS_UNTIL);
    let failing_since = number(&item, FAILING_SINCE);
    let endpoint: Option<Endpoint> = fleetgate_api::list::readable_item(item);
    let Some(secret) = secret else {
        tracing::error!(
            endpoint_id = endpoint.as_ref().map(|e| e.id.as_str()),
            "a webhook endpoint has no readable secret; left out"
        );
        return None;
    };
    Some(StoredEndpoint { endpoint: endpoint?, secret, previous: previous.zip(previous_until), failing_since })
}
