//! Access reviews (SPEC §10): the endpoints note which scopes each key uses (in the
//! usage table, at most hourly per function instance), and the provisioner's
//! `review_keys` turns that and the authorizer's `last_used_at` into findings.
//! Ages are set through the stores, never by waiting.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_api::http::Gate;
use fleetgate_api::keys::ApiKey;
use fleetgate_api::usage::UsageCounter;

use crate::helpers::{Req, TestStack};

fn counter(stack: &TestStack) -> UsageCounter {
    UsageCounter::new(stack.client.clone(), stack.tables.usage.clone())
}

/// `GET /vehicles/{id}` (vehicles:read) as `key_id` with `scopes`, through an instance counting with `usage`.
async fn read_vehicle(stack: &TestStack, usage: &UsageCounter, key_id: &str, scopes: &str) -> u16 {
    let state =
        get_vehicle::State { gate: Gate { audit: None, usage: Some(usage.clone()) }, vehicles: stack.vehicle_store() };
    let req =
        Req::with_id("GET", "/vehicles", "veh_00000000000000000000").build(Some(&stack.key_context_of(key_id, scopes)));
    get_vehicle::handler(&state, req).await.unwrap().status().as_u16()
}

/// The scope-use item of `key_id`, as JSON (`Null` when there is none).
async fn scope_item(stack: &TestStack, key_id: &str) -> Value {
    let item = stack
        .client
        .get_item()
        .table_name(&stack.tables.usage)
        .key("pk", AttributeValue::S(format!("key#{key_id}")))
        .key("sk", AttributeValue::S("scopes".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    item.map_or(Value::Null, |item| serde_dynamo::from_item(item).unwrap())
}

/// Sets the recorded use of `scope` by `key_id` to `days` ago.
async fn age_scope_use(stack: &TestStack, key_id: &str, scope: &str, days: i64) {
    let at = Timestamp::now().unix_seconds() - days * 86_400;
    stack
        .client
        .update_item()
        .table_name(&stack.tables.usage)
        .key("pk", AttributeValue::S(format!("key#{key_id}")))
        .key("sk", AttributeValue::S("scopes".into()))
        .update_expression("SET #scope = :at")
        .expression_attribute_names("#scope", scope)
        .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
        .send()
        .await
        .unwrap();
}

/// Sets the authorizer's `last_used_at` of the key `plaintext` to `days` ago.
async fn age_last_use(stack: &TestStack, plaintext: &str, days: i64) {
    let hash = ApiKey::parse(plaintext).unwrap().hash();
    let at = Timestamp::now().minus(time::Duration::days(days));
    stack.key_store().touch_last_used(&hash, at).await.unwrap();
}

#[tokio::test]
async fn an_endpoint_notes_the_scope_it_uses_once_an_hour_per_instance_and_never_a_refused_one() {
    let stack = TestStack::new().await;
    let key_id = fleetgate_api::keys::new_public_id("key_");
    let instance = counter(&stack);
    assert_eq!(read_vehicle(&stack, &instance, &key_id, "vehicles:write").await, 404);
    let noted = scope_item(&stack, &key_id).await;
    let first = noted["vehicles:read"].as_i64().expect("the route's scope is noted");
    assert!((Timestamp::now().unix_seconds() - first).abs() < 60, "{noted}");
    assert!(noted.get("vehicles:write").is_none(), "a write scope that only read is not a use of it: {noted}");

    // Within the hour the same instance does not write again...
    age_scope_use(&stack, &key_id, "vehicles:read", 2).await;
    let aged = scope_item(&stack, &key_id).await["vehicles:read"].clone();
    read_vehicle(&stack, &instance, &key_id, "vehicles:write").await;
    assert_eq!(scope_item(&stack, &key_id).await["vehicles:read"], aged, "deduplicated in memory");
    // ...and another instance (a new execution environment) does.
    read_vehicle(&stack, &counter(&stack), &key_id, "vehicles:write").await;
    assert_ne!(scope_item(&stack, &key_id).await["vehicles:read"], aged);

    // A key without the scope is refused (403) and has used nothing.
    let refused_id = fleetgate_api::keys::new_public_id("key_");
    assert_eq!(read_vehicle(&stack, &instance, &refused_id, "inspections:read").await, 403);
    assert_eq!(scope_item(&stack, &refused_id).await, Value::Null);
}

#[tokio::test]
async fn a_review_flags_idle_keys_and_names_the_scopes_a_key_never_uses() {
    let stack = TestStack::new().await;
    // A full-fleet key that only reads vehicles (through an endpoint, as in production).
    let (reader, reader_id) = stack.create_key(&["vehicles:write", "inspections:write"]).await;
    read_vehicle(&stack, &counter(&stack), &reader_id, "vehicles:write inspections:write").await;
    age_last_use(&stack, &reader, 0).await;
    // Used everything it has, 40 days ago: unused for 30 days, fine for 60.
    let (old, old_id) = stack.create_key(&["vehicles:read"]).await;
    age_last_use(&stack, &old, 40).await;
    age_scope_use(&stack, &old_id, "vehicles:read", 40).await;
    // Never used.
    let (_, never_id) = stack.create_key(&["inspections:read"]).await;
    // Rotated: the old key is in its grace period; the new one is new.
    let (_, rotated_id) = stack.create_key(&["vehicles:read"]).await;
    let rotation = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": rotated_id, "grace_period_hours": 2}),
        )
        .await
        .unwrap();
    // Revoked keys are not reviewed.
    let (_, revoked_id) = stack.create_key(&["vehicles:read"]).await;
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": revoked_id})).await.unwrap();

    let review = stack.provision(json!({"action": "review_keys", "tenant_id": stack.tenant})).await.unwrap();
    let of = |id: &str| review["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == id).cloned();
    assert_eq!(review["unused_days"], 30);
    assert!(of(&revoked_id).is_none(), "revoked keys are not reviewed");

    let reader = of(&reader_id).unwrap();
    assert_eq!(reader["findings"], json!([]));
    assert_eq!(reader["unused_scopes"], json!(["vehicles:write", "inspections:write"]));
    assert_eq!(reader["suggested_scopes"], json!(["vehicles:read"]));
    assert!(reader["scopes_last_used"]["vehicles:read"].is_string(), "{reader}");

    let old_review = of(&old_id).unwrap();
    assert_eq!(old_review["findings"], json!(["unused"]));
    assert_eq!(old_review["unused_scopes"], json!(["vehicles:read"]));
    assert_eq!(of(&never_id).unwrap()["findings"], json!(["never_used"]));
    assert_eq!(of(&rotated_id).unwrap()["findings"], json!(["never_used", "rotation_grace"]));
    let successor = rotation["key"]["key_id"].as_str().unwrap();
    assert_eq!(of(successor).unwrap()["findings"], json!(["never_used"]));
    assert_eq!(review["summary"]["never_used"], 3);
    assert_eq!(review["summary"]["unused"], 1);
    assert_eq!(review["summary"]["rotation_grace"], 1);

    // A wider window: the 40-day-old use counts again.
    let wide =
        stack.provision(json!({"action": "review_keys", "tenant_id": stack.tenant, "unused_days": 60})).await.unwrap();
    let old_wide = wide["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == old_id.as_str()).unwrap().clone();
    assert_eq!((old_wide["findings"].clone(), old_wide["unused_scopes"].clone()), (json!([]), json!([])));

    for (bad, code) in [
        (json!({"action": "review_keys", "tenant_id": stack.tenant, "unused_days": 0}), "invalid_field"),
        (json!({"action": "review_keys", "tenant_id": stack.tenant, "unused_days": 366}), "invalid_field"),
        (json!({"action": "review_keys", "tenant_id": format!("{}-typo", stack.tenant)}), "tenant_not_found"),
    ] {
        assert_eq!(stack.provision(bad).await.unwrap_err().code(), code);
    }
}
