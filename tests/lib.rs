//! Test-only crate: see integration/ and e2e/.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// An item read directly from a table, as JSON; for a record stored with a
/// `body` (see `fleetgate_api::stored`), with the record's fields beside the
/// item's own attributes, so tests can check stored records field by field.
pub fn item_json(item: HashMap<String, AttributeValue>) -> Value {
    let mut value: Value = serde_dynamo::from_item(item).expect("an item maps to JSON");
    if let Some(body) = value.get(fleetgate_api::stored::BODY).and_then(Value::as_str) {
        let Value::Object(fields) = serde_json::from_str::<Value>(body).expect("a body is JSON") else {
            panic!("a body is a JSON object")
        };
        value.as_object_mut().expect("an item is an object").extend(fields);
    }
    value
}
