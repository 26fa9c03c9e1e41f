//! Vehicles: the wire type, validation of client input into it, and the fleet-table store.
//!
//! Items (partition key = tenant id, so nothing crosses tenants):
//! - `sk = vehicle#<id>`: the vehicle; `gsi1pk = <tenant>#vehicle-status#<status>`,
//!   `gsi1sk = <id>` serve the status filter.
//! - `sk = vin#<VIN>`: owns the VIN, so DynamoDB itself keeps VINs unique per tenant.

use std::fmt;
use std::str::FromStr;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use fleetgate_api::dynamo::{ConfigError, DbError, env_var, transact_write};
use fleetgate_api::error::ApiError;
use fleetgate_api::if_match::{IfMatch, request_if_match};
use fleetgate_api::input::{Fields, integer, text};
use fleetgate_api::list::{Position, query_page, tenant_prefix_query};
use fleetgate_api::{Timestamp, ids};
use fleetgate_scopes::TenantId;
use fleetgate_webhooks::events::{EventType, Outbox};

use crate::table::{self, GSI1, Index};

pub const ID_PREFIX: &str = "veh_";
/// Fields the server sets; a client that sends them gets a 422 naming them.
pub const SERVER_OWNED_FIELDS: [&str; 6] = ["id", "version", "tenant_id", "created_at", "updated_at", "etag"];
/// Serves the status filter.
const STATUS_INDEX: Index = GSI1;
/// How often a write retries after losing a race to a concurrent transaction.
const CONFLICT_RETRIES: usize = 3;

/// Operating state of a vehicle.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleStatus {
    Active,
    Inactive,
    InShop,
    Retired,
}

impl VehicleStatus {
    pub const ALL: [VehicleStatus; 4] =
        [VehicleStatus::Active, VehicleStatus::Inactive, VehicleStatus::InShop, VehicleStatus::Retired];

    pub const fn as_str(self) -> &'static str {
        match self {
            VehicleStatus::Active => "active",
            VehicleStatus::Inactive => "inactive",
            VehicleStatus::InShop => "in_shop",
            VehicleStatus::Retired => "retired",
        }
    }

    fn expected() -> String {
        format!("must be one of: {}", VehicleStatus::ALL.map(VehicleStatus::as_str).join(", "))
    }
}

impl fmt::Display for VehicleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VehicleStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        VehicleStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(VehicleStatus::expected)
    }
}

/// A Vehicle Identification Number: 17 of `A-H J-N P R-Z 0-9` (no I, O, Q), stored upper-case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

impl Vin {
    pub fn parse(s: &str) -> Result<Vin, String> {
        let vin = s.trim().to_ascii_uppercase();
        let allowed = |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q'));
        if vin.chars().count() != 17 {
            return Err("must be exactly 17 characters".into());
        }
        if !vin.chars().all(allowed) {
            return Err("may contain only letters A-Z except I, O and Q, and digits".into());
        }
        Ok(Vin(vin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Vin {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Vin::parse(&s)
    }
}

impl From<Vin> for String {
    fn from(vin: Vin) -> String {
        vin.0
    }
}

/// The writable fields, validated: what POST creates and PUT replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleInput {
    pub vin: Vin,
    pub name: String,
    pub make: String,
    pub model: String,
    pub year: i32,
    pub license_plate: Option<String>,
    pub status: VehicleStatus,
    pub odometer_km: i64,
}

/// Largest odometer reading accepted (10 million km).
pub const MAX_ODOMETER_KM: i64 = 10_000_000;

impl VehicleInput {
    /// Validates a POST body, reporting every bad field at once (422).
    /// `license_plate` may be absent or null; `status` defaults to `active`, `odometer_km` to 0.
    pub fn parse(body: Value, now: Timestamp) -> Result<VehicleInput, ApiError> {
        VehicleInput::parse_as(body, now, None)
    }

    /// Validates the body of a PUT (or a PATCH once merged into the stored vehicle):
    /// every writable field is required (`license_plate` may be `null`), and the
    /// server-owned fields of the representation may be sent back unchanged (a GET
    /// body can be PUT back), never changed. Every problem in one 422.
    pub fn parse_replacement(body: Value, now: Timestamp, stored: &Vehicle) -> Result<VehicleInput, ApiError> {
        VehicleInput::parse_as(body, now, Some(stored))
    }

    /// The one set of field rules; `replacing` says whether a vehicle is being replaced.
    fn parse_as(body: Value, now: Timestamp, replacing: Option<&Vehicle>) -> Result<VehicleInput, ApiError> {
        let latest_year = i64::from(now.year()) + 1;
        let mut fields = Fields::new(body)?;
        let vin =
            fields.required("vin", |v| v.as_str().ok_or_else(|| "must be a string".to_owned()).and_then(Vin::parse));
        let name = fields.required("name", |v| text(v, 100));
        let make = fields.required("make", |v| text(v, 50));
        let model = fields.required("model", |v| text(v, 50));
        let year = fields.required("year", |v| integer(v, 1900..=latest_year));
        let plate = |v: &Value| match v {
            Value::Null => Ok(None),
            v => text(v, 20).map(Some),
        };
        let status_of = |v: &Value| v.as_str().ok_or_else(VehicleStatus::expected).and_then(VehicleStatus::from_str);
        let odometer = |v: &Value| integer(v, 0..=MAX_ODOMETER_KM);
        // A replacement names every writable field: a default would silently overwrite stored data.
        let (license_plate, status, odometer_km) = match replacing {
            None => (
                fields.optional("license_plate", plate).map(Option::flatten),
                fields.optional("status", status_of).map(|s| s.unwrap_or(VehicleStatus::Active)),
                fields.optional("odometer_km", odometer).map(|km| km.unwrap_or(0)),
            ),
            Some(_) => (
                fields.present("license_plate", plate),
                fields.required("status", status_of),
                fields.required("odometer_km", odometer),
            ),
        };
        if let Some(stored) = replacing {
            let representation = serde_json::to_value(stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
            for field in REPRESENTED_SERVER_FIELDS {
                fields.unchanged(field, &representation[field]);
            }
        }
        fields.finish(&SERVER_OWNED_FIELDS)?;
        // finish() succeeded, so every field above parsed.
        let missing = || ApiError::Internal("validated field missing".into());
        Ok(VehicleInput {
            vin: vin.ok_or_else(missing)?,
            name: name.ok_or_else(missing)?,
            make: make.ok_or_else(missing)?,
            model: model.ok_or_else(missing)?,
            year: year.and_then(|y| i32::try_from(y).ok()).ok_or_else(missing)?,
            license_plate: license_plate.ok_or_else(missing)?,
            status: status.ok_or_else(missing)?,
            odometer_km: odometer_km.ok_or_else(missing)?,
        })
    }

    /// Applies a JSON Merge Patch (RFC 7396) to `stored` and validates the result as
    /// a replacement: `null` removes a member (so `"license_plate": null` clears the
    /// plate, and removing a required field is a 422), a non-object patch replaces
    /// the whole document (a 422 too).
    pub fn parse_merge_patch(patch: &Value, now: Timestamp, stored: &Vehicle) -> Result<VehicleInput, ApiError> {
        let mut merged = serde_json::to_value(stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
        merge_patch(&mut merged, patch);
        // `license_plate` is nullable: removed by the patch means cleared, not missing.
        if let Value::Object(members) = &mut merged {
            members.entry("license_plate").or_insert(Value::Null);
        }
        VehicleInput::parse_replacement(merged, now, stored)
    }
}

/// RFC 7396 §2: merges `patch` into `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(members) = target else { return };
    for (name, value) in patch {
        if value.is_null() {
            members.remove(name);
        } else {
            merge_patch(members.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The server-owned fields a vehicle's representation carries (a GET body has them).
const REPRESENTED_SERVER_FIELDS: [&str; 4] = ["id", "version", "created_at", "updated_at"];

/// A vehicle as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub id: String,
    pub vin: Vin,
    pub name: String,
    pub make: String,
    pub model: String,
    pub year: i32,
    pub license_plate: Option<String>,
    pub status: VehicleStatus,
    pub odometer_km: i64,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Vehicle {
    /// A new vehicle (version 1) from validated input.
    pub fn create(input: VehicleInput, now: Timestamp) -> Vehicle {
        Vehicle::with_input(ids::new_sortable_id(ID_PREFIX), input, 1, now, now)
    }

    /// This vehicle with its writable fields replaced and its version bumped.
    pub fn replaced(&self, input: VehicleInput, now: Timestamp) -> Vehicle {
        Vehicle::with_input(self.id.clone(), input, self.version + 1, self.created_at, now)
    }

    fn with_input(
        id: String,
        input: VehicleInput,
        version: u64,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Vehicle {
        Vehicle {
            id,
            vin: input.vin,
            name: input.name,
            make: input.make,
            model: input.model,
            year: input.year,
            license_plate: input.license_plate,
            status: input.status,
            odometer_km: input.odometer_km,
            version,
            created_at,
            updated_at,
        }
    }

    /// The strong ETag of this version: `"<version>"`.
    pub fn etag(&self) -> String {
        fleetgate_api::if_match::etag(self.version)
    }
}

/// A vehicle item's own attributes: its keys, the status index's keys, and
/// `version` for the writes' conditions (the vehicle is its body, see
/// `fleetgate_api::stored`).
#[derive(Debug, Serialize)]
struct VehicleKeys {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    version: u64,
}

impl VehicleKeys {
    fn new(tenant: &TenantId, v: &Vehicle) -> VehicleKeys {
        VehicleKeys {
            pk: tenant.to_string(),
            sk: vehicle_sk(&v.id),
            gsi1pk: status_partition(tenant, v.status),
            gsi1sk: v.id.clone(),
            version: v.version,
        }
    }
}

/// The item that owns a VIN within a tenant.
#[derive(Debug, Serialize, Deserialize)]
struct VinItem {
    pk: String,
    sk: String,
    vehicle_id: String,
}

pub(crate) fn vehicle_sk(id: &str) -> String {
    format!("vehicle#{id}")
}

fn vin_sk(vin: &Vin) -> String {
    format!("vin#{}", vin.as_str())
}

fn status_partition(tenant: &TenantId, status: VehicleStatus) -> String {
    format!("{tenant}#vehicle-status#{status}")
}

/// Why a write was refused.
#[derive(Debug)]
pub enum WriteError {
    /// The vehicle does not exist (PUT).
    NotFound,
    /// `If-Match` named another version.
    Stale,
    /// Another vehicle of the tenant has this VIN: that vehicle's id, when it could be read.
    DuplicateVin {
        vin: Vin,
        existing_vehicle_id: Option<String>,
    },
    /// The change is not valid against the stored vehicle (a 422).
    Invalid(ApiError),
    Db(DbError),
}

impl From<DbError> for WriteError {
    fn from(err: DbError) -> Self {
        WriteError::Db(err)
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> ApiError {
        match err {
            WriteError::NotFound => ApiError::NotFound { resource: "vehicle" },
            WriteError::Stale => ApiError::PreconditionFailed,
            WriteError::DuplicateVin { vin, existing_vehicle_id } => {
                ApiError::VinTaken { vin: vin.as_str().to_owned(), existing_vehicle_id }
            }
            WriteError::Invalid(err) => err,
            WriteError::Db(db) => ApiError::from(db),
        }
    }
}

/// Vehicles in the fleet table (`FLEET_TABLE`).
#[derive(Clone, Debug)]
pub struct VehicleStore {
    client: Client,
    table: String,
}

impl VehicleStore {
    pub fn new(client: Client, table: String) -> VehicleStore {
        VehicleStore { client, table }
    }

    pub fn from_env(client: Client) -> Result<VehicleStore, ConfigError> {
        Ok(VehicleStore::new(client, env_var("FLEET_TABLE")?))
    }

    /// A tenant's vehicle; another tenant's id is simply not found.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Vehicle>, DbError> {
        if !ids::is_sortable_id(ID_PREFIX, id) {
            return Ok(None);
        }
        table::get(&self.client, &self.table, tenant, vehicle_sk(id)).await
    }

    /// The tenant's vehicle with `vin`: the VIN's uniqueness item names it, then the
    /// vehicle itself (two strongly consistent GetItems; a VIN index would be one
    /// eventually consistent read that could miss a vehicle created a moment ago).
    pub async fn find_by_vin(&self, tenant: &TenantId, vin: &Vin) -> Result<Option<Vehicle>, DbError> {
        let Some(holder) = table::get::<VinItem>(&self.client, &self.table, tenant, vin_sk(vin)).await? else {
            return Ok(None);
        };
        // A VIN moved by a concurrent PUT may name a vehicle that no longer has it.
        Ok(self.get(tenant, &holder.vehicle_id).await?.filter(|vehicle| &vehicle.vin == vin))
    }

    /// One page of a tenant's vehicles in creation order, optionally of one status,
    /// and where the next page starts (`None` on the last page).
    pub async fn list(
        &self,
        tenant: &TenantId,
        status: Option<VehicleStatus>,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<Vehicle>, Option<Position>), DbError> {
        let (query, key) = match status {
            Some(status) => (
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(STATUS_INDEX.name)
                    .key_condition_expression("gsi1pk = :partition")
                    .expression_attribute_values(
                        ":partition",
                        serde_dynamo::to_attribute_value(status_partition(tenant, status))?,
                    ),
                STATUS_INDEX.key,
            ),
            None => (tenant_prefix_query(&self.client, &self.table, tenant.as_str(), "vehicle#"), table::KEY),
        };
        query_page(query, key, limit, start).await
    }

    /// Stores a new vehicle and claims its VIN, with `extra` items (audit,
    /// idempotency) in the same transaction.
    pub async fn create(
        &self,
        tenant: &TenantId,
        vehicle: &Vehicle,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), WriteError> {
        let mut items = vec![self.put_vehicle(tenant, vehicle, None)?, self.claim_vin(tenant, vehicle)?];
        items.extend(extra);
        let result = self
            .write(items, |err| {
                // The vehicle's own id taken means this write already happened (its VIN too).
                if err.condition_failed_at(1) && !err.is_own_earlier_create() {
                    Some(WriteError::DuplicateVin { vin: vehicle.vin.clone(), existing_vehicle_id: None })
                } else {
                    None
                }
            })
            .await;
        match result {
            Err(WriteError::Db(err)) if err.is_own_earlier_create() => Ok(()),
            Err(WriteError::DuplicateVin { vin, .. }) => Err(self.duplicate(tenant, vin).await),
            other => other,
        }
    }

    /// The conflict for `vin`, naming the vehicle that holds it (one GetItem, only on a conflict).
    async fn duplicate(&self, tenant: &TenantId, vin: Vin) -> WriteError {
        let holder = table::get::<VinItem>(&self.client, &self.table, tenant, vin_sk(&vin)).await;
        WriteError::DuplicateVin { existing_vehicle_id: holder.ok().flatten().map(|item| item.vehicle_id), vin }
    }

    /// Updates a vehicle: `change` turns the stored vehicle into its new writable
    /// fields (a PUT body, or a merge patch applied to it). With `if_match`, only if
    /// it matches the stored version (else 412, checked before `change`'s validation);
    /// without, the write is still conditioned on the version read, and a lost race
    /// re-reads and re-applies `change`, so a PATCH never undoes a concurrent write
    /// to other fields. `extra(next)` (audit, the change's events) is written in the
    /// same transaction.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &str,
        if_match: Option<&IfMatch>,
        change: impl Fn(&Vehicle) -> Result<VehicleInput, ApiError>,
        extra: impl Fn(&Vehicle) -> Result<Vec<TransactWriteItem>, DbError>,
    ) -> Result<Vehicle, WriteError> {
        for _ in 0..=CONFLICT_RETRIES {
            let current = self.get(tenant, id).await?.ok_or(WriteError::NotFound)?;
            if if_match.is_some_and(|tags| !tags.matches(current.version)) {
                return Err(WriteError::Stale);
            }
            let input = change(&current).map_err(WriteError::Invalid)?;
            let next = current.replaced(input, Timestamp::now());
            let mut items = vec![self.put_vehicle(tenant, &next, Some(current.version))?];
            if next.vin != current.vin {
                items.push(self.release_vin(tenant, &current)?);
                items.push(self.claim_vin(tenant, &next)?);
            }
            // The VIN claim, when there is one, is the last item before the extra ones.
            let duplicate_at = items.len() - 1;
            items.extend(extra(&next)?);
            let vin_changed = next.vin != current.vin;
            let result = self
                .write(items, |err| {
                    (vin_changed && err.condition_failed_at(duplicate_at))
                        .then(|| WriteError::DuplicateVin { vin: next.vin.clone(), existing_vehicle_id: None })
                })
                .await;
            match result {
                Ok(()) => return Ok(next),
                Err(WriteError::DuplicateVin { vin, .. }) => return Err(self.duplicate(tenant, vin).await),
                // Someone else wrote first: re-read, then If-Match decides (412) or the change is re-applied.
                Err(WriteError::Db(err)) if err.condition_failed_at(0) || err.is_conflict() => {
                    continue;
                }
                Err(other) => return Err(other),
            }
        }
        // Only reachable under sustained contention on one vehicle: transient, so 503.
        Err(WriteError::Db(DbError::Unavailable("vehicle kept changing during the update".into())))
    }

    /// Runs a transaction, retrying a lost race; `classify` turns a cancellation into a domain error.
    async fn write(
        &self,
        items: Vec<TransactWriteItem>,
        classify: impl Fn(&DbError) -> Option<WriteError>,
    ) -> Result<(), WriteError> {
        let mut attempt = 0;
        loop {
            match transact_write(&self.client, items.clone()).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    if let Some(domain) = classify(&err) {
                        return Err(domain);
                    }
                    if err.is_conflict() && !err.is_condition_failure() && attempt < CONFLICT_RETRIES {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt as u64)).await;
                        continue;
                    }
                    return Err(WriteError::Db(err));
                }
            }
        }
    }

    /// Puts the vehicle item: new (`expected_version` = None) or replacing exactly that version.
    fn put_vehicle(
        &self,
        tenant: &TenantId,
        vehicle: &Vehicle,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, DbError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(fleetgate_api::stored::item(&VehicleKeys::new(tenant, vehicle), vehicle)?));
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(version) => put
                .condition_expression("attribute_exists(sk) AND version = :expected")
                .expression_attribute_values(":expected", serde_dynamo::to_attribute_value(version)?),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(|e| DbError::Failed(Box::new(e)))?).build())
    }

    fn claim_vin(&self, tenant: &TenantId, vehicle: &Vehicle) -> Result<TransactWriteItem, DbError> {
        let item = VinItem { pk: tenant.to_string(), sk: vin_sk(&vehicle.vin), vehicle_id: vehicle.id.clone() };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn release_vin(&self, tenant: &TenantId, vehicle: &Vehicle) -> Result<TransactWriteItem, DbError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", serde_dynamo::to_attribute_value(tenant)?)
            .key("sk", serde_dynamo::to_attribute_value(vin_sk(&vehicle.vin))?)
            .condition_expression("vehicle_id = :id")
            .expression_attribute_values(":id", serde_dynamo::to_attribute_value(&vehicle.id)?)
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// The `{id}` of a vehicle path; a malformed one is a 404 (checked before the body is read).
pub fn path_vehicle_id(req: &lambda_http::Request) -> Result<String, ApiError> {
    use lambda_http::RequestExt;
    req.path_parameters_ref()
        .and_then(|params| params.first("id"))
        .filter(|id| ids::is_sortable_id(ID_PREFIX, id))
        .map(str::to_owned)
        .ok_or(ApiError::NotFound { resource: "vehicle" })
}

/// `PUT` and `PATCH /vehicles/{id}` alike, for the `id` of [`path_vehicle_id`]: `If-Match`, the update
/// with `change` (the request's body turned into the new writable fields against
/// the stored vehicle), its audit record and its `vehicle.updated` event in the
/// same transaction, and the answer with the new `ETag`. `action` names the change in the log.
#[allow(clippy::too_many_arguments)]
pub async fn update_from_request(
    store: &VehicleStore,
    gate: &fleetgate_api::http::Gate,
    outbox: &Outbox,
    call: &fleetgate_api::http::Call,
    req: &lambda_http::Request,
    id: &str,
    action: &str,
    change: impl Fn(&Vehicle, Timestamp) -> Result<VehicleInput, ApiError>,
) -> Result<lambda_http::Response<lambda_http::Body>, ApiError> {
    let if_match = request_if_match(req.headers())?;
    let audit = gate.audit_success(call, id)?;
    let now = Timestamp::now();
    let tenant = &call.auth.tenant_id;
    let apply = |stored: &Vehicle| change(stored, now);
    let extra = |next: &Vehicle| {
        let mut items = vec![audit.clone()];
        items.extend(outbox.items(tenant, &[EventType::VehicleUpdated], next, now)?);
        Ok(items)
    };
    let vehicle = store.update(tenant, id, if_match.as_ref(), apply, extra).await?;
    tracing::info!(vehicle_id = %vehicle.id, version = vehicle.version, action, "vehicle updated");
    vehicle_response(http::StatusCode::OK, &vehicle)
}

/// A single vehicle as an HTTP response, with its `ETag`.
pub fn vehicle_response(
    status: http::StatusCode,
    vehicle: &Vehicle,
) -> Result<lambda_http::Response<lambda_http::Body>, ApiError> {
    fleetgate_api::http::versioned_response(status, vehicle, vehicle.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-29T00:00:00Z").unwrap()
    }

    fn valid() -> Value {
        json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16",
               "year": 2022, "license_plate": "AB-123", "status": "active", "odometer_km": 120000})
    }

    fn field_errors(body: Value) -> Vec<(String, String)> {
        match VehicleInput::parse(body, now()) {
            Err(ApiError::ValidationFailed(errors)) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn the_spec_example_is_valid() {
        let input = VehicleInput::parse(valid(), now()).unwrap();
        assert_eq!(input.vin.as_str(), "1HGCM82633A004352");
        assert_eq!(input.status, VehicleStatus::Active);
        assert_eq!(input.license_plate.as_deref(), Some("AB-123"));
        assert_eq!(input.odometer_km, 120000);
    }

    #[test]
    fn optional_fields_default() {
        let input = VehicleInput::parse(
            json!({"vin": "1hgcm82633a004352", "name": "T", "make": "M", "model": "X", "year": 2027}),
            now(),
        )
        .unwrap();
        assert_eq!(input.vin.as_str(), "1HGCM82633A004352", "VINs are stored upper-case");
        assert_eq!((input.status, input.odometer_km, input.license_plate), (VehicleStatus::Active, 0, None));
    }

    #[test]
    fn every_rule_is_reported_with_its_field() {
        let mut body = valid();
        body["vin"] = json!("1HGCM82633A00435O");
        body["year"] = json!(2028);
        body["status"] = json!("parked");
        body["odometer_km"] = json!(-1);
        body["name"] = json!("x".repeat(101));
        body["id"] = json!("veh_forged");
        body["version"] = json!(7);
        body["color"] = json!("red");
        let errors = field_errors(body);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["vin", "name", "year", "status", "odometer_km", "color", "id", "version"]);
        assert!(errors.iter().any(|(f, m)| f == "id" && m.contains("set by the server")));
        assert!(errors.iter().any(|(f, m)| f == "color" && m.contains("not a known field")));
    }

    #[test]
    fn vins_are_checked() {
        assert!(Vin::parse("1HGCM82633A004352").is_ok());
        for bad in [
            "",
            "1HGCM82633A00435",
            "1HGCM82633A0043521",
            "1HGCM82633A00435I",
            "1HGCM82633A00435Q",
            "1HGCM8263-A004352",
        ] {
            assert!(Vin::parse(bad).is_err(), "{bad}");
        }
    }

    fn stored() -> Vehicle {
        let input = VehicleInput::parse(valid(), now()).unwrap();
        Vehicle::create(input, now())
    }

    #[test]
    fn put_requires_every_writable_field_and_names_the_missing_ones_at_once() {
        let mut body = valid();
        body.as_object_mut()
            .unwrap()
            .retain(|name, _| ["vin", "name", "make", "model", "year"].contains(&name.as_str()));
        let Err(ApiError::ValidationFailed(errors)) = VehicleInput::parse_replacement(body, now(), &stored()) else {
            panic!("a PUT without every writable field is a 422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["license_plate", "status", "odometer_km"]);
        let mut cleared = valid();
        cleared["license_plate"] = Value::Null;
        assert_eq!(VehicleInput::parse_replacement(cleared, now(), &stored()).unwrap().license_plate, None);
    }

    #[test]
    fn a_get_body_can_be_put_back_but_server_fields_cannot_change() {
        let stored = stored();
        let mut body = serde_json::to_value(&stored).unwrap();
        body["odometer_km"] = json!(130000);
        assert_eq!(VehicleInput::parse_replacement(body.clone(), now(), &stored).unwrap().odometer_km, 130000);
        body["version"] = json!(7);
        body["id"] = json!("veh_01JDQ6W1ZK9Y3M4N5P6Q7R8S9T");
        body["tenant_id"] = json!("acme");
        let Err(ApiError::ValidationFailed(errors)) = VehicleInput::parse_replacement(body, now(), &stored) else {
            panic!("changed server fields are a 422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "version", "tenant_id"]);
        assert!(errors[1].message.contains("(it is 1)"), "{:?}", errors[1]);
    }

    #[test]
    fn merge_patch_changes_only_what_it_names() {
        let stored = stored();
        let patched = VehicleInput::parse_merge_patch(&json!({"odometer_km": 50}), now(), &stored).unwrap();
        assert_eq!((patched.odometer_km, patched.license_plate.as_deref()), (50, Some("AB-123")));
        let cleared = VehicleInput::parse_merge_patch(&json!({"license_plate": null}), now(), &stored).unwrap();
        assert_eq!((cleared.license_plate, cleared.odometer_km), (None, 120000));
        for (patch, field) in
            [(json!({"name": null}), "name"), (json!({"colour": "red"}), "colour"), (json!({"version": 9}), "version")]
        {
            let Err(ApiError::ValidationFailed(errors)) = VehicleInput::parse_merge_patch(&patch, now(), &stored)
            else {
                panic!("{patch} is a 422")
            };
            assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), [field], "{patch}");
        }
        assert!(VehicleInput::parse_merge_patch(&json!([1]), now(), &stored).is_err(), "a non-object patch");
    }

    #[test]
    fn merge_patch_is_rfc_7396() {
        // RFC 7396 appendix A, a selection.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!(["a", "b"]), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ] {
            let mut doc = target.clone();
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, result, "{target} + {patch}");
        }
    }

    proptest! {
        #[test]
        fn any_json_body_is_accepted_or_a_422_never_a_panic(
            vin in ".{0,20}", name in ".{0,120}", year in -5000i64..5000, odometer in any::<i64>(), status in ".{0,10}"
        ) {
            let body = json!({"vin": vin, "name": name, "make": "M", "model": "X", "year": year,
                              "odometer_km": odometer, "status": status});
            match VehicleInput::parse(body, now()) {
                Ok(input) => {
                    prop_assert!((1900..=2027).contains(&input.year));
                    prop_assert!(input.odometer_km >= 0);
                    prop_assert_eq!(input.vin.as_str().len(), 17);
                }
                Err(err) => prop_assert_eq!(err.status().as_u16(), 422),
            }
        }
    }
}
