//! Tenants (fleet accounts) as explicit records, so a key can only be minted for a
//! fleet an admin created: a typo in `create_key` is `tenant_not_found`, not a
//! working key for an empty phantom fleet. One item per tenant in the fleet table
//! (`pk` = tenant id, `sk` = `tenant`), listed through `gsi1` (`gsi1pk` = `tenants`,
//! `gsi1sk` = tenant id): a query, never a scan. Tenant-wide settings (the tenant
//! cap of the key-restrictions issue) belong on this record.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::{ConfigError, DbError, env_var, transact_write};
use fleetgate_api::list::{Position, query_page};
use fleetgate_scopes::TenantId;

use crate::table::{self, GSI1};

/// The sort key of a tenant's own record.
const TENANT_SK: &str = "tenant";
/// The `gsi1pk` every tenant record shares, so `list_tenants` is one query.
const TENANTS_PARTITION: &str = "tenants";

/// A tenant as admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct TenantItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    tenant: Tenant,
}

/// Tenant records in the fleet table (`FLEET_TABLE`).
#[derive(Clone, Debug)]
pub struct TenantStore {
    client: Client,
    table: String,
}

impl TenantStore {
    pub fn new(client: Client, table: String) -> TenantStore {
        TenantStore { client, table }
    }

    pub fn from_env(client: Client) -> Result<TenantStore, ConfigError> {
        Ok(TenantStore::new(client, env_var("FLEET_TABLE")?))
    }

    /// Creates the tenant with `also` (its audit record) in one transaction; a
    /// condition failure at index 0 means it exists already.
    pub async fn create(&self, tenant: &Tenant, also: Vec<TransactWriteItem>) -> Result<(), DbError> {
        let item = TenantItem {
            pk: tenant.tenant_id.to_string(),
            sk: TENANT_SK.into(),
            gsi1pk: TENANTS_PARTITION.into(),
            gsi1sk: tenant.tenant_id.to_string(),
            tenant: tenant.clone(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(also);
        transact_write(&self.client, items).await
    }

    pub async fn get(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, DbError> {
        let item: Option<TenantItem> = table::get(&self.client, &self.table, tenant_id, TENANT_SK.into()).await?;
        Ok(item.map(|item| item.tenant))
    }

    /// A transaction item that fails (condition) unless `tenant_id` exists: a key
    /// or template written with it can never belong to a tenant that does not.
    pub fn must_exist(&self, tenant_id: &TenantId) -> Result<TransactWriteItem, DbError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", serde_dynamo::to_attribute_value(tenant_id)?)
            .key("sk", serde_dynamo::to_attribute_value(TENANT_SK)?)
            .condition_expression("attribute_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// One page of tenants in tenant id order.
    pub async fn list(&self, limit: i32, start: Option<&Position>) -> Result<(Vec<Tenant>, Option<Position>), DbError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1.name)
            .key_condition_expression("gsi1pk = :tenants")
            .expression_attribute_values(":tenants", serde_dynamo::to_attribute_value(TENANTS_PARTITION)?);
        let (items, next) = query_page::<TenantItem>(query, GSI1.key, limit, start).await?;
        Ok((items.into_iter().map(|item| item.tenant).collect(), next))
    }
}
