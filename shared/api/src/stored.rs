//! How records (vehicles, templates, inspections) are laid out in DynamoDB: the
//! attributes DynamoDB itself uses (keys, index keys, and any attribute a
//! condition names, such as `version`), plus the record exactly as the API
//! returns it, as one JSON string attribute, `body`.
//!
//! Why one string: a list answers up to 100 records. Stored field by field, each
//! record is a nested map that the SDK parses attribute by attribute into hash
//! maps, which serde_dynamo then converts into the struct: for a page of 25
//! inspections that was 2 ms of the function's CPU (profiled; SPEC §7 allows 1 ms
//! in all). As one string, the SDK parses a handful of attributes and serde_json
//! reads the record straight into its struct.
//!
//! The trade-off: a field inside `body` cannot appear in a DynamoDB expression,
//! so whatever an expression needs is also an attribute of its own (the keys
//! struct passed to [`item`]). Items written field by field (before this layout)
//! still read: [`record`] falls back to them.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dynamo::DbError;

/// The attribute that holds the record's JSON.
pub const BODY: &str = "body";

/// The item for `record`: `attributes` (keys and whatever expressions use) plus `body`.
pub fn item<A: Serialize, T: Serialize>(
    attributes: &A,
    record: &T,
) -> Result<HashMap<String, AttributeValue>, DbError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(attributes)?;
    let body = serde_json::to_string(record).map_err(|e| DbError::Failed(Box::new(e)))?;
    item.insert(BODY.to_owned(), AttributeValue::S(body));
    Ok(item)
}

/// The record an item holds: its `body`, or, for an item written before that
/// layout, its attributes (the record's fields; other attributes are ignored).
pub fn record<T: DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Result<T, String> {
    match item.get(BODY) {
        Some(AttributeValue::S(body)) => serde_json::from_str(body).map_err(|e| e.to_string()),
        _ => serde_dynamo::from_item(item).map_err(|e| e.to_string()),
    }
}

/// What a query reads of each record: the attributes a list needs to resume
/// (`key`), `body`, and the record's own field names, which items of the older
/// layout hold as attributes (absent names cost nothing). Everything else (the
/// other indexes' keys) stays in DynamoDB instead of being parsed by the SDK.
#[derive(Clone, Debug)]
pub struct Projection {
    expression: String,
    names: Vec<(String, String)>,
}

impl Projection {
    pub fn new(key: &[&str], fields: &[&str]) -> Projection {
        let mut attributes: Vec<&str> = key.iter().chain([&BODY]).chain(fields).copied().collect();
        attributes.dedup();
        // Placeholders throughout: several field names (`type`, `location`) are DynamoDB reserved words.
        let names: Vec<(String, String)> =
            attributes.iter().enumerate().map(|(i, name)| (format!("#p{i}"), (*name).to_owned())).collect();
        let expression = names.iter().map(|(placeholder, _)| placeholder.as_str()).collect::<Vec<_>>().join(", ");
        Projection { expression, names }
    }

    pub fn apply(&self, mut query: QueryFluentBuilder) -> QueryFluentBuilder {
        for (placeholder, name) in &self.names {
            query = query.expression_attribute_names(placeholder, name);
        }
        query.projection_expression(&self.expression)
    }

    /// The same projection on a single-item read.
    pub fn apply_to_get(&self, mut get: GetItemFluentBuilder) -> GetItemFluentBuilder {
        for (placeholder, name) in &self.names {
            get = get.expression_attribute_names(placeholder, name);
        }
        get.projection_expression(&self.expression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: String,
        parts: Vec<u32>,
        note: Option<String>,
    }

    #[derive(Serialize)]
    struct Keys<'a> {
        pk: &'a str,
        sk: &'a str,
        version: u64,
    }

    fn thing() -> Thing {
        Thing { id: "t_1".into(), parts: vec![3, 1], note: None }
    }

    #[test]
    fn a_record_round_trips_through_its_item_beside_its_own_attributes() {
        let item = item(&Keys { pk: "acme", sk: "thing#t_1", version: 4 }, &thing()).unwrap();
        assert_eq!(item["pk"], AttributeValue::S("acme".into()));
        assert_eq!(item["version"], AttributeValue::N("4".into()));
        assert_eq!(item[BODY], AttributeValue::S(r#"{"id":"t_1","parts":[3,1],"note":null}"#.into()));
        assert_eq!(record::<Thing>(item).unwrap(), thing());
    }

    #[test]
    fn an_item_stored_field_by_field_still_reads() {
        let mut legacy: HashMap<String, AttributeValue> = serde_dynamo::to_item(thing()).unwrap();
        legacy.insert("pk".into(), AttributeValue::S("acme".into()));
        assert_eq!(record::<Thing>(legacy).unwrap(), thing());
    }

    #[test]
    fn a_body_that_does_not_map_is_an_error_not_a_fallback() {
        let mut item = item(&Keys { pk: "acme", sk: "thing#t_1", version: 1 }, &thing()).unwrap();
        item.insert(BODY.into(), AttributeValue::S(r#"{"id":"t_1"}"#.into()));
        // The item also has no fields of its own to fall back on; the body decides.
        assert!(record::<Thing>(item).unwrap_err().contains("parts"));
    }

    #[test]
    fn a_projection_names_every_attribute_once_through_placeholders() {
        let projection = Projection::new(&["pk", "sk"], &["id", "type"]);
        assert_eq!(projection.expression, "#p0, #p1, #p2, #p3, #p4");
        let names: Vec<&str> = projection.names.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(names, ["pk", "sk", "body", "id", "type"]);
    }
}
