//! Inspections: a vehicle checked against a template. The server derives the
//! outcome and the defects, and records which key submitted it.
//!
//! Item: `pk = <tenant>`, `sk = inspection#<id>`, plus one index entry per list
//! filter, each sorted by `<performed_at>#<id>` so lists read newest first:
//! - `gsi1`: all of the tenant's inspections;
//! - `gsi2`: by vehicle; `gsi3`: by outcome; `gsi4`: by vehicle and outcome.
//!
//! The inspection itself is the item's `body` (see `fleetgate_api::stored`).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use fleetgate_api::dynamo::{ConfigError, DbError, env_var, transact_write};
use fleetgate_api::error::{ApiError, FieldError};
use fleetgate_api::input::{Fields, all_valid, integer, text};
use fleetgate_api::list::readable_item;
use fleetgate_api::list::{Position, query_page};
use fleetgate_api::stored::Projection;
use fleetgate_api::{Timestamp, ids};
use fleetgate_scopes::TenantId;

use crate::table::{GSI1, GSI2, GSI3, GSI4, Index};
use crate::templates::{self, Template};
use crate::vehicles::{self, MAX_ODOMETER_KM, Vehicle};

pub const ID_PREFIX: &str = "insp_";
/// How far in the future `performed_at` may be, for devices whose clocks run fast.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);
pub const MAX_RESULTS: usize = 200;

/// Kind of inspection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionType {
    PreTrip,
    PostTrip,
    Periodic,
}

/// The answer for one checklist item.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pass,
    Fail,
    Na,
}

/// Derived: `fail` as soon as one item failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Result<Outcome, String> {
        match s {
            "pass" => Ok(Outcome::Pass),
            "fail" => Ok(Outcome::Fail),
            _ => Err("must be pass or fail".into()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    pub item_id: String,
    pub status: ItemStatus,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defect {
    pub item_id: String,
    pub label: String,
    pub note: Option<String>,
}

/// The submitted fields, shape-checked but not yet checked against the tenant's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectionInput {
    pub vehicle_id: String,
    pub template_id: String,
    pub inspection_type: InspectionType,
    pub inspector: String,
    pub performed_at: Timestamp,
    pub odometer_km: i64,
    pub location: Option<String>,
    pub results: Vec<ItemResult>,
    pub signature: Option<String>,
}

/// An inspection as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: String,
    pub vehicle_id: String,
    pub template_id: String,
    pub template_version: u64,
    #[serde(rename = "type")]
    pub inspection_type: InspectionType,
    pub inspector: String,
    pub performed_at: Timestamp,
    pub odometer_km: i64,
    pub location: Option<String>,
    pub results: Vec<ItemResult>,
    pub signature: Option<String>,
    pub outcome: Outcome,
    pub defects: Vec<Defect>,
    pub submitted_by_key_id: String,
    pub created_at: Timestamp,
}

/// Fields the server sets; sending them is a 422 that names them.
const SERVER_OWNED_FIELDS: [&str; 6] =
    ["id", "template_version", "outcome", "defects", "submitted_by_key_id", "created_at"];

fn enum_value<T: serde::de::DeserializeOwned>(value: &Value, expected: &str) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|_| format!("must be one of: {expected}"))
}

/// A submission read in one pass: every problem of its shape, plus what the
/// checks against stored data need (the ids it refers to and its answers), so
/// that one 422 can list everything wrong with it.
#[derive(Debug)]
pub struct Submission {
    /// Set when the body's shape is valid (its answers included).
    input: Option<InspectionInput>,
    /// The referenced ids, when they were readable (else already an error).
    pub vehicle_id: Option<String>,
    pub template_id: Option<String>,
    /// Every answer whose `item_id` could be read, by index in `results`, even
    /// if another of its fields failed: it counts as answered for the item checks.
    answered: Vec<(usize, String)>,
    errors: Vec<FieldError>,
}

impl Submission {
    /// Reads the body, collecting every shape problem; fails only when the body is
    /// not a JSON object (nothing else can be said about it then).
    pub fn read(body: Value, now: Timestamp) -> Result<Submission, ApiError> {
        let mut fields = Fields::new(body)?;
        let vehicle_id = fields.required("vehicle_id", |v| {
            v.as_str()
                .filter(|id| ids::is_sortable_id(vehicles::ID_PREFIX, id))
                .map(str::to_owned)
                .ok_or_else(|| "must be a vehicle id (veh_…)".to_owned())
        });
        let template_id = fields.required("template_id", |v| text(v, 64));
        let inspection_type = fields.required("type", |v| enum_value(v, "pre_trip, post_trip, periodic"));
        let inspector = fields.required("inspector", |v| text(v, 100));
        let performed_at = fields.required("performed_at", |v| {
            let at = v
                .as_str()
                .and_then(Timestamp::parse)
                .ok_or("must be an RFC 3339 timestamp from 1970 to 9999 (UTC), e.g. 2026-11-01T08:00:00Z")?;
            if at > now.plus(CLOCK_SKEW) {
                return Err("must not be in the future".to_owned());
            }
            Ok(at)
        });
        let odometer_km = fields.required("odometer_km", |v| integer(v, 0..=MAX_ODOMETER_KM));
        let location = fields.optional("location", |v| text(v, 200));
        let results = fields.required("results", |v| v.as_array().cloned().ok_or_else(|| "must be a list".to_owned()));
        let signature = fields.optional("signature", |v| text(v, 200));
        let mut errors = fields.into_errors(&SERVER_OWNED_FIELDS);
        let (answers, answered) = results.map(|results| parse_results(results, &mut errors)).unwrap_or_default();
        let input = match (vehicle_id.clone(), template_id.clone(), inspection_type, inspector, performed_at) {
            (Some(vehicle_id), Some(template_id), Some(inspection_type), Some(inspector), Some(performed_at))
                if errors.is_empty() =>
            {
                // No error: every optional field parsed too.
                match (odometer_km, location, signature) {
                    (Some(odometer_km), Some(location), Some(signature)) => Some(InspectionInput {
                        vehicle_id,
                        template_id,
                        inspection_type,
                        inspector,
                        performed_at,
                        odometer_km,
                        location,
                        results: answers,
                        signature,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Submission { input, vehicle_id, template_id, answered, errors })
    }

    /// The inspection, or one 422 with every problem: the body's shape, the
    /// `unknown` references (vehicle or template not found), and, when the template
    /// is known, each missing, duplicate or unknown answer as its own entry.
    pub fn check(
        self,
        template: Option<&Template>,
        unknown: Vec<FieldError>,
        submitted_by_key_id: &str,
        now: Timestamp,
    ) -> Result<Inspection, ApiError> {
        let mut errors = self.errors;
        errors.extend(unknown);
        if let Some(template) = template {
            check_answers(&self.answered, template, &mut errors);
        }
        all_valid(errors)?;
        let (Some(input), Some(template)) = (self.input, template) else {
            return Err(ApiError::Internal("a valid submission without its input or template".into()));
        };
        Ok(input.into_inspection(template, submitted_by_key_id, now))
    }
}

/// Each answer of `answered` against `template`: unknown and repeated items at
/// their answer (`results[i].item_id`), unanswered required items at `results`.
fn check_answers(answered: &[(usize, String)], template: &Template, errors: &mut Vec<FieldError>) {
    let known: HashSet<&str> = template.items.iter().map(|i| i.id.as_str()).collect();
    let mut seen = HashSet::new();
    for (index, item_id) in answered {
        let field = format!("results[{index}].item_id");
        if !known.contains(item_id.as_str()) {
            let message = format!("'{item_id}' is not an item of template {}", template.id);
            errors.push(FieldError::about_item(field, message, item_id));
        } else if !seen.insert(item_id.as_str()) {
            errors.push(FieldError::about_item(field, format!("'{item_id}' is answered more than once"), item_id));
        }
    }
    for item in template.items.iter().filter(|i| i.required && !seen.contains(i.id.as_str())) {
        let message = format!("required item '{}' is not answered", item.id);
        errors.push(FieldError::about_item("results", message, &item.id));
    }
}

impl InspectionInput {
    /// Shape checks of the body alone (422 listing every bad field).
    pub fn parse(body: Value, now: Timestamp) -> Result<InspectionInput, ApiError> {
        let submission = Submission::read(body, now)?;
        all_valid(submission.errors)?;
        submission.input.ok_or_else(|| ApiError::Internal("a valid body without its input".into()))
    }

    /// Checks the answers against `template` and derives outcome and defects.
    /// Every required item answered exactly once, no unknown or duplicate items.
    pub fn against(
        self,
        template: &Template,
        submitted_by_key_id: &str,
        now: Timestamp,
    ) -> Result<Inspection, ApiError> {
        let answered: Vec<(usize, String)> =
            self.results.iter().enumerate().map(|(index, r)| (index, r.item_id.clone())).collect();
        let mut errors = Vec::new();
        check_answers(&answered, template, &mut errors);
        all_valid(errors)?;
        Ok(self.into_inspection(template, submitted_by_key_id, now))
    }

    /// The inspection of answers already checked against `template`.
    fn into_inspection(self, template: &Template, submitted_by_key_id: &str, now: Timestamp) -> Inspection {
        let labels: HashMap<&str, &str> = template.items.iter().map(|i| (i.id.as_str(), i.label.as_str())).collect();
        let defects: Vec<Defect> = self
            .results
            .iter()
            .filter(|r| r.status == ItemStatus::Fail)
            .map(|r| Defect {
                item_id: r.item_id.clone(),
                label: labels.get(r.item_id.as_str()).map_or_else(|| r.item_id.clone(), |label| (*label).to_owned()),
                note: r.note.clone(),
            })
            .collect();
        Inspection {
            id: ids::new_sortable_id(ID_PREFIX),
            vehicle_id: self.vehicle_id,
            template_id: self.template_id,
            template_version: template.version,
            inspection_type: self.inspection_type,
            inspector: self.inspector,
            performed_at: self.performed_at,
            odometer_km: self.odometer_km,
            location: self.location,
            results: self.results,
            signature: self.signature,
            outcome: if defects.is_empty() { Outcome::Pass } else { Outcome::Fail },
            defects,
            submitted_by_key_id: submitted_by_key_id.to_owned(),
            created_at: now,
        }
    }
}

/// The answers that parsed, and the item id of every answer where it could be read.
fn parse_results(results: Vec<Value>, errors: &mut Vec<FieldError>) -> (Vec<ItemResult>, Vec<(usize, String)>) {
    if results.is_empty() || results.len() > MAX_RESULTS {
        errors.push(FieldError::new("results", format!("must hold 1 to {MAX_RESULTS} answers")));
        return (Vec::new(), Vec::new());
    }
    let (mut parsed, mut answered) = (Vec::new(), Vec::new());
    for (index, value) in results.into_iter().enumerate() {
        let Ok(mut fields) = Fields::new(value) else {
            errors.push(FieldError::new(format!("results[{index}]"), "must be an object"));
            continue;
        };
        let item_id = fields.required("item_id", |v| text(v, 64));
        let status = fields.required("status", |v| enum_value(v, "pass, fail, na"));
        let note = fields.optional("note", |v| text(v, 500));
        if let Some(item_id) = &item_id {
            answered.push((index, item_id.clone()));
        }
        if let Err(ApiError::ValidationFailed(item_errors)) = fields.finish(&[]) {
            errors.extend(item_errors.into_iter().map(|e| {
                let field = format!("results[{index}].{}", e.field);
                match &item_id {
                    Some(item_id) => FieldError::about_item(field, e.message, item_id),
                    None => FieldError::new(field, e.message),
                }
            }));
            continue;
        }
        if let (Some(item_id), Some(status), Some(note)) = (item_id, status, note) {
            parsed.push(ItemResult { item_id, status, note });
        }
    }
    (parsed, answered)
}

/// The list filters of `GET /inspections`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InspectionFilter {
    pub vehicle_id: Option<String>,
    pub outcome: Option<Outcome>,
    /// Inclusive.
    pub performed_after: Option<Timestamp>,
    /// Exclusive.
    pub performed_before: Option<Timestamp>,
}

/// An inspection item's own attributes: its keys and index keys (the inspection is its body).
#[derive(Debug, Serialize)]
struct InspectionKeys {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
    gsi3pk: String,
    gsi3sk: String,
    gsi4pk: String,
    gsi4sk: String,
}

/// The index that serves a filter, and the partition in it.
fn partitions(tenant: &TenantId, vehicle_id: Option<&str>, outcome: Option<Outcome>) -> (Index, String) {
    match (vehicle_id, outcome) {
        (None, None) => (GSI1, format!("{tenant}#inspections")),
        (Some(vehicle), None) => (GSI2, format!("{tenant}#inspections#vehicle#{vehicle}")),
        (None, Some(outcome)) => (GSI3, format!("{tenant}#inspections#outcome#{}", outcome.as_str())),
        (Some(vehicle), Some(outcome)) => {
            (GSI4, format!("{tenant}#inspections#vehicle#{vehicle}#outcome#{}", outcome.as_str()))
        }
    }
}

impl InspectionKeys {
    fn new(tenant: &TenantId, inspection: &Inspection) -> InspectionKeys {
        let sort = format!("{}#{}", inspection.performed_at, inspection.id);
        let vehicle = Some(inspection.vehicle_id.as_str());
        let outcome = Some(inspection.outcome);
        InspectionKeys {
            pk: tenant.to_string(),
            sk: format!("inspection#{}", inspection.id),
            gsi1pk: partitions(tenant, None, None).1,
            gsi1sk: sort.clone(),
            gsi2pk: partitions(tenant, vehicle, None).1,
            gsi2sk: sort.clone(),
            gsi3pk: partitions(tenant, None, outcome).1,
            gsi3sk: sort.clone(),
            gsi4pk: partitions(tenant, vehicle, outcome).1,
            gsi4sk: sort,
        }
    }
}

/// The fields of [`Inspection`], which items stored before the `body` layout hold
/// as attributes (a test keeps this list in step with the struct).
const FIELDS: [&str; 15] = [
    "id",
    "vehicle_id",
    "template_id",
    "template_version",
    "type",
    "inspector",
    "performed_at",
    "odometer_km",
    "location",
    "results",
    "signature",
    "outcome",
    "defects",
    "submitted_by_key_id",
    "created_at",
];

/// What a list reads through each index (built once: lists run on every request).
static PROJECTIONS: std::sync::LazyLock<Vec<(&str, Projection)>> = std::sync::LazyLock::new(|| {
    [GSI1, GSI2, GSI3, GSI4].iter().map(|index| (index.name, Projection::new(index.key, &FIELDS))).collect()
});

/// Inspections in the fleet table (`FLEET_TABLE`).
#[derive(Clone, Debug)]
pub struct InspectionStore {
    client: Client,
    table: String,
}

impl InspectionStore {
    pub fn new(client: Client, table: String) -> InspectionStore {
        InspectionStore { client, table }
    }

    pub fn from_env(client: Client) -> Result<InspectionStore, ConfigError> {
        Ok(InspectionStore::new(client, env_var("FLEET_TABLE")?))
    }

    /// Stores a new inspection with `extra` items (audit, idempotency) in the same transaction.
    pub async fn create(
        &self,
        tenant: &TenantId,
        inspection: &Inspection,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), DbError> {
        let item = fleetgate_api::stored::item(&InspectionKeys::new(tenant, inspection), inspection)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(extra);
        match transact_write(&self.client, items).await {
            Err(err) if err.is_own_earlier_create() => Ok(()),
            other => other,
        }
    }

    /// The vehicle and the template an inspection names, in one round trip
    /// (BatchGetItem), both from `tenant`: another tenant's ids are not found.
    pub async fn vehicle_and_template(
        &self,
        tenant: &TenantId,
        vehicle_id: &str,
        template_id: &str,
    ) -> Result<(Option<Vehicle>, Option<Template>), DbError> {
        let vehicle_valid = ids::is_sortable_id(vehicles::ID_PREFIX, vehicle_id);
        let template_valid = templates::slug(&Value::String(template_id.to_owned())).is_ok();
        let mut keys = KeysAndAttributes::builder().consistent_read(true);
        let key = |sk: String| -> Result<HashMap<String, AttributeValue>, DbError> {
            Ok(HashMap::from([
                ("pk".to_owned(), serde_dynamo::to_attribute_value(tenant)?),
                ("sk".to_owned(), serde_dynamo::to_attribute_value(sk)?),
            ]))
        };
        if vehicle_valid {
            keys = keys.keys(key(vehicles::vehicle_sk(vehicle_id))?);
        }
        if template_valid {
            keys = keys.keys(key(templates::template_sk(template_id))?);
        }
        if !vehicle_valid && !template_valid {
            return Ok((None, None));
        }
        let keys = keys.build().map_err(|e| DbError::Failed(Box::new(e)))?;
        let mut request = self.client.batch_get_item().request_items(&self.table, keys);
        let (mut vehicle, mut template) = (None, None);
        // BatchGetItem may return some keys as unprocessed under load; ask again for those (bounded).
        for _ in 0..3 {
            let output = request.clone().send().await?;
            for item in output.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                match item.get("sk").and_then(|sk| sk.as_s().ok()) {
                    Some(sk) if sk.starts_with("vehicle#") => vehicle = readable_item::<Vehicle>(item),
                    Some(sk) if sk.starts_with("template#") => template = readable_item::<Template>(item),
                    _ => {}
                }
            }
            match output.unprocessed_keys.filter(|keys| !keys.is_empty()) {
                None => return Ok((vehicle, template)),
                Some(unprocessed) => request = self.client.batch_get_item().set_request_items(Some(unprocessed)),
            }
        }
        Err(DbError::Unavailable("DynamoDB left keys unprocessed three times".into()))
    }

    /// A tenant's inspection; another tenant's id is simply not found.
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Inspection>, DbError> {
        if !ids::is_sortable_id(ID_PREFIX, id) {
            return Ok(None);
        }
        crate::table::get(&self.client, &self.table, tenant, format!("inspection#{id}")).await
    }

    /// One page, newest `performed_at` first, from the index that serves `filter` (never a scan).
    pub async fn list(
        &self,
        tenant: &TenantId,
        filter: &InspectionFilter,
        limit: i32,
        start: Option<&Position>,
    ) -> Result<(Vec<Inspection>, Option<Position>), DbError> {
        let (index, partition) = partitions(tenant, filter.vehicle_id.as_deref(), filter.outcome);
        // Sort keys are "<performed_at>#<id>": "<t>" sorts before every key at t and after every key before t.
        let low = filter.performed_after.map(|t| t.to_string());
        let high = filter.performed_before.map(|t| t.to_string());
        let range = match (&low, &high) {
            (None, None) => "",
            (Some(_), None) => " AND #sort >= :low",
            (None, Some(_)) => " AND #sort < :high",
            (Some(_), Some(_)) => " AND #sort BETWEEN :low AND :high",
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression(format!("#partition = :partition{range}"))
            .expression_attribute_names("#partition", format!("{}pk", index.name))
            .expression_attribute_values(":partition", serde_dynamo::to_attribute_value(&partition)?)
            .scan_index_forward(false);
        if !range.is_empty() {
            query = query.expression_attribute_names("#sort", format!("{}sk", index.name));
        }
        if let Some(low) = low {
            query = query.expression_attribute_values(":low", serde_dynamo::to_attribute_value(low)?);
        }
        if let Some(high) = high {
            query = query.expression_attribute_values(":high", serde_dynamo::to_attribute_value(high)?);
        }
        let projection = PROJECTIONS.iter().find(|(name, _)| *name == index.name).map(|(_, p)| p);
        let query = projection.expect("every index has its projection").apply(query);
        query_page(query, index.key, limit, start).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::TemplateItem;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-29T12:00:00Z").unwrap()
    }

    fn template() -> Template {
        let item =
            |id: &str, required| TemplateItem { id: id.into(), label: id.to_uppercase(), required, category: None };
        Template {
            id: "tpl_pretrip".into(),
            name: "Pre-trip".into(),
            description: None,
            items: vec![item("brakes", true), item("tyres", true), item("radio", false)],
            version: 3,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn body(results: Value) -> Value {
        json!({"vehicle_id": "veh_01JDQ6W1ZK9Y3M4N5P6Q7R8S9T", "template_id": "tpl_pretrip", "type": "pre_trip",
               "inspector": "Ana Silva", "performed_at": "2026-11-29T08:00:00+01:00", "odometer_km": 120500,
               "location": "Depot 3", "results": results, "signature": "Ana Silva"})
    }

    fn field_errors(result: Result<impl std::fmt::Debug, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::ValidationFailed(errors)) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn the_projected_fields_are_exactly_the_inspections_fields() {
        let answers = json!([{"item_id": "brakes", "status": "pass"}, {"item_id": "tyres", "status": "pass"}]);
        let inspection =
            InspectionInput::parse(body(answers), now()).unwrap().against(&template(), "key_1", now()).unwrap();
        let json = serde_json::to_value(&inspection).unwrap();
        let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = FIELDS.to_vec();
        fields.sort_unstable();
        listed.sort_unstable();
        assert_eq!(fields, listed);
    }

    #[test]
    fn a_failed_item_makes_a_failed_inspection_with_its_defect() {
        let input = InspectionInput::parse(
            body(json!([{"item_id": "brakes", "status": "fail", "note": "soft pedal"}, {"item_id": "tyres", "status": "pass"}])),
            now(),
        )
        .unwrap();
        assert_eq!(input.performed_at.to_string(), "2026-11-29T07:00:00Z");
        let inspection = input.against(&template(), "key_x", now()).unwrap();
        assert_eq!(inspection.outcome, Outcome::Fail);
        assert_eq!(
            inspection.defects,
            [Defect { item_id: "brakes".into(), label: "BRAKES".into(), note: Some("soft pedal".into()) }]
        );
        assert_eq!((inspection.template_version, inspection.submitted_by_key_id.as_str()), (3, "key_x"));
        let as_json = serde_json::to_value(&inspection).unwrap();
        assert_eq!(as_json["type"], "pre_trip");
    }

    #[test]
    fn all_pass_or_na_is_a_pass() {
        let input = InspectionInput::parse(
            body(json!([{"item_id": "brakes", "status": "pass"}, {"item_id": "tyres", "status": "na"}])),
            now(),
        )
        .unwrap();
        let inspection = input.against(&template(), "k", now()).unwrap();
        assert_eq!((inspection.outcome, inspection.defects.len()), (Outcome::Pass, 0));
    }

    #[test]
    fn answers_must_match_the_template() {
        let input = InspectionInput::parse(
            body(json!([{"item_id": "brakes", "status": "pass"}, {"item_id": "brakes", "status": "fail"},
                        {"item_id": "wings", "status": "pass"}])),
            now(),
        )
        .unwrap();
        assert_eq!(
            field_errors(input.against(&template(), "k", now())),
            [
                ("results[1].item_id".to_owned(), "'brakes' is answered more than once".to_owned()),
                ("results[2].item_id".to_owned(), "'wings' is not an item of template tpl_pretrip".to_owned()),
                ("results".to_owned(), "required item 'tyres' is not answered".to_owned()),
            ]
        );
    }

    #[test]
    fn shape_errors_are_all_listed() {
        let mut bad = body(json!([{"item_id": "brakes", "status": "broken"}, {"status": "pass"}]));
        bad["performed_at"] = json!("2026-11-29T12:06:00Z");
        bad["type"] = json!("weekly");
        bad["odometer_km"] = json!(-5);
        bad["vehicle_id"] = json!("../etc");
        bad["outcome"] = json!("pass");
        let fields: Vec<String> =
            field_errors(InspectionInput::parse(bad, now())).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["vehicle_id", "type", "performed_at", "odometer_km", "outcome", "results[0].status", "results[1].item_id"]
        );
    }

    #[test]
    fn small_clock_skew_is_allowed() {
        let mut ahead = body(json!([{"item_id": "brakes", "status": "pass"}]));
        ahead["performed_at"] = json!("2026-11-29T12:04:00Z");
        assert!(InspectionInput::parse(ahead, now()).is_ok());
    }
}
