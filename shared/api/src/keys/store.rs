//! The keys table: one item per key, keyed by the SHA-256 of the key, with
//! per-tenant GSIs: (`tenant_id`, `key_id`) to look a key up by public id, and
//! (`tenant_id`, `created_at`) to list a tenant's keys newest first.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use fleetgate_scopes::{Cidr, Environment, RateLimit, ScopeSet, TenantId};

use crate::dynamo::{ConfigError, DbError, env_var, transact_write};
use crate::keys::KeyHash;
use crate::list::query_page;
use crate::timestamp::Timestamp;

/// Name of the keys table's per-tenant index (also in `infra/template.yaml`).
pub const TENANT_INDEX: &str = "tenant-keys";
/// The per-tenant index in creation order (`tenant_id`, `created_at`), for newest-first lists.
pub const TENANT_CREATION_INDEX: &str = "tenant-keys-by-creation";

/// The authorizer writes `last_used_at` at most this often per key.
pub const LAST_USED_GRANULARITY: time::Duration = time::Duration::hours(1);

/// A stored key. Holds the hash and a hint, never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_hash: String,
    pub key_id: String,
    pub tenant_id: TenantId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub environment: Environment,
    /// Granted scopes; effective ones are derived.
    pub scopes: ScopeSet,
    /// Last four characters of the key.
    pub hint: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// Public id of the key this one replaced by rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Public id of the key that replaced this one by rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<String>,
    /// The networks the key may be used from (`None`: any). A restriction, not a
    /// permission: it can change on a live key (`update_key_restrictions`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "cidr_strings")]
    pub allowed_cidrs: Option<Vec<Cidr>>,
    /// The key's own rate limit; `None`: the deployment's default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Requests per UTC calendar month; `None`: no quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_quota: Option<u64>,
}

/// A key's restrictions: what `update_key_restrictions` changes on a live key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    pub allowed_cidrs: Option<Vec<Cidr>>,
    pub rate_limit: Option<RateLimit>,
    pub monthly_quota: Option<u64>,
}

/// A tenant's cap on all its keys together. It lives in the keys table (item
/// `key_hash` = `tenant-limits#<tenant>`, which no hex hash can equal) because the
/// authorizer, which passes it on, reads no other table. It has no `tenant_id`
/// attribute, so it never appears in the per-tenant key indexes.
#[derive(Debug, Serialize, Deserialize)]
struct TenantLimitsItem {
    key_hash: String,
    limits_of: TenantId,
    /// `None` once lifted (the item stays: the provisioner may put, never delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateLimit>,
    updated_at: Timestamp,
}

fn tenant_limits_hash(tenant: &TenantId) -> String {
    format!("tenant-limits#{tenant}")
}

/// CIDRs as the strings DynamoDB stores (a list of `203.0.113.0/24`). A stored
/// entry that no longer parses fails the read: the key then works nowhere
/// (closed), never everywhere.
mod cidr_strings {
    use fleetgate_scopes::Cidr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cidrs: &Option<Vec<Cidr>>, serializer: S) -> Result<S::Ok, S::Error> {
        let texts: Option<Vec<String>> = cidrs.as_ref().map(|c| c.iter().map(Cidr::to_string).collect());
        serde::Serialize::serialize(&texts, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<Cidr>>, D::Error> {
        let texts: Option<Vec<String>> = Option::deserialize(deserializer)?;
        texts.map(|texts| texts.iter().map(|t| Cidr::parse(t).map_err(serde::de::Error::custom)).collect()).transpose()
    }
}

/// Whether a key works right now.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyRecord {
    pub fn restrictions(&self) -> Restrictions {
        Restrictions {
            allowed_cidrs: self.allowed_cidrs.clone(),
            rate_limit: self.rate_limit,
            monthly_quota: self.monthly_quota,
        }
    }

    pub fn status(&self, now: Timestamp) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// Whether the authorizer should record a use now (at most hourly).
    pub fn last_used_is_stale(&self, now: Timestamp) -> bool {
        self.last_used_at.is_none_or(|at| at <= now.minus(LAST_USED_GRANULARITY))
    }
}

/// Reads and writes the keys table (`KEYS_TABLE`).
#[derive(Clone, Debug)]
pub struct KeyStore {
    client: Client,
    table: String,
}

impl KeyStore {
    pub fn new(client: Client, table: String) -> KeyStore {
        KeyStore { client, table }
    }

    pub fn from_env(client: Client) -> Result<KeyStore, ConfigError> {
        Ok(KeyStore::new(client, env_var("KEYS_TABLE")?))
    }

    /// The key with this hash, if any (strongly consistent: a revocation is seen at once).
    pub async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, DbError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(hash.as_str())?)
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(serde_dynamo::from_item).transpose()?)
    }

    /// A tenant's key by public id; another tenant's id is simply not found.
    pub async fn find_by_id(&self, tenant_id: &TenantId, key_id: &str) -> Result<Option<KeyRecord>, DbError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(TENANT_INDEX)
            .key_condition_expression("tenant_id = :tenant AND key_id = :key_id")
            .expression_attribute_values(":tenant", serde_dynamo::to_attribute_value(tenant_id)?)
            .expression_attribute_values(":key_id", serde_dynamo::to_attribute_value(key_id)?)
            .send()
            .await?;
        let item = output.items.unwrap_or_default().into_iter().next();
        Ok(item.map(serde_dynamo::from_item).transpose()?)
    }

    /// Up to `limit` keys of a tenant, newest first, after the key `after` (the last
    /// of the previous page), and whether more follow. Keys created in the same
    /// second come in an order DynamoDB keeps stable across pages.
    pub async fn list_newest_first(
        &self,
        tenant_id: &TenantId,
        after: Option<&KeyRecord>,
        limit: i32,
    ) -> Result<(Vec<KeyRecord>, bool), DbError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(TENANT_CREATION_INDEX)
            .scan_index_forward(false)
            .key_condition_expression("tenant_id = :tenant")
            .expression_attribute_values(":tenant", serde_dynamo::to_attribute_value(tenant_id)?);
        // DynamoDB resumes from the index key plus the table key of the last item.
        let start: Option<crate::list::Position> = after.map(|key| {
            [
                ("key_hash".to_owned(), key.key_hash.clone()),
                ("tenant_id".to_owned(), key.tenant_id.to_string()),
                ("created_at".to_owned(), key.created_at.to_string()),
            ]
            .into()
        });
        let (keys, next) = query_page(query, &["key_hash", "tenant_id", "created_at"], limit, start.as_ref()).await?;
        Ok((keys, next.is_some()))
    }

    /// Stores a new key with `also` (its audit record, the tenant's existence check)
    /// atomically: `also[i]` is the transaction's item `i + 1`.
    pub async fn create(&self, record: &KeyRecord, also: Vec<TransactWriteItem>) -> Result<(), DbError> {
        let mut items = vec![self.put_new(record)?];
        items.extend(also);
        transact_write(&self.client, items).await
    }

    /// Marks a key revoked (if it is not already) together with its audit record.
    pub async fn revoke(
        &self,
        record: &KeyRecord,
        at: Timestamp,
        reason: Option<&str>,
        audit: TransactWriteItem,
    ) -> Result<(), DbError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(&record.key_hash)?)
            .condition_expression("attribute_exists(key_hash) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":at", serde_dynamo::to_attribute_value(at)?);
        update = match reason {
            Some(reason) => update
                .update_expression("SET revoked_at = :at, revoke_reason = :reason")
                .expression_attribute_values(":reason", serde_dynamo::to_attribute_value(reason)?),
            None => update.update_expression("SET revoked_at = :at"),
        };
        let update = update.build().map_err(|e| DbError::Failed(Box::new(e)))?;
        transact_write(&self.client, vec![TransactWriteItem::builder().update(update).build(), audit]).await
    }

    /// Stores `new` and sets `old` to expire at `old_expires_at`, with the audit record, atomically.
    /// Fails with a condition failure if `old` was revoked or rotated meanwhile.
    pub async fn rotate(
        &self,
        old: &KeyRecord,
        new: &KeyRecord,
        old_expires_at: Timestamp,
        audit: TransactWriteItem,
    ) -> Result<(), DbError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(&old.key_hash)?)
            .update_expression("SET expires_at = :expires_at, rotated_to = :new_id")
            .condition_expression(
                "attribute_exists(key_hash) AND attribute_not_exists(revoked_at) AND attribute_not_exists(rotated_to)",
            )
            .expression_attribute_values(":expires_at", serde_dynamo::to_attribute_value(old_expires_at)?)
            .expression_attribute_values(":new_id", serde_dynamo::to_attribute_value(&new.key_id)?)
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        transact_write(
            &self.client,
            vec![self.put_new(new)?, TransactWriteItem::builder().update(update).build(), audit],
        )
        .await
    }

    /// Replaces a live key's restrictions (a `None` lifts that one), with its audit record.
    pub async fn set_restrictions(
        &self,
        record: &KeyRecord,
        restrictions: &Restrictions,
        audit: TransactWriteItem,
    ) -> Result<(), DbError> {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(&record.key_hash)?)
            .condition_expression("attribute_exists(key_hash)");
        let texts: Option<Vec<String>> =
            restrictions.allowed_cidrs.as_ref().map(|cidrs| cidrs.iter().map(Cidr::to_string).collect());
        for (name, value) in [
            ("allowed_cidrs", texts.map(serde_dynamo::to_attribute_value).transpose()?),
            ("rate_limit", restrictions.rate_limit.map(serde_dynamo::to_attribute_value).transpose()?),
            ("monthly_quota", restrictions.monthly_quota.map(serde_dynamo::to_attribute_value).transpose()?),
        ] {
            match value {
                Some(value) => {
                    set.push(format!("{name} = :{name}"));
                    update = update.expression_attribute_values(format!(":{name}"), value);
                }
                None => remove.push(name),
            }
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update.update_expression(expression.trim()).build().map_err(|e| DbError::Failed(Box::new(e)))?;
        transact_write(&self.client, vec![TransactWriteItem::builder().update(update).build(), audit]).await
    }

    /// The tenant's cap on all its keys together, if it has one (strongly consistent).
    pub async fn tenant_rate_limit(&self, tenant: &TenantId) -> Result<Option<RateLimit>, DbError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(tenant_limits_hash(tenant))?)
            .consistent_read(true)
            .send()
            .await?;
        let item: Option<TenantLimitsItem> = output.item.map(serde_dynamo::from_item).transpose()?;
        Ok(item.and_then(|item| item.rate_limit))
    }

    /// Sets (or with `None` lifts) the tenant's cap, with its audit record.
    pub async fn set_tenant_rate_limit(
        &self,
        tenant: &TenantId,
        rate_limit: Option<RateLimit>,
        at: Timestamp,
        audit: TransactWriteItem,
    ) -> Result<(), DbError> {
        let item = TenantLimitsItem {
            key_hash: tenant_limits_hash(tenant),
            limits_of: tenant.clone(),
            rate_limit,
            updated_at: at,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let item = TransactWriteItem::builder().put(put).build();
        transact_write(&self.client, vec![item, audit]).await
    }

    /// Records a use of the key, unless one was recorded within the last hour
    /// (the condition makes concurrent authorizers write at most once).
    pub async fn touch_last_used(&self, hash: &KeyHash, now: Timestamp) -> Result<(), DbError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key_hash", serde_dynamo::to_attribute_value(hash.as_str())?)
            .update_expression("SET last_used_at = :now")
            .condition_expression(
                "attribute_exists(key_hash) AND (attribute_not_exists(last_used_at) OR last_used_at <= :stale)",
            )
            .expression_attribute_values(":now", serde_dynamo::to_attribute_value(now)?)
            .expression_attribute_values(":stale", serde_dynamo::to_attribute_value(now.minus(LAST_USED_GRANULARITY))?)
            .send()
            .await;
        match result.map_err(DbError::from) {
            Ok(_) | Err(DbError::ConditionFailed) => Ok(()),
            Err(other) => Err(other),
        }
    }

    fn put_new(&self, record: &KeyRecord) -> Result<TransactWriteItem, DbError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(record)?))
            .condition_expression("attribute_not_exists(key_hash)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(allowed_cidrs: serde_json::Value) -> serde_json::Value {
        json!({"key_hash": "h", "key_id": "key_x", "tenant_id": "acme", "name": "k", "environment": "test",
               "scopes": ["vehicles:read"], "hint": "abcd", "created_at": "2026-11-01T00:00:00Z",
               "allowed_cidrs": allowed_cidrs})
    }

    #[test]
    fn a_stored_network_list_that_does_not_parse_fails_the_read_never_allowing_everywhere() {
        let good: KeyRecord = serde_json::from_value(stored(json!(["203.0.113.0/24"]))).unwrap();
        assert_eq!(good.allowed_cidrs.unwrap()[0].to_string(), "203.0.113.0/24");
        let open: KeyRecord = serde_json::from_value(stored(serde_json::Value::Null)).unwrap();
        assert_eq!(open.allowed_cidrs, None);
        assert!(serde_json::from_value::<KeyRecord>(stored(json!(["10.0.0.0/33"]))).is_err());
        assert!(serde_json::from_value::<KeyRecord>(stored(json!(["203.0.113.0/24", "x"]))).is_err());
    }
}
