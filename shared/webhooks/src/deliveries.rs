//! The attempt log of each endpoint (`GET /webhooks/{id}/deliveries`): one item
//! per attempt, `delivery#<endpoint id>#<attempt id>` in the fleet table (ids
//! sort by time, so a reverse query reads newest first), kept 30 days (TTL).

use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use fleetgate_api::dynamo::DbError;
use fleetgate_api::list::{Position, query_page, tenant_prefix_query};
use fleetgate_api::{Timestamp, ids};
use fleetgate_scopes::TenantId;

use crate::events::EventType;

pub const ID_PREFIX: &str = "dlv_";
const KEPT_DAYS: i64 = 30;

/// One attempt, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub id: String,
    pub endpoint_id: String,
    /// The event's id, which is also the delivery's `webhook-id`.
    pub event_id: String,
    pub event_type: EventType,
    /// 1 for the first try.
    pub attempt: u32,
    pub attempted_at: Timestamp,
    /// The receiver's status; `null` when there was no answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub delivered: bool,
    /// The first 4 KiB of the answer, or why there was none (refused address, timeout…).
    pub answer: String,
    /// When the next attempt is due; `null` when delivered or given up.
    pub next_attempt_at: Option<Timestamp>,
}

impl DeliveryAttempt {
    pub fn new_id() -> String {
        ids::new_sortable_id(ID_PREFIX)
    }
}

#[derive(Serialize)]
struct AttemptKeys<'a> {
    pk: &'a str,
    sk: String,
    expires_at_epoch: i64,
}

fn prefix(endpoint_id: &str) -> String {
    format!("delivery#{endpoint_id}#")
}

#[derive(Clone, Debug)]
pub struct DeliveryLog {
    client: Client,
    table: String,
}

impl DeliveryLog {
    pub fn new(client: Client, table: String) -> DeliveryLog {
        DeliveryLog { client, table }
    }

    /// The log lives in the fleet table (`FLEET_TABLE`).
    pub fn from_env(client: Client) -> Result<DeliveryLog, fleetgate_api::dynamo::ConfigError> {
        Ok(DeliveryLog::new(client, fleetgate_api::dynamo::env_var("FLEET_TABLE")?))
    }

    pub async fn record(&self, tenant: &TenantId, attempt: &DeliveryAttempt) -> Result<(), DbError> {
        let keys = AttemptKeys {
            pk: tenant.as_str(),
            sk: format!("{}{}", prefix(&attempt.endpoint_id), attempt.id),
            expires_at_epoch: attempt.attempted_at.unix_seconds() + KEPT_DAYS * 86_400,
        };
        let item = fleetgate_api::stored::item(&keys, attempt)?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    /// One page of an endpoint's attempts, newest first.
    pub async fn list(
        &self,
        tenant: &TenantId,
        endpoint_id: &str,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<DeliveryAttempt>, Option<Position>), DbError> {
        let query = tenant_prefix_query(&self.client, &self.table, tenant.as_str(), &prefix(endpoint_id))
            .scan_index_forward(false);
        query_page(query, &["pk", "sk"], limit, start).await
    }
}
